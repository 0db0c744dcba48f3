//! Tests that change process-wide state: the `SIGCHLD` disposition and the
//! subreaper flag. They live in this file alone (a test binary, hence a
//! process, of its own), each is `#[serial]`, and each guard restores what it
//! changed. Children do only async-signal-safe work.

#![cfg(target_os = "linux")]

use ipckit::audit::{Scope, Subreaper, is_subreaper};
use ipckit::process::{self, SigchldIgnored};
use serial_test::serial;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

fn sigchld_is_ignored() -> bool {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let probe = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: we read the current action by installing SIG_DFL and put the old one straight back.
    let old = unsafe { sigaction(Signal::SIGCHLD, &probe) }.unwrap();
    // SAFETY: restoring exactly what was there.
    unsafe { sigaction(Signal::SIGCHLD, &old) }.unwrap();
    old.handler() == SigHandler::SigIgn
}

/// Waits until `pid` is gone from /proc entirely (not even a zombie).
fn await_gone(pid: nix::unistd::Pid) {
    let start = Instant::now();
    while process::state_of(pid).unwrap().is_some() {
        assert!(
            start.elapsed() < DEADLINE,
            "{pid} still exists: {:?}",
            process::state_of(pid)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
#[serial]
fn with_sigchld_ignored_children_never_become_zombies_and_wait_fails_echild() {
    assert!(!sigchld_is_ignored());
    let mut scope = Scope::new();
    {
        let _guard = SigchldIgnored::new().unwrap();
        assert!(sigchld_is_ignored());
        let mut pids = Vec::new();
        for _ in 0..5 {
            // SAFETY: the child only returns.
            let child = unsafe { process::fork(|| 0) }.unwrap();
            scope.track(child.pid());
            pids.push(child.into_pid());
        }
        for &pid in &pids {
            await_gone(pid);
            let err = process::wait_exit(pid).unwrap_err();
            assert_eq!(err.errno(), Some(nix::errno::Errno::ECHILD));
        }
    }
    assert!(
        !sigchld_is_ignored(),
        "the guard restored the default disposition"
    );
    scope.assert_clean();
}

#[test]
#[serial]
fn a_subreaper_adopts_the_orphan_of_a_double_fork_and_reaps_it() {
    assert!(!is_subreaper().unwrap());
    let mut scope = Scope::new();
    {
        let _guard = Subreaper::acquire().unwrap();
        assert!(is_subreaper().unwrap());
        // SAFETY: the grandchild only sleeps and returns.
        let orphan = unsafe {
            process::double_fork(|| {
                std::thread::sleep(Duration::from_millis(50));
                7
            })
        }
        .unwrap();
        scope.track(orphan.pid);
        let adopter = orphan.adopter(DEADLINE).unwrap();
        assert_eq!(
            adopter,
            process::getpid(),
            "adopted by the nearest subreaper: us"
        );
        let status = process::ChildGuard::adopt(orphan.pid)
            .wait_deadline(DEADLINE)
            .expect("it ended by itself before the deadline");
        assert_eq!(
            status,
            process::ExitStatus::Exited(7),
            "we reaped it ourselves"
        );
    }
    assert!(!is_subreaper().unwrap(), "the guard restored the flag");
    scope.assert_clean();
}

#[test]
#[serial]
fn without_a_subreaper_the_orphan_is_adopted_by_someone_else_who_reaps_it() {
    let mut scope = Scope::new();
    // SAFETY: the grandchild only returns.
    let orphan = unsafe { process::double_fork(|| 0) }.unwrap();
    scope.track(orphan.pid);
    let adopter = orphan.adopter(DEADLINE).unwrap();
    assert_ne!(
        adopter,
        process::getpid(),
        "we are not a subreaper, so not the adopter"
    );
    // Its adopter (init or a subreaper above us) reaps it: it vanishes entirely.
    await_gone(orphan.pid);
    scope.assert_clean();
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Runs `blocked` in a thread, waits until `/proc` shows that thread inside
/// system call `call` (its `syscall` file: blocked there, never a timer),
/// sends it `SIGUSR1` (a handler without `SA_RESTART`, so the call fails
/// with `EINTR`), then runs `wake` and returns what `blocked` returned.
fn interrupted_in<R: Send + 'static>(
    call: i64,
    blocked: impl FnOnce() -> R + Send + 'static,
    wake: impl FnOnce(),
) -> R {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::atomic::{AtomicI32, Ordering};
    INTERRUPTED.store(false, Ordering::SeqCst);
    let act = SigAction::new(
        SigHandler::Handler(note_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    let old = unsafe { sigaction(Signal::SIGUSR1, &act) }.unwrap();
    let tid = std::sync::Arc::new(AtomicI32::new(0));
    let t = tid.clone();
    let thread = std::thread::spawn(move || {
        t.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
        blocked()
    });
    let start = Instant::now();
    let inside = || {
        let tid = tid.load(Ordering::SeqCst);
        let now =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
        tid != 0 && now.split_whitespace().next() == Some(&call.to_string())
    };
    while !inside() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the thread never blocked in system call {call}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: the thread is alive: it is blocked in the call until woken.
    let sent = unsafe { libc::pthread_kill(thread.as_pthread_t(), libc::SIGUSR1) };
    assert_eq!(sent, 0);
    while !INTERRUPTED.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the signal never arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    wake();
    let got = thread.join().unwrap();
    // SAFETY: puts back the handler that was there before.
    unsafe { sigaction(Signal::SIGUSR1, &old) }.unwrap();
    got
}

/// `waitpid(2)` interrupted by a signal fails with `EINTR`; `wait_exit`
/// retries and still returns the child's status.
#[test]
#[serial]
#[allow(clippy::zombie_processes, reason = "wait_exit reaps the child by pid")]
fn a_wait_interrupted_by_a_signal_is_retried() {
    let mut scope = Scope::new();
    let child = std::process::Command::new("sleep")
        .arg("1")
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    scope.track(pid);
    let status = interrupted_in(libc::SYS_wait4, move || process::wait_exit(pid), || {});
    assert_eq!(status.unwrap(), process::ExitStatus::Exited(0));
    scope.assert_clean();
}

/// `sem_wait(3)` interrupted by a signal fails with `EINTR` whatever the
/// handler's flags (`signal(7)`); `acquire` retries and takes the count
/// released afterwards.
#[test]
#[serial]
fn a_semaphore_wait_interrupted_by_a_signal_is_retried() {
    use ipckit::sync::{PosixSemaphore, Semaphore};
    let sem = std::sync::Arc::new(Semaphore::new(0).unwrap());
    let s = sem.clone();
    let got = interrupted_in(
        libc::SYS_futex,
        move || s.acquire(),
        || sem.release().unwrap(),
    );
    got.unwrap();
}

/// The same for `sem_timedwait(3)`: interrupted, `acquire_timeout` waits on
/// (it does not give up early, nor fail with `EINTR`).
#[test]
#[serial]
fn a_timed_semaphore_wait_interrupted_by_a_signal_is_retried() {
    use ipckit::sync::{PosixSemaphore, Semaphore};
    let sem = std::sync::Arc::new(Semaphore::new(0).unwrap());
    let s = sem.clone();
    let got = interrupted_in(
        libc::SYS_futex,
        move || s.acquire_timeout(Duration::from_secs(20)),
        || sem.release().unwrap(),
    );
    got.unwrap();
}

/// The same for `semop(2)` on a System V set (`semtimedop` underneath).
#[test]
#[serial]
fn a_sysv_semaphore_wait_interrupted_by_a_signal_is_retried() {
    use ipckit::sync::SysvSemSet;
    let mut scope = Scope::new();
    let set = std::sync::Arc::new(SysvSemSet::create(1, 0).unwrap());
    scope.track_sysv(ipckit::audit::ledger::ObjectKind::SysvSem, set.id());
    let s = set.clone();
    let got = interrupted_in(
        libc::SYS_semtimedop,
        move || s.acquire(0),
        || set.release(0).unwrap(),
    );
    got.unwrap();
    drop(set);
    scope.assert_clean();
}
