"""
`escalon deliver`: the push path for an MTA (an alias `|escalon deliver`),
SPEC.md "Command line": one message on stdin; exit 0 only after the message
is committed, 75 (EX_TEMPFAIL) when it cannot be, so the MTA keeps it and
tries again. With a gateway running it goes over the control socket; with
none it opens the store itself.
"""

import random
import sqlite3
import subprocess
import time

import pytest

from conftest import BIN, check_sanitizer
from peers import (bare_id, dovecot, mail, mailbox_config,  # noqa: F401
                   message_id, sink)
from peers import ins

SUPPORT = "support@example.test"
EX_TEMPFAIL = 75


def deliver(g, raw, *args, timeout=60):
    """Run `escalon -c CONF deliver ARGS` as an MTA would: raw bytes on
    stdin, from a working folder of its own (relative paths in the config
    are the config folder's)."""
    argv = [BIN, "-c", str(g.conf), "deliver"] + [str(a) for a in args]
    t0 = time.monotonic()
    p = subprocess.run(argv, input=raw, capture_output=True, timeout=timeout,
                       cwd="/")
    p.took = time.monotonic() - t0
    p.out = p.stdout.decode(errors="replace")
    p.err = p.stderr.decode(errors="replace")
    check_sanitizer(p.err, "escalon deliver")
    return p


def ok(p):
    assert p.returncode == 0, "deliver exited %d\nstdout: %s\nstderr: %s" % (
        p.returncode, p.out, p.err)
    return p


def idle_gateway(make_gateway, dovecot=None, sink=None, **kw):
    """A configured gateway that is not running."""
    g = make_gateway()
    g.write_config(mailbox_config(dovecot, sink, g.port, **kw))
    return g



def customer_mail(n=1, frm='"Erika Mustermann" <erika@example.test>'):
    return mail(frm, SUPPORT, "Cannot print invoices %d" % n,
                "Hello,\n\nprinting an invoice gives a blank page.\n")


# -- a. no gateway: deliver opens the store ---------------------------------

def test_deliver_without_gateway_commits_a_ticket_once(make_gateway):
    g = idle_gateway(make_gateway)
    raw = customer_mail()
    p = ok(deliver(g, raw))
    assert "ESC-" in p.out, p.out
    (t,) = g.tickets()
    assert t["ref"] in p.out, (t, p.out)
    assert t["channel"] == "email" and t["subject"] == "Cannot print invoices 1"
    s = g.show(t["id"])
    assert s["customer"]["address"] == "erika@example.test"
    (m,) = [m for m in s["messages"] if m["direction"] == "in"]
    assert bare_id(m["message_id"]) == bare_id(message_id(raw))

    # The MTA retries (it lost our exit status): still one ticket, one mail.
    ok(deliver(g, raw))
    assert len(g.tickets()) == 1, g.tickets()
    assert len(ins(g, t["id"])) == 1


def test_ack_queued_by_deliver_goes_out_when_the_gateway_starts(
        make_gateway, dovecot, sink):
    g = idle_gateway(make_gateway, dovecot, sink)
    ok(deliver(g, customer_mail()))
    (t,) = g.tickets()
    rows = [o for o in g.outbox() if o["recipient"] == "erika@example.test"]
    assert [o["template"] for o in rows] == ["ack"], g.outbox()

    g.start()
    ack = sink.wait_for(lambda m: m.to("erika@example.test"), 20)[0]
    assert "[ESC-%d]" % t["id"] in ack.subject
    assert bare_id(str(ack["Message-ID"])) == bare_id(rows[0]["identity"])


# -- b. gateway running: deliver goes through it -----------------------------

def test_deliver_with_gateway_running(make_gateway, dovecot, sink):
    g = idle_gateway(make_gateway, dovecot, sink).start()
    raw = customer_mail(2)
    p = ok(deliver(g, raw, "--mailbox", "support"))
    # Exit 0 means committed: the ticket is there now, no waiting.
    (t,) = g.tickets()
    assert t["ref"] in p.out, (t, p.out)
    assert t["subject"] == "Cannot print invoices 2"
    ack = sink.wait_for(lambda m: m.to("erika@example.test"), 20)[0]
    assert "[ESC-%d]" % t["id"] in ack.subject
    assert bare_id(str(ack["In-Reply-To"])) == bare_id(message_id(raw))

    ok(deliver(g, raw, "--mailbox", "support"))
    assert len(g.tickets()) == 1
    assert len(ins(g, t["id"])) == 1
    assert g.running(), g.stderr()


# -- c. cannot commit: 75 ------------------------------------------------------

def test_deliver_store_unreachable_is_tempfail(make_gateway):
    g = idle_gateway(make_gateway)
    # The store's folder cannot exist: its parent is a regular file (so
    # this holds when the tests run as root, too).
    g.write_config(g.conf.read_text().replace(
        'store = "var/escalon.db"', 'store = "var/notadir/escalon.db"'))
    (g.dir / "var").mkdir(exist_ok=True)
    (g.dir / "var" / "notadir").write_text("a file, not a folder\n")
    p = deliver(g, customer_mail())
    assert p.returncode == EX_TEMPFAIL, (p.returncode, p.out, p.err)
    assert "notadir" in p.err, p.err        # it names what was wrong
    assert "ESC-" not in p.out


def test_deliver_store_locked_is_tempfail_then_ok(make_gateway):
    g = idle_gateway(make_gateway)
    ok(deliver(g, customer_mail(1)))        # the store exists
    db = sqlite3.connect(str(g.dir / "var" / "escalon.db"),
                         isolation_level=None, timeout=0)
    try:
        db.execute("BEGIN EXCLUSIVE")
        later = customer_mail(2, frm="Bob Customer <bobc@example.test>")
        p = deliver(g, later, timeout=60)
        assert p.returncode == EX_TEMPFAIL, (p.returncode, p.out, p.err)
        assert p.took < 30, "gave up only after %.1f s" % p.took
        assert p.err.strip(), "no reason on stderr"
    finally:
        if db.in_transaction:
            db.rollback()
        db.close()
    # The MTA tries again once the lock is gone: committed, exactly once.
    ok(deliver(g, later))
    subjects = sorted(t["subject"] for t in g.tickets())
    assert subjects == ["Cannot print invoices 1", "Cannot print invoices 2"]


# -- d. malformed mail is kept ---------------------------------------------------

def garbage():
    rnd = random.Random(20251130)
    return b"\x00\xff\xfe not a mail at all\r\n" + \
        bytes(rnd.getrandbits(8) for _ in range(4096))


def broken_headers():
    return (b"From: <<<erika@@example..test>\r\n"
            b"Subject: =?x-unknown?Q?broken=ZZ?= \xff\xfe\r\n"
            b"Content-Type: multipart/mixed; boundary=\r\n"
            b"Message-ID: <unterminated@example.test\r\n"
            b"Date: yesterday-ish\r\n"
            b"\r\n"
            b"--\r\nno closing boundary \xc3\x28 invalid utf-8\r\n")


@pytest.mark.parametrize("raw", [garbage(), broken_headers()],
                         ids=["garbage", "broken-headers"])
def test_deliver_malformed_mail_is_recorded(make_gateway, raw):
    g = idle_gateway(make_gateway)
    p = ok(deliver(g, raw))
    (t,) = g.tickets()
    assert t["ref"] in p.out, (t, p.out)
    assert len(ins(g, t["id"])) == 1, g.show(t["id"])
    # The same bytes again are the same mail (by its Message-ID as
    # written, or the SHA-256 of the raw message when it has none).
    ok(deliver(g, raw))
    assert len(g.tickets()) == 1
