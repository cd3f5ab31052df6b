/*
 * dashboard: GET / (SPEC.md "HTTP", "KPIs"), one self-contained HTML page
 * for people: the KPIs of report_build over the last 7, 30 or 90 days,
 * charts drawn here as inline SVG, and the tickets escalated right now
 * with their due clocks. No script, no external asset (a CSP meta tag
 * forbids both), nothing but inline CSS and system fonts.
 *
 * Invariants:
 *   1. Every string that comes from the store or the config (subjects,
 *      queue, team and severity names, root causes) goes through one
 *      escape function before it reaches the page, in HTML and SVG alike.
 *   2. The page is bounded: at most DASHBOARD_MAX_ESCALATED ticket rows,
 *      DASHBOARD_MAX_KEYS names per breakdown, DASHBOARD_MAX_SUBJECT bytes
 *      of a subject, and DASHBOARD_MAX_BYTES in all (over it: no page).
 *   3. The KPI numbers are report_build's, over the same rows the charts
 *      are drawn from (store_report_rows over the window).
 *
 * The window of N days is the current UTC day and the N - 1 days before
 * it, from 00:00 UTC of the first through the current second (so a
 * ticket created a moment ago is in it, and each bar of the per-day
 * chart is one whole UTC day).
 */
#ifndef ESCALON_DASHBOARD_H
#define ESCALON_DASHBOARD_H

#include <stddef.h>
#include <stdint.h>

struct api;
struct env;
struct http_req;
struct store;

#define DASHBOARD_DEFAULT_DAYS	30
#define DASHBOARD_MAX_ESCALATED	200		/* rows in the list */
#define DASHBOARD_MAX_KEYS	20		/* queues, teams ... shown */
#define DASHBOARD_MAX_SUBJECT	160		/* bytes of a subject */
#define DASHBOARD_MAX_BYTES	(4u << 20)	/* the whole page */

/*
 * GET /[?days=7|30|90]: 200 text/html. Without ?days the last 30 days;
 * any other value of days is answered 400 (a short HTML page that links
 * to the three windows). Off a loopback listen it takes the API token as
 * api_authorized does (401 without it); 500 if the store fails.
 */
void dashboard_page(struct api *a, struct http_req *req);

/* "7", "30" or "90" -> that many days; -1 for anything else. */
int dashboard_parse_days(const char *s);

/* The window of the last `days` days at now: [*from_r, *to_r], as
 * store_report_rows and report_build take it: *to_r is now itself. */
void dashboard_window(int64_t now, int days, int64_t *from_r,
    int64_t *to_r);

/*
 * The page for the last `days` days at now, as a NUL-terminated heap
 * string the caller frees; NULL when the store fails (store_error says
 * why), memory runs out or the page would pass DASHBOARD_MAX_BYTES.
 * st NULL: an empty store. e NULL: no config (the funnel then shows the
 * levels tickets reached, at least 2).
 */
char *dashboard_render(struct store *st, const struct env *e, int64_t now,
    int days);

/* s escaped for HTML text and attribute values (& < > " '); control
 * characters become spaces. A heap string the caller frees, or NULL. */
char *dashboard_escape(const char *s);

/* Seconds as people say them: "45s", "12m 5s", "1h 20m", "2d 3h". */
const char *dashboard_duration(int64_t s, char *buf, size_t len);

#endif
