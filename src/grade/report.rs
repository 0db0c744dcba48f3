//! Grade reports: text (colour on a terminal unless `NO_COLOR` is set), JSON
//! (DESIGN.md's shape), JUnit XML and Gradescope's `results.json`.

use super::containment::Containment;
use super::{Grade, Status, Verdict, feedback, scoring};

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
    /// One self-contained HTML page with a timeline per run ([`super::html`]).
    Html,
}

/// Renders grades. `several` selects the array/table forms (`--dir`, demo).
pub fn render(grades: &[Grade], format: Format, several: bool, colour: bool) -> String {
    match format {
        Format::Text if several => table(grades, colour),
        Format::Text => grades.iter().map(|g| text(g, colour)).collect(),
        Format::Json => json(grades, several),
        Format::Junit => junit(grades),
        Format::Gradescope => gradescope(grades),
        Format::Html => super::html::page(grades),
    }
}

/// True when colour should be used on standard output: as `--color` says,
/// else a terminal and `NO_COLOR` unset or empty (<https://no-color.org>).
pub fn colour_wanted() -> bool {
    colour_for(true)
}

/// Colour for a report going to standard output (`to_stdout`) or a file:
/// `--color always|never` decide; `auto` means standard output is a
/// terminal and `NO_COLOR` is unset or empty. A file gets colour only with
/// `always`.
pub fn colour_for(to_stdout: bool) -> bool {
    use std::io::IsTerminal;
    match COLOUR.get().copied().flatten() {
        Some(forced) => forced,
        None => {
            to_stdout
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

static COLOUR: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();

/// `--color always` (`Some(true)`), `never` (`Some(false)`) or `auto` (`None`):
/// set once, by the command line.
pub fn set_colour(choice: Option<bool>) {
    let _ = COLOUR.set(choice);
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
        Verdict::Incomplete => paint("INCOMPLETE", "1;35", colour),
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
    if let Some(c) = &g.containment {
        out.push_str(&containment_text(c));
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
    let incomplete = match count(Verdict::Incomplete) {
        0 => String::new(),
        n => format!(", {n} incomplete"),
    };
    out.push_str(&format!(
        "{} graded: {} passed, {} failed, {} could not be graded{incomplete}\n",
        grades.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error)
    ));
    // The grades of one table ran in one environment: its containment once,
    // then what each incomplete grade could not check.
    if let Some(c) = grades.iter().find_map(|g| g.containment.as_ref()) {
        let shared = Containment {
            not_checked: Vec::new(),
            ..c.clone()
        };
        out.push_str(&containment_text(&shared));
    }
    for g in grades {
        for n in g.containment.iter().flat_map(|c| &c.not_checked) {
            out.push_str(&format!("  {}: not checked: {n}\n", title(g)));
        }
    }
    out
}

/// The `containment` section as text: one line per piece, then notes and
/// the checks that could not be performed.
pub fn containment_text(c: &Containment) -> String {
    let mut out = String::from("  containment:\n");
    for line in c.lines() {
        out.push_str(&format!("    {line}\n"));
    }
    out
}

/// The `containment` section as JUnit `<property>` elements (the verdict,
/// one per piece, notes, the checks that could not be performed).
fn junit_properties(g: &Grade, c: &Containment, out: &mut String) {
    out.push_str("    <properties>\n");
    out.push_str(&format!(
        "      <property name=\"verdict\" value=\"{}\"/>\n",
        xml_escape(&format!("{:?}", g.verdict).to_lowercase())
    ));
    let pieces = c.pieces().map(|(name, p)| {
        let word = if p.held { "yes" } else { "no" };
        (
            name.replace(' ', "-"),
            format!("{word}: {}; {}", p.how, p.meaning),
        )
    });
    let notes = c.notes.iter().map(|n| ("note".to_string(), n.clone()));
    let skipped = c
        .not_checked
        .iter()
        .map(|n| ("not-checked".to_string(), n.clone()));
    for (key, value) in pieces.into_iter().chain(notes).chain(skipped) {
        out.push_str(&format!(
            "      <property name=\"containment.{key}\" value=\"{}\"/>\n",
            xml_escape(&value)
        ));
    }
    out.push_str("    </properties>\n");
}

/// Escapes text for XML 1.0 attributes and content. Characters XML 1.0
/// cannot hold at all (control characters but tab, newline and carriage
/// return; U+FFFE, U+FFFF) are shown as a visible `\xNN` instead: a report
/// stays well-formed whatever a port printed.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The name of a grade's suite or section: the port's file when known
/// (`pi-pipe.c` and `pi-pipe.py` are two suites), else the exercise ID.
pub fn title(g: &Grade) -> String {
    g.port.clone().unwrap_or_else(|| g.exercise.clone())
}

/// Unique names for several grades: a name given twice gets ` (2)`, ...
pub fn unique_titles(grades: &[Grade]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    grades
        .iter()
        .map(|g| {
            let t = title(g);
            let n = seen.entry(t.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { t } else { format!("{t} ({n})") }
        })
        .collect()
}

/// The first line of a text, at most 200 characters: a `message` attribute.
pub fn headline(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut h: String = first.chars().take(200).collect();
    if h.len() < first.len() {
        h.push_str(" ...");
    }
    feedback::clean(&h, 1024)
}

/// JUnit XML: `<testsuites>` with one `<testsuite>` per graded port (named
/// after its file when there are several) and one `<testcase>` per check,
/// each with a `time` (the runs every check judged). A failed check is a
/// `<failure>` whose body says what the student can act on
/// ([`feedback::body`]); a skipped one is `<skipped>`; a grade that could not
/// run is one `<error>` with the reason. The file is XML 1.0 whatever the
/// port printed (see [`xml_escape`]).
pub fn junit(grades: &[Grade]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let count = |s: Status| {
        grades
            .iter()
            .flat_map(|g| &g.checks)
            .filter(|c| c.status == s)
            .count()
    };
    let errors = grades.iter().filter(|g| g.error.is_some()).count();
    let tests: usize = grades.iter().map(|g| g.checks.len().max(1)).sum();
    let secs: f64 = grades.iter().map(|g| g.seconds).sum();
    out.push_str(&format!(
        "<testsuites name=\"ipckit grade\" tests=\"{tests}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\" time=\"{secs:.3}\">\n",
        count(Status::Fail),
        count(Status::Skip)
    ));
    for (g, suite) in grades.iter().zip(unique_titles(grades)) {
        junit_suite(g, &suite, &mut out);
    }
    out.push_str("</testsuites>\n");
    out
}

fn junit_suite(g: &Grade, suite: &str, out: &mut String) {
    let name = xml_escape(suite);
    let n = |s: Status| g.checks.iter().filter(|c| c.status == s).count();
    let e = usize::from(g.error.is_some());
    let time = format!("{:.3}", g.seconds);
    out.push_str(&format!(
        "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"{e}\" skipped=\"{}\" time=\"{time}\">\n",
        g.checks.len().max(1),
        n(Status::Fail),
        n(Status::Skip)
    ));
    if let Some(c) = &g.containment {
        junit_properties(g, c, out);
    }
    if let Some(err) = &g.error {
        out.push_str(&format!(
            "    <testcase classname=\"{name}\" name=\"grade\" time=\"{time}\"><error message=\"{}\" type=\"error\">{}</error></testcase>\n",
            xml_escape(&headline(err)),
            xml_escape(&feedback::clean(err, feedback::BODY_CAP))
        ));
    }
    for c in &g.checks {
        let detail = xml_escape(&headline(&c.detail));
        let body = match c.status {
            Status::Pass => format!(
                "<system-out>{}</system-out>",
                xml_escape(&feedback::clean(&c.detail, feedback::BODY_CAP))
            ),
            Status::Fail => format!(
                "<failure message=\"{detail}\" type=\"{}\">{}</failure>",
                xml_escape(&c.name),
                xml_escape(&feedback::body(g, c))
            ),
            Status::Skip => format!("<skipped message=\"{detail}\"/>"),
        };
        out.push_str(&format!(
            "    <testcase classname=\"{name}\" name=\"{}\" time=\"{time}\">{body}</testcase>\n",
            xml_escape(&c.name)
        ));
    }
    out.push_str("  </testsuite>\n");
}

/// The version of the JSON report's shape: bumped when a field changes meaning.
pub const JSON_SCHEMA_VERSION: u32 = 2;

/// One grade as the JSON object of the report: DESIGN's shape (`exercise`,
/// `verdict`, `checks`, `seconds`, ...) plus `schema_version`, `counts`
/// (checks passed, failed and skipped; zombies, orphans, leaks), `score`
/// and `max_score`.
pub fn json_value(g: &Grade) -> serde_json::Value {
    let mut v = serde_json::to_value(g).expect("grade serialises");
    let n = |s: Status| g.checks.iter().filter(|c| c.status == s).count();
    let sc = scoring::score(g);
    let extra = serde_json::json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "counts": {
            "passed": n(Status::Pass), "failed": n(Status::Fail), "skipped": n(Status::Skip),
            "zombies": g.counts.zombies, "orphans": g.counts.orphans, "leaks": g.counts.leaks,
        },
        "score": sc.score,
        "max_score": sc.max,
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

fn json(grades: &[Grade], several: bool) -> String {
    if several {
        pretty(&grades.iter().map(json_value).collect::<Vec<_>>())
    } else {
        grades.iter().map(|g| pretty(&json_value(g))).collect()
    }
}

/// Gradescope's `results.json`, in its documented format: one test per check
/// worth the check's points (`score`, `max_score`, `status`, `output`,
/// `visibility`, `tags`), one per run that is worth points, and the total
/// `score`. A skipped check scores 0 and has no `passed` status (its name
/// says it was not checked); a grade that could not run scores 0 out of the
/// exercise's full maximum. The top-level `output` holds what each port
/// printed.
pub fn gradescope(grades: &[Grade]) -> String {
    let several = grades.len() > 1;
    let mut tests = Vec::new();
    let mut output = String::new();
    let mut total = 0.0;
    for (g, title) in grades.iter().zip(unique_titles(grades)) {
        let sc = scoring::score(g);
        total += sc.score;
        for item in &sc.items {
            if item.max == 0.0 && item.outcome == scoring::Outcome::NotChecked {
                continue; // does not apply and is worth nothing
            }
            tests.push(gradescope_test(g, &title, item));
        }
        output.push_str(&printed_summary(g, &title, several));
        if let Some(c) = &g.containment {
            output.push_str(&format!("{title}\n{}", containment_text(c)));
        }
    }
    let secs: f64 = grades.iter().map(|g| g.seconds).sum();
    let mut v = serde_json::json!({
        "score": total, "execution_time": secs.ceil() as i64,
        "output": feedback::clean(&output, 64 * 1024),
        "visibility": "visible", "stdout_visibility": "hidden", "tests": tests
    });
    if output.is_empty() {
        v.as_object_mut().expect("object").remove("output");
    }
    pretty(&v)
}

fn gradescope_test(g: &Grade, title: &str, item: &scoring::Item) -> serde_json::Value {
    let check = g.checks.iter().find(|c| c.name == item.name);
    let (name, status, output) = match (item.outcome, check, &g.error) {
        (_, _, Some(e)) => (
            format!("{title}: {}", item.name),
            Some("failed"),
            format!(
                "not graded: the grade could not run: {}",
                feedback::clean(e, feedback::BODY_CAP)
            ),
        ),
        (scoring::Outcome::NotChecked, Some(c), _) => (
            format!("{title}: {} (not checked)", item.name),
            None,
            format!(
                "not checked: {}",
                feedback::clean(&c.detail, feedback::BODY_CAP)
            ),
        ),
        (o, Some(c), _) => (
            format!("{title}: {}", item.name),
            Some(if o == scoring::Outcome::Passed {
                "passed"
            } else {
                "failed"
            }),
            if o == scoring::Outcome::Passed {
                feedback::clean(&c.detail, feedback::BODY_CAP)
            } else {
                feedback::body(g, c)
            },
        ),
        (o, None, _) => (
            format!("{title}: {}", item.name),
            Some(if o == scoring::Outcome::Passed {
                "passed"
            } else {
                "failed"
            }),
            if o == scoring::Outcome::Passed {
                "this run passed every check".to_string()
            } else {
                "this run failed a check (see the checks above)".to_string()
            },
        ),
    };
    let mut t = serde_json::json!({
        "name": name, "score": item.score, "max_score": item.max,
        "output": output, "visibility": item.visibility,
    });
    let obj = t.as_object_mut().expect("object");
    if let Some(s) = status {
        obj.insert("status".into(), s.into());
    }
    if !item.tags.is_empty() {
        obj.insert("tags".into(), serde_json::json!(item.tags));
    }
    t
}

/// What a port printed, run by run, for the top-level `output`.
fn printed_summary(g: &Grade, title: &str, several: bool) -> String {
    let mut out = String::new();
    for r in &g.runs {
        let who = if several {
            format!("{title} ")
        } else {
            String::new()
        };
        out.push_str(&format!("== {who}{}: standard output\n", r.label()));
        out.push_str(if r.stdout.is_empty() {
            "(nothing)\n"
        } else {
            &r.stdout
        });
        if !r.stdout.ends_with('\n') && !r.stdout.is_empty() {
            out.push('\n');
        }
    }
    out
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
            runs: Vec::new(),
            marks: Default::default(),
            containment: None,
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
    fn gradescope_scores_one_test_per_check_and_never_passes_a_skip() {
        let v: serde_json::Value = serde_json::from_str(&gradescope(&[sample()])).unwrap();
        let tests = v["tests"].as_array().unwrap();
        // the default marks: 7 checks of 1 point, 4 of them absent from the sample
        assert_eq!(tests.len(), 7);
        assert_eq!(v["score"].as_f64(), Some(1.0));
        assert!(v.get("max_score").is_none(), "not in Gradescope's format");
        let mech = tests
            .iter()
            .find(|t| t["name"].as_str().unwrap().contains("mechanism"))
            .unwrap();
        assert!(
            mech.get("status").is_none() && mech["score"] == 0.0,
            "{mech}"
        );
        assert!(mech["name"].as_str().unwrap().contains("not checked"));
    }

    #[test]
    fn an_error_grade_scores_zero_of_the_full_maximum() {
        let g = Grade::error("pi-pipe", "cc failed");
        let v: serde_json::Value = serde_json::from_str(&gradescope(&[g])).unwrap();
        let max: f64 = v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["max_score"].as_f64().unwrap())
            .sum();
        let pi_pipe = crate::grade::spec::builtin("pi-pipe").unwrap();
        assert_eq!(max, scoring::Marks::of(&pi_pipe).unwrap().max());
        assert_eq!(max, 7.0);
        assert_eq!(v["score"].as_f64(), Some(0.0));
    }

    #[test]
    fn junit_never_holds_a_character_xml_forbids() {
        let mut g = sample();
        g.checks[1].detail = "bad \x01 byte \u{ffff} and \x1b[31m".into();
        let x = junit(&[g]);
        assert!(
            !x.contains("&#x1;") && !x.contains('\x01') && !x.contains('\x1b'),
            "{x}"
        );
        assert!(x.contains("bad \\x01 byte"), "{x}");
    }

    #[test]
    fn several_ports_of_one_exercise_are_distinct_suites() {
        let mut a = sample();
        a.port = Some("pi-pipe.c".into());
        let mut b = sample();
        b.port = Some("pi-pipe.py".into());
        let c = b.clone();
        assert_eq!(
            unique_titles(&[a, b, c]),
            ["pi-pipe.c", "pi-pipe.py", "pi-pipe.py (2)"]
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
