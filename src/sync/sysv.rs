//! System V semaphore sets: `semget(2)`, `semop(2)`, `semtimedop(2)`,
//! `semctl(2)` (what `sysv_ipc.Semaphore` wraps).
//!
//! The steps:
//! 1. `semget(IPC_PRIVATE, n, IPC_CREAT | IPC_EXCL | 0600)` makes a set of `n`
//!    counters with a fresh id (`IPC_PRIVATE` is the "no key given" of the
//!    tutorials: a new, unused one);
//! 2. `semctl(SETVAL)` sets each counter's initial value;
//! 3. `semop` applies a list of changes atomically: -1 waits while the counter
//!    is 0 (acquire), +1 adds (release). With `SEM_UNDO` the kernel remembers
//!    the change and reverts it when the process exits, even by `SIGKILL`:
//!    a killed holder's acquire is undone and the unit comes back;
//! 4. `semtimedop` is the same with a timeout (there is no glibc wrapper in
//!    the `libc` crate: we make the system call directly);
//! 5. `semctl(IPC_RMID)` removes the set; until then it outlives every
//!    process (`ipcs -s` lists it).

use crate::error::{Error, Result};
use crate::names::{Owner, Removable};
use crate::sys;
use nix::errno::Errno;
use std::time::{Duration, Instant};

/// One change of a [`SysvSemSet::op`] call (a `struct sembuf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemOp {
    /// Which counter of the set.
    pub index: u16,
    /// How much to add (negative: wait until it can be subtracted; 0: wait
    /// until the counter is 0).
    pub delta: i16,
    /// `SEM_UNDO`: revert this change when the process exits.
    pub undo: bool,
}

/// A System V semaphore set, by id. Every process that knows the id (a child
/// inherits it) can use it; it does not close and does not remove on drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysvSemSet {
    id: i32,
    count: u16,
}

/// The creator of a set: derefs to it and removes it (`IPC_RMID`) on drop
/// (or at [`Owner::remove`]).
pub type SysvSemOwner = Owner<SysvSemSet>;

impl SysvSemSet {
    /// Steps 1 and 2: a new private set of `count` counters, each set to
    /// `initial`. A count of 0 is [`Error::Invalid`].
    pub fn create(count: u16, initial: u16) -> Result<SysvSemOwner> {
        if count == 0 {
            return Err(Error::invalid(
                "semaphore count",
                "a System V set needs at least 1 semaphore",
            ));
        }
        // SAFETY: semget takes plain integers.
        let ret = unsafe {
            libc::semget(
                libc::IPC_PRIVATE,
                count.into(),
                libc::IPC_CREAT | libc::IPC_EXCL | 0o600,
            )
        };
        let id = sys::check("semget", "IPC_PRIVATE", ret)?;
        let owner = Owner::new(SysvSemSet { id, count });
        for index in 0..count {
            owner.set_value(index, initial)?;
        }
        Ok(owner)
    }

    /// Looks up an existing set by id (`semctl(IPC_STAT)`); a set that does
    /// not exist (or was removed) is `EINVAL`/`EIDRM`.
    pub fn open(id: i32) -> Result<SysvSemSet> {
        // SAFETY: semid_ds is plain data; all zeros is a valid value.
        let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT takes a pointer to a semid_ds (the `buf` member of
        // union semun, passed in the same register as the union).
        let ret = unsafe { libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) };
        sys::check("semctl(IPC_STAT)", format!("semaphore set {id}"), ret)?;
        Ok(SysvSemSet {
            id,
            count: ds.sem_nsems as u16,
        })
    }

    /// The set's id (as `ipcs -s` shows it).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// How many counters the set has.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Step 3/4: applies `ops` atomically (`semop(2)`), or with a `timeout`
    /// (`semtimedop(2)`; [`Error::Timeout`] when it runs out; UNSUPPORTED
    /// outside Linux). Interrupted calls are retried with the time left.
    pub fn op(&self, ops: &[SemOp], timeout: Option<Duration>) -> Result<()> {
        let mut bufs = self.sembufs(ops, 0)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ret = match deadline {
                None => {
                    // SAFETY: `bufs` is a valid array of `bufs.len()` sembufs.
                    unsafe { libc::semop(self.id, bufs.as_mut_ptr(), bufs.len()) }
                }
                Some(deadline) => self.semtimedop(&mut bufs, deadline)?,
            };
            match sys::check("semop", self.what(), ret) {
                Ok(_) => return Ok(()),
                Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                Err(e) if e.errno() == Some(Errno::EAGAIN) && timeout.is_some() => {
                    return Err(Error::Timeout {
                        what: self.what(),
                        after: timeout.unwrap_or_default(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Acquire counter `index` (-1, with `SEM_UNDO`): blocks while it is 0.
    pub fn acquire(&self, index: u16) -> Result<()> {
        self.op(&[Self::unit(index, -1)], None)
    }

    /// [`acquire`](Self::acquire) with a deadline (`semtimedop(2)`).
    pub fn acquire_timeout(&self, index: u16, timeout: Duration) -> Result<()> {
        self.op(&[Self::unit(index, -1)], Some(timeout))
    }

    /// Acquire without blocking (`IPC_NOWAIT`): false if the counter is 0.
    pub fn try_acquire(&self, index: u16) -> Result<bool> {
        let mut bufs = self.sembufs(&[Self::unit(index, -1)], libc::IPC_NOWAIT as i16)?;
        // SAFETY: `bufs` is a valid array of one sembuf.
        let ret = unsafe { libc::semop(self.id, bufs.as_mut_ptr(), bufs.len()) };
        match sys::check("semop", self.what(), ret) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(Errno::EAGAIN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Release counter `index` (+1, with `SEM_UNDO`, which cancels the undo
    /// entry of the matching acquire).
    pub fn release(&self, index: u16) -> Result<()> {
        self.op(&[Self::unit(index, 1)], None)
    }

    /// `semctl(GETVAL)`: the counter's value.
    pub fn get_value(&self, index: u16) -> Result<u16> {
        self.check_index(index)?;
        // SAFETY: GETVAL takes no fourth argument.
        let ret = unsafe { libc::semctl(self.id, index.into(), libc::GETVAL) };
        Ok(sys::check("semctl(GETVAL)", self.what(), ret)? as u16)
    }

    /// `semctl(SETVAL)`: sets the counter (and clears every process's undo
    /// entries for it).
    pub fn set_value(&self, index: u16, value: u16) -> Result<()> {
        self.check_index(index)?;
        let value = libc::c_int::from(value);
        // SAFETY: SETVAL takes the `val` member of union semun, an int.
        let ret = unsafe { libc::semctl(self.id, index.into(), libc::SETVAL, value) };
        sys::check("semctl(SETVAL)", self.what(), ret).map(drop)
    }

    /// `semctl(GETPID)`: the pid of the last process that changed counter `index`.
    pub fn last_pid(&self, index: u16) -> Result<i32> {
        self.check_index(index)?;
        // SAFETY: GETPID takes no fourth argument.
        let ret = unsafe { libc::semctl(self.id, index.into(), libc::GETPID) };
        sys::check("semctl(GETPID)", self.what(), ret)
    }

    /// Step 5 for a set this process does not own: `semctl(IPC_RMID)`.
    /// Processes blocked on it wake with `EIDRM`.
    pub fn remove(self) -> Result<()> {
        self.remove_name()
    }

    fn unit(index: u16, delta: i16) -> SemOp {
        SemOp {
            index,
            delta,
            undo: true,
        }
    }

    fn what(&self) -> String {
        format!("semaphore set {}", self.id)
    }

    fn check_index(&self, index: u16) -> Result<()> {
        if index < self.count {
            return Ok(());
        }
        Err(Error::invalid(
            "semaphore index",
            format!(
                "{index} is out of range for a set of {} semaphores",
                self.count
            ),
        ))
    }

    fn sembufs(&self, ops: &[SemOp], extra_flags: i16) -> Result<Vec<libc::sembuf>> {
        ops.iter()
            .map(|op| {
                self.check_index(op.index)?;
                let undo = if op.undo { libc::SEM_UNDO as i16 } else { 0 };
                Ok(libc::sembuf {
                    sem_num: op.index,
                    sem_op: op.delta,
                    sem_flg: undo | extra_flags,
                })
            })
            .collect()
    }

    /// `semtimedop(2)` through `syscall(2)`: the timeout is relative, so it is
    /// recomputed from the deadline on every (re)try.
    #[cfg(target_os = "linux")]
    fn semtimedop(&self, bufs: &mut [libc::sembuf], deadline: Instant) -> Result<libc::c_int> {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as _,
        };
        // SAFETY: the arguments are those of semtimedop(2): a set id, a valid
        // array of `bufs.len()` sembufs, and a valid timespec.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_semtimedop,
                self.id,
                bufs.as_mut_ptr(),
                bufs.len(),
                &ts,
            )
        };
        Ok(ret as libc::c_int)
    }

    #[cfg(not(target_os = "linux"))]
    #[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
    fn semtimedop(&self, _bufs: &mut [libc::sembuf], _deadline: Instant) -> Result<libc::c_int> {
        Err(Error::Unsupported(
            "semtimedop (timed System V semaphore operations)".into(),
        ))
    }
}

impl Removable for SysvSemSet {
    /// `semctl(IPC_RMID)`.
    fn remove_name(&self) -> Result<()> {
        // SAFETY: IPC_RMID takes no fourth argument.
        let ret = unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) };
        sys::check("semctl(IPC_RMID)", self.what(), ret).map(drop)
    }
}
