#!/usr/bin/env bash
# Benchmarks the planner's read path (docs/benchmarks.md) on a corpus of N CTRs:
#   (a) bench-planner: read + gunzip + parse + dedup + match (DirCtrSource, scan, eligible, classify)
#   (b) bare single-threaded gunzip of the same objects (`gzip -dc`, i.e. `zcat -f`)
#   (c) a gzip | jq | sort | comm pipeline whose count must equal (a)'s missing count
#   (d) (a)'s peak RSS by /usr/bin/time -v
#   scripts/bench-planner.sh [N]     N defaults to 1000000; BENCH_PROFILE=debug|release
# The corpus is generated once with bench-corpus under $CALL_RECOVERY_HOME/bench-corpus-N.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N="${1:-1000000}"
CORPUS="$CALL_RECOVERY_HOME/bench-corpus-$N"
IID="${CONNECT_INSTANCE_ID:-5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b}"
JQ_LIMIT_SECS="${JQ_LIMIT_SECS:-600}" # the jq pipeline runs on a subset, extrapolated, beyond this
export LC_ALL=C                        # sort and comm in byte order, as verint_ids.txt is written
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
ok() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo NO; fi; }
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
for tool in gzip jq /usr/bin/time; do command -v "$tool" >/dev/null || die "$tool is required: apt-get install -y ${tool##*/}"; done

BIN="$(build_bins "${BENCH_PROFILE:-release}" local-stack:bench-planner local-stack:bench-corpus)"
if [[ ! -f "$CORPUS/.complete" ]]; then
  rm -rf "$CORPUS" && mkdir -p "$CORPUS"
  "$BIN/bench-corpus" --dir "$CORPUS" --n "$N" --instance-id "$IID" >"$CORPUS/corpus.json"
  touch "$CORPUS/.complete"
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-planner.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
find "$CORPUS/ctr" -type f | sort >"$WORK/files"
OBJECTS="$(wc -l <"$WORK/files")" GZ_MB="$(du -sm "$CORPUS/ctr" | cut -f1)"
JSON_MB="$(jq '.uncompressed_bytes / 1e6 | floor' "$CORPUS/corpus.json")"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
xargs -a "$WORK/files" cat >/dev/null # warm the page cache, so no contender pays for the disk

echo "(a) bench-planner" >&2
/usr/bin/time -v -o "$WORK/time-a" "$BIN/bench-planner" --dir "$CORPUS" --instance-id "$IID" | tee "$WORK/planner.out"
field() { awk -F': *' -v k="$1" '$1 == k { split($2, a, " "); print a[1] }' "$WORK/planner.out"; }
PLANNER_S="$(field wall)" PLANNER_MISSING="$(field missing)" PLANNER_RECORDS="$(field records)"
RSS_MIB="$(calc "$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$WORK/time-a") / 1024" 0)"
CPU_PCT="$(awk -F': *' '/Percent of CPU/ { print $2 }' "$WORK/time-a")"

echo "(b) gzip -dc (single-threaded) > /dev/null" >&2
t0="$(now)"; xargs -a "$WORK/files" gzip -dc >/dev/null; ZCAT_S="$(calc "$(now) - $t0")"

# (c) DESIGN §4 in jq: VOICE, disconnected, our instance, an S3 audio recording (Recordings[]
# with StorageType S3, a Location, MediaStreamType AUDIO or absent, or the legacy Recording's
# Location), not every recording DELETED. One copy per contact in the corpus (sort -u).
JQ_FILTER='select(.Channel == "VOICE" and .DisconnectTimestamp != null
    and ((.InstanceARN // "") | endswith("instance/" + $iid)))
  | ([ (.Recordings // [])[] | select(.StorageType == "S3" and .Location != null
         and ((.MediaStreamType // "AUDIO") == "AUDIO")) | .Status ]
     + (if .Recording.Location != null then [.Recording.Status] else [] end)) as $st
  | select(($st | length) > 0 and ($st | any(. != "DELETED"))) | .ContactId'
jq_pipeline() { xargs -a "$1" gzip -dc | jq -r --arg iid "$IID" "$JQ_FILTER" | sort -u | comm -23 - "$CORPUS/verint_ids.txt" | wc -l; }
head -n 4 "$WORK/files" >"$WORK/sample" # a sample decides whether the whole fits in JQ_LIMIT_SECS
SAMPLE_N="$(wc -l <"$WORK/sample")"
t0="$(now)"; jq_pipeline "$WORK/sample" >/dev/null
PROJECTED_S="$(calc "($(now) - $t0) * $OBJECTS / $SAMPLE_N" 1)"
if awk "BEGIN { exit !($PROJECTED_S <= $JQ_LIMIT_SECS) }"; then
  echo "(c) jq pipeline over all $OBJECTS objects (projected ${PROJECTED_S} s)" >&2
  t0="$(now)"; JQ_MISSING="$(jq_pipeline "$WORK/files")"; JQ_S="$(calc "$(now) - $t0")"
  CHECK_MISSING="$PLANNER_MISSING" JQ_NOTE="whole corpus"
else # every k-th object, linked into a corpus of its own for the planner's count; time extrapolated
  SUB_N=$(( OBJECTS * JQ_LIMIT_SECS / 2 / ${PROJECTED_S%.*} )); (( SUB_N >= 1 )) || SUB_N=1
  STEP=$(( (OBJECTS + SUB_N - 1) / SUB_N ))
  awk -v s="$STEP" 'NR % s == 1 || s == 1' "$WORK/files" >"$WORK/subset"
  SUB_N="$(wc -l <"$WORK/subset")" SUB="$WORK/subset-corpus"
  while read -r f; do rel="${f#"$CORPUS"/}"; mkdir -p "$SUB/$(dirname "$rel")"; ln -s "$f" "$SUB/$rel"; done <"$WORK/subset"
  ln -s "$CORPUS/verint_ids.txt" "$SUB/verint_ids.txt"
  echo "(c) projected ${PROJECTED_S} s > ${JQ_LIMIT_SECS} s: jq over $SUB_N of $OBJECTS objects, extrapolated" >&2
  t0="$(now)"; JQ_MISSING="$(jq_pipeline "$WORK/subset")"; JQ_SUB_S="$(calc "$(now) - $t0")"
  JQ_S="$(calc "$JQ_SUB_S * $OBJECTS / $SUB_N")"
  CHECK_MISSING="$("$BIN/bench-planner" --dir "$SUB" --instance-id "$IID" | awk -F': *' '$1 == "missing" { print $2 }')"
  JQ_NOTE="EXTRAPOLATED from $SUB_N of $OBJECTS objects ($JQ_SUB_S s measured); counts compared on that subset"
fi
SPEED_VS_ZCAT="$(calc "$ZCAT_S / $PLANNER_S" 2)" JQ_VS_PLANNER="$(calc "$JQ_S / $PLANNER_S" 1)"
COUNTS_OK=NO; [[ "$JQ_MISSING" == "$CHECK_MISSING" ]] && COUNTS_OK=yes
cat <<SUMMARY

== bench-planner summary: N=$N, $OBJECTS objects, ${GZ_MB} MB gzip / ${JSON_MB} MB JSON, $(nproc) cores ==
load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)
| measure                              | value            | target        | met |
|--------------------------------------|------------------|---------------|-----|
| (a) planner wall (scan+match)        | ${PLANNER_S} s ($(calc "$JSON_MB / $PLANNER_S" 0) MB/s JSON, ${CPU_PCT} CPU) |  |  |
| (b) gzip -dc wall (1 thread)         | ${ZCAT_S} s ($(calc "$JSON_MB / $ZCAT_S" 0) MB/s JSON) |  |  |
| (c) gzip|jq|sort|comm wall           | ${JQ_S} s ($JQ_NOTE) |  |  |
| planner speed vs gzip -dc            | ${SPEED_VS_ZCAT}x | >= 1.0x (no slower) | $(ok "$SPEED_VS_ZCAT >= 1.0") |
| jq pipeline time / planner time      | ${JQ_VS_PLANNER}x | >= 10x | $(ok "$JQ_VS_PLANNER >= 10") |
| (d) planner peak RSS (time -v)       | ${RSS_MIB} MiB | <= 256 MiB | $(ok "$RSS_MIB <= 256") |
| missing: planner vs jq               | ${CHECK_MISSING} vs ${JQ_MISSING} (planner records ${PLANNER_RECORDS}) | equal | ${COUNTS_OK} |
SUMMARY
[[ "$COUNTS_OK" == yes ]] || die "the jq pipeline and the planner disagree on the missing count"
