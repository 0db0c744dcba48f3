//! The spread of a figure's samples, and the units figures are shown in.

use serde::{Deserialize, Serialize};

/// How a benchmark's figures are expressed. Samples are taken in seconds per
/// operation (or operations per second for [`Unit::PerSecond`]) and scaled once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Nanoseconds per operation (lower is better).
    #[serde(rename = "ns")]
    Nanos,
    /// Microseconds per operation (lower is better).
    #[serde(rename = "us")]
    Micros,
    /// Milliseconds per operation (lower is better).
    #[serde(rename = "ms")]
    Millis,
    /// Operations per second (higher is better).
    #[serde(rename = "ops/s")]
    PerSecond,
}

impl Unit {
    /// The factor from a sample (seconds, or per second) to this unit.
    pub fn scale(self) -> f64 {
        match self {
            Unit::Nanos => 1e9,
            Unit::Micros => 1e6,
            Unit::Millis => 1e3,
            Unit::PerSecond => 1.0,
        }
    }

    /// How tables show the unit.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Nanos => "ns/op",
            Unit::Micros => "us/op",
            Unit::Millis => "ms/op",
            Unit::PerSecond => "ops/s",
        }
    }

    /// True when a bigger figure is better.
    pub fn higher_is_better(self) -> bool {
        self == Unit::PerSecond
    }
}

/// min, quartiles, median and max of some samples, in a benchmark's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The smallest sample.
    pub min: f64,
    /// The first quartile (the median of the lower half).
    pub q1: f64,
    /// The median.
    pub median: f64,
    /// The third quartile (the median of the upper half).
    pub q3: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples.
    pub runs: usize,
}

impl Stats {
    /// The statistics of `samples` (at least one, none NaN), scaled by `scale`.
    pub fn of(samples: &[f64], scale: f64) -> Option<Stats> {
        let mut s: Vec<f64> = samples.iter().map(|x| x * scale).collect();
        if s.is_empty() || s.iter().any(|x| !x.is_finite()) {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let n = s.len();
        Some(Stats {
            min: s[0],
            q1: median(&s[..n / 2 + n % 2]),
            median: median(&s),
            q3: median(&s[n / 2..]),
            max: s[n - 1],
            runs: n,
        })
    }
}

/// The median of sorted samples.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_order_min_quartiles_median_max() {
        let s = Stats::of(&[5.0, 1.0, 4.0, 2.0, 3.0], 1.0).unwrap();
        assert_eq!(
            (s.min, s.q1, s.median, s.q3, s.max),
            (1.0, 2.0, 3.0, 4.0, 5.0)
        );
        let s = Stats::of(&[4.0, 1.0, 3.0, 2.0], 10.0).unwrap();
        assert_eq!(
            (s.min, s.q1, s.median, s.q3, s.max),
            (10.0, 15.0, 25.0, 35.0, 40.0)
        );
        assert_eq!(s.runs, 4);
    }

    #[test]
    fn no_samples_or_nan_give_no_stats() {
        assert_eq!(Stats::of(&[], 1.0), None);
        assert_eq!(Stats::of(&[1.0, f64::NAN], 1.0), None);
    }

    proptest::proptest! {
        #[test]
        fn min_le_q1_le_median_le_q3_le_max(v in proptest::collection::vec(-1e9f64..1e9, 1..40)) {
            let s = Stats::of(&v, 1.0).unwrap();
            proptest::prop_assert!(s.min <= s.q1 && s.q1 <= s.median);
            proptest::prop_assert!(s.median <= s.q3 && s.q3 <= s.max);
        }
    }
}
