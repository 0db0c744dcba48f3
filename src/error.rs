//! The one error type of the crate.
//!
//! Every failing system call is turned into an [`Error`] in exactly one place,
//! [`crate::sys::check`], so that every message names the call, the object it
//! was acting on, and the `errno` the kernel gave. Every other variant says what
//! went wrong in words a student can act on.

use std::time::Duration;

/// Everything that can go wrong in ipckit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed; `call` is its name (see its man page), `what` the
    /// object it acted on.
    #[error("{call}({what}) failed: {errno} ({desc})", desc = errno.desc())]
    Sys {
        /// The system call, as its man page names it (`fork`, `mq_open`, ...).
        call: &'static str,
        /// The object the call acted on (a pid, a name, a path).
        what: String,
        /// The error the kernel reported.
        errno: nix::errno::Errno,
    },
    /// A blocking operation did not finish before its deadline.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A name, size or argument was rejected before any system call was made.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The kind of input (`queue name`, `size`, `typecode`, ...).
        what: &'static str,
        /// Why it was rejected and what to do instead.
        why: String,
    },
    /// The other end of a channel was closed: no more data will come.
    #[error("end of file: {0}")]
    Eof(String),
    /// The object was used after it was closed or shut down.
    #[error("{0} is closed")]
    Closed(String),
    /// A non-blocking or timed put found the queue full.
    #[error("{0} is full")]
    Full(String),
    /// A non-blocking or timed get found the queue empty.
    #[error("{0} is empty")]
    Empty(String),
    /// A peer sent bytes that do not form a valid message.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A process the caller depended on died.
    #[error("process died: {0}")]
    Died(String),
    /// The mechanism does not exist on this operating system.
    #[error("UNSUPPORTED on this system: {0}")]
    Unsupported(String),
    /// Anything else, in the words of the code that failed: the catch-all a
    /// port of a mechanism (a conformance suite's student) maps its own
    /// errors to ([`Error::other`]).
    #[error("{0}")]
    Other(String),
    /// An I/O error from the standard library (files, spawned commands).
    #[error("{what}: {source}")]
    Io {
        /// The file or command involved.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Invalid`].
    pub fn invalid(what: &'static str, why: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            why: why.into(),
        }
    }

    /// Builds an [`Error::Io`] naming the file or command involved.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Builds an [`Error::Other`] carrying `message` as it is.
    pub fn other(message: impl ToString) -> Self {
        Error::Other(message.to_string())
    }

    /// Builds an [`Error::Timeout`] after waiting `after` for "the operation":
    /// for code (a port under a conformance suite) that has nothing more to say.
    pub fn timeout(after: Duration) -> Self {
        Error::Timeout {
            what: "the operation".into(),
            after,
        }
    }

    /// The `errno` behind a failed system call, if this is one.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(nix::errno::Errno::from_raw),
            _ => None,
        }
    }
}

/// A `std::io::Error` from code that named nothing more: a timed-out
/// operation (`ErrorKind::TimedOut`) becomes [`Error::Timeout`], an
/// unexpected end of file [`Error::Eof`], anything else [`Error::Io`].
impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        match source.kind() {
            std::io::ErrorKind::TimedOut => Error::timeout(Duration::ZERO),
            std::io::ErrorKind::UnexpectedEof => Error::Eof(source.to_string()),
            _ => Error::io("I/O", source),
        }
    }
}

/// An `errno` from nix (`nix::Error` is [`nix::errno::Errno`], re-exported
/// as [`crate::Errno`]): an [`Error::Sys`] of an unnamed call; `ETIMEDOUT`
/// becomes [`Error::Timeout`].
impl From<nix::errno::Errno> for Error {
    fn from(errno: nix::errno::Errno) -> Self {
        match errno {
            nix::errno::Errno::ETIMEDOUT => Error::timeout(Duration::ZERO),
            errno => Error::Sys {
                call: "a system call",
                what: String::new(),
                errno,
            },
        }
    }
}
