//! Memory regions (base layer): memory shared between processes, read and
//! written only through bounds- and alignment-checked, volatile accesses.
//!
//! [`AnonMapping`] is memory with no name shared with forked children
//! (`mmap(2)` with `MAP_SHARED | MAP_ANONYMOUS`); named POSIX shared memory
//! ([`SharedMemory`](crate::shm::SharedMemory)) is the same [`SharedRegion`]
//! with a name. Locks, condition variables and queues are placed in them.

mod anon;

pub use anon::AnonMapping;

use crate::error::{Error, Result};

pub(crate) mod sealed {
    /// Only this crate implements [`Plain`](super::Plain).
    pub trait Sealed {}
}

/// A plain C value: every bit pattern is a valid value of the type, so it
/// may be read from memory another process writes. Sealed: implemented for
/// the integer and floating-point types (and `shm::Char`).
pub trait Plain: sealed::Sealed + Copy {}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Plain for $t {}
    )*};
}
plain!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

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
    fn read<T: Plain>(&self, offset: usize) -> Result<T> {
        let ptr = self.place::<T>(offset)?;
        // SAFETY: in bounds and aligned (checked by `place`), and every bit
        // pattern is a valid `T` (`Plain`, a sealed trait of plain C types).
        Ok(unsafe { ptr.read_volatile() })
    }

    /// Writes a `T` at `offset` (`write_volatile`).
    fn write<T: Plain>(&self, offset: usize, value: T) -> Result<()> {
        let ptr = self.place::<T>(offset)?;
        // SAFETY: in bounds and aligned (checked by `place`); the memory is
        // plain bytes that no Rust reference borrows.
        unsafe { ptr.write_volatile(value) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region of `len` bytes that never maps anything: enough for the
    /// trait's own methods.
    struct Lengthy(usize);
    impl SharedRegion for Lengthy {
        fn as_ptr(&self) -> *mut u8 {
            std::ptr::NonNull::dangling().as_ptr()
        }
        fn len(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn a_region_is_empty_exactly_when_it_has_no_bytes() {
        assert!(Lengthy(0).is_empty());
        assert!(!Lengthy(1).is_empty());
        assert!(!AnonMapping::new(1).unwrap().is_empty());
    }
}
