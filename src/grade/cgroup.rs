//! A `pids` control group per graded run (Linux, cgroup v1, needs root).
//!
//! `RLIMIT_NPROC` does not bind root, so a fork bomb run by root is contained
//! with the `pids` controller instead (`Documentation/admin-guide/cgroup-v1/pids.rst`):
//! 1. make a child group `/sys/fs/cgroup/pids/ipckit-grade-<pid>` (`mkdir(2)`);
//! 2. write the limit to its `pids.max`: past it `fork` fails with `EAGAIN`;
//! 3. the port's process writes `0` to `cgroup.procs` before `exec` to join
//!    it (every process it forks is then in the group, whatever it does:
//!    `setsid`, double fork);
//! 4. the group's `cgroup.procs` lists the tree, so nothing escapes the kill;
//! 5. once empty, the group is removed (`rmdir(2)`) when the owner drops.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The root of the `pids` hierarchy.
const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";

/// One `pids` control group; removed on drop (after its processes are gone).
#[derive(Debug)]
pub struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Makes a group for this process's run with `pids.max = max`.
    pub fn create(max: u64) -> Result<PidsCgroup> {
        let dir = PathBuf::from(PIDS_ROOT).join(format!("ipckit-grade-{}", std::process::id()));
        // A group left by a supervisor that died with this pid: removed if empty.
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
        let group = PidsCgroup { dir };
        let max_file = group.dir.join("pids.max");
        std::fs::write(&max_file, max.to_string())
            .map_err(|e| Error::io(format!("writing {}", max_file.display()), e))?;
        Ok(group)
    }

    /// The `cgroup.procs` file a process writes `0` to in order to join.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The pids in the group now (processes, not threads).
    pub fn procs(&self) -> Vec<i32> {
        std::fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Where the group lives, for reports.
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for PidsCgroup {
    /// Removes the group. `rmdir(2)` fails with `EBUSY` while a process is
    /// inside, and a zombie still is until it is reaped: the last processes
    /// of a port die just as the watch ends, and their zombies (children of
    /// this subreaper, which owns nothing else) are reaped here, or the
    /// group would outlive the run.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            reap_exited();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Reaps every exited child of this process without waiting
/// (`waitpid(2)`, `WNOHANG | __WALL`).
fn reap_exited() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if pid <= 0 {
            return;
        }
    }
}
