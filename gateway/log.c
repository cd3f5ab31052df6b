/* log: logfmt lines on stderr. See log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(enum log_level min)
{
	min_level = min;
}

void
log_event(enum log_level level, const char *msg, const char *fmt, ...)
{
	char ts[32], tail[2048] = "";
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	if (level < min_level)
		return;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (fmt != NULL && fmt[0] != '\0') {
		tail[0] = ' ';
		va_start(ap, fmt);
		vsnprintf(tail + 1, sizeof(tail) - 1, fmt, ap);
		va_end(ap);
	}
	/* One write per line, so lines from several processes never mix. */
	char line[2300];
	int n = snprintf(line, sizeof(line), "ts=%s level=%s msg=%s%s\n", ts,
	    level_names[level], log_q(msg), tail);
	if (n > (int)sizeof(line) - 1) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	fwrite(line, 1, (size_t)n, stderr);
	fflush(stderr);
}

const char *
log_q(const char *s)
{
	static char ring[8][256];
	static int next;
	char *out = ring[next++ % 8];
	size_t o = 0, cap = sizeof(ring[0]) - 2;

	if (s == NULL)
		s = "";
	out[o++] = '"';
	for (; *s != '\0' && o < cap - 4; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[o++] = ' ';
		} else {
			out[o++] = (char)c;
		}
	}
	if (*s != '\0') {
		out[o++] = '.';
		out[o++] = '.';
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
