//! Step 2 and 3's limits: the process cap (`audit::tree::ProcessCap`), the
//! user the port runs as, and the child's own setup between `fork` and
//! `exec` (session, resource limits, user, signal dispositions).

use super::super::containment::Piece;
use super::*;
use std::path::PathBuf;

/// Step 2: the process cap (`audit::tree::ProcessCap`: a pids control
/// group when root, else `RLIMIT_NPROC`), as the report says it.
pub(super) fn cap_piece(cap: &crate::audit::tree::ProcessCap) -> Piece {
    match &cap.how {
        Ok(how) if cap.cgroup.is_some() => Piece::held(
            how.clone(),
            "a fork bomb fails with EAGAIN past the limit, and no process escapes the final kill",
        ),
        Ok(how) => Piece::held(how.clone(), "a fork bomb fails with EAGAIN past the limit"),
        Err(why) => Piece::missing(
            format!("{why}; RLIMIT_NPROC does not bind root"),
            "a fork bomb is only stopped by the deadline",
        ),
    }
}

/// Step 3: whether the port is scheduled as one (`audit::cgroup`'s `cpu`
/// group: `ProcessCap::cpu_share`), as the report says it.
pub(super) fn cpu_piece(share: std::result::Result<String, String>) -> Piece {
    match share {
        Ok(how) => Piece::held(
            how,
            "the port's processes share one process's CPU time, however many sessions they start: a fork bomb cannot starve the grader or grades beside it",
        ),
        Err(why) => Piece::missing(
            why,
            "each of the port's processes (each session, with autogroup scheduling) weighs as much as the grader: a fork bomb can delay the grader's deadline and grades beside it",
        ),
    }
}

/// Files and folders the port's own uid made outside its work area, in
/// the folders every user may write to (`/tmp`, `/var/tmp`, `/dev/shm`,
/// the grader's `TMPDIR`): with a fresh uid they are certainly the
/// port's. They are removed.
pub(super) fn written_outside(uid: u32, area: &std::path::Path) -> Vec<Leak> {
    use std::os::unix::fs::MetadataExt;
    let mut dirs = vec![
        PathBuf::from("/tmp"),
        "/var/tmp".into(),
        "/dev/shm".into(),
        std::env::temp_dir(),
    ];
    dirs.dedup();
    let mut found = Vec::new();
    for dir in dirs {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            let owned = std::fs::symlink_metadata(&path).is_ok_and(|m| m.uid() == uid);
            if !owned || path.starts_with(area) {
                continue;
            }
            let object = crate::audit::ledger::IpcObject {
                kind: crate::audit::ledger::ObjectKind::TempFile,
                name: path.display().to_string(),
                id: None,
                key: None,
                pids: Vec::new(),
                found_in: path.display().to_string(),
                owner: Some(uid),
            };
            let removed = crate::audit::ledger::remove(&object).is_ok();
            found.push(Leak {
                object,
                attribution: format!(
                    "written outside the work area; owned by the port's uid {uid}"
                ),
                removed,
            });
        }
    }
    found
}

/// The user and group the port runs as, when the grader is root and
/// drops it (`None`: the grader's own).
pub(super) fn port_user(run_as: RunAs, me: i32) -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    match run_as {
        RunAs::Same => None,
        RunAs::Id(uid, gid) => Some((uid, gid)),
        RunAs::Fresh => {
            let id = FRESH_UID_BASE + me as u32;
            Some((id, id))
        }
    }
}

pub(super) fn uid_piece(dropped: Option<u32>) -> Piece {
    let uid = nix::unistd::geteuid();
    if let Some(to) = dropped {
        Piece::held(
            format!("the port ran as uid {to}, without supplementary groups; the grader is root"),
            "it cannot signal, trace or read the grader, nor read root's files, and RLIMIT_NPROC binds it (a fresh uid: every file it leaves anywhere is found)",
        )
    } else if uid.is_root() {
        Piece::missing(
            "the port ran as root",
            "it could read and write any file of the machine and signal the grader",
        )
    } else if crate::audit::pidns::inside() {
        Piece::held(
            format!("the port ran as uid {uid}, the grader's own"),
            "it cannot read root's files; in its PID namespace it sees and signals only its own processes; a file it writes outside its work area cannot be told from the grader's own and is not looked for",
        )
    } else {
        Piece::held(
            format!("the port ran as uid {uid}, the grader's own"),
            format!(
                "it cannot read root's files, but it can signal processes of uid {uid}; a file it writes outside its work area cannot be told from the grader's own and is not looked for"
            ),
        )
    }
}

/// Kills every process of `uid` (a fresh uid nothing else runs as) still
/// alive after the run: a process that left the port's tree (`setsid`, a
/// double fork, a fork bomb racing the tree walk) cannot escape that.
/// Returns how many `/proc` showed alive before and after the kill, or why
/// the kill could not be made. Root only.
///
/// A child takes that uid and sends `SIGKILL` once with `kill(2)`'s pid
/// `-1` (every process it may signal: those of its uid), whatever `/proc`
/// showed (a process that forks and exits over and over may be missed by a
/// listing, never by the kill). Once is enough: `kill(-1)` walks the
/// process list under the lock `fork(2)` takes to add a process, and a fork
/// that completes after the walk finds its parent's `SIGKILL` pending and
/// fails. Its return value tells nothing: `kill(-1)` returns 0 whenever any
/// other process exists, even one it may not signal (a loop "until
/// `ESRCH`" ran 10 000 rounds after every grade).
pub(super) fn sweep_uid(uid: u32) -> std::result::Result<Swept, String> {
    let before = crate::audit::procfs::live_processes_of(uid).len();
    // SAFETY: the child makes only async-signal-safe calls (setresgid,
    // setresuid, kill, _exit) before it exits, so forking a process that
    // may have other threads is sound.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        kill_all_as(uid);
    }
    if pid < 0 {
        return Err(format!("fork: {}", nix::errno::Errno::last()));
    }
    let mut status = 0;
    // SAFETY: status is a valid int; pid is this process's child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && nix::errno::Errno::last() == nix::errno::Errno::EINTR
    {}
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "the child could not take uid {uid} (setresuid) or kill (status {status:#x})"
        ));
    }
    // A killed process is a zombie within moments (one in an
    // uninterruptible wait dies when it wakes): given a second, those still
    // alive are counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut after = crate::audit::procfs::live_processes_of(uid).len();
    while after > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        after = crate::audit::procfs::live_processes_of(uid).len();
    }
    Ok(Swept { before, after })
}

/// What [`sweep_uid`] found: processes of the uid alive before and after
/// its `kill(-1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Swept {
    pub(super) before: usize,
    pub(super) after: usize,
}

/// The child of [`sweep_uid`]: takes `uid` and sends `SIGKILL` to every
/// process of it; exits 0, or 1 if it could not. Never returns.
fn kill_all_as(uid: u32) -> ! {
    // SAFETY: setresgid takes plain ids.
    let g = unsafe { libc::setresgid(uid, uid, uid) };
    // SAFETY: setresuid takes plain ids.
    let u = unsafe { libc::setresuid(uid, uid, uid) };
    if g != 0 || u != 0 {
        // SAFETY: _exit ends this forked child without running destructors.
        unsafe { libc::_exit(1) };
    }
    // SAFETY: kill with pid -1 and a valid signal; as `uid` it signals
    // only that uid's processes.
    let r = unsafe { libc::kill(-1, libc::SIGKILL) };
    // ESRCH: no other process at all, so none of the uid. (Reading errno
    // is a plain load: async-signal-safe.)
    let killed = r == 0 || nix::errno::Errno::last() == nix::errno::Errno::ESRCH;
    // SAFETY: _exit ends this forked child without running destructors.
    unsafe { libc::_exit(if killed { 0 } else { 1 }) }
}

/// Removes `object` as `uid`/`gid` (its owner): a child takes those ids and
/// removes it (`audit::ledger::remove`). True when it was removed. Call
/// only from this single-threaded supervisor.
pub(super) fn remove_as(uid: u32, gid: u32, object: &crate::audit::ledger::IpcObject) -> bool {
    // SAFETY: the supervisor is single-threaded (module doc of `super`),
    // so the child may run any code before it exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: setresgid takes plain ids.
        let g = unsafe { libc::setresgid(gid, gid, gid) };
        // SAFETY: setresuid takes plain ids.
        let u = unsafe { libc::setresuid(uid, uid, uid) };
        let ok = g == 0 && u == 0 && crate::audit::ledger::remove(object).is_ok();
        // SAFETY: _exit ends the forked child without running destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    if pid < 0 {
        return false;
    }
    let mut status = 0;
    // SAFETY: status is a valid int; pid is this process's child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && nix::errno::Errno::last() == nix::errno::Errno::EINTR
    {}
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

pub(super) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Step 3, in the child: session, limits, process cap, user, signal mask.
pub(super) fn child_setup(
    l: &Limits,
    cap: &crate::audit::tree::ProcessCap,
    user: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let fail = || Err(std::io::Error::last_os_error());
    let cpu = l.cpu_seconds;
    let limits = [
        (libc::RLIMIT_CPU, cpu, cpu + 1),
        (libc::RLIMIT_AS, l.memory_bytes, l.memory_bytes),
        (libc::RLIMIT_FSIZE, l.file_bytes, l.file_bytes),
        (libc::RLIMIT_NOFILE, l.open_files, l.open_files),
    ];
    // SAFETY: setsid takes nothing and is async-signal-safe.
    if unsafe { libc::setsid() } < 0 {
        return fail();
    }
    for (res, soft, hard) in limits {
        // Never raise a limit (that needs privilege): at most the current hard one.
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: cur is a valid rlimit to fill.
        unsafe { libc::getrlimit(res, &mut cur) };
        let r = libc::rlimit {
            rlim_cur: soft.min(cur.rlim_max),
            rlim_max: hard.min(cur.rlim_max),
        };
        // SAFETY: r is a valid rlimit.
        if unsafe { libc::setrlimit(res, &r) } != 0 {
            return fail();
        }
    }
    // SAFETY: this is the freshly forked child, before exec.
    unsafe { cap.apply_in_child() }?;
    // Last, as it ends the privilege the steps above need: no
    // supplementary groups, then the group, then the user.
    if let Some((uid, gid)) = user {
        // SAFETY: an empty group list (a null pointer with size 0).
        let groups = unsafe { libc::setgroups(0, std::ptr::null()) };
        // SAFETY: setgid takes a plain id.
        let group = unsafe { libc::setgid(gid) };
        // SAFETY: setuid takes a plain id (after setgid: it ends the right to change the group).
        if groups != 0 || group != 0 || unsafe { libc::setuid(uid) } != 0 {
            return fail();
        }
    }
    // Every signal's default action: a grader started in the background
    // by a shell (CI, nohup) has SIGINT and SIGQUIT ignored, and a port
    // must not inherit that. (Caught signals are reset by exec anyway;
    // 32 and up are the real-time signals, some used by libc itself.)
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: SIG_DFL is a valid disposition for an ordinary signal.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    // SAFETY: sigprocmask gets a valid, empty signal set.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, empty.as_ref(), std::ptr::null_mut()) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::time::{Duration, Instant};

    /// A uid of this test's own, that no other process runs as; `None`
    /// (the test is skipped, saying so) when not root.
    fn test_uid(n: u32) -> Option<u32> {
        if !is_root() {
            eprintln!("SKIPPED: sweeping a uid needs root");
            return None;
        }
        Some(FRESH_UID_BASE - 1_000_000 + (std::process::id() % 100_000) * 4 + n)
    }

    #[test]
    fn a_sweep_finds_nothing_to_kill_when_no_process_of_the_uid_runs() {
        let Some(uid) = test_uid(0) else { return };
        assert_eq!(
            sweep_uid(uid),
            Ok(Swept {
                before: 0,
                after: 0
            })
        );
    }

    /// Kills every process of `uid` with `/bin/kill -9 -1` run as that uid
    /// (not the code under test), for a test that failed, and panics with
    /// `why`.
    fn fail_and_clean(uid: u32, why: String) -> ! {
        for _ in 0..3 {
            let _ = as_uid(uid, "/bin/kill", &["-9", "-1"]).status();
        }
        panic!("{why}");
    }

    /// `program` with `args`, to be run as `uid` (and gid `uid`).
    fn as_uid(uid: u32, program: &str, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.args(args).uid(uid).gid(uid);
        c
    }

    /// Waits (at most 10 s) until `/proc` shows `n` or more live processes
    /// of `uid`.
    fn await_processes(uid: u32, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::audit::procfs::live_processes_of(uid).len() < n {
            if Instant::now() > deadline {
                fail_and_clean(uid, format!("{n} process(es) of uid {uid} never started"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_sweep_kills_every_process_of_the_uid() {
        let Some(uid) = test_uid(1) else { return };
        // Three processes of the uid: a shell and two sleeps it started.
        let mut shell = as_uid(uid, "/bin/sh", &["-c", "sleep 60 & sleep 60 & wait"])
            .spawn()
            .unwrap();
        await_processes(uid, 3);
        let swept = sweep_uid(uid);
        if swept
            != Ok(Swept {
                before: 3,
                after: 0,
            })
        {
            let _ = shell.kill();
            fail_and_clean(uid, format!("{swept:?}"));
        }
        let status = shell.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        assert_eq!(
            sweep_uid(uid),
            Ok(Swept {
                before: 0,
                after: 0
            })
        );
    }

    /// A process that forks and exits over and over (its pid never stays)
    /// can be missed by a listing of `/proc`, never by the one `kill(-1)`.
    /// Every process of it holds the write end of a pipe: end of file on
    /// the read end means none is left.
    #[test]
    fn a_sweep_kills_a_process_that_keeps_changing_its_pid() {
        use std::os::fd::AsFd;
        let Some(uid) = test_uid(2) else { return };
        let hop = "import os\nwhile True:\n    if os.fork() > 0:\n        os._exit(0)\n";
        let mut first = as_uid(uid, "python3", &["-c", hop])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = first.stdout.take().unwrap();
        await_processes(uid, 1);
        let swept = sweep_uid(uid);
        let _ = first.wait();
        let mut fds = [nix::poll::PollFd::new(
            out.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ended = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16))
            .is_ok_and(|n| n == 1);
        if !ended || swept.as_ref().map(|s| s.after) != Ok(0) {
            fail_and_clean(
                uid,
                format!("{swept:?}; the pipe's write end still open: {}", !ended),
            );
        }
    }
}
