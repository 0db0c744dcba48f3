//! The suite for a port of `multiprocessing.Process` (CATALOGUE.md section
//! 2, `process-join`, `daemon-child`).
//!
//! Implement [`ProcessPort`] and call [`check`] or
//! `ipckit::conformance_tests!(process, MyProcess)`. Each check runs the
//! process object in one forked child of the check runner (the object's
//! "parent"); the targets are the suite's own functions. The checks:
//! - `join_waits_for_the_exit`: a target that exits with status 7 after
//!   300 ms: `join()` returns after it, `exitcode` is 7, `is_alive` false.
//! - `join_timeout_returns_while_alive`: a target that never ends:
//!   `join(250 ms)` returns after about 250 ms, `is_alive` is true and
//!   `exitcode` `None`; after `kill`, `join` returns and `exitcode` is −9.
//! - `exitcode_is_minus_the_signal`: a target that raises `SIGTERM` on
//!   itself: `exitcode` is −15.
//! - `daemon_ends_with_its_parent`: a process object marked daemon before
//!   `start` (marking it after `start` must fail) runs a target that never
//!   ends; once the daemon is asleep in its target, its parent exits
//!   normally (`exit(3)`): the daemon is gone within 5 s. A daemon still running then is killed, and the check fails.

use super::{Board, Entry, LONG_TIMEOUT, Report, TIMEOUT_SLACK, Verdict, deadline, spawn, timed};
use crate::audit::Scope;
use crate::error::Result;
use std::time::{Duration, Instant};

/// A port of `multiprocessing.Process`.
///
/// # Contract
/// - A process object lives in one process: the suite makes, starts, joins
///   and kills it in one forked child of a multi-threaded process (see
///   [`super`]); `start` forks again.
/// - `target` is a plain function; the started child runs it and then
///   exits with status 0 (a target may also end the process itself).
/// - `join(timeout)` returns `Ok` both when the process ended and when the
///   timeout passed (as Python's does); `exitcode` tells which. `None`
///   waits forever; the suite passes `Some` except after `kill`.
/// - `exitcode` is Python's: the exit status, or minus the signal that
///   killed the process, `None` while it runs. Once `join` saw the end, the
///   child has been reaped.
/// - The object may be dropped or leaked by a process that then exits: a
///   daemon child must end when its parent exits normally.
pub trait ProcessPort: Sized {
    /// `Process(target=target)`: not started yet.
    fn new(target: fn()) -> Self;
    /// `p.daemon = daemon`: only before `start`; an error after.
    fn set_daemon(&mut self, daemon: bool) -> Result<()>;
    /// `p.start()`: forks; the child runs the target.
    fn start(&mut self) -> Result<()>;
    /// `p.join(timeout)`.
    fn join(&mut self, timeout: Option<Duration>) -> Result<()>;
    /// `p.is_alive()`.
    fn is_alive(&mut self) -> bool;
    /// `p.exitcode`.
    fn exitcode(&self) -> Option<i32>;
    /// `p.pid` (`None` before `start`).
    fn pid(&self) -> Option<i32>;
    /// `p.kill()`: `SIGKILL`.
    fn kill(&self) -> Result<()>;
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: ProcessPort + 'static>() -> Vec<Entry> {
    vec![
        Entry::required(
            "join_waits_for_the_exit",
            "join returns once the process ended; exitcode is its exit status (7)",
            join_waits::<P>,
        ),
        Entry::required(
            "join_timeout_returns_while_alive",
            "join(timeout) returns after the timeout with the process alive and exitcode None; after kill, exitcode is -9",
            join_timeout::<P>,
        ),
        Entry::required(
            "exitcode_is_minus_the_signal",
            "a process killed by SIGTERM has exitcode -15",
            minus_signal::<P>,
        ),
        Entry::required(
            "daemon_ends_with_its_parent",
            "daemon is set only before start, and a daemon process ends when its parent exits",
            daemon::<P>,
        ),
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: ProcessPort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("process", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: ProcessPort + 'static>(name: &str) {
    super::run_one("process", checks::<P>(), name)
}

/// Targets: exit with 7 after 300 ms; never end; raise `SIGTERM`.
fn exit_7_later() {
    std::thread::sleep(Duration::from_millis(300));
    crate::process::exit_immediately(7)
}

fn forever() {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn raise_sigterm() {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM);
    forever()
}

/// Makes and starts a process object running `target`.
fn started<P: ProcessPort>(target: fn()) -> std::result::Result<P, String> {
    let mut p = P::new(target);
    p.start().map_err(|e| format!("start failed: {e}"))?;
    Ok(p)
}

/// Joins (up to [`LONG_TIMEOUT`]) and checks the exit code.
fn join_expecting<P: ProcessPort>(p: &mut P, want: i32) -> std::result::Result<String, String> {
    p.join(Some(LONG_TIMEOUT))
        .map_err(|e| format!("join failed: {e}"))?;
    match (p.exitcode(), p.is_alive()) {
        (Some(code), false) if code == want => Ok(format!("exitcode {code}")),
        (code, alive) => Err(format!(
            "after join: exitcode {code:?}, is_alive {alive}; expected exitcode {want}"
        )),
    }
}

fn join_waits<P: ProcessPort>(scope: &mut Scope) -> Verdict {
    spawn(scope, "parent of the process object", || {
        // Timed from before `start`: the target's 300 ms begin after it.
        let (mut p, joined, took) = {
            let t0 = std::time::Instant::now();
            let mut p = started::<P>(exit_7_later)?;
            let joined = p.join(None);
            (p, joined, t0.elapsed())
        };
        joined.map_err(|e| format!("join failed: {e}"))?;
        if took < Duration::from_millis(250) {
            return Err(format!(
                "join returned after {took:.1?}, before the target's 300 ms were over"
            ));
        }
        let code = join_expecting(&mut p, 7)?;
        Ok(format!(
            "join returned after {took:.1?}; {code}, is_alive false"
        ))
    })?
    .finish(deadline())
}

fn join_timeout<P: ProcessPort>(scope: &mut Scope) -> Verdict {
    spawn(scope, "parent of the process object", || {
        let mut p = started::<P>(forever)?;
        let t = Duration::from_millis(250);
        let (joined, took) = timed(|| p.join(Some(t)));
        joined.map_err(|e| format!("join({t:?}) failed: {e}"))?;
        let (alive, code) = (p.is_alive(), p.exitcode());
        let on_time = took >= t * 9 / 10 && took <= t + TIMEOUT_SLACK;
        let fine = on_time && alive && code.is_none();
        let killed = p.kill().map_err(|e| format!("kill failed: {e}"));
        let after = killed.and_then(|()| join_expecting(&mut p, -9));
        if !fine {
            return Err(format!("join({t:?}) on a process that never ends returned after {took:.1?} with is_alive {alive}, exitcode {code:?}"));
        }
        Ok(format!("join({t:?}) returned after {took:.1?}, alive, exitcode None; after kill, {}", after?))
    })?
    .finish(deadline())
}

fn minus_signal<P: ProcessPort>(scope: &mut Scope) -> Verdict {
    spawn(scope, "parent of the process object", || {
        let mut p = started::<P>(raise_sigterm)?;
        join_expecting(&mut p, -15).map(|code| format!("the target raised SIGTERM: {code}"))
    })?
    .finish(deadline())
}

/// Board slots: the daemon's pid; 1 if `set_daemon` after start failed, 2 if
/// it was accepted.
const DAEMON_PID: usize = 0;
const LATE_FLAG: usize = 1;

/// How long a daemon may outlive its parent.
const DAEMON_GRACE: Duration = Duration::from_secs(5);

fn daemon<P: ProcessPort>(scope: &mut Scope) -> Verdict {
    let board = Board::new(2)?;
    let by = deadline();
    spawn(scope, "parent of the daemon", || {
        let mut p = P::new(forever);
        p.set_daemon(true)
            .map_err(|e| format!("set_daemon(true) before start failed: {e}"))?;
        p.start().map_err(|e| format!("start failed: {e}"))?;
        let pid = p.pid().unwrap_or(0);
        board.set(DAEMON_PID, pid as u64);
        // The daemon is running its target (asleep in it) before its parent exits.
        if !asleep_within(pid, DAEMON_GRACE) {
            return Err(format!("the daemon {pid} never started its target"));
        }
        board.set(LATE_FLAG, if p.set_daemon(false).is_err() { 1 } else { 2 });
        std::mem::forget(p);
        // The normal exit (`exit(3)`): atexit handlers run, Rust destructors do not.
        // SAFETY: exit never returns; nothing of this child runs afterwards.
        unsafe { libc::exit(0) }
    })?
    .finish(by)?;
    let pid = board.get(DAEMON_PID) as i32;
    if pid <= 0 {
        return Err("the parent never reported the daemon's pid".into());
    }
    let gone = ended_within(pid, DAEMON_GRACE);
    if !gone {
        let _ = crate::process::send_signal(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        return Err(format!(
            "the daemon {pid} was still running {DAEMON_GRACE:?} after its parent exited (killed now)"
        ));
    }
    match board.get(LATE_FLAG) {
        1 => Ok(format!(
            "set_daemon after start was refused; the daemon {pid} ended with its parent"
        )),
        _ => Err(
            "set_daemon(false) after start was accepted; daemon must be set before start".into(),
        ),
    }
}

/// True once `pid` is asleep (state `S`) within `grace`; where states
/// cannot be read (macOS), after 200 ms.
fn asleep_within(pid: i32, grace: Duration) -> bool {
    let pid = nix::unistd::Pid::from_raw(pid);
    let until = Instant::now() + grace;
    while Instant::now() < until {
        match crate::process::state_of(pid) {
            Ok(Some('S')) => return true,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(200));
                return true;
            }
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    false
}

/// True once `pid` no longer runs (gone, or a zombie waiting for its
/// adopter) within `grace`.
fn ended_within(pid: i32, grace: Duration) -> bool {
    let pid = nix::unistd::Pid::from_raw(pid);
    let until = Instant::now() + grace;
    while Instant::now() < until {
        match crate::process::state_of(pid) {
            Ok(None) | Ok(Some('Z')) => return true,
            Err(_) if nix::sys::signal::kill(pid, None).is_err() => return true,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    false
}
