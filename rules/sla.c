/* sla: SLA clock arithmetic. See sla.h. */
#include "sla.h"

#include <string.h>

#include "calendar.h"

static const char *const clock_names[SLA_N_CLOCKS] = {
	"first_response", "next_update", "resolution"
};

const char *
sla_clock_name(enum sla_clock c)
{
	return (unsigned)c < SLA_N_CLOCKS ? clock_names[c] : "?";
}

int
sla_clock_parse(const char *name)
{
	for (int i = 0; i < SLA_N_CLOCKS; i++)
		if (strcmp(name, clock_names[i]) == 0)
			return i;
	return -1;
}

/* Open seconds of [a, b) outside the pauses. */
static int64_t
counted(const struct calendar *cal, int64_t a, int64_t b,
    const struct sla_pause *pauses, size_t n)
{
	int64_t t = calendar_between(cal, a, b);

	for (size_t i = 0; i < n; i++) {
		int64_t from = pauses[i].from > a ? pauses[i].from : a;
		int64_t to = pauses[i].to != 0 && pauses[i].to < b ?
		    pauses[i].to : b;
		if (to > from)
			t -= calendar_between(cal, from, to);
	}
	return t > 0 ? t : 0;
}

/* warn_at and due_at for a clock that has counted `elapsed` by `since`. */
static void
project(const struct sla_policy *p, enum sla_clock c, int64_t since,
    int64_t elapsed, struct sla_clock_state *s)
{
	int64_t target = p->target[c];
	int64_t warn = target * p->warn_at / 100;

	s->due_at = elapsed >= target ? since :
	    calendar_add(p->calendar, since, target - elapsed);
	s->warn_at = elapsed >= warn ? since :
	    calendar_add(p->calendar, since, warn - elapsed);
}

static void
simple_clock(const struct sla_policy *p, enum sla_clock c, int64_t start,
    int64_t stop, int64_t now, struct sla_clock_state *s)
{
	if (p->target[c] <= 0 || start == 0)
		return;
	if (stop != 0) {
		s->status = SLA_STOPPED;
		s->elapsed = calendar_between(p->calendar, start, stop);
		return;
	}
	s->status = SLA_RUNNING;
	s->elapsed = calendar_between(p->calendar, start, now);
	project(p, c, start, 0, s);
}

static void
resolution_clock(const struct sla_policy *p, const struct sla_facts *f,
    int64_t now, struct sla_clock_state *s)
{
	const struct sla_pause *last = f->n_pauses > 0 ?
	    &f->pauses[f->n_pauses - 1] : NULL;
	int64_t start = f->resolution_start != 0 ? f->resolution_start :
	    f->created_at;

	if (p->target[SLA_RESOLUTION] <= 0)
		return;
	if (f->resolved_at != 0) {
		s->status = SLA_STOPPED;
		s->elapsed = counted(p->calendar, start, f->resolved_at,
		    f->pauses, f->n_pauses);
		return;
	}
	if (last != NULL && last->to == 0) {
		s->status = SLA_PAUSED;
		s->elapsed = counted(p->calendar, start, last->from, f->pauses,
		    f->n_pauses);
		return;
	}
	/* Running since the last resumption: project from there. */
	int64_t resumed = last != NULL && last->to > start ? last->to : start;
	int64_t before = counted(p->calendar, start, resumed, f->pauses,
	    f->n_pauses);
	s->status = SLA_RUNNING;
	s->elapsed = counted(p->calendar, start, now, f->pauses, f->n_pauses);
	project(p, SLA_RESOLUTION, resumed, before, s);
}

void
sla_evaluate(const struct sla_policy *p, const struct sla_facts *f,
    int64_t now, struct sla_clock_state out[SLA_N_CLOCKS])
{
	memset(out, 0, SLA_N_CLOCKS * sizeof(*out));
	/* Resolving stops every clock, answered or not. */
	simple_clock(p, SLA_FIRST_RESPONSE, f->created_at,
	    f->first_response_at != 0 ? f->first_response_at : f->resolved_at,
	    now, &out[SLA_FIRST_RESPONSE]);
	/* next_update runs only once the first response has been given. */
	if (f->first_response_at != 0)
		simple_clock(p, SLA_NEXT_UPDATE, f->awaiting_since,
		    f->resolved_at, now, &out[SLA_NEXT_UPDATE]);
	resolution_clock(p, f, now, &out[SLA_RESOLUTION]);
}

int64_t
sla_next_due(const struct sla_clock_state st[SLA_N_CLOCKS],
    const struct sla_facts *f)
{
	int64_t next = 0;

	for (int c = 0; c < SLA_N_CLOCKS; c++) {
		if (st[c].status != SLA_RUNNING)
			continue;
		int64_t at[2] = {
			(f->warned & SLA_BIT(c)) ? 0 : st[c].warn_at,
			(f->breached & SLA_BIT(c)) ? 0 : st[c].due_at,
		};
		for (int k = 0; k < 2; k++)
			if (at[k] > 0 && (next == 0 || at[k] < next))
				next = at[k];
	}
	return next;
}
