//! A process-shared, robust, error-checking mutex that can be placed in any
//! shared memory: `pthread_mutex_init(3)` with
//! `pthread_mutexattr_setpshared(PTHREAD_PROCESS_SHARED)`,
//! `pthread_mutexattr_setrobust(PTHREAD_MUTEX_ROBUST)` and
//! `pthread_mutexattr_settype(PTHREAD_MUTEX_ERRORCHECK)`.
//!
//! The steps:
//! 1. make an attribute object and set the three attributes;
//! 2. initialise the mutex *inside shared memory* with it (a mutex in ordinary
//!    memory is copied by `fork`, and each copy locks only itself);
//! 3. lock it (`pthread_mutex_lock`, or `pthread_mutex_timedlock` with a
//!    deadline). If the previous owner died holding it, the call returns
//!    `EOWNERDEAD`: we now hold it, and we mark it usable again with
//!    `pthread_mutex_consistent(3)` and tell the caller;
//! 4. unlock it (`pthread_mutex_unlock`); with the error-checking type,
//!    unlocking a mutex this thread does not hold fails with `EPERM` instead of
//!    corrupting it.
//!
//! The kernel knows which robust mutexes a thread holds through the list that
//! glibc registers with `set_robust_list(2)`; when the thread dies it marks
//! each one "owner died" and wakes a waiter.
//!
//! macOS has no robust mutexes and no `pthread_mutex_timedlock`: there the
//! mutex is process-shared and error-checking but NOT robust (a dead holder
//! leaves it locked; a timed acquire then times out), and timed acquires poll.

use super::pthread_check;
use crate::error::Result;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::time::Duration;

/// A `pthread_mutex_t` meant to live in shared memory. Make one with
/// [`RobustMutex::init_at`] (or use [`Lock`](super::Lock), which does it for
/// you in a fresh anonymous mapping).
#[repr(C)]
pub struct RobustMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a process-shared pthread mutex is made to be used concurrently from
// many threads and processes; every access goes through pthread calls.
unsafe impl Sync for RobustMutex {}
// SAFETY: see `Sync`; the mutex has no thread affinity until it is locked,
// and a lock is represented by a `MutexGuard`, which is not `Send`.
unsafe impl Send for RobustMutex {}

/// The kind of mutex (`pthread_mutexattr_settype(3)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutexKind {
    /// `PTHREAD_MUTEX_ERRORCHECK`: locking it twice from one thread is
    /// `EDEADLK`, unlocking it without holding it is `EPERM` (Python's `Lock`).
    ErrorCheck,
    /// `PTHREAD_MUTEX_RECURSIVE`: the holder may lock it again and must unlock
    /// it as many times (Python's `RLock`); unlocking it without holding it is
    /// `EPERM`.
    Recursive,
}

/// Proof that this thread holds a [`RobustMutex`]; unlocks it on drop.
/// Not `Send`: a pthread mutex must be unlocked by the thread that locked it.
#[must_use = "the mutex is unlocked as soon as the guard is dropped"]
pub struct MutexGuard<'a> {
    mutex: &'a RobustMutex,
    previous_owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl RobustMutex {
    /// True where mutexes survive their holder's death (Linux); false where
    /// this is a plain process-shared mutex (macOS).
    pub const IS_ROBUST: bool = cfg!(target_os = "linux");

    /// Initialises a mutex at `ptr` (`pthread_mutex_init(3)` with the
    /// process-shared, robust and `kind` attributes) and returns it.
    ///
    /// # Safety
    /// `ptr` must be valid for writes of a `RobustMutex`, suitably aligned,
    /// stay mapped for `'a`, and not hold a mutex anyone is using. To be
    /// shared, it must point into shared memory (an
    /// [`AnonMapping`](crate::shm::AnonMapping) or a
    /// [`SharedMemory`](crate::shm::SharedMemory)).
    pub unsafe fn init_at<'a>(ptr: *mut RobustMutex, kind: MutexKind) -> Result<&'a RobustMutex> {
        let what = "robust mutex";
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is writable storage for an attribute object.
        pthread_check("pthread_mutexattr_init", what, unsafe {
            libc::pthread_mutexattr_init(attr.as_mut_ptr())
        })?;
        let attr = AttrGuard(attr.as_mut_ptr());
        let typ = match kind {
            MutexKind::ErrorCheck => libc::PTHREAD_MUTEX_ERRORCHECK,
            MutexKind::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
        };
        pthread_check(
            "pthread_mutexattr_settype",
            what,
            // SAFETY: `attr.0` was initialised above and is destroyed only by `AttrGuard`.
            unsafe { libc::pthread_mutexattr_settype(attr.0, typ) },
        )?;
        pthread_check(
            "pthread_mutexattr_setpshared",
            what,
            // SAFETY: as above.
            unsafe { libc::pthread_mutexattr_setpshared(attr.0, libc::PTHREAD_PROCESS_SHARED) },
        )?;
        #[cfg(target_os = "linux")]
        pthread_check(
            "pthread_mutexattr_setrobust",
            what,
            // SAFETY: as above.
            unsafe { libc::pthread_mutexattr_setrobust(attr.0, libc::PTHREAD_MUTEX_ROBUST) },
        )?;
        // SAFETY: the caller guarantees `ptr` is valid and aligned: the field's
        // address is inside it (no reference is made).
        let inner = unsafe { &raw mut (*ptr).inner }.cast::<libc::pthread_mutex_t>();
        pthread_check(
            "pthread_mutex_init",
            what,
            // SAFETY: `inner` is valid, aligned and unused (the caller's promise);
            // `attr.0` is an initialised attribute object.
            unsafe { libc::pthread_mutex_init(inner, attr.0) },
        )?;
        // SAFETY: just initialised; the caller keeps it mapped for `'a`.
        Ok(unsafe { &*ptr })
    }

    /// A mutex that [`init_at`](Self::init_at) already initialised at `ptr`,
    /// possibly in another process that shares the memory.
    ///
    /// # Safety
    /// `ptr` must point to an initialised `RobustMutex` that stays mapped for `'a`.
    pub unsafe fn from_ptr<'a>(ptr: *const RobustMutex) -> &'a RobustMutex {
        // SAFETY: forwarded to the caller.
        unsafe { &*ptr }
    }

    /// `pthread_mutex_lock(3)`: blocks until this thread holds the mutex. If the
    /// previous holder died, the guard says so and the mutex is made consistent.
    /// Locking an [`ErrorCheck`](MutexKind::ErrorCheck) mutex this thread
    /// already holds is `EDEADLK`.
    pub fn lock(&self) -> Result<MutexGuard<'_>> {
        // SAFETY: the mutex was initialised (construction invariant).
        let ret = unsafe { libc::pthread_mutex_lock(self.raw()) };
        self.locked("pthread_mutex_lock", ret)
    }

    /// `pthread_mutex_trylock(3)`: the guard, or `None` if another holds it.
    pub fn try_lock(&self) -> Result<Option<MutexGuard<'_>>> {
        // SAFETY: the mutex was initialised (construction invariant).
        let ret = unsafe { libc::pthread_mutex_trylock(self.raw()) };
        if ret == libc::EBUSY {
            return Ok(None);
        }
        self.locked("pthread_mutex_trylock", ret).map(Some)
    }

    /// `pthread_mutex_timedlock(3)`: like [`lock`](Self::lock), but fails with
    /// [`Error::Timeout`](crate::Error::Timeout) after `timeout`. (On macOS,
    /// which lacks the call, it retries `trylock` every millisecond.)
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_>> {
        #[cfg(target_os = "linux")]
        {
            // The deadline is on CLOCK_REALTIME, as pthread_mutex_timedlock wants.
            let deadline = crate::sys::deadline_on(libc::CLOCK_REALTIME, timeout);
            // SAFETY: the mutex was initialised; `deadline` is a valid timespec.
            let ret = unsafe { libc::pthread_mutex_timedlock(self.raw(), &deadline) };
            if ret == libc::ETIMEDOUT {
                return Err(super::timeout_error("the robust mutex", timeout));
            }
            self.locked("pthread_mutex_timedlock", ret)
        }
        #[cfg(not(target_os = "linux"))]
        super::poll_until("the mutex", timeout, || self.try_lock())
    }

    /// `pthread_mutex_unlock(3)` without a guard (Python's `Lock.release()`):
    /// fails with `EPERM` if this thread does not hold the mutex.
    pub fn unlock(&self) -> Result<()> {
        // SAFETY: the mutex was initialised; unlocking a mutex we do not hold
        // is reported (EPERM) by the error-checking and recursive kinds.
        let ret = unsafe { libc::pthread_mutex_unlock(self.raw()) };
        pthread_check("pthread_mutex_unlock", "robust mutex", ret)
    }

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.inner.get()
    }

    /// Turns the result of a lock call into a guard, recovering a mutex whose
    /// owner died (`EOWNERDEAD` -> `pthread_mutex_consistent(3)`).
    fn locked(&self, call: &'static str, ret: libc::c_int) -> Result<MutexGuard<'_>> {
        let died = self.owner_died(call, ret)?;
        Ok(MutexGuard {
            mutex: self,
            previous_owner_died: died,
            _not_send: PhantomData,
        })
    }

    /// `Ok(false)` for 0, `Ok(true)` after recovering from `EOWNERDEAD`, the
    /// error otherwise (`ENOTRECOVERABLE`, `EDEADLK`, ...).
    fn owner_died(&self, call: &'static str, ret: libc::c_int) -> Result<bool> {
        #[cfg(target_os = "linux")]
        if ret == libc::EOWNERDEAD {
            // SAFETY: EOWNERDEAD means we now hold the robust mutex, which is
            // exactly when pthread_mutex_consistent may be called.
            let ret = unsafe { libc::pthread_mutex_consistent(self.raw()) };
            pthread_check("pthread_mutex_consistent", "robust mutex", ret)?;
            return Ok(true);
        }
        pthread_check(call, "robust mutex", ret).map(|()| false)
    }
}

impl std::fmt::Debug for RobustMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RobustMutex@{:p}", self.inner.get())
    }
}

impl<'a> MutexGuard<'a> {
    /// True if the previous holder died while holding the mutex (its process
    /// was killed or crashed): what the mutex guards may be half updated, and
    /// the new holder should check or repair it.
    pub fn previous_owner_died(&self) -> bool {
        self.previous_owner_died
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &'a RobustMutex {
        self.mutex
    }

    /// Unlocks now and reports errors (dropping the guard ignores them).
    pub fn unlock(self) -> Result<()> {
        let mutex = self.mutex;
        std::mem::forget(self);
        mutex.unlock()
    }

    /// Locks the mutex again after a condition variable released it
    /// (`pthread_mutex_lock(3)`), noting a holder that died meanwhile.
    pub(super) fn relock(&mut self) -> Result<()> {
        // SAFETY: the mutex was initialised (construction invariant).
        let ret = unsafe { libc::pthread_mutex_lock(self.mutex.raw()) };
        if self.mutex.owner_died("pthread_mutex_lock", ret)? {
            self.previous_owner_died = true;
        }
        Ok(())
    }
}

impl Drop for MutexGuard<'_> {
    fn drop(&mut self) {
        let _ = self.mutex.unlock();
    }
}

impl std::fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexGuard")
            .field("mutex", self.mutex)
            .field("previous_owner_died", &self.previous_owner_died)
            .finish()
    }
}

/// Destroys a mutex attribute object (`pthread_mutexattr_destroy(3)`).
struct AttrGuard(*mut libc::pthread_mutexattr_t);

impl Drop for AttrGuard {
    fn drop(&mut self) {
        // SAFETY: the attribute object was initialised and is not used after this.
        unsafe { libc::pthread_mutexattr_destroy(self.0) };
    }
}
