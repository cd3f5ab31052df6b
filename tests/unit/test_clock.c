/*
 * test_clock: RFC 3339 parsing and formatting, the fixed clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"

#define T_0930 INT64_C(1796117400)	/* 2026-12-01T09:30:00Z */
#define BAD INT64_MIN			/* clock_parse must refuse */

static const struct {
	const char *in;
	int64_t want;
} parse_cases[] = {
	/* Z, either case; T, t or a space between date and time. */
	{ "2026-12-01T09:30:00Z", T_0930 },
	{ "2026-12-01t09:30:00z", T_0930 },
	{ "2026-12-01 09:30:00Z", T_0930 },
	{ "1970-01-01T00:00:00Z", 0 },
	{ "1999-12-31T23:59:59Z", 946684799 },
	{ "2038-01-19T03:14:08Z", INT64_C(2147483648) },	/* past 2^31 */
	{ "2024-02-29T00:00:00Z", 1709164800 },	/* leap day */
	/* Offsets: local time minus the offset is UTC. */
	{ "2026-12-01T10:30:00+01:00", T_0930 },
	{ "2026-12-01T09:30:00+00:00", T_0930 },
	{ "2026-12-01T09:30:00-00:00", T_0930 },
	{ "2026-12-01T04:00:00-05:30", T_0930 },
	{ "2026-12-01T15:15:00+05:45", T_0930 },
	{ "2026-11-30T23:30:00-10:00", T_0930 },	/* across a day */
	{ "2026-12-02T08:30:00+23:00", T_0930 },
	/* Fractional seconds are dropped. */
	{ "2026-12-01T09:30:00.5Z", T_0930 },
	{ "2026-12-01T09:30:00.999999999Z", T_0930 },
	{ "2026-12-01T10:30:00.123+01:00", T_0930 },
	/* Invalid dates and times. */
	{ "2026-02-29T00:00:00Z", BAD },	/* 2026 is not a leap year */
	{ "2026-02-30T00:00:00Z", BAD },
	{ "2026-02-31T00:00:00Z", BAD },
	{ "2026-04-31T00:00:00Z", BAD },
	{ "2100-02-29T00:00:00Z", BAD },	/* century, not leap */
	{ "2026-13-01T00:00:00Z", BAD },
	{ "2026-00-10T00:00:00Z", BAD },
	{ "2026-12-00T00:00:00Z", BAD },
	{ "2026-12-32T00:00:00Z", BAD },
	{ "2026-12-01T24:00:00Z", BAD },
	{ "2026-12-01T09:60:00Z", BAD },
	{ "2026-12-01T09:30:61Z", BAD },
	{ "2026-12-01T09:30:00+24:00", BAD },
	{ "2026-12-01T09:30:00+01:60", BAD },
	/* Malformed. */
	{ "2026-12-01T09:30:00", BAD },		/* no zone */
	{ "2026-12-01T09:30:00+0100", BAD },	/* offset without colon */
	{ "2026-12-01T09:30:00+1", BAD },
	{ "2026-12-01T09:30:00Zjunk", BAD },
	{ "2026-12-01T09:30:00Z ", BAD },
	{ " 2026-12-01T09:30:00Z", BAD },
	{ "2026-12-01T09:30:00.Z", BAD },	/* dot without digits */
	{ "2026-12-01T09:30Z", BAD },		/* no seconds */
	{ "2026-12-01X09:30:00Z", BAD },
	{ "2026/12/01T09:30:00Z", BAD },
	{ "2026-1-01T09:30:00Z", BAD },
	{ "26-12-01T09:30:00Z", BAD },
	{ "2026-12-01", BAD },
	{ "2026", BAD },
	{ "", BAD },
	{ "garbage", BAD },
	{ "tomorrow at noon", BAD },
	{ "1796117400", BAD },
};

static void
test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]);
	    i++) {
		int64_t got = 12345;
		int rc = clock_parse(parse_cases[i].in, &got);

		if (parse_cases[i].want == BAD) {
			if (rc != -1)
				fail_msg("\"%s\": accepted as %lld",
				    parse_cases[i].in, (long long)got);
		} else if (rc != 0) {
			fail_msg("\"%s\": refused", parse_cases[i].in);
		} else if (got != parse_cases[i].want) {
			fail_msg("\"%s\": got %lld, want %lld",
			    parse_cases[i].in, (long long)got,
			    (long long)parse_cases[i].want);
		}
	}
}

static const struct {
	int64_t t;
	const char *want;
} format_cases[] = {
	{ 0, "1970-01-01T00:00:00Z" },
	{ -1, "1969-12-31T23:59:59Z" },
	{ 946684799, "1999-12-31T23:59:59Z" },
	{ 1709164800, "2024-02-29T00:00:00Z" },
	{ T_0930, "2026-12-01T09:30:00Z" },
	{ INT64_C(2147483648), "2038-01-19T03:14:08Z" },
};

static void
test_format_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]);
	    i++) {
		char buf[CLOCK_RFC3339_LEN];
		const char *got = clock_format(format_cases[i].t, buf);

		assert_ptr_equal(got, buf);
		if (strcmp(got, format_cases[i].want) != 0)
			fail_msg("%lld: got %s, want %s",
			    (long long)format_cases[i].t, got,
			    format_cases[i].want);
	}
}

/* What clock_format writes, clock_parse reads back, across the years. */
static void
test_round_trip(void **state)
{
	(void)state;
	for (int64_t t = -86400; t < INT64_C(4102444800); t += 7777777) {
		char buf[CLOCK_RFC3339_LEN];
		int64_t back = 0;

		clock_format(t, buf);
		if (clock_parse(buf, &back) != 0 || back != t)
			fail_msg("%lld -> %s -> %lld", (long long)t, buf,
			    (long long)back);
	}
}

static void
test_fixed_clock(void **state)
{
	struct clock c;
	int64_t at = T_0930;

	(void)state;
	clock_fixed_init(&c, &at);
	assert_int_equal(clock_now(&c), T_0930);
	assert_int_equal(clock_now(&c), T_0930);	/* it does not tick */
	at += 3600;
	assert_int_equal(clock_now(&c), T_0930 + 3600);
	at = 0;
	assert_int_equal(clock_now(&c), 0);
}

static void
test_system_clock(void **state)
{
	int64_t before, now, after;

	(void)state;
	before = (int64_t)time(NULL);
	now = clock_now(&clock_system);
	after = (int64_t)time(NULL);
	assert_true(now >= before && now <= after);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_format_table),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fixed_clock),
		cmocka_unit_test(test_system_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
