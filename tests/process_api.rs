//! The process library, tested in-process. Every child forked here does only
//! async-signal-safe work (return a code, sleep, spin, `write`), because this
//! test binary is multi-threaded; and every test checks with an
//! `audit::Scope` that each child it forked was reaped.

use ipckit::audit::Scope;
use ipckit::process::{self, ChildGuard, ExitStatus, Process, WaitOptions};
use nix::fcntl::{FcntlArg, FdFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use proptest::prelude::*;
use rstest::rstest;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// Forks a child that sleeps for `secs` seconds (async-signal-safe) and exits 0.
fn sleeper(secs: u64) -> ChildGuard {
    // SAFETY: the child only sleeps and returns.
    unsafe {
        process::fork(move || {
            std::thread::sleep(Duration::from_secs(secs));
            0
        })
    }
    .unwrap()
}

/// Polls until `pid` shows `state` in /proc, or panics at the deadline.
fn await_state(pid: nix::unistd::Pid, want: char) {
    let start = Instant::now();
    loop {
        let now = process::state_of(pid).unwrap();
        if now == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{pid} never reached state {want} (now {now:?})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_exit_code_is_decoded_exactly(code in 0i32..=255) {
        let mut scope = Scope::new();
        // SAFETY: the child only returns a number.
        let mut child = unsafe { process::fork(move || code) }.unwrap();
        scope.track(child.pid());
        prop_assert_eq!(child.wait_deadline(DEADLINE).unwrap(), ExitStatus::Exited(code));
        prop_assert_eq!(child.status().unwrap().python_exitcode(), Some(code));
        scope.assert_clean();
    }

    #[test]
    fn raw_status_words_decode_like_the_wait_macros(code in 0i32..=255, sig in 1i32..=31, core: bool) {
        prop_assert_eq!(ExitStatus::from_raw(code << 8), ExitStatus::Exited(code));
        let signaled = sig | if core { 0x80 } else { 0 };
        prop_assert_eq!(ExitStatus::from_raw(signaled), ExitStatus::Signaled { signal: sig, core });
        prop_assert_eq!(ExitStatus::from_raw((sig << 8) | 0x7f), ExitStatus::Stopped(sig));
        prop_assert_eq!(ExitStatus::from_raw(0xffff), ExitStatus::Continued);
    }

    #[test]
    fn any_number_of_children_forked_and_waited_leaves_none(n in 1usize..=32) {
        let mut scope = Scope::new();
        let mut children = Vec::new();
        for i in 0..n {
            // SAFETY: the child only returns a number.
            let child = unsafe { process::fork(move || i as i32) }.unwrap();
            scope.track(child.pid());
            children.push(child);
        }
        for (i, child) in children.iter_mut().enumerate() {
            prop_assert_eq!(child.wait_deadline(DEADLINE).unwrap(), ExitStatus::Exited(i as i32));
        }
        scope.assert_clean();
    }

    #[test]
    fn join_with_timeout_never_returns_early(ms in 1u64..80) {
        let mut scope = Scope::new();
        let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(5)));
        // SAFETY: the target only sleeps.
        unsafe { p.start() }.unwrap();
        scope.track(p.pid().unwrap());
        let start = Instant::now();
        p.join(Some(Duration::from_millis(ms))).unwrap();
        prop_assert!(start.elapsed() >= Duration::from_millis(ms));
        prop_assert!(p.is_alive());
        prop_assert_eq!(p.exitcode(), None);
        p.kill().unwrap();
        p.join(Some(DEADLINE)).unwrap();
        prop_assert_eq!(p.exitcode(), Some(-9));
        drop(p);
        scope.assert_clean();
    }
}

/// Signals whose default action ends the process; the ones marked `true`
/// would dump core (QUIT, ABRT, TRAP), so the child first sets `RLIMIT_CORE`
/// to 0. Not SIGSEGV or SIGBUS: Rust's runtime handles those (stack-overflow
/// detection) and a *sent* SIGSEGV is swallowed by its handler once.
///
/// The child restores the default action first: a test binary started by a
/// non-interactive shell in the background inherits SIGINT and SIGQUIT ignored.
#[rstest]
#[case(Signal::SIGHUP)]
#[case(Signal::SIGINT)]
#[case(Signal::SIGTERM)]
#[case(Signal::SIGUSR1)]
#[case(Signal::SIGUSR2)]
#[case(Signal::SIGALRM)]
#[case(Signal::SIGKILL)]
#[case(Signal::SIGQUIT)]
#[case(Signal::SIGABRT)]
#[case(Signal::SIGTRAP)]
fn a_signal_death_is_reported_as_that_signal(#[case] sig: Signal) {
    use std::os::fd::AsFd;
    let mut scope = Scope::new();
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
    let w = ready_w.as_fd();
    let default_then_wait = move || {
        // SAFETY: SigDfl installs no handler.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        let _ = nix::unistd::write(w, b"r");
        std::thread::sleep(Duration::from_secs(30));
        0
    };
    // SAFETY: the child calls signal, setrlimit, write and sleeps: plain system calls.
    let mut child = unsafe { process::fork(default_then_wait) }.unwrap();
    drop(ready_w);
    scope.track(child.pid());
    // The signal goes only once the child has its default action and no core limit.
    ipckit::sys::read_exact_timeout(&ready_r, 1, DEADLINE, "the child's ready byte").unwrap();
    child.signal(sig).unwrap();
    let status = child.wait_deadline(DEADLINE).unwrap();
    assert_eq!(
        status,
        ExitStatus::Signaled {
            signal: sig as i32,
            core: false
        }
    );
    assert_eq!(status.python_exitcode(), Some(-(sig as i32)));
    scope.assert_clean();
}

#[test]
fn cached_pid_is_the_pid_in_the_parent_and_in_a_forked_child() {
    let mut scope = Scope::new();
    let parent = process::cached_pid();
    assert_eq!(parent, std::process::id());
    // SAFETY: the child loads an atomic and calls getpid(2).
    let mut child = unsafe {
        process::fork(move || {
            let me = process::cached_pid();
            i32::from(me == parent || me != std::process::id())
        })
    }
    .unwrap();
    scope.track(child.pid());
    assert_eq!(
        child.wait_deadline(DEADLINE).unwrap(),
        ExitStatus::Exited(0),
        "the child saw its parent's pid"
    );
    scope.assert_clean();
}

#[test]
fn dropping_a_child_guard_kills_and_reaps_the_child() {
    let mut scope = Scope::new();
    let child = sleeper(60);
    scope.track(child.pid());
    let start = Instant::now();
    drop(child);
    assert!(start.elapsed() < Duration::from_secs(5));
    scope.assert_clean();
}

#[test]
fn wait_deadline_kills_a_child_that_overruns_and_says_timeout() {
    let mut scope = Scope::new();
    let mut child = sleeper(60);
    scope.track(child.pid());
    let err = child.wait_deadline(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(err, ipckit::Error::Timeout { .. }), "{err}");
    assert_eq!(
        child.status(),
        Some(ExitStatus::Signaled {
            signal: 9,
            core: false
        })
    );
    scope.assert_clean();
}

#[test]
fn signalling_a_reaped_child_is_refused_not_sent_to_a_reused_pid() {
    let mut scope = Scope::new();
    // SAFETY: the child only returns.
    let mut child = unsafe { process::fork(|| 0) }.unwrap();
    scope.track(child.pid());
    child.wait().unwrap();
    assert!(matches!(
        child.signal(Signal::SIGTERM),
        Err(ipckit::Error::Closed(_))
    ));
    scope.assert_clean();
}

#[test]
fn waiting_for_a_pid_that_is_not_our_child_fails_with_echild() {
    let err = process::wait_exit(nix::unistd::Pid::from_raw(1)).unwrap_err();
    assert_eq!(err.errno(), Some(nix::errno::Errno::ECHILD));
    assert!(err.to_string().contains("waitpid(1)"), "{err}");
}

#[test]
fn an_unreaped_child_is_a_zombie_until_waited() {
    let mut scope = Scope::new();
    // SAFETY: the child only returns.
    let mut child = unsafe { process::fork(|| 0) }.unwrap();
    scope.track(child.pid());
    await_state(child.pid(), 'Z');
    assert!(!scope.leftovers().is_empty(), "the audit sees the zombie");
    child.wait().unwrap();
    assert_eq!(process::state_of(child.pid()).unwrap(), None);
    scope.assert_clean();
}

#[test]
fn states_running_stopped_continued_sleeping_zombie_are_observed() {
    use std::os::fd::AsFd;
    let mut scope = Scope::new();
    let (go_r, go_w) = nix::unistd::pipe().unwrap();
    let r = go_r.as_fd();
    // SAFETY: the child calls poll(2) and read(2) only: no locks, no allocation.
    let mut child = unsafe {
        process::fork(|| {
            // Running (R) until the first byte arrives...
            let mut fds = [PollFd::new(r, PollFlags::POLLIN)];
            while nix::poll::poll(&mut fds, PollTimeout::ZERO) != Ok(1) {
                std::hint::spin_loop();
            }
            // ...then sleeping (S) in read(2) until the second.
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(r, &mut byte);
            let _ = nix::unistd::read(r, &mut byte);
            0
        })
    }
    .unwrap();
    let pid = child.pid();
    scope.track(pid);
    await_state(pid, 'R');
    child.signal(Signal::SIGSTOP).unwrap();
    let stopped = WaitOptions {
        stopped: true,
        ..Default::default()
    };
    assert_eq!(
        process::wait_pid(pid, stopped).unwrap(),
        Some(ExitStatus::Stopped(Signal::SIGSTOP as i32))
    );
    assert_eq!(process::state_of(pid).unwrap(), Some('T'));
    child.signal(Signal::SIGCONT).unwrap();
    let continued = WaitOptions {
        continued: true,
        ..Default::default()
    };
    assert_eq!(
        process::wait_pid(pid, continued).unwrap(),
        Some(ExitStatus::Continued)
    );
    nix::unistd::write(&go_w, b"1").unwrap();
    await_state(pid, 'S');
    nix::unistd::write(&go_w, b"2").unwrap();
    await_state(pid, 'Z');
    assert_eq!(
        child.wait_deadline(DEADLINE).unwrap(),
        ExitStatus::Exited(0)
    );
    scope.assert_clean();
}

#[test]
fn the_child_sees_its_parent_and_the_parent_sees_the_child() {
    use std::os::fd::AsFd;
    let mut scope = Scope::new();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let w = write_end.as_fd();
    // SAFETY: the child writes two pids with write(2) and returns.
    let mut child = unsafe {
        process::fork(move || {
            let ids = [process::getpid().as_raw(), process::getppid().as_raw()];
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&ids[0].to_ne_bytes());
            bytes[4..].copy_from_slice(&ids[1].to_ne_bytes());
            let _ = nix::unistd::write(w, &bytes);
            0
        })
    }
    .unwrap();
    drop(write_end);
    scope.track(child.pid());
    let bytes = ipckit::sys::read_exact_timeout(&read_end, 8, DEADLINE, "ids").unwrap();
    let own = i32::from_ne_bytes(bytes[..4].try_into().unwrap());
    let parent = i32::from_ne_bytes(bytes[4..].try_into().unwrap());
    assert_eq!(own, child.pid().as_raw());
    assert_eq!(parent, process::getpid().as_raw());
    child.wait_deadline(DEADLINE).unwrap();
    scope.assert_clean();
}

#[test]
fn process_has_pythons_defaults_and_attributes() {
    let mut scope = Scope::new();
    let mut p = Process::new(|| {});
    assert!(p.name().starts_with("Process-"), "{}", p.name());
    assert_eq!(
        (p.pid(), p.exitcode(), p.is_alive(), p.daemon()),
        (None, None, false, false)
    );
    assert!(p.join(None).is_err(), "join before start is an error");
    let named = Process::new(|| {}).with_name("worker");
    assert_eq!(named.name(), "worker");
    // SAFETY: the target does nothing.
    unsafe { p.start() }.unwrap();
    scope.track(p.pid().unwrap());
    // SAFETY: as above; the second start must be refused before any fork.
    assert!(unsafe { p.start() }.is_err(), "a process starts once");
    assert!(p.set_daemon(true).is_err(), "daemon only before start");
    p.join(Some(DEADLINE)).unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    scope.assert_clean();
}

#[test]
fn default_names_count_up() {
    let a = Process::new(|| {});
    let b = Process::new(|| {});
    let n = |p: &Process| {
        p.name()
            .trim_start_matches("Process-")
            .parse::<usize>()
            .unwrap()
    };
    assert!(n(&b) > n(&a));
}

#[test]
fn a_panicking_target_gives_exitcode_1() {
    let mut scope = Scope::new();
    let mut p = Process::new(|| std::panic::resume_unwind(Box::new(0)));
    // SAFETY: the target unwinds without printing (resume_unwind skips the panic hook).
    unsafe { p.start() }.unwrap();
    scope.track(p.pid().unwrap());
    p.join(Some(DEADLINE)).unwrap();
    assert_eq!(p.exitcode(), Some(1));
    scope.assert_clean();
}

#[rstest]
#[case::terminate(true, -15)]
#[case::kill(false, -9)]
fn terminate_and_kill_give_negative_signal_exitcodes(#[case] terminate: bool, #[case] code: i32) {
    let mut scope = Scope::new();
    let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    // SAFETY: the target only sleeps.
    unsafe { p.start() }.unwrap();
    scope.track(p.pid().unwrap());
    if terminate { p.terminate() } else { p.kill() }.unwrap();
    p.join(Some(DEADLINE)).unwrap();
    assert_eq!(p.exitcode(), Some(code));
    scope.assert_clean();
}

#[test]
fn dropping_a_daemon_terminates_it_quickly() {
    let mut scope = Scope::new();
    let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    p.set_daemon(true).unwrap();
    // SAFETY: the target only sleeps.
    unsafe { p.start() }.unwrap();
    scope.track(p.pid().unwrap());
    let start = Instant::now();
    drop(p);
    assert!(start.elapsed() < Duration::from_secs(5));
    scope.assert_clean();
}

#[test]
fn dropping_a_non_daemon_waits_for_it_like_python_at_exit() {
    let mut scope = Scope::new();
    // The child lives until the test closes the write end of a pipe (the
    // child closes its own copy first), which a thread does 150 ms after it
    // is started, just before the drop, having first raised `closing`: a
    // drop that returns has waited for the child only if `closing` is up by
    // then. (A child that merely slept was over before the drop began when
    // the test was starved on a loaded machine.) Close-on-exec, so that a
    // command another test starts meanwhile holds no copy of the write end.
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    nix::fcntl::fcntl(&write_end, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    let write_raw = write_end.as_raw_fd();
    let mut p = Process::new(move || {
        // The child's inherited copy of the test's write end (the child ends
        // with `_exit`, so its copy of the `OwnedFd` is never dropped).
        let _ = nix::unistd::close(write_raw);
        let _ = nix::unistd::read(&read_end, &mut [0u8; 1]); // 0: end of file
    });
    // SAFETY: the target only closes a descriptor and reads a pipe.
    unsafe { p.start() }.unwrap();
    scope.track(p.pid().unwrap());
    let closing = Arc::new(AtomicBool::new(false));
    let closer = {
        let closing = Arc::clone(&closing);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            closing.store(true, Ordering::SeqCst);
            drop(write_end);
        })
    };
    drop(p);
    assert!(
        closing.load(Ordering::SeqCst),
        "drop returned before the child could exit: it did not join it"
    );
    closer.join().unwrap();
    scope.assert_clean();
}

/// `sleep SECS` started with `std::process::Command`: a plain child of this
/// process for the free functions (`wait_exit_timeout`, `send_signal`).
#[allow(
    clippy::zombie_processes,
    reason = "the test reaps it by pid with the function it tests"
)]
fn sleep_command(secs: &str) -> nix::unistd::Pid {
    let child = std::process::Command::new("sleep")
        .arg(secs)
        .spawn()
        .unwrap();
    nix::unistd::Pid::from_raw(child.id() as i32)
}

/// This thread's voluntary and involuntary context switches and CPU time
/// (`getrusage(2)`, `RUSAGE_THREAD`: Linux).
#[cfg(target_os = "linux")]
fn thread_usage() -> (i64, i64, Duration) {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage for the duration of the call.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (u.ru_nvcsw, u.ru_nivcsw, tv(u.ru_utime) + tv(u.ru_stime))
}

/// `wait_exit_timeout` sleeps in `poll(2)` on a pidfd until the child exits:
/// waiting half a second costs this thread a few context switches and almost
/// no CPU. The fallback that polls `waitpid(WNOHANG)` with a back-off switches
/// dozens of times; a loop that never sleeps burns the half second (or, on a
/// busy machine, is preempted again and again).
#[test]
#[cfg(target_os = "linux")]
fn a_timed_wait_sleeps_on_a_pidfd_until_the_exit() {
    let mut scope = Scope::new();
    let pid = sleep_command("0.5");
    scope.track(pid);
    let before = thread_usage();
    let status = process::wait_exit_timeout(pid, DEADLINE).unwrap();
    let after = thread_usage();
    assert_eq!(status, Some(ExitStatus::Exited(0)));
    let (voluntary, involuntary, cpu) = (
        after.0 - before.0,
        after.1 - before.1,
        after.2.saturating_sub(before.2),
    );
    assert!(
        voluntary < 15 && involuntary < 15 && cpu < Duration::from_millis(150),
        "{voluntary} voluntary and {involuntary} involuntary switches, {cpu:?} of CPU in one wait"
    );
    scope.assert_clean();
}

/// `send_signal` is `kill(2)`: the child dies of the signal sent.
#[test]
fn send_signal_delivers_the_signal_to_the_child() {
    let mut scope = Scope::new();
    let pid = sleep_command("30");
    scope.track(pid);
    process::send_signal(pid, Signal::SIGTERM).unwrap();
    let status = process::wait_exit_timeout(pid, DEADLINE).unwrap();
    if status.is_none() {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = process::wait_exit(pid);
    }
    assert_eq!(
        status,
        Some(ExitStatus::Signaled {
            signal: libc::SIGTERM,
            core: false
        })
    );
    scope.assert_clean();
}

/// A test binary has several threads: reference programs refuse to fork here.
#[test]
fn require_single_thread_refuses_a_process_with_two_threads() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let err = process::require_single_thread().unwrap_err().to_string();
    assert!(err.contains("single-threaded process"), "{err}");
    drop(tx);
    other.join().unwrap();
}

#[rstest]
#[case(ExitStatus::Exited(0), true)]
#[case(ExitStatus::Exited(1), false)]
#[case(ExitStatus::Signaled { signal: 9, core: false }, false)]
#[case(ExitStatus::Stopped(19), false)]
fn only_exit_code_zero_is_success(#[case] status: ExitStatus, #[case] ok: bool) {
    assert_eq!(status.success(), ok);
}
