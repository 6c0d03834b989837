# shellcheck shell=bash
# Pinned infrastructure tools, sourced by scripts/infra-check.sh and scripts/package-arm64.sh.
# Tools live outside the clone, in ${CALL_RECOVERY_HOME:-/var/tmp/call-recovery}/tools/, one
# virtual environment per Python tool; each is (re)installed only when absent or at another
# version, so a repeated run is fast.

CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2 # brings zig (PyPI package ziglang) with it
CFN_GUARD_VERSION=3.2.1    # crates.io; ~8 min to compile the first time
CARGO_MACHETE_VERSION=0.9.2 # crates.io; about a minute to compile

CALL_RECOVERY_HOME=${CALL_RECOVERY_HOME:-/var/tmp/call-recovery}
TOOLS_DIR="$CALL_RECOVERY_HOME/tools"
PYTHON=${PYTHON:-python3}

# ensure_venv DIR_NAME PYPI_PACKAGE VERSION: a venv at $TOOLS_DIR/DIR_NAME with PACKAGE==VERSION.
ensure_venv() {
    local name=$1 package=$2 version=$3
    local venv="$TOOLS_DIR/$name" have=""
    if [[ -x "$venv/bin/python" ]]; then
        have=$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))" 2>/dev/null || true)
    fi
    if [[ "$have" == "$version" ]]; then
        return 0
    fi
    echo "installing $package $version into $venv${have:+ (had $have)}" >&2
    rm -rf "$venv"
    mkdir -p "$TOOLS_DIR"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$package==$version" >&2
}

# ensure_cfn_guard: cfn-guard $CFN_GUARD_VERSION at $TOOLS_DIR/cfn-guard/bin/cfn-guard.
ensure_cfn_guard() {
    local root="$TOOLS_DIR/cfn-guard" have=""
    if [[ -x "$root/bin/cfn-guard" ]]; then
        have=$("$root/bin/cfn-guard" --version 2>/dev/null | awk '{print $NF}' || true)
    fi
    if [[ "$have" == "$CFN_GUARD_VERSION" ]]; then
        return 0
    fi
    echo "installing cfn-guard $CFN_GUARD_VERSION into $root (cargo install, several minutes)" >&2
    mkdir -p "$TOOLS_DIR"
    # Its own build directory, not the workspace's target/.
    env -u CARGO_TARGET_DIR cargo install cfn-guard --locked --force --version "$CFN_GUARD_VERSION" --root "$root" >&2
}

# ensure_cargo_machete: cargo-machete $CARGO_MACHETE_VERSION (unused dependencies) at
# $TOOLS_DIR/cargo-machete/bin/cargo-machete.
ensure_cargo_machete() {
    local root="$TOOLS_DIR/cargo-machete" have=""
    if [[ -x "$root/bin/cargo-machete" ]]; then
        have=$("$root/bin/cargo-machete" --version 2>/dev/null | awk '{print $NF}' || true)
    fi
    if [[ "$have" == "$CARGO_MACHETE_VERSION" ]]; then
        return 0
    fi
    echo "installing cargo-machete $CARGO_MACHETE_VERSION into $root (cargo install, about a minute)" >&2
    mkdir -p "$TOOLS_DIR"
    env -u CARGO_TARGET_DIR cargo install cargo-machete --locked --force --version "$CARGO_MACHETE_VERSION" --root "$root" >&2
}

cargo_machete_bin() { echo "$TOOLS_DIR/cargo-machete/bin/cargo-machete"; }
cfn_lint_bin()  { echo "$TOOLS_DIR/cfn-lint/bin/cfn-lint"; }
cfn_lint_py()   { echo "$TOOLS_DIR/cfn-lint/bin/python"; }
checkov_bin()   { echo "$TOOLS_DIR/checkov/bin/checkov"; }
sam_bin()       { echo "$TOOLS_DIR/aws-sam-cli/bin/sam"; }
cfn_guard_bin() { echo "$TOOLS_DIR/cfn-guard/bin/cfn-guard"; }
