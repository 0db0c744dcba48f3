//! The one harness every integration test shares.
//!
//! - [`audited`] runs `ipckit run ID ARGS` under `ipckit audit --format json`
//!   in a process tree of its own, and returns the program's output with the
//!   audit's report; [`Audited::assert_clean`] asserts that the run exited 0 and
//!   left no zombie, no orphan still running and no leaked object.
//! - [`audited_cmd`] does the same for any command.
//!
//! Reference programs fork and print, so they never run inside the
//! (multi-threaded) test binary: always through the `ipckit` binary.
#![allow(dead_code)]

#[cfg(target_os = "linux")]
pub mod clean;
pub mod pi;
pub mod state;

use std::process::Command;

/// The path of the `ipckit` binary cargo built for these tests.
pub fn ipckit() -> &'static str {
    env!("CARGO_BIN_EXE_ipckit")
}

/// A finished audited run.
#[derive(Debug)]
pub struct Audited {
    /// The audit's JSON report.
    pub report: serde_json::Value,
    /// What the audited command printed (its stdout and stderr, interleaved).
    pub output: String,
    /// The exit code of `ipckit audit`: 0 clean, 1 not clean, 2 error.
    pub audit_code: i32,
}

impl Audited {
    /// The output's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.output.lines().collect()
    }

    /// The findings of one kind (`zombies`, `orphans`, `adopted`, `leaks`).
    pub fn findings(&self, kind: &str) -> &Vec<serde_json::Value> {
        self.report[kind]
            .as_array()
            .unwrap_or_else(|| panic!("report has no {kind}: {}", self.report))
    }

    /// The command's own exit code (`None` if it was killed by a signal).
    pub fn exit_code(&self) -> Option<i64> {
        self.report["exit"]["Exited"].as_i64()
    }

    /// Asserts that the command exited 0 and left nothing behind.
    pub fn assert_clean(&self) {
        for kind in ["zombies", "orphans", "leaks"] {
            assert!(
                self.findings(kind).is_empty(),
                "left {kind} behind: {:#}\noutput:\n{}",
                self.report[kind],
                self.output
            );
        }
        assert_eq!(
            self.exit_code(),
            Some(0),
            "command did not exit 0: {}\noutput:\n{}",
            self.report["exit"],
            self.output
        );
        assert_eq!(self.audit_code, 0, "ipckit audit exit code");
    }
}

/// Runs the reference program of exercise `id` under the audit.
pub fn audited(id: &str, args: &[&str]) -> Audited {
    let mut cmd = vec![ipckit(), "run", id];
    cmd.extend_from_slice(args);
    audited_cmd(&cmd)
}

/// Runs any command under the audit (a 120 s deadline for the whole tree).
pub fn audited_cmd(cmd: &[&str]) -> Audited {
    audited_cmd_with(&[], cmd)
}

/// Runs any command under the audit with extra options for `ipckit audit`
/// (such as `--no-isolate`).
pub fn audited_cmd_with(audit_args: &[&str], cmd: &[&str]) -> Audited {
    let out = Command::new(ipckit())
        .args(["audit", "--format", "json", "--timeout", "120"])
        .args(audit_args)
        .arg("--")
        .args(cmd)
        .output()
        .expect("run ipckit audit");
    let output = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout {:?}, stderr {output}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    Audited {
        report,
        output,
        audit_code: out.status.code().unwrap_or(-1),
    }
}

/// Runs `ipckit ARGS` with a deadline of `secs` seconds (killed and a panic
/// after it): its exit code, standard output and standard error. Output
/// goes through files, so a full pipe can never stall the command.
pub fn ipckit_within(args: &[&std::ffi::OsStr], secs: u64) -> (i32, String, String) {
    let dir = tempdir_for("run");
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(ipckit())
        .args(args)
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn ipckit");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(s) => break s,
            None if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ipckit {args:?} did not finish within {secs} s");
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let read = |p: &std::path::Path| {
        String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
    };
    let result = (status.code().unwrap_or(-1), read(&out), read(&err));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A fresh directory of this test process under the temporary directory.
pub fn tempdir_for(what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ipckit-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// The `detail` of the check named `check` in a grade's JSON report (empty
/// when the report has no such check).
pub fn check_detail(grade: &serde_json::Value, check: &str) -> String {
    grade["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == check)
        .map(|c| c["detail"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// How many child processes a grade's `zombies` check counted (its detail
/// begins "N child process(es)"), 0 if it does not say: how far a fork bomb
/// got before its cap.
pub fn children_counted(grade: &serde_json::Value) -> u32 {
    check_detail(grade, "zombies")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A C fixture compiled into a folder of its own that every user can read
/// and enter (ports may run as another uid); removed on drop.
pub struct Built {
    /// The folder, removed on drop.
    pub dir: std::path::PathBuf,
    /// The executable's path.
    pub exe: String,
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Compiles the C file `src` with `flags` into `dir/name` (`cc -O2`, linked
/// with `-lrt -pthread -lm`).
pub fn compile_c(src: &str, dir: std::path::PathBuf, name: &str, flags: &[&str]) -> Built {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(&dir).expect("build folder");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let exe = dir.join(name);
    let status = std::process::Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(src)
        .args(flags)
        .args(["-lrt", "-pthread", "-lm"])
        .status()
        .expect("cc");
    assert!(status.success(), "cc {src} failed");
    Built {
        exe: exe.to_string_lossy().into_owned(),
        dir,
    }
}

/// The permission bits `/proc/sysvipc/TABLE` lists for System V object `id`
/// (`msg`, `sem` or `shm`; columns: key, id, perms, ...; `proc(5)`).
pub fn sysvipc_perms(table: &str, id: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}")).expect("/proc/sysvipc");
    let row: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&id.to_string().as_str()))
        .unwrap_or_else(|| panic!("id {id} is not listed in /proc/sysvipc/{table}"));
    row[2].to_string()
}
