#!/usr/bin/env bash
# Ledger benchmark: builds a 1,000,000-receipt ledger over 30 days through
# the gateway's own writer, then times `switchyard spend --by model --since
# 30d` (the whole command: process start, database open, query, table).
# Usage: bash tests/bench/spend.sh [RECEIPTS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchyard-target}"
N="${1:-1000000}"
DATA="${BENCH_DATA:-$HOME/.cache/switchyard-bench-ledger-$N}"

cargo build --release -q -p switchyard -p switchyard-bench-ledger
BIN="$CARGO_TARGET_DIR/release"
if [ ! -f "$DATA/switchyard.db" ]; then
    echo "== generating $N receipts in $DATA"
    "$BIN/switchyard-bench-ledger" "$DATA" "$N" 30
fi
echo "== database: $(du -h "$DATA/switchyard.db" | cut -f1), $(sqlite3 "$DATA/switchyard.db" 'select count(*) from receipts' 2>/dev/null || echo "$N") receipts"

SPEND=("$BIN/switchyard" --data-dir "$DATA" --config /nonexistent/switchyard.toml spend)
"${SPEND[@]}" --by model --since 30d | head -20
echo
python3 - "$@" <<PY
import statistics, subprocess, time
cmds = {
    "spend --by model --since 30d": ["$BIN/switchyard", "--data-dir", "$DATA", "--config", "/nonexistent/switchyard.toml", "spend", "--by", "model", "--since", "30d"],
    "spend --by day --since 30d":   ["$BIN/switchyard", "--data-dir", "$DATA", "--config", "/nonexistent/switchyard.toml", "spend", "--by", "day", "--since", "30d"],
    "spend --by key --since 7d":    ["$BIN/switchyard", "--data-dir", "$DATA", "--config", "/nonexistent/switchyard.toml", "spend", "--by", "key", "--since", "7d"],
    "receipts --limit 50":          ["$BIN/switchyard", "--data-dir", "$DATA", "--config", "/nonexistent/switchyard.toml", "receipts", "--limit", "50"],
}
fails = 0
print(f"{'command':34} {'runs':>4} {'median ms':>10} {'max ms':>8}")
for name, cmd in cmds.items():
    times = []
    for _ in range(15):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1000)
    med = statistics.median(times)
    print(f"{name:34} {len(times):>4} {med:>10.1f} {max(times):>8.1f}")
    if name.startswith("spend --by model") and med >= 200:
        fails += 1
print("target: spend --by model --since 30d < 200 ms:", "met" if not fails else "MISSED")
raise SystemExit(1 if fails else 0)
PY
