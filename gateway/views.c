/*
 * views: the JSON documents escalon shows people and programs, the same
 * whether the CLI prints them (--json) or HTTP serves them (/api): a
 * ticket in a list, a ticket in full (SPEC.md's `show --json`), the KPI
 * report. Each returns a new reference (the caller decrefs) or NULL when
 * the store failed (store_error says why).
 */
#include "views.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "report.h"
#include "scheduler.h"
#include "sla.h"

json_t *
view_time(int64_t t)
{
	char buf[CLOCK_RFC3339_LEN];

	return t == 0 ? json_null() : json_string(clock_format(t, buf));
}

json_t *
view_ticket(const struct ticket *t)
{
	char ref[32];

	snprintf(ref, sizeof(ref), "ESC-%lld", (long long)t->id);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s?, s:i, s:s, s:s, s:o,"
	    " s:s?, s:s?}",
	    "id", (json_int_t)t->id, "ref", ref,
	    "state", ticket_state_name(t->state), "severity", t->severity,
	    "queue", t->queue, "team", t->team, "level", t->level,
	    "channel", t->channel, "subject", t->subject,
	    "created_at", view_time(t->created_at),
	    "assignee", t->assignee, "customer_address", t->customer_address);
}

static int
message_row(const struct message *m, void *arg)
{
	json_t *a = arg;

	json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s?, s:s, s:o,"
	    " s:s?, s:b}", "direction", m->direction, "channel", m->channel,
	    "author", m->author, "subject", m->subject, "body", m->body,
	    "at", view_time(m->at), "message_id", m->message_id,
	    "internal", strcmp(m->direction, "note") == 0));
	return 0;
}

static int
event_row(const struct event *e, void *arg)
{
	json_t *a = arg, *detail;
	json_error_t jerr;

	detail = json_loads(e->detail, 0, &jerr);
	if (detail == NULL)
		detail = json_object();
	json_array_append_new(a, json_pack("{s:s, s:o, s:s?, s:o}", "type",
	    e->type, "at", view_time(e->at), "actor", e->actor, "detail",
	    detail));
	return 0;
}

static int
tag_row(const char *tag, void *arg)
{
	json_array_append_new(arg, json_string(tag));
	return 0;
}

static const char *const clock_status[] = { "idle", "running", "paused",
    "stopped" };

/* Each SLA clock: its state, due and warning instants, open time used. */
static json_t *
clocks_json(struct store *st, const struct env *e, const struct ticket *t)
{
	struct sla_clock_state s[SLA_N_CLOCKS];
	json_t *o = json_object();

	if (sched_clocks(st, e, t, clock_now(&clock_system), s) < 0) {
		json_decref(o);
		return NULL;
	}
	for (int c = 0; c < SLA_N_CLOCKS; c++) {
		unsigned bit = SLA_BIT(c);
		json_object_set_new(o, sla_clock_name(c), json_pack(
		    "{s:s, s:o, s:o, s:I, s:b, s:b}",
		    "state", clock_status[s[c].status],
		    "due", view_time(s[c].due_at),
		    "warn_at", view_time(s[c].warn_at),
		    "elapsed_s", (json_int_t)s[c].elapsed,
		    "warned", (t->sla_warned & bit) != 0,
		    "breached", (t->sla_breached & bit) != 0));
	}
	return o;
}

json_t *
view_show(struct store *st, const struct env *e, const struct ticket *t)
{
	json_t *o = view_ticket(t), *msgs = json_array(),
	    *events = json_array(), *tags = json_array(), *clocks;

	if (store_message_list(st, t->id, message_row, msgs) < 0 ||
	    store_event_list(st, t->id, event_row, events) < 0 ||
	    store_ticket_tags(st, t->id, tag_row, tags) < 0 ||
	    (clocks = clocks_json(st, e, t)) == NULL) {
		json_decref(o);
		json_decref(msgs);
		json_decref(events);
		json_decref(tags);
		return NULL;
	}
	json_object_set_new(o, "tags", tags);
	json_object_set_new(o, "clocks", clocks);
	json_object_set_new(o, "ladder", t->ladder ? json_string(t->ladder) :
	    json_null());
	json_object_set_new(o, "next_due_at", view_time(t->next_due_at));
	json_object_del(o, "customer_address");
	json_object_set_new(o, "customer", json_pack("{s:s?, s:s, s:s}",
	    "name", t->customer_name, "address", t->customer_address,
	    "channel", t->channel));
	json_object_set_new(o, "source", json_string(t->source));
	json_object_set_new(o, "sla", t->sla ? json_string(t->sla) :
	    json_null());
	json_object_set_new(o, "root_cause", t->root_cause ?
	    json_string(t->root_cause) : json_null());
	json_object_set_new(o, "linked_to", t->linked_to ?
	    json_integer(t->linked_to) : json_null());
	json_object_set_new(o, "updated_at", view_time(t->updated_at));
	json_object_set_new(o, "first_response_at",
	    view_time(t->first_response_at));
	json_object_set_new(o, "resolved_at", view_time(t->resolved_at));
	json_object_set_new(o, "closed_at", view_time(t->closed_at));
	json_object_set_new(o, "due", json_pack("{s:o, s:o, s:o}",
	    "first_response", view_time(t->due_first_response),
	    "next_update", view_time(t->due_next_update),
	    "resolution", view_time(t->due_resolution)));
	int score, found;
	int64_t rated_at;
	if ((found = store_csat_of(st, t->id, &score, &rated_at)) < 0) {
		json_decref(o);
		json_decref(msgs);
		json_decref(events);
		return NULL;
	}
	json_object_set_new(o, "csat", found ? json_pack("{s:i, s:o}",
	    "score", score, "at", view_time(rated_at)) : json_null());
	json_object_set_new(o, "messages", msgs);
	json_object_set_new(o, "events", events);
	return o;
}

struct list_ctx {
	json_t *array;
};

static int
list_json(const struct ticket *t, void *arg)
{
	json_array_append_new(((struct list_ctx *)arg)->array, view_ticket(t));
	return 0;
}

json_t *
view_tickets(struct store *st, const struct ticket_filter *f)
{
	struct list_ctx ctx = { json_array() };

	if (st != NULL && store_ticket_list(st, f, list_json, &ctx) < 0) {
		json_decref(ctx.array);
		return NULL;
	}
	return ctx.array;
}

/* Business-time durations of the escalated rows, in each SLA's calendar. */
static void
business_times(struct store *st, const struct env *e,
    struct report_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		struct report_row *r = &rows->v[i];
		int64_t at = r->first_escalated_at != 0 ? r->first_escalated_at :
		    r->created_at;
		if (r->level < 2 && r->first_escalated_at == 0)
			continue;
		r->business_to_escalation = sched_open_time(st, e, r->sla,
		    r->id, r->created_at, at);
		if (r->resolved_at >= at && r->resolved_at != 0)
			r->business_post_escalation = sched_open_time(st, e,
			    r->sla, r->id, at, r->resolved_at);
	}
}

json_t *
view_report(struct store *st, const struct env *e, int64_t from, int64_t to)
{
	struct report_rows rows = { 0 };
	json_t *o = NULL;

	if (st == NULL || (store_report_rows(st, from, to, report_rows_add,
	    &rows) == 0 && !rows.failed)) {
		if (st != NULL && e != NULL)
			business_times(st, e, &rows);
		o = report_build(rows.v, rows.n, from, to);
	}
	report_rows_release(&rows);
	return o;
}
