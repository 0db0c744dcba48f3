//! `via = "shared"`: the data crossed shared memory (`pi-value`).
//!
//! What a process writes into shared memory makes no system call, so the
//! tracer cannot see the sum itself. What it sees (`grade::trace`, step 6)
//! is the memory each child was given: a writable shared mapping it was born
//! with (what its parent held at the `fork`: `mmap(2)` `MAP_SHARED`,
//! `shm_open(3)`, `shmat(2)`), or one it held at its exit that its parent
//! held too (opened by name after the `fork`). Two mappings are the same
//! memory when their device and inode agree ([`mapping_identity`]).
//! [`each_child`] also fails a child whose data reached the parent over a
//! pipe or socket pair, or that connected to a socket; files and message
//! queues are the spec's `[mechanism.max]` counters.
//!
//! A lock inside shared memory (a process-shared mutex, `sem_init(3)`) makes
//! no system call unless contended, so it is reported when seen (a named
//! semaphore, `sem_open(3)`) and otherwise said to be unseen: never failed.
//! Whether a child took the lock cannot be seen either way.

use super::{Scene, children_named, no_channel_detour, no_socket_detour};
use crate::grade::evidence::mapping_identity;
use crate::grade::evidence::{ProcRecord, Tree};

/// A named semaphore's mapping (`sem_open(3)` maps `/dev/shm/sem.NAME`): a
/// lock, not the data.
fn is_semaphore(key: &str) -> bool {
    key.starts_with("/dev/shm/sem.")
}

/// The path of a mapping, for a report (without its device and inode).
pub(super) fn shown(key: &str) -> &str {
    key.strip_suffix(mapping_identity(key))
        .map_or(key, str::trim_end)
}

/// Identities of the memory `parent` held: at each of its children's forks,
/// and at its own exit.
fn parents_memory(tree: &Tree, parent: i32) -> Vec<&str> {
    let births = tree
        .procs
        .values()
        .filter(|c| c.parent == parent)
        .flat_map(|c| c.shared_at_birth.iter());
    let exit = tree
        .procs
        .get(&parent)
        .and_then(|p| p.shared_at_exit.as_ref())
        .into_iter()
        .flatten();
    births.chain(exit).map(|k| mapping_identity(k)).collect()
}

/// The shared memory (no named semaphore) `child` got from its parent: born
/// with it, or held at its exit as its parent did.
pub(super) fn given<'a>(tree: &Tree, child: &'a ProcRecord) -> Vec<&'a String> {
    let parent = parents_memory(tree, child.parent);
    let at_exit = child.shared_at_exit.iter().flatten();
    let mut found: Vec<&String> = child
        .shared_at_birth
        .iter()
        .chain(at_exit.filter(|k| parent.contains(&mapping_identity(k))))
        .filter(|k| !is_semaphore(k))
        .collect();
    found.dedup_by_key(|k| mapping_identity(k));
    found
}

/// Children given no shared memory by their parent.
pub(super) fn without_memory(tree: &Tree, children: &[&ProcRecord]) -> Vec<i32> {
    children
        .iter()
        .filter(|c| given(tree, c).is_empty())
        .map(|c| c.pid)
        .collect()
}

/// `each_child` for `via = "shared"`.
pub(super) fn each_child(scene: &Scene, problems: &mut Vec<String>, seen: &mut Vec<String>) {
    let Scene {
        flow,
        tree,
        parent,
        children,
    } = *scene;
    let none = without_memory(tree, children);
    if let Some(first) = none.first() {
        problems.push(format!(
            "{} got no shared memory from the parent {parent}: none at their fork, and none at their exit that the parent held too (child {first}: {}); their sums cannot have reached the parent through shared memory",
            children_named(&none, children.len()),
            at_exit(tree, *first)
        ));
    }
    let before = problems.len();
    no_channel_detour(flow, tree, parent, children, problems);
    no_socket_detour(flow, children, problems);
    if none.is_empty() && problems.len() == before {
        seen.push(described(tree, children));
    }
}

/// What a child held at its exit, for a report.
fn at_exit(tree: &Tree, pid: i32) -> String {
    match &tree.procs[&pid].shared_at_exit {
        None => "its exit could not be looked at (was it killed?)".into(),
        Some(v) if v.is_empty() => "no shared memory at its exit".into(),
        Some(v) => {
            let paths: Vec<&str> = v.iter().map(|k| shown(k)).collect();
            format!("at its exit it held only {}", paths.join(", "))
        }
    }
}

/// "all 10 children got the shared memory ...; a lock ...".
fn described(tree: &Tree, children: &[&ProcRecord]) -> String {
    let memory: Vec<&str> = given(tree, children[0])
        .into_iter()
        .map(|k| shown(k))
        .collect();
    let lock = children[0]
        .shared_at_birth
        .iter()
        .find(|k| is_semaphore(k) && children.iter().all(|c| c.shared_at_birth.contains(k)));
    let lock = match lock {
        Some(sem) => format!(
            "a lock exists: the named semaphore {}, which every child was given (whether a child took it cannot be seen)",
            shown(sem)
        ),
        None => "no lock was seen: a lock inside shared memory (a process-shared mutex, sem_init) makes no system call unless contended, so the grader cannot tell whether there is one".into(),
    };
    format!(
        "all {} children got shared memory from their parent ({}); no child sent data over a pipe or socket pair or connected to a socket; {lock}",
        children.len(),
        memory.join(", ")
    )
}
