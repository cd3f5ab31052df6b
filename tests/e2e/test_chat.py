"""
The chat channel (SPEC.md "Ticket", "Configuration": xmpp): a private
Prosody holds the support account the gateway logs in to; customers are
slixmpp clients that send chat messages to support@example.test as a person
in a chat client would, and see what the gateway sends back. Each test has
its own Prosody, customers and gateway; waits are on conditions (a few short
sleeps are on purpose: to give a duplicate the time to show up).
"""

import re
import statistics
import time
import urllib.request

from conftest import wait_until
from peers import (SUPPORT_JID, chat_config, chat_customer,  # noqa: F401
                   prosody)
from peers import with_subject, wait_ticket, ins, wait_ins

SUPPORT = SUPPORT_JID
ERIKA = "erika@example.test"
HANS = "hans@example.test"
T = 20          # seconds: generous, for a loaded machine or ASan
RECONNECT = 60  # seconds for the gateway to log in again after an outage


def started(make_gateway, prosody, online=True, **kw):
    """A running gateway on the chat config; with online, wait until its
    xmpp child has logged in to prosody as support@example.test."""
    g = make_gateway()
    g.write_config(chat_config(prosody, g.port, **kw))
    g.start()
    if online:
        prosody.wait_online(SUPPORT, T)
    return g






def from_support_about(customer, tid):
    """What customer got from support@example.test naming ESC-<tid>."""
    rx = re.compile(r"\bESC-%d\b" % tid)
    return customer.find(lambda c: c.bare == SUPPORT and rx.search(c.body))


def wait_ack(customer, tid, timeout=T):
    rx = re.compile(r"\bESC-%d\b" % tid)
    return customer.wait_for(
        lambda c: c.bare == SUPPORT and rx.search(c.body), timeout,
        what="chat from %s naming ESC-%d" % (SUPPORT, tid))[0]


def all_messages(g):
    """[(ticket show, message)] over every ticket."""
    out = []
    for t in g.tickets():
        s = g.show(t["id"])
        out += [(s, m) for m in s["messages"]]
    return out


def recorded(g, token):
    """The customer messages, on any ticket, whose body has token."""
    return [m for _, m in all_messages(g)
            if m["direction"] == "in" and token in (m.get("body") or "")]


def child_restarts(g):
    """{child: escalon_child_restarts_total} from /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.port,
                                timeout=10) as r:
        text = r.read().decode()
    return {c: float(v) for c, v in re.findall(
        r'^escalon_child_restarts_total\{child="([^"]*)"\}\s+(\S+)', text,
        re.M)}


def outbox_empty(g):
    return not g.outbox()


# -- a. a chat message is a ticket, and the customer gets an ack -----------

def test_chat_message_opens_a_ticket_and_the_customer_gets_an_ack(
        prosody, chat_customer, make_gateway):
    erika = chat_customer(prosody, "erika", "pw")
    g = started(make_gateway, prosody)
    sid = erika.send(SUPPORT, "  Printer on fire  \n"
                     "The printer in room 4 is on fire.\nErika")

    t = wait_ticket(g, "Printer on fire")
    assert t["channel"] == "chat", t
    assert t["subject"] == "Printer on fire", t
    assert t["queue"] == "general" and t["state"] == "new", t
    s = g.show(t["id"])
    assert s["customer"]["address"] == ERIKA, s["customer"]
    assert s["customer"]["channel"] == "chat", s["customer"]
    (m,) = [m for m in s["messages"] if m["direction"] == "in"]
    assert m["channel"] == "chat" and m["author"] == ERIKA, m
    assert m["message_id"] == sid, m
    assert "The printer in room 4 is on fire." in m["body"], m

    ack = wait_ack(erika, t["id"])
    assert ack.type == "chat", ack.xml
    assert ack.bare == SUPPORT, ack.xml
    assert g.running(), g.stderr()


# -- b. threading by JID ---------------------------------------------------

def test_second_message_threads_and_another_customer_opens_a_ticket(
        prosody, chat_customer, make_gateway):
    erika = chat_customer(prosody, "erika", "pw")
    hans = chat_customer(prosody, "hans", "pw")
    g = started(make_gateway, prosody)
    first = erika.send(SUPPORT, "VPN drops every hour\n"
                       "It disconnects at :00 every hour.")
    tid = wait_ticket(g, "VPN drops every hour")["id"]
    wait_ack(erika, tid)

    erika.send(SUPPORT, "It also happens on the wired network.")
    got = wait_ins(g, tid, 2)
    assert "wired network" in got[-1]["body"], got
    assert len(g.tickets()) == 1, g.tickets()

    # Hans's client happens to pick the id Erika's first message had
    # (clients choose stanza ids; simple ones count from 1 per
    # connection): a different customer, a different message.
    hans.send(SUPPORT, "Cannot print\nThe print queue is stuck.", id=first)
    t2 = wait_ticket(g, "Cannot print")
    assert t2["id"] != tid
    s2 = g.show(t2["id"])
    assert s2["customer"]["address"] == HANS, s2["customer"]
    assert s2["channel"] == "chat"
    wait_ack(hans, t2["id"])

    assert len(ins(g, tid)) == 2, g.show(tid)["messages"]
    assert len(g.tickets()) == 2, g.tickets()
    # Erika's second message was not acknowledged again, and nothing about
    # Hans's ticket went to her.
    assert len(from_support_about(erika, tid)) == 1, erika.all()
    assert from_support_about(erika, t2["id"]) == [], erika.all()


# -- c. an agent's reply reaches the customer's chat client ----------------

def test_agent_reply_reaches_the_customer_as_a_chat_message(
        prosody, chat_customer, make_gateway):
    erika = chat_customer(prosody, "erika", "pw")
    g = started(make_gateway, prosody)
    erika.send(SUPPORT, "Laptop will not boot\n"
               "Black screen since the update.")
    tid = wait_ticket(g, "Laptop will not boot")["id"]
    wait_ack(erika, tid)

    text = ("Hold the power button for 30 s, then start it again "
            "(\u00fcml\u00e4ut, \u2713)")
    g.ok("reply", tid, "--as", "alice", text)
    (got,) = erika.wait_for(lambda c: c.bare == SUPPORT and text in c.body,
                            T, what="the reply")
    assert got.type == "chat", got.xml
    s = g.show(tid)
    outs = [m for m in s["messages"]
            if m["direction"] == "out" and text in (m["body"] or "")]
    assert len(outs) == 1, s["messages"]
    assert s["state"] == "open", s["state"]

    # A reply of several lines (from stdin) keeps its lines.
    g.ok("reply", tid, "--as", "bob", "-",
         input="First, unplug the charger.\nThen hold the button.\n")
    (got,) = erika.wait_for(
        lambda c: c.bare == SUPPORT and "unplug the charger" in c.body, T,
        what="the second reply")
    assert "First, unplug the charger.\nThen hold the button." in got.body, \
        got.body
    assert len(erika.find(lambda c: text in c.body)) == 1, erika.all()


# -- d. kill -9: what came while the gateway was down, exactly once --------

def test_kill9_messages_sent_while_down_land_exactly_once(
        prosody, chat_customer, make_gateway):
    erika = chat_customer(prosody, "erika", "pw")
    hans = chat_customer(prosody, "hans", "pw")
    g = started(make_gateway, prosody)
    first = erika.send(SUPPORT, "Order 4711 missing\nWhere is my parcel?")
    tid = wait_ticket(g, "Order 4711 missing")["id"]
    wait_ack(erika, tid)
    wait_until(lambda: outbox_empty(g), T,
               lambda: "the ack is still in the outbox: %r" % g.outbox())

    g.kill9()
    try:
        prosody.wait_offline(SUPPORT, 10)
    except AssertionError as e:
        raise AssertionError("support@example.test is still logged in 10 s "
                             "after kill -9 of the gateway: its xmpp child "
                             "outlived it\n%s" % e)
    down = [erika.send(SUPPORT, "While you were down: one"),
            erika.send(SUPPORT, "While you were down: two")]

    g.start()
    wait_ins(g, tid, 3, timeout=RECONNECT)

    def once_each():
        got = ins(g, tid)
        bodies = [m["body"] for m in got]
        for b in ("Where is my parcel?", "While you were down: one",
                  "While you were down: two"):
            n = sum(b in x for x in bodies)
            assert n == 1, "%r is on ticket %d %d times: %r" % (
                b, tid, n, got)
        assert len(got) == 3, got
        assert [m["message_id"] for m in got] == [first] + down, got
        assert len(g.tickets()) == len(with_subject(g, "Sentinel")) + 1, \
            g.tickets()

    time.sleep(3)               # time for a duplicate to show up
    once_each()

    assert g.stop() == 0, g.stderr()
    g.start()
    prosody.wait_online(SUPPORT, T)
    hans.send(SUPPORT, "Sentinel after the restart\nAre you there?")
    t2 = wait_ticket(g, "Sentinel after the restart")
    wait_ack(hans, t2["id"])
    time.sleep(2)
    once_each()
    assert len(g.tickets()) == 2, g.tickets()
    # The ack went out once; the replayed messages were not acknowledged.
    assert len(from_support_about(erika, tid)) == 1, erika.all()


# -- e. Prosody restarts under the gateway ---------------------------------

def test_prosody_restart_the_gateway_logs_in_again(prosody, chat_customer,
                                                   make_gateway):
    erika = chat_customer(prosody, "erika", "pw")
    hans = chat_customer(prosody, "hans", "pw")
    g = started(make_gateway, prosody)
    erika.send(SUPPORT, "Website is slow\nPages take 30 s to load.")
    tid = wait_ticket(g, "Website is slow")["id"]
    wait_ack(erika, tid)

    ne, nh = erika.sessions, hans.sessions
    prosody.restart()
    erika.wait_online(T, after=ne)
    hans.wait_online(T, after=nh)
    prosody.wait_online(SUPPORT, RECONNECT)

    erika.send(SUPPORT, "Still slow after lunch.")
    got = wait_ins(g, tid, 2, timeout=RECONNECT)
    assert "Still slow after lunch." in got[-1]["body"], got

    hans.send(SUPPORT, "Login page broken\nIt answers 500.")
    t2 = wait_ticket(g, "Login page broken", timeout=RECONNECT)
    wait_ack(hans, t2["id"])

    text = "We found the slow query and fixed it."
    g.ok("reply", tid, "--as", "alice", text)
    erika.wait_for(lambda c: c.bare == SUPPORT and text in c.body, T,
                   what="the reply after the restart")

    time.sleep(2)               # time for a duplicate to show up
    assert len(ins(g, tid)) == 2, g.show(tid)["messages"]
    assert len(g.tickets()) == 2, g.tickets()
    assert len(from_support_about(erika, tid)) == 1, erika.all()
    assert g.running(), g.stderr()


def test_a_reply_queued_while_offline_goes_when_the_account_is_back(
        prosody, chat_customer, make_gateway):
    """An agent's reply written while the chat server is down waits, and
    goes as soon as the gateway is logged in again, not at the end of a
    long retry backoff (retry_first is 60 s here)."""
    erika = chat_customer(prosody, "erika", "pw")
    g = started(make_gateway, prosody, extra='outbox { retry_first = "60s" '
                ' retry_max = "10m" }\n')
    erika.send(SUPPORT, "Invoice missing\nNo invoice for November.")
    tid = wait_ticket(g, "Invoice missing")["id"]
    wait_ack(erika, tid)

    prosody.stop()
    text = "Here is your November invoice."
    g.ok("reply", tid, "--as", "alice", text)
    g.wait_log(r"destination unreachable, its messages wait.*xmpp:chat", T)
    ne = erika.sessions
    prosody.start()
    erika.wait_online(T, after=ne)
    prosody.wait_online(SUPPORT, RECONNECT)
    t0 = time.monotonic()
    erika.wait_for(lambda c: c.bare == SUPPORT and text in c.body, 15,
                   what="the reply queued while offline")
    assert time.monotonic() - t0 < 15
    time.sleep(2)               # time for a duplicate to show up
    assert len([c for c in erika.all() if text in c.body]) == 1, erika.all()


# -- f. hostile stanzas ----------------------------------------------------

CHATSTATES = "http://jabber.org/protocol/chatstates"


def test_hostile_stanzas_do_not_kill_the_child_and_chat_states_make_nothing(
        prosody, chat_customer, make_gateway):
    # Prosody refuses client stanzas over 256 KiB itself: raise that, so a
    # 1 MiB message reaches the gateway.
    prosody.set_stanza_limit(2 * 1024 * 1024).restart()
    prosody.register("olga", "pw")
    erika = chat_customer(prosody, "erika", "pw")
    hans = chat_customer(prosody, "hans", "pw")
    olga = chat_customer(prosody, "olga", "pw")
    g = started(make_gateway, prosody)

    # Olga types, pauses, sends empty and blank bodies: nothing to record.
    to = "to='%s' type='chat'" % SUPPORT
    for i, payload in enumerate([
            "<composing xmlns='%s'/>" % CHATSTATES,
            "<paused xmlns='%s'/>" % CHATSTATES,
            "<active xmlns='%s'/>" % CHATSTATES,
            "<gone xmlns='%s'/>" % CHATSTATES,
            "<body/>",
            "<body></body>",
            "<body>   \n\t  \n </body>",
            "<body/><active xmlns='%s'/>" % CHATSTATES,
            "<body>  </body><composing xmlns='%s'/>" % CHATSTATES]):
        olga.send_raw("<message %s id='olga-%d'>%s</message>"
                      % (to, i, payload))

    # Erika: a 1 MiB message, and stanzas no sane client sends.
    huge = "Huge log attached\n" + "0123456789abcdef" * 65536 + \
        "\nEND-OF-HUGE-LOG"
    assert len(huge) > 1024 * 1024
    erika.send(SUPPORT, huge)
    weird = [
        # two bodies, one with markup inside
        "<message %s id='w-1'><body>markup <b xmlns='urn:x'>inside</b> "
        "body</body><body xml:lang='de'>zweiter Body</body></message>",
        # tricky text: bidi override, zero-width, combining, astral, CDATA
        "<message %s id='w-2'><body>Bidi \u202egnirts\u202c zero\u200bwidth "
        "e\u0301\u0301\u0301 \U0001F525 <![CDATA[<script>alert(1)</script>]]>"
        " &amp;&lt;&gt;&quot;&apos; &#x1F600;</body></message>",
        # one first line of 20,000 characters
        "<message %s id='w-3'><body>" + "L" * 20000 + "\nrest</body>"
        "</message>",
        # deeply nested unknown elements (Prosody's archive cannot store
        # much deeper: its serializer stops at 127 Lua tables and the
        # message is dropped)
        "<message %s id='w-4'><body>nested below</body>" +
        "<x xmlns='urn:deep'>" * 50 + "</x>" * 50 + "</message>",
        # a 100 KB attribute
        "<message %s id='w-5' data-junk='" + "j" * 100000 +
        "'><body>big attribute</body></message>",
        # a body in a foreign namespace only, a subject only, XHTML-IM
        "<message %s id='w-6'><body xmlns='urn:not-a-body'>fake</body>"
        "</message>",
        "<message %s id='w-7'><subject>subject only</subject></message>",
        "<message %s id='w-8'><body>xhtml plain</body><html xmlns="
        "'http://jabber.org/protocol/xhtml-im'><body xmlns="
        "'http://www.w3.org/1999/xhtml'><p>xhtml <b>rich</b></p></body>"
        "</html></message>",
        # an error, a headline, a groupchat type, no type at all
        "<message to='%s' type='error' id='w-9'><body>bounced</body>"
        "<error type='cancel'><item-not-found xmlns="
        "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        % SUPPORT,
        "<message to='%s' type='headline' id='w-10'><body>headline news"
        "</body></message>" % SUPPORT,
        "<message to='%s' type='groupchat' id='w-11'><body>groupchat to a "
        "person</body></message>" % SUPPORT,
        "<message to='%s' id='w-12'><body>no type at all</body></message>"
        % SUPPORT,
        # a customer-made delay from 1999
        "<message %s id='w-13'><body>from the past</body><delay xmlns="
        "'urn:xmpp:delay' stamp='1999-12-31T23:59:59Z'/></message>",
    ]
    for w in weird:
        erika.send_raw(w % to if "%s" in w else w)
    # A message without an id: the archive id identifies it (SPEC.md).
    erika.send_raw("<message %s><body>no id at all</body></message>" % to)
    # Two different messages carrying the same forged stanza-id: not
    # Prosody's (by= is not support@example.test), so not an archive id.
    for i in range(2):
        erika.send_raw(
            "<message %s id='forged-%d'><body>forged stanza-id %d</body>"
            "<stanza-id xmlns='urn:xmpp:sid:0' by='example.test' "
            "id='forged'/></message>" % (to, i, i))

    # A normal message after all that is a ticket, and acknowledged.
    time.sleep(0.5)
    hans.send(SUPPORT, "Normal after the storm\nAre you still there?")
    t = wait_ticket(g, "Normal after the storm", timeout=T)
    wait_ack(hans, t["id"])
    assert g.running(), g.stderr()

    # Erika's messages are on record: the huge one whole, the one without
    # an id, both with the forged stanza-id.
    wait_until(lambda: recorded(g, "forged stanza-id 1"), T,
               lambda: "erika's last message is not recorded: %r"
               % [(m["message_id"], (m["body"] or "")[:60])
                  for _, m in all_messages(g)])
    big = recorded(g, "END-OF-HUGE-LOG")
    assert len(big) == 1, "the 1 MiB message: %d records" % len(big)
    assert len(big[0]["body"]) >= 1024 * 1024, len(big[0]["body"])
    assert len(recorded(g, "no id at all")) == 1, \
        "the message without an id is not recorded once"
    for i in range(2):
        assert len(recorded(g, "forged stanza-id %d" % i)) == 1, \
            "message %d with a forged stanza-id is not recorded once" % i
    # A customer's own <delay/> does not date the message.
    (past,) = recorded(g, "from the past")
    assert not past["at"].startswith("1999"), past

    # Olga's chat states and empty bodies made nothing.
    time.sleep(1)
    olgas = [(s["id"], m) for s, m in all_messages(g)
             if "olga" in (m.get("author") or "")]
    assert olgas == [], olgas
    customers = [g.show(x["id"])["customer"]["address"]
                 for x in g.tickets()]
    assert "olga@example.test" not in customers, customers
    assert not olga.find(lambda c: c.bare == SUPPORT), olga.all()

    # Neither the gateway nor its xmpp child died, and Erika is still in
    # her first session (Prosody took everything she sent).
    restarts = child_restarts(g)
    assert restarts.get("xmpp:chat") == 0, (restarts, g.stderr()[-3000:])
    assert erika.sessions == 1, erika.events
    assert g.running(), g.stderr()


# -- g. latency ------------------------------------------------------------

def test_chat_message_to_ticket_latency(prosody, chat_customer, make_gateway,
                                        record_property):
    n = 20
    users = ["cust%02d" % i for i in range(n)]
    for u in users:
        prosody.register(u, "pw")
    people = [chat_customer(prosody, u, "pw") for u in users]
    erika = chat_customer(prosody, "erika", "pw")
    g = started(make_gateway, prosody)
    erika.send(SUPPORT, "Warm-up\nJust checking.")
    wait_ack(erika, wait_ticket(g, "Warm-up")["id"])

    took = []
    for i, c in enumerate(people):
        token = "Latency check %02d" % i
        t0 = time.monotonic()
        c.send(SUPPORT, token + "\nHow quick is this?")
        wait_until(lambda: with_subject(g, token), T,
                   "no ticket for %r" % token, interval=0.01)
        took.append(time.monotonic() - t0)
    p50 = statistics.median(took)
    p90 = sorted(took)[int(0.9 * len(took)) - 1]
    record_property("chat_to_ticket_s", took)
    print("chat -> ticket over %d messages: p50 %.3f s, p90 %.3f s, "
          "max %.3f s" % (len(took), p50, p90, max(took)))
    assert len(g.tickets()) == n + 1
    assert p50 < 2.0, "chat -> ticket p50 %.3f s: %r" % (p50, took)
