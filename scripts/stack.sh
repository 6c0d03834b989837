#!/usr/bin/env bash
# The local stack: moto (S3, SQS, Secrets Manager) and the Verint + Connect simulator.
#   scripts/stack.sh up     start both (reusing any that already answer), create the buckets
#                           and queues, write .stack/env
#   scripts/stack.sh down   stop both
#   scripts/stack.sh env    print the path of the env file (source it)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HOME_DIR="$CALL_RECOVERY_HOME"
VENV="$HOME_DIR/venv-moto"
STACK="$ROOT/.stack"
ENV_FILE="$STACK/env"
MOTO_PORT="${MOTO_PORT:-5055}"
SIM_PORT="${SIM_PORT:-5056}"
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
SIM_URL="http://127.0.0.1:$SIM_PORT"

REGION=us-east-1
CONNECT_INSTANCE_ID=5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b
VERINT_API_KEY_ID=local-key
# base64url (no padding) of 32 fixed bytes: a local key, not a secret.
VERINT_API_KEY=F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w

log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

wait_for() { # URL PIDFILE NAME LOG
  local i
  for i in $(seq 1 150); do
    if answers "$1"; then return 0; fi
    if ! kill -0 "$(cat "$2")" 2>/dev/null; then
      tail -n 20 "$4" >&2 || true
      die "$3 exited during start-up (log: $4)"
    fi
    sleep 0.2
  done
  die "$3 does not answer at $1 (log: $4)"
}

ensure_venv() {
  # Reinstall only when the pinned requirements change (by content: a fresh clone has new mtimes).
  local want
  want="$(sha256sum "$ROOT/tests/requirements.txt" | cut -d' ' -f1)"
  if [[ -x "$VENV/bin/moto_server" ]] && [[ "$(cat "$VENV/.requirements" 2>/dev/null)" == "$want" ]]; then
    return
  fi
  log "creating $VENV"
  mkdir -p "$HOME_DIR"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet -r "$ROOT/tests/requirements.txt"
  echo "$want" >"$VENV/.requirements"
}

start_moto() {
  if answers "$MOTO_URL/moto-api/"; then
    log "moto already answers at $MOTO_URL"
    return
  fi
  ensure_venv
  log "starting moto on $MOTO_URL"
  # The venv's moto_server is a script run by the venv's python: $! is the python itself.
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$STACK/moto.log" 2>&1 &
  echo $! >"$STACK/moto.pid"
  wait_for "$MOTO_URL/moto-api/" "$STACK/moto.pid" moto "$STACK/moto.log"
}

start_sim() {
  if answers "$SIM_URL/_admin/health"; then
    log "simulator already answers at $SIM_URL"
    return
  fi
  log "building the simulator"
  local bin
  bin="$(build_bins debug local-stack:simulator)"
  log "starting the simulator on $SIM_URL"
  SIM_LISTEN="127.0.0.1:$SIM_PORT" VERINT_API_KEY_ID="$VERINT_API_KEY_ID" \
    VERINT_API_KEY="$VERINT_API_KEY" RUST_LOG="${RUST_LOG:-info}" \
    nohup "$bin/simulator" >"$STACK/sim.log" 2>&1 &
  echo $! >"$STACK/sim.pid"
  wait_for "$SIM_URL/_admin/health" "$STACK/sim.pid" simulator "$STACK/sim.log"
}

create_resources() {
  local py="$VENV/bin/python"
  [[ -x "$py" ]] || ensure_venv
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    MOTO_URL="$MOTO_URL" REGION="$REGION" KEY_ID="$VERINT_API_KEY_ID" KEY="$VERINT_API_KEY" \
    "$py" - <<'PY'
import json, os
import boto3

url, region = os.environ["MOTO_URL"], os.environ["REGION"]
s3 = boto3.client("s3", endpoint_url=url, region_name=region)
have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
for b in ("ctr-bucket", "connect-recordings", "recovery-state"):
    if b not in have:
        s3.create_bucket(Bucket=b)

sqs = boto3.client("sqs", endpoint_url=url, region_name=region)
dlq = sqs.create_queue(QueueName="call-recovery-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
work = sqs.create_queue(
    QueueName="call-recovery-work",
    Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
    },
)["QueueUrl"]

sm = boto3.client("secretsmanager", endpoint_url=url, region_name=region)
secret = json.dumps({"keyId": os.environ["KEY_ID"], "key": os.environ["KEY"]})
try:
    sm.create_secret(Name="call-recovery/verint-api-key", SecretString=secret)
except sm.exceptions.ResourceExistsException:
    pass
print(work)
print(dlq)
PY
}

write_env() { # WORK_QUEUE_URL DEAD_LETTER_QUEUE_URL
  local tmp="$ENV_FILE.tmp"
  cat >"$tmp" <<ENV
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=$REGION
export AWS_ENDPOINT_URL_S3=$MOTO_URL
export AWS_ENDPOINT_URL_SQS=$MOTO_URL
export AWS_ENDPOINT_URL_SECRETS_MANAGER=$MOTO_URL
export AWS_ENDPOINT_URL_CONNECT=$SIM_URL
export MOTO_URL=$MOTO_URL
export SIM_URL=$SIM_URL
export CTR_BUCKET=ctr-bucket
export CTR_PREFIX=connect/ctr/
export RECORDINGS_BUCKET=connect-recordings
export RECORDINGS_PREFIX=connect/acme/CallRecordings/
export CONNECT_INSTANCE_ID=$CONNECT_INSTANCE_ID
export STATE_BUCKET=recovery-state
export STATE_PREFIX=call-recovery/
export WORK_QUEUE_URL=$1
export DEAD_LETTER_QUEUE_URL=$2
export VERINT_DAS_URL=$SIM_URL/das
export VERINT_INGEST_URL=$SIM_URL/ingest
export VERINT_API_KEY_ID=$VERINT_API_KEY_ID
export VERINT_API_KEY=$VERINT_API_KEY
ENV
  mv "$tmp" "$ENV_FILE"
}

stop() { # NAME
  local pidfile="$STACK/$1.pid" pid
  [[ -f "$pidfile" ]] || { log "$1: not started by this script"; return 0; }
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    log "$1 (pid $pid) stopped"
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  up)
    command -v curl >/dev/null || die "curl is required"
    mkdir -p "$STACK"
    start_moto
    start_sim
    mapfile -t queues < <(create_resources)
    [[ ${#queues[@]} -eq 2 ]] || die "could not create the queues"
    write_env "${queues[0]}" "${queues[1]}"
    log "ready: source $ENV_FILE"
    ;;
  down)
    stop sim
    stop moto
    ;;
  env)
    echo "$ENV_FILE"
    ;;
  *)
    echo "usage: $0 up|down|env" >&2
    exit 2
    ;;
esac
