/*
 * child: a channel child process, spawned and kept alive by the core.
 *
 * The child is this same binary exec'd as `escalon child KIND NAME`, with
 * one end of a socketpair on fd 3 and nothing else inherited (every other
 * fd is closed before exec). It dies with the core (PR_SET_PDEATHSIG) and
 * exits when fd 3 closes. The core speaks frames (frame.h) with it: right
 * after each spawn it sends FRAME_START built by ops->start (settings and
 * where to resume), then the child's frames reach ops->frame.
 *
 * A child that exits, or sends garbage, is reaped and started again after
 * a backoff (1 s doubling to 60 s; back to 1 s once a child has lived a
 * minute). Each restart is counted (escalon_child_restarts_total).
 */
#ifndef ESCALON_CHILD_H
#define ESCALON_CHILD_H

#include <stddef.h>
#include <stdint.h>

struct child;
struct loop;

struct child_ops {
	/* The FRAME_START payload for a (re)start: heap, *len_r. NULL: the
	 * child cannot start now (tried again after the backoff). */
	char *(*start)(void *arg, size_t *len_r);
	void (*frame)(struct child *c, int type, const char *payload,
	    size_t len, void *arg);
	/* The child is gone; it restarts after the backoff. */
	void (*gone)(struct child *c, void *arg);
};

/* Frames from a child up to this payload size; beyond: garbage. */
#define CHILD_MAX_FRAME (256u << 20)

struct child *child_new(struct loop *l, const char *kind, const char *name,
    const struct child_ops *ops, void *arg);

/* Stop the child (close its socket, reap it; SIGKILL after 2 s). */
void child_free(struct child **cp);

/* Queue a frame to the child. 0, or -1 (not running, or out of memory). */
int child_send(struct child *c, int type, const void *payload, size_t len);

unsigned child_restarts(const struct child *c);
/* Which spawn runs now: unique across all children of the core, so an
 * answer meant for a process that is gone never reaches its successor. */
uint64_t child_serial(const struct child *c);
int child_running(const struct child *c);

/* In the child: the fd its parent speaks on. */
#define CHILD_FD 3

#endif
