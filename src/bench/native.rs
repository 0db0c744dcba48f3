//! What the benchmarks run outside this process: C baselines compiled at
//! bench time with `cc` (`benches/c/*.c`, into a temporary directory removed
//! at the end), whole programs timed from `fork` to `wait`, and the Python
//! side (the peer `fixtures/peers/bench_peer.py`, the `pi-*` ports, and the
//! `posix_ipc`/`sysv_ipc` modules, installed with pip when missing).
//!
//! The C and Python sources are compiled into the binary (`include_str!`)
//! and written into the temporary directory when used, so the benches run
//! from an installed binary or a packaged crate, with no source tree.

use super::{Bench, Ctx, Figure, Python, Where, place_label};
use crate::error::{Error, Result};
use std::cell::{OnceCell, RefCell};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one program run (a Python peer, a port, a C baseline) may take.
const PROGRAM_DEADLINE: Duration = Duration::from_secs(300);

/// The C baselines, by name: their source, compiled on first use.
const C_SOURCES: [(&str, &str); 2] = [
    ("fork_wait", include_str!("../../benches/c/fork_wait.c")),
    ("pi_serial", include_str!("../../benches/c/pi_serial.c")),
];

macro_rules! py {
    ($path:literal) => {
        ($path, include_str!(concat!("../../fixtures/", $path)))
    };
}

/// The Python side, by its path under `fixtures/`: the bench peer, the
/// `pi-*` Python ports (`peers/pi/`, with the module they share) and the
/// graded good ports used where no separate peer exists.
const PY_SOURCES: [(&str, &str); 12] = [
    py!("peers/bench_peer.py"),
    py!("peers/pi/pi_common.py"),
    py!("peers/pi/pi-file.py"),
    py!("peers/pi/pi-manager.py"),
    py!("peers/pi/pi-pool.py"),
    py!("peers/pi/pi-posix-mq.py"),
    py!("peers/pi/pi-queue.py"),
    py!("peers/pi/pi-shm-sem.py"),
    py!("peers/pi/pi-socketpair.py"),
    py!("peers/pi/pi-value.py"),
    py!("ports/good/pi-pipe.py"),
    py!("ports/good/pi-sysv-mq.py"),
];

/// The compiled C baselines and the Python modules set up so far.
pub struct Tools {
    dir: PathBuf,
    compiled: [OnceCell<std::result::Result<PathBuf, String>>; 2],
    python_written: OnceCell<std::result::Result<(), String>>,
    modules: RefCell<Vec<(&'static str, std::result::Result<(), String>)>>,
    notes: RefCell<Vec<String>>,
}

impl Tools {
    /// No tool built yet; the temporary directory is made on first use.
    pub fn new() -> Tools {
        Tools {
            dir: std::env::temp_dir().join(format!("ipckit-bench-{}", std::process::id())),
            compiled: Default::default(),
            python_written: OnceCell::new(),
            modules: RefCell::new(Vec::new()),
            notes: RefCell::new(Vec::new()),
        }
    }

    /// What was set up or skipped, for the report.
    pub fn notes(&self) -> Vec<String> {
        self.notes.borrow().clone()
    }

    /// The C baseline `name` compiled with `cc -O2`, or why not.
    pub fn c_program(&self, name: &str) -> Result<&Path> {
        let i = C_SOURCES
            .iter()
            .position(|(n, _)| *n == name)
            .expect("a C baseline of benches/c");
        let built = self.compiled[i].get_or_init(|| {
            let out = self.compile(C_SOURCES[i].0, C_SOURCES[i].1);
            if let Err(why) = &out {
                self.notes
                    .borrow_mut()
                    .push(format!("C baseline {name}: {why}"));
            }
            out
        });
        built
            .as_deref()
            .map_err(|why| Error::Unsupported(why.clone()))
    }

    /// The Python file `fixtures/PATH` of [`PY_SOURCES`], written (all of
    /// them, on first use) under the temporary directory; `None` when `path`
    /// is not one of them.
    fn python_file(&self, path: &str) -> Option<Result<PathBuf>> {
        PY_SOURCES.iter().find(|(p, _)| *p == path)?;
        let root = self.dir.join("py");
        let written = self.python_written.get_or_init(|| {
            PY_SOURCES.iter().try_for_each(|(p, text)| {
                let file = root.join(p);
                std::fs::create_dir_all(file.parent().expect("a path under py/"))
                    .and_then(|()| std::fs::write(&file, text))
                    .map_err(|e| format!("{}: {e}", file.display()))
            })
        });
        Some(match written {
            Ok(()) => Ok(root.join(path)),
            Err(why) => Err(Error::Unsupported(why.clone())),
        })
    }

    fn compile(&self, name: &str, source: &str) -> std::result::Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let src = self.dir.join(format!("{name}.c"));
        let exe = self.dir.join(name);
        std::fs::write(&src, source).map_err(|e| e.to_string())?;
        let cc = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(&src)
            .arg("-lm")
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("no C compiler (cc: {e})"))?;
        if !cc.status.success() {
            return Err(format!(
                "cc failed: {}",
                String::from_utf8_lossy(&cc.stderr).trim()
            ));
        }
        Ok(exe)
    }

    /// Imports a Python module, installing it with `pip install --user`
    /// when missing (not in a `--quick` run); the reason when it cannot.
    fn python_module(
        &self,
        module: &'static str,
        install: bool,
    ) -> std::result::Result<(), String> {
        if let Some((_, r)) = self.modules.borrow().iter().find(|(m, _)| *m == module) {
            return r.clone();
        }
        let import = |m: &str| {
            Command::new("python3")
                .args(["-c", &format!("import {m}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let result = if import(module) {
            Ok(())
        } else if !install {
            Err(format!(
                "Python module {module} not installed (a full `ipckit bench` installs it)"
            ))
        } else {
            let pip = run_program(
                &[
                    "python3", "-m", "pip", "install", "--user", "--quiet", module,
                ],
                PROGRAM_DEADLINE,
            );
            match pip {
                Ok(_) if import(module) => {
                    self.notes
                        .borrow_mut()
                        .push(format!("installed the Python module {module} with pip"));
                    Ok(())
                }
                Ok(_) => Err(format!("pip installed {module}, but it does not import")),
                Err(e) => Err(format!("Python module {module} not installable: {e}")),
            }
        };
        if let Err(why) = &result {
            self.notes.borrow_mut().push(why.clone());
        }
        self.modules.borrow_mut().push((module, result.clone()));
        result
    }
}

impl Default for Tools {
    fn default() -> Self {
        Tools::new()
    }
}

impl Drop for Tools {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a program to its end (killed after `deadline`) and returns its wall
/// time, from `fork` to `wait`, and what it printed; an error when it cannot
/// start or exits other than 0.
pub fn run_program(argv: &[&str], deadline: Duration) -> Result<(Duration, String)> {
    let start = Instant::now();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        // A group of its own, so a program past its deadline is killed with
        // every process it started (`killpg(2)`), not just its first.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(argv[0].to_string(), e))?;
    // The programs print a few lines, which the pipes hold until we read them
    // after the wait; one that hangs is killed by the deadline.
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut guard = crate::process::ChildGuard::adopt(pid);
    let status = match guard.wait_timeout(deadline)? {
        Some(status) => status,
        None => {
            // `killpg(2)`: the program and every process it started; then reap it.
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = guard.wait();
            return Err(Error::Timeout {
                what: argv.join(" "),
                after: deadline,
            });
        }
    };
    let elapsed = start.elapsed();
    let mut text = String::new();
    let mut errors = String::new();
    if let Some(out) = out.as_mut() {
        let _ = std::io::Read::read_to_string(out, &mut text);
    }
    if let Some(err) = err.as_mut() {
        let _ = std::io::Read::read_to_string(err, &mut errors);
    }
    if !status.success() {
        return Err(Error::Died(format!(
            "{} {status}: {}",
            argv.join(" "),
            errors.trim()
        )));
    }
    Ok((elapsed, text))
}

/// Runs a program and parses the one number it printed.
pub fn program_number(argv: &[&str]) -> Result<f64> {
    let (_, out) = run_program(argv, PROGRAM_DEADLINE)?;
    out.trim()
        .parse()
        .map_err(|_| Error::invalid("program output", format!("{argv:?} printed {out:?}")))
}

/// `python3 --version`, or why not.
pub fn python_version() -> String {
    run_program(&["python3", "--version"], Duration::from_secs(30))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|e| format!("no python3 ({e})"))
}

/// The Python module a benchmark's Python side imports, if any.
fn module_for(bench: &str) -> Option<&'static str> {
    if matches!(bench, "posix-mq" | "pi-posix-mq" | "pi-shm-sem") {
        Some("posix_ipc")
    } else if bench == "sysv-mq" {
        Some("sysv_ipc")
    } else {
        None
    }
}

/// The Python side's figures: one per placement, skipped with the reason
/// when it cannot run.
pub fn python(ctx: &Ctx, bench: &Bench, runs: usize, ops: u64) -> Vec<Figure> {
    let skip = |why: String| {
        bench
            .places
            .iter()
            .map(|&p| {
                Figure::new(
                    "python",
                    p,
                    bench.unit,
                    Err(Error::Unsupported(why.clone())),
                )
            })
            .collect()
    };
    if let Some(module) = module_for(bench.name)
        && let Err(why) = ctx.native.python_module(module, !ctx.quick)
    {
        return skip(why);
    }
    match bench.python {
        Python::Port => match python_port(&ctx.native, bench.name) {
            Some(Ok(port)) => bench
                .places
                .iter()
                .map(|&place| {
                    let port = port.to_string_lossy();
                    let n = ops.to_string();
                    let samples = (0..runs)
                        .map(|_| time_program(&["python3", &port, &n]))
                        .collect();
                    Figure::new("python", place, bench.unit, samples)
                })
                .collect(),
            Some(Err(e)) => skip(e.to_string()),
            None => skip(format!("no Python port of {}", bench.name)),
        },
        Python::Peer => match python_peer(&ctx.native, bench, runs, (ops / 10).max(10)) {
            Ok(samples) => bench
                .places
                .iter()
                .map(|&p| {
                    let s = samples
                        .get(place_label(p))
                        .and_then(|v| serde_json::from_value::<Vec<f64>>(v.clone()).ok())
                        .ok_or_else(|| {
                            Error::invalid(
                                "python peer",
                                format!("no samples for {}", place_label(p)),
                            )
                        });
                    Figure::new("python", p, bench.unit, s)
                })
                .collect(),
            Err(e) => skip(e.to_string()),
        },
    }
}

/// The Python port of a `pi-*` program: `fixtures/peers/pi/ID.py`, else the
/// graded good port `fixtures/ports/good/ID.py` (written from [`PY_SOURCES`]).
fn python_port(tools: &Tools, id: &str) -> Option<Result<PathBuf>> {
    [format!("peers/pi/{id}.py"), format!("ports/good/{id}.py")]
        .iter()
        .find_map(|p| tools.python_file(p))
}

/// Runs the peer for `bench` and returns its JSON object: samples per
/// placement label.
fn python_peer(
    tools: &Tools,
    bench: &Bench,
    runs: usize,
    ops: u64,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let peer = tools
        .python_file("peers/bench_peer.py")
        .expect("the peer is one of PY_SOURCES")?;
    let places: Vec<&str> = bench.places.iter().map(|&p| place_label(p)).collect();
    let (_, out) = run_program(
        &[
            "python3",
            &peer.to_string_lossy(),
            bench.name,
            &ops.to_string(),
            &runs.to_string(),
            &places.join(","),
        ],
        PROGRAM_DEADLINE,
    )?;
    let json: serde_json::Value = serde_json::from_str(out.trim())
        .map_err(|e| Error::invalid("python peer output", format!("{e}: {out:?}")))?;
    match json {
        serde_json::Value::Object(map) => match map.get("skipped").and_then(|s| s.as_str()) {
            Some(why) => Err(Error::Unsupported(why.to_string())),
            None => Ok(map),
        },
        other => Err(Error::invalid("python peer output", other.to_string())),
    }
}

/// One sample of a whole program: its wall time in seconds.
pub fn time_program(argv: &[&str]) -> Result<f64> {
    run_program(argv, PROGRAM_DEADLINE).map(|(t, _)| t.as_secs_f64())
}

/// The placement is unused by whole-program samples (they run as scheduled).
pub fn unpinned(place: Where) {
    debug_assert!(
        place.is_none(),
        "whole programs run at the scheduler's placement"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_python_side_is_compiled_in_and_written_where_it_runs() {
        let tools = Tools::new();
        for bench in super::super::BENCHES {
            let file = match bench.python {
                Python::Port => python_port(&tools, bench.name),
                Python::Peer => tools.python_file("peers/bench_peer.py"),
            };
            let file = file
                .unwrap_or_else(|| panic!("{}: no Python source", bench.name))
                .unwrap();
            assert!(file.starts_with(&tools.dir), "{}", file.display());
            assert!(file.is_file(), "{}", file.display());
        }
        // The pi ports import their shared module from beside them.
        assert!(tools.dir.join("py/peers/pi/pi_common.py").is_file());
        drop(tools);
    }
}
