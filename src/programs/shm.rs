//! CATALOGUE.md section 5: shared memory and semaphores, plus `pi-value`.
//!
//! Every program makes its shared objects before starting its children (so
//! the children inherit anonymous mappings), starts them as `Process`es,
//! joins every one, and then prints what the parent sees.

use super::{Program, fork_raw, join_all, require_single_thread, start};
use crate::error::{Error, Result};
use crate::pi;
use crate::process::{self, Fork};
use crate::shm::{Array, Char, PosixName, SharedMemory, SharedRegion, Value};
use crate::sync::{NamedSemaphore, PosixSemaphore, Semaphore};
use std::sync::Arc;

/// The programs of this section.
pub const PROGRAMS: &[Program] = &[
    Program {
        id: "value-array",
        summary: "a child writes a shared Value('d') and negates an Array('i'); the parent sees both",
        run: value_array,
    },
    Program {
        id: "array-bytes",
        summary: "Array('c', b\"hello\"): the child prints it and sets index 0; the parent sees b'Hello'",
        run: array_bytes,
    },
    Program {
        id: "value-counter",
        summary: "5 processes add 1 to a shared Value under its lock: the total is 5",
        run: value_counter,
    },
    Program {
        id: "semaphore",
        summary: "Semaphore(3): 3 processes acquire, work, release",
        run: semaphore,
    },
    Program {
        id: "pi-shm-sem",
        summary: "pi: each child adds its sum to a double in POSIX shared memory under a named semaphore",
        run: pi_shm_sem,
    },
    Program {
        id: "pi-value",
        summary: "pi: each child adds its sum to a shared Value('d') under its lock",
        run: pi_value,
    },
];

/// The value the tutorial's child stores (a literal, not `std::f64::consts::PI`).
#[allow(clippy::approx_constant)]
const TUTORIAL_PI: f64 = 3.1415927;

/// `value-array`: `num = Value('d', 0.0)`, `arr = Array('i', range(10))`; the
/// child sets `num.value = 3.1415927` and `arr[i] = -arr[i]`; the parent joins
/// and prints `num.value` and `arr[:]`.
fn value_array(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let num = Arc::new(Value::new(0.0f64)?);
    let arr = Arc::new(Array::from_slice(&(0..10).collect::<Vec<i32>>())?);
    let (n, a) = (num.clone(), arr.clone());
    let child = start(move || {
        n.set(TUTORIAL_PI);
        for i in 0..a.len() {
            a.set(i, -a.get(i)?)?;
        }
        Ok(())
    })?;
    join_all(vec![child])?;
    println!("{num}");
    println!("{arr}");
    Ok(0)
}

/// `array-bytes`: `arr = Array('c', b"hello")`; the child prints each byte
/// and sets `arr[0] = b'H'`; the parent prints each byte and `arr.value`.
fn array_bytes(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let arr = Arc::new(Array::from_slice(&b"hello".map(Char))?);
    let a = arr.clone();
    let child = start(move || {
        a.iter().for_each(|byte| println!("{byte}"));
        a.set(0, Char(b'H'))
    })?;
    join_all(vec![child])?;
    arr.iter().for_each(|byte| println!("{byte}"));
    println!("{arr}");
    Ok(0)
}

/// `value-counter`: `counter = Value('i', 0)`; 5 processes each do
/// `with counter.get_lock(): counter.value += 1`; the parent prints the total.
fn value_counter(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let counter = Arc::new(Value::new(0i32)?);
    let children = (0..5)
        .map(|_| {
            let c = counter.clone();
            start(move || {
                let _guard = c.get_lock()?.lock()?;
                c.set(c.get() + 1);
                Ok(())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    join_all(children)?;
    println!("Final counter value: {}", counter.get());
    Ok(0)
}

/// `semaphore`: `sem = Semaphore(3)`; 3 processes each acquire, print that
/// their task is done, release; the parent prints the count at the end.
fn semaphore(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let sem = Arc::new(Semaphore::new(3)?);
    let children = (1..=3)
        .map(|i| {
            let s = sem.clone();
            start(move || {
                s.acquire()?;
                println!("Process {i} (pid {}): task done", process::getpid());
                s.release()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    join_all(children)?;
    println!("semaphore value at the end: {}", sem.get_value()?);
    Ok(0)
}

/// `pi-shm-sem`: a named semaphore (initial 1) guards an 8-byte named shared
/// memory object holding a double. Each child opens both by name, computes its
/// slice, acquires, reads, adds, writes, releases. The parent waits for every
/// child, reads the total, prints pi and unlinks both. The tutorial's names
/// `/pi_sem_lock` and `/pi_rw` get this process's pid appended, so parallel
/// runs never collide. Like the tutorial it forks and waits by hand
/// (`os.fork()`, `os._exit(0)`, `os.waitpid(pid, 0)`): every system call is
/// at most two calls away from this function.
fn pi_shm_sem(args: &[String]) -> Result<i32> {
    let n = pi::parse_n(args)?;
    let pid = std::process::id();
    let sem_name = PosixName::new(&format!("/pi_sem_lock_{pid}"))?;
    let rw_name = PosixName::new(&format!("/pi_rw_{pid}"))?;
    let mut sem = NamedSemaphore::create(&sem_name, 1)?;
    let mut rw = SharedMemory::create(&rw_name, std::mem::size_of::<f64>())?;
    rw.write(0, 0.0f64)?;
    let mut children = Vec::new();
    for i in 0..pi::PARTS {
        match fork_raw()? {
            Fork::Child => {
                let code = match add_slice(&sem_name, &rw_name, i, n) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("child {}: {e}", process::getpid());
                        1
                    }
                };
                process::exit_immediately(code)
            }
            Fork::Parent(child) => children.push(child),
        }
    }
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(Error::Died(format!("child {} {status}", child.pid())));
        }
    }
    let total: f64 = rw.read(0)?;
    pi::print_answer(pi::pi_from(total));
    rw.remove()?;
    sem.remove()?;
    Ok(0)
}

/// One child of `pi-shm-sem`: opens both objects by name and adds the sum of
/// slice `i` to the shared double under the semaphore.
fn add_slice(sem_name: &PosixName, rw_name: &PosixName, i: u64, n: u64) -> Result<()> {
    let sem = NamedSemaphore::open(sem_name)?;
    let rw = SharedMemory::open(rw_name)?;
    let s = pi::partial_sum(pi::slice(i, n));
    sem.acquire()?;
    let total: f64 = rw.read(0)?;
    rw.write(0, total + s)?;
    sem.release()
}

/// `pi-value`: `total = Value('d', 0.0)`; each child adds its slice's sum
/// under `total.get_lock()`; the parent joins all and prints pi.
fn pi_value(args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let n = pi::parse_n(args)?;
    let total = Arc::new(Value::new(0.0f64)?);
    let children = (0..pi::PARTS)
        .map(|i| {
            let t = total.clone();
            start(move || {
                let s = pi::partial_sum(pi::slice(i, n));
                let _guard = t.get_lock()?.lock()?;
                t.set(t.get() + s);
                Ok(())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    join_all(children)?;
    pi::print_answer(pi::pi_from(total.get()));
    Ok(0)
}
