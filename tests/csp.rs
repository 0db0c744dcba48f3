//! CATALOGUE.md section 6, CSP: `Parallel` returns when every process has
//! ended; channels are rendezvous (see the unit tests in `src/csp.rs`).

mod common;

use common::audited;
use ipckit::csp::Parallel;
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
    // Each process sleeps 100 ms: one after the other they cannot take less
    // than 0.2 s, so anything below proves they overlapped (about 0.1 s).
    let seconds = run.report["seconds"].as_f64().unwrap();
    assert!(seconds < 0.2, "took {seconds} s: not in parallel");
}

#[test]
/// Cleanup (every process reaped) is proven by the audited `csp-parallel` run
/// above, which uses `Parallel`: here other tests fork from this process at
/// the same time, so its children cannot be told apart from theirs.
fn parallel_waits_for_every_process_and_reports_each_status() {
    let t = Instant::now();
    let parallel = Parallel::new()
        .with(|| std::thread::sleep(Duration::from_millis(150)))
        .with(|| std::thread::sleep(Duration::from_millis(150)))
        // SAFETY: kill and getpid are async-signal-safe.
        .with(|| unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        });
    // SAFETY: every body only sleeps (nanosleep) or aborts: async-signal-safe.
    let statuses = unsafe { parallel.run(Duration::from_secs(10)) }.unwrap();
    let elapsed = t.elapsed();
    assert!(
        statuses[0].success() && statuses[1].success(),
        "{statuses:?}"
    );
    assert_eq!(statuses[2].python_exitcode(), Some(-libc::SIGKILL));
    assert!(
        elapsed >= Duration::from_millis(150),
        "returned before the processes ended"
    );
    // One after the other, two 150 ms sleeps take at least 300 ms.
    assert!(
        elapsed < Duration::from_millis(300),
        "ran one after another: {elapsed:?}"
    );
}
