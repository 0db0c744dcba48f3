//! The Manager and the Pool: a Namespace set + get (two round trips to the
//! server), a Pool `apply` round trip, and a Manager's start-up plus
//! shutdown, with Python's `multiprocessing` beside them. The baseline is a
//! raw 8-byte round trip on the manager's kind of socket, read as the
//! manager reads (spin, then block), with no framing, encoding or server:
//! two of them for a set + get, one for an `apply`; under a start, the
//! `fork` + `exec` + `wait` of the server binary.

use super::{
    Bench, Ctx, PLACES, Python, SCHEDULER, Unit, Where, pin_maybe, pin_process, place_cpus,
};
use crate::error::{Error, Result};
use crate::manager::{Manager, ManagerConfig};
use crate::pool::{Pool, PoolConfig};
use std::time::Instant;

/// `manager`.
pub const NAMESPACE: Bench = Bench {
    name: "manager",
    op: "Manager Namespace set + get (two round trips to the server)",
    unit: Unit::Micros,
    ops: 300,
    places: &PLACES,
    sides: &[("ipckit", namespace), ("raw-2-trips", two_socket_trips)],
    python: Python::Peer,
};

/// `pool`.
pub const POOL_APPLY: Bench = Bench {
    name: "pool",
    op: "Pool(2).apply(square, i) round trip",
    unit: Unit::Micros,
    ops: 300,
    places: &PLACES,
    sides: &[("ipckit", apply), ("raw-1-trip", one_socket_trip)],
    python: Python::Peer,
};

/// `manager-start`.
pub const MANAGER_START: Bench = Bench {
    name: "manager-start",
    op: "start a Manager (exec its server) and shut it down",
    unit: Unit::Millis,
    ops: 1,
    places: &SCHEDULER,
    sides: &[("ipckit", start), ("raw-exec", exec_floor)],
    python: Python::Peer,
};

fn square(x: i64) -> i64 {
    x * x
}

/// The Manager the benchmarks start: its server is the `ipckit` binary.
fn config(ctx: &Ctx) -> ManagerConfig {
    ManagerConfig {
        program: Some(ctx.ipckit.clone()),
        ..Default::default()
    }
}

/// Seconds per `op` over `n` calls.
fn per_op(n: u64, mut op: impl FnMut(i64) -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    for i in 0..n as i64 {
        op(i)?;
    }
    Ok(t.elapsed().as_secs_f64() / n as f64)
}

fn namespace(ctx: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (cpu, server_cpu) = place_cpus(place);
    let _pin = pin_maybe(cpu)?;
    let manager = Manager::start(&config(ctx))?;
    let ns = manager.namespace()?;
    if let (Some(cpu), Some(pid)) = (server_cpu, manager.server_pid()) {
        pin_process(pid.as_raw(), cpu)?;
    }
    per_op(n, |i| {
        ns.set("x", i)?;
        let back = ns.get("x")?.as_int()?;
        if back == i {
            Ok(())
        } else {
            Err(Error::Protocol(format!("set {i}, got {back}")))
        }
    })
}

fn apply(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (cpu, worker_cpu) = place_cpus(place);
    let _pin = pin_maybe(cpu)?;
    // SAFETY: benchmarks run in a single-threaded process (`bench::run`
    // checks), which starts no thread while the pool lives.
    let pool = unsafe { Pool::new(PoolConfig::new(2)) }?;
    if let Some(cpu) = worker_cpu {
        for pid in pool.worker_pids() {
            pin_process(pid.as_raw(), cpu)?;
        }
    }
    per_op(n, |i| {
        let got = pool.apply(square, i)?;
        if got == i * i {
            Ok(())
        } else {
            Err(Error::Protocol(format!("square({i}) = {got}?")))
        }
    })
}

fn start(ctx: &Ctx, _: Where, n: u64) -> Result<f64> {
    let config = config(ctx);
    per_op(n, |_| Manager::start(&config).map(drop))
}

/// The floor under a Manager's start: `fork` + `exec` of the server binary
/// (`ipckit --version`) and `wait`.
fn exec_floor(ctx: &Ctx, _: Where, n: u64) -> Result<f64> {
    let ipckit = ctx.ipckit.to_string_lossy();
    per_op(n, |_| {
        super::native::time_program(&[&ipckit, "--version"]).map(drop)
    })
}

fn two_socket_trips(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    socket_round_trip(n, place).map(|t| 2.0 * t)
}

fn one_socket_trip(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    socket_round_trip(n, place)
}

/// The floor under the manager's protocol: seconds per round trip of 8
/// bytes to a forked echo child over a socket pair of the manager's kind
/// ([`crate::manager::pair`]), read as the manager reads (spinning for a
/// moment before blocking, [`crate::sys::SpinRead`]).
fn socket_round_trip(n: u64, place: Where) -> Result<f64> {
    use crate::sys::{SPIN, SpinRead};
    use std::io::{Read, Write};
    let (ours, theirs) = crate::manager::pair().map_err(|e| Error::io("socketpair", e))?;
    let (mut ours, mut theirs) = (SpinRead::new(ours, SPIN), SpinRead::new(theirs, SPIN));
    let trip = |end: &mut SpinRead<std::os::unix::net::UnixStream>,
                v: u64,
                first_read: bool|
     -> Result<u64> {
        let io = |e| Error::io("socket", e);
        let mut buf = v.to_ne_bytes();
        if first_read {
            end.read_exact(&mut buf).map_err(io)?;
        }
        end.get_ref().write_all(&buf).map_err(io)?;
        if !first_read {
            end.read_exact(&mut buf).map_err(io)?;
        }
        Ok(u64::from_ne_bytes(buf))
    };
    super::pingpong::ping_pong(
        place,
        n,
        |v| trip(&mut ours, v, false),
        // `move`: the child's end closes in the parent after the fork.
        move || trip(&mut theirs, 0, true),
    )
}
