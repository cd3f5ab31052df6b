/*
 * test_rules: routing rules (rules.h).
 *
 * - cond_cases: one condition against one input, for every field and every
 *   operator, case rules, NULL fields, from_domain derivation, tags, regex
 *   forms that rules.c rewrites for speed (they must keep their meaning).
 * - walk_cases: rule sets walked in RULES_CREATE or RULES_FOLLOW_UP mode,
 *   with the full outcome checked: SPEC.md's example rule, first match wins,
 *   continue chains, later rules seeing earlier changes, follow-ups raising
 *   but never lowering severity.
 * - error_cases: compile errors name the rule and the condition.
 * - A 5 MB body (and subject) with patterns that are quadratic in glibc
 *   completes (nothing is asserted about time); text past RULES_REGEX_MAX
 *   is not seen, and the cut falls on a UTF-8 boundary.
 * - rules.c may rewrite a regex for speed: every pattern of a table must
 *   agree with plain regexec on every text of another.
 * - Outcome strings are borrowed from the compiled rules, not the specs
 *   (run under valgrind to see it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <regex.h>

#include "rules.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define STRV(...)	((const char *const[]){ __VA_ARGS__ })
#define NSTR(...)	(sizeof(STRV(__VA_ARGS__)) / sizeof(const char *))
/* Designated-initializer helpers for rule_spec and rule_input. */
#define MATCH(...)	.match = STRV(__VA_ARGS__), .n_match = NSTR(__VA_ARGS__)
#define TAGS(...)	.tags = STRV(__VA_ARGS__), .n_tags = NSTR(__VA_ARGS__)

/* "a,b,c" from a string vector, "" for none. */
static const char *
join(const char *const *v, size_t n, char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
		    i > 0 ? "," : "", v[i]);
	assert_true(used < len);
	return buf;
}

static void
assert_str_or_null(const char *got, const char *want, const char *what,
    size_t row)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0) {
		print_error("row %zu: %s is \"%s\", want \"%s\"\n", row, what,
		    got != NULL ? got : "(null)", want != NULL ? want : "(null)");
		fail();
	}
}

/* ---- one condition ----------------------------------------------------- */

static const struct {
	const char *match;
	struct rule_input in;
	int want;
} cond_cases[] = {
	/* channel: = and != ignore case; NULL never =, always !=. */
	{ "channel = email", { .channel = "email" }, 1 },
	{ "channel = email", { .channel = "EMAIL" }, 1 },
	{ "channel = Email", { .channel = "email" }, 1 },
	{ "channel = email", { .channel = "chat" }, 0 },
	{ "channel = email", { .channel = NULL }, 0 },
	{ "channel != email", { .channel = "chat" }, 1 },
	{ "channel != email", { .channel = "email" }, 0 },
	{ "channel != email", { .channel = "eMail" }, 0 },
	{ "channel != email", { .channel = NULL }, 1 },
	{ "channel ~ ^(chat|webhook)$", { .channel = "chat" }, 1 },
	{ "channel ~ ^(chat|webhook)$", { .channel = "email" }, 0 },
	{ "channel ~ ^chat$", { .channel = NULL }, 0 },
	{ "channel ~* ^CHAT$", { .channel = "chat" }, 1 },
	/* from: exact. */
	{ "from = bob@example.org", { .from = "bob@example.org" }, 1 },
	{ "from = bob@example.org", { .from = "Bob@example.org" }, 0 },
	{ "from != bob@example.org", { .from = "eve@example.org" }, 1 },
	{ "from != bob@example.org", { .from = "bob@example.org" }, 0 },
	{ "from != bob@example.org", { .from = NULL }, 1 },
	{ "from ~ ^bob@", { .from = "BOB@example.org" }, 0 },
	{ "from ~* ^bob@", { .from = "BOB@example.org" }, 1 },
	{ "from ~* bob", { .from = NULL }, 0 },
	/* from_domain: given, or derived from `from`; = ignores case. */
	{ "from_domain = example.org", { .from_domain = "example.org" }, 1 },
	{ "from_domain = Example.ORG", { .from_domain = "example.org" }, 1 },
	{ "from_domain = example.org", { .from_domain = "EXAMPLE.org" }, 1 },
	{ "from_domain = example.org", { .from = "bob@Example.Org" }, 1 },
	{ "from_domain = example.org",
	    { .from = "Bob <bob@example.org>" }, 1 },
	{ "from_domain = example.org", { .from = "bob@mail.example.org" }, 0 },
	{ "from_domain ~ (^|\\.)example\\.org$",
	    { .from = "bob@mail.example.org" }, 1 },
	{ "from_domain ~ (^|\\.)example\\.org$",
	    { .from = "bob@badexample.org" }, 0 },
	{ "from_domain = given.net",
	    { .from = "bob@example.org", .from_domain = "given.net" }, 1 },
	{ "from_domain = example.org", { .from = "nobody" }, 0 },
	{ "from_domain != example.org", { .from = "nobody" }, 1 },
	{ "from_domain != example.org", { .from = NULL }, 1 },
	{ "from_domain != example.org", { .from = "bob@example.org" }, 0 },
	{ "from_domain ~ .", { .from = NULL }, 0 },
	/* subject: SPEC.md's example regex, ~ vs ~*, exact =. */
	{ "subject ~* outage|down|cannot log ?in", { .subject = "Site DOWN" },
	    1 },
	{ "subject ~* outage|down|cannot log ?in",
	    { .subject = "We cannot login" }, 1 },
	{ "subject ~* outage|down|cannot log ?in",
	    { .subject = "cannot log in since 9am" }, 1 },
	{ "subject ~* outage|down|cannot log ?in",
	    { .subject = "Invoice 2026-11" }, 0 },
	{ "subject ~* outage|down|cannot log ?in", { .subject = NULL }, 0 },
	{ "subject ~ Outage", { .subject = "outage" }, 0 },
	{ "subject ~ Outage", { .subject = "Big Outage" }, 1 },
	{ "subject = Help", { .subject = "Help" }, 1 },
	{ "subject = Help", { .subject = "help" }, 0 },
	{ "subject = Help", { .subject = "Help " }, 0 },
	{ "subject != Help", { .subject = "help" }, 1 },
	{ "subject != Help", { .subject = NULL }, 1 },
	/* VALUE is the rest of the string as written; blanks may be tabs. */
	{ "subject = cannot log in", { .subject = "cannot log in" }, 1 },
	{ "subject =   two  spaces", { .subject = "two  spaces" }, 1 },
	{ "subject = trailing ", { .subject = "trailing " }, 1 },
	{ "subject = trailing ", { .subject = "trailing" }, 0 },
	{ "subject\t=\tHello", { .subject = "Hello" }, 1 },
	{ "subject  ~*  ^re:", { .subject = "RE: Hello" }, 1 },
	/* body. */
	{ "body ~* refund", { .body = "Hello,\nI want a REFUND.\n" }, 1 },
	{ "body ~ refund", { .body = "I want a REFUND." }, 0 },
	{ "body = ok", { .body = "ok" }, 1 },
	{ "body = ok", { .body = "ok\n" }, 0 },
	{ "body != ok", { .body = NULL }, 1 },
	{ "body ~ ok", { .body = "" }, 0 },
	{ "body ~ ^$", { .body = "" }, 1 },
	/* severity: = ignores case. */
	{ "severity = high", { .severity = "high" }, 1 },
	{ "severity = high", { .severity = "HIGH" }, 1 },
	{ "severity = high", { .severity = "normal" }, 0 },
	{ "severity != low", { .severity = NULL }, 1 },
	{ "severity != low", { .severity = "Low" }, 0 },
	{ "severity ~ ^(high|critical)$", { .severity = "critical" }, 1 },
	{ "severity ~ ^(high|critical)$", { .severity = "low" }, 0 },
	/* queue: = ignores case. */
	{ "queue = billing", { .queue = "Billing" }, 1 },
	{ "queue = billing", { .queue = "support" }, 0 },
	{ "queue = billing", { .queue = NULL }, 0 },
	{ "queue != billing", { .queue = "support" }, 1 },
	{ "queue ~* ^bill", { .queue = "Billing-EU" }, 1 },
	{ "queue ~ ^bill", { .queue = "Billing-EU" }, 0 },
	/* customer: exact. */
	{ "customer = acme", { .customer = "acme" }, 1 },
	{ "customer = acme", { .customer = "ACME" }, 0 },
	{ "customer != acme", { .customer = NULL }, 1 },
	{ "customer ~* ^acme", { .customer = "ACME Corp" }, 1 },
	{ "customer ~ ^acme", { .customer = NULL }, 0 },
	/* tag: = any equals (exact), != none equals, ~ any matches. */
	{ "tag = vip", { TAGS("billing", "vip") }, 1 },
	{ "tag = vip", { TAGS("VIP") }, 0 },
	{ "tag = vip", { TAGS("vip-eu") }, 0 },
	{ "tag = vip", { .tags = NULL }, 0 },
	{ "tag != vip", { TAGS("billing") }, 1 },
	{ "tag != vip", { TAGS("billing", "vip") }, 0 },
	{ "tag != vip", { .tags = NULL }, 1 },
	{ "tag ~ ^vip", { TAGS("gold", "vip-eu") }, 1 },
	{ "tag ~ ^vip", { TAGS("gold", "VIP-eu") }, 0 },
	{ "tag ~* ^VIP", { TAGS("vip-eu") }, 1 },
	{ "tag ~ ^vip", { TAGS("gold") }, 0 },
	{ "tag ~ x", { .tags = NULL }, 0 },
	{ "tag ~ ^$", { TAGS("") }, 1 },
	/* Regex forms rules.c runs as "^.*(P)" or, when that is not safe,
	 * as written: both ways must mean P. */
	{ "subject ~ ^foo", { .subject = "xfoo" }, 0 },
	{ "subject ~ ^foo", { .subject = "foo" }, 1 },
	{ "subject ~ foo$", { .subject = "a foo" }, 1 },
	{ "subject ~ foo$", { .subject = "foo bar" }, 0 },
	{ "subject ~ a|b)", { .subject = "a" }, 1 },	/* ')' literal */
	{ "subject ~ a|b)", { .subject = "b" }, 0 },
	{ "subject ~ a|b)", { .subject = "b)" }, 1 },
	{ "subject ~ [)(]x", { .subject = "(x" }, 1 },
	{ "subject ~ []a]", { .subject = "]" }, 1 },
	{ "subject ~ [^]a]", { .subject = "a]" }, 0 },
	{ "subject ~ [[:digit:]]{3}", { .subject = "ab123" }, 1 },
	{ "subject ~ [[:digit:]]{3}", { .subject = "ab12" }, 0 },
	{ "subject ~ \\(x\\)", { .subject = "f(x)" }, 1 },
	{ "subject ~ (a)\\1", { .subject = "xaax" }, 1 },	/* back-ref */
	{ "subject ~ (a)\\1", { .subject = "xax" }, 0 },
	{ "subject ~ a*", { .subject = "" }, 1 },
	{ "body ~ ^.*second", { .body = "first\nsecond" }, 1 },
	{ "body ~ first.second", { .body = "first\nsecond" }, 1 },
	{ "body ~ rst$", { .body = "first\nsecond" }, 0 },
};

static void
test_cond_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cond_cases); i++) {
		struct rule_spec spec = {
			.name = "r", .match = &cond_cases[i].match,
			.n_match = 1, .queue = "hit"
		};
		struct rule_outcome out;
		struct rules *r;
		char *error = NULL;
		int rc;

		r = rules_compile(&spec, 1, &error);
		if (r == NULL) {
			print_error("row %zu: \"%s\": %s\n", i,
			    cond_cases[i].match, error);
			fail();
		}
		rc = rules_apply(r, &cond_cases[i].in, RULES_CREATE, &out);
		if (rc != cond_cases[i].want) {
			print_error("row %zu: \"%s\" gave %d, want %d\n", i,
			    cond_cases[i].match, rc, cond_cases[i].want);
			fail();
		}
		assert_int_equal(out.n_fired, (size_t)rc);
		assert_str_or_null(out.queue, rc ? "hit" : NULL, "queue", i);
		rule_outcome_release(&out);
		rules_free(&r);
		assert_null(r);
	}
}

/* ---- walks over rule sets ---------------------------------------------- */

/* SPEC.md's example, verbatim. */
static const struct rule_spec spec_rules[] = {
	{ .name = "outage",
	  MATCH("subject ~* outage|down|cannot log ?in", "channel = email"),
	  .severity = "critical", .queue = "incidents", TAGS("outage") },
};

static const struct rule_spec first_rules[] = {
	{ .name = "billing", MATCH("subject ~* invoice|refund"),
	  .queue = "billing" },
	{ .name = "email", MATCH("channel = email"), .queue = "support",
	  .team = "tier1" },
	{ .name = "fallback", MATCH("channel ~ ."), .queue = "general" },
};

static const struct rule_spec chain_rules[] = {
	{ .name = "vip", MATCH("customer = acme"), TAGS("vip"), .sla = "gold",
	  .cont = 1 },
	{ .name = "outage", MATCH("subject ~* down"), .severity = "critical",
	  .queue = "incidents", TAGS("outage", "vip", "outage"), .cont = 1 },
	/* Sees the queue "outage" set, and stops the walk. */
	{ .name = "oncall", MATCH("queue = incidents"), .team = "oncall" },
	/* Sees the tag "vip" added. */
	{ .name = "vip-high", MATCH("tag = vip"), .severity = "high",
	  .queue = "vip" },
	{ .name = "rest", MATCH("channel ~ ."), .queue = "rest" },
};

static const struct rule_spec later_rules[] = {
	{ .name = "raise", MATCH("body ~* urgent"), .severity = "high",
	  .cont = 1 },
	{ .name = "page", MATCH("severity = high", "channel = chat"),
	  .team = "oncall", .cont = 1 },
	{ .name = "calm", MATCH("severity != high"), TAGS("calm") },
};

static const struct rule_spec follow_rules[] = {
	{ .name = "kw-critical", MATCH("body ~* outage|down"),
	  .severity = "critical", .queue = "incidents", .team = "oncall",
	  .sla = "urgent", TAGS("outage"), .cont = 1 },
	{ .name = "kw-high", MATCH("body ~* urgent"), .severity = "high",
	  .queue = "escalations", .cont = 1 },
	{ .name = "kw-low", MATCH("body ~* thanks"), .severity = "low",
	  .cont = 1 },
	{ .name = "stopper", MATCH("customer = stopco"), .queue = "stop" },
	/* Would raise to critical, but "stopper" always stops first. */
	{ .name = "after-stop", MATCH("body ~* urgent", "customer = stopco"),
	  .severity = "critical" },
};

#define RULESET(a)	a, NELEM(a)

static const struct {
	const char *what;
	const struct rule_spec *specs;
	size_t n_specs;
	struct rule_input in;
	enum rules_mode mode;
	const char *fired;		/* "a,b" */
	const char *severity, *queue, *sla, *team;
	const char *tags;		/* "a,b" */
} walk_cases[] = {
	{ "spec example matches", RULESET(spec_rules),
	  { .channel = "email", .subject = "Site is DOWN" }, RULES_CREATE,
	  "outage", "critical", "incidents", NULL, NULL, "outage" },
	{ "spec example, second alternative", RULESET(spec_rules),
	  { .channel = "Email", .subject = "Cannot log in" }, RULES_CREATE,
	  "outage", "critical", "incidents", NULL, NULL, "outage" },
	{ "spec example, subject does not match", RULESET(spec_rules),
	  { .channel = "email", .subject = "Invoice" }, RULES_CREATE,
	  "", NULL, NULL, NULL, NULL, "" },
	{ "spec example, channel does not match", RULESET(spec_rules),
	  { .channel = "chat", .subject = "site down" }, RULES_CREATE,
	  "", NULL, NULL, NULL, NULL, "" },
	{ "spec example, no subject", RULESET(spec_rules),
	  { .channel = "email" }, RULES_CREATE,
	  "", NULL, NULL, NULL, NULL, "" },
	{ "spec example, tag already there is not added again",
	  RULESET(spec_rules),
	  { .channel = "email", .subject = "outage", TAGS("outage") },
	  RULES_CREATE, "outage", "critical", "incidents", NULL, NULL, "" },

	{ "first match wins", RULESET(first_rules),
	  { .channel = "email", .subject = "Invoice 42" }, RULES_CREATE,
	  "billing", NULL, "billing", NULL, NULL, "" },
	{ "first rule misses, second wins", RULESET(first_rules),
	  { .channel = "email", .subject = "Hello" }, RULES_CREATE,
	  "email", NULL, "support", NULL, "tier1", "" },
	{ "third rule", RULESET(first_rules),
	  { .channel = "chat", .subject = "Hello" }, RULES_CREATE,
	  "fallback", NULL, "general", NULL, NULL, "" },
	{ "nothing matches", RULESET(first_rules),
	  { .subject = "Hello" }, RULES_CREATE,
	  "", NULL, NULL, NULL, NULL, "" },

	{ "continue chains; later rules see the queue set", RULESET(chain_rules),
	  { .channel = "email", .customer = "acme", .subject = "site down",
	    .queue = "support" }, RULES_CREATE,
	  "vip,outage,oncall", "critical", "incidents", "gold", "oncall",
	  "vip,outage" },
	{ "later rules see the tag added", RULESET(chain_rules),
	  { .channel = "email", .customer = "acme", .subject = "hello",
	    .queue = "support" }, RULES_CREATE,
	  "vip,vip-high", "high", "vip", "gold", NULL, "vip" },
	{ "input tags count too", RULESET(chain_rules),
	  { .channel = "chat", .customer = "other", .subject = "hello",
	    TAGS("vip") }, RULES_CREATE,
	  "vip-high", "high", "vip", NULL, NULL, "" },
	{ "input queue compared without case", RULESET(chain_rules),
	  { .channel = "chat", .subject = "hello", .queue = "Incidents" },
	  RULES_CREATE, "oncall", NULL, NULL, NULL, "oncall", "" },
	{ "no continue, walk stops", RULESET(chain_rules),
	  { .channel = "chat", .subject = "hello" }, RULES_CREATE,
	  "rest", NULL, "rest", NULL, NULL, "" },

	{ "later rules see the severity set", RULESET(later_rules),
	  { .channel = "chat", .body = "URGENT please", .severity = "normal" },
	  RULES_CREATE, "raise,page", "high", NULL, NULL, "oncall", "" },
	{ "input severity seen", RULESET(later_rules),
	  { .channel = "chat", .body = "hi", .severity = "High" },
	  RULES_CREATE, "page", NULL, NULL, NULL, "oncall", "" },
	{ "severity != after a raise", RULESET(later_rules),
	  { .channel = "email", .body = "urgent", .severity = "normal" },
	  RULES_CREATE, "raise", "high", NULL, NULL, NULL, "" },
	{ "severity != without a raise", RULESET(later_rules),
	  { .channel = "email", .body = "hi", .severity = "normal" },
	  RULES_CREATE, "calm", NULL, NULL, NULL, NULL, "calm" },

	{ "create applies everything, lowering too", RULESET(follow_rules),
	  { .body = "urgent, thanks", .severity = "normal" }, RULES_CREATE,
	  "kw-high,kw-low", "low", "escalations", NULL, NULL, "" },
	{ "create: a stop ends the walk", RULESET(follow_rules),
	  { .body = "urgent", .customer = "stopco" }, RULES_CREATE,
	  "kw-high,stopper", "high", "stop", NULL, NULL, "" },
	{ "follow-up raises, ignores queue/team/sla/tags",
	  RULESET(follow_rules),
	  { .body = "site is down", .severity = "normal", .queue = "support" },
	  RULES_FOLLOW_UP, "kw-critical", "critical", NULL, NULL, NULL, "" },
	{ "follow-up never lowers", RULESET(follow_rules),
	  { .body = "thanks", .severity = "high" }, RULES_FOLLOW_UP,
	  "", NULL, NULL, NULL, NULL, "" },
	{ "follow-up, already there", RULESET(follow_rules),
	  { .body = "down again, urgent", .severity = "critical" },
	  RULES_FOLLOW_UP, "", NULL, NULL, NULL, NULL, "" },
	{ "follow-up raise is kept past a lower rule", RULESET(follow_rules),
	  { .body = "urgent, thanks", .severity = "low" }, RULES_FOLLOW_UP,
	  "kw-high", "high", NULL, NULL, NULL, "" },
	{ "follow-up, case of the current severity", RULESET(follow_rules),
	  { .body = "urgent", .severity = "HIGH" }, RULES_FOLLOW_UP,
	  "", NULL, NULL, NULL, NULL, "" },
	{ "follow-up, raise to critical then not to high",
	  RULESET(follow_rules),
	  { .body = "urgent: down", .severity = "normal" }, RULES_FOLLOW_UP,
	  "kw-critical", "critical", NULL, NULL, NULL, "" },
	{ "follow-up, no severity yet: any raises", RULESET(follow_rules),
	  { .body = "thanks" }, RULES_FOLLOW_UP,
	  "kw-low", "low", NULL, NULL, NULL, "" },
	{ "follow-up walks like create: a stop ends it", RULESET(follow_rules),
	  { .body = "hi, urgent", .severity = "normal",
	    .customer = "stopco" }, RULES_FOLLOW_UP,
	  "kw-high", "high", NULL, NULL, NULL, "" },
	{ "follow-up, matching rule that changes nothing is not reported",
	  RULESET(follow_rules),
	  { .body = "hi", .severity = "normal", .customer = "stopco" },
	  RULES_FOLLOW_UP, "", NULL, NULL, NULL, NULL, "" },
	{ "follow-up does not add tags for later rules", RULESET(chain_rules),
	  { .channel = "chat", .customer = "acme", .subject = "hi",
	    .severity = "normal" }, RULES_FOLLOW_UP,
	  "", NULL, NULL, NULL, NULL, "" },
	{ "follow-up does not change queue for later rules",
	  RULESET(chain_rules),
	  { .channel = "chat", .subject = "down", .severity = "normal",
	    .queue = "support" }, RULES_FOLLOW_UP,
	  "outage", "critical", NULL, NULL, NULL, "" },
};

static void
test_walk_table(void **state)
{
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(walk_cases); i++) {
		struct rule_outcome out;
		struct rules *r;
		char *error = NULL;
		int rc;

		r = rules_compile(walk_cases[i].specs, walk_cases[i].n_specs,
		    &error);
		assert_non_null(r);
		assert_int_equal(rules_count(r), walk_cases[i].n_specs);
		rc = rules_apply(r, &walk_cases[i].in, walk_cases[i].mode,
		    &out);
		if (rc != (int)out.n_fired)
			fail_msg("row %zu: returned %d, fired %zu", i, rc,
			    out.n_fired);
		if (strcmp(join(out.fired, out.n_fired, buf, sizeof(buf)),
		    walk_cases[i].fired) != 0)
			print_error("row %zu: %s\n", i, walk_cases[i].what);
		assert_str_or_null(join(out.fired, out.n_fired, buf,
		    sizeof(buf)), walk_cases[i].fired, "fired", i);
		assert_str_or_null(out.severity, walk_cases[i].severity,
		    "severity", i);
		assert_str_or_null(out.queue, walk_cases[i].queue, "queue", i);
		assert_str_or_null(out.sla, walk_cases[i].sla, "sla", i);
		assert_str_or_null(out.team, walk_cases[i].team, "team", i);
		assert_str_or_null(join(out.tags, out.n_tags, buf,
		    sizeof(buf)), walk_cases[i].tags, "tags", i);
		rule_outcome_release(&out);
		rules_free(&r);
	}
}

/* ---- compile errors ---------------------------------------------------- */

static const struct {
	struct rule_spec spec;
	const char *want;		/* the start of the message */
} error_cases[] = {
	{ { .name = "bad", MATCH("channel = email", "subject ~ (") },
	  "rule \"bad\": bad regex \"(\" in match \"subject ~ (\": " },
	{ { .name = "bad", MATCH("subject ~* [z-a]") },
	  "rule \"bad\": bad regex \"[z-a]\" in match \"subject ~* [z-a]\": " },
	{ { .name = "bad", MATCH("body ~ a{2") },
	  "rule \"bad\": bad regex \"a{2\" in match \"body ~ a{2\": " },
	{ { .name = "bad", MATCH("tag ~ *x") },
	  "rule \"bad\": bad regex \"*x\" in match \"tag ~ *x\": " },
	{ { .name = "bad", MATCH("subjekt = x") },
	  "rule \"bad\": unknown field \"subjekt\" in match \"subjekt = x\"" },
	{ { .name = "bad", MATCH("subject == x") },
	  "rule \"bad\": unknown operator \"==\" in match \"subject == x\"" },
	{ { .name = "bad", MATCH("subject =x") },
	  "rule \"bad\": unknown operator \"=x\" in match \"subject =x\"" },
	{ { .name = "bad", MATCH("subject !~ x") },
	  "rule \"bad\": unknown operator \"!~\" in match \"subject !~ x\"" },
	{ { .name = "bad", MATCH("subject =") },
	  "rule \"bad\": match \"subject =\" has no value" },
	{ { .name = "bad", MATCH("subject =  ") },
	  "rule \"bad\": match \"subject =  \" has no value" },
	{ { .name = "bad", MATCH("subject") },
	  "rule \"bad\": match \"subject\" is not FIELD OP VALUE" },
	{ { .name = "bad", MATCH(" subject = x") },
	  "rule \"bad\": match \" subject = x\" is not FIELD OP VALUE" },
	{ { .name = "bad", MATCH("Subject = x") },
	  "rule \"bad\": match \"Subject = x\" is not FIELD OP VALUE" },
	{ { .name = "bad", MATCH("") },
	  "rule \"bad\": match \"\" is not FIELD OP VALUE" },
	{ { .name = "bad", MATCH("subject ~ x"), .severity = "urgent" },
	  "rule \"bad\": unknown severity \"urgent\"" },
	{ { .name = "bad", .match = NULL, .n_match = 0, .queue = "q" },
	  "rule \"bad\": no match conditions" },
	{ { .name = NULL, MATCH("subject ~ x") },
	  "rule 2 has no name" },
};

static void
test_error_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(error_cases); i++) {
		/* A good rule first, so a failure frees what it compiled. */
		struct rule_spec specs[3] = {
			{ .name = "good", MATCH("subject ~* x|y", "tag = t"),
			  .queue = "q", TAGS("a", "b") },
			error_cases[i].spec,
			{ .name = "never reached", MATCH("subject ~ (") },
		};
		struct rules *r;
		char *error = NULL;

		r = rules_compile(specs, NELEM(specs), &error);
		assert_null(r);
		assert_non_null(error);
		if (strncmp(error, error_cases[i].want,
		    strlen(error_cases[i].want)) != 0) {
			print_error("row %zu: got \"%s\", want \"%s...\"\n", i,
			    error, error_cases[i].want);
			fail();
		}
		free(error);
	}
}

/* ---- bounded matching -------------------------------------------------- */

#define BIG	(5 * 1024 * 1024)

/* N bytes of UNIT repeated, then TAIL. */
static char *
big_text(const char *unit, size_t n, const char *tail)
{
	size_t u = strlen(unit), t = strlen(tail), i;
	char *s = malloc(n + t + 1);

	assert_non_null(s);
	for (i = 0; i < n; i++)
		s[i] = unit[i % u];
	memcpy(s + n, tail, t + 1);
	return s;
}

static int
match_one(const char *match, const struct rule_input *in)
{
	struct rule_spec spec = { .name = "r", .match = &match, .n_match = 1,
	    .severity = "high" };
	struct rule_outcome out;
	struct rules *r;
	char *error = NULL;
	int rc;

	r = rules_compile(&spec, 1, &error);
	assert_non_null(r);
	rc = rules_apply(r, in, RULES_CREATE, &out);
	assert_true(rc >= 0);
	rule_outcome_release(&out);
	rules_free(&r);
	return rc;
}

static void
test_big_body(void **state)
{
	/* Patterns that take glibc's regexec quadratic time when run as
	 * written over text like this: each must complete. */
	static const struct {
		const char *unit, *tail, *match;
		int want;
	} cases[] = {
		{ "a", "", "body ~ a+b", 0 },
		{ "a", "", "body ~ (a|aa)*b", 0 },
		{ "urgent ", "", "body ~* urgent.*now", 0 },
		{ "urgent asap ", "", "body ~* (urgent|asap).*(down|outage)",
		  0 },
		{ "cannot log ", "", "body ~* outage|down|cannot log ?in", 0 },
		{ "we cannot login ", "", "body ~* outage|down|cannot log ?in",
		  1 },
		{ "x", "", "body ~ x$", 1 },		/* $ at the cut */
		{ "hello ", "outage", "body ~* outage", 0 },	/* past cap */
		{ "hello ", "outage", "body != x", 1 },
		{ "a", "", "subject ~ (a)\\1b", 0 },	/* run as written */
	};
	struct rule_input in = { 0 };
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		s = big_text(cases[i].unit, BIG, cases[i].tail);
		in.body = in.subject = s;
		if (match_one(cases[i].match, &in) != cases[i].want)
			fail_msg("case %zu: \"%s\" gave %d", i, cases[i].match,
			    !cases[i].want);
		free(s);
	}

	/* `=` compares the whole field, past the cap. */
	s = big_text("hello ", BIG, "outage");
	in.body = s;
	in.subject = NULL;
	{
		char *m = malloc(strlen(s) + 8);

		assert_non_null(m);
		sprintf(m, "body = %s", s);
		assert_int_equal(match_one(m, &in), 1);
		m[strlen(m) - 1] = 'X';
		assert_int_equal(match_one(m, &in), 0);
		free(m);
	}
	free(s);
}

static void
test_cap_boundary(void **state)
{
	struct rule_input in = { 0 };
	char *s;

	(void)state;
	/* The last byte a regex sees is RULES_REGEX_MAX - 1. */
	s = big_text("a", RULES_REGEX_MAX - 1, "Zb");
	in.body = s;
	assert_int_equal(match_one("body ~ Z", &in), 1);
	assert_int_equal(match_one("body ~ b", &in), 0);
	assert_int_equal(match_one("body ~ Z$", &in), 1);
	free(s);

	/* A two-byte character across the cut is dropped whole. */
	s = big_text("a", RULES_REGEX_MAX - 1, "\xc3\xa9tail");
	in.body = s;
	assert_int_equal(match_one("body ~ a$", &in), 1);
	assert_int_equal(match_one("body ~ \xc3", &in), 0);
	free(s);

	/* ... a four-byte one too. */
	s = big_text("a", RULES_REGEX_MAX - 1, "\xf0\x9f\x98\x80tail");
	in.body = s;
	assert_int_equal(match_one("body ~ a$", &in), 1);
	free(s);
	s = big_text("a", RULES_REGEX_MAX - 3, "\xf0\x9f\x98\x80tail");
	in.body = s;
	assert_int_equal(match_one("body ~ a$", &in), 1);
	free(s);

	/* A character that ends right at the cut is kept. */
	s = big_text("a", RULES_REGEX_MAX - 2, "\xc3\xa9tail");
	in.body = s;
	assert_int_equal(match_one("body ~ \xc3\xa9$", &in), 1);
	free(s);

	/* Tags are capped one by one. */
	s = big_text("v", RULES_REGEX_MAX + 10, "");
	{
		const char *tags[] = { s, "vip" };

		in.body = NULL;
		in.tags = tags;
		in.n_tags = 2;
		assert_int_equal(match_one("tag ~ ^vip$", &in), 1);
		assert_int_equal(match_one("tag ~ ^v+$", &in), 1);
		assert_int_equal(match_one("tag = vip", &in), 1);
	}
	free(s);
}

/*
 * rules.c may run a regex P as "^.*(P)" (linear in glibc, where P alone can
 * be quadratic). Whatever it does, a condition must agree with regexec of P
 * itself on every text.
 */
static const char *const equiv_patterns[] = {
	"a", "^a", "a$", "^a$", "^$", "a|b)", "a)", "(a|b)c", "a|^b", "b$|^a",
	"[)]", "[(]", "[]a]", "[^]a]", "[[:alpha:]]+$", "[[.-.]]", "[[=a=]]b",
	"\\(a\\)", "\\.", "(a)\\1", "((a)|b)+c", "a{2}", "a{2,}$", "(^a|b$)",
	"x*", "(|a)b", "a|", ".", "\n", "^.*a", "\\[a]", "[\\]a",
	"a$|b", "(a$)b", "a$\n", "a\n$", "[^a]", "[^a]$", "(a)(b)", "a.b",
	"\\^a", "[\\^]a", "(a|b)*$",
};

static const char *const equiv_texts[] = {
	"", "a", "b", "ab", "ba", "aa", "aab", "a)", "b)", ")", "(", "]", "a]",
	"(a)", "-", "\\", "\\a", ".", "bc", "ac", "abc", "x\na", "a\nb",
	"b\na\n", "aaa", "a\n", "a\nb\n", "^a", "x^a", "\na",
};

static void
test_regex_equivalence(void **state)
{
	size_t i, j, bad = 0;

	(void)state;
	for (i = 0; i < NELEM(equiv_patterns); i++) {
		for (j = 0; j < NELEM(equiv_texts); j++) {
			struct rule_input in = { .subject = equiv_texts[j] };
			char m[64];
			regex_t re;
			int want;

			assert_int_equal(regcomp(&re, equiv_patterns[i],
			    REG_EXTENDED | REG_NOSUB), 0);
			want = regexec(&re, equiv_texts[j], 0, NULL, 0) == 0;
			regfree(&re);
			snprintf(m, sizeof(m), "subject ~ %s", equiv_patterns[i]);
			if (match_one(m, &in) != want) {
				print_error("\"%s\" on \"%s\": want %d\n",
				    equiv_patterns[i], equiv_texts[j], want);
				bad++;
			}
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- ownership --------------------------------------------------------- */

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

static void
test_outcome_borrowed(void **state)
{
	char *match[2], *tags[2], *name, *sev, *queue, *sla, *team;
	struct rule_outcome out, again;
	struct rule_input in = { .channel = "email", .subject = "site down",
	    .from = "bob@example.org" };
	struct rule_spec spec;
	struct rules *r;
	char *error = NULL;
	const char *severity;

	(void)state;
	match[0] = xstrdup("subject ~* down");
	match[1] = xstrdup("from_domain = EXAMPLE.org");
	tags[0] = xstrdup("outage");
	tags[1] = xstrdup("web");
	name = xstrdup("outage");
	sev = xstrdup("critical");
	queue = xstrdup("incidents");
	sla = xstrdup("urgent");
	team = xstrdup("oncall");
	spec = (struct rule_spec){ .name = name,
	    .match = (const char *const *)match, .n_match = 2,
	    .severity = sev, .queue = queue, .sla = sla, .team = team,
	    .tags = (const char *const *)tags, .n_tags = 2 };
	r = rules_compile(&spec, 1, &error);
	assert_non_null(r);
	/* The specs may go once compiled: scribble, then free. */
	memset(match[0], 'X', strlen(match[0]));
	memset(name, 'X', strlen(name));
	free(match[0]);
	free(match[1]);
	free(tags[0]);
	free(tags[1]);
	free(name);
	free(sev);
	free(queue);
	free(sla);
	free(team);

	assert_int_equal(rules_apply(r, &in, RULES_CREATE, &out), 1);
	assert_string_equal(out.fired[0], "outage");
	assert_string_equal(out.severity, "critical");
	assert_string_equal(out.queue, "incidents");
	assert_string_equal(out.sla, "urgent");
	assert_string_equal(out.team, "oncall");
	assert_int_equal(out.n_tags, 2);
	assert_string_equal(out.tags[0], "outage");
	assert_string_equal(out.tags[1], "web");
	severity = out.severity;
	rule_outcome_release(&out);
	assert_null(out.fired);
	assert_null(out.tags);
	assert_int_equal(out.n_fired, 0);
	rule_outcome_release(&out);		/* twice is harmless */

	/* Outlives its outcome: the same borrowed string each walk. */
	assert_string_equal(severity, "critical");
	assert_int_equal(rules_apply(r, &in, RULES_CREATE, &again), 1);
	assert_ptr_equal(again.severity, severity);
	rule_outcome_release(&again);
	rules_free(&r);
	assert_null(r);
	rules_free(&r);				/* NULL is harmless */
}

static void
test_empty(void **state)
{
	struct rule_input in = { .channel = "email" };
	struct rule_outcome out;
	struct rules *r;
	char *error = NULL;

	(void)state;
	r = rules_compile(NULL, 0, &error);
	assert_non_null(r);
	assert_null(error);
	assert_int_equal(rules_count(r), 0);
	assert_int_equal(rules_apply(r, &in, RULES_CREATE, &out), 0);
	assert_int_equal(out.n_fired, 0);
	assert_null(out.severity);
	rule_outcome_release(&out);
	rules_free(&r);

	assert_int_equal(rules_apply(NULL, &in, RULES_FOLLOW_UP, &out), 0);
	rule_outcome_release(&out);
	assert_int_equal(rules_count(NULL), 0);
}

/* ---- helpers ----------------------------------------------------------- */

static const struct {
	const char *address;
	size_t len;
	const char *want;
} domain_cases[] = {
	{ "bob@example.org", RULES_DOMAIN_MAX, "example.org" },
	{ "Bob@Example.ORG", RULES_DOMAIN_MAX, "example.org" },
	{ "Bob <bob@Example.org>", RULES_DOMAIN_MAX, "example.org" },
	{ "\"a@b\"@c.net", RULES_DOMAIN_MAX, "c.net" },
	{ "a@b@C.NET", RULES_DOMAIN_MAX, "c.net" },
	{ "bob@xn--bcher-kva.example", RULES_DOMAIN_MAX,
	  "xn--bcher-kva.example" },
	{ "nobody", RULES_DOMAIN_MAX, NULL },
	{ "bob@", RULES_DOMAIN_MAX, NULL },
	{ "<bob@>", RULES_DOMAIN_MAX, NULL },
	{ "", RULES_DOMAIN_MAX, NULL },
	{ NULL, RULES_DOMAIN_MAX, NULL },
	{ "x@example.org", 12, "example.org" },		/* just fits */
	{ "x@example.org", 11, NULL },			/* one short */
	{ "x@example.org", 0, NULL },
};

static void
test_domain_of(void **state)
{
	char buf[RULES_DOMAIN_MAX];
	const char *got;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(domain_cases); i++) {
		memset(buf, '#', sizeof(buf));
		got = rules_domain_of(domain_cases[i].address, buf,
		    domain_cases[i].len);
		assert_str_or_null(got, domain_cases[i].want, "domain", i);
		if (got != NULL)
			assert_ptr_equal(got, buf);
		else if (domain_cases[i].len > 0)
			assert_string_equal(buf, "");
		else
			assert_int_equal(buf[0], '#');
	}
}

static void
test_severity_rank(void **state)
{
	(void)state;
	assert_int_equal(rules_severity_rank("low"), 0);
	assert_int_equal(rules_severity_rank("normal"), 1);
	assert_int_equal(rules_severity_rank("High"), 2);
	assert_int_equal(rules_severity_rank("CRITICAL"), 3);
	assert_int_equal(rules_severity_rank("urgent"), -1);
	assert_int_equal(rules_severity_rank(""), -1);
	assert_int_equal(rules_severity_rank(NULL), -1);
}

/* Patterns glibc's regcomp would spend gigabytes on are refused; the
 * ones people write pass. (The fuzzer found "(a)++++..." at 3.9 GB.) */
static void
test_costly_regex(void **state)
{
	static const char *const costly[] = {
		"(a)++++++++++++++++++++++++++++++", "a**", "x+*", "(ab)?+",
		"a{2}{3}", "a{1000}", "a{1,200}", "a{1}b{1}c{1}d{1}e{1}",
		"^j*****", "a+?",
	};
	static const char *const fine[] = {
		"outage|down|cannot log ?in", "^re: .*\\[ESC-[0-9]+\\]",
		"[*+?]+", "a\\++", "(ab)+c*", "x{2,5}", "[]*]+", "[^]+]*",
		"\\**", "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(costly) / sizeof(costly[0]); i++) {
		const char *why = rules_regex_too_costly(costly[i]);
		if (why == NULL)
			fail_msg("\"%s\" passed", costly[i]);
		assert_non_null(strstr(why, "too costly"));
	}
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
		if (rules_regex_too_costly(fine[i]) != NULL)
			fail_msg("\"%s\" refused: %s", fine[i],
			    rules_regex_too_costly(fine[i]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cond_table),
		cmocka_unit_test(test_walk_table),
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_big_body),
		cmocka_unit_test(test_cap_boundary),
		cmocka_unit_test(test_regex_equivalence),
		cmocka_unit_test(test_outcome_borrowed),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_domain_of),
		cmocka_unit_test(test_severity_rank),
		cmocka_unit_test(test_costly_regex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
