//! CATALOGUE.md section 4, the operating-system queues: POSIX (`mq_*`) and
//! System V (`msg*`). The reference programs run under the audit; the library
//! runs in process inside an `audit::Scope`. The scope lists System V queues
//! (`/proc/sysvipc/msg`) but POSIX queues only where an `mqueue` file system is
//! mounted, which these machines lack: POSIX tests check unlinking directly
//! (opening the name afterwards must fail with `ENOENT`).

mod common;

use common::audited;
use common::pi::assert_pi_program;
use ipckit::Error;
use ipckit::audit::Scope;
use ipckit::audit::ledger::ObjectKind;
use ipckit::mq::sysv::{self, Key, Selector};
use nix::errno::Errno;
use proptest::prelude::*;
use rstest::rstest;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(10);

// ---- The reference programs, under the audit -------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]
    #[test]
    fn pi_queue_programs_match_serial_for_small_n(tens in 1u64..=100) {
        for id in ["pi-posix-mq", "pi-sysv-mq"] {
            assert_pi_program(id, tens * 10);
        }
    }
}

#[rstest]
fn pi_queue_programs_match_serial_for_large_n(
    #[values("pi-posix-mq", "pi-sysv-mq")] id: &str,
    #[values(1_000_000, 2_000_000)] n: u64,
) {
    assert_pi_program(id, n);
}

#[rstest]
fn pi_queue_programs_refuse_a_bad_n_and_leave_nothing(
    #[values("pi-posix-mq", "pi-sysv-mq")] id: &str,
) {
    let run = audited(id, &["7"]);
    assert_eq!(run.exit_code(), Some(2), "{}", run.output);
    assert!(run.output.contains("multiple of 10"), "{}", run.output);
    for kind in ["zombies", "orphans", "leaks"] {
        assert!(run.findings(kind).is_empty(), "{kind}: {}", run.report);
    }
}

// ---- POSIX message queues -----------------------------------------------------

#[cfg(target_os = "linux")]
mod posix_queues {
    use super::*;
    use ipckit::mq::posix::{self, Config, MessageQueue, QueueName, QueueOwner};
    use ipckit::process;
    use std::time::Instant;

    fn small(capacity: usize) -> Config {
        Config {
            capacity,
            max_message: 64,
            mode: 0o600,
        }
    }

    fn name_in(scope: &Scope, base: &str) -> QueueName {
        QueueName::new(&scope.name(base)).unwrap()
    }

    /// The queue is gone: opening its name fails with `ENOENT`.
    fn assert_unlinked(name: &QueueName) {
        let e = MessageQueue::open_existing(name).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT), "{name} still exists: {e}");
    }

    #[test]
    fn queue_names_are_checked_before_any_call() {
        let long = format!("/{}", "q".repeat(256));
        for (bad, why) in [
            ("pi", "must start with '/'"),
            ("/", "at least one character"),
            ("/a/b", "no '/'"),
            (long.as_str(), "NAME_MAX"),
            ("/a\0b", "NUL"),
        ] {
            let e = QueueName::new(bad).unwrap_err();
            assert!(matches!(e, Error::Invalid { .. }), "{e}");
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
        }
        assert!(QueueName::new(&format!("/{}", "q".repeat(255))).is_ok());
        let (a, b) = (
            QueueName::unique("pi").unwrap(),
            QueueName::unique("pi").unwrap(),
        );
        let prefix = format!("/pi_{}_", std::process::id());
        assert!(a.as_str().starts_with(&prefix), "{a}");
        assert!(b.as_str().starts_with(&prefix), "{b}");
        assert_ne!(a, b, "two unique names in one process must differ");
    }

    #[test]
    fn opening_a_queue_that_does_not_exist_is_enoent() {
        let scope = Scope::new();
        let name = name_in(&scope, "missing");
        let e = MessageQueue::open_existing(&name).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT), "{e}");
        assert!(e.to_string().contains("create it first"), "{e}");
        scope.assert_clean();
    }

    #[test]
    fn create_exclusive_refuses_an_existing_queue() {
        let scope = Scope::new();
        let name = name_in(&scope, "excl");
        let owner = QueueOwner::create_exclusive(&name, &small(2)).unwrap();
        let e = MessageQueue::create_exclusive(&name, &small(2)).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EEXIST), "{e}");
        assert!(e.to_string().contains("already exists"), "{e}");
        let shared = MessageQueue::create(&name, &small(2)).unwrap();
        shared.send(b"via create", 0).unwrap();
        assert_eq!(owner.try_receive().unwrap().0, b"via create");
        drop(shared);
        drop(owner);
        assert_unlinked(&name);
        scope.assert_clean();
    }

    #[test]
    fn closing_keeps_the_queue_and_unlinking_destroys_it() {
        let scope = Scope::new();
        let name = name_in(&scope, "close");
        let q = MessageQueue::create(&name, &small(2)).unwrap();
        q.send(b"kept", 3).unwrap();
        q.close().unwrap();
        let again = MessageQueue::open_existing(&name).unwrap();
        assert_eq!(again.try_receive().unwrap(), (b"kept".to_vec(), 3));
        posix::unlink(&name).unwrap();
        assert_unlinked(&name);
        // The handle still works after unlink: the queue dies with the last handle.
        again.send(b"still here", 0).unwrap();
        assert_eq!(again.try_receive().unwrap().0, b"still here");
        let e = posix::unlink(&name).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT), "{e}");
        scope.assert_clean();
    }

    /// This process's descriptors on queue `name` (`/proc/self/fd` shows a
    /// queue descriptor as the queue's name).
    fn descriptors_on(name: &QueueName) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == name.as_str()))
            .count()
    }

    #[test]
    fn dropping_a_handle_closes_its_descriptor() {
        let scope = Scope::new();
        let name = name_in(&scope, "fd");
        let owner = QueueOwner::create_exclusive(&name, &small(2)).unwrap();
        let q = MessageQueue::open_existing(&name).unwrap();
        assert_eq!(descriptors_on(&name), 2);
        drop(q);
        assert_eq!(descriptors_on(&name), 1, "the handle's mq_close");
        drop(owner);
        assert_eq!(descriptors_on(&name), 0);
        scope.assert_clean();
    }

    #[test]
    fn the_owner_unlinks_on_drop() {
        let scope = Scope::new();
        let name = name_in(&scope, "owner");
        let owner = QueueOwner::create_exclusive(&name, &small(2)).unwrap();
        owner.send(b"lost with the queue", 0).unwrap();
        drop(owner);
        assert_unlinked(&name);
        let name = name_in(&scope, "owner2");
        QueueOwner::create_exclusive(&name, &small(2))
            .unwrap()
            .close_and_unlink()
            .unwrap();
        assert_unlinked(&name);
        scope.assert_clean();
    }

    #[test]
    fn attributes_report_capacity_size_and_messages_waiting() {
        let scope = Scope::new();
        let name = name_in(&scope, "attr");
        let q = QueueOwner::create_exclusive(&name, &small(3)).unwrap();
        q.send(b"1", 0).unwrap();
        q.send(b"2", 0).unwrap();
        let a = q.attributes().unwrap();
        assert_eq!((a.capacity, a.max_message, a.messages), (3, 64, 2));
        assert!(!a.nonblocking);
        drop(q);
        assert_unlinked(&name);
        scope.assert_clean();
    }

    #[test]
    fn a_full_queue_refuses_at_once_or_after_the_timeout() {
        let scope = Scope::new();
        let name = name_in(&scope, "full");
        let q = QueueOwner::create_exclusive(&name, &small(2)).unwrap();
        q.try_send(b"a", 0).unwrap();
        q.send_timeout(b"b", 0, DEADLINE).unwrap();
        let e = q.try_send(b"c", 0).unwrap_err();
        assert!(matches!(e, Error::Full(_)), "{e}");
        let started = Instant::now();
        let e = q
            .send_timeout(b"c", 0, Duration::from_millis(60))
            .unwrap_err();
        assert!(matches!(e, Error::Full(_)), "{e}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(50),
            "gave up after {waited:?}"
        );
        assert!(waited < DEADLINE);
        drop(q);
        assert_unlinked(&name);
        scope.assert_clean();
    }

    #[test]
    fn an_empty_queue_refuses_at_once_or_after_the_timeout() {
        let scope = Scope::new();
        let name = name_in(&scope, "empty");
        let q = QueueOwner::create_exclusive(&name, &small(2)).unwrap();
        let e = q.try_receive().unwrap_err();
        assert!(matches!(e, Error::Empty(_)), "{e}");
        let started = Instant::now();
        let e = q.receive_timeout(Duration::from_millis(60)).unwrap_err();
        assert!(matches!(e, Error::Empty(_)), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(q);
        assert_unlinked(&name);
        scope.assert_clean();
    }

    #[test]
    fn a_message_larger_than_the_queues_maximum_is_refused() {
        let scope = Scope::new();
        let name = name_in(&scope, "big");
        let q = QueueOwner::create_exclusive(&name, &small(2)).unwrap();
        q.send(&[1u8; 64], 0).unwrap();
        let e = q.send(&[1u8; 65], 0).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("mq_msgsize = 64"), "{e}");
        let e = q.send(b"x", posix::PRIORITY_LIMIT).unwrap_err();
        assert!(e.to_string().contains("MQ_PRIO_MAX"), "{e}");
        drop(q);
        assert_unlinked(&name);
        scope.assert_clean();
    }

    #[test]
    fn asking_beyond_the_kernel_limits_names_the_limit() {
        let scope = Scope::new();
        let name = name_in(&scope, "huge");
        let too_many = Config {
            capacity: 1 << 20,
            ..small(1)
        };
        let e = MessageQueue::create(&name, &too_many).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL), "{e}");
        assert!(e.to_string().contains("msg_max"), "{e}");
        let too_big = Config {
            max_message: 1 << 30,
            ..small(1)
        };
        let e = MessageQueue::create(&name, &too_big).unwrap_err();
        assert!(e.to_string().contains("msgsize_max"), "{e}");
        let e = MessageQueue::create(&name, &small(0)).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
        assert_unlinked(&name);
        scope.assert_clean();
    }

    /// `RLIMIT_MSGQUEUE` caps the bytes one user's queues may take, root's
    /// too: a child lowers it to 1 KiB (a process-wide limit, so in a child of
    /// its own) and asks for 8 x 64 bytes plus the kernel's bookkeeping. The
    /// error must be `EMFILE` and say which limit it hit. The child allocates
    /// (the error's message); glibc's `malloc` is safe in a forked child.
    #[test]
    fn a_queue_beyond_rlimit_msgqueue_is_refused_naming_the_limit() {
        let mut scope = Scope::new();
        let name = name_in(&scope, "rlimit");
        let config = Config {
            capacity: 8,
            max_message: 4096,
            mode: 0o600,
        };
        // SAFETY: the child calls setrlimit(2) and mq_open(3), and formats
        // the error (malloc: see the doc above); it never prints.
        let mut child = unsafe {
            process::fork(|| {
                use nix::sys::resource::{Resource, setrlimit};
                if setrlimit(Resource::RLIMIT_MSGQUEUE, 1024, 1024).is_err() {
                    return 3;
                }
                match MessageQueue::create(&name, &config) {
                    Ok(_) => 1,
                    Err(e)
                        if e.errno() == Some(Errno::EMFILE)
                            && e.to_string().contains("RLIMIT_MSGQUEUE") =>
                    {
                        0
                    }
                    Err(_) => 2,
                }
            })
        }
        .unwrap();
        scope.track(child.pid());
        let status = child.wait_deadline(DEADLINE).unwrap();
        assert_unlinked(&name);
        assert!(
            status.success(),
            "{status}: 1 = created, 2 = another error, 3 = setrlimit failed"
        );
        scope.assert_clean();
    }

    #[test]
    fn a_child_sends_through_the_inherited_handle_with_a_priority() {
        let mut scope = Scope::new();
        let name = name_in(&scope, "child");
        let q = QueueOwner::create_exclusive(&name, &small(4)).unwrap();
        let queue: &MessageQueue = &q;
        // SAFETY: the child only calls mq_send(3) on a buffer of its stack
        // (no allocation on the success path) and exits.
        let mut child = unsafe {
            process::fork(|| {
                let low = queue.send(b"low", 1);
                let high = queue.send(b"high", 9);
                i32::from(low.is_err() || high.is_err())
            })
        }
        .unwrap();
        scope.track(child.pid());
        assert!(child.wait_deadline(DEADLINE).unwrap().success());
        assert_eq!(q.receive_timeout(DEADLINE).unwrap(), (b"high".to_vec(), 9));
        assert_eq!(q.receive_timeout(DEADLINE).unwrap(), (b"low".to_vec(), 1));
        drop(q);
        assert_unlinked(&name);
        scope.assert_clean();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Receive order is: highest priority first, first-in first-out
        /// within a priority (the model: a stable sort by priority, descending).
        #[test]
        fn delivery_is_by_priority_then_fifo(
            messages in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..=64), 0u32..5), 1..=8)
        ) {
            let scope = Scope::new();
            let name = name_in(&scope, "order");
            let q = QueueOwner::create_exclusive(&name, &small(8)).unwrap();
            for (data, priority) in &messages {
                q.try_send(data, *priority).unwrap();
            }
            let mut model = messages.clone();
            model.sort_by_key(|(_, p)| std::cmp::Reverse(*p));
            for expected in &model {
                prop_assert_eq!(&q.try_receive().unwrap(), expected);
            }
            prop_assert!(matches!(q.try_receive(), Err(Error::Empty(_))));
            drop(q);
            assert_unlinked(&name);
            scope.assert_clean();
        }
    }
}

#[cfg(not(target_os = "linux"))]
#[test]
fn posix_queues_are_unsupported_here() {
    use ipckit::mq::posix::{MessageQueue, QueueName};
    let e = MessageQueue::open_existing(&QueueName::new("/x").unwrap()).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}

// ---- System V message queues -------------------------------------------------

/// A new private queue owned by the test and tracked by its scope.
fn private_queue(scope: &mut Scope) -> sysv::QueueOwner {
    let q = sysv::QueueOwner::create(Key::Private, 0o600).unwrap();
    scope.track_sysv(ObjectKind::SysvMsg, q.id());
    q
}

#[test]
fn sysv_messages_carry_a_type_and_stats_count_them() {
    let mut scope = Scope::new();
    let q = private_queue(&mut scope);
    q.send(1, b"a").unwrap();
    q.send(2, b"bb").unwrap();
    let s = q.stats().unwrap();
    assert_eq!((s.messages, s.bytes), (2, 3));
    assert_eq!(s.last_sender, Some(nix::unistd::getpid()));
    assert_eq!(s.last_receiver, None);
    assert_eq!(s.mode, 0o600);
    assert!(s.max_bytes > 0);
    assert_eq!(q.receive(Selector::Any).unwrap(), (1, b"a".to_vec()));
    let s = q.stats().unwrap();
    assert_eq!((s.messages, s.bytes), (1, 2));
    assert_eq!(s.last_receiver, Some(nix::unistd::getpid()));
    q.remove().unwrap();
    scope.assert_clean();
}

#[test]
fn sysv_keys_fresh_explicit_and_existing() {
    let mut scope = Scope::new();
    let q = sysv::QueueOwner::create(Key::Fresh, 0o600).unwrap();
    scope.track_sysv(ObjectKind::SysvMsg, q.id());
    let key = q.key();
    assert_ne!(key, 0, "a fresh key is never IPC_PRIVATE");
    let e = sysv::MessageQueue::create(Key::Value(key), 0o600).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EEXIST), "{e}");
    assert!(e.to_string().contains("already has this key"), "{e}");
    assert_eq!(sysv::MessageQueue::open_existing(key).unwrap().id(), q.id());
    assert_eq!(
        sysv::MessageQueue::create_or_open(key, 0o600).unwrap().id(),
        q.id()
    );
    let other = sysv::QueueOwner::create(Key::Fresh, 0o600).unwrap();
    scope.track_sysv(ObjectKind::SysvMsg, other.id());
    assert_ne!(other.key(), key);
    drop(other);
    q.remove().unwrap();
    let e = sysv::MessageQueue::open_existing(key).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOENT), "{e}");
    assert!(e.to_string().contains("create it first"), "{e}");
    // create_or_open makes the queue when there is none, with the mode asked
    // for (`/proc/sysvipc/msg`: key, msqid, perms).
    let made = sysv::MessageQueue::create_or_open(key, 0o600).unwrap();
    scope.track_sysv(ObjectKind::SysvMsg, made.id());
    assert_eq!(common::sysvipc_perms("msg", made.id()), "600");
    made.remove().unwrap();
    scope.assert_clean();
}

#[test]
fn sysv_types_and_selectors_must_be_positive() {
    let mut scope = Scope::new();
    let q = private_queue(&mut scope);
    for mtype in [0, -3] {
        let e = q.send(mtype, b"x").unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
    }
    for sel in [Selector::Type(0), Selector::UpTo(-2)] {
        let e = q.try_receive(sel).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
    }
    assert_eq!(Selector::from_raw(-4), Selector::UpTo(4));
    assert_eq!(Selector::UpTo(4).raw(), -4);
    drop(q);
    scope.assert_clean();
}

#[test]
fn sysv_non_blocking_receive_on_empty_and_send_on_full() {
    let mut scope = Scope::new();
    let q = private_queue(&mut scope);
    let e = q.try_receive(Selector::Any).unwrap_err();
    assert!(matches!(e, Error::Empty(_)), "{e}");
    let chunk = [7u8; 1024];
    let room = q.stats().unwrap().max_bytes as usize / chunk.len();
    for _ in 0..room {
        q.try_send(1, &chunk).unwrap();
    }
    let e = q.try_send(1, &chunk).unwrap_err();
    assert!(matches!(e, Error::Full(_)), "{e}");
    assert_eq!(q.stats().unwrap().messages, room as u64);
    drop(q);
    scope.assert_clean();
}

#[cfg(target_os = "linux")] // msgmax is read from /proc
#[test]
fn sysv_a_message_above_msgmax_is_refused_with_the_limit() {
    let mut scope = Scope::new();
    let q = private_queue(&mut scope);
    let msgmax = sysv::limits().msgmax.expect("/proc/sys/kernel/msgmax") as usize;
    let e = q.try_send(1, &vec![0u8; msgmax + 1]).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("msgmax"), "{e}");
    drop(q);
    scope.assert_clean();
}

#[test]
fn sysv_owner_removes_on_drop_and_a_removed_queue_errors() {
    let mut scope = Scope::new();
    let q = private_queue(&mut scope);
    let id = q.id();
    q.send(1, b"lost").unwrap();
    drop(q);
    scope.assert_clean();
    let gone = sysv::MessageQueue::from_id(id);
    let e = gone.try_receive(Selector::Any).unwrap_err();
    assert!(
        matches!(e.errno(), Some(Errno::EINVAL | Errno::EIDRM)),
        "{e}"
    );
    // msgsnd's EINVAL here is the removed queue, not the message's size:
    // the size is blamed only for a message above msgmax.
    let msgmax = sysv::limits().msgmax.unwrap_or(8192) as usize;
    for len in [1, msgmax] {
        let e = gone.try_send(1, &vec![0u8; len]).unwrap_err();
        assert!(
            matches!(e.errno(), Some(Errno::EINVAL | Errno::EIDRM)),
            "{len} bytes: {e}"
        );
        assert!(e.to_string().contains("msgsnd"), "{e}");
    }
}

/// When the system has room for no more queues (`msgmni`), `Key::Fresh`
/// says so at once (`ENOSPC` and the limit), instead of trying a thousand
/// keys and blaming the keys. The child makes an IPC namespace of its own
/// (`unshare(CLONE_NEWIPC)`, root only) whose `msgmni` is 0.
#[cfg(target_os = "linux")]
#[test]
fn sysv_a_full_system_is_enospc_at_once_not_a_key_search() {
    let mut scope = Scope::new();
    // SAFETY: the child calls unshare(2), writes a file and msgget(2), then
    // exits; the allocations are safe in the child of fork under glibc.
    let mut child = unsafe {
        ipckit::process::fork(|| {
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC).is_err() {
                return 77; // not allowed here
            }
            if std::fs::write("/proc/sys/kernel/msgmni", "0").is_err() {
                return 78;
            }
            match sysv::QueueOwner::create(Key::Fresh, 0o600) {
                Err(e) if e.errno() == Some(Errno::ENOSPC) && e.to_string().contains("msgmni") => 0,
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
                Ok(_) => 2,
            }
        })
    }
    .unwrap();
    scope.track(child.pid());
    match child.wait_deadline(DEADLINE).unwrap() {
        ipckit::process::ExitStatus::Exited(77 | 78) => {
            eprintln!("skipped: no IPC namespace of our own here (needs root)")
        }
        status => assert!(status.success(), "the child's verdict: {status}"),
    }
    scope.assert_clean();
}

#[test]
fn sysv_a_child_sends_and_the_parent_selects_by_type() {
    let mut scope = Scope::new();
    let q = private_queue(&mut scope);
    let id = q.id();
    // SAFETY: the child calls msgsnd(2) and exits; building the message
    // allocates, which glibc makes safe in the child of fork (its allocator
    // locks are reset there).
    let mut child = unsafe {
        ipckit::process::fork(move || {
            let q = sysv::MessageQueue::from_id(id);
            let sent = [(3, b"three"), (1, b"one__"), (2, b"two__")]
                .iter()
                .all(|(t, m)| q.send(*t, *m).is_ok());
            i32::from(!sent)
        })
    }
    .unwrap();
    scope.track(child.pid());
    assert!(child.wait_deadline(DEADLINE).unwrap().success());
    assert_eq!(q.try_receive(Selector::Type(2)).unwrap().0, 2);
    assert_eq!(q.try_receive(Selector::UpTo(3)).unwrap().0, 1);
    assert_eq!(q.try_receive(Selector::Any).unwrap().0, 3);
    assert_eq!(q.stats().unwrap().last_sender, Some(child.pid()));
    drop(q);
    scope.assert_clean();
}

/// One step of the selector model test.
#[derive(Debug, Clone)]
enum Op {
    Send(i64, Vec<u8>),
    Receive(i64),
}

/// What `msgrcv(msgtyp)` takes from `queue` (oldest first), per `msgop(2)`.
fn model_receive(queue: &mut Vec<(i64, Vec<u8>)>, msgtyp: i64) -> Option<(i64, Vec<u8>)> {
    let index = match msgtyp {
        0 => (!queue.is_empty()).then_some(0),
        t if t > 0 => queue.iter().position(|m| m.0 == t),
        t => {
            let lowest = queue.iter().map(|m| m.0).filter(|&ty| ty <= -t).min()?;
            queue.iter().position(|m| m.0 == lowest)
        }
    };
    index.map(|i| queue.remove(i))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..=5, proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(t, d)| Op::Send(t, d)),
        (-6i64..=6).prop_map(Op::Receive),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn sysv_selectors_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut scope = Scope::new();
        let q = private_queue(&mut scope);
        let mut model = Vec::new();
        for op in ops {
            match op {
                Op::Send(t, data) => {
                    q.try_send(t, &data).unwrap();
                    model.push((t, data));
                }
                Op::Receive(msgtyp) => {
                    let got = match q.try_receive(Selector::from_raw(msgtyp)) {
                        Ok(m) => Some(m),
                        Err(Error::Empty(_)) => None,
                        Err(e) => panic!("receive({msgtyp}): {e}"),
                    };
                    prop_assert_eq!(got, model_receive(&mut model, msgtyp), "msgtyp {}", msgtyp);
                }
            }
        }
        prop_assert_eq!(q.stats().unwrap().messages, model.len() as u64);
        drop(q);
        scope.assert_clean();
    }
}

/// The limits print as one line a student can check against `/proc`:
/// `dir/name = value, name = value` (`?` for a value this system hides).
#[test]
fn limits_print_as_the_proc_files_they_come_from() {
    let posix = ipckit::mq::posix::Limits {
        msg_max: Some(10),
        msgsize_max: None,
        queues_max: Some(256),
    };
    assert_eq!(
        posix.to_string(),
        "/proc/sys/fs/mqueue/msg_max = 10, msgsize_max = ?, queues_max = 256"
    );
    let name = ipckit::mq::posix::QueueName::new("/pi").unwrap();
    assert_eq!(name.to_string(), "/pi", "a name prints as itself");
}
