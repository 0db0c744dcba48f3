//! CATALOGUE.md section 4, the operating-system queues: `pi-posix-mq` and
//! `pi-sysv-mq`.

use super::Program;
use super::channel::{expect_success, fork_per_slice, parse_sum};
use crate::error::Result;
use crate::mq::{posix, sysv};
use crate::pi;

/// The programs of this section.
pub const PROGRAMS: &[Program] = &[
    Program {
        id: "pi-posix-mq",
        summary: "pi: children send their sums on a POSIX message queue; the parent receives, waits, unlinks",
        run: pi_posix_mq,
    },
    Program {
        id: "pi-sysv-mq",
        summary: "pi: children send their sums on a System V queue with a fresh key; the parent receives, waits, removes",
        run: pi_sysv_mq,
    },
];

/// `pi-posix-mq`. The tutorial's queue is `/pi`; this one is `/pi-<pid>` so
/// that runs in parallel never share a queue.
/// 1. Create the queue (exclusively: a leftover is an error, not shared).
/// 2. Fork one child per slice; each opens the queue by name and sends its
///    sum as text, priority 0, then closes its handle.
/// 3. Receive 10 messages, then wait for each child by pid.
/// 4. Close the handle and unlink the name.
fn pi_posix_mq(args: &[String]) -> Result<i32> {
    let n = pi::parse_n(args)?;
    let name = posix::QueueName::unique("pi")?;
    let config = posix::Config {
        capacity: pi::PARTS as usize,
        max_message: 64,
        mode: 0o600,
    };
    let queue = posix::QueueOwner::create_exclusive(&name, &config)?;
    let children = fork_per_slice(n, |sum| {
        let mine = posix::MessageQueue::open_existing(&name)?;
        mine.send(sum.to_string().as_bytes(), 0)?;
        mine.close()
    })?;
    let mut total = 0.0;
    for _ in 0..pi::PARTS {
        let (message, _priority) = queue.receive()?;
        total += parse_sum(&String::from_utf8_lossy(&message))?;
    }
    wait_all(children)?;
    queue.close_and_unlink()?;
    pi::print_answer(pi::pi_from(total));
    Ok(0)
}

/// `pi-sysv-mq`.
/// 1. Create a queue under a fresh, unused key (create-exclusive).
/// 2. Fork one child per slice; each sends its sum as text with type 1.
/// 3. Receive 10 messages (type 0: whatever comes first), then wait for each
///    child by pid.
/// 4. Remove the queue.
fn pi_sysv_mq(args: &[String]) -> Result<i32> {
    let n = pi::parse_n(args)?;
    let queue = sysv::QueueOwner::create(sysv::Key::Fresh, 0o600)?;
    let id = queue.id();
    let children = fork_per_slice(n, |sum| {
        sysv::MessageQueue::from_id(id).send(1, sum.to_string().as_bytes())
    })?;
    let mut total = 0.0;
    for _ in 0..pi::PARTS {
        let (_type, message) = queue.receive(sysv::Selector::Any)?;
        total += parse_sum(&String::from_utf8_lossy(&message))?;
    }
    wait_all(children)?;
    queue.remove()?;
    pi::print_answer(pi::pi_from(total));
    Ok(0)
}

/// Waits for every child by pid, in order; the first failure is the error.
fn wait_all(children: Vec<crate::process::ChildGuard>) -> Result<()> {
    children
        .into_iter()
        .try_for_each(|mut c| expect_success(&mut c))
}
