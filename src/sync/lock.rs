//! `multiprocessing.Lock` and `RLock`: a [`RobustMutex`] in an anonymous
//! shared mapping of its own, so that it is shared with every child forked
//! after it was made.
//!
//! Python's `with lock:` is `let _guard = lock.acquire()?;` here; Python's
//! `lock.acquire(timeout=t)` is [`Lock::acquire_timeout`]; `lock.release()`
//! without holding the lock is an error in both.

use super::{MutexGuard, MutexKind, RobustMutex};
use crate::error::Result;
use crate::region::{AnonMapping, SharedRegion};
use std::time::Duration;

/// A lock shared by a process and the children it forks after making it:
/// process-shared, error-checking and (on Linux) robust. If a holder dies, the
/// next [`acquire`](Lock::acquire) succeeds and its guard's
/// [`previous_owner_died`](MutexGuard::previous_owner_died) is true (Python's
/// Lock would hang forever).
///
/// Dropping a `Lock` unmaps this process's view only: children still using
/// it keep their own mapping, so the mutex is deliberately never destroyed
/// (`pthread_mutex_destroy` of a process-shared mutex others may hold would be
/// undefined; unmapping the last view frees it).
#[derive(Debug)]
pub struct Lock {
    map: AnonMapping,
}

/// A recursive lock (`multiprocessing.RLock`): its holder may acquire it again
/// and must release it as many times. Otherwise it is a [`Lock`].
#[derive(Debug)]
pub struct RLock(Lock);

impl Lock {
    /// Maps a page of anonymous shared memory and initialises an
    /// error-checking robust mutex in it (`mmap(2)`, `pthread_mutex_init(3)`).
    pub fn new() -> Result<Lock> {
        Lock::with_kind(MutexKind::ErrorCheck)
    }

    fn with_kind(kind: MutexKind) -> Result<Lock> {
        let map = AnonMapping::new(std::mem::size_of::<RobustMutex>())?;
        let ptr = map.place::<RobustMutex>(0)?;
        // SAFETY: `ptr` is aligned, in bounds and in a fresh shared mapping
        // that lives as long as the Lock.
        unsafe { RobustMutex::init_at(ptr, kind)? };
        Ok(Lock { map })
    }

    /// The mutex itself (to wait on a [`SharedCondvar`](super::SharedCondvar)).
    pub fn mutex(&self) -> &RobustMutex {
        let ptr = self.map.as_ptr().cast::<RobustMutex>();
        // SAFETY: `with_kind` initialised a mutex at the start of the mapping,
        // which lives as long as `self`.
        unsafe { RobustMutex::from_ptr(ptr) }
    }

    /// Blocks until this process holds the lock (`pthread_mutex_lock(3)`);
    /// the guard releases it when dropped.
    pub fn acquire(&self) -> Result<MutexGuard<'_>> {
        self.mutex().lock()
    }

    /// Like [`acquire`](Self::acquire), but gives up with
    /// [`Error::Timeout`](crate::Error::Timeout) after `timeout`
    /// (`pthread_mutex_timedlock(3)`).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_>> {
        self.mutex().lock_timeout(timeout)
    }

    /// `acquire(block=False)`: the guard, or `None` if another holds the lock.
    pub fn try_acquire(&self) -> Result<Option<MutexGuard<'_>>> {
        self.mutex().try_lock()
    }

    /// Python's `release()` without a guard: an error (`EPERM`) unless this
    /// thread holds the lock, e.g. after `std::mem::forget(guard)`.
    pub fn release(&self) -> Result<()> {
        self.mutex().unlock()
    }
}

impl RLock {
    /// A recursive robust mutex in a fresh anonymous shared mapping.
    pub fn new() -> Result<RLock> {
        Lock::with_kind(MutexKind::Recursive).map(RLock)
    }
}

impl std::ops::Deref for RLock {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.0
    }
}
