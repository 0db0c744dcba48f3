//! The Queue: round trip (a `u64` put on one queue, got by the child and put
//! back on a second, got by the parent) against a raw pipe round trip, and
//! one-way throughput (a child puts `n` small integers, the parent gets them)
//! against a raw pipe carrying 8 bytes per item; Python's
//! `multiprocessing.Queue` for both.

use super::pingpong::{RAW, ping_pong, pipe_raw};
use super::{Bench, Ctx, PATIENCE, PLACES, Python, SCHEDULER, Unit, Where, check_child};
use crate::error::Result;
use crate::queue::{Queue, Wait};
use std::time::Instant;

/// `queue`: round trip.
pub const ROUND_TRIP: Bench = Bench {
    name: "queue",
    op: "Queue put + get of a u64 each way (two queues of capacity 1)",
    unit: Unit::Micros,
    ops: 3_000,
    places: &PLACES,
    sides: &[("ipckit", round_trip), ("raw-pipe", pipe_raw)],
    python: Python::Peer,
};

/// `queue-throughput`.
pub const THROUGHPUT: Bench = Bench {
    name: "queue-throughput",
    op: "items through an unbounded Queue, one producer to one consumer",
    unit: Unit::PerSecond,
    ops: 100_000,
    places: &SCHEDULER,
    sides: &[("ipckit", throughput), ("raw-pipe", pipe_throughput)],
    python: Python::Peer,
};

fn round_trip(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (ping, pong): (Queue<u64>, Queue<u64>) = (Queue::new(1)?, Queue::new(1)?);
    ping_pong(
        place,
        n,
        |v| {
            ping.put(&v, Wait::For(PATIENCE))?;
            pong.get(Wait::For(PATIENCE))
        },
        || {
            let v = ping.get(Wait::Forever)?;
            pong.put(&v, Wait::Forever).map(|()| v)
        },
    )
}

/// Items per second: the child runs `produce`, the parent runs `consume`.
fn one_way(
    n: u64,
    produce: impl FnOnce() -> Result<()>,
    consume: impl FnOnce() -> Result<()>,
) -> Result<f64> {
    let start = Instant::now();
    let mut producer = super::pinned_child(None, || produce().map_or(1, |()| 0))?;
    consume()?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    check_child("producer", producer.wait_deadline(PATIENCE)?)?;
    Ok(rate)
}

fn throughput(_: &Ctx, _: Where, n: u64) -> Result<f64> {
    let q: Queue<u64> = Queue::new(0)?;
    one_way(
        n,
        || (0..n).try_for_each(|i| q.put(&i, Wait::Forever)),
        || (0..n).try_for_each(|_| q.get(Wait::For(PATIENCE)).map(drop)),
    )
}

fn pipe_throughput(_: &Ctx, _: Where, n: u64) -> Result<f64> {
    let (r, w) = crate::channel::pipe()?;
    one_way(
        n,
        // `move`: the parent's copy of the write end closes after the fork,
        // so a producer that dies is end of file, not a hang.
        move || (0..n).try_for_each(|i| (RAW.send)(&w, i)),
        || (0..n).try_for_each(|_| (RAW.recv)(&r).map(drop)),
    )
}
