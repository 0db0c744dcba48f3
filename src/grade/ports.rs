//! `ipckit grade --dir DIR`: every port in a folder whose name is an exercise
//! ID, built if needed and graded in parallel.
//!
//! The steps:
//! 1. [`find`] lists the ports: `ID.py` (run with `python3`), `ID.c`
//!    (compiled with `cc -O2 ... -lrt -pthread -lm`), `ID.rs` (compiled with
//!    `rustc -O`), an executable file `ID`, or a cargo crate directory `ID`
//!    with a binary of that name (`cargo build --release`);
//! 2. [`Port::command`] builds what needs building into a scratch directory
//!    and returns the command to grade; a build failure (or a build still
//!    running after [`BUILD_TIMEOUT`]) is an `error` grade with the
//!    compiler's message;
//! 3. [`grade_all`] grades the ports on as many threads as there are cores
//!    (each grade runs its own supervisor processes).

use super::{Grade, Options, spec};
use crate::error::{Error, Result};
use crate::process::ExitStatus;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How a port is made runnable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Python script.
    Python,
    /// A C source file.
    C,
    /// A single Rust source file.
    Rust,
    /// A cargo crate directory.
    Crate,
    /// An executable file.
    Executable,
}

/// One port found in a folder.
#[derive(Debug, Clone)]
pub struct Port {
    /// The exercise it ports.
    pub id: String,
    /// Its file or directory.
    pub path: PathBuf,
    /// How it is run.
    pub kind: Kind,
}

/// Step 1: the ports in `dir` that match a built-in exercise, sorted by
/// exercise ID (names that are no exercise ID are left out: [`scan`] lists
/// them).
pub fn find(dir: &Path) -> Result<Vec<Port>> {
    Ok(scan(dir, &spec::SpecSet::builtin()?)?.0)
}

/// A file of a folder that is no port: its name matches no exercise ID, or
/// its kind is not one the grader builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The file's name.
    pub file: String,
    /// The exercise ID nearest to its name, if one is near.
    pub nearest: Option<String>,
}

impl std::fmt::Display for Unmatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: matches no exercise ID", self.file)?;
        match &self.nearest {
            Some(id) => write!(f, " (did you mean {id}?)"),
            None => write!(f, " (`ipckit exercises` lists them)"),
        }
    }
}

/// The ports in `dir` that match an exercise of `specs` (sorted by exercise
/// ID, then file) and the files that are no port (hidden files aside),
/// sorted by name.
pub fn scan(dir: &Path, specs: &spec::SpecSet) -> Result<(Vec<Port>, Vec<Unmatched>)> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    let mut ports = Vec::new();
    let mut unmatched = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, x)) => (s.to_string(), x.to_string()),
            None => (name.clone(), String::new()),
        };
        let kind = match ext.as_str() {
            _ if !specs.knows(&stem) => None,
            "py" => Some(Kind::Python),
            "c" => Some(Kind::C),
            "rs" => Some(Kind::Rust),
            "" if path.join("Cargo.toml").is_file() => Some(Kind::Crate),
            "" if is_executable(&path) => Some(Kind::Executable),
            _ => None,
        };
        match kind {
            Some(kind) => ports.push(Port {
                id: stem,
                path,
                kind,
            }),
            None => unmatched.push(Unmatched {
                nearest: specs.nearest(&stem).map(str::to_string),
                file: name,
            }),
        }
    }
    ports.sort_by(|a, b| a.id.cmp(&b.id).then(a.path.cmp(&b.path)));
    unmatched.sort_by(|a, b| a.file.cmp(&b.file));
    Ok((ports, unmatched))
}

/// The built-in exercise ID nearest to `name` (Levenshtein distance at most
/// a third of the name's length), for "did you mean" messages.
pub fn nearest_exercise(name: &str) -> Option<&'static str> {
    spec::nearest_of(spec::BUILTIN.iter().map(|(id, _)| *id), name)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Port {
    /// Step 2: builds the port (into `build`) and returns the command to grade.
    pub fn command(&self, build: &Path) -> Result<Vec<String>> {
        let src = self
            .path
            .canonicalize()
            .map_err(|e| Error::io(self.path.display().to_string(), e))?;
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let out = self.output(build);
        match self.kind {
            Kind::Python => Ok(vec!["python3".into(), s(&src)]),
            Kind::Executable => Ok(vec![s(&src)]),
            Kind::C => {
                compile(
                    Command::new("cc")
                        .args(["-O2", "-o"])
                        .arg(&out)
                        .arg(&src)
                        .args(["-lrt", "-pthread", "-lm"]),
                    &self.path,
                )?;
                Ok(vec![s(&out)])
            }
            Kind::Rust => {
                compile(
                    Command::new("rustc")
                        .args(["-O", "--edition", "2021", "-o"])
                        .arg(&out)
                        .arg(&src),
                    &self.path,
                )?;
                Ok(vec![s(&out)])
            }
            Kind::Crate => {
                let target = build.join(format!("{}-target", self.id));
                compile(
                    Command::new("cargo")
                        .args(["build", "--release", "--quiet", "--manifest-path"])
                        .arg(src.join("Cargo.toml"))
                        .arg("--target-dir")
                        .arg(&target),
                    &self.path,
                )?;
                Ok(vec![s(&target.join("release").join(&self.id))])
            }
        }
    }

    /// Where a source port is built: named after its source file
    /// (`pi-pipe.c` -> `build/pi-pipe-c`), so that a `.c` and an `.rs` port
    /// of one exercise, built on parallel threads, never share a file.
    fn output(&self, build: &Path) -> PathBuf {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        build.join(name.replace('.', "-"))
    }
}

/// How long one build may take before it is killed and reported as a
/// build failure.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs a build command in a process group of its own, at most
/// [`BUILD_TIMEOUT`]; a failure or a timeout is an error naming `what`.
fn compile(cmd: &mut Command, what: &Path) -> Result<()> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("building {}", what.display()), e))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut guard = crate::process::ChildGuard::adopt(pid);
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = guard.wait_timeout(BUILD_TIMEOUT)?;
    if status.is_none() {
        // The compiler's own children (cc1, ld, rustc) are in its group.
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    }
    drop(guard); // reaps the build command if it was killed
    let stderr = reader.join().unwrap_or_default();
    let why = match status {
        Some(ExitStatus::Exited(0)) => return Ok(()),
        Some(_) => {
            let msg = String::from_utf8_lossy(&stderr);
            msg.lines().take(5).collect::<Vec<_>>().join(" | ")
        }
        None => format!("the build was killed after {} s", BUILD_TIMEOUT.as_secs()),
    };
    Err(Error::invalid(
        "port",
        format!("{} does not build: {why}", what.display()),
    ))
}

/// Step 3: runs `run` (a grade) over `jobs` on up to `threads` threads and
/// returns the grades in the order of the jobs.
pub fn grade_all<J: Sync>(
    jobs: &[J],
    threads: usize,
    run: impl Fn(&J) -> Grade + Sync,
) -> Vec<Grade> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { return };
                    let g = run(job);
                    results.lock().expect("no panic while holding")[i] = Some(g);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .flatten()
        .collect()
}

/// The number of cores, for [`grade_all`].
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `--dir`: finds, builds and grades every port of `dir` that matches an
/// exercise of `specs` on `jobs` threads (a port that does not build is an
/// `error` grade; the others go on), and lists the files that are no port on
/// standard error.
pub fn grade_dir(
    dir: &Path,
    opts: &Options,
    jobs: usize,
    require: &[String],
    specs: &spec::SpecSet,
) -> Result<Vec<Grade>> {
    for id in require {
        specs.get(id)?;
    }
    let (ports, unmatched) = scan(dir, specs)?;
    for u in &unmatched {
        eprintln!("ipckit grade: not graded: {}", u);
    }
    let missing: Vec<Grade> = require
        .iter()
        .filter(|id| !ports.iter().any(|p| &p.id == *id))
        .map(|id| missing_grade(id, specs))
        .collect();
    if ports.is_empty() && missing.is_empty() {
        return Err(Error::invalid(
            "folder",
            format!(
                "{} has no port named after an exercise ID (e.g. pi-pipe.py, pi-pipe.c)",
                dir.display()
            ),
        ));
    }
    let build = BuildDir::new()?;
    let progress = super::class::Progress::new(ports.len());
    let (threads, serial_note) = super::containment::threads_for(opts, jobs);
    let grades = grade_all(&ports, threads, |p| {
        let mut g = grade_port(p, &build.0, opts, specs);
        if let (Some(note), Some(c)) = (&serial_note, &mut g.containment) {
            c.notes.push(note.clone());
        }
        progress.done(&format!(
            "{}: {}",
            g.port.as_deref().unwrap_or(""),
            verdict_word(&g)
        ));
        g
    });
    progress.finish();
    let mut grades = grades;
    grades.extend(missing);
    Ok(grades)
}

/// An `error` grade of exercise `id` of `specs`: 0 out of its full maximum.
fn error_grade(id: &str, specs: &spec::SpecSet, why: impl std::fmt::Display) -> Grade {
    let marks = specs.get(id).and_then(|s| super::scoring::Marks::of(&s));
    Grade {
        marks: marks.unwrap_or_default(),
        ..Grade::error(id, why)
    }
}

/// The grade of a required exercise nobody handed in: 0 out of its maximum,
/// its reason naming the files looked for.
pub fn missing_grade(id: &str, specs: &spec::SpecSet) -> Grade {
    let mut g = error_grade(
        id,
        specs,
        format!(
            "missing: no port of {id} was handed in (looked for {id}.py, {id}.c, {id}.rs, an executable {id} or a cargo crate {id})"
        ),
    );
    g.port = Some(format!("{id} (missing)"));
    g
}

/// Builds and grades one port with its spec in `specs` (a build failure is
/// an `error` grade); the grade's `port` is the file's name.
pub fn grade_port(p: &Port, build: &Path, opts: &Options, specs: &spec::SpecSet) -> Grade {
    if let Some(why) = super::interruption() {
        return error_grade(&p.id, specs, why);
    }
    let graded = specs
        .get(&p.id)
        .and_then(|spec| Ok(super::grade(&spec, &p.command(build)?, opts)));
    let mut g = graded.unwrap_or_else(|e| error_grade(&p.id, specs, e));
    g.port = p.path.file_name().map(|f| f.to_string_lossy().into_owned());
    g
}

/// A verdict as a word, for progress lines.
pub fn verdict_word(g: &Grade) -> &'static str {
    match g.verdict {
        super::Verdict::Pass => "pass",
        super::Verdict::Fail => "fail",
        super::Verdict::Incomplete => "incomplete",
        super::Verdict::Error => "error",
    }
}

/// A scratch directory for builds, removed on drop.
pub struct BuildDir(pub PathBuf);

impl BuildDir {
    /// Makes `$TMPDIR/ipckit-build-PID-N`.
    pub fn new() -> Result<BuildDir> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ipckit-build-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        Ok(BuildDir(dir))
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_name_suggests_the_nearest_exercise() {
        assert_eq!(nearest_exercise("pi-pip"), Some("pi-pipe"));
        assert_eq!(nearest_exercise("fork_basic"), Some("fork-basic"));
        assert_eq!(nearest_exercise("notes"), None);
    }

    #[test]
    fn two_ports_of_one_exercise_build_to_different_files() {
        let port = |file: &str, kind| Port {
            id: "pi-pipe".into(),
            path: PathBuf::from("ports").join(file),
            kind,
        };
        let build = Path::new("/tmp/b");
        let c = port("pi-pipe.c", Kind::C).output(build);
        let rs = port("pi-pipe.rs", Kind::Rust).output(build);
        assert_ne!(c, rs);
        assert_eq!(c, build.join("pi-pipe-c"));
    }
}
