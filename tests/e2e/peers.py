"""
Real peers on loopback for the mail tests: a private Dovecot (IMAP + LMTP)
in a temp folder, an SMTP server that keeps what it receives (aiosmtpd), a
builder for realistic customer mail, and the escalon config that ties a
gateway to them. See ../../../shared/PEERS.md for the facts behind it.

Dovecot refuses to run its login processes as root, so when the tests run
as root the whole server runs as `nobody`/`nogroup` (through setpriv), in a
folder made with tempfile.mkdtemp() (pytest's tmp_path sits under a 0700
folder that `nobody` cannot enter).
"""

import datetime
import email
import email.policy
import email.utils
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from email.message import EmailMessage

import pytest

from conftest import REPO, free_port, wait_until

DOVECOT = "/usr/sbin/dovecot"
SETPRIV = "/usr/bin/setpriv"
DOVECOT_START_TIMEOUT = 10
OPENSSL = "/usr/bin/openssl"


# -- Dovecot ---------------------------------------------------------------

def _server_user():
    """(user, group, uid, gid) the servers run as: nobody/nogroup as root,
    else the invoking user."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        try:
            gr = grp.getgrnam("nogroup")
        except KeyError:
            gr = grp.getgrgid(pw.pw_gid)
        return pw.pw_name, gr.gr_name, pw.pw_uid, gr.gr_gid
    pw = pwd.getpwuid(os.geteuid())
    gr = grp.getgrgid(os.getegid())
    return pw.pw_name, gr.gr_name, pw.pw_uid, gr.gr_gid


def _chown_tree(path, uid, gid):
    if os.geteuid() != 0:
        return
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)


def wait_port(port, timeout, proc=None, what="server", log=None,
              greeting=None):
    """Wait until 127.0.0.1:port accepts a connection (and, with greeting,
    sends a first line starting with it). Fails early when proc exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s exited with %d before listening on %d%s"
                                 % (what, proc.returncode, port,
                                    log() if log else ""))
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=1) as s:
                if greeting is None:
                    return
                s.settimeout(2)
                line = s.makefile("rb").readline()
                if line.startswith(greeting):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("%s not listening on %d after %ss%s"
                                 % (what, port, timeout, log() if log else ""))
        time.sleep(0.02)


def make_cert(folder, cn="localhost", dns=("localhost",),
              ips=("127.0.0.1",), days=1, name="server", uid=None,
              gid=None):
    """A self-signed certificate and its key (RSA 2048, no passphrase,
    `days` days) made with openssl in folder: (cert path, key path). The
    subjectAltName lists dns names and ips; the certificate is its own CA
    (basicConstraints CA:TRUE), so it can be given as a ca_file. With
    uid/gid (as root) the files are handed to that user (a server that
    reads them unprivileged)."""
    os.makedirs(folder, exist_ok=True)
    cert = os.path.join(folder, name + ".crt")
    key = os.path.join(folder, name + ".key")
    san = ",".join(["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips])
    cmd = [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
           "-keyout", key, "-out", cert, "-days", str(days),
           "-subj", "/CN=%s" % cn]
    if san:
        cmd += ["-addext", "subjectAltName=" + san]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, "openssl req: %d\n%s%s" % (
        p.returncode, p.stdout, p.stderr)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    if uid is not None and os.geteuid() == 0:
        for f in (cert, key):
            os.chown(f, uid, gid)
    return cert, key


class _Daemon:
    """What the test servers share: a process of its own (its own process
    group) started in self.dir, its output in self.out_path, its log in
    self.log_path; subclasses give argv() and start()."""

    proc = None
    _out = None

    def _spawn(self):
        self._out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._out,
                                     cwd=self.dir, start_new_session=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5):
        """SIGTERM by pid, wait; SIGKILL (the whole process group) after
        timeout seconds. Returns the exit code; the data stays."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Children of the master (Dovecot's imap, auth ...) go with it:
        # nobody may still hold the ports before a restart.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None
        return self.proc.returncode

    def restart(self):
        """Stop and start again: same ports, same data."""
        self.stop()
        return self.start()

    def cleanup(self):
        if self.running():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _why(self):
        """The tail of its output and its log, for a failure message."""
        out = ""
        try:
            with open(self.out_path, errors="replace") as f:
                out = f.read()
        except FileNotFoundError:
            pass
        return ":\n" + out[-3000:] + self.log()[-3000:]


class Dovecot(_Daemon):
    """A private Dovecot (IMAP + LMTP, plaintext) on free loopback ports,
    state and mail in a temp folder. User `support`, password `secret`.

    tls=True: a self-signed certificate (made with openssl, for CN
    localhost with the subjectAltNames cert_dns and cert_ips; cert_path is
    the file to give as a ca_file), `ssl = yes` (STARTTLS offered on
    imap_port) and an imaps listener on imaps_port; tls="required":
    `ssl = required` (no login without TLS). The helper methods (append,
    count ...) then log in over imaps, trusting that certificate."""

    def __init__(self, extra_conf="", tls=False, cert_dns=("localhost",),
                 cert_ips=("127.0.0.1",)):
        self.user, self.group, self.uid, self.gid = _server_user()
        self.extra_conf = extra_conf    # more dovecot.conf lines
        self.dir = tempfile.mkdtemp(prefix="escalon-dovecot-")
        os.chmod(self.dir, 0o755)
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.tls = tls
        self.imaps_port = None
        self.cert_path = self.key_path = None
        if tls:
            self.imaps_port = free_port()
            self.cert_path, self.key_path = make_cert(
                os.path.join(self.dir, "tls"), cn="localhost",
                dns=cert_dns, ips=cert_ips)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.users_file = os.path.join(self.dir, "users")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.out_path = os.path.join(self.dir, "dovecot.stdout")
        self.users = {}
        self.proc = None
        self.started_in = None      # seconds the last start took
        for d in ("run", "state", "mail"):
            os.mkdir(os.path.join(self.dir, d))
        self._write_config()
        self.add_user("support", "secret")

    # -- config --
    def _write_config(self):
        d, u, g = self.dir, self.user, self.group
        if self.tls:
            ssl = (f"ssl = {'required' if self.tls == 'required' else 'yes'}"
                   f"\nssl_cert = <{self.cert_path}"
                   f"\nssl_key = <{self.key_path}")
            imaps = f"address = 127.0.0.1\n    port = {self.imaps_port}"
        else:
            ssl = "ssl = no"
            imaps = "port = 0"
        text = f"""\
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {u}
default_internal_group = {g}
default_login_user = {u}
mail_uid = {u}
mail_gid = {g}
first_valid_uid = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
{self.extra_conf}
"""
        with open(self.conf, "w") as f:
            f.write(text)
        _chown_tree(self.dir, self.uid, self.gid)

    def add_user(self, name, password):
        """Add a mail user. Dovecot's passwd-file driver looks at the file
        at most once per wall-clock second (its ioloop time), so while the
        server runs this waits into the next second: then the next login
        sees the new user."""
        self.users[name] = password
        tmp = self.users_file + ".new"
        with open(tmp, "w") as f:
            for n, p in self.users.items():
                f.write("%s:{PLAIN}%s::::%s/mail/%s\n" % (n, p, self.dir, n))
        if os.geteuid() == 0:
            os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, self.users_file)
        if self.running():
            time.sleep(1.05 - time.time() % 1)
        return self

    # -- process --
    def argv(self):
        cmd = [DOVECOT, "-F", "-c", self.conf]
        if os.geteuid() == 0:
            cmd = [SETPRIV, "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                   "--clear-groups"] + cmd
        return cmd

    def start(self, timeout=DOVECOT_START_TIMEOUT):
        assert not self.running(), "dovecot already running"
        t0 = time.monotonic()
        self._spawn()
        wait_port(self.imap_port, timeout, self.proc, "dovecot (imap)",
                  self._why, greeting=b"* OK")
        wait_port(self.lmtp_port, timeout, self.proc, "dovecot (lmtp)",
                  self._why)
        if self.imaps_port:
            wait_port(self.imaps_port, timeout, self.proc, "dovecot (imaps)",
                      self._why)
        self.started_in = time.monotonic() - t0
        return self

    def logins(self, user="support"):
        """The imap-login "Login:" lines of user in the log (each names
        how: "TLS" when the session was encrypted)."""
        return [ln for ln in self.log().splitlines()
                if "imap-login: " in ln and
                " Login: user=<%s>" % user in ln]

    # -- IMAP, as a mail client --
    def connect(self, user="support", folder=None, readonly=True):
        """A logged-in imaplib.IMAP4 (folder selected when given); over
        imaps, trusting cert_path, when the server has TLS."""
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.cert_path)
            ctx.check_hostname = False      # the chain is what matters here
            c = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port,
                                  ssl_context=ctx, timeout=30)
        else:
            c = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)
        c.login(user, self.users[user])
        if folder is not None:
            typ, data = c.select(_quote(folder), readonly=readonly)
            assert typ == "OK", (typ, data)
        return c

    def append(self, raw, user="support", folder="INBOX", conn=None):
        """IMAP APPEND raw (bytes) as a delivery would; returns the new
        message's UID (from APPENDUID), or None."""
        c = conn or self.connect(user)
        try:
            typ, data = c.append(_quote(folder), None, None, raw)
            assert typ == "OK", (typ, data)
            m = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            return int(m.group(1)) if m else None
        finally:
            if conn is None:
                _logout(c)

    def append_many(self, raws, user="support", folder="INBOX"):
        """APPEND each of raws over one connection; returns the UIDs."""
        c = self.connect(user)
        try:
            return [self.append(r, user, folder, conn=c) for r in raws]
        finally:
            _logout(c)

    def count(self, user="support", folder="INBOX"):
        c = self.connect(user)
        try:
            typ, data = c.select(_quote(folder), readonly=True)
            assert typ == "OK", (typ, data)
            return int(data[0])
        finally:
            _logout(c)

    def uids(self, user="support", folder="INBOX"):
        c = self.connect(user, folder)
        try:
            typ, data = c.uid("SEARCH", "ALL")
            assert typ == "OK", (typ, data)
            return [int(x) for x in data[0].split()]
        finally:
            _logout(c)

    def flags(self, uid, user="support", folder="INBOX"):
        """The flags of message uid, as a set of str (e.g. {"\\\\Seen"})."""
        c = self.connect(user, folder)
        try:
            typ, data = c.uid("FETCH", str(uid), "(FLAGS)")
            assert typ == "OK", (typ, data)
            for item in data:
                if isinstance(item, tuple):
                    item = item[0]
                m = re.search(rb"FLAGS \(([^)]*)\)", item or b"")
                if m:
                    return set(m.group(1).decode().split())
            return None
        finally:
            _logout(c)

    def fetch(self, uid, user="support", folder="INBOX"):
        """The raw bytes of message uid (BODY.PEEK[]: sets no flag)."""
        c = self.connect(user, folder)
        try:
            typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
            assert typ == "OK", (typ, data)
            for item in data:
                if isinstance(item, tuple):
                    return item[1]
            return None
        finally:
            _logout(c)

    def uidvalidity(self, user="support", folder="INBOX"):
        c = self.connect(user)
        try:
            typ, data = c.status(_quote(folder), "(UIDVALIDITY)")
            assert typ == "OK", (typ, data)
            return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
        finally:
            _logout(c)


def _quote(folder):
    return '"%s"' % folder.replace("\\", "\\\\").replace('"', '\\"')


def _logout(c):
    try:
        c.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


@pytest.fixture
def dovecot():
    """A started private Dovecot; stopped and removed after the test."""
    if not os.access(DOVECOT, os.X_OK):
        pytest.skip("no %s (apt-get install dovecot-imapd dovecot-lmtpd)"
                    % DOVECOT)
    if os.geteuid() == 0 and not os.access(SETPRIV, os.X_OK):
        pytest.skip("no %s to run dovecot unprivileged" % SETPRIV)
    d = Dovecot()
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


# -- SMTP ------------------------------------------------------------------

class Got:
    """One mail the Sink received."""

    def __init__(self, mail_from, rcpts, raw):
        self.mail_from = mail_from
        self.rcpts = list(rcpts)
        self.tls = False        # the Sink sets it: STARTTLS was used
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.at = time.monotonic()

    def __getitem__(self, name):
        return self.msg[name]

    @property
    def subject(self):
        return str(self.msg["Subject"] or "")

    def body(self):
        """The text/plain body (or the first text part) as str."""
        part = self.msg.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""

    def to(self, rcpt):
        return rcpt.lower() in (r.lower() for r in self.rcpts)

    def __repr__(self):
        return "<mail %s -> %s %r>" % (self.mail_from, ",".join(self.rcpts),
                                        self.subject)


class Sink:
    """An SMTP server on a fixed loopback port that keeps every message
    (parsed, and the raw bytes); can refuse recipients (`refuse`, a set of
    addresses answered 550). stop() and start() may be called again: it
    comes back on the same port, keeping what it received.

    tls=True: STARTTLS with a self-signed certificate (openssl, CN
    localhost, subjectAltNames cert_dns and cert_ips; cert_path is the file
    to give as a ca_file), and STARTTLS required before MAIL (as
    `aiosmtpd --tlscert/--tlskey` does). Each Got has .tls: whether its
    session was encrypted."""

    def __init__(self, port=None, tls=False, cert_dns=("localhost",),
                 cert_ips=("127.0.0.1",)):
        import aiosmtpd.controller
        self._controller_class = aiosmtpd.controller.Controller
        self.port = port or free_port()
        self.tls = tls
        self.dir = self.cert_path = self.key_path = None
        self.tls_context = None
        if tls:
            import ssl
            self.dir = tempfile.mkdtemp(prefix="escalon-sink-")
            self.cert_path, self.key_path = make_cert(
                self.dir, cn="localhost", dns=cert_dns, ips=cert_ips)
            self.tls_context = ssl.create_default_context(
                ssl.Purpose.CLIENT_AUTH)
            self.tls_context.load_cert_chain(self.cert_path, self.key_path)
        self.mails = []         # (rcpt_tos, EmailMessage), oldest first
        self.got = []           # Got, oldest first
        self.refuse = set()
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address,
                                  options):
                if address in sink.refuse:
                    return "550 no such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                g = Got(envelope.mail_from, envelope.rcpt_tos,
                        envelope.original_content)
                g.tls = session.ssl is not None
                with sink.lock:
                    sink.got.append(g)
                    sink.mails.append((g.rcpts, g.msg))
                return "250 OK"

        self.handler = Handler()
        self.controller = self._new_controller()

    def _new_controller(self):
        kw = {}
        if self.tls:
            kw = {"tls_context": self.tls_context, "require_starttls": True}
        c = self._controller_class(self.handler, hostname="127.0.0.1",
                                   port=self.port, **kw)
        c._escalon_fresh = True
        return c

    def start(self):
        """Listen (again) on self.port, with the same handler (a mail
        received after a restart lands in the same lists)."""
        deadline = time.monotonic() + 10
        while True:
            if not getattr(self.controller, "_escalon_fresh", False):
                # An aiosmtpd Controller closes its loop when it stops: a
                # new one on the same port and handler.
                self.handler = self.controller.handler
                self.controller = self._new_controller()
            self.controller._escalon_fresh = False
            try:
                self.controller.start()
                return self
            except OSError:     # the port not free yet after a stop
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        """Stop listening (connections are refused until start())."""
        try:
            self.controller.stop()
        except Exception:
            pass

    def running(self):
        return getattr(self.controller, "_thread", None) is not None

    def cleanup(self):
        """Stop, and remove the certificate folder (tls)."""
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def all(self):
        """Every Got so far, oldest first."""
        with self.lock:
            return list(self.got)

    def to(self, rcpt, subject_has=""):
        """The messages (EmailMessage) for rcpt whose subject has
        subject_has."""
        with self.lock:
            return [m for rcpts, m in self.mails
                    if rcpt in rcpts and subject_has in str(m["Subject"])]

    def find(self, pred):
        return [g for g in self.all() if pred(g)]

    def wait_for(self, pred, timeout=20, n=1, what=None):
        """Wait until at least n mails satisfy pred(Got); returns them."""
        def enough():
            hits = self.find(pred)
            return hits if len(hits) >= n else None

        def why():
            return "sink on %d: %d matching mails, want %d %s; last: %r" % (
                self.port, len(self.find(pred)), n, what or "",
                self.all()[-5:])
        return wait_until(enough, timeout, why)


@pytest.fixture
def sink():
    """A started Sink; stopped after the test."""
    pytest.importorskip("aiosmtpd.controller")
    s = Sink().start()
    yield s
    s.stop()


# -- mail ------------------------------------------------------------------

def mail(frm, to, subject, body, message_id=None, in_reply_to=None,
         references=None, headers=None, date=None):
    """A realistic RFC 5322 message as bytes (CRLF line ends). references:
    a str or a list of Message-IDs; headers: a dict or a list of (name,
    value) pairs added as they are. message_id=False leaves it out."""
    m = EmailMessage()
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = date or email.utils.format_datetime(
        datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0))
    if message_id is not False:
        m["Message-ID"] = message_id or email.utils.make_msgid(
            domain="example.test")
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    if references:
        m["References"] = references if isinstance(references, str) \
            else " ".join(references)
    m["MIME-Version"] = "1.0"
    for k, v in (headers.items() if isinstance(headers, dict)
                 else headers or ()):
        m[k] = v
    m.set_content(body)
    return m.as_bytes(policy=email.policy.SMTP)


def message_id(raw):
    """The Message-ID of raw bytes (with its angle brackets)."""
    return str(email.message_from_bytes(
        raw, policy=email.policy.default)["Message-ID"]).strip()


def bare_id(mid):
    """A Message-ID without angle brackets or blanks, for comparing."""
    return (mid or "").strip().strip("<>").strip()


# -- escalon config --------------------------------------------------------

def mailbox_config(dovecot, sink, port, extra="", top="",
                   poll_interval="2s", mailbox="support", queue="general"):
    """The escalon config for a gateway on port with one mailbox (IMAP on
    dovecot, user support) and SMTP to sink. dovecot/sink may be objects
    (with imap_port / port), port numbers, or None (a port nobody listens
    on). top: lines placed among the top-level keys; extra: appended."""
    imap_port = getattr(dovecot, "imap_port", dovecot) or free_port()
    smtp_port = getattr(sink, "port", sink) or free_port()
    return f"""\
# escalon e2e mail config
store = "var/escalon.db"
listen = "127.0.0.1:{port}"
base_url = "http://127.0.0.1:{port}"
control_socket = "var/escalon.sock"
secret_file = "var/secret"
api_token_file = "var/api-token"
templates = "{REPO / 'templates'}"
{top}
smtp {{ url = "smtp://127.0.0.1:{smtp_port}"  from = "support@example.test"
       tls = "none" }}
outbox {{ retry_first = "1s"  retry_max = "2s"  max_attempts = 30 }}

mailbox "{mailbox}" {{
  host = "127.0.0.1"  port = {imap_port}  tls = "none"
  user = "support"  password = 'secret'  folder = "INBOX"
  address = "support@example.test"  queue = "{queue}"
  poll_interval = "{poll_interval}"
}}

agent "alice" {{ email = "alice@example.test"  name = "Alice" }}
agent "bob"   {{ email = "bob@example.test"    name = "Bob" }}
team "tier1" {{ agents = {{"alice", "bob"}} }}
calendar "always" {{ timezone = "UTC"  hours = {{"mon-sun 00:00-24:00"}} }}
sla "standard" {{ calendar = "always"  first_response = "4h"
                 next_update = "8h"  resolution = "3d" }}
ladder "default" {{
  level 1 {{ team = "tier1" }}
}}
queue "general" {{ team = "tier1"  sla = "standard"  ladder = "default" }}
{extra}"""


# -- Prosody (XMPP) --------------------------------------------------------

PROSODY = "/usr/bin/prosody"
PROSODYCTL = "/usr/bin/prosodyctl"
PROSODY_START_TIMEOUT = 15
XMPP_DOMAIN = "example.test"
SUPPORT_JID = "support@" + XMPP_DOMAIN
# Who the prosody fixture registers: the gateway's account and two customers.
XMPP_USERS = {"support": "secret", "erika": "pw", "hans": "pw"}
# Prosody's log names a client session ("c2s55d0c2a4b0f0") after the time
# stamp; these two lines open and close a client's life.
_AUTH_LINE = re.compile(r"\b(c2s[0-9a-f]+)\s+info\s+Authenticated as (\S+)")
_GONE_LINE = re.compile(r"\b(c2s[0-9a-f]+)\s+info\s+Client disconnected")


class Prosody(_Daemon):
    """A private Prosody on a free loopback c2s port: plaintext, no s2s,
    VirtualHost example.test, internal storage in a temp folder (kept over
    restarts). Modules: roster, saslauth, disco, ping, mam (every message
    with a body archived, nothing expires) and offline (messages to an
    account with no available resource wait for its next login).

    stanza_size_limit raises c2s_stanza_size_limit (Prosody's default is
    256 KiB) so hostile stanzas reach the gateway; set_stanza_limit()
    changes it for the next (re)start. debug=True logs at debug level.

    tls=True: module "tls" with a self-signed certificate for the domain
    (certs/DOMAIN.crt and .key, made with openssl: CN and subjectAltName
    DNS:DOMAIN; cert_path is the file to give as a ca_file) and
    c2s_require_encryption = true (no login without STARTTLS). A
    ChatCustomer on such a server uses STARTTLS, trusting that cert."""

    def __init__(self, stanza_size_limit=None, domain=XMPP_DOMAIN,
                 debug=False, tls=False):
        self.user, self.group, self.uid, self.gid = _server_user()
        self.dir = tempfile.mkdtemp(prefix="escalon-prosody-")
        os.chmod(self.dir, 0o755)
        self.domain = domain
        self.c2s_port = free_port()
        self.conf = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.out_path = os.path.join(self.dir, "prosody.stdout")
        self.stanza_size_limit = stanza_size_limit
        self.debug = debug
        self.users = {}
        self.proc = None
        self._out = None
        self.started_in = None      # seconds the last start took
        for d in ("data", "certs"):
            os.mkdir(os.path.join(self.dir, d))
        self.tls = tls
        self.cert_path = self.key_path = None
        if tls:
            self.cert_path, self.key_path = make_cert(
                os.path.join(self.dir, "certs"), cn=domain, dns=(domain,),
                ips=(), name=domain)
        self._write_config()

    @property
    def port(self):
        return self.c2s_port

    def jid(self, user):
        return "%s@%s" % (user, self.domain)

    # -- config --
    def _write_config(self):
        d = self.dir
        limit = ""
        if self.stanza_size_limit:
            limit = "c2s_stanza_size_limit = %d\n" % self.stanza_size_limit
        level = "debug" if self.debug else "info"
        tls_module = '; "tls"' if self.tls else ""
        require = "true" if self.tls else "false"
        text = f"""\
-- escalon e2e: a private Prosody
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2s_port} }}
c2s_direct_tls_ports = {{}}
legacy_ssl_ports = {{}}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "mam"; "offline"{tls_module} }}
modules_disabled = {{ "s2s" }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = {require}
allow_unencrypted_plain_auth = true
allow_registration = false
default_archive_policy = true
archive_expires_after = "never"
{limit}log = {{ {level} = "{d}/prosody.log" }}
VirtualHost "{self.domain}"
"""
        with open(self.conf, "w") as f:
            f.write(text)
        _chown_tree(self.dir, self.uid, self.gid)

    def set_stanza_limit(self, nbytes):
        """c2s_stanza_size_limit for the next start (restart() to apply)."""
        self.stanza_size_limit = nbytes
        self._write_config()
        return self

    def _as_server_user(self, cmd, pdeathsig=False):
        if os.geteuid() == 0:
            cmd = [SETPRIV, "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                   "--clear-groups"] + \
                (["--pdeathsig=TERM"] if pdeathsig else []) + cmd
        return cmd

    def register(self, user, password):
        """Create (or re-password) an account with prosodyctl, as the user
        the daemon runs as; works whether or not the server runs."""
        p = subprocess.run(self._as_server_user(
            [PROSODYCTL, "--config", self.conf, "register", user,
             self.domain, password]), capture_output=True, text=True,
            timeout=60, cwd=self.dir, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, "prosodyctl register %s: %d\n%s%s" % (
            user, p.returncode, p.stdout, p.stderr)
        self.users[user] = password
        return self

    # -- process --
    def argv(self):
        # --pdeathsig: a test run killed outright leaves no Prosody behind.
        return self._as_server_user([PROSODY, "--config", self.conf, "-F"],
                                    pdeathsig=True)

    def start(self, timeout=PROSODY_START_TIMEOUT):
        assert not self.running(), "prosody already running"
        t0 = time.monotonic()
        self._spawn()
        wait_port(self.c2s_port, timeout, self.proc, "prosody (c2s)",
                  self._why)
        self.started_in = time.monotonic() - t0
        return self

    # -- what it says --
    def wait_log(self, pattern, timeout=20, since=0):
        """Wait for a log line (after offset since) matching the regex;
        returns the line."""
        rx = re.compile(pattern)
        hit = wait_until(
            lambda: next((ln for ln in self.log()[since:].splitlines()
                          if rx.search(ln)), None), timeout,
            lambda: "no prosody log line matching %r%s"
            % (pattern, self._why()), interval=0.05)
        return hit

    def sessions(self, jid=None):
        """The live client sessions, from the log: {session: bare JID}
        (only those of jid when given). A session counts from its
        "Authenticated as" line to its "Client disconnected" line; a
        restart ends them all."""
        live = {}
        for ln in self.log().splitlines():
            if "Shutting down" in ln or "Hello and welcome" in ln:
                live = {}
                continue
            m = _AUTH_LINE.search(ln)
            if m:
                live[m.group(1)] = m.group(2).split("/")[0]
                continue
            m = _GONE_LINE.search(ln)
            if m:
                live.pop(m.group(1), None)
        if jid is not None:
            live = {s: j for s, j in live.items() if j == jid}
        return live

    def wait_online(self, jid, timeout=20):
        """Wait until an account (bare JID) has a logged-in session."""
        return wait_until(lambda: self.sessions(jid), timeout,
                          lambda: "%s never logged in to prosody%s"
                          % (jid, self._why()), interval=0.05)

    def wait_offline(self, jid, timeout=20):
        """Wait until an account has no session left (Prosody noticed it
        go: messages to it now wait in offline storage)."""
        return wait_until(lambda: not self.sessions(jid), timeout,
                          lambda: "%s still has sessions %r%s"
                          % (jid, self.sessions(jid), self._why()),
                          interval=0.05)


@pytest.fixture
def prosody():
    """A started private Prosody with the accounts of XMPP_USERS
    (support/secret, erika/pw, hans/pw); stopped and removed after the test.
    Its log tail is printed at teardown (shown when the test fails)."""
    if not (os.access(PROSODY, os.X_OK) and os.access(PROSODYCTL, os.X_OK)):
        pytest.skip("no %s / %s (apt-get install prosody)"
                    % (PROSODY, PROSODYCTL))
    if os.geteuid() == 0 and not os.access(SETPRIV, os.X_OK):
        pytest.skip("no %s to run prosody unprivileged" % SETPRIV)
    p = Prosody()
    try:
        for u, pw in XMPP_USERS.items():
            p.register(u, pw)
        p.start()
        yield p
    finally:
        print("--- prosody log (%s) ---\n%s" % (p.dir, p.log()[-6000:]))
        p.cleanup()


# -- chat customers --------------------------------------------------------

_NS_CLIENT = "jabber:client"
_NS_SID = "urn:xmpp:sid:0"
_NS_DELAY = "urn:xmpp:delay"
_NS_MAM = "urn:xmpp:mam:2"


class Chat:
    """One message stanza a ChatCustomer received (or one MAM result)."""

    def __init__(self, el, at=None):
        self.sender = el.get("from") or ""      # full JID as received
        self.bare = self.sender.split("/")[0].lower()
        self.to = el.get("to") or ""
        self.id = el.get("id")
        self.type = el.get("type") or "normal"
        b = el.find("{%s}body" % _NS_CLIENT)
        self.has_body = b is not None
        self.body = (b.text or "") if b is not None else ""
        # [(id, by)] of <stanza-id xmlns='urn:xmpp:sid:0'/> children
        self.stanza_ids = [(e.get("id"), e.get("by")) for e in
                           el.findall("{%s}stanza-id" % _NS_SID)]
        d = el.find("{%s}delay" % _NS_DELAY)
        self.delay = d.get("stamp") if d is not None else None
        self.xml = ET.tostring(el, encoding="unicode")
        self.at = time.monotonic() if at is None else at
        self.archive_id = None      # MAM results only
        self.archived_at = None     # MAM results only

    def __getitem__(self, key):
        return self.sender if key == "from" else getattr(self, key)

    def __repr__(self):
        return "<chat %s %s id=%s %r>" % (self.type, self.sender, self.id,
                                          self.body[:80])


class ChatCustomer:
    """A person in a chat client: slixmpp (1.8.3) logged in over plaintext
    (STARTTLS trusting prosody.cert_path when prosody.tls) to prosody as
    user@domain, run in its own thread with its own asyncio
    loop. Sends initial presence (so messages to the bare JID reach it),
    keeps every message stanza it receives (Chat, oldest first), and logs
    in again by itself when the server goes away (auto_reconnect).

    All methods are called from the test's thread."""

    def __init__(self, prosody, user, password, resource="desktop",
                 presence=True, auto_reconnect=True):
        self.port = getattr(prosody, "c2s_port", prosody)
        self.domain = getattr(prosody, "domain", XMPP_DOMAIN)
        self.tls = bool(getattr(prosody, "tls", False))
        self.ca_file = getattr(prosody, "cert_path", None)
        self.user = user
        self.jid = "%s@%s" % (user, self.domain)
        self.full_jid = "%s/%s" % (self.jid, resource)
        self.password = password
        self.presence = presence
        self.auto_reconnect = auto_reconnect
        self.received = []          # Chat, oldest first
        self.events = []            # (monotonic, what) for diagnosis
        self.sessions = 0           # how many times a session started
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.loop = None
        self.xmpp = None
        self.thread = None
        self._online = False
        self._closing = False
        self._auth_failed = None

    # -- life --
    def start(self, timeout=20):
        assert self.thread is None, "already started"
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,),
                                       daemon=True,
                                       name="chat-" + self.user)
        self.thread.start()
        assert ready.wait(10), "slixmpp loop for %s did not start" % self.jid
        self._call(self._connect)
        self.wait_online(timeout)
        return self

    def _run(self, ready):
        import asyncio
        import slixmpp
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        x = slixmpp.ClientXMPP(
            self.full_jid, self.password,
            plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
        x.loop = loop
        if self.tls and self.ca_file:
            from pathlib import Path
            x.ca_certs = Path(self.ca_file)
        x.register_plugin("xep_0030")
        x.register_plugin("xep_0313")       # MAM, for mam()
        x.register_plugin("xep_0199")       # answers pings

        async def no_dns(domain, port=None):
            # The JID's domain is not in DNS: always 127.0.0.1:port.
            return [(domain, "127.0.0.1", self.port)]
        x.get_dns_records = no_dns
        x.add_event_handler("session_start", self._on_session_start)
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("connection_failed", self._on_connection_failed)
        x.add_event_handler("failed_auth", self._on_failed_auth)
        x.register_handler(Callback(
            "escalon-every-message", MatchXPath("{%s}message" % _NS_CLIENT),
            self._on_message))
        self.xmpp = x
        ready.set()
        try:
            loop.run_forever()
        finally:
            # Let slixmpp's own tasks end before the loop goes.
            try:
                tasks = asyncio.all_tasks(loop)
                for t in tasks:
                    t.cancel()
                loop.run_until_complete(
                    asyncio.gather(*tasks, return_exceptions=True))
                loop.close()
            except Exception:
                pass

    def _note(self, what):
        with self.lock:
            self.events.append((time.monotonic(), what))

    def _connect(self):
        if self.tls:
            self.xmpp.connect(("127.0.0.1", self.port), force_starttls=True,
                              disable_starttls=False)
        else:
            self.xmpp.connect(("127.0.0.1", self.port), force_starttls=False,
                              disable_starttls=True)

    def _retry_later(self, delay=0.3):
        if not self._closing and self.auto_reconnect:
            self.loop.call_later(delay, self._reconnect_now)

    def _reconnect_now(self):
        if self._closing or self.xmpp.is_connected() or \
                self.xmpp.is_connecting():
            return
        self._connect()

    def _on_session_start(self, _event):
        if self.presence:
            self.xmpp.send_presence()
        with self.cond:
            self.sessions += 1
            self._online = True
            self.cond.notify_all()
        self._note("session %d" % self.sessions)

    def _on_disconnected(self, reason):
        with self.cond:
            self._online = False
            self.cond.notify_all()
        self._note("disconnected: %s" % (reason,))
        self._retry_later()

    def _on_connection_failed(self, err):
        # Our own quick retry instead of slixmpp's growing back-off.
        self.xmpp.cancel_connection_attempt()
        self._note("connection failed: %s" % (err,))
        self._retry_later()

    def _on_failed_auth(self, _event):
        with self.cond:
            self._auth_failed = "authentication failed"
            self.cond.notify_all()
        self._note("failed auth")

    def _on_message(self, msg):
        el = msg.xml
        if el.find("{%s}result" % _NS_MAM) is not None:
            return                  # a MAM result: mam() collects those
        c = Chat(el)
        with self.cond:
            self.received.append(c)
            self.cond.notify_all()

    def _call(self, fn, *args, timeout=15):
        """Run fn(*args) in the client's loop; return its result."""
        import asyncio

        async def go():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(
            timeout)

    def _await(self, coro_fn, timeout=30):
        import asyncio
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(
            timeout)

    def online(self):
        with self.lock:
            return self._online

    def wait_online(self, timeout=20, after=None):
        """Wait for a live session (with after: for a session later than
        the after-th one, e.g. a login again after a server restart).
        Returns the session count."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self._auth_failed:
                    raise AssertionError("%s: %s" % (self.jid,
                                                      self._auth_failed))
                if self._online and (after is None or self.sessions > after):
                    return self.sessions
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "%s not online on 127.0.0.1:%d within %ss: %r" % (
                            self.jid, self.port, timeout, self.events[-8:]))
                self.cond.wait(min(left, 0.2))

    def disconnect(self, timeout=10):
        """Close the stream (unavailable presence goes with it) and stop
        the thread."""
        if self.thread is None:
            return
        self._closing = True
        if self.loop is not None and self.loop.is_running():
            import asyncio

            async def bye():
                try:
                    await asyncio.wait_for(
                        self.xmpp.disconnect(wait=2.0), timeout=3)
                except Exception:
                    self.xmpp.abort()
            try:
                asyncio.run_coroutine_threadsafe(bye(), self.loop).result(
                    timeout)
            except Exception:
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        self.thread = None
        with self.cond:
            self._online = False

    # -- sending --
    def send(self, to, body, id=None, type="chat", timeout=20):
        """Send a message (type chat) with body; returns its stanza id
        (id, or a fresh one). Waits for a session first."""
        self.wait_online(timeout)
        sid = id or "c-%s" % os.urandom(6).hex()

        def go():
            m = self.xmpp.make_message(mto=to, mbody=body, mtype=type)
            m["id"] = sid
            m.send()
        self._call(go)
        return sid

    def send_raw(self, xml, timeout=20):
        """Write xml (str or bytes) on the stream as it is: for stanzas no
        well-behaved client would build."""
        self.wait_online(timeout)
        self._call(self.xmpp.send_raw, xml)

    # -- what arrived --
    def all(self):
        with self.lock:
            return list(self.received)

    def find(self, pred):
        return [c for c in self.all() if pred(c)]

    def wait_for(self, pred, timeout=20, n=1, what=None):
        """Wait until at least n received messages satisfy pred(Chat);
        returns them."""
        def enough():
            hits = self.find(pred)
            return hits if len(hits) >= n else None

        def why():
            return "%s: %d matching messages, want %d %s; last: %r" % (
                self.jid, len(self.find(pred)), n, what or "",
                self.all()[-5:])
        return wait_until(enough, timeout, why, interval=0.05)

    def from_jid(self, jid):
        """The messages with a body from bare JID jid."""
        jid = jid.lower()
        return self.find(lambda c: c.bare == jid and c.has_body)

    # -- archive --
    def mam(self, with_jid=None, timeout=30):
        """This account's MAM archive (XEP-0313, paged by RSM) as Chat
        objects of the archived stanzas, with archive_id and archived_at;
        .xml is the whole <message><result><forwarded> wrapper."""
        async def go():
            out = []
            kw = {"rsm": {"max": 50}}
            if with_jid:
                kw["with_jid"] = with_jid
            async for m in self.xmpp["xep_0313"].iterate(**kw):
                res = m["mam_result"]
                inner = res["forwarded"]["stanza"]
                c = Chat(inner.xml)
                c.archive_id = res["id"]
                c.archived_at = res["forwarded"]["delay"]["stamp"]
                c.xml = ET.tostring(m.xml, encoding="unicode")
                out.append(c)
            return out
        self.wait_online(timeout)
        return self._await(go, timeout)


@pytest.fixture
def chat_customer():
    """Factory: chat_customer(prosody, user, password, **kw) -> a started
    ChatCustomer (online, initial presence sent). All are disconnected at
    teardown."""
    pytest.importorskip("slixmpp")
    made = []

    def make(prosody, user, password, **kw):
        c = ChatCustomer(prosody, user, password, **kw)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        print("--- %s received %d: %r" % (c.jid, len(c.received),
                                          c.all()[-10:]))
        c.disconnect()


# -- escalon config for chat -----------------------------------------------

def chat_config(prosody, port, extra="", top="", queue="general",
                jid=SUPPORT_JID, password="secret"):
    """The escalon config for a gateway on port with one xmpp section
    ("chat": support@example.test on prosody, plaintext) and no mailbox or
    smtp. prosody may be a Prosody, a port number, or None (a port nobody
    listens on). top: lines among the top-level keys; extra: appended."""
    c2s_port = getattr(prosody, "c2s_port", prosody) or free_port()
    return f"""\
# escalon e2e chat config
store = "var/escalon.db"
listen = "127.0.0.1:{port}"
base_url = "http://127.0.0.1:{port}"
control_socket = "var/escalon.sock"
secret_file = "var/secret"
api_token_file = "var/api-token"
templates = "{REPO / 'templates'}"
{top}
xmpp "chat" {{
  jid = "{jid}"  password = '{password}'
  host = "127.0.0.1"  port = {c2s_port}  tls = "none"
  queue = "{queue}"
}}

agent "alice" {{ email = "alice@example.test"  name = "Alice" }}
agent "bob"   {{ email = "bob@example.test"    name = "Bob" }}
team "tier1" {{ agents = {{"alice", "bob"}} }}
calendar "always" {{ timezone = "UTC"  hours = {{"mon-sun 00:00-24:00"}} }}
sla "standard" {{ calendar = "always"  first_response = "4h"
                 next_update = "8h"  resolution = "3d" }}
ladder "default" {{
  level 1 {{ team = "tier1" }}
}}
queue "general" {{ team = "tier1"  sla = "standard"  ladder = "default" }}
{extra}"""


# -- what a gateway holds (shared by the channel tests) ---------------------

def with_subject(g, token):
    """The tickets whose subject contains token."""
    return [t for t in g.tickets() if token in (t.get("subject") or "")]


def wait_ticket(g, token, timeout=30):
    """Wait for exactly one ticket whose subject has token; return it."""
    found = wait_until(lambda: with_subject(g, token), timeout,
                       lambda: "no ticket with %r in its subject: %r\n%s"
                       % (token, g.tickets(), g.stderr()[-3000:]))
    assert len(found) == 1, found
    return found[0]


def ins(g, tid):
    """The customer's messages on ticket tid."""
    return [m for m in g.show(tid)["messages"] if m["direction"] == "in"]


def wait_ins(g, tid, n, timeout=30):
    """Wait until ticket tid holds n customer messages; return them."""
    return wait_until(lambda: (lambda m: m if len(m) == n else None)(
        ins(g, tid)), timeout, lambda: "ticket %s: %d `in` messages, want "
        "%d: %r" % (tid, len(ins(g, tid)), n, g.show(tid)["messages"]))
