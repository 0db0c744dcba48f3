//! The owner of a named IPC object: whoever created it removes it.
//!
//! Named objects outlive the processes that made them until their name is
//! removed (`shm_unlink(3)`, `sem_unlink(3)`, `semctl(IPC_RMID)`). An
//! [`Owner`] wraps the creator's handle, derefs to it, and removes the name
//! exactly once: explicitly with [`Owner::remove`] (which reports errors) or
//! when dropped (which cannot). [`ShmOwner`](crate::shm::ShmOwner),
//! [`NamedSemOwner`](crate::sync::NamedSemOwner) and
//! [`SysvSemOwner`](crate::sync::SysvSemOwner) are this type.

use crate::error::Result;

/// A named object whose name can be removed from the system.
pub trait Removable {
    /// Removes the name (the object itself lives on while it is open or
    /// mapped, for POSIX objects; a System V set goes at once).
    fn remove_name(&self) -> Result<()>;
}

/// The creator of a named object: derefs to it and removes its name on drop.
#[derive(Debug)]
pub struct Owner<T: Removable> {
    object: T,
    removed: bool,
}

impl<T: Removable> Owner<T> {
    /// Takes charge of a freshly created object.
    pub(crate) fn new(object: T) -> Owner<T> {
        Owner {
            object,
            removed: false,
        }
    }

    /// Removes the name now and reports any error. Calling it again (or the
    /// drop afterwards) does nothing.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        self.object.remove_name()
    }
}

impl<T: Removable> std::ops::Deref for Owner<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.object
    }
}

impl<T: Removable> Drop for Owner<T> {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}
