"""
What the benchmarks share: read-only looks into a gateway's store, the
/proc figures of the gateway and its channel children, percentiles, and
the rows each benchmark hands to tests/bench/run.py.

A row is one figure: {"name", "value", "unit", "target", "note"}. target
is a string "OP NUMBER" with OP one of >=, >, <=, <, = (e.g. ">= 2000",
"< 50"), or None when the issues set none; note says in a few words how
it was measured. `--json FILE` in each benchmark writes its rows there as a
JSON list; value None means the figure could not be measured (the note
says why).
"""

import json
import os
import sqlite3
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))


def query(db, sql, args=(), default=0):
    """The first column of the first row of sql on the store at db, opened
    read-only (the gateway stays the only writer); default when the store
    is not there yet or is busy."""
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            row = c.execute(sql, args).fetchone()
            return default if row is None or row[0] is None else row[0]
        finally:
            c.close()
    except sqlite3.Error:
        return default


def pct(sorted_vals, p):
    """The p-th percentile (nearest rank) of an ascending list; None when
    it is empty."""
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1,
            int(round(p / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


class Rows:
    """The figures one benchmark measured, in the order it measured them."""

    def __init__(self):
        self.rows = []

    def add(self, name, value, unit, target=None, note=""):
        if isinstance(value, float):
            value = round(value, 3)
        self.rows.append({"name": name, "value": value, "unit": unit,
                          "target": target, "note": note})

    def write(self, path):
        """Write the rows as a JSON list to path (nothing when path is
        None)."""
        if path:
            with open(path, "w") as f:
                json.dump(self.rows, f, indent=1)
                f.write("\n")


# -- /proc -----------------------------------------------------------------

def _stat(pid):
    """(ppid, CPU seconds user + system) of pid; (None, 0.0) when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return None, 0.0


def children(pid):
    """The processes whose parent is pid: [(pid, cmdline as a str)]."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and _stat(int(d))[0] == pid:
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            out.append((int(d), cmd))
    return sorted(out)


def cpu_seconds(pid):
    """(core, children) CPU seconds, user + system, of the gateway pid and
    of its channel children."""
    return _stat(pid)[1], sum(_stat(c)[1] for c, _ in children(pid))


def memory_kib(pid):
    """{"VmRSS", "VmHWM", "RssAnon", "RssFile", "Pss", "Private"} of pid in
    KiB, from /proc/PID/status and smaps_rollup. RssFile counts mapped
    files, the shared libraries too, which the core and its children
    share; Private (USS) is what the process alone holds."""
    out = {}
    for name, keys in (("status", ("VmRSS", "VmHWM", "RssAnon", "RssFile")),
                       ("smaps_rollup", ("Pss", "Private_Clean",
                                         "Private_Dirty"))):
        try:
            with open("/proc/%d/%s" % (pid, name)) as f:
                for ln in f:
                    k, _, v = ln.partition(":")
                    if k in keys:
                        out[k] = int(v.split()[0])
        except OSError:
            pass
    if "Private_Clean" in out and "Private_Dirty" in out:
        out["Private"] = out.pop("Private_Clean") + out.pop("Private_Dirty")
    return out
