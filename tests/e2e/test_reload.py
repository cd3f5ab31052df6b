"""
Signals (SPEC.md "Command line"): SIGTERM/SIGINT end `run` with exit 0;
SIGHUP reloads the config, and a broken new config is refused with a log
line while the old one keeps serving.
"""

import signal
import socket
import time

import pytest

from conftest import webhook_msg


def status_of(gw, hook, mid):
    return gw.post(hook, webhook_msg(mid)).status


def wait_status(gw, hook, want, timeout=10):
    """Post fresh messages until hook answers want (reload is async)."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        n += 1
        r = gw.post(hook, webhook_msg("probe-%s-%d" % (hook, n)))
        if r.status == want:
            return r
        if time.monotonic() > deadline:
            raise AssertionError("%s still answers %r %ds after SIGHUP"
                                 % (hook, r, timeout))
        time.sleep(0.2)


def both(*words):
    return "".join("(?=.*%s)" % w for w in words)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_0(gw, sig):
    assert gw.post("shop", webhook_msg("before-stop")).status == 202
    gw.proc.send_signal(sig)
    assert gw.proc.wait(15) == 0, gw.stderr()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
    # what was acknowledged is there
    assert len(gw.tickets()) == 1


def test_restart_after_stop(gw):
    assert gw.stop() == 0
    gw.start()
    assert gw.stop() == 0


BROKEN = {
    # a reference to a team that does not exist, on a line of its own
    "dangling": dict(extra='queue "refunds" { team = "nosuch"  sla = '
                           '"standard"  ladder = "default" }\n',
                     words=["reload", "nosuch"]),
    # a syntax error
    "syntax": dict(extra='queue "refunds" { team = \n',
                   words=["reload", r"escalon\.conf:\d+"]),
    # an unknown key
    "unknown_key": dict(extra='frobnicate = "yes"\n',
                        words=["reload", "frobnicate"]),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_config_is_refused(gw, kind):
    case = BROKEN[kind]
    assert status_of(gw, "shop", "pre") == 202
    mark = len(gw.stderr())
    gw.write_config(gw.config(webhooks={"shop": "billing",
                                        "shop2": "general"},
                              extra=case["extra"]))
    gw.hup()
    line = gw.wait_log(both(*case["words"]), since=mark)
    assert "level=" in line, "not a logfmt line: %r" % line
    assert gw.running(), "gateway died on a broken config:\n" + gw.stderr()
    # the old config goes on serving: shop answers, shop2 does not exist
    assert status_of(gw, "shop", "post") == 202
    assert status_of(gw, "shop2", "post2") == 404
    # a good config later is taken (the CLI needs a readable config too)
    gw.write_config(gw.config(webhooks={"shop": "billing",
                                        "shop2": "general"}))
    assert len(gw.tickets()) == 2
    gw.hup()
    wait_status(gw, "shop2", 202)


def test_reload_adds_a_hook(gw):
    assert status_of(gw, "shop2", "x-0") == 404
    gw.write_config(gw.config(webhooks={"shop": "billing",
                                        "shop2": "general"}))
    gw.hup()
    r = wait_status(gw, "shop2", 202)
    assert gw.show(r.json["ticket"])["queue"] == "general"
    assert status_of(gw, "shop", "x-1") == 202
    assert gw.running()


def test_reload_removes_a_hook(gw):
    assert status_of(gw, "shop", "y-0") == 202
    gw.write_config(gw.config(webhooks={"shop2": "general"}))
    gw.hup()
    wait_status(gw, "shop", 404)
    assert status_of(gw, "shop2", "y-1") == 202
    # tickets made before the reload are still there
    assert len(gw.tickets()) >= 2


def test_reload_applies_the_size_limit(gw):
    big = webhook_msg("big", body="x" * 4000)
    assert gw.post("shop", big).status == 202
    gw.write_config(gw.config(top='max_webhook_size = "1K"'))
    gw.hup()
    deadline = time.monotonic() + 10
    n = 0
    while True:
        n += 1
        r = gw.post("shop", webhook_msg("big-%d" % n, body="x" * 4000))
        if r.status == 413:
            break
        assert time.monotonic() < deadline, \
            "4 KB body still %r 10 s after reload to 1K" % r
        time.sleep(0.2)
    assert status_of(gw, "shop", "small") == 202


def test_many_hups(gw):
    """Reloads in a row leave a working gateway (no leaked sockets or
    half-swapped config)."""
    for i in range(10):
        gw.hup()
        time.sleep(0.05)
    time.sleep(0.5)
    assert gw.running(), gw.stderr()
    assert status_of(gw, "shop", "after-hups") == 202
    assert gw.stop() == 0
