#!/usr/bin/env bash
# Benchmarks the planner's read path on a corpus of N CTRs (docs/benchmarks.md): bench-planner
# --baselines times (a) itself under /usr/bin/time -v, (b) `gzip -dc` of the same objects and
# (c) a gzip | jq | sort | comm pipeline whose count must equal (a)'s, and prints the summary.
#   scripts/bench-planner.sh [N]     N defaults to 1000000; BENCH_PROFILE=debug|release;
#                                    JQ_LIMIT_SECS=600 beyond which jq runs on a subset
# The corpus is generated once with bench-corpus under $CALL_RECOVERY_HOME/bench-corpus-N.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N="${1:-1000000}" CORPUS="$CALL_RECOVERY_HOME/bench-corpus-${1:-1000000}"
IID="${CONNECT_INSTANCE_ID:-5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b}"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:bench-planner local-stack:bench-corpus)"
if [[ ! -f "$CORPUS/.complete" ]]; then
  rm -rf "$CORPUS" && mkdir -p "$CORPUS"
  "$BIN/bench-corpus" --dir "$CORPUS" --n "$N" --instance-id "$IID" >"$CORPUS/corpus.json"
  touch "$CORPUS/.complete"
fi
exec "$BIN/bench-planner" --dir "$CORPUS" --instance-id "$IID" --baselines
