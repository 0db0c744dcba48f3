//! `ipckit init gradescope` and `ipckit init github-classroom`: a complete
//! autograder for a platform, written from the running `ipckit` binary.
//!
//! - Gradescope: `OUT/setup.sh` (installs python3 and a C compiler),
//!   `OUT/run_autograder` (grades `$ROOT/submission` into
//!   `$ROOT/results/results.json`, `ROOT` being `IPCKIT_AUTOGRADER_ROOT` or
//!   `/autograder`), `OUT/ipckit` (this binary), `OUT/specs/ID.toml` (the specs
//!   `run_autograder` grades with, `grade --specs`: edit one and zip the
//!   folder again to change what is graded) and `OUT/autograder.zip` holding them
//!   at its root, as Gradescope requires.
//! - GitHub Classroom: `OUT/.github/workflows/ipckit.yml`, a workflow that
//!   grades the repository's ports on every push, publishes the JUnit report
//!   as a check with a job summary and keeps it as an artifact; and
//!   `OUT/.ipckit/ipckit` (this binary).

use super::spec;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The platform to write an autograder for.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Platform {
    /// A Gradescope autograder: setup.sh, run_autograder, the specs, zipped.
    Gradescope {
        /// The exercises a submission must hold (repeat, or separate with commas).
        #[arg(long, required = true, value_delimiter = ',', num_args = 1..)]
        exercise: Vec<String>,
        /// Where the files and autograder.zip go.
        #[arg(long, default_value = "gradescope-autograder")]
        out: PathBuf,
    },
    /// A GitHub Classroom workflow (.github/workflows/ipckit.yml).
    GithubClassroom {
        /// The exercises a repository must hold (repeat, or separate with commas).
        #[arg(long, required = true, value_delimiter = ',', num_args = 1..)]
        exercise: Vec<String>,
        /// The root of the assignment's template repository.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Writes the autograder of `platform`.
pub fn run(platform: &Platform) -> Result<()> {
    match platform {
        Platform::Gradescope { exercise, out } => gradescope(exercise, out),
        Platform::GithubClassroom { exercise, out } => github_classroom(exercise, out),
    }
}

fn check_ids(ids: &[String]) -> Result<()> {
    ids.iter().try_for_each(|id| spec::builtin(id).map(drop))
}

fn write(path: &Path, text: &[u8], executable: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display().to_string(), e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path.display().to_string(), e))
}

fn this_binary() -> Result<Vec<u8>> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    std::fs::read(&exe).map_err(|e| Error::io(exe.display().to_string(), e))
}

/// The `setup.sh` of the Gradescope autograder.
pub const SETUP_SH: &str = r#"#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# The graded ports are Python, C or Rust: the grader needs python3 and a C
# compiler (rustc only for .rs ports: uncomment the last line).
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 gcc libc6-dev
chmod +x /autograder/source/ipckit /autograder/source/run_autograder
# curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
"#;

fn run_autograder(ids: &[String]) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades the student's ports in
# $ROOT/submission (files named after the exercise IDs: {first}.py, {first}.c,
# {first}.rs, ...) and writes Gradescope's $ROOT/results/results.json.
# ROOT is $IPCKIT_AUTOGRADER_ROOT when set (to try it on your machine), else /autograder.
set -uo pipefail
ROOT="${{IPCKIT_AUTOGRADER_ROOT:-/autograder}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
IPCKIT="$ROOT/source/ipckit"
[ -x "$IPCKIT" ] || IPCKIT="$HERE/ipckit"
# The specs of the zip (specs/ID.toml) are what is graded, not ipckit's built-in ones:
# edit them and zip the folder again to change a test, its points or its visibility.
SPECS="$ROOT/source/specs"
[ -d "$SPECS" ] || SPECS="$HERE/specs"
mkdir -p "$ROOT/results"
cd "$ROOT"
"$IPCKIT" grade --dir "$ROOT/submission" --specs "$SPECS" --require {ids} \
  --format gradescope --out "$ROOT/results/results.json"
status=$?
# 0: every check passed, 1: some failed (both are a score); 2: no results.
if [ "$status" -ge 2 ] && [ ! -s "$ROOT/results/results.json" ]; then
  printf '{{"score": 0, "output": "ipckit could not grade this submission (exit %s): see the autograder output", "tests": []}}\n' "$status" > "$ROOT/results/results.json"
fi
exit 0
"#,
        first = ids[0],
        ids = ids.join(",")
    )
}

fn gradescope(ids: &[String], out: &Path) -> Result<()> {
    check_ids(ids)?;
    let mut files: Vec<(String, Vec<u8>, bool)> = vec![
        ("setup.sh".into(), SETUP_SH.as_bytes().to_vec(), true),
        (
            "run_autograder".into(),
            run_autograder(ids).into_bytes(),
            true,
        ),
        ("ipckit".into(), this_binary()?, true),
    ];
    for id in ids {
        let (_, text) = spec::BUILTIN
            .iter()
            .find(|(i, _)| i == id)
            .expect("checked above");
        files.push((format!("specs/{id}.toml"), text.as_bytes().to_vec(), false));
    }
    for (name, bytes, exec) in &files {
        write(&out.join(name), bytes, *exec)?;
    }
    zip(&out.join("autograder.zip"), &files)?;
    eprintln!(
        "wrote {}: upload autograder.zip to Gradescope (Configure Autograder > Zip file upload)",
        out.display()
    );
    Ok(())
}

/// A zip of `files` (name, bytes, executable) at the archive's root.
fn zip(path: &Path, files: &[(String, Vec<u8>, bool)]) -> Result<()> {
    use std::io::Write;
    let f = std::fs::File::create(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mut z = zip::ZipWriter::new(f);
    let zerr =
        |e: zip::result::ZipError| Error::invalid("zip file", format!("{}: {e}", path.display()));
    for (name, bytes, exec) in files {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(if *exec { 0o755 } else { 0o644 });
        z.start_file(name.as_str(), opts).map_err(zerr)?;
        z.write_all(bytes)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    z.finish().map_err(zerr)?;
    Ok(())
}

fn workflow(ids: &[String]) -> String {
    format!(
        r#"# Written by `ipckit init github-classroom`: grades the student's ports
# (files named after the exercise IDs at the repository's root) on every push.
name: ipckit grade
on:
  push:
  workflow_dispatch:
permissions:
  contents: read
  checks: write
jobs:
  grade:
    runs-on: ubuntu-latest
    timeout-minutes: 20
    steps:
      - uses: actions/checkout@v4
      - name: Grade
        # As root, each port runs in private namespaces and a control group.
        run: |
          chmod +x .ipckit/ipckit
          sudo .ipckit/ipckit grade --dir . --require {ids} --format junit --out ipckit-report.xml || true
      - name: Publish the JUnit report
        if: always()
        uses: mikepenz/action-junit-report@v4
        with:
          report_paths: ipckit-report.xml
          fail_on_failure: true
          include_passed: true
          detailed_summary: true
      - name: Keep the report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: ipckit-report
          path: ipckit-report.xml
"#,
        ids = ids.join(",")
    )
}

fn github_classroom(ids: &[String], out: &Path) -> Result<()> {
    check_ids(ids)?;
    write(
        &out.join(".github/workflows/ipckit.yml"),
        workflow(ids).as_bytes(),
        false,
    )?;
    write(&out.join(".ipckit/ipckit"), &this_binary()?, true)?;
    eprintln!(
        "wrote {}/.github/workflows/ipckit.yml and .ipckit/ipckit: commit both to the assignment's template repository",
        out.display()
    );
    Ok(())
}
