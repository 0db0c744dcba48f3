//! A `pids` control group per audited or graded run (Linux, cgroup v1,
//! needs root; on a cgroup v2 system, a delegated v2 group when the
//! `pids` controller can be enabled there).
//!
//! `RLIMIT_NPROC` does not bind root, so a fork bomb run by root is contained
//! with the `pids` controller instead (`Documentation/admin-guide/cgroup-v1/pids.rst`):
//! 1. make a child group `/sys/fs/cgroup/pids/ipckit-<kind>-<pid>` (`mkdir(2)`;
//!    cgroup v2: `ipckit-<kind>-<pid>` beside this process's own group, the
//!    parent's `cgroup.subtree_control` given `+pids`);
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

/// Where the group of a grader's supervisor with pid `supervisor` may be
/// (v1, then v2).
fn dirs_of(supervisor: u32) -> Vec<PathBuf> {
    let name = format!("ipckit-grade-{supervisor}");
    let mut dirs = vec![PathBuf::from(PIDS_ROOT).join(&name)];
    dirs.extend(v2_parent().map(|p| p.join(&name)));
    dirs
}

/// Where this process may make a v2 group: the parent of its own group
/// (`0::/path` in `/proc/self/cgroup`) under the cgroup2 mount, when that
/// parent offers the `pids` controller (`cgroup.controllers`).
fn v2_parent() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let root = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let group = root.join(rel.trim_start_matches('/'));
    let parent = group.parent()?.to_path_buf();
    let controllers = std::fs::read_to_string(parent.join("cgroup.controllers")).ok()?;
    controllers
        .split_whitespace()
        .any(|c| c == "pids")
        .then_some(parent)
}

/// The processes left in the group of the (dead) supervisor `supervisor`.
pub fn procs_left_by(supervisor: i32) -> Vec<i32> {
    dirs_of(supervisor as u32)
        .into_iter()
        .flat_map(|dir| {
            let group = PidsCgroup { dir };
            let procs = group.procs();
            std::mem::forget(group); // not ours to remove here
            procs
        })
        .collect()
}

/// Removes the group of the (dead) supervisor `supervisor` once its
/// processes are gone (the caller killed them).
pub fn remove_left_by(supervisor: i32) {
    for dir in dirs_of(supervisor as u32) {
        if dir.exists() {
            drop(PidsCgroup { dir });
        }
    }
}

impl PidsCgroup {
    /// Makes a group for this process's run with `pids.max = max`: in the
    /// v1 `pids` hierarchy if there is one, else in cgroup v2.
    pub fn create(max: u64) -> Result<PidsCgroup> {
        Self::create_as("grade", max)
    }

    /// [`PidsCgroup::create`] for a run of `kind` (`grade`, `audit`).
    pub fn create_as(kind: &str, max: u64) -> Result<PidsCgroup> {
        let name = format!("ipckit-{kind}-{}", super::tree::run_id());
        let v1 = PathBuf::from(PIDS_ROOT);
        let dir = if v1.is_dir() {
            v1.join(name)
        } else {
            let parent = v2_parent().ok_or_else(|| {
                Error::invalid(
                    "control group",
                    "no cgroup v1 pids hierarchy, and no cgroup v2 parent offering the pids controller",
                )
            })?;
            // Best effort: already enabled, or refused (then mkdir below
            // makes a group without pids.max, and writing it fails).
            let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+pids");
            parent.join(name)
        };
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
        // rmdir fails with EBUSY while a process (even a dying one) is inside;
        // a killed fork bomb on a loaded machine takes seconds to leave.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
