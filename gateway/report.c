/* report: escalation KPIs. See report.h. */
#include "report.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sla.h"

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int64_t
report_percentile(int64_t *v, size_t n, int p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp64);
	size_t rank = (size_t)ceil((double)p / 100.0 * (double)n);
	return v[rank > 0 ? rank - 1 : 0];
}

static json_t *
ratio(size_t num, size_t den)
{
	return den == 0 ? json_null() : json_real((double)num / (double)den);
}

static json_t *
distribution(int64_t *v, size_t n, int64_t *biz, size_t n_biz)
{
	json_t *o;

	if (n == 0)
		return json_pack("{s:n, s:n, s:i}", "median_s", "p90_s",
		    "count", 0);
	int64_t median = report_percentile(v, n, 50);
	int64_t p90 = report_percentile(v, n, 90);
	o = json_pack("{s:I, s:I, s:I}", "median_s", (json_int_t)median,
	    "p90_s", (json_int_t)p90, "count", (json_int_t)n);
	/* Only when every ticket's business time is known. */
	if (n_biz == n) {
		json_object_set_new(o, "median_business_s", json_integer(
		    report_percentile(biz, n_biz, 50)));
		json_object_set_new(o, "p90_business_s", json_integer(
		    report_percentile(biz, n_biz, 90)));
	}
	return o;
}

static void
count(json_t *by, const char *key)
{
	if (key == NULL)
		key = "-";
	json_int_t n = json_integer_value(json_object_get(by, key));
	json_object_set_new(by, key, json_integer(n + 1));
}

static json_t *
csat_json(double sum, size_t n)
{
	return json_pack("{s:o, s:I}", "mean", n > 0 ? json_real(sum /
	    (double)n) : json_null(), "count", (json_int_t)n);
}

json_t *
report_build(const struct report_row *rows, size_t n, int64_t from,
    int64_t to)
{
	int64_t *to_esc = calloc(n + 1, sizeof(int64_t));
	int64_t *post = calloc(n + 1, sizeof(int64_t));
	int64_t *to_esc_b = calloc(n + 1, sizeof(int64_t));
	int64_t *post_b = calloc(n + 1, sizeof(int64_t));
	size_t n_to_esc = 0, n_post = 0, escalated = 0, n_to_esc_b = 0;
	size_t n_post_b = 0;
	size_t esc_resolved = 0, esc_in_target = 0, esc_with_cause = 0;
	size_t fr_den = 0, fr_ok = 0, csat_esc_n = 0, csat_other_n = 0;
	double csat_esc = 0, csat_other = 0;
	json_t *by_queue = json_object(), *by_team = json_object(),
	    *by_severity = json_object(), *by_level = json_object(), *out = NULL;
	char a[CLOCK_RFC3339_LEN], b[CLOCK_RFC3339_LEN], lvl[16];

	if (to_esc == NULL || post == NULL || to_esc_b == NULL ||
	    post_b == NULL) {
		out = NULL;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const struct report_row *r = &rows[i];
		int esc = r->level >= 2 || r->first_escalated_at != 0;
		unsigned fr = SLA_BIT(SLA_FIRST_RESPONSE);

		count(by_queue, r->queue);
		count(by_team, r->team);
		count(by_severity, r->severity);
		snprintf(lvl, sizeof(lvl), "%d", r->level);
		count(by_level, lvl);
		/* First response: answered, or its clock ran out. */
		if (r->first_response_at != 0 || (r->sla_breached & fr)) {
			fr_den++;
			fr_ok += !(r->sla_breached & fr);
		}
		if (r->csat >= 0) {
			if (esc) {
				csat_esc += r->csat;
				csat_esc_n++;
			} else {
				csat_other += r->csat;
				csat_other_n++;
			}
		}
		if (!esc)
			continue;
		escalated++;
		int64_t at = r->first_escalated_at != 0 ?
		    r->first_escalated_at : r->created_at;
		to_esc[n_to_esc++] = at - r->created_at;
		if (r->business_to_escalation >= 0)
			to_esc_b[n_to_esc_b++] = r->business_to_escalation;
		if (r->resolved_at == 0)
			continue;
		esc_resolved++;
		if (r->resolved_at >= at) {
			post[n_post++] = r->resolved_at - at;
			if (r->business_post_escalation >= 0)
				post_b[n_post_b++] =
				    r->business_post_escalation;
		}
		esc_in_target += !(r->sla_breached &
		    SLA_BIT(SLA_RESOLUTION));
		esc_with_cause += r->root_cause != NULL &&
		    r->root_cause[0] != '\0';
	}
	out = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, "
	    "s:{s:o, s:o}, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "from", clock_format(from, a), "to", clock_format(to, b),
	    "tickets", (json_int_t)n, "escalated", (json_int_t)escalated,
	    "escalation_rate", ratio(escalated, n),
	    "time_to_escalation", distribution(to_esc, n_to_esc, to_esc_b,
	    n_to_esc_b),
	    "post_escalation_resolution", distribution(post, n_post, post_b,
	    n_post_b),
	    "sla_compliance_post_escalation", ratio(esc_in_target,
	    esc_resolved),
	    "csat", "escalated", csat_json(csat_esc, csat_esc_n),
	    "other", csat_json(csat_other, csat_other_n),
	    "root_cause_frequency", ratio(esc_with_cause, esc_resolved),
	    "first_response_compliance", ratio(fr_ok, fr_den),
	    "by_queue", by_queue, "by_team", by_team,
	    "by_severity", by_severity, "by_level", by_level);
	by_queue = by_team = by_severity = by_level = NULL;	/* in out */
done:
	json_decref(by_queue);
	json_decref(by_team);
	json_decref(by_severity);
	json_decref(by_level);
	free(to_esc);
	free(post);
	free(to_esc_b);
	free(post_b);
	return out;
}

static const char *
dup_or_null(const char *s, int *failed)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*failed = 1;
	return d;
}

int
report_rows_add(const struct report_row *r, void *arg)
{
	struct report_rows *c = arg;
	struct report_row *k;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct report_row *v = realloc(c->v, cap * sizeof(*v));
		if (v == NULL) {
			c->failed = 1;
			return 1;
		}
		c->v = v;
		c->cap = cap;
	}
	k = &c->v[c->n++];
	*k = *r;
	k->queue = dup_or_null(r->queue, &c->failed);
	k->team = dup_or_null(r->team, &c->failed);
	k->severity = dup_or_null(r->severity, &c->failed);
	k->root_cause = dup_or_null(r->root_cause, &c->failed);
	k->sla = dup_or_null(r->sla, &c->failed);
	return c->failed;
}

void
report_rows_release(struct report_rows *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free((char *)c->v[i].queue);
		free((char *)c->v[i].team);
		free((char *)c->v[i].severity);
		free((char *)c->v[i].root_cause);
		free((char *)c->v[i].sla);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}
