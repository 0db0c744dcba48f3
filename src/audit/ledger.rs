//! The IPC ledger: which named objects exist, and which appeared during a run.
//!
//! Named IPC objects outlive the processes that made them until someone
//! unlinks (POSIX) or removes (System V) them. The ledger lists them from the
//! places the kernel shows them:
//!
//! | object                      | where it is listed                          | removed with |
//! |-----------------------------|---------------------------------------------|--------------|
//! | POSIX shared memory `/name` | file `/dev/shm/name` (`shm_overview(7)`)     | `shm_unlink(3)` |
//! | POSIX named semaphore `/name` | file `/dev/shm/sem.name` (`sem_overview(7)`) | `sem_unlink(3)` |
//! | POSIX message queue `/name` | a mounted `mqueue` file system (`mq_overview(7)`) | `mq_unlink(3)` |
//! | System V queue / segment / semaphore set | `/proc/sysvipc/{msg,shm,sem}` | `msgctl`/`shmctl`/`semctl(IPC_RMID)` |
//! | temporary files             | the watched temp directories                 | `unlink(2)` |
//!
//! POSIX queues are only listed where an `mqueue` file system is mounted; these
//! machines do not mount `/dev/mqueue`, so the audit mounts one privately (this
//! needs `CAP_SYS_ADMIN`) and says so in its report when it cannot.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The kind of a named object.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    /// POSIX shared memory object (`shm_open`).
    PosixShm,
    /// POSIX named semaphore (`sem_open`).
    PosixSem,
    /// POSIX message queue (`mq_open`).
    PosixMq,
    /// System V message queue (`msgget`).
    SysvMsg,
    /// System V shared memory segment (`shmget`).
    SysvShm,
    /// System V semaphore set (`semget`).
    SysvSem,
    /// A file left in a watched temporary directory.
    TempFile,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectKind::PosixShm => "POSIX shared memory",
            ObjectKind::PosixSem => "POSIX named semaphore",
            ObjectKind::PosixMq => "POSIX message queue",
            ObjectKind::SysvMsg => "System V message queue",
            ObjectKind::SysvShm => "System V shared memory segment",
            ObjectKind::SysvSem => "System V semaphore set",
            ObjectKind::TempFile => "temporary file",
        })
    }
}

/// One named object as the ledger saw it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct IpcObject {
    /// What it is.
    pub kind: ObjectKind,
    /// Its name: `/name` for POSIX objects, `key 0x... id N` for System V, a
    /// path for files.
    pub name: String,
    /// System V identifier (`msqid`, `shmid`, `semid`).
    pub id: Option<i32>,
    /// System V key.
    pub key: Option<i32>,
    /// Pids the kernel records for it: the creator of a System V segment
    /// (`cpid`), the last sender/receiver of a System V queue (`lspid`, `lrpid`).
    pub pids: Vec<i32>,
    /// Where the listing came from (a path).
    pub found_in: String,
    /// The uid that made it: a System V object's `cuid` (`proc(5)`), a
    /// file's owner (`stat(2)`); `None` when it could not be read.
    #[serde(default)]
    pub owner: Option<u32>,
}

/// Where to look for objects.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The directory backing POSIX shared memory and semaphores (`/dev/shm`).
    pub shm_dir: PathBuf,
    /// A mounted `mqueue` file system, if one is available.
    pub mqueue_dir: Option<PathBuf>,
    /// The directory holding `msg`, `shm`, `sem` (`/proc/sysvipc`).
    pub sysvipc_dir: PathBuf,
    /// Directories whose new files, at any depth, count as leaked temporary files.
    pub temp_dirs: Vec<PathBuf>,
    /// Directories whose new top-level entries count as leaked files.
    pub watch_dirs: Vec<PathBuf>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            shm_dir: "/dev/shm".into(),
            mqueue_dir: ["/dev/mqueue"]
                .iter()
                .map(PathBuf::from)
                .find(|p| is_mqueue_mount(p)),
            sysvipc_dir: "/proc/sysvipc".into(),
            temp_dirs: Vec::new(),
            watch_dirs: Vec::new(),
        }
    }
}

/// A snapshot of every object the sources show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// The objects, sorted.
    pub objects: BTreeSet<IpcObject>,
}

impl Ledger {
    /// Lists every object in `sources` now.
    pub fn snapshot(sources: &Sources) -> Ledger {
        let mut objects = BTreeSet::new();
        list_dir_as(&sources.shm_dir, ObjectKind::PosixShm, &mut objects);
        if let Some(dir) = &sources.mqueue_dir {
            list_dir_as(dir, ObjectKind::PosixMq, &mut objects);
        }
        list_sysv(&sources.sysvipc_dir, &mut objects);
        for dir in &sources.temp_dirs {
            list_tree(dir, true, &mut objects);
        }
        for dir in &sources.watch_dirs {
            list_tree(dir, false, &mut objects);
        }
        Ledger { objects }
    }

    /// The objects in `self` that were not in `before`.
    /// Objects are compared by kind and name only: a System V queue whose last
    /// sender changed is still the same queue.
    pub fn new_since(&self, before: &Ledger) -> Vec<IpcObject> {
        let old: BTreeSet<(ObjectKind, &str)> = before
            .objects
            .iter()
            .map(|o| (o.kind, o.name.as_str()))
            .collect();
        self.objects
            .iter()
            .filter(|o| !old.contains(&(o.kind, o.name.as_str())))
            .cloned()
            .collect()
    }
}

/// Removes one object the way its kind is removed (unlink, `IPC_RMID`).
/// Objects in a private mount (`found_in`) are removed through that path.
pub fn remove(obj: &IpcObject) -> Result<()> {
    match obj.kind {
        ObjectKind::PosixShm
        | ObjectKind::PosixSem
        | ObjectKind::PosixMq
        | ObjectKind::TempFile => {
            let path = Path::new(&obj.found_in);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            removed.map_err(|e| Error::io(format!("removing {}", obj.found_in), e))
        }
        ObjectKind::SysvMsg | ObjectKind::SysvShm | ObjectKind::SysvSem => remove_sysv(obj),
    }
}

fn remove_sysv(obj: &IpcObject) -> Result<()> {
    let id = obj
        .id
        .ok_or_else(|| Error::invalid("System V object", "no id"))?;
    let ret = match obj.kind {
        #[cfg(target_os = "linux")]
        // SAFETY: IPC_RMID takes no buffer; a null `buf` is allowed for it.
        ObjectKind::SysvMsg => unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) },
        // The libc crate has no msgctl for macOS; the ledger only lists
        // System V objects from Linux's /proc/sysvipc anyway.
        #[cfg(not(target_os = "linux"))]
        ObjectKind::SysvMsg => {
            return Err(Error::Unsupported(
                "removing System V queues needs Linux here".into(),
            ));
        }
        // SAFETY: IPC_RMID takes no buffer; a null `buf` is allowed for it.
        ObjectKind::SysvShm => unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) },
        // SAFETY: semctl's fourth (variadic) argument is not read for IPC_RMID.
        _ => unsafe { libc::semctl(id, 0, libc::IPC_RMID) },
    };
    crate::sys::check("IPC_RMID", &obj.name, ret).map(|_| ())
}

/// True if `path` is the root of a mounted `mqueue` file system
/// (looked up in `/proc/self/mounts`).
pub fn is_mqueue_mount(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let want = path.to_string_lossy();
    mounts.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_dev, dir, fstype) = (f.next(), f.next(), f.next());
        dir == Some(&*want) && fstype == Some("mqueue")
    })
}

/// Lists the files of `dir` as objects `/<file>` of `kind`; in the POSIX
/// shared memory directory a file `sem.<name>` is the named semaphore `/<name>`.
fn list_dir_as(dir: &Path, kind: ObjectKind, out: &mut BTreeSet<IpcObject>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let (kind, name) = match file.strip_prefix("sem.") {
            Some(sem) if kind == ObjectKind::PosixShm => (ObjectKind::PosixSem, sem),
            _ => (kind, file.as_str()),
        };
        out.insert(IpcObject {
            kind,
            name: format!("/{name}"),
            id: None,
            key: None,
            pids: Vec::new(),
            found_in: e.path().to_string_lossy().into_owned(),
            owner: owner_of(&e.path()),
        });
    }
}

fn list_tree(dir: &Path, recurse: bool, out: &mut BTreeSet<IpcObject>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if recurse && e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            list_tree(&path, true, out);
        }
        let shown = path.to_string_lossy().into_owned();
        out.insert(IpcObject {
            kind: ObjectKind::TempFile,
            name: shown.clone(),
            id: None,
            key: None,
            pids: Vec::new(),
            found_in: shown,
            owner: owner_of(&path),
        });
    }
}

fn list_sysv(dir: &Path, out: &mut BTreeSet<IpcObject>) {
    // Columns (proc(5)): msg: key msqid perms cbytes qnum lspid lrpid ...;
    // shm: key shmid perms size cpid lpid ...; sem: key semid perms nsems ...
    let tables = [
        ("msg", ObjectKind::SysvMsg, &[5usize, 6][..]),
        ("shm", ObjectKind::SysvShm, &[4usize, 5][..]),
        ("sem", ObjectKind::SysvSem, &[][..]),
    ];
    for (file, kind, pid_cols) in tables {
        let path = dir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let cuid = text
            .lines()
            .next()
            .and_then(|h| h.split_whitespace().position(|c| c == "cuid"));
        for line in text.lines().skip(1) {
            let cols: Vec<i64> = line
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            let (Some(&key), Some(&id)) = (cols.first(), cols.get(1)) else {
                continue;
            };
            out.insert(IpcObject {
                kind,
                name: format!("key {:#x} id {id}", key as i32),
                id: Some(id as i32),
                key: Some(key as i32),
                pids: pid_cols
                    .iter()
                    .filter_map(|&c| cols.get(c))
                    .map(|&p| p as i32)
                    .filter(|&p| p > 0)
                    .collect(),
                found_in: path.to_string_lossy().into_owned(),
                owner: cuid.and_then(|c| cols.get(c)).map(|&u| u as u32),
            });
        }
    }
}

/// The uid owning the file at `path` (`lstat(2)`), if it can be read.
fn owner_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.uid())
}
