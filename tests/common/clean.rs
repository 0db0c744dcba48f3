//! The machine is clean after a grade: no port process left, no fixture
//! object in `/dev/shm`, no control group of a dead supervisor.

use ipckit::audit::procfs;
use std::path::Path;
use std::time::{Duration, Instant};

/// No process whose command line names `marker` (the fixture's path) is left,
/// no `/dev/shm` entry of the fixtures, no control group of a dead supervisor
/// made since this test process started.
///
/// Tests run in parallel and may grade the same fixture: a process that is a
/// descendant of a running supervisor (`ipckit __supervise`) belongs to
/// another grade still in progress, and one a test started itself (a
/// compiler building a fixture: its command line names the source) is not a
/// port's; neither is counted. Under nextest each test is a process of its
/// own, and tests of other binaries run at the same time (a containment test
/// compiling a hostile fixture while a grade_meaning test checks the
/// fixtures folder), so "a test" is any process running one of this crate's
/// test binaries (`target/*/deps/`). A port's escaped process would have
/// been adopted by init or a subreaper, never by a test.
pub fn assert_machine_clean(marker: &str) {
    let table = procfs::snapshot();
    let test_binaries = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let is_test = |pid: i32| {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .is_some_and(|exe| exe.parent() == test_binaries.as_deref())
    };
    let supervised = |mut pid: i32| {
        while pid > 1 {
            pid = table.get(&pid).map_or(0, |s| s.ppid);
            if is_test(pid) || procfs::cmdline(pid).contains("__supervise") {
                return true;
            }
        }
        false
    };
    let stray: Vec<String> = table
        .keys()
        .filter_map(|&pid| {
            let line = procfs::cmdline(pid);
            (line.contains(marker) && !line.contains(" grade ") && !supervised(pid))
                .then(|| format!("{pid}: {line}"))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "processes of {marker} left running: {stray:?}"
    );
    let shm: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ipckit_fx"))
        .collect();
    assert!(shm.is_empty(), "fixture objects left in /dev/shm: {shm:?}");
    assert_no_group_outlives_its_supervisor();
}

/// No control group `ipckit-grade-PID` made since this test process started
/// (one left by an earlier, killed session is not this test's doing) whose
/// supervisor PID is gone: no process PID, or one that is not an `ipckit
/// __supervise` (the pid was reused). Other tests' graders run at the same
/// time and remove their supervisor's group just after the supervisor
/// exits: such a group is gone within moments, a real leftover stays, so the
/// check waits (at most 10 s) for the list to empty.
fn assert_no_group_outlives_its_supervisor() {
    let started = std::fs::metadata("/proc/self")
        .and_then(|m| m.modified())
        .ok();
    let recent = |e: &std::fs::DirEntry| {
        let made = e.metadata().and_then(|m| m.modified()).ok();
        made.zip(started).is_none_or(|(m, s)| m >= s)
    };
    let orphaned = || -> Vec<String> {
        group_folder_entries()
            .into_iter()
            .filter(recent)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| {
                name.strip_prefix("ipckit-grade-")
                    .and_then(|pid| pid.parse::<i32>().ok())
                    .is_some_and(|pid| !procfs::cmdline(pid).contains("__supervise"))
            })
            .collect()
    };
    let left = settled(Duration::from_secs(10), orphaned);
    assert!(
        left.is_empty(),
        "control groups outlived their supervisor: {left:?}"
    );
}

/// Everything in the folders a run's v1 control groups (`ipckit-KIND-PID`)
/// are made in: this test process's own groups of the `pids` and `cpu`
/// hierarchies (a grader it starts is in them, and makes its run's groups
/// inside).
pub fn group_folder_entries() -> Vec<std::fs::DirEntry> {
    ipckit::audit::control_group_parents()
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .collect()
}

/// `list()` once it is empty, or as it still is after `within`: what other
/// tests' graders are still removing, or a process its adopter has yet to
/// reap, is gone within moments; a real leftover stays.
pub fn settled<T>(within: Duration, list: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = Instant::now() + within;
    loop {
        let left = list();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
