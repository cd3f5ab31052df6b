"""
Crash loop (issue 9; DESIGN.md: acknowledge only after commit, dedupe every
source, transactional outbox). 10,000 distinct mails go into a private
Dovecot in batches over the run and 2,000 distinct signed webhooks are
posted from several keep-alive client threads, while the core is killed
with SIGKILL at random moments (at least 10 times, each restarted at once
on the same store) and its IMAP child is killed with SIGKILL in between (at
least 3 times). The acks and agent notifications go to an SMTP sink
meanwhile.

Afterwards, with everything drained: one ticket per mail Message-ID and per
webhook id, nothing missing, nothing doubled; every webhook answered 202 is
stored under the ticket its answer named; one ack per mail ticket and one
agent notification per ticket were queued, and each reached the sink under
its fixed Message-ID; a mail reached the sink twice only if it was in
flight (`sending` in the store) at a kill, at most once per such kill (the
sender runs up to SENDER_MAX_IN_FLIGHT transfers at once, so one kill may
cost that many repeats); a killed core leaves no child behind; the store
passes PRAGMA integrity_check; the gateway's log across all its lives has
no sanitizer report (conftest).

The kill schedule and the mails are random and seedable: CRASHLOOP_SEED=N
repeats them (the seed is printed first). CRASHLOOP_MAILS,
CRASHLOOP_WEBHOOKS and CRASHLOOP_KILLS override the counts; an ASan build
gets smaller default counts.
"""

import collections
import email
import email.policy
import http.client
import os
import random
import signal
import sqlite3
import threading
import time

from conftest import BIN, sanitized, wait_until, webhook_msg
from peers import (bare_id, dovecot, mail, mailbox_config,  # noqa: F401
                   sink)

SUPPORT = "support@example.test"
HOOK = "shop"
POSTERS = 4
APPENDERS = 2
SENDER_MAX_IN_FLIGHT = 16       # gateway/sender.h: transfers in flight at once
SLOW = "asan" in BIN.lower() or (os.access(BIN, os.R_OK) and sanitized(BIN))


def _count(name, fast, slow):
    return int(os.environ.get(name) or (slow if SLOW else fast))


N_MAILS = _count("CRASHLOOP_MAILS", 10_000, 1_500)
N_HOOKS = _count("CRASHLOOP_WEBHOOKS", 2_000, 400)
CORE_KILLS = max(10, _count("CRASHLOOP_KILLS", 12, 10))
CHILD_KILLS = 4                 # at least 3, each in a different core life
DRAIN_TIMEOUT = 300 if SLOW else 120
APPEND_RATE = 300               # mails/s the load aims at (Dovecot does ~600)
MAX_LIFE = 20                   # seconds: a core life ends by then anyway


# -- the store, read-only ---------------------------------------------------

def query(db, sql, args=()):
    """Rows of sql on a read-only connection; None while there is no store
    yet (the first start has not created it)."""
    if not os.path.exists(db):
        return None
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def scalar(db, sql, args=()):
    rows = query(db, sql, args)
    return rows[0][0] if rows else 0


# -- processes --------------------------------------------------------------

def _stat(pid):
    """(state, ppid, starttime) of pid from /proc, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def children(ppid):
    """The live children of ppid: {pid: starttime}."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st and st[1] == ppid and st[0] != "Z":
                out[int(name)] = st[2]
    return out


def alive(pid, starttime):
    st = _stat(pid)
    return st is not None and st[2] == starttime and st[0] != "Z"


# -- the load ---------------------------------------------------------------

def mail_maker(seed, rng, variants=24):
    """make(i) -> (Message-ID, raw) of mail i: its own customer, subject
    and Message-ID, so it threads with nothing. The variants are real mails
    from peers.mail(): plain text, multipart/alternative, or with a small
    attachment, of varied sizes. Each carries fixed-width placeholders
    (characters outside base64, so no attachment holds one) that make(i)
    fills in: building 10,000 mails one by one would cost seconds of
    Python."""
    num, order = b"#####", b"%%%%%%"
    shapes = []
    for v in range(variants):
        lines = ["Line %d of the report about order %%%%%%%%%%%%, mail "
                 "#####.\n" % k for k in range(rng.randint(1, 60))]
        raw = mail('"Customer #####" <cl#####@example.test>', SUPPORT,
                   "Crash loop #####: order %%%%%%",
                   "Hello,\n\n" + "".join(lines) + "\nThanks\n",
                   message_id="<crashloop-%09d-#####@example.test>" % seed)
        if v % 3:
            m = email.message_from_bytes(raw, policy=email.policy.default)
            if v % 3 == 1:
                m.add_alternative("<html><body><p>%s</p></body></html>"
                                  % "<br>".join(lines), subtype="html")
            else:
                m.add_attachment(rng.randbytes(rng.randint(200, 8000)),
                                 maintype="application",
                                 subtype="octet-stream",
                                 filename="log-#####.bin")
            raw = m.as_bytes(policy=email.policy.SMTP)
        shapes.append(raw)

    def make(i):
        raw = shapes[i % variants].replace(num, b"%05d" % i).replace(
            order, b"%06d" % rng.randrange(10 ** 6))
        return "<crashloop-%09d-%05d@example.test>" % (seed, i), raw
    return make


class Load:
    """Appends the mails from APPENDERS threads (a new IMAP connection
    every 100) and posts the webhooks from POSTERS keep-alive threads, both
    spread over `window` seconds from start() (the webhooks keeping pace
    with the mails). A webhook is posted until it gets a 202 (a connection
    error is retried on a fresh connection); once acknowledged, it is never
    posted again. All of it ends by `deadline` seconds after start(), or at
    stop()."""

    def __init__(self, gw, dovecot, mails, hook_ids, window, deadline):
        self.gw, self.dovecot = gw, dovecot
        self.mails, self.hook_ids = mails, hook_ids
        self.window, self.deadline = window, deadline
        self.lock = threading.Lock()
        self.appended = 0
        self.next_batch = 0         # the first mail of the next batch
        self.acked = {}             # id -> 202 json
        self.other = []             # (id, Response) not 202
        self.conn_errors = 0
        self.posting = 0            # requests on the wire now
        self.errors = []            # exceptions that ended a thread
        self.todo = collections.deque(enumerate(hook_ids))
        self.threads = []
        self.t0 = None
        self.stopped = threading.Event()

    def start(self):
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self._append, daemon=True)
                        for _ in range(APPENDERS)]
        self.threads += [threading.Thread(target=self._post, daemon=True)
                         for _ in range(POSTERS)]
        for t in self.threads:
            t.start()
        return self

    def _wait_slot(self, i, n):
        """Sleep until item i of n is due (spread over the window)."""
        due = self.t0 + self.window * i / max(n, 1)
        now = time.monotonic()
        if due > now:
            self.stopped.wait(due - now)

    def going(self):
        return not self.stopped.is_set() and \
            time.monotonic() < self.t0 + self.deadline

    def _append(self):
        """Take the next 100 mails, append them over one IMAP connection,
        each at its slot in the window; until none are left."""
        try:
            while self.going():
                with self.lock:
                    at = self.next_batch
                    self.next_batch += 100
                if at >= len(self.mails):
                    return
                c = self.dovecot.connect()
                try:
                    for i in range(at, min(at + 100, len(self.mails))):
                        self._wait_slot(i, len(self.mails))
                        if not self.going():
                            return
                        self.dovecot.append(self.mails[i][1], conn=c)
                        with self.lock:
                            self.appended += 1
                finally:
                    c.logout()
        except Exception as e:
            with self.lock:
                self.errors.append(("append", repr(e)))

    def _post(self):
        conn = None
        try:
            while self.going():
                with self.lock:
                    if not self.todo:
                        return
                    i, hid = self.todo.popleft()
                self._wait_slot(i, len(self.hook_ids))
                # ... and not ahead of the mails, so the two go together
                while self.appended < len(self.mails) * i / \
                        len(self.hook_ids) and self.going():
                    self.stopped.wait(0.01)
                msg = webhook_msg(hid, customer="cust-" + hid,
                                  name="Customer " + hid,
                                  subject="Crash loop webhook " + hid,
                                  body="Webhook %s, %d of %d." % (
                                      hid, i, len(self.hook_ids)))
                while self.going():
                    if conn is None:
                        conn = http.client.HTTPConnection(
                            "127.0.0.1", self.gw.port, timeout=30)
                    with self.lock:
                        self.posting += 1
                    try:
                        r = self.gw.post(HOOK, msg, conn=conn)
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = None
                        with self.lock:
                            self.conn_errors += 1
                        self.stopped.wait(0.02)     # the core is down
                        continue
                    finally:
                        with self.lock:
                            self.posting -= 1
                    with self.lock:
                        if r.status == 202:
                            self.acked[hid] = r.json
                        else:
                            self.other.append((hid, r))
                    if r.status == 202 or r.status < 500:
                        break
                    self.stopped.wait(0.05)     # 5xx: try again
        except Exception as e:
            with self.lock:
                self.errors.append(("post", repr(e)))
        finally:
            if conn is not None:
                conn.close()

    def snapshot(self):
        with self.lock:
            return {"appended": self.appended, "acked": len(self.acked),
                    "posting": self.posting}

    def stop(self):
        self.stopped.set()
        self.join(35)

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)


# -- the test ---------------------------------------------------------------

def test_crash_loop_loses_and_doubles_nothing(make_gateway, dovecot, sink,
                                             record_property, request):
    seed = int(os.environ.get("CRASHLOOP_SEED") or
               random.SystemRandom().randrange(1, 10 ** 9))
    print("\ncrashloop: seed %d (CRASHLOOP_SEED=%d repeats this schedule); "
          "%d mails, %d webhooks, %d core kills, %d child kills%s"
          % (seed, seed, N_MAILS, N_HOOKS, CORE_KILLS, CHILD_KILLS,
             " (sanitizer build)" if SLOW else ""))
    rng = random.Random(seed)
    t_begin = time.monotonic()

    make = mail_maker(seed, rng)
    mails = [make(i) for i in range(N_MAILS)]
    mids = {bare_id(m) for m, _ in mails}
    assert len(mids) == N_MAILS
    hook_ids = ["cl-%d-%05d" % (seed, i) for i in range(N_HOOKS)]

    # The kill schedule: core kill k comes once the mails appended reach
    # the fraction marks[k] of all and the core has lived lives[k] seconds
    # (MAX_LIFE at most), so the kills spread over the whole intake at
    # random moments; in CHILD_KILLS lives the IMAP child is killed first,
    # child_at[k] seconds into the life (once per life: within one life the
    # core waits 1 s, then 2 s, 4 s ... before it restarts a child).
    marks = sorted(rng.uniform(0.02, 0.95) for _ in range(CORE_KILLS))
    lives = [rng.uniform(0.5, 2.0) for _ in range(CORE_KILLS)]
    child_lives = set(rng.sample(range(CORE_KILLS), CHILD_KILLS))
    child_at = {k: rng.uniform(0.2, 1.0) for k in child_lives}
    # Half the kills wait (a second at most) for a webhook on the wire, so
    # some land between a request and its answer.
    aim = [rng.random() < 0.5 for _ in range(CORE_KILLS)]
    # Appends and posts are paced over this many seconds (slower if the
    # machine cannot keep up).
    window = max(N_MAILS / APPEND_RATE, 2.5 * CORE_KILLS + 5)

    # One agent in the team: each ticket tells one agent (agent_new), so
    # the sink takes 22,000 mails rather than 34,000 by default (the
    # sink's Python, beside the clients', is what bounds this test's
    # speed).
    g = make_gateway()
    g.write_config(mailbox_config(
        dovecot, sink, g.port, extra="webhook \"%s\" { secret = 's3cret'"
        "  queue = \"general\" }\n" % HOOK).replace(
            'agents = {"alice", "bob"}', 'agents = {"alice"}'))
    db = str(g.dir / "var" / "escalon.db")
    g.start()
    load = Load(g, dovecot, mails, hook_ids, window, window + DRAIN_TIMEOUT)
    load.start()
    request.addfinalizer(load.stop)     # no client outlives a failed test

    kills = []          # what the store and the clients held at each kill
    child_kills = []
    orphans = []

    def core_children(n=1, not_pids=(), timeout=15):
        """The core's live children ({pid: starttime}) once there are n
        that are not in not_pids."""
        def enough():
            ch = {p: s for p, s in children(g.proc.pid).items()
                  if p not in not_pids}
            return ch if len(ch) >= n else None
        return wait_until(enough, timeout, lambda: "the core (pid %d) has "
                          "%r for children, want %d new ones (seed %d):\n%s"
                          % (g.proc.pid, children(g.proc.pid), n, seed,
                             g.stderr()[-3000:]), interval=0.02)

    for k in range(CORE_KILLS):
        born = time.monotonic()
        if k in child_lives:
            time.sleep(child_at[k])
            kids = core_children()
            before = scalar(db, "SELECT count(*) FROM tickets")
            for pid in kids:
                os.kill(pid, signal.SIGKILL)
            child_kills.append({"life": k, "pids": sorted(kids),
                                "tickets": before, **load.snapshot()})
            # The core notices and starts them again: only then it dies.
            core_children(len(kids), not_pids=kids)
        while time.monotonic() < born + MAX_LIFE and (
                time.monotonic() < born + lives[k] or
                load.snapshot()["appended"] < marks[k] * N_MAILS):
            time.sleep(0.01)
        until = time.monotonic() + 1
        while aim[k] and not load.snapshot()["posting"] and \
                time.monotonic() < until:
            time.sleep(0.0005)
        assert g.running(), "the core died by itself (life %d, seed %d):\n%s" \
            % (k, seed, g.stderr()[-5000:])
        kids = children(g.proc.pid)
        snap = load.snapshot()
        g.kill9()
        at = time.monotonic() - t_begin
        rows = query(db, "SELECT state, identity FROM outbox "
                     "WHERE state IN ('sending', 'queued', 'retry')") or []
        rec = {"k": k, "at": round(at, 1),
               "tickets": scalar(db, "SELECT count(*) FROM tickets"),
               "mails_in": scalar(db, "SELECT count(*) FROM messages WHERE "
                                  "direction = 'in' AND dedupe_scope = "
                                  "'email'"),
               "hooks_in": scalar(db, "SELECT count(*) FROM messages WHERE "
                                  "direction = 'in' AND dedupe_scope = ?",
                                  ("webhook:" + HOOK,)),
               "sending": {bare_id(i) for s, i in rows if s == "sending"},
               "outbox_waiting": sum(s != "sending" for s, _ in rows),
               **snap}
        kills.append(rec)
        # PR_SET_PDEATHSIG: a killed core leaves no child behind.
        until = time.monotonic() + 5
        while any(alive(p, s) for p, s in kids.items()) and \
                time.monotonic() < until:
            time.sleep(0.01)
        left_over = [p for p, s in kids.items() if alive(p, s)]
        if left_over:
            orphans.append((k, left_over))
        g.start()

    def kill_line(r):
        return ("kill %d at %.1fs: %d tickets (%d mails of %d appended, %d "
                "webhooks, %d acked, %d posts on the wire), %d outbox rows "
                "sending, %d waiting" % (
                    r["k"], r["at"], r["tickets"], r["mails_in"],
                    r["appended"], r["hooks_in"], r["acked"], r["posting"],
                    len(r["sending"]), r["outbox_waiting"]))
    for r in kills:
        print(kill_line(r))
    for c in child_kills:
        print("child kill in life %d: pids %s at %d tickets (%d appended)"
              % (c["life"], c["pids"], c["tickets"], c["appended"]))
    schedule = "\n".join(map(kill_line, kills))

    # -- drain: every mail, every webhook, every outbound mail ------------
    total = N_MAILS + N_HOOKS

    def progress():
        return ("seed %d: %d of %d tickets, %d of %d mails appended, %d of "
                "%d webhooks acknowledged, outbox %r, sink %d; load errors "
                "%r; other answers %r\n%s\nlog tail:\n%s" % (
                    seed, scalar(db, "SELECT count(*) FROM tickets"), total,
                    load.snapshot()["appended"], N_MAILS, len(load.acked),
                    N_HOOKS, query(db, "SELECT state, count(*) FROM outbox "
                                   "GROUP BY state"), len(sink.all()),
                    load.errors[:3], load.other[:3], schedule,
                    g.stderr()[-4000:]))

    assert load.join(window + DRAIN_TIMEOUT), \
        "client threads hung: " + progress()
    assert not load.errors, progress()
    wait_until(lambda: scalar(db, "SELECT count(*) FROM tickets") >= total,
               DRAIN_TIMEOUT, progress, interval=0.5)
    wait_until(lambda: scalar(db, "SELECT count(*) FROM outbox WHERE state "
                              "IN ('queued', 'sending', 'retry')") == 0,
               DRAIN_TIMEOUT, lambda: "outbox not drained: " + progress(),
               interval=0.5)
    assert g.running(), g.stderr()[-5000:]
    assert g.stop() == 0, "escalon did not exit 0 on SIGTERM after the " \
        "crash loop:\n" + g.stderr()[-5000:]
    seconds = time.monotonic() - t_begin

    # -- the kills landed while work was in flight ------------------------
    busy = [r for r in kills
            if 0 < r["tickets"] < total and
            (r["appended"] > r["mails_in"] or r["posting"] > 0)]
    assert len(busy) >= 0.8 * len(kills), \
        "only %d of %d core kills landed mid-ingest (tickets strictly " \
        "between 0 and %d, mails or webhooks in flight): the test proved " \
        "less than it should\n%s" % (len(busy), len(kills), total, schedule)
    assert len(kills) >= 10 and len(child_kills) >= 3
    assert not orphans, "children of a killed core lived on (life, pids): " \
        "%r" % orphans

    # -- the webhooks ------------------------------------------------------
    assert not [o for o in load.other if o[1].status < 500], \
        "webhooks answered neither 202 nor 5xx: %r" % load.other[:5]
    assert set(load.acked) == set(hook_ids), \
        "%d webhooks never got a 202 (seed %d): %r" % (
            N_HOOKS - len(load.acked), seed,
            sorted(set(hook_ids) - set(load.acked))[:10])

    # -- one ticket per mail and per webhook -------------------------------
    ins = query(db, "SELECT dedupe_scope, dedupe_key, ticket_id FROM messages "
                "WHERE direction = 'in'")
    by_key = collections.defaultdict(list)
    for scope, key, tid in ins:
        by_key[(scope, key)].append(tid)
    doubled = {k: v for k, v in by_key.items() if len(v) > 1}
    assert not doubled, "%d sources stored more than once (seed %d), " \
        "e.g. %r\n%s" % (len(doubled), seed, list(doubled.items())[:5],
                         schedule)
    got_mails = {bare_id(k) for s, k in by_key if s == "email"}
    got_hooks = {k for s, k in by_key if s == "webhook:" + HOOK}
    assert got_mails == mids, \
        "mails missing from the store (seed %d): %r; unexpected: %r\n%s" % (
            seed, sorted(mids - got_mails)[:10],
            sorted(got_mails - mids)[:10], schedule)
    assert got_hooks == set(hook_ids), \
        "webhooks missing (seed %d): %r; unexpected: %r\n%s" % (
            seed, sorted(set(hook_ids) - got_hooks)[:10],
            sorted(got_hooks - set(hook_ids))[:10], schedule)
    hook_ticket = {k: v[0] for (s, k), v in by_key.items()
                   if s == "webhook:" + HOOK}
    moved = {h: (a["ticket"], hook_ticket[h]) for h, a in load.acked.items()
             if a["ticket"] != hook_ticket[h]}
    assert not moved, "acknowledged webhooks stored under another ticket " \
        "than their 202 named (id: (answered, stored)): %r" % \
        list(moved.items())[:5]
    tickets = query(db, "SELECT id, channel FROM tickets")
    per_ticket = collections.Counter(tid for _, _, tid in ins)
    assert len(tickets) == total, \
        "%d tickets for %d mails and %d webhooks (seed %d)" % (
            len(tickets), N_MAILS, N_HOOKS, seed)
    not_one = [(t, c, per_ticket[t]) for t, c in tickets
               if per_ticket[t] != 1]
    assert not not_one, "tickets without exactly one customer message " \
        "(id, channel, messages): %r" % not_one[:10]
    assert collections.Counter(c for _, c in tickets) == \
        {"email": N_MAILS, "webhook": N_HOOKS}

    # -- the outbox: queued once, received, repeated only at a kill -------
    rows = query(db, "SELECT ticket_id, template, channel, recipient, "
                 "identity, state FROM outbox")
    assert {r[5] for r in rows} <= {"sent"}, \
        collections.Counter(r[5] for r in rows)
    email_tickets = {t for t, c in tickets if c == "email"}
    acks = collections.Counter(r[0] for r in rows if r[1] == "ack")
    assert set(acks) == email_tickets and set(acks.values()) == {1}, \
        "not one ack per mail ticket: %d acked tickets, %r" % (
            len(acks), [(t, n) for t, n in acks.items() if n != 1][:5])
    team = collections.Counter(r[0] for r in rows if r[1] == "agent_new")
    assert set(team.values()) == {1} and len(team) == total, \
        "not one agent_new per ticket: %r" % \
        [(t, n) for t, n in team.items() if n != 1][:5]
    outgoing = {bare_id(r[4]): r[3] for r in rows if r[2] == "email"}
    received = collections.defaultdict(list)
    for m in sink.all():
        received[bare_id(str(m["Message-ID"] or ""))].append(m)
    never = [(i, to) for i, to in outgoing.items() if i not in received]
    assert not never, "%d queued mails never reached the sink (seed %d), " \
        "e.g. %r" % (len(never), seed, never[:5])
    stray = [i for i in received if i not in outgoing]
    assert not stray, "the sink got mails the outbox never queued: %r" % \
        stray[:5]
    wrong = [(i, to, received[i][0].rcpts) for i, to in outgoing.items()
             if not all(m.to(to) for m in received[i])]
    assert not wrong, "mails to the wrong recipient: %r" % wrong[:5]
    repeats = {i: len(ms) - 1 for i, ms in received.items() if len(ms) > 1}
    n_repeats = sum(repeats.values())
    in_flight = collections.Counter(i for r in kills for i in r["sending"])
    unexplained = {i: n for i, n in repeats.items() if n > in_flight[i]}
    assert not unexplained, \
        "mails sent more than once that were not in flight at as many " \
        "kills (Message-ID: repeats), seed %d: %r; in flight at kills: %r" \
        % (seed, list(unexplained.items())[:10],
           [len(r["sending"]) for r in kills])
    assert n_repeats <= SENDER_MAX_IN_FLIGHT * len(kills), n_repeats
    # Which kill each repeat belongs to: the sender has up to
    # SENDER_MAX_IN_FLIGHT transfers at once, so one kill may cost several.
    per_kill = [sum(1 for i in r["sending"] if i in repeats) for r in kills]

    # -- the store is sound ------------------------------------------------
    assert query(db, "PRAGMA integrity_check") == [("ok",)]

    record_property("crashloop_seed", seed)
    record_property("crashloop_seconds", round(seconds, 1))
    record_property("crashloop_repeats", n_repeats)
    print("crashloop: seed %d, %d core kills (%d mid-ingest), %d child "
          "kills, %d tickets, %d webhook 202s (%d duplicates, %d connection "
          "errors retried), %d mails to the sink, %d repeats (per kill "
          "%s; in flight per kill %s), %.1f s" % (
              seed, len(kills), len(busy), len(child_kills), len(tickets),
              len(load.acked),
              sum(bool(a.get("duplicate")) for a in load.acked.values()),
              load.conn_errors, len(sink.all()), n_repeats, per_kill,
              [len(r["sending"]) for r in kills], seconds))
