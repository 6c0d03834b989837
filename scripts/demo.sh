#!/usr/bin/env bash
# The main job, locally: start the stack, generate yesterday's calls, find the ones Verint
# missed, stream them into Verint, show the run. Then one call Verint rejects goes to the
# dead-letter queue, and is recovered by a redrive once Verint is "fixed".
#   scripts/demo.sh            (CALLS=400 SEED=1 by default)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CALLS="${CALLS:-400}"
SEED="${SEED:-1}"

json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

say "Starting the local stack (moto for S3/SQS, the Verint + Connect simulator)"
scripts/stack.sh up
# shellcheck disable=SC1091
source .stack/env
# A clean slate: empty moto and the simulator, then create the buckets and queues again.
curl -fsS -X POST "$MOTO_URL/moto-api/reset" >/dev/null
curl -fsS -X POST "$SIM_URL/_admin/reset" >/dev/null
scripts/stack.sh up 2>/dev/null
source .stack/env

say "Building recoveryctl and the generator (the first build takes several minutes)"
BIN="$(build_bins debug recoveryctl:recoveryctl local-stack:generate)"
ctl() { "$BIN/recoveryctl" "$@"; }

DAY="$(date -u -d yesterday +%F)"
TODAY="$(date -u +%F)"
say "Generating $DAY: $CALLS contacts of Firehose CTRs, recordings in S3, and what Verint captured"
"$BIN/generate" --date "$DAY" --calls "$CALLS" --seed "$SEED" --sim-url "$SIM_URL"

say "Planning a manual recovery of $DAY (recoveryctl plan --from ${DAY}T00:00:00Z --to ${TODAY}T00:00:00Z)"
ctl plan --from "${DAY}T00:00:00Z" --to "${TODAY}T00:00:00Z"
REPORT="$(ctl runs --json --limit 1)"
RUN_ID="$(echo "$REPORT" | json_field 'd[0]["run_id"]')"
ctl runs "$RUN_ID" --json > .stack/last-run.json
MISSING="$(json_field 'd["report"]["missing"]' < .stack/last-run.json)"
REJECT="$(json_field '(d["report"]["missing_contact_ids"] or [""])[0]' < .stack/last-run.json)"

say "Verint will reject one of the $MISSING calls (contact $REJECT), as a misconfigured Verint would"
curl -fsS -X POST "$SIM_URL/_admin/faults" -H 'content-type: application/json' \
  -d "{\"reject_contact_ids\": [\"$REJECT\"]}" >/dev/null

say "Working the queue (recoveryctl work --until-empty)"
ctl work --until-empty
ctl status

say "Verint is fixed; the operator redrives the dead-letter queue and works it again"
curl -fsS -X POST "$SIM_URL/_admin/faults" -H 'content-type: application/json' -d '{}' >/dev/null
ctl redrive
ctl work --until-empty

say "The run, as an operator sees it (recoveryctl runs $RUN_ID)"
ctl runs "$RUN_ID"
say "Proof of coverage for $DAY, as a compliance officer would paste it (recoveryctl coverage --from $DAY --to $DAY)"
ctl coverage --from "$DAY" --to "$DAY"

ctl runs "$RUN_ID" --json > .stack/last-run.json
python3 - .stack/last-run.json "$SIM_URL" <<'PY'
import json, sys, urllib.request
run = json.load(open(sys.argv[1]))
report, row = run["report"], run["run"]
held = json.load(urllib.request.urlopen(sys.argv[2] + "/_admin/ingested"))
print()
print(f"In plain words: of the {report['eligible']} recorded calls of the day, Verint already held "
      f"{report['in_verint']}. It had missed {report['missing']}; {row['recovered']} of them are now in "
      f"Verint (streamed from S3 with their Connect metadata), {row['already_present']} were found there "
      f"already, and {row['failed']} failed.")
if report["unrecoverable"]:
    print(f"{len(report['unrecoverable'])} missed call(s) cannot be recovered: every recording was deleted in S3.")
if report["not_settled"]:
    print(f"{report['not_settled']} call(s) ended less than SETTLE_DELAY ago and are left for a later run.")
print(f"The simulated Verint now holds {len(held)} recovered call(s), each stored once.")
PY
