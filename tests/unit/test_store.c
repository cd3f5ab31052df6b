/*
 * test_store: the SQLite store on a real file in a temporary folder.
 *
 * The test pokes the file through <sqlite3.h> where it must see what the
 * store's interface hides: user_version, triggers, raw counts.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "store.h"
#include "ticket.h"

#include "testutil.h"

#define NOW INT64_C(1796117400)	/* 2026-12-01T09:30:00Z */

/* ---- fixtures ---------------------------------------------------------- */

static struct store *
open_or_fail(const char *path, unsigned flags)
{
	char *err = NULL;
	struct store *st = store_open(path, flags, &err);

	if (st == NULL)
		fail_msg("store_open %s: %s", path, err ? err : "(no error)");
	assert_null(err);
	return st;
}

/* A fresh folder; the store is not opened (tests of opening itself). */
static int
setup_dir(void **state)
{
	return fx_setup_dir(state, "escalon-test-store");
}

/* A fresh folder with a new store open in it. */
static int
setup_store(void **state)
{
	struct fx *f;

	if (setup_dir(state) < 0)
		return -1;
	f = *state;
	f->st = open_or_fail(f->path, 0);
	return 0;
}

/* ---- raw SQLite helpers ------------------------------------------------ */

/* Read-write, created when missing: raw_exec also makes plain SQLite
 * files the store has never seen. */
static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int64_t
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int64_t
file_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	int64_t v = raw_int(db, sql);

	sqlite3_close(db);
	return v;
}

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

/* ---- ticket helpers ---------------------------------------------------- */

static int64_t
customer(struct store *st, const char *scope, const char *address,
    const char *name)
{
	int64_t id = 0;

	assert_int_equal(store_customer_identify(st, "webhook", scope, address,
	    name, NULL, NOW, &id), 0);
	assert_true(id > 0);
	return id;
}

/* A minimal valid ticket of customer (webhook:shop, address). */
static int64_t
add_ticket(struct store *st, const char *address, enum ticket_state state,
    const char *queue, int level)
{
	struct ticket t = fx_ticket(address, "subject", NOW);

	t.state = state;
	t.queue = (char *)queue;
	t.level = level;
	t.customer_id = customer(st, "webhook:shop", address, NULL);
	if (store_ticket_insert(st, &t) < 0)
		fail_msg("ticket insert: %s", store_error(st));
	assert_true(t.id > 0);
	return t.id;
}

/* ---- opening ----------------------------------------------------------- */

static void
test_create_new(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];
	struct stat sb;
	int64_t n = -1;
	int v;

	/* The folder of the store is made when missing. */
	snprintf(path, sizeof(path), "%s/var/escalon.db", f->dir);
	assert_int_equal(stat(path, &sb), -1);
	f->st = open_or_fail(path, 0);
	assert_int_equal(stat(path, &sb), 0);

	v = store_schema_version(f->st);
	assert_true(v >= 1);
	assert_int_equal(store_ticket_count(f->st, &n), 0);
	assert_int_equal(n, 0);
	store_close(&f->st);
	assert_null(f->st);
	store_close(&f->st);	/* closing NULL is harmless */

	/* The file says the same, and it is in WAL mode for readers. */
	assert_int_equal(file_int(path, "PRAGMA user_version"), v);
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void
test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	char *value = NULL;
	int64_t id, n = 0;
	int v;

	v = store_schema_version(f->st);
	id = add_ticket(f->st, "c1", TICKET_OPEN, "general", 1);
	assert_int_equal(store_checkpoint_set(f->st, "mailbox:support",
	    "7:42", NOW), 0);
	store_close(&f->st);

	/* Reopen: no migration runs again (it would fail on existing
	 * tables), the version stands and the data is there. */
	f->st = open_or_fail(f->path, 0);
	assert_int_equal(store_schema_version(f->st), v);
	assert_int_equal(store_ticket_count(f->st, &n), 0);
	assert_int_equal(n, 1);
	struct ticket t;
	assert_int_equal(store_ticket_get(f->st, id, &t), 1);
	assert_string_equal(t.customer_address, "c1");
	ticket_release(&t);
	assert_int_equal(store_checkpoint_get(f->st, "mailbox:support",
	    &value), 1);
	assert_string_equal(value, "7:42");
	free(value);
	store_close(&f->st);

	assert_int_equal(file_int(f->path, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name = 'tickets'"), 1);
	assert_int_equal(file_int(f->path, "PRAGMA user_version"), v);
}

static void
test_readonly_missing(void **state)
{
	struct fx *f = *state;
	char *err = NULL;
	struct stat sb;

	assert_null(store_open(f->path, STORE_READONLY, &err));
	assert_non_null(err);
	/* The message names the store. */
	assert_non_null(strstr(err, f->path));
	free(err);
	/* A read-only open creates nothing. */
	assert_int_equal(stat(f->path, &sb), -1);
	assert_int_equal(errno, ENOENT);
}

/* An SQLite file that was never migrated (user_version 0). */
static void
test_readonly_unmigrated(void **state)
{
	struct fx *f = *state;
	char *err = NULL;

	raw_exec(f->path, "CREATE TABLE unrelated (x)");
	assert_null(store_open(f->path, STORE_READONLY, &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "schema version 0"));
	free(err);
	/* Nothing was migrated behind the reader's back. */
	assert_int_equal(file_int(f->path, "PRAGMA user_version"), 0);
}

static void
test_readonly_reads_not_writes(void **state)
{
	struct fx *f = *state;
	struct store *ro;
	char *value = NULL;
	int64_t n = 0;

	add_ticket(f->st, "c1", TICKET_NEW, "general", 1);
	assert_int_equal(store_checkpoint_set(f->st, "src", "v", NOW), 0);

	/* Alongside the writer, as the CLI runs next to the gateway. */
	ro = open_or_fail(f->path, STORE_READONLY);
	assert_int_equal(store_schema_version(ro),
	    store_schema_version(f->st));
	assert_int_equal(store_ticket_count(ro, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_checkpoint_get(ro, "src", &value), 1);
	assert_string_equal(value, "v");
	free(value);

	assert_int_equal(store_checkpoint_set(ro, "src", "w", NOW), -1);
	assert_true(strlen(store_error(ro)) > 0);
	assert_int_equal(store_error_is_full(ro), 1);	/* read-only */
	store_close(&ro);
}

static void
test_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	char sql[64], *err = NULL;
	int v;

	v = store_schema_version(f->st);
	store_close(&f->st);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
	raw_exec(f->path, sql);

	assert_null(store_open(f->path, 0, &err));
	assert_non_null(err);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "newer"));
	free(err);
	/* Refused, not touched. */
	assert_int_equal(file_int(f->path, "PRAGMA user_version"), v + 1);
}

/*
 * A read-only open of a newer store must say that the store is newer, not
 * "run the gateway once to migrate": the gateway refuses it too.
 */
static void
test_newer_schema_refused_readonly(void **state)
{
	struct fx *f = *state;
	char sql[64], *err = NULL;
	int v;

	v = store_schema_version(f->st);
	store_close(&f->st);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
	raw_exec(f->path, sql);

	assert_null(store_open(f->path, STORE_READONLY, &err));
	assert_non_null(err);
	if (strstr(err, "newer") == NULL) {
		char msg[600];
		snprintf(msg, sizeof(msg), "%s", err);
		free(err);
		fail_msg("read-only open of a newer store says: %s", msg);
	}
	free(err);
}

/* ---- customers --------------------------------------------------------- */

static void
test_customer_identify(void **state)
{
	struct fx *f = *state;
	int64_t a, a2, b, c, d;

	a = customer(f->st, "webhook:shop", "c-1", "Ada");
	a2 = customer(f->st, "webhook:shop", "c-1", NULL);
	b = customer(f->st, "webhook:crm", "c-1", "Ada");	/* other hook */
	c = customer(f->st, "webhook:shop", "c-2", "Ada");	/* other id */
	d = customer(f->st, "email", "c-1", NULL);
	assert_int_equal(a, a2);
	assert_int_not_equal(a, b);
	assert_int_not_equal(a, c);
	assert_int_not_equal(b, c);
	assert_int_not_equal(a, d);
	assert_int_equal(file_int(f->path, "SELECT count(*) FROM identities"),
	    4);
}

/* A name learnt later fills a gap; it never overwrites one. */
static void
test_customer_name_fills_gap(void **state)
{
	struct fx *f = *state;
	struct ticket t;
	int64_t id, cid;

	id = add_ticket(f->st, "c-9", TICKET_NEW, "general", 1);
	assert_int_equal(store_ticket_get(f->st, id, &t), 1);
	/* No name yet: the address stands in. */
	assert_string_equal(t.customer_name, "c-9");
	cid = t.customer_id;
	ticket_release(&t);

	assert_int_equal(customer(f->st, "webhook:shop", "c-9", "Ada"), cid);
	assert_int_equal(store_ticket_get(f->st, id, &t), 1);
	assert_string_equal(t.customer_name, "Ada");
	ticket_release(&t);

	assert_int_equal(customer(f->st, "webhook:shop", "c-9", "Eve"), cid);
	assert_int_equal(store_ticket_get(f->st, id, &t), 1);
	assert_string_equal(t.customer_name, "Ada");
	ticket_release(&t);
}

/* ---- tickets ----------------------------------------------------------- */

#define STR_FIELDS(X) X(severity) X(queue) X(team) X(sla) X(ladder) \
	X(channel) X(source) X(customer_scope) X(customer_address) \
	X(subject) X(reply_url) X(assignee) X(root_cause)
#define INT_FIELDS(X) X(id) X(level) X(customer_id) X(linked_to) \
	X(created_at) X(updated_at) X(first_response_at) \
	X(last_customer_at) X(resolved_at) X(closed_at) \
	X(due_first_response) X(due_next_update) X(due_resolution) \
	X(next_due_at)

static void
assert_ticket_equal(const struct ticket *got, const struct ticket *want)
{
#define CMP_STR(f) \
	if ((got->f == NULL) != (want->f == NULL) || (got->f != NULL && \
	    strcmp(got->f, want->f) != 0)) \
		fail_msg(#f ": got %s, want %s", got->f ? got->f : "NULL", \
		    want->f ? want->f : "NULL");
#define CMP_INT(f) \
	if ((int64_t)got->f != (int64_t)want->f) \
		fail_msg(#f ": got %lld, want %lld", (long long)got->f, \
		    (long long)want->f);
	STR_FIELDS(CMP_STR)
	INT_FIELDS(CMP_INT)
#undef CMP_STR
#undef CMP_INT
	assert_int_equal(got->state, want->state);
}

static void
test_ticket_round_trip(void **state)
{
	struct fx *f = *state;
	int64_t older = add_ticket(f->st, "c-0", TICKET_CLOSED, "general", 1);
	struct ticket want = {
		.state = TICKET_PENDING,
		.severity = "high",
		.queue = "billing",
		.team = "tier2",
		.sla = "urgent",
		.ladder = "default",
		.level = 2,
		.channel = "webhook",
		.source = "webhook:shop",
		.customer_scope = "webhook:shop",
		.customer_name = "Ada Lovelace",
		.customer_address = "c-1",
		.subject = "Refund \xc3\xa9 please",
		.reply_url = "https://shop.test/hook",
		.assignee = "alice",
		.root_cause = "bad deploy",
		.linked_to = older,
		.created_at = NOW,
		.updated_at = NOW + 1,
		.first_response_at = NOW + 2,
		.last_customer_at = NOW + 3,
		.resolved_at = NOW + 4,
		.closed_at = NOW + 5,
		.due_first_response = NOW + 6,
		.due_next_update = NOW + 7,
		.due_resolution = NOW + 8,
		.next_due_at = NOW + 9,
	}, got;

	want.customer_id = customer(f->st, "webhook:shop", "c-1",
	    "Ada Lovelace");
	assert_int_equal(store_ticket_insert(f->st, &want), 0);
	assert_true(want.id > older);
	assert_int_equal(store_ticket_get(f->st, want.id, &got), 1);
	assert_ticket_equal(&got, &want);
	assert_string_equal(got.customer_name, "Ada Lovelace");
	ticket_release(&got);
	assert_null(got.severity);	/* ticket_release clears */

	/* Every mutable field changes. */
	int64_t other = add_ticket(f->st, "c-2", TICKET_NEW, "general", 1);
	struct ticket upd = want;
	upd.state = TICKET_RESOLVED;
	upd.severity = "critical";
	upd.queue = "incidents";
	upd.team = "managers";
	upd.sla = "standard";
	upd.ladder = "other";
	upd.level = 3;
	upd.subject = "Changed";
	upd.reply_url = "http://elsewhere.test/";
	upd.assignee = "bob";
	upd.root_cause = "cosmic rays";
	upd.linked_to = other;
	for (int64_t *p = &upd.updated_at; p <= &upd.next_due_at; p++)
		*p += 1000;
	assert_int_equal(store_ticket_update(f->st, &upd), 0);
	assert_int_equal(store_ticket_get(f->st, want.id, &got), 1);
	assert_ticket_equal(&got, &upd);
	ticket_release(&got);

	/* And back to unset: NULL strings, zero instants and links. */
	upd.state = TICKET_NEW;
	upd.reply_url = upd.assignee = upd.root_cause = NULL;
	upd.team = upd.sla = upd.ladder = NULL;
	upd.linked_to = 0;
	for (int64_t *p = &upd.first_response_at; p <= &upd.next_due_at; p++)
		*p = 0;
	assert_int_equal(store_ticket_update(f->st, &upd), 0);
	assert_int_equal(store_ticket_get(f->st, want.id, &got), 1);
	assert_ticket_equal(&got, &upd);
	ticket_release(&got);
}

static void
test_ticket_states_round_trip(void **state)
{
	struct fx *f = *state;

	for (int s = TICKET_NEW; s <= TICKET_CLOSED; s++) {
		struct ticket t;
		int64_t id = add_ticket(f->st, "c", (enum ticket_state)s,
		    "general", 1);
		assert_int_equal(store_ticket_get(f->st, id, &t), 1);
		assert_int_equal(t.state, s);
		ticket_release(&t);
	}
}

static void
test_ticket_get_missing(void **state)
{
	struct fx *f = *state;
	struct ticket t;

	assert_int_equal(store_ticket_get(f->st, 12345, &t), 0);
	assert_null(t.subject);
	ticket_release(&t);
}

static void
test_ticket_insert_refused(void **state)
{
	struct fx *f = *state;
	struct ticket good = {
		.state = TICKET_NEW, .severity = "normal", .queue = "general",
		.level = 1, .channel = "webhook", .source = "webhook:shop",
		.customer_scope = "webhook:shop", .customer_address = "c",
		.subject = "s", .created_at = NOW, .updated_at = NOW,
	};
	struct ticket t;
	int64_t n = -1;

	good.customer_id = customer(f->st, "webhook:shop", "c", NULL);

	/* An identity nobody identified. */
	t = good;
	t.customer_address = "nobody";
	assert_int_equal(store_ticket_insert(f->st, &t), -1);
	assert_non_null(strstr(store_error(f->st), "insert ticket"));
	/* Values the schema does not allow. */
	t = good;
	t.severity = "urgent";
	assert_int_equal(store_ticket_insert(f->st, &t), -1);
	t = good;
	t.channel = "fax";
	assert_int_equal(store_ticket_insert(f->st, &t), -1);
	t = good;
	t.linked_to = 999;	/* no such ticket */
	assert_int_equal(store_ticket_insert(f->st, &t), -1);

	assert_int_equal(store_ticket_count(f->st, &n), 0);
	assert_int_equal(n, 0);
	/* The store still works after refusals. */
	t = good;
	assert_int_equal(store_ticket_insert(f->st, &t), 0);
}

static void
test_ticket_open_for(void **state)
{
	struct fx *f = *state;
	int64_t id = 0, a, b, r;

	assert_int_equal(store_ticket_open_for(f->st, "webhook:shop", "c",
	    &id), 0);
	a = add_ticket(f->st, "c", TICKET_OPEN, "general", 1);
	b = add_ticket(f->st, "c", TICKET_PENDING, "general", 1);
	add_ticket(f->st, "c", TICKET_CLOSED, "general", 1);
	add_ticket(f->st, "other", TICKET_NEW, "general", 1);
	/* The newest of new, open, pending, resolved; closed is over. */
	assert_int_equal(store_ticket_open_for(f->st, "webhook:shop", "c",
	    &id), 1);
	assert_int_equal(id, b);
	assert_int_not_equal(id, a);
	/* A resolved one may be reopened (reopen_within): it counts. */
	r = add_ticket(f->st, "c", TICKET_RESOLVED, "general", 1);
	assert_int_equal(store_ticket_open_for(f->st, "webhook:shop", "c",
	    &id), 1);
	assert_int_equal(id, r);
	assert_int_equal(store_ticket_open_for(f->st, "email", "c", &id), 0);
}

/* ---- ticket_list ------------------------------------------------------- */

struct ids {
	int64_t v[16];
	int n;
	int stop_at;	/* stop after this many (0: never) */
};

static int
collect_ticket(const struct ticket *t, void *arg)
{
	struct ids *ids = arg;

	assert_true(ids->n < 16);
	assert_non_null(t->subject);	/* borrowed, valid here */
	ids->v[ids->n++] = t->id;
	return ids->stop_at != 0 && ids->n >= ids->stop_at;
}

static void
test_ticket_list_filters(void **state)
{
	static const struct {
		enum ticket_state state;
		const char *queue;
		int level;
	} rows[] = {
		{ TICKET_NEW, "general", 1 },		/* 1 */
		{ TICKET_OPEN, "billing", 2 },		/* 2 */
		{ TICKET_OPEN, "general", 3 },		/* 3 */
		{ TICKET_PENDING, "general", 1 },	/* 4 */
		{ TICKET_RESOLVED, "billing", 2 },	/* 5 */
		{ TICKET_OPEN, "general", 1 },		/* 6 */
	};
	static const struct {
		const char *name;
		struct ticket_filter f;
		int want[8];	/* 1-based row numbers, 0-terminated */
	} cases[] = {
		{ "all", { 0 }, { 1, 2, 3, 4, 5, 6 } },
		{ "state open", { .state = "open" }, { 2, 3, 6 } },
		{ "state new", { .state = "new" }, { 1 } },
		{ "state closed", { .state = "closed" }, { 0 } },
		{ "queue billing", { .queue = "billing" }, { 2, 5 } },
		{ "queue unknown", { .queue = "nope" }, { 0 } },
		{ "escalated", { .escalated = 1 }, { 2, 3, 5 } },
		{ "open general", { .state = "open", .queue = "general" },
		  { 3, 6 } },
		{ "open escalated", { .state = "open", .escalated = 1 },
		  { 2, 3 } },
		{ "limit 2", { .limit = 2 }, { 1, 2 } },
		{ "limit over", { .limit = 100 }, { 1, 2, 3, 4, 5, 6 } },
		{ "general limit 2", { .queue = "general", .limit = 2 },
		  { 1, 3 } },
	};
	struct fx *f = *state;
	int64_t id[6];

	for (size_t i = 0; i < 6; i++)
		id[i] = add_ticket(f->st, "c", rows[i].state, rows[i].queue,
		    rows[i].level);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ids got = { .n = 0 };
		int n_want = 0;

		assert_int_equal(store_ticket_list(f->st, &cases[i].f,
		    collect_ticket, &got), 0);
		while (n_want < 8 && cases[i].want[n_want] != 0)
			n_want++;
		if (got.n != n_want)
			fail_msg("%s: %d tickets, want %d", cases[i].name,
			    got.n, n_want);
		for (int j = 0; j < n_want; j++)
			if (got.v[j] != id[cases[i].want[j] - 1])
				fail_msg("%s: ticket %d is %lld, want %lld",
				    cases[i].name, j, (long long)got.v[j],
				    (long long)id[cases[i].want[j] - 1]);
	}

	/* A callback that returns non-zero stops the walk. */
	struct ids some = { .stop_at = 2 };
	struct ticket_filter all = { 0 };
	assert_int_equal(store_ticket_list(f->st, &all, collect_ticket, &some),
	    0);
	assert_int_equal(some.n, 2);
}

/* ---- thread keys ------------------------------------------------------- */

static void
test_thread_keys(void **state)
{
	struct fx *f = *state;
	int64_t a = add_ticket(f->st, "c", TICKET_OPEN, "general", 1);
	int64_t b = add_ticket(f->st, "d", TICKET_OPEN, "general", 1);
	int64_t id = 0;

	assert_int_equal(store_thread_find(f->st, "webhook:shop", "order-1",
	    &id), 0);
	assert_int_equal(store_thread_add(f->st, "webhook:shop", "order-1", a),
	    0);
	assert_int_equal(store_thread_add(f->st, "mail", "<m1@x>", a), 0);
	assert_int_equal(store_thread_add(f->st, "mail", "<m2@x>", b), 0);

	assert_int_equal(store_thread_find(f->st, "webhook:shop", "order-1",
	    &id), 1);
	assert_int_equal(id, a);
	assert_int_equal(store_thread_find(f->st, "mail", "<m2@x>", &id), 1);
	assert_int_equal(id, b);
	/* Keys live in their scope. */
	assert_int_equal(store_thread_find(f->st, "webhook:crm", "order-1",
	    &id), 0);
	assert_int_equal(store_thread_find(f->st, "mail", "order-1", &id), 0);
	/* Keys are exact. */
	assert_int_equal(store_thread_find(f->st, "mail", "<M1@x>", &id), 0);
	/* Adding a known key again is not an error. */
	assert_int_equal(store_thread_add(f->st, "mail", "<m1@x>", a), 0);
	/* A key of a ticket that does not exist is refused. */
	assert_int_equal(store_thread_add(f->st, "mail", "<m3@x>", 999), -1);
}

/* ---- messages ---------------------------------------------------------- */

struct msgs {
	struct message m[8];
	char *text[8][8];
	int n;
};

static char *
dup_str(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
collect_message(const struct message *m, void *arg)
{
	struct msgs *ms = arg;

	assert_true(ms->n < 8);
	struct message *c = &ms->m[ms->n];
	char **t = ms->text[ms->n];
	*c = *m;
	/* Strings are borrowed for the callback only: keep copies. */
	c->direction = t[0] = dup_str(m->direction);
	c->channel = t[1] = dup_str(m->channel);
	c->author = t[2] = dup_str(m->author);
	c->subject = t[3] = dup_str(m->subject);
	c->body = t[4] = dup_str(m->body);
	c->message_id = t[5] = dup_str(m->message_id);
	c->dedupe_scope = t[6] = dup_str(m->dedupe_scope);
	c->dedupe_key = t[7] = dup_str(m->dedupe_key);
	ms->n++;
	return 0;
}

static void
msgs_release(struct msgs *ms)
{
	for (int i = 0; i < ms->n; i++)
		for (int j = 0; j < 8; j++)
			free(ms->text[i][j]);
	ms->n = 0;
}

static void
assert_opt_str(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

static void
test_messages_and_dedupe(void **state)
{
	struct fx *f = *state;
	int64_t a = add_ticket(f->st, "c", TICKET_OPEN, "general", 1);
	int64_t b = add_ticket(f->st, "d", TICKET_OPEN, "general", 1);
	struct message in = {
		.ticket_id = a, .direction = "in", .channel = "webhook",
		.author = "c", .subject = "Help", .body = "It broke",
		.message_id = "evt-1", .dedupe_scope = "webhook:shop",
		.dedupe_key = "evt-1", .at = NOW,
	};
	struct message out = {
		.ticket_id = a, .direction = "out", .channel = "webhook",
		.author = "Alice", .body = "Fixed", .at = NOW + 60,
	};
	struct message m;
	struct msgs got = { .n = 0 };
	int64_t id1 = 0, id2 = 0, tid = 0;

	assert_int_equal(store_message_find(f->st, "webhook:shop", "evt-1",
	    &tid), 0);
	assert_int_equal(store_message_insert(f->st, &in, &id1), 0);
	assert_int_equal(store_message_insert(f->st, &out, &id2), 0);
	assert_true(id1 > 0 && id2 > id1);
	/* Not deduped: the same message twice is fine. */
	assert_int_equal(store_message_insert(f->st, &out, NULL), 0);

	assert_int_equal(store_message_find(f->st, "webhook:shop", "evt-1",
	    &tid), 1);
	assert_int_equal(tid, a);

	/* The same scope and key again: refused, even on another ticket. */
	m = in;
	m.ticket_id = b;
	m.body = "again";
	assert_int_equal(store_message_insert(f->st, &m, NULL), -1);
	assert_non_null(strstr(store_error(f->st), "insert message"));
	/* The same key in another scope is another message. */
	m.dedupe_scope = "webhook:crm";
	assert_int_equal(store_message_insert(f->st, &m, NULL), 0);
	assert_int_equal(store_message_find(f->st, "webhook:crm", "evt-1",
	    &tid), 1);
	assert_int_equal(tid, b);

	/* A bad direction is refused by the schema. */
	m = out;
	m.direction = "sideways";
	assert_int_equal(store_message_insert(f->st, &m, NULL), -1);

	/* Listed in order, every field kept. */
	assert_int_equal(store_message_list(f->st, a, collect_message, &got),
	    0);
	assert_int_equal(got.n, 3);
	assert_int_equal(got.m[0].id, id1);
	assert_int_equal(got.m[0].ticket_id, a);
	assert_string_equal(got.m[0].direction, "in");
	assert_string_equal(got.m[0].channel, "webhook");
	assert_string_equal(got.m[0].author, "c");
	assert_string_equal(got.m[0].subject, "Help");
	assert_string_equal(got.m[0].body, "It broke");
	assert_string_equal(got.m[0].message_id, "evt-1");
	assert_string_equal(got.m[0].dedupe_scope, "webhook:shop");
	assert_string_equal(got.m[0].dedupe_key, "evt-1");
	assert_int_equal(got.m[0].at, NOW);
	assert_int_equal(got.m[1].id, id2);
	assert_string_equal(got.m[1].direction, "out");
	assert_string_equal(got.m[1].author, "Alice");
	assert_opt_str(got.m[1].subject, NULL);
	assert_opt_str(got.m[1].message_id, NULL);
	assert_opt_str(got.m[1].dedupe_key, NULL);
	assert_int_equal(got.m[1].at, NOW + 60);
	msgs_release(&got);

	assert_int_equal(store_message_list(f->st, b, collect_message, &got),
	    0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.m[0].body, "again");
	msgs_release(&got);
}

/* ---- events ------------------------------------------------------------ */

struct evs {
	int64_t id[8], at[8];
	char *type[8], *actor[8], *detail[8];
	int n, stop_at;
};

static int
collect_event(const struct event *e, void *arg)
{
	struct evs *ev = arg;

	assert_true(ev->n < 8);
	ev->id[ev->n] = e->id;
	ev->at[ev->n] = e->at;
	ev->type[ev->n] = dup_str(e->type);
	ev->actor[ev->n] = dup_str(e->actor);
	ev->detail[ev->n] = dup_str(e->detail);
	ev->n++;
	return ev->stop_at != 0 && ev->n >= ev->stop_at;
}

static void
evs_release(struct evs *ev)
{
	for (int i = 0; i < ev->n; i++) {
		free(ev->type[i]);
		free(ev->actor[i]);
		free(ev->detail[i]);
	}
	ev->n = 0;
}

static void
test_events_order(void **state)
{
	struct fx *f = *state;
	int64_t a = add_ticket(f->st, "c", TICKET_OPEN, "general", 1);
	int64_t b = add_ticket(f->st, "d", TICKET_OPEN, "general", 1);
	struct evs ev = { .n = 0 };

	/* Listed in the order appended, whatever their instants. */
	assert_int_equal(store_event_add(f->st, a, NOW + 300, "created",
	    "customer", json_pack("{s:s}", "queue", "general")), 0);
	assert_int_equal(store_event_add(f->st, b, NOW, "created", NULL,
	    NULL), 0);
	assert_int_equal(store_event_add(f->st, a, NOW + 100, "escalated",
	    "escalon", json_pack("{s:i, s:i}", "from", 1, "to", 2)), 0);
	assert_int_equal(store_event_add(f->st, a, NOW + 200, "note", NULL,
	    NULL), 0);
	assert_int_equal(store_event_add(f->st, 999, NOW, "x", NULL, NULL),
	    -1);	/* no such ticket */

	assert_int_equal(store_event_list(f->st, a, collect_event, &ev), 0);
	assert_int_equal(ev.n, 3);
	assert_true(ev.id[0] < ev.id[1] && ev.id[1] < ev.id[2]);
	assert_string_equal(ev.type[0], "created");
	assert_string_equal(ev.type[1], "escalated");
	assert_string_equal(ev.type[2], "note");
	assert_int_equal(ev.at[0], NOW + 300);
	assert_int_equal(ev.at[1], NOW + 100);
	assert_int_equal(ev.at[2], NOW + 200);
	assert_string_equal(ev.actor[0], "customer");
	assert_string_equal(ev.actor[1], "escalon");
	assert_null(ev.actor[2]);
	assert_string_equal(ev.detail[0], "{\"queue\":\"general\"}");
	assert_string_equal(ev.detail[1], "{\"from\":1,\"to\":2}");
	assert_string_equal(ev.detail[2], "{}");	/* NULL detail */
	evs_release(&ev);

	ev.stop_at = 1;
	assert_int_equal(store_event_list(f->st, a, collect_event, &ev), 0);
	assert_int_equal(ev.n, 1);
	evs_release(&ev);

	ev.stop_at = 0;
	assert_int_equal(store_event_list(f->st, b, collect_event, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_string_equal(ev.detail[0], "{}");
	evs_release(&ev);
}

static void
test_events_append_only(void **state)
{
	struct fx *f = *state;
	int64_t a = add_ticket(f->st, "c", TICKET_OPEN, "general", 1);
	static const char *const sqls[] = {
		"UPDATE events SET type = 'forged'",
		"UPDATE events SET at = 0 WHERE id = 1",
		"DELETE FROM events",
		"DELETE FROM events WHERE id = 1",
	};
	sqlite3 *db;

	assert_int_equal(store_event_add(f->st, a, NOW, "created", "customer",
	    NULL), 0);
	db = raw_open(f->path);
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		char *err = NULL;
		int rc = sqlite3_exec(db, sqls[i], NULL, NULL, &err);
		if (rc == SQLITE_OK)
			fail_msg("\"%s\" succeeded", sqls[i]);
		assert_int_equal(rc & 0xff, SQLITE_CONSTRAINT);
		assert_non_null(err);
		assert_non_null(strstr(err, "append-only"));
		sqlite3_free(err);
	}
	assert_int_equal(raw_int(db, "SELECT count(*) FROM events WHERE "
	    "type = 'created' AND at = 1796117400"), 1);
	/* Appending still works. */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO events (ticket_id, "
	    "type, at) VALUES (1, 'raw', 1)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* ---- checkpoints ------------------------------------------------------- */

static void
test_checkpoints(void **state)
{
	struct fx *f = *state;
	char *v = (char *)"sentinel";

	assert_int_equal(store_checkpoint_get(f->st, "mailbox:support", &v),
	    0);
	assert_null(v);
	assert_int_equal(store_checkpoint_set(f->st, "mailbox:support",
	    "1:10", NOW), 0);
	assert_int_equal(store_checkpoint_set(f->st, "xmpp:chat", "arch-5",
	    NOW), 0);
	assert_int_equal(store_checkpoint_get(f->st, "mailbox:support", &v),
	    1);
	assert_string_equal(v, "1:10");
	free(v);

	/* Overwrite: one row, the new value, the new instant. */
	assert_int_equal(store_checkpoint_set(f->st, "mailbox:support",
	    "1:11", NOW + 5), 0);
	assert_int_equal(store_checkpoint_get(f->st, "mailbox:support", &v),
	    1);
	assert_string_equal(v, "1:11");
	free(v);
	assert_int_equal(store_checkpoint_get(f->st, "xmpp:chat", &v), 1);
	assert_string_equal(v, "arch-5");
	free(v);
	assert_int_equal(file_int(f->path, "SELECT count(*) FROM checkpoints"),
	    2);
	assert_int_equal(file_int(f->path, "SELECT updated_at FROM checkpoints "
	    "WHERE source = 'mailbox:support'"), NOW + 5);
}

/* ---- transactions ------------------------------------------------------ */

static int
has_checkpoint(struct store *st, const char *source)
{
	char *v = NULL;
	int rc = store_checkpoint_get(st, source, &v);

	free(v);
	assert_true(rc >= 0);
	return rc;
}

static void
test_savepoint_rollback_to(void **state)
{
	struct fx *f = *state;
	int64_t n = -1;

	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_checkpoint_set(f->st, "a", "1", NOW), 0);

	/* Item 1: written, then rolled back to its savepoint. */
	assert_int_equal(store_savepoint(f->st), 0);
	assert_int_equal(store_checkpoint_set(f->st, "b", "1", NOW), 0);
	add_ticket(f->st, "c", TICKET_NEW, "general", 1);
	assert_int_equal(store_rollback_to(f->st), 0);
	/* rollback_to also released the savepoint: none is left open. */
	assert_int_equal(store_release(f->st), -1);

	/* The savepoint is gone after rollback_to: item 2 takes a new one
	 * and releases it. */
	assert_int_equal(store_savepoint(f->st), 0);
	assert_int_equal(store_checkpoint_set(f->st, "c", "1", NOW), 0);
	assert_int_equal(store_release(f->st), 0);

	/* Item 3 rolled back as well. */
	assert_int_equal(store_savepoint(f->st), 0);
	assert_int_equal(store_checkpoint_set(f->st, "a", "overwritten", NOW),
	    0);
	assert_int_equal(store_rollback_to(f->st), 0);

	/* Inside the transaction: earlier work stands, item 1 is gone. */
	assert_int_equal(has_checkpoint(f->st, "a"), 1);
	assert_int_equal(has_checkpoint(f->st, "b"), 0);
	assert_int_equal(has_checkpoint(f->st, "c"), 1);
	/* Not visible to another connection before commit. */
	assert_int_equal(file_int(f->path, "SELECT count(*) FROM checkpoints"),
	    0);
	assert_int_equal(store_commit(f->st), 0);

	assert_int_equal(file_int(f->path, "SELECT count(*) FROM checkpoints"),
	    2);
	assert_int_equal(file_int(f->path, "SELECT count(*) FROM checkpoints "
	    "WHERE source = 'a' AND value = '1'"), 1);
	assert_int_equal(store_ticket_count(f->st, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(file_int(f->path, "SELECT count(*) FROM customers"),
	    0);
}

static void
test_rollback(void **state)
{
	struct fx *f = *state;

	/* Outside a transaction rollback is a no-op. */
	assert_int_equal(store_rollback(f->st), 0);

	/* A savepoint outside BEGIN is a transaction of its own; rolled
	 * back to, it ends, and BEGIN works again. */
	assert_int_equal(store_savepoint(f->st), 0);
	assert_int_equal(store_checkpoint_set(f->st, "z", "1", NOW), 0);
	assert_int_equal(store_rollback_to(f->st), 0);
	assert_int_equal(has_checkpoint(f->st, "z"), 0);

	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_checkpoint_set(f->st, "a", "1", NOW), 0);
	assert_int_equal(store_savepoint(f->st), 0);
	assert_int_equal(store_checkpoint_set(f->st, "b", "1", NOW), 0);
	assert_int_equal(store_release(f->st), 0);
	assert_int_equal(store_rollback(f->st), 0);
	assert_int_equal(has_checkpoint(f->st, "a"), 0);
	assert_int_equal(has_checkpoint(f->st, "b"), 0);

	/* A new transaction starts cleanly afterwards. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_begin(f->st), -1);	/* no nesting */
	assert_int_equal(store_checkpoint_set(f->st, "c", "1", NOW), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(store_commit(f->st), -1);	/* nothing to commit */
	assert_true(strlen(store_error(f->st)) > 0);
	assert_int_equal(has_checkpoint(f->st, "c"), 1);
}

#define D(f) cmocka_unit_test_setup_teardown(f, setup_dir, fx_teardown)
#define S(f) cmocka_unit_test_setup_teardown(f, setup_store, fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		D(test_create_new),
		S(test_reopen_keeps_data),
		D(test_readonly_missing),
		D(test_readonly_unmigrated),
		S(test_readonly_reads_not_writes),
		S(test_newer_schema_refused),
		S(test_newer_schema_refused_readonly),
		S(test_customer_identify),
		S(test_customer_name_fills_gap),
		S(test_ticket_round_trip),
		S(test_ticket_states_round_trip),
		S(test_ticket_get_missing),
		S(test_ticket_insert_refused),
		S(test_ticket_open_for),
		S(test_ticket_list_filters),
		S(test_thread_keys),
		S(test_messages_and_dedupe),
		S(test_events_order),
		S(test_events_append_only),
		S(test_checkpoints),
		S(test_savepoint_rollback_to),
		S(test_rollback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
