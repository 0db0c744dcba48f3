//! `via = "server"`: the data went through a server process (`pi-manager`:
//! a manager's server owns the list; each worker and the parent are its
//! clients). The tracer sees the server `bind(2)` an address and `accept(2)`
//! connections, and each client `connect(2)` to that address. What a
//! client asks the server is not watched, so a way around the server fails
//! instead: a worker that sent its data to the parent over a pipe or socket
//! pair, a file created by any process but the server, or shared memory a
//! worker got from the parent.
//!
//! (Python's proxies reconnect to the manager in every child forked while
//! one exists, so a connection alone does not prove the child used the list:
//! the output check, at several n, catches a parent that did all the work.)

use super::{Scene, children_named, instead, no_channel_detour, shared};
use crate::grade::evidence::{ProcRecord, Tree};

/// `each_child` for `via = "server"`.
pub(super) fn each_child(scene: &Scene, problems: &mut Vec<String>, seen: &mut Vec<String>) {
    let Scene {
        flow,
        tree,
        parent,
        children,
    } = *scene;
    let servers: Vec<&ProcRecord> = tree
        .students()
        .filter(|p| p.pid != parent && !p.bound.is_empty() && p.count("accepts") > 0)
        .collect();
    let Some(server) = servers.first() else {
        problems.push(
            "no process of the port other than the parent listened for and accepted connections (bind, accept): the data must be owned by a server process, as a manager's list is"
                .into(),
        );
        return;
    };
    let addrs: Vec<&String> = servers.iter().flat_map(|s| s.bound.iter()).collect();
    let reaches = |p: &ProcRecord| p.connected.iter().any(|a| addrs.contains(&a));
    let workers: Vec<&ProcRecord> = children
        .iter()
        .filter(|c| servers.iter().all(|s| s.pid != c.pid))
        .copied()
        .collect();
    let at = format!(
        "server process {}, listening at {}",
        tree.who(server.pid),
        addrs[0]
    );
    if workers.is_empty() {
        problems.push(format!(
            "process {parent} forked no worker besides the {at}"
        ));
        return;
    }
    let missing: Vec<i32> = workers
        .iter()
        .filter(|w| !reaches(w))
        .map(|w| w.pid)
        .collect();
    if let Some(first) = missing.first() {
        problems.push(format!(
            "{} never connected to the {at}; child {first}: {}",
            children_named(&missing, workers.len()),
            instead(tree, *first)
        ));
    }
    if !tree.procs.get(&parent).is_some_and(reaches) {
        problems.push(format!(
            "the parent {parent} never connected to the {at}: it reads the result from there"
        ));
    }
    let before = problems.len();
    around(tree, &servers, &workers, problems);
    no_channel_detour(flow, tree, parent, &workers, problems);
    if missing.is_empty() && problems.len() == before {
        seen.push(format!(
            "the {at}, accepted {} connections; all {} workers and the parent connected to it; no worker sent data over a pipe, socket pair or file",
            server.count("accepts"),
            workers.len()
        ));
    }
}

/// Ways around the server: files made by any process but a server, shared
/// memory the workers got from the parent.
fn around(
    tree: &Tree,
    servers: &[&ProcRecord],
    workers: &[&ProcRecord],
    problems: &mut Vec<String>,
) {
    let filing = tree
        .students()
        .find(|p| p.count("file_create") > 0 && servers.iter().all(|s| s.pid != p.pid));
    if let Some(p) = filing {
        problems.push(format!(
            "process {} created {} file(s): only the server may; the data must go through it",
            p.pid,
            p.count("file_create")
        ));
    }
    let sharing: Vec<i32> = workers
        .iter()
        .filter(|w| !shared::given(tree, w).is_empty())
        .map(|w| w.pid)
        .collect();
    if let Some(first) = sharing.first() {
        problems.push(format!(
            "{} got shared memory from the parent (child {first}: {}): the data must go through the server, not around it",
            children_named(&sharing, workers.len()),
            shared::shown(shared::given(tree, &tree.procs[first])[0])
        ));
    }
}
