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

With a baseline (meta.json's "baseline", from BASELINE_BIN), a fourth side,
base (an older switchyard binary), runs in the same rounds. Its column is
its own median round. A comparison section sets the current binary against
it: the added latency, the CPU time per request and the RSS, with the ratio
current / baseline, and in how many rounds the current one was higher. A
difference counts as beyond noise only when it has the same sign in every
round (at least 3) and the ratio is off 1 by more than NOISE (10 %). The
comparison is reported, never a target: it does not change the exit code.
"""

import json
import os
import statistics
import sys

SIDES = ("direct", "bare", "through")

# How far from 1 a current / baseline ratio must be, with the same sign in
# every round, before the comparison calls it slower or faster.
NOISE = 0.10

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


def median_of(xs, key):
    """The element with the median key (the lower one of an even count)."""
    ordered = sorted(xs, key=key)
    return ordered[(len(ordered) - 1) // 2]


def ratio(a, b):
    return a / b if b > 0 else None


def verdict(ratio_, higher, n):
    """Slower / faster only when every round agrees and the ratio is off 1 by > NOISE."""
    if n < 3:
        return "too few rounds to tell"
    if ratio_ is not None and higher == n and ratio_ > 1 + NOISE:
        return "SLOWER"
    if ratio_ is not None and higher == 0 and ratio_ < 1 - NOISE:
        return "faster"
    return "within noise"


def size_verdict(ratio_):
    """The RSS is one reading per run: no rounds to agree."""
    if ratio_ is not None and ratio_ > 1 + NOISE:
        return "one reading: larger"
    if ratio_ is not None and ratio_ < 1 - NOISE:
        return "one reading: smaller"
    return "one reading: about equal"


def main():
    tmp = sys.argv[1]
    meta = read_json(os.path.join(tmp, "meta.json"))
    rounds = int(meta["rounds"])
    baseline = meta.get("baseline")
    sides = SIDES + (("base",) if baseline else ())
    w = sys.stdout.write

    runs = {}
    for phase in ("seq", "open"):
        for side in sides:
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
                if baseline:
                    base = runs[f"{phase}_base_{r}"][p + "_ms"]
                    per_round[-1].update(base=base, base_added=base - d)
            ordered = sorted(per_round, key=lambda x: x["added"])
            median = ordered[(len(ordered) - 1) // 2]
            if baseline:
                # The baseline's own median round, by its added latency.
                bm = median_of(per_round, lambda x: x["base_added"])
                base_cols = {
                    "base": bm["base"],
                    "base_added": bm["base_added"],
                    "base_round": bm["round"],
                }
            else:
                base_cols = {}
            metrics[f"{phase}_{p}"] = {
                "direct": median["direct"],
                "bare": median["bare"],
                "through": median["through"],
                "added": median["added"],
                "bare_added": median["bare"] - median["direct"],
                "added_min": ordered[0]["added"],
                "added_max": ordered[-1]["added"],
                **base_cols,
                "rounds": per_round,
            }

    # Server CPU per request, over all rounds of a phase.
    cpu = {}
    for phase in ("seq", "open"):
        for side in sides:
            total_req = 0
            threads = {}
            per_round = []
            for r in range(1, rounds + 1):
                name = f"{phase}_{side}_{r}"
                total_req += runs[name]["requests"]
                delta = thread_delta(tmp, name)
                for comm, v in delta.items():
                    t = threads.setdefault(comm, {"ns": 0, "cs": 0})
                    t["ns"] += v["ns"]
                    t["cs"] += v["cs"]
                round_ns = sum(v["ns"] for v in delta.values())
                per_round.append(round_ns / max(runs[name]["requests"], 1) / 1000)
            n = max(total_req, 1)
            per = {
                c: {"cpu_us": v["ns"] / n / 1000, "cs": v["cs"] / n} for c, v in threads.items()
            }
            cpu[f"{phase}_{side}"] = {
                "cpu_us": sum(v["cpu_us"] for v in per.values()),
                "cs": sum(v["cs"] for v in per.values()),
                "threads": per,
                "rounds_cpu_us": per_round,
            }

    rss_keys = ("start", "idle", "after_load", "peak")
    rss = {k: int(meta["rss_kb"][k]) / 1024 for k in rss_keys}
    base_rss = {k: int(baseline["rss_kb"][k]) / 1024 for k in rss_keys} if baseline else None
    rate = {
        side: statistics.mean(runs[f"open_{side}_{r}"]["rps"] for r in range(1, rounds + 1))
        for side in sides
    }

    # Current vs baseline: per metric the two values, their ratio, and the
    # rounds in which the current binary was the higher one.
    comparison = []
    if baseline:
        for key, label in (
            ("seq_p50", "sequential p50 added"),
            ("open_p99", "open loop p99 added"),
        ):
            m = metrics[key]
            diffs = [x["through"] - x["base"] for x in m["rounds"]]
            comparison.append(
                {
                    "metric": label,
                    "unit": "ms",
                    "current": m["added"],
                    "baseline": m["base_added"],
                    "ratio": ratio(m["added"], m["base_added"]),
                    "rounds_diff": diffs,
                    "higher": sum(1 for x in diffs if x > 0),
                }
            )
        for phase, label in (("seq", "sequential"), ("open", "open loop")):
            c, b = cpu[f"{phase}_through"], cpu[f"{phase}_base"]
            diffs = [x - y for x, y in zip(c["rounds_cpu_us"], b["rounds_cpu_us"])]
            comparison.append(
                {
                    "metric": f"server CPU per request, {label}",
                    "unit": "us",
                    "current": c["cpu_us"],
                    "baseline": b["cpu_us"],
                    "ratio": ratio(c["cpu_us"], b["cpu_us"]),
                    "rounds_diff": diffs,
                    "higher": sum(1 for x in diffs if x > 0),
                }
            )
        for k, label in (("idle", "idle RSS"), ("peak", "peak RSS")):
            comparison.append(
                {
                    "metric": label,
                    "unit": "MB",
                    "current": rss[k],
                    "baseline": base_rss[k],
                    "ratio": ratio(rss[k], base_rss[k]),
                    "rounds_diff": None,
                    "higher": None,
                }
            )
        for c in comparison:
            if c["rounds_diff"] is None:
                c["verdict"] = size_verdict(c["ratio"])
            else:
                c["verdict"] = verdict(c["ratio"], c["higher"], rounds)

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
    if baseline:
        w(f"baseline (base): switchyard {baseline['revision']} ({baseline['bin']})\n")
    base_head = f"{'base':>10}{'base adds':>11}" if baseline else ""
    width = 112 + (21 if baseline else 0)
    w(
        f"{'':<38}{'direct':>10}{'bare':>10}{'through':>10}{'added':>11}"
        f"{'bare adds':>11}{base_head}   added over all rounds\n"
    )
    w("-" * width + "\n")
    labels = {
        "seq_p50": f"sequential p50 ({meta['seq_requests']} req, c=1)",
        "seq_p99": "sequential p99",
        "open_p50": f"open loop p50 ({meta['rate']} req/s, {meta['duration']})",
        "open_p99": "open loop p99",
    }
    for key, label in labels.items():
        m = metrics[key]
        spread = " ".join(f"{x['added']:+.3f}" for x in m["rounds"])
        base_cols = f"{m['base']:>7.3f} ms{m['base_added']:>+8.3f} ms" if baseline else ""
        w(
            f"{label:<38}{m['direct']:>7.3f} ms{m['bare']:>7.3f} ms{m['through']:>7.3f} ms"
            f"{m['added']:>+8.3f} ms{m['bare_added']:>+8.3f} ms{base_cols}   {spread}\n"
        )
    base_rate = f"{'':>22}{rate['base']:>6.0f} r/s" if baseline else ""
    w(
        f"{'open loop achieved rate (mean)':<38}{rate['direct']:>6.0f} r/s{rate['bare']:>6.0f} r/s"
        f"{rate['through']:>6.0f} r/s{base_rate}\n"
    )
    if baseline:
        w(
            "(base: the baseline's own median round by its added latency; "
            "added over all rounds is through's)\n"
        )
    w("-" * width + "\n")
    w(
        "server CPU time per request (schedstat; direct = the mock, bare = the bare proxy, "
        "through = switchyard"
        + (", base = the baseline switchyard" if baseline else "")
        + "):\n"
    )
    cpu_keys = ("seq_through", "open_through")
    if baseline:
        cpu_keys += ("seq_base", "open_base")
    for key in cpu_keys + ("seq_bare", "open_bare", "seq_direct", "open_direct"):
        c = cpu[key]
        parts = ", ".join(
            f"{name} {v['cpu_us']:.0f} us"
            for name, v in sorted(c["threads"].items(), key=lambda kv: -kv[1]["cpu_us"])
            if v["cpu_us"] >= 0.5
        )
        w(f"  {key:<13}{c['cpu_us']:7.1f} us, {c['cs']:4.1f} context switches  ({parts})\n")
    w("-" * width + "\n")
    w(
        f"switchyard RSS: {rss['start']:.1f} MB at start, {rss['idle']:.1f} MB idle after warm-up, "
        f"{rss['after_load']:.1f} MB after the load, {rss['peak']:.1f} MB peak (VmHWM)\n"
        + ("" if baseline else "\n")
    )
    if baseline:
        w(
            f"baseline RSS:   {base_rss['start']:.1f} MB at start, "
            f"{base_rss['idle']:.1f} MB idle after warm-up, "
            f"{base_rss['after_load']:.1f} MB after the load, "
            f"{base_rss['peak']:.1f} MB peak (VmHWM)\n"
        )
        w("-" * width + "\n")
        w(
            f"current {meta['revision']} vs baseline {baseline['revision']} "
            f"(ratio = current / baseline; beyond noise = same sign in every round and more "
            f"than {NOISE:.0%} off):\n"
        )
        w(
            f"  {'':<36}{'current':>12}{'baseline':>12}{'ratio':>8}   "
            f"{'current higher':<18}{'verdict':<16}current - baseline, each round\n"
        )
        for c in comparison:
            unit, prec = c["unit"], {"ms": 3, "us": 1, "MB": 1}[c["unit"]]
            sign = "+" if unit == "ms" else ""
            cur = f"{c['current']:{sign}.{prec}f} {unit}"
            base = f"{c['baseline']:{sign}.{prec}f} {unit}"
            r_ = f"{c['ratio']:.2f}" if c["ratio"] is not None else "n/a"
            if c["rounds_diff"] is None:
                higher, each = "", ""
            else:
                higher = f"{c['higher']} of {rounds} rounds"
                each = " ".join(f"{x:+.{prec}f}" for x in c["rounds_diff"])
            w(
                f"  {c['metric']:<36}{cur:>12}{base:>12}{r_:>8}   "
                f"{higher:<18}{c['verdict']:<16}{each}\n"
            )
        w("  (the comparison is reported only; it is no target)\n\n")

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
                    **(
                        {"baseline": {"rss_mb": base_rss, "comparison": comparison}}
                        if baseline
                        else {}
                    ),
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
