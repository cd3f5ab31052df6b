/* env: the config and what is compiled from it. See env.h. */
#include "env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "crypto.h"

static int
compile(struct env *e, char **error_r)
{
	const struct conf *c = e->conf;
	struct rule_spec *specs = NULL;

	e->calendars = calloc(c->n_calendars + 1, sizeof(*e->calendars));
	e->ladders = calloc(c->n_ladders + 1, sizeof(*e->ladders));
	specs = calloc(c->n_rules + 1, sizeof(*specs));
	if (e->calendars == NULL || e->ladders == NULL || specs == NULL)
		goto nomem;
	for (size_t i = 0; i < c->n_calendars; i++) {
		const struct conf_calendar *cc = &c->calendars[i];
		char *why = NULL;
		e->calendars[i] = calendar_new(cc->timezone,
		    (const char *const *)cc->hours.v, cc->hours.n,
		    (const char *const *)cc->holidays.v, cc->holidays.n, &why);
		if (e->calendars[i] == NULL) {
			if (asprintf(error_r, "%s: calendar \"%s\": %s", c->path,
			    cc->name, why ? why : "invalid") < 0)
				*error_r = NULL;
			free(why);
			goto fail;
		}
	}
	for (size_t i = 0; i < c->n_ladders; i++) {
		const struct conf_ladder *cl = &c->ladders[i];
		struct env_ladder *el = &e->ladders[i];
		el->levels = calloc(cl->n_levels + 1, sizeof(*el->levels));
		if (el->levels == NULL)
			goto nomem;
		for (size_t k = 0; k < cl->n_levels; k++) {
			el->levels[k].after = cl->levels[k].after;
			for (size_t b = 0; b < cl->levels[k].on_breach.n; b++) {
				int clock = sla_clock_parse(
				    cl->levels[k].on_breach.v[b]);
				if (clock >= 0)
					el->levels[k].on_breach |=
					    SLA_BIT(clock);
			}
		}
		el->ladder.levels = el->levels;
		el->ladder.n = cl->n_levels;
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct conf_rule *r = &c->rules[i];
		specs[i] = (struct rule_spec){
			.name = r->name,
			.match = (const char *const *)r->match.v,
			.n_match = r->match.n,
			.severity = r->severity, .queue = r->queue,
			.sla = r->sla, .team = r->team,
			.tags = (const char *const *)r->tags.v,
			.n_tags = r->tags.n,
			.cont = r->cont,
		};
	}
	char *why = NULL;
	e->rules = rules_compile(specs, c->n_rules, &why);
	if (e->rules == NULL) {
		if (asprintf(error_r, "%s: %s", c->path, why ? why :
		    "rules do not compile") < 0)
			*error_r = NULL;
		free(why);
		goto fail;
	}
	free(specs);
	return 0;
nomem:
	*error_r = strdup("out of memory");
fail:
	free(specs);
	return -1;
}

struct env *
env_new(const struct conf *c, const struct tmplset *ts, char **error_r)
{
	struct env *e = calloc(1, sizeof(*e));

	*error_r = NULL;
	if (e == NULL)
		return NULL;
	e->conf = c;
	e->templates = ts;
	if (compile(e, error_r) < 0)
		env_free(&e);
	return e;
}

static void
fingerprint(const char *path, char out[65])
{
	unsigned char mac[CRYPTO_SHA256_LEN], buf[1 << 16];
	FILE *f = fopen(path, "re");
	size_t n;

	out[0] = '\0';
	if (f == NULL)
		return;
	/* conf.c refuses a config over 1 MiB; hash what it read. */
	char *all = NULL;
	size_t len = 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		char *p = realloc(all, len + n);
		if (p == NULL)
			break;
		all = p;
		memcpy(all + len, buf, n);
		len += n;
	}
	fclose(f);
	if (crypto_sha256(all != NULL ? all : "", len, mac) == 0)
		crypto_hex(mac, sizeof(mac), out);
	free(all);
}

struct env *
env_load(const char *path, char **error_r)
{
	struct conf *c = conf_load(path, error_r);
	struct tmplset *ts = c != NULL ? tmplset_load(c->templates, error_r) :
	    NULL;
	struct env *e = NULL;

	if (ts != NULL)
		e = env_new(c, ts, error_r);
	if (e == NULL) {
		tmplset_free(&ts);
		conf_free(&c);
		return NULL;
	}
	e->own_conf = c;
	e->own_templates = ts;
	fingerprint(path, e->fingerprint);
	return e;
}

void
env_free(struct env **ep)
{
	struct env *e = *ep;

	if (e == NULL)
		return;
	if (e->calendars != NULL)
		for (size_t i = 0; i < e->conf->n_calendars; i++)
			calendar_free(&e->calendars[i]);
	if (e->ladders != NULL)
		for (size_t i = 0; i < e->conf->n_ladders; i++)
			free(e->ladders[i].levels);
	free(e->calendars);
	free(e->ladders);
	rules_free(&e->rules);
	tmplset_free(&e->own_templates);
	conf_free(&e->own_conf);
	free(e);
	*ep = NULL;
}

int
env_sla(const struct env *e, const char *name, struct sla_policy *p_r,
    int64_t *customer_update_r)
{
	const struct conf *c = e->conf;

	for (size_t i = 0; name != NULL && i < c->n_slas; i++) {
		const struct conf_sla *s = &c->slas[i];
		if (strcmp(s->name, name) != 0)
			continue;
		memset(p_r, 0, sizeof(*p_r));
		for (size_t k = 0; k < c->n_calendars; k++)
			if (strcmp(c->calendars[k].name, s->calendar) == 0)
				p_r->calendar = e->calendars[k];
		if (p_r->calendar == NULL)
			return -1;
		p_r->target[SLA_FIRST_RESPONSE] = s->first_response;
		p_r->target[SLA_NEXT_UPDATE] = s->next_update;
		p_r->target[SLA_RESOLUTION] = s->resolution;
		p_r->warn_at = s->warn_at;
		if (customer_update_r != NULL)
			*customer_update_r = s->customer_update;
		return 0;
	}
	return -1;
}

const struct ladder *
env_ladder(const struct env *e, const char *name)
{
	for (size_t i = 0; name != NULL && i < e->conf->n_ladders; i++)
		if (strcmp(e->conf->ladders[i].name, name) == 0)
			return &e->ladders[i].ladder;
	return NULL;
}

const char *
env_level_team(const struct env *e, const char *ladder, int level)
{
	const struct conf_ladder *l = conf_ladder(e->conf, ladder);

	if (l == NULL || level < 1 || (size_t)level > l->n_levels)
		return NULL;
	return l->levels[level - 1].team;
}
