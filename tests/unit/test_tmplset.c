/*
 * test_tmplset: loading a templates folder (templates/tmplset.h).
 *
 * - The shipped templates/ folder loads; every name renders for both
 *   channels with a full set of its variables and with none but the ref;
 *   each email form has a Subject carrying [ESC-N] (agent-facing ones lead
 *   with it), chat forms have no headers, and no tag is left in the text.
 * - Escaping through the set: the ack HTML part escapes values, the text
 *   part does not, and a value cannot add a header line.
 * - Broken folders: a copy of templates/ in a temporary folder with one
 *   file removed or replaced; each case gives an exact "FILE:LINE:" (or
 *   names FILE when no line applies) and what the message must mention.
 *
 * Run from the repository root (as `make unit` does): the shipped folder
 * is found through a relative path.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "tmplset.h"

#define N_ELEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define SHIPPED		"templates"
#define REF		"ESC-42"

/* Values for every variable any template may use; the rest get "v:NAME". */
static const struct {
	const char *name, *value;
} samples[] = {
	{ "ticket.id", "42" },
	{ "ticket.ref", REF },
	{ "ticket.subject", "Cannot log in since this morning" },
	{ "ticket.state", "open" },
	{ "ticket.severity", "high" },
	{ "ticket.queue", "general" },
	{ "ticket.team", "tier2" },
	{ "ticket.level", "2" },
	{ "ticket.url", "http://127.0.0.1:8025/tickets/42" },
	{ "ticket.channel", "email" },
	{ "ticket.root_cause", "expired certificate" },
	{ "customer.name", "Jane Doe" },
	{ "customer.address", "jane@example.test" },
	{ "agent.name", "Alice" },
	{ "agent.email", "alice@example.test" },
	{ "message.body", "Hello,\nI cannot log in.\nJane" },
	{ "message.subject", "Logs attached" },
	{ "message.size", "14.2M" },
	{ "limit.size", "10M" },
	{ "sla.first_response_due", "2026-12-04T16:00:00Z" },
	{ "sla.next_update_due", "2026-12-04T20:00:00Z" },
	{ "sla.resolution_due", "2026-12-07T12:00:00Z" },
	{ "sla.clock", "first_response" },
	{ "sla.due", "2026-12-04T16:00:00Z" },
	{ "reply.address", "support+42.abcdefghijklmnop@example.test" },
	{ "escalation.from", "1" },
	{ "escalation.to", "2" },
	{ "escalation.why", "first_response breached" },
	{ "csat.url", "http://127.0.0.1:8025/csat/abc" },
	{ "reason", "no valid reply token" },
	{ "error", "#severity urgent: unknown severity" },
};

static const char *
sample(const char *name)
{
	for (size_t i = 0; i < N_ELEMS(samples); i++)
		if (strcmp(samples[i].name, name) == 0)
			return samples[i].value;
	return NULL;
}

/* Every variable of template NAME set (full), or only ticket.ref. */
static struct tmpl_vars *
vars_for(const char *name, int full)
{
	const char *const *allowed = tmplset_vars(name);
	struct tmpl_vars *v = tmpl_vars_new();

	assert_non_null(allowed);
	assert_non_null(v);
	for (; *allowed != NULL; allowed++) {
		const char *val = sample(*allowed);
		char fallback[128];

		if (!full && strcmp(*allowed, "ticket.ref") != 0)
			continue;
		if (val == NULL) {
			snprintf(fallback, sizeof(fallback), "v:%s", *allowed);
			val = fallback;
		}
		assert_int_equal(tmpl_vars_set(v, *allowed, val), 0);
	}
	return v;
}

static int
agent_facing(const char *name)
{
	return strncmp(name, "agent_", 6) == 0 ||
	    strcmp(name, "sla_warning") == 0;
}

/* ---- the variable table ------------------------------------------------- */

static void
test_var_table(void **state)
{
	(void)state;
	assert_int_equal(tmplset_n_names, 12);
	for (size_t i = 0; i < tmplset_n_names; i++) {
		const char *const *v = tmplset_vars(tmplset_names[i]);
		int ref = 0;

		assert_non_null(v);
		for (; *v != NULL; v++)
			ref |= strcmp(*v, "ticket.ref") == 0;
		if (!ref)
			fail_msg("%s: no ticket.ref", tmplset_names[i]);
	}
	assert_null(tmplset_vars("nope"));
	assert_null(tmplset_vars(""));
}

/* ---- the shipped folder -------------------------------------------------- */

static int
setup_shipped(void **state)
{
	char *error = NULL;
	struct tmplset *s = tmplset_load(SHIPPED, &error);

	if (s == NULL) {
		fprintf(stderr, "tmplset_load(%s): %s\n", SHIPPED,
		    error != NULL ? error : "(no message)");
		free(error);
		return -1;
	}
	*state = s;
	return 0;
}

static int
teardown_shipped(void **state)
{
	struct tmplset *s = *state;

	tmplset_free(&s);
	assert_null(s);
	return 0;
}

static void
check_rendered(const char *name, const char *channel, int full,
    const struct rendered *r)
{
	const char *subject = rendered_header(r, "Subject");
	const char *what = full ? "full" : "ref only";

	if (r->text == NULL || r->text[0] == '\0')
		fail_msg("%s.%s (%s): empty text", name, channel, what);
	if (strstr(r->text, "{{") != NULL || strstr(r->text, "}}") != NULL)
		fail_msg("%s.%s (%s): a tag left in \"%s\"", name, channel,
		    what, r->text);
	if (strstr(r->text, REF) == NULL)
		fail_msg("%s.%s (%s): the text does not mention %s", name,
		    channel, what, REF);
	if (strcmp(channel, "chat") == 0) {
		if (r->n_headers != 0 || r->html != NULL)
			fail_msg("%s.chat: %zu headers, html %s", name,
			    r->n_headers, r->html ? "set" : "NULL");
		return;
	}
	if (subject == NULL)
		fail_msg("%s.email (%s): no Subject", name, what);
	if (strstr(subject, "[" REF "]") == NULL)
		fail_msg("%s.email (%s): Subject \"%s\" lacks [%s]", name,
		    what, subject, REF);
	if (agent_facing(name) && strncmp(subject, "[" REF "]", 8) != 0)
		fail_msg("%s.email: agent-facing Subject \"%s\" does not lead "
		    "with [%s]", name, subject, REF);
	for (size_t h = 0; h < r->n_headers; h++)
		if (strpbrk(r->headers[h].value, "\r\n") != NULL ||
		    strpbrk(r->headers[h].name, "\r\n: ") != NULL)
			fail_msg("%s.email: bad header \"%s\"", name,
			    r->headers[h].name);
	if (strcmp(name, "ack") == 0 && r->html == NULL)
		fail_msg("ack.email: no HTML part");
}

static void
test_shipped_render(void **state)
{
	static const char *const channels[] = { "email", "chat" };
	const struct tmplset *s = *state;

	for (size_t i = 0; i < tmplset_n_names; i++) {
		for (size_t c = 0; c < N_ELEMS(channels); c++) {
			for (int full = 1; full >= 0; full--) {
				struct tmpl_vars *v = vars_for(tmplset_names[i],
				    full);
				struct rendered r;
				const char *error = NULL;

				if (tmplset_render(s, tmplset_names[i],
				    channels[c], v, &r, &error) < 0)
					fail_msg("render %s.%s: %s",
					    tmplset_names[i], channels[c],
					    error);
				check_rendered(tmplset_names[i], channels[c],
				    full, &r);
				rendered_release(&r);
				assert_null(r.text);
				tmpl_vars_free(&v);
			}
		}
	}
}

static void
test_shipped_unknown(void **state)
{
	const struct tmplset *s = *state;
	struct tmpl_vars *v = vars_for("ack", 1);
	struct rendered r;
	const char *error = NULL;

	assert_int_equal(tmplset_render(s, "nope", "email", v, &r, &error),
	    -1);
	assert_non_null(error);
	tmpl_vars_free(&v);
}

/* Values are escaped for each part; a value cannot add a header. */
static void
test_shipped_escaping(void **state)
{
	static const char evil_name[] = "<script>alert('x')</script> & \"co\"";
	static const char evil_subject[] = "x\r\nBcc: evil@example.test\r\n"
	    "\r\n<b>body</b>";
	const struct tmplset *s = *state;
	struct tmpl_vars *v = vars_for("ack", 1);
	struct rendered r;
	const char *error = NULL, *subject;

	assert_int_equal(tmpl_vars_set(v, "customer.name", evil_name), 0);
	assert_int_equal(tmpl_vars_set(v, "ticket.subject", evil_subject), 0);
	if (tmplset_render(s, "ack", "email", v, &r, &error) < 0)
		fail_msg("render ack.email: %s", error);

	/* HTML part: escaped, nothing of the value's markup survives. */
	assert_non_null(r.html);
	if (strstr(r.html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
	    " &amp; &quot;co&quot;") == NULL)
		fail_msg("html does not hold the escaped name:\n%s", r.html);
	if (strstr(r.html, "<script") != NULL ||
	    strstr(r.html, "<b>body") != NULL)
		fail_msg("html holds raw markup from a value:\n%s", r.html);
	if (strstr(r.html, "http://") != NULL ||
	    strstr(r.html, "https://") != NULL ||
	    strstr(r.html, "src=") != NULL)
		fail_msg("html is not self-contained:\n%s", r.html);

	/* Text part: values as they are. */
	if (strstr(r.text, evil_name) == NULL)
		fail_msg("text does not hold the name as it is:\n%s", r.text);

	/* Headers: one Subject, no Bcc, no line breaks. */
	subject = rendered_header(&r, "Subject");
	assert_non_null(subject);
	assert_null(rendered_header(&r, "Bcc"));
	assert_null(rendered_header(&r, "bcc"));
	if (strpbrk(subject, "\r\n") != NULL)
		fail_msg("Subject holds a line break");
	if (strstr(subject, "[" REF "]") == NULL)
		fail_msg("Subject \"%s\" lost its ref", subject);
	for (size_t h = 0; h < r.n_headers; h++)
		if (strcasecmp(r.headers[h].name, "Subject") != 0)
			fail_msg("an extra header \"%s\"", r.headers[h].name);
	assert_string_equal(rendered_header(&r, "subject"), subject);
	rendered_release(&r);
	tmpl_vars_free(&v);
}

/* ---- broken folders ------------------------------------------------------- */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
spill(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* A new temporary folder holding a copy of every *.tmpl of templates/. */
static char *
copy_shipped(void)
{
	char *dir = tmpdir_new("escalon-test-tmplset");
	DIR *d = opendir(SHIPPED);
	struct dirent *de;
	int n = 0;

	assert_non_null(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char path[PATH_MAX], *text;

		if (len < 5 || strcmp(de->d_name + len - 5, ".tmpl") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", SHIPPED, de->d_name);
		text = slurp(path);
		spill(dir, de->d_name, text);
		free(text);
		n++;
	}
	closedir(d);
	assert_true(n >= 24);
	return dir;
}

#define OK_EMAIL	"Subject: [{{ticket.ref}}]\n\nbody\n"

static const struct {
	const char *what;
	const char *file;	/* replaced, or removed when text is NULL */
	const char *text;
	const char *file2;	/* a second file written, or NULL */
	const char *text2;
	const char *err_file;	/* the file the error names */
	int err_line;		/* "FILE:LINE: " prefix; 0: FILE named */
	const char *in_error;	/* also in the message, or NULL */
} broken[] = {
	{ "a copy loads", NULL, NULL, NULL, NULL, NULL, 0, NULL },
	{ "missing chat template", "csat.chat.tmpl", NULL, NULL, NULL,
	    "csat.chat.tmpl", 0, NULL },
	{ "missing email template", "agent_error.email.tmpl", NULL, NULL,
	    NULL, "agent_error.email.tmpl", 0, NULL },
	{ "missing html part is fine", "ack.email.html.tmpl", NULL, NULL,
	    NULL, NULL, 0, NULL },
	{ "variable outside the set, body", "update.email.tmpl",
	    "Subject: [{{ticket.ref}}]\n\nHello\n{{agent.email}}\n", NULL,
	    NULL, "update.email.tmpl", 4, "agent.email" },
	{ "variable outside the set, header", "ack.email.tmpl",
	    "Subject: {{reason}} [{{ticket.ref}}]\n\nbody\n", NULL, NULL,
	    "ack.email.tmpl", 1, "reason" },
	{ "variable outside the set, second header", "ack.email.tmpl",
	    "Subject: [{{ticket.ref}}]\nX-Note: {{agent.name}}\n\nbody\n",
	    NULL, NULL, "ack.email.tmpl", 2, "agent.name" },
	{ "section outside the set", "csat.chat.tmpl",
	    "{{ticket.ref}}\n\n{{#message.body}}x{{/message.body}}\n", NULL,
	    NULL, "csat.chat.tmpl", 3, "message.body" },
	{ "variable outside the set, chat", "resolved.chat.tmpl",
	    "a\nb\nc {{{sla.clock}}}\n", NULL, NULL, "resolved.chat.tmpl", 3,
	    "sla.clock" },
	{ "variable outside the set, through a partial", "ack.chat.tmpl",
	    "{{ticket.ref}}\n{{> oops}}\n", "_oops.tmpl", "{{error}}\n",
	    "ack.chat.tmpl", 2, "error" },
	{ "variable outside the set, html part", "ack.email.html.tmpl",
	    "<p>{{ticket.ref}}</p>\n<p>{{csat.url}}</p>\n", NULL, NULL,
	    "ack.email.html.tmpl", 2, "csat.url" },
	{ "unknown variable", "agent_new.chat.tmpl", "{{ticket.refs}}\n",
	    NULL, NULL, "agent_new.chat.tmpl", 1, "ticket.refs" },
	{ "malformed: unclosed section in the body", "ack.email.tmpl",
	    "Subject: [{{ticket.ref}}]\n\nline 3\n{{#ticket.ref}}\nx\n", NULL,
	    NULL, "ack.email.tmpl", 4, NULL },
	{ "malformed: stray close in a chat", "update.chat.tmpl",
	    "a\nb\n{{/ticket.ref}}\n", NULL, NULL, "update.chat.tmpl", 3,
	    NULL },
	{ "malformed: unclosed {{ in a header", "escalated.email.tmpl",
	    "Subject: [{{ticket.ref}]\n\nbody\n", NULL, NULL,
	    "escalated.email.tmpl", 1, NULL },
	{ "malformed: bad name after two headers", "resolved.email.tmpl",
	    "Subject: [{{ticket.ref}}]\nX-A: b\n\n\nx {{Ticket}}\n", NULL,
	    NULL, "resolved.email.tmpl", 5, NULL },
	{ "malformed html part", "ack.email.html.tmpl",
	    "<p>\n{{#ticket.ref}}\n</p>\n", NULL, NULL,
	    "ack.email.html.tmpl", 2, NULL },
	{ "missing partial", "too_large.chat.tmpl",
	    "{{ticket.ref}}\n\n{{> nowhere}}\n", NULL, NULL,
	    "too_large.chat.tmpl", 3, "nowhere" },
	{ "broken partial", "sla_warning.chat.tmpl",
	    "{{ticket.ref}}\n{{> cracked}}\n", "_cracked.tmpl",
	    "ok\n{{#x}}\n", "sla_warning.chat.tmpl", 2, NULL },
	{ "self-including partial", "csat.chat.tmpl",
	    "{{ticket.ref}}\n{{> mirror}}\n", "_mirror.tmpl",
	    "{{> mirror}}\n", "csat.chat.tmpl", 2, NULL },
	{ "email without headers", "agent_reply.email.tmpl",
	    "Hello {{customer.name}},\n\nThanks.\n", NULL, NULL,
	    "agent_reply.email.tmpl", 0, NULL },
	{ "email without the blank line", "escalated.email.tmpl",
	    "Subject: [{{ticket.ref}}]\nHello,\nthanks.\n", NULL, NULL,
	    "escalated.email.tmpl", 0, NULL },
	{ "email of headers only", "escalated.email.tmpl",
	    "Subject: [{{ticket.ref}}]\n", NULL, NULL,
	    "escalated.email.tmpl", 0, NULL },
	{ "email starting with a blank line", "escalated.email.tmpl",
	    "\nSubject: [{{ticket.ref}}]\n\nbody\n", NULL, NULL,
	    "escalated.email.tmpl", 0, NULL },
	{ "email without Subject", "csat.email.tmpl",
	    "X-Note: [{{ticket.ref}}]\n\nbody\n", NULL, NULL,
	    "csat.email.tmpl", 0, "Subject" },
	{ "empty email template", "csat.email.tmpl", "", NULL, NULL,
	    "csat.email.tmpl", 0, NULL },
	{ "unknown template name", NULL, NULL, "acknowledge.chat.tmpl",
	    "{{ticket.ref}}\n", "acknowledge.chat.tmpl", 0, NULL },
	{ "crlf email loads", "ack.email.tmpl",
	    "Subject: [{{ticket.ref}}]\r\n\r\nbody\r\n", NULL, NULL, NULL, 0,
	    NULL },
	{ "minimal email loads", "ack.email.tmpl", OK_EMAIL, NULL, NULL,
	    NULL, 0, NULL },
};

/* Loads case I of broken[]; 0 when it behaves, else -1 with a message. */
static int
check_broken(size_t i)
{
	char *dir = copy_shipped(), *error = NULL, want[PATH_MAX];
	struct tmplset *s;
	int rc = -1;

	if (broken[i].file != NULL && broken[i].text == NULL) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, broken[i].file);
		assert_int_equal(unlink(path), 0);
	} else if (broken[i].file != NULL)
		spill(dir, broken[i].file, broken[i].text);
	if (broken[i].file2 != NULL)
		spill(dir, broken[i].file2, broken[i].text2);

	s = tmplset_load(dir, &error);
	if (broken[i].err_file == NULL) {
		if (s == NULL)
			print_error("%s: %s\n", broken[i].what, error);
		else if (error != NULL)
			print_error("%s: loaded, with error \"%s\"\n",
			    broken[i].what, error);
		else
			rc = 0;
		goto out;
	}
	if (s != NULL) {
		print_error("%s: loaded\n", broken[i].what);
		goto out;
	}
	if (error == NULL) {
		print_error("%s: no error message\n", broken[i].what);
		goto out;
	}
	if (broken[i].err_line > 0) {
		snprintf(want, sizeof(want), "%s/%s:%d: ", dir,
		    broken[i].err_file, broken[i].err_line);
		if (strncmp(error, want, strlen(want)) != 0) {
			print_error("%s: \"%s\" does not start with \"%s\"\n",
			    broken[i].what, error, want);
			goto out;
		}
	} else {
		snprintf(want, sizeof(want), "%s/%s", dir, broken[i].err_file);
		if (strstr(error, want) == NULL) {
			print_error("%s: \"%s\" does not name \"%s\"\n",
			    broken[i].what, error, want);
			goto out;
		}
	}
	if (broken[i].in_error != NULL &&
	    strstr(error, broken[i].in_error) == NULL) {
		print_error("%s: \"%s\" does not mention \"%s\"\n",
		    broken[i].what, error, broken[i].in_error);
		goto out;
	}
	rc = 0;
out:
	tmplset_free(&s);
	free(error);
	tmpdir_free(&dir);
	return rc;
}

static void
test_broken_folders(void **state)
{
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(broken); i++)
		failed += check_broken(i) < 0;
	if (failed > 0)
		fail_msg("%d of %zu folder cases failed", failed,
		    N_ELEMS(broken));
}

static void
test_missing_folder(void **state)
{
	char *dir = tmpdir_new("escalon-test-tmplset"), *error = NULL;
	char path[PATH_MAX];
	struct tmplset *s;

	(void)state;
	assert_non_null(dir);
	/* An empty folder: the first template is missing. */
	s = tmplset_load(dir, &error);
	assert_null(s);
	assert_non_null(error);
	if (strstr(error, ".tmpl") == NULL)
		fail_msg("empty folder: \"%s\" names no template", error);
	free(error);
	error = NULL;
	/* No folder at all. */
	snprintf(path, sizeof(path), "%s/absent", dir);
	s = tmplset_load(path, &error);
	assert_null(s);
	assert_non_null(error);
	if (strstr(error, path) == NULL)
		fail_msg("absent folder: \"%s\" does not name it", error);
	free(error);
	tmpdir_free(&dir);
	assert_null(dir);
}

/* ---- customer-facing chat forms ------------------------------------------ */

#define CHAT_LINE_MAX	500
#define TOM		"Tom & Jerry <x>"

/* Each customer-facing template, and the words its chat form promises
 * around the ref. */
static const struct {
	const char *name, *ref_in;
} chat_customer[] = {
	{ "ack", "opened request " REF " for it" },
	{ "escalated", "passed your request " REF " to" },
	{ "update", "update on " REF ":" },
	{ "resolved", "resolved your request " REF "." },
	{ "csat", "resolved your request " REF "." },
	{ "too_large", "noted it under " REF "." },
};

/* 1 when line (up to its end) reads as a mail header: "Name: value". */
static int
header_like(const char *line)
{
	size_t n = strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	    "tuvwxyz0123456789-");

	return n > 0 && line[n] == ':';
}

/* What every customer chat text must be: no headers, plain, short lines. */
static void
check_chat_text(const char *name, const char *what, const struct rendered *r)
{
	const char *line = r->text;

	if (r->n_headers != 0 || r->html != NULL)
		fail_msg("%s.chat (%s): %zu headers, html %s", name, what,
		    r->n_headers, r->html != NULL ? "set" : "NULL");
	if (strncasecmp(r->text, "Subject:", 8) == 0 || header_like(r->text))
		fail_msg("%s.chat (%s): opens with a header line:\n%s", name,
		    what, r->text);
	while (*line != '\0') {
		size_t len = strcspn(line, "\n");

		if (strncasecmp(line, "Subject:", 8) == 0)
			fail_msg("%s.chat (%s): a Subject line:\n%s", name,
			    what, r->text);
		if (len > CHAT_LINE_MAX)
			fail_msg("%s.chat (%s): a line of %zu chars", name,
			    what, len);
		line += len;
		if (*line == '\n')
			line++;
	}
	if (strchr(r->text, '\r') != NULL)
		fail_msg("%s.chat (%s): a CR in the text", name, what);
}

/* With the sample values (no markup in them): plain text, ref in place. */
static void
test_chat_customer_plain(void **state)
{
	const struct tmplset *s = *state;

	for (size_t i = 0; i < N_ELEMS(chat_customer); i++) {
		const char *name = chat_customer[i].name;

		for (int full = 1; full >= 0; full--) {
			struct tmpl_vars *v = vars_for(name, full);
			const char *error = NULL, *what = full ? "full" :
			    "ref only";
			struct rendered r;

			if (tmplset_render(s, name, "chat", v, &r, &error) < 0)
				fail_msg("render %s.chat: %s", name, error);
			check_chat_text(name, what, &r);
			if (strchr(r.text, '<') != NULL ||
			    strchr(r.text, '>') != NULL)
				fail_msg("%s.chat (%s): markup in plain text:\n%s",
				    name, what, r.text);
			if (strstr(r.text, "&amp;") != NULL ||
			    strstr(r.text, "&lt;") != NULL ||
			    strstr(r.text, "&#") != NULL)
				fail_msg("%s.chat (%s): an HTML entity:\n%s",
				    name, what, r.text);
			if (strstr(r.text, chat_customer[i].ref_in) == NULL)
				fail_msg("%s.chat (%s): no \"%s\" in:\n%s", name,
				    what, chat_customer[i].ref_in, r.text);
			rendered_release(&r);
			tmpl_vars_free(&v);
		}
	}
}

/*
 * Chat is plain text: values go out as they are, never HTML-escaped. The
 * customer's name is set to TOM; no chat form shows customer.name, so
 * every other variable but the ref holds TOM too, and each form shows at
 * least one of them.
 */
static void
test_chat_customer_unescaped(void **state)
{
	const struct tmplset *s = *state;

	for (size_t i = 0; i < N_ELEMS(chat_customer); i++) {
		const char *name = chat_customer[i].name;
		const char *const *allowed = tmplset_vars(name);
		struct tmpl_vars *v = tmpl_vars_new();
		const char *error = NULL;
		struct rendered r;

		assert_non_null(allowed);
		assert_non_null(v);
		for (; *allowed != NULL; allowed++)
			assert_int_equal(tmpl_vars_set(v, *allowed,
			    strcmp(*allowed, "ticket.ref") == 0 ? REF : TOM),
			    0);
		assert_string_equal(tmpl_vars_get(v, "customer.name"), TOM);
		if (tmplset_render(s, name, "chat", v, &r, &error) < 0)
			fail_msg("render %s.chat: %s", name, error);
		check_chat_text(name, "values " TOM, &r);
		if (strstr(r.text, TOM) == NULL)
			fail_msg("%s.chat: \"" TOM "\" not there as it is:\n%s",
			    name, r.text);
		if (strstr(r.text, "&amp;") != NULL ||
		    strstr(r.text, "&lt;") != NULL ||
		    strstr(r.text, "&gt;") != NULL ||
		    strstr(r.text, "&#") != NULL)
			fail_msg("%s.chat: HTML-escaped:\n%s", name, r.text);
		if (strstr(r.text, chat_customer[i].ref_in) == NULL)
			fail_msg("%s.chat: no \"%s\" in:\n%s", name,
			    chat_customer[i].ref_in, r.text);
		rendered_release(&r);
		tmpl_vars_free(&v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_var_table),
		cmocka_unit_test_setup_teardown(test_shipped_render,
		    setup_shipped, teardown_shipped),
		cmocka_unit_test_setup_teardown(test_shipped_unknown,
		    setup_shipped, teardown_shipped),
		cmocka_unit_test_setup_teardown(test_shipped_escaping,
		    setup_shipped, teardown_shipped),
		cmocka_unit_test(test_broken_folders),
		cmocka_unit_test(test_missing_folder),
		cmocka_unit_test_setup_teardown(test_chat_customer_plain,
		    setup_shipped, teardown_shipped),
		cmocka_unit_test_setup_teardown(test_chat_customer_unescaped,
		    setup_shipped, teardown_shipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
