//! The machine is clean after a grade: no port process left, no fixture
//! object in `/dev/shm`, no control group of a dead supervisor.

use ipckit::audit::procfs;
use std::path::Path;

/// No process whose command line names `marker` (the fixture's path) is left,
/// no `/dev/shm` entry of the fixtures, no control group of a dead supervisor
/// made since this test process started.
///
/// Tests run in parallel and may grade the same fixture: a process that is a
/// descendant of a running supervisor (`ipckit __supervise`) belongs to
/// another grade still in progress, and one a test started itself (a
/// compiler building a fixture: its command line names the source) is not a
/// port's; neither is counted. Under nextest each test is a process of its
/// own, so "a test" is any process running this test binary. A port's escaped
/// process would have been adopted by init or a subreaper, never by a test.
pub fn assert_machine_clean(marker: &str) {
    let table = procfs::snapshot();
    let this_binary = std::env::current_exe().ok();
    let is_test = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok() == this_binary;
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
    // Only control groups made since this test process started: one left
    // by an earlier, killed session is not this test's doing.
    let started = std::fs::metadata("/proc/self")
        .and_then(|m| m.modified())
        .ok();
    let recent = |e: &std::fs::DirEntry| {
        let made = e.metadata().and_then(|m| m.modified()).ok();
        made.zip(started).is_none_or(|(m, s)| m >= s)
    };
    if let Ok(dir) = std::fs::read_dir("/sys/fs/cgroup/pids") {
        for e in dir.flatten().filter(recent) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("ipckit-grade-") {
                assert!(
                    Path::new(&format!("/proc/{pid}")).exists(),
                    "control group {name} outlived its supervisor"
                );
            }
        }
    }
}
