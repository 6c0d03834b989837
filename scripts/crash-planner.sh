#!/usr/bin/env bash
# The planner killed at random points (issue 10; benchmark-style, not CI): TRIALS automatic runs
# of `recoveryctl plan --auto`, each SIGKILLed after a random delay unless it finishes first, with
# CTR objects delivered late into hours already read; then runs to completion. Prints
#   trials=… kills=… lost=0 …
# and fails when a missing call of a settled hour was never queued or the checkpoint broke.
#   scripts/crash-planner.sh [TRIALS] [extra crash-planner flags]    TRIALS defaults to 100
# Needs the local stack (scripts/stack.sh up): it uses MOTO_URL from .stack/env and starts its
# own simulator in-process.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TRIALS="${1:-100}"
shift || true
if [[ -z "${MOTO_URL:-}" && -f .stack/env ]]; then
  # shellcheck disable=SC1091
  source .stack/env
fi
[[ -n "${MOTO_URL:-}" ]] || { echo "crash-planner: MOTO_URL is not set: scripts/stack.sh up" >&2; exit 1; }

echo "crash-planner: building recoveryctl and crash-planner (debug)" >&2
# The target directory may be shared with other checkouts of this workspace. Cargo names their
# artifacts alike (path dependencies hash by their path inside the workspace), so their builds
# replace ours and a "fresh" build can link theirs: touch every crate built here so that cargo
# rebuilds it from this checkout, run private copies taken right after the build, and make sure
# they are this checkout's.
touch shared/src/lib.rs functions/planner/src/lib.rs functions/worker/src/lib.rs \
  cli/src/main.rs tests/src/lib.rs tests/src/bin/crash-planner.rs
BIN="$(build_bins debug recoveryctl:recoveryctl local-stack:crash-planner)"
OWN="$(mktemp -d "${TMPDIR:-/tmp}/crash-planner.XXXXXX")"
trap 'rm -rf "$OWN"' EXIT
cp "$BIN/recoveryctl" "$BIN/crash-planner" "$OWN/"
HELP="$("$OWN/recoveryctl" plan --help)"
[[ "$HELP" == *--deadline* ]] ||
  { echo "crash-planner: $BIN/recoveryctl is another checkout's build; run again" >&2; exit 1; }
MOTO_URL="$MOTO_URL" "$OWN/crash-planner" --recoveryctl "$OWN/recoveryctl" --trials "$TRIALS" "$@"
