#!/usr/bin/env bash
# Offline checks of the deployment template infra/template.yaml (issue #4): cfn-lint (0 errors,
# 0 warnings), sam validate --lint, checkov (0 failed checks; skips are written in the template
# with their reasons), cfn-guard with the rules in infra/guard/, and the template tests in
# infra/tests/. Installs the pinned tools (infra/tools.sh) when absent. No AWS credentials needed.
#   [INFRA_TEMPLATE=path] scripts/infra-check.sh [--install-only]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../infra/tools.sh
source infra/tools.sh
export INFRA_TEMPLATE="${INFRA_TEMPLATE:-infra/template.yaml}" # another: e.g. a broken copy
T="$INFRA_TEMPLATE"

ensure_venv cfn-lint cfn-lint "$CFN_LINT_VERSION"
ensure_venv checkov checkov "$CHECKOV_VERSION"
ensure_venv aws-sam-cli aws-sam-cli "$SAM_CLI_VERSION"
ensure_cfn_guard
[[ "${1:-}" == "--install-only" ]] && { echo "tools ready in $TOOLS_DIR"; exit 0; }

FAILED=()
check() { # NAME COMMAND...: each tool's own exit code decides
  echo; echo "=== $1"
  "${@:2}" || FAILED+=("$1")
}
# cfn-lint's exit code is a bit mask (2 errors, 4 warnings, 8 informational): only 8 passes.
cfn_lint() { local rc=0; "$(cfn_lint_bin)" -- "$T" || rc=$?; (( rc == 0 || rc == 8 )); }
check "cfn-lint $CFN_LINT_VERSION" cfn_lint
check "sam validate --lint $SAM_CLI_VERSION" env SAM_CLI_TELEMETRY=0 "$(sam_bin)" validate --lint \
  -t "$T" --region "${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
check "checkov $CHECKOV_VERSION" env BC_SKIP_MAPPING=TRUE "$(checkov_bin)" -f "$T" \
  --framework cloudformation --compact --skip-download
check "cfn-guard $CFN_GUARD_VERSION" "$(cfn_guard_bin)" validate -r infra/guard/ -d "$T" --show-summary all
check "template tests" "$(cfn_lint_py)" -m unittest discover -s infra/tests -v

echo
(( ${#FAILED[@]} == 0 )) || { printf 'infra-check: FAILED: %s\n' "${FAILED[@]}"; exit 1; }
echo "infra-check: all checks passed"
