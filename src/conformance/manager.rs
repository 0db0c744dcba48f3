//! The suite for a port of `multiprocessing.Manager` and its proxies
//! (CATALOGUE.md section 6: `manager-list`, `manager-namespace`).
//!
//! Implement [`ManagerPort`] and call [`check`] or
//! `ipckit::conformance_tests!(manager, MyManager)`. The checks:
//! - `list_update_seen_by_every_process`: from `list([1, 2, 3])`, a process
//!   appends 4; once it was joined, another reads `[1, 2, 3, 4]`.
//! - `dict_update_seen_by_every_process`: a process sets `d['a'] = 1` and
//!   `d['b'] = 2`; another reads them, and finds no `'c'`.
//! - `namespace_update_seen_and_printed`: from `Namespace(x=1, y=1)`, a
//!   process does `x += 5` and `y *= 10`; another reads 6 and 10, and its
//!   printed form is `Namespace(x=6, y=10)`.
//! - `atomic_update_from_several_processes`: 4 processes each add 1 to
//!   `n` 50 times through the server's own update: `n` is 200.
//! - `racy_get_then_set` (a NOTE): the same with `get` then `set`: the note
//!   says how many of the 200 increments were lost.

use super::{Entry, Report, Verdict, deadline, finish_all, setup, show, spawn};
use crate::audit::Scope;
use crate::error::Result;

/// A port of a started `Manager()` holding `list([1, 2, 3])`, `dict()` and
/// `Namespace(x=1, y=1)`, used through its proxies.
///
/// # Contract
/// - `start` runs in the check runner and starts the server; children
///   forked afterwards call the proxy methods, as in the tutorials: a proxy
///   must work in a forked child of a multi-threaded process (open its own
///   connection there, as Python's do after fork). Children end with
///   `_exit(2)` and never drop the port; the runner's drop shuts the server
///   down, reaps it and removes its socket.
/// - Items are `i64`; keys and attribute names are `&str`.
/// - `ns_add` is an update made by the server in one step (no lost update);
///   `ns_get` then `ns_set` is Python's racy `ns.x += 1`.
pub trait ManagerPort: Sized {
    /// `manager = Manager(); manager.start()` with the three objects made.
    fn start() -> Result<Self>;
    /// `records.append(x)`.
    fn list_append(&self, x: i64) -> Result<()>;
    /// `list(records)`.
    fn list_items(&self) -> Result<Vec<i64>>;
    /// `d[key] = x`.
    fn dict_set(&self, key: &str, x: i64) -> Result<()>;
    /// `d.get(key)`.
    fn dict_get(&self, key: &str) -> Result<Option<i64>>;
    /// `ns.<name>`.
    fn ns_get(&self, name: &str) -> Result<i64>;
    /// `ns.<name> = x`.
    fn ns_set(&self, name: &str, x: i64) -> Result<()>;
    /// `ns.<name> += delta`, done by the server in one step.
    fn ns_add(&self, name: &str, delta: i64) -> Result<()>;
    /// `repr(ns)`: `Namespace(x=1, y=1)`.
    fn ns_repr(&self) -> Result<String>;
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: ManagerPort + 'static>() -> Vec<Entry> {
    vec![
        Entry::required(
            "list_update_seen_by_every_process",
            "an append by one process is seen by another",
            list::<P>,
        ),
        Entry::required(
            "dict_update_seen_by_every_process",
            "keys set by one process are seen by another",
            dict::<P>,
        ),
        Entry::required(
            "namespace_update_seen_and_printed",
            "x += 5 and y *= 10 by one process are seen by another, printed as Namespace(x=6, y=10)",
            namespace::<P>,
        ),
        Entry::required(
            "atomic_update_from_several_processes",
            "4 processes x 50 updates made by the server add up to 200",
            |s| counter::<P>(s, true),
        ),
        Entry::noted(
            "racy_get_then_set",
            "(a property) get then set from several processes loses updates",
            |s| counter::<P>(s, false),
        ),
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: ManagerPort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("manager", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: ManagerPort + 'static>(name: &str) {
    super::run_one("manager", checks::<P>(), name)
}

/// Runs `write` in one child, then, once it was joined, `read` in another.
fn write_then_read<P: ManagerPort>(
    scope: &mut Scope,
    write: impl FnOnce(&P) -> Result<()>,
    read: impl FnOnce(&P) -> Verdict,
) -> Verdict {
    let m = setup("start()", P::start())?;
    let by = deadline();
    spawn(scope, "writing process", || {
        write(&m)
            .map(|()| String::new())
            .map_err(|e| format!("the update failed: {e}"))
    })?
    .finish(by)?;
    spawn(scope, "reading process", || read(&m))?.finish(by)
}

fn list<P: ManagerPort>(scope: &mut Scope) -> Verdict {
    write_then_read::<P>(
        scope,
        |m| m.list_append(4),
        |m| match m.list_items() {
            Ok(items) if items == [1, 2, 3, 4] => Ok("another process read [1, 2, 3, 4]".into()),
            other => Err(format!(
                "another process read {}, expected [1, 2, 3, 4]",
                show(&other)
            )),
        },
    )
}

fn dict<P: ManagerPort>(scope: &mut Scope) -> Verdict {
    let write = |m: &P| m.dict_set("a", 1).and_then(|()| m.dict_set("b", 2));
    write_then_read::<P>(scope, write, |m| {
        let got = (m.dict_get("a"), m.dict_get("b"), m.dict_get("c"));
        match &got {
            (Ok(Some(1)), Ok(Some(2)), Ok(None)) => {
                Ok("another process read a=1, b=2, and no c".into())
            }
            (a, b, c) => Err(format!(
                "another process read a={}, b={}, c={}",
                show(a),
                show(b),
                show(c)
            )),
        }
    })
}

fn namespace<P: ManagerPort>(scope: &mut Scope) -> Verdict {
    let write = |m: &P| {
        let x = m.ns_get("x")?;
        m.ns_set("x", x + 5)?;
        let y = m.ns_get("y")?;
        m.ns_set("y", y * 10)
    };
    write_then_read::<P>(scope, write, |m| {
        let got = (m.ns_get("x"), m.ns_get("y"), m.ns_repr());
        match &got {
            (Ok(6), Ok(10), Ok(r)) if r == "Namespace(x=6, y=10)" => {
                Ok(format!("another process read x=6, y=10; printed {r}"))
            }
            (x, y, r) => Err(format!(
                "another process read x={}, y={}, printed {}; expected 6, 10, Namespace(x=6, y=10)",
                show(x),
                show(y),
                show(r)
            )),
        }
    })
}

/// Processes and updates each in the counter checks.
const WORKERS: i64 = 4;
const ROUNDS: i64 = 50;

fn counter<P: ManagerPort>(scope: &mut Scope, atomic: bool) -> Verdict {
    let m = setup("start()", P::start())?;
    setup("ns.n = 0", m.ns_set("n", 0))?;
    let by = deadline();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(spawn(scope, "updating process", || {
            for i in 0..ROUNDS {
                let done = match atomic {
                    true => m.ns_add("n", 1),
                    false => m.ns_get("n").and_then(|n| m.ns_set("n", n + 1)),
                };
                done.map_err(|e| format!("update {i} failed: {e}"))?;
            }
            Ok(String::new())
        })?);
    }
    finish_all(workers, by)?;
    let n = setup("reading ns.n", m.ns_get("n"))?;
    let want = WORKERS * ROUNDS;
    match (atomic, n == want) {
        (true, true) => Ok(format!(
            "{WORKERS} processes x {ROUNDS} server-side updates: n = {n}"
        )),
        (true, false) => Err(format!(
            "{WORKERS} processes x {ROUNDS} server-side updates: n = {n}, expected {want}"
        )),
        (false, _) => Ok(format!(
            "{WORKERS} processes x {ROUNDS} get-then-set: n = {n} of {want} ({} lost)",
            want - n
        )),
    }
}
