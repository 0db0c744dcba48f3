//! The authentication key and the challenge-response handshake.
//!
//! Python's `multiprocessing.connection` never sends the key itself: the
//! server sends a random message (the *challenge*), the client answers with
//! `HMAC(key, message)`, and the server compares it with its own HMAC; then
//! the roles swap, so the client knows the server holds the key too. Python
//! 3.11 uses HMAC-MD5 over a 20-byte message; the kit uses HMAC-SHA256 over a
//! 32-byte message read from `/dev/urandom` (`random(4)`).

use crate::error::{Error, Result};
use crate::frame::{read_frame, write_frame};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{Read, Write};

/// The prefix of a challenge frame (Python's `#CHALLENGE#`, with the digest named).
const CHALLENGE: &[u8] = b"#CHALLENGE#{sha256}";
/// The verdict frames, as Python's.
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
/// The prefix of the frame a server too busy to serve sends instead of a
/// challenge, followed by the reason.
pub const REFUSED: &[u8] = b"#REFUSED#";
/// Bytes of random message per challenge.
const MESSAGE_LENGTH: usize = 32;
/// The largest handshake frame either side accepts.
const MAX_HANDSHAKE_FRAME: usize = 256;

/// A secret shared by the manager and its clients (Python's `authkey`).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(Vec<u8>);

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKey(<secret>)")
    }
}

impl AuthKey {
    /// A fresh random key of 32 bytes (Python: `os.urandom(32)`).
    pub fn random() -> Result<AuthKey> {
        random_bytes(32).map(AuthKey)
    }

    /// A key from given bytes (for a client that was told the key).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> AuthKey {
        AuthKey(bytes.into())
    }

    /// The key as lowercase hex (how it is handed to the server process).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`to_hex`](Self::to_hex)'s output.
    pub fn from_hex(hex: &str) -> Result<AuthKey> {
        let hex = hex.trim();
        let bad = || Error::invalid("authkey", "expected an even number of hex digits");
        if !hex.len().is_multiple_of(2) {
            return Err(bad());
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>>>()
            .map(AuthKey)
    }

    fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(message);
        mac
    }
}

/// Reads `n` bytes from `/dev/urandom` (`random(4)`).
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(buf)
}

/// The server's side: challenge the client, then answer its challenge
/// (Python's `deliver_challenge` then `answer_challenge`).
pub fn server_handshake(stream: &mut (impl Read + Write), key: &AuthKey) -> Result<()> {
    deliver_challenge(stream, key)?;
    answer_challenge(stream, key)
}

/// The client's side: answer the server's challenge, then challenge it
/// (Python's `answer_challenge` then `deliver_challenge`).
pub fn client_handshake(stream: &mut (impl Read + Write), key: &AuthKey) -> Result<()> {
    answer_challenge(stream, key)?;
    deliver_challenge(stream, key)
}

/// Sends a random message, checks the peer's HMAC of it, and sends the verdict.
fn deliver_challenge(stream: &mut (impl Read + Write), key: &AuthKey) -> Result<()> {
    let message = random_bytes(MESSAGE_LENGTH)?;
    write_frame(stream, &[CHALLENGE, &message].concat())?;
    let response = read_frame(stream, MAX_HANDSHAKE_FRAME)?;
    // verify_slice compares in constant time.
    if key.mac(&message).verify_slice(&response).is_ok() {
        write_frame(stream, WELCOME)
    } else {
        let _ = write_frame(stream, FAILURE);
        Err(refused("the peer answered the challenge with a wrong HMAC"))
    }
}

/// Reads a challenge, answers with the HMAC of its message, reads the verdict.
fn answer_challenge(stream: &mut (impl Read + Write), key: &AuthKey) -> Result<()> {
    let frame = read_frame(stream, MAX_HANDSHAKE_FRAME)?;
    if let Some(why) = frame.strip_prefix(REFUSED) {
        return Err(Error::Protocol(format!(
            "the manager refused the connection: {}",
            String::from_utf8_lossy(why)
        )));
    }
    let message = frame
        .strip_prefix(CHALLENGE)
        .ok_or_else(|| Error::Protocol("expected an authentication challenge".into()))?;
    write_frame(stream, &key.mac(message).finalize().into_bytes())?;
    match read_frame(stream, MAX_HANDSHAKE_FRAME) {
        Ok(v) if v == WELCOME => Ok(()),
        Ok(_) | Err(Error::Eof(_)) => Err(refused("the peer refused our HMAC")),
        Err(e) => Err(e),
    }
}

fn refused(why: &str) -> Error {
    Error::invalid(
        "authkey",
        format!(
            "authentication failed ({why}): the two sides hold different keys; use the manager's own key"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn handshake(server_key: AuthKey, client_key: AuthKey) -> (Result<()>, Result<()>) {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || server_handshake(&mut a, &server_key));
        let client = client_handshake(&mut b, &client_key);
        drop(b);
        (server.join().unwrap(), client)
    }

    #[test]
    fn same_key_is_welcome_and_different_keys_are_refused() {
        let key = AuthKey::random().unwrap();
        let (s, c) = handshake(key.clone(), key);
        assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
        let (s, c) = handshake(AuthKey::random().unwrap(), AuthKey::from_bytes(*b"guess"));
        assert!(c.unwrap_err().to_string().contains("authentication failed"));
        assert!(s.is_err());
    }

    #[test]
    fn hex_round_trips_and_the_key_is_not_printed() {
        let key = AuthKey::random().unwrap();
        assert_eq!(AuthKey::from_hex(&key.to_hex()).unwrap(), key);
        assert!(AuthKey::from_hex("abc").is_err());
        assert_eq!(format!("{key:?}"), "AuthKey(<secret>)");
    }

    #[test]
    fn random_bytes_are_as_many_as_asked_and_never_the_same_twice() {
        let (a, b) = (random_bytes(32).unwrap(), random_bytes(32).unwrap());
        assert_eq!(a.len(), 32);
        // Two equal 32-byte draws from /dev/urandom: chance 2^-256.
        assert_ne!(a, b);
        assert_ne!(AuthKey::random().unwrap(), AuthKey::random().unwrap());
    }
}
