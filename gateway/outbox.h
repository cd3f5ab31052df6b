/*
 * outbox: the life of an outbound message: its state machine and backoff
 * (pure logic), and the operator's requeue.
 *
 *   queued --sender picks--> sending --delivered--> sent
 *                              |   \
 *                              |    `--temporary failure--> retry
 *                              |        (attempts < max_attempts)
 *                              `--permanent failure, or the last
 *                                 attempt failed-----------> dead
 *   retry --due again--> sending
 *   dead --`escalon outbox --retry`--> queued (attempts start again)
 *   sending --the core died--> retry, or dead at max_attempts (at
 *                              start-up, store_outbox_unstick: the
 *                              interrupted send counts as an attempt)
 *
 * A message keeps its identity through all of it, so a receiver can drop a
 * repeat: only a message in flight at a crash is ever sent twice.
 */
#ifndef ESCALON_OUTBOX_H
#define ESCALON_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "store.h"

/* 1 if the machine above has the transition. */
int outbox_may(enum outbox_state from, enum outbox_state to);

/*
 * The wait after the n-th failed attempt (n >= 1): retry_first doubled
 * each time, never more than retry_max.
 */
int64_t outbox_backoff(int n, int64_t retry_first, int64_t retry_max);

enum outbox_verdict { OUTBOX_DELIVERED, OUTBOX_TEMPORARY, OUTBOX_PERMANENT };

/*
 * An HTTP attempt: transport_ok 0 when no answer came (refused, timed
 * out). 2xx delivered; 408, 425, 429 and 5xx temporary; other answers
 * (the receiver refuses this message) permanent.
 */
enum outbox_verdict outbox_http_verdict(int transport_ok, long status);

struct outbox_next {
	enum outbox_state state;	/* sent, retry or dead */
	int attempts;
	int64_t next_attempt_at;
};

/* What follows attempt number row_attempts+1 with verdict v at now. */
void outbox_after(int row_attempts, enum outbox_verdict v, int64_t now,
    const struct conf_outbox *policy, struct outbox_next *out);

/*
 * The operator's `outbox --retry ID`: a dead or waiting row is queued
 * again, due now, with its attempts counted afresh (and an event on its
 * ticket). Returns 0, 1 (no such row, or sent or in flight: msg says) or
 * 2 (store failure).
 */
int outbox_requeue(struct store *st, int64_t now, int64_t id, char *msg,
    size_t msg_len);

#endif
