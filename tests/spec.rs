//! Spec files as a teacher writes them (docs/specs.md): what `spec::check`
//! accepts and refuses (with the key and the reason), a model of valid specs
//! that round-trips, and the command line: `ipckit spec check`, `ipckit
//! grade --spec` alone or with an agreeing `--exercise`, per-run standard
//! input, environment and exit status end to end, and specs that must be
//! refused quickly (a FIFO, a pi rule with a huge n).
//!
//! Every command runs through the `ipckit` binary with a deadline, on ports
//! copied into a temporary folder of the test's own: the folder's path marks
//! the test's processes, and each CLI test then asserts that none is left,
//! and no work area, control group or `/dev/shm` entry either.

#![cfg(target_os = "linux")]

mod common;

use ipckit::grade::spec;
use proptest::prelude::*;
use rstest::rstest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

// ---- what the library accepts and refuses -----------------------------------

/// A spec with `id = "t"`, a summary and `rest`.
fn spec_text(rest: &str) -> String {
    format!("id = \"t\"\nsummary = \"s\"\n{rest}\n")
}

#[rstest]
#[case::minimal("")]
#[case::stdin_env_exit_per_run(
    "[[run]]\nargs = [\"3\"]\nstdin = \"1 2\\n\"\nenv = { BASE = \"100\" }\nexit = 3"
)]
#[case::exit_bounds("exit = 255\n[[run]]\nexit = 0")]
#[case::number_with_its_own_expect("[[output.number]]\nexpect = 42.0\ntolerance = 0.5")]
#[case::number_with_values_per_run(
    "[[run]]\nexpect = { sum = 6 }\n[[run]]\nexpect = { sum = 7 }\n[[output.number]]\nname = \"sum\""
)]
#[case::integer_values_are_numbers("[[output.number]]\nexpect = 42\ntolerance = 0")]
#[case::number_regex_and_pick("[[output.number]]\nexpect = 1\nregex = 'x=(\\S+)'\npick = \"any\"")]
#[case::pi_at_the_limit("[[run]]\nargs = [\"100000000\"]\n[output]\npi = true")]
fn accepted(#[case] rest: &str) {
    let text = spec_text(rest);
    if let Err(problems) = spec::check("t.toml", &text) {
        panic!("refused:\n{text}\n{problems:#?}");
    }
}

#[rstest]
#[case::exit_300("exit = 300", "exit", "0..=255")]
#[case::exit_minus_one("exit = -1", "exit", "not an exit status")]
#[case::run_exit_256("[[run]]\nexit = 256", "run[0].exit", "0..=255")]
#[case::huge_n(
    "[[run]]\nargs = [\"18446744073709551610\"]\n[output]\npi = true",
    "run[0].args",
    "above the limit of 100000000"
)]
#[case::n_ten_to_the_twelve(
    "[[run]]\nargs = [\"1000000000000\"]\n[output]\npi = true",
    "run[0].args",
    "above the limit"
)]
#[case::pi_runs_together_above_the_limit(
    "[[run]]\nargs = [\"60000000\"]\n[[run]]\nargs = [\"60000000\"]\n[output]\npi = true",
    "run",
    "add up to 120000000"
)]
#[case::pi_without_n("[output]\npi = true", "run[0].args", "needs n")]
#[case::unknown_top_key("time_limt = 3", "time_limt", "did you mean `time_limit`?")]
#[case::unknown_run_key("[[run]]\nstdn = \"x\"", "run[0].stdn", "did you mean `stdin`?")]
#[case::unknown_number_key(
    "[[output.number]]\nexpect = 1\ntolerence = 1",
    "output.number[0].tolerence",
    "did you mean `tolerance`?"
)]
#[case::unknown_key_far_from_any("[reaping]\nwho = 1", "reaping.who", "the keys here are")]
#[case::unknown_counter(
    "[mechanism.tree]\nforkz = 1",
    "mechanism.tree.forkz",
    "did you mean `forks`?"
)]
#[case::wrong_type("time_limit = \"ten\"", "time_limit", "invalid type")]
#[case::unknown_pick(
    "[[output.number]]\nexpect = 1\npick = \"middle\"",
    "output.number[0].pick",
    "unknown variant"
)]
#[case::negative_tolerance(
    "[[output.number]]\nexpect = 1\ntolerance = -1",
    "output.number[0].tolerance",
    "0 or more"
)]
#[case::nan_expect("[[output.number]]\nexpect = nan", "output.number[0].expect", "finite")]
#[case::number_without_any_value(
    "[[output.number]]\nname = \"sum\"",
    "output.number[0].expect",
    "run[0] has no expected value"
)]
#[case::value_for_no_rule(
    "[[run]]\nexpect = { sum = 1 }",
    "run[0].expect.sum",
    "no [[output.number]] rule"
)]
#[case::bad_number_regex(
    "[[output.number]]\nexpect = 1\nregex = '('",
    "output.number[0].regex",
    "bad regex"
)]
#[case::two_rules_one_name(
    "[[output.number]]\nname = \"a\"\nexpect = 1\n[[output.number]]\nname = \"a\"\nexpect = 2",
    "output.number[1].name",
    "two number rules"
)]
#[case::tmpdir_is_the_graders(
    "[[run]]\nenv = { TMPDIR = \"/\" }",
    "run[0].env.TMPDIR",
    "grader sets TMPDIR"
)]
#[case::env_name_with_equals("[[run]]\nenv = { \"A=B\" = \"x\" }", "run[0].env.A=B", "no `=`")]
#[case::nul_in_an_argument("[[run]]\nargs = [\"a\\u0000b\"]", "run[0].args[0]", "NUL")]
#[case::time_limit_zero("time_limit = 0", "time_limit", "(0, 3600]")]
#[case::own_without_a_channel(
    "[mechanism.flow]\nvia = \"shared\"\neach_child = true\nown = true",
    "mechanism.flow.own",
    "applies to channels only"
)]
#[case::reused_on_a_queue(
    "[mechanism.flow]\nvia = \"queue\"\nreused = true",
    "mechanism.flow.reused",
    "not to via = \"queue\""
)]
fn refused(#[case] rest: &str, #[case] key: &str, #[case] words: &str) {
    let text = spec_text(rest);
    let problems = spec::check("t.toml", &text).expect_err("must be refused");
    assert!(
        problems
            .iter()
            .any(|p| p.key == key && p.why.contains(words)),
        "no problem of `{key}` saying {words:?} in {problems:#?}"
    );
}

#[test]
fn every_problem_is_listed_at_once_with_its_key() {
    let text = "id = \"t\"\nsumary = \"s\"\nexit = 300\n[[run]]\nstdn = \"a\"\nexit = -1\n\
                [[output.number]]\nname = \"x\"\ntolerance = -2\n";
    let problems = spec::check("t.toml", text).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "sumary",
        "summary",
        "exit",
        "run[0].stdn",
        "run[0].exit",
        "output.number[0].tolerance",
        "output.number[0].expect",
    ] {
        assert!(keys.contains(&key), "{key} missing from {problems:#?}");
    }
    let e = spec::parse("t.toml", text).unwrap_err().to_string();
    assert!(e.contains(&format!("{} problems", problems.len())), "{e}");
}

#[test]
fn a_runs_exit_wins_over_the_specs() {
    let s = spec::parse("t.toml", &spec_text("exit = 4\n[[run]]\n[[run]]\nexit = 7")).unwrap();
    assert_eq!((s.expected_exit(0), s.expected_exit(1)), (4, 7));
}

#[test]
fn a_stdin_above_the_limit_is_refused() {
    let big = "x".repeat(spec::MAX_STDIN_BYTES + 1);
    let problems =
        spec::check("t.toml", &spec_text(&format!("[[run]]\nstdin = \"{big}\""))).unwrap_err();
    assert!(
        problems.iter().any(|p| p.key == "run[0].stdin"),
        "{problems:#?}"
    );
}

#[test]
fn every_exercise_spec_still_parses_from_its_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/exercises");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let s = spec::load(&e.path()).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        assert!(spec::builtin(&s.id).is_ok());
        n += 1;
    }
    assert_eq!(n, spec::BUILTIN.len());
}

// ---- a model of valid specs round-trips ---------------------------------------

/// What a valid `[[run]]` may hold.
#[derive(Debug, Clone, serde::Serialize)]
struct RunModel {
    args: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdin: Option<String>,
    env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<i32>,
    expect: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<Vec<String>>,
}

/// What a valid `[[output.number]]` may hold.
#[derive(Debug, Clone, serde::Serialize)]
struct NumberModel {
    name: String,
    tolerance: f64,
    pick: String,
}

/// What a valid spec may hold.
#[derive(Debug, Clone, serde::Serialize)]
struct SpecModel {
    id: String,
    summary: String,
    time_limit: f64,
    linger: f64,
    exit: i32,
    run: Vec<RunModel>,
    output: BTreeMap<String, Vec<NumberModel>>,
}

fn run_model(rules: Vec<String>) -> impl Strategy<Value = RunModel> {
    (
        prop::collection::vec("[ -~]{0,12}", 0..3),
        prop::option::of("[ -~\n]{0,40}"),
        prop::collection::btree_map("[A-Z][A-Z0-9_]{0,7}", "[ -~]{0,12}", 0..3),
        prop::option::of(0..=255i32),
        prop::collection::vec(-1e12f64..1e12, rules.len()),
        prop::option::of(prop::collection::vec("[ -~]{0,12}", 0..3)),
    )
        .prop_map(move |(args, stdin, mut env, exit, values, lines)| {
            env.remove("TMPDIR");
            RunModel {
                args,
                stdin,
                env,
                exit,
                expect: rules.iter().cloned().zip(values).collect(),
                lines,
            }
        })
}

fn spec_model() -> impl Strategy<Value = SpecModel> {
    let names = prop::collection::btree_set("[a-z]{1,6}", 0..3)
        .prop_map(|s| s.into_iter().collect::<Vec<String>>());
    names.prop_flat_map(|names| {
        let rules: Vec<_> = names
            .iter()
            .map(|n| {
                (
                    0.0f64..1e6,
                    prop::sample::select(vec!["last", "first", "any"]),
                )
                    .prop_map({
                        let n = n.clone();
                        move |(tolerance, pick)| NumberModel {
                            name: n.clone(),
                            tolerance,
                            pick: pick.into(),
                        }
                    })
            })
            .collect();
        (
            "[a-z][a-z0-9-]{0,10}",
            // A summary is not blank (`spec::check` refuses a blank one).
            "[!-~][ -~]{0,29}",
            1u32..=3600,
            1u32..=600,
            0..=255i32,
            prop::collection::vec(run_model(names.clone()), 1..4),
            rules,
        )
            .prop_map(|(id, summary, t, l, exit, run, number)| SpecModel {
                id,
                summary,
                time_limit: f64::from(t) / 4.0,
                linger: f64::from(l) / 4.0,
                exit,
                run,
                output: BTreeMap::from([("number".to_string(), number)]),
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any spec made of valid keys passes `spec::check` and reads back what
    /// the model wrote: the runs' stdin, env, exit, lines and expected values.
    #[test]
    fn a_spec_built_from_valid_keys_round_trips(model in spec_model()) {
        let text = toml::to_string(&model).unwrap();
        let file = format!("{}.toml", model.id);
        let s = match spec::check(&file, &text) {
            Ok(s) => s,
            Err(p) => return Err(TestCaseError::fail(format!("{p:#?}\n{text}"))),
        };
        prop_assert_eq!(&s.id, &model.id);
        prop_assert_eq!(s.exit, model.exit);
        prop_assert_eq!(s.runs.len(), model.run.len());
        for (i, (got, want)) in s.runs.iter().zip(&model.run).enumerate() {
            prop_assert_eq!(&got.args, &want.args);
            prop_assert_eq!(&got.stdin, &want.stdin);
            prop_assert_eq!(&got.env, &want.env);
            prop_assert_eq!(&got.expect, &want.expect);
            prop_assert_eq!(&got.lines, &want.lines);
            prop_assert_eq!(s.expected_exit(i), want.exit.unwrap_or(model.exit));
        }
        prop_assert_eq!(s.output.number.len(), model.output["number"].len());
    }

    /// Any exit status outside 0..=255, at the top or in a run, is refused
    /// with its key.
    #[test]
    fn an_exit_outside_0_to_255_is_refused(
        code in prop_oneof![i32::MIN..0, 256..=i32::MAX],
        in_run in any::<bool>(),
    ) {
        let (rest, key) = if in_run {
            (format!("[[run]]\nexit = {code}"), "run[0].exit")
        } else {
            (format!("exit = {code}"), "exit")
        };
        let problems = spec::check("t.toml", &spec_text(&rest)).unwrap_err();
        prop_assert!(problems.iter().any(|p| p.key == key), "{:?}", problems);
    }
}

// ---- the command line -----------------------------------------------------------

/// A finished `ipckit` command.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    seconds: f64,
}

impl Ran {
    /// The JSON report of a grade.
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {self:#?}"))
    }

    /// The detail of one check of a JSON report.
    fn detail(&self, check: &str) -> String {
        let json = self.json();
        let found = json["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == check);
        found.map_or(String::new(), |c| c["detail"].as_str().unwrap_or("").into())
    }

    /// The names of the checks of a JSON report with this status.
    fn checks(&self, status: &str) -> Vec<String> {
        let json = self.json();
        let mut names: Vec<String> = json["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] == status)
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .collect();
        names.sort();
        names
    }
}

/// A temporary folder of one test: ports and specs are copied into it, so
/// its path marks this test's processes. Dropping it removes it.
struct Sandbox {
    dir: tempfile::TempDir,
    started: SystemTime,
}

impl Sandbox {
    fn new() -> Sandbox {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("ipckit-spec-test-")
            .tempdir()
            .unwrap();
        // The graders' TMPDIR: their work areas are made here (reachable
        // by a port that runs under another uid).
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        for d in [dir.path(), tmp.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox {
            dir,
            started: SystemTime::now(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn marker(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    /// Copies `fixtures/REL` into the sandbox; returns the copy's path.
    fn copy(&self, rel: &str) -> String {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel);
        let to = self.path(from.file_name().unwrap().to_str().unwrap());
        std::fs::copy(&from, &to).unwrap();
        to.to_string_lossy().into_owned()
    }

    /// Writes a file into the sandbox; returns its path.
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// The `ipckit` binary under a path in the sandbox (a symbolic link), so
    /// that a port run as `ipckit run ID` is marked as this test's.
    fn ipckit(&self) -> String {
        let link = self.path("ipckit");
        if !link.exists() {
            std::os::unix::fs::symlink(common::ipckit(), &link).unwrap();
        }
        link.to_string_lossy().into_owned()
    }

    /// Runs `ipckit ARGS`: past `deadline` it is killed and the test fails,
    /// so a grader that blocks cannot hang the suite. Its output goes to
    /// files in the sandbox.
    fn run(&self, args: &[&str], deadline: Duration) -> Ran {
        let (out, err) = (self.path("stdout"), self.path("stderr"));
        let started = Instant::now();
        let mut child = Command::new(common::ipckit())
            .args(args)
            .env("TMPDIR", self.path("tmp"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ipckit {args:?} did not answer within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&out).unwrap(),
            stderr: std::fs::read_to_string(&err).unwrap(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Nothing of this test is left on the machine: no process whose command
    /// line names the sandbox, no `/dev/shm` entry naming it, no work area
    /// (the graders' TMPDIR is empty), no `pids` control group of a
    /// supervisor that has exited since the test began.
    fn assert_clean(&self) {
        let marker = self.marker();
        let stray: Vec<String> = ipckit::audit::procfs::snapshot()
            .keys()
            .map(|&pid| (pid, ipckit::audit::procfs::cmdline(pid)))
            .filter(|(_, line)| line.contains(&marker))
            .map(|(pid, line)| format!("{pid}: {line}"))
            .collect();
        assert!(stray.is_empty(), "processes left running: {stray:?}");
        let name = self
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let shm: Vec<String> = std::fs::read_dir("/dev/shm")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(&name))
            .collect();
        assert!(shm.is_empty(), "/dev/shm entries left: {shm:?}");
        let areas: Vec<PathBuf> = std::fs::read_dir(self.path("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(areas.is_empty(), "work areas left: {areas:?}");
        for e in common::clean::group_folder_entries() {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = file.strip_prefix("ipckit-grade-") else {
                continue;
            };
            let recent = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= self.started);
            assert!(
                !recent || Path::new(&format!("/proc/{pid}")).exists(),
                "control group {} outlived its supervisor",
                e.path().display()
            );
        }
    }
}

/// Long enough for a loaded machine; short enough that a hang fails.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn spec_check_accepts_every_example_and_exercise_spec() {
    let sb = Sandbox::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<String> = Vec::new();
    for dir in ["specs", "exercises"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            files.push(e.path().to_string_lossy().into_owned());
        }
    }
    assert!(files.len() >= spec::BUILTIN.len() + 5, "{files:?}");
    let mut args = vec!["spec", "check"];
    args.extend(files.iter().map(String::as_str));
    let ran = sb.run(&args, DEADLINE);
    assert_eq!(ran.code, 0, "{ran:#?}");
    assert_eq!(ran.stdout.lines().count(), files.len(), "{ran:#?}");
    assert!(
        ran.stdout.lines().all(|l| l.contains(": valid spec ")),
        "{ran:#?}"
    );
    sb.assert_clean();
}

#[test]
fn every_example_in_the_reference_page_passes_spec_check() {
    let sb = Sandbox::new();
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/specs.md"))
        .unwrap();
    let blocks: Vec<&str> = page
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 8, "docs/specs.md: one example per rule");
    for block in blocks {
        let value: toml::Table = toml::from_str(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        let id = value["id"].as_str().unwrap();
        let file = sb.write(&format!("{id}.toml"), block);
        let ran = sb.run(&["spec", "check", &file], DEADLINE);
        assert_eq!(ran.code, 0, "docs/specs.md example {id}: {ran:#?}");
    }
    sb.assert_clean();
}

#[test]
fn spec_check_lists_every_problem_and_exits_2() {
    let sb = Sandbox::new();
    let file = sb.write(
        "bad.toml",
        "id = \"bad\"\nsummary = \"s\"\nexit = 300\n[[run]]\nstdn = \"a\"\nargs = [\"1000000000000\"]\n\
         [output]\npi = true\n[[output.number]]\nexpect = 1\ntolerance = -1\n",
    );
    let ran = sb.run(&["spec", "check", &file], DEADLINE);
    assert_eq!(ran.code, 2, "{ran:#?}");
    assert!(ran.stdout.is_empty(), "{ran:#?}");
    for words in [
        "4 problem(s)",
        "key `exit`: 300 is not an exit status",
        "key `run[0].stdn`: unknown key; did you mean `stdin`?",
        "key `run[0].args`: n = 1000000000000 is above the limit",
        "key `output.number[0].tolerance`",
    ] {
        assert!(
            ran.stderr.contains(words),
            "{words:?} not in {}",
            ran.stderr
        );
    }
    sb.assert_clean();
}

/// Grades `port` (a command) with `--spec SPEC` and extra arguments, JSON.
fn grade(sb: &Sandbox, extra: &[&str], port: &[&str]) -> Ran {
    let mut args = vec!["grade", "--format", "json"];
    args.extend(extra);
    args.push("--");
    args.extend(port);
    sb.run(&args, DEADLINE)
}

/// Grades `fixtures/REL` (a shell script) with `fixtures/specs/sum-stdin.toml`.
fn grade_sum_stdin(rel: &str) -> (Sandbox, Ran) {
    let sb = Sandbox::new();
    let spec = sb.copy("specs/sum-stdin.toml");
    let port = sb.copy(rel);
    let ran = grade(&sb, &["--spec", &spec], &["sh", &port]);
    (sb, ran)
}

#[test]
fn stdin_env_and_exit_per_run_reach_the_port() {
    let (sb, ran) = grade_sum_stdin("ports/good/sum-stdin.sh");
    assert_eq!(ran.json()["verdict"], "pass", "{ran:#?}");
    assert_eq!(ran.code, 0);
    let output = ran.detail("output");
    for seen in ["sum: printed 6", "sum: printed 130", "sum: printed 0"] {
        assert!(output.contains(seen), "{output}");
    }
    sb.assert_clean();
}

#[test]
fn a_port_deaf_to_env_and_arguments_fails_output_and_exit_in_that_run() {
    let (sb, ran) = grade_sum_stdin("ports/broken/sum-stdin-deaf.sh");
    assert_eq!(ran.json()["verdict"], "fail", "{ran:#?}");
    assert_eq!(ran.code, 1);
    assert_eq!(ran.checks("fail"), ["exit", "output"]);
    let output = ran.detail("output");
    assert!(
        output.contains("run `3`: sum: printed 30 but expected 130"),
        "{output}"
    );
    let exit = ran.detail("exit");
    assert!(
        exit.contains("run `3`: the main process exited with status 0; expected exit status 3"),
        "{exit}"
    );
    sb.assert_clean();
}

/// Each example spec of `fixtures/specs/` and the port it documents.
#[rstest]
#[case::sum_lines("sum-lines", Some("ports/good/sum-stdin.sh"), &[])]
#[case::two_ids("two-ids", None, &["run", "fork-ids"])]
#[case::fork_order("fork-order", None, &["run", "fork-basic"])]
#[case::pi_estimate("pi-estimate", None, &["run", "pi-pipe"])]
fn every_example_spec_passes_the_port_it_documents(
    #[case] id: &str,
    #[case] script: Option<&str>,
    #[case] ipckit_args: &[&str],
) {
    let sb = Sandbox::new();
    let spec = sb.copy(&format!("specs/{id}.toml"));
    let mut port: Vec<String> = match script {
        Some(s) => vec!["sh".into(), sb.copy(s)],
        None => vec![sb.ipckit()],
    };
    port.extend(ipckit_args.iter().map(|s| s.to_string()));
    let port: Vec<&str> = port.iter().map(String::as_str).collect();
    let ran = grade(&sb, &["--spec", &spec], &port);
    assert_eq!(ran.json()["verdict"], "pass", "{ran:#?}");
    assert_eq!(ran.json()["exercise"], id);
    sb.assert_clean();
}

#[test]
fn exercise_and_spec_must_agree() {
    let sb = Sandbox::new();
    let spec = sb.copy("specs/sum-stdin.toml");
    let port = sb.copy("ports/good/sum-stdin.sh");
    let ran = grade(
        &sb,
        &["--exercise", "fork-ids", "--spec", &spec],
        &["sh", &port],
    );
    assert_eq!(ran.code, 2, "{ran:#?}");
    assert_eq!(ran.json()["verdict"], "error");
    assert!(
        ran.stderr
            .contains("--exercise fork-ids does not agree with --spec")
            && ran.stderr.contains("whose id is \"sum-stdin\""),
        "{}",
        ran.stderr
    );
    let agreeing = grade(
        &sb,
        &["--exercise", "sum-stdin", "--spec", &spec],
        &["sh", &port],
    );
    assert_eq!(agreeing.code, 0, "{agreeing:#?}");
    assert_eq!(agreeing.json()["exercise"], "sum-stdin");
    sb.assert_clean();
}

#[test]
fn a_fifo_as_spec_is_refused_without_blocking() {
    let sb = Sandbox::new();
    let fifo = sb.path("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.to_string_lossy().into_owned();
    let port = sb.copy("ports/good/sum-stdin.sh");
    let ran = grade(&sb, &["--spec", &fifo], &["sh", &port]);
    assert_eq!(ran.code, 2, "{ran:#?}");
    assert!(
        ran.stderr.contains("is not a regular file (a FIFO)"),
        "{ran:#?}"
    );
    let checked = sb.run(&["spec", "check", &fifo], DEADLINE);
    assert_eq!(checked.code, 2, "{checked:#?}");
    assert!(checked.stderr.contains("a FIFO"), "{checked:#?}");
    let folder = sb.run(&["spec", "check", &sb.marker()], DEADLINE);
    assert!(
        folder.code == 2 && folder.stderr.contains("a folder"),
        "{folder:#?}"
    );
    sb.assert_clean();
}

#[rstest]
#[case::near_u64_max("18446744073709551610")]
#[case::ten_to_the_twelve("1000000000000")]
fn a_pi_spec_with_a_huge_n_is_refused_at_once(#[case] n: &str) {
    let sb = Sandbox::new();
    let spec = sb.write(
        "huge.toml",
        &format!(
            "id = \"huge\"\nsummary = \"s\"\n[[run]]\nargs = [\"{n}\"]\n[output]\npi = true\n"
        ),
    );
    let ran = grade(&sb, &["--spec", &spec], &[&sb.ipckit(), "run", "pi-pipe"]);
    assert_eq!(ran.code, 2, "{ran:#?}");
    assert!(ran.stderr.contains("above the limit"), "{ran:#?}");
    // Refused before anything ran: far below the time one pi run would take.
    assert!(ran.seconds < 20.0, "took {} s", ran.seconds);
    sb.assert_clean();
}

/// `--dir` grades by file names: a spec with it would be silently ignored,
/// so clap refuses the pair; and with neither `--exercise`, `--spec` nor
/// `--dir` there is nothing to grade.
#[rstest]
#[case::dir_and_spec(&["grade", "--dir", "/nonexistent", "--spec", "x.toml"], "cannot be used with")]
#[case::nothing_to_grade(&["grade", "--", "/bin/true"], "required")]
fn grade_refuses_what_it_cannot_honour(#[case] args: &[&str], #[case] words: &str) {
    let sb = Sandbox::new();
    let ran = sb.run(args, DEADLINE);
    assert_eq!(ran.code, 2, "{ran:#?}");
    assert!(ran.stderr.contains(words), "{ran:#?}");
    sb.assert_clean();
}

#[test]
fn a_runs_own_lines_are_judged_in_that_run_only() {
    let sb = Sandbox::new();
    let spec = sb.write(
        "sum-wrong.toml",
        "id = \"sum-wrong\"\nsummary = \"s\"\n[[run]]\nstdin = \"2 2\"\nlines = [\"the sum is 4\"]\n\
         [[run]]\nlines = [\"the sum is 1\"]\n",
    );
    let port = sb.copy("ports/good/sum-stdin.sh");
    let ran = grade(&sb, &["--spec", &spec], &["sh", &port]);
    assert_eq!(ran.checks("fail"), ["output"], "{ran:#?}");
    let output = ran.detail("output");
    assert_eq!(
        output, "run 2: line 1 should be \"the sum is 1\" but is \"the sum is 0\"",
        "only the second run fails"
    );
    sb.assert_clean();
}
