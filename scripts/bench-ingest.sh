#!/usr/bin/env bash
# Benchmarks the worker's transfer path (docs/benchmarks.md): one SIZE_MIB recording streamed
# from moto into the simulator's ingest endpoint by bench-ingest (open_recording +
# VerintClient::ingest), beside the baseline `curl moto | curl -T - <sink>` over the same bytes.
#   scripts/bench-ingest.sh [SIZE_MIB]     SIZE_MIB defaults to 1024
# The link-limited run: SIZE_MB (10^6 bytes) into a simulator that reads request bodies at
# RATE_MB_S, as a WAN link to Verint would carry them; wall time against the link's time.
#   scripts/bench-ingest.sh link [SIZE_MB [RATE_MB_S]]     defaults 500 and 2
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MODE=loopback UNIT=MiB SIZE="${1:-1024}" PER=1048576
[[ "${1:-}" == link ]] && MODE=link UNIT=MB SIZE="${2:-500}" RATE="${3:-2}" PER=1000000
[[ "$SIZE" =~ ^[1-9][0-9]*$ ]] || die "the size must be a positive integer, not '$SIZE'"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is required: apt-get install -y time"
BYTES=$(( SIZE * PER ))
MOTO_URL="${MOTO_URL:-http://127.0.0.1:5055}"
BUCKET=bench-ingest
KEY="connect/bench/CallRecordings/2024/05/14/bench-${SIZE}${UNIT}_20240514T14:03_UTC.wav" # a ':', as Connect's
WORK="$CALL_RECOVERY_HOME/bench-ingest"
mkdir -p "$WORK"
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
ok() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo NO; fi; }
free_port() { local p; while p=$((20000 + RANDOM % 30000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do :; done; echo "$p"; }
moto_curl() { curl --aws-sigv4 "aws:amz:us-east-1:s3" --user testing:testing "$@"; } # moto: 403 unsigned

BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:bench-ingest local-stack:simulator)"
answers "$MOTO_URL/moto-api/" || stack_env
SIM="http://127.0.0.1:$(free_port)"
BENCH=("$BIN/bench-ingest" --s3-endpoint "$MOTO_URL" --bucket "$BUCKET" --key "$KEY" \
  --ingest-url "$SIM/ingest" --key-id bench-key --api-key F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w)
"${BENCH[@]}" --prepare-bytes "$BYTES"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
RUST_LOG=warn "$BIN/simulator" --listen "${SIM#http://}" --key-id bench-key \
  --api-key F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do answers "$SIM/_admin/health" && break; sleep 0.1; done
answers "$SIM/_admin/health" || die "the simulator did not start (log: $WORK/sim.log)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
field() { awk -F': *' -v k="$1" '$1 == k { split($2, a, " "); print a[1] }' "$WORK/$MODE.out"; }
measure() { # runs bench-ingest under time -v; sets WALL_S, HWM_MIB, RSS_MIB
  /usr/bin/time -v -o "$WORK/time-$MODE" "${BENCH[@]}" | tee "$WORK/$MODE.out" || die "bench-ingest failed"
  WALL_S="$(field wall)" HWM_MIB="$(field 'peak rss (VmHWM)')"
  RSS_MIB="$(calc "$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$WORK/time-$MODE") / 1024" 0)"
}
header() { printf '\n== bench-ingest %s, %s cores ==\nload average before %s, after %s (other work on the machine shows here)\n| measure | value | target | met |\n|---|---|---|---|\n' \
  "$1" "$(nproc)" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

if [[ "$MODE" == link ]]; then
  RATE_BPS="$(calc "$RATE * 1000000" 0)"
  curl -fsS -o /dev/null -H 'Content-Type: application/json' -d "{\"read_bytes_per_sec\": $RATE_BPS}" \
    "$SIM/_admin/faults" || die "could not set the simulator's link rate"
  LINK_S="$(calc "$BYTES / $RATE_BPS")"
  measure
  RATIO="$(calc "$WALL_S / $LINK_S" 3)"
  header "link summary: $SIZE MB at $RATE MB/s"
  echo "| the link's time ($SIZE MB / $RATE MB/s) | ${LINK_S} s | | |"
  echo "| bench-ingest moto -> simulator, wall | ${WALL_S} s | | |"
  echo "| wall / link time | ${RATIO}x | <= 1.05x | $(ok "$RATIO <= 1.05") |"
  echo "| bench-ingest peak RSS (time -v / VmHWM) | ${RSS_MIB} / ${HWM_MIB} MiB | <= 64 MiB | $(ok "$RSS_MIB <= 64") |"
  exit 0
fi

SINK="http://127.0.0.1:$(free_port)"
"${BENCH[@]}" --sink-port "${SINK##*:}" &
PIDS+=($!)
for _ in $(seq 1 100); do [[ "$(curl -s -T - "$SINK/" <<<"" 2>/dev/null)" == 1 ]] && break; sleep 0.1; done
read -r MOTO_BYTES MOTO_S < <(moto_curl -fsS -o /dev/null -w '%{size_download} %{time_total}\n' "$MOTO_URL/$BUCKET/$KEY")
[[ "$MOTO_BYTES" == "$BYTES" ]] || die "moto served $MOTO_BYTES bytes, expected $BYTES"
t0="$(date +%s.%N)"
SUNK="$(moto_curl -fsS "$MOTO_URL/$BUCKET/$KEY" | curl -fsS -T - "$SINK/sink")"
CURL_S="$(calc "$(date +%s.%N) - $t0" 3)"
[[ "$SUNK" == "$BYTES" ]] || die "the sink received $SUNK bytes, expected $BYTES"
measure
CURL_RATE="$(calc "$SIZE / $CURL_S")" INGEST_RATE="$(field throughput)"
RATIO="$(calc "$INGEST_RATE / $CURL_RATE" 2)"
header "summary: $SIZE MiB"
echo "| moto GET alone (curl > /dev/null) | $(calc "$SIZE / $MOTO_S") MiB/s (${MOTO_S} s) | | |"
echo "| baseline curl moto \| curl -T - sink | ${CURL_RATE} MiB/s (${CURL_S} s) | | |"
echo "| bench-ingest moto -> simulator | ${INGEST_RATE} MiB/s (${WALL_S} s) | | |"
echo "| bench-ingest / curl pipe | ${RATIO}x | >= 0.8x | $(ok "$RATIO >= 0.8") |"
echo "| bench-ingest peak RSS (time -v / VmHWM) | ${RSS_MIB} / ${HWM_MIB} MiB | <= 64 MiB | $(ok "$RSS_MIB <= 64") |"
