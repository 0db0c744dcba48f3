//! `ipckit init gradescope` writes a complete autograder; its
//! `run_autograder`, run against a folder laid out like Gradescope's
//! (`IPCKIT_AUTOGRADER_ROOT`), writes a `results.json` in Gradescope's
//! documented format. `ipckit init github-classroom` writes a workflow.

#![cfg(target_os = "linux")]

mod common;

use serde_json::Value;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

fn schema() -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gradescope/results.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn the_gradescope_autograder_grades_a_submission_laid_out_like_gradescopes() {
    let tmp = common::tempdir_for("init");
    let out = tmp.join("autograder");
    let args: Vec<&OsStr> = vec![
        "init".as_ref(),
        "gradescope".as_ref(),
        "--exercise".as_ref(),
        "pi-pipe,fork-basic".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    let (code, _, stderr) = common::ipckit_within(&args, 60);
    assert_eq!(code, 0, "{stderr}");
    // The zip holds the files at its root, as Gradescope requires.
    let zip = std::fs::File::open(out.join("autograder.zip")).expect("autograder.zip");
    let mut zip = zip::ZipArchive::new(zip).expect("a zip archive");
    let mut names: Vec<String> = zip
        .file_names()
        .map(|n| n.expect("a file name").to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ipckit",
            "run_autograder",
            "setup.sh",
            "specs/fork-basic.toml",
            "specs/pi-pipe.toml"
        ]
    );
    // Gradescope's layout: /autograder/source (the zip, unpacked), /autograder/submission.
    let root = tmp.join("root");
    let source = root.join("source");
    zip.extract(&source).expect("unzip");
    // The autograder grades with the zip's specs, not the built-in ones: a
    // teacher's edit (points, visibility) reaches results.json.
    let zipped_spec = source.join("specs/pi-pipe.toml");
    let mut text = std::fs::read_to_string(&zipped_spec).unwrap();
    text.push_str(
        "\n[scoring]\nruns = [10, 10]\n[scoring.checks.output]\npoints = 4\nvisibility = \"hidden\"\n",
    );
    std::fs::write(&zipped_spec, text).unwrap();
    let submission = root.join("submission");
    std::fs::create_dir_all(&submission).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ports/good/pi-pipe.py"),
        submission.join("pi-pipe.py"),
    )
    .unwrap();
    let run = Command::new("timeout")
        .args(["300", "bash"])
        .arg(source.join("run_autograder"))
        .env("IPCKIT_AUTOGRADER_ROOT", &root)
        .output()
        .expect("run run_autograder");
    let log = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "run_autograder: {log}");
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("results/results.json")).expect("results.json"),
    )
    .unwrap_or_else(|e| panic!("{e}: {log}"));
    let errors: Vec<String> = schema()
        .iter_errors(&results)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{results:#}");
    let tests = results["tests"].as_array().unwrap();
    let max: f64 = tests.iter().map(|t| t["max_score"].as_f64().unwrap()).sum();
    // pi-pipe (the zip's spec): 6 checks at 1, output at 4, two runs at 10;
    // fork-basic (missing): 7.
    assert_eq!(
        (results["score"].as_f64(), max),
        (Some(30.0), 37.0),
        "{results:#}"
    );
    let output = tests
        .iter()
        .find(|t| t["name"].as_str().unwrap().contains("pi-pipe") && t["max_score"] == 4.0)
        .unwrap_or_else(|| panic!("pi-pipe's output test: {results:#}"));
    assert_eq!(output["visibility"], "hidden", "{output:#}");
    let missing = tests
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with("fork-basic"))
        .unwrap();
    assert!(
        missing["output"].as_str().unwrap().contains("missing"),
        "{missing:#}"
    );
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn github_classroom_gets_a_workflow_and_the_binary() {
    let tmp = common::tempdir_for("init-gh");
    let args: Vec<&OsStr> = vec![
        "init".as_ref(),
        "github-classroom".as_ref(),
        "--exercise".as_ref(),
        "pi-pipe".as_ref(),
        "--out".as_ref(),
        tmp.as_os_str(),
    ];
    let (code, _, stderr) = common::ipckit_within(&args, 60);
    assert_eq!(code, 0, "{stderr}");
    let wf = std::fs::read_to_string(tmp.join(".github/workflows/ipckit.yml")).unwrap();
    assert!(
        wf.contains("grade --dir . --require pi-pipe --format junit --out ipckit-report.xml"),
        "{wf}"
    );
    assert!(
        wf.contains("action-junit-report") && wf.contains("report_paths: ipckit-report.xml"),
        "{wf}"
    );
    assert!(tmp.join(".ipckit/ipckit").is_file());
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn init_refuses_an_unknown_exercise_with_the_nearest() {
    let tmp = common::tempdir_for("init-bad");
    let args: Vec<&OsStr> = vec![
        "init".as_ref(),
        "gradescope".as_ref(),
        "--exercise".as_ref(),
        "fork-basci".as_ref(),
        "--out".as_ref(),
        tmp.as_os_str(),
    ];
    let (code, _, stderr) = common::ipckit_within(&args, 60);
    assert_eq!(code, 2);
    assert!(stderr.contains("did you mean \"fork-basic\"?"), "{stderr}");
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn completions_and_a_man_page_come_from_the_command_line_definition() {
    let (code, bash, _) = common::ipckit_within(&["completions".as_ref(), "bash".as_ref()], 60);
    assert_eq!(code, 0);
    assert!(
        bash.contains("_ipckit") && bash.contains("--report-dir"),
        "{bash}"
    );
    let (code, man, _) = common::ipckit_within(&["man".as_ref()], 60);
    assert_eq!(code, 0);
    assert!(
        man.starts_with(".ie") || man.contains(".TH ipckit"),
        "{man}"
    );
}

#[test]
fn color_always_never_and_no_color() {
    let port = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ports/good/exit-status.py");
    let grade = |color: &str, no_color: bool| {
        // `timeout`: a deadline for the whole grade.
        let mut cmd = Command::new("timeout");
        cmd.args([
            "120",
            common::ipckit(),
            "grade",
            "--color",
            color,
            "--exercise",
            "exit-status",
            "--",
            "python3",
        ])
        .arg(&port);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().expect("run ipckit");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        grade("always", true).contains("\x1b[1;32mPASS"),
        "always wins over NO_COLOR"
    );
    assert!(!grade("never", false).contains('\x1b'));
    assert!(
        !grade("auto", false).contains('\x1b'),
        "auto: standard output is no terminal"
    );
}
