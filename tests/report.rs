//! Reports that tools accept: JUnit XML checked by `xmllint` against the
//! published JUnit schema (fixtures/junit/junit-10.xsd) and read by a real
//! consumer (python's junitparser, else xml.etree), Gradescope's
//! `results.json` validated against a JSON Schema written from Gradescope's
//! documented format (fixtures/gradescope/results.schema.json), and JSON
//! reports with a schema version and counts. The port under test prints
//! control characters and invalid UTF-8 and has 0x01 in its argv[0].

#![cfg(target_os = "linux")]

mod common;

use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of a fixture port in a fresh directory (its path is unique to the
/// test, so that the processes of this grade can be told from others').
struct Port {
    dir: PathBuf,
    path: PathBuf,
}

impl Port {
    fn copy(rel: &str, as_name: &str) -> Port {
        let dir = common::tempdir_for("report");
        let path = dir.join(as_name);
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/ports")
            .join(rel);
        std::fs::copy(&src, &path).expect("copy the fixture");
        Port { dir, path }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // Cleanup proven: no process of this port is left anywhere.
        let marker = self.path.to_string_lossy().into_owned();
        let left: Vec<i32> = ipckit::audit::procfs::snapshot()
            .keys()
            .copied()
            .filter(|&pid| ipckit::audit::procfs::cmdline(pid).contains(&marker))
            .filter(|&pid| !ipckit::audit::procfs::cmdline(pid).contains(" grade "))
            .collect();
        let _ = std::fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            assert!(left.is_empty(), "processes of {marker} left: {left:?}");
        }
    }
}

/// `ipckit grade --exercise ID --format FORMAT --out FILE -- python3 PORT`.
fn grade_to_file(id: &str, format: &str, port: &Port, file: &str) -> (i32, String) {
    let out = port.out(file);
    let args: Vec<&OsStr> = vec![
        "grade".as_ref(),
        "--exercise".as_ref(),
        id.as_ref(),
        "--format".as_ref(),
        format.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--".as_ref(),
        "python3".as_ref(),
        port.path.as_os_str(),
    ];
    let (code, stdout, stderr) = common::ipckit_within(&args, 120);
    assert!(
        stdout.is_empty(),
        "--out: nothing on standard output; {stderr}"
    );
    (
        code,
        std::fs::read_to_string(&out).expect("the report file"),
    )
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok()
}

/// `xmllint --schema fixtures/junit/junit-10.xsd FILE`: Ok, or the message.
fn xmllint(file: &Path) -> Option<Result<(), String>> {
    if !tool("xmllint") {
        eprintln!("SKIP xmllint check: xmllint is not installed (apt-get install libxml2-utils)");
        return None;
    }
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/junit/junit-10.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd)
        .arg(file)
        .output()
        .expect("run xmllint");
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// Reads a JUnit file with a real consumer (junitparser when installed, else
/// python's own xml.etree) and returns one line per test case:
/// `suite|case|time|result|body length`.
fn consume(file: &Path) -> Vec<String> {
    let script = r#"
import sys
path = sys.argv[1]
try:
    import junitparser
    for suite in junitparser.JUnitXml.fromfile(path):
        for case in suite:
            res = case.result[0] if case.result else None
            kind = type(res).__name__.lower() if res is not None else "passed"
            body = (res.text or "") if res is not None else ""
            print("%s|%s|%s|%s|%d" % (suite.name, case.name, case.time, kind, len(body)))
    print("consumer=junitparser", file=sys.stderr)
except ImportError:
    import xml.etree.ElementTree as ET
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            kids = [k for k in case if k.tag in ("failure", "error", "skipped")]
            kind = kids[0].tag if kids else "passed"
            body = (kids[0].text or "") if kids else ""
            print("%s|%s|%s|%s|%d" % (suite.get("name"), case.get("name"), case.get("time"), kind, len(body)))
    print("consumer=xml.etree (pip install junitparser for the real one)", file=sys.stderr)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the JUnit consumer rejected the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stderr).trim());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn junit_stays_valid_xml_whatever_the_port_prints() {
    let port = Port::copy("broken/fork-basic-garbage.py", "fork-basic.py");
    let (code, xml) = grade_to_file("fork-basic", "junit", &port, "report.xml");
    assert_eq!(code, 1, "a failing port: {xml}");
    // Nothing XML 1.0 forbids, not even as a character reference.
    assert!(
        !xml.chars()
            .any(|c| (c as u32) < 0x20 && !"\n\t\r".contains(c)),
        "{xml}"
    );
    assert!(!xml.contains("&#x"), "{xml}");
    // What the student printed reaches the failure, made visible.
    assert!(xml.contains("new process \\x01created"), "{xml}");
    assert!(
        xml.contains("py\\x01thon"),
        "argv[0] with 0x01 shown: {xml}"
    );
    if let Some(r) = xmllint(&port.out("report.xml")) {
        r.expect("xmllint against junit-10.xsd");
    }
    let cases = consume(&port.out("report.xml"));
    assert_eq!(cases.len(), 7, "{cases:?}");
    for c in &cases {
        let f: Vec<&str> = c.split('|').collect();
        assert!(
            f[2].parse::<f64>().is_ok_and(|t| t > 0.0),
            "every case has a time: {c}"
        );
        if f[3] == "failure" {
            assert!(
                f[4].parse::<usize>().unwrap() > 0,
                "every failure has a body: {c}"
            );
        }
    }
    for failing in ["output", "exit", "zombies"] {
        assert!(
            cases.iter().any(
                |c| c.starts_with(&format!("fork-basic|{failing}|")) && c.contains("|failure|")
            ),
            "{failing} fails: {cases:?}"
        );
    }
    // The crash's standard error tail is in the exit failure's body.
    assert!(xml.contains("ValueError: bad"), "{xml}");
}

#[test]
fn the_junit_schema_check_can_fail() {
    // A negative control: xmllint with this schema refuses a case without a name.
    let dir = common::tempdir_for("xsd");
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        "<?xml version=\"1.0\"?><testsuites><testsuite name=\"s\" tests=\"1\"><testcase time=\"1\"/></testsuite></testsuites>",
    )
    .unwrap();
    if let Some(r) = xmllint(&bad) {
        assert!(
            r.is_err(),
            "the schema must refuse a testcase without a name"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn gradescope_schema() -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gradescope/results.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn assert_valid(v: &Value) {
    let errors: Vec<String> = gradescope_schema()
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "results.json is not Gradescope's format: {errors:?}\n{v:#}"
    );
}

#[test]
fn results_json_matches_gradescopes_documented_format() {
    let port = Port::copy("broken/fork-basic-garbage.py", "fork-basic.py");
    let (code, text) = grade_to_file("fork-basic", "gradescope", &port, "results.json");
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_valid(&v);
    assert!(
        v.get("max_score").is_none(),
        "no top-level max_score: {v:#}"
    );
    let tests = v["tests"].as_array().unwrap();
    let sum: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
    assert_eq!(v["score"].as_f64(), Some(sum));
    // What the student printed appears, cleaned.
    assert!(
        v["output"]
            .as_str()
            .unwrap()
            .contains("new process \\x01created"),
        "{v:#}"
    );
    let output_test = tests
        .iter()
        .find(|t| t["name"] == "fork-basic: output")
        .unwrap();
    assert_eq!(output_test["status"], "failed");
    assert!(
        output_test["output"]
            .as_str()
            .unwrap()
            .contains("it printed"),
        "{output_test:#}"
    );
}

#[test]
fn a_schema_check_refuses_what_gradescope_does_not_document() {
    let mut v: Value = serde_json::json!({"score": 1, "tests": [{"name": "t", "score": 1, "max_score": 1, "status": "passed"}]});
    assert!(gradescope_schema().is_valid(&v));
    v["max_score"] = 7.into();
    assert!(
        !gradescope_schema().is_valid(&v),
        "a top-level max_score is refused"
    );
    v.as_object_mut().unwrap().remove("max_score");
    v["tests"][0]["status"] = "skipped".into();
    assert!(
        !gradescope_schema().is_valid(&v),
        "a status other than passed/failed is refused"
    );
}

#[test]
fn a_hanging_port_never_shows_a_skipped_check_as_passed() {
    let port = Port::copy("broken/pi-pipe-hang.py", "pi-pipe.py");
    let out = port.out("results.json");
    let args: Vec<&OsStr> = vec![
        "grade".as_ref(),
        "--exercise".as_ref(),
        "pi-pipe".as_ref(),
        "--format".as_ref(),
        "gradescope".as_ref(),
        "--timeout".as_ref(),
        "2".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--".as_ref(),
        "python3".as_ref(),
        port.path.as_os_str(),
    ];
    let (code, _, stderr) = common::ipckit_within(&args, 120);
    assert_eq!(code, 1, "{stderr}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_valid(&v);
    for t in v["tests"].as_array().unwrap() {
        if t["status"] == "passed" {
            assert!(
                !t["output"].as_str().unwrap().starts_with("not checked"),
                "{t:#}"
            );
        }
        if t["name"].as_str().unwrap().contains("not checked") {
            assert!(t.get("status").is_none() && t["score"] == 0.0, "{t:#}");
        }
    }
}

#[test]
fn an_error_grade_scores_zero_of_the_full_maximum() {
    let port = Port::copy("broken/fork-basic-garbage.py", "pi-pipe.c"); // Python is no C
    let args: Vec<&OsStr> = vec![
        "grade".as_ref(),
        "--format".as_ref(),
        "gradescope".as_ref(),
        "--dir".as_ref(),
        port.dir.as_os_str(),
    ];
    let (_, stdout, stderr) = common::ipckit_within(&args, 300);
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    assert_valid(&v);
    let max: f64 = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["max_score"].as_f64().unwrap())
        .sum();
    assert_eq!((v["score"].as_f64(), max), (Some(0.0), 7.0), "{v:#}");
    assert!(
        v["tests"][0]["output"]
            .as_str()
            .unwrap()
            .contains("does not build"),
        "{v:#}"
    );
}

#[test]
fn dir_suites_are_named_after_each_port_file() {
    let port = Port::copy("good/pi-pipe.py", "pi-pipe.py");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ports/good/pi-pipe.c"),
        port.dir.join("pi-pipe.c"),
    )
    .unwrap();
    let args: Vec<&OsStr> = vec![
        "grade".as_ref(),
        "--format".as_ref(),
        "junit".as_ref(),
        "--dir".as_ref(),
        port.dir.as_os_str(),
    ];
    let (code, xml, stderr) = common::ipckit_within(&args, 300);
    assert_eq!(code, 0, "{xml} {stderr}");
    let file = port.out("dir.xml");
    std::fs::write(&file, &xml).unwrap();
    if let Some(r) = xmllint(&file) {
        r.expect("xmllint against junit-10.xsd");
    }
    let suites: Vec<String> = consume(&file)
        .iter()
        .map(|c| c.split('|').next().unwrap().to_string())
        .collect();
    assert!(
        suites.contains(&"pi-pipe.c".to_string()) && suites.contains(&"pi-pipe.py".to_string()),
        "{suites:?}"
    );
}

#[test]
fn json_reports_carry_a_schema_version_and_counts() {
    let port = Port::copy("broken/fork-basic-garbage.py", "fork-basic.py");
    let (_, text) = grade_to_file("fork-basic", "json", &port, "grade.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["counts"]["failed"], 4, "{v:#}");
    assert_eq!(v["counts"]["zombies"], 1, "{v:#}");
    assert_eq!(
        (v["score"].as_f64(), v["max_score"].as_f64()),
        (Some(3.0), Some(7.0))
    );
    let procs = v["runs"][0]["tree"]["procs"]
        .as_object()
        .expect("the evidence is in the report");
    let judged = procs.values().filter(|p| p["launcher"] == false).count();
    assert_eq!(judged, 2, "the port and its child: {v:#}");
}
