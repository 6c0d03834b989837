#!/usr/bin/env bash
# The planner killed at random points (issue 10; benchmark-style, not CI): TRIALS automatic runs
# of `recoveryctl plan --auto`, each SIGKILLed after a random delay unless it finishes first, with
# CTR objects delivered late into hours already read; then runs to completion. Prints
# `trials=… kills=… lost=0 …` and fails when a missing call of a settled hour was never queued or
# the checkpoint broke. Uses MOTO_URL (.stack/env) and its own in-process simulator.
#   scripts/crash-planner.sh [TRIALS] [extra crash-planner flags]    TRIALS defaults to 100
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TRIALS="${1:-100}"
shift || true
# shellcheck disable=SC1091
[[ -n "${MOTO_URL:-}" || ! -f .stack/env ]] || source .stack/env
[[ -n "${MOTO_URL:-}" ]] || die "MOTO_URL is not set: scripts/stack.sh up"
# The target directory may be shared with other checkouts: cargo names their artifacts alike, so
# their builds can replace ours. Touch every crate built here so that cargo rebuilds it from this
# checkout, run private copies taken right after the build, and make sure they are this checkout's.
touch shared/src/lib.rs functions/planner/src/lib.rs functions/worker/src/lib.rs \
  cli/src/main.rs tests/src/lib.rs tests/src/bin/crash-planner.rs
BIN="$(build_bins debug recoveryctl:recoveryctl local-stack:crash-planner)"
OWN="$(mktemp -d "${TMPDIR:-/tmp}/crash-planner.XXXXXX")"
trap 'rm -rf "$OWN"' EXIT
cp "$BIN/recoveryctl" "$BIN/crash-planner" "$OWN/"
[[ "$("$OWN/recoveryctl" plan --help)" == *--deadline* ]] || die "$BIN/recoveryctl is another checkout's build; run again"
"$OWN/crash-planner" --recoveryctl "$OWN/recoveryctl" --trials "$TRIALS" "$@"
