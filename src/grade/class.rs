//! `ipckit grade --class DIR --report-dir OUT`: a whole class, one folder
//! per student.
//!
//! The steps:
//! 1. [`prepare_dir`] creates `OUT` and proves it writable before anything
//!    is graded (an unwritable folder is refused at once);
//! 2. [`grade_class`] lists every student's ports ([`super::ports::scan`]),
//!    grades them on `jobs` threads (each grade runs in its own supervisor,
//!    namespaces, control group and work area; a port that does not build
//!    scores 0 and the class goes on), and adds a row scoring 0 for every
//!    `--require`d exercise a student did not hand in;
//! 3. [`write_reports`] writes `OUT/summary.csv`
//!    (`student,exercise,score,max_score,failed`), `OUT/index.html` (a
//!    heatmap of students × exercises), `OUT/unmatched.csv` (files that match
//!    no exercise) and one report per port, `OUT/STUDENT/FILE.html` and
//!    `.json`.
//!
//! Progress goes to standard error: a bar on a terminal, one plain line per
//! port otherwise.

use super::ports::{self, BuildDir, Port, Unmatched};
use super::{Grade, Options, feedback, report, scoring, spec};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// How to grade a class.
#[derive(Debug, Clone)]
pub struct ClassOptions {
    /// Exercises every student must hand in (a missing one scores 0).
    pub require: Vec<String>,
    /// Ports graded at once (at least 1).
    pub jobs: usize,
    /// The exercises and their specs (built-in, or `--specs DIR`).
    pub specs: spec::SpecSet,
}

/// One row of the class: a student's exercise.
#[derive(Debug, Clone)]
pub struct Row {
    /// The student (the folder's name).
    pub student: String,
    /// The exercise ID.
    pub exercise: String,
    /// The port's grade; `None` when the student did not hand it in.
    pub grade: Option<Grade>,
    /// Points earned.
    pub score: f64,
    /// The exercise's maximum.
    pub max: f64,
    /// What failed: check names, `missing`, or why it could not be graded.
    pub failed: String,
}

impl Row {
    /// The report file of this row, relative to the report folder
    /// (`STUDENT/FILE`, no extension), if the port was graded.
    pub fn report_stem(&self) -> Option<String> {
        let g = self.grade.as_ref()?;
        Some(format!(
            "{}/{}",
            safe_name(&self.student),
            safe_name(g.port.as_deref()?)
        ))
    }
}

/// A graded class.
#[derive(Debug, Clone, Default)]
pub struct Class {
    /// One row per port handed in and per required exercise missing, by
    /// student then exercise.
    pub rows: Vec<Row>,
    /// Files that are no port, per student.
    pub unmatched: Vec<(String, Unmatched)>,
}

/// Step 1: creates `dir` (and its parents) and proves it writable by writing
/// and removing a file in it.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    let what = || format!("report folder {}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| Error::io(what(), e))?;
    let probe = dir.join(format!(".ipckit-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::io(what(), e))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Creates the folder of a report file and proves the file writable (it is
/// created empty, to be overwritten once the grade is done).
pub fn prepare_file(file: &Path) -> Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("report folder {}", parent.display()), e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map(drop)
        .map_err(|e| Error::io(format!("report file {}", file.display()), e))
}

/// Step 2: grades every student's folder of `dir`.
pub fn grade_class(dir: &Path, class: &ClassOptions, opts: &Options) -> Result<Class> {
    for id in &class.require {
        class.specs.get(id)?;
    }
    let mut students = Vec::new();
    let mut out = Class::default();
    for e in
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
    {
        let e = e.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.path().is_dir() {
            continue;
        }
        let (ports, unmatched) = ports::scan(&e.path(), &class.specs)?;
        out.unmatched
            .extend(unmatched.into_iter().map(|u| (name.clone(), u)));
        students.push((name, ports));
    }
    if students.is_empty() {
        return Err(Error::invalid(
            "class folder",
            format!(
                "{} has no student folder (one folder per student, holding their ports)",
                dir.display()
            ),
        ));
    }
    students.sort_by(|a, b| a.0.cmp(&b.0));
    let jobs: Vec<(String, Port)> = students
        .iter()
        .flat_map(|(s, ports)| ports.iter().map(move |p| (s.clone(), p.clone())))
        .collect();
    let build = BuildDir::new()?;
    let progress = Progress::new(jobs.len());
    let grades = ports::grade_all(&jobs, class.jobs.max(1), |(student, port)| {
        // One build folder per student: two students' pi-pipe.c never share a file.
        let own = build.0.join(safe_name(student));
        let g = match std::fs::create_dir_all(&own) {
            Ok(()) => ports::grade_port(port, &own, opts, &class.specs),
            Err(e) => Grade::error(&port.id, Error::io(own.display().to_string(), e)),
        };
        progress.done(&format!(
            "{student}/{}: {}",
            g.port.as_deref().unwrap_or(""),
            ports::verdict_word(&g)
        ));
        g
    });
    progress.finish();
    let mut graded = jobs.iter().map(|(s, _)| s.clone()).zip(grades);
    for (student, ports) in &students {
        let mut rows: Vec<Row> = graded
            .by_ref()
            .take(ports.len())
            .map(|(s, g)| row(s, g))
            .collect();
        for id in &class.require {
            if !ports.iter().any(|p| &p.id == id) {
                rows.push(missing(student, id, &class.specs));
            }
        }
        rows.sort_by(|a, b| a.exercise.cmp(&b.exercise));
        out.rows.extend(rows);
    }
    Ok(out)
}

fn row(student: String, g: Grade) -> Row {
    let sc = scoring::score(&g);
    let failed = match &g.error {
        Some(e) if e.contains("does not build") => "does not build".into(),
        Some(e) => format!(
            "not graded: {}",
            feedback::clean(e.lines().next().unwrap_or(""), 160)
        ),
        None => g
            .checks
            .iter()
            .filter(|c| c.status == super::Status::Fail)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    };
    Row {
        student,
        exercise: g.exercise.clone(),
        score: sc.score,
        max: sc.max,
        failed,
        grade: Some(g),
    }
}

fn missing(student: &str, id: &str, specs: &spec::SpecSet) -> Row {
    let max = specs
        .get(id)
        .and_then(|s| scoring::Marks::of(&s))
        .map_or(0.0, |m| m.max());
    Row {
        student: student.to_string(),
        exercise: id.to_string(),
        grade: None,
        score: 0.0,
        max,
        failed: "missing".into(),
    }
}

/// A file or folder name safe to write under the report folder: path
/// separators and leading dots replaced.
pub fn safe_name(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match s.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => s,
    }
}

/// `summary.csv`: `student,exercise,score,max_score,failed`, one row per
/// row of the class.
pub fn summary_csv(class: &Class) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::invalid("summary.csv", e.to_string());
    w.write_record(["student", "exercise", "score", "max_score", "failed"])
        .map_err(csv_err)?;
    for r in &class.rows {
        w.write_record([
            &r.student,
            &r.exercise,
            &points(r.score),
            &points(r.max),
            &r.failed,
        ])
        .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::invalid("summary.csv", e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Points as the shortest decimal (`3`, `2.5`).
pub fn points(p: f64) -> String {
    format!("{p}")
}

/// `unmatched.csv`: `student,file,nearest`.
fn unmatched_csv(class: &Class) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::invalid("unmatched.csv", e.to_string());
    w.write_record(["student", "file", "nearest"])
        .map_err(csv_err)?;
    for (s, u) in &class.unmatched {
        w.write_record([s.as_str(), &u.file, u.nearest.as_deref().unwrap_or("")])
            .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::invalid("unmatched.csv", e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Step 3: writes the class's reports into `out` (prepared by [`prepare_dir`]).
pub fn write_reports(class: &Class, out: &Path) -> Result<()> {
    let write = |rel: &str, text: &str| -> Result<()> {
        let path: PathBuf = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(parent.display().to_string(), e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(path.display().to_string(), e))
    };
    write("summary.csv", &summary_csv(class)?)?;
    write("unmatched.csv", &unmatched_csv(class)?)?;
    write("index.html", &super::html::class_page(class))?;
    for r in &class.rows {
        if let (Some(stem), Some(g)) = (r.report_stem(), &r.grade) {
            let one = std::slice::from_ref(g);
            write(
                &format!("{stem}.html"),
                &report::render(one, report::Format::Html, false, false),
            )?;
            write(
                &format!("{stem}.json"),
                &report::render(one, report::Format::Json, false, false),
            )?;
        }
    }
    Ok(())
}

/// Progress on standard error: an indicatif bar on a terminal, one plain
/// line per finished port otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: std::sync::atomic::AtomicUsize,
}

impl Progress {
    /// Progress over `total` ports.
    pub fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            total,
            done: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// One port finished.
    pub fn done(&self, what: &str) {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(what.to_string());
                bar.inc(1);
            }
            None => eprintln!("graded {n}/{}: {what}", self.total),
        }
    }

    /// Every port finished.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_class_folder_stay_inside_the_report_folder() {
        assert_eq!(safe_name("../etc"), "_._etc");
        assert_eq!(safe_name("a/b"), "a_b");
        assert_eq!(safe_name("alice"), "alice");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let class = Class {
            rows: vec![missing(
                "doe, jane",
                "pi-pipe",
                &spec::SpecSet::builtin().unwrap(),
            )],
            unmatched: Vec::new(),
        };
        let csv = summary_csv(&class).unwrap();
        assert_eq!(
            csv,
            "student,exercise,score,max_score,failed\n\"doe, jane\",pi-pipe,0,7,missing\n"
        );
    }

    #[test]
    fn an_unwritable_report_folder_is_refused() {
        let err = prepare_dir(Path::new("/proc/ipckit-no-such-folder")).unwrap_err();
        assert!(err.to_string().contains("report folder"), "{err}");
    }
}
