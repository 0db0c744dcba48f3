//! Steps 4 and 5: the event loop. `poll(2)` on a `signalfd(2)` (`SIGCHLD`,
//! and the interrupts) and on both output pipes; every report of a child is
//! handed to the tracer or recorded; deadlines send `SIGTERM` then
//! `SIGKILL` to the whole tree.

use super::super::trace::Tracer;
use super::*;
use crate::audit::procfs;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

/// One output stream (a socket pair that names each writer, see
/// `grade::output`): the first `cap` bytes are kept, the rest counted.
pub(super) struct Stream {
    pub(super) fd: Option<OwnedFd>,
    pub(super) kept: Vec<u8>,
    pub(super) bytes: u64,
    pub(super) cap: usize,
    /// Which process wrote each chunk (g10: `grade::output`).
    pub(super) writers: super::super::output::Writers,
}

impl Stream {
    pub(super) fn new(fd: OwnedFd, cap: usize, start: Instant) -> Stream {
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap_or(0);
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags));
        Stream {
            fd: Some(fd),
            kept: Vec::new(),
            bytes: 0,
            cap,
            writers: super::super::output::Writers::new(start),
        }
    }

    /// Reads what is there (a bounded amount, so a flood cannot starve
    /// the loop); closes at end of file.
    pub(super) fn drain(&mut self) {
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
                    self.writers.record(pid, n.min(room));
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

    pub(super) fn finish(&mut self) -> Captured {
        self.drain();
        Captured {
            text: String::from_utf8_lossy(&self.kept).into_owned(),
            bytes: self.bytes,
            truncated: self.bytes > self.kept.len() as u64,
            chunks: std::mem::replace(
                &mut self.writers,
                super::super::output::Writers::new(Instant::now()),
            )
            .into_chunks(),
        }
    }
}

/// One read of the process table, by pid.
pub(super) type Table = std::collections::BTreeMap<i32, procfs::ProcStat>;

/// Steps 4 and 5: the event loop.
pub(super) struct Watch {
    pub(super) me: i32,
    pub(super) main: i32,
    pub(super) start: Instant,
    pub(super) tree: Tree,
    pub(super) tracer: Option<Tracer>,
    pub(super) cap: std::sync::Arc<crate::audit::tree::ProcessCap>,
    pub(super) out: Stream,
    pub(super) err: Stream,
    pub(super) main_exit: Option<(f64, ExitStatus)>,
    pub(super) timed_out: bool,
    pub(super) term_sent: Option<f64>,
    pub(super) lingerers_killed: bool,
    pub(super) empty_since: Option<f64>,
    /// The signal that interrupted the grade, once one did.
    pub(super) interrupted: Option<i32>,
    /// Untraced: processes seen stopped (state `T`), since when.
    pub(super) stopped: std::collections::BTreeMap<i32, f64>,
    /// The run's time limit, in seconds from `start`.
    pub(super) time_limit: f64,
}

impl Watch {
    pub(super) fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The record of `pid`, made on first sight. Its command line is read
    /// only before the time limit: reading `/proc/PID/cmdline` waits while
    /// the process is in `fork(2)` (about 70 ms for each of a fork bomb's
    /// 64 processes, measured), and reading them all once held the kill of
    /// a 0.3 s limit seconds late (28 s on a loaded machine). Past the
    /// limit a new process is named by `comm()`, its `comm` (from a
    /// `/proc/PID/stat` the caller read, or reads then). The clock is asked
    /// for each process.
    pub(super) fn record(
        &mut self,
        pid: i32,
        comm: impl FnOnce() -> String,
    ) -> &mut super::super::evidence::ProcRecord {
        let now = self.now();
        if now <= self.time_limit {
            return self.tree.proc(pid, now);
        }
        self.tree.proc_named(pid, now, comm)
    }

    pub(super) fn follow(&mut self, req: &Request, sigfd: &SignalFd) {
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
            while let Ok(Some(info)) = sigfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD && self.interrupted.is_none() {
                    self.interrupted = Some(sig);
                }
            }
            self.out.drain();
            self.err.drain();
            // Who is alive is read *before* the reap: a process that ends
            // in between is then collected below, never left unrecorded
            // by a loop that sees no one alive and stops.
            // One read of /proc per pass, shared, and only when needed.
            // Who is alive matters only once the main process has exited,
            // the time is up or the grade was interrupted; skipping it
            // otherwise keeps a traced port's many stops cheap (g10c).
            let mut table = None;
            let needed = self.main_exit.is_some()
                || self.now() > req.time_limit
                || self.interrupted.is_some();
            let alive = if needed {
                self.alive(&mut table)
            } else {
                Vec::new()
            };
            self.reap();
            if self.tracer.is_none() {
                self.sample(table.get_or_insert_with(procfs::snapshot));
            }
            if let Some(t) = self.tracer.as_mut() {
                t.resume_continued();
            }
            let now = self.now();
            if let Some(sig) = self.interrupted
                && !alive.is_empty()
            {
                let why = format!(
                    "killed by the grader: the grade was interrupted by {}",
                    crate::audit::interrupt::signal_name(sig)
                );
                self.kill(&alive, Signal::SIGKILL, &why);
            }
            if needed && self.interrupted.is_some() && alive.is_empty() {
                return;
            }
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
            if self.term_sent.is_some() {
                // A process born after the SIGTERM round (a fork bomb refills
                // its cap as its processes die) gets its own, not the grace's
                // SIGKILL.
                let late: Vec<i32> = alive
                    .iter()
                    .copied()
                    .filter(|p| {
                        let r = self.tree.procs.get(p);
                        r.is_none_or(|r| r.killed.is_none() && r.exited.is_none())
                    })
                    .collect();
                let why = format!(
                    "started after the {:.1} s time limit's SIGTERM; sent SIGTERM",
                    req.time_limit
                );
                self.kill(&late, Signal::SIGTERM, &why);
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
    pub(super) fn alive(&self, table: &mut Option<Table>) -> Vec<i32> {
        let mut pids = self
            .cap
            .cgroup
            .as_ref()
            .map(|c| c.procs())
            .unwrap_or_default();
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

    pub(super) fn kill(&mut self, pids: &[i32], sig: Signal, why: &str) {
        crate::audit::tree::kill_all(pids, sig);
        for &pid in pids {
            let r = self.record(pid, || {
                procfs::stat(pid).map(|s| s.comm).unwrap_or_default()
            });
            if r.exited.is_none() && (sig == Signal::SIGKILL || r.killed.is_none()) {
                r.killed = Some(why.to_string());
            }
        }
    }

    /// Collects every report: tracer stops, exits of tracees, adopted
    /// orphans and the main process.
    pub(super) fn reap(&mut self) {
        // This process owns all its children and tracees (see the module doc).
        while let Some((pid, status)) = crate::audit::tree::reap_next() {
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
    pub(super) fn sample(&mut self, table: &Table) {
        let now = self.now();
        // Zombies are not listed in a control group: walk /proc.
        for pid in procfs::descendants(table, self.me) {
            let Some(s) = table.get(&pid) else { continue };
            let (me, main) = (self.me, self.main);
            let r = self.record(pid, || s.comm.clone());
            if r.parent == 0 && pid != main {
                r.parent = s.ppid;
            }
            if s.is_zombie() && s.ppid != me && r.seen_zombie.is_none() {
                r.seen_zombie = Some((s.ppid, now));
            }
            if !s.is_zombie() && s.ppid == me && pid != main && r.seen_adopted.is_none() {
                r.seen_adopted = Some(now);
            }
            // Continued (not merely killed while stopped): no longer a stop.
            if s.state == 'T' {
                self.stopped.entry(pid).or_insert(now);
            } else if !s.is_zombie() && !self.timed_out {
                self.stopped.remove(&pid);
            }
        }
    }
}
