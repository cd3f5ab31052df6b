"""
SLA clocks and the escalation ladder end to end (SPEC.md "SLA and
escalation semantics", "Configuration", "HTTP" notify payloads, "Ticket"):
the real gateway on a 24x7 calendar with targets of a few seconds, webhook
tickets whose reply_url is a local receiver (the customer) and a notify
section pointing at another (the pager).

The store keeps whole seconds and the scheduler fires within about a
second of a due instant, so an event is expected at its instant or up to
SLACK seconds later. Polling windows are generous (the suite also runs
under ASan); the waits that prove something did NOT happen are short.

1. a normal ticket warns, breaches first_response and climbs to level 2 at
   the breach, then to 3 after `after`; the customer gets `escalated` and
   `update` messages, the pager signed notifications; `escalon due --at`
   foresaw all of it
2. a critical ticket (rule on the subject) starts at level 2
3. pending pauses the resolution clock; the paused time moves its due
4. a reply stops first_response; next_update runs per customer message
5. `escalon escalate` by hand, refused at the top
6. a kill -9 before a breach neither loses nor repeats it
7. a severity raised later (rule on a follow-up, `escalon severity`)
   lands on its start level
"""

import time
from datetime import datetime, timezone

from conftest import REPO, SECRET, sign, wait_until, webhook_msg

NOTIFY_SECRET = "p4ger-s3cret"
SLACK = 2           # seconds an event may come after its due instant
WAIT = 25           # polling window for something that must happen

ALL_NOTIFY = ("ticket.created", "ticket.escalated", "sla.warning",
              "sla.breached")


def esc_config(port, fast=None, urgent=None, after2="1h", after3="1h",
               notify_url=None, notify_events=ALL_NOTIFY):
    """A complete config: queue billing (the hook's) and incidents on SLA
    "fast", severity critical on SLA "urgent" starting at level 2, the
    rule "x" routing outage/down subjects there, and a three-level ladder
    (level 2 on a first_response breach or after `after2` at level 1,
    level 3 after `after3` at level 2). fast/urgent: SLA key overrides."""
    def sla(name, over):
        keys = {"first_response": "1h", "next_update": "1h",
                "resolution": "1h", "warn_at": "50",
                "customer_update": "1h"}
        keys.update(over or {})
        body = "  ".join('%s = %s' % (k, v if k == "warn_at" else
                                      '"%s"' % v) for k, v in keys.items())
        return 'sla "%s" { calendar = "always"  %s }' % (name, body)

    notify = ""
    if notify_url:
        notify = "notify \"pager\" { url = \"%s\"  secret = '%s'  " \
            "events = {%s} }" % (notify_url, NOTIFY_SECRET,
                                 ", ".join('"%s"' % e for e in notify_events))
    return f"""\
# escalon e2e: SLA clocks and the ladder
store = "var/escalon.db"
listen = "127.0.0.1:{port}"
base_url = "http://127.0.0.1:{port}"
secret_file = "var/secret"
api_token_file = "var/api-token"
control_socket = "var/escalon.sock"
templates = "{REPO / 'templates'}"
outbox {{ retry_first = "1s"  retry_max = "2s"  max_attempts = 50 }}

webhook "shop" {{ secret = '{SECRET}'  queue = "billing" }}
{notify}

agent "alice" {{ email = "alice@example.test"  name = "Alice" }}
agent "bob"   {{ email = "bob@example.test"    name = "Bob" }}
agent "carol" {{ email = "carol@example.test"  name = "Carol" }}
agent "max"   {{ email = "max@example.test"    name = "Max" }}
team "tier1" {{ agents = {{"alice", "bob"}} }}
team "tier2" {{ agents = {{"carol"}} }}
team "managers" {{ agents = {{"max"}} }}

calendar "always" {{ timezone = "UTC"  hours = {{"mon-sun 00:00-24:00"}} }}
{sla("fast", fast)}
{sla("urgent", urgent)}

ladder "default" {{
  level 1 {{ team = "tier1" }}
  level 2 {{ team = "tier2"  after = "{after2}"  on_breach = {{"first_response"}} }}
  level 3 {{ team = "managers"  after = "{after3}" }}
}}

queue "billing"   {{ team = "tier1"  sla = "fast"  ladder = "default" }}
queue "incidents" {{ team = "tier1"  sla = "fast"  ladder = "default" }}

severity "critical" {{ sla = "urgent"  start_level = 2 }}

rule "x" {{
  match = {{"subject ~* outage|down"}}
  severity = "critical"  queue = "incidents"  tags = {{"outage"}}
}}
"""


def gateway(make_gateway, **cfg):
    gw = make_gateway()
    gw.write_config(esc_config(gw.port, **cfg))
    return gw


# --- helpers ---------------------------------------------------------------

def ts(s):
    """RFC 3339 UTC -> Unix seconds."""
    assert s is not None, "no time"
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


def rfc(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def first_line(template):
    """The fixed text a template's output starts with (up to its first
    variable), to tell the customer's messages apart."""
    text = (REPO / "templates" / template).read_text()
    return text.split("{{", 1)[0].strip()


ESCALATED_TEXT = first_line("escalated.chat.tmpl")
UPDATE_TEXT = first_line("update.chat.tmpl")
ACK_TEXT = first_line("ack.chat.tmpl")


def kind_of(body):
    for kind, text in (("escalated", ESCALATED_TEXT),
                       ("update", UPDATE_TEXT), ("ack", ACK_TEXT)):
        if body.startswith(text):
            return kind
    return "other"


def new_ticket(gw, mid, reply_url=None, **extra):
    if reply_url is not None:
        extra["reply_url"] = reply_url
    r = gw.post("shop", webhook_msg(mid, **extra))
    assert r.status == 202, "webhook %s: %r" % (mid, r)
    return r.json


def events(show, *types):
    return [e for e in show["events"] if not types or e["type"] in types]


def sla_events(show, clock=None):
    return [(e["type"], e["detail"].get("clock"))
            for e in events(show, "sla_warning", "sla_breached")
            if clock is None or e["detail"].get("clock") == clock]


def wait_show(gw, tid, pred, what, timeout=WAIT):
    """Poll `show --json` until pred(show); return that show."""
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


def wait_event(gw, tid, kind, n=1, pred=lambda e: True, timeout=WAIT):
    """Wait for n events of that kind (with pred); return the show."""
    return wait_show(gw, tid, lambda s: len(
        [e for e in events(s, kind) if pred(e)]) >= n,
        "no %d %s event(s)" % (n, kind), timeout)


def assert_on_time(ev, due, slack=SLACK):
    at = ts(ev["at"])
    assert due <= at <= due + slack, \
        "%s at %s, want %s (+%ds)" % (ev["type"], ev["at"], rfc(due), slack)


def check_signed(req, secret):
    assert req.method == "POST", req
    assert req.header("X-Escalon-Signature") == sign(req.raw, secret), \
        "bad signature on %r" % req
    assert isinstance(req.json, dict), req
    assert req.header("X-Escalon-Delivery") == req.json.get("delivery"), req
    return req.json


def customer_messages(rcv, tref):
    """(kind, body) of each message POSTed to the customer's reply_url,
    each checked as a signed {"event": "message"} for that ticket."""
    out = []
    for req in rcv.got():
        b = check_signed(req, SECRET)
        assert b.get("event") == "message" and b.get("ref") == tref, b
        out.append((kind_of(b["body"]), b["body"]))
    return out


def notifications(rcv):
    """The notify POSTs, each checked as signed with the notify secret."""
    out = []
    for req in rcv.got():
        b = check_signed(req, NOTIFY_SECRET)
        assert req.header("X-Escalon-Signature") != sign(req.raw, SECRET), \
            "notify signed with the webhook's secret"
        assert set(b) >= {"event", "delivery", "at", "ticket", "detail"}, b
        out.append(b)
    return out


# --- 1: a normal ticket warns, breaches and climbs -------------------------

def test_normal_ticket_warns_breaches_and_climbs(make_gateway, make_receiver):
    cust, pager = make_receiver(), make_receiver()
    gw = gateway(make_gateway, fast={"first_response": "4s",
                                     "customer_update": "3s"},
                 after3="4s", notify_url=pager.url("/pager"),
                 notify_events=("ticket.escalated", "sla.warning",
                                "sla.breached")).start()
    t = new_ticket(gw, "climb-1", reply_url=cust.url("/customer"))
    tid = t["ticket"]

    s = gw.show(tid)
    c = ts(s["created_at"])
    assert (s["level"], s["team"], s["queue"], s["severity"]) == \
        (1, "tier1", "billing", "normal"), s
    assert s["due"]["first_response"] == rfc(c + 4), s["due"]
    fr = s["clocks"]["first_response"]
    assert fr["state"] == "running" and fr["due"] == rfc(c + 4) and \
        fr["warn_at"] == rfc(c + 2), fr
    assert not fr["warned"] and not fr["breached"], fr
    assert s["clocks"]["next_update"]["state"] == "idle", s["clocks"]
    assert s["next_due_at"] == rfc(c + 2), s["next_due_at"]

    # what `escalon due --at` foresees for the next 12 s, before any of it
    # happens (compared with what then happens, below)
    foreseen = [(d["type"], d["at"], d["detail"]) for d in
                gw.json("due", "--at", rfc(c + 12), "--json")
                if d["ticket"] == tid]

    # level 3 after 4 s at level 2, then an update 3 s later
    s = wait_event(gw, tid, "escalated", 2)
    esc = events(s, "escalated")
    s = wait_event(gw, tid, "update_sent",
                   pred=lambda e: ts(e["at"]) >= ts(esc[1]["at"]))
    time.sleep(2.5)         # nothing more may come: fired once each
    s = gw.show(tid)

    warn, = events(s, "sla_warning")
    breach, = events(s, "sla_breached")
    esc = events(s, "escalated")
    assert [e["type"] for e in events(s, "sla_warning", "sla_breached",
                                      "escalated")] == \
        ["sla_warning", "sla_breached", "escalated", "escalated"], \
        events(s)
    assert warn["detail"] == {"clock": "first_response", "due": rfc(c + 4)}, \
        warn
    assert breach["detail"] == {"clock": "first_response",
                                "due": rfc(c + 4)}, breach
    assert_on_time(warn, c + 2)
    assert_on_time(breach, c + 4)
    # the breach moves the ticket up at once
    d = esc[0]["detail"]
    assert (d["from"], d["to"], d["why"], d.get("team")) == \
        (1, 2, "first_response breached", "tier2"), esc[0]
    assert esc[0]["at"] == breach["at"], (esc[0], breach)
    # after (4 s) at level 2 moves it to 3
    d = esc[1]["detail"]
    assert (d["from"], d["to"], d.get("team")) == (2, 3, "managers"), esc[1]
    assert "level 2" in d["why"], esc[1]
    assert_on_time(esc[1], ts(esc[0]["at"]) + 4)
    assert (s["level"], s["team"]) == (3, "managers"), s
    # customer updates: customer_update (3 s) at level >= 2 without a reply
    ups = events(s, "update_sent")
    assert len(ups) == 2, ups
    assert_on_time(ups[0], ts(esc[0]["at"]) + 3)
    assert ts(ups[1]["at"]) >= ts(ups[0]["at"]) + 3, ups
    assert ts(ups[1]["at"]) <= ts(esc[1]["at"]) + 3 + SLACK, (ups, esc)

    # `due --at` foresaw the same steps, at the same instants
    happened = [(e["type"], e["at"], e["detail"] or {}) for e in events(
        s, "sla_warning", "sla_breached", "escalated", "update_sent")]
    assert [x[0] for x in foreseen] == ["sla_warning", "sla_breached",
                                        "escalated", "update_sent",
                                        "escalated", "update_sent"], foreseen
    assert len(happened) >= len(foreseen), (happened, foreseen)
    for (ft, fat, fd), (ht, hat, hd) in zip(foreseen, happened):
        assert ft == ht and (fd or {}) == hd, (foreseen, happened)
        assert ts(fat) <= ts(hat) <= ts(fat) + SLACK, (foreseen, happened)

    fr = s["clocks"]["first_response"]
    assert fr["warned"] and fr["breached"], fr
    assert fr["due"] == rfc(c + 4) and s["due"]["first_response"] == \
        rfc(c + 4), (fr, s["due"])
    assert not s["clocks"]["resolution"]["warned"], s["clocks"]

    # the customer heard: ack, escalated, update, escalated, update
    wait_until(lambda: len(cust.got()) >= 5, 10,
               lambda: "customer got %r" % customer_messages(cust, t["ref"]))
    kinds = [k for k, _ in customer_messages(cust, t["ref"])]
    assert kinds == ["ack", "escalated", "update", "escalated", "update"], \
        kinds
    assert all(t["ref"] in b for _, b in customer_messages(cust, t["ref"]))

    # the pager: warning, breach, two escalations, each signed
    wait_until(lambda: len(pager.got()) >= 4, 10,
               lambda: "pager got %r" % pager.got())
    # (the sender delivers in parallel: the breach and the escalation it
    # caused are queued together and may arrive in either order)
    ns = notifications(pager)
    assert sorted(n["event"] for n in ns) == \
        ["sla.breached", "sla.warning", "ticket.escalated",
         "ticket.escalated"], ns
    assert ns[0]["event"] == "sla.warning", ns
    for n in ns:
        if n["event"].startswith("sla."):
            assert n["detail"] == {"clock": "first_response",
                                   "due": rfc(c + 4)}, n
    e1, e2 = [n for n in ns if n["event"] == "ticket.escalated"]
    assert e1["detail"] == {"from": 1, "to": 2,
                            "why": "first_response breached"}, e1
    assert (e1["ticket"]["id"], e1["ticket"]["ref"]) == (tid, t["ref"]), e1
    assert (e1["ticket"]["level"], e1["ticket"]["team"]) == (2, "tier2"), e1
    assert (e2["detail"]["from"], e2["detail"]["to"]) == (2, 3), e2
    assert e2["detail"]["why"] == esc[1]["detail"]["why"], (e2, esc[1])
    assert (e2["ticket"]["level"], e2["ticket"]["team"]) == (3, "managers")
    assert len({n["delivery"] for n in ns}) == 4, ns


# --- 2: a critical ticket starts at level 2 --------------------------------

def test_critical_ticket_starts_at_level_2(make_gateway, make_receiver):
    pager = make_receiver()
    gw = gateway(make_gateway, urgent={"first_response": "15m"},
                 notify_url=pager.url("/pager"),
                 notify_events=("ticket.created",)).start()
    t = new_ticket(gw, "crit-1", subject="Checkout is DOWN for everyone",
                   customer="c-crit")
    s = gw.show(t["ticket"])
    c = ts(s["created_at"])
    assert (s["severity"], s["queue"], s["level"], s["team"]) == \
        ("critical", "incidents", 2, "tier2"), s
    assert s.get("sla") == "urgent", s.get("sla")
    assert s["tags"] == ["outage"], s["tags"]
    rules = events(s, "rule")
    assert [e["detail"] for e in rules] == [{"rule": "x"}], rules
    esc, = events(s, "escalated")
    d = esc["detail"]
    assert (d["from"], d["to"], d.get("team")) == (1, 2, "tier2"), esc
    assert d["why"] and "critical" in d["why"], esc
    assert esc["at"] == s["created_at"], (esc, s["created_at"])
    # the severity's SLA: first response in 15 minutes
    assert s["due"]["first_response"] == rfc(c + 900), s["due"]
    assert s["clocks"]["first_response"]["due"] == rfc(c + 900)
    # the created notification already shows where it landed
    pager.wait(1)
    n = [b for b in notifications(pager) if b["event"] == "ticket.created"]
    assert len(n) == 1, n
    tk = n[0]["ticket"]
    assert (tk["level"], tk["team"], tk["queue"], tk["severity"]) == \
        (2, "tier2", "incidents", "critical"), tk

    # a normal subject from the same hook: no rule, level 1
    t2 = new_ticket(gw, "norm-1", subject="Invoice is wrong",
                    customer="c-norm")
    s2 = gw.show(t2["ticket"])
    assert (s2["severity"], s2["queue"], s2["level"], s2["team"]) == \
        ("normal", "billing", 1, "tier1"), s2
    assert s2["tags"] == [] and events(s2, "rule", "escalated") == [], s2
    assert gw.tickets("--escalated") and \
        [x["id"] for x in gw.tickets("--escalated")] == [t["ticket"]]


# --- 3: pending pauses the resolution clock --------------------------------

def test_pending_pauses_resolution(make_gateway):
    gw = gateway(make_gateway, fast={"resolution": "5s",
                                     "warn_at": "60"}).start()
    t = new_ticket(gw, "pend-1", thread="order-7")
    tid = t["ticket"]
    gw.ok("pending", tid)
    s = gw.show(tid)
    c = ts(s["created_at"])
    assert s["state"] == "pending", s["state"]
    res = s["clocks"]["resolution"]
    assert res["state"] == "paused" and res["due"] is None, res
    assert s["due"]["resolution"] is None, s["due"]
    p = ts(events(s, "state_changed")[-1]["at"])
    assert p - c <= 2, "pending came %ds after creation: too slow for " \
        "this test's 3 s warning" % (p - c)

    # well past the 5 s target: no warning, no breach while pending
    time.sleep(max(0, c + 5 + SLACK + 0.5 - time.time()))
    s = gw.show(tid)
    assert sla_events(s) == [], "SLA events while pending: %r" % events(s)
    assert s["clocks"]["resolution"]["state"] == "paused"
    assert s["clocks"]["resolution"]["elapsed_s"] == p - c, s["clocks"]

    # the customer writes: open again, the clock resumes where it was
    r = gw.post("shop", webhook_msg("pend-2", thread="order-7",
                                    body="here is the receipt"))
    assert r.status == 202 and r.json["ticket"] == tid, r
    s = gw.show(tid)
    assert s["state"] == "open", s["state"]
    back = [e for e in events(s, "state_changed")
            if e["detail"].get("from") == "pending"]
    assert len(back) == 1, events(s, "state_changed")
    q = ts(back[0]["at"])
    due = q + 5 - (p - c)           # the paused time pushes it back
    warn_due = q + 3 - (p - c)
    res = s["clocks"]["resolution"]
    assert res["state"] == "running", res
    assert res["due"] == rfc(due), (res, rfc(due))
    assert s["due"]["resolution"] == rfc(due), s["due"]

    s = wait_event(gw, tid, "sla_breached")
    time.sleep(1.5)
    s = gw.show(tid)
    assert sla_events(s) == [("sla_warning", "resolution"),
                             ("sla_breached", "resolution")], events(s)
    warn, = events(s, "sla_warning")
    breach, = events(s, "sla_breached")
    assert breach["detail"] == {"clock": "resolution", "due": rfc(due)}
    assert warn["detail"] == {"clock": "resolution", "due": rfc(due)}
    assert_on_time(warn, max(warn_due, q))
    assert_on_time(breach, due)
    assert ts(breach["at"]) >= c + 5 + (q - p), "breached before the " \
        "paused time was added back"
    # a resolution breach does not move a level-1 ticket (only
    # first_response does, on this ladder)
    assert events(s, "escalated") == [] and s["level"] == 1, s


# --- 4: a reply stops first_response; next_update cycles ------------------

def test_reply_stops_first_response(make_gateway):
    gw = gateway(make_gateway, fast={"first_response": "4s",
                                     "next_update": "3s",
                                     "warn_at": "75"}).start()
    t = new_ticket(gw, "rep-1", thread="order-8")
    tid = t["ticket"]
    gw.ok("reply", tid, "--as", "alice", "Looking", "into", "it")
    s = gw.show(tid)
    c = ts(s["created_at"])
    assert ts(s["first_response_at"]) - c <= 2, "reply too slow for the " \
        "3 s warning"
    fr = s["clocks"]["first_response"]
    assert fr["state"] == "stopped", fr
    assert s["due"]["first_response"] is None, s["due"]
    assert s["clocks"]["next_update"]["state"] == "idle", s["clocks"]

    # the customer answers: next_update runs from that message (3 s)
    r = gw.post("shop", webhook_msg("rep-2", thread="order-8",
                                    body="it still fails"))
    assert r.status == 202 and r.json["ticket"] == tid, r
    s = gw.show(tid)
    a1 = ts(events(s, "customer_replied")[-1]["at"])
    nu = s["clocks"]["next_update"]
    assert nu["state"] == "running" and nu["due"] == rfc(a1 + 3), nu
    assert s["due"]["next_update"] == rfc(a1 + 3), s["due"]

    s = wait_event(gw, tid, "sla_breached")
    time.sleep(max(0, c + 4 + SLACK + 0.5 - time.time()))
    s = gw.show(tid)
    # first_response never warned or breached
    assert sla_events(s, "first_response") == [], events(s)
    assert sla_events(s) == [("sla_warning", "next_update"),
                             ("sla_breached", "next_update")], events(s)
    b1 = events(s, "sla_breached")[0]
    assert b1["detail"] == {"clock": "next_update", "due": rfc(a1 + 3)}
    assert_on_time(b1, a1 + 3)
    # neither moves the ticket: level 2's on_breach is first_response
    assert events(s, "escalated") == [] and s["level"] == 1, s

    # answered, then the customer writes again: a new cycle warns and
    # breaches once more, with its own due instant
    gw.ok("reply", tid, "--as", "bob", "Fixed", "now?")
    s = gw.show(tid)
    assert s["clocks"]["next_update"]["state"] == "idle", s["clocks"]
    r = gw.post("shop", webhook_msg("rep-3", thread="order-8",
                                    body="no, it is not"))
    assert r.status == 202, r
    s = gw.show(tid)
    a2 = ts(events(s, "customer_replied")[-1]["at"])
    s = wait_event(gw, tid, "sla_breached", 2)
    time.sleep(1.5)
    s = gw.show(tid)
    assert sla_events(s) == [("sla_warning", "next_update"),
                             ("sla_breached", "next_update")] * 2, events(s)
    b2 = events(s, "sla_breached")[1]
    assert b2["detail"] == {"clock": "next_update", "due": rfc(a2 + 3)}
    assert_on_time(b2, a2 + 3)
    assert sla_events(s, "first_response") == []


# --- 5: escalate by hand ---------------------------------------------------

def test_escalate_by_hand(make_gateway, make_receiver):
    cust, pager = make_receiver(), make_receiver()
    gw = gateway(make_gateway, notify_url=pager.url("/pager"),
                 notify_events=("ticket.escalated",)).start()
    t = new_ticket(gw, "hand-1", reply_url=cust.url("/c"))
    tid = t["ticket"]

    p = gw.ok("escalate", tid, "needs", "a", "database", "admin")
    assert p.stdout.strip(), "escalate printed nothing"
    s = gw.show(tid)
    assert (s["level"], s["team"], s["state"]) == (2, "tier2", "open"), s
    esc, = events(s, "escalated")
    d = esc["detail"]
    assert (d["from"], d["to"], d["why"], d.get("team")) == \
        (1, 2, "needs a database admin", "tier2"), esc

    n = check_signed(pager.wait(1)[0], NOTIFY_SECRET)
    assert n["event"] == "ticket.escalated", n
    assert n["detail"] == {"from": 1, "to": 2,
                           "why": "needs a database admin"}, n
    assert (n["ticket"]["id"], n["ticket"]["level"], n["ticket"]["team"]) \
        == (tid, 2, "tier2"), n

    gw.ok("escalate", tid)                   # no why given
    s = gw.show(tid)
    assert (s["level"], s["team"]) == (3, "managers"), s
    esc = events(s, "escalated")
    assert (esc[1]["detail"]["from"], esc[1]["detail"]["to"]) == (2, 3)
    assert isinstance(esc[1]["detail"]["why"], str) and \
        esc[1]["detail"]["why"].strip(), esc[1]

    # the top: refused, nothing changes
    p = gw.cli("escalate", tid, "even", "higher")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "already at the top" in p.stderr, p.stderr
    s = gw.show(tid)
    assert s["level"] == 3 and len(events(s, "escalated")) == 2, s

    p = gw.cli("escalate", 9999)
    assert p.returncode == 1 and "9999" in p.stderr, (p.returncode, p.stderr)

    # customer: ack and one `escalated` per step; pager: one per step
    wait_until(lambda: len(cust.got()) >= 3 and len(pager.got()) >= 2, 10,
               lambda: "customer %r, pager %r" % (cust.got(), pager.got()))
    time.sleep(1)
    assert [k for k, _ in customer_messages(cust, t["ref"])] == \
        ["ack", "escalated", "escalated"], customer_messages(cust, t["ref"])
    ns = notifications(pager)
    assert [(x["detail"]["from"], x["detail"]["to"]) for x in ns] == \
        [(1, 2), (2, 3)], ns

    # the same refusal with no gateway running
    assert gw.stop() == 0
    p = gw.cli("escalate", tid)
    assert p.returncode == 1 and "already at the top" in p.stderr, \
        (p.returncode, p.stderr)
    assert len(events(gw.show(tid), "escalated")) == 2


# --- 6: a restart neither loses nor repeats a breach -----------------------

def test_restart_does_not_lose_or_repeat_a_breach(make_gateway,
                                                  make_receiver):
    cust, pager = make_receiver(), make_receiver()
    gw = gateway(make_gateway, fast={"first_response": "6s"},
                 notify_url=pager.url("/pager"),
                 notify_events=("ticket.escalated", "sla.warning",
                                "sla.breached")).start()
    t = new_ticket(gw, "crash-1", reply_url=cust.url("/c"))
    tid = t["ticket"]
    s = wait_event(gw, tid, "sla_warning")
    c = ts(s["created_at"])
    assert_on_time(events(s, "sla_warning")[0], c + 3)
    assert time.time() < c + 5.5, "too slow: the warning came at %s" % \
        events(s, "sla_warning")[0]["at"]
    gw.kill9()                          # before the breach at c + 6

    time.sleep(max(0, c + 7.5 - time.time()))
    s = gw.show(tid)                    # nothing fired while down
    assert sla_events(s) == [("sla_warning", "first_response")], events(s)
    gw.start()
    s = wait_event(gw, tid, "sla_breached")
    time.sleep(2)
    s = gw.show(tid)
    assert sla_events(s) == [("sla_warning", "first_response"),
                             ("sla_breached", "first_response")], events(s)
    breach = events(s, "sla_breached")[0]
    assert breach["detail"]["due"] == rfc(c + 6), breach
    esc, = events(s, "escalated")
    assert (esc["detail"]["from"], esc["detail"]["to"]) == (1, 2), esc
    assert s["level"] == 2, s

    # a clean restart on top of it changes nothing either
    assert gw.stop() == 0
    gw.start()
    time.sleep(2)
    s = gw.show(tid)
    assert sla_events(s) == [("sla_warning", "first_response"),
                             ("sla_breached", "first_response")], events(s)
    assert len(events(s, "escalated")) == 1, events(s)

    wait_until(lambda: len(pager.got()) >= 3, 10, lambda: pager.got())
    wait_until(lambda: len(cust.got()) >= 2, 10, lambda: cust.got())
    time.sleep(1)
    ns = notifications(pager)
    assert ns[0]["event"] == "sla.warning" and sorted(
        n["event"] for n in ns[1:]) == ["sla.breached",
                                        "ticket.escalated"], ns
    assert [k for k, _ in customer_messages(cust, t["ref"])] == \
        ["ack", "escalated"], customer_messages(cust, t["ref"])


# --- 7: a severity raised later lands on its start level -------------------

def test_raised_severity_moves_to_its_start_level(make_gateway):
    """start_level places a severity on its level at once (SPEC.md "SLA
    and escalation semantics"), whether the severity comes from a rule on
    a follow-up or from an agent's `escalon severity`; a severity change
    keeps the clocks' start instants and recomputes their targets."""
    gw = gateway(make_gateway, urgent={"first_response": "15m"}).start()

    # a follow-up whose subject matches the rule raises the severity
    a = new_ticket(gw, "sev-a1", thread="th-a", customer="c-a")
    r = gw.post("shop", webhook_msg("sev-a2", thread="th-a", customer="c-a",
                                    subject="now everything is down"))
    assert r.status == 202 and r.json["ticket"] == a["ticket"], r
    s = gw.show(a["ticket"])
    c = ts(s["created_at"])
    assert (s["severity"], s["sla"], s["level"], s["team"]) == \
        ("critical", "urgent", 2, "tier2"), s
    assert s["due"]["first_response"] == rfc(c + 900), s["due"]
    esc, = events(s, "escalated")
    assert (esc["detail"]["from"], esc["detail"]["to"]) == (1, 2), esc

    # an agent sets it by hand
    b = new_ticket(gw, "sev-b1", customer="c-b")
    gw.ok("severity", b["ticket"], "critical")
    s = gw.show(b["ticket"])
    c = ts(s["created_at"])
    assert (s["severity"], s["sla"]) == ("critical", "urgent"), s
    assert s["due"]["first_response"] == rfc(c + 900), s["due"]
    assert (s["level"], s["team"]) == (2, "tier2"), \
        "escalon severity ID critical left the ticket on level %r (team " \
        "%r); critical starts at level 2. events: %r" % (
            s["level"], s["team"], [(e["type"], e["detail"])
                                    for e in s["events"]])
    esc, = events(s, "escalated")
    assert (esc["detail"]["from"], esc["detail"]["to"]) == (1, 2), esc

    # lowering the severity never lowers the level
    gw.ok("severity", b["ticket"], "low")
    s = gw.show(b["ticket"])
    assert (s["severity"], s["level"]) == ("low", 2), s
