/* child: spawn, talk to and restart channel children. See child.h. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "loop.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
#define HEALTHY_MS 60000	/* a child that lived this long restarts fast */
#define REAP_WAIT_MS 2000

struct child {
	struct loop *loop;
	char *kind, *name, *label;
	const struct child_ops *ops;
	void *arg;
	pid_t pid;
	int fd;
	struct frame_reader *in;
	struct frame_writer *out;
	struct loop_timer *restart_timer;
	int64_t backoff_ms, started_ms;
	unsigned restarts;
	uint64_t serial;	/* of this spawn, unique in the core */
};

static uint64_t spawns;

static void spawn(struct child *c);

/* Wait for pid to exit, up to REAP_WAIT_MS, then SIGKILL it. */
static void
reap(struct child *c)
{
	int status = 0;
	pid_t r = 0;

	for (int waited = 0; waited < REAP_WAIT_MS; waited += 10) {
		r = waitpid(c->pid, &status, WNOHANG);
		if (r != 0)
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (r == 0) {
		kill(c->pid, SIGKILL);
		r = waitpid(c->pid, &status, 0);
	}
	if (r == c->pid && WIFSIGNALED(status))
		log_warn("channel child killed", "child=%s pid=%ld signal=%d",
		    log_q(c->label), (long)c->pid, WTERMSIG(status));
	else if (r == c->pid)
		log_info("channel child exited", "child=%s pid=%ld status=%d",
		    log_q(c->label), (long)c->pid, WEXITSTATUS(status));
	c->pid = -1;
}

static void
close_channel(struct child *c)
{
	if (c->fd >= 0) {
		loop_fd_del(c->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	frame_reader_free(&c->in);
	frame_writer_free(&c->out);
}

static void
on_restart(struct loop *l, void *arg)
{
	struct child *c = arg;

	(void)l;
	c->restart_timer = NULL;
	c->restarts++;
	spawn(c);
}

/* The child is gone or useless: reap it and start again later. */
static void
lost(struct child *c, const char *why)
{
	int64_t lived = loop_now_ms() - c->started_ms;

	log_warn("channel child lost", "child=%s why=%s", log_q(c->label),
	    log_q(why));
	close_channel(c);
	if (c->pid > 0) {
		kill(c->pid, SIGTERM);
		reap(c);
	}
	if (c->ops->gone != NULL)
		c->ops->gone(c, c->arg);
	if (lived >= HEALTHY_MS)
		c->backoff_ms = BACKOFF_FIRST_MS;
	log_info("channel child restarts", "child=%s in_ms=%lld",
	    log_q(c->label), (long long)c->backoff_ms);
	c->restart_timer = loop_timer_add(c->loop, c->backoff_ms, on_restart,
	    c);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    c->backoff_ms * 2;
}

static void
flush(struct child *c)
{
	int rc = frame_writer_flush(c->out, c->fd);

	if (rc < 0) {
		lost(c, strerror(errno));
		return;
	}
	loop_fd_set_events(c->loop, c->fd, rc == 0 ? LOOP_READ | LOOP_WRITE :
	    LOOP_READ);
}

static void
on_readable(struct child *c)
{
	int type, rc;
	const char *payload;
	size_t len;

	for (;;) {
		rc = frame_reader_fill(c->in, c->fd);
		if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (rc <= 0) {
			lost(c, rc == 0 ? "its socket closed" :
			    strerror(errno));
			return;
		}
		/* Handle what came before reading more: a callback may
		 * answer, and the reader never grows past one chunk more
		 * than the largest frame. */
		while ((rc = frame_next(c->in, &type, &payload, &len)) == 1) {
			c->ops->frame(c, type, payload, len, c->arg);
			if (c->fd < 0)
				return;
		}
		if (rc < 0) {
			lost(c, "it sent a malformed frame");
			return;
		}
	}
}

static void
on_io(struct loop *l, int fd, unsigned events, void *arg)
{
	struct child *c = arg;

	(void)l;
	(void)fd;
	if (events & LOOP_WRITE) {
		flush(c);
		if (c->fd < 0)
			return;
	}
	if (events & LOOP_READ)
		on_readable(c);
}

/* In the forked process: become `escalon child KIND NAME` or die. */
static void
exec_child(struct child *c, int fd, pid_t parent)
{
	sigset_t none;
	char *argv[] = { "escalon", "child", c->kind, c->name, NULL };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);	/* the core died before the line above */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (fd == CHILD_FD ? fcntl(fd, F_SETFD, 0) < 0 :
	    dup2(fd, CHILD_FD) < 0)
		_exit(1);
	/* Nothing else crosses: no listening socket, no store handle. */
	if (close_range(CHILD_FD + 1, ~0u, 0) < 0)
		for (long k = CHILD_FD + 1; k < sysconf(_SC_OPEN_MAX); k++)
			close((int)k);
	execv("/proc/self/exe", argv);
	_exit(127);
}

static void
spawn(struct child *c)
{
	int sv[2] = { -1, -1 };
	char *start = NULL;
	size_t start_len = 0;
	pid_t parent = getpid();

	c->started_ms = loop_now_ms();
	c->serial = ++spawns;
	if ((start = c->ops->start(c->arg, &start_len)) == NULL) {
		log_warn("channel child cannot start yet", "child=%s",
		    log_q(c->label));
		goto retry;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    (c->in = frame_reader_new(CHILD_MAX_FRAME)) == NULL ||
	    (c->out = frame_writer_new()) == NULL)
		goto fail;
	c->pid = fork();
	if (c->pid < 0)
		goto fail;
	if (c->pid == 0)
		exec_child(c, sv[1], parent);
	close(sv[1]);
	sv[1] = -1;
	c->fd = sv[0];
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	if (loop_fd_add(c->loop, c->fd, LOOP_READ, on_io, c) < 0 ||
	    frame_writer_put(c->out, FRAME_START, start, start_len) < 0) {
		free(start);
		lost(c, "cannot watch its socket");
		return;
	}
	free(start);
	log_info("channel child started", "child=%s pid=%ld",
	    log_q(c->label), (long)c->pid);
	flush(c);
	return;
fail:
	log_error("cannot start a channel child", "child=%s error=%s",
	    log_q(c->label), log_q(strerror(errno)));
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	frame_reader_free(&c->in);
	frame_writer_free(&c->out);
retry:
	free(start);
	c->restart_timer = loop_timer_add(c->loop, c->backoff_ms, on_restart,
	    c);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    c->backoff_ms * 2;
}

struct child *
child_new(struct loop *l, const char *kind, const char *name,
    const struct child_ops *ops, void *arg)
{
	struct child *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = l;
	c->ops = ops;
	c->arg = arg;
	c->pid = -1;
	c->fd = -1;
	c->backoff_ms = BACKOFF_FIRST_MS;
	c->kind = strdup(kind);
	c->name = strdup(name);
	if (c->kind == NULL || c->name == NULL ||
	    asprintf(&c->label, "%s:%s", kind, name) < 0) {
		c->label = NULL;
		child_free(&c);
		return NULL;
	}
	spawn(c);
	return c;
}

void
child_free(struct child **cp)
{
	struct child *c = *cp;

	if (c == NULL)
		return;
	loop_timer_cancel(c->loop, &c->restart_timer);
	close_channel(c);	/* the child sees EOF and exits */
	if (c->pid > 0) {
		/* It may be deep in a blocking network call: end it now. */
		kill(c->pid, SIGTERM);
		reap(c);
	}
	free(c->kind);
	free(c->name);
	free(c->label);
	free(c);
	*cp = NULL;
}

int
child_send(struct child *c, int type, const void *payload, size_t len)
{
	if (c->fd < 0 || frame_writer_put(c->out, type, payload, len) < 0)
		return -1;
	flush(c);
	return 0;
}

uint64_t
child_serial(const struct child *c)
{
	return c->serial;
}

unsigned
child_restarts(const struct child *c)
{
	return c->restarts;
}

int
child_running(const struct child *c)
{
	return c->fd >= 0;
}
