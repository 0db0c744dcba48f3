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
    if let Err(why) = python {
        println!("  python side not measured: {why}");
    }
    Ok(())
}
