//! The suite for a port of `multiprocessing.Value` and `Array`
//! (CATALOGUE.md section 5: `value-array`, `value-counter`).
//!
//! Implement [`SharedPort`] (a `Value('d')` and an `Array('i')` made
//! together) and call [`check`] or `ipckit::conformance_tests!(shared, MyShared)`.
//! The checks:
//! - `made_as_given`: `Value('d', 0.0)` reads 0.0 and `Array('i', range(10))`
//!   has length 10 and reads 0..9.
//! - `child_writes_are_visible_to_the_parent`: a child sets the value to
//!   3.1415927 and negates every element; another process then reads
//!   `3.1415927` and `[0, -1, ..., -9]` (the tutorial's program).
//! - `typecodes_hold_their_c_types`: `'d'` keeps a double exactly
//!   (`3.141592653589793`, which a float would round) and `'i'` holds a C
//!   int's extremes (`i32::MIN`, `i32::MAX`).
//! - `updates_under_the_lock_all_count`: 4 processes each add 1.0 to the
//!   value 250 times under its lock: the total is 1000.0.
//! - `lost_update_without_the_lock` (a NOTE): the same with a plain read,
//!   a yield and a write, without the lock: the note says how many of the
//!   8000 increments were lost (the tutorials' "balance" race).

use super::{Entry, Report, Verdict, deadline, finish_all, setup, show, spawn};
use crate::audit::Scope;
use crate::error::Result;

/// A port of `Value('d', value, lock=True)` with an `Array('i', items)`.
///
/// # Contract
/// - Both are made (`new`) in the check runner before `fork(2)` and live
///   in memory the children share; children end with `_exit(2)` without
///   dropping them; the runner drops them once and must remove any named
///   object (shared memory under a name of your own is checked too).
/// - Every method is called in forked children of a multi-threaded process
///   (see [`super`]).
/// - Items are `f64` for the value (typecode `'d'`) and `i32` for the array
///   (`'i'`); an index out of range is an error, never a panic.
pub trait SharedPort: Sized {
    /// `Value('d', value)` and `Array('i', items)`.
    fn new(value: f64, items: &[i32]) -> Result<Self>;
    /// `value.value`.
    fn value(&self) -> Result<f64>;
    /// `value.value = x`.
    fn set_value(&self, x: f64) -> Result<()>;
    /// `with value.get_lock(): value.value += delta`.
    fn add_under_lock(&self, delta: f64) -> Result<()>;
    /// `len(array)`.
    fn len(&self) -> usize;
    /// `len(array) == 0`.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `array[i]`.
    fn get(&self, i: usize) -> Result<i32>;
    /// `array[i] = x`.
    fn set(&self, i: usize, x: i32) -> Result<()>;
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: SharedPort + 'static>() -> Vec<Entry> {
    vec![
        Entry::required(
            "made_as_given",
            "Value('d', 0.0) reads 0.0; Array('i', range(10)) reads 0..9",
            made::<P>,
        ),
        Entry::required(
            "child_writes_are_visible_to_the_parent",
            "what a child writes to the value and the array, another process reads",
            visible::<P>,
        ),
        Entry::required(
            "typecodes_hold_their_c_types",
            "'d' holds a double exactly and 'i' a C int's extremes",
            typecodes::<P>,
        ),
        Entry::required(
            "updates_under_the_lock_all_count",
            "4 processes x 250 increments under the value's lock add up to 1000",
            |s| increments::<P>(s, true),
        ),
        Entry::noted(
            "lost_update_without_the_lock",
            "(a property) increments without the lock lose updates",
            |s| increments::<P>(s, false),
        ),
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: SharedPort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("shared", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: SharedPort + 'static>(name: &str) {
    super::run_one("shared", checks::<P>(), name)
}

/// The value the tutorial's child writes (not `PI`: the tutorial's own digits).
#[allow(clippy::approx_constant)]
const TUTORIAL_PI: f64 = 3.1415927;

const TEN: [i32; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// In a child: the value and every item, or what failed.
fn read_all<P: SharedPort>(p: &P) -> std::result::Result<(f64, Vec<i32>), String> {
    let value = p
        .value()
        .map_err(|e| format!("reading the value failed: {e}"))?;
    let items: Result<Vec<i32>> = (0..p.len()).map(|i| p.get(i)).collect();
    Ok((
        value,
        items.map_err(|e| format!("reading the array failed: {e}"))?,
    ))
}

fn made<P: SharedPort>(scope: &mut Scope) -> Verdict {
    let p = setup("new(0.0, range(10))", P::new(0.0, &TEN))?;
    spawn(scope, "reading process", || match read_all(&p)? {
        (v, items) if v == 0.0 && items == TEN => Ok(format!("value {v}, array {items:?}")),
        (v, items) => Err(format!(
            "value {v}, array {items:?}; expected 0.0 and {TEN:?}"
        )),
    })?
    .finish(deadline())
}

fn visible<P: SharedPort>(scope: &mut Scope) -> Verdict {
    let p = setup("new(0.0, range(10))", P::new(0.0, &TEN))?;
    let by = deadline();
    spawn(scope, "writing child", || {
        p.set_value(TUTORIAL_PI)
            .map_err(|e| format!("setting the value failed: {e}"))?;
        for i in 0..p.len() {
            let x = p.get(i).map_err(|e| format!("array[{i}] failed: {e}"))?;
            p.set(i, -x)
                .map_err(|e| format!("array[{i}] = {} failed: {e}", -x))?;
        }
        Ok(String::new())
    })?
    .finish(by)?;
    let want: Vec<i32> = TEN.iter().map(|x| -x).collect();
    spawn(scope, "reading process", || match read_all(&p)? {
        (v, items) if v == TUTORIAL_PI && items == want => Ok(format!("read {v} and {items:?}")),
        (v, items) => Err(format!(
            "read {v} and {items:?}; expected 3.1415927 and {want:?}"
        )),
    })?
    .finish(by)
}

fn typecodes<P: SharedPort>(scope: &mut Scope) -> Verdict {
    let p = setup("new(0.0, [0, 0])", P::new(0.0, &[0, 0]))?;
    let by = deadline();
    let pi = std::f64::consts::PI;
    spawn(scope, "writing child", || {
        p.set_value(pi)
            .map_err(|e| format!("setting the value failed: {e}"))?;
        p.set(0, i32::MIN)
            .map_err(|e| format!("array[0] = i32::MIN failed: {e}"))?;
        p.set(1, i32::MAX)
            .map_err(|e| format!("array[1] = i32::MAX failed: {e}"))?;
        Ok(String::new())
    })?
    .finish(by)?;
    spawn(scope, "reading process", || match read_all(&p)? {
        (v, items) if v == pi && items == [i32::MIN, i32::MAX] => {
            Ok(format!("'d' kept {v:?} exactly; 'i' kept {items:?}"))
        }
        (v, items) => Err(format!(
            "read {v:?} and {items:?}; expected {pi:?} and {:?}",
            [i32::MIN, i32::MAX]
        )),
    })?
    .finish(by)
}

/// Processes and increments each in the counter checks.
const WORKERS: usize = 4;

fn increments<P: SharedPort>(scope: &mut Scope, locked: bool) -> Verdict {
    let p = setup("new(0.0, [])", P::new(0.0, &[]))?;
    let rounds = if locked { 250 } else { 2000 };
    let by = deadline();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(spawn(scope, "incrementing process", || {
            for i in 0..rounds {
                let done = if locked {
                    p.add_under_lock(1.0)
                } else {
                    let v = p.value();
                    std::thread::yield_now();
                    v.and_then(|v| p.set_value(v + 1.0))
                };
                done.map_err(|e| format!("increment {i} failed: {e}"))?;
            }
            Ok(String::new())
        })?);
    }
    finish_all(workers, by)?;
    let want = (WORKERS * rounds) as f64;
    let total = spawn(scope, "reading process", || {
        p.value()
            .map(|v| v.to_string())
            .map_err(|e| format!("reading the total failed: {e}"))
    })?
    .finish(by)?;
    let got: f64 = total.parse().map_err(|_| format!("read {total}"))?;
    match (locked, got == want) {
        (true, true) => Ok(format!(
            "{WORKERS} processes x {rounds} increments under the lock: {got}"
        )),
        (true, false) => Err(format!(
            "{WORKERS} processes x {rounds} increments under the lock: {got}, expected {want}"
        )),
        (false, _) => Ok(format!(
            "{WORKERS} processes x {rounds} unlocked increments: {got} of {want} ({} lost)",
            show::<f64>(&Ok(want - got))
        )),
    }
}
