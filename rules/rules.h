/*
 * rules: routing rules (SPEC.md "Configuration", `rule` sections): compile
 * the rules once at config load, then evaluate them against a ticket's
 * fields on creation and on every customer follow-up.
 *
 * Pure logic over plain structs: nothing here includes gateway/; the core
 * translates its struct conf_rule into struct rule_spec and a ticket into
 * struct rule_input. Nothing logs and nothing blocks.
 *
 * Conditions are "FIELD OP VALUE", the grammar gateway/conf.c validates:
 * FIELD is [a-z_]+ (channel, from, from_domain, subject, body, severity,
 * queue, customer, tag), then spaces or tabs, OP (=, !=, ~, ~*), then spaces
 * or tabs, VALUE: the rest of the string as written (trailing blanks
 * included), never empty. `~` is a POSIX extended regex (REG_EXTENDED |
 * REG_NOSUB), `~*` the same case-insensitively (REG_ICASE); a regex matches
 * when it matches anywhere in the field (anchor it with ^ and $ to match the
 * whole field).
 *
 * Comparisons:
 *   - `=` and `!=` on channel, severity, queue and from_domain ignore ASCII
 *     case ("Email" = "email"); on from, subject, body, customer and tag they
 *     are exact, byte for byte.
 *   - A NULL field (unknown: no subject, no customer ...) never satisfies
 *     `=`, `~` or `~*`, and always satisfies `!=`.
 *   - tag: `=` holds when any of the ticket's tags equals VALUE, `!=` when
 *     none does (so also when it has no tags), `~`/`~*` when any tag matches.
 *   - Matching is bounded, so that a hostile mail cannot stall the core:
 *     a regex sees at most the first RULES_REGEX_MAX bytes (64 KiB) of a
 *     field or of a tag, cut back to a UTF-8 character boundary; a keyword
 *     past that point is not seen, and `$` matches at the cut. `=` and `!=`
 *     compare whole fields (a string compare stops at the first difference).
 *   - Cost: glibc's regexec is quadratic in the text for many ordinary
 *     patterns ("urgent.*now" over 64 KiB of "urgent urgent ..." takes
 *     ~0.7 s, "a+b" over "aaa..." ~4.7 s), so rules.c runs a pattern P as
 *     "^.*(P)", which glibc matches in one linear pass (~3 ms/MiB) with the
 *     same answer. It leaves P as written, quadratic but capped, when that
 *     rewrite could change the meaning: P contains '^' outside brackets,
 *     an unmatched ')' (a literal in glibc), or a back-reference (\1-\9),
 *     or the process runs in a multi-byte locale (escalon never calls
 *     setlocale, so it runs in "C").
 *
 * The walk (rules_apply):
 *   1. Rules are tried in the order given (file order). A rule matches when
 *      all its conditions hold.
 *   2. A rule that matches applies its actions, then the walk stops, unless
 *      the rule has `continue = true` (cont), in which case the walk goes on
 *      with the next rule.
 *   3. Later rules see the fields as changed by earlier rules of the same
 *      walk: after a rule sets queue = "incidents" (with continue), a later
 *      `queue = incidents` condition holds; tags added earlier count for
 *      later `tag` conditions.
 *   4. RULES_CREATE (a new ticket) applies every action: severity, queue,
 *      sla, team (the last rule to set each wins) and tags (added).
 *   5. RULES_FOLLOW_UP (a customer follow-up on an existing ticket) walks
 *      the same way (a matching rule without continue still stops the walk)
 *      but applies only severity, and only when it raises the ticket's
 *      current severity (low < normal < high < critical; a ticket with no
 *      or an unknown severity is raised by any); it never lowers it and
 *      ignores queue, sla, team and tags. Only rules that raised the
 *      severity are reported as fired.
 *
 * Ownership: struct rules owns copies of every string in the specs (the
 * specs may be freed once rules_compile returns). A struct rule_outcome
 * borrows its strings from the struct rules that produced it (valid until
 * rules_free) and owns only its two arrays, released by
 * rule_outcome_release(). A compiled struct rules is read-only: several
 * walks may use it at once.
 */
#ifndef ESCALON_RULES_H
#define ESCALON_RULES_H

#include <stddef.h>

/*
 * NULL when pattern is fine to compile, else why not. glibc's regcomp
 * copies a pattern's tree for every repetition, so a repetition of a
 * repetition ("(a)++++", "a**") or a large bound ("a{1000}") takes
 * gigabytes and seconds; such patterns are refused (check and run alike).
 */
const char *rules_regex_too_costly(const char *pattern);

/* The most bytes of one field (or one tag) a regex condition examines. */
#define RULES_REGEX_MAX		(64 * 1024)

/* Size of a buffer that holds any domain rules_domain_of() accepts. */
#define RULES_DOMAIN_MAX	256

/* One `rule` section, as the core hands it over. Everything is borrowed
 * for the duration of rules_compile() only. */
struct rule_spec {
	const char *name;		/* the section title, for messages */
	const char *const *match;	/* "FIELD OP VALUE", n_match >= 1 */
	size_t n_match;
	/* Actions; NULL: not set. severity is low, normal, high or critical. */
	const char *severity, *queue, *sla, *team;
	const char *const *tags;	/* tags to add */
	size_t n_tags;
	int cont;			/* `continue = true` */
};

/* What a rule sees of a ticket. Every field may be NULL (unknown). */
struct rule_input {
	const char *channel;		/* email, chat or webhook */
	const char *from;		/* the sender's address */
	/* NULL: derived from `from` with rules_domain_of(). */
	const char *from_domain;
	const char *subject, *body;	/* body: the text a customer wrote */
	const char *severity, *queue;	/* the ticket's current ones */
	const char *customer;
	const char *const *tags;	/* the ticket's current tags */
	size_t n_tags;
};

enum rules_mode {
	RULES_CREATE,			/* a new ticket: every action */
	RULES_FOLLOW_UP			/* a follow-up: severity raises only */
};

/*
 * The decision of one walk. Strings are borrowed from the struct rules;
 * the arrays `fired` and `tags` are owned (rule_outcome_release).
 */
struct rule_outcome {
	const char **fired;		/* names of the rules that fired, */
	size_t n_fired;			/* in walk order */
	/* The final values the rules set; NULL where no rule set one. In
	 * RULES_FOLLOW_UP only severity is ever set (a raise). */
	const char *severity, *queue, *sla, *team;
	/* Tags to add: those the firing rules name that the input did not
	 * already carry, each once, in order of first appearance. */
	const char **tags;
	size_t n_tags;
};

struct rules;

/*
 * Compile N specs (SPECS may be NULL when N is 0: no rules). Every
 * condition is parsed and every regex compiled here, once. Returns NULL on
 * the first bad spec and sets *error_r to a heap string the caller frees,
 * naming the rule and the condition, e.g.
 *     rule "outage": bad regex "(" in match "subject ~ (": ...
 * (*error_r is NULL only if even that message could not be allocated.)
 * A rule needs a name and at least one condition; its severity, if set,
 * must be one of the four names.
 */
struct rules *rules_compile(const struct rule_spec *specs, size_t n,
    char **error_r);
void rules_free(struct rules **rulesp);

/* How many rules were compiled. */
size_t rules_count(const struct rules *r);

/*
 * Walk the rules (R may be NULL: no rules) over IN in MODE and fill *OUT,
 * which need not be initialised and is overwritten. Returns the number of
 * rules reported in out->fired (>= 0), or -1 when memory ran out or regexec
 * failed (out is then empty, nothing to release). On success, release *out
 * with rule_outcome_release() (harmless when nothing fired).
 */
int rules_apply(const struct rules *r, const struct rule_input *in,
    enum rules_mode mode, struct rule_outcome *out);

/* Free OUT's arrays and empty it; safe to call twice. */
void rule_outcome_release(struct rule_outcome *out);

/*
 * The domain of ADDRESS: the part after its last '@', ASCII-lowercased,
 * with one trailing '>' dropped ("Bob <bob@Example.ORG>" -> "example.org").
 * Writes it into BUF (LEN bytes, RULES_DOMAIN_MAX is always enough for a
 * valid domain) and returns BUF; returns NULL (and BUF, if LEN > 0, holds
 * "") when ADDRESS is NULL, has no '@', has nothing after it, or the domain
 * does not fit.
 */
const char *rules_domain_of(const char *address, char *buf, size_t len);

/*
 * low 0, normal 1, high 2, critical 3 (ASCII case ignored); -1 for NULL or
 * anything else.
 */
int rules_severity_rank(const char *severity);

#endif
