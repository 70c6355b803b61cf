#!/usr/bin/env bash
# Desktop memory benchmark: the release-built switchyard-desktop under Xvfb.
# Reports the proportional set size (PSS, from /proc/PID/smaps_rollup) of the
# whole process tree — the app and WebKit's web, network and helper
# processes — once idle after start, and again after REQUESTS requests
# through the port to a mock upstream; the growth between them; and the time
# from launch to the window being mapped.
#
# Targets: PSS <= 250 MB, growth <= 10 %, window within 1.5 s.
# Exits 1 when a target is missed (ENFORCE=0 only reports).
#
#   bash tests/desktop/memory.sh       (SKIP_BUILD=1 to use the binaries already built)
NAME=memory
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
enter_session "$@"
setup_tmp

REQUESTS="${REQUESTS:-1000}"
SETTLE="${SETTLE:-5}"
MAX_PSS_MB=250
MAX_GROWTH_PCT=10
MAX_SHOWN_MS=1500

start_mock
write_config
launch memory
wait_window Switchyard
wait_health
log "window mapped ${shown_ms} ms after launch; letting the page settle ${SETTLE} s"
sleep "$SETTLE"
idle_kb="$(tree_pss_kb "$app_pid")"
processes="$(tree_names "$app_pid" | awk '{ print $2 }' | sort | uniq -c | awk '{ printf "%s%s×%s", sep, $2, $1; sep = ", " }')"

log "sending $REQUESTS requests"
start="$(now_ms)"
python3 - "$port" "$key" "$REQUESTS" <<'PY'
import http.client, json, sys
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = json.dumps({"model": "desk-model", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16})
headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(n):
    conn.request("POST", "/v1/chat/completions", body, headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"request {i} answered {r.status}: {data[:300]!r}")
PY
elapsed_ms=$(($(now_ms) - start))
sleep "$SETTLE"
after_kb="$(tree_pss_kb "$app_pid")"

stop_app TERM
[[ $exit_status -eq 0 ]] || die "exit status $exit_status after SIGTERM"
read -r total pending ok <<<"$(ledger_counts)"

report="$(python3 - "$idle_kb" "$after_kb" "$shown_ms" "$REQUESTS" "$elapsed_ms" "$ok" "$pending" "$processes" \
    "$MAX_PSS_MB" "$MAX_GROWTH_PCT" "$MAX_SHOWN_MS" <<'PY'
import sys
idle, after, shown, n, elapsed, ok, pending = map(int, sys.argv[1:8])
procs = sys.argv[8]
max_pss, max_growth, max_shown = float(sys.argv[9]), float(sys.argv[10]), int(sys.argv[11])
growth = (after - idle) * 100.0 / idle
mb = lambda kb: kb / 1024
rows = [
    ("window shown after launch", f"{shown} ms", f"<= {max_shown} ms", shown <= max_shown),
    ("PSS idle after start", f"{mb(idle):.1f} MB", f"<= {max_pss:.0f} MB", mb(idle) <= max_pss),
    (f"PSS after {n} requests", f"{mb(after):.1f} MB", f"<= {max_pss:.0f} MB", mb(after) <= max_pss),
    ("growth", f"{growth:+.1f} %", f"<= {max_growth:.0f} %", growth <= max_growth),
]
print("Switchyard desktop memory (release build, Xvfb; PSS of the whole process tree)")
print(f"process tree: {procs}")
print(f"{n} requests through the port in {elapsed} ms; ledger: {ok} ok, {pending} pending")
for name, value, target, good in rows:
    print(f"  {name:<28} {value:>10}   target {target:<10} {'ok' if good else 'MISSED'}")
failed = sum(not r[3] for r in rows)
print(f"desktop memory: {len(rows) - failed} passed, {failed} failed")
PY
)"
printf '%s\n' "$report"
printf '%s\n' "$report" >"$artifacts/desktop-memory.txt"
log "report written to tests/artifacts/desktop-memory.txt"
[[ "$pending" -eq 0 ]] || die "$pending receipts pending after SIGTERM"
if [[ "${ENFORCE:-1}" == 1 ]] && grep -q MISSED <<<"$report"; then
    die "a target was missed"
fi
