/*
 * test_sla: the three SLA clocks (rules/sla.c) over real calendars
 * (rules/calendar.c).
 *
 * - A 24x7 calendar in UTC, where open time is plain elapsed time, for the
 *   states of each clock: first_response running from creation and stopped
 *   by the first public reply; next_update idle until the first response,
 *   then running from awaiting_since; resolution paused while pending (its
 *   due instant pushed by the time paused), resumed, stopped at resolve,
 *   restarted by a reopening (resolution_start).
 * - sla_next_due: the earliest warning or breach not yet fired; the
 *   warned/breached bits take a clock's instants out; paused, stopped and
 *   idle clocks give nothing; a target of 0 leaves its clock idle.
 * - Business hours in Europe/Berlin (mon-fri 09:00-17:00, Christmas
 *   holidays): targets counted in open time across a weekend and a
 *   holiday, and a pause over a weekend that does not count the closed
 *   time twice.
 *
 * Instants are written in RFC 3339 (with the Berlin offset spelled out in
 * the business cases) and parsed with clock_parse.
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
#include "sla.h"

#define M	INT64_C(60)
#define H	INT64_C(3600)
#define DAY	(24 * H)

#define FR	SLA_FIRST_RESPONSE
#define NU	SLA_NEXT_UPDATE
#define RES	SLA_RESOLUTION

static struct calendar *always;		/* UTC, mon-sun 00:00-24:00 */
static struct calendar *business;	/* Berlin, mon-fri 09:00-17:00 */

static int64_t
at(const char *s)
{
	int64_t t;

	if (clock_parse(s, &t) < 0)
		fail_msg("bad RFC 3339 time in a case: %s", s);
	return t;
}

static const char *
fmt(int64_t t, char *buf)
{
	if (t == 0)
		return strcpy(buf, "0");
	return clock_format(t, buf);
}

/* Instants compared with both sides printed as times on failure. */
#define assert_instant(got, want) do {					\
	char g_[CLOCK_RFC3339_LEN], w_[CLOCK_RFC3339_LEN];		\
	int64_t got_ = (got), want_ = (want);				\
	if (got_ != want_)						\
		fail_msg("%s is %s (%lld), want %s (%lld)", #got,	\
		    fmt(got_, g_), (long long)got_, fmt(want_, w_),	\
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
	always = calendar_new("UTC", all, 1, NULL, 0, &err);
	if (always != NULL)
		business = calendar_new("Europe/Berlin", office, 1, hol, 2,
		    &err);
	if (always == NULL || business == NULL) {
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
	return 0;
}

/* The 24x7 policy: 4h / 8h / 3d, warn at 80 %. */
static struct sla_policy
std_policy(void)
{
	return (struct sla_policy){ .calendar = always,
	    .target = { 4 * H, 8 * H, 3 * DAY }, .warn_at = 80 };
}

/* Business hours: 4h / 8h / 16h (two working days), warn at 50 %. */
static struct sla_policy
biz_policy(void)
{
	return (struct sla_policy){ .calendar = business,
	    .target = { 4 * H, 8 * H, 16 * H }, .warn_at = 50 };
}

static struct sla_facts
facts(int64_t created)
{
	return (struct sla_facts){ .created_at = created,
	    .resolution_start = created };
}

static void
assert_state(const struct sla_clock_state *s, enum sla_clock_status status,
    int64_t warn_at, int64_t due_at, int64_t elapsed)
{
	static const char *names[] = { "idle", "running", "paused",
	    "stopped" };

	if (s->status != status)
		fail_msg("status %s, want %s", names[s->status],
		    names[status]);
	assert_instant(s->warn_at, warn_at);
	assert_instant(s->due_at, due_at);
	assert_int_equal(s->elapsed, elapsed);
}

#define C0	"2026-12-01T10:00:00Z"

/* ---- names ----------------------------------------------------------------- */

static void
test_clock_names(void **state)
{
	(void)state;
	assert_string_equal(sla_clock_name(FR), "first_response");
	assert_string_equal(sla_clock_name(NU), "next_update");
	assert_string_equal(sla_clock_name(RES), "resolution");
	assert_string_equal(sla_clock_name((enum sla_clock)3), "?");
	for (int c = 0; c < SLA_N_CLOCKS; c++)
		assert_int_equal(sla_clock_parse(sla_clock_name(c)), c);
	assert_int_equal(sla_clock_parse("resolve"), -1);
	assert_int_equal(sla_clock_parse(""), -1);
	assert_int_equal(sla_clock_parse("First_Response"), -1);
	assert_int_equal(SLA_BIT(FR) | SLA_BIT(NU) | SLA_BIT(RES), 7);
}

/* ---- 24x7 ------------------------------------------------------------------ */

static void
test_new_ticket(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	/* At the creation instant: running, nothing counted yet. */
	sla_evaluate(&p, &f, c, s);
	assert_state(&s[FR], SLA_RUNNING, c + 3 * H + 12 * M, c + 4 * H, 0);
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);
	assert_state(&s[RES], SLA_RUNNING, c + 57 * H + 36 * M, c + 72 * H,
	    0);
	assert_instant(sla_next_due(s, &f), c + 3 * H + 12 * M);

	/* An hour later: the instants do not move, elapsed does. */
	sla_evaluate(&p, &f, c + H, s);
	assert_state(&s[FR], SLA_RUNNING, c + 3 * H + 12 * M, c + 4 * H, H);
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);
	assert_state(&s[RES], SLA_RUNNING, c + 57 * H + 36 * M, c + 72 * H,
	    H);
	assert_instant(sla_next_due(s, &f), c + 3 * H + 12 * M);

	/* Past the target with nothing fired: still running, and the
	 * warning (long due) is what comes next. */
	sla_evaluate(&p, &f, c + 5 * H, s);
	assert_state(&s[FR], SLA_RUNNING, c + 3 * H + 12 * M, c + 4 * H,
	    5 * H);
	assert_instant(sla_next_due(s, &f), c + 3 * H + 12 * M);

	/* resolution_start 0 falls back to the creation instant. */
	f.resolution_start = 0;
	sla_evaluate(&p, &f, c + H, s);
	assert_state(&s[RES], SLA_RUNNING, c + 57 * H + 36 * M, c + 72 * H,
	    H);
}

static void
test_first_response_stops_its_clock(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	f.first_response_at = c + 2 * H;
	sla_evaluate(&p, &f, c + 5 * H, s);
	assert_state(&s[FR], SLA_STOPPED, 0, 0, 2 * H);
	/* No customer message waits: next_update stays idle. */
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);
	assert_state(&s[RES], SLA_RUNNING, c + 57 * H + 36 * M, c + 72 * H,
	    5 * H);
	/* A stopped clock is never due, even unwarned: resolution's
	 * warning comes next. */
	assert_instant(sla_next_due(s, &f), c + 57 * H + 36 * M);

	/* A reply after the breach stops it too, with the time it took. */
	f.first_response_at = c + 5 * H;
	f.warned = f.breached = SLA_BIT(FR);
	sla_evaluate(&p, &f, c + 6 * H, s);
	assert_state(&s[FR], SLA_STOPPED, 0, 0, 5 * H);
	assert_instant(sla_next_due(s, &f), c + 57 * H + 36 * M);
}

static void
test_next_update(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	/* A customer message before the first response does not start it:
	 * first_response covers that wait. */
	f.awaiting_since = c + H;
	sla_evaluate(&p, &f, c + 2 * H, s);
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);
	assert_int_equal(s[FR].status, SLA_RUNNING);

	/* First response at 2h, the customer writes at 3h: running from
	 * awaiting_since, 8h target, warning at 6h24m. */
	f.first_response_at = c + 2 * H;
	f.awaiting_since = c + 3 * H;
	sla_evaluate(&p, &f, c + 4 * H, s);
	assert_state(&s[FR], SLA_STOPPED, 0, 0, 2 * H);
	assert_state(&s[NU], SLA_RUNNING, c + 3 * H + 6 * H + 24 * M,
	    c + 3 * H + 8 * H, H);
	assert_instant(sla_next_due(s, &f), c + 9 * H + 24 * M);

	/* Warned: the breach is next; breached too: resolution's warning. */
	f.warned = SLA_BIT(NU);
	assert_instant(sla_next_due(s, &f), c + 11 * H);
	f.breached = SLA_BIT(NU);
	assert_instant(sla_next_due(s, &f), c + 57 * H + 36 * M);

	/* The agent answers: awaiting_since is cleared, the clock idles. */
	f.awaiting_since = 0;
	f.warned = f.breached = 0;
	sla_evaluate(&p, &f, c + 5 * H, s);
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);
	assert_instant(sla_next_due(s, &f), c + 57 * H + 36 * M);

	/* A second customer message starts a new cycle from its instant. */
	f.awaiting_since = c + 20 * H;
	sla_evaluate(&p, &f, c + 21 * H, s);
	assert_state(&s[NU], SLA_RUNNING, c + 26 * H + 24 * M, c + 28 * H,
	    H);
}

static void
test_resolution_paused_while_pending(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];
	struct sla_pause pause[] = { { c + H, 0 } };

	(void)state;
	f.first_response_at = c + 30 * M;
	f.pauses = pause;
	f.n_pauses = 1;
	sla_evaluate(&p, &f, c + 10 * H, s);
	/* Paused: no instants, elapsed frozen at the pause. */
	assert_state(&s[RES], SLA_PAUSED, 0, 0, H);
	assert_state(&s[FR], SLA_STOPPED, 0, 0, 30 * M);
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);
	/* Nothing can warn or breach while the only live clock is paused. */
	assert_instant(sla_next_due(s, &f), 0);

	/* Still paused much later: nothing moves. */
	sla_evaluate(&p, &f, c + 100 * H, s);
	assert_state(&s[RES], SLA_PAUSED, 0, 0, H);
	assert_instant(sla_next_due(s, &f), 0);

	/* A pause that begins at the start counts nothing at all. */
	pause[0].from = c;
	sla_evaluate(&p, &f, c + 100 * H, s);
	assert_state(&s[RES], SLA_PAUSED, 0, 0, 0);
}

static void
test_resolution_resumed(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];
	struct sla_pause one[] = { { c + H, c + 5 * H } };
	struct sla_pause two[] = { { c + H, c + 5 * H },
	    { c + 10 * H, c + 12 * H } };
	struct sla_pause again[] = { { c + H, c + 5 * H },
	    { c + 10 * H, 0 } };

	(void)state;
	f.first_response_at = c + 30 * M;

	/* Pending 1h..5h: due and warning pushed by the 4 h paused. */
	f.pauses = one;
	f.n_pauses = 1;
	sla_evaluate(&p, &f, c + 6 * H, s);
	assert_state(&s[RES], SLA_RUNNING, c + 57 * H + 36 * M + 4 * H,
	    c + 76 * H, 2 * H);
	assert_instant(sla_next_due(s, &f), c + 61 * H + 36 * M);

	/* Two pauses: pushed by both (6 h). */
	f.pauses = two;
	f.n_pauses = 2;
	sla_evaluate(&p, &f, c + 20 * H, s);
	assert_state(&s[RES], SLA_RUNNING, c + 57 * H + 36 * M + 6 * H,
	    c + 78 * H, 14 * H);

	/* Pending again after a resumption: paused, the first pause still
	 * excluded from the time counted. */
	f.pauses = again;
	f.n_pauses = 2;
	sla_evaluate(&p, &f, c + 20 * H, s);
	assert_state(&s[RES], SLA_PAUSED, 0, 0, 6 * H);
	assert_instant(sla_next_due(s, &f), 0);
}

static void
test_resolution_warned_before_the_pause(void **state)
{
	/* Resolution 10 h, warning at 50 % (5 h); pending 6h..8h. */
	struct sla_policy p = { .calendar = always,
	    .target = { 0, 0, 10 * H }, .warn_at = 50 };
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];
	struct sla_pause pause[] = { { c + 6 * H, c + 8 * H } };

	(void)state;
	f.pauses = pause;
	f.n_pauses = 1;
	sla_evaluate(&p, &f, c + 9 * H, s);
	assert_int_equal(s[RES].status, SLA_RUNNING);
	assert_int_equal(s[RES].elapsed, 7 * H);
	assert_instant(s[RES].due_at, c + 12 * H);
	/* The warning instant lies before the resumption (it was reached
	 * at 5h, before the pause): it is due already, never later. */
	assert_true(s[RES].warn_at >= c + 5 * H);
	assert_true(s[RES].warn_at <= c + 8 * H);
	f.warned = SLA_BIT(RES);
	assert_instant(sla_next_due(s, &f), c + 12 * H);

	/* The target itself reached before the pause: due at once. */
	pause[0].from = c + 11 * H;
	pause[0].to = c + 13 * H;
	sla_evaluate(&p, &f, c + 14 * H, s);
	assert_int_equal(s[RES].status, SLA_RUNNING);
	assert_int_equal(s[RES].elapsed, 12 * H);
	assert_true(s[RES].due_at >= c + 10 * H);
	assert_true(s[RES].due_at <= c + 13 * H);
	assert_true(sla_next_due(s, &f) <= c + 13 * H);
	f.breached = SLA_BIT(RES);
	assert_instant(sla_next_due(s, &f), 0);
}

static void
test_resolution_stopped_and_reopened(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];
	struct sla_pause done[] = { { c + H, c + 5 * H } };
	struct sla_pause open[] = { { c + H, 0 } };

	(void)state;
	f.first_response_at = c + 30 * M;
	f.pauses = done;
	f.n_pauses = 1;
	f.resolved_at = c + 30 * H;
	sla_evaluate(&p, &f, c + 40 * H, s);
	assert_state(&s[RES], SLA_STOPPED, 0, 0, 26 * H);
	assert_instant(sla_next_due(s, &f), 0);

	/* Resolved while pending: the open pause ends at the resolution. */
	f.pauses = open;
	f.resolved_at = c + 3 * H;
	sla_evaluate(&p, &f, c + 40 * H, s);
	assert_state(&s[RES], SLA_STOPPED, 0, 0, H);

	/* Reopened at 40h: a new cycle counts from resolution_start. */
	f.pauses = NULL;
	f.n_pauses = 0;
	f.resolved_at = 0;
	f.resolution_start = c + 40 * H;
	sla_evaluate(&p, &f, c + 41 * H, s);
	assert_state(&s[RES], SLA_RUNNING, c + 40 * H + 57 * H + 36 * M,
	    c + 112 * H, H);
	assert_instant(sla_next_due(s, &f), c + 97 * H + 36 * M);
}

static void
test_fired_bits_exclude_instants(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	sla_evaluate(&p, &f, c + H, s);
	assert_instant(sla_next_due(s, &f), c + 3 * H + 12 * M);
	f.warned = SLA_BIT(FR);
	assert_instant(sla_next_due(s, &f), c + 4 * H);
	f.breached = SLA_BIT(FR);
	assert_instant(sla_next_due(s, &f), c + 57 * H + 36 * M);
	f.warned |= SLA_BIT(RES);
	assert_instant(sla_next_due(s, &f), c + 72 * H);
	f.breached |= SLA_BIT(RES);
	assert_instant(sla_next_due(s, &f), 0);
	/* A breach fired without its warning: the warning is still due. */
	f.warned = 0;
	f.breached = SLA_BIT(FR) | SLA_BIT(RES);
	assert_instant(sla_next_due(s, &f), c + 3 * H + 12 * M);
	/* The bits do not change what sla_evaluate reports. */
	f.warned = f.breached = 7;
	sla_evaluate(&p, &f, c + 5 * H, s);
	assert_state(&s[FR], SLA_RUNNING, c + 3 * H + 12 * M, c + 4 * H,
	    5 * H);
	assert_instant(sla_next_due(s, &f), 0);
}

static void
test_target_zero_is_idle(void **state)
{
	struct sla_policy p = { .calendar = always,
	    .target = { 0, 0, 3 * DAY }, .warn_at = 80 };
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	sla_evaluate(&p, &f, c + H, s);
	assert_state(&s[FR], SLA_IDLE, 0, 0, 0);
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);
	assert_int_equal(s[RES].status, SLA_RUNNING);
	assert_instant(sla_next_due(s, &f), c + 57 * H + 36 * M);

	/* next_update unused even with a customer waiting after a reply. */
	f.first_response_at = c + 2 * H;
	f.awaiting_since = c + 3 * H;
	sla_evaluate(&p, &f, c + 4 * H, s);
	assert_state(&s[FR], SLA_IDLE, 0, 0, 0);
	assert_state(&s[NU], SLA_IDLE, 0, 0, 0);

	/* No targets at all: nothing ever due. */
	p.target[RES] = 0;
	sla_evaluate(&p, &f, c + 4 * H, s);
	for (int k = 0; k < SLA_N_CLOCKS; k++)
		assert_state(&s[k], SLA_IDLE, 0, 0, 0);
	assert_instant(sla_next_due(s, &f), 0);
}

static void
test_warn_at_edges(void **state)
{
	struct sla_policy p = std_policy();
	int64_t c = at(C0);
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	p.warn_at = 100;	/* the warning and the breach coincide */
	sla_evaluate(&p, &f, c, s);
	assert_instant(s[FR].warn_at, c + 4 * H);
	assert_instant(s[FR].due_at, c + 4 * H);
	p.warn_at = 1;
	sla_evaluate(&p, &f, c, s);
	assert_instant(s[FR].warn_at, c + 144);	/* 1 % of 4 h */
	/* Seconds-sized targets as the end-to-end tests use them: 4 s at
	 * 50 % warns after 2 s; 5 s at 50 % after 2 s (whole seconds,
	 * rounded down). */
	p.warn_at = 50;
	p.target[FR] = 4;
	p.target[RES] = 5;
	sla_evaluate(&p, &f, c, s);
	assert_instant(s[FR].warn_at, c + 2);
	assert_instant(s[FR].due_at, c + 4);
	assert_instant(s[RES].warn_at, c + 2);
	assert_instant(s[RES].due_at, c + 5);
	assert_instant(sla_next_due(s, &f), c + 2);
}

/* ---- business hours (Europe/Berlin, +01:00 in December) ------------------- */

static void
test_business_first_response(void **state)
{
	struct sla_policy p = biz_policy();
	int64_t c = at("2026-12-04T16:00:00+01:00");	/* a Friday */
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	/* 1 h on Friday, 3 h on Monday; the warning after 2 h. */
	sla_evaluate(&p, &f, at("2026-12-05T12:00:00+01:00"), s);
	assert_state(&s[FR], SLA_RUNNING, at("2026-12-07T10:00:00+01:00"),
	    at("2026-12-07T12:00:00+01:00"), H);
	/* 16 h of resolution: Fri 1 h, Mon 8 h, Tue 7 h. */
	assert_state(&s[RES], SLA_RUNNING, at("2026-12-07T16:00:00+01:00"),
	    at("2026-12-08T16:00:00+01:00"), H);
	assert_instant(sla_next_due(s, &f), at("2026-12-07T10:00:00+01:00"));
	sla_evaluate(&p, &f, at("2026-12-07T09:30:00+01:00"), s);
	assert_int_equal(s[FR].elapsed, H + 30 * M);

	/* Answered on Monday at 10:00: two open hours, not 66. */
	f.first_response_at = at("2026-12-07T10:00:00+01:00");
	sla_evaluate(&p, &f, at("2026-12-07T11:00:00+01:00"), s);
	assert_state(&s[FR], SLA_STOPPED, 0, 0, 2 * H);

	/* Created on a Saturday: the clock counts from Monday 09:00. */
	f = facts(at("2026-12-05T10:00:00+01:00"));
	sla_evaluate(&p, &f, at("2026-12-06T10:00:00+01:00"), s);
	assert_state(&s[FR], SLA_RUNNING, at("2026-12-07T11:00:00+01:00"),
	    at("2026-12-07T13:00:00+01:00"), 0);

	/* Christmas Eve afternoon: the holidays (Fri 25, Sat 26) and the
	 * Sunday are closed; due Monday the 28th at 11:00. */
	f = facts(at("2026-12-24T15:00:00+01:00"));
	sla_evaluate(&p, &f, at("2026-12-26T12:00:00+01:00"), s);
	assert_state(&s[FR], SLA_RUNNING, at("2026-12-24T17:00:00+01:00"),
	    at("2026-12-28T11:00:00+01:00"), 2 * H);
}

static void
test_business_pause_over_a_weekend(void **state)
{
	struct sla_policy p = biz_policy();
	int64_t c = at("2026-12-04T10:00:00+01:00");	/* a Friday */
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];
	struct sla_pause pause[] = { { at("2026-12-04T15:00:00+01:00"),
	    at("2026-12-07T11:00:00+01:00") } };

	(void)state;
	f.first_response_at = c + 10 * M;

	/* No pause: 16 h = Fri 10-17 (7 h), Mon (8 h), Tue 09-10. */
	sla_evaluate(&p, &f, at("2026-12-07T12:00:00+01:00"), s);
	assert_state(&s[RES], SLA_RUNNING, at("2026-12-07T10:00:00+01:00"),
	    at("2026-12-08T10:00:00+01:00"), 10 * H);

	/* Pending from Friday 15:00 to Monday 11:00: only the 4 open hours
	 * in it (Fri 15-17, Mon 09-11) are excluded, the weekend is not
	 * taken off a second time. 5 h were counted before, 11 h remain
	 * from Monday 11:00: Mon 11-17 (6 h) + Tue 09-14 (5 h). */
	f.pauses = pause;
	f.n_pauses = 1;
	sla_evaluate(&p, &f, at("2026-12-07T12:00:00+01:00"), s);
	assert_state(&s[RES], SLA_RUNNING, at("2026-12-07T14:00:00+01:00"),
	    at("2026-12-08T14:00:00+01:00"), 6 * H);

	/* While it was paused (Saturday noon): paused at 5 h. */
	pause[0].to = 0;
	sla_evaluate(&p, &f, at("2026-12-05T12:00:00+01:00"), s);
	assert_state(&s[RES], SLA_PAUSED, 0, 0, 5 * H);

	/* A pause entirely in closed time changes nothing. */
	pause[0].from = at("2026-12-04T17:30:00+01:00");
	pause[0].to = at("2026-12-07T08:00:00+01:00");
	sla_evaluate(&p, &f, at("2026-12-07T12:00:00+01:00"), s);
	assert_state(&s[RES], SLA_RUNNING, at("2026-12-07T10:00:00+01:00"),
	    at("2026-12-08T10:00:00+01:00"), 10 * H);

	/* Resolved on Tuesday 12:00 after the Friday-Monday pause:
	 * 7 + 8 + 3 open hours less the 4 paused. */
	pause[0].from = at("2026-12-04T15:00:00+01:00");
	pause[0].to = at("2026-12-07T11:00:00+01:00");
	f.resolved_at = at("2026-12-08T12:00:00+01:00");
	sla_evaluate(&p, &f, at("2026-12-09T12:00:00+01:00"), s);
	assert_state(&s[RES], SLA_STOPPED, 0, 0, 14 * H);
}

static void
test_business_next_update(void **state)
{
	struct sla_policy p = biz_policy();
	int64_t c = at("2026-12-03T09:00:00+01:00");	/* a Thursday */
	struct sla_facts f = facts(c);
	struct sla_clock_state s[SLA_N_CLOCKS];

	(void)state;
	/* The customer writes on Friday at 13:00 after the first
	 * response: 8 open hours run to Monday 13:00; 4 h (the
	 * warning) end at Friday 17:00 sharp, not Monday 09:00. */
	f.first_response_at = at("2026-12-03T10:00:00+01:00");
	f.awaiting_since = at("2026-12-04T13:00:00+01:00");
	sla_evaluate(&p, &f, at("2026-12-06T10:00:00+01:00"), s);
	assert_state(&s[NU], SLA_RUNNING, at("2026-12-04T17:00:00+01:00"),
	    at("2026-12-07T13:00:00+01:00"), 4 * H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clock_names),
		cmocka_unit_test(test_new_ticket),
		cmocka_unit_test(test_first_response_stops_its_clock),
		cmocka_unit_test(test_next_update),
		cmocka_unit_test(test_resolution_paused_while_pending),
		cmocka_unit_test(test_resolution_resumed),
		cmocka_unit_test(test_resolution_warned_before_the_pause),
		cmocka_unit_test(test_resolution_stopped_and_reopened),
		cmocka_unit_test(test_fired_bits_exclude_instants),
		cmocka_unit_test(test_target_zero_is_idle),
		cmocka_unit_test(test_warn_at_edges),
		cmocka_unit_test(test_business_first_response),
		cmocka_unit_test(test_business_pause_over_a_weekend),
		cmocka_unit_test(test_business_next_update),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	u_cleanup();	/* ICU's caches, for valgrind */
	return rc;
}
