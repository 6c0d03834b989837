#!/usr/bin/env bash
# The planner and worker Lambda binaries under cargo-lambda's local Lambda runtime
# (`cargo lambda watch`), invoked with real event shapes, against the local stack:
#   1. the stack (scripts/stack.sh up) and cargo-lambda (infra/tools.sh) are ready;
#   2. a small generated day (3 days ago, UTC) is written under a CTR_PREFIX and STATE_PREFIX of
#      this run only, after both queues are purged;
#   3. `cargo lambda watch` serves both functions (debug builds) on a free local port;
#   4. planner: an EventBridge scheduled event (automatic run), a manual {start,end} payload and
#      an invalid payload (an error naming the problem; cargo-lambda answers HTTP 500);
#   5. worker: an SQS event of real work-queue messages plus one malformed body, which must go to
#      the dead-letter queue with a failure_reason and not be reported as a batch item failure;
#      the simulator must then hold the worked calls.
# Prints PASS/FAIL per check and ends with `lambda-local: N passed, M failed` (exit 1 on a failure).
#
# Usage: scripts/lambda-local.sh     (from any directory; LAMBDA_LOCAL_SEED fixes the generator seed)
# Env:   LAMBDA_LOCAL_KEEP=1 keeps the work directory (events, responses, watch log).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HOME_DIR="${CALL_RECOVERY_HOME:-/var/tmp/call-recovery}"
PY="$HOME_DIR/venv-moto/bin/python"
FIXTURES="$ROOT/tests/fixtures/lambda"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lambda-local.XXXXXX")"
WATCH_PID=""
PASSED=0
FAILED=0

log() { echo "lambda-local: $*" >&2; }
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; FAILED=$((FAILED + 1)); }
check() { # NAME DETAIL COMMAND...: PASS when COMMAND succeeds
  local name=$1 detail=$2
  shift 2
  if "$@"; then pass "$name"; else fail "$name" "$detail"; fi
}
finish() {
  [[ "${LAMBDA_LOCAL_KEEP:-}" == 1 ]] && log "keeping $WORK"
  echo "lambda-local: $PASSED passed, $FAILED failed"
  [[ $FAILED -eq 0 ]]
  exit $?
}
abort() { # a step without which nothing else can be checked
  fail "$1" "$2"
  [[ -f "$WORK/watch.log" ]] && { log "last lines of the cargo lambda watch log:"; tail -n 30 "$WORK/watch.log" >&2; }
  finish
}
cleanup() {
  if [[ -n "$WATCH_PID" ]] && kill -0 "$WATCH_PID" 2>/dev/null; then
    # watch runs in its own session (setsid): its process group holds cargo and the functions.
    kill -TERM -- "-$WATCH_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$WATCH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$WATCH_PID" 2>/dev/null || true
  fi
  [[ "${LAMBDA_LOCAL_KEEP:-}" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# jq-less JSON access, with the stack's python: json_get FILE EXPR (EXPR over `d`).
json_get() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1" "$2" 2>/dev/null; }
json_true() { [[ "$(json_get "$1" "$2")" == "true" ]]; }

# ---- 1. stack and cargo-lambda -------------------------------------------------------------
if ! scripts/stack.sh up >"$WORK/stack.log" 2>&1; then
  cat "$WORK/stack.log" >&2
  abort "stack up" "scripts/stack.sh up failed"
fi
# shellcheck source=/dev/null
source "$ROOT/.stack/env"
# shellcheck source=../infra/tools.sh
source "$ROOT/infra/tools.sh"
ensure_venv cargo-lambda cargo-lambda "$CARGO_LAMBDA_VERSION" || abort "cargo-lambda" "install failed"
export PATH="$TOOLS_DIR/cargo-lambda/bin:$PATH"
cargo lambda --version >/dev/null 2>&1 || abort "cargo-lambda" "cargo lambda does not run"
pass "stack up, $(cargo lambda --version 2>/dev/null | awk '{print $1, $2}')"

# ---- 2. a generated day under prefixes of this run -------------------------------------------
RUN="$(date -u +%Y%m%dT%H%M%SZ)-$$-$RANDOM"
export CTR_PREFIX="lambda-local/$RUN/ctr/"
export STATE_PREFIX="lambda-local/$RUN/state/"
# The simulator keeps what earlier runs ingested, by contact id: a fresh seed per run keeps the
# day's missing calls missing on a re-run the same day.
SEED="${LAMBDA_LOCAL_SEED:-$((RANDOM * 32768 + RANDOM))}"
DAY="$(date -u -d '3 days ago' +%F)"
DAY_START="${DAY}T00:00:00Z"
DAY_END="$(date -u -d "$DAY + 1 day" +%F)T00:00:00Z"
# Automatic runs start at floor_hour(now - INITIAL_LOOKBACK) with no checkpoint (a fresh
# STATE_PREFIX has none): 4 days back covers the whole day, and 100 hours per run reach the present.
export INITIAL_LOOKBACK=4d MAX_HOURS_PER_RUN=100
export RUST_LOG="${RUST_LOG:-info}"
log "run $RUN: day $DAY, seed $SEED, CTR_PREFIX=$CTR_PREFIX STATE_PREFIX=$STATE_PREFIX"

cat >"$WORK/sqs.py" <<'PY'
"""Queue, bucket and simulator helpers for scripts/lambda-local.sh."""
import hashlib, json, os, sys, time, urllib.request
import boto3

env = os.environ
region = env["AWS_REGION"]
sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL_SQS"], region_name=region)
s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=region)
work, dlq = env["WORK_QUEUE_URL"], env["DEAD_LETTER_QUEUE_URL"]

def receive(queue, want, rounds=5):
    got = []
    for _ in range(rounds):
        r = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=min(10, want - len(got)) or 1,
                                AttributeNames=["All"], MessageAttributeNames=["All"], WaitTimeSeconds=1)
        got += r.get("Messages", [])
        if len(got) >= want:
            break
    return got

cmd = sys.argv[1]
if cmd == "purge":  # both queues, so that this run sees only its own messages
    for q in (work, dlq):
        sqs.purge_queue(QueueUrl=q)
elif cmd == "drain":  # drain RUN_ID: delete every work message, print how many were RUN_ID's
    run_id, n = sys.argv[2], 0
    while True:
        ms = receive(work, 10, rounds=1)
        if not ms:
            break
        for m in ms:
            try:
                n += json.loads(m["Body"]).get("run_id") == run_id
            except ValueError:
                pass
            sqs.delete_message(QueueUrl=work, ReceiptHandle=m["ReceiptHandle"])
    print(n)
elif cmd == "sqs-event":  # sqs-event RUN_ID WANT OUT: an SQS event of real messages + a malformed one
    run_id, want, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    arn = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records = []
    for m in receive(work, want):
        if json.loads(m["Body"]).get("run_id") != run_id:
            continue
        records.append({
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": arn,
            "awsRegion": region,
        })
    bad = '{"v":1'
    now = str(int(time.time() * 1000))
    records.append({
        "messageId": "00000000-0000-4000-8000-lambdalocal01", "receiptHandle": "lambda-local-made-up-receipt-handle",
        "body": bad, "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now,
        "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": now}, "messageAttributes": {},
        "md5OfBody": hashlib.md5(bad.encode()).hexdigest(), "eventSource": "aws:sqs",
        "eventSourceARN": arn, "awsRegion": region,
    })
    json.dump({"Records": records}, open(out, "w"), indent=1)
    print(len(records) - 1)
elif cmd == "dlq":  # dlq BODY: the failure_reason of a dead-lettered message with BODY
    for m in receive(dlq, 10):
        if m["Body"] == sys.argv[2]:
            print(m.get("MessageAttributes", {}).get("failure_reason", {}).get("StringValue", ""))
            sys.exit(0)
    sys.exit(1)
elif cmd == "ingested":  # ingested EVENT: which of EVENT's contacts the simulator does not hold
    with urllib.request.urlopen(env["SIM_URL"] + "/_admin/ingested") as r:
        held = {c["contact_id"] for c in json.load(r)}
    ids = [json.loads(r["body"])["contact_id"] for r in json.load(open(sys.argv[2]))["Records"]
           if r["body"].endswith("}")]
    print(" ".join(i for i in ids if i not in held) or "-")
    sys.exit(1 if not ids or any(i not in held for i in ids) else 0)
elif cmd == "outcomes":  # outcomes RUN_ID: status counts of the run's worker outcomes
    key = f'{env["STATE_PREFIX"]}runs/{sys.argv[2]}/outcomes/'
    counts = {}
    for o in s3.list_objects_v2(Bucket=env["STATE_BUCKET"], Prefix=key).get("Contents", []):
        st = json.loads(s3.get_object(Bucket=env["STATE_BUCKET"], Key=o["Key"])["Body"].read())["status"]
        counts[st] = counts.get(st, 0) + 1
    print(json.dumps(counts, sort_keys=True))
PY
helper() { "$PY" "$WORK/sqs.py" "$@"; }

helper purge || abort "purge queues" "could not purge $WORK_QUEUE_URL / $DEAD_LETTER_QUEUE_URL"
if ! cargo run -q -p local-stack --bin generate -- --date "$DAY" --calls 60 --seed "$SEED" \
  --sim-url "$SIM_URL" >"$WORK/generate.out" 2>&1; then
  cat "$WORK/generate.out" >&2
  abort "generate day" "the generator failed"
fi
pass "generate day: $(tail -n 1 "$WORK/generate.out")"

# ---- 3. cargo lambda watch ------------------------------------------------------------------
# Build the bootstraps first (debug, the profile watch uses), so that build errors show here and
# the first invocation does not wait for a compile.
if ! cargo build -q -p planner -p worker >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log" >&2
  abort "build planner, worker" "cargo build failed"
fi
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"

# cargo-lambda 1.9.2 hands functions `Lambda-Runtime-Deadline-Ms: 600000`, the timeout itself,
# where AWS sends epoch milliseconds; the worker reads a value that small as time left.
# Its own session and process group (setsid), so that cleanup stops cargo and the functions too.
# The functions inherit this environment (the stack's variables and the prefixes above).
# --ignore-changes: others edit the tree, and a reload mid-run would restart the functions.
setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$PORT" \
  >"$WORK/watch.log" 2>&1 </dev/null &
WATCH_PID=$!
up=""
for _ in $(seq 1 300); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/" 2>/dev/null)"
  if [[ "$code" != "000" ]]; then up=1; break; fi
  kill -0 "$WATCH_PID" 2>/dev/null || break
  sleep 0.2
done
[[ -n "$up" ]] || abort "cargo lambda watch" "does not answer on $BASE"
pass "cargo lambda watch answers on $BASE"

# invoke FUNCTION FILE OUT: POSTs FILE to the Invoke API, prints the HTTP status.
invoke() {
  curl -sS -o "$3" -w '%{http_code}' --max-time 300 -X POST -H 'Content-Type: application/json' \
    --data-binary "@$2" "$BASE/2015-03-31/functions/$1/invocations"
}

# ---- 4. planner -----------------------------------------------------------------------------
# (a) an EventBridge scheduled event: an automatic run.
code="$(invoke planner "$FIXTURES/scheduled-event.json" "$WORK/auto.json")"
echo "  planner <- scheduled event: HTTP $code $(head -c 400 "$WORK/auto.json")"
check "planner scheduled event -> automatic run report" "HTTP $code" \
  json_true "$WORK/auto.json" 'd["mode"]=="automatic" and d["window"] is not None and d["window"]["by"]=="arrival" and d["eligible"]>0 and d["enqueued"]==d["missing"]'
AUTO_RUN="$(json_get "$WORK/auto.json" 'd["run_id"]')"
AUTO_ENQUEUED="$(json_get "$WORK/auto.json" 'd["enqueued"]')"
# The automatic run queued this day's missing calls: drain them, so that the worker below gets
# the manual run's messages only.
drained="$(helper drain "${AUTO_RUN:-none}")"
check "automatic run's messages are on the work queue ($drained of ${AUTO_ENQUEUED:-?})" "" \
  test -n "$AUTO_ENQUEUED" -a "$drained" = "$AUTO_ENQUEUED"

# (b) a manual payload over the whole day.
printf '{"start": "%s", "end": "%s", "dry_run": false}\n' "$DAY_START" "$DAY_END" >"$WORK/manual.json"
code="$(invoke planner "$WORK/manual.json" "$WORK/manual-report.json")"
echo "  planner <- $(cat "$WORK/manual.json"): HTTP $code $(head -c 400 "$WORK/manual-report.json")"
check "planner manual payload -> manual run, missing > 0, enqueued == missing" "HTTP $code" \
  json_true "$WORK/manual-report.json" 'd["mode"]=="manual" and d["window"]["by"]=="initiation" and d["missing"]>0 and d["enqueued"]==d["missing"]'
MANUAL_RUN="$(json_get "$WORK/manual-report.json" 'd["run_id"]')"
MISSING="$(json_get "$WORK/manual-report.json" 'd["missing"]')"

# (c) an invalid payload: rejected with the reason (cargo-lambda: HTTP 500 on a handler error).
code="$(invoke planner "$FIXTURES/manual-invalid.json" "$WORK/invalid.json")"
echo "  planner <- $(cat "$FIXTURES/manual-invalid.json"): HTTP $code $(head -c 400 "$WORK/invalid.json")"
check "planner invalid payload -> error naming the problem" "HTTP $code" \
  json_true "$WORK/invalid.json" "$code"'>=400 and "invalid request" in d.get("errorMessage","") and "tomorrow" in d["errorMessage"] and "RFC 3339" in d["errorMessage"]'

# ---- 5. worker ------------------------------------------------------------------------------
want=$(( ${MISSING:-0} < 10 ? ${MISSING:-0} : 10 ))
real="$(helper sqs-event "${MANUAL_RUN:-none}" "$want" "$WORK/sqs-event.json")"
check "SQS event of $real real work-queue message(s) + 1 malformed" "wanted $want" \
  test -n "$real" -a "$real" = "$want" -a "$want" -gt 0
code="$(invoke worker "$WORK/sqs-event.json" "$WORK/worker.json")"
echo "  worker <- SQS event ($real real + 1 malformed): HTTP $code $(head -c 400 "$WORK/worker.json")"
check "worker -> empty batchItemFailures (malformed record not listed)" "HTTP $code" \
  json_true "$WORK/worker.json" '"batchItemFailures" in d and d["batchItemFailures"]==[]'
if reason="$(helper dlq '{"v":1')"; then
  echo "  DLQ failure_reason: $reason"
  check "malformed body dead-lettered with a failure_reason" "empty failure_reason" test -n "$reason"
else
  fail "malformed body dead-lettered with a failure_reason" "not on $DEAD_LETTER_QUEUE_URL"
fi
if absent="$(helper ingested "$WORK/sqs-event.json")"; then
  pass "simulator holds the $real worked call(s) (/_admin/ingested)"
else
  fail "simulator holds the $real worked call(s) (/_admin/ingested)" "not held: $absent"
fi
outcomes="$(helper outcomes "${MANUAL_RUN:-none}")"
echo "  worker outcomes: $outcomes"
check "worker wrote an outcome per worked call" "$outcomes" \
  "$PY" -c 'import json,sys; c=json.loads(sys.argv[1]); sys.exit(int(sum(c.values())!=int(sys.argv[2]) or bool(set(c)-{"recovered","already_present"})))' "$outcomes" "$real"

finish
