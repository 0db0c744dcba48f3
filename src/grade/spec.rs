//! Exercise specs: how the grader judges a port of one exercise.
//!
//! Each catalogue exercise has one TOML file in `fixtures/exercises/ID.toml`
//! (built into the binary, see [`builtin`]). A spec says:
//! 1. how to run the port: `[[run]]` tables with the arguments of each run
//!    (every `pi-*` port runs for several n), a `time_limit` per run and the
//!    `linger` adopted orphans are allowed after the port's main process exits;
//! 2. how to judge its standard output (`[output]`): exact `lines`, regexes
//!    that must match (`[[output.match]]`, with named captures), the `order` in
//!    which lines must appear, `unordered` line sets, captures that must
//!    `agree`, captures that must be `pids` of the run's processes, `forbid`den
//!    lines, and `pi` (the last number printed must equal
//!    [`crate::pi::serial`] of the run's n within [`crate::pi::TOLERANCE`]);
//! 3. the exit status of the main process (`exit`, default 0);
//! 4. the reaping rules (`[reaping]`): whether children may, must or must not
//!    be reaped by the kernel (`SIGCHLD` ignored) and whether adopted orphans
//!    that end by themselves are allowed;
//! 5. the mechanism evidence (`[mechanism]`): what one process of the port
//!    (`[mechanism.parent]`) and the port as a whole (`[mechanism.tree]`) must
//!    at least have done, and what the tree may do at most (`[mechanism.max]`).
//!
//! Specs are validated when loaded: every error names the file, the key and
//! the problem.

use crate::error::{Error, Result};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Every evidence counter a `[mechanism]` table may name, with what it counts.
pub const COUNTERS: &[(&str, &str)] = &[
    (
        "forks",
        "child processes created (fork, vfork, clone without CLONE_THREAD)",
    ),
    ("reaps", "children collected by a wait call (wait4, waitid)"),
    ("threads", "threads created (clone with CLONE_THREAD)"),
    (
        "workers",
        "processes or threads created (forks + threads: CSP processes may be either)",
    ),
    ("pipes", "pipes created (pipe, pipe2)"),
    (
        "channels",
        "pipes and socket pairs created (pipe, pipe2, socketpair)",
    ),
    ("socketpairs", "socket pairs created (socketpair)"),
    ("mq_open", "POSIX message queues opened (mq_open)"),
    ("mq_unlink", "POSIX message queues unlinked (mq_unlink)"),
    ("msgget", "System V message queues got (msgget)"),
    (
        "msgctl_rmid",
        "System V message queues removed (msgctl IPC_RMID)",
    ),
    ("shmget", "System V shared memory segments got (shmget)"),
    ("shmctl_rmid", "System V segments removed (shmctl IPC_RMID)"),
    ("semget", "System V semaphore sets got (semget)"),
    (
        "semctl_rmid",
        "System V semaphore sets removed (semctl IPC_RMID)",
    ),
    (
        "shm_create",
        "POSIX shared memory objects created (open of /dev/shm/NAME with O_CREAT)",
    ),
    (
        "shm_unlink",
        "POSIX shared memory objects unlinked (unlink of /dev/shm/NAME)",
    ),
    (
        "sem_create",
        "POSIX named semaphores created (/dev/shm/sem.NAME created or linked)",
    ),
    (
        "sem_unlink",
        "POSIX named semaphores unlinked (unlink of /dev/shm/sem.NAME)",
    ),
    (
        "file_create",
        "other files created (open with O_CREAT, creat)",
    ),
    ("file_unlink", "other files unlinked (unlink, unlinkat)"),
    (
        "file_roundtrip",
        "files both created and unlinked by the port",
    ),
    (
        "shm_roundtrip",
        "POSIX shared memory objects both created and unlinked",
    ),
    (
        "sem_roundtrip",
        "POSIX named semaphores both created and unlinked",
    ),
    (
        "mq_roundtrip",
        "POSIX message queues both created and unlinked",
    ),
];

/// One exercise spec (`fixtures/exercises/ID.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The exercise ID; must match the file name.
    pub id: String,
    /// One line on what the port must do.
    pub summary: String,
    /// Wall-clock limit of one run, in seconds.
    #[serde(default = "default_time_limit")]
    pub time_limit: f64,
    /// How long adopted orphans may keep running after the main process exits.
    #[serde(default = "default_linger")]
    pub linger: f64,
    /// The exit status the main process must end with.
    #[serde(default)]
    pub exit: i32,
    /// The runs (default: one run without arguments).
    #[serde(default, rename = "run")]
    pub runs: Vec<RunSpec>,
    /// How the output is judged.
    #[serde(default)]
    pub output: OutputSpec,
    /// Reaping rules.
    #[serde(default)]
    pub reaping: ReapingSpec,
    /// Mechanism evidence.
    #[serde(default)]
    pub mechanism: MechanismSpec,
}

/// One run of the port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The arguments after the port's command (`pi-*`: n first).
    #[serde(default)]
    pub args: Vec<String>,
}

/// How standard output is judged. Lines are compared without trailing
/// whitespace; regexes use the `regex` crate's syntax.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The whole output must be exactly these lines, in this order.
    pub lines: Option<Vec<String>>,
    /// Regexes that lines must match.
    #[serde(default, rename = "match")]
    pub matches: Vec<MatchRule>,
    /// Chains of regexes: in each chain, the first line matching each regex
    /// must appear in this order.
    #[serde(default)]
    pub order: Vec<Vec<String>>,
    /// These lines must each appear once, in any order.
    #[serde(default)]
    pub unordered: Vec<String>,
    /// Groups of named captures that must all have the same value.
    #[serde(default)]
    pub agree: Vec<Vec<String>>,
    /// Named captures whose value must be the pid of a process of the run.
    #[serde(default)]
    pub pids: Vec<String>,
    /// No line may match any of these regexes.
    #[serde(default)]
    pub forbid: Vec<String>,
    /// The last number printed must be pi computed from the run's n.
    #[serde(default)]
    pub pi: bool,
    /// Rules about meaning: which process prints which facts and numbers
    /// ([`super::facts`]).
    #[serde(default)]
    pub says: Vec<super::facts::SaysRule>,
    /// Rules about order: every line of one role before any of another.
    #[serde(default)]
    pub before: Vec<super::facts::BeforeRule>,
    /// Lines a child printed again from its parent's copied stdio buffer:
    /// `forbid` fails the output, otherwise they are a note.
    #[serde(default)]
    pub duplicates: Rule,
}

/// A regex some lines must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRule {
    /// The regex (named groups become captures).
    pub regex: String,
    /// Exactly this many lines must match.
    pub count: Option<usize>,
    /// At least this many lines must match (default 1 when `count` is unset).
    pub min: Option<usize>,
}

/// Who may reap children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Allowed, not required.
    #[default]
    Allow,
    /// Required.
    Require,
    /// Not allowed.
    Forbid,
}

/// Reaping rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReapingSpec {
    /// Children reaped by the kernel because their parent ignored `SIGCHLD`.
    #[serde(default)]
    pub kernel: Rule,
    /// Children their parent never waited for before it exited (adopted by
    /// the grader), whether they ended just before or just after it: the
    /// default forbids them (every child must be waited for); `allow`;
    /// `require` (double-fork's orphan).
    #[serde(default = "forbid")]
    pub adopted: Rule,
}

/// Mechanism evidence: counters from [`COUNTERS`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MechanismSpec {
    /// What the rule checks, in words, for the report.
    #[serde(default)]
    pub description: String,
    /// Minimums one single process of the port must reach (the parent).
    #[serde(default)]
    pub parent: BTreeMap<String, u32>,
    /// Minimums the whole port (every process) must reach.
    #[serde(default)]
    pub tree: BTreeMap<String, u32>,
    /// Maximums for the whole port.
    #[serde(default)]
    pub max: BTreeMap<String, u32>,
}

impl MechanismSpec {
    /// True when the spec asks for no evidence at all.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty() && self.tree.is_empty() && self.max.is_empty()
    }
}

impl Default for ReapingSpec {
    fn default() -> Self {
        ReapingSpec {
            kernel: Rule::Allow,
            adopted: forbid(),
        }
    }
}

fn forbid() -> Rule {
    Rule::Forbid
}

fn default_time_limit() -> f64 {
    10.0
}

fn default_linger() -> f64 {
    1.5
}

macro_rules! spec {
    ($id:literal) => {
        (
            $id,
            include_str!(concat!("../../fixtures/exercises/", $id, ".toml")),
        )
    };
}
/// Every exercise spec shipped with the kit, as `(ID, TOML text)`.
pub const BUILTIN: &[(&str, &str)] = &[
    spec!("fork-basic"),
    spec!("fork-isolation"),
    spec!("fork-ids"),
    spec!("exit-status"),
    spec!("exit-flush"),
    spec!("zombie"),
    spec!("double-fork"),
    spec!("sigchld-ignore"),
    spec!("process-join"),
    spec!("daemon-child"),
    spec!("pool-async"),
    spec!("pipe-hello"),
    spec!("pipe-duplex"),
    spec!("pi-file"),
    spec!("pi-pipe"),
    spec!("pi-socketpair"),
    spec!("queue-hello"),
    spec!("queue-bounded"),
    spec!("producer-consumer"),
    spec!("pi-posix-mq"),
    spec!("pi-sysv-mq"),
    spec!("value-array"),
    spec!("array-bytes"),
    spec!("value-counter"),
    spec!("semaphore"),
    spec!("pi-shm-sem"),
    spec!("manager-list"),
    spec!("manager-namespace"),
    spec!("csp-parallel"),
    spec!("pi-queue"),
    spec!("pi-pool"),
    spec!("pi-value"),
    spec!("pi-manager"),
];

/// The built-in spec of an exercise, parsed and validated.
pub fn builtin(id: &str) -> Result<Spec> {
    let (_, text) = BUILTIN.iter().find(|(i, _)| *i == id).ok_or_else(|| {
        Error::invalid(
            "exercise",
            format!("no exercise called {id:?}; `ipckit exercises` and CATALOGUE.md list them"),
        )
    })?;
    parse(&format!("fixtures/exercises/{id}.toml"), text)
}

/// Loads and validates a spec file (for `--spec FILE`).
pub fn load(path: &Path) -> Result<Spec> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading spec {}", path.display()), e))?;
    parse(&path.display().to_string(), &text)
}

/// Parses and validates spec text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Spec> {
    let mut spec: Spec = toml::from_str(text).map_err(|e| {
        Error::invalid(
            "exercise spec",
            format!("{file}: {}", e.to_string().trim_end()),
        )
    })?;
    if spec.runs.is_empty() {
        spec.runs.push(RunSpec::default());
    }
    validate(file, &spec)?;
    Ok(spec)
}

/// Checks a duration in seconds (a spec's `time_limit` or `linger`, or the
/// `--timeout` override): it must be a number in (0, 3600]. The error is a
/// sentence to show after the key's name.
pub fn check_seconds(v: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(())
    } else {
        Err(format!("{v} must be a number of seconds in (0, 3600]"))
    }
}

fn validate(file: &str, spec: &Spec) -> Result<()> {
    let bad = |key: &str, why: String| {
        Error::invalid("exercise spec", format!("{file}: key `{key}`: {why}"))
    };
    if let Some(stem) = Path::new(file).file_stem().and_then(|s| s.to_str())
        && file.ends_with(".toml")
        && stem != spec.id
    {
        return Err(bad(
            "id",
            format!("{:?} does not match the file name {stem:?}", spec.id),
        ));
    }
    for (key, v) in [("time_limit", spec.time_limit), ("linger", spec.linger)] {
        check_seconds(v).map_err(|why| bad(key, why))?;
    }
    let out = &spec.output;
    let regexes = out
        .matches
        .iter()
        .map(|m| &m.regex)
        .chain(out.order.iter().flatten())
        .chain(&out.forbid);
    let mut names = Vec::new();
    for r in regexes {
        let re = Regex::new(r).map_err(|e| bad("output", format!("bad regex {r:?}: {e}")))?;
        names.extend(re.capture_names().flatten().map(str::to_string));
    }
    for m in &out.matches {
        if m.count.is_some() && m.min.is_some() {
            return Err(bad(
                "output.match",
                format!("{:?}: give count or min, not both", m.regex),
            ));
        }
    }
    super::facts::validate(&out.says, &out.before)
        .map_err(|(key, why): (String, String)| bad(&key, why))?;
    if out.agree.iter().any(Vec::is_empty) {
        return Err(bad(
            "output.agree",
            "a group is empty: name at least one capture in each group".into(),
        ));
    }
    for name in out.agree.iter().flatten().chain(&out.pids) {
        if !names.contains(name) {
            return Err(bad(
                "output.agree/pids",
                format!("no [[output.match]] regex has a capture named {name:?}"),
            ));
        }
    }
    if out.pi {
        for (i, run) in spec.runs.iter().enumerate() {
            let n = run
                .args
                .first()
                .map(|a| crate::pi::parse_n(std::slice::from_ref(a)));
            if !matches!(n, Some(Ok(_))) {
                return Err(bad(
                    &format!("run[{i}].args"),
                    "output.pi needs n (a positive multiple of 10) as the first argument of every run".into(),
                ));
            }
        }
    }
    let m = &spec.mechanism;
    for (table, map) in [("parent", &m.parent), ("tree", &m.tree), ("max", &m.max)] {
        for key in map.keys() {
            if !COUNTERS.iter().any(|(c, _)| c == key) {
                let known: Vec<&str> = COUNTERS.iter().map(|(c, _)| *c).collect();
                return Err(bad(
                    &format!("mechanism.{table}.{key}"),
                    format!("unknown counter; known: {}", known.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_spec_parses_and_names_its_file() {
        for (id, _) in BUILTIN {
            let spec = builtin(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(spec.id, *id);
            assert!(!spec.runs.is_empty());
        }
    }

    #[test]
    fn every_catalogue_id_has_a_spec_and_every_program_too() {
        for p in crate::programs::all() {
            assert!(
                BUILTIN.iter().any(|(id, _)| *id == p.id),
                "no spec for {}",
                p.id
            );
        }
        assert_eq!(BUILTIN.len(), 33);
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let e = parse(
            "x/pi-pipe.toml",
            "id = \"pi-pipe\"\nsummary = \"s\"\n[output]\npi = true\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x/pi-pipe.toml") && e.contains("run[0].args"),
            "{e}"
        );
        let e = parse(
            "a.toml",
            "id = \"a\"\nsummary = \"s\"\n[mechanism.tree]\nforkz = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mechanism.tree.forkz") && e.contains("unknown counter"),
            "{e}"
        );
        let e = parse(
            "a.toml",
            "id = \"a\"\nsummary = \"s\"\n[[output.match]]\nregex = \"(\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad regex"), "{e}");
        let e = parse("a.toml", "id = \"b\"\nsummary = \"s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `id`"), "{e}");
        let e = parse("a.toml", "id = \"a\"\nsumary = \"s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.toml") && e.contains("sumary"), "{e}");
        let e = parse(
            "a.toml",
            "id = \"a\"\nsummary = \"s\"\n[output]\nagree = [[\"x\", \"y\"]]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("capture named \"x\""), "{e}");
    }

    #[test]
    fn an_empty_agree_group_is_refused() {
        let e = parse(
            "a.toml",
            "id = \"a\"\nsummary = \"s\"\n[output]\nagree = [[]]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("output.agree") && e.contains("empty"), "{e}");
    }
}
