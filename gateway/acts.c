/*
 * acts: agent acts on a ticket. See acts.h.
 *
 * Every act: the ticket must exist; `new` becomes `open` (the first agent
 * act, SPEC.md "Ticket"); the change and its events commit together.
 */
#include "acts.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "outbound.h"
#include "scheduler.h"

typedef int act_fn(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r);

static int
result(struct act_result *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
result(struct act_result *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	r->code = code;
	return code == ACT_OK ? 0 : -1;
}

static int
set_state(struct store *st, struct ticket *t, int64_t now,
    enum ticket_state to, const char *actor)
{
	enum ticket_state from = t->state;

	if (from == to)
		return 0;
	t->state = to;
	return store_event_add(st, t->id, now, "state_changed", actor,
	    json_pack("{s:s, s:s}", "from", ticket_state_name(from), "to",
	    ticket_state_name(to)));
}

static int
add_message(struct store *st, struct ticket *t, int64_t now,
    const struct act *a, const char *direction, const char *author,
    const char *text)
{
	struct message m = {
		.ticket_id = t->id,
		.direction = direction,
		.channel = t->channel,
		.author = author,
		.body = text,
		.message_id = a->message_id,
		.dedupe_scope = a->dedupe_key != NULL ? a->dedupe_scope : NULL,
		.dedupe_key = a->dedupe_key,
		.at = now,
	};

	return store_message_insert(st, &m, NULL);
}

static int
need_text(const struct act *a, struct act_result *r, const char *what)
{
	if (a->text == NULL || a->text[0] == '\0')
		return result(r, ACT_BAD_INPUT, "%s: %s is empty", a->verb,
		    what);
	return 0;
}

static int
do_reply(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	if (need_text(a, r, "the reply") < 0)
		return -1;
	if (t->state == TICKET_CLOSED)
		return result(r, ACT_BAD_INPUT, "ESC-%lld is closed",
		    (long long)t->id);
	if (t->state == TICKET_NEW && set_state(st, t, now, TICKET_OPEN,
	    author) < 0)
		return -1;
	if (t->first_response_at == 0)
		t->first_response_at = now;
	/* A public reply answers whatever the customer was waiting on. */
	t->awaiting_since = 0;
	t->last_public_at = now;
	if (add_message(st, t, now, a, "out", author, a->text) < 0 ||
	    store_event_add(st, t->id, now, "replied", author,
	    json_pack("{s:s}", "author", author)) < 0 ||
	    outbound_reply(st, e, now, t, a->text, r->message,
	    sizeof(r->message)) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: reply recorded", (long long)t->id);
}

static int
do_note(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	(void)e;
	if (need_text(a, r, "the note") < 0)
		return -1;
	if (t->state == TICKET_NEW && set_state(st, t, now, TICKET_OPEN,
	    author) < 0)
		return -1;
	if (add_message(st, t, now, a, "note", author, a->text) < 0 ||
	    store_event_add(st, t->id, now, "note", author,
	    json_pack("{s:s}", "author", author)) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: note added", (long long)t->id);
}

static int
root_cause(struct store *st, struct ticket *t, int64_t now,
    const char *author, const char *cause)
{
	free(t->root_cause);
	t->root_cause = strdup(cause);
	return store_event_add(st, t->id, now, "root_cause", author,
	    json_pack("{s:s}", "cause", cause));
}

/*
 * The customer hears that the ticket is resolved, with a one-tap survey
 * (GET /csat/TOKEN?score=1..5) whose token is stored for the rating.
 */
static int
tell_resolved(struct store *st, const struct env *e, int64_t now,
    const struct ticket *t, const char *resolution, struct act_result *r)
{
	unsigned char raw[16];
	char token[2 * sizeof(raw) + 1], url[1024];

	if (!outbound_reachable(t))
		return 0;	/* no way to write to the customer */
	if (crypto_random(raw, sizeof(raw)) < 0)
		return -1;
	crypto_hex(raw, sizeof(raw), token);
	snprintf(url, sizeof(url), "%s/csat/%s", e->conf->base_url, token);
	const char *extra[] = { "csat.url", url, "message.body", resolution,
	    NULL };
	if (store_csat_create(st, t->id, token, now) < 0 ||
	    outbound_template(st, e, now, t, "resolved", extra,
	    r->message, sizeof(r->message)) < 0)
		return -1;
	/* Mail customers also get the survey on its own, to answer with a
	 * number (the resolved mail carries the links too). */
	if (strcmp(t->channel, "email") == 0 &&
	    outbound_template(st, e, now, t, "csat", extra, r->message,
	    sizeof(r->message)) < 0)
		return -1;
	return 0;
}

static int
do_resolve(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	if (t->state == TICKET_RESOLVED || t->state == TICKET_CLOSED)
		return result(r, ACT_BAD_INPUT, "ESC-%lld is already %s",
		    (long long)t->id, ticket_state_name(t->state));
	if (a->text != NULL && a->text[0] != '\0' &&
	    root_cause(st, t, now, author, a->text) < 0)
		return -1;
	t->resolved_at = now;
	if (set_state(st, t, now, TICKET_RESOLVED, author) < 0 ||
	    tell_resolved(st, e, now, t, a->resolution, r) < 0 ||
	    outbound_notify(st, e->conf, now, t, "ticket.resolved",
	    json_pack("{s:s?, s:s}", "cause", t->root_cause, "by", author),
	    r->message, sizeof(r->message)) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: resolved", (long long)t->id);
}

static int
do_pending(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	(void)e;
	(void)a;
	if (t->state == TICKET_PENDING)
		return result(r, ACT_BAD_INPUT, "ESC-%lld is already pending",
		    (long long)t->id);
	if (t->state == TICKET_RESOLVED || t->state == TICKET_CLOSED)
		return result(r, ACT_BAD_INPUT, "ESC-%lld is %s: a customer "
		    "message reopens it", (long long)t->id,
		    ticket_state_name(t->state));
	if (set_state(st, t, now, TICKET_PENDING, author) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: pending", (long long)t->id);
}

static int
do_severity(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	const struct conf_severity *cs;
	const struct conf_queue *q;

	if (a->text == NULL || !ticket_severity_valid(a->text))
		return result(r, ACT_BAD_INPUT, "severity \"%s\": must be "
		    "low, normal, high or critical", a->text ? a->text : "");
	if (strcmp(t->severity, a->text) == 0)
		return result(r, ACT_OK, "ESC-%lld: severity is already %s",
		    (long long)t->id, a->text);
	if (store_event_add(st, t->id, now, "severity_changed", author,
	    json_pack("{s:s, s:s}", "from", t->severity, "to", a->text)) < 0)
		return -1;
	free(t->severity);
	t->severity = strdup(a->text);
	/* The ticket moves to that severity's SLA (or its queue's). */
	cs = conf_severity(e->conf, a->text);
	q = conf_queue(e->conf, t->queue);
	const char *sla = cs != NULL && cs->sla != NULL ? cs->sla :
	    q != NULL ? q->sla : t->sla;
	if (sla != NULL && (t->sla == NULL || strcmp(sla, t->sla) != 0)) {
		free(t->sla);
		t->sla = strdup(sla);
	}
	if (t->state == TICKET_NEW && set_state(st, t, now, TICKET_OPEN,
	    author) < 0)
		return -1;
	if (sched_start_level(st, e, t, now, 0, r->message,
	    sizeof(r->message)) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: severity %s", (long long)t->id,
	    a->text);
}

static int
do_assign(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	const struct conf_agent *ag = a->text ? conf_agent(e->conf, a->text) :
	    NULL;

	if (ag == NULL)
		return result(r, ACT_BAD_INPUT, "agent \"%s\" is not "
		    "configured", a->text ? a->text : "");
	if (store_event_add(st, t->id, now, "assigned", author,
	    json_pack("{s:s?, s:s}", "from", t->assignee, "to", ag->name)) < 0)
		return -1;
	free(t->assignee);
	t->assignee = strdup(ag->name);
	if (t->state == TICKET_NEW && set_state(st, t, now, TICKET_OPEN,
	    author) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: assigned to %s", (long long)t->id,
	    ag->name);
}

static int
do_rootcause(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	(void)e;
	if (need_text(a, r, "the root cause") < 0)
		return -1;
	if (root_cause(st, t, now, author, a->text) < 0)
		return -1;
	if (t->state == TICKET_NEW && set_state(st, t, now, TICKET_OPEN,
	    author) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: root cause recorded",
	    (long long)t->id);
}

static int
do_escalate(struct store *st, const struct env *e, int64_t now,
    const struct act *a, const char *author, struct ticket *t,
    struct act_result *r)
{
	const struct ladder *l = env_ladder(e, t->ladder);
	char why[256];

	if (t->state == TICKET_RESOLVED || t->state == TICKET_CLOSED)
		return result(r, ACT_BAD_INPUT, "ESC-%lld is %s",
		    (long long)t->id, ticket_state_name(t->state));
	if (l == NULL || (size_t)t->level >= l->n)
		return result(r, ACT_BAD_INPUT, "ESC-%lld is already at the "
		    "top of its ladder (level %d)", (long long)t->id,
		    t->level);
	snprintf(why, sizeof(why), "%s", a->text != NULL && a->text[0] ?
	    a->text : "asked by an agent");
	if (t->state == TICKET_NEW && set_state(st, t, now, TICKET_OPEN,
	    author) < 0)
		return -1;
	if (sched_escalate(st, e, t, t->level + 1, why, author, 0, now,
	    r->message, sizeof(r->message)) < 0)
		return -1;
	return result(r, ACT_OK, "ESC-%lld: escalated to level %d (%s)",
	    (long long)t->id, t->level, t->team);
}

static const struct {
	const char *verb;
	act_fn *fn;
} table[] = {
	{ "escalate", do_escalate },
	{ "reply", do_reply },
	{ "note", do_note },
	{ "resolve", do_resolve },
	{ "pending", do_pending },
	{ "severity", do_severity },
	{ "assign", do_assign },
	{ "rootcause", do_rootcause },
};

int
acts_known(const char *verb)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(verb, table[i].verb) == 0)
			return 1;
	return 0;
}

/* The act on a loaded ticket, inside the caller's transaction. */
static int
run_on(struct store *st, const struct env *e, int64_t now,
    const struct act *a, act_fn *fn, const char *author, struct ticket *t,
    struct act_result *r)
{
	/* What fell due while nobody was watching (no gateway running, or
	 * the scheduler's next wake-up) is recorded before the act. */
	if (t->next_due_at != 0 && t->next_due_at <= now &&
	    sched_fire(st, e, t, now, r->message, sizeof(r->message)) < 0)
		return -1;
	if (fn(st, e, now, a, author, t, r) < 0)
		return -1;
	t->updated_at = now;
	if (sched_plan(st, e, t, now) < 0 || store_ticket_update(st, t) < 0)
		return -1;
	log_info("ticket act", "ticket=%lld act=%s by=%s", (long long)t->id,
	    a->verb, log_q(author));
	return 0;
}

/* The act's function and author; 0, or -1 with r set (bad input). */
static int
prepare(const struct env *e, const struct act *a, act_fn **fn_r,
    const char **author_r, struct act_result *r)
{
	*fn_r = NULL;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(a->verb, table[i].verb) == 0)
			*fn_r = table[i].fn;
	if (*fn_r == NULL)
		return result(r, ACT_BAD_INPUT, "unknown act \"%s\"", a->verb);
	if (a->agent != NULL) {
		const struct conf_agent *ag = conf_agent(e->conf, a->agent);
		if (ag == NULL)
			return result(r, ACT_BAD_INPUT, "agent \"%s\" is not "
			    "configured", a->agent);
		*author_r = ag->display_name != NULL ? ag->display_name :
		    ag->name;
	} else {
		*author_r = a->user != NULL && a->user[0] != '\0' ? a->user :
		    "operator";
	}
	return 0;
}

int
acts_run_in(struct store *st, const struct env *e, int64_t now,
    const struct act *a, struct act_result *r)
{
	act_fn *fn;
	const char *author = NULL;
	struct ticket t = { 0 };
	int found;

	memset(r, 0, sizeof(*r));
	if (prepare(e, a, &fn, &author, r) < 0)
		return r->code;
	found = store_ticket_get(st, a->ticket_id, &t);
	if (found == 0)
		result(r, ACT_BAD_INPUT, "ticket ESC-%lld does not exist",
		    (long long)a->ticket_id);
	else if (found < 0 || (run_on(st, e, now, a, fn, author, &t, r) < 0 &&
	    r->code == ACT_OK))
		result(r, ACT_FAILED, "%s", store_error(st));
	ticket_release(&t);
	return r->code;
}

int
acts_run(struct store *st, const struct env *e, int64_t now,
    const struct act *a, struct act_result *r)
{
	memset(r, 0, sizeof(*r));
	if (store_begin(st) < 0) {
		result(r, ACT_FAILED, "%s", store_error(st));
		return r->code;
	}
	if (acts_run_in(st, e, now, a, r) != ACT_OK) {
		store_rollback(st);
		return r->code;
	}
	if (store_commit(st) < 0) {
		result(r, ACT_FAILED, "%s", store_error(st));
		store_rollback(st);
	}
	return r->code;
}
