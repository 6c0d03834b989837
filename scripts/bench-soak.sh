#!/usr/bin/env bash
# The worker's soak (docs/benchmarks.md): CALLS missing calls (default 10000) queued at once and
# drained by concurrent invocations of the worker's code through 20 % transient Verint faults
# and 10 % Connect throttling, with CONNECT_MAX_RPS=50; the soak binary prints the summary.
#   scripts/bench-soak.sh [CALLS [extra soak arguments...]]     e.g. 500 --invocations 10
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CALLS="${1:-10000}"
shift || true
BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:soak)"
# S3 and SQS are in the soak's own process unless `--s3 moto` or `--sqs moto` asks for the stack.
if [[ " $* " == *" moto "* ]]; then answers "${MOTO_URL:-http://127.0.0.1:5055}/moto-api/" || stack_env; fi
"$BIN/soak" --moto-url "${MOTO_URL:-http://127.0.0.1:5055}" --calls "$CALLS" --connect-max-rps 50 \
  --verint-faults 0.20 --connect-throttle 0.10 "$@"
