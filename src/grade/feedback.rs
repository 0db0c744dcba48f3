//! What a student can act on: the record of each run kept with a grade, and
//! the text that explains a failing check (the body of a JUnit `<failure>`,
//! the `output` of a Gradescope test, a row of the HTML report).
//!
//! Every string a port produced (its output, its command line) goes through
//! [`clean`] before it reaches a report: control characters are shown as
//! `\xNN`, invalid UTF-8 has already become U+FFFD when the output was
//! captured, and the length is capped with a visible marker.

use super::checks::Run;
use super::evidence::Tree;
use super::spec::Spec;
use super::{Check, Grade, Status};
use crate::process::ExitStatus;
use serde::{Deserialize, Serialize};

/// Bytes of standard output kept with a grade, per run.
pub const STDOUT_KEPT: usize = 16 * 1024;
/// Bytes of the end of standard error kept with a grade, per run.
pub const STDERR_KEPT: usize = 4 * 1024;
/// Longest failure text, bytes.
pub const BODY_CAP: usize = 8 * 1024;
/// Output lines shown in a failure text.
const LINES_SHOWN: usize = 20;
/// Output lines kept with their writer per run, at most (the timeline draws
/// each one; they cover no more than the [`STDOUT_KEPT`] bytes kept).
pub const WRITES_KEPT: usize = 1000;
/// Longest text of one kept output line, bytes.
const WRITE_TEXT_CAP: usize = 300;

/// One line the port wrote, with the process that wrote it and when
/// (seconds after the start), when the evidence knows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Write {
    /// The writing process.
    pub pid: i32,
    /// Seconds after the start of the run.
    pub time: f64,
    /// What it wrote (cleaned).
    pub text: String,
}

/// What one run did, kept with the grade for reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// The arguments the port got.
    pub args: Vec<String>,
    /// How the main process ended.
    pub exit: Option<ExitStatus>,
    /// Seconds until the whole tree was gone.
    pub seconds: f64,
    /// Every check held (or did not apply) on this run alone.
    pub passed: bool,
    /// Standard output, cleaned, at most [`STDOUT_KEPT`] bytes.
    pub stdout: String,
    /// The end of standard error, cleaned, at most [`STDERR_KEPT`] bytes.
    pub stderr: String,
    /// The process tree and the named objects.
    pub tree: Tree,
    /// The output lines with their writers, when the evidence has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<Write>,
}

impl RunRecord {
    /// Keeps what reports need of a finished run of `spec`.
    pub fn of(spec: &Spec, run: &Run) -> RunRecord {
        let o = &run.outcome;
        let (checks, _) = super::checks::judge(spec, std::slice::from_ref(run));
        RunRecord {
            args: run.args.clone(),
            exit: o.exit,
            seconds: o.seconds,
            passed: checks.iter().all(|c| c.status != Status::Fail),
            stdout: clean(&o.stdout.text, STDOUT_KEPT),
            stderr: clean(tail(&o.stderr.text, STDERR_KEPT), STDERR_KEPT),
            tree: o.tree.clone(),
            writes: writes(&o.stdout),
        }
    }

    /// `run` or ``run `ARGS` ``, for headings.
    pub fn label(&self) -> String {
        if self.args.is_empty() {
            "run".into()
        } else {
            format!("run `{}`", self.args.join(" "))
        }
    }

    /// The main process died of a signal or exited with a failure status.
    pub fn crashed(&self) -> bool {
        matches!(self.exit, Some(ExitStatus::Signaled { .. }))
            || matches!(self.exit, Some(ExitStatus::Exited(c)) if c != 0)
    }
}

/// The lines of standard output with the process that wrote each and when
/// (from the writers the capture recorded, `grade::output`), in the order
/// their newlines were written: as many as fit in the [`STDOUT_KEPT`] bytes
/// a record keeps, at most [`WRITES_KEPT`], each cleaned and capped. Empty
/// when the capture recorded no writer (every line would be pid 0).
fn writes(out: &super::supervisor::Captured) -> Vec<Write> {
    if out.chunks.is_empty() {
        return Vec::new();
    }
    let mut bytes = 0;
    super::output::lines(&out.text, &out.chunks)
        .into_iter()
        .take_while(|l| {
            bytes += l.text.len() + 1;
            bytes <= STDOUT_KEPT
        })
        .take(WRITES_KEPT)
        .map(|l| Write {
            pid: l.pid,
            time: l.at,
            text: clean(&l.text, WRITE_TEXT_CAP),
        })
        .collect()
}

/// The end of `s`, at most `n` bytes, cut at a character boundary.
fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Makes text a port produced safe for every report: control characters but
/// newline and tab become a visible `\xNN`, U+FFFE and U+FFFF (no XML
/// character) become U+FFFD, and text longer than `cap` bytes is cut with a
/// visible `[... N more bytes not shown]`.
pub fn clean(s: &str, cap: usize) -> String {
    let mut out = String::with_capacity(s.len().min(cap) + 16);
    for (i, c) in s.char_indices() {
        if out.len() >= cap {
            out.push_str(&format!("\n[... {} more bytes not shown]", s.len() - i));
            break;
        }
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// What a student can act on for one check of a grade: the check's finding
/// (expected against actual), then for each run that failed, how the main
/// process ended, the last lines it printed (with the writing process when
/// known), the end of standard error on a crash, and the processes involved
/// for `zombies` and `orphans`. Empty for a check that held.
pub fn body(g: &Grade, c: &Check) -> String {
    if c.status == Status::Pass {
        return String::new();
    }
    let mut out = clean(&c.detail, BODY_CAP);
    out.push('\n');
    if c.status == Status::Skip {
        return out;
    }
    for r in g.runs.iter().filter(|r| !r.passed) {
        out.push_str(&format!(
            "\n{}: the main process {}\n",
            r.label(),
            r.exit
                .map_or("was not seen to end".into(), |s| s.to_string())
        ));
        match c.name.as_str() {
            "zombies" | "orphans" | "mechanism" => processes(r, &mut out),
            "leaks" => {}
            _ => printed(r, &mut out),
        }
        if r.crashed() || (c.name == "output" && r.stdout.is_empty()) {
            let lines: Vec<&str> = r.stderr.lines().collect();
            if !lines.is_empty() {
                let from = lines.len().saturating_sub(LINES_SHOWN / 2);
                out.push_str("standard error ended with:\n");
                for l in &lines[from..] {
                    out.push_str(&format!("  | {l}\n"));
                }
            }
        }
    }
    clean(&out, BODY_CAP)
}

/// The last lines the run printed, each with its writer when known.
fn printed(r: &RunRecord, out: &mut String) {
    let lines: Vec<String> = if r.writes.is_empty() {
        r.stdout.lines().map(|l| format!("  | {l}")).collect()
    } else {
        r.writes
            .iter()
            .flat_map(|w| {
                w.text
                    .lines()
                    .map(move |l| format!("  [pid {}] | {l}", w.pid))
            })
            .collect()
    };
    if lines.is_empty() {
        out.push_str("it printed nothing on standard output\n");
        return;
    }
    let from = lines.len().saturating_sub(LINES_SHOWN);
    if from > 0 {
        out.push_str(&format!(
            "it printed {} lines; the last {}:\n",
            lines.len(),
            lines.len() - from
        ));
    } else {
        out.push_str("it printed:\n");
    }
    for l in &lines[from..] {
        out.push_str(l);
        out.push('\n');
    }
}

/// The port's processes: pid, command, parent, and how each ended.
fn processes(r: &RunRecord, out: &mut String) {
    out.push_str("its processes:\n");
    for p in r.tree.judged().take(LINES_SHOWN) {
        let fate = match (p.reaped_by, p.orphan, p.seen_zombie) {
            (_, true, _) => "still running at the end: killed".to_string(),
            (Some((by, t)), ..) if by == p.parent => format!("reaped by its parent at {t:.2} s"),
            (Some((by, t)), ..) => format!("reaped by {by} at {t:.2} s"),
            (None, _, Some((_, t))) => format!("seen as a zombie at {t:.2} s"),
            (None, false, None) if p.parent == 0 => "collected by the grader".to_string(),
            (None, false, None) => "never waited for by its parent".to_string(),
        };
        out.push_str(&format!(
            "  pid {} (parent {}) {}: {fate}\n",
            p.pid,
            p.parent,
            clean(&p.command, 120)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_shows_control_characters_and_caps_with_a_marker() {
        assert_eq!(clean("a\x01b\n\tc\u{7f}", 100), "a\\x01b\n\tc\\x7f");
        let long = "x".repeat(50);
        let c = clean(&long, 10);
        assert!(
            c.starts_with("xxxxxxxxxx\n[... 40 more bytes not shown]"),
            "{c}"
        );
        assert_eq!(clean("\u{ffff}", 10), "\u{fffd}");
    }

    #[test]
    fn writes_name_the_writer_of_each_line_and_its_time() {
        use super::super::output::Chunk;
        let out = super::super::supervisor::Captured {
            text: "parent: 1\nchild\x01: 2\n".into(),
            chunks: vec![
                Chunk {
                    pid: 7,
                    at: 0.5,
                    len: 10,
                },
                Chunk {
                    pid: 8,
                    at: 0.75,
                    len: 12,
                },
            ],
            ..Default::default()
        };
        let got = writes(&out);
        assert_eq!(
            got,
            [
                Write {
                    pid: 7,
                    time: 0.5,
                    text: "parent: 1".into()
                },
                Write {
                    pid: 8,
                    time: 0.75,
                    text: "child\\x01: 2".into()
                },
            ]
        );
        let unknown = super::super::supervisor::Captured {
            text: "x\n".into(),
            ..Default::default()
        };
        assert!(writes(&unknown).is_empty(), "no writer recorded: no writes");
    }

    #[test]
    fn tail_cuts_at_a_character_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("ab", 10), "ab");
    }
}
