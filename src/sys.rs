//! The single place where `errno` becomes an [`crate::Error`].
//!
//! Raw `libc` calls return `-1` (or another sentinel) and set `errno`; nix calls
//! return `nix::Result`. Both are turned into [`Error::Sys`] here, with the name
//! of the call and the object it acted on.

use crate::error::{Error, Result};
use nix::errno::Errno;

/// Converts the return value of a raw libc call: `-1` means failure, and the
/// reason is read from `errno` right away (before anything can overwrite it).
pub fn check<T: PartialEq + From<i8>>(
    call: &'static str,
    what: impl ToString,
    ret: T,
) -> Result<T> {
    if ret == T::from(-1) {
        Err(Error::Sys {
            call,
            what: what.to_string(),
            errno: Errno::last(),
        })
    } else {
        Ok(ret)
    }
}

/// Converts a `nix::Result`, naming the call and the object.
pub fn nix<T>(call: &'static str, what: impl ToString, r: nix::Result<T>) -> Result<T> {
    r.map_err(|errno| Error::Sys {
        call,
        what: what.to_string(),
        errno,
    })
}

/// Builds an [`Error::Sys`] from an explicit errno (for calls such as
/// `pthread_mutex_lock` that return the error instead of setting `errno`).
pub fn errno_error(call: &'static str, what: impl ToString, errno: i32) -> Error {
    Error::Sys {
        call,
        what: what.to_string(),
        errno: Errno::from_raw(errno),
    }
}

/// Reads exactly `n` bytes from `fd`, waiting at most `timeout` in total
/// (`poll(2)` then `read(2)`, retried on `EINTR`). End of file before `n` bytes
/// is [`Error::Eof`]; the deadline is [`Error::Timeout`].
pub fn read_exact_timeout(
    fd: &impl std::os::fd::AsFd,
    n: usize,
    timeout: std::time::Duration,
    what: &str,
) -> Result<Vec<u8>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                what: what.to_string(),
                after: timeout,
            });
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(errno_error("poll", what, e as i32)),
        }
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => return Err(Error::Eof(format!("{what}: got {got} of {n} bytes"))),
            Ok(k) => got += k,
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(e) => return Err(errno_error("read", what, e as i32)),
        }
    }
    Ok(buf)
}

/// How long a spinning wait polls back to back between two `sched_yield(2)`
/// calls while no other task wants its core.
const RECHECK: std::time::Duration = std::time::Duration::from_micros(10);

/// A `sched_yield(2)` that takes longer than this ran another task on this
/// core (a bare system call takes well under a microsecond).
const RAN_ANOTHER: std::time::Duration = std::time::Duration::from_micros(2);

/// The kit's spin budget: how long a wait on a request/reply path spins
/// ([`spin_until_ready`], [`SpinRead`]) before it blocks. Used by the pool (its
/// wait for results and its workers' wait for tasks) and the manager's links
/// (a client waiting for a reply, a server waiting for the next request).
pub const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// The clock of one spinning wait: [`Spin::pause`] between two polls.
struct Spin {
    start: std::time::Instant,
    budget: std::time::Duration,
    /// When (time spent) to yield next; zero: at every pause.
    next_yield: std::time::Duration,
}

impl Spin {
    fn new(budget: std::time::Duration) -> Spin {
        Spin {
            start: std::time::Instant::now(),
            budget,
            next_yield: std::time::Duration::ZERO,
        }
    }

    /// Pauses before the next poll; false once the budget is spent: time to
    /// block.
    ///
    /// The peer may share this core, and then every moment spent polling is
    /// a moment it cannot run to answer. So the wait yields (`sched_yield(2)`)
    /// first. If the yield returns at once, no other task wanted this core:
    /// the wait polls back to back (a CPU spin hint between polls) for
    /// [`RECHECK`], then yields again to check. If a yield took longer than
    /// [`RAN_ANOTHER`], another task ran meanwhile (perhaps the peer), and the
    /// wait yields at every pause from then on.
    fn pause(&mut self) -> bool {
        let spent = self.start.elapsed();
        if spent >= self.budget {
            return false;
        }
        if spent < self.next_yield {
            std::hint::spin_loop();
            return true;
        }
        std::thread::yield_now();
        self.next_yield = next_yield(spent, self.start.elapsed());
        true
    }
}

/// When a spinning wait yields next, after a yield that began `spent` and
/// returned `after` into the wait: at every pause (zero) if another task ran
/// meanwhile (the yield took longer than [`RAN_ANOTHER`]), else [`RECHECK`]
/// later.
fn next_yield(spent: std::time::Duration, after: std::time::Duration) -> std::time::Duration {
    if after - spent > RAN_ANOTHER {
        std::time::Duration::ZERO
    } else {
        after + RECHECK
    }
}

/// Waits up to `budget` for one of `fds` to become ready by polling them
/// without blocking (`poll(2)` with a zero timeout); returns true if one did.
///
/// This is *adaptive spinning*, used on request/reply paths before a blocking
/// wait: when the peer runs on another core, its answer usually comes within
/// microseconds, and catching it while still awake avoids a sleep and a
/// cross-core wake-up (tens of microseconds on a virtual machine). It yields
/// the CPU (`sched_yield(2)`) first, and at every poll once another task is
/// seen to want this core, so a peer on the *same* core can run;
/// after `budget` the caller blocks as usual, so an idle peer costs at most
/// `budget` of CPU.
pub fn spin_until_ready(fds: &mut [nix::poll::PollFd<'_>], budget: std::time::Duration) -> bool {
    use nix::poll::{PollTimeout, poll};
    let mut spin = Spin::new(budget);
    loop {
        if poll(fds, PollTimeout::ZERO).is_ok_and(|n| n > 0) {
            return true;
        }
        if !spin.pause() {
            return false;
        }
    }
}

/// A socket reader that spins before it sleeps: each `read` first tries
/// `recv(2)` with `MSG_DONTWAIT`, back to back and then yielding the CPU
/// between tries (as [`spin_until_ready`]) for up to `budget`, and only then
/// blocks in `recv(2)`
/// (which honours the socket's `SO_RCVTIMEO` deadline). A zero budget blocks
/// at once.
///
/// On a request/reply path this catches a reply from a peer on another core
/// without a sleep and a cross-core wake-up, and, unlike polling first, costs
/// one system call when the reply is already there. Wrap it in a
/// `BufReader`, which only reads when its buffer is empty.
pub struct SpinRead<S> {
    socket: S,
    budget: std::time::Duration,
}

impl<S: std::os::fd::AsFd> SpinRead<S> {
    /// Wraps `socket` (a stream or a seqpacket socket: each read is one
    /// `recv(2)`, so on a seqpacket socket one record), spinning for at most
    /// `budget` per read.
    pub fn new(socket: S, budget: std::time::Duration) -> Self {
        SpinRead { socket, budget }
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &S {
        &self.socket
    }
}

impl<S: std::os::fd::AsFd> std::io::Read for SpinRead<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd;
        let fd = self.socket.as_fd().as_raw_fd();
        let mut spin = Spin::new(self.budget);
        while !self.budget.is_zero() {
            match recv(fd, buf, MsgFlags::MSG_DONTWAIT) {
                Err(Errno::EAGAIN) if spin.pause() => {}
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                other => return other.map_err(std::io::Error::from),
            }
        }
        loop {
            match recv(fd, buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => {}
                other => return other.map_err(std::io::Error::from),
            }
        }
    }
}

/// The absolute time `timeout` from now on `clock` (`clock_gettime(2)`), as the
/// timed `pthread_*`, `sem_*` and `mq_*` calls want it (Linux: macOS has no
/// timed variants of these, and polls instead).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn deadline_on(clock: libc::clockid_t, timeout: std::time::Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut now) };
    let nanos = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
    let secs = (now.tv_sec as u64)
        .saturating_add(timeout.as_secs())
        .saturating_add(nanos / 1_000_000_000)
        .min(libc::time_t::MAX as u64);
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as _,
    }
}

#[cfg(test)]
mod tests {
    use super::SpinRead;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn a_spin_pauses_until_its_budget_is_spent_then_says_block() {
        let budget = Duration::from_millis(5);
        let mut spin = super::Spin::new(budget);
        let mut pauses = 0u64;
        while spin.pause() {
            pauses += 1;
            assert!(
                spin.start.elapsed() < Duration::from_secs(10),
                "never ended"
            );
        }
        assert!(spin.start.elapsed() >= budget, "stopped early");
        assert!(pauses > 0);
        assert!(!spin.pause(), "spent stays spent");
    }

    #[test]
    fn before_its_next_yield_a_spin_only_spins() {
        let mut spin = super::Spin::new(Duration::from_secs(3600));
        spin.next_yield = Duration::from_secs(1800);
        assert!(spin.pause());
        assert_eq!(spin.next_yield, Duration::from_secs(1800), "it yielded");
    }

    #[test]
    fn spin_until_ready_sees_data_already_there_or_arriving_and_gives_up_after_its_budget() {
        use nix::poll::{PollFd, PollFlags};
        use std::os::fd::AsFd;
        let (mut a, b) = UnixStream::pair().unwrap();
        let ready = |budget| {
            let mut fds = [PollFd::new(b.as_fd(), PollFlags::POLLIN)];
            super::spin_until_ready(&mut fds, budget)
        };
        let start = std::time::Instant::now();
        assert!(!ready(Duration::from_millis(5)), "nothing to read");
        assert!(start.elapsed() >= Duration::from_millis(5), "gave up early");
        a.write_all(b"x").unwrap();
        assert!(ready(Duration::ZERO), "already there");
        let mut buf = [0u8; 1];
        (&b).read_exact(&mut buf).unwrap();
        // Written while it spins (a budget far longer than the writer's pause).
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            a.write_all(b"y").unwrap();
            a
        });
        assert!(ready(Duration::from_secs(20)), "arrived during the spin");
        drop(writer.join().unwrap());
    }

    #[test]
    fn a_spin_read_with_nothing_coming_ends_at_the_sockets_timeout() {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = SpinRead::new(b, Duration::from_micros(50));
            let _ = tx.send(r.read(&mut [0u8; 8]).map_err(|e| e.kind()));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the read never gave up: it spun past the socket's timeout");
        assert_eq!(got, Err(std::io::ErrorKind::WouldBlock));
        drop(a);
    }

    #[test]
    fn a_yield_that_let_another_task_run_means_yield_at_every_pause() {
        use super::{RAN_ANOTHER, RECHECK, next_yield};
        let at = Duration::from_millis(7);
        assert_eq!(next_yield(at, at + RAN_ANOTHER * 2), Duration::ZERO);
        assert_eq!(next_yield(at, at + RAN_ANOTHER), at + RAN_ANOTHER + RECHECK);
        assert_eq!(
            next_yield(at, at + RAN_ANOTHER / 2),
            at + RAN_ANOTHER / 2 + RECHECK
        );
    }

    #[test]
    fn spin_read_gets_data_sent_before_during_and_after_its_spin_then_eof() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut r = SpinRead::new(b, Duration::from_micros(50));
        let mut buf = [0u8; 8];
        a.write_all(b"now").unwrap();
        assert_eq!(r.read(&mut buf).unwrap(), 3, "already there: no wait");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20)); // long past the spin: a blocking read
            a.write_all(b"later").unwrap();
            a
        });
        assert_eq!(r.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"later");
        drop(writer.join().unwrap());
        assert_eq!(
            r.read(&mut buf).unwrap(),
            0,
            "end of file once the peer is gone"
        );
    }
}
