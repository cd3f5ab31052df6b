"""
`escalon check` (SPEC.md "Configuration"): a good config prints "config ok"
and exits 0; a bad one names FILE:LINE and what is wrong, and exits 1. `run`
refuses the same configs.
"""

import re

import pytest

from conftest import REPO

QUEUE = 'queue "q%d" { team = "%s"  sla = "%s"  ladder = "%s" }'

# (name, text appended at the end of the good config on ONE line, the word
# the message must name). The line is what the error must point at.
BAD = [
    ("queue_team", QUEUE % (1, "nosuch", "standard", "default"), "nosuch"),
    ("queue_sla", QUEUE % (2, "tier1", "nosuch", "default"), "nosuch"),
    ("queue_ladder", QUEUE % (3, "tier1", "standard", "nosuch"), "nosuch"),
    ("ladder_team", 'ladder "l2" { level 1 { team = "nosuch" } }', "nosuch"),
    ("team_agent", 'team "t2" { agents = {"alice", "nosuch"} }', "nosuch"),
    ("sla_calendar", 'sla "s2" { calendar = "nosuch"  first_response = "1h"'
                     '  next_update = "1h"  resolution = "1d" }', "nosuch"),
    ("webhook_queue", "webhook \"w2\" { secret = 'x'  queue = \"nosuch\" }",
     "nosuch"),
    ("severity_sla", 'severity "critical" { sla = "nosuch" }', "nosuch"),
    ("rule_queue", 'rule "r1" { match = {"channel = email"}  '
                   'queue = "nosuch" }', "nosuch"),
    ("bad_duration", 'sla "s3" { calendar = "always"  first_response = '
                     '"4x"  next_update = "1h"  resolution = "1d" }', "4x"),
    ("bad_severity_name", 'severity "urgent" { sla = "standard" }',
     "urgent"),
    ("bad_hours", 'calendar "c2" { timezone = "UTC"  hours = '
                  '{"mon-fri 25:00-17:00"} }', "25:00"),
    ("bad_timezone", 'calendar "c3" { timezone = "Mars/Olympus"  hours = '
                     '{"mon-fri 09:00-17:00"} }', "Mars/Olympus"),
    ("bad_rule_field", 'rule "r2" { match = {"colour = red"} '
                       ' queue = "general" }', "colour"),
    ("bad_rule_regex", "rule \"r3\" { match = {'subject ~ (unclosed'} "
                       " queue = \"general\" }", ("unclosed", "r3")),
    ("unknown_key", 'frobnicate = "yes"', "frobnicate"),
    ("bad_size", 'max_webhook_size = "lots"', "lots"),
    ("syntax", 'queue "q9" { team = "tier1" sla = ', None),
]


def check(g, *extra):
    return g.cli("check", *extra)


def test_good_config(idle):
    p = check(idle)
    assert p.returncode == 0, p
    assert p.stdout.strip() == "config ok", p.stdout


def test_check_starts_nothing(idle):
    """check validates only: no store, no listening socket."""
    check(idle)
    assert not (idle.dir / "var" / "escalon.db").exists()
    assert not (idle.dir / "var" / "escalon.sock").exists()


@pytest.mark.parametrize("name,line,word", BAD, ids=[b[0] for b in BAD])
def test_bad_config(idle, name, line, word):
    good = idle.config()
    lineno = good.count("\n") + 1
    idle.write_config(good + line + "\n")
    p = check(idle)
    assert p.returncode == 1, p
    assert p.stdout.strip() != "config ok"
    where = "%s:%d:" % (idle.conf, lineno)
    if name == "syntax":
        # a parser may only notice at the end of the file
        assert re.search(re.escape(str(idle.conf)) + r":\d+: \S",
                         p.stderr), p.stderr
    else:
        assert where in p.stderr, "want %r in stderr:\n%s" % (where,
                                                              p.stderr)
        words = word if isinstance(word, tuple) else (word,)
        assert any(w in p.stderr for w in words), \
            "error does not name %r:\n%s" % (word, p.stderr)


def test_error_line_points_into_the_file(idle):
    """A dangling reference in the middle of the file, not only at the end."""
    good = idle.config()
    lines = good.split("\n")
    at = next(i for i, line in enumerate(lines)
              if line.startswith('queue "general"'))
    lines[at] = QUEUE.replace("q%d", "general") % ("tier9", "standard",
                                                    "default")
    idle.write_config("\n".join(lines))
    p = check(idle)
    assert p.returncode == 1, p
    assert "%s:%d:" % (idle.conf, at + 1) in p.stderr, p.stderr
    assert "tier9" in p.stderr


def test_missing_config_file(idle):
    gone = idle.dir / "nope.conf"
    p = idle.cli("-c", gone, "check", conf=False)
    assert p.returncode == 1, p
    assert str(gone) in p.stderr, p.stderr


def test_config_from_environment(idle):
    p = idle.cli("check", conf=False, env={"ESCALON_CONFIG": str(idle.conf)})
    assert p.returncode == 0, p
    assert p.stdout.strip() == "config ok"


def test_run_refuses_a_bad_config(idle):
    idle.write_config(idle.config() + BAD[0][1] + "\n")
    p = idle.cli("run")
    assert p.returncode == 1, p
    assert "%s:" % idle.conf in p.stderr and "nosuch" in p.stderr, p.stderr


def test_single_quotes_are_literal(idle):
    """Regexes in single quotes keep their backslashes (SPEC.md)."""
    idle.write_config(idle.config(extra=(
        "rule \"r\" { match = {'subject ~* \\d{4}-\\w+'}  queue = "
        "\"general\" }\n")))
    p = check(idle)
    assert p.returncode == 0, p


SPEC_EXAMPLE = r'''
store    = "var/escalon.db"
listen   = "127.0.0.1:@PORT@"          # webhooks, API, dashboard, metrics
base_url = "http://127.0.0.1:@PORT@"
secret_file = "var/secret"           # key for reply tokens; created if absent
api_token_file = "var/api-token"     # bearer token for /api
templates = "@TEMPLATES@"
reopen_within = "7d"

smtp { url = "smtp://127.0.0.1:10025"  from = "support@example.test" }

mailbox "support" {                  # IMAP, inbound
  host = "127.0.0.1"  port = 10143  tls = "none"    # none|starttls|tls
  user = "support"  password = "secret"  folder = "INBOX"
  address = "support@example.test"   queue = "general"
}

xmpp "chat" {
  jid = "support@example.test"  password = "secret"
  host = "127.0.0.1"  port = 15222  tls = "none"    # none|starttls|tls
  queue = "general"
}

webhook "shop" { secret = "s3cret"  queue = "billing" }   # POST /hooks/shop
notify "pager" { url = "http://127.0.0.1:9000/hook"  secret = "x"
                 events = {"ticket.escalated", "sla.breached"} }

agent "alice" { email = "alice@example.test"  name = "Alice" }
agent "bob"   { email = "bob@example.test"    name = "Bob" }
agent "carol" { email = "carol@example.test"  name = "Carol" }
agent "max"   { email = "max@example.test"    name = "Max" }
team "tier1" { agents = {"alice", "bob"} }
team "tier2" { agents = {"carol"} }
team "managers" { agents = {"max"} }

calendar "business" { timezone = "Europe/Berlin"
                      hours = {"mon-fri 09:00-17:00"}
                      holidays = {"2026-12-25", "2026-12-26"} }
calendar "always" { timezone = "UTC"  hours = {"mon-sun 00:00-24:00"} }

sla "standard" { calendar = "business"  first_response = "4h"
                 next_update = "8h"  resolution = "3d"  warn_at = 80
                 customer_update = "4h" }   # while escalated
sla "urgent"   { calendar = "always"  first_response = "15m"
                 next_update = "1h"  resolution = "8h"  warn_at = 50 }

ladder "default" {
  level 1 { team = "tier1" }
  level 2 { team = "tier2"  after = "2h"  on_breach = {"first_response"} }
  level 3 { team = "managers"  after = "4h"  on_breach = {"resolution"} }
}

queue "general"   { team = "tier1"  sla = "standard"  ladder = "default" }
queue "billing"   { team = "tier1"  sla = "standard"  ladder = "default" }
queue "incidents" { team = "tier1"  sla = "standard"  ladder = "default" }

severity "critical" { sla = "urgent"  start_level = 2 }

rule "outage" {                      # first match wins unless continue = true
  match = {"subject ~* outage|down|cannot log ?in", "channel = email"}
  severity = "critical"  queue = "incidents"  tags = {"outage"}
}
'''


def test_spec_example_is_accepted(idle):
    idle.write_config(SPEC_EXAMPLE.replace("@PORT@", str(idle.port))
                      .replace("@TEMPLATES@", str(REPO / "templates")))
    p = check(idle)
    assert p.returncode == 0, p
    assert p.stdout.strip() == "config ok"
