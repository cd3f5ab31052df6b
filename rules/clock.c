/* clock: wall and fixed clocks, RFC 3339 in and out. See clock.h. */
#include "clock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t
system_now(void *arg)
{
	(void)arg;
	return (int64_t)time(NULL);
}

const struct clock clock_system = { system_now, NULL };

static int64_t
fixed_now(void *arg)
{
	return *(const int64_t *)arg;
}

void
clock_fixed_init(struct clock *c, int64_t *at)
{
	c->now = fixed_now;
	c->arg = at;
}

const char *
clock_format(int64_t t, char *buf)
{
	struct tm tm;
	time_t tt = (time_t)t;

	/* RFC 3339 has four-digit years: 0000 to 9999. */
	if (t < -62167219200LL)
		tt = (time_t)-62167219200LL;
	else if (t > 253402300799LL)
		tt = (time_t)253402300799LL;
	if (gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, CLOCK_RFC3339_LEN, "%lld", (long long)t);
		return buf;
	}
	snprintf(buf, CLOCK_RFC3339_LEN, "%04u-%02u-%02uT%02u:%02u:%02uZ",
	    (unsigned)(tm.tm_year + 1900) % 10000u,
	    (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
	    (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
	    (unsigned)tm.tm_sec % 100u);
	return buf;
}

static int
digits(const char **p, int n, int *v_r)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*v_r = v;
	return 0;
}

static int
expect(const char **p, const char *set)
{
	if (**p == '\0' || strchr(set, **p) == NULL)
		return -1;
	(*p)++;
	return 0;
}

int
clock_parse(const char *s, int64_t *t_r)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;

	if (digits(&p, 4, &y) < 0 || expect(&p, "-") < 0 ||
	    digits(&p, 2, &mo) < 0 || expect(&p, "-") < 0 ||
	    digits(&p, 2, &d) < 0 || expect(&p, "Tt ") < 0 ||
	    digits(&p, 2, &h) < 0 || expect(&p, ":") < 0 ||
	    digits(&p, 2, &mi) < 0 || expect(&p, ":") < 0 ||
	    digits(&p, 2, &sec) < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (digits(&p, 2, &oh) < 0 || expect(&p, ":") < 0 ||
		    digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
			return -1;
	} else {
		return -1;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	/* timegm normalises 31 February into March: refuse such dates. */
	int64_t t = (int64_t)timegm(&tm);
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return -1;
	*t_r = t - sign * (oh * 3600 + om * 60);
	return 0;
}
