//! `ipckit audit -- CMD`: it finds each kind of thing a run can leave behind,
//! reports how it found it, and leaves the machine clean afterwards.

mod common;

use common::{Audited, audited_cmd, audited_cmd_with, ipckit};
use std::time::Instant;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/audit/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// True if a process with this pid exists and runs this command line.
fn still_running(pid: i64, command: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == command.trim())
        .unwrap_or(false)
}

/// True if a System V table of `/proc/sysvipc` (`msg`, `shm`, `sem`) still
/// lists this id (its second column).
fn in_sysv_table(table: &str, id: i64) -> bool {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}")).unwrap();
    text.lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string()))
}

fn assert_only(run: &Audited, kind: &str, n: usize) {
    assert_eq!(run.findings(kind).len(), n, "{kind}: {:#}", run.report);
}

#[test]
fn a_clean_command_gives_exit_0_and_an_empty_report() {
    let run = audited_cmd(&["true"]);
    run.assert_clean();
    assert_only(&run, "adopted", 0);
}

#[test]
fn mess_py_plants_a_zombie_an_orphan_and_shared_memory_and_all_three_are_found_and_cleaned() {
    let script = fixture("mess.py");
    let run = audited_cmd(&["python3", &script]);
    assert_eq!(run.audit_code, 1, "not clean: exit 1");
    assert_eq!(run.exit_code(), Some(0), "the script itself succeeded");
    assert_only(&run, "zombies", 1);
    assert_only(&run, "orphans", 1);
    assert_only(&run, "leaks", 1);
    let zombie = &run.findings("zombies")[0];
    assert!(
        zombie["detail"]
            .as_str()
            .unwrap()
            .contains("never waited for it"),
        "{zombie}"
    );
    let orphan = &run.findings("orphans")[0];
    assert!(
        orphan["detail"]
            .as_str()
            .unwrap()
            .contains("killed by the audit"),
        "{orphan}"
    );
    let leak = &run.findings("leaks")[0];
    assert_eq!(leak["object"]["kind"], "posix-shm");
    assert!(
        leak["object"]["name"]
            .as_str()
            .unwrap()
            .starts_with("/ipckit_mess_")
    );
    assert_eq!(leak["removed"], true);
    // The machine is clean again: the orphan is gone, the object too.
    let pid = orphan["pid"].as_i64().unwrap();
    assert!(
        !still_running(pid, orphan["command"].as_str().unwrap()),
        "orphan {pid} survived"
    );
    let name = leak["object"]["name"].as_str().unwrap();
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn a_leaked_system_v_queue_is_found_and_removed() {
    let run = audited_cmd(&["ipcmk", "-Q"]);
    assert_eq!(run.audit_code, 1);
    assert_only(&run, "leaks", 1);
    let leak = &run.findings("leaks")[0];
    assert_eq!(leak["object"]["kind"], "sysv-msg");
    assert_eq!(leak["removed"], true);
    // In the host's namespace the removal can be seen in /proc.
    let run = audited_cmd_with(&["--no-isolate"], &["ipcmk", "-Q"]);
    assert_eq!(run.audit_code, 1);
    assert_only(&run, "leaks", 1);
    let leak = &run.findings("leaks")[0];
    assert_eq!(leak["object"]["kind"], "sysv-msg");
    assert_eq!(leak["removed"], true);
    let id = leak["object"]["id"].as_i64().unwrap();
    assert!(!in_sysv_table("msg", id), "queue {id} still there");
}

#[test]
fn a_leaked_posix_queue_is_found_when_an_mqueue_fs_can_be_mounted() {
    let run = audited_cmd(&["python3", &fixture("leak_mq.py")]);
    let notes = run.report["notes"].to_string();
    if notes.contains("POSIX message queues cannot be listed") {
        // Not root: the audit says so, and the queue it could not see is
        // left in the host's namespace: remove it here.
        #[cfg(target_os = "linux")]
        if run.exit_code() == Some(0) {
            let name = ipckit::mq::posix::QueueName::new(run.output.trim()).unwrap();
            ipckit::mq::posix::unlink(&name).expect("unlink the queue the audit could not list");
        }
        return;
    }
    assert_eq!(run.exit_code(), Some(0), "{}", run.output);
    assert_only(&run, "leaks", 1);
    let leak = &run.findings("leaks")[0];
    assert_eq!(leak["object"]["kind"], "posix-mq");
    assert_eq!(leak["object"]["name"].as_str().unwrap(), run.output.trim());
}

#[test]
fn a_file_left_in_tmpdir_is_a_leak() {
    let run = audited_cmd(&["sh", "-c", "echo x > \"$TMPDIR/left-behind\""]);
    assert_only(&run, "leaks", 1);
    let leak = &run.findings("leaks")[0];
    assert_eq!(leak["object"]["kind"], "temp-file");
    assert!(
        leak["object"]["name"]
            .as_str()
            .unwrap()
            .ends_with("/left-behind")
    );
    assert_eq!(leak["removed"], true);
    assert_eq!(run.audit_code, 1, "a leak is not clean");
}

#[test]
fn a_setsid_escapee_is_still_found_and_killed() {
    let run = audited_cmd(&["sh", "-c", "setsid sleep 30 & sleep 0.1"]);
    assert_eq!(run.audit_code, 1);
    assert_only(&run, "orphans", 1);
    let orphan = &run.findings("orphans")[0];
    assert!(
        orphan["command"].as_str().unwrap().contains("sleep 30"),
        "{orphan}"
    );
    assert!(!still_running(orphan["pid"].as_i64().unwrap(), "sleep 30"));
}

#[test]
fn the_deadline_kills_a_hanging_tree() {
    let start = Instant::now();
    let out = std::process::Command::new(ipckit())
        .args([
            "audit",
            "--format",
            "json",
            "--timeout",
            "0.5",
            "--",
            "sleep",
            "30",
        ])
        .output()
        .unwrap();
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exit"]["Signaled"]["signal"], 9, "{report:#}");
    assert!(
        report["notes"].to_string().contains("deadline"),
        "{report:#}"
    );
    assert_eq!(report["timed_out"], true, "{report:#}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a run killed at its deadline is not clean"
    );
}

/// Its main thread leaves with `exit(2)` (not `exit_group`): the process
/// shows `Z` in `/proc` while its other thread sleeps on.
const MAIN_THREAD_EXITS: &str = "
import ctypes, platform, threading, time
threading.Thread(target=time.sleep, args=(60,)).start()
ctypes.CDLL(None).syscall({'x86_64': 60, 'aarch64': 93}[platform.machine()], 0)
";

#[test]
fn the_deadline_kills_a_process_whose_main_thread_exited_while_another_thread_runs() {
    let start = Instant::now();
    let out = std::process::Command::new(ipckit())
        .args(["audit", "--format", "json", "--timeout", "0.5", "--"])
        .args(["python3", "-c", MAIN_THREAD_EXITS])
        .output()
        .unwrap();
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["timed_out"], true, "{report:#}");
    assert_eq!(report["exit"]["Signaled"]["signal"], 9, "{report:#}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_bad_number_of_seconds_is_exit_2_with_a_message_not_a_panic() {
    let bad: [(&[&str], &str); 6] = [
        (&["--timeout", "-1"], "--timeout"),
        (&["--timeout=-1"], "--timeout"),
        (&["--timeout", "NaN"], "--timeout"),
        (&["--timeout", "inf"], "--timeout"),
        (&["--linger", "0"], "--linger"),
        (&["--linger", "soon"], "--linger"),
    ];
    for (args, flag) in bad {
        let out = std::process::Command::new(ipckit())
            .arg("audit")
            .args(args)
            .args(["--", "true"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("for '{flag} <")) && stderr.contains("seconds"),
            "{args:?}: {stderr}"
        );
    }
    // `grade --timeout` is checked by the grader itself, like a spec's
    // `time_limit`, so that a bad value is an error grade in the format asked
    // for (tests/grade.rs).
}

#[test]
fn a_command_that_does_not_exist_is_exit_2_with_a_message_and_no_work_area_left() {
    let tmp = std::env::temp_dir().join(format!("ipckit-test-{}-noexist", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = std::process::Command::new(ipckit())
        .args(["audit", "--", "/no/such/program"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/program"));
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(
        left.is_empty(),
        "the audit's work area was left behind: {left:?}"
    );
    std::fs::remove_dir(&tmp).unwrap();
}

#[test]
fn the_text_report_names_each_finding_and_the_verdict() {
    let out = std::process::Command::new(ipckit())
        .args(["audit", "--", "python3", &fixture("mess.py")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "zombie: pid",
        "orphan still running: pid",
        "leaked POSIX shared memory /ipckit_mess_",
        "NOT CLEAN (1 zombie(s), 1 orphan(s) still running, 1 leaked object(s))",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn without_isolation_objects_are_attributed_and_still_removed() {
    let out = std::process::Command::new(ipckit())
        .args([
            "audit",
            "--format",
            "json",
            "--no-isolate",
            "--",
            "ipcmk",
            "-M",
            "64",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let leaks = report["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{report:#}");
    assert_eq!(leaks[0]["object"]["kind"], "sysv-shm");
    assert!(
        leaks[0]["attribution"]
            .as_str()
            .unwrap()
            .contains("the kernel records pid"),
        "{report:#}"
    );
    assert_eq!(leaks[0]["removed"], true);
    let id = leaks[0]["object"]["id"].as_i64().unwrap();
    assert!(!in_sysv_table("shm", id), "segment {id} still there");
}
