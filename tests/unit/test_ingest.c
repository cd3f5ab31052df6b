/*
 * test_ingest: inbound messages -> tickets, on a real store in a temporary
 * folder, with a conf built by hand and fixed instants; at the end, the
 * real-world mail of ../shared/corpus/mail (skipped when absent).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "channel.h"
#include "conf.h"
#include "env.h"
#include "ingest.h"
#include "tmplset.h"
#include "log.h"
#include "mail.h"
#include "mime.h"
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
	int automatic;		/* 1: only what escalon sent; 0: the rest */
};

/* What escalon told the customer by itself (ack, too_large ...). */
static int
is_automatic(const struct message *m)
{
	return strcmp(m->direction, "out") == 0 &&
	    strcmp(m->author, "escalon") == 0;
}

static int
collect_message(const struct message *m, void *arg)
{
	struct msgs *ms = arg;

	if (is_automatic(m) != ms->automatic)
		return 0;
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

/* The ticket's messages but the automatic ones. */
static struct msgs
messages(struct fx *f, int64_t id)
{
	struct msgs ms = { .n = 0 };

	assert_int_equal(store_message_list(f->st, id, collect_message, &ms),
	    0);
	return ms;
}

/* The automatic messages on the ticket (SPEC: `out` by `escalon`). */
static struct msgs
automatic(struct fx *f, int64_t id)
{
	struct msgs ms = { .n = 0, .automatic = 1 };

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
	assert_int_equal(count(f, "SELECT count(*) FROM messages WHERE "
	    "direction = 'in'"), 4);

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
	assert_int_equal(count(f, "SELECT count(*) FROM messages WHERE "
	    "direction = 'in'"), 2);
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

/* ---- mail to email customers ------------------------------------------- */

/*
 * The mail tests run with an smtp section, a mailbox "support" (the source
 * of mail_msg) and a secret; their teardown puts the hand-built conf back
 * as the other tests expect it (no smtp: nothing mailed), even after a
 * failed assertion.
 */
#define SECRET "test-secret"

struct obox;
static struct obox *boxes;

static struct conf_mailbox mailboxes[] = {
	{ .name = "support", .address = "support@example.test",
	  .queue = "general" },
};

static int
setup_mail(void **state)
{
	if (fx_setup_store(state, "escalon-test-ingest") < 0)
		return -1;
	conf.smtp.present = 1;
	conf.smtp.url = "smtp://127.0.0.1:1";
	conf.smtp.from = "help@example.test";
	conf.mailboxes = mailboxes;
	conf.n_mailboxes = 1;
	conf.max_autoreplies = 10;
	conf.max_message_size = 1 << 20;
	env->secret = SECRET;
	return 0;
}

static void obox_free(struct obox **obp);

static int
teardown_mail(void **state)
{
	memset(&conf.smtp, 0, sizeof(conf.smtp));
	conf.mailboxes = NULL;
	conf.n_mailboxes = 0;
	conf.max_autoreplies = 0;
	conf.max_message_size = 0;
	env->secret = NULL;
	while (boxes != NULL) {
		struct obox *ob = boxes;
		obox_free(&ob);
	}
	return fx_teardown(state);
}

/* The outbox as queued rows, copied out. */
struct orow {
	int64_t id, ticket_id;
	char *template, *channel, *recipient, *identity, *payload;
};

struct obox {
	struct orow r[32];
	int n;
	struct obox *next;	/* in `boxes` */
};

/* Every box not yet freed (`boxes`): a failed assertion leaves its test
 * without freeing them, and teardown_mail frees them instead. */

static int
collect_row(const struct outbox_row *row, void *arg)
{
	struct obox *ob = arg;
	struct orow *o;

	assert_true(ob->n < 32);
	o = &ob->r[ob->n++];
	o->id = row->id;
	o->ticket_id = row->ticket_id;
	o->template = xstrdup(row->template != NULL ? row->template : "");
	o->channel = xstrdup(row->channel);
	o->recipient = xstrdup(row->recipient);
	o->identity = xstrdup(row->identity);
	o->payload = malloc(row->payload_len + 1);
	assert_non_null(o->payload);
	memcpy(o->payload, row->payload, row->payload_len);
	o->payload[row->payload_len] = '\0';
	return 0;
}

static struct obox *
outbox(struct fx *f)
{
	struct obox *ob = calloc(1, sizeof(*ob));

	assert_non_null(ob);
	ob->next = boxes;
	boxes = ob;
	assert_int_equal(store_outbox_list(f->st, 0, collect_row, ob), 0);
	return ob;
}

static void
obox_free(struct obox **obp)
{
	struct obox *ob = *obp, **pp = &boxes;

	while (*pp != ob)
		pp = &(*pp)->next;
	*pp = ob->next;
	for (int i = 0; i < ob->n; i++) {
		free(ob->r[i].template);
		free(ob->r[i].channel);
		free(ob->r[i].recipient);
		free(ob->r[i].identity);
		free(ob->r[i].payload);
	}
	free(ob);
	*obp = NULL;
}

/* Rows of template (NULL: any) to recipient (NULL: anyone). */
static int
n_rows(const struct obox *ob, const char *template, const char *recipient)
{
	int n = 0;

	for (int i = 0; i < ob->n; i++)
		n += (template == NULL ||
		    strcmp(ob->r[i].template, template) == 0) &&
		    (recipient == NULL ||
		    strcmp(ob->r[i].recipient, recipient) == 0);
	return n;
}

/* The first such row, or a failure. */
static const struct orow *
row_of(const struct obox *ob, const char *template, const char *recipient)
{
	for (int i = 0; i < ob->n; i++)
		if (strcmp(ob->r[i].template, template) == 0 &&
		    strcmp(ob->r[i].recipient, recipient) == 0)
			return &ob->r[i];
	fail_msg("no %s row to %s in the outbox (%d rows)", template,
	    recipient, ob->n);
	return NULL;
}

/*
 * The value of header `name` in a mail (the header section only, folded
 * lines joined by one space) into buf; NULL when it has none.
 */
static const char *
header_of(const char *mail, const char *name, char *buf, size_t len)
{
	const char *end = strstr(mail, "\r\n\r\n");
	size_t nl = strlen(name);

	assert_non_null(end);
	for (const char *p = mail; p < end;) {
		const char *q = strstr(p, "\r\n");
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			size_t used = 0;
			const char *v = p + nl + 1;
			for (;;) {
				while (*v == ' ' || *v == '\t')
					v++;
				used += (size_t)snprintf(buf + used,
				    used < len ? len - used : 0, "%s%.*s",
				    used > 0 ? " " : "", (int)(q - v), v);
				if (q >= end || (q[2] != ' ' && q[2] != '\t'))
					break;
				v = q + 2;
				q = strstr(v, "\r\n");
			}
			assert_true(used < len);
			return buf;
		}
		p = q + 2;
	}
	return NULL;
}

/* Header `name` of mail is exactly want (the failure names the caller's
 * line). */
#define assert_header(mail, name, want) \
	assert_header_at((mail), (name), (want), __LINE__)

static void
assert_header_at(const char *mail, const char *name, const char *want,
    int line)
{
	char buf[1024];
	const char *got = header_of(mail, name, buf, sizeof(buf));

	if (got == NULL)
		fail_msg("line %d: no %s header in:\n%.*s", line, name,
		    (int)(strstr(mail, "\r\n\r\n") - mail), mail);
	if (strcmp(got, want) != 0)
		fail_msg("line %d: %s: \"%s\", want \"%s\"", line, name, got,
		    want);
}

static int
n_events(const struct evs *ev, const char *type)
{
	int n = 0;

	for (int i = 0; i < ev->n; i++)
		n += strcmp(ev->type[i], type) == 0;
	return n;
}

/* The detail of the only event of that type. */
static const char *
event_detail(const struct evs *ev, const char *type)
{
	int at = -1;

	for (int i = 0; i < ev->n; i++)
		if (strcmp(ev->type[i], type) == 0) {
			if (at >= 0)
				fail_msg("two %s events", type);
			at = i;
		}
	if (at < 0)
		fail_msg("no %s event (%d events)", type, ev->n);
	return ev->detail[at];
}

static struct inbound_msg *
auto_msg(const char *message_id, const char *from, const char *subject,
    const char *in_reply_to, int flags)
{
	struct inbound_msg *m = mail_msg(message_id, from, subject,
	    in_reply_to, NULL, NULL);

	m->auto_submitted = flags;
	return m;
}

/* A new mail ticket is acknowledged by mail, signed and threaded. */
static void
test_mail_ack(void **state)
{
	struct fx *f = *state;
	struct ingest_result r;
	struct obox *ob;
	struct ticket t;
	char want[256], tag[32], buf[1024];
	long long tid;
	unsigned long long n;
	int64_t t1, found = 0;

	assert_int_equal(ingest_one(f, mail_msg("<m1@cust.test>",
	    "ada@cust.test", "Help", NULL, NULL, NULL), NOW, &r), 0);
	assert_int_equal(r.created, 1);
	t1 = r.ticket_id;
	assert_int_equal(store_ticket_get(f->st, t1, &t), 1);
	assert_string_equal(t.channel, "email");
	assert_string_equal(t.source, "mailbox:support");
	ticket_release(&t);

	ob = outbox(f);
	assert_int_equal(n_rows(ob, "ack", NULL), 1);
	const struct orow *ack = row_of(ob, "ack", "ada@cust.test");
	assert_int_equal(ack->ticket_id, t1);
	assert_string_equal(ack->channel, "email");
	/* The agents of tier1 hear of it, by mail too. */
	assert_int_equal(n_rows(ob, "agent_new", "alice@example.test"), 1);
	assert_int_equal(n_rows(ob, "agent_new", "bob@example.test"), 1);

	/* Message-ID <esc-ID-N.MAC@domain>: ours, for this ticket, MAC
	 * under the secret, domain of the From address; the row's identity. */
	if (sscanf(ack->identity, "<esc-%lld-%llu.", &tid, &n) != 2)
		fail_msg("identity \"%s\" is not <esc-ID-N.MAC@domain>",
		    ack->identity);
	assert_int_equal(tid, t1);
	mail_message_id(t1, (uint64_t)n, SECRET, "example.test", want,
	    sizeof(want));
	assert_string_equal(ack->identity, want);
	assert_header(ack->payload, "Message-ID", ack->identity);

	/* From the mailbox the mail came to, not smtp's from. */
	assert_header(ack->payload, "From", "support@example.test");
	assert_header(ack->payload, "To", "ada@cust.test");
	assert_header(ack->payload, "X-Loop", "support@example.test");
	assert_header(ack->payload, "Auto-Submitted", "auto-replied");
	assert_non_null(header_of(ack->payload, "Date", buf, sizeof(buf)));
	assert_non_null(header_of(ack->payload, "Subject", buf, sizeof(buf)));
	snprintf(tag, sizeof(tag), "[ESC-%lld]", (long long)t1);
	if (strstr(buf, tag) == NULL || strstr(buf, "Help") == NULL)
		fail_msg("Subject \"%s\" lacks %s or the customer's subject",
		    buf, tag);

	/* Its Message-ID is a thread key of the ticket: the customer's
	 * answer to the ack threads, whatever its subject. */
	assert_int_equal(store_thread_find(f->st, "mail", ack->identity,
	    &found), 1);
	assert_int_equal(found, t1);
	assert_int_equal(ingest_one(f, mail_msg("<m2@cust.test>",
	    "ada@cust.test", "something else", ack->identity, NULL, NULL),
	    NOW + 60, &r), 0);
	assert_int_equal(r.created, 0);
	assert_int_equal(r.ticket_id, t1);
	obox_free(&ob);

	/* A follow-up is not acknowledged again. */
	ob = outbox(f);
	assert_int_equal(n_rows(ob, "ack", NULL), 1);
	assert_int_equal(n_rows(ob, NULL, "ada@cust.test"), 1);
	assert_int_equal(messages(f, t1).n, 2);
	/* The ack is on the thread as what escalon told the customer. */
	struct msgs sent = automatic(f, t1);
	assert_int_equal(sent.n, 1);
	assert_string_equal(sent.direction[0], "out");
	assert_non_null(strstr(sent.body[0], "Hello"));
	assert_string_equal(sent.author[0], "escalon");

	/* It answers the customer's mail: In-Reply-To and References name
	 * it, so their mail program threads the ack under their mail. */
	ack = row_of(ob, "ack", "ada@cust.test");
	assert_header(ack->payload, "In-Reply-To", "<m1@cust.test>");
	assert_header(ack->payload, "References", "<m1@cust.test>");
	obox_free(&ob);
}

/* Mail from a source no mailbox is configured for comes From smtp. */
static void
test_mail_ack_from_smtp(void **state)
{
	struct fx *f = *state;
	struct inbound_msg *m = mail_msg("<m1@cust.test>", "ada@cust.test",
	    "Help", NULL, NULL, NULL);
	struct ingest_result r;
	struct obox *ob;
	char want[256];
	long long tid;
	unsigned long long n;

	free(m->source);
	m->source = xstrdup("mailbox:other");
	assert_int_equal(ingest_one(f, m, NOW, &r), 0);
	assert_int_equal(r.created, 1);
	ob = outbox(f);
	const struct orow *ack = row_of(ob, "ack", "ada@cust.test");
	assert_header(ack->payload, "From", "help@example.test");
	assert_header(ack->payload, "X-Loop", "help@example.test");
	assert_int_equal(sscanf(ack->identity, "<esc-%lld-%llu.", &tid, &n),
	    2);
	mail_message_id(r.ticket_id, (uint64_t)n, SECRET, "example.test",
	    want, sizeof(want));
	assert_string_equal(ack->identity, want);
	obox_free(&ob);
}

/* Without a secret (or an smtp section) no mail is queued at all. */
static void
test_mail_no_secret_no_mail(void **state)
{
	struct fx *f = *state;
	struct ingest_result r;
	int64_t pending = -1, dead = -1;

	env->secret = NULL;
	assert_int_equal(ingest_one(f, mail_msg("<m1@cust.test>",
	    "ada@cust.test", "Help", NULL, NULL, NULL), NOW, &r), 0);
	assert_int_equal(r.created, 1);
	env->secret = SECRET;
	conf.smtp.present = 0;
	assert_int_equal(ingest_one(f, mail_msg("<m2@cust.test>",
	    "bob@cust.test", "Help", NULL, NULL, NULL), NOW, &r), 0);
	assert_int_equal(r.created, 1);
	assert_int_equal(store_outbox_count(f->st, &pending, &dead), 0);
	assert_int_equal(pending, 0);
	assert_int_equal(dead, 0);
}

/* Automatic mail opens a ticket, but nobody answers it. */
static void
test_mail_automatic_not_answered(void **state)
{
	static const int flags[] = {
		INBOUND_AUTO_SUBMITTED, INBOUND_AUTO_BULK, INBOUND_AUTO_LIST,
		INBOUND_AUTO_BOUNCE, INBOUND_AUTO_LOOP,
		INBOUND_AUTO_SUBMITTED | INBOUND_AUTO_LIST,
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct ingest_result r;
		struct obox *ob;
		char id[32], from[32], want[32];

		snprintf(id, sizeof(id), "<auto%zu@cust.test>", i);
		snprintf(from, sizeof(from), "robot%zu@cust.test", i);
		assert_int_equal(ingest_one(f, auto_msg(id, from,
		    "Out of office", NULL, flags[i]), NOW, &r), 0);
		if (!r.created)
			fail_msg("flags %d: no ticket", flags[i]);
		ob = outbox(f);
		if (n_rows(ob, NULL, from) != 0)
			fail_msg("flags %d: %d rows queued to the robot",
			    flags[i], n_rows(ob, NULL, from));
		obox_free(&ob);
		struct evs ev = events(f, r.ticket_id);
		assert_int_equal(n_events(&ev, "created"), 1);
		const char *d = event_detail(&ev, "not_answered");
		snprintf(want, sizeof(want), "\"flags\":%d", flags[i]);
		if (strstr(d, want) == NULL)
			fail_msg("flags %d: not_answered detail %s", flags[i],
			    d);
		assert_int_equal(messages(f, r.ticket_id).n, 1);
	}
	/* A person's mail still gets its ack. */
	struct ingest_result r;
	struct obox *ob;
	assert_int_equal(ingest_one(f, mail_msg("<p@cust.test>",
	    "ada@cust.test", "Help", NULL, NULL, NULL), NOW, &r), 0);
	ob = outbox(f);
	assert_int_equal(n_rows(ob, "ack", NULL), 1);
	assert_int_equal(n_rows(ob, "ack", "ada@cust.test"), 1);
	obox_free(&ob);
	struct evs ev = events(f, r.ticket_id);
	assert_int_equal(n_events(&ev, "not_answered"), 0);
}

/* An automatic follow-up is recorded, and changes nothing. */
static void
test_mail_automatic_followup(void **state)
{
	struct fx *f = *state;
	struct ingest_result r;
	struct ticket t;
	int64_t t1, resolved = NOW + 600;
	struct obox *ob;

	assert_int_equal(ingest_one(f, mail_msg("<m1@cust.test>",
	    "ada@cust.test", "Help", NULL, NULL, NULL), NOW, &r), 0);
	t1 = r.ticket_id;

	/* Resolved: an out-of-office does not reopen it. */
	set_state(f, t1, TICKET_RESOLVED, resolved);
	assert_int_equal(ingest_one(f, auto_msg("<ooo1@cust.test>",
	    "ada@cust.test", "Re: Help", "<m1@cust.test>",
	    INBOUND_AUTO_SUBMITTED), NOW + 3600, &r), 0);
	assert_int_equal(r.created, 0);
	assert_int_equal(r.duplicate, 0);
	assert_int_equal(r.ticket_id, t1);
	assert_int_equal(store_ticket_get(f->st, t1, &t), 1);
	assert_int_equal(t.state, TICKET_RESOLVED);
	assert_int_equal(t.resolved_at, resolved);
	assert_int_equal(t.last_customer_at, NOW);
	ticket_release(&t);
	struct evs ev = events(f, t1);
	assert_int_equal(n_events(&ev, "reopened"), 0);
	assert_int_equal(n_events(&ev, "state_changed"), 0);
	assert_int_equal(n_events(&ev, "customer_replied"), 0);
	const char *d = event_detail(&ev, "auto_reply");
	assert_non_null(strstr(d, "\"flags\":1"));
	assert_non_null(strstr(d, "\"from\":\"ada@cust.test\""));
	struct msgs ms = messages(f, t1);
	assert_int_equal(ms.n, 2);	/* recorded on the ticket */
	assert_string_equal(ms.message_id[1], "<ooo1@cust.test>");
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 1);

	/* Pending: it stays pending (waiting on the customer, who has not
	 * written). */
	set_state(f, t1, TICKET_PENDING, 0);
	assert_int_equal(ingest_one(f, auto_msg("<ooo2@cust.test>",
	    "ada@cust.test", "Re: Help", "<m1@cust.test>", INBOUND_AUTO_LOOP),
	    NOW + 7200, &r), 0);
	assert_int_equal(r.ticket_id, t1);
	assert_int_equal(r.created, 0);
	assert_int_equal(store_ticket_get(f->st, t1, &t), 1);
	assert_int_equal(t.state, TICKET_PENDING);
	assert_int_equal(t.last_customer_at, NOW);
	ticket_release(&t);
	ev = events(f, t1);
	assert_int_equal(n_events(&ev, "state_changed"), 0);
	assert_int_equal(n_events(&ev, "auto_reply"), 2);

	/* List mail is a person writing through a list: it moves the
	 * ticket like any customer mail, but is never answered. */
	assert_int_equal(ingest_one(f, auto_msg("<list1@cust.test>",
	    "ada@cust.test", "Re: Help", "<m1@cust.test>", INBOUND_AUTO_LIST |
	    INBOUND_AUTO_BULK), NOW + 7300, &r), 0);
	assert_int_equal(r.ticket_id, t1);
	assert_int_equal(store_ticket_get(f->st, t1, &t), 1);
	assert_int_equal(t.state, TICKET_OPEN);
	ticket_release(&t);
	ev = events(f, t1);
	assert_int_equal(n_events(&ev, "state_changed"), 1);

	/* Nothing went back to the robot: only the first ack. */
	ob = outbox(f);
	assert_int_equal(n_rows(ob, NULL, "ada@cust.test"), 1);
	assert_int_equal(n_rows(ob, "ack", "ada@cust.test"), 1);
	obox_free(&ob);
}

/* A bounce of our mail lands on its ticket, naming the outbox row. */
static void
test_mail_bounce(void **state)
{
	struct fx *f = *state;
	struct inbound_msg *m;
	struct ingest_result r;
	struct obox *ob;
	int64_t t1, row_id;
	char ack_id[256], want[320];

	assert_int_equal(ingest_one(f, mail_msg("<m1@cust.test>",
	    "ada@cust.test", "Help", NULL, NULL, NULL), NOW, &r), 0);
	t1 = r.ticket_id;
	ob = outbox(f);
	const struct orow *ack = row_of(ob, "ack", "ada@cust.test");
	snprintf(ack_id, sizeof(ack_id), "%s", ack->identity);
	row_id = ack->id;
	obox_free(&ob);

	m = auto_msg("<dsn1@mx.cust.test>", "MAILER-DAEMON@mx.cust.test",
	    "Undelivered Mail Returned to Sender", NULL, INBOUND_AUTO_BOUNCE);
	m->bounce_of = xstrdup(ack_id);
	assert_int_equal(ingest_one(f, m, NOW + 60, &r), 0);
	assert_int_equal(r.created, 0);
	assert_int_equal(r.ticket_id, t1);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 1);

	struct evs ev = events(f, t1);
	const char *d = event_detail(&ev, "bounced");
	snprintf(want, sizeof(want), "\"outbox\":%lld", (long long)row_id);
	if (strstr(d, want) == NULL)
		fail_msg("bounced detail %s lacks %s", d, want);
	snprintf(want, sizeof(want), "\"message_id\":\"%s\"", ack_id);
	if (strstr(d, want) == NULL)
		fail_msg("bounced detail %s lacks %s", d, want);
	assert_int_equal(n_events(&ev, "auto_reply"), 0);
	assert_int_equal(n_events(&ev, "customer_replied"), 0);
	assert_int_equal(messages(f, t1).n, 2);

	/* Nobody answers a mailer daemon. */
	ob = outbox(f);
	assert_int_equal(n_rows(ob, NULL, "MAILER-DAEMON@mx.cust.test"), 0);
	assert_int_equal(n_rows(ob, "ack", NULL), 1);
	obox_free(&ob);

	/* A bounce of a mail we never sent opens a ticket, unanswered. */
	m = auto_msg("<dsn2@mx.cust.test>", "MAILER-DAEMON@mx.cust.test",
	    "Undelivered Mail Returned to Sender", NULL, INBOUND_AUTO_BOUNCE);
	m->bounce_of = xstrdup("<esc-999-1.aaaaaaaaaaaaaaaa@example.test>");
	assert_int_equal(ingest_one(f, m, NOW + 120, &r), 0);
	assert_int_equal(r.created, 1);
	assert_int_not_equal(r.ticket_id, t1);
	ev = events(f, r.ticket_id);
	assert_int_equal(n_events(&ev, "not_answered"), 1);
	ob = outbox(f);
	assert_int_equal(n_rows(ob, NULL, "MAILER-DAEMON@mx.cust.test"), 0);
	obox_free(&ob);
}

/* Mail over max_message_size: a ticket, and too_large instead of ack. */
static void
test_mail_too_large(void **state)
{
	struct fx *f = *state;
	struct inbound_msg *m;
	struct ingest_result r;
	struct obox *ob;
	int64_t t1;
	char buf[1024], tag[32];

	m = mail_msg("<big1@cust.test>", "ada@cust.test", "Logs", NULL, NULL,
	    NULL);
	m->truncated = 1;
	m->raw_size = 3 << 20;
	assert_int_equal(ingest_one(f, m, NOW, &r), 0);
	assert_int_equal(r.created, 1);
	t1 = r.ticket_id;
	/* The customer's message, and a note telling the agents it was
	 * cut (SPEC: "recorded (headers and a note)"). */
	struct msgs ms = messages(f, t1);
	assert_int_equal(ms.n, 2);
	assert_string_equal(ms.direction[0], "in");
	assert_string_equal(ms.direction[1], "note");
	assert_string_equal(ms.author[1], "escalon");
	assert_non_null(strstr(ms.body[1], "3.0 MiB"));

	ob = outbox(f);
	assert_int_equal(n_rows(ob, "ack", NULL), 0);
	assert_int_equal(n_rows(ob, "too_large", NULL), 1);
	const struct orow *tl = row_of(ob, "too_large", "ada@cust.test");
	assert_int_equal(tl->ticket_id, t1);
	assert_string_equal(tl->channel, "email");
	assert_header(tl->payload, "From", "support@example.test");
	assert_header(tl->payload, "To", "ada@cust.test");
	assert_header(tl->payload, "Auto-Submitted", "auto-replied");
	assert_non_null(header_of(tl->payload, "Subject", buf, sizeof(buf)));
	snprintf(tag, sizeof(tag), "[ESC-%lld]", (long long)t1);
	assert_non_null(strstr(buf, tag));
	assert_non_null(strstr(buf, "Logs"));
	/* The sizes, as the customer reads them. */
	assert_non_null(strstr(tl->payload, "3.0 MiB"));
	assert_non_null(strstr(tl->payload, "1.0 MiB"));
	obox_free(&ob);

	/* A follow-up too large: told again, on the same ticket. */
	m = mail_msg("<big2@cust.test>", "ada@cust.test", "Re: Logs",
	    "<big1@cust.test>", NULL, NULL);
	m->truncated = 1;
	m->raw_size = 2 << 20;
	assert_int_equal(ingest_one(f, m, NOW + 60, &r), 0);
	assert_int_equal(r.created, 0);
	assert_int_equal(r.ticket_id, t1);
	ob = outbox(f);
	assert_int_equal(n_rows(ob, "too_large", "ada@cust.test"), 2);
	assert_int_equal(n_rows(ob, "ack", NULL), 0);
	int seen = 0;
	for (int i = 0; i < ob->n; i++)
		if (strcmp(ob->r[i].template, "too_large") == 0 &&
		    strstr(ob->r[i].payload, "2.0 MiB") != NULL) {
			assert_int_equal(ob->r[i].ticket_id, t1);
			seen++;
		}
	assert_int_equal(seen, 1);
	obox_free(&ob);
	int64_t big2 = r.ticket_id;

	/* Automatic and too large: nothing at all, new or follow-up. */
	m = auto_msg("<big3@cust.test>", "robot@cust.test", "Report", NULL,
	    INBOUND_AUTO_SUBMITTED);
	m->truncated = 1;
	m->raw_size = 5 << 20;
	assert_int_equal(ingest_one(f, m, NOW + 120, &r), 0);
	assert_int_equal(r.created, 1);
	struct evs ev = events(f, r.ticket_id);
	assert_int_equal(n_events(&ev, "not_answered"), 1);
	m = auto_msg("<big4@cust.test>", "ada@cust.test", "Re: Logs",
	    "<big1@cust.test>", INBOUND_AUTO_SUBMITTED);
	m->truncated = 1;
	m->raw_size = 5 << 20;
	assert_int_equal(ingest_one(f, m, NOW + 180, &r), 0);
	assert_int_equal(r.ticket_id, t1);
	ob = outbox(f);
	assert_int_equal(n_rows(ob, NULL, "robot@cust.test"), 0);
	assert_int_equal(n_rows(ob, "too_large", NULL), 2);

	/* Each too_large answers the mail that was too large (the
	 * follow-up's first). */
	for (int i = ob->n; i-- > 0;) {
		if (strcmp(ob->r[i].template, "too_large") != 0)
			continue;
		assert_int_equal(ob->r[i].ticket_id, big2);
		assert_header(ob->r[i].payload, "In-Reply-To",
		    strstr(ob->r[i].payload, "2.0 MiB") != NULL ?
		    "<big2@cust.test>" : "<big1@cust.test>");
	}
	obox_free(&ob);
}

/* No more than max_autoreplies automatic mails an hour to one address. */
static void
test_mail_autoreply_limit(void **state)
{
	struct fx *f = *state;
	struct ingest_result r[4];
	struct obox *ob;

	conf.max_autoreplies = 2;
	for (int i = 0; i < 3; i++) {
		char id[32], subject[32];
		snprintf(id, sizeof(id), "<loop%d@cust.test>", i);
		snprintf(subject, sizeof(subject), "Question %d", i);
		assert_int_equal(ingest_one(f, mail_msg(id, "ada@cust.test",
		    subject, NULL, NULL, NULL), NOW + i, &r[i]), 0);
		assert_int_equal(r[i].created, 1);
	}
	assert_int_not_equal(r[1].ticket_id, r[0].ticket_id);
	assert_int_not_equal(r[2].ticket_id, r[1].ticket_id);

	ob = outbox(f);
	assert_int_equal(n_rows(ob, "ack", "ada@cust.test"), 2);
	for (int i = 0; i < ob->n; i++)
		if (strcmp(ob->r[i].template, "ack") == 0)
			assert_int_not_equal(ob->r[i].ticket_id,
			    r[2].ticket_id);
	/* The agents' mail is theirs: not limited by the customer's. */
	assert_int_equal(n_rows(ob, "agent_new", "alice@example.test"), 3);
	obox_free(&ob);
	for (int i = 0; i < 2; i++) {
		struct evs ev = events(f, r[i].ticket_id);
		assert_int_equal(n_events(&ev, "autoreply_suppressed"), 0);
	}
	struct evs ev = events(f, r[2].ticket_id);
	const char *d = event_detail(&ev, "autoreply_suppressed");
	assert_non_null(strstr(d, "\"template\":\"ack\""));
	assert_non_null(strstr(d, "\"to\":\"ada@cust.test\""));
	assert_non_null(strstr(d, "\"sent_last_hour\":2"));
	/* The ticket itself is whole. */
	assert_int_equal(messages(f, r[2].ticket_id).n, 1);

	/* Another sender is not held back by ada's count. */
	assert_int_equal(ingest_one(f, mail_msg("<other@cust.test>",
	    "bob@cust.test", "Question", NULL, NULL, NULL), NOW + 3, &r[3]),
	    0);
	ob = outbox(f);
	assert_int_equal(n_rows(ob, "ack", "bob@cust.test"), 1);
	obox_free(&ob);

	/* An hour after the first ack, one slot is free again. */
	assert_int_equal(ingest_one(f, mail_msg("<loop3@cust.test>",
	    "ada@cust.test", "Question 3", NULL, NULL, NULL), NOW + 3601,
	    &r[3]), 0);
	ob = outbox(f);
	assert_int_equal(n_rows(ob, "ack", "ada@cust.test"), 3);
	obox_free(&ob);
	ev = events(f, r[3].ticket_id);
	assert_int_equal(n_events(&ev, "autoreply_suppressed"), 0);
}

/* ---- attachments and the raw source ------------------------------------ */

static char *
hex_of(const unsigned char *p, size_t n)
{
	char *h = malloc(2 * n + 1);

	assert_non_null(h);
	for (size_t i = 0; i < n; i++)
		snprintf(h + 2 * i, 3, "%02X", p[i]);
	h[2 * n] = '\0';
	return h;
}

static void
add_attachment(struct inbound_msg *m, const char *name, const char *type,
    size_t size, const void *data, size_t data_len)
{
	struct inbound_attachment *a = realloc(m->attachments,
	    (m->n_attachments + 1) * sizeof(*a));

	assert_non_null(a);
	m->attachments = a;
	a = &m->attachments[m->n_attachments++];
	a->name = xstrdup(name);
	a->type = xstrdup(type);
	a->size = size;
	a->data = NULL;
	if (data != NULL) {
		a->data = malloc(data_len);
		assert_non_null(a->data);
		memcpy(a->data, data, data_len);
	}
}

static void
test_attachments_and_raw(void **state)
{
	static const unsigned char png[] = { 0x89, 'P', 'N', 'G', '\r', '\n',
	    0x00, 0x1a, 0xff };
	static const char raw[] = "From: ada@cust.test\r\nSubject: Help\r\n"
	    "\r\ntext\r\n";
	struct fx *f = *state;
	struct inbound_msg *m;
	struct ingest_result r;
	char sql[512], *hex;
	int64_t t1;

	m = mail_msg("<att1@cust.test>", "ada@cust.test", "Help", NULL, NULL,
	    NULL);
	m->raw = malloc(sizeof(raw) - 1);
	assert_non_null(m->raw);
	memcpy(m->raw, raw, sizeof(raw) - 1);
	m->raw_len = sizeof(raw) - 1;
	add_attachment(m, "shot.png", "image/png", sizeof(png), png,
	    sizeof(png));
	/* Over max_attachment_size: its name and size, no content. */
	add_attachment(m, "video.mp4", "video/mp4", 6000000, NULL, 0);
	assert_int_equal(ingest_one(f, m, NOW, &r), 0);
	assert_int_equal(r.created, 1);
	t1 = r.ticket_id;

	hex = hex_of((const unsigned char *)raw, sizeof(raw) - 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM messages WHERE "
	    "message_id = '<att1@cust.test>' AND ticket_id = %lld AND "
	    "raw = x'%s'", (long long)t1, hex);
	free(hex);
	assert_int_equal(count(f, sql), 1);

	assert_int_equal(count(f, "SELECT count(*) FROM attachments"), 2);
	/* The raw source is kept whole: the attachment is its name, type
	 * and size, not a second copy of its bytes. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM attachments a JOIN "
	    "messages m ON m.id = a.message_id WHERE m.message_id = "
	    "'<att1@cust.test>' AND a.name = 'shot.png' AND a.type = "
	    "'image/png' AND a.size = %zu AND a.content IS NULL",
	    sizeof(png));
	assert_int_equal(count(f, sql), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM attachments a JOIN "
	    "messages m ON m.id = a.message_id WHERE m.message_id = "
	    "'<att1@cust.test>' AND a.name = 'video.mp4' AND a.type = "
	    "'video/mp4' AND a.size = 6000000 AND a.content IS NULL"), 1);

	/* A follow-up's attachment is its own message's; with no raw
	 * source, its content is kept. */
	m = mail_msg("<att2@cust.test>", "ada@cust.test", "Re: Help",
	    "<att1@cust.test>", NULL, NULL);
	add_attachment(m, "log.txt", "text/plain", 3, "abc", 3);
	assert_int_equal(ingest_one(f, m, NOW + 60, &r), 0);
	assert_int_equal(r.ticket_id, t1);
	assert_int_equal(r.created, 0);
	assert_int_equal(count(f, "SELECT count(*) FROM attachments a JOIN "
	    "messages m ON m.id = a.message_id WHERE m.message_id = "
	    "'<att2@cust.test>' AND a.name = 'log.txt' AND a.size = 3 AND "
	    "a.content = x'616263'"), 1);
	/* No raw source given: none stored. */
	assert_int_equal(count(f, "SELECT count(*) FROM messages WHERE "
	    "message_id = '<att2@cust.test>' AND raw IS NULL"), 1);

	/* A duplicate stores nothing, its attachments neither. */
	m = mail_msg("<att1@cust.test>", "ada@cust.test", "Help", NULL, NULL,
	    NULL);
	add_attachment(m, "again.png", "image/png", 3, "xyz", 3);
	assert_int_equal(ingest_one(f, m, NOW + 120, &r), 0);
	assert_int_equal(r.duplicate, 1);
	assert_int_equal(count(f, "SELECT count(*) FROM attachments"), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM messages"), 2);
}

/* ---- checkpoints in batches -------------------------------------------- */

struct ck {
	struct fx *f;
	const char *source;
	int calls, seq, failed, temporary;
	int *clock;
	char seen[64];		/* the checkpoint a reader saw at callback */
};

static void
ck_cb(const struct ingest_result *r, void *arg)
{
	struct ck *c = arg;
	struct store *ro;
	char *err = NULL, *v = NULL;

	c->calls++;
	c->seq = (*c->clock)++;
	c->failed = r->failed;
	c->temporary = r->temporary;
	snprintf(c->seen, sizeof(c->seen), "(none)");
	if ((ro = store_open(c->f->path, STORE_READONLY, &err)) == NULL) {
		free(err);
		return;
	}
	if (store_checkpoint_get(ro, c->source, &v) == 1)
		snprintf(c->seen, sizeof(c->seen), "%s", v);
	free(v);
	store_close(&ro);
}

static char *
checkpoint(struct fx *f, const char *source)
{
	char *v = NULL;
	int rc = store_checkpoint_get(f->st, source, &v);

	assert_true(rc == 0 || rc == 1);
	assert_true((rc == 1) == (v != NULL));
	return v;
}

static void
test_batch_checkpoint(void **state)
{
	struct fx *f = *state;
	struct ingest_batch *b = ingest_batch_new();
	struct done d[2];
	struct ck c = { .f = f, .source = "mailbox:support" };
	int clock = 0;
	char *v;

	assert_non_null(b);
	c.clock = &clock;
	d[0] = (struct done){ .f = f, .clock = &clock };
	d[1] = (struct done){ .f = f, .clock = &clock };
	assert_int_equal(ingest_batch_add(b, mail_msg("<c1@cust.test>",
	    "ada@cust.test", "Help", NULL, NULL, NULL), done_cb, &d[0]), 0);
	assert_int_equal(ingest_batch_checkpoint(b, "mailbox:support",
	    "1700000000/41", ck_cb, &c), 0);
	assert_int_equal(ingest_batch_add(b, mail_msg("<c2@cust.test>",
	    "bob@cust.test", "Help", NULL, NULL, NULL), done_cb, &d[1]), 0);
	assert_int_equal(ingest_batch_len(b), 3);
	assert_int_equal(c.calls, 0);
	assert_null(checkpoint(f, "mailbox:support"));

	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.failed, 0);
	assert_int_equal(c.temporary, 0);
	/* After the commit, in item order, with the messages before it. */
	assert_string_equal(c.seen, "1700000000/41");
	assert_int_equal(d[0].seq, 0);
	assert_int_equal(c.seq, 1);
	assert_int_equal(d[1].seq, 2);
	assert_true(d[0].visible);
	assert_true(d[1].visible);
	v = checkpoint(f, "mailbox:support");
	assert_non_null(v);
	assert_string_equal(v, "1700000000/41");
	free(v);
	assert_int_equal(count(f, "SELECT count(*) FROM checkpoints WHERE "
	    "source = 'mailbox:support' AND value = '1700000000/41' AND "
	    "updated_at = 1796117400"), 1);
	assert_null(checkpoint(f, "mailbox:other"));

	/* A later checkpoint replaces it; a batch of a checkpoint alone
	 * commits too; other sources keep theirs. */
	c.calls = 0;
	assert_int_equal(ingest_batch_checkpoint(b, "mailbox:support",
	    "1700000000/42", ck_cb, &c), 0);
	assert_int_equal(ingest_batch_checkpoint(b, "mailbox:other", "7/1",
	    NULL, NULL), 0);
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW + 60), 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.failed, 0);
	assert_string_equal(c.seen, "1700000000/42");
	v = checkpoint(f, "mailbox:support");
	assert_string_equal(v, "1700000000/42");
	free(v);
	v = checkpoint(f, "mailbox:other");
	assert_string_equal(v, "7/1");
	free(v);
	assert_int_equal(count(f, "SELECT count(*) FROM checkpoints"), 2);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 2);
	ingest_batch_free(&b);
}

/* A batch that cannot commit stores no checkpoint, and says so. Takes the
 * store's busy timeout (5 s), as test_batch_store_busy. */
static void
test_batch_checkpoint_store_busy(void **state)
{
	struct fx *f = *state;
	struct ingest_batch *b = ingest_batch_new();
	struct done d = { .f = f };
	struct ck c = { .f = f, .source = "mailbox:support" };
	sqlite3 *db = NULL;
	int clock = 0;
	char *v;

	assert_non_null(b);
	c.clock = d.clock = &clock;
	assert_int_equal(ingest_batch_checkpoint(b, "mailbox:support", "1/1",
	    NULL, NULL), 0);
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW), 0);

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(ingest_batch_add(b, mail_msg("<c1@cust.test>",
	    "ada@cust.test", "Help", NULL, NULL, NULL), done_cb, &d), 0);
	assert_int_equal(ingest_batch_checkpoint(b, "mailbox:support", "1/2",
	    ck_cb, &c), 0);
	assert_int_equal(ingest_batch_commit(b, f->st, env, NOW + 60), -1);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);

	assert_int_equal(c.calls, 1);
	assert_int_equal(c.failed, 1);
	assert_int_equal(c.temporary, 1);
	assert_string_equal(c.seen, "1/1");
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.r.failed, 1);
	assert_int_equal(ingest_batch_len(b), 0);
	v = checkpoint(f, "mailbox:support");
	assert_non_null(v);
	assert_string_equal(v, "1/1");
	free(v);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 0);
	ingest_batch_free(&b);
}

/* ---- real-world mail: threading and dedupe over the shared corpus ------ */

/*
 * The corpus (../shared/corpus/mail from the repository root, or
 * $ESCALON_CORPUS; both tests skip when it is absent) holds 213 mails that
 * nobody on the project wrote. INDEX.tsv names each file (column 1) and,
 * for the mails of one real conversation, the conversation (column 5).
 *
 * Each conversation goes, normalised by mime_normalize as the mailbox
 * child would, into a fresh store in Date order: that is the order the
 * mails were sent and a mailbox receives them, and not the order of the
 * files (nm-maildir's 001 is the newest reply, its root is 005; in file
 * order each reply would arrive before the mails it names, and the
 * conversation would open five tickets). A mail whose In-Reply-To or
 * References names an earlier mail of its conversation must land on that
 * mail's ticket (SPEC.md "Ticket"); one that names none opens a ticket.
 * corpus_threads says how many tickets each conversation opens, and why:
 * a conversation whose mails do not name each other opens more than one,
 * and none in this corpus does.
 */

static const struct mime_limits corpus_limits = {
	.max_message_size = 10 * 1024 * 1024,
	.max_attachment_size = 5 * 1024 * 1024,
	.own_address = "support@example.test",
};

static const struct {
	const char *thread;
	int tickets;
} corpus_threads[] = {
	/* notmuch's ghost-root corpus: the References root, RT's
	 * <RT-Ticket-33575@...>, was never a mail; the customer's "FYI" (017)
	 * is here, and RT's AutoReply to it (018) names it in In-Reply-To
	 * and References. */
	{ "nm-ghost-root", 1 },
	/* Ghost root: the patch everyone answers
	 * (<20100308191005.GE4324@amak.tundra.com>) is missing from the
	 * corpus. Its first reply present (019) opens the ticket; each later
	 * mail names 019 in References, so all nine stay on it. */
	{ "lkml-powerpc", 1 },
	/* A patch and the replies to it, all naming the patch. */
	{ "lkml-netdev-bug", 1 },
	{ "nm-macosx", 1 },
	/* 006 and 007 carry In-Reply-To with trailing junk ("<id> (Lars
	 * Kellogg-Stedman's message of ...)"); the id still threads. */
	{ "nm-maildir", 1 },
	/* PATCH 2/2 (009) has a subject of its own but replies to 1/2:
	 * git send-email's In-Reply-To keeps the series on one ticket. */
	{ "nm-patch-close", 1 },
};

/* The tickets corpus_threads wants of thread; -1 when it is not there. */
static int
corpus_threads_want(const char *thread)
{
	for (size_t k = 0; k < sizeof(corpus_threads) /
	    sizeof(*corpus_threads); k++)
		if (strcmp(corpus_threads[k].thread, thread) == 0)
			return corpus_threads[k].tickets;
	return -1;
}

/* The corpus folder, or NULL (said on stdout) when this checkout has
 * none. */
static const char *
corpus_dir(void)
{
	const char *dir = test_corpus_dir();

	if (dir == NULL)
		print_message("no corpus: skipped\n");
	return dir;
}


/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/*
 * The Date header of raw[0..len) in seconds since the epoch: RFC 5322
 * "[Day,] DD Mon YYYY HH:MM[:SS] +HHMM", a zone name counting as UTC.
 * 0 when there is none or it does not parse.
 */
static int64_t
mail_date(const char *raw, size_t len)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = raw, *end = raw + len;
	char line[160], mon[4];
	int d, y, hh, mm, ss = 0, used = 0, zone = 0;

	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);
		if (p >= end || n == 0 || (n == 1 && p[0] == '\r'))
			return 0;
		if (n > 5 && strncasecmp(p, "Date:", 5) == 0) {
			snprintf(line, sizeof(line), "%.*s", (int)n - 5, p + 5);
			break;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	const char *s = line + strspn(line, " \t");
	if (strchr(s, ',') != NULL)
		s = strchr(s, ',') + 1;
	if (sscanf(s, "%d %3s %d %d:%d%n", &d, mon, &y, &hh, &mm, &used) != 5)
		return 0;
	s += used;
	if (*s == ':' && sscanf(s + 1, "%d%n", &ss, &used) == 1)
		s += 1 + used;
	s += strspn(s, " \t");
	if ((*s == '+' || *s == '-') && strspn(s + 1, "0123456789") >= 4) {
		zone = ((s[1] - '0') * 10 + (s[2] - '0')) * 3600 +
		    ((s[3] - '0') * 10 + (s[4] - '0')) * 60;
		if (*s == '-')
			zone = -zone;
	}
	const char *m = strstr(months, mon);
	if (strlen(mon) != 3 || m == NULL || (m - months) % 3 != 0)
		return 0;
	if (y < 50)
		y += 2000;
	else if (y < 1000)
		y += 1900;
	return days_from_civil(y, (int)(m - months) / 3 + 1, d) * DAY +
	    hh * 3600 + mm * 60 + ss - zone;
}

/* INDEX.tsv as rows: file (column 1) and thread (column 5, "" when the
 * mail belongs to no conversation). */
struct corpus_row {
	char *file, *thread;
};

static struct corpus_row *
corpus_index(const char *dir, size_t *n_r)
{
	char path[PATH_MAX], *text, *line, *save = NULL;
	struct corpus_row *rows = NULL;
	size_t len, n = 0;

	snprintf(path, sizeof(path), "%s/INDEX.tsv", dir);
	text = test_read_file(path, &len);
	if (text == NULL)
		fail_msg("%s: cannot read it", path);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *col[6] = { NULL };
		int c = 0;
		if (strncmp(line, "file\t", 5) == 0)
			continue;	/* the heading */
		for (char *q = line; c < 6 && q != NULL; c++) {
			col[c] = q;
			if ((q = strchr(q, '\t')) != NULL)
				*q++ = '\0';
		}
		if (c < 5)
			fail_msg("%s: row \"%s\" has %d columns", path, line,
			    c);
		rows = realloc(rows, (n + 1) * sizeof(*rows));
		assert_non_null(rows);
		rows[n].file = xstrdup(col[0]);
		rows[n].thread = xstrdup(col[4]);
		n++;
	}
	free(text);
	*n_r = n;
	return rows;
}

static void
corpus_index_free(struct corpus_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].file);
		free(rows[i].thread);
	}
	free(rows);
}

/* One corpus mail as the mailbox child hands it over from mailbox
 * "support": normalised, with its source, queue and arrival. */
static struct inbound_msg *
corpus_mail(const char *dir, const char *file, int64_t *date_r)
{
	char path[PATH_MAX], err[200] = "", *raw;
	struct inbound_msg *m = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((raw = test_read_file(path, &len)) == NULL)
		fail_msg("%s: cannot read it", path);
	if (mime_normalize(raw, len, &corpus_limits, &m, err,
	    sizeof(err)) < 0)
		fail_msg("%s: mime_normalize: %s", file, err);
	*date_r = mail_date(raw, len);
	free(raw);
	free(m->source);
	free(m->queue);
	m->source = xstrdup("mailbox:support");
	m->queue = xstrdup("general");
	m->received_at = *date_r != 0 ? *date_r : NOW;
	return m;
}

struct thread_mail {
	const char *file;	/* borrowed from the index */
	size_t order;		/* in INDEX.tsv */
	int64_t date;		/* Date:, 0 when none */
	struct inbound_msg *m;	/* until ingested */
	char *message_id, *from;
	int64_t ticket;		/* where it landed */
};

static int
by_date(const void *a, const void *b)
{
	const struct thread_mail *x = a, *y = b;

	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The newest earlier mail of the thread (before index i) that m names, as
 * ingest looks them up (In-Reply-To, then References from the last); -1
 * when it names none. */
static int
names_earlier(const struct thread_mail *tm, size_t i,
    const struct inbound_msg *m)
{
	for (size_t k = 0; k <= m->n_references; k++) {
		const char *ref = k == 0 ? m->in_reply_to :
		    m->references[m->n_references - k];
		if (ref == NULL)
			continue;
		for (size_t j = 0; j < i; j++)
			if (tm[j].message_id != NULL &&
			    strcmp(tm[j].message_id, ref) == 0)
				return (int)j;
	}
	return -1;
}

struct corpus_run {
	int reply_each;		/* in: then answer every mail, see below */
	size_t threads, mails;	/* out: the totals */
	int64_t tickets;
	size_t misthreaded;	/* out: answers that missed their ticket */
};

/*
 * The conversation `thread` of the index, in Date order, on a fresh store,
 * counted into *run. With run->reply_each, the first mail's sender then
 * answers each mail of the conversation in turn, naming it in In-Reply-To
 * alone (a client that writes no References, or one that trimmed a long
 * References list): the ticket knows that Message-ID, so the answer must
 * land on the mail's ticket. Each miss is said on stderr and counted.
 */
static void
corpus_thread(const char *dir, const char *thread,
    const struct corpus_row *rows, size_t n_rows, struct corpus_run *run)
{
	struct thread_mail *tm = calloc(n_rows, sizeof(*tm));
	struct ingest_result r;
	void *state = NULL;
	struct fx *tf;
	size_t n = 0;
	int64_t tickets = 0;

	assert_non_null(tm);
	for (size_t i = 0; i < n_rows; i++) {
		if (strcmp(rows[i].thread, thread) != 0)
			continue;
		tm[n].file = rows[i].file;
		tm[n].order = i;
		tm[n].m = corpus_mail(dir, rows[i].file, &tm[n].date);
		if (tm[n].date == 0)
			fail_msg("%s: no Date to order it by", rows[i].file);
		tm[n].message_id = xstrdup(tm[n].m->message_id);
		tm[n].from = xstrdup(tm[n].m->from_address);
		n++;
	}
	assert_true(n > 0);
	qsort(tm, n, sizeof(*tm), by_date);
	assert_int_equal(fx_setup_store(&state, "escalon-test-corpus"), 0);
	tf = state;
	for (size_t i = 0; i < n; i++) {
		struct inbound_msg *m = tm[i].m;
		int parent = names_earlier(tm, i, m);

		tm[i].m = NULL;
		if (ingest_one(tf, m, tm[i].date, &r) < 0)
			fail_msg("%s %s: %s", thread, tm[i].file, r.error);
		tm[i].ticket = r.ticket_id;
		if (parent >= 0 && (r.created || r.duplicate ||
		    r.ticket_id != tm[parent].ticket))
			fail_msg("%s %s: ticket %lld (created=%d duplicate=%d),"
			    " want %lld, where %s (%s) is", thread, tm[i].file,
			    (long long)r.ticket_id, r.created, r.duplicate,
			    (long long)tm[parent].ticket, tm[parent].file,
			    tm[parent].message_id);
		if (parent < 0 && !r.created)
			fail_msg("%s %s: names no earlier mail, yet ticket "
			    "%lld (duplicate=%d), want a new one", thread,
			    tm[i].file, (long long)r.ticket_id, r.duplicate);
		tickets += r.created;
	}
	/* Every mail is a message of its ticket, and nothing else is. */
	assert_int_equal(count(tf, "SELECT count(*) FROM tickets"), tickets);
	assert_int_equal(count(tf, "SELECT count(*) FROM messages WHERE "
	    "direction = 'in'"), n);
	for (size_t i = 0; run->reply_each && i < n; i++) {
		char id[64];

		snprintf(id, sizeof(id), "<answer-%zu@cust.test>", i);
		if (ingest_one(tf, mail_msg(id, tm[0].from, "Re: the thread",
		    tm[i].message_id, NULL, NULL), tm[n - 1].date + 60,
		    &r) < 0)
			fail_msg("%s answer to %s: %s", thread, tm[i].file,
			    r.error);
		if (r.created || r.ticket_id != tm[i].ticket) {
			print_error("%s: an answer to %s (%s) went to %s"
			    "ticket %lld, want ticket %lld\n", thread,
			    tm[i].file, tm[i].message_id, r.created ?
			    "a new " : "", (long long)r.ticket_id,
			    (long long)tm[i].ticket);
			run->misthreaded++;
		}
	}
	fx_teardown(&state);
	for (size_t i = 0; i < n; i++) {
		free(tm[i].message_id);
		free(tm[i].from);
	}
	free(tm);
	run->threads++;
	run->mails += n;
	run->tickets += tickets;
	if (tickets != corpus_threads_want(thread))
		fail_msg("thread %s: %lld tickets, want %d", thread,
		    (long long)tickets, corpus_threads_want(thread));
}

/* Every conversation of the index through corpus_thread; false when there
 * is no corpus. */
static int
corpus_threads_run(struct corpus_run *run)
{
	const char *dir = corpus_dir();
	struct corpus_row *rows;
	size_t n_rows, n_known = sizeof(corpus_threads) /
	    sizeof(*corpus_threads);
	int seen[sizeof(corpus_threads) / sizeof(*corpus_threads)] = { 0 };

	if (dir == NULL)
		return 0;
	rows = corpus_index(dir, &n_rows);
	for (size_t i = 0; i < n_rows; i++) {
		const char *thread = rows[i].thread;
		size_t k;

		if (thread[0] == '\0')
			continue;
		for (k = 0; k < n_known; k++)
			if (strcmp(corpus_threads[k].thread, thread) == 0)
				break;
		if (k == n_known)
			fail_msg("thread %s of INDEX.tsv: not in "
			    "corpus_threads, say what it should do", thread);
		if (!seen[k]++)		/* all its mails at its first row */
			corpus_thread(dir, thread, rows, n_rows, run);
	}
	for (size_t k = 0; k < n_known; k++)
		if (!seen[k])
			fail_msg("corpus_threads names %s, INDEX.tsv does not",
			    corpus_threads[k].thread);
	corpus_index_free(rows, n_rows);
	return 1;
}

static void
test_corpus_threading(void **state)
{
	struct corpus_run run = { .reply_each = 0 };

	(void)state;
	if (!corpus_threads_run(&run))
		skip();
	fprintf(stderr, "corpus threading: %zu threads, %zu mails, %lld "
	    "tickets\n", run.threads, run.mails, (long long)run.tickets);
}

/*
 * SPEC.md "Ticket": a mail threads when its In-Reply-To names a
 * Message-ID the ticket knows, and a ticket knows every mail stored on it,
 * list and automatic mail included (the lkml conversations came through
 * a mailing list: Precedence: list and List-Id on every mail).
 */
static void
test_corpus_reply_to_any_mail(void **state)
{
	struct corpus_run run = { .reply_each = 1 };

	(void)state;
	if (!corpus_threads_run(&run))
		skip();
	if (run.misthreaded > 0)
		fail_msg("%zu of %zu answers to a mail of a conversation "
		    "opened a new ticket", run.misthreaded, run.mails);
}

/*
 * The whole corpus into one store, in file order: every mail is stored
 * (a Message-ID seen in an earlier file is that mail again: duplicate),
 * and a second pass, as after an IMAP UIDVALIDITY resync, writes nothing.
 */
static void
test_corpus_replay(void **state)
{
	struct fx *f = *state;
	const char *dir = corpus_dir();
	struct corpus_row *idx;
	struct ingest_result r;
	struct rows before, after;
	char **keys;
	size_t n, created = 0, followups = 0, dups = 0, want_dups = 0;
	int64_t outbox_rows, date;

	if (dir == NULL)
		skip();
	idx = corpus_index(dir, &n);
	assert_true(n > 0);
	keys = calloc(n, sizeof(*keys));
	assert_non_null(keys);
	for (size_t i = 0; i < n; i++) {
		struct inbound_msg *m = corpus_mail(dir, idx[i].file, &date);

		assert_non_null(m->dedupe_key);
		keys[i] = xstrdup(m->dedupe_key);
		for (size_t j = 0; j < i; j++)
			if (strcmp(keys[j], keys[i]) == 0) {
				want_dups++;
				break;
			}
		if (ingest_one(f, m, NOW + (int64_t)i, &r) < 0)
			fail_msg("%s: %s", idx[i].file, r.error);
		created += r.created;
		dups += r.duplicate;
		followups += !r.created && !r.duplicate;
	}
	assert_int_equal(dups, want_dups);
	before = rows(f);
	outbox_rows = count(f, "SELECT count(*) FROM outbox");
	for (size_t i = 0; i < n; i++) {
		struct inbound_msg *m = corpus_mail(dir, idx[i].file, &date);

		if (ingest_one(f, m, NOW + DAY + (int64_t)i, &r) < 0)
			fail_msg("%s again: %s", idx[i].file, r.error);
		if (!r.duplicate || r.created)
			fail_msg("%s again: duplicate=%d created=%d ticket "
			    "%lld", idx[i].file, r.duplicate, r.created,
			    (long long)r.ticket_id);
	}
	after = rows(f);
	assert_rows(after, before);
	assert_int_equal(count(f, "SELECT count(*) FROM outbox"), outbox_rows);
	assert_int_equal(before.tickets, created);
	fprintf(stderr, "corpus replay: %zu mails, %zu tickets, %zu "
	    "follow-ups, %zu duplicates; again: nothing new\n", n, created,
	    followups, dups);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	corpus_index_free(idx, n);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)
#define TM(f) cmocka_unit_test_setup_teardown(f, setup_mail, teardown_mail)

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
		TM(test_mail_ack),
		TM(test_mail_ack_from_smtp),
		TM(test_mail_no_secret_no_mail),
		TM(test_mail_automatic_not_answered),
		TM(test_mail_automatic_followup),
		TM(test_mail_bounce),
		TM(test_mail_too_large),
		TM(test_mail_autoreply_limit),
		T(test_attachments_and_raw),
		T(test_batch_checkpoint),
		T(test_batch_checkpoint_store_busy),
		TM(test_corpus_threading),
		TM(test_corpus_reply_to_any_mail),
		TM(test_corpus_replay),
	};

	/* Quiet the per-item info and warn lines; errors still show. */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, load_templates, free_templates);
}
