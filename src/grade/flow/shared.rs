//! `via = "shared"`: the data crossed shared memory (`pi-value`).
//!
//! What a process writes into shared memory makes no system call, so the
//! tracer cannot see the sum itself. What it sees (`grade::trace`, step 6)
//! is the memory each child was given and kept: a writable shared mapping
//! that the child was born with (its parent's at the `fork`, `mmap(2)`
//! `MAP_SHARED`, `shm_open(3)`, `shmat(2)`) and still held at its exit. With
//! no pipe, socket pair, file or message queue carrying the data, that
//! memory is the only way left for a child's sum to reach its parent.
//!
//! A lock inside shared memory (a process-shared mutex, `sem_init(3)`) makes
//! no system call unless contended, so it is reported when seen (a named
//! semaphore, `sem_open(3)`) and otherwise said to be unseen: never failed.

use super::{children_named, no_channel_detour};
use crate::grade::evidence::{ProcRecord, Tree};
use crate::grade::spec::FlowSpec;

/// A named semaphore's mapping (`sem_open(3)` maps `/dev/shm/sem.NAME`): a
/// lock, not the data.
pub(super) fn is_semaphore(key: &str) -> bool {
    key.starts_with("/dev/shm/sem.")
}

/// The shared memory `child` was born with and kept to its exit, without
/// named semaphores; `None` when its exit was not seen.
pub(super) fn kept(child: &ProcRecord) -> Option<Vec<&String>> {
    let exit = child.shared_at_exit.as_ref()?;
    Some(
        child
            .shared_at_birth
            .iter()
            .filter(|k| !is_semaphore(k) && exit.contains(k))
            .collect(),
    )
}

/// Children that kept no shared memory from their parent, and those whose
/// exit was not seen (their memory at the end is unknown).
pub(super) fn without_memory(children: &[&ProcRecord]) -> (Vec<i32>, Vec<i32>) {
    let (mut none, mut unseen) = (Vec::new(), Vec::new());
    for c in children {
        match kept(c) {
            None => unseen.push(c.pid),
            Some(k) if k.is_empty() => none.push(c.pid),
            Some(_) => {}
        }
    }
    (none, unseen)
}

/// `each_child` for `via = "shared"`.
pub(super) fn each_child(
    flow: &FlowSpec,
    tree: &Tree,
    parent: i32,
    children: &[&ProcRecord],
    problems: &mut Vec<String>,
    seen: &mut Vec<String>,
) {
    if children.is_empty() {
        problems.push(format!(
            "process {parent} forked no child to share memory with"
        ));
        return;
    }
    let (none, unseen) = without_memory(children);
    if let Some(first) = none.first() {
        problems.push(format!(
            "{} held no shared memory from the parent {parent} at their exit (child {first}'s writable shared mappings: {}): its sum cannot have reached the parent through shared memory",
            children_named(&none, children.len()),
            listed(tree, *first)
        ));
    }
    if let Some(first) = unseen.first() {
        problems.push(format!(
            "{} ended before the grader could see their memory (child {first} was killed or vanished): not judged, not passed",
            children_named(&unseen, children.len())
        ));
    }
    no_channel_detour(flow, tree, parent, children, problems);
    if none.is_empty() && unseen.is_empty() {
        seen.push(described(children));
    }
}

/// What a child held, for a report.
fn listed(tree: &Tree, pid: i32) -> String {
    let p = &tree.procs[&pid];
    match &p.shared_at_exit {
        Some(v) if !v.is_empty() => v.join(", "),
        _ => "none".into(),
    }
}

/// "all 10 children kept the shared memory ... lock: ...".
fn described(children: &[&ProcRecord]) -> String {
    let first = children[0];
    let memory: Vec<&str> = kept(first)
        .unwrap_or_default()
        .into_iter()
        .map(String::as_str)
        .collect();
    let lock = first
        .shared_at_birth
        .iter()
        .find(|k| is_semaphore(k) && children.iter().all(|c| c.shared_at_birth.contains(k)));
    let lock = match lock {
        Some(sem) => format!("a lock was seen: the named semaphore {sem}, which every child held"),
        None => "no lock was seen: a lock inside shared memory (a process-shared mutex, sem_init) makes no system call unless contended, so the grader cannot tell it is there".into(),
    };
    format!(
        "all {} children kept, from their fork to their exit, shared memory their parent gave them ({}); no child sent data over a pipe or socket pair; {lock}",
        children.len(),
        memory.join(", ")
    )
}
