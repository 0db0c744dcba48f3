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
    fn drop(&mut self) {
        // rmdir fails with EBUSY while a process (even a dying one) is inside.
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
