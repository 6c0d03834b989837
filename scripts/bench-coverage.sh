#!/usr/bin/env bash
# Benchmarks `recoveryctl coverage` on one large day (docs/benchmarks.md): bench-coverage writes a
# manual run's report, its ledger of ROWS eligible contacts (through the planner's S3Ledger) and
# the worker's outcomes for the missing ones into moto; then `recoveryctl coverage --json` and
# `--csv` of that day are timed RUNS times each, with their peak RSS.
#   scripts/bench-coverage.sh [ROWS]     ROWS defaults to 1000000; BENCH_PROFILE=debug|release;
#                                        MISSING=0.024 the share of rows with an outcome
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS="${1:-1000000}"
RUNS="${RUNS:-3}"
PROFILE="${BENCH_PROFILE:-release}"
[[ "$ROWS" =~ ^[0-9]+$ ]] || { echo "ROWS must be a number, not '$ROWS'" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time is required: apt-get install -y time" >&2; exit 1; }

scripts/stack.sh up >&2
# shellcheck disable=SC1091
source .stack/env
BIN="$(build_bins "$PROFILE" local-stack:bench-coverage recoveryctl:recoveryctl)"
BUCKET="bench-coverage-$ROWS-$RANDOM"
SETUP="$("$BIN/bench-coverage" --rows "$ROWS" --missing "${MISSING:-0.024}" --bucket "$BUCKET")"
echo "setup ($PROFILE): $SETUP"
DAY="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["date"])' "$SETUP")"

time_one() { # FORMAT_FLAG -> "seconds kib lines"
  local out err
  out="$(mktemp)"; err="$(mktemp)"
  STATE_BUCKET="$BUCKET" STATE_PREFIX=call-recovery/ /usr/bin/time -f '%e %M' -o "$err" \
    "$BIN/recoveryctl" coverage --from "$DAY" --to "$DAY" "$1" >"$out"
  echo "$(cat "$err") $(wc -l <"$out")"
  rm -f "$out" "$err"
}

for flag in --json --csv; do
  results=()
  for _ in $(seq 1 "$RUNS"); do results+=("$(time_one "$flag")"); done
  printf '%s\n' "${results[@]}" | sort -n | awk -v f="$flag" -v n="$RUNS" -v rows="$ROWS" '
    { s[NR]=$1; m[NR]=$2; l=$3 } END {
      mid=int((n+1)/2); printf "coverage %s of %d contacts: median %.2f s (min %.2f, max %.2f) over %d runs, peak RSS %d MiB, %d lines out\n", f, rows, s[mid], s[1], s[n], n, m[mid]/1024, l }'
done
