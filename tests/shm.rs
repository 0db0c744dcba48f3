//! CATALOGUE.md section 5: shared memory and semaphores.
//!
//! The reference programs run through the `ipckit` binary under the audit;
//! the library is tested in-process, every test under an `audit::Scope`
//! (children reaped, named objects unlinked, System V sets removed).

mod common;
mod shm_common;

use common::audited;
use common::pi::assert_pi_program;
use common::state::await_futex_sleep;
use ipckit::Error;
use ipckit::audit::Scope;
use ipckit::audit::ledger::ObjectKind;
use ipckit::shm::{
    AnonMapping, Array, Char, PosixName, SharedMemory, SharedRegion, Value, ValueOptions,
};
use ipckit::sync::{
    BoundedSemaphore, Lock, MutexKind, NamedSemaphore, PosixSemaphore, RLock, RobustMutex,
    Semaphore, SharedCondvar, SysvSemSet,
};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use shm_common::{DEADLINE, Slots, join, park, spawn};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The reference programs, under the audit.

#[test]
fn value_array_child_writes_are_seen_by_the_parent() {
    let run = audited("value-array", &[]);
    run.assert_clean();
    assert_eq!(
        run.lines(),
        ["3.1415927", "[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]"]
    );
}

#[test]
fn array_bytes_child_sets_index_0_and_parent_sees_hello() {
    let run = audited("array-bytes", &[]);
    run.assert_clean();
    let expected: Vec<String> = ["h", "e", "l", "l", "o", "H", "e", "l", "l", "o"]
        .iter()
        .map(|c| format!("b'{c}'"))
        .chain(["b'Hello'".to_string()])
        .collect();
    assert_eq!(run.lines(), expected);
}

#[test]
fn value_counter_under_the_lock_totals_5() {
    let run = audited("value-counter", &[]);
    run.assert_clean();
    assert_eq!(run.lines(), ["Final counter value: 5"]);
}

#[test]
fn semaphore_program_runs_three_tasks_and_gives_every_unit_back() {
    let run = audited("semaphore", &[]);
    run.assert_clean();
    let lines = run.lines();
    for i in 1..=3 {
        let n = lines
            .iter()
            .filter(|l| l.starts_with(&format!("Process {i} ")) && l.ends_with("task done"))
            .count();
        assert_eq!(n, 1, "{lines:?}");
    }
    assert_eq!(lines.last(), Some(&"semaphore value at the end: 3"));
}

#[rstest::rstest]
fn pi_programs_match_the_serial_answer_and_leave_nothing(
    #[values("pi-shm-sem", "pi-value")] id: &str,
    #[values(1000, 100_000, 1_000_000)] n: u64,
) {
    assert_pi_program(id, n);
}

#[rstest::rstest]
fn pi_programs_refuse_a_bad_n_and_leave_nothing(#[values("pi-shm-sem", "pi-value")] id: &str) {
    let run = audited(id, &["15"]);
    assert_eq!(run.exit_code(), Some(2), "{}", run.output);
    assert!(run.output.contains("multiple of 10"), "{}", run.output);
    for kind in ["zombies", "orphans", "leaks"] {
        assert!(run.findings(kind).is_empty(), "{kind}: {}", run.report);
    }
}

// ---------------------------------------------------------------------------
// Lock: robust, error-checking, timed.

#[test]
fn lock_held_by_a_killed_process_is_recovered_and_the_death_reported() {
    let mut scope = Scope::new();
    let lock = Lock::new().unwrap();
    let flags = Slots::new(1);
    let mut holder = spawn(&mut scope, || {
        std::mem::forget(lock.acquire()?);
        flags.at(0).store(1, Ordering::SeqCst);
        park()
    });
    flags.wait_for(0, 1);
    assert!(lock.try_acquire().unwrap().is_none(), "the child holds it");
    holder.signal(Signal::SIGKILL).unwrap();
    holder.wait_deadline(DEADLINE).unwrap();

    let start = Instant::now();
    let guard = lock.acquire_timeout(Duration::from_secs(5)).unwrap();
    assert!(guard.previous_owner_died(), "the new holder must be told");
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(guard);
    let again = lock.acquire_timeout(Duration::from_secs(1)).unwrap();
    assert!(
        !again.previous_owner_died(),
        "consistent again after recovery"
    );
    drop(again);
    scope.assert_clean();
}

/// `acquire(block=False)` on a free lock gets it (and the lock is then
/// held: a second try gets nothing until the first guard is dropped).
#[test]
fn try_acquire_gets_a_free_lock() {
    let lock = Lock::new().unwrap();
    let guard = lock.try_acquire().unwrap().expect("a free lock is taken");
    assert!(!guard.previous_owner_died());
    let shown = format!("{guard:?}");
    assert!(
        shown.starts_with("MutexGuard { mutex: RobustMutex@0x"),
        "{shown}"
    );
    drop(guard);
    let guard = lock
        .try_acquire()
        .unwrap()
        .expect("free again after a drop");
    guard.unlock().unwrap();
    assert!(
        lock.try_acquire().unwrap().is_some(),
        "free again after unlock()"
    );
}

#[test]
fn lock_acquire_timeout_gives_up_while_another_process_holds_it() {
    let mut scope = Scope::new();
    let lock = Lock::new().unwrap();
    let flags = Slots::new(1);
    let mut holder = spawn(&mut scope, || {
        let _guard = lock.acquire()?;
        flags.at(0).store(1, Ordering::SeqCst);
        flags.wait_for(0, 2);
        Ok(())
    });
    flags.wait_for(0, 1);
    let start = Instant::now();
    let err = lock
        .acquire_timeout(Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(100));
    flags.at(0).store(2, Ordering::SeqCst);
    holder.wait_deadline(DEADLINE).unwrap();
    assert!(!lock.acquire().unwrap().previous_owner_died());
    scope.assert_clean();
}

#[test]
fn releasing_a_lock_not_held_is_eperm_and_relocking_is_edeadlk() {
    let scope = Scope::new();
    let lock = Lock::new().unwrap();
    let err = lock.release().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EPERM), "{err}");
    let guard = lock.acquire().unwrap();
    let err = lock.acquire().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EDEADLK), "{err}");
    guard.unlock().unwrap();
    assert_eq!(lock.release().unwrap_err().errno(), Some(Errno::EPERM));
    scope.assert_clean();
}

#[test]
fn rlock_is_reentrant_and_counts_its_releases() {
    let rlock = RLock::new().unwrap();
    let outer = rlock.acquire().unwrap();
    let inner = rlock.acquire().unwrap();
    inner.unlock().unwrap();
    outer.unlock().unwrap();
    assert_eq!(rlock.release().unwrap_err().errno(), Some(Errno::EPERM));
}

/// A mutex at offset 0, a condition variable at 256 and a flag at 1024 of
/// one anonymous mapping, as a shared-memory queue would lay them out.
fn mutex_and_condvar(map: &AnonMapping) -> (&RobustMutex, &SharedCondvar) {
    // SAFETY: offset 0 of a 4096-byte mapping is aligned, in bounds and
    // unused; the returned reference borrows the mapping.
    let mutex = unsafe { RobustMutex::init_at(map.place(0).unwrap(), MutexKind::ErrorCheck) };
    // SAFETY: as for the mutex, at offset 256 (past the mutex's 40 bytes).
    let cond = unsafe { SharedCondvar::init_at(map.place(256).unwrap()) };
    (mutex.unwrap(), cond.unwrap())
}

/// How soon a notified process must be running again: far inside the
/// [`DEADLINE`] its timed wait would otherwise last.
const WOKEN: Duration = Duration::from_secs(2);

/// The waiter is caught asleep in its futex wait first; then one notify
/// (`notify_one` or `notify_all`) must wake it well before its own timeout (a
/// notify that does nothing fails).
#[rstest::rstest]
fn condvar_wakes_a_waiter_in_another_process(#[values(false, true)] all: bool) {
    let mut scope = Scope::new();
    let map = AnonMapping::new(4096).unwrap();
    let (mutex, cond) = mutex_and_condvar(&map);
    let shown = format!("{cond:?}");
    assert!(shown.starts_with("SharedCondvar { seq: 0"), "{shown}");
    let mut waiter = spawn(&mut scope, || {
        let mut guard = mutex.lock()?;
        while map.read::<u32>(1024)? == 0 {
            if !cond.wait_timeout(&mut guard, DEADLINE)? {
                return Err(Error::Closed("never notified".into()));
            }
        }
        Ok(())
    });
    await_futex_sleep(waiter.pid());
    let guard = mutex.lock().unwrap();
    map.write(1024, 1u32).unwrap();
    if all {
        cond.notify_all().unwrap();
    } else {
        cond.notify_one().unwrap();
    }
    drop(guard);
    assert!(waiter.wait_deadline(WOKEN).unwrap().success(), "not woken");
    // Nobody notifies now: within a few tries (wake-ups may be spurious) a
    // timed wait runs out.
    let mut guard = mutex.lock().unwrap();
    let timed_out = (0..5).any(|_| {
        !cond
            .wait_timeout(&mut guard, Duration::from_millis(20))
            .unwrap()
    });
    assert!(timed_out, "a timed wait never timed out");
    drop(guard);
    scope.assert_clean();
}

/// A waiter on a condition variable whose notifier is killed while holding
/// the mutex still wakes up, holding the mutex, and is told of the death.
#[test]
fn condvar_waiter_recovers_the_mutex_of_a_notifier_killed_holding_it() {
    let mut scope = Scope::new();
    let map = AnonMapping::new(4096).unwrap();
    let (mutex, cond) = mutex_and_condvar(&map);
    let flags = Slots::new(1);
    let mut guard = mutex.lock().unwrap();
    let mut child = spawn(&mut scope, || {
        std::mem::forget(mutex.lock()?);
        map.write(1024, 1u32)?;
        cond.notify_all()?;
        flags.at(0).store(1, Ordering::SeqCst);
        park()
    });
    let pid = child.pid();
    std::thread::scope(|s| {
        s.spawn(|| {
            flags.wait_for(0, 1);
            nix::sys::signal::kill(pid, Signal::SIGKILL).unwrap();
        });
        let start = Instant::now();
        while map.read::<u32>(1024).unwrap() == 0 {
            assert!(start.elapsed() < WOKEN, "never woken");
            cond.wait_timeout(&mut guard, DEADLINE).unwrap();
        }
    });
    assert!(
        guard.previous_owner_died(),
        "the notifier died holding the mutex"
    );
    drop(guard);
    child.wait_deadline(DEADLINE).unwrap();
    scope.assert_clean();
}

// ---------------------------------------------------------------------------
// The lost update, forced.

/// Two children each do `v = v + 1` on a lock-free Value. Semaphores force
/// both reads to happen before either write, so one update is lost: the
/// result is 1, every time.
#[test]
fn lost_update_without_a_lock_is_forced_deterministically() {
    let mut scope = Scope::new();
    let v = Value::with_options(
        0i32,
        &ValueOptions {
            lock: false,
            ..ValueOptions::default()
        },
    )
    .unwrap();
    let (a_read, b_read) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
    let a = spawn(&mut scope, || {
        let seen = v.get();
        a_read.release()?;
        b_read.acquire_timeout(DEADLINE)?;
        v.set(seen + 1);
        Ok(())
    });
    let b = spawn(&mut scope, || {
        a_read.acquire_timeout(DEADLINE)?;
        let seen = v.get();
        b_read.release()?;
        v.set(seen + 1);
        Ok(())
    });
    join(vec![a, b]);
    assert_eq!(v.get(), 1, "both read 0, both wrote 1: one update lost");
    scope.assert_clean();
}

/// The same two children with the Value's lock held around read-add-write:
/// B cannot read until A has written, so nothing is lost.
#[test]
fn the_lock_makes_the_same_interleaving_safe() {
    let mut scope = Scope::new();
    let v = Value::new(0i32).unwrap();
    let a_read = Semaphore::new(0).unwrap();
    let b_pid = Slots::new(1);
    let a = spawn(&mut scope, || {
        let _guard = v.get_lock()?.lock()?;
        let seen = v.get();
        a_read.release()?;
        b_pid.wait_for(0, 1);
        let b = nix::unistd::Pid::from_raw(b_pid.at(0).load(Ordering::SeqCst) as i32);
        await_futex_sleep(b); // B is now waiting for the lock
        v.set(seen + 1);
        Ok(())
    });
    let b = spawn(&mut scope, || {
        a_read.acquire_timeout(DEADLINE)?;
        b_pid.at(0).store(std::process::id(), Ordering::SeqCst);
        let _guard = v.get_lock()?.lock_timeout(DEADLINE)?;
        v.set(v.get() + 1);
        Ok(())
    });
    join(vec![a, b]);
    assert_eq!(v.get(), 2);
    scope.assert_clean();
}

// ---------------------------------------------------------------------------
// Semaphores.

#[test]
fn semaphore_counts_blocks_at_zero_and_times_out() {
    let sem = Semaphore::new(2).unwrap();
    assert_eq!(sem.get_value().unwrap(), 2);
    assert!(sem.try_acquire().unwrap());
    sem.acquire().unwrap();
    assert_eq!(sem.get_value().unwrap(), 0);
    assert!(!sem.try_acquire().unwrap());
    let start = Instant::now();
    let err = sem.acquire_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(50));
    sem.release().unwrap();
    assert_eq!(sem.get_value().unwrap(), 1);
}

#[test]
fn bounded_semaphore_rejects_a_release_past_its_limit() {
    let sem = BoundedSemaphore::new(1).unwrap();
    let err = sem.release().unwrap_err();
    assert!(
        err.to_string()
            .contains("released more times than acquired"),
        "{err}"
    );
    sem.acquire().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.get_value().unwrap(), 1);
}

#[test]
fn named_semaphore_is_shared_by_name_and_unlinked_by_its_owner() {
    let mut scope = Scope::new();
    let name = PosixName::new(&scope.name("sem")).unwrap();
    let owner = NamedSemaphore::create(&name, 0).unwrap();
    let err = NamedSemaphore::create(&name, 0).unwrap_err();
    assert_eq!(
        err.errno(),
        Some(Errno::EEXIST),
        "create is exclusive: {err}"
    );
    let child = spawn(&mut scope, || NamedSemaphore::open(&name)?.release());
    owner.acquire_timeout(DEADLINE).unwrap();
    join(vec![child]);
    drop(owner);
    let err = NamedSemaphore::open(&name).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT), "{err}");
    scope.assert_clean();
}

/// A named semaphore's errors carry its name; dropping the last handle
/// closes it (`sem_close(3)` unmaps `/dev/shm/sem.NAME` from this process).
#[test]
fn a_named_semaphore_is_named_in_errors_and_unmapped_when_dropped() {
    let scope = Scope::new();
    let name = PosixName::new(&scope.name("semmap")).unwrap();
    let owner = NamedSemaphore::create(&name, 0).unwrap();
    // glibc maps a temporary file that it then links to the name: the
    // mapping is found by the inode, not by the path.
    let file = format!("/dev/shm/sem.{}", name.as_str().trim_start_matches('/'));
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(file).unwrap()).to_string();
    let mapped = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some(inode.as_str()))
    };
    assert!(mapped());
    let e = owner
        .acquire_timeout(Duration::from_millis(10))
        .unwrap_err();
    assert!(e.to_string().contains(name.as_str()), "{e}");
    drop(owner);
    assert!(!mapped(), "still mapped after the last handle was dropped");
    scope.assert_clean();
}

/// A System V set is made with mode 0600 (`/proc/sysvipc/sem`, `proc(5)`):
/// only its owner may use it.
#[test]
fn a_sysv_semaphore_set_is_private_to_its_owner() {
    let mut scope = Scope::new();
    let set = SysvSemSet::create(1, 1).unwrap();
    scope.track_sysv(ObjectKind::SysvSem, set.id());
    assert_eq!(common::sysvipc_perms("sem", set.id()), "600");
    assert!(set.try_acquire(0).unwrap(), "a unit is there");
    assert!(!set.try_acquire(0).unwrap(), "and then none");
    set.release(0).unwrap();
    assert_eq!(
        set.last_pid(0).unwrap(),
        std::process::id() as i32,
        "GETPID: this process did the last operation"
    );
    assert!(set.try_acquire(0).unwrap(), "released, it is there again");
    let e = set.try_acquire(1).unwrap_err();
    assert!(
        e.to_string()
            .contains("1 is out of range for a set of 1 semaphores"),
        "{e}"
    );
    let e = set
        .acquire_timeout(0, Duration::from_millis(10))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("semaphore set {}", set.id())),
        "{e}"
    );
    // A handle on a set that another process removed fails: it is not "busy".
    let stale = SysvSemSet::open(set.id()).unwrap();
    SysvSemSet::open(set.id()).unwrap().remove().unwrap();
    let e = stale.try_acquire(0).unwrap_err();
    assert!(
        matches!(e.errno(), Some(Errno::EINVAL | Errno::EIDRM)),
        "{e}"
    );
    drop(set); // its owner finds it gone already
    scope.assert_clean();
}

/// POSIX semaphores do not know their holders: a unit taken by a process
/// that is killed is lost, and the next acquire can only time out.
#[test]
fn named_semaphore_held_by_a_killed_process_is_not_recovered() {
    let mut scope = Scope::new();
    let name = PosixName::new(&scope.name("dead")).unwrap();
    let sem = NamedSemaphore::create(&name, 1).unwrap();
    let flags = Slots::new(1);
    let mut holder = spawn(&mut scope, || {
        sem.acquire()?;
        flags.at(0).store(1, Ordering::SeqCst);
        park()
    });
    flags.wait_for(0, 1);
    holder.signal(Signal::SIGKILL).unwrap();
    holder.wait_deadline(DEADLINE).unwrap();
    assert_eq!(
        sem.get_value().unwrap(),
        0,
        "the dead holder's unit is gone"
    );
    let err = sem.acquire_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    drop(sem);
    scope.assert_clean();
}

#[test]
fn sysv_semaphore_held_by_a_killed_process_is_undone() {
    let mut scope = Scope::new();
    let set = SysvSemSet::create(1, 1).unwrap();
    scope.track_sysv(ObjectKind::SysvSem, set.id());
    let flags = Slots::new(1);
    let mut holder = spawn(&mut scope, || {
        set.acquire(0)?;
        flags.at(0).store(1, Ordering::SeqCst);
        park()
    });
    flags.wait_for(0, 1);
    assert_eq!(set.get_value(0).unwrap(), 0);
    assert!(!set.try_acquire(0).unwrap());
    holder.signal(Signal::SIGKILL).unwrap();
    holder.wait_deadline(DEADLINE).unwrap();
    let start = Instant::now();
    set.acquire_timeout(0, Duration::from_secs(5)).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "SEM_UNDO gave the unit back"
    );
    set.release(0).unwrap();
    drop(set);
    scope.assert_clean();
}

#[test]
fn sysv_timed_acquire_times_out_and_removal_is_seen() {
    let mut scope = Scope::new();
    let mut set = SysvSemSet::create(2, 0).unwrap();
    scope.track_sysv(ObjectKind::SysvSem, set.id());
    let start = Instant::now();
    let err = set
        .acquire_timeout(1, Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(SysvSemSet::open(set.id()).unwrap().count(), 2);
    let id = set.id();
    set.remove().unwrap();
    assert_no_such_sysv_set(id);
    scope.assert_clean();
}

/// Opening a System V set that does not exist (or was removed) is EINVAL or EIDRM.
fn assert_no_such_sysv_set(id: i32) {
    let err = SysvSemSet::open(id).unwrap_err();
    assert!(
        matches!(err.errno(), Some(Errno::EINVAL | Errno::EIDRM)),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Shared memory and bad input.

/// A create that fails after `shm_open` made the name (here `mmap`: 2^62
/// bytes fit a tmpfs file but no address space) unlinks the name again: a
/// failed create leaves nothing in /dev/shm.
#[cfg(target_os = "linux")] // tmpfs takes a 2^62-byte ftruncate
#[test]
fn a_create_that_fails_part_way_leaves_no_name() {
    let scope = Scope::new();
    let name = PosixName::new(&scope.name("half")).unwrap();
    let err = SharedMemory::create(&name, 1 << 62).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOMEM), "{err}");
    let err = SharedMemory::open(&name).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT), "{err}");
    scope.assert_clean();
}

#[test]
fn named_shared_memory_is_shared_sized_and_unlinked_by_its_owner() {
    let mut scope = Scope::new();
    let name = PosixName::new(&scope.name("rw")).unwrap();
    let owner = SharedMemory::create(&name, 8).unwrap();
    assert_eq!(owner.len(), 8);
    let file = format!("/dev/shm/{}", name.as_str().trim_start_matches('/'));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "only its owner may open it");
    let err = SharedMemory::create(&name, 8).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EEXIST), "{err}");
    let child = spawn(&mut scope, || SharedMemory::open(&name)?.write(0, 2.5f64));
    join(vec![child]);
    assert_eq!(owner.read::<f64>(0).unwrap(), 2.5);
    assert_eq!(
        SharedMemory::open_at_least(&name, 8).unwrap().len(),
        8,
        "exactly enough"
    );
    let err = SharedMemory::open_at_least(&name, 16).unwrap_err();
    assert!(
        err.to_string().contains("holds 8 bytes, 16 were expected"),
        "{err}"
    );
    assert!(owner.read::<f64>(4).is_err(), "misaligned");
    assert!(owner.read::<u64>(8).is_err(), "out of bounds");
    drop(owner);
    let err = SharedMemory::open(&name).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT), "{err}");
    assert!(err.to_string().contains(name.as_str()), "{err}");
    scope.assert_clean();
}

#[test]
fn bad_names_are_refused_with_the_reason() {
    for (name, why) in [
        ("pi_rw", "must start with '/', as in \"/pi_rw\""),
        ("/", "alone is not a name"),
        ("/a/b", "no '/' but the leading one"),
        ("/a\0b", "NUL"),
    ] {
        let err = PosixName::new(name).unwrap_err().to_string();
        assert!(err.contains(why), "{name:?}: {err}");
    }
    let long = format!("/{}", "x".repeat(ipckit::shm::MAX_NAME_LEN));
    assert!(
        PosixName::new(&long)
            .unwrap_err()
            .to_string()
            .contains("limit")
    );
    assert!(PosixName::new(&long[..ipckit::shm::MAX_NAME_LEN]).is_ok());
    let (a, b) = (
        PosixName::unique("t").unwrap(),
        PosixName::unique("t").unwrap(),
    );
    assert_ne!(a, b, "unique names never repeat");
    assert!(a.as_str().contains(&std::process::id().to_string()));
}

#[test]
fn zero_and_impossible_sizes_are_refused() {
    let scope = Scope::new();
    let name = PosixName::new(&scope.name("zero")).unwrap();
    let err = SharedMemory::create(&name, 0).unwrap_err();
    assert!(err.to_string().contains("0 bytes"), "{err}");
    // Negative sizes cannot be expressed (sizes are usize); a size no file can
    // have is refused before any system call.
    let err = SharedMemory::create(&name, usize::MAX).unwrap_err();
    assert!(
        err.to_string().contains("more than a file can hold"),
        "{err}"
    );
    assert!(ipckit::shm::AnonMapping::new(0).is_err());
    let err = Array::<f64>::zeroed(usize::MAX / 4).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    assert!(SysvSemSet::create(0, 1).is_err());
    scope.assert_clean();
}

#[test]
fn opening_objects_that_do_not_exist_names_them() {
    let scope = Scope::new();
    let name = PosixName::new(&scope.name("nothing")).unwrap();
    for err in [
        SharedMemory::open(&name).unwrap_err(),
        NamedSemaphore::open(&name).unwrap_err(),
        Value::<f64>::open(&name).unwrap_err(),
    ] {
        assert_eq!(err.errno(), Some(Errno::ENOENT), "{err}");
        assert!(err.to_string().contains(name.as_str()), "{err}");
    }
    assert_no_such_sysv_set(i32::MAX);
    scope.assert_clean();
}

#[test]
fn typecode_mismatches_are_clear_errors() {
    let scope = Scope::new();
    let name = PosixName::new(&scope.name("val")).unwrap();
    let named = ValueOptions {
        name: Some(name.clone()),
        ..ValueOptions::default()
    };
    let v = Value::with_options(2.5f64, &named).unwrap();
    let err = Value::<i32>::open(&name).unwrap_err().to_string();
    assert!(
        err.contains("'d'") && err.contains("'i'") && err.contains("double"),
        "{err}"
    );
    assert_eq!(Value::<f64>::open(&name).unwrap().get(), 2.5);
    drop(v);

    let arr = Array::from_slice_with(&[1u8, 2], &named).unwrap();
    let err = Value::<u8>::open(&name).unwrap_err().to_string();
    assert!(err.contains("open it as an Array"), "{err}");
    drop(arr);

    let raw = SharedMemory::create(&name, 4096).unwrap();
    let err = Array::<u8>::open(&name).unwrap_err().to_string();
    assert!(err.contains("not a Value or Array"), "{err}");
    drop(raw);

    let wrong = ValueOptions {
        typecode: Some('d'),
        ..ValueOptions::default()
    };
    assert!(Value::with_options(1i32, &wrong).is_err());
    assert!(ipckit::shm::describe('x').is_err());
    scope.assert_clean();
}

/// An opener trusts nothing in the object: one whose file was cut short
/// (it claims more items than it holds) is refused, not read out of bounds;
/// a longer file is fine; the lock is there exactly when the creator made one.
#[cfg(target_os = "linux")] // the object's file is cut through /dev/shm
#[test]
fn an_opened_array_checks_its_size_and_keeps_the_creators_lock_choice() {
    let scope = Scope::new();
    let name = PosixName::new(&scope.name("cut")).unwrap();
    for lock in [true, false] {
        let options = ValueOptions {
            name: Some(name.clone()),
            lock,
            ..ValueOptions::default()
        };
        let made = Array::from_slice_with(&[1u64, 2, 3, 4], &options).unwrap();
        let opened = Array::<u64>::open(&name).unwrap();
        assert_eq!(opened.to_vec(), [1, 2, 3, 4]);
        assert_eq!(opened.get_lock().is_ok(), lock, "lock: {lock}");
        drop((made, opened));
    }
    let made = Array::from_slice_with(
        &[7u64; 4],
        &ValueOptions {
            name: Some(name.clone()),
            ..ValueOptions::default()
        },
    )
    .unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(format!(
            "/dev/shm/{}",
            name.as_str().trim_start_matches('/')
        ))
        .unwrap();
    let full = file.metadata().unwrap().len();
    file.set_len(full + 4096).unwrap();
    assert_eq!(Array::<u64>::open(&name).unwrap().to_vec(), [7; 4]);
    file.set_len(full - 1).unwrap();
    let err = Array::<u64>::open(&name).unwrap_err().to_string();
    assert!(err.contains("claims 4 items but holds only"), "{err}");
    drop(made);
    scope.assert_clean();
}

#[test]
fn a_values_lock_is_recursive_as_in_python() {
    let v = Value::new(1u8).unwrap();
    let outer = v.get_lock().unwrap().lock().unwrap();
    let inner = v.get_lock().unwrap().lock().unwrap();
    drop((inner, outer));
    let err = v.get_lock().unwrap().unlock().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EPERM), "{err}");
}

#[test]
fn arrays_index_check_and_lock_free_objects_have_no_lock() {
    let arr = Array::<i16>::zeroed(3).unwrap();
    assert_eq!(arr.to_vec(), [0, 0, 0]);
    assert!(
        arr.set(3, 1)
            .unwrap_err()
            .to_string()
            .contains("out of range")
    );
    assert!(arr.get(7).is_err());
    let raw = Array::from_slice_with(
        &[Char(b'a')],
        &ValueOptions {
            lock: false,
            ..ValueOptions::default()
        },
    )
    .unwrap();
    assert!(
        raw.get_lock()
            .unwrap_err()
            .to_string()
            .contains("lock: false")
    );
    assert_eq!(raw.to_string(), "b'a'");
    assert!(Array::<u32>::zeroed(0).unwrap().is_empty());
    assert!(!Array::<u32>::zeroed(1).unwrap().is_empty());
}

/// A `'c'` array's `value` is its bytes up to the first NUL, as in Python
/// (`Array('c', b'Hi\0there').value == b'Hi'`); `{:?}` shows the typecode
/// and the Python value.
#[test]
fn char_arrays_value_stops_at_nul_and_debug_shows_the_typecode() {
    let chars = |s: &[u8]| s.iter().map(|&b| Char(b)).collect::<Vec<_>>();
    let hi = Array::from_slice(&chars(b"Hi\0there")).unwrap();
    assert_eq!(hi.value(), b"Hi");
    let full = Array::from_slice(&chars(b"abc")).unwrap();
    assert_eq!(full.value(), b"abc");
    assert_eq!(Array::from_slice(&chars(b"\0x")).unwrap().value(), b"");
    assert_eq!(format!("{full:?}"), "Array('c', b'abc')");
    let ints = Array::from_slice(&[1i32, -2]).unwrap();
    assert_eq!(format!("{ints:?}"), "Array('i', [1, -2])");
    assert_eq!(
        format!("{:?}", Value::new(2.5f64).unwrap()),
        "Value('d', 2.5)"
    );
}

/// A timed-out wait on an unnamed semaphore names it so in its error.
#[test]
fn a_timed_out_semaphore_wait_says_which_semaphore() {
    use ipckit::sync::PosixSemaphore;
    let sem = Semaphore::new(0).unwrap();
    let e = sem.acquire_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("unnamed semaphore"), "{e}");
}
