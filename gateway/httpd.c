/*
 * httpd: libmicrohttpd driven by the core loop. See httpd.h.
 *
 * MHD calls the access handler several times per request: with headers
 * only (*con_cls NULL: allocate our http_req), with each body chunk, and
 * once more with no data when the body is complete. A suspended request is
 * called again after MHD_resume_connection, and then queues the answer that
 * http_respond stored. MHD runs in MHD_USE_EPOLL mode: its epoll fd sits in
 * our loop, and httpd_prepare runs MHD before every sleep so resumed
 * connections are answered at once.
 *
 * Each TCP connection has a struct http_conn (MHD's socket context) that
 * holds the slow-client limits of httpd.h, as phases; each transition
 * names the function that makes it:
 *
 *            on_connection             on_request (header in)
 *   accept ---------------> HEADER -------------------------> BODY
 *                             ^                                 |
 *                             |             on_request (body in), |
 *                             |             http_suspend          v
 *                             +-------- on_completed --------- BUSY
 *                                       (kept alive)
 *
 * HEADER must end header_ms after it began, BODY body_ms after it began
 * plus a second per body_min_rate bytes received; BUSY has no deadline of
 * ours (MHD's connection timeout still counts its silence), so a request
 * suspended until its commit is never dropped. on_sweep, each second,
 * drops the connections past their deadline; on_connection, when live
 * connections pass h->crowded, drops the ones in HEADER or BODY whose
 * request began first. Dropping is shutdown(2): MHD reads the end of the
 * stream and closes the connection in its own time; its fd stays MHD's.
 * h->conns runs from the oldest request to the newest.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

enum conn_phase { CONN_HEADER, CONN_BODY, CONN_BUSY };

/* Why a connection was dropped: on_sweep logs each count but IDLE's. */
enum drop_why { DROP_HEADER, DROP_BODY, DROP_CROWDED, DROP_IDLE, DROP_N };

struct http_conn {
	struct http_conn *prev, *next;	/* in h->conns */
	int fd;				/* MHD's */
	enum conn_phase phase;
	int64_t since;			/* ms: this phase began */
	uint64_t received;		/* BODY: bytes so far */
	int idle;			/* kept alive, no request line since */
	int dropped;			/* shut down, not closed yet */
};

struct httpd {
	struct MHD_Daemon *daemon;
	struct loop *loop;
	const struct http_route *routes;
	size_t n_routes;
	void *arg;
	int epfd;
	unsigned suspended;
	int quiesced;
	struct http_conn *conns, *newest;
	unsigned n_conns, n_dropped;	/* n_dropped: of n_conns */
	unsigned crowded;		/* live ones past this: drop */
	int64_t header_ms, body_ms;	/* 0: no deadline */
	unsigned body_min_rate;
	unsigned drops[DROP_N];		/* since the last sweep */
	struct loop_timer *sweep;	/* armed while there are connections */
	int64_t log_second;		/* mhd_log's: lines in this second, */
	unsigned log_lines, log_unsaid;	/* and those left out */
};

/* An oversized body is read and thrown away up to this much. */
#define HTTPD_MAX_DRAIN (64u << 20)
#define HTTPD_SWEEP_MS 1000
/* MHD has a line for each connection that ends badly, as each dropped one
 * does: this many a second, then only how many more. */
#define HTTPD_LOG_PER_SECOND 10

/* Request states, in order; each handler call asserts where it is. */
enum req_state { REQ_BODY, REQ_SUSPENDED, REQ_ANSWERED };

struct http_req {
	struct httpd *h;
	struct MHD_Connection *conn;
	struct http_conn *hc;	/* NULL if it could not be tracked */
	const struct http_route *route;
	enum req_state state;
	const char *method, *path;
	char *body;
	size_t len, max;
	int too_big;
	size_t drained;		/* bytes of a too large body thrown away */
	int answered_early;	/* begin() answered: skip the body */
	unsigned status;
	struct MHD_Response *response;
};

static int
parse_listen(const char *listen, struct sockaddr_storage *ss)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	size_t n;
	long port;
	char *end;

	if (colon == NULL)
		return -1;
	n = (size_t)(colon - listen);
	if (n >= sizeof(host))
		return -1;
	memcpy(host, listen, n);
	host[n] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		host[n - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &s6->sin6_addr) == 1 ? 0 :
		    -1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -1;
}

static const struct http_route *
find_route(const struct httpd *h, const char *method, const char *path)
{
	for (size_t i = 0; i < h->n_routes; i++) {
		const struct http_route *r = &h->routes[i];
		size_t n = strlen(r->path);
		if (strcmp(r->method, method) != 0)
			continue;
		/* "/x/" is a prefix; "/" alone is the root page only. */
		if (n > 1 && r->path[n - 1] == '/' ?
		    strncmp(path, r->path, n) == 0 :
		    strcmp(path, r->path) == 0)
			return r;
	}
	return NULL;
}

static struct http_conn *
conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

static void
conn_enter(struct http_conn *c, enum conn_phase phase)
{
	if (c == NULL)
		return;
	c->phase = phase;
	c->since = loop_now_ms();
	c->received = 0;
}

static void
conn_link_newest(struct httpd *h, struct http_conn *c)
{
	c->next = NULL;
	c->prev = h->newest;
	if (h->newest != NULL)
		h->newest->next = c;
	else
		h->conns = c;
	h->newest = c;
}

static void
conn_unlink(struct httpd *h, struct http_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		h->newest = c->prev;
}

/* When c's phase must be over: INT64_MAX for none. */
static int64_t
conn_deadline(const struct httpd *h, const struct http_conn *c)
{
	int64_t grace = 0;

	switch (c->phase) {
	case CONN_HEADER:
		return h->header_ms > 0 ? c->since + h->header_ms : INT64_MAX;
	case CONN_BODY:
		if (h->body_ms == 0)
			return INT64_MAX;
		if (h->body_min_rate > 0)
			grace = (int64_t)(c->received * 1000 /
			    h->body_min_rate);
		return c->since + h->body_ms + grace;
	case CONN_BUSY:
		break;
	}
	return INT64_MAX;
}

static void
conn_drop(struct httpd *h, struct http_conn *c, enum drop_why why)
{
	(void)shutdown(c->fd, SHUT_RDWR);
	c->dropped = 1;
	h->n_dropped++;
	h->drops[why]++;
}

static void
mhd_log_unsaid(struct httpd *h)
{
	if (h->log_unsaid > 0)
		log_warn("http messages not logged", "count=%u",
		    h->log_unsaid);
	h->log_unsaid = 0;
}

static void on_sweep(struct loop *l, void *arg);

static void
sweep_arm(struct httpd *h)
{
	if (h->sweep == NULL && h->n_conns > 0)
		h->sweep = loop_timer_add(h->loop, HTTPD_SWEEP_MS, on_sweep, h);
}

/* One line per reason and sweep, however many went: no log flood. */
static void
on_sweep(struct loop *l, void *arg)
{
	static const char *const reason[DROP_N] = {
		[DROP_HEADER] = "header", [DROP_BODY] = "body",
		[DROP_CROWDED] = "crowded", [DROP_IDLE] = NULL,
	};
	struct httpd *h = arg;
	int64_t now = loop_now_ms();

	(void)l;
	h->sweep = NULL;
	for (struct http_conn *c = h->conns; c != NULL; c = c->next) {
		if (c->dropped || now < conn_deadline(h, c))
			continue;
		conn_drop(h, c, c->phase == CONN_BODY ? DROP_BODY :
		    c->idle ? DROP_IDLE : DROP_HEADER);
	}
	for (int i = 0; i < DROP_N; i++) {
		if (h->drops[i] > 0 && reason[i] != NULL)
			log_warn("slow http clients dropped",
			    "reason=%s count=%u", reason[i], h->drops[i]);
		h->drops[i] = 0;
	}
	mhd_log_unsaid(h);
	sweep_arm(h);
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct httpd *h = cls;
	struct http_conn *c = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (c == NULL)
			return;
		if (c->dropped)
			h->n_dropped--;
		conn_unlink(h, c);
		h->n_conns--;
		free(c);
		*socket_context = NULL;
		return;
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		/* Untracked, it would have no deadline. */
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	c->fd = ci->connect_fd;
	c->phase = CONN_HEADER;
	c->since = loop_now_ms();
	conn_link_newest(h, c);
	h->n_conns++;
	*socket_context = c;
	/* Crowded: room for the newcomer, at the cost of the request that has
	 * been coming in longest. */
	for (struct http_conn *o = h->conns;
	    o != c && h->n_conns - h->n_dropped > h->crowded; o = o->next)
		if (!o->dropped && o->phase != CONN_BUSY)
			conn_drop(h, o, DROP_CROWDED);
	sweep_arm(h);
}

/* A request line is in: a kept-alive connection is idle no more. */
static void *
on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_conn *c = conn_of(conn);

	(void)cls;
	(void)uri;
	if (c != NULL)
		c->idle = 0;
	return NULL;
}

static enum MHD_Result
queue(struct http_req *req)
{
	enum MHD_Result rc = MHD_queue_response(req->conn, req->status,
	    req->response);

	MHD_destroy_response(req->response);
	req->response = NULL;
	return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct httpd *h = cls;
	struct http_req *req = *con_cls;

	(void)version;
	if (req == NULL) {
		req = calloc(1, sizeof(*req));
		if (req == NULL)
			return MHD_NO;
		req->h = h;
		req->conn = conn;
		req->hc = conn_of(conn);
		conn_enter(req->hc, CONN_BODY);
		req->method = method;
		req->path = url;
		req->state = REQ_BODY;
		*con_cls = req;
		req->route = find_route(h, method, url);
		if (req->route == NULL) {
			http_respond_error(req, 404, "no such resource");
			req->answered_early = 1;
		} else {
			int64_t max = req->route->begin(req, h->arg);
			if (max < 0) {
				req->answered_early = 1;
			} else {
				req->max = (size_t)max;
				const char *cl = MHD_lookup_connection_value(
				    conn, MHD_HEADER_KIND,
				    MHD_HTTP_HEADER_CONTENT_LENGTH);
				const char *expect = MHD_lookup_connection_value(
				    conn, MHD_HEADER_KIND,
				    MHD_HTTP_HEADER_EXPECT);
				/* A client waiting for 100-continue has sent
				 * no body: refuse at once. Others are
				 * already sending it: drain, then answer,
				 * or they see a reset instead of the 413. */
				if (cl != NULL &&
				    strtoull(cl, NULL, 10) > req->max) {
					req->too_big = 1;
					if (expect != NULL) {
						http_respond_error(req, 413,
						    "body too large");
						req->answered_early = 1;
					}
				}
			}
		}
		/* Answering before the body is read makes MHD skip it and
		 * close the connection: right for 404 and a known 413. */
		if (req->answered_early) {
			conn_enter(req->hc, CONN_BUSY);
			return queue(req);
		}
		return MHD_YES;
	}
	if (req->state == REQ_BODY && *upload_size > 0) {
		if (req->hc != NULL)
			req->hc->received += *upload_size;
		if (!req->too_big && req->len + *upload_size <= req->max) {
			char *b = realloc(req->body, req->len + *upload_size +
			    1);
			if (b == NULL)
				return MHD_NO;
			memcpy(b + req->len, upload, *upload_size);
			req->body = b;
			req->len += *upload_size;
			req->body[req->len] = '\0';
		} else {
			/* Past the limit: drain, then 413; past the drain
			 * limit too, hang up. */
			req->too_big = 1;
			free(req->body);
			req->body = NULL;
			req->len = 0;
			req->drained += *upload_size;
			if (req->drained > HTTPD_MAX_DRAIN)
				return MHD_NO;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	conn_enter(req->hc, CONN_BUSY);
	if (req->response != NULL)
		return queue(req);
	if (req->state != REQ_BODY)
		return MHD_YES;	/* suspended and woken without an answer */
	if (req->too_big) {
		http_respond_error(req, 413, "body too large");
		return queue(req);
	}
	req->route->handle(req, h->arg);
	if (req->response != NULL)
		return queue(req);
	if (req->state == REQ_SUSPENDED)
		return MHD_YES;
	http_respond_error(req, 500, "no answer");
	return queue(req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct httpd *h = cls;
	struct http_req *req = *con_cls;
	struct http_conn *c = conn_of(conn);

	(void)toe;
	/* The next request on this connection begins now: the newest. */
	if (c != NULL) {
		conn_enter(c, CONN_HEADER);
		c->idle = 1;
		conn_unlink(h, c);
		conn_link_newest(h, c);
	}
	if (req == NULL)
		return;
	if (req->response != NULL)
		MHD_destroy_response(req->response);
	free(req->body);
	free(req);
	*con_cls = NULL;
}

static void
on_epoll(struct loop *l, int fd, unsigned events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	MHD_run(((struct httpd *)arg)->daemon);
}

static int64_t
on_prepare(struct loop *l, void *arg)
{
	struct httpd *h = arg;
	MHD_UNSIGNED_LONG_LONG ms;

	(void)l;
	MHD_run(h->daemon);
	if (MHD_get_timeout(h->daemon, &ms) == MHD_YES)
		return (int64_t)ms;
	return -1;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *h = cls;
	int64_t second = loop_now_ms() / 1000;
	char buf[512];

	if (second != h->log_second) {
		mhd_log_unsaid(h);
		h->log_second = second;
		h->log_lines = 0;
	}
	if (h->log_lines >= HTTPD_LOG_PER_SECOND) {
		h->log_unsaid++;
		return;
	}
	h->log_lines++;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_warn("http", "detail=%s", log_q(buf));
}

struct httpd *
httpd_new(struct loop *l, const struct httpd_options *o,
    const struct http_route *routes, size_t n_routes, void *arg,
    char **error_r)
{
	struct httpd *h = calloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;

	*error_r = NULL;
	if (h == NULL)
		return NULL;
	h->loop = l;
	h->routes = routes;
	h->n_routes = n_routes;
	h->arg = arg;
	h->crowded = o->connection_limit - o->connection_limit / 16;
	h->header_ms = (int64_t)o->header_timeout * 1000;
	h->body_ms = (int64_t)o->body_timeout * 1000;
	h->body_min_rate = o->body_min_rate;
	if (parse_listen(o->listen, &ss) < 0) {
		if (asprintf(error_r, "listen \"%s\": not HOST:PORT",
		    o->listen) < 0)
			*error_r = NULL;
		goto fail;
	}
	h->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, o->connection_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, o->connection_timeout,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
	    MHD_OPTION_URI_LOG_CALLBACK, on_request_line, h,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
	    MHD_OPTION_END);
	if (h->daemon == NULL) {
		if (asprintf(error_r, "listen \"%s\": cannot listen (address "
		    "in use or not available)", o->listen) < 0)
			*error_r = NULL;
		goto fail;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || (h->epfd = info->epoll_fd) < 0 ||
	    loop_fd_add(l, h->epfd, LOOP_READ, on_epoll, h) < 0 ||
	    loop_prepare_add(l, on_prepare, h) < 0) {
		*error_r = strdup("http: cannot join the event loop");
		goto fail;
	}
	return h;
fail:
	if (h->daemon != NULL)
		MHD_stop_daemon(h->daemon);
	free(h);
	return NULL;
}

void
httpd_free(struct httpd **hp)
{
	struct httpd *h = *hp;

	if (h == NULL)
		return;
	loop_fd_del(h->loop, h->epfd);
	MHD_stop_daemon(h->daemon);
	loop_timer_cancel(h->loop, &h->sweep);
	mhd_log_unsaid(h);
	free(h);
	*hp = NULL;
}

void
httpd_run(struct httpd *h)
{
	MHD_run(h->daemon);
}

void
httpd_quiesce(struct httpd *h)
{
	if (!h->quiesced) {
		h->quiesced = 1;
		MHD_socket s = MHD_quiesce_daemon(h->daemon);
		if (s != MHD_INVALID_SOCKET)
			close(s);
	}
}

unsigned
httpd_suspended(const struct httpd *h)
{
	return h->suspended;
}

const char *
http_req_method(const struct http_req *req)
{
	return req->method;
}

const char *
http_req_path(const struct http_req *req)
{
	return req->path;
}

const char *
http_req_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_req_query(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn,
	    MHD_GET_ARGUMENT_KIND, name);
}

const char *
http_req_body(const struct http_req *req, size_t *len_r)
{
	*len_r = req->len;
	return req->body != NULL ? req->body : "";
}

void
http_suspend(struct http_req *req)
{
	if (req->state != REQ_BODY)
		return;
	req->state = REQ_SUSPENDED;
	req->h->suspended++;
	conn_enter(req->hc, CONN_BUSY);
	MHD_suspend_connection(req->conn);
}

void
http_respond(struct http_req *req, unsigned status, const char *content_type,
    const char *body, size_t len)
{
	int was_suspended = req->state == REQ_SUSPENDED;

	if (req->state == REQ_ANSWERED || req->response != NULL)
		return;
	req->response = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (req->response == NULL)
		return;
	MHD_add_response_header(req->response, MHD_HTTP_HEADER_CONTENT_TYPE,
	    content_type);
	req->status = status;
	req->state = REQ_ANSWERED;
	if (was_suspended) {
		req->h->suspended--;
		MHD_resume_connection(req->conn);
	}
}

void
http_respond_error(struct http_req *req, unsigned status, const char *reason)
{
	json_t *o = json_pack("{s:s}", "error", reason);
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	http_respond(req, status, "application/json",
	    text != NULL ? text : "{}", text != NULL ? strlen(text) : 2);
	free(text);
	json_decref(o);
}
