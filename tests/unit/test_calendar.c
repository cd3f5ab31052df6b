/*
 * test_calendar: business-time arithmetic (rules/calendar.c).
 *
 * - Tables of calendar_add and calendar_between cases over a set of
 *   calendars (CALS): business hours with holidays, a lunch break,
 *   Saturdays, wrapping day ranges, night periods across midnight and
 *   across the DST changes of Europe/Berlin (2026-03-29, 2026-10-25) and
 *   America/New_York (2026-03-08, 2026-11-01), 24x7 calendars.
 * - Times are written either as local wall times in the case's calendar
 *   zone ("2026-12-04 16:00", converted here with the C library's own
 *   zone data, an oracle independent of ICU) or, around DST changes where
 *   a wall time can be ambiguous, as RFC 3339 with the offset spelled out
 *   ("2026-03-29T03:30:00+02:00").
 * - Properties over seeded random instants: between(from, add(from, d))
 *   == d and the second before the answer is open; between is additive;
 *   the 24x7 fast path agrees with the day-by-day walk.
 * - Bad input is refused with a message that quotes the culprit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <unicode/uclean.h>

#include "calendar.h"
#include "clock.h"

#define H	INT64_C(3600)
#define DAY	(24 * H)
#define NEVER	NULL	/* calendar_add answers -1 */

/* ---- the calendars --------------------------------------------------------- */

enum {
	BIZ,		/* Berlin office hours, four holidays */
	LUNCH,		/* two periods a day */
	SAT,		/* weekdays and a short Saturday */
	WRAP,		/* a day range across the week's end */
	EMPTY,		/* no hours: never open */
	UTC247,		/* 24x7 in UTC (fast path) */
	BER247,		/* 24x7 in Berlin (fast path) */
	BER247S,	/* the same, walked day by day (a far holiday) */
	NY247S,		/* 24x7 in New York, walked day by day */
	BERNIGHT,	/* every night 22:00-06:00, Berlin */
	NYNIGHT,	/* every night 22:00-06:00, New York */
	GAP,		/* sunday 02:30-04:00: boundaries in the DST gap */
	NIGHTHOL,	/* weeknights, a holiday on tuesday 2026-12-08 */
	OVERLAP,	/* overlapping periods, 24:00 ends */
	SATONLY,	/* 4 h a week */
	N_CALS
};

static const struct {
	const char *zone;
	const char *hours[4];		/* NULL-terminated */
	const char *holidays[5];	/* NULL-terminated */
} CALS[N_CALS] = {
	[BIZ] = { "Europe/Berlin", { "mon-fri 09:00-17:00" },
	    { "2026-04-06", "2026-05-25", "2026-12-25", "2026-12-26" } },
	[LUNCH] = { "Europe/Berlin",
	    { "mon-fri 09:00-12:00", "mon-fri 13:00-17:00" }, { NULL } },
	[SAT] = { "Europe/Berlin",
	    { "mon-fri 09:00-17:00", "sat 10:00-14:00" }, { NULL } },
	[WRAP] = { "UTC", { "fri-mon 10:00-14:00" }, { NULL } },
	[EMPTY] = { "UTC", { NULL }, { NULL } },
	[UTC247] = { "UTC", { "mon-sun 00:00-24:00" }, { NULL } },
	[BER247] = { "Europe/Berlin", { "mon-sun 00:00-24:00" }, { NULL } },
	[BER247S] = { "Europe/Berlin", { "mon-sun 00:00-24:00" },
	    { "2099-01-01" } },
	[NY247S] = { "America/New_York", { "mon-sun 00:00-24:00" },
	    { "2099-01-01" } },
	[BERNIGHT] = { "Europe/Berlin", { "mon-sun 22:00-06:00" }, { NULL } },
	[NYNIGHT] = { "America/New_York", { "mon-sun 22:00-06:00" },
	    { NULL } },
	[GAP] = { "Europe/Berlin", { "sun 02:30-04:00" }, { NULL } },
	[NIGHTHOL] = { "Europe/Berlin", { "mon-fri 22:00-06:00" },
	    { "2026-12-08" } },
	[OVERLAP] = { "UTC", { "mon-sun 22:00-06:00", "mon-sun 00:00-08:00",
	    "sat 20:00-24:00" }, { NULL } },
	[SATONLY] = { "UTC", { "sat 10:00-14:00" }, { NULL } },
};

static struct calendar *cals[N_CALS];

static size_t
count(const char *const *v)
{
	size_t n = 0;

	while (n < 4 && v[n] != NULL)
		n++;
	return n;
}

static int
setup(void **state)
{
	char *err = NULL;

	(void)state;
	for (int i = 0; i < N_CALS; i++) {
		cals[i] = calendar_new(CALS[i].zone, CALS[i].hours,
		    count(CALS[i].hours), CALS[i].holidays,
		    count(CALS[i].holidays), &err);
		if (cals[i] == NULL) {
			fprintf(stderr, "calendar %d: %s\n", i, err);
			free(err);
			return -1;
		}
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	for (int i = 0; i < N_CALS; i++)
		calendar_free(&cals[i]);
	return 0;
}

/* ---- times and durations --------------------------------------------------- */

/* "2026-12-04 16:00[:SS]" in ZONE, refusing wall times that do not exist
 * or exist twice there; or RFC 3339 ("...T...+01:00"). */
static int64_t
when(const char *zone, const char *s)
{
	struct tm tm = { 0 }, back;
	int64_t t;
	time_t tt, other;
	int sec = 0;

	if (strchr(s, 'T') != NULL) {
		if (clock_parse(s, &t) < 0)
			fail_msg("bad RFC 3339 time in a case: %s", s);
		return t;
	}
	if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &sec) < 5)
		fail_msg("bad local time in a case: %s", s);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	setenv("TZ", zone, 1);
	tzset();
	back = tm;
	tt = mktime(&back);
	if (back.tm_hour != tm.tm_hour || back.tm_min != tm.tm_min ||
	    back.tm_mday != tm.tm_mday)
		fail_msg("%s does not exist in %s: write it in RFC 3339", s,
		    zone);
	for (int d = -1; d <= 1; d += 2) {
		other = tt + d * 3600;
		localtime_r(&other, &back);
		if (back.tm_hour == tm.tm_hour && back.tm_min == tm.tm_min &&
		    back.tm_mday == tm.tm_mday)
			fail_msg("%s is ambiguous in %s: write it in RFC 3339",
			    s, zone);
	}
	return (int64_t)tt;
}

/* "4h", "1h30m", "3d" (24 h), "0s". */
static int64_t
dur(const char *s)
{
	int64_t total = 0, n;
	char *end;

	do {
		n = strtoll(s, &end, 10);
		switch (*end) {
		case 's': break;
		case 'm': n *= 60; break;
		case 'h': n *= H; break;
		case 'd': n *= DAY; break;
		default: fail_msg("bad duration in a case: %s", s);
		}
		total += n;
		s = end + 1;
	} while (*s != '\0');
	return total;
}

static const char *
fmt(int64_t t, char *buf)
{
	return t == -1 ? "-1" : clock_format(t, buf);
}

/* ---- calendar_add ---------------------------------------------------------- */

static const struct {
	int cal;
	const char *from, *dur, *want;	/* want NEVER: -1 */
} add_cases[] = {
	/* Office hours, Berlin, mon-fri 09:00-17:00. */
	{ BIZ, "2026-12-04 16:00" /* Fri */, "4h", "2026-12-07 12:00" },
	{ BIZ, "2026-12-04 18:00" /* Fri, closed */, "1h",
	    "2026-12-07 10:00" },
	{ BIZ, "2026-12-05 12:00" /* Sat */, "8h",
	    "2026-12-07 17:00" },	/* the close of a full Monday */
	{ BIZ, "2026-12-08 07:00" /* before hours */, "30m",
	    "2026-12-08 09:30" },
	{ BIZ, "2026-12-08 10:15" /* inside */, "2h", "2026-12-08 12:15" },
	{ BIZ, "2026-12-08 17:00" /* at the close */, "1h",
	    "2026-12-09 10:00" },
	{ BIZ, "2026-12-08 13:00", "4h",
	    "2026-12-08 17:00" },	/* ends at the close, not next morning */
	{ BIZ, "2026-12-08 16:59:59", "1s", "2026-12-08 17:00" },
	{ BIZ, "2026-12-08 17:00", "1s", "2026-12-09 09:00:01" },
	{ BIZ, "2026-12-08 10:00", "1h30m", "2026-12-08 11:30" },
	/* 0 is `from` itself, even when closed. */
	{ BIZ, "2026-12-05 12:00" /* Sat */, "0s", "2026-12-05 12:00" },
	{ BIZ, "2026-12-08 10:00", "0s", "2026-12-08 10:00" },
	/* Easter Monday 2026-04-06 is a holiday: Fri 1 h, Tue 1 h. */
	{ BIZ, "2026-04-03 16:00" /* Fri */, "2h", "2026-04-07 10:00" },
	/* Whit Monday 2026-05-25: the weekend and the holiday, 3 days. */
	{ BIZ, "2026-05-22 17:00" /* Fri, closed */, "8h",
	    "2026-05-26 17:00" },
	/* Christmas: Thu 24th 2 h; Fri 25th and Sat 26th holidays; Mon. */
	{ BIZ, "2026-12-24 15:00", "4h", "2026-12-28 11:00" },
	/* Business hours never see the Sunday DST change: 1 h Fri, Mon. */
	{ BIZ, "2026-03-27 16:00", "2h", "2026-03-30 10:00" },
	{ BIZ, "2026-10-23 16:00", "2h", "2026-10-26 10:00" },
	/* 3d = 72 open hours = 9 days of 8 h: Mon 7th .. Fri 11th (5),
	 * Mon 14th .. Thu 17th (4). */
	{ BIZ, "2026-12-07 09:00", "3d", "2026-12-17 17:00" },
	/* From Wed 13:00: Wed 4 + Thu 8 + Fri 8 = 20; next week 40 -> 60;
	 * Mon 21st 8 -> 68; Tue 22nd 4 more -> 13:00. */
	{ BIZ, "2026-12-09 13:00", "3d", "2026-12-22 13:00" },
	/* 1d = 24 open hours: Fri 8, Mon 8, Tue 8. */
	{ BIZ, "2026-12-18 09:00", "1d", "2026-12-22 17:00" },
	/* 10d = 240 h = 30 days of 8 h = six whole weeks from Nov 2nd. */
	{ BIZ, "2026-11-02 09:00", "10d", "2026-12-11 17:00" },
	/* Across the year's end: Dec 21-24 is 32 h; Dec 25 holiday; Dec 28
	 * -31 another 32 = 64; Jan 1 2027 (no holiday here) 8 = 72. */
	{ BIZ, "2026-12-21 09:00", "3d", "2027-01-01 17:00" },

	/* Lunch break: 09:00-12:00 and 13:00-17:00. */
	{ LUNCH, "2026-12-08 11:00", "2h", "2026-12-08 14:00" },
	{ LUNCH, "2026-12-08 12:30" /* at lunch */, "30m",
	    "2026-12-08 13:30" },
	{ LUNCH, "2026-12-08 09:00", "7h", "2026-12-08 17:00" },
	{ LUNCH, "2026-12-08 16:00", "3h", "2026-12-09 11:00" },
	{ LUNCH, "2026-12-08 12:00", "3h", "2026-12-08 16:00" },
	/* 7 h a day: 14h from Fri 09:00 is Fri + Mon. */
	{ LUNCH, "2026-12-04 09:00", "14h", "2026-12-07 17:00" },

	/* Saturday mornings. */
	{ SAT, "2026-12-04 16:00" /* Fri */, "4h", "2026-12-05 13:00" },
	{ SAT, "2026-12-05 13:00" /* Sat */, "2h", "2026-12-07 10:00" },

	/* fri-mon wraps the week: Mon 1 h, then Friday. */
	{ WRAP, "2026-12-07T13:00:00Z", "2h", "2026-12-11T11:00:00Z" },
	{ WRAP, "2026-12-08T00:00:00Z" /* Tue */, "9h",
	    "2026-12-13T11:00:00Z" },	/* Fri 4, Sat 4, Sun 1 */

	{ EMPTY, "2026-12-07T13:00:00Z", "1s", NEVER },
	{ EMPTY, "2026-12-07T13:00:00Z", "0s", "2026-12-07T13:00:00Z" },

	/* 24x7 UTC. */
	{ UTC247, "2026-12-04T16:00:00Z", "4h", "2026-12-04T20:00:00Z" },
	{ UTC247, "2026-12-04T16:00:00Z", "10d", "2026-12-14T16:00:00Z" },
	{ UTC247, "2026-12-31T23:59:59Z", "1s", "2027-01-01T00:00:00Z" },

	/* 24x7 Berlin: open time is real time; the wall clock jumps. */
	{ BER247, "2026-03-28T12:00:00+01:00", "24h",
	    "2026-03-29T13:00:00+02:00" },
	{ BER247S, "2026-03-28T12:00:00+01:00", "24h",
	    "2026-03-29T13:00:00+02:00" },
	{ BER247S, "2026-03-29T01:30:00+01:00", "1h",
	    "2026-03-29T03:30:00+02:00" },
	{ BER247S, "2026-10-24T12:00:00+02:00", "24h",
	    "2026-10-25T11:00:00+01:00" },
	{ BER247S, "2026-10-25T02:30:00+02:00", "1h",
	    "2026-10-25T02:30:00+01:00" },	/* the second 02:30 */
	{ BER247, "2026-10-25T02:30:00+02:00", "1h",
	    "2026-10-25T02:30:00+01:00" },
	/* 24x7 New York. */
	{ NY247S, "2026-03-08T01:30:00-05:00", "1h",
	    "2026-03-08T03:30:00-04:00" },
	{ NY247S, "2026-11-01T01:30:00-04:00", "1h",
	    "2026-11-01T01:30:00-05:00" },
	{ NY247S, "2026-03-07T12:00:00-05:00", "2d",
	    "2026-03-09T13:00:00-04:00" },

	/* Nights 22:00-06:00 in Berlin. Spring: Sat 22:00 CET (21:00Z) to
	 * Sun 06:00 CEST (04:00Z) is 7 real hours. */
	{ BERNIGHT, "2026-03-28T22:00:00+01:00", "7h",
	    "2026-03-29T06:00:00+02:00" },
	{ BERNIGHT, "2026-03-28T22:00:00+01:00", "7h30m",
	    "2026-03-29T22:30:00+02:00" },
	{ BERNIGHT, "2026-03-28T12:00:00+01:00", "3h",
	    "2026-03-29T01:00:00+01:00" },
	/* Autumn: Sat 22:00 CEST (20:00Z) to Sun 06:00 CET (05:00Z) is 9 h;
	 * from 23:00Z, 4 h is 03:00Z = 04:00 CET. */
	{ BERNIGHT, "2026-10-25T01:00:00+02:00", "4h",
	    "2026-10-25T04:00:00+01:00" },
	{ BERNIGHT, "2026-10-24T22:00:00+02:00", "9h",
	    "2026-10-25T06:00:00+01:00" },
	/* Ordinary nights: inside, across midnight; from 05:00 1 h to
	 * 06:00, then 22:00 + 1 h. */
	{ BERNIGHT, "2026-12-08 23:00", "2h", "2026-12-09 01:00" },
	{ BERNIGHT, "2026-12-09 05:00", "2h", "2026-12-09 23:00" },
	/* Nights in New York. Spring: Sat 22:00 EST (03:00Z) + 6 h =
	 * 09:00Z = 05:00 EDT. Autumn: 00:00 EDT (04:00Z) + 5 h = 09:00Z =
	 * 04:00 EST. */
	{ NYNIGHT, "2026-03-07T22:00:00-05:00", "6h",
	    "2026-03-08T05:00:00-04:00" },
	{ NYNIGHT, "2026-11-01T00:00:00-04:00", "5h",
	    "2026-11-01T04:00:00-05:00" },

	/* Sunday 02:30-04:00 in Berlin. On 2026-03-29 02:30 does not exist:
	 * the period runs 03:00-04:00 CEST. On 2026-10-25 it starts at the
	 * first 02:30 (00:30Z) and ends at 04:00 CET (03:00Z): 2.5 h. */
	{ GAP, "2026-03-29T00:00:00+01:00", "30m",
	    "2026-03-29T03:30:00+02:00" },
	{ GAP, "2026-03-29T00:00:00+01:00", "1h",
	    "2026-03-29T04:00:00+02:00" },
	{ GAP, "2026-10-25T00:00:00+02:00", "1h",
	    "2026-10-25T02:30:00+01:00" },
	{ GAP, "2026-10-25T00:00:00+02:00", "3h",
	    "2026-11-01T03:00:00+01:00" },	/* 2.5 h, then 30 min */

	/* Weeknights, tuesday 2026-12-08 a holiday: Monday's night still
	 * runs into it (it started on Monday), none starts on it. */
	{ NIGHTHOL, "2026-12-08 05:00", "2h", "2026-12-09 23:00" },
	{ NIGHTHOL, "2026-12-07 23:00", "7h", "2026-12-08 06:00" },

	/* Overlapping periods count once: Mon 22:00-Tue 06:00 and Tue
	 * 00:00-08:00 make Tue 00:00-08:00; then 22:00. */
	{ OVERLAP, "2026-12-08T00:00:00Z", "9h", "2026-12-08T23:00:00Z" },
	/* Saturday 20:00-24:00 runs into Sunday's 00:00-08:00. */
	{ OVERLAP, "2026-12-05T23:00:00Z", "2h", "2026-12-06T01:00:00Z" },
	{ OVERLAP, "2026-12-05T19:00:00Z", "12h", "2026-12-06T08:00:00Z" },
};

static void
test_add_table(void **state)
{
	char b1[CLOCK_RFC3339_LEN], b2[CLOCK_RFC3339_LEN];
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(add_cases) / sizeof(add_cases[0]); i++) {
		const char *zone = CALS[add_cases[i].cal].zone;
		int64_t from = when(zone, add_cases[i].from);
		int64_t want = add_cases[i].want == NEVER ? -1 :
		    when(zone, add_cases[i].want);
		int64_t got = calendar_add(cals[add_cases[i].cal], from,
		    dur(add_cases[i].dur));

		if (got != want) {
			print_error("add case %zu: %s + %s: got %s, want %s\n",
			    i, add_cases[i].from, add_cases[i].dur,
			    fmt(got, b1), fmt(want, b2));
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* ---- calendar_between ------------------------------------------------------ */

static const struct {
	int cal;
	const char *a, *b, *want;	/* want: a duration */
} between_cases[] = {
	/* Fri 12:00 .. Mon 12:00: 5 h + 3 h. */
	{ BIZ, "2026-12-04 12:00", "2026-12-07 12:00", "8h" },
	{ BIZ, "2026-12-05 00:00", "2026-12-07 00:00", "0s" },	/* weekend */
	{ BIZ, "2026-12-08 10:00", "2026-12-08 10:00", "0s" },	/* empty */
	{ BIZ, "2026-12-08 12:00", "2026-12-08 10:00", "0s" },	/* b < a */
	{ BIZ, "2026-12-08 07:00", "2026-12-08 20:00", "8h" },
	{ BIZ, "2026-12-08 16:00", "2026-12-09 10:00", "2h" },
	/* Christmas: Thu 24th 8 h, Mon 28th 8 h. */
	{ BIZ, "2026-12-24 09:00", "2026-12-28 17:00", "16h" },
	/* Easter Monday: Fri 3rd and Tue 7th only. */
	{ BIZ, "2026-04-03 09:00", "2026-04-07 17:00", "16h" },
	/* The DST weekends change nothing in business hours. */
	{ BIZ, "2026-03-27 09:00", "2026-03-30 17:00", "16h" },
	{ BIZ, "2026-10-23 09:00", "2026-10-26 17:00", "16h" },
	/* All of 2026: it starts on a Thursday, so 52 weeks + 1 weekday =
	 * 261 weekdays; holidays on weekdays: Apr 6, May 25, Dec 25 (Dec 26
	 * is a Saturday) -> 258 days x 8 h = 2064 h. */
	{ BIZ, "2026-01-01 00:00", "2027-01-01 00:00", "2064h" },

	{ LUNCH, "2026-12-08 10:00", "2026-12-08 15:00", "4h" },
	{ LUNCH, "2026-12-07 00:00", "2026-12-14 00:00", "35h" },
	{ SAT, "2026-12-05 00:00", "2026-12-06 00:00", "4h" },
	{ SAT, "2026-11-30 00:00", "2026-12-07 00:00", "44h" },
	/* Fri, Sat, Sun, Mon 4 h each. */
	{ WRAP, "2026-12-03T00:00:00Z", "2026-12-08T00:00:00Z", "16h" },
	{ EMPTY, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "0s" },
	{ UTC247, "2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z", "7d" },

	/* Whole local days across DST: 23 h and 25 h. */
	{ BER247S, "2026-03-29 00:00", "2026-03-30 00:00", "23h" },
	{ BER247S, "2026-10-25 00:00", "2026-10-26 00:00", "25h" },
	{ BER247S, "2026-03-28 00:00", "2026-04-04 00:00", "167h" },
	{ BER247, "2026-10-25 00:00", "2026-10-26 00:00", "25h" },
	{ NY247S, "2026-03-08 00:00", "2026-03-09 00:00", "23h" },
	{ NY247S, "2026-11-01 00:00", "2026-11-02 00:00", "25h" },
	/* Saturday night across the change: 7 h in spring, 9 h in autumn. */
	{ BERNIGHT, "2026-03-28 12:00", "2026-03-29 12:00", "7h" },
	{ BERNIGHT, "2026-10-24 12:00", "2026-10-25 12:00", "9h" },
	{ BERNIGHT, "2026-12-08 00:00", "2026-12-09 00:00", "8h" },
	{ NYNIGHT, "2026-03-07 12:00", "2026-03-08 12:00", "7h" },
	{ NYNIGHT, "2026-10-31 12:00", "2026-11-01 12:00", "9h" },
	/* 1 h in spring (the gap eats 02:30-03:00), 2.5 h in autumn, 1.5 h
	 * on an ordinary Sunday. */
	{ GAP, "2026-03-29 00:00", "2026-03-29 12:00", "1h" },
	{ GAP, "2026-10-25 00:00", "2026-10-25 12:00", "2h30m" },
	{ GAP, "2026-11-01 00:00", "2026-11-01 12:00", "1h30m" },
	/* Monday night runs into the holiday, Tuesday night is closed. */
	{ NIGHTHOL, "2026-12-07 12:00", "2026-12-09 12:00", "8h" },
	/* Friday night's tail counts from Saturday 00:00 (6 h); no night
	 * starts on the weekend. */
	{ NIGHTHOL, "2026-12-05 00:00", "2026-12-07 12:00", "6h" },
	/* Tue: 00:00-08:00 and 22:00-24:00. */
	{ OVERLAP, "2026-12-08T00:00:00Z", "2026-12-09T00:00:00Z", "10h" },
	/* Mon 22:00-Tue 06:00 covers b; Tue's 00:00-08:00 adds nothing. */
	{ OVERLAP, "2026-12-07T23:00:00Z", "2026-12-08T03:00:00Z", "4h" },
	/* Sat 00:00-08:00, 20:00-24:00 (22:00 merges into it). */
	{ OVERLAP, "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z", "12h" },
};

static void
test_between_table(void **state)
{
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(between_cases) /
	    sizeof(between_cases[0]); i++) {
		const char *zone = CALS[between_cases[i].cal].zone;
		int64_t got = calendar_between(cals[between_cases[i].cal],
		    when(zone, between_cases[i].a),
		    when(zone, between_cases[i].b));
		int64_t want = dur(between_cases[i].want);

		if (got != want) {
			print_error("between case %zu: %s .. %s: got %lld s, "
			    "want %lld s\n", i, between_cases[i].a,
			    between_cases[i].b, (long long)got,
			    (long long)want);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* ---- properties ------------------------------------------------------------ */

static uint64_t rng = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int64_t
rand_in(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next_rand() % (uint64_t)(hi - lo));
}

/* 2025-01-01T00:00:00Z .. 2029-01-01T00:00:00Z: DST changes, holidays and
 * more dates than the cache holds, so entries are evicted and refilled. */
#define R_LO	INT64_C(1735689600)
#define R_HI	INT64_C(1861920000)

static void
test_add_between_agree(void **state)
{
	static const int which[] = { BIZ, LUNCH, SAT, WRAP, BER247S, NY247S,
	    BERNIGHT, NYNIGHT, GAP, NIGHTHOL, OVERLAP, SATONLY, UTC247 };
	char b1[CLOCK_RFC3339_LEN];

	(void)state;
	for (size_t k = 0; k < sizeof(which) / sizeof(which[0]); k++) {
		const struct calendar *c = cals[which[k]];

		for (int i = 0; i < 2000; i++) {
			int64_t from = rand_in(R_LO, R_HI);
			/* mostly short SLAs, some of weeks */
			int64_t d = i % 4 == 0 ? rand_in(1, 400 * H) :
			    rand_in(1, 10 * H);
			int64_t t = calendar_add(c, from, d);

			if (t == -1 || calendar_between(c, from, t) != d ||
			    calendar_between(c, from, t - 1) != d - 1) {
				print_error("cal %d: add(%s, %lld) = %lld, "
				    "between = %lld\n", which[k],
				    clock_format(from, b1), (long long)d,
				    (long long)t, (long long)(t == -1 ? 0 :
				    calendar_between(c, from, t)));
				fail();
			}
		}
	}
}

static void
test_between_additive(void **state)
{
	static const int which[] = { BIZ, LUNCH, BERNIGHT, NYNIGHT, GAP,
	    NIGHTHOL, OVERLAP, BER247S };

	(void)state;
	for (size_t k = 0; k < sizeof(which) / sizeof(which[0]); k++) {
		const struct calendar *c = cals[which[k]];

		for (int i = 0; i < 2000; i++) {
			int64_t a = rand_in(R_LO, R_HI);
			int64_t b = a + rand_in(0, 20 * DAY);
			int64_t m = rand_in(a, b + 1);

			assert_int_equal(calendar_between(c, a, b),
			    calendar_between(c, a, m) +
			    calendar_between(c, m, b));
			assert_true(calendar_between(c, a, b) <= b - a);
		}
	}
}

/* The 24x7 fast path (BER247) and the day-by-day walk (BER247S, whose only
 * holiday is in 2099) give the same answers, which are real time. */
static void
test_fast_path_agrees(void **state)
{
	(void)state;
	for (int i = 0; i < 5000; i++) {
		int64_t from = rand_in(R_LO, R_HI);
		int64_t d = rand_in(1, 30 * DAY);
		int64_t b = from + rand_in(0, 30 * DAY);

		assert_int_equal(calendar_add(cals[BER247], from, d), from + d);
		assert_int_equal(calendar_add(cals[BER247S], from, d),
		    from + d);
		assert_int_equal(calendar_add(cals[UTC247], from, d), from + d);
		assert_int_equal(calendar_between(cals[BER247], from, b),
		    b - from);
		assert_int_equal(calendar_between(cals[BER247S], from, b),
		    b - from);
	}
}

/* ---- limits ---------------------------------------------------------------- */

static void
test_horizon(void **state)
{
	const struct calendar *sat = cals[SATONLY];
	int64_t sat0 = when("UTC", "2026-01-03 10:00");	/* a Saturday */

	(void)state;
	/* N Saturdays of 4 h end on the Nth Saturday at 14:00. */
	assert_int_equal(calendar_add(sat, sat0, 4 * H), sat0 + 4 * H);
	assert_int_equal(calendar_add(sat, sat0, 470 * 4 * H),
	    sat0 + 469 * 7 * DAY + 4 * H);	/* 9 years ahead: fine */
	assert_int_equal(calendar_add(sat, sat0, 530 * 4 * H),
	    -1);				/* 3710 days: too far */
	assert_int_equal(calendar_add(cals[UTC247], sat0, CALENDAR_HORIZON),
	    sat0 + CALENDAR_HORIZON);
	assert_int_equal(calendar_add(cals[UTC247], sat0,
	    CALENDAR_HORIZON + 1), -1);
	assert_int_equal(calendar_add(cals[EMPTY], sat0, 1), -1);
	assert_int_equal(calendar_add(cals[EMPTY], sat0, 0), sat0);
	assert_int_equal(calendar_add(cals[BIZ], sat0, -5), sat0);
	/* Extreme instants: no overflow, no endless walk. */
	assert_int_equal(calendar_add(cals[BIZ], INT64_MAX, H), -1);
	assert_int_equal(calendar_add(cals[BIZ], INT64_MIN, H), -1);
	assert_int_equal(calendar_add(cals[UTC247], INT64_MAX - 1, H), -1);
	assert_int_equal(calendar_add(cals[BIZ], sat0, INT64_MAX), -1);
	assert_int_equal(calendar_between(cals[EMPTY], INT64_MIN, INT64_MAX),
	    0);
	assert_int_equal(calendar_between(cals[BIZ], INT64_MAX - 10,
	    INT64_MAX), 0);
	/* Before 1970-01-02 the calendar is closed: from -1 h in UTC, 1 h
	 * of open time ends at 1970-01-02T01:00Z. */
	assert_int_equal(calendar_add(cals[UTC247], -H, H), DAY + H);
	assert_int_equal(calendar_between(cals[UTC247], INT64_MIN, DAY + H),
	    H);
}

/* ---- bad input ------------------------------------------------------------- */

static const struct {
	const char *zone, *hours, *holiday;
	const char *quoted;	/* the message names it */
} bad_cases[] = {
	{ "Mars/Base", "mon-fri 09:00-17:00", NULL, "\"Mars/Base\"" },
	{ "", "mon-fri 09:00-17:00", NULL, "time zone" },
	{ "europe/berlin", "mon-fri 09:00-17:00", NULL, "\"europe/berlin\"" },
	{ "Etc/Unknown", "mon-fri 09:00-17:00", NULL, "\"Etc/Unknown\"" },
	{ "GMT+05:00", "mon-fri 09:00-17:00", NULL, "\"GMT+05:00\"" },
	{ "Europe/Berlin\n", "mon-fri 09:00-17:00", NULL, "time zone" },
	{ "UTC", "mon-fri 9-17", NULL, "\"mon-fri 9-17\"" },
	{ "UTC", "xyz 09:00-17:00", NULL, "\"xyz 09:00-17:00\": unknown day" },
	{ "UTC", "mon 25:00-26:00", NULL, "\"mon 25:00-26:00\"" },
	{ "UTC", "mon 09:60-10:00", NULL, "\"mon 09:60-10:00\"" },
	{ "UTC", "mon 24:00-02:00", NULL, "\"mon 24:00-02:00\"" },
	{ "UTC", "mon 09:00-09:00", NULL, "empty" },
	{ "UTC", "mon 00:00-00:00", NULL, "empty" },
	{ "UTC", "mon 09:00-17:00 ", NULL, "unexpected text" },
	{ "UTC", "monday 09:00-17:00", NULL, "unknown day" },
	{ "UTC", "mon-xyz 09:00-17:00", NULL, "unknown day" },
	{ "UTC", "mon-fri09:00-17:00", NULL, "space" },
	{ "UTC", "mon-fri 09:00 17:00", NULL, "HH:MM-HH:MM" },
	{ "UTC", "", NULL, "unknown day" },
	{ "UTC", "mon-fri 09:00-17:00", "2026-02-30", "\"2026-02-30\"" },
	{ "UTC", "mon-fri 09:00-17:00", "2026-13-01", "\"2026-13-01\"" },
	{ "UTC", "mon-fri 09:00-17:00", "2026-12-25x", "\"2026-12-25x\"" },
	{ "UTC", "mon-fri 09:00-17:00", "26-12-25", "\"26-12-25\"" },
	{ "UTC", "mon-fri 09:00-17:00", "1969-12-31", "\"1969-12-31\"" },
	{ "UTC", "mon-fri 09:00-17:00", "2025-02-29", "\"2025-02-29\"" },
};

static void
test_bad_input(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *hours[] = { bad_cases[i].hours };
		const char *hol[] = { bad_cases[i].holiday };
		char *err = NULL;
		struct calendar *c = calendar_new(bad_cases[i].zone, hours, 1,
		    hol, hol[0] != NULL, &err);

		if (c != NULL || err == NULL ||
		    strstr(err, bad_cases[i].quoted) == NULL) {
			print_error("bad case %zu: got %s\n", i,
			    err != NULL ? err : "no error");
			fail();
		}
		free(err);
	}
}

static void
test_good_input(void **state)
{
	static const char *const hours[] = {
		"mon-fri 09:00-12:00", "mon-fri\t13:00-17:00",
		"sat-sun  10:00-24:00", "sun-mon 23:00-01:00",
		"fri-mon 22:00-06:00", "wed 00:00-24:00", "thu-wed 12:00-12:30",
	};
	static const char *const hol[] = { "2024-02-29", "2026-12-25",
	    "2026-12-25" /* twice is fine */, "2199-12-31" };
	char *err = NULL;
	struct calendar *c;

	(void)state;
	c = calendar_new("US/Eastern", hours, 7, hol, 4, &err);
	assert_non_null(c);
	assert_null(err);
	assert_string_equal(calendar_timezone(c), "US/Eastern");
	calendar_free(&c);
	assert_null(c);
	calendar_free(&c);	/* NULL is fine */

	/* No hours: a calendar that is never open; error_r may be NULL. */
	c = calendar_new("UTC", NULL, 0, NULL, 0, NULL);
	assert_non_null(c);
	assert_int_equal(calendar_add(c, R_LO, 1), -1);
	assert_int_equal(calendar_between(c, R_LO, R_HI), 0);
	calendar_free(&c);
	assert_null(calendar_new("Mars/Base", NULL, 0, NULL, 0, NULL));
}

static void
test_limits_on_input(void **state)
{
	const char *many[CALENDAR_MAX_HOURS + 1];
	char buf[CALENDAR_MAX_PERIODS + 1][32];
	char *err = NULL;
	struct calendar *c;

	(void)state;
	for (int i = 0; i <= CALENDAR_MAX_HOURS; i++)
		many[i] = "mon 09:00-17:00";
	/* 64 copies of one period merge into one. */
	c = calendar_new("UTC", many, CALENDAR_MAX_HOURS, NULL, 0, &err);
	assert_non_null(c);
	calendar_free(&c);
	assert_null(calendar_new("UTC", many, CALENDAR_MAX_HOURS + 1, NULL, 0,
	    &err));
	assert_non_null(strstr(err, "too many hours"));
	free(err);
	err = NULL;
	/* 17 separate periods on a monday. */
	for (int i = 0; i <= CALENDAR_MAX_PERIODS; i++) {
		snprintf(buf[i], sizeof(buf[i]), "mon %02d:00-%02d:30", i, i);
		many[i] = buf[i];
	}
	c = calendar_new("UTC", many, CALENDAR_MAX_PERIODS, NULL, 0, &err);
	assert_non_null(c);
	calendar_free(&c);
	assert_null(calendar_new("UTC", many, CALENDAR_MAX_PERIODS + 1, NULL,
	    0, &err));
	assert_non_null(strstr(err, "too many periods on mon"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_table),
		cmocka_unit_test(test_between_table),
		cmocka_unit_test(test_add_between_agree),
		cmocka_unit_test(test_between_additive),
		cmocka_unit_test(test_fast_path_agrees),
		cmocka_unit_test(test_horizon),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_good_input),
		cmocka_unit_test(test_limits_on_input),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	u_cleanup();	/* ICU's caches, for valgrind */
	return rc;
}
