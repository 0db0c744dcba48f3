//! Where a check runs: in a forked *check runner*, under a ledger diff.
//!
//! Every check runs in a process of its own, forked from the test (the
//! runner). The runner makes the port's objects, forks the check's children,
//! reaps them, and before it exits lists every named object that appeared
//! while the check ran and is still there: POSIX shared memory and named
//! semaphores (`/dev/shm`), POSIX message queues (an `mqueue` file system) and
//! System V queues, segments and semaphore sets (`/proc/sysvipc`). Any such
//! object fails the check, whatever its name: a port is responsible for
//! everything it makes.
//!
//! On Linux the runner first moves into private IPC and mount namespaces
//! (`unshare(2)`, `CLONE_NEWIPC | CLONE_NEWNS`) with a fresh `tmpfs` on
//! `/dev/shm` and its own `mqueue` mount (`mq_overview(7)`). As root that
//! needs nothing more; otherwise it also makes a user namespace
//! (`CLONE_NEWUSER`, `user_namespaces(7)`) mapping the caller's own uid and
//! gid. There every object found was made by the check, nothing another test
//! makes at the same time can be blamed on it, and what a leaking port left
//! is destroyed by the kernel when the runner's namespace ends.
//!
//! Where neither works (macOS, or user namespaces disabled), the runner uses
//! the host's namespaces: objects that appeared during the check are blamed
//! on it by timing, checks of one test binary run one at a time (an
//! in-process lock), and POSIX queues are listed only if `/dev/mqueue` is
//! mounted. A failure then says that the attribution was by timing.

use super::{CHECK_DEADLINE, Verdict, spawn_sized};
use crate::audit::Scope;
use crate::audit::ledger::{Ledger, ObjectKind, Sources};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the runner mounts its private `mqueue` file system: inside its own
/// `tmpfs` on `/dev/shm`, so that nothing is created on the host.
const MQUEUE_DIR: &str = "/dev/shm/.ipckit-mqueue";

/// Bytes of report a runner can hand back.
const RUNNER_MAILBOX: usize = 64 * 1024;

/// How a runner is named in what went wrong, and the prefix of what it said.
const RUNNER: &str = "check runner";
const RUNNER_SAYS: &str = "check runner: ";

/// How long a runner may take beyond its children's deadline.
const RUNNER_SLACK: Duration = Duration::from_secs(10);

/// Whether runners get private namespaces here (`Ok`), or why not (`Err`).
/// Probed once per process, by a forked child that tries.
fn isolation() -> &'static Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        let mut scope = Scope::new();
        let by = Instant::now() + Duration::from_secs(10);
        let probe = spawn_sized(&mut scope, "namespace probe", 4096, || {
            enter_private().map(|()| String::new())
        });
        probe.and_then(|child| child.finish(by)).map(|_| ())
    })
}

/// Checks of one process run one at a time when they share the host's
/// namespaces, so that one check's objects are not blamed on another.
static SHARED: Mutex<()> = Mutex::new(());

/// Runs `body` in a check runner and returns its verdict, which fails if the
/// runner's children were left unreaped or a named object was left behind.
pub(crate) fn run(body: impl FnOnce(&mut Scope) -> Verdict) -> Verdict {
    let private = isolation().is_ok();
    let _turn = (!private).then(|| SHARED.lock().unwrap_or_else(|e| e.into_inner()));
    let mut outer = Scope::new();
    let by = Instant::now() + CHECK_DEADLINE + RUNNER_SLACK;
    let runner = spawn_sized(&mut outer, RUNNER, RUNNER_MAILBOX, || {
        let sources = if private {
            enter_private()?;
            private_sources()
        } else {
            Sources::default()
        };
        let before = Ledger::snapshot(&sources);
        let mut scope = Scope::new();
        let verdict = body(&mut scope);
        let mut left = scope.leftovers();
        left.extend(new_objects(&before, &sources));
        blame(verdict, &left, private)
    });
    let verdict = runner.and_then(|r| r.finish(by));
    // The runner's own failures are the check's: no need to name the runner.
    let verdict = verdict.map_err(|e| match e.strip_prefix(RUNNER_SAYS) {
        Some(said) => said.to_string(),
        None => e,
    });
    blame(verdict, &outer.leftovers(), true)
}

/// The verdict, turned into a failure naming everything `left` behind.
fn blame(verdict: Verdict, left: &[String], private: bool) -> Verdict {
    if left.is_empty() {
        return verdict;
    }
    let how = if private {
        String::new()
    } else {
        let why = isolation().as_ref().err().cloned().unwrap_or_default();
        format!(" (seen by timing, in shared namespaces: {why})")
    };
    let said = match verdict {
        Ok(s) | Err(s) => s,
    };
    Err(format!("{said}; left behind{how}: {}", left.join(", ")))
}

/// Named objects in `sources` now that `before` did not list, in words.
fn new_objects(before: &Ledger, sources: &Sources) -> Vec<String> {
    let after = Ledger::snapshot(sources);
    let ours = format!("/{}", MQUEUE_DIR.trim_start_matches("/dev/shm/"));
    let new = after.new_since(before).into_iter();
    new.filter(|o| !(o.kind == ObjectKind::PosixShm && o.name == ours))
        .map(|o| format!("{} {} was never removed", o.kind, o.name))
        .collect()
}

/// The places the runner lists in its private namespaces.
fn private_sources() -> Sources {
    Sources {
        mqueue_dir: Some(MQUEUE_DIR.into()),
        ..Sources::default()
    }
}

/// In a runner (single-threaded, just forked): private IPC and mount
/// namespaces, a user namespace too when not root, a fresh `tmpfs` on
/// `/dev/shm` and an `mqueue` mount in it.
#[cfg(target_os = "linux")]
fn enter_private() -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    let ns = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS;
    if unshare(ns).is_err() {
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        unshare(ns | CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("unshare(CLONE_NEWUSER|CLONE_NEWIPC|CLONE_NEWNS): {e}"))?;
        map_ids(uid.as_raw(), gid.as_raw())?;
    }
    let none: Option<&str> = None;
    let mounted = |what: &str, r: nix::Result<()>| r.map_err(|e| format!("mount {what}: {e}"));
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mounted("/ rprivate", mount(none, "/", none, private, none))?;
    let tmpfs = Some("tmpfs");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let shm = mount(tmpfs, "/dev/shm", tmpfs, flags, Some("mode=1777"));
    mounted("tmpfs on /dev/shm", shm)?;
    std::fs::create_dir(MQUEUE_DIR).map_err(|e| format!("mkdir {MQUEUE_DIR}: {e}"))?;
    let mq = Some("mqueue");
    let mq = mount(mq, MQUEUE_DIR, mq, MsFlags::empty(), none);
    mounted(&format!("mqueue on {MQUEUE_DIR}"), mq)
}

/// In a new user namespace: maps our own uid and gid to themselves
/// (`user_namespaces(7)`; `setgroups` must be denied before `gid_map`).
#[cfg(target_os = "linux")]
fn map_ids(uid: u32, gid: u32) -> Result<(), String> {
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| format!("{file}: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("{uid} {uid} 1"))?;
    write("gid_map", format!("{gid} {gid} 1"))
}

#[cfg(not(target_os = "linux"))]
fn enter_private() -> Result<(), String> {
    Err("private namespaces are Linux only".into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_leaked_posix_object_of_any_name_fails_the_check_and_is_gone_afterwards() {
        let name = format!("/no-kit-prefix-{}", std::process::id());
        let verdict = run(|_scope| {
            let c = std::ffi::CString::new(name.clone()).unwrap();
            // SAFETY: a plain shm_open of a valid C string; the fd is closed below.
            let fd = unsafe { libc::shm_open(c.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600) };
            assert!(fd >= 0);
            // SAFETY: fd was just opened by us.
            unsafe { libc::close(fd) };
            Ok("made an object and left it".into())
        });
        let wrong = verdict.unwrap_err();
        assert!(
            wrong.contains(&format!("{name} was never removed")),
            "{wrong}"
        );
        if isolation().is_ok() {
            // Made in the runner's private /dev/shm: the host never saw it.
            assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
        } else {
            println!("skipped the namespace half: {:?}", isolation());
            let _ = std::fs::remove_file(format!("/dev/shm{name}"));
        }
    }

    #[test]
    fn a_runner_gets_private_namespaces_without_root_too() {
        use nix::unistd::{Gid, Uid, setgid, setuid};
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root to become an unprivileged user");
            return;
        }
        let mut scope = Scope::new();
        let by = Instant::now() + Duration::from_secs(10);
        let child = spawn_sized(&mut scope, "unprivileged runner", 4096, || {
            let nobody = 65534;
            setgid(Gid::from_raw(nobody)).map_err(|e| format!("setgid: {e}"))?;
            setuid(Uid::from_raw(nobody)).map_err(|e| format!("setuid: {e}"))?;
            // A changed uid makes /proc/self root's; a user who logged in as
            // nobody would be dumpable, and own it (`proc(5)`).
            // SAFETY: prctl(PR_SET_DUMPABLE) takes a flag and nothing else.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
            enter_private()?;
            std::fs::write("/dev/shm/made-by-nobody", b"x").map_err(|e| e.to_string())?;
            let seen = Ledger::snapshot(&private_sources());
            let found = seen.objects.iter().any(|o| o.name == "/made-by-nobody");
            Ok(format!("{found}"))
        })
        .unwrap();
        match child.finish(by) {
            Ok(found) => assert_eq!(found, "true"),
            Err(e) if e.contains("CLONE_NEWUSER") => {
                println!("skipped: unprivileged user namespaces are disabled here: {e}")
            }
            Err(e) => panic!("{e}"),
        }
        scope.assert_clean();
        assert!(!std::path::Path::new("/dev/shm/made-by-nobody").exists());
    }

    #[test]
    fn a_check_that_cleans_up_passes() {
        let verdict = run(|_scope| Ok("nothing made".into()));
        assert_eq!(verdict, Ok("nothing made".to_string()));
    }
}
