//! The grader (`ipckit grade`) on sample student ports, good and broken
//! (fixtures/ports/): each verdict, the name of each failing check, and that
//! the machine is clean afterwards (no process of the port left, no
//! `/dev/shm` entry of the fixtures, no stale control group).
//!
//! Every grade runs through the `ipckit` binary (the supervisor forks, traces
//! and waits for any child: never inside this multi-threaded test binary).
//! Linux only: the clean-up is read from `/proc` and `/sys/fs/cgroup`.

#![cfg(target_os = "linux")]

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A finished `ipckit grade`.
#[derive(Debug)]
struct Graded {
    /// The JSON report (an object, or an array for `--dir`).
    json: Value,
    /// The exit status of `ipckit grade`.
    code: i32,
    /// Its standard error.
    stderr: String,
}

impl Graded {
    fn verdict(&self) -> &str {
        self.json["verdict"].as_str().unwrap_or("?")
    }

    /// The names of the checks with this status.
    fn with_status(&self, status: &str) -> Vec<String> {
        checks_with(&self.json, status)
    }

    fn detail(&self, check: &str) -> String {
        common::check_detail(&self.json, check)
    }

    /// Asserts the verdict, the exit status that goes with it and exactly
    /// which checks failed.
    fn assert_fails(&self, failing: &[&str]) {
        assert_eq!(self.verdict(), "fail", "{:#}", self.json);
        assert_eq!(
            self.code, 1,
            "exit status for a failed grade; {}",
            self.stderr
        );
        let mut want: Vec<String> = failing.iter().map(|s| s.to_string()).collect();
        want.sort();
        let mut got = self.with_status("fail");
        got.sort();
        assert_eq!(got, want, "failing checks: {:#}", self.json);
    }

    fn assert_passes(&self) {
        assert_eq!(self.verdict(), "pass", "{:#}", self.json);
        assert_eq!(self.code, 0, "{}", self.stderr);
        assert!(self.with_status("fail").is_empty());
    }
}

/// Runs a command to its end with a deadline (120 s): past it the command is
/// killed and the test fails, so a grader that hangs cannot hang the suite.
trait Finish {
    fn finish(&mut self) -> std::process::Output;
}

impl Finish for Command {
    fn finish(&mut self) -> std::process::Output {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{self:?} did not finish within 120 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        std::process::Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    }
}

fn checks_with(grade: &Value, status: &str) -> Vec<String> {
    grade["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == status)
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ports")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// Runs `ipckit grade --exercise ID --format json [extra] -- cmd`, then checks
/// that nothing of the port is left on the machine.
fn grade(id: &str, extra: &[&str], cmd: &[&str]) -> Graded {
    grade_by(Command::new(common::ipckit()), id, extra, cmd)
}

/// [`grade`] with a grader command prepared by the caller.
fn grade_by(mut grader: Command, id: &str, extra: &[&str], cmd: &[&str]) -> Graded {
    let out = grader
        .args(["grade", "--exercise", id, "--format", "json"])
        .args(extra)
        .arg("--")
        .args(cmd)
        .finish();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {:?} {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    // A bare name such as `true` would match unrelated processes of other
    // tests running at the same time: every command names a path.
    let marker = cmd
        .iter()
        .rev()
        .find(|a| a.contains('/'))
        .copied()
        .expect("grade() needs a command with a path, to find its processes");
    common::clean::assert_machine_clean(marker);
    Graded {
        json,
        code: out.status.code().unwrap_or(-1),
        stderr,
    }
}

/// A compiled fixture; its directory is removed on drop.
/// Compiles a C fixture (with extra flags) into a directory of its own.
fn compile_c(src: &str, name: &str, flags: &[&str]) -> common::Built {
    let dir = std::env::temp_dir().join(format!("ipckit-grade-test-{}-{name}", std::process::id()));
    common::compile_c(&fixture(src), dir, name, flags)
}

fn py(rel: &str) -> [String; 2] {
    ["python3".to_string(), fixture(rel)]
}

fn grade_py(id: &str, extra: &[&str], rel: &str) -> Graded {
    let cmd = py(rel);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    grade(id, extra, &cmd)
}

// ---- good ports ---------------------------------------------------------------

#[test]
fn every_good_port_in_the_folder_passes_with_dir() {
    let out = Command::new(common::ipckit())
        .args(["grade", "--dir", &fixture("good"), "--format", "json"])
        .finish();
    let grades: Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    let grades = grades.as_array().expect("--dir gives an array");
    let ids: Vec<&str> = grades
        .iter()
        .map(|g| g["exercise"].as_str().unwrap())
        .collect();
    for id in [
        "double-fork",
        "exit-status",
        "fork-basic",
        "fork-ids",
        "fork-isolation",
        "pi-pipe",
        "pi-posix-mq",
        "pi-shm-sem",
        "pi-sysv-mq",
        "sigchld-ignore",
    ] {
        assert!(ids.contains(&id), "{id} not graded: {ids:?}");
    }
    // Two ports of one exercise built on parallel threads must not share
    // an output file.
    for (id, ports) in [
        ("pi-pipe", "pi-pipe.py and pi-pipe.c"),
        ("fork-isolation", "fork-isolation.rs and fork-isolation.c"),
    ] {
        assert_eq!(ids.iter().filter(|i| **i == id).count(), 2, "{ports}");
    }
    for g in grades {
        assert_eq!(g["verdict"], "pass", "{g:#}");
        assert!(checks_with(g, "fail").is_empty());
    }
    assert_eq!(out.status.code(), Some(0));
    common::clean::assert_machine_clean(&fixture("good/"));
    // Compiled ports run from the grader's build folder.
    common::clean::assert_machine_clean(&format!(
        "{}/ipckit-build-",
        std::env::temp_dir().display()
    ));
}

#[test]
fn pi_pipe_adding_sums_in_another_order_passes_within_tolerance() {
    let g = grade_py("pi-pipe", &[], "good/pi-pipe-reversed.py");
    g.assert_passes();
    assert!(
        g.detail("output").contains("within 1e-9"),
        "{}",
        g.detail("output")
    );
}

#[test]
fn fork_ids_printed_pids_are_the_real_ones() {
    let g = grade_py("fork-ids", &[], "good/fork-ids.py");
    g.assert_passes();
    assert!(
        // Judged by meaning (issue 10): the pids each process printed are
        // the real ones, from the trace.
        g.detail("output")
            .contains("the child prints its own pid and its parent's pid: printed by pid"),
        "{}",
        g.detail("output")
    );
}

#[test]
fn sigchld_ignore_children_are_reaped_by_the_kernel() {
    let g = grade_py("sigchld-ignore", &[], "good/sigchld-ignore.py");
    g.assert_passes();
    assert!(
        g.detail("zombies").contains("3 reaped by the kernel"),
        "{}",
        g.detail("zombies")
    );
    // The same port judged as fork-basic: its child was never waited for.
    let g = grade_py("fork-basic", &[], "good/sigchld-ignore.py");
    assert!(g.with_status("fail").contains(&"mechanism".to_string()));
}

#[test]
fn double_fork_grandchild_is_an_allowed_adopted_orphan() {
    let g = grade_py("double-fork", &[], "good/double-fork.py");
    g.assert_passes();
    assert!(
        g.detail("orphans")
            .contains("adopted by the grader and ended by themselves"),
        "{}",
        g.detail("orphans")
    );
    // A port where nothing is orphaned fails double-fork's rule.
    let g = grade_py("double-fork", &[], "good/fork-basic.py");
    assert!(
        g.with_status("fail").contains(&"orphans".to_string()),
        "{:#}",
        g.json
    );
}

// ---- broken ports ---------------------------------------------------------------

#[test]
fn no_wait_leaves_zombies() {
    let g = grade_py("pi-pipe", &[], "broken/pi-pipe-zombie.py");
    g.assert_fails(&["zombies", "mechanism"]);
    assert!(
        g.detail("zombies")
            .contains("was never waited for by its parent"),
        "{}",
        g.detail("zombies")
    );
}

#[test]
fn zombies_are_seen_without_the_trace_too_and_mechanism_is_skipped() {
    let g = grade_py("pi-pipe", &["--no-trace"], "broken/pi-pipe-zombie.py");
    g.assert_fails(&["zombies"]);
    assert!(g.with_status("skip").contains(&"mechanism".to_string()));
    assert!(
        g.detail("mechanism").contains("no system-call trace"),
        "{}",
        g.detail("mechanism")
    );
}

#[test]
fn leaked_posix_queue_is_found_and_removed() {
    let bin = compile_c("good/pi-posix-mq.c", "pi-posix-mq-leak", &["-DLEAK"]);
    let g = grade("pi-posix-mq", &[], &[&bin.exe]);
    g.assert_fails(&["leaks", "mechanism"]);
    assert!(
        g.detail("leaks")
            .contains("POSIX message queue /ipckit_fx_pi_"),
        "{}",
        g.detail("leaks")
    );
    assert!(g.detail("leaks").contains("removed by the grader"));
    assert!(
        g.detail("mechanism").contains("mq_unlink"),
        "{}",
        g.detail("mechanism")
    );
}

#[test]
fn leaked_sysv_queue_is_found_and_removed() {
    let g = grade_py("pi-sysv-mq", &[], "broken/pi-sysv-mq-leak.py");
    g.assert_fails(&["leaks", "mechanism"]);
    assert!(
        g.detail("leaks").contains("System V message queue"),
        "{}",
        g.detail("leaks")
    );
    assert!(
        g.detail("mechanism").contains("msgctl_rmid"),
        "{}",
        g.detail("mechanism")
    );
}

#[test]
fn leaked_shared_memory_and_semaphore_are_found() {
    for (flag, kind) in [
        ("-DLEAK_SHM", "POSIX shared memory"),
        ("-DLEAK_SEM", "POSIX named semaphore"),
    ] {
        let bin = compile_c("good/pi-shm-sem.c", &format!("pi-shm-sem{flag}"), &[flag]);
        let g = grade("pi-shm-sem", &[], &[&bin.exe]);
        g.assert_fails(&["leaks", "mechanism"]);
        assert!(
            g.detail("leaks").contains(kind),
            "{flag}: {}",
            g.detail("leaks")
        );
    }
}

#[test]
fn leaked_files_are_found_and_removed() {
    let g = grade_py("pi-file", &[], "broken/pi-file-leak.py");
    g.assert_fails(&["leaks", "mechanism"]);
    assert!(
        g.detail("leaks").contains("temporary file"),
        "{}",
        g.detail("leaks")
    );
}

#[test]
fn a_term_dropped_per_slice_is_caught_at_small_n() {
    let g = grade_py("pi-pipe", &[], "broken/pi-pipe-drop-term.py");
    g.assert_fails(&["output"]);
    assert!(
        g.detail("output").contains("n=1000: printed"),
        "{}",
        g.detail("output")
    );
}

#[test]
fn pi_computed_without_fork_fails_the_mechanism() {
    let g = grade_py("pi-pipe", &[], "broken/pi-pipe-serial.py");
    g.assert_fails(&["mechanism"]);
    assert!(
        g.detail("mechanism").contains("forks"),
        "{}",
        g.detail("mechanism")
    );
}

#[test]
fn files_instead_of_pipes_is_the_wrong_mechanism() {
    let g = grade_py("pi-pipe", &[], "broken/pi-pipe-files.py");
    g.assert_fails(&["mechanism"]);
    let d = g.detail("mechanism");
    assert!(d.contains("pipes") && d.contains("file_create"), "{d}");
    // The same port is a good pi-file.
    grade_py("pi-file", &[], "broken/pi-pipe-files.py").assert_passes();
}

#[test]
fn a_hang_is_killed_at_the_time_limit() {
    let g = grade_py("pi-pipe", &["--timeout", "1"], "broken/pi-pipe-hang.py");
    assert_eq!(g.verdict(), "fail");
    for check in ["time", "exit", "output"] {
        assert!(
            g.with_status("fail").contains(&check.to_string()),
            "{check}: {:#}",
            g.json
        );
    }
    assert!(
        g.detail("time").contains("1.0 s time limit"),
        "{}",
        g.detail("time")
    );
}

#[test]
fn an_orphan_left_running_is_killed_and_reported() {
    let g = grade_py("fork-basic", &[], "broken/fork-basic-orphan.py");
    assert!(
        g.with_status("fail").contains(&"orphans".to_string()),
        "{:#}",
        g.json
    );
    assert!(
        g.detail("orphans")
            .contains("after the main process exited; killed by the grader"),
        "{}",
        g.detail("orphans")
    );
}

#[test]
fn a_setsid_escapee_is_still_found_and_killed() {
    let g = grade_py("fork-basic", &[], "broken/fork-basic-setsid.py");
    g.assert_fails(&["orphans"]);
}

#[test]
fn a_fork_bomb_is_contained_and_cleaned_up() {
    let bin = compile_c("broken/fork-bomb.c", "fork-bomb", &[]);
    let g = grade("fork-basic", &["--timeout", "0.3"], &[&bin.exe]);
    assert_eq!(g.verdict(), "fail");
    // It reached its cap of 64 within the 0.3 s: the cap was tested.
    let children = common::children_counted(&g.json);
    assert!((60..=65).contains(&children), "{}", g.detail("zombies"));
    assert!(
        g.with_status("fail").contains(&"time".to_string()),
        "{:#}",
        g.json
    );
}

#[test]
fn an_output_flood_is_capped_and_drained() {
    let g = grade_py("fork-basic", &["--timeout", "1"], "broken/flood.py");
    assert!(
        g.with_status("fail").contains(&"time".to_string()),
        "{:#}",
        g.json
    );
    assert!(
        g.detail("output").contains("output truncated"),
        "{}",
        g.detail("output")
    );
    // The report keeps at most `STDOUT_KEPT` bytes of what the port printed
    // (it printed gigabytes of 'x'): count the flood's bytes in the whole report.
    let report = g.json.to_string();
    let flood = report.split(|c| c != 'x').map(str::len).max().unwrap_or(0);
    assert!(
        flood <= ipckit::grade::feedback::STDOUT_KEPT,
        "the report must not carry the flood: a run of {flood} of its bytes"
    );
}

#[test]
fn sigterm_ignored_means_sigkill_after_the_grace() {
    let g = grade_py("fork-basic", &["--timeout", "1"], "broken/ignore-term.py");
    assert!(g.detail("exit").contains("SIGKILL"), "{}", g.detail("exit"));
}

/// A process born after the time limit's `SIGTERM` round gets its own
/// `SIGTERM` (a fork bomb refills its cap as its processes die): it dies of
/// it, not of the grace period's `SIGKILL`, traced or not.
#[test]
fn a_process_forked_after_the_time_limit_s_sigterm_gets_one_too() {
    for untraced in [false, true] {
        let extra: &[&str] = if untraced {
            &["--timeout", "0.5", "--no-trace"]
        } else {
            &["--timeout", "0.5"]
        };
        let g = grade_py("fork-basic", extra, "broken/fork-on-term.py");
        let procs = g.json["runs"][0]["tree"]["procs"].as_object().unwrap();
        let main = g.json["runs"][0]["tree"]["main"].as_i64().unwrap();
        let late: Vec<&Value> = procs
            .values()
            .filter(|p| p["parent"].as_i64() == Some(main))
            .collect();
        assert_eq!(late.len(), 1, "untraced {untraced}: {procs:#?}");
        let killed = late[0]["killed"].as_str().unwrap_or_default();
        assert!(
            killed.contains("after the 0.5 s time limit's SIGTERM"),
            "untraced {untraced}: {killed}"
        );
        assert_eq!(
            late[0]["status"]["Signaled"]["signal"], 15,
            "untraced {untraced}: {:#}",
            late[0]
        );
        assert!(g.detail("exit").contains("SIGKILL"), "{}", g.detail("exit"));
    }
}

#[test]
fn a_port_gets_default_signal_actions_even_from_a_grader_that_ignores_sigint() {
    use std::os::unix::process::CommandExt;
    let mut grader = Command::new(common::ipckit());
    let ignore_sigint = || {
        // SAFETY: SIG_IGN for SIGINT, as a shell does to a job it starts in the
        // background; no handler is installed.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
        Ok(())
    };
    // SAFETY: the closure calls only signal(2), async-signal-safe.
    unsafe { grader.pre_exec(ignore_sigint) };
    let script = fixture("broken/interrupt-self.sh");
    let g = grade_by(grader, "fork-basic", &[], &["/bin/sh", &script]);
    assert!(g.detail("exit").contains("SIGINT"), "{:#}", g.json);
}

#[test]
fn printing_fake_pass_output_changes_nothing() {
    let g = grade_py("pi-pipe", &[], "broken/fake-pass.py");
    g.assert_fails(&["output", "mechanism"]);
}

// ---- the contract: errors, formats, the kit's own programs -------------------------

#[test]
fn grade_errors_exit_2_with_a_reason() {
    let g = grade("no-such-exercise", &[], &["/bin/true"]);
    assert_eq!((g.verdict(), g.code), ("error", 2));
    assert!(
        g.json["error"]
            .as_str()
            .unwrap()
            .contains("no exercise called"),
        "{:#}",
        g.json
    );
    let g = grade("fork-basic", &[], &["/no/such/program"]);
    assert_eq!((g.verdict(), g.code), ("error", 2));
    assert!(
        g.json["error"].as_str().unwrap().contains("not found"),
        "{:#}",
        g.json
    );
    for bad in ["-1", "nan", "inf", "1e300", "0"] {
        let flag = format!("--timeout={bad}");
        let g = grade("fork-basic", &[&flag], &["/bin/true"]);
        assert_eq!((g.verdict(), g.code), ("error", 2), "{flag}");
        let e = g.json["error"].as_str().unwrap();
        assert!(
            e.contains("--timeout") && e.contains("(0, 3600]"),
            "{flag}: {e}"
        );
    }
    let dir = std::env::temp_dir().join(format!("ipckit-grade-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("fork-basic.toml");
    std::fs::write(
        &spec,
        "id = \"fork-basic\"\nsummary = \"s\"\ntime_limit = -1\n",
    )
    .unwrap();
    let g = grade(
        "fork-basic",
        &["--spec", spec.to_str().unwrap()],
        &["/bin/true"],
    );
    assert_eq!(g.code, 2);
    let e = g.json["error"].as_str().unwrap();
    assert!(
        e.contains("fork-basic.toml") && e.contains("time_limit"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dir_with_a_port_that_does_not_build_is_an_error_grade() {
    let dir = std::env::temp_dir().join(format!("ipckit-grade-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pi-pipe.c"),
        "int main(void) { return no_such_thing; }\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a port\n").unwrap();
    let out = Command::new(common::ipckit())
        .args(["grade", "--format", "json", "--dir"])
        .arg(&dir)
        .finish();
    let grades: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(grades.as_array().map(Vec::len), Some(1), "{grades:#}");
    assert_eq!(grades[0]["verdict"], "error");
    assert_eq!(grades[0]["port"], "pi-pipe.c");
    assert!(
        grades[0]["error"]
            .as_str()
            .unwrap()
            .contains("does not build"),
        "{grades:#}"
    );
    // The port scores 0; the class goes on: exit 1 (a port failed), not 2.
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn junit_gradescope_and_out_file() {
    let dir = std::env::temp_dir().join(format!("ipckit-grade-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = fixture("broken/pi-pipe-serial.py");
    for (format, file) in [("junit", "report.xml"), ("gradescope", "results.json")] {
        let out = dir.join(file);
        let status = Command::new(common::ipckit())
            .args([
                "grade",
                "--exercise",
                "pi-pipe",
                "--format",
                format,
                "--out",
            ])
            .arg(&out)
            .args(["--", "python3", &script])
            .finish();
        assert_eq!(status.status.code(), Some(1), "{format}");
        assert!(status.stdout.is_empty(), "--out: nothing on stdout");
        let text = std::fs::read_to_string(&out).unwrap();
        if format == "junit" {
            assert!(
                text.starts_with("<?xml")
                    && text.contains("<testcase classname=\"pi-pipe\" name=\"mechanism\" time=\""),
                "{text}"
            );
        } else {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["tests"].as_array().unwrap().len(), 7);
            assert!(v.get("max_score").is_none(), "not in Gradescope's format");
            assert_eq!(v["score"], 6.0);
        }
    }
    common::clean::assert_machine_clean(&script);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn demo_grades_every_reference_program_and_all_pass() {
    let out = Command::new(common::ipckit()).arg("demo").finish();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let list = Command::new(common::ipckit()).arg("exercises").finish();
    for id in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next())
    {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id));
        let row = row.unwrap_or_else(|| panic!("{id} missing from the demo table:\n{text}"));
        assert!(row.contains("PASS"), "{row}");
    }
    assert!(text.contains("graded: "), "{text}");
}
