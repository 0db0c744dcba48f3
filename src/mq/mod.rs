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

/// Reads a kernel limit from a `/proc/sys` file, if this system has it.
pub(crate) fn proc_limit(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
