/*
 * httpd: libmicrohttpd inside the core's event loop (its epoll fd and
 * timeout), with a small route table. A route may answer at once or
 * suspend its request and answer later (a webhook answers 202 only after
 * the batch holding it is committed).
 *
 * Request life: route.begin (headers only) -> body collected up to the
 * limit begin returned -> route.handle -> http_respond (now or later).
 * Bodies over the limit are answered 413 by httpd itself.
 */
#ifndef ESCALON_HTTPD_H
#define ESCALON_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct httpd;
struct http_req;
struct loop;

struct http_route {
	const char *method;
	const char *path;	/* exact, or a prefix when it ends in '/'
				   ("/" alone is exact) */
	/*
	 * Headers are in: return the largest body taken, or -1 after
	 * answering with http_respond (404 for an unknown hook...).
	 */
	int64_t (*begin)(struct http_req *req, void *arg);
	/* The whole body is in. Answer, or http_suspend and answer later. */
	void (*handle)(struct http_req *req, void *arg);
};

/*
 * Limits against clients that hold connections without finishing their
 * requests (slowloris): silence is not needed for that, one byte a second
 * does it, so each request also has deadlines, whatever trickles in. A
 * connection past one is dropped; so is, when the connections near
 * connection_limit, the one whose request started first and is still
 * coming in. A request whose body is in (being handled, waiting for its
 * commit, or being answered) is never dropped for these.
 */
struct httpd_options {
	const char *listen;		/* "127.0.0.1:8025", "[::1]:8025" */
	unsigned connection_limit;	/* open at once; past 15/16 of it, the
					   oldest unfinished requests go */
	unsigned connection_timeout;	/* seconds of silence allowed */
	unsigned header_timeout;	/* seconds from accept (or the previous
					   answer) to the end of the header */
	unsigned body_timeout;		/* seconds for a body, from the end of
					   its header, */
	unsigned body_min_rate;		/* plus one per this many bytes in */
};

struct httpd *httpd_new(struct loop *l, const struct httpd_options *o,
    const struct http_route *routes, size_t n_routes, void *arg,
    char **error_r);
/* Suspended requests must have been answered first. */
void httpd_free(struct httpd **hp);

/* Run pending work now (after answering suspended requests). */
void httpd_run(struct httpd *h);
/* Stop accepting new connections (shutdown), keep serving open ones. */
void httpd_quiesce(struct httpd *h);
unsigned httpd_suspended(const struct httpd *h);

const char *http_req_method(const struct http_req *req);
const char *http_req_path(const struct http_req *req);
const char *http_req_header(const struct http_req *req, const char *name);
const char *http_req_query(const struct http_req *req, const char *name);
const char *http_req_body(const struct http_req *req, size_t *len_r);

void http_suspend(struct http_req *req);
/* Copies body. Resumes the request if it was suspended. */
void http_respond(struct http_req *req, unsigned status,
    const char *content_type, const char *body, size_t len);
/* {"error": reason} */
void http_respond_error(struct http_req *req, unsigned status,
    const char *reason);

#endif
