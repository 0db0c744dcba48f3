//! A process-shared condition variable that no kill can wedge, the building
//! block of `multiprocessing.Condition` and of the shared-memory queue: a
//! sequence word and a futex (`futex(2)`, `FUTEX_WAIT` / `FUTEX_WAKE`), next
//! to a [`RobustMutex`].
//!
//! # Why not `pthread_cond_t`
//! glibc's process-shared condition variable keeps its waiter bookkeeping
//! (groups, counts) in the shared memory itself. A waiter `SIGKILL`ed inside
//! `pthread_cond_wait` leaves that bookkeeping half updated, and the next
//! `pthread_cond_signal` can spin forever in `__condvar_quiesce_and_switch_g1`
//! waiting for the dead waiter. Robust mutexes have a kernel rescue
//! (`set_robust_list(2)`); condition variables have none.
//!
//! # The steps
//! 1. A waiter holds the mutex, finds its condition false, and reads the
//!    sequence word `seq` (still under the mutex);
//! 2. it unlocks the mutex and calls `futex(FUTEX_WAIT, seq)`: the kernel puts
//!    it to sleep only if the word still holds `seq`;
//! 3. a notifier changes the state under the mutex, then adds one to the word
//!    and calls `futex(FUTEX_WAKE)`. Since it bumped the word after the waiter
//!    read it, the waiter either sees the new value (and does not sleep) or is
//!    already asleep (and is woken): no wake-up is lost;
//! 4. the waiter locks the mutex again and re-checks its condition.
//!
//! What a kill can do: a waiter killed while asleep is dropped from the
//! kernel's queue and leaves nothing behind (at most a too-high `waiters`
//! count, which costs an unneeded `FUTEX_WAKE`). A waiter woken by
//! [`notify_one`](SharedCondvar::notify_one) and killed before it re-checked
//! takes that one wake-up with it; [`notify_all`](SharedCondvar::notify_all)
//! has no such hole. A notifier killed between changing the state and
//! notifying never notifies: notify *before* publishing the change, while
//! still holding the mutex (woken waiters then wait for the mutex, and find
//! either the change or, if the notifier died, a recovered mutex and the old
//! state). The [`Queue`](crate::queue::Queue) does both.

use super::MutexGuard;
use super::futex;
use crate::error::Result;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A futex-based condition variable meant to live in shared memory.
#[repr(C)]
pub struct SharedCondvar {
    /// Bumped by every notify; waiters sleep while it holds the value they saw.
    seq: AtomicU32,
    /// Processes between reading `seq` and waking up (never too low: a killed
    /// waiter leaves it one too high). Notifies skip the system call at 0.
    waiters: AtomicU32,
}

impl SharedCondvar {
    /// Initialises a process-shared condition variable at `ptr`: a zeroed
    /// sequence word (no system call: a futex needs no setup).
    ///
    /// # Safety
    /// As for [`RobustMutex::init_at`](super::RobustMutex::init_at): `ptr` is
    /// valid, aligned, unused, in shared memory, and stays mapped for `'a`.
    pub unsafe fn init_at<'a>(ptr: *mut SharedCondvar) -> Result<&'a SharedCondvar> {
        // SAFETY: the caller vouches that `ptr` is valid for writes and stays
        // mapped for `'a`.
        unsafe {
            ptr.write(SharedCondvar {
                seq: AtomicU32::new(0),
                waiters: AtomicU32::new(0),
            });
        }
        // SAFETY: just initialised; mapped for `'a` (caller's promise).
        Ok(unsafe { &*ptr })
    }

    /// A condition variable [`init_at`](Self::init_at) already initialised.
    ///
    /// # Safety
    /// `ptr` must point to an initialised `SharedCondvar` mapped for `'a`.
    pub unsafe fn from_ptr<'a>(ptr: *const SharedCondvar) -> &'a SharedCondvar {
        // SAFETY: forwarded to the caller.
        unsafe { &*ptr }
    }

    /// Unlocks the guard's mutex, sleeps until notified (`futex(2)`,
    /// `FUTEX_WAIT`), relocks. If the mutex's holder died meanwhile, the
    /// guard's [`previous_owner_died`](MutexGuard::previous_owner_died)
    /// becomes true. Wake-ups can be spurious: re-check the condition.
    pub fn wait(&self, guard: &mut MutexGuard<'_>) -> Result<()> {
        self.sleep(guard, None).map(|_| ())
    }

    /// Like [`wait`](Self::wait) for at most `timeout`. Returns false if the
    /// time ran out (the mutex is held again either way).
    pub fn wait_timeout(&self, guard: &mut MutexGuard<'_>, timeout: Duration) -> Result<bool> {
        self.sleep(guard, Some(timeout))
    }

    fn sleep(&self, guard: &mut MutexGuard<'_>, timeout: Option<Duration>) -> Result<bool> {
        let seen = self.seq.load(Ordering::SeqCst);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let slept = guard.mutex().unlock().and_then(|()| {
            let woken = futex::wait(&self.seq, seen, timeout);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            woken
        });
        guard.relock()?;
        slept
    }

    /// Wakes at least one waiter (`FUTEX_WAKE` of 1). See the module doc for
    /// why robust code prefers [`notify_all`](Self::notify_all).
    pub fn notify_one(&self) -> Result<()> {
        self.notify(1)
    }

    /// Wakes every waiter (`FUTEX_WAKE` of all).
    pub fn notify_all(&self) -> Result<()> {
        self.notify(u32::MAX)
    }

    fn notify(&self, n: u32) -> Result<()> {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake(&self.seq, n)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for SharedCondvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCondvar")
            .field("seq", &self.seq.load(Ordering::Relaxed))
            .field("waiters", &self.waiters.load(Ordering::Relaxed))
            .finish()
    }
}
