#!/usr/bin/env bash
# Packages the planner and worker for arm64 (provided.al2023, Graviton) with the pinned
# cargo-lambda (infra/tools.sh; a cold build takes ~20 minutes on two cores):
#   scripts/package-arm64.sh        -> target/lambda-arm64/{planner,worker}/bootstrap
#   scripts/package-arm64.sh --sam  `sam build` in infra/ (the same build, one --bin per function)
#                                   with infra/samconfig.toml, else the example; then `sam deploy --guided`
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -z "${1:-}" || "$1" == --sam ]] || { echo "usage: $0 [--sam]" >&2; exit 2; }
ensure_cargo_lambda
rustup target add aarch64-unknown-linux-gnu
start=$(date +%s)
if [[ "${1:-}" == --sam ]]; then
  ensure_venv aws-sam-cli aws-sam-cli "$SAM_CLI_VERSION"
  SAM_CONFIG=$PWD/infra/samconfig.toml
  [[ -f "$SAM_CONFIG" ]] || SAM_CONFIG=$PWD/infra/samconfig.example.toml
  (cd infra && SAM_CLI_TELEMETRY=0 "$(sam_bin)" build --config-file "$SAM_CONFIG")
  bootstraps=(infra/.aws-sam/build/{Planner,Worker}Function/bootstrap)
else
  cargo lambda build --release --arm64 --lambda-dir target/lambda-arm64 -p planner -p worker
  bootstraps=(target/lambda-arm64/{planner,worker}/bootstrap)
fi
echo "build time: $(( $(date +%s) - start )) s"
for b in "${bootstraps[@]}"; do
  [[ -f "$b" ]] || die "missing: $b"
  echo "$b: $(numfmt --to=iec "$(stat -c %s "$b")")B, $(file -b "$b" | cut -d, -f1-2)"
done
