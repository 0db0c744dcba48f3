//! Message-queue round trips: POSIX (two queues, one each way) and System V
//! (one queue, message type 1 down and 2 up), the kit's
//! [`crate::mq`] against the same calls made directly (`mq_send(3)`/
//! `mq_receive(3)`, `msgsnd(2)`/`msgrcv(2)`), and `posix_ipc`/`sysv_ipc` in
//! Python.

use super::pingpong::ping_pong;
use super::{Bench, Ctx, PLACES, Python, Unit, Where};
use crate::error::{Error, Result};
use crate::mq::{posix, sysv};

/// `posix-mq`.
pub const POSIX_MQ: Bench = Bench {
    name: "posix-mq",
    op: "round trip of 8 bytes over two POSIX message queues",
    unit: Unit::Micros,
    ops: 3_000,
    places: &PLACES,
    sides: &[("ipckit", posix_kit), ("raw", raw::posix)],
    python: Python::Peer,
};

/// `sysv-mq`.
pub const SYSV_MQ: Bench = Bench {
    name: "sysv-mq",
    op: "round trip of 8 bytes over one System V queue (types 1 and 2)",
    unit: Unit::Micros,
    ops: 3_000,
    places: &PLACES,
    sides: &[("ipckit", sysv_kit), ("raw", raw::sysv)],
    python: Python::Peer,
};

/// A message of 8 bytes as a `u64`.
fn word(bytes: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Protocol(format!("a message of {} bytes, not 8", bytes.len())))?;
    Ok(u64::from_ne_bytes(bytes))
}

fn posix_kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let config = posix::Config {
        max_message: 8,
        ..Default::default()
    };
    let make =
        || posix::QueueOwner::create_exclusive(&posix::QueueName::unique("ipckit-bench")?, &config);
    let (down, up) = (make()?, make()?);
    ping_pong(
        place,
        n,
        |v| {
            down.send(&v.to_ne_bytes(), 0)?;
            word(&up.receive()?.0)
        },
        || {
            let v = word(&down.receive()?.0)?;
            up.send(&v.to_ne_bytes(), 0).map(|()| v)
        },
    )
}

fn sysv_kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    let q = sysv::QueueOwner::create(sysv::Key::Private, 0o600)?;
    ping_pong(
        place,
        n,
        |v| {
            q.send(1, &v.to_ne_bytes())?;
            word(&q.receive(sysv::Selector::Type(2))?.1)
        },
        || {
            let v = word(&q.receive(sysv::Selector::Type(1))?.1)?;
            q.send(2, &v.to_ne_bytes()).map(|()| v)
        },
    )
}

/// The same round trips on the bare calls (Linux: macOS has no POSIX queues).
#[cfg(target_os = "linux")]
mod raw {
    use super::super::pingpong::ping_pong;
    use super::super::{Ctx, Where};
    use crate::error::{Error, Result};
    use std::ffi::CString;

    /// A POSIX queue opened with `mq_open(3)`; closed and unlinked on drop.
    struct PosixQueue {
        mqd: libc::mqd_t,
        name: CString,
    }

    impl PosixQueue {
        fn create(tag: &str) -> Result<PosixQueue> {
            let name = CString::new(format!("/ipckit-bench-raw-{}-{tag}", std::process::id()))
                .expect("no NUL");
            // SAFETY: an all-zero mq_attr is valid; the fields set are the ones mq_open reads.
            let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
            attr.mq_maxmsg = 10;
            attr.mq_msgsize = 8;
            let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR;
            // SAFETY: a NUL-terminated name and a valid attr, as mq_open(3) asks.
            let mqd = unsafe { libc::mq_open(name.as_ptr(), flags, 0o600 as libc::mode_t, &attr) };
            if mqd == -1 {
                return Err(Error::io("mq_open", std::io::Error::last_os_error()));
            }
            Ok(PosixQueue { mqd, name })
        }

        fn send(&self, v: u64) -> Result<()> {
            let buf = v.to_ne_bytes();
            // SAFETY: an open queue and 8 readable bytes.
            let r = unsafe { libc::mq_send(self.mqd, buf.as_ptr().cast(), 8, 0) };
            ok(r as isize, "mq_send")
        }

        fn receive(&self) -> Result<u64> {
            let mut buf = [0u8; 8];
            // SAFETY: an open queue and 8 writable bytes (the queue's message size).
            let r = unsafe {
                libc::mq_receive(self.mqd, buf.as_mut_ptr().cast(), 8, std::ptr::null_mut())
            };
            ok(r, "mq_receive").map(|()| u64::from_ne_bytes(buf))
        }
    }

    impl Drop for PosixQueue {
        fn drop(&mut self) {
            // SAFETY: our own open descriptor, closed once (here).
            unsafe { libc::mq_close(self.mqd) };
            // SAFETY: the NUL-terminated name this queue was created under.
            unsafe { libc::mq_unlink(self.name.as_ptr()) };
        }
    }

    /// A System V queue from `msgget(IPC_PRIVATE)`; removed on drop.
    struct SysvQueue(i32);

    /// A `struct msgbuf` with 8 bytes of text.
    #[repr(C)]
    struct Message {
        mtype: libc::c_long,
        text: [u8; 8],
    }

    impl SysvQueue {
        fn create() -> Result<SysvQueue> {
            // SAFETY: plain system call.
            let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
            ok(id as isize, "msgget").map(|()| SysvQueue(id))
        }

        fn send(&self, mtype: i64, v: u64) -> Result<()> {
            let m = Message {
                mtype,
                text: v.to_ne_bytes(),
            };
            // SAFETY: a msgbuf whose text is 8 bytes long.
            let r = unsafe { libc::msgsnd(self.0, (&raw const m).cast(), 8, 0) };
            ok(r as isize, "msgsnd")
        }

        fn receive(&self, mtype: i64) -> Result<u64> {
            let mut m = Message {
                mtype: 0,
                text: [0; 8],
            };
            // SAFETY: a msgbuf with room for 8 bytes of text.
            let r = unsafe { libc::msgrcv(self.0, (&raw mut m).cast(), 8, mtype, 0) };
            ok(r, "msgrcv").map(|()| u64::from_ne_bytes(m.text))
        }
    }

    impl Drop for SysvQueue {
        fn drop(&mut self) {
            // SAFETY: removing our own queue.
            unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }

    /// A call's return value: -1 is its errno.
    fn ok(r: isize, call: &'static str) -> Result<()> {
        if r < 0 {
            Err(Error::io(call, std::io::Error::last_os_error()))
        } else {
            Ok(())
        }
    }

    pub fn posix(_: &Ctx, place: Where, n: u64) -> Result<f64> {
        let (down, up) = (PosixQueue::create("down")?, PosixQueue::create("up")?);
        ping_pong(
            place,
            n,
            |v| {
                down.send(v)?;
                up.receive()
            },
            || {
                let v = down.receive()?;
                up.send(v).map(|()| v)
            },
        )
    }

    pub fn sysv(_: &Ctx, place: Where, n: u64) -> Result<f64> {
        let q = SysvQueue::create()?;
        ping_pong(
            place,
            n,
            |v| {
                q.send(1, v)?;
                q.receive(2)
            },
            || {
                let v = q.receive(1)?;
                q.send(2, v).map(|()| v)
            },
        )
    }
}

/// No raw baselines where the calls do not exist.
#[cfg(not(target_os = "linux"))]
mod raw {
    use super::super::{Ctx, Where};
    use crate::error::{Error, Result};

    pub fn posix(_: &Ctx, _: Where, _: u64) -> Result<f64> {
        Err(Error::Unsupported("raw POSIX queues: Linux only".into()))
    }

    pub fn sysv(_: &Ctx, _: Where, _: u64) -> Result<f64> {
        Err(Error::Unsupported("raw System V queues: Linux only".into()))
    }
}
