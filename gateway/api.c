/* api: read-only HTTP endpoints. See api.h. */
#include "api.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "crypto.h"
#include "httpd.h"
#include "intake.h"
#include "sender.h"
#include "store.h"
#include "views.h"

int
api_loopback(const char *listen)
{
	return strncmp(listen, "127.", 4) == 0 ||
	    strncmp(listen, "[::1]:", 6) == 0 ||
	    strncmp(listen, "localhost:", 10) == 0;
}

static int
token_is(const char *given, size_t len, const char *token)
{
	size_t n = strlen(token);

	return given != NULL && len == n && crypto_equal(given, token, n);
}

/*
 * Bearer TOKEN, or Basic with TOKEN as the password (any user), so a
 * browser or Prometheus can be given it. Answers 401 and returns 0 when
 * missing or wrong.
 */
int
api_authorized(struct api *a, struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");
	int ok = 0;

	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
		ok = token_is(h + 7, strlen(h + 7), a->token);
	} else if (h != NULL && strncasecmp(h, "Basic ", 6) == 0) {
		char *dec = NULL;
		size_t n = 0;
		if (strlen(h + 6) <= 4096 &&
		    crypto_base64_decode(h + 6, &dec, &n) == 0) {
			char *colon = memchr(dec, ':', n);
			/* The decoded length counts: no NUL smuggled in. */
			ok = colon != NULL && token_is(colon + 1,
			    n - (size_t)(colon + 1 - dec), a->token);
		}
		free(dec);
	}
	if (!ok)
		http_respond_error(req, 401, "an API token is needed "
		    "(Authorization: Bearer TOKEN, from api_token_file)");
	return ok;
}

static void
respond_json(struct http_req *req, json_t *o)
{
	char *text = o != NULL ? json_dumps(o, JSON_INDENT(2) |
	    JSON_REAL_PRECISION(6)) : NULL;

	if (text == NULL) {
		http_respond_error(req, 500, "store unavailable");
		return;
	}
	http_respond(req, 200, "application/json", text, strlen(text));
	free(text);
	json_decref(o);
}

void
api_tickets(struct api *a, struct http_req *req)
{
	struct ticket_filter f = { 0 };
	const char *esc = http_req_query(req, "escalated");
	enum ticket_state s;

	if (!api_authorized(a, req))
		return;
	f.state = http_req_query(req, "state");
	f.queue = http_req_query(req, "queue");
	f.escalated = esc != NULL && strcmp(esc, "1") == 0;
	if (f.state != NULL && ticket_state_parse(f.state, &s) < 0) {
		http_respond_error(req, 400, "state must be new, open, "
		    "pending, resolved or closed");
		return;
	}
	respond_json(req, view_tickets(a->store, &f));
}

void
api_ticket(struct api *a, struct http_req *req)
{
	const char *id_s = http_req_path(req) + strlen("/api/tickets/");
	struct ticket t;
	int64_t id;
	int found;

	if (!api_authorized(a, req))
		return;
	if (ticket_parse_ref(id_s, &id) < 0) {
		http_respond_error(req, 400, "not a ticket id (N or ESC-N)");
		return;
	}
	found = store_ticket_get(a->store, id, &t);
	if (found == 0) {
		http_respond_error(req, 404, "no such ticket");
		return;
	}
	respond_json(req, found > 0 ? view_show(a->store, a->env, &t) : NULL);
	ticket_release(&t);
}

void
api_report(struct api *a, struct http_req *req)
{
	const char *since = http_req_query(req, "since");
	const char *from_s = http_req_query(req, "from");
	const char *to_s = http_req_query(req, "to");
	int64_t to = clock_now(a->clock), from = to - 30 * 86400, d;

	if (!api_authorized(a, req))
		return;
	if (since != NULL) {
		if (conf_parse_duration(since, &d) < 0 || d <= 0) {
			http_respond_error(req, 400, "since must be a "
			    "duration such as 30d");
			return;
		}
		from = d < to ? to - d : 0;
	}
	if (since != NULL && (from_s != NULL || to_s != NULL)) {
		http_respond_error(req, 400, "since, or from and to: not both");
		return;
	}
	if (to_s != NULL && from_s == NULL) {
		http_respond_error(req, 400, "to needs from");
		return;
	}
	if ((from_s != NULL && clock_parse(from_s, &from) < 0) ||
	    (to_s != NULL && clock_parse(to_s, &to) < 0) || from >= to) {
		http_respond_error(req, 400, "from and to must be RFC 3339 "
		    "times, from before to");
		return;
	}
	respond_json(req, view_report(a->store, a->env, from, to));
}

/* --- /metrics ------------------------------------------------------------ */

struct text {
	char *p;
	size_t len, cap;
};

static void
say(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n + 1;
		char *p = realloc(t->p, cap);
		if (p == NULL)
			return;
		t->p = p;
		t->cap = cap;
	}
}

/* Label values come from config names: escape as Prometheus wants. */
static const char *
label(const char *v, char *buf, size_t len)
{
	size_t o = 0;

	for (; v != NULL && *v != '\0' && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"')
			buf[o++] = '\\';
		if (*v == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
			continue;
		}
		buf[o++] = *v;
	}
	buf[o] = '\0';
	return buf;
}

static int
metric_row(const struct store_metric *m, void *arg)
{
	struct text *t = arg;
	char a[128], b[128], c[128];

	switch (m->kind) {
	case STORE_METRIC_TICKETS:
		say(t, "escalon_tickets{state=\"%s\",level=\"%s\","
		    "severity=\"%s\"} %lld\n", label(m->a, a, sizeof(a)),
		    label(m->b, b, sizeof(b)), label(m->c, c, sizeof(c)),
		    (long long)m->value);
		break;
	case STORE_METRIC_WARNINGS:
	case STORE_METRIC_BREACHES:
		say(t, "escalon_sla_%s_total{clock=\"%s\"} %lld\n",
		    m->kind == STORE_METRIC_WARNINGS ? "warnings" : "breaches",
		    label(m->a, a, sizeof(a)), (long long)m->value);
		break;
	case STORE_METRIC_INBOUND:
		say(t, "escalon_inbound_total{channel=\"%s\"} %lld\n",
		    label(m->a, a, sizeof(a)), (long long)m->value);
		break;
	case STORE_METRIC_ESCALATIONS:
		say(t, "escalon_escalations_total %lld\n",
		    (long long)m->value);
		break;
	}
	return 0;
}

static const struct {
	enum store_metric_kind kind;
	const char *name, *type, *help;
} families[] = {
	{ STORE_METRIC_TICKETS, "escalon_tickets", "gauge",
	    "Tickets by state, level and severity." },
	{ STORE_METRIC_ESCALATIONS, "escalon_escalations_total", "counter",
	    "Escalation steps taken." },
	{ STORE_METRIC_WARNINGS, "escalon_sla_warnings_total", "counter",
	    "SLA warnings, by clock." },
	{ STORE_METRIC_BREACHES, "escalon_sla_breaches_total", "counter",
	    "SLA breaches, by clock." },
	{ STORE_METRIC_INBOUND, "escalon_inbound_total", "counter",
	    "Messages received, by channel." },
};

static void
family(struct text *t, const char *name, const char *type, const char *help)
{
	say(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
restart_row(const char *child, unsigned restarts, void *arg)
{
	say(arg, "escalon_child_restarts_total{child=\"%s\"} %u\n", child,
	    restarts);
}

void
api_metrics(struct api *a, struct http_req *req)
{
	struct text t = { 0 };
	int64_t pending = 0, dead = 0;

	if (!a->loopback && !api_authorized(a, req))
		return;
	if ((t.p = malloc(4096)) == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	t.cap = 4096;
	t.p[0] = '\0';
	/* Each family whole: HELP and TYPE, then its samples. */
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		family(&t, families[i].name, families[i].type,
		    families[i].help);
		if (store_metrics(a->store, families[i].kind, metric_row,
		    &t) < 0)
			goto fail;
	}
	if (store_outbox_count(a->store, &pending, &dead) < 0)
		goto fail;
	family(&t, "escalon_outbox_pending", "gauge",
	    "Outbound messages waiting or in flight.");
	say(&t, "escalon_outbox_pending %lld\n", (long long)pending);
	family(&t, "escalon_outbox_dead", "gauge",
	    "Outbound messages given up on.");
	say(&t, "escalon_outbox_dead %lld\n", (long long)dead);
	family(&t, "escalon_child_restarts_total", "counter",
	    "Channel child restarts, by child.");
	intake_restarts(a->intake, restart_row, &t);
	http_respond(req, 200, "text/plain; version=0.0.4", t.p, t.len);
	free(t.p);
	return;
fail:
	free(t.p);
	http_respond_error(req, 500, "store unavailable");
}

void
api_healthz(struct api *a, struct http_req *req)
{
	int64_t n, pending = 0, dead = 0;
	int ok, channels_up, outbound_up = 1;

	if (!a->loopback && !api_authorized(a, req))
		return;
	ok = store_ticket_count(a->store, &n) == 0 &&
	    store_outbox_count(a->store, &pending, &dead) == 0;
	/* Reads may work on a full disk; the gateway cannot take anything. */
	const char *write_error = store_write_error(a->store);
	/* A channel or transport down degrades the gateway; the rest still
	 * serves. Only a store that cannot answer makes it unhealthy. */
	json_t *channels = intake_health(a->intake, &channels_up);
	json_t *outbound = a->sender != NULL ?
	    sender_health(a->sender, &outbound_up) : json_object();
	json_object_set_new(outbound, "pending", json_integer(pending));
	json_object_set_new(outbound, "dead", json_integer(dead));
	json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "status",
	    ok && write_error == NULL && channels_up && outbound_up ? "ok" :
	    "degraded", "store", !ok ? store_error(a->store) :
	    write_error != NULL ? write_error : "ok", "channels", channels,
	    "outbound", outbound);
	ok &= write_error == NULL;
	char *text = json_dumps(o, JSON_COMPACT);
	http_respond(req, ok ? 200 : 503, "application/json", text,
	    strlen(text));
	free(text);
	json_decref(o);
}

static void
csat_page(struct http_req *req, unsigned status, const char *title,
    const char *text)
{
	char page[1024];
	int n = snprintf(page, sizeof(page), "<!DOCTYPE html>\n<html lang=\"en\">"
	    "<head><meta charset=\"utf-8\"><meta name=\"viewport\" "
	    "content=\"width=device-width\"><title>%s</title></head><body "
	    "style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">"
	    "<h1>%s</h1><p>%s</p></body></html>\n", title, title, text);

	http_respond(req, status, "text/html; charset=utf-8", page,
	    (size_t)n);
}

void
api_csat(struct api *a, struct http_req *req)
{
	const char *token = http_req_path(req) + strlen("/csat/");
	const char *score_s = http_req_query(req, "score");
	int64_t now = clock_now(a->clock), ticket = 0;
	int score, found;

	if (score_s == NULL || score_s[0] < '1' || score_s[0] > '5' ||
	    score_s[1] != '\0') {
		csat_page(req, 400, "Rate us from 1 to 5", "Please use one of "
		    "the links in our message: they end in ?score=1 to "
		    "?score=5.");
		return;
	}
	if (strlen(token) != 32 || strspn(token, "0123456789abcdef") != 32) {
		csat_page(req, 404, "Unknown survey", "This link is not one "
		    "of ours, or it was cut short.");
		return;
	}
	score = score_s[0] - '0';
	if (store_begin(a->store) < 0)
		goto fail;
	found = store_csat_rate(a->store, token, score, now, &ticket);
	if (found < 0)
		goto rollback;
	if (found == 0) {
		store_rollback(a->store);
		csat_page(req, 404, "Unknown survey", "This link is not one "
		    "of ours, or it was cut short.");
		return;
	}
	if (store_event_add(a->store, ticket, now, "csat", "customer",
	    json_pack("{s:i}", "score", score)) < 0 ||
	    store_commit(a->store) < 0)
		goto rollback;
	csat_page(req, 200, "Thank you", "Your rating is recorded. If you "
	    "change your mind, another link from the same message replaces "
	    "it.");
	return;
rollback:
	store_rollback(a->store);
fail:
	csat_page(req, 503, "Please try again", "We could not record your "
	    "rating just now.");
}
