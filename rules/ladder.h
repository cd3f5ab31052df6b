/*
 * ladder: when a ticket moves up its escalation ladder (SPEC.md "SLA and
 * escalation semantics"), as pure logic.
 *
 * Level 1 is the first tier; level N+1's `after` is open time spent at
 * level N (in the SLA calendar), and its on_breach clocks move a ticket
 * from level N the moment one of them breaches. A severity's start_level
 * places a new ticket at once. The top level has no next step.
 */
#ifndef ESCALON_LADDER_H
#define ESCALON_LADDER_H

#include <stddef.h>
#include <stdint.h>

struct calendar;

struct ladder_level {
	int64_t after;		/* open seconds at the level below; 0: never */
	unsigned on_breach;	/* SLA_BIT()s that move a ticket here */
};

struct ladder {
	const struct ladder_level *levels;	/* levels[0] is level 1 */
	size_t n;
};

/*
 * The instant a ticket at `level` since `since` steps up by time, or 0
 * when it cannot (top of the ladder, or no `after` on the next level).
 */
int64_t ladder_next_step(const struct ladder *l, const struct calendar *cal,
    int level, int64_t since);

/* 1 if a breach of clock (an SLA_BIT) moves a ticket up from `level`. */
int ladder_steps_on_breach(const struct ladder *l, int level,
    unsigned clock_bit);

/* The level a new ticket starts on: start_level within the ladder, else 1. */
int ladder_start_level(const struct ladder *l, int start_level);

#endif
