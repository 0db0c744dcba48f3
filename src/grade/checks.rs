//! The checks: each run's outcome judged against the spec, with a sentence a
//! student can act on.
//!
//! The check names are fixed (DESIGN.md): `output`, `exit`, `time`,
//! `zombies`, `orphans`, `leaks`, `mechanism`. Each is judged per run and the
//! runs are combined: one failing run fails the check (its detail names the
//! run), a check that does not apply is `skip` with the reason, never a
//! silent `pass`.

use super::evidence::{ProcRecord, Tree};
use super::facts;
use super::spec::{COUNTERS, Rule, Spec};
use super::supervisor::Outcome;
use super::{Check, Status};
use crate::process::ExitStatus;
use regex::Regex;
use std::collections::BTreeMap;

/// One finished run: its arguments and outcome.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Which `[[run]]` of the spec this is (its expected exit status and values).
    pub index: usize,
    /// The arguments the port got.
    pub args: Vec<String>,
    /// What happened.
    pub outcome: Outcome,
}

impl Run {
    fn label(&self) -> String {
        if self.args.is_empty() {
            format!("run {}", self.index + 1)
        } else {
            format!("run `{}`", self.args.join(" "))
        }
    }
}

/// One check's verdict for one run.
type Judgement = (Status, String);

/// A check: judges one run against the spec.
type CheckFn = fn(&Spec, &Run) -> Judgement;

/// Counts for tables: how many zombies, orphans still running and leaks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Zombies found (children never waited for).
    pub zombies: usize,
    /// Orphans still running at the end (killed).
    pub orphans: usize,
    /// Objects and files left behind.
    pub leaks: usize,
}

/// Judges every run; returns the seven checks in their fixed order, and the counts.
pub fn judge(spec: &Spec, runs: &[Run]) -> (Vec<Check>, Counts) {
    let checks: [(&str, CheckFn); 7] = [
        ("output", output),
        ("exit", exit),
        ("time", time),
        ("zombies", zombies),
        ("orphans", orphans),
        ("leaks", leaks),
        ("mechanism", mechanism),
    ];
    let list = checks
        .iter()
        .map(|(name, f)| combine(name, runs.iter().map(|r| (r, f(spec, r)))))
        .collect();
    let mut counts = Counts::default();
    for r in runs {
        if spec.reaping.adopted == Rule::Forbid {
            counts.zombies += zombie_findings(&r.outcome).len();
        }
        counts.orphans += r.outcome.tree.procs.values().filter(|p| p.orphan).count();
        counts.leaks += r.outcome.leaks.len();
    }
    (list, counts)
}

fn combine<'a>(name: &str, results: impl Iterator<Item = (&'a Run, Judgement)>) -> Check {
    let results: Vec<(&Run, Judgement)> = results.collect();
    let pick = |s: Status| -> Vec<String> {
        results
            .iter()
            .filter(|(_, (st, _))| *st == s)
            .map(|(r, (_, d))| {
                if results.len() > 1 {
                    format!("{}: {d}", r.label())
                } else {
                    d.clone()
                }
            })
            .collect()
    };
    let fails = pick(Status::Fail);
    let (status, details) = if !fails.is_empty() {
        (Status::Fail, fails)
    } else if pick(Status::Pass).is_empty() {
        (
            Status::Skip,
            pick(Status::Skip).into_iter().take(1).collect(),
        )
    } else {
        let mut d = pick(Status::Pass);
        d.dedup();
        (Status::Pass, d)
    };
    Check {
        name: name.to_string(),
        status,
        detail: details.join("; "),
    }
}

fn pass(d: impl Into<String>) -> Judgement {
    (Status::Pass, d.into())
}

fn fail(d: impl Into<String>) -> Judgement {
    (Status::Fail, d.into())
}

fn skip(d: impl Into<String>) -> Judgement {
    (Status::Skip, d.into())
}

// ---- output ---------------------------------------------------------------

fn output(spec: &Spec, run: &Run) -> Judgement {
    let o = &spec.output;
    let run_lines = spec.runs.get(run.index).and_then(|r| r.lines.as_ref());
    let rules = run_lines.is_some() || o.asks_anything();
    if !rules {
        return skip("the exercise has no output rule");
    }
    let text = &run.outcome.stdout.text;
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if let Some(want) = run_lines.or(o.lines.as_ref()) {
        compare_lines(want, &lines, &mut problems);
    }
    let mut captures: BTreeMap<String, String> = BTreeMap::new();
    for m in &o.matches {
        let re = Regex::new(&m.regex).expect("validated");
        let hits: Vec<&&str> = lines.iter().filter(|l| re.is_match(l)).collect();
        let ok = match (m.count, m.min) {
            (Some(c), _) => hits.len() == c,
            (None, min) => hits.len() >= min.unwrap_or(1),
        };
        if !ok {
            let want = m
                .count
                .map_or(format!("at least {}", m.min.unwrap_or(1)), |c| {
                    format!("exactly {c}")
                });
            problems.push(format!(
                "{want} line(s) must match /{}/, found {}",
                m.regex,
                hits.len()
            ));
        }
        if let Some(caps) = hits.first().and_then(|l| re.captures(l)) {
            for name in re.capture_names().flatten() {
                if let Some(v) = caps.name(name) {
                    captures.insert(name.to_string(), v.as_str().to_string());
                }
            }
        }
    }
    for chain in &o.order {
        check_order(chain, &lines, &mut problems);
    }
    check_unordered(&o.unordered, &lines, &mut problems);
    for group in &o.agree {
        let values: Vec<String> = group
            .iter()
            .map(|n| format!("{n}={}", captures.get(n).map_or("?", |v| v)))
            .collect();
        let first = captures.get(&group[0]);
        if first.is_none() || group.iter().any(|n| captures.get(n) != first) {
            problems.push(format!("these values must agree: {}", values.join(", ")));
        } else {
            notes.push(format!("{} agree", values.join(", ")));
        }
    }
    check_pids(&o.pids, &captures, run, &mut problems, &mut notes);
    for f in &o.forbid {
        let re = Regex::new(f).expect("validated");
        if let Some(l) = lines.iter().find(|l| re.is_match(l)) {
            problems.push(format!("the line {l:?} must not appear (matches /{f}/)"));
        }
    }
    if o.pi {
        check_pi(run, text, &mut problems, &mut notes);
    }
    super::numbers::check(spec, run, text, &mut problems, &mut notes);
    meaning(spec, run, &mut problems, &mut notes);
    let truncated = run.outcome.stdout.truncated.then(|| {
        format!(
            "output truncated: {} bytes written, the first {} kept",
            run.outcome.stdout.bytes,
            run.outcome.stdout.text.len()
        )
    });
    if problems.is_empty() {
        let mut d = vec![format!("{} line(s) as expected", lines.len())];
        d.extend(notes);
        d.extend(truncated);
        pass(d.join("; "))
    } else {
        if let Some(t) = truncated {
            problems.insert(0, t);
        }
        if lines.is_empty() && !run.outcome.stderr.text.is_empty() {
            problems.push(format!(
                "nothing on standard output; standard error began {:?}",
                first_chars(&run.outcome.stderr.text, 200)
            ));
        }
        fail(summarise(problems))
    }
}

/// The rules about meaning ([`super::facts`]): who printed which values, in
/// which order, and lines a child printed again from a copied buffer.
fn meaning(spec: &Spec, run: &Run, problems: &mut Vec<String>, notes: &mut Vec<String>) {
    let o = &spec.output;
    let printed = facts::Printed::of(run);
    let results = o
        .says
        .iter()
        .map(|r| facts::says(&printed, r))
        .chain(o.before.iter().map(|r| facts::before(&printed, r)));
    for r in results {
        match r {
            Ok(note) => notes.push(note),
            Err(problem) => problems.push(problem),
        }
    }
    for d in facts::duplicates(&printed) {
        if o.duplicates == Rule::Forbid {
            problems.push(d);
        } else {
            notes.push(format!("note: {d}"));
        }
    }
}

fn first_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn compare_lines(want: &[String], got: &[&str], problems: &mut Vec<String>) {
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i).map(|s| s.trim_end()), got.get(i).copied());
        if w != g {
            problems.push(format!(
                "line {} should be {} but is {}",
                i + 1,
                w.map_or("absent".into(), |w| format!("{w:?}")),
                g.map_or("absent".into(), |g| format!("{g:?}"))
            ));
            return;
        }
    }
}

fn check_order(order: &[String], lines: &[&str], problems: &mut Vec<String>) {
    let mut last: Option<(usize, &str)> = None;
    for r in order {
        let re = Regex::new(r).expect("validated");
        match lines.iter().position(|l| re.is_match(l)) {
            None => problems.push(format!("no line matches /{r}/")),
            Some(i) => {
                if let Some((j, prev)) = last
                    && i <= j
                {
                    problems.push(format!(
                        "line {} (/{r}/) must come after line {} (/{prev}/)",
                        i + 1,
                        j + 1
                    ));
                }
                last = Some((i, r));
            }
        }
    }
}

fn check_unordered(want: &[String], lines: &[&str], problems: &mut Vec<String>) {
    let mut left: Vec<&str> = lines.to_vec();
    for w in want {
        match left.iter().position(|l| l == w) {
            Some(i) => {
                left.remove(i);
            }
            None => problems.push(format!("the line {w:?} is missing")),
        }
    }
}

fn check_pids(
    names: &[String],
    caps: &BTreeMap<String, String>,
    run: &Run,
    problems: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    if names.is_empty() {
        return;
    }
    if !run.outcome.traced {
        notes.push("printed pids not compared with the real ones (run not traced)".into());
        return;
    }
    for n in names {
        let v = caps.get(n).and_then(|v| v.parse::<i32>().ok());
        match v {
            Some(pid) if run.outcome.tree.judged().any(|p| p.pid == pid) => {}
            Some(pid) => problems.push(format!(
                "{n} = {pid} is not the pid of any process of the run"
            )),
            None => problems.push(format!("no pid printed for {n}")),
        }
    }
}

fn check_pi(run: &Run, text: &str, problems: &mut Vec<String>, notes: &mut Vec<String>) {
    let n = crate::pi::parse_n(&run.args).expect("validated");
    let want = crate::pi::serial(n);
    let re = Regex::new(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?").expect("valid");
    let last = re.find_iter(text).last().map(|m| m.as_str().to_string());
    match last.as_deref().map(str::parse::<f64>) {
        Some(Ok(got)) if (got - want).abs() <= crate::pi::TOLERANCE => {
            notes.push(format!(
                "n={n}: printed {got}, expected {want} (within {:e})",
                crate::pi::TOLERANCE
            ));
        }
        Some(Ok(got)) if n != crate::pi::DEFAULT_N
            && (got - crate::pi::serial(crate::pi::DEFAULT_N)).abs() <= crate::pi::TOLERANCE =>
        {
            problems.push(format!(
                "n={n}: printed {got}, which is pi from the default {} terms: the port ignored its n argument (the first argument, {n}); pi from {n} terms is {want}",
                crate::pi::DEFAULT_N
            ))
        }
        Some(Ok(got)) => problems.push(format!(
            "n={n}: printed {got} but pi from {n} terms is {want} (off by {:.3e}; tolerance {:e})",
            (got - want).abs(),
            crate::pi::TOLERANCE
        )),
        _ => problems.push(format!("n={n}: no number printed (expected {want})")),
    }
}

// ---- exit and time ----------------------------------------------------------

fn exit(spec: &Spec, run: &Run) -> Judgement {
    let o = &run.outcome;
    match o.exit {
        _ if main_killed_at_deadline(o) => fail(format!(
            "the main process was still running at the {:.1} s time limit and was killed ({})",
            o.time_limit,
            o.exit.map_or("not seen".into(), |s| s.to_string())
        )),
        Some(ExitStatus::Exited(c)) if c == spec.expected_exit(run.index) => {
            pass(format!("exited with status {c}"))
        }
        Some(s) => fail(format!(
            "the main process {s}; expected exit status {}",
            spec.expected_exit(run.index)
        )),
        None => fail("the main process's end was not seen".to_string()),
    }
}

fn time(_spec: &Spec, run: &Run) -> Judgement {
    let o = &run.outcome;
    if main_killed_at_deadline(o) {
        return fail(format!(
            "did not finish within the {:.1} s time limit (killed after {:.2} s)",
            o.time_limit, o.seconds
        ));
    }
    match o.main_exited {
        Some(t) if o.timed_out => pass(format!(
            "the main process finished in {t:.2} s (limit {:.1} s); processes it left running were killed at the limit (see `orphans`)",
            o.time_limit
        )),
        Some(t) => pass(format!("{t:.2} s (limit {:.1} s)", o.time_limit)),
        None => fail("the main process's end was not seen"),
    }
}

/// True when the main process was still running when the deadline struck.
fn main_killed_at_deadline(o: &Outcome) -> bool {
    match (o.deadline_kill, o.main_exited) {
        (Some(k), Some(t)) => t >= k,
        (Some(_), None) => true,
        _ => false,
    }
}

/// At most three items of a list, then how many more.
fn summarise(items: Vec<String>) -> String {
    let n = items.len();
    let mut shown: Vec<String> = items.into_iter().take(3).collect();
    if n > 3 {
        shown.push(format!("and {} more", n - 3));
    }
    shown.join("; ")
}

// ---- zombies and orphans ------------------------------------------------------

/// How a judged child process ended up, relative to its parent.
///
/// A child its parent never waited for is [`Fate::Unwaited`] whether it
/// ended just before its parent (a zombie the grader collected as adopter)
/// or just after (an orphan): which one happens is the scheduler's choice,
/// and a verdict must not depend on it. The spec's `reaping.adopted` judges
/// it.
#[derive(Debug, PartialEq)]
enum Fate {
    ReapedByParent,
    Unwaited(String),
    KernelReaped,
    Killed,
    /// A language runtime's own process (Python's `multiprocessing`
    /// resource tracker or fork server): not the student's to wait for.
    Runtime,
    Unknown,
}

/// Command lines of processes a language runtime starts for itself.
const RUNTIME: &[&str] = &[
    "multiprocessing.resource_tracker",
    "multiprocessing.semaphore_tracker",
    "multiprocessing.forkserver",
];

fn fate(o: &Outcome, p: &ProcRecord) -> Fate {
    let tree = &o.tree;
    let parent = tree.procs.get(&p.parent);
    if let (Some(k), Some(t)) = (o.deadline_kill, p.exited)
        && t >= k
        && p.reaped_by.is_none()
    {
        return Fate::Killed; // ended by the grader's deadline kill: its parent had no chance
    }
    if let Some((reaper, _)) = p.reaped_by
        && reaper == p.parent
    {
        return Fate::ReapedByParent;
    }
    if o.deadline_kill.is_some() && parent.is_some_and(|q| q.killed.is_some()) {
        // Its parent was killed by the grader at the deadline before it
        // waited: whether the child had ended by then is the scheduler's
        // doing (a slow start, a hang), and the hang is judged by `time`.
        return Fate::Killed;
    }
    if o.traced && p.sigchld_ignored && p.reaped_by.is_none() {
        return Fate::KernelReaped; // its parent ignored SIGCHLD when it forked it
    }
    if p.killed.is_some() {
        return Fate::Killed;
    }
    if RUNTIME.iter().any(|r| p.command.contains(r)) {
        return Fate::Runtime;
    }
    let parent_exit = parent.and_then(|q| q.exited);
    let unwaited = |when: String| {
        Fate::Unwaited(format!(
            "child {} was never waited for by its parent {}, which exited without waiting for it; {when}",
            tree.who(p.pid),
            tree.who(p.parent)
        ))
    };
    // Untraced: seen as a zombie, and collected by the grader (as adopter)
    // rather than by its parent.
    if let Some((_, t)) = p.seen_zombie
        && p.exited.is_some()
    {
        return unwaited(format!("it was seen as a zombie at {t:.2} s"));
    }
    match (p.exited, parent_exit) {
        // A zombie when its parent exited: the grader collected it again as adopter.
        (Some(t), _) if p.readopted.is_some() => unwaited(format!(
            "it ended at {t:.2} s, before its parent, and was left a zombie for the grader to collect"
        )),
        (Some(t), Some(pt)) if t > pt => unwaited(format!(
            "it ended at {t:.2} s, after its parent ({pt:.2} s), and was adopted by the grader"
        )),
        _ if p.seen_adopted.is_some() => {
            unwaited("it was seen running, adopted by the grader".to_string())
        }
        // Ended before its parent, never a zombie: SIGCHLD was ignored
        // after the fork (or the kernel reaped it for another reason).
        (Some(_), _) if p.reaped_by.is_none() => Fate::KernelReaped,
        _ => Fate::Unknown,
    }
}

/// The judged children (every judged process but the main one), without
/// the children of helper programs (a shell's `ps`, `grep`): those are the
/// helper's.
fn children(tree: &Tree) -> impl Iterator<Item = &ProcRecord> {
    tree.judged().filter(move |p| {
        p.pid != tree.main && p.parent != 0 && !tree.procs.get(&p.parent).is_some_and(|q| q.helper)
    })
}

fn zombie_findings(o: &Outcome) -> Vec<String> {
    children(&o.tree)
        .filter_map(|p| match fate(o, p) {
            Fate::Unwaited(why) => Some(why),
            _ => None,
        })
        .collect()
}

fn zombies(spec: &Spec, run: &Run) -> Judgement {
    let o = &run.outcome;
    let tree = &o.tree;
    let unwaited = zombie_findings(o);
    let allowed = spec.reaping.adopted != Rule::Forbid;
    let mut problems = if allowed {
        Vec::new()
    } else {
        unwaited.clone()
    };
    let fates: Vec<(i32, Fate)> = children(tree).map(|p| (p.pid, fate(o, p))).collect();
    let count = |f: &dyn Fn(&Fate) -> bool| fates.iter().filter(|(_, x)| f(x)).count();
    let by_parent = count(&|f| *f == Fate::ReapedByParent);
    let by_kernel = if o.traced {
        count(&|f| *f == Fate::KernelReaped)
    } else {
        0
    };
    match spec.reaping.kernel {
        // Untraced, who reaped a child cannot be told; zombies seen in /proc
        // still fail below.
        Rule::Require if !o.traced && problems.is_empty() => {
            return skip(format!("who reaped each child cannot be told without the trace ({})", o.untraced_reason.as_deref().unwrap_or("untraced")));
        }
        Rule::Require if !o.traced => {}
        Rule::Require => {
            // The rule is about the children of the process that ignored
            // SIGCHLD: a child of another process may be waited for.
            let ignorers: Vec<i32> = children(tree)
                .filter(|p| p.sigchld_ignored)
                .map(|p| p.parent)
                .collect();
            for (pid, f) in &fates {
                let parent = tree.procs.get(pid).map_or(0, |p| p.parent);
                if *f == Fate::ReapedByParent && (ignorers.is_empty() || ignorers.contains(&parent)) {
                    problems.push(format!("child {} was collected by its parent's wait, not reaped by the kernel: SIGCHLD was not ignored", tree.who(*pid)));
                }
            }
            if by_kernel == 0 && problems.is_empty() {
                problems.push("no child was reaped by the kernel (expected: SIGCHLD ignored, children never waited for)".into());
            }
        }
        Rule::Forbid if by_kernel > 0 => problems.push(format!(
            "{by_kernel} child(ren) were reaped by the kernel (SIGCHLD ignored) instead of being waited for"
        )),
        _ => {}
    }
    if !problems.is_empty() {
        return fail(summarise(problems));
    }
    let how = if o.traced {
        "traced"
    } else {
        "sampled from /proc"
    };
    let mut d = format!(
        "{} child process(es): {by_parent} reaped by their parent",
        fates.len()
    );
    if by_kernel > 0 {
        d.push_str(&format!(
            ", {by_kernel} reaped by the kernel (SIGCHLD ignored)"
        ));
    }
    if !unwaited.is_empty() {
        d.push_str(&format!(
            ", {} never waited for by a parent that exited first (allowed here: the exercise teaches adoption)",
            unwaited.len()
        ));
    }
    let runtime = count(&|f| *f == Fate::Runtime);
    if runtime > 0 {
        d.push_str(&format!(
            ", {runtime} started by the language runtime itself (not judged)"
        ));
    }
    pass(format!("{d}; no zombie ({how})"))
}

fn orphans(spec: &Spec, run: &Run) -> Judgement {
    let o = &run.outcome;
    let tree = &o.tree;
    let mut problems = Vec::new();
    let mut adopted = Vec::new();
    // Once the grader has killed the main process at the deadline, whether
    // the rest of the tree dies of the grace period's SIGKILL or of the
    // linger rule's is the scheduler's choice: no orphan is judged then.
    let deadline = main_killed_at_deadline(o);
    for p in tree.procs.values().filter(|p| p.pid != tree.main) {
        if p.orphan && !deadline {
            problems.push(format!(
                "process {} ({}) {}",
                p.pid,
                p.shown(),
                p.killed.as_deref().unwrap_or("killed")
            ));
        } else if !p.launcher
            && p.parent != 0
            && p.killed.is_none()
            && matches!(fate(o, p), Fate::Unwaited(_))
            && children(tree).any(|c| c.pid == p.pid)
        {
            adopted.push(p.pid);
        }
    }
    if !o.left_running.is_empty() {
        problems.push(format!(
            "processes {:?} could not be killed",
            o.left_running
        ));
    }
    if spec.reaping.adopted == Rule::Require && adopted.is_empty() && problems.is_empty() {
        problems.push(
            "every process was waited for by its parent: expected an orphan, left by a parent that exited, adopted and reaped by its adopter"
                .into(),
        );
    }
    if problems.is_empty() && deadline {
        return skip(
            "the main process was killed at the time limit (see `time`): no orphan can be judged",
        );
    }
    if !problems.is_empty() {
        return fail(summarise(problems));
    }
    if adopted.is_empty() {
        pass("no process was left running")
    } else {
        pass(format!(
            "{} child(ren) {adopted:?} left by a parent that exited were adopted by the grader and ended by themselves within {:.1} s (see `zombies`)",
            adopted.len(),
            spec.linger
        ))
    }
}

// ---- leaks and mechanism ----------------------------------------------------------

fn leaks(_spec: &Spec, run: &Run) -> Judgement {
    let o = &run.outcome;
    if o.leaks.is_empty() {
        return pass("no IPC object or file left behind");
    }
    let list: Vec<String> = o
        .leaks
        .iter()
        .map(|l| {
            let removed = if l.removed {
                "removed by the grader"
            } else {
                "COULD NOT BE REMOVED"
            };
            format!(
                "{} {} left behind ({removed})",
                l.object.kind, l.object.name
            )
        })
        .collect();
    fail(summarise(list))
}

fn counter_label(key: &str) -> &str {
    COUNTERS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, d)| d)
}

fn mechanism(spec: &Spec, run: &Run) -> Judgement {
    let m = &spec.mechanism;
    if m.is_empty() {
        return skip("the exercise asks for no mechanism evidence");
    }
    let o = &run.outcome;
    if !o.traced {
        return skip(format!(
            "no system-call trace ({})",
            o.untraced_reason.as_deref().unwrap_or("untraced")
        ));
    }
    if main_killed_at_deadline(o) {
        // How far a killed run got is the scheduler's doing (a slow start
        // leaves only a launcher's forks in the trace): never a pass.
        return fail(format!(
            "the main process was killed at the {:.1} s time limit before it finished: \
             the trace of an unfinished run is not evidence of the mechanism",
            o.time_limit
        ));
    }
    let tree = &o.tree;
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    if !m.parent.is_empty() {
        let short = |p: &ProcRecord| m.parent.iter().filter(|(k, v)| p.count(k) < **v).count();
        let best = tree
            .judged()
            .min_by_key(|p| (short(p), std::cmp::Reverse(p.count("forks"))));
        let shown_counts = |p: &ProcRecord| {
            m.parent
                .keys()
                .map(|k| format!("{k} {}", p.count(k)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match best {
            Some(p) if short(p) == 0 => {
                seen.push(format!("process {} did {}", p.pid, shown_counts(p)))
            }
            Some(p) => {
                let lacking: Vec<String> = m
                    .parent
                    .iter()
                    .filter(|(k, v)| p.count(k) < **v)
                    .map(|(k, v)| {
                        format!(
                            "{} ({}): {} of at least {v}",
                            k,
                            counter_label(k),
                            p.count(k)
                        )
                    })
                    .collect();
                problems.push(format!(
                    "no process did all that is required; the closest, {} ({}), lacks {}",
                    p.pid,
                    p.shown(),
                    lacking.join(", ")
                ));
            }
            None => problems.push("no process of the port was seen".into()),
        }
    }
    for (k, v) in &m.tree {
        let got = tree.total(k);
        if got < *v {
            problems.push(format!(
                "{k} ({}): {got} in the whole port, at least {v} required",
                counter_label(k)
            ));
        } else {
            seen.push(format!("{k} {got}"));
        }
    }
    for (k, v) in &m.max {
        let got = tree.total(k);
        if got > *v {
            let names: Vec<&str> = tree
                .objects
                .values()
                .filter(|o| k.starts_with(&o.kind))
                .map(|o| o.name.as_str())
                .take(3)
                .collect();
            problems.push(format!("{k} ({}): {got}, at most {v} allowed {names:?}: this is not the required mechanism", counter_label(k)));
        }
    }
    if let Some(flow) = &m.flow {
        super::flow::judge(flow, tree, &mut problems, &mut seen);
    }
    let what = if m.description.is_empty() {
        String::new()
    } else {
        format!("{}: ", m.description)
    };
    if problems.is_empty() {
        pass(format!("{what}{}", seen.join("; ")))
    } else {
        fail(format!("{what}{}", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::evidence::ProcRecord;

    fn spec(toml: &str) -> Spec {
        crate::grade::spec::parse("t.toml", &format!("id = \"t\"\nsummary = \"s\"\n{toml}"))
            .unwrap()
    }

    fn proc(pid: i32, parent: i32, exited: f64) -> ProcRecord {
        ProcRecord {
            pid,
            parent,
            exited: Some(exited),
            status: Some(ExitStatus::Exited(0)),
            ..Default::default()
        }
    }

    /// A traced run: main process 10 (exits at 1.0 s) and the given children.
    fn run_with(children: Vec<ProcRecord>, stdout: &str) -> Run {
        let mut tree = Tree {
            main: 10,
            ..Default::default()
        };
        tree.procs.insert(10, proc(10, 0, 1.0));
        for c in children {
            tree.procs.insert(c.pid, c);
        }
        Run {
            index: 0,
            args: vec![],
            outcome: Outcome {
                exit: Some(ExitStatus::Exited(0)),
                main_exited: Some(1.0),
                traced: true,
                time_limit: 10.0,
                tree,
                stdout: crate::grade::supervisor::Captured {
                    text: stdout.into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn an_unwaited_child_is_judged_alike_before_or_after_its_parent_exits() {
        // Ended just before its parent (a zombie the grader collected again
        // as adopter) or just after it (an orphan): the same verdict.
        let mut before = proc(11, 10, 0.99);
        before.readopted = Some(1.0);
        let after = proc(11, 10, 1.01);
        for (rule, want) in [
            ("", Status::Fail),
            ("[reaping]\nadopted = \"forbid\"", Status::Fail),
            ("[reaping]\nadopted = \"allow\"", Status::Pass),
            ("[reaping]\nadopted = \"require\"", Status::Pass),
        ] {
            for c in [before.clone(), after.clone()] {
                let (status, detail) = zombies(&spec(rule), &run_with(vec![c], ""));
                assert_eq!(status, want, "{rule:?}: {detail}");
                if want == Status::Fail {
                    assert!(
                        detail.contains("child 11 was never waited for by its parent 10"),
                        "{detail}"
                    );
                }
            }
        }
        // Its parent ignored SIGCHLD when it forked it: the kernel reaped it.
        let mut ignored = after.clone();
        ignored.sigchld_ignored = true;
        assert_eq!(
            zombies(&spec(""), &run_with(vec![ignored], "")).0,
            Status::Pass
        );
    }

    #[test]
    fn a_helpers_children_are_the_helpers() {
        // 11 is `sh` run by system(); 12 its `ps`, never waited for by the student.
        let mut sh = proc(11, 10, 0.5);
        sh.helper = true;
        sh.reaped_by = Some((10, 0.5));
        let mut ps = proc(12, 11, 0.4);
        ps.helper = true;
        ps.readopted = Some(1.0);
        let (status, detail) = zombies(&spec(""), &run_with(vec![sh, ps], ""));
        assert_eq!(status, Status::Pass, "{detail}");
        assert!(detail.starts_with("1 child process(es)"), "{detail}");
    }

    #[test]
    fn an_untraced_zombie_fails_even_when_kernel_reaping_is_required() {
        let mut z = proc(11, 10, 0.2);
        z.seen_zombie = Some((10, 0.4));
        let mut run = run_with(vec![z], "");
        run.outcome.traced = false;
        let required = spec("[reaping]\nkernel = \"require\"");
        let (status, detail) = zombies(&required, &run);
        assert_eq!(status, Status::Fail, "{detail}");
        assert!(detail.contains("child 11 was never waited for"), "{detail}");
        let mut clean = run_with(vec![proc(11, 10, 0.2)], "");
        clean.outcome.traced = false;
        assert_eq!(zombies(&required, &clean).0, Status::Skip);
    }

    #[test]
    fn kernel_reaping_is_told_apart_from_waiting() {
        let mut waited = proc(11, 10, 0.2);
        waited.reaped_by = Some((10, 0.3));
        let kernel = proc(12, 10, 0.2);
        let run = run_with(vec![waited.clone(), kernel.clone()], "");
        let plain = zombies(&spec(""), &run);
        assert_eq!(plain.0, Status::Pass, "{}", plain.1);
        assert!(plain.1.contains("1 reaped by the kernel"), "{}", plain.1);
        let required = zombies(&spec("[reaping]\nkernel = \"require\""), &run);
        assert_eq!(required.0, Status::Fail);
        assert!(
            required
                .1
                .contains("child 11 was collected by its parent's wait"),
            "{}",
            required.1
        );
        let forbidden = zombies(
            &spec("[reaping]\nkernel = \"forbid\""),
            &run_with(vec![kernel], ""),
        );
        assert_eq!(forbidden.0, Status::Fail);
    }

    #[test]
    fn an_orphan_that_ends_by_itself_is_not_an_orphan_left_running() {
        // Whether it was waited for is `zombies`' question; `orphans` only
        // fails for processes left running, or for no orphan where one is required.
        let late = proc(11, 10, 1.4); // exits after its parent (1.0 s)
        let run = run_with(vec![late], "");
        assert_eq!(orphans(&spec(""), &run).0, Status::Pass);
        assert_eq!(
            orphans(&spec("[reaping]\nadopted = \"require\""), &run).0,
            Status::Pass
        );
        assert_eq!(
            orphans(
                &spec("[reaping]\nadopted = \"require\""),
                &run_with(vec![], "")
            )
            .0,
            Status::Fail
        );
    }

    #[test]
    fn an_orphan_killed_after_linger_fails() {
        let mut stuck = proc(11, 10, 2.6);
        stuck.killed =
            Some("still running 1.50 s after the main process exited; killed by the grader".into());
        stuck.orphan = true;
        let (status, detail) = orphans(&spec(""), &run_with(vec![stuck], ""));
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("process 11"), "{detail}");
    }

    #[test]
    fn output_rules_order_unordered_agree_and_forbid() {
        let s = spec(
            r#"[output]
order = [["^b", "^c"]]
unordered = ["x", "y"]
agree = [["one", "two"]]
forbid = ["secret"]
[[output.match]]
regex = 'one=(?P<one>\d+)'
[[output.match]]
regex = 'two=(?P<two>\d+)'
"#,
        );
        let good = "b\ny\nc\nx\none=5 two=5\n";
        assert_eq!(output(&s, &run_with(vec![], good)).0, Status::Pass);
        for bad in [
            "c\nb\ny\nx\none=5 two=5\n",
            "b\nc\nx\none=5 two=5\n",
            "b\nc\nx\ny\none=5 two=6\n",
            "b\nc\nx\ny\none=5 two=5\nsecret\n",
        ] {
            let (status, detail) = output(&s, &run_with(vec![], bad));
            assert_eq!(status, Status::Fail, "{bad:?} passed: {detail}");
        }
    }

    #[test]
    fn pi_is_compared_with_the_serial_value_for_the_runs_n() {
        let s = spec("[[run]]\nargs = [\"1000\"]\n[output]\npi = true\n");
        let mut run = run_with(vec![], &format!("pi is {}\n", crate::pi::serial(1000)));
        run.args = vec!["1000".into()];
        assert_eq!(output(&s, &run).0, Status::Pass);
        run.outcome.stdout.text = "3.14159262176\n".into();
        let (status, detail) = output(&s, &run);
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("n=1000: printed 3.14159262176"), "{detail}");
    }

    #[test]
    fn mechanism_needs_one_process_to_do_everything_and_skips_untraced() {
        let s =
            spec("[mechanism.parent]\nforks = 2\npipes = 2\n[mechanism.max]\nfile_create = 0\n");
        let mut run = run_with(vec![], "");
        let set = |run: &mut Run, key: &str, n: u32| {
            let main = run.outcome.tree.procs.get_mut(&10).unwrap();
            main.calls.insert(key.into(), n);
        };
        set(&mut run, "forks", 2);
        set(&mut run, "pipes", 1);
        let (status, detail) = mechanism(&s, &run);
        assert_eq!(status, Status::Fail);
        assert!(
            detail.contains("pipes") && detail.contains("1 of at least 2"),
            "{detail}"
        );
        set(&mut run, "pipes", 2);
        assert_eq!(mechanism(&s, &run).0, Status::Pass);
        set(&mut run, "file_create", 1);
        assert_eq!(mechanism(&s, &run).0, Status::Fail);
        run.outcome.traced = false;
        assert_eq!(mechanism(&s, &run).0, Status::Skip);
        assert_eq!(mechanism(&spec(""), &run).0, Status::Skip);
    }

    #[test]
    fn a_run_killed_at_its_deadline_never_passes_mechanism() {
        // A slow start can leave a launcher's forks in the trace: whatever
        // the counters say, an unfinished run is no evidence.
        let s = spec("[mechanism.parent]\nforks = 1\n");
        let mut run = run_with(vec![], "");
        run.outcome
            .tree
            .procs
            .get_mut(&10)
            .unwrap()
            .calls
            .insert("forks".into(), 1);
        assert_eq!(mechanism(&s, &run).0, Status::Pass);
        run.outcome.deadline_kill = Some(1.0);
        run.outcome.main_exited = Some(1.2);
        let (status, detail) = mechanism(&s, &run);
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("killed at the"), "{detail}");
    }

    #[test]
    fn one_failing_run_fails_the_check_and_names_the_run() {
        let s = spec("");
        let ok = run_with(vec![], "");
        let mut bad = run_with(vec![], "");
        bad.args = vec!["1000".into()];
        bad.outcome.exit = Some(ExitStatus::Exited(3));
        let (checks, _) = judge(&s, &[ok, bad]);
        let exit = checks.iter().find(|c| c.name == "exit").unwrap();
        assert_eq!(exit.status, Status::Fail);
        assert!(exit.detail.starts_with("run `1000`: "), "{}", exit.detail);
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "output",
                "exit",
                "time",
                "zombies",
                "orphans",
                "leaks",
                "mechanism"
            ]
        );
        assert_eq!(
            checks[0].status,
            Status::Skip,
            "no output rule: skip, never pass"
        );
    }
}
