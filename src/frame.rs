//! Framing: whole messages over a byte stream (pipe, socket).
//!
//! A pipe or stream socket carries bytes, not messages: one `write` may arrive
//! as several `read`s and two writes as one. A *frame* restores the message
//! boundary: a 4-byte little-endian length, then that many bytes of payload.
//! Values are encoded with postcard (a compact serde format).
//!
//! A reader never trusts the length blindly: a frame longer than the reader's
//! limit is a [`Error::Protocol`] error before anything is allocated, a stream
//! that ends inside a frame is a truncated frame, and a stream that ends
//! exactly between frames is a clean [`Error::Eof`].

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::io::{ErrorKind, Read, Write};

/// The default largest frame a reader accepts (64 MiB).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Writes one frame: the payload's length (u32, little-endian), then the payload.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> Result<()> {
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(payload);
    write_prefixed(w, buf)
}

/// Encodes `value` and writes it as one frame, building the length prefix and
/// the encoding in a single buffer (one allocation, one `write`).
pub fn write_value<T: Serialize + ?Sized>(w: &mut impl Write, value: &T) -> Result<()> {
    let buf = postcard::to_extend(value, vec![0u8; 4])
        .map_err(|e| Error::Protocol(format!("cannot encode value: {e}")))?;
    write_prefixed(w, buf)
}

/// Fills in the first 4 bytes of `buf` (left for it) with the length of the
/// rest, and writes the whole frame in one `write_all`.
fn write_prefixed(w: &mut impl Write, mut buf: Vec<u8>) -> Result<()> {
    let payload = buf.len() - 4;
    let len = u32::try_from(payload).map_err(|_| {
        Error::invalid(
            "frame",
            format!("{payload} bytes is more than a frame can carry (4 GiB)"),
        )
    })?;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    w.write_all(&buf)
        .map_err(|e| Error::io("writing a frame", e))
}

/// Reads one frame of at most `max` bytes.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    match read_full(r, &mut len)? {
        0 => return Err(Error::Eof("the other end closed the stream".into())),
        4 => {}
        got => {
            return Err(Error::Protocol(format!(
                "truncated frame: the length prefix ended after {got} of 4 bytes"
            )));
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(Error::Protocol(format!(
            "frame of {len} bytes is larger than the limit of {max} bytes"
        )));
    }
    let mut payload = vec![0u8; len];
    let got = read_full(r, &mut payload)?;
    if got < len {
        return Err(Error::Protocol(format!(
            "truncated frame: got {got} of {len} payload bytes"
        )));
    }
    Ok(payload)
}

/// Encodes a value with postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Protocol(format!("cannot encode value: {e}")))
}

/// Decodes a value with postcard; bytes that do not form a `T` are a protocol error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Protocol(format!("corrupt message: {e}")))
}

/// Reads until `buf` is full or the stream ends; returns how many bytes came.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading a frame", e)),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_end_between_frames_is_eof_and_mid_frame_is_truncated() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, b"hello").unwrap();
        let mut r = &bytes[..];
        assert_eq!(read_frame(&mut r, 100).unwrap(), b"hello");
        assert!(matches!(read_frame(&mut r, 100), Err(Error::Eof(_))));
        let mut cut = &bytes[..6];
        assert!(matches!(read_frame(&mut cut, 100), Err(Error::Protocol(_))));
        let mut cut = &bytes[..2];
        assert!(matches!(read_frame(&mut cut, 100), Err(Error::Protocol(_))));
    }

    #[test]
    fn write_value_is_the_frame_of_the_encoding() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_value(&mut a, &(42u32, "hello")).unwrap();
        write_frame(&mut b, &encode(&(42u32, "hello")).unwrap()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let bytes = u32::MAX.to_le_bytes();
        let e = read_frame(&mut &bytes[..], 1024).unwrap_err();
        assert!(e.to_string().contains("larger than the limit"), "{e}");
    }

    /// The limit is inclusive: a frame of exactly `max` bytes is read, one
    /// byte more is refused.
    #[test]
    fn a_frame_of_exactly_the_limit_is_read() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &[7u8; 16]).unwrap();
        assert_eq!(read_frame(&mut &bytes[..], 16).unwrap(), [7u8; 16]);
        let e = read_frame(&mut &bytes[..], 15).unwrap_err();
        assert!(e.to_string().contains("larger than the limit"), "{e}");
    }

    /// A read interrupted by a signal (`EINTR`) is retried, not an error.
    #[test]
    fn an_interrupted_read_is_retried() {
        struct InterruptedOnce<'a>(bool, &'a [u8]);
        impl Read for InterruptedOnce<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if std::mem::replace(&mut self.0, false) {
                    return Err(ErrorKind::Interrupted.into());
                }
                self.1.read(buf)
            }
        }
        let mut bytes = Vec::new();
        write_frame(&mut bytes, b"hello").unwrap();
        let mut r = InterruptedOnce(true, &bytes);
        assert_eq!(read_frame(&mut r, 100).unwrap(), b"hello");
    }

    proptest::proptest! {
        #[test]
        fn frames_round_trip(msgs in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..300), 0..20)) {
            let mut bytes = Vec::new();
            for m in &msgs {
                write_frame(&mut bytes, m).unwrap();
            }
            let mut r = &bytes[..];
            for m in &msgs {
                proptest::prop_assert_eq!(&read_frame(&mut r, 1 << 20).unwrap(), m);
            }
            proptest::prop_assert!(matches!(read_frame(&mut r, 1 << 20), Err(Error::Eof(_))));
        }
    }
}
