//! The control groups of an audited or graded run (Linux, cgroup v1,
//! needs root; on a cgroup v2 system, a delegated v2 group when the
//! `pids` controller can be enabled there): a `pids` group caps its
//! processes, a `cpu` group makes the whole tree one scheduling entity.
//!
//! `RLIMIT_NPROC` does not bind root, so a fork bomb run by root is contained
//! with the `pids` controller instead (`Documentation/admin-guide/cgroup-v1/pids.rst`):
//! 1. make a child group `ipckit-<kind>-<pid>` (`mkdir(2)`) inside this
//!    process's own group of `/sys/fs/cgroup/pids` (so that it stays under
//!    whatever limit that group has; cgroup v2: beside this process's own
//!    group, the parent's `cgroup.subtree_control` given `+pids`);
//! 2. write the limit to its `pids.max`: past it `fork` fails with `EAGAIN`;
//! 3. the port's process writes `0` to `cgroup.procs` before `exec` to join
//!    it (every process it forks is then in the group, whatever it does:
//!    `setsid`, double fork);
//! 4. the group's `cgroup.procs` lists the tree, so nothing escapes the kill;
//! 5. once empty, the group is removed (`rmdir(2)`) when the owner drops.
//!
//! The `cpu` group (`Documentation/scheduler/sched-design-CFS.rst`, "group
//! scheduler extensions"): the scheduler shares the CPUs between groups,
//! then within each. With autogroup scheduling (`sched(7)`, on by default
//! on most kernels) every session is a group of its own, so a setsid fork
//! bomb's 64 processes were 64 groups, each weighing as much as the grader:
//! a loop of the grader that sleeps 5 ms a pass ran 15 to 68 passes in 2 s
//! instead of 380 beside one (measured). In a `cpu` group of its own
//! (`cpu.shares` 1024, as one ordinary process; a task in a non-root group
//! is not autogrouped) the tree weighs as much as one process, and the
//! same loop ran 365 passes. On cgroup v2 the `pids` group is that group
//! too, when the `cpu` controller can be enabled beside `pids`.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The root of the `pids` hierarchy.
const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";

/// The root of the `cpu` hierarchy (often `cpu,cpuacct`, linked as `cpu`).
const CPU_ROOT: &str = "/sys/fs/cgroup/cpu";

/// One control group; removed on drop (after its processes are gone).
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    /// This process made the group for its own tree (it owns every child
    /// it has): it reaps exited children while it removes the group.
    owner: bool,
}

/// The name of the groups of a run of `kind` (`grade`, `audit`) named
/// after `id` (`tree::run_id`).
fn group_name(kind: &str, id: u32) -> String {
    format!("ipckit-{kind}-{id}")
}

/// Where the groups of a run of `kind` (`grade`, `audit`) named after
/// `supervisor` may be (v1 `pids`, v1 `cpu`, then v2).
fn dirs_of(kind: &str, supervisor: u32) -> Vec<PathBuf> {
    let name = group_name(kind, supervisor);
    let mut dirs = vec![
        v1_own(PIDS_ROOT, "pids").join(&name),
        v1_own(CPU_ROOT, "cpu").join(&name),
    ];
    dirs.extend(v2_parent().map(|p| p.join(&name)));
    dirs
}

/// Where a run's v1 groups are made: this process's own group in the
/// `pids` and the `cpu` hierarchies (`/proc/self/cgroup`), or the
/// hierarchy's root where that group is not there (a container without a
/// cgroup namespace of its own).
pub fn v1_parents() -> [PathBuf; 2] {
    [v1_own(PIDS_ROOT, "pids"), v1_own(CPU_ROOT, "cpu")]
}

/// This process's own group in the v1 hierarchy of `controller` mounted
/// at `root`. A run's groups are made inside it, so that they stay under
/// whatever limits the grader itself is under (a systemd unit's
/// `CPUQuota`, `TasksMax`). `root` itself when that group is not there: a
/// container without a cgroup namespace of its own mounts its own subtree
/// at `root` while `/proc/self/cgroup` names it from the host's root.
fn v1_own(root: &str, controller: &str) -> PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let dir = v1_own_from(root, controller, &own);
    if dir.is_dir() {
        dir
    } else {
        PathBuf::from(root)
    }
}

/// [`v1_own`] from the text of `/proc/self/cgroup`, unchecked: the path of
/// the line of `controller` (see [`group_of`]) under `root`; `root` itself
/// when there is none.
fn v1_own_from(root: &str, controller: &str, own: &str) -> PathBuf {
    let path = group_of(own, controller).unwrap_or("/");
    PathBuf::from(root).join(path.trim_start_matches('/'))
}

/// The group named on the line of a `/proc/PID/cgroup` text whose
/// controller list names `controller` (`4:cpu,cpuacct:/system.slice`:
/// `cpu` and `cpuacct`), `""` for the cgroup v2 line (`0::/path`).
fn group_of<'a>(text: &'a str, controller: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let mut fields = l.splitn(3, ':');
        let (_, names, path) = (fields.next()?, fields.next()?, fields.next()?);
        let named = if controller.is_empty() {
            names.is_empty()
        } else {
            names.split(',').any(|n| n == controller)
        };
        named.then_some(path)
    })
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

/// The processes left in the groups of the (dead) supervisor `supervisor`,
/// each once.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn procs_left_by(supervisor: i32) -> Vec<i32> {
    let mut procs: Vec<i32> = dirs_of("grade", supervisor as u32)
        .into_iter()
        .flat_map(|dir| {
            let group = Cgroup { dir, owner: false };
            let procs = group.procs();
            std::mem::forget(group); // not ours to remove here
            procs
        })
        .collect();
    procs.sort_unstable();
    procs.dedup();
    procs
}

/// Removes the groups of the (dead) run of `kind` named after `supervisor`
/// once their processes are gone (the caller killed them).
pub fn remove_left_by(kind: &str, supervisor: i32) {
    for dir in dirs_of(kind, supervisor as u32) {
        if dir.exists() {
            drop(Cgroup { dir, owner: false });
        }
    }
}

impl Cgroup {
    /// Makes the `pids` group of this process's run of `kind` (`grade`,
    /// `audit`) with `pids.max = max`: in the v1 `pids` hierarchy if there
    /// is one, else in cgroup v2 (with the `cpu` controller too, when it
    /// can be enabled: see [`Cgroup::schedules_as_one`]).
    pub fn pids(kind: &str, max: u64) -> Result<Cgroup> {
        let name = group_name(kind, super::tree::run_id());
        let dir = if std::path::Path::new(PIDS_ROOT).is_dir() {
            v1_own(PIDS_ROOT, "pids").join(name)
        } else {
            let parent = v2_parent().ok_or_else(|| {
                Error::invalid(
                    "control group",
                    "no cgroup v1 pids hierarchy, and no cgroup v2 parent offering the pids controller",
                )
            })?;
            return Self::make_v2(&parent, &name, max);
        };
        let group = Self::make(dir)?;
        group.write("pids.max", &max.to_string())?;
        Ok(group)
    }

    /// Makes the v1 `cpu` group of this process's run of `kind`: its
    /// processes share one `cpu.shares` (the default 1024, as much as one
    /// ordinary process beside it).
    pub fn cpu(kind: &str) -> Result<Cgroup> {
        if !std::path::Path::new(CPU_ROOT).join("cpu.shares").exists() {
            return Err(Error::invalid(
                "control group",
                "no cgroup v1 cpu hierarchy",
            ));
        }
        let name = group_name(kind, super::tree::run_id());
        Self::make(v1_own(CPU_ROOT, "cpu").join(name))
    }

    /// True for a group of a cgroup v2 hierarchy (not under a v1 root).
    pub fn is_v2(&self) -> bool {
        !self.dir.starts_with(PIDS_ROOT) && !self.dir.starts_with(CPU_ROOT)
    }

    /// True when `pid` is in this group now (`/proc/PID/cgroup`: the line
    /// of the group's own hierarchy, `cpu`, `pids` or v2, names a group
    /// ending with this one's path under its root); `None` when `pid` is
    /// gone.
    pub fn holds(&self, pid: i32) -> Option<bool> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        Some(holds_from(&self.dir, &text))
    }

    /// True when the group schedules its processes as one: a v1 `cpu`
    /// group, or a v2 group with the `cpu` controller (`cpu.weight`).
    pub fn schedules_as_one(&self) -> bool {
        self.dir.join("cpu.shares").exists() || self.dir.join("cpu.weight").exists()
    }

    /// A cgroup v2 group `name` under `parent` (a delegated subtree when not
    /// root): `+pids` and `+cpu` in the parent's `cgroup.subtree_control`
    /// (each best effort: already enabled, or refused, and then writing
    /// `pids.max` fails, or the group has no `cpu.weight`), then the group
    /// itself. The controllers stay enabled in the parent once the group is
    /// gone (its other children, this process's own group among them, then
    /// have a `cpu.weight` of 100, the default, each).
    fn make_v2(parent: &std::path::Path, name: &str, max: u64) -> Result<Cgroup> {
        for controller in ["+pids\n", "+cpu\n"] {
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .open(parent.join("cgroup.subtree_control"))
                .and_then(|mut f| std::io::Write::write_all(&mut f, controller.as_bytes()));
        }
        let group = Self::make(parent.join(name))?;
        group.write("pids.max", &max.to_string())?;
        Ok(group)
    }

    /// Writes `value` to the group's file `file`.
    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// `mkdir` the group `dir` (an empty one of that name, left by a
    /// supervisor that died with this pid, is removed first).
    fn make(dir: PathBuf) -> Result<Cgroup> {
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
        Ok(Cgroup { dir, owner: true })
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

/// [`Cgroup::holds`] for the group at `dir`, from the text of a
/// `/proc/PID/cgroup`. The line's path is compared by its end: a container
/// without a cgroup namespace of its own names the group from the host's
/// root (`/docker/ID/ipckit-grade-7`).
fn holds_from(dir: &std::path::Path, text: &str) -> bool {
    let (controller, rel) = if let Ok(rel) = dir.strip_prefix(CPU_ROOT) {
        ("cpu", rel)
    } else if let Ok(rel) = dir.strip_prefix(PIDS_ROOT) {
        ("pids", rel)
    } else {
        // cgroup v2: the group's last component is enough to tell.
        (
            "",
            std::path::Path::new(dir.file_name().unwrap_or_default()),
        )
    };
    let want = format!("/{}", rel.display());
    group_of(text, controller).is_some_and(|path| path.ends_with(&want))
}

impl Drop for Cgroup {
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
    use std::path::Path;

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
    fn a_v1_group_is_made_inside_this_process_s_own_group_of_that_hierarchy() {
        let own =
            "12:pids:/user.slice/user-0.slice\n4:cpu,cpuacct:/system.slice/grader.service\n0::/\n";
        assert_eq!(
            v1_own_from(CPU_ROOT, "cpu", own),
            Path::new("/sys/fs/cgroup/cpu/system.slice/grader.service")
        );
        assert_eq!(
            v1_own_from(PIDS_ROOT, "pids", own),
            Path::new("/sys/fs/cgroup/pids/user.slice/user-0.slice")
        );
        // `cpuacct` alone is not `cpu`; at the root, or with no line, the root.
        assert_eq!(
            v1_own_from(CPU_ROOT, "cpu", "3:cpuacct:/a\n1:cpu:/\n"),
            Path::new(CPU_ROOT)
        );
        assert_eq!(v1_own_from(CPU_ROOT, "cpu", "0::/x\n"), Path::new(CPU_ROOT));
    }

    #[test]
    fn a_process_is_in_a_group_only_by_the_line_of_that_group_s_hierarchy() {
        let cpu = Path::new(CPU_ROOT).join("user.slice/ipckit-grade-7");
        let pids = Path::new(PIDS_ROOT).join("user.slice/ipckit-grade-7");
        // Joined the pids group only: the same name, another hierarchy.
        let pids_only = "12:pids:/user.slice/ipckit-grade-7\n4:cpu,cpuacct:/user.slice\n";
        assert!(!holds_from(&cpu, pids_only));
        assert!(holds_from(&pids, pids_only));
        let both = "12:pids:/user.slice/ipckit-grade-7\n4:cpu,cpuacct:/user.slice/ipckit-grade-7\n";
        assert!(holds_from(&cpu, both));
        // Named from the host's root (a container without a cgroup namespace).
        let hosted = "4:cpu,cpuacct:/docker/abc/ipckit-grade-7\n";
        assert!(holds_from(
            &Path::new(CPU_ROOT).join("ipckit-grade-7"),
            hosted
        ));
        assert!(!holds_from(
            &Path::new(CPU_ROOT).join("ipckit-grade-70"),
            hosted
        ));
        // cgroup v2: the `0::` line.
        let v2 = Path::new("/sys/fs/cgroup/user.slice/ipckit-grade-7");
        assert!(holds_from(v2, "0::/user.slice/ipckit-grade-7\n"));
        assert!(!holds_from(v2, "0::/user.slice/me.scope\n"));
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
    fn a_v1_cpu_group_schedules_as_one_and_is_removed_on_drop() {
        if !nix::unistd::geteuid().is_root() || !Path::new(CPU_ROOT).join("cpu.shares").exists() {
            eprintln!("SKIPPED: no cgroup v1 cpu hierarchy, or not root");
            return;
        }
        let group = Cgroup::cpu("unit-test").unwrap();
        let dir = group.path().to_path_buf();
        assert!(
            dir.starts_with(v1_own(CPU_ROOT, "cpu")),
            "{}",
            dir.display()
        );
        assert!(group.schedules_as_one());
        assert_eq!(group.holds(std::process::id() as i32), Some(false));
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(group.procs_file(), sleeper.id().to_string()).unwrap();
        assert_eq!(group.holds(sleeper.id() as i32), Some(true));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert_eq!(group.holds(sleeper.id() as i32), None, "reaped: gone");
        assert_eq!(
            std::fs::read_to_string(dir.join("cpu.shares"))
                .unwrap()
                .trim(),
            "1024"
        );
        drop(group);
        assert!(!dir.exists());
    }

    #[test]
    fn a_v2_group_enables_pids_and_cpu_writes_its_limit_and_is_removed_on_drop() {
        let (root, _, _) = fake_v2("group");
        let parent = root.join("user.slice/user@1000.service/app.slice");
        let group = Cgroup::make_v2(&parent, "ipckit-grade-7", 64).unwrap();
        let dir = group.path().to_path_buf();
        assert_eq!(dir, parent.join("ipckit-grade-7"));
        assert_eq!(
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap(),
            "+pids\n+cpu\n"
        );
        // The kernel adds `cpu.weight` when the cpu controller was enabled.
        assert!(!group.schedules_as_one());
        std::fs::write(dir.join("cpu.weight"), "100").unwrap();
        assert!(group.schedules_as_one());
        std::fs::remove_file(dir.join("cpu.weight")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("pids.max")).unwrap(), "64");
        assert_eq!(group.procs_file(), dir.join("cgroup.procs"));
        // A real group's files vanish with it; here they are plain files.
        std::fs::remove_file(dir.join("pids.max")).unwrap();
        drop(group);
        assert!(!dir.exists());
        std::fs::remove_dir_all(root).unwrap();
    }
}
