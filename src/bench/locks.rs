//! Contended locks: two processes (parent and a forked child, placed where
//! the placement says) each do `n` operations on one shared lock, and the
//! figure is the wall time over the `2n` operations (the fork included, the
//! same for every side).
//!
//! - `value-lock`: `with v.get_lock(): v.value += 1` on a shared `Value`,
//!   against `sem_wait(3)`, `+= 1`, `sem_post(3)` on a bare `sem_t` in an
//!   anonymous shared mapping. Both check the final count is `2n`.
//! - `semaphore`: `acquire` + `release` of the kit's `Semaphore(1)`, against
//!   `sem_wait` + `sem_post`.

use super::{Bench, Ctx, PLACES, Python, Unit, Where, check_child, pin_maybe, place_cpus};
use crate::error::{Error, Result};
use crate::shm::Value;
use crate::sync::{PosixSemaphore, Semaphore};
use std::time::Instant;

/// `value-lock`.
pub const VALUE_LOCK: Bench = Bench {
    name: "value-lock",
    op: "Value+Lock increment, two processes contending",
    unit: Unit::Nanos,
    ops: 50_000,
    places: &PLACES,
    sides: &[("ipckit", value_kit), ("raw", raw::value)],
    python: Python::Peer,
};

/// `semaphore`.
pub const SEMAPHORE: Bench = Bench {
    name: "semaphore",
    op: "semaphore acquire + release, two processes contending",
    unit: Unit::Nanos,
    ops: 50_000,
    places: &PLACES,
    sides: &[("ipckit", semaphore_kit), ("raw", raw::semaphore)],
    python: Python::Peer,
};

/// Seconds per operation when parent and child each do `op` `n` times.
fn contend(place: Where, n: u64, op: impl Fn() -> Result<()>) -> Result<f64> {
    let (parent_cpu, child_cpu) = place_cpus(place);
    let _pin = pin_maybe(parent_cpu)?;
    let start = Instant::now();
    let mut child = super::pinned_child(child_cpu, || {
        (0..n).try_for_each(|_| op()).map_or(1, |()| 0)
    })?;
    (0..n).try_for_each(|_| op())?;
    check_child("contending child", child.wait_deadline(super::PATIENCE)?)?;
    Ok(start.elapsed().as_secs_f64() / (2 * n) as f64)
}

/// An error unless a shared count ended at `2n` (a lock that let two
/// increments overlap loses one).
fn expect_count(count: i64, n: u64) -> Result<()> {
    if count == 2 * n as i64 {
        Ok(())
    } else {
        Err(Error::Protocol(format!(
            "two processes made {n} locked increments each, and the count is {count}"
        )))
    }
}

fn value_kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let v = Value::<i64>::new(0)?;
    let per = contend(place, n, || {
        let _held = v.get_lock()?.lock()?;
        v.set(v.get() + 1);
        Ok(())
    })?;
    expect_count(v.get(), n)?;
    Ok(per)
}

fn semaphore_kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let s = Semaphore::new(1)?;
    contend(place, n, || {
        s.acquire()?;
        s.release()
    })
}

/// The baselines on a bare `sem_t` (Linux: macOS has no unnamed semaphores).
#[cfg(target_os = "linux")]
mod raw {
    use super::super::{Ctx, Where};
    use super::{contend, expect_count};
    use crate::error::{Error, Result};
    use crate::shm::{AnonMapping, SharedRegion};

    /// A semaphore and a count, side by side in shared memory.
    #[repr(C)]
    struct Shared {
        sem: libc::sem_t,
        count: i64,
    }

    /// `sem_init(3)` (pshared, 1) in a fresh anonymous shared mapping.
    fn shared() -> Result<(AnonMapping, *mut Shared)> {
        let map = AnonMapping::new(std::mem::size_of::<Shared>())?;
        let p = map.place::<Shared>(0)?;
        // SAFETY: `p` is aligned and in bounds of a zeroed shared mapping that
        // outlives every use below.
        let r = unsafe { libc::sem_init(sem(p), 1, 1) };
        if r != 0 {
            return Err(Error::io("sem_init", std::io::Error::last_os_error()));
        }
        Ok((map, p))
    }

    /// `sem_wait`, then `inside`, then `sem_post`.
    fn locked(p: *mut Shared, inside: impl Fn()) -> Result<()> {
        // SAFETY: `p` points to an initialised semaphore in a live mapping.
        if unsafe { libc::sem_wait(sem(p)) } != 0 {
            return Err(Error::io("sem_wait", std::io::Error::last_os_error()));
        }
        inside();
        // SAFETY: as above.
        unsafe { libc::sem_post(sem(p)) };
        Ok(())
    }

    /// The semaphore's address inside the `Shared` at `p`.
    fn sem(p: *mut Shared) -> *mut libc::sem_t {
        // SAFETY: every `p` here comes from `shared()`: aligned and in bounds of
        // a mapping that outlives its use; no reference is made, only an address.
        unsafe { &raw mut (*p).sem }
    }

    pub fn value(_: &Ctx, place: Where, n: u64) -> Result<f64> {
        let (_map, p) = shared()?;
        // SAFETY: the count is only touched while the semaphore is held.
        let bump = || unsafe { (*p).count += 1 };
        let per = contend(place, n, || locked(p, bump))?;
        // SAFETY: both processes are done (the child was waited for).
        expect_count(unsafe { (*p).count }, n)?;
        Ok(per)
    }

    pub fn semaphore(_: &Ctx, place: Where, n: u64) -> Result<f64> {
        let (_map, p) = shared()?;
        contend(place, n, || locked(p, || {}))
    }
}

/// No raw baselines where unnamed process-shared semaphores do not exist.
#[cfg(not(target_os = "linux"))]
mod raw {
    use super::super::{Ctx, Where};
    use crate::error::{Error, Result};

    pub fn value(_: &Ctx, _: Where, _: u64) -> Result<f64> {
        Err(Error::Unsupported("unnamed semaphores: Linux only".into()))
    }

    pub fn semaphore(_: &Ctx, _: Where, _: u64) -> Result<f64> {
        Err(Error::Unsupported("unnamed semaphores: Linux only".into()))
    }
}
