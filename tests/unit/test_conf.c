/*
 * test_conf: conf_load() and its value parsers.
 *
 * - conf_parse_duration / conf_parse_size: tables of good and bad values.
 * - SPEC.md's complete example (tests/data/conf/spec_example.conf, copied
 *   verbatim) and etc/escalon.conf load, with values read back.
 * - Each kind of mistake gives its exact "FILE:LINE: message": every case is
 *   written to a temporary file, most of them after BASE, a small valid
 *   config of BASE_LINES lines, so a case's first line is BASE_LINES + 1.
 *
 * Run from the repository root (as `make unit` does): fixtures are found
 * through relative paths.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

#define SPEC_EXAMPLE	"tests/data/conf/spec_example.conf"
#define DEFAULT_CONF	"etc/escalon.conf"

/* ---- durations and sizes -------------------------------------------------- */

static const struct {
	const char *in;
	int rc;
	int64_t out;
} durations[] = {
	{ "45s", 0, 45 },
	{ "15m", 0, 900 },
	{ "4h", 0, 14400 },
	{ "2d", 0, 172800 },
	{ "1h30m", 0, 5400 },
	{ "1d2h3m4s", 0, 93784 },
	{ "30m1h", 0, 5400 },		/* a sum, in any order */
	{ "90", 0, 90 },		/* bare seconds */
	{ "0", 0, 0 },
	{ "0s", 0, 0 },
	{ "007m", 0, 420 },
	{ "9223372036854775807", 0, INT64_MAX },
	{ "9223372036854775807s", 0, INT64_MAX },
	{ "", -1, 0 },
	{ "s", -1, 0 },
	{ "h1", -1, 0 },
	{ "5x", -1, 0 },
	{ "5H", -1, 0 },
	{ "1w", -1, 0 },
	{ "-5s", -1, 0 },
	{ "+5s", -1, 0 },
	{ "1h30", -1, 0 },		/* bare number after a unit: a typo */
	{ "1.5h", -1, 0 },
	{ " 1h", -1, 0 },
	{ "1h ", -1, 0 },
	{ "1 h", -1, 0 },
	{ "9223372036854775808", -1, 0 },	/* INT64_MAX + 1 */
	{ "9223372036854775807m", -1, 0 },
	{ "106751991167300d", 0, 106751991167300LL * 86400 },
	{ "106751991167301d", -1, 0 },
	{ "9223372036854775807s1s", -1, 0 },	/* overflow in the sum */
	{ "99999999999999999999999s", -1, 0 },
};

static void
test_durations(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		int64_t out = -12345;
		int rc = conf_parse_duration(durations[i].in, &out);

		if (rc != durations[i].rc ||
		    (rc == 0 && out != durations[i].out))
			fail_msg("duration \"%s\": rc %d out %lld, want rc %d "
			    "out %lld", durations[i].in, rc, (long long)out,
			    durations[i].rc, (long long)durations[i].out);
		if (rc < 0 && out != -12345)
			fail_msg("duration \"%s\": output written on failure",
			    durations[i].in);
	}
	assert_int_equal(conf_parse_duration(NULL, &(int64_t){ 0 }), -1);
}

static const struct {
	const char *in;
	int rc;
	int64_t out;
} sizes[] = {
	{ "0", 0, 0 },
	{ "512", 0, 512 },
	{ "64K", 0, 65536 },
	{ "10M", 0, 10485760 },
	{ "5M", 0, 5242880 },
	{ "1M", 0, 1048576 },
	{ "1G", 0, 1073741824 },
	{ "8589934591G", 0, 8589934591LL * 1073741824 },
	{ "9223372036854775807", 0, INT64_MAX },
	{ "", -1, 0 },
	{ "K", -1, 0 },
	{ "10k", -1, 0 },
	{ "10MB", -1, 0 },
	{ "10 M", -1, 0 },
	{ "1.5M", -1, 0 },
	{ "-1", -1, 0 },
	{ "1T", -1, 0 },
	{ "8589934592G", -1, 0 },
	{ "9223372036854775808", -1, 0 },
};

static void
test_sizes(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int64_t out = -12345;
		int rc = conf_parse_size(sizes[i].in, &out);

		if (rc != sizes[i].rc || (rc == 0 && out != sizes[i].out))
			fail_msg("size \"%s\": rc %d out %lld, want rc %d out "
			    "%lld", sizes[i].in, rc, (long long)out,
			    sizes[i].rc, (long long)sizes[i].out);
	}
	assert_int_equal(conf_parse_size(NULL, &(int64_t){ 0 }), -1);
}

/* ---- helpers ------------------------------------------------------------- */

/* TEXT in a new temporary file; the caller unlinks and frees the path. */
static char *
write_temp(const char *text)
{
	char *path = strdup("/tmp/test_conf-XXXXXX.conf");
	FILE *fp;
	int fd;

	assert_non_null(path);
	fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* Loads TEXT; on failure fails the test with the message. */
static struct conf *
load_text(const char *text, char **path_r)
{
	char *error = NULL;
	struct conf *c;

	*path_r = write_temp(text);
	c = conf_load(*path_r, &error);
	if (c == NULL)
		fail_msg("conf_load: %s", error);
	assert_null(error);
	return c;
}

static char *
folder_real(const char *path)
{
	char *copy = strdup(path), *slash, *real;

	assert_non_null(copy);
	slash = strrchr(copy, '/');
	assert_non_null(slash);
	*slash = '\0';
	real = realpath(copy, NULL);
	assert_non_null(real);
	free(copy);
	return real;
}

static char *
join(const char *a, const char *b)
{
	char *s = NULL;

	assert_true(asprintf(&s, "%s%s", a, b) >= 0);
	return s;
}

/* ---- SPEC.md's example ---------------------------------------------------- */

static void
test_spec_example(void **state)
{
	char *error = NULL, *dir, *want;
	struct conf *c;
	const struct conf_ladder *l;
	const struct conf_sla *s;
	const struct conf_calendar *k;
	const struct conf_severity *sev;

	(void)state;
	c = conf_load(SPEC_EXAMPLE, &error);
	if (c == NULL)
		fail_msg("%s", error);

	/* Paths are absolute, against the folder of the file. */
	dir = realpath("tests/data/conf", NULL);
	assert_non_null(dir);
	assert_string_equal(c->path, SPEC_EXAMPLE);
	assert_string_equal(c->dir, dir);
	want = join(dir, "/var/escalon.db");
	assert_string_equal(c->store, want);
	free(want);
	want = join(dir, "/var/secret");
	assert_string_equal(c->secret_file, want);
	free(want);
	want = join(dir, "/var/api-token");
	assert_string_equal(c->api_token_file, want);
	free(want);
	want = join(dir, "/templates");
	assert_string_equal(c->templates, want);
	free(want);
	want = join(dir, "/var/escalon.sock");	/* the default */
	assert_string_equal(c->control_socket, want);
	free(want);

	assert_string_equal(c->listen, "127.0.0.1:8025");
	assert_string_equal(c->base_url, "http://127.0.0.1:8025");
	assert_int_equal(c->reopen_within, 7 * 86400);
	assert_int_equal(c->close_after, 7 * 86400);
	assert_int_equal(c->max_message_size, 10 * 1048576);
	assert_int_equal(c->max_attachment_size, 5 * 1048576);
	assert_int_equal(c->max_webhook_size, 1048576);
	assert_int_equal(c->max_autoreplies, 10);
	assert_int_equal(c->outbox.retry_first, 10);
	assert_int_equal(c->outbox.retry_max, 3600);
	assert_int_equal(c->outbox.max_attempts, 12);

	assert_true(c->smtp.present);
	assert_string_equal(c->smtp.url, "smtp://127.0.0.1:10025");
	assert_string_equal(c->smtp.from, "support@example.test");
	assert_null(c->smtp.user);
	assert_int_equal(c->smtp.tls, CONF_TLS_STARTTLS);
	assert_true(c->smtp.tls_verify);

	assert_int_equal(c->n_mailboxes, 1);
	assert_string_equal(c->mailboxes[0].name, "support");
	assert_int_equal(c->mailboxes[0].port, 10143);
	assert_int_equal(c->mailboxes[0].tls, CONF_TLS_NONE);
	assert_string_equal(c->mailboxes[0].folder, "INBOX");
	assert_int_equal(c->mailboxes[0].poll_interval, 60);
	assert_string_equal(c->mailboxes[0].queue, "general");
	assert_int_equal(c->n_xmpps, 1);
	assert_int_equal(c->xmpps[0].port, 15222);
	assert_string_equal(c->xmpps[0].host, "127.0.0.1");

	assert_non_null(conf_webhook(c, "shop"));
	assert_string_equal(conf_webhook(c, "shop")->queue, "billing");
	assert_int_equal(c->n_notifies, 1);
	assert_int_equal(c->notifies[0].events.n, 2);
	assert_string_equal(c->notifies[0].events.v[1], "sla.breached");

	assert_int_equal(c->n_agents, 4);
	assert_string_equal(conf_agent(c, "carol")->display_name, "Carol");
	assert_ptr_equal(conf_agent_by_email(c, "BOB@example.test"),
	    conf_agent(c, "bob"));
	assert_int_equal(conf_team(c, "tier1")->agents.n, 2);

	k = conf_calendar(c, "business");
	assert_non_null(k);
	assert_string_equal(k->timezone, "Europe/Berlin");
	assert_int_equal(k->hours.n, 1);
	assert_int_equal(k->holidays.n, 2);

	s = conf_sla(c, "standard");
	assert_non_null(s);
	assert_string_equal(s->calendar, "business");
	assert_int_equal(s->first_response, 4 * 3600);
	assert_int_equal(s->next_update, 8 * 3600);
	assert_int_equal(s->resolution, 3 * 86400);
	assert_int_equal(s->customer_update, 4 * 3600);
	assert_int_equal(s->warn_at, 80);
	s = conf_sla(c, "urgent");
	assert_int_equal(s->first_response, 15 * 60);
	assert_int_equal(s->customer_update, 0);
	assert_int_equal(s->warn_at, 50);

	l = conf_ladder(c, "default");
	assert_non_null(l);
	assert_int_equal(l->n_levels, 3);
	assert_int_equal(l->levels[0].level, 1);
	assert_string_equal(l->levels[0].team, "tier1");
	assert_int_equal(l->levels[0].after, 0);
	assert_int_equal(l->levels[0].on_breach.n, 0);
	assert_int_equal(l->levels[1].level, 2);
	assert_int_equal(l->levels[1].after, 2 * 3600);
	assert_string_equal(l->levels[1].on_breach.v[0], "first_response");
	assert_string_equal(l->levels[2].team, "managers");
	assert_int_equal(l->levels[2].after, 4 * 3600);

	assert_int_equal(c->n_queues, 3);
	assert_string_equal(conf_queue(c, "incidents")->ladder, "default");
	sev = conf_severity(c, "critical");
	assert_non_null(sev);
	assert_string_equal(sev->sla, "urgent");
	assert_int_equal(sev->start_level, 2);
	assert_null(conf_severity(c, "high"));

	assert_int_equal(c->n_rules, 1);
	assert_string_equal(c->rules[0].name, "outage");
	assert_int_equal(c->rules[0].match.n, 2);
	assert_string_equal(c->rules[0].match.v[0],
	    "subject ~* outage|down|cannot log ?in");
	assert_string_equal(c->rules[0].severity, "critical");
	assert_string_equal(c->rules[0].queue, "incidents");
	assert_null(c->rules[0].sla);
	assert_int_equal(c->rules[0].tags.n, 1);
	assert_false(c->rules[0].cont);
	assert_int_equal(c->rules[0].line, 58);

	assert_null(conf_queue(c, "nope"));
	assert_null(conf_queue(c, NULL));
	conf_free(&c);
	assert_null(c);
	conf_free(&c);		/* a no-op on NULL */
	free(dir);
}

static void
test_default_config(void **state)
{
	char *error = NULL, *top, *want;
	struct conf *c;

	(void)state;
	c = conf_load(DEFAULT_CONF, &error);
	if (c == NULL)
		fail_msg("%s", error);
	top = realpath(".", NULL);
	assert_non_null(top);
	want = join(top, "/var/escalon.db");	/* ../var from etc/ */
	assert_string_equal(c->store, want);
	free(want);
	want = join(top, "/templates");
	assert_string_equal(c->templates, want);
	free(want);
	assert_string_equal(c->listen, "127.0.0.1:8025");
	assert_false(c->smtp.present);
	assert_int_equal(c->n_mailboxes, 0);
	assert_int_equal(c->n_xmpps, 0);
	assert_non_null(conf_webhook(c, "example"));
	assert_string_equal(conf_webhook(c, "example")->queue, "general");
	assert_non_null(conf_queue(c, "billing"));
	assert_non_null(conf_sla(c, "standard"));
	assert_non_null(conf_sla(c, "urgent"));
	assert_non_null(conf_calendar(c, "always"));
	assert_int_equal(conf_ladder(c, "default")->n_levels, 3);
	assert_int_equal(c->n_rules, 1);
	conf_free(&c);
	free(top);
}

/* ---- defaults and derived values ------------------------------------------- */

#define BASE \
	"agent \"a\" { email = \"a@x.test\" }\n" \
	"team \"t\" { agents = {\"a\"} }\n" \
	"calendar \"c\" { hours = {\"mon-fri 09:00-17:00\"} }  # business\n" \
	"sla \"s\" { calendar = \"c\"  first_response = \"1h\"  " \
	    "next_update = \"1h\"  resolution = \"1d\" }\n" \
	"ladder \"l\" { level 1 { team = \"t\" } }\n" \
	"queue \"q\" { team = \"t\"  sla = \"s\"  ladder = \"l\" }\n"
#define BASE_LINES 6

static void
test_defaults(void **state)
{
	char *path, *dir, *want;
	struct conf *c;

	(void)state;
	c = load_text(BASE
	    "listen = \"[::1]:9000\"\n"
	    "store = \"./a/../b.db\"\n"		/* only leading ./ ../ fold */
	    "templates = \"../../tpl\"\n"
	    "secret_file = \"/etc/escalon/secret\"\n"
	    "mailbox \"m\" { host = \"h\" user = \"u\" password = 'p'\n"
	    "  address = \"s@x.test\" queue = \"q\" }\n"
	    "mailbox \"m2\" { host = \"h\" user = \"u\" password = 'p'\n"
	    "  address = \"s@x.test\" queue = \"q\" tls = \"tls\" }\n"
	    "xmpp \"x\" { jid = \"bot@chat.x.test/gw\" password = 'p'\n"
	    "  queue = \"q\" }\n"
	    "agent \"b\" { email = \"b@x.test\" }\n"
	    "ladder \"l2\" { level 2 { team = \"t\" }\n"
	    "  level 1 { team = \"t\" after = 0 on_breach = {} } }\n"
	    "rule \"r\" { match = {\"from_domain = x.test\", # why\n"
	    "  'body ~ \\d+ (orders|items)'} team = \"t\" continue = true }\n",
	    &path);
	dir = folder_real(path);

	assert_string_equal(c->base_url, "http://[::1]:9000");
	want = join(dir, "/a/../b.db");
	assert_string_equal(c->store, want);
	free(want);
	assert_string_equal(c->secret_file, "/etc/escalon/secret");
	assert_non_null(strstr(c->templates, "/tpl"));
	assert_null(strstr(c->templates, ".."));
	assert_int_equal(c->max_message_size, 10485760);
	assert_false(c->smtp.present);
	assert_int_equal(c->smtp.tls, CONF_TLS_STARTTLS);

	assert_int_equal(c->mailboxes[0].port, 143);
	assert_int_equal(c->mailboxes[0].tls, CONF_TLS_STARTTLS);
	assert_true(c->mailboxes[0].tls_verify);
	assert_string_equal(c->mailboxes[0].folder, "INBOX");
	assert_int_equal(c->mailboxes[0].poll_interval, 60);
	assert_null(c->mailboxes[0].ca_file);
	assert_int_equal(c->mailboxes[1].port, 993);
	assert_int_equal(c->xmpps[0].port, 5222);
	assert_string_equal(c->xmpps[0].host, "chat.x.test");

	assert_string_equal(conf_agent(c, "b")->display_name, "b");
	assert_int_equal(conf_sla(c, "s")->warn_at, 80);
	assert_string_equal(conf_calendar(c, "c")->timezone, "UTC");

	/* Levels come back sorted whatever the file order. */
	assert_int_equal(conf_ladder(c, "l2")->levels[0].level, 1);
	assert_int_equal(conf_ladder(c, "l2")->levels[1].level, 2);

	/* Single quotes keep the backslash; a comment inside a list is fine. */
	assert_string_equal(c->rules[0].match.v[1],
	    "body ~ \\d+ (orders|items)");
	assert_true(c->rules[0].cont);
	assert_int_equal(c->rules[0].line, BASE_LINES + 14);

	conf_free(&c);
	unlink(path);
	free(path);
	free(dir);
}

/* ---- mistakes, each with its FILE:LINE ------------------------------------ */

static const struct {
	const char *name;
	int base;		/* prepend BASE */
	const char *text;
	const char *want;	/* after "FILE:" */
} bad[] = {
	/* syntax and unknown keys */
	{ "unknown top-level key", 1, "colour = \"red\"\n",
	    "7: unknown key \"colour\"" },
	{ "unknown key in a section", 1,
	    "queue \"q2\" { team = \"t\"  sla = \"s\"\n"
	    "  ladder = \"l\"  colour = 1 }\n",
	    "8: queue \"q2\": unknown key \"colour\"" },
	{ "unknown key in a level", 1,
	    "ladder \"l2\" { level 1 { team = \"t\" colour = 1 } }\n",
	    "7: ladder \"l2\": level 1: unknown key \"colour\"" },
	{ "missing } mid-file", 1,
	    "queue \"q2\" { team = \"t\"  sla = \"s\"  ladder = \"l\"\n"
	    "queue \"q3\" { team = \"t\"  sla = \"s\"  ladder = \"l\" }\n",
	    "8: queue \"q2\": missing \"}\" before \"queue\" (the section "
	    "opened on line 7)" },
	{ "top-level key inside a section", 1,
	    "smtp {\n  url = \"smtp://x\"  from = \"a@x.test\"\n"
	    "  listen = \"127.0.0.1:25\" }\n",
	    "9: smtp: unknown key \"listen\" here; if it belongs outside, a "
	    "\"}\" is missing before it (the section opened on line 7)" },
	{ "missing } of a level", 1,
	    "ladder \"l2\" {\n"
	    "  level 1 { team = \"t\"\n"
	    "  level 2 { team = \"t\" }\n"
	    "}\n",
	    "9: ladder \"l2\": level 1: missing \"}\" before \"level\" (the "
	    "section opened on line 8)" },
	{ "missing } at the end", 1,
	    "queue \"q2\" { team = \"t\"  sla = \"s\"\n"
	    "  ladder = \"l\"\n",
	    "7: queue \"q2\": missing \"}\" (the file ends before the "
	    "section closes)" },
	{ "missing } at the end, no final newline", 1,
	    "queue \"q2\" { team = \"t\"  sla = \"s\"  ladder = \"l\"",
	    "7: queue \"q2\": missing \"}\" (the file ends before the "
	    "section closes)" },
	{ "stray }", 1, "}\n", "7: \"}\" without a section to close" },
	{ "stray quote", 1,
	    "listen = \"127.0.0.1:8025\"\"\nstore = x.db\"\n",
	    "8: expected a key, found a quoted string (a quote too many or "
	    "too few before here?)" },
	{ "key with a bar", 1, "a|b = 1\n", "7: unknown key \"a\"" },
	{ "unterminated string", 1, "store = \"var/x.db\n\n",
	    "7: unterminated string (no closing quote)" },
	{ "file ends early", 1, "queue \"q2\"\n",
	    "7: the file ends too early (a value, a list or a \"{\" is "
	    "missing)" },
	{ "bad integer", 1, "max_autoreplies = lots\n",
	    "7: max_autoreplies is not a whole number" },
	{ "bad boolean", 1,
	    "rule \"r\" { match = {\"channel = chat\"} tags = {\"x\"}\n"
	    "  continue = maybe }\n",
	    "8: rule \"r\": continue is not a boolean (use true or false)" },
	{ "comments do not shift lines", 1,
	    "# one\n// two\n/* three\n   four */ # five\n"
	    "queue \"q2\" { team = \"x#y\"  sla = \"s\"  ladder = \"l\" }\n",
	    "11: queue \"q2\": team \"x#y\" is not defined" },

	/* values */
	{ "bad duration", 1, "reopen_within = \"7x\"\n",
	    "7: bad duration \"7x\" for reopen_within (use 45s, 15m, 4h, 2d "
	    "or sums like 1h30m)" },
	{ "bad duration in a section", 1,
	    "sla \"s2\" { calendar = \"c\"  first_response = \"1h\"\n"
	    "  next_update = \"1h30\"  resolution = \"1d\" }\n",
	    "8: sla \"s2\": bad duration \"1h30\" for next_update (use 45s, "
	    "15m, 4h, 2d or sums like 1h30m)" },
	{ "zero target", 1,
	    "sla \"s2\" { calendar = \"c\"  first_response = \"0\"\n"
	    "  next_update = \"1h\"  resolution = \"1d\" }\n",
	    "7: sla \"s2\": first_response \"0\" is too short (at least 1s)" },
	{ "overlong duration", 1, "close_after = \"3651d\"\n",
	    "7: close_after \"3651d\" is too long (at most 3650d)" },
	{ "bad size", 1, "max_message_size = \"10MB\"\n",
	    "7: bad size \"10MB\" for max_message_size (use bytes or K, M, "
	    "G: 512K, 10M)" },
	{ "zero size", 1, "max_webhook_size = 0\n",
	    "7: max_webhook_size \"0\" is out of range (1 to 1G)" },
	{ "bad tls", 1,
	    "mailbox \"m\" { host = \"h\" user = \"u\" password = \"p\"\n"
	    "  address = \"s@x.test\" queue = \"q\"\n"
	    "  tls = \"ssl\" }\n",
	    "9: mailbox \"m\": bad tls \"ssl\" (use none, starttls or tls)" },
	{ "bad port", 1,
	    "xmpp \"x\" { jid = \"a@b\" password = \"p\" queue = \"q\"\n"
	    "  port = 70000 }\n",
	    "8: xmpp \"x\": port 70000 is out of range (1 to 65535)" },
	{ "bad listen", 1, "listen = \"localhost\"\n",
	    "7: bad listen \"localhost\" (use HOST:PORT, e.g. "
	    "127.0.0.1:8025)" },
	{ "bad timezone", 1,
	    "calendar \"c2\" { timezone = \"Europe/Berln\"\n"
	    "  hours = {\"mon 09:00-12:00\"} }\n",
	    "7: calendar \"c2\": unknown timezone \"Europe/Berln\" (use an "
	    "IANA name, such as Europe/Berlin or UTC)" },
	{ "timezone climbing out", 1,
	    "calendar \"c2\" { timezone = \"../../../etc/localtime\"\n"
	    "  hours = {\"mon 09:00-12:00\"} }\n",
	    "7: calendar \"c2\": unknown timezone \"../../../etc/localtime\" "
	    "(use an IANA name, such as Europe/Berlin or UTC)" },
	{ "timezone that is a folder", 1,
	    "calendar \"c2\" { timezone = \"Europe\"\n"
	    "  hours = {\"mon 09:00-12:00\"} }\n",
	    "7: calendar \"c2\": unknown timezone \"Europe\" (use an IANA "
	    "name, such as Europe/Berlin or UTC)" },
	{ "bad hours", 1,
	    "calendar \"c2\" { hours = {\"mon 09:00-12:00\",\n"
	    "                         \"tue 9:00-12:00\"} }\n",
	    "8: calendar \"c2\": bad hours \"tue 9:00-12:00\": bad start time "
	    "(write \"mon-fri 09:00-17:00\" or \"sat 10:00-14:00\")" },
	{ "bad day", 1, "calendar \"c2\" { hours = {\"mo-fr 09:00-17:00\"} }\n",
	    "7: calendar \"c2\": bad hours \"mo-fr 09:00-17:00\": unknown day "
	    "(write \"mon-fri 09:00-17:00\" or \"sat 10:00-14:00\")" },
	{ "24:00 as a start", 1,
	    "calendar \"c2\" { hours = {\"mon 24:00-06:00\"} }\n",
	    "7: calendar \"c2\": bad hours \"mon 24:00-06:00\": bad start time "
	    "(write \"mon-fri 09:00-17:00\" or \"sat 10:00-14:00\")" },
	{ "empty period", 1,
	    "calendar \"c2\" { hours = {\"mon 09:00-09:00\"} }\n",
	    "7: calendar \"c2\": bad hours \"mon 09:00-09:00\": the period is "
	    "empty (write \"mon-fri 09:00-17:00\" or \"sat 10:00-14:00\")" },
	{ "bad holiday", 1,
	    "calendar \"c2\" { hours = {\"sat 22:00-06:00\"}\n"
	    "  holidays = {\"2028-02-29\", \"2026-02-29\"} }\n",
	    "8: calendar \"c2\": bad holiday \"2026-02-29\" (write a real date "
	    "as YYYY-MM-DD)" },
	{ "warn_at out of range", 1,
	    "sla \"s2\" { calendar = \"c\"  first_response = \"1h\"\n"
	    "  next_update = \"1h\"  resolution = \"1d\"  warn_at = 0 }\n",
	    "8: sla \"s2\": warn_at 0 is out of range (1 to 100)" },
	{ "bad event", 1,
	    "notify \"n\" { url = \"http://x\" secret = \"s\"\n"
	    "  events = {\"ticket.created\", \"ticket.closed\"} }\n",
	    "8: notify \"n\": unknown event \"ticket.closed\" (use "
	    "ticket.created, ticket.escalated, ticket.resolved, "
	    "ticket.reopened, sla.warning, sla.breached)" },
	{ "bad on_breach clock", 1,
	    "ladder \"l2\" { level 1 { team = \"t\" }\n"
	    "  level 2 { team = \"t\" on_breach = {\"first\"} } }\n",
	    "8: ladder \"l2\": level 2: unknown clock \"first\" in on_breach "
	    "(use first_response, next_update or resolution)" },
	{ "after on level 1", 1,
	    "ladder \"l2\" { level 1 { team = \"t\" after = \"1h\" } }\n",
	    "7: ladder \"l2\": level 1: after does not apply to level 1: "
	    "tickets start there (remove it)" },
	{ "on_breach on level 1", 1,
	    "ladder \"l2\" { level 1 { team = \"t\"\n"
	    "  on_breach = {\"resolution\"} } }\n",
	    "8: ladder \"l2\": level 1: on_breach does not apply to level 1: "
	    "tickets start there (remove it)" },
	{ "gap in levels", 1,
	    "ladder \"l2\" { level 1 { team = \"t\" }\n"
	    "  level 3 { team = \"t\" } }\n",
	    "7: ladder \"l2\": level 2 is missing (levels go 1, 2, 3 ... "
	    "without gaps)" },
	{ "no level 1", 1, "ladder \"l2\" { level 2 { team = \"t\" } }\n",
	    "7: ladder \"l2\": level 1 is missing (levels go 1, 2, 3 ... "
	    "without gaps)" },
	{ "level not a number", 1,
	    "ladder \"l2\" { level 1 { team = \"t\" }\n"
	    "  level two { team = \"t\" } }\n",
	    "8: ladder \"l2\": level two: the level must be a number from 1 to "
	    "20 (write: level 2 { ... })" },
	{ "unknown severity", 1, "severity \"urgent\" { }\n",
	    "7: severity \"urgent\": unknown severity (use low, normal, high "
	    "or critical)" },
	{ "start_level beyond the ladder", 1,
	    "severity \"high\" {\n  start_level = 2\n}\n",
	    "8: severity \"high\": start_level 2 is beyond ladder \"l\", which "
	    "has 1 level" },
	{ "bad regex", 1,
	    "rule \"r\" { match = {\"channel = email\",\n"
	    "                    \"subject ~ (unclosed\"} queue = \"q\" }\n",
	    "8: rule \"r\": bad regex \"(unclosed\" in match \"subject ~ "
	    "(unclosed\": Unmatched ( or \\(" },
	{ "bad match field", 1,
	    "rule \"r\" { match = {\"titel = x\"} queue = \"q\" }\n",
	    "7: rule \"r\": unknown field \"titel\" in match \"titel = x\" (use "
	    "channel, from, from_domain, subject, body, severity, queue, "
	    "customer or tag)" },
	{ "bad match op", 1,
	    "rule \"r\" { match = {\"subject == x\"} queue = \"q\" }\n",
	    "7: rule \"r\": unknown operator \"==\" in match \"subject == x\" "
	    "(use =, !=, ~ or ~*)" },
	{ "match without spaces", 1,
	    "rule \"r\" { match = {\"channel=email\"} queue = \"q\" }\n",
	    "7: rule \"r\": match \"channel=email\" is not FIELD OP VALUE "
	    "(e.g. \"subject ~* outage\")" },
	{ "match without value", 1,
	    "rule \"r\" { match = {\"subject ~\"} queue = \"q\" }\n",
	    "7: rule \"r\": match \"subject ~\" has no value" },
	{ "match on an unknown channel", 1,
	    "rule \"r\" { match = {\"channel = mail\"} queue = \"q\" }\n",
	    "7: rule \"r\": unknown channel \"mail\" in match \"channel = "
	    "mail\" (use email, chat or webhook)" },
	{ "rule sets an unknown severity", 1,
	    "rule \"r\" { match = {\"channel = chat\"} severity = \"urgent\" }\n",
	    "7: rule \"r\": unknown severity \"urgent\" (use low, normal, high "
	    "or critical)" },
	{ "rule that does nothing", 1,
	    "rule \"r\" { match = {\"channel = chat\"} }\n",
	    "7: rule \"r\": does nothing (set severity, queue, sla, team or "
	    "tags)" },
	{ "webhook without secret", 1,
	    "webhook \"w\" { secret = \"\"  queue = \"q\" }\n",
	    "7: webhook \"w\": secret is empty" },
	{ "webhook name unfit for a URL", 1,
	    "webhook \"a/b\" { secret = \"x\"  queue = \"q\" }\n",
	    "7: webhook \"a/b\": bad name (use letters, digits, '-', '_' and "
	    "'.'; it goes in the URL /hooks/NAME)" },
	{ "agent emails unique", 1,
	    "agent \"b\" {\n  email = \"A@X.test\"\n}\n",
	    "8: agent \"b\": email \"A@X.test\" is already used by agent "
	    "\"a\"" },
	{ "missing key", 1, "queue \"q2\" {\n  team = \"t\"  sla = \"s\"\n}\n",
	    "7: queue \"q2\": missing key \"ladder\"" },
	{ "smtp missing from", 1, "smtp { url = \"smtp://x\" }\n",
	    "7: smtp: missing key \"from\"" },
	{ "smtps with starttls", 1,
	    "smtp { url = \"smtps://x\"  from = \"a@x.test\"\n"
	    "  tls = \"starttls\" }\n",
	    "8: smtp: tls \"starttls\" does not fit an smtps:// url (use tls)" },
	{ "smtp twice", 1,
	    "smtp { url = \"smtp://x\"  from = \"a@x.test\" }\n"
	    "smtp { url = \"smtp://y\" }\n",
	    "8: smtp: section given twice (first on line 7)" },

	/* dangling references, on the line of the key that names them */
	{ "queue -> team", 1,
	    "queue \"q2\" { sla = \"s\"  ladder = \"l\"\n"
	    "  team = \"tier9\" }\n",
	    "8: queue \"q2\": team \"tier9\" is not defined" },
	{ "queue -> sla", 1,
	    "queue \"q2\" { team = \"t\"  sla = \"nope\"  ladder = \"l\" }\n",
	    "7: queue \"q2\": sla \"nope\" is not defined" },
	{ "queue -> ladder", 1,
	    "queue \"q2\" { team = \"t\"  sla = \"s\"\n\n  ladder = \"nope\" }\n",
	    "9: queue \"q2\": ladder \"nope\" is not defined" },
	{ "level -> team", 1,
	    "ladder \"l2\" { level 1 { team = \"t\" }\n"
	    "  level 2 { team = \"nope\" after = \"1h\" } }\n",
	    "8: ladder \"l2\": level 2: team \"nope\" is not defined" },
	{ "team -> agent", 1,
	    "team \"t2\" {\n"
	    "  agents = {\"a\",\n"
	    "            \"zed\"}\n"
	    "}\n",
	    "9: team \"t2\": agent \"zed\" is not defined" },
	{ "sla -> calendar", 1,
	    "sla \"s2\" { first_response = \"1h\"  next_update = \"1h\"\n"
	    "  resolution = \"1d\"  calendar = \"nope\" }\n",
	    "8: sla \"s2\": calendar \"nope\" is not defined" },
	{ "severity -> sla", 1, "severity \"critical\" { sla = \"nope\" }\n",
	    "7: severity \"critical\": sla \"nope\" is not defined" },
	{ "rule -> queue", 1,
	    "rule \"r\" { match = {\"channel = email\"}\n"
	    "  queue = \"nope\" }\n",
	    "8: rule \"r\": queue \"nope\" is not defined" },
	{ "rule -> sla", 1,
	    "rule \"r\" { match = {\"channel = email\"}  sla = \"nope\" }\n",
	    "7: rule \"r\": sla \"nope\" is not defined" },
	{ "rule -> team", 1,
	    "rule \"r\" { match = {\"channel = email\"}  team = \"nope\" }\n",
	    "7: rule \"r\": team \"nope\" is not defined" },
	{ "webhook -> queue", 1,
	    "webhook \"w\" { secret = \"x\"  queue = \"nope\" }\n",
	    "7: webhook \"w\": queue \"nope\" is not defined" },
	{ "mailbox -> queue", 1,
	    "mailbox \"m\" { host = \"h\" user = \"u\" password = \"p\"\n"
	    "  address = \"s@x.test\"\n"
	    "  queue = \"nope\" }\n",
	    "9: mailbox \"m\": queue \"nope\" is not defined" },
	{ "xmpp -> queue", 1,
	    "xmpp \"x\" { jid = \"a@b\" password = \"p\" queue = \"nope\" }\n",
	    "7: xmpp \"x\": queue \"nope\" is not defined" },

	/* duplicate titles */
	{ "duplicate queue", 1,
	    "\nqueue \"q\" { team = \"t\"  sla = \"s\"  ladder = \"l\" }\n",
	    "8: duplicate queue \"q\" (first defined on line 6)" },
	{ "duplicate agent", 1, "agent \"a\" { email = \"z@x.test\" }\n",
	    "7: duplicate agent \"a\" (first defined on line 1)" },
	{ "duplicate level", 1,
	    "ladder \"l2\" {\n  level 1 { team = \"t\" }\n"
	    "  level 1 { team = \"t\" }\n}\n",
	    "9: ladder \"l2\": duplicate level \"1\" (first defined on "
	    "line 8)" },
	{ "duplicate level spelled 01", 1,
	    "ladder \"l2\" {\n  level 1 { team = \"t\" }\n"
	    "  level 01 { team = \"t\" }\n}\n",
	    "9: ladder \"l2\": level 01: duplicate level 1" },
};

static void
test_bad_lines(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = join(bad[i].base ? BASE : "", bad[i].text);
		char *path = write_temp(text), *want, *error = NULL;
		struct conf *c = conf_load(path, &error);

		want = NULL;
		assert_true(asprintf(&want, "%s:%s", path, bad[i].want) >= 0);
		if (c != NULL)
			fail_msg("case \"%s\": loaded, want %s", bad[i].name,
			    want);
		if (error == NULL || strcmp(error, want) != 0)
			fail_msg("case \"%s\":\n got: %s\nwant: %s", bad[i].name,
			    error ? error : "(null)", want);
		free(error);
		free(want);
		unlink(path);
		free(path);
		free(text);
	}
}

static void
test_base_is_valid(void **state)
{
	char *path;
	struct conf *c;

	(void)state;
	c = load_text(BASE, &path);
	assert_int_equal(c->n_queues, 1);
	conf_free(&c);
	unlink(path);
	free(path);
}

static void
test_missing_file(void **state)
{
	char *error = NULL;

	(void)state;
	assert_null(conf_load("tests/data/conf/no-such.conf", &error));
	assert_string_equal(error, "tests/data/conf/no-such.conf: cannot open: "
	    "No such file or directory");
	free(error);
	error = NULL;
	assert_null(conf_load("tests/data/conf", &error));
	assert_string_equal(error, "tests/data/conf: cannot open: Is a "
	    "directory");
	free(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_default_config),
		cmocka_unit_test(test_base_is_valid),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
