//! One end of a connection between a proxy and the server: a Unix socket that
//! carries records.
//!
//! On Linux the socket is `SOCK_SEQPACKET` (`socket(2)`, `unix(7)`): it keeps
//! message boundaries, and the kernel's path for it is shorter than a
//! stream's (on the 2-core bench VM a spinning 8-byte round trip takes about
//! 3.1 µs against 3.7 µs for `SOCK_STREAM`; a Namespace set + get is two round
//! trips). macOS has no seqpacket Unix sockets, so there it is a stream.
//!
//! A record is read whole or its tail is lost, so the two rules that make a
//! seqpacket socket behave like a byte stream for [`crate::frame`] are:
//! every write sends at most [`RECORD`] bytes (a large frame goes as several
//! records), and every read goes through a buffer of [`RECORD`] bytes (a
//! `BufReader` reads into the caller's buffer only when that is larger).

use crate::sys::{SPIN, SpinRead};
use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// The largest record either side sends (64 KiB): well under a Unix socket's
/// default send buffer (`net.core.wmem_default`, about 208 KiB), which a
/// single seqpacket record must fit in.
pub const RECORD: usize = 64 << 10;

/// One end of a manager connection: reads are buffered and spin briefly
/// before they block ([`SpinRead`]); writes go out in records of at most
/// [`RECORD`] bytes.
pub struct Link {
    reader: BufReader<SpinRead<UnixStream>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("socket", self.socket())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Connects to the server's socket at `path` (`socket(2)`, `connect(2)`).
    pub fn connect(path: &Path) -> std::io::Result<Link> {
        Ok(Link::new(connect(path)?))
    }

    /// Wraps a connected socket (one the server accepted).
    pub fn new(socket: UnixStream) -> Link {
        Link {
            reader: BufReader::with_capacity(RECORD, SpinRead::new(socket, SPIN)),
        }
    }

    /// The socket, for its options (`SO_RCVTIMEO`, `SO_SNDTIMEO`).
    pub fn socket(&self) -> &UnixStream {
        self.reader.get_ref().get_ref()
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Write for Link {
    /// Sends at most one record (`send(2)`); `write_all` sends the rest.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(RECORD);
        self.socket().write(&buf[..n])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Two connected sockets of the kind a [`Link`] uses (`socketpair(2)`):
/// the raw baseline of the manager benchmark.
pub fn pair() -> std::io::Result<(UnixStream, UnixStream)> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((UnixStream::from(a), UnixStream::from(b)))
    }
    #[cfg(not(target_os = "linux"))]
    UnixStream::pair()
}

/// The server's listening socket at `path` (`socket(2)`, `bind(2)`, `listen(2)`).
#[cfg(target_os = "linux")]
pub fn listen(path: &Path) -> std::io::Result<UnixListener> {
    use nix::sys::socket::{Backlog, UnixAddr, bind};
    let fd = seqpacket()?;
    let addr = UnixAddr::new(path)?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    nix::sys::socket::listen(&fd, Backlog::new(128)?)?;
    Ok(UnixListener::from(fd))
}

/// A socket connected to the listener at `path`.
#[cfg(target_os = "linux")]
fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let fd = seqpacket()?;
    let addr = nix::sys::socket::UnixAddr::new(path)?;
    nix::sys::socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    Ok(UnixStream::from(fd))
}

/// A new `SOCK_SEQPACKET` Unix socket, closed on exec.
#[cfg(target_os = "linux")]
fn seqpacket() -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    Ok(socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// The server's listening socket at `path` (a stream: see the module doc).
#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
pub fn listen(path: &Path) -> std::io::Result<UnixListener> {
    UnixListener::bind(path)
}

#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
fn connect(path: &Path) -> std::io::Result<UnixStream> {
    UnixStream::connect(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{read_frame, write_frame};

    /// A frame of several records arrives whole, after small frames on
    /// either side of it, each read with a short first read (the prefix).
    #[test]
    fn a_link_prints_as_its_socket() {
        let (a, _b) = pair().unwrap();
        let text = format!("{:?}", Link::new(a));
        assert!(text.starts_with("Link { socket: UnixStream"), "{text}");
    }

    #[test]
    fn frames_larger_than_a_record_and_small_ones_arrive_intact() {
        // Removed on drop, even when an assertion below fails.
        let dir = tempfile::Builder::new()
            .prefix("ipckit-link-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("s");
        let listener = listen(&path).unwrap();
        let big: Vec<u8> = (0..3 * RECORD + 17).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let sender = std::thread::spawn(move || {
            let mut link = Link::connect(&path).unwrap();
            for payload in [&b"small"[..], &big, b"tail"] {
                write_frame(&mut link, payload).unwrap();
            }
        });
        let mut link = Link::new(listener.accept().unwrap().0);
        assert_eq!(read_frame(&mut link, 1 << 20).unwrap(), b"small");
        assert_eq!(read_frame(&mut link, 1 << 20).unwrap(), expected);
        assert_eq!(read_frame(&mut link, 1 << 20).unwrap(), b"tail");
        sender.join().unwrap();
        assert!(matches!(
            read_frame(&mut link, 1 << 20),
            Err(crate::Error::Eof(_))
        ));
        dir.close().unwrap();
    }
}
