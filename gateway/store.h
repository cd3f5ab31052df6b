/*
 * store: the ticket store. Speaks tickets, messages, events, customers,
 * outbox rows and checkpoints; the only file that includes <sqlite3.h>.
 *
 * One writer (the core, or a CLI act when no core runs) and any number of
 * read-only connections (CLI, API): SQLite in WAL mode. The schema is
 * versioned with PRAGMA user_version and migrated forward on open.
 *
 * Transactions are explicit: store_begin .. store_commit; inside one,
 * store_savepoint .. store_release / store_rollback_to bracket one inbound
 * item so a bad item never aborts the batch (group commit).
 *
 * Every call returns 0 (or 1 = found / 0 = not found for look-ups) and -1 on
 * failure; store_error() then says what failed. All SQL is prepared once
 * from constant text; nothing is built from input.
 */
#ifndef ESCALON_STORE_H
#define ESCALON_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ticket.h"

struct store;

#define STORE_READONLY 1u

/*
 * Open (creating and migrating when writable) the store at path. NULL on
 * failure, with *error_r a heap string for the caller to free.
 */
struct store *store_open(const char *path, unsigned flags, char **error_r);
void store_close(struct store **stp);

/* The last failure, "what: sqlite's message"; valid until the next call. */
const char *store_error(const struct store *st);
/* 1 if the last failure was the disk being full or the store read-only. */
int store_error_is_full(const struct store *st);
/* The disk's refusal of the last write (full, I/O error, read-only) while
 * no commit has gone through since; NULL when writes go through. */
const char *store_write_error(const struct store *st);

int store_schema_version(struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);
int store_savepoint(struct store *st);
int store_release(struct store *st);
int store_rollback_to(struct store *st);

/* Customers: find or create the customer behind an identity. */
int store_customer_identify(struct store *st, const char *channel,
    const char *scope, const char *address, const char *name,
    const char *email, int64_t at, int64_t *customer_id_r);

/* Tickets. store_ticket_insert sets t->id. */
int store_ticket_insert(struct store *st, struct ticket *t);
int store_ticket_get(struct store *st, int64_t id, struct ticket *t_r);
int store_ticket_update(struct store *st, const struct ticket *t);
/* The newest ticket of a customer identity that is not closed (new, open,
 * pending, or resolved: the caller decides on reopen_within). */
int store_ticket_open_for(struct store *st, const char *scope,
    const char *address, int64_t *ticket_id_r);
int store_ticket_count(struct store *st, int64_t *n_r);

typedef int store_ticket_cb(const struct ticket *t, void *arg);
int store_ticket_list(struct store *st, const struct ticket_filter *f,
    store_ticket_cb *cb, void *arg);

/* Tags (set by routing rules). */
int store_ticket_tag_add(struct store *st, int64_t ticket_id,
    const char *tag);
typedef int store_tag_cb(const char *tag, void *arg);
int store_ticket_tags(struct store *st, int64_t ticket_id, store_tag_cb *cb,
    void *arg);

/*
 * The scheduler's index: up to limit ids (into ids) of tickets whose
 * next_due_at has come, earliest first; and the earliest next_due_at of
 * all (1 and *at_r, or 0 when nothing is scheduled).
 */
int store_due_tickets(struct store *st, int64_t now, int limit,
    int64_t *ids, int *n_r);
int store_next_due(struct store *st, int64_t *at_r);
/*
 * Ticket ids into a heap array (caller frees): due_by 0, every ticket not
 * resolved or closed; else those whose next_due_at is at or before due_by.
 */
int store_ticket_ids(struct store *st, int64_t due_by, int64_t **ids_r,
    size_t *n_r);

/* Thread keys: every Message-ID known per ticket, webhook thread keys. */
int store_thread_add(struct store *st, const char *scope, const char *key,
    int64_t ticket_id);
int store_thread_find(struct store *st, const char *scope, const char *key,
    int64_t *ticket_id_r);

/* Messages. store_message_find looks up a dedupe key. */
int store_message_insert(struct store *st, const struct message *m,
    int64_t *id_r);
int store_message_find(struct store *st, const char *scope, const char *key,
    int64_t *ticket_id_r);
typedef int store_message_cb(const struct message *m, void *arg);
int store_message_list(struct store *st, int64_t ticket_id,
    store_message_cb *cb, void *arg);

/*
 * Events: append-only. detail is a jansson object that the call takes over
 * (NULL: {}), so callers can write store_event_add(..., json_pack(...)).
 */
struct json_t;
int store_event_add(struct store *st, int64_t ticket_id, int64_t at,
    const char *type, const char *actor, struct json_t *detail);
typedef int store_event_cb(const struct event *e, void *arg);
int store_event_list(struct store *st, int64_t ticket_id,
    store_event_cb *cb, void *arg);

/*
 * The outbox: one row per message to send, its identity (Message-ID or
 * delivery id) fixed when queued. States and their transitions: outbox.h.
 */
enum outbox_state {
	OUTBOX_QUEUED, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_RETRY, OUTBOX_DEAD
};

struct outbox_row {
	int64_t id, ticket_id;		/* ticket_id 0: none */
	const char *template;		/* ack, reply, notify ... */
	const char *channel;		/* http (email, chat: their issues) */
	const char *recipient;		/* URL, mail address, JID */
	const char *identity;		/* Message-ID or delivery id */
	const char *signer;		/* webhook:NAME, notify:NAME or NULL */
	const char *payload;
	size_t payload_len;
	enum outbox_state state;
	int attempts;
	int64_t next_attempt_at, created_at, sent_at;
	const char *last_error;
};

const char *outbox_state_name(enum outbox_state s);

/* Queue a row (state queued, attempts 0); sets row->id. */
int store_outbox_insert(struct store *st, struct outbox_row *row);
typedef int store_outbox_cb(const struct outbox_row *row, void *arg);
/* Rows queued or to retry whose time has come, oldest first. */
int store_outbox_due(struct store *st, int64_t now, int limit,
    store_outbox_cb *cb, void *arg);
/* The earliest next attempt of a waiting row: 1 and *at_r, or 0. */
int store_outbox_next_due(struct store *st, int64_t *at_r);
int store_outbox_set(struct store *st, int64_t id, enum outbox_state state,
    int attempts, int64_t next_attempt_at, const char *last_error,
    int64_t sent_at);
/* 1 and cb called, 0 when there is no such row. */
int store_outbox_get(struct store *st, int64_t id, store_outbox_cb *cb,
    void *arg);
/* dead 0: rows waiting or in flight; dead 1: dead letters. */
int store_outbox_list(struct store *st, int dead, store_outbox_cb *cb,
    void *arg);
/*
 * Rows left `sending` go back to `retry`; *n_r how many. After a crash
 * (crashed 1) the interrupted send counts as an attempt, so a message that
 * brings the gateway down each time it is sent ends dead at max_attempts
 * instead of looping; after a clean stop it does not count.
 */
int store_outbox_unstick(struct store *st, int crashed, int max_attempts,
    int *n_r);
/* Rows of channel and signer waiting for a later attempt are due now. */
int store_outbox_release(struct store *st, const char *channel,
    const char *signer, int64_t now);
/* Addresses the customer copied in (Cc), kept on the ticket. */
int store_ticket_cc_add(struct store *st, int64_t ticket_id,
    const char *address, int64_t at);
int store_ticket_cc_list(struct store *st, int64_t ticket_id, char ***v_r,
    size_t *n_r);

/* The Message-IDs of a ticket's last max mails from its customer, newest
 * first (*ids_r: the caller frees each and the array). */
int store_message_ids_in(struct store *st, int64_t ticket_id, size_t max,
    char ***ids_r, size_t *n_r);

/* The row queued under identity (a Message-ID): 1 and its ids, or 0. */
int store_outbox_by_identity(struct store *st, const char *identity,
    int64_t *id_r, int64_t *ticket_id_r);
/* Automatic messages (not agents' replies) queued to recipient since. */
int store_outbox_recent(struct store *st, const char *recipient,
    int64_t since, int64_t *n_r);
int store_outbox_count(struct store *st, int64_t *pending_r,
    int64_t *dead_r);

/*
 * One row per ticket created in [from, to] for the KPI report (strings
 * borrowed for the callback's duration).
 */
struct report_row;
typedef int store_report_cb(const struct report_row *r, void *arg);
int store_report_rows(struct store *st, int64_t from, int64_t to,
    store_report_cb *cb, void *arg);

/* Counts for /metrics, one callback per sample. */
enum store_metric_kind {
	STORE_METRIC_TICKETS,		/* a state, b level, c severity */
	STORE_METRIC_ESCALATIONS,
	STORE_METRIC_WARNINGS,		/* a clock */
	STORE_METRIC_BREACHES,		/* a clock */
	STORE_METRIC_INBOUND,		/* a channel */
};

struct store_metric {
	enum store_metric_kind kind;
	const char *a, *b, *c;
	int64_t value;
};

typedef int store_metric_cb(const struct store_metric *m, void *arg);
int store_metrics(struct store *st, enum store_metric_kind kind,
    store_metric_cb *cb, void *arg);

/*
 * Satisfaction ratings: a survey token per resolution; a rating (1..5)
 * answers it, a later one replaces it. store_csat_rate: 1 and the ticket
 * id, or 0 for an unknown token.
 */
int store_csat_create(struct store *st, int64_t ticket_id, const char *token,
    int64_t at);
int store_csat_rate(struct store *st, const char *token, int score,
    int64_t at, int64_t *ticket_id_r);
/* The ticket's rating: 1 with score and when, 0 if it has none. */
int store_csat_of(struct store *st, int64_t ticket_id, int *score_r,
    int64_t *at_r);
/* A rating by reply: the ticket's latest survey. 1, or 0 if it has none. */
int store_csat_rate_ticket(struct store *st, int64_t ticket_id, int score,
    int64_t at);

/* An attachment of a stored message; content NULL when not kept. */
int store_attachment_add(struct store *st, int64_t message_id,
    const char *name, const char *type, size_t size, const void *content);

/* Per-source checkpoints (IMAP UIDVALIDITY/UID, XMPP archive id). */
int store_checkpoint_get(struct store *st, const char *source,
    char **value_r);
int store_checkpoint_set(struct store *st, const char *source,
    const char *value, int64_t at);

#endif
