#!/usr/bin/python3
"""
IMAP ingest benchmark.

    /usr/bin/python3 tests/bench/imap_bench.py /path/to/escalon [--mails N]

Starts a private Dovecot on loopback (tests/e2e/peers.py) and fills the
support INBOX with N mails (default 10,000) of real-world shapes: plain
text, multipart/alternative with HTML, HTML only, and a PDF-sized
attachment, each from its own customer. Then it starts `escalon run` (its
smtp section pointing at an SMTP sink, which takes the acks and the agents'
notifications while the intake runs; --no-smtp points it at a closed port
instead) and measures, from the gateway's start, how long until every mail
is a committed ticket with its ack queued: messages/s. Then, with the gateway idle in IDLE, it appends LATENCY mails
one at a time and measures append -> ticket committed (p50, p99), reading
the store read-only.

Dovecot itself delays IDLE notifications (it batches mailbox changes for
half a second), so the latency figures include that delay; the script
also prints what a raw IMAP IDLE client sees from Dovecot, for comparison.
"""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import make_msgid, formatdate
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import peers  # noqa: E402

LOREM = ("Hello,\n\nsince this morning our order page shows an error when "
         "we try to pay by card. We tried two browsers and two cards. The "
         "error says 'payment declined' but the bank says nothing was "
         "declined.\n\nCould you look into it? Order numbers below.\n\n")


def one_mail(i):
    m = EmailMessage()
    m["From"] = "Customer %d <customer%d@example.test>" % (i, i)
    m["To"] = "support@example.test"
    m["Subject"] = "Payment page error #%d" % i
    m["Date"] = formatdate(localtime=False)
    m["Message-ID"] = make_msgid(domain="example.test")
    body = LOREM + "".join("Order %d-%d\n" % (i, k) for k in range(20))
    kind = i % 4
    if kind == 0:
        m.set_content(body)
    elif kind == 1:
        m.set_content(body)
        m.add_alternative("<html><body><p>" + body.replace("\n\n", "</p><p>")
                          + "</p></body></html>", subtype="html")
    elif kind == 2:
        m.set_content("<html><body><h1>Error</h1><p>" +
                      body.replace("\n\n", "</p><p>") +
                      "<a href='https://shop.example.test/o/%d'>order</a>"
                      "</p></body></html>" % i, subtype="html")
    else:
        m.set_content(body)
        m.add_attachment(os.urandom(48 * 1024), maintype="application",
                         subtype="pdf", filename="invoice-%d.pdf" % i)
    return bytes(m)


def count(db, sql):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return c.execute(sql).fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def cpu_seconds(pid):
    """(core, children) CPU seconds, user + system, of the gateway pid and
    of its channel children, read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(p):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            return None, 0.0
    kids = 0.0
    for d in os.listdir("/proc"):
        if d.isdigit():
            ppid, secs = of(int(d))
            if ppid == pid:
                kids += secs
    return of(pid)[1], kids


def raw_idle_latency(dovecot, n=5):
    """What a bare IDLE client sees: append -> '* N EXISTS'."""
    import socket
    s = socket.create_connection(("127.0.0.1", dovecot.imap_port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN support secret\r\n")
    while not f.readline().startswith(b"a "):
        pass
    s.sendall(b"b SELECT INBOX\r\n")
    while not f.readline().startswith(b"b "):
        pass
    took = []
    for i in range(n):
        s.sendall(b"c%d IDLE\r\n" % i)
        f.readline()                       # + idling
        t0 = time.monotonic()
        dovecot.append(one_mail(10_000_000 + i))
        while b"EXISTS" not in f.readline():
            pass
        took.append(time.monotonic() - t0)
        s.sendall(b"DONE\r\n")
        while not f.readline().startswith(b"c%d " % i):
            pass
    s.close()
    return sorted(took)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("escalon")
    ap.add_argument("--mails", type=int, default=10_000)
    ap.add_argument("--latency", type=int, default=100)
    ap.add_argument("--no-smtp", action="store_true",
                    help="point smtp at a closed port: acks stay queued")
    ap.add_argument("--wrap", default="",
                    help="a command the gateway runs under, e.g. "
                    "'perf record -g -o /tmp/perf.data --'")
    args = ap.parse_args()

    dovecot = peers.Dovecot()
    dovecot.start()
    sink = None if args.no_smtp else peers.Sink().start()
    root = tempfile.mkdtemp(prefix="escalon-imap-bench-")
    gw = None
    try:
        t0 = time.monotonic()
        batch = [one_mail(i) for i in range(args.mails)]
        size = sum(len(b) for b in batch)
        dovecot.append_many(batch)
        print("filled INBOX: %d mails, %.1f MB, in %.1f s"
              % (args.mails, size / 1e6, time.monotonic() - t0))

        port = peers.free_port()
        os.makedirs(os.path.join(root, "var"))
        conf = os.path.join(root, "escalon.conf")
        with open(conf, "w") as f:
            f.write(peers.mailbox_config(dovecot, sink, port))
        db = os.path.join(root, "var", "escalon.db")
        t0 = time.monotonic()
        gw = subprocess.Popen(args.wrap.split() +
                              [args.escalon, "-c", conf, "run"],
                              stderr=open(os.path.join(root, "log"), "w"))
        deadline = t0 + 600
        while time.monotonic() < deadline:
            n = count(db, "SELECT count(*) FROM tickets")
            if n >= args.mails:
                break
            time.sleep(0.05)
        took = time.monotonic() - t0
        cpu = cpu_seconds(gw.pid)
        acks = count(db, "SELECT count(*) FROM outbox WHERE template='ack'")
        print("IMAP ingest: %d mails -> %d tickets, %d acks queued in "
              "%.2f s (from the gateway's start): %.0f messages/s"
              % (args.mails, n, acks, took, n / took))

        print("CPU during the ingest: core %.2f s, mailbox child %.2f s "
              "(%.0f us and %.0f us per mail)" % (
                  cpu[0], cpu[1], 1e6 * cpu[0] / max(n, 1),
                  1e6 * cpu[1] / max(n, 1)))
        lat = []
        for i in range(args.latency):
            time.sleep(0.2)
            want = args.mails + i + 1
            t0 = time.monotonic()
            dovecot.append(one_mail(args.mails + i))
            while count(db, "SELECT count(*) FROM tickets") < want:
                if time.monotonic() - t0 > 30:
                    break
                time.sleep(0.002)
            lat.append(time.monotonic() - t0)
        lat.sort()
        print("IDLE latency, append -> ticket committed, over %d mails: "
              "p50 %.0f ms, p99 %.0f ms"
              % (len(lat), 1000 * lat[len(lat) // 2],
                 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
        raw = raw_idle_latency(dovecot)
        print("for comparison, Dovecot's own append -> EXISTS to a bare "
              "IDLE client: median %.0f ms" % (1000 * raw[len(raw) // 2]))
    finally:
        if gw is not None:
            gw.send_signal(signal.SIGTERM)
            gw.wait(timeout=30)
        if sink is not None:
            sink.stop()
        dovecot.stop()
        dovecot.cleanup()


if __name__ == "__main__":
    main()
