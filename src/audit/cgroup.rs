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
    /// This process made the group for its own tree (it owns every child
    /// it has): it reaps exited children while it removes the group.
    owner: bool,
}

/// Where the group of a run of `kind` (`grade`, `audit`) named after
/// `supervisor` may be (v1, then v2).
fn dirs_of(kind: &str, supervisor: u32) -> Vec<PathBuf> {
    let name = format!("ipckit-{kind}-{supervisor}");
    let mut dirs = vec![PathBuf::from(PIDS_ROOT).join(&name)];
    dirs.extend(v2_parent().map(|p| p.join(&name)));
    dirs
}

/// Where this process may make a v2 group: the parent of its own group
/// (`0::/path` in `/proc/self/cgroup`) under the cgroup2 mount, when that
/// parent offers the `pids` controller (`cgroup.controllers`).
fn v2_parent() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    v2_parent_from(&mounts, &own)
}

/// [`v2_parent`] from the text of `/proc/self/mountinfo` and
/// `/proc/self/cgroup` (the files under the mount point are read).
fn v2_parent_from(mounts: &str, own: &str) -> Option<PathBuf> {
    let root = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
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
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn procs_left_by(supervisor: i32) -> Vec<i32> {
    dirs_of("grade", supervisor as u32)
        .into_iter()
        .flat_map(|dir| {
            let group = PidsCgroup { dir, owner: false };
            let procs = group.procs();
            std::mem::forget(group); // not ours to remove here
            procs
        })
        .collect()
}

/// Removes the group of the (dead) run of `kind` named after `supervisor`
/// once its processes are gone (the caller killed them).
pub fn remove_left_by(kind: &str, supervisor: i32) {
    for dir in dirs_of(kind, supervisor as u32) {
        if dir.exists() {
            drop(PidsCgroup { dir, owner: false });
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
            return Self::make_v2(&parent, &name, max);
        };
        Self::make(dir, max)
    }

    /// A cgroup v2 group `name` under `parent` (a delegated subtree when not
    /// root): `+pids` in the parent's `cgroup.subtree_control` (best effort:
    /// already enabled, or refused, and then writing `pids.max` fails), then
    /// the group itself.
    fn make_v2(parent: &std::path::Path, name: &str, max: u64) -> Result<PidsCgroup> {
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+pids");
        Self::make(parent.join(name), max)
    }

    /// `mkdir` the group `dir` (an empty one of that name, left by a
    /// supervisor that died with this pid, is removed first) and writes its
    /// `pids.max`.
    fn make(dir: PathBuf, max: u64) -> Result<PidsCgroup> {
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
        let group = PidsCgroup { dir, owner: true };
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
    /// inside, and a zombie still is until it is reaped (g10c: one empty
    /// group leaked per run of all grades): the owner reaps its exited
    /// children meanwhile. A killed fork bomb on a loaded machine takes
    /// seconds to leave.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            if self.owner {
                while super::tree::reap_next().is_some() {}
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    //! The cgroup v2 file logic against a folder laid out like a cgroup2
    //! mount (this machine's cgroup2 has no `pids` controller, so the live
    //! v2 path is not exercised by the tests here).
    use super::*;

    fn fake_v2(tag: &str) -> (PathBuf, String, String) {
        let root = std::env::temp_dir().join(format!(
            "ipckit-cgroup-v2-test-{}-{tag}",
            std::process::id()
        ));
        let parent = root.join("user.slice/user@1000.service/app.slice");
        std::fs::create_dir_all(parent.join("me.scope")).unwrap();
        std::fs::write(parent.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(parent.join("cgroup.subtree_control"), "").unwrap();
        let mounts = format!(
            "22 1 0:21 / /proc rw - proc proc rw\n30 25 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw\n",
            root.display()
        );
        let own = "0::/user.slice/user@1000.service/app.slice/me.scope\n".to_string();
        (root, mounts, own)
    }

    #[test]
    fn the_v2_parent_is_beside_this_process_group_when_it_offers_pids() {
        let (root, mounts, own) = fake_v2("parent");
        let parent = root.join("user.slice/user@1000.service/app.slice");
        assert_eq!(v2_parent_from(&mounts, &own), Some(parent.clone()));
        std::fs::write(parent.join("cgroup.controllers"), "cpu memory\n").unwrap();
        assert_eq!(v2_parent_from(&mounts, &own), None, "no pids controller");
        let v1_only = "30 25 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        assert_eq!(v2_parent_from(v1_only, &own), None, "no cgroup2 mount");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_v2_group_enables_pids_writes_its_limit_and_is_removed_on_drop() {
        let (root, _, _) = fake_v2("group");
        let parent = root.join("user.slice/user@1000.service/app.slice");
        let group = PidsCgroup::make_v2(&parent, "ipckit-grade-7", 64).unwrap();
        let dir = group.path().to_path_buf();
        assert_eq!(dir, parent.join("ipckit-grade-7"));
        assert_eq!(
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        assert_eq!(std::fs::read_to_string(dir.join("pids.max")).unwrap(), "64");
        assert_eq!(group.procs_file(), dir.join("cgroup.procs"));
        // A real group's files vanish with it; here they are plain files.
        std::fs::remove_file(dir.join("pids.max")).unwrap();
        drop(group);
        assert!(!dir.exists());
        std::fs::remove_dir_all(root).unwrap();
    }
}
