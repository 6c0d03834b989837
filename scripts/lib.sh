# shellcheck shell=bash
# Helpers the scripts share. Source it from a script in scripts/:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It sets ROOT (the checkout) and CALL_RECOVERY_HOME (tools, venvs and benchmark data, outside
# the clone: /var/tmp/call-recovery unless set), and cds to ROOT.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALL_RECOVERY_HOME="${CALL_RECOVERY_HOME:-/var/tmp/call-recovery}"
cd "$ROOT"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }     # a step heading
die() { echo "$(basename "$0"): $*" >&2; exit 1; }
answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; } # URL answers 2xx

# build_bins PROFILE PACKAGE:BIN...: builds each binary in PROFILE (debug|release) and prints the
# directory they are in (cargo's own target directory). One cargo call per package: `--bin`
# filters the targets of every package on the same command line.
build_bins() {
  local profile=$1 spec flags=()
  shift
  [[ "$profile" == release ]] && flags=(--release)
  for spec in "$@"; do
    # Said before it starts: a first build of the workspace takes minutes, and a silent one
    # looks like a hang.
    echo "build: ${spec#*:} ($profile; the first build compiles the workspace, minutes)" >&2
    cargo build "${flags[@]}" -p "${spec%%:*}" --bin "${spec#*:}" >&2
  done
  local dir
  dir="$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')"
  echo "$dir/$profile"
}

# ensure_moto: moto's venv at $CALL_RECOVERY_HOME/venv-moto with tests/requirements.txt,
# reinstalled only when the pinned requirements change (by content, not mtime); its path on stdout.
ensure_moto() {
  local venv="$CALL_RECOVERY_HOME/venv-moto" want
  want="$(sha256sum "$ROOT/tests/requirements.txt" | cut -d' ' -f1)"
  if [[ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]]; then
    echo "installing moto (tests/requirements.txt, pip) into $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$ROOT/tests/requirements.txt" >&2
    echo "$want" >"$venv/.requirements"
  fi
  echo "$venv"
}

# ensure_cargo_lambda: the pinned cargo-lambda (infra/tools.sh) installed and on PATH.
ensure_cargo_lambda() {
  # shellcheck source=../infra/tools.sh
  source "$ROOT/infra/tools.sh"
  ensure_venv cargo-lambda cargo-lambda "$CARGO_LAMBDA_VERSION"
  export PATH="$TOOLS_DIR/cargo-lambda/bin:$PATH"
}

# stack_env: the local stack up (scripts/stack.sh up) and its environment exported.
stack_env() {
  "$ROOT/scripts/stack.sh" up
  # shellcheck disable=SC1091
  source "$ROOT/.stack/env"
}
