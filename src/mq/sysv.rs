//! System V message queues (`sysvipc(7)`, `msgget(2)`, `msgop(2)`, `msgctl(2)`).
//!
//! The tutorial's `pi-sysv-mq` steps, in order:
//! 1. the parent creates a queue under a fresh key, exclusively
//!    ([`MessageQueue::create`] with [`Key::Fresh`]; `sysv_ipc` does the same
//!    when no key is given), or owns it with [`QueueOwner::create`];
//! 2. each child sends its partial sum with a message type > 0
//!    ([`MessageQueue::send`]);
//! 3. the parent receives 10 messages ([`MessageQueue::receive`] with
//!    [`Selector::Any`]) and waits for each child;
//! 4. the parent removes the queue ([`MessageQueue::remove`]: `msgctl(IPC_RMID)`;
//!    the [`QueueOwner`] does it on drop).
//!
//! A System V queue is named by an integer *key* and used through the *id*
//! `msgget` returns. There is no handle to close: the queue lives until it is
//! removed, even when no process uses it. Messages carry a type (a positive
//! integer), not a priority; the receiver picks by type ([`Selector`]).

use crate::error::{Error, Result};
use crate::sys;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The key a queue is made under (`msgget(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `IPC_PRIVATE`: always a new queue, reachable only through its id
    /// (inherited by children, or passed to them).
    Private,
    /// An explicit key, as agreed between unrelated programs (`ftok(3)` makes
    /// one from a path).
    Value(i32),
    /// A random key no queue uses yet: tried with `IPC_CREAT | IPC_EXCL` until
    /// one is free (what `sysv_ipc` does when no key is given).
    Fresh,
}

/// Which message [`MessageQueue::receive`] takes: the `msgtyp` argument of
/// `msgrcv(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// `msgtyp == 0`: the first (oldest) message of any type.
    Any,
    /// `msgtyp > 0`: the first message of exactly this type.
    Type(i64),
    /// `msgtyp < 0`: the first message of the lowest type that is at most
    /// this value (`UpTo(3)` is `msgtyp = -3`).
    UpTo(i64),
}

impl Selector {
    /// The selector for a raw `msgtyp`: 0, positive or negative.
    pub fn from_raw(msgtyp: i64) -> Selector {
        match msgtyp {
            0 => Selector::Any,
            t if t > 0 => Selector::Type(t),
            t => Selector::UpTo(t.saturating_neg()),
        }
    }

    /// The raw `msgtyp` for `msgrcv(2)`.
    pub fn raw(self) -> i64 {
        match self {
            Selector::Any => 0,
            Selector::Type(t) => t,
            Selector::UpTo(t) => -t,
        }
    }
}

/// A queue's state as `msgctl(IPC_STAT)` reports it (`struct msqid_ds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `msg_qnum`: messages waiting.
    pub messages: u64,
    /// `msg_cbytes`: bytes of message text waiting.
    pub bytes: u64,
    /// `msg_qbytes`: the most bytes the queue holds; a sender blocks past it.
    pub max_bytes: u64,
    /// `msg_lspid`: the last process that sent (`None` before any send).
    pub last_sender: Option<Pid>,
    /// `msg_lrpid`: the last process that received.
    pub last_receiver: Option<Pid>,
    /// `msg_perm.mode`: permission bits.
    pub mode: u32,
}

/// The kernel's limits on System V queues (`/proc/sys/kernel/msg*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `msgmax`: the largest message in bytes.
    pub msgmax: Option<u64>,
    /// `msgmnb`: the default (and unprivileged maximum) bytes per queue.
    pub msgmnb: Option<u64>,
    /// `msgmni`: how many queues may exist.
    pub msgmni: Option<u64>,
}

/// Reads the kernel's limits (`None` where this system does not show one).
pub fn limits() -> Limits {
    let [msgmax, msgmnb, msgmni] =
        super::read_limits("/proc/sys/kernel", ["msgmax", "msgmnb", "msgmni"]);
    Limits {
        msgmax,
        msgmnb,
        msgmni,
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limits = [
            ("msgmax", self.msgmax),
            ("msgmnb", self.msgmnb),
            ("msgmni", self.msgmni),
        ];
        super::write_limits(f, "/proc/sys/kernel", &limits)
    }
}

/// A System V message queue, known by its id. Nothing is closed on drop (a
/// System V id is not a descriptor): the queue stays until [`remove`](Self::remove)d.
#[derive(Debug)]
pub struct MessageQueue {
    id: i32,
    key: i32,
}

impl MessageQueue {
    /// Creates a new queue (`msgget(2)` with `IPC_CREAT | IPC_EXCL`, so an
    /// existing queue under an explicit key is an `EEXIST` error) with
    /// permission bits `mode`.
    pub fn create(key: Key, mode: u32) -> Result<MessageQueue> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as i32;
        match key {
            Key::Private => Self::get(libc::IPC_PRIVATE, flags),
            Key::Value(k) => Self::get(k, flags),
            Key::Fresh => Self::create_fresh(candidate_keys().take(FRESH_TRIES), flags),
        }
    }

    /// Creates the queue under the first of `keys` that no queue has yet:
    /// `EEXIST` means "taken, try the next one"; any other error ends the search.
    fn create_fresh(keys: impl Iterator<Item = i32>, flags: i32) -> Result<MessageQueue> {
        for k in keys {
            match Self::get(k, flags) {
                Err(e) if e.errno() == Some(Errno::EEXIST) => continue,
                other => return other,
            }
        }
        Err(Error::invalid(
            "key",
            format!("no unused key found in {FRESH_TRIES} tries"),
        ))
    }

    /// Opens the queue under `key`, creating it if there is none
    /// (`IPC_CREAT` without `IPC_EXCL`).
    pub fn create_or_open(key: i32, mode: u32) -> Result<MessageQueue> {
        Self::get(key, libc::IPC_CREAT | (mode & 0o777) as i32)
    }

    /// Opens the existing queue under `key`; `ENOENT` if there is none.
    pub fn open_existing(key: i32) -> Result<MessageQueue> {
        Self::get(key, 0)
    }

    /// The queue with a known id (inherited from a parent, or passed along).
    pub fn from_id(id: i32) -> MessageQueue {
        MessageQueue { id, key: 0 }
    }

    /// The id `msgget` returned.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was made or opened under (0 for `IPC_PRIVATE` and [`from_id`](Self::from_id)).
    pub fn key(&self) -> i32 {
        self.key
    }

    /// `msgsnd(2)`: appends `data` with type `mtype` (> 0), blocking while the
    /// queue is full.
    pub fn send(&self, mtype: i64, data: &[u8]) -> Result<()> {
        self.send_with(mtype, data, 0)
    }

    /// `msgsnd(2)` with `IPC_NOWAIT`: [`Error::Full`] instead of blocking.
    pub fn try_send(&self, mtype: i64, data: &[u8]) -> Result<()> {
        self.send_with(mtype, data, libc::IPC_NOWAIT)
    }

    /// `msgrcv(2)`: removes and returns the message `selector` picks, as
    /// `(type, data)`; blocks until there is one.
    pub fn receive(&self, selector: Selector) -> Result<(i64, Vec<u8>)> {
        self.receive_with(selector, 0)
    }

    /// `msgrcv(2)` with `IPC_NOWAIT`: [`Error::Empty`] when no message matches.
    pub fn try_receive(&self, selector: Selector) -> Result<(i64, Vec<u8>)> {
        self.receive_with(selector, libc::IPC_NOWAIT)
    }

    /// `msgctl(IPC_STAT)`: how many messages and bytes are waiting, who sent
    /// and received last.
    pub fn stats(&self) -> Result<Stats> {
        imp::stat(self.id).map_err(|e| self.error("msgctl(IPC_STAT)", e))
    }

    /// `msgctl(IPC_RMID)`: destroys the queue at once; its messages are lost
    /// and processes blocked on it wake with `EIDRM`.
    pub fn remove(self) -> Result<()> {
        imp::remove(self.id).map_err(|e| self.error("msgctl(IPC_RMID)", e))
    }

    fn get(key: i32, flags: i32) -> Result<MessageQueue> {
        match imp::msgget(key, flags) {
            Ok(id) => Ok(MessageQueue { id, key }),
            Err(e) => Err(get_error(key, e)),
        }
    }

    fn send_with(&self, mtype: i64, data: &[u8], flags: i32) -> Result<()> {
        if mtype <= 0 {
            return Err(Error::invalid(
                "message type",
                format!("{mtype}: a System V message type must be greater than 0"),
            ));
        }
        match imp::send(self.id, mtype, data, flags) {
            Ok(()) => Ok(()),
            Err(Errno::EAGAIN) => Err(Error::Full(format!("System V message queue {}", self.id))),
            Err(Errno::EINVAL) if limits().msgmax.is_some_and(|m| data.len() as u64 > m) => {
                Err(Error::invalid(
                    "message",
                    format!(
                        "{} bytes is more than the kernel's largest System V message ({})",
                        data.len(),
                        limits()
                    ),
                ))
            }
            Err(e) => Err(self.error("msgsnd", e)),
        }
    }

    fn receive_with(&self, selector: Selector, flags: i32) -> Result<(i64, Vec<u8>)> {
        if let Selector::Type(t) | Selector::UpTo(t) = selector
            && t <= 0
        {
            return Err(Error::invalid(
                "selector",
                format!("{selector:?}: the type in a selector must be greater than 0"),
            ));
        }
        // Room for the largest message the kernel allows (`msgmax`, read
        // once); where it cannot be read, this queue's byte limit.
        let capacity = match msgmax() {
            Some(m) => m,
            None => self.stats()?.max_bytes,
        } as usize;
        match imp::receive(self.id, selector.raw(), capacity, flags) {
            Ok(message) => Ok(message),
            Err(Errno::ENOMSG) => Err(Error::Empty(format!(
                "System V message queue {} (no message for {selector:?})",
                self.id
            ))),
            Err(e) => Err(self.error("msgrcv", e)),
        }
    }

    fn error(&self, call: &'static str, e: Errno) -> Error {
        sys::errno_error(call, format!("queue id {}", self.id), e as i32)
    }
}

/// The owner of a queue: removes it (`msgctl(IPC_RMID)`) when dropped. Use it
/// as a [`MessageQueue`].
#[derive(Debug)]
pub struct QueueOwner {
    queue: Option<MessageQueue>,
}

impl QueueOwner {
    /// Creates a new queue ([`MessageQueue::create`]) and owns it.
    pub fn create(key: Key, mode: u32) -> Result<QueueOwner> {
        Ok(QueueOwner {
            queue: Some(MessageQueue::create(key, mode)?),
        })
    }

    /// Removes the queue now, reporting an error (dropping does the same silently).
    pub fn remove(mut self) -> Result<()> {
        self.queue.take().map_or(Ok(()), MessageQueue::remove)
    }
}

impl std::ops::Deref for QueueOwner {
    type Target = MessageQueue;
    fn deref(&self) -> &MessageQueue {
        self.queue
            .as_ref()
            .expect("the queue is only taken by remove()")
    }
}

impl Drop for QueueOwner {
    fn drop(&mut self) {
        if let Some(q) = self.queue.take() {
            let _ = q.remove();
        }
    }
}

/// The error of a failed `msgget(2)` under `key`, with a hint for the
/// errors a student meets: no queue yet, a key taken, the system's queues
/// used up (`msgmni`).
fn get_error(key: i32, e: Errno) -> Error {
    let hint = match e {
        Errno::ENOENT => ": no queue has this key; create it first",
        Errno::EEXIST => ": a queue already has this key",
        Errno::ENOSPC => ": too many queues exist (see msgmni)",
        _ => "",
    };
    sys::errno_error(
        "msgget",
        format!("key {key:#x}{hint} ({})", limits()),
        e as i32,
    )
}

/// The kernel's largest message (`/proc/sys/kernel/msgmax`), read on first
/// use only: it sizes every receive buffer.
fn msgmax() -> Option<u64> {
    static MSGMAX: OnceLock<Option<u64>> = OnceLock::new();
    *MSGMAX.get_or_init(|| {
        let [msgmax] = super::read_limits("/proc/sys/kernel", ["msgmax"]);
        msgmax
    })
}

/// How many candidate keys [`Key::Fresh`] tries before it gives up.
const FRESH_TRIES: usize = 1000;

/// Pseudo-random keys (splitmix64 over the pid, the time and a counter),
/// never `IPC_PRIVATE` (0).
fn candidate_keys() -> impl Iterator<Item = i32> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = (u64::from(std::process::id()) << 32)
        ^ nanos
        ^ COUNTER.fetch_add(1 << 20, Ordering::Relaxed);
    std::iter::from_fn(move || {
        state = state.wrapping_add(SPLITMIX64_GAMMA);
        Some(splitmix64(state) as i32)
    })
    .filter(|&k| k != libc::IPC_PRIVATE)
}

/// splitmix64's step: its state advances by this odd constant (2^64 / phi).
const SPLITMIX64_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function (Steele, Lea and Flood, 2014): every bit of
/// `z` reaches every bit of the result, so consecutive states give unrelated
/// keys.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The raw calls. The message buffer is `struct msgbuf { long mtype; char
/// mtext[]; }`, built in a byte vector.
mod imp {
    use super::Stats;
    use nix::errno::Errno;
    use nix::unistd::Pid;
    use std::mem::size_of;

    #[cfg(not(target_os = "macos"))]
    use libc::{msgctl, msgget as raw_msgget, msgrcv, msgsnd, msqid_ds};
    #[cfg(target_os = "macos")]
    use macos::{msgctl, msgget as raw_msgget, msgrcv, msgsnd, msqid_ds};

    const HEADER: usize = size_of::<libc::c_long>();

    pub fn msgget(key: i32, flags: i32) -> Result<i32, Errno> {
        // SAFETY: msgget takes plain integers.
        Errno::result(unsafe { raw_msgget(key, flags) })
    }

    pub fn send(id: i32, mtype: i64, data: &[u8], flags: i32) -> Result<(), Errno> {
        let mut buf = Vec::with_capacity(HEADER + data.len());
        buf.extend_from_slice(&(mtype as libc::c_long).to_ne_bytes());
        buf.extend_from_slice(data);
        loop {
            // SAFETY: `buf` holds a long followed by `data.len()` bytes, as
            // msgsnd(2) reads them; the kernel copies it, so alignment does not matter.
            let ret = unsafe { msgsnd(id, buf.as_ptr().cast(), data.len(), flags) };
            match Errno::result(ret) {
                Err(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    }

    pub fn receive(
        id: i32,
        msgtyp: i64,
        capacity: usize,
        flags: i32,
    ) -> Result<(i64, Vec<u8>), Errno> {
        let mut buf = vec![0u8; HEADER + capacity];
        loop {
            // SAFETY: `buf` has room for a long and `capacity` bytes of text.
            let ret = unsafe {
                msgrcv(
                    id,
                    buf.as_mut_ptr().cast(),
                    capacity,
                    msgtyp as libc::c_long,
                    flags,
                )
            };
            match Errno::result(ret) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(n) => {
                    let mtype =
                        libc::c_long::from_ne_bytes(buf[..HEADER].try_into().expect("header"));
                    buf.drain(..HEADER);
                    buf.truncate(n as usize);
                    return Ok((mtype as i64, buf));
                }
            }
        }
    }

    pub fn stat(id: i32) -> Result<Stats, Errno> {
        // SAFETY: an all-zero msqid_ds is valid and IPC_STAT fills it in.
        let mut ds: msqid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: `ds` is valid and writable for the call.
        Errno::result(unsafe { msgctl(id, libc::IPC_STAT, &mut ds) })?;
        let pid = |p: libc::pid_t| (p != 0).then(|| Pid::from_raw(p));
        Ok(Stats {
            messages: ds.msg_qnum as u64,
            bytes: cbytes(&ds),
            max_bytes: ds.msg_qbytes as u64,
            last_sender: pid(ds.msg_lspid),
            last_receiver: pid(ds.msg_lrpid),
            mode: u32::from(ds.msg_perm.mode as u16) & 0o777,
        })
    }

    pub fn remove(id: i32) -> Result<(), Errno> {
        // SAFETY: IPC_RMID ignores the buffer argument.
        Errno::result(unsafe { msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
    }

    #[cfg(target_os = "linux")]
    #[allow(clippy::useless_conversion)] // the field is narrower on some targets
    fn cbytes(ds: &msqid_ds) -> u64 {
        u64::from(ds.__msg_cbytes)
    }

    #[cfg(not(target_os = "linux"))]
    #[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
    fn cbytes(ds: &msqid_ds) -> u64 {
        ds.msg_cbytes as u64
    }

    /// macOS has System V queues, but the libc crate does not declare them:
    /// the declarations of `<sys/msg.h>` (`struct __msqid_ds_new`, packed to 4).
    #[cfg(target_os = "macos")]
    #[allow(non_camel_case_types)]
    mod macos {
        use libc::{c_int, c_long, c_ulong, c_void, key_t, pid_t, size_t, ssize_t, time_t};

        #[repr(C, packed(4))]
        #[derive(Clone, Copy)]
        pub struct msqid_ds {
            pub msg_perm: libc::ipc_perm,
            pub msg_first: i32,
            pub msg_last: i32,
            pub msg_cbytes: c_ulong,
            pub msg_qnum: c_ulong,
            pub msg_qbytes: c_ulong,
            pub msg_lspid: pid_t,
            pub msg_lrpid: pid_t,
            pub msg_stime: time_t,
            pub msg_pad1: i32,
            pub msg_rtime: time_t,
            pub msg_pad2: i32,
            pub msg_ctime: time_t,
            pub msg_pad3: i32,
            pub msg_pad4: [i32; 4],
        }

        unsafe extern "C" {
            pub fn msgget(key: key_t, msgflg: c_int) -> c_int;
            pub fn msgsnd(msqid: c_int, msgp: *const c_void, msgsz: size_t, msgflg: c_int)
            -> c_int;
            pub fn msgrcv(
                msqid: c_int,
                msgp: *mut c_void,
                msgsz: size_t,
                msgtyp: c_long,
                msgflg: c_int,
            ) -> ssize_t;
            pub fn msgctl(msqid: c_int, cmd: c_int, buf: *mut msqid_ds) -> c_int;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `msgget(2)` error a student meets names the key in hex, says
    /// what to do, and gives the limits read from `/proc/sys/kernel`.
    #[test]
    fn msgget_errors_name_the_key_and_the_way_out() {
        for (errno, hint) in [
            (
                Errno::ENOENT,
                "key 0x2a: no queue has this key; create it first",
            ),
            (Errno::EEXIST, "key 0x2a: a queue already has this key"),
            (
                Errno::ENOSPC,
                "key 0x2a: too many queues exist (see msgmni)",
            ),
            (Errno::EACCES, "key 0x2a (/proc/sys/kernel/"),
        ] {
            let e = get_error(42, errno);
            assert_eq!(e.errno(), Some(errno), "{e}");
            assert!(e.to_string().contains(hint), "{e}");
        }
    }

    /// A fresh key skips keys another queue already has, and gives up with
    /// a clear error when it runs out of candidates.
    #[test]
    fn a_fresh_key_skips_taken_keys() {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
        let taken = QueueOwner::create(Key::Fresh, 0o600).unwrap();
        let keys = std::iter::once(taken.key()).chain(candidate_keys());
        let fresh = MessageQueue::create_fresh(keys, flags).unwrap();
        let fresh_key = fresh.key();
        fresh.remove().unwrap();
        assert_ne!(fresh_key, taken.key());
        let e = MessageQueue::create_fresh(std::iter::once(taken.key()), flags).unwrap_err();
        assert!(e.to_string().contains("no unused key"), "{e}");
        let key = taken.key();
        drop(taken);
        for gone in [key, fresh_key] {
            let e = MessageQueue::open_existing(gone).unwrap_err();
            assert_eq!(e.errno(), Some(Errno::ENOENT), "key {gone:#x} left: {e}");
        }
    }

    /// The reference values: splitmix64 seeded with 0 gives these first
    /// three outputs (as in Vigna's `splitmix64.c`).
    #[test]
    fn splitmix64_gives_the_reference_sequence() {
        let outputs: Vec<u64> = (1..=3)
            .map(|i| splitmix64(SPLITMIX64_GAMMA.wrapping_mul(i)))
            .collect();
        assert_eq!(
            outputs,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
    }

    /// Candidate keys look random bit by bit (each of the 32 bits is set in
    /// 40–60% of 2,048 keys: a biased mixer would collide with other users'
    /// keys far more often), and are never `IPC_PRIVATE`.
    #[test]
    fn candidate_keys_are_balanced_in_every_bit() {
        let keys: Vec<i32> = candidate_keys().take(2048).collect();
        assert!(!keys.contains(&libc::IPC_PRIVATE));
        for bit in 0..32 {
            let set = keys.iter().filter(|&&k| (k as u32) >> bit & 1 == 1).count();
            assert!(
                (820..=1228).contains(&set),
                "bit {bit} set in {set} of 2048 keys"
            );
        }
    }
}
