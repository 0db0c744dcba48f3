//! Side-by-side benchmarks (`ipckit bench`, `cargo bench`).
//!
//! Every benchmark of [`BENCHES`] measures one mechanism three ways in one run
//! on the same machine: the kit's reference implementation (`ipckit`), a
//! baseline written directly on the system calls in the same process layout
//! (`raw`, or a C program compiled at bench time: `c`), and the Python
//! equivalent (`python`: a peer in `fixtures/peers/`, or the `pi-*` program's
//! Python port). Each is sampled several times and reported as min, median and
//! max ([`Stats`]): these machines are noisy shared VMs, so the spread says
//! how far a median can be trusted and side-by-side ratios mean more than
//! absolute numbers. [`Report`] is the whole run (machine, date, figures,
//! targets), printed as a table or written as JSON for `scripts/bench-table.py`.
//!
//! Where two processes talk they run at three placements ([`Where`]): as the
//! scheduler puts them, pinned to one core, and pinned to two cores.
//!
//! Benchmarks fork, so they run in a single-threaded process (the `ipckit`
//! binary or a `harness = false` bench binary).

mod fork;
mod locks;
pub mod manager_pool;
mod mqs;
mod native;
mod pi;
mod pingpong;
pub mod queue;
mod report;
mod stats;

pub use report::{BenchResult, Figure, Machine, Outcome, Report, Target};
pub use stats::{Stats, Unit};

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Where the two processes of a ping-pong run (`sched_setaffinity(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both on CPU 0: every wake-up is a context switch on one core.
    SameCore,
    /// Parent on CPU 0, child on CPU 1: every wake-up crosses cores.
    CrossCore,
}

impl Placement {
    /// Both placements, in the order tables show them.
    pub const ALL: [Placement; 2] = [Placement::SameCore, Placement::CrossCore];

    /// The CPUs for (parent, child).
    pub fn cpus(self) -> (usize, usize) {
        match self {
            Placement::SameCore => (0, 0),
            Placement::CrossCore => (0, 1),
        }
    }

    /// A short label for tables and peer scripts.
    pub fn label(self) -> &'static str {
        match self {
            Placement::SameCore => "same-core",
            Placement::CrossCore => "cross-core",
        }
    }
}

/// Where a measurement runs: the scheduler's choice (`None`) or pinned.
pub type Where = Option<Placement>;

/// The three placements, in the order tables show them.
pub const PLACES: [Where; 3] = [None, Some(Placement::SameCore), Some(Placement::CrossCore)];
/// Only the scheduler's placement (one process, or a layout pinning would distort).
pub const SCHEDULER: [Where; 1] = [None];

/// The label of a placement: "scheduler", "same-core" or "cross-core".
pub fn place_label(place: Where) -> &'static str {
    place.map_or("scheduler", Placement::label)
}

/// The CPUs of (parent, child) at a placement (`None`: not pinned).
pub fn place_cpus(place: Where) -> (Option<usize>, Option<usize>) {
    match place {
        None => (None, None),
        Some(p) => (Some(p.cpus().0), Some(p.cpus().1)),
    }
}

/// One benchmark: a mechanism, what one operation is, and its sides.
pub struct Bench {
    /// The name `ipckit bench NAME` takes.
    pub name: &'static str,
    /// One operation, in words ("Connection send + recv of a u64, both ways").
    pub op: &'static str,
    /// How its figures are expressed.
    pub unit: Unit,
    /// Operations per sample at full size (`--quick` divides by 1000).
    pub ops: u64,
    /// The placements it runs at.
    pub places: &'static [Where],
    /// The native sides: a label ("ipckit", "raw", "c") and one sample.
    pub sides: &'static [(&'static str, Sample)],
    /// The Python side.
    pub python: Python,
}

/// One native sample: seconds per operation (or operations per second for a
/// throughput), at a placement, for `ops` operations.
pub type Sample = fn(&Ctx, Where, u64) -> Result<f64>;

/// How a benchmark's Python side is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Python {
    /// `fixtures/peers/bench_peer.py NAME OPS RUNS PLACES`, which prints a
    /// JSON object of samples per placement.
    Peer,
    /// The Python port of a `pi-*` program, run as a whole program.
    Port,
}

/// Every benchmark, in the order tables show them.
pub const BENCHES: &[Bench] = &[
    fork::FORK_WAIT,
    pingpong::PIPE,
    pingpong::SOCKETPAIR,
    pingpong::CONNECTION,
    mqs::POSIX_MQ,
    mqs::SYSV_MQ,
    locks::VALUE_LOCK,
    locks::SEMAPHORE,
    queue::ROUND_TRIP,
    queue::THROUGHPUT,
    manager_pool::NAMESPACE,
    manager_pool::POOL_APPLY,
    manager_pool::MANAGER_START,
    pi::PI_FILE,
    pi::PI_PIPE,
    pi::PI_SOCKETPAIR,
    pi::PI_QUEUE,
    pi::PI_POOL,
    pi::PI_POSIX_MQ,
    pi::PI_SYSV_MQ,
    pi::PI_SHM_SEM,
    pi::PI_VALUE,
    pi::PI_MANAGER,
];

/// The benchmark called `name`.
pub fn find(name: &str) -> Option<&'static Bench> {
    BENCHES.iter().find(|b| b.name == name)
}

/// What to run and how big.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this benchmark (`None`: every one).
    pub only: Option<String>,
    /// Tiny sizes (ops / 1000, 3 samples): checks that everything runs; the
    /// figures mean nothing.
    pub quick: bool,
    /// The `ipckit` binary, which the Manager execs as its server and which
    /// runs the `pi-*` programs (`None`: the current executable).
    pub ipckit: Option<PathBuf>,
}

/// What a sample needs: the sizes and the programs it runs.
pub struct Ctx {
    quick: bool,
    ipckit: PathBuf,
    native: native::Tools,
    /// The benchmark running now (the `pi-*` samples run the program it names).
    current: &'static str,
}

impl Ctx {
    /// Samples per figure.
    pub fn runs(&self, bench: &Bench) -> usize {
        match (self.quick, bench.python) {
            (true, _) => 3,
            (false, Python::Port) => 5,
            (false, Python::Peer) => 5,
        }
    }

    /// Operations per sample.
    pub fn ops(&self, bench: &Bench) -> u64 {
        if self.quick {
            (bench.ops / 1000).max(10)
        } else {
            bench.ops
        }
    }
}

/// Runs the benchmarks `opts` asks for (a progress line on standard error
/// says which) and returns the report.
pub fn run(opts: &Options) -> Result<Report> {
    crate::process::require_single_thread()?;
    let benches: Vec<&Bench> = match &opts.only {
        Some(name) => vec![find(name).ok_or_else(|| {
            Error::invalid(
                "benchmark",
                format!("no benchmark called {name:?}; `ipckit bench --list` lists them"),
            )
        })?],
        None => BENCHES.iter().collect(),
    };
    let ipckit = match &opts.ipckit {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| Error::io("current executable", e))?,
    };
    let mut ctx = Ctx {
        quick: opts.quick,
        ipckit,
        native: native::Tools::new(),
        current: "",
    };
    let mut progress = report::Progress::new(benches.len());
    let mut results = Vec::new();
    for bench in benches {
        results.push(measure(&mut ctx, bench, &mut progress)?);
    }
    progress.finish();
    Ok(Report::new(results, opts.quick, ctx.native.notes()))
}

/// Every side of one benchmark at every placement.
fn measure(ctx: &mut Ctx, bench: &Bench, progress: &mut report::Progress) -> Result<BenchResult> {
    let (runs, ops) = (ctx.runs(bench), ctx.ops(bench));
    ctx.current = bench.name;
    let mut figures = Vec::new();
    for &place in bench.places {
        // The sides take turns, one sample each per round, so a change in
        // the machine's load during the benchmark falls on all of them alike.
        let mut samples: Vec<Vec<Result<f64>>> = bench.sides.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for (&(side, sample), taken) in bench.sides.iter().zip(&mut samples) {
                progress.show(bench.name, side, place);
                taken.push(sample(ctx, place, ops));
            }
        }
        for (&(side, _), taken) in bench.sides.iter().zip(samples) {
            let taken: Result<Vec<f64>> = taken.into_iter().collect();
            figures.push(Figure::new(side, place, bench.unit, taken));
        }
    }
    progress.show(bench.name, "python", None);
    // A quick run takes one Python sample: its start-up alone is slow.
    let python_runs = if ctx.quick { 1 } else { runs };
    figures.extend(native::python(ctx, bench, python_runs, ops));
    Ok(BenchResult::new(bench, ops, runs, figures))
}

/// Pins the calling process to one CPU (`sched_setaffinity(2)`) until the
/// returned guard is dropped, which restores the CPUs it was allowed before
/// (children forked meanwhile inherit the pin, so a later benchmark must not).
/// A no-op where the call does not exist (macOS).
pub fn pin_to(cpu: usize) -> Result<Pinned> {
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{sched_getaffinity, sched_setaffinity};
        let me = nix::unistd::Pid::from_raw(0);
        let before = crate::sys::nix("sched_getaffinity", "this process", sched_getaffinity(me))?;
        let set = cpu_set(cpu)?;
        crate::sys::nix("sched_setaffinity", cpu, sched_setaffinity(me, &set))?;
        Ok(Pinned { before })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Ok(Pinned {})
    }
}

/// [`pin_to`] when there is a CPU to pin to.
pub fn pin_maybe(cpu: Option<usize>) -> Result<Option<Pinned>> {
    cpu.map(pin_to).transpose()
}

/// Pins every thread of another process to one CPU: `sched_setaffinity(2)`
/// on each thread id listed in `/proc/PID/task` (threads it starts later
/// inherit the mask of the thread that starts them). A no-op on macOS.
pub fn pin_process(pid: i32, cpu: usize) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let set = cpu_set(cpu)?;
        let dir = format!("/proc/{pid}/task");
        let tasks = std::fs::read_dir(&dir).map_err(|e| Error::io(dir, e))?;
        for tid in tasks.flatten() {
            if let Ok(tid) = tid.file_name().to_string_lossy().parse::<i32>() {
                let tid = nix::unistd::Pid::from_raw(tid);
                crate::sys::nix(
                    "sched_setaffinity",
                    tid,
                    nix::sched::sched_setaffinity(tid, &set),
                )?;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (pid, cpu);
    Ok(())
}

/// The set holding just `cpu`.
#[cfg(target_os = "linux")]
fn cpu_set(cpu: usize) -> Result<nix::sched::CpuSet> {
    let mut set = nix::sched::CpuSet::new();
    crate::sys::nix("sched_setaffinity", cpu, set.set(cpu))?;
    Ok(set)
}

/// Forks a child that pins itself to `cpu` (if any) and runs `work` (its
/// exit code); 2 if the pin fails. On Linux the child is killed if the
/// benchmark dies first (`prctl(PR_SET_PDEATHSIG)`, `prctl(2)`), so an
/// interrupted run leaves no echoing child behind.
pub fn pinned_child(
    cpu: Option<usize>,
    work: impl FnOnce() -> i32,
) -> Result<crate::process::ChildGuard> {
    #[cfg(target_os = "linux")]
    let parent = std::process::id() as i32;
    // SAFETY: benchmarks run in a single-threaded process (`run` checks).
    unsafe {
        crate::process::fork(move || {
            #[cfg(target_os = "linux")]
            if !dies_with(parent) {
                return 3;
            }
            // The child stays pinned until it exits.
            let Ok(_pinned) = pin_maybe(cpu) else {
                return 2;
            };
            work()
        })
    }
}

/// Asks for `SIGKILL` when the parent dies (`prctl(PR_SET_PDEATHSIG)`); false
/// if that fails or the parent (`parent`) is already gone.
#[cfg(target_os = "linux")]
fn dies_with(parent: i32) -> bool {
    // SAFETY: plain system calls on the calling process.
    let armed = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == 0;
    // The parent may have died before the prctl: then our parent pid changed.
    armed && nix::unistd::getppid().as_raw() == parent
}

/// The CPUs a process was allowed before [`pin_to`]; restored on drop.
pub struct Pinned {
    #[cfg(target_os = "linux")]
    before: nix::sched::CpuSet,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &self.before);
    }
}

/// How long a benchmark waits for its child, at each blocking operation and
/// at the end: a child that died makes the measurement fail instead of hang.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Turns a failed child in a benchmark into an error.
pub(crate) fn check_child(what: &str, status: crate::process::ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(Error::Died(format!("{what} {status}")))
    }
}

/// Formats a ratio for a table ("1.23x").
pub fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}x", a / b)
}
