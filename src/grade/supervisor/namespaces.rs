//! Step 1's namespaces, as the report's `containment` says them: private
//! IPC and mount namespaces (entered by `audit::isolate`, through an
//! unprivileged user namespace when not root) and whether POSIX queues can
//! be listed.

use super::super::containment::Piece;
use super::limits::is_root;
use crate::audit::Isolation;

pub(super) fn namespaces_piece(isolation: &Isolation, notes: &[String]) -> Piece {
    if crate::audit::pidns::inside() {
        let user = if is_root() {
            ""
        } else {
            " in an unprivileged user namespace"
        };
        return Piece::held(
            format!(
                "private PID, IPC and mount namespaces{user} (fresh /proc, /dev/shm and mqueue)"
            ),
            "every object found was made by the port; it sees only its own processes, and every process it leaves dies with the run",
        );
    }
    let pid_note = crate::audit::pidns::why_not()
        .map(|why| format!("; no PID namespace ({why})"))
        .unwrap_or_default();
    match isolation {
        Isolation::Namespaces if is_root() => Piece::held(
            format!("private IPC and mount namespaces (fresh /dev/shm and mqueue){pid_note}"),
            "every object found was made by the port; it can see the host's processes",
        ),
        Isolation::Namespaces => Piece::held(
            format!(
                "private IPC and mount namespaces in an unprivileged user namespace (fresh /dev/shm and mqueue){pid_note}"
            ),
            "every object found was made by the port; it can see the host's processes",
        ),
        Isolation::Shared => Piece::missing(
            notes
                .iter()
                .find(|n| n.contains("namespaces") || n.contains("isolation off"))
                .cloned()
                .unwrap_or_else(|| "host namespaces".into()),
            "a leaked object is attributed by timing and may be another process's; the port can see and touch the host's IPC objects",
        ),
    }
}

pub(super) fn listing_piece(sources: &crate::audit::ledger::Sources, notes: &[String]) -> Piece {
    match &sources.mqueue_dir {
        Some(dir) => Piece::held(
            format!("mqueue file system at {}", dir.display()),
            "every kind of named IPC object is listed",
        ),
        None => Piece::missing(
            notes
                .iter()
                .find(|n| n.contains("message queues"))
                .cloned()
                .unwrap_or_else(|| "no mqueue file system".into()),
            "a POSIX message queue left behind cannot be seen: the leaks check is not performed",
        ),
    }
}
