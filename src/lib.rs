//! # ipckit: a conformance kit for Unix processes and inter-process communication
//!
//! The crate is the index of what it teaches. Each module is one mechanism of
//! CATALOGUE.md, written to be read next to the Python tutorial it ports:
//!
//! - [`process`]: fork, wait and exit statuses, the two exits, zombies,
//!   orphans and the double fork, `SIGCHLD` ignored, and `multiprocessing.Process`.
//! - [`audit`]: what a process tree left behind: zombies, orphans still
//!   running, named IPC objects and temporary files. Every test runs under it.
//! - [`grade`]: the grader: runs a student's port contained, traces what it
//!   did, and checks output, exit, time, zombies, orphans, leaks, mechanism.
//! - [`conformance`]: trait-generic suites a student's crate runs against its own
//!   port of every mechanism, one `#[test]` per check with
//!   [`conformance_tests!`] (the kit's tests run them on its own).
//! - [`pi`]: the pi workload shared by every `pi-*` exercise.
//! - [`frame`]: whole messages over byte streams (length prefix + postcard).
//! - [`channel`]: pipes, socket pairs, file exchange and `Connection` (section 3).
//! - [`mq`]: POSIX and System V message queues (section 4).
//! - [`manager`], [`pool`], [`csp`]: a server process owning shared objects, a pool of
//!   worker processes, and processes that talk only over rendezvous channels.
//! - [`shm`]: shared memory (named POSIX objects, anonymous shared mappings)
//!   and Python's `Value`/`Array` with their typecodes.
//! - [`sync`]: locks that survive a holder's death, condition variables, and
//!   POSIX and System V semaphores.
//! - [`pyvalue`]: Python values (`[42, None, 'hello']`), printed like Python's `repr`.
//! - [`queue`]: `multiprocessing.Queue` and `JoinableQueue` in shared memory,
//!   safe when a process dies mid-operation.
//! - [`bench`](mod@bench): side-by-side benchmarks against raw system calls and Python.
//! - [`programs`]: the reference program of every exercise, run by
//!   `ipckit run ID`.
//! - [`error`]: the one error type; [`sys`] is where `errno` becomes it (and
//!   where deadlines are computed); [`names`]: POSIX object names and the
//!   [`Owner`](names::Owner) that removes a named object; [`region`]: memory
//!   shared between processes; [`procfs`](mod@procfs): the process table (Linux
//!   only). These five are the base layer; ARCHITECTURE.md lists which module
//!   may use which (`tests/layers.rs` checks it).
//!
//! Every wrapper names its system call and man page; every `unsafe` block says
//! why it is sound there.

#![warn(missing_docs)]

pub mod audit;
#[cfg(feature = "cli")]
pub mod bench;
pub mod channel;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod csp;
pub mod error;
pub mod frame;
#[cfg(feature = "cli")]
pub mod grade;
pub mod manager;
pub mod mq;
pub mod names;
pub mod pi;
pub mod pool;
pub mod process;
#[cfg(target_os = "linux")]
pub mod procfs;
#[cfg(feature = "cli")]
pub mod programs;
pub mod pyvalue;
pub mod queue;
pub mod region;
pub mod shm;
pub mod sync;
pub mod sys;

pub use error::{Error, Result};
/// The `errno` type of [`Error::Sys`] (nix's), for ports that build one.
pub use nix::errno::Errno;
