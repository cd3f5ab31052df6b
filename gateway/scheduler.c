/* scheduler: SLA clocks and ladder steps on tickets. See scheduler.h. */
#include "scheduler.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "clock.h"
#include "ladder.h"
#include "log.h"
#include "outbound.h"
#include "sla.h"

#define SCHED_MAX_PAUSES 256

struct pauses {
	struct sla_pause v[SCHED_MAX_PAUSES];
	size_t n;
	int64_t since;
};

/* Rebuild the pending stretches from the ticket's state_changed events. */
static int
pause_event(const struct event *ev, void *arg)
{
	struct pauses *p = arg;
	json_error_t jerr;
	json_t *d;
	const char *from, *to;

	if (strcmp(ev->type, "state_changed") != 0 || ev->at < p->since)
		return 0;
	if ((d = json_loads(ev->detail, 0, &jerr)) == NULL)
		return 0;
	from = json_string_value(json_object_get(d, "from"));
	to = json_string_value(json_object_get(d, "to"));
	if (to != NULL && strcmp(to, "pending") == 0 &&
	    (p->n == 0 || p->v[p->n - 1].to != 0) &&
	    p->n < SCHED_MAX_PAUSES)
		p->v[p->n++] = (struct sla_pause){ ev->at, 0 };
	else if (from != NULL && strcmp(from, "pending") == 0 && p->n > 0 &&
	    p->v[p->n - 1].to == 0)
		p->v[p->n - 1].to = ev->at;
	json_decref(d);
	return 0;
}

/* The facts of t's clocks; p holds its pauses (load_pauses). */
static void
facts_from(const struct ticket *t, const struct pauses *p,
    struct sla_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->created_at = t->created_at;
	f->first_response_at = t->first_response_at;
	f->awaiting_since = t->awaiting_since;
	f->resolution_start = t->resolution_start != 0 ? t->resolution_start :
	    t->created_at;
	f->resolved_at = t->state == TICKET_RESOLVED ||
	    t->state == TICKET_CLOSED ? (t->resolved_at != 0 ? t->resolved_at :
	    t->updated_at) : 0;
	f->warned = t->sla_warned;
	f->breached = t->sla_breached;
	f->pauses = p->v;
	f->n_pauses = p->n;
}

/* The pending stretches of t's current resolution cycle, from its events. */
static int
load_pauses(struct store *st, const struct ticket *t, struct pauses *p)
{
	p->n = 0;
	p->since = t->resolution_start != 0 ? t->resolution_start :
	    t->created_at;
	if (t->id > 0 && store_event_list(st, t->id, pause_event, p) < 0)
		return -1;
	return 0;
}

static int
facts_of(struct store *st, const struct ticket *t, struct pauses *p,
    struct sla_facts *f)
{
	if (load_pauses(st, t, p) < 0)
		return -1;
	facts_from(t, p, f);
	return 0;
}

int
sched_clocks(struct store *st, const struct env *e, const struct ticket *t,
    int64_t now, struct sla_clock_state *states)
{
	struct sla_policy pol;
	struct sla_facts f;
	struct pauses p;

	memset(states, 0, SLA_N_CLOCKS * sizeof(*states));
	if (env_sla(e, t->sla, &pol, NULL) < 0)
		return 1;
	if (facts_of(st, t, &p, &f) < 0)
		return -1;
	sla_evaluate(&pol, &f, now, states);
	return 0;
}

static int
active(const struct ticket *t)
{
	return t->state == TICKET_NEW || t->state == TICKET_OPEN;
}

/*
 * When time moves t up its ladder, or 0. Time at a level counts like the
 * resolution clock: open time, not while pending (a ticket waiting on its
 * customer does not climb).
 */
static int64_t
ladder_due(const struct ladder *l, const struct sla_policy *pol,
    const struct ticket *t, const struct sla_facts *f, int64_t now)
{
	int64_t since = t->level_since != 0 ? t->level_since : t->created_at;
	int64_t paused = 0;

	if (l == NULL || !active(t))
		return 0;
	for (size_t i = 0; i < f->n_pauses; i++) {
		int64_t from = f->pauses[i].from > since ? f->pauses[i].from :
		    since;
		int64_t to = f->pauses[i].to != 0 ? f->pauses[i].to : now;
		if (to > from)
			paused += calendar_between(pol->calendar, from, to);
	}
	int64_t at = ladder_next_step(l, pol->calendar, t->level, since);
	return at > 0 && paused > 0 ? calendar_add(pol->calendar, at, paused) :
	    at;
}

/*
 * When the next `update` to an escalated ticket's customer is due, or 0:
 * customer_update after the last public word to them, the step up, or the
 * end of the last pending stretch (while pending, the customer owes us).
 */
static int64_t
update_due(const struct ticket *t, const struct sla_policy *pol,
    int64_t customer_update, const struct sla_facts *f)
{
	int64_t anchor = t->level_since;

	if (t->level < 2 || !active(t) || customer_update <= 0 ||
	    !outbound_reachable(t))
		return 0;
	if (t->last_public_at > anchor)
		anchor = t->last_public_at;
	if (t->last_update_at > anchor)
		anchor = t->last_update_at;
	if (f->n_pauses > 0 && f->pauses[f->n_pauses - 1].to > anchor)
		anchor = f->pauses[f->n_pauses - 1].to;
	return calendar_add(pol->calendar, anchor, customer_update);
}

/*
 * A breach that steps the ticket up while it cannot move (pending) is
 * owed: SCHED_OWED(clock) in sla_breached, paid when it is active again.
 */
#define SCHED_OWED(clock) (SLA_BIT(clock) << 8)
#define SCHED_OWED_ANY (SCHED_OWED(0) | SCHED_OWED(1) | SCHED_OWED(2))

static void
earliest(int64_t *next, int64_t at)
{
	if (at > 0 && (*next == 0 || at < *next))
		*next = at;
}

/* sched_plan with t's pauses already loaded (p). */
static void
plan(const struct env *e, struct ticket *t, int64_t now,
    const struct pauses *p)
{
	struct sla_clock_state s[SLA_N_CLOCKS];
	struct sla_policy pol;
	struct sla_facts f;
	int64_t cu = 0, next = 0;
	const struct ladder *l = env_ladder(e, t->ladder);

	t->due_first_response = t->due_next_update = t->due_resolution = 0;
	t->next_due_at = 0;
	if (env_sla(e, t->sla, &pol, &cu) < 0)
		return;		/* no SLA: nothing ever due */
	facts_from(t, p, &f);
	sla_evaluate(&pol, &f, now, s);
	if (s[SLA_FIRST_RESPONSE].status == SLA_RUNNING)
		t->due_first_response = s[SLA_FIRST_RESPONSE].due_at;
	if (s[SLA_NEXT_UPDATE].status == SLA_RUNNING)
		t->due_next_update = s[SLA_NEXT_UPDATE].due_at;
	if (s[SLA_RESOLUTION].status == SLA_RUNNING)
		t->due_resolution = s[SLA_RESOLUTION].due_at;
	if (t->state == TICKET_RESOLVED || t->state == TICKET_CLOSED) {
		/* A step owed from before is void once resolved. */
		t->sla_breached &= ~SCHED_OWED_ANY;
		t->due_first_response = t->due_next_update = 0;
		return;
	}
	next = sla_next_due(s, &f);
	earliest(&next, ladder_due(l, &pol, t, &f, now));
	earliest(&next, update_due(t, &pol, cu, &f));
	if ((t->sla_breached & SCHED_OWED_ANY) && active(t))
		earliest(&next, now);
	t->next_due_at = next;
}

int
sched_plan(struct store *st, const struct env *e, struct ticket *t,
    int64_t now)
{
	struct pauses p;

	if (load_pauses(st, t, &p) < 0)
		return -1;
	plan(e, t, now, &p);
	return 0;
}

int
sched_escalate(struct store *st, const struct env *e, struct ticket *t,
    int to, const char *why, const char *actor, int quiet,
    int64_t now, char *error, size_t error_len)
{
	const char *team = env_level_team(e, t->ladder, to);
	char from_s[16], to_s[16];
	int from = t->level;

	if (team == NULL || to <= from) {
		snprintf(error, error_len, "ESC-%lld cannot move from level %d "
		    "to %d on ladder \"%s\"", (long long)t->id, from, to,
		    t->ladder ? t->ladder : "");
		return -1;
	}
	t->level = to;
	t->level_since = now;
	free(t->team);
	t->team = strdup(team);
	snprintf(from_s, sizeof(from_s), "%d", from);
	snprintf(to_s, sizeof(to_s), "%d", to);
	const char *extra[] = { "escalation.from", from_s, "escalation.to",
	    to_s, "escalation.why", why, NULL };
	if (store_event_add(st, t->id, now, "escalated", actor,
	    json_pack("{s:i, s:i, s:s, s:s}", "from", from, "to", to, "why",
	    why, "team", team)) < 0) {
		snprintf(error, error_len, "%s", store_error(st));
		return -1;
	}
	log_info("ticket escalated", "ticket=%lld from=%d to=%d why=%s",
	    (long long)t->id, from, to, log_q(why));
	if (quiet)
		return 0;
	if (outbound_notify(st, e->conf, now, t, "ticket.escalated",
	    json_pack("{s:i, s:i, s:s}", "from", from, "to", to, "why", why),
	    error, error_len) < 0 ||
	    outbound_template(st, e, now, t, "escalated", extra,
	    error, error_len) < 0)
		return -1;
	/* The new team hears of it by mail. */
	if (outbound_team(st, e, now, t, "agent_escalated", extra, error,
	    error_len) < 0)
		return -1;
	return 0;
}

static int
sla_event(struct store *st, const struct env *e, struct ticket *t,
    int64_t now, const char *type, const char *notify_event, int clock,
    int64_t due, char *error, size_t error_len)
{
	char when[CLOCK_RFC3339_LEN];

	clock_format(due, when);
	if (store_event_add(st, t->id, now, type, "escalon",
	    json_pack("{s:s, s:s}", "clock", sla_clock_name(clock), "due",
	    when)) < 0) {
		snprintf(error, error_len, "%s", store_error(st));
		return -1;
	}
	log_info(type, "ticket=%lld clock=%s due=%s", (long long)t->id,
	    sla_clock_name(clock), when);
	/* At the warning, the team is told while there is time to act. */
	const char *extra[] = { "sla.clock", sla_clock_name(clock), "sla.due",
	    when, NULL };
	if (strcmp(type, "sla_warning") == 0 && outbound_team(st, e, now, t,
	    "sla_warning", extra, error, error_len) < 0)
		return -1;
	return outbound_notify(st, e->conf, now, t, notify_event,
	    json_pack("{s:s, s:s}", "clock", sla_clock_name(clock), "due",
	    when), error, error_len);
}

int
sched_fire(struct store *st, const struct env *e, struct ticket *t,
    int64_t now, char *error, size_t error_len)
{
	struct sla_clock_state s[SLA_N_CLOCKS];
	struct sla_policy pol;
	struct sla_facts f;
	struct pauses p;
	int64_t cu = 0, at;
	const struct ladder *l = env_ladder(e, t->ladder);
	int stepped = 0;

	if (env_sla(e, t->sla, &pol, &cu) < 0 ||
	    t->state == TICKET_RESOLVED || t->state == TICKET_CLOSED)
		return sched_plan(st, e, t, now);
	if (facts_of(st, t, &p, &f) < 0)
		goto store_failed;
	sla_evaluate(&pol, &f, now, s);
	for (int c = 0; c < SLA_N_CLOCKS; c++) {
		unsigned bit = SLA_BIT(c);
		if (s[c].status != SLA_RUNNING)
			continue;
		if (!(t->sla_warned & bit) && s[c].warn_at <= now) {
			t->sla_warned |= bit;
			if (sla_event(st, e, t, now, "sla_warning",
			    "sla.warning", c, s[c].due_at, error,
			    error_len) < 0)
				return -1;
		}
		if (!(t->sla_breached & bit) && s[c].due_at <= now) {
			t->sla_breached |= bit;
			if (sla_event(st, e, t, now, "sla_breached",
			    "sla.breached", c, s[c].due_at, error,
			    error_len) < 0)
				return -1;
			if (l != NULL && ladder_steps_on_breach(l, t->level,
			    bit) && (stepped || !active(t))) {
				t->sla_breached |= SCHED_OWED(c);
			} else if (l != NULL && ladder_steps_on_breach(l,
			    t->level, bit)) {
				char why[64];
				snprintf(why, sizeof(why), "%s breached",
				    sla_clock_name(c));
				if (sched_escalate(st, e, t, t->level + 1, why,
				    "escalon", 0, now, error, error_len) < 0)
					return -1;
				stepped = 1;
			}
		}
	}
	for (int c = 0; !stepped && active(t) && c < SLA_N_CLOCKS; c++) {
		if (!(t->sla_breached & SCHED_OWED(c)))
			continue;
		t->sla_breached &= ~SCHED_OWED(c);
		if (l == NULL || !ladder_steps_on_breach(l, t->level,
		    SLA_BIT(c)))
			continue;
		char why[64];
		snprintf(why, sizeof(why), "%s breached", sla_clock_name(c));
		if (sched_escalate(st, e, t, t->level + 1, why, "escalon", 0,
		    now, error, error_len) < 0)
			return -1;
		stepped = 1;
	}
	if (!stepped && (at = ladder_due(l, &pol, t, &f, now)) > 0 &&
	    at <= now) {
		char why[64];
		snprintf(why, sizeof(why), "time at level %d", t->level);
		if (sched_escalate(st, e, t, t->level + 1, why, "escalon", 0,
		    now, error, error_len) < 0)
			return -1;
	}
	at = update_due(t, &pol, cu, &f);
	if (at > 0 && at <= now) {
		t->last_update_at = now;
		if (outbound_template(st, e, now, t, "update", NULL,
		    error, error_len) < 0 ||
		    store_event_add(st, t->id, now, "update_sent", "escalon",
		    NULL) < 0)
			goto store_failed;
	}
	/* What fired added no pending stretch: plan on the same pauses. */
	plan(e, t, now, &p);
	return 0;
store_failed:
	if (error[0] == '\0')
		snprintf(error, error_len, "%s", store_error(st));
	return -1;
}

/* One transaction of due tickets; returns how many, or -1. */
static int
run_batch(struct store *st, const struct env *e, int64_t now, int limit)
{
	int64_t ids[SCHED_BATCH];
	int n = 0;

	if (store_due_tickets(st, now, limit, ids, &n) < 0)
		return -1;
	if (n == 0)
		return 0;
	if (store_begin(st) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct ticket t;
		char error[200] = "";
		if (store_ticket_get(st, ids[i], &t) != 1)
			goto fail;
		if (sched_fire(st, e, &t, now, error, sizeof(error)) < 0) {
			/* Look again in a minute rather than spin on it. */
			log_error("scheduled step failed", "ticket=%lld "
			    "error=%s", (long long)t.id, log_q(error));
			t.next_due_at = now + 60;
		}
		int rc = store_ticket_update(st, &t);
		ticket_release(&t);
		if (rc < 0)
			goto fail;
	}
	if (store_commit(st) < 0)
		goto fail;
	return n;
fail:
	log_error("scheduler: store failed", "error=%s",
	    log_q(store_error(st)));
	store_rollback(st);
	return -1;
}

int
sched_run_due(struct store *st, const struct env *e, int64_t now, int max,
    int *more_r)
{
	int total = 0, n;

	*more_r = 0;
	while (total < max) {
		int limit = max - total < SCHED_BATCH ? max - total :
		    SCHED_BATCH;
		if ((n = run_batch(st, e, now, limit)) < 0)
			return -1;
		total += n;
		if (n < limit)
			return total;
	}
	*more_r = 1;
	return total;
}

int
sched_start_level(struct store *st, const struct env *e, struct ticket *t,
    int64_t now, int at_creation, char *error, size_t error_len)
{
	const struct conf_severity *cs = conf_severity(e->conf, t->severity);
	const struct ladder *l = env_ladder(e, t->ladder);
	char why[96];

	if (cs == NULL || l == NULL)
		return 0;
	int to = ladder_start_level(l, cs->start_level);
	if (to <= t->level)
		return 0;
	snprintf(why, sizeof(why), "severity %s starts at level %d",
	    t->severity, to);
	/* A new ticket is created on its level: its ack, ticket.created and
	 * agent_new say so; a later raise is a step like any other. */
	return sched_escalate(st, e, t, to, why, "escalon", at_creation, now,
	    error, error_len);
}

int64_t
sched_open_time(struct store *st, const struct env *e, const char *sla,
    int64_t ticket_id, int64_t a, int64_t b)
{
	struct sla_policy pol;
	struct pauses p = { .since = 0 };	/* a stretch may start before a */
	int64_t t;

	if (env_sla(e, sla, &pol, NULL) < 0)
		return -1;
	if (b <= a)
		return 0;
	if (store_event_list(st, ticket_id, pause_event, &p) < 0)
		return -1;
	t = calendar_between(pol.calendar, a, b);
	for (size_t i = 0; i < p.n; i++) {
		int64_t from = p.v[i].from > a ? p.v[i].from : a;
		int64_t to = p.v[i].to != 0 && p.v[i].to < b ? p.v[i].to : b;
		if (to > from)
			t -= calendar_between(pol.calendar, from, to);
	}
	return t > 0 ? t : 0;
}
