#!/bin/sh
# Runs a command in IPC and mount namespaces of its own, with a fresh
# /dev/shm (unshare(1)). Every POSIX/System V object and /dev/shm file the
# command leaves is gone when it ends. `make mutants` uses it: a mutant that
# turns an unlink or a Drop into a no-op leaks by design (two mutant runs
# once left 94 POSIX queues on the host).
#
# As root no user namespace is made, so the tests that drop to another uid
# still can; an ordinary user gets one that maps them to root (only their own
# uid exists in it, so those tests skip or fail as they do without root).
set -eu
if [ "$(id -u)" = 0 ]; then userns=""; else userns="--map-root-user"; fi
if ! unshare $userns --ipc --mount true 2>/dev/null; then
	echo "in-private-ipc: cannot make IPC and mount namespaces here (unshare(1));" >&2
	echo "refusing to run '$*' in the host's: its leaks would stay behind" >&2
	exit 2
fi
exec unshare $userns --ipc --mount --propagation private \
	sh -c 'mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$@"' sh "$@"
