#!/usr/bin/env bash
# Benchmarks the worker's transfer path (docs/benchmarks.md): one SIZE_MIB recording streamed
# from moto into a simulator's ingest endpoint by bench-ingest (open_recording +
# VerintClient::ingest), beside the baseline `curl moto | curl -T - <sink>` over the same bytes.
#   scripts/bench-ingest.sh [SIZE_MIB]     SIZE_MIB defaults to 1024; BENCH_PROFILE=debug|release
# The link-limited run: SIZE_MB (10^6 bytes) into a simulator that reads request bodies at
# RATE_MB_S, as a WAN link to Verint would carry them; wall time against the link's time.
#   scripts/bench-ingest.sh link [SIZE_MB [RATE_MB_S]]     defaults 500 and 2
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:bench-ingest local-stack:simulator)"
answers "${MOTO_URL:-http://127.0.0.1:5055}/moto-api/" || stack_env
exec "$BIN/bench-ingest" --s3-endpoint "${MOTO_URL:-http://127.0.0.1:5055}" \
  --work-dir "$CALL_RECOVERY_HOME/bench-ingest" --summary "$@"
