//! CATALOGUE.md section 1 and the Process programs of section 2: each
//! reference program, run under the audit, prints what the catalogue says and
//! leaves nothing behind.

mod common;

use common::audited;

#[test]
fn fork_basic_child_lines_come_first_and_finished_appears_twice() {
    let run = audited("fork-basic", &[]);
    run.assert_clean();
    let lines = run.lines();
    assert!(lines[0].starts_with("new process created"), "{lines:?}");
    assert!(lines[2].starts_with("original process"), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| **l == "program finished").count(),
        2
    );
}

#[test]
fn fork_isolation_child_write_is_invisible_to_parent() {
    let run = audited("fork-isolation", &[]);
    run.assert_clean();
    assert_eq!(run.lines(), ["a = 1", "a = 10000", "parent a : 1"]);
}
