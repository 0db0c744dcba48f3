//! The number rule (`[[output.number]]`): the port's standard output must
//! hold a number within a tolerance of an expected value. The value is the
//! rule's own `expect`, or, per run, the run's `expect.NAME` for a rule
//! called `NAME` (a run's value wins over the rule's):
//!
//! ```toml
//! [[run]]
//! args = ["5"]
//! expect = { factorial = 120 }
//!
//! [[output.number]]
//! name = "factorial"        # each run's `expect.factorial`
//! regex = '=\s*(\S+)'       # where the number is (default: anywhere)
//! tolerance = 0             # absolute (default 0: exactly)
//! pick = "last"             # which number found: last (default), first, any
//! ```
//!
//! Numbers are decimal (`42`, `-3.5`, `1e-9`, `.5`). With a `regex`, each
//! match on each line gives its capture `value`, else its first group, else
//! the whole match, and the numbers are read from those; without one, from
//! the whole output. Judging a run costs one pass over its kept output.

use super::checks::Run;
use super::spec::{Problem, RunSpec, Spec};
use regex::Regex;
use serde::Deserialize;

/// One `[[output.number]]` rule.
#[derive(Debug, Clone, Deserialize)]
pub struct NumberRule {
    /// The value's name: each run may give its expected value as
    /// `expect.NAME`; also names the rule in the report.
    #[serde(default)]
    pub name: Option<String>,
    /// The expected value for every run that gives none of its own.
    #[serde(default)]
    pub expect: Option<f64>,
    /// How far the printed number may be from the expected one (absolute;
    /// default 0: exactly).
    #[serde(default)]
    pub tolerance: f64,
    /// Where the number is: a regex matched against each line (the capture
    /// `value`, else group 1, else the whole match). Default: anywhere.
    #[serde(default)]
    pub regex: Option<String>,
    /// Which of the numbers found is judged.
    #[serde(default)]
    pub pick: Pick,
}

/// Which of the numbers found a [`NumberRule`] judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// The last one (as `pi`: a port may print progress first).
    #[default]
    Last,
    /// The first one.
    First,
    /// Any one of them.
    Any,
}

/// The expected value of `rule` in a run: the run's `expect.NAME`, else the
/// rule's `expect`.
pub fn expected(rule: &NumberRule, run: Option<&RunSpec>) -> Option<f64> {
    rule.name
        .as_ref()
        .and_then(|n| run.and_then(|r| r.expect.get(n)))
        .copied()
        .or(rule.expect)
}

/// The spec's number rules and the runs' `expect` tables (called by
/// [`super::spec::check`]).
pub fn validate(spec: &Spec, problems: &mut Vec<Problem>) {
    let rules = &spec.output.number;
    for (i, rule) in rules.iter().enumerate() {
        let key = |k: &str| format!("output.number[{i}].{k}");
        if !(rule.tolerance.is_finite() && rule.tolerance >= 0.0) {
            problems.push(Problem::new(
                key("tolerance"),
                format!("{} must be a finite number, 0 or more", rule.tolerance),
            ));
        }
        if rule.expect.is_some_and(|v| !v.is_finite()) {
            problems.push(Problem::new(key("expect"), "must be a finite number"));
        }
        if let Some(re) = &rule.regex
            && let Err(e) = Regex::new(re)
        {
            problems.push(Problem::new(key("regex"), format!("bad regex {re:?}: {e}")));
        }
        if let Some(name) = &rule.name
            && rules[..i].iter().any(|r| r.name.as_ref() == Some(name))
        {
            problems.push(Problem::new(
                key("name"),
                format!("two number rules are called {name:?}"),
            ));
        }
        if let Some(j) = spec
            .runs
            .iter()
            .position(|r| expected(rule, Some(r)).is_none())
        {
            problems.push(Problem::new(
                key("expect"),
                format!(
                    "run[{j}] has no expected value: give the rule an `expect`, or give it a \
                     `name` and every run `expect = {{ NAME = value }}`"
                ),
            ));
        }
    }
    for (j, run) in spec.runs.iter().enumerate() {
        for (name, v) in &run.expect {
            let key = format!("run[{j}].expect.{name}");
            if !rules.iter().any(|r| r.name.as_ref() == Some(name)) {
                problems.push(Problem::new(key, "no [[output.number]] rule has this name"));
            } else if !v.is_finite() {
                problems.push(Problem::new(key, "must be a finite number"));
            }
        }
    }
}

/// Judges every number rule on one run's output `text`: a sentence each,
/// in `notes` when it held, in `problems` when not (called by the `output`
/// check).
pub fn check(
    spec: &Spec,
    run: &Run,
    text: &str,
    problems: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let plan = spec.runs.get(run.index);
    for (i, rule) in spec.output.number.iter().enumerate() {
        let label = rule
            .name
            .clone()
            .unwrap_or_else(|| format!("number rule {}", i + 1));
        let Some(want) = expected(rule, plan) else {
            continue; // refused by validate
        };
        let found = numbers_in(rule, text);
        match judge(rule, want, &found) {
            Ok(got) => notes.push(format!(
                "{label}: printed {got}, expected {want} (within {})",
                rule.tolerance
            )),
            Err(why) => problems.push(format!("{label}: {why}")),
        }
    }
}

/// The numbers of `text` the rule looks at, in order.
fn numbers_in(rule: &NumberRule, text: &str) -> Vec<f64> {
    let number = Regex::new(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?").expect("valid");
    let places: Vec<&str> = match &rule.regex {
        None => vec![text],
        Some(r) => {
            let re = Regex::new(r).expect("validated");
            text.lines()
                .flat_map(|line| re.captures_iter(line).collect::<Vec<_>>())
                .filter_map(|c| c.name("value").or(c.get(1)).or(c.get(0)))
                .map(|m| m.as_str())
                .collect()
        }
    };
    places
        .iter()
        .flat_map(|p| number.find_iter(p))
        .filter_map(|m| m.as_str().parse::<f64>().ok())
        .collect()
}

/// The number judged, when within the tolerance; else why not.
fn judge(rule: &NumberRule, want: f64, found: &[f64]) -> Result<f64, String> {
    let tol = rule.tolerance;
    let within = |v: f64| (v - want).abs() <= tol;
    let chosen = match rule.pick {
        Pick::Last => found.last(),
        Pick::First => found.first(),
        Pick::Any => found.iter().find(|v| within(**v)).or(found.last()),
    };
    let place = if rule.regex.is_some() {
        " where the rule's regex looks"
    } else {
        ""
    };
    match chosen.copied() {
        None => Err(format!("no number printed{place} (expected {want})")),
        Some(got) if within(got) => Ok(got),
        Some(got) if rule.pick == Pick::Any => Err(format!(
            "none of the {} number(s) printed{place} is within {tol} of {want} (the last was {got})",
            found.len()
        )),
        Some(got) => Err(format!(
            "printed {got} but expected {want} (off by {}; tolerance {tol})",
            (got - want).abs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml: &str) -> NumberRule {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn the_last_number_is_judged_within_the_tolerance() {
        let r = rule("expect = 42.0\ntolerance = 0.5");
        assert_eq!(
            judge(&r, 42.0, &numbers_in(&r, "step 1\nanswer 42.4\n")),
            Ok(42.4)
        );
        let e = judge(&r, 42.0, &numbers_in(&r, "answer 42.6\n")).unwrap_err();
        assert!(
            e.contains("printed 42.6 but expected 42") && e.contains("tolerance 0.5"),
            "{e}"
        );
        let e = judge(&r, 42.0, &numbers_in(&r, "no digits here\n")).unwrap_err();
        assert!(e.contains("no number printed"), "{e}");
    }

    #[test]
    fn a_regex_says_where_the_number_is() {
        let r = rule("expect = 7.0\nregex = 'total\\D*(\\S+)'\npick = \"first\"");
        let found = numbers_in(&r, "3 items\ntotal: 7\ntotal: 8\n");
        assert_eq!(found, vec![7.0, 8.0]);
        assert_eq!(judge(&r, 7.0, &found), Ok(7.0));
    }

    #[test]
    fn any_passes_when_one_number_is_close_enough() {
        let r = rule("expect = 1e-3\ntolerance = 1e-6\npick = \"any\"");
        let found = numbers_in(&r, "x=5 y=.001 z=-2.5e1");
        assert_eq!(found, vec![5.0, 0.001, -25.0]);
        assert_eq!(judge(&r, 1e-3, &found), Ok(0.001));
        let e = judge(&r, 2.0, &found).unwrap_err();
        assert!(e.contains("none of the 3 number(s)"), "{e}");
    }

    #[test]
    fn a_runs_value_wins_over_the_rules() {
        let r = rule("name = \"sum\"\nexpect = 1.0");
        let mut run = RunSpec::default();
        assert_eq!(expected(&r, Some(&run)), Some(1.0));
        run.expect.insert("sum".into(), 9.0);
        assert_eq!(expected(&r, Some(&run)), Some(9.0));
        assert_eq!(expected(&rule("name = \"x\""), Some(&run)), None);
    }
}
