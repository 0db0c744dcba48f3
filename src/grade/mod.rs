//! The grader (`ipckit grade`): runs a student's port of an exercise, in any
//! language, contained, and proves what it did.
//!
//! - [`spec`]: one TOML spec per exercise (`fixtures/exercises/ID.toml`):
//!   runs, output rules, time limit, reaping rules, mechanism evidence.
//! - [`supervisor`]: the only code that runs student code, in a process of its
//!   own (`ipckit __supervise`): session, limits, `pids` control group,
//!   private namespaces, subreaper, deadline, captured output.
//! - [`trace`]: `ptrace` + `seccomp` evidence: who forked, who reaped whom,
//!   which pipes, queues, segments, semaphores and files were made.
//! - [`evidence`]: the process tree and named objects of one run.
//! - [`facts`]: rules about meaning: which process printed which values
//!   (pids, wait results, exit statuses, n, pi), and in which order.
//! - [`output`]: standard output and error as socket pairs that name the
//!   process behind every write (`SO_PASSCRED`).
//! - [`checks`]: the seven checks (`output`, `exit`, `time`, `zombies`,
//!   `orphans`, `leaks`, `mechanism`), each with a sentence that explains it.
//! - [`report`]: text, JSON, JUnit XML and Gradescope `results.json`.
//! - [`ports`]: `--dir`: finds, builds and grades every port in a folder.
//! - [`class`]: `--class`: one folder per student, a report folder.
//! - [`scoring`]: points, visibility and tags; [`feedback`]: what a failing
//!   check tells the student; [`html`]: the HTML report and its timeline.
//!
//! - [`containment`]: what containment a run had (namespaces, pids limit,
//!   cpu share, user id, tracing, IPC listing) and what each missing piece means.
//!
//! A grade's [`Verdict`] is `pass` when every check passed or was skipped
//! because it does not apply, `fail` when one failed, `incomplete` when
//! nothing failed but a check that applies could not be performed here (the
//! report's `containment` section says which and why), `error` when the grade
//! itself could not run; the command line maps them to exit status 0, 1, 3
//! and 2.

pub mod checks;
pub mod class;
pub mod containment;
pub mod evidence;
pub mod facts;
pub mod feedback;
pub mod flow;
pub mod html;
pub mod init;
pub mod numbers;
pub mod output;
pub mod ports;
pub mod report;
pub mod scoring;
pub mod spec;
pub mod supervisor;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod trace;

use crate::error::Result;
use serde::{Deserialize, Serialize};
use spec::Spec;
use supervisor::{Limits, Request};

/// A check's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The check held.
    Pass,
    /// The check failed.
    Fail,
    /// The check does not apply (the detail says why).
    Skip,
}

/// A grade's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed or was skipped.
    Pass,
    /// Some check failed.
    Fail,
    /// The grade could not run.
    Error,
    /// Nothing failed, but a check that applies could not be performed here
    /// (no trace, queues not listable): see the `containment` section.
    Incomplete,
}

impl Verdict {
    /// The exit status of `ipckit grade` for this verdict (DESIGN.md):
    /// 0 pass, 1 fail, 2 error, 3 incomplete.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Error => 2,
            Verdict::Incomplete => 3,
        }
    }

    /// The verdict of several grades together: an error outweighs a
    /// failure, which outweighs an incomplete grade, which outweighs a pass.
    pub fn overall(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let rank = |v: &Verdict| match v {
            Verdict::Pass => 0,
            Verdict::Incomplete => 1,
            Verdict::Fail => 2,
            Verdict::Error => 3,
        };
        verdicts
            .into_iter()
            .max_by_key(rank)
            .unwrap_or(Verdict::Error)
    }
}

/// One check of a grade.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// `output`, `exit`, `time`, `zombies`, `orphans`, `leaks` or `mechanism`.
    pub name: String,
    /// Its status.
    pub status: Status,
    /// What was found, in a sentence.
    pub detail: String,
}

/// The grade of one port (the JSON object of DESIGN.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grade {
    /// The exercise ID.
    pub exercise: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The checks, in their fixed order (empty when the grade could not run).
    pub checks: Vec<Check>,
    /// Wall-clock seconds of every run together.
    pub seconds: f64,
    /// Why the grade could not run (verdict `error` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The port's file (`--dir` only: a folder may hold `pi-pipe.py` and `pi-pipe.c`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub port: Option<String>,
    /// Zombies, orphans still running and leaks, for tables.
    #[serde(skip)]
    pub counts: checks::Counts,
    /// What each run did (output, process tree), for feedback and pictures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<feedback::RunRecord>,
    /// What each check and run is worth (from the spec's `[scoring]`).
    #[serde(skip)]
    pub marks: scoring::Marks,
    /// How the runs were contained and what could not be checked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub containment: Option<containment::Containment>,
}

impl Grade {
    /// A grade that could not run.
    pub fn error(exercise: &str, why: impl std::fmt::Display) -> Grade {
        Grade {
            exercise: exercise.to_string(),
            verdict: Verdict::Error,
            checks: Vec::new(),
            seconds: 0.0,
            error: Some(why.to_string()),
            port: None,
            counts: checks::Counts::default(),
            runs: Vec::new(),
            // An error grade scores 0 out of the exercise's full maximum.
            marks: spec::builtin(exercise)
                .and_then(|s| scoring::Marks::of(&s))
                .unwrap_or_default(),
            containment: None,
        }
    }
}

/// How to grade.
#[derive(Debug, Clone)]
pub struct Options {
    /// Trace system calls when possible (mechanism evidence).
    pub trace: bool,
    /// Private namespaces when possible.
    pub isolate: bool,
    /// Overrides the spec's time limit per run, seconds.
    pub time_limit: Option<f64>,
    /// Resource limits.
    pub limits: Limits,
    /// Seconds between `SIGTERM` and `SIGKILL` at the deadline.
    pub grace: f64,
    /// Bytes of each output stream kept.
    pub output_cap: usize,
    /// Under which user ports run when the grader is root (default: a
    /// fresh uid per run).
    pub run_as: supervisor::RunAs,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            trace: true,
            isolate: true,
            time_limit: None,
            limits: Limits::default(),
            grace: 1.0,
            output_cap: 1 << 20,
            run_as: supervisor::RunAs::default(),
        }
    }
}

/// Grades `argv` (a port of `spec`): runs it once per `[[run]]` of the spec
/// through the supervisor, then judges the outcomes. Never fails: a grade
/// that cannot run is a [`Verdict::Error`] grade.
pub fn grade(spec: &Spec, argv: &[String], opts: &Options) -> Grade {
    let marks = match scoring::Marks::of(spec) {
        Ok(m) => m,
        Err(e) => return Grade::error(&spec.id, e),
    };
    match runs(spec, argv, opts) {
        Ok(runs) if runs.iter().any(|r| r.outcome.sabotage.is_some()) => sabotaged(spec, &runs),
        Ok(runs) => {
            let (mut checks, counts) = checks::judge(spec, &runs);
            let containment = containment::judge(spec, &runs, &mut checks);
            report_stops(&runs, &mut checks);
            let failed = checks.iter().any(|c| c.status == Status::Fail);
            let verdict = match (failed, containment.not_checked.is_empty()) {
                (true, _) => Verdict::Fail,
                (false, false) => Verdict::Incomplete,
                (false, true) => Verdict::Pass,
            };
            Grade {
                exercise: spec.id.clone(),
                verdict,
                checks,
                seconds: runs.iter().map(|r| r.outcome.seconds).sum(),
                error: None,
                port: None,
                counts,
                runs: runs
                    .iter()
                    .map(|r| feedback::RunRecord::of(spec, r))
                    .collect(),
                marks,
                containment: Some(containment),
            }
        }
        Err(e) => Grade {
            marks,
            ..Grade::error(&spec.id, e)
        },
    }
}

/// The grade of a port that attacked the grader (killed, stopped or traced
/// its supervisor): `fail`, whatever else it did, with what was cleaned up.
fn sabotaged(spec: &Spec, runs: &[checks::Run]) -> Grade {
    let o = &runs
        .iter()
        .find(|r| r.outcome.sabotage.is_some())
        .expect("a sabotaged run")
        .outcome;
    let mut detail = format!(
        "{}: the port attacked the grader, so nothing it did can be trusted",
        o.sabotage.as_deref().unwrap_or("")
    );
    if !o.notes.is_empty() {
        detail.push_str(&format!("; the grader cleaned up: {}", o.notes.join(", ")));
    }
    Grade {
        verdict: Verdict::Fail,
        checks: vec![Check {
            name: "containment".into(),
            status: Status::Fail,
            detail,
        }],
        seconds: runs.iter().map(|r| r.outcome.seconds).sum(),
        error: None,
        ..Grade::error(&spec.id, "")
    }
}

/// A process that stopped (`SIGSTOP`...) and was never continued is
/// named in the `exit` check: it did not exit, it stopped.
fn report_stops(runs: &[checks::Run], checks: &mut [Check]) {
    let stops: Vec<String> = runs
        .iter()
        .flat_map(|r| &r.outcome.stopped)
        .map(|(pid, t)| format!("process {pid} stopped at {t:.2} s and was never continued"))
        .collect();
    if let Some(exit) = checks.iter_mut().find(|c| c.name == "exit")
        && !stops.is_empty()
    {
        exit.detail.push_str(&format!(" ({})", stops.join("; ")));
    }
}

/// `Some(sentence)` once `ipckit grade` was interrupted (`SIGINT`,
/// `SIGTERM`): nothing more is graded, and what was is reported.
pub fn interruption() -> Option<String> {
    #[cfg(target_os = "linux")]
    return crate::audit::interrupt::interrupted().map(|sig| {
        format!(
            "not graded: the grade was interrupted by {}",
            crate::audit::interrupt::signal_name(sig)
        )
    });
    #[cfg(not(target_os = "linux"))]
    None
}

/// Refuses to start a run once the grade was interrupted, and turns an
/// interrupted run into an error that says so.
fn check_interrupt(outcome: Option<&supervisor::Outcome>) -> Result<()> {
    let why = match outcome {
        Some(o) => o.interrupted.clone().map(|sig| {
            format!("interrupted by {sig}: the port was killed and everything it made removed")
        }),
        None => interruption(),
    };
    match why {
        Some(why) => Err(crate::Error::Died(why)),
        None => Ok(()),
    }
}

fn runs(spec: &Spec, argv: &[String], opts: &Options) -> Result<Vec<checks::Run>> {
    if argv.is_empty() {
        return Err(crate::Error::invalid(
            "command",
            "nothing to run: give the port's command after `--`",
        ));
    }
    // The port runs in a fresh working directory: relative paths of the
    // command (the program, a script) that name existing files here are made
    // absolute; a bare program name is looked up in PATH as usual.
    let argv: Vec<String> = argv
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = std::path::Path::new(a);
            let path_like = (i == 0 && a.contains('/')) || (i > 0 && p.exists());
            match std::path::absolute(p) {
                Ok(abs) if path_like && p.is_relative() => abs.to_string_lossy().into_owned(),
                _ => a.clone(),
            }
        })
        .collect();
    let time_limit = opts.time_limit.unwrap_or(spec.time_limit);
    spec::check_seconds(time_limit).map_err(|why| crate::Error::invalid("--timeout", why))?;
    let mut limits = opts.limits.clone();
    // `as` saturates a float; the arithmetic saturates too.
    let cpu = (time_limit.ceil() as u64)
        .saturating_mul(2)
        .saturating_add(1);
    limits.cpu_seconds = limits.cpu_seconds.min(cpu);
    spec.runs
        .iter()
        .enumerate()
        .map(|(index, run)| {
            let mut full = argv.clone();
            full.extend(run.args.iter().cloned());
            let req = Request {
                argv: full,
                time_limit,
                linger: spec.linger,
                grace: opts.grace,
                limits: limits.clone(),
                trace: opts.trace,
                isolate: opts.isolate,
                output_cap: opts.output_cap,
                stdin: run.stdin.clone(),
                env: run.env.clone(),
                run_as: opts.run_as,
                shared_memory: spec.mechanism.needs_shared_memory(),
            };
            check_interrupt(None)?;
            let outcome = supervisor::run_supervised(&req)?;
            check_interrupt(Some(&outcome))?;
            Ok(checks::Run {
                index,
                args: run.args.clone(),
                outcome,
            })
        })
        .collect()
}
