//! `via = "server"`: the data went through a server process (`pi-manager`:
//! a manager's server owns the list; each worker and the parent are its
//! clients). The tracer sees the server `bind(2)` an address and `accept(2)`
//! connections, and each client `connect(2)` to that address. A worker that
//! sent its data to the parent over a pipe or socket pair, or left it in a
//! file, did not use the server.

use super::{children_named, instead, no_channel_detour};
use crate::grade::evidence::{ProcRecord, Tree};
use crate::grade::spec::FlowSpec;

/// `each_child` for `via = "server"`.
pub(super) fn each_child(
    flow: &FlowSpec,
    tree: &Tree,
    parent: i32,
    children: &[&ProcRecord],
    problems: &mut Vec<String>,
    seen: &mut Vec<String>,
) {
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
    let at = format!("server process {} (listening at {})", server.pid, addrs[0]);
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
    let filing: Vec<i32> = workers
        .iter()
        .filter(|w| w.count("file_create") > 0)
        .map(|w| w.pid)
        .collect();
    if let Some(first) = filing.first() {
        problems.push(format!(
            "{} created files (child {first}: {} file(s)): the data must go through the server",
            children_named(&filing, workers.len()),
            tree.procs[first].count("file_create")
        ));
    }
    no_channel_detour(flow, tree, parent, &workers, problems);
    if missing.is_empty() && filing.is_empty() {
        seen.push(format!(
            "the {at} accepted {} connections; all {} workers and the parent connected to it; no worker sent data over a pipe, socket pair or file",
            server.count("accepts"),
            workers.len()
        ));
    }
}
