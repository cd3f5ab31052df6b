#!/usr/bin/python3
"""
Chat intake benchmark.

    /usr/bin/python3 tests/bench/chat_bench.py /path/to/escalon [--customers N]
        [--messages M] [--json FILE]

Starts a private Prosody (tests/e2e/peers.py) and `escalon run` with one
xmpp account, logs in N customers (slixmpp) and has each send M messages
as fast as it can. Measures, from the first send, how long until every
message is committed in the store (messages/s through one account), then
the latency of single messages (send -> committed: p50, p99), reading the
store read-only. A customer's messages join their open ticket, so the run
ends with N tickets holding N*M messages. --json FILE writes the figures
as rows (benchlib.py).
"""

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time

from benchlib import Rows, pct, query

import peers  # noqa: E402  (tests/e2e, on the path through benchlib)


def inbound(db):
    return query(db, "SELECT count(*) FROM messages WHERE direction='in'")


def register(prosody, customers):
    """The gateway's account (support/secret) and customers c0, c1 ..."""
    prosody.register("support", "secret")
    for i in range(customers):
        prosody.register("c%d" % i, "pw")


def log_in(prosody, customers, clients):
    """Log customers c0, c1 ... in, appending each to clients as it is
    started (so that the caller disconnects those that were)."""
    for i in range(customers):
        clients.append(peers.ChatCustomer(prosody, "c%d" % i, "pw").start())


def send_all(clients, messages):
    """Each client sends messages to the support account, in turns."""
    for k in range(messages):
        for i, c in enumerate(clients):
            c.send(peers.SUPPORT_JID, "message %d from c%d" % (k, i))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("escalon")
    ap.add_argument("--customers", type=int, default=10)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--latency", type=int, default=100)
    ap.add_argument("--json", metavar="FILE",
                    help="write the figures there as JSON rows")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp folder (config, store, log)")
    args = ap.parse_args()
    rows = Rows()

    prosody = peers.Prosody()
    prosody.start()
    root = tempfile.mkdtemp(prefix="escalon-chat-bench-")
    gw, clients = None, []
    try:
        register(prosody, args.customers)
        port = peers.free_port()
        os.makedirs(os.path.join(root, "var"))
        conf = os.path.join(root, "escalon.conf")
        with open(conf, "w") as f:
            f.write(peers.chat_config(prosody, port))
        db = os.path.join(root, "var", "escalon.db")
        gw = subprocess.Popen([args.escalon, "-c", conf, "run"],
                              stderr=open(os.path.join(root, "log"), "w"))
        prosody.wait_online(peers.SUPPORT_JID)
        log_in(prosody, args.customers, clients)

        total = args.customers * args.messages
        t0 = time.monotonic()
        send_all(clients, args.messages)
        sent = time.monotonic() - t0
        while inbound(db) < total and time.monotonic() - t0 < 300:
            time.sleep(0.05)
        took = time.monotonic() - t0
        got = inbound(db)
        print("chat intake: %d messages from %d customers through one "
              "account: %d committed in %.2f s (sending took %.2f s): "
              "%.0f messages/s" % (total, args.customers, got, took, sent,
                                   got / took))
        rows.add("Chat ingest", got / took if got >= total else None,
                 "messages/s", None,
                 "%d customers x %d messages through one XMPP account "
                 "(Prosody), first send -> all committed; %d of %d "
                 "committed" % (args.customers, args.messages, got, total))

        lat = []
        for k in range(args.latency):
            want = inbound(db) + 1
            t0 = time.monotonic()
            clients[k % len(clients)].send(peers.SUPPORT_JID, "ping %d" % k)
            while inbound(db) < want and time.monotonic() - t0 < 30:
                time.sleep(0.001)
            lat.append(time.monotonic() - t0)
        lat.sort()
        if lat:
            print("chat latency, send -> committed, over %d messages: p50 "
                  "%.1f ms, p99 %.1f ms" % (len(lat), 1000 * pct(lat, 50),
                                            1000 * pct(lat, 99)))
            for p in (50, 99):
                rows.add("Chat send -> committed p%d" % p,
                         1000 * pct(lat, p), "ms", None,
                         "%d messages one at a time, store read every "
                         "1 ms" % len(lat))
    finally:
        for c in clients:
            c.disconnect()
        if gw is not None:
            gw.send_signal(signal.SIGTERM)
            gw.wait(timeout=30)
        prosody.stop()
        prosody.cleanup()
        if args.keep:
            print("kept " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
        rows.write(args.json)


if __name__ == "__main__":
    main()
