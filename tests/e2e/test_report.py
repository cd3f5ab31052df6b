"""
`escalon report` end to end (SPEC.md "KPIs (`report`)" and the report line
of "Command line"): a scripted run of the real gateway on a 24x7 calendar
with targets of a few seconds, then the report over several windows as
JSON, CSV and the table.

The run (six webhook tickets):

    A1  billing, normal     answered at once, resolved with a cause
    A2  billing, normal     answered at once, left open
    B1  billing, normal     unanswered: first_response (4 s) breaches and
                            moves it to level 2; resolved with a cause
    B2  billing, normal     the same breach to level 2, then `escalon
                            escalate` to level 3 (escalated twice); open
    C1  incidents, critical (rule "x" on the subject) starts at level 2;
                            answered and resolved at once, with a cause
    C2  incidents, critical starts at level 2; left until its resolution
                            target (6 s) breaches, resolved without a cause

Expected, worked out by hand:

    tickets 6, escalated 4 (B1 B2 C1 C2), escalation_rate 4/6
    time_to_escalation: C1 0, C2 0, B1 ~4, B2 ~4 -> sorted 0 0 b b':
        median (rank 2) 0, p90 (rank 4) max(B1, B2) (from their events)
    post_escalation_resolution over B1 C1 C2 (exact from `show`)
    sla_compliance_post_escalation: B1 ok, C1 ok, C2 late -> 2/3
    root_cause_frequency: B1 yes, C1 yes, C2 none -> 2/3
    first_response_compliance: A1 A2 C1 in time, B1 B2 breached, C2 not
        answered and not breached (not counted) -> 3/5
    csat: nothing can be rated yet (no /csat endpoint): counts 0, means null
    by_queue billing 4, incidents 2; by_team tier1 2 (A1 A2), tier2 3
    (B1 C1 C2), managers 1 (B2); by_severity normal 4, critical 2;
    by_level 1: 2, 2: 3, 3: 1

Then: the same numbers for --since 1h; a --from/--to window of only the C
tickets; a window covering nothing (tickets 0, ratios null); --csv and the
table agreeing with --json; bad arguments exiting 1 with a message.

Also: a fresh installation reports an empty window; --since together with
--from/--to is refused; the default window includes a ticket created in
the same second; the window is stated in RFC 3339; a first response or a
resolution that came after its target while no gateway ran counts as late.
"""

import csv
import io
import json
import re
import time
from datetime import datetime, timezone

import pytest

from conftest import REPO, SECRET, wait_until, webhook_msg

SLACK = 2           # seconds an event may come after its due instant
WAIT = 25           # polling window for something that must happen

SPEC_KEYS = {"from", "to", "tickets", "escalated", "escalation_rate",
             "time_to_escalation", "post_escalation_resolution",
             "sla_compliance_post_escalation", "csat",
             "root_cause_frequency", "first_response_compliance",
             "by_queue", "by_team", "by_severity", "by_level"}
RATIOS = ("escalation_rate", "sla_compliance_post_escalation",
          "root_cause_frequency", "first_response_compliance")


def report_config(port):
    """Queues billing (the hook's) and incidents on SLA "fast" (first
    response 4 s, the rest 1 h); severity critical on SLA "urgent"
    (resolution 6 s, first response 1 h) starting at level 2; rule "x"
    routes outage/down subjects to incidents as critical; a three-level
    ladder (level 2 on a first_response breach, nothing automatic after)."""
    return f"""\
# escalon e2e: the KPI report
store = "var/escalon.db"
listen = "127.0.0.1:{port}"
base_url = "http://127.0.0.1:{port}"
secret_file = "var/secret"
api_token_file = "var/api-token"
control_socket = "var/escalon.sock"
templates = "{REPO / 'templates'}"
outbox {{ retry_first = "1s"  retry_max = "2s"  max_attempts = 50 }}

webhook "shop" {{ secret = '{SECRET}'  queue = "billing" }}

agent "alice" {{ email = "alice@example.test"  name = "Alice" }}
agent "bob"   {{ email = "bob@example.test"    name = "Bob" }}
agent "carol" {{ email = "carol@example.test"  name = "Carol" }}
agent "max"   {{ email = "max@example.test"    name = "Max" }}
team "tier1" {{ agents = {{"alice", "bob"}} }}
team "tier2" {{ agents = {{"carol"}} }}
team "managers" {{ agents = {{"max"}} }}

calendar "always" {{ timezone = "UTC"  hours = {{"mon-sun 00:00-24:00"}} }}
sla "fast" {{ calendar = "always"  first_response = "4s"  next_update = "1h"
             resolution = "1h"  warn_at = 50  customer_update = "1h" }}
sla "urgent" {{ calendar = "always"  first_response = "1h"
               next_update = "1h"  resolution = "6s"  warn_at = 50
               customer_update = "1h" }}

ladder "default" {{
  level 1 {{ team = "tier1" }}
  level 2 {{ team = "tier2"  after = "1h"  on_breach = {{"first_response"}} }}
  level 3 {{ team = "managers"  after = "1h" }}
}}

queue "billing"   {{ team = "tier1"  sla = "fast"  ladder = "default" }}
queue "incidents" {{ team = "tier1"  sla = "fast"  ladder = "default" }}

severity "critical" {{ sla = "urgent"  start_level = 2 }}

rule "x" {{
  match = {{"subject ~* outage|down"}}
  severity = "critical"  queue = "incidents"  tags = {{"outage"}}
}}
"""


# --- helpers ---------------------------------------------------------------

def ts(s):
    """RFC 3339 UTC -> Unix seconds."""
    assert s is not None, "no time"
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


def rfc(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def nearest_rank(values, p):
    """Nearest-rank percentile: the ceil(p/100 * n)-th smallest."""
    v = sorted(values)
    rank = max(1, -(-p * len(v) // 100))
    return v[rank - 1]


def new_ticket(gw, mid, **extra):
    r = gw.post("shop", webhook_msg(mid, **extra))
    assert r.status == 202, "webhook %s: %r" % (mid, r)
    return r.json["ticket"]


def events(show, *types):
    return [e for e in show["events"] if not types or e["type"] in types]


def wait_show(gw, tid, pred, what, timeout=WAIT):
    last = {}

    def poll():
        last["show"] = gw.show(tid)
        return last["show"] if pred(last["show"]) else None

    def why():
        s = last.get("show") or {}
        return "%s on ESC-%s; level %r, events %r" % (
            what, tid, s.get("level"),
            [(e["type"], e["at"], e["detail"]) for e in s.get("events", [])])
    return wait_until(poll, timeout, why, interval=0.25)


def report(gw, *args):
    r = gw.json("report", *args, "--json")
    assert isinstance(r, dict), r
    return r


def assert_ratio(r, key, want):
    got = r[key]
    if want is None:
        assert got is None, "%s: want null, got %r" % (key, got)
    else:
        assert isinstance(got, (int, float)) and not isinstance(got, bool), \
            "%s: want %r, got %r" % (key, want, got)
        assert abs(got - want) < 1e-5, "%s: want %r, got %r" % (key, want,
                                                                got)


def assert_shape(r):
    assert set(r) == SPEC_KEYS, "report keys %r, SPEC.md lists %r" % (
        sorted(r), sorted(SPEC_KEYS))
    for k in ("time_to_escalation", "post_escalation_resolution"):
        assert isinstance(r[k], dict) and \
            {"median_s", "p90_s"} <= set(r[k]), (k, r[k])
    assert set(r["csat"]) == {"escalated", "other"}, r["csat"]
    for k in ("escalated", "other"):
        assert set(r["csat"][k]) == {"mean", "count"}, r["csat"]
    for k in ("by_queue", "by_team", "by_severity", "by_level"):
        assert isinstance(r[k], dict), (k, r[k])
        assert all(isinstance(v, int) for v in r[k].values()), (k, r[k])
        assert sum(r[k].values()) == r["tickets"], (k, r[k], r["tickets"])
    assert isinstance(r["tickets"], int) and isinstance(r["escalated"], int)
    for k in ("from", "to"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", r[k]), (k, r[k])


def assert_empty(r):
    """A window with no ticket: counts 0, every ratio and mean null."""
    assert_shape(r)
    assert (r["tickets"], r["escalated"]) == (0, 0), r
    for k in RATIOS:
        assert_ratio(r, k, None)
    for k in ("time_to_escalation", "post_escalation_resolution"):
        assert r[k]["median_s"] is None and r[k]["p90_s"] is None, (k, r[k])
    for k in ("escalated", "other"):
        assert r["csat"][k]["mean"] is None and \
            r["csat"][k]["count"] == 0, r["csat"]
    for k in ("by_queue", "by_team", "by_severity", "by_level"):
        assert r[k] == {}, (k, r[k])


def parse_csv(text):
    """`report --csv` -> {metric: value} (values as printed)."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows and rows[0] == ["metric", "value"], \
        "CSV header %r, want metric,value:\n%s" % (rows[:1], text)
    out = {}
    for row in rows[1:]:
        assert len(row) == 2, "CSV row %r is not metric,value" % (row,)
        assert row[0] not in out, "metric %r twice" % row[0]
        out[row[0]] = row[1]
    return out


def flatten(obj, prefix=""):
    """The JSON report as dotted metric -> value."""
    out = {}
    for k, v in obj.items():
        name = prefix + "." + k if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, name))
        else:
            out[name] = v
    return out


def assert_csv_matches(csv_text, r):
    """Every number of the JSON report is in the CSV, with the same value;
    null as an empty cell."""
    got = parse_csv(csv_text)
    want = flatten(r)
    for k in ("tickets", "escalated", "escalation_rate",
              "time_to_escalation.median_s", "time_to_escalation.p90_s",
              "post_escalation_resolution.median_s",
              "post_escalation_resolution.p90_s",
              "sla_compliance_post_escalation", "root_cause_frequency",
              "first_response_compliance", "csat.escalated.mean",
              "csat.escalated.count", "csat.other.mean", "csat.other.count"):
        assert k in got, "CSV has no metric %r:\n%s" % (k, csv_text)
    for k, v in want.items():
        if k in ("from", "to"):
            continue
        assert k in got, "CSV has no metric %r (JSON %r):\n%s" % (
            k, v, csv_text)
        if v is None:
            assert got[k] == "", "%s: JSON null, CSV %r" % (k, got[k])
        elif isinstance(v, int):
            assert got[k] == str(v), "%s: JSON %r, CSV %r" % (k, v, got[k])
        else:
            assert got[k] != "" and abs(float(got[k]) - v) < 1e-3, \
                "%s: JSON %r, CSV %r" % (k, v, got[k])


# --- the scripted run ------------------------------------------------------

@pytest.fixture
def run(make_gateway):
    """The run of the module docstring. Returns (gw, info) where info holds
    each ticket's id, created_at, first escalation and resolved_at."""
    gw = make_gateway()
    gw.write_config(report_config(gw.port))
    gw.start()

    t = {}
    t["A1"] = new_ticket(gw, "a1", customer="c-a1")
    t["A2"] = new_ticket(gw, "a2", customer="c-a2")
    t["B1"] = new_ticket(gw, "b1", customer="c-b1")
    t["B2"] = new_ticket(gw, "b2", customer="c-b2")
    gw.ok("reply", t["A1"], "--as", "alice", "Looking", "into", "it")
    gw.ok("reply", t["A2"], "--as", "bob", "On", "it")
    # C tickets at least two seconds after the others (a window of their
    # own below)
    time.sleep(2.2)
    t["C1"] = new_ticket(gw, "c1", subject="Checkout is DOWN",
                         customer="c-c1")
    t["C2"] = new_ticket(gw, "c2", subject="Payment outage",
                         customer="c-c2")
    gw.ok("reply", t["C1"], "--as", "carol", "We", "are", "on", "it")
    gw.ok("resolve", t["C1"], "bad", "deploy", "rolled", "back")
    gw.ok("resolve", t["A1"], "wrong", "tax", "rate")

    for k in ("C1", "C2"):
        s = gw.show(t[k])
        assert (s["queue"], s["severity"], s["level"], s["team"]) == \
            ("incidents", "critical", 2, "tier2"), (k, s)

    # B1, B2: first_response breaches at +4 s and moves them to level 2
    for k in ("B1", "B2"):
        wait_show(gw, t[k], lambda s: events(s, "escalated"),
                  "no escalation by first_response breach")
    gw.ok("resolve", t["B1"], "payment", "provider", "timeout")
    gw.ok("escalate", t["B2"], "customer", "is", "a", "bank")
    # C2: its resolution target (6 s) breaches; then resolved, no cause
    wait_show(gw, t["C2"], lambda s: any(
        e["detail"].get("clock") == "resolution"
        for e in events(s, "sla_breached")), "no resolution breach")
    gw.ok("resolve", t["C2"])

    info = {}
    for k, tid in t.items():
        s = gw.show(tid)
        esc = events(s, "escalated")
        info[k] = {"id": tid, "show": s,
                   "created": ts(s["created_at"]),
                   "esc": ts(esc[0]["at"]) if esc else None,
                   "resolved": ts(s["resolved_at"]) if s.get("resolved_at")
                   else None}
    # where the run left them
    want = {"A1": ("resolved", 1, "tier1"), "A2": ("open", 1, "tier1"),
            "B1": ("resolved", 2, "tier2"), "B2": ("open", 3, "managers"),
            "C1": ("resolved", 2, "tier2"), "C2": ("resolved", 2, "tier2")}
    for k, (state, level, team) in want.items():
        s = info[k]["show"]
        assert (s["state"], s["level"], s["team"]) == (state, level, team), \
            (k, s["state"], s["level"], s["team"])
    assert len(events(info["B2"]["show"], "escalated")) == 2
    for k in ("B1", "B2"):
        tte = info[k]["esc"] - info[k]["created"]
        assert 4 <= tte <= 4 + SLACK, (k, tte)
    for k in ("C1", "C2"):
        assert info[k]["esc"] == info[k]["created"], (k, info[k])
    return gw, info


def check_full(r, info):
    """The numbers of the module docstring over all six tickets."""
    assert_shape(r)
    assert r["tickets"] == 6, r
    assert r["escalated"] == 4, r
    assert_ratio(r, "escalation_rate", 4 / 6)

    tte = [info[k]["esc"] - info[k]["created"]
           for k in ("B1", "B2", "C1", "C2")]
    assert sorted(tte)[:2] == [0, 0], tte
    d = r["time_to_escalation"]
    assert d["median_s"] == nearest_rank(tte, 50) == 0, (d, tte)
    assert d["p90_s"] == nearest_rank(tte, 90) == max(tte), (d, tte)
    assert 4 <= d["p90_s"] <= 4 + SLACK, d

    post = [info[k]["resolved"] - info[k]["esc"] for k in ("B1", "C1", "C2")]
    d = r["post_escalation_resolution"]
    assert d["median_s"] == nearest_rank(post, 50), (d, post)
    assert d["p90_s"] == nearest_rank(post, 90) == max(post), (d, post)
    # C2 waited for its 6 s resolution target: the longest
    c2 = info["C2"]["resolved"] - info["C2"]["esc"]
    assert 6 <= c2 <= 6 + 2 * SLACK + 2 and d["p90_s"] == c2, (d, post)

    assert_ratio(r, "sla_compliance_post_escalation", 2 / 3)
    assert_ratio(r, "root_cause_frequency", 2 / 3)
    assert_ratio(r, "first_response_compliance", 3 / 5)
    assert r["csat"] == {"escalated": {"mean": None, "count": 0},
                         "other": {"mean": None, "count": 0}}, r["csat"]
    assert r["by_queue"] == {"billing": 4, "incidents": 2}, r["by_queue"]
    assert r["by_team"] == {"tier1": 2, "tier2": 3, "managers": 1}, \
        r["by_team"]
    assert r["by_severity"] == {"normal": 4, "critical": 2}, \
        r["by_severity"]
    assert r["by_level"] == {"1": 2, "2": 3, "3": 1}, r["by_level"]


def test_report_after_a_scripted_run(run):
    gw, info = run

    # default window: the last 30 days, up to now
    before = int(time.time())
    r = report(gw)
    after = int(time.time())
    check_full(r, info)
    assert before <= ts(r["to"]) <= after, r["to"]
    assert ts(r["to"]) - ts(r["from"]) == 30 * 86400, (r["from"], r["to"])

    # --since 1h: the same tickets, the same numbers
    r1 = report(gw, "--since", "1h")
    check_full(r1, info)
    assert ts(r1["to"]) - ts(r1["from"]) == 3600, (r1["from"], r1["to"])
    r90 = report(gw, "--since", "90m")
    assert ts(r90["to"]) - ts(r90["from"]) == 5400, r90
    assert r90["tickets"] == 6, r90

    # a window of the C tickets only (from is inclusive: C1 was created at
    # that very second)
    c1 = info["C1"]["created"]
    assert c1 >= max(info[k]["created"] for k in ("A1", "A2", "B1", "B2")) \
        + 2, info
    end = int(time.time()) + 3600
    rc = report(gw, "--from", rfc(c1), "--to", rfc(end))
    assert_shape(rc)
    assert (rc["from"], rc["to"]) == (rfc(c1), rfc(end)), rc
    # C1, C2: both escalated at creation, resolved; C2 late, no cause;
    # C1 answered in time, C2 neither answered nor breached
    assert (rc["tickets"], rc["escalated"]) == (2, 2), rc
    assert_ratio(rc, "escalation_rate", 1.0)
    assert rc["time_to_escalation"]["median_s"] == 0 and \
        rc["time_to_escalation"]["p90_s"] == 0, rc["time_to_escalation"]
    post = sorted(info[k]["resolved"] - info[k]["esc"] for k in ("C1", "C2"))
    assert rc["post_escalation_resolution"]["median_s"] == post[0], \
        (rc["post_escalation_resolution"], post)
    assert rc["post_escalation_resolution"]["p90_s"] == post[1], \
        (rc["post_escalation_resolution"], post)
    assert_ratio(rc, "sla_compliance_post_escalation", 0.5)
    assert_ratio(rc, "root_cause_frequency", 0.5)
    assert_ratio(rc, "first_response_compliance", 1.0)
    assert rc["by_queue"] == {"incidents": 2}, rc["by_queue"]
    assert rc["by_severity"] == {"critical": 2}, rc["by_severity"]
    assert rc["by_level"] == {"2": 2}, rc["by_level"]
    assert rc["by_team"] == {"tier2": 2}, rc["by_team"]

    # a window of the A and B tickets only (ending a second after B2, a
    # second or more before C1): never escalated A1 A2, escalated B1 B2
    b_end = max(info[k]["created"] for k in ("A1", "A2", "B1", "B2")) + 1
    a0 = min(info[k]["created"] for k in ("A1", "A2", "B1", "B2"))
    rab = report(gw, "--from", rfc(a0), "--to", rfc(b_end))
    assert (rab["tickets"], rab["escalated"]) == (4, 2), rab
    assert_ratio(rab, "escalation_rate", 0.5)
    # B1 resolved in target with a cause; B2 still open
    assert_ratio(rab, "sla_compliance_post_escalation", 1.0)
    assert_ratio(rab, "root_cause_frequency", 1.0)
    # A1 A2 in time, B1 B2 breached
    assert_ratio(rab, "first_response_compliance", 0.5)
    assert rab["by_level"] == {"1": 2, "2": 1, "3": 1}, rab["by_level"]
    assert rab["by_team"] == {"tier1": 2, "tier2": 1, "managers": 1}, \
        rab["by_team"]
    b_tte = sorted(info[k]["esc"] - info[k]["created"] for k in ("B1", "B2"))
    assert rab["time_to_escalation"]["median_s"] == b_tte[0], \
        (rab["time_to_escalation"], b_tte)
    assert rab["time_to_escalation"]["p90_s"] == b_tte[1], \
        (rab["time_to_escalation"], b_tte)

    # a window covering nothing: tickets 0, every ratio null
    r0 = report(gw, "--from", "2020-01-01T00:00:00Z",
                "--to", "2020-01-02T00:00:00Z")
    assert_empty(r0)
    assert (r0["from"], r0["to"]) == ("2020-01-01T00:00:00Z",
                                      "2020-01-02T00:00:00Z"), r0
    # an offset is accepted and reported in UTC
    r0 = report(gw, "--from", "2020-01-01T01:00:00+01:00",
                "--to", "2020-01-02T00:00:00Z")
    assert r0["from"] == "2020-01-01T00:00:00Z" and r0["tickets"] == 0, r0

    # --csv: header metric,value and the same numbers as --json
    win = ("--from", rfc(a0), "--to", rfc(end))
    rj = report(gw, *win)
    check_full(rj, info)
    p = gw.ok("report", *win, "--csv")
    assert_csv_matches(p.stdout, rj)
    rows = parse_csv(p.stdout)
    assert rows["tickets"] == "6" and rows["escalated"] == "4", rows
    assert rows["by_queue.billing"] == "4", rows
    assert rows["by_level.3"] == "1", rows
    assert rows["csat.escalated.count"] == "0" and \
        rows["csat.escalated.mean"] == "", rows
    assert abs(float(rows["first_response_compliance"]) - 0.6) < 1e-3, rows
    # the empty window's CSV: zeros and empty cells
    p = gw.ok("report", "--from", "2020-01-01T00:00:00Z",
              "--to", "2020-01-02T00:00:00Z", "--csv")
    rows = parse_csv(p.stdout)
    assert rows["tickets"] == "0", rows
    for k in RATIOS:
        assert rows[k] == "", (k, rows)

    # the table: a human report that gives the ticket count
    p = gw.ok("report", *win)
    assert p.stdout.strip(), "report printed nothing"
    with pytest.raises(ValueError):
        json.loads(p.stdout)
    assert re.search(r"(?mi)^\s*tickets\b\D*\b6\b", p.stdout), p.stdout
    assert re.search(r"(?mi)^\s*escalated\b\D*\b4\b", p.stdout), p.stdout
    p = gw.ok("report", "--from", "2020-01-01T00:00:00Z",
              "--to", "2020-01-02T00:00:00Z")
    assert re.search(r"(?mi)^\s*tickets\b\D*\b0\b", p.stdout), p.stdout

    # the report reads the store: the same with the gateway stopped
    assert gw.stop() == 0
    check_full(report(gw, *win), info)


def test_report_with_nothing_yet(make_gateway):
    """A fresh installation (no store yet, no gateway): an empty report,
    not an error."""
    gw = make_gateway()
    gw.write_config(report_config(gw.port))
    assert_empty(report(gw))
    p = gw.ok("report", "--csv")
    assert parse_csv(p.stdout)["tickets"] == "0", p.stdout


@pytest.mark.parametrize("args, says", [
    (["--since", "xyz"], "xyz"),
    (["--since", "0"], "0"),
    (["--since", "-1h"], "-1h"),
    (["--since"], "--since"),
    (["--from", "garbage", "--to", "2026-01-01T00:00:00Z"], "garbage"),
    (["--from", "2026-01-01T00:00:00Z", "--to", "yesterday"], "yesterday"),
    (["--from", "2026-13-45T00:00:00Z", "--to", "2027-01-01T00:00:00Z"],
     "2026-13-45"),
    (["--json", "--csv"], "--csv"),
    (["--to", "2026-01-01T00:00:00Z"], "--from"),
    (["--from", "2026-02-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"],
     "--from"),
    (["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"],
     "--from"),
    (["--bogus"], "--bogus"),
    (["42"], "42"),
])
def test_report_bad_arguments(make_gateway, args, says):
    """Exit 1, nothing on stdout, a message on stderr naming the fault."""
    gw = make_gateway()
    gw.write_config(report_config(gw.port))
    p = gw.cli("report", *args)
    assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", (args, p.stdout)
    assert p.stderr.strip(), (args, "no message")
    assert says in p.stderr, (args, p.stderr)


@pytest.mark.parametrize("args", [
    ["--since", "1h", "--from", "2026-01-01T00:00:00Z",
     "--to", "2026-01-02T00:00:00Z"],
    ["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z",
     "--since", "1h"],
])
def test_report_since_and_from_are_alternatives(make_gateway, args):
    """SPEC.md: `report [--since DUR|--from T --to T]`: one or the other.
    Given both, which window was meant is unknown: bad input (exit 1)
    rather than silently dropping one of them."""
    gw = make_gateway()
    gw.write_config(report_config(gw.port))
    p = gw.cli("report", "--json", *args)
    assert p.returncode == 1, \
        "report %s exited %d and printed a window %s .. %s; want exit 1 " \
        "(--since and --from/--to are alternatives)" % (
            " ".join(args), p.returncode,
            *(lambda j: (j.get("from"), j.get("to")))(
                json.loads(p.stdout) if p.returncode == 0 else {}))
    assert "--since" in p.stderr, p.stderr


def test_report_includes_a_ticket_created_this_second(make_gateway):
    """The default window ends now: a ticket created a moment ago is in
    it, however close to the report it came."""
    gw = make_gateway()
    gw.write_config(report_config(gw.port))
    gw.start()
    misses = []
    for i in range(3):
        new_ticket(gw, "now-%d" % i, customer="c-now-%d" % i)
        r = report(gw)
        if r["tickets"] != i + 1:
            misses.append((i + 1, r["tickets"], r["to"]))
        r = report(gw, "--since", "1h")
        if r["tickets"] != i + 1:
            misses.append((i + 1, r["tickets"], r["to"]))
    assert not misses, \
        "report right after a ticket was created missed it (want, got, " \
        "to): %r" % misses


@pytest.mark.parametrize("args", [
    ["--since", "99999999999d"],
    ["--from", "0001-01-01T00:00:00Z", "--to", "2020-01-01T00:00:00Z"],
])
def test_report_window_is_rfc3339(make_gateway, args):
    """The window a report states is RFC 3339 (SPEC.md "TIME is RFC
    3339"), whatever was asked; a window that cannot be stated so is
    refused as bad input (exit 1) instead."""
    gw = make_gateway()
    gw.write_config(report_config(gw.port))
    p = gw.cli("report", "--json", *args)
    if p.returncode == 1:
        assert p.stderr.strip(), "exit 1 without a message"
        return
    assert p.returncode == 0, (p.returncode, p.stderr)
    r = json.loads(p.stdout)
    for k in ("from", "to"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", r[k]), \
            "report %s: %s is %r, not RFC 3339" % (" ".join(args), k, r[k])


def test_report_counts_late_answers_as_late_when_no_gateway_ran(
        make_gateway):
    """SPEC.md: SLA compliance post-escalation is "escalated tickets
    resolved within their resolution target"; first-response compliance
    likewise counts a ticket answered after its first_response target as
    breached. Acts run with no gateway running ("they open the store and
    run the same code"), so a target can pass while no scheduler fires its
    breach: the report must still count such a ticket as late.

    B: billing (first_response 4 s), answered 8 s after creation;
    C: critical (resolution 6 s), resolved 8 s after creation; both while
    the gateway is stopped."""
    gw = make_gateway()
    gw.write_config(report_config(gw.port))
    gw.start()
    b = new_ticket(gw, "late-b", customer="c-b")
    c = new_ticket(gw, "late-c", subject="Site is down", customer="c-c")
    assert gw.stop() == 0
    created = ts(gw.show(c)["created_at"])
    time.sleep(max(0, created + 8 - time.time()))
    gw.ok("reply", b, "--as", "alice", "Sorry", "for", "the", "wait")
    gw.ok("resolve", c, "cache", "stampede")
    sb, sc = gw.show(b), gw.show(c)
    assert ts(sb["first_response_at"]) - ts(sb["created_at"]) > 4, sb
    assert ts(sc["resolved_at"]) - ts(sc["created_at"]) > 6, sc
    r = report(gw)
    # B's first_response breach is recorded when the reply is made, and it
    # steps B up its ladder (on_breach), as a running gateway would have.
    assert (r["tickets"], r["escalated"]) == (2, 2), r
    assert [e["type"] for e in sb["events"]].count("sla_breached") == 1, sb
    late = []
    # C: escalated (start level), resolved after its 6 s target: 0/1
    if r["sla_compliance_post_escalation"] != 0:
        late.append("sla_compliance_post_escalation %r, want 0 (ESC-%s "
                    "resolved %ds after creation, target 6 s; events %r)" % (
                        r["sla_compliance_post_escalation"], c,
                        ts(sc["resolved_at"]) - ts(sc["created_at"]),
                        [e["type"] for e in sc["events"]]))
    # B answered after 4 s: breached; C not answered, target 1 h: not
    # counted -> 0/1
    if r["first_response_compliance"] != 0:
        late.append("first_response_compliance %r, want 0 (ESC-%s answered "
                    "%ds after creation, target 4 s; events %r)" % (
                        r["first_response_compliance"], b,
                        ts(sb["first_response_at"]) - ts(sb["created_at"]),
                        [e["type"] for e in sb["events"]]))
    assert not late, "; ".join(late)
