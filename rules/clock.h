/*
 * clock: the one source of "now" for everything that reasons about time
 * (tickets, SLA clocks, the scheduler), so tests and `escalon due --at` can
 * evaluate at any instant. Instants are Unix seconds, UTC.
 */
#ifndef ESCALON_CLOCK_H
#define ESCALON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

struct clock {
	int64_t (*now)(void *arg);
	void *arg;
};

/* The wall clock. */
extern const struct clock clock_system;

static inline int64_t
clock_now(const struct clock *c)
{
	return c->now(c->arg);
}

/* A clock that always reads *at; tests move it by writing *at. */
void clock_fixed_init(struct clock *c, int64_t *at);

/* "2026-12-01T09:30:00Z" into buf (at least CLOCK_RFC3339_LEN bytes);
 * instants outside years 0000..9999 are clamped to them. */
#define CLOCK_RFC3339_LEN 32
const char *clock_format(int64_t t, char *buf);

/*
 * RFC 3339: "2026-12-01T09:30:00Z", "2026-12-01T10:30:00+01:00", optional
 * fractional seconds (dropped); also "2026-12-01 09:30:00Z". -1 if malformed.
 */
int clock_parse(const char *s, int64_t *t_r);

#endif
