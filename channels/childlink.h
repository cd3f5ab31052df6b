/*
 * childlink: a channel child's end of the socketpair to the core
 * (gateway/child.h): frames in with a deadline, status reports out. The
 * core closing its end ends the child, wherever it waits.
 */
#ifndef ESCALON_CHILDLINK_H
#define ESCALON_CHILDLINK_H

#include <stddef.h>
#include <stdint.h>

struct frame_reader;

struct childlink {
	int fd;
	struct frame_reader *in;
	const char *label;	/* for logs: "mailbox:support" */
};

/* 0, or -1 when out of memory. */
int childlink_init(struct childlink *l, int fd, size_t max_frame);
void childlink_release(struct childlink *l);

/*
 * Wait up to ms for a frame from the core: 1 with it (payload valid until
 * the next call), 0 on timeout. EOF or garbage from the core: exit.
 */
int childlink_next(struct childlink *l, int64_t ms, int *type_r,
    const char **payload_r, size_t *len_r);

/* Tell the core (and the log) the source's state: FRAME_STATUS. */
void childlink_status(struct childlink *l, const char *state,
    const char *detail);

/* Write a frame; the core being gone ends the child. */
void childlink_send(struct childlink *l, int type, const void *payload,
    size_t len);

int64_t childlink_now_ms(void);

#endif
