#!/usr/bin/env bash
# Installs CRIU >= 4.2 into a private prefix without touching the system's libc, then proves
# it works with `criu check`. Idempotent. See ../shared/ENVIRONMENT.md: bookworm's criu 3.17
# fails on this kernel, trixie's 4.1 cannot dump TCP sockets, sid's 4.2.x works but needs
# glibc >= 2.38, so we extract it and its library closure into PREFIX and run it through that
# prefix's own dynamic loader.
set -euo pipefail

PREFIX=${GODWIT_CRIU_PREFIX:-/opt/godwit/criu}
BINDIR=${GODWIT_BINDIR:-/opt/godwit/bin}
MIN_VERSION=4.2

log() { printf 'install-criu: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

version_ok() { # $1 = "x.y[.z]"
	local v=$1 maj min
	maj=${v%%.*}; min=${v#*.}; min=${min%%.*}
	[ "$maj" -gt 4 ] || { [ "$maj" -eq 4 ] && [ "$min" -ge 2 ]; }
}

if [ -x "$BINDIR/criu" ]; then
	v=$("$BINDIR/criu" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -1 || true)
	if [ -n "$v" ] && version_ok "$v" && "$BINDIR/criu" check >/dev/null 2>&1; then
		log "CRIU $v already installed at $BINDIR/criu and 'criu check' passes"
		exit 0
	fi
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (installs apt sources and $PREFIX)"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian hosts"

# Newer suites as low-priority sources: nothing installed on the system is upgraded from them
# (priority 50 < 100 of installed packages), we only download from them explicitly.
src=/etc/apt/sources.list.d/godwit-criu.sources
pref=/etc/apt/preferences.d/godwit-criu
if [ ! -f "$src" ] || [ ! -f "$pref" ]; then
	log "adding trixie and sid as low-priority apt sources"
	cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	cat >"$pref" <<'PREF'
Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=sid
Pin-Priority: 50
PREF
	apt-get update -qq
elif ! apt-cache show criu/sid >/dev/null 2>&1; then
	apt-get update -qq
fi

# apt-cache is slow to start (three suites of metadata), so each package's sid record is
# read once and memoized.
declare -A record=()
sid_record() { # sets REC to the package's sid record, empty when sid lacks it
	if [ -z "${record[$1]+x}" ]; then
		record[$1]=$(apt-cache show "$1/sid" 2>/dev/null | awk '/^$/{exit} {print}' || true)
	fi
	REC=${record[$1]}
}

# Breadth-first closure of criu's runtime dependencies, resolved from sid's metadata: for each
# Depends/Pre-Depends entry, the first alternative that sid has.
declare -A seen=()
queue=(criu libcompel1)
pkgs=()
while [ ${#queue[@]} -gt 0 ]; do
	p=${queue[0]}; queue=("${queue[@]:1}")
	[ -z "${seen[$p]:-}" ] || continue
	seen[$p]=1
	sid_record "$p"
	[ -n "$REC" ] || die "package $p not found in sid"
	pkgs+=("$p")
	deps=$(printf '%s\n' "$REC" | awk '/^(Pre-)?Depends:/{sub(/^[^:]*: /,""); print}' | tr ',' '\n')
	while read -r alt; do
		[ -n "$alt" ] || continue
		IFS='|' read -ra choices <<<"$alt"
		for c in "${choices[@]}"; do
			name=$(echo "$c" | sed 's/(.*)//; s/:any//; s/[[:space:]]//g')
			[ -n "${seen[$name]:-}" ] && break
			sid_record "$name"
			if [ -n "$REC" ]; then queue+=("$name"); break; fi
		done
	done <<<"$deps"
done
log "packages to extract: ${pkgs[*]}"

work=$(mktemp -d)
chmod 0755 "$work" # apt downloads as _apt
trap 'rm -rf "$work"' EXIT
(cd "$work" && for p in "${pkgs[@]}"; do apt-get download -qq "$p/sid" || exit 1; done) ||
	die "apt-get download failed"

rm -rf "$PREFIX.new"
mkdir -p "$PREFIX.new"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$PREFIX.new"; done
[ -x "$PREFIX.new/usr/sbin/criu" ] || die "criu binary missing after extraction"
rm -rf "$PREFIX"
mv "$PREFIX.new" "$PREFIX"

mkdir -p "$BINDIR"
cat >"$BINDIR/criu.new" <<WRAP
#!/bin/sh
# godwit: CRIU from Debian sid run through its own loader and libraries (scripts/install-criu.sh).
P=$PREFIX
exec "\$P/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "\$P/usr/lib/x86_64-linux-gnu:\$P/lib/x86_64-linux-gnu" "\$P/usr/sbin/criu" "\$@"
WRAP
chmod 0755 "$BINDIR/criu.new"
mv "$BINDIR/criu.new" "$BINDIR/criu"

v=$("$BINDIR/criu" --version | sed -n 's/^Version: *//p' | head -1)
version_ok "$v" || die "installed CRIU version '$v' is older than $MIN_VERSION"
if ! out=$("$BINDIR/criu" check 2>&1); then
	die "'criu check' failed with CRIU $v: $out"
fi
log "CRIU $v installed at $BINDIR/criu; criu check: $(echo "$out" | tail -1)"
