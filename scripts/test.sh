#!/usr/bin/env bash
# Every check the project has: formatting, lints, docs, the unit and end-to-end tests against
# the local stack (the Lambda binaries under cargo-lambda's local runtime among them:
# tests/tests/lambda_local.rs), and the infrastructure checks. `.ci/run` calls exactly this.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../infra/tools.sh
source "$ROOT/infra/tools.sh"

say "local stack, cargo-lambda"
stack_env
ensure_cargo_lambda
say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
say "unused dependencies (cargo-machete)"
ensure_cargo_machete
"$(cargo_machete_bin)" --skip-target-dir
say "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
say "tests (unit, property, end-to-end, the functions under cargo lambda watch)"
cargo nextest run --workspace --no-fail-fast
say "infrastructure checks"
scripts/infra-check.sh
