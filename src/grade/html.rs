//! The HTML report (`--format html`): one self-contained page, no network,
//! no script, no external font or style sheet.
//!
//! - [`page`]: per graded port, the score, the checks (a failing one opens
//!   on what the student can act on, [`super::feedback::body`]) and per run
//!   an SVG timeline ([`timeline`]) of the process tree, the IPC objects made
//!   and removed, and what the port printed.
//! - [`class_page`]: a class's heatmap, students × exercises, each cell
//!   linking to that port's page.
//!
//! Every string from a port is escaped and cleaned ([`esc`]): the page stays
//! well-formed whatever the port printed.

use super::class::{Class, Row, points};
use super::evidence::{ProcRecord, Tree};
use super::feedback::{RunRecord, Write};
use super::{Grade, Status, Verdict, feedback, report, scoring};
use std::collections::BTreeSet;
use std::fmt::Write as _;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;text-align:left}
.pass{background:#d8f5d8}.fail{background:#fbd5d5}.skip{background:#eee;color:#666}.error{background:#fde9c8}.incomplete{background:#ead8f5}
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:24em;font-size:.85em;white-space:pre-wrap;word-break:break-all}
table{max-width:100%}
.verdict{font-weight:bold;padding:.1em .5em;border-radius:.3em}
details summary{cursor:pointer}
.heat td{text-align:center;min-width:6em}.heat td a{color:#000;text-decoration:none;display:block}
.missing{background:#ddd;color:#555}
svg text{font-family:monospace;font-size:11px}
.legend span{display:inline-block;margin-right:1em}
";

/// Escapes text for HTML (with the XML rules: the page is also valid XHTML
/// content, and characters XML forbids are shown as `\xNN`).
pub fn esc(s: &str) -> String {
    report::xml_escape(s)
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        esc(title)
    )
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
        Verdict::Incomplete => "incomplete",
    }
}

/// The report page of one or several grades.
pub fn page(grades: &[Grade]) -> String {
    let titles = report::unique_titles(grades);
    let mut body = String::new();
    let heading = match grades {
        [g] => format!("ipckit grade: {}", report::title(g)),
        _ => format!("ipckit grade: {} ports", grades.len()),
    };
    let _ = writeln!(body, "<h1>{}</h1>", esc(&heading));
    for (g, title) in grades.iter().zip(titles) {
        grade_section(g, &title, &mut body);
    }
    document(&heading, &body)
}

fn grade_section(g: &Grade, title: &str, body: &mut String) {
    let sc = scoring::score(g);
    let v = verdict_class(g.verdict);
    let _ = writeln!(
        body,
        "<section><h2>{} <span class=\"verdict {v}\">{}</span> {} / {} points, {:.2} s</h2>",
        esc(title),
        v.to_uppercase(),
        points(sc.score),
        points(sc.max),
        g.seconds
    );
    if let Some(e) = &g.error {
        let _ = writeln!(
            body,
            "<p class=\"error\">The grade could not run: {}</p>",
            esc(&feedback::clean(e, feedback::BODY_CAP))
        );
    }
    if !g.checks.is_empty() {
        body.push_str(
            "<table><tr><th>check</th><th>status</th><th>points</th><th>what was found</th></tr>\n",
        );
        for c in &g.checks {
            let (cls, word) = match c.status {
                Status::Pass => ("pass", "pass"),
                Status::Fail => ("fail", "FAIL"),
                Status::Skip => ("skip", "not checked"),
            };
            let item = sc.items.iter().find(|i| i.name == c.name);
            let pts = item.map_or(String::new(), |i| {
                format!("{} / {}", points(i.score), points(i.max))
            });
            let detail = if c.status == Status::Fail {
                format!(
                    "<details><summary>{}</summary><pre>{}</pre></details>",
                    esc(&report::headline(&c.detail)),
                    esc(&feedback::body(g, c))
                )
            } else {
                esc(&feedback::clean(&c.detail, feedback::BODY_CAP))
            };
            let _ = writeln!(
                body,
                "<tr class=\"{cls}\"><td>{}</td><td>{word}</td><td>{pts}</td><td>{detail}</td></tr>",
                esc(&c.name)
            );
        }
        body.push_str("</table>\n");
    }
    if let Some(c) = &g.containment {
        // The containment section (issue 11): what was contained and checked here.
        let _ = writeln!(
            body,
            "<details><summary>containment</summary><pre>{}</pre></details>",
            esc(&report::containment_text(c))
        );
    }
    for r in &g.runs {
        run_section(r, body);
    }
    body.push_str("</section>\n");
}

fn run_section(r: &RunRecord, body: &mut String) {
    let _ = writeln!(
        body,
        "<h3>{}: the main process {} after {:.2} s</h3>",
        esc(&r.label()),
        esc(&r
            .exit
            .map_or("was not seen to end".into(), |s| s.to_string())),
        r.seconds
    );
    body.push_str(&timeline(&r.tree, r.seconds, Some(&r.writes)));
    objects_table(&r.tree, body);
    let _ = writeln!(
        body,
        "<details><summary>standard output ({} bytes kept)</summary><pre>{}</pre></details>",
        r.stdout.len(),
        esc(&r.stdout)
    );
    if !r.stderr.is_empty() {
        let _ = writeln!(
            body,
            "<details><summary>end of standard error</summary><pre>{}</pre></details>",
            esc(&r.stderr)
        );
    }
}

fn objects_table(tree: &Tree, body: &mut String) {
    if tree.objects.is_empty() {
        return;
    }
    body.push_str(
        "<table><tr><th>IPC object or file</th><th>made by</th><th>removed by</th></tr>\n",
    );
    let who = |p: Option<i32>, t: Option<f64>| match (p, t) {
        (None, _) => "-".to_string(),
        (Some(p), Some(t)) => format!("pid {p} at {t:.3} s"),
        (Some(p), None) => format!("pid {p}"),
    };
    for o in tree.objects.values() {
        let cls = if o.created_by.is_some() && o.unlinked_by.is_none() {
            "fail"
        } else {
            "pass"
        };
        let _ = writeln!(
            body,
            "<tr class=\"{cls}\"><td>{} {}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.kind),
            esc(&feedback::clean(&o.name, 200)),
            who(o.created_by, o.created_at),
            if o.unlinked_by.is_none() {
                "never (left behind)".into()
            } else {
                who(o.unlinked_by, o.unlinked_at)
            }
        );
    }
    body.push_str("</table>\n");
    if tree
        .objects
        .values()
        .all(|o| o.created_at.is_none() && o.unlinked_at.is_none())
    {
        body.push_str(
            "<p class=\"legend\">The times these objects were made and removed were not \
             recorded (the run was not traced), so they are not on the timeline.</p>\n",
        );
    }
}

// ---- the timeline ------------------------------------------------------------

const LANE: f64 = 28.0;
const LEFT: f64 = 260.0;
const WIDTH: f64 = 640.0;
const TOP: f64 = 24.0;

/// The processes of a tree in the order of the tree: each after its parent,
/// the launch chain left out.
fn lanes(tree: &Tree) -> Vec<&ProcRecord> {
    let judged: Vec<&ProcRecord> = tree.judged().collect();
    let pids: BTreeSet<i32> = judged.iter().map(|p| p.pid).collect();
    let mut out = Vec::new();
    let mut stack: Vec<&ProcRecord> = judged
        .iter()
        .filter(|p| !pids.contains(&p.parent))
        .rev()
        .copied()
        .collect();
    while let Some(p) = stack.pop() {
        out.push(p);
        let mut kids: Vec<&ProcRecord> = judged
            .iter()
            .filter(|c| c.parent == p.pid)
            .copied()
            .collect();
        kids.sort_by(|a, b| b.started.total_cmp(&a.started));
        stack.extend(kids);
    }
    out
}

/// An SVG timeline of one run's process tree: one lane per process (in tree
/// order), its life as a bar from fork to exit, the zombie interval from
/// exit to reap (hatched), fork arrows from the parent, the reap as a dashed
/// line from the reaper (or "adopted" when the grader collected it), orphans
/// killed at the end, and, when `writes` has them, each output line as a dot
/// on the lane of the process that wrote it. Every mark has a `<title>`.
pub fn timeline(tree: &Tree, seconds: f64, writes: Option<&[Write]>) -> String {
    let lanes = lanes(tree);
    if lanes.is_empty() {
        return "<p>No process was seen.</p>\n".into();
    }
    let end = lanes
        .iter()
        .flat_map(|p| {
            [
                Some(p.started),
                p.exited,
                p.reaped_by.map(|r| r.1),
                p.readopted,
            ]
        })
        .flatten()
        .fold(seconds, f64::max)
        .max(0.001);
    let x = |t: f64| LEFT + (t / end).clamp(0.0, 1.0) * WIDTH;
    let y = |i: usize| TOP + i as f64 * LANE;
    let row_of = |pid: i32| lanes.iter().position(|p| p.pid == pid);
    let height = TOP + lanes.len() as f64 * LANE + 30.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"process timeline\">\
         <defs><pattern id=\"z\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"6\" height=\"6\" fill=\"#f3d0d0\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#c33\" stroke-width=\"2\"/></pattern>\
         <marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"6\" refY=\"3\" orient=\"auto\"><path d=\"M0,0 L6,3 L0,6 z\" fill=\"#555\"/></marker></defs>",
        w = LEFT + WIDTH + 110.0
    );
    axis(&mut s, end, height, &x);
    for (i, p) in lanes.iter().enumerate() {
        lane(&mut s, p, y(i), end, &x, &row_of, &y);
    }
    if let Some(writes) = writes {
        for w in writes {
            if let Some(i) = row_of(w.pid) {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1565c0\"><title>pid {} wrote at {:.3} s: {}</title></circle>",
                    x(w.time),
                    y(i) + 10.0,
                    w.pid,
                    w.time,
                    esc(&feedback::clean(&w.text, 300))
                );
            }
        }
    }
    object_marks(&mut s, tree, &x, &row_of, &y);
    s.push_str("</svg>\n");
    s.push_str(
        "<p class=\"legend\"><span>&#9632; <b style=\"color:#4caf50\">alive</b></span>\
         <span><b style=\"color:#c33\">hatched</b>: zombie (exited, not yet reaped)</span>\
         <span>&#8600; fork</span><span>dashed: reaped by</span>\
         <span><b style=\"color:#1565c0\">&#9679;</b> output line</span>\
         <span><b style=\"color:#2e7d32\">&#9650;</b> IPC object or file made</span>\
         <span><b style=\"color:#c00\">&#9660;</b> removed</span>\
         <span><b style=\"color:#c00\">&#10007;</b> killed by the grader</span></p>\n",
    );
    s
}

/// Each named object the port made (a green triangle up) and removed (a red
/// triangle down) on the lane of the process that did it, at the time the
/// tracer saw the call. An untraced run has no such times: its objects are
/// only in the table under the timeline.
fn object_marks(
    s: &mut String,
    tree: &Tree,
    x: &dyn Fn(f64) -> f64,
    row_of: &dyn Fn(i32) -> Option<usize>,
    y: &dyn Fn(usize) -> f64,
) {
    for o in tree.objects.values() {
        let name = esc(&feedback::clean(&o.name, 200));
        let marks = [
            (o.created_by, o.created_at, "made", "#2e7d32", 0.0, 5.0),
            (o.unlinked_by, o.unlinked_at, "removed", "#c00", 5.0, 0.0),
        ];
        for (by, at, verb, colour, tip, base) in marks {
            let (Some(pid), Some(t)) = (by, at) else {
                continue;
            };
            let Some(i) = row_of(pid) else { continue };
            let (cx, top) = (x(t), y(i) + 13.0);
            let _ = write!(
                s,
                "<path d=\"M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} z\" fill=\"{colour}\"><title>pid {pid} {verb} {} {name} at {t:.3} s</title></path>",
                cx,
                top + tip,
                cx - 4.0,
                top + base,
                cx + 4.0,
                top + base,
                esc(&o.kind),
            );
        }
    }
}

fn axis(s: &mut String, end: f64, height: f64, x: &dyn Fn(f64) -> f64) {
    for k in 0..=4 {
        let t = end * k as f64 / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"12\" text-anchor=\"middle\">{t:.2} s</text>",
            x(t),
            TOP - 6.0,
            height - 24.0
        );
    }
}

fn lane(
    s: &mut String,
    p: &ProcRecord,
    top: f64,
    end: f64,
    x: &dyn Fn(f64) -> f64,
    row_of: &dyn Fn(i32) -> Option<usize>,
    y: &dyn Fn(usize) -> f64,
) {
    let mid = top + 10.0;
    let cmd = feedback::clean(&p.command, 200);
    // Each word by its file name: `/usr/bin/python3 /home/a/pi-pipe.py 1000`
    // reads `python3 pi-pipe.py 1000`.
    let words: Vec<&str> = cmd
        .split(' ')
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .collect();
    let short: String = words.join(" ").chars().take(26).collect();
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{:.1}\"><title>{}</title>pid {} {}</text>",
        mid + 4.0,
        esc(&cmd),
        p.pid,
        esc(&short)
    );
    let died = p.exited.unwrap_or(end);
    let how = p
        .status
        .map_or("still running at the end".to_string(), |st| st.to_string());
    let _ = write!(
        s,
        "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"20\" fill=\"#4caf50\" rx=\"3\"><title>pid {}: from {:.3} s to {:.3} s; {}</title></rect>",
        x(p.started),
        (x(died) - x(p.started)).max(2.0),
        p.pid,
        p.started,
        died,
        esc(&how)
    );
    // Fork: an arrow from the parent's lane.
    if let Some(pr) = row_of(p.parent) {
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#555\" marker-end=\"url(#arrow)\"><title>pid {3} forked pid {4} at {5:.3} s</title></line>",
            x(p.started),
            y(pr) + 20.0,
            top,
            p.parent,
            p.pid,
            p.started
        );
    }
    let reaped = p.reaped_by.map(|r| r.1).or(p.readopted);
    if let Some(exit) = p.exited {
        let zombie_end = reaped.unwrap_or(exit);
        if zombie_end > exit {
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"20\" fill=\"url(#z)\"><title>pid {} was a zombie from {exit:.3} s to {zombie_end:.3} s</title></rect>",
                x(exit),
                (x(zombie_end) - x(exit)).max(2.0),
                p.pid
            );
        }
    }
    match (p.reaped_by, p.readopted) {
        (Some((by, t)), _) => {
            let word = if by == p.parent {
                "reaped by its parent"
            } else {
                "reaped by"
            };
            if let Some(rr) = row_of(by) {
                let _ = write!(
                    s,
                    "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#333\" stroke-dasharray=\"3,2\"><title>pid {3} {word} pid {by} at {t:.3} s</title></line>",
                    x(t),
                    y(rr) + 10.0,
                    mid,
                    p.pid
                );
            }
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">reaped by {by}</text>",
                x(t) + 3.0,
                mid + 4.0
            );
        }
        (None, Some(t)) => {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c33\"><title>its parent exited without waiting: adopted and reaped by the grader at {t:.3} s</title>adopted</text>",
                x(t) + 3.0,
                mid + 4.0
            );
        }
        _ => {}
    }
    if p.orphan || p.killed.is_some() {
        let why = p
            .killed
            .clone()
            .unwrap_or_else(|| "an orphan still running".into());
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c00\" font-weight=\"bold\"><title>{}</title>&#10007; {}</text>",
            x(died) - 4.0,
            mid + 4.0,
            esc(&why),
            if p.orphan { "orphan killed" } else { "killed" }
        );
    }
}

// ---- the class page --------------------------------------------------------------

/// The class page: one row per student, one column per exercise, each cell
/// coloured by its score (red 0 to green full), linking to the port's page;
/// a missing exercise is grey, a port that could not be graded is orange.
pub fn class_page(class: &Class) -> String {
    let students: BTreeSet<&str> = class.rows.iter().map(|r| r.student.as_str()).collect();
    let exercises: BTreeSet<&str> = class.rows.iter().map(|r| r.exercise.as_str()).collect();
    let mut body = String::from("<h1>ipckit grade: the class</h1>\n");
    let (score, max): (f64, f64) = class
        .rows
        .iter()
        .fold((0.0, 0.0), |(s, m), r| (s + r.score, m + r.max));
    let _ = writeln!(
        body,
        "<p>{} students, {} exercises, {} ports graded; {} / {} points in all. \
         <a href=\"summary.csv\">summary.csv</a></p>",
        students.len(),
        exercises.len(),
        class.rows.iter().filter(|r| r.grade.is_some()).count(),
        points(score),
        points(max)
    );
    body.push_str("<table class=\"heat\"><tr><th>student</th>");
    for e in &exercises {
        let _ = write!(body, "<th>{}</th>", esc(e));
    }
    body.push_str("<th>total</th></tr>\n");
    for s in &students {
        let _ = write!(body, "<tr><th>{}</th>", esc(s));
        let mine: Vec<&Row> = class.rows.iter().filter(|r| r.student == *s).collect();
        for e in &exercises {
            body.push_str(&cell(mine.iter().filter(|r| r.exercise == *e).copied()));
        }
        let (sc, mx) = mine
            .iter()
            .fold((0.0, 0.0), |(a, b), r| (a + r.score, b + r.max));
        let _ = writeln!(body, "<td>{} / {}</td></tr>", points(sc), points(mx));
    }
    body.push_str("</table>\n");
    if !class.unmatched.is_empty() {
        body.push_str("<h2>Files that match no exercise (not graded)</h2><ul>\n");
        for (s, u) in &class.unmatched {
            let _ = writeln!(body, "<li>{}/{}</li>", esc(s), esc(&u.to_string()));
        }
        body.push_str("</ul>\n");
    }
    document("ipckit grade: the class", &body)
}

fn cell<'a>(rows: impl Iterator<Item = &'a Row>) -> String {
    let rows: Vec<&Row> = rows.collect();
    if rows.is_empty() {
        return "<td></td>".into();
    }
    let parts: Vec<String> = rows
        .iter()
        .map(|r| {
            let tip = if r.failed.is_empty() {
                "every check passed".to_string()
            } else {
                r.failed.clone()
            };
            let text = format!("{} / {}", points(r.score), points(r.max));
            match (r.report_stem(), &r.grade) {
                (Some(stem), Some(g)) => format!(
                    "<a href=\"{}.html\" title=\"{}\">{}<br><small>{}</small></a>",
                    esc(&stem),
                    esc(&format!("{}: {tip}", g.port.as_deref().unwrap_or(""))),
                    text,
                    esc(g.port.as_deref().unwrap_or(""))
                ),
                _ => format!("<span title=\"{}\">missing</span>", esc(&tip)),
            }
        })
        .collect();
    let r = rows[0];
    let style = match &r.grade {
        None => "class=\"missing\"".to_string(),
        Some(g) if g.error.is_some() => "class=\"error\"".to_string(),
        Some(_) => {
            let ratio = if r.max > 0.0 { r.score / r.max } else { 1.0 };
            format!("style=\"background:hsl({:.0},65%,72%)\"", 120.0 * ratio)
        }
    };
    format!("<td {style}>{}</td>", parts.join("<hr>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ExitStatus;

    fn tree() -> Tree {
        let mut t = Tree {
            main: 10,
            ..Default::default()
        };
        t.procs.insert(
            10,
            ProcRecord {
                pid: 10,
                command: "python3 port.py".into(),
                exited: Some(1.0),
                status: Some(ExitStatus::Exited(0)),
                ..Default::default()
            },
        );
        t.procs.insert(
            11,
            ProcRecord {
                pid: 11,
                parent: 10,
                started: 0.1,
                exited: Some(0.2),
                readopted: Some(1.0),
                command: "x\u{1}<b>".into(),
                ..Default::default()
            },
        );
        t.procs.insert(
            12,
            ProcRecord {
                pid: 12,
                parent: 10,
                started: 0.3,
                exited: Some(0.4),
                reaped_by: Some((10, 0.5)),
                ..Default::default()
            },
        );
        t
    }

    #[test]
    fn the_timeline_shows_zombies_reaps_and_adoptions() {
        let svg = timeline(&tree(), 1.0, None);
        assert!(
            svg.contains("pid 11 was a zombie from 0.200 s to 1.000 s"),
            "{svg}"
        );
        assert!(
            svg.contains("pid 12 was a zombie from 0.400 s to 0.500 s"),
            "{svg}"
        );
        assert!(svg.contains("pid 12 reaped by its parent pid 10"), "{svg}");
        assert!(svg.contains("adopted"), "{svg}");
        assert!(svg.contains("pid 10 forked pid 11"), "{svg}");
        assert!(
            !svg.contains('\u{1}') && !svg.contains("<b>"),
            "escaped: {svg}"
        );
    }

    #[test]
    fn output_lines_sit_on_the_lane_of_their_writer() {
        let writes = [Write {
            pid: 12,
            time: 0.35,
            text: "hello".into(),
        }];
        let svg = timeline(&tree(), 1.0, Some(&writes));
        assert!(svg.contains("pid 12 wrote at 0.350 s: hello"), "{svg}");
        let none = timeline(
            &tree(),
            1.0,
            Some(&[Write {
                pid: 99,
                time: 0.1,
                text: "x".into(),
            }]),
        );
        assert!(
            !none.contains("wrote at"),
            "a writer not in the tree is not drawn"
        );
    }

    #[test]
    fn objects_sit_on_the_lane_and_at_the_time_of_who_made_and_removed_them() {
        let mut t = tree();
        t.on_object(11, "shm", "/seg", true, 0.25);
        t.on_object(12, "shm", "/seg", false, 0.45);
        let svg = timeline(&t, 1.0, None);
        assert!(svg.contains("pid 11 made shm /seg at 0.250 s"), "{svg}");
        assert!(svg.contains("pid 12 removed shm /seg at 0.450 s"), "{svg}");
        let mut table = String::new();
        objects_table(&t, &mut table);
        assert!(table.contains("pid 12 at 0.450 s") && !table.contains("not recorded"));
        // An untraced run's objects have no times: the page says so.
        let o = t.objects.values_mut().next().unwrap();
        (o.created_at, o.unlinked_at) = (None, None);
        assert!(!timeline(&t, 1.0, None).contains("made shm"));
        let mut table = String::new();
        objects_table(&t, &mut table);
        assert!(table.contains("not recorded"), "{table}");
    }

    #[test]
    fn lanes_follow_the_tree() {
        let t = tree();
        let order: Vec<i32> = lanes(&t).iter().map(|p| p.pid).collect();
        assert_eq!(order, [10, 11, 12]);
    }
}
