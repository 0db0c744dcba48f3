//! What containment a grade had, and what each missing piece means for its
//! verdict.
//!
//! The supervisor fills one [`Containment`] per run (namespaces, pids limit,
//! cpu share, user id, tracing, IPC listing). [`judge`] then reads it against the
//! checks: a check that applies but could not be performed here is turned
//! into `skip` with the reason, never left as `pass`, and the grade's verdict
//! becomes [`super::Verdict::Incomplete`]. Every report format prints the
//! section, so a teacher reading a Gradescope result knows what was and was
//! not checked.

use super::checks::Run;
use super::spec::{Rule, Spec};
use super::{Check, Status};
use serde::{Deserialize, Serialize};

/// One piece of containment: held or not, how, and what it means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    /// True when the piece was in place for the run.
    pub held: bool,
    /// How (or why not), in a sentence.
    pub how: String,
    /// What this means for the grade, in a sentence.
    pub meaning: String,
}

impl Piece {
    /// A piece in place.
    pub fn held(how: impl Into<String>, meaning: impl Into<String>) -> Piece {
        Piece {
            held: true,
            how: how.into(),
            meaning: meaning.into(),
        }
    }

    /// A piece a report did not record (one written by an older ipckit).
    pub fn unrecorded() -> Piece {
        Piece::missing("not recorded in this report (an older ipckit)", "unknown")
    }

    /// A missing piece.
    pub fn missing(how: impl Into<String>, meaning: impl Into<String>) -> Piece {
        Piece {
            held: false,
            how: how.into(),
            meaning: meaning.into(),
        }
    }
}

/// How one grade was contained (the `containment` section of every report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Containment {
    /// Private IPC, mount (and PID) namespaces.
    pub namespaces: Piece,
    /// A limit on the number of processes (pids control group or `RLIMIT_NPROC`).
    pub pids_limit: Piece,
    /// The port's processes are scheduled as one (a `cpu` control group),
    /// however many sessions they start. (A report written before there
    /// was this piece reads as not held, saying so.)
    #[serde(default = "Piece::unrecorded")]
    pub cpu_share: Piece,
    /// The port runs under a user id other than root's (and other than the grader's).
    pub uid_drop: Piece,
    /// System calls traced (ptrace + seccomp): mechanism and reaping evidence.
    pub tracing: Piece,
    /// Every kind of named IPC object can be listed (an `mqueue` file system).
    pub ipc_listing: Piece,
    /// Anything else the grader had to do differently here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The checks that applied but could not be performed, and why
    /// (the verdict is `incomplete` when there is one and nothing failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<String>,
}

impl Containment {
    /// The pieces with their report names, in a fixed order.
    pub fn pieces(&self) -> [(&'static str, &Piece); 6] {
        [
            ("namespaces", &self.namespaces),
            ("pids limit", &self.pids_limit),
            ("cpu share", &self.cpu_share),
            ("uid drop", &self.uid_drop),
            ("tracing", &self.tracing),
            ("ipc listing", &self.ipc_listing),
        ]
    }

    /// The containment of several runs: a piece is held only when it was
    /// held in every run (the first run without it says why).
    pub fn merge(runs: &[&Containment]) -> Containment {
        let Some(first) = runs.first() else {
            return Containment::default();
        };
        let pick = |f: fn(&Containment) -> &Piece| -> Piece {
            runs.iter()
                .map(|c| f(c))
                .find(|p| !p.held)
                .unwrap_or(f(first))
                .clone()
        };
        let mut notes: Vec<String> = runs.iter().flat_map(|c| c.notes.clone()).collect();
        notes.dedup();
        Containment {
            namespaces: pick(|c| &c.namespaces),
            pids_limit: pick(|c| &c.pids_limit),
            cpu_share: pick(|c| &c.cpu_share),
            uid_drop: pick(|c| &c.uid_drop),
            tracing: pick(|c| &c.tracing),
            ipc_listing: pick(|c| &c.ipc_listing),
            notes,
            not_checked: Vec::new(),
        }
    }

    /// One line per piece, for text reports and Gradescope's output.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .pieces()
            .iter()
            .map(|(name, p)| {
                let word = if p.held { "yes" } else { "NO " };
                format!("{name:<12}{word} {}; {}", p.how, p.meaning)
            })
            .collect();
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out.extend(self.not_checked.iter().map(|n| format!("not checked: {n}")));
        out
    }
}

/// Reads the runs' containment against the checks: every check that applies
/// but could not be performed becomes `skip` with the reason, and leaks that
/// cannot be attributed say so. Returns the containment of the grade, its
/// `not_checked` list filled in.
pub fn judge(spec: &Spec, runs: &[Run], checks: &mut [Check]) -> Containment {
    let each: Vec<&Containment> = runs.iter().map(|r| &r.outcome.containment).collect();
    let mut c = Containment::merge(&each);
    let mut unperformed = |name: &str, why: String, checks: &mut [Check]| {
        if let Some(check) = checks.iter_mut().find(|k| k.name == name)
            && check.status != Status::Fail
        {
            if check.status == Status::Pass {
                check.detail = format!("not checked: {why} (found: {})", check.detail);
            }
            check.status = Status::Skip;
            c.not_checked.push(format!("{name}: {why}"));
        }
    };
    if !c.tracing.held {
        let why = format!("no system-call trace ({})", c.tracing.how);
        if !spec.mechanism.is_empty() {
            unperformed("mechanism", why.clone(), checks);
        }
        if spec.reaping.kernel == Rule::Require {
            unperformed("zombies", why, checks);
        }
    }
    if !c.ipc_listing.held {
        let why = format!(
            "POSIX message queues could not be listed ({}): a queue left behind would go unseen",
            c.ipc_listing.how
        );
        unperformed("leaks", why, checks);
    }
    if !c.namespaces.held
        && let Some(leaks) = checks
            .iter_mut()
            .find(|k| k.name == "leaks" && k.status == Status::Fail)
    {
        leaks.detail.push_str(
            " (host namespaces: an object that appeared during the run may be another process's)",
        );
    }
    c
}

/// How many ports `--dir` may grade at once: `cores` with private
/// namespaces; one without, with a note for the report, because ports that
/// share the host's namespaces would be blamed for each other's objects (or
/// have theirs removed mid-run).
pub fn threads_for(opts: &super::Options, cores: usize) -> (usize, Option<String>) {
    if cores <= 1 || (opts.isolate && private_namespaces_possible()) {
        return (cores.max(1), None);
    }
    let note = "ports were graded one at a time: without private namespaces, ports graded at once would see and be blamed for each other's IPC objects";
    (1, Some(note.to_string()))
}

/// True when this process may make private IPC and mount namespaces
/// (`unshare(2)` with `CLONE_NEWIPC | CLONE_NEWNS`, and `CLONE_NEWUSER` when
/// not root), tried in a short-lived child so that this process stays
/// where it is.
#[cfg(target_os = "linux")]
pub fn private_namespaces_possible() -> bool {
    let user = if nix::unistd::geteuid().is_root() {
        0
    } else {
        libc::CLONE_NEWUSER
    };
    // SAFETY: the child only calls unshare and _exit, both
    // async-signal-safe, so forking a multi-threaded process is sound.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => {
            // SAFETY: unshare takes plain flags.
            let ok = unsafe { libc::unshare(user | libc::CLONE_NEWIPC | libc::CLONE_NEWNS) } == 0;
            // SAFETY: _exit ends the forked child without running destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        -1 => false,
        pid => {
            let mut status = 0;
            // SAFETY: status is a valid int; pid is this process's child.
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        }
    }
}

/// Private namespaces need Linux.
#[cfg(not(target_os = "linux"))]
pub fn private_namespaces_possible() -> bool {
    false
}
