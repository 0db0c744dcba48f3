//! A `multiprocessing.Manager` started from an ordinary program, without the
//! `ipckit` binary: `ipckit::manager::serve_if_asked()` comes first in
//! `main` (Python's `freeze_support()`), and `Manager::start` then runs this
//! very program as the manager's server.
//!
//! Run it with `cargo run --example manager_anywhere`; it prints
//!
//! ```text
//! records ['Computers', 'History', 'Hindi']
//! Namespace(x=6, y=10)
//! ```
//!
//! `tests/manager_anywhere.rs` runs the same code as a test.

use ipckit::manager::{Manager, ManagerConfig, Op, PyValue};
use std::process::ExitCode;

fn main() -> ExitCode {
    // If Manager::start launched this copy to be the server, it serves here
    // and never returns.
    ipckit::manager::serve_if_asked();
    match run() {
        Ok(lines) => {
            lines.iter().for_each(|line| println!("{line}"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("manager_anywhere: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts a manager whose server is this program, shares a list and a
/// namespace between two clients, shuts the manager down, and returns what
/// the program prints.
pub fn run() -> ipckit::Result<Vec<String>> {
    let mut manager = Manager::start(&ManagerConfig::default())?;
    let records = manager.list(vec![PyValue::from("Computers"), PyValue::from("History")])?;
    let ns = manager.namespace()?;
    ns.set("x", 1)?;
    ns.set("y", 1)?;
    // A second client, as another process holding the address and key has.
    let other = manager.connect()?;
    records.via(&other).append("Hindi")?;
    ns.via(&other).update("x", Op::Add(PyValue::Int(5)))?;
    ns.via(&other).update("y", Op::Mul(PyValue::Int(10)))?;
    let lines = vec![
        format!("records {}", PyValue::List(records.to_vec()?)),
        ns.repr()?,
    ];
    manager.shutdown()?;
    Ok(lines)
}
