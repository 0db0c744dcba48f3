//! Processes: fork, wait, exit, zombies, orphans, `SIGCHLD`, and the
//! `multiprocessing.Process` object (CATALOGUE.md sections 1 and 2).
//!
//! | Python                         | ipckit                                   | system call |
//! |--------------------------------|------------------------------------------|-------------|
//! | `os.fork()`                    | [`fork_raw`], [`fork`]                   | `fork(2)`   |
//! | `os.waitpid(pid, 0)`           | [`ChildGuard::wait`], [`wait_pid`]       | `waitpid(2)`|
//! | `os.WEXITSTATUS(status)`       | [`ExitStatus`]                           | `wait(2)` macros |
//! | `os._exit(n)`                  | [`exit_immediately`]                     | `_exit(2)`  |
//! | `sys.exit(n)`                  | [`exit_normally`]                        | `exit(3)`   |
//! | `os.getpid()`, `os.getppid()`  | [`getpid`], [`getppid`]                  | `getpid(2)` |
//! | `signal.signal(SIGCHLD, SIG_IGN)` | [`SigchldIgnored`]                    | `sigaction(2)` |
//! | `multiprocessing.Process`      | [`Process`]                              | `fork`, `waitpid`, `kill` |

mod fork;
mod object;
mod orphan;
mod sigchld;
mod wait;

pub use fork::{ChildGuard, Fork, fork, fork_raw};
pub use object::Process;
pub use orphan::{Orphan, double_fork};
pub use sigchld::SigchldIgnored;
pub use wait::{ExitStatus, WaitOptions, wait_exit, wait_exit_timeout, wait_pid};

use nix::unistd::Pid;

/// `getpid(2)`: this process's id.
pub fn getpid() -> Pid {
    nix::unistd::getpid()
}

/// This process's id, without a system call once known: cached, and
/// refreshed in every child by a `pthread_atfork(3)` handler, which libc's
/// `fork(2)` runs (Python's `os.register_at_fork`). For hot paths, such as a
/// manager proxy checking on each call whether it was inherited through a
/// fork; [`getpid`] asks the kernel. (A child made by a raw `clone(2)` that
/// bypasses libc would keep its parent's value: the kit makes none.)
pub fn cached_pid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PID: AtomicU32 = AtomicU32::new(0);
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn refresh() {
        PID.store(std::process::id(), Ordering::Relaxed);
    }
    REGISTER.call_once(|| {
        refresh();
        // SAFETY: `refresh` only calls getpid(2) and stores an atomic, both
        // async-signal-safe, as a handler run in a fork's child must be.
        unsafe { libc::pthread_atfork(None, None, Some(refresh)) };
    });
    PID.load(Ordering::Relaxed)
}

/// `getppid(2)`: the parent's id. After the parent exits this changes to the
/// adopter: init (pid 1) or the nearest ancestor marked as a subreaper.
pub fn getppid() -> Pid {
    nix::unistd::getppid()
}

/// The immediate exit, `_exit(2)` (Python's `os._exit`): the process ends at
/// once. No clean-up runs: output still sitting in a user-space buffer (a
/// `print!` without a newline, a `BufWriter`) is lost, and destructors and
/// `atexit` handlers do not run. This is async-signal-safe: it is the right way
/// to end a forked child.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// The normal exit (Python's `sys.exit`): flushes standard output and standard
/// error, then calls `exit(3)`, which runs `atexit` handlers. Destructors of
/// live Rust values still do not run (as with `std::process::exit`).
pub fn exit_normally(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// Checks that this process has a single thread (`/proc/self/task`, `proc(5)`),
/// which is what makes it sound for forked children to print and allocate.
/// Reference programs and benchmarks call it before their first fork; from a
/// multi-threaded process (a test binary) they refuse to run instead of risking
/// a deadlock in the child.
pub fn require_single_thread() -> crate::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let threads = std::fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(1);
        if threads > 1 {
            return Err(crate::Error::invalid(
                "caller",
                format!(
                    "reference programs and benchmarks fork and print, so they must run in a single-threaded process (this one has {threads} threads); run them with `ipckit run ID` or `ipckit bench`"
                ),
            ));
        }
    }
    Ok(())
}

/// Sends `sig` to `pid` with `kill(2)`.
pub fn send_signal(pid: Pid, sig: nix::sys::signal::Signal) -> crate::Result<()> {
    crate::sys::nix("kill", pid, nix::sys::signal::kill(pid, sig))
}

/// The state letter of process `pid` as `ps` shows it (`R`, `S`, `D`, `T`,
/// `Z`, ...), read from `/proc/<pid>/stat` (`proc(5)`); `None` once it is gone.
/// UNSUPPORTED where there is no `/proc` (macOS).
pub fn state_of(pid: Pid) -> crate::Result<Option<char>> {
    #[cfg(target_os = "linux")]
    {
        Ok(crate::procfs::state_of(pid.as_raw()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Err(crate::Error::Unsupported(
            "process states are read from /proc, which this system lacks".into(),
        ))
    }
}
