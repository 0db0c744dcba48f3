//! The subreaper guard: `prctl(2)` with `PR_SET_CHILD_SUBREAPER`.
//!
//! When a process dies, its children are re-parented ("adopted"). Normally the
//! adopter is init (pid 1); a process that has set the *child subreaper* flag
//! adopts the orphans of all its descendants instead, and so can reap them and
//! see how they ended. The audit becomes a subreaper for the tree it watches.

use crate::error::Result;
use crate::sys;

/// While held, this process is a child subreaper; dropping the guard restores
/// the flag to what it was.
///
/// The flag belongs to the whole process: in a test binary use it only in
/// `#[serial]` tests in a test file of their own, and reap (by pid) every
/// process adopted while it was held.
pub struct Subreaper {
    was: bool,
}

impl Subreaper {
    /// Sets `PR_SET_CHILD_SUBREAPER` to 1, remembering the old value.
    pub fn acquire() -> Result<Subreaper> {
        let was = is_subreaper()?;
        set(true)?;
        Ok(Subreaper { was })
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        let _ = set(self.was);
    }
}

/// `prctl(PR_GET_CHILD_SUBREAPER)`: whether this process is a subreaper now.
pub fn is_subreaper() -> Result<bool> {
    let mut flag: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer we pass.
    let ret = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut flag as *mut libc::c_int) };
    sys::check("prctl", "PR_GET_CHILD_SUBREAPER", ret)?;
    Ok(flag != 0)
}

fn set(on: bool) -> Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes a plain integer flag.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, on as libc::c_ulong) };
    sys::check("prctl", "PR_SET_CHILD_SUBREAPER", ret).map(|_| ())
}
