/*
 * rules: compile "FIELD OP VALUE" conditions once, walk them per ticket.
 * See rules.h for the semantics.
 *
 * Invariants of a compiled struct rules:
 *   1. Every rule has a name and n_conds >= 1 conditions.
 *   2. cond.re is compiled exactly when cond.op == OP_RE, and freed only by
 *      rules_free().
 *   3. A rule's tags are distinct (duplicates are dropped at compile time);
 *      max_tags is the sum of all rules' tag counts, so an outcome's tag
 *      array never needs more than that.
 *   4. Every string is the struct's own copy; outcomes point into them.
 *
 * During a walk, struct view holds the fields as the rules see them: the
 * input, overlaid with what earlier rules of the walk changed (severity and
 * queue; tags through the outcome's tag array). Regex conditions go through
 * match_capped(), the one place that bounds how much text regexec sees.
 */
#include "rules.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum field {
	F_CHANNEL, F_FROM, F_FROM_DOMAIN, F_SUBJECT, F_BODY, F_SEVERITY,
	F_QUEUE, F_CUSTOMER,
	F_N_SCALAR,			/* fields above hold one string */
	F_TAG = F_N_SCALAR
};

static const struct {
	const char *name;
	enum field field;
	int icase_eq;			/* `=` ignores ASCII case */
} fields[] = {
	{ "channel", F_CHANNEL, 1 },
	{ "from", F_FROM, 0 },
	{ "from_domain", F_FROM_DOMAIN, 1 },
	{ "subject", F_SUBJECT, 0 },
	{ "body", F_BODY, 0 },
	{ "severity", F_SEVERITY, 1 },
	{ "queue", F_QUEUE, 1 },
	{ "customer", F_CUSTOMER, 0 },
	{ "tag", F_TAG, 0 },
};

static const char *const severity_names[] = {
	"low", "normal", "high", "critical"
};

enum op { OP_EQ, OP_NE, OP_RE };

struct cond {
	enum field field;
	enum op op;
	int icase_eq;
	char *value;			/* for OP_EQ and OP_NE */
	regex_t re;			/* for OP_RE */
};

struct rule {
	char *name;
	struct cond *conds;
	size_t n_conds;
	char *severity, *queue, *sla, *team;
	char **tags;
	size_t n_tags;
	int cont;
};

struct rules {
	struct rule *v;
	size_t n;
	size_t max_tags;
};

/* The fields as the rules of one walk see them. */
struct view {
	const char *f[F_N_SCALAR];
	const char *const *in_tags;	/* the input's */
	size_t n_in_tags;
	const char *const *added;	/* added by earlier rules (outcome) */
	size_t n_added;
	char *scratch;			/* RULES_REGEX_MAX + 1, on demand */
	char domain[RULES_DOMAIN_MAX];
};

/* ---- small helpers ----------------------------------------------------- */

static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
ascii_casecmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a;
	const unsigned char *q = (const unsigned char *)b;

	while (*p != '\0' && ascii_lower(*p) == ascii_lower(*q)) {
		p++;
		q++;
	}
	return ascii_lower(*p) - ascii_lower(*q);
}

static char *
dup_or_null(const char *s, int *failed)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*failed = 1;
	return d;
}

/* A heap message; NULL if even that fails. */
static char *
msg(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	return rc < 0 ? NULL : s;
}

int
rules_severity_rank(const char *severity)
{
	size_t i;

	if (severity == NULL)
		return -1;
	for (i = 0; i < sizeof(severity_names) / sizeof(severity_names[0]); i++)
		if (ascii_casecmp(severity, severity_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
rules_domain_of(const char *address, char *buf, size_t len)
{
	const char *at, *end;
	size_t n, i;

	if (len > 0)
		buf[0] = '\0';
	if (address == NULL || (at = strrchr(address, '@')) == NULL)
		return NULL;
	at++;
	end = at + strlen(at);
	if (end > at && end[-1] == '>')
		end--;
	n = (size_t)(end - at);
	if (n == 0 || n >= len)
		return NULL;
	for (i = 0; i < n; i++)
		buf[i] = (char)ascii_lower((unsigned char)at[i]);
	buf[n] = '\0';
	return buf;
}

/* ---- compiling --------------------------------------------------------- */

/*
 * Whether regex P may run as "^.*(P)". glibc's regexec tries each start
 * position in turn and from each runs as far as the pattern can go, so
 * "a+b" over 64 KiB of "a" takes seconds (quadratic). "^.*(P)" has one
 * start position and, with REG_NOSUB, stops at the first match: one linear
 * pass, the same answer. The wrap is safe only when
 *   - P has no '^' anchor: glibc lets a '^' that is not at the start of the
 *     whole pattern match after a newline, so "^.*(^a)" matches "x\na"
 *     where "^a" does not (a P that starts with '^' is anchored, and fast,
 *     as written);
 *   - P's parentheses balance (glibc reads an unmatched ')' as a literal,
 *     which the wrap would pair with its own '(');
 *   - P has no back-reference (the wrap renumbers the groups);
 *   - the locale is single-byte: in UTF-8, '.' does not cross an invalid
 *     byte, which plain P would just skip (escalon never calls setlocale,
 *     so it runs in "C").
 * Bracket expressions are skipped as POSIX defines them ("[]a]", "[^]a]",
 * "[[:alpha:]]", "[[.-.]]"; a backslash in them is literal). Any doubt
 * answers 0: P then runs as written, still under RULES_REGEX_MAX.
 */
static int
can_anchor(const char *p)
{
	int depth = 0;
	char end;

	if (MB_CUR_MAX != 1)
		return 0;
	while (*p != '\0') {
		switch (*p) {
		case '\\':
			if (p[1] == '\0' || (p[1] >= '1' && p[1] <= '9'))
				return 0;
			p += 2;
			continue;
		case '[':
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p != ']') {
				if (*p == '\0')
					return 0;
				if (*p == '[' && (p[1] == ':' || p[1] == '.' ||
				    p[1] == '=')) {
					end = p[1];
					for (p += 2; p[0] != end || p[1] != ']'; p++)
						if (*p == '\0')
							return 0;
					p += 2;
				} else
					p++;
			}
			break;
		case '^':
			return 0;
		case '(':
			depth++;
			break;
		case ')':
			if (--depth < 0)
				return 0;
			break;
		}
		p++;
	}
	return depth == 0;
}

/*
 * "FIELD OP VALUE" -> *c; the same grammar as gateway/conf.c check_match().
 * Returns 0, or -1 with a heap message in *error_r.
 */
static int
parse_cond(const char *rule, const char *m, struct cond *c, char **error_r)
{
	const char *p = m, *op, *value;
	size_t n, oplen, i;
	int rc, flags;
	char why[256], *wrapped;
	regex_t re;

	n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
	if (n == 0 || (p[n] != ' ' && p[n] != '\t')) {
		*error_r = msg("rule \"%s\": match \"%s\" is not FIELD OP VALUE",
		    rule, m);
		return -1;
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strlen(fields[i].name) == n &&
		    strncmp(fields[i].name, p, n) == 0)
			break;
	if (i == sizeof(fields) / sizeof(fields[0])) {
		*error_r = msg("rule \"%s\": unknown field \"%.*s\" in match "
		    "\"%s\"", rule, (int)n, p, m);
		return -1;
	}
	c->field = fields[i].field;
	c->icase_eq = fields[i].icase_eq;

	op = p + n + strspn(p + n, " \t");
	oplen = strcspn(op, " \t");
	if (oplen == 1 && op[0] == '=')
		c->op = OP_EQ;
	else if (oplen == 2 && op[0] == '!' && op[1] == '=')
		c->op = OP_NE;
	else if ((oplen == 1 && op[0] == '~') ||
	    (oplen == 2 && op[0] == '~' && op[1] == '*'))
		c->op = OP_RE;
	else {
		*error_r = msg("rule \"%s\": unknown operator \"%.*s\" in match "
		    "\"%s\"", rule, (int)oplen, op, m);
		return -1;
	}
	value = op + oplen + strspn(op + oplen, " \t");
	if (value == op + oplen || *value == '\0') {
		*error_r = msg("rule \"%s\": match \"%s\" has no value", rule, m);
		return -1;
	}

	if (c->op != OP_RE) {
		if ((c->value = strdup(value)) == NULL) {
			*error_r = msg("out of memory");
			return -1;
		}
		return 0;
	}
	flags = REG_EXTENDED | REG_NOSUB | (oplen == 2 ? REG_ICASE : 0);
	const char *costly = rules_regex_too_costly(value);
	if (costly != NULL) {
		*error_r = msg("rule \"%s\": regex \"%s\" in match \"%s\": %s",
		    rule, value, m, costly);
		return -1;
	}
	if ((rc = regcomp(&c->re, value, flags)) != 0) {
		regerror(rc, &c->re, why, sizeof(why));
		*error_r = msg("rule \"%s\": bad regex \"%s\" in match \"%s\": "
		    "%s", rule, value, m, why);
		return -1;
	}
	if (can_anchor(value) && (wrapped = msg("^.*(%s)", value)) != NULL) {
		if (regcomp(&re, wrapped, flags) == 0) {
			regfree(&c->re);
			c->re = re;
		}
		free(wrapped);
	}
	return 0;
}

#define REGEX_MAX_BOUND 100	/* {m,n}: n at most */
#define REGEX_MAX_BOUNDS 4	/* {m,n} in one pattern */

/* The number in "{12,34}" at p ('{'), the larger one; -1 if none. */
static long
bound_of(const char *p, const char **end_r)
{
	long max = -1;

	for (p++; *p != '\0' && *p != '}'; p++) {
		if (*p >= '0' && *p <= '9') {
			long v = strtol(p, (char **)&p, 10);
			if (v > max)
				max = v;
			p--;
		}
	}
	*end_r = *p == '}' ? p : p - 1;
	return max;
}

const char *
rules_regex_too_costly(const char *pattern)
{
	int after_repeat = 0, bounds = 0;

	for (const char *p = pattern; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			after_repeat = 0;
			continue;
		}
		if (*p == '[') {	/* a bracket expression: no operators */
			const char *q = p + 1 + (p[1] == '^');
			q += *q == ']';
			while (*q != '\0' && *q != ']')
				q++;
			p = *q != '\0' ? q : q - 1;
			after_repeat = 0;
			continue;
		}
		if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
			if (after_repeat)
				return "a repetition of a repetition (like \"a++\" "
				    "or \"(x)**\") makes the regex too costly";
			if (*p == '{') {
				if (++bounds > REGEX_MAX_BOUNDS)
					return "more than 4 {m,n} bounds make the "
					    "regex too costly";
				if (bound_of(p, &p) > REGEX_MAX_BOUND)
					return "a {m,n} bound over 100 makes the "
					    "regex too costly";
			}
			after_repeat = 1;
			continue;
		}
		after_repeat = 0;
	}
	return NULL;
}

static void
rule_release(struct rule *ru)
{
	size_t i;

	for (i = 0; i < ru->n_conds; i++) {
		if (ru->conds[i].op == OP_RE)
			regfree(&ru->conds[i].re);
		free(ru->conds[i].value);
	}
	free(ru->conds);
	for (i = 0; i < ru->n_tags; i++)
		free(ru->tags[i]);
	free(ru->tags);
	free(ru->name);
	free(ru->severity);
	free(ru->queue);
	free(ru->sla);
	free(ru->team);
	memset(ru, 0, sizeof(*ru));
}

/* Returns 0, or -1 with *error_r set; RU is then released by the caller. */
static int
rule_compile(const struct rule_spec *s, size_t idx, struct rule *ru,
    char **error_r)
{
	size_t i, j;
	int failed = 0;

	if (s->name == NULL) {
		*error_r = msg("rule %zu has no name", idx + 1);
		return -1;
	}
	if (s->n_match == 0 || s->match == NULL) {
		*error_r = msg("rule \"%s\": no match conditions", s->name);
		return -1;
	}
	if (s->severity != NULL && rules_severity_rank(s->severity) < 0) {
		*error_r = msg("rule \"%s\": unknown severity \"%s\" (use low, "
		    "normal, high or critical)", s->name, s->severity);
		return -1;
	}
	if (s->n_tags > 0 && s->tags == NULL) {
		*error_r = msg("rule \"%s\": tags missing", s->name);
		return -1;
	}
	ru->cont = s->cont != 0;
	ru->name = dup_or_null(s->name, &failed);
	ru->severity = dup_or_null(s->severity, &failed);
	ru->queue = dup_or_null(s->queue, &failed);
	ru->sla = dup_or_null(s->sla, &failed);
	ru->team = dup_or_null(s->team, &failed);
	if (failed)
		goto oom;
	if ((ru->conds = calloc(s->n_match, sizeof(*ru->conds))) == NULL)
		goto oom;
	for (i = 0; i < s->n_match; i++) {
		if (s->match[i] == NULL) {
			*error_r = msg("rule \"%s\": match %zu is missing",
			    s->name, i + 1);
			return -1;
		}
		if (parse_cond(s->name, s->match[i], &ru->conds[i],
		    error_r) < 0)
			return -1;
		ru->n_conds++;
	}
	if (s->n_tags > 0 &&
	    (ru->tags = calloc(s->n_tags, sizeof(*ru->tags))) == NULL)
		goto oom;
	for (i = 0; i < s->n_tags; i++) {
		if (s->tags[i] == NULL) {
			*error_r = msg("rule \"%s\": tag %zu is missing",
			    s->name, i + 1);
			return -1;
		}
		for (j = 0; j < ru->n_tags; j++)
			if (strcmp(ru->tags[j], s->tags[i]) == 0)
				break;
		if (j < ru->n_tags)
			continue;
		if ((ru->tags[ru->n_tags] = strdup(s->tags[i])) == NULL)
			goto oom;
		ru->n_tags++;
	}
	return 0;
oom:
	*error_r = msg("out of memory");
	return -1;
}

struct rules *
rules_compile(const struct rule_spec *specs, size_t n, char **error_r)
{
	struct rules *r;
	size_t i;

	*error_r = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (n > 0 && (r->v = calloc(n, sizeof(*r->v))) == NULL)) {
		free(r);
		*error_r = msg("out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (rule_compile(&specs[i], i, &r->v[i], error_r) < 0) {
			rule_release(&r->v[i]);
			rules_free(&r);
			return NULL;
		}
		r->n++;
		r->max_tags += r->v[i].n_tags;
	}
	return r;
}

void
rules_free(struct rules **rulesp)
{
	struct rules *r = *rulesp;
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		rule_release(&r->v[i]);
	free(r->v);
	free(r);
	*rulesp = NULL;
}

size_t
rules_count(const struct rules *r)
{
	return r == NULL ? 0 : r->n;
}

/* ---- matching ---------------------------------------------------------- */

/*
 * regexec over at most RULES_REGEX_MAX bytes of S: longer text is copied,
 * cut back to a UTF-8 character boundary, into v->scratch (allocated on
 * first need, freed by the walk). strnlen keeps even the length check from
 * reading past the cap. 1 match, 0 no match, -1 failure.
 */
static int
match_capped(const regex_t *re, const char *s, struct view *v)
{
	size_t n = strnlen(s, RULES_REGEX_MAX + 1);
	int rc;

	if (n > RULES_REGEX_MAX) {
		if (v->scratch == NULL &&
		    (v->scratch = malloc(RULES_REGEX_MAX + 1)) == NULL)
			return -1;
		n = RULES_REGEX_MAX;
		/* s[n] is the first byte cut; if it continues a character,
		 * drop that character's first bytes too (at most 3). */
		while (n > RULES_REGEX_MAX - 3 &&
		    ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		memcpy(v->scratch, s, n);
		v->scratch[n] = '\0';
		s = v->scratch;
	}
	rc = regexec(re, s, 0, NULL, 0);
	if (rc == 0)
		return 1;
	return rc == REG_NOMATCH ? 0 : -1;
}

/*
 * Does "FIELD OP VALUE" hold for one string S (NULL: unknown), with OP
 * given apart from C so that tag conditions can ask "does any tag equal"?
 * 1, 0, or -1 on failure.
 */
static int
holds_one(const struct cond *c, enum op op, const char *s, struct view *v)
{
	if (s == NULL)
		return op == OP_NE;
	switch (op) {
	case OP_EQ:
	case OP_NE:
		return ((c->icase_eq ? ascii_casecmp(s, c->value) :
		    strcmp(s, c->value)) == 0) == (op == OP_EQ);
	case OP_RE:
		return match_capped(&c->re, s, v);
	}
	return 0;
}

/* tag: = and ~ when any tag does; != when no tag equals VALUE. */
static int
holds_tags(const struct cond *c, struct view *v)
{
	const char *const *lists[2] = { v->in_tags, v->added };
	size_t ns[2] = { v->n_in_tags, v->n_added };
	enum op any = c->op == OP_NE ? OP_EQ : c->op;
	size_t l, i;
	int rc;

	for (l = 0; l < 2; l++)
		for (i = 0; i < ns[l]; i++)
			if ((rc = holds_one(c, any, lists[l][i], v)) != 0)
				return rc < 0 ? -1 : c->op != OP_NE;
	return c->op == OP_NE;
}

static int
rule_matches(const struct rule *ru, struct view *v)
{
	size_t i;
	int rc;

	for (i = 0; i < ru->n_conds; i++) {
		const struct cond *c = &ru->conds[i];

		rc = c->field == F_TAG ? holds_tags(c, v) :
		    holds_one(c, c->op, v->f[c->field], v);
		if (rc <= 0)
			return rc;
	}
	return 1;
}

/* ---- the walk ---------------------------------------------------------- */

void
rule_outcome_release(struct rule_outcome *out)
{
	free(out->fired);
	free(out->tags);
	memset(out, 0, sizeof(*out));
}

static int
has_tag(const char *const *v, size_t n, const char *tag)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] != NULL && strcmp(v[i], tag) == 0)
			return 1;
	return 0;
}

/* Apply RU's actions in MODE. Returns whether it changed or set anything
 * that counts as firing in MODE. */
static int
apply_actions(const struct rule *ru, enum rules_mode mode, struct view *v,
    struct rule_outcome *out)
{
	size_t i;

	if (mode == RULES_FOLLOW_UP) {
		if (ru->severity == NULL || rules_severity_rank(ru->severity) <=
		    rules_severity_rank(v->f[F_SEVERITY]))
			return 0;
		out->severity = v->f[F_SEVERITY] = ru->severity;
		return 1;
	}
	if (ru->severity != NULL)
		out->severity = v->f[F_SEVERITY] = ru->severity;
	if (ru->queue != NULL)
		out->queue = v->f[F_QUEUE] = ru->queue;
	if (ru->sla != NULL)
		out->sla = ru->sla;
	if (ru->team != NULL)
		out->team = ru->team;
	for (i = 0; i < ru->n_tags; i++)
		if (!has_tag(v->in_tags, v->n_in_tags, ru->tags[i]) &&
		    !has_tag(out->tags, out->n_tags, ru->tags[i]))
			out->tags[out->n_tags++] = ru->tags[i];
	v->added = out->tags;
	v->n_added = out->n_tags;
	return 1;
}

int
rules_apply(const struct rules *r, const struct rule_input *in,
    enum rules_mode mode, struct rule_outcome *out)
{
	struct view v;
	size_t i;
	int rc = -1, m;

	memset(out, 0, sizeof(*out));
	memset(&v, 0, sizeof(v));
	if (r == NULL || r->n == 0)
		return 0;
	v.f[F_CHANNEL] = in->channel;
	v.f[F_FROM] = in->from;
	v.f[F_FROM_DOMAIN] = in->from_domain != NULL ? in->from_domain :
	    rules_domain_of(in->from, v.domain, sizeof(v.domain));
	v.f[F_SUBJECT] = in->subject;
	v.f[F_BODY] = in->body;
	v.f[F_SEVERITY] = in->severity;
	v.f[F_QUEUE] = in->queue;
	v.f[F_CUSTOMER] = in->customer;
	v.in_tags = in->tags;
	v.n_in_tags = in->tags != NULL ? in->n_tags : 0;

	/* Invariant 3: these bounds hold for any walk. */
	if ((out->fired = calloc(r->n, sizeof(*out->fired))) == NULL ||
	    (r->max_tags > 0 && mode == RULES_CREATE &&
	    (out->tags = calloc(r->max_tags, sizeof(*out->tags))) == NULL))
		goto out;
	for (i = 0; i < r->n; i++) {
		const struct rule *ru = &r->v[i];

		if ((m = rule_matches(ru, &v)) < 0)
			goto out;
		if (m == 0)
			continue;
		if (apply_actions(ru, mode, &v, out))
			out->fired[out->n_fired++] = ru->name;
		if (!ru->cont)
			break;
	}
	rc = (int)out->n_fired;
out:
	free(v.scratch);
	if (rc < 0)
		rule_outcome_release(out);
	return rc;
}
