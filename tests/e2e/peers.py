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
from email.message import EmailMessage

import pytest

from conftest import REPO, free_port, wait_until

DOVECOT = "/usr/sbin/dovecot"
SETPRIV = "/usr/bin/setpriv"
DOVECOT_START_TIMEOUT = 10


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


class Dovecot:
    """A private Dovecot (IMAP + LMTP, plaintext) on free loopback ports,
    state and mail in a temp folder. User `support`, password `secret`."""

    def __init__(self):
        self.user, self.group, self.uid, self.gid = _server_user()
        self.dir = tempfile.mkdtemp(prefix="escalon-dovecot-")
        os.chmod(self.dir, 0o755)
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.users_file = os.path.join(self.dir, "users")
        self.log_path = os.path.join(self.dir, "dovecot.log")
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
        text = f"""\
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
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
    port = 0
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
        self._out = open(os.path.join(self.dir, "dovecot.stdout"), "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._out,
                                     cwd=self.dir, start_new_session=True)
        wait_port(self.imap_port, timeout, self.proc, "dovecot (imap)",
                  self._why, greeting=b"* OK")
        wait_port(self.lmtp_port, timeout, self.proc, "dovecot (lmtp)",
                  self._why)
        self.started_in = time.monotonic() - t0
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5):
        """SIGTERM by pid, wait; SIGKILL (the whole process group) after
        timeout seconds. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    self.proc.kill()
                self.proc.wait()
        # Its children (imap, auth ...) go with the master; make sure no
        # one still holds the ports before a restart.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self._out.close()
        return self.proc.returncode

    def restart(self):
        """Stop and start again: same ports, same mail."""
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
        out = ""
        try:
            with open(os.path.join(self.dir, "dovecot.stdout"),
                      errors="replace") as f:
                out = f.read()
        except FileNotFoundError:
            pass
        return ":\n" + out[-3000:] + self.log()[-3000:]

    # -- IMAP, as a mail client --
    def connect(self, user="support", folder=None, readonly=True):
        """A logged-in imaplib.IMAP4 (folder selected when given)."""
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
    comes back on the same port, keeping what it received."""

    def __init__(self, port=None):
        import aiosmtpd.controller
        self._controller_class = aiosmtpd.controller.Controller
        self.port = port or free_port()
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
                with sink.lock:
                    sink.got.append(g)
                    sink.mails.append((g.rcpts, g.msg))
                return "250 OK"

        self.handler = Handler()
        self.controller = self._new_controller()

    def _new_controller(self):
        c = self._controller_class(self.handler, hostname="127.0.0.1",
                                   port=self.port)
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
