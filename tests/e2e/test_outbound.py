"""
Outbound delivery (SPEC.md "HTTP", "Ticket": the outbox, "Templates"):
acknowledgements and agent replies POSTed to a webhook ticket's reply_url,
notify sections, and the outbox behind them: signed, a stable delivery id
per message, retries with backoff, dead letters, `escalon outbox`, and at
least once across a kill -9.

Every receiver is a real HTTP server on a loopback port (conftest.Receiver).
The store keeps whole seconds, so the configs here retry after 1 s, 2 s.
"""

import http.client
import json
import re
import threading
import time

import pytest

from conftest import (RFC3339_UTC, SECRET, http_post, sign, wait_until,
                      webhook_msg)

NOTIFY_SECRET = "n0tify-s3cret"


def outbox_conf(max_attempts=3, first="1s", most="2s"):
    return ('outbox { retry_first = "%s"  retry_max = "%s"  '
            'max_attempts = %d }\n' % (first, most, max_attempts))


def notify_conf(name, url, events, secret=NOTIFY_SECRET):
    return "notify \"%s\" { url = \"%s\"  secret = '%s'  events = {%s} }\n" % (
        name, url, secret, ", ".join('"%s"' % e for e in events))


def new_ticket(gw, mid, reply_url=None, hook="shop", **extra):
    if reply_url is not None:
        extra["reply_url"] = reply_url
    r = gw.post(hook, webhook_msg(mid, **extra))
    assert r.status == 202, "webhook %s: %r" % (mid, r)
    return r.json


def events_of(gw, tid, kind):
    return [e for e in gw.show(tid)["events"] if e["type"] == kind]


def wait_event(gw, tid, kind, timeout=20, pred=lambda e: True):
    return wait_until(
        lambda: [e for e in events_of(gw, tid, kind) if pred(e)],
        timeout, lambda: "no %s event on ticket %s; events: %r" % (
            kind, tid, gw.show(tid)["events"]))


def wait_row(gw, pred, dead=False, timeout=20, what="outbox row"):
    """Wait for an `outbox [--dead] --json` row with pred(row); return it."""
    args = ("--dead",) if dead else ()

    def find():
        for row in gw.outbox(*args):
            if pred(row):
                return row
        return None
    return wait_until(find, timeout, lambda: "no %s in outbox %s--json: %r"
                      % (what, "--dead " if dead else "", gw.outbox(*args)))


def check_signed(req, secret):
    """The request carries the documented headers and a valid signature
    over the raw body received."""
    assert req.method == "POST", req
    ctype = req.header("Content-Type") or ""
    assert ctype.split(";")[0].strip() == "application/json", req.headers
    got = req.header("X-Escalon-Signature")
    assert got == sign(req.raw, secret), \
        "X-Escalon-Signature %r does not verify over the %d-byte body " \
        "(want %r)" % (got, len(req.raw), sign(req.raw, secret))
    assert isinstance(req.json, dict), "body is not a JSON object: %r" % req
    assert req.header("X-Escalon-Delivery"), req.headers
    assert req.header("X-Escalon-Delivery") == req.json.get("delivery"), \
        "X-Escalon-Delivery %r != body.delivery %r" % (
            req.header("X-Escalon-Delivery"), req.json.get("delivery"))
    return req.json


def check_message(req, ticket, secret=SECRET):
    """An {"event": "message"} POST to a reply_url for this 202 answer."""
    b = check_signed(req, secret)
    want = {"event", "delivery", "ticket", "ref", "subject", "body", "at"}
    assert set(b) >= want, "message body lacks %r: %r" % (want - set(b), b)
    assert b["event"] == "message", b
    assert b["ticket"] == ticket["ticket"], (b, ticket)
    assert b["ref"] == ticket["ref"], (b, ticket)
    assert isinstance(b["body"], str), b
    assert RFC3339_UTC.match(b["at"]), b
    return b


# --- 1, 2: acknowledgement and reply ------------------------------------

def test_ack_is_posted_signed(make_gateway, make_receiver):
    rcv = make_receiver()
    gw = make_gateway(extra=outbox_conf()).start()
    t = new_ticket(gw, "ack-1", reply_url=rcv.url("/support/replies?x=1"))

    req = rcv.wait(1, what="(the ack)")[0]
    assert req.path == "/support/replies?x=1", req
    b = check_message(req, t)
    assert t["ref"] in b["body"], "ack does not mention %s: %r" % (
        t["ref"], b["body"])
    assert "Invoice is wrong" in b["subject"], b
    assert b["delivery"].strip(), b

    # delivered: nothing waits, nothing is dead, no failure on the ticket
    wait_until(lambda: gw.outbox() == [], 10,
               lambda: "outbox not empty after delivery: %r" % gw.outbox())
    assert gw.outbox("--dead") == []
    evs = [e["type"] for e in gw.show(t["ticket"])["events"]]
    assert "delivery_failed" not in evs and "delivery_dead" not in evs, evs
    time.sleep(1.5)
    assert len(rcv.got()) == 1, "ack sent more than once: %r" % rcv.got()


def test_no_reply_url_sends_nothing(make_gateway, make_receiver):
    rcv = make_receiver()
    gw = make_gateway(extra=outbox_conf()).start()
    t = new_ticket(gw, "quiet-1")
    gw.ok("reply", t["ticket"], "--as", "alice", "hello")
    time.sleep(1.5)
    assert gw.outbox() == [] and gw.outbox("--dead") == []
    assert rcv.got() == []


def test_reply_reaches_the_receiver(make_gateway, make_receiver):
    rcv = make_receiver()
    gw = make_gateway(extra=outbox_conf()).start()
    t = new_ticket(gw, "rep-1", reply_url=rcv.url("/r"))
    ack = rcv.wait(1, what="(the ack)")[0]

    text = "We refunded the second charge; it shows in 3-5 days. \u00e9"
    gw.ok("reply", t["ticket"], "--as", "alice", *text.split(" "))
    reqs = rcv.wait(2, what="(ack + reply)")
    rep = reqs[1]
    b = check_message(rep, t)
    assert b["body"] == text, "reply body %r, want %r" % (b["body"], text)
    assert b["delivery"] != ack.json["delivery"], \
        "ack and reply share a delivery id"
    out = [m for m in gw.show(t["ticket"])["messages"]
           if m["direction"] == "out"]
    assert [m["body"] for m in out][-1:] == [text], out
    wait_until(lambda: gw.outbox() == [], 10, "outbox not empty")
    time.sleep(1.5)
    assert len(rcv.got()) == 2, rcv.got()


def test_reply_from_stdin(make_gateway, make_receiver):
    rcv = make_receiver()
    gw = make_gateway(extra=outbox_conf()).start()
    t = new_ticket(gw, "rep-2", reply_url=rcv.url("/r"))
    rcv.wait(1)
    text = "line one\nline two"
    gw.ok("reply", t["ticket"], "--as", "bob", "-", input=text)
    b = check_message(rcv.wait(2)[1], t)
    assert b["body"].rstrip("\n") == text, b


def test_reply_with_no_gateway_goes_out_at_start(make_gateway,
                                                 make_receiver):
    rcv = make_receiver()
    gw = make_gateway(extra=outbox_conf()).start()
    t = new_ticket(gw, "off-1", reply_url=rcv.url("/r"))
    rcv.wait(1)
    assert gw.stop() == 0
    gw.ok("reply", t["ticket"], "--as", "alice", "written", "offline")
    rows = gw.outbox()
    assert len(rows) == 1 and rows[0]["state"] == "queued", rows
    assert rows[0]["template"] == "reply", rows
    time.sleep(1)
    assert len(rcv.got()) == 1, "sent with no gateway running?"
    gw.start()
    req = rcv.wait(2, what="(the offline reply after start)")[1]
    assert check_message(req, t)["body"] == "written offline"
    assert req.header("X-Escalon-Delivery") == rows[0]["identity"]


def get_json(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


# --- 3: receiver down, then up ------------------------------------------

ROW_KEYS = {"id", "ticket", "template", "channel", "recipient", "identity",
            "state", "attempts", "next_attempt_at", "last_error",
            "created_at", "sent_at"}


def test_receiver_down_then_up_delivers_once(make_gateway, make_receiver):
    rcv = make_receiver(start=False)        # port known, nothing listening
    gw = make_gateway(extra=outbox_conf(max_attempts=50)).start()
    t = new_ticket(gw, "down-1", reply_url=rcv.url("/late"))

    row = wait_row(gw, lambda r: r["state"] == "retry" and
                   r["attempts"] >= 1 and r["last_error"],
                   what="row in retry with an error")
    assert set(row) >= ROW_KEYS, "outbox row lacks %r: %r" % (
        ROW_KEYS - set(row), row)
    assert row["ticket"] == t["ticket"], row
    assert row["template"] == "ack", row
    assert row["channel"] == "http", row
    assert row["recipient"] == rcv.url("/late"), row
    assert row["identity"], row
    assert row["sent_at"] is None, row
    for k in ("next_attempt_at", "created_at"):
        assert RFC3339_UTC.match(row[k]), row
    assert isinstance(row["last_error"], str) and row["last_error"], row
    delivery = row["identity"]

    ev = wait_event(gw, t["ticket"], "delivery_failed")[0]
    d = ev["detail"]
    assert d.get("delivery") == delivery, ev
    assert d.get("template") == "ack", ev
    assert d.get("channel") == "http", ev
    assert d.get("attempt", 0) >= 1, ev
    assert d.get("error"), ev
    assert d.get("retry_at") and RFC3339_UTC.match(d["retry_at"]), ev

    # the human listing shows it too
    p = gw.ok("outbox")
    assert str(row["id"]) in p.stdout and rcv.url("/late")[:30] in \
        p.stdout and ("retry" in p.stdout or "sending" in p.stdout), p.stdout

    # /healthz says which transport is down, and why
    health = get_json(gw.port, "/healthz")
    assert health["status"] == "degraded", health
    http_state = health["outbound"]["http"]
    assert http_state["state"] == "failing" and http_state["error"] and \
        http_state["failures"] >= 1, health
    assert RFC3339_UTC.match(http_state["since"]), health
    assert health["outbound"]["pending"] == 1, health
    gw.wait_log(r"destination unreachable.*dest=\"?http://127\.0\.0\.1:%d"
                % rcv.port)

    rcv.start()
    req = rcv.wait(1, delivery=delivery, what="(the retried ack)")[0]
    check_message(req, t)
    wait_until(lambda: gw.outbox() == [], 15,
               lambda: "outbox not empty after delivery: %r" % gw.outbox())
    health = get_json(gw.port, "/healthz")
    assert health["status"] == "ok" and health["outbound"]["http"][
        "state"] == "ok" and health["outbound"]["pending"] == 0, health
    assert gw.outbox("--dead") == []
    time.sleep(3)       # longer than retry_max: any repeat would show
    got = rcv.got()
    assert len(got) == 1 and got[0].header("X-Escalon-Delivery") == delivery, \
        "want exactly one POST with delivery %s, got %r" % (delivery, got)


def test_an_unreachable_receiver_holds_its_queue_not_the_others(
        make_gateway, make_receiver):
    """Thirty messages for a receiver that is down do not each fail on
    their own: after the first failures the destination is held (as an MTA
    defers a dead host), its rows wait with the reason as last_error, a
    receiver that is up is served meanwhile, and once the receiver is back
    every message arrives once."""
    down = make_receiver(start=False)
    up = make_receiver()
    gw = make_gateway(extra=outbox_conf(max_attempts=50, first="2s",
                                        most="2s")).start()
    tickets = [new_ticket(gw, "held-%d" % i, reply_url=down.url("/d"))
               for i in range(30)]
    gw.wait_log(r"destination unreachable, its messages wait.*"
                r"dest=\"?http://127\.0\.0\.1:%d" % down.port)
    other = new_ticket(gw, "served", reply_url=up.url("/u"))
    up.wait(1, what="(the ack of the receiver that is up)")

    # The held rows say why they wait; few of them were tried at all.
    rows = wait_row(gw, lambda r: "unreachable" in (r["last_error"] or ""),
                    what="a held row")
    assert rows["recipient"] == down.url("/d"), rows
    tried = sum(len(events_of(gw, t["ticket"], "delivery_failed"))
                for t in tickets)
    assert tried <= 16 + 2, "%d delivery attempts for 30 held rows" % tried

    # After a restart the 30 rows are due at once, and 16 go out together.
    # Those in flight when the hold began do not lengthen it: one line per
    # hold, not one per failed row (each hold lasts 2 s here).
    gw.stop()
    gw.start()

    def since_restart():
        return gw.stderr().split("--- start 2 ---", 1)[-1]
    wait_until(lambda: "destination unreachable" in since_restart(), 15,
               "the hold after the restart")
    time.sleep(1)
    after = since_restart()
    holds = re.findall(r"ts=(\S+) .*destination unreachable.*failures=(\d+)",
                       after)
    assert holds and holds[0][1] == "1", holds
    stamps = [ts for ts, _ in holds]
    assert len(stamps) == len(set(stamps)), holds

    down.start()
    down.wait(30, timeout=30, what="(the held acks)")
    wait_until(lambda: gw.outbox() == [], 15,
               lambda: "outbox not empty: %r" % gw.outbox())
    gw.wait_log(r"destination reachable again")
    time.sleep(2.5)     # a repeat would show within one retry
    got = [r.header("X-Escalon-Delivery") for r in down.got()]
    assert len(got) == 30 and len(set(got)) == 30, got
    assert other["ticket"] not in {t["ticket"] for t in tickets}


def test_a_send_cut_by_a_crash_counts_as_an_attempt(make_gateway):
    """A receiver that takes the request and never answers keeps the row
    `sending`. A clean stop puts it back without counting; a crash counts
    the cut attempt, so a message whose sending kills the gateway every
    time ends as a dead letter at max_attempts instead of looping."""
    import socket
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)                 # connects, never answers
    url = "http://127.0.0.1:%d/hang" % hang.getsockname()[1]
    try:
        gw = make_gateway(extra=outbox_conf(max_attempts=2, first="1s",
                                            most="1s")).start()
        new_ticket(gw, "cut-1", reply_url=url)
        sending = lambda r: r["state"] == "sending" and r["recipient"] == url
        wait_row(gw, sending, what="the ack being sent")
        assert gw.stop() == 0
        gw.start()
        row = wait_row(gw, sending, what="the ack sent again")
        assert row["attempts"] == 0, row

        gw.kill9()
        gw.start()
        wait_row(gw, lambda r: sending(r) and r["attempts"] == 1,
                 what="the ack sent again, the cut attempt counted")
        gw.kill9()
        gw.start()
        dead = wait_row(gw, lambda r: r["recipient"] == url, dead=True,
                        what="the ack as a dead letter")
        assert dead["attempts"] == 2, dead
        assert dead["last_error"] == "the gateway stopped while sending it", \
            dead
        assert gw.outbox() == [], gw.outbox()
    finally:
        hang.close()


# --- 4, 5: dead letters ---------------------------------------------------

def test_500_forever_goes_dead_then_retry_by_hand(make_gateway,
                                                  make_receiver):
    rcv = make_receiver(status=500)
    gw = make_gateway(extra=outbox_conf(max_attempts=3)).start()
    t = new_ticket(gw, "dead-1", reply_url=rcv.url("/fail"))

    row = wait_row(gw, lambda r: r["ticket"] == t["ticket"], dead=True,
                   timeout=30, what="dead row")
    assert row["state"] == "dead", row
    assert row["attempts"] == 3, row
    assert "500" in (row["last_error"] or ""), row
    assert row["sent_at"] is None, row
    assert gw.outbox() == [], "a dead row is still listed as waiting"
    got = rcv.got()
    assert len(got) == 3, "want 3 attempts, receiver got %r" % got
    assert {r.header("X-Escalon-Delivery") for r in got} == \
        {row["identity"]}, "the delivery id changed between attempts"
    assert len({r.raw for r in got}) == 1, "the body changed between attempts"
    for r in got:
        check_message(r, t)
    # backoff: 1 s then 2 s (whole seconds in the store)
    span = got[-1].at - got[0].at
    assert span >= 1.9, "3 attempts within %.2fs: no backoff" % span

    failed = events_of(gw, t["ticket"], "delivery_failed")
    dead = wait_event(gw, t["ticket"], "delivery_dead")
    assert len(dead) == 1, dead
    assert [e["detail"].get("attempt") for e in failed] == [1, 2], failed
    dd = dead[0]["detail"]
    assert dd.get("delivery") == row["identity"], dd
    assert dd.get("attempt") == 3, dd
    assert "500" in (dd.get("error") or ""), dd
    assert dd.get("retry_at") is None, dd
    assert dd.get("template") == "ack" and dd.get("channel") == "http", dd

    time.sleep(2.5)
    assert len(rcv.got()) == 3, "a dead row was attempted again"

    rcv.set_status(200)
    p = gw.ok("outbox", "--retry", row["id"])
    assert p.stdout.strip(), "outbox --retry printed nothing"
    req = rcv.wait(4, timeout=10, what="(the hand retry)")[3]
    assert req.header("X-Escalon-Delivery") == row["identity"]
    assert req.raw == got[0].raw
    check_message(req, t)
    wait_until(lambda: gw.outbox("--dead") == [] and gw.outbox() == [], 10,
               lambda: "after delivery: outbox %r, dead %r" % (
                   gw.outbox(), gw.outbox("--dead")))
    time.sleep(1.5)
    assert len(rcv.got()) == 4, rcv.got()


def test_dead_row_retried_offline_goes_out_at_start(make_gateway,
                                                    make_receiver):
    rcv = make_receiver(status=503)
    gw = make_gateway(extra=outbox_conf(max_attempts=2)).start()
    t = new_ticket(gw, "dead-2", reply_url=rcv.url("/fail"))
    row = wait_row(gw, lambda r: True, dead=True, timeout=30)
    assert row["attempts"] == 2, row
    assert gw.stop() == 0
    rcv.set_status(200)

    p = gw.cli("outbox", "--retry", row["id"])
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    rows = gw.outbox()
    assert [(r["id"], r["state"], r["attempts"]) for r in rows] == \
        [(row["id"], "queued", 0)], rows
    assert gw.outbox("--dead") == []
    time.sleep(1)
    assert len(rcv.got()) == 2
    gw.start()
    req = rcv.wait(3, what="(the requeued row after start)")[2]
    assert req.header("X-Escalon-Delivery") == row["identity"]
    check_message(req, t)
    wait_until(lambda: gw.outbox() == [], 10, "outbox not empty")


@pytest.mark.parametrize("status", [400, 404, 410])
def test_4xx_is_dead_at_once(make_gateway, make_receiver, status):
    rcv = make_receiver(status=status)
    gw = make_gateway(extra=outbox_conf(max_attempts=5)).start()
    t = new_ticket(gw, "gone-1", reply_url=rcv.url("/gone"))
    row = wait_row(gw, lambda r: True, dead=True, what="dead row")
    assert row["state"] == "dead" and row["attempts"] == 1, row
    assert str(status) in (row["last_error"] or ""), row
    dead = wait_event(gw, t["ticket"], "delivery_dead")
    assert dead[0]["detail"].get("attempt") == 1, dead
    assert gw.outbox() == []
    time.sleep(2.5)
    assert len(rcv.got()) == 1, "a permanent refusal was retried: %r" % \
        rcv.got()


@pytest.mark.parametrize("status", [408, 425, 429, 502])
def test_temporary_statuses_are_retried(make_gateway, make_receiver, status):
    answers = iter([status])
    rcv = make_receiver(status=lambda req: next(answers, 200))
    gw = make_gateway(extra=outbox_conf(max_attempts=5)).start()
    t = new_ticket(gw, "tmp-1", reply_url=rcv.url("/t"))
    reqs = rcv.wait(2, what="(a retry after HTTP %d)" % status)
    assert reqs[0].header("X-Escalon-Delivery") == \
        reqs[1].header("X-Escalon-Delivery")
    ev = wait_event(gw, t["ticket"], "delivery_failed")[0]
    assert str(status) in ev["detail"].get("error", ""), ev
    wait_until(lambda: gw.outbox() == [], 10, "outbox not empty")
    assert gw.outbox("--dead") == []


# --- 6: kill -9 with 500 queued -------------------------------------------

N_CRASH = 500


def post_many(gw, rcv, n, threads=8):
    """Post n webhook tickets with reply_urls from parallel keep-alive
    connections; returns {mid: 202 json}."""
    lock = threading.Lock()
    todo = ["crash-%03d" % i for i in range(n)]
    acked, bad = {}, []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        try:
            while True:
                with lock:
                    if not todo or len(bad) > 20:
                        return
                    mid = todo.pop()
                body = json.dumps(webhook_msg(
                    mid, customer="c-" + mid, subject="crash " + mid,
                    reply_url=rcv.url("/r/" + mid))).encode()
                try:
                    r = http_post(gw.port, "/hooks/shop", body,
                                  {"X-Escalon-Signature": sign(body)},
                                  conn=conn)
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", gw.port,
                                                      timeout=30)
                    with lock:
                        bad.append((mid, repr(e)))
                        todo.append(mid)
                    continue
                with lock:
                    if r.status == 202:
                        acked[mid] = r.json
                    else:
                        bad.append((mid, r))
        finally:
            conn.close()

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(60)
    assert len(acked) == n, "%d of %d acknowledged; problems: %r" % (
        len(acked), n, bad[:5])
    return acked


def test_kill9_with_500_queued_delivers_all(make_gateway, make_receiver):
    t0 = time.monotonic()
    rcv = make_receiver(start=False)
    gw = make_gateway(extra=outbox_conf(max_attempts=1000)).start()
    acked = post_many(gw, rcv, N_CRASH)

    rows = wait_until(
        lambda: (lambda rs: rs if len(rs) >= N_CRASH else None)(gw.outbox()),
        30, lambda: "outbox --json lists %d rows, want %d" % (
            len(gw.outbox()), N_CRASH))
    assert len(rows) == N_CRASH, "more rows than tickets: %d" % len(rows)
    queued = {r["identity"]: r for r in rows}
    assert len(queued) == N_CRASH, "delivery ids are not unique"
    by_ticket = {r["ticket"]: r for r in rows}
    assert set(by_ticket) == {a["ticket"] for a in acked.values()}, \
        "outbox rows do not match the acknowledged tickets"
    gw.kill9()

    rcv.start()
    gw.start()
    wait_until(lambda: {r.header("X-Escalon-Delivery")
                        for r in rcv.got()} >= set(queued), 40,
               lambda: "%d of %d queued deliveries arrived after the "
               "restart" % (len(set(queued) & {r.header("X-Escalon-Delivery")
                                               for r in rcv.got()}),
                            N_CRASH))
    wait_until(lambda: gw.outbox() == [], 15,
               lambda: "outbox not empty: %d rows" % len(gw.outbox()))
    got = rcv.got()
    ids = [r.header("X-Escalon-Delivery") for r in got]
    assert set(ids) == set(queued), "ids received that were never queued: " \
        "%r" % sorted(set(ids) - set(queued))[:5]
    # each arrived where its ticket said, as that ticket's message, signed
    ref_of = {a["ticket"]: (mid, a["ref"]) for mid, a in acked.items()}
    for r in got:
        b = check_signed(r, SECRET)
        row = queued[b["delivery"]]
        mid, ref = ref_of[row["ticket"]]
        assert (b["ticket"], b["ref"], r.path) == \
            (row["ticket"], ref, "/r/" + mid), (r, row)
        assert ref in b["body"], b
    assert gw.outbox("--dead") == []
    dups = len(ids) - len(set(ids))
    print("500 queued, %d POSTs after the restart, %d repeats (same id)"
          % (len(ids), dups))
    assert time.monotonic() - t0 < 60


def test_kill9_with_messages_in_flight(make_gateway, make_receiver):
    """The receiver holds every request it gets, so the sender's transfers
    are in flight (`sending`) when the core is killed: those go out again
    after the restart with the same delivery id, and they are the only
    ones that may arrive twice."""
    release = threading.Event()
    rcv = make_receiver(status=lambda req: 200 if release.wait(30) else 503)
    gw = make_gateway(extra=outbox_conf(max_attempts=1000)).start()
    try:
        n = 100
        acked = post_many(gw, rcv, n)
        rcv.wait(1)
        time.sleep(1.5)                 # let the sender fill its slots
        rows = gw.outbox()
        assert len(rows) == n, "outbox lists %d rows, want %d" % (
            len(rows), n)
        sending = {r["identity"] for r in rows if r["state"] == "sending"}
        held = {r.header("X-Escalon-Delivery") for r in rcv.got()}
        assert held, "nothing in flight"
        assert held == sending, "held by the receiver %r, sending in the " \
            "store %r" % (sorted(held), sorted(sending))
        gw.kill9()
    finally:
        release.set()
    before = len(rcv.got())
    gw.start()
    queued = {r["identity"] for r in rows}
    wait_until(lambda: {r.header("X-Escalon-Delivery")
                        for r in rcv.got()[before:]} >= queued, 30,
               lambda: "%d of %d deliveries arrived after the restart" % (
                   len({r.header("X-Escalon-Delivery")
                        for r in rcv.got()[before:]} & queued), n))
    wait_until(lambda: gw.outbox() == [], 15, "outbox not empty")
    ids = [r.header("X-Escalon-Delivery") for r in rcv.got()]
    assert set(ids) == queued
    twice = {i for i in ids if ids.count(i) > 1}
    assert twice <= held, "sent twice but not in flight at the crash: %r" \
        % sorted(twice - held)[:5]
    assert len(acked) == n
    print("%d in flight at the kill; %d ids arrived twice" % (
        len(held), len(twice)))


def test_sigterm_with_messages_in_flight(make_gateway, make_receiver):
    """SIGTERM while transfers are held by the receiver: exit 0, and what
    was in flight goes out at the next start with the same delivery id."""
    release = threading.Event()
    rcv = make_receiver(status=lambda req: 200 if release.wait(30) else 503)
    gw = make_gateway(extra=outbox_conf(max_attempts=1000)).start()
    try:
        for i in range(5):
            new_ticket(gw, "term-%d" % i, reply_url=rcv.url("/r"),
                       customer="c-%d" % i)
        rcv.wait(5)
        rows = gw.outbox()
        assert {r["state"] for r in rows} == {"sending"}, rows
        assert gw.stop() == 0
    finally:
        release.set()
    queued = {r["identity"] for r in rows}
    waiting = gw.outbox()
    assert {r["identity"] for r in waiting} == queued and \
        "sending" not in {r["state"] for r in waiting}, \
        "after a clean stop, rows in flight are still %r" % waiting
    before = len(rcv.got())
    gw.start()
    wait_until(lambda: {r.header("X-Escalon-Delivery")
                        for r in rcv.got()[before:]} >= queued, 20,
               lambda: "in-flight rows not sent after the restart: %r" %
               gw.outbox())
    wait_until(lambda: gw.outbox() == [], 10, "outbox not empty")


# --- 7: notify ------------------------------------------------------------

NOTIFY_TICKET_KEYS = {"id", "ref", "state", "severity", "queue", "team",
                      "level"}


def check_notify(req, event, ticket, state, secret=NOTIFY_SECRET):
    b = check_signed(req, secret)
    assert set(b) >= {"event", "delivery", "at", "ticket", "detail"}, b
    assert b["event"] == event, b
    assert RFC3339_UTC.match(b["at"]), b
    assert isinstance(b["detail"], dict), b
    tk = b["ticket"]
    assert isinstance(tk, dict) and set(tk) >= NOTIFY_TICKET_KEYS, b
    assert tk["id"] == ticket["ticket"] and tk["ref"] == ticket["ref"], b
    assert tk["state"] == state, b
    assert (tk["severity"], tk["queue"], tk["team"], tk["level"]) == \
        ("normal", "billing", "tier1", 1), b
    assert req.header("X-Escalon-Signature") != sign(req.raw, SECRET), \
        "notify signed with the webhook's secret"
    return b


def test_notify_created_resolved_reopened(make_gateway, make_receiver):
    pager = make_receiver()
    watch = make_receiver()
    gw = make_gateway(extra=outbox_conf() + notify_conf(
        "pager", pager.url("/pager"), ["ticket.created", "ticket.resolved"])
        + notify_conf("watch", watch.url("/watch"), ["ticket.reopened"],
                      secret="w4tch")).start()

    t = new_ticket(gw, "n-1", thread="order-9")
    req = pager.wait(1, what="(ticket.created)")[0]
    assert req.path == "/pager"
    created = check_notify(req, "ticket.created", t, "new")

    p = gw.ok("resolve", t["ticket"], "wrong", "tax", "rate")
    assert p.returncode == 0
    req = pager.wait(2, what="(ticket.resolved)")[1]
    resolved = check_notify(req, "ticket.resolved", t, "resolved")
    assert resolved["delivery"] != created["delivery"]

    # the customer writes again on the thread: reopened, for watch only
    again = new_ticket(gw, "n-2", thread="order-9", body="still wrong")
    assert again["ticket"] == t["ticket"], again
    assert gw.show(t["ticket"])["state"] == "open"
    req = watch.wait(1, what="(ticket.reopened)")[0]
    check_notify(req, "ticket.reopened", t, "open", secret="w4tch")

    # and a second ticket: created again for pager, nothing for watch
    t2 = new_ticket(gw, "n-3", customer="other")
    check_notify(pager.wait(3)[2], "ticket.created", t2, "new")
    time.sleep(2)
    assert [r.json["event"] for r in pager.got()] == \
        ["ticket.created", "ticket.resolved", "ticket.created"], pager.got()
    assert [r.json["event"] for r in watch.got()] == ["ticket.reopened"], \
        watch.got()
    assert gw.outbox() == [] and gw.outbox("--dead") == []


# --- 8: the outbox command ------------------------------------------------

def test_outbox_command_edges(make_gateway):
    gw = make_gateway(extra=outbox_conf())
    for running in (False, True):
        if running:
            gw.start()
        p = gw.cli("outbox", "--retry", "999")
        assert p.returncode == 1, (running, p.returncode, p.stdout, p.stderr)
        assert "999" in p.stderr, "no message naming the id: %r" % p.stderr
        p = gw.cli("outbox")
        assert p.returncode == 0, (running, p.returncode, p.stderr)
        assert gw.cli("outbox", "--dead").returncode == 0
        assert gw.outbox() == [] and gw.outbox("--dead") == []
    p = gw.cli("outbox", "--retry", "abc")
    assert p.returncode == 1 and "abc" in p.stderr, (p.returncode, p.stderr)
    p = gw.cli("outbox", "--bogus")
    assert p.returncode == 1 and "--bogus" in p.stderr, p


def test_retry_a_sent_row_is_refused(make_gateway, make_receiver):
    rcv = make_receiver()
    gw = make_gateway(extra=outbox_conf()).start()
    new_ticket(gw, "sent-1", reply_url=rcv.url("/r"))
    rcv.wait(1)
    wait_until(lambda: gw.outbox() == [], 10, "outbox not empty")
    # the only row there is, id 1, is sent: nothing to requeue
    p = gw.cli("outbox", "--retry", "1")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.strip(), p
    time.sleep(1)
    assert len(rcv.got()) == 1


def test_retry_a_queued_row_with_no_gateway(make_gateway, make_receiver):
    """`outbox --retry` takes a waiting row as well as a dead one; a row
    still queued (written while no gateway runs) stays queued."""
    rcv = make_receiver()
    gw = make_gateway(extra=outbox_conf()).start()
    t = new_ticket(gw, "q-1", reply_url=rcv.url("/r"))
    rcv.wait(1)
    assert gw.stop() == 0
    gw.ok("reply", t["ticket"], "--as", "alice", "queued", "reply")
    row = gw.outbox()[0]
    assert row["state"] == "queued", row
    p = gw.cli("outbox", "--retry", row["id"])
    assert p.returncode in (0, 1), \
        "outbox --retry on a queued row: exit %d\nstdout: %s\nstderr: %s" % (
            p.returncode, p.stdout, p.stderr)
    rows = gw.outbox()
    assert [(r["id"], r["state"]) for r in rows] == [(row["id"], "queued")]
    gw.start()
    req = rcv.wait(2)[1]
    assert req.header("X-Escalon-Delivery") == row["identity"]


def test_retry_a_queued_row_while_running(make_gateway, make_receiver):
    """The sender has SENDER_MAX_IN_FLIGHT (16) transfers held by a slow
    receiver, so later rows wait `queued`; `outbox --retry` on one of them
    must not take the gateway down."""
    release = threading.Event()
    rcv = make_receiver(status=lambda req: 200 if release.wait(20) else 503)
    gw = make_gateway(extra=outbox_conf()).start()
    try:
        for i in range(20):
            new_ticket(gw, "busy-%d" % i, reply_url=rcv.url("/r"),
                       customer="c-%d" % i)
        rcv.wait(16)
        row = wait_row(gw, lambda r: r["state"] == "queued",
                       what="queued row")
        p = gw.cli("outbox", "--retry", row["id"])
        time.sleep(0.5)
        assert gw.running(), "the gateway died on outbox --retry of a " \
            "queued row (exit %r); CLI exit %d, stderr %r" % (
                gw.proc.poll(), p.returncode, p.stderr)
        assert p.returncode in (0, 1), (p.returncode, p.stdout, p.stderr)
    finally:
        release.set()
    wait_until(lambda: len({r.header("X-Escalon-Delivery")
                            for r in rcv.got()}) == 20, 20,
               lambda: "%d of 20 delivered" % len(rcv.got()))


# --- 9: a reload that removes the signing key ----------------------------

def test_reload_removing_the_hook_kills_its_queued_message(make_gateway,
                                                           make_receiver):
    rcv = make_receiver(start=False)
    hooks = {"shop": "billing", "shop2": "general"}
    gw = make_gateway(webhooks=hooks,
                      extra=outbox_conf(max_attempts=50)).start()
    t = new_ticket(gw, "hup-1", hook="shop2", reply_url=rcv.url("/r"))
    row = wait_row(gw, lambda r: r["state"] == "retry",
                   what="row in retry")

    mark = len(gw.stderr())
    gw.write_config(gw.config(webhooks={"shop": "billing"},
                              extra=outbox_conf(max_attempts=50)))
    gw.hup()
    gw.wait_log("config reloaded", since=mark)
    rcv.start()
    dead = wait_row(gw, lambda r: r["id"] == row["id"], dead=True,
                    what="dead row after the reload")
    err = dead["last_error"] or ""
    assert "signing key" in err and "no longer configured" in err, dead
    ev = wait_event(gw, t["ticket"], "delivery_dead")[0]
    assert "signing key" in ev["detail"].get("error", ""), ev
    assert rcv.got() == [], "sent unsigned or with a stale key: %r" % \
        rcv.got()
    assert gw.running()
