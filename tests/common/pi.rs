//! The check every `pi-*` reference program must pass.

use super::audited;

/// Runs `ipckit run ID n` under the audit: the last line printed must equal
/// `pi::serial(n)` within `pi::TOLERANCE`, and the run must exit 0 and leave
/// no zombie, orphan, file or IPC object behind.
pub fn assert_pi_program(id: &str, n: u64) {
    let run = audited(id, &[&n.to_string()]);
    run.assert_clean();
    let last = run.lines().last().copied().unwrap_or_default();
    let got: f64 = last
        .parse()
        .unwrap_or_else(|_| panic!("{id} {n}: last line {last:?} is not a number"));
    let want = ipckit::pi::serial(n);
    assert!(
        (got - want).abs() <= ipckit::pi::TOLERANCE,
        "{id} {n}: printed {got}, serial gives {want}"
    );
}
