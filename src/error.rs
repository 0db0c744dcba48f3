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

    /// The `errno` behind a failed system call, if this is one.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(nix::errno::Errno::from_raw),
            _ => None,
        }
    }
}
