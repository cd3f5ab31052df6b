/*
 * sender: the outbox's delivery engine. See sender.h and outbox.h.
 *
 * pump(): pick due rows (room permitting), mark them `sending` in one
 * transaction, start a transfer for each; then sleep until the earliest
 * waiting row is due. finish(): record the attempt's outcome (and, on
 * failure, an event on the ticket) in one transaction, and pump again.
 * Nothing is sent from inside a transaction.
 */
#include "sender.h"

#include <assert.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conf.h"
#include "crypto.h"
#include "log.h"
#include "loop.h"
#include "outbox.h"
#include "store.h"

#define SENDER_STORE_RETRY_MS 5000	/* after the store refused */
#define SENDER_TRANSPORTS 3		/* http, email, xmpp */
#define SENDER_DEFER_SCAN 256		/* due rows looked at past the free
					   slots, to move held ones aside */

struct job {
	struct sender *s;
	int64_t id, ticket_id;
	int attempts;
	char *channel, *recipient, *identity, *signer, *template;
	char *payload;
	size_t payload_len;
	CURL *easy;
	struct curl_slist *headers;	/* HTTP headers, or SMTP rcpts */
	size_t sent;			/* SMTP: bytes read by libcurl */
	int unreachable;		/* failed for want of its server */
	/* Once finished: the outcome to record. */
	struct outbox_next next_state;
	int64_t finished_at;
	char *error;
	char errbuf[CURL_ERROR_SIZE];
	struct job *next;
};

/*
 * A destination that could not be reached (the SMTP relay, one HTTP
 * receiver, one chat account): its rows wait until `until` rather than
 * each failing on its own and writing its failure, the way an MTA defers a
 * dead host's queue. The first row after `until` is the probe.
 */
struct hold {
	char *dest;
	const struct transport *t;
	int64_t since;			/* unreachable since */
	int64_t until;
	int failures;			/* in a row */
	char error[256];
	struct hold *next;
};

struct sender {
	struct loop *loop;
	struct store *store;
	const struct clock *clock;
	const struct conf *conf;
	CURLM *multi;
	struct loop_timer *pump_timer, *curl_timer;
	struct job *jobs;	/* in flight */
	size_t n_jobs;
	sender_chat_fn *chat;
	void *chat_arg;
	struct hold *holds;
	struct job *parked;	/* finished, outcome not yet recorded */
	/* Per transport (the index in transports[]): has an attempt on it
	 * finished yet? Whether it is failing is its holds. */
	int used[SENDER_TRANSPORTS];
};

static void pump(struct sender *s);
static void finish(struct job *j, enum outbox_verdict v, const char *error);
static int record_parked(struct sender *s);

/* --- jobs ---------------------------------------------------------------- */

static void
job_free(struct job *j)
{
	if (j->easy != NULL) {
		curl_multi_remove_handle(j->s->multi, j->easy);
		curl_easy_cleanup(j->easy);
	}
	curl_slist_free_all(j->headers);
	free(j->channel);
	free(j->recipient);
	free(j->identity);
	free(j->signer);
	free(j->template);
	free(j->payload);
	free(j->error);
	free(j);
}

static void
job_unlink(struct job *j)
{
	struct sender *s = j->s;

	for (struct job **pp = &s->jobs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			s->n_jobs--;
			return;
		}
	}
}

/* The signing key of a row, from the conf in force; NULL if gone. */
static const char *
signer_secret(const struct conf *c, const char *signer)
{
	if (signer == NULL)
		return NULL;
	if (strncmp(signer, "webhook:", 8) == 0) {
		const struct conf_webhook *w = conf_webhook(c, signer + 8);
		return w != NULL ? w->secret : NULL;
	}
	if (strncmp(signer, "notify:", 7) == 0) {
		for (size_t i = 0; i < c->n_notifies; i++)
			if (strcmp(c->notifies[i].name, signer + 7) == 0)
				return c->notifies[i].secret;
	}
	return NULL;
}

/* The options every transfer shares; then it joins the multi handle. */
static int
start_transfer(struct job *j, long timeout, const char **error_r)
{
	curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(j->easy, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->errbuf);
	curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
	if (curl_multi_add_handle(j->s->multi, j->easy) != CURLM_OK) {
		*error_r = "cannot start the transfer";
		return -1;
	}
	return 0;
}

/* --- HTTP transport ------------------------------------------------------ */

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int
http_start(struct job *j, const char **error_r)
{
	const char *secret = signer_secret(j->s->conf, j->signer);
	unsigned char mac[CRYPTO_SHA256_LEN];
	char hex[2 * CRYPTO_SHA256_LEN + 1], line[256];

	if (j->signer != NULL && secret == NULL) {
		*error_r = "its signing key (webhook or notify section) is no "
		    "longer configured";
		return -1;
	}
	j->headers = curl_slist_append(j->headers,
	    "Content-Type: application/json");
	snprintf(line, sizeof(line), "X-Escalon-Delivery: %s", j->identity);
	j->headers = curl_slist_append(j->headers, line);
	if (secret != NULL) {
		if (crypto_hmac_sha256(secret, strlen(secret), j->payload,
		    j->payload_len, mac) < 0) {
			*error_r = "cannot sign";
			return -1;
		}
		crypto_hex(mac, sizeof(mac), hex);
		snprintf(line, sizeof(line), "X-Escalon-Signature: sha256=%s",
		    hex);
		j->headers = curl_slist_append(j->headers, line);
	}
	/* An empty Expect: no 100-continue round trip for small bodies. */
	j->headers = curl_slist_append(j->headers, "Expect:");
	if ((j->easy = curl_easy_init()) == NULL || j->headers == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	curl_easy_setopt(j->easy, CURLOPT_URL, j->recipient);
	curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(j->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->payload);
	curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)j->payload_len);
	curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->headers);
	curl_easy_setopt(j->easy, CURLOPT_USERAGENT, "escalon");
	curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, discard);
	return start_transfer(j, SENDER_HTTP_TIMEOUT, error_r);
}

static void
http_done(struct job *j, CURLcode code)
{
	long status = 0;
	char error[CURL_ERROR_SIZE + 64];

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	enum outbox_verdict v = outbox_http_verdict(code == CURLE_OK, status);
	/* No answer, or a gateway in front saying the service is gone. */
	j->unreachable = code != CURLE_OK || status == 502 || status == 503 ||
	    status == 504;
	if (code != CURLE_OK)
		snprintf(error, sizeof(error), "%s", j->errbuf[0] ? j->errbuf :
		    curl_easy_strerror(code));
	else
		snprintf(error, sizeof(error), "HTTP %ld", status);
	finish(j, v, v == OUTBOX_DELIVERED ? NULL : error);
}

/* --- SMTP transport ------------------------------------------------------ */

static size_t
smtp_read(char *buf, size_t size, size_t n, void *arg)
{
	struct job *j = arg;
	size_t left = j->payload_len - j->sent, take = size * n;

	if (take > left)
		take = left;
	memcpy(buf, j->payload + j->sent, take);
	j->sent += take;
	return take;
}

static int
smtp_start(struct job *j, const char **error_r)
{
	const struct conf_smtp *c = &j->s->conf->smtp;

	if (!c->present) {
		*error_r = "no smtp section is configured";
		return -1;
	}
	if ((j->easy = curl_easy_init()) == NULL ||
	    (j->headers = curl_slist_append(NULL, j->recipient)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	curl_easy_setopt(j->easy, CURLOPT_URL, c->url);
	curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(j->easy, CURLOPT_MAIL_FROM, c->from);
	curl_easy_setopt(j->easy, CURLOPT_MAIL_RCPT, j->headers);
	curl_easy_setopt(j->easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(j->easy, CURLOPT_READFUNCTION, smtp_read);
	curl_easy_setopt(j->easy, CURLOPT_READDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_INFILESIZE_LARGE,
	    (curl_off_t)j->payload_len);
	curl_easy_setopt(j->easy, CURLOPT_USE_SSL, c->tls == CONF_TLS_NONE ?
	    (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
	curl_easy_setopt(j->easy, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L :
	    0L);
	curl_easy_setopt(j->easy, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L :
	    0L);
	if (c->ca_file != NULL)
		curl_easy_setopt(j->easy, CURLOPT_CAINFO, c->ca_file);
	if (c->user != NULL) {
		curl_easy_setopt(j->easy, CURLOPT_USERNAME, c->user);
		curl_easy_setopt(j->easy, CURLOPT_PASSWORD, c->password);
	}
	return start_transfer(j, SENDER_SMTP_TIMEOUT, error_r);
}

static void
smtp_done(struct job *j, CURLcode code)
{
	long reply = 0;
	char error[CURL_ERROR_SIZE + 64];
	enum outbox_verdict v;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &reply);
	if (code == CURLE_OK) {
		finish(j, OUTBOX_DELIVERED, NULL);
		return;
	}
	/* A 5xx reply refuses this message for good; the rest may pass. */
	v = reply >= 500 && reply < 600 ? OUTBOX_PERMANENT : OUTBOX_TEMPORARY;
	/* No SMTP answer at all, or 421: the relay, not this message. */
	j->unreachable = reply == 0 || reply == 421;
	const char *text = j->errbuf[0] ? j->errbuf : curl_easy_strerror(code);
	if (reply != 0)
		snprintf(error, sizeof(error), "%s (last reply %ld)", text,
		    reply);
	else
		snprintf(error, sizeof(error), "%s", text);
	finish(j, v, error);
}

/* --- XMPP transport: through the chat children ------------------------ */

static int
chat_start(struct job *j, const char **error_r)
{
	struct sender *s = j->s;

	if (s->chat == NULL) {
		*error_r = "no chat account runs in this gateway";
		return -1;
	}
	if (j->signer == NULL) {
		*error_r = "the row names no chat account";
		return -1;
	}
	return s->chat(s->chat_arg, j->id, j->signer, j->recipient,
	    j->identity, j->payload, j->payload_len, error_r);
}

void
sender_set_chat(struct sender *s, sender_chat_fn *fn, void *arg)
{
	s->chat = fn;
	s->chat_arg = arg;
}

void
sender_chat_done(struct sender *s, int64_t row_id, int delivered,
    int permanent, const char *error)
{
	for (struct job *j = s->jobs; j != NULL; j = j->next) {
		if (j->id == row_id && strcmp(j->channel, "xmpp") == 0) {
			finish(j, delivered ? OUTBOX_DELIVERED : permanent ?
			    OUTBOX_PERMANENT : OUTBOX_TEMPORARY, error);
			return;
		}
	}
}

/* Transports by the outbox row's channel (done: NULL for those that
 * report through their own sender_*_done). */
static const struct transport {
	const char *channel;
	int (*start)(struct job *j, const char **error_r);
	void (*done)(struct job *j, CURLcode code);
} transports[SENDER_TRANSPORTS] = {
	{ "http", http_start, http_done },
	{ "email", smtp_start, smtp_done },
	{ "xmpp", chat_start, NULL },
};

static const struct transport *
transport_for(const char *channel)
{
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
		if (strcmp(transports[i].channel, channel) == 0)
			return &transports[i];
	return NULL;
}

/* Transport names as /healthz shows them, in transports[] order. */
static const char *const health_names[SENDER_TRANSPORTS] = {
	"http", "smtp", "xmpp"
};

/* A transport is failing while one of its destinations is held: a server
 * that answers, even to refuse a message, is not an outage. */
json_t *
sender_health(const struct sender *s, int *up_r)
{
	json_t *o = json_object();
	char since[CLOCK_RFC3339_LEN];

	*up_r = 1;
	for (size_t i = 0; i < SENDER_TRANSPORTS; i++) {
		const struct hold *h = s->holds;
		while (h != NULL && h->t != &transports[i])
			h = h->next;
		*up_r &= h == NULL;
		json_object_set_new(o, health_names[i], !s->used[i] ?
		    json_pack("{s:s}", "state", "unused") : h == NULL ?
		    json_pack("{s:s}", "state", "ok") :
		    json_pack("{s:s, s:s, s:s, s:i}", "state", "failing",
		    "since", clock_format(h->since, since), "error", h->error,
		    "failures", h->failures));
	}
	return o;
}

/* --- destinations held while unreachable ------------------------------- */

/* "smtp", "http://host:port" (the URL up to its path), or the chat
 * account ("xmpp:NAME"): what one outage takes down. */
static void
dest_of(const char *channel, const char *recipient, const char *signer,
    char *out, size_t size)
{
	if (strcmp(channel, "email") == 0) {
		snprintf(out, size, "smtp");
	} else if (strcmp(channel, "http") == 0) {
		const char *p = strstr(recipient, "://");
		size_t n = p != NULL ? (size_t)(p + 3 - recipient) +
		    strcspn(p + 3, "/?#") : strlen(recipient);
		snprintf(out, size, "%.*s", (int)n, recipient);
	} else {
		snprintf(out, size, "%s", signer != NULL ? signer : channel);
	}
}

static struct hold **
hold_find(struct sender *s, const char *channel, const char *recipient,
    const char *signer)
{
	char dest[256];
	struct hold **hp;

	dest_of(channel, recipient, signer, dest, sizeof(dest));
	for (hp = &s->holds; *hp != NULL; hp = &(*hp)->next)
		if (strcmp((*hp)->dest, dest) == 0)
			break;
	return hp;
}

static void
hold_note(struct sender *s, const struct job *j, enum outbox_verdict v,
    const char *error, int64_t now)
{
	struct hold **hp = hold_find(s, j->channel, j->recipient, j->signer),
	    *h = *hp;
	const struct transport *t = transport_for(j->channel);

	if (t == NULL)
		return;
	s->used[t - transports] = 1;
	if (v == OUTBOX_TEMPORARY && j->unreachable) {
		if (h == NULL) {
			char dest[256];
			dest_of(j->channel, j->recipient, j->signer, dest,
			    sizeof(dest));
			if ((h = calloc(1, sizeof(*h))) == NULL ||
			    (h->dest = strdup(dest)) == NULL) {
				free(h);
				return;	/* rows then fail one by one */
			}
			h->t = t;
			h->since = now;
			*hp = h;
		} else if (h->until > now) {
			return;	/* in flight when the hold began: no news */
		}
		h->failures++;
		h->until = now + outbox_backoff(h->failures,
		    s->conf->outbox.retry_first, s->conf->outbox.retry_max);
		snprintf(h->error, sizeof(h->error), "%s unreachable: %s",
		    h->dest, error != NULL ? error : "?");
		log_warn("destination unreachable, its messages wait",
		    "dest=%s failures=%d wait_s=%lld error=%s", log_q(h->dest),
		    h->failures, (long long)(h->until - now), log_q(error));
	} else if (h != NULL && v != OUTBOX_TEMPORARY) {
		log_info("destination reachable again", "dest=%s",
		    log_q(h->dest));
		*hp = h->next;
		free(h->dest);
		free(h);
	}
}

void
sender_chat_online(struct sender *s, const char *account)
{
	struct hold **hp = hold_find(s, "xmpp", "", account), *h = *hp;

	if (h != NULL) {
		*hp = h->next;
		free(h->dest);
		free(h);
	}
	/* Their retry times were set while the account was away. */
	if (store_outbox_release(s->store, "xmpp", account,
	    clock_now(s->clock)) < 0)
		log_error("chat messages not released", "account=%s error=%s",
		    log_q(account), log_q(store_error(s->store)));
	sender_kick(s);
}

/* --- curl multi in the loop ---------------------------------------------- */

static void
check_done(struct sender *s)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
		struct job *j = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &j);
		const struct transport *t = transport_for(j->channel);
		t->done(j, msg->data.result);
	}
}

static void
on_curl_fd(struct loop *l, int fd, unsigned events, void *arg)
{
	struct sender *s = arg;
	int running, flags = ((events & LOOP_READ) ? CURL_CSELECT_IN : 0) |
	    ((events & LOOP_WRITE) ? CURL_CSELECT_OUT : 0);

	(void)l;
	curl_multi_socket_action(s->multi, fd, flags, &running);
	check_done(s);
}

static int
on_curl_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct sender *s = arg;
	unsigned ev = ((what & CURL_POLL_IN) ? LOOP_READ : 0) |
	    ((what & CURL_POLL_OUT) ? LOOP_WRITE : 0);

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		loop_fd_del(s->loop, fd);
		curl_multi_assign(s->multi, fd, NULL);
	} else if (sockp == NULL) {
		if (loop_fd_add(s->loop, fd, ev, on_curl_fd, s) == 0)
			curl_multi_assign(s->multi, fd, s);
	} else {
		loop_fd_set_events(s->loop, fd, ev);
	}
	return 0;
}

static void
on_curl_timer(struct loop *l, void *arg)
{
	struct sender *s = arg;
	int running;

	(void)l;
	s->curl_timer = NULL;
	curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(s);
}

static int
on_curl_timeout(CURLM *m, long ms, void *arg)
{
	struct sender *s = arg;

	(void)m;
	loop_timer_cancel(s->loop, &s->curl_timer);
	if (ms >= 0)
		s->curl_timer = loop_timer_add(s->loop, ms, on_curl_timer, s);
	return 0;
}

/* --- pick, start, finish ------------------------------------------------- */

static void
on_pump(struct loop *l, void *arg)
{
	struct sender *s = arg;

	(void)l;
	s->pump_timer = NULL;
	pump(s);
}

static void
pump_in(struct sender *s, int64_t ms)
{
	loop_timer_cancel(s->loop, &s->pump_timer);
	s->pump_timer = loop_timer_add(s->loop, ms, on_pump, s);
}

void
sender_kick(struct sender *s)
{
	pump_in(s, 0);
}

static char *
dup_n(const char *p, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

/* A due row of a held destination: it waits for the hold's end. */
struct deferred {
	int64_t id;
	enum outbox_state state;
	int attempts;
	const struct hold *hold;
	struct deferred *next;
};

struct pick {
	struct sender *s;
	int64_t now;
	struct job *jobs, **tail;	/* in queue order */
	struct deferred *deferred;
	int room;			/* jobs still to take */
	int failed;
	int waiting;		/* due rows left for their recipient's turn */
};

/* A message about this ticket to this recipient is on its way. */
static int
busy(const struct job *list, const struct outbox_row *r)
{
	for (const struct job *j = list; j != NULL; j = j->next)
		if (j->ticket_id == r->ticket_id &&
		    strcmp(j->recipient, r->recipient) == 0 &&
		    strcmp(j->channel, r->channel) == 0)
			return 1;
	return 0;
}

static int
pick_row(const struct outbox_row *r, void *arg)
{
	struct pick *pk = arg;
	struct job *j;

	/* One at a time per ticket and recipient, in queue order: a
	 * customer reads `resolved` before `csat`, the ack before the reply.
	 * The rest waits for the next pump, after this one finishes. */
	if (busy(pk->s->jobs, r) || busy(pk->jobs, r) ||
	    busy(pk->s->parked, r)) {
		pk->waiting = 1;
		return 0;
	}
	const struct hold *h = *hold_find(pk->s, r->channel, r->recipient,
	    r->signer);
	if (h != NULL && h->until > pk->now) {
		struct deferred *d = calloc(1, sizeof(*d));
		if (d == NULL) {
			pk->failed = 1;
			return 1;
		}
		d->id = r->id;
		d->state = r->state;
		d->attempts = r->attempts;
		d->hold = h;
		d->next = pk->deferred;
		pk->deferred = d;
		return 0;
	}
	if (pk->room == 0)
		return 0;	/* looked at only to find held rows */
	pk->room--;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		pk->failed = 1;
		return 1;
	}
	assert(outbox_may(r->state, OUTBOX_SENDING));
	j->s = pk->s;
	j->id = r->id;
	j->ticket_id = r->ticket_id;
	j->attempts = r->attempts;
	j->channel = strdup(r->channel);
	j->recipient = strdup(r->recipient);
	j->identity = strdup(r->identity);
	j->signer = r->signer != NULL ? strdup(r->signer) : NULL;
	j->template = r->template != NULL ? strdup(r->template) : NULL;
	j->payload = dup_n(r->payload, r->payload_len);
	j->payload_len = r->payload_len;
	*pk->tail = j;
	pk->tail = &j->next;
	if (j->channel == NULL || j->recipient == NULL || j->identity == NULL ||
	    j->payload == NULL) {
		pk->failed = 1;
		return 1;
	}
	return 0;
}

static void
deferred_free(struct deferred **dp)
{
	while (*dp != NULL) {
		struct deferred *d = *dp;
		*dp = d->next;
		free(d);
	}
}

/* Mark the picked rows sending and move the deferred ones to their hold's
 * end, in one transaction. */
static int
pick_commit(struct sender *s, const struct pick *pk, int64_t now)
{
	if (pk->jobs == NULL && pk->deferred == NULL)
		return 0;
	if (store_begin(s->store) < 0)
		return -1;
	for (const struct job *j = pk->jobs; j != NULL; j = j->next)
		if (store_outbox_set(s->store, j->id, OUTBOX_SENDING,
		    j->attempts, now, NULL, 0) < 0)
			goto fail;
	for (const struct deferred *d = pk->deferred; d != NULL; d = d->next)
		if (store_outbox_set(s->store, d->id, d->state, d->attempts,
		    d->hold->until, d->hold->error, 0) < 0)
			goto fail;
	if (store_commit(s->store) < 0)
		goto fail;
	return 0;
fail:
	store_rollback(s->store);
	return -1;
}

static void
pump(struct sender *s)
{
	struct pick pk = { .s = s, .now = clock_now(s->clock) };
	int64_t now = pk.now, at;
	int room = SENDER_MAX_IN_FLIGHT - (int)s->n_jobs;
	struct job *j, *next;

	pk.tail = &pk.jobs;
	if (record_parked(s) < 0)
		goto store_failed;
	if (room > 0) {
		pk.room = room;
		if (store_outbox_due(s->store, now, room + SENDER_DEFER_SCAN,
		    pick_row, &pk) < 0 ||
		    pk.failed || pick_commit(s, &pk, now) < 0)
			goto store_failed;
		for (j = pk.jobs; j != NULL; j = next) {
			const struct transport *t = transport_for(j->channel);
			const char *why = "no transport for this channel";
			int rc = -1;
			next = j->next;
			j->next = s->jobs;
			s->jobs = j;
			s->n_jobs++;
			if (t == NULL || (rc = t->start(j, &why)) < 0) {
				j->unreachable = rc == SENDER_TRY_LATER;
				finish(j, rc == SENDER_TRY_LATER ? OUTBOX_TEMPORARY :
				    OUTBOX_PERMANENT, why);
			}
		}
		pk.jobs = NULL;
		if (pk.deferred != NULL) {
			/* Rows behind the deferred ones may be due. */
			deferred_free(&pk.deferred);
			sender_kick(s);
			return;
		}
	}
	if (s->n_jobs < SENDER_MAX_IN_FLIGHT) {
		int found = store_outbox_next_due(s->store, &at);
		if (found < 0)
			goto store_failed;
		/* Rows waiting for their recipient's turn go when the
		 * message ahead of them finishes (finish kicks the pump). */
		if (found && s->pump_timer == NULL && !(pk.waiting && at <= now))
			pump_in(s, at > now ? (at - now) * 1000 : 0);
	}
	return;
store_failed:
	log_error("outbox unavailable", "error=%s retry_ms=%d",
	    log_q(store_error(s->store)), SENDER_STORE_RETRY_MS);
	for (j = pk.jobs; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	deferred_free(&pk.deferred);
	if (s->pump_timer == NULL)
		pump_in(s, SENDER_STORE_RETRY_MS);
}

/* Write a finished job's outcome: its row's next state and, unless sent,
 * an event on the ticket. 0, or -1 when the store refused. */
static int
record(struct sender *s, const struct job *j)
{
	const struct outbox_next *next = &j->next_state;
	const char *error = j->error;
	char when[CLOCK_RFC3339_LEN];

	if (store_begin(s->store) < 0 ||
	    store_outbox_set(s->store, j->id, next->state, next->attempts,
	    next->next_attempt_at, error, next->state == OUTBOX_SENT ?
	    j->finished_at : 0) < 0)
		goto fail;
	if (next->state != OUTBOX_SENT && j->ticket_id > 0 &&
	    store_event_add(s->store, j->ticket_id, j->finished_at,
	    next->state == OUTBOX_DEAD ? "delivery_dead" : "delivery_failed",
	    "escalon", json_pack("{s:s, s:s?, s:s, s:i, s:s, s:s?}",
	    "delivery", j->identity, "template", j->template, "channel",
	    j->channel, "attempt", next->attempts, "error", error,
	    "retry_at", next->state == OUTBOX_RETRY ?
	    clock_format(next->next_attempt_at, when) : NULL)) < 0)
		goto fail;
	if (store_commit(s->store) < 0)
		goto fail;
	return 0;
fail:
	store_rollback(s->store);
	return -1;
}

/* Outcomes the store refused, written again before new rows are picked:
 * their rows stay `sending` meanwhile, so nothing sends them twice. */
static int
record_parked(struct sender *s)
{
	while (s->parked != NULL) {
		struct job *j = s->parked;
		if (record(s, j) < 0)
			return -1;
		log_info("delivery outcome recorded late", "outbox=%lld "
		    "state=%s", (long long)j->id,
		    outbox_state_name(j->next_state.state));
		s->parked = j->next;
		job_free(j);
	}
	return 0;
}

static void
finish(struct job *j, enum outbox_verdict v, const char *error)
{
	struct sender *s = j->s;
	int64_t now = clock_now(s->clock);
	char when[CLOCK_RFC3339_LEN];
	const struct outbox_next *next = &j->next_state;

	hold_note(s, j, v, error, now);
	outbox_after(j->attempts, v, now, &s->conf->outbox, &j->next_state);
	assert(outbox_may(OUTBOX_SENDING, next->state));
	j->finished_at = now;
	j->error = error != NULL ? strdup(error) : NULL;
	job_unlink(j);
	if (j->easy != NULL) {	/* its transfer is over */
		curl_multi_remove_handle(s->multi, j->easy);
		curl_easy_cleanup(j->easy);
		j->easy = NULL;
	}
	if ((error != NULL && j->error == NULL) ||
	    (s->parked != NULL ? -1 : record(s, j)) < 0) {
		/* Kept until the store takes it: a restart meanwhile sends
		 * the row again, as after a crash. */
		log_error("delivery outcome not recorded yet", "outbox=%lld "
		    "state=%s error=%s", (long long)j->id,
		    outbox_state_name(next->state),
		    log_q(j->error == NULL && error != NULL ? "out of memory" :
		    store_error(s->store)));
		j->next = s->parked;
		s->parked = j;
		if (s->pump_timer == NULL)
			pump_in(s, SENDER_STORE_RETRY_MS);
		return;
	}
	if (next->state == OUTBOX_SENT)
		log_info("delivered", "ticket=%lld outbox=%lld channel=%s "
		    "delivery=%s attempt=%d", (long long)j->ticket_id,
		    (long long)j->id, j->channel, log_q(j->identity),
		    next->attempts);
	else
		log_warn(next->state == OUTBOX_DEAD ? "delivery dead" :
		    "delivery failed, will retry", "ticket=%lld outbox=%lld "
		    "channel=%s delivery=%s attempt=%d error=%s retry_at=%s",
		    (long long)j->ticket_id, (long long)j->id, j->channel,
		    log_q(j->identity), next->attempts, log_q(error),
		    next->state == OUTBOX_RETRY ?
		    clock_format(next->next_attempt_at, when) : "-");
	job_free(j);
	sender_kick(s);
}

/* --- life ---------------------------------------------------------------- */

struct sender *
sender_new(struct loop *l, struct store *st, const struct clock *clock,
    const struct conf *c, char **error_r)
{
	struct sender *s = calloc(1, sizeof(*s));
	int n = 0;

	*error_r = NULL;
	if (s == NULL)
		return NULL;
	s->loop = l;
	s->store = st;
	s->clock = clock;
	s->conf = c;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (s->multi = curl_multi_init()) == NULL) {
		*error_r = strdup("sender: cannot start libcurl");
		free(s);
		return NULL;
	}
	curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
	curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout);
	curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
	/* A clean stop leaves nothing `sending`: what is, a crash left. */
	if (store_outbox_unstick(st, 1, c->outbox.max_attempts, &n) < 0) {
		if (asprintf(error_r, "sender: %s", store_error(st)) < 0)
			*error_r = NULL;
		sender_free(&s);
		return NULL;
	}
	if (n > 0)
		log_info("outbox: messages in flight at the last stop go out "
		    "again", "count=%d", n);
	sender_kick(s);
	return s;
}

void
sender_free(struct sender **sp)
{
	struct sender *s = *sp;
	int n;

	if (s == NULL)
		return;
	while (s->jobs != NULL) {
		struct job *j = s->jobs;
		s->jobs = j->next;
		job_free(j);
	}
	if (s->n_jobs > 0)
		store_outbox_unstick(s->store, 0, 0, &n);
	record_parked(s);	/* a last try: else these go out again */
	while (s->parked != NULL) {
		struct job *j = s->parked;
		s->parked = j->next;
		job_free(j);
	}
	while (s->holds != NULL) {
		struct hold *h = s->holds;
		s->holds = h->next;
		free(h->dest);
		free(h);
	}
	loop_timer_cancel(s->loop, &s->pump_timer);
	loop_timer_cancel(s->loop, &s->curl_timer);
	curl_multi_cleanup(s->multi);
	curl_global_cleanup();
	free(s);
	*sp = NULL;
}

void
sender_set_conf(struct sender *s, const struct conf *c)
{
	s->conf = c;
}

size_t
sender_in_flight(const struct sender *s)
{
	return s->n_jobs;
}
