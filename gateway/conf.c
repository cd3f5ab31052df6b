/*
 * conf: read escalon's configuration file (SPEC.md "Configuration") with
 * libconfuse, check it, and copy it into the plain structs of conf.h.
 *
 * This is the only file that sees cfg_t. conf_load() parses, checks every
 * value and every cross-reference, copies everything into a struct conf and
 * frees the cfg_t before it returns. The struct conf owns all its strings and
 * arrays; conf_free() releases them. Nothing here prints: every problem
 * becomes the one error string handed back, "FILE:LINE: message" (the first
 * problem found wins).
 *
 * Line numbers. libconfuse keeps no line per option once parsing is done, yet
 * a dangling reference must be reported on the line of the key that names the
 * missing thing. So every option gets the same validate callback, note_line():
 * libconfuse calls it right after storing a value, while cfg->line is still
 * that value's line, and it records (section, key, list index) -> line in a
 * side table (struct line_rec). A section's own line is taken from its
 * parent: libconfuse counts lines in the section being read and leaves the
 * parent's counter on the line of the opening brace until the section closes.
 * libconfuse's callbacks carry no user pointer, hence the thread-local `cur`
 * that points at the load in progress. (conf_load is still for one thread at
 * a time: libconfuse's lexer keeps global state.)
 *
 * libconfuse's own messages (unknown key, bad integer, duplicate title ...)
 * arrive in capture_error(), which rewords the common ones. The file (at most
 * CONF_MAX_FILE bytes) is read into memory first, to work around three
 * libconfuse weak spots:
 *   - libconfuse 3.3 miscounts lines after every comment: comments are
 *     blanked out before it sees the text (blank_comments());
 *   - a missing "}" in the middle of the file shows up as an unknown key on
 *     the next section's line; when that key belongs to an enclosing section
 *     the message says a "}" is missing and where the section opened;
 *   - a missing "}" at the end of the file is silently accepted by
 *     libconfuse; the text is given a final newline, so a section that
 *     closes on the line after the last newline was closed by the end of the
 *     file, not by a brace.
 *
 * Decisions not fixed by SPEC.md, as an operator would expect them:
 *   - Level 1 of a ladder is where tickets start: `after` and `on_breach`
 *     mean "how to get here" and so make no sense on it. `after = "0"` and
 *     `on_breach = {}` are accepted there (they say the same thing); anything
 *     else is an error.
 *   - Queues need team, sla and ladder; slas need a calendar and the three
 *     targets; calendars need at least one `hours` line (timezone defaults to
 *     UTC); teams need at least one agent; notify sections at least one event;
 *     rules at least one condition and one action.
 *   - mailbox and xmpp default to tls = "starttls" (ports 143 and 5222;
 *     993 and 5223 for tls = "tls"); xmpp `host` defaults to the JID's domain;
 *     an agent's `name` defaults to its section title; an smtps:// url means
 *     tls = "tls".
 *   - Durations are at most 3650d and sizes at most 1G, so that the rest of
 *     the gateway can add them to times and buffers without overflow.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <confuse.h>

#include "conf.h"
#include "rules.h"

#include "calendar.h"

#define CONF_MAX_FILE	(1024 * 1024)		/* bytes of config */
#define CONF_MAX_DUR	(3650LL * 86400)	/* seconds */
#define CONF_MAX_SIZE	(1LL << 30)		/* bytes */
#define CONF_MAX_LEVELS	20

#define DURATION_HINT	"use 45s, 15m, 4h, 2d or sums like 1h30m"

/* The line where (sec, key, idx) was set; key NULL: where sec opened. */
struct line_rec {
	const cfg_t *sec;
	const char *key;	/* borrowed from the cfg_opt_t, lives as long */
	unsigned idx;
	int line;
};

struct load {
	const char *path;	/* as given, for messages */
	char *error;		/* the first error, "FILE:LINE: message" */
	cfg_t *root;
	int eof_line;		/* the line after the last newline */

	struct line_rec *lines;
	size_t n_lines, cap_lines;

	/*
	 * libconfuse calls the validate callback of a list once per element and
	 * once more at its closing brace; the last call repeats the one before
	 * it and must not move the last element's line to the brace.
	 */
	const cfg_t *prev_sec;
	const cfg_opt_t *prev_opt;
	unsigned prev_n;
};

static _Thread_local struct load *cur;

static const char *const severity_names[] = {
	"low", "normal", "high", "critical", NULL
};
static const char *const channel_names[] = { "email", "chat", "webhook", NULL };
static const char *const event_names[] = {
	"ticket.created", "ticket.escalated", "ticket.resolved",
	"ticket.reopened", "sla.warning", "sla.breached", NULL
};
static const char *const clock_names[] = {
	"first_response", "next_update", "resolution", NULL
};
static const char *const field_names[] = {
	"channel", "from", "from_domain", "subject", "body", "severity",
	"queue", "customer", "tag", NULL
};
static const char *const op_names[] = { "=", "!=", "~", "~*", NULL };

static int
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

/* ---- the line table ---------------------------------------------------- */

static struct line_rec *
find_rec(struct load *ld, const cfg_t *sec, const char *key, unsigned idx)
{
	size_t i;

	for (i = 0; i < ld->n_lines; i++) {
		struct line_rec *r = &ld->lines[i];

		if (r->sec != sec || r->idx != idx)
			continue;
		if (key == NULL ? r->key == NULL :
		    r->key != NULL && strcmp(r->key, key) == 0)
			return r;
	}
	return NULL;
}

static int
set_rec(struct load *ld, const cfg_t *sec, const char *key, unsigned idx,
    int line)
{
	struct line_rec *r = find_rec(ld, sec, key, idx);

	if (r == NULL) {
		if (ld->n_lines == ld->cap_lines) {
			size_t cap = ld->cap_lines ? ld->cap_lines * 2 : 64;
			void *p = realloc(ld->lines, cap * sizeof(*ld->lines));

			if (p == NULL)
				return -1;
			ld->lines = p;
			ld->cap_lines = cap;
		}
		r = &ld->lines[ld->n_lines++];
		r->sec = sec;
		r->key = key;
		r->idx = idx;
	}
	r->line = line;
	return 0;
}

/* The section holding SEC (searched from P down), or NULL for the root. */
static cfg_t *
parent_of(cfg_t *p, const cfg_t *sec)
{
	cfg_opt_t *o;
	unsigned i;

	for (o = p->opts; o->name != NULL; o++) {
		if (o->type != CFGT_SEC)
			continue;
		for (i = 0; i < o->nvalues; i++) {
			cfg_t *s = o->values[i]->section;
			cfg_t *found;

			if (s == sec)
				return p;
			if ((found = parent_of(s, sec)) != NULL)
				return found;
		}
	}
	return NULL;
}

/* Where SEC opened; 0 for the root, which has no line of its own. */
static int
sec_line(struct load *ld, cfg_t *sec)
{
	struct line_rec *r;

	if (sec == ld->root)
		return 0;
	r = find_rec(ld, sec, NULL, 0);
	return r != NULL ? r->line : sec->line;
}

/* Where KEY was set in SEC; the section's line when it keeps its default. */
static int
key_line(struct load *ld, cfg_t *sec, const char *key, unsigned idx)
{
	struct line_rec *r = find_rec(ld, sec, key, idx);

	if (r == NULL && idx > 0)
		r = find_rec(ld, sec, key, 0);
	return r != NULL ? r->line : sec_line(ld, sec);
}

static int
key_is_set(struct load *ld, cfg_t *sec, const char *key)
{
	return find_rec(ld, sec, key, 0) != NULL;
}

/* ---- errors ------------------------------------------------------------ */

static int __attribute__((format(printf, 4, 0)))
vfail(struct load *ld, int line, const char *prefix, const char *fmt,
    va_list ap)
{
	char *msg = NULL, *full = NULL;
	int n;

	if (ld->error != NULL)
		return -1;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (line > 0)
		n = asprintf(&full, "%s:%d: %s%s", ld->path, line, prefix,
		    msg ? msg : "out of memory");
	else
		n = asprintf(&full, "%s: %s%s", ld->path, prefix,
		    msg ? msg : "out of memory");
	ld->error = n < 0 ? NULL : full;
	free(msg);
	return -1;
}

static int __attribute__((format(printf, 3, 4)))
fail(struct load *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(ld, line, "", fmt, ap);
	va_end(ap);
	return -1;
}

static int
nomem(struct load *ld)
{
	return fail(ld, 0, "out of memory");
}

/*
 * What a message is about: `queue "general": `, `smtp: `,
 * `ladder "default": level 2: `, or nothing for top-level keys.
 */
static void
subject(struct load *ld, cfg_t *sec, char *buf, size_t size)
{
	cfg_t *p;

	buf[0] = '\0';
	if (sec == NULL || sec == ld->root)
		return;
	if (strcmp(sec->name, "level") == 0 &&
	    (p = parent_of(ld->root, sec)) != NULL && p->title != NULL) {
		snprintf(buf, size, "ladder \"%s\": level %s: ", p->title,
		    sec->title ? sec->title : "?");
		return;
	}
	if (sec->title != NULL)
		snprintf(buf, size, "%s \"%s\": ", sec->name, sec->title);
	else
		snprintf(buf, size, "%s: ", sec->name);
}

static int __attribute__((format(printf, 4, 5)))
fail_at(struct load *ld, cfg_t *sec, int line, const char *fmt, ...)
{
	char prefix[512];
	va_list ap;

	subject(ld, sec, prefix, sizeof(prefix));
	va_start(ap, fmt);
	vfail(ld, line, prefix, fmt, ap);
	va_end(ap);
	return -1;
}

/* An error about KEY (element IDX of a list) in SEC, on the line it names. */
static int __attribute__((format(printf, 5, 6)))
fail_key(struct load *ld, cfg_t *sec, const char *key, unsigned idx,
    const char *fmt, ...)
{
	char prefix[512];
	va_list ap;

	subject(ld, sec, prefix, sizeof(prefix));
	va_start(ap, fmt);
	vfail(ld, key_line(ld, sec, key, idx), prefix, fmt, ap);
	va_end(ap);
	return -1;
}

static const cfg_opt_t *
key_of(const cfg_t *sec, const char *name)
{
	const cfg_opt_t *o;

	for (o = sec->opts; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/*
 * NAME is no key of SEC. When it opens a section around SEC, the real
 * mistake is the "}" missing before it: say so rather than "unknown key".
 * A plain key of an enclosing section may as well be in the wrong place, so
 * that message only suggests the brace.
 */
static void
unknown_key(struct load *ld, cfg_t *sec, const char *name)
{
	cfg_t *parent = parent_of(ld->root, sec), *p;

	/* Only a quoted string can hold blanks where a key should be. */
	if (name[strcspn(name, " \t\r\n")] != '\0') {
		fail_at(ld, sec, sec->line, "expected a key, found a quoted "
		    "string (a quote too many or too few before here?)");
		return;
	}
	for (p = parent; p != NULL; p = parent_of(ld->root, p)) {
		const cfg_opt_t *o = key_of(p, name);

		/* The parent still sits on the line of our "{". */
		if (o != NULL && o->type == CFGT_SEC) {
			fail_at(ld, sec, sec->line, "missing \"}\" before \"%s\" "
			    "(the section opened on line %d)", name,
			    parent->line);
			return;
		}
		if (o != NULL) {
			fail_at(ld, sec, sec->line, "unknown key \"%s\" here; if "
			    "it belongs outside, a \"}\" is missing before it "
			    "(the section opened on line %d)", name,
			    parent->line);
			return;
		}
		if (p == ld->root)
			break;
	}
	fail_at(ld, sec, sec->line, "unknown key \"%s\"", name);
}

static void
duplicate_title(struct load *ld, cfg_t *parent, const char *title)
{
	const char *kind = NULL;
	cfg_t *first = NULL;
	cfg_opt_t *o;
	unsigned i;
	int kinds = 0;

	for (o = parent->opts; o->name != NULL; o++) {
		if (o->type != CFGT_SEC || !(o->flags & CFGF_TITLE))
			continue;
		for (i = 0; i < o->nvalues; i++) {
			cfg_t *s = o->values[i]->section;

			if (s->title != NULL && strcmp(s->title, title) == 0) {
				kind = o->name;
				first = s;
				kinds++;
				break;
			}
		}
	}
	if (kinds == 1)
		fail_at(ld, parent, parent->line, "duplicate %s \"%s\" (first "
		    "defined on line %d)", kind, title, sec_line(ld, first));
	else
		fail_at(ld, parent, parent->line, "duplicate title \"%s\"",
		    title);
}

/* libconfuse's messages that take one string, in our words. */
static const struct {
	const char *theirs, *ours;
} rewordings[] = {
	{ "invalid integer value for option '%s'", "%s is not a whole number" },
	{ "integer value for option '%s' is out of range",
	    "%s is out of range" },
	{ "invalid boolean value for option '%s'",
	    "%s is not a boolean (use true or false)" },
	{ "missing equal sign after option '%s'", "missing \"=\" after %s" },
	{ "missing opening brace for section '%s'", "missing \"{\" after %s" },
	{ "missing title for section '%s'",
	    "missing name after %s (write: %s \"NAME\" { ... })" },
	{ "attempt to append to non-list option '%s'",
	    "%s is not a list, \"+=\" does not apply" },
	{ "unexpected token '%s'", "unexpected \"%s\"" },
};

static void
capture_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	struct load *ld = cur;
	const char *arg;
	size_t i;

	if (ld == NULL || ld->error != NULL)
		return;
	if (strcmp(fmt, "no such option '%s'") == 0) {
		unknown_key(ld, cfg, va_arg(ap, const char *));
		return;
	}
	/* A key with '|' or '=' in it reads as a path into sub-sections. */
	if (strcmp(fmt, "no sub-section title/index for '%s'") == 0) {
		unknown_key(ld, cfg, va_arg(ap, const char *));
		return;
	}
	if (strcmp(fmt, "no sub-section '%s' in '%s'") == 0) {
		(void)va_arg(ap, const char *);
		unknown_key(ld, cfg, va_arg(ap, const char *));
		return;
	}
	if (strcmp(fmt, "found duplicate title '%s'") == 0) {
		duplicate_title(ld, cfg, va_arg(ap, const char *));
		return;
	}
	if (strcmp(fmt, "premature end of file") == 0) {
		/* The last line, not the empty one after its newline. */
		fail_at(ld, cfg, cfg->line < ld->eof_line ? cfg->line :
		    ld->eof_line - 1, "the file ends too early (a value, a "
		    "list or a \"{\" is missing)");
		return;
	}
	if (strcmp(fmt, "unexpected closing brace") == 0) {
		fail_at(ld, cfg, cfg->line, "\"}\" without a section to close");
		return;
	}
	for (i = 0; i < sizeof(rewordings) / sizeof(rewordings[0]); i++) {
		if (strcmp(fmt, rewordings[i].theirs) != 0)
			continue;
		arg = va_arg(ap, const char *);
		/* Some wordings name the key twice. */
		fail_at(ld, cfg, cfg->line, rewordings[i].ours, arg, arg);
		return;
	}
	{
		char prefix[512];

		subject(ld, cfg, prefix, sizeof(prefix));
		vfail(ld, cfg->line, prefix, fmt, ap);
	}
}

/* ---- the parse-time callback -------------------------------------------- */

/*
 * Record where SEC opened, the first time something inside it is seen: its
 * parent's line counter still sits on SEC's "{" until SEC closes.
 */
static int
note_open(struct load *ld, cfg_t *sec)
{
	cfg_t *parent;

	if (sec == ld->root || find_rec(ld, sec, NULL, 0) != NULL ||
	    (parent = parent_of(ld->root, sec)) == NULL)
		return 0;
	return set_rec(ld, sec, NULL, 0, parent->line);
}

static int
note_line(cfg_t *cfg, cfg_opt_t *opt)
{
	struct load *ld = cur;
	unsigned idx;

	if (ld == NULL || opt->nvalues == 0)
		return 0;

	if (opt->type == CFGT_SEC) {
		/* Called in the parent once the section has closed. */
		cfg_t *sec = opt->values[opt->nvalues - 1]->section;

		ld->prev_opt = NULL;
		if (cfg->line >= ld->eof_line)
			return fail_at(ld, sec, sec_line(ld, sec), "missing \"}\" "
			    "(the file ends before the section closes)");
		if (!(opt->flags & CFGF_MULTI) && find_rec(ld, sec, "}", 0))
			return fail_at(ld, sec, cfg->line, "section given twice "
			    "(first on line %d)", sec_line(ld, sec));
		/*
		 * An empty section never met note_line from the inside: its
		 * closing line is the best left. A ladder holding only levels
		 * is first seen here.
		 */
		if ((find_rec(ld, sec, NULL, 0) == NULL &&
		    set_rec(ld, sec, NULL, 0, cfg->line) < 0) ||
		    note_open(ld, cfg) < 0)
			return nomem(ld);
		if (!(opt->flags & CFGF_MULTI) &&
		    set_rec(ld, sec, "}", 0, cfg->line) < 0)
			return nomem(ld);
		return 0;
	}

	idx = opt->nvalues - 1;
	if ((opt->flags & CFGF_LIST) && ld->prev_sec == cfg &&
	    ld->prev_opt == opt && ld->prev_n == opt->nvalues) {
		ld->prev_opt = NULL;	/* the closing brace of the list */
		return 0;
	}
	ld->prev_sec = cfg;
	ld->prev_opt = opt;
	ld->prev_n = opt->nvalues;

	if (set_rec(ld, cfg, opt->name, idx, cfg->line) < 0 ||
	    note_open(ld, cfg) < 0)
		return nomem(ld);
	return 0;
}

/* Every option, nested ones included, reports its line to note_line. */
static void
arm(cfg_opt_t *opts)
{
	for (; opts->name != NULL; opts++) {
		opts->validcb = note_line;
		if (opts->subopts != NULL)
			arm(opts->subopts);
	}
}

#define TITLED	(CFGF_TITLE | CFGF_MULTI | CFGF_NO_TITLE_DUPES)

static cfg_t *
new_cfg(void)
{
	/* cfg_init copies these tables, so they may live on the stack. */
	cfg_opt_t smtp_opts[] = {
		CFG_STR("url", NULL, CFGF_NONE),
		CFG_STR("from", NULL, CFGF_NONE),
		CFG_STR("user", NULL, CFGF_NONE),
		CFG_STR("password", NULL, CFGF_NONE),
		CFG_STR("tls", "starttls", CFGF_NONE),
		CFG_BOOL("tls_verify", cfg_true, CFGF_NONE),
		CFG_STR("ca_file", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t outbox_opts[] = {
		CFG_STR("retry_first", "10s", CFGF_NONE),
		CFG_STR("retry_max", "1h", CFGF_NONE),
		CFG_INT("max_attempts", 12, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t mailbox_opts[] = {
		CFG_STR("host", NULL, CFGF_NONE),
		CFG_INT("port", 0, CFGF_NONE),
		CFG_STR("tls", "starttls", CFGF_NONE),
		CFG_BOOL("tls_verify", cfg_true, CFGF_NONE),
		CFG_STR("ca_file", NULL, CFGF_NONE),
		CFG_STR("user", NULL, CFGF_NONE),
		CFG_STR("password", NULL, CFGF_NONE),
		CFG_STR("folder", "INBOX", CFGF_NONE),
		CFG_STR("address", NULL, CFGF_NONE),
		CFG_STR("queue", NULL, CFGF_NONE),
		CFG_STR("poll_interval", "60s", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t xmpp_opts[] = {
		CFG_STR("jid", NULL, CFGF_NONE),
		CFG_STR("password", NULL, CFGF_NONE),
		CFG_STR("host", NULL, CFGF_NONE),
		CFG_INT("port", 0, CFGF_NONE),
		CFG_STR("tls", "starttls", CFGF_NONE),
		CFG_BOOL("tls_verify", cfg_true, CFGF_NONE),
		CFG_STR("ca_file", NULL, CFGF_NONE),
		CFG_STR("queue", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t webhook_opts[] = {
		CFG_STR("secret", NULL, CFGF_NONE),
		CFG_STR("queue", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t notify_opts[] = {
		CFG_STR("url", NULL, CFGF_NONE),
		CFG_STR("secret", NULL, CFGF_NONE),
		CFG_STR_LIST("events", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t agent_opts[] = {
		CFG_STR("email", NULL, CFGF_NONE),
		CFG_STR("name", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t team_opts[] = {
		CFG_STR_LIST("agents", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t calendar_opts[] = {
		CFG_STR("timezone", "UTC", CFGF_NONE),
		CFG_STR_LIST("hours", NULL, CFGF_NONE),
		CFG_STR_LIST("holidays", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t sla_opts[] = {
		CFG_STR("calendar", NULL, CFGF_NONE),
		CFG_STR("first_response", NULL, CFGF_NONE),
		CFG_STR("next_update", NULL, CFGF_NONE),
		CFG_STR("resolution", NULL, CFGF_NONE),
		CFG_STR("customer_update", NULL, CFGF_NONE),
		CFG_INT("warn_at", 80, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t level_opts[] = {
		CFG_STR("team", NULL, CFGF_NONE),
		CFG_STR("after", NULL, CFGF_NONE),
		CFG_STR_LIST("on_breach", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t ladder_opts[] = {
		CFG_SEC("level", level_opts, TITLED),
		CFG_END()
	};
	cfg_opt_t queue_opts[] = {
		CFG_STR("team", NULL, CFGF_NONE),
		CFG_STR("sla", NULL, CFGF_NONE),
		CFG_STR("ladder", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t severity_opts[] = {
		CFG_STR("sla", NULL, CFGF_NONE),
		CFG_INT("start_level", 0, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t rule_opts[] = {
		CFG_STR_LIST("match", NULL, CFGF_NONE),
		CFG_STR("severity", NULL, CFGF_NONE),
		CFG_STR("queue", NULL, CFGF_NONE),
		CFG_STR("sla", NULL, CFGF_NONE),
		CFG_STR("team", NULL, CFGF_NONE),
		CFG_STR_LIST("tags", NULL, CFGF_NONE),
		CFG_BOOL("continue", cfg_false, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t root_opts[] = {
		CFG_STR("store", "var/escalon.db", CFGF_NONE),
		CFG_STR("listen", "127.0.0.1:8025", CFGF_NONE),
		CFG_STR("base_url", NULL, CFGF_NONE),
		CFG_STR("secret_file", "var/secret", CFGF_NONE),
		CFG_STR("api_token_file", "var/api-token", CFGF_NONE),
		CFG_STR("templates", "templates", CFGF_NONE),
		CFG_STR("control_socket", "var/escalon.sock", CFGF_NONE),
		CFG_STR("reopen_within", "7d", CFGF_NONE),
		CFG_STR("close_after", "7d", CFGF_NONE),
		CFG_STR("max_message_size", "10M", CFGF_NONE),
		CFG_STR("max_attachment_size", "5M", CFGF_NONE),
		CFG_STR("max_webhook_size", "1M", CFGF_NONE),
		CFG_INT("max_autoreplies", 10, CFGF_NONE),
		CFG_SEC("smtp", smtp_opts, CFGF_NONE),
		CFG_SEC("outbox", outbox_opts, CFGF_NONE),
		CFG_SEC("mailbox", mailbox_opts, TITLED),
		CFG_SEC("xmpp", xmpp_opts, TITLED),
		CFG_SEC("webhook", webhook_opts, TITLED),
		CFG_SEC("notify", notify_opts, TITLED),
		CFG_SEC("agent", agent_opts, TITLED),
		CFG_SEC("team", team_opts, TITLED),
		CFG_SEC("calendar", calendar_opts, TITLED),
		CFG_SEC("sla", sla_opts, TITLED),
		CFG_SEC("ladder", ladder_opts, TITLED),
		CFG_SEC("queue", queue_opts, TITLED),
		CFG_SEC("severity", severity_opts, TITLED),
		CFG_SEC("rule", rule_opts, TITLED),
		CFG_END()
	};

	arm(root_opts);
	return cfg_init(root_opts, CFGF_NONE);
}

/* ---- value syntax ------------------------------------------------------ */

int
conf_parse_duration(const char *s, int64_t *secs_r)
{
	const char *p = s;
	int64_t total = 0;

	if (s == NULL || *s == '\0')
		return -1;
	while (*p != '\0') {
		const char *group = p;
		int64_t n = 0, mul;

		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (n > (INT64_MAX - (*p - '0')) / 10)
				return -1;
			n = n * 10 + (*p - '0');
		}
		switch (*p) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		case '\0':
			/* Bare seconds only as the whole string: "1h30" is a typo. */
			if (group != s)
				return -1;
			*secs_r = n;
			return 0;
		default:
			return -1;
		}
		p++;
		if (n > INT64_MAX / mul || total > INT64_MAX - n * mul)
			return -1;
		total += n * mul;
	}
	*secs_r = total;
	return 0;
}

int
conf_parse_size(const char *s, int64_t *bytes_r)
{
	const char *p = s;
	int64_t n = 0, mul = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	switch (*p) {
	case '\0': break;
	case 'K': mul = 1024; p++; break;
	case 'M': mul = 1024 * 1024; p++; break;
	case 'G': mul = 1024 * 1024 * 1024; p++; break;
	default: return -1;
	}
	if (*p != '\0' || n > INT64_MAX / mul)
		return -1;
	*bytes_r = n * mul;
	return 0;
}

/* HOST:PORT, with [v6]:PORT for IPv6 literals. */
static int
valid_hostport(const char *s)
{
	const char *colon, *p;
	long port = 0;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close == s + 1 || close[1] != ':')
			return 0;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s ||
		    memchr(s, ':', colon - s) != NULL)
			return 0;
		for (p = s; p < colon; p++)
			if (isspace((unsigned char)*p) || *p == '/')
				return 0;
	}
	p = colon + 1;
	if (*p == '\0' || strlen(p) > 5)
		return 0;
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return 0;
		port = port * 10 + (*p - '0');
	}
	return port >= 1 && port <= 65535;
}

static int
valid_email(const char *s)
{
	const char *at = strchr(s, '@');

	return at != NULL && at != s && at[1] != '\0' &&
	    strchr(at + 1, '@') == NULL && strpbrk(s, " \t<>") == NULL;
}

/* ---- conversions with their messages ----------------------------------- */

static int
dup_into(struct load *ld, const char *s, char **out)
{
	if ((*out = strdup(s)) == NULL)
		return nomem(ld);
	return 0;
}

/* KEY's string, or NULL when unset or empty and not REQUIRED. */
static int
get_str(struct load *ld, cfg_t *sec, const char *key, int required,
    char **out)
{
	const char *s = cfg_getstr(sec, key);

	*out = NULL;
	if (s == NULL || *s == '\0') {
		if (!required)
			return 0;
		if (s == NULL)
			return fail_at(ld, sec, sec_line(ld, sec),
			    "missing key \"%s\"", key);
		return fail_key(ld, sec, key, 0, "%s is empty", key);
	}
	return dup_into(ld, s, out);
}

/*
 * DIR/P. Leading "./" and "../" are folded into DIR: DIR comes from
 * realpath(), so it holds no symlink that ".." could walk back through.
 */
static char *
abs_path(const char *dir, const char *p)
{
	char *base, *out = NULL, *slash;

	if (p[0] == '/')
		return strdup(p);
	if ((base = strdup(dir)) == NULL)
		return NULL;
	for (;;) {
		if (p[0] == '.' && (p[1] == '/' || p[1] == '\0')) {
			p += 1;
		} else if (p[0] == '.' && p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0')) {
			p += 2;
			slash = strrchr(base, '/');
			if (slash != NULL && slash != base)
				*slash = '\0';
			else
				strcpy(base, "/");
		} else {
			break;
		}
		while (*p == '/')
			p++;
	}
	if (*p == '\0')
		out = base, base = NULL;
	else if (asprintf(&out, "%s%s%s", base,
	    strcmp(base, "/") == 0 ? "" : "/", p) < 0)
		out = NULL;
	free(base);
	return out;
}

static int
get_path(struct load *ld, const char *dir, cfg_t *sec, const char *key,
    int required, char **out)
{
	char *rel;

	if (get_str(ld, sec, key, required, &rel) < 0)
		return -1;
	if (rel == NULL)
		return 0;
	*out = abs_path(dir, rel);
	free(rel);
	return *out == NULL ? nomem(ld) : 0;
}

static int
get_duration(struct load *ld, cfg_t *sec, const char *key, int required,
    int64_t min, int64_t *out)
{
	const char *s = cfg_getstr(sec, key);

	*out = 0;
	if (s == NULL) {
		if (!required)
			return 0;
		return fail_at(ld, sec, sec_line(ld, sec),
		    "missing key \"%s\"", key);
	}
	if (conf_parse_duration(s, out) < 0)
		return fail_key(ld, sec, key, 0, "bad duration \"%s\" for %s "
		    "(" DURATION_HINT ")", s, key);
	if (*out > CONF_MAX_DUR)
		return fail_key(ld, sec, key, 0, "%s \"%s\" is too long (at "
		    "most 3650d)", key, s);
	if (*out < min)
		return fail_key(ld, sec, key, 0, "%s \"%s\" is too short (at "
		    "least %llds)", key, s, (long long)min);
	return 0;
}

static int
get_size(struct load *ld, cfg_t *sec, const char *key, int64_t *out)
{
	const char *s = cfg_getstr(sec, key);

	if (s == NULL || conf_parse_size(s, out) < 0)
		return fail_key(ld, sec, key, 0, "bad size \"%s\" for %s (use "
		    "bytes or K, M, G: 512K, 10M)", s ? s : "", key);
	if (*out < 1 || *out > CONF_MAX_SIZE)
		return fail_key(ld, sec, key, 0, "%s \"%s\" is out of range "
		    "(1 to 1G)", key, s);
	return 0;
}

static int
get_int(struct load *ld, cfg_t *sec, const char *key, long lo, long hi,
    int *out)
{
	long v = cfg_getint(sec, key);

	if (v < lo || v > hi)
		return fail_key(ld, sec, key, 0, "%s %ld is out of range "
		    "(%ld to %ld)", key, v, lo, hi);
	*out = (int)v;
	return 0;
}

static int
get_tls(struct load *ld, cfg_t *sec, enum conf_tls *out)
{
	const char *s = cfg_getstr(sec, "tls");

	if (s != NULL && strcmp(s, "none") == 0)
		*out = CONF_TLS_NONE;
	else if (s != NULL && strcmp(s, "starttls") == 0)
		*out = CONF_TLS_STARTTLS;
	else if (s != NULL && strcmp(s, "tls") == 0)
		*out = CONF_TLS_TLS;
	else
		return fail_key(ld, sec, "tls", 0, "bad tls \"%s\" (use none, "
		    "starttls or tls)", s ? s : "");
	return 0;
}

/* A port, or the default for the TLS mode when the key is not set. */
static int
get_port(struct load *ld, cfg_t *sec, enum conf_tls tls, int plain,
    int direct_tls, int *out)
{
	if (!key_is_set(ld, sec, "port")) {
		*out = tls == CONF_TLS_TLS ? direct_tls : plain;
		return 0;
	}
	return get_int(ld, sec, "port", 1, 65535, out);
}

static int
get_list(struct load *ld, cfg_t *sec, const char *key, struct conf_strv *out)
{
	unsigned i, n = cfg_size(sec, key);

	out->n = 0;
	if ((out->v = calloc(n + 1, sizeof(*out->v))) == NULL)
		return nomem(ld);
	for (i = 0; i < n; i++) {
		const char *s = cfg_getnstr(sec, key, i);

		if (s == NULL || *s == '\0')
			return fail_key(ld, sec, key, i, "empty string in %s",
			    key);
		if (dup_into(ld, s, &out->v[i]) < 0)
			return -1;
		out->n++;
	}
	return 0;
}

/* A reference to a section of KIND that must exist. */
static int
check_ref(struct load *ld, cfg_t *sec, const char *key, unsigned idx,
    const char *kind, const char *name, int exists)
{
	if (name == NULL || exists)
		return 0;
	return fail_key(ld, sec, key, idx, "%s \"%s\" is not defined", kind,
	    name);
}

static int
check_queue_ref(struct load *ld, cfg_t *sec, const struct conf *c,
    const char *name)
{
	return check_ref(ld, sec, "queue", 0, "queue", name,
	    conf_queue(c, name) != NULL);
}

/* ---- sections ---------------------------------------------------------- */

static int
load_top(struct load *ld, cfg_t *root, struct conf *c)
{
	const char *s;
	char *b;
	size_t len;

	if (get_path(ld, c->dir, root, "store", 1, &c->store) < 0 ||
	    get_str(ld, root, "listen", 1, &c->listen) < 0 ||
	    get_path(ld, c->dir, root, "secret_file", 1, &c->secret_file) < 0 ||
	    get_path(ld, c->dir, root, "api_token_file", 1,
	    &c->api_token_file) < 0 ||
	    get_path(ld, c->dir, root, "templates", 1, &c->templates) < 0 ||
	    get_path(ld, c->dir, root, "control_socket", 1,
	    &c->control_socket) < 0)
		return -1;
	if (!valid_hostport(c->listen))
		return fail_key(ld, root, "listen", 0, "bad listen \"%s\" (use "
		    "HOST:PORT, e.g. 127.0.0.1:8025)", c->listen);
	if (strlen(c->control_socket) >=
	    sizeof(((struct sockaddr_un *)0)->sun_path))
		return fail_key(ld, root, "control_socket", 0, "control_socket "
		    "\"%s\" is too long for a unix socket (at most %zu bytes)",
		    c->control_socket,
		    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);

	if ((s = cfg_getstr(root, "base_url")) == NULL) {
		if (asprintf(&c->base_url, "http://%s", c->listen) < 0) {
			c->base_url = NULL;
			return nomem(ld);
		}
	} else {
		if (strncmp(s, "http://", 7) != 0 &&
		    strncmp(s, "https://", 8) != 0)
			return fail_key(ld, root, "base_url", 0, "bad base_url "
			    "\"%s\" (use http://HOST[:PORT] or https://...)", s);
		if (dup_into(ld, s, &c->base_url) < 0)
			return -1;
		/* Links are built as base_url + "/path". */
		b = c->base_url;
		for (len = strlen(b); len > 8 && b[len - 1] == '/'; len--)
			b[len - 1] = '\0';
	}

	if (get_duration(ld, root, "reopen_within", 1, 0,
	    &c->reopen_within) < 0 ||
	    get_duration(ld, root, "close_after", 1, 0, &c->close_after) < 0 ||
	    get_size(ld, root, "max_message_size", &c->max_message_size) < 0 ||
	    get_size(ld, root, "max_attachment_size",
	    &c->max_attachment_size) < 0 ||
	    get_size(ld, root, "max_webhook_size", &c->max_webhook_size) < 0 ||
	    get_int(ld, root, "max_autoreplies", 0, 100000,
	    &c->max_autoreplies) < 0)
		return -1;
	return 0;
}

static int
load_smtp(struct load *ld, cfg_t *sec, const char *dir, struct conf_smtp *m)
{
	int smtps;

	m->present = find_rec(ld, sec, NULL, 0) != NULL;
	m->tls_verify = cfg_getbool(sec, "tls_verify");
	if (get_tls(ld, sec, &m->tls) < 0)
		return -1;
	if (!m->present)
		return 0;
	if (get_str(ld, sec, "url", 1, &m->url) < 0 ||
	    get_str(ld, sec, "from", 1, &m->from) < 0 ||
	    get_str(ld, sec, "user", 0, &m->user) < 0 ||
	    get_str(ld, sec, "password", 0, &m->password) < 0 ||
	    get_path(ld, dir, sec, "ca_file", 0, &m->ca_file) < 0)
		return -1;
	smtps = strncmp(m->url, "smtps://", 8) == 0;
	if (!smtps && strncmp(m->url, "smtp://", 7) != 0)
		return fail_key(ld, sec, "url", 0, "bad url \"%s\" (use "
		    "smtp://HOST[:PORT] or smtps://...)", m->url);
	if (smtps) {
		/* smtps:// is TLS from the first byte; nothing else fits. */
		if (key_is_set(ld, sec, "tls") && m->tls != CONF_TLS_TLS)
			return fail_key(ld, sec, "tls", 0, "tls \"%s\" does not "
			    "fit an smtps:// url (use tls)",
			    cfg_getstr(sec, "tls"));
		m->tls = CONF_TLS_TLS;
	}
	if (!valid_email(m->from))
		return fail_key(ld, sec, "from", 0, "bad from \"%s\" (use "
		    "an address like support@example.org)", m->from);
	if (m->user != NULL && m->password == NULL)
		return fail_key(ld, sec, "user", 0, "user \"%s\" has no "
		    "password", m->user);
	return 0;
}

static int
load_outbox(struct load *ld, cfg_t *sec, struct conf_outbox *o)
{
	if (get_duration(ld, sec, "retry_first", 1, 1, &o->retry_first) < 0 ||
	    get_duration(ld, sec, "retry_max", 1, 1, &o->retry_max) < 0 ||
	    get_int(ld, sec, "max_attempts", 1, 1000, &o->max_attempts) < 0)
		return -1;
	if (o->retry_max < o->retry_first)
		return fail_key(ld, sec, "retry_max", 0, "retry_max \"%s\" is "
		    "shorter than retry_first \"%s\"",
		    cfg_getstr(sec, "retry_max"),
		    cfg_getstr(sec, "retry_first"));
	return 0;
}

static int
load_mailbox(struct load *ld, cfg_t *sec, struct conf *c,
    struct conf_mailbox *m)
{
	if (dup_into(ld, sec->title, &m->name) < 0 ||
	    get_str(ld, sec, "host", 1, &m->host) < 0 ||
	    get_tls(ld, sec, &m->tls) < 0 ||
	    get_port(ld, sec, m->tls, 143, 993, &m->port) < 0 ||
	    get_path(ld, c->dir, sec, "ca_file", 0, &m->ca_file) < 0 ||
	    get_str(ld, sec, "user", 1, &m->user) < 0 ||
	    get_str(ld, sec, "password", 1, &m->password) < 0 ||
	    get_str(ld, sec, "folder", 1, &m->folder) < 0 ||
	    get_str(ld, sec, "address", 1, &m->address) < 0 ||
	    get_str(ld, sec, "queue", 1, &m->queue) < 0 ||
	    get_duration(ld, sec, "poll_interval", 1, 1,
	    &m->poll_interval) < 0)
		return -1;
	m->tls_verify = cfg_getbool(sec, "tls_verify");
	if (!valid_email(m->address))
		return fail_key(ld, sec, "address", 0, "bad address \"%s\" "
		    "(use an address like support@example.org)", m->address);
	return check_queue_ref(ld, sec, c, m->queue);
}

static int
load_xmpp(struct load *ld, cfg_t *sec, struct conf *c, struct conf_xmpp *x)
{
	const char *at, *end;

	if (dup_into(ld, sec->title, &x->name) < 0 ||
	    get_str(ld, sec, "jid", 1, &x->jid) < 0 ||
	    get_str(ld, sec, "password", 1, &x->password) < 0 ||
	    get_str(ld, sec, "host", 0, &x->host) < 0 ||
	    get_tls(ld, sec, &x->tls) < 0 ||
	    get_port(ld, sec, x->tls, 5222, 5223, &x->port) < 0 ||
	    get_path(ld, c->dir, sec, "ca_file", 0, &x->ca_file) < 0 ||
	    get_str(ld, sec, "queue", 1, &x->queue) < 0)
		return -1;
	x->tls_verify = cfg_getbool(sec, "tls_verify");
	at = strchr(x->jid, '@');
	end = at ? at + 1 + strcspn(at + 1, "/") : NULL;
	if (at == NULL || at == x->jid || end == at + 1 ||
	    strchr(at + 1, '@') != NULL)
		return fail_key(ld, sec, "jid", 0, "bad jid \"%s\" (use "
		    "user@domain)", x->jid);
	/* As a client would: no host means the JID's own domain. */
	if (x->host == NULL &&
	    (x->host = strndup(at + 1, end - (at + 1))) == NULL)
		return nomem(ld);
	return check_queue_ref(ld, sec, c, x->queue);
}

static int
load_webhook(struct load *ld, cfg_t *sec, struct conf *c,
    struct conf_webhook *w)
{
	const char *p;

	/* The title is a URL path segment: /hooks/NAME. */
	for (p = sec->title; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
			break;
	if (*sec->title == '\0' || *p != '\0')
		return fail_at(ld, sec, sec_line(ld, sec), "bad name (use "
		    "letters, digits, '-', '_' and '.'; it goes in the URL "
		    "/hooks/NAME)");
	if (dup_into(ld, sec->title, &w->name) < 0 ||
	    get_str(ld, sec, "secret", 1, &w->secret) < 0 ||
	    get_str(ld, sec, "queue", 1, &w->queue) < 0)
		return -1;
	return check_queue_ref(ld, sec, c, w->queue);
}

static int
load_notify(struct load *ld, cfg_t *sec, struct conf *c,
    struct conf_notify *n)
{
	size_t i;

	(void)c;
	if (dup_into(ld, sec->title, &n->name) < 0 ||
	    get_str(ld, sec, "url", 1, &n->url) < 0 ||
	    get_str(ld, sec, "secret", 1, &n->secret) < 0 ||
	    get_list(ld, sec, "events", &n->events) < 0)
		return -1;
	if (strncmp(n->url, "http://", 7) != 0 &&
	    strncmp(n->url, "https://", 8) != 0)
		return fail_key(ld, sec, "url", 0, "bad url \"%s\" (use "
		    "http://... or https://...)", n->url);
	if (n->events.n == 0)
		return fail_at(ld, sec, sec_line(ld, sec), "no events (list "
		    "some of ticket.created, ticket.escalated, ticket.resolved, "
		    "ticket.reopened, sla.warning, sla.breached)");
	for (i = 0; i < n->events.n; i++)
		if (!in_list(event_names, n->events.v[i]))
			return fail_key(ld, sec, "events", i, "unknown event "
			    "\"%s\" (use ticket.created, ticket.escalated, "
			    "ticket.resolved, ticket.reopened, sla.warning, "
			    "sla.breached)", n->events.v[i]);
	return 0;
}

static int
load_agent(struct load *ld, cfg_t *sec, struct conf *c, struct conf_agent *a)
{
	struct conf_agent *other;

	if (dup_into(ld, sec->title, &a->name) < 0 ||
	    get_str(ld, sec, "email", 1, &a->email) < 0 ||
	    get_str(ld, sec, "name", 0, &a->display_name) < 0)
		return -1;
	if (a->display_name == NULL &&
	    dup_into(ld, a->name, &a->display_name) < 0)
		return -1;
	if (!valid_email(a->email))
		return fail_key(ld, sec, "email", 0, "bad email \"%s\"",
		    a->email);
	/* Agents are told apart by address: one address, one agent. */
	for (other = c->agents; other < a; other++)
		if (strcasecmp(other->email, a->email) == 0)
			return fail_key(ld, sec, "email", 0, "email \"%s\" is "
			    "already used by agent \"%s\"", a->email,
			    other->name);
	return 0;
}

static int
load_team(struct load *ld, cfg_t *sec, struct conf *c, struct conf_team *t)
{
	size_t i, j;

	if (dup_into(ld, sec->title, &t->name) < 0 ||
	    get_list(ld, sec, "agents", &t->agents) < 0)
		return -1;
	if (t->agents.n == 0)
		return fail_at(ld, sec, sec_line(ld, sec), "no agents (a team "
		    "needs agents = {\"NAME\", ...})");
	for (i = 0; i < t->agents.n; i++) {
		if (check_ref(ld, sec, "agents", i, "agent", t->agents.v[i],
		    conf_agent(c, t->agents.v[i]) != NULL) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(t->agents.v[i], t->agents.v[j]) == 0)
				return fail_key(ld, sec, "agents", i, "agent "
				    "\"%s\" is listed twice", t->agents.v[i]);
	}
	return 0;
}

static int
load_calendar(struct load *ld, cfg_t *sec, struct conf *c,
    struct conf_calendar *k)
{
	const char *why;
	size_t i;

	(void)c;
	if (dup_into(ld, sec->title, &k->name) < 0 ||
	    get_str(ld, sec, "timezone", 1, &k->timezone) < 0 ||
	    get_list(ld, sec, "hours", &k->hours) < 0 ||
	    get_list(ld, sec, "holidays", &k->holidays) < 0)
		return -1;
	if (!calendar_zone_valid(k->timezone))
		return fail_key(ld, sec, "timezone", 0, "unknown timezone "
		    "\"%s\" (use an IANA name, such as "
		    "Europe/Berlin or UTC)", k->timezone);
	if (k->hours.n == 0)
		return fail_at(ld, sec, sec_line(ld, sec), "no hours (write "
		    "hours = {\"mon-fri 09:00-17:00\"}, or \"mon-sun "
		    "00:00-24:00\" for always open)");
	for (i = 0; i < k->hours.n; i++)
		if ((why = calendar_hours_error(k->hours.v[i])) != NULL)
			return fail_key(ld, sec, "hours", i, "bad hours \"%s\": "
			    "%s (write \"mon-fri 09:00-17:00\" or "
			    "\"sat 10:00-14:00\")", k->hours.v[i], why);
	for (i = 0; i < k->holidays.n; i++)
		if (!calendar_date_valid(k->holidays.v[i]))
			return fail_key(ld, sec, "holidays", i, "bad holiday "
			    "\"%s\" (write a real date as YYYY-MM-DD)",
			    k->holidays.v[i]);
	return 0;
}

static int
load_sla(struct load *ld, cfg_t *sec, struct conf *c, struct conf_sla *s)
{
	if (dup_into(ld, sec->title, &s->name) < 0 ||
	    get_str(ld, sec, "calendar", 1, &s->calendar) < 0 ||
	    check_ref(ld, sec, "calendar", 0, "calendar", s->calendar,
	    conf_calendar(c, s->calendar) != NULL) < 0 ||
	    get_duration(ld, sec, "first_response", 1, 1,
	    &s->first_response) < 0 ||
	    get_duration(ld, sec, "next_update", 1, 1, &s->next_update) < 0 ||
	    get_duration(ld, sec, "resolution", 1, 1, &s->resolution) < 0 ||
	    get_duration(ld, sec, "customer_update", 0, 0,
	    &s->customer_update) < 0 ||
	    get_int(ld, sec, "warn_at", 1, 100, &s->warn_at) < 0)
		return -1;
	return 0;
}

static int
cmp_level(const void *a, const void *b)
{
	const struct conf_level *x = a, *y = b;

	return (x->level > y->level) - (x->level < y->level);
}

static int
load_level(struct load *ld, cfg_t *sec, struct conf *c, struct conf_level *l)
{
	const char *p;
	size_t i;

	for (p = sec->title; isdigit((unsigned char)*p); p++)
		;
	l->level = atoi(sec->title);
	if (*sec->title == '\0' || *p != '\0' || p - sec->title > 3 ||
	    l->level < 1 || l->level > CONF_MAX_LEVELS)
		return fail_at(ld, sec, sec_line(ld, sec), "the level must be a "
		    "number from 1 to %d (write: level 2 { ... })",
		    CONF_MAX_LEVELS);
	if (get_str(ld, sec, "team", 1, &l->team) < 0 ||
	    check_ref(ld, sec, "team", 0, "team", l->team,
	    conf_team(c, l->team) != NULL) < 0 ||
	    get_duration(ld, sec, "after", 0, 0, &l->after) < 0 ||
	    get_list(ld, sec, "on_breach", &l->on_breach) < 0)
		return -1;
	for (i = 0; i < l->on_breach.n; i++)
		if (!in_list(clock_names, l->on_breach.v[i]))
			return fail_key(ld, sec, "on_breach", i, "unknown clock "
			    "\"%s\" in on_breach (use first_response, "
			    "next_update or resolution)", l->on_breach.v[i]);
	/* See the top of the file: nothing leads up to level 1. */
	if (l->level == 1 && l->after != 0)
		return fail_key(ld, sec, "after", 0, "after does not apply to "
		    "level 1: tickets start there (remove it)");
	if (l->level == 1 && l->on_breach.n != 0)
		return fail_key(ld, sec, "on_breach", 0, "on_breach does not "
		    "apply to level 1: tickets start there (remove it)");
	return 0;
}

static int
load_ladder(struct load *ld, cfg_t *sec, struct conf *c,
    struct conf_ladder *l)
{
	size_t i, n = cfg_size(sec, "level");

	if (dup_into(ld, sec->title, &l->name) < 0)
		return -1;
	if (n == 0)
		return fail_at(ld, sec, sec_line(ld, sec), "no levels (write "
		    "level 1 { team = \"NAME\" } and up)");
	if ((l->levels = calloc(n, sizeof(*l->levels))) == NULL)
		return nomem(ld);
	l->n_levels = n;
	for (i = 0; i < n; i++) {
		cfg_t *lsec = cfg_getnsec(sec, "level", i);
		size_t j;

		if (load_level(ld, lsec, c, &l->levels[i]) < 0)
			return -1;
		/* "2" and "02" are different titles to libconfuse. */
		for (j = 0; j < i; j++)
			if (l->levels[j].level == l->levels[i].level)
				return fail_at(ld, lsec, sec_line(ld, lsec),
				    "duplicate level %d",
				    l->levels[i].level);
	}
	qsort(l->levels, n, sizeof(*l->levels), cmp_level);
	for (i = 0; i < n; i++)
		if (l->levels[i].level != (int)i + 1)
			return fail_at(ld, sec, sec_line(ld, sec), "level %zu is "
			    "missing (levels go 1, 2, 3 ... without gaps)",
			    i + 1);
	return 0;
}

static int
load_queue(struct load *ld, cfg_t *sec, struct conf *c, struct conf_queue *q)
{
	if (dup_into(ld, sec->title, &q->name) < 0 ||
	    get_str(ld, sec, "team", 1, &q->team) < 0 ||
	    get_str(ld, sec, "sla", 1, &q->sla) < 0 ||
	    get_str(ld, sec, "ladder", 1, &q->ladder) < 0 ||
	    check_ref(ld, sec, "team", 0, "team", q->team,
	    conf_team(c, q->team) != NULL) < 0 ||
	    check_ref(ld, sec, "sla", 0, "sla", q->sla,
	    conf_sla(c, q->sla) != NULL) < 0 ||
	    check_ref(ld, sec, "ladder", 0, "ladder", q->ladder,
	    conf_ladder(c, q->ladder) != NULL) < 0)
		return -1;
	return 0;
}

static int
load_severity(struct load *ld, cfg_t *sec, struct conf *c,
    struct conf_severity *s)
{
	size_t i;

	if (!in_list(severity_names, sec->title))
		return fail_at(ld, sec, sec_line(ld, sec), "unknown severity "
		    "(use low, normal, high or critical)");
	if (dup_into(ld, sec->title, &s->name) < 0 ||
	    get_str(ld, sec, "sla", 0, &s->sla) < 0 ||
	    check_ref(ld, sec, "sla", 0, "sla", s->sla,
	    conf_sla(c, s->sla) != NULL) < 0)
		return -1;
	if (!key_is_set(ld, sec, "start_level"))
		return 0;
	if (get_int(ld, sec, "start_level", 1, CONF_MAX_LEVELS,
	    &s->start_level) < 0)
		return -1;
	/* Any queue's ladder may receive this severity. */
	for (i = 0; i < c->n_ladders; i++)
		if ((size_t)s->start_level > c->ladders[i].n_levels)
			return fail_key(ld, sec, "start_level", 0, "start_level "
			    "%d is beyond ladder \"%s\", which has %zu "
			    "level%s", s->start_level, c->ladders[i].name,
			    c->ladders[i].n_levels,
			    c->ladders[i].n_levels == 1 ? "" : "s");
	return 0;
}

/* "FIELD OP VALUE": the rules module reads the same three parts. */
static int
check_match(struct load *ld, cfg_t *sec, unsigned idx, const char *m)
{
	char field[32], op[8];
	const char *p = m, *value;
	size_t n;

	n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
	if (n == 0 || (p[n] != ' ' && p[n] != '\t'))
		return fail_key(ld, sec, "match", idx, "match \"%s\" is not "
		    "FIELD OP VALUE (e.g. \"subject ~* outage\")", m);
	if (n >= sizeof(field))
		n = sizeof(field) - 1;
	memcpy(field, p, n);
	field[n] = '\0';
	if (!in_list(field_names, field))
		return fail_key(ld, sec, "match", idx, "unknown field \"%s\" in "
		    "match \"%s\" (use channel, from, from_domain, subject, "
		    "body, severity, queue, customer or tag)", field, m);
	p += strspn(p, "abcdefghijklmnopqrstuvwxyz_");
	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n >= sizeof(op))
		n = sizeof(op) - 1;
	memcpy(op, p, n);
	op[n] = '\0';
	if (!in_list(op_names, op))
		return fail_key(ld, sec, "match", idx, "unknown operator \"%s\" "
		    "in match \"%s\" (use =, !=, ~ or ~*)", op, m);
	p += strcspn(p, " \t");
	value = p + strspn(p, " \t");
	if (value == p || *value == '\0')
		return fail_key(ld, sec, "match", idx, "match \"%s\" has no "
		    "value", m);

	if (op[0] == '~') {
		regex_t re;
		char why[256];
		const char *costly = rules_regex_too_costly(value);
		if (costly != NULL)
			return fail_key(ld, sec, "match", idx, "regex \"%s\" in "
			    "match \"%s\": %s", value, m, costly);
		int rc = regcomp(&re, value, REG_EXTENDED | REG_NOSUB |
		    (op[1] == '*' ? REG_ICASE : 0));

		if (rc != 0) {
			regerror(rc, &re, why, sizeof(why));
			return fail_key(ld, sec, "match", idx, "bad regex "
			    "\"%s\" in match \"%s\": %s", value, m, why);
		}
		regfree(&re);
		return 0;
	}
	/* These fields have few values; a typo would never match. */
	if (strcmp(field, "severity") == 0 && !in_list(severity_names, value))
		return fail_key(ld, sec, "match", idx, "unknown severity \"%s\" "
		    "in match \"%s\" (use low, normal, high or critical)", value,
		    m);
	if (strcmp(field, "channel") == 0 && !in_list(channel_names, value))
		return fail_key(ld, sec, "match", idx, "unknown channel \"%s\" "
		    "in match \"%s\" (use email, chat or webhook)", value, m);
	return 0;
}

static int
load_rule(struct load *ld, cfg_t *sec, struct conf *c, struct conf_rule *r)
{
	size_t i;

	r->line = sec_line(ld, sec);
	if (dup_into(ld, sec->title, &r->name) < 0 ||
	    get_list(ld, sec, "match", &r->match) < 0 ||
	    get_str(ld, sec, "severity", 0, &r->severity) < 0 ||
	    get_str(ld, sec, "queue", 0, &r->queue) < 0 ||
	    get_str(ld, sec, "sla", 0, &r->sla) < 0 ||
	    get_str(ld, sec, "team", 0, &r->team) < 0 ||
	    get_list(ld, sec, "tags", &r->tags) < 0)
		return -1;
	r->cont = cfg_getbool(sec, "continue");
	if (r->match.n == 0)
		return fail_at(ld, sec, r->line, "no match (write match = "
		    "{\"FIELD OP VALUE\", ...}, e.g. \"channel = email\")");
	for (i = 0; i < r->match.n; i++)
		if (check_match(ld, sec, i, r->match.v[i]) < 0)
			return -1;
	if (r->severity != NULL && !in_list(severity_names, r->severity))
		return fail_key(ld, sec, "severity", 0, "unknown severity \"%s\" "
		    "(use low, normal, high or critical)", r->severity);
	if (check_queue_ref(ld, sec, c, r->queue) < 0 ||
	    check_ref(ld, sec, "sla", 0, "sla", r->sla,
	    conf_sla(c, r->sla) != NULL) < 0 ||
	    check_ref(ld, sec, "team", 0, "team", r->team,
	    conf_team(c, r->team) != NULL) < 0)
		return -1;
	if (r->severity == NULL && r->queue == NULL && r->sla == NULL &&
	    r->team == NULL && r->tags.n == 0)
		return fail_at(ld, sec, r->line, "does nothing (set severity, "
		    "queue, sla, team or tags)");
	return 0;
}

/*
 * Fill c->FIELD from every section of KIND, in file order. The array and
 * its count are in place before the first entry is read, so a failure half
 * way leaves conf_free() something consistent to free.
 */
#define LOAD_SECTIONS(kind, field, fn) do {				\
	size_t n_ = cfg_size(cfg, kind), i_;				\
	if (n_ > 0 &&							\
	    (c->field = calloc(n_, sizeof(*c->field))) == NULL) {	\
		nomem(ld);						\
		return -1;						\
	}								\
	c->n_##field = n_;						\
	for (i_ = 0; i_ < n_; i_++)					\
		if (fn(ld, cfg_getnsec(cfg, kind, i_), c,		\
		    &c->field[i_]) < 0)					\
			return -1;					\
} while (0)

/* In the order references need: what is named is loaded first. */
static int
load_all(struct load *ld, cfg_t *cfg, struct conf *c)
{
	if (load_top(ld, cfg, c) < 0 ||
	    load_smtp(ld, cfg_getsec(cfg, "smtp"), c->dir, &c->smtp) < 0 ||
	    load_outbox(ld, cfg_getsec(cfg, "outbox"), &c->outbox) < 0)
		return -1;
	LOAD_SECTIONS("agent", agents, load_agent);
	LOAD_SECTIONS("team", teams, load_team);
	LOAD_SECTIONS("calendar", calendars, load_calendar);
	LOAD_SECTIONS("sla", slas, load_sla);
	LOAD_SECTIONS("ladder", ladders, load_ladder);
	LOAD_SECTIONS("queue", queues, load_queue);
	LOAD_SECTIONS("severity", severities, load_severity);
	LOAD_SECTIONS("rule", rules, load_rule);
	LOAD_SECTIONS("mailbox", mailboxes, load_mailbox);
	LOAD_SECTIONS("xmpp", xmpps, load_xmpp);
	LOAD_SECTIONS("webhook", webhooks, load_webhook);
	LOAD_SECTIONS("notify", notifies, load_notify);
	return 0;
}

/* ---- the file ---------------------------------------------------------- */

/*
 * libconfuse 3.3 counts every comment as two or three lines (its lexer bumps
 * the line on the comment's text and again at its end), which puts each
 * FILE:LINE after a comment off; it also rejects a comment inside a list
 * (libconfuse issue #150). So comments are blanked out here, newlines kept,
 * before libconfuse sees the text. The scan follows libconfuse's lexer: '#',
 * '//' and '/' '*' start a comment outside quotes (unquoted words cannot hold
 * them), and inside quotes a backslash takes the next character with it.
 * Returns the line of a string that is never closed, or 0.
 */
static int
blank_comments(char *s, size_t len)
{
	size_t i = 0;
	int line = 1, quote_line = 0;
	char quote = 0;

	while (i < len) {
		if (s[i] == '\n')
			line++;
		if (quote != 0) {
			if (s[i] == '\\' && i + 1 < len) {
				if (s[i + 1] == '\n')
					line++;
				i += 2;
				continue;
			}
			if (s[i] == quote)
				quote = 0;
			i++;
		} else if (s[i] == '"' || s[i] == '\'') {
			quote = s[i++];
			quote_line = line;
		} else if (s[i] == '#' ||
		    (s[i] == '/' && i + 1 < len && s[i + 1] == '/')) {
			while (i < len && s[i] != '\n')
				s[i++] = ' ';
		} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			s[i++] = ' ';
			s[i++] = ' ';
			while (i < len && !(s[i] == '*' && i + 1 < len &&
			    s[i + 1] == '/')) {
				if (s[i] == '\n')
					line++;
				else
					s[i] = ' ';
				i++;
			}
			if (i < len) {		/* the closing star and slash */
				s[i++] = ' ';
				s[i++] = ' ';
			}
		} else {
			i++;
		}
	}
	return quote != 0 ? quote_line : 0;
}

/*
 * The whole file, ending in a newline (added when missing, see the top of
 * the file), and the number of the line after that newline.
 */
static int
read_file(struct load *ld, char **buf_r, size_t *len_r)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, i;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(ld->path, O_RDONLY | O_CLOEXEC)) < 0) {
		fail(ld, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		fail(ld, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(ld, 0, "cannot open: %s", S_ISDIR(st.st_mode) ?
		    strerror(EISDIR) : "not a regular file");
		goto out;
	}
	if ((buf = malloc(CONF_MAX_FILE + 2)) == NULL) {
		nomem(ld);
		goto out;
	}
	while (len <= CONF_MAX_FILE) {
		n = read(fd, buf + len, CONF_MAX_FILE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(ld, 0, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += n;
	}
	if (len > CONF_MAX_FILE) {
		fail(ld, 0, "too large (more than %d bytes)", CONF_MAX_FILE);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		fail(ld, 0, "not a text file (it holds a NUL byte)");
		goto out;
	}
	if (len == 0 || buf[len - 1] != '\n')
		buf[len++] = '\n';
	buf[len] = '\0';
	if ((i = blank_comments(buf, len)) != 0) {
		fail(ld, (int)i, "unterminated string (no closing quote)");
		goto out;
	}
	ld->eof_line = 1;
	for (i = 0; i < len; i++)
		if (buf[i] == '\n')
			ld->eof_line++;
	*buf_r = buf;
	*len_r = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The absolute, symlink-free folder that holds PATH. */
static char *
folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *real;

	if (slash == NULL)
		return realpath(".", NULL);
	if (slash == path)
		return strdup("/");
	if ((dir = strndup(path, slash - path)) == NULL)
		return NULL;
	real = realpath(dir, NULL);
	free(dir);
	return real;
}

struct conf *
conf_load(const char *path, char **error_r)
{
	struct load ld = { .path = path };
	struct load *saved = cur;
	struct conf *c = NULL;
	cfg_t *cfg = NULL;
	FILE *fp = NULL;
	char *buf = NULL;
	size_t len;
	int ok = 0;

	*error_r = NULL;
	if (read_file(&ld, &buf, &len) < 0)
		goto out;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(path)) == NULL) {
		nomem(&ld);
		goto out;
	}
	if ((c->dir = folder_of(path)) == NULL) {
		fail(&ld, 0, "cannot find its folder: %s", strerror(errno));
		goto out;
	}
	/* cfg_parse_fp keeps a filename set before it; cfg_free frees it. */
	if ((cfg = new_cfg()) == NULL ||
	    (cfg->filename = strdup(path)) == NULL ||
	    (fp = fmemopen(buf, len, "r")) == NULL) {
		nomem(&ld);
		goto out;
	}
	cfg_set_error_function(cfg, capture_error);
	ld.root = cfg;
	cur = &ld;
	if (cfg_parse_fp(cfg, fp) != CFG_SUCCESS) {
		if (ld.error == NULL)
			fail(&ld, 0, "cannot parse");
		goto out;
	}
	if (load_all(&ld, cfg, c) < 0)
		goto out;
	ok = 1;
out:
	cur = saved;
	if (fp != NULL)
		fclose(fp);
	if (cfg != NULL)
		cfg_free(cfg);
	free(ld.lines);
	free(buf);
	if (!ok) {
		conf_free(&c);
		*error_r = ld.error != NULL ? ld.error : strdup("out of memory");
		return NULL;
	}
	free(ld.error);
	return c;
}

/* ---- freeing and look-ups ---------------------------------------------- */

static void
strv_release(struct conf_strv *sv)
{
	size_t i;

	if (sv->v != NULL)
		for (i = 0; i < sv->n; i++)
			free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

void
conf_free(struct conf **confp)
{
	struct conf *c = *confp;
	size_t i, j;

	if (c == NULL)
		return;
	free(c->path);
	free(c->dir);
	free(c->store);
	free(c->listen);
	free(c->base_url);
	free(c->secret_file);
	free(c->api_token_file);
	free(c->templates);
	free(c->control_socket);

	free(c->smtp.url);
	free(c->smtp.from);
	free(c->smtp.user);
	free(c->smtp.password);
	free(c->smtp.ca_file);

	for (i = 0; i < c->n_mailboxes; i++) {
		struct conf_mailbox *m = &c->mailboxes[i];

		free(m->name); free(m->host); free(m->user); free(m->password);
		free(m->folder); free(m->address); free(m->queue);
		free(m->ca_file);
	}
	free(c->mailboxes);
	for (i = 0; i < c->n_xmpps; i++) {
		struct conf_xmpp *x = &c->xmpps[i];

		free(x->name); free(x->jid); free(x->password); free(x->host);
		free(x->queue); free(x->ca_file);
	}
	free(c->xmpps);
	for (i = 0; i < c->n_webhooks; i++) {
		free(c->webhooks[i].name);
		free(c->webhooks[i].secret);
		free(c->webhooks[i].queue);
	}
	free(c->webhooks);
	for (i = 0; i < c->n_notifies; i++) {
		free(c->notifies[i].name);
		free(c->notifies[i].url);
		free(c->notifies[i].secret);
		strv_release(&c->notifies[i].events);
	}
	free(c->notifies);
	for (i = 0; i < c->n_agents; i++) {
		free(c->agents[i].name);
		free(c->agents[i].email);
		free(c->agents[i].display_name);
	}
	free(c->agents);
	for (i = 0; i < c->n_teams; i++) {
		free(c->teams[i].name);
		strv_release(&c->teams[i].agents);
	}
	free(c->teams);
	for (i = 0; i < c->n_calendars; i++) {
		free(c->calendars[i].name);
		free(c->calendars[i].timezone);
		strv_release(&c->calendars[i].hours);
		strv_release(&c->calendars[i].holidays);
	}
	free(c->calendars);
	for (i = 0; i < c->n_slas; i++) {
		free(c->slas[i].name);
		free(c->slas[i].calendar);
	}
	free(c->slas);
	for (i = 0; i < c->n_ladders; i++) {
		struct conf_ladder *l = &c->ladders[i];

		for (j = 0; j < l->n_levels; j++) {
			free(l->levels[j].team);
			strv_release(&l->levels[j].on_breach);
		}
		free(l->levels);
		free(l->name);
	}
	free(c->ladders);
	for (i = 0; i < c->n_queues; i++) {
		free(c->queues[i].name);
		free(c->queues[i].team);
		free(c->queues[i].sla);
		free(c->queues[i].ladder);
	}
	free(c->queues);
	for (i = 0; i < c->n_severities; i++) {
		free(c->severities[i].name);
		free(c->severities[i].sla);
	}
	free(c->severities);
	for (i = 0; i < c->n_rules; i++) {
		struct conf_rule *r = &c->rules[i];

		free(r->name);
		strv_release(&r->match);
		free(r->severity); free(r->queue); free(r->sla); free(r->team);
		strv_release(&r->tags);
	}
	free(c->rules);
	free(c);
	*confp = NULL;
}

/*
 * Linear scans: configs hold tens of entries. Entries without a name are
 * only seen while conf_load is still filling the arrays.
 */
#define FIND(arr, n, key, want) do {					\
	size_t i_;							\
	if (want == NULL)						\
		return NULL;						\
	for (i_ = 0; i_ < (n); i_++)					\
		if ((arr)[i_].key != NULL &&				\
		    strcmp((arr)[i_].key, want) == 0)			\
			return &(arr)[i_];				\
	return NULL;							\
} while (0)

const struct conf_webhook *
conf_webhook(const struct conf *c, const char *name)
{
	FIND(c->webhooks, c->n_webhooks, name, name);
}

const struct conf_mailbox *
conf_mailbox(const struct conf *c, const char *name)
{
	FIND(c->mailboxes, c->n_mailboxes, name, name);
}

const struct conf_xmpp *
conf_xmpp(const struct conf *c, const char *name)
{
	FIND(c->xmpps, c->n_xmpps, name, name);
}

const struct conf_queue *
conf_queue(const struct conf *c, const char *name)
{
	FIND(c->queues, c->n_queues, name, name);
}

const struct conf_team *
conf_team(const struct conf *c, const char *name)
{
	FIND(c->teams, c->n_teams, name, name);
}

const struct conf_agent *
conf_agent(const struct conf *c, const char *name)
{
	FIND(c->agents, c->n_agents, name, name);
}

const struct conf_agent *
conf_agent_by_email(const struct conf *c, const char *email)
{
	size_t i;

	/* Mail addresses arrive in any case. */
	if (email == NULL)
		return NULL;
	for (i = 0; i < c->n_agents; i++)
		if (c->agents[i].email != NULL &&
		    strcasecmp(c->agents[i].email, email) == 0)
			return &c->agents[i];
	return NULL;
}

const struct conf_sla *
conf_sla(const struct conf *c, const char *name)
{
	FIND(c->slas, c->n_slas, name, name);
}

const struct conf_ladder *
conf_ladder(const struct conf *c, const char *name)
{
	FIND(c->ladders, c->n_ladders, name, name);
}

const struct conf_calendar *
conf_calendar(const struct conf *c, const char *name)
{
	FIND(c->calendars, c->n_calendars, name, name);
}

const struct conf_severity *
conf_severity(const struct conf *c, const char *name)
{
	FIND(c->severities, c->n_severities, name, name);
}
