//! Tracing what a port does: `ptrace(2)` with a `seccomp(2)` filter (Linux,
//! x86_64 and aarch64).
//!
//! The steps, in order:
//! 1. [`filter`] builds a classic BPF program that returns
//!    `SECCOMP_RET_TRACE` for the few system calls that are evidence (wait4,
//!    waitid, pipe, pipe2, socketpair, mq_open, mq_unlink, msgget, msgctl,
//!    shmget, shmctl, semget, semctl, open/openat with `O_CREAT`, creat, link,
//!    linkat, unlink, unlinkat, mknod, mknodat, bind, connect, accept,
//!    accept4) and `SECCOMP_RET_ALLOW` for everything else, so
//!    that `read`/`write` on a pipe never stop;
//! 2. [`install_in_child`] runs in the port's process between `fork` and
//!    `exec`: `PR_SET_NO_NEW_PRIVS`, `PTRACE_TRACEME`, `PR_SET_SECCOMP`; the
//!    `exec` then stops the port with `SIGTRAP` before its first instruction;
//! 3. [`Tracer::start`] sets the options (`PTRACE_O_TRACEFORK`, `TRACEVFORK`,
//!    `TRACECLONE`, `TRACEEXEC`, `TRACESECCOMP`, `TRACESYSGOOD`, `EXITKILL`, and
//!    `TRACEEXIT` for step 6):
//!    every process the port forks is traced from birth;
//! 4. [`Tracer::handle`] turns each stop into evidence in the [`Tree`]: a fork
//!    event names parent and child (a clone with `CLONE_THREAD` is a thread,
//!    not a process), a seccomp stop records the call's arguments and resumes
//!    with `PTRACE_SYSCALL` to read its result at the syscall-exit stop, an exit
//!    is recorded, and signals are passed on untouched;
//! 5. data following (`Watch`): a process that made a pipe or socket pair,
//!    and every process it forks afterwards, is *watched*: it is resumed with
//!    `PTRACE_SYSCALL`, so that each of its system calls stops it. A read or
//!    write whose descriptor is an end of one of the port's channels (its
//!    `/proc/PID/fd` link) is recorded with the bytes it moved and whether
//!    the process still held the channel's other end. After
//!    [`WATCHED_TRANSFERS`] transfers a process is let go: a ping-pong of a
//!    million writes stops only for its first few, and reads and writes of
//!    processes that made no channel never stop;
//! 6. shared memory, only when the spec's evidence needs it
//!    ([`Tracer::shared_memory`], `PTRACE_O_TRACEEXIT`): the writable shared
//!    mappings of `/proc/PID/maps` are noted when a process is born (what its
//!    parent held at the `fork`) and at its exit stop, while its memory is
//!    still there. What is written into shared memory makes no system call
//!    and is not seen.

use super::evidence::{Channel, Transfer, Tree};
use crate::error::Result;
use crate::process::ExitStatus;
use crate::sys;
use std::collections::HashMap;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const NONE: i64 = -1;

/// Transfers on the port's channels recorded per process before it is no
/// longer watched (step 5): enough for ten slices, a header and a body each.
pub const WATCHED_TRANSFERS: u32 = 64;
/// Bytes of each transfer kept as text for the report.
const TRANSFER_TEXT: usize = 40;

/// System calls the filter stops on unconditionally.
fn evidence_calls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_wait4,
        libc::SYS_waitid,
        libc::SYS_pipe2,
        libc::SYS_socketpair,
        libc::SYS_mq_open,
        libc::SYS_mq_unlink,
        libc::SYS_msgget,
        libc::SYS_msgctl,
        libc::SYS_shmget,
        libc::SYS_shmctl,
        libc::SYS_semget,
        libc::SYS_semctl,
        libc::SYS_linkat,
        libc::SYS_unlinkat,
        libc::SYS_bind,
        libc::SYS_connect,
        libc::SYS_accept4,
        libc::SYS_mknodat,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_accept,
        libc::SYS_mknod,
        libc::SYS_pipe,
        libc::SYS_creat,
        libc::SYS_link,
        libc::SYS_unlink,
    ]);
    v
}

#[cfg(target_arch = "x86_64")]
const SYS_OPEN: i64 = libc::SYS_open;
#[cfg(target_arch = "aarch64")]
const SYS_OPEN: i64 = NONE;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: usize, jf: usize) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: jt as u8,
        jf: jf as u8,
        k,
    }
}

/// Step 1: the seccomp BPF program (see `seccomp(2)`, `struct seccomp_data`:
/// `nr` at offset 0, `arch` at 4, `args[i]` at 16 + 8 i).
pub fn filter() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JA, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ld = BPF_LD | BPF_W | BPF_ABS;
    let calls = evidence_calls();
    let mut p = vec![
        stmt(ld, 4),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        stmt(ld, 0),
    ];
    // Layout after the list: 7 instructions, then ALLOW, then TRACE.
    let first = p.len();
    let allow = first + calls.len() + 7;
    let trace = allow + 1;
    for (i, nr) in calls.iter().enumerate() {
        let pc = first + i;
        p.push(jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            *nr as u32,
            trace - pc - 1,
            0,
        ));
    }
    let i0 = p.len();
    p.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::SYS_openat as u32,
        0,
        2,
    ));
    p.push(stmt(ld, 16 + 8 * 2)); // openat's flags
    p.push(stmt(BPF_JMP | BPF_JA, 3)); // to the flag test
    p.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        SYS_OPEN as u32,
        0,
        allow - (i0 + 3) - 1,
    ));
    p.push(stmt(ld, 16 + 8)); // open's flags
    p.push(stmt(BPF_JMP | BPF_JA, 0)); // on to the flag test
    p.push(jump(
        BPF_JMP | BPF_JSET | BPF_K,
        libc::O_CREAT as u32,
        trace - (i0 + 6) - 1,
        0,
    ));
    debug_assert_eq!(p.len(), allow);
    p.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    p.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
    p
}

/// Step 2, in the child between `fork` and `exec`: asks to be traced and
/// installs the filter (`prctl(2)` `PR_SET_NO_NEW_PRIVS`, `ptrace(2)`
/// `PTRACE_TRACEME`, `prctl(2)` `PR_SET_SECCOMP`).
///
/// # Safety
/// Only async-signal-safe calls are made; `program` must stay alive until
/// `exec` (it is borrowed from the parent's copy of memory).
pub unsafe fn install_in_child(program: &[libc::sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl(2) with an option and plain integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: PTRACE_TRACEME ignores its pid, address and data arguments.
    if unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `prog` points to a live filter array for the duration of the call.
    let installed = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if installed != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A system call seen at its seccomp stop, waiting for its result.
#[derive(Debug, Clone)]
struct Entry {
    nr: i64,
    args: [u64; 6],
    path: Option<String>,
    path2: Option<String>,
}

/// A read or write on a channel end, between its entry and exit stops.
#[derive(Debug, Clone)]
struct Io {
    channel: usize,
    end: usize,
    write: bool,
    /// The buffer of a `read`/`recvfrom`/`write`/`sendto` (0: a vector call).
    buf: u64,
}

/// Step 5: which processes are watched, and their calls in flight.
#[derive(Debug, Default)]
struct Watch {
    /// Watched processes: transfers each may still record.
    left: HashMap<i32, u32>,
    /// Reads and writes on channel ends between entry and exit, by tid.
    io: HashMap<i32, Io>,
}

/// The tracer: turns ptrace stops into evidence.
#[derive(Debug, Default)]
pub struct Tracer {
    /// Step 6 is on: shared mappings are read at each fork and exit.
    pub shared_memory: bool,
    /// Step 5: data following.
    watch: Watch,
    /// Calls between their seccomp stop and their syscall-exit stop, by tid.
    pending: HashMap<i32, Entry>,
    /// The process (thread group) of every thread that is not a leader.
    thread_of: HashMap<i32, i32>,
    /// Tasks known to lead their thread group (their own process).
    leaders: std::collections::HashSet<i32>,
    /// Tasks whose first (attach) stop has been seen.
    attached: std::collections::HashSet<i32>,
    /// Stops handled (for the performance note).
    pub stops: u64,
    /// Tasks in a group-stop (`SIGSTOP`, `SIGTSTP`, `SIGTTIN`, `SIGTTOU`),
    /// left stopped as they would be untraced, since when.
    pub stopped: std::collections::BTreeMap<i32, f64>,
}

impl Tracer {
    /// Step 3: the port's main process is stopped after its `exec`; set the
    /// options and let it run.
    pub fn start(&mut self, main: i32) -> Result<()> {
        use nix::sys::ptrace::Options;
        let pid = nix::unistd::Pid::from_raw(main);
        let status = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
        sys::nix("waitpid", main, status)?;
        let mut opts = Options::PTRACE_O_TRACESYSGOOD
            | Options::PTRACE_O_TRACEFORK
            | Options::PTRACE_O_TRACEVFORK
            | Options::PTRACE_O_TRACECLONE
            | Options::PTRACE_O_TRACEEXEC
            | Options::PTRACE_O_TRACESECCOMP
            | Options::PTRACE_O_EXITKILL;
        if self.shared_memory {
            opts |= Options::PTRACE_O_TRACEEXIT;
        }
        sys::nix(
            "ptrace",
            format!("PTRACE_SETOPTIONS {main}"),
            nix::sys::ptrace::setoptions(pid, opts),
        )?;
        self.attached.insert(main);
        sys::nix(
            "ptrace",
            format!("PTRACE_CONT {main}"),
            nix::sys::ptrace::cont(pid, None),
        )
    }

    /// Step 4: one `waitpid` report of task `tid`.
    pub fn handle(&mut self, tree: &mut Tree, tid: i32, status: i32, now: f64) {
        self.stops += 1;
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.pending.remove(&tid);
            self.attached.remove(&tid);
            self.leaders.remove(&tid);
            self.watch.io.remove(&tid);
            if self.thread_of.remove(&tid).is_none() {
                self.watch.left.remove(&tid);
                tree.on_exit(tid, ExitStatus::from_raw(status), now);
            }
            return;
        }
        if !libc::WIFSTOPPED(status) {
            return;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        let pid = self.process_of(tid);
        let mut inject = 0;
        if sig == libc::SIGTRAP && event != 0 {
            match event {
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                    if let Some(new) = event_msg(tid) {
                        if event == libc::PTRACE_EVENT_CLONE
                            && tgid_of(new).is_some_and(|g| g != new)
                        {
                            self.thread_of.insert(new, pid);
                            tree.bump(pid, "threads", now);
                        } else {
                            tree.on_fork(pid, new, now);
                            // What it was born with: its parent's shared memory (step 6).
                            if let Some(c) = tree
                                .procs
                                .get_mut(&new)
                                .filter(|c| self.shared_memory && !c.helper)
                            {
                                c.shared_at_birth =
                                    crate::procfs::shared_mappings(new).unwrap_or_default();
                            }
                            if self.watch.left.contains_key(&pid) {
                                // It holds what its parent held.
                                self.watch.left.insert(new, WATCHED_TRANSFERS);
                            }
                        }
                    }
                }
                libc::PTRACE_EVENT_EXEC => {
                    tree.on_exec(pid, now);
                    if pid == tree.main {
                        // Everything so far was the launch chain (a pyenv
                        // shim's pipes): its channels are forgotten
                        // (`Tree::on_exec`) and nothing of it is watched.
                        self.watch.left.clear();
                        self.watch.io.clear();
                    } else if tree.procs.get(&pid).is_some_and(|p| p.helper) {
                        self.watch.left.remove(&pid);
                    }
                }
                libc::PTRACE_EVENT_EXIT if tid == pid => {
                    // The process is ending but its memory is still there (step 6).
                    if let Some(p) = tree.procs.get_mut(&pid).filter(|p| !p.helper) {
                        p.shared_at_exit = crate::procfs::shared_mappings(pid);
                    }
                }
                libc::PTRACE_EVENT_SECCOMP => {
                    if let Some(entry) = read_entry(tid) {
                        self.pending.insert(tid, entry);
                        // SAFETY: PTRACE_SYSCALL on a tracee in a ptrace stop.
                        unsafe { libc::ptrace(libc::PTRACE_SYSCALL, tid, 0, 0) };
                        return;
                    }
                }
                _ => {}
            }
        } else if sig == (libc::SIGTRAP | 0x80) {
            if let Some(entry) = self.pending.remove(&tid) {
                if let Some(ret) = read_return(tid) {
                    record(tree, pid, tid, &entry, ret, now);
                    let helper = tree.procs.get(&pid).is_some_and(|p| p.helper);
                    if ret >= 0 && self.on_channel_made(tree, pid, tid, &entry, now) && !helper {
                        self.watch.left.insert(pid, WATCHED_TRANSFERS);
                    }
                }
            } else if self.watch.left.contains_key(&pid) {
                self.watch.stop(tree, pid, tid, now);
            }
        } else if sig == libc::SIGSTOP && !self.attached.contains(&tid) {
            // The first stop of a new tracee: swallow it.
            self.attached.insert(tid);
        } else if is_stop_signal(sig) && !has_siginfo(tid) {
            // A group-stop: the task stopped itself (or was stopped). It is
            // left stopped, as it would be untraced, until a SIGCONT is
            // pending ([`Tracer::resume_continued`]).
            self.stopped.entry(tid).or_insert(now);
            return;
        } else if has_siginfo(tid) {
            // A signal being delivered: pass it on.
            inject = sig;
        }
        // A watched process stops at every system call (step 5).
        let resume = if self.watch.left.contains_key(&pid) {
            libc::PTRACE_SYSCALL
        } else {
            libc::PTRACE_CONT
        };
        // SAFETY: PTRACE_CONT or PTRACE_SYSCALL on a tracee in a ptrace stop,
        // with a signal or 0.
        unsafe { libc::ptrace(resume, tid, 0, inject as libc::c_long) };
    }

    /// After a `pipe`, `pipe2` or `socketpair` that returned `ret >= 0`:
    /// reads the two descriptors it wrote and records the channel by the
    /// names `/proc/TID/fd` gives its ends. True when one was recorded.
    fn on_channel_made(
        &mut self,
        tree: &mut Tree,
        pid: i32,
        tid: i32,
        e: &Entry,
        now: f64,
    ) -> bool {
        let (kind, fds_at) = match e.nr {
            n if n == libc::SYS_pipe2 || is_x86(n, "pipe") => ("pipe", e.args[0]),
            n if n == libc::SYS_socketpair => ("socketpair", e.args[3]),
            _ => return false,
        };
        let mut buf = [0u8; 8];
        if read_mem(tid, fds_at as usize, &mut buf) != Some(8) {
            return false;
        }
        let fd = |i: usize| i32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        match (fd_link(tid, fd(0)), fd_link(tid, fd(4))) {
            (Some(a), Some(b)) => {
                tree.on_channel(pid, kind, [a, b], now);
                true
            }
            _ => false,
        }
    }

    /// Resumes the group-stopped tasks that were sent `SIGCONT` since (a
    /// tracee attached with `PTRACE_TRACEME` stays stopped until its tracer
    /// restarts it, `ptrace(2)` "Group-stop"); the pending `SIGCONT` is
    /// then delivered as usual.
    pub fn resume_continued(&mut self) {
        let continued: Vec<i32> = self
            .stopped
            .keys()
            .copied()
            .filter(|&tid| sigcont_pending(tid))
            .collect();
        for tid in continued {
            self.stopped.remove(&tid);
            // SAFETY: PTRACE_CONT on a tracee in a group-stop.
            unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0, 0) };
        }
    }

    fn process_of(&mut self, tid: i32) -> i32 {
        if let Some(&p) = self.thread_of.get(&tid) {
            return p;
        }
        if self.leaders.contains(&tid) {
            return tid;
        }
        match tgid_of(tid) {
            Some(g) if g != tid => {
                self.thread_of.insert(tid, g);
                g
            }
            Some(_) => {
                self.leaders.insert(tid);
                tid
            }
            None => tid,
        }
    }
}

fn is_stop_signal(sig: i32) -> bool {
    [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU].contains(&sig)
}

/// True when `SIGCONT` is pending for the task or its process
/// (`SigPnd`/`ShdPnd` of `/proc/<tid>/status`, `proc(5)`).
fn sigcont_pending(tid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return false;
    };
    let bit = 1u64 << (libc::SIGCONT - 1);
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("SigPnd:")
                .or_else(|| l.strip_prefix("ShdPnd:"))
        })
        .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
        .any(|mask| mask & bit != 0)
}

impl Watch {
    /// A system-call stop of watched task `tid` (process `pid`) that the
    /// seccomp filter did not ask for: a read or write on one of the port's
    /// channels is noted at its entry and recorded at its exit.
    fn stop(&mut self, tree: &mut Tree, pid: i32, tid: i32, now: f64) {
        match syscall_op(tid) {
            Some(libc::PTRACE_SYSCALL_INFO_ENTRY) => {
                let Some((nr, args)) = regs(tid).map(|r| decode(&r)) else {
                    return;
                };
                let Some((write, simple)) = io_call(nr) else {
                    return;
                };
                let Some(link) = fd_link(tid, args[0] as i32) else {
                    return;
                };
                if let Some((channel, end)) = tree.channel_end(&link, write) {
                    let buf = if simple { args[1] } else { 0 };
                    self.io.insert(
                        tid,
                        Io {
                            channel,
                            end,
                            write,
                            buf,
                        },
                    );
                }
            }
            Some(libc::PTRACE_SYSCALL_INFO_EXIT) => {
                if let Some(io) = self.io.remove(&tid)
                    && let Some(ret) = read_return(tid)
                    && ret > 0
                {
                    self.record(tree, pid, tid, &io, ret as u64, now);
                }
            }
            _ => {}
        }
    }

    /// Records one transfer of `bytes` bytes; the first of its kind (this
    /// process, this channel, this direction) also looks whether the
    /// process still holds the other end.
    fn record(&mut self, tree: &mut Tree, pid: i32, tid: i32, io: &Io, bytes: u64, now: f64) {
        let c = &tree.channels[io.channel];
        let first = !c
            .transfers
            .iter()
            .any(|t| t.pid == pid && t.write == io.write);
        let other = Channel::other(io.end);
        let other_end_open = first && holds(tid, &c.ends[other], c.kind == "pipe" && other == 1);
        let mut text = vec![0u8; (bytes as usize).min(TRANSFER_TEXT)];
        let text = match io.buf {
            0 => String::new(),
            at => read_mem(tid, at as usize, &mut text)
                .map(|n| text[..n].escape_ascii().to_string())
                .unwrap_or_default(),
        };
        tree.channels[io.channel].transfers.push(Transfer {
            pid,
            end: io.end,
            write: io.write,
            bytes,
            at: now,
            other_end_open,
            text,
        });
        if let Some(left) = self.left.get_mut(&pid) {
            *left -= 1;
            if *left == 0 {
                self.left.remove(&pid);
            }
        }
    }
}

/// Whether a call moves data through its first argument's descriptor:
/// `(is a write, its second argument is the one buffer)`.
fn io_call(nr: i64) -> Option<(bool, bool)> {
    match nr {
        n if n == libc::SYS_read || n == libc::SYS_recvfrom => Some((false, true)),
        n if n == libc::SYS_write || n == libc::SYS_sendto => Some((true, true)),
        n if n == libc::SYS_readv || n == libc::SYS_recvmsg => Some((false, false)),
        n if n == libc::SYS_writev || n == libc::SYS_sendmsg => Some((true, false)),
        _ => None,
    }
}

/// The `op` of `PTRACE_GET_SYSCALL_INFO` (`ptrace(2)`): entry or exit stop.
fn syscall_op(tid: i32) -> Option<u8> {
    // SAFETY: ptrace_syscall_info is plain integers; all-zero is valid.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    // SAFETY: the kernel writes at most `size` bytes into `info`.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            tid,
            size as *mut libc::c_void,
            &mut info as *mut libc::ptrace_syscall_info,
        )
    };
    (ret > 0).then_some(info.op)
}

/// What `/proc/TID/fd/FD` names (`pipe:[N]`, `socket:[N]`, a path).
fn fd_link(tid: i32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{tid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether task `tid` holds a descriptor named `link`; for a pipe end,
/// `write_end` picks the end by its access mode (`/proc/TID/fdinfo/FD`'s
/// `flags`, `O_WRONLY` for the write end).
fn holds(tid: i32, link: &str, write_end: bool) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{tid}/fd")) else {
        return false;
    };
    dir.flatten().any(|d| {
        let fd = d.file_name().to_string_lossy().into_owned();
        let named = std::fs::read_link(d.path()).is_ok_and(|p| p.to_string_lossy() == link);
        named && (!link.starts_with("pipe:") || is_write_end(tid, &fd) == write_end)
    })
}

/// Whether descriptor `fd` of `tid` was opened for writing only.
fn is_write_end(tid: i32, fd: &str) -> bool {
    let text = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .is_some_and(|f| f & libc::O_ACCMODE as u32 == libc::O_WRONLY as u32)
}

/// The thread group (process) of a task, from `/proc/<tid>/status`.
fn tgid_of(tid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn event_msg(tid: i32) -> Option<i32> {
    nix::sys::ptrace::getevent(nix::unistd::Pid::from_raw(tid))
        .ok()
        .map(|m| m as i32)
}

fn has_siginfo(tid: i32) -> bool {
    nix::sys::ptrace::getsiginfo(nix::unistd::Pid::from_raw(tid)).is_ok()
}

fn regs(tid: i32) -> Option<libc::user_regs_struct> {
    // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: &mut regs as *mut _ as *mut libc::c_void,
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    // SAFETY: PTRACE_GETREGSET with NT_PRSTATUS writes at most iov_len bytes
    // into `regs`, which the iovec describes exactly.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            libc::NT_PRSTATUS as libc::c_long,
            &mut iov as *mut libc::iovec,
        )
    };
    (ret == 0).then_some(regs)
}

#[cfg(target_arch = "x86_64")]
fn decode(r: &libc::user_regs_struct) -> (i64, [u64; 6]) {
    (r.orig_rax as i64, [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9])
}

#[cfg(target_arch = "aarch64")]
fn decode(r: &libc::user_regs_struct) -> (i64, [u64; 6]) {
    let x = &r.regs;
    (x[8] as i64, [x[0], x[1], x[2], x[3], x[4], x[5]])
}

#[cfg(target_arch = "x86_64")]
fn read_return(tid: i32) -> Option<i64> {
    regs(tid).map(|r| r.rax as i64)
}

#[cfg(target_arch = "aarch64")]
fn read_return(tid: i32) -> Option<i64> {
    regs(tid).map(|r| r.regs[0] as i64)
}

/// Reads the call's number and arguments, and the paths it names.
fn read_entry(tid: i32) -> Option<Entry> {
    let (nr, args) = decode(&regs(tid)?);
    let at = |dirfd: u64, addr: u64| resolve(tid, dirfd as i32, &read_string(tid, addr)?);
    let cwd = libc::AT_FDCWD as u32 as u64;
    let (path, path2) = match nr {
        n if n == SYS_OPEN || ["creat", "unlink", "mknod"].iter().any(|c| is_x86(n, c)) => {
            (at(cwd, args[0]), None)
        }
        n if is_x86(n, "link") => (at(cwd, args[0]), at(cwd, args[1])),
        n if [libc::SYS_openat, libc::SYS_unlinkat, libc::SYS_mknodat].contains(&n) => {
            (at(args[0], args[1]), None)
        }
        n if n == libc::SYS_linkat => (at(args[0], args[1]), at(args[2], args[3])),
        n if n == libc::SYS_mq_open || n == libc::SYS_mq_unlink => (
            read_string(tid, args[0]).map(|s| format!("/{}", s.trim_start_matches('/'))),
            None,
        ),
        n if n == libc::SYS_bind || n == libc::SYS_connect => {
            (socket_address(tid, args[1], args[2]), None)
        }
        _ => (None, None),
    };
    Some(Entry {
        nr,
        args,
        path,
        path2,
    })
}

/// The x86_64-only legacy calls (`open`, `creat`, `link`, `unlink`, `pipe`,
/// `accept`, `mknod`).
#[allow(unused_variables)]
fn is_x86(nr: i64, name: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let want = match name {
            "creat" => libc::SYS_creat,
            "link" => libc::SYS_link,
            "unlink" => libc::SYS_unlink,
            "pipe" => libc::SYS_pipe,
            "accept" => libc::SYS_accept,
            "mknod" => libc::SYS_mknod,
            _ => NONE,
        };
        nr == want
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Reads a NUL-terminated string (at most 4 KiB) from the tracee
/// (`process_vm_readv(2)`).
fn read_string(tid: i32, addr: u64) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr as usize;
    while out.len() < 4096 {
        // Never cross a page boundary in one read: the next page may be unmapped.
        let chunk = 4096 - (at % 4096);
        let mut buf = vec![0u8; chunk.min(256)];
        let n = read_mem(tid, at, &mut buf)?;
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&buf[..n]);
        at += n;
    }
    None
}

fn read_mem(tid: i32, addr: usize, buf: &mut [u8]) -> Option<usize> {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    let len = buf.len();
    let mut local = [std::io::IoSliceMut::new(buf)];
    let remote = [RemoteIoVec { base: addr, len }];
    match process_vm_readv(nix::unistd::Pid::from_raw(tid), &mut local, &remote) {
        Ok(n) if n > 0 => Some(n),
        _ => None,
    }
}

/// The address a `bind(2)` or `connect(2)` names (`unix(7)`, `ip(7)`):
/// `unix:PATH` (`unix:@NAME` for an abstract one) or `inet:PORT` (TCP or
/// UDP, IPv4 or IPv6: the port is what a client and its server agree on);
/// `None` for other families.
fn socket_address(tid: i32, addr: u64, len: u64) -> Option<String> {
    let len = (len as usize).min(128);
    if addr == 0 || len < 4 {
        return None;
    }
    let mut buf = vec![0u8; len];
    let n = read_mem(tid, addr as usize, &mut buf)?;
    parse_socket_address(&buf[..n], |p| resolve(tid, libc::AT_FDCWD, p))
}

/// [`socket_address`] of the bytes of a `struct sockaddr`; `absolute`
/// makes a relative Unix path absolute.
fn parse_socket_address(sa: &[u8], absolute: impl Fn(&str) -> Option<String>) -> Option<String> {
    let family = i32::from(u16::from_ne_bytes([*sa.first()?, *sa.get(1)?]));
    match family {
        libc::AF_UNIX => {
            let path = &sa[2..];
            if let Some(name) = path.strip_prefix(&[0]) {
                return Some(format!("unix:@{}", String::from_utf8_lossy(name)));
            }
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            let path = String::from_utf8_lossy(&path[..end]).into_owned();
            if path.starts_with('/') {
                return Some(format!("unix:{path}"));
            }
            Some(format!("unix:{}", absolute(&path).unwrap_or(path)))
        }
        libc::AF_INET | libc::AF_INET6 => {
            let port = u16::from_be_bytes([*sa.get(2)?, *sa.get(3)?]);
            Some(format!("inet:{port}"))
        }
        _ => None,
    }
}

/// The local port of the socket `fd` of task `tid`, found by its inode in
/// `/proc/TID/net/{tcp,tcp6,udp,udp6}` (`proc(5)`: `local_address` is
/// `HEXIP:HEXPORT`, the tenth column the inode).
fn bound_port(tid: i32, fd: i32) -> Option<u16> {
    let link = fd_link(tid, fd)?;
    let inode = link.strip_prefix("socket:[")?.strip_suffix(']')?;
    ["tcp", "tcp6", "udp", "udp6"].iter().find_map(|t| {
        let table = std::fs::read_to_string(format!("/proc/{tid}/net/{t}")).ok()?;
        port_of_inode(&table, inode)
    })
}

/// The local port of the row whose inode is `inode` in a `/proc/net/tcp`
/// style table.
fn port_of_inode(table: &str, inode: &str) -> Option<u16> {
    table.lines().skip(1).find_map(|row| {
        let f: Vec<&str> = row.split_whitespace().collect();
        if f.get(9) != Some(&inode) {
            return None;
        }
        let port = f.get(1)?.rsplit(':').next()?;
        u16::from_str_radix(port, 16).ok()
    })
}

/// Makes a path absolute against the tracee's working directory or `dirfd`.
fn resolve(tid: i32, dirfd: i32, path: &str) -> Option<String> {
    if path.starts_with('/') {
        return Some(path.to_string());
    }
    let base = if dirfd == libc::AT_FDCWD {
        std::fs::read_link(format!("/proc/{tid}/cwd")).ok()?
    } else {
        std::fs::read_link(format!("/proc/{tid}/fd/{dirfd}")).ok()?
    };
    Some(base.join(path).to_string_lossy().into_owned())
}

/// What kind of named object a path is: `/dev/shm/sem.NAME` is a named
/// semaphore, `/dev/shm/NAME` shared memory, a path under `/proc`, `/sys` or
/// `/dev` is not evidence, anything else is a file.
fn classify(path: &str) -> Option<(&'static str, String)> {
    if let Some(name) = path.strip_prefix("/dev/shm/") {
        return Some(match name.strip_prefix("sem.") {
            Some(sem) => ("sem", format!("/{sem}")),
            None => ("shm", format!("/{name}")),
        });
    }
    if ["/proc/", "/sys/", "/dev/"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return None;
    }
    Some(("file", path.to_string()))
}

/// Records a finished call of process `pid` (task `tid`) that returned `ret`.
fn record(tree: &mut Tree, pid: i32, tid: i32, e: &Entry, ret: i64, now: f64) {
    let nr = e.nr;
    let ok = ret >= 0;
    let rmid = |cmd: u64| (cmd as i32 & !0x100) == libc::IPC_RMID; // glibc may add IPC_64
    let counter = match nr {
        n if n == libc::SYS_wait4 && ret > 0 => {
            tree.on_reap(pid, ret as i32, now);
            None
        }
        n if n == libc::SYS_waitid && ret == 0 => {
            reap_from_siginfo(tree, pid, tid, e, now);
            None
        }
        n if (n == libc::SYS_pipe2 || is_x86(n, "pipe")) && ok => Some("pipes"),
        n if n == libc::SYS_socketpair && ok => Some("socketpairs"),
        n if n == libc::SYS_mq_open && ok => {
            if e.args[1] as i32 & libc::O_CREAT != 0
                && let Some(name) = &e.path
            {
                tree.on_object(pid, "mq", name, true, now);
            }
            Some("mq_open")
        }
        n if n == libc::SYS_mq_unlink && ok => {
            if let Some(name) = &e.path {
                tree.on_object(pid, "mq", name, false, now);
            }
            Some("mq_unlink")
        }
        // A non-blocking connect may still be under way (EINPROGRESS).
        n if (n == libc::SYS_bind && ok)
            || (n == libc::SYS_connect && (ok || ret == -i64::from(libc::EINPROGRESS))) =>
        {
            let bind = n == libc::SYS_bind;
            let addr = match e.path.as_deref() {
                // Port 0: the kernel chose one at the bind.
                Some("inet:0") if bind => {
                    bound_port(tid, e.args[0] as i32).map(|p| format!("inet:{p}"))
                }
                other => other.map(str::to_string),
            };
            if let Some(addr) = addr {
                tree.on_address(pid, bind, &addr, now);
            }
            Some(if bind { "binds" } else { "connects" })
        }
        n if (n == libc::SYS_accept4 || is_x86(n, "accept")) && ok => Some("accepts"),
        n if n == libc::SYS_msgget && ok => Some("msgget"),
        n if n == libc::SYS_shmget && ok => Some("shmget"),
        n if n == libc::SYS_semget && ok => Some("semget"),
        n if n == libc::SYS_msgctl && ok && rmid(e.args[1]) => Some("msgctl_rmid"),
        n if n == libc::SYS_shmctl && ok && rmid(e.args[1]) => Some("shmctl_rmid"),
        n if n == libc::SYS_semctl && ok && rmid(e.args[2]) => Some("semctl_rmid"),
        _ if ok => {
            record_path(tree, pid, e, now);
            None
        }
        _ => None,
    };
    if let Some(c) = counter {
        tree.bump(pid, c, now);
    }
}

/// open/creat/link/unlink/mknod families: objects created and unlinked by
/// path (a FIFO made by `mkfifo(3)` is a file).
fn record_path(tree: &mut Tree, pid: i32, e: &Entry, now: f64) {
    let nr = e.nr;
    let is_link = nr == libc::SYS_linkat || is_x86(nr, "link");
    let is_unlink = nr == libc::SYS_unlinkat || is_x86(nr, "unlink");
    if is_unlink && nr == libc::SYS_unlinkat && e.args[2] as i32 & libc::AT_REMOVEDIR != 0 {
        return;
    }
    if is_link {
        let (Some(from), Some(to)) = (&e.path, &e.path2) else {
            return;
        };
        if let (Some((k1, n1)), Some((k2, n2))) = (classify(from), classify(to)) {
            tree.forget_object(k1, &n1);
            tree.on_object(pid, k2, &n2, true, now);
        }
        return;
    }
    if let Some(path) = &e.path
        && let Some((kind, name)) = classify(path)
    {
        tree.on_object(pid, kind, &name, !is_unlink, now);
    }
}

/// `waitid(2)` returns 0 and writes the reaped child's pid into `si_pid`
/// (offset 16 of `siginfo_t` on 64-bit Linux); `WNOWAIT` leaves it unreaped.
fn reap_from_siginfo(tree: &mut Tree, pid: i32, tid: i32, e: &Entry, now: f64) {
    let (infop, options) = (e.args[2], e.args[3] as i32);
    if infop == 0 || options & libc::WNOWAIT != 0 {
        return;
    }
    let mut buf = [0u8; 4];
    if read_mem(tid, infop as usize + 16, &mut buf) == Some(4) {
        let child = i32::from_ne_bytes(buf);
        if child > 0 {
            tree.on_reap(pid, child, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_jumps_stay_inside_the_program() {
        let p = filter();
        for (pc, ins) in p.iter().enumerate() {
            if ins.code as u32 & 0x07 == libc::BPF_JMP {
                let far = if ins.code as u32 & 0xf0 == libc::BPF_JA {
                    ins.k as usize
                } else {
                    ins.jt.max(ins.jf) as usize
                };
                assert!(pc + 1 + far < p.len(), "jump at {pc} leaves the program");
            }
        }
        let rets: Vec<u32> = p.iter().rev().take(2).map(|i| i.k).collect();
        assert_eq!(rets, [SECCOMP_RET_TRACE, SECCOMP_RET_ALLOW]);
    }

    #[test]
    fn socket_addresses_name_a_unix_path_an_abstract_name_or_a_port() {
        let unix = |path: &[u8]| {
            let mut sa = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
            sa.extend_from_slice(path);
            sa
        };
        let abs = |p: &str| Some(format!("/home/me/{p}"));
        assert_eq!(
            parse_socket_address(&unix(b"/tmp/m/listener\0junk"), abs).as_deref(),
            Some("unix:/tmp/m/listener")
        );
        assert_eq!(
            parse_socket_address(&unix(b"sock\0"), abs).as_deref(),
            Some("unix:/home/me/sock")
        );
        assert_eq!(
            parse_socket_address(&unix(b"\0hidden"), abs).as_deref(),
            Some("unix:@hidden")
        );
        let mut inet = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        inet.extend_from_slice(&8080u16.to_be_bytes());
        inet.extend_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            parse_socket_address(&inet, abs).as_deref(),
            Some("inet:8080")
        );
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A0B2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(port_of_inode(table, "4242"), Some(0xA0B2));
        assert_eq!(port_of_inode(table, "4243"), None);
        // A real socket bound to port 0 gets its port at the bind.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        use std::os::fd::AsRawFd;
        assert_eq!(
            bound_port(std::process::id() as i32, listener.as_raw_fd()),
            Some(port)
        );
        let netlink = (libc::AF_NETLINK as u16).to_ne_bytes();
        assert_eq!(parse_socket_address(&netlink, abs), None);
        assert_eq!(parse_socket_address(&[1], abs), None);
    }

    #[test]
    fn paths_are_classified_as_the_ledger_lists_them() {
        assert_eq!(classify("/dev/shm/sem.lock"), Some(("sem", "/lock".into())));
        assert_eq!(classify("/dev/shm/pi_rw"), Some(("shm", "/pi_rw".into())));
        assert_eq!(classify("/dev/null"), None);
        assert_eq!(classify("/tmp/x/123"), Some(("file", "/tmp/x/123".into())));
    }
}
