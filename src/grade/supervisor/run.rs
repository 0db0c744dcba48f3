//! Steps 1 to 6 of one supervised run, in order (see the module doc of
//! [`super`]): work area and namespaces, process cap, the port started,
//! watched, and cleaned up after.

use super::super::containment::{Containment, Piece};
use super::super::trace::{self, Tracer};
use super::limits::{child_setup, is_root, port_user, uid_piece, written_outside};
use super::namespaces::{listing_piece, namespaces_piece};
use super::watch::{Stream, Watch};
use super::*;
use crate::audit::Isolation;
use crate::audit::ledger::Ledger;
use crate::audit::tree::{ProcessCap, Runner, WorkArea};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::unix::process::CommandExt;
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
            let why = format!("tracing was refused ({e})");
            o.containment.tracing.how.clone_from(&why);
            o.untraced_reason = Some(why);
            Ok(o)
        }
        other => other,
    }
}

pub(super) fn tracing_piece(traced: bool, asked: bool) -> Piece {
    if traced {
        Piece::held(
            "ptrace + seccomp",
            "who forked, who reaped whom and which mechanism was used are known",
        )
    } else {
        Piece::missing(
            if asked {
                "tracing was refused"
            } else {
                "tracing was off (--no-trace)"
            },
            "zombies and orphans are sampled from /proc; checks that need the trace (mechanism, kernel reaping) are not performed",
        )
    }
}

pub(super) fn run(req: &Request, trace: bool) -> Result<Outcome> {
    let me = std::process::id() as i32;
    // The run's name on the host (the outer supervisor's pid inside a PID
    // namespace): its mark, its fresh uid, its folders and group.
    let id = crate::audit::tree::run_id() as i32;
    let area = WorkArea::new("grade")?;
    let mut notes = Vec::new();
    let audit_opts = crate::audit::Options {
        isolate: req.isolate,
        ..Default::default()
    };
    let isolation = crate::audit::run::prepare_namespaces(&audit_opts, &area.mqueue, &mut notes);
    let _subreaper = crate::audit::Subreaper::acquire()?;
    let mut sources =
        crate::audit::run::ledger_sources(&area.mqueue, &area.tmp, &audit_opts, &mut notes);
    sources.temp_dirs.push(area.work.clone());
    let before = Ledger::snapshot(&sources);
    let mut containment = Containment {
        namespaces: namespaces_piece(&isolation, &notes),
        ipc_listing: listing_piece(&sources, &notes),
        uid_drop: uid_piece(None),
        ..Default::default()
    };
    let user = port_user(req.run_as, id);
    if let Some((uid, gid)) = user {
        for d in [&area.tmp, &area.work] {
            crate::sys::nix(
                "chown",
                d.display(),
                nix::unistd::chown(d.as_path(), Some(uid.into()), Some(gid.into())),
            )?;
        }
        containment.uid_drop = uid_piece(Some(uid));
    }

    let mut mask = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        mask.add(sig);
    }
    crate::sys::nix(
        "sigprocmask",
        "block SIGCHLD, SIGINT, SIGTERM, SIGHUP",
        mask.thread_block(),
    )?;
    let sigfd = crate::sys::nix(
        "signalfd",
        "SIGCHLD, SIGINT, SIGTERM, SIGHUP",
        SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC),
    )?;

    let start = Instant::now();
    let filter = trace::filter();
    // RLIMIT_NPROC counts the tasks of the real uid in its user namespace
    // (user_namespaces(7), "ucounts"): a fresh uid starts from none, the
    // grader's uid in a user namespace of its own from this supervisor.
    let runner = if is_root() {
        Runner::Root
    } else if crate::audit::pidns::inside() {
        // The outer supervisor and this PID 1, in the user namespace.
        Runner::OwnUid { already: 2 }
    } else if isolation == Isolation::Namespaces {
        Runner::OwnUid { already: 1 }
    } else {
        Runner::SharedUid
    };
    let cap = ProcessCap::new("grade", req.limits.processes, runner, user.is_some());
    containment.pids_limit = super::limits::cap_piece(&cap);
    let otherwise = if crate::audit::pidns::inside() {
        Some("a PID namespace of its own")
    } else if user.is_some() && req.run_as == RunAs::Fresh {
        Some("a fresh uid, swept with kill(-1)")
    } else {
        None
    };
    cap.require_containment(otherwise)?;
    let cap = std::sync::Arc::new(cap);
    let in_child = cap.clone();
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
        .env(RUN_MARK, id.to_string())
        .stdin(port_stdin(&area, req.stdin.as_deref())?);
    // g10: standard output and error are socket pairs that name each writer (grade::output).
    let (stdout, port_out) = super::super::output::stream_pair()?;
    let (stderr, port_err) = super::super::output::stream_pair()?;
    cmd.stdout(port_out).stderr(port_err);
    let hook = move || {
        child_setup(&limits, &in_child, user)?;
        if trace {
            // SAFETY: this runs in the forked child before exec (pre_exec).
            unsafe { trace::install_in_child(&filter) }?;
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec of this
    // single-threaded process and makes only async-signal-safe calls
    // (setsid, setrlimit, open/write/close, sigprocmask, prctl, ptrace);
    // the filter was built before the fork.
    unsafe {
        cmd.pre_exec(hook);
    }
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
    containment.cpu_share = super::limits::cpu_piece(cap.cpu_share(main));
    drop((child, cmd)); // g10: `cmd` holds the port's ends of the output sockets
    // Until the watch loop takes over (it reaps with waitpid(-1)), the
    // guard owns the port: were the trace not to start, the port, stopped
    // at its exec, is killed and reaped, not left behind.
    let port = crate::process::ChildGuard::adopt(nix::unistd::Pid::from_raw(main));
    let mut tracer = Tracer::default();
    tracer.shared_memory = req.shared_memory;
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
            reaper: Some(me),
            ..Default::default()
        },
        tracer: trace.then_some(tracer),
        cap,
        out: Stream::new(stdout, req.output_cap, start),
        err: Stream::new(stderr, req.output_cap, start),
        main_exit: None,
        timed_out: false,
        term_sent: None,
        lingerers_killed: false,
        empty_since: None,
        interrupted: None,
        stopped: Default::default(),
        time_limit: req.time_limit,
    };
    watch.tree.proc(main, 0.0);
    watch.follow(req, &sigfd);
    if let (Some((uid, _)), RunAs::Fresh, false) = (user, req.run_as, crate::audit::pidns::inside())
    {
        // No PID namespace to die with: whatever of the fresh uid escaped
        // the tree (setsid, a double fork) is killed by uid.
        match super::limits::sweep_uid(uid) {
            Ok(s) if s.before + s.after > 0 => notes.push(format!(
                "processes of uid {uid} after the run: {} alive before one kill(-1) as that uid, {} after it",
                s.before, s.after
            )),
            Ok(_) => {}
            Err(why) => notes.push(format!(
                "the processes of uid {uid} could not be swept after the run: {why}"
            )),
        }
        watch.reap();
    }
    let seconds = start.elapsed().as_secs_f64();

    let after = Ledger::snapshot(&sources);
    // In the host's namespaces with a fresh uid, only that uid's objects are
    // the port's: another process's object is neither blamed nor removed.
    let fresh = match (user, req.run_as) {
        (Some((uid, _)), RunAs::Fresh) if isolation == Isolation::Shared => Some(uid),
        _ => None,
    };
    let mut leaks: Vec<Leak> = after
        .new_since(&before)
        .into_iter()
        .filter(|object| fresh.is_none_or(|uid| object.owner == Some(uid)))
        .map(|object| {
            // Root without CAP_SYS_ADMIN may not remove a System V object of
            // the port's uid (msgctl(2): owner, creator or CAP_SYS_ADMIN):
            // it is then removed as that uid.
            let removed = crate::audit::ledger::remove(&object).is_ok()
                || user.is_some_and(|(uid, gid)| super::limits::remove_as(uid, gid, &object));
            let attribution = match isolation {
                Isolation::Namespaces => "made in the run's private namespace",
                Isolation::Shared if fresh.is_some() => {
                    "made by the port's fresh uid (host namespaces)"
                }
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
    // Only a fresh uid's files are certainly the port's.
    if let (Some((uid, _)), RunAs::Fresh) = (user, req.run_as) {
        leaks.extend(written_outside(uid, &area.root));
    }
    let left_running = watch.alive(&mut None);
    let _ = mask.thread_unblock();
    if watch.timed_out {
        notes.push(format!(
            "the run passed its {:.1} s time limit; the whole tree was killed",
            req.time_limit
        ));
    }
    let stops = watch.tracer.as_ref().map_or(0, |t| t.stops);
    let mut stopped: Vec<(i32, f64)> = watch
        .tracer
        .as_ref()
        .map(|t| t.stopped.iter().map(|(p, t)| (*p, *t)).collect())
        .unwrap_or_default();
    stopped.extend(watch.stopped.iter().map(|(p, t)| (*p, *t)));
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
        containment: Containment {
            tracing: tracing_piece(trace, req.trace),
            ..containment
        },
        tree: watch.tree,
        leaks,
        left_running,
        notes,
        stops,
        stopped,
        interrupted: watch.interrupted.map(crate::audit::interrupt::signal_name),
        sabotage: None,
    })
}

/// The port's standard input: `/dev/null`, or the request's text from
/// a file in the work area (outside the folders the ledger watches), as
/// a shell's `< input.txt` would give it; removed with the area.
fn port_stdin(area: &WorkArea, text: Option<&str>) -> Result<std::process::Stdio> {
    let Some(text) = text else {
        return Ok(std::process::Stdio::null());
    };
    let path = area.root.join("stdin");
    std::fs::write(&path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
    let file = std::fs::File::open(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
    Ok(file.into())
}
