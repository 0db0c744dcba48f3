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

/// A signal whose handler has no `SA_RESTART` interrupts `waitpid(2)` with
/// `EINTR`; `wait_exit` retries and still returns the child's status. The
/// signal is sent to the waiting thread only once `/proc` shows it inside
/// `wait4` (its `syscall` file), never on a timer.
#[test]
#[serial]
#[allow(clippy::zombie_processes, reason = "wait_exit reaps the child by pid")]
fn a_wait_interrupted_by_a_signal_is_retried() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use std::os::unix::thread::JoinHandleExt;
    let mut scope = Scope::new();
    let act = SigAction::new(
        SigHandler::Handler(note_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    let old = unsafe { sigaction(Signal::SIGUSR1, &act) }.unwrap();
    let child = std::process::Command::new("sleep")
        .arg("1")
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    scope.track(pid);
    let tid = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    let t = tid.clone();
    let waiter = std::thread::spawn(move || {
        t.store(
            nix::unistd::gettid().as_raw(),
            std::sync::atomic::Ordering::SeqCst,
        );
        process::wait_exit(pid)
    });
    let start = Instant::now();
    let in_wait4 = || {
        let tid = tid.load(std::sync::atomic::Ordering::SeqCst);
        let call =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
        tid != 0 && call.split_whitespace().next() == Some(&libc::SYS_wait4.to_string())
    };
    while !in_wait4() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the waiter never blocked in wait4"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: the waiter thread is alive (it is blocked in wait4 until the child exits).
    let sent = unsafe { libc::pthread_kill(waiter.as_pthread_t(), libc::SIGUSR1) };
    assert_eq!(sent, 0);
    let status = waiter.join().unwrap();
    // SAFETY: puts back the handler that was there before.
    unsafe { sigaction(Signal::SIGUSR1, &old) }.unwrap();
    assert!(
        INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst),
        "the signal never arrived"
    );
    assert_eq!(status.unwrap(), process::ExitStatus::Exited(0));
    scope.assert_clean();
}
