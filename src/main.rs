//! The `ipckit` command line. Its command forms are a contract (DESIGN.md):
//! `exercises`, `run ID [ARGS]`, `audit [--format text|json] -- CMD...`,
//! `grade --exercise ID [--format ...] [--out FILE] -- CMD...`, `grade --dir DIR`,
//! `demo`, `bench`. The hidden `__supervise` is the grader's supervisor process and
//! `__internal` runs the Manager's server and the test drivers.

use clap::{Parser, Subcommand, ValueEnum};
use ipckit::programs;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ipckit",
    version,
    about = "A conformance kit for Unix processes and IPC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists every exercise ID the kit implements, one per line, ID first.
    Exercises,
    /// Runs the kit's reference program for an exercise.
    Run {
        /// The exercise ID (see `ipckit exercises`).
        id: String,
        /// Arguments for the program (pi-* programs take n first).
        args: Vec<String>,
    },
    /// Runs a command under the audit: reports zombies, orphans still running
    /// and leaked IPC objects, then removes them. Exit 0 when nothing was left.
    Audit {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Seconds adopted orphans may keep running after the command exits.
        #[arg(long, default_value = "1.5", value_parser = seconds, allow_negative_numbers = true)]
        linger: Duration,
        /// Wall-clock limit in seconds for the whole tree.
        #[arg(long, default_value = "600", value_parser = seconds, allow_negative_numbers = true)]
        timeout: Duration,
        /// Use the host's namespaces even when private ones are possible.
        #[arg(long)]
        no_isolate: bool,
        /// Also count new entries of this directory as leaks (repeatable).
        #[arg(long)]
        watch: Vec<std::path::PathBuf>,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Grades a student's port of an exercise (or every port in a folder):
    /// output, exit, time, zombies, orphans, leaks, mechanism.
    /// Exit 0 when every check passed, 1 when one failed, 2 when the grade
    /// could not run.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["exercise", "dir"])))]
    Grade {
        /// The exercise the port implements (see `ipckit exercises`).
        #[arg(long)]
        exercise: Option<String>,
        /// Grade every port in this folder (files named after exercise IDs).
        #[arg(long, conflicts_with = "exercise")]
        dir: Option<std::path::PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value_t = GradeFormat::Text)]
        format: GradeFormat,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Use this spec file instead of the built-in one.
        #[arg(long)]
        spec: Option<std::path::PathBuf>,
        /// Override the spec's time limit (seconds per run; checked like the
        /// spec's `time_limit`, and a bad value is an error grade).
        #[arg(long, allow_negative_numbers = true)]
        timeout: Option<f64>,
        /// Do not trace system calls (the mechanism check is then skipped).
        #[arg(long)]
        no_trace: bool,
        /// The port's command and its arguments.
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Grades the kit's own reference programs and prints the table.
    Demo,
    /// The side-by-side benchmarks: the kit, a raw-syscall baseline and Python.
    Bench {
        /// The benchmark to run (see `--list`); every one when omitted.
        name: Option<String>,
        /// Lists the benchmarks, one per line, name first.
        #[arg(long)]
        list: bool,
        /// Output format (`json`: machine, date, figures with their spread, targets).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Tiny sizes, to check that everything runs (the figures mean nothing).
        #[arg(long)]
        quick: bool,
    },
    /// The kit's own helpers (the Manager's server, test drivers).
    #[command(name = "__internal", hide = true)]
    Internal {
        /// The internal command.
        name: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The grader's supervisor (internal: JSON request on stdin).
    #[command(name = "__supervise", hide = true)]
    Supervise,
}

/// What `ipckit bench` was asked for.
struct BenchJob {
    name: Option<String>,
    list: bool,
    format: Format,
    out: Option<std::path::PathBuf>,
    quick: bool,
}

fn bench(job: BenchJob) -> ipckit::Result<i32> {
    use ipckit::bench;
    if job.list {
        for b in bench::BENCHES {
            println!("{}\t{}", b.name, b.op);
        }
        return Ok(0);
    }
    let opts = bench::Options {
        only: job.name.filter(|n| n != "all"),
        quick: job.quick,
        ipckit: None,
    };
    let report = bench::run(&opts)?;
    let text = match job.format {
        Format::Text => report.to_text(),
        Format::Json => serde_json::to_string_pretty(&report).expect("report serialises") + "\n",
    };
    match job.out {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| ipckit::Error::io(path.display().to_string(), e))?,
        None => print!("{text}"),
    }
    Ok(0)
}

#[derive(Clone, Copy, ValueEnum)]
enum GradeFormat {
    Text,
    Json,
    Junit,
    Gradescope,
}

impl From<GradeFormat> for ipckit::grade::report::Format {
    fn from(f: GradeFormat) -> Self {
        use ipckit::grade::report::Format as F;
        match f {
            GradeFormat::Text => F::Text,
            GradeFormat::Json => F::Json,
            GradeFormat::Junit => F::Junit,
            GradeFormat::Gradescope => F::Gradescope,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Parses a number of seconds given on the command line: finite, above zero
/// and small enough for a [`Duration`].
fn seconds(text: &str) -> Result<Duration, String> {
    let n: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if n.is_nan() || n <= 0.0 {
        return Err(format!("{text} seconds: must be above zero"));
    }
    Duration::try_from_secs_f64(n).map_err(|e| format!("{text} seconds: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Exercises => {
            for p in programs::all() {
                println!("{}\t{}", p.id, p.summary);
            }
            Ok(0)
        }
        Command::Run { id, args } => run(&id, &args),
        Command::Audit {
            format,
            linger,
            timeout,
            no_isolate,
            watch,
            cmd,
        } => {
            let opts = ipckit::audit::Options {
                linger,
                deadline: timeout,
                isolate: !no_isolate,
                watch_dirs: watch,
                stdout_to_stderr: matches!(format, Format::Json),
                ..Default::default()
            };
            audit(&cmd, &opts, format)
        }
        Command::Grade {
            exercise,
            dir,
            format,
            out,
            spec,
            timeout,
            no_trace,
            cmd,
        } => {
            let opts = ipckit::grade::Options {
                trace: !no_trace,
                time_limit: timeout,
                ..Default::default()
            };
            let job = GradeJob {
                exercise,
                dir,
                spec,
                cmd,
            };
            grade(job, &opts, format.into(), out.as_deref())
        }
        Command::Demo => demo::run(),
        Command::Bench {
            name,
            list,
            format,
            out,
            quick,
        } => bench(BenchJob {
            name,
            list,
            format,
            out,
            quick,
        }),
        Command::Internal { name, args } => programs::internal::run(&name, &args),
        Command::Supervise => Ok(ipckit::grade::supervisor::serve()),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("ipckit: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(id: &str, args: &[String]) -> ipckit::Result<i32> {
    let program = programs::find(id).ok_or_else(|| {
        ipckit::Error::invalid(
            "exercise",
            format!("no reference program called {id:?}; `ipckit exercises` lists them"),
        )
    })?;
    let code = (program.run)(args)?;
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(code)
}

fn audit(cmd: &[String], opts: &ipckit::audit::Options, format: Format) -> ipckit::Result<i32> {
    let report = ipckit::audit::run(cmd, opts)?;
    match format {
        Format::Text => eprint!("{}", report.to_text()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        ),
    }
    Ok(if report.clean() { 0 } else { 1 })
}

/// What `ipckit grade` was asked to grade.
struct GradeJob {
    exercise: Option<String>,
    dir: Option<std::path::PathBuf>,
    spec: Option<std::path::PathBuf>,
    cmd: Vec<String>,
}

fn grade(
    job: GradeJob,
    opts: &ipckit::grade::Options,
    format: ipckit::grade::report::Format,
    out: Option<&std::path::Path>,
) -> ipckit::Result<i32> {
    use ipckit::grade::{self, Grade, Verdict, report};
    let (grades, several) = match (&job.dir, &job.exercise) {
        (Some(dir), _) => match grade::ports::grade_dir(dir, opts) {
            Ok(g) => (g, true),
            Err(e) => (vec![Grade::error(&dir.display().to_string(), e)], true),
        },
        (None, Some(id)) => {
            let spec = match &job.spec {
                Some(path) => grade::spec::load(path),
                None => grade::spec::builtin(id),
            };
            let g = match spec {
                Ok(spec) => grade::grade(&spec, &job.cmd, opts),
                Err(e) => Grade::error(id, e),
            };
            (vec![g], false)
        }
        (None, None) => unreachable!("clap requires --exercise or --dir"),
    };
    let colour = out.is_none() && report::colour_wanted();
    let text = report::render(&grades, format, several, colour);
    match out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| ipckit::Error::io(path.display().to_string(), e))?,
        None => print!("{text}"),
    }
    for g in grades.iter().filter(|g| g.verdict == Verdict::Error) {
        eprintln!(
            "ipckit grade: {}: {}",
            g.exercise,
            g.error.as_deref().unwrap_or("error")
        );
    }
    Ok(grades
        .iter()
        .map(|g| g.verdict.exit_code())
        .max()
        .unwrap_or(2))
}

mod demo {
    //! `ipckit demo`: the grader run over the kit's own reference programs
    //! (`ipckit run ID` for every exercise the kit implements), in a table.

    use ipckit::grade::{self, Grade, Verdict, report};
    use ipckit::programs;

    pub fn run() -> ipckit::Result<i32> {
        let me = std::env::current_exe().map_err(|e| ipckit::Error::io("current executable", e))?;
        let me = me.to_string_lossy().into_owned();
        let opts = grade::Options::default();
        let ids: Vec<&str> = programs::all().map(|p| p.id).collect();
        let grades =
            grade::ports::grade_all(
                &ids,
                grade::ports::cores(),
                |id| match grade::spec::builtin(id) {
                    Ok(spec) => {
                        grade::grade(&spec, &[me.clone(), "run".into(), id.to_string()], &opts)
                    }
                    Err(e) => Grade::error(id, e),
                },
            );
        print!("{}", report::table(&grades, report::colour_wanted()));
        Ok(i32::from(grades.iter().any(|g| g.verdict != Verdict::Pass)))
    }
}
