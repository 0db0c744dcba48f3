//! The audit: what a process tree left behind.
//!
//! - [`procfs`] reads the process table (`/proc/<pid>/stat`): states, parents,
//!   descendants, zombies.
//! - [`Subreaper`] makes this process the adopter of its descendants' orphans.
//! - [`ledger`] lists named IPC objects and temporary files, and diffs two
//!   snapshots.
//! - [`run()`] runs a command under all of these and returns a [`Report`]:
//!   zombies (children never waited for), orphans still running, leaked objects.
//!   It is what `ipckit audit -- CMD` does.
//! - `pidns` gives a run a PID namespace of its own (the audit's and the
//!   grader's), so nothing it starts outlives it.
//! - [`tree`] is the tree-watching core the audit shares with the grader's
//!   supervisor: work area, process cap, reaping, killing.
//! - [`Scope`] is the light, in-process version for library tests: it checks
//!   that the children a test forked were reaped and that the names it used
//!   were unlinked, without touching any other test's children or objects.
//!
//! The audit never forks the code it watches itself except through [`run()`],
//! and it is Linux only: elsewhere [`run()`] returns `UNSUPPORTED`.

#[cfg(target_os = "linux")]
pub(crate) mod cgroup;
#[cfg(target_os = "linux")]
pub mod interrupt;
#[cfg(target_os = "linux")]
pub(crate) mod isolate;
pub mod ledger;
#[cfg(target_os = "linux")]
pub(crate) mod pidns;
/// The process table (`/proc`): a base-layer module, re-exported here where
/// the audit's readers look for it.
#[cfg(target_os = "linux")]
pub use crate::procfs;
#[cfg(target_os = "linux")]
pub(crate) mod run;
mod scope;
#[cfg(target_os = "linux")]
mod subreaper;
#[cfg(target_os = "linux")]
pub mod tree;

/// Where a run's v1 control groups are made (its `pids` and `cpu` groups).
#[cfg(target_os = "linux")]
pub use cgroup::v1_parents as control_group_parents;
#[cfg(target_os = "linux")]
pub use isolate::Isolation;
#[cfg(target_os = "linux")]
pub use run::{enter_pid_namespace, run};
pub use scope::Scope;
#[cfg(target_os = "linux")]
pub use subreaper::{Subreaper, is_subreaper};

use crate::process::ExitStatus;
use std::path::PathBuf;
use std::time::Duration;

/// How to audit a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long adopted orphans may keep running after the command exits
    /// before they count as "orphans still running" and are killed.
    pub linger: Duration,
    /// A wall-clock limit for the whole tree; past it everything is killed.
    pub deadline: Duration,
    /// How often the tree is sampled.
    pub interval: Duration,
    /// Try a PID namespace of the run's own and private IPC and mount
    /// namespaces (root, or an unprivileged user namespace); off means the
    /// host's are used.
    pub isolate: bool,
    /// Extra directories whose new files count as leaks (non-recursive).
    pub watch_dirs: Vec<PathBuf>,
    /// Send the command's standard output to our standard error (so that a
    /// JSON report on our standard output is not mixed with it).
    pub stdout_to_stderr: bool,
    /// Most processes the tree may have at once (a `pids` control group as
    /// root, `RLIMIT_NPROC` otherwise); 64 by default, so that a fork bomb
    /// stays cheap on a small machine.
    pub max_processes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            linger: Duration::from_millis(1500),
            deadline: Duration::from_secs(600),
            interval: Duration::from_millis(2),
            isolate: true,
            watch_dirs: Vec::new(),
            stdout_to_stderr: false,
            max_processes: 64,
        }
    }
}

use ledger::IpcObject;

/// A process the audit has something to say about.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// Its pid.
    pub pid: i32,
    /// The parent it had when first seen.
    pub parent: i32,
    /// Its command line (or `[comm]` when it had none).
    pub command: String,
    /// What happened, and how the audit found out.
    pub detail: String,
}

/// A named object the tree left behind.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Leak {
    /// The object.
    pub object: IpcObject,
    /// Why it is blamed on the tree.
    pub attribution: String,
    /// Whether the audit removed it afterwards.
    pub removed: bool,
}

/// The result of an audited run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The command that was run.
    pub command: Vec<String>,
    /// How the command's own process ended.
    pub exit: Option<ExitStatus>,
    /// Wall-clock seconds from start until the whole tree was gone.
    pub seconds: f64,
    /// Whether the run had private namespaces.
    #[cfg(target_os = "linux")]
    pub isolation: Isolation,
    /// The audit's own pid: the subreaper that adopted the tree's orphans.
    pub audit_pid: i32,
    /// How many processes of the tree were seen (the command included).
    pub processes_seen: usize,
    /// Children that exited and were never waited for by their parent.
    pub zombies: Vec<Finding>,
    /// Processes still running after the command exited (killed by the audit).
    pub orphans: Vec<Finding>,
    /// Orphans that were adopted and ended by themselves (allowed; for information).
    pub adopted: Vec<Finding>,
    /// Objects and files the tree left behind (removed by the audit).
    pub leaks: Vec<Leak>,
    /// What the audit could not see, and why.
    pub notes: Vec<String>,
    /// The run passed its deadline and the whole tree was killed: never clean.
    pub timed_out: bool,
    /// Processes the audit had to kill although the command had not ended
    /// (stopped for ever in a ptrace stop, or the audit was interrupted):
    /// never clean.
    pub killed: Vec<Finding>,
    /// The audit was interrupted (`SIGINT`, `SIGTERM`) by this signal; the
    /// tree was killed and what it made removed: never clean.
    pub interrupted: Option<String>,
}

impl Report {
    /// True when the tree ended within its deadline and left nothing behind.
    pub fn clean(&self) -> bool {
        !self.timed_out
            && self.killed.is_empty()
            && self.interrupted.is_none()
            && self.zombies.is_empty()
            && self.orphans.is_empty()
            && self.leaks.is_empty()
    }

    /// The report as human-readable text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let exit = self
            .exit
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        out.push_str(&format!(
            "audit: `{}` {exit}; {} process(es) in {:.2} s\n",
            self.command.join(" "),
            self.processes_seen,
            self.seconds
        ));
        let sections: [(&str, &Vec<Finding>); 4] = [
            ("killed by the audit", &self.killed),
            ("zombie", &self.zombies),
            ("orphan still running", &self.orphans),
            ("adopted orphan (allowed)", &self.adopted),
        ];
        for (label, list) in sections {
            for f in list {
                out.push_str(&format!(
                    "  {label}: pid {} ({}) parent {}: {}\n",
                    f.pid, f.command, f.parent, f.detail
                ));
            }
        }
        for l in &self.leaks {
            let removed = if l.removed {
                "removed by the audit"
            } else {
                "COULD NOT BE REMOVED"
            };
            out.push_str(&format!(
                "  leaked {} {} ({}; {removed})\n",
                l.object.kind, l.object.name, l.attribution
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        let verdict = if self.clean() {
            "clean: nothing left behind"
        } else {
            "NOT CLEAN"
        };
        let timed_out = if self.timed_out {
            "; killed at its deadline"
        } else {
            ""
        };
        out.push_str(&format!(
            "{verdict} ({} zombie(s), {} orphan(s) still running, {} leaked object(s){timed_out})\n",
            self.zombies.len(),
            self.orphans.len(),
            self.leaks.len()
        ));
        out
    }
}

/// Runs a command under the audit: UNSUPPORTED outside Linux (no `/proc`,
/// no subreaper).
#[cfg(not(target_os = "linux"))]
pub fn run(_argv: &[String], _opts: &Options) -> crate::Result<Report> {
    Err(crate::Error::Unsupported(
        "the audit needs Linux (/proc and PR_SET_CHILD_SUBREAPER)".into(),
    ))
}
