/* childlink: the child's end of the socketpair. See childlink.h. */
#include "childlink.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "log.h"

int64_t
childlink_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
childlink_init(struct childlink *l, int fd, size_t max_frame)
{
	l->fd = fd;
	l->label = "child";
	return (l->in = frame_reader_new(max_frame)) != NULL ? 0 : -1;
}

void
childlink_release(struct childlink *l)
{
	frame_reader_free(&l->in);
}

int
childlink_next(struct childlink *l, int64_t ms, int *type_r,
    const char **payload_r, size_t *len_r)
{
	int64_t until = childlink_now_ms() + ms;

	for (;;) {
		int rc = frame_next(l->in, type_r, payload_r, len_r);
		if (rc == 1)
			return 1;
		if (rc < 0) {
			log_error("garbage from the core, exiting", "child=%s",
			    log_q(l->label));
			exit(1);
		}
		int64_t left = until - childlink_now_ms();
		struct pollfd p = { .fd = l->fd, .events = POLLIN };
		rc = poll(&p, 1, left > 0 ? (int)left : 0);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0)
			return 0;
		rc = frame_reader_fill(l->in, l->fd);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			exit(0);	/* the core is gone or stopping */
	}
}

void
childlink_send(struct childlink *l, int type, const void *payload,
    size_t len)
{
	if (frame_write(l->fd, type, payload, len) < 0)
		exit(0);	/* the core is gone */
}

void
childlink_status(struct childlink *l, const char *state, const char *detail)
{
	json_t *o = json_pack("{s:s, s:s}", "state", state, "detail",
	    detail != NULL ? detail : "");
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (strcmp(state, "down") == 0)
		log_warn("channel down", "child=%s detail=%s", log_q(l->label),
		    log_q(detail));
	else
		log_info("channel state", "child=%s state=%s detail=%s",
		    log_q(l->label), state, log_q(detail));
	if (text != NULL)
		childlink_send(l, FRAME_STATUS, text, strlen(text));
	free(text);
	json_decref(o);
}
