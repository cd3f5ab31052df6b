/*
 * scheduler: applies the SLA clocks and the escalation ladder to tickets
 * (rules/sla.h, rules/ladder.h decide; this file records and sends).
 *
 * Every change to a ticket ends with sched_plan(), which sets its due
 * times and next_due_at: the earliest instant anything can happen to it
 * (a warning, a breach, a ladder step, a customer update). The core
 * sleeps until the earliest next_due_at of all tickets and calls
 * sched_fire() on the tickets that are due, in batches: the cost of a
 * wake-up grows with the due tickets, not with the open ones.
 *
 * All functions work inside the caller's transaction and leave writing
 * the ticket row (store_ticket_update) to the caller.
 */
#ifndef ESCALON_SCHEDULER_H
#define ESCALON_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "store.h"

/* Set t's due_* and next_due_at as of now. 0, or -1 (store). */
int sched_plan(struct store *st, const struct env *e, struct ticket *t,
    int64_t now);

/*
 * Everything due on t at now: sla_warning / sla_breached events and notify
 * webhooks, ladder steps by time or by breach, `update` messages to the
 * customer while escalated; then sched_plan. 0, or -1 with error.
 */
int sched_fire(struct store *st, const struct env *e, struct ticket *t,
    int64_t now, char *error, size_t error_len);

/*
 * Fire every ticket due at now, up to max tickets, SCHED_BATCH per
 * transaction (the wake-up of the core's timer). Returns how many were
 * fired, or -1 when the store failed; *more_r is set when due tickets
 * remain.
 */
#define SCHED_BATCH 500
int sched_run_due(struct store *st, const struct env *e, int64_t now,
    int max, int *more_r);

/*
 * Move t to level `to` (one up from a person or the clock; start_level at
 * creation): event escalated {from, to, why} and the level's team; unless
 * quiet, notify ticket.escalated, the customer's `escalated` message and
 * the new team's agent_escalated mail.
 */
int sched_escalate(struct store *st, const struct env *e, struct ticket *t,
    int to, const char *why, const char *actor, int quiet,
    int64_t now, char *error, size_t error_len);

/*
 * A severity's start_level places t on the ladder at once (a new ticket,
 * or one whose severity was raised): escalates when t is below it.
 */
int sched_start_level(struct store *st, const struct env *e,
    struct ticket *t, int64_t now, int at_creation, char *error,
    size_t error_len);

/*
 * Open seconds of [a, b) in SLA `sla`'s calendar, less the stretches ticket
 * ticket_id spent pending: the business-time durations of the report.
 * -1 when the SLA (or its calendar) is not configured or the store fails.
 */
int64_t sched_open_time(struct store *st, const struct env *e,
    const char *sla, int64_t ticket_id, int64_t a, int64_t b);

/*
 * The SLA clocks of t at now, for `show` and `due`: fills states (with
 * SLA_N_CLOCKS entries). Returns 0, or 1 when t's SLA is not configured
 * (states all idle), -1 on store failure.
 */
int sched_clocks(struct store *st, const struct env *e,
    const struct ticket *t, int64_t now, struct sla_clock_state *states);

#endif
