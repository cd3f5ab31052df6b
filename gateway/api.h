/*
 * api: the read side of HTTP (SPEC.md "HTTP"): /api/tickets, /api/tickets/ID
 * and /api/report (the CLI's --json documents, behind the bearer token),
 * /metrics (Prometheus text) and /healthz. Handlers answer at once from
 * the core's own store connection; nothing here writes.
 */
#ifndef ESCALON_API_H
#define ESCALON_API_H

#include "env.h"
#include "store.h"

struct http_req;
struct intake;
struct sender;

struct api {
	struct store *store;
	const struct env *env;		/* the env in force (swapped on reload) */
	const char *token;		/* api_token_file's contents */
	int loopback;			/* listen is a loopback address */
	const struct clock *clock;
	const struct intake *intake;	/* channel children, or NULL */
	const struct sender *sender;	/* outbound transports, or NULL */
};

/* 1 if listen ("127.0.0.1:8025", "[::1]:8025", "localhost:80") is loopback. */
int api_loopback(const char *listen);

/*
 * 1 if req carries the token (Bearer TOKEN, or Basic with TOKEN as the
 * password); else answers 401 and returns 0.
 */
int api_authorized(struct api *a, struct http_req *req);

void api_tickets(struct api *a, struct http_req *req);
void api_ticket(struct api *a, struct http_req *req);	/* /api/tickets/ID */
void api_report(struct api *a, struct http_req *req);
void api_metrics(struct api *a, struct http_req *req);
void api_healthz(struct api *a, struct http_req *req);
/* GET /csat/TOKEN?score=1..5: the customer's rating (the token is the
 * credential); a small HTML page answers. */
void api_csat(struct api *a, struct http_req *req);

#endif
