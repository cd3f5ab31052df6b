/*
 * fuzz_rules: routing rules (rules/rules.h) compiled from fuzzed condition
 * strings and applied to a fixed message.
 *
 * Input: one flag byte, then lines (a newline or a NUL ends one). Each line
 * is a condition, "FIELD OP VALUE" or not; a blank line starts the next
 * rule. At most MAX_RULES rules of MAX_CONDS conditions, each cut to
 * MAX_COND bytes. The actions of rule i are fixed by i (a severity, a
 * queue, an sla, a team, tags, some repeated); it has `continue = true`
 * when bit i of the flag byte is set.
 *
 * The oracle is rules.h read literally and evaluated here with plain
 * regcomp/regexec (no rewriting), string compares and the walk of its
 * points 1-5. Checked, aborting when broken:
 *   - every condition alone: rules_compile accepts it exactly when the
 *     grammar and regcomp do, and the rule fires (in both modes, with
 *     severity "high" over the message's "normal") exactly when the oracle
 *     says the condition holds. This pins rules.c's "^.*(P)" rewrite of a
 *     regex to the meaning of P as written;
 *   - all the rules together: compiled when every condition is, and both
 *     walks (RULES_CREATE, RULES_FOLLOW_UP) give the oracle's outcome:
 *     fired rules, severity, queue, sla, team and tags.
 *
 * Patterns that glibc's regcomp takes exponential or high polynomial
 * time or memory for are left out (costly()): more than one interval
 * ("a{255}{255}" is 65025 copies), more than MAX_PLUS '+' (each doubles
 * what it applies to: "a++++..." and "((a+)+)+..." grow as 2^n), more
 * than MAX_STACKED repetitions stacked on a repetition or a group
 * ("j**...*" with 200 '*' takes 38 s in calc_eclosure_iter). That cost
 * is glibc's, and rules come from the operator's config, not from
 * outside.
 */
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules.h"

#define MAX_RULES	8
#define MAX_CONDS	6
#define MAX_COND	200
#define MAX_PLUS	8	/* 4 with an interval */
#define MAX_STACKED	8
#define MAX_TAGS	(2 + 2 * MAX_RULES)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the fixed message ----------------------------------------------- */

static const char *const in_tags[] = { "vip", "eu-west" };

static const struct rule_input input = {
	.channel = "email",
	.from = "Jane Doe <Jane.Doe@Example.ORG>",
	.from_domain = NULL,		/* derived: example.org */
	.subject = "URGENT: outage in prod since 09:00 - caf\xc3\xa9 down",
	.body = "Hello,\nour shop has been down since this morning.\n"
	    "Error 502 on /checkout (a+b).\n> quoted line\n\tThanks, Jane\n",
	.severity = "normal",
	.queue = "general",
	.customer = NULL,
	.tags = in_tags,
	.n_tags = 2,
};

/* ---- the oracle ------------------------------------------------------ */

enum { F_CHANNEL, F_FROM, F_FROM_DOMAIN, F_SUBJECT, F_BODY, F_SEVERITY,
    F_QUEUE, F_CUSTOMER, F_TAG, F_N };

static const struct {
	const char *name;
	int icase_eq;
} fields[F_N] = {
	{ "channel", 1 }, { "from", 0 }, { "from_domain", 1 },
	{ "subject", 0 }, { "body", 0 }, { "severity", 1 }, { "queue", 1 },
	{ "customer", 0 }, { "tag", 0 },
};

enum op { OP_EQ, OP_NE, OP_RE };

struct cond {
	const char *text;	/* the line, as the rule has it */
	int ok;			/* grammar and regex fine */
	int field;
	enum op op;
	const char *value;
	regex_t re;
	int has_re;
};

struct view {
	const char *f[F_TAG];
	const char *tags[MAX_TAGS];
	size_t n_tags;
};

static int
rank(const char *s)
{
	static const char *const names[] = { "low", "normal", "high",
	    "critical" };

	for (int i = 0; s != NULL && i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* rules.h's grammar, literally: FIELD [ \t]+ OP [ \t]+ VALUE. */
static void
cond_parse(struct cond *c, const char *text)
{
	const char *p = text, *op;
	size_t n, oplen;
	int icase = 0;

	memset(c, 0, sizeof(*c));
	c->text = text;
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
	if (n == 0 || (p[n] != ' ' && p[n] != '\t'))
		return;
	for (c->field = 0; c->field < F_N; c->field++)
		if (strlen(fields[c->field].name) == n &&
		    strncmp(fields[c->field].name, p, n) == 0)
			break;
	if (c->field == F_N)
		return;
	op = p + n + strspn(p + n, " \t");
	oplen = strcspn(op, " \t");
	if (oplen == 1 && op[0] == '=')
		c->op = OP_EQ;
	else if (oplen == 2 && strncmp(op, "!=", 2) == 0)
		c->op = OP_NE;
	else if (oplen == 1 && op[0] == '~')
		c->op = OP_RE;
	else if (oplen == 2 && strncmp(op, "~*", 2) == 0)
		c->op = OP_RE, icase = 1;
	else
		return;
	c->value = op + oplen + strspn(op + oplen, " \t");
	if (c->value == op + oplen || *c->value == '\0')
		return;
	if (c->op == OP_RE) {
		/* rules.h refuses what glibc would take gigabytes for. */
		if (rules_regex_too_costly(c->value) != NULL ||
		    regcomp(&c->re, c->value, REG_EXTENDED | REG_NOSUB |
		    (icase ? REG_ICASE : 0)) != 0)
			return;
		c->has_re = 1;
	}
	c->ok = 1;
}

static void
cond_release(struct cond *c)
{
	if (c->has_re)
		regfree(&c->re);
	c->has_re = 0;
}

/* FIELD OP VALUE for one string s (NULL: unknown). */
static int
holds_one(const struct cond *c, enum op op, const char *s)
{
	if (s == NULL)
		return op == OP_NE;
	if (op == OP_RE)
		return regexec(&c->re, s, 0, NULL, 0) == 0;
	return ((fields[c->field].icase_eq ? strcasecmp(s, c->value) :
	    strcmp(s, c->value)) == 0) == (op == OP_EQ);
}

static int
holds(const struct cond *c, const struct view *v)
{
	if (c->field != F_TAG)
		return holds_one(c, c->op, v->f[c->field]);
	for (size_t i = 0; i < v->n_tags; i++)
		if (holds_one(c, c->op == OP_NE ? OP_EQ : c->op, v->tags[i]))
			return c->op != OP_NE;
	return c->op == OP_NE;
}

static void
view_init(struct view *v, const struct rule_input *in, char *domain)
{
	memset(v, 0, sizeof(*v));
	v->f[F_CHANNEL] = in->channel;
	v->f[F_FROM] = in->from;
	v->f[F_FROM_DOMAIN] = in->from_domain != NULL ? in->from_domain :
	    rules_domain_of(in->from, domain, RULES_DOMAIN_MAX);
	v->f[F_SUBJECT] = in->subject;
	v->f[F_BODY] = in->body;
	v->f[F_SEVERITY] = in->severity;
	v->f[F_QUEUE] = in->queue;
	v->f[F_CUSTOMER] = in->customer;
	for (size_t i = 0; i < in->n_tags; i++)
		v->tags[v->n_tags++] = in->tags[i];
}

/* ---- the rules ------------------------------------------------------- */

struct rule {
	char name[16];
	struct cond conds[MAX_CONDS];
	const char *match[MAX_CONDS];
	size_t n_conds;
	struct rule_spec spec;
};

static const char *const severities[] = { NULL, "low", "normal", "high",
    "critical" };
static const char *const tags_even[] = { "vip", "escalate", "new" };
static const char *const tags_odd[] = { "new", "new" };

static void
rule_actions(struct rule *r, size_t i, int cont)
{
	snprintf(r->name, sizeof(r->name), "r%zu", i);
	r->spec = (struct rule_spec){
		.name = r->name,
		.match = r->match,
		.n_match = r->n_conds,
		.severity = severities[(i * 3 + 2) % 5],
		.queue = i % 3 == 0 ? "incidents" : i % 3 == 2 ? "General" :
		    NULL,
		.sla = i % 2 ? "gold" : NULL,
		.team = i % 4 == 0 ? "ops" : NULL,
		.tags = i % 2 == 0 ? tags_even : tags_odd,
		.n_tags = i % 2 == 0 ? 3 : 2,
		.cont = cont,
	};
}

/* The oracle's walk over rules[0..n) in mode: *out as rules_apply fills
 * it; returns the number fired. */
static size_t
walk(const struct rule *rules, size_t n, enum rules_mode mode,
    struct rule_outcome *out, const char **fired, const char **tags)
{
	struct view v;
	char domain[RULES_DOMAIN_MAX];

	memset(out, 0, sizeof(*out));
	out->fired = fired;
	out->tags = tags;
	view_init(&v, &input, domain);
	for (size_t i = 0; i < n; i++) {
		const struct rule_spec *s = &rules[i].spec;
		int m = 1, fire = 1;

		for (size_t j = 0; j < rules[i].n_conds && m; j++)
			m = holds(&rules[i].conds[j], &v);
		if (!m)
			continue;
		if (mode == RULES_FOLLOW_UP) {
			fire = s->severity != NULL &&
			    rank(s->severity) > rank(v.f[F_SEVERITY]);
			if (fire)
				out->severity = v.f[F_SEVERITY] = s->severity;
		} else {
			if (s->severity != NULL)
				out->severity = v.f[F_SEVERITY] = s->severity;
			if (s->queue != NULL)
				out->queue = v.f[F_QUEUE] = s->queue;
			if (s->sla != NULL)
				out->sla = s->sla;
			if (s->team != NULL)
				out->team = s->team;
			for (size_t t = 0; t < s->n_tags; t++) {
				size_t k;
				for (k = 0; k < v.n_tags; k++)
					if (strcmp(v.tags[k], s->tags[t]) == 0)
						break;
				if (k < v.n_tags)
					continue;
				v.tags[v.n_tags++] = s->tags[t];
				tags[out->n_tags++] = s->tags[t];
			}
		}
		if (fire)
			fired[out->n_fired++] = s->name;
		if (!s->cont)
			break;
	}
	return out->n_fired;
}

static int
same_str(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static void
dump(const struct rule *rules, size_t n, const char *what)
{
	fprintf(stderr, "fuzz_rules: %s\n", what);
	for (size_t i = 0; i < n; i++) {
		fprintf(stderr, "  rule %s (continue %d):\n", rules[i].name,
		    rules[i].spec.cont);
		for (size_t j = 0; j < rules[i].n_conds; j++)
			fprintf(stderr, "    match \"%s\"\n",
			    rules[i].match[j]);
	}
}

static void
compare(const struct rule *rules, size_t n, const struct rules *compiled,
    enum rules_mode mode)
{
	struct rule_outcome got, want;
	const char *fired[MAX_RULES], *tags[MAX_TAGS];
	int rc = rules_apply(compiled, &input, mode, &got);
	int ok;

	walk(rules, n, mode, &want, fired, tags);
	if (rc < 0) {
		dump(rules, n, "rules_apply failed");
		abort();
	}
	ok = (size_t)rc == want.n_fired && got.n_fired == want.n_fired &&
	    got.n_tags == want.n_tags && same_str(got.severity,
	    want.severity) && same_str(got.queue, want.queue) &&
	    same_str(got.sla, want.sla) && same_str(got.team, want.team);
	for (size_t i = 0; ok && i < want.n_fired; i++)
		ok = same_str(got.fired[i], want.fired[i]);
	for (size_t i = 0; ok && i < want.n_tags; i++)
		ok = same_str(got.tags[i], want.tags[i]);
	if (!ok) {
		dump(rules, n, mode == RULES_CREATE ? "the walk (create) "
		    "differs from rules.h" : "the walk (follow-up) differs "
		    "from rules.h");
		fprintf(stderr, "  fired %zu, rules.h says %zu\n", got.n_fired,
		    want.n_fired);
		abort();
	}
	rule_outcome_release(&got);
}

/* One condition alone in a rule that raises severity to high. */
static void
one_cond(struct cond *c)
{
	struct rule r = { .n_conds = 1 };
	struct rules *compiled;
	char *error = NULL;

	r.conds[0] = *c;
	r.match[0] = c->text;
	rule_actions(&r, 0, 0);
	r.spec.severity = "high";
	r.spec.queue = NULL;
	r.spec.team = NULL;
	r.spec.n_tags = 0;
	compiled = rules_compile(&r.spec, 1, &error);
	if ((compiled != NULL) != c->ok) {
		dump(&r, 1, compiled != NULL ? "compiled, but rules.h's "
		    "grammar or regcomp refuse it" : "refused, but rules.h's "
		    "grammar and regcomp accept it");
		fprintf(stderr, "  error: %s\n", error ? error : "(none)");
		abort();
	}
	if (compiled == NULL) {
		if (error == NULL)
			abort();
		free(error);
		return;
	}
	compare(&r, 1, compiled, RULES_CREATE);
	compare(&r, 1, compiled, RULES_FOLLOW_UP);
	rules_free(&compiled);
}

static int
costly(const char *s)
{
	int braces = 0, plus = 0, stacked = 0;

	for (const char *p = s; *p != '\0'; p++) {
		braces += *p == '{';
		plus += *p == '+';
		stacked += strchr("*+?{", *p) != NULL && p > s &&
		    strchr("*+?)}", p[-1]) != NULL;
	}
	return braces > 1 || plus > (braces > 0 ? MAX_PLUS / 2 : MAX_PLUS) ||
	    stacked > MAX_STACKED;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rule rules[MAX_RULES];
	struct rule_spec specs[MAX_RULES];
	char lines[MAX_RULES][MAX_CONDS][MAX_COND + 1];
	size_t n_rules = 0, at = 1;
	struct rules *compiled;
	char *error = NULL;
	int all_ok = 1;

	if (size == 0)
		return 0;
	memset(rules, 0, sizeof(rules));
	while (at < size && n_rules < MAX_RULES) {
		size_t end = at, len;
		while (end < size && data[end] != '\n' && data[end] != '\0')
			end++;
		len = end - at;
		if (len == 0) {
			if (rules[n_rules].n_conds > 0)
				n_rules++;
		} else if (n_rules < MAX_RULES &&
		    rules[n_rules].n_conds < MAX_CONDS) {
			struct rule *r = &rules[n_rules];
			char *line = lines[n_rules][r->n_conds];
			if (len > MAX_COND)
				len = MAX_COND;
			memcpy(line, data + at, len);
			line[len] = '\0';
			if (!costly(line)) {
				r->match[r->n_conds] = line;
				cond_parse(&r->conds[r->n_conds], line);
				r->n_conds++;
			}
		}
		at = end + 1;
	}
	if (n_rules < MAX_RULES && rules[n_rules].n_conds > 0)
		n_rules++;
	if (n_rules == 0)
		return 0;

	for (size_t i = 0; i < n_rules; i++) {
		rule_actions(&rules[i], i, (data[0] >> i) & 1);
		for (size_t j = 0; j < rules[i].n_conds; j++) {
			one_cond(&rules[i].conds[j]);
			all_ok &= rules[i].conds[j].ok;
		}
	}

	for (size_t i = 0; i < n_rules; i++)
		specs[i] = rules[i].spec;
	compiled = rules_compile(specs, n_rules, &error);
	if ((compiled != NULL) != all_ok) {
		dump(rules, n_rules, "the rule set compiled differently from "
		    "its conditions alone");
		abort();
	}
	if (compiled != NULL) {
		if (rules_count(compiled) != n_rules)
			abort();
		compare(rules, n_rules, compiled, RULES_CREATE);
		compare(rules, n_rules, compiled, RULES_FOLLOW_UP);
		rules_free(&compiled);
	} else {
		free(error);
	}
	for (size_t i = 0; i < n_rules; i++)
		for (size_t j = 0; j < rules[i].n_conds; j++)
			cond_release(&rules[i].conds[j]);
	return 0;
}
