//! The in-process audit for library tests.
//!
//! A test binary runs many tests at once in threads of one process, so a test
//! must not look at "all my children" or "all objects": they include other
//! tests'. A [`Scope`] instead gives the test a name prefix of its own and
//! remembers the pids it forked; at the end it checks exactly those.
//!
//! What it can see of named objects is what [`Sources::default`] lists: POSIX
//! shared memory and semaphores in `/dev/shm`, System V objects in
//! `/proc/sysvipc`, and POSIX message queues only where an `mqueue` file
//! system is mounted at `/dev/mqueue` (these machines have none; tests of POSIX
//! queues check the unlink directly: opening the name afterwards must fail
//! with `ENOENT`). The full audit (`ipckit audit`) mounts its own.

use super::ledger::{Ledger, ObjectKind, Sources};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT_SCOPE: AtomicUsize = AtomicUsize::new(0);

/// The names and processes one test is responsible for.
pub struct Scope {
    prefix: String,
    pids: Vec<(Pid, Option<u64>)>,
    sysv: Vec<(ObjectKind, i32)>,
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl Scope {
    /// A scope with a name prefix unique to this process and this scope:
    /// `/ik<pid>s<n>_`.
    pub fn new() -> Scope {
        let n = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
        Scope {
            prefix: format!("/ik{}s{n}_", std::process::id()),
            pids: Vec::new(),
            sysv: Vec::new(),
        }
    }

    /// A POSIX object name (`/...`) inside this scope.
    pub fn name(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// Remembers a process this test forked: it must be reaped by the end.
    pub fn track(&mut self, pid: Pid) {
        self.pids.push((pid, start_time(pid)));
    }

    /// Remembers a System V object this test made: it must be removed by the end.
    pub fn track_sysv(&mut self, kind: ObjectKind, id: i32) {
        self.sysv.push((kind, id));
    }

    /// Everything of this scope that is still there, described in words.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for &(pid, started) in &self.pids {
            if still_there(pid, started) {
                found.push(format!(
                    "process {pid} was never reaped ({})",
                    state_word(pid)
                ));
            }
        }
        let ledger = Ledger::snapshot(&Sources::default());
        for o in &ledger.objects {
            let posix_named = o.name.starts_with(&self.prefix);
            let sysv_tracked = o.id.is_some_and(|id| self.sysv.contains(&(o.kind, id)));
            if posix_named || sysv_tracked {
                found.push(format!("{} {} was never removed", o.kind, o.name));
            }
        }
        found
    }

    /// Panics with a list of leftovers if anything of this scope remains.
    pub fn assert_clean(&self) {
        let left = self.leftovers();
        assert!(
            left.is_empty(),
            "the test left things behind:\n  {}",
            left.join("\n  ")
        );
    }
}

#[cfg(target_os = "linux")]
fn start_time(pid: Pid) -> Option<u64> {
    super::procfs::stat(pid.as_raw()).map(|s| s.start_time)
}

#[cfg(not(target_os = "linux"))]
fn start_time(_pid: Pid) -> Option<u64> {
    None
}

/// True if the same process (same pid and start time) still exists, zombie or not.
fn still_there(pid: Pid, started: Option<u64>) -> bool {
    #[cfg(target_os = "linux")]
    {
        super::procfs::stat(pid.as_raw())
            .is_some_and(|s| Some(s.start_time) == started || started.is_none())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = started;
        nix::sys::signal::kill(pid, None).is_ok()
    }
}

fn state_word(pid: Pid) -> &'static str {
    #[cfg(target_os = "linux")]
    if super::procfs::state_of(pid.as_raw()) == Some('Z') {
        return "a zombie";
    }
    let _ = pid;
    "still running"
}
