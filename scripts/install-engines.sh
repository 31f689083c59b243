#!/usr/bin/env bash
# Installs the newer Docker engines godwit supports side by side with the system's docker.io
# 20.10, each in its own prefix, without upgrading anything on the machine. Idempotent.
#
#   /opt/godwit/engines/docker-26.1   docker.io 26.1.x from Debian trixie, containerd 1.7.x
#   /opt/godwit/engines/docker-28.5   docker.io 28.5.x from Debian sid, containerd 2.1.x
#
# dockerd and containerd from those suites need glibc >= 2.34 only, so they run on bookworm as
# extracted. Their runc needs glibc 2.38 and re-executes itself (`runc init`), which a loader
# wrapper cannot follow, so every engine uses the system's runc (bookworm); docker-init is
# sid's statically linked tini. internal/dockerd selects an engine per run (GODWIT_ENGINE) by
# putting its prefix first on the daemon's PATH.
#
# Needs the low-priority trixie and sid apt sources that scripts/install-criu.sh adds.
set -euo pipefail

ROOT=${GODWIT_ENGINES_DIR:-/opt/godwit/engines}

log() { printf 'install-engines: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs $ROOT)"
command -v runc >/dev/null || die "runc missing (scripts/deps.sh installs bookworm's runc)"
[ -f /etc/apt/sources.list.d/godwit-criu.sources ] ||
	die "trixie/sid apt sources missing (scripts/install-criu.sh adds them)"

# engine NAME SUITE DOCKER_VERSION_PREFIX CONTAINERD_VERSION_PREFIX
engine() {
	local name=$1 suite=$2 dver=$3 cver=$4
	local prefix=$ROOT/docker-$name
	local stamp=$prefix/.godwit-installed
	if [ -f "$stamp" ] && [ -x "$prefix/usr/sbin/dockerd" ] && [ -x "$prefix/usr/bin/containerd" ] &&
		"$prefix/usr/sbin/dockerd" --version >/dev/null 2>&1; then
		log "Docker $name already installed in $prefix ($(cat "$stamp"))"
		return 0
	fi
	local have
	have=$(apt-cache show "docker.io/$suite" 2>/dev/null | sed -n 's/^Version: //p' | head -1 || true)
	if [ -z "$have" ]; then
		apt-get update -qq
		have=$(apt-cache show "docker.io/$suite" 2>/dev/null | sed -n 's/^Version: //p' | head -1 || true)
	fi
	case "$have" in
	"$dver".*) ;;
	*) die "Debian $suite has docker.io '$have', expected $dver.x" ;;
	esac
	local chave
	chave=$(apt-cache show "containerd/$suite" 2>/dev/null | sed -n 's/^Version: //p' | head -1 || true)
	case "$chave" in
	"$cver".*) ;;
	*) die "Debian $suite has containerd '$chave', expected $cver.x" ;;
	esac
	local work
	work=$(mktemp -d)
	chmod 0755 "$work" # apt downloads as _apt
	(cd "$work" && apt-get download -qq "docker.io/$suite" "containerd/$suite" "tini-static/sid") ||
		{ rm -rf "$work"; die "apt-get download for Docker $name failed"; }
	rm -rf "$prefix.new"
	mkdir -p "$prefix.new"
	for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$prefix.new"; done
	rm -rf "$work"
	[ -x "$prefix.new/usr/sbin/dockerd" ] || die "dockerd missing after extracting docker.io/$suite"
	[ -x "$prefix.new/usr/bin/containerd-shim-runc-v2" ] || die "containerd shim missing after extracting containerd/$suite"
	[ -e "$prefix.new/usr/bin/docker-init" ] || die "docker-init missing after extracting docker.io/$suite"
	# Only the daemons are needed; the rest of the packages (systemd units, docs) goes.
	rm -rf "$prefix.new/etc" "$prefix.new/lib" "$prefix.new/usr/share" "$prefix.new/usr/lib"
	"$prefix.new/usr/sbin/dockerd" --version >/dev/null 2>&1 || die "dockerd from $suite does not run on this host"
	"$prefix.new/usr/bin/containerd" --version >/dev/null 2>&1 || die "containerd from $suite does not run on this host"
	printf 'docker.io %s, containerd %s\n' "$have" "$chave" >"$prefix.new/.godwit-installed"
	rm -rf "$prefix"
	mv "$prefix.new" "$prefix"
	log "Docker $name installed in $prefix: $(cat "$stamp")"
}

mkdir -p "$ROOT"
engine 26.1 trixie 26.1 1.7
engine 28.5 sid 28.5 2.1
