#!/usr/bin/env bash
# Benchmarks `recoveryctl coverage` on one large day (docs/benchmarks.md): bench-coverage writes a
# manual run's report, its ledger of ROWS eligible contacts and the worker's outcomes for the
# missing ones into moto; then `coverage --json` and `--csv` of that day are timed RUNS times each.
#   scripts/bench-coverage.sh [ROWS]     ROWS defaults to 1000000; BENCH_PROFILE=debug|release;
#                                        MISSING=0.024 the share of rows with an outcome
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS="${1:-1000000}" RUNS="${RUNS:-3}" PROFILE="${BENCH_PROFILE:-release}" DAY=2026-11-30
[[ -x /usr/bin/time ]] || die "/usr/bin/time is required: apt-get install -y time"
stack_env >&2
BIN="$(build_bins "$PROFILE" local-stack:bench-coverage recoveryctl:recoveryctl)"
export STATE_BUCKET="bench-coverage-$ROWS-$RANDOM" STATE_PREFIX=call-recovery/
echo "setup ($PROFILE): $("$BIN/bench-coverage" --rows "$ROWS" --missing "${MISSING:-0.024}" --bucket "$STATE_BUCKET" --date "$DAY")"
T="$(mktemp)"
trap 'rm -f "$T" "$T.out"' EXIT
for flag in --json --csv; do
  for _ in $(seq 1 "$RUNS"); do # "seconds KiB lines" per run
    /usr/bin/time -f '%e %M' -o "$T" "$BIN/recoveryctl" coverage --from "$DAY" --to "$DAY" "$flag" >"$T.out"
    echo "$(cat "$T") $(wc -l <"$T.out")"
  done | sort -n | awk -v f="$flag" -v n="$RUNS" -v rows="$ROWS" '{ s[NR]=$1; m[NR]=$2; l=$3 } END {
    mid=int((n+1)/2); printf "coverage %s of %d contacts: median %.2f s (min %.2f, max %.2f) over %d runs, peak RSS %d MiB, %d lines out\n", f, rows, s[mid], s[1], s[n], n, m[mid]/1024, l }'
done
