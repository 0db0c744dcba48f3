//! Typecodes: the one-letter C types of Python's `array` and `ctypes`, as
//! `multiprocessing.Value('d', 0.0)` and `Array('i', 10)` use them.
//!
//! Each typecode names a C type, and each C type is a Rust type here:
//!
//! | code | C type             | Rust   | | code | C type               | Rust  |
//! |------|--------------------|--------|-|------|----------------------|-------|
//! | `c`  | `char` (one byte)  | [`Char`] | | `I` | `unsigned int`      | `u32` |
//! | `b`  | `signed char`      | `i8`   | | `l`  | `long` (LP64)        | `i64` |
//! | `B`  | `unsigned char`    | `u8`   | | `L`  | `unsigned long`      | `u64` |
//! | `h`  | `short`            | `i16`  | | `q`  | `long long`          | `i64` |
//! | `H`  | `unsigned short`   | `u16`  | | `Q`  | `unsigned long long` | `u64` |
//! | `i`  | `int`              | `i32`  | | `f`  | `float`              | `f32` |
//!  |     |                    |        | | `d`  | `double`             | `f64` |
//!
//! On a 64-bit Unix (LP64) `long` and `long long` are the same size, so `l`
//! and `q` both map to `i64` (its own code is `q`; `l` is accepted as an alias),
//! and likewise `L`/`Q` to `u64`. The trait is sealed: only these types can live
//! in a [`Value`](super::Value) or [`Array`](super::Array), because every bit
//! pattern of them is a valid value (which makes reading shared memory sound).

use crate::error::{Error, Result};
use crate::pyvalue::{bytes_repr, float_repr};
use crate::region::Plain;
use std::fmt;

/// A plain C type with a typecode. Sealed (through [`Plain`], which only this
/// crate implements): implemented for the 13 types of the table in the module
/// documentation, and only for them.
pub trait Typecode:
    Plain + Copy + Default + PartialEq + fmt::Debug + Send + Sync + 'static
{
    /// The type's own typecode (`'d'` for `f64`).
    const TYPECODE: char;
    /// Other typecodes that name the same C type on this system (`"l"` for `i64`).
    const ALIASES: &'static str = "";

    /// True if an object made with typecode `code` holds values of this type.
    fn accepts(code: char) -> bool {
        code == Self::TYPECODE || Self::ALIASES.contains(code)
    }

    /// Writes the value the way Python prints it (`3.1415927`, `-1`, `b'H'`).
    fn fmt_python(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// Writes a whole array the way Python prints it: `[0, -1]`, or `b'Hello'`
    /// for an array of [`Char`].
    fn fmt_python_slice(items: &[Self], f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            item.fmt_python(f)?;
        }
        f.write_str("]")
    }
}

/// Every typecode, in the order of Python's `array` documentation.
pub const TYPECODES: [char; 13] = [
    'c', 'b', 'B', 'h', 'H', 'i', 'I', 'l', 'L', 'q', 'Q', 'f', 'd',
];

/// What a typecode means: its C type, its Rust type and its size. Unknown
/// codes are an [`Error::Invalid`] listing the valid ones.
pub fn describe(code: char) -> Result<&'static str> {
    Ok(match code {
        'c' => "C char (1 byte), Rust ipckit::shm::Char",
        'b' => "C signed char (1 byte), Rust i8",
        'B' => "C unsigned char (1 byte), Rust u8",
        'h' => "C short (2 bytes), Rust i16",
        'H' => "C unsigned short (2 bytes), Rust u16",
        'i' => "C int (4 bytes), Rust i32",
        'I' => "C unsigned int (4 bytes), Rust u32",
        'l' => "C long (8 bytes on LP64), Rust i64",
        'L' => "C unsigned long (8 bytes on LP64), Rust u64",
        'q' => "C long long (8 bytes), Rust i64",
        'Q' => "C unsigned long long (8 bytes), Rust u64",
        'f' => "C float (4 bytes), Rust f32",
        'd' => "C double (8 bytes), Rust f64",
        _ => {
            return Err(Error::invalid(
                "typecode",
                format!(
                    "{code:?} is not a typecode; use one of {}",
                    TYPECODES.iter().collect::<String>()
                ),
            ));
        }
    })
}

/// Checks that an object made with typecode `found` can be used as `T`; the
/// error names both sides.
pub fn expect_typecode<T: Typecode>(found: char, object: &str) -> Result<()> {
    if T::accepts(found) {
        return Ok(());
    }
    let found_desc = describe(found).unwrap_or("not a typecode at all");
    Err(Error::invalid(
        "typecode",
        format!(
            "{object} holds {found:?} ({found_desc}) but was opened as {:?} ({}); open it with the type it was made with",
            T::TYPECODE,
            describe(T::TYPECODE).unwrap_or("?")
        ),
    ))
}

/// One byte of a `'c'` array: Python shows it as a one-byte `bytes`, `b'H'`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Char(pub u8);

impl fmt::Display for Char {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_python(f)
    }
}

impl crate::region::sealed::Sealed for Char {}
impl Plain for Char {}
impl Typecode for Char {
    const TYPECODE: char = 'c';
    fn fmt_python(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bytes_repr(&[self.0]))
    }
    fn fmt_python_slice(items: &[Self], f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: Vec<u8> = items.iter().map(|c| c.0).collect();
        f.write_str(&bytes_repr(&bytes))
    }
}

macro_rules! integer_typecode {
    ($($t:ty => $code:literal $(, $alias:literal)?;)*) => {$(
        impl Typecode for $t {
            const TYPECODE: char = $code;
            $(const ALIASES: &'static str = $alias;)?
            fn fmt_python(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self}")
            }
        }
    )*};
}

integer_typecode! {
    i8 => 'b';
    u8 => 'B';
    i16 => 'h';
    u16 => 'H';
    i32 => 'i';
    u32 => 'I';
    i64 => 'q', "l";
    u64 => 'Q', "L";
}

impl Typecode for f64 {
    const TYPECODE: char = 'd';
    fn fmt_python(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&float_repr(*self))
    }
}

impl Typecode for f32 {
    const TYPECODE: char = 'f';
    /// Python reads a C float into a double, so it prints the double's digits.
    fn fmt_python(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&float_repr(f64::from(*self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Py<T>(T);
    impl<T: Typecode> fmt::Display for Py<&[T]> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            T::fmt_python_slice(self.0, f)
        }
    }

    #[test]
    #[allow(clippy::approx_constant)] // the tutorial's literal, not a stand-in for PI
    fn floats_print_like_python() {
        for (x, py) in [
            (3.1415927, "3.1415927"),
            (0.0, "0.0"),
            (-2.0, "-2.0"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (123456789.5, "123456789.5"),
        ] {
            assert_eq!(float_repr(x), py);
        }
    }

    #[test]
    fn byte_arrays_print_like_python_bytes() {
        let hello: Vec<Char> = b"Hello".iter().map(|&b| Char(b)).collect();
        assert_eq!(Py(&hello[..]).to_string(), "b'Hello'");
        let odd: Vec<Char> = b"it's\0\n".iter().map(|&b| Char(b)).collect();
        assert_eq!(Py(&odd[..]).to_string(), "b\"it's\\x00\\n\"");
        assert_eq!(Py(&[0i32, -1, -2][..]).to_string(), "[0, -1, -2]");
    }

    /// `Array('f', [0.1, 2.5])` prints what Python prints: each C float
    /// widened to a double, so 0.1 shows the float's own digits.
    #[test]
    fn float_arrays_print_each_float_as_python_does() {
        assert_eq!(
            Py(&[0.1f32, 2.5, -1.0][..]).to_string(),
            "[0.10000000149011612, 2.5, -1.0]"
        );
        assert_eq!(Py(&[0.1f64, 1e16][..]).to_string(), "[0.1, 1e+16]");
    }

    #[test]
    fn every_typecode_is_described_and_unknown_ones_are_refused() {
        for code in TYPECODES {
            assert!(describe(code).is_ok(), "{code}");
        }
        let e = describe('x').unwrap_err().to_string();
        assert!(e.contains("cbBhHiIlLqQfd"), "{e}");
    }
}
