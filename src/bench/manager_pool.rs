//! The Manager and Pool benchmark, side by side with Python's
//! `multiprocessing` (`fixtures/peers/manager_pool_bench.py`) in one run:
//! a Namespace set + get (two round trips to the server), a Pool `apply`
//! round trip, and a Manager's start-up plus shutdown.

use super::{Placement, median_of, pin_process, pin_to, pinned_child, python_peer_output};
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

/// Where a measurement runs: the scheduler's choice, or pinned
/// ([`Placement`]: the client on CPU 0 and the server or the pool's workers
/// on CPU 0 or 1).
type Where = Option<Placement>;

/// The placements every table shows, in order.
const PLACES: [Where; 3] = [None, Some(Placement::SameCore), Some(Placement::CrossCore)];

fn label(place: Where) -> &'static str {
    place.map_or("scheduler", Placement::label)
}

/// The kit's side at one placement: seconds per Namespace set + get and per
/// Pool `apply`.
fn ours(config: &ManagerConfig, place: Where) -> Result<(f64, f64)> {
    let _pin = place.map(|p| pin_to(p.cpus().0)).transpose()?;
    let other_cpu = place.map(|p| p.cpus().1);
    let manager = Manager::start(config)?;
    let ns = manager.namespace()?;
    if let (Some(cpu), Some(pid)) = (other_cpu, manager.server_pid()) {
        pin_process(pid.as_raw(), cpu)?;
    }
    // Each measurement: the seconds per operation of OPS operations.
    let namespace = median_of(ROUNDS, || {
        let t = Instant::now();
        for i in 0..OPS as i64 {
            ns.set("x", i)?;
            ns.get("x")?;
        }
        Ok(t.elapsed().as_secs_f64() / OPS as f64)
    })?;
    drop(manager);

    // SAFETY: benchmarks run in a single-threaded process (checked by `run`),
    // which starts no thread while the pool lives.
    let pool = unsafe { Pool::new(PoolConfig::new(2)) }?;
    if let Some(cpu) = other_cpu {
        for pid in pool.worker_pids() {
            pin_process(pid.as_raw(), cpu)?;
        }
    }
    let apply = median_of(ROUNDS, || {
        let t = Instant::now();
        for i in 0..OPS as i64 {
            pool.apply(square, i)?;
        }
        Ok(t.elapsed().as_secs_f64() / OPS as f64)
    })?;
    Ok((namespace, apply))
}

/// The Python peer's measurements at one placement, as JSON.
fn python(place: Where) -> std::result::Result<serde_json::Value, String> {
    python_peer_output(
        "manager_pool_bench.py",
        &[OPS.to_string(), label(place).to_string()],
        Duration::from_secs(300),
    )
    .and_then(|out| serde_json::from_str(&out).map_err(|e| e.to_string()))
}

/// Runs the benchmark and prints its table. `server` is the `ipckit` binary
/// the Manager execs (`None`: the current executable, right for `ipckit bench`).
pub fn run(server: Option<PathBuf>) -> Result<()> {
    crate::programs::require_single_thread()?;
    let config = ManagerConfig {
        program: server,
        ..Default::default()
    };
    println!(
        "Manager and Pool (median of {ROUNDS} x {OPS} operations; python/ipckit > 1 means ipckit is faster)"
    );
    println!(
        "  {:<24} {:<11} {:>10} {:>10} {:>14}",
        "benchmark", "placement", "ipckit", "python", "python/ipckit"
    );
    let show = |s: f64| format!("{:.1} us", s * 1e6);
    let row = |name: &str, place: Where, ours: f64, theirs: Option<f64>| {
        println!(
            "  {name:<24} {:<11} {:>10} {:>10} {:>14}",
            label(place),
            show(ours),
            theirs.map_or("n/a".into(), show),
            theirs.map_or("n/a".into(), |t| super::ratio(t, ours)),
        );
    };
    let mut missing = None;
    for place in PLACES {
        let (namespace, apply) = ours(&config, place)?;
        let python = python(place);
        let theirs = |name: &str| python.as_ref().ok().and_then(|p| p[name].as_f64());
        row(
            "namespace_set_get",
            place,
            namespace,
            theirs("namespace_set_get"),
        );
        row("pool_apply", place, apply, theirs("pool_apply"));
        if place.is_none() {
            let start = median_of(ROUNDS, || {
                let t = Instant::now();
                drop(Manager::start(&config)?);
                Ok(t.elapsed().as_secs_f64())
            })?;
            row(
                "manager_start_shutdown",
                place,
                start,
                theirs("manager_start_shutdown"),
            );
        }
        missing = missing.or(python.err());
    }
    let raw =
        |place: Placement, spin: bool| median_of(ROUNDS, || socket_round_trip(OPS, place, spin));
    println!(
        "  baseline: a raw 8-byte round trip on the manager's socket kind, read as the manager reads (spin, then block):"
    );
    println!(
        "  same-core {:.1} us, cross-core {:.1} us (blocking reads: {:.1} us, {:.1} us); a set + get is two round trips",
        raw(Placement::SameCore, true)? * 1e6,
        raw(Placement::CrossCore, true)? * 1e6,
        raw(Placement::SameCore, false)? * 1e6,
        raw(Placement::CrossCore, false)? * 1e6,
    );
    if let Some(why) = missing {
        println!("  python side not measured: {why}");
    }
    Ok(())
}

/// The floor under the manager's protocol: seconds per round trip of 8
/// bytes to a forked echo child over a socket pair of the manager's kind
/// ([`crate::manager::pair`]), read as the manager reads (spinning for a
/// moment before blocking, [`crate::sys::SpinRead`]) or blocking at once;
/// no framing, no encoding, no server. The two processes run where `place` says.
fn socket_round_trip(n: usize, place: Placement, spin: bool) -> Result<f64> {
    use crate::sys::SpinRead;
    use std::io::{Read, Write};
    let budget = if spin {
        crate::sys::SPIN
    } else {
        Duration::ZERO
    };
    let (ours, theirs) = crate::manager::pair().map_err(|e| crate::Error::io("socketpair", e))?;
    let our_end = std::os::fd::AsRawFd::as_raw_fd(&ours);
    let (cpu, child_cpu) = place.cpus();
    let _pin = pin_to(cpu)?;
    let mut child = pinned_child(child_cpu, move || {
        // The child closes its copy of the parent's end, or it would never
        // see end of file.
        // SAFETY: closing the child's own copy of a descriptor it never uses.
        unsafe { libc::close(our_end) };
        let mut reader = SpinRead::new(&theirs, budget);
        let mut buf = [0u8; 8];
        while reader.read_exact(&mut buf).is_ok() {
            if (&theirs).write_all(&buf).is_err() {
                return 1;
            }
        }
        0
    })?;
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
