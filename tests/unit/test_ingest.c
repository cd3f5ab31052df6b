/*
 * test_ingest: inbound messages -> tickets, on a real store in a temporary
 * folder, with a conf built by hand and fixed instants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "channel.h"
#include "conf.h"
#include "env.h"
#include "ingest.h"
#include "tmplset.h"
#include "log.h"
#include "store.h"
#include "ticket.h"

#include "testutil.h"

#define NOW INT64_C(1796117400)	/* 2026-12-01T09:30:00Z */
#define DAY INT64_C(86400)

/* ---- a conf, by hand --------------------------------------------------- */


static char *tier1_agents[] = { "alice", "bob" };
static char *tier2_agents[] = { "carol" };
static struct conf_agent agents[] = {
	{ "alice", "alice@example.test", "Alice" },
	{ "bob", "bob@example.test", "Bob" },
	{ "carol", "carol@example.test", "Carol" },
};
static struct conf_team teams[] = {
	{ "tier1", { tier1_agents, 2 } },
	{ "tier2", { tier2_agents, 1 } },
};
static struct conf_sla slas[] = {
	{ "standard", "always", 4 * 3600, 8 * 3600, 3 * DAY, 0, 80 },
	{ "urgent", "always", 900, 3600, 8 * 3600, 0, 50 },
};
static struct conf_level levels[] = {
	{ 1, "tier1", 0, { NULL, 0 } },
	{ 2, "tier2", 7200, { NULL, 0 } },
};
static struct conf_ladder ladders[] = {
	{ "default", levels, 2 },
};
static struct conf_queue queues[] = {
	{ "general", "tier1", "standard", "default" },
	{ "billing", "tier2", "standard", "default" },
};
static struct conf_severity severities[] = {
	{ "critical", "urgent", 0 },
};
static struct conf_webhook webhooks[] = {
	{ "shop", "s3cret", "billing" },
};

static struct tmplset *templates;
static struct env *env;

static struct conf conf = {
	.reopen_within = 7 * DAY,
	.close_after = 7 * DAY,
	.agents = agents, .n_agents = 3,
	.teams = teams, .n_teams = 2,
	.slas = slas, .n_slas = 2,
	.ladders = ladders, .n_ladders = 1,
	.queues = queues, .n_queues = 2,
	.severities = severities, .n_severities = 1,
	.webhooks = webhooks, .n_webhooks = 1,
};

/* ---- fixture ----------------------------------------------------------- */

static int
setup(void **state)
{
	return fx_setup_store(state, "escalon-test-ingest");
}

/* ---- messages ---------------------------------------------------------- */

static char *
xstrdup(const char *s)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL)
		assert_non_null(d);
	return d;
}

/* What webhook_accept makes of a POST to hook "shop". */
static struct inbound_msg *
hook_msg(const char *id, const char *customer, const char *thread,
    const char *severity)
{
	struct inbound_msg *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->channel = CHANNEL_WEBHOOK;
	m->source = xstrdup("webhook:shop");
	m->queue = xstrdup("billing");
	m->dedupe_scope = xstrdup("webhook:shop");
	m->dedupe_key = xstrdup(id);
	m->message_id = xstrdup(id);
	m->from_scope = xstrdup("webhook:shop");
	m->from_address = xstrdup(customer);
	m->from_name = xstrdup("Ada");
	m->subject = xstrdup("Refund please");
	m->body = xstrdup("Order 77 never came");
	m->thread_key = xstrdup(thread);
	m->severity = xstrdup(severity);
	m->reply_url = xstrdup("https://shop.test/hook");
	m->received_at = NOW;
	return m;
}

/* ingest_message in a transaction of its own. */
static int
ingest_one(struct fx *f, struct inbound_msg *m, int64_t now,
    struct ingest_result *r)
{
	int rc;

	assert_int_equal(store_begin(f->st), 0);
	rc = ingest_message(f->st, env, now, m, r);
	if (rc == 0)
		assert_int_equal(store_commit(f->st), 0);
	else
		assert_int_equal(store_rollback(f->st), 0);
	inbound_msg_free(&m);
	return rc;
}

/* ---- counting ---------------------------------------------------------- */

static int64_t
count(struct fx *f, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

struct rows {
	int64_t tickets, messages, events, customers, threads;
};

static struct rows
rows(struct fx *f)
{
	return (struct rows){
		count(f, "SELECT count(*) FROM tickets"),
		count(f, "SELECT count(*) FROM messages"),
		count(f, "SELECT count(*) FROM events"),
		count(f, "SELECT count(*) FROM customers"),
		count(f, "SELECT count(*) FROM thread_keys"),
	};
}

static void
assert_rows(struct rows got, struct rows want)
{
	assert_int_equal(got.tickets, want.tickets);
	assert_int_equal(got.messages, want.messages);
	assert_int_equal(got.events, want.events);
	assert_int_equal(got.customers, want.customers);
	assert_int_equal(got.threads, want.threads);
}

struct evs {
	char type[16][32];
	char detail[16][200];
	char actor[16][32];
	int64_t at[16];
	int n;
};

static int
collect_event(const struct event *e, void *arg)
{
	struct evs *ev = arg;

	assert_true(ev->n < 16);
	snprintf(ev->type[ev->n], 32, "%s", e->type);
	snprintf(ev->detail[ev->n], 200, "%s", e->detail);
	snprintf(ev->actor[ev->n], 32, "%s", e->actor ? e->actor : "");
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

struct msgs {
	char direction[8][8], author[8][32], body[8][64], message_id[8][32];
	char dedupe[8][64];
	int64_t at[8];
	int n;
};

static int
collect_message(const struct message *m, void *arg)
{
	struct msgs *ms = arg;

	assert_true(ms->n < 8);
	snprintf(ms->direction[ms->n], 8, "%s", m->direction);
	snprintf(ms->author[ms->n], 32, "%s", m->author);
	snprintf(ms->body[ms->n], 64, "%s", m->body);
	snprintf(ms->message_id[ms->n], 32, "%s",
	    m->message_id ? m->message_id : "");
	snprintf(ms->dedupe[ms->n], 64, "%s|%s",
	    m->dedupe_scope ? m->dedupe_scope : "",
	    m->dedupe_key ? m->dedupe_key : "");
	ms->at[ms->n] = m->at;
	ms->n++;
	return 0;
}

static struct msgs
messages(struct fx *f, int64_t id)
{
	struct msgs ms = { .n = 0 };

	assert_int_equal(store_message_list(f->st, id, collect_message, &ms),
	    0);
	return ms;
}

static void
set_state(struct fx *f, int64_t id, enum ticket_state s, int64_t resolved_at)
{
	struct ticket t;

	assert_int_equal(store_ticket_get(f->st, id, &t), 1);
	t.state = s;
	t.resolved_at = resolved_at;
	assert_int_equal(store_ticket_update(f->st, &t), 0);
	ticket_release(&t);
}

/* ---- new tickets ------------------------------------------------------- */

static void
test_new_ticket(void **state)
{
	static const struct {
		const char *severity;	/* as sent, or NULL */
		const char *want_severity, *want_sla;
	} cases[] = {
		{ NULL, "normal", "standard" },
		{ "low", "low", "standard" },
		{ "high", "high", "standard" },
		/* A severity with its own SLA takes it. */
		{ "critical", "critical", "urgent" },
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ingest_result r;
		struct ticket t;
		char id[16], cust[16];
		int64_t now = NOW + (int64_t)i;

		snprintf(id, sizeof(id), "evt-%zu", i);
		snprintf(cust, sizeof(cust), "cust-%zu", i);
		if (ingest_one(f, hook_msg(id, cust, NULL, cases[i].severity),
		    now, &r) < 0)
			fail_msg("case %zu: %s", i, r.error);
		assert_int_equal(r.created, 1);
		assert_int_equal(r.duplicate, 0);
		assert_int_equal(r.failed, 0);
		assert_true(r.ticket_id > 0);

		assert_int_equal(store_ticket_get(f->st, r.ticket_id, &t), 1);
		assert_int_equal(t.state, TICKET_NEW);
		assert_string_equal(t.severity, cases[i].want_severity);
		assert_string_equal(t.queue, "billing");
		assert_string_equal(t.team, "tier2");	/* billing's team */
		assert_string_equal(t.sla, cases[i].want_sla);
		assert_string_equal(t.ladder, "default");
		assert_int_equal(t.level, 1);
		assert_string_equal(t.channel, "webhook");
		assert_string_equal(t.source, "webhook:shop");
		assert_string_equal(t.customer_scope, "webhook:shop");
		assert_string_equal(t.customer_address, cust);
		assert_string_equal(t.customer_name, "Ada");
		assert_string_equal(t.subject, "Refund please");
		assert_string_equal(t.reply_url, "https://shop.test/hook");
		assert_int_equal(t.created_at, now);
		assert_int_equal(t.updated_at, now);
		assert_int_equal(t.last_customer_at, now);
		assert_int_equal(t.first_response_at, 0);
		assert_int_equal(t.resolved_at, 0);
		assert_int_equal(t.linked_to, 0);
		assert_null(t.assignee);
		ticket_release(&t);

		struct evs ev = events(f, r.ticket_id);
		assert_int_equal(ev.n, 1);
		assert_string_equal(ev.type[0], "created");
		assert_int_equal(ev.at[0], now);
		assert_non_null(strstr(ev.detail[0], "\"queue\":\"billing\""));
		assert_non_null(strstr(ev.detail[0],
		    "\"channel\":\"webhook\""));

		struct msgs ms = messages(f, r.ticket_id);
		assert_int_equal(ms.n, 1);
		assert_string_equal(ms.direction[0], "in");
		assert_string_equal(ms.author[0], cust);
		assert_string_equal(ms.body[0], "Order 77 never came");
		assert_string_equal(ms.message_id[0], id);
		char want[64];
		snprintf(want, sizeof(want), "webhook:shop|%s", id);
		assert_string_equal(ms.dedupe[0], want);
		assert_int_equal(ms.at[0], now);
	}
}

static void
test_empty_subject(void **state)
{
	struct fx *f = *state;
	struct inbound_msg *m = hook_msg("e", "c", NULL, NULL);
	struct ingest_result r;
	struct ticket t;

	free(m->subject);
	m->subject = xstrdup("");
	assert_int_equal(ingest_one(f, m, NOW, &r), 0);
	assert_int_equal(store_ticket_get(f->st, r.ticket_id, &t), 1);
	assert_string_equal(t.subject, "(no subject)");
	ticket_release(&t);
}

static void
test_duplicate(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2;
	struct rows before;

	assert_int_equal(ingest_one(f, hook_msg("evt-1", "c", "th", NULL),
	    NOW, &r1), 0);
	before = rows(f);
	/* A replay, even with other content, an hour later. */
	struct inbound_msg *m = hook_msg("evt-1", "c", "th", "high");
	free(m->body);
	m->body = xstrdup("changed");
	assert_int_equal(ingest_one(f, m, NOW + 3600, &r2), 0);
	assert_int_equal(r2.duplicate, 1);
	assert_int_equal(r2.created, 0);
	assert_int_equal(r2.failed, 0);
	assert_int_equal(r2.ticket_id, r1.ticket_id);
	assert_rows(rows(f), before);

	/* The same id from another hook is another message. */
	m = hook_msg("evt-1", "c", NULL, NULL);
	free(m->dedupe_scope);
	m->dedupe_scope = xstrdup("webhook:crm");
	assert_int_equal(ingest_one(f, m, NOW, &r2), 0);
	assert_int_equal(r2.duplicate, 0);
}

/* ---- follow-ups -------------------------------------------------------- */

static void
test_thread_key_appends(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2, r3;
	struct ticket t;

	assert_int_equal(ingest_one(f, hook_msg("evt-1", "c", "order-77",
	    NULL), NOW, &r1), 0);
	assert_int_equal(ingest_one(f, hook_msg("evt-2", "c", "order-77",
	    NULL), NOW + 60, &r2), 0);
	assert_int_equal(r2.created, 0);
	assert_int_equal(r2.duplicate, 0);
	assert_int_equal(r2.ticket_id, r1.ticket_id);

	struct msgs ms = messages(f, r1.ticket_id);
	assert_int_equal(ms.n, 2);
	assert_string_equal(ms.message_id[1], "evt-2");
	struct evs ev = events(f, r1.ticket_id);
	assert_int_equal(ev.n, 2);
	assert_string_equal(ev.type[1], "customer_replied");

	assert_int_equal(store_ticket_get(f->st, r1.ticket_id, &t), 1);
	assert_int_equal(t.state, TICKET_NEW);	/* still waiting for us */
	assert_int_equal(t.last_customer_at, NOW + 60);
	assert_int_equal(t.updated_at, NOW + 60);
	ticket_release(&t);

	/* Another thread, or none, is another ticket. */
	assert_int_equal(ingest_one(f, hook_msg("evt-3", "c", "order-78",
	    NULL), NOW + 120, &r3), 0);
	assert_int_equal(r3.created, 1);
	assert_int_not_equal(r3.ticket_id, r1.ticket_id);
	assert_int_equal(ingest_one(f, hook_msg("evt-4", "c", NULL, NULL),
	    NOW + 180, &r3), 0);
	assert_int_equal(r3.created, 1);
}

static void
test_pending_becomes_open(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2;
	struct ticket t;

	assert_int_equal(ingest_one(f, hook_msg("evt-1", "c", "th", NULL), NOW,
	    &r1), 0);
	set_state(f, r1.ticket_id, TICKET_PENDING, 0);
	assert_int_equal(ingest_one(f, hook_msg("evt-2", "c", "th", NULL),
	    NOW + 3600, &r2), 0);
	assert_int_equal(r2.ticket_id, r1.ticket_id);
	assert_int_equal(r2.created, 0);

	assert_int_equal(store_ticket_get(f->st, r1.ticket_id, &t), 1);
	assert_int_equal(t.state, TICKET_OPEN);
	assert_int_equal(t.last_customer_at, NOW + 3600);
	ticket_release(&t);

	struct evs ev = events(f, r1.ticket_id);
	assert_int_equal(ev.n, 3);
	assert_string_equal(ev.type[1], "state_changed");
	assert_non_null(strstr(ev.detail[1], "\"from\":\"pending\""));
	assert_non_null(strstr(ev.detail[1], "\"to\":\"open\""));
	assert_string_equal(ev.type[2], "customer_replied");
}

static void
test_resolved_reopens_within(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2;
	struct ticket t;
	int64_t resolved = NOW + DAY;
	/* The last second of reopen_within still reopens. */
	int64_t later = resolved + conf.reopen_within;

	assert_int_equal(ingest_one(f, hook_msg("evt-1", "c", "th", NULL), NOW,
	    &r1), 0);
	set_state(f, r1.ticket_id, TICKET_RESOLVED, resolved);
	assert_int_equal(ingest_one(f, hook_msg("evt-2", "c", "th", NULL),
	    later, &r2), 0);
	assert_int_equal(r2.ticket_id, r1.ticket_id);
	assert_int_equal(r2.created, 0);

	assert_int_equal(store_ticket_get(f->st, r1.ticket_id, &t), 1);
	assert_int_equal(t.state, TICKET_OPEN);
	assert_int_equal(t.resolved_at, 0);
	assert_int_equal(t.last_customer_at, later);
	ticket_release(&t);

	struct evs ev = events(f, r1.ticket_id);
	int reopened = 0, changed = 0;
	for (int i = 0; i < ev.n; i++) {
		if (strcmp(ev.type[i], "reopened") == 0)
			reopened++;
		if (strcmp(ev.type[i], "state_changed") == 0) {
			changed++;
			assert_non_null(strstr(ev.detail[i],
			    "\"from\":\"resolved\""));
			assert_non_null(strstr(ev.detail[i],
			    "\"to\":\"open\""));
		}
	}
	assert_int_equal(reopened, 1);
	assert_int_equal(changed, 1);
	assert_int_equal(messages(f, r1.ticket_id).n, 2);
	int64_t n = 0;
	assert_int_equal(store_ticket_count(f->st, &n), 0);
	assert_int_equal(n, 1);
}

static void
test_resolved_too_late_links(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2;
	struct ticket t;
	int64_t resolved = NOW + DAY;
	int64_t later = resolved + conf.reopen_within + 1;

	assert_int_equal(ingest_one(f, hook_msg("evt-1", "c", "th", NULL), NOW,
	    &r1), 0);
	set_state(f, r1.ticket_id, TICKET_RESOLVED, resolved);
	assert_int_equal(ingest_one(f, hook_msg("evt-2", "c", "th", NULL),
	    later, &r2), 0);
	assert_int_equal(r2.created, 1);
	assert_int_not_equal(r2.ticket_id, r1.ticket_id);

	assert_int_equal(store_ticket_get(f->st, r2.ticket_id, &t), 1);
	assert_int_equal(t.linked_to, r1.ticket_id);
	assert_int_equal(t.state, TICKET_NEW);
	assert_int_equal(t.customer_id, 1);
	ticket_release(&t);
	/* The old ticket stays as it was. */
	assert_int_equal(store_ticket_get(f->st, r1.ticket_id, &t), 1);
	assert_int_equal(t.state, TICKET_RESOLVED);
	assert_int_equal(t.resolved_at, resolved);
	ticket_release(&t);
	assert_int_equal(events(f, r1.ticket_id).n, 1);
	assert_int_equal(messages(f, r1.ticket_id).n, 1);

	struct evs ev = events(f, r2.ticket_id);
	assert_int_equal(ev.n, 1);
	assert_string_equal(ev.type[0], "created");
	char want[40];
	snprintf(want, sizeof(want), "\"follows\":%lld",
	    (long long)r1.ticket_id);
	assert_non_null(strstr(ev.detail[0], want));
	assert_int_equal(messages(f, r2.ticket_id).n, 1);
}

static void
test_closed_links(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2;
	struct ticket t;

	assert_int_equal(ingest_one(f, hook_msg("evt-1", "c", "th", NULL), NOW,
	    &r1), 0);
	set_state(f, r1.ticket_id, TICKET_CLOSED, NOW + 60);
	/* Closed is final, however soon the customer writes. */
	assert_int_equal(ingest_one(f, hook_msg("evt-2", "c", "th", NULL),
	    NOW + 120, &r2), 0);
	assert_int_equal(r2.created, 1);
	assert_int_equal(store_ticket_get(f->st, r2.ticket_id, &t), 1);
	assert_int_equal(t.linked_to, r1.ticket_id);
	ticket_release(&t);
}

/*
 * After a late follow-up opened a new ticket on a thread, the thread
 * belongs to the new ticket: the next message appends to it instead of
 * opening yet another ticket (SPEC.md "Ticket": later, it opens a new
 * ticket that links to the old one).
 */
static void
test_thread_moves_to_new_ticket(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2, r3;
	int64_t resolved = NOW + DAY;
	int64_t later = resolved + conf.reopen_within + 1;

	assert_int_equal(ingest_one(f, hook_msg("evt-1", "c", "th", NULL), NOW,
	    &r1), 0);
	set_state(f, r1.ticket_id, TICKET_RESOLVED, resolved);
	assert_int_equal(ingest_one(f, hook_msg("evt-2", "c", "th", NULL),
	    later, &r2), 0);
	assert_int_equal(r2.created, 1);
	assert_int_equal(ingest_one(f, hook_msg("evt-3", "c", "th", NULL),
	    later + 60, &r3), 0);
	if (r3.ticket_id != r2.ticket_id) {
		int64_t n = 0;
		assert_int_equal(store_ticket_count(f->st, &n), 0);
		fail_msg("third message on the thread went to ticket %lld "
		    "(created=%d), not to the follow-up ticket %lld; %lld "
		    "tickets now", (long long)r3.ticket_id, r3.created,
		    (long long)r2.ticket_id, (long long)n);
	}
	assert_int_equal(r3.created, 0);
}

/* A follow-up teaches us a customer name we lacked, never overwrites. */
static void
test_followup_fills_customer_name(void **state)
{
	struct fx *f = *state;
	struct inbound_msg *m = hook_msg("evt-1", "c", "th", NULL);
	struct ingest_result r;
	struct ticket t;

	free(m->from_name);
	m->from_name = NULL;
	assert_int_equal(ingest_one(f, m, NOW, &r), 0);
	assert_int_equal(store_ticket_get(f->st, r.ticket_id, &t), 1);
	assert_string_equal(t.customer_name, "c");
	ticket_release(&t);
	assert_int_equal(ingest_one(f, hook_msg("evt-2", "c", "th", NULL),
	    NOW + 1, &r), 0);
	assert_int_equal(store_ticket_get(f->st, r.ticket_id, &t), 1);
	assert_string_equal(t.customer_name, "Ada");
	ticket_release(&t);
}

static void
test_unknown_queue_fails(void **state)
{
	struct fx *f = *state;
	struct inbound_msg *m = hook_msg("evt-1", "c", NULL, NULL);
	struct ingest_result r;

	free(m->queue);
	m->queue = xstrdup("nowhere");
	assert_int_equal(ingest_one(f, m, NOW, &r), -1);
	assert_int_equal(r.failed, 1);
	assert_int_equal(r.temporary, 0);
	assert_int_equal(r.created, 0);
	assert_non_null(strstr(r.error, "nowhere"));
}

/* ---- mail and chat threading ------------------------------------------- */

/* What the IMAP child makes of a mail to mailbox "support". */
static struct inbound_msg *
mail_msg(const char *message_id, const char *from, const char *subject,
    const char *in_reply_to, const char *ref1, const char *ref2)
{
	struct inbound_msg *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->channel = CHANNEL_EMAIL;
	m->source = xstrdup("mailbox:support");
	m->queue = xstrdup("general");
	m->dedupe_scope = xstrdup("email");
	m->dedupe_key = xstrdup(message_id);
	m->message_id = xstrdup(message_id);
	m->from_scope = xstrdup("email");
	m->from_address = xstrdup(from);
	m->subject = xstrdup(subject);
	m->body = xstrdup("text");
	m->in_reply_to = xstrdup(in_reply_to);
	if (ref1 != NULL) {
		m->references = calloc(2, sizeof(char *));
		assert_non_null(m->references);
		m->references[m->n_references++] = xstrdup(ref1);
		if (ref2 != NULL)
			m->references[m->n_references++] = xstrdup(ref2);
	}
	m->received_at = NOW;
	return m;
}

static void
test_mail_threading(void **state)
{
	struct fx *f = *state;
	struct ingest_result r;
	int64_t t1;
	char tagged[64];
	struct ticket t;

	assert_int_equal(ingest_one(f, mail_msg("<m1@x>", "ada@x", "Help",
	    NULL, NULL, NULL), NOW, &r), 0);
	assert_int_equal(r.created, 1);
	t1 = r.ticket_id;
	assert_int_equal(store_ticket_get(f->st, t1, &t), 1);
	assert_string_equal(t.channel, "email");
	assert_string_equal(t.queue, "general");
	assert_string_equal(t.team, "tier1");
	ticket_release(&t);
	snprintf(tagged, sizeof(tagged), "Re: [ESC-%lld] Help", (long long)t1);

	static const struct {
		const char *id, *from, *subject, *irt, *ref1, *ref2;
		int same;	/* 1: threads into t1 */
	} cases[] = {
		{ "<m2@x>", "ada@x", "Re: Help", "<m1@x>", NULL, NULL, 1 },
		/* The newest known reference wins; unknown ones are skipped. */
		{ "<m3@x>", "ada@x", "Re: Help", NULL, "<m2@x>", "<zz@x>", 1 },
		/* Someone else replying to a known Message-ID still threads
		 * (Cc'd colleagues). */
		{ "<m4@x>", "bob@x", "Re: Help", "<m3@x>", NULL, NULL, 1 },
		/* A subject tag from the ticket's customer threads ... */
		{ "<m5@x>", "ada@x", NULL, NULL, NULL, NULL, 1 },
		/* ... from anyone else it does not. */
		{ "<m6@x>", "eve@x", NULL, NULL, NULL, NULL, 0 },
		{ "<m7@x>", "ada@x", "Re: Help", "<unknown@x>", NULL, NULL,
		  0 },
		{ "<m8@x>", "ada@x", "Help", NULL, NULL, NULL, 0 },
		{ "<m9@x>", "ada@x", "[ESC-99999] Help", NULL, NULL, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *subject = cases[i].subject != NULL ?
		    cases[i].subject : tagged;
		if (ingest_one(f, mail_msg(cases[i].id, cases[i].from, subject,
		    cases[i].irt, cases[i].ref1, cases[i].ref2), NOW + 10, &r) <
		    0)
			fail_msg("%s: %s", cases[i].id, r.error);
		if (cases[i].same && (r.ticket_id != t1 || r.created))
			fail_msg("%s: ticket %lld (created=%d), want %lld",
			    cases[i].id, (long long)r.ticket_id, r.created,
			    (long long)t1);
		if (!cases[i].same && (r.ticket_id == t1 || !r.created))
			fail_msg("%s: threaded into %lld, want a new ticket",
			    cases[i].id, (long long)r.ticket_id);
	}
	assert_int_equal(messages(f, t1).n, 5);
}

static void
test_chat_threads_by_jid(void **state)
{
	struct fx *f = *state;
	struct ingest_result r1, r2, r3;

	for (int i = 0; i < 3; i++) {
		struct inbound_msg *m = calloc(1, sizeof(*m));
		char id[16];

		assert_non_null(m);
		snprintf(id, sizeof(id), "stanza-%d", i);
		m->channel = CHANNEL_CHAT;
		m->source = xstrdup("xmpp:chat");
		m->queue = xstrdup("general");
		m->dedupe_scope = xstrdup("chat");
		m->dedupe_key = xstrdup(id);
		m->message_id = xstrdup(id);
		m->from_scope = xstrdup("chat");
		m->from_address = xstrdup(i < 2 ? "ada@example.test" :
		    "bob@example.test");
		m->body = xstrdup("hi");
		assert_int_equal(ingest_one(f, m, NOW + i,
		    i == 0 ? &r1 : i == 1 ? &r2 : &r3), 0);
	}
	assert_int_equal(r1.created, 1);
	assert_int_equal(r2.created, 0);
	assert_int_equal(r2.ticket_id, r1.ticket_id);
	assert_int_equal(r3.created, 1);
	assert_int_not_equal(r3.ticket_id, r1.ticket_id);
}

/* ---- batches ----------------------------------------------------------- */

struct done {
	struct fx *f;
	struct ingest_result r;
	int calls;
	int seq;		/* order in which callbacks ran */
	int visible;		/* the ticket, seen from a reader at callback */
	int *clock;
};

static void
done_cb(const struct ingest_result *r, void *arg)
{
	struct done *d = arg;
	char *err = NULL;
	struct store *ro;

	d->calls++;
	d->r = *r;
	d->seq = (*d->clock)++;
	/* A second, read-only connection sees only committed data: a
	 * callback that runs before COMMIT finds nothing. */
	ro = store_open(d->f->path, STORE_READONLY, &err);
	if (ro == NULL) {
		free(err);
		return;
	}
	if (r->ticket_id > 0) {
		struct ticket t;
		d->visible = store_ticket_get(ro, r->ticket_id, &t) == 1;
		ticket_release(&t);
	}
	store_close(&ro);
}

static void
test_batch_with_duplicate(void **state)
{
	struct fx *f = *state;
	struct ingest_batch *b = ingest_batch_new();
	/* a, b, a again (same dedupe key), c, d */
	static const char *const ids[] = { "a", "b", "a", "c", "d" };
	static const char *const custs[] = { "c1", "c2", "c1", "c3", "c4" };
	struct done d[5];
	int clock = 0;
	int64_t n = 0;

	assert_non_null(b);
	for (int i = 0; i < 5; i++) {
		d[i] = (struct done){ .f = f, .clock = &clock };
		assert_int_equal(ingest_batch_add(b, hook_msg(ids[i], custs[i],
		    NULL, NULL), done_cb, &d[i]), 0);
		assert_int_equal(d[i].calls, 0);	/* not before commit */
	}
	assert_int_equal(ingest_batch_len(b), 5);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 0);

	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), 0);
	assert_int_equal(ingest_batch_len(b), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].seq, i);		/* in item order */
		assert_int_equal(d[i].r.failed, 0);
		assert_true(d[i].r.ticket_id > 0);
		if (!d[i].visible)
			fail_msg("item %d: callback ran before its ticket "
			    "was committed", i);
	}
	assert_int_equal(d[0].r.created, 1);
	assert_int_equal(d[2].r.created, 0);
	assert_int_equal(d[2].r.duplicate, 1);
	assert_int_equal(d[2].r.ticket_id, d[0].r.ticket_id);
	assert_int_not_equal(d[1].r.ticket_id, d[0].r.ticket_id);
	assert_int_not_equal(d[3].r.ticket_id, d[1].r.ticket_id);
	assert_int_equal(store_ticket_count(f->st, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(count(f, "SELECT count(*) FROM messages"), 4);

	/* The batch is reusable, and an empty commit calls nobody. */
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(d[i].calls, 1);
	ingest_batch_free(&b);
	assert_null(b);
	ingest_batch_free(&b);
}

static void
test_batch_item_fails_alone(void **state)
{
	struct fx *f = *state;
	struct ingest_batch *b = ingest_batch_new();
	struct inbound_msg *bad_queue, *bad_sev;
	struct done d[4];
	int clock = 0;

	assert_non_null(b);
	for (int i = 0; i < 4; i++)
		d[i] = (struct done){ .f = f, .clock = &clock };
	/* Fails before writing anything: its queue is not configured. */
	bad_queue = hook_msg("q", "c2", NULL, NULL);
	free(bad_queue->queue);
	bad_queue->queue = xstrdup("nowhere");
	/* Fails after writing its customer: the store refuses the ticket
	 * (a severity the schema does not know). Its savepoint must take
	 * the customer back. */
	bad_sev = hook_msg("s", "c3", "th-s", "bogus");

	assert_int_equal(ingest_batch_add(b, hook_msg("a", "c1", NULL, NULL),
	    done_cb, &d[0]), 0);
	assert_int_equal(ingest_batch_add(b, bad_queue, done_cb, &d[1]), 0);
	assert_int_equal(ingest_batch_add(b, bad_sev, done_cb, &d[2]), 0);
	assert_int_equal(ingest_batch_add(b, hook_msg("d", "c4", NULL, NULL),
	    done_cb, &d[3]), 0);
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), 0);

	for (int i = 0; i < 4; i++)
		assert_int_equal(d[i].calls, 1);
	assert_int_equal(d[0].r.failed, 0);
	assert_int_equal(d[0].r.created, 1);
	assert_true(d[0].visible);
	assert_int_equal(d[1].r.failed, 1);
	assert_int_equal(d[1].r.temporary, 0);
	assert_int_equal(d[1].r.created, 0);
	assert_non_null(strstr(d[1].r.error, "nowhere"));
	assert_int_equal(d[2].r.failed, 1);
	assert_int_equal(d[2].r.temporary, 0);
	assert_true(strlen(d[2].r.error) > 0);
	assert_int_equal(d[3].r.failed, 0);
	assert_int_equal(d[3].r.created, 1);
	assert_true(d[3].visible);

	/* Exactly the good items are stored, and nothing of the bad. */
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 2);
	assert_int_equal(count(f, "SELECT count(*) FROM messages"), 2);
	assert_int_equal(count(f, "SELECT count(*) FROM customers"), 2);
	assert_int_equal(count(f, "SELECT count(*) FROM identities WHERE "
	    "address IN ('c2', 'c3')"), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM thread_keys"), 0);

	/* A failed item left no dedupe key: sent again, fixed, it is new. */
	struct done again = { .f = f, .clock = &clock };
	assert_int_equal(ingest_batch_add(b, hook_msg("s", "c3", "th-s",
	    "high"), done_cb, &again), 0);
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), 0);
	assert_int_equal(again.r.failed, 0);
	assert_int_equal(again.r.duplicate, 0);
	assert_int_equal(again.r.created, 1);
	ingest_batch_free(&b);
}

/* When the transaction as a whole cannot be had (another writer holds the
 * store past the busy timeout), every item fails as temporary and nothing
 * is stored. Takes the store's busy timeout (5 s) to run. */
static void
test_batch_store_busy(void **state)
{
	struct fx *f = *state;
	struct ingest_batch *b = ingest_batch_new();
	struct done d[2];
	sqlite3 *db = NULL;
	int clock = 0;

	assert_non_null(b);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	for (int i = 0; i < 2; i++) {
		d[i] = (struct done){ .f = f, .clock = &clock };
		assert_int_equal(ingest_batch_add(b, hook_msg(i ? "y" : "x",
		    "c", NULL, NULL), done_cb, &d[i]), 0);
	}
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), -1);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].r.failed, 1);
		assert_int_equal(d[i].r.temporary, 1);
		assert_int_equal(d[i].r.created, 0);
	}
	assert_int_equal(ingest_batch_len(b), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 0);

	/* The store recovers: the next batch commits. */
	d[0] = (struct done){ .f = f, .clock = &clock };
	assert_int_equal(ingest_batch_add(b, hook_msg("x", "c", NULL, NULL),
	    done_cb, &d[0]), 0);
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), 0);
	assert_int_equal(d[0].r.created, 1);
	ingest_batch_free(&b);
}

/* Freeing a batch that was never committed frees its messages and calls
 * no one (valgrind checks the first half). */
static void
test_batch_free_uncommitted(void **state)
{
	struct fx *f = *state;
	struct ingest_batch *b = ingest_batch_new();
	int clock = 0;
	struct done d = { .f = f, .clock = &clock };

	assert_non_null(b);
	for (int i = 0; i < 100; i++) {	/* past the first allocation */
		char id[16];
		snprintf(id, sizeof(id), "e%d", i);
		assert_int_equal(ingest_batch_add(b, hook_msg(id, "c", NULL,
		    NULL), done_cb, &d), 0);
	}
	assert_int_equal(ingest_batch_len(b), 100);
	ingest_batch_free(&b);
	assert_int_equal(d.calls, 0);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)

/* The shipped templates render the acks that new webhook tickets queue. */

static int
load_templates(void **state)
{
	char *err = NULL;

	(void)state;
	templates = tmplset_load("templates", &err);
	if (templates == NULL || (env = env_new(&conf, templates,
	    &err)) == NULL) {
		fprintf(stderr, "templates: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int
free_templates(void **state)
{
	(void)state;
	env_free(&env);
	tmplset_free(&templates);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_new_ticket),
		T(test_empty_subject),
		T(test_duplicate),
		T(test_thread_key_appends),
		T(test_pending_becomes_open),
		T(test_resolved_reopens_within),
		T(test_resolved_too_late_links),
		T(test_closed_links),
		T(test_thread_moves_to_new_ticket),
		T(test_followup_fills_customer_name),
		T(test_unknown_queue_fails),
		T(test_mail_threading),
		T(test_chat_threads_by_jid),
		T(test_batch_with_duplicate),
		T(test_batch_item_fails_alone),
		T(test_batch_store_busy),
		T(test_batch_free_uncommitted),
	};

	/* Quiet the per-item info and warn lines; errors still show. */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, load_templates, free_templates);
}
