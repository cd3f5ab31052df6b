/* Unit tests for gateway/outbox.c: transitions, backoff, verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox.h"

static void
test_transitions(void **state)
{
	/* Every pair: allowed exactly where outbox.h draws an arrow. */
	static const struct {
		enum outbox_state from, to;
		int ok;
	} cases[] = {
		{ OUTBOX_QUEUED, OUTBOX_SENDING, 1 },
		{ OUTBOX_QUEUED, OUTBOX_SENT, 0 },
		{ OUTBOX_QUEUED, OUTBOX_DEAD, 0 },
		{ OUTBOX_QUEUED, OUTBOX_RETRY, 0 },
		{ OUTBOX_SENDING, OUTBOX_SENT, 1 },
		{ OUTBOX_SENDING, OUTBOX_RETRY, 1 },
		{ OUTBOX_SENDING, OUTBOX_DEAD, 1 },
		{ OUTBOX_SENDING, OUTBOX_QUEUED, 0 },
		{ OUTBOX_RETRY, OUTBOX_SENDING, 1 },
		{ OUTBOX_RETRY, OUTBOX_QUEUED, 1 },
		{ OUTBOX_RETRY, OUTBOX_SENT, 0 },
		{ OUTBOX_DEAD, OUTBOX_QUEUED, 1 },
		{ OUTBOX_DEAD, OUTBOX_SENDING, 0 },
		{ OUTBOX_SENT, OUTBOX_QUEUED, 0 },
		{ OUTBOX_SENT, OUTBOX_SENDING, 0 },
		{ OUTBOX_SENT, OUTBOX_RETRY, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (outbox_may(cases[i].from, cases[i].to) != cases[i].ok)
			fail_msg("%s -> %s: want %d",
			    outbox_state_name(cases[i].from),
			    outbox_state_name(cases[i].to), cases[i].ok);
}

static void
test_backoff(void **state)
{
	/* retry_first 10s, retry_max 1h: the default policy. */
	static const struct {
		int n;
		int64_t want;
	} cases[] = {
		{ 1, 10 }, { 2, 20 }, { 3, 40 }, { 4, 80 }, { 5, 160 },
		{ 8, 1280 }, { 9, 2560 }, { 10, 3600 }, { 11, 3600 },
		{ 60, 3600 }, { 1000, 3600 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (outbox_backoff(cases[i].n, 10, 3600) != cases[i].want)
			fail_msg("attempt %d: %lld, want %lld", cases[i].n,
			    (long long)outbox_backoff(cases[i].n, 10, 3600),
			    (long long)cases[i].want);
	/* A first wait above the cap is capped. */
	assert_int_equal(outbox_backoff(1, 100, 60), 60);
}

static void
test_http_verdicts(void **state)
{
	static const struct {
		int transport_ok;
		long status;
		enum outbox_verdict want;
	} cases[] = {
		{ 0, 0, OUTBOX_TEMPORARY },	/* refused, timed out */
		{ 1, 200, OUTBOX_DELIVERED },
		{ 1, 202, OUTBOX_DELIVERED },
		{ 1, 204, OUTBOX_DELIVERED },
		{ 1, 301, OUTBOX_PERMANENT },	/* no redirects followed */
		{ 1, 400, OUTBOX_PERMANENT },
		{ 1, 404, OUTBOX_PERMANENT },
		{ 1, 408, OUTBOX_TEMPORARY },
		{ 1, 410, OUTBOX_PERMANENT },
		{ 1, 425, OUTBOX_TEMPORARY },
		{ 1, 429, OUTBOX_TEMPORARY },
		{ 1, 500, OUTBOX_TEMPORARY },
		{ 1, 503, OUTBOX_TEMPORARY },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (outbox_http_verdict(cases[i].transport_ok,
		    cases[i].status) != cases[i].want)
			fail_msg("case %zu (status %ld): wrong verdict", i,
			    cases[i].status);
}

static void
test_after_attempt(void **state)
{
	const struct conf_outbox policy = { .retry_first = 10,
	    .retry_max = 3600, .max_attempts = 3 };
	struct outbox_next next;
	const int64_t now = 1000;

	(void)state;
	outbox_after(0, OUTBOX_DELIVERED, now, &policy, &next);
	assert_int_equal(next.state, OUTBOX_SENT);
	assert_int_equal(next.attempts, 1);

	outbox_after(0, OUTBOX_TEMPORARY, now, &policy, &next);
	assert_int_equal(next.state, OUTBOX_RETRY);
	assert_int_equal(next.attempts, 1);
	assert_int_equal(next.next_attempt_at, now + 10);

	outbox_after(1, OUTBOX_TEMPORARY, now, &policy, &next);
	assert_int_equal(next.state, OUTBOX_RETRY);
	assert_int_equal(next.next_attempt_at, now + 20);

	/* The third failed attempt is the last one. */
	outbox_after(2, OUTBOX_TEMPORARY, now, &policy, &next);
	assert_int_equal(next.state, OUTBOX_DEAD);
	assert_int_equal(next.attempts, 3);

	/* A permanent failure is dead at once. */
	outbox_after(0, OUTBOX_PERMANENT, now, &policy, &next);
	assert_int_equal(next.state, OUTBOX_DEAD);
	assert_int_equal(next.attempts, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_http_verdicts),
		cmocka_unit_test(test_after_attempt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
