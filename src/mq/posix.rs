//! POSIX message queues (`mq_overview(7)`); Linux only.
//!
//! The tutorial's `pi-posix-mq` steps, in order:
//! 1. the parent opens the queue `/pi` with create ([`MessageQueue::create`]
//!    or, to also unlink it at the end, [`QueueOwner::create_exclusive`]);
//! 2. each child sends its partial sum ([`MessageQueue::send`], default
//!    priority 0);
//! 3. the parent receives 10 messages ([`MessageQueue::receive`] returns the
//!    bytes and the priority) and waits for each child;
//! 4. the parent closes its handle (drop: `mq_close(3)`) and unlinks the name
//!    ([`unlink`]: `mq_unlink(3)`; the [`QueueOwner`] does it on drop).
//!
//! Closing only drops this process's handle; the queue and its messages live
//! on in the kernel until the name is unlinked *and* every handle is closed.
//! Receiving returns the oldest message of the highest priority: higher
//! priority first, first-in first-out within a priority.
//!
//! Names ([`QueueName`]) start with one `/` and contain no other. The kernel
//! caps a queue's capacity and message size (`/proc/sys/fs/mqueue/msg_max`,
//! `msgsize_max`), the number of queues (`queues_max`), and the bytes one user's
//! queues may take (`RLIMIT_MSGQUEUE`); an error that hits one of these says
//! which, with the current value ([`Limits`]).
//!
//! macOS has no POSIX message queues: everything here returns
//! [`Error::Unsupported`] there.

use crate::error::{Error, Result};
use crate::names::{Owner, Removable, check_name, unique_name};
use crate::sys;
use nix::errno::Errno;
use std::ffi::CString;
use std::time::Duration;

/// The longest name component the kernel accepts (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Priorities must be below this (`MQ_PRIO_MAX` on Linux is 32768).
pub const PRIORITY_LIMIT: u32 = 32768;

/// A valid POSIX queue name: `/` followed by 1 to [`NAME_MAX`] bytes, none of
/// them `/` or NUL. Holding one proves the name was checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueName(CString);

impl QueueName {
    /// Checks `name`; the error says what is wrong and what to write instead.
    pub fn new(name: &str) -> Result<QueueName> {
        check_name(
            name,
            "queue name",
            1 + NAME_MAX,
            "NAME_MAX (255) after the '/'",
        )
        .map(QueueName)
    }

    /// `/<base>_<pid>_<n>` (n counts up): a name unique to this process and
    /// call, so that parallel runs never share a queue.
    pub fn unique(base: &str) -> Result<QueueName> {
        QueueName::new(&unique_name(base))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("a QueueName is checked UTF-8")
    }
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How [`MessageQueue::open`] treats an existing or missing queue
/// (the `O_CREAT` and `O_EXCL` flags of `mq_open(3)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `O_CREAT`: open the queue, creating it if it does not exist.
    Create,
    /// `O_CREAT | O_EXCL`: create the queue; fail with `EEXIST` if it exists.
    CreateExclusive,
    /// No flag: open an existing queue; fail with `ENOENT` if there is none.
    Existing,
}

/// The shape of a new queue (`struct mq_attr`, `mq_open(3)`); ignored when an
/// existing queue is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The most messages the queue holds (`mq_maxmsg`); a full queue blocks
    /// senders.
    pub capacity: usize,
    /// The largest message in bytes (`mq_msgsize`).
    pub max_message: usize,
    /// Permission bits of the new queue (`0o600`: this user only).
    pub mode: u32,
}

impl Default for Config {
    /// Linux's defaults: 10 messages of at most 8192 bytes, mode `0o600`.
    fn default() -> Self {
        Config {
            capacity: 10,
            max_message: 8192,
            mode: 0o600,
        }
    }
}

/// A queue's attributes as `mq_getattr(3)` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// `mq_maxmsg`: the most messages it holds.
    pub capacity: usize,
    /// `mq_msgsize`: the largest message in bytes.
    pub max_message: usize,
    /// `mq_curmsgs`: how many messages are waiting now.
    pub messages: usize,
    /// `O_NONBLOCK` in `mq_flags`: whether this handle never blocks.
    pub nonblocking: bool,
}

/// The kernel's limits on POSIX queues (`mq_overview(7)`, `/proc/sys/fs/mqueue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `msg_max`: the largest capacity an unprivileged process may ask for.
    pub msg_max: Option<u64>,
    /// `msgsize_max`: the largest message size an unprivileged process may ask for.
    pub msgsize_max: Option<u64>,
    /// `queues_max`: how many queues may exist at once.
    pub queues_max: Option<u64>,
}

/// Reads the kernel's limits (`None` for a limit this system does not show).
pub fn limits() -> Limits {
    let [msg_max, msgsize_max, queues_max] = super::read_limits(
        "/proc/sys/fs/mqueue",
        ["msg_max", "msgsize_max", "queues_max"],
    );
    Limits {
        msg_max,
        msgsize_max,
        queues_max,
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limits = [
            ("msg_max", self.msg_max),
            ("msgsize_max", self.msgsize_max),
            ("queues_max", self.queues_max),
        ];
        super::write_limits(f, "/proc/sys/fs/mqueue", &limits)
    }
}

/// An open handle on a POSIX message queue (a message queue descriptor,
/// `mqd_t`). Dropping it closes the handle (`mq_close(3)`), which does *not*
/// destroy the queue: see [`unlink`] and [`QueueOwner`].
#[derive(Debug)]
pub struct MessageQueue {
    mqd: imp::Mqd,
    name: QueueName,
    max_message: usize,
}

impl MessageQueue {
    /// `mq_open(3)`: opens (and per `mode` creates) the queue `name`.
    pub fn open(name: &QueueName, mode: OpenMode, config: &Config) -> Result<MessageQueue> {
        if mode != OpenMode::Existing && (config.capacity == 0 || config.max_message == 0) {
            return Err(Error::invalid(
                "queue config",
                format!(
                    "capacity {} and max_message {} must both be at least 1",
                    config.capacity, config.max_message
                ),
            ));
        }
        let mqd =
            imp::open(&name.0, mode, config).map_err(|e| open_error(name, mode, config, e))?;
        let mut queue = MessageQueue {
            mqd,
            name: name.clone(),
            max_message: 0,
        };
        queue.max_message = queue.attributes()?.max_message;
        Ok(queue)
    }

    /// Opens `name`, creating it with `config` if it does not exist (`O_CREAT`).
    pub fn create(name: &QueueName, config: &Config) -> Result<MessageQueue> {
        Self::open(name, OpenMode::Create, config)
    }

    /// Creates `name`; fails with `EEXIST` if it exists (`O_CREAT | O_EXCL`).
    pub fn create_exclusive(name: &QueueName, config: &Config) -> Result<MessageQueue> {
        Self::open(name, OpenMode::CreateExclusive, config)
    }

    /// Opens an existing queue; fails with `ENOENT` if there is none.
    pub fn open_existing(name: &QueueName) -> Result<MessageQueue> {
        Self::open(name, OpenMode::Existing, &Config::default())
    }

    /// The queue's name.
    pub fn name(&self) -> &QueueName {
        &self.name
    }

    /// `mq_send(3)`: appends `message` with `priority` (0 is the default and
    /// the lowest), blocking while the queue is full.
    pub fn send(&self, message: &[u8], priority: u32) -> Result<()> {
        self.send_with(message, priority, None)
    }

    /// Sends without blocking: [`Error::Full`] if the queue is full.
    pub fn try_send(&self, message: &[u8], priority: u32) -> Result<()> {
        self.send_with(message, priority, Some(Duration::ZERO))
    }

    /// `mq_timedsend(3)`: waits at most `timeout` for room; [`Error::Full`]
    /// when the queue is still full then.
    pub fn send_timeout(&self, message: &[u8], priority: u32, timeout: Duration) -> Result<()> {
        self.send_with(message, priority, Some(timeout))
    }

    /// `mq_receive(3)`: removes and returns the oldest message of the highest
    /// priority, with that priority; blocks while the queue is empty.
    pub fn receive(&self) -> Result<(Vec<u8>, u32)> {
        self.receive_with(None)
    }

    /// Receives without blocking: [`Error::Empty`] if the queue is empty.
    pub fn try_receive(&self) -> Result<(Vec<u8>, u32)> {
        self.receive_with(Some(Duration::ZERO))
    }

    /// `mq_timedreceive(3)`: waits at most `timeout`; [`Error::Empty`] when
    /// the queue is still empty then.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<(Vec<u8>, u32)> {
        self.receive_with(Some(timeout))
    }

    /// `mq_getattr(3)`: capacity, message size, messages waiting, flags.
    pub fn attributes(&self) -> Result<Attributes> {
        imp::getattr(self.mqd).map_err(|e| sys::errno_error("mq_getattr", &self.name, e as i32))
    }

    /// `mq_close(3)`: closes this handle, reporting an error (dropping does
    /// the same silently). The queue itself stays until it is unlinked.
    pub fn close(mut self) -> Result<()> {
        let mqd = std::mem::replace(&mut self.mqd, CLOSED);
        imp::close(mqd).map_err(|e| sys::errno_error("mq_close", &self.name, e as i32))
    }

    /// One send; `wait` is `None` (block), zero (never block) or a timeout.
    fn send_with(&self, message: &[u8], priority: u32, wait: Option<Duration>) -> Result<()> {
        if priority >= PRIORITY_LIMIT {
            return Err(Error::invalid(
                "priority",
                format!("{priority} is not below MQ_PRIO_MAX ({PRIORITY_LIMIT})"),
            ));
        }
        if message.len() > self.max_message {
            return Err(Error::invalid(
                "message",
                format!(
                    "{} bytes is more than the largest message queue {} takes (mq_msgsize = {} bytes)",
                    message.len(),
                    self.name,
                    self.max_message
                ),
            ));
        }
        match imp::send(self.mqd, message, priority, wait) {
            Ok(()) => Ok(()),
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Err(Error::Full(format!(
                "POSIX message queue {} (waited {:?})",
                self.name,
                wait.unwrap_or_default()
            ))),
            Err(e) => Err(sys::errno_error("mq_send", &self.name, e as i32)),
        }
    }

    /// One receive into a buffer of `mq_msgsize` bytes (smaller is `EMSGSIZE`).
    fn receive_with(&self, wait: Option<Duration>) -> Result<(Vec<u8>, u32)> {
        let mut buf = vec![0u8; self.max_message];
        match imp::receive(self.mqd, &mut buf, wait) {
            Ok((len, priority)) => {
                buf.truncate(len);
                Ok((buf, priority))
            }
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Err(Error::Empty(format!(
                "POSIX message queue {} (waited {:?})",
                self.name,
                wait.unwrap_or_default()
            ))),
            Err(e) => Err(sys::errno_error("mq_receive", &self.name, e as i32)),
        }
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        if self.mqd != CLOSED {
            let _ = imp::close(self.mqd);
        }
    }
}

/// The descriptor value of a handle already closed by [`MessageQueue::close`].
const CLOSED: imp::Mqd = -1;

/// `mq_unlink(3)`: removes the name; the queue is destroyed once every handle
/// on it is closed. `ENOENT` if there is no such queue.
pub fn unlink(name: &QueueName) -> Result<()> {
    imp::unlink(&name.0).map_err(|e| match e {
        Errno::ENOSYS => unsupported(),
        e => sys::errno_error("mq_unlink", name, e as i32),
    })
}

/// The owner of a queue: it created the queue, and unlinks the name when
/// dropped (then its handle closes). Use it as a [`MessageQueue`].
pub type QueueOwner = Owner<MessageQueue>;

impl Owner<MessageQueue> {
    /// Creates `name` exclusively (a queue left over by someone else is an
    /// `EEXIST` error, not silently shared) and owns it.
    pub fn create_exclusive(name: &QueueName, config: &Config) -> Result<QueueOwner> {
        MessageQueue::create_exclusive(name, config).map(Owner::new)
    }

    /// Unlinks the name, reporting an error, and closes the handle (dropping
    /// does the same silently).
    pub fn close_and_unlink(mut self) -> Result<()> {
        self.remove()
    }
}

impl Removable for MessageQueue {
    /// `mq_unlink(3)`: the queue lives on while a handle is open.
    fn remove_name(&self) -> Result<()> {
        unlink(&self.name)
    }
}

/// The error on systems without POSIX queues (macOS).
fn unsupported() -> Error {
    Error::Unsupported(
        "POSIX message queues (mq_open): this system has none; use System V queues (ipckit::mq::sysv)"
            .into(),
    )
}

/// The error of a failed `mq_open`, naming the limit the request hit.
fn open_error(name: &QueueName, mode: OpenMode, config: &Config, errno: Errno) -> Error {
    let creating = mode != OpenMode::Existing;
    let hint = match errno {
        Errno::ENOSYS => return unsupported(),
        Errno::ENOENT => "no such queue: create it first, or check the name".to_string(),
        Errno::EEXIST => {
            "a queue of this name already exists: unlink it, or pick another name".to_string()
        }
        Errno::EINVAL if creating => format!(
            "capacity {} or max_message {} is above the kernel's limit ({})",
            config.capacity,
            config.max_message,
            limits()
        ),
        Errno::ENOSPC => format!("too many queues exist ({})", limits()),
        Errno::EMFILE => format!(
            "this user's queues would take more than RLIMIT_MSGQUEUE bytes ({} x {} bytes asked), or this process has too many open queues",
            config.capacity, config.max_message
        ),
        _ => String::new(),
    };
    let what = if hint.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {hint}")
    };
    sys::errno_error("mq_open", what, errno as i32)
}

/// The raw calls (Linux: `mq_open(3)` and friends; `mqd_t` is a descriptor).
#[cfg(target_os = "linux")]
mod imp {
    use super::{Attributes, Config, OpenMode};
    use nix::errno::Errno;
    use std::ffi::CStr;
    use std::time::Duration;

    pub type Mqd = libc::mqd_t;

    pub fn open(name: &CStr, mode: OpenMode, config: &Config) -> Result<Mqd, Errno> {
        let flags = libc::O_RDWR
            | libc::O_CLOEXEC
            | match mode {
                OpenMode::Create => libc::O_CREAT,
                OpenMode::CreateExclusive => libc::O_CREAT | libc::O_EXCL,
                OpenMode::Existing => 0,
            };
        // SAFETY: an all-zero mq_attr is valid; we fill in the two fields used.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = config.capacity.try_into().map_err(|_| Errno::EINVAL)?;
        attr.mq_msgsize = config.max_message.try_into().map_err(|_| Errno::EINVAL)?;
        // SAFETY: `name` is NUL-terminated; `attr` is valid for the call; the
        // variadic mode and attr arguments are passed as mq_open(3) expects.
        let mqd = unsafe {
            libc::mq_open(
                name.as_ptr(),
                flags,
                config.mode as libc::mode_t,
                &attr as *const libc::mq_attr,
            )
        };
        Errno::result(mqd)
    }

    pub fn close(mqd: Mqd) -> Result<(), Errno> {
        // SAFETY: `mqd` is a descriptor we opened and close exactly once.
        Errno::result(unsafe { libc::mq_close(mqd) }).map(drop)
    }

    pub fn unlink(name: &CStr) -> Result<(), Errno> {
        // SAFETY: `name` is NUL-terminated.
        Errno::result(unsafe { libc::mq_unlink(name.as_ptr()) }).map(drop)
    }

    pub fn send(mqd: Mqd, msg: &[u8], prio: u32, wait: Option<Duration>) -> Result<(), Errno> {
        // One absolute CLOCK_REALTIME deadline for every try: a signal does
        // not extend it. A zero timeout is a deadline already passed, so the
        // call never blocks (without touching the shared `O_NONBLOCK` flag).
        let deadline = wait.map(|t| crate::sys::deadline_on(libc::CLOCK_REALTIME, t));
        loop {
            let ret = match deadline {
                // SAFETY: `msg` is valid for `msg.len()` bytes.
                None => unsafe { libc::mq_send(mqd, msg.as_ptr().cast(), msg.len(), prio) },
                Some(deadline) => {
                    // SAFETY: as above, and `deadline` is a valid timespec.
                    unsafe {
                        libc::mq_timedsend(mqd, msg.as_ptr().cast(), msg.len(), prio, &deadline)
                    }
                }
            };
            match Errno::result(ret) {
                Err(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    }

    pub fn receive(
        mqd: Mqd,
        buf: &mut [u8],
        wait: Option<Duration>,
    ) -> Result<(usize, u32), Errno> {
        let mut prio = 0;
        // One absolute CLOCK_REALTIME deadline for every try: a signal does
        // not extend it. A zero timeout is a deadline already passed, so the
        // call never blocks (without touching the shared `O_NONBLOCK` flag).
        let deadline = wait.map(|t| crate::sys::deadline_on(libc::CLOCK_REALTIME, t));
        loop {
            let ret = match deadline {
                // SAFETY: `buf` is writable for `buf.len()` bytes; `prio` is a valid u32.
                None => unsafe {
                    libc::mq_receive(mqd, buf.as_mut_ptr().cast(), buf.len(), &mut prio)
                },
                Some(deadline) => {
                    // SAFETY: as above, and `deadline` is a valid timespec.
                    unsafe {
                        libc::mq_timedreceive(
                            mqd,
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                            &mut prio,
                            &deadline,
                        )
                    }
                }
            };
            match Errno::result(ret) {
                Err(Errno::EINTR) => continue,
                other => return other.map(|n| (n as usize, prio)),
            }
        }
    }

    pub fn getattr(mqd: Mqd) -> Result<Attributes, Errno> {
        // SAFETY: an all-zero mq_attr is valid and mq_getattr fills it in.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is valid and writable for the call.
        Errno::result(unsafe { libc::mq_getattr(mqd, &mut attr) })?;
        Ok(Attributes {
            capacity: attr.mq_maxmsg as usize,
            max_message: attr.mq_msgsize as usize,
            messages: attr.mq_curmsgs as usize,
            nonblocking: attr.mq_flags & libc::O_NONBLOCK as libc::c_long != 0,
        })
    }
}

/// Systems without POSIX message queues: every call is `ENOSYS`, which
/// [`MessageQueue::open`] reports as [`Error::Unsupported`].
#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
mod imp {
    use super::{Attributes, Config, OpenMode};
    use nix::errno::Errno;
    use std::ffi::CStr;
    use std::time::Duration;

    pub type Mqd = i32;

    pub fn open(_: &CStr, _: OpenMode, _: &Config) -> Result<Mqd, Errno> {
        Err(Errno::ENOSYS)
    }
    pub fn close(_: Mqd) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    pub fn unlink(_: &CStr) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    pub fn send(_: Mqd, _: &[u8], _: u32, _: Option<Duration>) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    pub fn receive(_: Mqd, _: &mut [u8], _: Option<Duration>) -> Result<(usize, u32), Errno> {
        Err(Errno::ENOSYS)
    }
    pub fn getattr(_: Mqd) -> Result<Attributes, Errno> {
        Err(Errno::ENOSYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message `mq_open` failing with `errno` gives, opening in `mode`.
    fn message(mode: OpenMode, errno: Errno) -> Error {
        let name = QueueName::new("/ipckit-hint").unwrap();
        open_error(&name, mode, &Config::default(), errno)
    }

    /// A kernel without POSIX queues (`CONFIG_POSIX_MQUEUE=n`, gVisor) answers
    /// `ENOSYS`: that is "unsupported here", with the way out, not an errno.
    #[test]
    fn enosys_means_unsupported_and_points_to_system_v() {
        let e = message(OpenMode::Create, Errno::ENOSYS);
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("ipckit::mq::sysv"), "{e}");
    }

    /// Each errno `mq_open(3)` documents gets its own hint, naming the queue.
    #[test]
    fn each_errno_gets_its_hint() {
        for (errno, hint) in [
            (Errno::ENOENT, "no such queue"),
            (Errno::EEXIST, "already exists"),
            (Errno::ENOSPC, "too many queues exist (/proc/sys/fs/mqueue/"),
            (Errno::EMFILE, "RLIMIT_MSGQUEUE"),
        ] {
            let e = message(OpenMode::Create, errno);
            assert_eq!(e.errno(), Some(errno), "{e}");
            let text = e.to_string();
            assert!(
                text.contains("/ipckit-hint: ") && text.contains(hint),
                "{text}"
            );
        }
    }

    /// `EINVAL` while creating is about the queue's shape (capacity or
    /// message size above the kernel's limits); opening an existing queue,
    /// it is not, and the message must not send the reader there.
    #[test]
    fn einval_blames_the_shape_only_when_creating() {
        for mode in [OpenMode::Create, OpenMode::CreateExclusive] {
            let e = message(mode, Errno::EINVAL);
            assert!(
                e.to_string().contains("capacity 10 or max_message 8192"),
                "{e}"
            );
        }
        let e = message(OpenMode::Existing, Errno::EINVAL);
        assert_eq!(e.errno(), Some(Errno::EINVAL), "{e}");
        assert!(!e.to_string().contains("capacity"), "{e}");
    }
}
