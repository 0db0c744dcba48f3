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
//! - [`pi`]: the pi workload shared by every `pi-*` exercise.
//! - [`frame`]: whole messages over byte streams (length prefix + postcard).
//! - [`programs`]: the reference program of every exercise, run by
//!   `ipckit run ID`.
//! - [`error`]: the one error type; [`sys`] is where `errno` becomes it.
//!
//! Every wrapper names its system call and man page; every `unsafe` block says
//! why it is sound there.

pub mod audit;
pub mod error;
pub mod frame;
pub mod grade;
pub mod pi;
pub mod process;
pub mod programs;
pub mod sys;

pub use error::{Error, Result};
