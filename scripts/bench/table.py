#!/usr/bin/env python3
"""Prints scripts/bench.sh's one table from what that run left in its results directory.

    table.py RESULTS_DIR

Every number comes from a file this run wrote: hyperfine's --export-json (medians), criterion's
estimates.json (median; only those written after RESULTS_DIR/started, i.e. by this run),
scripts/bench/first-request.py's JSON, and the text scripts/measure-scheduler.sh,
scripts/bench-memory.sh and the fault_proxy bench print. A figure this run did not measure is
printed as "not run" with the reason, never filled in from elsewhere.
"""
import json
import os
import re
import sys

out = sys.argv[1]
meta = json.load(open(os.path.join(out, "meta.json")))
started = os.path.getmtime(os.path.join(out, "started"))
rows = []
notes = []


def path(name):
    return os.path.join(out, name)


def load(name):
    try:
        with open(path(name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def text(name):
    try:
        with open(path(name)) as f:
            return f.read()
    except FileNotFoundError:
        return None


def fmt_s(s):
    if s is None:
        return "?"
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.1f} ms"
    if s < 100:
        return f"{s:.2f} s"
    return f"{s:.0f} s"


def fmt_target(s):
    if s is None:
        return "—"
    return f"target {s:g} s" if s >= 1 else f"target {s * 1000:g} ms"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    if r < 0.01:
        return f"{r:.4f} (1/{1 / r:,.0f})"
    if r < 1:
        return f"{r:.3f} (1/{1 / r:.1f})"
    return f"{r:.2f}"


section = ""


def row(measure, firedrill, baseline, ratio):
    measure = section + measure.replace(" | ", " vs ")  # "firedrill's side | the baseline's side"
    rows.append(f"| {measure} | {firedrill} | {baseline} | {ratio} |")


def hyperfine(name):
    """Medians (s) of the commands in one hyperfine export, in order."""
    data = load(name)
    if data is None:
        return None
    return [r["median"] for r in data["results"]]


def criterion(title):
    """Median (s) of a criterion benchmark run by this run, or None."""
    root = "target/criterion"
    if not os.path.isdir(root):
        return None
    for d in os.listdir(root):
        bench = os.path.join(root, d, "new", "benchmark.json")
        est = os.path.join(root, d, "new", "estimates.json")
        try:
            if json.load(open(bench)).get("title") != title:
                continue
        except (FileNotFoundError, ValueError):
            continue
        if os.path.getmtime(est) < started:
            return None  # an earlier run's figure: not this run's
        return json.load(open(est))["median"]["point_estimate"] / 1e9
    return None


skipped_criterion = "not run (--compare-only: criterion needs cargo)"


def criterion_row(measure, title, target=None):
    m = criterion(title)
    if m is None:
        why = skipped_criterion if meta["compare_only"] else "not run (no criterion result from this run)"
        row(measure, why, fmt_target(target), "—")
    else:
        row(measure, fmt_s(m), fmt_target(target), fmt_ratio(m, target))


# (a) validate
section = "(a) "
n = meta["drill_count"]
v = hyperfine("validate-programme.json")
if v:
    row(f"validate the {n}-drill programme `{meta['drills_file']}`: 1 `firedrill validate` | {n} `chaos "
        f"validate`, one per equivalent experiment (one file per call), in a row", fmt_s(v[0]), fmt_s(v[1]),
        fmt_ratio(v[0], v[1]))
v = hyperfine("validate-one.json")
if v:
    row(f"validate one drill, `{meta['one_drill']}`: `firedrill validate` of a 1-drill file | 1 "
        "`chaos validate` of its experiment", fmt_s(v[0]), fmt_s(v[1]), fmt_ratio(v[0], v[1]))

# (b) a drill Job's start to its first probe
section = "(b) "
fd = load("first-firedrill.json")
for name, what in (("first-seed.json", "the seed's Job: `pip install --no-cache-dir kubernetes pyyaml aiohttp "
                                      "requests` in a fresh venv, imports, GET"),
                   ("first-chaostoolkit.json", "a chaostoolkit Job: `pip install --no-cache-dir -r "
                                               "scripts/bench/chaostoolkit-job.txt` in a fresh venv, `chaos run` "
                                               "of the same probe")):
    base = load(name)
    if fd and base:
        row(f"a drill Job's start to its first probe request: `firedrill execute` of a `probe` drill "
            f"(stub API), median of {len(fd['runs'])} | {what}, median of {len(base['runs'])}",
            fmt_s(fd["median"]), fmt_s(base["median"]), fmt_ratio(fd["median"], base["median"]))
    elif fd is None or base is None:
        row(f"a drill Job's start to its first probe request | {what}", "not run" if fd is None else fmt_s(fd["median"]),
            "not run", "—")

# (c) the README's benchmark table
section = "(c) "
p = hyperfine("readme-process.json")
if p:
    row("`firedrill validate` of a 50-drill file, whole process (hyperfine, median)", fmt_s(p[0]), fmt_target(0.020),
        fmt_ratio(p[0], 0.020))
else:
    row("`firedrill validate` of a 50-drill file, whole process", "not run (no target/bench-data: criterion "
        "writes it)", fmt_target(0.020), "—")
criterion_row("`plan` of 1,000 drills over one year, library (criterion, median)", "plan 1000 drills over one year",
              0.200)
if p:
    row("the same as a whole process, JSON to stdout (hyperfine, median)", fmt_s(p[1]), "—", "—")
else:
    row("the same as a whole process, JSON to stdout", "not run (no target/bench-data)", "—", "—")
criterion_row("`firedrill stop` of 4 × 1,000 artifacts in 10 namespaces and 10 ledgers, against kube's tower_test "
              "mock (criterion, median)", "stop: 4 x 1,000 artifacts, 10 namespaces, 10 ledgers")
criterion_row("one verdict, 100,000 pods in 10,000 workloads over 100 namespaces, 5 targets (criterion, median)",
              "verdict: 100k pods, 10k workloads, 100 namespaces, 5 targets", 0.100)
criterion_row("one verdict, 100,000 pods in 10,000 workloads in one namespace, every pod matched (criterion, median)",
              "verdict: 100k pods, 10k workloads, one namespace, every pod matched", 0.100)

for name in ["scheduler.txt", "scheduler-every-minute.txt"]:
    s = text(name)
    m = s and re.search(r"scheduler, (\d+ drills(?: \([^)]*\))?), (\d+)s idle: RSS (\d+) KiB \(peak (\d+) KiB\), "
                        r"CPU (\d+) ms = ([\d.]+%)", s)
    if m:
        row(f"scheduler idle, {m[1]}, {m[2]} s, 5 s tick, against scripts/kube-stub.py "
            "(scripts/measure-scheduler.sh)", f"RSS {int(m[3]) / 1024:.1f} MiB (peak {int(m[4]) / 1024:.1f}), "
            f"CPU {m[5]} ms ({m[6]} of a core)", "—", "—")
    else:
        row(f"scheduler idle (scripts/measure-scheduler.sh{' --every-minute' if 'every' in name else ''})",
            "not run" if s is None else "failed: see " + path(name), "—", "—")

if fd and fd["first_probe_log_ms"]:
    logged = sorted(fd["first_probe_log_ms"])
    med = logged[len(logged) // 2] if len(logged) % 2 else (logged[len(logged) // 2 - 1] + logged[len(logged) // 2]) / 2
    row(f"`firedrill execute` from main() to the first steady-state probe (its `first probe` log line), warm, "
        f"median of {len(logged)} (the runs above)", fmt_s(med / 1000), fmt_target(1.0), fmt_ratio(med / 1000, 1.0))
else:
    row("`firedrill execute` to its `first probe` log line", "not run", fmt_target(1.0), "—")

fp = text("fault-proxy.txt")
if fp:
    def line(name):
        m = re.search(rf"^{name}\s+(\d+)\s+(\S+)\s+(\S+)\s*$", fp, re.M)
        return m and (int(m[1]), m[2], m[3])

    def secs(d):
        m = re.fullmatch(r"([\d.]+)(ns|µs|us|ms|s)", d)
        return float(m[1]) * {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1}[m[2]]

    direct, proxied = line("direct"), line("proxied")
    if direct and proxied:
        row("`firedrill fault-proxy`, 20,000 GETs from 32 keep-alive clients: requests per second | the same "
            "upstream asked directly", f"{proxied[0]:,} req/s", f"{direct[0]:,} req/s",
            fmt_ratio(proxied[0], direct[0]))
        row("the same, p99 latency | direct", fmt_s(secs(proxied[2])), fmt_s(secs(direct[2])),
            fmt_ratio(secs(proxied[2]), secs(direct[2])))
else:
    row("`firedrill fault-proxy` throughput and p99 vs direct (cargo bench --bench fault_proxy)",
        skipped_criterion.replace("criterion", "the bench") if meta["compare_only"] else "not run", "—", "—")

mem = text("memory.txt")
if mem:
    for m in re.finditer(r"^\| (?!what |---)(.+?) \| (.+?) \| (.+?) \| (.+?) \| (.+?) \|$", mem, re.M):
        exit_ = "" if m[5] == "0" else f", exit {m[5]}"
        if "alias bomb" in m[1] and m[5] == "1":
            exit_ = ", exit 1 (refused, as it must be)"
        row(f"{m[1]}, {m[2]}: wall time, max RSS (scripts/bench-memory.sh)", f"{m[3]}, {m[4]}{exit_}", "—", "—")
else:
    row("peak memory on hostile and large inputs (scripts/bench-memory.sh)", "not run", "—", "—")

print("| measure | firedrill | baseline | ratio |")
print("|---|---|---|---|")
print("\n".join(rows))
print()
print("ratio = firedrill ÷ baseline (below 1: firedrill takes that share of the baseline's time; for a target, "
      "the share of the target used; for req/s, the share of the direct rate).")
print(f"Machine: {os.cpu_count()} CPUs, load average {open('/proc/loadavg').read().split()[0]} at the end; "
      f"binary {meta['bin']}.")
