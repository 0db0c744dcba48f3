#!/bin/sh
# Runs a command in IPC and mount namespaces of its own, with a fresh
# /dev/shm (unshare(1); a user namespace maps the caller to root in it).
# Every POSIX/System V object and /dev/shm file the command leaves is gone
# when it ends. `make mutants` uses it: a mutant that turns an unlink or a
# Drop into a no-op leaks by design (two mutant runs once left 94 POSIX
# queues on the host).
set -eu
if ! unshare --map-root-user --ipc --mount true 2>/dev/null; then
	echo "in-private-ipc: cannot make IPC and mount namespaces here (unshare(1));" >&2
	echo "refusing to run '$*' in the host's: its leaks would stay behind" >&2
	exit 2
fi
exec unshare --map-root-user --ipc --mount --propagation private \
	sh -c 'mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$@"' sh "$@"
