#!/usr/bin/env bash
# Host set-up for post-copy (lazy pages) migration, idempotent. CRIU's page server grows its
# pipes to 4 MiB with F_SETPIPE_SZ; without CAP_SYS_RESOURCE that needs fs.pipe-max-size of
# at least 4 MiB, or the transfer fails ("page-pipe: tee: ... Operation not permitted").
# Raises the limit only when it is lower; never lowers it.
set -euo pipefail
want=$((4 << 20))
have=$(cat /proc/sys/fs/pipe-max-size)
if [ "$have" -lt "$want" ]; then
	echo "$want" >/proc/sys/fs/pipe-max-size
	printf 'setup-postcopy: fs.pipe-max-size raised from %s to %s\n' "$have" "$want" >&2
fi
