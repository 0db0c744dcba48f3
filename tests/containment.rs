//! Containment: the grader run as teachers run it, on sample ports and on
//! hostile ones (fixtures/ports/hostile/), in every environment this machine
//! can simulate:
//! - `root`: as is;
//! - `user`: an unprivileged user (`setpriv --reuid=65534`): private user,
//!   PID, IPC and mount namespaces (unprivileged user namespaces are allowed
//!   here), `RLIMIT_NPROC` instead of a control group; with `--no-isolate`
//!   (no namespace, no control group, no uid drop) the grader refuses;
//! - `no-sys-admin`: root without `CAP_SYS_ADMIN` (`setpriv
//!   --bounding-set=-sys_admin`), as in a default Docker container;
//! - `no-trace`: root with tracing off (`--no-trace`), as where `ptrace` is
//!   refused.
//!
//! In each, every verdict is right or `incomplete` with the reason, never a
//! false `pass`, and the machine is left clean: no process of the port, no
//! work area, no control group. The simulations need root: without it each
//! test prints why it skipped.

#![cfg(target_os = "linux")]

mod common;

use common::Built;
use ipckit::audit::procfs;
use rstest::rstest;
use serde_json::Value;
use serial_test::{parallel, serial};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the grader runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Env {
    Root,
    User,
    NoSysAdmin,
    NoTrace,
    /// Root, with every cgroup mount read-only (a default Docker container):
    /// no control group can be made, so the pids cap is `RLIMIT_NPROC` on
    /// the fresh uid and the PID namespace holds the rest.
    ReadOnlyCgroups,
}

/// Remounts every cgroup file system read-only in a private mount namespace
/// (`unshare --mount`), then runs the grader given as arguments.
const READ_ONLY_CGROUPS: &str = r#"for m in $(awk '$3 ~ /^cgroup/ {print $2}' /proc/mounts); do mount -o remount,bind,ro "$m" || exit 97; done; exec "$0" "$@""#;

impl Env {
    /// The grader command in this environment, or why it cannot be made here.
    fn grader(self) -> Result<Command, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("simulating the environments needs root".into());
        }
        if self != Env::Root
            && self != Env::NoTrace
            && Command::new("setpriv").arg("--help").output().is_err()
        {
            return Err("setpriv (util-linux) is not installed".into());
        }
        if self == Env::ReadOnlyCgroups
            && !Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(READ_ONLY_CGROUPS)
                .arg("true")
                .status()
                .is_ok_and(|s| s.success())
        {
            return Err("cannot remount the cgroup file systems read-only in a mount namespace (unshare --mount)".into());
        }
        let mut c = match self {
            Env::Root | Env::NoTrace => Command::new(common::ipckit()),
            Env::User => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
                c.arg(common::ipckit());
                c
            }
            Env::NoSysAdmin => {
                let mut c = Command::new("setpriv");
                c.args(["--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]);
                c.arg(common::ipckit());
                c
            }
            Env::ReadOnlyCgroups => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"]);
                c.arg(READ_ONLY_CGROUPS).arg(common::ipckit());
                c
            }
        };
        c.current_dir(std::env::temp_dir());
        Ok(c)
    }

    fn extra(self) -> &'static [&'static str] {
        match self {
            Env::NoTrace => &["--no-trace"],
            _ => &[],
        }
    }
}

/// Prints why a test cannot run here; true when it can.
fn can_run(env: Env) -> bool {
    can_simulate(env)
}

/// True when an unprivileged user may make a user namespace here (the
/// `User` environment then grades in a PID namespace of its own).
fn userns_allowed() -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["unshare", "--user", "--pid", "--fork", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints why the environment cannot be simulated; true when it can.
fn can_simulate(env: Env) -> bool {
    match env.grader() {
        Ok(_) => true,
        Err(why) => {
            eprintln!("SKIPPED ({env:?}): {why}");
            false
        }
    }
}

/// A finished grade.
struct Graded {
    json: Value,
    code: i32,
}

impl Graded {
    fn verdict(&self) -> &str {
        self.json["verdict"].as_str().unwrap_or("?")
    }

    fn detail(&self, check: &str) -> String {
        common::check_detail(&self.json, check)
    }

    /// The verdict goes with its exit status, an `incomplete` grade says
    /// what it could not check, and every grade carries its containment.
    fn assert_consistent(&self) {
        let want = match self.verdict() {
            "pass" => 0,
            "fail" => 1,
            "error" => 2,
            "incomplete" => 3,
            v => panic!("unknown verdict {v}"),
        };
        assert_eq!(self.code, want, "{:#}", self.json);
        if self.verdict() == "incomplete" {
            let why = &self.json["containment"]["not_checked"];
            assert!(
                why.as_array().is_some_and(|a| !a.is_empty()),
                "incomplete without a reason: {:#}",
                self.json
            );
        }
        if self.verdict() != "error" {
            assert!(
                self.json["containment"].is_object() || !self.detail("containment").is_empty(),
                "no containment section: {:#}",
                self.json
            );
        }
    }
}

/// Runs a command to its end; past 120 s it is killed and the test fails.
fn finish(cmd: &mut Command) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(50));
            if procfs::state_of(pid).is_none_or(|s| s == 'Z') {
                return false;
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        true
    });
    let out = child.wait_with_output().expect("wait");
    assert!(!watchdog.join().unwrap(), "{cmd:?} ran past 120 s");
    out
}

fn grade(env: Env, id: &str, extra: &[&str], port: &[&str]) -> Graded {
    let leftovers = Leftovers::before();
    let mut c = env.grader().expect("checked by can_run");
    c.args(["grade", "--exercise", id, "--format", "json"])
        .args(env.extra())
        .args(extra)
        .arg("--")
        .args(port);
    let out = finish(&mut c);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let g = Graded {
        json,
        code: out.status.code().unwrap_or(-1),
    };
    g.assert_consistent();
    leftovers.assert_none_new();
    g
}

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ports")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// A hostile C fixture compiled into a folder of its own that every user
/// can read; removed on drop.
fn build(name: &str, env: Env) -> Built {
    let dir = std::env::temp_dir().join(format!(
        "ipckit-contain-test-{}-{name}-{env:?}",
        std::process::id()
    ));
    common::compile_c(&fixture(&format!("hostile/{name}.c")), dir, name, &[])
}

/// No process whose command line names `marker` is left (processes are
/// given 2 s to be reaped by whoever adopted them). Several tests grade the
/// same fixture at once: a process under a supervisor (`ipckit
/// __supervise`) still running belongs to a grade in progress. An escaped
/// process would have been adopted by init or a subreaper, never by one.
fn assert_machine_clean(marker: &str) {
    let stray = || -> Vec<String> {
        let table = procfs::snapshot();
        let supervised = |mut pid: i32| {
            while pid > 1 {
                pid = table.get(&pid).map_or(0, |s| s.ppid);
                if procfs::cmdline(pid).contains("__supervise") {
                    return true;
                }
            }
            false
        };
        table
            .keys()
            .filter(|&&pid| {
                let line = procfs::cmdline(pid);
                line.contains(marker) && !line.contains(" grade ") && !supervised(pid)
            })
            .map(|pid| format!("{pid}: {}", procfs::cmdline(*pid)))
            .collect()
    };
    let left = common::clean::settled(Duration::from_secs(2), stray);
    assert!(left.is_empty(), "left running: {left:?}");
}

/// Work areas (`$TMPDIR/ipckit-grade-PID`) and control groups
/// (`ipckit-grade-PID`) of supervisors: those that exist before a grade are
/// other graders' (other tests, other users of the machine); any new one
/// whose supervisor is gone afterwards was left behind. (The tests whose
/// supervisors are killed run `#[serial]`, the others `#[parallel]`: a
/// grader still cleaning up after its killed supervisor is never seen by
/// another test.)
struct Leftovers(Vec<PathBuf>);

impl Leftovers {
    fn list() -> Vec<PathBuf> {
        std::fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .flatten()
            .chain(common::clean::group_folder_entries())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("ipckit-grade-"))
                    .is_some_and(|pid| pid.parse::<i32>().is_ok())
            })
            .collect()
    }

    fn before() -> Leftovers {
        Leftovers(Self::list())
    }

    /// No new folder or group whose supervisor is dead. Another test's grader
    /// (other test processes run at the same time) removes its supervisor's
    /// folder and group just after the supervisor exits: such a one is gone
    /// within moments, a real leftover stays, so the check waits (at most
    /// 10 s) for the list to empty.
    fn assert_none_new(&self) {
        let dead = |p: &PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let pid = name.trim_start_matches("ipckit-grade-");
            !Path::new(&format!("/proc/{pid}")).exists()
        };
        let left = common::clean::settled(Duration::from_secs(10), || {
            Self::list()
                .into_iter()
                .filter(|p| !self.0.contains(p) && dead(p))
                .collect::<Vec<_>>()
        });
        assert!(
            left.is_empty(),
            "left behind by a dead supervisor: {left:?}"
        );
    }
}

// ---- sample ports: right or incomplete, never a false pass ----------------------

#[rstest]
#[parallel]
fn a_good_port_passes_or_is_incomplete_with_the_reason(
    #[values(
        Env::Root,
        Env::User,
        Env::NoSysAdmin,
        Env::NoTrace,
        Env::ReadOnlyCgroups
    )]
    env: Env,
) {
    good_port_passes_or_is_incomplete(env, "pi-pipe");
}

/// The shared-memory evidence (`/proc/PID/maps`) and the server evidence
/// (bind, accept, connect) where the grader is weakened: a fresh uid, no
/// CAP_SYS_ADMIN, ptrace refused. (As root they are graded by
/// `tests/grade_meaning.rs`; read-only control groups change only how the
/// process count is capped, which the pi-pipe cases cover.)
#[rstest]
#[parallel]
fn the_shared_memory_and_server_evidence_hold_or_say_incomplete(
    #[values(Env::User, Env::NoSysAdmin, Env::NoTrace)] env: Env,
    #[values("pi-value", "pi-manager")] exercise: &str,
) {
    good_port_passes_or_is_incomplete(env, exercise);
}

fn good_port_passes_or_is_incomplete(env: Env, exercise: &str) {
    if !can_run(env) {
        return;
    }
    let port = fixture(&format!("good/{exercise}.py"));
    let g = grade(env, exercise, &[], &["python3", &port]);
    // Without the trace the mechanism cannot be checked; without an mqueue
    // file system, nor the leaks.
    let c = &g.json["containment"];
    let complete = c["tracing"]["held"] == true && c["ipc_listing"]["held"] == true;
    let want = if complete { "pass" } else { "incomplete" };
    eprintln!("{exercise} under {env:?}: {}", g.verdict());
    assert_eq!(g.verdict(), want, "{:#}", g.json);
    if env == Env::NoTrace {
        assert_eq!(want, "incomplete");
    }
    let cap = c["pids_limit"]["how"].as_str().unwrap_or_default();
    match env {
        // No group can be made: the fresh uid's RLIMIT_NPROC caps it, and the
        // PID namespace still holds everything the port leaves.
        Env::ReadOnlyCgroups => {
            assert!(cap.contains("RLIMIT_NPROC"), "{:#}", g.json);
            assert_eq!(c["namespaces"]["held"], true, "{:#}", g.json);
        }
        Env::Root => assert!(cap.contains("control group"), "{:#}", g.json),
        _ => {}
    }
    // Scheduled as one process wherever root may make a cpu group.
    let cpu = &c["cpu_share"];
    let why = cpu["how"].as_str().unwrap_or_default();
    match env {
        Env::Root | Env::NoSysAdmin | Env::NoTrace if v1_cpu_hierarchy() => {
            assert_eq!(cpu["held"], true, "{:#}", g.json);
            assert!(why.contains("cpu control group"), "{why}");
        }
        Env::User => assert!(cpu["held"] == false && why.contains("not root"), "{why}"),
        Env::ReadOnlyCgroups => {
            assert!(cpu["held"] == false && why.contains("Read-only"), "{why}")
        }
        _ => {}
    }
    assert_machine_clean(&port);
}

/// This machine has a cgroup v1 `cpu` hierarchy (the grader's cpu group
/// is made there as root).
fn v1_cpu_hierarchy() -> bool {
    Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists()
}

/// The port, and a process it starts in a session of its own (which
/// autogroup scheduling would make a group of its own), are in the run's
/// `cpu` control group and its `pids` group: `/proc/self/cgroup` says so.
#[test]
#[parallel]
fn every_process_of_the_port_is_in_the_run_s_cpu_group_whatever_its_session() {
    if !can_run(Env::Root) {
        return;
    }
    if !v1_cpu_hierarchy() {
        eprintln!("SKIPPED: no cgroup v1 cpu hierarchy here");
        return;
    }
    let script = "cat /proc/self/cgroup; setsid cat /proc/self/cgroup # cpu-group-test";
    let g = grade(Env::Root, "fork-basic", &[], &["/bin/sh", "-c", script]);
    let out = g.json["runs"][0]["stdout"].as_str().unwrap_or_default();
    // `N:cpu,cpuacct:/ipckit-grade-PID` where both are mounted together.
    let in_group = |controller: &str| {
        out.lines()
            .filter_map(|l| l.split_once(':')?.1.split_once(':'))
            .filter(|(names, path)| {
                names.split(',').any(|n| n == controller) && path.contains("/ipckit-grade-")
            })
            .count()
    };
    assert_eq!(in_group("cpu"), 2, "{out}");
    assert_eq!(in_group("pids"), 2, "{out}");
    assert_machine_clean("cpu-group-test");
}

#[rstest]
#[parallel]
fn a_port_without_the_mechanism_never_passes(
    #[values(
        Env::Root,
        Env::User,
        Env::NoSysAdmin,
        Env::NoTrace,
        Env::ReadOnlyCgroups
    )]
    env: Env,
) {
    // pi computed in one process: right output, wrong mechanism.
    wrong_mechanism_never_passes(env, ("pi-pipe", "pi-pipe-serial"));
}

/// Right output, wrong mechanism, where the grader is weakened: children
/// given shared memory but sending their sums back over a pipe; a
/// multiprocessing.Queue where a Manager's server was asked for.
#[rstest]
#[parallel]
fn a_shared_memory_or_server_port_without_it_never_passes(
    #[values(Env::User, Env::NoSysAdmin, Env::NoTrace)] env: Env,
    #[values(("pi-value", "pi-value-pipe"), ("pi-manager", "pi-manager-queue"))] case: (&str, &str),
) {
    wrong_mechanism_never_passes(env, case);
}

fn wrong_mechanism_never_passes(env: Env, case: (&str, &str)) {
    if !can_run(env) {
        return;
    }
    let (exercise, file) = case;
    let port = fixture(&format!("broken/{file}.py"));
    let g = grade(env, exercise, &[], &["python3", &port]);
    let want = if env == Env::NoTrace {
        "incomplete"
    } else {
        "fail"
    };
    assert_eq!(g.verdict(), want, "{:#}", g.json);
    assert_machine_clean(&port);
}

#[rstest]
#[parallel]
fn a_leaked_queue_fails_or_leaks_is_not_checked(
    #[values(
        Env::Root,
        Env::User,
        Env::NoSysAdmin,
        Env::NoTrace,
        Env::ReadOnlyCgroups
    )]
    env: Env,
) {
    if !can_run(env) {
        return;
    }
    let port = fixture("broken/pi-sysv-mq-leak.py");
    let g = grade(env, "pi-sysv-mq", &[], &["python3", &port]);
    assert_eq!(g.verdict(), "fail", "{:#}", g.json);
    assert!(g.detail("leaks").contains("left behind"), "{:#}", g.json);
    // Removed, whoever owns it (root without CAP_SYS_ADMIN removes a queue
    // of the port's fresh uid as that uid).
    assert!(
        !g.detail("leaks").contains("COULD NOT BE REMOVED"),
        "{:#}",
        g.json
    );
    if g.json["containment"]["namespaces"]["held"] == false {
        let d = g.detail("leaks");
        assert!(
            d.contains("may be another process's") || d.contains("made by the port's fresh uid"),
            "{:#}",
            g.json
        );
    }
    assert_machine_clean(&port);
}

/// Root without `CAP_SYS_ADMIN` grades in the host's IPC namespace: queues
/// another process makes during the run are not the port's (it runs under a
/// fresh uid) and must be neither blamed on it nor removed.
#[test]
#[serial]
fn another_process_s_queue_made_during_a_host_namespace_grade_is_left_alone() {
    if !can_run(Env::NoSysAdmin) {
        return;
    }
    let port = fixture("broken/pi-sysv-mq-leak.py");
    let done = std::sync::atomic::AtomicBool::new(false);
    let (g, foreign) = std::thread::scope(|s| {
        let maker = s.spawn(|| {
            let mut ids = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) && ids.len() < 200 {
                // SAFETY: msgget(2) with IPC_PRIVATE only creates a queue.
                let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
                assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
                ids.push(id);
                std::thread::sleep(Duration::from_millis(5));
            }
            ids
        });
        let g = grade(Env::NoSysAdmin, "pi-sysv-mq", &[], &["python3", &port]);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (g, maker.join().unwrap())
    });
    let still: Vec<i32> = foreign
        .iter()
        .copied()
        .filter(|&id| {
            // SAFETY: IPC_STAT into a zeroed msqid_ds only reads the queue's state.
            let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
            // SAFETY: `ds` is a valid, writable msqid_ds.
            unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) == 0 }
        })
        .collect();
    for &id in &foreign {
        // SAFETY: IPC_RMID on a queue this test made.
        unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
    assert!(
        foreign.len() > 1,
        "the grade took too short to test anything"
    );
    assert_eq!(
        still, foreign,
        "the grader removed another process's queue: {:#}",
        g.json
    );
    let leaks = g.detail("leaks");
    assert!(leaks.contains("System V message queue"), "{:#}", g.json);
    for id in &foreign {
        assert!(
            !leaks.contains(&format!("id {id} ")),
            "queue {id} is not the port's: {leaks}"
        );
    }
    assert!(!leaks.contains("COULD NOT BE REMOVED"), "{:#}", g.json);
    assert_machine_clean(&port);
}

// ---- hostile ports lose -----------------------------------------------------------

#[rstest]
#[serial]
fn a_port_that_attacks_its_supervisor_fails_and_leaves_nothing(
    #[values("kill-grader", "stop-grader", "trace-grader")] name: &str,
    #[values(
        Env::Root,
        Env::User,
        Env::NoSysAdmin,
        Env::NoTrace,
        Env::ReadOnlyCgroups
    )]
    env: Env,
) {
    if !can_run(env) {
        return;
    }
    let built = build(name, env);
    // The attack is the port's first act; the rest of its run is a sleep
    // the time limit ends.
    let g = grade(env, "fork-basic", &["--timeout", "1"], &[&built.exe]);
    assert_eq!(g.verdict(), "fail", "{:#}", g.json);
    let attacked = g.detail("containment");
    // An attack the kernel refused leaves an ordinary failing grade (the
    // port never finishes): any attack by a port under a dropped uid,
    // PTRACE_ATTACH on a non-dumpable supervisor of the same uid, and a
    // signal to PID 1 of the port's PID namespace (dropped by the kernel).
    if attacked.is_empty() {
        let dropped = g.json["containment"]["uid_drop"]["held"] == true && env != Env::User;
        let pidns = g.json["containment"]["namespaces"]["how"]
            .to_string()
            .contains("PID");
        assert!(
            dropped || pidns || (name == "trace-grader" && env == Env::User),
            "{name} not reported as an attack: {:#}",
            g.json
        );
    } else {
        assert!(attacked.contains("supervisor"), "{attacked}");
    }
    assert_machine_clean(&built.exe);
}

#[rstest]
#[serial]
fn a_port_that_reads_and_writes_outside_its_area_is_refused_or_caught(
    #[values(Env::Root, Env::NoSysAdmin, Env::NoTrace, Env::ReadOnlyCgroups)] env: Env,
) {
    if !can_run(env) {
        return;
    }
    let built = build("read-shadow", env);
    let g = grade(env, "fork-basic", &[], &[&built.exe]);
    assert_eq!(g.verdict(), "fail", "{:#}", g.json);
    // Run by root, the grader drops the port to a fresh uid: /etc/shadow
    // cannot be read, and the file it wrote in /tmp is its uid's.
    assert_eq!(g.json["containment"]["uid_drop"]["held"], true);
    let leaks = g.detail("leaks");
    assert!(
        leaks.contains("/tmp/ipckit-hostile-outside-") && leaks.contains("removed"),
        "{leaks}"
    );
    // The file the port says it wrote (other tests' ports write theirs at
    // the same time, in other processes under nextest) is gone.
    let stdout = g.json["runs"][0]["stdout"].as_str().unwrap_or("");
    let wrote = stdout
        .lines()
        .find_map(|l| l.strip_prefix("wrote ")?.split(':').next())
        .unwrap_or_else(|| panic!("no file written: {stdout}"));
    assert!(leaks.contains(wrote), "{wrote} not in {leaks}");
    assert!(!Path::new(wrote).exists(), "{wrote} left behind");
    assert_machine_clean(&built.exe);
}

#[rstest]
#[parallel]
fn a_port_that_stops_itself_is_reported_as_stopped(
    #[values(
        Env::Root,
        Env::User,
        Env::NoSysAdmin,
        Env::NoTrace,
        Env::ReadOnlyCgroups
    )]
    env: Env,
) {
    if !can_run(env) {
        return;
    }
    let built = build("stop-self", env);
    let g = grade(env, "fork-basic", &["--timeout", "1"], &[&built.exe]);
    assert_eq!(g.verdict(), "fail", "{:#}", g.json);
    let exit = g.detail("exit");
    assert!(
        exit.contains("stopped") && !exit.contains("status 0"),
        "{exit}"
    );
    assert_machine_clean(&built.exe);
}

/// One bomb at a time (`serial(bomb)`; nextest's `bombs` group does the
/// same): each checks that its bomb reached the cap before the limit, and
/// two bombs failing `fork` at their caps at once slow each other's forks.
#[rstest]
#[serial(bomb)]
fn a_setsid_fork_bomb_is_contained_and_killed(
    #[values(
        Env::Root,
        Env::User,
        Env::NoSysAdmin,
        Env::NoTrace,
        Env::ReadOnlyCgroups
    )]
    env: Env,
) {
    if !can_simulate(env) {
        return;
    }
    if env == Env::User && !userns_allowed() {
        eprintln!("SKIPPED (User): unprivileged user namespaces are refused here");
        return;
    }
    let built = build("setsid-bomb", env);
    // The bomb reaches its cap within milliseconds; the rest of the run
    // only spins (64 processes failing to fork take both cores).
    let g = grade(env, "fork-basic", &["--timeout", "0.3"], &[&built.exe]);
    assert_eq!(g.verdict(), "fail", "{:#}", g.json);
    // The bomb reached its cap within the 0.3 s (so the cap was tested):
    // 63 children besides the main process under a cap of 64 (measured the
    // same under every environment, traced or sampled from /proc).
    let children = common::children_counted(&g.json);
    assert!((60..=65).contains(&children), "{}", g.detail("zombies"));
    if env == Env::User {
        // No control group: the PID namespace holds the bomb.
        let how = g.json["containment"]["namespaces"]["how"].to_string();
        assert!(how.contains("PID"), "{:#}", g.json);
    }
    assert!(
        g.json["containment"]["pids_limit"]["held"] == true,
        "{:#}",
        g.json
    );
    assert_machine_clean(&built.exe);
}

/// An unprivileged user with `--no-isolate` has no PID namespace, no pids
/// control group and no uid to drop to: a setsid fork bomb could outlive
/// the grade, so the grader refuses to run the port, saying why.
#[test]
#[parallel]
fn without_pid_namespace_control_group_or_uid_drop_the_grader_refuses() {
    if !can_simulate(Env::User) {
        return;
    }
    let built = build("setsid-bomb", Env::User);
    let g = grade(
        Env::User,
        "fork-basic",
        &["--timeout", "1", "--no-isolate"],
        &[&built.exe],
    );
    assert_eq!(g.verdict(), "error", "{:#}", g.json);
    assert_refused(&g.json["error"]);
    assert_machine_clean(&built.exe);
}

/// In the run's PID namespace, the pids a port prints, the pids its output
/// is attributed to (`SCM_CREDENTIALS`) and the pids the tracer and `/proc`
/// see are the same: the meaning rules of fork-ids (the child prints its own
/// pid and its parent's) pass, and the port is PID 2 of its namespace.
#[rstest]
#[parallel]
fn pids_printed_traced_and_attributed_agree_in_the_pid_namespace(
    #[values(Env::Root, Env::User)] env: Env,
) {
    if !can_run(env) {
        return;
    }
    if env == Env::User && !userns_allowed() {
        eprintln!("SKIPPED (User): unprivileged user namespaces are refused here");
        return;
    }
    let port = fixture("good/fork-ids.py");
    let g = grade(env, "fork-ids", &[], &["python3", &port]);
    assert_eq!(g.verdict(), "pass", "{:#}", g.json);
    assert!(
        g.json["containment"]["namespaces"]["how"]
            .to_string()
            .contains("PID"),
        "{:#}",
        g.json
    );
    let output = g.detail("output");
    assert!(output.contains("printed by pid 2 "), "{output}");
    assert_machine_clean(&port);
}

/// A port that lists `/proc` (as `ps` does) sees only its own processes.
#[rstest]
#[parallel]
fn a_port_sees_only_its_own_processes(#[values(Env::Root, Env::User)] env: Env) {
    if !can_run(env) {
        return;
    }
    if env == Env::User && !userns_allowed() {
        eprintln!("SKIPPED (User): unprivileged user namespaces are refused here");
        return;
    }
    let g = grade(
        env,
        "fork-basic",
        &[],
        &["sh", "-c", "ls /proc | grep -c '^[0-9]'"],
    );
    let printed = g.json["runs"][0]["stdout"].as_str().unwrap_or("").trim();
    let n: u32 = printed.parse().unwrap_or(u32::MAX);
    // sh, and the grep and ls of its pipeline (the supervisor is PID 1).
    assert!(n <= 4, "the port saw {printed} processes: {:#}", g.json);
}

/// Every grade removes its own control group: none named after a
/// supervisor that is gone is left (five grades in a row, as root).
#[test]
#[serial]
fn a_grade_leaves_no_control_group_behind() {
    if !can_run(Env::Root) {
        return;
    }
    let before = Leftovers::before();
    let port = fixture("good/fork-basic.py");
    for _ in 0..5 {
        let g = grade(Env::Root, "fork-basic", &[], &["python3", &port]);
        assert_eq!(g.verdict(), "pass", "{:#}", g.json);
        assert_eq!(g.json["containment"]["pids_limit"]["held"], true);
    }
    before.assert_none_new();
}

/// Where no pids control group can be made, the grader and the audit
/// refuse to run anything, saying why.
fn assert_refused(error: &Value) {
    let text = error.as_str().unwrap_or("");
    assert!(
        text.contains("refusing to run") && text.contains("fork bomb"),
        "not refused: {error}"
    );
}

// ---- interrupts and the audit ---------------------------------------------------

/// Waits (30 s at most) until a descendant of `ancestor` whose command
/// line names `marker` sleeps (state `S`), and returns its pid.
fn wait_for_sleeping(ancestor: u32, marker: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = procfs::snapshot();
        let found = procfs::descendants(&table, ancestor as i32)
            .into_iter()
            .find(|p| {
                table.get(p).is_some_and(|s| s.state == 'S') && procfs::cmdline(*p).contains(marker)
            });
        if let Some(pid) = found {
            return pid;
        }
        assert!(Instant::now() < deadline, "{marker} never started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[rstest]
#[parallel]
fn sigterm_to_the_grader_kills_the_port_and_reports(#[values(Env::Root, Env::User)] env: Env) {
    if !can_run(env) {
        return;
    }
    let port = fixture("broken/pi-pipe-hang.py");
    let mut c = env.grader().unwrap();
    c.args(["grade", "--exercise", "pi-pipe", "--format", "json", "--"])
        .args(["python3", &port])
        .stdout(Stdio::piped());
    let child = c.spawn().unwrap();
    wait_for_sleeping(child.id(), &port);
    // The grader itself (setpriv execs it: same pid).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).expect("a report");
    assert_eq!(json["verdict"], "error", "{json:#}");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted by SIGTERM"),
        "{json:#}"
    );
    assert_eq!(out.status.code(), Some(2));
    assert_machine_clean(&port);
}

#[test]
#[parallel]
fn sigint_to_the_audit_kills_the_tree_and_is_not_clean() {
    if !can_run(Env::Root) {
        return;
    }
    let marker = format!("{}", 4000 + std::process::id() % 1000);
    let mut c = Command::new(common::ipckit());
    c.args(["audit", "--", "sleep", &marker])
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    wait_for_sleeping(child.id(), &format!("sleep {marker}"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("interrupted by SIGINT"), "{text}");
    assert!(text.contains("NOT CLEAN"), "{text}");
    assert_eq!(out.status.code(), Some(1));
    assert_machine_clean(&format!("sleep {marker}"));
}

/// A setsid fork bomb under `ipckit audit`, as root (pids control group) and
/// as an ordinary user (`RLIMIT_NPROC`), capped at the audit's default of
/// 64 processes: both in a PID namespace of the audit's own, so the whole
/// bomb dies with one `kill(-1)` at the deadline and nothing outlives the
/// audit. Reported as not clean. One bomb at a time (see
/// `a_setsid_fork_bomb_is_contained_and_killed`), with a 1 s limit: the
/// bomb, scheduled as one process, must reach its cap before the limit
/// even beside other tests (under `cargo test`, 17 processes in 0.3 s once).
#[rstest]
#[serial(bomb)]
fn a_fork_bomb_under_the_audit_is_capped_and_killed(#[values(Env::Root, Env::User)] env: Env) {
    if !can_simulate(env) {
        return;
    }
    let built = build("setsid-bomb", env);
    let mut c = env.grader().unwrap();
    c.args([
        "audit",
        "--format",
        "json",
        "--timeout",
        "1",
        "--",
        &built.exe,
    ]);
    let start = Instant::now();
    let out = finish(&mut c);
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr: {stderr}"));
    assert_eq!(report["timed_out"], true, "{report:#}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("processes capped"), "{notes}");
    assert!(notes.contains("a PID namespace of its own"), "{notes}");
    let seen = report["processes_seen"].as_u64().unwrap_or(0);
    eprintln!("{env:?}: audit of a setsid fork bomb took {took:?}, {seen} processes seen");
    assert!(seen <= 64, "the cap of 64 did not hold: {seen} seen");
    assert!(seen >= 60, "the bomb never reached its cap: {seen} seen");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_machine_clean(&built.exe);
}

/// An ordinary user with `--no-isolate` has neither a PID namespace nor a
/// pids control group: the audit refuses before anything runs, saying why.
#[test]
#[parallel]
fn without_pid_namespace_or_control_group_the_audit_refuses() {
    if !can_simulate(Env::User) {
        return;
    }
    let built = build("setsid-bomb", Env::User);
    let mut c = Env::User.grader().unwrap();
    c.args(["audit", "--no-isolate", "--timeout", "1", "--", &built.exe]);
    let out = finish(&mut c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_refused(&Value::String(stderr.clone().into()));
    assert!(stderr.contains("no PID namespace"), "{stderr}");
    assert_eq!(out.status.code(), Some(2));
    assert_machine_clean(&built.exe);
}

/// A command that makes the audit its tracer (`PTRACE_TRACEME`) and execs
/// is killed by the audit and reported as not clean.
#[rstest]
#[parallel]
fn a_command_that_makes_the_audit_its_tracer_is_killed_and_not_clean(
    #[values(Env::Root, Env::User)] env: Env,
) {
    if !can_simulate(env) {
        return;
    }
    let built = build("traceme-exec", env);
    let out = finish(env.grader().unwrap().args(["audit", "--", &built.exe]));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("PTRACE_TRACEME"), "{text}");
    assert!(text.contains("NOT CLEAN"), "{text}");
    assert_eq!(out.status.code(), Some(1));
    assert_machine_clean(&built.exe);
}

#[test]
#[parallel]
fn dir_without_private_namespaces_grades_one_port_at_a_time() {
    // Root without CAP_SYS_ADMIN: no namespace can be made (a control
    // group and a fresh uid contain the ports).
    if !can_run(Env::NoSysAdmin) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ipckit-contain-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["pi-pipe.py", "fork-basic.py"] {
        std::fs::copy(fixture(&format!("good/{f}")), dir.join(f)).unwrap();
    }
    let mut c = Env::NoSysAdmin.grader().unwrap();
    c.args(["grade", "--format", "json", "--dir"]).arg(&dir);
    let out = finish(&mut c);
    let _ = std::fs::remove_dir_all(&dir);
    let json: Value = serde_json::from_slice(&out.stdout).expect("a report");
    for g in json.as_array().unwrap() {
        // No mqueue file system without CAP_SYS_ADMIN: leaks not checked.
        assert_eq!(g["verdict"], "incomplete", "{g:#}");
        let notes = g["containment"]["notes"].to_string();
        assert!(notes.contains("one at a time"), "{g:#}");
    }
    assert_eq!(out.status.code(), Some(3));
}

// ---- a class graded in parallel by an unprivileged user ---------------------------

/// A class graded by an unprivileged user with `--jobs 2` (each port in
/// namespaces of its own), five times in a row: the five `summary.csv` files
/// are identical, and the class has failing ports, so the sameness is not
/// that of an all-pass. `make stability` runs it.
#[test]
#[ignore = "slow (five class runs): `make stability` runs it, and so does .ci/run"]
#[serial]
fn a_parallel_class_graded_by_a_user_five_times_gives_identical_summaries() {
    if !can_run(Env::User) {
        return;
    }
    if !userns_allowed() {
        eprintln!(
            "SKIPPED (User): user namespaces are refused here, so a user's class is graded one port at a time"
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let root = common::tempdir_for("user-class");
    let open = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    open(&root, 0o777);
    let hand_in = [
        ("alice", "good/fork-ids.py", "fork-ids.py"),
        ("alice", "good/pi-pipe.py", "pi-pipe.py"),
        ("alice", "good/exit-status.py", "exit-status.py"),
        ("bob", "broken/fork-ids-nowait.py", "fork-ids.py"),
        ("bob", "broken/pi-pipe-mp-duplex.py", "pi-pipe.py"),
        ("bob", "good/pi-socketpair.py", "pi-socketpair.py"),
    ];
    for (student, rel, name) in hand_in {
        let dir = root.join("class").join(student);
        std::fs::create_dir_all(&dir).expect("student folder");
        std::fs::copy(fixture(rel), dir.join(name)).expect("hand in");
        open(&dir.join(name), 0o755);
        open(&dir, 0o755);
    }
    open(&root.join("class"), 0o755);
    let class = root.join("class");
    let mut summaries = Vec::new();
    for run in 0..5 {
        let out = root.join(format!("out-{run}"));
        let mut c = Env::User.grader().expect("checked by can_run");
        c.args(["grade", "--class"])
            .arg(&class)
            .arg("--report-dir")
            .arg(&out)
            .args(["--jobs", "2"]);
        let done = finish(&mut c);
        assert!(
            done.status.code().is_some_and(|c| c <= 1),
            "run {run}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        summaries.push(std::fs::read_to_string(out.join("summary.csv")).expect("summary.csv"));
    }
    let _ = std::fs::remove_dir_all(&root);
    assert_machine_clean(&class.to_string_lossy());
    assert_eq!(summaries[0].lines().count(), 7, "{}", summaries[0]);
    assert!(summaries[0].contains("bob,pi-pipe"), "{}", summaries[0]);
    assert!(
        summaries[0].lines().skip(1).any(|l| !l.ends_with(',')),
        "some port fails: {}",
        summaries[0]
    );
    for (run, s) in summaries.iter().enumerate().skip(1) {
        assert_eq!(s, &summaries[0], "run {run} differs from run 0");
    }
}
