//! The Queue benchmark: round trip and one-way throughput, side by side with a
//! raw pipe written directly on libc and with Python's `multiprocessing.Queue`
//! (`fixtures/peers/queue_peer.py`).
//!
//! - *Round trip*: the parent puts a `u64` on one queue, the child gets it and
//!   puts it back on a second queue, the parent gets it. The raw-pipe baseline
//!   does the same with `write(2)`/`read(2)` of 8 bytes on two pipes. Both
//!   run with the two processes on the same core and on different cores.
//! - *Throughput*: a child puts `items` small integers, the parent gets them all.

use super::{Placement, check_child, median_of, pin_to, pinned_child, python_peer, ratio};
use crate::error::Result;
use crate::process;
use crate::queue::{Queue, Wait};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How many measurements each median is taken over.
const RUNS: usize = 5;
/// The value that tells a ping-pong child to stop.
const STOP: u64 = u64::MAX;

/// How long the parent waits for its child, at each queue operation and at
/// the end: a child that died makes the measurement fail instead of hang.
const PATIENCE: Duration = Duration::from_secs(30);

/// The benchmark's sizes.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Round trips per measurement.
    pub round_trips: u64,
    /// Items per throughput measurement.
    pub items: u64,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            round_trips: 20_000,
            items: 200_000,
        }
    }
}

/// One row of the results: median nanoseconds per round trip, by placement.
#[derive(Debug, Clone)]
pub struct Results {
    /// (placement, queue ns, raw pipe ns, python ns or why not)
    pub round_trip: Vec<(Placement, f64, f64, std::result::Result<f64, String>)>,
    /// (queue items/s, python items/s or why not)
    pub throughput: (f64, std::result::Result<f64, String>),
}

/// Runs the whole benchmark and prints its table.
pub fn run(sizes: Sizes) -> Result<Results> {
    crate::programs::require_single_thread()?;
    let mut round_trip = Vec::new();
    for placement in Placement::ALL {
        let queue = median_of(RUNS, || queue_round_trip(placement, sizes.round_trips))?;
        let pipe = median_of(RUNS, || pipe_round_trip(placement, sizes.round_trips))?;
        let args = [
            "roundtrip".into(),
            placement.label().into(),
            (sizes.round_trips / 10).to_string(),
        ];
        let python = python_peer("queue_peer.py", &args, Duration::from_secs(120));
        round_trip.push((placement, queue, pipe, python));
    }
    let queue = median_of(RUNS, || queue_throughput(sizes.items))?;
    let args = [
        "throughput".into(),
        "any".into(),
        (sizes.items / 10).to_string(),
    ];
    let python = python_peer("queue_peer.py", &args, Duration::from_secs(120));
    let results = Results {
        round_trip,
        throughput: (queue, python),
    };
    print_table(&results);
    Ok(results)
}

fn print_table(r: &Results) {
    println!("Queue round trip (median of {RUNS}, ns per round trip; lower is better)");
    println!(
        "  {:<11} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "placement", "ipckit", "raw pipe", "python", "ipckit/pipe", "python/ipckit"
    );
    for (placement, queue, pipe, python) in &r.round_trip {
        let (py, py_ratio) = match python {
            Ok(p) => (format!("{p:.0}"), ratio(*p, *queue)),
            Err(why) => (format!("n/a ({why})"), "n/a".into()),
        };
        println!(
            "  {:<11} {queue:>12.0} {pipe:>12.0} {py:>12} {:>14} {py_ratio:>14}",
            placement.label(),
            ratio(*queue, *pipe)
        );
    }
    let (queue, python) = &r.throughput;
    println!("Queue one-way throughput (median of {RUNS}, items/s; higher is better)");
    match python {
        Ok(p) => println!(
            "  ipckit {queue:.0}  python {p:.0}  ipckit/python {}",
            ratio(*queue, *p)
        ),
        Err(why) => println!("  ipckit {queue:.0}  python n/a ({why})"),
    }
}

/// Median-able measurement: ns per Queue round trip.
fn queue_round_trip(placement: Placement, n: u64) -> Result<f64> {
    let (ping, pong): (Queue<u64>, Queue<u64>) = (Queue::new(1)?, Queue::new(1)?);
    let (parent_cpu, child_cpu) = placement.cpus();
    let (child_ping, child_pong) = (ping.clone(), pong.clone());
    let mut child = pinned_child(child_cpu, move || {
        loop {
            match child_ping.get(Wait::Forever) {
                Ok(STOP) => return 0,
                Ok(v) if child_pong.put(&v, Wait::Forever).is_ok() => {}
                _ => return 1,
            }
        }
    })?;
    let _pinned = pin_to(parent_cpu)?;
    let start = Instant::now();
    for i in 0..n {
        ping.put(&i, Wait::For(PATIENCE))?;
        pong.get(Wait::For(PATIENCE))?;
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    ping.put(&STOP, Wait::For(PATIENCE))?;
    check_child("queue ping-pong child", child.wait_deadline(PATIENCE)?)?;
    Ok(ns)
}

/// Median-able measurement: ns per raw pipe round trip (8 bytes each way).
fn pipe_round_trip(placement: Placement, n: u64) -> Result<f64> {
    let (to_child_r, to_child_w) = crate::sys::nix("pipe", "", nix::unistd::pipe())?;
    let (to_parent_r, to_parent_w) = crate::sys::nix("pipe", "", nix::unistd::pipe())?;
    let (parent_cpu, child_cpu) = placement.cpus();
    let parent_ends = [to_child_w.as_raw_fd(), to_parent_r.as_raw_fd()];
    let mut child = pinned_child(child_cpu, || {
        // The child closes its copies of the parent's ends, or it would never
        // see end of file on its own read end.
        for fd in parent_ends {
            // SAFETY: closing the child's own copies of two descriptors it never uses.
            unsafe { libc::close(fd) };
        }
        let mut buf = [0u8; 8];
        loop {
            if !read8(&to_child_r, &mut buf) {
                return 0;
            }
            if !write8(&to_parent_w, &buf) {
                return 1;
            }
        }
    })?;
    drop((to_child_r, to_parent_w));
    let _pinned = pin_to(parent_cpu)?;
    let mut buf = [0u8; 8];
    let start = Instant::now();
    for i in 0..n {
        write8(&to_child_w, &i.to_ne_bytes());
        read8(&to_parent_r, &mut buf);
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    drop(to_child_w); // end of file for the child
    check_child("pipe ping-pong child", child.wait_deadline(PATIENCE)?)?;
    Ok(ns)
}

/// `write(2)` of 8 bytes (a pipe write that small is atomic and whole).
fn write8(fd: &OwnedFd, buf: &[u8; 8]) -> bool {
    nix::unistd::write(fd.as_fd(), buf) == Ok(8)
}

/// `read(2)` of 8 bytes; false at end of file.
fn read8(fd: &OwnedFd, buf: &mut [u8; 8]) -> bool {
    nix::unistd::read(fd.as_fd(), buf) == Ok(8)
}

/// Median-able measurement: items per second, one producer to one consumer.
fn queue_throughput(items: u64) -> Result<f64> {
    let q: Queue<u64> = Queue::new(0)?;
    let producer_q = q.clone();
    let start = Instant::now();
    // SAFETY: single-threaded process (checked in `run`).
    let mut producer = unsafe {
        process::fork(move || {
            for i in 0..items {
                if producer_q.put(&i, Wait::Forever).is_err() {
                    return 1;
                }
            }
            0
        })
    }?;
    for _ in 0..items {
        q.get(Wait::For(PATIENCE))?;
    }
    let rate = items as f64 / start.elapsed().as_secs_f64();
    check_child("queue producer", producer.wait_deadline(PATIENCE)?)?;
    Ok(rate)
}
