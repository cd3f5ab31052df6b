"""
The read-only HTTP endpoints end to end (SPEC.md "HTTP": /api, /metrics,
/healthz; "KPIs" for /api/report; "Command line" for the --json documents
the API must repeat): the real gateway on a 24x7 calendar with a
first_response target of a few seconds, driven by webhooks and the CLI,
and read back over HTTP and with the CLI.

The scripted run (one gateway for the module, so the file stays fast):

    P1  billing, normal    thread "order-1": answered at once (`reply`),
                           then a customer follow-up on the same thread
    P2  billing, normal    answered and resolved at once
    S1  billing, normal    unanswered: first_response (4 s, warn at 50 %)
                           warns, breaches and moves it to level 2
    C1  incidents,         rule "outage" on the subject: critical, starts
        critical           at level 2; an internal note
    plus a repeated webhook id (a duplicate) and a badly signed post
    (refused), neither of which may count.

No reply_url and no notify or smtp section: nothing is queued, so the
outbox is quiet (0 pending, 0 dead) once the run is over. A second, small
gateway holds one delivery in flight and lets another go dead to see
non-zero outbox gauges.

1. the API token: missing, wrong, same length but wrong, Bearer,
   lower-case bearer, Basic (any user, the password exactly the token), a
   custom token file; a refused request leaks nothing
2. /api/tickets == `tickets --json`, with and without filters; bad state
3. /api/tickets/ID == `show --json` (clocks' elapsed_s aside) for N,
   ESC-N; unknown 404, bad id 400
4. /api/report == `report --json` for explicit windows; since; bad
   windows and what the CLI refuses 400
5. /metrics agrees with the store; Prometheus text is well formed, each
   family in one group
6. /metrics outbox gauges with a delivery in flight and a dead one
7. /healthz; unknown paths and methods 404; a non-loopback listen needs
   the token for /metrics and /healthz too
"""

import base64
import http.client
import json
import os
import re
import stat
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest

from conftest import (REPO, SECRET, Gateway, Response, check_sanitizer,
                      sanitized, wait_until, webhook_msg)

WAIT = 25           # polling window for something that must happen
FIRST_RESPONSE = 4  # seconds: S1's first_response target


def api_config(port):
    """Queues billing (the hook's) and incidents on SLA "fast" (first
    response 4 s, warn at 50 %, the rest 1 h); severity critical on SLA
    "urgent" (15 min, 1 h, 8 h) starting at level 2; rule "outage" routes
    outage/down subjects to incidents as critical; a two-level ladder
    (level 2 on a first_response breach, or after 1 h). No notify, no
    smtp: nothing is ever queued for delivery."""
    return f"""\
# escalon e2e: the read-only HTTP API
store = "var/escalon.db"
listen = "127.0.0.1:{port}"
base_url = "http://127.0.0.1:{port}"
secret_file = "var/secret"
api_token_file = "var/api-token"
control_socket = "var/escalon.sock"
templates = "{REPO / 'templates'}"

webhook "shop" {{ secret = '{SECRET}'  queue = "billing" }}

agent "alice" {{ email = "alice@example.test"  name = "Alice" }}
agent "bob"   {{ email = "bob@example.test"    name = "Bob" }}
agent "carol" {{ email = "carol@example.test"  name = "Carol" }}
team "tier1" {{ agents = {{"alice", "bob"}} }}
team "tier2" {{ agents = {{"carol"}} }}

calendar "always" {{ timezone = "UTC"  hours = {{"mon-sun 00:00-24:00"}} }}
sla "fast" {{ calendar = "always"  first_response = "{FIRST_RESPONSE}s"
             next_update = "1h"  resolution = "1h"  warn_at = 50
             customer_update = "1h" }}
sla "urgent" {{ calendar = "always"  first_response = "15m"
               next_update = "1h"  resolution = "8h"  warn_at = 50
               customer_update = "1h" }}

ladder "default" {{
  level 1 {{ team = "tier1" }}
  level 2 {{ team = "tier2"  after = "1h"  on_breach = {{"first_response"}} }}
}}

queue "billing"   {{ team = "tier1"  sla = "fast"  ladder = "default" }}
queue "incidents" {{ team = "tier1"  sla = "fast"  ladder = "default" }}

severity "critical" {{ sla = "urgent"  start_level = 2 }}

rule "outage" {{
  match = {{"subject ~* outage|down"}}
  severity = "critical"  queue = "incidents"  tags = {{"outage"}}
}}
"""


# --- helpers ---------------------------------------------------------------

def request(port, path, headers=None, method="GET", body=None, timeout=15):
    """One HTTP request on its own connection; a conftest Response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.read(), dict(r.getheaders()))
    finally:
        conn.close()


def header(resp, name):
    for k, v in resp.headers.items():
        if k.lower() == name.lower():
            return v
    return None


def bearer(token, scheme="Bearer"):
    return {"Authorization": "%s %s" % (scheme, token)}


def basic(user, password):
    raw = ("%s:%s" % (user, password)).encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def token_of(gw):
    """The API token: api_token_file (var/api-token), one line."""
    text = (gw.dir / "var" / "api-token").read_text()
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].strip() == lines[0] and lines[0], \
        "api-token is not one line: %r" % text
    return lines[0]


def api(gw, path, token=None, **query):
    """GET path?query with the token; the answer must be 200 JSON."""
    q = {k: v for k, v in query.items() if v is not None}
    url = path + ("?" + urlencode(q) if q else "")
    r = request(gw.port, url, bearer(token or gw.token))
    assert r.status == 200, "GET %s: %r" % (url, r)
    assert (header(r, "Content-Type") or "").startswith(
        "application/json"), (url, r.headers)
    assert r.json is not None, "GET %s: not JSON: %r" % (url, r.raw[:300])
    return r.json


def assert_error(r, status, what):
    assert r.status == status, "%s: want %d, got %r" % (what, status, r)
    assert isinstance(r.json, dict) and \
        isinstance(r.json.get("error"), str) and r.json["error"], \
        "%s: error body is not {\"error\": reason}: %r" % (what, r)


def without_elapsed(show):
    """A show document without what ticks with time (clocks' elapsed_s)."""
    show = json.loads(json.dumps(show))
    for clock in (show.get("clocks") or {}).values():
        clock.pop("elapsed_s", None)
    return show


def rfc(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def ts(s):
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


# Prometheus text format (exposition_formats, version 0.0.4)
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?,?\})? (\S+)( -?\d+)?$"
                    % (NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$"
                  % NAME)
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Check the exposition text line by line; return (samples, types,
    helps, order): samples a list of (name, {label: value}, float), order
    the metric name of each HELP/TYPE/sample line in turn."""
    assert text.endswith("\n"), "the last line must end with a line feed"
    samples, types, helps, order = [], {}, {}, []
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            m = HELP.match(line)
            if m:
                assert m.group(1) not in helps, \
                    "line %d: a second HELP for %s" % (n, m.group(1))
                assert m.group(1) not in [s[0] for s in samples], \
                    "line %d: HELP for %s after its samples" % (n, line)
                helps[m.group(1)] = m.group(2)
                order.append(m.group(1))
                continue
            m = TYPE.match(line)
            if m:
                assert m.group(1) not in types, \
                    "line %d: a second TYPE for %s" % (n, m.group(1))
                assert m.group(1) not in [s[0] for s in samples], \
                    "line %d: TYPE for %s after its samples" % (n, line)
                types[m.group(1)] = m.group(2)
                order.append(m.group(1))
                continue
            assert not re.match(r"^#\s*(HELP|TYPE)\b", line), \
                "line %d: malformed HELP/TYPE line %r" % (n, line)
            continue        # a plain comment
        m = SAMPLE.match(line)
        assert m, "line %d: not `name{labels} value`: %r" % (n, line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            raise AssertionError("line %d: value %r is not a float: %r"
                                 % (n, value, line))
        assert name in helps and name in types, \
            "line %d: sample of %s before (or without) its HELP and " \
            "TYPE: %r" % (n, name, line)
        lab = dict(LABEL_PAIR.findall(labels))
        assert len(lab) == len(LABEL_PAIR.findall(labels)), \
            "line %d: a label given twice: %r" % (n, line)
        samples.append((name, lab, v))
        order.append(name)
    # no two samples with the same name and labels
    keys = Counter((s[0], tuple(sorted(s[1].items()))) for s in samples)
    dup = [k for k, c in keys.items() if c > 1]
    assert not dup, "samples given twice: %r" % dup
    return samples, types, helps, order


def metrics(gw, headers=None):
    r = request(gw.port, "/metrics", headers)
    assert r.status == 200, "GET /metrics: %r" % r
    ctype = header(r, "Content-Type") or ""
    assert ctype.startswith("text/plain"), ctype
    return r.raw.decode()


def sample_values(samples, name):
    return [(lab, v) for n, lab, v in samples if n == name]


def one_value(samples, name, **labels):
    vs = [v for lab, v in sample_values(samples, name) if lab == labels]
    assert len(vs) <= 1, (name, labels, vs)
    return vs[0] if vs else None


# --- the scripted run (once for the module) -------------------------------

class Run:
    pass


def post(gw, mid, **extra):
    r = gw.post("shop", webhook_msg(mid, **extra))
    assert r.status == 202, "webhook %s: %r" % (mid, r)
    return r.json


def wait_show(gw, tid, pred, what, timeout=WAIT):
    last = {}

    def poll():
        last["show"] = gw.show(tid)
        return last["show"] if pred(last["show"]) else None
    return wait_until(poll, timeout, lambda: "%s on ESC-%s: %r" % (
        what, tid, [(e["type"], e["at"], e["detail"])
                    for e in (last.get("show") or {}).get("events", [])]))


@pytest.fixture(scope="module")
def run(tmp_path_factory, escalon_bin):
    gw = Gateway(tmp_path_factory.mktemp("api") / "gw")
    gw.write_config(api_config(gw.port))
    gw.start()
    try:
        gw.token = token_of(gw)
        r = Run()
        r.gw = gw
        p1 = post(gw, "p1", thread="order-1", customer="c-p1")
        gw.ok("reply", p1["ticket"], "--as", "alice", "Looking into it.")
        p2 = post(gw, "p2", customer="c-p2", subject="Refund please")
        gw.ok("reply", p2["ticket"], "--as", "bob", "Refunded.")
        gw.ok("resolve", p2["ticket"], "double", "charge")
        s1 = post(gw, "s1", customer="c-s1", subject="Where is my parcel")
        c1 = post(gw, "c1", customer="c-c1",
                  subject="Checkout is DOWN for everyone")
        gw.ok("note", c1["ticket"], "--as", "alice", "Paging ops.")
        # a repeated id: the same ticket, nothing new
        dup = post(gw, "p1", thread="order-1", customer="c-p1")
        assert dup == {"ticket": p1["ticket"], "ref": p1["ref"],
                       "duplicate": True}, dup
        # a follow-up on P1's thread: a second message in P1
        fu = post(gw, "p1-followup", thread="order-1", customer="c-p1",
                  body="Any news?")
        assert fu["ticket"] == p1["ticket"] and not fu["duplicate"], fu
        # a bad signature: refused, not recorded
        bad = gw.post("shop", webhook_msg("forged"), secret="wrong")
        assert bad.status == 401, bad
        r.posted = 5            # webhook messages accepted, not duplicates
        r.ids = {"p1": p1["ticket"], "p2": p2["ticket"], "s1": s1["ticket"],
                 "c1": c1["ticket"]}
        # S1 warns, breaches first_response and climbs to level 2
        wait_show(gw, s1["ticket"], lambda s: any(
            e["type"] == "escalated" for e in s["events"]),
            "no escalation", FIRST_RESPONSE + WAIT)
        yield r
    finally:
        gw.stop()
        check_sanitizer(gw.stderr(), "escalon run (%s)" % gw.dir)


@pytest.fixture
def scripted(run, request):
    """The module's gateway, its log attached to a failing test."""
    request.node._escalon_gateways = [run.gw]
    return run


# --- 1: the API token ------------------------------------------------------

API_PATHS = ("/api/tickets", "/api/tickets/1", "/api/tickets/ESC-1",
             "/api/tickets?state=open", "/api/report",
             "/api/report?since=1h", "/api/tickets/999999")


def test_token_file_is_one_private_line(scripted):
    path = scripted.gw.dir / "var" / "api-token"
    token = token_of(scripted.gw)
    assert len(token) >= 16, "a short API token: %r" % token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, \
        oct(os.stat(path).st_mode)


@pytest.mark.parametrize("path", API_PATHS)
def test_api_refuses_without_a_good_token(scripted, path):
    gw, token = scripted.gw, scripted.gw.token
    wrong_same_len = token[:-1] + ("0" if token[-1] != "0" else "1")
    cases = {
        "no Authorization": {},
        "empty Authorization": {"Authorization": ""},
        "Bearer with nothing": {"Authorization": "Bearer "},
        "Bearer wrong": bearer("wrong"),
        "Bearer same length, last char wrong": bearer(wrong_same_len),
        "Bearer same length, first char wrong": bearer(
            ("0" if token[0] != "0" else "1") + token[1:]),
        "Bearer a prefix": bearer(token[:-1]),
        "Bearer token and more": bearer(token + "0"),
        "the token without a scheme": {"Authorization": token},
        "Token scheme": bearer(token, "Token"),
        "Basic with a wrong password": basic("alice", wrong_same_len),
        "Basic with the token as user": basic(token, "x"),
        "Basic without a colon": {"Authorization": "Basic " +
                                  base64.b64encode(token.encode()).decode()},
        "Basic not base64": {"Authorization": "Basic !!!!" + token},
        "Basic, raw token": {"Authorization": "Basic " + token},
        "X-Api-Token header": {"X-Api-Token": token},
    }
    for what, hdrs in cases.items():
        r = request(gw.port, path, hdrs)
        assert_error(r, 401, "%s on %s" % (what, path))
        assert (header(r, "Content-Type") or "").startswith(
            "application/json"), (what, r.headers)


@pytest.mark.parametrize("path", API_PATHS[:-1])
def test_api_accepts_the_token(scripted, path):
    gw, token = scripted.gw, scripted.gw.token
    cases = {
        "Bearer": bearer(token),
        "lower-case bearer": bearer(token, "bearer"),
        "upper-case BEARER": bearer(token, "BEARER"),
        "Basic, any user": basic("prometheus", token),
        "Basic, empty user": basic("", token),
        "lower-case basic": {"Authorization": "basic " + basic(
            "u", token)["Authorization"][6:]},
    }
    answers = {}
    for what, hdrs in cases.items():
        r = request(gw.port, path, hdrs)
        assert r.status == 200, "%s on %s: %r" % (what, path, r)
        assert r.json is not None, (what, path, r)
        answers[what] = r.json
    if "report" not in path:    # (a report's `to` is the moment asked)
        norm = {what: without_elapsed(doc) if isinstance(doc, dict) else doc
                for what, doc in answers.items()}
        first = norm["Bearer"]
        for what, doc in norm.items():
            assert doc == first, (what, path)


def test_basic_password_is_exactly_the_token(scripted):
    """Basic's password is the token, byte for byte: the token followed by
    a NUL and more is another password."""
    gw, token = scripted.gw, scripted.gw.token
    for pw in (token + "\0", token + "\0junk", token + "\n"):
        raw = b"prometheus:" + pw.encode()
        r = request(gw.port, "/api/tickets", {
            "Authorization": "Basic " + base64.b64encode(raw).decode()})
        assert_error(r, 401, "Basic password %r" % pw[-6:])


def test_unknown_ticket_is_401_before_404(scripted):
    """Without the token nothing tells which tickets exist."""
    gw = scripted.gw
    assert_error(request(gw.port, "/api/tickets/999999"), 401, "unknown")
    assert_error(request(gw.port, "/api/tickets/1"), 401, "known")
    assert_error(request(gw.port, "/api/tickets/abc"), 401, "bad id")


def test_custom_token_file_and_non_loopback_listen(make_gateway):
    """api_token_file is used as it is when present (its one line is the
    token); on a non-loopback listen /metrics and /healthz take it too."""
    gw = make_gateway()
    text = gw.config().replace('listen = "127.0.0.1:',
                               'listen = "0.0.0.0:')
    assert 'listen = "0.0.0.0:%d"' % gw.port in text
    gw.write_config(text)
    (gw.dir / "var").mkdir(exist_ok=True)
    tf = gw.dir / "var" / "api-token"
    tf.write_text("my-own-api-token-1234\n")
    tf.chmod(0o600)
    gw.start()
    assert tf.read_text() == "my-own-api-token-1234\n", \
        "the gateway rewrote an existing api_token_file"
    tok = "my-own-api-token-1234"
    assert request(gw.port, "/api/tickets", bearer(tok)).json == []
    assert_error(request(gw.port, "/api/tickets", bearer(tok[:-1] + "5")),
                 401, "same length, wrong")
    for path in ("/metrics", "/healthz"):
        assert_error(request(gw.port, path), 401,
                     "%s without a token on 0.0.0.0" % path)
        assert_error(request(gw.port, path, bearer("nope")), 401,
                     "%s with a wrong token on 0.0.0.0" % path)
        assert request(gw.port, path, bearer(tok)).status == 200, path
        assert request(gw.port, path, basic("prom", tok)).status == 200, \
            path
    # the rest of the API is the same on an empty store
    assert request(gw.port, "/api/report", bearer(tok)).json["tickets"] == 0
    assert_error(request(gw.port, "/api/tickets/1", bearer(tok)), 404,
                 "ticket 1 on an empty store")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/api/tickets"])
def test_refused_requests_cost_no_memory(make_gateway, escalon_bin, path):
    """A refused request (401) frees what it took: N refusals on one
    keep-alive connection leave the gateway's resident size where it was
    (a page-sized leak per refusal would add N * 4 KiB)."""
    if sanitized(escalon_bin):
        pytest.skip("resident size is meaningless under ASan")
    n = 3000
    gw = make_gateway()
    gw.write_config(gw.config().replace('listen = "127.0.0.1:',
                                        'listen = "0.0.0.0:'))
    gw.start()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)

    def refuse(k):
        for _ in range(k):
            conn.request("GET", path, headers=bearer("nope"))
            r = conn.getresponse()
            r.read()
            assert r.status == 401, (path, r.status)
    try:
        refuse(200)                 # warm up
        before = rss_kb(gw.proc.pid)
        refuse(n)
        grown = rss_kb(gw.proc.pid) - before
    finally:
        conn.close()
    assert grown < n * 4 // 3, \
        "%d refused GET %s grew the gateway by %d KiB (%.1f KiB each)" % (
            n, path, grown, grown / n)


# --- 2: /api/tickets --------------------------------------------------------

TICKET_FILTERS = [
    ({}, ()),
    ({"state": "new"}, ("--state", "new")),
    ({"state": "open"}, ("--state", "open")),
    ({"state": "resolved"}, ("--state", "resolved")),
    ({"state": "pending"}, ("--state", "pending")),
    ({"state": "closed"}, ("--state", "closed")),
    ({"queue": "billing"}, ("--queue", "billing")),
    ({"queue": "incidents"}, ("--queue", "incidents")),
    ({"queue": "nowhere"}, ("--queue", "nowhere")),
    ({"escalated": "1"}, ("--escalated",)),
    ({"escalated": "1", "queue": "billing"},
     ("--escalated", "--queue", "billing")),
    ({"state": "new", "queue": "billing"},
     ("--state", "new", "--queue", "billing")),
    ({"state": "open", "escalated": "1"}, ("--state", "open",
                                           "--escalated")),
]


def test_tickets_agree_with_the_cli(scripted):
    gw, ids = scripted.gw, scripted.ids
    seen = {}
    for query, args in TICKET_FILTERS:
        doc = api(gw, "/api/tickets", **query)
        cli = gw.tickets(*args)
        assert isinstance(doc, list), (query, doc)
        assert doc == cli, "GET /api/tickets?%s != tickets %s --json:\n" \
            "%r\n%r" % (urlencode(query), " ".join(args), doc, cli)
        seen[tuple(sorted(query.items()))] = sorted(t["id"] for t in doc)
    # the filters did filter (the run is known)
    everything = seen[()]
    assert everything == sorted(ids.values()), (everything, ids)
    assert seen[(("escalated", "1"),)] == sorted([ids["s1"], ids["c1"]])
    assert seen[(("queue", "incidents"),)] == [ids["c1"]]
    assert seen[(("queue", "billing"),)] == sorted(
        [ids["p1"], ids["p2"], ids["s1"]])
    assert seen[(("state", "resolved"),)] == [ids["p2"]]
    assert seen[(("queue", "nowhere"),)] == []
    for t in api(gw, "/api/tickets"):
        assert {"id", "ref", "state", "severity", "queue", "team", "level",
                "channel", "subject", "created_at"} <= set(t), t
        assert t["ref"] == "ESC-%d" % t["id"], t


def test_tickets_escalated_other_than_1_is_no_filter(scripted):
    """escalated=1 filters; its absence lists all (as the CLI without
    --escalated)."""
    gw = scripted.gw
    assert api(gw, "/api/tickets", escalated="0") == gw.tickets()


def test_tickets_bad_state_is_400(scripted):
    gw = scripted.gw
    for bad in ("bogus", "", "OPEN ", "escalated"):
        r = request(gw.port, "/api/tickets?" + urlencode({"state": bad}),
                    bearer(gw.token))
        assert_error(r, 400, "state=%r" % bad)
        p = gw.cli("tickets", "--state", bad, "--json")
        assert p.returncode == 1, (bad, p.returncode, p.stderr)


# --- 3: /api/tickets/ID -----------------------------------------------------

def test_ticket_agrees_with_show(scripted):
    gw, ids = scripted.gw, scripted.ids
    for name, tid in ids.items():
        cli = without_elapsed(gw.show(tid))
        for form in (str(tid), "ESC-%d" % tid, "esc-%d" % tid):
            doc = api(gw, "/api/tickets/" + form)
            assert isinstance(doc["clocks"], dict) and all(
                "elapsed_s" in c for c in doc["clocks"].values()), doc
            assert without_elapsed(doc) == cli, \
                "GET /api/tickets/%s != show %s --json (%s):\n%r\n%r" % (
                    form, tid, name, without_elapsed(doc), cli)
    # the run is what the documents say
    s1 = api(gw, "/api/tickets/%d" % ids["s1"])
    assert s1["level"] == 2 and s1["clocks"]["first_response"]["breached"]
    c1 = api(gw, "/api/tickets/ESC-%d" % ids["c1"])
    assert (c1["severity"], c1["queue"], c1["level"]) == \
        ("critical", "incidents", 2), c1
    p2 = api(gw, "/api/tickets/%d" % ids["p2"])
    assert p2["state"] == "resolved", p2


def test_unknown_ticket_is_404(scripted):
    gw = scripted.gw
    for form in ("999999", "ESC-999999", "9223372036854775807"):
        assert_error(request(gw.port, "/api/tickets/" + form,
                             bearer(gw.token)), 404, "ticket " + form)
        p = gw.cli("show", form, "--json")
        assert p.returncode == 1, (form, p.returncode, p.stderr)


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "ESC-", "ESC-0", "01",
                                 "1x", "ESC-1x", "1.0", "%20",
                                 "99999999999999999999999", "ESC-ESC-1",
                                 "1%2F2"])
def test_bad_ticket_id_is_400(scripted, bad):
    gw = scripted.gw
    r = request(gw.port, "/api/tickets/" + bad, bearer(gw.token))
    assert_error(r, 400, "ticket id %r" % bad)


def test_empty_ticket_id_is_not_a_list(scripted):
    """/api/tickets/ (a trailing slash) is not the list: no id, 400."""
    gw = scripted.gw
    r = request(gw.port, "/api/tickets/", bearer(gw.token))
    assert_error(r, 400, "/api/tickets/")


# --- 4: /api/report ---------------------------------------------------------

def report_windows(gw):
    first = min(ts(t["created_at"]) for t in gw.tickets())
    now = int(time.time())
    return [
        (rfc(first - 60), rfc(now + 3600)),         # everything
        (rfc(first), rfc(first + 1)),               # the first second
        ("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"),     # nothing
        (rfc(first - 86400 * 40), rfc(now + 86400 * 40)),    # > 30 d
    ]


def test_report_agrees_with_the_cli(scripted):
    gw = scripted.gw
    for frm, to in report_windows(gw):
        doc = api(gw, "/api/report", **{"from": frm, "to": to})
        cli = gw.json("report", "--from", frm, "--to", to, "--json")
        assert doc == cli, "GET /api/report?from=%s&to=%s != report " \
            "--json:\n%r\n%r" % (frm, to, doc, cli)
        assert (doc["from"], doc["to"]) == (frm, to), doc
    full = api(gw, "/api/report", **dict(zip(("from", "to"),
                                               report_windows(gw)[0])))
    assert full["tickets"] == len(scripted.ids), full
    assert full["escalated"] == 2, full
    assert full["by_severity"] == {"normal": 3, "critical": 1}, full
    empty = api(gw, "/api/report", **{"from": "2020-01-01T00:00:00Z",
                                      "to": "2020-01-02T00:00:00Z"})
    assert empty["tickets"] == 0 and empty["escalation_rate"] is None, empty


def test_report_with_offsets_agrees_with_the_cli(scripted):
    """RFC 3339 with an offset; `+` must be sent as %2B in a query."""
    gw = scripted.gw
    now = datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0)
    frm = (now - timedelta(hours=1)).isoformat()
    to = (now + timedelta(hours=1)).isoformat()
    assert "+02:00" in frm
    doc = api(gw, "/api/report?from=%s&to=%s" % (quote(frm, safe=""),
                                                 quote(to, safe="")))
    cli = gw.json("report", "--from", frm, "--to", to, "--json")
    assert doc == cli, (doc, cli)
    assert ts(doc["from"]) == int((now - timedelta(hours=1)).timestamp())
    assert doc["tickets"] == len(scripted.ids), doc


def test_report_since_agrees_with_the_cli(scripted):
    gw = scripted.gw
    for since in ("1h", "30d", "2h30m"):
        doc = api(gw, "/api/report", since=since)
        cli = gw.json("report", "--since", since, "--json")
        span = {"1h": 3600, "30d": 30 * 86400, "2h30m": 9000}[since]
        assert ts(doc["to"]) - ts(doc["from"]) == span, doc
        assert abs(ts(doc["to"]) - time.time()) <= 5, doc
        strip = {k: v for k, v in doc.items() if k not in ("from", "to")}
        assert strip == {k: v for k, v in cli.items()
                         if k not in ("from", "to")}, (since, doc, cli)
    # no window: the last 30 days, as the CLI
    doc = api(gw, "/api/report")
    assert ts(doc["to"]) - ts(doc["from"]) == 30 * 86400, doc
    assert doc["tickets"] == len(scripted.ids), doc


@pytest.mark.parametrize("query", [
    "since=abc", "since=0s", "since=-5m", "since=", "since=5x",
    "from=yesterday&to=2026-01-01T00:00:00Z",
    "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    "from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    "from=2026-01-01T00:00:00Z&to=soon",
    "from=2026-13-01T00:00:00Z&to=2027-01-01T00:00:00Z",
    "from=2026-01-01&to=2026-02-01",
    "from=",
])
def test_report_bad_window_is_400(scripted, query):
    gw = scripted.gw
    r = request(gw.port, "/api/report?" + query, bearer(gw.token))
    assert_error(r, 400, "/api/report?" + query)


@pytest.mark.parametrize("query,args", [
    ({"to": "2026-11-01T00:00:00Z"}, ("--to", "2026-11-01T00:00:00Z")),
    ({"since": "1h", "from": "2026-01-01T00:00:00Z",
      "to": "2026-01-02T00:00:00Z"},
     ("--since", "1h", "--from", "2026-01-01T00:00:00Z",
      "--to", "2026-01-02T00:00:00Z")),
    ({"since": "1h", "from": "2026-01-01T00:00:00Z"},
     ("--since", "1h", "--from", "2026-01-01T00:00:00Z")),
])
def test_report_refuses_what_the_cli_refuses(scripted, query, args):
    """/api/report is `report --json` over HTTP: a window the CLI refuses
    as bad input (exit 1: `to` without `from`; `since` with `from`/`to`)
    is a 400, not a report over some other window."""
    gw = scripted.gw
    p = gw.cli("report", *args, "--json")
    assert p.returncode == 1, (args, p.returncode, p.stdout[:200])
    r = request(gw.port, "/api/report?" + urlencode(query),
                bearer(gw.token))
    assert_error(r, 400, "/api/report?%s (the CLI says: %s)" % (
        urlencode(query), p.stderr.strip()))


# --- 5: /metrics against the store -----------------------------------------

def store_view(gw):
    """What the CLI says: tickets, every show, the outbox."""
    tickets = gw.tickets()
    shows = [gw.show(t["id"]) for t in tickets]
    return tickets, shows, gw.outbox(), gw.outbox("--dead")


def test_metrics_agree_with_the_store(scripted):
    gw = scripted.gw
    # quiet: two scrapes around the CLI reads agree
    before = metrics(gw)
    tickets, shows, pending, dead = store_view(gw)
    after = metrics(gw)
    assert before == after, "the metrics moved during the comparison:\n" \
        "%s\n---\n%s" % (before, after)
    samples, types, helps, _ = parse_metrics(after)

    # escalon_tickets{state,level,severity}
    rows = sample_values(samples, "escalon_tickets")
    assert all(set(lab) == {"state", "level", "severity"} for lab, _ in rows),\
        rows
    got = {(lab["state"], lab["level"], lab["severity"]): v
           for lab, v in rows}
    want = Counter((t["state"], str(t["level"]), t["severity"])
                   for t in tickets)
    assert sum(got.values()) == len(tickets) == len(scripted.ids), \
        (got, len(tickets))
    assert {k: v for k, v in got.items() if v} == \
        {k: float(v) for k, v in want.items()}, (got, want)
    assert types["escalon_tickets"] == "gauge", types

    # escalon_escalations_total == every "escalated" event
    events = [e for s in shows for e in s["events"]]
    escalated = sum(1 for e in events if e["type"] == "escalated")
    assert one_value(samples, "escalon_escalations_total") == escalated, \
        (sample_values(samples, "escalon_escalations_total"), escalated)
    assert escalated >= 2, "S1's breach and C1's start level: %r" % \
        [(e["type"], e["detail"]) for e in events]

    # sla warnings / breaches by clock
    for metric, kind in (("escalon_sla_warnings_total", "sla_warning"),
                         ("escalon_sla_breaches_total", "sla_breached")):
        want = Counter(e["detail"]["clock"] for e in events
                       if e["type"] == kind)
        got = {lab["clock"]: v for lab, v in sample_values(samples, metric)}
        assert all(set(lab) == {"clock"} for lab, _ in
                   sample_values(samples, metric)), metric
        assert {k: v for k, v in got.items() if v} == \
            {k: float(v) for k, v in want.items()}, (metric, got, want)
        assert want["first_response"] >= 1, (kind, want)
        assert types[metric] == "counter", (metric, types)

    # inbound: the webhook messages posted, duplicates and refusals aside
    inbound = {lab["channel"]: v for lab, v in
               sample_values(samples, "escalon_inbound_total")}
    assert inbound.get("webhook") == scripted.posted, inbound
    msgs_in = Counter(m["channel"] for s in shows for m in s["messages"]
                      if m["direction"] == "in")
    assert {k: v for k, v in inbound.items() if v} == \
        {k: float(v) for k, v in msgs_in.items()}, (inbound, msgs_in)

    # the outbox: nothing was ever queued
    assert one_value(samples, "escalon_outbox_pending") == len(pending) == 0,\
        (sample_values(samples, "escalon_outbox_pending"), pending)
    assert one_value(samples, "escalon_outbox_dead") == len(dead) == 0, \
        (sample_values(samples, "escalon_outbox_dead"), dead)

    # every name SPEC.md lists is announced
    for name, kind in (("escalon_tickets", "gauge"),
                       ("escalon_escalations_total", "counter"),
                       ("escalon_sla_warnings_total", "counter"),
                       ("escalon_sla_breaches_total", "counter"),
                       ("escalon_inbound_total", "counter"),
                       ("escalon_outbox_pending", "gauge"),
                       ("escalon_outbox_dead", "gauge"),
                       ("escalon_child_restarts_total", "counter")):
        assert types.get(name) == kind and helps.get(name), \
            (name, types.get(name), helps.get(name))


def test_metrics_text_is_well_formed(scripted):
    text = metrics(scripted.gw)
    samples, types, helps, _ = parse_metrics(text)
    assert samples, text
    assert set(types) == set(helps), (types, helps)
    for n, lab, v in samples:
        assert v >= 0 and v == int(v), (n, lab, v)
        if types[n] == "counter":
            assert n.endswith("_total"), n


def test_metrics_families_are_grouped(scripted):
    """Prometheus text format: "All lines for a given metric must be
    provided as one single group, with the optional HELP and TYPE lines
    first" (prometheus.io, Exposition formats). OpenMetrics parsers refuse
    an interleaved family."""
    text = metrics(scripted.gw)
    _, _, _, order = parse_metrics(text)
    groups = [order[0]]
    for name in order[1:]:
        if name != groups[-1]:
            groups.append(name)
    split = [n for n, c in Counter(groups).items() if c > 1]
    assert not split, "metric families not in one group each: %r\n%s" % (
        split, text)


def test_metrics_need_no_token_on_loopback(scripted):
    gw = scripted.gw
    a = metrics(gw)
    b = metrics(gw, bearer(gw.token))
    c = metrics(gw, bearer("wrong"))     # ignored on a loopback listen
    assert parse_metrics(a)[0] == parse_metrics(b)[0] == parse_metrics(c)[0]


# --- 6: outbox gauges ---------------------------------------------------------

def test_metrics_outbox_gauges(make_gateway, make_receiver):
    """One ack held in flight (pending 1), one refused for good (dead 1):
    the gauges follow `outbox --json` / `outbox --dead --json`."""
    release = threading.Event()

    def hold(req):
        release.wait(20)
        return 200
    held, gone = make_receiver(status=hold), make_receiver(status=404)
    gw = make_gateway(extra='outbox { retry_first = "1s"  retry_max = "2s"'
                      '  max_attempts = 3 }\n').start()
    try:
        post(gw, "gone-1", customer="c-gone", reply_url=gone.url("/r"))
        wait_until(lambda: len(gw.outbox("--dead")) == 1, WAIT,
                   lambda: "no dead row: %r" % gw.outbox("--dead"))
        post(gw, "held-1", customer="c-held", reply_url=held.url("/r"))
        held.wait(1)
        before = metrics(gw)
        pending, dead = gw.outbox(), gw.outbox("--dead")
        after = metrics(gw)
        assert before == after, (before, after)
        s, _, _, _ = parse_metrics(after)
        assert one_value(s, "escalon_outbox_pending") == len(pending) == 1, \
            (sample_values(s, "escalon_outbox_pending"), pending)
        assert one_value(s, "escalon_outbox_dead") == len(dead) == 1, \
            (sample_values(s, "escalon_outbox_dead"), dead)
        assert one_value(s, "escalon_inbound_total", channel="webhook") == 2
    finally:
        release.set()
    wait_until(lambda: gw.outbox() == [], WAIT,
               lambda: "still pending: %r" % gw.outbox())
    s, _, _, _ = parse_metrics(metrics(gw))
    assert one_value(s, "escalon_outbox_pending") == 0, s
    assert one_value(s, "escalon_outbox_dead") == len(gw.outbox("--dead")) \
        == 1, s


def test_metrics_on_an_empty_store(gw):
    samples, types, _, _ = parse_metrics(metrics(gw))
    assert sample_values(samples, "escalon_tickets") == [] or \
        all(v == 0 for _, v in sample_values(samples, "escalon_tickets"))
    assert one_value(samples, "escalon_escalations_total") in (0, None)
    assert one_value(samples, "escalon_outbox_pending") == 0
    assert one_value(samples, "escalon_outbox_dead") == 0
    assert "escalon_tickets" in types


# --- 7: /healthz, unknown paths and methods ---------------------------------

def test_healthz(scripted):
    gw = scripted.gw
    for hdrs in ({}, bearer(gw.token), bearer("wrong")):
        r = request(gw.port, "/healthz", hdrs)
        assert r.status == 200, r
        assert (header(r, "Content-Type") or "").startswith(
            "application/json"), r.headers
        out = r.json.pop("outbound", None)
        assert r.json == {"status": "ok", "store": "ok", "channels": []}, r
        assert out is not None and set(out) == {
            "http", "smtp", "xmpp", "pending", "dead"}, out
        assert out["pending"] == 0 and out["dead"] == 0, out
        assert out["smtp"] == {"state": "unused"} and \
            out["xmpp"] == {"state": "unused"}, out


@pytest.mark.parametrize("path", [
    "/nope", "/api", "/api/", "/api/ticket", "/api/ticketsx",
    "/api/reports", "/api/report/x", "/metricsx", "/metrics/", "/healthz/",
    "/hooks", "/API/tickets",
])
def test_unknown_paths_are_404(scripted, path):
    gw = scripted.gw
    for hdrs in ({}, bearer(gw.token)):
        assert_error(request(gw.port, path, hdrs), 404, "GET " + path)


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/tickets"), ("POST", "/api/tickets/1"),
    ("POST", "/api/report"), ("PUT", "/api/tickets/1"),
    ("DELETE", "/api/tickets/1"), ("POST", "/metrics"),
    ("POST", "/healthz"), ("GET", "/hooks/shop"),
])
def test_other_methods_are_404(scripted, method, path):
    gw = scripted.gw
    before = gw.tickets()
    r = request(gw.port, path, bearer(gw.token), method=method,
                body=b"{}" if method in ("POST", "PUT") else None)
    assert_error(r, 404, "%s %s" % (method, path))
    assert gw.tickets() == before
