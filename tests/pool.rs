//! CATALOGUE.md section 2, the Pool: the reference programs and the pool's
//! failure paths. A pool forks workers that run non-trivial code, so it only
//! lives in the single-threaded `ipckit` binary: these tests run it there
//! (`ipckit run ...`, `ipckit __internal pool-*`) under the audit, and check
//! its results here against values computed in the test.

mod common;

use common::pi::assert_pi_program;
use common::{audited, audited_cmd, ipckit};
use ipckit::programs::internal::mix;
use rstest::rstest;

#[test]
fn pool_async_runs_four_tasks_in_parallel() {
    let run = audited("pool-async", &[]);
    run.assert_clean();
    let mut lines = run.lines();
    lines.sort();
    assert_eq!(lines, ["Hello 0", "Hello 1", "Hello 2", "Hello 3"]);
    // Each task sleeps 200 ms. That they ran at once is the program's own
    // check (two tasks' start-to-finish times overlap, or it fails), not a
    // tight time bound, which a loaded machine overran (0.98 s for 4 x
    // 200 ms, where one after another takes 0.8 s). The generous bound
    // catches a pool that runs in parallel but is slow.
    let seconds = run.report["seconds"].as_f64().unwrap();
    assert!((0.2..3.0).contains(&seconds), "took {seconds} s");
}

#[test]
fn pi_pool_and_pi_manager_match_the_serial_answer() {
    for (id, n) in [
        ("pi-pool", 1000),
        ("pi-pool", 100_000),
        ("pi-manager", 1000),
        ("pi-manager", 100_000),
    ] {
        assert_pi_program(id, n);
    }
}

#[test]
fn pi_pool_refuses_a_bad_n() {
    let run = audited("pi-pool", &["15"]);
    assert_eq!(run.exit_code(), Some(2));
    assert!(run.output.contains("multiple of 10"), "{}", run.output);
}

fn pool_map(procs: usize, chunksize: usize, max_tasks: usize, items: &[i64]) -> Vec<i64> {
    let (p, c, m) = (
        procs.to_string(),
        chunksize.to_string(),
        max_tasks.to_string(),
    );
    let mut cmd = vec![ipckit(), "__internal", "pool-map", "--processes", &p];
    cmd.extend(["--chunksize", &c, "--max-tasks", &m, "--"]);
    let items: Vec<String> = items.iter().map(i64::to_string).collect();
    cmd.extend(items.iter().map(String::as_str));
    let run = audited_cmd(&cmd);
    run.assert_clean();
    run.lines().iter().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn max_tasks_per_child_replaces_workers_and_keeps_results() {
    let items: Vec<i64> = (0..25).collect();
    let want: Vec<i64> = items.iter().map(|&x| mix(x)).collect();
    assert_eq!(pool_map(2, 1, 1, &items), want);
}

/// Python's `maxtasksperchild`: a worker exits after that many tasks and a
/// new one takes its place (the pids the tasks return show which worker ran
/// each); without a limit one worker runs them all.
#[rstest]
#[case::two_per_worker("2", "runs 2 2 1")]
#[case::one_per_worker("1", "runs 1 1 1 1 1")]
#[case::no_limit("0", "runs 5")]
fn max_tasks_per_child_counts_the_tasks_each_worker_ran(
    #[case] max_tasks: &str,
    #[case] runs: &str,
) {
    let run = audited_cmd(&[
        ipckit(),
        "__internal",
        "pool-workers",
        "--processes",
        "1",
        "--max-tasks",
        max_tasks,
        "--tasks",
        "5",
    ]);
    run.assert_clean();
    assert_eq!(run.lines(), [runs]);
}

/// A task that panics fails with the panic's message (a `&str` or a
/// `String`; anything else has none), and its worker goes on serving.
#[test]
fn a_panicking_task_fails_with_its_message_and_the_worker_goes_on() {
    let run = audited_cmd(&[ipckit(), "__internal", "pool-panic", "--processes", "1"]);
    run.assert_clean();
    // The output also holds the workers' panic reports (standard error).
    let lines: Vec<&str> = run
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("panicked: ") || l.starts_with("after "))
        .collect();
    assert_eq!(
        lines,
        [
            "panicked: a literal message",
            "panicked: formatted 42",
            "panicked: (no message)",
            "after 7",
        ]
    );
}

#[test]
fn join_gives_up_at_the_pool_timeout_and_terminate_reaps_the_busy_worker() {
    let run = audited_cmd(&[
        ipckit(),
        "__internal",
        "pool-join-timeout",
        "--processes",
        "1",
        "--timeout-ms",
        "200",
        "--task-ms",
        "5000",
    ]);
    run.assert_clean();
    let line = run.lines()[0];
    let ms: u64 = line
        .strip_prefix("join: Timeout after ")
        .and_then(|l| l.strip_suffix(" ms"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("join did not time out: {line:?}"));
    assert!((200..2000).contains(&ms), "join took {ms} ms");
    // The 5 s task was ended by terminate, not waited for.
    let seconds = run.report["seconds"].as_f64().unwrap();
    assert!(seconds < 3.0, "took {seconds} s");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]

    #[test]
    fn pool_map_equals_the_sequential_map(
        items in proptest::collection::vec(proptest::num::i64::ANY, 0..40),
        procs in 1usize..4,
        chunksize in 1usize..9,
        max_tasks in 0usize..4,
    ) {
        let want: Vec<i64> = items.iter().map(|&x| mix(x)).collect();
        proptest::prop_assert_eq!(pool_map(procs, chunksize, max_tasks, &items), want);
    }

    #[test]
    fn killing_a_worker_at_any_time_never_hangs_the_pool(
        procs in 1usize..4,
        victim in 0usize..4,
        after_ms in 0u64..80,
    ) {
        let (p, v, a) = (procs.to_string(), victim.to_string(), after_ms.to_string());
        let run = audited_cmd(&[
            ipckit(), "__internal", "pool-kill", "--processes", &p, "--tasks", "8",
            "--victim", &v, "--kill-after-ms", &a,
        ]);
        run.assert_clean();
        let lines = run.lines();
        let counts: Vec<usize> = lines[0]
            .split(' ')
            .filter_map(|w| w.parse().ok())
            .collect();
        proptest::prop_assert_eq!(counts.len(), 2, "{:?}", lines);
        // Every task is accounted for; at most the victim's task failed.
        proptest::prop_assert_eq!(counts[0] + counts[1], 8);
        proptest::prop_assert!(counts[1] <= 1, "{:?}", lines);
        let after: i64 = (0..10).map(mix).sum();
        proptest::prop_assert_eq!(lines[1], format!("after {after}"));
        let seconds = run.report["seconds"].as_f64().unwrap();
        proptest::prop_assert!(seconds < 10.0, "took {} s", seconds);
    }
}

/// `ready()` says whether a result has arrived; `terminate()`, and the drop
/// at the end of a `with` block, end busy workers at once: right after
/// each, none of the workers (busy with a 5 s task) is still alive.
#[test]
fn terminate_and_drop_end_busy_workers_and_ready_tells_the_truth() {
    let run = audited_cmd(&[ipckit(), "__internal", "pool-terminate", "--processes", "2"]);
    run.assert_clean();
    assert_eq!(
        run.lines(),
        ["ready false true", "terminate: alive 0", "drop: alive 0"]
    );
}
