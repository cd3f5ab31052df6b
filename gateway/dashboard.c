/*
 * dashboard: the page at GET /. See dashboard.h.
 *
 * One pass builds the page into a bounded buffer (struct text):
 *
 *   rows   store_report_rows over the window, copied (their strings are
 *          borrowed for the callback only)
 *   KPIs   report_build over those rows: the numbers of `report --json`
 *   charts drawn from the same rows as SVG: vbars() for counts over days
 *          or duration buckets, hbars() for shares (funnel, SLA by queue,
 *          CSAT)
 *   list   store_ticket_list, escalated, state new, open then pending
 *
 * Everything that came from the store is written through esc_n(); text
 * this file composes itself (numbers, dates, fixed labels) is not.
 */
#include "dashboard.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "env.h"
#include "httpd.h"
#include "log.h"
#include "report.h"
#include "sla.h"
#include "store.h"

#define DAY		INT64_C(86400)
#define MAX_DAYS	366	/* days a window may span */
#define MAX_LEVELS	10	/* funnel rows; the last is "level >= 10" */
#define MAX_QUEUES	64	/* queues told apart; the rest: "other" */
#define LABEL_BYTES	28	/* of a name in an SVG chart */

#define MDASH "&mdash;"
#define GE "\xe2\x89\xa5"	/* U+2265 GREATER-THAN OR EQUAL TO */

/* ---- text: the page, growing up to DASHBOARD_MAX_BYTES ------------------ */

struct text {
	char *p;
	size_t len, cap;
	int failed;		/* out of memory, or the page too large */
};

static int
grow(struct text *t, size_t more)
{
	size_t need = t->len + more + 1, cap;
	char *p;

	if (t->failed)
		return -1;
	if (need <= t->cap)
		return 0;
	if (need > DASHBOARD_MAX_BYTES) {
		t->failed = 1;
		return -1;
	}
	for (cap = t->cap ? t->cap : 16384; cap < need; cap *= 2)
		;
	if (cap > DASHBOARD_MAX_BYTES)
		cap = DASHBOARD_MAX_BYTES;
	if ((p = realloc(t->p, cap)) == NULL) {
		t->failed = 1;
		return -1;
	}
	t->p = p;
	t->cap = cap;
	return 0;
}

static void
put_n(struct text *t, const char *s, size_t n)
{
	if (grow(t, n) < 0)
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void
put(struct text *t, const char *s)
{
	put_n(t, s, strlen(s));
}

static void
say(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct text *t, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = 1;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		put_n(t, small, (size_t)n);
		return;
	}
	if (grow(t, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/*
 * s escaped for HTML text and attributes (SVG inside HTML included): at
 * most max bytes of it (0: all), cut on a UTF-8 character boundary and
 * followed by an ellipsis when cut. NULL is written as "-".
 */
static void
esc_n(struct text *t, const char *s, size_t max)
{
	size_t n, start = 0;
	int cut = 0;

	if (s == NULL)
		s = "-";
	n = strlen(s);
	if (max > 0 && n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		cut = 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *rep = NULL;

		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		case '\t': case '\n': case '\r': break;
		default:
			if (c < 0x20 || c == 0x7f)
				rep = " ";
		}
		if (rep != NULL) {
			put_n(t, s + start, i - start);
			put(t, rep);
			start = i + 1;
		}
	}
	put_n(t, s + start, n - start);
	if (cut)
		put(t, "&hellip;");
}

static void
esc(struct text *t, const char *s)
{
	esc_n(t, s, 0);
}

char *
dashboard_escape(const char *s)
{
	struct text t = { 0 };

	esc(&t, s);
	if (t.failed) {
		free(t.p);
		return NULL;
	}
	return t.p != NULL ? t.p : strdup("");
}

const char *
dashboard_duration(int64_t s, char *buf, size_t len)
{
	long long v = s < 0 ? 0 : (long long)s;

	if (v < 60)
		snprintf(buf, len, "%llds", v);
	else if (v < 3600)
		snprintf(buf, len, v % 60 ? "%lldm %llds" : "%lldm", v / 60,
		    v % 60);
	else if (v < DAY)
		snprintf(buf, len, v % 3600 / 60 ? "%lldh %lldm" : "%lldh",
		    v / 3600, v % 3600 / 60);
	else
		snprintf(buf, len, v % DAY / 3600 ? "%lldd %lldh" : "%lldd",
		    v / DAY, v % DAY / 3600);
	return buf;
}

int
dashboard_parse_days(const char *s)
{
	static const char *const names[] = { "7", "30", "90" };
	static const int days[] = { 7, 30, 90 };

	for (size_t i = 0; s != NULL && i < sizeof(days) / sizeof(*days);
	    i++)
		if (strcmp(s, names[i]) == 0)
			return days[i];
	return -1;
}

void
dashboard_window(int64_t now, int days, int64_t *from_r, int64_t *to_r)
{
	int64_t today = now >= 0 ? now / DAY : (now - DAY + 1) / DAY;

	*from_r = (today - days + 1) * DAY;
	*to_r = now;
}

/* ---- the rows of the window ------------------------------------------- */

/* As report.c counts them: level 2 or more by any means. */
static int
escalated(const struct report_row *r)
{
	return r->level >= 2 || r->first_escalated_at != 0;
}

static int64_t
escalated_at(const struct report_row *r)
{
	return r->first_escalated_at != 0 ? r->first_escalated_at :
	    r->created_at;
}

/* ---- KPIs: report_build's numbers ---------------------------------------- */

static const char *
pct(json_t *v, char *buf, size_t len)
{
	if (!json_is_number(v))
		return MDASH;
	snprintf(buf, len, "%.1f%%", json_number_value(v) * 100.0);
	return buf;
}

static const char *
dur(json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return MDASH;
	return dashboard_duration(json_integer_value(v), buf, len);
}

/* label, value and note are this file's own text, not escaped. */
static void
kpi(struct text *t, const char *id, const char *label, const char *value,
    const char *note)
{
	say(t, "<div class=\"kpi\" id=\"kpi-%s\"><div class=\"k\">%s</div>"
	    "<div class=\"v\">%s</div><div class=\"n\">%s</div></div>\n", id,
	    label, value, note);
}

static void
kpi_csat(struct text *t, json_t *o, const char *which, const char *id,
    const char *label)
{
	json_t *c = json_object_get(json_object_get(o, "csat"), which);
	json_t *mean = json_object_get(c, "mean");
	long long n = json_integer_value(json_object_get(c, "count"));
	char v[32], note[64];

	if (json_is_number(mean))
		snprintf(v, sizeof(v), "%.2f", json_number_value(mean));
	snprintf(note, sizeof(note), n == 1 ? "mean of 1 rating, 1..5" :
	    "mean of %lld ratings, 1..5", n);
	kpi(t, id, label, json_is_number(mean) ? v : MDASH, note);
}

static void
kpis(struct text *t, json_t *o)
{
	json_t *tte = json_object_get(o, "time_to_escalation");
	json_t *per = json_object_get(o, "post_escalation_resolution");
	char a[32], note[96];
	long long n = json_integer_value(json_object_get(o, "tickets"));
	long long esc = json_integer_value(json_object_get(o, "escalated"));
	long long n_tte = json_integer_value(json_object_get(tte, "count"));
	long long n_per = json_integer_value(json_object_get(per, "count"));

	put(t, "<section class=\"kpis\">\n");
	snprintf(a, sizeof(a), "%lld", n);
	kpi(t, "tickets", "Tickets", a, "created in the window");
	snprintf(a, sizeof(a), "%lld", esc);
	kpi(t, "escalated", "Escalated", a, "reached level 2 or more");
	kpi(t, "escalation-rate", "Escalation rate", pct(json_object_get(o,
	    "escalation_rate"), a, sizeof(a)), "escalated / tickets");
	snprintf(note, sizeof(note), "creation to first escalation, %lld "
	    "tickets", n_tte);
	kpi(t, "tte-median", "Time to escalation, median",
	    dur(json_object_get(tte, "median_s"), a, sizeof(a)), note);
	kpi(t, "tte-p90", "Time to escalation, p90",
	    dur(json_object_get(tte, "p90_s"), a, sizeof(a)), note);
	snprintf(note, sizeof(note), "first escalation to resolved, %lld "
	    "tickets", n_per);
	kpi(t, "per-median", "Resolution after escalation, median",
	    dur(json_object_get(per, "median_s"), a, sizeof(a)), note);
	kpi(t, "per-p90", "Resolution after escalation, p90",
	    dur(json_object_get(per, "p90_s"), a, sizeof(a)), note);
	kpi(t, "sla-post", "SLA compliance after escalation",
	    pct(json_object_get(o, "sla_compliance_post_escalation"), a,
	    sizeof(a)), "escalated tickets resolved within target");
	kpi(t, "root-cause", "Root-cause frequency", pct(json_object_get(o,
	    "root_cause_frequency"), a, sizeof(a)),
	    "escalated resolved tickets with a root cause");
	kpi(t, "first-response", "First-response compliance",
	    pct(json_object_get(o, "first_response_compliance"), a,
	    sizeof(a)), "answered in time, all tickets");
	kpi_csat(t, o, "escalated", "csat-escalated", "CSAT, escalated");
	kpi_csat(t, o, "other", "csat-other", "CSAT, not escalated");
	put(t, "</section>\n");
}

/* ---- SVG charts ------------------------------------------------------- */

#define SVG_W 640

static void
svg_open(struct text *t, int height, const char *aria)
{
	say(t, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
	    SVG_W, height);
	esc(t, aria);
	put(t, "\">\n");
}

/* One bar of a vertical chart: name (for its tooltip), axis label
 * ("" for none) and value. */
struct vbar {
	char name[40];
	char axis[16];
	int64_t v;
};

static void
vbars(struct text *t, const char *aria, const struct vbar *b, size_t n,
    const char *cls)
{
	const double left = 40, right = 8, top = 18, bottom = 24, h = 190;
	const double pw = SVG_W - left - right, ph = h - top - bottom;
	const double slot = pw / (double)(n ? n : 1), bw = slot * 0.78;
	int64_t max = 1;

	for (size_t i = 0; i < n; i++)
		if (b[i].v > max)
			max = b[i].v;
	svg_open(t, (int)h, aria);
	say(t, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
	    "y2=\"%.1f\"/><text class=\"yl\" x=\"%.1f\" y=\"%.1f\">%lld"
	    "</text>\n", left, top, SVG_W - right, top, left - 5, top + 4,
	    (long long)max);
	say(t, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
	    "y2=\"%.1f\"/><text class=\"yl\" x=\"%.1f\" y=\"%.1f\">0</text>\n",
	    left, top + ph, SVG_W - right, top + ph, left - 5, top + ph + 4);
	for (size_t i = 0; i < n; i++) {
		double x = left + slot * (double)i;
		double bh = ph * (double)b[i].v / (double)max;

		put(t, "<g><title>");
		esc(t, b[i].name);
		say(t, ": %lld</title>", (long long)b[i].v);
		say(t, "<rect class=\"hit\" x=\"%.1f\" y=\"%.1f\" "
		    "width=\"%.1f\" height=\"%.1f\"/>", x, top, slot, ph);
		if (b[i].v > 0)
			say(t, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" "
			    "width=\"%.1f\" height=\"%.1f\"/>", cls,
			    x + (slot - bw) / 2, top + ph - bh, bw, bh);
		if (b[i].v > 0 && n <= 31)
			say(t, "<text class=\"vl\" x=\"%.1f\" y=\"%.1f\">%lld"
			    "</text>", x + slot / 2, top + ph - bh - 3,
			    (long long)b[i].v);
		if (b[i].axis[0] != '\0') {
			say(t, "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">",
			    x + slot / 2, top + ph + 15);
			esc(t, b[i].axis);
			put(t, "</text>");
		}
		put(t, "</g>\n");
	}
	put(t, "</svg>\n");
}

/* One row of a horizontal chart: frac of the full width (< 0: no bar),
 * text after it. The label may come from the store. */
struct hbar {
	const char *label;
	double frac;
	char text[64];
	const char *cls;
};

static void
hbars(struct text *t, const char *aria, const struct hbar *b, size_t n)
{
	const double lw = 170, vw = 190, row = 24, top = 6;
	const double full = SVG_W - lw - vw;
	int h = (int)(top * 2 + row * (double)n);

	svg_open(t, h, aria);
	for (size_t i = 0; i < n; i++) {
		double y = top + row * (double)i;
		double f = b[i].frac > 1 ? 1 : b[i].frac;
		double w = f > 0 ? f * full : 0;

		say(t, "<g><text class=\"hl\" x=\"%.1f\" y=\"%.1f\">",
		    lw - 8, y + row * 0.65);
		esc_n(t, b[i].label, LABEL_BYTES);
		put(t, "</text>");
		if (f >= 0)
			say(t, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" "
			    "width=\"%.1f\" height=\"%.1f\"/>", b[i].cls, lw,
			    y + 4, w, row - 8);
		say(t, "<text class=\"%s\" x=\"%.1f\" y=\"%.1f\">%s</text>"
		    "</g>\n", f >= 0 ? "hv" : "hv none", lw + w + 6,
		    y + row * 0.65, b[i].text);
	}
	put(t, "</svg>\n");
}

static void
figure_open(struct text *t, const char *id, const char *caption)
{
	say(t, "<figure id=\"%s\"><figcaption>%s</figcaption>\n", id,
	    caption);
}

/* Escalations per day, by the UTC day of each ticket's first escalation. */
static int
chart_per_day(struct text *t, const struct report_rows *r, int64_t from, int days)
{
	struct vbar *b = calloc((size_t)days, sizeof(*b));
	int64_t day0 = from / DAY;
	int every = days <= 10 ? 1 : days <= 31 ? 5 : 15;
	char when[CLOCK_RFC3339_LEN];

	if (b == NULL)
		return -1;
	for (int i = 0; i < days; i++) {
		clock_format((day0 + i) * DAY, when);
		snprintf(b[i].name, sizeof(b[i].name), "%.10s", when);
		/* Label the last day (today) and every `every` before it. */
		if ((days - 1 - i) % every == 0)
			snprintf(b[i].axis, sizeof(b[i].axis), "%.5s",
			    when + 5);
	}
	for (size_t i = 0; i < r->n; i++) {
		if (!escalated(&r->v[i]))
			continue;
		int64_t d = escalated_at(&r->v[i]) / DAY - day0;
		b[d < 0 ? 0 : d >= days ? days - 1 : d].v++;
	}
	figure_open(t, "chart-per-day", "Escalations per day "
	    "<small>(UTC day of the first escalation)</small>");
	vbars(t, "Escalations per day", b, (size_t)days, "esc");
	put(t, "</figure>\n");
	free(b);
	return 0;
}

/* Tickets that reached level >= 1, >= 2 ... */
static void
chart_funnel(struct text *t, const struct report_rows *r, const struct env *e)
{
	struct hbar b[MAX_LEVELS];
	char labels[MAX_LEVELS][24];
	size_t count[MAX_LEVELS + 1] = { 0 };
	int top = 2;

	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].level > top)
			top = r->v[i].level;
	for (size_t i = 0; e != NULL && i < e->conf->n_ladders; i++) {
		const struct conf_ladder *l = &e->conf->ladders[i];
		if (l->n_levels > 0 && l->levels[l->n_levels - 1].level > top)
			top = l->levels[l->n_levels - 1].level;
	}
	if (top > MAX_LEVELS)
		top = MAX_LEVELS;
	for (size_t i = 0; i < r->n; i++) {
		int lv = r->v[i].level < 1 ? 1 : r->v[i].level;
		for (int k = 1; k <= top && k <= lv; k++)
			count[k]++;
	}
	for (int k = 1; k <= top; k++) {
		struct hbar *h = &b[k - 1];
		snprintf(labels[k - 1], sizeof(labels[0]), "level " GE " %d",
		    k);
		h->label = labels[k - 1];
		h->cls = k >= 2 ? "esc" : "all";
		h->frac = r->n ? (double)count[k] / (double)r->n : 0;
		snprintf(h->text, sizeof(h->text), "%zu (%.0f%%)", count[k],
		    h->frac * 100.0);
	}
	figure_open(t, "chart-funnel", "Escalation funnel "
	    "<small>(tickets by the level they reached)</small>");
	hbars(t, "Escalation funnel by level", b, (size_t)top);
	put(t, "</figure>\n");
}

/* Duration buckets of the two distributions. */
static const int64_t bucket_upto[] = { 60, 900, 3600, 4 * 3600, DAY,
    3 * DAY };
static const char *const bucket_name[] = { "< 1m", "1-15m", "15m-1h",
    "1-4h", "4h-1d", "1-3d", "> 3d" };
#define N_BUCKETS (sizeof(bucket_name) / sizeof(*bucket_name))

static void
bucket_add(struct vbar *b, int64_t s)
{
	size_t i = 0;

	while (i < N_BUCKETS - 1 && s >= bucket_upto[i])
		i++;
	b[i].v++;
}

static void
chart_distributions(struct text *t, const struct report_rows *r)
{
	struct vbar tte[N_BUCKETS], per[N_BUCKETS];

	memset(tte, 0, sizeof(tte));
	memset(per, 0, sizeof(per));
	for (size_t i = 0; i < N_BUCKETS; i++) {
		snprintf(tte[i].name, sizeof(tte[i].name), "%s",
		    bucket_name[i]);
		snprintf(tte[i].axis, sizeof(tte[i].axis), "%s",
		    bucket_name[i]);
		per[i] = tte[i];
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct report_row *w = &r->v[i];
		if (!escalated(w))
			continue;
		int64_t at = escalated_at(w);
		bucket_add(tte, at - w->created_at);
		if (w->resolved_at != 0 && w->resolved_at >= at)
			bucket_add(per, w->resolved_at - at);
	}
	figure_open(t, "chart-tte", "Time to escalation "
	    "<small>(tickets, by creation to first escalation)</small>");
	vbars(t, "Time to escalation distribution", tte, N_BUCKETS, "esc");
	put(t, "</figure>\n");
	figure_open(t, "chart-per", "Resolution after escalation "
	    "<small>(tickets, by first escalation to resolved)</small>");
	vbars(t, "Post-escalation resolution time distribution", per,
	    N_BUCKETS, "res");
	put(t, "</figure>\n");
}

struct qstat {
	const char *name;	/* borrowed from the rows; NULL: other */
	size_t tickets, esc_resolved, esc_in_target, fr_den, fr_ok;
};

static int
cmp_qstat(const void *a, const void *b)
{
	const struct qstat *x = a, *y = b;

	if (x->tickets != y->tickets)
		return x->tickets < y->tickets ? 1 : -1;
	if (x->name == NULL || y->name == NULL)	/* "other" last */
		return (x->name == NULL) - (y->name == NULL);
	return strcmp(x->name, y->name);
}

/* SLA compliance by queue, as report.c counts it overall. */
static void
chart_sla_by_queue(struct text *t, const struct report_rows *r)
{
	struct qstat q[MAX_QUEUES + 1];
	struct hbar b[2 * DASHBOARD_MAX_KEYS];
	size_t nq = 0, shown, nb = 0;
	const unsigned fr = SLA_BIT(SLA_FIRST_RESPONSE);
	const unsigned res = SLA_BIT(SLA_RESOLUTION);

	memset(q, 0, sizeof(q));
	for (size_t i = 0; i < r->n; i++) {
		const struct report_row *w = &r->v[i];
		const char *name = w->queue != NULL ? w->queue : "-";
		size_t k;

		for (k = 0; k < nq; k++)
			if (q[k].name != NULL && strcmp(q[k].name, name) == 0)
				break;
		if (k == nq) {
			if (nq == MAX_QUEUES) {
				k = MAX_QUEUES;		/* other */
			} else {
				q[nq].name = name;
				k = nq++;
			}
		}
		q[k].tickets++;
		if (w->first_response_at != 0 || (w->sla_breached & fr)) {
			q[k].fr_den++;
			q[k].fr_ok += !(w->sla_breached & fr);
		}
		if (escalated(w) && w->resolved_at != 0) {
			q[k].esc_resolved++;
			q[k].esc_in_target += !(w->sla_breached & res);
		}
	}
	if (q[MAX_QUEUES].tickets > 0)
		nq = MAX_QUEUES + 1;
	qsort(q, nq, sizeof(*q), cmp_qstat);
	shown = nq < DASHBOARD_MAX_KEYS ? nq : DASHBOARD_MAX_KEYS;
	for (size_t i = 0; i < shown; i++) {
		struct hbar *e = &b[nb++], *f = &b[nb++];

		e->label = q[i].name != NULL ? q[i].name : "(other queues)";
		e->cls = "esc";
		e->frac = q[i].esc_resolved ? (double)q[i].esc_in_target /
		    (double)q[i].esc_resolved : -1;
		if (e->frac >= 0)
			snprintf(e->text, sizeof(e->text), "%.0f%% (%zu of "
			    "%zu)", e->frac * 100.0, q[i].esc_in_target,
			    q[i].esc_resolved);
		else
			snprintf(e->text, sizeof(e->text), "no escalated "
			    "ticket resolved");
		f->label = "";
		f->cls = "fr";
		f->frac = q[i].fr_den ? (double)q[i].fr_ok /
		    (double)q[i].fr_den : -1;
		if (f->frac >= 0)
			snprintf(f->text, sizeof(f->text), "%.0f%% (%zu of "
			    "%zu)", f->frac * 100.0, q[i].fr_ok, q[i].fr_den);
		else
			snprintf(f->text, sizeof(f->text), "no first "
			    "response yet");
	}
	figure_open(t, "chart-sla-queue", "SLA compliance by queue");
	put(t, "<div class=\"legend\"><span class=\"sw esc\"></span>"
	    "resolution target, escalated tickets<span class=\"sw fr\">"
	    "</span>first response, all tickets</div>\n");
	if (nb == 0)
		put(t, "<p class=\"none\">no tickets in this window</p>\n");
	else
		hbars(t, "SLA compliance by queue", b, nb);
	if (nq > shown)
		say(t, "<p class=\"more\">and %zu more queues</p>\n",
		    nq - shown);
	put(t, "</figure>\n");
}

static void
chart_csat(struct text *t, json_t *o)
{
	static const char *const which[] = { "escalated", "other" };
	static const char *const label[] = { "escalated", "not escalated" };
	struct hbar b[2];
	long long total = 0;

	for (int i = 0; i < 2; i++) {
		json_t *c = json_object_get(json_object_get(o, "csat"),
		    which[i]);
		json_t *mean = json_object_get(c, "mean");
		long long n = json_integer_value(json_object_get(c, "count"));

		total += n;
		b[i].label = label[i];
		b[i].cls = i == 0 ? "esc" : "all";
		b[i].frac = json_is_number(mean) ? json_number_value(mean) /
		    5.0 : -1;
		if (json_is_number(mean))
			snprintf(b[i].text, sizeof(b[i].text), "%.2f of 5 "
			    "(%lld rating%s)", json_number_value(mean), n,
			    n == 1 ? "" : "s");
		else
			snprintf(b[i].text, sizeof(b[i].text), "no ratings");
	}
	figure_open(t, "chart-csat", "CSAT, escalated vs not "
	    "<small>(mean rating, 1..5)</small>");
	if (total == 0)
		put(t, "<p class=\"none\">no ratings yet</p>\n");
	else
		hbars(t, "CSAT escalated versus not escalated", b, 2);
	put(t, "</figure>\n");
}

/* ---- counts per queue, team, severity ------------------------------------ */

struct key_count {
	const char *key;
	long long n;
};

static int
cmp_key_count(const void *a, const void *b)
{
	const struct key_count *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return strcmp(x->key, y->key);
}

static int
breakdown(struct text *t, json_t *by, const char *title)
{
	size_t n = json_object_size(by), i = 0, shown;
	struct key_count *v = calloc(n + 1, sizeof(*v));
	const char *key;
	json_t *val;

	if (v == NULL)
		return -1;
	json_object_foreach(by, key, val) {
		v[i].key = key;
		v[i++].n = (long long)json_integer_value(val);
	}
	qsort(v, n, sizeof(*v), cmp_key_count);
	shown = n < DASHBOARD_MAX_KEYS ? n : DASHBOARD_MAX_KEYS;
	say(t, "<div class=\"by\"><h3>%s</h3><table>", title);
	for (i = 0; i < shown; i++) {
		put(t, "<tr><td>");
		esc(t, v[i].key);
		say(t, "</td><td class=\"num\">%lld</td></tr>", v[i].n);
	}
	if (n == 0)
		put(t, "<tr><td class=\"none\">none</td></tr>");
	put(t, "</table>");
	if (n > shown)
		say(t, "<p class=\"more\">and %zu more</p>", n - shown);
	put(t, "</div>\n");
	free(v);
	return 0;
}

/* ---- the tickets escalated now ------------------------------------------- */

struct esc_list {
	struct text *t;
	int64_t now;
	size_t shown, more;
};

static void
due_cell(struct text *t, int64_t due, int64_t now)
{
	char when[CLOCK_RFC3339_LEN], d[32];

	if (due == 0) {
		put(t, "<td class=\"due\">-</td>");
		return;
	}
	clock_format(due, when);
	if (due < now)
		say(t, "<td class=\"due late\">%s<br><small>%s overdue"
		    "</small></td>", when, dashboard_duration(now - due, d,
		    sizeof(d)));
	else
		say(t, "<td class=\"due\">%s<br><small>in %s</small></td>",
		    when, dashboard_duration(due - now, d, sizeof(d)));
}

static int
esc_row(const struct ticket *tk, void *arg)
{
	struct esc_list *c = arg;
	struct text *t = c->t;

	if (c->shown >= DASHBOARD_MAX_ESCALATED) {
		c->more++;
		return 0;
	}
	c->shown++;
	say(t, "<tr><td class=\"ref\">ESC-%lld</td><td class=\"subj\">",
	    (long long)tk->id);
	esc_n(t, tk->subject, DASHBOARD_MAX_SUBJECT);
	put(t, "</td><td class=\"sev sev-");
	esc(t, tk->severity);
	put(t, "\">");
	esc(t, tk->severity);
	put(t, "</td><td>");
	esc(t, tk->queue);
	put(t, "</td><td>");
	esc(t, tk->team);
	say(t, "</td><td class=\"num\">%d</td><td>%s</td>", tk->level,
	    ticket_state_name(tk->state));
	due_cell(t, tk->due_first_response, c->now);
	due_cell(t, tk->due_next_update, c->now);
	due_cell(t, tk->due_resolution, c->now);
	put(t, "</tr>\n");
	return t->failed;
}

static int
escalated_now(struct text *t, struct store *st, int64_t now)
{
	static const char *const states[] = { "new", "open", "pending" };
	struct esc_list c = { t, now, 0, 0 };

	put(t, "<section id=\"escalated\"><h2>Escalated now "
	    "<small>(level 2 or more; new, open or pending)</small></h2>\n"
	    "<table><thead><tr><th>Ref</th><th>Subject</th><th>Severity</th>"
	    "<th>Queue</th><th>Team</th><th>Level</th><th>State</th>"
	    "<th>First response due</th><th>Next update due</th>"
	    "<th>Resolution due</th></tr></thead><tbody>\n");
	for (size_t i = 0; st != NULL && i < 3; i++) {
		struct ticket_filter f = { .state = states[i],
		    .escalated = 1 };
		if (store_ticket_list(st, &f, esc_row, &c) < 0)
			return -1;
	}
	if (c.shown == 0)
		put(t, "<tr><td colspan=\"10\" class=\"none\">no escalated "
		    "ticket is open</td></tr>\n");
	if (c.more > 0)
		say(t, "<tr><td colspan=\"10\" class=\"more\">and %zu more"
		    "</td></tr>\n", c.more);
	put(t, "</tbody></table></section>\n");
	return 0;
}

/* ---- the page ---------------------------------------------------------- */

static const char style[] =
    ":root{color-scheme:light}"
    "body{margin:0;background:#f4f5f7;color:#1f2328;font:14px/1.45 "
    "system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\","
    "Arial,sans-serif}"
    "header{background:#1f2937;color:#f9fafb;padding:10px 24px;"
    "display:flex;flex-wrap:wrap;gap:8px 24px;align-items:baseline}"
    "header h1{font-size:18px;margin:0}"
    "header .window{color:#cbd5e1;font-size:12px}"
    "nav a,nav strong{padding:2px 8px;border-radius:4px;color:#cbd5e1;"
    "text-decoration:none}"
    "nav a:hover{background:#374151}"
    "nav strong{background:#f9fafb;color:#1f2937}"
    "main{max-width:1320px;margin:0 auto;padding:14px 24px 32px}"
    "h2{font-size:16px;margin:22px 0 8px}h3{font-size:13px;margin:0 0 4px}"
    "small{font-weight:normal;color:#6e7781}"
    ".kpis{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(165px,1fr));gap:10px}"
    ".kpi,figure,.by{background:#fff;border:1px solid #d8dee4;"
    "border-radius:6px;padding:10px 12px}"
    ".kpi .k{font-size:12px;color:#57606a}"
    ".kpi .v{font-size:22px;font-weight:600;"
    "font-variant-numeric:tabular-nums}"
    ".kpi .n{font-size:11px;color:#6e7781}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(500px,1fr));gap:12px}"
    "figure{margin:0}figcaption{font-weight:600;margin-bottom:6px}"
    "svg{display:block;width:100%;height:auto}"
    "svg text{font:11px system-ui,sans-serif;fill:#57606a}"
    ".bar{fill:#2563eb}.bar.esc{fill:#ea580c}.bar.res{fill:#16a34a}"
    ".bar.fr{fill:#64748b}"
    ".hit{fill:transparent}.hit:hover{fill:rgba(0,0,0,.05)}"
    ".axis{stroke:#8c959f}.grid{stroke:#d8dee4;stroke-dasharray:3 3}"
    ".yl,.hl{text-anchor:end}.xl,.vl{text-anchor:middle}"
    ".legend{font-size:12px;color:#57606a}"
    ".sw{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}"
    ".sw.esc{background:#ea580c}.sw.fr{background:#64748b}"
    ".bys{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(220px,1fr));gap:12px}"
    "table{border-collapse:collapse;width:100%;background:#fff}"
    "#escalated table{border:1px solid #d8dee4}"
    "th,td{padding:5px 8px;border-bottom:1px solid #eaeef2;"
    "text-align:left;vertical-align:top}"
    "th{background:#f6f8fa;font-size:12px;color:#57606a}"
    ".by td{padding:2px 4px}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.ref{white-space:nowrap;font-weight:600}"
    "td.subj{max-width:28em;overflow-wrap:anywhere}"
    "td.due{white-space:nowrap;font-size:12px;"
    "font-variant-numeric:tabular-nums}"
    ".late,.late small{color:#b42318}"
    ".sev-critical{color:#b42318;font-weight:600}"
    ".sev-high{color:#b54708}"
    ".none,.more,.empty{color:#6e7781;font-style:italic}"
    ".empty{font-size:15px}"
    "footer{color:#6e7781;font-size:12px;margin-top:24px}";

static void
page_head(struct text *t, int days, int64_t from, int64_t now)
{
	static const int windows[] = { 7, 30, 90 };
	char a[CLOCK_RFC3339_LEN], b[CLOCK_RFC3339_LEN];

	say(t, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">"
	    "<meta http-equiv=\"Content-Security-Policy\" "
	    "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
	    "<meta name=\"robots\" content=\"noindex\">"
	    "<title>escalon: escalations, last %d days</title>\n"
	    "<style>%s</style></head><body>\n", days, style);
	put(t, "<header><h1>escalon</h1><nav>Last ");
	for (size_t i = 0; i < 3; i++) {
		if (windows[i] == days)
			say(t, "<strong aria-current=\"page\">%d days"
			    "</strong> ", days);
		else
			say(t, "<a href=\"/?days=%d\">%d days</a> ", windows[i],
			    windows[i]);
	}
	say(t, "</nav><span class=\"window\">tickets created %s .. %s"
	    "</span></header>\n<main>\n", clock_format(from, a),
	    clock_format(now, b));
}

char *
dashboard_render(struct store *st, const struct env *e, int64_t now,
    int days)
{
	struct text t = { 0 };
	struct report_rows r = { 0 };
	json_t *o = NULL;
	int64_t from, to;
	char at[CLOCK_RFC3339_LEN];
	int ok = 0;

	if (days < 1)
		days = 1;
	if (days > MAX_DAYS)
		days = MAX_DAYS;
	dashboard_window(now, days, &from, &to);
	if (st != NULL && (store_report_rows(st, from, to, report_rows_add, &r) < 0
	    || r.failed))
		goto out;
	if ((o = report_build(r.v, r.n, from, to)) == NULL)
		goto out;

	page_head(&t, days, from, now);
	if (r.n == 0)
		put(&t, "<p class=\"empty\" id=\"empty\">no tickets in this "
		    "window</p>\n");
	kpis(&t, o);

	put(&t, "<h2>Charts</h2><section class=\"charts\">\n");
	if (chart_per_day(&t, &r, from, days) < 0)
		goto out;
	chart_funnel(&t, &r, e);
	chart_distributions(&t, &r);
	chart_sla_by_queue(&t, &r);
	chart_csat(&t, o);
	put(&t, "</section>\n");

	put(&t, "<h2>Tickets by queue, team and severity</h2>"
	    "<section class=\"bys\">\n");
	if (breakdown(&t, json_object_get(o, "by_queue"), "Queue") < 0 ||
	    breakdown(&t, json_object_get(o, "by_team"), "Team") < 0 ||
	    breakdown(&t, json_object_get(o, "by_severity"), "Severity") < 0)
		goto out;
	put(&t, "</section>\n");

	if (escalated_now(&t, st, now) < 0)
		goto out;
	say(&t, "<footer>escalon dashboard, generated %s. Times are UTC; "
	    "percentiles are nearest-rank; durations are wall-clock."
	    "</footer>\n</main></body></html>\n", clock_format(now, at));
	ok = !t.failed;
out:
	json_decref(o);
	report_rows_release(&r);
	if (!ok) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

/* ---- GET / --------------------------------------------------------------- */

static const char bad_days[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>escalon: bad window</title></head><body>"
    "<p>days must be 7, 30 or 90: <a href=\"/?days=7\">7 days</a>, "
    "<a href=\"/?days=30\">30 days</a>, <a href=\"/?days=90\">90 days</a>."
    "</p></body></html>\n";

void
dashboard_page(struct api *a, struct http_req *req)
{
	const char *ds = http_req_query(req, "days");
	int days = DASHBOARD_DEFAULT_DAYS;
	char *html;

	if (!a->loopback && !api_authorized(a, req))
		return;
	if (ds != NULL && (days = dashboard_parse_days(ds)) < 0) {
		http_respond(req, 400, "text/html; charset=utf-8", bad_days,
		    sizeof(bad_days) - 1);
		return;
	}
	html = dashboard_render(a->store, a->env, clock_now(a->clock), days);
	if (html == NULL) {
		log_error("dashboard: cannot render", "days=%d error=%s", days,
		    log_q(store_error(a->store)));
		http_respond_error(req, 500, "cannot render the dashboard "
		    "(store unavailable?)");
		return;
	}
	http_respond(req, 200, "text/html; charset=utf-8", html,
	    strlen(html));
	free(html);
}
