//! CATALOGUE.md section 6, CSP: `Parallel` returns when every process has
//! ended; channels are rendezvous (see the unit tests in `src/csp.rs`).

mod common;

use common::audited;
use ipckit::csp::Parallel;
use ipckit::shm::{AnonMapping, SharedRegion};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[test]
fn csp_parallel_prints_both_exits_then_terminating_in_about_one_sleep() {
    let run = audited("csp-parallel", &[]);
    run.assert_clean();
    let lines = run.lines();
    let mut first_two = lines[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["P1 exiting", "P2 exiting"]);
    assert_eq!(lines[2..], ["Terminating"]);
    // That the two run at the same time is proven without a clock by
    // `parallel_waits_for_every_process_and_reports_each_status` below.
}

#[test]
/// Cleanup (every process reaped) is proven by the audited `csp-parallel` run
/// above, which uses `Parallel`: here other tests fork from this process at
/// the same time, so its children cannot be told apart from theirs.
fn parallel_waits_for_every_process_and_reports_each_status() {
    // The two first processes meet: each counts itself in, then waits for
    // the other. Run one after the other, the first would wait in vain and
    // abort: overlap is proven without a wall-clock bound.
    let map = Arc::new(AnonMapping::new(8).unwrap());
    let meet = |map: Arc<AnonMapping>| {
        move || {
            // SAFETY: offset 0 of an 8-byte zeroed shared mapping is in
            // bounds and aligned for an AtomicU32; the Arc keeps it mapped.
            let met = unsafe { &*map.place::<AtomicU32>(0).unwrap() };
            met.fetch_add(1, Ordering::SeqCst);
            let start = Instant::now();
            while met.load(Ordering::SeqCst) < 2 {
                if start.elapsed() > Duration::from_secs(10) {
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    let t = Instant::now();
    let parallel = Parallel::new()
        .with(meet(Arc::clone(&map)))
        .with(meet(Arc::clone(&map)))
        // kill and getpid are async-signal-safe (nix's wrappers are safe).
        .with(|| {
            let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGKILL);
        });
    // SAFETY: every body only uses atomics, sleeps (nanosleep) or aborts:
    // async-signal-safe.
    let statuses = unsafe { parallel.run(Duration::from_secs(10)) }.unwrap();
    let elapsed = t.elapsed();
    assert!(
        statuses[0].success() && statuses[1].success(),
        "{statuses:?}"
    );
    assert_eq!(statuses[2].python_exitcode(), Some(-libc::SIGKILL));
    assert!(
        elapsed < Duration::from_secs(10),
        "the processes ran one after another: {elapsed:?}"
    );
}
