//! A run's report: the machine, the date, every figure with its spread, and
//! the targets checked against the medians. Printed as a table
//! ([`Report::to_text`]) or written as JSON (what `scripts/bench-table.py`
//! turns into the README's table).

use super::{Bench, Stats, Unit, Where, place_label};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::IsTerminal;

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// When it started, RFC 3339 in UTC.
    pub date: String,
    /// True for a `--quick` run, whose figures mean nothing.
    pub quick: bool,
    /// One entry per benchmark.
    pub benchmarks: Vec<BenchResult>,
    /// The targets against the measured medians.
    pub targets: Vec<Target>,
    /// What was set up or skipped (a Python module installed, no C compiler...).
    pub notes: Vec<String>,
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs this process may use (`sched_getaffinity(2)`).
    pub cpus: usize,
    /// The CPU model (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// The kernel (`uname(2)`: sysname and release).
    pub kernel: String,
    /// The load averages (`/proc/loadavg`) when the run ended: how busy the
    /// machine was with other work.
    pub load_average: String,
    /// `python3 --version`.
    pub python: String,
}

/// One benchmark's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    /// Its name (`ipckit bench NAME`).
    pub name: String,
    /// One operation, in words.
    pub op: String,
    /// The unit of every figure.
    pub unit: Unit,
    /// Operations per sample.
    pub ops: u64,
    /// Samples per figure.
    pub runs: usize,
    /// One per side and placement.
    pub figures: Vec<Figure>,
}

/// One side (`ipckit`, `raw`, `c`, `python`...) at one placement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    /// The side.
    pub side: String,
    /// "scheduler", "same-core" or "cross-core".
    pub placement: String,
    /// Its statistics, or why it was not measured.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A figure's statistics, or why there are none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    /// Measured.
    Measured(Stats),
    /// Not measured, and why.
    Skipped {
        /// The reason.
        skipped: String,
    },
}

/// One target of the issue at one placement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// The benchmark.
    pub bench: String,
    /// The placement.
    pub placement: String,
    /// The target in words ("ipckit / raw-pipe <= 1.3").
    pub goal: String,
    /// The ratio of the medians (`None`: a side was not measured).
    pub ratio: Option<f64>,
    /// The ratio's range over the spread: (num min / den max, num max / den
    /// min), so noise shows.
    pub range: Option<(f64, f64)>,
    /// Whether the median meets the target.
    pub met: Option<bool>,
}

impl Figure {
    /// A figure from samples in seconds per operation (or per second).
    pub fn new(side: &str, place: Where, unit: Unit, samples: Result<Vec<f64>>) -> Figure {
        let outcome = match samples {
            Ok(s) => Stats::of(&s, unit.scale()).map_or_else(
                || Outcome::Skipped {
                    skipped: "no usable sample".into(),
                },
                Outcome::Measured,
            ),
            Err(e) => Outcome::Skipped {
                skipped: e.to_string(),
            },
        };
        Figure {
            side: side.into(),
            placement: place_label(place).into(),
            outcome,
        }
    }

    /// Its statistics, if measured.
    pub fn stats(&self) -> Option<&Stats> {
        match &self.outcome {
            Outcome::Measured(s) => Some(s),
            Outcome::Skipped { .. } => None,
        }
    }
}

impl BenchResult {
    /// The result of `bench` from its figures.
    pub fn new(bench: &Bench, ops: u64, runs: usize, figures: Vec<Figure>) -> BenchResult {
        BenchResult {
            name: bench.name.into(),
            op: bench.op.into(),
            unit: bench.unit,
            ops,
            runs,
            figures,
        }
    }

    /// The statistics of one side at one placement, if measured.
    pub fn stats(&self, side: &str, placement: &str) -> Option<&Stats> {
        self.figures
            .iter()
            .find(|f| f.side == side && f.placement == placement)
            .and_then(Figure::stats)
    }

    /// The placements its figures cover, in order of first appearance.
    pub fn placements(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in &self.figures {
            if !out.contains(&f.placement.as_str()) {
                out.push(&f.placement);
            }
        }
        out
    }
}

/// A target: `num / (den / divisor)` compared with `limit` (at most, or at least).
struct Goal {
    num: &'static str,
    den: &'static str,
    limit: f64,
    at_most: bool,
    /// Divide the denominator by the CPUs (a serial loop spread over the cores).
    per_core: bool,
}

/// The targets for one benchmark.
fn goals(bench: &str) -> Vec<Goal> {
    let goal = |num, den, limit, at_most| Goal {
        num,
        den,
        limit,
        at_most,
        per_core: false,
    };
    match bench {
        "connection" => vec![
            goal("ipckit-simplex", "raw-pipe", 1.3, true),
            goal("ipckit", "raw-socketpair", 1.3, true),
        ],
        "value-lock" => vec![goal("ipckit", "raw", 2.0, true)],
        "fork-wait" => vec![goal("ipckit", "c", 1.3, true)],
        "posix-mq" | "sysv-mq" => vec![goal("ipckit", "raw", 1.2, true)],
        "queue-throughput" => vec![goal("ipckit", "python", 10.0, false)],
        b if b.starts_with("pi-") => vec![
            goal("python", "ipckit", 30.0, false),
            Goal {
                per_core: true,
                ..goal("ipckit", "c-serial", 1.2, true)
            },
        ],
        _ => Vec::new(),
    }
}

impl Report {
    /// The report of a run: figures, the targets they meet, and the machine.
    pub fn new(benchmarks: Vec<BenchResult>, quick: bool, notes: Vec<String>) -> Report {
        let machine = Machine::here();
        let targets = benchmarks
            .iter()
            .flat_map(|b| targets_of(b, machine.cpus as f64))
            .collect();
        Report {
            machine,
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            quick,
            benchmarks,
            targets,
            notes,
        }
    }

    /// The report as a plain-text table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "ipckit bench, {}: {} CPUs ({}), {}, {}, load average {}{}",
            self.date,
            m.cpus,
            m.cpu_model,
            m.kernel,
            m.python,
            m.load_average,
            if self.quick {
                " (--quick: figures mean nothing)"
            } else {
                ""
            }
        );
        for b in &self.benchmarks {
            let better = if b.unit.higher_is_better() {
                "higher"
            } else {
                "lower"
            };
            let _ = writeln!(
                out,
                "\n{}: {} ({}, {} runs of {} ops; {better} is better)",
                b.name,
                b.op,
                b.unit.label(),
                b.runs,
                b.ops
            );
            let _ = writeln!(
                out,
                "  {:<15} {:<11} {:>12} {:>12} {:>12}",
                "side", "placement", "min", "median", "max"
            );
            for f in &b.figures {
                let cells = match &f.outcome {
                    Outcome::Measured(s) => {
                        format!(
                            "{:>12} {:>12} {:>12}",
                            num(s.min),
                            num(s.median),
                            num(s.max)
                        )
                    }
                    Outcome::Skipped { skipped } => format!("skipped: {skipped}"),
                };
                let _ = writeln!(out, "  {:<15} {:<11} {cells}", f.side, f.placement);
            }
        }
        let _ = writeln!(out, "\nTargets (ratio of medians; range from min/max):");
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            };
            let ratio = t.ratio.map_or("n/a".into(), |r| format!("{r:.2}"));
            let range = t
                .range
                .map_or(String::new(), |(a, b)| format!(" ({a:.2}..{b:.2})"));
            let _ = writeln!(
                out,
                "  {:<17} {:<11} {:<34} {ratio}{range} {verdict}",
                t.bench, t.placement, t.goal
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

/// A figure with three significant digits or so.
fn num(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

/// The targets of one benchmark at each of its placements.
fn targets_of(b: &BenchResult, cpus: f64) -> Vec<Target> {
    let mut out = Vec::new();
    for goal in goals(&b.name) {
        for place in b.placements() {
            let (num, den) = (b.stats(goal.num, place), b.stats(goal.den, place));
            if num.is_none() && den.is_none() {
                continue;
            }
            let divisor = if goal.per_core { cpus } else { 1.0 };
            let ratio = num.zip(den).map(|(n, d)| n.median / (d.median / divisor));
            let range = num
                .zip(den)
                .map(|(n, d)| (n.min / (d.max / divisor), n.max / (d.min / divisor)));
            let (op, den_text) = (
                if goal.at_most { "<=" } else { ">=" },
                if goal.per_core {
                    format!("({} / {cpus} CPUs)", goal.den)
                } else {
                    goal.den.to_string()
                },
            );
            out.push(Target {
                bench: b.name.clone(),
                placement: place.into(),
                goal: format!("{} / {den_text} {op} {}", goal.num, goal.limit),
                ratio,
                range,
                met: ratio.map(|r| {
                    if goal.at_most {
                        r <= goal.limit
                    } else {
                        r >= goal.limit
                    }
                }),
            });
        }
    }
    out
}

impl Machine {
    /// This machine, now.
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".into(), |(_, m)| m.trim().to_string());
        let kernel = nix::sys::utsname::uname()
            .map(|u| {
                format!(
                    "{} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy()
                )
            })
            .unwrap_or_else(|_| "unknown".into());
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            kernel,
            load_average,
            python: super::native::python_version(),
        }
    }
}

/// The progress line: on a terminal one line rewritten in place, otherwise
/// one plain line per benchmark on standard error.
pub struct Progress {
    tty: bool,
    total: usize,
    done: usize,
    current: String,
}

impl Progress {
    /// Progress over `total` benchmarks.
    pub fn new(total: usize) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            total,
            done: 0,
            current: String::new(),
        }
    }

    /// Says that `bench`'s `side` is running at `place`.
    pub fn show(&mut self, bench: &str, side: &str, place: Where) {
        if self.current != bench {
            self.done += usize::from(!self.current.is_empty());
            self.current = bench.into();
            if !self.tty {
                eprintln!("ipckit bench: [{}/{}] {bench}", self.done + 1, self.total);
            }
        }
        if self.tty {
            eprint!(
                "\r\x1b[K[{}/{}] {bench}: {side} ({})",
                self.done + 1,
                self.total,
                place_label(place)
            );
        }
    }

    /// Clears the line.
    pub fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }
}
