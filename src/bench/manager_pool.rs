//! The Manager and Pool benchmark, side by side with Python's
//! `multiprocessing` (`fixtures/peers/manager_pool_bench.py`) in one run:
//! a Namespace set + get (two round trips to the server), a Pool `apply`
//! round trip, and a Manager's start-up plus shutdown.

use super::{median, python_peer_output};
use crate::error::Result;
use crate::manager::{Manager, ManagerConfig};
use crate::pool::{Pool, PoolConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Operations per measurement.
const OPS: usize = 500;
/// Measurements per median.
const ROUNDS: usize = 7;

fn square(x: i64) -> i64 {
    x * x
}

/// The median over [`ROUNDS`] of the seconds per operation of `batch(OPS)`.
fn per_op(mut batch: impl FnMut(usize) -> Result<()>) -> Result<f64> {
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        batch(OPS)?;
        samples.push(t.elapsed().as_secs_f64() / OPS as f64);
    }
    Ok(median(&mut samples))
}

/// Runs the benchmark and prints its table. `server` is the `ipckit` binary
/// the Manager execs (`None`: the current executable, right for `ipckit bench`).
pub fn run(server: Option<PathBuf>) -> Result<()> {
    crate::programs::require_single_thread()?;
    let config = ManagerConfig {
        program: server,
        ..Default::default()
    };
    let manager = Manager::start(&config)?;
    let ns = manager.namespace()?;
    let namespace = per_op(|k| {
        for i in 0..k as i64 {
            ns.set("x", i)?;
            ns.get("x")?;
        }
        Ok(())
    })?;
    drop(manager);

    // SAFETY: benchmarks run in a single-threaded process (checked above),
    // which starts no thread while the pool lives.
    let pool = unsafe { Pool::new(PoolConfig::new(2)) }?;
    let apply = per_op(|k| {
        for i in 0..k as i64 {
            pool.apply(square, i)?;
        }
        Ok(())
    })?;
    drop(pool);

    let mut starts = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        drop(Manager::start(&config)?);
        starts.push(t.elapsed().as_secs_f64());
    }
    let start = median(&mut starts);

    let [spinning, blocking] = [true, false].map(|spin| {
        let mut samples = (0..ROUNDS)
            .map(|_| socket_round_trip(OPS, spin))
            .collect::<Result<Vec<f64>>>()?;
        Ok::<f64, crate::Error>(median(&mut samples))
    });
    let (spinning, blocking) = (spinning?, blocking?);

    let python = python_peer_output(
        "manager_pool_bench.py",
        &[OPS.to_string()],
        Duration::from_secs(300),
    )
    .and_then(|out| serde_json::from_str::<serde_json::Value>(&out).map_err(|e| e.to_string()));
    println!(
        "Manager and Pool (median of {ROUNDS} x {OPS} operations; python/ipckit > 1 means ipckit is faster)"
    );
    println!(
        "  {:<24} {:>12} {:>12} {:>14}",
        "benchmark", "ipckit", "python", "python/ipckit"
    );
    for (name, ours) in [
        ("namespace_set_get", namespace),
        ("pool_apply", apply),
        ("manager_start_shutdown", start),
    ] {
        let theirs = python.as_ref().ok().and_then(|p| p[name].as_f64());
        let show = |s: f64| format!("{:.1} us", s * 1e6);
        println!(
            "  {name:<24} {:>12} {:>12} {:>14}",
            show(ours),
            theirs.map_or("n/a".into(), show),
            theirs.map_or("n/a".into(), |t| super::ratio(t, ours)),
        );
    }
    println!(
        "  baseline: a raw round trip of 8 bytes on the manager's socket kind takes {:.1} us read as the",
        spinning * 1e6
    );
    println!(
        "  manager reads (spin, then block), {:.1} us with blocking reads; a set + get is two round trips",
        blocking * 1e6
    );
    if let Err(why) = python {
        println!("  python side not measured: {why}");
    }
    Ok(())
}

/// The floor under the manager's protocol: seconds per round trip of 8
/// bytes to a forked echo child over a socket pair of the manager's kind
/// ([`crate::manager::pair`]), read as the manager reads (spinning for a
/// moment before blocking, [`crate::sys::SpinRead`]) or blocking at once;
/// no framing, no encoding, no server.
fn socket_round_trip(n: usize, spin: bool) -> Result<f64> {
    use crate::sys::SpinRead;
    use std::io::{Read, Write};
    let budget = if spin {
        crate::manager::SPIN
    } else {
        Duration::ZERO
    };
    let (ours, theirs) = crate::manager::pair().map_err(|e| crate::Error::io("socketpair", e))?;
    // SAFETY: benchmarks run in a single-threaded process; the child only
    // reads and writes its socket.
    let our_end = std::os::fd::AsRawFd::as_raw_fd(&ours);
    let mut child = unsafe {
        crate::process::fork(move || {
            // The child closes its copy of the parent's end, or it would
            // never see end of file (sound: it is the child's own descriptor).
            libc::close(our_end);
            let mut reader = SpinRead::new(&theirs, budget);
            let mut buf = [0u8; 8];
            while reader.read_exact(&mut buf).is_ok() {
                if (&theirs).write_all(&buf).is_err() {
                    return 1;
                }
            }
            0
        })
    }?;
    let mut reader = SpinRead::new(&ours, budget);
    let mut buf = [0u8; 8];
    let t = Instant::now();
    for i in 0..n as u64 {
        (&ours)
            .write_all(&i.to_ne_bytes())
            .map_err(|e| crate::Error::io("socket", e))?;
        reader
            .read_exact(&mut buf)
            .map_err(|e| crate::Error::io("socket", e))?;
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    drop(ours);
    super::check_child(
        "socket echo child",
        child.wait_deadline(Duration::from_secs(30))?,
    )?;
    Ok(per)
}
