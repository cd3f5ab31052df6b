/*
 * log: one logfmt line per event on stderr:
 *   ts=2026-12-01T09:30:00Z level=info msg="webhook accepted" ticket=5
 * The caller formats the key=value tail; values that come from outside go
 * through log_q(), which quotes, strips control characters and truncates.
 * Never pass bodies, passwords or tokens at info level.
 */
#ifndef ESCALON_LOG_H
#define ESCALON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level min);

void log_event(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(msg, ...) log_event(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_event(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_event(LOG_ERROR, msg, __VA_ARGS__)

/*
 * A quoted, sanitised copy of s for a value, from a small ring of buffers:
 * valid until eight more calls; enough for one log line.
 */
const char *log_q(const char *s);

#endif
