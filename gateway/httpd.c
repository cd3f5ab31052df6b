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

struct httpd {
	struct MHD_Daemon *daemon;
	struct loop *loop;
	const struct http_route *routes;
	size_t n_routes;
	void *arg;
	int epfd;
	unsigned suspended;
	int quiesced;
};

/* An oversized body is read and thrown away up to this much. */
#define HTTPD_MAX_DRAIN (64u << 20)

/* Request states, in order; each handler call asserts where it is. */
enum req_state { REQ_BODY, REQ_SUSPENDED, REQ_ANSWERED };

struct http_req {
	struct httpd *h;
	struct MHD_Connection *conn;
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
		if (req->answered_early)
			return queue(req);
		return MHD_YES;
	}
	if (req->state == REQ_BODY && *upload_size > 0) {
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
	struct http_req *req = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
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
	char buf[512];

	(void)cls;
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
	if (parse_listen(o->listen, &ss) < 0) {
		if (asprintf(error_r, "listen \"%s\": not HOST:PORT",
		    o->listen) < 0)
			*error_r = NULL;
		goto fail;
	}
	h->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, o->connection_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, o->connection_timeout,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
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
