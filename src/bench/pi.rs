//! The `pi-*` programs at n = 10^7 (CATALOGUE.md section 7), each timed as
//! a whole program (from `fork` to `wait`, as a user runs it): `ipckit run
//! pi-X n`, its Python port (`fixtures/peers/pi/` or the graded good port in
//! `fixtures/ports/good/`), and the serial C loop `benches/c/pi_serial.c`,
//! which the targets divide by the CPUs the programs can use.

use super::native::{time_program, unpinned};
use super::{Bench, Ctx, Python, SCHEDULER, Unit, Where};
use crate::error::Result;

/// A `pi-*` benchmark: the program, its Python port and the serial C loop.
const fn pi(name: &'static str) -> Bench {
    Bench {
        name,
        op: "the whole program at n terms (fork to wait)",
        unit: Unit::Millis,
        ops: crate::pi::DEFAULT_N,
        places: &SCHEDULER,
        sides: &[("ipckit", kit), ("c-serial", c_serial)],
        python: Python::Port,
    }
}

/// `pi-file`.
pub const PI_FILE: Bench = pi("pi-file");
/// `pi-pipe`.
pub const PI_PIPE: Bench = pi("pi-pipe");
/// `pi-socketpair`.
pub const PI_SOCKETPAIR: Bench = pi("pi-socketpair");
/// `pi-queue`.
pub const PI_QUEUE: Bench = pi("pi-queue");
/// `pi-pool`.
pub const PI_POOL: Bench = pi("pi-pool");
/// `pi-posix-mq`.
pub const PI_POSIX_MQ: Bench = pi("pi-posix-mq");
/// `pi-sysv-mq`.
pub const PI_SYSV_MQ: Bench = pi("pi-sysv-mq");
/// `pi-shm-sem`.
pub const PI_SHM_SEM: Bench = pi("pi-shm-sem");
/// `pi-value`.
pub const PI_VALUE: Bench = pi("pi-value");
/// `pi-manager`.
pub const PI_MANAGER: Bench = pi("pi-manager");

/// Seconds for `ipckit run pi-X n` (the whole program: n terms, not per term).
fn kit(ctx: &Ctx, place: Where, n: u64) -> Result<f64> {
    unpinned(place);
    let ipckit = ctx.ipckit.to_string_lossy();
    time_program(&[&ipckit, "run", ctx.current, &n.to_string()])
}

/// Seconds for the serial C loop over n terms.
fn c_serial(ctx: &Ctx, place: Where, n: u64) -> Result<f64> {
    unpinned(place);
    let program = ctx
        .native
        .c_program("pi_serial")?
        .to_string_lossy()
        .into_owned();
    time_program(&[&program, &n.to_string()])
}
