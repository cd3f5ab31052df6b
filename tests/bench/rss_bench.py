#!/usr/bin/python3
"""
Memory benchmark: the core's and each channel child's RSS after a large
intake.

    /usr/bin/python3 tests/bench/rss_bench.py /path/to/escalon
        [--tickets N] [--mails M] [--chat-customers C] [--json FILE]

One gateway (`escalon run`) with a mailbox on a private Dovecot and an
XMPP account on a private Prosody (so both children run), SMTP to a sink
and the webhook "shop", all on loopback (tests/e2e/peers.py). It ingests
N tickets (default 1,000,000):

 1. M mails (default 3,000; imap_bench.py's real-world shapes), put in the
    INBOX before the gateway starts, each from its own customer;
 2. C chat customers (default 10) sending 30 messages each: C tickets;
 3. the rest as webhooks through wrk (webhook_bench.py's write_lua and
    run_wrk: 64 keep-alive connections), in chunks of CHUNK (default
    100,000) distinct pre-signed requests, ids distinct across chunks.

The agents' mail about each new ticket goes to the sink, which counts it
and drops it (it would otherwise keep millions of parsed mails). Then it
reads VmRSS and VmHWM of the core and of each child (a process whose
parent is the core, named by its command line `escalon child KIND NAME`)
from /proc, checks that the store holds exactly N tickets, and stops
everything. Targets (issue 9): core under 64 MiB, each child under 16 MiB.
--json FILE writes the figures as rows (benchlib.py).
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from types import SimpleNamespace

from benchlib import Rows, children, memory_kib, query

import chat_bench
import imap_bench
import peers  # noqa: E402  (tests/e2e, on the path through benchlib)
import webhook_bench

CHAT_MESSAGES = 30      # per chat customer
TARGET_MIB = {"core": 64, "child": 16}

EXTRA = """\
webhook "shop" {{ secret = 's3cret'  queue = "general" }}
xmpp "chat" {{
  jid = "{jid}"  password = 'secret'
  host = "127.0.0.1"  port = {c2s_port}  tls = "none"
  queue = "general"
}}
"""


class Drain(threading.Thread):
    """Empties the sink's lists every second, keeping only a count."""

    def __init__(self, sink):
        super().__init__(daemon=True)
        self.sink, self.received, self.stop = sink, 0, threading.Event()

    def run(self):
        while not self.stop.wait(1):
            with self.sink.lock:
                self.received += len(self.sink.got)
                self.sink.got.clear()
                self.sink.mails.clear()


def mib(kib):
    return kib / 1024 if kib is not None else None


def processes(core):
    """[(label, kind, pid)]: the core, then its children by command line
    ("mailbox support", "xmpp chat")."""
    out = [("core", "core", core)]
    for pid, cmd in children(core):
        words = cmd.split()
        if len(words) >= 4 and words[1] == "child":
            out.append((" ".join(words[2:4]), "child", pid))
        else:
            out.append((cmd or str(pid), "child", pid))
    return out


def wait(what, pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            sys.exit("rss_bench: %s not within %d s" % (what, timeout))
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("escalon")
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--mails", type=int, default=3000)
    ap.add_argument("--chat-customers", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=100_000,
                    help="distinct pre-signed webhooks per wrk run")
    ap.add_argument("--json", metavar="FILE",
                    help="write the figures there as JSON rows")
    args = ap.parse_args()
    hooks = args.tickets - args.mails - args.chat_customers
    if hooks < 0:
        sys.exit("rss_bench: --tickets must be at least --mails + "
                 "--chat-customers")
    if not shutil.which("wrk"):
        sys.exit("rss_bench: wrk not found (apt-get install wrk)")
    binary = os.path.abspath(args.escalon)

    rows = Rows()
    dovecot = peers.Dovecot().start()
    prosody = peers.Prosody()
    sink = peers.Sink().start()
    drain = Drain(sink)
    drain.start()
    tmp = tempfile.mkdtemp(prefix="escalon-rss-bench-")
    gw, clients = None, []
    try:
        chat_bench.register(prosody, args.chat_customers)
        prosody.start()
        t0 = time.monotonic()
        dovecot.append_many([imap_bench.one_mail(i)
                             for i in range(args.mails)])
        print("filled INBOX: %d mails in %.1f s"
              % (args.mails, time.monotonic() - t0), flush=True)

        gw = webhook_bench.Gateway(binary, tmp)
        gw.conf.write_text(peers.mailbox_config(
            dovecot, sink, gw.port, extra=EXTRA.format(
                jid=peers.SUPPORT_JID, c2s_port=prosody.c2s_port)))
        t_start = time.monotonic()
        gw.start()
        print("escalon %s on 127.0.0.1:%d, store in %s"
              % (binary, gw.port, tmp), flush=True)
        prosody.wait_online(peers.SUPPORT_JID, timeout=60)
        wait("%d mail tickets" % args.mails,
             lambda: gw.last_ticket() >= args.mails, 600)
        print("mail: %d tickets after %.1f s"
              % (args.mails, time.monotonic() - t_start), flush=True)

        chat_bench.log_in(prosody, args.chat_customers, clients)
        chat_bench.send_all(clients, CHAT_MESSAGES)
        chat = args.chat_customers * CHAT_MESSAGES
        wait("%d chat messages" % chat, lambda: query(
            gw.db, "SELECT count(*) FROM messages WHERE channel = 'chat' "
            "AND direction = 'in'") >= chat, 300)
        print("chat: %d messages from %d customers committed"
              % (chat, args.chat_customers), flush=True)

        base = gw.last_ticket()
        wrk = SimpleNamespace(threads=4, connections=64, duration=10,
                              once_max=900)
        t_hooks = time.monotonic()
        for first in range(0, hooks, args.chunk):
            wrk.requests = min(args.chunk, hooks - first)
            script = webhook_bench.write_lua(wrk, tmp, first)
            want = base + first + wrk.requests
            webhook_bench.run_wrk(gw, wrk, script, "once",
                                  done=lambda: gw.last_ticket() >= want)
            now = gw.last_ticket()
            mem = memory_kib(gw.proc.pid)
            print("progress: %d of %d tickets, %.0f s, webhooks %.0f/s "
                  "overall; core VmRSS %.1f MiB, VmHWM %.1f MiB; sink got "
                  "%d mails" % (now, args.tickets,
                                time.monotonic() - t_start,
                                (now - base) / (time.monotonic() - t_hooks),
                                mib(mem.get("VmRSS")), mib(mem.get("VmHWM")),
                                drain.received + len(sink.got)), flush=True)
        hook_secs = time.monotonic() - t_hooks

        tickets = gw.ticket_count()
        waiting = query(gw.db, "SELECT count(*) FROM outbox WHERE state IN "
                        "('queued', 'retry', 'sending')")
        print("tickets in the store: %d (want %d)%s; outbox rows still to "
              "send: %d" % (tickets, args.tickets,
                            "" if tickets == args.tickets else " MISMATCH",
                            waiting))
        how = ("after %d tickets (%d mails, %d chat customers, %d "
               "webhooks); %d outbox rows still queued"
               % (tickets, args.mails, args.chat_customers, hooks, waiting))
        rows.add("RSS bench: tickets in the store", tickets, "tickets",
                 "= %d" % args.tickets, "count(*) after the intake")
        rows.add("RSS bench: webhook ingest over the whole run",
                 hooks / hook_secs if hook_secs > 0 else None,
                 "requests/s", None, "wrk in chunks of %d, store growing "
                 "to %d tickets, both children live" % (args.chunk, tickets))
        for label, kind, pid in processes(gw.proc.pid):
            mem = memory_kib(pid)
            split = "anon %.1f, files %.1f, private %.1f, PSS %.1f MiB" % (
                tuple(mib(mem.get(k, 0)) for k in
                      ("RssAnon", "RssFile", "Private", "Pss")))
            print("%-16s pid %-7d VmRSS %6.1f MiB (%s), VmHWM %6.1f MiB"
                  % (label, pid, mib(mem.get("VmRSS", 0)), split,
                     mib(mem.get("VmHWM", 0))))
            # The target is the resident size after the ingest; the
            # peak (while a backlog drains) is shown beside it.
            rows.add("RSS %s (VmRSS)" % label, mib(mem.get("VmRSS")),
                     "MiB", "< %d" % TARGET_MIB[kind],
                     "/proc/PID/status %s; now %s" % (how, split))
            rows.add("RSS %s (peak, VmHWM)" % label, mib(mem.get("VmHWM")),
                     "MiB", None, "/proc/PID/status VmHWM %s" % how)
            rows.add("RSS %s (PSS)" % label, mib(mem.get("Pss")), "MiB",
                     None, "smaps_rollup Pss: shared library pages split "
                     "among the processes that map them")
            rows.add("RSS %s (private, USS)" % label, mib(mem.get("Private")),
                     "MiB", None, "smaps_rollup Private_Clean + "
                     "Private_Dirty: without the library pages the core "
                     "and its children share")
    finally:
        for c in clients:
            c.disconnect()
        if gw is not None:
            code = gw.stop()
            print("gateway stopped, exit %s" % code)
            if code not in (0, None):
                print(gw.stderr_tail())
        drain.stop.set()
        sink.stop()
        prosody.cleanup()
        dovecot.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        rows.write(args.json)


if __name__ == "__main__":
    main()
