/*
 * test_dashboard: the page at GET / (gateway/dashboard.c), rendered by
 * dashboard_render from a real store in a temporary folder at a fixed
 * instant, and checked as a reader would: it is one HTML document with
 * balanced elements and SVG charts, loads nothing from elsewhere and runs
 * no script, shows report_build's numbers for its window, lists the
 * tickets escalated now, and never lets a string from the store through
 * unescaped.
 *
 * The fixture (NOW is 2026-12-01T09:30:00Z; the 30-day window starts
 * 2026-11-02T00:00:00Z):
 *
 *   A  3d ago, queue general, escalated 1h after creation, resolved
 *      1h20m after that within target, root cause, CSAT 5
 *   B  2d ago, queue "ops<&>" (hostile on purpose), critical, escalated
 *      twice (30m, then 2h after creation), open, a hostile subject,
 *      first response due in 1h, next update 10m overdue, no resolution
 *      clock
 *   C  1d ago, level 1, answered in 10m, resolved, CSAT 3
 *   D  40d ago (only in the 90-day window), level 2 from creation,
 *      pending: escalated now whatever the window
 *   E  1h ago, level 1, new, first response breached
 *
 * By hand, 30 days: tickets 4, escalated 2 (A, B), rate 50.0%; time to
 * escalation {1h, 30m}: median (rank 1) 30m, p90 (rank 2) 1h; resolution
 * after escalation {1h20m}: 1h 20m both; SLA after escalation 1 of 1
 * = 100.0%; root cause 1 of 1 = 100.0%; first response C ok, E
 * breached = 50.0%; CSAT escalated 5.00 (1), other 3.00 (1).
 * 90 days adds D: tickets 5, escalated 3 = 60.0%; time to escalation
 * {0, 30m, 1h}: median (rank 2) 30m, p90 (rank 3) 1h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "clock.h"
#include "conf.h"
#include "dashboard.h"
#include "env.h"
#include "sla.h"
#include "store.h"
#include "ticket.h"
#include "views.h"

#include "testutil.h"

#define NOW INT64_C(1796117400)	/* 2026-12-01T09:30:00Z, a Tuesday */
#define MIN INT64_C(60)
#define HOUR INT64_C(3600)
#define DAY INT64_C(86400)

#define XSS_SUBJECT "<script>alert(1)</script> & \"x\""
#define XSS_ESCAPED \
	"&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"
#define HOSTILE_QUEUE "ops<&>"
#define HOSTILE_QUEUE_ESCAPED "ops&lt;&amp;&gt;"

/* ---- the fixture --------------------------------------------------------- */

struct shape {
	const char *subject, *queue, *team, *severity;
	enum ticket_state state;
	int level;
	int64_t created;
	int64_t escalated[2];		/* instants of escalated events */
	int64_t first_response, resolved;
	const char *root_cause;
	unsigned breached;
	int64_t due_fr, due_nu, due_res;
	int csat;			/* 0: none */
};

static int64_t
insert(struct fx *f, const struct shape *s)
{
	struct ticket t = fx_ticket("cust-1", s->subject ? s->subject :
	    "Refund", s->created);

	t.queue = (char *)(s->queue ? s->queue : "general");
	t.team = (char *)(s->team ? s->team : "tier1");
	t.severity = (char *)(s->severity ? s->severity : "normal");
	t.state = s->state;
	t.level = s->level > 0 ? s->level : 1;
	t.first_response_at = s->first_response;
	t.resolved_at = s->resolved;
	t.root_cause = (char *)s->root_cause;
	t.sla_breached = s->breached;
	t.due_first_response = s->due_fr;
	t.due_next_update = s->due_nu;
	t.due_resolution = s->due_res;
	t.resolution_start = s->created;
	t.level_since = s->created;

	assert_int_equal(store_customer_identify(f->st, "webhook",
	    "webhook:shop", "cust-1", "Ada", NULL, s->created,
	    &t.customer_id), 0);
	assert_int_equal(store_ticket_insert(f->st, &t), 0);
	assert_int_equal(store_event_add(f->st, t.id, s->created, "created",
	    "customer", NULL), 0);
	for (int i = 0; i < 2 && s->escalated[i] != 0; i++)
		assert_int_equal(store_event_add(f->st, t.id, s->escalated[i],
		    "escalated", "escalon", json_pack("{s:i, s:i}", "from",
		    i + 1, "to", i + 2)), 0);
	return t.id;
}

/*
 * CSAT has no store call yet (GET /csat/TOKEN will add one): the rating
 * goes straight into the table store_report_rows reads.
 */
static void
rate(struct fx *f, int64_t id, int score)
{
	sqlite3 *db = NULL;
	char sql[256];

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "INSERT INTO csat (ticket_id, token, "
	    "score, sent_at, answered_at) VALUES (%lld, 'tok-%lld', %d, "
	    "%lld, %lld)", (long long)id, (long long)id, score,
	    (long long)NOW, (long long)NOW);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

struct ids {
	int64_t a, b, c, d, e;
};

static struct ids
fixture(struct fx *f)
{
	struct ids id;
	int64_t a = NOW - 3 * DAY, b = NOW - 2 * DAY, c = NOW - 1 * DAY;

	assert_int_equal(store_begin(f->st), 0);
	id.a = insert(f, &(struct shape){ .state = TICKET_RESOLVED,
	    .level = 2, .created = a, .escalated = { a + HOUR },
	    .resolved = a + HOUR + 80 * MIN, .root_cause = "db",
	    .team = "tier2" });
	id.b = insert(f, &(struct shape){ .subject = XSS_SUBJECT,
	    .queue = HOSTILE_QUEUE, .team = "tier3", .severity = "critical",
	    .state = TICKET_OPEN, .level = 3, .created = b,
	    .escalated = { b + 30 * MIN, b + 2 * HOUR },
	    .due_fr = NOW + HOUR, .due_nu = NOW - 10 * MIN });
	id.c = insert(f, &(struct shape){ .state = TICKET_RESOLVED,
	    .created = c, .first_response = c + 10 * MIN,
	    .resolved = c + HOUR });
	id.d = insert(f, &(struct shape){ .subject = "Old and pending",
	    .state = TICKET_PENDING, .level = 2, .created = NOW - 40 * DAY,
	    .escalated = { NOW - 40 * DAY }, .team = "tier2",
	    .due_res = NOW + 2 * DAY });
	id.e = insert(f, &(struct shape){ .subject = "Just in",
	    .created = NOW - HOUR, .breached = SLA_BIT(SLA_FIRST_RESPONSE) });
	assert_int_equal(store_commit(f->st), 0);
	rate(f, id.a, 5);
	rate(f, id.c, 3);
	return id;
}

static int
setup(void **state)
{
	return fx_setup_store(state, "escalon-test-dashboard");
}

/* ---- looking at a page --------------------------------------------------- */

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0, len = strlen(needle);

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += len)
		n++;
	return n;
}

/* Opening tags <name ...> or <name> (not <namex), and closing </name>. */
static void
assert_balanced(const char *html, const char *name)
{
	size_t open = 0, close = 0, len = strlen(name);
	char closing[32];

	for (const char *p = html; (p = strchr(p, '<')) != NULL; p++) {
		if (strncmp(p + 1, name, len) == 0 && (p[1 + len] == ' ' ||
		    p[1 + len] == '>'))
			open++;
	}
	snprintf(closing, sizeof(closing), "</%s>", name);
	close = count(html, closing);
	if (open != close)
		fail_msg("<%s>: %zu opened, %zu closed", name, open, close);
}

static void
assert_well_formed(const char *html)
{
	static const char *const tags[] = { "html", "head", "body", "main",
	    "header", "nav", "section", "figure", "figcaption", "table",
	    "thead", "tbody", "tr", "td", "th", "div", "p", "svg", "g",
	    "text", "title", "style", "small", "footer" };

	assert_non_null(html);
	assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	assert_int_equal(count(html, "<!DOCTYPE"), 1);
	for (size_t i = 0; i < sizeof(tags) / sizeof(*tags); i++)
		assert_balanced(html, tags[i]);
	/* self-contained and script-free */
	assert_null(strstr(html, "http://"));
	assert_null(strstr(html, "https://"));
	assert_null(strcasestr(html, "<script"));
	assert_null(strcasestr(html, "javascript:"));
	assert_null(strcasestr(html, "<link"));
	assert_null(strcasestr(html, "<img"));
	assert_null(strcasestr(html, "@import"));
	assert_null(strcasestr(html, "url("));
}

/* 1 if s is valid UTF-8 (a cut subject must not split a character). */
static int
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 :
		    (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
		if (n < 0)
			return 0;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xC0) != 0x80)
				return 0;
	}
	return 1;
}

/* The value shown on the KPI card id="kpi-NAME", in a static buffer. */
static const char *
kpi_value(const char *html, const char *name)
{
	static char v[128];
	char id[64];
	const char *p, *end;

	snprintf(id, sizeof(id), "id=\"kpi-%s\"", name);
	if ((p = strstr(html, id)) == NULL)
		fail_msg("no KPI card %s", id);
	if ((p = strstr(p, "<div class=\"v\">")) == NULL ||
	    (end = strstr(p, "</div>")) == NULL)
		fail_msg("KPI card %s has no value", id);
	p += strlen("<div class=\"v\">");
	snprintf(v, sizeof(v), "%.*s", (int)(end - p), p);
	return v;
}

/* The part of the page from the escalated-tickets section on. */
static const char *
escalated_section(const char *html)
{
	const char *p = strstr(html, "<section id=\"escalated\">");

	assert_non_null(p);
	return p;
}

/* ---- report_build, formatted as the page should show it ------------------ */

static void
want_pct(json_t *v, char *buf, size_t len)
{
	if (json_is_null(v))
		snprintf(buf, len, "&mdash;");
	else
		snprintf(buf, len, "%.1f%%", json_number_value(v) * 100.0);
}

static void
want_dur(json_t *v, char *buf, size_t len)
{
	if (json_is_null(v))
		snprintf(buf, len, "&mdash;");
	else
		dashboard_duration(json_integer_value(v), buf, len);
}

static void
want_mean(json_t *v, char *buf, size_t len)
{
	if (json_is_null(v))
		snprintf(buf, len, "&mdash;");
	else
		snprintf(buf, len, "%.2f", json_number_value(v));
}

/* Every KPI card against view_report (store_report_rows + report_build)
 * over the page's own window. */
static void
assert_kpis_match_report(struct store *st, const char *html, int days)
{
	int64_t from, to;
	json_t *o, *tte, *per, *csat;
	char w[64];

	dashboard_window(NOW, days, &from, &to);
	o = view_report(st, NULL, from, to);
	assert_non_null(o);
	tte = json_object_get(o, "time_to_escalation");
	per = json_object_get(o, "post_escalation_resolution");
	csat = json_object_get(o, "csat");

	snprintf(w, sizeof(w), "%lld", (long long)json_integer_value(
	    json_object_get(o, "tickets")));
	assert_string_equal(kpi_value(html, "tickets"), w);
	snprintf(w, sizeof(w), "%lld", (long long)json_integer_value(
	    json_object_get(o, "escalated")));
	assert_string_equal(kpi_value(html, "escalated"), w);
	want_pct(json_object_get(o, "escalation_rate"), w, sizeof(w));
	assert_string_equal(kpi_value(html, "escalation-rate"), w);
	want_dur(json_object_get(tte, "median_s"), w, sizeof(w));
	assert_string_equal(kpi_value(html, "tte-median"), w);
	want_dur(json_object_get(tte, "p90_s"), w, sizeof(w));
	assert_string_equal(kpi_value(html, "tte-p90"), w);
	want_dur(json_object_get(per, "median_s"), w, sizeof(w));
	assert_string_equal(kpi_value(html, "per-median"), w);
	want_dur(json_object_get(per, "p90_s"), w, sizeof(w));
	assert_string_equal(kpi_value(html, "per-p90"), w);
	want_pct(json_object_get(o, "sla_compliance_post_escalation"), w,
	    sizeof(w));
	assert_string_equal(kpi_value(html, "sla-post"), w);
	want_pct(json_object_get(o, "root_cause_frequency"), w, sizeof(w));
	assert_string_equal(kpi_value(html, "root-cause"), w);
	want_pct(json_object_get(o, "first_response_compliance"), w,
	    sizeof(w));
	assert_string_equal(kpi_value(html, "first-response"), w);
	want_mean(json_object_get(json_object_get(csat, "escalated"),
	    "mean"), w, sizeof(w));
	assert_string_equal(kpi_value(html, "csat-escalated"), w);
	want_mean(json_object_get(json_object_get(csat, "other"), "mean"),
	    w, sizeof(w));
	assert_string_equal(kpi_value(html, "csat-other"), w);
	json_decref(o);
}

/* ---- pure helpers -------------------------------------------------------- */

static void
test_escape(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ XSS_SUBJECT, XSS_ESCAPED },
		{ "", "" },
		{ "plain text", "plain text" },
		{ "it's", "it&#39;s" },
		{ "a&amp;b", "a&amp;amp;b" },
		{ "tab\tnl\ncr\r", "tab\tnl\ncr\r" },
		{ "bell\a esc\x1b del\x7f", "bell  esc  del " },
		{ "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },
		{ NULL, "-" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *got = dashboard_escape(cases[i].in);
		assert_non_null(got);
		assert_string_equal(got, cases[i].want);
		free(got);
	}
}

static void
test_duration(void **state)
{
	static const struct {
		int64_t s;
		const char *want;
	} cases[] = {
		{ -5, "0s" },
		{ 0, "0s" },
		{ 45, "45s" },
		{ 60, "1m" },
		{ 725, "12m 5s" },
		{ 3600, "1h" },
		{ 80 * MIN, "1h 20m" },
		{ 80 * MIN + 59, "1h 20m" },
		{ DAY - 1, "23h 59m" },
		{ DAY, "1d" },
		{ 2 * DAY + 3 * HOUR + 59 * MIN, "2d 3h" },
		{ 400 * DAY, "400d" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		assert_string_equal(dashboard_duration(cases[i].s, buf,
		    sizeof(buf)), cases[i].want);
}

static void
test_parse_days(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "7", 7 }, { "30", 30 }, { "90", 90 },
		{ "", -1 }, { "bogus", -1 }, { "07", -1 }, { "30 ", -1 },
		{ "-7", -1 }, { "365", -1 }, { "1", -1 }, { NULL, -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		assert_int_equal(dashboard_parse_days(cases[i].in),
		    cases[i].want);
}

static void
test_window(void **state)
{
	int64_t from, to, want;

	(void)state;
	dashboard_window(NOW, 7, &from, &to);
	assert_int_equal(clock_parse("2026-11-25T00:00:00Z", &want), 0);
	assert_int_equal(from, want);
	assert_int_equal(to, NOW);	/* [from, to]: this second included */
	dashboard_window(NOW, 30, &from, &to);
	assert_int_equal(clock_parse("2026-11-02T00:00:00Z", &want), 0);
	assert_int_equal(from, want);
	dashboard_window(NOW, 1, &from, &to);
	assert_int_equal(clock_parse("2026-12-01T00:00:00Z", &want), 0);
	assert_int_equal(from, want);
}

/* ---- pages --------------------------------------------------------------- */

static void
test_page_30_days(void **state)
{
	struct fx *f = *state;
	struct ids id = fixture(f);
	char *html = dashboard_render(f->st, NULL, NOW, 30);
	char ref[32];
	const char *sec;

	assert_well_formed(html);
	assert_true(count(html, "<svg ") >= 6);
	assert_non_null(strstr(html, "<title>escalon: escalations, last 30 "
	    "days</title>"));
	assert_non_null(strstr(html, "<strong aria-current=\"page\">30 days"
	    "</strong>"));
	assert_non_null(strstr(html, "<a href=\"/?days=7\">"));
	assert_non_null(strstr(html, "<a href=\"/?days=90\">"));
	assert_null(strstr(html, "no tickets in this window"));

	/* the numbers, by hand */
	assert_string_equal(kpi_value(html, "tickets"), "4");
	assert_string_equal(kpi_value(html, "escalated"), "2");
	assert_string_equal(kpi_value(html, "escalation-rate"), "50.0%");
	assert_string_equal(kpi_value(html, "tte-median"), "30m");
	assert_string_equal(kpi_value(html, "tte-p90"), "1h");
	assert_string_equal(kpi_value(html, "per-median"), "1h 20m");
	assert_string_equal(kpi_value(html, "per-p90"), "1h 20m");
	assert_string_equal(kpi_value(html, "sla-post"), "100.0%");
	assert_string_equal(kpi_value(html, "root-cause"), "100.0%");
	assert_string_equal(kpi_value(html, "first-response"), "50.0%");
	assert_string_equal(kpi_value(html, "csat-escalated"), "5.00");
	assert_string_equal(kpi_value(html, "csat-other"), "3.00");
	/* and as report_build has them */
	assert_kpis_match_report(f->st, html, 30);

	/* hostile strings only ever escaped, in HTML and in SVG */
	assert_null(strstr(html, XSS_SUBJECT));
	assert_null(strstr(html, "<script>"));
	assert_non_null(strstr(html, XSS_ESCAPED));
	assert_null(strstr(html, HOSTILE_QUEUE));
	assert_non_null(strstr(html, ">" HOSTILE_QUEUE_ESCAPED "</text>"));
	assert_non_null(strstr(html, "<td>" HOSTILE_QUEUE_ESCAPED "</td>"));

	/* charts: per day by the day of first escalation; the funnel */
	assert_non_null(strstr(html, "<title>2026-11-28: 1</title>"));
	assert_non_null(strstr(html, "<title>2026-11-29: 1</title>"));
	assert_non_null(strstr(html, "<title>2026-11-30: 0</title>"));
	assert_non_null(strstr(html, "<title>2026-11-02: 0</title>"));
	assert_int_equal(count(strstr(html, "id=\"chart-per-day\""),
	    "<rect class=\"hit\"") - count(strstr(html, "id=\"chart-funnel\""),
	    "<rect class=\"hit\""), 30);
	assert_non_null(strstr(html, ">4 (100%)</text>"));	/* >= 1 */
	assert_non_null(strstr(html, ">2 (50%)</text>"));	/* >= 2 */
	assert_non_null(strstr(html, ">1 (25%)</text>"));	/* >= 3 */
	/* time to escalation: 30m and 1h in "15m-1h" and "1-4h" */
	assert_non_null(strstr(html, "<title>15m-1h: 1</title>"));
	assert_non_null(strstr(html, "<title>1-4h: 1</title>"));
	/* SLA by queue: general had A resolved in target */
	assert_non_null(strstr(html, ">100% (1 of 1)</text>"));
	assert_non_null(strstr(html, ">no escalated ticket resolved</text>"));
	/* CSAT bars */
	assert_non_null(strstr(html, ">5.00 of 5 (1 rating)</text>"));
	assert_non_null(strstr(html, ">3.00 of 5 (1 rating)</text>"));
	assert_null(strstr(html, "no ratings yet"));

	/* escalated now: B (open) and D (pending, outside the window), not
	 * A (resolved) nor the level-1 tickets */
	sec = escalated_section(html);
	snprintf(ref, sizeof(ref), ">ESC-%lld<", (long long)id.b);
	assert_non_null(strstr(sec, ref));
	snprintf(ref, sizeof(ref), ">ESC-%lld<", (long long)id.d);
	assert_non_null(strstr(sec, ref));
	snprintf(ref, sizeof(ref), ">ESC-%lld<", (long long)id.a);
	assert_null(strstr(html, ref));
	snprintf(ref, sizeof(ref), ">ESC-%lld<", (long long)id.c);
	assert_null(strstr(html, ref));
	snprintf(ref, sizeof(ref), ">ESC-%lld<", (long long)id.e);
	assert_null(strstr(html, ref));
	assert_int_equal(count(sec, "<td class=\"ref\">"), 2);
	/* B's clocks: first response in 1h, next update overdue, none */
	assert_non_null(strstr(sec, "<td class=\"due\">2026-12-01T10:30:00Z"
	    "<br><small>in 1h</small></td>"));
	assert_non_null(strstr(sec, "<td class=\"due late\">"
	    "2026-12-01T09:20:00Z<br><small>10m overdue</small></td>"));
	assert_non_null(strstr(sec, "<td class=\"due\">-</td>"));
	assert_non_null(strstr(sec, "<td class=\"sev sev-critical\">critical"
	    "</td>"));
	assert_non_null(strstr(sec, "<td class=\"num\">3</td><td>open</td>"));
	assert_non_null(strstr(sec, "<td class=\"num\">2</td><td>pending"
	    "</td>"));
	assert_non_null(strstr(sec, "2026-12-03T09:30:00Z<br><small>in 2d"
	    "</small>"));
	assert_non_null(strstr(sec, "<td class=\"subj\">" XSS_ESCAPED
	    "</td>"));
	assert_null(strstr(sec, "class=\"more\""));
	assert_true(utf8_valid(html));
	free(html);
}

static void
test_page_7_and_90_days(void **state)
{
	struct fx *f = *state;
	char *html;

	fixture(f);
	html = dashboard_render(f->st, NULL, NOW, 7);
	assert_well_formed(html);
	assert_string_equal(kpi_value(html, "tickets"), "4");
	assert_kpis_match_report(f->st, html, 7);
	assert_int_equal(count(html, "<title>2026-11-"), 6);
	assert_int_equal(count(html, "<title>2026-12-01: 0</title>"), 1);
	free(html);

	html = dashboard_render(f->st, NULL, NOW, 90);
	assert_well_formed(html);
	assert_string_equal(kpi_value(html, "tickets"), "5");
	assert_string_equal(kpi_value(html, "escalated"), "3");
	assert_string_equal(kpi_value(html, "escalation-rate"), "60.0%");
	assert_string_equal(kpi_value(html, "tte-median"), "30m");
	assert_string_equal(kpi_value(html, "tte-p90"), "1h");
	assert_kpis_match_report(f->st, html, 90);
	/* D escalated at creation, 2026-10-22 */
	assert_non_null(strstr(html, "<title>2026-10-22: 1</title>"));
	assert_non_null(strstr(html, "<title>&lt; 1m: 1</title>"));
	free(html);
}

/* The funnel goes as deep as the deepest ladder of the config. */
static void
test_funnel_follows_the_ladders(void **state)
{
	struct fx *f = *state;
	static struct conf_level levels[] = {
		{ 1, "tier1", 0, { NULL, 0 } }, { 2, "tier2", 0, { NULL, 0 } },
		{ 3, "tier3", 0, { NULL, 0 } }, { 4, "boss", 0, { NULL, 0 } },
	};
	static struct conf_ladder ladders[] = { { "default", levels, 4 } };
	static struct conf conf = { .ladders = ladders, .n_ladders = 1 };
	struct env e = { .conf = &conf };
	char *html;

	fixture(f);
	html = dashboard_render(f->st, &e, NOW, 30);
	assert_well_formed(html);
	assert_non_null(strstr(html, "level \xe2\x89\xa5 4</text>"));
	assert_non_null(strstr(html, ">0 (0%)</text>"));
	free(html);
	html = dashboard_render(f->st, NULL, NOW, 30);
	assert_null(strstr(html, "level \xe2\x89\xa5 4</text>"));
	assert_non_null(strstr(html, "level \xe2\x89\xa5 3</text>"));
	free(html);
}

static void
assert_empty_page(const char *html)
{
	assert_well_formed(html);
	assert_non_null(strstr(html, "no tickets in this window"));
	assert_non_null(strstr(html, "no ratings yet"));
	assert_non_null(strstr(html, "no escalated ticket is open"));
	assert_string_equal(kpi_value(html, "tickets"), "0");
	assert_string_equal(kpi_value(html, "escalation-rate"), "&mdash;");
	assert_string_equal(kpi_value(html, "tte-median"), "&mdash;");
	assert_string_equal(kpi_value(html, "csat-other"), "&mdash;");
	assert_true(count(html, "<svg ") >= 4);
}

static void
test_empty_store(void **state)
{
	struct fx *f = *state;
	char *html = dashboard_render(f->st, NULL, NOW, 30);

	assert_empty_page(html);
	assert_kpis_match_report(f->st, html, 30);
	free(html);
	html = dashboard_render(NULL, NULL, NOW, 7);	/* no store */
	assert_empty_page(html);
	free(html);
}

/* Tickets only outside the window: the list still shows them. */
static void
test_empty_window(void **state)
{
	struct fx *f = *state;
	struct ids id = fixture(f);
	char *html = dashboard_render(f->st, NULL, NOW + 60 * DAY, 7);
	char ref[32];

	assert_well_formed(html);
	assert_non_null(strstr(html, "no tickets in this window"));
	snprintf(ref, sizeof(ref), ">ESC-%lld<", (long long)id.d);
	assert_non_null(strstr(escalated_section(html), ref));
	free(html);
}

/* A ticket created this very second is in every window. */
static void
test_ticket_created_now(void **state)
{
	struct fx *f = *state;
	char *html;

	assert_int_equal(store_begin(f->st), 0);
	insert(f, &(struct shape){ .state = TICKET_NEW, .created = NOW });
	assert_int_equal(store_commit(f->st), 0);
	for (int days = 7; days <= 90; days = days == 7 ? 30 : days + 60) {
		html = dashboard_render(f->st, NULL, NOW, days);
		assert_well_formed(html);
		assert_string_equal(kpi_value(html, "tickets"), "1");
		assert_kpis_match_report(f->st, html, days);
		free(html);
	}
}

/* The list stops at DASHBOARD_MAX_ESCALATED rows and says how many more. */
static void
test_escalated_list_is_capped(void **state)
{
	struct fx *f = *state;
	int n = DASHBOARD_MAX_ESCALATED + 3;
	char *html, more[64];

	assert_int_equal(store_begin(f->st), 0);
	for (int i = 0; i < n; i++)
		insert(f, &(struct shape){ .state = TICKET_OPEN, .level = 2,
		    .created = NOW - HOUR, .escalated = { NOW - HOUR } });
	assert_int_equal(store_commit(f->st), 0);
	html = dashboard_render(f->st, NULL, NOW, 30);
	assert_well_formed(html);
	assert_int_equal(count(escalated_section(html), "<td class=\"ref\">"),
	    DASHBOARD_MAX_ESCALATED);
	snprintf(more, sizeof(more), ">and 3 more</td>");
	assert_non_null(strstr(html, more));
	assert_true(strlen(html) < DASHBOARD_MAX_BYTES);
	free(html);
}

/* A long subject is cut on a character boundary, with an ellipsis. */
static void
test_long_subject_is_cut(void **state)
{
	struct fx *f = *state;
	char subject[1 + 2 * 100 + 1], want[1 + 2 * 79 + 16];
	char *html;

	subject[0] = 'a';
	for (int i = 0; i < 100; i++)
		memcpy(subject + 1 + 2 * i, "\xc3\xa9", 2);	/* é */
	subject[sizeof(subject) - 1] = '\0';
	/* 160 bytes would end inside the 80th é: 'a' and 79 of them */
	memcpy(want, subject, 1 + 2 * 79);
	strcpy(want + 1 + 2 * 79, "&hellip;</td>");

	assert_int_equal(store_begin(f->st), 0);
	insert(f, &(struct shape){ .subject = subject, .state = TICKET_NEW,
	    .level = 2, .created = NOW - HOUR });
	assert_int_equal(store_commit(f->st), 0);
	html = dashboard_render(f->st, NULL, NOW, 30);
	assert_well_formed(html);
	assert_true(utf8_valid(html));
	assert_non_null(strstr(html, want));
	free(html);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_parse_days),
		cmocka_unit_test(test_window),
		T(test_page_30_days),
		T(test_page_7_and_90_days),
		T(test_funnel_follows_the_ladders),
		T(test_empty_store),
		T(test_empty_window),
		T(test_ticket_created_now),
		T(test_escalated_list_is_capped),
		T(test_long_subject_is_cut),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
