//! Helpers shared by `tests/shm.rs` and `tests/shm_props.rs`: forking audited
//! children that do only async-signal-safe work, and counters in shared memory
//! for them to report through.
#![allow(dead_code)]

use ipckit::audit::Scope;
use ipckit::process::{self, ChildGuard};
use ipckit::shm::{AnonMapping, SharedRegion};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long any child may take before the test gives up on it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Forks a child that runs `work` and exits with 0 on `Ok`, 2 on `Err`; the
/// scope remembers it so that `assert_clean` checks it was reaped.
///
/// `work` must be async-signal-safe (the test binary is multi-threaded):
/// pthread and semaphore calls on shared memory, atomics, sleeps; no printing.
pub fn spawn(scope: &mut Scope, work: impl FnOnce() -> ipckit::Result<()>) -> ChildGuard {
    // SAFETY: the callers' closures only touch shared memory through
    // process-shared pthread objects, semaphores and atomics, and sleep.
    let child = unsafe { process::fork(|| if work().is_ok() { 0 } else { 2 }) }.expect("fork");
    scope.track(child.pid());
    child
}

/// Waits for every child (each within [`DEADLINE`]) and asserts it exited 0.
pub fn join(children: Vec<ChildGuard>) {
    for mut child in children {
        let status = child
            .wait_deadline(DEADLINE)
            .expect("child finished in time");
        assert!(status.success(), "child {} {status}", child.pid());
    }
}

/// Sleeps in the calling child forever (until it is killed).
pub fn park() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A few `AtomicU32` counters in an anonymous shared mapping: children
/// forked after it was made share them with the parent.
pub struct Slots(AnonMapping);

impl Slots {
    /// `n` counters, all 0.
    pub fn new(n: usize) -> Slots {
        Slots(AnonMapping::new(n * 4).expect("mmap"))
    }

    /// Counter `i`.
    pub fn at(&self, i: usize) -> &AtomicU32 {
        let ptr = self.0.place::<AtomicU32>(i * 4).expect("slot in range");
        // SAFETY: in bounds and aligned (checked by `place`); zeroed memory is
        // a valid AtomicU32; the mapping lives as long as `self`.
        unsafe { &*ptr }
    }

    /// Waits until counter `i` is at least `value` (at most [`DEADLINE`]).
    pub fn wait_for(&self, i: usize, value: u32) {
        let start = Instant::now();
        while self.at(i).load(Ordering::SeqCst) < value {
            assert!(start.elapsed() < DEADLINE, "slot {i} never reached {value}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
