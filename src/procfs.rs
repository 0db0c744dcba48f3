//! Reading the process table from `/proc` (`proc(5)`), Linux only.
//!
//! `/proc/<pid>/stat` is one line: `pid (comm) state ppid pgrp session ...`.
//! The command name `comm` may itself contain spaces and parentheses (a
//! program can name itself `a) R (b`), so the state is found after the *last*
//! `)` of the line, never by splitting on spaces from the start.

use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};

/// The fields of `/proc/<pid>/stat` the audit uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id (field 1).
    pub pid: i32,
    /// Command name, up to 15 bytes, as the kernel stores it (field 2).
    pub comm: String,
    /// State letter (field 3): R running, S sleeping, D disk wait, Z zombie,
    /// T stopped, t traced, X dead, I idle.
    pub state: char,
    /// Parent process id (field 4).
    pub ppid: i32,
    /// Start time in clock ticks since boot (field 22): with the pid it names
    /// one process even after the pid is reused.
    pub start_time: u64,
}

impl ProcStat {
    /// Parses the text of a `/proc/<pid>/stat` file.
    pub fn parse(line: &str) -> Result<ProcStat> {
        let bad = |why: &str| Error::invalid("/proc stat line", format!("{why}: {line:?}"));
        let open = line.find('(').ok_or_else(|| bad("no '('"))?;
        let close = line.rfind(')').ok_or_else(|| bad("no ')'"))?;
        if close < open {
            return Err(bad("')' before '('"));
        }
        let pid = line[..open].trim().parse().map_err(|_| bad("bad pid"))?;
        let comm = line[open + 1..close].to_string();
        let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
        // rest[0] is field 3 (state); field N is rest[N - 3].
        let field = |n: usize| {
            rest.get(n - 3)
                .copied()
                .ok_or_else(|| bad("too few fields"))
        };
        let num = |n: usize| field(n).and_then(|f| f.parse::<i64>().map_err(|_| bad("bad number")));
        let state = field(3)?.chars().next().ok_or_else(|| bad("empty state"))?;
        Ok(ProcStat {
            pid,
            comm,
            state,
            ppid: num(4)? as i32,
            start_time: field(22)?.parse().map_err(|_| bad("bad start time"))?,
        })
    }

    /// True for a zombie: exited, not yet reaped by its parent.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Reads `/proc/<pid>/stat`; `None` if the process does not exist (any more).
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ProcStat::parse(&text).ok()
}

/// The state letter of `pid` (`R`, `S`, `D`, `T`, `Z`, ...), or `None` if it is gone.
pub fn state_of(pid: i32) -> Option<char> {
    stat(pid).map(|s| s.state)
}

/// The command line of `pid` (`/proc/<pid>/cmdline`, NULs as spaces), for reports.
pub fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    text.trim().to_string()
}

/// The real user id of `pid` (the first number of `Uid:` in
/// `/proc/<pid>/status`), or `None` if it is gone.
pub fn uid_of(pid: i32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The processes whose real user id is `uid`, zombies left out (they have
/// exited and hold nothing but their exit status).
pub fn live_processes_of(uid: u32) -> Vec<i32> {
    snapshot()
        .values()
        .filter(|s| !s.is_zombie() && uid_of(s.pid) == Some(uid))
        .map(|s| s.pid)
        .collect()
}

/// The writable shared mappings of `pid` (`/proc/<pid>/maps`, `proc(5)`:
/// permissions `rw?s`), each as `PATH [DEV INODE]`, at most
/// [`MAX_SHARED_MAPPINGS`]. Two processes that map the same memory show the
/// same device and inode (`grade::evidence::mapping_identity`), whether it came from
/// `mmap(MAP_SHARED | MAP_ANONYMOUS)` (`/dev/zero (deleted)`), `shm_open(3)`,
/// `sem_open(3)` (`/dev/shm/sem.NAME`) or `shmat(2)` (`/SYSV...`); the path
/// may differ (` (deleted)` once unlinked). `None` if the process is gone.
pub fn shared_mappings(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    Some(parse_shared_mappings(&text))
}

/// At most this many shared mappings are noted per process.
pub const MAX_SHARED_MAPPINGS: usize = 64;

/// [`shared_mappings`] of the text of a `maps` file: one entry per mapping
/// (a region split in two by `mprotect` counts once).
pub fn parse_shared_mappings(maps: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in maps.lines() {
        if found.len() == MAX_SHARED_MAPPINGS {
            break;
        }
        // address perms offset dev inode [path]
        let mut f = line.split_whitespace();
        let (Some(_), Some(perms), Some(_), Some(dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let p = perms.as_bytes();
        if p.len() < 4 || p[1] != b'w' || p[3] != b's' {
            continue;
        }
        if seen.insert(format!("{dev} {inode}")) {
            let path = f.collect::<Vec<_>>().join(" ");
            found.push(format!("{path} [{dev} {inode}]"));
        }
    }
    found
}

/// Every process in the system right now, by pid.
pub fn snapshot() -> BTreeMap<i32, ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .map(|s| (s.pid, s))
        .collect()
}

/// The pids of every descendant of `root` in a snapshot (children,
/// grandchildren, ...), not including `root` itself.
pub fn descendants(table: &BTreeMap<i32, ProcStat>, root: i32) -> BTreeSet<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for s in table.values() {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut found = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if found.insert(child) {
                todo.push(child);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writable_shared_mappings_are_kept_once_each() {
        let maps = "\
7f8a82f79000-7f8a82f7a000 rw-s 00000000 00:1b 17619      /dev/shm/sem.mR2Nu5 (deleted)
7f8a82f7a000-7f8a82f7b000 rw-s 00000000 00:1b 17618      /dev/shm/pym-30889-mm8rnvw6 (deleted)
7f8a82f7b000-7f8a82f82000 r--s 00000000 fe:00 325745     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache
7f6af3642000-7f6af3650000 rw-p 00000000 00:00 0
7f6af3753000-7f6af3754000 rw-s 00000000 00:01 4242       /dev/zero (deleted)
7f6af3754000-7f6af3755000 rw-s 00001000 00:01 4242       /dev/zero (deleted)
";
        assert_eq!(
            parse_shared_mappings(maps),
            [
                "/dev/shm/sem.mR2Nu5 (deleted) [00:1b 17619]",
                "/dev/shm/pym-30889-mm8rnvw6 (deleted) [00:1b 17618]",
                "/dev/zero (deleted) [00:01 4242]",
            ]
        );
        let many: String = (0..100)
            .map(|i| {
                format!("7f00{i:08x}-7f01{i:08x} rw-s 00000000 00:01 {i} /dev/zero (deleted)\n")
            })
            .collect();
        assert_eq!(parse_shared_mappings(&many).len(), MAX_SHARED_MAPPINGS);
    }

    #[test]
    fn this_process_shares_a_mapping_it_made_and_not_a_private_one() {
        let size = 4096;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let shared = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(shared, libc::MAP_FAILED);
        let inode = |addr: *mut libc::c_void| {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let start = format!("{:x}-", addr as usize);
            let line = maps
                .lines()
                .find(|l| l.starts_with(&start))
                .unwrap()
                .to_string();
            line.split_whitespace().nth(4).unwrap().to_string()
        };
        let me = std::process::id() as i32;
        let found = shared_mappings(me).unwrap();
        let ino = inode(shared);
        assert!(
            found.iter().any(|k| k.ends_with(&format!(" {ino}]"))),
            "{found:?}"
        );
        // SAFETY: unmaps the mapping made above, used by nothing else.
        assert_eq!(unsafe { libc::munmap(shared, size) }, 0);
        let after = shared_mappings(me).unwrap();
        assert!(
            !after.iter().any(|k| k.ends_with(&format!(" {ino}]"))),
            "{after:?}"
        );
    }

    #[test]
    fn name_with_parentheses_and_spaces_is_parsed_after_the_last_paren() {
        let line = "42 (a) R (b c) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let s = ProcStat::parse(line).unwrap();
        assert_eq!(
            (s.pid, s.comm.as_str(), s.state, s.ppid),
            (42, "a) R (b c", 'S', 7)
        );
        assert_eq!(s.start_time, 12345);
    }

    #[test]
    fn truncated_line_is_an_error_not_a_panic() {
        assert!(ProcStat::parse("42 (x) S 1").is_err());
        assert!(ProcStat::parse("").is_err());
        assert!(ProcStat::parse("1 )x( S").is_err());
    }

    #[test]
    fn our_own_stat_is_readable() {
        let me = stat(std::process::id() as i32).expect("own /proc entry");
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw());
        assert!(matches!(me.state, 'R' | 'S'));
    }

    proptest::proptest! {
        #[test]
        fn any_command_name_round_trips(comm in "[ -~]{0,15}", state in "[RSDZTtXI]", ppid in 0i32..1_000_000) {
            let line = format!("77 ({comm}) {state} {ppid} 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n");
            let s = ProcStat::parse(&line).unwrap();
            proptest::prop_assert_eq!(s.comm, comm);
            proptest::prop_assert_eq!(s.state.to_string(), state);
            proptest::prop_assert_eq!(s.ppid, ppid);
            proptest::prop_assert_eq!(s.start_time, 99);
        }
    }
}
