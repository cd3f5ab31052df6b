/*
 * calendar: business time in one zone. See calendar.h for the rules.
 *
 * Model. Days are local dates numbered like Unix days (0 = 1970-01-01,
 * proleptic Gregorian). Each weekday has a sorted list of disjoint wall
 * periods [start, end) in seconds from that date's midnight, end up to
 * 48 h for a period that crosses midnight; the periods of one weekday are
 * merged when the calendar is made. The open intervals of date D are those
 * periods mapped to instants (rule 3 of calendar.h) unless D is a holiday.
 *
 * Invariants the walks in calendar_add and calendar_between rely on:
 *
 *  1. The wall-to-instant map is non-decreasing (skipped wall times go to
 *     the end of the gap, repeated ones to their first occurrence), so the
 *     intervals of one date are sorted and disjoint, and every interval of
 *     date D starts no later than any interval of date D + 1.
 *  2. An interval of date D lies within [midnight(D), midnight(D + 2)):
 *     a period starts before 24:00 and lasts at most 24 h of wall time.
 *     Intervals of D - 1 and D may overlap (a night period and an early
 *     one); the walks keep a cursor (the latest end seen) and count only
 *     what lies past it, so overlaps count once.
 *  3. The local date of instant t is within one day of t's UTC date
 *     (zone offsets are under 24 h), so a walk that must see every
 *     interval containing t starts at UTC date(t) - 2.
 *  4. A cache entry holds the intervals of exactly the date in its `day`
 *     field, relative to day * 86400; it is filled in whole by day_fill.
 */
#include "calendar.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#define DAY_SECS	86400
/* Open dates: [DAY_FIRST, DAY_END) = [1970-01-02, 2200-01-01) (rule 4). */
#define DAY_FIRST	1
#define DAY_END		84006
/* Every instant in [SAFE_LO, SAFE_HI] has a local date in that range. */
#define SAFE_LO		((int64_t)(DAY_FIRST + 1) * DAY_SECS)
#define SAFE_HI		((int64_t)(DAY_END - 1) * DAY_SECS)
/* No interval ends after this (invariant 2, with room to spare). */
#define LAST_OPEN	((int64_t)(DAY_END + 2) * DAY_SECS)

#define CACHE_SIZE	1024		/* dates (2.8 years); a power of two */
#define NO_DAY		INT32_MIN

struct period {
	int32_t start, end;	/* wall seconds from the date's midnight */
};

struct day_entry {
	int32_t day;		/* NO_DAY when empty */
	int32_t n;
	int32_t iv[CALENDAR_MAX_PERIODS][2];	/* from day * 86400 */
};

struct calendar {
	char zone[CALENDAR_MAX_ZONE + 1];
	UCalendar *ucal;
	int always_open;		/* 24x7 without holidays */
	int n_week[7];			/* 0 = monday */
	struct period week[7][CALENDAR_MAX_PERIODS];
	int32_t *holidays;		/* sorted, unique day numbers */
	size_t n_holidays;
	struct day_entry cache[CACHE_SIZE];	/* mutable behind const */
};

static const char *const day_names[7] = {
	"mon", "tue", "wed", "thu", "fri", "sat", "sun"
};

/* ---- dates ------------------------------------------------------------- */

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* 0 = monday; day 0 (1970-01-01) was a thursday. */
static int
weekday(int64_t day)
{
	return (int)(((day + 3) % 7 + 7) % 7);
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y_r, int *m_r, int *d_r)
{
	int64_t era, doe, yoe, y, doy, mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d_r = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m_r = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y_r = (int)(y + (*m_r <= 2));
}

/* ---- parsing ----------------------------------------------------------- */

static char *
errorf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static int
day_index(const char *p)
{
	for (int i = 0; i < 7; i++)
		if (strncmp(p, day_names[i], 3) == 0 &&
		    !isalpha((unsigned char)p[3]))
			return i;
	return -1;
}

/* "HH:MM" -> seconds; 24:00 only when ALLOW_24 (the end of a period). */
static int
parse_hhmm(const char **pp, int allow_24)
{
	const char *p = *pp;
	int h, m;

	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
	    p[2] != ':' || !isdigit((unsigned char)p[3]) ||
	    !isdigit((unsigned char)p[4]))
		return -1;
	h = (p[0] - '0') * 10 + (p[1] - '0');
	m = (p[3] - '0') * 10 + (p[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
		return -1;
	*pp = p + 5;
	return (h * 60 + m) * 60;
}

/*
 * "DAY[-DAY] HH:MM-HH:MM": the grammar of conf.c's hours check. Sets the
 * weekday bits of *days_r and the period; NULL, or what is wrong.
 */
static const char *
parse_hours(const char *s, unsigned *days_r, struct period *p_r)
{
	const char *p = s;
	int first, last, start, end;

	if ((first = day_index(p)) < 0)
		return "unknown day";
	last = first;
	p += 3;
	if (*p == '-') {
		if ((last = day_index(++p)) < 0)
			return "unknown day";
		p += 3;
	}
	if (*p != ' ' && *p != '\t')
		return "expected a space after the days";
	while (*p == ' ' || *p == '\t')
		p++;
	if ((start = parse_hhmm(&p, 0)) < 0)
		return "bad start time";
	if (*p++ != '-')
		return "expected HH:MM-HH:MM";
	if ((end = parse_hhmm(&p, 1)) < 0)
		return "bad end time";
	if (*p != '\0')
		return "unexpected text after the times";
	if (start == end)
		return "the period is empty";
	*days_r = 0;
	for (int d = first;; d = (d + 1) % 7) {
		*days_r |= 1u << d;
		if (d == last)
			break;
	}
	p_r->start = start;
	p_r->end = end > start ? end : end + DAY_SECS;
	return NULL;
}

/* "YYYY-MM-DD" in 1970..9999 -> day number; -1 if not a real date. */
static int
parse_date(const char *s, int32_t *day_r)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int y, m, d, dim;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return -1;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return -1;
	dim = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		dim = 29;
	if (d > dim)
		return -1;
	*day_r = (int32_t)days_from_civil(y, m, d);
	return 0;
}

static int
cmp_period(const void *a, const void *b)
{
	const struct period *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

static int
cmp_day(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* Sort and merge the N periods at P in place; returns the new count. */
static int
merge_periods(struct period *p, int n)
{
	int out = 0;

	qsort(p, (size_t)n, sizeof(*p), cmp_period);
	for (int i = 0; i < n; i++) {
		if (out > 0 && p[i].start <= p[out - 1].end) {
			if (p[i].end > p[out - 1].end)
				p[out - 1].end = p[i].end;
		} else {
			p[out++] = p[i];
		}
	}
	return out;
}

/* ---- the zone ---------------------------------------------------------- */

int
calendar_zone_valid(const char *zone)
{
	UChar uz[CALENDAR_MAX_ZONE + 1], canon[CALENDAR_MAX_ZONE * 2];
	UErrorCode st = U_ZERO_ERROR;
	UBool is_system = 0;
	size_t len = strlen(zone);

	if (len == 0 || len > CALENDAR_MAX_ZONE)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)zone[i]) || (zone[i] & 0x80))
			return 0;
	u_uastrcpy(uz, zone);
	/* ICU maps an unknown id to "Etc/Unknown" (GMT) rather than fail;
	 * the canonical-id look-up fails instead, and custom ids such as
	 * "GMT+05:00" are not system (IANA) zones. */
	ucal_getCanonicalTimeZoneID(uz, -1, canon,
	    (int32_t)(sizeof(canon) / sizeof(canon[0])), &is_system, &st);
	return !U_FAILURE(st) && is_system;
}

const char *
calendar_hours_error(const char *spec)
{
	struct period p;
	unsigned days;

	return parse_hours(spec, &days, &p);
}

int
calendar_date_valid(const char *date)
{
	int32_t day;

	return parse_date(date, &day) == 0;
}

/* NULL, or what is wrong with ZONE; opens c->ucal. */
static const char *
open_zone(struct calendar *c, const char *zone)
{
	UChar uz[CALENDAR_MAX_ZONE + 1];
	UErrorCode st = U_ZERO_ERROR;

	if (!calendar_zone_valid(zone))
		return "unknown time zone";
	memcpy(c->zone, zone, strlen(zone) + 1);
	u_uastrcpy(uz, zone);
	c->ucal = ucal_open(uz, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st) || c->ucal == NULL)
		return "ICU cannot open the time zone";
	ucal_setAttribute(c->ucal, UCAL_LENIENT, 1);
	ucal_setAttribute(c->ucal, UCAL_SKIPPED_WALL_TIME,
	    UCAL_WALLTIME_NEXT_VALID);
	ucal_setAttribute(c->ucal, UCAL_REPEATED_WALL_TIME,
	    UCAL_WALLTIME_FIRST);
	return NULL;
}

/*
 * The instant of wall time SECS (0 .. 48 h) after the midnight of local
 * date DAY (rule 3). 0 and the instant, or -1 if ICU fails.
 */
static int
wall_to_instant(struct calendar *c, int64_t day, int32_t secs, int64_t *t_r)
{
	UErrorCode st = U_ZERO_ERROR;
	UDate ms;
	int y, m, d;

	day += secs / DAY_SECS;
	secs %= DAY_SECS;
	civil_from_days(day, &y, &m, &d);
	ucal_clear(c->ucal);
	ucal_setDateTime(c->ucal, y, m - 1, d, secs / 3600, secs / 60 % 60,
	    secs % 60, &st);
	ms = ucal_getMillis(c->ucal, &st);
	if (U_FAILURE(st))
		return -1;
	/* Zone offsets are whole seconds: the division is exact. */
	*t_r = floor_div((int64_t)ms, 1000);
	return 0;
}

/* ---- the day cache ----------------------------------------------------- */

static int
is_holiday(const struct calendar *c, int32_t day)
{
	return c->n_holidays > 0 && bsearch(&day, c->holidays, c->n_holidays,
	    sizeof(day), cmp_day) != NULL;
}

/* Invariant 4. A period ICU cannot map is left out (the date is closed
 * for it): that needs a broken ICU, and failing one date beats failing
 * every SLA of the calendar. */
static void
day_fill(struct calendar *c, struct day_entry *e, int32_t day)
{
	const int w = weekday(day);
	const int64_t base = (int64_t)day * DAY_SECS;
	int64_t s, t;

	e->day = day;
	e->n = 0;
	if (day < DAY_FIRST || day >= DAY_END || is_holiday(c, day))
		return;
	for (int i = 0; i < c->n_week[w]; i++) {
		if (wall_to_instant(c, day, c->week[w][i].start, &s) < 0 ||
		    wall_to_instant(c, day, c->week[w][i].end, &t) < 0 ||
		    t <= s)	/* all of it in a DST gap */
			continue;
		e->iv[e->n][0] = (int32_t)(s - base);
		e->iv[e->n][1] = (int32_t)(t - base);
		e->n++;
	}
}

static const struct day_entry *
day_get(struct calendar *c, int32_t day)
{
	struct day_entry *e = &c->cache[(uint32_t)day & (CACHE_SIZE - 1)];

	if (e->day != day)
		day_fill(c, e, day);
	return e;
}

/* ---- the interface ----------------------------------------------------- */

struct calendar *
calendar_new(const char *timezone, const char *const *hours, size_t n_hours,
    const char *const *holidays, size_t n_holidays, char **error_r)
{
	struct calendar *c;
	struct period p;
	unsigned days;
	const char *why;
	char *err = NULL;
	size_t i, n;
	int w, rc = -1;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		err = errorf("out of memory");
		goto out;
	}
	for (i = 0; i < CACHE_SIZE; i++)
		c->cache[i].day = NO_DAY;
	if (timezone == NULL) {
		err = errorf("no time zone");
		goto out;
	}
	if ((why = open_zone(c, timezone)) != NULL) {
		err = errorf("%s \"%s\" (use an IANA name such as "
		    "Europe/Berlin or UTC)", why, timezone);
		goto out;
	}
	if (n_hours > CALENDAR_MAX_HOURS) {
		err = errorf("too many hours (%zu, at most %d)", n_hours,
		    CALENDAR_MAX_HOURS);
		goto out;
	}
	for (i = 0; i < n_hours; i++) {
		if ((why = parse_hours(hours[i], &days, &p)) != NULL) {
			err = errorf("bad hours \"%s\": %s (write \"mon-fri "
			    "09:00-17:00\" or \"sat 10:00-14:00\")", hours[i],
			    why);
			goto out;
		}
		for (w = 0; w < 7; w++) {
			if (!(days & (1u << w)))
				continue;
			if (c->n_week[w] == CALENDAR_MAX_PERIODS)
				c->n_week[w] = merge_periods(c->week[w],
				    c->n_week[w]);
			if (c->n_week[w] == CALENDAR_MAX_PERIODS) {
				err = errorf("too many periods on %s (at most "
				    "%d)", day_names[w], CALENDAR_MAX_PERIODS);
				goto out;
			}
			c->week[w][c->n_week[w]++] = p;
		}
	}
	c->always_open = n_holidays == 0;
	for (w = 0; w < 7; w++) {
		c->n_week[w] = merge_periods(c->week[w], c->n_week[w]);
		if (c->n_week[w] == 0 || c->week[w][0].start != 0 ||
		    c->week[w][0].end < DAY_SECS)
			c->always_open = 0;
	}
	if (n_holidays > CALENDAR_MAX_HOLIDAYS) {
		err = errorf("too many holidays (%zu, at most %d)", n_holidays,
		    CALENDAR_MAX_HOLIDAYS);
		goto out;
	}
	if (n_holidays > 0 &&
	    (c->holidays = calloc(n_holidays, sizeof(*c->holidays))) == NULL) {
		err = errorf("out of memory");
		goto out;
	}
	for (i = 0; i < n_holidays; i++) {
		if (parse_date(holidays[i], &c->holidays[i]) < 0) {
			err = errorf("bad holiday \"%s\" (write a real date as "
			    "YYYY-MM-DD)", holidays[i]);
			goto out;
		}
	}
	if (n_holidays > 0)
		qsort(c->holidays, n_holidays, sizeof(*c->holidays), cmp_day);
	for (i = 0, n = 0; i < n_holidays; i++)
		if (n == 0 || c->holidays[i] != c->holidays[n - 1])
			c->holidays[n++] = c->holidays[i];
	c->n_holidays = n;
	rc = 0;
out:
	if (rc < 0) {
		calendar_free(&c);
		if (error_r != NULL)
			*error_r = err;
		else
			free(err);
	}
	return c;
}

void
calendar_free(struct calendar **cp)
{
	struct calendar *c = *cp;

	if (c == NULL)
		return;
	if (c->ucal != NULL)
		ucal_close(c->ucal);
	free(c->holidays);
	free(c);
	*cp = NULL;
}

const char *
calendar_timezone(const struct calendar *c)
{
	return c->zone;
}

int64_t
calendar_add(const struct calendar *cc, int64_t from, int64_t seconds)
{
	struct calendar *c = (struct calendar *)cc;	/* the cache */
	int64_t start, limit, cursor, remaining, day, last, s, e, base;
	const struct day_entry *de;

	if (seconds <= 0)
		return from;
	/* Open time never runs faster than real time. */
	if (seconds > CALENDAR_HORIZON || from >= LAST_OPEN)
		return -1;
	start = from < 0 ? 0 : from;	/* nothing opens before 1970-01-02 */
	limit = from + CALENDAR_HORIZON;
	if (start > limit)
		return -1;
	if (c->always_open && start >= SAFE_LO && start + seconds <= SAFE_HI)
		return start + seconds - from > CALENDAR_HORIZON ? -1 :
		    start + seconds;

	day = floor_div(start, DAY_SECS) - 2;	/* invariant 3 */
	if (day < DAY_FIRST)
		day = DAY_FIRST;
	last = floor_div(limit, DAY_SECS) + 1;
	if (last > DAY_END - 1)
		last = DAY_END - 1;
	cursor = start;
	remaining = seconds;
	for (; day <= last; day++) {
		if (c->n_week[weekday(day)] == 0)
			continue;
		de = day_get(c, (int32_t)day);
		base = day * DAY_SECS;
		for (int i = 0; i < de->n; i++) {
			s = base + de->iv[i][0];
			e = base + de->iv[i][1];
			if (s < cursor)
				s = cursor;
			if (e <= s)
				continue;
			if (e - s >= remaining) {
				s += remaining;
				return s - from > CALENDAR_HORIZON ? -1 : s;
			}
			remaining -= e - s;
			cursor = e;
		}
	}
	return -1;
}

int64_t
calendar_between(const struct calendar *cc, int64_t a, int64_t b)
{
	struct calendar *c = (struct calendar *)cc;	/* the cache */
	int64_t total = 0, cursor, day, last, s, e, base;
	const struct day_entry *de;

	/* Closed outside the open dates: clamping changes nothing. */
	if (a < 0)
		a = 0;
	if (b > LAST_OPEN)
		b = LAST_OPEN;
	if (b <= a)
		return 0;
	if (c->always_open && a >= SAFE_LO && b <= SAFE_HI)
		return b - a;

	day = floor_div(a, DAY_SECS) - 2;	/* invariant 3 */
	if (day < DAY_FIRST)
		day = DAY_FIRST;
	last = floor_div(b, DAY_SECS) + 1;
	if (last > DAY_END - 1)
		last = DAY_END - 1;
	cursor = a;
	for (; day <= last; day++) {
		if (c->n_week[weekday(day)] == 0)
			continue;
		de = day_get(c, (int32_t)day);
		base = day * DAY_SECS;
		for (int i = 0; i < de->n; i++) {
			s = base + de->iv[i][0];
			e = base + de->iv[i][1];
			if (s >= b)
				return total;	/* invariant 1 */
			if (s < cursor)
				s = cursor;
			if (e <= s)
				continue;
			total += (e < b ? e : b) - s;
			if ((cursor = e) >= b)
				return total;
		}
	}
	return total;
}
