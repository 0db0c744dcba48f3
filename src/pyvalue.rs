//! Python values: the small dynamic type the tutorials' messages and managed
//! objects are made of, printed like Python's `repr`.
//!
//! `conn.send([42, None, 'hello'])` pickles a list holding an int, `None` and a
//! string; a Python manager holds any picklable object. Rust has no such
//! dynamic value, so [`PyValue`] models the kinds the tutorials use: `None`,
//! `bool`, `int`, `float`, `str`, `bytes`, `list`, `tuple` and `dict`. It
//! travels through any serde channel (postcard frames), and its `Display` is
//! Python's `repr`, so `[42, None, 'hello']`, `('Computers', 1)` and `'x'`
//! print as they do in Python. [`Op`] is Python's `+=` / `*=` on them.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Display, Formatter, Write};

/// A dynamically typed value, as a Python manager's objects hold them.
///
/// Decoding refuses values nested deeper than [`MAX_DEPTH`] (see there).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PyValue {
    /// Python's `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` (64 bits here; overflow is an error, not a bigint).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` object.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<PyValue>),
    /// A `tuple`.
    Tuple(Vec<PyValue>),
    /// A `dict`, in insertion order (as Python's).
    Dict(Vec<(PyValue, PyValue)>),
}

/// How deeply lists, tuples and dicts may nest in a decoded [`PyValue`].
///
/// Decoding, cloning, printing and dropping a value all recurse once per
/// level: a 200 KB message nesting lists 100,000 deep would overflow the
/// stack of the process decoding it (a manager's server, aborting for every
/// client). So decoding counts the levels and fails past this one, before
/// the stack is at risk (`serde_json` has the same limit).
pub const MAX_DEPTH: usize = 128;

thread_local! {
    /// The nesting level of the value being decoded on this thread.
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The derived decoder of [`PyValue`] (serde's "remote" derive), which
/// [`PyValue`]'s own `Deserialize` wraps with the depth count.
#[derive(Deserialize)]
#[serde(remote = "PyValue")]
enum ValueDef {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    Dict(Vec<(PyValue, PyValue)>),
}

impl<'de> Deserialize<'de> for PyValue {
    /// Decodes one level, failing past [`MAX_DEPTH`] levels.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<PyValue, D::Error> {
        let depth = DEPTH.with(|c| c.replace(c.get() + 1));
        let value = if depth >= MAX_DEPTH {
            Err(serde::de::Error::custom(format!(
                "a value nested more than {MAX_DEPTH} levels deep"
            )))
        } else {
            ValueDef::deserialize(d)
        };
        DEPTH.with(|c| c.set(depth));
        value
    }
}

/// An update the server applies in one step ([`NamespaceProxy::update`](crate::manager::NamespaceProxy::update)),
/// so that no other process can act between the read and the write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `x += v` (numbers add; strings, lists and tuples concatenate).
    Add(PyValue),
    /// `x *= v` (numbers multiply; a string or list times an int repeats).
    Mul(PyValue),
}

impl PyValue {
    /// The tutorials' message `[42, None, 'hello']`.
    pub fn hello() -> PyValue {
        PyValue::List(vec![
            PyValue::Int(42),
            PyValue::None,
            PyValue::Str("hello".into()),
        ])
    }

    /// The integer inside, or an error naming what was found instead.
    pub fn as_int(&self) -> Result<i64> {
        match self {
            PyValue::Int(i) => Ok(*i),
            other => Err(type_error("an int", other)),
        }
    }

    /// The number inside as a float (an `int` converts), or an error.
    pub fn as_float(&self) -> Result<f64> {
        match self {
            PyValue::Float(f) => Ok(*f),
            PyValue::Int(i) => Ok(*i as f64),
            other => Err(type_error("a float", other)),
        }
    }

    /// The string inside, or an error.
    pub fn as_str(&self) -> Result<&str> {
        match self {
            PyValue::Str(s) => Ok(s),
            other => Err(type_error("a str", other)),
        }
    }

    /// The items of a list or tuple, or an error.
    pub fn as_items(&self) -> Result<&[PyValue]> {
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Ok(v),
            other => Err(type_error("a list or tuple", other)),
        }
    }

    /// Python's type name of the value (`'int'`, `'str'`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Bytes(_) => "bytes",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
        }
    }

    /// Applies `op` the way Python's `+=` / `*=` would, returning the new value.
    pub fn apply(&self, op: &Op) -> Result<PyValue> {
        match op {
            Op::Add(rhs) => self.add(rhs),
            Op::Mul(rhs) => self.mul(rhs),
        }
    }

    fn add(&self, rhs: &PyValue) -> Result<PyValue> {
        use PyValue::*;
        Ok(match (self, rhs) {
            (Int(a), Int(b)) => Int(a.checked_add(*b).ok_or_else(|| overflow("+", self, rhs))?),
            (Int(_) | Float(_), Int(_) | Float(_)) => Float(self.as_float()? + rhs.as_float()?),
            (Str(a), Str(b)) => Str(format!("{a}{b}")),
            (Bytes(a), Bytes(b)) => Bytes([a.as_slice(), b].concat()),
            (List(a), List(b)) => List([a.as_slice(), b].concat()),
            (Tuple(a), Tuple(b)) => Tuple([a.as_slice(), b].concat()),
            _ => return Err(operand_error("+", self, rhs)),
        })
    }

    fn mul(&self, rhs: &PyValue) -> Result<PyValue> {
        use PyValue::*;
        Ok(match (self, rhs) {
            (Int(a), Int(b)) => Int(a.checked_mul(*b).ok_or_else(|| overflow("*", self, rhs))?),
            (Int(_) | Float(_), Int(_) | Float(_)) => Float(self.as_float()? * rhs.as_float()?),
            (Str(a), Int(n)) => Str(a.repeat((*n).max(0) as usize)),
            (List(a), Int(n)) => List(
                std::iter::repeat_n(a.iter().cloned(), (*n).max(0) as usize)
                    .flatten()
                    .collect(),
            ),
            _ => return Err(operand_error("*", self, rhs)),
        })
    }
}

fn type_error(wanted: &str, found: &PyValue) -> Error {
    Error::invalid(
        "value",
        format!("expected {wanted}, found {} {found}", found.type_name()),
    )
}

fn operand_error(op: &str, a: &PyValue, b: &PyValue) -> Error {
    Error::invalid(
        "operation",
        format!(
            "TypeError: unsupported operand type(s) for {op}: '{}' and '{}'",
            a.type_name(),
            b.type_name()
        ),
    )
}

fn overflow(op: &str, a: &PyValue, b: &PyValue) -> Error {
    Error::invalid(
        "operation",
        format!("OverflowError: {a} {op} {b} does not fit in 64 bits"),
    )
}

/// Python's `repr`.
impl Display for PyValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PyValue::None => f.write_str("None"),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::Int(i) => write!(f, "{i}"),
            PyValue::Float(x) => f.write_str(&float_repr(*x)),
            PyValue::Str(s) => f.write_str(&str_repr(s)),
            PyValue::Bytes(b) => f.write_str(&bytes_repr(b)),
            PyValue::List(items) => write_seq(f, "[", items, "]"),
            PyValue::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            PyValue::Tuple(items) => write_seq(f, "(", items, ")"),
            PyValue::Dict(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_seq(f: &mut Formatter<'_>, open: &str, items: &[PyValue], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, v) in items.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(f, "{sep}{v}")?;
    }
    f.write_str(close)
}

/// Python's float repr: the shortest digits that round-trip, positional for
/// exponents -4..16, scientific (`1e+16`, `1e-05`) outside.
pub(crate) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{x:e}"); // shortest round-trip digits, e.g. "-1.5e16"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's str repr: single quotes unless the text holds `'` and no `"`.
fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's bytes repr: `b'...'` with `\xNN` for bytes that are not printable ASCII.
pub(crate) fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = format!("b{}", quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(quote as char);
    out
}

impl From<i64> for PyValue {
    fn from(i: i64) -> Self {
        PyValue::Int(i)
    }
}
impl From<i32> for PyValue {
    fn from(i: i32) -> Self {
        PyValue::Int(i.into())
    }
}
impl From<f64> for PyValue {
    fn from(x: f64) -> Self {
        PyValue::Float(x)
    }
}
impl From<bool> for PyValue {
    fn from(b: bool) -> Self {
        PyValue::Bool(b)
    }
}
impl From<&str> for PyValue {
    fn from(s: &str) -> Self {
        PyValue::Str(s.into())
    }
}
impl From<String> for PyValue {
    fn from(s: String) -> Self {
        PyValue::Str(s)
    }
}
impl From<Vec<PyValue>> for PyValue {
    fn from(v: Vec<PyValue>) -> Self {
        PyValue::List(v)
    }
}
impl<A: Into<PyValue>, B: Into<PyValue>> From<(A, B)> for PyValue {
    /// A Rust pair becomes a Python 2-tuple.
    fn from((a, b): (A, B)) -> Self {
        PyValue::Tuple(vec![a.into(), b.into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprs_match_python() {
        let v = PyValue::List(vec![
            ("a", 1).into(),
            PyValue::None,
            1.5.into(),
            PyValue::Bytes(b"x".to_vec()),
            PyValue::Dict(vec![(
                "k".into(),
                PyValue::List(vec![1.into(), PyValue::Tuple(vec![2.into()])]),
            )]),
            true.into(),
        ]);
        assert_eq!(
            v.to_string(),
            "[('a', 1), None, 1.5, b'x', {'k': [1, (2,)]}, True]"
        );
        assert_eq!(PyValue::from("it's").to_string(), "\"it's\"");
        assert_eq!(PyValue::from("a\nb'\"").to_string(), "'a\\nb\\'\"'");
        assert_eq!(
            PyValue::Bytes(vec![0, 65, 255]).to_string(),
            "b'\\x00A\\xff'"
        );
    }

    /// Bytes holding both quotes keep single quotes and escape them.
    #[test]
    fn bytes_with_both_quotes_escape_the_single_one() {
        assert_eq!(PyValue::Bytes(b"'\"".to_vec()).to_string(), "b'\\'\"'");
    }

    /// Control characters (below 0x20, and 0x7f) print as `\xNN`, as `repr`
    /// shows them; a space is printed as it is.
    #[test]
    fn control_characters_print_as_hex_escapes() {
        assert_eq!(
            PyValue::from("a \u{1}\u{1f}\u{7f}").to_string(),
            "'a \\x01\\x1f\\x7f'"
        );
    }

    #[test]
    fn floats_print_like_python() {
        for (x, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(PyValue::Float(x).to_string(), want);
        }
    }

    #[test]
    fn ops_follow_python_and_refuse_what_python_refuses() {
        let add = |a: PyValue, b: PyValue| a.apply(&Op::Add(b));
        assert_eq!(add(1.into(), 5.into()).unwrap(), PyValue::Int(6));
        assert_eq!(add(1.into(), 0.5.into()).unwrap(), PyValue::Float(1.5));
        assert_eq!(add("a".into(), "b".into()).unwrap(), PyValue::from("ab"));
        assert_eq!(
            PyValue::from(1).apply(&Op::Mul(10.into())).unwrap(),
            PyValue::Int(10)
        );
        let e = add(1.into(), "x".into()).unwrap_err();
        assert!(e.to_string().contains("'int' and 'str'"), "{e}");
        assert!(add(i64::MAX.into(), 1.into()).is_err());
    }

    /// Every kind `+=` and `*=` take, with Python's results.
    #[test]
    fn sequences_concatenate_and_repeat_as_in_python() {
        use PyValue::*;
        let add = |a: PyValue, b: PyValue| a.apply(&Op::Add(b)).unwrap();
        let mul = |a: PyValue, b: PyValue| a.apply(&Op::Mul(b)).unwrap();
        assert_eq!(
            add(Bytes(b"ab".to_vec()), Bytes(b"c".to_vec())),
            Bytes(b"abc".to_vec())
        );
        assert_eq!(
            add(List(vec![Int(1)]), List(vec![Int(2)])),
            List(vec![Int(1), Int(2)])
        );
        assert_eq!(
            add(Tuple(vec![Int(1)]), Tuple(vec![None])),
            Tuple(vec![Int(1), None])
        );
        assert_eq!(mul(Float(1.5), Int(4)), Float(6.0));
        assert_eq!(mul("ab".into(), Int(3)), PyValue::from("ababab"));
        assert_eq!(mul("ab".into(), Int(-1)), PyValue::from(""));
        assert_eq!(mul(List(vec![Int(7)]), Int(2)), List(vec![Int(7), Int(7)]));
        assert!(List(vec![]).apply(&Op::Add(Int(1))).is_err());
    }
}
