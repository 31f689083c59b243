#!/usr/bin/env bash
# Host set-up for godwit's demo and tests, idempotent: Docker engine 20.10 (docker.io, with
# containerd and runc), Docker 26.1 and 28.5 side by side in private prefixes
# (scripts/install-engines.sh), CRIU >= 4.2 in a private prefix (scripts/install-criu.sh), the
# godwit-runc runtime wrapper, fs.pipe-max-size for post-copy
# (scripts/setup-postcopy.sh), Chromium for the simulator report test, and promtool for the
# metrics test. Fails loudly when something cannot be installed; ends with `criu check`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf 'deps: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "ERROR: must run as root (installs packages, starts dockerd in tests)"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v nsenter >/dev/null || need+=(util-linux)
command -v promtool >/dev/null || need+=(promtool)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v dockerd >/dev/null || { log "ERROR: dockerd still missing after installing docker.io"; exit 1; }
log "$(dockerd --version)"

"$here/install-criu.sh"
"$here/setup-postcopy.sh"
"$here/install-engines.sh"

install -d /opt/godwit/bin
install -m 0755 "$here/godwit-runc" /opt/godwit/bin/godwit-runc
log "godwit-runc installed at /opt/godwit/bin/godwit-runc"

out=$(/opt/godwit/bin/criu check 2>&1) || { log "ERROR: criu check failed: $out"; exit 1; }
log "criu check: $out"
