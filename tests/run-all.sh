#!/usr/bin/env bash
# The repo's whole test suite, as CI runs it (.ci/run calls this after
# installing system packages). Safe to run again and again on a developer
# machine: the build cache and the Python venv are reused.
#
#    1. the web UI: npm ci, build (ui/dist), vitest
#    2. cargo fmt --check
#    3. cargo clippy -D warnings (every crate, the desktop shell too)
#    4. cargo build -p switchyard
#    5. cargo test (D-Bus session + unlocked gnome-keyring)
#    6. Python venv for the SDK tests
#    7. pytest tests/python (openai and anthropic SDKs vs. `switchyard serve`)
#    8. browser tests (tests/browser: Chromium via playwright-core)
#    9. coding agents (tests/agents: Claude Code, Codex CLI and Gemini CLI from npm,
#       through `switchyard serve` to OpenAI, Anthropic and Gemini mock upstreams)
#   10. the desktop app: release build, its unit tests, smoke test under Xvfb (tests/desktop)
#
# Environment:
#   CARGO_TARGET_DIR  build cache   (default ~/.cache/switchyard-target)
#   SWITCHYARD_VENV   Python venv   (default ~/.cache/switchyard-venv)
#   PYTHON            interpreter that creates the venv (default python3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchyard-target}"
VENV="${SWITCHYARD_VENV:-$HOME/.cache/switchyard-venv}"
PYTHON="${PYTHON:-python3}"
PYTEST_TIMEOUT_S="${PYTEST_TIMEOUT_S:-900}"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

declare -a TIMINGS=()
SECTION=""
SECTION_START=0
section() {
    end_section
    SECTION="$*"
    SECTION_START=$SECONDS
    printf '\n==== %s ====\n' "$SECTION"
}
end_section() {
    if [ -n "$SECTION" ]; then
        TIMINGS+=("$(printf '%5ss  %s' "$((SECONDS - SECTION_START))" "$SECTION")")
        SECTION=""
    fi
}
on_exit() {
    local rc=$?
    if [ $rc -ne 0 ] && [ -n "$SECTION" ]; then
        printf '\n==== FAILED: %s (exit %s) ====\n' "$SECTION" "$rc" >&2
    fi
}
trap on_exit EXIT

# Runs "$@" inside a private D-Bus session with an unlocked gnome-keyring
# (the Secret Service the keyring code talks to); both go away afterwards.
in_keyring_session() {
    dbus-run-session -- sh -c '
        if ! echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; then
            echo "warning: could not start/unlock gnome-keyring; keyring tests may fail" >&2
        fi
        exec "$@"' sh "$@"
}

section "Toolchain"
cargo --version
rustc --version
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"

command -v node >/dev/null || { echo "node not found: run .ci/run, or install Node.js 20+" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
    { echo "Node.js 20 or newer is needed (found $(node --version))" >&2; exit 1; }

section "web UI: npm ci, build, vitest"
npm --prefix "$ROOT/ui" ci --no-audit --no-fund </dev/null
npm --prefix "$ROOT/ui" run build </dev/null
npm --prefix "$ROOT/ui" test </dev/null

section "cargo fmt --check"
FMT_COLOR=auto
[ -t 1 ] || FMT_COLOR=never
cargo fmt --all -- --check --color "$FMT_COLOR"

section "cargo clippy (-D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

section "cargo build -p switchyard"
cargo build -p switchyard
SWITCHYARD_BIN="$CARGO_TARGET_DIR/debug/switchyard"
export SWITCHYARD_BIN
test -x "$SWITCHYARD_BIN" || { echo "no binary at $SWITCHYARD_BIN" >&2; exit 1; }

section "cargo test (inside a D-Bus session with gnome-keyring)"
for tool in dbus-run-session gnome-keyring-daemon; do
    command -v "$tool" >/dev/null || { echo "$tool not found: run .ci/run (or apt-get install dbus gnome-keyring)" >&2; exit 1; }
done
# The keyring tests must really run here, not skip.
in_keyring_session env SWITCHYARD_REQUIRE_KEYRING=1 cargo test

section "Python venv for the SDK tests ($VENV)"
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "'$PYTHON -m venv' failed; trying /usr/bin/python3" >&2
        rm -rf "$VENV"
        /usr/bin/python3 -m venv "$VENV"
    fi
fi
"$VENV/bin/python" --version
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$ROOT/tests/python/requirements.txt" </dev/null
"$VENV/bin/python" -m pip freeze --disable-pip-version-check | grep -iE '^(openai|pytest)==' || true

section "pytest tests/python (openai SDK against switchyard serve)"
(
    cd "$ROOT/tests/python"
    in_keyring_session timeout --kill-after=30 "$PYTEST_TIMEOUT_S" "$VENV/bin/python" -m pytest -q </dev/null
)

section "browser tests (tests/browser: Chromium + playwright-core)"
npm --prefix "$ROOT/tests/browser" ci --no-audit --no-fund </dev/null
in_keyring_session npm --prefix "$ROOT/tests/browser" test </dev/null

section "coding agents (tests/agents: Claude Code, Codex CLI, Gemini CLI through switchyard serve)"
# ~900 MB from the npm registry (Claude Code and Codex ship native binaries);
# npm's cache makes a second run quick.
npm --prefix "$ROOT/tests/agents" ci --no-audit --no-fund </dev/null
in_keyring_session npm --prefix "$ROOT/tests/agents" test </dev/null

section "desktop app: release build and its unit tests"
cargo build --release -p switchyard-desktop -p switchyard-bench-upstream
cargo test --release -p switchyard-desktop

section "desktop smoke test (Xvfb, tests/desktop/smoke.sh)"
SKIP_BUILD=1 bash "$ROOT/tests/desktop/smoke.sh" </dev/null

end_section
printf '\n==== Summary: all checks passed ====\n'
printf '%s\n' "${TIMINGS[@]}"
