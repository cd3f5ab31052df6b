"""
Agents hear from escalon by mail: the team gets agent_new for a new ticket,
sla_warning when a clock reaches warn_at, and the next level's team gets
agent_escalated, through a real SMTP server (aiosmtpd) on loopback.
"""

import re
import time

import pytest

from conftest import REPO, wait_until, webhook_msg
from peers import Sink, sink  # noqa: F401 (sink is a fixture)

aiosmtpd = pytest.importorskip("aiosmtpd.controller")

TOKEN = re.compile(r"^support\+(\d+)\.([a-z2-7]{16})@example\.test$")
MSGID = re.compile(r"^<esc-(\d+)-\d+\.[a-z2-7]{16}@example\.test>$")


def config(port, smtp_port, first_response="4h"):
    return f"""\
store = "var/escalon.db"
listen = "127.0.0.1:{port}"
control_socket = "var/escalon.sock"
secret_file = "var/secret"
api_token_file = "var/api-token"
templates = "{REPO / 'templates'}"
smtp {{ url = "smtp://127.0.0.1:{smtp_port}"  from = "support@example.test"
       tls = "none" }}
outbox {{ retry_first = "1s"  retry_max = "2s"  max_attempts = 3 }}
webhook "shop" {{ secret = 's3cret'  queue = "billing" }}
agent "alice" {{ email = "alice@example.test"  name = "Alice" }}
agent "bob"   {{ email = "bob@example.test"    name = "Bob" }}
agent "carol" {{ email = "carol@example.test"  name = "Carol" }}
team "tier1" {{ agents = {{"alice", "bob"}} }}
team "tier2" {{ agents = {{"carol"}} }}
calendar "always" {{ timezone = "UTC"  hours = {{"mon-sun 00:00-24:00"}} }}
sla "standard" {{ calendar = "always"  first_response = "{first_response}"
                 next_update = "8h"  resolution = "3d"  warn_at = 50 }}
ladder "default" {{
  level 1 {{ team = "tier1" }}
  level 2 {{ team = "tier2"  on_breach = {{"first_response"}} }}
}}
queue "billing" {{ team = "tier1"  sla = "standard"  ladder = "default" }}
"""


def started(make_gateway, sink, **kw):
    g = make_gateway()
    g.write_config(config(g.port, sink.port, **kw))
    return g.start()


def test_new_ticket_mails_each_agent_of_the_team(make_gateway, sink):
    g = started(make_gateway, sink)
    r = g.post("shop", webhook_msg("m-1", subject="Réclamation facture",
                                   body="Bonjour, la facture est fausse."))
    assert r.status == 202, r
    tid = r.json["ticket"]

    for agent in ("alice@example.test", "bob@example.test"):
        wait_until(lambda: sink.to(agent), what="agent_new to " + agent)
        m = sink.to(agent)[0]
        assert "[ESC-%d]" % tid in str(m["Subject"])
        assert "Réclamation facture" in str(m["Subject"])  # RFC 2047 round trip
        assert str(m["From"]) == "support@example.test"
        assert m["Auto-Submitted"] == "auto-generated"
        mid = MSGID.match(str(m["Message-ID"]))
        assert mid and int(mid.group(1)) == tid, m["Message-ID"]
        tok = TOKEN.match(str(m["Reply-To"]))
        assert tok and int(tok.group(1)) == tid, m["Reply-To"]
        body = m.get_body(preferencelist=("plain",)).get_content()
        assert "Bonjour, la facture est fausse." in body
    # Nobody outside the team is mailed; one mail per agent.
    assert sink.to("carol@example.test") == []
    assert len(sink.to("alice@example.test")) == 1
    # The token is the same for every mail about the ticket, and differs
    # between tickets.
    r2 = g.post("shop", webhook_msg("m-2", customer="cust-43"))
    tid2 = r2.json["ticket"]
    wait_until(lambda: len(sink.to("alice@example.test")) == 2,
               what="second agent_new")
    tokens = {TOKEN.match(str(m["Reply-To"])).group(2)
              for m in sink.to("alice@example.test")}
    assert len(tokens) == 2 and tid2 != tid


def test_warning_and_escalation_mail_the_right_teams(make_gateway, sink):
    g = started(make_gateway, sink, first_response="4s")
    r = g.post("shop", webhook_msg("w-1"))
    tid = r.json["ticket"]

    # warn_at 50: the team hears at about 2 s, before the breach.
    wait_until(lambda: sink.to("alice@example.test", "SLA warning"),
               timeout=20, what="sla_warning mail to tier1")
    warn = sink.to("alice@example.test", "SLA warning")[0]
    assert "[ESC-%d]" % tid in str(warn["Subject"])
    # The breach moves the ticket to tier2, whose agent is told.
    wait_until(lambda: sink.to("carol@example.test"), timeout=20,
               what="agent_escalated mail to tier2")
    esc = sink.to("carol@example.test")[0]
    assert "[ESC-%d]" % tid in str(esc["Subject"])
    t = g.show(tid)
    assert t["level"] == 2 and t["team"] == "tier2"
    types = [e["type"] for e in t["events"]]
    assert types.index("sla_warning") < types.index("sla_breached") < \
        types.index("escalated")
    # Exactly one warning mail per agent: the warning fires once.
    time.sleep(2)
    assert len(sink.to("alice@example.test", "SLA warning")) == 1
    assert len(sink.to("bob@example.test", "SLA warning")) == 1


def test_smtp_down_is_retried_and_a_refused_recipient_is_dead(make_gateway,
                                                               sink):
    sink.stop()
    sink.refuse.add("bob@example.test")
    g = started(make_gateway, sink)
    r = g.post("shop", webhook_msg("d-1"))
    tid = r.json["ticket"]

    def waiting():
        rows = [o for o in g.outbox("--json") if o["channel"] == "email"]
        return rows and all(o["attempts"] >= 1 and o["last_error"]
                            for o in rows)
    wait_until(waiting, what="mail rows retried while SMTP is down")

    # The server comes back on the same port: alice's mail goes out once,
    # bob's is refused with a 5xx and dead at once.
    again = Sink()
    again.port = sink.port
    again.refuse = {"bob@example.test"}
    import aiosmtpd.controller as c
    # Same handler: mails land in `sink`.
    again.controller = c.Controller(sink.controller.handler,
                                    hostname="127.0.0.1", port=sink.port)
    again.start()
    try:
        wait_until(lambda: sink.to("alice@example.test"), timeout=20,
                   what="mail delivered after SMTP came back")
        wait_until(lambda: any(o["recipient"] == "bob@example.test"
                               for o in g.outbox("--dead", "--json")),
                   timeout=20, what="refused recipient dead-lettered")
        dead = [o for o in g.outbox("--dead", "--json")
                if o["recipient"] == "bob@example.test"][0]
        assert "550" in dead["last_error"], dead
        assert len(sink.to("alice@example.test")) == 1
        events = [e["type"] for e in g.show(tid)["events"]]
        assert "delivery_dead" in events
    finally:
        again.stop()
