#!/usr/bin/python3
"""
`make bench`: every benchmark in turn, then one table of their figures.

    /usr/bin/python3 tests/bench/run.py [--escalon BIN] [--sched BIN]
        [--tickets N] [--out FILE] [--only NAME,...] [--quick]

Runs, each with --json into a temp file (their own output shows as they
go): webhook_bench.py, imap_bench.py (SMTP sink live, then --no-smtp),
chat_bench.py, bench_sched (N open tickets, default 1,000,000) and
rss_bench.py (N tickets). Then prints one table, name | value | unit |
target | met?, and writes it to FILE (default bench/results.json) as
{"date", "git_revision", "nproc", "kernel", "cpu_model", "escalon",
"wall_seconds", "benches": [{name, command, exit, seconds}], "rows":
[{name, value, unit, target, note, met}]}.

met is "yes" or "no" where a target is set ("-" where none is); a figure
that could not be measured does not meet its target, and a benchmark that
failed is a row of its own (its exit code, target "= 0"). The exit status
is 1 when a benchmark failed, 0 otherwise (unmet targets included: the
table says so). --quick runs every benchmark at small sizes, to try the
harness.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from benchlib import REPO

HERE = REPO / "tests" / "bench"
PY = "/usr/bin/python3"
OPS = {">=": float.__ge__, "<=": float.__le__, ">": float.__gt__,
       "<": float.__lt__, "=": float.__eq__}


def benches(args):
    """[(name, argv, extra environment)] in the order they run."""
    esc, n = args.escalon, args.tickets
    quick = args.quick
    return [
        ("webhook", [PY, str(HERE / "webhook_bench.py"), esc] +
         (["--requests", "20000", "--duration", "3", "--loop-seconds", "2"]
          if quick else []), {}),
        ("imap", [PY, str(HERE / "imap_bench.py"), esc] +
         (["--mails", "1000", "--latency", "100"] if quick else []), {}),
        ("imap-no-smtp", [PY, str(HERE / "imap_bench.py"), esc, "--no-smtp",
                          "--latency", "0", "--raw-idle", "0", "--push", "0"] +
         (["--mails", "1000"] if quick else []), {}),
        ("chat", [PY, str(HERE / "chat_bench.py"), esc] +
         (["--messages", "50", "--latency", "20"] if quick else []), {}),
        ("sched", [args.sched, str(n)], {"ESCALON_BIN": esc}),
        ("rss", [PY, str(HERE / "rss_bench.py"), esc, "--tickets", str(n)] +
         (["--mails", "500", "--chunk", "10000"] if quick else []), {}),
    ]


def met(row):
    t = row.get("target")
    if t is None:
        return "-"
    op, _, num = t.partition(" ")
    v = row.get("value")
    if v is None or op not in OPS:
        return "no"
    return "yes" if OPS[op](float(v), float(num)) else "no"


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, int) or abs(v) >= 100:
        return "{:,.0f}".format(v)
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3g" % v


def run_one(name, argv, env, tmp, rows):
    """Run one benchmark; append its rows (or a failure row) to rows.
    Returns its record for results.json."""
    out = os.path.join(tmp, name + ".json")
    if name == "sched":
        argv = argv[:1] + ["--json", out] + argv[1:]
    else:
        argv = argv + ["--json", out]
    print("\n== %s: %s" % (name, " ".join(argv)), flush=True)
    t0 = time.monotonic()
    try:
        code = subprocess.run(argv, env=dict(os.environ, **env),
                              cwd=REPO, stdin=subprocess.DEVNULL,
                              timeout=4 * 3600).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    secs = time.monotonic() - t0
    got = []
    try:
        with open(out) as f:
            got = json.load(f)
    except (OSError, ValueError):
        pass
    rows.extend(got)
    if code != 0 or not got:
        rows.append({"name": "%s benchmark ran" % name,
                     "value": code if isinstance(code, int) else None,
                     "unit": "exit code", "target": "= 0",
                     "note": "%s; %d rows written" % (
                         "timed out" if code == "timeout" else
                         "exit %s" % code, len(got))})
    print("== %s: exit %s after %.0f s" % (name, code, secs), flush=True)
    return {"name": name, "command": argv, "exit": code,
            "seconds": round(secs, 1)}


def machine():
    def text(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  cwd=REPO, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
    rev = text(["git", "rev-parse", "HEAD"])
    if rev and text(["git", "status", "--porcelain", "--untracked-files=no"]):
        rev += " (with uncommitted changes)"
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": datetime.datetime.now(datetime.timezone.utc)
            .replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "git_revision": rev, "nproc": len(os.sched_getaffinity(0)),
            "kernel": platform.release(), "cpu_model": cpu}


def table(rows):
    head = ("name", "value", "unit", "target", "met?")
    cells = [(r["name"], fmt(r["value"]), r["unit"], r["target"] or "-",
              r["met"]) for r in rows]
    w = [max(len(c[i]) for c in cells + [head]) for i in range(5)]
    line = "  ".join("%-*s" for _ in w)
    print(line % sum(zip(w, head), ()))
    print("  ".join("-" * x for x in w))
    for c in cells:
        print(line % sum(zip(w, c), ()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--escalon", default=str(REPO / "escalon"))
    ap.add_argument("--sched", default=str(REPO / "build" / "bench_sched"))
    ap.add_argument("--tickets", type=int,
                    help="open tickets for bench_sched and rss_bench "
                    "(default 1,000,000; 20,000 with --quick)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    ap.add_argument("--only", help="comma-separated benchmark names")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, to try the harness")
    args = ap.parse_args()
    if args.tickets is None:
        args.tickets = 20_000 if args.quick else 1_000_000
    args.escalon = os.path.abspath(args.escalon)
    args.sched = os.path.abspath(args.sched)
    for b in (args.escalon, args.sched):
        if not os.access(b, os.X_OK):
            sys.exit("run.py: no executable %s (make all build/bench_sched)"
                     % b)
    todo = benches(args)
    if args.only:
        names = args.only.split(",")
        todo = [b for b in todo if b[0] in names]

    rows, records = [], []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="escalon-bench-run-") as tmp:
        for name, argv, env in todo:
            records.append(run_one(name, argv, env, tmp, rows))
    for r in rows:
        r["met"] = met(r)
    result = dict(machine(), escalon=args.escalon,
                  wall_seconds=round(time.monotonic() - t0),
                  benches=records, rows=rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")

    print("\n== escalon benchmarks, %s, %s, %d CPUs (%s), kernel %s"
          % (result["date"], result["git_revision"], result["nproc"],
             result["cpu_model"], result["kernel"]))
    table(rows)
    targets = [r for r in rows if r["met"] != "-"]
    print("\n%d of %d targets met; %d s in all; JSON in %s"
          % (sum(r["met"] == "yes" for r in targets), len(targets),
             result["wall_seconds"], args.out))
    return 1 if any(b["exit"] != 0 for b in records) else 0


if __name__ == "__main__":
    sys.exit(main())
