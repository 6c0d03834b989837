# shellcheck shell=bash
# Helpers the scripts share. Source it from a script in scripts/:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It sets ROOT (the checkout) and CALL_RECOVERY_HOME (tools, venvs and benchmark data, outside
# the clone: /var/tmp/call-recovery unless set), and cds to ROOT.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALL_RECOVERY_HOME="${CALL_RECOVERY_HOME:-/var/tmp/call-recovery}"
cd "$ROOT"

# say TEXT: a step heading.
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# target_dir: where cargo writes this workspace's builds (`./target` by default, or
# CARGO_TARGET_DIR, or whatever cargo's own configuration says), as cargo itself reports it.
target_dir() {
  cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# build_bins PROFILE PACKAGE:BIN...: builds each named binary in PROFILE (debug|release) and
# prints the directory they are in. One cargo invocation per package, because `--bin` filters the
# targets of every package selected on the same command line.
build_bins() {
  local profile=$1 spec flags=()
  shift
  [[ "$profile" == release ]] && flags=(--release)
  for spec in "$@"; do
    cargo build --quiet "${flags[@]}" -p "${spec%%:*}" --bin "${spec#*:}" >&2
  done
  echo "$(target_dir)/$profile"
}
