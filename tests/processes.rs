//! CATALOGUE.md section 1 and the Process programs of section 2: each
//! reference program, run under the audit in a process tree of its own,
//! prints what the catalogue says and leaves nothing behind.

mod common;

use common::audited;
use rstest::rstest;

/// Programs whose whole output is known in advance.
#[rstest]
#[case::fork_isolation("fork-isolation", &["a = 1", "a = 10000", "parent a : 1"])]
#[case::exit_flush("exit-flush", &[
    "1. not flushed before fork, so printed by both processes: child",
    "1. not flushed before fork, so printed by both processes: parent",
    "2. flushed before fork, so printed once",
    "3. the child used the immediate exit (_exit): its buffered text \"\" never arrived",
    "4. the child used the normal exit (exit): its buffered text \"kept in the buffer\" was flushed",
])]
fn program_prints_exactly(#[case] id: &str, #[case] expected: &[&str]) {
    let run = audited(id, &[]);
    run.assert_clean();
    assert_eq!(run.lines(), expected);
}

#[test]
fn fork_basic_child_lines_come_first_and_finished_appears_twice() {
    let run = audited("fork-basic", &[]);
    run.assert_clean();
    let lines = run.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with("new process created"), "{lines:?}");
    assert_eq!(lines[1], "program finished");
    assert!(lines[2].starts_with("original process"), "{lines:?}");
    assert_eq!(lines[3], "program finished");
    assert_eq!(run.report["processes_seen"], 2, "one fork: two processes");
}

/// Pulls every decimal number out of a line.
fn numbers(line: &str) -> Vec<i64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn fork_ids_both_views_agree() {
    let run = audited("fork-ids", &[]);
    run.assert_clean();
    let lines = run.lines();
    let (child, parent) = (numbers(lines[0]), numbers(lines[1]));
    // child: [own pid, parent pid]; parent: [child pid, own pid]
    assert_eq!(child[0], parent[0], "child pid seen by both: {lines:?}");
    assert_eq!(child[1], parent[1], "parent pid seen by both: {lines:?}");
}

#[test]
fn exit_status_decodes_status_1_and_a_signal_death() {
    let run = audited("exit-status", &[]);
    run.assert_clean();
    let lines = run.lines();
    let child_pid = numbers(lines[0])[0];
    let waited = numbers(lines[1]);
    assert_eq!(
        waited[0], child_pid,
        "wait() returns the child's pid: {lines:?}"
    );
    assert!(lines[1].ends_with("exited with status 1"), "{lines:?}");
    assert_eq!(lines[2], "parent: WEXITSTATUS = 1");
    assert_eq!(
        lines[3],
        "parent: the second child killed by signal 9 (SIGKILL)"
    );
}

#[test]
fn zombie_shows_state_z_until_waited() {
    let run = audited("zombie", &[]);
    run.assert_clean();
    let lines = run.lines();
    assert!(
        lines[0].ends_with("before wait its state is Z (zombie)"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "after wait the child is gone (reaped)");
}

#[test]
fn double_fork_orphan_is_adopted_by_the_audit_and_first_comes_before_second() {
    let run = audited("double-fork", &[]);
    run.assert_clean();
    let lines = run.lines();
    let first = lines
        .iter()
        .position(|l| l.starts_with("first thing"))
        .expect("first thing");
    let second = lines
        .iter()
        .position(|l| l.starts_with("second thing"))
        .expect("second thing");
    assert!(first < second, "{lines:?}");
    // The audit is the subreaper: it adopted the grandchild and reaped it.
    let adopted = run.findings("adopted");
    assert_eq!(
        adopted.len(),
        1,
        "exactly the grandchild was adopted: {:#}",
        run.report
    );
    let grandchild = numbers(lines[0])[0];
    assert_eq!(adopted[0]["pid"], grandchild);
    let adopter = *numbers(lines[0]).last().unwrap();
    let audit_pid = run.report["audit_pid"]
        .as_i64()
        .expect("audit pid in report");
    assert_eq!(
        adopter, audit_pid,
        "adopted by the nearest subreaper: {lines:?}"
    );
}

#[test]
fn sigchld_ignore_leaves_no_zombie_and_wait_fails_with_echild() {
    let run = audited("sigchld-ignore", &[]);
    run.assert_clean();
    let lines = run.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for l in &lines[..3] {
        assert!(l.ends_with("state gone (reaped)"), "{lines:?}");
    }
    assert!(lines[3].contains("failed with ECHILD"), "{lines:?}");
    assert!(
        run.findings("adopted").is_empty(),
        "the kernel reaped them, not the audit"
    );
}

#[test]
fn process_join_parent_global_stays_1_and_exitcode_is_0() {
    let run = audited("process-join", &[]);
    run.assert_clean();
    let lines = run.lines();
    assert!(
        lines[0].starts_with("parent: started Process-1 with pid"),
        "{lines:?}"
    );
    assert!(lines[0].ends_with("alive: true"), "{lines:?}");
    // The child prints after 2 tutorial seconds, the parent after 3: scaled,
    // only 100 ms apart, which a loaded machine can swap. Both must be there.
    let mut middle = lines[1..3].to_vec();
    middle.sort();
    assert!(middle[0].starts_with("child: pid"), "{lines:?}");
    assert_eq!(middle[1], "parent: done sleeping");
    assert_eq!(
        lines[3],
        "parent: joined Process-1, exitcode Some(0), alive: false"
    );
    assert_eq!(lines[4], "parent: my global is still 1");
}

#[test]
fn daemon_child_is_ended_with_its_process_object() {
    let run = audited("daemon-child", &[]);
    run.assert_clean();
    let lines = run.lines();
    assert!(lines[0].ends_with("started (daemon = true)"), "{lines:?}");
    assert!(
        lines[1].contains("set_daemon after start is refused"),
        "{lines:?}"
    );
    assert!(lines[3].ends_with("is gone (reaped)"), "{lines:?}");
}

#[test]
fn every_program_is_listed_by_exercises() {
    let out = std::process::Command::new(common::ipckit())
        .arg("exercises")
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    for id in [
        "fork-basic",
        "fork-isolation",
        "fork-ids",
        "exit-status",
        "exit-flush",
        "zombie",
        "double-fork",
        "sigchld-ignore",
        "process-join",
        "daemon-child",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
}

#[test]
fn unknown_exercise_is_a_clear_error_with_exit_2() {
    let out = std::process::Command::new(common::ipckit())
        .args(["run", "no-such-thing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ipckit exercises"));
}
