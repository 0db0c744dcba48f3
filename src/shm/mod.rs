//! Shared memory (CATALOGUE.md section 5): named POSIX objects, anonymous
//! shared mappings, and Python's typed `Value` and `Array` on top of them.
//!
//! | Python                                   | ipckit                               | system calls |
//! |------------------------------------------|--------------------------------------|--------------|
//! | `posix_ipc.SharedMemory("/n", O_CREX, size=8)` | [`SharedMemory::create`] -> [`ShmOwner`] | `shm_open(3)`, `ftruncate(2)`, `mmap(2)` |
//! | `posix_ipc.SharedMemory("/n")`           | [`SharedMemory::open`]               | `shm_open(3)`, `fstat(2)`, `mmap(2)` |
//! | `shm.unlink()`                           | [`Owner::remove`] (and its drop)     | `shm_unlink(3)` |
//! | memory `multiprocessing` shares with children | [`AnonMapping`]                 | `mmap(MAP_SHARED \| MAP_ANONYMOUS)` |
//! | `Value('d', 0.0)`, `Value('i', 0, lock=False)` | [`Value`]                      | (the above) + a robust mutex |
//! | `Array('i', range(10))`, `Array('c', b"hi")` | [`Array`]                        | (the above) + a robust mutex |
//! | typecodes `'c' 'b' 'B' 'h' ... 'd'`      | [`Typecode`], [`describe`]           | |
//!
//! Both kinds of memory implement [`SharedRegion`]: bounds-checked, volatile
//! reads and writes of plain values, and [`SharedRegion::place`] to put a
//! process-shared object (a [`RobustMutex`](crate::sync::RobustMutex), a
//! [`SharedCondvar`](crate::sync::SharedCondvar)) at an offset.

mod posix;
mod typecode;
mod value;

// The base layer's pieces this module is built on, where a reader of the
// shared-memory lesson looks for them (and where they were before `names` and
// `region` were split out).
pub use crate::names::{MAX_NAME_LEN, Owner, PosixName, Removable};
pub use crate::region::{AnonMapping, SharedRegion};
pub use posix::{SharedMemory, ShmOwner, shm_unlink};
pub use typecode::{Char, TYPECODES, Typecode, describe, expect_typecode};
pub use value::{Array, Value, ValueOptions};
