/*
 * control: a Unix stream socket in the core loop. See control.h.
 *
 * Each client has one buffer; the request is handled when its newline
 * arrives, the answer is written with a short send timeout (answers are
 * small) and the connection closed. A client that sends too much or
 * nothing within CONTROL_TIMEOUT_MS is dropped.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define CONTROL_TIMEOUT_MS 30000
#define CONTROL_MAX_CLIENTS 64

struct client {
	struct control *ctl;
	int deferred;
	json_t *stashed;		/* answered inside the handler */
	int fd;
	char *buf;
	size_t len, cap;
	struct loop_timer *timer;
	struct client *next;
};

struct control {
	struct loop *loop;
	int fd;
	char *path;
	control_handler *handler;
	void *arg;
	struct client *clients;
	int n_clients;
	struct client *current;		/* in the handler */
	size_t max_request;
};

static int
make_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -1;
	strcpy(sun->sun_path, path);
	return 0;
}

static void
client_close(struct client *cl)
{
	struct control *ctl = cl->ctl;

	for (struct client **pp = &ctl->clients; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	ctl->n_clients--;
	loop_timer_cancel(ctl->loop, &cl->timer);
	loop_fd_del(ctl->loop, cl->fd);
	close(cl->fd);
	json_decref(cl->stashed);
	free(cl->buf);
	free(cl);
}

static void
on_client_timeout(struct loop *l, void *arg)
{
	struct client *cl = arg;

	(void)l;
	cl->timer = NULL;	/* the loop freed it */
	log_warn("control client timed out", "%s", "");
	client_close(cl);
}

static void
send_answer(struct client *cl, json_t *ans)
{
	char *text;
	struct timeval tv = { 1, 0 };

	text = json_dumps(ans, JSON_COMPACT);
	json_decref(ans);
	if (text != NULL) {
		size_t n = strlen(text), off = 0;
		int flags = fcntl(cl->fd, F_GETFL);
		fcntl(cl->fd, F_SETFL, flags & ~O_NONBLOCK);
		setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		text[n++] = '\n';	/* json_dumps left room: NUL */
		while (off < n) {
			ssize_t w = send(cl->fd, text + off, n - off,
			    MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		free(text);
	}
	client_close(cl);
}

static void
answer(struct client *cl)
{
	json_error_t jerr;
	json_t *req = json_loadb(cl->buf, cl->len, 0, &jerr), *ans;

	if (req == NULL || !json_is_object(req)) {
		ans = json_pack("{s:i, s:s}", "code", 1, "message",
		    "control request is not a JSON object");
	} else {
		cl->ctl->current = cl;
		ans = cl->ctl->handler(req, cl->ctl->arg);
		cl->ctl->current = NULL;
	}
	json_decref(req);
	if (ans == NULL && cl->stashed != NULL) {
		ans = cl->stashed;	/* deferred, then answered at once */
		cl->stashed = NULL;
	}
	if (ans == NULL && cl->deferred)
		return;		/* control_answer comes later */
	send_answer(cl, ans);
}

struct control_client *
control_defer(struct control *ctl)
{
	struct client *cl = ctl->current;

	/* Nothing more to read, and no timeout: the core answers after
	 * its commit, which always comes. */
	cl->deferred = 1;
	loop_timer_cancel(ctl->loop, &cl->timer);
	loop_fd_del(ctl->loop, cl->fd);
	return (struct control_client *)cl;
}

void
control_answer(struct control_client *ccl, json_t *ans)
{
	struct client *cl = (struct client *)ccl;

	/* Still inside its handler: answer() sends it on return. */
	if (cl->ctl->current == cl) {
		json_decref(cl->stashed);
		cl->stashed = ans;
		return;
	}
	send_answer(cl, ans);
}

static void
on_client(struct loop *l, int fd, unsigned events, void *arg)
{
	struct client *cl = arg;

	(void)l;
	(void)events;
	for (;;) {
		if (cl->cap - cl->len < 4096) {
			size_t cap = cl->cap ? cl->cap * 2 : 8192;
			char *b;
			if (cap > cl->ctl->max_request + 1 ||
			    (b = realloc(cl->buf, cap)) == NULL) {
				log_warn("control request too large", "%s", "");
				client_close(cl);
				return;
			}
			cl->buf = b;
			cl->cap = cap;
		}
		ssize_t n = read(fd, cl->buf + cl->len, cl->cap - cl->len - 1);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			client_close(cl);
			return;
		}
		char *nl = memchr(cl->buf + cl->len, '\n', (size_t)n);
		cl->len += (size_t)n;
		if (nl != NULL) {
			cl->len = (size_t)(nl - cl->buf);
			answer(cl);
			return;
		}
	}
}

static void
on_accept(struct loop *l, int fd, unsigned events, void *arg)
{
	struct control *ctl = arg;
	struct client *cl;
	int cfd;

	(void)events;
	while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) >= 0) {
		if (ctl->n_clients >= CONTROL_MAX_CLIENTS ||
		    (cl = calloc(1, sizeof(*cl))) == NULL) {
			close(cfd);
			continue;
		}
		cl->ctl = ctl;
		cl->fd = cfd;
		if (loop_fd_add(l, cfd, LOOP_READ, on_client, cl) < 0) {
			close(cfd);
			free(cl);
			continue;
		}
		cl->timer = loop_timer_add(l, CONTROL_TIMEOUT_MS,
		    on_client_timeout, cl);
		cl->next = ctl->clients;
		ctl->clients = cl;
		ctl->n_clients++;
	}
}

struct control *
control_new(struct loop *l, const char *path, size_t max_request,
    control_handler *handler, void *arg, char **error_r)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sun;
	int probe;

	*error_r = NULL;
	if (ctl == NULL)
		return NULL;
	ctl->fd = -1;
	ctl->loop = l;
	ctl->handler = handler;
	ctl->max_request = max_request > CONTROL_MAX_REQUEST ? max_request :
	    CONTROL_MAX_REQUEST;
	ctl->arg = arg;
	if (make_addr(path, &sun) < 0) {
		if (asprintf(error_r, "control_socket \"%s\": path too long",
		    path) < 0)
			*error_r = NULL;
		goto fail;
	}
	/* A socket file that answers belongs to a running gateway; one
	 * that does not is left over from a crash. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sun,
	    sizeof(sun)) == 0) {
		close(probe);
		if (asprintf(error_r, "control_socket \"%s\": another escalon "
		    "is running there", path) < 0)
			*error_r = NULL;
		goto fail;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	mode_t old = umask(0077);
	int bound = ctl->fd >= 0 && bind(ctl->fd, (struct sockaddr *)&sun,
	    sizeof(sun)) == 0;
	umask(old);
	if (!bound || listen(ctl->fd, 16) < 0 ||
	    loop_fd_add(l, ctl->fd, LOOP_READ, on_accept, ctl) < 0) {
		if (asprintf(error_r, "control_socket \"%s\": %s", path,
		    strerror(errno)) < 0)
			*error_r = NULL;
		goto fail;
	}
	ctl->path = strdup(path);
	return ctl;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	free(ctl);
	return NULL;
}

void
control_free(struct control **cp)
{
	struct control *ctl = *cp;

	if (ctl == NULL)
		return;
	while (ctl->clients != NULL)
		client_close(ctl->clients);
	loop_fd_del(ctl->loop, ctl->fd);
	close(ctl->fd);
	if (ctl->path != NULL)
		unlink(ctl->path);
	free(ctl->path);
	free(ctl);
	*cp = NULL;
}

int
control_call(const char *path, json_t *request, json_t **answer_r,
    char **error_r)
{
	struct sockaddr_un sun;
	char *text = NULL, *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = -1, rc = -1;
	json_error_t jerr;

	*answer_r = NULL;
	*error_r = NULL;
	if (make_addr(path, &sun) < 0)
		return 1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED) {
			rc = 1;
			goto out;
		}
		goto fail;
	}
	text = json_dumps(request, JSON_COMPACT);
	if (text == NULL)
		goto fail;
	size_t n = strlen(text), off = 0;
	text[n++] = '\n';
	while (off < n) {
		ssize_t w = send(fd, text + off, n - off, MSG_NOSIGNAL);
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	for (;;) {
		if (cap - len < 1024) {
			cap = cap ? cap * 2 : 4096;
			char *b = realloc(buf, cap);
			if (b == NULL)
				goto fail;
			buf = b;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	*answer_r = json_loadb(buf != NULL ? buf : "", len, 0, &jerr);
	if (*answer_r == NULL) {
		*error_r = strdup("the gateway closed the control connection "
		    "without an answer");
		goto out;
	}
	rc = 0;
	goto out;
fail:
	if (asprintf(error_r, "control socket %s: %s", path,
	    strerror(errno)) < 0)
		*error_r = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	free(buf);
	return rc;
}
