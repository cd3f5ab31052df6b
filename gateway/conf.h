/*
 * conf: the gateway's configuration, parsed from libconfuse syntax (SPEC.md
 * "Configuration") into plain read-only structs.
 *
 * conf.c is the only file that sees cfg_t. Everything here is owned by the
 * struct conf that conf_load() returns and is freed by conf_free(); callers
 * borrow. A loaded conf is complete and consistent: every key has its value
 * or default, every cross-reference (queue -> team, sla, ladder; ladder level
 * -> team; team -> agents; sla -> calendar; severity -> sla; rule -> queue,
 * sla, team; mailbox, xmpp, webhook -> queue) names something that exists.
 *
 * Paths (store, secret_file, api_token_file, templates, control_socket,
 * ca_file) are made absolute against the folder holding the config file.
 * Durations are seconds, sizes bytes.
 */
#ifndef ESCALON_CONF_H
#define ESCALON_CONF_H

#include <stddef.h>
#include <stdint.h>

enum conf_tls { CONF_TLS_NONE, CONF_TLS_STARTTLS, CONF_TLS_TLS };

struct conf_strv {
	char **v;
	size_t n;
};

struct conf_smtp {
	int present;			/* 0 when the config has no smtp section */
	char *url, *from, *user, *password, *ca_file;
	enum conf_tls tls;
	int tls_verify;
};

struct conf_outbox {
	int64_t retry_first, retry_max;
	int max_attempts;
};

struct conf_mailbox {
	char *name, *host, *user, *password, *folder, *address, *queue;
	char *ca_file;
	int port;
	enum conf_tls tls;
	int tls_verify;
	int64_t poll_interval;
};

struct conf_xmpp {
	char *name, *jid, *password, *host, *queue, *ca_file;
	int port;
	enum conf_tls tls;
	int tls_verify;
};

struct conf_webhook {
	char *name, *secret, *queue;
};

struct conf_notify {
	char *name, *url, *secret;
	struct conf_strv events;	/* each one of SPEC.md's event names */
};

struct conf_agent {
	char *name;			/* the section title, as used in teams */
	char *email, *display_name;	/* display_name: the `name` key */
};

struct conf_team {
	char *name;
	struct conf_strv agents;
};

struct conf_calendar {
	char *name, *timezone;
	struct conf_strv hours;		/* "mon-fri 09:00-17:00", validated */
	struct conf_strv holidays;	/* "YYYY-MM-DD", validated */
};

struct conf_sla {
	char *name, *calendar;
	int64_t first_response, next_update, resolution;
	int64_t customer_update;	/* 0: no updates while escalated */
	int warn_at;			/* percent, 1..100 */
};

struct conf_level {
	int level;			/* 1-based, levels are contiguous */
	char *team;
	int64_t after;			/* 0: only by breach or by hand */
	struct conf_strv on_breach;	/* clock names */
};

struct conf_ladder {
	char *name;
	struct conf_level *levels;	/* sorted by level */
	size_t n_levels;
};

struct conf_queue {
	char *name, *team, *sla, *ladder;
};

struct conf_severity {
	char *name;			/* low, normal, high or critical */
	char *sla;			/* NULL: the queue's sla */
	int start_level;		/* 0: not set */
};

struct conf_rule {
	char *name;
	struct conf_strv match;		/* "FIELD OP VALUE", syntax validated */
	char *severity, *queue, *sla, *team;	/* NULL when not set */
	struct conf_strv tags;
	int cont;			/* `continue = true` */
	int line;			/* where the section starts, for messages */
};

struct conf {
	char *path;			/* the file as given */
	char *dir;			/* its folder, absolute */

	char *store, *listen, *base_url, *secret_file, *api_token_file;
	char *templates, *control_socket;
	int64_t reopen_within, close_after;
	int64_t max_message_size, max_attachment_size, max_webhook_size;
	int max_autoreplies;

	struct conf_smtp smtp;
	struct conf_outbox outbox;

#define CONF_ARRAY(type, name) struct type *name; size_t n_##name
	CONF_ARRAY(conf_mailbox, mailboxes);
	CONF_ARRAY(conf_xmpp, xmpps);
	CONF_ARRAY(conf_webhook, webhooks);
	CONF_ARRAY(conf_notify, notifies);
	CONF_ARRAY(conf_agent, agents);
	CONF_ARRAY(conf_team, teams);
	CONF_ARRAY(conf_calendar, calendars);
	CONF_ARRAY(conf_sla, slas);
	CONF_ARRAY(conf_ladder, ladders);
	CONF_ARRAY(conf_queue, queues);
	CONF_ARRAY(conf_severity, severities);
	CONF_ARRAY(conf_rule, rules);	/* in file order */
#undef CONF_ARRAY
};

/*
 * Parse and validate PATH. On failure returns NULL and sets *error_r to a
 * heap string "FILE:LINE: message" (or "FILE: message" where there is no
 * line, such as a missing file); the caller frees it.
 */
struct conf *conf_load(const char *path, char **error_r);
void conf_free(struct conf **confp);

/* Look-ups by name; NULL when absent. */
const struct conf_webhook *conf_webhook(const struct conf *c, const char *name);
const struct conf_mailbox *conf_mailbox(const struct conf *c,
    const char *name);
const struct conf_xmpp *conf_xmpp(const struct conf *c, const char *name);
const struct conf_queue *conf_queue(const struct conf *c, const char *name);
const struct conf_team *conf_team(const struct conf *c, const char *name);
const struct conf_agent *conf_agent(const struct conf *c, const char *name);
const struct conf_agent *conf_agent_by_email(const struct conf *c,
    const char *email);
const struct conf_sla *conf_sla(const struct conf *c, const char *name);
const struct conf_ladder *conf_ladder(const struct conf *c, const char *name);
const struct conf_calendar *conf_calendar(const struct conf *c,
    const char *name);
const struct conf_severity *conf_severity(const struct conf *c,
    const char *name);

/*
 * "1h30m", "45s", "2d", "90" (bare seconds) -> seconds. Returns 0, or -1 for
 * anything else (empty, unknown unit, overflow, negative).
 */
int conf_parse_duration(const char *s, int64_t *secs_r);

/* "512", "64K", "10M", "1G" (binary units) -> bytes; -1 as above. */
int conf_parse_size(const char *s, int64_t *bytes_r);

#endif
