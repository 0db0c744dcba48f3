//! A run's own PID namespace (`pid_namespaces(7)`), shared by the audit
//! (`ipckit audit`) and the grader's supervisor (`ipckit __supervise`):
//! the process splits in two.
//!
//! - The **outer** process enters a user namespace when it is not root
//!   ([`super::isolate::enter_user_namespace`]), then `unshare(2)`s
//!   `CLONE_NEWPID | CLONE_NEWNS` and forks once. It only waits: for the
//!   inner process (passing an interrupt on to it, see
//!   [`super::interrupt::register`]), then removes what a killed inner
//!   process could not (the work area, the control group), and exits with
//!   its status.
//! - The **inner** process is PID 1 of the new namespace and does
//!   everything else (the audit's `run()`, the supervisor's `supervise`): it
//!   mounts a fresh `/proc`, so the pids the watched tree prints, the pids
//!   the tracer sees, the pids `SCM_CREDENTIALS` names, `/proc` and the pids
//!   in the report are all the namespace's own.
//!
//! When PID 1 of a namespace dies, the kernel kills every process in it
//! (`SIGKILL`) and waits for them: a fork bomb whose processes `setsid(2)`
//! cannot outlive the run, even without a pids control group. A command
//! that runs `ps` sees only its own processes. Signals from inside the
//! namespace to its PID 1 are dropped unless PID 1 handles them, so the tree
//! cannot kill or stop its supervisor either.
//!
//! The inner process must die when the outer one does (its caller killed it
//! at a deadline, or it was killed itself): it asks for `SIGKILL` on its
//! parent's death (`PR_SET_PDEATHSIG`). Its parent may have died before
//! that request (`getppid()` says nothing: it is 0 for a namespace's PID 1),
//! so it then checks a pipe whose write end only the outer process holds: at
//! end of file, the outer process is gone and it exits.

use crate::error::Result;
use nix::sched::{CloneFlags, unshare};
use std::os::fd::{AsRawFd, OwnedFd};

/// Where this process stands after [`enter`].
pub enum Side {
    /// PID 1 of the run's namespace: run, report, exit.
    Inner,
    /// The outer process: the inner one's exit status, once it is gone.
    Outer(i32),
}

static INSIDE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static REFUSED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records why the run has no PID namespace of its own, for the report.
pub fn refused(why: String) {
    let _ = REFUSED.set(why);
}

/// Why the run has no PID namespace of its own, if [`enter`] was refused.
pub fn why_not() -> Option<&'static str> {
    REFUSED.get().map(String::as_str)
}

/// True in the inner process (PID 1 of the run's own PID namespace).
pub fn inside() -> bool {
    INSIDE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Enters, for a run of `kind` (`grade`, `audit`), a user namespace (when
/// not root), a PID and a mount namespace, and forks PID 1 of the PID
/// namespace. `Err` when the kernel refuses
/// (no `CAP_SYS_ADMIN`, unprivileged user namespaces off): nothing was
/// changed that matters, and the caller supervises without.
/// Call only while this process has one thread.
pub fn enter(kind: &str) -> Result<Side> {
    let outer = std::process::id();
    if !nix::unistd::geteuid().is_root() {
        super::isolate::enter_user_namespace()?;
    }
    crate::sys::nix(
        "unshare",
        "CLONE_NEWPID|CLONE_NEWNS",
        unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS),
    )?;
    let (alive_r, alive_w) = crate::sys::nix(
        "pipe2",
        "outer-alive pipe",
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC),
    )?;
    // SAFETY: this process has one thread (the caller's contract), so the
    // child may run any code after fork.
    let forked = unsafe { nix::unistd::fork() };
    match crate::sys::nix("fork", "PID 1 of the run's namespace", forked)? {
        nix::unistd::ForkResult::Child => {
            drop(alive_w);
            become_init(&alive_r, outer)?;
            Ok(Side::Inner)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(alive_r);
            let status = {
                let _pass_on = super::interrupt::register(child.as_raw());
                wait_for(child)
            };
            drop(alive_w);
            clean_after_inner(kind, outer);
            Ok(Side::Outer(status))
        }
    }
}

/// In the inner process: dies with the outer process, mounts `/proc`, names
/// the run after the outer pid.
fn become_init(alive: &OwnedFd, outer: u32) -> Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a plain signal number.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if r != 0 {
        return Err(crate::sys::errno_error(
            "prctl",
            "PR_SET_PDEATHSIG",
            nix::errno::Errno::last_raw(),
        ));
    }
    if outer_gone(alive) {
        // The outer process died before the request above: nobody waits
        // for this run's answer.
        std::process::exit(2);
    }
    INSIDE.store(true, std::sync::atomic::Ordering::Relaxed);
    super::tree::set_run_id(outer);
    mount_proc()
}

/// True when the write end of `alive` is closed (its only holder, the
/// outer process, is gone): `poll(2)` reports `POLLHUP` at once.
fn outer_gone(alive: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: alive.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n != 0 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

/// A fresh `proc` file system on `/proc`, in this mount namespace only
/// (mounts made private first, so nothing propagates to the host's).
fn mount_proc() -> Result<()> {
    use nix::mount::{MsFlags, mount};
    let none: Option<&str> = None;
    crate::sys::nix(
        "mount",
        "/ (make rprivate)",
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none),
    )?;
    crate::sys::nix(
        "mount",
        "proc on /proc",
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            none,
        ),
    )
}

/// Waits for the inner process (`waitpid(2)`, retried on `EINTR`); its exit
/// status, or 128 + the signal that killed it.
fn wait_for(child: nix::unistd::Pid) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 2,
        }
    }
}

/// After the inner process is gone (and with it every process of the run:
/// the kernel killed and reaped them), removes what it could not when it
/// was killed: its control group and its work area.
fn clean_after_inner(kind: &str, outer: u32) {
    super::cgroup::remove_left_by(kind, outer as i32);
    let area = std::env::temp_dir().join(format!("ipckit-{kind}-{outer}"));
    let _ = std::fs::remove_dir_all(area);
}
