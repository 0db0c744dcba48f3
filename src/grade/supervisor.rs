//! The supervisor: the only code that runs student code.
//!
//! It runs in a process of its own (`ipckit __supervise`, started by
//! [`run_supervised`], request and outcome exchanged as JSON), because it
//! changes process-wide state: it becomes a subreaper, waits for any child,
//! traces, and may enter private namespaces. The steps of [`supervise`]:
//! 1. a private work area: a fresh `TMPDIR` and a fresh working directory;
//!    private IPC and mount namespaces when possible (the audit's
//!    `audit::isolate`); subreaper; a snapshot of the IPC ledger;
//! 2. a `pids` control group (`grade::cgroup`) when running as root, else
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
//! A known limit: without private namespaces (not root), "left by the port"
//! can only mean "appeared in the host's namespaces during the run", so an
//! IPC object another process of the machine made meanwhile is counted and
//! removed too; its leak's attribution says so.

use super::evidence::Tree;
use crate::audit::Leak;
use crate::error::{Error, Result};
use crate::process::ExitStatus;
use serde::{Deserialize, Serialize};

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
    /// How the run was contained (namespaces, control group, limits).
    pub containment: Vec<String>,
    /// Anything else worth saying.
    pub notes: Vec<String>,
    /// Ptrace stops handled.
    pub stops: u64,
}

/// Runs `req` through `ipckit __supervise` (the current executable) in a
/// process of its own and returns its outcome. The process gets a deadline of
/// its own: a supervisor that does not answer in time is killed.
pub fn run_supervised(req: &Request) -> Result<Outcome> {
    use std::io::{Read, Write};
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let mut child = std::process::Command::new(&exe)
        .arg("__supervise")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("starting {} __supervise", exe.display()), e))?;
    let mut guard =
        crate::process::ChildGuard::adopt(nix::unistd::Pid::from_raw(child.id() as i32));
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
    while !reader.is_finished() && started.elapsed().as_secs_f64() < limit {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if !reader.is_finished() {
        drop(guard); // kills and reaps the supervisor; its tracees die with it (EXITKILL)
        return Err(Error::Timeout {
            what: "the supervisor".into(),
            after: std::time::Duration::try_from_secs_f64(limit).unwrap_or_default(),
        });
    }
    let bytes = reader.join().unwrap_or_default();
    let _ = guard.wait_deadline(std::time::Duration::from_secs(5));
    let stderr = errors.join().unwrap_or_default();
    let answer: std::result::Result<Outcome, String> = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Protocol(format!("supervisor answer ({e}); its stderr: {stderr}")))?;
    answer.map_err(|e| match e.strip_prefix("invalid command: ") {
        Some(why) => Error::invalid("command", why),
        None => Error::Died(format!("the supervisor could not run the port: {e}")),
    })
}

/// The body of `ipckit __supervise`: reads a [`Request`] as JSON on standard
/// input, supervises, writes `{"Ok": Outcome}` or `{"Err": message}`.
pub fn serve() -> i32 {
    let mut input = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input);
    let answer: std::result::Result<Outcome, String> = serde_json::from_str::<Request>(&input)
        .map_err(|e| format!("bad request: {e}"))
        .and_then(|req| supervise(&req).map_err(|e| e.to_string()));
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
    linux::supervise(req)
}

/// Supervising needs Linux (subreaper, `/proc`, ptrace).
#[cfg(not(target_os = "linux"))]
pub fn supervise(_req: &Request) -> Result<Outcome> {
    Err(Error::Unsupported(
        "the grader needs Linux (/proc, PR_SET_CHILD_SUBREAPER, ptrace)".into(),
    ))
}

#[cfg(target_os = "linux")]
mod linux {
    use super::super::cgroup::PidsCgroup;
    use super::super::trace::{self, Tracer};
    use super::*;
    use crate::audit::ledger::Ledger;
    use crate::audit::{Isolation, procfs};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::ffi::CString;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::time::Instant;

    pub fn supervise(req: &Request) -> Result<Outcome> {
        let first = run(req, req.trace);
        match first {
            // PTRACE_TRACEME or the seccomp filter refused (a container
            // without CAP_SYS_PTRACE, Yama, a kernel without seccomp): grade
            // without the trace and say so. (Were the error not the trace's,
            // the untraced run fails the same way and reports it.)
            Err(e @ Error::Sys { call: "ptrace", .. }) if req.trace => {
                let mut o = run(req, false)?;
                o.untraced_reason = Some(format!("tracing was refused ({e})"));
                Ok(o)
            }
            other => other,
        }
    }

    /// The work area of one run (step 1).
    struct Area {
        root: PathBuf,
        tmp: PathBuf,
        work: PathBuf,
        mqueue: PathBuf,
    }

    impl Area {
        fn new() -> Result<Area> {
            let root = std::env::temp_dir().join(format!("ipckit-grade-{}", std::process::id()));
            let area = Area {
                tmp: root.join("tmp"),
                work: root.join("work"),
                mqueue: root.join("mqueue"),
                root,
            };
            for d in [&area.tmp, &area.work] {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d.display().to_string(), e))?;
            }
            Ok(area)
        }
    }

    impl Drop for Area {
        fn drop(&mut self) {
            crate::audit::isolate::unmount(&self.mqueue);
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn run(req: &Request, trace: bool) -> Result<Outcome> {
        let me = std::process::id() as i32;
        let area = Area::new()?;
        let mut notes = Vec::new();
        let audit_opts = crate::audit::Options {
            isolate: req.isolate,
            ..Default::default()
        };
        let isolation =
            crate::audit::run::prepare_namespaces(&audit_opts, &area.mqueue, &mut notes);
        let _subreaper = crate::audit::Subreaper::acquire()?;
        let mut sources =
            crate::audit::run::ledger_sources(&area.mqueue, &area.tmp, &audit_opts, &mut notes);
        sources.temp_dirs.push(area.work.clone());
        let before = Ledger::snapshot(&sources);
        let mut containment = vec![match isolation {
            Isolation::Namespaces => {
                "private IPC and mount namespaces (fresh /dev/shm and mqueue)".to_string()
            }
            Isolation::Shared => {
                "host namespaces (objects attributed by creator pid or timing)".to_string()
            }
        }];
        let cgroup = contain(req, &mut containment, &mut notes);

        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        crate::sys::nix("sigprocmask", "block SIGCHLD", mask.thread_block())?;
        let sigfd = crate::sys::nix(
            "signalfd",
            "SIGCHLD",
            SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC),
        )?;

        let start = Instant::now();
        let filter = trace::filter();
        let join = cgroup
            .as_ref()
            .map(|c| CString::new(c.procs_file().to_string_lossy().as_bytes()).expect("no NUL"));
        // Without a control group (only root gets one; root ignores
        // RLIMIT_NPROC anyway), the limit counts every task of this user.
        let nproc = if !is_root() {
            Some(own_tasks().saturating_add(req.limits.processes))
        } else {
            None
        };
        let limits = req.limits.clone();
        let (program, args) = req
            .argv
            .split_first()
            .ok_or_else(|| Error::invalid("command", "nothing to run"))?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .current_dir(&area.work)
            .envs(&req.env)
            .env("TMPDIR", &area.tmp)
            .stdin(port_stdin(&area, req.stdin.as_deref())?);
        // g10: standard output and error are socket pairs that name each writer (grade::output).
        let (stdout, port_out) = super::super::output::stream_pair()?;
        let (stderr, port_err) = super::super::output::stream_pair()?;
        cmd.stdout(port_out).stderr(port_err);
        let setup = move || {
            child_setup(&limits, join.as_deref(), nproc)?;
            if trace {
                // SAFETY: called in the child between fork and exec (pre_exec);
                // the filter was built before the fork and lives until exec.
                unsafe { trace::install_in_child(&filter)? };
            }
            Ok(())
        };
        // SAFETY: the closure runs in the child between fork and exec of this
        // single-threaded process and makes only async-signal-safe calls
        // (setsid, setrlimit, open/write/close, sigprocmask, prctl, ptrace);
        // the filter was built before the fork.
        unsafe { cmd.pre_exec(setup) };
        let child = cmd.spawn().map_err(|e| {
            let errno = e.raw_os_error().unwrap_or(0);
            match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Error::invalid("command", format!("{program}: command not found"))
                }
                _ if trace
                    && [libc::EPERM, libc::EINVAL, libc::ENOSYS, libc::EACCES].contains(&errno) =>
                {
                    crate::sys::errno_error(
                        "ptrace",
                        format!("PTRACE_TRACEME/PR_SET_SECCOMP for {program}"),
                        errno,
                    )
                }
                _ => Error::io(format!("starting {program}"), e),
            }
        })?;
        let main = child.id() as i32;
        drop((child, cmd)); // g10: `cmd` holds the port's ends of the output sockets
        // Until the watch loop takes over (it reaps with waitpid(-1)), the
        // guard owns the port: were the trace not to start, the port, stopped
        // at its exec, is killed and reaped, not left behind.
        let port = crate::process::ChildGuard::adopt(nix::unistd::Pid::from_raw(main));
        let mut tracer = Tracer::default();
        if trace {
            tracer.start(main)?;
        }
        let _ = port.into_pid();
        let mut watch = Watch {
            me,
            main,
            start,
            tree: Tree {
                main,
                ..Default::default()
            },
            tracer: trace.then_some(tracer),
            cgroup,
            out: Stream::new(stdout, req.output_cap, start),
            err: Stream::new(stderr, req.output_cap, start),
            main_exit: None,
            timed_out: false,
            term_sent: None,
            lingerers_killed: false,
            empty_since: None,
        };
        watch.tree.proc(main, 0.0);
        watch.follow(req, &sigfd);
        let seconds = start.elapsed().as_secs_f64();

        let after = Ledger::snapshot(&sources);
        let leaks = after
            .new_since(&before)
            .into_iter()
            .map(|object| {
                let removed = crate::audit::ledger::remove(&object).is_ok();
                let attribution = match isolation {
                    Isolation::Namespaces => "made in the run's private namespace",
                    Isolation::Shared => {
                        "appeared during the run (host namespaces: it may be another process's)"
                    }
                };
                Leak {
                    object,
                    attribution: attribution.into(),
                    removed,
                }
            })
            .collect();
        let left_running = watch.alive(&mut None);
        let _ = mask.thread_unblock();
        if watch.timed_out {
            notes.push(format!(
                "the run passed its {:.1} s time limit; the whole tree was killed",
                req.time_limit
            ));
        }
        let stops = watch.tracer.as_ref().map_or(0, |t| t.stops);
        Ok(Outcome {
            exit: watch.main_exit.map(|(_, s)| s),
            seconds,
            main_exited: watch.main_exit.map(|(t, _)| t),
            timed_out: watch.timed_out,
            time_limit: req.time_limit,
            deadline_kill: watch.term_sent,
            stdout: watch.out.finish(),
            stderr: watch.err.finish(),
            traced: trace,
            untraced_reason: (!trace).then(|| "tracing was off".to_string()),
            tree: watch.tree,
            leaks,
            left_running,
            containment,
            notes,
            stops,
        })
    }

    /// The port's standard input: `/dev/null`, or the request's text from
    /// a file in the work area (outside the folders the ledger watches), as
    /// a shell's `< input.txt` would give it; removed with the area.
    fn port_stdin(area: &Area, text: Option<&str>) -> Result<std::process::Stdio> {
        let Some(text) = text else {
            return Ok(std::process::Stdio::null());
        };
        let path = area.root.join("stdin");
        std::fs::write(&path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
        let file =
            std::fs::File::open(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        Ok(file.into())
    }

    /// Step 2: a pids control group when root, else `RLIMIT_NPROC`.
    fn contain(
        req: &Request,
        containment: &mut Vec<String>,
        notes: &mut Vec<String>,
    ) -> Option<PidsCgroup> {
        if is_root() {
            match PidsCgroup::create(req.limits.processes) {
                Ok(c) => {
                    containment.push(format!("pids control group {} (pids.max {})", c.path().display(), req.limits.processes));
                    return Some(c);
                }
                Err(e) => notes.push(format!("no pids control group ({e}): a fork bomb run as root is only stopped by the deadline")),
            }
        } else {
            containment.push(format!(
                "RLIMIT_NPROC: {} more processes",
                req.limits.processes
            ));
        }
        None
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Tasks (threads) of this user now: `RLIMIT_NPROC` counts every
    /// thread of every process of the real user id, not processes.
    fn own_tasks() -> u64 {
        let uid = nix::unistd::getuid().as_raw().to_string();
        let field = |status: &str, key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        };
        procfs::snapshot()
            .keys()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter(|status| field(status, "Uid:").as_deref() == Some(uid.as_str()))
            .map(|status| {
                field(&status, "Threads:")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1)
            })
            .sum()
    }

    /// Step 3, in the child: session, limits, control group, signal mask.
    fn child_setup(
        l: &Limits,
        cgroup_procs: Option<&std::ffi::CStr>,
        nproc: Option<u64>,
    ) -> std::io::Result<()> {
        let fail = || Err(std::io::Error::last_os_error());
        let cpu = l.cpu_seconds;
        let limits = [
            (libc::RLIMIT_CPU, cpu, cpu + 1),
            (libc::RLIMIT_AS, l.memory_bytes, l.memory_bytes),
            (libc::RLIMIT_FSIZE, l.file_bytes, l.file_bytes),
            (libc::RLIMIT_NOFILE, l.open_files, l.open_files),
        ];
        // Each call below is async-signal-safe (this runs between fork and exec).
        // SAFETY: setsid(2) takes no arguments.
        if unsafe { libc::setsid() } < 0 {
            return fail();
        }
        for (res, soft, hard) in limits {
            // Never raise a limit (that needs privilege): at most the current hard one.
            // SAFETY: `rlimit` is plain data: all zeroes is a valid value.
            let mut cur: libc::rlimit = unsafe { std::mem::zeroed() };
            // SAFETY: a valid resource and a pointer to a live `rlimit` on our stack.
            unsafe { libc::getrlimit(res, &mut cur) };
            let r = libc::rlimit {
                rlim_cur: soft.min(cur.rlim_max),
                rlim_max: hard.min(cur.rlim_max),
            };
            // SAFETY: a valid resource and a pointer to a live `rlimit`.
            if unsafe { libc::setrlimit(res, &r) } != 0 {
                return fail();
            }
        }
        if let Some(n) = nproc {
            let r = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: a valid resource and a pointer to a live `rlimit`.
            if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &r) } != 0 {
                return fail();
            }
        }
        if let Some(path) = cgroup_procs {
            // SAFETY: `path` is a NUL-terminated C string that outlives the call.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            // SAFETY: write(2) of 2 bytes from a static buffer (to -1 it fails with EBADF,
            // but `||` does not reach it then).
            if fd < 0 || unsafe { libc::write(fd, b"0\n".as_ptr().cast(), 2) } != 2 {
                return fail();
            }
            // SAFETY: `fd` was opened above and is closed once.
            unsafe { libc::close(fd) };
        }
        // Every signal's default action: a grader started in the background
        // by a shell (CI, nohup) has SIGINT and SIGQUIT ignored, and a port
        // must not inherit that. (Caught signals are reset by exec anyway;
        // 32 and up are the real-time signals, some used by libc itself.)
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // SAFETY: SIG_DFL for a valid signal number that may be changed.
                unsafe { libc::signal(sig, libc::SIG_DFL) };
            }
        }
        // SAFETY: `sigset_t` is plain data: all zeroes is a valid value.
        let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: sigemptyset initialises the set we pass.
        unsafe { libc::sigemptyset(&mut empty) };
        // SAFETY: an initialised set; the old mask is not asked for (null).
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) };
        Ok(())
    }

    /// One output pipe: the first `cap` bytes are kept, the rest counted.
    struct Stream {
        fd: Option<OwnedFd>,
        kept: Vec<u8>,
        bytes: u64,
        cap: usize,
        writers: super::super::output::Writers, // g10
    }

    impl Stream {
        fn new(fd: OwnedFd, cap: usize, start: Instant) -> Stream {
            let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap_or(0);
            let flags =
                nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
            let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags));
            Stream {
                fd: Some(fd),
                kept: Vec::new(),
                bytes: 0,
                cap,
                writers: super::super::output::Writers::new(start), // g10
            }
        }

        /// Reads what is there (a bounded amount, so a flood cannot starve
        /// the loop); closes at end of file.
        fn drain(&mut self) {
            let mut buf = [0u8; 65536];
            for _ in 0..16 {
                let Some(fd) = &self.fd else { return };
                match super::super::output::recv(fd, &mut buf) {
                    Ok((0, _)) => {
                        self.fd = None;
                        return;
                    }
                    Ok((n, pid)) => {
                        self.bytes += n as u64;
                        let room = self.cap.saturating_sub(self.kept.len());
                        self.kept.extend_from_slice(&buf[..n.min(room)]);
                        self.writers.record(pid, n.min(room)); // g10
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(nix::errno::Errno::EAGAIN) => return,
                    Err(_) => {
                        self.fd = None;
                        return;
                    }
                }
            }
        }

        fn finish(&mut self) -> Captured {
            self.drain();
            Captured {
                text: String::from_utf8_lossy(&self.kept).into_owned(),
                bytes: self.bytes,
                truncated: self.bytes > self.kept.len() as u64,
                chunks: std::mem::replace(
                    &mut self.writers,
                    super::super::output::Writers::new(Instant::now()),
                )
                .into_chunks(), // g10
            }
        }
    }

    /// One read of the process table, by pid.
    type Table = std::collections::BTreeMap<i32, procfs::ProcStat>;

    /// Steps 4 and 5: the event loop.
    struct Watch {
        me: i32,
        main: i32,
        start: Instant,
        tree: Tree,
        tracer: Option<Tracer>,
        cgroup: Option<PidsCgroup>,
        out: Stream,
        err: Stream,
        main_exit: Option<(f64, ExitStatus)>,
        timed_out: bool,
        term_sent: Option<f64>,
        lingerers_killed: bool,
        empty_since: Option<f64>,
    }

    impl Watch {
        fn now(&self) -> f64 {
            self.start.elapsed().as_secs_f64()
        }

        fn follow(&mut self, req: &Request, sigfd: &SignalFd) {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            let interval = if self.tracer.is_some() { 20 } else { 5 };
            loop {
                {
                    let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
                    for s in [&self.out, &self.err] {
                        if let Some(fd) = &s.fd {
                            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                        }
                    }
                    let _ = poll(&mut fds, PollTimeout::from(interval as u16));
                }
                while let Ok(Some(_)) = sigfd.read_signal() {}
                self.out.drain();
                self.err.drain();
                // Who is alive is read *before* the reap: a process that ends
                // in between is then collected below, never left unrecorded
                // by a loop that sees no one alive and stops.
                // One read of /proc per pass, shared, and only when needed.
                // Who is alive matters only once the main process has exited
                // or the time is up; skipping it otherwise keeps a traced
                // port's many stops cheap (grade::trace, step 5).
                let mut table = None;
                let needed = self.main_exit.is_some() || self.now() > req.time_limit;
                let alive = if needed {
                    self.alive(&mut table)
                } else {
                    Vec::new()
                };
                self.reap();
                if self.tracer.is_none() {
                    self.sample(table.get_or_insert_with(procfs::snapshot));
                }
                let now = self.now();
                if needed && self.main_exit.is_some() && alive.is_empty() {
                    let since = *self.empty_since.get_or_insert(now);
                    let pipes_open = self.out.fd.is_some() || self.err.fd.is_some();
                    if !pipes_open || now > since + 0.2 {
                        return;
                    }
                }
                if let Some((t, _)) = self.main_exit
                    && needed
                    && !self.lingerers_killed
                    && now > t + req.linger
                {
                    self.lingerers_killed = true;
                    let why = format!(
                        "still running {:.2} s after the main process exited; killed by the grader",
                        now - t
                    );
                    self.kill(&alive, Signal::SIGKILL, &why);
                    for pid in &alive {
                        self.tree.proc(*pid, now).orphan = true;
                    }
                }
                if needed && !self.timed_out && now > req.time_limit {
                    self.timed_out = true;
                    self.term_sent = Some(now);
                    let why = format!(
                        "still running at the {:.1} s time limit; sent SIGTERM",
                        req.time_limit
                    );
                    self.kill(&alive, Signal::SIGTERM, &why);
                    if self.main_exit.is_some() {
                        // The main process is gone: whatever still runs is an orphan.
                        for pid in &alive {
                            self.tree.proc(*pid, now).orphan = true;
                        }
                    }
                }
                if let Some(t) = self.term_sent
                    && now > t + req.grace
                {
                    let why = format!(
                        "still running {:.1} s after SIGTERM; killed with SIGKILL",
                        req.grace
                    );
                    self.kill(&alive, Signal::SIGKILL, &why);
                }
                if now > req.time_limit + req.grace + 10.0 {
                    return; // nothing more can be done; the outcome lists what is left
                }
            }
        }

        /// The tree's live processes: the control group's list, or this
        /// process's descendants in `/proc` (it is their subreaper).
        ///
        /// An empty group is confirmed in `/proc`: an exiting process leaves
        /// its control group (`cgroup_exit`) *before* it becomes a zombie its
        /// parent can wait for (`exit_notify`), and in that window only
        /// `/proc` still shows it.
        ///
        /// `table` is this pass's read of `/proc`, made here if needed.
        fn alive(&self, table: &mut Option<Table>) -> Vec<i32> {
            let mut pids = self.cgroup.as_ref().map(|c| c.procs()).unwrap_or_default();
            if pids.is_empty() {
                let table = table.get_or_insert_with(procfs::snapshot);
                return procfs::descendants(table, self.me)
                    .into_iter()
                    .filter(|p| table.get(p).is_some_and(|s| !s.is_zombie()))
                    .collect();
            }
            pids.retain(|p| procfs::state_of(*p).is_some_and(|s| s != 'Z'));
            pids
        }

        fn kill(&mut self, pids: &[i32], sig: Signal, why: &str) {
            let now = self.now();
            for &pid in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
                let r = self.tree.proc(pid, now);
                if r.exited.is_none() && (sig == Signal::SIGKILL || r.killed.is_none()) {
                    r.killed = Some(why.to_string());
                }
            }
        }

        /// Collects every report: tracer stops, exits of tracees, adopted
        /// orphans and the main process.
        fn reap(&mut self) {
            loop {
                let mut status = 0;
                // SAFETY: status is a valid int; this process owns all its
                // children and tracees (see the module doc).
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
                if pid <= 0 {
                    return;
                }
                let now = self.now();
                let exited = libc::WIFEXITED(status) || libc::WIFSIGNALED(status);
                if exited && pid == self.main && self.main_exit.is_none() {
                    self.main_exit = Some((now, ExitStatus::from_raw(status)));
                }
                match &mut self.tracer {
                    Some(t) => t.handle(&mut self.tree, pid, status, now),
                    None if exited => self.tree.on_exit(pid, ExitStatus::from_raw(status), now),
                    None => {}
                }
            }
        }

        /// Untraced runs: sample the tree (this pass's `table`) to see
        /// zombies and adoptions.
        fn sample(&mut self, table: &Table) {
            let now = self.now();
            // Zombies are not listed in a control group: walk /proc.
            for pid in procfs::descendants(table, self.me) {
                let Some(s) = table.get(&pid) else { continue };
                let (me, main) = (self.me, self.main);
                let r = self.tree.proc(pid, now);
                if r.parent == 0 && pid != main {
                    r.parent = s.ppid;
                }
                if s.is_zombie() && s.ppid != me && r.seen_zombie.is_none() {
                    r.seen_zombie = Some((s.ppid, now));
                }
                if !s.is_zombie() && s.ppid == me && pid != main && r.seen_adopted.is_none() {
                    r.seen_adopted = Some(now);
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn own_tasks_counts_every_thread_as_rlimit_nproc_does() {
            let gate = std::sync::Arc::new(std::sync::Barrier::new(17));
            let threads: Vec<_> = (0..16)
                .map(|_| {
                    let gate = gate.clone();
                    std::thread::spawn(move || {
                        gate.wait();
                    })
                })
                .collect();
            let mine = std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap();
            assert!(mine > 16);
            assert!(super::own_tasks() >= mine);
            gate.wait();
            for t in threads {
                t.join().unwrap();
            }
        }
    }
}
