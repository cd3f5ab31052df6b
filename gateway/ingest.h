/*
 * ingest: normalised inbound messages -> tickets, in batches.
 *
 * A batch is committed in one transaction (group commit); each message runs
 * inside its own savepoint, so one bad message is rolled back alone and the
 * rest of the batch still commits. Callbacks run only after COMMIT returns:
 * that is the moment a source may be acknowledged (202, IMAP checkpoint).
 */
#ifndef ESCALON_INGEST_H
#define ESCALON_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "env.h"
#include "store.h"

struct ingest_result {
	int64_t ticket_id;
	int created;		/* a new ticket */
	int duplicate;		/* seen before: nothing was written */
	int failed;		/* not stored; error says why */
	int temporary;		/* the failure may pass (store busy/full) */
	char error[200];
};

/*
 * One message, inside a transaction the caller holds, with what it must
 * send queued in the outbox, routed by the rules, its SLA and ladder
 * planned (sched_plan). 0, or -1 with r->error set (the caller rolls back to its
 * savepoint).
 */
int ingest_message(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, struct ingest_result *r);

struct ingest_batch;
typedef void ingest_done_cb(const struct ingest_result *r, void *arg);

struct ingest_batch *ingest_batch_new(void);
void ingest_batch_free(struct ingest_batch **bp);

/* Queue m (the batch takes it); done runs once, after the commit. */
int ingest_batch_add(struct ingest_batch *b, struct inbound_msg *m,
    ingest_done_cb *done, void *arg);
size_t ingest_batch_len(const struct ingest_batch *b);

/*
 * Store checkpoint (source, value) in the same transaction as everything
 * queued before it; done runs after the commit (failed set if it did not).
 * source NULL: no checkpoint, only the callback after the commit. A
 * message of the same source that failed earlier in the batch fails the
 * checkpoint (it is not stored): the source must send it again.
 */
int ingest_batch_checkpoint(struct ingest_batch *b, const char *source,
    const char *value, ingest_done_cb *done, void *arg);

/*
 * Commit everything queued and run the callbacks. Returns 0, or -1 when
 * the transaction as a whole failed (every callback then sees failed=1,
 * temporary=1 and nothing was stored).
 */
int ingest_batch_commit(struct ingest_batch *b, struct store *st,
    const struct env *e, int64_t now);

#endif
