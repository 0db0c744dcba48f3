//! The supervisor: the only code that runs student code.
//!
//! It runs in a process of its own (`ipckit __supervise`, started by
//! [`run_supervised`], request and outcome exchanged as JSON), because it
//! changes process-wide state: it becomes a subreaper, waits for any child,
//! traces, and may enter private namespaces. The steps of [`supervise`]:
//! 1. a private work area: a fresh `TMPDIR` and a fresh working directory;
//!    private IPC and mount namespaces when possible (the audit's
//!    `audit::isolate`); subreaper; a snapshot of the IPC ledger;
//! 2. a `pids` control group (`audit::cgroup`) when running as root, else
//!    `RLIMIT_NPROC`;
//! 3. the port starts in a session and process group of its own, with limits
//!    on CPU time, address space, file size and open files, standard input
//!    from `/dev/null`, standard output and error into pipes, traced
//!    ([`super::trace`]) when possible;
//! 4. one event loop (`poll(2)` on a `signalfd(2)` for `SIGCHLD` and on both
//!    pipes): output is kept up to a cap and the rest drained and counted,
//!    every stop and exit is handed to the tracer, dead processes are reaped;
//! 5. deadlines: past the run's time limit the whole tree gets `SIGTERM`, then
//!    `SIGKILL` after a grace period; once the main process has exited,
//!    adopted orphans may run `linger` seconds more, then are killed;
//! 6. the ledger is diffed and every object left is removed; the work area and
//!    the control group are removed; the outcome says what was found and done.
//!
//! Without private namespaces (root without `CAP_SYS_ADMIN`), the port runs
//! under a fresh uid and only objects that uid made (System V `cuid`, a
//! file's owner) are its leaks: another process's object made meanwhile is
//! neither blamed nor removed. A known limit: where the port keeps the
//! grader's uid in the host's namespaces (`--run-as` the grader's own), "left
//! by the port" can only mean "appeared during the run", and the leak's
//! attribution says it may be another process's.

#[cfg(target_os = "linux")]
mod limits;
#[cfg(target_os = "linux")]
mod namespaces;
#[cfg(target_os = "linux")]
mod rescue;
#[cfg(target_os = "linux")]
mod run;
#[cfg(target_os = "linux")]
mod watch;

use super::evidence::Tree;
use crate::audit::Leak;
use crate::error::{Error, Result};
use crate::process::ExitStatus;
use serde::{Deserialize, Serialize};

/// The environment variable that marks every process of a run with its
/// supervisor's pid: the grader finds what is left of a run whose
/// supervisor was killed by it.
pub const RUN_MARK: &str = "IPCKIT_SUPERVISOR";

/// Under which user the port runs when the grader is root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunAs {
    /// A fresh user and group id per run (no home, no groups, no entry in
    /// `/etc/passwd`): the port cannot signal, trace or read the grader, and
    /// `RLIMIT_NPROC` binds it; every process and file of that uid is the port's.
    #[default]
    Fresh,
    /// This user and group id.
    Id(u32, u32),
    /// The grader's own (root: nothing is protected; for trusted code only).
    Same,
}

impl std::str::FromStr for RunAs {
    type Err = String;

    /// `fresh`, `same`, or `UID[:GID]` (the gid defaults to the uid).
    fn from_str(s: &str) -> std::result::Result<RunAs, String> {
        let id = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("{v:?} is not a user or group id"))
        };
        match s {
            "fresh" => Ok(RunAs::Fresh),
            "same" => Ok(RunAs::Same),
            _ => {
                let (u, g) = s.split_once(':').unwrap_or((s, s));
                match (id(u)?, id(g)?) {
                    (0, _) | (_, 0) => {
                        Err("the port must not run as root: give another id, or `same`".into())
                    }
                    (u, g) => Ok(RunAs::Id(u, g)),
                }
            }
        }
    }
}

/// The first uid [`RunAs::Fresh`] picks from: the run's uid is this plus the
/// supervisor's pid (`pid_max` is at most 2^22), far above any distribution's
/// users (and above the 65536 ids most `subuid` ranges start at, per user).
pub const FRESH_UID_BASE: u32 = 0x4000_0000;

/// Resource limits of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// `RLIMIT_CPU` per process, seconds.
    pub cpu_seconds: u64,
    /// `RLIMIT_AS` per process, bytes.
    pub memory_bytes: u64,
    /// `RLIMIT_FSIZE`, bytes.
    pub file_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// Most processes the tree may have at once (`pids.max`).
    pub processes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_seconds: 60,
            memory_bytes: 4 << 30,
            file_bytes: 64 << 20,
            open_files: 1024,
            processes: 64,
        }
    }
}

/// What to run and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// Wall-clock limit, seconds.
    pub time_limit: f64,
    /// How long adopted orphans may run after the main process exits.
    pub linger: f64,
    /// Time between `SIGTERM` and `SIGKILL` at the deadline.
    pub grace: f64,
    /// Resource limits.
    pub limits: Limits,
    /// Trace system calls (ptrace + seccomp) when possible.
    pub trace: bool,
    /// Private namespaces when possible.
    pub isolate: bool,
    /// Bytes of each output stream kept.
    pub output_cap: usize,
    /// The text on the port's standard input (`None`: `/dev/null`).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Environment variables set for the port, on top of the grader's.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Under which user the port runs when the grader is root.
    #[serde(default)]
    pub run_as: RunAs,
    /// Note each process's shared memory at its fork and exit (the spec's
    /// evidence needs it: `via = "shared" | "queue" | "server"`); off, the
    /// tracer never reads `/proc/PID/maps` nor stops at exits.
    #[serde(default)]
    pub shared_memory: bool,
}

/// One captured output stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Captured {
    /// The kept bytes, as text (invalid UTF-8 replaced).
    pub text: String,
    /// Every byte written, kept or not.
    pub bytes: u64,
    /// True when more was written than kept.
    pub truncated: bool,
    /// Which process wrote each chunk of the kept bytes (g10: `grade::output`).
    #[serde(default)]
    pub chunks: Vec<super::output::Chunk>,
}

/// What happened in one supervised run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// How the main process ended.
    pub exit: Option<ExitStatus>,
    /// Seconds from start until the whole tree was gone.
    pub seconds: f64,
    /// When the main process exited.
    pub main_exited: Option<f64>,
    /// The run passed its time limit and was killed.
    pub timed_out: bool,
    /// The time limit the run had, seconds.
    pub time_limit: f64,
    /// When the grader first signalled the tree at the deadline.
    pub deadline_kill: Option<f64>,
    /// Standard output.
    pub stdout: Captured,
    /// Standard error.
    pub stderr: Captured,
    /// Whether system calls were traced (mechanism evidence is complete).
    pub traced: bool,
    /// Why not, when not.
    pub untraced_reason: Option<String>,
    /// Processes and objects.
    pub tree: Tree,
    /// Objects and files the tree left behind (removed afterwards).
    pub leaks: Vec<Leak>,
    /// Processes of the tree still present after the cleanup (should be none).
    pub left_running: Vec<i32>,
    /// How the run was contained (namespaces, pids limit, cpu share, user id, tracing, IPC listing).
    pub containment: super::containment::Containment,
    /// Anything else worth saying.
    pub notes: Vec<String>,
    /// Ptrace stops handled.
    pub stops: u64,
    /// Processes of the tree seen stopped (`SIGSTOP`, `SIGTSTP`...) and
    /// never continued, with when.
    #[serde(default)]
    pub stopped: Vec<(i32, f64)>,
    /// The grade was interrupted (`SIGINT`, `SIGTERM`): by which signal.
    /// The tree was killed and everything it made removed.
    #[serde(default)]
    pub interrupted: Option<String>,
    /// The port attacked the grader itself (killed, stopped or traced its
    /// supervisor): what was seen. The run's other results are then void.
    #[serde(default)]
    pub sabotage: Option<String>,
}

/// Runs `req` through `ipckit __supervise` (the current executable) in a
/// process of its own and returns its outcome. The process gets a deadline of
/// its own: a supervisor that does not answer in time is killed.
#[cfg(target_os = "linux")]
pub fn run_supervised(req: &Request) -> Result<Outcome> {
    use std::io::{Read, Write};
    crate::audit::interrupt::not_dumpable();
    // Outside private namespaces, a supervisor killed by the port leaves the
    // host objects of its run to the grader: what exists now is kept.
    let host_before = (!(req.isolate && super::containment::private_namespaces_possible()))
        .then(|| crate::audit::ledger::Ledger::snapshot(&Default::default()));
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("__supervise")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    dies_with_this_thread(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting {} __supervise", exe.display()), e))?;
    let pid = child.id() as i32;
    let mut guard = crate::process::ChildGuard::adopt(nix::unistd::Pid::from_raw(pid));
    let _interrupts = crate::audit::interrupt::register(pid);
    let request = serde_json::to_vec(req).expect("request serialises");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&request)
            .map_err(|e| Error::io("sending the request to the supervisor", e))?;
    }
    let (mut out, mut err) = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let limit = req.time_limit + req.grace + req.linger + 30.0;
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let started = std::time::Instant::now();
    let mut attack = None;
    while !reader.is_finished() && started.elapsed().as_secs_f64() < limit {
        std::thread::sleep(std::time::Duration::from_millis(5));
        if let Some(why) = rescue::attacked(pid) {
            attack = Some(why);
            break;
        }
    }
    let answered = reader.is_finished();
    let status = match answered && attack.is_none() {
        true => guard.wait_deadline(std::time::Duration::from_secs(5)).ok(),
        false => None,
    };
    let bytes = if answered {
        reader.join().unwrap_or_default()
    } else {
        Vec::new()
    };
    let interrupted = crate::audit::interrupt::interrupted();
    let died = matches!(status, Some(crate::process::ExitStatus::Signaled { .. }));
    if let Some(crate::process::ExitStatus::Signaled { signal, .. }) = status
        && interrupted.is_none()
    {
        attack = Some(rescue::killed(signal));
    }
    if attack.is_some() || !answered || died {
        // The supervisor is killed first (it may be frozen), then what is
        // left of its run (a port that traces it must die before the
        // supervisor can be reaped), then it is reaped.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let cleaned = rescue::clean_after(pid, host_before.as_ref());
        drop(guard);
        return match attack {
            Some(why) => Ok(Outcome {
                sabotage: Some(why),
                time_limit: req.time_limit,
                notes: cleaned,
                ..Default::default()
            }),
            None if died => Ok(Outcome {
                interrupted: interrupted.map(crate::audit::interrupt::signal_name),
                notes: cleaned,
                ..Default::default()
            }),
            None => Err(Error::Timeout {
                what: "the supervisor".into(),
                after: std::time::Duration::try_from_secs_f64(limit).unwrap_or_default(),
            }),
        };
    }
    let stderr = errors.join().unwrap_or_default();
    let answer: std::result::Result<Outcome, String> = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Protocol(format!("supervisor answer ({e}); its stderr: {stderr}")))?;
    answer.map_err(|e| match e.strip_prefix("invalid command: ") {
        Some(why) => Error::invalid("command", why),
        None => Error::Died(format!("the supervisor could not run the port: {e}")),
    })
}

/// The supervisor gets `SIGKILL` when the grader's thread that started it
/// ends (`PR_SET_PDEATHSIG`; the grader killed, or panicking): with it dies
/// PID 1 of the run's namespace, and with that every process of the run.
/// Were the grader gone before the request, `getppid(2)` no longer names
/// it, and the supervisor exits at once.
#[cfg(target_os = "linux")]
fn dies_with_this_thread(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let grader = std::process::id() as i32;
    let hook = move || {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a plain signal number.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != grader {
            // SAFETY: _exit ends the forked child without running destructors.
            unsafe { libc::_exit(2) };
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec and makes only
    // async-signal-safe calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Supervising needs Linux (subreaper, `/proc`, ptrace).
#[cfg(not(target_os = "linux"))]
pub fn run_supervised(_req: &Request) -> Result<Outcome> {
    Err(Error::Unsupported(
        "the grader needs Linux (/proc, PR_SET_CHILD_SUBREAPER, ptrace)".into(),
    ))
}

/// The body of `ipckit __supervise`: reads a [`Request`] as JSON on standard
/// input, supervises, writes `{"Ok": Outcome}` or `{"Err": message}`.
pub fn serve() -> i32 {
    #[cfg(target_os = "linux")]
    crate::audit::interrupt::not_dumpable();
    let mut input = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input);
    let request = serde_json::from_str::<Request>(&input).map_err(|e| format!("bad request: {e}"));
    #[cfg(target_os = "linux")]
    if let Ok(req) = &request
        && req.isolate
    {
        // A PID namespace of the run's own when the kernel allows it: this
        // process only waits, PID 1 of the namespace supervises and answers.
        match crate::audit::pidns::enter("grade") {
            Ok(crate::audit::pidns::Side::Outer(status)) => return status,
            Ok(crate::audit::pidns::Side::Inner) => {}
            Err(e) => crate::audit::pidns::refused(e.to_string()),
        }
    }
    let answer: std::result::Result<Outcome, String> =
        request.and_then(|req| supervise(&req).map_err(|e| e.to_string()));
    println!(
        "{}",
        serde_json::to_string(&answer).expect("outcome serialises")
    );
    0
}

/// Supervises one run (see the module doc). Call only in a process of its
/// own: it waits for any child.
#[cfg(target_os = "linux")]
pub fn supervise(req: &Request) -> Result<Outcome> {
    run::supervise(req)
}

/// Supervising needs Linux (subreaper, `/proc`, ptrace).
#[cfg(not(target_os = "linux"))]
pub fn supervise(_req: &Request) -> Result<Outcome> {
    Err(Error::Unsupported(
        "the grader needs Linux (/proc, PR_SET_CHILD_SUBREAPER, ptrace)".into(),
    ))
}
