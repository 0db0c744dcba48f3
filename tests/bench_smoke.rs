//! `ipckit bench --quick`: every benchmark runs end to end through the
//! binary with tiny sizes, under the audit, and its JSON report is whole:
//! every benchmark of `--list`, every side measured with min <= median <= max,
//! and nothing left behind (no zombie, no orphan, no shared memory, queue or
//! System V object, no temporary file). The figures themselves mean nothing
//! at these sizes; `ipckit bench` measures.

mod common;

use common::{audited_cmd_with, ipckit};
use serde_json::Value;
use std::process::Command;

/// The names `ipckit bench --list` prints, in order.
fn listed() -> Vec<String> {
    let out = Command::new(ipckit())
        .args(["bench", "--list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

/// Runs `ipckit bench --quick --format json [NAME]` under the audit, with its
/// temporary files in a directory of its own that the audit watches, and
/// returns the report after checking the run left nothing behind.
fn quick_run(name: Option<&str>) -> Value {
    quick_run_in(name, |_| {})
}

/// [`quick_run`], calling `also` with the report's path before it is removed.
fn quick_run_in(name: Option<&str>, also: impl FnOnce(&std::path::Path)) -> Value {
    let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "bench-smoke-{}-{}",
        std::process::id(),
        name.unwrap_or("all")
    ));
    let tmp = scratch.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = scratch.join("bench.json");
    let (tmp_s, out_s) = (tmp.to_str().unwrap(), out.to_str().unwrap());
    let tmpdir = format!("TMPDIR={tmp_s}");
    let mut cmd = vec![
        "env",
        &tmpdir,
        ipckit(),
        "bench",
        "--quick",
        "--format",
        "json",
        "--out",
        out_s,
    ];
    cmd.extend(name);
    let run = audited_cmd_with(&["--watch", tmp_s], &cmd);
    run.assert_clean();
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    let report = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    also(&out);
    std::fs::remove_dir_all(&scratch).unwrap();
    report
}

/// Checks one figure: measured with min <= q1 <= median <= q3 <= max, or
/// skipped with a reason (only the Python side may be skipped).
fn check_figure(bench: &str, f: &Value) {
    if let Some(why) = f["skipped"].as_str() {
        assert_eq!(
            f["side"], "python",
            "{bench}: only Python may be skipped: {f}"
        );
        assert!(!why.is_empty(), "{bench}: skipped without a reason");
        println!("{bench}: python skipped: {why}");
        return;
    }
    let get = |k: &str| {
        f[k].as_f64()
            .unwrap_or_else(|| panic!("{bench}: no {k} in {f}"))
    };
    let order = ["min", "q1", "median", "q3", "max"].map(get);
    assert!(order[0] > 0.0, "{bench}: {f}");
    assert!(
        order.is_sorted(),
        "{bench}: not min <= q1 <= median <= q3 <= max: {f}"
    );
}

#[test]
#[serial_test::serial]
fn every_benchmark_runs_reports_its_spread_and_leaves_nothing_behind() {
    let report = quick_run_in(None, the_script_makes_a_table_row_per_benchmark);
    assert_eq!(report["quick"], true);
    assert!(
        report["machine"]["cpus"].as_u64().unwrap() >= 1,
        "{}",
        report["machine"]
    );
    assert!(
        report["date"].as_str().unwrap().ends_with('Z'),
        "{}",
        report["date"]
    );
    let benches = report["benchmarks"].as_array().unwrap();
    let names: Vec<&str> = benches
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        listed(),
        "the report has every listed benchmark, in order"
    );
    for b in benches {
        let name = b["name"].as_str().unwrap();
        let figures = b["figures"].as_array().unwrap();
        for f in figures {
            check_figure(name, f);
        }
        for side in ["ipckit", "python"] {
            assert!(
                figures.iter().any(|f| f["side"] == side),
                "{name}: no {side} figure"
            );
        }
        assert!(
            figures.iter().filter(|f| f["side"] != "python").count() >= 2,
            "{name}: the kit and at least one baseline"
        );
    }
    let skipped = |bench: &Value| {
        let b = benches.iter().find(|b| b["name"] == *bench).unwrap();
        b["figures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["skipped"].is_string())
    };
    let targets = report["targets"].as_array().unwrap();
    assert!(
        targets.len() >= 10 + 6,
        "a target per pi-* program and per mechanism"
    );
    for t in targets {
        assert!(
            t["ratio"].as_f64().is_some() || skipped(&t["bench"]),
            "target not measured although every side ran: {t}"
        );
    }
}

#[test]
#[serial_test::serial]
fn one_benchmark_by_name_and_an_unknown_name_is_refused() {
    let report = quick_run(Some("pipe"));
    let benches = report["benchmarks"].as_array().unwrap();
    assert_eq!(benches.len(), 1);
    assert_eq!(benches[0]["name"], "pipe");
    let out = Command::new(ipckit())
        .args(["bench", "no-such-bench"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no benchmark called") && err.contains("--list"),
        "{err}"
    );
}

/// `scripts/bench-table.py` on a report: a README with the markers gets a
/// row for every benchmark at every placement, and a target row each.
fn the_script_makes_a_table_row_per_benchmark(report: &std::path::Path) {
    let readme = report.with_file_name("README.md");
    std::fs::write(
        &readme,
        "# x\n<!-- bench-table:begin -->\nold\n<!-- bench-table:end -->\ntail\n",
    )
    .unwrap();
    let status = Command::new("python3")
        .arg(script())
        .args([report, &readme])
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(
        !text.contains("old") && text.ends_with("<!-- bench-table:end -->\ntail\n"),
        "{text}"
    );
    for name in listed() {
        assert!(
            text.contains(&format!("| `{name}` | scheduler |")),
            "no row for {name}:\n{text}"
        );
    }
    for goal in [
        "ipckit-simplex / raw-pipe <= 1.3",
        "ipckit / raw-socketpair <= 1.3",
    ] {
        assert!(
            text.contains(&format!("| `connection` | cross-core | `{goal}` |")),
            "no target row {goal}:\n{text}"
        );
    }
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-table.py")
}

#[test]
fn the_readme_tables_are_those_of_the_committed_report() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(script())
        .arg("--check")
        .args([root.join("benches/results.json"), root.join("README.md")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
