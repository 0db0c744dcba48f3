//! CATALOGUE.md section 3: byte channels (pipes, socket pairs, files) and
//! `multiprocessing.Pipe`.

use super::{Program, require_single_thread};
use crate::channel::{self, Connection, file};
use crate::error::{Error, Result};
use crate::pi;
use crate::process::{self, ChildGuard, Fork};
use crate::pyvalue::PyValue;
use std::os::fd::OwnedFd;

/// The programs of this section.
pub const PROGRAMS: &[Program] = &[
    Program {
        id: "pipe-hello",
        summary: "the child sends [42, None, 'hello'] over a Pipe; the parent prints it",
        run: pipe_hello,
    },
    Program {
        id: "pipe-duplex",
        summary: "both ends of a duplex Pipe send and receive; each side prints what it got",
        run: pipe_duplex,
    },
    Program {
        id: "pi-file",
        summary: "pi: each child writes its sum to a file named after its pid; the parent reads and deletes it",
        run: pi_file,
    },
    Program {
        id: "pi-pipe",
        summary: "pi: one OS pipe per child, every unused end closed, each child waited for",
        run: pi_pipe,
    },
    Program {
        id: "pi-socketpair",
        summary: "pi: one socket pair per child, every unused end closed, each child waited for",
        run: pi_socketpair,
    },
];

/// `pipe-hello`: `parent_conn, child_conn = Pipe()`; the child sends
/// `[42, None, 'hello']` and closes; the parent receives, prints, joins.
fn pipe_hello(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let (parent_conn, child_conn) = channel::connection::pipe(true)?;
    match super::fork_raw()? {
        Fork::Child => {
            drop(parent_conn);
            let sent = child_conn.send(&PyValue::hello());
            child_conn.close();
            child_exit(sent)
        }
        Fork::Parent(mut child) => {
            drop(child_conn);
            let message: PyValue = parent_conn.recv()?;
            println!("{message}");
            expect_success(&mut child)?;
            Ok(0)
        }
    }
}

/// `pipe-duplex`: one duplex `Pipe()`, one end to each of two processes.
/// Process 1 receives, prints, then replies; process 2 sends first, then
/// receives and prints. The parent keeps neither end and joins both.
fn pipe_duplex(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let (end1, end2) = channel::connection::pipe(true)?;
    let mut p1 = spawn_with(end1, |conn| {
        let got: String = conn.recv()?;
        println!("Process 1 received: {got}");
        conn.send("Hello from process 1")
    })?;
    let mut p2 = spawn_with(end2, |conn| {
        conn.send("Hello from process 2")?;
        let got: String = conn.recv()?;
        println!("Process 2 received: {got}");
        Ok(())
    })?;
    expect_success(&mut p1)?;
    expect_success(&mut p2)?;
    Ok(0)
}

/// Forks a child that owns `conn` and runs `work` with it; the parent's copy
/// of `conn` is closed as soon as the child exists.
fn spawn_with(conn: Connection, work: fn(&Connection) -> Result<()>) -> Result<ChildGuard> {
    match super::fork_raw()? {
        Fork::Child => {
            let done = work(&conn);
            conn.close();
            child_exit(done)
        }
        Fork::Parent(child) => Ok(child),
    }
}

/// `pi-file`: each child writes its partial sum to a file named after its own
/// pid; for each child in turn the parent waits, reads the file named after
/// that pid, deletes it, and adds the sum.
fn pi_file(args: &[String]) -> Result<i32> {
    let n = pi::parse_n(args)?;
    let children = fork_per_slice(n, |sum| {
        let path = file::path_for(process::getpid());
        file::write_text(&path, &sum.to_string())
    })?;
    let mut total = 0.0;
    for mut child in children {
        expect_success(&mut child)?;
        total += parse_sum(&file::read_and_remove(&file::path_for(child.pid()))?)?;
    }
    pi::print_answer(pi::pi_from(total));
    Ok(0)
}

/// `pi-pipe`: one `os.pipe()` per child; the parent keeps the read end.
fn pi_pipe(args: &[String]) -> Result<i32> {
    pi_over_channels(args, channel::pipe)
}

/// `pi-socketpair`: one `socket.socketpair()` per child; the parent keeps
/// the first socket, the child the second.
fn pi_socketpair(args: &[String]) -> Result<i32> {
    pi_over_channels(args, channel::socketpair)
}

/// The shared steps of `pi-pipe` and `pi-socketpair`. `make` returns
/// `(parent_end, child_end)`.
///
/// 1. For each slice: make a channel, fork. The child closes the parent's end
///    (and the parent ends of earlier channels it inherited), writes its sum
///    as text, closes its end, exits. The parent closes the child's end at
///    once, or the read below would never see end-of-file.
/// 2. For each child in order: read until end-of-file, close, wait by pid.
fn pi_over_channels(args: &[String], make: fn() -> Result<(OwnedFd, OwnedFd)>) -> Result<i32> {
    let n = pi::parse_n(args)?;
    require_single_thread()?;
    let mut open: Vec<(ChildGuard, OwnedFd)> = Vec::new();
    for i in 0..pi::PARTS {
        let (parent_end, child_end) = make()?;
        match super::fork_raw()? {
            Fork::Child => {
                drop(parent_end);
                for (sibling, inherited_end) in open.drain(..) {
                    drop(inherited_end);
                    let _ = sibling.into_pid(); // not ours to reap or kill
                }
                let sum = pi::partial_sum(pi::slice(i, n));
                let sent = channel::write_all(&child_end, sum.to_string().as_bytes(), "child end");
                drop(child_end);
                child_exit(sent)
            }
            Fork::Parent(child) => {
                drop(child_end);
                open.push((child, parent_end));
            }
        }
    }
    let mut total = 0.0;
    for (mut child, parent_end) in open {
        let text = channel::read_to_end(&parent_end, "parent end")?;
        drop(parent_end);
        expect_success(&mut child)?;
        total += parse_sum(&String::from_utf8_lossy(&text))?;
    }
    pi::print_answer(pi::pi_from(total));
    Ok(0)
}

/// Forks one child per slice of `n`; each computes its partial sum, hands it
/// to `send` (which delivers it to the parent), and exits 0 (1 on an error).
/// Returns the children in slice order.
pub(super) fn fork_per_slice(
    n: u64,
    send: impl Fn(f64) -> Result<()> + Copy,
) -> Result<Vec<ChildGuard>> {
    require_single_thread()?;
    (0..pi::PARTS)
        .map(|i| super::fork(move || exit_code(send(pi::partial_sum(pi::slice(i, n))))))
        .collect()
}

/// A child's sum, sent as the text of an `f64` (which reads back exactly).
pub(super) fn parse_sum(text: &str) -> Result<f64> {
    text.trim()
        .parse()
        .map_err(|_| Error::Protocol(format!("a child sent {text:?}, which is not a number")))
}

/// Waits for `child` by pid; anything but exit status 0 is [`Error::Died`].
pub(super) fn expect_success(child: &mut ChildGuard) -> Result<()> {
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Died(format!("child {} {status}", child.pid())))
    }
}

/// The exit code of a child's work: 0, or 1 after printing the error.
pub(super) fn exit_code(done: Result<()>) -> i32 {
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {}: {e}", process::getpid());
            1
        }
    }
}

/// Ends a child forked with `fork_raw`: flushes its output, exits with
/// [`exit_code`].
pub(super) fn child_exit(done: Result<()>) -> ! {
    process::exit_normally(exit_code(done))
}
