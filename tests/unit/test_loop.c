/*
 * test_loop: timers, fds and prepare hooks of the event loop.
 *
 * Every test arms a guard timer that stops the loop and flags a failure,
 * so a broken loop fails the test instead of hanging it. Timing checks are
 * lower bounds (a timer never fires early) plus generous upper bounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

#define GUARD_MS 5000

struct rec {
	struct loop *l;
	int order[32];
	int n;
	int64_t at[32];
	int guard_fired;
};

static void
guard_cb(struct loop *l, void *arg)
{
	struct rec *r = arg;

	r->guard_fired = 1;
	loop_stop(l);
}

static void
stop_cb(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

struct tag {
	struct rec *r;
	int id;
};

static void
record_cb(struct loop *l, void *arg)
{
	struct tag *t = arg;

	(void)l;
	assert_true(t->r->n < 32);
	t->r->at[t->r->n] = loop_now_ms();
	t->r->order[t->r->n++] = t->id;
}

static int
setup_loop(void **state)
{
	struct loop *l = loop_new();

	if (l == NULL)
		return -1;
	*state = l;
	return 0;
}

static int
teardown_loop(void **state)
{
	struct loop *l = *state;

	loop_free(&l);
	assert_null(l);
	return 0;
}

/* ---- timers ------------------------------------------------------------ */

static void
test_timers_fire_in_order(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	static const int64_t delays[] = { 60, 20, 40, 0, 20, 10 };
	/* By deadline; the two 20 ms timers in the order they were added. */
	static const int want[] = { 3, 5, 1, 4, 2, 0 };
	struct tag tags[6];
	int64_t start = loop_now_ms();

	for (int i = 0; i < 6; i++) {
		tags[i] = (struct tag){ &r, i };
		assert_non_null(loop_timer_add(l, delays[i], record_cb,
		    &tags[i]));
	}
	assert_non_null(loop_timer_add(l, 80, stop_cb, NULL));
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(r.n, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(r.order[i], want[i]);
		/* Never before its deadline. */
		assert_true(r.at[i] - start >= delays[r.order[i]]);
	}
}

static void
test_timer_negative_fires_at_once(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct tag t = { &r, 7 };

	assert_non_null(loop_timer_add(l, -100, record_cb, &t));
	assert_non_null(loop_timer_add(l, 0, stop_cb, NULL));
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.order[0], 7);
}

static void
test_timer_cancel(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct tag a = { &r, 1 }, b = { &r, 2 }, c = { &r, 3 };
	struct loop_timer *ta, *tb, *tc;

	ta = loop_timer_add(l, 10, record_cb, &a);
	tb = loop_timer_add(l, 20, record_cb, &b);
	tc = loop_timer_add(l, 30, record_cb, &c);
	assert_non_null(ta);
	assert_non_null(tb);
	assert_non_null(tc);
	loop_timer_cancel(l, &tb);
	assert_null(tb);
	loop_timer_cancel(l, &tb);	/* a second cancel is a no-op */
	loop_timer_cancel(l, &ta);	/* the head of the list */
	assert_null(ta);
	assert_non_null(loop_timer_add(l, 50, stop_cb, NULL));
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.order[0], 3);
}

/* A callback may cancel another timer and add new ones. */
struct juggle {
	struct rec *r;
	struct loop_timer *victim;
	struct tag late, added;
};

static void
juggle_cb(struct loop *l, void *arg)
{
	struct juggle *j = arg;

	loop_timer_cancel(l, &j->victim);
	assert_null(j->victim);
	assert_non_null(loop_timer_add(l, 5, record_cb, &j->added));
	assert_non_null(loop_timer_add(l, 30, stop_cb, NULL));
}

static void
test_timer_callbacks_change_timers(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct juggle j = { .r = &r, .late = { &r, 1 }, .added = { &r, 2 } };

	j.victim = loop_timer_add(l, 20, record_cb, &j.late);
	assert_non_null(j.victim);
	assert_non_null(loop_timer_add(l, 0, juggle_cb, &j));
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.order[0], 2);	/* the cancelled one never ran */
}

/* loop_free releases timers that never fired (valgrind checks). */
static void
test_free_with_pending_timers(void **state)
{
	struct loop *l = *state;

	assert_non_null(loop_timer_add(l, 100000, stop_cb, NULL));
	assert_non_null(loop_timer_add(l, 200000, stop_cb, NULL));
}

/* ---- fds --------------------------------------------------------------- */

struct fd_rec {
	struct rec *r;
	int calls;
	unsigned events;
	char got[16];
	size_t n_got;
	int stop;
	int del;
};

static void
fd_cb(struct loop *l, int fd, unsigned events, void *arg)
{
	struct fd_rec *f = arg;

	f->calls++;
	f->events |= events;
	if (events & LOOP_READ) {
		ssize_t n = read(fd, f->got + f->n_got,
		    sizeof(f->got) - f->n_got);
		if (n > 0)
			f->n_got += (size_t)n;
	}
	if (f->del)
		loop_fd_del(l, fd);
	if (f->stop)
		loop_stop(l);
}

static void
test_fd_read(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct fd_rec f = { .r = &r, .stop = 1, .del = 1 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), 0);
	assert_int_equal(write(p[1], "ping", 4), 4);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(f.calls, 1);
	assert_true(f.events & LOOP_READ);
	assert_int_equal(f.n_got, 4);
	assert_memory_equal(f.got, "ping", 4);
	close(p[0]);
	close(p[1]);
}

/* Data that arrives while the loop sleeps wakes it. */
static void
writer_cb(struct loop *l, void *arg)
{
	int *wfd = arg;

	(void)l;
	assert_int_equal(write(*wfd, "x", 1), 1);
}

static void
test_fd_wakes_sleeping_loop(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct fd_rec f = { .r = &r, .stop = 1 };
	int p[2];
	int64_t start;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), 0);
	assert_non_null(loop_timer_add(l, 30, writer_cb, &p[1]));
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	start = loop_now_ms();
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.n_got, 1);
	assert_true(loop_now_ms() - start >= 30);
	loop_fd_del(l, p[0]);
	close(p[0]);
	close(p[1]);
}

static void
test_fd_write_and_set_events(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct fd_rec f = { .r = &r, .stop = 1 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	/* An empty pipe is writable at once. */
	assert_int_equal(loop_fd_add(l, p[1], LOOP_WRITE, fd_cb, &f), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(f.calls, 1);
	assert_true(f.events & LOOP_WRITE);

	/* Interest in nothing: a writable fd no longer fires. */
	f = (struct fd_rec){ .r = &r, .stop = 1 };
	assert_int_equal(loop_fd_set_events(l, p[1], 0), 0);
	assert_non_null(loop_timer_add(l, 40, stop_cb, NULL));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(f.calls, 0);

	/* And back. */
	assert_int_equal(loop_fd_set_events(l, p[1], LOOP_WRITE), 0);
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(f.calls, 1);

	/* Unknown fds are refused. */
	assert_int_equal(loop_fd_set_events(l, p[0], LOOP_READ), -1);
	assert_int_equal(loop_fd_set_events(l, -1, LOOP_READ), -1);
	assert_int_equal(loop_fd_set_events(l, 100000, LOOP_READ), -1);
	loop_fd_del(l, p[1]);
	close(p[0]);
	close(p[1]);
}

static void
test_fd_del_silences(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct fd_rec f = { .r = &r };
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	loop_fd_del(l, p[0]);
	loop_fd_del(l, p[0]);		/* twice is harmless */
	loop_fd_del(l, -1);
	loop_fd_del(l, 100000);
	assert_non_null(loop_timer_add(l, 40, stop_cb, NULL));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(f.calls, 0);

	/* Registered again, it fires again. */
	f.stop = 1;
	f.del = 1;
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(f.calls, 1);
	close(p[0]);
	close(p[1]);
}

static void
test_fd_add_refused(void **state)
{
	struct loop *l = *state;
	struct fd_rec f = { 0 };
	int p[2];

	assert_int_equal(loop_fd_add(l, -1, LOOP_READ, fd_cb, &f), -1);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), 0);
	/* The same fd twice. */
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), -1);
	loop_fd_del(l, p[0]);
	close(p[0]);
	close(p[1]);
	/* A closed fd. */
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), -1);
}

/* The peer going away reads as readable (EOF), so the owner notices. */
static void
test_fd_hangup_is_readable(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct fd_rec f = { .r = &r, .stop = 1, .del = 1 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, fd_cb, &f), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(f.calls, 1);
	assert_true(f.events & LOOP_READ);
	assert_int_equal(f.n_got, 0);
	close(p[0]);
}

/* ---- prepare hooks ----------------------------------------------------- */

struct prep {
	struct rec *r;
	int id;
	int calls;
	int stop_after;		/* stop at this call (0: never) */
	int64_t wait;		/* what the hook returns */
	int64_t at[8];
};

static int64_t
prep_cb(struct loop *l, void *arg)
{
	struct prep *p = arg;

	if (p->calls < 8)
		p->at[p->calls] = loop_now_ms();
	p->calls++;
	if (p->r != NULL && p->r->n < 32)
		p->r->order[p->r->n++] = p->id;
	if (p->stop_after != 0 && p->calls >= p->stop_after)
		loop_stop(l);
	return p->wait;
}

static void
test_prepare_order(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct prep a = { .r = &r, .id = 1, .wait = -1 };
	struct prep b = { .r = &r, .id = 2, .wait = 0, .stop_after = 2 };

	assert_int_equal(loop_prepare_add(l, prep_cb, &a), 0);
	assert_int_equal(loop_prepare_add(l, prep_cb, &b), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	/* Two rounds, each in the order added. */
	assert_int_equal(r.n, 4);
	assert_int_equal(r.order[0], 1);
	assert_int_equal(r.order[1], 2);
	assert_int_equal(r.order[2], 1);
	assert_int_equal(r.order[3], 2);
}

/* With nothing else to do, the loop sleeps as long as the hook says. */
static void
test_prepare_timeout_honoured(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct prep p = { .wait = 50, .stop_after = 3 };

	assert_int_equal(loop_prepare_add(l, prep_cb, &p), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(p.calls, 3);
	for (int i = 1; i < 3; i++) {
		int64_t slept = p.at[i] - p.at[i - 1];
		if (slept < 49 || slept > 2000)
			fail_msg("round %d slept %lld ms, want about 50", i,
			    (long long)slept);
	}
}

/* The shortest wait wins: a hook's short timeout beats a far timer, and
 * a near timer beats a hook's long one. */
static void
test_prepare_shortest_wait_wins(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct prep shorter = { .wait = 20, .stop_after = 2 };
	struct prep longer = { .wait = 60000 };
	struct tag t = { &r, 9 };
	int64_t start;

	assert_int_equal(loop_prepare_add(l, prep_cb, &longer), 0);
	assert_int_equal(loop_prepare_add(l, prep_cb, &shorter), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	start = loop_now_ms();
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(shorter.calls, 2);
	assert_true(loop_now_ms() - start < 2000);

	/* Now a timer at 30 ms under a hook asking for 60 s. */
	shorter.stop_after = 0;
	shorter.wait = -1;
	assert_non_null(loop_timer_add(l, 30, record_cb, &t));
	assert_non_null(loop_timer_add(l, 31, stop_cb, NULL));
	start = loop_now_ms();
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(r.n, 1);
	assert_true(loop_now_ms() - start < 2000);
}

/* Hooks run after the events of a wake-up: a hook sees what an fd
 * callback did in the same round (group commit depends on it). */
struct batch {
	int queued, committed, stop;
};

static void
queue_cb(struct loop *l, int fd, unsigned events, void *arg)
{
	struct batch *b = arg;
	char c;

	(void)l;
	(void)events;
	if (read(fd, &c, 1) == 1)
		b->queued++;
}

static int64_t
commit_cb(struct loop *l, void *arg)
{
	struct batch *b = arg;

	b->committed += b->queued;
	b->queued = 0;
	if (b->committed >= 3)
		loop_stop(l);
	return -1;
}

static void
test_prepare_after_events(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct batch b = { 0 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "abc", 3), 3);
	assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, queue_cb, &b), 0);
	assert_int_equal(loop_prepare_add(l, commit_cb, &b), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(b.committed, 3);
	assert_int_equal(b.queued, 0);
	loop_fd_del(l, p[0]);
	close(p[0]);
	close(p[1]);
}

static void
test_prepare_limit(void **state)
{
	struct loop *l = *state;
	struct prep p = { .wait = -1 };
	int added = 0;

	while (loop_prepare_add(l, prep_cb, &p) == 0 && added < 1000)
		added++;
	/* A hard limit exists, and it is not tiny. */
	assert_true(added >= 4 && added < 1000);
}

/* ---- stop -------------------------------------------------------------- */

/* loop_stop from a prepare hook: the loop returns without sleeping. */
static void
test_stop_from_prepare(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct prep p = { .wait = -1, .stop_after = 1 };
	int64_t start = loop_now_ms();

	assert_int_equal(loop_prepare_add(l, prep_cb, &p), 0);
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(p.calls, 1);
	assert_true(loop_now_ms() - start < 1000);
}

/* A stopped loop runs again; the stop of the last run does not stick. */
static void
test_run_again_after_stop(void **state)
{
	struct loop *l = *state;
	struct rec r = { .l = l };
	struct tag t1 = { &r, 1 }, t2 = { &r, 2 };

	assert_non_null(loop_timer_add(l, 0, record_cb, &t1));
	assert_non_null(loop_timer_add(l, 1, stop_cb, NULL));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.n, 1);

	assert_non_null(loop_timer_add(l, 10, record_cb, &t2));
	assert_non_null(loop_timer_add(l, 20, stop_cb, NULL));
	assert_non_null(loop_timer_add(l, GUARD_MS, guard_cb, &r));
	assert_int_equal(loop_run(l), 0);
	assert_false(r.guard_fired);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.order[1], 2);
}

static void
test_now_ms_monotonic(void **state)
{
	int64_t a, b;

	(void)state;
	a = loop_now_ms();
	usleep(20000);
	b = loop_now_ms();
	assert_true(b - a >= 19);
	assert_true(b - a < 5000);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_loop, teardown_loop)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_timers_fire_in_order),
		T(test_timer_negative_fires_at_once),
		T(test_timer_cancel),
		T(test_timer_callbacks_change_timers),
		T(test_free_with_pending_timers),
		T(test_fd_read),
		T(test_fd_wakes_sleeping_loop),
		T(test_fd_write_and_set_events),
		T(test_fd_del_silences),
		T(test_fd_add_refused),
		T(test_fd_hangup_is_readable),
		T(test_prepare_order),
		T(test_prepare_timeout_honoured),
		T(test_prepare_shortest_wait_wins),
		T(test_prepare_after_events),
		T(test_prepare_limit),
		T(test_stop_from_prepare),
		T(test_run_again_after_stop),
		cmocka_unit_test(test_now_ms_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
