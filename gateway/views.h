/* views: JSON documents for the CLI and HTTP alike. See views.c. */
#ifndef ESCALON_VIEWS_H
#define ESCALON_VIEWS_H

#include <stdint.h>

#include "env.h"
#include "store.h"

struct json_t;

/* An instant as RFC 3339 UTC, or null for 0. */
struct json_t *view_time(int64_t t);
/* A ticket as `tickets --json` lists it. */
struct json_t *view_ticket(const struct ticket *t);
/* The list, filtered (st NULL: no store yet, an empty list). */
struct json_t *view_tickets(struct store *st, const struct ticket_filter *f);
/* A ticket in full: SPEC.md's `show --json`. */
struct json_t *view_show(struct store *st, const struct env *e,
    const struct ticket *t);
/*
 * The KPI report over [from, to] (st NULL: an empty store), with the
 * business-time variants in each ticket's SLA calendar (e NULL: none).
 */
struct json_t *view_report(struct store *st, const struct env *e,
    int64_t from, int64_t to);

#endif
