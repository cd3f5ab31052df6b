/*
 * ingest: thread, dedupe and store inbound messages. See ingest.h.
 *
 * For one message, in order:
 *  1. dedupe: (dedupe_scope, dedupe_key) already stored -> duplicate,
 *     nothing written;
 *  2. thread: webhook thread key, mail In-Reply-To/References, an
 *     [ESC-N] subject tag from that ticket's customer, or the open chat
 *     ticket of the same JID;
 *  3. a follow-up reopens a resolved ticket within reopen_within and
 *     returns a pending one to open; past reopen_within (or closed) it
 *     opens a new ticket linked to the old one;
 *  4. otherwise a new ticket in the source's queue, with the queue's
 *     team, SLA and ladder, severity as given or normal, state new.
 */
#include "ingest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentmail.h"
#include "ladder.h"
#include "log.h"
#include "outbound.h"
#include "rules.h"
#include "scheduler.h"
#include "sla.h"

#define MAIL_SCOPE "mail"
#define UNKNOWN_SENDER "(unknown sender)"
/* Mail a machine wrote: it changes no ticket's state. */
#define ROBOT (INBOUND_AUTO_SUBMITTED | INBOUND_AUTO_BOUNCE | INBOUND_AUTO_LOOP)

static int
state_event(struct store *st, int64_t id, int64_t at, enum ticket_state from,
    enum ticket_state to, const char *why)
{
	return store_event_add(st, id, at, "state_changed", "customer",
	    json_pack("{s:s, s:s, s:s}", "from", ticket_state_name(from), "to",
	    ticket_state_name(to), "why", why));
}

/* 1 and *id_r when m belongs to an existing ticket, 0 when not, -1. */
static int
find_thread(struct store *st, const struct inbound_msg *m, int64_t *id_r)
{
	int rc;

	if (m->thread_key != NULL)
		return store_thread_find(st, m->source, m->thread_key, id_r);
	if (m->channel == CHANNEL_CHAT)
		return store_ticket_open_for(st, m->from_scope,
		    m->from_address, id_r);
	if (m->channel != CHANNEL_EMAIL)
		return 0;
	/* A bounce belongs with the mail it reports on. */
	if (m->bounce_of != NULL &&
	    (rc = store_thread_find(st, MAIL_SCOPE, m->bounce_of, id_r)) != 0)
		return rc;
	if (m->in_reply_to != NULL &&
	    (rc = store_thread_find(st, MAIL_SCOPE, m->in_reply_to, id_r)) != 0)
		return rc;
	for (size_t i = m->n_references; i-- > 0;)
		if ((rc = store_thread_find(st, MAIL_SCOPE, m->references[i],
		    id_r)) != 0)
			return rc;
	int64_t tagged = ticket_subject_tag(m->subject);
	if (tagged > 0) {
		struct ticket t;
		rc = store_ticket_get(st, tagged, &t);
		if (rc == 1) {
			rc = t.customer_scope != NULL && t.customer_address &&
			    strcmp(t.customer_scope, m->from_scope) == 0 &&
			    strcmp(t.customer_address, m->from_address) == 0;
			if (rc)
				*id_r = tagged;
		}
		ticket_release(&t);
		return rc;
	}
	return 0;
}

static int
add_thread_keys(struct store *st, const struct inbound_msg *m, int64_t id)
{
	if (m->thread_key != NULL &&
	    store_thread_add(st, m->source, m->thread_key, id) < 0)
		return -1;
	if (m->channel == CHANNEL_EMAIL && m->message_id != NULL &&
	    store_thread_add(st, MAIL_SCOPE, m->message_id, id) < 0)
		return -1;
	return 0;
}

/* "10 MiB", "512 KiB", "300 bytes". */
static void
human_size(int64_t n, char *buf, size_t len)
{
	if (n >= 1 << 20)
		snprintf(buf, len, "%.1f MiB", (double)n / (1 << 20));
	else if (n >= 1 << 10)
		snprintf(buf, len, "%.0f KiB", (double)n / (1 << 10));
	else
		snprintf(buf, len, "%lld bytes", (long long)n);
}

/* Over max_message_size: the agents see that most of it is missing, not
 * an empty or cut message (the sender hears it through too_large). */
static int
note_too_large(struct store *st, const struct env *e, int64_t now,
    int64_t ticket_id, const struct inbound_msg *m)
{
	char size[32], limit[32], text[256];

	human_size(m->raw_size, size, sizeof(size));
	human_size(e->conf->max_message_size, limit, sizeof(limit));
	snprintf(text, sizeof(text), "This message was %s, over the %s limit "
	    "(max_message_size): %s.", size, limit, m->channel ==
	    CHANNEL_EMAIL ? "only its header was kept" :
	    "its text was cut at the limit");
	struct message note = {
		.ticket_id = ticket_id,
		.direction = "note",
		.channel = channel_name(m->channel),
		.author = "escalon",
		.body = text,
		.at = now,
	};
	int64_t id;
	return store_message_insert(st, &note, &id) < 0 ||
	    store_event_add(st, ticket_id, now, "too_large", "escalon",
	    json_pack("{s:I, s:I}", "size", (json_int_t)m->raw_size, "limit",
	    (json_int_t)e->conf->max_message_size)) < 0 ? -1 : 0;
}

/*
 * The automatic answer to the sender of m: `ack` for a new ticket,
 * `too_large` for mail over max_message_size (the sender must know its
 * contents did not arrive). Automatic mail (RFC 3834 and friends) gets no
 * answer: that is what keeps two robots from talking forever.
 */
static int
answer_sender(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const struct inbound_msg *m,
    const char *template, struct ingest_result *r)
{
	char size[32], limit[32];

	if (strcmp(m->from_address, UNKNOWN_SENDER) == 0)
		return store_event_add(st, t->id, now, "not_answered",
		    "escalon", json_pack("{s:s}", "why", "no sender address"));
	if (m->auto_submitted)
		return store_event_add(st, t->id, now, "not_answered",
		    "escalon", json_pack("{s:s, s:i}", "why", "automatic mail",
		    "flags", m->auto_submitted));
	if (m->truncated) {
		human_size(m->raw_size, size, sizeof(size));
		human_size(e->conf->max_message_size, limit, sizeof(limit));
		const char *extra[] = { "message.subject", m->subject,
		    "message.size", size, "limit.size", limit, NULL };
		return outbound_template(st, e, now, t, "too_large", extra,
		    r->error, sizeof(r->error));
	}
	if (template == NULL)
		return 0;
	const char *extra[] = { "message.body", m->body, NULL };
	return outbound_template(st, e, now, t, template, extra, r->error,
	    sizeof(r->error));
}

/* "support@x" or "support+12.token@x" for our address "support@x". */
static int
same_mailbox(const char *addr, const char *ours)
{
	const char *at = ours != NULL ? strchr(ours, '@') : NULL;
	size_t local;

	if (at == NULL)
		return 0;
	local = (size_t)(at - ours);
	return strncasecmp(addr, ours, local) == 0 &&
	    (addr[local] == '@' || addr[local] == '+') &&
	    strchr(addr, '@') != NULL &&
	    strcasecmp(strchr(addr, '@'), at) == 0;
}

/* An address of ours or of an agent: never a copied-in customer. */
static int
is_ours(const struct conf *c, const char *addr)
{
	if (same_mailbox(addr, c->smtp.from))
		return 1;
	for (size_t i = 0; i < c->n_mailboxes; i++)
		if (same_mailbox(addr, c->mailboxes[i].address))
			return 1;
	return conf_agent_by_email(c, addr) != NULL;
}

/* The people a customer copied in stay on the ticket (RT's Cc). */
static int
keep_cc(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, int64_t id)
{
	if (m->channel != CHANNEL_EMAIL || m->auto_submitted)
		return 0;
	for (size_t i = 0; i < m->n_cc; i++)
		if (strchr(m->cc[i], '@') != NULL &&
		    strcasecmp(m->cc[i], m->from_address) != 0 &&
		    !is_ours(e->conf, m->cc[i]) &&
		    store_ticket_cc_add(st, id, m->cc[i], now) < 0)
			return -1;
	return 0;
}

/* What the routing rules see of a message (and of its ticket). */
static void
rule_input_of(const struct inbound_msg *m, const char *severity,
    const char *queue, struct rule_input *in)
{
	memset(in, 0, sizeof(*in));
	in->channel = channel_name(m->channel);
	in->from = m->from_email != NULL ? m->from_email : m->from_address;
	in->subject = m->subject;
	in->body = m->body != NULL ? m->body : m->html_text;
	in->severity = severity;
	in->queue = queue;
	in->customer = m->from_address;
}

static int
rule_events(struct store *st, int64_t id, int64_t now,
    const struct rule_outcome *out)
{
	for (size_t i = 0; i < out->n_fired; i++)
		if (store_event_add(st, id, now, "rule", "escalon",
		    json_pack("{s:s}", "rule", out->fired[i])) < 0)
			return -1;
	return 0;
}

/* A new ticket for m; on success *into (released first) is the stored
 * ticket, ready for the answer. */
static int
new_ticket(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, int64_t linked_to, struct ticket *into,
    struct ingest_result *r)
{
	const struct conf *c = e->conf;
	const char *sev = m->severity != NULL ? m->severity : "normal";
	struct rule_outcome out = { 0 };
	struct rule_input in;
	struct ticket t = { 0 }, saved = { 0 };
	json_t *detail;
	int rc = -1;

	rule_input_of(m, sev, m->queue, &in);
	if (rules_apply(e->rules, &in, RULES_CREATE, &out) < 0) {
		snprintf(r->error, sizeof(r->error), "routing rules failed");
		return -1;
	}
	const struct conf_queue *q = conf_queue(c, out.queue != NULL ?
	    out.queue : m->queue);
	if (out.severity != NULL)
		sev = out.severity;
	const struct conf_severity *cs = conf_severity(c, sev);
	if (q == NULL) {
		snprintf(r->error, sizeof(r->error),
		    "queue \"%s\" is not configured", m->queue);
		goto out;
	}
	t.state = TICKET_NEW;
	t.severity = (char *)sev;
	t.queue = q->name;
	t.team = (char *)(out.team != NULL ? out.team : q->team);
	/* A rule's sla wins over the severity's, which wins over the
	 * queue's. */
	t.sla = (char *)(out.sla != NULL ? out.sla :
	    cs != NULL && cs->sla != NULL ? cs->sla : q->sla);
	t.ladder = q->ladder;
	t.level = 1;
	t.channel = (char *)channel_name(m->channel);
	t.source = m->source;
	t.customer_scope = m->from_scope;
	t.customer_address = m->from_address;
	t.customer_name = m->from_name;
	t.subject = m->subject != NULL && m->subject[0] != '\0' ?
	    m->subject : "(no subject)";
	t.reply_url = m->reply_url;
	t.linked_to = linked_to;
	t.created_at = t.updated_at = t.last_customer_at = now;
	t.resolution_start = t.level_since = now;
	if (store_customer_identify(st, t.channel, m->from_scope,
	    m->from_address, m->from_name, m->from_email, now,
	    &t.customer_id) < 0 ||
	    store_ticket_insert(st, &t) < 0)
		goto out;
	detail = json_pack("{s:s, s:s, s:s}", "channel", t.channel, "source",
	    m->source, "queue", t.queue);
	if (linked_to > 0)
		json_object_set_new(detail, "follows", json_integer(linked_to));
	if (store_event_add(st, t.id, now, "created", "customer", detail) < 0 ||
	    rule_events(st, t.id, now, &out) < 0 ||
	    add_thread_keys(st, m, t.id) < 0)
		goto out;
	for (size_t i = 0; i < out.n_tags; i++)
		if (store_ticket_tag_add(st, t.id, out.tags[i]) < 0)
			goto out;
	/* From here on, the stored ticket (owned strings) is the one. A
	 * start level is where it is created: its messages say so. */
	const char *extra[] = { "message.body", m->body, NULL };
	if (store_ticket_get(st, t.id, &saved) != 1 ||
	    sched_start_level(st, e, &saved, now, 1, r->error,
	    sizeof(r->error)) < 0 ||
	    outbound_notify(st, c, now, &saved, "ticket.created",
	    json_pack("{s:s, s:s}", "channel", saved.channel, "source",
	    saved.source), r->error, sizeof(r->error)) < 0 ||
	    outbound_team(st, e, now, &saved, "agent_new", extra, r->error,
	    sizeof(r->error)) < 0 ||
	    sched_plan(st, e, &saved, now) < 0 ||
	    store_ticket_update(st, &saved) < 0)
		goto out;
	r->ticket_id = t.id;
	r->created = 1;
	ticket_release(into);
	*into = saved;
	saved = (struct ticket){ 0 };
	rc = 0;
out:
	ticket_release(&saved);
	rule_outcome_release(&out);
	return rc;
}

/* Severity keywords in a follow-up raise a ticket's severity. */
static int
follow_up_rules(struct store *st, const struct env *e, int64_t now,
    struct ticket *t, const struct inbound_msg *m, struct ingest_result *r)
{
	struct rule_outcome out = { 0 };
	struct rule_input in;
	int rc = -1;

	rule_input_of(m, t->severity, t->queue, &in);
	if (rules_apply(e->rules, &in, RULES_FOLLOW_UP, &out) < 0) {
		snprintf(r->error, sizeof(r->error), "routing rules failed");
		return -1;
	}
	if (out.severity != NULL && strcmp(out.severity, t->severity) != 0) {
		const struct conf_severity *cs = conf_severity(e->conf,
		    out.severity);
		const struct conf_queue *q = conf_queue(e->conf, t->queue);
		if (store_event_add(st, t->id, now, "severity_changed",
		    "escalon", json_pack("{s:s, s:s, s:s}", "from",
		    t->severity, "to", out.severity, "why",
		    out.n_fired > 0 ? out.fired[0] : "rule")) < 0 ||
		    rule_events(st, t->id, now, &out) < 0)
			goto out;
		free(t->severity);
		t->severity = strdup(out.severity);
		const char *sla = cs != NULL && cs->sla != NULL ? cs->sla :
		    q != NULL ? q->sla : NULL;
		if (sla != NULL) {
			free(t->sla);
			t->sla = strdup(sla);
		}
		if (sched_start_level(st, e, t, now, 0, r->error,
		    sizeof(r->error)) < 0)
			goto out;
	}
	rc = 0;
out:
	rule_outcome_release(&out);
	return rc;
}

/* Reopen or un-pend t for a customer message; *fresh_r when too late. */
static int
follow_up(struct store *st, const struct env *e, int64_t now,
    struct ticket *t, const struct inbound_msg *m, int *fresh_r,
    struct ingest_result *r)
{
	enum ticket_state was = t->state;

	*fresh_r = 0;
	/* Overdue SLA steps first, as the scheduler would have. */
	if (t->next_due_at != 0 && t->next_due_at <= now &&
	    sched_fire(st, e, t, now, r->error, sizeof(r->error)) < 0)
		return -1;
	if (was == TICKET_CLOSED || (was == TICKET_RESOLVED &&
	    now - t->resolved_at > e->conf->reopen_within)) {
		*fresh_r = 1;
		return 0;
	}
	if (was == TICKET_RESOLVED) {
		t->state = TICKET_OPEN;
		t->resolved_at = 0;
		/* A new resolution cycle: its clock, and the time at the
		 * current level, start again. */
		t->resolution_start = now;
		t->level_since = now;
		t->sla_warned &= ~SLA_BIT(SLA_RESOLUTION);
		t->sla_breached &= ~SLA_BIT(SLA_RESOLUTION);
		if (state_event(st, t->id, now, was, t->state,
		    "customer wrote") < 0 ||
		    store_event_add(st, t->id, now, "reopened", "customer",
		    NULL) < 0 ||
		    outbound_notify(st, e->conf, now, t, "ticket.reopened",
		    NULL, r->error, sizeof(r->error)) < 0)
			return -1;
	} else if (was == TICKET_PENDING) {
		t->state = TICKET_OPEN;
		if (state_event(st, t->id, now, was, t->state,
		    "customer wrote") < 0)
			return -1;
	}
	/* After the first response, a customer message starts next_update. */
	if (t->first_response_at != 0 && t->awaiting_since == 0) {
		t->awaiting_since = now;
		t->sla_warned &= ~SLA_BIT(SLA_NEXT_UPDATE);
		t->sla_breached &= ~SLA_BIT(SLA_NEXT_UPDATE);
	}
	t->last_customer_at = now;
	t->updated_at = now;
	if (follow_up_rules(st, e, now, t, m, r) < 0 ||
	    sched_plan(st, e, t, now) < 0)
		return -1;
	return store_ticket_update(st, t);
}

static int
survey_row(const struct outbox_row *row, void *arg)
{
	*(int *)arg = row->template != NULL &&
	    (strcmp(row->template, "csat") == 0 ||
	    strcmp(row->template, "resolved") == 0);
	return 0;
}

/*
 * The rating in a reply to our survey (the csat or resolved mail): 1..5
 * when the reply is just a number or starts with one, 0 when it is no
 * rating, -1 on a store failure.
 */
static int
rating(struct store *st, const struct inbound_msg *m, int64_t ticket_id)
{
	int is_survey = 0;
	int64_t row, row_ticket;
	const char *b = m->body != NULL ? m->body : "";
	int rc;

	if (m->channel != CHANNEL_EMAIL || m->in_reply_to == NULL)
		return 0;
	while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
		b++;
	if (b[0] < '1' || b[0] > '5' || (b[1] >= '0' && b[1] <= '9') ||
	    b[1] == '.' || b[1] == ',')
		return 0;	/* "5", "5 stars", "4 - fine"; not "50" or "3.5" */
	if ((rc = store_outbox_by_identity(st, m->in_reply_to, &row,
	    &row_ticket)) <= 0 || row_ticket != ticket_id)
		return rc < 0 ? -1 : 0;
	if (store_outbox_get(st, row, survey_row, &is_survey) < 0)
		return -1;
	return is_survey ? b[0] - '0' : 0;
}

static int
rate_by_reply(struct store *st, int64_t now, int64_t id, int score)
{
	int rc = store_csat_rate_ticket(st, id, score, now);

	if (rc < 0)
		return -1;
	return store_event_add(st, id, now, "csat", "customer", json_pack(
	    "{s:i, s:s, s:b}", "score", score, "by", "reply", "survey",
	    rc == 1));
}

/* An automatic mail on an existing ticket: which kind, and for a bounce
 * the outbox row it reports on. */
static int
automatic_event(struct store *st, int64_t id, int64_t now,
    const struct inbound_msg *m)
{
	int64_t row = 0, row_ticket = 0;

	if (!(m->auto_submitted & INBOUND_AUTO_BOUNCE))
		return store_event_add(st, id, now, "auto_reply", "customer",
		    json_pack("{s:s?, s:i}", "from", m->from_address, "flags",
		    m->auto_submitted));
	if (m->bounce_of != NULL && store_outbox_by_identity(st, m->bounce_of,
	    &row, &row_ticket) < 0)
		return -1;
	return store_event_add(st, id, now, "bounced", "escalon",
	    json_pack("{s:s?, s:s?, s:o?}", "from", m->from_address,
	    "message_id", m->bounce_of, "outbox", row > 0 ?
	    json_integer(row) : NULL));
}

int
ingest_message(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *given, struct ingest_result *r)
{
	struct ticket t = { 0 };
	int64_t id = 0;
	int found, fresh = 0, rc = -1, score, tell_team = 0;
	/* Mail with no usable From or Sender is still recorded, under a
	 * stand-in identity that is never answered. */
	struct inbound_msg anonymous = *given;
	const struct inbound_msg *m = &anonymous;

	if (anonymous.from_address == NULL) {
		anonymous.from_address = (char *)UNKNOWN_SENDER;
		if (anonymous.from_scope == NULL)
			anonymous.from_scope = (char *)channel_name(
			    given->channel);
	}
	memset(r, 0, sizeof(*r));
	if (m->dedupe_key != NULL) {
		found = store_message_find(st, m->dedupe_scope, m->dedupe_key,
		    &r->ticket_id);
		if (found < 0)
			goto out;
		if (found) {
			r->duplicate = 1;
			return 0;
		}
	}
	/* An agent's mail acts on its ticket; it is no customer's. */
	if ((found = agentmail_handle(st, e, now, m, r)) != 0) {
		if (found < 0)
			goto out;
		rc = 0;
		goto out;
	}
	if ((found = find_thread(st, m, &id)) < 0)
		goto out;
	if (found && store_ticket_get(st, id, &t) != 1)
		goto out;
	if (found && (m->auto_submitted & ROBOT)) {
		/* Recorded on the ticket, and nothing more: an out-of-office
		 * neither reopens nor answers anything. (List mail is a
		 * person's, only never answered automatically.) */
		r->ticket_id = id;
		if (automatic_event(st, id, now, m) < 0 ||
		    add_thread_keys(st, m, id) < 0)
			goto out;
	} else if (found && (score = rating(st, m, id)) != 0) {
		/* "5" in answer to the survey: a rating, not news. */
		r->ticket_id = id;
		if (score < 0 || rate_by_reply(st, now, id, score) < 0 ||
		    add_thread_keys(st, m, id) < 0)
			goto out;
	} else if (found) {
		if (follow_up(st, e, now, &t, m, &fresh, r) < 0)
			goto out;
		if (!fresh) {
			int64_t cust;
			r->ticket_id = id;
			if (store_customer_identify(st, t.channel,
			    m->from_scope, m->from_address, m->from_name,
			    m->from_email, now, &cust) < 0 ||
			    store_event_add(st, id, now, "customer_replied",
			    "customer", json_pack("{s:s}", "channel",
			    channel_name(m->channel))) < 0 ||
			    add_thread_keys(st, m, id) < 0)
				goto out;
			tell_team = 1;
		}
	}
	if ((!found || fresh) && new_ticket(st, e, now, m, fresh ? id : 0,
	    &t, r) < 0)
		goto out;
	struct message msg = {
		.ticket_id = r->ticket_id,
		.direction = "in",
		.channel = channel_name(m->channel),
		.author = m->from_address,
		.subject = m->subject,
		.body = m->body != NULL ? m->body :
		    m->html_text != NULL ? m->html_text : "",
		.message_id = m->message_id,
		.dedupe_scope = m->dedupe_key != NULL ? m->dedupe_scope : NULL,
		.dedupe_key = m->dedupe_key,
		.at = now,
		.raw = m->raw,
		.raw_len = m->raw_len,
	};
	int64_t msg_id;
	if (store_message_insert(st, &msg, &msg_id) < 0 ||
	    keep_cc(st, e, now, m, r->ticket_id) < 0)
		goto out;
	/* An attachment is an index into the raw source when that is kept
	 * whole: its content would be the same bytes a second time, the
	 * largest part of what a mail writes (DESIGN: attachment metadata,
	 * and the raw source). */
	int raw_whole = m->raw != NULL && !m->truncated;
	for (size_t i = 0; i < m->n_attachments; i++) {
		const struct inbound_attachment *a = &m->attachments[i];
		if (store_attachment_add(st, msg_id, a->name, a->type, a->size,
		    raw_whole ? NULL : a->data) < 0)
			goto out;
	}
	if (m->truncated && note_too_large(st, e, now, r->ticket_id, m) < 0)
		goto out;
	/* t is the ticket as stored: the new one, or the follow-up's. The
	 * team (or the assignee) hears what the customer wrote. */
	if (tell_team) {
		const char *extra[] = { "message.body", msg.body, NULL };
		if (outbound_team(st, e, now, &t, "agent_reply", extra,
		    r->error, sizeof(r->error)) < 0)
			goto out;
	}
	/* Answered once the message is stored: the answer threads to it. */
	if ((r->created || (m->truncated && !m->auto_submitted)) &&
	    answer_sender(st, e, now, &t, m, r->created ? "ack" : NULL,
	    r) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && r->error[0] == '\0') {
		snprintf(r->error, sizeof(r->error), "%s", store_error(st));
		r->temporary = store_error_is_full(st);
	}
	if (rc < 0)
		r->failed = 1;
	ticket_release(&t);
	return rc;
}

struct item {
	struct inbound_msg *msg;	/* or NULL: a checkpoint */
	char *ck_source, *ck_value;
	ingest_done_cb *done;
	void *arg;
	struct ingest_result result;
};

struct ingest_batch {
	struct item *items;
	size_t n, cap;
};

struct ingest_batch *
ingest_batch_new(void)
{
	return calloc(1, sizeof(struct ingest_batch));
}

static void
clear(struct ingest_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		inbound_msg_free(&b->items[i].msg);
		free(b->items[i].ck_source);
		free(b->items[i].ck_value);
	}
	b->n = 0;
}

void
ingest_batch_free(struct ingest_batch **bp)
{
	struct ingest_batch *b = *bp;

	if (b == NULL)
		return;
	clear(b);
	free(b->items);
	free(b);
	*bp = NULL;
}

static int
grow(struct ingest_batch *b)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct item *items = realloc(b->items, cap * sizeof(*items));
		if (items == NULL)
			return -1;
		b->items = items;
		b->cap = cap;
	}
	return 0;
}

int
ingest_batch_add(struct ingest_batch *b, struct inbound_msg *m,
    ingest_done_cb *done, void *arg)
{
	if (grow(b) < 0)
		return -1;
	b->items[b->n++] = (struct item){ .msg = m, .done = done, .arg = arg };
	return 0;
}

int
ingest_batch_checkpoint(struct ingest_batch *b, const char *source,
    const char *value, ingest_done_cb *done, void *arg)
{
	struct item it = { .done = done, .arg = arg };

	if (grow(b) < 0 || (source != NULL &&
	    ((it.ck_source = strdup(source)) == NULL ||
	    (it.ck_value = strdup(value)) == NULL))) {
		free(it.ck_source);
		return -1;
	}
	b->items[b->n++] = it;
	return 0;
}

size_t
ingest_batch_len(const struct ingest_batch *b)
{
	return b->n;
}

static void
fail_all(struct ingest_batch *b, const char *why)
{
	for (size_t i = 0; i < b->n; i++) {
		struct ingest_result *r = &b->items[i].result;
		memset(r, 0, sizeof(*r));
		r->failed = 1;
		r->temporary = 1;
		snprintf(r->error, sizeof(r->error), "%s", why);
	}
}

/*
 * A checkpoint must not pass a message of its source that was not stored:
 * the source would never send it again. Then the checkpoint fails too
 * (r), and the source sends everything after the old one again.
 */
static int
source_failed(const struct ingest_batch *b, size_t upto, const char *source,
    struct ingest_result *r)
{
	for (size_t k = 0; source != NULL && k < upto; k++) {
		const struct item *it = &b->items[k];
		if (it->msg != NULL && it->result.failed &&
		    it->msg->source != NULL &&
		    strcmp(it->msg->source, source) == 0) {
			r->failed = 1;
			snprintf(r->error, sizeof(r->error), "a message before "
			    "this checkpoint was not stored: %.140s",
			    it->result.error);
			return 1;
		}
	}
	return 0;
}

int
ingest_batch_commit(struct ingest_batch *b, struct store *st,
    const struct env *e, int64_t now)
{
	int rc = 0;

	if (b->n == 0)
		return 0;
	if (store_begin(st) < 0)
		goto fail;
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		if (it->msg == NULL) {
			if (source_failed(b, i, it->ck_source, &it->result))
				continue;	/* refetched from the old one */
			if (it->ck_source != NULL &&
			    store_checkpoint_set(st, it->ck_source,
			    it->ck_value, now) < 0)
				goto fail;
			continue;
		}
		if (store_savepoint(st) < 0)
			goto fail;
		if (ingest_message(st, e, now, it->msg, &it->result) < 0) {
			log_warn("message not stored", "source=%s key=%s "
			    "error=%s", log_q(it->msg->source),
			    log_q(it->msg->dedupe_key),
			    log_q(it->result.error));
			if (store_rollback_to(st) < 0)
				goto fail;
		} else if (store_release(st) < 0) {
			goto fail;
		}
	}
	if (store_commit(st) < 0)
		goto fail;
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		if (it->msg != NULL && it->result.created)
			log_info("ticket created", "ticket=%lld channel=%s "
			    "source=%s queue=%s", (long long)it->result.ticket_id,
			    channel_name(it->msg->channel),
			    log_q(it->msg->source), log_q(it->msg->queue));
	}
	goto done;
fail:
	log_error("batch not committed", "items=%zu error=%s", b->n,
	    log_q(store_error(st)));
	store_rollback(st);
	fail_all(b, "store unavailable");
	rc = -1;
done:
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].done != NULL)
			b->items[i].done(&b->items[i].result, b->items[i].arg);
	clear(b);
	return rc;
}
