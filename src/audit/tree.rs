//! The tree-watching core shared by the audit ([`super::run()`]) and the
//! grader's supervisor (`grade::supervisor`): both run a tree of processes
//! they do not trust, in a private work area, with a cap on its processes,
//! reap everything it leaves, and remove what it made. A fix here is a fix
//! in both.
//!
//! - [`WorkArea`]: `$TMPDIR/ipckit-<kind>-<pid>/{tmp,work,mqueue}`, unmounted
//!   and removed on drop, on every path out;
//! - [`ProcessCap`]: a `pids` control group (`audit::cgroup`) when root,
//!   else `RLIMIT_NPROC` (which counts every task of the real uid in its user
//!   namespace), and a `cpu` group that schedules the tree as one process,
//!   joined by the first process in [`ProcessCap::apply_in_child`];
//! - [`reap_next`]: one `waitpid(-1, WNOHANG | __WALL)`, exits, stops and
//!   tracee reports alike;
//! - [`kill_all`]: one signal to every pid of a tree.

use super::cgroup::Cgroup;
use crate::error::{Error, Result};
use std::ffi::CString;
use std::path::PathBuf;

/// A run's private folders; unmounted and removed on drop.
pub struct WorkArea {
    /// The folder holding the others.
    pub root: PathBuf,
    /// The run's `TMPDIR`.
    pub tmp: PathBuf,
    /// The run's working directory.
    pub work: PathBuf,
    /// Where an `mqueue` file system is mounted to list POSIX queues.
    pub mqueue: PathBuf,
}

/// The id a run's folders and control group are named after: this
/// process's pid, or, inside a PID namespace of the run's own (where this
/// process is PID 1), the pid its supervisor has on the host, set once with
/// [`set_run_id`]. The grader finds what a killed supervisor left by it.
pub fn run_id() -> u32 {
    RUN_ID.get().copied().unwrap_or_else(std::process::id)
}

/// Names this process's runs after `id` (see [`run_id`]); the first call wins.
pub fn set_run_id(id: u32) {
    let _ = RUN_ID.set(id);
}

static RUN_ID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

impl WorkArea {
    /// Makes `$TMPDIR/ipckit-<kind>-<run id>` with `tmp` and `work` in it.
    pub fn new(kind: &str) -> Result<WorkArea> {
        let root = std::env::temp_dir().join(format!("ipckit-{kind}-{}", run_id()));
        let area = WorkArea {
            tmp: root.join("tmp"),
            work: root.join("work"),
            mqueue: root.join("mqueue"),
            root,
        };
        for d in [&area.tmp, &area.work] {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d.display().to_string(), e))?;
        }
        Ok(area)
    }
}

impl Drop for WorkArea {
    fn drop(&mut self) {
        super::isolate::unmount(&self.mqueue);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// How many processes a tree may have, and how that is enforced; and
/// whether the tree is scheduled as one.
pub struct ProcessCap {
    /// The `pids` control group, when there is one (removed on drop).
    pub cgroup: Option<Cgroup>,
    /// The v1 `cpu` control group, when there is one (removed on drop).
    pub cpu_group: Option<Cgroup>,
    /// `RLIMIT_NPROC` for the first process, when set.
    pub nproc: Option<u64>,
    /// How, or why there is no cap, in a sentence.
    pub how: std::result::Result<String, String>,
    /// How the tree is to be scheduled as one (a `cpu` control group), or
    /// why it is not, in a sentence; [`ProcessCap::cpu_share`] says whether
    /// the first process joined.
    pub cpu_how: std::result::Result<String, String>,
    /// The `pids` group's `cgroup.procs`, which the first process joins
    /// (or it does not run).
    join: Option<CString>,
    /// The `cpu` group's `cgroup.procs`, which the first process joins if
    /// it can (the group is not containment).
    join_cpu: Option<CString>,
}

/// Who the tree runs as, for [`ProcessCap::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// Root: `RLIMIT_NPROC` does not bind; a control group is needed.
    Root,
    /// A uid of its own (a fresh uid, or this uid in a user namespace of
    /// its own): `RLIMIT_NPROC` counts from `already` tasks.
    OwnUid {
        /// Tasks of that uid already counted (this process, in a user
        /// namespace of its own).
        already: u64,
    },
    /// This process's uid, shared with every other process of the user.
    SharedUid,
}

impl ProcessCap {
    /// A cap of `max` processes for a tree of `kind` (`grade`, `audit`)
    /// run by `runner`. A group is always tried as root; `RLIMIT_NPROC`
    /// is set whenever it binds.
    pub fn new(kind: &str, max: u64, runner: Runner, dropped_uid: bool) -> ProcessCap {
        let nproc = match runner {
            Runner::Root if dropped_uid => Some(max),
            Runner::Root => None,
            Runner::OwnUid { already } => Some(max + already),
            Runner::SharedUid => Some(own_tasks().saturating_add(max)),
        };
        let mut cap = ProcessCap {
            cgroup: None,
            cpu_group: None,
            nproc,
            how: Err(String::new()),
            cpu_how: Err("no cpu control group (not root)".into()),
            join: None,
            join_cpu: None,
        };
        if runner == Runner::Root {
            cap.join_cpu_group(kind);
            match Cgroup::pids(kind, max) {
                Ok(c) => {
                    cap.how = Ok(format!(
                        "pids control group {} (pids.max {max})",
                        c.path().display()
                    ));
                    if c.schedules_as_one() {
                        cap.cpu_how = Ok(format!("cpu controller of {}", c.path().display()));
                    } else if c.is_v2() && cap.cpu_group.is_none() {
                        cap.cpu_how = Err(format!(
                            "no cpu controller in {}: its parent does not offer it, or refused +cpu in cgroup.subtree_control",
                            c.path().display()
                        ));
                    }
                    cap.join = CString::new(c.procs_file().to_string_lossy().as_bytes()).ok();
                    cap.cgroup = Some(c);
                    return cap;
                }
                Err(e) => cap.how = Err(format!("no pids control group ({e})")),
            }
        }
        if let Some(n) = nproc {
            cap.how = Ok(format!("RLIMIT_NPROC {n} (tasks of the port's uid)"));
        } else if cap.how.as_ref().is_err_and(String::is_empty) {
            cap.how = Err("no limit on processes".into());
        }
        cap
    }

    /// Makes the run's v1 `cpu` group for the first process to join, or
    /// says in `cpu_how` why there is none.
    fn join_cpu_group(&mut self, kind: &str) {
        match Cgroup::cpu(kind) {
            Ok(c) => {
                self.cpu_how = Ok(format!(
                    "cpu control group {} (cpu.shares 1024)",
                    c.path().display()
                ));
                self.join_cpu = CString::new(c.procs_file().to_string_lossy().as_bytes()).ok();
                self.cpu_group = Some(c);
            }
            Err(e) => self.cpu_how = Err(format!("no cpu control group ({e})")),
        }
    }

    /// How the tree of `main`, just started, is scheduled, in a sentence:
    /// `Ok` when `main` joined the `cpu` group (`/proc/PID/cgroup`), or
    /// had already exited (said so); `Err` with the reason otherwise.
    pub fn cpu_share(&self, main: i32) -> std::result::Result<String, String> {
        let how = self.cpu_how.clone()?;
        match self.cpu_group.as_ref().map(|g| g.holds(main)) {
            Some(Some(false)) => Err(format!("{how}: the port could not join it")),
            Some(None) => Ok(format!(
                "{how} (not confirmed: the process had already exited)"
            )),
            _ => Ok(how),
        }
    }

    /// Refuses to run anything without a pids control group unless
    /// `otherwise` names what else contains the tree (a PID namespace of
    /// its own, a fresh uid the caller kills with `kill(-1)`): `RLIMIT_NPROC`
    /// alone does not contain a fork bomb whose processes call `setsid(2)`
    /// (one escaped a grader run as an unprivileged user: a thousand
    /// processes under init that the final kill never reached). An error
    /// naming the reason, so that the caller exits 2 before any process of
    /// the tree exists.
    pub fn require_containment(&self, otherwise: Option<&str>) -> Result<()> {
        if self.cgroup.is_some() || otherwise.is_some() {
            return Ok(());
        }
        let why = match &self.how {
            Ok(how) => format!("only {how}"),
            Err(why) => why.clone(),
        };
        Err(Error::Unsupported(format!(
            "refusing to run: a fork bomb could not be contained here ({why}); \
             a PID namespace (unprivileged user namespaces allowed), a pids control \
             group (root, cgroups writable) or a fresh uid (root) is needed"
        )))
    }

    /// In the first process of the tree, between `fork` and `exec`: joins
    /// the control groups (writes `0` to each `cgroup.procs`) and sets
    /// `RLIMIT_NPROC`. Only async-signal-safe calls.
    ///
    /// # Safety
    /// Call only in a freshly forked child, before `exec`.
    pub unsafe fn apply_in_child(&self) -> std::io::Result<()> {
        let fail = || Err(std::io::Error::last_os_error());
        if let Some(n) = self.nproc {
            let r = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: setrlimit gets a valid pointer to a live rlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &r) } != 0 {
                return fail();
            }
        }
        if let Some(path) = &self.join
            && !join_group(path)
        {
            return fail();
        }
        if let Some(path) = &self.join_cpu {
            // Best effort: `cpu_share` tells the report whether it worked.
            join_group(path);
        }
        Ok(())
    }
}

/// Writes `0` to the `cgroup.procs` file `path`: this process joins that
/// group. Only async-signal-safe calls (`open(2)`, `write(2)`, `close(2)`),
/// for a child between `fork` and `exec`. False when it failed (`errno`
/// says why).
fn join_group(path: &std::ffi::CStr) -> bool {
    // SAFETY: path is a valid NUL-terminated string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd is open; the buffer is 2 valid bytes.
    let written = unsafe { libc::write(fd, b"0\n".as_ptr().cast(), 2) };
    // SAFETY: fd is open and closed once.
    unsafe { libc::close(fd) };
    written == 2
}

/// Tasks (threads) of this user now: `RLIMIT_NPROC` counts every thread of
/// every process of the real user id, not processes.
pub fn own_tasks() -> u64 {
    let uid = nix::unistd::getuid().as_raw().to_string();
    let field = |status: &str, key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    };
    super::procfs::snapshot()
        .keys()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter(|status| field(status, "Uid:").as_deref() == Some(uid.as_str()))
        .map(|status| {
            field(&status, "Threads:")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1)
        })
        .sum()
}

/// One `waitpid(-1, WNOHANG | __WALL)` (`waitpid(2)`): the next report of
/// any child or tracee, as `(pid, raw status)`, or `None` when there is
/// none now. The caller must own every child of its process.
pub fn reap_next() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: status is a valid int.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
    (pid > 0).then_some((pid, status))
}

/// Sends `sig` to every pid of `pids` (`kill(2)`); errors (already gone)
/// are ignored.
pub fn kill_all<'a>(pids: impl IntoIterator<Item = &'a i32>, sig: nix::sys::signal::Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), sig);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_tasks_counts_every_thread_as_rlimit_nproc_does() {
        let gate = std::sync::Arc::new(std::sync::Barrier::new(17));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let gate = gate.clone();
                std::thread::spawn(move || {
                    gate.wait();
                })
            })
            .collect();
        let mine = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap();
        assert!(mine > 16);
        assert!(super::own_tasks() >= mine);
        gate.wait();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn a_work_area_is_removed_on_drop() {
        let area = super::WorkArea::new("tree-test").unwrap();
        let root = area.root.clone();
        std::fs::write(area.tmp.join("f"), "x").unwrap();
        assert!(area.work.is_dir());
        drop(area);
        assert!(!root.exists());
    }
}
