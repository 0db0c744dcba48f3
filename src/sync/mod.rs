//! Synchronisation between processes (CATALOGUE.md section 5).
//!
//! | Python                                  | ipckit                          | system calls |
//! |-----------------------------------------|---------------------------------|--------------|
//! | `multiprocessing.Lock` / `RLock`        | [`Lock`], [`RLock`]             | `pthread_mutex_*` (process-shared, robust) |
//! | (building block) a mutex placed anywhere | [`RobustMutex`], [`MutexGuard`] | `pthread_mutex_init(3)` |
//! | `multiprocessing.Condition` (building block) | [`SharedCondvar`]          | `futex(2)` on a sequence word |
//! | `multiprocessing.Semaphore`             | [`Semaphore`], [`BoundedSemaphore`] | `sem_init(3)` with `pshared = 1` |
//! | `posix_ipc.Semaphore`                   | [`NamedSemaphore`], [`NamedSemOwner`] | `sem_open(3)`, `sem_unlink(3)` |
//! | `sysv_ipc.Semaphore`                    | [`SysvSemSet`], [`SysvSemOwner`] | `semget(2)`, `semop(2)`, `semtimedop(2)`, `semctl(2)` |
//!
//! The one lesson that goes beyond the tutorials: a process can die while it
//! holds a lock (a crash, `SIGKILL`, the OOM killer). Python's `Lock` then stays
//! locked forever and every other process hangs. [`Lock`] is a *robust* mutex:
//! the next process to acquire it gets it, and is told
//! ([`MutexGuard::previous_owner_died`]) that the data it guards may be half
//! updated. System V semaphores offer the same rescue with `SEM_UNDO`; POSIX
//! semaphores offer none (see [`NamedSemaphore`]).

mod condvar;
mod futex;
mod lock;
mod mutex;
mod semaphore;
mod sysv;

pub use condvar::SharedCondvar;
pub use lock::{Lock, RLock};
pub use mutex::{MutexGuard, MutexKind, RobustMutex};
pub use semaphore::{BoundedSemaphore, NamedSemOwner, NamedSemaphore, PosixSemaphore, Semaphore};
pub use sysv::{SemOp, SysvSemOwner, SysvSemSet};

use crate::error::{Error, Result};
use crate::sys;
use std::time::{Duration, Instant};

/// Turns the return value of a `pthread_*` call (0, or an error number) into
/// a `Result`.
fn pthread_check(call: &'static str, what: &str, ret: libc::c_int) -> Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(sys::errno_error(call, what, ret))
    }
}

/// The [`Error::Timeout`] of a timed acquire.
fn timeout_error(what: &str, after: Duration) -> Error {
    Error::Timeout {
        what: what.to_string(),
        after,
    }
}

/// Retries `attempt` (a non-blocking try) with a short sleep until it gives a
/// value or `timeout` passes: the fallback for systems without a timed call
/// (macOS has no `pthread_mutex_timedlock`, no `sem_timedwait`).
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn poll_until<T>(
    what: &str,
    timeout: Duration,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = attempt()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(timeout_error(what, timeout));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The macOS fallback, run here too: a value as soon as an attempt gives
    /// one, a timeout error only once the whole timeout has passed.
    #[test]
    fn poll_until_retries_until_a_value_or_the_timeout() {
        let mut tries = 0;
        let v = poll_until("thing", Duration::from_secs(20), || {
            tries += 1;
            Ok((tries == 3).then_some(42))
        });
        assert_eq!(v.unwrap(), 42);
        assert_eq!(tries, 3);
        let start = Instant::now();
        let timeout = Duration::from_millis(30);
        let e = poll_until::<()>("thing", timeout, || Ok(None)).unwrap_err();
        assert!(start.elapsed() >= timeout, "gave up early");
        assert!(matches!(e, crate::Error::Timeout { .. }), "{e}");
    }
}
