/*
 * report: the escalation KPIs of SPEC.md ("KPIs"), computed from one row
 * per ticket created in the window. Pure over its input: the store
 * gathers the rows (store_report_rows), this file does the arithmetic.
 *
 * A ticket counts as escalated once it reached level 2 or more by any
 * means (a start level at creation included: time to escalation 0).
 * Durations are wall-clock seconds; percentiles are nearest-rank. Where
 * the rows carry business-time durations, the distributions also give
 * median_business_s and p90_business_s. A ratio with nothing to divide is
 * null.
 */
#ifndef ESCALON_REPORT_H
#define ESCALON_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct json_t;

struct report_row {
	int64_t id;
	const char *queue, *team, *severity;
	int level;
	int64_t created_at;
	int64_t first_escalated_at;	/* 0: never escalated */
	int64_t first_response_at;	/* 0: none */
	int64_t resolved_at;		/* 0: not resolved */
	const char *root_cause;		/* NULL: none */
	unsigned sla_breached;		/* SLA_BIT()s */
	double csat;			/* mean rating, < 0: none */
	const char *sla;		/* the ticket's SLA, or NULL */
	/* Business-time variants (the SLA calendar's open time, pending
	 * excluded), filled by the caller; -1: not known. */
	int64_t business_to_escalation, business_post_escalation;
};

/* Rows kept for a report: filled by report_rows_add (a store_report_rows
 * callback that copies each row), freed by report_rows_release. */
struct report_rows {
	struct report_row *v;
	size_t n, cap;
	int failed;			/* out of memory: rows are incomplete */
};

int report_rows_add(const struct report_row *r, void *arg);
void report_rows_release(struct report_rows *rows);

/* The report over [from, to] as SPEC.md's JSON document (caller decrefs). */
struct json_t *report_build(const struct report_row *rows, size_t n,
    int64_t from, int64_t to);

/* Nearest-rank percentile (0 < p <= 100) of n values, sorted in place. */
int64_t report_percentile(int64_t *v, size_t n, int p);

#endif
