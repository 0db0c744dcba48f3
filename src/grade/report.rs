//! Grade reports: text (colour on a terminal unless `NO_COLOR` is set), JSON
//! (DESIGN.md's shape), JUnit XML and Gradescope's `results.json`.

use super::{Grade, Status, Verdict};

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text with a summary line.
    Text,
    /// One JSON object per grade (an array for several).
    Json,
    /// JUnit XML: one test suite per exercise, one test case per check.
    Junit,
    /// Gradescope autograder `results.json`: one test per check.
    Gradescope,
}

/// Renders grades. `several` selects the array/table forms (`--dir`, demo).
pub fn render(grades: &[Grade], format: Format, several: bool, colour: bool) -> String {
    match format {
        Format::Text if several => table(grades, colour),
        Format::Text => grades.iter().map(|g| text(g, colour)).collect(),
        Format::Json if several => pretty(&grades),
        Format::Json => grades.iter().map(pretty).collect(),
        Format::Junit => junit(grades),
        Format::Gradescope => gradescope(grades),
    }
}

/// True when colour should be used on standard output: a terminal, and
/// `NO_COLOR` unset or empty (<https://no-color.org>).
pub fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("grade serialises") + "\n"
}

fn paint(s: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn verdict_word(v: Verdict, colour: bool) -> String {
    match v {
        Verdict::Pass => paint("PASS", "1;32", colour),
        Verdict::Fail => paint("FAIL", "1;31", colour),
        Verdict::Error => paint("ERROR", "1;33", colour),
    }
}

fn status_word(s: Status, colour: bool) -> String {
    match s {
        Status::Pass => paint("pass", "32", colour),
        Status::Fail => paint("FAIL", "31", colour),
        Status::Skip => paint("skip", "2", colour),
    }
}

/// One grade as text: a line per check, then the summary line.
pub fn text(g: &Grade, colour: bool) -> String {
    let mut out = format!("grade {}\n", g.exercise);
    for c in &g.checks {
        out.push_str(&format!(
            "  {:<10} {}  {}\n",
            c.name,
            status_word(c.status, colour),
            c.detail
        ));
    }
    if let Some(e) = &g.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    let n = |s: Status| g.checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{}: {} ({} passed, {} failed, {} skipped; {:.2} s)\n",
        g.exercise,
        verdict_word(g.verdict, colour),
        n(Status::Pass),
        n(Status::Fail),
        n(Status::Skip),
        g.seconds
    ));
    out
}

/// Several grades as a table (exercise, verdict, time, zombies, orphans,
/// leaks, failed checks) and a summary line.
pub fn table(grades: &[Grade], colour: bool) -> String {
    let several_ports = grades.iter().any(|g| g.port.is_some());
    let last = if several_ports {
        "[port] failed checks"
    } else {
        "failed checks"
    };
    let mut out = format!(
        "{:<18} {:<7} {:>8} {:>8} {:>8} {:>6}  {last}\n",
        "exercise", "verdict", "seconds", "zombies", "orphans", "leaks"
    );
    for g in grades {
        let failed: Vec<&str> = g
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name.as_str())
            .collect();
        let mut why = match &g.error {
            Some(e) => e.lines().next().unwrap_or("").to_string(),
            None => failed.join(", "),
        };
        if several_ports && let Some(port) = &g.port {
            why = format!("[{port}] {why}");
        }
        // Pad before painting so that escape codes do not break the columns.
        let word = format!("{:<7}", verdict_word(g.verdict, false));
        let word = word.replacen(
            &verdict_word(g.verdict, false),
            &verdict_word(g.verdict, colour),
            1,
        );
        out.push_str(&format!(
            "{:<18} {word} {:>8.2} {:>8} {:>8} {:>6}  {why}\n",
            g.exercise, g.seconds, g.counts.zombies, g.counts.orphans, g.counts.leaks
        ));
    }
    let count = |v: Verdict| grades.iter().filter(|g| g.verdict == v).count();
    out.push_str(&format!(
        "{} graded: {} passed, {} failed, {} could not be graded\n",
        grades.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error)
    ));
    out
}

/// Escapes text for XML attributes and content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {
                out.push_str(&format!("&#x{:x};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: `<testsuites>` with one `<testsuite>` per exercise and one
/// `<testcase>` per check (`<failure>` / `<skipped>`; a grade that could not
/// run is one `<error>`).
pub fn junit(grades: &[Grade]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures: usize = grades
        .iter()
        .flat_map(|g| &g.checks)
        .filter(|c| c.status == Status::Fail)
        .count();
    let errors = grades
        .iter()
        .filter(|g| g.verdict == Verdict::Error)
        .count();
    out.push_str(&format!(
        "<testsuites name=\"ipckit grade\" failures=\"{failures}\" errors=\"{errors}\">\n"
    ));
    for g in grades {
        let name = xml_escape(&g.exercise);
        let f = g.checks.iter().filter(|c| c.status == Status::Fail).count();
        let s = g.checks.iter().filter(|c| c.status == Status::Skip).count();
        let tests = g.checks.len().max(1);
        let e = usize::from(g.error.is_some());
        out.push_str(&format!(
            "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{:.3}\">\n",
            g.seconds
        ));
        if let Some(err) = &g.error {
            out.push_str(&format!(
                "    <testcase classname=\"{name}\" name=\"grade\"><error message=\"{}\"/></testcase>\n",
                xml_escape(err)
            ));
        }
        for c in &g.checks {
            let detail = xml_escape(&c.detail);
            let body = match c.status {
                Status::Pass => format!("<system-out>{detail}</system-out>"),
                Status::Fail => format!("<failure message=\"{detail}\"/>"),
                Status::Skip => format!("<skipped message=\"{detail}\"/>"),
            };
            out.push_str(&format!(
                "    <testcase classname=\"{name}\" name=\"{}\">{body}</testcase>\n",
                xml_escape(&c.name)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Gradescope's `results.json`: one test per check (score 1 of 1 when it
/// passed, 0 of 1 when it failed, 0 of 0 when skipped), visible to students.
pub fn gradescope(grades: &[Grade]) -> String {
    let mut tests = Vec::new();
    for g in grades {
        if let Some(e) = &g.error {
            tests.push(serde_json::json!({
                "name": format!("{}: grade", g.exercise), "score": 0, "max_score": 1,
                "status": "failed", "output": format!("the grade could not run: {e}"), "visibility": "visible"
            }));
        }
        for c in &g.checks {
            let (score, max, status) = match c.status {
                Status::Pass => (1, 1, "passed"),
                Status::Fail => (0, 1, "failed"),
                Status::Skip => (0, 0, "passed"),
            };
            let output = if c.status == Status::Skip {
                format!("skipped: {}", c.detail)
            } else {
                c.detail.clone()
            };
            tests.push(serde_json::json!({
                "name": format!("{}: {}", g.exercise, c.name), "score": score, "max_score": max,
                "status": status, "output": output, "visibility": "visible"
            }));
        }
    }
    let score: i64 = tests.iter().map(|t| t["score"].as_i64().unwrap_or(0)).sum();
    let max: i64 = tests
        .iter()
        .map(|t| t["max_score"].as_i64().unwrap_or(0))
        .sum();
    let secs: f64 = grades.iter().map(|g| g.seconds).sum();
    pretty(&serde_json::json!({
        "score": score, "max_score": max, "execution_time": secs.ceil() as i64,
        "visibility": "visible", "stdout_visibility": "hidden", "tests": tests
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::Check;

    fn sample() -> Grade {
        Grade {
            exercise: "pi-pipe".into(),
            verdict: Verdict::Fail,
            checks: vec![
                Check {
                    name: "output".into(),
                    status: Status::Pass,
                    detail: "ok <&>".into(),
                },
                Check {
                    name: "zombies".into(),
                    status: Status::Fail,
                    detail: "child \"1\" was a zombie".into(),
                },
                Check {
                    name: "mechanism".into(),
                    status: Status::Skip,
                    detail: "untraced".into(),
                },
            ],
            seconds: 0.5,
            error: None,
            port: None,
            counts: Default::default(),
        }
    }

    #[test]
    fn json_has_the_design_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&[sample()], Format::Json, false, false)).unwrap();
        assert_eq!(v["exercise"], "pi-pipe");
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["checks"][1]["status"], "fail");
        assert!(v.get("error").is_none());
        let arr: serde_json::Value =
            serde_json::from_str(&render(&[sample()], Format::Json, true, false)).unwrap();
        assert!(arr.is_array());
    }

    #[test]
    fn junit_escapes_and_counts() {
        let x = junit(&[sample()]);
        assert!(
            x.contains("ok &lt;&amp;&gt;") && x.contains("child &quot;1&quot;"),
            "{x}"
        );
        assert!(
            x.contains("failures=\"1\"") && x.contains("<skipped"),
            "{x}"
        );
    }

    #[test]
    fn gradescope_scores_one_test_per_check() {
        let v: serde_json::Value = serde_json::from_str(&gradescope(&[sample()])).unwrap();
        assert_eq!(v["tests"].as_array().unwrap().len(), 3);
        assert_eq!(
            (v["score"].as_i64(), v["max_score"].as_i64()),
            (Some(1), Some(2))
        );
    }

    #[test]
    fn text_has_a_summary_line_and_no_colour_when_off() {
        let t = text(&sample(), false);
        assert!(
            t.ends_with("pi-pipe: FAIL (1 passed, 1 failed, 1 skipped; 0.50 s)\n"),
            "{t}"
        );
        assert!(!t.contains('\x1b'));
        assert!(text(&sample(), true).contains("\x1b[1;31mFAIL"));
    }
}
