/*
 * mailboxes: the core's side of the IMAP mailbox children (channels/imap.h),
 * one per `mailbox` section. It starts each child with its settings and
 * the checkpoint from the store, queues the mails the child sends into the
 * core's ingest batch, and stores the child's checkpoint in the same
 * transaction as those mails before answering FRAME_COMMITTED.
 */
#ifndef ESCALON_MAILBOXES_H
#define ESCALON_MAILBOXES_H

#include "conf.h"
#include "ingest.h"
#include "store.h"

struct json_t;
struct loop;
struct mailboxes;

/* What the core lends the mailboxes. */
struct mailbox_host {
	struct loop *loop;
	struct store *store;
	struct ingest_batch *batch;
	void (*commit_soon)(void *arg);	/* commit the batch this wake-up */
	void *arg;
};

struct mailboxes *mailboxes_new(const struct mailbox_host *h,
    const struct conf *c);

/* A new config: children whose section changed restart, removed ones
 * stop, new ones start. */
void mailboxes_reload(struct mailboxes *mb, const struct conf *c);

/* Stop every child. Pending callbacks must have run (commit first). */
void mailboxes_free(struct mailboxes **mbp);

/* [{"name", "kind", "state", "detail", "since", "restarts"}] for
 * /healthz; "up" is 0 when some mailbox is down. */
struct json_t *mailboxes_health(const struct mailboxes *mb, int *up_r);

/* Calls fn for each child with its name and restart count. */
void mailboxes_restarts(const struct mailboxes *mb,
    void (*fn)(const char *child, unsigned restarts, void *arg), void *arg);

#endif
