//! Private namespaces for an audited or graded run (Linux).
//!
//! Root (with `CAP_SYS_ADMIN`) enters them directly. Anyone else first
//! makes an unprivileged user namespace (`CLONE_NEWUSER`, `user_namespaces(7)`)
//! that maps their own uid and gid to themselves, and in which they hold
//! `CAP_SYS_ADMIN` over the namespaces they make next. Where that is refused
//! (`kernel.unprivileged_userns_clone = 0`, `user.max_user_namespaces = 0`,
//! AppArmor, a seccomp profile), the caller falls back to the host's
//! namespaces and says so.
//!
//! With a private IPC namespace (`unshare(2)`, `CLONE_NEWIPC`) every System V
//! object and POSIX message queue the watched tree makes lives in a namespace
//! of its own, and with a private mount namespace (`CLONE_NEWNS`) and a fresh
//! `tmpfs` on `/dev/shm`, so do its POSIX shared memory objects and named
//! semaphores. Every object found there was made by the tree: nothing made by
//! an unrelated process at the same time can be blamed on it. When the last
//! process of the namespace exits, the kernel destroys what is left.

use crate::error::Result;
use crate::sys;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use std::path::Path;

/// What isolation a run got.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Private IPC and mount namespaces: every object found is the tree's.
    Namespaces,
    /// Shared namespaces: objects that appeared during the run are attributed
    /// by creator pid where the kernel records one, otherwise by timing.
    Shared,
}

/// Moves this process into private IPC and mount namespaces, mounts a fresh
/// `tmpfs` on `/dev/shm` and an `mqueue` file system at `mq_dir`.
///
/// Must be called before any thread is started; afterwards everything this
/// process forks shares the private namespaces.
pub fn enter_private_namespaces(mq_dir: &Path) -> Result<()> {
    if !nix::unistd::geteuid().is_root() && !in_child_user_namespace() {
        enter_user_namespace()?;
    }
    sys::nix(
        "unshare",
        "CLONE_NEWIPC|CLONE_NEWNS",
        unshare(CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS),
    )?;
    let none: Option<&str> = None;
    // Stop our mounts from propagating back to the host's mount namespace.
    sys::nix(
        "mount",
        "/ (make rprivate)",
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none),
    )?;
    sys::nix(
        "mount",
        "tmpfs on /dev/shm",
        mount(
            Some("tmpfs"),
            "/dev/shm",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
    )?;
    mount_mqueue(mq_dir)
}

/// `unshare(CLONE_NEWUSER)`, then maps this process's uid and gid to
/// themselves (`/proc/self/uid_map`, `setgroups` denied first, as an
/// unprivileged process must before writing `gid_map`). A process that is
/// not dumpable cannot write its own maps (its `/proc` files belong to
/// root): it is dumpable for these writes only (no code it does not trust
/// runs yet).
pub fn enter_user_namespace() -> Result<()> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    sys::nix(
        "unshare",
        "CLONE_NEWUSER",
        unshare(CloneFlags::CLONE_NEWUSER),
    )?;
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|e| crate::Error::io(format!("writing {file}"), e))
    };
    // SAFETY: PR_GET_DUMPABLE/PR_SET_DUMPABLE take and return plain integers.
    let was = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
    // SAFETY: PR_SET_DUMPABLE takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong) };
    let written = write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))
        .and_then(|()| write("/proc/self/setgroups", "deny\n".into()))
        .and_then(|()| write("/proc/self/gid_map", format!("{gid} {gid} 1\n")));
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, was.max(0) as libc::c_ulong) };
    written
}

/// True when this process is in a user namespace other than the initial
/// one (its `/proc/self/uid_map` is not the identity over every id): the
/// grader's supervisor made it, and holds `CAP_SYS_ADMIN` over the
/// namespaces it makes next.
pub fn in_child_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

/// Mounts an `mqueue` file system at `dir` (creating it), so that POSIX
/// message queues can be listed (`mq_overview(7)`).
pub fn mount_mqueue(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir.display().to_string(), e))?;
    let none: Option<&str> = None;
    sys::nix(
        "mount",
        format!("mqueue on {}", dir.display()),
        mount(Some("mqueue"), dir, Some("mqueue"), MsFlags::empty(), none),
    )
}

/// Unmounts what [`mount_mqueue`] mounted (lazily, so a busy mount never hangs us).
pub fn unmount(dir: &Path) {
    let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(dir);
}
