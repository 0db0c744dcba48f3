//! What travels between a proxy and the server: one [`Request`] frame, one
//! [`Reply`] frame (length prefix + postcard, [`crate::frame`]).
//!
//! Python's proxies send `(id, methodname, args, kwds)` and get `('#RETURN',
//! value)` or `('#ERROR', exception)`; the kit's requests are a closed enum,
//! and an error comes back as its message.

use crate::pyvalue::{Op, PyValue};
use serde::{Deserialize, Serialize};

/// Which kind of shared object a [`Request::Create`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// `manager.list()`.
    List,
    /// `manager.dict()`.
    Dict,
    /// `manager.Namespace()`.
    Namespace,
}

/// The number the server gives each shared object (Python's proxy `_id`).
pub type ObjectId = u64;

/// One request. `key` is an index (`Int`) for a list, any value for a dict, and
/// an attribute name (`Str`) for a namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Makes an object of `kind` from `init` (a `List`, a `Dict`, or a `Dict`
    /// of attribute names); replies with its id as an `Int`.
    Create {
        /// The kind of object.
        kind: Kind,
        /// Its initial contents.
        init: PyValue,
    },
    /// `obj[key]` / `getattr(obj, key)`.
    Get {
        /// The object.
        id: ObjectId,
        /// The index, key or attribute name.
        key: PyValue,
    },
    /// `obj[key] = value` / `setattr(obj, key, value)`.
    Set {
        /// The object.
        id: ObjectId,
        /// The index, key or attribute name.
        key: PyValue,
        /// The new value.
        value: PyValue,
    },
    /// `del obj[key]` / `delattr(obj, key)`.
    Del {
        /// The object.
        id: ObjectId,
        /// The index, key or attribute name.
        key: PyValue,
    },
    /// `list.append(value)`.
    Append {
        /// The list.
        id: ObjectId,
        /// The new last item.
        value: PyValue,
    },
    /// `len(obj)`.
    Len {
        /// The object.
        id: ObjectId,
    },
    /// A copy of the whole object: a `List`, or a `Dict` (attributes for a namespace).
    Snapshot {
        /// The object.
        id: ObjectId,
    },
    /// `obj[key] = obj[key] <op> v` done in the server in one step (atomic);
    /// replies with the new value.
    Update {
        /// The object.
        id: ObjectId,
        /// The index, key or attribute name.
        key: PyValue,
        /// The operation.
        op: Op,
    },
    /// Stops the server (Python's `manager.shutdown()`).
    Shutdown,
}

/// The answer to a request: the value, or the error's message.
pub type Reply = std::result::Result<PyValue, String>;

/// The largest request or reply frame either side accepts (16 MiB).
pub const MAX_MESSAGE: usize = 16 << 20;
