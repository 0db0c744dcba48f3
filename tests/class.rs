//! `ipckit grade --class DIR --report-dir OUT`: a class of students, with a
//! missing exercise, a port that does not build and misnamed files, gives
//! the expected summary.csv; the report folder is prepared (or refused)
//! before any grading; --jobs 2 keeps a fork bomb in one port from changing
//! another's verdict; the HTML pages render in headless Chromium.

#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A class folder built for one test; removed on drop, after checking that
/// no process of it is left.
struct ClassDir {
    root: PathBuf,
}

impl ClassDir {
    fn new() -> ClassDir {
        ClassDir {
            root: common::tempdir_for("class"),
        }
    }

    /// Copies `fixtures/REL` to `STUDENT/NAME`.
    fn hand_in(&self, student: &str, rel: &str, name: &str) -> &Self {
        let dir = self.root.join("class").join(student);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(manifest("fixtures").join(rel), dir.join(name)).unwrap();
        self
    }

    fn class(&self) -> PathBuf {
        self.root.join("class")
    }

    fn out(&self) -> PathBuf {
        self.root.join("out")
    }
}

impl Drop for ClassDir {
    fn drop(&mut self) {
        let marker = self.root.to_string_lossy().into_owned();
        let left: Vec<String> = ipckit::audit::procfs::snapshot()
            .keys()
            .map(|&pid| (pid, ipckit::audit::procfs::cmdline(pid)))
            .filter(|(_, line)| line.contains(&marker) && !line.contains(" grade "))
            .map(|(pid, line)| format!("{pid}: {line}"))
            .collect();
        let _ = std::fs::remove_dir_all(&self.root);
        if !std::thread::panicking() {
            assert!(left.is_empty(), "processes of the class left: {left:?}");
        }
    }
}

fn grade_class(class: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&OsStr> = vec!["grade".as_ref(), "--class".as_ref(), class.as_os_str()];
    args.extend(["--report-dir".as_ref(), out.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    common::ipckit_within(&args, 600)
}

/// The rows of summary.csv, without the header, as (student, exercise,
/// score, max, failed).
fn rows(out: &Path) -> Vec<(String, String, String, String, String)> {
    let text = std::fs::read_to_string(out.join("summary.csv")).expect("summary.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("student,exercise,score,max_score,failed")
    );
    lines
        .map(|l| {
            let f: Vec<String> = l.splitn(5, ',').map(String::from).collect();
            (
                f[0].clone(),
                f[1].clone(),
                f[2].clone(),
                f[3].clone(),
                f[4].clone(),
            )
        })
        .collect()
}

#[test]
fn a_class_with_missing_unbuildable_and_misnamed_files_gives_the_expected_csv() {
    let c = ClassDir::new();
    c.hand_in("alice", "ports/good/pi-pipe.py", "pi-pipe.py")
        .hand_in("alice", "ports/good/fork-basic.py", "fork-basic.py")
        .hand_in("bob", "ports/broken/pi-pipe-zombie.py", "pi-pipe.py")
        .hand_in("carol", "class/carol/pi-pipe.c", "pi-pipe.c") // does not build
        .hand_in("carol", "ports/good/fork-basic.py", "fork_basic.py") // misnamed
        .hand_in("carol", "class/carol/notes.txt", "notes.txt");
    let (code, _, stderr) = grade_class(
        &c.class(),
        &c.out(),
        &["--require", "pi-pipe,fork-basic", "--jobs", "2"],
    );
    assert_eq!(code, 1, "some rows failed: {stderr}");
    let got = rows(&c.out());
    let short: Vec<(&str, &str, &str, &str)> = got
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str(), r.3.as_str()))
        .collect();
    assert_eq!(
        short,
        [
            ("alice", "fork-basic", "7", "7"),
            ("alice", "pi-pipe", "7", "7"),
            ("bob", "fork-basic", "0", "7"),
            ("bob", "pi-pipe", "5", "7"),
            ("carol", "fork-basic", "0", "7"),
            ("carol", "pi-pipe", "0", "7"),
        ],
        "{got:?}"
    );
    let failed: Vec<&str> = got.iter().map(|r| r.4.as_str()).collect();
    assert_eq!(failed[0], "");
    assert_eq!(failed[2], "missing");
    assert!(failed[3].contains("zombies"), "{failed:?}");
    assert_eq!(failed[4], "missing", "fork_basic.py is no fork-basic port");
    assert_eq!(failed[5], "does not build");
    let unmatched = std::fs::read_to_string(c.out().join("unmatched.csv")).unwrap();
    assert_eq!(
        unmatched,
        "student,file,nearest\ncarol,fork_basic.py,fork-basic\ncarol,notes.txt,\n"
    );
    assert!(stderr.contains("did you mean fork-basic?"), "{stderr}");
    // Plain progress lines (standard error is no terminal here).
    assert!(stderr.contains("graded 4/4: "), "{stderr}");
    // One report per port, each linked from the class page.
    let index = std::fs::read_to_string(c.out().join("index.html")).unwrap();
    for page in [
        "alice/pi-pipe.py",
        "alice/fork-basic.py",
        "bob/pi-pipe.py",
        "carol/pi-pipe.c",
    ] {
        assert!(
            c.out().join(format!("{page}.html")).is_file(),
            "{page}.html"
        );
        assert!(
            c.out().join(format!("{page}.json")).is_file(),
            "{page}.json"
        );
        assert!(
            index.contains(&format!("href=\"{page}.html\"")),
            "{page} linked: {index}"
        );
    }
    let bob = std::fs::read_to_string(c.out().join("bob/pi-pipe.py.html")).unwrap();
    assert!(
        bob.contains("<svg") && bob.contains("was a zombie from"),
        "a timeline with zombies"
    );
}

#[test]
fn an_unwritable_report_folder_is_refused_before_any_grading() {
    let c = ClassDir::new();
    c.hand_in("alice", "ports/good/fork-basic.py", "fork-basic.py");
    let (code, _, stderr) = grade_class(&c.class(), Path::new("/proc/ipckit-no-such/out"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("report folder"), "{stderr}");
    assert!(!stderr.contains("graded "), "nothing was graded: {stderr}");
}

#[test]
fn out_folders_are_made_up_front_and_an_unwritable_out_is_refused_first() {
    let c = ClassDir::new();
    c.hand_in("alice", "ports/good/fork-basic.py", "fork-basic.py");
    let port = c.class().join("alice/fork-basic.py");
    let grade = |out: &Path| {
        let args: Vec<&OsStr> = vec![
            "grade".as_ref(),
            "--exercise".as_ref(),
            "fork-basic".as_ref(),
            "--format".as_ref(),
            "junit".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--".as_ref(),
            "python3".as_ref(),
            port.as_os_str(),
        ];
        common::ipckit_within(&args, 120)
    };
    let deep = c.root.join("not/yet/there/report.xml");
    let (code, _, stderr) = grade(&deep);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read_to_string(&deep).unwrap().starts_with("<?xml"));
    let started = std::time::Instant::now();
    let (code, _, stderr) = grade(Path::new("/proc/ipckit-no-such/report.xml"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("report folder /proc/ipckit-no-such"),
        "{stderr}"
    );
    // fork-basic sleeps a second: refused before it ran.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "refused before grading"
    );
}

#[test]
fn a_fork_bomb_in_one_port_does_not_change_another_verdict_with_two_jobs() {
    let c = ClassDir::new();
    c.hand_in("mallory", "ports/broken/fork-bomb.c", "fork-basic.c")
        .hand_in("alice", "ports/good/fork-basic.py", "fork-basic.py")
        .hand_in("alice", "ports/good/pi-pipe.py", "pi-pipe.py");
    let (_, _, stderr) = grade_class(&c.class(), &c.out(), &["--jobs", "2", "--timeout", "4"]);
    let got = rows(&c.out());
    let scores: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str()))
        .collect();
    assert_eq!(
        scores[..2],
        [("alice", "fork-basic", "7"), ("alice", "pi-pipe", "7")],
        "alice's ports, graded beside the bomb, keep full marks: {got:?} {stderr}"
    );
    assert_eq!(
        (got[2].0.as_str(), got[2].1.as_str()),
        ("mallory", "fork-basic")
    );
    assert!(
        got[2].4.contains("time"),
        "the bomb is killed at the limit: {got:?}"
    );
}

#[test]
fn an_unknown_required_exercise_suggests_the_nearest() {
    let c = ClassDir::new();
    c.hand_in("alice", "ports/good/fork-basic.py", "fork-basic.py");
    let (code, _, stderr) = grade_class(&c.class(), &c.out(), &["--require", "pi-pip"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("did you mean \"pi-pipe\"?"), "{stderr}");
    assert!(stderr.contains("docs/catalogue.md"), "{stderr}");
    assert!(
        manifest("docs/catalogue.md").is_file(),
        "the file the message names exists"
    );
}

/// Headless Chromium from Debian's packages, or why not.
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        let why = "SKIP html in Chromium: no chromium on PATH (apt-get install chromium; `make html-check` needs it)";
        assert!(
            std::env::var_os("IPCKIT_REQUIRE_CHROMIUM").is_none(),
            "{why}"
        );
        eprintln!("{why}");
    }
    found
}

/// Loads `page` in headless Chromium: its DOM (`--dump-dom`), and a
/// screenshot written to `png`.
fn render(browser: &str, page: &Path, png: &Path) -> String {
    let profile = common::tempdir_for("chromium");
    let url = format!("file://{}", page.display());
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ];
    let run = |extra: &[String]| {
        let out = Command::new("timeout")
            .args(["120", browser])
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium failed on {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let dom = String::from_utf8_lossy(&run(&["--dump-dom".into()]).stdout).into_owned();
    run(&[
        "--window-size=1280,1000".into(),
        format!("--screenshot={}", png.display()),
    ]);
    let _ = std::fs::remove_dir_all(&profile);
    dom
}

#[test]
fn html_reports_render_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    let c = ClassDir::new();
    c.hand_in("alice", "ports/good/pi-pipe.py", "pi-pipe.py")
        .hand_in("bob", "ports/broken/pi-pipe-zombie.py", "pi-pipe.py");
    let (_, _, stderr) = grade_class(&c.class(), &c.out(), &["--require", "pi-pipe,fork-basic"]);
    let shots = std::env::var_os("IPCKIT_SCREENSHOTS").map_or(c.root.join("shots"), PathBuf::from);
    std::fs::create_dir_all(&shots).unwrap();
    let index = render(
        browser,
        &c.out().join("index.html"),
        &shots.join("class-report.png"),
    );
    assert!(
        index.contains("<table class=\"heat\">") && index.contains("missing"),
        "{index} {stderr}"
    );
    let port = render(
        browser,
        &c.out().join("bob/pi-pipe.py.html"),
        &shots.join("port-report.png"),
    );
    assert!(
        port.contains("<svg") && port.contains("was a zombie from"),
        "{port}"
    );
    for png in ["class-report.png", "port-report.png"] {
        let bytes = std::fs::read(shots.join(png)).expect("a screenshot");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{png}: {} bytes",
            bytes.len()
        );
    }
    // Self-contained: no network, no external script, font or style sheet.
    for page in [
        c.out().join("index.html"),
        c.out().join("bob/pi-pipe.py.html"),
    ] {
        let html = std::fs::read_to_string(page).unwrap();
        assert!(
            !html.contains("<script")
                && !html.contains("http://")
                && !html.contains("https://")
                && !html.contains("<link")
        );
    }
}
