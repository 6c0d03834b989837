#!/usr/bin/env bash
# The main job, locally: start the stack, generate yesterday's calls, find the ones Verint
# missed, stream them into Verint, show the run. One call Verint rejects goes to the dead-letter
# queue, and is recovered by a redrive once Verint is "fixed".
#   scripts/demo.sh            (CALLS=400 SEED=1 by default)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CALLS="${CALLS:-400}"
SEED="${SEED:-1}"

say "Starting the local stack (moto for S3/SQS, the Verint + Connect simulator)"
stack_env
# A clean slate: empty moto and the simulator, then create the buckets and queues again.
curl -fsS -X POST "$MOTO_URL/moto-api/reset" >/dev/null
curl -fsS -X POST "$SIM_URL/_admin/reset" >/dev/null
stack_env 2>/dev/null

say "Building recoveryctl and the generator (the first build takes several minutes)"
BIN="$(build_bins debug recoveryctl:recoveryctl local-stack:generate)"
ctl() { "$BIN/recoveryctl" "$@"; }

DAY="$(date -u -d yesterday +%F)"
TODAY="$(date -u +%F)"
say "Generating $DAY: $CALLS contacts of Firehose CTRs, recordings in S3, and what Verint captured;
   Verint will reject one missed call, as a misconfigured Verint would; one missed call's recording
   is cut short, one lies in Glacier, and Contact Lens wrote redacted audio for most calls"
"$BIN/generate" --date "$DAY" --calls "$CALLS" --seed "$SEED" --sim-url "$SIM_URL" --reject-one-missing \
  --truncated 1 --archived 1 --redacted 0.7 --redacted-missing 1
# The site sends Contact Lens's redacted audio where there is one (design §10). A restore is
# looked at again after RETRY_BASE: seconds here (moto restores at once), hours in AWS.
export RECORDING_VARIANT=redacted-else-original RETRY_BASE=2s

say "Planning a manual recovery of $DAY with RECORDING_VARIANT=$RECORDING_VARIANT (recoveryctl plan --from ${DAY}T00:00:00Z --to ${TODAY}T00:00:00Z)"
ctl plan --from "${DAY}T00:00:00Z" --to "${TODAY}T00:00:00Z"
RUNS_JSON="$(ctl runs --json --limit 1)"
RUN_ID="$(grep -m1 -o '"run_id": *"[^"]*"' <<<"$RUNS_JSON" | cut -d'"' -f4)"

say "Working the queue (recoveryctl work --until-empty): the archived recording is restored first,
   its call waits for it without using up its receives, then is sent"
# Exit 3 says a call was dead-lettered: Verint rejects one on purpose here.
ctl work --until-empty || [ $? -eq 3 ]
ctl status

say "Verint is fixed; the operator redrives the dead-letter queue and works it again"
curl -fsS -X POST "$SIM_URL/_admin/faults" -H 'content-type: application/json' -d '{}' >/dev/null
ctl redrive
sleep 3   # the call waiting for its restore comes back after RETRY_BASE
ctl work --until-empty

say "The run, as an operator sees it (recoveryctl runs $RUN_ID)"
ctl runs "$RUN_ID"
say "Proof of coverage for $DAY, as a compliance officer would paste it (recoveryctl coverage --from $DAY --to $DAY)"
ctl coverage --from "$DAY" --to "$DAY"
