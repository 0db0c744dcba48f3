//! Byte channels between related processes: pipes, socket pairs, files, and
//! `multiprocessing.Connection` (CATALOGUE.md section 3).
//!
//! A channel made before `fork` is inherited by the child: both processes then
//! hold *both* ends. The tutorials' rule follows from that: every process closes
//! the ends it does not use, or end-of-file never comes (a reader only sees
//! end-of-file once *every* copy of the write end is closed).
//!
//! | Python                              | ipckit                                  | system call |
//! |-------------------------------------|-----------------------------------------|-------------|
//! | `os.pipe()`                         | [`pipe`]                                | `pipe(2)`   |
//! | `socket.socketpair()`               | [`socketpair`]                          | `socketpair(2)` |
//! | `os.write(fd, data)`                | [`write_all`], [`write_some`]           | `write(2)`  |
//! | `os.read(fd, n)` until `b""`        | [`read_to_end`]                         | `read(2)`   |
//! | `open(f"{pid}.txt", "w")`           | [`file::path_for`], [`file::write_text`] | `open(2)`, `write(2)` |
//! | `os.remove(path)`                   | [`file::read_and_remove`]               | `unlink(2)` |
//! | `multiprocessing.Pipe(duplex)`      | [`connection::pipe`]                    | `socketpair(2)` / `pipe(2)` |
//! | `conn.send(obj)`, `conn.recv()`     | [`Connection::send`], [`Connection::recv`] | `write(2)`, `read(2)` |
//!
//! # `SIGPIPE`
//! Writing to a pipe or socket whose every reader is gone makes the kernel send
//! `SIGPIPE` to the writer, whose default action kills it; only if the signal is
//! ignored or blocked does `write` fail with `EPIPE` instead. (Rust programs,
//! the `ipckit` binary included, start with `SIGPIPE` ignored; C and Python
//! children of a Rust program do not.) This module never relies on the
//! process-wide disposition: sockets are written with `send(MSG_NOSIGNAL)`
//! (Linux), and [`write_some`] blocks `SIGPIPE` in the calling thread for the
//! duration of one `write`, consuming the signal it may have caused, and
//! restores the thread's signal mask. The result is an `EPIPE` error, never a
//! death.

pub mod connection;
pub mod file;
mod raw;

pub use connection::Connection;
pub use raw::{pipe, read_to_end, socketpair, write_all, write_some};
