/*
 * ticket: the data model the store speaks: tickets, messages, events and
 * customers as plain structs, and the names SPEC.md fixes for their states,
 * severities, channels and message directions.
 *
 * Ticket states (SPEC.md "Ticket"):
 *
 *        agent act            agent: pending
 *   new ----------> open <--------------------> pending
 *    |               | ^      customer writes     |
 *    |      resolve  | | customer writes within   | resolve
 *    +-------------->v | reopen_within            v
 *                  resolved <---------------------+
 *                    |  close_after without a customer message
 *                    v
 *                  closed
 *
 * Strings in a struct filled by a store_*_list callback are borrowed for
 * the callback's duration; store_ticket_get fills heap copies that
 * ticket_release frees.
 */
#ifndef ESCALON_TICKET_H
#define ESCALON_TICKET_H

#include <stddef.h>
#include <stdint.h>

enum ticket_state {
	TICKET_NEW, TICKET_OPEN, TICKET_PENDING, TICKET_RESOLVED, TICKET_CLOSED
};

struct ticket {
	int64_t id;
	enum ticket_state state;
	char *severity;		/* low, normal, high, critical */
	char *queue, *team, *sla, *ladder;
	int level;		/* 1-based */
	char *channel;		/* email, chat, webhook */
	char *source;		/* webhook:NAME, mailbox:NAME, xmpp:NAME */
	int64_t customer_id;
	char *customer_scope;	/* identity: webhook:NAME, email, chat */
	char *customer_name, *customer_address;
	char *subject;
	char *reply_url;	/* webhook tickets: where messages are POSTed */
	char *assignee;		/* agent name, or NULL */
	char *root_cause;
	int64_t linked_to;	/* earlier ticket this one follows, or 0 */
	int64_t created_at, updated_at;
	int64_t first_response_at, last_customer_at, resolved_at, closed_at;
	/* SLA due instants (0: no clock running); next_due_at is the
	 * earliest moment anything can happen to the ticket. */
	int64_t due_first_response, due_next_update, due_resolution;
	int64_t next_due_at;
	/* What the SLA clocks and the ladder resume from (rules/sla.h). */
	int64_t awaiting_since;		/* a customer message waits since */
	int64_t resolution_start;	/* creation, or the last reopening */
	int64_t level_since;		/* on the current level since */
	int64_t last_public_at;		/* last public agent reply */
	int64_t last_update_at;		/* last `update` to the customer */
	unsigned sla_warned, sla_breached;	/* SLA_BIT()s, this cycle */
};

struct message {
	int64_t id, ticket_id;
	const char *direction;	/* in, out, note */
	const char *channel;
	const char *author;	/* customer address, agent name, "escalon" */
	const char *subject;
	const char *body;
	const char *message_id;	/* Message-ID, stanza id, webhook id */
	const char *dedupe_scope, *dedupe_key;	/* NULL: not deduped */
	int64_t at;
	const void *raw;	/* the source as received, or NULL */
	size_t raw_len;
};

struct event {
	int64_t id, ticket_id;
	const char *type;
	const char *actor;	/* agent, "customer", "escalon" or NULL */
	const char *detail;	/* a JSON object */
	int64_t at;
};

struct ticket_filter {
	const char *state;	/* NULL: any */
	const char *queue;	/* NULL: any */
	int escalated;		/* 1: level 2 or more only */
	int limit;		/* 0: no limit */
};

const char *ticket_state_name(enum ticket_state s);
int ticket_state_parse(const char *name, enum ticket_state *s_r);

/* 1 if name is one of low, normal, high, critical. */
int ticket_severity_valid(const char *name);

/* "ESC-12" or "12" -> 12; -1 if neither. */
int ticket_parse_ref(const char *s, int64_t *id_r);
/* The first "[ESC-N]" tag in a subject: N, or 0 (none, or NULL). */
int64_t ticket_subject_tag(const char *subject);

/* Replace t's borrowed strings by heap copies (ticket_release frees). */
int ticket_own(struct ticket *t);
void ticket_release(struct ticket *t);

#endif
