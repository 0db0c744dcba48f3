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
