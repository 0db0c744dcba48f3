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

mod anon;
mod name;
mod owner;
mod posix;
mod typecode;
mod value;

pub use anon::AnonMapping;
pub use name::{MAX_NAME_LEN, PosixName};
pub(crate) use name::{check_name, unique_name};
pub use owner::{Owner, Removable};
pub use posix::{SharedMemory, ShmOwner, shm_unlink};
pub use typecode::{Char, TYPECODES, Typecode, describe, expect_typecode};
pub use value::{Array, Options, Value};

use crate::error::{Error, Result};

/// Memory shared between processes: a base pointer and a length, with
/// bounds-checked access. Reads and writes are volatile: another process may
/// change the memory at any time, so the compiler must not cache it.
pub trait SharedRegion {
    /// The first byte of the mapping.
    fn as_ptr(&self) -> *mut u8;

    /// The mapping's length in bytes.
    fn len(&self) -> usize;

    /// True for an empty mapping (never the case for the types of this module).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A pointer to a `T` at `offset`, after checking that it is in bounds and
    /// aligned for `T` ([`Error::Invalid`] otherwise). Use it to place
    /// process-shared objects (`RobustMutex::init_at(region.place(0)?, ..)`).
    fn place<T>(&self, offset: usize) -> Result<*mut T> {
        let size = std::mem::size_of::<T>();
        let fits = offset
            .checked_add(size)
            .is_some_and(|end| end <= self.len());
        if !fits {
            return Err(Error::invalid(
                "shared memory offset",
                format!(
                    "{size} bytes at offset {offset} do not fit in a region of {} bytes",
                    self.len()
                ),
            ));
        }
        // SAFETY: offset + size <= len, so the pointer stays inside the mapping.
        let ptr = unsafe { self.as_ptr().add(offset) };
        if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return Err(Error::invalid(
                "shared memory offset",
                format!(
                    "offset {offset} is not aligned to {} bytes",
                    std::mem::align_of::<T>()
                ),
            ));
        }
        Ok(ptr.cast())
    }

    /// Reads a `T` at `offset` (`read_volatile`).
    fn read<T: Typecode>(&self, offset: usize) -> Result<T> {
        let ptr = self.place::<T>(offset)?;
        // SAFETY: in bounds and aligned (checked by `place`), and every bit
        // pattern is a valid `T` (the `Typecode` types are plain C types).
        Ok(unsafe { ptr.read_volatile() })
    }

    /// Writes a `T` at `offset` (`write_volatile`).
    fn write<T: Typecode>(&self, offset: usize, value: T) -> Result<()> {
        let ptr = self.place::<T>(offset)?;
        // SAFETY: in bounds and aligned (checked by `place`); the memory is
        // plain bytes that no Rust reference borrows.
        unsafe { ptr.write_volatile(value) };
        Ok(())
    }
}
