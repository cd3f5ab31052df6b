"""
Crash safety of webhook intake (DESIGN.md: acknowledge only after commit;
dedupe every source). 1,000 distinct signed webhooks from 8 client threads;
the gateway is killed with SIGKILL after about 300 were acknowledged; it is
restarted on the same store and the same 1,000 are posted again. Nothing
acknowledged may be lost, nothing may be stored twice.
"""

import http.client
import json
import signal
import threading
import time

from conftest import SECRET, sign, http_post, webhook_msg

N = 1000
THREADS = 8
KILL_AFTER = 300


def blast(gw, ids, killed):
    """Post every id from 8 threads over keep-alive connections. A
    connection error before `killed` is set retries the id on a fresh
    connection (a server may close an idle keep-alive; a resend is safe, it
    is deduped); after `killed` the thread stops. Returns (threads, {id: 202
    json}, {id: other Response}, [errors], event set at KILL_AFTER acks)."""
    lock = threading.Lock()
    todo = list(ids)
    acked, other, errors = {}, {}, []
    reached = threading.Event()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        try:
            while True:
                with lock:
                    if not todo or len(errors) > 100:
                        return
                    mid = todo.pop()
                body = json.dumps(webhook_msg(mid, customer="c-" + mid,
                                              subject="crash " + mid)).encode()
                try:
                    r = http_post(gw.port, "/hooks/shop", body,
                                  {"X-Escalon-Signature": sign(body, SECRET)},
                                  conn=conn)
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    if killed.is_set():
                        return
                    with lock:
                        errors.append((mid, repr(e)))
                        todo.append(mid)
                    conn = http.client.HTTPConnection("127.0.0.1", gw.port,
                                                      timeout=30)
                    continue
                with lock:
                    if r.status == 202:
                        acked[mid] = r.json
                        if len(acked) >= KILL_AFTER:
                            reached.set()
                    else:
                        other[mid] = r
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(THREADS)]
    for t in threads:
        t.start()
    return threads, acked, other, errors, reached


def test_kill9_loses_nothing_acknowledged(make_gateway):
    gw = make_gateway().start()
    ids = ["crash-%04d" % i for i in range(N)]
    t0 = time.monotonic()

    # pass 1: kill -9 after ~300 acknowledgements
    killed = threading.Event()
    threads, acked1, other1, errors1, reached = blast(gw, ids, killed)
    assert reached.wait(30), \
        "fewer than %d acks in 30 s (%d); other: %r; errors: %r" % (
            KILL_AFTER, len(acked1), list(other1.values())[:3], errors1[:3])
    killed.set()
    gw.kill9()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "client thread hung after the kill"
    assert not other1, "non-202 answers before the kill: %r" % \
        list(other1.items())[:5]
    assert len(acked1) < N, "all %d acknowledged before the kill; the test " \
        "proves nothing" % N
    tickets1 = [a["ticket"] for a in acked1.values()]
    assert len(set(tickets1)) == len(tickets1), \
        "two distinct ids acknowledged with the same ticket"
    assert all(a["duplicate"] is False for a in acked1.values())

    # pass 2: restart on the same store, post all 1,000 again
    gw.start()
    threads, acked2, other2, errors2, _ = blast(gw, ids, threading.Event())
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "client thread hung in pass 2"
    assert len(errors2) <= 100 and set(acked2) | set(other2) == set(ids), \
        "connection errors after restart: %r" % errors2[:5]
    assert not other2, "non-202 after restart: %r" % list(other2.items())[:5]
    assert set(acked2) == set(ids)

    lost = [m for m in acked1 if acked2[m]["ticket"] != acked1[m]["ticket"]]
    assert not lost, "%d acknowledged ids map to another ticket after the " \
        "crash, e.g. %r: %r then %r" % (
            len(lost), lost[0], acked1[lost[0]], acked2[lost[0]])
    not_dup = [m for m in acked1 if acked2[m]["duplicate"] is not True]
    assert not not_dup, "%d ids acknowledged before the crash were not " \
        "duplicates after it, e.g. %r" % (len(not_dup), not_dup[:3])
    by_ticket = {}
    for m, a in acked2.items():
        by_ticket.setdefault(a["ticket"], []).append(m)
    shared = {t: ms for t, ms in by_ticket.items() if len(ms) > 1}
    assert not shared, "distinct ids share tickets: %r" % \
        list(shared.items())[:3]

    print("acknowledged before the kill: %d, after the restart: %d new, "
          "%d duplicates; connection errors retried: %d before the kill, "
          "%d after" % (len(acked1),
                        sum(not a["duplicate"] for a in acked2.values()),
                        sum(a["duplicate"] for a in acked2.values()),
                        len(errors1), len(errors2)))

    # what a user sees: exactly 1,000 tickets, one per id
    lst = gw.tickets()
    assert len(lst) == N, "tickets --json lists %d tickets, want %d" % (
        len(lst), N)
    assert {t["id"] for t in lst} == set(by_ticket)
    subjects = sorted(t["subject"] for t in lst)
    assert subjects == sorted("crash " + m for m in ids)

    # every acknowledged-before-the-kill id is in its ticket
    for m in sorted(acked1):
        t = gw.show(acked1[m]["ticket"])
        mids = [x["message_id"] for x in t["messages"]
                if x["direction"] == "in"]
        assert mids == [m], "ticket %s holds %r, want [%r]" % (
            t["ref"], mids, m)
    assert gw.stop() == 0
    assert time.monotonic() - t0 < 120


def test_sigterm_under_load_keeps_what_it_acknowledged(make_gateway):
    """SIGTERM in the middle of a burst: exit 0, and every message answered
    202 is in the store afterwards."""
    gw = make_gateway().start()
    ids = ["term-%04d" % i for i in range(600)]
    killed = threading.Event()
    threads, acked, other, errors, reached = blast(gw, ids, killed)
    assert reached.wait(30), "fewer than %d acks in 30 s" % KILL_AFTER
    killed.set()
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(20) == 0, gw.stderr()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "client thread hung after SIGTERM"
    assert not any(r.status < 500 for r in other.values()), \
        "answers other than 202 or 5xx during shutdown: %r" % \
        list(other.items())[:5]
    stored = {t["subject"] for t in gw.tickets()}
    missing = sorted(m for m in acked if "crash " + m not in stored)
    assert not missing, "%d messages answered 202 are not stored after " \
        "SIGTERM, e.g. %r" % (len(missing), missing[:5])
