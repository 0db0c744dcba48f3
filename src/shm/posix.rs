//! Named POSIX shared memory: `shm_open(3)` + `ftruncate(2)` + `mmap(2)`.
//!
//! The steps of the tutorial (`posix_ipc.SharedMemory` + `mmap.mmap`):
//! 1. create the object by name, exclusively (`shm_open(O_CREAT | O_EXCL)`);
//! 2. give it a size (`ftruncate`), since a new object is empty;
//! 3. map it shared (`mmap(MAP_SHARED)`), after which the descriptor may be
//!    closed: the mapping keeps the memory alive;
//! 4. other processes open it by name and map it too; a write through one
//!    mapping is seen through every other;
//! 5. the name is removed with `shm_unlink`: the memory itself lives until the
//!    last mapping goes away.
//!
//! [`ShmOwner`] does step 5 on drop, so a program cannot forget it.

use crate::error::{Error, Result};
use crate::names::{Owner, PosixName, Removable};
use crate::region::SharedRegion;
use crate::sys;
use memmap2::{MmapOptions, MmapRaw};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::OwnedFd;

/// A mapping of a named POSIX shared memory object (`shm_overview(7)`).
/// Dropping it unmaps this process's view; the object stays until unlinked.
#[derive(Debug)]
pub struct SharedMemory {
    name: PosixName,
    map: MmapRaw,
}

/// The creator of a named shared memory object: it derefs to the
/// [`SharedMemory`] and `shm_unlink(3)`s the name when dropped (or at
/// [`Owner::remove`](super::Owner::remove)).
pub type ShmOwner = Owner<SharedMemory>;

impl SharedMemory {
    /// Creates `name` exclusively (`shm_open(O_CREAT | O_EXCL | O_RDWR, 0600)`),
    /// sizes it with `ftruncate(2)` and maps it. Fails with `EEXIST` if the name
    /// is taken and with [`Error::Invalid`] for a size of 0.
    pub fn create(name: &PosixName, size: usize) -> Result<ShmOwner> {
        let len = file_len(size)?;
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR)?;
        // From here on the name exists: unlink it again if a later step fails.
        let unlink_on_error = UnlinkOnError(name);
        sys::nix("ftruncate", name, nix::unistd::ftruncate(&fd, len))?;
        let shm = SharedMemory::map(name, &fd, size)?;
        std::mem::forget(unlink_on_error);
        Ok(Owner::new(shm))
    }

    /// Opens an existing object (`shm_open(O_RDWR)`) and maps all of it; its
    /// size is read with `fstat(2)`. Fails with `ENOENT` if there is no such
    /// object, and with [`Error::Invalid`] if its creator has not sized it yet.
    pub fn open(name: &PosixName) -> Result<SharedMemory> {
        let fd = shm_open(name, OFlag::O_RDWR, Mode::empty())?;
        let stat = sys::nix("fstat", name, nix::sys::stat::fstat(&fd))?;
        let size = usize::try_from(stat.st_size).unwrap_or(0);
        if size == 0 {
            return Err(Error::invalid(
                "shared memory size",
                format!("{name} has size 0: its creator has not called ftruncate yet"),
            ));
        }
        SharedMemory::map(name, &fd, size)
    }

    /// Like [`open`](Self::open), but fails with [`Error::Invalid`] unless the
    /// object holds at least `min_size` bytes (so that reads stay in bounds).
    pub fn open_at_least(name: &PosixName, min_size: usize) -> Result<SharedMemory> {
        let shm = SharedMemory::open(name)?;
        if shm.len() < min_size {
            return Err(Error::invalid(
                "shared memory size",
                format!(
                    "{name} holds {} bytes, {min_size} were expected: was it made by another program?",
                    shm.len()
                ),
            ));
        }
        Ok(shm)
    }

    /// The object's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    fn map(name: &PosixName, fd: &OwnedFd, size: usize) -> Result<SharedMemory> {
        let map = MmapOptions::new()
            .len(size)
            .map_raw(fd)
            .map_err(|e| Error::io(format!("mmap({name}, {size} bytes, MAP_SHARED)"), e))?;
        Ok(SharedMemory {
            name: name.clone(),
            map,
        })
    }
}

impl SharedRegion for SharedMemory {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

impl Removable for SharedMemory {
    /// `shm_unlink(3)`: existing mappings, including this one, stay valid.
    fn remove_name(&self) -> Result<()> {
        shm_unlink(&self.name)
    }
}

/// `shm_unlink(3)` by name, for objects whose owner is gone (a killed creator).
pub fn shm_unlink(name: &PosixName) -> Result<()> {
    sys::nix(
        "shm_unlink",
        name,
        nix::sys::mman::shm_unlink(name.as_c_str()),
    )
}

fn shm_open(name: &PosixName, flags: OFlag, mode: Mode) -> Result<OwnedFd> {
    sys::nix(
        "shm_open",
        name,
        nix::sys::mman::shm_open(name.as_c_str(), flags, mode),
    )
}

/// Checks a requested size: not 0, and representable as a file length.
fn file_len(size: usize) -> Result<libc::off_t> {
    if size == 0 {
        return Err(Error::invalid(
            "shared memory size",
            "0 bytes: give the object a size of at least 1 byte",
        ));
    }
    libc::off_t::try_from(size).map_err(|_| {
        Error::invalid(
            "shared memory size",
            format!("{size} bytes is more than a file can hold"),
        )
    })
}

/// Unlinks a half-made object if creation fails part way.
struct UnlinkOnError<'a>(&'a PosixName);

impl Drop for UnlinkOnError<'_> {
    fn drop(&mut self) {
        let _ = shm_unlink(self.0);
    }
}
