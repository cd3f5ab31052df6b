#!/usr/bin/python3
"""
Chat intake benchmark.

    /usr/bin/python3 tests/bench/chat_bench.py /path/to/escalon [--customers N]
        [--messages M]

Starts a private Prosody (tests/e2e/peers.py) and `escalon run` with one
xmpp account, logs in N customers (slixmpp) and has each send M messages
as fast as it can. Measures, from the first send, how long until every
message is committed in the store (messages/s through one account), then
the latency of single messages (send -> committed: p50, p99), reading the
store read-only. A customer's messages join their open ticket, so the run
ends with N tickets holding N*M messages.
"""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import peers  # noqa: E402


def count(db, sql):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return c.execute(sql).fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def inbound(db):
    return count(db, "SELECT count(*) FROM messages WHERE direction='in'")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("escalon")
    ap.add_argument("--customers", type=int, default=10)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--latency", type=int, default=100)
    args = ap.parse_args()

    prosody = peers.Prosody()
    prosody.start()
    root = tempfile.mkdtemp(prefix="escalon-chat-bench-")
    gw, clients = None, []
    try:
        prosody.register("support", "secret")
        for i in range(args.customers):
            prosody.register("c%d" % i, "pw")
        port = peers.free_port()
        os.makedirs(os.path.join(root, "var"))
        conf = os.path.join(root, "escalon.conf")
        with open(conf, "w") as f:
            f.write(peers.chat_config(prosody, port))
        db = os.path.join(root, "var", "escalon.db")
        gw = subprocess.Popen([args.escalon, "-c", conf, "run"],
                              stderr=open(os.path.join(root, "log"), "w"))
        prosody.wait_online(peers.SUPPORT_JID)
        for i in range(args.customers):
            c = peers.ChatCustomer(prosody, "c%d" % i, "pw")
            c.start()
            clients.append(c)

        total = args.customers * args.messages
        t0 = time.monotonic()
        for k in range(args.messages):
            for i, c in enumerate(clients):
                c.send(peers.SUPPORT_JID, "message %d from c%d" % (k, i))
        sent = time.monotonic() - t0
        while inbound(db) < total and time.monotonic() - t0 < 300:
            time.sleep(0.05)
        took = time.monotonic() - t0
        got = inbound(db)
        print("chat intake: %d messages from %d customers through one "
              "account: %d committed in %.2f s (sending took %.2f s): "
              "%.0f messages/s" % (total, args.customers, got, took, sent,
                                   got / took))

        lat = []
        for k in range(args.latency):
            want = inbound(db) + 1
            t0 = time.monotonic()
            clients[k % len(clients)].send(peers.SUPPORT_JID, "ping %d" % k)
            while inbound(db) < want and time.monotonic() - t0 < 30:
                time.sleep(0.001)
            lat.append(time.monotonic() - t0)
        lat.sort()
        print("chat latency, send -> committed, over %d messages: p50 %.1f "
              "ms, p99 %.1f ms" % (len(lat), 1000 * lat[len(lat) // 2],
                                   1000 * lat[min(len(lat) - 1,
                                                  int(len(lat) * .99))]))
    finally:
        for c in clients:
            c.disconnect()
        if gw is not None:
            gw.send_signal(signal.SIGTERM)
            gw.wait(timeout=30)
        prosody.stop()
        prosody.cleanup()


if __name__ == "__main__":
    main()
