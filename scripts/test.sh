#!/usr/bin/env bash
# Every check the project has: formatting, lints, docs, the unit and end-to-end tests against
# the local stack, the Lambda binaries under cargo-lambda's local runtime, and the
# infrastructure checks. `.ci/run` calls exactly this.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
step() { say "$@"; }

step "local stack"
scripts/stack.sh up
# shellcheck disable=SC1091
source .stack/env

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "tests (unit, property, end-to-end)"
cargo nextest run --workspace --no-fail-fast

if [[ -x scripts/lambda-local.sh ]]; then
  step "planner and worker under cargo-lambda's local runtime"
  scripts/lambda-local.sh
fi

step "infrastructure checks"
scripts/infra-check.sh
