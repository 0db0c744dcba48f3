//! Rules about meaning: what a port printed is judged by the *values* in
//! its lines and by *which process* wrote them, never by its words.
//!
//! The grader knows facts from the evidence of a run ([`super::evidence`]
//! and [`super::output`]): each process's pid and parent pid, the pids its
//! waits returned, the statuses its children exited with, the run's n and
//! pi(n). A spec names them in `[[output.says]]` rules:
//!
//! ```toml
//! [[output.says]]
//! by = "child"              # main | child | grandchild | any
//! facts = ["pid", "ppid"]   # numbers the grader knows, relative to the writer
//! why = "the child prints its own pid and its parent's"
//! ```
//!
//! A rule holds when enough processes of the role (`processes`, default 1)
//! each printed, somewhere in their own lines, every fact and every literal
//! number asked for: a student may write `Child PID: 12`, `hijo 12` or
//! `子进程 12`, on one line or two. `[[output.before]]` rules judge order the
//! same way: every line of one role is written before any line of another.
//! [`duplicates`] finds lines a child wrote again because its parent's stdio
//! buffer was copied by `fork`.

use super::checks::Run;
use super::evidence::{ProcRecord, Tree};
use super::output::Line;
use crate::process::ExitStatus;
use serde::Deserialize;

/// Which processes a rule speaks of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The port's main process (the command the grader started).
    Main,
    /// Any process of the port but the main one and helper programs.
    Child,
    /// A child's child (or deeper): an orphan in `double-fork`.
    Grandchild,
    /// Any process at all, helper programs included.
    #[default]
    Any,
}

impl Role {
    fn words(self) -> &'static str {
        match self {
            Role::Main => "the main process",
            Role::Child => "a child process",
            Role::Grandchild => "a grandchild (a child's child)",
            Role::Any => "some process",
        }
    }
}

/// A number the grader knows, relative to the process that prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fact {
    /// The writer's own pid.
    Pid,
    /// The writer's parent's pid.
    Ppid,
    /// The pid of one of the writer's children.
    ChildPid,
    /// A pid one of the writer's wait calls returned (traced runs).
    ReapedPid,
    /// The exit status of a child the writer reaped (traced runs).
    ChildStatus,
    /// The main process's pid.
    MainPid,
    /// The pid of one of the main process's children.
    MainChildPid,
    /// The run's n (first argument).
    N,
    /// pi from the run's n terms, within [`crate::pi::TOLERANCE`].
    Pi,
}

impl Fact {
    fn words(self) -> &'static str {
        match self {
            Fact::Pid => "its own pid",
            Fact::Ppid => "its parent's pid",
            Fact::ChildPid => "its child's pid",
            Fact::ReapedPid => "the pid its wait returned",
            Fact::ChildStatus => "the exit status its child ended with",
            Fact::MainPid => "the main process's pid",
            Fact::MainChildPid => "the pid of a child of the main process",
            Fact::N => "n",
            Fact::Pi => "pi from n terms",
        }
    }

    /// Needs to know who reaped whom: only a traced run can tell.
    fn needs_trace(self) -> bool {
        matches!(self, Fact::ReapedPid | Fact::ChildStatus)
    }
}

/// `[[output.says]]`: what processes of a role must print.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaysRule {
    /// Who prints.
    #[serde(default)]
    pub by: Role,
    /// Facts that must appear as numbers in the writer's lines.
    #[serde(default)]
    pub facts: Vec<Fact>,
    /// Literal numbers that must appear.
    #[serde(default)]
    pub numbers: Vec<f64>,
    /// ... in this order (as a subsequence of the numbers printed).
    #[serde(default)]
    pub in_order: bool,
    /// How far a printed number may be from a literal one (default 0).
    #[serde(default)]
    pub tolerance: f64,
    /// Numbers the writer must not print.
    #[serde(default)]
    pub absent: Vec<f64>,
    /// Data strings (not wording: `hello` of `[42, None, 'hello']`).
    #[serde(default)]
    pub contains: Vec<String>,
    /// Lines each writer must print at least (default 1).
    #[serde(default = "one")]
    pub lines: usize,
    /// How many processes of the role must each satisfy the rule (default 1).
    #[serde(default = "one")]
    pub processes: usize,
    /// Judge the lines of every process of the role together, as one.
    #[serde(default)]
    pub across: bool,
    /// The rule in words, for the report.
    #[serde(default)]
    pub why: String,
}

/// `[[output.before]]`: every line of `first` is written before any line of `then`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeforeRule {
    /// The role that prints first.
    pub first: Role,
    /// The role that prints after.
    pub then: Role,
    /// The rule in words, for the report.
    #[serde(default)]
    pub why: String,
}

fn one() -> usize {
    1
}

/// Checks the rules of a spec; the error is a sentence after the key's name.
pub fn validate(says: &[SaysRule], before: &[BeforeRule]) -> Result<(), (String, String)> {
    for (i, r) in says.iter().enumerate() {
        let key = format!("output.says[{i}]");
        if r.processes == 0 {
            return Err((key, "processes must be at least 1".into()));
        }
        if r.across && r.processes != 1 {
            return Err((
                key,
                "across judges the role as one: give processes = 1".into(),
            ));
        }
        if !(r.tolerance.is_finite() && r.tolerance >= 0.0) {
            return Err((
                key,
                format!("tolerance {} must be a number >= 0", r.tolerance),
            ));
        }
        if r.numbers.iter().chain(&r.absent).any(|v| !v.is_finite()) {
            return Err((key, "numbers must be finite".into()));
        }
    }
    for (i, b) in before.iter().enumerate() {
        if b.first == b.then {
            return Err((
                format!("output.before[{i}]"),
                "first and then must be different roles".into(),
            ));
        }
    }
    Ok(())
}

/// What one run printed and the processes behind it.
pub struct Printed<'a> {
    run: &'a Run,
    /// Every line of standard output with its writer.
    pub lines: Vec<Line>,
}

impl<'a> Printed<'a> {
    /// The lines of `run`'s standard output, attributed.
    pub fn of(run: &'a Run) -> Printed<'a> {
        let out = &run.outcome.stdout;
        Printed {
            run,
            lines: super::output::lines(&out.text, &out.chunks),
        }
    }

    fn tree(&self) -> &Tree {
        &self.run.outcome.tree
    }

    /// True when `pid` plays `role` in the run.
    pub fn plays(&self, pid: i32, role: Role) -> bool {
        let tree = self.tree();
        let p = tree.procs.get(&pid);
        match role {
            Role::Any => true,
            Role::Main => pid == tree.main,
            Role::Child => pid != tree.main && p.is_some_and(|p| !p.helper && !p.launcher),
            Role::Grandchild => {
                pid != tree.main
                    && p.is_some_and(|p| {
                        !p.helper && !p.launcher && p.parent != tree.main && p.parent != 0
                    })
            }
        }
    }

    /// A process for messages: `pid N (command)`.
    pub fn who(&self, pid: i32) -> String {
        match self.tree().procs.get(&pid) {
            Some(p) if !p.command.is_empty() => format!("pid {pid} ({})", short(&p.command)),
            _ if pid == 0 => "an unknown process".into(),
            _ => format!("pid {pid}"),
        }
    }

    fn lines_by(&self, pids: &[i32]) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| pids.contains(&l.pid))
            .collect()
    }

    /// The writers of the run's lines that play `role`, in order of first line.
    fn writers(&self, role: Role) -> Vec<i32> {
        let mut v: Vec<i32> = Vec::new();
        for l in &self.lines {
            if !v.contains(&l.pid) && self.plays(l.pid, role) {
                v.push(l.pid);
            }
        }
        v
    }

    /// The values a fact may take for writer `pid` (empty: unknown).
    fn values(&self, fact: Fact, pid: i32) -> Vec<f64> {
        let tree = self.tree();
        let procs = || tree.procs.values().filter(|c| !c.launcher);
        let ids = |p: &ProcRecord| p.ids();
        let pids: Vec<i32> = match fact {
            Fact::Pid => tree.procs.get(&pid).map_or(vec![pid], ids),
            Fact::Ppid => self.parents_seen(pid),
            Fact::ChildPid => procs().filter(|c| c.parent == pid).flat_map(ids).collect(),
            Fact::ReapedPid => procs()
                .filter(|c| c.reaped_by.is_some_and(|(r, _)| r == pid))
                .flat_map(ids)
                .collect(),
            Fact::ChildStatus => {
                return procs()
                    .filter(|c| c.reaped_by.is_some_and(|(r, _)| r == pid))
                    .filter_map(|c| match c.status {
                        Some(ExitStatus::Exited(code)) => Some(code as f64),
                        _ => None,
                    })
                    .collect();
            }
            Fact::MainPid => tree.procs.get(&tree.main).map_or(vec![tree.main], ids),
            Fact::MainChildPid => procs()
                .filter(|c| c.parent == tree.main && !c.launcher)
                .flat_map(ids)
                .collect(),
            Fact::N => return self.n().map(|n| vec![n as f64]).unwrap_or_default(),
            Fact::Pi => {
                return self
                    .n()
                    .map(|n| vec![crate::pi::serial(n)])
                    .unwrap_or_default();
            }
        };
        pids.into_iter().map(f64::from).collect()
    }

    /// The pids `getppid(2)` may have returned in `pid`: its parent's, and,
    /// once that parent has exited without waiting for it, its adopter's.
    /// Which of the two a child that was never waited for printed depends on
    /// whether it wrote just before or just after its parent exited, so both
    /// are right (the missing wait is judged by `zombies` and `mechanism`).
    fn parents_seen(&self, pid: i32) -> Vec<i32> {
        let tree = self.tree();
        let Some(p) = tree.procs.get(&pid) else {
            return vec![];
        };
        let Some(parent) = tree.procs.get(&p.parent) else {
            return vec![];
        };
        let mut seen = parent.ids();
        let waited = p.reaped_by.is_some_and(|(r, _)| r == p.parent);
        if parent.exited.is_some() && !waited {
            seen.extend(tree.reaper);
        }
        seen
    }

    fn n(&self) -> Option<u64> {
        self.run.args.first().and_then(|a| a.parse().ok())
    }
}

/// Every number in a line, in order: `-` is a sign only after a non-word
/// character (`Process-1` is 1), digits may touch letters (`P1` is 1).
pub fn numbers(text: &str) -> Vec<f64> {
    static NUMBER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?").expect("valid")
    });
    NUMBER
        .find_iter(text)
        .filter_map(|m| {
            let glued = text[..m.start()]
                .chars()
                .last()
                .is_some_and(char::is_alphanumeric);
            let s = if glued {
                m.as_str().trim_start_matches('-')
            } else {
                m.as_str()
            };
            s.parse().ok()
        })
        .collect()
}

fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// One `[[output.says]]` rule on one run: `Ok(note)` or `Err(problem)`.
pub fn says(p: &Printed, rule: &SaysRule) -> Result<String, String> {
    let traced = p.run.outcome.traced;
    let facts: Vec<Fact> = rule
        .facts
        .iter()
        .copied()
        .filter(|f| traced || !f.needs_trace())
        .collect();
    let writers = p.writers(rule.by);
    let groups: Vec<Vec<i32>> = if rule.across {
        if writers.is_empty() {
            vec![]
        } else {
            vec![writers.clone()]
        }
    } else {
        writers.iter().map(|w| vec![*w]).collect()
    };
    // For each group, what is missing (an empty list: it holds).
    let judged: Vec<(Vec<i32>, Vec<String>)> = groups
        .into_iter()
        .map(|g| {
            let missing = missing(p, rule, &facts, &g);
            (g, missing)
        })
        .collect();
    let good: Vec<&Vec<i32>> = judged
        .iter()
        .filter(|(_, m)| m.is_empty())
        .map(|(g, _)| g)
        .collect();
    let what = expectation(rule, &facts);
    if good.len() >= rule.processes {
        let by: Vec<String> = good.iter().map(|g| p.who(g[0])).collect();
        return Ok(format!("{what}: printed by {}", by.join(", ")));
    }
    let mut msg = format!("expected {what}");
    if !good.is_empty() {
        msg.push_str(&format!(
            " ({} process(es) did, {} needed)",
            good.len(),
            rule.processes
        ));
    }
    match judged
        .iter()
        .filter(|(_, m)| !m.is_empty())
        .min_by_key(|(_, m)| m.len())
    {
        Some((g, m)) => {
            let quoted = quote(p, g, 3);
            msg.push_str(&format!(
                "; nearest: {} printed {quoted}, which lacks {}",
                p.who(g[0]),
                m.join(", ")
            ));
        }
        None if good.is_empty() => {
            msg.push_str(&format!("; no line was printed by {}", rule.by.words()));
            let others: Vec<i32> = p.writers(Role::Any);
            if let Some(w) = others.first() {
                msg.push_str(&format!(
                    "; the lines printed came from {}: {}",
                    others
                        .iter()
                        .map(|w| p.who(*w))
                        .collect::<Vec<_>>()
                        .join(", "),
                    quote(p, &[*w], 2)
                ));
            }
        }
        None => {}
    }
    Err(msg)
}

/// What a group of writers lacks for a rule, in words.
fn missing(p: &Printed, rule: &SaysRule, facts: &[Fact], group: &[i32]) -> Vec<String> {
    let lines = p.lines_by(group);
    let printed: Vec<f64> = lines.iter().flat_map(|l| numbers(&l.text)).collect();
    let mut out = Vec::new();
    if lines.len() < rule.lines {
        out.push(format!(
            "{} line(s) (it printed {})",
            rule.lines,
            lines.len()
        ));
    }
    for f in facts {
        let want = if rule.across {
            group.iter().flat_map(|w| p.values(*f, *w)).collect()
        } else {
            p.values(*f, group[0])
        };
        let tol = if *f == Fact::Pi {
            crate::pi::TOLERANCE
        } else {
            0.0
        };
        if !want
            .iter()
            .any(|v| printed.iter().any(|x| near(*x, *v, tol)))
        {
            out.push(format!("{} ({})", f.words(), shown(&want)));
        }
    }
    if rule.in_order {
        let mut at = 0;
        for v in &rule.numbers {
            match printed[at..]
                .iter()
                .position(|x| near(*x, *v, rule.tolerance))
            {
                Some(i) => at += i + 1,
                None => {
                    out.push(format!(
                        "the numbers {} in this order",
                        shown(&rule.numbers)
                    ));
                    break;
                }
            }
        }
    } else {
        for v in &rule.numbers {
            if !printed.iter().any(|x| near(*x, *v, rule.tolerance)) {
                out.push(format!("the number {v}"));
            }
        }
    }
    for v in &rule.absent {
        if printed.iter().any(|x| near(*x, *v, rule.tolerance)) {
            out.push(format!("the absence of {v} (it printed {v})"));
        }
    }
    for s in &rule.contains {
        if !lines.iter().any(|l| l.text.contains(s.as_str())) {
            out.push(format!("{s:?}"));
        }
    }
    out
}

fn expectation(rule: &SaysRule, facts: &[Fact]) -> String {
    if !rule.why.is_empty() {
        return rule.why.clone();
    }
    let mut parts: Vec<String> = facts.iter().map(|f| f.words().to_string()).collect();
    if !rule.numbers.is_empty() {
        parts.push(format!("the numbers {}", shown(&rule.numbers)));
    }
    parts.extend(rule.contains.iter().map(|s| format!("{s:?}")));
    if parts.is_empty() {
        parts.push(format!("{} line(s)", rule.lines));
    }
    format!("{} prints {}", rule.by.words(), parts.join(" and "))
}

fn shown(values: &[f64]) -> String {
    let v: Vec<String> = values.iter().take(4).map(|v| v.to_string()).collect();
    match values.len() {
        0 => "unknown".into(),
        1..=4 => v.join(", "),
        n => format!("{}, ... ({n} values)", v.join(", ")),
    }
}

/// Up to `max` lines of a group of writers, quoted, joined with ` / `.
fn quote(p: &Printed, group: &[i32], max: usize) -> String {
    let lines = p.lines_by(group);
    let mut q: Vec<String> = lines
        .iter()
        .take(max)
        .map(|l| format!("{:?}", cut(&l.text, 80)))
        .collect();
    if lines.len() > max {
        q.push(format!("... ({} lines)", lines.len()));
    }
    if q.is_empty() {
        "nothing".into()
    } else {
        q.join(" / ")
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// A command line's last 60 characters (the script's name is at the end).
fn short(cmd: &str) -> String {
    let n = cmd.chars().count();
    if n <= 60 {
        cmd.to_string()
    } else {
        format!("...{}", cmd.chars().skip(n - 60).collect::<String>())
    }
}

/// One `[[output.before]]` rule on one run.
pub fn before(p: &Printed, rule: &BeforeRule) -> Result<String, String> {
    let what = if rule.why.is_empty() {
        format!(
            "every line of {} comes before any line of {}",
            rule.first.words(),
            rule.then.words()
        )
    } else {
        rule.why.clone()
    };
    let firsts: Vec<&Line> = p
        .lines
        .iter()
        .filter(|l| p.plays(l.pid, rule.first) && !p.plays(l.pid, rule.then))
        .collect();
    let thens: Vec<&Line> = p
        .lines
        .iter()
        .filter(|l| p.plays(l.pid, rule.then) && !p.plays(l.pid, rule.first))
        .collect();
    let (Some(last_first), Some(first_then)) = (
        firsts.iter().max_by_key(|l| l.seq),
        thens.iter().min_by_key(|l| l.seq),
    ) else {
        let none = if firsts.is_empty() {
            rule.first
        } else {
            rule.then
        };
        return Err(format!(
            "expected {what}; no line was printed by {}",
            none.words()
        ));
    };
    if last_first.seq < first_then.seq {
        Ok(what)
    } else {
        Err(format!(
            "expected {what}; but {} printed {:?} before {} printed {:?}",
            p.who(first_then.pid),
            cut(&first_then.text, 80),
            p.who(last_first.pid),
            cut(&last_first.text, 80)
        ))
    }
}

/// Lines a child wrote again because they were still in its parent's stdio
/// buffer at `fork`: the child's first lines equal lines its parent wrote
/// after the fork (a buffer flushed before `fork` is written once, before).
pub fn duplicates(p: &Printed) -> Vec<String> {
    let tree = p.tree();
    let mut found = Vec::new();
    for c in tree.procs.values().filter(|c| c.parent != 0 && !c.helper) {
        let mine = p.lines_by(&[c.pid]);
        let Some(first) = mine.first().filter(|l| !l.text.trim().is_empty()) else {
            continue;
        };
        let parents = p.lines_by(&[c.parent]);
        let copied = parents
            .iter()
            .position(|l| l.text == first.text && l.at + 0.005 >= c.started);
        if let Some(i) = copied {
            let n = mine
                .iter()
                .zip(&parents[i..])
                .take_while(|(a, b)| a.text == b.text)
                .count();
            found.push(format!(
                "{} line(s) beginning {:?} were written by {} and again by its child {}: they were still in the parent's output buffer when it forked (flush before fork)",
                n,
                cut(&first.text, 60),
                p.who(c.parent),
                p.who(c.pid)
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_the_way_people_write_them() {
        assert_eq!(numbers("pid : 12, status: 1"), [12.0, 1.0]);
        assert_eq!(
            numbers("Process-1 P2 [0, -1, -2]"),
            [1.0, 2.0, 0.0, -1.0, -2.0]
        );
        assert_eq!(numbers("第一件事情 2.5"), [2.5]);
        assert_eq!(numbers("a=-5 1e3"), [-5.0, 1000.0]);
        assert_eq!(numbers("v1.2.3"), [1.2, 3.0]);
    }
}
