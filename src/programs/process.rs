//! CATALOGUE.md section 1 (fork, wait, exit) and the `Process` programs of
//! section 2.

use super::{Program, require_single_thread, sleep};
use crate::error::Result;
use crate::process::{self, Fork, Process, SigchldIgnored};
use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};

/// The programs of this section.
pub const PROGRAMS: &[Program] = &[
    Program {
        id: "fork-basic",
        summary: "fork once; the child's lines come first; both print 'program finished'",
        run: fork_basic,
    },
    Program {
        id: "fork-isolation",
        summary: "memory is copied at fork: the child's write is invisible to the parent",
        run: fork_isolation,
    },
    Program {
        id: "fork-ids",
        summary: "the parent's and the child's view of the two pids agree",
        run: fork_ids,
    },
    Program {
        id: "exit-status",
        summary: "wait returns the child's pid; exit status 1 and a signal death are decoded",
        run: exit_status,
    },
    Program {
        id: "exit-flush",
        summary: "flush before fork or buffered text is printed twice; _exit loses the buffer",
        run: exit_flush,
    },
    Program {
        id: "zombie",
        summary: "an exited child shows state Z until its parent waits",
        run: zombie,
    },
    Program {
        id: "double-fork",
        summary: "the grandchild is orphaned, adopted and reaped by its adopter",
        run: double_fork,
    },
    Program {
        id: "sigchld-ignore",
        summary: "with SIGCHLD ignored no child becomes a zombie and wait fails with ECHILD",
        run: sigchld_ignore,
    },
    Program {
        id: "process-join",
        summary: "a Process runs its target in a child; join waits; the parent's global stays 1",
        run: process_join,
    },
    Program {
        id: "daemon-child",
        summary: "a daemon child is ended when its parent's Process object goes away",
        run: daemon_child,
    },
];

/// `fork-basic`: `pid = os.fork()`; the child prints, the parent sleeps 1 s, prints, waits.
fn fork_basic(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    match super::fork_raw()? {
        Fork::Child => {
            println!("new process created: fork returned 0 in the child");
            println!("program finished");
            process::exit_normally(0)
        }
        Fork::Parent(mut child) => {
            sleep(1.0);
            println!(
                "original process: fork returned the child's pid {}",
                child.pid()
            );
            child.wait()?;
            println!("program finished");
        }
    }
    Ok(0)
}

/// `fork-isolation`: `a = 1`; the child changes its copy of `a`; the parent's stays 1.
fn fork_isolation(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let mut a = 1;
    match super::fork_raw()? {
        Fork::Child => {
            println!("a = {a}");
            a = 10000;
            println!("a = {a}");
            process::exit_normally(0)
        }
        Fork::Parent(mut child) => {
            sleep(1.0);
            child.wait()?;
            println!("parent a : {a}");
        }
    }
    Ok(0)
}

/// `fork-ids`: each side prints the two pids as it sees them.
fn fork_ids(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    match super::fork_raw()? {
        Fork::Child => {
            println!(
                "child: my pid is {}, my parent's pid is {}",
                process::getpid(),
                process::getppid()
            );
            process::exit_normally(0)
        }
        Fork::Parent(mut child) => {
            child.wait()?;
            println!(
                "parent: my child's pid is {}, my pid is {}",
                child.pid(),
                process::getpid()
            );
        }
    }
    Ok(0)
}

/// `exit-status`: the child exits with status 1; the parent's `wait()` decodes it.
/// A second child is killed by `SIGKILL` to show that a signal death is not a status.
fn exit_status(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let child = super::fork(|| {
        println!(
            "child: my pid is {}, exiting with status 1",
            process::getpid()
        );
        let _ = std::io::stdout().flush();
        1
    })?;
    let pid = child.into_pid(); // reaped below by wait(), as in the tutorial
    let mut status = 0;
    // SAFETY: `status` is a valid int. wait() collects any child: this exercise
    // runs alone in its own process and has exactly one child now.
    let waited = unsafe { libc::wait(&mut status) };
    let waited = crate::sys::check("wait", "any child", waited)?;
    let decoded = process::ExitStatus::from_raw(status);
    println!("parent: wait() returned pid {waited} (the child was {pid}): {decoded}");
    if let process::ExitStatus::Exited(code) = decoded {
        println!("parent: WEXITSTATUS = {code}");
    }
    let mut victim = super::fork(|| {
        std::thread::sleep(std::time::Duration::from_secs(60));
        0
    })?;
    victim.signal(nix::sys::signal::Signal::SIGKILL)?;
    println!("parent: the second child {}", victim.wait()?);
    Ok(0)
}

/// `exit-flush`: the buffer is copied by fork; flush first. `_exit` loses the
/// buffer, the normal exit flushes it (each child's stdout is a pipe here, so
/// the parent can show what really arrived).
fn exit_flush(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    print!("1. not flushed before fork, so printed by both processes:");
    match super::fork_raw()? {
        Fork::Child => {
            println!(" child");
            process::exit_normally(0)
        }
        Fork::Parent(mut child) => {
            child.wait()?;
            println!(" parent");
        }
    }
    print!("2. flushed before fork, so printed once");
    std::io::stdout()
        .flush()
        .map_err(|e| crate::Error::io("stdout", e))?;
    println!();
    let lost = child_output_after_exit(process::exit_immediately)?;
    println!(
        "3. the child used the immediate exit (_exit): its buffered text {lost:?} never arrived"
    );
    let kept = child_output_after_exit(process::exit_normally)?;
    println!("4. the child used the normal exit (exit): its buffered text {kept:?} was flushed");
    Ok(0)
}

/// Forks a child whose stdout is a pipe; it prints without a newline (so the
/// text stays in its buffer) and leaves with `exit`. Returns what the parent read.
fn child_output_after_exit(exit: fn(i32) -> !) -> Result<String> {
    use std::io::Read;
    let (read_end, write_end) = crate::sys::nix("pipe", "", nix::unistd::pipe())?;
    match super::fork_raw()? {
        Fork::Child => {
            let _ = nix::unistd::dup2_stdout(&write_end);
            drop((read_end, write_end));
            print!("kept in the buffer");
            exit(0)
        }
        Fork::Parent(mut child) => {
            drop(write_end);
            let mut text = String::new();
            std::fs::File::from(read_end)
                .read_to_string(&mut text)
                .map_err(|e| crate::Error::io("pipe", e))?;
            child.wait()?;
            Ok(text)
        }
    }
}

/// `zombie`: the child exits, the parent does not wait yet: the child is a
/// zombie (state Z) until the parent waits.
fn zombie(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let mut child = super::fork(|| 0)?;
    sleep(1.0); // the tutorial's pause; the line below waits for the exit itself
    exited_not_reaped(child.pid())?;
    println!(
        "child {} has exited; before wait its state is {}",
        child.pid(),
        state_word(child.pid())
    );
    child.wait()?;
    println!("after wait the child is {}", state_word(child.pid()));
    Ok(0)
}

/// Waits until `pid` has exited, without reaping it: `waitid(P_PID, pid,
/// WEXITED | WNOWAIT)` (waitid(2)). The child stays a zombie, and a loaded
/// machine can no longer make the tutorial's 1 s pause too short.
#[cfg(target_os = "linux")]
fn exited_not_reaped(pid: nix::unistd::Pid) -> Result<()> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)?;
    Ok(())
}

/// Elsewhere `waitid` has no `WNOWAIT` in nix: the tutorial's pause decides.
#[cfg(not(target_os = "linux"))]
fn exited_not_reaped(_pid: nix::unistd::Pid) -> Result<()> {
    Ok(())
}

fn state_word(pid: nix::unistd::Pid) -> String {
    match process::state_of(pid) {
        Ok(Some('Z')) => "Z (zombie)".into(),
        Ok(Some(c)) => c.to_string(),
        Ok(None) => "gone (reaped)".into(),
        Err(e) => e.to_string(),
    }
}

/// `double-fork`: the parent waits for its child, which forks a grandchild and
/// exits at once; the parent does the first thing, the orphaned grandchild
/// (adopted by init or a subreaper, which reaps it) does the second.
fn double_fork(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let orphan = super::double_fork(|| {
        sleep(4.0);
        println!(
            "second thing (grandchild {}, adopted by pid {})",
            process::getpid(),
            process::getppid()
        );
        let _ = std::io::stdout().flush();
        0
    })?;
    let adopter = orphan.adopter(std::time::Duration::from_secs(5))?;
    println!(
        "parent: my child exited; grandchild {} was adopted by pid {adopter}",
        orphan.pid
    );
    sleep(3.0);
    println!("first thing (parent {})", process::getpid());
    Ok(0)
}

/// `sigchld-ignore`: with `SIGCHLD` ignored, exited children are reaped by the
/// kernel at once; waiting for one fails with `ECHILD`.
fn sigchld_ignore(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let _ignored = SigchldIgnored::new()?;
    let mut pids = Vec::new();
    for _ in 0..3 {
        let child = super::fork(|| 0)?;
        pids.push(child.into_pid()); // the kernel reaps them, not us
    }
    sleep(1.0);
    for pid in &pids {
        println!("child {pid} exited: state {}", state_word(*pid));
    }
    match process::wait_exit(pids[0]) {
        Err(e) if e.errno() == Some(nix::errno::Errno::ECHILD) => {
            println!(
                "waitpid({}) failed with ECHILD: no child processes",
                pids[0]
            )
        }
        other => println!("waitpid({}) unexpectedly returned {other:?}", pids[0]),
    }
    Ok(0)
}

static GLOBAL: AtomicI32 = AtomicI32::new(1);

/// `process-join`: a `Process` whose target sleeps 2 s, prints its pid and sets
/// a global to 10000; the parent sleeps 3 s, joins, and its global is still 1.
fn process_join(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let mut p = Process::new(|| {
        sleep(2.0);
        println!("child: pid {}, setting global to 10000", process::getpid());
        GLOBAL.store(10000, Ordering::Relaxed);
    });
    super::start_process(&mut p)?;
    let alive = p.is_alive();
    println!(
        "parent: started {} with pid {}, alive: {alive}",
        p.name(),
        p.pid().expect("started")
    );
    sleep(3.0);
    println!("parent: done sleeping");
    p.join(None)?;
    let alive = p.is_alive();
    println!(
        "parent: joined {}, exitcode {:?}, alive: {alive}",
        p.name(),
        p.exitcode()
    );
    println!(
        "parent: my global is still {}",
        GLOBAL.load(Ordering::Relaxed)
    );
    Ok(0)
}

/// `daemon-child`: a daemon child runs forever; it is ended when its parent's
/// process object goes away. Setting `daemon` after `start` is refused.
fn daemon_child(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let mut p = Process::new(|| {
        loop {
            sleep(1.0);
        }
    });
    p.set_daemon(true)?;
    super::start_process(&mut p)?;
    let pid = p.pid().expect("started");
    println!(
        "parent: daemon child {pid} started (daemon = {})",
        p.daemon()
    );
    if let Err(e) = p.set_daemon(false) {
        println!("parent: set_daemon after start is refused: {e}");
    }
    sleep(2.0);
    println!("parent: done; dropping the process object ends the daemon");
    drop(p);
    println!("parent: daemon child {pid} is {}", state_word(pid));
    Ok(0)
}
