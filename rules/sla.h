/*
 * sla: the three SLA clocks of a ticket (SPEC.md "SLA and escalation
 * semantics"), as pure logic over plain facts and a business calendar.
 *
 *   first_response  from creation to the first public agent reply
 *   next_update     from a customer message (after the first response)
 *                   to the next public agent reply
 *   resolution      from creation (or the last reopening) to resolved;
 *                   paused while the ticket is pending
 *
 * Resolving a ticket stops all three.
 *
 * Targets count open time of the SLA's calendar. A clock warns at warn_at
 * percent of its target and breaches at the target, once each per cycle:
 * the caller keeps which have happened (sla_facts.warned/breached, one bit
 * per clock) and clears a clock's bits when its cycle restarts.
 */
#ifndef ESCALON_SLA_H
#define ESCALON_SLA_H

#include <stddef.h>
#include <stdint.h>

struct calendar;

enum sla_clock { SLA_FIRST_RESPONSE, SLA_NEXT_UPDATE, SLA_RESOLUTION };
#define SLA_N_CLOCKS 3
#define SLA_BIT(clock) (1u << (clock))

const char *sla_clock_name(enum sla_clock c);
/* "first_response" ... -> clock; -1 if unknown. */
int sla_clock_parse(const char *name);

struct sla_policy {
	const struct calendar *calendar;
	int64_t target[SLA_N_CLOCKS];	/* open seconds; 0: clock unused */
	int warn_at;			/* percent, 1..100 */
};

/* A stretch of time the resolution clock does not count: [from, to). */
struct sla_pause {
	int64_t from, to;		/* to 0: still paused */
};

struct sla_facts {
	int64_t created_at;
	int64_t first_response_at;	/* 0: no public reply yet */
	int64_t awaiting_since;		/* 0: no customer message waits for
					   a reply (after the first one) */
	int64_t resolution_start;	/* creation, or the last reopening */
	int64_t resolved_at;		/* 0: not resolved */
	const struct sla_pause *pauses;	/* since resolution_start, in order */
	size_t n_pauses;
	unsigned warned, breached;	/* SLA_BIT()s already fired */
};

enum sla_clock_status { SLA_IDLE, SLA_RUNNING, SLA_PAUSED, SLA_STOPPED };

struct sla_clock_state {
	enum sla_clock_status status;
	int64_t warn_at, due_at;	/* instants; 0 when not running */
	int64_t elapsed;		/* open seconds counted so far */
};

/* Each clock's state at instant now. */
void sla_evaluate(const struct sla_policy *p, const struct sla_facts *f,
    int64_t now, struct sla_clock_state out[SLA_N_CLOCKS]);

/*
 * The earliest moment after which a warning or breach not yet fired is
 * due, or 0 when none can happen (all stopped, paused or fired).
 */
int64_t sla_next_due(const struct sla_clock_state st[SLA_N_CLOCKS],
    const struct sla_facts *f);

#endif
