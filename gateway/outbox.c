/* outbox: the outbound message state machine. See outbox.h. */
#include "outbox.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>

int
outbox_may(enum outbox_state from, enum outbox_state to)
{
	switch (from) {
	case OUTBOX_QUEUED:
		return to == OUTBOX_SENDING;
	case OUTBOX_SENDING:
		return to == OUTBOX_SENT || to == OUTBOX_RETRY ||
		    to == OUTBOX_DEAD;
	case OUTBOX_RETRY:
		return to == OUTBOX_SENDING || to == OUTBOX_QUEUED;
	case OUTBOX_DEAD:
		return to == OUTBOX_QUEUED;
	case OUTBOX_SENT:
		return 0;
	}
	return 0;
}

int64_t
outbox_backoff(int n, int64_t retry_first, int64_t retry_max)
{
	int64_t wait = retry_first > 0 ? retry_first : 1;

	for (int i = 1; i < n && wait < retry_max; i++)
		wait *= 2;
	return wait < retry_max ? wait : retry_max;
}

enum outbox_verdict
outbox_http_verdict(int transport_ok, long status)
{
	if (!transport_ok)
		return OUTBOX_TEMPORARY;
	if (status >= 200 && status < 300)
		return OUTBOX_DELIVERED;
	if (status == 408 || status == 425 || status == 429 || status >= 500)
		return OUTBOX_TEMPORARY;
	return OUTBOX_PERMANENT;
}

void
outbox_after(int row_attempts, enum outbox_verdict v, int64_t now,
    const struct conf_outbox *policy, struct outbox_next *out)
{
	out->attempts = row_attempts + 1;
	out->next_attempt_at = now;
	if (v == OUTBOX_DELIVERED) {
		out->state = OUTBOX_SENT;
	} else if (v == OUTBOX_PERMANENT ||
	    out->attempts >= policy->max_attempts) {
		out->state = OUTBOX_DEAD;
	} else {
		out->state = OUTBOX_RETRY;
		out->next_attempt_at = now + outbox_backoff(out->attempts,
		    policy->retry_first, policy->retry_max);
	}
}

struct found {
	int64_t ticket_id;
	enum outbox_state state;
	char identity[128];
};

static int
found_row(const struct outbox_row *r, void *arg)
{
	struct found *f = arg;

	f->ticket_id = r->ticket_id;
	f->state = r->state;
	snprintf(f->identity, sizeof(f->identity), "%s", r->identity);
	return 0;
}

int
outbox_requeue(struct store *st, int64_t now, int64_t id, char *msg,
    size_t msg_len)
{
	struct found f = { 0 };
	int rc;

	if (store_begin(st) < 0)
		goto fail;
	rc = store_outbox_get(st, id, found_row, &f);
	if (rc < 0)
		goto fail;
	if (rc == 0 || f.state == OUTBOX_SENT || f.state == OUTBOX_SENDING) {
		store_rollback(st);
		snprintf(msg, msg_len, rc == 0 ? "outbox message %lld does "
		    "not exist" : "outbox message %lld is %s", (long long)id,
		    outbox_state_name(f.state));
		return 1;
	}
	/* A queued row only has its time brought forward. */
	assert(f.state == OUTBOX_QUEUED || outbox_may(f.state, OUTBOX_QUEUED));
	if (store_outbox_set(st, id, OUTBOX_QUEUED, 0, now, NULL, 0) < 0 ||
	    (f.ticket_id > 0 && store_event_add(st, f.ticket_id, now,
	    "delivery_requeued", NULL, json_pack("{s:s, s:s}", "delivery",
	    f.identity, "was", outbox_state_name(f.state))) < 0) ||
	    store_commit(st) < 0)
		goto fail;
	snprintf(msg, msg_len, "outbox message %lld queued again",
	    (long long)id);
	return 0;
fail:
	snprintf(msg, msg_len, "%s", store_error(st));
	store_rollback(st);
	return 2;
}
