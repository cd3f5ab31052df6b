/* xmpp: the chat child. See xmpp.h. */
#include "xmpp.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "childlink.h"
#include "crypto.h"
#include "frame.h"
#include "log.h"

#define NS_MAM "urn:xmpp:mam:2"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_SID "urn:xmpp:sid:0"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"
#define NS_PING "urn:xmpp:ping"

#define RUN_SLICE_MS 50		/* libstrophe, then the core, in turn */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
#define MAM_PAGE "100"
#define SUBJECT_MAX 200		/* bytes of the first line */
#define START_MAX (1u << 20)
#define SEND_MAX (64u << 20)

/* --- JIDs and stanzas: pure, unit-tested -------------------------------- */

char *
xmpp_bare_jid(const char *jid)
{
	size_t n;
	char *bare, *at;

	if (jid == NULL)
		return NULL;
	n = strcspn(jid, "/");
	if (n == 0 || (bare = strndup(jid, n)) == NULL)
		return NULL;
	at = strchr(bare, '@');
	/* A domain is needed; a node, if any, must not be empty. */
	if (at == bare || (at != NULL ? at[1] == '\0' : 0) ||
	    !utf8_valid(bare, strlen(bare))) {
		free(bare);
		return NULL;
	}
	for (char *p = bare; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return bare;
}

/* The first non-empty line, trimmed, cut at SUBJECT_MAX on a character. */
static char *
first_line(const char *body)
{
	const char *p = body, *end;

	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	end = p + strcspn(p, "\r\n");
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if ((size_t)(end - p) > SUBJECT_MAX) {
		end = p + SUBJECT_MAX;
		while (end > p && ((unsigned char)*end & 0xc0) == 0x80)
			end--;
	}
	return strndup(p, (size_t)(end - p));
}

/* The stanza-id our own server stamped (XEP-0359), or NULL. */
static const char *
own_stanza_id(xmpp_stanza_t *msg, const char *own_jid)
{
	for (xmpp_stanza_t *k = xmpp_stanza_get_children(msg); k != NULL;
	    k = xmpp_stanza_get_next(k)) {
		const char *name = xmpp_stanza_get_name(k);
		const char *ns = xmpp_stanza_get_ns(k);
		const char *by = xmpp_stanza_get_attribute(k, "by");
		if (name != NULL && strcmp(name, "stanza-id") == 0 &&
		    ns != NULL && strcmp(ns, NS_SID) == 0 && by != NULL &&
		    strcasecmp(by, own_jid) == 0)
			return xmpp_stanza_get_attribute(k, "id");
	}
	return NULL;
}

/* A stable key for a message without an archive id. */
static char *
fallback_key(const char *from, const char *id, const char *body,
    const char *stamp)
{
	unsigned char digest[CRYPTO_SHA256_LEN];
	char hex[2 * CRYPTO_SHA256_LEN + 1], *key, *text;

	if (id != NULL)
		return asprintf(&key, "stanza:%s:%s", from, id) < 0 ? NULL :
		    key;
	if (asprintf(&text, "%s\n%s\n%s", from, stamp ? stamp : "", body) < 0)
		return NULL;
	crypto_sha256(text, strlen(text), digest);
	free(text);
	crypto_hex(digest, sizeof(digest), hex);
	return asprintf(&key, "sha256:%s", hex) < 0 ? NULL : key;
}

struct inbound_msg *
xmpp_normalize(xmpp_ctx_t *ctx, xmpp_stanza_t *msg, const char *own_jid,
    const char *archive_id, size_t max_body, const char **why_r)
{
	const char *type = xmpp_stanza_get_type(msg);
	char *from = xmpp_bare_jid(xmpp_stanza_get_from(msg));
	char *body = xmpp_message_get_body(msg), *key = NULL;
	struct inbound_msg *m = NULL;
	xmpp_stanza_t *delay;
	size_t len;

	*why_r = NULL;
	if (type != NULL && strcmp(type, "chat") != 0 &&
	    strcmp(type, "normal") != 0)
		*why_r = "not a chat message";
	else if (from == NULL)
		*why_r = "no sender JID";
	else if (strchr(from, '@') == NULL)
		*why_r = "from a server, not a person (a MOTD, a notice)";
	else if (strcmp(from, own_jid) == 0)
		*why_r = "our own message";
	else if (body == NULL || body[strspn(body, " \t\r\n")] == '\0')
		*why_r = "no body (a chat state, or empty)";
	else if (!utf8_valid(body, strlen(body)))
		*why_r = "the body is not UTF-8";
	if (*why_r != NULL)
		goto out;
	*why_r = "out of memory";
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto out;
	m->channel = CHANNEL_CHAT;
	len = strlen(body);
	if (len > max_body) {
		while (len > max_body ||
		    (len > 0 && ((unsigned char)body[len] & 0xc0) == 0x80))
			len--;
		m->truncated = 1;
		m->raw_size = (int64_t)strlen(body);
	}
	delay = xmpp_stanza_get_child_by_name_and_ns(msg, "delay", NS_DELAY);
	if (archive_id == NULL)
		archive_id = own_stanza_id(msg, own_jid);
	key = archive_id != NULL ? NULL : fallback_key(from,
	    xmpp_stanza_get_id(msg), body, delay != NULL ?
	    xmpp_stanza_get_attribute(delay, "stamp") : NULL);
	m->body = strndup(body, len);
	m->subject = first_line(m->body != NULL ? m->body : "");
	m->dedupe_scope = strdup("chat");
	if (archive_id == NULL) {
		m->dedupe_key = key;
		key = NULL;
	} else if (asprintf(&m->dedupe_key, "archive:%s", archive_id) < 0) {
		m->dedupe_key = NULL;
	}
	m->from_scope = strdup("xmpp");
	m->from_address = from;
	from = NULL;
	if (xmpp_stanza_get_id(msg) != NULL)
		m->message_id = strdup(xmpp_stanza_get_id(msg));
	if (m->body == NULL || m->subject == NULL || m->dedupe_scope == NULL ||
	    m->dedupe_key == NULL || m->from_scope == NULL ||
	    (m->message_id != NULL && !utf8_valid(m->message_id,
	    strlen(m->message_id)))) {
		inbound_msg_free(&m);
		goto out;
	}
	*why_r = NULL;
out:
	free(key);
	free(from);
	if (body != NULL)
		xmpp_free(ctx, body);
	return m;
}

/* --- the child ------------------------------------------------------------ */

struct xmpp_child {
	struct childlink link;
	char *name, *jid, *own, *password, *host, *ca_file, *source;
	int port, tls_verify;
	enum { TLS_NONE, TLS_STARTTLS, TLS_TLS } tls;
	size_t max_body;
	char *committed;	/* the archive id the core last stored */
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	int online;		/* session established */
	int lost;		/* the connection ended: reconnect */
	int catching_up;	/* a MAM query is running */
	char mam_id[32];	/* its query id */
	unsigned mam_seq;
	int64_t reconnect_at, backoff;
};

static void
status(struct xmpp_child *c, const char *state, const char *detail)
{
	childlink_status(&c->link, state, detail);
}

/* One message to the core; its archive id is the checkpoint when it is
 * in order (from the archive, or live once caught up). */
static void
hand_over(struct xmpp_child *c, xmpp_stanza_t *msg, const char *archive_id)
{
	const char *why;
	struct inbound_msg *m = xmpp_normalize(c->ctx, msg, c->own, archive_id,
	    c->max_body, &why);
	char *buf = NULL;
	size_t len;

	if (m == NULL) {
		if (strcmp(why, "out of memory") == 0)
			log_error("chat message not handed over", "child=%s "
			    "error=%s", log_q(c->source), why);
		return;
	}
	/* Source, queue and scopes are the core's to set. */
	if (inbound_msg_pack(m, &buf, &len) < 0) {
		log_error("chat message not handed over", "child=%s error=%s",
		    log_q(c->source), "out of memory");
		inbound_msg_free(&m);
		return;
	}
	childlink_send(&c->link, FRAME_MSG, buf, len);
	const char *ck = archive_id != NULL ? archive_id :
	    c->catching_up ? NULL : own_stanza_id(msg, c->own);
	childlink_send(&c->link, FRAME_COMMIT, ck, ck != NULL ? strlen(ck) :
	    0);
	free(buf);
	inbound_msg_free(&m);
}

/* --- the archive (XEP-0313) ---------------------------------------------- */

static void
mam_query(struct xmpp_child *c, const char *after)
{
	xmpp_stanza_t *iq, *query, *set, *el, *text;

	snprintf(c->mam_id, sizeof(c->mam_id), "mam%u", ++c->mam_seq);
	iq = xmpp_iq_new(c->ctx, "set", c->mam_id);
	query = xmpp_stanza_new(c->ctx);
	xmpp_stanza_set_name(query, "query");
	xmpp_stanza_set_ns(query, NS_MAM);
	xmpp_stanza_set_attribute(query, "queryid", c->mam_id);
	set = xmpp_stanza_new(c->ctx);
	xmpp_stanza_set_name(set, "set");
	xmpp_stanza_set_ns(set, NS_RSM);
	el = xmpp_stanza_new(c->ctx);
	xmpp_stanza_set_name(el, "max");
	text = xmpp_stanza_new(c->ctx);
	/* Without a checkpoint: only ask whether there is an archive. */
	xmpp_stanza_set_text(text, after != NULL ? MAM_PAGE : "0");
	xmpp_stanza_add_child(el, text);
	xmpp_stanza_release(text);
	xmpp_stanza_add_child(set, el);
	xmpp_stanza_release(el);
	if (after != NULL) {
		el = xmpp_stanza_new(c->ctx);
		xmpp_stanza_set_name(el, "after");
		text = xmpp_stanza_new(c->ctx);
		xmpp_stanza_set_text(text, after);
		xmpp_stanza_add_child(el, text);
		xmpp_stanza_release(text);
		xmpp_stanza_add_child(set, el);
		xmpp_stanza_release(el);
	}
	xmpp_stanza_add_child(query, set);
	xmpp_stanza_release(set);
	xmpp_stanza_add_child(iq, query);
	xmpp_stanza_release(query);
	c->catching_up = after != NULL;
	xmpp_send(c->conn, iq);
	xmpp_stanza_release(iq);
}

static int on_mam_done(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *arg);

/* A new query, its answer awaited under its own id. */
static void
mam_start(struct xmpp_child *c, const char *after)
{
	mam_query(c, after);
	xmpp_id_handler_add(c->conn, on_mam_done, c->mam_id, c);
}

/* A message from the archive: <result queryid id><forwarded><message>. */
static int
mam_result(struct xmpp_child *c, xmpp_stanza_t *stanza)
{
	xmpp_stanza_t *result = xmpp_stanza_get_child_by_name_and_ns(stanza,
	    "result", NS_MAM);
	xmpp_stanza_t *fwd, *inner;
	const char *qid, *id;

	if (result == NULL)
		return 0;
	qid = xmpp_stanza_get_attribute(result, "queryid");
	id = xmpp_stanza_get_attribute(result, "id");
	fwd = xmpp_stanza_get_child_by_name_and_ns(result, "forwarded",
	    NS_FORWARD);
	inner = fwd != NULL ? xmpp_stanza_get_child_by_name(fwd, "message") :
	    NULL;
	/* Only answers to our own query, from our own archive. */
	char *from = xmpp_bare_jid(xmpp_stanza_get_from(stanza));
	int ours = from == NULL || strcmp(from, c->own) == 0;
	free(from);
	if (ours && qid != NULL && strcmp(qid, c->mam_id) == 0 &&
	    id != NULL && inner != NULL)
		hand_over(c, inner, id);
	return 1;
}

static int
on_mam_done(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *arg)
{
	struct xmpp_child *c = arg;
	const char *type = xmpp_stanza_get_type(iq);
	xmpp_stanza_t *fin, *set, *last;
	char *after = NULL;

	(void)conn;
	if (type != NULL && strcmp(type, "error") == 0) {
		/* No archive, or it no longer holds our checkpoint. */
		log_warn(c->committed != NULL ? "the server's archive cannot "
		    "replay from the checkpoint; messages sent while the "
		    "gateway was down come from offline storage only" :
		    "the server keeps no message archive (XEP-0313); messages "
		    "sent while the gateway is down come from offline storage "
		    "only", "child=%s", log_q(c->source));
		c->catching_up = 0;
		return 0;
	}
	fin = xmpp_stanza_get_child_by_name_and_ns(iq, "fin", NS_MAM);
	set = fin != NULL ? xmpp_stanza_get_child_by_name_and_ns(fin, "set",
	    NS_RSM) : NULL;
	last = set != NULL ? xmpp_stanza_get_child_by_name(set, "last") :
	    NULL;
	const char *complete = fin != NULL ?
	    xmpp_stanza_get_attribute(fin, "complete") : NULL;
	if (c->catching_up && last != NULL && (complete == NULL ||
	    strcmp(complete, "true") != 0) &&
	    (after = xmpp_stanza_get_text(last)) != NULL) {
		mam_start(c, after);	/* the next page */
		xmpp_free(c->ctx, after);
		return 0;
	}
	if (c->catching_up)
		log_info("caught up from the archive", "child=%s",
		    log_q(c->source));
	c->catching_up = 0;
	return 0;
}

/* --- stanzas in ------------------------------------------------------------ */

static int
on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *arg)
{
	struct xmpp_child *c = arg;

	(void)conn;
	if (!mam_result(c, stanza))
		hand_over(c, stanza, NULL);
	return 1;
}

static int
on_ping(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *arg)
{
	struct xmpp_child *c = arg;
	const char *id = xmpp_stanza_get_id(stanza);
	const char *from = xmpp_stanza_get_from(stanza);
	xmpp_stanza_t *pong = xmpp_iq_new(c->ctx, "result", id != NULL ? id :
	    "ping");

	if (from != NULL)
		xmpp_stanza_set_to(pong, from);
	xmpp_send(conn, pong);
	xmpp_stanza_release(pong);
	return 1;
}

/* Why libstrophe refused the server's certificate (one account a process,
 * and its handler takes no argument). */
static char cert_refused[160];

static int
on_certfail(const xmpp_tlscert_t *cert, const char *const errormsg)
{
	(void)cert;
	snprintf(cert_refused, sizeof(cert_refused), "the server's "
	    "certificate is not trusted: %s", errormsg != NULL ? errormsg :
	    "no reason given");
	return 0;	/* refuse: tls_verify = no or a ca_file lets it pass */
}

static void
on_connection(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
    xmpp_stream_error_t *stream_error, void *arg)
{
	struct xmpp_child *c = arg;
	char detail[200];

	(void)stream_error;
	if (event == XMPP_CONN_CONNECT) {
		xmpp_stanza_t *pres = xmpp_presence_new(c->ctx);
		c->online = 1;
		c->backoff = BACKOFF_FIRST_MS;
		xmpp_handler_add(conn, on_message, NULL, "message", NULL, c);
		xmpp_handler_add(conn, on_ping, NS_PING, "iq", "get", c);
		/* Presence, or messages to the bare JID go offline. */
		xmpp_send(conn, pres);
		xmpp_stanza_release(pres);
		mam_start(c, c->committed);
		status(c, "online", c->committed != NULL ? "connected, "
		    "catching up from the archive" : "connected");
		return;
	}
	if (cert_refused[0] != '\0')
		snprintf(detail, sizeof(detail), "%s", cert_refused);
	else
		snprintf(detail, sizeof(detail), "%s (error %d)",
		    event == XMPP_CONN_FAIL ? "cannot connect or log in" :
		    "disconnected", error);
	c->online = 0;
	c->lost = 1;
	status(c, "down", detail);
}

/* --- frames from the core ---------------------------------------------------- */

static void
sent(struct xmpp_child *c, json_int_t id, int ok, const char *error)
{
	json_t *o = json_pack("{s:I, s:b, s:b, s:s*}", "id", id, "ok", ok,
	    "permanent", 0, "error", error);
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (text != NULL)
		childlink_send(&c->link, FRAME_SENT, text, strlen(text));
	free(text);
	json_decref(o);
}

static void
on_send(struct xmpp_child *c, const char *payload, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(payload, len, 0, &jerr);
	const char *to, *body, *stanza_id;
	json_int_t id;

	if (o == NULL || json_unpack(o, "{s:I, s:s, s:s, s:s}", "id", &id,
	    "to", &to, "body", &body, "stanza_id", &stanza_id) < 0) {
		log_error("bad FRAME_SEND from the core", "child=%s",
		    log_q(c->source));
		json_decref(o);
		return;
	}
	if (!c->online) {
		sent(c, id, 0, "the chat account is not connected");
	} else {
		xmpp_stanza_t *msg = xmpp_message_new(c->ctx, "chat", to,
		    stanza_id);
		xmpp_message_set_body(msg, body);
		xmpp_send(c->conn, msg);
		xmpp_stanza_release(msg);
		sent(c, id, 1, NULL);
	}
	json_decref(o);
}

static void
from_core(struct xmpp_child *c, int64_t ms)
{
	int type;
	const char *payload;
	size_t len;

	while (childlink_next(&c->link, ms, &type, &payload, &len) == 1) {
		ms = 0;
		if (type == FRAME_SEND) {
			on_send(c, payload, len);
		} else if (type == FRAME_COMMITTED) {
			free(c->committed);
			c->committed = strndup(payload, len);
		} else if (type == FRAME_FAILED && c->online &&
		    !c->catching_up) {
			/* Not stored: fetch it again from the archive. */
			log_warn("the core could not commit, replaying from the "
			    "archive", "child=%s", log_q(c->source));
			mam_start(c, c->committed);
		}
	}
}

/* --- connection ---------------------------------------------------------- */

static void
connect_account(struct xmpp_child *c)
{
	long flags = c->tls == TLS_NONE ? XMPP_CONN_FLAG_DISABLE_TLS :
	    c->tls == TLS_STARTTLS ? XMPP_CONN_FLAG_MANDATORY_TLS :
	    XMPP_CONN_FLAG_LEGACY_SSL;
	char *full;

	if (!c->tls_verify)
		flags |= XMPP_CONN_FLAG_TRUST_TLS;
	c->conn = xmpp_conn_new(c->ctx);
	if (c->conn == NULL || asprintf(&full, "%s/escalon", c->own) < 0) {
		c->lost = 1;
		return;
	}
	xmpp_conn_set_flags(c->conn, flags);
	cert_refused[0] = '\0';
	xmpp_conn_set_certfail_handler(c->conn, on_certfail);
	if (c->ca_file != NULL)
		xmpp_conn_set_cafile(c->conn, c->ca_file);
	xmpp_conn_set_jid(c->conn, full);
	xmpp_conn_set_pass(c->conn, c->password);
	/* TCP keepalive: a server that vanished is noticed. */
	xmpp_conn_set_sockopt_callback(c->conn, xmpp_sockopt_cb_keepalive);
	free(full);
	c->lost = 0;
	if (xmpp_connect_client(c->conn, c->host, (unsigned short)c->port,
	    on_connection, c) != XMPP_EOK) {
		c->lost = 1;
		status(c, "down", "cannot start a connection");
	}
}

static void
drop_connection(struct xmpp_child *c)
{
	xmpp_conn_release(c->conn);
	c->conn = NULL;
	c->online = 0;
	c->catching_up = 0;
	c->reconnect_at = childlink_now_ms() + c->backoff;
	log_info("chat account reconnects", "child=%s in_ms=%lld",
	    log_q(c->source), (long long)c->backoff);
	c->backoff = c->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    c->backoff * 2;
}

/* libstrophe's own complaints, at warn and above, into our log. */
static void
strophe_log(void *arg, xmpp_log_level_t level, const char *area,
    const char *msg)
{
	(void)arg;
	if (level >= XMPP_LEVEL_WARN)
		log_warn("libstrophe", "area=%s detail=%s", log_q(area),
		    log_q(msg));
}

static int
parse_start(struct xmpp_child *c, const char *payload, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(payload, len, 0, &jerr);
	const char *name, *jid, *password, *host, *tls, *ca_file = NULL;
	const char *checkpoint = NULL;
	json_int_t port, max;
	int verify, rc = -1;

	if (o == NULL || json_unpack(o, "{s:s, s:s, s:s, s:s, s:I, s:s, s:b, "
	    "s?s, s:I, s?s}", "name", &name, "jid", &jid, "password",
	    &password, "host", &host, "port", &port, "tls", &tls, "tls_verify",
	    &verify, "ca_file", &ca_file, "max_message_size", &max,
	    "checkpoint", &checkpoint) < 0)
		goto out;
	c->name = strdup(name);
	c->jid = strdup(jid);
	c->own = xmpp_bare_jid(jid);
	c->password = strdup(password);
	c->host = strdup(host);
	c->ca_file = ca_file != NULL ? strdup(ca_file) : NULL;
	c->committed = checkpoint != NULL ? strdup(checkpoint) : NULL;
	c->port = (int)port;
	c->tls_verify = verify;
	c->tls = strcmp(tls, "tls") == 0 ? TLS_TLS :
	    strcmp(tls, "starttls") == 0 ? TLS_STARTTLS : TLS_NONE;
	c->max_body = (size_t)max;
	if (asprintf(&c->source, "xmpp:%s", name) < 0)
		c->source = NULL;
	rc = c->name && c->jid && c->own && c->password && c->host &&
	    c->source ? 0 : -1;
out:
	json_decref(o);
	return rc;
}

static void
release(struct xmpp_child *c)
{
	if (c->conn != NULL)
		xmpp_conn_release(c->conn);
	if (c->ctx != NULL)
		xmpp_ctx_free(c->ctx);
	free(c->name);
	free(c->jid);
	free(c->own);
	free(c->password);
	free(c->host);
	free(c->ca_file);
	free(c->source);
	free(c->committed);
	childlink_release(&c->link);
}

int
xmpp_child_main(int fd)
{
	struct xmpp_child c = { .backoff = BACKOFF_FIRST_MS };
	xmpp_log_t logger = { strophe_log, NULL };
	int type;
	const char *payload;
	size_t len;

	if (childlink_init(&c.link, fd, SEND_MAX) < 0)
		return 1;
	c.link.label = "xmpp";
	if (childlink_next(&c.link, INT32_MAX, &type, &payload, &len) != 1 ||
	    type != FRAME_START || parse_start(&c, payload, len) < 0) {
		log_error("xmpp child: no usable start frame", "%s", "");
		release(&c);
		return 1;
	}
	c.link.label = c.source;
	xmpp_initialize();
	if ((c.ctx = xmpp_ctx_new(NULL, &logger)) == NULL) {
		release(&c);
		return 1;
	}
	log_info("chat child running", "child=%s jid=%s host=%s port=%d "
	    "checkpoint=%s", log_q(c.source), log_q(c.own), log_q(c.host),
	    c.port, log_q(c.committed));
	for (;;) {
		if (c.conn == NULL && childlink_now_ms() >= c.reconnect_at)
			connect_account(&c);
		if (c.conn != NULL) {
			xmpp_run_once(c.ctx, RUN_SLICE_MS);
			from_core(&c, 0);
		} else {
			from_core(&c, RUN_SLICE_MS);
		}
		if (c.conn != NULL && c.lost)
			drop_connection(&c);
	}
}
