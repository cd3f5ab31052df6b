/* outbound: compose and queue outbound messages. See outbound.h. */
#include "outbound.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "crypto.h"
#include "env.h"
#include "mail.h"

/* A delivery id: stable for the row's life, unguessable, names its ticket. */
static int
delivery_id(int64_t ticket_id, char *buf, size_t len)
{
	unsigned char raw[12];
	char hex[2 * sizeof(raw) + 1];

	if (crypto_random(raw, sizeof(raw)) < 0)
		return -1;
	crypto_hex(raw, sizeof(raw), hex);
	snprintf(buf, len, "esc-%lld-%s", (long long)ticket_id, hex);
	return 0;
}

static int
queue_json(struct store *st, int64_t now, int64_t ticket_id,
    const char *template, const char *url, const char *signer,
    const char *delivery, json_t *payload, char *error, size_t error_len)
{
	char *text = json_dumps(payload, JSON_COMPACT);
	struct outbox_row row = {
		.ticket_id = ticket_id,
		.template = template,
		.channel = "http",
		.recipient = url,
		.identity = delivery,
		.signer = signer,
		.payload = text,
		.payload_len = text != NULL ? strlen(text) : 0,
		.next_attempt_at = now,
		.created_at = now,
	};
	int rc;

	json_decref(payload);
	if (text == NULL) {
		snprintf(error, error_len, "cannot encode the %s message",
		    template);
		return -1;
	}
	rc = store_outbox_insert(st, &row);
	if (rc < 0)
		snprintf(error, error_len, "%s", store_error(st));
	free(text);
	return rc;
}

/*
 * The queue_* below put one message to the customer in the outbox: 1 when
 * they did, 0 when there was nowhere to send it, -1 on failure.
 */

/* {"event": "message", ...} to a webhook customer's reply_url. */
static int
queue_message(struct store *st, int64_t now, const struct ticket *t,
    const char *template, const char *body, char *error, size_t error_len)
{
	char delivery[64], ref[32], at[CLOCK_RFC3339_LEN];

	if (t->reply_url == NULL || strncmp(t->source, "webhook:", 8) != 0)
		return 0;	/* no address to answer to */
	if (delivery_id(t->id, delivery, sizeof(delivery)) < 0) {
		snprintf(error, error_len, "no randomness for a delivery id");
		return -1;
	}
	snprintf(ref, sizeof(ref), "ESC-%lld", (long long)t->id);
	return queue_json(st, now, t->id, template, t->reply_url, t->source,
	    delivery, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}",
	    "event", "message", "delivery", delivery, "ticket",
	    (json_int_t)t->id, "ref", ref, "subject", t->subject, "body", body,
	    "at", clock_format(now, at)), error, error_len) < 0 ? -1 : 1;
}

static void
set_var(struct tmpl_vars *v, const char *name, const char *value)
{
	if (value != NULL)
		tmpl_vars_set(v, name, value);
}

static void
set_time(struct tmpl_vars *v, const char *name, int64_t t)
{
	char buf[CLOCK_RFC3339_LEN];

	if (t > 0)
		set_var(v, name, clock_format(t, buf));
}

/* The variables every ticket template has. */
static struct tmpl_vars *
ticket_vars(const struct ticket *t)
{
	struct tmpl_vars *v = tmpl_vars_new();
	char buf[32];

	if (v == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%lld", (long long)t->id);
	set_var(v, "ticket.id", buf);
	snprintf(buf, sizeof(buf), "ESC-%lld", (long long)t->id);
	set_var(v, "ticket.ref", buf);
	set_var(v, "ticket.subject", t->subject);
	set_var(v, "ticket.state", ticket_state_name(t->state));
	set_var(v, "ticket.severity", t->severity);
	set_var(v, "ticket.queue", t->queue);
	set_var(v, "ticket.team", t->team);
	snprintf(buf, sizeof(buf), "%d", t->level);
	set_var(v, "ticket.level", buf);
	set_var(v, "ticket.channel", t->channel);
	set_var(v, "customer.name", t->customer_name);
	set_var(v, "customer.address", t->customer_address);
	set_time(v, "sla.first_response_due", t->due_first_response);
	set_time(v, "sla.next_update_due", t->due_next_update);
	set_time(v, "sla.resolution_due", t->due_resolution);
	return v;
}

/* The address mail about t comes from: its mailbox's, else smtp from. */
static const char *
from_address(const struct conf *c, const struct ticket *t)
{
	const struct conf_mailbox *mb = t->source != NULL &&
	    strncmp(t->source, "mailbox:", 8) == 0 ?
	    conf_mailbox(c, t->source + 8) : NULL;

	return mb != NULL ? mb->address : c->smtp.from;
}

/* In-Reply-To the customer's last mail; References up to ten of them. */
static int
threading(struct store *st, int64_t ticket_id, char **in_reply_to_r,
    char **references_r)
{
	char **ids;
	size_t n, len = 1;

	*in_reply_to_r = *references_r = NULL;
	if (store_message_ids_in(st, ticket_id, 10, &ids, &n) < 0) {
		for (size_t i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		len += strlen(ids[i]) + 1;
	if (n > 0 && (*references_r = malloc(len)) != NULL) {
		char *p = *references_r;
		for (size_t i = n; i-- > 0;)	/* oldest first */
			p += sprintf(p, "%s%s", p == *references_r ? "" : " ",
			    ids[i]);
		*in_reply_to_r = ids[0];
		ids[0] = NULL;
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return 0;
}

/*
 * True when automatic mail to this address must stop: max_autoreplies
 * already went to it in the last hour (a loop with an autoresponder that
 * fools the header checks ends here).
 */
static int
autoreply_limited(struct store *st, const struct conf *c, int64_t now,
    const struct ticket *t, const char *template, int *limited_r)
{
	int64_t n = 0;

	*limited_r = 0;
	if (store_outbox_recent(st, t->customer_address, now - 3600, &n) < 0)
		return -1;
	if (n < c->max_autoreplies)
		return 0;
	*limited_r = 1;
	return store_event_add(st, t->id, now, "autoreply_suppressed",
	    "escalon", json_pack("{s:s, s:s, s:I}", "template", template,
	    "to", t->customer_address, "sent_last_hour", (json_int_t)n));
}

static char *
join_addresses(char **v, size_t n)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 2;
	if (n == 0 || (s = p = malloc(len)) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i > 0 ? ", " : "", v[i]);
	return s;
}

/* The same mail to each copied-in address, each row its own delivery. */
static int
queue_cc_copies(struct store *st, const struct outbox_row *main_row,
    char **cc, size_t n_cc)
{
	for (size_t i = 0; i < n_cc; i++) {
		struct outbox_row row = *main_row;
		char *identity;
		if (asprintf(&identity, "%s %s", main_row->identity,
		    cc[i]) < 0)
			return -1;
		row.recipient = cc[i];
		row.identity = identity;
		int rc = store_outbox_insert(st, &row);
		free(identity);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/*
 * One mail to an email ticket's customer, threaded to their last mail,
 * copied to the people they copied in (not for automatic answers to their
 * own mail: those are for the sender alone).
 */
static int
queue_customer_mail(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const char *template, const struct rendered *r,
    enum mail_auto automatic, char *error, size_t error_len)
{
	const struct conf *c = e->conf;
	const char *from = from_address(c, t);
	char msgid[256], *in_reply_to = NULL, *references = NULL, *mail = NULL;
	char **cc = NULL, *cc_line = NULL;
	size_t n_cc = 0;
	uint64_t n;
	size_t len;
	int rc = -1, limited = 0;

	if (strchr(t->customer_address, '@') == NULL) {
		/* Mail with no sender address: recorded, never answered. */
		if (automatic == MAIL_PERSON) {
			snprintf(error, error_len, "the customer has no mail "
			    "address to answer");
			return -1;
		}
		return store_event_add(st, t->id, now, "not_answered",
		    "escalon", json_pack("{s:s, s:s}", "template", template,
		    "why", "no sender address"));
	}
	if (!c->smtp.present || e->secret == NULL) {
		/* An agent must know the reply went nowhere. */
		if (automatic == MAIL_PERSON) {
			snprintf(error, error_len, "no smtp section: mail to the "
			    "customer cannot be sent");
			return -1;
		}
		return 0;	/* no way to send mail: nothing to queue */
	}
	if (automatic != MAIL_PERSON &&
	    autoreply_limited(st, c, now, t, template, &limited) < 0)
		goto store_error;
	if (limited)
		return 0;
	if (threading(st, t->id, &in_reply_to, &references) < 0 ||
	    (automatic != MAIL_AUTO_REPLIED &&
	    store_ticket_cc_list(st, t->id, &cc, &n_cc) < 0))
		goto store_error;
	cc_line = join_addresses(cc, n_cc);
	crypto_random(&n, sizeof(n));
	mail_message_id(t->id, n, e->secret, mail_domain(from), msgid,
	    sizeof(msgid));
	struct mail_out m = {
		.from = from, .to = t->customer_address, .cc = cc_line,
		.message_id = msgid,
		.in_reply_to = in_reply_to, .references = references,
		.x_loop = from, .date = now, .automatic = automatic, .r = r,
	};
	if ((mail = mail_compose(&m, &len)) == NULL) {
		snprintf(error, error_len, "out of memory");
		goto out;
	}
	struct outbox_row row = {
		.ticket_id = t->id, .template = template, .channel = "email",
		.recipient = t->customer_address, .identity = msgid,
		.payload = mail, .payload_len = len, .next_attempt_at = now,
		.created_at = now,
	};
	if (store_outbox_insert(st, &row) < 0 ||
	    queue_cc_copies(st, &row, cc, n_cc) < 0 ||
	    store_thread_add(st, "mail", msgid, t->id) < 0)
		goto store_error;
	rc = 1;
	goto out;
store_error:
	snprintf(error, error_len, "%s", store_error(st));
out:
	for (size_t i = 0; i < n_cc; i++)
		free(cc[i]);
	free(cc);
	free(cc_line);
	free(in_reply_to);
	free(references);
	free(mail);
	return rc;
}

/* A chat message to a chat ticket's customer, through its account. */
static int
queue_chat(struct store *st, int64_t now, const struct ticket *t,
    const char *template, const char *text, char *error, size_t error_len)
{
	char delivery[64];

	if (delivery_id(t->id, delivery, sizeof(delivery)) < 0) {
		snprintf(error, error_len, "no randomness for a delivery id");
		return -1;
	}
	struct outbox_row row = {
		.ticket_id = t->id, .template = template, .channel = "xmpp",
		.recipient = t->customer_address, .identity = delivery,
		.signer = t->source, .payload = text,
		.payload_len = strlen(text), .next_attempt_at = now,
		.created_at = now,
	};
	if (store_outbox_insert(st, &row) < 0) {
		snprintf(error, error_len, "%s", store_error(st));
		return -1;
	}
	return 1;
}

static int
is_chat(const struct ticket *t)
{
	return t->channel != NULL && strcmp(t->channel, "chat") == 0 &&
	    t->customer_address != NULL && t->source != NULL &&
	    strncmp(t->source, "xmpp:", 5) == 0;
}

static int
is_email(const struct ticket *t)
{
	return t->channel != NULL && strcmp(t->channel, "email") == 0 &&
	    t->customer_address != NULL;
}

int
outbound_reachable(const struct ticket *t)
{
	return t->reply_url != NULL || is_chat(t) || (is_email(t) &&
	    strchr(t->customer_address, '@') != NULL);
}

static int
record_sent(struct store *st, int64_t now, const struct ticket *t,
    const struct rendered *r, char *error, size_t error_len)
{
	const char *subject = NULL;

	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, "Subject") == 0)
			subject = r->headers[i].value;
	struct message m = {
		.ticket_id = t->id,
		.direction = "out",
		.channel = t->channel,
		.author = "escalon",
		.subject = subject,
		.body = r->text != NULL ? r->text : "",
		.at = now,
	};
	if (store_message_insert(st, &m, NULL) < 0) {
		snprintf(error, error_len, "%s", store_error(st));
		return -1;
	}
	return 0;
}

int
outbound_template(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const char *template,
    const char *const *extra, char *error, size_t error_len)
{
	const struct tmplset *ts = e->templates;
	struct tmpl_vars *v;
	struct rendered r;
	const char *why;
	int rc, email = is_email(t), chat = is_chat(t);

	if (t->reply_url == NULL && !email && !chat)
		return 0;	/* nowhere to answer */
	if (ts == NULL) {
		snprintf(error, error_len, "templates are not loaded");
		return -1;
	}
	if ((v = ticket_vars(t)) == NULL) {
		snprintf(error, error_len, "out of memory");
		return -1;
	}
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
		set_var(v, extra[i], extra[i + 1]);
	/* Webhook customers read the chat form: plain text, no headers. */
	rc = tmplset_render(ts, template, email ? "email" : "chat", v, &r,
	    &why);
	tmpl_vars_free(&v);
	if (rc < 0) {
		snprintf(error, error_len, "template %s: %s", template, why);
		return -1;
	}
	/* ack and too_large answer the customer's mail; the rest is news
	 * the gateway generates (RFC 3834). */
	if (email)
		rc = queue_customer_mail(st, e, now, t, template, &r,
		    strcmp(template, "ack") == 0 ||
		    strcmp(template, "too_large") == 0 ? MAIL_AUTO_REPLIED :
		    MAIL_AUTO_GENERATED, error, error_len);
	else if (chat)
		rc = queue_chat(st, now, t, template, r.text, error, error_len);
	else
		rc = queue_message(st, now, t, template, r.text, error,
		    error_len);
	/* On the thread as SPEC's `out` message by `escalon`: what the
	 * customer was told, and when. */
	if (rc > 0)
		rc = record_sent(st, now, t, &r, error, error_len);
	rendered_release(&r);
	return rc < 0 ? -1 : 0;
}

int
outbound_reply(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const char *text, char *error, size_t error_len)
{
	if (is_chat(t))
		return queue_chat(st, now, t, "reply", text, error,
		    error_len) < 0 ? -1 : 0;
	if (!is_email(t))
		return queue_message(st, now, t, "reply", text, error,
		    error_len) < 0 ? -1 : 0;
	/* An agent's words, under the ticket's subject and tag. */
	char subject[1024];
	struct rendered_header h = { "Subject", subject };
	struct rendered r = { .headers = &h, .n_headers = 1,
	    .text = (char *)text };
	snprintf(subject, sizeof(subject), "Re: %s [ESC-%lld]", t->subject,
	    (long long)t->id);
	return queue_customer_mail(st, e, now, t, "reply", &r, MAIL_PERSON,
	    error, error_len) < 0 ? -1 : 0;
}

int
outbound_notify(struct store *st, const struct conf *c, int64_t now,
    const struct ticket *t, const char *event, json_t *detail, char *error,
    size_t error_len)
{
	char delivery[64], ref[32], at[CLOCK_RFC3339_LEN], signer[256];
	int rc = 0;

	if (detail == NULL)
		detail = json_object();
	snprintf(ref, sizeof(ref), "ESC-%lld", (long long)t->id);
	for (size_t i = 0; i < c->n_notifies && rc == 0; i++) {
		const struct conf_notify *n = &c->notifies[i];
		int wanted = 0;
		for (size_t k = 0; k < n->events.n; k++)
			wanted |= strcmp(n->events.v[k], event) == 0;
		if (!wanted)
			continue;
		if (delivery_id(t->id, delivery, sizeof(delivery)) < 0) {
			snprintf(error, error_len, "no randomness for a "
			    "delivery id");
			rc = -1;
			break;
		}
		snprintf(signer, sizeof(signer), "notify:%s", n->name);
		rc = queue_json(st, now, t->id, event, n->url, signer,
		    delivery, json_pack("{s:s, s:s, s:s, s:{s:I, s:s, s:s, "
		    "s:s, s:s, s:s?, s:i}, s:O}", "event", event, "delivery",
		    delivery, "at", clock_format(now, at), "ticket", "id",
		    (json_int_t)t->id, "ref", ref, "state",
		    ticket_state_name(t->state), "severity", t->severity,
		    "queue", t->queue, "team", t->team, "level", t->level,
		    "detail", detail), error, error_len);
	}
	json_decref(detail);
	return rc;
}

/*
 * The tokened address agents reply to, local+ID.TOKEN@domain, at a
 * mailbox escalon reads: the ticket's own, else the first one (a webhook
 * or chat ticket), else the smtp address.
 */
static void
reply_address(const struct env *e, const struct ticket *t, char *out,
    size_t len)
{
	const struct conf *c = e->conf;
	const char *addr = t->source != NULL &&
	    strncmp(t->source, "mailbox:", 8) == 0 ? from_address(c, t) :
	    c->n_mailboxes > 0 ? c->mailboxes[0].address : c->smtp.from;
	const char *at = strrchr(addr, '@');
	char token[MAIL_TOKEN_LEN + 1];

	mail_token(t->id, e->secret, token);
	snprintf(out, len, "%.*s+%lld.%s@%s", at != NULL ?
	    (int)(at - addr) : (int)strlen(addr), addr, (long long)t->id,
	    token, mail_domain(addr));
}

/*
 * One mail to an agent: about t (with its tokened Reply-To and a signed
 * Message-ID that threads to it), or, t NULL, about no ticket at all.
 */
static int
queue_agent_mail(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const struct conf_agent *ag,
    const char *template, const char *const *extra, char *error,
    size_t error_len)
{
	const struct conf *c = e->conf;
	const char *from = t != NULL ? from_address(c, t) : c->smtp.from;
	char reply[320], msgid[256];
	struct tmpl_vars *v = t != NULL ? ticket_vars(t) : tmpl_vars_new();
	struct rendered r;
	const char *why;
	uint64_t n;
	size_t len;
	int rc;

	if (v == NULL) {
		snprintf(error, error_len, "out of memory");
		return -1;
	}
	set_var(v, "agent.name", ag->display_name != NULL ?
	    ag->display_name : ag->name);
	set_var(v, "agent.email", ag->email);
	if (t != NULL) {
		reply_address(e, t, reply, sizeof(reply));
		set_var(v, "reply.address", reply);
	}
	for (size_t k = 0; extra != NULL && extra[k] != NULL; k += 2)
		set_var(v, extra[k], extra[k + 1]);
	rc = tmplset_render(e->templates, template, "email", v, &r, &why);
	tmpl_vars_free(&v);
	if (rc < 0) {
		snprintf(error, error_len, "template %s: %s", template, why);
		return -1;
	}
	crypto_random(&n, sizeof(n));
	mail_message_id(t != NULL ? t->id : 0, n, e->secret, mail_domain(from),
	    msgid, sizeof(msgid));
	struct mail_out m = {
		.from = from, .to = ag->email,
		.reply_to = t != NULL ? reply : NULL, .message_id = msgid,
		.x_loop = from, .date = now,
		.automatic = MAIL_AUTO_GENERATED, .r = &r,
	};
	char *mail = mail_compose(&m, &len);
	rendered_release(&r);
	if (mail == NULL) {
		snprintf(error, error_len, "out of memory");
		return -1;
	}
	struct outbox_row row = {
		.ticket_id = t != NULL ? t->id : 0, .template = template,
		.channel = "email", .recipient = ag->email,
		.identity = msgid, .payload = mail,
		.payload_len = len, .next_attempt_at = now,
		.created_at = now,
	};
	rc = store_outbox_insert(st, &row);
	if (rc == 0 && t != NULL)
		rc = store_thread_add(st, "mail", msgid, t->id);
	if (rc < 0)
		snprintf(error, error_len, "%s", store_error(st));
	free(mail);
	return rc;
}

int
outbound_agent(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const struct conf_agent *ag,
    const char *template, const char *const *extra, char *error,
    size_t error_len)
{
	if (!e->conf->smtp.present || e->secret == NULL ||
	    e->templates == NULL)
		return 0;
	return queue_agent_mail(st, e, now, t, ag, template, extra, error,
	    error_len);
}

int
outbound_team(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const char *template, const char *const *extra,
    char *error, size_t error_len)
{
	const struct conf *c = e->conf;
	const struct conf_team *team = t->team ? conf_team(c, t->team) : NULL;
	const struct conf_agent *assignee = t->assignee != NULL ?
	    conf_agent(c, t->assignee) : NULL;

	if (!c->smtp.present || e->secret == NULL || e->templates == NULL)
		return 0;
	/* The customer's news goes to whoever has the ticket; the rest
	 * (new, warnings, escalations) to the whole team of its level. */
	if (assignee != NULL && strcmp(template, "agent_reply") == 0)
		return queue_agent_mail(st, e, now, t, assignee, template,
		    extra, error, error_len);
	for (size_t i = 0; team != NULL && i < team->agents.n; i++) {
		const struct conf_agent *ag = conf_agent(c, team->agents.v[i]);
		if (ag != NULL && queue_agent_mail(st, e, now, t, ag, template,
		    extra, error, error_len) < 0)
			return -1;
	}
	return 0;
}
