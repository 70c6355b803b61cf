#!/usr/bin/env python3
"""Summary of one run of tests/bench/overhead.sh.

Reads, from the run's scratch directory: meta.json (written by the script),
oha's JSON output for every measured run (NAME.json) and the server thread
snapshots taken around it (NAME.cpu0.json, NAME.cpu1.json). Prints the
summary table, optionally writes it as JSON (BENCH_JSON), and exits 1 when a
target is missed or a request failed.

Three sides are measured: direct (the mock upstream), bare (the bare
reference proxy in front of the mock: one HTTP hop and nothing else) and
through (Switchyard in front of the mock). Each phase runs ROUNDS times, the
sides interleaved (their order rotating between rounds). For each percentile
the round whose added latency (through - direct) is the median is the one
reported, so all columns of a row come from the same round; the spread of
the added latency over all rounds is shown beside it. The targets apply to
Switchyard's added latency; the bare proxy's shows the floor that any
second hop sets on the machine at hand.
"""

import json
import os
import statistics
import sys

SIDES = ("direct", "bare", "through")

# oha counts requests still in flight when -z runs out as errors of this kind.
DEADLINE_ABORT = "aborted due to deadline"


def read_json(path):
    with open(path) as f:
        return json.load(f)


def load_run(tmp, name):
    d = read_json(os.path.join(tmp, name + ".json"))
    codes = {str(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
    errors = {
        k: v for k, v in (d.get("errorDistribution") or {}).items() if k != DEADLINE_ABORT
    }
    pct = d["latencyPercentiles"]
    return {
        "requests": sum(codes.values()) + sum(errors.values()),
        "ok": codes.get("200", 0),
        "rps": d["summary"].get("requestsPerSec") or 0.0,
        "p50_ms": (pct.get("p50") or 0.0) * 1000,
        "p99_ms": (pct.get("p99") or 0.0) * 1000,
        "codes": codes,
        "errors": errors,
    }


def thread_delta(tmp, name):
    """CPU ns and context switches of the server, per thread name, during a run."""
    a = read_json(os.path.join(tmp, name + ".cpu0.json"))
    b = read_json(os.path.join(tmp, name + ".cpu1.json"))
    out = {}
    for comm, v in b.items():
        u = a.get(comm, {"ns": 0, "cs": 0})
        out[comm] = {"ns": v["ns"] - u["ns"], "cs": v["cs"] - u["cs"]}
    return out


def main():
    tmp = sys.argv[1]
    meta = read_json(os.path.join(tmp, "meta.json"))
    rounds = int(meta["rounds"])
    w = sys.stdout.write

    runs = {}
    for phase in ("seq", "open"):
        for side in SIDES:
            for r in range(1, rounds + 1):
                name = f"{phase}_{side}_{r}"
                runs[name] = load_run(tmp, name)

    problems = []
    for name, run in runs.items():
        if run["requests"] == 0 or run["ok"] != run["requests"]:
            problems.append(
                f"{name}: {run['ok']}/{run['requests']} answered 200 "
                f"(codes {run['codes']}, errors {run['errors']})"
            )

    # Per metric: every round's (direct, through, added); report the median round.
    metrics = {}
    for phase in ("seq", "open"):
        for p in ("p50", "p99"):
            per_round = []
            for r in range(1, rounds + 1):
                d = runs[f"{phase}_direct_{r}"][p + "_ms"]
                b = runs[f"{phase}_bare_{r}"][p + "_ms"]
                t = runs[f"{phase}_through_{r}"][p + "_ms"]
                per_round.append(
                    {"round": r, "direct": d, "bare": b, "through": t, "added": t - d}
                )
            ordered = sorted(per_round, key=lambda x: x["added"])
            median = ordered[(len(ordered) - 1) // 2]
            metrics[f"{phase}_{p}"] = {
                "direct": median["direct"],
                "bare": median["bare"],
                "through": median["through"],
                "added": median["added"],
                "bare_added": median["bare"] - median["direct"],
                "added_min": ordered[0]["added"],
                "added_max": ordered[-1]["added"],
                "rounds": per_round,
            }

    # Server CPU per request, over all rounds of a phase.
    cpu = {}
    for phase in ("seq", "open"):
        for side in SIDES:
            total_req = 0
            threads = {}
            for r in range(1, rounds + 1):
                name = f"{phase}_{side}_{r}"
                total_req += runs[name]["requests"]
                for comm, v in thread_delta(tmp, name).items():
                    t = threads.setdefault(comm, {"ns": 0, "cs": 0})
                    t["ns"] += v["ns"]
                    t["cs"] += v["cs"]
            n = max(total_req, 1)
            per = {
                c: {"cpu_us": v["ns"] / n / 1000, "cs": v["cs"] / n} for c, v in threads.items()
            }
            cpu[f"{phase}_{side}"] = {
                "cpu_us": sum(v["cpu_us"] for v in per.values()),
                "cs": sum(v["cs"] for v in per.values()),
                "threads": per,
            }

    rss = {k: int(meta["rss_kb"][k]) / 1024 for k in ("start", "idle", "after_load", "peak")}
    rate = {
        side: statistics.mean(runs[f"open_{side}_{r}"]["rps"] for r in range(1, rounds + 1))
        for side in SIDES
    }

    limits = meta["limits"]
    checks = [
        ("sequential p50 added", metrics["seq_p50"]["added"], float(limits["seq_p50_added_ms"]), "ms"),
        ("open-loop p99 added", metrics["open_p99"]["added"], float(limits["open_p99_added_ms"]), "ms"),
        ("idle RSS", rss["idle"], float(limits["idle_rss_mb"]), "MB"),
    ]

    w("\n")
    w(
        f"Switchyard overhead benchmark: switchyard {meta['revision']}, {meta['cpus']} CPUs, "
        f"SWITCHYARD_LOG={meta['log']}, {rounds} rounds, "
        f"other CPU load before the run {meta['background_busy']}%, "
        f"host steal during it {meta.get('steal_pct', '?')}%\n"
    )
    w(
        f"{'':<38}{'direct':>10}{'bare':>10}{'through':>10}{'added':>11}"
        f"{'bare adds':>11}   added over all rounds\n"
    )
    w("-" * 112 + "\n")
    labels = {
        "seq_p50": f"sequential p50 ({meta['seq_requests']} req, c=1)",
        "seq_p99": "sequential p99",
        "open_p50": f"open loop p50 ({meta['rate']} req/s, {meta['duration']})",
        "open_p99": "open loop p99",
    }
    for key, label in labels.items():
        m = metrics[key]
        spread = " ".join(f"{x['added']:+.3f}" for x in m["rounds"])
        w(
            f"{label:<38}{m['direct']:>7.3f} ms{m['bare']:>7.3f} ms{m['through']:>7.3f} ms"
            f"{m['added']:>+8.3f} ms{m['bare_added']:>+8.3f} ms   {spread}\n"
        )
    w(
        f"{'open loop achieved rate (mean)':<38}{rate['direct']:>6.0f} r/s{rate['bare']:>6.0f} r/s"
        f"{rate['through']:>6.0f} r/s\n"
    )
    w("-" * 112 + "\n")
    w(
        "server CPU time per request (schedstat; direct = the mock, bare = the bare proxy, "
        "through = switchyard):\n"
    )
    for key in (
        "seq_through", "open_through", "seq_bare", "open_bare", "seq_direct", "open_direct"
    ):
        c = cpu[key]
        parts = ", ".join(
            f"{name} {v['cpu_us']:.0f} us"
            for name, v in sorted(c["threads"].items(), key=lambda kv: -kv[1]["cpu_us"])
            if v["cpu_us"] >= 0.5
        )
        w(f"  {key:<13}{c['cpu_us']:7.1f} us, {c['cs']:4.1f} context switches  ({parts})\n")
    w("-" * 112 + "\n")
    w(
        f"switchyard RSS: {rss['start']:.1f} MB at start, {rss['idle']:.1f} MB idle after warm-up, "
        f"{rss['after_load']:.1f} MB after the load, {rss['peak']:.1f} MB peak (VmHWM)\n\n"
    )

    failed = False
    for label, value, limit, unit in checks:
        ok = value <= limit
        failed |= not ok
        w(f"  {'PASS' if ok else 'FAIL'}  {label}: {value:.3f} {unit} (target <= {limit:g} {unit})\n")
    for p in problems:
        failed = True
        w(f"  FAIL  {p}\n")

    out = os.environ.get("BENCH_JSON")
    if out:
        with open(out, "w") as f:
            json.dump(
                {
                    "meta": meta,
                    "latency_ms": metrics,
                    "open_loop_rate": rate,
                    "server_cpu_per_request": cpu,
                    "rss_mb": rss,
                    "targets": {
                        label: {"value": v, "limit": lim, "ok": v <= lim}
                        for label, v, lim, _ in checks
                    },
                    "problems": problems,
                    "runs": runs,
                    "passed": not failed,
                },
                f,
                indent=2,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
