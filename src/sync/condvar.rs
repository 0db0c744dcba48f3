//! A process-shared condition variable, the building block of
//! `multiprocessing.Condition` and of a shared-memory queue:
//! `pthread_cond_init(3)` with `pthread_condattr_setpshared(PTHREAD_PROCESS_SHARED)`.
//!
//! The steps: initialise it in shared memory next to a [`RobustMutex`]; a
//! waiter locks the mutex, checks its condition, and while it does not hold
//! calls `pthread_cond_wait`, which unlocks, sleeps and relocks atomically; a
//! notifier changes the state under the mutex and calls
//! `pthread_cond_signal`/`pthread_cond_broadcast`.
//!
//! Wake-ups can be spurious, and a waiter killed while waiting can swallow a
//! signal meant for another, so waiters always re-check their condition in a
//! loop and use [`wait_timeout`](SharedCondvar::wait_timeout) with a deadline.

use super::{MutexGuard, pthread_check};
use crate::error::Result;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::time::Duration;

/// A `pthread_cond_t` meant to live in shared memory.
#[repr(C)]
pub struct SharedCondvar {
    inner: UnsafeCell<libc::pthread_cond_t>,
}

// SAFETY: a process-shared condition variable is made for concurrent use;
// every access goes through pthread calls.
unsafe impl Sync for SharedCondvar {}
// SAFETY: see `Sync`.
unsafe impl Send for SharedCondvar {}

/// The clock the deadlines of timed waits are measured on: monotonic where
/// `pthread_condattr_setclock(3)` exists, so that a change of the wall clock
/// does not stretch a timeout.
#[cfg(target_os = "linux")]
const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
#[cfg(not(target_os = "linux"))]
const CLOCK: libc::clockid_t = libc::CLOCK_REALTIME;

impl SharedCondvar {
    /// Initialises a process-shared condition variable at `ptr`
    /// (`pthread_cond_init(3)`).
    ///
    /// # Safety
    /// As for [`RobustMutex::init_at`](super::RobustMutex::init_at): `ptr` is
    /// valid, aligned, unused, in shared memory, and stays mapped for `'a`.
    pub unsafe fn init_at<'a>(ptr: *mut SharedCondvar) -> Result<&'a SharedCondvar> {
        let what = "shared condition variable";
        let mut attr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
        // SAFETY: `attr` is writable storage; it is initialised before use and
        // destroyed before returning; the caller vouches for `ptr`.
        unsafe {
            pthread_check(
                "pthread_condattr_init",
                what,
                libc::pthread_condattr_init(attr.as_mut_ptr()),
            )?;
            let attr = attr.as_mut_ptr();
            let mut ret = libc::pthread_condattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED);
            #[cfg(target_os = "linux")]
            if ret == 0 {
                ret = libc::pthread_condattr_setclock(attr, CLOCK);
            }
            if ret == 0 {
                let inner = std::ptr::addr_of_mut!((*ptr).inner).cast::<libc::pthread_cond_t>();
                ret = libc::pthread_cond_init(inner, attr);
            }
            libc::pthread_condattr_destroy(attr);
            pthread_check("pthread_cond_init", what, ret)?;
            Ok(&*ptr)
        }
    }

    /// A condition variable [`init_at`](Self::init_at) already initialised.
    ///
    /// # Safety
    /// `ptr` must point to an initialised `SharedCondvar` mapped for `'a`.
    pub unsafe fn from_ptr<'a>(ptr: *const SharedCondvar) -> &'a SharedCondvar {
        // SAFETY: forwarded to the caller.
        unsafe { &*ptr }
    }

    /// `pthread_cond_wait(3)`: unlocks the guard's mutex, sleeps until
    /// notified, relocks. If the mutex's holder died meanwhile, the guard's
    /// [`previous_owner_died`](MutexGuard::previous_owner_died) becomes true.
    pub fn wait(&self, guard: &mut MutexGuard<'_>) -> Result<()> {
        let mutex = guard.mutex();
        // SAFETY: both objects are initialised and the guard proves we hold the mutex.
        let ret = unsafe { libc::pthread_cond_wait(self.inner.get(), mutex.raw()) };
        if mutex.owner_died("pthread_cond_wait", ret)? {
            guard.set_previous_owner_died();
        }
        Ok(())
    }

    /// `pthread_cond_timedwait(3)`: like [`wait`](Self::wait) for at most
    /// `timeout`. Returns false if the time ran out (the mutex is held again
    /// either way).
    pub fn wait_timeout(&self, guard: &mut MutexGuard<'_>, timeout: Duration) -> Result<bool> {
        let mutex = guard.mutex();
        let deadline = super::deadline_on(CLOCK, timeout);
        // SAFETY: both objects are initialised, the guard proves we hold the
        // mutex, and `deadline` is a valid timespec.
        let ret = unsafe { libc::pthread_cond_timedwait(self.inner.get(), mutex.raw(), &deadline) };
        if ret == libc::ETIMEDOUT {
            return Ok(false);
        }
        if mutex.owner_died("pthread_cond_timedwait", ret)? {
            guard.set_previous_owner_died();
        }
        Ok(true)
    }

    /// `pthread_cond_signal(3)`: wakes at least one waiter.
    pub fn notify_one(&self) -> Result<()> {
        // SAFETY: the condition variable is initialised.
        let ret = unsafe { libc::pthread_cond_signal(self.inner.get()) };
        pthread_check("pthread_cond_signal", "shared condition variable", ret)
    }

    /// `pthread_cond_broadcast(3)`: wakes every waiter.
    pub fn notify_all(&self) -> Result<()> {
        // SAFETY: the condition variable is initialised.
        let ret = unsafe { libc::pthread_cond_broadcast(self.inner.get()) };
        pthread_check("pthread_cond_broadcast", "shared condition variable", ret)
    }
}

impl std::fmt::Debug for SharedCondvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedCondvar@{:p}", self.inner.get())
    }
}
