//! The client side: a [`Client`] connection to the server, and the proxies
//! ([`ListProxy`], [`DictProxy`], [`NamespaceProxy`]) that turn method calls
//! into requests.
//!
//! A proxy may be used in a forked child, as in the tutorials: a connection
//! remembers the pid that opened it, and a child opens its own on first use
//! (Python does the same with `util.register_after_fork`), so parent and child
//! never interleave frames on one socket. Every call has a deadline
//! (`SO_RCVTIMEO`/`SO_SNDTIMEO`), so a server that died is an error, not a hang.

use super::auth::{AuthKey, client_handshake};
use super::link::Link;
use super::protocol::{Kind, MAX_MESSAGE, ObjectId, Reply, Request};
use crate::error::{Error, Result};
use crate::frame::{decode, read_frame, write_value};
use crate::pyvalue::{Op, PyValue};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// A connection to a manager's server, shared by the proxies made through it.
pub struct Client {
    address: PathBuf,
    key: AuthKey,
    timeout: Duration,
    /// This process's connection, and the pid that opened it.
    conn: RefCell<Option<(u32, Link)>>,
    closed: Cell<bool>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the server at `address` (`connect(2)`) and authenticates
    /// with `key`; every later call waits at most `timeout` for its reply.
    /// Python: `BaseManager(address, authkey).connect()`.
    pub fn connect(address: &Path, key: &AuthKey, timeout: Duration) -> Result<Rc<Client>> {
        let client = Client {
            address: address.to_path_buf(),
            key: key.clone(),
            timeout,
            conn: RefCell::new(None),
            closed: Cell::new(false),
        };
        client.ensure_connected()?;
        Ok(Rc::new(client))
    }

    /// The server's socket path.
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// Sends one request and waits for its reply. An error reply is returned as
    /// [`Error::Invalid`] carrying the server's message (`IndexError: ...`).
    pub fn call(&self, req: &Request) -> Result<PyValue> {
        if self.closed.get() {
            return Err(Error::Closed(format!(
                "the manager at {} (it was shut down)",
                self.address.display()
            )));
        }
        let reply = self.round_trip(req).inspect_err(|_| {
            // A failed exchange leaves the stream out of step: start afresh next time.
            self.conn.borrow_mut().take();
        })?;
        reply.map_err(|msg| Error::invalid("manager request", msg))
    }

    /// Marks the client closed: later calls fail with [`Error::Closed`].
    pub(super) fn close(&self) {
        self.closed.set(true);
        self.conn.borrow_mut().take();
    }

    fn round_trip(&self, req: &Request) -> Result<Reply> {
        self.ensure_connected()?;
        let mut conn = self.conn.borrow_mut();
        let (_, link) = conn.as_mut().expect("connected above");
        write_value(link, req).map_err(|e| self.io_error(e))?;
        let bytes = read_frame(link, MAX_MESSAGE).map_err(|e| self.io_error(e))?;
        decode(&bytes)
    }

    /// Opens (and authenticates) this process's connection on first use,
    /// and again in a forked child, which must not share its parent's.
    fn ensure_connected(&self) -> Result<()> {
        let pid = crate::process::cached_pid();
        if self
            .conn
            .borrow()
            .as_ref()
            .is_some_and(|(owner, _)| *owner == pid)
        {
            return Ok(());
        }
        let mut link = Link::connect(&self.address).map_err(|e| {
            Error::Died(format!(
                "cannot reach the manager server at {} ({e}): it was shut down or died",
                self.address.display()
            ))
        })?;
        for set in [
            std::os::unix::net::UnixStream::set_read_timeout,
            std::os::unix::net::UnixStream::set_write_timeout,
        ] {
            set(link.socket(), Some(self.timeout))
                .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))?;
        }
        client_handshake(&mut link, &self.key).map_err(|e| self.io_error(e))?;
        *self.conn.borrow_mut() = Some((pid, link));
        Ok(())
    }

    /// Names what a failed exchange means: a deadline, or a dead server.
    fn io_error(&self, e: Error) -> Error {
        let at = self.address.display();
        match e {
            Error::Io { source, .. }
                if matches!(source.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Error::Timeout {
                    what: format!("a reply from the manager server at {at}"),
                    after: self.timeout,
                }
            }
            Error::Eof(_) | Error::Io { .. } => Error::Died(format!(
                "the manager server at {at} closed the connection ({e}): it was shut down or killed"
            )),
            other => other,
        }
    }

    fn create(self: &Rc<Self>, kind: Kind, init: PyValue) -> Result<ObjectId> {
        let id = self.call(&Request::Create { kind, init })?.as_int()?;
        Ok(id as ObjectId)
    }
}

/// What every proxy holds: the connection and the object's id.
#[derive(Clone)]
struct Handle {
    client: Rc<Client>,
    id: ObjectId,
}

impl Handle {
    fn call(&self, req: Request) -> Result<PyValue> {
        self.client.call(&req)
    }
    fn get(&self, key: PyValue) -> Result<PyValue> {
        self.call(Request::Get { id: self.id, key })
    }
    fn set(&self, key: PyValue, value: PyValue) -> Result<()> {
        self.call(Request::Set {
            id: self.id,
            key,
            value,
        })
        .map(drop)
    }
    fn del(&self, key: PyValue) -> Result<()> {
        self.call(Request::Del { id: self.id, key }).map(drop)
    }
    fn len(&self) -> Result<usize> {
        Ok(self.call(Request::Len { id: self.id })?.as_int()? as usize)
    }
    fn snapshot(&self) -> Result<PyValue> {
        self.call(Request::Snapshot { id: self.id })
    }
    fn update(&self, key: PyValue, op: Op) -> Result<PyValue> {
        self.call(Request::Update {
            id: self.id,
            key,
            op,
        })
    }
}

macro_rules! proxy_common {
    ($proxy:ident) => {
        impl $proxy {
            /// The same object reached through another connection (another
            /// client of the same manager).
            pub fn via(&self, client: &Rc<Client>) -> Self {
                $proxy(Handle {
                    client: Rc::clone(client),
                    id: self.0.id,
                })
            }

            /// `len(obj)`.
            pub fn len(&self) -> Result<usize> {
                self.0.len()
            }

            /// `len(obj) == 0`.
            pub fn is_empty(&self) -> Result<bool> {
                Ok(self.len()? == 0)
            }
        }
    };
}

/// A proxy for a list held by the manager (`manager.list(...)`).
#[derive(Clone)]
pub struct ListProxy(Handle);
proxy_common!(ListProxy);

impl ListProxy {
    pub(super) fn create(client: &Rc<Client>, items: Vec<PyValue>) -> Result<Self> {
        let id = client.create(Kind::List, PyValue::List(items))?;
        Ok(ListProxy(Handle {
            client: Rc::clone(client),
            id,
        }))
    }

    /// `l.append(value)`.
    pub fn append(&self, value: impl Into<PyValue>) -> Result<()> {
        let (id, value) = (self.0.id, value.into());
        self.0.call(Request::Append { id, value }).map(drop)
    }

    /// `l[i]` (negative `i` counts from the end).
    pub fn get(&self, i: i64) -> Result<PyValue> {
        self.0.get(PyValue::Int(i))
    }

    /// `l[i] = value`.
    pub fn set(&self, i: i64, value: impl Into<PyValue>) -> Result<()> {
        self.0.set(PyValue::Int(i), value.into())
    }

    /// `del l[i]`.
    pub fn remove(&self, i: i64) -> Result<()> {
        self.0.del(PyValue::Int(i))
    }

    /// `l[i] = l[i] <op> v`, in the server in one step.
    pub fn update(&self, i: i64, op: Op) -> Result<PyValue> {
        self.0.update(PyValue::Int(i), op)
    }

    /// `list(l)`: a copy of every item.
    pub fn to_vec(&self) -> Result<Vec<PyValue>> {
        match self.0.snapshot()? {
            PyValue::List(v) => Ok(v),
            other => Err(Error::Protocol(format!(
                "a list snapshot came back as {other}"
            ))),
        }
    }
}

/// A proxy for a dict held by the manager (`manager.dict()`).
#[derive(Clone)]
pub struct DictProxy(Handle);
proxy_common!(DictProxy);

impl DictProxy {
    pub(super) fn create(client: &Rc<Client>, pairs: Vec<(PyValue, PyValue)>) -> Result<Self> {
        let id = client.create(Kind::Dict, PyValue::Dict(pairs))?;
        Ok(DictProxy(Handle {
            client: Rc::clone(client),
            id,
        }))
    }

    /// `d[key]` (`KeyError` if absent).
    pub fn get(&self, key: impl Into<PyValue>) -> Result<PyValue> {
        self.0.get(key.into())
    }

    /// `d[key] = value`.
    pub fn set(&self, key: impl Into<PyValue>, value: impl Into<PyValue>) -> Result<()> {
        self.0.set(key.into(), value.into())
    }

    /// `del d[key]`.
    pub fn remove(&self, key: impl Into<PyValue>) -> Result<()> {
        self.0.del(key.into())
    }

    /// `d[key] = d[key] <op> v`, in the server in one step.
    pub fn update(&self, key: impl Into<PyValue>, op: Op) -> Result<PyValue> {
        self.0.update(key.into(), op)
    }

    /// `list(d.items())`, in insertion order.
    pub fn items(&self) -> Result<Vec<(PyValue, PyValue)>> {
        match self.0.snapshot()? {
            PyValue::Dict(d) => Ok(d),
            other => Err(Error::Protocol(format!(
                "a dict snapshot came back as {other}"
            ))),
        }
    }
}

/// A proxy for a namespace held by the manager (`manager.Namespace()`):
/// writable attributes and no methods.
#[derive(Clone)]
pub struct NamespaceProxy(Handle);
proxy_common!(NamespaceProxy);

impl NamespaceProxy {
    pub(super) fn create(client: &Rc<Client>) -> Result<Self> {
        let id = client.create(Kind::Namespace, PyValue::Dict(Vec::new()))?;
        Ok(NamespaceProxy(Handle {
            client: Rc::clone(client),
            id,
        }))
    }

    /// `ns.name` (`AttributeError` if it was never set).
    pub fn get(&self, name: &str) -> Result<PyValue> {
        self.0.get(name.into())
    }

    /// `ns.name = value`.
    pub fn set(&self, name: &str, value: impl Into<PyValue>) -> Result<()> {
        self.0.set(name.into(), value.into())
    }

    /// `del ns.name`.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.0.del(name.into())
    }

    /// `ns.name = ns.name <op> v` done by the server in one step. Python's
    /// `ns.x += 5` is a get then a set: two processes doing it at once can
    /// lose an update; this cannot.
    pub fn update(&self, name: &str, op: Op) -> Result<PyValue> {
        self.0.update(name.into(), op)
    }

    /// The printed form, exactly as Python's: `Namespace(x=1, y=1)`, the
    /// `name=repr` strings sorted, names starting with `_` hidden.
    pub fn repr(&self) -> Result<String> {
        let PyValue::Dict(attrs) = self.0.snapshot()? else {
            return Err(Error::Protocol("a namespace snapshot is not a dict".into()));
        };
        let mut shown: Vec<String> = attrs
            .iter()
            .filter_map(|(k, v)| match k {
                PyValue::Str(name) if !name.starts_with('_') => Some(format!("{name}={v}")),
                _ => None,
            })
            .collect();
        shown.sort();
        Ok(format!("Namespace({})", shown.join(", ")))
    }
}

/// `print(ns)`: [`NamespaceProxy::repr`]; if the server cannot be reached,
/// the error is printed in angle brackets instead.
impl fmt::Display for NamespaceProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr() {
            Ok(s) => f.write_str(&s),
            Err(e) => write!(f, "<NamespaceProxy: {e}>"),
        }
    }
}

/// `print(l)`: the list's repr, fetched from the server.
impl fmt::Display for ListProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.snapshot() {
            Ok(v) => write!(f, "{v}"),
            Err(e) => write!(f, "<ListProxy: {e}>"),
        }
    }
}
