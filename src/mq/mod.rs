//! Operating-system message queues (CATALOGUE.md section 4, `pi-posix-mq` and
//! `pi-sysv-mq`): named queues kept by the kernel, that outlive the processes
//! using them until they are explicitly destroyed.
//!
//! | Python (`posix_ipc` / `sysv_ipc`)        | ipckit                                   | system call |
//! |------------------------------------------|------------------------------------------|-------------|
//! | `posix_ipc.MessageQueue("/pi", O_CREAT)` | [`posix::MessageQueue::create`]          | `mq_open(3)` |
//! | `mq.send(msg, priority=p)`               | [`posix::MessageQueue::send`]            | `mq_send(3)` |
//! | `mq.receive()` → `(msg, priority)`       | [`posix::MessageQueue::receive`]         | `mq_receive(3)` |
//! | `mq.close()` / `mq.unlink()`             | drop / [`posix::unlink`], [`posix::QueueOwner`] | `mq_close(3)`, `mq_unlink(3)` |
//! | `sysv_ipc.MessageQueue(None, IPC_CREX)`  | [`sysv::MessageQueue::create`] with [`sysv::Key::Fresh`] | `msgget(2)` |
//! | `mq.send(msg, type=t)`                   | [`sysv::MessageQueue::send`]             | `msgsnd(2)` |
//! | `mq.receive(type=t)`                     | [`sysv::MessageQueue::receive`]          | `msgrcv(2)` |
//! | `mq.remove()`                            | [`sysv::MessageQueue::remove`], [`sysv::QueueOwner`] | `msgctl(2)` `IPC_RMID` |
//!
//! The two families differ: a POSIX queue has a `/name`, per-process handles
//! that are *closed*, a name that is *unlinked*, and message priorities
//! (highest first); a System V queue has an integer key, no handle to close,
//! is *removed* by id, and carries a message type that the receiver selects
//! on. macOS has only the System V family ([`posix`] returns
//! [`Error::Unsupported`](crate::Error::Unsupported) there).

pub mod posix;
pub mod sysv;

/// Reads kernel limits from files of one `/proc/sys` directory (`None` for a
/// file this system does not have).
pub(crate) fn read_limits<const N: usize>(dir: &str, files: [&str; N]) -> [Option<u64>; N] {
    files.map(|f| {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

/// Writes `dir/name = value, name = value, ...` (`?` for an unknown value).
pub(crate) fn write_limits(
    f: &mut std::fmt::Formatter<'_>,
    dir: &str,
    limits: &[(&str, Option<u64>)],
) -> std::fmt::Result {
    write!(f, "{dir}/")?;
    for (i, (name, value)) in limits.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        match value {
            Some(v) => write!(f, "{sep}{name} = {v}")?,
            None => write!(f, "{sep}{name} = ?")?,
        }
    }
    Ok(())
}
