//! The pi workload shared by every `pi-*` exercise (CATALOGUE.md section 7).
//!
//! pi/8 = sum over k >= 0 of 1/(2k+1)^2. With n terms split into [`PARTS`]
//! equal slices (slice i covers k in [i*n/10, (i+1)*n/10)), each child sums its
//! slice, the parent adds the partial sums s and prints sqrt(8 * s). The exact
//! float depends on the order of addition, so results are compared within
//! [`TOLERANCE`], never bit for bit.

use crate::error::{Error, Result};
use std::ops::Range;

/// The number of terms when no n is given.
pub const DEFAULT_N: u64 = 10_000_000;
/// How many slices (children) the work is split into.
pub const PARTS: u64 = 10;
/// How far two correct answers may differ (different orders of addition).
pub const TOLERANCE: f64 = 1e-9;

/// Reads n from the program's first argument (default [`DEFAULT_N`]); it must
/// be a positive multiple of [`PARTS`].
pub fn parse_n(args: &[String]) -> Result<u64> {
    let Some(arg) = args.first() else {
        return Ok(DEFAULT_N);
    };
    let n: u64 = arg
        .parse()
        .map_err(|_| Error::invalid("n", format!("{arg:?} is not a whole number of terms")))?;
    if n == 0 || !n.is_multiple_of(PARTS) {
        return Err(Error::invalid(
            "n",
            format!("{n} must be a positive multiple of {PARTS}"),
        ));
    }
    Ok(n)
}

/// The terms k of slice `i` of `n`.
pub fn slice(i: u64, n: u64) -> Range<u64> {
    i * n / PARTS..(i + 1) * n / PARTS
}

/// The sum of 1/(2k+1)^2 over `ks`, in increasing k.
pub fn partial_sum(ks: Range<u64>) -> f64 {
    ks.map(|k| {
        let d = (2 * k + 1) as f64;
        1.0 / (d * d)
    })
    .sum()
}

/// pi from the total of the partial sums: sqrt(8 * s).
pub fn pi_from(total: f64) -> f64 {
    (8.0 * total).sqrt()
}

/// The answer computed in one process, slices added in order: what every
/// `pi-*` program must match within [`TOLERANCE`].
pub fn serial(n: u64) -> f64 {
    pi_from((0..PARTS).map(|i| partial_sum(slice(i, n))).sum())
}

/// Prints the answer the way every `pi-*` program does: one line, the
/// shortest decimal that round-trips (as Python's `print` does).
pub fn print_answer(pi: f64) {
    println!("{pi}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_n_gives_the_tutorials_digits() {
        assert_eq!(format!("{:.11}", serial(DEFAULT_N)), "3.14159262176");
    }

    #[test]
    fn bad_n_is_refused_with_a_reason() {
        for bad in ["0", "15", "-10", "ten"] {
            let e = parse_n(&[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains("n"), "{e}");
        }
        assert_eq!(parse_n(&[]).unwrap(), DEFAULT_N);
    }

    proptest::proptest! {
        #[test]
        fn slices_cover_every_term_exactly_once(tens in 1u64..100_000) {
            let n = tens * PARTS;
            let mut next = 0;
            for i in 0..PARTS {
                let s = slice(i, n);
                proptest::prop_assert_eq!(s.start, next);
                next = s.end;
            }
            proptest::prop_assert_eq!(next, n);
        }
    }
}
