"""
Security checks (issue 9; SPEC.md "Configuration": tls, tls_verify,
ca_file for smtp, mailbox and xmpp; secret_file and api_token_file; "HTTP":
/api behind the token; "Agents by email": reply tokens).

1. IMAP over TLS (tls = "tls" on Dovecot's imaps port, and "starttls" on
   its plain port) against a self-signed certificate: by default the
   certificate is verified, so the mailbox never logs in (/healthz shows it
   down, naming the certificate) and mail makes no ticket; with ca_file (the
   certificate itself) or tls_verify = false it works. Host names: a
   certificate for 127.0.0.1 (an IP subjectAltName) is good for host =
   "127.0.0.1"; one only for DNS:localhost is not, but is for host =
   "localhost".
2. SMTP with tls = "starttls" to a sink that requires STARTTLS with a
   self-signed certificate: without ca_file the ack stays in the outbox,
   retrying with a certificate error; with ca_file (or tls_verify = false)
   it is delivered, encrypted.
3. XMPP with tls = "starttls" against a Prosody that requires encryption,
   with a self-signed certificate: without ca_file the account never logs
   in; with ca_file (or tls_verify = false) it does and a chat message
   becomes a ticket.
4. secret_file and api_token_file are created mode 0600; after webhooks
   (good and badly signed), a mail, agent notifications, a chat message, a
   mailbox whose login is refused and a reload, no secret (the secret
   file's contents, the API token, the IMAP and XMPP passwords, the webhook
   secret) appears in the gateway's stderr, in what the CLI shows of the
   store (events, outbox last_error), in the store file, or on the command
   lines of the gateway's processes.
5. /api/tickets: no Authorization 401, a wrong token 401, the right Bearer
   200.
6. A reply token cannot be moved to another ticket: an agent's mail to
   support+<ticket 1>.<token of ticket 2>@ is refused (agent_refused).

Each test has its own servers and gateway; waits are on conditions. The
only fixed waits are the few seconds in which something must NOT happen
(no login, no ticket), and those come after the gateway has shown that it
tried.
"""

import base64
import email.utils
import json
import os
import re
import smtplib
import stat
import time
import urllib.error
import urllib.request

import pytest

from conftest import free_port, wait_until, webhook_msg
from peers import (DOVECOT, PROSODY, PROSODYCTL, SETPRIV, SUPPORT_JID,
                   ChatCustomer, Dovecot, Prosody, Sink, chat_config, mail,
                   mailbox_config)
from peers import wait_ticket

T = 30              # seconds: generous, for a loaded machine or ASan
QUIET = 5           # seconds in which something must not happen
SUPPORT = "support@example.test"
ERIKA = "erika@example.test"
ERIKA_FROM = '"Erika Mustermann" <erika@example.test>'
ALICE = "alice@example.test"

# Distinctive secrets: a hit in a log is a leak, not a common word.
IMAP_PW = "pw-Zq7xK9"
IMAP_WRONG_PW = "pw-Wr0ngQ3v"
XMPP_PW = "xp-Rt5vW2m"
HOOK_SECRET = "wh-Kp3sQ8n"
NOTIFY_SECRET = "nt-Lf6yB1c"

REPLY_TO = re.compile(r"^support\+(\d+)\.([a-z2-7]{16})@example\.test$")


# -- servers ----------------------------------------------------------------

@pytest.fixture
def servers():
    """Factory for peers with options: servers.dovecot(**kw),
    servers.sink(**kw), servers.prosody(users, **kw) -> started; all are
    stopped and removed at teardown (their logs printed)."""
    made = []

    class Make:
        @staticmethod
        def dovecot(**kw):
            if not os.access(DOVECOT, os.X_OK):
                pytest.skip("no %s" % DOVECOT)
            if os.geteuid() == 0 and not os.access(SETPRIV, os.X_OK):
                pytest.skip("no %s" % SETPRIV)
            users = kw.pop("users", None)
            d = Dovecot(**kw)
            made.append(d)
            for u, pw in (users or {}).items():
                d.add_user(u, pw)
            return d.start()

        @staticmethod
        def sink(**kw):
            pytest.importorskip("aiosmtpd.controller")
            s = Sink(**kw)
            made.append(s)
            return s.start()

        @staticmethod
        def prosody(users, **kw):
            if not (os.access(PROSODY, os.X_OK) and
                    os.access(PROSODYCTL, os.X_OK)):
                pytest.skip("no prosody")
            if os.geteuid() == 0 and not os.access(SETPRIV, os.X_OK):
                pytest.skip("no %s" % SETPRIV)
            p = Prosody(**kw)
            made.append(p)
            for u, pw in users.items():
                p.register(u, pw)
            return p.start()

    yield Make
    for x in made:
        if isinstance(x, Dovecot):
            print("--- dovecot log (%s) ---\n%s" % (x.dir, x.log()[-4000:]))
        if isinstance(x, Prosody):
            print("--- prosody log (%s) ---\n%s" % (x.dir, x.log()[-4000:]))
        x.cleanup()


@pytest.fixture
def customers():
    """Factory: customers(prosody, user, password) -> a started
    ChatCustomer; all disconnected at teardown."""
    pytest.importorskip("slixmpp")
    made = []

    def make(prosody, user, password):
        c = ChatCustomer(prosody, user, password)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.disconnect()


# -- config -----------------------------------------------------------------

def once(text, old, new):
    """text with old (which must occur exactly once) replaced by new."""
    assert text.count(old) == 1, "%r occurs %d times in:\n%s" % (
        old, text.count(old), text)
    return text.replace(old, new)


def tls_lines(mode, ca_file=None, verify=None, indent="  "):
    out = 'tls = "%s"' % mode
    if ca_file is not None:
        out += "\n%sca_file = '%s'" % (indent, ca_file)
    if verify is not None:
        out += "\n%stls_verify = %s" % (indent, "true" if verify else "false")
    return out


def imap_config(g, dovecot, sink, mode="none", ca_file=None, verify=None,
                host=None, password=None, smtp=None, extra=""):
    """mailbox_config for gateway g with the mailbox's tls settings: mode
    "tls" connects to the imaps port. smtp: the smtp section's tls lines
    (default tls = "none")."""
    port = dovecot.imaps_port if mode == "tls" else dovecot.imap_port
    text = mailbox_config(port, sink, g.port)     # extra: after the edits
    text = once(text, 'port = %d  tls = "none"' % port,
                'port = %d  %s' % (port, tls_lines(mode, ca_file, verify)))
    if host is not None:
        text = once(text, 'host = "127.0.0.1"  port = %d' % port,
                    'host = "%s"  port = %d' % (host, port))
    if password is not None:
        text = once(text, "password = 'secret'", "password = '%s'" % password)
    if smtp is not None:
        text = once(text, '       tls = "none" }', "       %s }" % smtp)
    return text + extra


def xmpp_config(g, prosody, mode="none", ca_file=None, verify=None,
                password="secret", extra=""):
    text = chat_config(prosody, g.port, password=password, extra=extra)
    return once(text, 'port = %d  tls = "none"' % prosody.c2s_port,
                'port = %d  %s' % (prosody.c2s_port,
                                   tls_lines(mode, ca_file, verify)))


def xmpp_section(text):
    m = re.search(r'^xmpp "chat" \{.*?^\}\n', text, re.S | re.M)
    assert m, text
    return m.group(0)


# -- what the gateway shows ---------------------------------------------------

def healthz(g):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % g.port,
                                    timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def channel(g, kind):
    """The /healthz entry of the (only) channel of kind imap|xmpp."""
    chans = [c for c in healthz(g)["channels"] if c["kind"] == kind]
    assert len(chans) == 1, healthz(g)
    return chans[0]


def wait_channel(g, kind, pred, what):
    last = {}

    def check():
        last["c"] = channel(g, kind)
        return last["c"] if pred(last["c"]) else None
    return wait_until(check, T, lambda: "%s: %s is %r\n%s" % (
        what, kind, last.get("c"), g.stderr()[-3000:]))




def lmtp(dovecot, raw, rcpt="support@example.test"):
    """Deliver raw into a Dovecot mailbox over LMTP, as an MTA does (no
    IMAP login of our own to confuse with the gateway's)."""
    with smtplib.LMTP("127.0.0.1", dovecot.lmtp_port, timeout=30) as c:
        c.sendmail("erika@example.test", [rcpt], raw)


def quiet(seconds, fn, what):
    """For seconds, fn() must stay falsy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        assert not v, "%s: %r" % (what, v)
        time.sleep(0.2)


def api_get(g, path, headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (g.port, path),
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# -- 1. IMAP: certificates are verified by default ------------------------

@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_imap_self_signed_certificate_is_refused_by_default(
        make_gateway, servers, mode):
    d = servers.dovecot(tls=True)
    s = servers.sink()
    g = make_gateway()
    g.write_config(imap_config(g, d, s, mode))
    g.start()
    ch = wait_channel(g, "imap", lambda c: c["state"] == "down" and
                      "certificate" in (c["detail"] or ""),
                      "the mailbox down for the certificate")
    print("imap channel:", ch)
    # It did reach Dovecot (and went away without logging in).
    wait_until(lambda: re.search(r"imap-login: .*Disconnected.*user=<>",
                                 d.log()), T,
               lambda: "the gateway never connected:\n" + d.log())
    lmtp(d, mail(ERIKA_FROM, SUPPORT, "Cert check " + mode,
                  "Please do not read this over a forged TLS link.\n"))
    quiet(QUIET, lambda: g.tickets() or d.logins(),
          "a ticket or a login through an unverified certificate")
    assert channel(g, "imap")["state"] == "down", ch
    assert healthz(g)["status"] == "degraded"
    # More than one attempt went by, each refused before LOGIN.
    assert len(re.findall(r"imap-login: .*Disconnected.*user=<>",
                          d.log())) >= 2, d.log()
    assert d.logins() == [], d.logins()


@pytest.mark.parametrize("how", ["ca_file", "tls_verify_false"])
@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_imap_tls_works_with_ca_file_or_without_verification(
        make_gateway, servers, mode, how):
    d = servers.dovecot(tls=True)
    tls = {"ca_file": d.cert_path} if how == "ca_file" else {"verify": False}
    s = servers.sink()
    g = make_gateway()
    g.write_config(imap_config(g, d, s, mode, **tls))
    g.start()
    wait_channel(g, "imap", lambda c: c["state"] in ("idle", "polling"),
                 "the mailbox logged in")
    d.append(mail(ERIKA_FROM, SUPPORT, "TLS mailbox " + mode,
                  "This came over TLS.\n"))
    wait_ticket(g, "TLS mailbox " + mode)
    logins = d.logins()
    assert logins and all(", TLS" in ln for ln in logins), logins
    s.wait_for(lambda m: m.to(ERIKA), T, what="the ack")


@pytest.mark.parametrize("host, cert_ips, ok", [
    ("127.0.0.1", ("127.0.0.1",), True),     # an IP subjectAltName
    ("127.0.0.1", (), False),                # a cert for localhost only
    ("localhost", (), True),
])
def test_imap_certificate_must_name_the_host(make_gateway, servers, host,
                                             cert_ips, ok):
    d = servers.dovecot(tls=True, cert_dns=("localhost",), cert_ips=cert_ips)
    s = servers.sink()
    g = make_gateway()
    g.write_config(imap_config(g, d, s, "tls", ca_file=d.cert_path,
                               host=host))
    g.start()
    if ok:
        wait_channel(g, "imap", lambda c: c["state"] in ("idle", "polling"),
                     "the mailbox logged in to %s" % host)
        d.append(mail(ERIKA_FROM, SUPPORT, "Hostname " + host, "Hi.\n"))
        wait_ticket(g, "Hostname " + host)
    else:
        ch = wait_channel(g, "imap", lambda c: c["state"] == "down" and
                          "certificate" in (c["detail"] or ""),
                          "the mailbox down for a certificate of another "
                          "host")
        assert "host" in ch["detail"], ch
        print("imap channel:", ch)
        lmtp(d, mail(ERIKA_FROM, SUPPORT, "Hostname " + host, "Hi.\n"))
        quiet(QUIET, lambda: g.tickets() or d.logins(),
              "a login with a certificate for another host")


# -- 2. SMTP ----------------------------------------------------------------

def _outbox_rows(g):
    return g.outbox() + g.outbox("--dead")


@pytest.mark.parametrize("how", ["default", "ca_file", "tls_verify_false"])
def test_smtp_starttls_certificate(make_gateway, servers, how):
    d = servers.dovecot()
    s = servers.sink(tls=True)
    smtp = {"default": tls_lines("starttls", indent="       "),
            "ca_file": tls_lines("starttls", ca_file=s.cert_path,
                                 indent="       "),
            "tls_verify_false": tls_lines("starttls", verify=False,
                                          indent="       ")}[how]
    g = make_gateway()
    g.write_config(imap_config(g, d, s, smtp=smtp))
    g.start()
    d.append(mail(ERIKA_FROM, SUPPORT, "SMTP TLS " + how, "Hello.\n"))
    tid = wait_ticket(g, "SMTP TLS " + how)["id"]
    if how == "default":
        last = {}

        def retrying():
            last["rows"] = _outbox_rows(g)
            return [r for r in last["rows"] if r["state"] == "retry" and
                    r["attempts"] >= 1 and r.get("last_error")]
        rows = wait_until(retrying, T, lambda: "no row retrying: %r\n%s" % (
            last.get("rows"), g.stderr()[-3000:]))
        print("retrying:", [(r["state"], r["last_error"]) for r in rows])
        for r in rows:
            assert re.search(r"certif|SSL|TLS", r["last_error"], re.I), r
        assert any("certif" in r["last_error"].lower() for r in rows), rows
        quiet(QUIET, lambda: s.all(), "mail delivered over an unverified "
              "certificate")
        assert g.show(tid)["state"] == "new"
    else:
        got = s.wait_for(lambda m: m.to(ERIKA), T, what="the ack")[0]
        assert "[ESC-%d]" % tid in got.subject, got
        assert got.tls, "the ack came without STARTTLS"
        wait_until(lambda: not [r for r in g.outbox() if
                                "erika" in json.dumps(r)], T,
                   lambda: "the ack still in the outbox: %r" % g.outbox())


# -- 3. XMPP ----------------------------------------------------------------

@pytest.mark.parametrize("how", ["default", "ca_file", "tls_verify_false"])
def test_xmpp_starttls_certificate(make_gateway, servers, customers, how):
    p = servers.prosody({"support": "secret", "erika": "pw"}, tls=True)
    tls = {"default": {}, "ca_file": {"ca_file": p.cert_path},
           "tls_verify_false": {"verify": False}}[how]
    g = make_gateway()
    g.write_config(xmpp_config(g, p, "starttls", **tls))
    g.start()
    if how == "default":
        ch = wait_channel(g, "xmpp", lambda c: c["state"] == "down" and
                          "certificate" in c["detail"],
                          "the chat account down for its certificate")
        print("xmpp channel:", ch)
        # It reached Prosody and went away without authenticating.
        wait_until(lambda: len(re.findall(r"Client connected", p.log()))
                   >= 1, T, lambda: "the gateway never connected:\n" +
                   p.log())
        erika = customers(p, "erika", "pw")
        erika.send(SUPPORT_JID, "Hello over a forged link?")
        quiet(QUIET, lambda: p.sessions(SUPPORT_JID) or g.tickets(),
              "support logged in through an unverified certificate")
        assert channel(g, "xmpp")["state"] == "down"
        assert healthz(g)["status"] == "degraded"
        assert "Authenticated as support@" not in p.log(), p.log()
    else:
        (sess,) = p.wait_online(SUPPORT_JID, T)
        assert re.search(re.escape(sess) + r"\s+info\s+Stream encrypted",
                         p.log()), p.log()
        wait_channel(g, "xmpp", lambda c: c["state"] == "online",
                     "the chat account online")
        erika = customers(p, "erika", "pw")
        erika.send(SUPPORT_JID, "Chat over TLS works")
        t = wait_until(lambda: [t for t in g.tickets()
                                if t["channel"] == "chat"], T,
                       lambda: "no chat ticket: %r\n%s" % (
                           g.tickets(), g.stderr()[-3000:]))
        assert len(t) == 1, t
        show = g.show(t[0]["id"])
        assert show["customer"]["address"] == ERIKA, show["customer"]
        assert "Chat over TLS works" in show["messages"][0]["body"]


# -- 4. files and logs ------------------------------------------------------

def _descendants(pid):
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _cmdlines(pid):
    out = {}
    for p in _descendants(pid):
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                out[p] = f.read().replace(b"\0", b" ").decode(
                    errors="replace")
        except OSError:
            pass
    return out


def test_secret_files_are_private_and_no_secret_is_logged(
        make_gateway, servers, customers):
    d = servers.dovecot(users={"support": IMAP_PW})
    s = servers.sink()
    p = servers.prosody({"support": XMPP_PW, "erika": "pw"})
    notify = '''
notify "pager" {{ url = "http://127.0.0.1:{port}/hook"  secret = '{secret}'
                 events = {{"ticket.created"}} }}
'''
    g = make_gateway()
    chat = xmpp_section(xmpp_config(g, p, password=XMPP_PW))
    wrong = f'''
mailbox "wrong" {{
  host = "127.0.0.1"  port = {d.imap_port}  tls = "none"
  user = "support"  password = '{IMAP_WRONG_PW}'  folder = "INBOX"
  address = "billing@example.test"  queue = "general"
  poll_interval = "2s"
}}
webhook "shop" {{ secret = '{HOOK_SECRET}'  queue = "general" }}
'''
    g.write_config(imap_config(
        g, d, s, password=IMAP_PW,
        extra=chat + wrong + notify.format(port=free_port(),
                                           secret=NOTIFY_SECRET)))
    var = g.dir / "var"
    assert not (var / "secret").exists() and \
        not (var / "api-token").exists()
    g.start()

    # -- the files --
    for name in ("secret", "api-token"):
        path = var / name
        wait_until(path.exists, T, "%s created" % path)
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, "%s has mode %o" % (path, mode)
    secret = (var / "secret").read_text().strip()
    token = (var / "api-token").read_text().strip()
    assert len(secret) >= 16 and len(token) >= 16, (secret, token)
    assert secret != token

    # -- traffic through every channel --
    for i in range(3):
        r = g.post("shop", webhook_msg("ord-%d" % i, subject="Order %d" % i),
                   secret=HOOK_SECRET)
        assert r.status == 202, r
    r = g.post("shop", webhook_msg("ord-bad"), secret="not-the-secret")
    assert r.status == 401, r
    d.append(mail(ERIKA_FROM, SUPPORT, "Leak check by mail", "Hello.\n"))
    tid = wait_ticket(g, "Leak check by mail")["id"]
    s.wait_for(lambda m: m.to(ERIKA), T, what="the ack")
    s.wait_for(lambda m: m.to(ALICE) and "[ESC-%d]" % tid in m.subject, T,
               what="the agent notification")
    p.wait_online(SUPPORT_JID, T)
    erika = customers(p, "erika", "pw")
    erika.send(SUPPORT_JID, "Leak check by chat")
    wait_until(lambda: [t for t in g.tickets() if t["channel"] == "chat"],
               T, lambda: "no chat ticket:\n" + g.stderr()[-3000:])
    g.ok("reply", str(tid), "--as", "alice", "We are on it.")
    s.wait_for(lambda m: m.to(ERIKA) and "We are on it." in m.body(), T,
               what="the reply")
    # The mailbox with the wrong password is refused, more than once.
    wait_until(lambda: len(re.findall(r"auth failed|Authentication failed|"
                                      r"auth_failed|Disconnected.*auth",
                                      d.log(), re.I)) >= 2, T,
               lambda: "no refused login for the wrong mailbox:\n" + d.log())
    mark = len(g.stderr())
    g.hup()
    g.wait_log(r"config reloaded", T, since=mark)
    procs = _cmdlines(g.proc.pid)

    # -- what the CLI shows of the store --
    shown = [g.ok("tickets", "--json").stdout,
             g.ok("outbox", "--json").stdout,
             g.ok("outbox", "--dead", "--json").stdout]
    for t in g.tickets():
        shown.append(g.ok("show", str(t["id"]), "--json").stdout)
    assert g.stop() == 0
    log = g.stderr()
    store = b""
    for f in var.iterdir():
        if f.name.startswith("escalon.db"):
            store += f.read_bytes()

    secrets = {"secret_file": secret, "api token": token,
               "IMAP password": IMAP_PW, "wrong IMAP password": IMAP_WRONG_PW,
               "XMPP password": XMPP_PW, "webhook secret": HOOK_SECRET,
               "notify secret": NOTIFY_SECRET}
    # The IMAP password as AUTH PLAIN would carry it.
    for pw in (IMAP_PW, IMAP_WRONG_PW):
        secrets["AUTH PLAIN of " + pw] = base64.b64encode(
            b"\0support\0" + pw.encode()).decode()
    leaks = []
    for what, value in secrets.items():
        if value in log:
            ln = next(x for x in log.splitlines() if value in x)
            leaks.append("%s in stderr: %s" % (what, ln))
        for out in shown:
            if value in out:
                leaks.append("%s in the CLI's view of the store" % what)
        if what in ("IMAP password", "wrong IMAP password", "XMPP password",
                    "api token") and value.encode() in store:
            leaks.append("%s in the store file" % what)
        for pid, cmd in procs.items():
            if value in cmd:
                leaks.append("%s on the command line of %d: %s"
                             % (what, pid, cmd))
    assert not leaks, "\n".join(leaks)


# -- 5. /api needs the token ------------------------------------------------

def test_api_needs_the_token(make_gateway):
    g = make_gateway().start()
    token = wait_until(lambda: (g.dir / "var" / "api-token").exists() and
                       (g.dir / "var" / "api-token").read_text().strip(),
                       T, "the api token file")
    st, body = api_get(g, "/api/tickets")
    assert st == 401, (st, body)
    assert token.encode() not in body
    wrong = ("0" if token[0] != "0" else "1") + token[1:]
    st, body = api_get(g, "/api/tickets",
                       {"Authorization": "Bearer " + wrong})
    assert st == 401, (st, body)
    st, body = api_get(g, "/api/tickets",
                       {"Authorization": "Bearer " + token})
    assert st == 200, (st, body)
    assert json.loads(body) == [], body


# -- 6. a reply token is good for its own ticket only ----------------------

def _send_as(sink, frm, to, subject, body):
    """Send a mail through the sink as a mail client would; returns what
    the sink got."""
    raw = mail(frm, to, subject, body)
    addr = re.search(r"<([^>]+)>", frm).group(1)
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as c:
        c.sendmail(addr, [to], raw)
    # sendmail returns after the sink's 250 to DATA: the mail is there.
    (got,) = sink.find(lambda m: m.mail_from == addr and
                       m.subject == subject)
    return got


def _deliver(dovecot, got):
    """Into the support INBOX as an MTA delivers it: Return-Path and
    Delivered-To on top of the bytes as sent."""
    top = ("Return-Path: <%s>\r\nDelivered-To: %s\r\n"
           % (got.mail_from, got.rcpts[0])).encode()
    return dovecot.append(top + got.raw)


def test_reply_token_of_another_ticket_is_refused(make_gateway, servers):
    d = servers.dovecot()
    s = servers.sink()
    g = make_gateway()
    g.write_config(imap_config(g, d, s))
    g.start()
    d.append(mail(ERIKA_FROM, SUPPORT, "Invoice 7 is wrong", "Twice.\n"))
    t1 = wait_ticket(g, "Invoice 7 is wrong")["id"]
    d.append(mail("Hans <hans@example.test>", SUPPORT, "Parcel 9 is late",
                  "Where is it?\n"))
    t2 = wait_ticket(g, "Parcel 9 is late")["id"]
    assert t1 != t2
    note2 = s.wait_for(lambda m: m.to(ALICE) and "[ESC-%d]" % t2 in
                       m.subject, T, what="the notification of ticket 2")[0]
    rt = email.utils.parseaddr(str(note2["Reply-To"]))[1]
    m = REPLY_TO.match(rt)
    assert m and int(m.group(1)) == t2, rt
    tok2 = m.group(2)

    text = "Please send your card number to me."
    sent = _send_as(s, "Alice <%s>" % ALICE,
                    "support+%d.%s@example.test" % (t1, tok2),
                    "Re: Invoice 7 is wrong [ESC-%d]" % t1, text + "\n")
    _deliver(d, sent)

    def refused():
        return [e for e in g.show(t1)["events"]
                if e["type"] == "agent_refused"]
    (ev,) = wait_until(refused, T, lambda: "no agent_refused on ESC-%d: "
                       "%r\n%s" % (t1, [e["type"] for e in
                                        g.show(t1)["events"]],
                                    g.stderr()[-3000:]))
    assert ev["detail"].get("agent") == "alice", ev
    s.wait_for(lambda m: m.to(ALICE) and "[ESC-%d]" % t1 in m.subject and
               "Not relayed" in m.subject, T, what="the agent_refused mail")
    for tid in (t1, t2):
        sh = g.show(tid)
        assert not [x for x in sh["messages"] if text in (x["body"] or "")
                    and x["direction"] in ("out", "in")], sh["messages"]
        assert sh["first_response_at"] is None, sh
    assert not [e for e in g.show(t2)["events"]
                if e["type"] == "agent_refused"]
    assert not s.find(lambda m: (m.to(ERIKA) or m.to("hans@example.test"))
                      and text in m.body())
    assert len(g.tickets()) == 2, g.tickets()
