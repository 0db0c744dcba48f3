//! A Python value, for messages the tutorials send as Python objects.
//!
//! `conn.send([42, None, 'hello'])` pickles a list holding an int, `None` and
//! a string. Rust has no such dynamic value, so [`PyValue`] models the few
//! kinds the tutorials send; it travels through any serde channel (postcard
//! frames) and prints the way Python's `print` shows it (`repr` for the items
//! of a list): `[42, None, 'hello']`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Python object of the kinds the tutorials send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` (within 64 bits).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` object.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<PyValue>),
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
}

/// Prints the value as Python's `repr` does (which is what `print` shows for
/// a list): strings in single quotes, `None`, `True`, floats with a `.0`.
impl fmt::Display for PyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyValue::None => f.write_str("None"),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::Int(i) => write!(f, "{i}"),
            PyValue::Float(x) => write!(f, "{x:?}"),
            PyValue::Str(s) => write_quoted(f, false, s.chars()),
            PyValue::Bytes(b) => write_quoted(f, true, b.iter().map(|&c| char::from(c))),
            PyValue::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Writes a quoted literal as Python's `repr` does: single quotes, unless the
/// text holds a single quote and no double quote; backslashes and control
/// characters escaped (and, in `bytes`, everything above 127 as `\xNN`).
fn write_quoted(
    f: &mut fmt::Formatter<'_>,
    bytes: bool,
    chars: impl Iterator<Item = char> + Clone,
) -> fmt::Result {
    let has = |q: char| chars.clone().any(|c| c == q);
    let quote = if has('\'') && !has('"') { '"' } else { '\'' };
    let prefix = if bytes { "b" } else { "" };
    write!(f, "{prefix}{quote}")?;
    for c in chars {
        match c {
            c if c == quote => write!(f, "\\{c}")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() || (bytes && !c.is_ascii()) => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    write!(f, "{quote}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_python() {
        assert_eq!(PyValue::hello().to_string(), "[42, None, 'hello']");
        let v = PyValue::List(vec![
            PyValue::Float(1.0),
            PyValue::Bool(true),
            PyValue::Str("it's".into()),
            PyValue::Bytes(vec![b'H', 0xff]),
        ]);
        assert_eq!(v.to_string(), r#"[1.0, True, "it's", b'H\xff']"#);
        assert_eq!(PyValue::Str(r#"'"\"#.into()).to_string(), r#"'\'"\\'"#);
    }
}
