/*
 * loop: epoll, a sorted list of timers, and prepare hooks. See loop.h.
 *
 * Timers are few (HTTP, batch, scheduler, sender, child restarts), so a
 * list kept sorted by deadline is simpler than a heap and as fast.
 * fd registrations live in an array indexed by fd; epoll carries the fd.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct fd_reg {
	loop_fd_cb *cb;
	void *arg;
	unsigned events;
	int used;
};

struct loop_timer {
	int64_t due;
	loop_timer_cb *cb;
	void *arg;
	struct loop_timer *next;
};

struct prepare {
	loop_prepare_cb *cb;
	void *arg;
};

#define LOOP_MAX_PREPARE 16
#define LOOP_MAX_EVENTS 64

struct loop {
	int epfd;
	int stop;
	struct fd_reg *fds;
	int n_fds;
	struct loop_timer *timers;
	struct prepare prepare[LOOP_MAX_PREPARE];
	int n_prepare;
};

int64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop *
loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void
loop_free(struct loop **lp)
{
	struct loop *l = *lp;

	if (l == NULL)
		return;
	while (l->timers != NULL) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		free(t);
	}
	close(l->epfd);
	free(l->fds);
	free(l);
	*lp = NULL;
}

static uint32_t
to_epoll(unsigned events)
{
	return ((events & LOOP_READ) ? EPOLLIN : 0) |
	    ((events & LOOP_WRITE) ? EPOLLOUT : 0);
}

int
loop_fd_add(struct loop *l, int fd, unsigned events, loop_fd_cb *cb,
    void *arg)
{
	struct epoll_event ev = { .events = to_epoll(events), .data.fd = fd };

	if (fd < 0)
		return -1;
	if (fd >= l->n_fds) {
		int n = fd + 16;
		struct fd_reg *r = realloc(l->fds, (size_t)n * sizeof(*r));
		if (r == NULL)
			return -1;
		memset(r + l->n_fds, 0, (size_t)(n - l->n_fds) * sizeof(*r));
		l->fds = r;
		l->n_fds = n;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	l->fds[fd] = (struct fd_reg){ cb, arg, events, 1 };
	return 0;
}

int
loop_fd_set_events(struct loop *l, int fd, unsigned events)
{
	struct epoll_event ev = { .events = to_epoll(events), .data.fd = fd };

	if (fd < 0 || fd >= l->n_fds || !l->fds[fd].used)
		return -1;
	if (l->fds[fd].events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -1;
	l->fds[fd].events = events;
	return 0;
}

void
loop_fd_del(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->n_fds || !l->fds[fd].used)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].used = 0;
}

struct loop_timer *
loop_timer_add(struct loop *l, int64_t ms, loop_timer_cb *cb, void *arg)
{
	struct loop_timer *t = calloc(1, sizeof(*t)), **pp;

	if (t == NULL)
		return NULL;
	t->due = loop_now_ms() + (ms > 0 ? ms : 0);
	t->cb = cb;
	t->arg = arg;
	for (pp = &l->timers; *pp != NULL && (*pp)->due <= t->due;
	    pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	return t;
}

void
loop_timer_cancel(struct loop *l, struct loop_timer **tp)
{
	struct loop_timer **pp;

	if (*tp == NULL)
		return;
	for (pp = &l->timers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == *tp) {
			*pp = (*tp)->next;
			free(*tp);
			break;
		}
	}
	*tp = NULL;
}

int
loop_prepare_add(struct loop *l, loop_prepare_cb *cb, void *arg)
{
	if (l->n_prepare == LOOP_MAX_PREPARE)
		return -1;
	l->prepare[l->n_prepare++] = (struct prepare){ cb, arg };
	return 0;
}

void
loop_stop(struct loop *l)
{
	l->stop = 1;
}

static void
run_timers(struct loop *l)
{
	int64_t now = loop_now_ms();

	while (l->timers != NULL && l->timers->due <= now) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		loop_timer_cb *cb = t->cb;
		void *arg = t->arg;
		free(t);
		cb(l, arg);
	}
}

int
loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	l->stop = 0;
	while (!l->stop) {
		int64_t wait = -1;

		for (int i = 0; i < l->n_prepare; i++) {
			int64_t w = l->prepare[i].cb(l, l->prepare[i].arg);
			if (w >= 0 && (wait < 0 || w < wait))
				wait = w;
		}
		if (l->stop)
			break;
		if (l->timers != NULL) {
			int64_t w = l->timers->due - loop_now_ms();
			if (w < 0)
				w = 0;
			if (wait < 0 || w < wait)
				wait = w;
		}
		if (wait > 60000)
			wait = 60000;
		int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, (int)wait);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			unsigned got = 0;

			if (fd >= l->n_fds || !l->fds[fd].used)
				continue;	/* removed by an earlier callback */
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				got |= LOOP_READ;
			if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				got |= LOOP_WRITE;
			l->fds[fd].cb(l, fd, got, l->fds[fd].arg);
		}
		run_timers(l);
	}
	return 0;
}
