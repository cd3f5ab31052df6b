/*
 * test_reply: reply_strip on the reply formats agents' mail clients really
 * produce, and reply_parse on SPEC.md's agent commands.
 *
 * - Golden tests: tests/data/reply/NAME.txt is the text/plain body a
 *   client sends when an agent replies to a notification (written for
 *   these tests after the clients' real attribution lines, not copied);
 *   NAME.golden is what the customer must get, checked by eye: the
 *   agent's words only, no quote, no attribution, no signature. The
 *   golden file ends in one newline that is not part of the text. Every
 *   .txt in the folder must be in the table below, so that no fixture
 *   goes untested.
 * - Command tests: table-driven, a body and the commands, text and bad
 *   line reply_parse must find.
 *
 * Run from the repository root (the Makefile's tests do).
 */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reply.h"

#include "testutil.h"

#define DATA_DIR	"tests/data/reply"

/* ---- helpers ---------------------------------------------------------- */

/* The file's bytes with a NUL after them; fails the test if unreadable. */
static char *
slurp(const char *path)
{
	char *buf = test_read_file(path, NULL);

	if (buf == NULL)
		fail_msg("cannot read %s (run from the repository root)", path);
	return buf;
}

/* ---- golden tests ----------------------------------------------------- */

/* Client and format of each fixture, as the report names them. */
static const char *const goldens[] = {
	"gmail_en",			/* Gmail web, one-line attribution */
	"gmail_en_wrapped",		/* Gmail, wrapped after "<" */
	"gmail_en_wrapped_wrote",	/* Gmail, "wrote:" alone on line 2 */
	"gmail_de",			/* Gmail German, "Am ... schrieb" */
	"gmail_de_wrapped",		/* Gmail German, wrapped after "<" */
	"gmail_es",			/* Gmail Spanish, "El ... escribió:" */
	"gmail_es_wrapped",		/* the same, "escribió:" on line 2 */
	"outlook_desktop",		/* Outlook, ____ + From:/Sent: */
	"outlook_original_message",	/* Outlook, -----Original Message */
	"outlook_de",			/* Outlook German, Von:/Gesendet: */
	"outlook_ios",			/* Get Outlook for iOS + block */
	"outlook_mac",			/* Outlook for Mac, From:/Date: */
	"apple_mail_quoted",		/* Apple Mail, "> On ... wrote:" */
	"apple_mail",			/* Apple Mail, "On ..., at ... wrote:" */
	"iphone",			/* iOS Mail, Sent from my iPhone */
	"thunderbird",			/* "On 30/11/2026 09:14, X wrote:" */
	"thunderbird_fr",		/* "Le ... à ..., X a écrit :" */
	"mutt",				/* mutt, "-- " sig above the quote */
	"mutt_bottom",			/* mutt, answer below the quote */
	"k9",				/* K-9: "X <a> wrote:" above ">" */
	"k9_nosig",			/* the same without the K-9 sig */
	"yahoo",			/* Yahoo web, indented, wrapped */
	"protonmail",			/* Proton Mail, Original Message */
	"inline",			/* interleaved, attribution on top */
	"inline_noattr",		/* interleaved, no attribution */
	"no_quote",			/* no quote at all, outer blanks */
	"sig_dashdash",			/* "--" signature, no space */
	"crlf",				/* Gmail with CRLF line ends */
};

#define N_GOLDENS (sizeof(goldens) / sizeof(goldens[0]))

static void
test_golden(void **state)
{
	const char *name = *state;
	char path[512], *body, *want, *got, *again;
	size_t n;
	int ok;

	snprintf(path, sizeof(path), "%s/%s.txt", DATA_DIR, name);
	body = slurp(path);
	snprintf(path, sizeof(path), "%s/%s.golden", DATA_DIR, name);
	want = slurp(path);
	n = strlen(want);
	assert_true(n > 0 && want[n - 1] == '\n');
	want[n - 1] = '\0';

	got = reply_strip(body);
	assert_non_null(got);
	/* What is left holds no quote, attribution or signature any more,
	 * so stripping again changes nothing. */
	again = reply_strip(got);
	assert_non_null(again);
	ok = strcmp(got, want) == 0;
	if (!ok)
		print_error("%s: reply_strip gave\n----\n%s\n----\nwant\n"
		    "----\n%s\n----\n", name, got, want);
	else if (strcmp(again, got) != 0)
		print_error("%s: stripping again gave\n----\n%s\n----\n",
		    name, again);
	ok = ok && strcmp(again, got) == 0;
	free(again);
	free(got);
	free(want);
	free(body);
	assert_true(ok);
}

/* Every fixture in the folder is in the table, and has a golden. */
static void
test_golden_table_complete(void **state)
{
	DIR *d = opendir(DATA_DIR);
	struct dirent *e;
	size_t found = 0;

	(void)state;
	if (d == NULL)
		fail_msg("cannot open %s (run from the repository root)",
		    DATA_DIR);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name), i;
		if (n < 5 || strcmp(e->d_name + n - 4, ".txt") != 0)
			continue;
		for (i = 0; i < N_GOLDENS; i++)
			if (strlen(goldens[i]) == n - 4 &&
			    strncmp(goldens[i], e->d_name, n - 4) == 0)
				break;
		if (i == N_GOLDENS)
			fail_msg("%s/%s has no entry in goldens[]", DATA_DIR,
			    e->d_name);
		found++;
	}
	closedir(d);
	assert_int_equal(found, N_GOLDENS);
}

/* ---- reply_strip edge cases ------------------------------------------- */

static void
test_strip_empty(void **state)
{
	static const char *const empty[] = {
		"", "\n", "\r\n\r\n", "   \n\t\n",
		"> only a quote\n> nothing else\n",
		"On Mon, Nov 30, 2026 at 9:14 AM X <x@example.test> wrote:\n"
		    "> #resolve\n",
		"-- \nBob\n",
	};
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		s = reply_strip(empty[i]);
		assert_non_null(s);
		if (s[0] != '\0')
			fail_msg("case %zu: want \"\", got \"%s\"", i, s);
		free(s);
	}
}

/* Lines that look a little like a quote start but are the agent's. */
static void
test_strip_keeps_text(void **state)
{
	static const char *const keep[] = {
		"From: the logs, the job stopped at 02:13.\nIt runs again.",
		"On Monday the technician comes.\nHe brings the part.",
		"Sent the invoice again.\nBob",
		"----\nA ruler is not a signature.",
		"See the table:\n--+--\n a | b",
	};
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		s = reply_strip(keep[i]);
		assert_non_null(s);
		if (strcmp(s, keep[i]) != 0)
			fail_msg("case %zu: want\n%s\ngot\n%s", i, keep[i], s);
		free(s);
	}
}

/*
 * The agent's own prose that happens to start like an attribution and end
 * in "wrote:" / "schrieb ...:", followed by what a vendor wrote, pasted
 * without ">". No client writes an attribution without a date or time;
 * these have none, so they are text and must reach the customer.
 */
static void
test_strip_prose_not_attribution(void **state)
{
	static const char *const keep[] = {
		"The vendor confirms the bug.\n"
		    "On Friday the vendor wrote:\n\n"
		    "The update ships in December.",
		"Der Hersteller bestätigt den Fehler.\n"
		    "Am Freitag schrieb der Hersteller:\n\n"
		    "Das Update kommt im Dezember.",
	};
	char *s;
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		s = reply_strip(keep[i]);
		assert_non_null(s);
		if (strcmp(s, keep[i]) != 0) {
			print_error("case %zu: want\n%s\ngot\n%s\n", i,
			    keep[i], s);
			failed++;
		}
		free(s);
	}
	assert_int_equal(failed, 0);
}

/* ---- reply_parse ------------------------------------------------------ */

#define MAXC 4

struct parse_case {
	const char *what;
	const char *body;
	size_t n;			/* commands expected */
	enum reply_verb verb[MAXC];
	const char *arg[MAXC];
	const char *text;
	const char *bad;		/* NULL: none */
};

static const struct parse_case parse_cases[] = {
	{ "note", "#note\n\nCustomer is a VIP, call before noon.\n",
	    1, { REPLY_NOTE }, { "" },
	    "Customer is a VIP, call before noon.", NULL },
	{ "resolve alone", "#resolve\n",
	    1, { REPLY_RESOLVE }, { "" }, "", NULL },
	{ "resolve with cause",
	    "#resolve worn fuser unit\n\nWe replaced the fuser; the printer "
	    "works again.\n",
	    1, { REPLY_RESOLVE }, { "worn fuser unit" },
	    "We replaced the fuser; the printer works again.", NULL },
	{ "pending", "#pending\nPlease send us the serial number.\n",
	    1, { REPLY_PENDING }, { "" },
	    "Please send us the serial number.", NULL },
	{ "escalate why", "#escalate needs an on-site engineer\n",
	    1, { REPLY_ESCALATE }, { "needs an on-site engineer" }, "",
	    NULL },
	{ "escalate no why", "#escalate\n",
	    1, { REPLY_ESCALATE }, { "" }, "", NULL },
	{ "severity", "#severity high\n",
	    1, { REPLY_SEVERITY }, { "high" }, "", NULL },
	{ "assign", "#assign bob\n",
	    1, { REPLY_ASSIGN }, { "bob" }, "", NULL },
	{ "rootcause", "#rootcause firmware 2.1 resets the fuser timer\n",
	    1, { REPLY_ROOTCAUSE }, { "firmware 2.1 resets the fuser timer" },
	    "", NULL },
	{ "consecutive",
	    "#severity high\n#assign bob\n#escalate on-site visit\n"
	    "An engineer will call you within the hour.\n",
	    3, { REPLY_SEVERITY, REPLY_ASSIGN, REPLY_ESCALATE },
	    { "high", "bob", "on-site visit" },
	    "An engineer will call you within the hour.", NULL },
	{ "blank lines between",
	    "#pending\n\n#severity low\n\n\nPlease send the serial number.\n"
	    "\nThanks,\nBob\n",
	    2, { REPLY_PENDING, REPLY_SEVERITY }, { "", "low" },
	    "Please send the serial number.\n\nThanks,\nBob", NULL },
	{ "text keeps its paragraphs, not the commands",
	    "#resolve\nLine one.\n\nLine two.\n",
	    1, { REPLY_RESOLVE }, { "" }, "Line one.\n\nLine two.", NULL },
	{ "unknown command",
	    "#frobnicate now\n\nDone.\n",
	    0, { 0 }, { NULL }, "Done.", "#frobnicate now" },
	{ "unknown among known",
	    "#resolve\n#frobnicate\n\nDone.\n",
	    1, { REPLY_RESOLVE }, { "" }, "Done.", "#frobnicate" },
	{ "verb with a suffix is unknown", "#notes\nsee below\n",
	    0, { 0 }, { NULL }, "see below", "#notes" },
	{ "#1 is text",
	    "#1 priority for us is the printer in room 4.\n",
	    0, { 0 }, { NULL }, "#1 priority for us is the printer in room 4.",
	    NULL },
	{ "command after text is text",
	    "We are on it.\n#resolve\n",
	    0, { 0 }, { NULL }, "We are on it.\n#resolve", NULL },
	{ "command after a text paragraph is text",
	    "#pending\nWe are on it.\n\n#resolve fixed\n",
	    1, { REPLY_PENDING }, { "" }, "We are on it.\n\n#resolve fixed",
	    NULL },
	{ "case-insensitive verbs",
	    "#Resolve Worn Fuser\n#ESCALATE\n#SeVeRiTy high\n",
	    3, { REPLY_RESOLVE, REPLY_ESCALATE, REPLY_SEVERITY },
	    { "Worn Fuser", "", "high" }, "", NULL },
	{ "trailing blanks",
	    "#pending \t \n#assign bob   \nText.  \n",
	    2, { REPLY_PENDING, REPLY_ASSIGN }, { "", "bob" }, "Text.", NULL },
	{ "leading blanks before the commands",
	    "\n\n  \n#note\nInternal.\n",
	    1, { REPLY_NOTE }, { "" }, "Internal.", NULL },
	{ "CRLF",
	    "#severity critical\r\n#assign alice\r\n\r\nOn it.\r\nBob\r\n",
	    2, { REPLY_SEVERITY, REPLY_ASSIGN }, { "critical", "alice" },
	    "On it.\nBob", NULL },
	{ "no commands", "Thanks, we are looking into it.\n",
	    0, { 0 }, { NULL }, "Thanks, we are looking into it.", NULL },
	{ "empty", "",
	    0, { 0 }, { NULL }, "", NULL },
	{ "signature after the text",
	    "#note\nCall back tomorrow.\n-- \nBob Agent\n",
	    1, { REPLY_NOTE }, { "" }, "Call back tomorrow.", NULL },
	{ "command in the quote is gone (Gmail)",
	    "Thanks, looking into it.\n\n"
	    "On Mon, Nov 30, 2026 at 9:14 AM Acme Support "
	    "<support@example.test> wrote:\n\n"
	    "> #resolve\n> #note secret\n",
	    0, { 0 }, { NULL }, "Thanks, looking into it.", NULL },
	{ "only a quoted command",
	    "On 30/11/2026 09:14, Acme Support wrote:\n> #note secret\n",
	    0, { 0 }, { NULL }, "", NULL },
	{ "bare quoted command",
	    "> #resolve\nNot yet.\n",
	    0, { 0 }, { NULL }, "Not yet.", NULL },
	{ "command in an unquoted Outlook quote is gone",
	    "#pending\nPlease send a photo.\n\n"
	    "________________________________\n"
	    "From: Acme Support <support@example.test>\n"
	    "Sent: Monday, November 30, 2026 9:14 AM\n"
	    "To: Bob Agent <bob@example.test>\n"
	    "Subject: [ESC-12] New ticket\n\n"
	    "#resolve\n#note the whole reply is an internal note\n",
	    1, { REPLY_PENDING }, { "" }, "Please send a photo.", NULL },
	{ "commands above a real Gmail quote",
	    "#resolve toner empty\n\nA new cartridge is on its way.\n\n"
	    "Am Mo., 30. Nov. 2026 um 09:14 Uhr schrieb Acme Support "
	    "<support@example.test>:\n\n> #escalate\n",
	    1, { REPLY_RESOLVE }, { "toner empty" },
	    "A new cartridge is on its way.", NULL },
};

#define N_PARSE (sizeof(parse_cases) / sizeof(parse_cases[0]))

static void
test_parse(void **state)
{
	const struct parse_case *c = *state;
	struct parsed_reply p;

	assert_int_equal(reply_parse(c->body, &p), 0);
	if (p.n_commands != c->n)
		fail_msg("%s: %zu commands, want %zu", c->what, p.n_commands,
		    c->n);
	for (size_t i = 0; i < c->n; i++) {
		if (p.commands[i].verb != c->verb[i])
			fail_msg("%s: command %zu is #%s, want #%s", c->what,
			    i, reply_verb_name(p.commands[i].verb),
			    reply_verb_name(c->verb[i]));
		assert_non_null(p.commands[i].arg);
		if (strcmp(p.commands[i].arg, c->arg[i]) != 0)
			fail_msg("%s: command %zu arg \"%s\", want \"%s\"",
			    c->what, i, p.commands[i].arg, c->arg[i]);
	}
	assert_non_null(p.text);
	if (strcmp(p.text, c->text) != 0)
		fail_msg("%s: text\n\"%s\"\nwant\n\"%s\"", c->what, p.text,
		    c->text);
	if (c->bad == NULL && p.bad != NULL)
		fail_msg("%s: bad \"%s\", want none", c->what, p.bad);
	if (c->bad != NULL && (p.bad == NULL || strcmp(p.bad, c->bad) != 0))
		fail_msg("%s: bad \"%s\", want \"%s\"", c->what,
		    p.bad != NULL ? p.bad : "(none)", c->bad);
	parsed_reply_release(&p);
	/* Release leaves nothing behind and may run twice. */
	assert_null(p.commands);
	assert_null(p.text);
	assert_null(p.bad);
	assert_int_equal(p.n_commands, 0);
	parsed_reply_release(&p);
}

/* Each verb's name reads back as that verb. */
static void
test_verb_names(void **state)
{
	static const char *const want[] = { "note", "resolve", "pending",
	    "escalate", "severity", "assign", "rootcause" };
	char body[64];
	struct parsed_reply p;

	(void)state;
	for (int v = REPLY_NOTE; v <= REPLY_ROOTCAUSE; v++) {
		assert_string_equal(reply_verb_name((enum reply_verb)v),
		    want[v]);
		snprintf(body, sizeof(body), "#%s x\n", want[v]);
		assert_int_equal(reply_parse(body, &p), 0);
		assert_int_equal(p.n_commands, 1);
		assert_int_equal(p.commands[0].verb, v);
		assert_string_equal(p.commands[0].arg, "x");
		assert_null(p.bad);
		parsed_reply_release(&p);
	}
	assert_string_equal(reply_verb_name((enum reply_verb)99), "?");
}

int
main(void)
{
	struct CMUnitTest tests[N_GOLDENS + N_PARSE + 6];
	size_t n = 0;

	for (size_t i = 0; i < N_GOLDENS; i++)
		tests[n++] = (struct CMUnitTest){ .name = goldens[i],
		    .test_func = test_golden,
		    .initial_state = (void *)goldens[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_golden_table_complete);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_strip_empty);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_strip_keeps_text);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_strip_prose_not_attribution);
	for (size_t i = 0; i < N_PARSE; i++)
		tests[n++] = (struct CMUnitTest){ .name = parse_cases[i].what,
		    .test_func = test_parse,
		    .initial_state = (void *)&parse_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_verb_names);

	return _cmocka_run_group_tests("test_reply", tests, n, NULL, NULL);
}
