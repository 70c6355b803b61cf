# Shared by smoke.sh and memory.sh: a private X display and D-Bus session
# with an unlocked gnome-keyring, a mock upstream, a temp config, and the
# release-built switchyard-desktop. Source it; it sets `set -euo pipefail`.
#
# Environment:
#   CARGO_TARGET_DIR  where the release binaries are (default ~/.cache/switchyard-target)
#   SKIP_BUILD=1      use the binaries already built
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchyard-target}"
bin="$CARGO_TARGET_DIR/release"
artifacts="$repo/tests/artifacts"
desktop="$bin/switchyard-desktop"
NAME="${NAME:-desktop}"

log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() {
    printf '[%s] FAILED: %s\n' "$NAME" "$*" >&2
    exit 1
}

# Re-runs the calling script inside Xvfb and a private D-Bus session with an
# unlocked gnome-keyring (unless already inside one).
enter_session() {
    if [[ -n "${SWITCHYARD_DESKTOP_SESSION:-}" ]]; then
        return
    fi
    for tool in xvfb-run dbus-run-session gnome-keyring-daemon xdotool xwininfo import python3 curl; do
        command -v "$tool" >/dev/null || die "$tool is needed (apt: xvfb xauth dbus gnome-keyring xdotool x11-utils imagemagick python3 curl)"
    done
    if [[ "${SKIP_BUILD:-0}" != "1" ]]; then
        log "building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
        (cd "$repo" && cargo build --release -p switchyard-desktop -p switchyard-bench-upstream >&2)
    fi
    for b in switchyard-desktop switchyard-bench-upstream; do
        [[ -x "$bin/$b" ]] || die "$bin/$b is missing (build first, or unset SKIP_BUILD)"
    done
    export SWITCHYARD_DESKTOP_SESSION=1
    exec xvfb-run -a -s "-screen 0 1600x1000x24 -nolisten tcp" \
        dbus-run-session -- sh -c '
            echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null ||
                echo "warning: could not unlock gnome-keyring" >&2
            exec bash "$@"' sh "$0" "$@"
}

tmp=""
pids=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -ne 0 && -n "$tmp" ]]; then
        for f in "$tmp"/*.err; do
            [[ -s "$f" ]] || continue
            printf '[%s] --- last lines of %s ---\n' "$NAME" "$(basename "$f")" >&2
            tail -n 25 "$f" >&2 || true
        done
    fi
    [[ -n "$tmp" ]] && rm -rf "$tmp"
    exit "$status"
}

setup_tmp() {
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchyard-desktop.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$artifacts" "$tmp/data"
    config="$tmp/switchyard.toml"
    data_dir="$tmp/data"
}

now_ms() { date +%s%3N; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts the mock upstream; sets mock_port.
start_mock() {
    "$bin/switchyard-bench-upstream" --host 127.0.0.1 --port 0 >"$tmp/mock.out" 2>"$tmp/mock.err" &
    pids+=("$!")
    for _ in $(seq 1 100); do
        mock_port="$(head -n1 "$tmp/mock.out" 2>/dev/null || true)"
        [[ "$mock_port" =~ ^[0-9]+$ ]] && return
        sleep 0.05
    done
    die "the mock upstream did not start"
}

# A config with one channel on the mock upstream and a route to it, and a
# gateway key made with the desktop binary's own CLI; sets key.
write_config() {
    cat >"$config" <<TOML
[server]
listen = "127.0.0.1:0"

[[channels]]
id = "mock"
type = "openai-compatible"
brand = "Mock"
base_url = "http://127.0.0.1:$mock_port/v1"
bucket = "credit"
secret = "none"

[[routes]]
model = "desk-model"
targets = [{ channel = "mock", model = "desk-model" }]
TOML
    "$desktop" config check --config "$config" --data-dir "$data_dir" >/dev/null 2>"$tmp/check.err" ||
        die "config check: $(cat "$tmp/check.err")"
    key="$("$desktop" key create desktop-test --config "$config" --data-dir "$data_dir" 2>"$tmp/key.err" | tail -n1)"
    [[ "$key" == sy-* ]] || die "key create printed no key: $(cat "$tmp/key.err")"
}

# Launches the app on a free port; sets app_pid, port, launched_ms.
# $1: a name for its log files.
launch() {
    local name="$1"
    port="$(free_port)"
    launched_ms="$(now_ms)"
    SWITCHYARD_LOG="${SWITCHYARD_LOG:-info}" "$desktop" \
        --config "$config" --data-dir "$data_dir" --listen "127.0.0.1:$port" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    app_pid=$!
    pids+=("$app_pid")
}

# Waits for a visible top-level window titled exactly $1; sets window_id
# and shown_ms (milliseconds since launch).
wait_window() {
    local title="$1"
    window_id=""
    for _ in $(seq 1 600); do
        window_id="$(xdotool search --onlyvisible --name "^${title}\$" 2>/dev/null | head -n1 || true)"
        if [[ -n "$window_id" ]]; then
            shown_ms=$(($(now_ms) - launched_ms))
            return 0
        fi
        kill -0 "$app_pid" 2>/dev/null || die "the app exited before its window \"$title\" appeared"
        sleep 0.02
    done
    die "no window \"$title\" within 12 s"
}

wait_health() {
    for _ in $(seq 1 200); do
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" == 200 ]]; then
            return 0
        fi
        sleep 0.05
    done
    die "/health on port $port did not answer 200"
}

# One chat completion through the gateway; fails unless it is 200.
chat() {
    local code
    code="$(curl -sS -o "$tmp/chat.json" -w '%{http_code}' --max-time 10 \
        -H 'content-type: application/json' -H "authorization: Bearer $key" \
        -d '{"model":"desk-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}' \
        "http://127.0.0.1:$port/v1/chat/completions")" || die "request failed"
    [[ "$code" == 200 ]] || die "chat completion answered $code: $(head -c 300 "$tmp/chat.json")"
}

# Sends SIGTERM (or nothing, if $1 is "none") and waits up to 15 s for the
# app to exit; sets exit_status.
stop_app() {
    local signal="${1:-TERM}"
    [[ "$signal" == none ]] || kill -"$signal" "$app_pid"
    for _ in $(seq 1 150); do
        kill -0 "$app_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$app_pid" 2>/dev/null && die "the app did not exit within 15 s"
    exit_status=0
    wait "$app_pid" || exit_status=$?
}

# Receipts in the ledger: "total pending ok".
ledger_counts() {
    python3 - "$data_dir/switchyard.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
count = lambda where: db.execute(f"SELECT COUNT(*) FROM receipts {where}").fetchone()[0]
print(count(""), count("WHERE status = 'pending'"), count("WHERE status = 'ok'"))
PY
}

# PSS of a process and all its descendants, in kB, summed from smaps_rollup.
tree_pss_kb() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
children = {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open(f"/proc/{p}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        continue
    children.setdefault(ppid, []).append(int(p))
total, todo = 0, [root]
while todo:
    pid = todo.pop()
    todo.extend(children.get(pid, []))
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            total += sum(int(l.split()[1]) for l in f if l.startswith("Pss:"))
    except OSError:
        pass
print(total)
PY
}

# The process tree under $1, one "pid name" a line.
tree_names() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
children = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(p))
todo = [root]
while todo:
    pid = todo.pop()
    todo.extend(children.get(pid, []))
    try:
        print(pid, open(f"/proc/{pid}/comm").read().strip())
    except OSError:
        pass
PY
}
