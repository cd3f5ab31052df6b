"""
Agents by email (SPEC.md "Agents by email", "Templates"): agents get
notifications at the SMTP sink and answer them with a real mail client
(mutt 2.2 in batch mode, sending to the sink); what mutt sent is then put in
the support mailbox (IMAP APPEND into Dovecot, with the Return-Path and
Delivered-To an MTA adds), the way the agent's reply would reach the
gateway in the world. Customers write by mail (put in Dovecot as in
test_imap.py) or by chat (slixmpp on Prosody).

Each test has its own Dovecot, sink (and Prosody) and gateway; waits are on
conditions, never fixed sleeps. "Nothing reached the customer" is checked
after a later event has gone through the whole pipeline (a notification
the team gets for a later customer mail, and an empty outbox).
"""

import datetime
import email.utils
import os
import re
import subprocess

import pytest

from conftest import wait_until
from peers import (bare_id, chat_config, chat_customer,  # noqa: F401
                   dovecot, mail, mailbox_config, message_id, prosody, sink)
from peers import with_subject, wait_ticket

SUPPORT = "support@example.test"
ERIKA = "erika@example.test"
ERIKA_FROM = '"Erika Mustermann" <erika@example.test>'
ALICE = "alice@example.test"
BOB = "bob@example.test"
MUTT = "/usr/bin/mutt"
T = 30          # seconds: generous, for a loaded machine or ASan

REPLY_TO = re.compile(r"^support\+(\d+)\.([a-z2-7]{16})@example\.test$")
SIGNED_ID = re.compile(r"^<esc-(\d+)-[^@>\s]+@example\.test>$")

# What subjects of the gateway's mails start or contain, per template.
KIND = {
    "agent_new": "New ticket in",
    "agent_reply": "Customer replied",
    "agent_refused": "Not relayed",
    "agent_error": "Command not carried out",
    "resolved": "Resolved:",
    "csat": "How did we do?",
}

SIGNATURE = {
    ALICE: "Alice Example\nTier 1 support, Example Ltd.\nPhone +49 30 555 0101",
    BOB: "Bob Beispiel\nTier 1 support, Example Ltd.",
}


# -- an agent's mail client ------------------------------------------------

class Mutt:
    """A person's mutt (2.2) in batch mode: `mutt -n -F muttrc -H draft`,
    SMTP to the sink, no copy kept. Mutt adds Message-ID and Date and sends
    the draft's In-Reply-To/References as written."""

    def __init__(self, home, sink, address, name):
        self.home = str(home)
        os.makedirs(self.home, exist_ok=True)
        self.sink = sink
        self.address = address
        self.name = name
        self.muttrc = os.path.join(self.home, "muttrc")
        self.n = 0
        with open(self.muttrc, "w") as f:
            f.write(f"""\
set smtp_url = "smtp://127.0.0.1:{sink.port}/"
set from = "{name} <{address}>"
set use_from = yes
set realname = "{name}"
set hostname = "example.test"
set record = ""
set copy = no
set charset = "utf-8"
set send_charset = "us-ascii:utf-8"
# The sink speaks plain SMTP (Debian's mutt insists on TLS by default).
unset ssl_force_tls
set ssl_starttls = no
""")

    def send(self, to, subject, body, in_reply_to=None, references=None,
             cc=None):
        """Send a mail; returns what the sink received from it (a Got)."""
        self.n += 1
        draft = os.path.join(self.home, "draft-%d.eml" % self.n)
        head = ["To: %s" % to, "Subject: %s" % subject]
        if cc:
            head.append("Cc: %s" % cc)
        if in_reply_to:
            head.append("In-Reply-To: %s" % in_reply_to)
        if references:
            head.append("References: %s" % references)
        with open(draft, "w", encoding="utf-8") as f:
            f.write("\n".join(head) + "\n\n" + body)
        seen = {id(g) for g in self.sink.all()}
        env = {"HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin"),
               "LANG": "C.UTF-8", "TERM": "dumb"}
        p = subprocess.run([MUTT, "-n", "-F", self.muttrc, "-H", draft],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60, env=env, cwd=self.home)
        assert p.returncode == 0, "mutt exited %d: %s%s" % (
            p.returncode, p.stdout, p.stderr)
        # mutt exits after the sink's 250 to DATA: the mail is there.
        got = [g for g in self.sink.all() if id(g) not in seen and
               g.mail_from.lower() == self.address and
               g.subject == subject]
        assert len(got) == 1, got
        return got[0]

    def reply(self, original, text, quote=True, signature=True, to=None):
        """Reply to original (a Got) as mutt does: to its Reply-To (else
        From), "Re: " + its subject, In-Reply-To its Message-ID and
        References its References plus that; the body is text, then
        mutt's attribution and the quote, then "-- " and the signature."""
        addr = to or email.utils.parseaddr(
            str(original["Reply-To"] or original["From"]))[1]
        subject = original.subject
        if not subject.lower().startswith("re:"):
            subject = "Re: " + subject
        mid = str(original["Message-ID"]).strip()
        refs = " ".join(x for x in (str(original["References"] or "")
                                    .split() + [mid]) if x)
        body = text.rstrip("\n") + "\n"
        if quote:
            body += "\n" + mutt_quote(original)
        if signature:
            body += "\n-- \n" + SIGNATURE.get(self.address, self.name) + "\n"
        return self.send(addr, subject, body, in_reply_to=mid,
                         references=refs)


def mutt_quote(original):
    """original's text as mutt quotes it in a reply: its attribution
    ("On %d, %n wrote:" with the default $date_format) and each line
    behind "> " ($indent_string; an empty line gets a bare ">")."""
    when = email.utils.parsedate_to_datetime(str(original["Date"]))
    off = when.utcoffset() or datetime.timedelta(0)
    mins = int(off.total_seconds() // 60)
    zone = "%s%02d%02d" % ("-" if mins < 0 else "+", abs(mins) // 60,
                           abs(mins) % 60)
    name, addr = email.utils.parseaddr(str(original["From"]))
    lines = ["On %s %s, %s wrote:" % (
        when.strftime("%a, %b %d, %Y at %I:%M:%S%p"), zone, name or addr)]
    for ln in original.body().splitlines():
        lines.append("> " + ln if ln.strip() else ">")
    return "\n".join(lines) + "\n"


def deliver(dovecot, got):
    """Put a mail the sink received into the support INBOX as an MTA
    delivers it: Return-Path and Delivered-To (its envelope recipient) on
    top of the bytes as sent, by IMAP APPEND. Returns the new UID."""
    rcpt = got.rcpts[0]
    top = ("Return-Path: <%s>\r\nDelivered-To: %s\r\n"
           % (got.mail_from, rcpt)).encode()
    return dovecot.append(top + got.raw)


@pytest.fixture
def mutt(tmp_path, sink):
    """Factory: mutt(address, name) -> a Mutt sending to the sink."""
    if not os.access(MUTT, os.X_OK):
        pytest.skip("no %s (apt-get install mutt)" % MUTT)

    def make(address, name):
        return Mutt(tmp_path / ("mutt-" + address.split("@")[0]), sink,
                    address, name)
    return make


# -- the gateway and what it shows -----------------------------------------

def started(make_gateway, dovecot, sink, extra=""):
    g = make_gateway()
    g.write_config(mailbox_config(dovecot, sink, g.port, extra=extra))
    return g.start()




def events(g, tid, kind):
    return [e for e in g.show(tid)["events"] if e["type"] == kind]


def messages(g, tid, direction=None):
    return [m for m in g.show(tid)["messages"]
            if direction is None or m["direction"] == direction]


def wait_show(g, tid, pred, what, timeout=T):
    """Wait until pred(show --json of tid) holds; return that document."""
    last = {}

    def check():
        last["s"] = g.show(tid)
        return last["s"] if pred(last["s"]) else None
    return wait_until(check, timeout, lambda: "ticket %s: %s; state %s, "
                      "messages %r, events %r\n%s" % (
                          tid, what, last["s"].get("state"),
                          last["s"].get("messages"),
                          [e["type"] for e in last["s"].get("events", [])],
                          g.stderr()[-4000:]))


def is_auto(m):
    v = m["Auto-Submitted"]
    return v is not None and str(v).strip().lower() != "no"


def from_addr(m):
    return email.utils.parseaddr(str(m["From"]))[1].lower()


def notes_to(sink, agent, tid, kind):
    """The mails of template kind to agent about ticket tid."""
    tag = "[ESC-%d]" % tid
    return sink.find(lambda m: m.to(agent) and tag in m.subject and
                     KIND[kind] in m.subject)


def wait_note(sink, agent, tid, kind, n=1, timeout=T):
    tag = "[ESC-%d]" % tid
    return sink.wait_for(lambda m: m.to(agent) and tag in m.subject and
                         KIND[kind] in m.subject, timeout, n=n,
                         what="%s to %s about ESC-%d" % (kind, agent, tid))


def to_customer(sink, addr=ERIKA):
    return sink.find(lambda m: m.to(addr))


def wait_customer(sink, pred, what, addr=ERIKA, timeout=T):
    return sink.wait_for(lambda m: m.to(addr) and pred(m), timeout,
                         what=what)


def check_notification(n, tid):
    """A notification as SPEC.md has it: From the mailbox, Reply-To the
    tokened address of tid, a signed Message-ID naming tid."""
    assert from_addr(n) == SUPPORT, n["From"]
    rt = email.utils.parseaddr(str(n["Reply-To"] or ""))[1]
    got = REPLY_TO.match(rt)
    assert got and int(got.group(1)) == tid, n["Reply-To"]
    assert len(rt.split("@")[0]) < 64, rt
    mid = SIGNED_ID.match(str(n["Message-ID"]).strip())
    assert mid and int(mid.group(1)) == tid, n["Message-ID"]
    return rt


def open_ticket(g, dovecot, sink, subject, body, frm=ERIKA_FROM):
    """A customer mail into the mailbox; wait for its ticket, the ack and
    agent_new to alice and bob. Returns (ticket id, the customer mail's
    raw bytes, the ack, alice's notification)."""
    raw = mail(frm, SUPPORT, subject, body)
    dovecot.append(raw)
    tid = wait_ticket(g, subject)["id"]
    ack = wait_customer(sink, lambda m: "[ESC-%d]" % tid in m.subject,
                        "the ack")[0]
    (new_alice,) = wait_note(sink, ALICE, tid, "agent_new")
    wait_note(sink, BOB, tid, "agent_new")
    return tid, raw, ack, new_alice


def later_customer_mail(g, dovecot, sink, tid, ack, text):
    """Erika writes again on tid (in reply to the ack): wait until alice is
    told (agent_reply) and the outbox has drained. Everything queued
    before this mail has been through the pipeline by then."""
    before = len(notes_to(sink, ALICE, tid, "agent_reply"))
    dovecot.append(mail(ERIKA_FROM, SUPPORT, "Re: " + ack.subject, text,
                        in_reply_to=str(ack["Message-ID"]).strip(),
                        references=str(ack["Message-ID"]).strip()))
    wait_note(sink, ALICE, tid, "agent_reply", n=before + 1)
    wait_until(lambda: not g.outbox(), T,
               lambda: "outbox not drained: %r" % g.outbox())


def assert_not_relayed(g, sink, tid, text):
    """Nothing but automatic mail went to Erika, and text is in no mail to
    her nor in any `out` message of the ticket."""
    people = [m for m in to_customer(sink) if not is_auto(m)]
    assert people == [], [(m.subject, m.body()[:300]) for m in people]
    leaked = [m for m in to_customer(sink) if text in m.body()]
    assert leaked == [], leaked
    outs = [m for m in messages(g, tid, "out") if text in (m["body"] or "")]
    assert outs == [], outs


def clean_text(body):
    return body.replace("\r\n", "\n").strip()


def assert_stripped(body, agent=ALICE):
    """No quote, attribution or signature of the agent's mail in body."""
    for ln in body.replace("\r\n", "\n").split("\n"):
        assert not ln.startswith(">"), body
    assert "wrote:" not in body, body
    assert "\n-- \n" not in "\n" + body + "\n", body
    for ln in SIGNATURE[agent].split("\n"):
        assert ln not in body, body
    for leak in ("New ticket", "Reply-To", "support+", "#note"):
        assert leak not in body, body


# -- 1. a reply by mail reaches the customer, threaded and clean -----------

def test_agent_reply_by_mail_reaches_the_customer(make_gateway, dovecot,
                                                  sink, mutt):
    g = started(make_gateway, dovecot, sink)
    alice = mutt(ALICE, "Alice")
    tid, raw, ack, note = open_ticket(
        g, dovecot, sink, "Printer on fire",
        "Hello,\n\nthe printer in room 4 is on fire.\n\nErika\n")
    rt = check_notification(note, tid)
    (bob_note,) = notes_to(sink, BOB, tid, "agent_new")
    assert check_notification(bob_note, tid) == rt
    assert bare_id(str(bob_note["Message-ID"])) != \
        bare_id(str(note["Message-ID"]))
    assert "the printer in room 4 is on fire." in note.body(), note.body()

    text = ("Hello Erika,\n\nplease pull the plug and leave the room; "
            "facilities are on their way.\n\nAlice")
    sent = alice.reply(note, text)
    assert sent.rcpts == [rt], sent.rcpts
    deliver(dovecot, sent)

    (reply,) = wait_customer(sink, lambda m: not is_auto(m),
                             "the relayed reply")
    assert clean_text(reply.body()) == clean_text(text), reply.body()
    assert_stripped(reply.body())
    assert bare_id(str(reply["In-Reply-To"])) == bare_id(message_id(raw)), \
        reply["In-Reply-To"]
    assert bare_id(message_id(raw)) in str(reply["References"]), \
        reply["References"]
    assert "[ESC-%d]" % tid in reply.subject, reply.subject
    assert reply["Auto-Submitted"] is None or \
        str(reply["Auto-Submitted"]).strip().lower() == "no", \
        reply["Auto-Submitted"]
    assert from_addr(reply) == SUPPORT, reply["From"]
    assert reply.rcpts == [ERIKA], reply.rcpts
    mid = SIGNED_ID.match(str(reply["Message-ID"]).strip())
    assert mid and int(mid.group(1)) == tid, reply["Message-ID"]

    s = g.show(tid)
    outs = [m for m in s["messages"] if m["direction"] == "out" and
            "pull the plug" in (m["body"] or "")]
    assert len(outs) == 1, s["messages"]
    assert outs[0]["author"] == "Alice", outs[0]
    assert outs[0]["internal"] is False, outs[0]
    assert_stripped(outs[0]["body"])
    assert s["first_response_at"] is not None, s
    assert s["state"] == "open", s["state"]
    # Alice's mail is recorded once; it is no customer message.
    mine = [m for m in s["messages"]
            if bare_id(m.get("message_id")) ==
            bare_id(str(sent["Message-ID"]))]
    assert len(mine) <= 1, mine
    assert not [m for m in s["messages"] if m["direction"] == "in" and
                "pull the plug" in (m["body"] or "")], s["messages"]
    # Neither Alice nor Bob is told about Alice's own reply.
    wait_until(lambda: not g.outbox(), T,
               lambda: "outbox not drained: %r" % g.outbox())
    assert notes_to(sink, ALICE, tid, "agent_reply") == []
    assert notes_to(sink, BOB, tid, "agent_reply") == []


# -- 2. #note: on the ticket, not to the customer --------------------------

def test_note_by_mail_stays_internal(make_gateway, dovecot, sink, mutt):
    g = started(make_gateway, dovecot, sink)
    alice = mutt(ALICE, "Alice")
    tid, raw, ack, note = open_ticket(
        g, dovecot, sink, "VPN drops every hour",
        "It disconnects at :00 every hour.\n")
    secret = "Her router is an old FritzBox; firmware from 2019."
    deliver(dovecot, alice.reply(note, "#note\n" + secret))

    s = wait_show(g, tid, lambda s: [m for m in s["messages"]
                                     if secret in (m["body"] or "")],
                  "the note")
    (n,) = [m for m in s["messages"] if secret in (m["body"] or "")]
    assert n["direction"] == "note", n
    assert n["internal"] is True, n
    assert n["author"] == "Alice", n
    assert_stripped(n["body"])
    assert s["first_response_at"] is None, s   # a note is no response

    later_customer_mail(g, dovecot, sink, tid, ack,
                        "It also happens on the wired network.\n")
    assert_not_relayed(g, sink, tid, secret)
    assert to_customer(sink) == [ack], to_customer(sink)


# -- 3. #resolve with a cause and a message; the survey; a rating ----------

def test_resolve_by_mail_then_rating_by_reply(make_gateway, dovecot, sink,
                                              mutt):
    g = started(make_gateway, dovecot, sink)
    alice = mutt(ALICE, "Alice")
    tid, raw, ack, note = open_ticket(
        g, dovecot, sink, "Printer prints nothing",
        "The printer takes jobs but prints nothing.\n")
    deliver(dovecot, alice.reply(
        note, "#resolve printer cable\nIt was the cable."))

    s = wait_show(g, tid, lambda s: s["state"] == "resolved", "resolved")
    assert s["root_cause"] == "printer cable", s["root_cause"]
    assert s["resolved_at"] is not None, s

    resolved = wait_customer(sink, lambda m: KIND["resolved"] in m.subject,
                             "the resolved mail")[0]
    csat = wait_customer(sink, lambda m: KIND["csat"] in m.subject,
                         "the csat mail")[0]
    order = to_customer(sink)
    assert "[ESC-%d]" % tid in resolved.subject, resolved.subject
    assert "It was the cable." in resolved.body(), resolved.body()
    assert "#resolve" not in resolved.body(), resolved.body()
    assert "wrote:" not in resolved.body(), resolved.body()
    assert not re.search(r"(?m)^>", resolved.body()), resolved.body()
    for ln in SIGNATURE[ALICE].split("\n"):
        assert ln not in resolved.body(), resolved.body()
    assert "[ESC-%d]" % tid in csat.subject, csat.subject

    # Erika answers the survey with a number, as mail clients quote it.
    cid = str(csat["Message-ID"]).strip()
    body = "5\n\n" + mutt_quote(csat)
    dovecot.append(mail(ERIKA_FROM, SUPPORT, "Re: " + csat.subject, body,
                        in_reply_to=cid, references=cid))
    s = wait_show(g, tid, lambda s: [e for e in s["events"]
                                     if e["type"] == "csat"],
                  "the csat event")
    (ev,) = [e for e in s["events"] if e["type"] == "csat"]
    assert ev["detail"].get("score") == 5, ev
    assert s["csat"]["score"] == 5, s.get("csat")    # escalon show
    assert "rating: 5 of 5" in g.ok("show", str(tid)).stdout
    rep = g.json("report", "--json")
    assert rep["csat"]["other"] == {"mean": 5.0, "count": 1}, rep["csat"]

    # A rating does not reopen the ticket, nor is the team told of it.
    wait_until(lambda: not g.outbox(), T,
               lambda: "outbox not drained: %r" % g.outbox())
    s = g.show(tid)
    assert s["state"] == "resolved", s["state"]
    assert not [e for e in s["events"] if e["type"] == "reopened"], \
        s["events"]
    assert notes_to(sink, ALICE, tid, "agent_reply") == []
    # The resolution message went in the resolved mail, not as a reply
    # of its own; nothing answered the rating.
    others = [m for m in to_customer(sink)
              if m is not ack and m not in (resolved, csat)]
    assert others == [], others

    # Last, as it is its own matter: the survey comes after the news that
    # the request is resolved, not before it.
    assert order.index(resolved) < order.index(csat), \
        "csat arrived before resolved: %r" % order


# -- 4. a mail from an agent address without a valid token -----------------

@pytest.mark.parametrize("how", ["no_token", "wrong_token",
                                 "customer_message_id"])
def test_forged_agent_reply_is_refused(make_gateway, dovecot, sink, mutt,
                                       how):
    g = started(make_gateway, dovecot, sink)
    alice = mutt(ALICE, "Alice")
    tid, raw, ack, note = open_ticket(
        g, dovecot, sink, "Invoice 2025-118 is wrong",
        "I was charged twice.\n")
    text = "Dear customer, please send your card number to me."
    subject = "Re: Invoice 2025-118 is wrong [ESC-%d]" % tid
    if how == "no_token":
        sent = alice.send(SUPPORT, subject, text + "\n")
    elif how == "wrong_token":
        # The ticket's tokened address with someone else's token.
        rt = email.utils.parseaddr(str(note["Reply-To"]))[1]
        good = REPLY_TO.match(rt).group(2)
        bad = ("a" if good[0] != "a" else "b") + good[1:]
        sent = alice.send("support+%d.%s@example.test" % (tid, bad),
                          subject, text + "\n")
    else:
        # In reply to the customer's ack: signed, but customer-facing.
        aid = str(ack["Message-ID"]).strip()
        sent = alice.send(SUPPORT, subject, text + "\n", in_reply_to=aid,
                          references=aid)
    deliver(dovecot, sent)

    (refused,) = wait_note(sink, ALICE, tid, "agent_refused")
    assert from_addr(refused) == SUPPORT, refused["From"]
    why = refused.body()
    assert "Invoice 2025-118" in why and "token" in why, why
    s = wait_show(g, tid, lambda s: [e for e in s["events"]
                                     if e["type"] == "agent_refused"],
                  "the agent_refused event")
    (ev,) = [e for e in s["events"] if e["type"] == "agent_refused"]
    assert ev["detail"].get("agent") == "alice", ev
    assert ev["detail"].get("reason"), ev
    # Not a customer message either, and no ticket of its own.
    assert not [m for m in s["messages"] if m["direction"] == "in" and
                text in (m["body"] or "")], s["messages"]
    assert len(g.tickets()) == 1, g.tickets()
    assert notes_to(sink, BOB, tid, "agent_refused") == []

    later_customer_mail(g, dovecot, sink, tid, ack,
                        "Any news on my invoice?\n")
    assert_not_relayed(g, sink, tid, text)
    assert g.show(tid)["first_response_at"] is None


# -- 5. an unknown command: agent_error, nothing relayed --------------------

def test_unknown_command_is_answered_with_agent_error(make_gateway, dovecot,
                                                      sink, mutt):
    g = started(make_gateway, dovecot, sink)
    alice = mutt(ALICE, "Alice")
    tid, raw, ack, note = open_ticket(
        g, dovecot, sink, "Password reset link expired",
        "The link says it has expired.\n")
    text = "I have sent you a new link; it is valid for one hour."
    deliver(dovecot, alice.reply(note, "#frobnicate now\n" + text))

    (err,) = wait_note(sink, ALICE, tid, "agent_error")
    assert from_addr(err) == SUPPORT, err["From"]
    assert "frobnicate" in err.body(), err.body()
    s = wait_show(g, tid, lambda s: [e for e in s["events"]
                                     if e["type"] ==
                                     "agent_command_failed"],
                  "an event for the failed command")
    assert s["state"] == "new", s["state"]     # nothing acted
    assert s["first_response_at"] is None, s

    later_customer_mail(g, dovecot, sink, tid, ack,
                        "Still waiting for a link.\n")
    assert_not_relayed(g, sink, tid, text)
    assert notes_to(sink, BOB, tid, "agent_error") == []


# -- 6. a chat customer gets the agent's mail reply in chat ----------------

def xmpp_section(prosody, port):
    text = chat_config(prosody, port)
    m = re.search(r'^xmpp "chat" \{.*?^\}\n', text, re.S | re.M)
    assert m, text
    return m.group(0)


def test_chat_customer_gets_the_agents_mail_reply(make_gateway, dovecot,
                                                  sink, mutt, prosody,
                                                  chat_customer):
    erika = chat_customer(prosody, "erika", "pw")
    g = make_gateway()
    g.write_config(mailbox_config(dovecot, sink, g.port,
                                  extra=xmpp_section(prosody, g.port)))
    g.start()
    prosody.wait_online(SUPPORT, T)
    alice = mutt(ALICE, "Alice")

    erika.send(SUPPORT, "Laptop will not boot\nBlack screen since the "
               "update.")
    t = wait_ticket(g, "Laptop will not boot")
    tid = t["id"]
    assert t["channel"] == "chat", t
    (note,) = wait_note(sink, ALICE, tid, "agent_new")
    check_notification(note, tid)
    assert "Black screen since the update." in note.body(), note.body()

    text = ("Hold the power button for 30 s, then start it again "
            "(\u00fcml\u00e4ut, \u2713).")
    deliver(dovecot, alice.reply(note, text))
    (got,) = erika.wait_for(lambda c: c.bare == SUPPORT and
                            "power button" in c.body, T,
                            what="the relayed reply")
    assert got.type == "chat", got.xml
    assert clean_text(got.body) == clean_text(text), got.body
    assert_stripped(got.body)
    s = g.show(tid)
    outs = [m for m in s["messages"] if m["direction"] == "out" and
            "power button" in (m["body"] or "")]
    assert len(outs) == 1 and outs[0]["author"] == "Alice", s["messages"]
    assert outs[0]["channel"] == "chat", outs[0]
    # Nothing went by mail to the chat customer.
    assert to_customer(sink) == [], to_customer(sink)


# -- 7. a customer reply to a resolved ticket reopens it -------------------

def test_customer_reply_reopens_a_resolved_ticket(make_gateway, dovecot,
                                                  sink, mutt):
    g = started(make_gateway, dovecot, sink)
    alice = mutt(ALICE, "Alice")
    tid, raw, ack, note = open_ticket(
        g, dovecot, sink, "Printer prints streaks",
        "Every page has grey streaks.\n")
    deliver(dovecot, alice.reply(note, "#resolve toner\nI replaced the "
                                 "toner cartridge."))
    wait_show(g, tid, lambda s: s["state"] == "resolved", "resolved")

    # Erika answers the mail of ours she has at hand (the ack: the
    # resolved mail is test_resolve_by_mail_then_rating_by_reply's).
    aid = str(ack["Message-ID"]).strip()
    again = "Sorry, the streaks are back since this morning."
    dovecot.append(mail(ERIKA_FROM, SUPPORT, "Re: " + ack.subject,
                        again + "\n\n" + mutt_quote(ack),
                        in_reply_to=aid, references=[message_id(raw), aid]))

    s = wait_show(g, tid, lambda s: s["state"] == "open", "reopened")
    assert [e for e in s["events"] if e["type"] == "reopened"], s["events"]
    ins = [m for m in s["messages"] if m["direction"] == "in"]
    assert len(ins) == 2 and again in ins[-1]["body"], ins
    assert len(g.tickets()) == 1, g.tickets()
    for agent in (ALICE, BOB):
        (told,) = wait_note(sink, agent, tid, "agent_reply")
        check_notification(told, tid)
        assert again in told.body(), told.body()
