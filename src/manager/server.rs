//! The manager's server process: it owns the shared objects and serves them
//! over a Unix socket, one thread per connected proxy.
//!
//! The server is the `ipckit` binary itself, exec'd by [`Manager::start`](super::Manager::start)
//! as `ipckit __internal manager-server --socket PATH`:
//!
//! 1. read the authkey (hex) from standard input, which then stays open: when
//!    it reaches end of file, the owner has gone, and the server exits;
//! 2. bind the listening socket (`socket(2)`, `bind(2)`, `listen(2)`; a
//!    seqpacket socket on Linux, see [`Link`]) and say `ready` on standard output;
//! 3. for each connection (`accept(2)`): a thread runs the challenge-response
//!    handshake, then answers requests one at a time until the proxy hangs up.
//!
//! No client can kill or starve it: the whole handshake has one deadline
//! ([`HANDSHAKE_TIMEOUT`], not restarted by each byte), at most
//! [`MAX_CONNECTIONS`] connections are served at once (the next is told so
//! and closed), frames are at most [`MAX_MESSAGE`] bytes, and values nested
//! deeper than [`MAX_DEPTH`](crate::pyvalue::MAX_DEPTH) get an error reply.
//!
//! Every request runs under one lock, so each is atomic, which is what makes
//! [`Request::Update`] safe where Python's `ns.x += 5` is a race.

use super::auth::{AuthKey, REFUSED, server_handshake};
use super::link::Link;
use super::protocol::{Kind, MAX_MESSAGE, ObjectId, Reply, Request};
use crate::error::{Error, Result};
use crate::frame::{decode, read_frame, write_frame, write_value};
use crate::pyvalue::{Op, PyValue};
use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The line the server prints on standard output once it listens.
pub const READY: &[u8] = b"ipckit-manager ready\n";

/// How long a new connection has, in all, to finish the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many connections (each a thread) the server serves at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Runs the server (the `manager-server` internal command): key from stdin,
/// socket at `socket`. Returns only on error; a shutdown request or the end
/// of standard input ends the process.
pub fn run_stdio(socket: &Path) -> Result<i32> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the authkey from stdin", e))?;
    let key = AuthKey::from_hex(&line)?;
    let listener =
        super::link::listen(socket).map_err(|e| Error::io(socket.display().to_string(), e))?;
    std::thread::spawn(exit_when_owner_goes);
    let mut out = std::io::stdout();
    out.write_all(READY)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("stdout", e))?;
    serve(listener, key)
}

/// Accepts connections for ever, one thread each, at most
/// [`MAX_CONNECTIONS`] at once: past that, a connection gets a refusal frame
/// and is closed.
fn serve(listener: UnixListener, key: AuthKey) -> Result<i32> {
    let state = Arc::new(Mutex::new(Objects::default()));
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, _) = listener
            .accept()
            .map_err(|e| Error::io("accept on the manager socket", e))?;
        if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::AcqRel);
            refuse(stream);
            continue;
        }
        let (state, key, open) = (Arc::clone(&state), key.clone(), Arc::clone(&open));
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &key, &state);
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Tells a connection past the limit why it is closed (without blocking:
/// a full socket buffer just loses the explanation).
fn refuse(stream: UnixStream) {
    let why = format!("{MAX_CONNECTIONS} connections are open, the limit");
    if stream.set_nonblocking(true).is_ok() {
        let _ = write_frame(&mut Link::new(stream), &[REFUSED, why.as_bytes()].concat());
    }
}

/// Standard input is the owner's lifeline: at its end, exit.
fn exit_when_owner_goes() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    std::process::exit(0);
}

/// One proxy's connection: handshake, then request, reply, request, reply...
/// A reply that cannot be sent within the default deadline of a manager's
/// calls (`SO_SNDTIMEO`; the proxy stopped reading) ends the connection
/// instead of parking its thread.
fn serve_connection(stream: UnixStream, key: &AuthKey, state: &Mutex<Objects>) -> Result<()> {
    stream
        .set_write_timeout(Some(super::ManagerConfig::default().timeout))
        .map_err(|e| Error::io("setsockopt(SO_SNDTIMEO)", e))?;
    let mut link = Link::new(stream);
    server_handshake(&mut Within::new(&mut link, HANDSHAKE_TIMEOUT), key)?;
    set_timeout(link.socket(), None)?;
    loop {
        let frame = read_frame(&mut link, MAX_MESSAGE);
        let reply: Reply = match &frame {
            Ok(bytes) => match decode::<Request>(bytes) {
                Ok(Request::Shutdown) => {
                    write_value(&mut link, &Reply::Ok(PyValue::None))?;
                    std::process::exit(0);
                }
                Ok(req) => lock(state).handle(req).map_err(|e| e.to_string()),
                Err(e) => Err(format!("malformed request: {e}")),
            },
            Err(Error::Eof(_)) => return Ok(()),
            Err(e) => Err(format!("malformed request: {e}")),
        };
        write_value(&mut link, &reply)?;
        if frame.is_err() {
            return Ok(()); // the byte stream is out of step: hang up after saying why
        }
    }
}

/// A link whose reads all end at one deadline: before each read the socket's
/// `SO_RCVTIMEO` is set to the time left, so a peer sending a byte at a time
/// cannot stretch the wait (a per-read timeout restarts with every byte).
struct Within<'a> {
    link: &'a mut Link,
    deadline: Instant,
}

impl<'a> Within<'a> {
    fn new(link: &'a mut Link, timeout: Duration) -> Within<'a> {
        Within {
            link,
            deadline: Instant::now() + timeout,
        }
    }
}

impl Read for Within<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.link.socket().set_read_timeout(Some(left))?;
        self.link.read(buf)
    }
}

impl Write for Within<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.link.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.link.flush()
    }
}

fn set_timeout(stream: &UnixStream, t: Option<Duration>) -> Result<()> {
    stream
        .set_read_timeout(t)
        .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))
}

fn lock(state: &Mutex<Objects>) -> std::sync::MutexGuard<'_, Objects> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// One shared object as the server holds it.
#[derive(Debug)]
enum Object {
    List(Vec<PyValue>),
    Dict(Vec<(PyValue, PyValue)>),
    Namespace(Vec<(String, PyValue)>),
}

/// Every object of the server, by id.
#[derive(Debug, Default)]
struct Objects {
    next: ObjectId,
    map: HashMap<ObjectId, Object>,
}

impl Objects {
    fn handle(&mut self, req: Request) -> Result<PyValue> {
        match req {
            Request::Create { kind, init } => self.create(kind, init),
            Request::Get { id, key } => self.get(id)?.get(&key),
            Request::Set { id, key, value } => {
                self.get(id)?.set(key, value).map(|()| PyValue::None)
            }
            Request::Del { id, key } => self.get(id)?.del(&key).map(|()| PyValue::None),
            Request::Append { id, value } => self.get(id)?.append(value).map(|()| PyValue::None),
            Request::Len { id } => Ok(PyValue::Int(self.get(id)?.len() as i64)),
            Request::Snapshot { id } => Ok(self.get(id)?.snapshot()),
            Request::Update { id, key, op } => self.get(id)?.update(key, &op),
            Request::Shutdown => unreachable!("handled by the connection loop"),
        }
    }

    fn create(&mut self, kind: Kind, init: PyValue) -> Result<PyValue> {
        let object = match (kind, init) {
            (Kind::List, PyValue::List(v) | PyValue::Tuple(v)) => Object::List(v),
            (Kind::Dict, PyValue::Dict(d)) => Object::Dict(d),
            (Kind::Namespace, PyValue::Dict(d)) => Object::Namespace(
                d.into_iter()
                    .map(|(k, v)| Ok((attr_name(&k)?.to_string(), v)))
                    .collect::<Result<_>>()?,
            ),
            (kind, init) => {
                return Err(Error::invalid(
                    "manager request",
                    format!("cannot make a {kind:?} from {} {init}", init.type_name()),
                ));
            }
        };
        self.next += 1;
        self.map.insert(self.next, object);
        Ok(PyValue::Int(self.next as i64))
    }

    fn get(&mut self, id: ObjectId) -> Result<&mut Object> {
        self.map.get_mut(&id).ok_or_else(|| {
            Error::invalid("manager request", format!("no shared object with id {id}"))
        })
    }
}

impl Object {
    fn get(&mut self, key: &PyValue) -> Result<PyValue> {
        Ok(self.slot(key)?.clone())
    }

    /// The place `key` names; an error if there is none (IndexError, KeyError,
    /// AttributeError).
    fn slot(&mut self, key: &PyValue) -> Result<&mut PyValue> {
        match self {
            Object::List(v) => {
                let i = index(key, v.len())?;
                Ok(&mut v[i])
            }
            Object::Dict(d) => d
                .iter_mut()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .ok_or_else(|| python_error(format!("KeyError: {key}"))),
            Object::Namespace(a) => {
                let name = attr_name(key)?;
                a.iter_mut()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        python_error(format!(
                            "AttributeError: 'Namespace' object has no attribute '{name}'"
                        ))
                    })
            }
        }
    }

    fn set(&mut self, key: PyValue, value: PyValue) -> Result<()> {
        match self {
            Object::Dict(d) if !d.iter().any(|(k, _)| *k == key) => d.push((key, value)),
            Object::Namespace(a) if !a.iter().any(|(k, _)| k == attr_name(&key).unwrap_or("")) => {
                a.push((attr_name(&key)?.to_string(), value))
            }
            _ => *self.slot(&key)? = value,
        }
        Ok(())
    }

    fn del(&mut self, key: &PyValue) -> Result<()> {
        self.slot(key)?; // the same error as a get when there is nothing to delete
        match self {
            Object::List(v) => {
                let i = index(key, v.len())?;
                v.remove(i);
            }
            Object::Dict(d) => d.retain(|(k, _)| k != key),
            Object::Namespace(a) => a.retain(|(k, _)| k != attr_name(key).unwrap_or("")),
        }
        Ok(())
    }

    fn append(&mut self, value: PyValue) -> Result<()> {
        match self {
            Object::List(v) => {
                v.push(value);
                Ok(())
            }
            _ => Err(python_error(
                "AttributeError: only a list has append()".into(),
            )),
        }
    }

    fn len(&self) -> usize {
        match self {
            Object::List(v) => v.len(),
            Object::Dict(d) => d.len(),
            Object::Namespace(a) => a.len(),
        }
    }

    fn snapshot(&self) -> PyValue {
        match self {
            Object::List(v) => PyValue::List(v.clone()),
            Object::Dict(d) => PyValue::Dict(d.clone()),
            Object::Namespace(a) => PyValue::Dict(
                a.iter()
                    .map(|(k, v)| (PyValue::Str(k.clone()), v.clone()))
                    .collect(),
            ),
        }
    }

    fn update(&mut self, key: PyValue, op: &Op) -> Result<PyValue> {
        let slot = self.slot(&key)?;
        *slot = slot.apply(op)?;
        Ok(slot.clone())
    }
}

/// A Python list index (negative counts from the end) checked against `len`.
fn index(key: &PyValue, len: usize) -> Result<usize> {
    let i = key.as_int()?;
    let j = if i < 0 { i + len as i64 } else { i };
    if (0..len as i64).contains(&j) {
        Ok(j as usize)
    } else {
        Err(python_error(
            "IndexError: list index out of range".to_string(),
        ))
    }
}

fn attr_name(key: &PyValue) -> Result<&str> {
    key.as_str().map_err(|_| {
        python_error(format!(
            "TypeError: attribute name must be string, not {key}"
        ))
    })
}

fn python_error(message: String) -> Error {
    Error::invalid("manager request", message)
}
