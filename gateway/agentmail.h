/*
 * agentmail: mail from agents (SPEC.md "Agents by email").
 *
 * A mail counts as an agent's only when its sender is a configured agent
 * AND it carries a valid token for the ticket: a tokened reply address
 * (local+ID.TOKEN@domain) among its recipients (To, Cc, Delivered-To), or
 * in In-Reply-To/References the signed Message-ID of a notification that
 * went to that agent. Message-IDs of customer-facing mail never count.
 *
 * Then the quote and signature go, the command lines at the top act
 * (acts.h: the CLI's acts), and the rest is relayed to the customer as a
 * public reply (or kept as an internal note with #note; with #resolve it
 * is the resolution message). A command that is not understood, or that
 * fails, stops everything: the agent gets agent_error and nothing is
 * relayed. A mail from an agent address without a valid token is not
 * relayed either: an event on the ticket it names, and agent_refused.
 * Every agent mail is recorded on its ticket exactly once (deduped by
 * Message-ID like any mail).
 */
#ifndef ESCALON_AGENTMAIL_H
#define ESCALON_AGENTMAIL_H

#include <stdint.h>

#include "channel.h"
#include "env.h"
#include "ingest.h"
#include "store.h"

/*
 * Inside the ingest transaction: 1 when m was an agent's mail and is
 * handled (r says on which ticket), 0 when it is a customer's, -1 on a
 * store failure (r->error).
 */
int agentmail_handle(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, struct ingest_result *r);

#endif
