/*
 * store: SQLite behind the interface of store.h.
 *
 * Invariants:
 *  1. The schema version in PRAGMA user_version names the last migration
 *     applied; migrations[] run in order, each in its own transaction.
 *  2. events rows are never updated or deleted (triggers enforce it).
 *  3. (dedupe_scope, dedupe_key) is unique over messages: a source replayed
 *     after a crash finds its message and creates nothing.
 *  4. Every statement comes from sql[] and is prepared once, on first use.
 */
#include "store.h"

#include "files.h"
#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const migrations[] = {
	/* 1: the first schema. */
	"CREATE TABLE customers ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT, email TEXT,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE identities ("
	"  id INTEGER PRIMARY KEY,"
	"  customer_id INTEGER NOT NULL REFERENCES customers(id),"
	"  channel TEXT NOT NULL,"
	"  scope TEXT NOT NULL,"	/* webhook:NAME, email, chat */
	"  address TEXT NOT NULL,"
	"  UNIQUE (scope, address));"
	"CREATE TABLE tickets ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  state TEXT NOT NULL CHECK (state IN"
	"    ('new','open','pending','resolved','closed')),"
	"  severity TEXT NOT NULL CHECK (severity IN"
	"    ('low','normal','high','critical')),"
	"  queue TEXT NOT NULL, team TEXT, sla TEXT, ladder TEXT,"
	"  level INTEGER NOT NULL DEFAULT 1,"
	"  channel TEXT NOT NULL CHECK (channel IN ('email','chat','webhook')),"
	"  source TEXT NOT NULL,"
	"  customer_id INTEGER NOT NULL REFERENCES customers(id),"
	"  identity_id INTEGER NOT NULL REFERENCES identities(id),"
	"  subject TEXT NOT NULL,"
	"  reply_url TEXT, assignee TEXT, root_cause TEXT,"
	"  linked_to INTEGER REFERENCES tickets(id),"
	"  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	"  first_response_at INTEGER, last_customer_at INTEGER,"
	"  resolved_at INTEGER, closed_at INTEGER,"
	"  due_first_response INTEGER, due_next_update INTEGER,"
	"  due_resolution INTEGER, next_due_at INTEGER);"
	"CREATE INDEX tickets_next_due ON tickets (next_due_at)"
	"  WHERE next_due_at IS NOT NULL;"
	"CREATE INDEX tickets_state_queue ON tickets (state, queue);"
	"CREATE INDEX tickets_identity ON tickets (identity_id, state);"
	"CREATE INDEX tickets_created ON tickets (created_at);"
	"CREATE TABLE ticket_tags ("
	"  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	"  tag TEXT NOT NULL,"
	"  PRIMARY KEY (ticket_id, tag)) WITHOUT ROWID;"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	"  direction TEXT NOT NULL CHECK (direction IN ('in','out','note')),"
	"  channel TEXT NOT NULL,"
	"  author TEXT NOT NULL,"
	"  subject TEXT,"
	"  body TEXT NOT NULL,"
	"  message_id TEXT,"
	"  dedupe_scope TEXT, dedupe_key TEXT,"
	"  at INTEGER NOT NULL,"
	"  raw BLOB);"
	"CREATE UNIQUE INDEX messages_dedupe ON messages (dedupe_scope,"
	"  dedupe_key) WHERE dedupe_key IS NOT NULL;"
	"CREATE INDEX messages_ticket ON messages (ticket_id, id);"
	"CREATE TABLE attachments ("
	"  id INTEGER PRIMARY KEY,"
	"  message_id INTEGER NOT NULL REFERENCES messages(id),"
	"  name TEXT, type TEXT, size INTEGER NOT NULL,"
	"  content BLOB);"	/* NULL when over max_attachment_size */
	"CREATE INDEX attachments_message ON attachments (message_id);"
	/* Every Message-ID known per ticket (scope 'mail', ours and
	 * theirs) and the thread keys of webhooks (scope 'webhook:NAME'). */
	"CREATE TABLE thread_keys ("
	"  scope TEXT NOT NULL, key TEXT NOT NULL,"
	"  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	"  PRIMARY KEY (scope, key)) WITHOUT ROWID;"
	"CREATE INDEX thread_keys_ticket ON thread_keys (ticket_id);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	"  type TEXT NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  actor TEXT,"
	"  detail TEXT NOT NULL DEFAULT '{}');"
	"CREATE INDEX events_ticket ON events (ticket_id, id);"
	"CREATE INDEX events_type_at ON events (type, at);"
	"CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
	"  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
	"CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
	"  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
	/* The transactional outbox; its state machine lives in outbox.c. */
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  ticket_id INTEGER REFERENCES tickets(id),"
	"  template TEXT,"
	"  channel TEXT NOT NULL,"
	"  recipient TEXT NOT NULL,"
	"  identity TEXT NOT NULL UNIQUE,"	/* Message-ID or delivery id */
	"  payload BLOB NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN"
	"    ('queued','sending','sent','retry','dead')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_at INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  created_at INTEGER NOT NULL, sent_at INTEGER);"
	"CREATE INDEX outbox_due ON outbox (next_attempt_at)"
	"  WHERE state IN ('queued','retry');"
	"CREATE TABLE checkpoints ("
	"  source TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL,"
	"  updated_at INTEGER NOT NULL);"
	"CREATE TABLE csat ("
	"  id INTEGER PRIMARY KEY,"
	"  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	"  token TEXT NOT NULL UNIQUE,"
	"  score INTEGER CHECK (score BETWEEN 1 AND 5),"
	"  comment TEXT,"
	"  sent_at INTEGER NOT NULL, answered_at INTEGER);",
	/* 2: outbound HTTP is signed at send time with the key of the
	 * section named here (webhook:NAME, notify:NAME), so the store never
	 * holds a secret and a rotated secret applies to what is queued. */
	"ALTER TABLE outbox ADD COLUMN signer TEXT;",
	/* 3: what the SLA clocks and the ladder need to resume exactly after
	 * a restart (see rules/sla.h, rules/ladder.h). */
	"ALTER TABLE tickets ADD COLUMN awaiting_since INTEGER;"
	"ALTER TABLE tickets ADD COLUMN resolution_start INTEGER;"
	"ALTER TABLE tickets ADD COLUMN level_since INTEGER;"
	"ALTER TABLE tickets ADD COLUMN last_public_at INTEGER;"
	"ALTER TABLE tickets ADD COLUMN last_update_at INTEGER;"
	"ALTER TABLE tickets ADD COLUMN sla_warned INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE tickets ADD COLUMN sla_breached INTEGER NOT NULL "
	"  DEFAULT 0;",
	/* 4: max_autoreplies counts the automatic mail each address got in
	 * the last hour. */
	"CREATE INDEX outbox_recipient ON outbox (recipient, created_at);",
	/* 5: people the customer copied in: they get the ticket's mail too. */
	"CREATE TABLE ticket_cc ("
	"  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	"  address TEXT NOT NULL,"
	"  added_at INTEGER NOT NULL,"
	"  PRIMARY KEY (ticket_id, address)) WITHOUT ROWID;",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define TICKET_COLUMNS \
	"t.id, t.state, t.severity, t.queue, t.team, t.sla, t.ladder, " \
	"t.level, t.channel, t.source, t.customer_id, i.scope, " \
	"coalesce(c.name, i.address), i.address, t.subject, t.reply_url, " \
	"t.assignee, t.root_cause, t.linked_to, t.created_at, t.updated_at, " \
	"t.first_response_at, t.last_customer_at, t.resolved_at, " \
	"t.closed_at, t.due_first_response, t.due_next_update, " \
	"t.due_resolution, t.next_due_at, t.awaiting_since, " \
	"t.resolution_start, t.level_since, t.last_public_at, " \
	"t.last_update_at, t.sla_warned, t.sla_breached " \
	"FROM tickets t JOIN identities i ON i.id = t.identity_id " \
	"JOIN customers c ON c.id = t.customer_id "

enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
	S_IDENTITY_FIND, S_CUSTOMER_INSERT, S_IDENTITY_INSERT,
	S_CUSTOMER_UPDATE,
	S_TICKET_INSERT, S_TICKET_GET, S_TICKET_UPDATE, S_TICKET_OPEN_FOR,
	S_TICKET_COUNT, S_TICKET_LIST,
	S_THREAD_ADD, S_THREAD_FIND,
	S_MESSAGE_INSERT, S_MESSAGE_FIND, S_MESSAGE_LIST,
	S_EVENT_ADD, S_EVENT_LIST,
	S_CHECKPOINT_GET, S_CHECKPOINT_SET, S_ATTACHMENT_ADD,
	S_OUTBOX_BY_IDENTITY, S_OUTBOX_RECENT, S_MESSAGE_IDS_IN,
	S_CC_ADD, S_CC_LIST,
	S_OUTBOX_INSERT, S_OUTBOX_DUE, S_OUTBOX_NEXT_DUE, S_OUTBOX_SET,
	S_OUTBOX_GET, S_OUTBOX_LIST, S_OUTBOX_UNSTICK, S_OUTBOX_RELEASE,
	S_OUTBOX_COUNT,
	S_TAG_ADD, S_TAG_LIST, S_DUE_TICKETS, S_NEXT_DUE, S_OPEN_IDS,
	S_DUE_IDS, S_REPORT_ROWS, S_M_TICKETS, S_M_ESCALATIONS, S_M_WARNINGS,
	S_M_BREACHES, S_M_INBOUND, S_CSAT_CREATE, S_CSAT_FIND, S_CSAT_RATE,
	S_CSAT_RATE_TICKET, S_CSAT_OF,
	S_COUNT
};

#define OUTBOX_COLUMNS \
	"id, ticket_id, template, channel, recipient, identity, signer, " \
	"payload, state, attempts, next_attempt_at, last_error, created_at, " \
	"sent_at FROM outbox "

static const char *const sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT item",
	[S_RELEASE] = "RELEASE item",
	/* ROLLBACK TO keeps the savepoint open: release it as well. */
	[S_ROLLBACK_TO] = "ROLLBACK TO item",
	[S_IDENTITY_FIND] =
	    "SELECT customer_id FROM identities WHERE scope = ? AND address = ?",
	[S_CUSTOMER_INSERT] =
	    "INSERT INTO customers (name, email, created_at) VALUES (?, ?, ?)",
	[S_IDENTITY_INSERT] =
	    "INSERT INTO identities (customer_id, channel, scope, address) "
	    "VALUES (?, ?, ?, ?)",
	/* A name or address learnt later fills a gap, never overwrites. */
	[S_CUSTOMER_UPDATE] =
	    "UPDATE customers SET name = coalesce(name, ?), "
	    "email = coalesce(email, ?) WHERE id = ?",
	[S_TICKET_INSERT] =
	    "INSERT INTO tickets (state, severity, queue, team, sla, ladder, "
	    "level, channel, source, customer_id, identity_id, subject, "
	    "reply_url, assignee, root_cause, linked_to, created_at, "
	    "updated_at, first_response_at, last_customer_at, resolved_at, "
	    "closed_at, due_first_response, due_next_update, due_resolution, "
	    "next_due_at, awaiting_since, resolution_start, level_since, "
	    "last_public_at, last_update_at, sla_warned, sla_breached) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "(SELECT id FROM identities WHERE scope = ? AND address = ?), "
	    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?)",
	[S_TICKET_GET] = "SELECT " TICKET_COLUMNS "WHERE t.id = ?",
	[S_TICKET_UPDATE] =
	    "UPDATE tickets SET state = ?, severity = ?, queue = ?, team = ?, "
	    "sla = ?, ladder = ?, level = ?, subject = ?, reply_url = ?, "
	    "assignee = ?, root_cause = ?, linked_to = ?, updated_at = ?, "
	    "first_response_at = ?, last_customer_at = ?, resolved_at = ?, "
	    "closed_at = ?, due_first_response = ?, due_next_update = ?, "
	    "due_resolution = ?, next_due_at = ?, awaiting_since = ?, "
	    "resolution_start = ?, level_since = ?, last_public_at = ?, "
	    "last_update_at = ?, sla_warned = ?, sla_breached = ? "
	    "WHERE id = ?",
	[S_TICKET_OPEN_FOR] =
	    "SELECT t.id FROM tickets t JOIN identities i ON i.id = "
	    "t.identity_id WHERE i.scope = ? AND i.address = ? AND t.state IN "
	    "('new','open','pending','resolved') ORDER BY t.id DESC LIMIT 1",
	[S_TICKET_COUNT] = "SELECT count(*) FROM tickets",
	[S_TICKET_LIST] = "SELECT " TICKET_COLUMNS
	    "WHERE (?1 IS NULL OR t.state = ?1) AND (?2 IS NULL OR "
	    "t.queue = ?2) AND (?3 = 0 OR t.level >= 2) ORDER BY t.id "
	    "LIMIT ?4",
	/* A key names the newest ticket that used it: a follow-up that
	 * opened a new ticket takes the thread with it. */
	[S_THREAD_ADD] =
	    "INSERT INTO thread_keys (scope, key, ticket_id) VALUES (?, ?, ?) "
	    "ON CONFLICT (scope, key) DO UPDATE SET "
	    "ticket_id = excluded.ticket_id",
	[S_THREAD_FIND] =
	    "SELECT ticket_id FROM thread_keys WHERE scope = ? AND key = ?",
	[S_MESSAGE_INSERT] =
	    "INSERT INTO messages (ticket_id, direction, channel, author, "
	    "subject, body, message_id, dedupe_scope, dedupe_key, at, raw) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[S_ATTACHMENT_ADD] = "INSERT INTO attachments (message_id, name, type, "
	    "size, content) VALUES (?, ?, ?, ?, ?)",
	[S_CC_ADD] = "INSERT OR IGNORE INTO ticket_cc (ticket_id, address, "
	    "added_at) VALUES (?, ?, ?)",
	[S_CC_LIST] = "SELECT address FROM ticket_cc WHERE ticket_id = ? "
	    "ORDER BY added_at, address",
	[S_MESSAGE_IDS_IN] = "SELECT message_id FROM messages WHERE "
	    "ticket_id = ? AND direction = 'in' AND channel = 'email' AND "
	    "message_id IS NOT NULL ORDER BY id DESC LIMIT ?",
	[S_OUTBOX_BY_IDENTITY] =
	    "SELECT id, ticket_id FROM outbox WHERE identity = ?",
	[S_OUTBOX_RECENT] = "SELECT count(*) FROM outbox WHERE recipient = ? "
	    "AND created_at >= ? AND template IS NOT NULL AND template NOT IN "
	    "('reply', 'agent_reply')",
	[S_MESSAGE_FIND] =
	    "SELECT ticket_id FROM messages WHERE dedupe_scope = ? AND "
	    "dedupe_key = ?",
	[S_MESSAGE_LIST] =
	    "SELECT id, ticket_id, direction, channel, author, subject, body, "
	    "message_id, dedupe_scope, dedupe_key, at FROM messages "
	    "WHERE ticket_id = ? ORDER BY id",
	[S_EVENT_ADD] =
	    "INSERT INTO events (ticket_id, type, at, actor, detail) "
	    "VALUES (?, ?, ?, ?, ?)",
	[S_EVENT_LIST] =
	    "SELECT id, ticket_id, type, at, actor, detail FROM events "
	    "WHERE ticket_id = ? ORDER BY id",
	[S_CHECKPOINT_GET] = "SELECT value FROM checkpoints WHERE source = ?",
	[S_OUTBOX_INSERT] =
	    "INSERT INTO outbox (ticket_id, template, channel, recipient, "
	    "identity, signer, payload, state, attempts, next_attempt_at, "
	    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?)",
	[S_OUTBOX_DUE] = "SELECT " OUTBOX_COLUMNS
	    "WHERE state IN ('queued','retry') AND next_attempt_at <= ? "
	    "ORDER BY next_attempt_at, id LIMIT ?",
	[S_OUTBOX_NEXT_DUE] =
	    "SELECT min(next_attempt_at) FROM outbox "
	    "WHERE state IN ('queued','retry')",
	[S_OUTBOX_SET] =
	    "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, "
	    "last_error = ?, sent_at = ? WHERE id = ?",
	[S_OUTBOX_GET] = "SELECT " OUTBOX_COLUMNS "WHERE id = ?",
	[S_OUTBOX_LIST] = "SELECT " OUTBOX_COLUMNS
	    "WHERE (?1 = 1 AND state = 'dead') OR (?1 = 0 AND state IN "
	    "('queued','sending','retry')) ORDER BY id",
	/* After a crash: what was in flight goes out again, same identity. */
	[S_OUTBOX_UNSTICK] =
	    "UPDATE outbox SET attempts = attempts + ?1, state = CASE WHEN "
	    "?1 AND attempts + 1 >= ?2 THEN 'dead' ELSE 'retry' END, "
	    "last_error = CASE WHEN ?1 THEN 'the gateway stopped while "
	    "sending it' ELSE last_error END WHERE state = 'sending'",
	[S_OUTBOX_RELEASE] =
	    "UPDATE outbox SET next_attempt_at = ? WHERE state IN "
	    "('queued','retry') AND channel = ? AND signer = ? AND "
	    "next_attempt_at > ?",
	[S_OUTBOX_COUNT] =
	    "SELECT coalesce(sum(state IN ('queued','sending','retry')), 0), "
	    "coalesce(sum(state = 'dead'), 0) FROM outbox",
	[S_TAG_ADD] =
	    "INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) VALUES (?, ?)",
	[S_TAG_LIST] =
	    "SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag",
	[S_DUE_TICKETS] =
	    "SELECT id FROM tickets WHERE next_due_at IS NOT NULL AND "
	    "next_due_at <= ? ORDER BY next_due_at LIMIT ?",
	/* The conditions let SQLite use the partial index on next_due_at. */
	[S_NEXT_DUE] = "SELECT min(next_due_at) FROM tickets "
	    "WHERE next_due_at IS NOT NULL",
	[S_OPEN_IDS] = "SELECT id FROM tickets WHERE state IN "
	    "('new','open','pending') ORDER BY id",
	[S_REPORT_ROWS] =
	    "SELECT t.id, t.queue, t.team, t.severity, t.level, t.created_at, "
	    "(SELECT min(e.at) FROM events e WHERE e.ticket_id = t.id AND "
	    "e.type = 'escalated'), t.first_response_at, t.resolved_at, "
	    "t.root_cause, t.sla_breached, (SELECT avg(c.score) FROM csat c "
	    "WHERE c.ticket_id = t.id AND c.score IS NOT NULL), t.sla "
	    "FROM tickets t WHERE t.created_at >= ? AND t.created_at <= ? "
	    "ORDER BY t.id",
	[S_M_TICKETS] = "SELECT state, level, severity, count(*) FROM tickets "
	    "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
	[S_M_ESCALATIONS] =
	    "SELECT NULL, NULL, NULL, count(*) FROM events "
	    "WHERE type = 'escalated'",
	[S_M_WARNINGS] =
	    "SELECT json_extract(detail, '$.clock'), NULL, NULL, count(*) "
	    "FROM events WHERE type = 'sla_warning' GROUP BY 1 ORDER BY 1",
	[S_M_BREACHES] =
	    "SELECT json_extract(detail, '$.clock'), NULL, NULL, count(*) "
	    "FROM events WHERE type = 'sla_breached' GROUP BY 1 ORDER BY 1",
	[S_M_INBOUND] =
	    "SELECT channel, NULL, NULL, count(*) FROM messages "
	    "WHERE direction = 'in' GROUP BY 1 ORDER BY 1",
	[S_CSAT_CREATE] =
	    "INSERT INTO csat (ticket_id, token, sent_at) VALUES (?, ?, ?)",
	[S_CSAT_FIND] = "SELECT ticket_id FROM csat WHERE token = ?",
	[S_CSAT_OF] = "SELECT score, answered_at FROM csat WHERE ticket_id = ? "
	    "AND score IS NOT NULL ORDER BY answered_at DESC, id DESC LIMIT 1",
	[S_CSAT_RATE_TICKET] = "UPDATE csat SET score = ?, answered_at = ? "
	    "WHERE id = (SELECT max(id) FROM csat WHERE ticket_id = ?)",
	[S_CSAT_RATE] =
	    "UPDATE csat SET score = ?, answered_at = ? WHERE token = ?",
	[S_DUE_IDS] = "SELECT id FROM tickets WHERE next_due_at IS NOT NULL "
	    "AND next_due_at <= ? ORDER BY next_due_at",
	[S_CHECKPOINT_SET] =
	    "INSERT INTO checkpoints (source, value, updated_at) "
	    "VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
	    "value = excluded.value, updated_at = excluded.updated_at",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[S_COUNT];
	int last_code;
	char error[512];
	/* The last write the disk refused (full, I/O, read-only), until a
	 * commit goes through again: reads may still work meanwhile. */
	char write_error[512];
};

static int
fail(struct store *st, const char *what)
{
	st->last_code = sqlite3_extended_errcode(st->db);
	snprintf(st->error, sizeof(st->error), "%s: %s", what,
	    sqlite3_errmsg(st->db));
	if (store_error_is_full(st))
		memcpy(st->write_error, st->error, sizeof(st->write_error));
	return -1;
}

const char *
store_error(const struct store *st)
{
	return st->error;
}

const char *
store_write_error(const struct store *st)
{
	return st->write_error[0] != '\0' ? st->write_error : NULL;
}

int
store_error_is_full(const struct store *st)
{
	int primary = st->last_code & 0xff;

	return primary == SQLITE_FULL || primary == SQLITE_READONLY ||
	    primary == SQLITE_IOERR;
}

static sqlite3_stmt *
stmt(struct store *st, enum stmt_id id)
{
	if (st->stmts[id] == NULL &&
	    sqlite3_prepare_v3(st->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT,
	    &st->stmts[id], NULL) != SQLITE_OK) {
		fail(st, "prepare");
		return NULL;
	}
	return st->stmts[id];
}

/* Bind helpers: NULL strings and zero instants/ids become SQL NULL. */
static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static void
bind_opt_int(sqlite3_stmt *s, int i, int64_t v)
{
	if (v == 0)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, v);
}

static const char *
col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

/* Run a statement that returns no rows; always resets it. */
static int
exec_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(st, what);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* Run a one-column integer look-up: 1 found, 0 not found, -1 error. */
static int
exec_find_int(struct store *st, sqlite3_stmt *s, const char *what,
    int64_t *v_r)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		*v_r = sqlite3_column_int64(s, 0);
		rc = 1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fail(st, what);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

static int
simple(struct store *st, enum stmt_id id, const char *what)
{
	sqlite3_stmt *s = stmt(st, id);

	return s == NULL ? -1 : exec_done(st, s, what);
}

int store_begin(struct store *st) { return simple(st, S_BEGIN, "begin"); }
int
store_commit(struct store *st)
{
	if (simple(st, S_COMMIT, "commit") < 0)
		return -1;
	st->write_error[0] = '\0';
	return 0;
}

int store_savepoint(struct store *st)
{
	return simple(st, S_SAVEPOINT, "savepoint");
}
int store_release(struct store *st)
{
	return simple(st, S_RELEASE, "release");
}

int
store_rollback(struct store *st)
{
	/* After some errors SQLite has already rolled back by itself. */
	if (sqlite3_get_autocommit(st->db))
		return 0;
	return simple(st, S_ROLLBACK, "rollback");
}

int
store_rollback_to(struct store *st)
{
	/* A full disk or an I/O error can roll back the whole transaction:
	 * the savepoint is gone then, and the error that did it is the one
	 * to report. */
	if (sqlite3_get_autocommit(st->db))
		return -1;
	if (simple(st, S_ROLLBACK_TO, "rollback to savepoint") < 0)
		return -1;
	return store_release(st);
}

static int
migrate(struct store *st)
{
	int version = store_schema_version(st);

	if (version < 0)
		return -1;
	if (version > N_MIGRATIONS) {
		snprintf(st->error, sizeof(st->error),
		    "store schema version %d is newer than this escalon (%d)",
		    version, N_MIGRATIONS);
		return -1;
	}
	for (int v = version; v < N_MIGRATIONS; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		    v + 1);
		if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL,
		    NULL) != SQLITE_OK)
			return fail(st, "migration begin");
		if (sqlite3_exec(st->db, migrations[v], NULL, NULL,
		    NULL) != SQLITE_OK ||
		    sqlite3_exec(st->db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) !=
		    SQLITE_OK) {
			fail(st, "migration");
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

int
store_schema_version(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	else
		fail(st, "schema version");
	sqlite3_finalize(s);
	return v;
}

struct store *
store_open(const char *path, unsigned flags, char **error_r)
{
	struct store *st = calloc(1, sizeof(*st));
	int ro = (flags & STORE_READONLY) != 0;
	int oflags = SQLITE_OPEN_NOMUTEX | (ro ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

	*error_r = NULL;
	if (st == NULL) {
		*error_r = strdup("store: out of memory");
		return NULL;
	}
	if (!ro && files_mkdir_parent(path) < 0) {
		if (asprintf(error_r, "store %s: cannot create its folder: %s",
		    path, strerror(errno)) < 0)
			*error_r = NULL;
		goto fail;
	}
	if (sqlite3_open_v2(path, &st->db, oflags, NULL) != SQLITE_OK) {
		fail(st, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, 5000);
	if (!ro) {
		/* WAL lets readers work while the core writes; NORMAL keeps
		 * every commit across a process crash (not a power cut). */
		if (sqlite3_exec(st->db, "PRAGMA journal_mode = WAL;"
		    "PRAGMA synchronous = NORMAL;"
		    "PRAGMA wal_autocheckpoint = 16384;", NULL, NULL, NULL) !=
		    SQLITE_OK) {
			fail(st, "set WAL mode");
			goto fail;
		}
	}
	if (sqlite3_exec(st->db, "PRAGMA foreign_keys = ON", NULL, NULL,
	    NULL) != SQLITE_OK) {
		fail(st, "foreign keys");
		goto fail;
	}
	if (ro) {
		int v = store_schema_version(st);
		if (v < 0)
			goto fail;
		if (v > N_MIGRATIONS) {
			snprintf(st->error, sizeof(st->error),
			    "store schema version %d is newer than this "
			    "escalon (%d)", v, N_MIGRATIONS);
			goto fail;
		}
		if (v < N_MIGRATIONS) {
			snprintf(st->error, sizeof(st->error),
			    "store schema version %d, this escalon needs %d "
			    "(run the gateway once to migrate)", v,
			    N_MIGRATIONS);
			goto fail;
		}
	} else if (migrate(st) < 0) {
		goto fail;
	}
	return st;
fail:
	if (*error_r == NULL && asprintf(error_r, "store %s: %s", path,
	    st->error) < 0)
		*error_r = NULL;
	store_close(&st);
	return NULL;
}

void
store_close(struct store **stp)
{
	struct store *st = *stp;

	if (st == NULL)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmts[i]);
	sqlite3_close(st->db);
	free(st);
	*stp = NULL;
}

int
store_customer_identify(struct store *st, const char *channel,
    const char *scope, const char *address, const char *name,
    const char *email, int64_t at, int64_t *customer_id_r)
{
	sqlite3_stmt *s;
	int found;

	if ((s = stmt(st, S_IDENTITY_FIND)) == NULL)
		return -1;
	bind_text(s, 1, scope);
	bind_text(s, 2, address);
	found = exec_find_int(st, s, "find identity", customer_id_r);
	if (found < 0)
		return -1;
	if (found) {
		if ((name == NULL && email == NULL) ||
		    (s = stmt(st, S_CUSTOMER_UPDATE)) == NULL)
			return s == NULL && (name || email) ? -1 : 0;
		bind_text(s, 1, name);
		bind_text(s, 2, email);
		sqlite3_bind_int64(s, 3, *customer_id_r);
		return exec_done(st, s, "update customer");
	}
	if ((s = stmt(st, S_CUSTOMER_INSERT)) == NULL)
		return -1;
	bind_text(s, 1, name);
	bind_text(s, 2, email);
	sqlite3_bind_int64(s, 3, at);
	if (exec_done(st, s, "insert customer") < 0)
		return -1;
	*customer_id_r = sqlite3_last_insert_rowid(st->db);
	if ((s = stmt(st, S_IDENTITY_INSERT)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, *customer_id_r);
	bind_text(s, 2, channel);
	bind_text(s, 3, scope);
	bind_text(s, 4, address);
	return exec_done(st, s, "insert identity");
}

static int
bind_sla_facts(sqlite3_stmt *s, int i, const struct ticket *t)
{
	bind_opt_int(s, i++, t->awaiting_since);
	bind_opt_int(s, i++, t->resolution_start);
	bind_opt_int(s, i++, t->level_since);
	bind_opt_int(s, i++, t->last_public_at);
	bind_opt_int(s, i++, t->last_update_at);
	sqlite3_bind_int(s, i++, (int)t->sla_warned);
	sqlite3_bind_int(s, i++, (int)t->sla_breached);
	return i;
}

int
store_ticket_insert(struct store *st, struct ticket *t)
{
	sqlite3_stmt *s = stmt(st, S_TICKET_INSERT);
	int i = 1;

	if (s == NULL)
		return -1;
	bind_text(s, i++, ticket_state_name(t->state));
	bind_text(s, i++, t->severity);
	bind_text(s, i++, t->queue);
	bind_text(s, i++, t->team);
	bind_text(s, i++, t->sla);
	bind_text(s, i++, t->ladder);
	sqlite3_bind_int(s, i++, t->level);
	bind_text(s, i++, t->channel);
	bind_text(s, i++, t->source);
	sqlite3_bind_int64(s, i++, t->customer_id);
	/* The identity is found by (scope, address): the ingest code knows
	 * those, the identity's row id is the store's business. */
	bind_text(s, i++, t->customer_scope);
	bind_text(s, i++, t->customer_address);
	bind_text(s, i++, t->subject);
	bind_text(s, i++, t->reply_url);
	bind_text(s, i++, t->assignee);
	bind_text(s, i++, t->root_cause);
	bind_opt_int(s, i++, t->linked_to);
	sqlite3_bind_int64(s, i++, t->created_at);
	sqlite3_bind_int64(s, i++, t->updated_at);
	bind_opt_int(s, i++, t->first_response_at);
	bind_opt_int(s, i++, t->last_customer_at);
	bind_opt_int(s, i++, t->resolved_at);
	bind_opt_int(s, i++, t->closed_at);
	bind_opt_int(s, i++, t->due_first_response);
	bind_opt_int(s, i++, t->due_next_update);
	bind_opt_int(s, i++, t->due_resolution);
	bind_opt_int(s, i++, t->next_due_at);
	i = bind_sla_facts(s, i, t);
	if (exec_done(st, s, "insert ticket") < 0)
		return -1;
	t->id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

/* Fill t from a row of TICKET_COLUMNS; strings borrowed from the row. */
static void
row_ticket(sqlite3_stmt *s, struct ticket *t)
{
	int i = 0;

	memset(t, 0, sizeof(*t));
	t->id = sqlite3_column_int64(s, i++);
	if (ticket_state_parse(col_text(s, i++), &t->state) < 0)
		t->state = TICKET_OPEN;
	t->severity = (char *)col_text(s, i++);
	t->queue = (char *)col_text(s, i++);
	t->team = (char *)col_text(s, i++);
	t->sla = (char *)col_text(s, i++);
	t->ladder = (char *)col_text(s, i++);
	t->level = sqlite3_column_int(s, i++);
	t->channel = (char *)col_text(s, i++);
	t->source = (char *)col_text(s, i++);
	t->customer_id = sqlite3_column_int64(s, i++);
	t->customer_scope = (char *)col_text(s, i++);
	t->customer_name = (char *)col_text(s, i++);
	t->customer_address = (char *)col_text(s, i++);
	t->subject = (char *)col_text(s, i++);
	t->reply_url = (char *)col_text(s, i++);
	t->assignee = (char *)col_text(s, i++);
	t->root_cause = (char *)col_text(s, i++);
	t->linked_to = sqlite3_column_int64(s, i++);
	t->created_at = sqlite3_column_int64(s, i++);
	t->updated_at = sqlite3_column_int64(s, i++);
	t->first_response_at = sqlite3_column_int64(s, i++);
	t->last_customer_at = sqlite3_column_int64(s, i++);
	t->resolved_at = sqlite3_column_int64(s, i++);
	t->closed_at = sqlite3_column_int64(s, i++);
	t->due_first_response = sqlite3_column_int64(s, i++);
	t->due_next_update = sqlite3_column_int64(s, i++);
	t->due_resolution = sqlite3_column_int64(s, i++);
	t->next_due_at = sqlite3_column_int64(s, i++);
	t->awaiting_since = sqlite3_column_int64(s, i++);
	t->resolution_start = sqlite3_column_int64(s, i++);
	t->level_since = sqlite3_column_int64(s, i++);
	t->last_public_at = sqlite3_column_int64(s, i++);
	t->last_update_at = sqlite3_column_int64(s, i++);
	t->sla_warned = (unsigned)sqlite3_column_int(s, i++);
	t->sla_breached = (unsigned)sqlite3_column_int(s, i++);
}

int
store_ticket_get(struct store *st, int64_t id, struct ticket *t_r)
{
	sqlite3_stmt *s = stmt(st, S_TICKET_GET);
	int rc;

	memset(t_r, 0, sizeof(*t_r));
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		struct ticket b;
		row_ticket(s, &b);
		*t_r = b;
		rc = ticket_own(t_r) == 0 ? 1 : fail(st, "get ticket");
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fail(st, "get ticket");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_ticket_update(struct store *st, const struct ticket *t)
{
	sqlite3_stmt *s = stmt(st, S_TICKET_UPDATE);
	int i = 1;

	if (s == NULL)
		return -1;
	bind_text(s, i++, ticket_state_name(t->state));
	bind_text(s, i++, t->severity);
	bind_text(s, i++, t->queue);
	bind_text(s, i++, t->team);
	bind_text(s, i++, t->sla);
	bind_text(s, i++, t->ladder);
	sqlite3_bind_int(s, i++, t->level);
	bind_text(s, i++, t->subject);
	bind_text(s, i++, t->reply_url);
	bind_text(s, i++, t->assignee);
	bind_text(s, i++, t->root_cause);
	bind_opt_int(s, i++, t->linked_to);
	sqlite3_bind_int64(s, i++, t->updated_at);
	bind_opt_int(s, i++, t->first_response_at);
	bind_opt_int(s, i++, t->last_customer_at);
	bind_opt_int(s, i++, t->resolved_at);
	bind_opt_int(s, i++, t->closed_at);
	bind_opt_int(s, i++, t->due_first_response);
	bind_opt_int(s, i++, t->due_next_update);
	bind_opt_int(s, i++, t->due_resolution);
	bind_opt_int(s, i++, t->next_due_at);
	i = bind_sla_facts(s, i, t);
	sqlite3_bind_int64(s, i++, t->id);
	return exec_done(st, s, "update ticket");
}

int
store_ticket_open_for(struct store *st, const char *scope,
    const char *address, int64_t *ticket_id_r)
{
	sqlite3_stmt *s = stmt(st, S_TICKET_OPEN_FOR);

	if (s == NULL)
		return -1;
	bind_text(s, 1, scope);
	bind_text(s, 2, address);
	return exec_find_int(st, s, "find open ticket", ticket_id_r);
}

int
store_ticket_count(struct store *st, int64_t *n_r)
{
	sqlite3_stmt *s = stmt(st, S_TICKET_COUNT);

	if (s == NULL)
		return -1;
	return exec_find_int(st, s, "count tickets", n_r) < 0 ? -1 : 0;
}

int
store_ticket_list(struct store *st, const struct ticket_filter *f,
    store_ticket_cb *cb, void *arg)
{
	sqlite3_stmt *s = stmt(st, S_TICKET_LIST);
	int rc;

	if (s == NULL)
		return -1;
	bind_text(s, 1, f->state);
	bind_text(s, 2, f->queue);
	sqlite3_bind_int(s, 3, f->escalated ? 1 : 0);
	sqlite3_bind_int64(s, 4, f->limit > 0 ? f->limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct ticket t;
		row_ticket(s, &t);
		if (cb(&t, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : fail(st, "list tickets");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_thread_add(struct store *st, const char *scope, const char *key,
    int64_t ticket_id)
{
	sqlite3_stmt *s = stmt(st, S_THREAD_ADD);

	if (s == NULL)
		return -1;
	bind_text(s, 1, scope);
	bind_text(s, 2, key);
	sqlite3_bind_int64(s, 3, ticket_id);
	return exec_done(st, s, "add thread key");
}

int
store_thread_find(struct store *st, const char *scope, const char *key,
    int64_t *ticket_id_r)
{
	sqlite3_stmt *s = stmt(st, S_THREAD_FIND);

	if (s == NULL)
		return -1;
	bind_text(s, 1, scope);
	bind_text(s, 2, key);
	return exec_find_int(st, s, "find thread key", ticket_id_r);
}

int
store_message_insert(struct store *st, const struct message *m, int64_t *id_r)
{
	sqlite3_stmt *s = stmt(st, S_MESSAGE_INSERT);
	int i = 1;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, i++, m->ticket_id);
	bind_text(s, i++, m->direction);
	bind_text(s, i++, m->channel);
	bind_text(s, i++, m->author);
	bind_text(s, i++, m->subject);
	bind_text(s, i++, m->body);
	bind_text(s, i++, m->message_id);
	bind_text(s, i++, m->dedupe_scope);
	bind_text(s, i++, m->dedupe_key);
	sqlite3_bind_int64(s, i++, m->at);
	if (m->raw != NULL)
		sqlite3_bind_blob64(s, i++, m->raw, m->raw_len, SQLITE_STATIC);
	if (exec_done(st, s, "insert message") < 0)
		return -1;
	if (id_r != NULL)
		*id_r = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int
store_message_find(struct store *st, const char *scope, const char *key,
    int64_t *ticket_id_r)
{
	sqlite3_stmt *s = stmt(st, S_MESSAGE_FIND);

	if (s == NULL)
		return -1;
	bind_text(s, 1, scope);
	bind_text(s, 2, key);
	return exec_find_int(st, s, "find message", ticket_id_r);
}

int
store_message_list(struct store *st, int64_t ticket_id, store_message_cb *cb,
    void *arg)
{
	sqlite3_stmt *s = stmt(st, S_MESSAGE_LIST);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct message m = {
			.id = sqlite3_column_int64(s, 0),
			.ticket_id = sqlite3_column_int64(s, 1),
			.direction = col_text(s, 2),
			.channel = col_text(s, 3),
			.author = col_text(s, 4),
			.subject = col_text(s, 5),
			.body = col_text(s, 6),
			.message_id = col_text(s, 7),
			.dedupe_scope = col_text(s, 8),
			.dedupe_key = col_text(s, 9),
			.at = sqlite3_column_int64(s, 10),
		};
		if (cb(&m, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : fail(st, "list messages");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_event_add(struct store *st, int64_t ticket_id, int64_t at,
    const char *type, const char *actor, json_t *detail)
{
	sqlite3_stmt *s = stmt(st, S_EVENT_ADD);
	char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
	int rc = -1;

	json_decref(detail);
	if (s == NULL)
		goto out;
	sqlite3_bind_int64(s, 1, ticket_id);
	bind_text(s, 2, type);
	sqlite3_bind_int64(s, 3, at);
	bind_text(s, 4, actor);
	bind_text(s, 5, text != NULL ? text : "{}");
	rc = exec_done(st, s, "add event");
out:
	free(text);
	return rc;
}

int
store_event_list(struct store *st, int64_t ticket_id, store_event_cb *cb,
    void *arg)
{
	sqlite3_stmt *s = stmt(st, S_EVENT_LIST);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct event e = {
			.id = sqlite3_column_int64(s, 0),
			.ticket_id = sqlite3_column_int64(s, 1),
			.type = col_text(s, 2),
			.at = sqlite3_column_int64(s, 3),
			.actor = col_text(s, 4),
			.detail = col_text(s, 5),
		};
		if (cb(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : fail(st, "list events");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_checkpoint_get(struct store *st, const char *source, char **value_r)
{
	sqlite3_stmt *s = stmt(st, S_CHECKPOINT_GET);
	int rc;

	*value_r = NULL;
	if (s == NULL)
		return -1;
	bind_text(s, 1, source);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*value_r = strdup(col_text(s, 0));
		rc = *value_r != NULL ? 1 : -1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fail(st, "get checkpoint");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_checkpoint_set(struct store *st, const char *source, const char *value,
    int64_t at)
{
	sqlite3_stmt *s = stmt(st, S_CHECKPOINT_SET);

	if (s == NULL)
		return -1;
	bind_text(s, 1, source);
	bind_text(s, 2, value);
	sqlite3_bind_int64(s, 3, at);
	return exec_done(st, s, "set checkpoint");
}

int
store_attachment_add(struct store *st, int64_t message_id, const char *name,
    const char *type, size_t size, const void *content)
{
	sqlite3_stmt *s = stmt(st, S_ATTACHMENT_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, message_id);
	bind_text(s, 2, name);
	bind_text(s, 3, type);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)size);
	if (content != NULL)
		sqlite3_bind_blob64(s, 5, content, size, SQLITE_STATIC);
	return exec_done(st, s, "add attachment");
}

int
store_ticket_cc_add(struct store *st, int64_t ticket_id, const char *address,
    int64_t at)
{
	sqlite3_stmt *s = stmt(st, S_CC_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	bind_text(s, 2, address);
	sqlite3_bind_int64(s, 3, at);
	return exec_done(st, s, "add cc");
}

int
store_ticket_cc_list(struct store *st, int64_t ticket_id, char ***v_r,
    size_t *n_r)
{
	sqlite3_stmt *s = stmt(st, S_CC_LIST);
	char **v = NULL;
	size_t n = 0;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char **nv = realloc(v, (n + 1) * sizeof(*v));
		if (nv == NULL)
			break;
		v = nv;
		if ((v[n] = strdup(col_text(s, 0))) != NULL)
			n++;
	}
	rc = rc == SQLITE_DONE ? 0 : fail(st, "list cc");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	*v_r = v;
	*n_r = n;
	return rc;
}

int
store_message_ids_in(struct store *st, int64_t ticket_id, size_t max,
    char ***ids_r, size_t *n_r)
{
	sqlite3_stmt *s = stmt(st, S_MESSAGE_IDS_IN);
	char **ids = calloc(max + 1, sizeof(*ids));
	size_t n = 0;
	int rc;

	*ids_r = NULL;
	*n_r = 0;
	if (s == NULL || ids == NULL) {
		free(ids);
		return -1;
	}
	sqlite3_bind_int64(s, 1, ticket_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((ids[n] = strdup(col_text(s, 0))) != NULL)
			n++;
	rc = rc == SQLITE_DONE ? 0 : fail(st, "list message ids");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	*ids_r = ids;
	*n_r = n;
	return rc;
}

int
store_outbox_by_identity(struct store *st, const char *identity,
    int64_t *id_r, int64_t *ticket_id_r)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_BY_IDENTITY);
	int rc;

	if (s == NULL)
		return -1;
	bind_text(s, 1, identity);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(s, 0);
		*ticket_id_r = sqlite3_column_int64(s, 1);
		rc = 1;
	} else {
		rc = rc == SQLITE_DONE ? 0 : fail(st, "find outbox row");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_outbox_recent(struct store *st, const char *recipient, int64_t since,
    int64_t *n_r)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_RECENT);
	int rc;

	if (s == NULL)
		return -1;
	bind_text(s, 1, recipient);
	sqlite3_bind_int64(s, 2, since);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*n_r = sqlite3_column_int64(s, 0);
		rc = 0;
	} else {
		rc = fail(st, "count recent outbox rows");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

static const char *const outbox_states[] = {
	"queued", "sending", "sent", "retry", "dead"
};

const char *
outbox_state_name(enum outbox_state s)
{
	return (unsigned)s < 5 ? outbox_states[s] : "?";
}

int
store_outbox_insert(struct store *st, struct outbox_row *row)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_INSERT);
	int i = 1;

	if (s == NULL)
		return -1;
	bind_opt_int(s, i++, row->ticket_id);
	bind_text(s, i++, row->template);
	bind_text(s, i++, row->channel);
	bind_text(s, i++, row->recipient);
	bind_text(s, i++, row->identity);
	bind_text(s, i++, row->signer);
	sqlite3_bind_blob(s, i++, row->payload, (int)row->payload_len,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, i++, row->next_attempt_at);
	sqlite3_bind_int64(s, i++, row->created_at);
	if (exec_done(st, s, "queue outbound message") < 0)
		return -1;
	row->id = sqlite3_last_insert_rowid(st->db);
	row->state = OUTBOX_QUEUED;
	return 0;
}

static int
each_outbox(struct store *st, sqlite3_stmt *s, const char *what,
    store_outbox_cb *cb, void *arg)
{
	int rc, n = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct outbox_row r = {
			.id = sqlite3_column_int64(s, 0),
			.ticket_id = sqlite3_column_int64(s, 1),
			.template = col_text(s, 2),
			.channel = col_text(s, 3),
			.recipient = col_text(s, 4),
			.identity = col_text(s, 5),
			.signer = col_text(s, 6),
			.payload = sqlite3_column_blob(s, 7),
			.payload_len = (size_t)sqlite3_column_bytes(s, 7),
			.attempts = sqlite3_column_int(s, 9),
			.next_attempt_at = sqlite3_column_int64(s, 10),
			.last_error = col_text(s, 11),
			.created_at = sqlite3_column_int64(s, 12),
			.sent_at = sqlite3_column_int64(s, 13),
		};
		const char *state = col_text(s, 8);
		for (int k = 0; k < 5; k++)
			if (state != NULL && strcmp(state, outbox_states[k]) == 0)
				r.state = (enum outbox_state)k;
		if (r.payload == NULL)
			r.payload = "";
		n++;
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	rc = rc == SQLITE_DONE ? n : fail(st, what);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_outbox_due(struct store *st, int64_t now, int limit,
    store_outbox_cb *cb, void *arg)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_DUE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int(s, 2, limit);
	return each_outbox(st, s, "due outbound messages", cb, arg) < 0 ?
	    -1 : 0;
}

/* A one-row min() look-up: 1 and *v_r, 0 when NULL (no rows), -1. */
static int
exec_min(struct store *st, enum stmt_id id, const char *what, int64_t *v_r)
{
	sqlite3_stmt *s = stmt(st, id);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		*v_r = sqlite3_column_int64(s, 0);
		rc = 1;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fail(st, what);
	}
	sqlite3_reset(s);
	return rc;
}

int
store_outbox_next_due(struct store *st, int64_t *at_r)
{
	return exec_min(st, S_OUTBOX_NEXT_DUE, "next outbound message", at_r);
}

int
store_outbox_set(struct store *st, int64_t id, enum outbox_state state,
    int attempts, int64_t next_attempt_at, const char *last_error,
    int64_t sent_at)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_SET);

	if (s == NULL)
		return -1;
	bind_text(s, 1, outbox_state_name(state));
	sqlite3_bind_int(s, 2, attempts);
	sqlite3_bind_int64(s, 3, next_attempt_at);
	bind_text(s, 4, last_error);
	bind_opt_int(s, 5, sent_at);
	sqlite3_bind_int64(s, 6, id);
	return exec_done(st, s, "update outbound message");
}

int
store_outbox_get(struct store *st, int64_t id, store_outbox_cb *cb, void *arg)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_GET);
	int n;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	n = each_outbox(st, s, "get outbound message", cb, arg);
	return n < 0 ? -1 : n > 0;
}

int
store_outbox_list(struct store *st, int dead, store_outbox_cb *cb, void *arg)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_LIST);

	if (s == NULL)
		return -1;
	sqlite3_bind_int(s, 1, dead ? 1 : 0);
	return each_outbox(st, s, "list outbound messages", cb, arg) < 0 ?
	    -1 : 0;
}

int
store_outbox_unstick(struct store *st, int crashed, int max_attempts,
    int *n_r)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_UNSTICK);

	if (s == NULL)
		return -1;
	sqlite3_bind_int(s, 1, crashed != 0);
	sqlite3_bind_int(s, 2, max_attempts);
	if (exec_done(st, s, "requeue in-flight messages") < 0)
		return -1;
	*n_r = sqlite3_changes(st->db);
	return 0;
}

int
store_outbox_release(struct store *st, const char *channel,
    const char *signer, int64_t now)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_RELEASE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, channel);
	bind_text(s, 3, signer);
	sqlite3_bind_int64(s, 4, now);
	return exec_done(st, s, "release waiting messages");
}

int
store_outbox_count(struct store *st, int64_t *pending_r, int64_t *dead_r)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_COUNT);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*pending_r = sqlite3_column_int64(s, 0);
		*dead_r = sqlite3_column_int64(s, 1);
		rc = 0;
	} else {
		rc = fail(st, "count outbound messages");
	}
	sqlite3_reset(s);
	return rc;
}

int
store_ticket_tag_add(struct store *st, int64_t ticket_id, const char *tag)
{
	sqlite3_stmt *s = stmt(st, S_TAG_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	bind_text(s, 2, tag);
	return exec_done(st, s, "tag ticket");
}

int
store_ticket_tags(struct store *st, int64_t ticket_id, store_tag_cb *cb,
    void *arg)
{
	sqlite3_stmt *s = stmt(st, S_TAG_LIST);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (cb(col_text(s, 0), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	rc = rc == SQLITE_DONE ? 0 : fail(st, "list tags");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_due_tickets(struct store *st, int64_t now, int limit,
    int64_t *ids, int *n_r)
{
	sqlite3_stmt *s = stmt(st, S_DUE_TICKETS);
	int rc, n = 0;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int(s, 2, limit);
	while (n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(s, 0);
	if (n < limit && rc != SQLITE_DONE)
		rc = fail(st, "due tickets");
	else
		rc = 0;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	*n_r = n;
	return rc;
}

int
store_next_due(struct store *st, int64_t *at_r)
{
	return exec_min(st, S_NEXT_DUE, "next due ticket", at_r);
}

int
store_ticket_ids(struct store *st, int64_t due_by, int64_t **ids_r,
    size_t *n_r)
{
	sqlite3_stmt *s = stmt(st, due_by > 0 ? S_DUE_IDS : S_OPEN_IDS);
	size_t n = 0, cap = 0;
	int64_t *ids = NULL;
	int rc;

	*ids_r = NULL;
	*n_r = 0;
	if (s == NULL)
		return -1;
	if (due_by > 0)
		sqlite3_bind_int64(s, 1, due_by);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			int64_t *v = realloc(ids, cap * sizeof(*v));
			if (v == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			ids = v;
		}
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(ids);
		return fail(st, "open tickets");
	}
	*ids_r = ids;
	*n_r = n;
	return 0;
}

int
store_report_rows(struct store *st, int64_t from, int64_t to,
    store_report_cb *cb, void *arg)
{
	sqlite3_stmt *s = stmt(st, S_REPORT_ROWS);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, from);
	sqlite3_bind_int64(s, 2, to);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct report_row r = {
			.id = sqlite3_column_int64(s, 0),
			.queue = col_text(s, 1),
			.team = col_text(s, 2),
			.severity = col_text(s, 3),
			.level = sqlite3_column_int(s, 4),
			.created_at = sqlite3_column_int64(s, 5),
			.first_escalated_at = sqlite3_column_int64(s, 6),
			.first_response_at = sqlite3_column_int64(s, 7),
			.resolved_at = sqlite3_column_int64(s, 8),
			.root_cause = col_text(s, 9),
			.sla_breached = (unsigned)sqlite3_column_int(s, 10),
			.csat = sqlite3_column_type(s, 11) == SQLITE_NULL ?
			    -1 : sqlite3_column_double(s, 11),
			.sla = col_text(s, 12),
			.business_to_escalation = -1,
			.business_post_escalation = -1,
		};
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : fail(st, "report rows");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_metrics(struct store *st, enum store_metric_kind kind,
    store_metric_cb *cb, void *arg)
{
	static const enum stmt_id of_kind[] = {
		[STORE_METRIC_TICKETS] = S_M_TICKETS,
		[STORE_METRIC_ESCALATIONS] = S_M_ESCALATIONS,
		[STORE_METRIC_WARNINGS] = S_M_WARNINGS,
		[STORE_METRIC_BREACHES] = S_M_BREACHES,
		[STORE_METRIC_INBOUND] = S_M_INBOUND,
	};
	sqlite3_stmt *s = stmt(st, of_kind[kind]);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_metric m = {
			.kind = kind,
			.a = col_text(s, 0),
			.b = col_text(s, 1),
			.c = col_text(s, 2),
			.value = sqlite3_column_int64(s, 3),
		};
		cb(&m, arg);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : fail(st, "metrics");
}

int
store_csat_create(struct store *st, int64_t ticket_id, const char *token,
    int64_t at)
{
	sqlite3_stmt *s = stmt(st, S_CSAT_CREATE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	bind_text(s, 2, token);
	sqlite3_bind_int64(s, 3, at);
	return exec_done(st, s, "create survey");
}

int
store_csat_of(struct store *st, int64_t ticket_id, int *score_r,
    int64_t *at_r)
{
	sqlite3_stmt *s = stmt(st, S_CSAT_OF);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*score_r = sqlite3_column_int(s, 0);
		*at_r = sqlite3_column_int64(s, 1);
		rc = 1;
	} else {
		rc = rc == SQLITE_DONE ? 0 : fail(st, "get rating");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int
store_csat_rate_ticket(struct store *st, int64_t ticket_id, int score,
    int64_t at)
{
	sqlite3_stmt *s = stmt(st, S_CSAT_RATE_TICKET);

	if (s == NULL)
		return -1;
	sqlite3_bind_int(s, 1, score);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_int64(s, 3, ticket_id);
	if (exec_done(st, s, "rate") < 0)
		return -1;
	return sqlite3_changes(st->db) > 0;
}

int
store_csat_rate(struct store *st, const char *token, int score, int64_t at,
    int64_t *ticket_id_r)
{
	sqlite3_stmt *s = stmt(st, S_CSAT_FIND);
	int found;

	if (s == NULL)
		return -1;
	bind_text(s, 1, token);
	found = exec_find_int(st, s, "find survey", ticket_id_r);
	if (found <= 0)
		return found;
	if ((s = stmt(st, S_CSAT_RATE)) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, score);
	sqlite3_bind_int64(s, 2, at);
	bind_text(s, 3, token);
	return exec_done(st, s, "rate") < 0 ? -1 : 1;
}
