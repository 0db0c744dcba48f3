//! Exchanging results through files: the oldest channel of all.
//!
//! The tutorial's `pi-file` steps, in order:
//! 1. each child writes its result to a file named after its own pid
//!    ([`path_for`] with [`getpid`](crate::process::getpid), [`write_text`]);
//! 2. the parent waits for that child (so the file is complete), then reads the
//!    file named after the pid `fork` returned and deletes it
//!    ([`read_and_remove`]).
//!
//! Waiting first is what makes this safe: a reader that does not wait may find
//! a missing or half-written file. Files go to the temporary directory
//! (`$TMPDIR`, else `/tmp`), which the audit watches.

use crate::error::{Error, Result};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

/// The exchange file of process `pid`: `$TMPDIR/ipckit-<pid>.txt`.
pub fn path_for(pid: Pid) -> PathBuf {
    std::env::temp_dir().join(format!("ipckit-{pid}.txt"))
}

/// Creates (or truncates) `path` and writes `text` to it
/// (`open(2)` with `O_CREAT | O_TRUNC`, `write(2)`, `close(2)`).
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), e))
}

/// Reads the whole of `path`, then deletes it (`unlink(2)`), so that nothing
/// is left behind. The file is removed even when its contents are not text.
pub fn read_and_remove(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e));
    let removed = std::fs::remove_file(path).map_err(|e| Error::io(path.display().to_string(), e));
    let text = String::from_utf8(bytes?)
        .map_err(|_| Error::Protocol(format!("{} does not hold UTF-8 text", path.display())));
    removed?;
    text
}
