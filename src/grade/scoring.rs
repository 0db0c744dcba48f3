//! Points, visibility and tags: the `[scoring]` table of a spec, and the
//! score of a grade.
//!
//! ```toml
//! [scoring]
//! visibility = "visible"      # every test's default: visible, hidden, after_due_date, after_published
//! tags = ["pipes"]            # given to every test
//! runs = [2, 3]               # points per [[run]], earned when that run passes every check
//!
//! [scoring.checks.output]
//! points = 4
//! visibility = "after_due_date"
//! tags = ["output"]
//! ```
//!
//! Without a `[scoring]` table every check that applies to the exercise is
//! worth 1 point (a check applies unless the spec asks nothing of it: no
//! output rule, no mechanism evidence) and the runs are worth nothing, so
//! today's specs keep their meaning. The maximum of an exercise is fixed by
//! its spec: a port that could not be graded scores 0 out of that maximum,
//! and a check that was skipped scores 0 and is never shown as passed.

use super::spec::Spec;
use super::{Grade, Status};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The seven checks, in their fixed order.
pub const CHECKS: [&str; 7] = [
    "output",
    "exit",
    "time",
    "zombies",
    "orphans",
    "leaks",
    "mechanism",
];

/// Who sees a test on Gradescope (its documented `visibility` values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Shown to the student at once.
    #[default]
    Visible,
    /// Never shown to the student.
    Hidden,
    /// Shown once the due date has passed.
    AfterDueDate,
    /// Shown once the grades are published.
    AfterPublished,
}

/// The `[scoring]` table of a spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// Every test's visibility unless its check says otherwise.
    #[serde(default)]
    pub visibility: Visibility,
    /// Tags given to every test.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Points per `[[run]]`, in order: earned when that run passes every check.
    #[serde(default)]
    pub runs: Vec<Points>,
    /// Per check (`output`, `exit`, ...): points, visibility, tags.
    #[serde(default)]
    pub checks: BTreeMap<CheckName, CheckScoring>,
}

/// A check's name, as a `[scoring.checks.NAME]` key (others are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum CheckName {
    Output,
    Exit,
    Time,
    Zombies,
    Orphans,
    Leaks,
    Mechanism,
}

impl CheckName {
    fn as_str(self) -> &'static str {
        CHECKS[self as usize]
    }
}

/// A number of points: finite and not negative (checked when the spec is read).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Points(pub f64);

impl TryFrom<f64> for Points {
    type Error = String;
    fn try_from(v: f64) -> std::result::Result<Self, String> {
        if v.is_finite() && v >= 0.0 {
            Ok(Points(v))
        } else {
            Err(format!("{v} points: must be a number of points, 0 or more"))
        }
    }
}

/// One check's scoring.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckScoring {
    /// Its points (default 1 when the check applies, else 0).
    pub points: Option<Points>,
    /// Its visibility (default: the table's).
    pub visibility: Option<Visibility>,
    /// More tags for this check's test.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A spec's scoring, resolved: what each check and run is worth.
#[derive(Debug, Clone, PartialEq)]
pub struct Marks {
    /// Per check, in [`CHECKS`] order.
    pub checks: Vec<Mark>,
    /// Points per run, in order (empty: the runs are worth nothing of their own).
    pub runs: Vec<f64>,
    /// The default visibility.
    pub visibility: Visibility,
    /// The spec's own tags.
    pub tags: Vec<String>,
}

/// What one check is worth.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// The check's name.
    pub name: &'static str,
    /// Its points.
    pub points: f64,
    /// Who sees it.
    pub visibility: Visibility,
    /// Its tags.
    pub tags: Vec<String>,
}

impl Default for Marks {
    /// One point per check: the marks of an exercise whose spec is unknown.
    fn default() -> Self {
        Marks {
            checks: CHECKS
                .iter()
                .map(|name| Mark {
                    name,
                    points: 1.0,
                    visibility: Visibility::Visible,
                    tags: Vec::new(),
                })
                .collect(),
            runs: Vec::new(),
            visibility: Visibility::Visible,
            tags: Vec::new(),
        }
    }
}

/// True when the spec asks something of the check (an `output` rule,
/// `mechanism` evidence); the other checks always apply.
pub fn applies(spec: &Spec, check: &str) -> bool {
    let o = &spec.output;
    match check {
        "output" => o.asks_anything() || spec.runs.iter().any(|r| r.lines.is_some()),
        "mechanism" => !spec.mechanism.is_empty(),
        _ => true,
    }
}

impl Marks {
    /// The marks of a spec; more run points than `[[run]]`s is an error.
    pub fn of(spec: &Spec) -> Result<Marks> {
        let s = &spec.scoring;
        if s.runs.len() > spec.runs.len() {
            return Err(Error::invalid(
                "exercise spec",
                format!(
                    "{}: key `scoring.runs` gives points to {} runs but the spec has {}",
                    spec.id,
                    s.runs.len(),
                    spec.runs.len()
                ),
            ));
        }
        let checks = CHECKS
            .iter()
            .map(|name| {
                let own = s
                    .checks
                    .iter()
                    .find(|(k, _)| k.as_str() == *name)
                    .map(|(_, v)| v);
                let default = if applies(spec, name) { 1.0 } else { 0.0 };
                let mut tags = s.tags.clone();
                tags.extend(own.map(|o| o.tags.clone()).unwrap_or_default());
                Mark {
                    name,
                    points: own.and_then(|o| o.points).map_or(default, |p| p.0),
                    visibility: own.and_then(|o| o.visibility).unwrap_or(s.visibility),
                    tags,
                }
            })
            .collect();
        Ok(Marks {
            checks,
            runs: s.runs.iter().map(|p| p.0).collect(),
            visibility: s.visibility,
            tags: s.tags.clone(),
        })
    }

    /// The most a port can score.
    pub fn max(&self) -> f64 {
        self.checks.iter().map(|m| m.points).sum::<f64>() + self.runs.iter().sum::<f64>()
    }
}

/// How one scored item (a check or a run) came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Held: full points.
    Passed,
    /// Failed: no points.
    Failed,
    /// Not checked (skipped, or the grade could not run): no points, never "passed".
    NotChecked,
}

/// One scored item of a grade.
#[derive(Debug, Clone)]
pub struct Item {
    /// `output`, `exit`, ... or `run 1000` for a run's points.
    pub name: String,
    /// Points earned.
    pub score: f64,
    /// Points possible.
    pub max: f64,
    /// How it came out.
    pub outcome: Outcome,
    /// Who sees it.
    pub visibility: Visibility,
    /// Its tags.
    pub tags: Vec<String>,
}

/// A grade's score: the items and the totals.
#[derive(Debug, Clone)]
pub struct Score {
    /// One item per check, then one per run that is worth points.
    pub items: Vec<Item>,
    /// Points earned.
    pub score: f64,
    /// The exercise's maximum (fixed by the spec, whatever happened).
    pub max: f64,
}

/// Scores a grade with its marks.
pub fn score(g: &Grade) -> Score {
    let m = &g.marks;
    let mut items: Vec<Item> = m
        .checks
        .iter()
        .map(|mark| {
            let outcome = match g
                .checks
                .iter()
                .find(|c| c.name == mark.name)
                .map(|c| c.status)
            {
                Some(Status::Pass) => Outcome::Passed,
                Some(Status::Fail) => Outcome::Failed,
                Some(Status::Skip) | None => Outcome::NotChecked,
            };
            item(
                mark.name.to_string(),
                mark.points,
                outcome,
                mark.visibility,
                &mark.tags,
            )
        })
        .collect();
    for (i, points) in m.runs.iter().enumerate() {
        let run = g.runs.get(i);
        let outcome = match run {
            Some(r) if r.passed => Outcome::Passed,
            Some(_) => Outcome::Failed,
            None => Outcome::NotChecked,
        };
        let name = match run.map(|r| r.args.join(" ")) {
            Some(a) if !a.is_empty() => format!("run {a}"),
            _ => format!("run {}", i + 1),
        };
        items.push(item(name, *points, outcome, m.visibility, &m.tags));
    }
    Score {
        score: items.iter().map(|i| i.score).sum(),
        max: m.max(),
        items,
    }
}

fn item(name: String, max: f64, outcome: Outcome, visibility: Visibility, tags: &[String]) -> Item {
    Item {
        name,
        score: if outcome == Outcome::Passed { max } else { 0.0 },
        max,
        outcome,
        visibility,
        tags: tags.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        let text = format!(
            "id = \"x\"\nsummary = \"s\"\n[[run]]\nargs = [\"1\"]\n[[run]]\nargs = [\"2\"]\n[output]\nlines = [\"a\"]\n{extra}"
        );
        super::super::spec::parse("x.toml", &text).unwrap()
    }

    #[test]
    fn without_a_scoring_table_each_applicable_check_is_worth_one_point() {
        let m = Marks::of(&spec("")).unwrap();
        let points: Vec<f64> = m.checks.iter().map(|c| c.points).collect();
        // no mechanism evidence asked: that check is worth nothing
        assert_eq!(points, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(m.max(), 6.0);
    }

    #[test]
    fn points_visibility_and_tags_come_from_the_table() {
        let m = Marks::of(&spec(
            "[scoring]\nvisibility = \"hidden\"\ntags = [\"t\"]\nruns = [2, 3]\n[scoring.checks.output]\npoints = 4\nvisibility = \"after_due_date\"\ntags = [\"o\"]\n",
        ))
        .unwrap();
        assert_eq!(m.checks[0].points, 4.0);
        assert_eq!(m.checks[0].visibility, Visibility::AfterDueDate);
        assert_eq!(m.checks[0].tags, ["t", "o"]);
        assert_eq!(m.checks[1].visibility, Visibility::Hidden);
        assert_eq!(m.max(), 4.0 + 5.0 + 5.0);
    }

    #[test]
    fn bad_scoring_is_refused() {
        let parse = |extra: &str| {
            let text = format!("id = \"x\"\nsummary = \"s\"\n{extra}");
            super::super::spec::parse("x.toml", &text)
        };
        assert!(parse("[scoring.checks.speed]\npoints = 1\n").is_err());
        assert!(parse("[scoring.checks.exit]\npoints = -1\n").is_err());
        assert!(parse("[scoring]\nvisibility = \"secret\"\n").is_err());
        let two_runs_one_spec_run = parse("[scoring]\nruns = [1, 1]\n").unwrap();
        assert!(Marks::of(&two_runs_one_spec_run).is_err());
    }
}
