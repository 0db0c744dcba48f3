//! POSIX semaphores: unnamed ones in shared memory (`sem_init(3)` with
//! `pshared = 1`, what `multiprocessing.Semaphore` uses on Linux) and named ones
//! (`sem_open(3)`, what `posix_ipc.Semaphore` gives).
//!
//! The steps of the tutorials:
//! 1. make the semaphore with an initial count (`Semaphore(3)`, or
//!    `sem_open("/pi_sem_lock", O_CREAT | O_EXCL, 0600, 1)`);
//! 2. `acquire` (`sem_wait`) decrements the count, blocking while it is 0;
//!    `try_acquire` (`sem_trywait`) and `acquire_timeout` (`sem_timedwait`)
//!    give up instead of blocking;
//! 3. `release` (`sem_post`) increments it and wakes a waiter;
//!    `get_value` (`sem_getvalue`) reads it;
//! 4. a named semaphore is closed (`sem_close`) by each user and removed
//!    (`sem_unlink`) by its owner.
//!
//! A POSIX semaphore does not know who decremented it: if a process dies
//! between acquire and release, its unit is lost for good and the others may
//! wait forever. For a lock that survives its holder's death use
//! [`Lock`](super::Lock); for a semaphore, a System V set with `SEM_UNDO`
//! ([`SysvSemSet`](super::SysvSemSet)).
//!
//! macOS has named semaphores but neither unnamed ones (`sem_init` fails with
//! `ENOSYS`; [`Semaphore::new`] is UNSUPPORTED there), `sem_timedwait` (timed
//! acquires poll `sem_trywait`) nor a working `sem_getvalue`.

use crate::error::{Error, Result};
use crate::names::{Owner, PosixName, Removable};
#[cfg(target_os = "linux")]
use crate::region::{AnonMapping, SharedRegion};
use crate::sys;
use nix::errno::Errno;
use std::time::Duration;

mod sealed {
    pub trait Sealed {}
}

/// The operations every POSIX semaphore has; implemented by [`Semaphore`] and
/// [`NamedSemaphore`] (and thus by [`BoundedSemaphore`] and [`NamedSemOwner`]
/// through `Deref`). Sealed: the default methods pass [`sem_ptr`](Self::sem_ptr)
/// to `sem_wait` and friends, so only these types, whose pointer is always a
/// live semaphore, may implement it.
pub trait PosixSemaphore: sealed::Sealed {
    /// The `sem_t` the calls act on.
    fn sem_ptr(&self) -> *mut libc::sem_t;

    /// What to call it in error messages (its name, or "unnamed semaphore").
    fn label(&self) -> &str;

    /// `sem_wait(3)`: decrements the count, blocking while it is 0 (retried
    /// when a signal interrupts the wait).
    fn acquire(&self) -> Result<()> {
        loop {
            // SAFETY: `sem_ptr` points to a live, initialised semaphore.
            let ret = unsafe { libc::sem_wait(self.sem_ptr()) };
            match sys::check("sem_wait", self.label(), ret) {
                Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    }

    /// `sem_trywait(3)`: decrements the count if it is above 0; false if it is 0.
    fn try_acquire(&self) -> Result<bool> {
        // SAFETY: `sem_ptr` points to a live, initialised semaphore.
        let ret = unsafe { libc::sem_trywait(self.sem_ptr()) };
        match sys::check("sem_trywait", self.label(), ret) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.errno(), Some(Errno::EAGAIN | Errno::EINTR)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `sem_timedwait(3)`: like [`acquire`](Self::acquire), but fails with
    /// [`Error::Timeout`] after `timeout` (macOS: polls `sem_trywait`).
    fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        #[cfg(target_os = "linux")]
        {
            let deadline = crate::sys::deadline_on(libc::CLOCK_REALTIME, timeout);
            loop {
                // SAFETY: a live semaphore and a valid timespec.
                let ret = unsafe { libc::sem_timedwait(self.sem_ptr(), &deadline) };
                match sys::check("sem_timedwait", self.label(), ret) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                    Err(e) if e.errno() == Some(Errno::ETIMEDOUT) => {
                        return Err(super::timeout_error(self.label(), timeout));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        super::poll_until(self.label(), timeout, || {
            self.try_acquire().map(|got| got.then_some(()))
        })
    }

    /// `sem_post(3)`: increments the count, waking one waiter.
    fn release(&self) -> Result<()> {
        // SAFETY: `sem_ptr` points to a live, initialised semaphore.
        let ret = unsafe { libc::sem_post(self.sem_ptr()) };
        sys::check("sem_post", self.label(), ret).map(drop)
    }

    /// `sem_getvalue(3)`: the current count (a snapshot: it may change at once).
    /// UNSUPPORTED on macOS, whose `sem_getvalue` always fails.
    fn get_value(&self) -> Result<u32> {
        #[cfg(target_os = "linux")]
        {
            let mut value: libc::c_int = 0;
            // SAFETY: a live semaphore and a writable int.
            let ret = unsafe { libc::sem_getvalue(self.sem_ptr(), &mut value) };
            sys::check("sem_getvalue", self.label(), ret)?;
            Ok(value.max(0) as u32)
        }
        #[cfg(not(target_os = "linux"))]
        Err(Error::Unsupported(format!(
            "sem_getvalue ({}): this system does not report a semaphore's count",
            self.label()
        )))
    }
}

/// An unnamed, process-shared semaphore (`multiprocessing.Semaphore`): a
/// `sem_t` initialised with `sem_init(sem, 1, value)` in an anonymous shared
/// mapping, so children forked afterwards share it. Linux only.
///
/// Like [`Lock`](super::Lock), it is never `sem_destroy`ed: children may still
/// be using their view of it when the creator drops its own.
#[derive(Debug)]
pub struct Semaphore {
    #[cfg(target_os = "linux")]
    map: AnonMapping,
}

impl Semaphore {
    /// Maps anonymous shared memory and `sem_init(3)`s a semaphore with
    /// `pshared = 1` and count `value` in it.
    pub fn new(value: u32) -> Result<Semaphore> {
        #[cfg(target_os = "linux")]
        {
            let map = AnonMapping::new(std::mem::size_of::<libc::sem_t>())?;
            let ptr = map.place::<libc::sem_t>(0)?;
            // SAFETY: `ptr` is aligned, in bounds, in a fresh shared mapping
            // that lives as long as the Semaphore.
            let ret = unsafe { libc::sem_init(ptr, 1, value) };
            sys::check("sem_init", "unnamed semaphore", ret)?;
            Ok(Semaphore { map })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = value;
            Err(Error::Unsupported(
                "unnamed process-shared semaphores (sem_init with pshared=1); use a NamedSemaphore"
                    .into(),
            ))
        }
    }
}

impl sealed::Sealed for Semaphore {}

impl PosixSemaphore for Semaphore {
    fn sem_ptr(&self) -> *mut libc::sem_t {
        #[cfg(target_os = "linux")]
        return self.map.as_ptr().cast();
        #[cfg(not(target_os = "linux"))]
        unreachable!("Semaphore::new never succeeds here")
    }

    fn label(&self) -> &str {
        "unnamed semaphore"
    }
}

/// `multiprocessing.BoundedSemaphore`: a [`Semaphore`] whose `release` fails
/// instead of raising the count above its initial value (a release without a
/// matching acquire is a bug). As in Python, the check and the post are two
/// steps, so two releases racing past the limit are not both caught.
#[derive(Debug)]
pub struct BoundedSemaphore {
    sem: Semaphore,
    max: u32,
}

impl BoundedSemaphore {
    /// A semaphore with count and limit `value`.
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore {
            sem: Semaphore::new(value)?,
            max: value,
        })
    }

    /// `sem_post(3)` after checking the count with `sem_getvalue(3)`; at the
    /// limit it is [`Error::Invalid`] (Python's "semaphore or lock released
    /// too many times").
    pub fn release(&self) -> Result<()> {
        if self.sem.get_value()? >= self.max {
            return Err(Error::invalid(
                "release",
                format!(
                    "the bounded semaphore is already at its limit {}: released more times than acquired",
                    self.max
                ),
            ));
        }
        self.sem.release()
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        &self.sem
    }
}

/// A handle on a named POSIX semaphore (`sem_open(3)`); `sem_close(3)` on drop.
///
/// **Not recoverable**: if a process is killed while it holds a unit, the
/// unit is never given back, and the others block (a timed acquire times
/// out). Use [`Lock`](super::Lock) (a robust mutex) when holders may die, or
/// a [`SysvSemSet`](super::SysvSemSet), whose `SEM_UNDO` gives units back.
#[derive(Debug)]
pub struct NamedSemaphore {
    name: PosixName,
    sem: *mut libc::sem_t,
}

// SAFETY: a POSIX semaphore is made for concurrent use from many threads and
// processes; the handle is only closed on drop, when no borrow is left.
unsafe impl Send for NamedSemaphore {}
// SAFETY: see `Send`.
unsafe impl Sync for NamedSemaphore {}

/// The creator of a named semaphore: derefs to it and `sem_unlink(3)`s the
/// name when dropped (or at [`Owner::remove`]). Open handles stay usable; the
/// semaphore is destroyed when the last one closes.
pub type NamedSemOwner = Owner<NamedSemaphore>;

impl NamedSemaphore {
    /// `sem_open(name, O_CREAT | O_EXCL, 0600, value)`: creates it exclusively
    /// (`EEXIST` if the name is taken).
    pub fn create(name: &PosixName, value: u32) -> Result<NamedSemOwner> {
        let mode: libc::c_uint = 0o600;
        // SAFETY: a valid C string; O_CREAT takes the mode and value arguments.
        let sem = unsafe {
            libc::sem_open(
                name.as_c_str().as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                mode,
                value,
            )
        };
        NamedSemaphore::opened(name, sem).map(Owner::new)
    }

    /// `sem_open(name, 0)`: opens an existing one (`ENOENT` if there is none).
    pub fn open(name: &PosixName) -> Result<NamedSemaphore> {
        // SAFETY: a valid C string; without O_CREAT no more arguments are read.
        let sem = unsafe { libc::sem_open(name.as_c_str().as_ptr(), 0) };
        NamedSemaphore::opened(name, sem)
    }

    /// The semaphore's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    fn opened(name: &PosixName, sem: *mut libc::sem_t) -> Result<NamedSemaphore> {
        if sem == libc::SEM_FAILED {
            return Err(sys::errno_error("sem_open", name, Errno::last_raw()));
        }
        Ok(NamedSemaphore {
            name: name.clone(),
            sem,
        })
    }
}

impl sealed::Sealed for NamedSemaphore {}

impl PosixSemaphore for NamedSemaphore {
    fn sem_ptr(&self) -> *mut libc::sem_t {
        self.sem
    }

    fn label(&self) -> &str {
        self.name.as_str()
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // SAFETY: `sem` came from a successful sem_open and is closed once.
        unsafe { libc::sem_close(self.sem) };
    }
}

impl Removable for NamedSemaphore {
    /// `sem_unlink(3)`: processes that have it open keep using it.
    fn remove_name(&self) -> Result<()> {
        // SAFETY: a valid, NUL-terminated C string.
        let ret = unsafe { libc::sem_unlink(self.name.as_c_str().as_ptr()) };
        sys::check("sem_unlink", &self.name, ret).map(drop)
    }
}
