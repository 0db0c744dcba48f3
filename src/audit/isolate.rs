//! Private namespaces for an audited run (Linux, needs `CAP_SYS_ADMIN`).
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
