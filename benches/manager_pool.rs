//! Manager and Pool, side by side with Python's `multiprocessing` in one run
//! (`cargo bench --bench manager_pool`): a Namespace set + get round trip, a
//! Pool `apply` round trip, and a Manager's start-up plus shutdown. Prints the
//! medians and the ratio Python / ipckit.
//!
//! The bench is `harness = false`: its `main` is single-threaded, which is
//! what `Pool::new` requires.

use ipckit::manager::{Manager, ManagerConfig};
use ipckit::pool::{Pool, PoolConfig};
use std::time::{Duration, Instant};

const OPS: usize = 500;
const ROUNDS: usize = 7;

fn square(x: i64) -> i64 {
    x * x
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median over ROUNDS of the time per operation of `batch(OPS)`.
fn per_op(mut batch: impl FnMut(usize)) -> f64 {
    median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                batch(OPS);
                t.elapsed().as_secs_f64() / OPS as f64
            })
            .collect(),
    )
}

fn config() -> ManagerConfig {
    ManagerConfig {
        program: Some(env!("CARGO_BIN_EXE_ipckit").into()),
        timeout: Duration::from_secs(10),
        parent_dir: None,
    }
}

fn main() {
    let manager = Manager::start(&config()).expect("start a manager");
    let ns = manager.namespace().expect("a namespace");
    let namespace = per_op(|k| {
        for i in 0..k as i64 {
            ns.set("x", i).expect("set");
            ns.get("x").expect("get");
        }
    });
    drop(manager);

    // SAFETY: this bench's main is single-threaded (harness = false) and
    // starts no thread while the pool lives.
    let pool = unsafe { Pool::new(PoolConfig::new(2)) }.expect("a pool");
    let apply = per_op(|k| {
        for i in 0..k as i64 {
            pool.apply(square, i).expect("apply");
        }
    });
    drop(pool);

    let start = median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                drop(Manager::start(&config()).expect("start"));
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );

    let peer = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/peers/manager_pool_bench.py"
    );
    let python: Option<serde_json::Value> = std::process::Command::new("python3")
        .args([peer, &OPS.to_string()])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice(&o.stdout).ok());
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "benchmark (median)", "ipckit", "python", "ratio"
    );
    for (name, ours) in [
        ("namespace_set_get", namespace),
        ("pool_apply", apply),
        ("manager_start_shutdown", start),
    ] {
        let theirs = python.as_ref().and_then(|p| p[name].as_f64());
        let show = |s: f64| format!("{:.1} us", s * 1e6);
        println!(
            "{name:<28} {:>12} {:>12} {:>8}",
            show(ours),
            theirs.map_or("n/a".into(), show),
            theirs.map_or("n/a".into(), |t| format!("{:.1}x", t / ours)),
        );
    }
}
