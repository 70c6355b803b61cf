#!/usr/bin/env bash
# Desktop smoke test: the release-built switchyard-desktop under Xvfb, in a
# private D-Bus session with an unlocked gnome-keyring.
#
#   1. starts with a temp --config/--data-dir on a free --listen port; the
#      window "Switchyard" is mapped (time to it is reported), /health
#      answers, a screenshot goes to tests/artifacts/desktop.png
#   2. the Chat view, driven from the keyboard, sends one message and shows
#      its answer (a `chat` receipt; tests/artifacts/desktop-chat.png);
#      requests through the port reach a mock upstream
#   3. a second launch exits at once and leaves one window
#   4. SIGTERM: a clean exit (0), every receipt settled (none `pending`)
#   5. the tray's Quit (clicked over D-Bus, as a tray host would): the same
#   6. a port already in use: an error on stderr and in a dialog, exit 1
#   7. run under the name `switchyard` (as the .deb's /usr/bin/switchyard
#      does), it is the core's command line: `key list` on the same ledger
#
#   bash tests/desktop/smoke.sh        (SKIP_BUILD=1 to use the binaries already built)
NAME=smoke
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
enter_session "$@"
setup_tmp

REQUESTS="${REQUESTS:-20}"

start_mock
write_config
log "mock upstream on 127.0.0.1:$mock_port; gateway key created"

# ---- 1. window, health, screenshot
launch first
wait_window Switchyard
log "window mapped ${shown_ms} ms after launch (id $window_id)"
first_shown_ms=$shown_ms
wait_health
# The window's page is the web UI embedded in this build, not the notice
# a build without ui/dist serves.
curl -s "http://127.0.0.1:$port/" | grep -q '<div id="root"' ||
    die "the gateway serves no web UI at / (build ui/ before the release build)"
geometry="$(xwininfo -id "$window_id" | awk '/Width:/ { w = $2 } /Height:/ { h = $2 } END { print w "x" h }')"
[[ "$geometry" == 1200x800 ]] || die "window is $geometry, expected 1200x800"
grep -q "listening on http://127.0.0.1:$port/v1" "$tmp/first.err" || die "no 'listening on' line for port $port"
sleep "${SCREENSHOT_DELAY:-2}"
import -window root "$artifacts/desktop.png"
log "screenshot: tests/artifacts/desktop.png"

# ---- 2. the Chat view sends a message; requests through the port
# Real input events (XTest), as a user's: a click into the window, then
# the keyboard. New chat (Ctrl+Shift+O) puts the cursor in the composer;
# Enter sends.
xdotool mousemove --window "$window_id" 700 300 click 1
sleep 0.3
xdotool key ctrl+shift+o
sleep 0.5
xdotool type --delay 15 "Hello from the desktop"
xdotool key Return
chat_answer=""
for _ in $(seq 1 100); do
    chat_answer="$(python3 - "$data_dir/switchyard.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute("""SELECT m.content FROM chat_messages m JOIN receipts r ON r.id = m.receipt_id
    WHERE m.role = 'assistant' AND m.status = 'complete' AND r.source = 'chat' AND r.status = 'ok'""").fetchone()
print(row[0] if row else "")
PY
)"
    [[ -n "$chat_answer" ]] && break
    sleep 0.1
done
sleep 0.5
import -window root "$artifacts/desktop-chat.png"
[[ -n "$chat_answer" ]] ||
    die "the Chat view sent no message (no complete answer with an ok chat receipt; see tests/artifacts/desktop-chat.png)"
log "Chat view: a message typed and sent from the keyboard was answered (\"$chat_answer\"); tests/artifacts/desktop-chat.png"
chat_receipts=1

for _ in $(seq 1 "$REQUESTS"); do chat; done
log "$REQUESTS chat completions through 127.0.0.1:$port answered 200"

# ---- 3. single instance
second_start="$(now_ms)"
second_status=0
timeout 20 "$desktop" --config "$config" --data-dir "$data_dir" >"$tmp/second.out" 2>"$tmp/second.err" ||
    second_status=$?
[[ $second_status -eq 0 ]] || die "the second launch exited $second_status"
kill -0 "$app_pid" 2>/dev/null || die "the first instance died when a second one launched"
windows="$(xdotool search --onlyvisible --name '^Switchyard$' | wc -l)"
[[ "$windows" -eq 1 ]] || die "$windows windows titled Switchyard after a second launch"
log "second launch handed over and exited 0 in $(($(now_ms) - second_start)) ms; still one window"

# ---- 4. SIGTERM
stop_app TERM
[[ $exit_status -eq 0 ]] || die "exit status $exit_status after SIGTERM"
grep -q "Shutting down" "$tmp/first.err" || die "no graceful shutdown logged"
read -r total pending ok <<<"$(ledger_counts)"
[[ "$pending" -eq 0 ]] || die "$pending receipts still pending after SIGTERM"
[[ "$ok" -eq $((REQUESTS + chat_receipts)) ]] ||
    die "$ok ok receipts in the ledger, expected $((REQUESTS + chat_receipts)) (of $total)"
log "SIGTERM: exit 0; ledger has $ok ok receipts, 0 pending"

# ---- 5. the tray's Quit
launch tray
wait_window Switchyard
wait_health
for _ in 1 2 3; do chat; done
python3 "$here/tray.py" click --pid "$app_pid" --label Quit ||
    die "could not click the tray's Quit over D-Bus"
stop_app none
[[ $exit_status -eq 0 ]] || die "exit status $exit_status after the tray's Quit"
read -r total pending ok <<<"$(ledger_counts)"
[[ "$pending" -eq 0 ]] || die "$pending receipts still pending after Quit"
[[ "$ok" -eq $((REQUESTS + chat_receipts + 3)) ]] ||
    die "$ok ok receipts after Quit, expected $((REQUESTS + chat_receipts + 3))"
log "tray Quit: exit 0; ledger has $ok ok receipts, 0 pending"

# ---- 6. port in use
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$tmp/blocker.out" &
pids+=("$!")
for _ in $(seq 1 50); do [[ -s "$tmp/blocker.out" ]] && break; sleep 0.05; done
busy_port="$(head -n1 "$tmp/blocker.out")"
launched_ms="$(now_ms)"
"$desktop" --config "$config" --data-dir "$data_dir" --listen "127.0.0.1:$busy_port" \
    >"$tmp/busy.out" 2>"$tmp/busy.err" &
app_pid=$!
pids+=("$app_pid")
wait_window "Switchyard cannot start"
grep -q "port is in use" "$tmp/busy.err" || die "stderr does not say the port is in use: $(cat "$tmp/busy.err")"
import -window root "$artifacts/desktop-error.png"
xdotool windowactivate --sync "$window_id" 2>/dev/null || xdotool windowfocus --sync "$window_id"
xdotool key --window "$window_id" Return
stop_app none
[[ $exit_status -eq 1 ]] || die "exit status $exit_status when the port is in use, expected 1"
log "port in use: dialog shown (tests/artifacts/desktop-error.png), stderr explains, exit 1"

# ---- 7. the name `switchyard`
version="$(bash -c 'exec -a switchyard "$0" --version' "$desktop")"
[[ "$version" == "switchyard "* ]] || die "run as switchyard, --version says: $version"
bash -c 'exec -a switchyard "$0" "$@"' "$desktop" key list --config "$config" --data-dir "$data_dir" \
    >"$tmp/cli.out" 2>"$tmp/cli.err" || die "run as switchyard, key list failed: $(cat "$tmp/cli.err")"
grep -q 'desktop-test' "$tmp/cli.out" || die "key list does not show the desktop-test key: $(cat "$tmp/cli.out")"
log "run as switchyard: '$version', and key list reads the same ledger"

log "window shown in ${first_shown_ms} ms"
echo "desktop smoke: 7 passed, 0 failed"
