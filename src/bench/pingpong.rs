//! The ping-pong every round-trip benchmark shares, and the byte-stream
//! benchmarks on it: a pipe, a socket pair and a `Connection`.
//!
//! A ping-pong forks a child (pinned where the placement says) that echoes
//! every `u64` it receives; the parent sends `0..n` and waits for each to come
//! back, then sends [`STOP`], which the child echoes before it exits. Each side
//! owns its own ends: whatever the child's closure captured is dropped in the
//! parent after the fork, so a child that dies is end-of-file for the parent,
//! not a hang.

use super::{Bench, Ctx, PLACES, Python, Unit, Where, check_child, pin_maybe, place_cpus};
use crate::channel::{self, Connection};
use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

/// The value that tells an echoing child to stop.
pub const STOP: u64 = u64::MAX;

/// Seconds per round trip: `trip(v)` sends `v` and returns what came back
/// (in the parent), `echo()` receives a value and sends it back (in the child).
pub fn ping_pong(
    place: Where,
    n: u64,
    mut trip: impl FnMut(u64) -> Result<u64>,
    mut echo: impl FnMut() -> Result<u64>,
) -> Result<f64> {
    let (parent_cpu, child_cpu) = place_cpus(place);
    let mut child = super::pinned_child(child_cpu, move || {
        loop {
            match echo() {
                Ok(STOP) => return 0,
                Ok(_) => {}
                Err(_) => return 1,
            }
        }
    })?;
    let _pin = pin_maybe(parent_cpu)?;
    let start = Instant::now();
    for i in 0..n {
        let back = trip(i)?;
        if back != i {
            return Err(Error::Protocol(format!("sent {i}, got {back} back")));
        }
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    trip(STOP)?;
    check_child("echoing child", child.wait_deadline(super::PATIENCE)?)?;
    Ok(per)
}

/// `pipe`: two pipes, one each way.
pub const PIPE: Bench = Bench {
    name: "pipe",
    op: "round trip of 8 bytes over two pipes (write + read each way)",
    unit: Unit::Micros,
    ops: 3_000,
    places: &PLACES,
    sides: &[("ipckit", pipe_kit), ("raw", pipe_raw)],
    python: Python::Peer,
};

/// `socketpair`: one socket pair, both ways.
pub const SOCKETPAIR: Bench = Bench {
    name: "socketpair",
    op: "round trip of 8 bytes over a Unix socket pair",
    unit: Unit::Micros,
    ops: 3_000,
    places: &PLACES,
    sides: &[("ipckit", socketpair_kit), ("raw", socketpair_raw)],
    python: Python::Peer,
};

/// `connection`: `Connection::send`/`recv` of a `u64`: on one duplex
/// connection (`Pipe()`, a socket pair) against the raw socket pair, and on
/// two simplex ones (`Pipe(duplex=False)`, a pipe each way) against the raw
/// pipes the target names.
pub const CONNECTION: Bench = Bench {
    name: "connection",
    op: "Connection send + recv of a u64 each way (Pipe(duplex=True))",
    unit: Unit::Micros,
    ops: 3_000,
    places: &PLACES,
    sides: &[
        ("ipckit", connection_kit),
        ("ipckit-simplex", connection_simplex),
        ("raw-pipe", pipe_raw),
        ("raw-socketpair", socketpair_raw),
    ],
    python: Python::Peer,
};

/// How one side moves 8 bytes: the kit's way or bare system calls.
#[derive(Clone, Copy)]
pub(super) struct Stream {
    pub(super) send: fn(&OwnedFd, u64) -> Result<()>,
    pub(super) recv: fn(&OwnedFd) -> Result<u64>,
}

/// The kit's way: [`channel::write_all`] (`SIGPIPE` blocked around the
/// write) and [`crate::sys::read_exact_timeout`] (`poll(2)` with a deadline,
/// then `read(2)`).
const KIT: Stream = Stream {
    send: |fd, v| channel::write_all(fd, &v.to_ne_bytes(), "bench stream"),
    recv: |fd| {
        let buf = crate::sys::read_exact_timeout(fd, 8, super::PATIENCE, "bench stream")?;
        let bytes: [u8; 8] = buf.try_into().expect("read_exact_timeout reads 8 bytes");
        Ok(u64::from_ne_bytes(bytes))
    },
};

/// Bare `write(2)` and `read(2)` of 8 bytes (atomic on a pipe or a socket).
pub(super) const RAW: Stream = Stream {
    send: |fd, v| {
        let buf = v.to_ne_bytes();
        // SAFETY: 8 readable bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), 8) };
        eight(n, "write")
    },
    recv: |fd| {
        let mut buf = [0u8; 8];
        // SAFETY: 8 writable bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        eight(n, "read").map(|()| u64::from_ne_bytes(buf))
    },
};

/// Checks that a `read`/`write` moved 8 bytes.
fn eight(n: isize, call: &'static str) -> Result<()> {
    match n {
        8 => Ok(()),
        0 => Err(Error::Eof(format!("{call}: the peer is gone"))),
        n if n < 0 => Err(Error::io(call, std::io::Error::last_os_error())),
        n => Err(Error::Protocol(format!("{call} moved {n} of 8 bytes"))),
    }
}

/// A ping-pong over byte streams: the parent sends on `down.1` and receives
/// on `up.0`; the child receives on `down.0` and sends on `up.1`.
fn streams(
    place: Where,
    n: u64,
    down: (OwnedFd, OwnedFd),
    up: (OwnedFd, OwnedFd),
    s: Stream,
) -> Result<f64> {
    let ((child_rx, parent_tx), (parent_rx, child_tx)) = (down, up);
    ping_pong(
        place,
        n,
        |v| {
            (s.send)(&parent_tx, v)?;
            (s.recv)(&parent_rx)
        },
        move || {
            let v = (s.recv)(&child_rx)?;
            (s.send)(&child_tx, v).map(|()| v)
        },
    )
}

/// Two pipes made by the kit, one each way.
fn two_pipes() -> Result<((OwnedFd, OwnedFd), (OwnedFd, OwnedFd))> {
    Ok((channel::pipe()?, channel::pipe()?))
}

/// One socket pair, each end also as a second descriptor (`dup(2)`), so it
/// fits [`streams`]' one-end-each-way shape.
fn one_socketpair() -> Result<((OwnedFd, OwnedFd), (OwnedFd, OwnedFd))> {
    let (parent, child) = channel::socketpair()?;
    let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| Error::io("dup", e));
    let (parent2, child2) = (dup(&parent)?, dup(&child)?);
    Ok(((child, parent), (parent2, child2)))
}

fn pipe_kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (down, up) = two_pipes()?;
    streams(place, n, down, up, KIT)
}

pub(super) fn pipe_raw(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (down, up) = two_pipes()?;
    streams(place, n, down, up, RAW)
}

fn socketpair_kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (down, up) = one_socketpair()?;
    streams(place, n, down, up, KIT)
}

fn socketpair_raw(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (down, up) = one_socketpair()?;
    streams(place, n, down, up, RAW)
}

fn connection_kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (parent, child) = channel::connection::pipe(true)?;
    connections(place, n, Ends(parent, None), Ends(child, None))
}

fn connection_simplex(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let (child_rx, parent_tx) = channel::connection::pipe(false)?;
    let (parent_rx, child_tx) = channel::connection::pipe(false)?;
    connections(
        place,
        n,
        Ends(parent_rx, Some(parent_tx)),
        Ends(child_rx, Some(child_tx)),
    )
}

/// One side's connections: the end it receives on, and the end it sends on
/// if that is another one (simplex).
struct Ends(Connection, Option<Connection>);

impl Ends {
    fn trip(&self, v: u64) -> Result<u64> {
        self.1.as_ref().unwrap_or(&self.0).send(&v)?;
        self.0.recv()
    }

    fn echo(&self) -> Result<u64> {
        let v: u64 = self.0.recv()?;
        self.1.as_ref().unwrap_or(&self.0).send(&v).map(|()| v)
    }
}

/// A ping-pong over connections; the child's ends close in the parent.
fn connections(place: Where, n: u64, parent: Ends, child: Ends) -> Result<f64> {
    ping_pong(place, n, |v| parent.trip(v), move || child.echo())
}
