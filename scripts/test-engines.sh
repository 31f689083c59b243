#!/usr/bin/env bash
# Runs the real-engine tests against each Docker engine godwit supports (GODWIT_ENGINE, see
# internal/dockerd), one engine after the other, and prints a matrix: engine, result, failed
# tests, skipped tests. Logs go to out/engines/<engine>.log. Exit status 1 when any engine
# fails or skips a test that needs it.
#
#   ENGINES="26.1 28.5" RUN='TestDockerMigration' scripts/test-engines.sh
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
ENGINES=${ENGINES:-"20.10 26.1 28.5"}
RUN=${RUN:-.}
# The packages whose tests start engines (internal/dockerd); their other tests run too.
PKGS=${PKGS:-"./internal/dockerd/ ./migrate/ ./cmd/godwit/ ./internal/agent/ ./internal/api/ ./internal/calibrate/"}
mkdir -p out/engines
status=0
rows=()
for e in $ENGINES; do
	log=out/engines/$e.log
	printf 'test-engines: Docker %s ...\n' "$e" >&2
	# shellcheck disable=SC2086
	GODWIT_ENGINE=$e $GO test -count=1 -timeout 60m -v -run "$RUN" $PKGS >"$log" 2>&1
	rc=$?
	failed=$(grep -E '^\s*--- FAIL' "$log" | awk '{print $3}' | paste -sd' ' -)
	skipped=$(grep -E '^\s*--- SKIP' "$log" | awk '{print $3}' | paste -sd' ' -)
	# A skip that names a missing engine, root, Docker or CRIU means the engine was not tested.
	engineSkips=$(grep -EA1 '^\s*--- SKIP' "$log" | grep -Ei 'needs (Docker|dockerd|root|CRIU)' | wc -l)
	result=PASS
	[ $rc -eq 0 ] || result=FAIL
	[ "$engineSkips" -eq 0 ] || result="$result (engine tests skipped)"
	{ [ $rc -eq 0 ] && [ "$engineSkips" -eq 0 ]; } || status=1
	rows+=("$(printf '%-6s %-30s failed: %s\n       skipped: %s' "$e" "$result" "${failed:--}" "${skipped:--}")")
done
printf '\nengine result\n'
printf '%s\n' "${rows[@]}"
exit $status
