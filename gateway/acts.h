/*
 * acts: what an agent does to a ticket (SPEC.md's reply, note, resolve,
 * pending, severity, assign, rootcause). One code path whether the act
 * comes from the CLI with no gateway running, or through the control
 * socket into the running core: each act is one transaction on the store.
 */
#ifndef ESCALON_ACTS_H
#define ESCALON_ACTS_H

#include <stdint.h>

#include "env.h"
#include "store.h"

struct act {
	const char *verb;	/* reply, note, resolve, pending, severity,
				   assign, rootcause, escalate */
	int64_t ticket_id;
	const char *agent;	/* --as AGENT (a configured agent) or NULL */
	const char *user;	/* who ran it, when no agent is named */
	const char *text;	/* message, cause, level, agent name or why */
	const char *resolution;	/* resolve: the message to the customer */
	/* When the act comes in a mail: its Message-ID and dedupe key go on
	 * the message the act records (reply, note). */
	const char *message_id, *dedupe_scope, *dedupe_key;
};

#define ACT_OK 0
#define ACT_BAD_INPUT 1
#define ACT_FAILED 2

struct act_result {
	int code;		/* ACT_OK, ACT_BAD_INPUT, ACT_FAILED */
	char message[300];	/* what happened, or what was wrong */
};

/* 1 if verb names an act. */
int acts_known(const char *verb);

/*
 * Runs the act in its own transaction, with the messages it causes queued
 * in the outbox. Returns r->code.
 */
int acts_run(struct store *st, const struct env *e, int64_t now,
    const struct act *a, struct act_result *r);

/*
 * The same inside a transaction the caller holds (an agent's mail, in
 * the ingest batch). On failure nothing is rolled back here: the caller
 * rolls back to its savepoint.
 */
int acts_run_in(struct store *st, const struct env *e, int64_t now,
    const struct act *a, struct act_result *r);

#endif
