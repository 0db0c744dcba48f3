//! Anonymous shared memory for related processes: `mmap(MAP_SHARED | MAP_ANONYMOUS)`.
//!
//! This is what `multiprocessing.Value` and `Array` live in: memory with no
//! name, made before `fork(2)`, that parent and children keep sharing after it
//! (the mapping is inherited, not copied). Note that `MAP_PRIVATE` (what
//! `memmap2::MmapMut::map_anon` gives) would *not* do: after `fork` each side
//! would get its own copy on write, and a child's writes would be invisible.

use super::SharedRegion;
use crate::error::{Error, Result};
use crate::sys;
use nix::sys::mman::{MapFlags, ProtFlags};
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// An anonymous `MAP_SHARED` mapping, zero-filled by the kernel; unmapped
/// (`munmap(2)`) on drop. Children forked while it exists share it.
#[derive(Debug)]
pub struct AnonMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; sharing the
// pointer between threads is no different from sharing it between processes,
// which is the point. Every typed access goes through `SharedRegion`, which
// uses volatile reads and writes, or through process-shared pthread objects.
unsafe impl Send for AnonMapping {}
// SAFETY: see `Send`.
unsafe impl Sync for AnonMapping {}

impl AnonMapping {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)`.
    /// A length of 0 is [`Error::Invalid`].
    pub fn new(len: usize) -> Result<AnonMapping> {
        let size = NonZeroUsize::new(len).ok_or_else(|| {
            Error::invalid(
                "shared memory size",
                "0 bytes: an anonymous mapping needs at least 1 byte",
            )
        })?;
        // SAFETY: we ask for a fresh mapping at an address of the kernel's
        // choosing, so no existing memory is affected.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        };
        let ptr = sys::nix("mmap", format!("{len} anonymous shared bytes"), ptr)?;
        Ok(AnonMapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl SharedRegion for AnonMapping {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for AnonMapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned, and nothing borrows
        // from the mapping past the life of `self` (borrows are tied to it).
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) };
    }
}
