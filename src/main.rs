//! The `ipckit` command line. Its command forms are a contract (DESIGN.md):
//! `exercises`, `run ID [ARGS]`, `audit [--format text|json] -- CMD...`,
//! `grade --exercise ID [--format ...] [--out FILE] -- CMD...`, `grade --dir DIR`,
//! `grade --spec FILE [--exercise ID] -- CMD...`, `spec check FILE...`,
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
    /// Colour in text reports: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
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
    /// could not run, 3 when it is incomplete (a check that applies could not
    /// be made here: see the report's containment section).
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["exercise", "dir", "spec", "class"])))]
    Grade {
        /// The exercise the port implements (see `ipckit exercises`).
        #[arg(long)]
        exercise: Option<String>,
        /// Grade every port in this folder (files named after exercise IDs).
        #[arg(long, conflicts_with_all = ["exercise", "spec"])]
        dir: Option<std::path::PathBuf>,
        /// Grade a class: one folder per student, each holding ports named
        /// after exercise IDs (needs --report-dir).
        #[arg(long, conflicts_with_all = ["exercise", "dir", "spec"], requires = "report_dir")]
        class: Option<std::path::PathBuf>,
        /// Exercises every student must hand in (a missing one scores 0).
        #[arg(long, value_delimiter = ',')]
        require: Vec<String>,
        /// Ports graded at once with --dir or --class (default: the number of cores).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Where --class writes summary.csv, index.html and one report per port
        /// (created before grading; an unwritable folder is refused).
        #[arg(long)]
        report_dir: Option<std::path::PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value_t = GradeFormat::Text)]
        format: GradeFormat,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// With --dir or --class: grade with the specs in this folder (every
        /// `ID.toml`; they are the only exercises) instead of the built-in ones.
        #[arg(long, conflicts_with_all = ["exercise", "spec"])]
        specs: Option<std::path::PathBuf>,
        /// Grade with this spec file (a teacher's own, docs/specs.md); with
        /// `--exercise` too, the spec's id must be that exercise.
        #[arg(long)]
        spec: Option<std::path::PathBuf>,
        /// Override the spec's time limit (seconds per run; checked like the
        /// spec's `time_limit`, and a bad value is an error grade).
        #[arg(long, allow_negative_numbers = true)]
        timeout: Option<f64>,
        /// Do not trace system calls (the mechanism check is then skipped).
        #[arg(long)]
        no_trace: bool,
        /// When run by root, the user the port runs as: `fresh` (default: a
        /// new uid per run, no home, no groups), `UID[:GID]`, or `same` (root).
        #[arg(long, default_value = "fresh")]
        run_as: ipckit::grade::supervisor::RunAs,
        /// Use the host's namespaces even when private ones are possible
        /// (then `--dir` grades one port at a time).
        #[arg(long)]
        no_isolate: bool,
        /// The port's command and its arguments.
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Works with spec files (docs/specs.md).
    Spec {
        /// What to do.
        #[command(subcommand)]
        action: SpecAction,
    },
    /// Grades the kit's own reference programs and prints the table.
    Demo,
    /// Writes a ready-to-use autograder for a platform (Gradescope, GitHub Classroom).
    Init {
        /// The platform.
        #[command(subcommand)]
        platform: ipckit::grade::init::Platform,
    },
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff), for `man -l -`.
    Man,
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

#[derive(Subcommand)]
enum SpecAction {
    /// Validates spec files without running anything: exit 0 and one line
    /// each when every one is valid, 2 and every problem (with its key)
    /// when one is not.
    Check {
        /// The spec files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

/// `ipckit spec check FILE...`.
fn spec_check(files: &[std::path::PathBuf]) -> ipckit::Result<i32> {
    use ipckit::grade::spec;
    let mut code = 0;
    for file in files {
        let name = file.display().to_string();
        let checked = spec::read_file(file)
            .map_err(|e| vec![spec::Problem::new("", e.to_string())])
            .and_then(|text| spec::check(&name, &text));
        match checked {
            Ok(s) => println!("{name}: valid spec {:?}: {} run(s)", s.id, s.runs.len()),
            Err(problems) => {
                code = 2;
                eprintln!("{name}: {} problem(s):", problems.len());
                for p in problems {
                    eprintln!("  {p}");
                }
            }
        }
    }
    Ok(code)
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
    Html,
}

impl From<GradeFormat> for ipckit::grade::report::Format {
    fn from(f: GradeFormat) -> Self {
        use ipckit::grade::report::Format as F;
        match f {
            GradeFormat::Text => F::Text,
            GradeFormat::Json => F::Json,
            GradeFormat::Junit => F::Junit,
            GradeFormat::Gradescope => F::Gradescope,
            GradeFormat::Html => F::Html,
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
    match cli.color {
        ColorChoice::Auto => {}
        ColorChoice::Always => ipckit::grade::report::set_colour(Some(true)),
        ColorChoice::Never => ipckit::grade::report::set_colour(Some(false)),
    }
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
            class: Some(class),
            require,
            jobs,
            report_dir,
            no_trace,
            timeout,
            specs,
            ..
        } => {
            let opts = ipckit::grade::Options {
                trace: !no_trace,
                time_limit: timeout,
                ..Default::default()
            };
            let report_dir = report_dir.expect("clap requires --report-dir with --class");
            grade_class(&class, require, jobs, specs.as_deref(), &report_dir, &opts)
        }
        Command::Grade {
            exercise,
            dir,
            jobs,
            require,
            format,
            out,
            spec,
            specs,
            timeout,
            no_trace,
            run_as,
            no_isolate,
            cmd,
            ..
        } => {
            let opts = ipckit::grade::Options {
                trace: !no_trace,
                run_as,
                isolate: !no_isolate,
                time_limit: timeout,
                ..Default::default()
            };
            let job = GradeJob {
                exercise,
                dir,
                spec,
                specs,
                cmd,
                jobs: jobs.map_or_else(ipckit::grade::ports::cores, usize::from),
                require,
            };
            grade(job, &opts, format.into(), out.as_deref())
        }
        Command::Spec {
            action: SpecAction::Check { files },
        } => spec_check(&files),
        Command::Demo => demo::run(),
        Command::Init { platform } => ipckit::grade::init::run(&platform).map(|()| 0),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "ipckit", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            use clap::CommandFactory;
            let page = clap_mangen::Man::new(Cli::command());
            page.render(&mut std::io::stdout())
                .map(|()| 0)
                .map_err(|e| ipckit::Error::io("standard output", e))
        }
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
        let hint = ipckit::grade::ports::nearest_exercise(id)
            .map_or(String::new(), |n| format!("did you mean {n:?}? "));
        ipckit::Error::invalid(
            "exercise",
            format!("no reference program called {id:?}; {hint}`ipckit exercises` lists them"),
        )
    })?;
    let code = (program.run)(args)?;
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(code)
}

fn audit(cmd: &[String], opts: &ipckit::audit::Options, format: Format) -> ipckit::Result<i32> {
    #[cfg(target_os = "linux")]
    ipckit::audit::interrupt::install();
    #[cfg(target_os = "linux")]
    if let Some(status) = ipckit::audit::enter_pid_namespace(opts) {
        return Ok(status);
    }
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
    /// The folder of specs `--dir` grades with (`--specs`), else the built-in ones.
    specs: Option<std::path::PathBuf>,
    cmd: Vec<String>,
    /// Ports graded at once (`--dir`).
    jobs: usize,
    /// Exercises the folder must hold (`--dir`).
    require: Vec<String>,
}

/// What a grade that could not start is called: the exercise, else the
/// spec file's name.
fn job_name(job: &GradeJob) -> String {
    let file = job.spec.as_deref().and_then(|p| p.file_stem());
    match (&job.exercise, file) {
        (Some(id), _) => id.clone(),
        (None, Some(stem)) => stem.to_string_lossy().into_owned(),
        (None, None) => "spec".into(),
    }
}

fn grade(
    job: GradeJob,
    opts: &ipckit::grade::Options,
    format: ipckit::grade::report::Format,
    out: Option<&std::path::Path>,
) -> ipckit::Result<i32> {
    use ipckit::grade::{self, Grade, Verdict, report};
    #[cfg(target_os = "linux")]
    ipckit::audit::interrupt::install();
    if let Some(path) = out {
        // Refused before any grading: the report is never lost.
        grade::class::prepare_file(path)?;
    }
    let (grades, several) = match (&job.dir, &job.exercise) {
        (Some(dir), _) => match spec_set(job.specs.as_deref())
            .and_then(|specs| grade::ports::grade_dir(dir, opts, job.jobs, &job.require, &specs))
        {
            Ok(g) => (g, true),
            Err(e) => (vec![Grade::error(&dir.display().to_string(), e)], true),
        },
        (None, _) => {
            let g = match grade::spec::resolve(job.exercise.as_deref(), job.spec.as_deref()) {
                Ok(spec) => grade::grade(&spec, &job.cmd, opts),
                Err(e) => Grade::error(&job_name(&job), e),
            };
            (vec![g], false)
        }
    };
    let colour = report::colour_for(out.is_none());
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
    let overall = Verdict::overall(grades.iter().map(|g| g.verdict));
    // With --dir, a port that could not be built or graded scores 0 and is
    // reported: the folder's grade ran, so the exit status is 1, not 2 (2 is
    // kept for a folder that could not be read at all).
    let folder_read = job.dir.is_some() && grades.iter().any(|g| g.port.is_some());
    Ok(match overall {
        Verdict::Error if folder_read => 1,
        v => v.exit_code(),
    })
}

/// The specs of `--specs DIR`, else the built-in ones.
fn spec_set(dir: Option<&std::path::Path>) -> ipckit::Result<ipckit::grade::spec::SpecSet> {
    use ipckit::grade::spec::SpecSet;
    dir.map_or_else(SpecSet::builtin, SpecSet::from_dir)
}

/// `ipckit grade --class DIR --report-dir OUT`: exit 0 when every port
/// handed in passed and nothing required is missing, 1 otherwise.
fn grade_class(
    dir: &std::path::Path,
    require: Vec<String>,
    jobs: Option<u16>,
    specs: Option<&std::path::Path>,
    out: &std::path::Path,
    opts: &ipckit::grade::Options,
) -> ipckit::Result<i32> {
    use ipckit::grade::class;
    class::prepare_dir(out)?;
    let options = class::ClassOptions {
        require,
        jobs: jobs.map_or_else(ipckit::grade::ports::cores, usize::from),
        specs: spec_set(specs)?,
    };
    let graded = class::grade_class(dir, &options, opts)?;
    class::write_reports(&graded, out)?;
    for (student, u) in &graded.unmatched {
        eprintln!("ipckit grade: not graded: {student}/{u}");
    }
    let full = graded.rows.iter().filter(|r| r.score == r.max).count();
    eprintln!(
        "ipckit grade: {} rows, {full} with full marks; reports in {}",
        graded.rows.len(),
        out.display()
    );
    Ok(i32::from(graded.rows.iter().any(|r| !r.failed.is_empty())))
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
