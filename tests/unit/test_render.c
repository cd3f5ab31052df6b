/*
 * test_render: the mustache subset of templates/render.h, as tables.
 *
 * - render: plain text, escaping per output kind (text, HTML, header),
 *   raw tags, missing variables, sections, inverted sections, nesting,
 *   comments, partials, and which tags take their line with them.
 * - header injection: no value, raw or not, can end a header line.
 * - malformed templates: each error with the line it is on, first_line
 *   counted in.
 * - partial depth: a chain TMPL_MAX_DEPTH partials deep parses, one more
 *   does not; self and mutual recursion are errors, not a crash.
 * - tmpl_each_var: names and lines, partials included, early stop.
 * - tmpl_vars: set, replace, unset, copies.
 * - the output cap, TMPL_MAX_OUTPUT, escaped bytes counted.
 *
 * Pure logic: no files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "render.h"

#define N_ELEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_KV		4

struct kv {
	const char *name, *value;
};

/* ---- partials ------------------------------------------------------------ */

static const struct {
	const char *name, *text;
} partials[] = {
	{ "p", "P" },
	{ "nl", "P\n" },
	{ "var", "{{a}}" },
	{ "raw", "{{{a}}}" },
	{ "outer", "[{{> var}}]" },
	{ "sec", "{{#a}}\nA\n{{/a}}\n" },
	{ "empty", "" },
	{ "loop", "x{{> loop}}" },
	{ "ping", "{{> pong}}" },
	{ "pong", "{{> ping}}" },
	{ "bad", "fine\n{{/nope}}\n" },
	{ "badname", "{{Nope}}" },
	{ "vars", "{{f}}\n{{#g}}{{/g}}\n" },
	{ "under_score.dot", "U" },
};

/* Partials d1, d2 ... dN: each includes the next, dN is "end". */
static int chain_len;
static char chain_text[64][32];

static const char *
partial_fn(const char *name, void *arg)
{
	int *calls = arg;
	int k;

	if (calls != NULL)
		(*calls)++;
	for (size_t i = 0; i < N_ELEMS(partials); i++)
		if (strcmp(partials[i].name, name) == 0)
			return partials[i].text;
	if (sscanf(name, "d%d", &k) == 1 && k >= 1 && k <= chain_len &&
	    k < (int)N_ELEMS(chain_text)) {
		if (k == chain_len)
			snprintf(chain_text[k], sizeof(chain_text[k]), "end");
		else
			snprintf(chain_text[k], sizeof(chain_text[k]),
			    "{{> d%d}}", k + 1);
		return chain_text[k];
	}
	return NULL;
}

/* ---- helpers ------------------------------------------------------------- */

static struct tmpl_vars *
vars_of(const struct kv *kv, size_t n)
{
	struct tmpl_vars *v = tmpl_vars_new();

	assert_non_null(v);
	for (size_t i = 0; i < n && kv[i].name != NULL; i++)
		assert_int_equal(tmpl_vars_set(v, kv[i].name, kv[i].value),
		    0);
	return v;
}

/* Parse and render TEXT; fails the test (naming WHAT) on a parse error. */
static char *
render(const char *what, const char *text, enum tmpl_kind kind,
    const struct kv *kv, size_t n)
{
	struct tmpl_vars *v = vars_of(kv, n);
	struct tmpl *t;
	char *error = NULL, *out;
	int line = -1;

	t = tmpl_parse(text, 1, partial_fn, NULL, &line, &error);
	if (t == NULL)
		fail_msg("%s: parse error at line %d: %s", what, line,
		    error != NULL ? error : "(no message)");
	out = tmpl_render(t, v, kind);
	tmpl_free(&t);
	assert_null(t);
	tmpl_vars_free(&v);
	assert_null(v);
	return out;
}

/* C-escaped copy of S for failure messages (static, so one at a time). */
static const char *
show(const char *s)
{
	static char buf[2][512];
	static int which;
	char *b = buf[which ^= 1];
	size_t o = 0;

	if (s == NULL)
		return "(null)";
	for (; *s != '\0' && o + 8 < sizeof(buf[0]); s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n')
			o += (size_t)snprintf(b + o, 8, "\\n");
		else if (c == '\r')
			o += (size_t)snprintf(b + o, 8, "\\r");
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(b + o, 8, "\\x%02x", c);
		else
			b[o++] = (char)c;
	}
	b[o] = '\0';
	return b;
}

struct render_case {
	const char *what;
	const char *text;
	enum tmpl_kind kind;
	struct kv vars[MAX_KV];
	const char *want;
};

/* Runs every case, printing each failure, then fails if any did. */
static void
run_cases(const struct render_case *c, size_t n)
{
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		char *out = render(c[i].what, c[i].text, c[i].kind, c[i].vars,
		    MAX_KV);

		if (out == NULL || strcmp(out, c[i].want) != 0) {
			print_error("%s: got \"%s\", want \"%s\"\n",
			    c[i].what, show(out), show(c[i].want));
			failed++;
		}
		free(out);
	}
	if (failed > 0)
		fail_msg("%d of %zu cases failed", failed, n);
}

#define SPECIAL	"<b class=\"x\">Tom & 'Jerry'</b>"

/* ---- plain text, variables and escaping ---------------------------------- */

static const struct render_case vars_cases[] = {
	{ "plain text", "Hello, world.\nSecond line.\n", TMPL_TEXT, { { 0 } },
	    "Hello, world.\nSecond line.\n" },
	{ "empty template", "", TMPL_TEXT, { { 0 } }, "" },
	{ "lone braces", "a { b } c }} d {x} {", TMPL_TEXT, { { 0 } },
	    "a { b } c }} d {x} {" },
	{ "html text is not escaped", "<p>&amp; 'x'</p>", TMPL_HTML,
	    { { 0 } }, "<p>&amp; 'x'</p>" },
	{ "variable", "Hi {{name}}!", TMPL_TEXT, { { "name", "Jane" } },
	    "Hi Jane!" },
	{ "dotted name", "{{ticket.ref}}", TMPL_TEXT,
	    { { "ticket.ref", "ESC-7" } }, "ESC-7" },
	{ "digits and underscore", "{{a_1.b2}}", TMPL_TEXT,
	    { { "a_1.b2", "ok" } }, "ok" },
	{ "blanks inside the tag", "[{{  name \t}}]", TMPL_TEXT,
	    { { "name", "x" } }, "[x]" },
	{ "same variable twice", "{{a}}-{{a}}", TMPL_TEXT, { { "a", "1" } },
	    "1-1" },
	{ "text: value untouched", "{{a}}", TMPL_TEXT, { { "a", SPECIAL } },
	    SPECIAL },
	{ "text: newlines kept", "[{{a}}]", TMPL_TEXT,
	    { { "a", "one\r\ntwo\nthree" } }, "[one\r\ntwo\nthree]" },
	{ "html: escaped", "<p>{{a}}</p>", TMPL_HTML, { { "a", SPECIAL } },
	    "<p>&lt;b class=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
	    "</p>" },
	{ "html: entity in a value is escaped again", "{{a}}", TMPL_HTML,
	    { { "a", "&amp;" } }, "&amp;amp;" },
	{ "html: raw {{{ }}}", "{{{a}}}", TMPL_HTML, { { "a", SPECIAL } },
	    SPECIAL },
	{ "html: raw {{& }}", "{{&a}}", TMPL_HTML, { { "a", SPECIAL } },
	    SPECIAL },
	{ "html: raw {{& }} with blanks", "{{& a }}", TMPL_HTML,
	    { { "a", SPECIAL } }, SPECIAL },
	{ "html: raw {{{ }}} with blanks", "{{{ a }}}", TMPL_HTML,
	    { { "a", "<i>" } }, "<i>" },
	{ "text: raw", "{{{a}}}{{&a}}", TMPL_TEXT, { { "a", "<&>" } },
	    "<&><&>" },
	{ "header: not html-escaped", "Subject: {{a}}", TMPL_HEADER,
	    { { "a", SPECIAL } }, "Subject: " SPECIAL },
	{ "header: controls removed", "X: {{a}}", TMPL_HEADER,
	    { { "a", "a\x01" "b\x07" "c\x1b" "d\x7f" "e\x1f" "f\bg" } },
	    "X: abcdefg" },
	{ "header: utf-8 kept", "X: {{a}}", TMPL_HEADER,
	    { { "a", "Gr\xc3\xbc\xc3\x9f" "e" } }, "X: Gr\xc3\xbc\xc3\x9f" "e" },
	{ "missing variable is empty", "[{{nope}}]", TMPL_TEXT, { { 0 } },
	    "[]" },
	{ "missing raw variable is empty", "[{{{nope}}}{{&nope}}]",
	    TMPL_HTML, { { 0 } }, "[]" },
	{ "missing in a header is empty", "Subject: [{{nope}}]", TMPL_HEADER,
	    { { 0 } }, "Subject: []" },
	{ "empty value", "[{{a}}]", TMPL_TEXT, { { "a", "" } }, "[]" },
	{ "value that looks like a tag stays text", "{{a}}", TMPL_TEXT,
	    { { "a", "{{b}}" }, { "b", "no" } }, "{{b}}" },
};

static void
test_vars_and_escaping(void **state)
{
	(void)state;
	run_cases(vars_cases, N_ELEMS(vars_cases));
}

/* ---- header injection ------------------------------------------------------ */

static const char *const injections[] = {
	"x\r\nBcc: evil@example.test",
	"x\nBcc: evil@example.test",
	"x\rBcc: evil@example.test",
	"x\r\n\r\nbody of the attacker",
	"x\r\n Bcc: evil@example.test",		/* a folded continuation */
	"\r\nBcc: evil@example.test\r\n",
	"x\x0b\x0c" "Bcc: evil@example.test",	/* VT, FF */
};

static const char *const header_templates[] = {
	"Subject: Re: {{v}} [ESC-1]",
	"Subject: Re: {{{v}}} [ESC-1]",
	"Subject: Re: {{&v}} [ESC-1]",
	"Subject: {{#v}}Re: {{v}}{{/v}} [ESC-1]",
	"Subject: {{> raw}} [ESC-1]",		/* partial "raw": {{{a}}} */
};

static void
test_header_injection(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(injections); i++) {
		for (size_t j = 0; j < N_ELEMS(header_templates); j++) {
			struct kv kv[2] = { { "v", injections[i] },
			    { "a", injections[i] } };
			char *out = render(header_templates[j],
			    header_templates[j], TMPL_HEADER, kv, 2);

			assert_non_null(out);
			for (const char *p = out; *p != '\0'; p++) {
				unsigned char c = (unsigned char)*p;
				if (c < 0x20 || c == 0x7f)
					fail_msg("%s with \"%s\": control "
					    "0x%02x in \"%s\"",
					    header_templates[j],
					    show(injections[i]), c, show(out));
			}
			if (strncmp(out, "Subject: ", 9) != 0 ||
			    strstr(out, "[ESC-1]") == NULL)
				fail_msg("%s: got \"%s\"",
				    header_templates[j], show(out));
			free(out);
		}
	}
}

/* ---- sections, comments, partials, standalone lines ----------------------- */

static const struct render_case section_cases[] = {
	{ "section set", "<{{#a}}yes{{/a}}>", TMPL_TEXT, { { "a", "1" } },
	    "<yes>" },
	{ "section unset", "<{{#a}}yes{{/a}}>", TMPL_TEXT, { { 0 } }, "<>" },
	{ "section empty", "<{{#a}}yes{{/a}}>", TMPL_TEXT, { { "a", "" } },
	    "<>" },
	{ "section \"0\" is set", "<{{#a}}yes{{/a}}>", TMPL_TEXT,
	    { { "a", "0" } }, "<yes>" },
	{ "section with its value", "{{#a}}[{{a}}]{{/a}}", TMPL_TEXT,
	    { { "a", "v" } }, "[v]" },
	{ "section blanks in tags", "{{# a }}y{{/ a }}", TMPL_TEXT,
	    { { "a", "1" } }, "y" },
	{ "inverted set", "<{{^a}}no{{/a}}>", TMPL_TEXT, { { "a", "1" } },
	    "<>" },
	{ "inverted unset", "<{{^a}}no{{/a}}>", TMPL_TEXT, { { 0 } },
	    "<no>" },
	{ "inverted empty", "<{{^a}}no{{/a}}>", TMPL_TEXT, { { "a", "" } },
	    "<no>" },
	{ "section then inverted", "{{#a}}A{{/a}}{{^a}}-{{/a}}", TMPL_TEXT,
	    { { "a", "1" } }, "A" },
	{ "nested both set", "{{#a}}a{{#b}}b{{/b}}{{^b}}!b{{/b}}{{/a}}",
	    TMPL_TEXT, { { "a", "1" }, { "b", "1" } }, "ab" },
	{ "nested inner unset", "{{#a}}a{{#b}}b{{/b}}{{^b}}!b{{/b}}{{/a}}",
	    TMPL_TEXT, { { "a", "1" } }, "a!b" },
	{ "nested outer unset", "{{#a}}a{{#b}}b{{/b}}{{^b}}!b{{/b}}{{/a}}",
	    TMPL_TEXT, { { "b", "1" } }, "" },
	{ "nested same name", "{{#a}}({{#a}}x{{/a}}){{/a}}", TMPL_TEXT,
	    { { "a", "1" } }, "(x)" },
	{ "inverted inside section", "{{#a}}{{^b}}{{c}}{{/b}}{{/a}}",
	    TMPL_TEXT, { { "a", "1" }, { "c", "C" } }, "C" },
	{ "three deep", "{{#a}}{{#b}}{{#c}}abc{{/c}}{{/b}}{{/a}}", TMPL_TEXT,
	    { { "a", "1" }, { "b", "1" }, { "c", "1" } }, "abc" },
	{ "comment", "a{{! a comment }}b", TMPL_TEXT, { { 0 } }, "ab" },
	{ "empty comment", "a{{!}}b", TMPL_TEXT, { { 0 } }, "ab" },
	{ "comment with tag-like text", "a{{! x #y /z >w &v }}b", TMPL_TEXT,
	    { { 0 } }, "ab" },
	{ "comment with braces", "a{{! x { y }}b", TMPL_TEXT, { { 0 } },
	    "ab" },
	{ "partial", "<{{> p}}>", TMPL_TEXT, { { 0 } }, "<P>" },
	{ "partial no blank", "<{{>p}}>", TMPL_TEXT, { { 0 } }, "<P>" },
	{ "partial name with _ and .", "<{{> under_score.dot}}>", TMPL_TEXT,
	    { { 0 } }, "<U>" },
	{ "empty partial", "<{{> empty}}>", TMPL_TEXT, { { 0 } }, "<>" },
	{ "partial sees variables", "<{{> var}}>", TMPL_TEXT,
	    { { "a", "A" } }, "<A>" },
	{ "partial escapes for the kind", "{{> var}}", TMPL_HTML,
	    { { "a", "<&>" } }, "&lt;&amp;&gt;" },
	{ "partial in a partial", "{{> outer}}", TMPL_TEXT, { { "a", "A" } },
	    "[A]" },
	{ "partial in a section, shown", "{{#s}}{{> p}}{{/s}}", TMPL_TEXT,
	    { { "s", "1" } }, "P" },
	{ "partial in a section, hidden", "{{#s}}{{> p}}{{/s}}", TMPL_TEXT,
	    { { 0 } }, "" },
	{ "same partial twice", "{{> p}}{{> p}}", TMPL_TEXT, { { 0 } },
	    "PP" },
};

static void
test_sections_partials(void **state)
{
	(void)state;
	run_cases(section_cases, N_ELEMS(section_cases));
}

static const struct render_case standalone_cases[] = {
	{ "section lines vanish (set)", "a\n{{#s}}\nb\n{{/s}}\nc\n",
	    TMPL_TEXT, { { "s", "1" } }, "a\nb\nc\n" },
	{ "section lines vanish (unset)", "a\n{{#s}}\nb\n{{/s}}\nc\n",
	    TMPL_TEXT, { { 0 } }, "a\nc\n" },
	{ "inverted lines vanish", "a\n{{^s}}\nb\n{{/s}}\nc\n", TMPL_TEXT,
	    { { 0 } }, "a\nb\nc\n" },
	{ "indented tags with trailing blanks",
	    "a\n  {{#s}}  \nb\n\t{{/s}}\t\nc\n", TMPL_TEXT, { { "s", "1" } },
	    "a\nb\nc\n" },
	{ "nested standalone", "{{#a}}\n{{#b}}\nab\n{{/b}}\n{{/a}}\nend\n",
	    TMPL_TEXT, { { "a", "1" }, { "b", "1" } }, "ab\nend\n" },
	{ "standalone at the start", "{{#s}}\nx\n{{/s}}\ny\n", TMPL_TEXT,
	    { { "s", "1" } }, "x\ny\n" },
	{ "standalone at the end, no newline", "x\n{{#s}}\ny\n{{/s}}",
	    TMPL_TEXT, { { "s", "1" } }, "x\ny\n" },
	{ "comment line vanishes", "a\n{{! note }}\nb\n", TMPL_TEXT,
	    { { 0 } }, "a\nb\n" },
	{ "indented comment line", "a\n   {{! note }}\nb\n", TMPL_TEXT,
	    { { 0 } }, "a\nb\n" },
	{ "comment at the end", "a\n{{! note }}", TMPL_TEXT, { { 0 } },
	    "a\n" },
	{ "partial line is replaced", "a\n{{> nl}}\nb\n", TMPL_TEXT,
	    { { 0 } }, "a\nP\nb\n" },
	{ "partial with standalone sections", "a\n{{> sec}}\nb\n", TMPL_TEXT,
	    { { "a", "1" } }, "a\nA\nb\n" },
	{ "partial with standalone sections, unset", "a\n{{> sec}}\nb\n",
	    TMPL_TEXT, { { 0 } }, "a\nb\n" },
	{ "crlf lines", "a\r\n{{#s}}\r\nb\r\n{{/s}}\r\nc\r\n", TMPL_TEXT,
	    { { "s", "1" } }, "a\r\nb\r\nc\r\n" },
	{ "variable line stays", "a\n{{v}}\nb\n", TMPL_TEXT, { { 0 } },
	    "a\n\nb\n" },
	{ "raw variable line stays", "a\n{{{v}}}\nb\n", TMPL_TEXT, { { 0 } },
	    "a\n\nb\n" },
	{ "text before the tag: not standalone", "a {{#s}}\nb\n{{/s}}\n",
	    TMPL_TEXT, { { "s", "1" } }, "a \nb\n" },
	{ "text after the tag: not standalone", "{{#s}} x\n{{/s}} y\n",
	    TMPL_TEXT, { { "s", "1" } }, " x\n y\n" },
	{ "inline section keeps the line", "a {{#s}}x{{/s}} b\nc\n",
	    TMPL_TEXT, { { 0 } }, "a  b\nc\n" },
	{ "two tags on a line: not standalone", "a\n{{#s}}{{/s}}\nb\n",
	    TMPL_TEXT, { { "s", "1" } }, "a\n\nb\n" },
	{ "comment after text: not standalone", "a {{! c }}\nb\n",
	    TMPL_TEXT, { { 0 } }, "a \nb\n" },
	{ "blank line kept next to a standalone", "a\n\n{{#s}}\nb\n{{/s}}\n",
	    TMPL_TEXT, { { 0 } }, "a\n\n" },
};

static void
test_standalone_lines(void **state)
{
	(void)state;
	run_cases(standalone_cases, N_ELEMS(standalone_cases));
}

/* ---- malformed templates -------------------------------------------------- */

static const struct {
	const char *what;
	const char *text;
	int first_line;
	int line;
	const char *in_error;	/* a part of the message, or NULL */
} bad_cases[] = {
	{ "unclosed {{", "abc {{ foo", 1, 1, NULL },
	{ "unclosed {{ on line 3", "a\n\nx {{foo\n", 1, 3, NULL },
	{ "unclosed {{{", "a\n{{{foo}}\nb\n", 1, 2, NULL },
	{ "{{ at the very end", "a\nb {{", 1, 2, NULL },
	{ "unclosed section", "a\n{{#s}}\nb\n", 1, 2, "s" },
	{ "unclosed inverted", "a\nb\n{{^inv}}x", 1, 3, "inv" },
	{ "unclosed inner section", "{{#a}}\n{{#b}}\n{{/a}}\n", 1, 3, NULL },
	{ "mismatched {{/x}}", "{{#a}}x{{/b}}", 1, 1, "b" },
	{ "mismatched on line 4", "{{#a}}\n\n\n{{/b}}\n", 1, 4, "b" },
	{ "{{/x}} without opening", "a\n{{/x}}\n", 1, 2, "x" },
	{ "{{/x}} after a closed one", "{{#x}}{{/x}}\n{{/x}}", 1, 2, "x" },
	{ "bad name: uppercase", "ok\n{{Name}}", 1, 2, "Name" },
	{ "bad name: dash", "{{a-b}}", 1, 1, "a-b" },
	{ "bad name: blank inside", "{{a b}}", 1, 1, NULL },
	{ "bad name: non-ascii", "{{caf\xc3\xa9}}", 1, 1, NULL },
	{ "bad name: slash", "{{a/b}}", 1, 1, NULL },
	{ "bad name in a section", "\n\n{{#Sec}}{{/Sec}}", 1, 3, "Sec" },
	{ "bad name in a raw tag", "{{{a b}}}", 1, 1, NULL },
	{ "bad name in {{& }}", "{{&A}}", 1, 1, NULL },
	{ "bad partial name", "{{> Bad}}", 1, 1, NULL },
	{ "delimiter change is not supported", "{{=<% %>=}}", 1, 1, NULL },
	{ "empty tag", "a\n{{}}", 1, 2, NULL },
	{ "blank tag", "{{ }}", 1, 1, NULL },
	{ "empty raw tag", "{{{}}}", 1, 1, NULL },
	{ "empty section", "{{#}}x{{/}}", 1, 1, NULL },
	{ "empty inverted", "{{^}}x{{/}}", 1, 1, NULL },
	{ "empty close", "{{/}}", 1, 1, NULL },
	{ "empty partial", "{{>}}", 1, 1, NULL },
	{ "empty {{& }}", "{{&}}", 1, 1, NULL },
	{ "missing partial", "a\nb\n{{> nowhere}}\n", 1, 3, "nowhere" },
	{ "error inside a partial: at the {{> }}", "x\n{{> bad}}\n", 1, 2,
	    NULL },
	{ "bad name inside a partial", "x\ny\n{{> badname}}", 1, 3, NULL },
	{ "first_line counted", "x\n{{/y}}", 10, 11, NULL },
	{ "first_line counted in sections", "{{#s}}\n\n", 5, 5, NULL },
	{ "error after a standalone line", "a\n{{#s}}\nb\n{{/s}}\n{{/t}}\n",
	    1, 5, "t" },
	{ "error after crlf lines", "a\r\nb\r\n{{Bad}}\r\n", 1, 3, NULL },
};

static void
test_malformed(void **state)
{
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(bad_cases); i++) {
		char *error = NULL;
		int line = -1;
		struct tmpl *t = tmpl_parse(bad_cases[i].text,
		    bad_cases[i].first_line, partial_fn, NULL, &line, &error);

		failed++;
		if (t != NULL)
			print_error("%s: \"%s\" parsed\n", bad_cases[i].what,
			    show(bad_cases[i].text));
		else if (error == NULL || error[0] == '\0')
			print_error("%s: no error message\n",
			    bad_cases[i].what);
		else if (line != bad_cases[i].line)
			print_error("%s: line %d, want %d (%s)\n",
			    bad_cases[i].what, line, bad_cases[i].line, error);
		else if (bad_cases[i].in_error != NULL &&
		    strstr(error, bad_cases[i].in_error) == NULL)
			print_error("%s: \"%s\" does not name \"%s\"\n",
			    bad_cases[i].what, error, bad_cases[i].in_error);
		else
			failed--;
		tmpl_free(&t);
		free(error);
	}
	if (failed > 0)
		fail_msg("%d of %zu malformed cases failed", failed,
		    N_ELEMS(bad_cases));
}

/* A parse with no partial function: {{> x}} is an error, not a crash. */
static void
test_no_partial_fn(void **state)
{
	char *error = NULL;
	int line = -1;
	struct tmpl *t;

	(void)state;
	t = tmpl_parse("a\n{{> p}}", 1, NULL, NULL, &line, &error);
	assert_null(t);
	assert_non_null(error);
	assert_int_equal(line, 2);
	free(error);

	/* No partial tag: no partial function needed. */
	error = NULL;
	t = tmpl_parse("plain {{a}}", 1, NULL, NULL, &line, &error);
	assert_non_null(t);
	assert_null(error);
	tmpl_free(&t);
	assert_null(t);
	tmpl_free(&t);		/* twice: a no-op */
}

/* ---- partial depth ----------------------------------------------------------- */

static int
chain_parses(int len, char **error_r, int *line_r)
{
	struct tmpl *t;
	char *out;

	chain_len = len;
	t = tmpl_parse("x\n{{> d1}}", 1, partial_fn, NULL, line_r, error_r);
	if (t == NULL)
		return 0;
	out = tmpl_render(t, NULL, TMPL_TEXT);
	assert_non_null(out);
	assert_string_equal(out, "x\nend");
	free(out);
	tmpl_free(&t);
	return 1;
}

static void
test_partial_depth(void **state)
{
	static const char *const recursive[] = {
		"{{> loop}}", "a\n{{> ping}}", "{{#s}}\n{{> loop}}\n{{/s}}",
	};
	char *error = NULL;
	int line = -1;

	(void)state;
	for (int len = 1; len <= TMPL_MAX_DEPTH; len++) {
		if (!chain_parses(len, &error, &line))
			fail_msg("a chain of %d partials (TMPL_MAX_DEPTH %d) "
			    "does not parse: line %d: %s", len, TMPL_MAX_DEPTH,
			    line, error);
	}
	if (chain_parses(TMPL_MAX_DEPTH + 1, &error, &line))
		fail_msg("a chain of %d partials parses", TMPL_MAX_DEPTH + 1);
	assert_non_null(error);
	assert_int_equal(line, 2);
	free(error);
	error = NULL;
	if (chain_parses(60, &error, &line))
		fail_msg("a chain of 60 partials parses");
	free(error);

	for (size_t i = 0; i < N_ELEMS(recursive); i++) {
		int calls = 0;
		struct tmpl *t = tmpl_parse(recursive[i], 1, partial_fn,
		    &calls, &line, &error);

		if (t != NULL)
			fail_msg("recursive \"%s\" parsed", show(recursive[i]));
		assert_non_null(error);
		if (calls > 4 * TMPL_MAX_DEPTH)
			fail_msg("recursive \"%s\": %d partial calls",
			    show(recursive[i]), calls);
		free(error);
		error = NULL;
	}
}

/* ---- tmpl_each_var ------------------------------------------------------------ */

struct seen {
	char names[16][32];
	int lines[16];
	int n;
	int stop_at;	/* return 7 when the n-th name is seen (1-based) */
};

static int
collect(const char *name, int line, void *arg)
{
	struct seen *s = arg;

	if (s->n >= 16)
		return -1;
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->lines[s->n++] = line;
	return s->n == s->stop_at ? 7 : 0;
}

static void
test_each_var(void **state)
{
	static const char text[] =
	    "Hi {{a}},\n"			/* 1 */
	    "{{#b}}\n"				/* 2 */
	    "  {{{c.d}}} and {{&e_2}}\n"	/* 3 */
	    "{{/b}}\n"				/* 4 */
	    "{{! not_a_var }}\n"		/* 5 */
	    "x {{> vars}} y\n"			/* 6: f and g */
	    "{{^h}}{{/h}}\n";			/* 7 */
	static const struct {
		const char *name;
		int line;
	} want[] = {
		{ "a", 1 }, { "b", 2 }, { "c.d", 3 }, { "e_2", 3 },
		{ "f", 6 }, { "g", 6 }, { "h", 7 },
	};
	struct seen s = { .stop_at = 0 };
	char *error = NULL;
	int line = -1, rc;
	struct tmpl *t = tmpl_parse(text, 1, partial_fn, NULL, &line, &error);

	(void)state;
	if (t == NULL)
		fail_msg("parse: line %d: %s", line, error);
	rc = tmpl_each_var(t, collect, &s);
	assert_int_equal(rc, 0);
	if (s.n != (int)N_ELEMS(want)) {
		for (int i = 0; i < s.n; i++)
			print_message("seen %s at %d\n", s.names[i],
			    s.lines[i]);
		fail_msg("%d names, want %zu", s.n, N_ELEMS(want));
	}
	for (size_t i = 0; i < N_ELEMS(want); i++)
		if (strcmp(s.names[i], want[i].name) != 0 ||
		    s.lines[i] != want[i].line)
			fail_msg("name %zu: %s at %d, want %s at %d", i,
			    s.names[i], s.lines[i], want[i].name,
			    want[i].line);

	/* A non-zero return stops the walk and is passed back. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	rc = tmpl_each_var(t, collect, &s);
	assert_int_equal(rc, 7);
	assert_int_equal(s.n, 2);
	tmpl_free(&t);

	/* Lines count from first_line. */
	t = tmpl_parse("\n{{a}}", 20, partial_fn, NULL, &line, &error);
	assert_non_null(t);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tmpl_each_var(t, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.lines[0], 21);
	tmpl_free(&t);

	/* No variables: no call. */
	t = tmpl_parse("text {{! c }}", 1, partial_fn, NULL, &line, &error);
	assert_non_null(t);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tmpl_each_var(t, collect, &s), 0);
	assert_int_equal(s.n, 0);
	tmpl_free(&t);
}

/* ---- tmpl_vars --------------------------------------------------------------- */

static void
test_vars(void **state)
{
	struct tmpl_vars *v = tmpl_vars_new();
	char name[16] = "a", value[16] = "one";
	struct tmpl *t;
	char *error = NULL, *out;
	int line;

	(void)state;
	assert_non_null(v);
	assert_null(tmpl_vars_get(v, "a"));
	assert_int_equal(tmpl_vars_set(v, name, value), 0);
	/* Name and value are copies. */
	strcpy(name, "zz");
	strcpy(value, "changed");
	assert_string_equal(tmpl_vars_get(v, "a"), "one");
	assert_null(tmpl_vars_get(v, "zz"));
	/* Replace. */
	assert_int_equal(tmpl_vars_set(v, "a", "two"), 0);
	assert_string_equal(tmpl_vars_get(v, "a"), "two");
	assert_int_equal(tmpl_vars_set(v, "b", ""), 0);
	assert_string_equal(tmpl_vars_get(v, "b"), "");

	t = tmpl_parse("{{#a}}[{{a}}]{{/a}}{{^a}}none{{/a}}", 1, NULL, NULL,
	    &line, &error);
	assert_non_null(t);
	out = tmpl_render(t, v, TMPL_TEXT);
	assert_string_equal(out, "[two]");
	free(out);

	/* NULL unsets; unsetting what is not set is fine. */
	assert_int_equal(tmpl_vars_set(v, "a", NULL), 0);
	assert_null(tmpl_vars_get(v, "a"));
	assert_int_equal(tmpl_vars_set(v, "never", NULL), 0);
	assert_null(tmpl_vars_get(v, "never"));
	out = tmpl_render(t, v, TMPL_TEXT);
	assert_string_equal(out, "none");
	free(out);
	/* Set again after an unset. */
	assert_int_equal(tmpl_vars_set(v, "a", "three"), 0);
	out = tmpl_render(t, v, TMPL_TEXT);
	assert_string_equal(out, "[three]");
	free(out);

	/* Many variables. */
	for (int i = 0; i < 200; i++) {
		char n[16], val[16];
		snprintf(n, sizeof(n), "v%d", i);
		snprintf(val, sizeof(val), "%d", i * 3);
		assert_int_equal(tmpl_vars_set(v, n, val), 0);
	}
	assert_string_equal(tmpl_vars_get(v, "v0"), "0");
	assert_string_equal(tmpl_vars_get(v, "v199"), "597");
	assert_string_equal(tmpl_vars_get(v, "a"), "three");

	tmpl_free(&t);
	tmpl_vars_free(&v);
	assert_null(v);
	tmpl_vars_free(&v);	/* twice: a no-op */
}

/* ---- output cap ---------------------------------------------------------------- */

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
test_output_cap(void **state)
{
	const size_t half = TMPL_MAX_OUTPUT / 2;
	char *big = repeat('x', half), *amp = repeat('&', TMPL_MAX_OUTPUT / 4);
	char *huge_text = repeat('y', TMPL_MAX_OUTPUT + 1);
	struct kv kv[2] = { { "a", big }, { "amp", amp } };
	static const struct {
		const char *what, *text;
		enum tmpl_kind kind;
		size_t len;	/* of the output, 0 for NULL */
	} cases[] = {
		{ "exactly the cap", "{{a}}{{a}}", TMPL_TEXT, 0 },	/* below */
		{ "one byte over", "{{a}}{{a}}!", TMPL_TEXT, 0 },
		{ "far over", "{{a}}{{a}}{{a}}", TMPL_TEXT, 0 },
		{ "over through a raw tag", "{{{a}}}{{{a}}}{{{a}}}", TMPL_HTML,
		    0 },
		{ "a quarter of &, as text", "{{amp}}", TMPL_TEXT,
		    TMPL_MAX_OUTPUT / 4 },
		{ "a quarter of &, escaped: over", "{{amp}}", TMPL_HTML, 0 },
	};
	char *out;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		size_t want = cases[i].len;

		if (i == 0)
			want = TMPL_MAX_OUTPUT;
		out = render(cases[i].what, cases[i].text, cases[i].kind, kv,
		    2);
		if (want == 0 && out != NULL)
			fail_msg("%s: %zu bytes rendered, cap %u",
			    cases[i].what, strlen(out), TMPL_MAX_OUTPUT);
		if (want != 0 && out == NULL)
			fail_msg("%s: NULL, want %zu bytes (cap %u: only "
			    "output over it fails)", cases[i].what, want,
			    TMPL_MAX_OUTPUT);
		if (want != 0 && strlen(out) != want)
			fail_msg("%s: %zu bytes, want %zu", cases[i].what,
			    strlen(out), want);
		free(out);
	}

	/* One byte under the cap. */
	big[half - 1] = '\0';
	out = render("cap - 1", "{{a}}x{{a}}", TMPL_TEXT, kv, 1);
	assert_non_null(out);
	assert_int_equal(strlen(out), TMPL_MAX_OUTPUT - 1);
	free(out);

	/* Template text alone over the cap. */
	out = render("long text", huge_text, TMPL_TEXT, kv, 0);
	assert_null(out);

	free(big);
	free(amp);
	free(huge_text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vars_and_escaping),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_sections_partials),
		cmocka_unit_test(test_standalone_lines),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_no_partial_fn),
		cmocka_unit_test(test_partial_depth),
		cmocka_unit_test(test_each_var),
		cmocka_unit_test(test_vars),
		cmocka_unit_test(test_output_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
