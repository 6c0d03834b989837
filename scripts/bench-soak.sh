#!/usr/bin/env bash
# The worker's soak (docs/benchmarks.md): CALLS missing calls (default 10000) queued at once and
# drained by concurrent invocations of the worker's code through 20 % transient Verint faults
# (503, 429, 500, connections dropped mid-body, lost responses) and 10 % Connect throttling, with
# CONNECT_MAX_RPS=50. Reports calls lost, calls ingested twice, and the drain's wall time against
# CALLS / 50 s. A benchmark, not a CI test.
#   scripts/bench-soak.sh [CALLS [extra soak arguments...]]
#   e.g. scripts/bench-soak.sh 500 --invocations 10
# Needs moto on $MOTO_URL (started with scripts/stack.sh up when it does not answer).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CALLS="${1:-10000}"
shift || true
MOTO_URL="${MOTO_URL:-http://127.0.0.1:5055}"
log() { echo "bench-soak: $*" >&2; }
die() { log "$*"; exit 1; }
answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

[[ "$CALLS" =~ ^[0-9]+$ ]] && (( CALLS > 0 )) || die "CALLS must be a positive integer, not '$CALLS'"
command -v curl >/dev/null || die "curl is required: apt-get install -y curl"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is required: apt-get install -y time"

log "building the soak (${BENCH_PROFILE:-release})"
BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:soak)"
answers "$MOTO_URL/moto-api/" || "$ROOT/scripts/stack.sh" up
answers "$MOTO_URL/moto-api/" || die "moto does not answer at $MOTO_URL"

OUT="$CALL_RECOVERY_HOME/bench-soak"
mkdir -p "$OUT"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v -o "$OUT/time" "$BIN/soak" --moto-url "$MOTO_URL" --calls "$CALLS" \
  --connect-max-rps 50 --verint-faults 0.20 --connect-throttle 0.10 "$@" | tee "$OUT/soak.out"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
field() { awk -F': *' -v k="$1" '$1 == k { split($2, a, " "); print a[1] }' "$OUT/soak.out"; }
ok() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo NO; fi; }
LOST="$(field lost)"
TWICE="$(field "ingested twice")"
RATIO="$(field "drain / floor" | tr -d x)"
cat <<SUMMARY

== bench-soak summary: $CALLS calls, $(nproc) cores ==
load average before $LOAD_BEFORE, after $LOAD_AFTER (other work on the machine shows here)
| measure                 | value | target | met |
|-------------------------|-------|--------|-----|
| lost                    | $LOST | 0 | $(ok "$LOST == 0") |
| ingested twice          | $TWICE | 0 | $(ok "$TWICE == 0") |
| drain wall / (CALLS/50) | ${RATIO}x ($(field "drain wall") s against $(field "rate floor") s) | <= 1.3x | $(ok "$RATIO <= 1.3") |
| dead-lettered           | $(field dead-lettered) | | |
SUMMARY
