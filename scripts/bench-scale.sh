#!/usr/bin/env bash
# The planner at scale (issue 20, docs/benchmarks.md): a generated day of a million contacts with
# Verint holding none of them, through the planner function's handler, first under a deadline
# that stops it mid-queueing, then under 900 s; every message in the work queue counted. Prints
#   bench-scale: contacts=… missing=… queued=… duplicates=… response_bytes=… secs=… peak_rss_mib=…
# on stdout (everything else on stderr) and fails unless every missing call was queued exactly
# once, the response is at most 64 KiB and the peak RSS at most 512 MiB.
#   scripts/bench-scale.sh [bench-scale arguments...]   e.g. --contacts 100000 --first-deadline-secs 60
# The corpus is written once under $CALL_RECOVERY_HOME/bench-scale-N. SQS and the simulator run in
# a child of bench-scale; S3 is a private moto server started here (moto's venv as stack.sh makes it).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:bench-scale)"

VENV="$(ensure_moto)"
PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG="$(mktemp -t bench-scale-moto.XXXXXX)"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 150); do
  answers "http://127.0.0.1:$PORT/moto-api/" && break
  kill -0 "$MOTO_PID" 2>/dev/null || { cat "$LOG" >&2; die "moto exited"; }
  sleep 0.2
done
answers "http://127.0.0.1:$PORT/moto-api/" || die "moto does not answer on port $PORT (log: $LOG)"

# The handler prints its EMF metrics on stdout, as in Lambda: only the result line stays there.
"$BIN/bench-scale" --s3-url "http://127.0.0.1:$PORT" "$@" |
  awk '/^bench-scale: contacts=/ { print; fflush(); next } { print > "/dev/stderr" }'
