//! What a graded run did, process by process: the evidence the checks read.
//!
//! The supervisor fills a [`Tree`] from the system-call trace (or, where
//! tracing is impossible, from samples of `/proc`): who forked whom, who
//! reaped whom, when each process exited, which named objects were created
//! and unlinked. The grader's checks ([`super::checks`]) only read it.

use crate::process::ExitStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One process of the graded tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcRecord {
    /// Its pid.
    pub pid: i32,
    /// The process that forked it (0: the grader started it).
    pub parent: i32,
    /// Its command line when first seen (after its last exec).
    pub command: String,
    /// Part of the launch chain (a shell or `pyenv` shim that ran before the
    /// port's own program was exec'd): not judged.
    pub launcher: bool,
    /// Seconds after the start when it was first seen.
    pub started: f64,
    /// Seconds after the start when it exited.
    pub exited: Option<f64>,
    /// How it ended.
    pub status: Option<ExitStatus>,
    /// The process whose wait call returned it, and when.
    pub reaped_by: Option<(i32, f64)>,
    /// Collected by the grader a second time, as the adopter of a zombie whose
    /// parent exited without waiting for it: when.
    pub readopted: Option<f64>,
    /// (Untraced runs) seen as a zombie under this parent, at this time.
    pub seen_zombie: Option<(i32, f64)>,
    /// Seen running with the grader as its parent (adopted), at this time.
    pub seen_adopted: Option<f64>,
    /// Why the grader killed it, if it did.
    pub killed: Option<String>,
    /// Killed because it still ran `linger` seconds after the main process
    /// exited (an orphan left running).
    pub orphan: bool,
    /// System-call evidence: counters named in [`super::spec::COUNTERS`].
    pub calls: BTreeMap<String, u32>,
    /// Its pid in the port's own pid namespace, when that differs.
    #[serde(default)]
    pub nspid: Option<i32>,
    /// A helper program: it exec'd a program other than its parent's (a
    /// shell, `ps`, `grep`), or descends from one. Its children and reaps are
    /// its own, never credited to or blamed on the student.
    #[serde(default)]
    pub helper: bool,
    /// Its parent ignored `SIGCHLD` when it forked it (`SigIgn` of
    /// `/proc/PID/status`): the kernel reaps it, no wait is needed.
    #[serde(default)]
    pub sigchld_ignored: bool,
    /// The program it runs (`/proc/PID/exe`), read at first sight and exec.
    #[serde(default)]
    pub exe: String,
    /// The writable shared mappings it was born with (its parent's at the
    /// `fork`, from `/proc/PID/maps`), as `PATH [DEV INODE]` (`procfs::shared_mappings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_at_birth: Vec<String>,
    /// The writable shared mappings it still held when it exited (read at
    /// its `PTRACE_EVENT_EXIT` stop); `None` when that stop was not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_at_exit: Option<Vec<String>>,
    /// Socket addresses it `bind(2)`-ed (`unix:PATH`, `unix:@NAME` for an
    /// abstract one, `inet:PORT` for TCP or UDP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound: Vec<String>,
    /// Socket addresses it `connect(2)`-ed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connected: Vec<String>,
}

impl ProcRecord {
    /// Its command for reports: the last 60 characters.
    pub fn shown(&self) -> String {
        let n = self.command.chars().count();
        match n {
            0 => "?".into(),
            1..=60 => self.command.clone(),
            _ => format!(
                "...{}",
                self.command.chars().skip(n - 60).collect::<String>()
            ),
        }
    }

    /// The pids it is known by: its pid, and its pid in its own namespace.
    pub fn ids(&self) -> Vec<i32> {
        let mut v = vec![self.pid];
        v.extend(self.nspid.filter(|n| *n != self.pid));
        v
    }

    /// One counter.
    pub fn count(&self, key: &str) -> u32 {
        if key == "channels" {
            return self.count("pipes") + self.count("socketpairs");
        }
        if key == "workers" {
            return self.count("forks") + self.count("threads");
        }
        self.calls.get(key).copied().unwrap_or(0)
    }
}

/// The `[DEV INODE]` of a shared mapping as `procfs::shared_mappings`
/// writes it (`PATH [DEV INODE]`): what makes two mappings the same memory,
/// whatever their paths say (` (deleted)` once unlinked).
pub fn mapping_identity(key: &str) -> &str {
    key.rfind(" [").map_or(key, |i| &key[i + 1..])
}

/// A named object the port created or unlinked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedObject {
    /// `shm`, `sem`, `mq` or `file`.
    pub kind: String,
    /// `/name` for POSIX objects, a path for files.
    pub name: String,
    /// The process that created it.
    pub created_by: Option<i32>,
    /// The process that unlinked it.
    pub unlinked_by: Option<i32>,
    /// When it was created, seconds after the start (traced runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<f64>,
    /// When it was unlinked, seconds after the start (traced runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlinked_at: Option<f64>,
}

/// A pipe or socket pair the port made, and the data seen crossing it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Channel {
    /// `pipe` or `socketpair`.
    pub kind: String,
    /// The process whose `pipe(2)` or `socketpair(2)` made it.
    pub made_by: i32,
    /// When, in seconds after the start.
    pub made_at: f64,
    /// The kernel's names of its two ends, as `/proc/PID/fd` shows them
    /// (`proc(5)`): a pipe's read and write end share one inode
    /// (`pipe:[N]`); a socket pair's ends are two sockets (`socket:[N]`).
    pub ends: [String; 2],
    /// Reads and writes that moved data, in the order seen.
    pub transfers: Vec<Transfer>,
}

/// One read or write of at least one byte on a [`Channel`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transfer {
    /// The process that made it.
    pub pid: i32,
    /// Which end it used (`ends` index: a pipe's 0 is its read end).
    pub end: usize,
    /// A write (else a read).
    pub write: bool,
    /// Bytes moved.
    pub bytes: u64,
    /// Seconds after the start.
    pub at: f64,
    /// The process still held the channel's other end, the one it does not
    /// use (an unused end left open).
    pub other_end_open: bool,
    /// The first bytes moved, as text (invalid UTF-8 escaped).
    pub text: String,
}

impl Channel {
    /// The other end's index.
    pub fn other(end: usize) -> usize {
        1 - end
    }
}

/// Everything known about the tree of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tree {
    /// The main process (the port's command).
    pub main: i32,
    /// Every process, by pid.
    pub procs: BTreeMap<i32, ProcRecord>,
    /// Named objects by `kind:name`.
    pub objects: BTreeMap<String, NamedObject>,
    /// Pipes and socket pairs the port made, in the order made.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// The pid an orphaned port process gets from `getppid(2)` once its
    /// parent has exited: the supervisor (a `PR_SET_CHILD_SUBREAPER`, or
    /// pid 1 of the run's PID namespace).
    #[serde(default)]
    pub reaper: Option<i32>,
}

impl Tree {
    /// The record of `pid`, made on first sight (named by its command line).
    pub fn proc(&mut self, pid: i32, now: f64) -> &mut ProcRecord {
        self.proc_named(pid, now, || command_of(pid))
    }

    /// [`Tree::proc`], a new record's command given by `command` (the
    /// command line is not always worth its wait: see
    /// `supervisor::watch::Watch::record`).
    pub fn proc_named(
        &mut self,
        pid: i32,
        now: f64,
        command: impl FnOnce() -> String,
    ) -> &mut ProcRecord {
        self.procs.entry(pid).or_insert_with(|| ProcRecord {
            pid,
            command: command(),
            started: now,
            nspid: nspid_of(pid),
            exe: exe_of(pid),
            ..Default::default()
        })
    }

    /// `parent` forked `child` (with `SIGCHLD` ignored or not).
    pub fn on_fork(&mut self, parent: i32, child: i32, now: f64) {
        let ignored = sigchld_ignored(parent);
        let (launcher, helper, exe) = self
            .procs
            .get(&parent)
            .map(|p| (p.launcher, p.helper, p.exe.clone()))
            .unwrap_or_default();
        if !helper {
            self.bump(parent, "forks", now);
        }
        let c = self.proc(child, now);
        c.parent = parent;
        c.launcher = launcher;
        c.helper = helper;
        c.sigchld_ignored = ignored;
        c.exe = exe;
    }

    /// `pid` ran a new program. When the main process does, what it forked and
    /// did before was the launch chain (a shell, a `pyenv` shim): set aside.
    ///
    /// A process other than the main one that runs a program other than the
    /// one it ran (its parent's) becomes a helper: `system("ps | grep")`'s
    /// shell and its children. Python's `multiprocessing` re-exec'ing its
    /// own interpreter stays the student's.
    pub fn on_exec(&mut self, pid: i32, now: f64) {
        let (command, exe) = (command_of(pid), exe_of(pid));
        let main = self.main;
        let p = self.proc(pid, now);
        p.command = command;
        if pid != main {
            if !p.launcher && !p.exe.is_empty() && !exe.is_empty() && p.exe != exe {
                p.helper = true;
            }
            p.exe = exe;
            return;
        }
        p.exe = exe;
        p.calls.clear();
        let mut launchers = vec![pid];
        while let Some(l) = launchers.pop() {
            for r in self.procs.values_mut() {
                if r.parent == l && !r.launcher {
                    r.launcher = true;
                    launchers.push(r.pid);
                }
            }
        }
        self.objects.clear();
        self.channels.clear();
    }

    /// The grader collected `pid`'s exit (as tracer, parent or adopter).
    pub fn on_exit(&mut self, pid: i32, status: ExitStatus, now: f64) {
        let p = self.proc(pid, now);
        if p.exited.is_some() {
            p.readopted = Some(now);
        } else {
            p.exited = Some(now);
            p.status = Some(status);
        }
    }

    /// A wait call of `reaper` returned `child`.
    pub fn on_reap(&mut self, reaper: i32, child: i32, now: f64) {
        if !self.procs.get(&reaper).is_some_and(|p| p.helper) {
            self.bump(reaper, "reaps", now);
        }
        self.proc(child, now).reaped_by = Some((reaper, now));
    }

    /// Adds one to a counter of `pid`.
    pub fn bump(&mut self, pid: i32, key: &str, now: f64) {
        *self
            .proc(pid, now)
            .calls
            .entry(key.to_string())
            .or_default() += 1;
    }

    /// `pid` bound (`bind`) or connected a socket to `addr`.
    pub fn on_address(&mut self, pid: i32, bind: bool, addr: &str, now: f64) {
        let p = self.proc(pid, now);
        let list = if bind { &mut p.bound } else { &mut p.connected };
        if !list.iter().any(|a| a == addr) {
            list.push(addr.to_string());
        }
    }

    /// `pid` created (`created`) or unlinked a named object.
    pub fn on_object(&mut self, pid: i32, kind: &str, name: &str, created: bool, now: f64) {
        let verb = if created { "create" } else { "unlink" };
        self.bump(pid, &format!("{kind}_{verb}"), now);
        let o = self
            .objects
            .entry(format!("{kind}:{name}"))
            .or_insert_with(|| NamedObject {
                kind: kind.into(),
                name: name.into(),
                ..Default::default()
            });
        if created {
            o.created_by = Some(pid);
            o.created_at = Some(now);
        } else {
            o.unlinked_by = Some(pid);
            o.unlinked_at = Some(now);
        }
    }

    /// `pid` made a pipe or socket pair whose ends `/proc` names `ends`.
    pub fn on_channel(&mut self, pid: i32, kind: &str, ends: [String; 2], now: f64) {
        self.channels.push(Channel {
            kind: kind.into(),
            made_by: pid,
            made_at: now,
            ends,
            transfers: Vec::new(),
        });
    }

    /// The channel (index) and end (index) that `/proc` names `link`, if
    /// the port made it (the latest, should the kernel reuse a name). A
    /// pipe's two ends have one name: `write` decides.
    pub fn channel_end(&self, link: &str, write: bool) -> Option<(usize, usize)> {
        self.channels.iter().enumerate().rev().find_map(|(i, c)| {
            let end = c.ends.iter().position(|e| e == link)?;
            Some((
                i,
                if c.kind == "pipe" {
                    usize::from(write)
                } else {
                    end
                },
            ))
        })
    }

    /// A temporary name was renamed into place (`link` then `unlink`, as
    /// glibc's `sem_open` does): the temporary one is forgotten.
    pub fn forget_object(&mut self, kind: &str, name: &str) {
        self.objects.remove(&format!("{kind}:{name}"));
    }

    /// The processes that are judged: the port's own, not its launch chain.
    pub fn judged(&self) -> impl Iterator<Item = &ProcRecord> {
        self.procs.values().filter(|p| !p.launcher)
    }

    /// `PID (command)` for reports, or the bare pid of an unknown process.
    pub fn who(&self, pid: i32) -> String {
        match self.procs.get(&pid) {
            Some(p) if !p.command.is_empty() => format!("{pid} ({})", p.shown()),
            _ => pid.to_string(),
        }
    }

    /// The student's own processes: judged, and not helper programs.
    pub fn students(&self) -> impl Iterator<Item = &ProcRecord> {
        self.judged().filter(|p| !p.helper)
    }

    /// The sum of one counter over the judged processes; the `*_roundtrip`
    /// counters count objects both created and unlinked by the port.
    pub fn total(&self, key: &str) -> u32 {
        if let Some(kind) = key.strip_suffix("_roundtrip") {
            return self
                .objects
                .values()
                .filter(|o| o.kind == kind && o.created_by.is_some() && o.unlinked_by.is_some())
                .count() as u32;
        }
        self.students().map(|p| p.count(key)).sum()
    }
}

/// The command line of a live process, for reports (empty if unreadable).
#[cfg(target_os = "linux")]
use crate::audit::procfs::cmdline as command_of;

/// The command line of a live process: unknown off Linux.
#[cfg(not(target_os = "linux"))]
fn command_of(_pid: i32) -> String {
    String::new()
}

/// The program a process runs (`/proc/PID/exe`, `proc(5)`); empty if unreadable.
fn exe_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A field of `/proc/PID/status` (`proc(5)`).
fn status_field(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

/// The last pid of `NSpid:` (the pid in the process's own namespace) when
/// it differs from the host's.
fn nspid_of(pid: i32) -> Option<i32> {
    let v = status_field(pid, "NSpid:")?;
    v.split_whitespace()
        .last()?
        .parse()
        .ok()
        .filter(|n| *n != pid)
}

/// Whether `pid` ignores `SIGCHLD` now (bit 17 of `SigIgn:`).
fn sigchld_ignored(pid: i32) -> bool {
    status_field(pid, "SigIgn:")
        .and_then(|m| u64::from_str_radix(&m, 16).ok())
        .is_some_and(|m| m & (1 << (libc::SIGCHLD - 1)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_is_known_by_its_device_and_inode_whatever_its_path() {
        assert_eq!(
            mapping_identity("/dev/shm/pi (deleted) [00:1b 9]"),
            "[00:1b 9]"
        );
        assert_eq!(mapping_identity("/dev/shm/pi [00:1b 9]"), "[00:1b 9]");
        assert_eq!(mapping_identity("[00:01 7]"), "[00:01 7]");
    }

    #[test]
    fn what_the_main_process_did_before_its_last_exec_is_the_launcher() {
        let mut t = Tree {
            main: 10,
            ..Default::default()
        };
        t.proc(10, 0.0);
        t.on_fork(10, 11, 0.1); // the shim's subshell
        t.on_fork(11, 12, 0.1);
        t.on_exec(10, 0.2); // exec of the real program
        t.on_fork(10, 13, 0.3);
        assert!(t.procs[&11].launcher && t.procs[&12].launcher);
        assert!(!t.procs[&13].launcher && !t.procs[&10].launcher);
        assert_eq!(t.total("forks"), 1, "only the port's own fork counts");
    }

    #[test]
    fn a_process_that_execs_another_program_is_a_helper_with_its_children() {
        let me = std::process::id() as i32; // exe_of(me) is this test binary
        let mut t = Tree {
            main: 10,
            ..Default::default()
        };
        t.proc(10, 0.0).exe = "/usr/bin/port".into();
        t.procs.insert(
            me,
            ProcRecord {
                pid: me,
                parent: 10,
                exe: "/usr/bin/port".into(),
                ..Default::default()
            },
        );
        t.bump(10, "forks", 0.1);
        t.on_exec(me, 0.2); // system(): the child execs /bin/sh
        assert!(t.procs[&me].helper);
        t.on_fork(me, 99_999_999, 0.3); // the shell's ps
        t.on_reap(me, 99_999_999, 0.4);
        assert!(t.procs[&99_999_999].helper);
        assert_eq!(t.total("forks"), 1, "the shell's fork is not the student's");
        assert_eq!(t.total("reaps"), 0, "nor its reap");
        // Re-exec'ing the same program (Python's multiprocessing spawn) is not a helper.
        let mut same = Tree {
            main: 10,
            ..Default::default()
        };
        same.procs.insert(
            me,
            ProcRecord {
                pid: me,
                parent: 10,
                exe: exe_of(me),
                ..Default::default()
            },
        );
        same.on_exec(me, 0.2);
        assert!(!same.procs[&me].helper);
    }

    #[test]
    fn a_temporary_name_linked_into_place_counts_once() {
        let mut t = Tree::default();
        t.on_object(5, "sem", "/tmpXYZ", true, 0.0);
        t.forget_object("sem", "/tmpXYZ");
        t.on_object(5, "sem", "/lock", true, 0.0);
        t.on_object(5, "sem", "/lock", false, 0.1);
        assert_eq!(t.total("sem_roundtrip"), 1);
        t.on_exit(6, ExitStatus::Exited(0), 0.2);
        t.on_exit(6, ExitStatus::Exited(0), 0.5);
        assert_eq!(
            t.procs[&6].readopted,
            Some(0.5),
            "a second collection is a readoption"
        );
    }
}
