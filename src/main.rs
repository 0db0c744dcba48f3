//! The `ipckit` command line. Its command forms are a contract (DESIGN.md):
//! `exercises`, `run ID [ARGS]`, `audit [--format text|json] -- CMD...`, `demo`.

use clap::{Parser, Subcommand, ValueEnum};
use ipckit::programs;
use std::process::ExitCode;

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
        #[arg(long, default_value_t = 1.5)]
        linger: f64,
        /// Wall-clock limit in seconds for the whole tree.
        #[arg(long, default_value_t = 600.0)]
        timeout: f64,
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
    /// Runs every reference program under the audit and prints a table.
    Demo,
    /// The side-by-side benchmarks: the kit, a raw-syscall baseline and Python.
    Bench {
        /// Which benchmark to run.
        #[arg(value_enum, default_value_t = BenchName::All)]
        which: BenchName,
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
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchName {
    All,
    Queue,
    ManagerPool,
}

fn bench(which: BenchName) -> ipckit::Result<i32> {
    if matches!(which, BenchName::All | BenchName::Queue) {
        ipckit::bench::queue::run(ipckit::bench::queue::Sizes::default())?;
    }
    if matches!(which, BenchName::All | BenchName::ManagerPool) {
        ipckit::bench::manager_pool::run(None)?;
    }
    Ok(0)
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
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
                linger: std::time::Duration::from_secs_f64(linger),
                deadline: std::time::Duration::from_secs_f64(timeout),
                isolate: !no_isolate,
                watch_dirs: watch,
                stdout_to_stderr: matches!(format, Format::Json),
                ..Default::default()
            };
            audit(&cmd, &opts, format)
        }
        Command::Demo => demo::run(),
        Command::Bench { which } => bench(which),
        Command::Internal { name, args } => programs::internal::run(&name, &args),
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

mod demo {
    //! `ipckit demo`: every reference program, each run under the audit in a
    //! process of its own, in a table.

    use ipckit::programs;

    pub fn run() -> ipckit::Result<i32> {
        let me = std::env::current_exe().map_err(|e| ipckit::Error::io("current executable", e))?;
        println!(
            "{:<18} {:<8} {:>7} {:>8} {:>8} {:>6}",
            "exercise", "verdict", "seconds", "zombies", "orphans", "leaks"
        );
        let mut failed = 0;
        for p in programs::all() {
            let out = std::process::Command::new(&me)
                .args([
                    "audit",
                    "--format",
                    "json",
                    "--",
                    &me.to_string_lossy(),
                    "run",
                    p.id,
                ])
                .output()
                .map_err(|e| ipckit::Error::io("ipckit audit", e))?;
            let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| ipckit::Error::Protocol(format!("audit report for {}: {e}", p.id)))?;
            let count = |k: &str| report[k].as_array().map_or(0, Vec::len);
            let exited_ok = report["exit"] == serde_json::json!({"Exited": 0});
            let ok = out.status.success() && exited_ok;
            failed += usize::from(!ok);
            println!(
                "{:<18} {:<8} {:>7.2} {:>8} {:>8} {:>6}",
                p.id,
                if ok { "clean" } else { "FAIL" },
                report["seconds"].as_f64().unwrap_or(f64::NAN),
                count("zombies"),
                count("orphans"),
                count("leaks")
            );
        }
        println!("{} program(s), {failed} not clean", programs::all().count());
        Ok(i32::from(failed > 0))
    }
}
