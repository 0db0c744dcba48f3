//! Commands the kit runs itself, hidden from `ipckit exercises`
//! (`ipckit __internal NAME [ARGS]`): the Manager's server, and the drivers
//! that tests run in a single-threaded process because they fork children
//! doing non-trivial work (pools, proxies).

use super::{Program, require_single_thread};
use crate::error::{Error, Result};
use crate::manager::{Manager, ManagerConfig, Op};
use crate::pool::{Pool, PoolConfig};
use nix::sys::signal::Signal;
use std::time::Duration;

/// Every internal command.
pub const COMMANDS: &[Program] = &[
    Program {
        id: "manager-server",
        summary: "the Manager's server: --socket PATH, the key (hex) on stdin",
        run: manager_server,
    },
    Program {
        id: "pool-map",
        summary: "prints pool.map(mix, INTS, chunksize) (--processes P --chunksize C INTS...)",
        run: pool_map,
    },
    Program {
        id: "pool-kill",
        summary: "kills a worker mid-run; prints 'ok A failed B' and the map after (--tasks T --kill-after-ms M --victim K)",
        run: pool_kill,
    },
    Program {
        id: "pool-join-timeout",
        summary: "join() on a task longer than the pool's timeout; prints 'join: Timeout after MS ms' (--timeout-ms T --task-ms M)",
        run: pool_join_timeout,
    },
    Program {
        id: "pool-terminate",
        summary: "ready() before and after a task, then terminate() and a drop end busy workers; prints 'ready false true', 'terminate: alive 0', 'drop: alive 0'",
        run: pool_terminate,
    },
    Program {
        id: "pool-workers",
        summary: "T tasks one after another, each returning its worker's pid; prints how many tasks each worker ran in turn, 'runs 2 2 1' (--processes 1 --max-tasks M --tasks T)",
        run: pool_workers,
    },
    Program {
        id: "pool-panic",
        summary: "tasks that panic with a literal, a formatted message and a number; prints each error after 'task panicked: ', then one task that works",
        run: pool_panic,
    },
    Program {
        id: "manager-adders",
        summary: "K processes each add 1 to a Namespace N times atomically; prints x (--procs K --adds N)",
        run: manager_adders,
    },
];

/// Runs internal command `name`.
pub fn run(name: &str, args: &[String]) -> Result<i32> {
    let cmd = COMMANDS.iter().find(|c| c.id == name).ok_or_else(|| {
        Error::invalid(
            "internal command",
            format!("{name:?} is not one of the kit's internal commands"),
        )
    })?;
    (cmd.run)(args)
}

/// The value of `--name VALUE` in `args`, or `default`.
fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::invalid("argument", format!("{name} needs a valid value"))),
    }
}

/// The arguments after `--`.
fn rest(args: &[String]) -> &[String] {
    args.iter()
        .position(|a| a == "--")
        .map_or(&[], |i| &args[i + 1..])
}

fn manager_server(args: &[String]) -> Result<i32> {
    let socket: String = flag(args, "--socket", String::new())?;
    if socket.is_empty() {
        return Err(Error::invalid("argument", "--socket PATH is required"));
    }
    crate::manager::server::run_stdio(std::path::Path::new(&socket))
}

/// The function the pool tests map: deterministic, cheap, not the identity.
pub fn mix(x: i64) -> i64 {
    x.wrapping_mul(0x9E37_79B9).rotate_left(7) ^ (x >> 3)
}

fn single_thread_pool(args: &[String]) -> Result<Pool> {
    require_single_thread()?;
    let mut config = PoolConfig::new(flag(args, "--processes", 2)?);
    config.timeout = Duration::from_millis(flag(args, "--timeout-ms", 30_000)?);
    let max: usize = flag(args, "--max-tasks", 0)?;
    config.max_tasks_per_child = (max > 0).then_some(max);
    // SAFETY: single-threaded (checked above) for the pool's whole life.
    unsafe { Pool::new(config) }
}

/// `pool-map --processes P --chunksize C -- INTS...`: prints the results, one per line.
fn pool_map(args: &[String]) -> Result<i32> {
    let pool = single_thread_pool(args)?;
    let items = rest(args)
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|_| Error::invalid("item", format!("{s:?} is not an integer")))
        })
        .collect::<Result<Vec<i64>>>()?;
    for r in pool.map(mix, items, flag(args, "--chunksize", 1)?)? {
        println!("{r}");
    }
    pool.close();
    pool.join()?;
    Ok(0)
}

/// A pool-kill task: sleeps `ms` milliseconds, returns its input.
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// `pool-kill --tasks T --kill-after-ms M --victim K`: T tasks of 20 ms each;
/// after M ms worker K (mod P) gets `SIGKILL`. Prints `ok A failed B`, then the
/// sum of a map run afterwards (the pool must still work).
fn pool_kill(args: &[String]) -> Result<i32> {
    let pool = single_thread_pool(args)?;
    let tasks: usize = flag(args, "--tasks", 8)?;
    let pending = (0..tasks)
        .map(|_| pool.apply_async(nap, 20))
        .collect::<Result<Vec<_>>>()?;
    std::thread::sleep(Duration::from_millis(flag(args, "--kill-after-ms", 10)?));
    let pids = pool.worker_pids();
    let victim = pids[flag::<usize>(args, "--victim", 0)? % pids.len()];
    crate::process::send_signal(victim, Signal::SIGKILL)?;
    let (mut ok, mut failed) = (0, 0);
    for r in pending {
        match r.get(Duration::from_secs(20)) {
            Ok(_) => ok += 1,
            Err(Error::Died(_)) => failed += 1,
            Err(e) => return Err(e),
        }
    }
    println!("ok {ok} failed {failed}");
    let after: i64 = pool.map(mix, (0..10).collect(), 3)?.iter().sum();
    println!("after {after}");
    pool.close();
    pool.join()?;
    Ok(0)
}

/// `pool-join-timeout --timeout-ms T --task-ms M`: one task of M ms in a pool
/// whose timeout is T ms; `join` must give up after T ms with a timeout.
/// Prints `join: Timeout after MS ms`, then terminates the pool.
fn pool_join_timeout(args: &[String]) -> Result<i32> {
    let pool = single_thread_pool(args)?;
    let _task = pool.apply_async(nap, flag(args, "--task-ms", 5_000)?)?;
    pool.close();
    let start = std::time::Instant::now();
    match pool.join() {
        Err(Error::Timeout { .. }) => {
            println!("join: Timeout after {} ms", start.elapsed().as_millis())
        }
        other => println!("join: {other:?} after {} ms", start.elapsed().as_millis()),
    }
    pool.terminate()?;
    Ok(0)
}

/// `pool-terminate`: a long task is not ready while a short one becomes
/// ready; then `terminate()` on one pool, and dropping another, end their
/// busy workers at once (no worker process is left, `/proc`).
fn pool_terminate(args: &[String]) -> Result<i32> {
    let alive = |pids: &[nix::unistd::Pid]| {
        pids.iter()
            .filter(|p| {
                crate::process::state_of(**p)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s != 'Z')
            })
            .count()
    };
    let pool = single_thread_pool(args)?;
    let long = pool.apply_async(nap, 5_000)?;
    let short = pool.apply_async(nap, 1)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut short_ready = false;
    while !short_ready && std::time::Instant::now() < deadline {
        short_ready = short.ready()?;
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready {} {short_ready}", long.ready()?);
    let pids = pool.worker_pids();
    pool.terminate()?;
    println!("terminate: alive {}", alive(&pids));
    let other = single_thread_pool(args)?;
    let _busy = other.apply_async(nap, 5_000)?;
    let pids = other.worker_pids();
    drop(other);
    println!("drop: alive {}", alive(&pids));
    Ok(0)
}

/// A pool-workers task: the pid of the worker that runs it.
fn worker_pid(_: ()) -> u32 {
    std::process::id()
}

/// `pool-workers --processes 1 --max-tasks M --tasks T`: T tasks, one after
/// another, each returning the pid of its worker. Prints `runs` and how many
/// tasks each worker ran before the next one took over: with M = 2 and
/// T = 5, `runs 2 2 1` (Python's `maxtasksperchild`).
fn pool_workers(args: &[String]) -> Result<i32> {
    let pool = single_thread_pool(args)?;
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for _ in 0..flag::<usize>(args, "--tasks", 5)? {
        let pid = pool.apply(worker_pid, ())?;
        match runs.last_mut() {
            Some((last, n)) if *last == pid => *n += 1,
            _ => runs.push((pid, 1)),
        }
    }
    let counts: Vec<String> = runs.iter().map(|(_, n)| n.to_string()).collect();
    println!("runs {}", counts.join(" "));
    pool.close();
    pool.join()?;
    Ok(0)
}

/// A pool-panic task: panics with a `&str` (0), a `String` (1) or a number
/// (2); returns any other `kind`.
fn explode(kind: u8) -> u8 {
    match kind {
        0 => panic!("a literal message"),
        1 => panic!("formatted {}", 40 + 2),
        2 => std::panic::panic_any(kind),
        _ => kind,
    }
}

/// `pool-panic`: three tasks that panic, then one that works. Prints what
/// each error says after `task panicked: `, then `after 7`: the worker
/// caught the panic and kept serving.
fn pool_panic(args: &[String]) -> Result<i32> {
    let pool = single_thread_pool(args)?;
    for kind in 0..3 {
        match pool.apply(explode, kind) {
            Err(e) => {
                let text = e.to_string();
                let why = text.split("task panicked: ").nth(1).unwrap_or(&text);
                println!("panicked: {why}");
            }
            Ok(v) => println!("no panic: {v}"),
        }
    }
    println!("after {}", pool.apply(explode, 7)?);
    pool.close();
    pool.join()?;
    Ok(0)
}

/// `manager-adders --procs K --adds N`: K children each do N atomic `x += 1`.
fn manager_adders(args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let (procs, adds): (usize, usize) = (flag(args, "--procs", 2)?, flag(args, "--adds", 10)?);
    let manager = Manager::start(&ManagerConfig::default())?;
    let ns = manager.namespace()?;
    ns.set("x", 0)?;
    let children = (0..procs)
        .map(|_| {
            let ns = ns.clone();
            super::start(move || {
                for _ in 0..adds {
                    ns.update("x", Op::Add(1.into()))?;
                }
                Ok(())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    super::join_all(children)?;
    println!("{}", ns.get("x")?);
    Ok(0)
}
