/*
 * test_ladder: escalation decisions (rules/ladder.c) over real calendars.
 *
 * The ladder of SPEC.md's example: level 1 (no way up to it), level 2
 * after 2 h at level 1 or when first_response breaches, level 3 after 4 h
 * at level 2 or when resolution breaches.
 *
 * - ladder_next_step: the next level's `after`, counted in the calendar
 *   from the instant the ticket reached its level; 0 at the top, when the
 *   next level has no `after`, or for a level outside the ladder.
 * - ladder_steps_on_breach: only the next level's on_breach clocks move
 *   a ticket, and nothing moves it from the top.
 * - ladder_start_level: a severity's start_level, clamped to the ladder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unicode/uclean.h>

#include "calendar.h"
#include "clock.h"
#include "ladder.h"
#include "sla.h"

#define M	INT64_C(60)
#define H	INT64_C(3600)

static struct calendar *always;		/* UTC, mon-sun 00:00-24:00 */
static struct calendar *business;	/* Berlin, mon-fri 09:00-17:00 */
static struct calendar *berlin247;	/* Berlin, around the clock */

static const struct ladder_level LEVELS[] = {
	{ 0, 0 },
	{ 2 * H, SLA_BIT(SLA_FIRST_RESPONSE) },
	{ 4 * H, SLA_BIT(SLA_RESOLUTION) },
};
static const struct ladder STD = { LEVELS, 3 };

static int64_t
at(const char *s)
{
	int64_t t;

	if (clock_parse(s, &t) < 0)
		fail_msg("bad RFC 3339 time in a case: %s", s);
	return t;
}

#define assert_instant(got, want) do {					\
	char g_[CLOCK_RFC3339_LEN], w_[CLOCK_RFC3339_LEN];		\
	int64_t got_ = (got), want_ = (want);				\
	if (got_ != want_)						\
		fail_msg("%s is %s (%lld), want %s (%lld)", #got,	\
		    got_ ? clock_format(got_, g_) : "0", (long long)got_, \
		    want_ ? clock_format(want_, w_) : "0",		\
		    (long long)want_);					\
} while (0)

static int
setup(void **state)
{
	const char *all[] = { "mon-sun 00:00-24:00" };
	const char *office[] = { "mon-fri 09:00-17:00" };
	const char *hol[] = { "2026-12-25", "2026-12-26" };
	char *err = NULL;

	(void)state;
	if ((always = calendar_new("UTC", all, 1, NULL, 0, &err)) == NULL ||
	    (business = calendar_new("Europe/Berlin", office, 1, hol, 2,
	    &err)) == NULL ||
	    (berlin247 = calendar_new("Europe/Berlin", all, 1, NULL, 0,
	    &err)) == NULL) {
		fprintf(stderr, "calendar: %s\n", err ? err : "?");
		free(err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	calendar_free(&always);
	calendar_free(&business);
	calendar_free(&berlin247);
	return 0;
}

/* ---- ladder_next_step ----------------------------------------------------- */

static void
test_next_step_24x7(void **state)
{
	int64_t s = at("2026-12-01T10:00:00Z");

	(void)state;
	/* Level N+1's after is the time spent at level N. */
	assert_instant(ladder_next_step(&STD, always, 1, s), s + 2 * H);
	assert_instant(ladder_next_step(&STD, always, 2, s), s + 4 * H);
	/* The top has no next step. */
	assert_instant(ladder_next_step(&STD, always, 3, s), 0);
	/* Outside the ladder. */
	assert_instant(ladder_next_step(&STD, always, 0, s), 0);
	assert_instant(ladder_next_step(&STD, always, -1, s), 0);
	assert_instant(ladder_next_step(&STD, always, 4, s), 0);
	assert_instant(ladder_next_step(&STD, always, 99, s), 0);
}

static void
test_next_step_in_business_hours(void **state)
{
	(void)state;
	/* Reached level 1 on Friday at 16:00: 1 h on Friday, 1 h on
	 * Monday. */
	assert_instant(ladder_next_step(&STD, business, 1,
	    at("2026-12-04T16:00:00+01:00")), at("2026-12-07T10:00:00+01:00"));
	/* Level 2 on Saturday: 4 h from Monday 09:00. */
	assert_instant(ladder_next_step(&STD, business, 2,
	    at("2026-12-05T11:00:00+01:00")), at("2026-12-07T13:00:00+01:00"));
	/* Ending exactly at closing time stays on that day. */
	assert_instant(ladder_next_step(&STD, business, 2,
	    at("2026-12-04T13:00:00+01:00")), at("2026-12-04T17:00:00+01:00"));
	/* Christmas Eve 16:00: the holidays and the weekend are skipped. */
	assert_instant(ladder_next_step(&STD, business, 1,
	    at("2026-12-24T16:00:00+01:00")), at("2026-12-28T10:00:00+01:00"));
	assert_instant(ladder_next_step(&STD, business, 3,
	    at("2026-12-24T16:00:00+01:00")), 0);
}

static void
test_next_step_across_dst(void **state)
{
	(void)state;
	/* Around the clock in Berlin, across the spring-forward night
	 * (2026-03-29, 02:00 -> 03:00): after counts real time, 2 h after
	 * 01:30 local (+01:00) is 04:30 local (+02:00). */
	assert_instant(ladder_next_step(&STD, berlin247, 1,
	    at("2026-03-29T01:30:00+01:00")), at("2026-03-29T04:30:00+02:00"));
	/* And the fall-back night: 4 h after 00:30 (+02:00) is 03:30
	 * (+01:00). */
	assert_instant(ladder_next_step(&STD, berlin247, 2,
	    at("2026-10-25T00:30:00+02:00")), at("2026-10-25T03:30:00+01:00"));
}

static void
test_next_step_without_after(void **state)
{
	/* Level 2 moves only on breach; level 3 after 30 minutes. */
	const struct ladder_level lv[] = {
		{ 0, 0 },
		{ 0, SLA_BIT(SLA_FIRST_RESPONSE) },
		{ 30 * M, 0 },
	};
	const struct ladder l = { lv, 3 };
	const struct ladder one = { lv, 1 };
	int64_t s = at("2026-12-01T10:00:00Z");

	(void)state;
	assert_instant(ladder_next_step(&l, always, 1, s), 0);
	assert_instant(ladder_next_step(&l, always, 2, s), s + 30 * M);
	assert_instant(ladder_next_step(&l, always, 3, s), 0);
	/* A ladder of one level: its only level is the top. */
	assert_instant(ladder_next_step(&one, always, 1, s), 0);
}

/* ---- ladder_steps_on_breach ------------------------------------------------ */

static void
test_steps_on_breach(void **state)
{
	const unsigned fr = SLA_BIT(SLA_FIRST_RESPONSE),
	    nu = SLA_BIT(SLA_NEXT_UPDATE), res = SLA_BIT(SLA_RESOLUTION);

	(void)state;
	/* From level 1: level 2's on_breach = first_response. */
	assert_true(ladder_steps_on_breach(&STD, 1, fr));
	assert_false(ladder_steps_on_breach(&STD, 1, nu));
	assert_false(ladder_steps_on_breach(&STD, 1, res));
	/* From level 2: level 3's on_breach = resolution. */
	assert_false(ladder_steps_on_breach(&STD, 2, fr));
	assert_false(ladder_steps_on_breach(&STD, 2, nu));
	assert_true(ladder_steps_on_breach(&STD, 2, res));
	/* Nothing moves a ticket from the top or from outside. */
	for (unsigned b = 1; b <= 4; b <<= 1) {
		assert_false(ladder_steps_on_breach(&STD, 3, b));
		assert_false(ladder_steps_on_breach(&STD, 0, b));
		assert_false(ladder_steps_on_breach(&STD, -1, b));
		assert_false(ladder_steps_on_breach(&STD, 4, b));
	}
	/* No clock at all never steps. */
	assert_false(ladder_steps_on_breach(&STD, 1, 0));
	/* Several clocks on one level. */
	const struct ladder_level lv[] = { { 0, 0 }, { 0, fr | nu } };
	const struct ladder l = { lv, 2 };
	assert_true(ladder_steps_on_breach(&l, 1, fr));
	assert_true(ladder_steps_on_breach(&l, 1, nu));
	assert_false(ladder_steps_on_breach(&l, 1, res));
	assert_false(ladder_steps_on_breach(&l, 2, fr));
}

/* ---- ladder_start_level ---------------------------------------------------- */

static void
test_start_level(void **state)
{
	const struct ladder one = { LEVELS, 1 };

	(void)state;
	/* Unset (0) or nonsense: level 1. */
	assert_int_equal(ladder_start_level(&STD, 0), 1);
	assert_int_equal(ladder_start_level(&STD, -3), 1);
	assert_int_equal(ladder_start_level(&STD, 1), 1);
	/* Within the ladder: as given. */
	assert_int_equal(ladder_start_level(&STD, 2), 2);
	assert_int_equal(ladder_start_level(&STD, 3), 3);
	/* Above the ladder: clamped to its top. */
	assert_int_equal(ladder_start_level(&STD, 4), 3);
	assert_int_equal(ladder_start_level(&STD, 1000), 3);
	assert_int_equal(ladder_start_level(&one, 2), 1);
	assert_int_equal(ladder_start_level(&one, 0), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_step_24x7),
		cmocka_unit_test(test_next_step_in_business_hours),
		cmocka_unit_test(test_next_step_across_dst),
		cmocka_unit_test(test_next_step_without_after),
		cmocka_unit_test(test_steps_on_breach),
		cmocka_unit_test(test_start_level),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	u_cleanup();	/* ICU's caches, for valgrind */
	return rc;
}
