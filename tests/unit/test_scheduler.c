/*
 * test_scheduler: SLA clocks and the escalation ladder on tickets in a real
 * store in a temporary folder, with a conf built by hand (a 24x7 UTC
 * calendar, so that open time is wall time) and fixed instants.
 *
 * sched_* run inside the caller's transaction and leave the ticket row to
 * the caller: every helper here brackets them with store_begin ..
 * store_ticket_update .. store_commit, and reads the ticket back from the
 * store before checking it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "conf.h"
#include "env.h"
#include "log.h"
#include "scheduler.h"
#include "sla.h"
#include "store.h"
#include "ticket.h"
#include "tmplset.h"

#include "testutil.h"

#define NOW INT64_C(1796117400)	/* 2026-12-01T09:30:00Z, a Tuesday */
#define MIN INT64_C(60)
#define HOUR INT64_C(3600)
#define DAY INT64_C(86400)

#define FR SLA_BIT(SLA_FIRST_RESPONSE)
#define NU SLA_BIT(SLA_NEXT_UPDATE)
#define RES SLA_BIT(SLA_RESOLUTION)

#define REPLY_URL "https://shop.test/hook"

/* ---- a conf, by hand --------------------------------------------------- */

static char *always_hours[] = { "mon-sun 00:00-24:00" };
static struct conf_calendar calendars[] = {
	{ "always", "UTC", { always_hours, 1 }, { NULL, 0 } },
};
static char *tier1_agents[] = { "alice" };
static char *tier2_agents[] = { "bob" };
static char *tier3_agents[] = { "carol" };
static struct conf_agent agents[] = {
	{ "alice", "alice@example.test", "Alice" },
	{ "bob", "bob@example.test", "Bob" },
	{ "carol", "carol@example.test", "Carol" },
};
static struct conf_team teams[] = {
	{ "tier1", { tier1_agents, 1 } },
	{ "tier2", { tier2_agents, 1 } },
	{ "tier3", { tier3_agents, 1 } },
};
/* first_response 4h, next_update 8h, resolution 3d, customer_update 1h,
 * warn_at 50%. */
static struct conf_sla slas[] = {
	{ "standard", "always", 4 * HOUR, 8 * HOUR, 3 * DAY, 1 * HOUR, 50 },
};
static char *level2_on_breach[] = { "first_response" };
static struct conf_level levels[] = {
	{ 1, "tier1", 0, { NULL, 0 } },
	{ 2, "tier2", 2 * HOUR, { level2_on_breach, 1 } },
	{ 3, "tier3", 4 * HOUR, { NULL, 0 } },
};
static struct conf_ladder ladders[] = {
	{ "default", levels, 3 },
};
static struct conf_queue queues[] = {
	{ "general", "tier1", "standard", "default" },
};
static struct conf_severity severities[] = {
	{ "critical", NULL, 2 },
	{ "high", NULL, 5 },	/* beyond the top: the top level */
};

static struct conf conf = {
	.reopen_within = 7 * DAY,
	.close_after = 7 * DAY,
	.agents = agents, .n_agents = 3,
	.teams = teams, .n_teams = 3,
	.calendars = calendars, .n_calendars = 1,
	.slas = slas, .n_slas = 1,
	.ladders = ladders, .n_ladders = 1,
	.queues = queues, .n_queues = 1,
	.severities = severities, .n_severities = 2,
};

static const char *const team_of[] = { NULL, "tier1", "tier2", "tier3" };

/* The shipped templates (escalated, update) and the conf, compiled. */
static struct tmplset *templates;
static struct env *env;

static int
env_setup(void **state)
{
	char *err = NULL;

	(void)state;
	templates = tmplset_load("templates", &err);
	if (templates == NULL ||
	    (env = env_new(&conf, templates, &err)) == NULL) {
		fprintf(stderr, "env: %s\n", err ? err : "?");
		free(err);
		tmplset_free(&templates);
		return -1;
	}
	return 0;
}

static int
env_teardown(void **state)
{
	(void)state;
	env_free(&env);
	tmplset_free(&templates);
	return 0;
}

static int
setup(void **state)
{
	return fx_setup_store(state, "escalon-test-scheduler");
}

/* ---- tickets ----------------------------------------------------------- */

/*
 * The shape of a ticket: what the SLA clocks and the ladder read. Instants
 * are absolute (0: unset); level 0 means level 1; since 0 means NOW.
 */
struct shape {
	enum ticket_state state;
	const char *severity;		/* NULL: normal */
	const char *sla;		/* NULL: standard */
	int no_sla;			/* sla NULL */
	int level;
	int64_t since;			/* level_since */
	unsigned warned, breached;
	int64_t first_response, awaiting, last_public, last_update;
	int64_t resolved;
	int no_reply;			/* reply_url NULL: no updates */
};

/* A webhook ticket created at NOW, inserted as the ingest code would. */
static int64_t
insert(struct fx *f, const struct shape *s)
{
	struct ticket t = fx_ticket("cust-1", "Refund", NOW);
	int level = s->level > 0 ? s->level : 1;

	t.state = s->state;
	t.severity = (char *)(s->severity ? s->severity : "normal");
	t.sla = s->no_sla ? NULL : (char *)(s->sla ? s->sla : "standard");
	t.level = level;
	t.team = (char *)team_of[level];
	t.customer_name = "Ada";
	t.reply_url = s->no_reply ? NULL : REPLY_URL;
	t.last_customer_at = NOW;
	t.resolution_start = NOW;
	t.level_since = s->since != 0 ? s->since : NOW;
	t.sla_warned = s->warned;
	t.sla_breached = s->breached;
	t.first_response_at = s->first_response;
	t.awaiting_since = s->awaiting;
	t.last_public_at = s->last_public;
	t.last_update_at = s->last_update;
	t.resolved_at = s->resolved;

	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_customer_identify(f->st, "webhook",
	    "webhook:shop", "cust-1", "Ada", NULL, NOW, &t.customer_id), 0);
	assert_int_equal(store_ticket_insert(f->st, &t), 0);
	assert_true(t.id > 0);
	assert_int_equal(store_event_add(f->st, t.id, NOW, "created",
	    "customer", NULL), 0);
	assert_int_equal(store_commit(f->st), 0);
	return t.id;
}

static struct ticket
get(struct fx *f, int64_t id)
{
	struct ticket t;

	assert_int_equal(store_ticket_get(f->st, id, &t), 1);
	return t;
}

/* sched_plan at now in a transaction; the ticket as the store has it. */
static struct ticket
plan(struct fx *f, int64_t id, int64_t now)
{
	struct ticket t;

	assert_int_equal(store_begin(f->st), 0);
	t = get(f, id);
	assert_int_equal(sched_plan(f->st, env, &t, now), 0);
	assert_int_equal(store_ticket_update(f->st, &t), 0);
	assert_int_equal(store_commit(f->st), 0);
	ticket_release(&t);
	return get(f, id);
}

/* sched_fire at now in a transaction, as run_batch does. */
static void
fire(struct fx *f, int64_t id, int64_t now)
{
	struct ticket t;
	char error[200] = "";

	assert_int_equal(store_begin(f->st), 0);
	t = get(f, id);
	if (sched_fire(f->st, env, &t, now, error, sizeof(error)) != 0)
		fail_msg("sched_fire: %s", error);
	assert_int_equal(store_ticket_update(f->st, &t), 0);
	assert_int_equal(store_commit(f->st), 0);
	ticket_release(&t);
}

/* The state change an act or a customer message makes: its event and the
 * row, planned at now. */
static void
change_state(struct fx *f, int64_t id, enum ticket_state to, int64_t now)
{
	struct ticket t;

	assert_int_equal(store_begin(f->st), 0);
	t = get(f, id);
	assert_int_equal(store_event_add(f->st, id, now, "state_changed",
	    "alice", json_pack("{s:s, s:s}", "from",
	    ticket_state_name(t.state), "to", ticket_state_name(to))), 0);
	t.state = to;
	t.updated_at = now;
	assert_int_equal(sched_plan(f->st, env, &t, now), 0);
	assert_int_equal(store_ticket_update(f->st, &t), 0);
	assert_int_equal(store_commit(f->st), 0);
	ticket_release(&t);
}

/* ---- events and outbox rows -------------------------------------------- */

#define MAX_EVENTS 32

struct evs {
	char type[MAX_EVENTS][32], actor[MAX_EVENTS][40];
	char detail[MAX_EVENTS][256];
	int64_t at[MAX_EVENTS];
	int n;
};

static int
collect_event(const struct event *e, void *arg)
{
	struct evs *ev = arg;

	assert_true(ev->n < MAX_EVENTS);
	snprintf(ev->type[ev->n], sizeof(ev->type[0]), "%s", e->type);
	snprintf(ev->actor[ev->n], sizeof(ev->actor[0]), "%s",
	    e->actor ? e->actor : "");
	snprintf(ev->detail[ev->n], sizeof(ev->detail[0]), "%s", e->detail);
	ev->at[ev->n] = e->at;
	ev->n++;
	return 0;
}

static struct evs
events(struct fx *f, int64_t id)
{
	struct evs ev = { .n = 0 };

	assert_int_equal(store_event_list(f->st, id, collect_event, &ev), 0);
	return ev;
}

/* How many events of type there are from index `from` on. */
static int
count_type(const struct evs *ev, int from, const char *type)
{
	int n = 0;

	for (int i = from; i < ev->n; i++)
		n += strcmp(ev->type[i], type) == 0;
	return n;
}

/* Index of the first event of type at or after from, or -1. */
static int
find_event(const struct evs *ev, int from, const char *type)
{
	for (int i = from; i < ev->n; i++)
		if (strcmp(ev->type[i], type) == 0)
			return i;
	return -1;
}

/* The string member key of event i's detail; "" when absent. */
static void
detail_str(const struct evs *ev, int i, const char *key, char *out,
    size_t len)
{
	json_error_t jerr;
	json_t *d = json_loads(ev->detail[i], 0, &jerr);
	const char *v;

	assert_non_null(d);
	v = json_string_value(json_object_get(d, key));
	snprintf(out, len, "%s", v ? v : "");
	json_decref(d);
}

static long long
detail_int(const struct evs *ev, int i, const char *key)
{
	json_error_t jerr;
	json_t *d = json_loads(ev->detail[i], 0, &jerr);
	json_t *v;
	long long n;

	assert_non_null(d);
	v = json_object_get(d, key);
	assert_true(json_is_integer(v));
	n = (long long)json_integer_value(v);
	json_decref(d);
	return n;
}

/* Event i is `escalated` from -> to, why, to the team of `to`. */
static void
assert_escalated(const struct evs *ev, int i, int from, int to,
    const char *why, int64_t at)
{
	char s[128];

	assert_true(i >= 0);
	assert_string_equal(ev->type[i], "escalated");
	assert_string_equal(ev->actor[i], "escalon");
	assert_int_equal(ev->at[i], at);
	assert_int_equal(detail_int(ev, i, "from"), from);
	assert_int_equal(detail_int(ev, i, "to"), to);
	detail_str(ev, i, "why", s, sizeof(s));
	assert_string_equal(s, why);
	detail_str(ev, i, "team", s, sizeof(s));
	assert_string_equal(s, team_of[to]);
}

/* Event i is sla_warning / sla_breached of clock, due at due. */
static void
assert_sla_event(const struct evs *ev, int i, const char *type,
    const char *clock, int64_t due)
{
	char s[64], want[64];
	time_t tt = (time_t)due;
	struct tm tm;

	assert_true(i >= 0);
	assert_string_equal(ev->type[i], type);
	assert_string_equal(ev->actor[i], "escalon");
	detail_str(ev, i, "clock", s, sizeof(s));
	assert_string_equal(s, clock);
	gmtime_r(&tt, &tm);
	strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
	detail_str(ev, i, "due", s, sizeof(s));
	assert_string_equal(s, want);
}

#define MAX_ROWS 16

struct rows {
	char template[MAX_ROWS][32], recipient[MAX_ROWS][64];
	int n;
};

static int
collect_row(const struct outbox_row *r, void *arg)
{
	struct rows *rs = arg;

	assert_true(rs->n < MAX_ROWS);
	snprintf(rs->template[rs->n], sizeof(rs->template[0]), "%s",
	    r->template);
	snprintf(rs->recipient[rs->n], sizeof(rs->recipient[0]), "%s",
	    r->recipient);
	rs->n++;
	return 0;
}

static struct rows
outbox(struct fx *f)
{
	struct rows rs = { .n = 0 };

	assert_int_equal(store_outbox_list(f->st, 0, collect_row, &rs), 0);
	return rs;
}

/* ---- sched_plan: which source sets next_due_at ------------------------- */

struct plan_case {
	const char *name;
	struct shape s;
	int64_t at;			/* sched_plan at this instant */
	int64_t next, fr, nu, res;	/* expected next_due_at, due_* */
};

static const struct plan_case plan_cases[] = {
	/* 1. A new ticket: the first_response warning (50% of 4h) comes
	 * first; the ladder's step (level_since + 2h) is the same instant. */
	{ "new ticket",
	    { .state = TICKET_NEW },
	    NOW, NOW + 2 * HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	/* 2. Each source earliest in turn. SLA warning: */
	{ "warning; ladder step later",
	    { .state = TICKET_OPEN, .since = NOW + HOUR },
	    NOW + HOUR, NOW + 2 * HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	{ "warning; top of the ladder, no updates",
	    { .state = TICKET_OPEN, .level = 3, .no_reply = 1 },
	    NOW + HOUR, NOW + 2 * HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	/* SLA breach: */
	{ "breach; warned, ladder step later",
	    { .state = TICKET_OPEN, .warned = FR, .since = NOW + 3 * HOUR },
	    NOW + 3 * HOUR, NOW + 4 * HOUR, NOW + 4 * HOUR, 0,
	    NOW + 3 * DAY },
	{ "breach; warned, top of the ladder",
	    { .state = TICKET_OPEN, .warned = FR, .level = 3,
	    .no_reply = 1 },
	    NOW + 2 * HOUR, NOW + 4 * HOUR, NOW + 4 * HOUR, 0,
	    NOW + 3 * DAY },
	/* Ladder step: */
	{ "ladder step 1->2 before the breach",
	    { .state = TICKET_OPEN, .warned = FR },
	    NOW + HOUR, NOW + 2 * HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	{ "ladder step 2->3 before the resolution warning",
	    { .state = TICKET_OPEN, .level = 2, .since = NOW + HOUR,
	    .first_response = NOW + HOUR, .last_public = NOW + HOUR,
	    .no_reply = 1 },
	    NOW + HOUR, NOW + 5 * HOUR, 0, 0, NOW + 3 * DAY },
	/* Customer update (level >= 2, reply_url set): */
	{ "update 1h after the step to level 2",
	    { .state = TICKET_OPEN, .level = 2, .warned = FR },
	    NOW, NOW + HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	{ "update 1h after the last public reply",
	    { .state = TICKET_OPEN, .level = 2,
	    .first_response = NOW + 30 * MIN,
	    .last_public = NOW + 30 * MIN },
	    NOW + 30 * MIN, NOW + 90 * MIN, 0, 0, NOW + 3 * DAY },
	{ "update 1h after the last update",
	    { .state = TICKET_OPEN, .level = 2, .warned = FR,
	    .last_update = NOW + HOUR },
	    NOW + HOUR, NOW + 2 * HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	{ "no update at level 3 without reply_url",
	    { .state = TICKET_OPEN, .level = 3, .warned = FR,
	    .no_reply = 1 },
	    NOW, NOW + 4 * HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	{ "no update at level 2 without reply_url",
	    { .state = TICKET_OPEN, .level = 2, .warned = FR,
	    .no_reply = 1 },
	    NOW, NOW + 4 * HOUR, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	/* The other clocks: */
	{ "next_update warning",
	    { .state = TICKET_OPEN, .level = 3, .no_reply = 1,
	    .first_response = NOW + HOUR, .last_public = NOW + HOUR,
	    .awaiting = NOW + 2 * HOUR },
	    NOW + 2 * HOUR, NOW + 6 * HOUR, 0, NOW + 10 * HOUR,
	    NOW + 3 * DAY },
	{ "resolution warning",
	    { .state = TICKET_OPEN, .level = 3, .no_reply = 1,
	    .first_response = NOW + HOUR, .last_public = NOW + HOUR },
	    NOW + HOUR, NOW + 36 * HOUR, 0, 0, NOW + 3 * DAY },
	{ "everything fired, top of the ladder",
	    { .state = TICKET_OPEN, .level = 3, .no_reply = 1,
	    .warned = FR | RES, .breached = FR | RES },
	    NOW + 5 * HOUR, 0, NOW + 4 * HOUR, 0, NOW + 3 * DAY },
	/* 4. Resolved and closed tickets: nothing is due. */
	{ "resolved",
	    { .state = TICKET_RESOLVED, .level = 2,
	    .first_response = NOW + 30 * MIN,
	    .last_public = NOW + 30 * MIN, .resolved = NOW + HOUR },
	    NOW + HOUR, 0, 0, 0, 0 },
	{ "closed",
	    { .state = TICKET_CLOSED, .level = 2,
	    .first_response = NOW + 30 * MIN,
	    .last_public = NOW + 30 * MIN, .resolved = NOW + HOUR },
	    NOW + 2 * DAY, 0, 0, 0, 0 },
	/* 5. An SLA that is not configured: nothing is ever due. */
	{ "sla not configured",
	    { .state = TICKET_OPEN, .sla = "nosuch", .level = 2 },
	    NOW, 0, 0, 0, 0 },
	{ "no sla",
	    { .state = TICKET_NEW, .no_sla = 1 },
	    NOW, 0, 0, 0, 0 },
};

static void
test_plan_table(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(plan_cases) / sizeof(plan_cases[0]);
	    i++) {
		const struct plan_case *c = &plan_cases[i];
		int64_t id = insert(f, &c->s);
		struct ticket t = plan(f, id, c->at);

		if (t.next_due_at != c->next || t.due_first_response != c->fr ||
		    t.due_next_update != c->nu || t.due_resolution != c->res)
			fail_msg("%s: next %+lld fr %+lld nu %+lld res %+lld "
			    "(from NOW), want next %+lld fr %+lld nu %+lld "
			    "res %+lld", c->name,
			    (long long)(t.next_due_at ? t.next_due_at - NOW :
			    0), (long long)(t.due_first_response ?
			    t.due_first_response - NOW : 0),
			    (long long)(t.due_next_update ? t.due_next_update -
			    NOW : 0), (long long)(t.due_resolution ?
			    t.due_resolution - NOW : 0),
			    (long long)(c->next ? c->next - NOW : 0),
			    (long long)(c->fr ? c->fr - NOW : 0),
			    (long long)(c->nu ? c->nu - NOW : 0),
			    (long long)(c->res ? c->res - NOW : 0));
		ticket_release(&t);
	}
}

/* sched_plan changes nothing but the due times: no event, no message. */
static void
test_plan_is_silent(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN, .level = 2 };
	int64_t id = insert(f, &s);
	struct ticket t = plan(f, id, NOW + 10 * HOUR);	/* all overdue */
	struct evs ev = events(f, id);

	assert_int_equal(ev.n, 1);		/* created */
	assert_int_equal(outbox(f).n, 0);
	assert_int_equal(t.level, 2);
	assert_int_equal(t.sla_warned, 0);
	assert_int_equal(t.sla_breached, 0);
	/* Overdue things are due at once: the earliest one, in the past. */
	assert_int_equal(t.next_due_at, NOW + HOUR);
	ticket_release(&t);
}

/* ---- 3. pending: the resolution clock and the ladder wait -------------- */

static void
test_pending_waits_and_resumes(void **state)
{
	struct fx *f = *state;
	/* The first response came at NOW+1h, then the agent set pending. */
	struct shape s = { .state = TICKET_OPEN,
	    .first_response = NOW + HOUR, .last_public = NOW + HOUR,
	    .no_reply = 1 };
	int64_t id = insert(f, &s);
	struct ticket t = plan(f, id, NOW + HOUR);
	struct evs ev;

	/* Before: the ladder step at NOW+2h comes first. */
	assert_int_equal(t.next_due_at, NOW + 2 * HOUR);
	assert_int_equal(t.due_resolution, NOW + 3 * DAY);
	ticket_release(&t);

	change_state(f, id, TICKET_PENDING, NOW + HOUR);
	t = plan(f, id, NOW + 2 * HOUR);
	assert_int_equal(t.state, TICKET_PENDING);
	assert_int_equal(t.due_resolution, 0);
	assert_int_equal(t.due_first_response, 0);
	assert_int_equal(t.due_next_update, 0);
	assert_int_equal(t.next_due_at, 0);	/* no ladder step either */
	ticket_release(&t);

	/* Past the step's original instant, nothing moves. */
	fire(f, id, NOW + 150 * MIN);
	ev = events(f, id);
	assert_int_equal(count_type(&ev, 0, "escalated"), 0);
	t = get(f, id);
	assert_int_equal(t.level, 1);
	assert_int_equal(t.next_due_at, 0);
	ticket_release(&t);

	/* Resumed after 2h: the step and the resolution due move 2h on. */
	change_state(f, id, TICKET_OPEN, NOW + 3 * HOUR);
	t = plan(f, id, NOW + 3 * HOUR);
	assert_int_equal(t.state, TICKET_OPEN);
	assert_int_equal(t.due_resolution, NOW + 3 * DAY + 2 * HOUR);
	assert_int_equal(t.next_due_at, NOW + 4 * HOUR);
	ticket_release(&t);

	fire(f, id, NOW + 4 * HOUR - 1);
	ev = events(f, id);
	assert_int_equal(count_type(&ev, 0, "escalated"), 0);

	fire(f, id, NOW + 4 * HOUR);
	ev = events(f, id);
	assert_int_equal(count_type(&ev, 0, "escalated"), 1);
	assert_escalated(&ev, find_event(&ev, 0, "escalated"), 1, 2,
	    "time at level 1", NOW + 4 * HOUR);
	t = get(f, id);
	assert_int_equal(t.level, 2);
	assert_string_equal(t.team, "tier2");
	assert_int_equal(t.level_since, NOW + 4 * HOUR);
	/* Level 3 after 4h at level 2. */
	assert_int_equal(t.next_due_at, NOW + 8 * HOUR);
	ticket_release(&t);

	/* A second pause of 1h: both move on by it, the resolution due by
	 * the 3h paused in all, the step by the 1h paused at level 2. */
	change_state(f, id, TICKET_PENDING, NOW + 5 * HOUR);
	change_state(f, id, TICKET_OPEN, NOW + 6 * HOUR);
	t = plan(f, id, NOW + 6 * HOUR);
	assert_int_equal(t.due_resolution, NOW + 3 * DAY + 3 * HOUR);
	assert_int_equal(t.next_due_at, NOW + 9 * HOUR);
	ticket_release(&t);
}

/* Pending before the first response: first_response still runs (only the
 * resolution clock pauses), the ladder waits. */
static void
test_pending_before_first_response(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN, .warned = FR };
	int64_t id = insert(f, &s);
	struct ticket t;
	struct evs ev;

	change_state(f, id, TICKET_PENDING, NOW + HOUR);
	t = plan(f, id, NOW + HOUR);
	assert_int_equal(t.due_first_response, NOW + 4 * HOUR);
	assert_int_equal(t.due_resolution, 0);
	/* The breach, not the ladder step at NOW+2h. */
	assert_int_equal(t.next_due_at, NOW + 4 * HOUR);
	ticket_release(&t);

	fire(f, id, NOW + 2 * HOUR);
	ev = events(f, id);
	assert_int_equal(ev.n, 2);		/* created, state_changed */
	t = get(f, id);
	assert_int_equal(t.level, 1);
	ticket_release(&t);
}


/* A breach that would step the ticket up while it is pending is owed: it
 * is paid when the customer answers, not lost. */
static void
test_breach_while_pending_steps_on_resume(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN, .warned = FR };
	int64_t id = insert(f, &s);
	struct ticket t;
	struct evs ev;

	change_state(f, id, TICKET_PENDING, NOW + HOUR);
	fire(f, id, NOW + 4 * HOUR);		/* first_response breaches */
	t = get(f, id);
	assert_int_equal(t.level, 1);		/* pending: no step yet */
	assert_true(t.sla_breached & FR);
	ticket_release(&t);
	ev = events(f, id);
	assert_int_equal(count_type(&ev, 0, "sla_breached"), 1);
	assert_int_equal(count_type(&ev, 0, "escalated"), 0);

	/* The customer writes: open again, due at once, and the step. */
	change_state(f, id, TICKET_OPEN, NOW + 5 * HOUR);
	t = get(f, id);
	assert_int_equal(t.next_due_at, NOW + 5 * HOUR);
	ticket_release(&t);
	fire(f, id, NOW + 5 * HOUR);
	ev = events(f, id);
	int i = find_event(&ev, 0, "escalated");
	assert_true(i >= 0);
	assert_escalated(&ev, i, 1, 2, "first_response breached", NOW + 5 * HOUR);
	/* Paid once: firing again adds nothing. */
	fire(f, id, NOW + 5 * HOUR);
	ev = events(f, id);
	assert_int_equal(count_type(&ev, 0, "escalated"), 1);
}

/* Resolving stops every clock: no due time is left to show. */
static void
test_resolved_without_reply_has_no_due(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN };
	int64_t id = insert(f, &s);
	struct sla_clock_state st[SLA_N_CLOCKS];
	struct ticket t;

	change_state(f, id, TICKET_RESOLVED, NOW + HOUR);
	t = get(f, id);
	assert_int_equal(t.due_first_response, 0);
	assert_int_equal(t.due_resolution, 0);
	assert_int_equal(t.next_due_at, 0);
	t.resolved_at = NOW + HOUR;
	assert_int_equal(sched_clocks(f->st, env, &t, NOW + 2 * HOUR, st), 0);
	assert_int_equal(st[SLA_FIRST_RESPONSE].status, SLA_STOPPED);
	assert_int_equal(st[SLA_FIRST_RESPONSE].elapsed, HOUR);
	ticket_release(&t);
}

/* Above level 1, customer updates count from the end of a pending
 * stretch: the customer has just written, no update is owed at once. */
static void
test_update_counts_from_resume(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN, .level = 2, .warned = FR,
	    .breached = FR, .first_response = NOW + 60 };
	int64_t id = insert(f, &s);
	struct ticket t;

	change_state(f, id, TICKET_PENDING, NOW + 10 * 60);
	change_state(f, id, TICKET_OPEN, NOW + 5 * HOUR);
	t = get(f, id);
	/* customer_update is 1h: from the resume, not from the step. */
	assert_int_equal(t.next_due_at, NOW + 6 * HOUR);
	ticket_release(&t);
}


/* The report's business time: open time of the SLA calendar, less the
 * stretches spent pending (24x7 here, so open time is wall time). */
static void
test_open_time_excludes_pending(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN };
	int64_t id = insert(f, &s);

	assert_int_equal(sched_open_time(f->st, env, "standard", id, NOW,
	    NOW + 5 * HOUR), 5 * HOUR);
	change_state(f, id, TICKET_PENDING, NOW + HOUR);
	change_state(f, id, TICKET_OPEN, NOW + 3 * HOUR);
	assert_int_equal(sched_open_time(f->st, env, "standard", id, NOW,
	    NOW + 5 * HOUR), 3 * HOUR);
	/* A window inside the pending stretch counts nothing. */
	assert_int_equal(sched_open_time(f->st, env, "standard", id,
	    NOW + 90 * 60, NOW + 2 * HOUR), 0);
	/* Still pending at the end of the window: 6h - (1h..3h) - (4h..6h). */
	change_state(f, id, TICKET_PENDING, NOW + 4 * HOUR);
	assert_int_equal(sched_open_time(f->st, env, "standard", id, NOW,
	    NOW + 6 * HOUR), 2 * HOUR);
	/* An SLA that is not configured: unknown. */
	assert_int_equal(sched_open_time(f->st, env, "nosuch", id, NOW,
	    NOW + HOUR), -1);
}

/* ---- 6. sched_fire ----------------------------------------------------- */

/* At NOW+2h the warning fires and the ladder steps; again at the same
 * instant adds nothing; then the customer update and the breach. */
static void
test_fire_warning_and_step(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_NEW };
	int64_t id = insert(f, &s);
	struct ticket t = plan(f, id, NOW);
	struct evs ev;
	struct rows rs;
	int i, n;

	assert_int_equal(t.next_due_at, NOW + 2 * HOUR);
	ticket_release(&t);

	/* A second early: nothing. */
	fire(f, id, NOW + 2 * HOUR - 1);
	ev = events(f, id);
	assert_int_equal(ev.n, 1);
	t = get(f, id);
	assert_int_equal(t.sla_warned, 0);
	assert_int_equal(t.level, 1);
	assert_int_equal(t.next_due_at, NOW + 2 * HOUR);
	ticket_release(&t);

	fire(f, id, NOW + 2 * HOUR);
	ev = events(f, id);
	assert_int_equal(ev.n, 3);
	assert_int_equal(count_type(&ev, 0, "sla_warning"), 1);
	assert_sla_event(&ev, find_event(&ev, 0, "sla_warning"),
	    "sla_warning", "first_response", NOW + 4 * HOUR);
	assert_int_equal(ev.at[find_event(&ev, 0, "sla_warning")],
	    NOW + 2 * HOUR);
	assert_escalated(&ev, find_event(&ev, 0, "escalated"), 1, 2,
	    "time at level 1", NOW + 2 * HOUR);
	t = get(f, id);
	assert_int_equal(t.sla_warned, FR);
	assert_int_equal(t.sla_breached, 0);
	assert_int_equal(t.level, 2);
	assert_string_equal(t.team, "tier2");
	assert_int_equal(t.level_since, NOW + 2 * HOUR);
	/* Next: the customer update 1h after the step. */
	assert_int_equal(t.next_due_at, NOW + 3 * HOUR);
	ticket_release(&t);
	/* The customer heard of the step. */
	rs = outbox(f);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.template[0], "escalated");
	assert_string_equal(rs.recipient[0], REPLY_URL);

	/* Again at the same instant: nothing new. */
	n = ev.n;
	fire(f, id, NOW + 2 * HOUR);
	ev = events(f, id);
	assert_int_equal(ev.n, n);
	assert_int_equal(outbox(f).n, 1);
	t = get(f, id);
	assert_int_equal(t.level, 2);
	assert_int_equal(t.sla_warned, FR);
	assert_int_equal(t.next_due_at, NOW + 3 * HOUR);
	ticket_release(&t);

	/* NOW+3h: the update to the customer. */
	fire(f, id, NOW + 3 * HOUR);
	ev = events(f, id);
	assert_int_equal(ev.n, n + 1);
	assert_string_equal(ev.type[n], "update_sent");
	assert_int_equal(ev.at[n], NOW + 3 * HOUR);
	rs = outbox(f);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.template[1], "update");
	t = get(f, id);
	assert_int_equal(t.last_update_at, NOW + 3 * HOUR);
	/* The breach and the next update are both at NOW+4h. */
	assert_int_equal(t.next_due_at, NOW + 4 * HOUR);
	ticket_release(&t);

	/* NOW+4h: the breach (level 3 has no on_breach: no step) and the
	 * next update. */
	n = ev.n;
	fire(f, id, NOW + 4 * HOUR);
	ev = events(f, id);
	assert_int_equal(count_type(&ev, n, "sla_breached"), 1);
	assert_sla_event(&ev, find_event(&ev, n, "sla_breached"),
	    "sla_breached", "first_response", NOW + 4 * HOUR);
	assert_int_equal(count_type(&ev, n, "escalated"), 0);
	assert_int_equal(count_type(&ev, n, "update_sent"), 1);
	assert_int_equal(ev.n, n + 2);
	t = get(f, id);
	assert_int_equal(t.sla_breached, FR);
	assert_int_equal(t.level, 2);
	/* Next: the update at NOW+5h (the ladder's at NOW+6h). */
	assert_int_equal(t.next_due_at, NOW + 5 * HOUR);
	ticket_release(&t);

	/* NOW+6h: the step to level 3, the update 1h after it. */
	fire(f, id, NOW + 5 * HOUR);
	n = events(f, id).n;
	fire(f, id, NOW + 6 * HOUR);
	ev = events(f, id);
	i = find_event(&ev, n, "escalated");
	assert_escalated(&ev, i, 2, 3, "time at level 2", NOW + 6 * HOUR);
	t = get(f, id);
	assert_int_equal(t.level, 3);
	assert_string_equal(t.team, "tier3");
	assert_int_equal(t.next_due_at, NOW + 7 * HOUR);
	ticket_release(&t);
}

/* At the breach instant, a ticket at level 1 steps to level 2 by its
 * on_breach first_response, before its time at level 1 is up. */
static void
test_fire_breach_steps(void **state)
{
	struct fx *f = *state;
	/* On level 1 since NOW+3h: the step by time would be at NOW+5h. */
	struct shape s = { .state = TICKET_OPEN, .warned = FR,
	    .since = NOW + 3 * HOUR };
	int64_t id = insert(f, &s);
	struct ticket t = plan(f, id, NOW + 3 * HOUR);
	struct evs ev;

	assert_int_equal(t.next_due_at, NOW + 4 * HOUR);
	ticket_release(&t);

	fire(f, id, NOW + 4 * HOUR);
	ev = events(f, id);
	assert_int_equal(ev.n, 3);
	assert_int_equal(count_type(&ev, 0, "sla_warning"), 0);
	assert_sla_event(&ev, find_event(&ev, 0, "sla_breached"),
	    "sla_breached", "first_response", NOW + 4 * HOUR);
	assert_int_equal(count_type(&ev, 0, "escalated"), 1);
	assert_escalated(&ev, find_event(&ev, 0, "escalated"), 1, 2,
	    "first_response breached", NOW + 4 * HOUR);
	t = get(f, id);
	assert_int_equal(t.level, 2);
	assert_string_equal(t.team, "tier2");
	assert_int_equal(t.sla_breached, FR);
	assert_int_equal(t.level_since, NOW + 4 * HOUR);
	assert_int_equal(t.next_due_at, NOW + 5 * HOUR);	/* update */
	ticket_release(&t);
	assert_int_equal(outbox(f).n, 1);

	/* Once only. */
	fire(f, id, NOW + 4 * HOUR);
	assert_int_equal(events(f, id).n, 3);
}

/* A ticket nobody looked at until its breach: warning, breach and one
 * step only (by the breach, not a second one by time). */
static void
test_fire_late_steps_once(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_NEW, .no_reply = 1 };
	int64_t id = insert(f, &s);
	struct ticket t;
	struct evs ev;

	fire(f, id, NOW + 4 * HOUR);
	ev = events(f, id);
	assert_int_equal(count_type(&ev, 0, "sla_warning"), 1);
	assert_int_equal(count_type(&ev, 0, "sla_breached"), 1);
	assert_int_equal(count_type(&ev, 0, "escalated"), 1);
	assert_escalated(&ev, find_event(&ev, 0, "escalated"), 1, 2,
	    "first_response breached", NOW + 4 * HOUR);
	/* The warning is recorded before the breach. */
	assert_true(find_event(&ev, 0, "sla_warning") <
	    find_event(&ev, 0, "sla_breached"));
	t = get(f, id);
	assert_int_equal(t.level, 2);
	assert_int_equal(t.sla_warned, FR);
	assert_int_equal(t.sla_breached, FR);
	/* No reply_url: no update; the step to level 3 at NOW+8h. */
	assert_int_equal(t.next_due_at, NOW + 8 * HOUR);
	ticket_release(&t);
	assert_int_equal(outbox(f).n, 0);
}

/* Resolved tickets: sched_fire does nothing and plans nothing. */
static void
test_fire_resolved(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_RESOLVED,
	    .first_response = NOW + 30 * MIN, .last_public = NOW + 30 * MIN,
	    .resolved = NOW + HOUR };
	int64_t id = insert(f, &s);
	struct ticket t;

	fire(f, id, NOW + 5 * DAY);
	assert_int_equal(events(f, id).n, 1);
	assert_int_equal(outbox(f).n, 0);
	t = get(f, id);
	assert_int_equal(t.level, 1);
	assert_int_equal(t.sla_warned, 0);
	assert_int_equal(t.next_due_at, 0);
	assert_int_equal(t.due_resolution, 0);
	ticket_release(&t);
}

/* ---- sched_start_level and sched_escalate ------------------------------ */

struct start_case {
	const char *severity;
	int level;		/* before */
	int at_creation;	/* quiet */
	int want;		/* after */
	int rows;		/* escalated messages queued */
};

static const struct start_case start_cases[] = {
	{ "normal", 1, 1, 1, 0 },	/* no severity section */
	{ "critical", 1, 1, 2, 0 },	/* at creation: quiet */
	{ "critical", 1, 0, 2, 1 },	/* a raise: the customer hears */
	{ "high", 1, 1, 3, 0 },		/* start_level 5: the top */
	{ "critical", 3, 0, 3, 0 },	/* already above */
};

static void
test_start_level(void **state)
{
	struct fx *f = *state;
	int rows = 0;

	for (size_t i = 0; i < sizeof(start_cases) / sizeof(start_cases[0]);
	    i++) {
		const struct start_case *c = &start_cases[i];
		struct shape s = { .state = TICKET_NEW,
		    .severity = c->severity, .level = c->level };
		int64_t id = insert(f, &s);
		char error[200] = "", why[96];
		struct ticket t;
		struct evs ev;

		assert_int_equal(store_begin(f->st), 0);
		t = get(f, id);
		assert_int_equal(sched_start_level(f->st, env, &t, NOW + MIN,
		    c->at_creation, error, sizeof(error)), 0);
		assert_int_equal(sched_plan(f->st, env, &t, NOW + MIN), 0);
		assert_int_equal(store_ticket_update(f->st, &t), 0);
		assert_int_equal(store_commit(f->st), 0);
		ticket_release(&t);

		t = get(f, id);
		ev = events(f, id);
		assert_int_equal(t.level, c->want);
		assert_string_equal(t.team, team_of[c->want]);
		if (c->want == c->level) {
			assert_int_equal(count_type(&ev, 0, "escalated"), 0);
		} else {
			snprintf(why, sizeof(why), "severity %s starts at "
			    "level %d", c->severity, c->want);
			assert_int_equal(count_type(&ev, 0, "escalated"), 1);
			assert_escalated(&ev, find_event(&ev, 0, "escalated"),
			    c->level, c->want, why, NOW + MIN);
			assert_int_equal(t.level_since, NOW + MIN);
			/* Escalated at once: the customer update is due. */
			assert_int_equal(t.next_due_at, NOW + MIN + HOUR);
		}
		ticket_release(&t);
		rows += c->rows;
		assert_int_equal(outbox(f).n, rows);
	}
}

static void
test_escalate_refused(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN, .level = 2 };
	int64_t id = insert(f, &s);
	const int to[] = { 1, 2, 4 };	/* down, same, beyond the top */

	for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		char error[200] = "";
		struct ticket t;

		assert_int_equal(store_begin(f->st), 0);
		t = get(f, id);
		assert_int_equal(sched_escalate(f->st, env, &t, to[i], "why",
		    "alice", 0, NOW, error, sizeof(error)), -1);
		assert_non_null(strstr(error, "cannot move from level 2"));
		assert_int_equal(t.level, 2);
		assert_string_equal(t.team, "tier2");
		assert_int_equal(store_rollback(f->st), 0);
		ticket_release(&t);
	}
	assert_int_equal(events(f, id).n, 1);
	assert_int_equal(outbox(f).n, 0);
}

/* An agent's step by hand restarts the time at the level. */
static void
test_escalate_by_hand(void **state)
{
	struct fx *f = *state;
	struct shape s = { .state = TICKET_OPEN, .warned = FR };
	int64_t id = insert(f, &s);
	char error[200] = "";
	struct ticket t;
	struct evs ev;

	assert_int_equal(store_begin(f->st), 0);
	t = get(f, id);
	assert_int_equal(sched_escalate(f->st, env, &t, 2, "customer is "
	    "angry", "alice", 0, NOW + HOUR, error, sizeof(error)), 0);
	assert_int_equal(sched_plan(f->st, env, &t, NOW + HOUR), 0);
	assert_int_equal(store_ticket_update(f->st, &t), 0);
	assert_int_equal(store_commit(f->st), 0);
	ticket_release(&t);

	ev = events(f, id);
	assert_int_equal(count_type(&ev, 0, "escalated"), 1);
	assert_string_equal(ev.actor[find_event(&ev, 0, "escalated")],
	    "alice");
	t = get(f, id);
	assert_int_equal(t.level, 2);
	assert_int_equal(t.level_since, NOW + HOUR);
	/* Update 1h after the step; breach NOW+4h; level 3 at NOW+5h. */
	assert_int_equal(t.next_due_at, NOW + 2 * HOUR);
	ticket_release(&t);
	assert_int_equal(outbox(f).n, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_plan_table),
		T(test_plan_is_silent),
		T(test_pending_waits_and_resumes),
		T(test_pending_before_first_response),
		T(test_breach_while_pending_steps_on_resume),
		T(test_resolved_without_reply_has_no_due),
		T(test_update_counts_from_resume),
		T(test_open_time_excludes_pending),
		T(test_fire_warning_and_step),
		T(test_fire_breach_steps),
		T(test_fire_late_steps_once),
		T(test_fire_resolved),
		T(test_start_level),
		T(test_escalate_refused),
		T(test_escalate_by_hand),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, env_setup, env_teardown);
}
