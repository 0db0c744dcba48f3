//! `via = "queue"`: the data crossed one queue the children share
//! (`pi-queue`). A queue is recognised by what the tracer can see of it:
//! 1. a pipe or socket pair that several children wrote into and the parent
//!    read (`multiprocessing.Queue` is a pipe fed by a thread in each
//!    producer): ten channels with one writer each are ten pipes, not a queue;
//! 2. a message queue the port opened (`mq_open(3)`, `msgget(2)`): its
//!    messages make no stop of their own and are not shown;
//! 3. shared memory every child kept from its parent (the kit's `Queue`, a
//!    ring in `mmap(2)` memory): what it holds is not read, so a shared value
//!    would look the same; the report says so.

use super::{Scene, children_named, delivered, instead, name, no_socket_detour, shared};
use crate::grade::evidence::Tree;

/// `each_child` for `via = "queue"`.
pub(super) fn each_child(scene: &Scene, problems: &mut Vec<String>, seen: &mut Vec<String>) {
    let Scene {
        flow,
        tree,
        children,
        ..
    } = *scene;
    if over_channels(scene, problems, seen) {
        no_socket_detour(flow, children, problems);
        return;
    }
    let before = problems.len();
    no_socket_detour(flow, children, problems);
    if let Some(q) = message_queue(tree) {
        if problems.len() == before {
            seen.push(format!(
                "the port used {q}; no child sent data over a pipe or socket pair (messages on a message queue make no stop and are not shown)"
            ));
        }
        return;
    }
    let none = shared::without_memory(tree, children);
    match none.first() {
        None if problems.len() == before => seen.push(format!(
            "no channel or message queue carried the data; all {} children got shared memory from their parent, a queue in shared memory (its contents are not read: a shared value would look the same)",
            children.len()
        )),
        None => {}
        Some(first) => problems.push(format!(
            "no child's data crossed a queue: no child wrote into a pipe or socket pair that the parent read, the port opened no message queue, and {} got no shared memory from the parent (child {first})",
            children_named(&none, children.len())
        )),
    }
}

/// Case 1: children's data the parent read over channels. False when no
/// child sent any (the queue is not a channel).
fn over_channels(scene: &Scene, problems: &mut Vec<String>, seen: &mut Vec<String>) -> bool {
    let Scene {
        flow,
        tree,
        parent,
        children,
    } = *scene;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for c in children {
        match delivered(flow, tree, c.pid, parent) {
            Some(d) => found.push((c.pid, d)),
            None => missing.push(c.pid),
        }
    }
    let Some((pid, (c, w, _))) = found.first() else {
        return false;
    };
    if let Some(first) = missing.first() {
        problems.push(format!(
            "{} sent nothing its parent {parent} read from the queue; child {first}: {}",
            children_named(&missing, children.len()),
            instead(tree, *first)
        ));
    }
    let mut channels: Vec<&str> = found
        .iter()
        .map(|(_, (c, _, _))| c.ends[0].as_str())
        .collect();
    channels.sort_unstable();
    channels.dedup();
    if found.len() > 1 && channels.len() == found.len() {
        problems.push(format!(
            "each child wrote into a {} of its own (child {pid} into {}): {} channels with one writer each (one pipe or one Queue per child?) are not one queue the children share",
            c.kind,
            name(c),
            channels.len()
        ));
    } else {
        seen.push(format!(
            "{} of {} children put their data on {} shared channel(s) that the parent read (a queue's pipe, as multiprocessing.Queue makes); e.g. child {pid} wrote \"{}\" ({} bytes) into {}",
            found.len(),
            children.len(),
            channels.len(),
            w.text,
            w.bytes,
            name(c)
        ));
    }
    true
}

/// Case 2: a message queue the port's processes opened, for a report.
fn message_queue(tree: &Tree) -> Option<String> {
    if let Some(o) = tree.objects.values().find(|o| o.kind == "mq") {
        return Some(format!("the POSIX message queue {}", o.name));
    }
    if tree.students().any(|p| p.count("mq_open") > 0) {
        return Some("a POSIX message queue (mq_open)".into());
    }
    tree.students()
        .any(|p| p.count("msgget") > 0)
        .then(|| "a System V message queue (msgget)".into())
}
