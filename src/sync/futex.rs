//! The two halves of a futex, the kernel's "sleep while this word still holds
//! this value" primitive (`futex(2)`), on a 32-bit word in shared memory.
//!
//! - [`wait`]: `FUTEX_WAIT` — the kernel compares the word with the value the
//!   caller last saw and, if they are still equal, puts the caller to sleep on
//!   the word's address, atomically; a change that happened in between makes
//!   the call return at once (`EAGAIN`), so no wake-up can fall between the
//!   check and the sleep.
//! - [`wake`]: `FUTEX_WAKE` — wakes up to `n` processes sleeping on the word.
//!
//! The kernel keeps the sleepers in a queue of its own, keyed by the word's
//! physical page and offset (hence no `FUTEX_PRIVATE_FLAG`: the word is shared
//! between processes). A sleeper that is killed is simply taken off that queue:
//! unlike a `pthread_cond_t`, whose bookkeeping lives in user memory and which a
//! waiter killed inside `pthread_cond_wait` can leave half updated, a futex has
//! no user-space state a death can corrupt.
//!
//! macOS has no futex: there [`wait`] polls the word every millisecond.

use crate::error::Result;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// `futex(2)` with `FUTEX_WAIT`: sleeps while `word` holds `seen`, for at most
/// `timeout` (`None`: no limit). Returns `Ok(false)` if the time ran out,
/// `Ok(true)` otherwise — woken, the word changed before the call, or a signal
/// interrupted the sleep: callers re-check their condition in every case.
#[cfg(target_os = "linux")]
pub(crate) fn wait(word: &AtomicU32, seen: u32, timeout: Option<Duration>) -> Result<bool> {
    let relative = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as _,
    });
    let timespec = relative
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic; the kernel only reads
    // it; `timespec` is null or points to a timespec that outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if ret == 0 {
        return Ok(true);
    }
    match nix::errno::Errno::last() {
        nix::errno::Errno::ETIMEDOUT => Ok(false),
        nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR => Ok(true),
        errno => Err(crate::sys::errno_error(
            "futex(FUTEX_WAIT)",
            "a shared wait word",
            errno as i32,
        )),
    }
}

/// `futex(2)` with `FUTEX_WAKE`: wakes at most `n` processes sleeping on
/// `word` (`u32::MAX` for all) and returns how many it woke.
#[cfg(target_os = "linux")]
pub(crate) fn wake(word: &AtomicU32, n: u32) -> Result<usize> {
    let n = n.min(i32::MAX as u32);
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE does not
    // touch memory, it only looks the address up in the kernel's queues.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if ret < 0 {
        return Err(crate::sys::errno_error(
            "futex(FUTEX_WAKE)",
            "a shared wait word",
            nix::errno::Errno::last() as i32,
        ));
    }
    Ok(ret as usize)
}

/// No futex on this system: polls `word` every millisecond until it changes
/// or `timeout` runs out.
#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
pub(crate) fn wait(word: &AtomicU32, seen: u32, timeout: Option<Duration>) -> Result<bool> {
    use std::sync::atomic::Ordering;
    let start = std::time::Instant::now();
    while word.load(Ordering::Acquire) == seen {
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(true)
}

/// No futex on this system: pollers see the change by themselves.
#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
pub(crate) fn wake(_word: &AtomicU32, _n: u32) -> Result<usize> {
    Ok(0)
}
