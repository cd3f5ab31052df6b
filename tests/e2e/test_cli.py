"""
The command line (SPEC.md "Command line"): listing and showing tickets, and
the agent acts. Every act runs twice: against a running gateway (over the
control socket) and with no gateway running (straight on the store); the user
sees the same result either way.
"""

import pytest

from conftest import RFC3339_UTC, webhook_msg

ACTS_ON_MISSING = [
    ("reply", "--as", "alice", "hello"),
    ("note", "hello"),
    ("resolve",),
    ("pending",),
    ("severity", "high"),
    ("assign", "alice"),
    ("rootcause", "a", "cause"),
    ("escalate",),
]


@pytest.fixture(params=["live", "offline"])
def tk(request, make_gateway):
    """(gateway, ticket id) of one fresh webhook ticket; in "offline" the
    gateway has been stopped again (SIGTERM, exit 0) before the test acts."""
    g = make_gateway()
    g.start()
    r = g.post("shop", webhook_msg("cli-1"))
    assert r.status == 202, r
    if request.param == "offline":
        assert g.stop() == 0
    return g, r.json["ticket"]


def one_line(p):
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, "expected a one-line confirmation, got %r" \
        % p.stdout
    return lines[0]


def events(t, kind):
    return [e for e in t["events"] if e["type"] == kind]


def test_reply(tk):
    g, tid = tk
    one_line(g.ok("reply", tid, "--as", "alice", "Thanks,", "looking",
                  "into", "it."))
    t = g.show(tid)
    out = [m for m in t["messages"] if m["direction"] == "out"]
    assert len(out) == 1, t["messages"]
    assert out[0]["author"] == "Alice"
    assert out[0]["body"] == "Thanks, looking into it."
    assert out[0]["internal"] is False
    assert t["state"] == "open"
    assert RFC3339_UTC.match(t["first_response_at"] or ""), t
    assert t["first_response_at"] >= t["created_at"]
    # the customer's message is still the first one
    assert t["messages"][0]["direction"] == "in"


def test_reply_text_from_stdin(tk):
    g, tid = tk
    text = "Line one\nLine two with  two spaces\n\nKind regards"
    one_line(g.ok("reply", tid, "--as", "alice", "-", input=text))
    out = [m for m in g.show(tid)["messages"] if m["direction"] == "out"]
    assert len(out) == 1
    assert out[0]["body"].rstrip("\n") == text


def test_reply_by_ref(tk):
    g, tid = tk
    g.ok("reply", "ESC-%d" % tid, "--as", "bob", "On it")
    out = [m for m in g.show(tid)["messages"] if m["direction"] == "out"]
    assert [m["author"] for m in out] == ["Bob"]


def test_note_is_internal(tk):
    g, tid = tk
    one_line(g.ok("note", tid, "customer", "is", "a", "VIP"))
    t = g.show(tid)
    notes = [m for m in t["messages"] if m["direction"] == "note"]
    assert len(notes) == 1, t["messages"]
    assert notes[0]["internal"] is True
    assert notes[0]["body"] == "customer is a VIP"
    # a note is not a public reply
    assert t["first_response_at"] is None
    assert [m for m in t["messages"] if m["direction"] == "out"] == []


def test_note_from_stdin(tk):
    g, tid = tk
    g.ok("note", tid, "-", input="checked the\nledger")
    notes = [m for m in g.show(tid)["messages"] if m["direction"] == "note"]
    assert [n["body"].rstrip("\n") for n in notes] == ["checked the\nledger"]


def test_resolve(tk):
    g, tid = tk
    one_line(g.ok("resolve", tid, "duplicate", "charge", "in", "billing"))
    t = g.show(tid)
    assert t["state"] == "resolved"
    assert RFC3339_UTC.match(t["resolved_at"] or ""), t
    assert t["resolved_at"] >= t["created_at"]
    assert events(t, "state_changed"), t["events"]


def test_resolve_without_cause(tk):
    g, tid = tk
    g.ok("resolve", tid)
    assert g.show(tid)["state"] == "resolved"


def test_pending(tk):
    g, tid = tk
    one_line(g.ok("pending", tid))
    assert g.show(tid)["state"] == "pending"


def test_severity(tk):
    g, tid = tk
    before = g.show(tid)
    one_line(g.ok("severity", tid, "high"))
    t = g.show(tid)
    assert t["severity"] == "high"
    # the clocks keep their start: created_at is unchanged
    assert t["created_at"] == before["created_at"]


def test_bad_severity_is_refused(tk):
    g, tid = tk
    p = g.cli("severity", tid, "urgent")
    assert p.returncode == 1, p
    assert "urgent" in p.stderr, p.stderr
    assert g.show(tid)["severity"] == "normal"


def test_assign(tk):
    g, tid = tk
    one_line(g.ok("assign", tid, "alice"))
    one_line(g.ok("assign", tid, "bob"))


def test_assign_unknown_agent_is_refused(tk):
    g, tid = tk
    p = g.cli("assign", tid, "mallory")
    assert p.returncode == 1, p
    assert "mallory" in p.stderr, p.stderr


def test_reply_as_unknown_agent_is_refused(tk):
    g, tid = tk
    p = g.cli("reply", tid, "--as", "mallory", "hi")
    assert p.returncode == 1, p
    assert "mallory" in p.stderr, p.stderr
    assert [m for m in g.show(tid)["messages"]
            if m["direction"] == "out"] == []


def test_rootcause(tk):
    g, tid = tk
    one_line(g.ok("rootcause", tid, "stale", "exchange", "rate"))
    assert g.show(tid)["state"] in ("new", "open")


@pytest.mark.parametrize("act", ACTS_ON_MISSING, ids=lambda a: a[0])
def test_act_on_unknown_ticket(tk, act):
    g, tid = tk

    def stored(t):
        # The clocks' elapsed time moves on by itself; the rest must not.
        return {k: v for k, v in t.items() if k != "clocks"}
    before = stored(g.show(tid))
    for missing in ("999", "ESC-999"):
        p = g.cli(act[0], missing, *act[1:])
        assert p.returncode == 1, "%s %s: %r" % (act[0], missing, p)
        assert p.stderr.strip(), "no error message for %s %s" % (act[0],
                                                                 missing)
        assert p.stdout.strip() == ""
    assert stored(g.show(tid)) == before


def test_acts_in_sequence(tk):
    """note, reply, pending, resolve: the thread lists the messages in order
    and each state change is an event."""
    g, tid = tk
    g.ok("note", tid, "checking")
    g.ok("reply", tid, "--as", "alice", "We are on it")
    g.ok("pending", tid)
    g.ok("resolve", tid, "refunded")
    t = g.show(tid)
    assert [m["direction"] for m in t["messages"]] == ["in", "note", "out"]
    ats = [m["at"] for m in t["messages"]]
    assert ats == sorted(ats), ats
    assert t["state"] == "resolved"
    assert len(events(t, "state_changed")) >= 2, t["events"]


# ---- reading ----

def test_show_unknown_ticket(gw):
    for missing in ("999", "ESC-999"):
        p = gw.cli("show", missing, "--json")
        assert p.returncode == 1, p
        assert p.stderr.strip()
        assert p.stdout.strip() == ""


@pytest.mark.parametrize("bad", ["abc", "ESC-", "ESC-x", "-1", "0"])
def test_show_bad_id(gw, bad):
    p = gw.cli("show", bad, "--json")
    assert p.returncode == 1, p
    assert p.stderr.strip()


def test_show_text(gw):
    r = gw.post("shop", webhook_msg("txt-1", subject="Card declined"))
    assert r.status == 202, r
    p = gw.ok("show", r.json["ticket"])
    assert "ESC-%d" % r.json["ticket"] in p.stdout
    assert "Card declined" in p.stdout
    assert "I was charged twice." in p.stdout


def test_tickets_text_and_empty(gw):
    assert gw.tickets() == []
    r = gw.post("shop", webhook_msg("txt-2", subject="Refund please"))
    assert r.status == 202, r
    p = gw.ok("tickets")
    assert r.json["ref"] in p.stdout
    assert "Refund please" in p.stdout


def test_tickets_filters(make_gateway):
    g = make_gateway(webhooks={"shop": "billing", "web": "general"}).start()
    ids = {}
    for hook, mid in [("shop", "f-1"), ("shop", "f-2"), ("web", "f-3")]:
        r = g.post(hook, webhook_msg(mid))
        assert r.status == 202, r
        ids[mid] = r.json["ticket"]
    g.ok("resolve", ids["f-2"])

    def idset(*args):
        return sorted(t["id"] for t in g.tickets(*args))

    assert idset() == sorted(ids.values())
    assert idset("--queue", "billing") == sorted([ids["f-1"], ids["f-2"]])
    assert idset("--queue", "general") == [ids["f-3"]]
    assert idset("--state", "resolved") == [ids["f-2"]]
    assert idset("--state", "new") == sorted([ids["f-1"], ids["f-3"]])
    assert idset("--state", "new", "--queue", "billing") == [ids["f-1"]]
    assert idset("--state", "closed") == []
    for t in g.tickets():
        assert RFC3339_UTC.match(t["created_at"]), t


def test_tickets_bad_state_is_refused(gw):
    p = gw.cli("tickets", "--state", "sleeping", "--json")
    assert p.returncode == 1, p
    assert "sleeping" in p.stderr


def test_unknown_command(idle):
    p = idle.cli("frobnicate")
    assert p.returncode == 1, p
    assert p.stderr.strip()


def test_config_from_environment(gw):
    r = gw.post("shop", webhook_msg("env-1"))
    assert r.status == 202
    p = gw.cli("tickets", "--json", conf=False,
               env={"ESCALON_CONFIG": str(gw.conf)})
    assert p.returncode == 0, p
    assert '"ESC-%d"' % r.json["ticket"] in p.stdout


def test_live_acts_do_not_block_intake(gw):
    """Acts through the control socket and webhooks interleave."""
    r = gw.post("shop", webhook_msg("mix-0"))
    tid = r.json["ticket"]
    for i in range(1, 6):
        gw.ok("note", tid, "note", str(i))
        assert gw.post("shop", webhook_msg("mix-%d" % i)).status == 202
    assert len(gw.tickets()) == 6
    notes = [m for m in gw.show(tid)["messages"] if m["direction"] == "note"]
    assert [n["body"] for n in notes] == ["note %d" % i for i in range(1, 6)]


def test_offline_acts_survive_a_restart(idle):
    idle.start()
    r = idle.post("shop", webhook_msg("persist-1"))
    assert r.status == 202
    tid = r.json["ticket"]
    assert idle.stop() == 0
    idle.ok("reply", tid, "--as", "alice", "done offline")
    idle.ok("resolve", tid)
    idle.start()
    t = idle.show(tid)
    assert t["state"] == "resolved"
    assert [m["body"] for m in t["messages"] if m["direction"] == "out"] == \
        ["done offline"]
    # and the restarted gateway goes on numbering
    r2 = idle.post("shop", webhook_msg("persist-2"))
    assert r2.status == 202 and r2.json["ticket"] != tid
