#!/usr/bin/env bash
# Offline checks of the deployment template infra/template.yaml (issue #4):
#   cfn-lint (0 errors, 0 warnings), sam validate --lint, checkov (0 failed checks; skips are
#   written in the template with their reasons), cfn-guard with the project's rules in
#   infra/guard/, and the template tests in infra/tests/ (no wildcard in any IAM statement, and
#   invariants independent of the guard rules).
# Installs the pinned tools (infra/tools.sh) when they are absent. No AWS credentials needed.
#
# Usage: [INFRA_TEMPLATE=path] scripts/infra-check.sh [--install-only]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../infra/tools.sh
source infra/tools.sh

# INFRA_TEMPLATE=path checks another template (e.g. a deliberately broken copy).
TEMPLATE=${INFRA_TEMPLATE:-infra/template.yaml}
export INFRA_TEMPLATE="$TEMPLATE"

ensure_venv cfn-lint cfn-lint "$CFN_LINT_VERSION"
ensure_venv checkov checkov "$CHECKOV_VERSION"
ensure_venv aws-sam-cli aws-sam-cli "$SAM_CLI_VERSION"
ensure_cfn_guard
if [[ "${1:-}" == "--install-only" ]]; then
    echo "tools ready in $TOOLS_DIR"
    exit 0
fi

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
declare -a SUMMARY=()
FAILED=0

# run_check NAME SUMMARY_COMMAND -- COMMAND...: runs COMMAND, shows its output, records PASS/FAIL.
# The pass/fail decision is made by the judge_* function named in SUMMARY_COMMAND from the exit
# code and the log, which also prints the one-line summary.
run_check() {
    local name=$1 judge=$2
    shift 3
    local log="$LOGS/$name.log" rc=0 line
    echo
    echo "=== $name: $*"
    "$@" >"$log" 2>&1 || rc=$?
    cat "$log"
    if line=$("$judge" "$rc" "$log"); then
        SUMMARY+=("PASS  $name: $line")
    else
        SUMMARY+=("FAIL  $name: $line")
        FAILED=1
    fi
}

# cfn-lint exit code is a bit mask: 2 errors, 4 warnings, 8 informational; 1 a crash.
judge_cfn_lint() {
    local rc=$1 log=$2 errors warnings
    errors=$(grep -cE '^E[0-9]' "$log" || true)
    warnings=$(grep -cE '^W[0-9]' "$log" || true)
    echo "exit $rc, $errors errors, $warnings warnings"
    (( rc == 0 || rc == 8 ))
}

judge_sam() {
    local rc=$1 log=$2
    echo "exit $rc, $(grep -m1 -E 'valid SAM Template|Error' "$log" || echo 'no verdict')"
    (( rc == 0 )) && grep -q 'is a valid SAM Template' "$log"
}

judge_checkov() {
    local rc=$1 log=$2 counts
    counts=$(grep -m1 -E 'Passed checks: [0-9]+, Failed checks: [0-9]+' "$log" || true)
    echo "exit $rc, ${counts:-no result line}"
    (( rc == 0 )) && [[ "$counts" == *"Failed checks: 0,"* ]]
}

judge_guard() {
    local rc=$1 log=$2 fails
    fails=$(grep -cE 'FAIL' "$log" || true)
    echo "exit $rc, $fails FAIL lines"
    (( rc == 0 )) && (( fails == 0 ))
}

judge_unittest() {
    local rc=$1 log=$2
    echo "exit $rc, $(grep -m1 -E '^Ran [0-9]+ test' "$log" || echo 'no tests ran'), $(tail -n1 "$log")"
    (( rc == 0 )) && grep -qE '^OK' "$log"
}

run_check "cfn-lint $CFN_LINT_VERSION" judge_cfn_lint -- \
    "$(cfn_lint_bin)" -- "$TEMPLATE"

run_check "sam validate --lint ($SAM_CLI_VERSION)" judge_sam -- \
    env SAM_CLI_TELEMETRY=0 "$(sam_bin)" validate --lint -t "$TEMPLATE" \
    --region "${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

run_check "checkov $CHECKOV_VERSION" judge_checkov -- \
    env BC_SKIP_MAPPING=TRUE "$(checkov_bin)" -f "$TEMPLATE" --framework cloudformation \
    --compact --skip-download

run_check "cfn-guard $CFN_GUARD_VERSION" judge_guard -- \
    "$(cfn_guard_bin)" validate -r infra/guard/ -d "$TEMPLATE" --show-summary all

run_check "template tests (no wildcard, invariants)" judge_unittest -- \
    "$(cfn_lint_py)" -m unittest discover -s infra/tests -v

echo
echo "=== infra-check summary ($TEMPLATE)"
printf '%s\n' "${SUMMARY[@]}"
if (( FAILED )); then
    echo "infra-check: FAILED"
    exit 1
fi
echo "infra-check: all checks passed"
