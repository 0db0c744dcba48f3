//! CATALOGUE.md section 3: byte channels. The reference programs run under
//! the audit; the library (`Connection`, raw pipes and socket pairs) runs in
//! process, each test inside an `audit::Scope` that checks its children were
//! reaped.

mod common;

use common::audited;
use common::pi::assert_pi_program;
use ipckit::Error;
use ipckit::audit::Scope;
use ipckit::channel::{self, Connection, connection};
use ipckit::process::{self, ExitStatus};
use ipckit::pyvalue::PyValue;
use nix::errno::Errno;
use proptest::prelude::*;
use rstest::rstest;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

// ---- The reference programs, under the audit -------------------------------

#[test]
fn pipe_hello_prints_the_python_list() {
    let run = audited("pipe-hello", &[]);
    run.assert_clean();
    assert_eq!(run.lines(), ["[42, None, 'hello']"]);
}

#[test]
fn pipe_duplex_each_side_prints_what_the_other_sent() {
    let run = audited("pipe-duplex", &[]);
    run.assert_clean();
    assert_eq!(
        run.lines(),
        [
            "Process 1 received: Hello from process 2",
            "Process 2 received: Hello from process 1"
        ]
    );
}

const PI_PROGRAMS: [&str; 3] = ["pi-file", "pi-pipe", "pi-socketpair"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]
    #[test]
    fn pi_programs_match_serial_for_small_n(tens in 1u64..=100) {
        for id in PI_PROGRAMS {
            assert_pi_program(id, tens * 10);
        }
    }
}

#[rstest]
fn pi_programs_match_serial_for_large_n(
    #[values("pi-file", "pi-pipe", "pi-socketpair")] id: &str,
    #[values(1_000_000, 3_000_000)] n: u64,
) {
    assert_pi_program(id, n);
}

#[rstest]
fn pi_programs_refuse_a_bad_n_and_leave_nothing(
    #[values("pi-file", "pi-pipe", "pi-socketpair")] id: &str,
) {
    let run = audited(id, &["15"]);
    assert_eq!(run.exit_code(), Some(2), "{}", run.output);
    assert!(run.output.contains("multiple of 10"), "{}", run.output);
    for kind in ["zombies", "orphans", "leaks"] {
        assert!(run.findings(kind).is_empty(), "{kind}: {}", run.report);
    }
}

// ---- Raw pipes and socket pairs -------------------------------------------

#[test]
fn read_end_sees_eof_only_once_every_write_end_is_closed() {
    let scope = Scope::new();
    let (r, w) = channel::pipe().unwrap();
    let copy = w.try_clone().unwrap(); // what a child that forgot to close holds
    channel::write_all(&w, b"sum", "write end").unwrap();
    drop(w);
    let mut buf = [0u8; 16];
    assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 3);
    // Data consumed, one write end still open: no end-of-file, the read would block.
    let mut fds = [nix::poll::PollFd::new(
        r.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    assert_eq!(nix::poll::poll(&mut fds, 50u16).unwrap(), 0);
    drop(copy);
    assert_eq!(channel::read_to_end(&r, "read end").unwrap(), b"");
    scope.assert_clean();
}

#[test]
fn a_socketpair_carries_bytes_both_ways() {
    let scope = Scope::new();
    let (a, b) = channel::socketpair().unwrap();
    channel::write_all(&a, b"ping", "a").unwrap();
    channel::write_all(&b, b"pong", "b").unwrap();
    let mut buf = [0u8; 4];
    nix::unistd::read(&b, &mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    nix::unistd::read(&a, &mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    drop(b);
    assert_eq!(channel::read_to_end(&a, "a").unwrap(), b"");
    scope.assert_clean();
}

#[test]
fn file_exchange_reads_then_removes_the_file() {
    let scope = Scope::new();
    let path = channel::file::path_for(nix::unistd::Pid::from_raw(i32::MAX));
    channel::file::write_text(&path, "0.125").unwrap();
    assert_eq!(channel::file::read_and_remove(&path).unwrap(), "0.125");
    assert!(!path.exists(), "{} was left behind", path.display());
    let e = channel::file::read_and_remove(&path).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOENT), "{e}");
    scope.assert_clean();
}

// ---- Connection --------------------------------------------------------------

#[test]
fn duplex_ends_both_send_and_receive_whole_messages() {
    let scope = Scope::new();
    let (a, b) = connection::pipe(true).unwrap();
    assert!(a.readable() && a.writable() && b.readable() && b.writable());
    a.send(&PyValue::hello()).unwrap();
    b.send(&(7i32, None::<()>, "reply".to_string())).unwrap();
    assert_eq!(
        b.recv_timeout::<PyValue>(DEADLINE).unwrap(),
        PyValue::hello()
    );
    let got: (i32, Option<()>, String) = a.recv_timeout(DEADLINE).unwrap();
    assert_eq!(got, (7, None, "reply".into()));
    scope.assert_clean();
}

#[test]
fn simplex_first_end_only_reads_and_second_only_writes() {
    let scope = Scope::new();
    let (r, w) = connection::pipe(false).unwrap();
    assert!(r.readable() && !r.writable());
    assert!(!w.readable() && w.writable());
    w.send_bytes(b"one way").unwrap();
    assert_eq!(r.recv_bytes_timeout(DEADLINE).unwrap(), b"one way");
    for e in [r.send_bytes(b"x").unwrap_err(), w.recv_bytes().unwrap_err()] {
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("simplex"), "{e}");
    }
    assert!(w.poll(Some(Duration::ZERO)).is_err());
    scope.assert_clean();
}

#[rstest]
fn recv_after_peer_closed_is_eof(#[values(true, false)] duplex: bool) {
    let scope = Scope::new();
    let (r, w) = connection::pipe(duplex).unwrap();
    w.send("last words").unwrap();
    w.close();
    assert_eq!(r.recv_timeout::<String>(DEADLINE).unwrap(), "last words");
    assert!(
        r.poll(Some(Duration::ZERO)).unwrap(),
        "EOF makes poll ready"
    );
    let e = r.recv_timeout::<String>(DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Eof(_)), "{e}");
    scope.assert_clean();
}

#[test]
fn recv_blocks_while_empty_and_poll_says_so() {
    let scope = Scope::new();
    let (a, b) = connection::pipe(true).unwrap();
    // poll with nothing coming waits out its whole timeout, then says false;
    // also one below poll(2)'s millisecond resolution (rounded down to 0 ms).
    for timeout in [Duration::from_millis(20), Duration::from_micros(900)] {
        let started = Instant::now();
        assert!(!a.poll(Some(timeout)).unwrap());
        assert!(started.elapsed() >= timeout, "{timeout:?}");
    }
    let started = Instant::now();
    let e = a
        .recv_timeout::<String>(Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    b.send("now").unwrap();
    assert!(a.poll(Some(DEADLINE)).unwrap());
    assert_eq!(a.recv_timeout::<String>(DEADLINE).unwrap(), "now");
    scope.assert_clean();
}

#[rstest]
fn messages_of_16_mib_arrive_intact(#[values(true, false)] duplex: bool) {
    let scope = Scope::new();
    let (r, w) = connection::pipe(duplex).unwrap();
    let big: Vec<u8> = (0..16usize << 20).map(|i| (i * 7 % 251) as u8).collect();
    let expected = big.clone();
    let writer = std::thread::spawn(move || w.send_bytes(&big));
    let got = r.recv_bytes_timeout(Duration::from_secs(30)).unwrap();
    writer.join().unwrap().unwrap();
    assert!(got == expected, "16 MiB message changed in transit");
    scope.assert_clean();
}

#[test]
fn an_oversized_length_prefix_is_refused_before_allocating() {
    let scope = Scope::new();
    let (r, w) = connection::pipe(true).unwrap();
    channel::write_all(&w, &u32::MAX.to_le_bytes(), "raw").unwrap();
    let e = r.recv_bytes_timeout(DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    assert!(e.to_string().contains("larger than the limit"), "{e}");
    // The refused frame's payload (here none) is still in the stream: the
    // connection is out of step, and a later receive says so instead of
    // reading payload bytes as the next length prefix.
    w.send_bytes(b"later").unwrap();
    let e = r.recv_bytes_timeout(DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    assert!(e.to_string().contains("middle of a frame"), "{e}");
    drop((r, w));

    let (mut r, w) = connection::pipe(true).unwrap();
    assert_eq!(r.max_message(), ipckit::frame::DEFAULT_MAX_FRAME);
    r.set_max_message(10);
    assert_eq!(r.max_message(), 10);
    w.send_bytes(&[0u8; 11]).unwrap();
    let e = r.recv_bytes_timeout(DEADLINE).unwrap_err();
    assert!(e.to_string().contains("larger than the limit of 10"), "{e}");
    w.send_bytes(b"later").unwrap();
    let e = r.recv_bytes_timeout(DEADLINE).unwrap_err();
    assert!(e.to_string().contains("middle of a frame"), "{e}");
    scope.assert_clean();
}

/// A read that fails for a reason other than the deadline (here `ECONNRESET`:
/// the peer closed with our message unread) is that errno, not a timeout.
#[test]
fn a_reset_connection_is_its_errno_not_a_timeout() {
    let scope = Scope::new();
    let (a, b) = connection::pipe(true).unwrap();
    a.send_bytes(b"never read").unwrap();
    drop(b);
    let e = a.recv_bytes_timeout(DEADLINE).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ECONNRESET), "{e}");
    scope.assert_clean();
}

#[test]
fn a_corrupt_message_is_a_protocol_error() {
    let scope = Scope::new();
    let (r, w) = connection::pipe(true).unwrap();
    w.send_bytes(&[0xff, 0xff, 0xff]).unwrap(); // no such PyValue variant
    let e = r.recv_timeout::<PyValue>(DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    scope.assert_clean();
}

#[test]
fn a_peer_killed_mid_frame_gives_a_truncation_error_not_a_hang() {
    let mut scope = Scope::new();
    let (r, w) = connection::pipe(true).unwrap();
    let fd = w.as_raw_fd();
    // Half a frame: a length of 100, then 10 of the 100 bytes.
    let mut half = [7u8; 14];
    half[..4].copy_from_slice(&100u32.to_le_bytes());
    let writes_half_then_sleeps = move || {
        // SAFETY: `fd` is the child's copy of `w`; `half` is on its stack.
        unsafe { libc::write(fd, half.as_ptr().cast(), half.len()) };
        std::thread::sleep(Duration::from_secs(60));
        0
    };
    // SAFETY: the child only calls write(2) and nanosleep(2) (async-signal-safe).
    let mut child = unsafe { process::fork(writes_half_then_sleeps) }.unwrap();
    scope.track(child.pid());
    drop(w); // the parent must close its copy, or end-of-file never comes
    assert!(r.poll(Some(DEADLINE)).unwrap(), "the half frame never came");
    child.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = child.wait_deadline(DEADLINE).unwrap();
    assert!(matches!(status, ExitStatus::Signaled { signal: 9, .. }));
    let started = Instant::now();
    let e = r.recv_bytes_timeout(DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    scope.assert_clean();
}

#[test]
fn a_deadline_inside_a_frame_leaves_the_connection_out_of_step() {
    let scope = Scope::new();
    let (r, w) = connection::pipe(true).unwrap();
    let mut half = 100u32.to_le_bytes().to_vec();
    half.extend_from_slice(&[1u8; 10]);
    channel::write_all(&w, &half, "raw").unwrap();
    let start = Instant::now();
    let e = r.recv_bytes_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "gave up before its timeout"
    );
    w.send_bytes(b"later").unwrap();
    let e = r.recv_bytes_timeout(DEADLINE).unwrap_err();
    assert!(e.to_string().contains("middle of a frame"), "{e}");
    scope.assert_clean();
}

#[rstest]
fn sending_after_the_reader_is_gone_is_epipe(#[values(true, false)] duplex: bool) {
    let scope = Scope::new();
    let (r, w) = connection::pipe(duplex).unwrap();
    drop(r);
    let e = w.send("anyone?").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EPIPE), "{e}");
    assert!(
        matches!(e, Error::Sys { .. }),
        "an OS error keeps its errno: {e:?}"
    );
    let end = if duplex {
        "duplex connection (fd "
    } else {
        "write end of a simplex connection (fd "
    };
    assert!(e.to_string().contains(end), "the error names the end: {e}");
    scope.assert_clean();
}

/// A simplex pipe's ends are one-way: each says which end to use instead.
#[test]
fn a_simplex_end_used_the_wrong_way_names_the_right_one() {
    let scope = Scope::new();
    let (r, w) = connection::pipe(false).unwrap();
    let e = r.send("x").unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot send on the read-only (first) end of a simplex pipe"),
        "{e}"
    );
    let e = w.recv::<String>().unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot receive on the write-only (second) end"),
        "{e}"
    );
    scope.assert_clean();
}

/// Forks a child whose `SIGPIPE` is back to the default action (death), has it
/// run `write` against a channel with no reader, and returns how it ended.
/// `write` returns 0 when it saw `EPIPE`.
fn child_with_default_sigpipe(write: fn(&Connection) -> i32, duplex: bool) -> ExitStatus {
    let mut scope = Scope::new();
    let (r, w) = connection::pipe(duplex).unwrap();
    drop(r);
    let child_work = move || {
        // SAFETY: restoring the default action of SIGPIPE in this child only.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        write(&w)
    };
    // SAFETY: the child only calls signal(2), the write path (write/send,
    // pthread_sigmask, sigpending, sigwait) and, on the error path, allocates
    // a message; glibc resets its allocator locks in the child of fork.
    let mut child = unsafe { process::fork(child_work) }.unwrap();
    scope.track(child.pid());
    let status = child.wait_deadline(DEADLINE).unwrap();
    scope.assert_clean();
    status
}

#[rstest]
fn a_vanished_reader_is_epipe_even_where_sigpipe_kills(#[values(true, false)] duplex: bool) {
    let status = child_with_default_sigpipe(
        |w| match w.send_bytes(b"hello") {
            Err(e) if e.errno() == Some(Errno::EPIPE) => 0,
            _ => 3,
        },
        duplex,
    );
    assert_eq!(status, ExitStatus::Exited(0));
    let status = child_with_default_sigpipe(
        |w| match channel::write_some(w.as_fd(), b"hello") {
            Err(Errno::EPIPE) => 0,
            _ => 3,
        },
        duplex,
    );
    assert_eq!(status, ExitStatus::Exited(0));
}

#[test]
fn control_a_plain_write_to_a_vanished_reader_dies_of_sigpipe() {
    let status = child_with_default_sigpipe(
        |w| {
            // SAFETY: a plain write(2) of a stack buffer.
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            0
        },
        false,
    );
    assert!(
        matches!(status, ExitStatus::Signaled { signal, .. } if signal == libc::SIGPIPE),
        "{status}"
    );
}

// ---- Framing through arbitrary read boundaries -------------------------------

fn py_value() -> impl Strategy<Value = PyValue> {
    let leaf = prop_oneof![
        Just(PyValue::None),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(PyValue::Int),
        proptest::num::f64::NORMAL.prop_map(PyValue::Float),
        ".{0,40}".prop_map(PyValue::Str),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(PyValue::Bytes),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(PyValue::List)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn values_round_trip_through_any_read_boundaries(
        values in proptest::collection::vec(py_value(), 1..8),
        cuts in proptest::collection::vec(1usize..40, 1..30),
        duplex in any::<bool>(),
    ) {
        let scope = Scope::new();
        let mut stream = Vec::new();
        for v in &values {
            ipckit::frame::write_frame(&mut stream, &ipckit::frame::encode(v).unwrap()).unwrap();
        }
        let (r, w) = connection::pipe(duplex).unwrap();
        // The writer sends the byte stream in pieces cut at arbitrary points,
        // pausing between pieces so that the reader sees them one by one.
        let writer = std::thread::spawn(move || {
            let mut rest = &stream[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*cut).min(rest.len()));
                channel::write_all(&w, piece, "writer").unwrap();
                rest = tail;
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        for v in &values {
            prop_assert_eq!(&r.recv_timeout::<PyValue>(DEADLINE).unwrap(), v);
        }
        writer.join().unwrap();
        prop_assert!(matches!(r.recv_timeout::<PyValue>(DEADLINE), Err(Error::Eof(_))));
        scope.assert_clean();
    }
}

/// Whether SIGPIPE is blocked in, and pending for, the calling thread
/// (`pthread_sigmask(3)` with no new mask, `sigpending(2)`).
fn sigpipe_state() -> (bool, bool) {
    // SAFETY: all-zero sigset_t values are valid, to be filled in below.
    let (mut mask, mut pending) = unsafe { std::mem::zeroed::<(libc::sigset_t, libc::sigset_t)>() };
    // SAFETY: a null new mask only reads the current one into `mask`.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) };
    // SAFETY: `pending` is a valid sigset_t to fill in.
    unsafe { libc::sigpending(&mut pending) };
    // SAFETY: both sets were filled in by the calls above.
    let blocked = unsafe { libc::sigismember(&mask, libc::SIGPIPE) } == 1;
    // SAFETY: as above.
    let pending = unsafe { libc::sigismember(&pending, libc::SIGPIPE) } == 1;
    (blocked, pending)
}

/// The set holding SIGPIPE alone.
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid; sigemptyset initialises it.
    let mut set = unsafe { std::mem::zeroed::<libc::sigset_t>() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: a valid signal number added to an initialised set.
    unsafe { libc::sigaddset(&mut set, libc::SIGPIPE) };
    set
}

/// Blocks (`SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) SIGPIPE in this thread.
fn sigpipe_mask(how: libc::c_int) {
    let set = sigpipe_set();
    // SAFETY: `set` is initialised; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
}

/// A write to a pipe nobody reads is `EPIPE`, never a SIGPIPE death, and
/// the thread's signal state is left as it was: SIGPIPE neither blocked nor
/// pending after; and a SIGPIPE the caller had blocked and pending before
/// is still the caller's (still blocked, still pending) after.
#[test]
fn a_write_nobody_reads_is_epipe_and_leaves_the_signal_state_as_it_was() {
    let scope = Scope::new();
    // A thread of its own: its signal mask is changed here.
    std::thread::spawn(|| {
        let (r, w) = channel::pipe().unwrap();
        drop(r);
        assert_eq!(channel::write_some(w.as_fd(), b"x"), Err(Errno::EPIPE));
        assert_eq!(sigpipe_state(), (false, false), "(blocked, pending)");
        sigpipe_mask(libc::SIG_BLOCK);
        // raise(3): to this very thread, where it is blocked.
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGPIPE).unwrap();
        assert_eq!(sigpipe_state(), (true, true));
        assert_eq!(channel::write_some(w.as_fd(), b"x"), Err(Errno::EPIPE));
        assert_eq!(
            sigpipe_state(),
            (true, true),
            "the caller's SIGPIPE is left alone"
        );
        let set = sigpipe_set();
        let mut sig = 0;
        // SAFETY: SIGPIPE is blocked and pending: sigwait takes it at once.
        unsafe { libc::sigwait(&set, &mut sig) };
        sigpipe_mask(libc::SIG_UNBLOCK);
        assert_eq!(sigpipe_state(), (false, false));
    })
    .join()
    .unwrap();
    scope.assert_clean();
}
