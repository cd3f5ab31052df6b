"""
End-to-end harness: the real escalon binary, a private config in a temp
folder, HTTP and the command line as a user would use them.

The binary is $ESCALON_BIN, else <repo>/escalon (`make` builds it). Each test
gets its own folder, free loopback port and store. Every gateway a test starts
is stopped at teardown; when a test fails, the gateway's stderr (its logfmt
log) is attached to the report. A sanitizer report in the gateway's or a CLI
command's stderr fails the test.
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ESCALON_BIN") or str(REPO / "escalon")
SECRET = "s3cret"
CLI_TIMEOUT = 60
START_TIMEOUT = 10

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SANITIZER = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|"
                       r": runtime error: ")


def sanitized(binary):
    """True for an ASan build: its quarantine holds freed memory, so the
    resident size says nothing (LeakSanitizer reports leaks at exit)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(body, secret=SECRET):
    if isinstance(secret, str):
        secret = secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_msg(mid, subject="Invoice is wrong", body="I was charged twice.",
                customer="cust-42", name="Erika Mustermann", **extra):
    """A valid webhook payload; extra keys (thread, severity ...) are added."""
    msg = {"id": mid,
           "customer": {"id": customer, "name": name,
                        "email": "erika@example.test"},
           "subject": subject, "body": body}
    msg.update(extra)
    return msg


def config_text(port, webhooks=None, top="", extra="",
                templates=None):
    """The minimal test config. webhooks: {name: queue}; top: extra
    top-level lines placed before the sections; extra: sections appended at
    the end (so their line numbers are easy to know)."""
    if webhooks is None:
        webhooks = {"shop": "billing"}
    if templates is None:
        templates = str(REPO / "templates")
    hooks = "\n".join(
        "webhook \"%s\" { secret = '%s'  queue = \"%s\" }" % (n, SECRET, q)
        for n, q in webhooks.items())
    return f"""\
# escalon e2e test config
store = "var/escalon.db"
listen = "127.0.0.1:{port}"
base_url = "http://127.0.0.1:{port}"
secret_file = "var/secret"
api_token_file = "var/api-token"
control_socket = "var/escalon.sock"
templates = "{templates}"
{top}
{hooks}

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
queue "billing" {{ team = "tier1"  sla = "standard"  ladder = "default" }}
{extra}"""


class Response:
    def __init__(self, status, raw, headers):
        self.status = status
        self.raw = raw
        self.headers = headers
        try:
            self.json = json.loads(raw.decode()) if raw else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.raw[:300])


def http_post(port, path, body, headers, conn=None, timeout=15):
    """POST body; tolerate a server that answers (413) and closes before
    reading the whole body. With conn (keep-alive), reuse it."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers)
        try:
            conn.request("POST", path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the answer may already be waiting for us
        r = conn.getresponse()
        return Response(r.status, r.read(), dict(r.getheaders()))
    finally:
        if own:
            conn.close()


def check_sanitizer(text, what):
    m = SANITIZER.search(text or "")
    if m:
        raise AssertionError("sanitizer report in %s:\n%s" % (what, text))


class Gateway:
    """One escalon installation in a temp folder: config, store, process."""

    def __init__(self, root, port=None, **cfg):
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "escalon.conf"
        self.log = self.dir / "gateway.stderr"
        self.proc = None
        self.runs = 0
        self.env = {}           # added to the environment of `run`
        self.write_config(config_text(self.port, **cfg))

    # -- config --
    def write_config(self, text):
        self.conf.write_text(text)

    def config(self, **cfg):
        """The default config text for this gateway's port, with changes."""
        return config_text(self.port, **cfg)

    # -- process --
    def start(self, timeout=START_TIMEOUT):
        assert self.proc is None or self.proc.poll() is not None, \
            "gateway already running"
        self.runs += 1
        with open(self.log, "ab") as f:
            f.write(b"--- start %d ---\n" % self.runs)
            self.proc = subprocess.Popen(
                [BIN, "-c", str(self.conf), "run"], stdin=subprocess.DEVNULL,
                stdout=f, stderr=f, cwd=self.dir,
                env={**os.environ, **self.env} if self.env else None)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    "escalon run exited with %d before listening on %d:\n%s"
                    % (rc, self.port, self.stderr()))
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=0.5).close()
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "escalon run not listening on %d after %ds:\n%s"
                    % (self.port, timeout, self.stderr()))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    "escalon did not exit within %ds of SIGTERM:\n%s"
                    % (timeout, self.stderr()))
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def hup(self):
        assert self.running(), "gateway not running:\n" + self.stderr()
        self.proc.send_signal(signal.SIGHUP)

    def stderr(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10, since=0):
        """Wait for a log line matching the regex; returns the line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stderr()[since:].splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %ds:\n%s"
                                     % (pattern, timeout, self.stderr()))
            time.sleep(0.1)

    # -- HTTP --
    def post(self, hook, obj, secret=SECRET, headers=None, conn=None):
        """POST a webhook. obj: a dict (sent as JSON) or raw bytes. secret:
        signs the body; None sends no signature. headers override."""
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        hdrs = {}
        if secret is not None:
            hdrs["X-Escalon-Signature"] = sign(body, secret)
        hdrs.update(headers or {})
        return http_post(self.port, "/hooks/" + hook, body, hdrs, conn=conn)

    # -- command line --
    def cli(self, *args, input=None, env=None, conf=True):
        argv = [BIN] + (["-c", str(self.conf)] if conf else []) + \
            [str(a) for a in args]
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=CLI_TIMEOUT, cwd=self.dir, env=e)
        check_sanitizer(p.stderr, "escalon %s" % " ".join(argv[1:]))
        return p

    def ok(self, *args, **kw):
        """Run a command that must succeed; returns its CompletedProcess."""
        p = self.cli(*args, **kw)
        assert p.returncode == 0, \
            "escalon %s exited %d\nstdout: %s\nstderr: %s" % (
                " ".join(map(str, args)), p.returncode, p.stdout, p.stderr)
        return p

    def json(self, *args, **kw):
        p = self.ok(*args, **kw)
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError("escalon %s --json printed no JSON (%s):\n%s"
                                 % (" ".join(map(str, args)), e, p.stdout))

    def show(self, tid):
        return self.json("show", tid, "--json")

    def tickets(self, *args):
        return self.json("tickets", *args, "--json")

    def outbox(self, *args):
        """`escalon outbox ARGS --json`: the list of rows."""
        rows = self.json("outbox", *args, "--json")
        assert isinstance(rows, list), "outbox --json is not a list: %r" % \
            (rows,)
        return rows


def wait_until(fn, timeout=20, what="condition", interval=0.2):
    """Call fn until it returns something truthy; return that. On timeout
    fail with what (a string, or a callable giving one)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("after %ss: %s" % (
                timeout, what() if callable(what) else what))
        time.sleep(interval)


class Received:
    """One request a Receiver got."""

    def __init__(self, method, path, headers, raw, at):
        self.method = method
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = raw
        self.at = at            # time.monotonic() when it arrived
        try:
            self.json = json.loads(raw.decode())
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%s %s %s %r>" % (self.method, self.path,
                                  self.header("X-Escalon-Delivery"),
                                  self.raw[:200])


class Receiver:
    """An HTTP server on a fixed 127.0.0.1 port that records every request
    (method, path, headers, raw body) and answers `status` (an int, or a
    callable(Received) -> int, which may block to hold the request in
    flight; the request is recorded before it is called). Its port is chosen at construction, so it
    can be named in a config before it listens (start late), and it can be
    stopped and started again on the same port."""

    def __init__(self, status=200, port=None):
        self.port = port or free_port()
        self.status = status
        self.requests = []
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        assert self.server is None, "receiver already running"
        rcv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                req = Received(self.command, self.path, dict(self.headers),
                               raw, time.monotonic())
                with rcv.lock:
                    rcv.requests.append(req)
                    st = rcv.status
                code = st(req) if callable(st) else st
                body = b'{"ok": true}' if code < 300 else b'{"error": "no"}'
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass        # the client went away (a killed gateway)

            do_POST = do_PUT = do_GET = _any

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        self.server = self.thread = None

    def running(self):
        return self.server is not None

    def set_status(self, status):
        with self.lock:
            self.status = status

    def got(self):
        """A copy of the requests so far."""
        with self.lock:
            return list(self.requests)

    def deliveries(self, delivery=None):
        """Requests, or those with X-Escalon-Delivery == delivery."""
        return [r for r in self.got() if delivery is None or
                r.header("X-Escalon-Delivery") == delivery]

    def wait(self, n=1, timeout=20, delivery=None, what=""):
        """Wait for at least n requests (with that delivery id); returns
        them all."""
        def enough():
            rs = self.deliveries(delivery)
            return rs if len(rs) >= n else None

        def why():
            return "receiver on %d got %d requests%s, want %d %s: %r" % (
                self.port, len(self.deliveries(delivery)),
                " for %s" % delivery if delivery else "", n, what,
                self.got()[-5:])
        return wait_until(enough, timeout, why)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for g in getattr(item, "_escalon_gateways", []):
            rep.sections.append(("escalon stderr (%s)" % g.dir,
                                 g.stderr()[-30000:]))


@pytest.fixture(scope="session")
def escalon_bin():
    if not os.access(BIN, os.X_OK):
        pytest.fail("no escalon binary at %s: run `make` (or set ESCALON_BIN)"
                    % BIN)
    return BIN


@pytest.fixture
def make_gateway(tmp_path, request, escalon_bin):
    """Factory: make_gateway(name="gw", **config changes) -> Gateway (not
    started). All of them are stopped at teardown."""
    made = []
    request.node._escalon_gateways = made

    def make(name="gw", **cfg):
        g = Gateway(tmp_path / name, **cfg)
        made.append(g)
        return g

    yield make
    for g in made:
        if g.running():
            try:
                g.stop()
            except AssertionError:
                pass
    for g in made:
        check_sanitizer(g.stderr(), "escalon run (%s)" % g.dir)


@pytest.fixture
def make_receiver():
    """Factory: make_receiver(status=200, start=True) -> Receiver. All are
    stopped at teardown."""
    made = []

    def make(status=200, start=True):
        r = Receiver(status)
        made.append(r)
        return r.start() if start else r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def gw(make_gateway):
    """A running gateway on the default test config."""
    return make_gateway().start()


@pytest.fixture
def idle(make_gateway):
    """The default test config, gateway not started."""
    return make_gateway()
