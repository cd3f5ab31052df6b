/*
 * test_acts: agent acts on a ticket in a real store in a temporary folder,
 * with a conf built by hand and fixed instants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acts.h"
#include "env.h"
#include "conf.h"
#include "log.h"
#include "store.h"
#include "ticket.h"

#include "testutil.h"

#define NOW INT64_C(1796117400)	/* 2026-12-01T09:30:00Z */

/* ---- a conf, by hand --------------------------------------------------- */

static char *tier1_agents[] = { "alice", "bob" };
static struct conf_agent agents[] = {
	{ "alice", "alice@example.test", "Alice Liddell" },
	{ "bob", "bob@example.test", NULL },	/* no display name */
};
static struct conf_team teams[] = {
	{ "tier1", { tier1_agents, 2 } },
};
static struct conf_sla slas[] = {
	{ "standard", "always", 4 * 3600, 8 * 3600, 3 * 86400, 0, 80 },
	{ "urgent", "always", 900, 3600, 8 * 3600, 0, 50 },
};
static struct conf_queue queues[] = {
	{ "general", "tier1", "standard", "default" },
};
static struct conf_severity severities[] = {
	{ "critical", "urgent", 0 },
};

static struct conf conf = {
	.reopen_within = 7 * 86400,
	.agents = agents, .n_agents = 2,
	.teams = teams, .n_teams = 1,
	.slas = slas, .n_slas = 2,
	.queues = queues, .n_queues = 1,
	.severities = severities, .n_severities = 1,
};

/* What acts run by: the conf above, compiled (no templates needed). */
static struct env *env;

static int
env_setup(void **state)
{
	char *err = NULL;

	(void)state;
	if ((env = env_new(&conf, NULL, &err)) == NULL) {
		fprintf(stderr, "env: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int
env_teardown(void **state)
{
	(void)state;
	env_free(&env);
	return 0;
}

/* ---- fixture: a store with one new webhook ticket ---------------------- */

static int
setup(void **state)
{
	struct fx *f;

	if (fx_setup_store(state, "escalon-test-acts") < 0)
		return -1;
	f = *state;

	struct ticket t = fx_ticket("cust-1", "Refund", NOW);
	t.last_customer_at = NOW;
	if (store_customer_identify(f->st, "webhook", "webhook:shop", "cust-1",
	    "Ada", NULL, NOW, &t.customer_id) < 0 ||
	    store_ticket_insert(f->st, &t) < 0 ||
	    store_event_add(f->st, t.id, NOW, "created", "customer",
	    NULL) < 0)
		return -1;
	f->id = t.id;
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static int
run(struct fx *f, const char *verb, const char *agent, const char *text,
    int64_t now, struct act_result *r)
{
	struct act a = {
		.verb = verb, .ticket_id = f->id, .agent = agent,
		.user = "ops", .text = text,
	};

	return acts_run(f->st, env, now, &a, r);
}

/* The act must succeed. */
static void
ok(struct fx *f, const char *verb, const char *agent, const char *text,
    int64_t now)
{
	struct act_result r;

	if (run(f, verb, agent, text, now, &r) != ACT_OK)
		fail_msg("%s %s: code %d: %s", verb, text ? text : "", r.code,
		    r.message);
	assert_int_equal(r.code, ACT_OK);
	assert_true(strlen(r.message) > 0);
}

static struct ticket
get(struct fx *f)
{
	struct ticket t;

	assert_int_equal(store_ticket_get(f->st, f->id, &t), 1);
	return t;
}

struct evs {
	char type[16][32], actor[16][40], detail[16][200];
	int64_t at[16];
	int n;
};

static int
collect_event(const struct event *e, void *arg)
{
	struct evs *ev = arg;

	assert_true(ev->n < 16);
	snprintf(ev->type[ev->n], 32, "%s", e->type);
	snprintf(ev->actor[ev->n], 40, "%s", e->actor ? e->actor : "");
	snprintf(ev->detail[ev->n], 200, "%s", e->detail);
	ev->at[ev->n] = e->at;
	ev->n++;
	return 0;
}

static struct evs
events(struct fx *f)
{
	struct evs ev = { .n = 0 };

	assert_int_equal(store_event_list(f->st, f->id, collect_event, &ev),
	    0);
	return ev;
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

struct msgs {
	char direction[8][8], author[8][40], body[8][64], channel[8][16];
	int64_t at[8];
	int n;
};

static int
collect_message(const struct message *m, void *arg)
{
	struct msgs *ms = arg;

	assert_true(ms->n < 8);
	snprintf(ms->direction[ms->n], 8, "%s", m->direction);
	snprintf(ms->author[ms->n], 40, "%s", m->author);
	snprintf(ms->body[ms->n], 64, "%s", m->body);
	snprintf(ms->channel[ms->n], 16, "%s", m->channel);
	ms->at[ms->n] = m->at;
	ms->n++;
	return 0;
}

static struct msgs
messages(struct fx *f)
{
	struct msgs ms = { .n = 0 };

	assert_int_equal(store_message_list(f->st, f->id, collect_message,
	    &ms), 0);
	return ms;
}

/* A refused act changes nothing and leaves no transaction open. */
static void
refused(struct fx *f, const char *verb, const char *agent, const char *text,
    const char *why)
{
	struct ticket before = get(f), after;
	int n_events = events(f).n, n_msgs = messages(f).n;
	struct act_result r;

	if (run(f, verb, agent, text, NOW + 999, &r) != ACT_BAD_INPUT)
		fail_msg("%s %s: code %d (%s), want ACT_BAD_INPUT", verb,
		    text ? text : "(null)", r.code, r.message);
	assert_int_equal(r.code, ACT_BAD_INPUT);
	if (why != NULL && strstr(r.message, why) == NULL)
		fail_msg("%s: message \"%s\" does not say \"%s\"", verb,
		    r.message, why);
	after = get(f);
	assert_int_equal(after.state, before.state);
	assert_int_equal(after.updated_at, before.updated_at);
	assert_string_equal(after.severity, before.severity);
	ticket_release(&before);
	ticket_release(&after);
	assert_int_equal(events(f).n, n_events);
	assert_int_equal(messages(f).n, n_msgs);
	/* No transaction was left open: another one begins. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_commit(f->st), 0);
}

/* ---- reply ------------------------------------------------------------- */

static void
test_reply(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	struct evs ev;
	struct msgs ms;
	int i;

	ok(f, "reply", "alice", "We are on it", NOW + 60);
	t = get(f);
	assert_int_equal(t.state, TICKET_OPEN);
	assert_int_equal(t.first_response_at, NOW + 60);
	assert_int_equal(t.updated_at, NOW + 60);
	ticket_release(&t);

	ms = messages(f);
	assert_int_equal(ms.n, 1);
	assert_string_equal(ms.direction[0], "out");
	assert_string_equal(ms.author[0], "Alice Liddell");	/* display name */
	assert_string_equal(ms.body[0], "We are on it");
	assert_string_equal(ms.channel[0], "webhook");
	assert_int_equal(ms.at[0], NOW + 60);

	ev = events(f);
	i = find_event(&ev, 1, "state_changed");
	assert_true(i > 0);
	assert_non_null(strstr(ev.detail[i], "\"from\":\"new\""));
	assert_non_null(strstr(ev.detail[i], "\"to\":\"open\""));
	assert_string_equal(ev.actor[i], "Alice Liddell");
	i = find_event(&ev, 1, "replied");
	assert_true(i > 0);
	assert_string_equal(ev.actor[i], "Alice Liddell");
	assert_int_equal(ev.at[i], NOW + 60);

	/* A second reply: the first response stays the first. */
	ok(f, "reply", "bob", "Done", NOW + 120);
	t = get(f);
	assert_int_equal(t.first_response_at, NOW + 60);
	assert_int_equal(t.state, TICKET_OPEN);
	ticket_release(&t);
	ms = messages(f);
	assert_int_equal(ms.n, 2);
	assert_string_equal(ms.author[1], "bob");	/* no display name */
	ev = events(f);
	assert_int_equal(find_event(&ev, i + 1, "state_changed"), -1);
}

/* Without --as the act is by the user who ran it, else "operator". */
static void
test_reply_author_without_agent(void **state)
{
	struct fx *f = *state;
	struct act_result r;
	struct act a = { .verb = "reply", .ticket_id = f->id, .text = "x" };
	struct msgs ms;

	ok(f, "reply", NULL, "from ops", NOW);
	assert_int_equal(acts_run(f->st, env, NOW, &a, &r), ACT_OK);
	a.user = "";
	assert_int_equal(acts_run(f->st, env, NOW, &a, &r), ACT_OK);
	ms = messages(f);
	assert_int_equal(ms.n, 3);
	assert_string_equal(ms.author[0], "ops");
	assert_string_equal(ms.author[1], "operator");
	assert_string_equal(ms.author[2], "operator");
}

static void
test_reply_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "reply", "alice", NULL, "empty");
	refused(f, "reply", "alice", "", "empty");
	/* A closed ticket takes no reply. */
	struct ticket t = get(f);
	t.state = TICKET_CLOSED;
	assert_int_equal(store_ticket_update(f->st, &t), 0);
	ticket_release(&t);
	refused(f, "reply", "alice", "hello?", "closed");
}

/* ---- note -------------------------------------------------------------- */

static void
test_note(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	struct msgs ms;
	struct evs ev;

	ok(f, "note", "alice", "Customer is VIP", NOW + 30);
	ms = messages(f);
	assert_int_equal(ms.n, 1);
	assert_string_equal(ms.direction[0], "note");
	assert_string_equal(ms.author[0], "Alice Liddell");
	assert_string_equal(ms.body[0], "Customer is VIP");
	t = get(f);
	assert_int_equal(t.state, TICKET_OPEN);	/* the first agent act */
	assert_int_equal(t.first_response_at, 0);	/* a note is not one */
	ticket_release(&t);
	ev = events(f);
	assert_true(find_event(&ev, 1, "note") > 0);

	refused(f, "note", "alice", "", "empty");
}

/* ---- resolve ----------------------------------------------------------- */

static void
test_resolve_with_cause(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	struct evs ev;
	int i;

	ok(f, "resolve", "alice", "expired card", NOW + 600);
	t = get(f);
	assert_int_equal(t.state, TICKET_RESOLVED);
	assert_int_equal(t.resolved_at, NOW + 600);
	assert_string_equal(t.root_cause, "expired card");
	ticket_release(&t);
	ev = events(f);
	i = find_event(&ev, 1, "root_cause");
	assert_true(i > 0);
	assert_non_null(strstr(ev.detail[i], "expired card"));
	i = find_event(&ev, 1, "state_changed");
	assert_true(i > 0);
	assert_non_null(strstr(ev.detail[i], "\"to\":\"resolved\""));

	/* Twice: refused, and the first resolution stands. */
	refused(f, "resolve", "alice", "other cause", "already resolved");
	t = get(f);
	assert_int_equal(t.resolved_at, NOW + 600);
	assert_string_equal(t.root_cause, "expired card");
	ticket_release(&t);
}

static void
test_resolve_without_cause(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	struct evs ev;

	ok(f, "resolve", "bob", NULL, NOW + 5);
	t = get(f);
	assert_int_equal(t.state, TICKET_RESOLVED);
	assert_int_equal(t.resolved_at, NOW + 5);
	assert_null(t.root_cause);
	ticket_release(&t);
	ev = events(f);
	assert_int_equal(find_event(&ev, 0, "root_cause"), -1);
	refused(f, "resolve", NULL, NULL, "already");
}

/* ---- pending ----------------------------------------------------------- */

static void
test_pending(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	struct evs ev;
	int i;

	ok(f, "pending", "alice", NULL, NOW + 10);
	t = get(f);
	assert_int_equal(t.state, TICKET_PENDING);
	ticket_release(&t);
	ev = events(f);
	i = find_event(&ev, 1, "state_changed");
	assert_true(i > 0);
	assert_non_null(strstr(ev.detail[i], "\"to\":\"pending\""));

	refused(f, "pending", "alice", NULL, "already pending");

	ok(f, "resolve", "alice", NULL, NOW + 20);
	refused(f, "pending", "alice", NULL, "resolved");
}

/* ---- severity ---------------------------------------------------------- */

static void
test_severity(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	struct evs ev;
	int i;

	ok(f, "severity", "alice", "high", NOW + 10);
	t = get(f);
	assert_string_equal(t.severity, "high");
	assert_string_equal(t.sla, "standard");	/* the queue's */
	assert_int_equal(t.state, TICKET_OPEN);
	ticket_release(&t);
	ev = events(f);
	i = find_event(&ev, 1, "severity_changed");
	assert_true(i > 0);
	assert_non_null(strstr(ev.detail[i], "\"from\":\"normal\""));
	assert_non_null(strstr(ev.detail[i], "\"to\":\"high\""));

	/* A severity with its own SLA moves the ticket to it, and back. */
	ok(f, "severity", "alice", "critical", NOW + 20);
	t = get(f);
	assert_string_equal(t.severity, "critical");
	assert_string_equal(t.sla, "urgent");
	ticket_release(&t);
	ok(f, "severity", "alice", "low", NOW + 30);
	t = get(f);
	assert_string_equal(t.sla, "standard");
	ticket_release(&t);

	/* The same level again: fine, nothing recorded. */
	int n = events(f).n;
	ok(f, "severity", "alice", "low", NOW + 40);
	assert_int_equal(events(f).n, n);

	refused(f, "severity", "alice", "urgent", "urgent");
	refused(f, "severity", "alice", "HIGH", NULL);
	refused(f, "severity", "alice", "", NULL);
	refused(f, "severity", "alice", NULL, NULL);
}

/* ---- assign, rootcause ------------------------------------------------- */

static void
test_assign(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	struct evs ev;
	int i;

	ok(f, "assign", "alice", "bob", NOW + 10);
	t = get(f);
	assert_string_equal(t.assignee, "bob");
	assert_int_equal(t.state, TICKET_OPEN);
	ticket_release(&t);
	ev = events(f);
	i = find_event(&ev, 1, "assigned");
	assert_true(i > 0);
	assert_non_null(strstr(ev.detail[i], "\"to\":\"bob\""));

	ok(f, "assign", NULL, "alice", NOW + 20);
	t = get(f);
	assert_string_equal(t.assignee, "alice");
	ticket_release(&t);
	ev = events(f);
	i = find_event(&ev, i + 1, "assigned");
	assert_true(i > 0);
	assert_non_null(strstr(ev.detail[i], "\"from\":\"bob\""));

	refused(f, "assign", "alice", "zed", "zed");
	refused(f, "assign", "alice", NULL, NULL);
	t = get(f);
	assert_string_equal(t.assignee, "alice");
	ticket_release(&t);
}

static void
test_rootcause(void **state)
{
	struct fx *f = *state;
	struct ticket t;

	ok(f, "rootcause", "alice", "DNS", NOW + 10);
	ok(f, "rootcause", "alice", "It was DNS after all", NOW + 20);
	t = get(f);
	assert_string_equal(t.root_cause, "It was DNS after all");
	assert_int_equal(t.state, TICKET_OPEN);
	ticket_release(&t);
	refused(f, "rootcause", "alice", "", "empty");
}

/* ---- what every act checks --------------------------------------------- */

static void
test_refused_before_ticket(void **state)
{
	struct fx *f = *state;
	struct act_result r;
	struct act a = { .verb = "reply", .ticket_id = f->id + 100,
	    .agent = "alice", .text = "hello" };

	/* Unknown ticket. */
	assert_int_equal(acts_run(f->st, env, NOW, &a, &r), ACT_BAD_INPUT);
	assert_non_null(strstr(r.message, "does not exist"));
	a.verb = "resolve";
	assert_int_equal(acts_run(f->st, env, NOW, &a, &r), ACT_BAD_INPUT);
	/* The store is not left inside a transaction. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_commit(f->st), 0);

	/* Unknown agent, unknown verb: refused on the real ticket too. */
	refused(f, "reply", "mallory", "hi", "mallory");
	refused(f, "escalate-everything", "alice", "hi", "unknown act");
	refused(f, "", "alice", "hi", NULL);
}

static void
test_acts_known(void **state)
{
	static const struct {
		const char *verb;
		int known;
	} cases[] = {
		{ "reply", 1 }, { "note", 1 }, { "resolve", 1 },
		{ "pending", 1 }, { "severity", 1 }, { "assign", 1 },
		{ "rootcause", 1 }, { "Reply", 0 }, { "replies", 0 },
		{ "", 0 }, { "show", 0 }, { "tickets", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (acts_known(cases[i].verb) != cases[i].known)
			fail_msg("acts_known(\"%s\") != %d", cases[i].verb,
			    cases[i].known);
}

/* Every act leaves an event with its instant and actor. */
static void
test_every_act_recorded(void **state)
{
	static const struct {
		const char *verb, *text, *event;
	} cases[] = {
		{ "note", "n", "note" },
		{ "assign", "alice", "assigned" },
		{ "severity", "high", "severity_changed" },
		{ "rootcause", "rc", "root_cause" },
		{ "reply", "r", "replied" },
		{ "pending", NULL, "state_changed" },
		{ "resolve", NULL, "state_changed" },
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t at = NOW + 100 * (int64_t)(i + 1);
		int before = events(f).n;
		struct evs ev;
		int j;

		ok(f, cases[i].verb, "alice", cases[i].text, at);
		ev = events(f);
		j = find_event(&ev, before, cases[i].event);
		if (j < 0)
			fail_msg("%s: no %s event", cases[i].verb,
			    cases[i].event);
		assert_int_equal(ev.at[j], at);
		assert_string_equal(ev.actor[j], "Alice Liddell");
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reply),
		T(test_reply_author_without_agent),
		T(test_reply_refused),
		T(test_note),
		T(test_resolve_with_cause),
		T(test_resolve_without_cause),
		T(test_pending),
		T(test_severity),
		T(test_assign),
		T(test_rootcause),
		T(test_refused_before_ticket),
		cmocka_unit_test(test_acts_known),
		T(test_every_act_recorded),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, env_setup, env_teardown);
}
