//! Synchronising on process states, never on sleeps: wait until a process
//! is really where the test needs it (`/proc/<pid>/stat`, `/proc/<pid>/wchan`,
//! `proc(5)`), with a deadline.

use ipckit::process;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// How long a process may take to reach a state before the test fails.
pub const STATE_DEADLINE: Duration = Duration::from_secs(20);

/// Waits until `pid` is in state `want` (`R`, `S`, `T`, `Z`, ...).
pub fn await_state(pid: Pid, want: char) {
    await_where(pid, &format!("state {want}"), |state, _| {
        state == Some(want)
    });
}

/// Waits until `pid` sleeps (state `S`) inside a futex wait (its kernel wait
/// channel names `futex`): blocked on a condition variable or a mutex, not
/// merely scheduled out on its way there.
pub fn await_futex_sleep(pid: Pid) {
    await_where(pid, "a futex sleep", |state, wchan| {
        state == Some('S') && wchan.contains("futex")
    });
}

/// True if `pid` sleeps in a futex wait now (see [`await_futex_sleep`]).
pub fn in_futex_sleep(pid: Pid) -> bool {
    process::state_of(pid).unwrap() == Some('S') && wchan(pid).contains("futex")
}

fn await_where(pid: Pid, what: &str, reached: impl Fn(Option<char>, &str) -> bool) {
    let start = Instant::now();
    loop {
        let state = process::state_of(pid).unwrap();
        if reached(state, &wchan(pid)) {
            return;
        }
        assert!(
            start.elapsed() < STATE_DEADLINE,
            "{pid} never reached {what} (state {state:?}, wchan {:?})",
            wchan(pid)
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The kernel function `pid` sleeps in (`/proc/<pid>/wchan`), or "".
pub fn wchan(pid: Pid) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}
