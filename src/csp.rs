//! CSP (communicating sequential processes, as python-csp teaches it):
//! processes that share nothing and talk only over channels
//! (CATALOGUE.md section 6).
//!
//! The tutorial's steps:
//!
//! 1. declare processes (`@process def P1(): ...`): here, closures;
//! 2. `Parallel(P1(), P2())` starts them all and returns when all have ended
//!    ([`Parallel::run`], with each one's exit status);
//! 3. processes talk over a [`Channel`]: a writer end and a reader end. A
//!    write is a *rendezvous*: it returns only when a reader has taken the
//!    value (the reader sends an acknowledgement back over the socket pair,
//!    `socketpair(2)`);
//! 4. a network shuts down cleanly by *poisoning* a channel (the other end's
//!    next read or write fails with [`Error::Closed`], and it can pass the
//!    poison on) or by *retiring* an end (dropping it: the other side sees
//!    end of file).

use crate::error::{Error, Result};
use crate::frame::{decode, read_frame, write_value};
use crate::process::{ChildGuard, ExitStatus, fork};
use serde::{Serialize, de::DeserializeOwned};
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The reader's acknowledgement: the value was taken.
const ACK: u8 = 0x06;
/// The reader poisoned the channel.
const POISON: u8 = 0x15;

/// A set of processes run together (python-csp's `Parallel`).
#[derive(Default)]
pub struct Parallel {
    procs: Vec<Box<dyn FnOnce()>>,
}

impl Parallel {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a process: `body` runs in a child of its own, which then ends with
    /// `_exit(0)` (so a body that prints must end its lines: `println!`
    /// flushes at each newline).
    pub fn with(mut self, body: impl FnOnce() + 'static) -> Self {
        self.procs.push(Box::new(body));
        self
    }

    /// Forks one child per process (`fork(2)`), then waits for every one
    /// (`waitpid(2)`, at most `timeout` each; a process still running then is
    /// killed and reported as an error). Returns the statuses in order.
    ///
    /// # Safety
    /// As [`crate::process::fork`]: in a multi-threaded process the bodies may
    /// only call async-signal-safe functions.
    pub unsafe fn run(self, timeout: Duration) -> Result<Vec<ExitStatus>> {
        let _ = std::io::stdout().flush();
        let mut children: Vec<ChildGuard> = Vec::new();
        for body in self.procs {
            // SAFETY: forwarded to the caller.
            children.push(unsafe {
                fork(move || {
                    body();
                    0
                })
            }?);
        }
        children
            .iter_mut()
            .map(|c| c.wait_deadline(timeout))
            .collect()
    }
}

/// A one-to-one channel between two processes (or threads): made before the
/// fork, then each side keeps one end.
pub struct Channel;

impl Channel {
    /// Makes a channel for values of type `T`: a socket pair, one end each.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T>() -> Result<(ChannelWriter<T>, ChannelReader<T>)> {
        let (w, r) = UnixStream::pair().map_err(|e| Error::io("socketpair for a channel", e))?;
        Ok((
            ChannelWriter {
                sock: w,
                _t: PhantomData,
            },
            ChannelReader {
                sock: r,
                _t: PhantomData,
            },
        ))
    }
}

/// The writing end of a [`Channel`].
pub struct ChannelWriter<T> {
    sock: UnixStream,
    _t: PhantomData<fn(T)>,
}

/// The reading end of a [`Channel`].
pub struct ChannelReader<T> {
    sock: UnixStream,
    _t: PhantomData<fn() -> T>,
}

/// What travels from writer to reader.
#[derive(serde::Serialize, serde::Deserialize)]
enum Message<T> {
    Value(T),
    Poison,
}

impl<T: Serialize> ChannelWriter<T> {
    /// Writes `value` and blocks until a reader has taken it (the rendezvous).
    /// A poisoned channel is [`Error::Closed`]; a retired reader is [`Error::Closed`] too.
    pub fn write(&mut self, value: T) -> Result<()> {
        if let Err(e) = write_value(&mut self.sock, &Message::Value(value)) {
            if !matches!(e, Error::Io { .. }) {
                return Err(e); // the value cannot be encoded: nothing was sent
            }
            // A reader that poisoned the channel left the poison byte behind.
            let mut last = [0u8; 1];
            return match self.sock.read(&mut last) {
                Ok(1) if last[0] == POISON => Err(poisoned()),
                _ => Err(retired("reader", e)),
            };
        }
        let mut ack = [0u8; 1];
        match self.sock.read(&mut ack) {
            Ok(1) if ack[0] == ACK => Ok(()),
            Ok(1) => Err(poisoned()),
            Ok(_) => Err(retired("reader", Error::Eof("no acknowledgement".into()))),
            Err(e) => Err(Error::io("reading a channel acknowledgement", e)),
        }
    }

    /// Poisons the channel: the reader's next read fails with [`Error::Closed`].
    pub fn poison(mut self) -> Result<()> {
        write_value(&mut self.sock, &Message::<T>::Poison).map_err(|e| retired("reader", e))
    }

    /// Retires this end (python-csp's `retire`): the reader sees end of file.
    pub fn retire(self) {}
}

impl<T: DeserializeOwned> ChannelReader<T> {
    /// Takes the next value, blocking until a writer offers one, and releases
    /// the writer. A poisoned channel, or a retired writer, is [`Error::Closed`].
    pub fn read(&mut self) -> Result<T> {
        let bytes = read_frame(&mut self.sock, crate::frame::DEFAULT_MAX_FRAME)
            .map_err(|e| retired("writer", e))?;
        match decode::<Message<T>>(&bytes)? {
            Message::Value(v) => {
                self.sock
                    .write_all(&[ACK])
                    .map_err(|e| Error::io("acknowledging a channel read", e))?;
                Ok(v)
            }
            Message::Poison => Err(poisoned()),
        }
    }

    /// Poisons the channel from the reading side: the writer's pending or next
    /// write fails with [`Error::Closed`].
    pub fn poison(mut self) -> Result<()> {
        self.sock
            .write_all(&[POISON])
            .map_err(|e| Error::io("poisoning a channel", e))
    }

    /// Retires this end: the writer's next write fails.
    pub fn retire(self) {}
}

fn poisoned() -> Error {
    Error::Closed("the channel (it was poisoned)".into())
}

fn retired(side: &str, e: Error) -> Error {
    match e {
        Error::Eof(_) | Error::Io { .. } => {
            Error::Closed(format!("the channel (its {side} retired: {e})"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The writer's value is already in the reader's socket, and the writer
    /// waits for its acknowledgement, when the reader poisons instead of
    /// reading: the write fails as poisoned (not as a success, not as a retire).
    #[test]
    fn a_reader_that_poisons_instead_of_reading_fails_the_pending_write() {
        use std::os::fd::AsFd;
        let (mut w, r) = Channel::new::<u32>().unwrap();
        let writer = std::thread::spawn(move || w.write(5));
        let mut ready = [nix::poll::PollFd::new(
            r.sock.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut ready, nix::poll::PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(n, 1, "the writer's value never arrived");
        r.poison().unwrap();
        let e = writer.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("poisoned"), "{e}");
    }

    #[test]
    fn write_returns_only_after_the_reader_took_the_value() {
        let (mut w, mut r) = Channel::new::<String>().unwrap();
        let taken = Arc::new(AtomicBool::new(false));
        let t = Arc::clone(&taken);
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            t.store(true, Ordering::SeqCst);
            r.read().unwrap()
        });
        w.write("hello".into()).unwrap();
        assert!(
            taken.load(Ordering::SeqCst),
            "write returned before the reader read"
        );
        assert_eq!(reader.join().unwrap(), "hello");
    }

    #[test]
    fn poison_and_retire_reach_the_other_end_as_closed() {
        let (w, mut r) = Channel::new::<i32>().unwrap();
        w.poison().unwrap();
        assert!(r.read().unwrap_err().to_string().contains("poisoned"));

        let (mut w, r) = Channel::new::<i32>().unwrap();
        r.poison().unwrap();
        assert!(w.write(1).unwrap_err().to_string().contains("poisoned"));

        let (w, mut r) = Channel::new::<i32>().unwrap();
        w.retire();
        assert!(r.read().unwrap_err().to_string().contains("retired"));

        let (mut w, r) = Channel::new::<i32>().unwrap();
        r.retire();
        assert!(matches!(w.write(1), Err(Error::Closed(_))));
    }
}
