/*
 * env: everything the gateway decides by, loaded and compiled together so
 * a reload swaps it whole: the config, its templates, the business
 * calendars, the routing rules and the ladders, in the plain forms rules/
 * works on. A loaded env is consistent; a failed load leaves nothing.
 */
#ifndef ESCALON_ENV_H
#define ESCALON_ENV_H

#include <stdint.h>

#include "conf.h"
#include "ladder.h"
#include "rules.h"
#include "sla.h"
#include "tmplset.h"

struct calendar;

struct env_ladder {
	struct ladder ladder;		/* levels in plain form */
	struct ladder_level *levels;
};

struct env {
	const struct conf *conf;
	const struct tmplset *templates;
	struct rules *rules;
	struct calendar **calendars;	/* parallel to conf->calendars */
	struct env_ladder *ladders;	/* parallel to conf->ladders */
	/* SHA-256 of the config file as loaded (hex; "" with env_new): the
	 * scheduler's plans are kept across restarts while it is the same. */
	char fingerprint[65];
	/* The key of reply tokens and Message-IDs (secret_file), set by
	 * whoever sends mail (run, offline acts); NULL: no mail is signed. */
	const char *secret;
	/* Owned when loaded by env_load; borrowed with env_new. */
	struct conf *own_conf;
	struct tmplset *own_templates;
};

/* Load config and templates from path and compile the rest. */
struct env *env_load(const char *path, char **error_r);
/* Compile around a conf and templates the caller keeps (tests). */
struct env *env_new(const struct conf *c, const struct tmplset *ts,
    char **error_r);
void env_free(struct env **ep);

/*
 * The SLA policy `name` (with its calendar) for a ticket; customer_update
 * from the same section. 0, or -1 if there is no such SLA.
 */
int env_sla(const struct env *e, const char *name, struct sla_policy *p_r,
    int64_t *customer_update_r);
const struct ladder *env_ladder(const struct env *e, const char *name);
/* The team of `level` on ladder `name`, or NULL. */
const char *env_level_team(const struct env *e, const char *ladder,
    int level);

#endif
