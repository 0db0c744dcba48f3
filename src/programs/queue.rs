//! CATALOGUE.md section 4, the multiprocessing Queue: queue-hello,
//! queue-bounded, producer-consumer, and pi-queue (section 7).

use super::{Program, join_all, require_single_thread, sleep, start};
use crate::error::{Error, Result};
use crate::pi;
use crate::pyvalue::PyValue;
use crate::queue::{Queue, Wait};

/// The programs of this section.
pub const PROGRAMS: &[Program] = &[
    Program {
        id: "queue-hello",
        summary: "a process puts [42, None, 'hello'] on a queue; the parent gets and prints it",
        run: queue_hello,
    },
    Program {
        id: "queue-bounded",
        summary: "Queue(3): a requester puts 2 pairs; a handler gets with a timeout and stops when it times out",
        run: queue_bounded,
    },
    Program {
        id: "producer-consumer",
        summary: "a producer puts 0..4; a consumer prints each until the None sentinel",
        run: producer_consumer,
    },
    Program {
        id: "pi-queue",
        summary: "10 processes put their partial sums on a queue; the parent adds them",
        run: pi_queue,
    },
];

/// `queue-hello`: `q = Queue(); p = Process(target=f, args=(q,)); p.start();
/// print(q.get()); p.join()`, where `f` puts `[42, None, 'hello']`.
fn queue_hello(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let q: Queue<PyValue> = Queue::new(0)?;
    let child_q = q.clone();
    let p = start(move || child_q.put(&PyValue::hello(), Wait::Forever))?;
    println!("{}", q.get(Wait::Forever)?);
    join_all([p])?;
    Ok(0)
}

/// A tiny pseudo-random generator (xorshift), seeded from the pid, so the
/// requester's numbers differ from run to run as `random.randint` does.
fn random_below(state: &mut u64, bound: u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % bound
}

/// `queue-bounded`: `Queue(3)`; the requester puts two random `(x, y)` pairs;
/// the handler sleeps 1 s and gets with a 2 s timeout, printing `x + y = z`,
/// until a get times out (`queue.Empty`).
fn queue_bounded(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let q: Queue<(u64, u64)> = Queue::new(3)?;
    let requests = q.clone();
    let requester = start(move || {
        let mut seed = u64::from(std::process::id()) | 1;
        for _ in 0..2 {
            let pair = (random_below(&mut seed, 100), random_below(&mut seed, 100));
            requests.put(&pair, Wait::Forever)?;
        }
        Ok(())
    })?;
    let work = q.clone();
    let handler = start(move || {
        loop {
            sleep(1.0);
            match work.get(Wait::For(super::scaled(2.0))) {
                Ok((x, y)) => println!("{x} + {y} = {}", x + y),
                Err(Error::Empty(_)) => {
                    println!("no request for 2 s: handler stops");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    })?;
    join_all([requester, handler])?;
    Ok(0)
}

/// `producer-consumer`: the producer puts 0..4, pausing 0.5 s each; the
/// consumer prints until it gets `None`, which the parent puts after joining
/// the producer.
fn producer_consumer(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let q: Queue<Option<u32>> = Queue::new(0)?;
    let out = q.clone();
    let producer = start(move || {
        for item in 0..5 {
            out.put(&Some(item), Wait::Forever)?;
            println!("Produced {item}");
            sleep(0.5);
        }
        Ok(())
    })?;
    let inbox = q.clone();
    let consumer = start(move || {
        while let Some(item) = inbox.get(Wait::Forever)? {
            println!("Consumed {item}");
        }
        println!("Consumer got the sentinel: done");
        Ok(())
    })?;
    join_all([producer])?;
    q.put(&None, Wait::Forever)?;
    join_all([consumer])?;
    Ok(0)
}

/// `pi-queue`: each of 10 processes puts its partial sum on a queue; the
/// parent gets 10 sums, joins every process, and prints pi.
fn pi_queue(args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let n = pi::parse_n(args)?;
    let q: Queue<f64> = Queue::new(0)?;
    let mut workers = Vec::new();
    for i in 0..pi::PARTS {
        let out = q.clone();
        workers.push(start(move || {
            out.put(&pi::partial_sum(pi::slice(i, n)), Wait::Forever)
        })?);
    }
    let mut total = 0.0;
    for _ in 0..pi::PARTS {
        total += q.get(Wait::Forever)?;
    }
    join_all(workers)?;
    pi::print_answer(pi::pi_from(total));
    Ok(0)
}
