//! Running a command under the audit (`ipckit audit -- CMD`).
//!
//! The steps, in order:
//! 0. before [`run()`], [`enter_pid_namespace`]: the audit splits in two
//!    ([`super::pidns`]); PID 1 of a new PID namespace does the rest, and
//!    every process of the tree dies with it;
//! 1. make a private work area (a fresh `TMPDIR`), try to enter private
//!    namespaces ([`super::isolate`]), become a subreaper, snapshot the ledger;
//! 2. start the command in a session of its own (`setsid(2)`);
//! 3. every few milliseconds, reap whatever died (`waitpid(-1, WNOHANG)`: this
//!    process is the adopter of every orphan in the tree) and sample the tree
//!    from `/proc`, noting each process that sits as a zombie under a parent
//!    that is not us;
//! 4. once the command has exited, give adopted orphans a short time to end by
//!    themselves, then kill (`SIGKILL`) and reap whatever still runs; past
//!    the deadline, kill the whole tree (in a PID namespace, with one
//!    `kill(-1)` before each sample). Whatever has not died
//!    [`KILL_MARGIN`] after the first kill is given up on and named in the
//!    notes (a process stuck in the kernel cannot be made to die);
//! 5. diff the ledger, remove every object the tree left, and report.
//!
//! This function owns every child of the calling process (it waits for any
//! child): call it only from a process of its own, as the `ipckit` command
//! line does. Never call it inside a test binary.

use super::ledger::{self, Ledger, Sources};
use super::procfs::{self, ProcStat};
use super::tree::{ProcessCap, Runner, WorkArea};
use super::{Finding, Isolation, Leak, Options, Report};
use crate::error::{Error, Result};
use crate::process::ExitStatus;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the audit goes on killing and reaping, after its first kill,
/// before it stops waiting for the tree to be gone.
const KILL_MARGIN: Duration = Duration::from_secs(5);

/// What the audit knows about one process of the tree.
#[derive(Debug, Clone, Default)]
struct Seen {
    comm: String,
    cmdline: String,
    first_parent: i32,
    /// `(parent, seconds)` the first time it was seen as a zombie under a
    /// parent other than the audit.
    zombie_under: Option<(i32, f64)>,
    /// Seen running after being adopted by the audit.
    adopted_alive: Option<f64>,
    /// Reaped by the audit: when, and how it had ended.
    reaped: Option<(f64, ExitStatus)>,
    /// Killed by the audit at the end.
    killed: bool,
    /// Killed by the audit although its run was not over: why.
    killed_early: Option<String>,
}

/// Runs `argv` under the audit and returns the report. The run's own exit
/// status is in [`Report::exit`].
pub fn run(argv: &[String], opts: &Options) -> Result<Report> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::invalid("command", "nothing to run"))?;
    let me = std::process::id() as i32;
    super::interrupt::not_dumpable();
    let area = WorkArea::new("audit")?;
    let (tmpdir, mq_dir) = (&area.tmp, &area.mqueue);
    let mut notes = Vec::new();
    let isolation = prepare_namespaces(opts, mq_dir, &mut notes);
    let cap = process_cap(opts, &isolation, &mut notes);
    require_containment(&cap, &mut notes)?;
    let _subreaper = super::Subreaper::acquire()?;
    let sources = ledger_sources(mq_dir, tmpdir, opts, &mut notes);
    let before = Ledger::snapshot(&sources);

    let start = Instant::now();
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).env("TMPDIR", tmpdir);
    if opts.stdout_to_stderr {
        cmd.stdout(std::io::stderr());
    }
    let in_child = cap.clone();
    let hook = move || {
        nix::unistd::setsid().map_err(std::io::Error::from)?;
        // SAFETY: this runs in the child between fork and exec; setrlimit,
        // open, write and close are async-signal-safe.
        unsafe { in_child.apply_in_child() }
    };
    // SAFETY: the hook only calls async-signal-safe functions (setsid, and
    // those above), and this process is single-threaded.
    unsafe { cmd.pre_exec(hook) };
    let child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting {program}"), e))?;
    let main_pid = child.id() as i32;
    match cap.cpu_share(main_pid) {
        Ok(how) => notes.push(format!("scheduled as one process: {how}")),
        Err(why) => notes.push(format!(
            "not scheduled as one process ({why}): a fork bomb of many sessions can starve the audit until its deadline"
        )),
    }
    drop(child); // we reap it ourselves, with waitpid(-1)

    let mut watch = Watch {
        me,
        main_pid,
        start,
        seen: BTreeMap::new(),
        main_exit: None,
        timed_out: false,
        interrupted: None,
    };
    watch.follow(opts, &mut notes);
    let seconds = start.elapsed().as_secs_f64();

    let after = Ledger::snapshot(&sources);
    let leaks = attribute(after.new_since(&before), &watch, &isolation, tmpdir);
    if watch.timed_out {
        notes.push(format!(
            "the run passed its {:?} deadline; the whole tree was killed",
            opts.deadline
        ));
    }
    Ok(watch.report(argv, seconds, isolation, leaks, notes))
}

/// Step 0, before [`run()`], in a process with one thread: gives the run a
/// PID namespace of its own (`audit::pidns`) when `opts.isolate` and the
/// kernel allows it. `Some(status)` in the outer process, once the run is
/// over: exit with it. `None` in PID 1 of the namespace (or where the
/// namespace was refused, the reason kept for the report): call [`run()`].
pub fn enter_pid_namespace(opts: &Options) -> Option<i32> {
    if !opts.isolate {
        return None;
    }
    super::interrupt::not_dumpable();
    match super::pidns::enter("audit") {
        Ok(super::pidns::Side::Outer(status)) => Some(status),
        Ok(super::pidns::Side::Inner) => None,
        Err(e) => {
            super::pidns::refused(e.to_string());
            None
        }
    }
}

/// Refuses to run when nothing contains a fork bomb (no pids control
/// group, no PID namespace); says in `notes` which pids the report names.
fn require_containment(cap: &ProcessCap, notes: &mut Vec<String>) -> Result<()> {
    if super::pidns::inside() {
        notes.push(format!(
            "a PID namespace of its own: pids in this report are the namespace's (the audit is PID 1 there, pid {} on the host); every process left dies with the audit",
            super::tree::run_id()
        ));
        return cap.require_containment(Some("a PID namespace of its own"));
    }
    let why = super::pidns::why_not().unwrap_or("isolation off: --no-isolate");
    notes.push(format!(
        "no PID namespace ({why}): pids are the host's; a process that calls setsid(2) is contained only by the pids control group"
    ));
    cap.require_containment(None).map_err(|e| match e {
        Error::Unsupported(refusal) => {
            Error::Unsupported(format!("{refusal}; no PID namespace: {why}"))
        }
        other => other,
    })
}

/// The cap on the tree's processes (see [`super::tree::ProcessCap`]): a
/// fork bomb under the audit fails with `EAGAIN` instead of loading the
/// machine until the deadline.
fn process_cap(
    opts: &Options,
    isolation: &Isolation,
    notes: &mut Vec<String>,
) -> std::sync::Arc<ProcessCap> {
    // RLIMIT_NPROC counts the tasks of the real uid in its user namespace:
    // in a PID namespace of its own, the outer audit process and PID 1.
    let runner = if nix::unistd::geteuid().is_root() {
        Runner::Root
    } else if super::pidns::inside() {
        Runner::OwnUid { already: 2 }
    } else if *isolation == Isolation::Namespaces {
        Runner::OwnUid { already: 1 }
    } else {
        Runner::SharedUid
    };
    let cap = ProcessCap::new("audit", opts.max_processes, runner, false);
    match &cap.how {
        Ok(how) => notes.push(format!("processes capped: {how}")),
        Err(why) => notes.push(format!(
            "processes not capped ({why}): a fork bomb is only stopped by the deadline"
        )),
    }
    std::sync::Arc::new(cap)
}

pub(crate) fn prepare_namespaces(
    opts: &Options,
    mq_dir: &Path,
    notes: &mut Vec<String>,
) -> Isolation {
    if !opts.isolate {
        notes.push("isolation off: objects are attributed by creator pid or timing".into());
        return Isolation::Shared;
    }
    match super::isolate::enter_private_namespaces(mq_dir) {
        Ok(()) => Isolation::Namespaces,
        Err(e) => {
            notes.push(format!(
                "no private namespaces ({e}); objects are attributed by creator pid or timing"
            ));
            Isolation::Shared
        }
    }
}

pub(crate) fn ledger_sources(
    mq_dir: &Path,
    tmpdir: &Path,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Sources {
    let mut sources = Sources::default();
    if ledger::is_mqueue_mount(mq_dir) {
        sources.mqueue_dir = Some(mq_dir.to_path_buf());
    } else if sources.mqueue_dir.is_none() {
        match super::isolate::mount_mqueue(mq_dir) {
            Ok(()) => sources.mqueue_dir = Some(mq_dir.to_path_buf()),
            Err(e) => notes.push(format!("POSIX message queues cannot be listed here: no mqueue file system is mounted and mounting one failed ({e})")),
        }
    }
    sources.temp_dirs.push(tmpdir.to_path_buf());
    sources.watch_dirs.extend(opts.watch_dirs.iter().cloned());
    sources
}

struct Watch {
    me: i32,
    main_pid: i32,
    start: Instant,
    seen: BTreeMap<i32, Seen>,
    main_exit: Option<(f64, ExitStatus)>,
    timed_out: bool,
    interrupted: Option<i32>,
}

impl Watch {
    /// Steps 3 and 4: reap and sample until the tree is empty, or until
    /// [`hard_stop`] (what is left then is named in `notes`).
    fn follow(&mut self, opts: &Options, notes: &mut Vec<String>) {
        let mut killing = false;
        loop {
            // A kill sent before this pass's snapshot: what the snapshot
            // still shows has outlived a SIGKILL.
            let killed_before = killing;
            if killing && super::pidns::inside() {
                // Before the snapshot: reading a forking process's /proc
                // files waits for its fork (see `kill_namespace`).
                kill_namespace();
            }
            self.reap_all();
            let table = procfs::snapshot();
            let tree = procfs::descendants(&table, self.me);
            let (start, deadline) = (self.start, opts.deadline);
            self.sample_all(&table, &tree, || start.elapsed() > deadline);
            if tree.is_empty() && self.main_exit.is_some() {
                return;
            }
            let now = self.start.elapsed();
            let past_linger = self
                .main_exit
                .is_some_and(|(t, _)| now.as_secs_f64() > t + opts.linger.as_secs_f64());
            if now > opts.deadline {
                self.timed_out = true;
            }
            if self.interrupted.is_none()
                && let Some(sig) = super::interrupt::interrupted()
            {
                self.interrupted = Some(sig);
                notes.push(format!(
                    "the audit was interrupted by {}: the whole tree was killed",
                    super::interrupt::signal_name(sig)
                ));
            }
            if past_linger || self.timed_out || self.interrupted.is_some() {
                self.kill_all(&table, &tree);
                killing = true;
            }
            let stop = hard_stop(self.main_exit.map(|(t, _)| t), opts);
            if killed_before && now.as_secs_f64() > stop {
                notes.push(format!(
                    "gave up at {stop:.2} s: still in the tree after SIGKILL: pid(s) {tree:?}"
                ));
                return;
            }
            std::thread::sleep(opts.interval);
        }
    }

    /// Samples each process of `tree` from the snapshot `table`. Sampling a
    /// new process also reads its command line, which waits while the
    /// process is in `fork(2)` (see [`kill_namespace`]): in a fork bomb each
    /// read waits, and reading all 64 before looking at the clock again once
    /// put the kill 2.4 s after a 0.3 s deadline. So the clock is asked
    /// before each process, and once `past_deadline()` says so, the rest are
    /// sampled from the snapshot alone (name, parent, state), without their
    /// command lines, and the kill comes next.
    fn sample_all(
        &mut self,
        table: &BTreeMap<i32, ProcStat>,
        tree: &std::collections::BTreeSet<i32>,
        past_deadline: impl Fn() -> bool,
    ) {
        for pid in tree {
            let read_cmdline = !past_deadline();
            self.sample(&table[pid], read_cmdline);
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn sample(&mut self, s: &ProcStat, read_cmdline: bool) {
        let now = self.now();
        let (me, main) = (self.me, self.main_pid);
        let entry = self.seen.entry(s.pid).or_insert_with(|| Seen {
            comm: s.comm.clone(),
            first_parent: s.ppid,
            ..Default::default()
        });
        if !s.is_zombie() && entry.comm != s.comm {
            // It called exec (or was caught half-way through): name it by what it runs now.
            entry.comm.clone_from(&s.comm);
            entry.cmdline.clear();
        }
        if read_cmdline && !s.is_zombie() && entry.cmdline.is_empty() {
            entry.cmdline = procfs::cmdline(s.pid);
        }
        if s.is_zombie() && s.ppid != me && entry.zombie_under.is_none() {
            entry.zombie_under = Some((s.ppid, now));
        }
        if !s.is_zombie() && s.ppid == me && s.pid != main && entry.adopted_alive.is_none() {
            entry.adopted_alive = Some(now);
        }
    }

    fn reap_all(&mut self) {
        // This process owns all its children (see the module doc).
        while let Some((pid, status)) = super::tree::reap_next() {
            let st = ExitStatus::from_raw(status);
            let now = self.now();
            if libc::WIFSTOPPED(status) {
                // Only a tracee reports a stop without WUNTRACED: the process
                // made the audit its tracer (PTRACE_TRACEME). The audit never
                // resumes it, so it would wait for ever: it is killed.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                self.seen.entry(pid).or_default().killed_early = Some(format!(
                    "stopped at {now:.2} s in a ptrace stop ({st}): it made the audit its tracer (PTRACE_TRACEME); killed by the audit"
                ));
                continue;
            }
            if pid == self.main_pid {
                self.main_exit = Some((now, st));
            }
            self.seen.entry(pid).or_default().reaped = Some((now, st));
        }
    }

    /// `SIGKILL` to every pid of the tree, zombies included: a process whose
    /// main thread has exited shows `Z` while its other threads still run,
    /// and a signal to a real zombie does nothing.
    ///
    /// A pid counts as killed (an orphan still running) unless it is a zombie
    /// under another parent: a zombie child of the audit that survived the
    /// `waitpid` just before this snapshot is a main thread whose other
    /// threads still run.
    ///
    /// As PID 1 of a PID namespace of its own, the audit first kills every
    /// other process of the namespace at once (`kill(-1)`, `kill(2)`): no
    /// fork can slip between that and the kill, so a fork bomb dies in one
    /// pass instead of refilling its cap as the pids are killed one by one.
    fn kill_all(
        &mut self,
        table: &BTreeMap<i32, ProcStat>,
        tree: &std::collections::BTreeSet<i32>,
    ) {
        if super::pidns::inside() {
            kill_namespace();
        }
        for pid in tree {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            if table
                .get(pid)
                .is_some_and(|s| !s.is_zombie() || s.ppid == self.me)
            {
                self.seen.entry(*pid).or_default().killed = true;
            }
        }
    }

    fn report(
        self,
        argv: &[String],
        seconds: f64,
        isolation: Isolation,
        leaks: Vec<Leak>,
        notes: Vec<String>,
    ) -> Report {
        let mut zombies = Vec::new();
        let mut orphans = Vec::new();
        let mut adopted = Vec::new();
        let mut killed = Vec::new();
        for (pid, s) in &self.seen {
            let why = match (&s.killed_early, self.interrupted) {
                (Some(why), _) => why.clone(),
                (None, Some(sig)) if s.killed || (*pid == self.main_pid && s.reaped.is_none()) => {
                    format!(
                        "killed by the audit: interrupted by {}",
                        super::interrupt::signal_name(sig)
                    )
                }
                _ => continue,
            };
            killed.push(Finding {
                pid: *pid,
                parent: s.first_parent,
                command: shown(s),
                detail: why,
            });
        }
        for (&pid, s) in &self.seen {
            if pid == self.main_pid {
                continue;
            }
            let finding = |detail: String| Finding {
                pid,
                parent: s.first_parent,
                command: shown(s),
                detail,
            };
            if s.killed {
                let when = match (self.main_exit, self.timed_out, self.interrupted) {
                    (_, true, _) => "still running at the deadline".to_string(),
                    (_, _, Some(_)) => "still running when the audit was interrupted".to_string(),
                    (Some((t, _)), ..) => format!(
                        "still running {:.2} s after the command exited",
                        seconds - t
                    ),
                    (None, ..) => "still running".to_string(),
                };
                orphans.push(finding(format!("{when}; killed by the audit")));
            } else if let (Some((parent, t)), Some((t2, st))) = (s.zombie_under, s.reaped) {
                zombies.push(finding(format!(
                    "exited by {t:.2} s ({st}) but its parent {parent} never waited for it; adopted and reaped by the audit at {t2:.2} s"
                )));
            } else if let Some((t2, st)) = s.reaped {
                let how = match s.adopted_alive {
                    Some(t) => format!("adopted while running at {t:.2} s"),
                    None => "adopted, not seen running".to_string(),
                };
                adopted.push(finding(format!(
                    "{how}; ended by itself at {t2:.2} s ({st}) and was reaped by the audit"
                )));
            }
        }
        Report {
            command: argv.to_vec(),
            exit: self.main_exit.map(|(_, s)| s),
            seconds,
            isolation,
            audit_pid: self.me,
            processes_seen: self.seen.len(),
            zombies,
            orphans,
            adopted,
            leaks,
            notes,
            timed_out: self.timed_out,
            killed,
            interrupted: self.interrupted.map(super::interrupt::signal_name),
        }
    }
}

/// `kill(-1, SIGKILL)` from PID 1 of the audit's own PID namespace: every
/// other process of the namespace, at once (`kill(2)`). A fork bomb under
/// a pids control group spends its time in `fork(2)`, which copies the
/// address space before the group refuses it; meanwhile reading its
/// `/proc/<pid>/cmdline` waits, so a pass of [`Watch::follow`] can take
/// seconds on a loaded machine. The kill needs no snapshot.
fn kill_namespace() {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-1),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// When [`Watch::follow`] stops waiting, in seconds from the start:
/// [`KILL_MARGIN`] after the first kill, which comes at the deadline, or
/// `linger` after the command's own exit (at `main_exit`) if that is sooner.
fn hard_stop(main_exit: Option<f64>, opts: &Options) -> f64 {
    let deadline = opts.deadline.as_secs_f64();
    let first_kill = main_exit.map_or(deadline, |t| (t + opts.linger.as_secs_f64()).min(deadline));
    first_kill + KILL_MARGIN.as_secs_f64()
}

fn shown(s: &Seen) -> String {
    if s.cmdline.is_empty() {
        format!("[{}]", s.comm)
    } else {
        s.cmdline.clone()
    }
}

/// Step 5: decide which new objects are the tree's, and remove them.
fn attribute(
    new: Vec<ledger::IpcObject>,
    watch: &Watch,
    isolation: &Isolation,
    tmpdir: &Path,
) -> Vec<Leak> {
    let tree_pids: std::collections::BTreeSet<i32> = watch.seen.keys().copied().collect();
    let mut leaks = Vec::new();
    for object in new {
        let by_pid = object.pids.iter().find(|p| tree_pids.contains(p));
        let attribution = if *isolation == Isolation::Namespaces {
            "made in the run's private namespace".to_string()
        } else if object.found_in.starts_with(&*tmpdir.to_string_lossy()) {
            "in the run's private TMPDIR".to_string()
        } else if let Some(pid) = by_pid {
            format!("the kernel records pid {pid} of the tree")
        } else {
            "appeared during the run (attributed by timing only)".to_string()
        };
        let removed = ledger::remove(&object).is_ok();
        leaks.push(Leak {
            object,
            attribution,
            removed,
        });
    }
    leaks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(linger: f64, deadline: f64) -> Options {
        Options {
            linger: Duration::from_secs_f64(linger),
            deadline: Duration::from_secs_f64(deadline),
            ..Default::default()
        }
    }

    /// A watch of this process's own tree.
    fn watch() -> Watch {
        let me = std::process::id() as i32;
        Watch {
            me,
            main_pid: me,
            start: Instant::now(),
            seen: BTreeMap::new(),
            main_exit: None,
            timed_out: false,
            interrupted: None,
        }
    }

    /// Samples this process and its parent, with the deadline passing after
    /// `calls_before` questions to the clock; returns what was seen of each,
    /// in sampling order.
    fn sampled(calls_before: usize) -> Vec<Seen> {
        let table = procfs::snapshot();
        let me = std::process::id() as i32;
        let tree = std::collections::BTreeSet::from([me, table[&me].ppid]);
        let mut w = watch();
        let calls = std::cell::Cell::new(0);
        w.sample_all(&table, &tree, || {
            calls.set(calls.get() + 1);
            calls.get() > calls_before
        });
        tree.iter().map(|pid| w.seen.remove(pid).unwrap()).collect()
    }

    #[test]
    fn within_the_deadline_every_process_is_named_by_its_command_line() {
        for s in sampled(usize::MAX) {
            assert!(!s.cmdline.is_empty(), "{s:?}");
        }
    }

    #[test]
    fn once_past_the_deadline_no_command_line_is_read_but_the_process_is_still_seen() {
        let [first, second] = <[Seen; 2]>::try_from(sampled(1)).unwrap();
        assert!(!first.cmdline.is_empty(), "before the deadline: {first:?}");
        assert!(
            second.cmdline.is_empty(),
            "read after the deadline: {second:?}"
        );
        assert!(
            !second.comm.is_empty(),
            "named from the snapshot: {second:?}"
        );
    }

    #[test]
    fn a_tree_that_will_not_die_is_given_up_on_after_the_deadline_and_a_margin() {
        let margin = KILL_MARGIN.as_secs_f64();
        assert_eq!(hard_stop(None, &opts(1.5, 2.0)), 2.0 + margin);
    }

    #[test]
    fn after_the_command_exits_the_hard_stop_follows_the_linger_unless_the_deadline_is_sooner() {
        let margin = KILL_MARGIN.as_secs_f64();
        assert_eq!(hard_stop(Some(1.0), &opts(1.5, 600.0)), 2.5 + margin);
        assert_eq!(hard_stop(Some(1.0), &opts(1.5, 2.0)), 2.0 + margin);
    }
}
