#!/usr/bin/env bash
# The backfill benchmark (docs/benchmarks.md): DAYS days of PER_DAY calls, planned as 24-hour
# slices, one process per slice; prints wall time, slice peak RSS and the missing count against
# the generator's truth. The corpus is written once under $CALL_RECOVERY_HOME.
#   scripts/bench-backfill.sh [DAYS [PER_DAY [bench-backfill arguments...]]]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DAYS="${1:-30}" PER_DAY="${2:-100000}"
shift $(( $# < 2 ? $# : 2 ))
BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:bench-backfill)"
"$BIN/bench-backfill" --dir "$CALL_RECOVERY_HOME/bench-backfill-$DAYS-$PER_DAY" --days "$DAYS" --per-day "$PER_DAY" "$@"
