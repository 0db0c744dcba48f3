//! The grader's side of a supervisor that was attacked: a port that kills,
//! stops or traces its supervisor must not win, freeze the grader, or leave
//! anything behind.
//!
//! 1. [`attacked`] is read while the grader waits for the answer: a
//!    supervisor that is stopped (`T`), in a tracing stop (`t`) or has a
//!    tracer (`TracerPid` in `/proc/<pid>/status`) was attacked; so was one
//!    that died by a signal the grader did not send.
//! 2. [`clean_after`] then does what the supervisor would have done: kills
//!    every process of the run (its `pids` control group, and every process
//!    whose environment carries [`super::RUN_MARK`] with the supervisor's pid,
//!    or runs under the run's fresh uid),
//!    removes the work area and the control group, and, outside private
//!    namespaces, the IPC objects that appeared during the run.

use crate::audit::ledger::{self, Ledger};
use crate::audit::procfs;
use std::time::{Duration, Instant};

/// Why the supervisor `pid` looks attacked now, if it does.
pub fn attacked(pid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    let tracer = field("TracerPid:").and_then(|v| v.parse::<i32>().ok());
    if let Some(t) = tracer.filter(|t| *t != 0) {
        return Some(format!(
            "process {t} attached to the grader's supervisor with ptrace"
        ));
    }
    match procfs::state_of(pid) {
        Some('T') => Some("the grader's supervisor was stopped (SIGSTOP or similar)".into()),
        Some('t') => Some("the grader's supervisor was held in a tracing stop".into()),
        _ => None,
    }
}

/// The sentence for a supervisor that died by `sig` (one the grader did not send).
pub fn killed(sig: i32) -> String {
    format!(
        "the grader's supervisor was killed by {} during the run",
        crate::audit::interrupt::signal_name(sig)
    )
}

/// Cleans up after the dead supervisor `pid`: kills what is left of its
/// run, removes its work area and control group, and the host objects that
/// are new since `host_before` (given only when the run could not have had
/// private namespaces). Returns what was done, for the report.
pub fn clean_after(pid: i32, host_before: Option<&Ledger>) -> Vec<String> {
    let mut done = Vec::new();
    let killed = kill_run(pid);
    if killed > 0 {
        done.push(format!(
            "{killed} process(es) of the run killed by the grader"
        ));
    }
    crate::audit::cgroup::remove_left_by("grade", pid);
    let area = std::env::temp_dir().join(format!("ipckit-grade-{pid}"));
    crate::audit::isolate::unmount(&area.join("mqueue"));
    if std::fs::remove_dir_all(&area).is_ok() {
        done.push(format!("work area {} removed", area.display()));
    }
    if let Some(before) = host_before {
        let sources = ledger::Sources::default();
        for object in Ledger::snapshot(&sources).new_since(before) {
            if ledger::remove(&object).is_ok() {
                done.push(format!(
                    "{} {} removed (it appeared during the run; it may be another process's)",
                    object.kind, object.name
                ));
            }
        }
    }
    done
}

/// Kills every process marked with the run of supervisor `pid`, again and
/// again (a fork bomb keeps forking) until none is left or 5 s have passed,
/// and reaps those that are this process's children. Returns how many.
fn kill_run(pid: i32) -> usize {
    let mark = format!("{}={pid}", super::RUN_MARK);
    let fresh = super::FRESH_UID_BASE + pid as u32;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut killed = std::collections::BTreeSet::new();
    loop {
        let mut members: Vec<i32> = crate::audit::cgroup::procs_left_by(pid);
        members.extend(
            procfs::snapshot()
                .keys()
                .copied()
                .filter(|p| procfs::uid_of(*p) == Some(fresh) || environ_has(*p, &mark)),
        );
        members.retain(|p| procfs::state_of(*p).is_some_and(|s| s != 'Z'));
        if members.is_empty() || Instant::now() > deadline {
            break;
        }
        for p in members {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
            killed.insert(p);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for p in &killed {
        // Only this process's own children can be reaped here; others were
        // adopted by init (or a subreaper), which reaps them.
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(*p),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG | nix::sys::wait::WaitPidFlag::__WALL),
        );
    }
    killed.len()
}

fn environ_has(pid: i32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
        .unwrap_or(false)
}
