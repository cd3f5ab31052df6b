/*
 * intake: the core's side of the channel children, one per `mailbox`
 * section (channels/imap.h) and one per `xmpp` section (channels/xmpp.h).
 *
 * It starts each child with its settings and the checkpoint from the
 * store, queues the messages the child sends into the core's ingest batch,
 * and stores the child's checkpoint in the same transaction as those
 * messages before answering FRAME_COMMITTED. Chat rows of the outbox reach
 * their account's child through intake_chat_send (the sender's XMPP
 * transport); the child's FRAME_SENT answers go back to the sender.
 */
#ifndef ESCALON_INTAKE_H
#define ESCALON_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "ingest.h"
#include "store.h"

struct json_t;
struct loop;
struct sender;
struct intake;

/* What the core lends the intake. */
struct intake_host {
	struct loop *loop;
	struct store *store;
	struct ingest_batch *batch;
	struct sender *sender;
	void (*commit_soon)(void *arg);	/* commit the batch this wake-up */
	void *arg;
};

struct intake *intake_new(const struct intake_host *h, const struct conf *c);

/* A new config: children whose section changed restart, removed ones
 * stop, new ones start. The batch must be committed first (its callbacks
 * name the children). */
void intake_reload(struct intake *in, const struct conf *c);

/* Stop every child. Pending callbacks must have run (commit first). */
void intake_free(struct intake **inp);

/* [{"name", "kind", "state", "detail", "since", "restarts"}] for
 * /healthz; *up_r is 0 when some channel is down. */
struct json_t *intake_health(const struct intake *in, int *up_r);

/* Calls fn for each child with its name and restart count. */
void intake_restarts(const struct intake *in,
    void (*fn)(const char *child, unsigned restarts, void *arg), void *arg);

/* The sender's XMPP transport (sender_chat_fn); arg is the intake. */
int intake_chat_send(void *arg, int64_t row_id, const char *account,
    const char *to, const char *stanza_id, const char *body, size_t len,
    const char **error_r);

#endif
