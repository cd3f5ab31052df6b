"""
Faults (issue 9): one gateway on every channel at once while its servers
fail one after the other, and a store that runs out of disk.

A. The gateway reads a Dovecot mailbox and a Prosody account, takes a
   webhook, sends mail to an SMTP sink and POSTs to a webhook customer's
   reply_url. Dovecot, Prosody, the sink and the receiver are stopped in
   turn and started again. While one is down the others keep working,
   /healthz and the log say what is down, and afterwards everything that
   was sent or written meanwhile has arrived exactly once.

B. The store sits on a small tmpfs that a filler file fills up: no webhook
   is answered 202 unless its ticket is in the store, the refused ones get
   an error status and body, /healthz and the log say why, and mail that
   could not be stored stays behind the IMAP checkpoint until space comes
   back (the filler is deleted).

test_imap.py and test_chat.py hold the single-restart tests; this file is
the combined run. Waits are on conditions; the few fixed sleeps give a
duplicate the time to show up.
"""

import errno
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import RFC3339_UTC, wait_until, webhook_msg
from peers import (SUPPORT_JID, chat_customer, dovecot,  # noqa: F401
                   mail, mailbox_config, message_id, prosody, sink)
from peers import bare_id, ins, wait_ticket

SUPPORT = "support@example.test"
T = 20              # seconds for a thing that should happen soon
RECONNECT = 30      # seconds for a channel child to log in again
MAILBOX = "mailbox:support"
XMPP = "xmpp:chat"
UP = ("idle", "polling", "online")     # intake.c: the states that are up
HOOK = "shop"


# -- helpers ---------------------------------------------------------------

def healthz(g):
    """GET /healthz as JSON, whatever the status (503 when the store is
    not ok)."""
    c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    try:
        h = json.loads(raw)
    except ValueError:
        raise AssertionError("/healthz is not JSON (%d): %r" % (r.status,
                                                                raw[:300]))
    h["_http_status"] = r.status
    return h


def channel(h, name):
    """The /healthz channels entry of name."""
    for c in h.get("channels") or []:
        if c.get("name") == name:
            return c
    raise AssertionError("no %s in /healthz channels: %r" % (name, h))


def wait_channel(g, name, up, timeout=T):
    """Wait until /healthz shows channel name up (or not up); return the
    whole answer."""
    def ok():
        h = healthz(g)
        return h if (channel(h, name)["state"] in UP) == up else None
    return wait_until(ok, timeout, lambda: "/healthz: %s not %s: %r" % (
        name, "up" if up else "down", healthz(g)))


def outbound(h, transport):
    """/healthz outbound.<transport> (smtp, http, xmpp)."""
    o = h.get("outbound")
    assert isinstance(o, dict), "/healthz has no outbound object: %r" % h
    assert isinstance(o.get(transport), dict), \
        "/healthz outbound has no %s: %r" % (transport, o)
    return o[transport]


def wait_outbound(g, transport, state, timeout=T):
    def ok():
        h = healthz(g)
        return h if outbound(h, transport).get("state") == state else None
    return wait_until(ok, timeout, lambda: "/healthz outbound.%s not %r: "
                      "%r" % (transport, state, healthz(g)))


def check_failing(h, transport):
    """outbound.<transport> says failing, why and since when."""
    o = outbound(h, transport)
    assert o["state"] == "failing", h
    assert isinstance(o.get("error"), str) and o["error"].strip(), h
    assert isinstance(o.get("since"), str) and RFC3339_UTC.match(
        o["since"]), h
    assert isinstance(h["outbound"].get("pending"), int) and \
        h["outbound"]["pending"] >= 1, h
    assert isinstance(h["outbound"].get("dead"), int), h


def accepted(r, what):
    assert r.status == 202, "%s: want 202, got %r" % (what, r)
    assert isinstance(r.json, dict) and isinstance(r.json.get("ticket"),
                                                   int), r
    return r.json


def hook_message(g, tid, mid):
    """The `in` messages of ticket tid carrying webhook id mid."""
    return [m for m in ins(g, tid) if m.get("message_id") == mid]


def all_in(g):
    """[(ticket id, message)] of every customer message in the store."""
    out = []
    for t in g.tickets():
        out += [(t["id"], m) for m in ins(g, t["id"])]
    return out


def log_mark(g):
    return len(g.stderr())


def since(g, mark):
    return g.stderr()[mark:]


def maildir_drop(d, raw, user="support"):
    """Deliver raw into the user's Maildir as a local delivery agent
    would (tmp/ then rename into new/) while Dovecot is not running; it
    finds the mail at its next start."""
    base = os.path.join(d.dir, "mail", user, "Maildir")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
        if os.geteuid() == 0:
            os.chown(os.path.join(base, sub), d.uid, d.gid)
    name = "%d.M%sP%d.escalon-faults" % (time.time(), os.urandom(4).hex(),
                                         os.getpid())
    tmp = os.path.join(base, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(raw)
    if os.geteuid() == 0:
        os.chown(tmp, d.uid, d.gid)
    os.rename(tmp, os.path.join(base, "new", name))


def all_channels_config(g, dovecot, sink, prosody):
    """mailbox_config (IMAP on dovecot, SMTP to sink, a 1-2 s outbox
    retry) plus the xmpp account on prosody and webhook "shop"."""
    extra = f"""
xmpp "chat" {{
  jid = "{SUPPORT_JID}"  password = 'secret'
  host = "127.0.0.1"  port = {prosody.c2s_port}  tls = "none"
  queue = "general"
}}
webhook "{HOOK}" {{ secret = 's3cret'  queue = "general" }}
"""
    return mailbox_config(dovecot, sink, g.port, poll_interval="2s",
                          extra=extra)


# -- A. every server goes away in turn ---------------------------------------

class Run:
    """What the combined run sent, to check at the end."""

    def __init__(self, g, dovecot, sink, rcv, erika):
        self.g, self.dovecot, self.sink, self.rcv = g, dovecot, sink, rcv
        self.erika = erika
        self.hooks = {}         # webhook id -> ticket id (202)
        self.mails = {}         # subject -> Message-ID
        self.chats = []         # chat bodies erika sent
        self.replies = {"email": [], "chat": [], "webhook": []}
        self.t_mail = self.t_chat = self.t_hook = None

    # customers write
    def webhook(self, tag):
        mid = "fault-%s" % tag
        r = self.g.post(HOOK, webhook_msg(mid, subject="Hook %s" % tag,
                                          body="Webhook during %s." % tag,
                                          reply_url=self.rcv.url("/back")))
        tid = accepted(r, "webhook %s" % mid)["ticket"]
        self.hooks[mid] = tid
        # 202 after commit: the ticket is there now, not later.
        assert len(hook_message(self.g, tid, mid)) == 1, \
            self.g.show(tid)["messages"]
        return tid

    def mail(self, tag, append=True):
        subject = "Mail %s" % tag
        raw = mail('"Cust %s" <%s@example.test>' % (tag, tag.lower()),
                   SUPPORT, subject, "Mail during %s.\n" % tag)
        self.mails[subject] = bare_id(message_id(raw))
        if append:
            self.dovecot.append(raw)
        else:
            maildir_drop(self.dovecot, raw)
        return subject

    def chat(self, tag):
        body = "Chat during %s" % tag
        self.erika.send(SUPPORT_JID, body)
        self.chats.append(body)
        return body

    # agents answer
    def reply(self, kind, tag):
        tid = {"email": self.t_mail, "chat": self.t_chat,
               "webhook": self.t_hook}[kind]
        text = "Reply %s to the %s ticket" % (tag, kind)
        self.g.ok("reply", tid, "--as", "alice", text)
        self.replies[kind].append(text)
        return text

    # what arrived
    def mails_with(self, text):
        return self.sink.find(lambda m: text in m.body())

    def posts_with(self, text):
        return [r for r in self.rcv.got()
                if r.json and text in (r.json.get("body") or "")]

    def chats_with(self, text):
        return self.erika.find(lambda c: c.bare == SUPPORT_JID and
                               text in c.body)

    def wait_delivered(self, kind, text, timeout=T):
        fn = {"email": self.mails_with, "chat": self.chats_with,
              "webhook": self.posts_with}[kind]
        return wait_until(lambda: fn(text), timeout,
                          lambda: "%r never reached the %s customer" % (
                              text, kind))

    def wait_chat_recorded(self, body, timeout=T):
        return wait_until(
            lambda: [m for m in ins(self.g, self.t_chat) if body in
                     m["body"]], timeout,
            lambda: "chat %r not on ticket %s: %r" % (
                body, self.t_chat, ins(self.g, self.t_chat)))


def test_servers_fail_in_turn_and_everything_arrives_once(
        dovecot, sink, prosody, chat_customer, make_gateway, make_receiver,
        record_property):
    t0 = time.monotonic()
    rcv = make_receiver()
    erika = chat_customer(prosody, "erika", "pw")
    g = make_gateway()
    g.write_config(all_channels_config(g, dovecot, sink, prosody))
    g.start()
    prosody.wait_online(SUPPORT_JID, T)
    run = Run(g, dovecot, sink, rcv, erika)

    # Everything works: one ticket per channel, each acknowledged.
    run.t_hook = run.webhook("start")
    run.t_mail = wait_ticket(g, run.mail("start"), T)["id"]
    run.chat("start")
    run.t_chat = wait_until(
        lambda: [t["id"] for t in g.tickets() if t["channel"] == "chat"],
        T, lambda: "no chat ticket: %r" % g.tickets())[0]
    rcv.wait(1, what="(the ack of the first webhook)")
    sink.wait_for(lambda m: m.to("start@example.test"), T, what="ack")
    erika.wait_for(lambda c: c.bare == SUPPORT_JID and
                   ("ESC-%d" % run.t_chat) in c.body, T, what="chat ack")
    h = wait_channel(g, MAILBOX, True)
    h = wait_channel(g, XMPP, True)
    assert h["status"] == "ok", h

    # -- 1. Dovecot goes away ---------------------------------------------
    mark = log_mark(g)
    dovecot.stop()
    h = wait_channel(g, MAILBOX, False)
    assert h["status"] == "degraded", h
    assert channel(h, XMPP)["state"] in UP, h
    g.wait_log(r"level=warn.*child=\"?%s" % re.escape(MAILBOX), T,
               since=mark)
    # The MTA still delivers into the Maildir while IMAP is down.
    late = run.mail("dovecot-down", append=False)
    tid = run.webhook("dovecot-down")
    chat1 = run.chat("dovecot-down")
    run.wait_chat_recorded(chat1)
    for kind in ("email", "chat", "webhook"):
        run.wait_delivered(kind, run.reply(kind, "dovecot-down"))
    wait_until(lambda: [r for r in rcv.got() if r.json and
                        r.json.get("ticket") == tid], T,
               "no ack POSTed for the webhook sent while Dovecot is down")
    # Down for a while: until the gateway has failed to reconnect and
    # backs off for 4 s.
    g.wait_log(r'msg="mailbox reconnects".*in_ms=4000', T, since=mark)
    dovecot.start()
    wait_ticket(g, late, RECONNECT)
    wait_channel(g, MAILBOX, True, RECONNECT)

    # -- 2. Prosody goes away ---------------------------------------------
    mark = log_mark(g)
    sessions = erika.sessions
    prosody.stop()
    h = wait_channel(g, XMPP, False)
    assert h["status"] == "degraded", h
    assert channel(h, MAILBOX)["state"] in UP, h
    g.wait_log(r"level=warn.*child=\"?%s" % re.escape(XMPP), T,
               since=mark)
    queued_chat = run.reply("chat", "prosody-down")
    run.webhook("prosody-down")
    wait_ticket(g, run.mail("prosody-down"), T)
    for kind in ("email", "webhook"):
        run.wait_delivered(kind, run.reply(kind, "prosody-down"))
    h = wait_outbound(g, "xmpp", "failing")
    check_failing(h, "xmpp")
    g.wait_log(r'msg="chat account reconnects".*in_ms=4000', T, since=mark)
    prosody.start()
    erika.wait_online(RECONNECT, after=sessions)
    # Sent while the gateway is (most likely) still backing off: it waits
    # in Prosody (offline storage, archive).
    record_property("chat_sent_with_gateway_offline",
                    not prosody.sessions(SUPPORT_JID))
    chat2 = run.chat("prosody-restart")
    run.wait_chat_recorded(chat2, RECONNECT)
    run.wait_delivered("chat", queued_chat, RECONNECT)
    wait_channel(g, XMPP, True, RECONNECT)

    # -- 3. the SMTP server goes away -------------------------------------
    mark = log_mark(g)
    sink.stop()
    queued_mail = run.reply("email", "smtp-down")
    smtp_ack = run.mail("smtp-down")
    wait_ticket(g, smtp_ack, T)
    run.webhook("smtp-down")
    run.wait_chat_recorded(run.chat("smtp-down"))
    for kind in ("chat", "webhook"):
        run.wait_delivered(kind, run.reply(kind, "smtp-down"))
    h = wait_outbound(g, "smtp", "failing")
    check_failing(h, "smtp")
    assert channel(h, MAILBOX)["state"] in UP, h
    # The log names the transport and the server that fails.
    g.wait_log(r"level=(warn|error).*smtp.*127\.0\.0\.1(:| port )%d\b"
               % sink.port, T, since=mark)
    # Down for a while: the queued mail has been tried twice.
    g.wait_log(r"level=warn.*channel=email.*attempt=2", T, since=mark)
    sink.start()
    run.wait_delivered("email", queued_mail, RECONNECT)
    sink.wait_for(lambda m: m.to("smtp-down@example.test"), RECONNECT,
                  what="the ack queued while SMTP was down")
    wait_outbound(g, "smtp", "ok")

    # -- 4. the webhook customer's receiver goes away ---------------------
    mark = log_mark(g)
    rcv.stop()
    queued_post = run.reply("webhook", "receiver-down")
    hook_down = run.webhook("receiver-down")
    wait_ticket(g, run.mail("receiver-down"), T)
    run.wait_chat_recorded(run.chat("receiver-down"))
    for kind in ("email", "chat"):
        run.wait_delivered(kind, run.reply(kind, "receiver-down"))
    h = wait_outbound(g, "http", "failing")
    check_failing(h, "http")
    g.wait_log(r"level=(warn|error).*http.*127\.0\.0\.1(:| port )%d\b"
               % rcv.port, T, since=mark)
    g.wait_log(r"level=warn.*channel=http.*attempt=2", T, since=mark)
    rcv.start()
    run.wait_delivered("webhook", queued_post, RECONNECT)
    wait_until(lambda: [r for r in rcv.got() if r.json and
                        r.json.get("ticket") == hook_down], RECONNECT,
               "the ack queued while the receiver was down")
    wait_outbound(g, "http", "ok")

    # -- everything once --------------------------------------------------
    wait_until(lambda: g.outbox() == [], T,
               lambda: "outbox not empty at the end: %r" % g.outbox())
    time.sleep(2.5)             # longer than retry_max: a repeat would show
    assert g.outbox("--dead") == [], g.outbox("--dead")
    problems = []

    # Customer messages: one ticket per webhook id and mail, each chat on
    # the chat ticket once.
    got = all_in(g)
    for mid, tid in run.hooks.items():
        n = [t for t, m in got if m.get("message_id") == mid]
        if n != [tid]:
            problems.append("webhook %s stored on %r, want [%d]" % (
                mid, n, tid))
    for subject, mid in run.mails.items():
        n = [t for t, m in got if bare_id(m.get("message_id")) == mid]
        if len(n) != 1:
            problems.append("mail %r (%s) stored %d times: %r" % (
                subject, mid, len(n), n))
    for body in run.chats:
        n = [t for t, m in got if body in (m.get("body") or "")]
        if n != [run.t_chat]:
            problems.append("chat %r stored on %r, want [%d]" % (
                body, n, run.t_chat))
    want_tickets = len(run.hooks) + len(run.mails) + 1
    if len(g.tickets()) != want_tickets:
        problems.append("%d tickets, want %d: %r" % (
            len(g.tickets()), want_tickets,
            [(t["id"], t["subject"]) for t in g.tickets()]))

    # What went out: once per Message-ID / delivery id / stanza id, and
    # each reply once.
    ids = [bare_id(str(m["Message-ID"])) for m in sink.all()]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        problems.append("mails sent twice: %r" % dup)
    for subject in run.mails:
        addr = "%s@example.test" % subject.split(" ", 1)[1].lower()
        acks = sink.find(lambda m, a=addr: m.to(a) and not any(
            t in m.body() for t in run.replies["email"]))
        if len(acks) != 1:
            problems.append("%d acks to %s: %r" % (len(acks), addr, acks))
    dels = [r.header("X-Escalon-Delivery") for r in rcv.got()]
    dup = sorted({d for d in dels if dels.count(d) > 1})
    if dup:
        problems.append("POSTs delivered twice: %r" % dup)
    for mid, tid in run.hooks.items():
        acks = [r for r in rcv.got() if r.json and r.json.get("ticket") ==
                tid and not any(t in r.json.get("body", "")
                                for t in run.replies["webhook"])]
        if len(acks) != 1:
            problems.append("%d acks POSTed for %s (ticket %d)" % (
                len(acks), mid, tid))
    sids = [c.id for c in erika.all() if c.bare == SUPPORT_JID and
            c.has_body]
    dup = sorted({s for s in sids if sids.count(s) > 1})
    if dup:
        problems.append("chat messages received twice: %r" % dup)
    chat_acks = [c for c in erika.all() if c.bare == SUPPORT_JID and
                 ("ESC-%d" % run.t_chat) in c.body and not any(
                     t in c.body for t in run.replies["chat"])]
    if len(chat_acks) != 1:
        problems.append("%d chat acks: %r" % (len(chat_acks), chat_acks))
    for kind, fn in (("email", run.mails_with), ("chat", run.chats_with),
                     ("webhook", run.posts_with)):
        for text in run.replies[kind]:
            if len(fn(text)) != 1:
                problems.append("%r reached the customer %d times" % (
                    text, len(fn(text))))
    assert not problems, "\n".join(problems)

    h = healthz(g)
    assert h["status"] == "ok", h
    for t in ("smtp", "http", "xmpp"):
        assert outbound(h, t)["state"] in ("ok", "unused"), h
    assert h["outbound"]["pending"] == 0 and h["outbound"]["dead"] == 0, h
    assert g.running(), g.stderr()[-3000:]
    record_property("fault_run_s", round(time.monotonic() - t0, 1))


# -- B. the store's disk fills up --------------------------------------------

@pytest.fixture
def small_disk():
    """A 64 MiB tmpfs mounted on a fresh folder; unmounted afterwards.
    Skips when mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    d = tempfile.mkdtemp(prefix="escalon-fullstore-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755",
                        "tmpfs", d], capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs for the store: %s"
                    % (p.stderr.strip() or p.returncode))
    try:
        yield d
    finally:
        if subprocess.run(["umount", d], capture_output=True).returncode:
            subprocess.run(["umount", "-l", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def fill(path, leave=0):
    """Write path until the file system has only `leave` bytes free (0:
    until ENOSPC). Returns the free bytes left."""
    chunk = b"\0" * 65536
    with open(path, "ab", buffering=0) as f:
        while True:
            st = os.statvfs(os.path.dirname(path))
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            n = min(len(chunk), free - leave) if leave else len(chunk)
            try:
                if not f.write(chunk[:n]):
                    break
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
    st = os.statvfs(os.path.dirname(path))
    return st.f_bavail * st.f_frsize


def store_ok(h):
    """/healthz says the store is fine ("ok", or {"state": "ok", ...})."""
    s = h.get("store")
    return s == "ok" or (isinstance(s, dict) and s.get("state") == "ok")


def store_full(h):
    """/healthz says the store cannot take writes, and why."""
    return h.get("status") != "ok" and not store_ok(h) and \
        "full" in json.dumps(h.get("store")).lower()


def test_disk_full_no_202_without_commit_and_mail_waits(
        small_disk, make_gateway, make_receiver, dovecot, sink,
        record_property):
    # A webhook customer whose endpoint holds the first POST until told:
    # that delivery finishes while the disk is full.
    release = threading.Event()

    def held(req):
        release.wait(30)
        return 200
    rcv = make_receiver(status=held)
    g = make_gateway()
    conf = mailbox_config(dovecot, sink, g.port, poll_interval="1s",
                          extra="webhook \"%s\" { secret = 's3cret'  "
                          "queue = \"general\" }\n" % HOOK)
    store = os.path.join(small_disk, "escalon.db")
    g.write_config(conf.replace('store = "var/escalon.db"',
                                'store = "%s"' % store))
    g.start()

    statuses = {}               # webhook id -> [Response], in order
    lock = threading.Lock()

    def post(mid, size, **kw):
        body = ("Log line %s. " % mid) * (size // 20)
        r = g.post(HOOK, webhook_msg(mid, subject="Full %s" % mid,
                                     body=body, **kw))
        with lock:
            statuses.setdefault(mid, []).append(r)
        return r

    # Warm-up while there is room: a webhook and a mail, both answered.
    accepted(post("warm", 100), "warm-up webhook")
    dovecot.append(mail("Warm <warm@example.test>", SUPPORT, "Warm mail",
                        "Hi.\n"))
    wait_ticket(g, "Warm mail", T)
    sink.wait_for(lambda m: m.to("warm@example.test"), T, what="ack")
    wait_until(lambda: g.outbox() == [], T, lambda: g.outbox())
    held_tid = accepted(post("held", 100, reply_url=rcv.url("/held")),
                        "webhook with a held reply_url")["ticket"]
    held_req = rcv.wait(1, what="(the held ack)")[0]
    delivery = held_req.header("X-Escalon-Delivery")

    # The disk fills up (a filler file) while that POST is in flight; no
    # write has failed yet, so nothing at all is left for the store. Then
    # the receiver answers 200: the outcome cannot be written.
    filler = os.path.join(small_disk, "filler")
    mark = log_mark(g)
    fill(filler)
    release.set()
    g.wait_log(r"level=error.*delivery outcome not recorded", T, since=mark)

    # A little room again (3 MB), and 100 KB webhooks four at a time
    # until it is gone: some are stored, the rest refused.
    with open(filler, "r+b") as f:
        f.truncate(max(0, os.path.getsize(filler) - 3 * 1024 * 1024))
    burst = ["burst-%02d" % i for i in range(24)]

    def worker(mids):
        for mid in mids:
            post(mid, 100 * 1024)
    ths = [threading.Thread(target=worker, args=(burst[i::4],))
           for i in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    refused = [m for m in burst if statuses[m][-1].status != 202]
    assert refused, "the disk never filled: %r" % {
        m: statuses[m][-1].status for m in burst}
    record_property("burst_202", len(burst) - len(refused))
    fill(filler)

    # Mail while the store is full: big enough not to fit anywhere.
    big = ["Full mail %d" % i for i in range(3)]
    raws = [mail("Full %d <full%d@example.test>" % (i, i), SUPPORT, s,
                 ("Mail written while the disk was full. %d\n" % i) * 15000)
            for i, s in enumerate(big)]
    dovecot.append_many(raws)
    g.wait_log(r"level=warn.*could not commit.*child=\"?%s" %
               re.escape(MAILBOX), T, since=mark)
    late = [post("late-%d" % i, 900 * 1024) for i in range(2)]

    problems = []
    record_property("refused_with", sorted(
        {"%d %s" % (statuses[m][-1].status, statuses[m][-1].raw.decode(
            errors="replace")) for m in refused + ["late-0", "late-1"]}))
    for mid in refused + ["late-0", "late-1"]:
        r = statuses[mid][-1]
        if r.status not in (500, 503) or not isinstance(r.json, dict) or \
                not str(r.json.get("error") or "").strip():
            problems.append("webhook %s refused with %r, want 503 or 500 "
                            "and {\"error\": reason}" % (mid, r))
    why = [ln for ln in since(g, mark).splitlines()
           if re.search(r"level=(warn|error)", ln) and
           re.search(r"full|space", ln, re.I)]
    if not why:
        problems.append("no log line says the store is full:\n%s" %
                        since(g, mark)[-2000:])
    try:
        wait_until(lambda: store_full(healthz(g)), 5,
                   lambda: "/healthz does not report the full store: %r"
                   % healthz(g))
    except AssertionError as e:
        problems.append(str(e))
    # The checkpoint holds: the mails are not tickets yet.
    subjects = [t["subject"] for t in g.tickets()]
    if [s for s in big if s in subjects]:
        problems.append("mail stored on a full disk?! %r" % subjects)

    # Space comes back; the gateway keeps running.
    os.unlink(filler)
    t_back = time.monotonic()
    for s in big:
        try:
            wait_ticket(g, s, 30)
        except AssertionError as e:
            problems.append("mail %r written while full is not a ticket "
                            "30 s after space came back (no restart): %s"
                            % (s, str(e)[:300]))
    record_property("full_mail_back_s", round(time.monotonic() - t_back, 1))
    for mid in refused + ["late-0", "late-1"]:
        r = post(mid, 1024)
        if r.status != 202 or r.json.get("duplicate") is not False:
            problems.append("%s after space came back: %r (want 202, not "
                            "a duplicate: its refusal stored nothing)"
                            % (mid, r))
    try:
        wait_until(lambda: store_ok(healthz(g)), T,
                   lambda: "/healthz store not ok after space came back: "
                   "%r" % healthz(g))
    except AssertionError as e:
        problems.append(str(e))
    try:
        wait_until(lambda: g.outbox() == [], T,
                   lambda: "outbox not empty %d s after space came back "
                   "(no restart): %r" % (T, [
                       (o["id"], o["template"], o["recipient"], o["state"])
                       for o in g.outbox() if o["state"] != "queued"]))
    except AssertionError as e:
        problems.append(str(e))

    def check_store(when):
        got = all_in(g)
        for mid, rs in sorted(statuses.items()):
            ok = [r for r in rs if r.status == 202]
            if not ok:
                continue
            tid = ok[0].json["ticket"]
            n = [t for t, m in got if m.get("message_id") == mid]
            if n != [tid]:
                problems.append("%s: webhook %s answered 202 (ticket %d) "
                                "is stored on %r" % (when, mid, tid, n))
        subjects = [t["subject"] for t in g.tickets()]
        for s in big + ["Warm mail"]:
            if subjects.count(s) != 1:
                problems.append("%s: %d tickets for %r" % (
                    when, subjects.count(s), s))
    check_store("after space came back")

    assert g.stop() == 0, g.stderr()[-3000:]
    g.start()
    wait_until(lambda: g.outbox() == [], T,
               lambda: "outbox not empty after the restart: %r" % g.outbox())
    time.sleep(2.5)         # a refetch or a resend would show by now
    check_store("after a restart")
    posts = rcv.deliveries(delivery)
    if len(posts) != 1:
        problems.append("the ack of ticket %d (delivery %s), delivered "
                        "while the disk was full, was POSTed %d times"
                        % (held_tid, delivery, len(posts)))
    ids = [bare_id(str(m["Message-ID"])) for m in sink.all()]
    dup = sorted({(i, ",".join(m.rcpts)) for m in sink.all()
                  for i in [bare_id(str(m["Message-ID"]))]
                  if ids.count(i) > 1})
    if dup:
        problems.append("mails sent twice: %r" % dup)
    for i in range(3):
        acks = sink.find(lambda m, i=i: m.to("full%d@example.test" % i))
        if len(acks) != 1:
            problems.append("%d acks to full%d@example.test" % (
                len(acks), i))
    assert not problems, "\n".join(problems)
    assert g.running(), g.stderr()[-3000:]
