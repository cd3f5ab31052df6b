/* agentmail: mail from agents. See agentmail.h. */
#include "agentmail.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acts.h"
#include "log.h"
#include "mail.h"
#include "outbound.h"
#include "reply.h"

/* --- the token --------------------------------------------------------- */

struct row_check {
	const char *agent_email;
	int ok;
};

static int
is_notification(const struct outbox_row *row, void *arg)
{
	struct row_check *rc = arg;

	rc->ok = row->template != NULL && row->recipient != NULL &&
	    (strncmp(row->template, "agent_", 6) == 0 ||
	    strcmp(row->template, "sla_warning") == 0) &&
	    strcasecmp(row->recipient, rc->agent_email) == 0;
	return 0;
}

/* Our signed Message-ID on a notification that went to this agent. */
static int
notification_ticket(struct store *st, const struct env *e, const char *id,
    const struct conf_agent *ag, int64_t *ticket_r)
{
	int64_t row, ticket;
	struct row_check check = { ag->email, 0 };
	int rc = mail_message_id_ticket(id, e->secret, ticket_r);

	if (rc <= 0)
		return rc;
	/* Customer-facing mail is signed the same way: it must not count. */
	if ((rc = store_outbox_by_identity(st, id, &row, &ticket)) <= 0)
		return rc;
	if (store_outbox_get(st, row, is_notification, &check) < 0)
		return -1;
	return check.ok && ticket == *ticket_r ? 1 : 0;
}

/*
 * The ticket the mail's token names: 1 and *ticket_r, -1 when it carries
 * a token that is not valid, 0 when it carries none.
 */
static int
token_ticket(struct store *st, const struct env *e,
    const struct inbound_msg *m, const struct conf_agent *ag,
    int64_t *ticket_r)
{
	const struct conf *c = e->conf;
	int forged = 0, rc;

	for (size_t i = 0; i < m->n_recipients; i++) {
		for (size_t k = 0; k <= c->n_mailboxes; k++) {
			const char *ours = k < c->n_mailboxes ?
			    c->mailboxes[k].address : c->smtp.from;
			rc = mail_reply_address_ticket(m->recipients[i], ours,
			    e->secret, ticket_r);
			if (rc == 1)
				return 1;
			forged |= rc < 0;
		}
	}
	for (size_t i = 0; i <= m->n_references; i++) {
		const char *id = i < m->n_references ? m->references[i] :
		    m->in_reply_to;
		if (id == NULL)
			continue;
		rc = notification_ticket(st, e, id, ag, ticket_r);
		if (rc == 1)
			return 1;
		forged |= rc < 0;
	}
	return forged ? -1 : 0;
}

/* The ticket a refused mail is about, as far as it says: 0 if none. */
static int64_t
ticket_named(struct store *st, const struct inbound_msg *m)
{
	int64_t id = ticket_subject_tag(m->subject);

	if (id == 0 && m->in_reply_to != NULL &&
	    store_thread_find(st, "mail", m->in_reply_to, &id) != 1)
		id = 0;
	return id;
}

/* --- recording ------------------------------------------------------------ */

/* The agent's mail on the ticket, as an internal note: once (deduped). */
static int
record_note(struct store *st, const struct ticket *t, int64_t now,
    const struct conf_agent *ag, const struct inbound_msg *m,
    const char *text)
{
	struct message msg = {
		.ticket_id = t->id, .direction = "note", .channel = "email",
		.author = ag->display_name != NULL ? ag->display_name :
		    ag->name,
		.subject = m->subject, .body = text,
		.message_id = m->message_id,
		.dedupe_scope = m->dedupe_key != NULL ? m->dedupe_scope : NULL,
		.dedupe_key = m->dedupe_key, .at = now,
		.raw = m->raw, .raw_len = m->raw_len,
	};

	return store_message_insert(st, &msg, NULL);
}

/* Not relayed: an event on the ticket it names, and a word to the agent. */
static int
refuse(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, const struct conf_agent *ag, int64_t id,
    const char *reason, struct ingest_result *r)
{
	struct ticket t = { 0 };
	int found = id > 0 ? store_ticket_get(st, id, &t) : 0;
	const char *extra[] = { "message.subject", m->subject != NULL ?
	    m->subject : "(no subject)", "reason", reason, NULL };
	char *note = NULL;
	int rc = -1;

	log_warn("agent mail not relayed", "agent=%s ticket=%lld reason=%s",
	    log_q(ag->name), (long long)(found == 1 ? id : 0), log_q(reason));
	if (found < 0)
		goto out;
	if (found == 1) {
		if (asprintf(&note, "Not relayed (%s):\n\n%s", reason,
		    m->body != NULL ? m->body : "") < 0) {
			note = NULL;
			goto out;
		}
		if (store_event_add(st, t.id, now, "agent_refused", ag->name,
		    json_pack("{s:s, s:s, s:s?}", "agent", ag->name, "reason",
		    reason, "message_id", m->message_id)) < 0 ||
		    record_note(st, &t, now, ag, m, note) < 0)
			goto out;
		r->ticket_id = t.id;
	}
	rc = outbound_agent(st, e, now, found == 1 ? &t : NULL, ag,
	    "agent_refused", extra, r->error, sizeof(r->error));
out:
	free(note);
	ticket_release(&t);
	return rc;
}

/* A command that cannot be carried out: nothing acts, the agent hears. */
static int
command_failed(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, const struct conf_agent *ag,
    struct ticket *t, const char *error, struct ingest_result *r)
{
	const char *extra[] = { "message.subject", m->subject != NULL ?
	    m->subject : "(no subject)", "error", error, NULL };
	char *note;
	int rc;

	if (asprintf(&note, "Not carried out (%s):\n\n%s", error,
	    m->body != NULL ? m->body : "") < 0)
		return -1;
	rc = store_event_add(st, t->id, now, "agent_command_failed", ag->name,
	    json_pack("{s:s, s:s}", "agent", ag->name, "error", error)) < 0 ||
	    record_note(st, t, now, ag, m, note) < 0 ||
	    outbound_agent(st, e, now, t, ag, "agent_error", extra, r->error,
	    sizeof(r->error)) < 0 ? -1 : 0;
	free(note);
	return rc;
}

/* --- acting ----------------------------------------------------------------- */

static const char *const act_verbs[] = {
	[REPLY_NOTE] = "note", [REPLY_RESOLVE] = "resolve",
	[REPLY_PENDING] = "pending", [REPLY_ESCALATE] = "escalate",
	[REPLY_SEVERITY] = "severity", [REPLY_ASSIGN] = "assign",
	[REPLY_ROOTCAUSE] = "rootcause",
};

static const struct reply_command *
find_command(const struct parsed_reply *p, enum reply_verb v)
{
	for (size_t i = 0; i < p->n_commands; i++)
		if (p->commands[i].verb == v)
			return &p->commands[i];
	return NULL;
}

static char *
summary(const struct parsed_reply *p)
{
	size_t len = strlen(p->text) + 3;
	char *s, *w;

	for (size_t i = 0; i < p->n_commands; i++)
		len += strlen(p->commands[i].arg) + 16;
	if ((s = w = malloc(len)) == NULL)
		return NULL;
	for (size_t i = 0; i < p->n_commands; i++)
		w += sprintf(w, "#%s%s%s\n", reply_verb_name(
		    p->commands[i].verb), p->commands[i].arg[0] ? " " : "",
		    p->commands[i].arg);
	sprintf(w, "%s%s", p->text[0] && p->n_commands ? "\n" : "", p->text);
	return s;
}

/*
 * The mail's text and commands, in order: the text first (a reply, or
 * the note), then each command; #resolve carries the text as its
 * resolution message. The mail itself is recorded by the first act that
 * stores a message, else as a note. 0, or -1 with r (the act's answer).
 */
static int
carry_out(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, const struct conf_agent *ag,
    const struct ticket *t, const struct parsed_reply *p,
    struct act_result *r)
{
	const struct reply_command *note = find_command(p, REPLY_NOTE);
	const struct reply_command *resolve = find_command(p, REPLY_RESOLVE);
	struct act base = {
		.ticket_id = t->id, .agent = ag->name,
		.message_id = m->message_id, .dedupe_scope = m->dedupe_scope,
		.dedupe_key = m->dedupe_key,
	};
	struct act a;
	int recorded = 0;

	if (p->text[0] != '\0' && (note != NULL || resolve == NULL)) {
		a = base;
		a.verb = note != NULL ? "note" : "reply";
		a.text = p->text;
		if (acts_run_in(st, e, now, &a, r) != ACT_OK)
			return -1;
		recorded = 1;
	}
	for (size_t i = 0; i < p->n_commands; i++) {
		const struct reply_command *c = &p->commands[i];
		if (c->verb == REPLY_NOTE)
			continue;
		a = base;
		a.message_id = a.dedupe_scope = a.dedupe_key = NULL;
		a.verb = act_verbs[c->verb];
		a.text = c->arg[0] != '\0' ? c->arg : NULL;
		if (c->verb == REPLY_RESOLVE && note == NULL &&
		    p->text[0] != '\0')
			a.resolution = p->text;
		if (acts_run_in(st, e, now, &a, r) != ACT_OK)
			return -1;
	}
	if (!recorded) {
		/* Commands only, or a resolution: the mail as the agent
		 * meant it (commands, then text), kept as a note. */
		char *what = summary(p);
		int rc = what != NULL && record_note(st, t, now, ag, m,
		    what) == 0 ? 0 : -1;
		free(what);
		if (rc < 0) {
			r->code = ACT_FAILED;
			snprintf(r->message, sizeof(r->message), "%s",
			    store_error(st));
			return -1;
		}
	}
	return 0;
}

static int
handle_valid(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, const struct conf_agent *ag,
    struct ticket *t, struct ingest_result *r)
{
	struct parsed_reply p;
	struct act_result ar = { 0 };
	char error[400];
	int rc = -1;

	if (reply_parse(m->body != NULL ? m->body : m->html_text != NULL ?
	    m->html_text : "", &p) < 0) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	r->ticket_id = t->id;
	if (p.bad != NULL) {
		snprintf(error, sizeof(error), "unknown command \"%s\"", p.bad);
		rc = command_failed(st, e, now, m, ag, t, error, r);
		goto out;
	}
	if (p.n_commands == 0 && p.text[0] == '\0') {
		rc = command_failed(st, e, now, m, ag, t, "the reply is empty "
		    "once the quote and signature are left out", r);
		goto out;
	}
	/* All or nothing: a failing command undoes the ones before it. */
	if (store_savepoint(st) < 0)
		goto store_error;
	if (carry_out(st, e, now, m, ag, t, &p, &ar) == 0) {
		if (store_release(st) < 0)
			goto store_error;
		log_info("agent mail carried out", "agent=%s ticket=%lld "
		    "commands=%zu relayed=%d", log_q(ag->name),
		    (long long)t->id, p.n_commands, p.text[0] != '\0' &&
		    find_command(&p, REPLY_NOTE) == NULL &&
		    find_command(&p, REPLY_RESOLVE) == NULL);
		rc = 0;
		goto out;
	}
	if (ar.code == ACT_FAILED) {
		snprintf(r->error, sizeof(r->error), "%.190s", ar.message);
		goto out;	/* the store: the batch retries */
	}
	if (store_rollback_to(st) < 0 || store_release(st) < 0)
		goto store_error;
	rc = command_failed(st, e, now, m, ag, t, ar.message, r);
	goto out;
store_error:
	snprintf(r->error, sizeof(r->error), "%s", store_error(st));
out:
	parsed_reply_release(&p);
	return rc;
}

int
agentmail_handle(struct store *st, const struct env *e, int64_t now,
    const struct inbound_msg *m, struct ingest_result *r)
{
	const struct conf_agent *ag = m->channel == CHANNEL_EMAIL ?
	    conf_agent_by_email(e->conf, m->from_address) : NULL;
	struct ticket t = { 0 };
	int64_t id = 0;
	int rc, found;

	if (ag == NULL || e->secret == NULL)
		return 0;
	rc = token_ticket(st, e, m, ag, &id);
	if (rc == 0)
		return refuse(st, e, now, m, ag, ticket_named(st, m),
		    "the mail carries no reply token", r) < 0 ? -1 : 1;
	if (rc < 0)
		return refuse(st, e, now, m, ag, ticket_named(st, m),
		    "its reply token is not valid for the ticket", r) < 0 ?
		    -1 : 1;
	found = store_ticket_get(st, id, &t);
	if (found == 1)
		rc = handle_valid(st, e, now, m, ag, &t, r) < 0 ? -1 : 1;
	else
		rc = found < 0 ? -1 : refuse(st, e, now, m, ag, 0,
		    "the ticket it names does not exist", r) < 0 ? -1 : 1;
	ticket_release(&t);
	return rc;
}
