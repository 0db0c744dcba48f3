//! Names (base layer): the name of a POSIX named object (`/name`), and the
//! [`Owner`] that removes a named object when its creator is done with it.
//! Used by every named mechanism: shared memory, semaphores, message queues.
//!
//! ## The name of a POSIX named object: `/name`
//!
//! `shm_open(3)`, `sem_open(3)` and `mq_open(3)` all take a name that starts
//! with a slash and contains no other slash (`shm_overview(7)`,
//! `sem_overview(7)`). On Linux the object shows up as `/dev/shm/name`
//! (semaphores as `/dev/shm/sem.name`, hence the shorter limit); macOS allows
//! only 31 characters. A [`PosixName`] can only hold a name that is valid on the
//! system it was built for, so every function taking one can skip the checks.

mod owner;

pub use owner::{Owner, Removable};

use crate::error::{Error, Result};
use std::ffi::{CStr, CString};

/// The longest name accepted, slash included: `NAME_MAX` (255) minus the
/// `sem.` prefix Linux adds for semaphores; 31 (`PSHMNAMLEN`) on macOS.
#[cfg(target_os = "linux")]
pub const MAX_NAME_LEN: usize = 251;
/// The longest name accepted, slash included (`PSHMNAMLEN` on macOS).
#[cfg(not(target_os = "linux"))]
pub const MAX_NAME_LEN: usize = 31;

/// A valid POSIX object name: a leading `/`, then 1 or more characters, none
/// of them `/` or NUL, at most [`MAX_NAME_LEN`] bytes in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PosixName(CString);

/// Checks a POSIX object name, for every kind of named object: a leading `/`,
/// then 1 or more bytes, none of them `/` or NUL, at most `max_len` bytes in
/// all. `what` names the kind in the error ("queue name"); `limit` says where
/// `max_len` comes from ("NAME_MAX (255) after the '/'").
pub(crate) fn check_name(
    name: &str,
    what: &'static str,
    max_len: usize,
    limit: &str,
) -> Result<CString> {
    let bad = |why: String| Err(Error::invalid(what, why));
    let Some(rest) = name.strip_prefix('/') else {
        return bad(format!("{name:?} must start with '/', as in \"/{name}\""));
    };
    if rest.is_empty() {
        return bad(
            "\"/\" alone is not a name: it needs at least one character after the '/'".into(),
        );
    }
    if rest.contains('/') {
        return bad(format!("{name:?} may contain no '/' but the leading one"));
    }
    if name.len() > max_len {
        return bad(format!(
            "{name:?} is {} bytes long; the limit here is {max_len} ({limit})",
            name.len()
        ));
    }
    CString::new(name).or_else(|_| bad(format!("{name:?} contains a NUL byte")))
}

/// `/<base>_<pid>_<n>` (n counts up in each process): a name no other
/// process and no other call in this one gets, for every kind of named object.
pub(crate) fn unique_name(base: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/{base}_{}_{n}", std::process::id())
}

/// Where [`MAX_NAME_LEN`] comes from, for the error message.
#[cfg(target_os = "linux")]
const LIMIT_SOURCE: &str = "NAME_MAX minus the \"sem.\" prefix of semaphores";
/// Where [`MAX_NAME_LEN`] comes from, for the error message.
#[cfg(not(target_os = "linux"))]
const LIMIT_SOURCE: &str = "PSHMNAMLEN";

impl PosixName {
    /// Checks `name` and wraps it; the error says what is wrong and how to fix it.
    pub fn new(name: &str) -> Result<PosixName> {
        check_name(name, "POSIX object name", MAX_NAME_LEN, LIMIT_SOURCE).map(PosixName)
    }

    /// The name as a C string, for the system calls.
    pub fn as_c_str(&self) -> &CStr {
        &self.0
    }

    /// The name as text (`/name`).
    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("built from a &str")
    }

    /// A name unique to this process: `/<base>_<pid>_<n>` (n counts up), so
    /// that programs running in parallel never collide.
    pub fn unique(base: &str) -> Result<PosixName> {
        PosixName::new(&unique_name(base))
    }
}

impl std::fmt::Display for PosixName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PosixName {
    type Err = Error;
    fn from_str(s: &str) -> Result<PosixName> {
        PosixName::new(s)
    }
}
