//! The suite for a port of `multiprocessing.Pipe` (CATALOGUE.md section 3).
//!
//! Implement [`PipePort`] for one end of your pipe (a connection) and call
//! [`check`]. The checks, in the order they run (each end goes to exactly one
//! forked child; every process drops the ends it does not use, see
//! [`super`]):
//! - `one_way_{size}_simplex` for sizes 0, 1, 65537 and 1048576 bytes: one
//!   process sends a message on the write end of `pipe(false)`, another
//!   receives it whole on the read end.
//! - `echo_{size}_duplex`, same sizes: over `pipe(true)` a message goes to
//!   another process and comes back, whole.
//! - `duplex_directions_independent`: both ends of `pipe(true)` send before
//!   either receives; each receives what the *other* sent (a duplex faked
//!   with one shared channel hands a process its own message back).
//! - `eof_after_peer_closed_simplex` and `_duplex`: once the writer has sent a
//!   last message and closed its end (by dropping it, then exiting), the
//!   reader gets that message, then [`Error::Eof`] at once, well before the
//!   3 s timeout it gave, instead of blocking (`read(2)` returning 0 once
//!   every copy of the other end is closed).
//! - `recv_timeout_on_a_silent_peer`: while the process holding the write end
//!   of `pipe(false)` is alive and sends nothing, `recv_bytes` with each
//!   timeout of [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS), started just
//!   before a second boundary (see [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS)),
//!   fails with [`Error::Timeout`](crate::Error::Timeout) after waiting its
//!   timeout: neither at once nor never.
//!
//! [`Error::Eof`]: crate::Error::Eof

use super::{
    Board, Entry, Expect, LONG_TIMEOUT, Report, Verdict, Watch, all_of, deadline, expect_error,
    expect_timeouts, setup, spawn_with, timed,
};
use crate::audit::Scope;
use crate::error::Result;
use std::time::Duration;

/// One end of a port of `multiprocessing.Pipe`: a connection that carries
/// whole byte messages; dropping it closes it (`close(2)`).
///
/// # Contract
/// - Messages are byte strings (`&[u8]`), from 0 bytes to 1 MiB; a port of a
///   pipe of structured values sends bytes as its value.
/// - Both ends are made in one process (`pipe`) and inherited by `fork(2)`.
///   Each end then goes to exactly one child: every process *drops* the ends
///   it does not use, so `Drop` must close the end (`close(2)`), or end of
///   file never comes. Unlike the other suites, each child *owns* its end:
///   the end is dropped (closed) when the child's work returns, before
///   `_exit(2)`.
/// - Every timeout the suite passes is `Some`; `None` means wait forever.
/// - Every method is called in forked children of a multi-threaded process
///   (see [`super`] for what that allows).
pub trait PipePort: Sized {
    /// `Pipe(duplex)`: two connected ends. With `duplex` both send and
    /// receive; without, the first only receives and the second only sends.
    fn pipe(duplex: bool) -> Result<(Self, Self)>;

    /// `send_bytes(buf)`: sends `bytes` as one message.
    fn send_bytes(&self, bytes: &[u8]) -> Result<()>;

    /// `recv_bytes()`: waits for one whole message; [`Error::Eof`] once
    /// every copy of the other end is closed and nothing is left,
    /// [`Error::Timeout`] when `timeout` passes first (`None`: wait forever).
    ///
    /// [`Error::Eof`]: crate::Error::Eof
    /// [`Error::Timeout`]: crate::Error::Timeout
    fn recv_bytes(&self, timeout: Option<Duration>) -> Result<Vec<u8>>;
}

/// The message sizes: empty, one byte, just over 64 KiB (more than a pipe's
/// default buffer), and 1 MiB.
pub const SIZES: [usize; 4] = [0, 1, 64 * 1024 + 1, 1 << 20];

/// The timeout the reader gives the `recv_bytes` that must end in end-of-file.
const EOF_WAIT: Duration = Duration::from_secs(3);

/// Runs every check of the suite against `P`: `Ok` if all passed, `Err` with
/// the same report otherwise (so `check::<P>().unwrap()` prints it).
pub fn check<P: PipePort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("pipe", checks::<P>())
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: PipePort + 'static>() -> Vec<Entry> {
    let mut entries = Vec::new();
    for len in SIZES {
        let expected = format!(
            "{} sent on a simplex pipe arrives whole in another process",
            bytes(len)
        );
        let name = format!("one_way_{len}_simplex");
        entries.push(Entry::required(name, expected, move |s| {
            one_way::<P>(s, len)
        }));
    }
    for len in SIZES {
        let expected = format!("{} sent over a duplex pipe comes back whole", bytes(len));
        let name = format!("echo_{len}_duplex");
        entries.push(Entry::required(name, expected, move |s| echo::<P>(s, len)));
    }
    entries.push(Entry::required(
        "duplex_directions_independent",
        "each end of a duplex pipe receives what the other end sent",
        directions::<P>,
    ));
    for (duplex, kind) in [(false, "simplex"), (true, "duplex")] {
        let expected = format!(
            "on a {kind} pipe, once the writer closed its end, the reader gets the last message, then Error::Eof at once"
        );
        let name = format!("eof_after_peer_closed_{kind}");
        entries.push(Entry::required(name, expected, move |s| {
            eof_after_peer_closed::<P>(s, duplex)
        }));
    }
    entries.push(Entry::required(
        "recv_timeout_on_a_silent_peer",
        "recv_bytes while the peer is alive and silent fails with Error::Timeout after waiting its timeout, also across a second boundary",
        silent_peer::<P>,
    ));
    entries
}

/// Runs the one check `name` against `P`, panicking with what was expected
/// and what was seen if it fails: the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes.
pub fn test<P: PipePort + 'static>(name: &str) {
    super::run_one("pipe", checks::<P>(), name)
}

fn one_way<P: PipePort>(scope: &mut Scope, len: usize) -> Verdict {
    let (r, w) = setup("pipe(false)", P::pipe(false))?;
    let msg = pattern(len);
    let by = deadline();
    let (reader, w) = spawn_with(scope, "reader", r, w, |r| {
        same("the message", &receive(&r)?, &msg)?;
        Ok(format!(
            "{} sent by one process arrived whole in another",
            bytes(len)
        ))
    })?;
    let (writer, ()) = spawn_with(scope, "writer", w, (), |w| send(&w, &msg))?;
    all_of([reader.finish(by), writer.finish(by)])
}

fn echo<P: PipePort>(scope: &mut Scope, len: usize) -> Verdict {
    let (a, b) = setup("pipe(true)", P::pipe(true))?;
    let msg = pattern(len);
    let by = deadline();
    let (echoer, a) = spawn_with(scope, "echoing process", b, a, |b| {
        let got = receive(&b)?;
        same("the message", &got, &msg)?;
        send(&b, &got)
    })?;
    let (sender, ()) = spawn_with(scope, "sending process", a, (), |a| {
        send(&a, &msg)?;
        same("the echo", &receive(&a)?, &msg)?;
        Ok(format!(
            "{} went to another process and back whole",
            bytes(len)
        ))
    })?;
    all_of([echoer.finish(by), sender.finish(by)])
}

/// Board slots: end a has sent; end b has sent.
const A_SENT: usize = 0;
const B_SENT: usize = 1;

fn directions<P: PipePort>(scope: &mut Scope) -> Verdict {
    let (a, b) = setup("pipe(true)", P::pipe(true))?;
    let board = Board::new(2)?;
    let by = deadline();
    let (first, b) = spawn_with(scope, "process with end a", a, b, |a| {
        send(&a, b"from a")?;
        board.set(A_SENT, 1);
        board.wait_for(B_SENT, super::CHECK_DEADLINE);
        same("what end a received", &receive(&a)?, b"from b")?;
        Ok("both ends sent before either received; each got the other's message".into())
    })?;
    let (second, ()) = spawn_with(scope, "process with end b", b, (), |b| {
        board.wait_for(A_SENT, super::CHECK_DEADLINE);
        send(&b, b"from b")?;
        board.set(B_SENT, 1);
        same("what end b received", &receive(&b)?, b"from a")?;
        Ok(String::new())
    })?;
    all_of([first.finish(by), second.finish(by)])
}

fn eof_after_peer_closed<P: PipePort>(scope: &mut Scope, duplex: bool) -> Verdict {
    let (r, w) = setup(&format!("pipe({duplex})"), P::pipe(duplex))?;
    let by = deadline();
    let (reader, w) = spawn_with(scope, "reader", r, w, |r| {
        same("the last message", &receive(&r)?, b"last")?;
        let what = format!("recv_bytes (timeout {EOF_WAIT:?}) after the writer closed its end");
        expect_error(
            &what,
            Expect::Eof,
            timed(|| r.recv_bytes(Some(EOF_WAIT))),
            None,
        )
    })?;
    let (writer, ()) = spawn_with(scope, "writer", w, (), |w| {
        send(&w, b"last")?;
        drop(w);
        Ok(String::new())
    })?;
    all_of([reader.finish(by), writer.finish(by)])
}

fn silent_peer<P: PipePort>(scope: &mut Scope) -> Verdict {
    let (r, w) = setup("pipe(false)", P::pipe(false))?;
    let board = Board::new(1)?;
    let by = deadline();
    let (peer, r) = spawn_with(scope, "silent writer", w, r, |w| {
        board.wait_for(0, super::CHECK_DEADLINE);
        drop(w);
        Ok(String::new())
    })?;
    let watch = Watch::new()?;
    let (reader, ()) = spawn_with(scope, "reader", r, (), |r| {
        let what = "recv_bytes while the writer was alive and silent";
        expect_timeouts(&watch, what, Expect::Timeout, |t| r.recv_bytes(Some(t)))
    })?;
    let read = reader.finish_watched(&watch, by);
    board.set(0, 1);
    all_of([read, peer.finish(by)])
}

/// `len` bytes that differ from their neighbours (`i mod 251`), so that a
/// lost, repeated or shifted block shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A message's size in words.
fn bytes(len: usize) -> String {
    match len {
        1 => "a message of 1 byte".into(),
        n => format!("a message of {n} bytes"),
    }
}

/// In a child: sends `msg`, an error naming its size otherwise.
fn send<P: PipePort>(end: &P, msg: &[u8]) -> Verdict {
    end.send_bytes(msg)
        .map(|()| String::new())
        .map_err(|e| format!("send_bytes of {} bytes failed: {e}", msg.len()))
}

/// In a child: receives one message that should be coming.
fn receive<P: PipePort>(end: &P) -> std::result::Result<Vec<u8>, String> {
    end.recv_bytes(Some(LONG_TIMEOUT))
        .map_err(|e| format!("recv_bytes failed: {e}"))
}

/// Compares what arrived with what was sent; says where they differ.
fn same(what: &str, got: &[u8], want: &[u8]) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} bytes arrived, {} were sent",
            got.len(),
            want.len()
        ));
    }
    match got.iter().zip(want).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!("{what}: byte {i} differs from what was sent")),
    }
}
