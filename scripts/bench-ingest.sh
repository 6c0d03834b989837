#!/usr/bin/env bash
# Benchmarks the worker's transfer path (docs/benchmarks.md): one SIZE_MIB recording streamed
# from moto into the simulator's ingest endpoint by bench-ingest (open_recording +
# VerintClient::ingest), beside the baseline `curl moto | curl -T - <sink>` over the same bytes.
#   scripts/bench-ingest.sh [SIZE_MIB]     SIZE_MIB defaults to 1024
# The link-limited run: SIZE_MB (10^6 bytes) into a simulator that reads request bodies at
# RATE_MB_S, as a WAN link to Verint would carry them; wall time against the link's time.
#   scripts/bench-ingest.sh link [SIZE_MB [RATE_MB_S]]     defaults 500 and 2
# Needs moto on $MOTO_URL (started with scripts/stack.sh up when it does not answer).
set -euo pipefail

MODE=loopback
if [[ "${1:-}" == link ]]; then
  MODE=link
  shift
  LINK_MB="${1:-500}"
  LINK_RATE_MB_S="${2:-2}"
  [[ "$LINK_MB" =~ ^[0-9]+$ ]] && (( LINK_MB > 0 )) || { echo "bench-ingest: SIZE_MB must be a positive integer, not '$LINK_MB'" >&2; exit 1; }
  [[ "$LINK_RATE_MB_S" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bench-ingest: RATE_MB_S must be a number, not '$LINK_RATE_MB_S'" >&2; exit 1; }
fi

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HOME_DIR="$CALL_RECOVERY_HOME"
SIZE_MIB="${1:-1024}"
if [[ "$MODE" == link ]]; then SIZE_MIB="$LINK_MB"; fi
MOTO_URL="${MOTO_URL:-http://127.0.0.1:5055}"
BUCKET=bench-ingest
# A realistic Connect key: it holds a ':'.
UNIT=MiB
[[ "$MODE" == link ]] && UNIT=MB
KEY="connect/bench/CallRecordings/2024/05/14/bench-${SIZE_MIB}${UNIT}_20240514T14:03_UTC.wav"
KEY_ID=bench-key
# base64url (no padding) of 32 fixed bytes: a local key, not a secret.
API_KEY=F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w
WORK_DIR="$HOME_DIR/bench-ingest"
FILE="$WORK_DIR/recording-${SIZE_MIB}${UNIT}.wav"

log() { echo "bench-ingest: $*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }
# moto answers unsigned requests as an anonymous caller (403 on a private object): sign them.
moto_curl() { curl --aws-sigv4 "aws:amz:us-east-1:s3" --user testing:testing "$@"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

[[ "$SIZE_MIB" =~ ^[0-9]+$ ]] && (( SIZE_MIB > 0 )) || die "SIZE_MIB must be a positive integer, not '$SIZE_MIB'"
command -v curl >/dev/null || die "curl is required: apt-get install -y curl"
command -v python3 >/dev/null || die "python3 is required: apt-get install -y python3"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is required: apt-get install -y time"

log "building bench-ingest and the simulator (${BENCH_PROFILE:-release}; BENCH_PROFILE=debug for a quick look)"
BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:bench-ingest local-stack:simulator)"
answers "$MOTO_URL/moto-api/" || "$ROOT/scripts/stack.sh" up
answers "$MOTO_URL/moto-api/" || die "moto does not answer at $MOTO_URL"

mkdir -p "$WORK_DIR"
BYTES=$(( SIZE_MIB * 1024 * 1024 ))
[[ "$MODE" == link ]] && BYTES=$(( LINK_MB * 1000 * 1000 ))
if [[ ! -f "$FILE" ]] || [[ "$(stat -c %s "$FILE")" != "$BYTES" ]]; then
  log "writing $FILE (WAV header + pseudo-random bytes)"
  python3 - "$FILE" "$BYTES" <<'PY'
import os, random, struct, sys
path, total = sys.argv[1], int(sys.argv[2])
data = total - 44
header = b"RIFF" + struct.pack("<I", total - 8) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 8000, 32000, 4, 16) \
    + b"data" + struct.pack("<I", data)
rng = random.Random(1)
with open(path + ".tmp", "wb") as f:
    f.write(header)
    left = data
    while left:
        n = min(left, 1 << 20)
        f.write(rng.randbytes(n))
        left -= n
os.replace(path + ".tmp", path)
PY
fi

URL="$MOTO_URL/$BUCKET/$KEY"
moto_curl -fsS -o /dev/null -X PUT "$MOTO_URL/$BUCKET" || die "could not create bucket $BUCKET in moto"
if [[ "$(moto_curl -fsSI "$URL" 2>/dev/null | tr -d '\r' | awk -F': ' 'tolower($1) == "content-length" { print $2 }')" != "$BYTES" ]]; then
  log "uploading $SIZE_MIB $UNIT to $URL"
  moto_curl -fsS -o /dev/null -T "$FILE" -H "Content-Type: audio/wav" "$URL"
fi

# The simulator and a discarding sink, on free ports; stopped on exit.
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
SIM_PORT="$(free_port)"
RUST_LOG=warn "$BIN/simulator" --listen "127.0.0.1:$SIM_PORT" --key-id "$KEY_ID" --api-key "$API_KEY" \
  >"$WORK_DIR/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  answers "http://127.0.0.1:$SIM_PORT/_admin/health" && break
  sleep 0.1
done
answers "http://127.0.0.1:$SIM_PORT/_admin/health" || die "the simulator did not start (log: $WORK_DIR/sim.log)"

if [[ "$MODE" == link ]]; then
  RATE_BPS="$(calc "$LINK_RATE_MB_S * 1000000" 0)"
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d "{\"read_bytes_per_sec\": $RATE_BPS}" "http://127.0.0.1:$SIM_PORT/_admin/faults" ||
    die "could not set the simulator's link rate"
  LINK_S="$(calc "$BYTES / $RATE_BPS" 1)"
  LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
  log "bench-ingest: moto -> simulator reading at $LINK_RATE_MB_S MB/s (the link's time: $LINK_S s)"
  /usr/bin/time -v -o "$WORK_DIR/time-link" "$BIN/bench-ingest" --s3-endpoint "$MOTO_URL" \
    --bucket "$BUCKET" --key "$KEY" --ingest-url "http://127.0.0.1:$SIM_PORT/ingest" \
    --key-id "$KEY_ID" --api-key "$API_KEY" | tee "$WORK_DIR/link.out" ||
    die "bench-ingest failed (see above): the upload did not arrive"
  WALL_S="$(awk -F': *' '$1 == "wall" { split($2, a, " "); print a[1] }' "$WORK_DIR/link.out")"
  HWM_MIB="$(awk -F': *' '$1 == "peak rss (VmHWM)" { split($2, a, " "); print a[1] }' "$WORK_DIR/link.out")"
  RSS_MIB="$(calc "$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$WORK_DIR/time-link") / 1024" 0)"
  LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
  ok() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo NO; fi; }
  RATIO="$(calc "$WALL_S / $LINK_S" 3)"
  cat <<SUMMARY

== bench-ingest link summary: $LINK_MB MB at $LINK_RATE_MB_S MB/s, $(nproc) cores ==
load average before $LOAD_BEFORE, after $LOAD_AFTER (other work on the machine shows here)
| measure                                   | value                  | target        | met |
|-------------------------------------------|------------------------|---------------|-----|
| the link's time ($LINK_MB MB / $LINK_RATE_MB_S MB/s)      | ${LINK_S} s |  |  |
| bench-ingest moto -> simulator, wall      | ${WALL_S} s |  |  |
| wall / link time                          | ${RATIO}x | <= 1.05x | $(ok "$RATIO <= 1.05") |
| bench-ingest peak RSS (time -v / VmHWM)   | ${RSS_MIB} / ${HWM_MIB} MiB | <= 64 MiB | $(ok "$RSS_MIB <= 64") |
SUMMARY
  exit 0
fi

SINK_PORT="$(free_port)"
cat >"$WORK_DIR/sink.py" <<'PY'
# Accepts PUT/POST bodies (Content-Length or chunked), reads them in 1 MiB pieces, discards them.
import http.server, sys

class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self):
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                while size:
                    got = len(self.rfile.read(min(size, 1 << 20)))
                    n += got
                    size -= got
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                got = len(self.rfile.read(min(left, 1 << 20)))
                if not got:
                    break
                n += got
                left -= got
        body = str(n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
python3 "$WORK_DIR/sink.py" "$SINK_PORT" >"$WORK_DIR/sink.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  answers "http://127.0.0.1:$SIM_PORT/_admin/health" && break
  sleep 0.1
done
answers "http://127.0.0.1:$SIM_PORT/_admin/health" || die "the simulator did not start (log: $WORK_DIR/sim.log)"
for _ in $(seq 1 100); do
  [[ "$(curl -s -X PUT --data-binary x "http://127.0.0.1:$SINK_PORT/" 2>/dev/null)" == 1 ]] && break
  sleep 0.1
done

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

log "moto alone: curl GET > /dev/null"
read -r MOTO_BYTES MOTO_S < <(moto_curl -fsS -o /dev/null -w '%{size_download} %{time_total}\n' "$URL")
[[ "$MOTO_BYTES" == "$BYTES" ]] || die "moto served $MOTO_BYTES bytes, expected $BYTES"
MOTO_RATE="$(calc "$SIZE_MIB / $MOTO_S")"

log "baseline: curl (SigV4) moto | curl -T - python sink"
t0="$(now)"
SUNK="$(moto_curl -fsS "$URL" | curl -fsS -T - "http://127.0.0.1:$SINK_PORT/sink")"
CURL_S="$(calc "$(now) - $t0" 3)"
[[ "$SUNK" == "$BYTES" ]] || die "the sink received $SUNK bytes, expected $BYTES"
CURL_RATE="$(calc "$SIZE_MIB / $CURL_S")"

log "bench-ingest: moto -> simulator (open_recording + VerintClient::ingest)"
/usr/bin/time -v -o "$WORK_DIR/time-ingest" "$BIN/bench-ingest" --s3-endpoint "$MOTO_URL" \
  --bucket "$BUCKET" --key "$KEY" --ingest-url "http://127.0.0.1:$SIM_PORT/ingest" \
  --key-id "$KEY_ID" --api-key "$API_KEY" | tee "$WORK_DIR/ingest.out"
INGEST_RATE="$(awk -F': *' '$1 == "throughput" { split($2, a, " "); print a[1] }' "$WORK_DIR/ingest.out")"
INGEST_S="$(awk -F': *' '$1 == "wall" { split($2, a, " "); print a[1] }' "$WORK_DIR/ingest.out")"
HWM_MIB="$(awk -F': *' '$1 == "peak rss (VmHWM)" { split($2, a, " "); print a[1] }' "$WORK_DIR/ingest.out")"
RSS_MIB="$(calc "$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$WORK_DIR/time-ingest") / 1024" 0)"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

ok() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo NO; fi; }
RATIO="$(calc "$INGEST_RATE / $CURL_RATE" 2)"
cat <<SUMMARY

== bench-ingest summary: $SIZE_MIB MiB, $(nproc) cores ==
load average before $LOAD_BEFORE, after $LOAD_AFTER (other work on the machine shows here)
| measure                                   | value                  | target        | met |
|-------------------------------------------|------------------------|---------------|-----|
| moto GET alone (curl > /dev/null)         | ${MOTO_RATE} MiB/s (${MOTO_S} s) |  |  |
| baseline curl moto \| curl -T - sink      | ${CURL_RATE} MiB/s (${CURL_S} s) |  |  |
| bench-ingest moto -> simulator            | ${INGEST_RATE} MiB/s (${INGEST_S} s) |  |  |
| bench-ingest / curl pipe                  | ${RATIO}x | >= 0.8x | $(ok "$RATIO >= 0.8") |
| bench-ingest peak RSS (time -v / VmHWM)   | ${RSS_MIB} / ${HWM_MIB} MiB | <= 64 MiB | $(ok "$RSS_MIB <= 64") |
SUMMARY
