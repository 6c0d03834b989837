#!/usr/bin/env bash
# The local stack: moto (S3, SQS, Secrets Manager) and the Verint + Connect simulator.
#   scripts/stack.sh up     start both (reusing any that already answer), create the buckets,
#                           queues and secret (local-resources), write .stack/env
#   scripts/stack.sh down   stop both
#   scripts/stack.sh env    print the path of the env file (source it)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENV="$CALL_RECOVERY_HOME/venv-moto"
STACK="$ROOT/.stack"
export MOTO_URL="http://127.0.0.1:${MOTO_PORT:-5055}" SIM_URL="http://127.0.0.1:${SIM_PORT:-5056}"

# start NAME HEALTH_URL COMMAND...: starts COMMAND in the background unless HEALTH_URL answers.
start() {
  local name=$1 url=$2 i
  shift 2
  if answers "$url"; then echo "stack: $name already answers" >&2; return; fi
  echo "stack: starting $name" >&2
  nohup "$@" >"$STACK/$name.log" 2>&1 &
  echo $! >"$STACK/$name.pid"
  for i in $(seq 1 150); do
    answers "$url" && return
    kill -0 "$(cat "$STACK/$name.pid")" 2>/dev/null || { tail -n 20 "$STACK/$name.log" >&2; die "$name exited"; }
    sleep 0.2
  done
  die "$name does not answer at $url (log: $STACK/$name.log)"
}

stop() { # NAME
  local pidfile="$STACK/$1.pid"
  [[ -f "$pidfile" ]] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null && echo "stack: $1 stopped" >&2
  rm -f "$pidfile"
}

case "${1:-}" in
  up)
    mkdir -p "$STACK"
    VENV="$(ensure_moto)"
    BIN="$(build_bins debug local-stack:simulator local-stack:local-resources)"
    start moto "$MOTO_URL/moto-api/" "$VENV/bin/moto_server" -H 127.0.0.1 -p "${MOTO_PORT:-5055}"
    # The simulator accepts the local key (its default), the one local-resources writes.
    start sim "$SIM_URL/_admin/health" env RUST_LOG="${RUST_LOG:-info}" "$BIN/simulator" \
      --listen "${SIM_URL#http://}"
    "$BIN/local-resources" >"$STACK/env.tmp"
    mv "$STACK/env.tmp" "$STACK/env"
    echo "stack: ready: source $STACK/env" >&2
    ;;
  down) stop sim; stop moto ;;
  env) echo "$STACK/env" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
