/*
 * outbound: compose what a ticket change must send and queue it in the
 * outbox, inside the caller's transaction, so the change and its messages
 * commit together or not at all. The sender delivers after the commit.
 *
 * Webhook customers get messages POSTed to their ticket's reply_url
 * (SPEC.md "HTTP"), signed with the hook's secret; notify sections get the
 * events they list, signed with their own. Mail customers get mail From
 * their mailbox's address, threaded (In-Reply-To, References) to their
 * last mail, under a signed Message-ID, with X-Loop and RFC 3834's
 * Auto-Submitted on automatic mail; no more than max_autoreplies
 * automatic mails an hour go to one address; the people a customer copied
 * in (Cc) get every mail but the automatic answers to the customer's own.
 * Chat customers get the chat form of each template, as plain text, sent
 * through their ticket's account (an "xmpp" row signed by "xmpp:NAME").
 */
#ifndef ESCALON_OUTBOUND_H
#define ESCALON_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "store.h"
#include "tmplset.h"

struct json_t;

/* 1 when the ticket's customer can be written to: a webhook reply_url, a
 * mail address, a chat account. */
int outbound_reachable(const struct ticket *t);

/*
 * Render `template` (ack, escalated, update ...) for the ticket's customer
 * and queue it. extra: more variables as name, value pairs, NULL-ended
 * (values may be NULL: unset). 0, or -1 with error (store or template).
 */
struct env;
int outbound_template(struct store *st, const struct env *e,
    int64_t now, const struct ticket *t, const char *template,
    const char *const *extra, char *error, size_t error_len);

/*
 * Render `template` (agent_new, agent_escalated, sla_warning ...) for each
 * agent of the ticket's team (agent_reply: for its assignee, if it has
 * one) and queue one mail to each: From the ticket's mailbox address,
 * Reply-To the ticket's tokened address, a signed Message-ID.
 * Nothing when no smtp section is configured or e->secret is unset.
 */
int outbound_team(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const char *template, const char *const *extra,
    char *error, size_t error_len);

/*
 * One mail to one agent (agent_refused, agent_error): about t, or about no
 * ticket when t is NULL. Nothing when no smtp section is configured.
 */
struct conf_agent;
int outbound_agent(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const struct conf_agent *ag,
    const char *template, const char *const *extra, char *error,
    size_t error_len);

/* An agent's public reply, as written, to the ticket's customer. */
int outbound_reply(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const char *text, char *error,
    size_t error_len);

/*
 * SPEC.md's notify event (ticket.created, ticket.resolved ...) to every
 * notify section that lists it. detail is taken over (NULL: {}).
 */
int outbound_notify(struct store *st, const struct conf *c, int64_t now,
    const struct ticket *t, const char *event, struct json_t *detail,
    char *error, size_t error_len);

#endif
