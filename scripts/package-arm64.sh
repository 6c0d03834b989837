#!/usr/bin/env bash
# Packages the planner and worker Lambda functions for arm64 (provided.al2023, Graviton):
#   cargo lambda build --release --arm64 --lambda-dir target/lambda-arm64 -p planner -p worker
# -> target/lambda-arm64/{planner,worker}/bootstrap. cargo-lambda (with zig, from PyPI) is
# installed in its own venv under ${CALL_RECOVERY_HOME:-/var/tmp/call-recovery}/tools/, and the
# aarch64-unknown-linux-gnu Rust target is added with rustup. A cold build takes ~20 minutes on
# two cores.
#
# Usage: scripts/package-arm64.sh          build both bootstraps
#        scripts/package-arm64.sh --sam    `sam build` in infra/ instead (same cargo-lambda, same
#                                          --release --arm64 build, one --bin per function), ready
#                                          for `sam deploy --guided`
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../infra/tools.sh
source infra/tools.sh

MODE=package
case "${1:-}" in
    "") ;;
    --sam) MODE=sam ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--sam]" >&2; exit 2 ;;
esac

ensure_venv cargo-lambda cargo-lambda "$CARGO_LAMBDA_VERSION"
# cargo finds the `cargo-lambda` subcommand, and cargo-lambda finds zig, on this PATH.
export PATH="$TOOLS_DIR/cargo-lambda/bin:$PATH"
rustup target add aarch64-unknown-linux-gnu

LAMBDA_DIR=target/lambda-arm64
start=$(date +%s)
if [[ "$MODE" == sam ]]; then
    ensure_venv aws-sam-cli aws-sam-cli "$SAM_CLI_VERSION"
    # CodeUri is the workspace root; SAM runs `cargo lambda build --release --arm64 --bin NAME`
    # there (in source) and copies each bootstrap into infra/.aws-sam/build.
    # infra/samconfig.toml (the customer's, not tracked) when there is one, else the tracked
    # example: both enable the rust-cargolambda beta build method.
    SAM_CONFIG=$PWD/infra/samconfig.toml
    [[ -f "$SAM_CONFIG" ]] || SAM_CONFIG=$PWD/infra/samconfig.example.toml
    (cd infra && SAM_CLI_TELEMETRY=0 "$(sam_bin)" build --config-file "$SAM_CONFIG")
    bootstraps=(infra/.aws-sam/build/PlannerFunction/bootstrap infra/.aws-sam/build/WorkerFunction/bootstrap)
else
    cargo lambda build --release --arm64 --lambda-dir "$LAMBDA_DIR" -p planner -p worker
    bootstraps=("$LAMBDA_DIR/planner/bootstrap" "$LAMBDA_DIR/worker/bootstrap")
fi
elapsed=$(( $(date +%s) - start ))

echo
printf 'build time: %dm%02ds (%s)\n' $((elapsed / 60)) $((elapsed % 60)) "$MODE"
for b in "${bootstraps[@]}"; do
    if [[ ! -f "$b" ]]; then
        echo "missing: $b" >&2
        exit 1
    fi
    bytes=$(stat -c %s "$b")
    printf '%-48s %10d bytes (%s)  %s\n' "$b" "$bytes" "$(numfmt --to=iec "$bytes")" "$(file -b "$b" | cut -d, -f1-2)"
done
