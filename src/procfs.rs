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
