"""
The email channel, inbound over IMAP (SPEC.md "Ticket", "Configuration":
mailbox): a private Dovecot holds the support mailbox, customers' mail is
put in with IMAP APPEND as an MTA would deliver it, and the gateway's
answers arrive at an SMTP sink. Each test has its own Dovecot, sink and
gateway; waits are on conditions, never fixed sleeps (test_idle_* idles on
purpose).
"""

import os
import re
import threading
import time
import warnings

import pytest

from conftest import wait_until
from peers import (bare_id, dovecot, mail, mailbox_config,  # noqa: F401
                   message_id, sink)
from peers import with_subject, wait_ticket, ins, wait_ins

SUPPORT = "support@example.test"
ACK_ID = re.compile(r"^<esc-(\d+)-[^@>\s]+@example\.test>$")
T = 20          # seconds: generous, for a loaded machine or ASan


def started(make_gateway, dovecot, sink, **kw):
    g = make_gateway()
    g.write_config(mailbox_config(dovecot, sink, g.port, **kw))
    return g.start()






def acks_to(sink, addr):
    return sink.find(lambda m: m.to(addr))


def wait_ack(sink, addr, timeout=T):
    return sink.wait_for(lambda m: m.to(addr), timeout,
                         what="mail to " + addr)[0]


def find_message(g, mid):
    """(ticket, message) of the message with Message-ID mid, or None."""
    for t in g.tickets():
        for m in g.show(t["id"])["messages"]:
            if bare_id(m.get("message_id")) == bare_id(mid):
                return t, m
    return None


def bounce(to, original_headers, reporter="MAILER-DAEMON@example.test"):
    """A delivery status notification (RFC 3464) for a message whose
    headers are original_headers (str), as Postfix writes them."""
    boundary = "9F2A1C0B7E.1764460000/mx.example.test"
    mid = "<20251130041500.9F2A1C0B7E@mx.example.test>"
    text = f"""\
Return-Path: <>
From: Mail Delivery System <{reporter}>
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Sun, 30 Nov 2025 04:15:00 +0000 (UTC)
Message-ID: {mid}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="{boundary}"

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<gone@example.test>: host mx.example.test said: 550 5.1.1 User unknown

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.test
Arrival-Date: Sun, 30 Nov 2025 04:14:59 +0000 (UTC)

Final-Recipient: rfc822; gone@example.test
Original-Recipient: rfc822;gone@example.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{original_headers.strip()}

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode(), mid


# -- a. a new mail is a ticket, and the customer gets an ack ---------------

def test_new_mail_opens_a_ticket_and_the_customer_gets_an_ack(
        make_gateway, dovecot, sink):
    g = started(make_gateway, dovecot, sink)
    raw = mail('"Erika Mustermann" <erika@example.test>', SUPPORT,
               "Printer on fire",
               "Hello,\n\nthe printer in room 4 is on fire.\n\nErika\n")
    mid = message_id(raw)
    dovecot.append(raw)

    t = wait_ticket(g, "Printer on fire")
    assert t["channel"] == "email"
    assert t["subject"] == "Printer on fire"
    assert t["queue"] == "general" and t["state"] == "new"
    s = g.show(t["id"])
    assert s["customer"]["address"] == "erika@example.test", s["customer"]
    assert s["customer"]["channel"] == "email", s["customer"]
    (m,) = [m for m in s["messages"] if m["direction"] == "in"]
    assert bare_id(m["message_id"]) == bare_id(mid)
    assert m["channel"] == "email" and m["author"] == "erika@example.test"
    assert "the printer in room 4 is on fire." in m["body"]

    ack = wait_ack(sink, "erika@example.test")
    tid = t["id"]
    assert "[ESC-%d]" % tid in ack.subject, ack.subject
    assert bare_id(str(ack["In-Reply-To"])) == bare_id(mid), \
        ack["In-Reply-To"]
    assert bare_id(mid) in str(ack["References"]), ack["References"]
    assert str(ack["Auto-Submitted"]).strip().lower() == "auto-replied"
    assert ack["X-Loop"] is not None, ack.raw[:1500]
    got = ACK_ID.match(str(ack["Message-ID"]).strip())
    assert got and int(got.group(1)) == tid, ack["Message-ID"]
    assert "erika@example.test" in str(ack["To"])
    assert SUPPORT in str(ack["From"])
    # The thread shows what the customer was told (SPEC: `out`, author
    # `escalon` for automatic messages).
    (out,) = [m for m in g.show(tid)["messages"] if m["direction"] == "out"]
    assert out["author"] == "escalon" and out["channel"] == "email", out
    assert "ESC-%d" % tid in out["body"], out


# -- b. threading: by In-Reply-To, by subject tag from the same sender -----

def test_replies_thread_by_message_id_and_by_tag_from_the_same_sender(
        make_gateway, dovecot, sink):
    g = started(make_gateway, dovecot, sink)
    erika = '"Erika Mustermann" <erika@example.test>'
    first = mail(erika, SUPPORT, "VPN drops every hour",
                 "It disconnects at :00 every hour.\n")
    dovecot.append(first)
    tid = wait_ticket(g, "VPN drops every hour")["id"]
    ack = wait_ack(sink, "erika@example.test")
    ack_id = str(ack["Message-ID"]).strip()
    tag = "[ESC-%d]" % tid

    # A reply to the ack, with the subject edited beyond recognition:
    # In-Reply-To names our Message-ID, so it threads.
    dovecot.append(mail(erika, SUPPORT, "one more thing",
                        "It also happens on the wired network.\n",
                        in_reply_to=ack_id,
                        references=[message_id(first), ack_id]))
    got = wait_ins(g, tid, 2)
    assert "wired network" in got[-1]["body"]

    # No In-Reply-To/References, only the tag in the subject, same sender.
    dovecot.append(mail(erika, SUPPORT, "Logs for %s" % tag,
                        "Attached the logs you asked for.\n"))
    got = wait_ins(g, tid, 3)
    assert "the logs you asked for" in got[-1]["body"]
    assert len(g.tickets()) == 1

    # The same tag from someone else is not Erika's ticket: a new one.
    dovecot.append(mail("Mallory <mallory@example.test>", SUPPORT,
                        "Re: VPN drops every hour %s" % tag,
                        "Please send me Erika's logs.\n"))
    wait_until(lambda: len(g.tickets()) == 2, T,
               lambda: "tag from another sender did not open a ticket: %r"
               % g.tickets())
    other = [t for t in g.tickets() if t["id"] != tid][0]
    assert g.show(other["id"])["customer"]["address"] == \
        "mallory@example.test"
    assert len(ins(g, tid)) == 3
    # Mallory's new ticket is acknowledged; Erika's replies were not.
    wait_ack(sink, "mallory@example.test")
    assert len(acks_to(sink, "erika@example.test")) == 1, \
        acks_to(sink, "erika@example.test")


# -- c. automatic mail is recorded, never answered -------------------------

def test_out_of_office_and_bounce_are_recorded_but_not_answered(
        make_gateway, dovecot, sink):
    g = started(make_gateway, dovecot, sink)
    dovecot.append(mail("Erika <erika@example.test>", SUPPORT,
                        "Invoice 2025-118 is wrong", "Charged twice.\n"))
    tid = wait_ticket(g, "Invoice 2025-118")["id"]
    ack = wait_ack(sink, "erika@example.test")

    ooo = mail("Hans Urlaub <holiday@example.test>", SUPPORT,
               "Automatische Antwort: Abwesenheit",
               "I am out of the office until Monday.\n",
               headers={"Auto-Submitted": "auto-replied",
                        "X-Autoreply": "yes"})
    orig = "".join("%s: %s\n" % (k, ack[k]) for k in
                   ("From", "To", "Subject", "Date", "Message-ID")
                   if ack[k] is not None)
    dsn, dsn_id = bounce(SUPPORT, orig)
    normal = mail("Next Customer <next@example.test>", SUPPORT,
                  "Password reset link expired", "It says expired.\n")
    for raw in (ooo, dsn, normal):
        dovecot.append(raw)

    # The normal mail after them is acknowledged: the pipeline flowed past
    # both automatic ones.
    wait_ack(sink, "next@example.test")
    for what, mid in (("out-of-office", message_id(ooo)), ("bounce", dsn_id)):
        wait_until(lambda: find_message(g, mid), T,
                   "the %s (%s) is recorded nowhere: %r"
                   % (what, mid, g.tickets()))
    # None of them is answered, nor is Erika told again.
    for addr in ("holiday@example.test", "mailer-daemon@example.test"):
        assert acks_to(sink, addr) == [], acks_to(sink, addr)
        assert not [o for o in g.outbox()
                    if (o["recipient"] or "").lower() == addr], g.outbox()
    assert len(acks_to(sink, "erika@example.test")) == 1
    assert len(ins(g, tid)) >= 1


# -- d. IDLE ---------------------------------------------------------------

def test_idle_new_mail_is_a_ticket_within_a_second(make_gateway, dovecot,
                                                   sink, record_property):
    # A minute between polls: only IDLE can be this quick.
    g = started(make_gateway, dovecot, sink, poll_interval="60s")
    dovecot.append(mail("warm@example.test", SUPPORT, "Warm-up", "Hi.\n"))
    wait_ticket(g, "Warm-up")
    took = []
    for i in range(2):
        time.sleep(3)               # the gateway sits idle in IDLE
        token = "Idle check %d" % i
        t0 = time.monotonic()
        dovecot.append(mail("idle%d@example.test" % i, SUPPORT, token,
                            "Are you awake?\n"))
        wait_until(lambda: with_subject(g, token), 10,
                   "no ticket for %r" % token, interval=0.02)
        took.append(time.monotonic() - t0)
    record_property("idle_append_to_ticket_s", took)
    print("IDLE: append -> ticket in %s s" % ", ".join("%.3f" % x
                                                       for x in took))
    assert max(took) < 1.0, "append -> ticket took %r s" % took


# -- e. Dovecot restarts under the gateway ---------------------------------

def test_dovecot_restart_loses_and_doubles_nothing(make_gateway, dovecot,
                                                   sink):
    g = started(make_gateway, dovecot, sink)
    before = [mail("r%d@example.test" % i, SUPPORT, "Before restart %d" % i,
                   "Mail %d.\n" % i) for i in range(5)]
    dovecot.append_many(before)
    wait_until(lambda: len(g.tickets()) == 5, T, lambda: g.tickets())

    # Five more, and the server goes away while the gateway fetches them.
    dovecot.append_many([mail("m%d@example.test" % i, SUPPORT,
                              "During restart %d" % i, "Mail %d.\n" % i)
                         for i in range(5)])
    dovecot.restart()
    dovecot.append_many([mail("a%d@example.test" % i, SUPPORT,
                              "After restart %d" % i, "Mail %d.\n" % i)
                         for i in range(5)])
    wait_until(lambda: len(g.tickets()) >= 15, 40,
               lambda: "after a Dovecot restart: %r" % g.tickets())
    # A last mail: once it is in, everything before it has been seen.
    dovecot.append(mail("last@example.test", SUPPORT, "Sentinel", "End.\n"))
    wait_ticket(g, "Sentinel")
    subjects = [t["subject"] for t in g.tickets()]
    assert len(subjects) == 16 and len(set(subjects)) == 16, \
        sorted(subjects)
    assert g.running(), g.stderr()


# -- f. kill -9 in the middle of 1,000 mails --------------------------------

def test_kill9_during_a_thousand_mails_one_ticket_per_mail(make_gateway,
                                                           dovecot, sink,
                                                           record_property):
    n = 1000
    g = started(make_gateway, dovecot, sink)
    raws = [mail("c%04d@example.test" % i, SUPPORT, "Bulk %04d" % i,
                 "Bulk mail number %d.\n" % i) for i in range(n)]
    err = []

    def feed():
        try:
            dovecot.append_many(raws)
        except Exception as e:      # reported by the test, not lost
            err.append(e)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    wait_until(lambda: len(g.tickets()) >= 300, 120,
               lambda: "not 300 tickets yet: %d" % len(g.tickets()),
               interval=0.05)
    g.kill9()
    at_kill = len(g.tickets())
    record_property("tickets_at_kill", at_kill)
    print("kill -9 at %d tickets" % at_kill)
    if at_kill >= n:
        warnings.warn("the gateway had taken in all %d mails before the "
                      "kill: the test proved less than it could" % n)
    feeder.join(120)
    assert not feeder.is_alive() and not err, err
    assert dovecot.count() == n

    g.start()
    wait_until(lambda: len(g.tickets()) >= n, 180,
               lambda: "after the restart: %d tickets" % len(g.tickets()),
               interval=0.5)
    dovecot.append(mail("last@example.test", SUPPORT, "Sentinel", "End.\n"))
    wait_ticket(g, "Sentinel", timeout=60)
    bulk = [t["subject"] for t in g.tickets()
            if t["subject"].startswith("Bulk ")]
    doubled = sorted(s for s in set(bulk) if bulk.count(s) > 1)
    assert len(set(bulk)) == n, "missing: %r" % sorted(
        {"Bulk %04d" % i for i in range(n)} - set(bulk))[:20]
    assert len(bulk) == n, "doubled: %r" % doubled[:20]
    assert len(g.tickets()) == n + 1


# -- g. SMTP down: the ack waits in the outbox ------------------------------

def test_smtp_down_the_ack_waits_and_goes_out_when_it_is_back(
        make_gateway, dovecot, sink):
    sink.stop()
    g = started(make_gateway, dovecot, sink)
    dovecot.append(mail("Erika <erika@example.test>", SUPPORT,
                        "Order 4711 not delivered", "Where is it?\n"))
    tid = wait_ticket(g, "Order 4711")["id"]

    def ack_row():
        rows = [o for o in g.outbox()
                if o["recipient"] == "erika@example.test"]
        return rows if rows and all(
            o["ticket"] == tid and o["state"] in ("retry", "queued",
                                                  "sending") and
            o["attempts"] >= 1 and o["last_error"] for o in rows) else None
    rows = wait_until(ack_row, T, lambda: "no ack retrying in the outbox: "
                      "%r" % g.outbox())
    assert len(rows) == 1 and rows[0]["template"] == "ack", rows

    sink.start()
    ack = wait_ack(sink, "erika@example.test")
    assert "[ESC-%d]" % tid in ack.subject
    # The Message-ID was fixed when the ack was queued (SPEC.md: a stable
    # identity across retries).
    assert bare_id(str(ack["Message-ID"])) == bare_id(rows[0]["identity"])
    wait_until(lambda: not [o for o in g.outbox()
                            if o["recipient"] == "erika@example.test"], T,
               lambda: "ack still in the outbox: %r" % g.outbox())
    assert len(acks_to(sink, "erika@example.test")) == 1


# -- h. a clean restart fetches nothing again -------------------------------

def test_clean_restart_refetches_nothing(make_gateway, dovecot, sink):
    g = started(make_gateway, dovecot, sink)
    who = ["h%d@example.test" % i for i in range(3)]
    dovecot.append_many([mail(a, SUPPORT, "Before stop %d" % i, "Hi.\n")
                         for i, a in enumerate(who)])
    wait_until(lambda: len(g.tickets()) == 3, T, lambda: g.tickets())
    for a in who:
        wait_ack(sink, a)

    assert g.stop() == 0, g.stderr()
    g.start()
    dovecot.append(mail("after@example.test", SUPPORT, "After start",
                        "Hi again.\n"))
    wait_ticket(g, "After start")
    wait_ack(sink, "after@example.test")
    assert len(g.tickets()) == 4, g.tickets()
    for t in g.tickets():
        assert len(ins(g, t["id"])) == 1, g.show(t["id"])
    for a in who:
        assert len(acks_to(sink, a)) == 1, acks_to(sink, a)


# -- i. over max_message_size: recorded, and the sender is told -------------

def test_too_large_mail_is_recorded_and_the_sender_told(make_gateway,
                                                         dovecot, sink):
    g = started(make_gateway, dovecot, sink,
                extra='max_message_size = "64K"\n')
    line = "2025-11-30T04:00:00Z kernel: eth0 link flapping, again\n"
    big = mail("Big Sender <big@example.test>", SUPPORT,
               "Huge log attached", line * 4000)     # about 220 KB
    assert len(big) > 3 * 64 * 1024
    dovecot.append(big)

    t = wait_ticket(g, "Huge log attached")
    told = wait_ack(sink, "big@example.test")
    assert "[ESC-%d]" % t["id"] in told.subject, told.subject
    assert "too large" in told.body().lower(), told.body()
    assert g.show(t["id"])["customer"]["address"] == "big@example.test"

    # A normal mail after it flows; the big one got one mail, no ack too.
    dovecot.append(mail("small@example.test", SUPPORT, "Small one",
                        "Short.\n"))
    wait_ack(sink, "small@example.test")
    assert len(acks_to(sink, "big@example.test")) == 1, \
        acks_to(sink, "big@example.test")


# -- agents' replies from the CLI reach the customer and their Cc ----------

def test_reply_reaches_the_customer_threaded_and_their_cc(make_gateway,
                                                          dovecot, sink):
    g = started(make_gateway, dovecot, sink)
    first = mail("Erika <erika@example.test>", SUPPORT,
                 "VPN drops every hour", "It drops at :00 each hour.\n",
                 headers={"Cc": "Boss <boss@example.test>, " + SUPPORT})
    dovecot.append(first)
    tid = wait_ticket(g, "VPN drops")["id"]
    wait_ack(sink, "erika@example.test")
    # The ack answers Erika alone: copied-in people hear from agents.
    assert acks_to(sink, "boss@example.test") == []

    g.ok("reply", str(tid), "--as", "alice", "Please send us the VPN log.")
    got = wait_ack(sink, "boss@example.test")
    to_erika = sink.wait_for(lambda m: m.to("erika@example.test") and
                             "VPN log" in m.body(), T, what="the reply")[0]
    for m in (got, to_erika):
        assert "Please send us the VPN log." in m.body()
        assert "[ESC-%d]" % tid in m.subject
        assert bare_id(str(m["In-Reply-To"])) == bare_id(message_id(first))
        assert "boss@example.test" in str(m["Cc"])
        # An agent wrote it: not an automatic mail.
        assert m["Auto-Submitted"] is None
    # Our own address in the customer's Cc is not a person to copy.
    assert SUPPORT not in str(got["Cc"])
    assert bare_id(str(got["Message-ID"])) == bare_id(str(to_erika["Message-ID"]))

    # The customer answers the reply: same ticket, threaded by Message-ID.
    dovecot.append(mail("Erika <erika@example.test>", SUPPORT,
                        "Re: something else entirely", "Log attached.\n",
                        in_reply_to=str(to_erika["Message-ID"])))
    wait_ins(g, tid, 2)
    assert len(g.tickets()) == 1


def test_healthz_and_metrics_show_the_mailbox(make_gateway, dovecot, sink):
    import json
    import urllib.request
    g = started(make_gateway, dovecot, sink)

    def health():
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % g.port,
                                    timeout=5) as r:
            return json.loads(r.read())

    wait_until(lambda: [c for c in health()["channels"]
                        if c["state"] == "idle"], T, "mailbox idle")
    h = health()
    assert h["status"] == "ok", h
    assert h["channels"][0]["name"] == "mailbox:support", h
    dovecot.stop()
    wait_until(lambda: health()["status"] == "degraded", T,
               lambda: "healthz still %r with dovecot stopped" % health())
    ch = health()["channels"][0]
    assert ch["state"] != "idle", ch
    dovecot.start()
    wait_until(lambda: health()["status"] == "ok", 60,
               lambda: "healthz %r after dovecot came back" % health())
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.port,
                                timeout=5) as r:
        text = r.read().decode()
    assert 'escalon_child_restarts_total{child="mailbox:support"} 0' in text


# -- a server without IDLE is polled every poll_interval -------------------

def test_server_without_idle_is_polled(make_gateway, sink):
    import json
    import urllib.request
    from peers import Dovecot
    # Dovecot announcing no IDLE, as some servers do.
    d = Dovecot(extra_conf="imap_capability = IMAP4rev1 LITERAL+ UIDPLUS")
    d.start()
    try:
        g = started(make_gateway, d, sink, poll_interval="1s")
        g.wait_log(r'state=polling', timeout=T)
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % g.port,
                                    timeout=5) as r:
            ch = json.loads(r.read())["channels"][0]
        assert ch["state"] == "polling", ch
        t0 = time.monotonic()
        d.append(mail("Erika <erika@example.test>", SUPPORT,
                      "Polled, not pushed", "No IDLE here.\n"))
        wait_ticket(g, "Polled, not pushed")
        took = time.monotonic() - t0
        # Within one poll_interval (plus the fetch), not the default 60 s.
        assert took < 5, took
        wait_ack(sink, "erika@example.test")
    finally:
        d.stop()
        d.cleanup()


# -- UIDVALIDITY changes: the folder is read again, nothing is doubled -----

def test_uidvalidity_change_resyncs_without_doubles(make_gateway, dovecot,
                                                    sink):
    folder = "Support"
    c = dovecot.connect(readonly=False)
    assert c.create(folder)[0] == "OK"
    c.logout()
    mails = [mail("Cust %d <c%d@example.test>" % (i, i), SUPPORT,
                  "Rebuilt folder %d" % i, "Mail %d.\n" % i)
             for i in range(3)]
    for raw in mails:
        dovecot.append(raw, folder=folder)
    g = make_gateway()
    g.write_config(mailbox_config(dovecot, sink, g.port).replace(
        'folder = "INBOX"', 'folder = "%s"' % folder))
    g.start()
    wait_until(lambda: len(g.tickets()) == 3, T, "three tickets")
    for i in range(3):
        wait_ack(sink, "c%d@example.test" % i)
    assert g.stop() == 0, g.stderr()

    # The folder is rebuilt (a server migration, a restore): same mails,
    # new UIDs under a new UIDVALIDITY, and one mail that is really new.
    c = dovecot.connect(readonly=False)
    before = c.status(folder, "(UIDVALIDITY)")[1][0]
    assert c.delete(folder)[0] == "OK"
    assert c.create(folder)[0] == "OK"
    after = c.status(folder, "(UIDVALIDITY)")[1][0]
    c.logout()
    assert before != after, (before, after)
    for raw in mails + [mail("New <new@example.test>", SUPPORT,
                             "Rebuilt folder new", "Really new.\n")]:
        dovecot.append(raw, folder=folder)
    g.start()
    wait_ticket(g, "Rebuilt folder new")
    g.wait_log(r"UIDVALIDITY changed", timeout=T)
    assert sorted(t["subject"] for t in g.tickets()) == sorted(
        ["Rebuilt folder %d" % i for i in range(3)] + ["Rebuilt folder new"])
    for t in g.tickets():
        assert len(ins(g, t["id"])) == 1, g.show(t["id"])
    wait_ack(sink, "new@example.test")
    for i in range(3):
        assert len(acks_to(sink, "c%d@example.test" % i)) == 1


# -- a mail that crashes the mailbox child ----------------------------------

def crash_shim(tmp_path):
    """The LD_PRELOAD shim that makes libetpan's MIME parser abort on a
    mail carrying `X-Escalon-Test-Crash: yes`, as a parser bug would."""
    import shutil
    import subprocess
    from pathlib import Path
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the crash shim")
    src = Path(__file__).parent / "shims" / "crash_on_mark.c"
    so = tmp_path / "crash_on_mark.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(so), str(src),
                    "-ldl"], check=True)
    return so


def test_a_mail_that_crashes_the_child_is_set_aside_after_three_crashes(
        make_gateway, dovecot, sink, tmp_path):
    """A mail that kills the parser is not retried forever: after three
    crashes on it, it goes over unparsed as a "(mail not parsed)" ticket
    holding its raw source and why, the mail after it is not held up, and
    the log names the mail."""
    import json
    import sqlite3
    import urllib.request
    so = crash_shim(tmp_path)
    g = make_gateway()
    g.write_config(mailbox_config(dovecot, sink, g.port))
    g.env = {"LD_PRELOAD": str(so),
             # the ASan runtime would insist on coming first
             "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
             ":verify_asan_link_order=0"}
    g.start()
    before = mail("Erika <erika@example.test>", SUPPORT, "Before the poison",
                  "An ordinary question.\n")
    poison = mail("Mallory <mallory@example.test>", SUPPORT, "Poison pill",
                  "This mail crashes the parser.\n",
                  headers={"X-Escalon-Test-Crash": "yes"})
    after = mail("Otto <otto@example.test>", SUPPORT, "After the poison",
                 "Another ordinary question.\n")
    for raw in (before, poison, after):
        dovecot.append(raw)

    wait_ticket(g, "Before the poison")
    # Backoff 1 + 2 + 4 s between the three crashes.
    set_aside = wait_ticket(g, "(mail not parsed)", timeout=60)
    wait_ticket(g, "After the poison")
    assert with_subject(g, "Poison pill") == []
    text = ins(g, set_aside["id"])[0]["body"]
    assert "crashed on it 3 times" in text and "UID" in text, text

    # The raw source is kept whole, for whoever looks into it.
    db = sqlite3.connect("file:%s?mode=ro" % (g.dir / "var/escalon.db"),
                         uri=True)
    try:
        (raw,), = db.execute("SELECT raw FROM messages WHERE ticket_id = ?",
                             (set_aside["id"],)).fetchall()
    finally:
        db.close()
    assert bytes(raw) == poison
    log = g.stderr()
    assert len(re.findall(r"channel child died parsing a message.*"
                          r"crashes=[12]", log)) == 2, log[-3000:]
    assert re.search(r"a mail kept crashing its channel child.*crashes=3",
                     log), log[-3000:]
    assert re.search(r"mail set aside unparsed", log), log[-3000:]
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % g.port,
                                timeout=5) as r:
        ch = json.loads(r.read())["channels"][0]
    assert ch["restarts"] == 3, ch
    # No one to answer: the unparsed mail has no known sender.
    time.sleep(1)
    assert not sink.find(lambda m: m.to("mallory@example.test"))
    # It is committed: a restart does not bring it back.
    g.stop()
    g.start()
    g.wait_log(r"state=idle", timeout=T)
    assert len(with_subject(g, "(mail not parsed)")) == 1
    # Handed in again by an escalon that reads it (here the CLI, without
    # the shim), it is the customer's mail, not a duplicate of the record.
    p = g.cli("deliver", "--mailbox", "support", input=bytes(raw).decode())
    assert p.returncode == 0, p.stderr
    wait_ticket(g, "Poison pill")
    assert len(with_subject(g, "(mail not parsed)")) == 1
