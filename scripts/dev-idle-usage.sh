#!/usr/bin/env bash
# Measures the CPU and memory of the agents of the local cluster (`godwit dev up`) while
# idle: CPU time (utime+stime from /proc/PID/stat) over SECONDS, and resident memory
# (VmRSS) at the end. Usage: scripts/dev-idle-usage.sh [SECONDS] (default 60).
# The state file is GODWIT_DEV_STATE or /run/godwit/dev.json.
set -euo pipefail
secs=${1:-60}
state=${GODWIT_DEV_STATE:-/run/godwit/dev.json}
[ -r "$state" ] || { echo "no local cluster state at $state (godwit dev up)" >&2; exit 1; }
mapfile -t pids < <(grep -o '"agentPID": *[0-9]*' "$state" | grep -o '[0-9]*$')
[ "${#pids[@]}" -gt 0 ] || { echo "no agent PIDs in $state" >&2; exit 1; }
tck=$(getconf CLK_TCK)
cpu() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
declare -A start
for p in "${pids[@]}"; do start[$p]=$(cpu "$p"); done
sleep "$secs"
total_cpu=0
total_rss=0
printf '%-8s %10s %10s\n' PID CPU% RSS_MiB
for p in "${pids[@]}"; do
  used=$(( $(cpu "$p") - ${start[$p]} ))
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")
  pct=$(awk -v u="$used" -v t="$tck" -v s="$secs" 'BEGIN { printf "%.2f", 100 * u / t / s }')
  printf '%-8s %10s %10.1f\n' "$p" "$pct" "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')"
  total_cpu=$(( total_cpu + used ))
  total_rss=$(( total_rss + rss ))
done
awk -v u="$total_cpu" -v t="$tck" -v s="$secs" -v n="${#pids[@]}" -v r="$total_rss" \
  'BEGIN { printf "mean per agent over %ds: %.2f%% of one core, %.1f MiB RSS\n", s, 100 * u / t / s / n, r / 1024 / n }'
