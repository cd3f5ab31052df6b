"""
Webhook intake (SPEC.md "HTTP"): POST /hooks/NAME creates or threads a
ticket and answers 202 only after commit; everything else is refused with a
status and a JSON reason, and leaves the store untouched.
"""

import json

import pytest

from conftest import RFC3339_UTC, sign, webhook_msg


def accepted(r):
    assert r.status == 202, "expected 202, got %r" % r
    assert r.json is not None, "202 body is not JSON: %r" % r
    return r.json


def refused(r, status):
    assert r.status == status, "expected %d, got %r" % (status, r)
    assert isinstance(r.json, dict), "error body is not a JSON object: %r" % r
    assert isinstance(r.json.get("error"), str) and r.json["error"].strip(), \
        "error body has no reason: %r" % r
    return r.json["error"]


def test_new_message_opens_a_ticket(gw):
    r = accepted(gw.post("shop", webhook_msg("ord-1001")))
    assert isinstance(r["ticket"], int) and not isinstance(r["ticket"], bool)
    assert r["ref"] == "ESC-%d" % r["ticket"]
    assert r["duplicate"] is False

    t = gw.show(r["ticket"])
    assert t["id"] == r["ticket"]
    assert t["ref"] == r["ref"]
    assert t["channel"] == "webhook"
    assert t["state"] == "new"
    assert t["severity"] == "normal"
    assert t["queue"] == "billing"
    assert t["team"] == "tier1"
    assert t["level"] == 1
    assert t["subject"] == "Invoice is wrong"
    c = t["customer"]
    assert (c.get("name"), c.get("address"), c.get("channel")) == \
        ("Erika Mustermann", "cust-42", "webhook"), c
    assert RFC3339_UTC.match(t["created_at"]), t["created_at"]
    assert t["first_response_at"] is None
    assert t["resolved_at"] is None
    assert set(t["due"]) >= {"first_response", "next_update", "resolution"}
    # SLA clocks arrive with the rules/SLA work (issue 6); until then the
    # due times are present and null, never a made-up instant.
    for clock in ("first_response", "next_update", "resolution"):
        assert t["due"][clock] is None or \
            RFC3339_UTC.match(t["due"][clock]), t["due"]

    assert len(t["messages"]) == 1, t["messages"]
    m = t["messages"][0]
    assert m["direction"] == "in"
    assert m["message_id"] == "ord-1001"
    assert m["body"] == "I was charged twice."
    assert m["internal"] is False
    assert RFC3339_UTC.match(m["at"]), m["at"]
    assert "created" in [e["type"] for e in t["events"]], t["events"]
    for e in t["events"]:
        assert RFC3339_UTC.match(e["at"]), e
        assert isinstance(e["detail"], dict), e

    lst = gw.tickets()
    assert len(lst) == 1, lst
    row = lst[0]
    for k, v in [("id", t["id"]), ("ref", t["ref"]), ("state", "new"),
                 ("severity", "normal"), ("queue", "billing"),
                 ("team", "tier1"), ("level", 1), ("channel", "webhook"),
                 ("subject", "Invoice is wrong"),
                 ("created_at", t["created_at"])]:
        assert row.get(k) == v, "tickets --json %s: %r != %r" % (k, row, v)


def test_show_accepts_the_ref(gw):
    r = accepted(gw.post("shop", webhook_msg("ord-ref")))
    assert gw.show(r["ref"]) == gw.show(r["ticket"])


def test_severity_as_given(gw):
    r = accepted(gw.post("shop", webhook_msg("ord-sev", severity="high")))
    assert gw.show(r["ticket"])["severity"] == "high"


def test_minimal_message_without_optional_fields(gw):
    msg = {"id": "m-1", "customer": {"id": "c-9"}, "subject": "Hi",
           "body": "Hello"}
    r = accepted(gw.post("shop", msg))
    t = gw.show(r["ticket"])
    assert t["customer"]["address"] == "c-9"
    assert t["customer"]["channel"] == "webhook"
    assert t["messages"][0]["body"] == "Hello"


def test_unicode_survives(gw):
    msg = webhook_msg("ord-utf8", subject="Rechnung für März ✓",
                      body="Grüße\nZeile 2 — 日本語")
    r = accepted(gw.post("shop", msg))
    t = gw.show(r["ticket"])
    assert t["subject"] == "Rechnung für März ✓"
    assert t["messages"][0]["body"] == "Grüße\nZeile 2 — 日本語"


def test_repeated_id_is_one_ticket(gw):
    first = accepted(gw.post("shop", webhook_msg("ord-dup")))
    again = accepted(gw.post("shop", webhook_msg("ord-dup",
                                                 body="resent")))
    assert again["ticket"] == first["ticket"]
    assert again["ref"] == first["ref"]
    assert again["duplicate"] is True
    assert len(gw.tickets()) == 1
    msgs = gw.show(first["ticket"])["messages"]
    assert len(msgs) == 1, msgs
    assert msgs[0]["body"] == "I was charged twice."


def test_same_id_on_another_hook_is_another_message(make_gateway):
    gw = make_gateway(webhooks={"shop": "billing", "crm": "general"}).start()
    a = accepted(gw.post("shop", webhook_msg("x-1")))
    b = accepted(gw.post("crm", webhook_msg("x-1")))
    assert b["duplicate"] is False
    assert b["ticket"] != a["ticket"]
    assert gw.show(b["ticket"])["queue"] == "general"
    assert len(gw.tickets()) == 2


def test_thread_key_appends_to_the_ticket(gw):
    a = accepted(gw.post("shop", webhook_msg("m-1", thread="order-77")))
    b = accepted(gw.post("shop", webhook_msg("m-2", thread="order-77",
                                             body="Any news?")))
    assert b["ticket"] == a["ticket"]
    assert b["duplicate"] is False
    c = accepted(gw.post("shop", webhook_msg("m-3", thread="order-78")))
    assert c["ticket"] != a["ticket"]

    msgs = gw.show(a["ticket"])["messages"]
    ins = [m for m in msgs if m["direction"] == "in"]
    assert [m["message_id"] for m in ins] == ["m-1", "m-2"], msgs
    assert ins[1]["body"] == "Any news?"
    assert len(gw.tickets()) == 2


def test_messages_without_thread_do_not_merge(gw):
    a = accepted(gw.post("shop", webhook_msg("n-1")))
    b = accepted(gw.post("shop", webhook_msg("n-2")))
    assert a["ticket"] != b["ticket"]
    assert len(gw.tickets()) == 2


# ---- refusals: status, JSON reason, nothing stored ----

def assert_nothing_stored(gw):
    assert gw.tickets() == []


def test_unknown_hook_404(gw):
    refused(gw.post("nosuch", webhook_msg("u-1")), 404)
    # checked first: an unknown hook is 404 even with no signature
    refused(gw.post("nosuch", webhook_msg("u-2"), secret=None), 404)
    assert_nothing_stored(gw)


@pytest.mark.parametrize("why,secret,headers", [
    ("missing", None, {}),
    ("other secret", "wrong", {}),
    ("not hex", None, {"X-Escalon-Signature": "sha256=zz"}),
    ("no prefix", None, {"X-Escalon-Signature": "0" * 64}),
    ("empty", None, {"X-Escalon-Signature": ""}),
])
def test_bad_signature_401(gw, why, secret, headers):
    refused(gw.post("shop", webhook_msg("s-1"), secret=secret,
                    headers=headers), 401)
    assert_nothing_stored(gw)


def test_signature_over_other_body_401(gw):
    body = json.dumps(webhook_msg("s-2")).encode()
    other = json.dumps(webhook_msg("s-3")).encode()
    refused(gw.post("shop", body, secret=None,
                    headers={"X-Escalon-Signature": sign(other)}), 401)
    assert_nothing_stored(gw)


@pytest.mark.parametrize("raw", [
    b"", b"{", b"not json", b"[1, 2]", b'"a string"',
    b'{"id": "j-1", "customer": {"id": "c"}, "subject": "s", "body": "b"',
])
def test_bad_json_400(gw, raw):
    refused(gw.post("shop", raw), 400)
    assert_nothing_stored(gw)


def _without(path):
    msg = webhook_msg("f-1")
    if len(path) == 1:
        del msg[path[0]]
    else:
        del msg[path[0]][path[1]]
    return msg


@pytest.mark.parametrize("path", [("id",), ("customer",), ("customer", "id"),
                                  ("subject",), ("body",)],
                         ids=lambda p: ".".join(p))
def test_missing_field_400(gw, path):
    reason = refused(gw.post("shop", _without(path)), 400)
    assert path[-1] in reason, "reason does not name the field: %r" % reason
    assert_nothing_stored(gw)


@pytest.mark.parametrize("field,value", [
    ("id", ""), ("id", {"a": 1}), ("subject", ["x"]), ("body", None),
    ("customer", "cust-42"),
])
def test_wrong_field_type_400(gw, field, value):
    msg = webhook_msg("t-1")
    msg[field] = value
    refused(gw.post("shop", msg), 400)
    assert_nothing_stored(gw)


@pytest.mark.parametrize("sev", ["urgent", "HIGHEST", "", 3])
def test_bad_severity_400(gw, sev):
    reason = refused(gw.post("shop", webhook_msg("b-1", severity=sev)), 400)
    assert "severity" in reason, "reason does not name the field: %r" % reason
    assert_nothing_stored(gw)


def test_invalid_message_is_not_a_duplicate_later(gw):
    """A refused message leaves no dedupe key behind."""
    refused(gw.post("shop", webhook_msg("late-1", severity="urgent")), 400)
    r = accepted(gw.post("shop", webhook_msg("late-1")))
    assert r["duplicate"] is False


# ---- size limit ----

def padded(mid, size):
    """A valid signed-able payload of exactly size bytes."""
    msg = webhook_msg(mid, body="")
    base = len(json.dumps(msg).encode())
    assert size >= base
    msg["body"] = "x" * (size - base)
    raw = json.dumps(msg).encode()
    assert len(raw) == size
    return raw


def test_small_limit_413(make_gateway):
    gw = make_gateway(top='max_webhook_size = "1K"').start()
    refused(gw.post("shop", padded("big-1", 1025)), 413)
    refused(gw.post("shop", padded("big-2", 4096)), 413)
    # size is checked before the signature
    refused(gw.post("shop", padded("big-3", 2048), secret="wrong"), 413)
    assert_nothing_stored(gw)
    # exactly at the limit is not over it
    raw = padded("fits", 1024)
    r = accepted(gw.post("shop", raw))
    assert gw.show(r["ticket"])["messages"][0]["body"] == \
        json.loads(raw)["body"]


def test_default_limit_is_1MiB(gw):
    refused(gw.post("shop", padded("huge", 1_100_000)), 413)
    assert_nothing_stored(gw)
    r = accepted(gw.post("shop", padded("mib", 1_048_576)))
    assert r["duplicate"] is False
    assert len(gw.tickets()) == 1


def test_gateway_still_serves_after_refusals(gw):
    for raw in (b"{", b"x" * 2_000_000):
        gw.post("shop", raw)
    accepted(gw.post("shop", webhook_msg("after")))
    assert len(gw.tickets()) == 1
