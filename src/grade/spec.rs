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
//! the problem, and every problem of a spec is listed at once ([`check`];
//! `ipckit spec check FILE`). Unknown keys are refused with the nearest known
//! key as a suggestion.
//!
//! A teacher's own spec (`ipckit grade --spec FILE`, docs/specs.md) uses the
//! same keys, plus, per `[[run]]`: `stdin` (the text on the port's standard
//! input), `env` (environment variables), `exit` (the expected exit status),
//! `lines` (the run's exact output) and `expect` (the expected values of
//! `[[output.number]]` rules, see [`super::numbers`]).
//!
//! Specs are input too: a spec file must be a regular file of at most
//! [`MAX_SPEC_BYTES`] (a FIFO is refused before it is opened, and it is opened
//! with `O_NONBLOCK`); exit statuses are in 0..=255; a `pi` rule's n is at most
//! [`MAX_PI_N`], so that computing the expected value takes well under a
//! second; a run's standard input is at most [`MAX_STDIN_BYTES`]; there are at
//! most [`MAX_RUNS`] runs.

use super::numbers::{self, NumberRule};
use crate::error::{Error, Result};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The largest n a `pi` rule accepts, in one run and in all runs together:
/// the grader computes `pi::serial(n)` itself for every run (about 0.2 s for
/// this many terms in a release build, 1.5 s in a debug build), so a spec
/// cannot make it spin.
pub const MAX_PI_N: u64 = 100_000_000;
/// The largest spec file read, bytes.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
/// The largest `stdin` text of one run, bytes.
pub const MAX_STDIN_BYTES: usize = 1 << 20;
/// The most `[[run]]` tables a spec may have.
pub const MAX_RUNS: usize = 100;

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
    ("binds", "sockets given an address (bind)"),
    ("connects", "sockets connected to an address (connect)"),
    ("accepts", "connections accepted (accept, accept4)"),
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
        "other files created (open with O_CREAT, creat, mknod: a FIFO too)",
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

/// One exercise spec (`fixtures/exercises/ID.toml`). Unknown keys are
/// refused by [`parse`] (every one of them, with a suggestion).
#[derive(Debug, Clone, Deserialize)]
pub struct Spec {
    /// The exercise ID; must match the file name. (Required: a missing `id`
    /// or `summary` is reported by [`check`] with every other problem.)
    #[serde(default)]
    pub id: String,
    /// One line on what the port must do.
    #[serde(default)]
    pub summary: String,
    /// Wall-clock limit of one run, in seconds.
    #[serde(default = "default_time_limit")]
    pub time_limit: f64,
    /// How long adopted orphans may keep running after the main process exits.
    #[serde(default = "default_linger")]
    pub linger: f64,
    /// The exit status the main process must end with (0..=255; a run's own
    /// `exit` overrides it, see [`Spec::expected_exit`]).
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
    /// Points, visibility and tags (`[scoring]`, see [`super::scoring`]).
    #[serde(default)]
    pub scoring: super::scoring::Scoring,
}

impl Spec {
    /// The exit status run `index` (of [`Spec::runs`]) must end with: the
    /// run's own `exit`, else the spec's.
    pub fn expected_exit(&self, index: usize) -> i32 {
        self.runs
            .get(index)
            .and_then(|r| r.exit)
            .unwrap_or(self.exit)
    }
}

/// One run of the port.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunSpec {
    /// The arguments after the port's command (`pi-*`: n first).
    #[serde(default)]
    pub args: Vec<String>,
    /// The text given on the port's standard input (default: none, the
    /// port reads end of file from `/dev/null`).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Environment variables set for this run, on top of the grader's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The exit status this run must end with (default: the spec's `exit`).
    #[serde(default)]
    pub exit: Option<i32>,
    /// The expected value of each named `[[output.number]]` rule in this run.
    #[serde(default)]
    pub expect: BTreeMap<String, f64>,
    /// The whole output of this run must be exactly these lines (instead of
    /// `[output] lines`).
    #[serde(default)]
    pub lines: Option<Vec<String>>,
}

/// How standard output is judged. Lines are compared without trailing
/// whitespace; regexes use the `regex` crate's syntax.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutputSpec {
    /// Numbers the output must hold, each within a tolerance
    /// (`[[output.number]]`, judged by [`super::numbers`]).
    #[serde(default)]
    pub number: Vec<NumberRule>,
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

impl OutputSpec {
    /// True when any output rule is given (per-run `lines` aside): the
    /// `output` check applies, and scores, only then.
    pub fn asks_anything(&self) -> bool {
        self.lines.is_some()
            || !self.matches.is_empty()
            || !self.order.is_empty()
            || !self.unordered.is_empty()
            || !self.forbid.is_empty()
            || !self.number.is_empty()
            || self.pi
            || !self.says.is_empty()
            || !self.before.is_empty()
            || self.duplicates == Rule::Forbid
    }
}

/// Mechanism evidence: counters from [`COUNTERS`].
#[derive(Debug, Clone, Default, Deserialize)]
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
    /// How the data must travel (`grade::flow`).
    #[serde(default)]
    pub flow: Option<FlowSpec>,
}

impl MechanismSpec {
    /// True when the evidence asked for includes what each process kept of
    /// shared memory (`grade::trace`, step 6).
    pub fn needs_shared_memory(&self) -> bool {
        self.flow
            .as_ref()
            .is_some_and(|f| matches!(f.via, Via::Shared | Via::Queue | Via::Server))
    }

    /// True when the spec asks for no evidence at all.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty() && self.tree.is_empty() && self.max.is_empty() && self.flow.is_none()
    }
}

/// `[mechanism.flow]`: the data must cross the port's own channels, as the
/// tracer follows them (`grade::flow` judges it).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FlowSpec {
    /// The kind of channel the data must cross.
    pub via: Via,
    /// Every child of the parent sends data the parent reads.
    #[serde(default)]
    pub each_child: bool,
    /// Each child's channel is its own: made by the parent, written by no
    /// other child.
    #[serde(default)]
    pub own: bool,
    /// Each process closed the end it does not use before it first wrote
    /// (a child) or read (the parent).
    #[serde(default)]
    pub closed: bool,
    /// A pool: work goes to the children and results come back over
    /// channels, and some child reads work again after answering.
    #[serde(default)]
    pub reused: bool,
}

/// The mechanism the data must cross: a kind of channel (`pipe(2)`,
/// `socketpair(2)`, or either), shared memory, a queue, or a server process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A pipe.
    #[default]
    Pipe,
    /// A socket pair.
    Socketpair,
    /// A pipe or a socket pair.
    Channel,
    /// Shared memory the parent gave each child (`mmap(2)` `MAP_SHARED`,
    /// `shm_open(3)`, `shmat(2)`), and no pipe or socket pair.
    Shared,
    /// One queue the children share: a channel several of them write into
    /// (`multiprocessing.Queue`'s pipe), a message queue (`mq_open(3)`,
    /// `msgget(2)`) or a ring in shared memory.
    Queue,
    /// A server process that listens (`bind(2)`, `accept(2)`) and that every
    /// child and the parent `connect(2)` to (a manager owning a list).
    Server,
}

impl Via {
    /// Whether data crossing a channel of `kind` (`pipe`, `socketpair`) counts.
    pub fn admits(self, kind: &str) -> bool {
        match self {
            Via::Pipe => kind == "pipe",
            Via::Socketpair => kind == "socketpair",
            Via::Channel | Via::Queue => true,
            Via::Shared | Via::Server => false,
        }
    }

    /// The words for a report.
    pub fn label(self) -> &'static str {
        match self {
            Via::Pipe => "pipe",
            Via::Socketpair => "socket pair",
            Via::Channel => "pipe or socket pair",
            Via::Shared => "shared memory",
            Via::Queue => "queue",
            Via::Server => "server process",
        }
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
            format!(
                "no exercise called {id:?}; {}`ipckit exercises` and docs/catalogue.md list them",
                super::ports::nearest_exercise(id)
                    .map_or(String::new(), |n| format!("did you mean {n:?}? "))
            ),
        )
    })?;
    parse(&format!("fixtures/exercises/{id}.toml"), text)
}

/// The specs a folder of ports is graded with (`--dir`, `--class`): the
/// built-in ones, or with `--specs DIR` exactly the `*.toml` specs of that
/// folder (a teacher's own, or the copies `ipckit init gradescope` put in its
/// zip). A port is matched to a spec by its file name and the spec's `id`.
#[derive(Debug, Clone)]
pub struct SpecSet {
    specs: Vec<Spec>,
    /// Where the specs come from, for messages.
    origin: String,
}

impl SpecSet {
    /// Every built-in spec, parsed.
    pub fn builtin() -> Result<SpecSet> {
        let specs = BUILTIN
            .iter()
            .map(|(id, _)| builtin(id))
            .collect::<Result<_>>()?;
        Ok(SpecSet {
            specs,
            origin: "the built-in exercises (`ipckit exercises`, docs/catalogue.md)".into(),
        })
    }

    /// Every `*.toml` spec of `dir`, validated (each named after its `id`);
    /// a folder with no spec is refused.
    pub fn from_dir(dir: &Path) -> Result<SpecSet> {
        let read = |e| Error::io(format!("reading {}", dir.display()), e);
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(read)?
            .map(|e| e.map(|e| e.path()).map_err(read))
            .collect::<Result<_>>()?;
        files.retain(|f| f.extension().is_some_and(|x| x == "toml"));
        files.sort();
        // A spec's `id` is its file's name (`parse` checks it): no two agree.
        let specs: Vec<Spec> = files.iter().map(|f| load(f)).collect::<Result<_>>()?;
        if specs.is_empty() {
            return Err(Error::invalid(
                "--specs",
                format!("{} holds no .toml spec", dir.display()),
            ));
        }
        Ok(SpecSet {
            specs,
            origin: format!("the specs in {}", dir.display()),
        })
    }

    /// The spec of exercise `id`, or an error naming the nearest ID.
    pub fn get(&self, id: &str) -> Result<Spec> {
        self.specs
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| {
                let hint = self
                    .nearest(id)
                    .map_or(String::new(), |n| format!("did you mean {n:?}? "));
                Error::invalid(
                    "exercise",
                    format!("no exercise called {id:?} in {}; {hint}", self.origin),
                )
            })
    }

    /// Whether `id` is one of the set's exercises.
    pub fn knows(&self, id: &str) -> bool {
        self.specs.iter().any(|s| s.id == id)
    }

    /// The exercise ID of the set nearest to `name` (Levenshtein distance
    /// at most a third of the name's length), for "did you mean" messages.
    pub fn nearest(&self, name: &str) -> Option<&str> {
        nearest_of(self.specs.iter().map(|s| s.id.as_str()), name)
    }
}

/// The ID of `ids` nearest to `name` (see [`SpecSet::nearest`]).
pub fn nearest_of<'a>(ids: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    ids.map(|id| (strsim::levenshtein(name, id), id))
        .filter(|(d, _)| *d <= (name.len() / 3).max(1))
        .min()
        .map(|(_, id)| id)
}

/// The spec `ipckit grade` grades with: the file given with `--spec`, else
/// the built-in spec of `--exercise`. When both are given they must agree
/// (the file's `id` is the exercise): a mismatch is an error, never a silent
/// choice of one of them.
pub fn resolve(exercise: Option<&str>, file: Option<&Path>) -> Result<Spec> {
    match (exercise, file) {
        (None, None) => Err(Error::invalid(
            "exercise",
            "give --exercise ID (a built-in spec) or --spec FILE (your own)",
        )),
        (Some(id), None) => builtin(id),
        (exercise, Some(path)) => {
            let spec = load(path)?;
            match exercise {
                Some(id) if id != spec.id => Err(Error::invalid(
                    "--exercise",
                    format!(
                        "--exercise {id} does not agree with --spec {}, whose id is {:?}; \
                         give the spec alone, or the exercise it is for",
                        path.display(),
                        spec.id
                    ),
                )),
                _ => Ok(spec),
            }
        }
    }
}

/// Loads and validates a spec file (for `--spec FILE`); see [`read_file`].
pub fn load(path: &Path) -> Result<Spec> {
    let text = read_file(path)?;
    parse(&path.display().to_string(), &text)
}

/// Reads a spec file. It must be a regular file (a FIFO, a device or a
/// folder is refused after stat(2), before open(2), so it can never block)
/// of at most [`MAX_SPEC_BYTES`]. As a belt, the file is opened with
/// `O_NONBLOCK` (open(2)) and checked again on the open descriptor
/// (fstat(2)), in case the path was swapped in between.
pub fn read_file(path: &Path) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display().to_string();
    let regular = |meta: &std::fs::Metadata| -> Result<()> {
        if !meta.is_file() {
            return Err(Error::invalid(
                "spec file",
                format!(
                    "{name} is not a regular file ({}); give a .toml file",
                    kind(meta)
                ),
            ));
        }
        if meta.len() > MAX_SPEC_BYTES {
            return Err(Error::invalid(
                "spec file",
                format!(
                    "{name} has {} bytes; a spec is at most {MAX_SPEC_BYTES}",
                    meta.len()
                ),
            ));
        }
        Ok(())
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("spec {name}"), e))?;
    regular(&meta)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(format!("opening spec {name}"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("spec {name}"), e))?;
    regular(&meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading spec {name}"), e))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid("spec file", format!("{name} is not UTF-8 text")))
}

/// What kind of file a metadata describes, in words.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a plain file"
    }
}

/// One problem of a spec: the key it concerns (`run[1].exit`; empty for the
/// whole file) and what is wrong, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, as in docs/specs.md (`output.number[0].tolerance`).
    pub key: String,
    /// What is wrong.
    pub why: String,
}

impl Problem {
    /// A problem of `key`.
    pub fn new(key: impl Into<String>, why: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            why: why.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.why)
        } else {
            write!(f, "key `{}`: {}", self.key, self.why)
        }
    }
}

/// Parses and validates spec text; `file` names it in errors. The error
/// lists every problem [`check`] found.
pub fn parse(file: &str, text: &str) -> Result<Spec> {
    check(file, text).map_err(|problems| {
        let why = match problems.as_slice() {
            [one] => format!("{file}: {one}"),
            all => {
                let lines: Vec<String> = all.iter().map(|p| format!("\n  {p}")).collect();
                format!("{file}: {} problems:{}", all.len(), lines.concat())
            }
        };
        Error::invalid("exercise spec", why)
    })
}

/// Parses and validates spec text, and returns every problem found: each
/// unknown key (with the nearest known one), a value of the wrong type, and
/// each rule [`parse`] enforces. Nothing is run.
pub fn check(file: &str, text: &str) -> std::result::Result<Spec, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Some(mut spec) = deserialize(text, &mut problems) {
        if spec.runs.is_empty() {
            spec.runs.push(RunSpec::default());
        }
        validate(file, &spec, &mut problems);
        if problems.is_empty() {
            return Ok(spec);
        }
    }
    Err(problems)
}

/// TOML to a [`Spec`]: every key serde ignored is an unknown key (a
/// problem each); a value of the wrong type is a problem with its key path.
fn deserialize(text: &str, problems: &mut Vec<Problem>) -> Option<Spec> {
    let de = match toml::Deserializer::parse(text) {
        Ok(de) => de,
        Err(e) => {
            problems.push(Problem::new("", toml_message(text, &e)));
            return None;
        }
    };
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path| unknown.push(key_path(&path));
    let result: std::result::Result<Spec, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut note));
    problems.extend(unknown.iter().map(|k| Problem::new(k, unknown_key(k))));
    match result {
        Ok(spec) => Some(spec),
        Err(e) => {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            problems.push(Problem::new(key, toml_message(text, e.inner())));
            None
        }
    }
}

/// A TOML error's message with the line it is on.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", e.message().trim_end())
        }
        None => e.message().trim_end().to_string(),
    }
}

/// A key path as docs/specs.md writes it: `run[2].stdin`.
fn key_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        P::Map { parent, key } => match key_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            key_path(parent)
        }
    }
}

/// Why an unknown key is refused: the nearest known key of its table, or
/// the table's keys.
fn unknown_key(path: &str) -> String {
    let (parent, name) = path.rsplit_once('.').unwrap_or(("", path));
    let table: Vec<&str> = parent
        .split('.')
        .map(|seg| seg.split('[').next().unwrap_or(seg))
        .collect();
    let known = known_keys(&table.join("."));
    match nearest(name, known) {
        Some(k) => format!("unknown key; did you mean `{k}`?"),
        None if known.is_empty() => "unknown key (docs/specs.md lists every key)".into(),
        None => format!("unknown key; the keys here are {}", known.join(", ")),
    }
}

/// The keys of one table of a spec (`""` is the top level).
fn known_keys(table: &str) -> &'static [&'static str] {
    match table {
        "" => fields::<Spec>(),
        "run" => fields::<RunSpec>(),
        "output" => fields::<OutputSpec>(),
        "output.match" => fields::<MatchRule>(),
        "output.number" => fields::<NumberRule>(),
        "output.says" => fields::<super::facts::SaysRule>(),
        "output.before" => fields::<super::facts::BeforeRule>(),
        "reaping" => fields::<ReapingSpec>(),
        "mechanism" => fields::<MechanismSpec>(),
        "mechanism.flow" => fields::<FlowSpec>(),
        _ => &[],
    }
}

/// The known name nearest to `name` (Levenshtein distance at most a third
/// of its length, and at least 1), if any.
fn nearest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (strsim::levenshtein(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// The field names serde uses for struct `T` (after `rename`): `T` is handed
/// a deserializer that records the list it asks for and stops there. So the
/// suggestions can never drift from the structs.
fn fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor};
    type Res<V> = std::result::Result<V, serde::de::value::Error>;
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Fields<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Res<V::Value> {
            Err(Self::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Res<V::Value> {
            *self.0 = fields;
            Err(Self::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut found: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut found));
    found
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

/// Checks an expected exit status: 0..=255, what wait(2) can report.
fn check_exit(key: &str, v: i32, problems: &mut Vec<Problem>) {
    if !(0..=255).contains(&v) {
        problems.push(Problem::new(
            key,
            format!("{v} is not an exit status: a process exits with 0..=255"),
        ));
    }
}

fn validate(file: &str, spec: &Spec, problems: &mut Vec<Problem>) {
    let mut bad = |key: &str, why: String| problems.push(Problem::new(key, why));
    if spec.id.trim().is_empty() {
        bad(
            "id",
            "missing or empty: name the exercise (the file's name)".into(),
        );
    } else if let Some(stem) = Path::new(file).file_stem().and_then(|s| s.to_str())
        && file.ends_with(".toml")
        && stem != spec.id
    {
        bad(
            "id",
            format!("{:?} does not match the file name {stem:?}", spec.id),
        );
    }
    if spec.summary.trim().is_empty() {
        bad(
            "summary",
            "missing or empty: say in one line what the port must do".into(),
        );
    }
    for (key, v) in [("time_limit", spec.time_limit), ("linger", spec.linger)] {
        if let Err(why) = check_seconds(v) {
            bad(key, why);
        }
    }
    if spec.runs.len() > MAX_RUNS {
        bad(
            "run",
            format!("{} runs; a spec has at most {MAX_RUNS}", spec.runs.len()),
        );
    }
    check_exit("exit", spec.exit, problems);
    for (i, run) in spec.runs.iter().enumerate() {
        validate_run(i, run, problems);
    }
    validate_output(spec, problems);
    validate_mechanism(&spec.mechanism, problems);
    numbers::validate(spec, problems);
}

/// One run's arguments, standard input, environment and exit status.
fn validate_run(i: usize, run: &RunSpec, problems: &mut Vec<Problem>) {
    let mut bad = |key: String, why: &str| problems.push(Problem::new(key, why));
    for (j, a) in run.args.iter().enumerate() {
        if a.contains('\0') {
            bad(
                format!("run[{i}].args[{j}]"),
                "an argument cannot hold a NUL byte",
            );
        }
    }
    if run
        .stdin
        .as_ref()
        .is_some_and(|s| s.len() > MAX_STDIN_BYTES)
    {
        bad(
            format!("run[{i}].stdin"),
            &format!("longer than {MAX_STDIN_BYTES} bytes"),
        );
    }
    for (k, v) in &run.env {
        let key = format!("run[{i}].env.{k}");
        if k.is_empty() || k.contains(['=', '\0']) {
            bad(
                key,
                "a variable's name is not empty and holds no `=` or NUL",
            );
        } else if k == "TMPDIR" {
            bad(
                key,
                "the grader sets TMPDIR to the run's own temporary folder",
            );
        } else if v.contains('\0') {
            bad(key, "a variable's value cannot hold a NUL byte");
        }
    }
    if let Some(code) = run.exit {
        check_exit(&format!("run[{i}].exit"), code, problems);
    }
}

/// The output rules' regexes, counts, captures and pi's n.
fn validate_output(spec: &Spec, problems: &mut Vec<Problem>) {
    let mut bad = |key: &str, why: String| problems.push(Problem::new(key, why));
    let out = &spec.output;
    let regexes = out
        .matches
        .iter()
        .map(|m| &m.regex)
        .chain(out.order.iter().flatten())
        .chain(&out.forbid);
    let mut names = Vec::new();
    for r in regexes {
        match Regex::new(r) {
            Ok(re) => names.extend(re.capture_names().flatten().map(str::to_string)),
            Err(e) => bad("output", format!("bad regex {r:?}: {e}")),
        }
    }
    for m in &out.matches {
        if m.count.is_some() && m.min.is_some() {
            bad(
                "output.match",
                format!("{:?}: give count or min, not both", m.regex),
            );
        }
    }
    if let Err((key, why)) = super::facts::validate(&out.says, &out.before) {
        bad(&key, why);
    }
    if out.agree.iter().any(Vec::is_empty) {
        bad(
            "output.agree",
            "a group is empty: name at least one capture in each group".into(),
        );
    }
    for name in out.agree.iter().flatten().chain(&out.pids) {
        if !names.contains(name) {
            bad(
                "output.agree/pids",
                format!("no [[output.match]] regex has a capture named {name:?}"),
            );
        }
    }
    if out.pi {
        validate_pi(spec, problems);
    }
}

/// Every run of a `pi` rule gives n, at most [`MAX_PI_N`], and all runs
/// together at most [`MAX_PI_N`] terms.
fn validate_pi(spec: &Spec, problems: &mut Vec<Problem>) {
    let mut bad = |key: &str, why: String| problems.push(Problem::new(key, why));
    let mut total: u64 = 0;
    for (i, run) in spec.runs.iter().enumerate() {
        let n = run
            .args
            .first()
            .map(|a| crate::pi::parse_n(std::slice::from_ref(a)));
        let key = format!("run[{i}].args");
        match n {
            Some(Ok(n)) if n > MAX_PI_N => bad(
                &key,
                format!(
                    "n = {n} is above the limit of {MAX_PI_N} terms for output.pi \
                     (the grader computes pi from n terms itself)"
                ),
            ),
            Some(Ok(n)) => total = total.saturating_add(n),
            _ => bad(
                &key,
                "output.pi needs n (a positive multiple of 10) as the first argument of every run"
                    .into(),
            ),
        }
    }
    if total > MAX_PI_N {
        bad(
            "run",
            format!(
                "the runs' n add up to {total}, above the limit of {MAX_PI_N} terms \
                 for output.pi in all runs together"
            ),
        );
    }
}

/// Every counter a `[mechanism]` table names is one of [`COUNTERS`].
fn validate_mechanism(m: &MechanismSpec, problems: &mut Vec<Problem>) {
    if let Some(f) = m.flow.as_ref() {
        let via = match f.via {
            Via::Shared => "shared",
            Via::Queue => "queue",
            Via::Server => "server",
            Via::Pipe | Via::Socketpair | Via::Channel => "",
        };
        for (key, on) in [("own", f.own), ("closed", f.closed), ("reused", f.reused)] {
            if on && !via.is_empty() {
                problems.push(Problem::new(
                    format!("mechanism.flow.{key}"),
                    format!(
                        "applies to channels only (via = \"pipe\", \"socketpair\" or \"channel\"), not to via = \"{via}\""
                    ),
                ));
            }
        }
    }
    let known: Vec<&'static str> = COUNTERS.iter().map(|(c, _)| *c).collect();
    for (table, map) in [("parent", &m.parent), ("tree", &m.tree), ("max", &m.max)] {
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            let hint =
                nearest(key, &known).map_or(String::new(), |k| format!("did you mean `{k}`? "));
            problems.push(Problem::new(
                format!("mechanism.{table}.{key}"),
                format!("unknown counter; {hint}known: {}", known.join(", ")),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_specs_is_exactly_its_exercises() {
        let dir = tempfile::tempdir().unwrap();
        let pi = BUILTIN.iter().find(|(i, _)| *i == "pi-pipe").unwrap().1;
        let err = |set: Result<SpecSet>| set.unwrap_err().to_string();
        assert!(err(SpecSet::from_dir(dir.path())).contains("no .toml spec"));
        std::fs::write(dir.path().join("pi-pipe.toml"), pi).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a spec").unwrap();
        let set = SpecSet::from_dir(dir.path()).unwrap();
        assert!(set.knows("pi-pipe") && !set.knows("fork-basic"));
        assert_eq!(set.get("pi-pipe").unwrap().id, "pi-pipe");
        let unknown = set.get("pi-pip").unwrap_err().to_string();
        assert!(unknown.contains("did you mean \"pi-pipe\""), "{unknown}");
        std::fs::write(dir.path().join("again.toml"), pi).unwrap();
        let misnamed = err(SpecSet::from_dir(dir.path()));
        assert!(
            misnamed.contains("does not match the file name"),
            "{misnamed}"
        );
    }

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
    fn known_keys_come_from_the_structs_themselves() {
        assert!(fields::<Spec>().contains(&"run") && fields::<Spec>().contains(&"exit"));
        assert!(fields::<RunSpec>().contains(&"stdin"));
        assert!(fields::<OutputSpec>().contains(&"match"));
        assert_eq!(
            nearest("tolerence", fields::<NumberRule>()),
            Some("tolerance")
        );
        assert_eq!(nearest("zzz", fields::<RunSpec>()), None);
    }

    #[test]
    fn resolve_needs_a_spec_or_an_exercise() {
        let e = resolve(None, None).unwrap_err().to_string();
        assert!(
            e.contains("--exercise ID") && e.contains("--spec FILE"),
            "{e}"
        );
        assert_eq!(resolve(Some("fork-ids"), None).unwrap().id, "fork-ids");
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
