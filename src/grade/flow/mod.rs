//! Mechanism evidence that follows the data (`[mechanism.flow]`): which
//! process wrote into which of the port's pipes and socket pairs, and who
//! read it out, as the tracer saw it (`grade::trace`, step 5).
//!
//! The parent is the student's process that forked the most children. The
//! rules, each optional:
//! - `each_child`: every child of the parent wrote data that the parent read
//!   from the other side of a channel of the named kind (`via`);
//! - `own`: that channel was made by the parent, and no other child wrote
//!   into it (one channel per child);
//! - `closed`: when it first wrote (the child) or read (the parent), the
//!   process no longer held the end it does not use;
//! - `reused`: work went from the parent to a child over a channel, results
//!   came back, and at least one child read work again after answering (a
//!   pool's worker that was reused).
//!
//! Where the data crosses no channel, `each_child` asks for other evidence:
//! shared memory (`flow::shared`, `via = "shared"`), a queue (`flow::queue`,
//! `via = "queue"`) or a server process (`flow::server`, `via = "server"`).

mod queue;
mod server;
mod shared;

use super::evidence::{Channel, ProcRecord, Transfer, Tree};
use super::spec::{FlowSpec, Via};

/// Judges `tree` against `flow`: problems (failures) and what was seen.
pub fn judge(flow: &FlowSpec, tree: &Tree, problems: &mut Vec<String>, seen: &mut Vec<String>) {
    let Some(parent) = tree
        .students()
        .max_by_key(|p| (p.count("forks"), std::cmp::Reverse(p.pid)))
    else {
        problems.push("no process of the port was seen".into());
        return;
    };
    let children: Vec<&ProcRecord> = tree.students().filter(|c| c.parent == parent.pid).collect();
    let scene = Scene {
        flow,
        tree,
        parent: parent.pid,
        children: &children,
    };
    if flow.each_child && children.is_empty() {
        problems.push(format!(
            "process {} forked no child to send data through a {}",
            parent.pid,
            flow.via.label()
        ));
    } else if flow.each_child {
        let judge_each = match flow.via {
            Via::Shared => shared::each_child,
            Via::Queue => queue::each_child,
            Via::Server => server::each_child,
            Via::Pipe | Via::Socketpair | Via::Channel => each_child,
        };
        judge_each(&scene, problems, seen);
    }
    if flow.reused {
        reused(&scene, problems, seen);
    }
}

/// What a rule is judged on: the rule, the trace, the parent (the process
/// that forked the most) and its children.
#[derive(Clone, Copy)]
struct Scene<'a> {
    flow: &'a FlowSpec,
    tree: &'a Tree,
    parent: i32,
    children: &'a [&'a ProcRecord],
}

/// A write of `child` on a channel of the right kind whose other side
/// `parent` read: (channel, the write, the parent's first read).
fn delivered<'a>(
    flow: &FlowSpec,
    tree: &'a Tree,
    from: i32,
    to: i32,
) -> Option<(&'a Channel, &'a Transfer, &'a Transfer)> {
    tree.channels
        .iter()
        .filter(|c| flow.via.admits(&c.kind))
        .find_map(|c| {
            let w = c.transfers.iter().find(|t| t.pid == from && t.write)?;
            let r = c
                .transfers
                .iter()
                .find(|t| t.pid == to && !t.write && (c.kind == "pipe" || t.end != w.end))?;
            Some((c, w, r))
        })
}

/// The name of a channel for a report: `pipe:[N]` or `socket pair socket:[A]/socket:[B]`.
fn name(c: &Channel) -> String {
    if c.kind == "pipe" {
        c.ends[0].clone()
    } else {
        format!("socket pair {}/{}", c.ends[0], c.ends[1])
    }
}

/// What `pid` wrote instead, for a report: its first write on any channel.
fn instead(tree: &Tree, pid: i32) -> String {
    let found = tree.channels.iter().find_map(|c| {
        c.transfers
            .iter()
            .find(|t| t.pid == pid && t.write)
            .map(|t| (c, t))
    });
    match found {
        Some((c, t)) => format!(
            "it wrote {} byte(s) (\"{}\") into a {} ({}) made by process {}",
            t.bytes,
            t.text,
            c.kind,
            name(c),
            c.made_by
        ),
        None => "no write of it on any pipe or socket pair the port made was seen \
                 (its data went some other way: a file, shared memory, a queue?)"
            .into(),
    }
}

fn each_child(scene: &Scene, problems: &mut Vec<String>, seen: &mut Vec<String>) {
    let Scene {
        flow,
        tree,
        parent,
        children,
    } = *scene;
    let via = flow.via.label();
    // Findings of one kind are grouped: ten children failing alike make one
    // sentence, with the first child's evidence quoted.
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for child in children {
        match delivered(flow, tree, child.pid, parent) {
            Some(d) => found.push((child.pid, d)),
            None => missing.push(child.pid),
        }
    }
    if let Some(first) = missing.first() {
        problems.push(format!(
            "{} sent nothing its parent {parent} read over a {via}; child {first}: {}",
            children_named(&missing, children.len()),
            instead(tree, *first)
        ));
    }
    let mut shared = Vec::new();
    let (mut child_open, mut parent_open) = (Vec::new(), Vec::new());
    for (pid, (c, w, r)) in &found {
        if flow.own {
            problems.extend(made_by_other(c, parent, *pid));
            if c.transfers
                .iter()
                .any(|t| t.write && t.pid != *pid && children.iter().any(|o| o.pid == t.pid))
            {
                shared.push((*pid, name(c)));
            }
        }
        if flow.closed && w.other_end_open {
            child_open.push((*pid, c));
        }
        if flow.closed && r.other_end_open {
            parent_open.push((*pid, c));
        }
    }
    if let Some((first, what)) = shared.first() {
        let pids: Vec<i32> = shared.iter().map(|(p, _)| *p).collect();
        problems.push(format!(
            "{} share channels (child {first} wrote into {what}, which another child wrote into too): each child needs a {via} of its own",
            children_named(&pids, children.len())
        ));
    }
    if let Some((first, c)) = child_open.first() {
        let pids: Vec<i32> = child_open.iter().map(|(p, _)| *p).collect();
        problems.push(format!(
            "{} still held the {} of their channel when they wrote (child {first}: {}): close the end a process does not use",
            children_named(&pids, children.len()),
            ends(c).1,
            name(c)
        ));
    }
    if let Some((first, c)) = parent_open.first() {
        let pids: Vec<i32> = parent_open.iter().map(|(p, _)| *p).collect();
        problems.push(format!(
            "the parent {parent} still held the {} of the channels of {} when it read (child {first}: {}): until it is closed, end-of-file never comes",
            ends(c).0,
            children_named(&pids, children.len()),
            name(c)
        ));
    }
    let each = if flow.own {
        format!("a {via} of its own")
    } else {
        format!("a {via}")
    };
    if let Some((pid, (c, w, _))) = found.first() {
        seen.push(format!(
            "{} of {} children sent their data over {each} that the parent read{}; e.g. child {pid} wrote \"{}\" ({} bytes) into {} and process {parent} read it",
            found.len(),
            children.len(),
            if flow.closed { ", unused ends closed" } else { "" },
            w.text,
            w.bytes,
            name(c)
        ));
    }
}

/// Where the mechanism is not a channel (`via` shared memory, a server):
/// children whose data the parent read over a pipe or socket pair anyway
/// are a problem, quoted with the first one's write.
fn no_channel_detour(
    flow: &FlowSpec,
    tree: &Tree,
    parent: i32,
    children: &[&ProcRecord],
    problems: &mut Vec<String>,
) {
    let any = FlowSpec {
        via: Via::Channel,
        ..FlowSpec::default()
    };
    let detoured: Vec<(i32, String)> = children
        .iter()
        .filter_map(|c| {
            let (ch, w, _) = delivered(&any, tree, c.pid, parent)?;
            Some((
                c.pid,
                format!("\"{}\" ({} bytes) into {}", w.text, w.bytes, name(ch)),
            ))
        })
        .collect();
    if let Some((first, what)) = detoured.first() {
        let pids: Vec<i32> = detoured.iter().map(|(p, _)| *p).collect();
        problems.push(format!(
            "{} sent their data to the parent {parent} over a pipe or socket pair, not through the {}: child {first} wrote {what}, and the parent read it",
            children_named(&pids, children.len()),
            flow.via.label()
        ));
    }
}

/// Where the mechanism is not a socket: children that connected to one
/// (`multiprocessing.connection.Client`, a TCP socket) had a way around it.
fn no_socket_detour(flow: &FlowSpec, children: &[&ProcRecord], problems: &mut Vec<String>) {
    let connected: Vec<&ProcRecord> = children
        .iter()
        .filter(|c| !c.connected.is_empty())
        .copied()
        .collect();
    if let Some(first) = connected.first() {
        let pids: Vec<i32> = connected.iter().map(|c| c.pid).collect();
        problems.push(format!(
            "{} connected to a socket (child {} to {}): the data must go through the {}, not around it",
            children_named(&pids, children.len()),
            first.pid,
            first.connected[0],
            flow.via.label()
        ));
    }
}

/// "children 1, 2 and 3 (3 of 10)" or "child 1".
fn children_named(pids: &[i32], of: usize) -> String {
    match pids {
        [one] => format!("child {one}"),
        _ => {
            let shown: Vec<String> = pids.iter().take(4).map(|p| p.to_string()).collect();
            let more = if pids.len() > 4 { ", ..." } else { "" };
            format!(
                "children {}{more} ({} of {of})",
                shown.join(", "),
                pids.len()
            )
        }
    }
}

/// The names of the end a writer uses and of the one it should have closed.
fn ends(c: &Channel) -> (&'static str, &'static str) {
    match c.kind.as_str() {
        "pipe" => ("write end", "read end"),
        _ => ("child's end", "parent's end"),
    }
}

/// One channel per child: made by the parent.
fn made_by_other(c: &Channel, parent: i32, child: i32) -> Option<String> {
    (c.made_by != parent).then(|| {
        format!(
            "child {child}'s {} was made by process {}, not by the parent {parent}",
            name(c),
            c.made_by
        )
    })
}

/// How many times `pid` answered work: runs of writes that follow a read,
/// over all the port's channels, in time order.
fn rounds(tree: &Tree, pid: i32) -> usize {
    let mut mine: Vec<&Transfer> = tree
        .channels
        .iter()
        .flat_map(|c| c.transfers.iter())
        .filter(|t| t.pid == pid)
        .collect();
    mine.sort_by(|a, b| a.at.total_cmp(&b.at));
    let (mut n, mut read) = (0, false);
    for t in mine {
        match (t.write, read) {
            (false, _) => read = true,
            (true, true) => {
                n += 1;
                read = false;
            }
            (true, false) => {}
        }
    }
    n
}

fn reused(scene: &Scene, problems: &mut Vec<String>, seen: &mut Vec<String>) {
    let Scene {
        flow,
        tree,
        parent,
        children,
    } = *scene;
    let via = flow.via.label();
    let work = children
        .iter()
        .any(|c| delivered(flow, tree, parent, c.pid).is_some());
    let results = children
        .iter()
        .any(|c| delivered(flow, tree, c.pid, parent).is_some());
    if !work {
        problems.push(format!(
            "the parent {parent} sent no work to its {} children over a {via}",
            children.len()
        ));
    }
    if !results {
        problems.push(format!(
            "no child sent results its parent {parent} read over a {via}"
        ));
    }
    let best = children.iter().map(|c| (rounds(tree, c.pid), c.pid)).max();
    match best {
        Some((n, pid)) if n >= 2 => seen.push(format!(
            "{} workers; worker {pid} received work and answered {n} times (reused)",
            children.len()
        )),
        _ => problems.push(format!(
            "no worker was reused: each of the {} children answered at most once (a pool reuses a few workers for many tasks)",
            children.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::spec::Via;

    fn tree_with(channels: Vec<Channel>) -> Tree {
        let mut t = Tree {
            main: 10,
            channels,
            ..Default::default()
        };
        t.procs.insert(
            10,
            ProcRecord {
                pid: 10,
                ..Default::default()
            },
        );
        t.procs
            .get_mut(&10)
            .unwrap()
            .calls
            .insert("forks".into(), 2);
        for c in [11, 12] {
            t.procs.insert(
                c,
                ProcRecord {
                    pid: c,
                    parent: 10,
                    ..Default::default()
                },
            );
        }
        t
    }

    fn io(pid: i32, end: usize, write: bool, at: f64) -> Transfer {
        Transfer {
            pid,
            end,
            write,
            bytes: 3,
            at,
            text: "0.5".into(),
            ..Default::default()
        }
    }

    fn pipe(transfers: Vec<Transfer>) -> Channel {
        Channel {
            kind: "pipe".into(),
            made_by: 10,
            ends: ["pipe:[1]".into(), "pipe:[1]".into()],
            transfers,
            ..Default::default()
        }
    }

    #[test]
    fn each_child_needs_its_own_pipe_that_the_parent_reads() {
        let f = FlowSpec {
            via: Via::Pipe,
            each_child: true,
            own: true,
            closed: true,
            reused: false,
        };
        let good = tree_with(vec![
            pipe(vec![io(11, 1, true, 0.1), io(10, 0, false, 0.2)]),
            pipe(vec![io(12, 1, true, 0.1), io(10, 0, false, 0.3)]),
        ]);
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&f, &good, &mut p, &mut s);
        assert!(p.is_empty(), "{p:?}");
        // Child 12 wrote into child 11's pipe: shared.
        let shared = tree_with(vec![pipe(vec![
            io(11, 1, true, 0.1),
            io(12, 1, true, 0.1),
            io(10, 0, false, 0.2),
        ])]);
        let mut p = Vec::new();
        judge(&f, &shared, &mut p, &mut s);
        assert!(p.iter().any(|m| m.contains("share channels")), "{p:?}");
        // Only child 11 wrote; child 12's data went elsewhere.
        let mut open = io(11, 1, true, 0.1);
        open.other_end_open = true;
        let missing = tree_with(vec![pipe(vec![open, io(10, 0, false, 0.2)])]);
        let mut p = Vec::new();
        judge(&f, &missing, &mut p, &mut s);
        assert!(
            p.iter().any(|m| m.contains("child 12 sent nothing")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|m| m.contains("still held the read end")),
            "{p:?}"
        );
    }

    fn shared_flow(via: Via) -> FlowSpec {
        FlowSpec {
            via,
            each_child: true,
            ..Default::default()
        }
    }

    #[test]
    fn shared_memory_is_what_a_child_was_born_with_or_held_as_its_parent_did() {
        let memory = "/dev/zero (deleted) [00:01 7]".to_string();
        let sem = "/dev/shm/sem.x (deleted) [00:1b 3]".to_string();
        let mut t = tree_with(vec![]);
        for c in [11, 12] {
            let p = t.procs.get_mut(&c).unwrap();
            p.shared_at_birth = vec![sem.clone(), memory.clone()];
            p.shared_at_exit = Some(vec![]); // unmapped before the exit: fine
        }
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&shared_flow(Via::Shared), &t, &mut p, &mut s);
        assert!(p.is_empty(), "{p:?}");
        assert!(
            s[0].contains("(/dev/zero (deleted))")
                && s[0].contains("a lock exists: the named semaphore /dev/shm/sem.x (deleted)"),
            "{s:?}"
        );
        // Child 11 was born with only the semaphore (a lock, not the data)
        // but opened the memory by name after its fork, as the parent held
        // it (unlinked since: the path differs, the inode does not).
        let c11 = t.procs.get_mut(&11).unwrap();
        c11.shared_at_birth = vec![sem.clone()];
        c11.shared_at_exit = Some(vec!["/dev/zero [00:01 7]".into()]);
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&shared_flow(Via::Shared), &t, &mut p, &mut s);
        assert!(p.is_empty(), "{p:?}");
        // Child 12 got nothing, and its exit was never seen; the memory
        // child 11 held is still the parent's, as the parent's exit shows.
        t.procs.get_mut(&10).unwrap().shared_at_exit = Some(vec![memory.clone()]);
        let c12 = t.procs.get_mut(&12).unwrap();
        c12.shared_at_birth = vec![sem.clone()];
        c12.shared_at_exit = None;
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&shared_flow(Via::Shared), &t, &mut p, &mut s);
        assert!(
            p.iter().any(
                |m| m.starts_with("child 12 got no shared memory from the parent 10")
                    && m.contains("its exit could not be looked at")
            ),
            "{p:?}"
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(s.is_empty(), "{s:?}");
        // A child that connected to a socket had a way around the memory.
        let mut t2 = t.clone();
        let c12 = t2.procs.get_mut(&12).unwrap();
        c12.shared_at_birth = vec![memory.clone()];
        c12.connected = vec!["inet:5000".into()];
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&shared_flow(Via::Shared), &t2, &mut p, &mut s);
        assert!(
            p.iter()
                .any(|m| m.starts_with("child 12 connected to a socket (child 12 to inet:5000)")),
            "{p:?}"
        );
    }

    #[test]
    fn a_server_needs_every_worker_and_the_parent_as_clients() {
        let addr = "unix:/tmp/m/listener".to_string();
        let mut t = tree_with(vec![]);
        // 12 is the server; 11 the only worker.
        let srv = t.procs.get_mut(&12).unwrap();
        srv.bound = vec![addr.clone()];
        srv.calls.insert("accepts".into(), 2);
        t.procs.get_mut(&11).unwrap().connected = vec![addr.clone()];
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&shared_flow(Via::Server), &t, &mut p, &mut s);
        assert_eq!(
            p,
            [
                "the parent 10 never connected to the server process 12, listening at unix:/tmp/m/listener: it reads the result from there"
            ]
        );
        t.procs.get_mut(&10).unwrap().connected = vec![addr.clone()];
        t.procs.get_mut(&11).unwrap().connected = vec!["unix:/elsewhere".into()];
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&shared_flow(Via::Server), &t, &mut p, &mut s);
        assert!(
            p.iter().any(|m| m.starts_with("child 11 never connected")),
            "{p:?}"
        );
        t.procs.get_mut(&11).unwrap().connected = vec![addr];
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&shared_flow(Via::Server), &t, &mut p, &mut s);
        assert!(p.is_empty(), "{p:?}");
        assert!(
            s[0].contains("all 1 workers and the parent connected"),
            "{s:?}"
        );
        // No server at all.
        t.procs.get_mut(&12).unwrap().calls.clear();
        let mut p = Vec::new();
        judge(&shared_flow(Via::Server), &t, &mut p, &mut s);
        assert!(
            p[0].starts_with("no process of the port other than the parent listened"),
            "{p:?}"
        );
    }

    #[test]
    fn a_queue_is_one_channel_several_children_write_into() {
        let q = shared_flow(Via::Queue);
        let one = tree_with(vec![pipe(vec![
            io(11, 1, true, 0.1),
            io(12, 1, true, 0.1),
            io(10, 0, false, 0.2),
        ])]);
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&q, &one, &mut p, &mut s);
        assert!(p.is_empty(), "{p:?}");
        let mut other = pipe(vec![io(12, 1, true, 0.1), io(10, 0, false, 0.3)]);
        other.ends = ["pipe:[2]".into(), "pipe:[2]".into()];
        let two = tree_with(vec![
            pipe(vec![io(11, 1, true, 0.1), io(10, 0, false, 0.2)]),
            other,
        ]);
        let mut p = Vec::new();
        judge(&q, &two, &mut p, &mut s);
        assert!(
            p.iter()
                .any(|m| m.contains("each child wrote into a pipe of its own")),
            "{p:?}"
        );
        // Nothing crossed a channel, no message queue, no shared memory.
        let mut p = Vec::new();
        judge(&q, &tree_with(vec![]), &mut p, &mut s);
        assert!(p[0].starts_with("no child's data crossed a queue"), "{p:?}");
    }

    #[test]
    fn a_pool_worker_is_reused_when_it_reads_again_after_answering() {
        let f = FlowSpec {
            via: Via::Channel,
            reused: true,
            ..Default::default()
        };
        let once = tree_with(vec![pipe(vec![
            io(10, 1, true, 0.1),
            io(11, 0, false, 0.2),
            io(11, 1, true, 0.3),
            io(10, 0, false, 0.4),
        ])]);
        let (mut p, mut s) = (Vec::new(), Vec::new());
        judge(&f, &once, &mut p, &mut s);
        assert!(
            p.iter().any(|m| m.contains("no worker was reused")),
            "{p:?}"
        );
        let mut twice = once.clone();
        let c = &mut twice.channels[0];
        c.transfers.push(io(11, 0, false, 0.5));
        c.transfers.push(io(11, 1, true, 0.6));
        let mut p = Vec::new();
        judge(&f, &twice, &mut p, &mut s);
        assert!(p.is_empty(), "{p:?}");
    }
}
