/*
 * fuzz_template: template parsing and rendering (templates/render.h) and a
 * templates folder with one file replaced (templates/tmplset.h).
 *
 * Input: one flag byte, then the template text, then variable values, the
 * parts separated by NUL bytes (a template file holds no NUL).
 *
 *   flag & 1 == 0  render.h alone: tmpl_parse (first line 1 + flag >> 5),
 *                  partials from a fixed table, tmpl_each_var, then
 *                  tmpl_render in all three kinds with the values set to
 *                  the variables a, b, c.d, ticket.ref, x_1 (in that
 *                  order; those without a value stay unset), e = "" and
 *                  full = "F".
 *   flag & 1 == 1  tmplset.h: a copy of templates/ in a folder under /tmp
 *                  (made once, removed at exit) gets the text in place of
 *                  file (flag >> 1) % the number of files; the folder is
 *                  loaded and, when that works, every template is rendered
 *                  for both channels, its variables given the values in
 *                  turn. The file is put back afterwards.
 *
 * Checked, aborting when broken:
 *   - a failed parse or load says why (an error string);
 *   - no output is over TMPL_MAX_OUTPUT;
 *   - TMPL_HEADER: when the template text has no control character (and
 *     includes no partial that has one), neither has the output: no value,
 *     raw or not, can end a header line;
 *   - TMPL_HTML: when the template text has no '<', '&' or "{{{" (no raw
 *     tag), the output has no '<': every value is escaped;
 *   - tmplset: the rendered header lines are the same as with the values
 *     stripped of control characters (the values cannot add, remove or
 *     change a header), unless stripping empties a value (which changes
 *     what a section shows).
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "tmplset.h"
#include "../unit/testutil.h"

#ifndef FUZZ_TOP
#define FUZZ_TOP "."
#endif

#define MAX_PARTS	16
#define MAX_FILES	64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- render.h alone -------------------------------------------------- */

/* No '<', '&', "{{{" or control character in any of them but "nl"; "self"
 * is the template text itself (recursion stops at TMPL_MAX_DEPTH). */
static const struct {
	const char *name, *text;
} partials[] = {
	{ "p", "P" },
	{ "nl", "P\n" },
	{ "var", "[{{a}}]" },
	{ "sec", "{{#a}}A{{/a}}{{^a}}-{{/a}}" },
	{ "outer", "({{> var}})" },
	{ "empty", "" },
	{ "bad", "{{/nope}}" },
};

static const char *const var_names[] = {
	"a", "b", "c.d", "ticket.ref", "x_1",
};

static const char *self_text;

static const char *
partial_fn(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, "self") == 0)
		return self_text;
	for (size_t i = 0; i < sizeof(partials) / sizeof(partials[0]); i++)
		if (strcmp(partials[i].name, name) == 0)
			return partials[i].text;
	return NULL;
}

static int
count_var(const char *name, int line, void *arg)
{
	(void)line;
	if (name == NULL || *name == '\0')
		abort();
	return ++*(int *)arg > 100000;
}

static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static void
fuzz_render(const char *text, int first_line, char **vals, size_t n_vals)
{
	struct tmpl_vars *v = tmpl_vars_new();
	struct tmpl *t;
	char *error = NULL, *out;
	int line = 0, n = 0;

	if (v == NULL)
		abort();
	for (size_t i = 0; i < n_vals &&
	    i < sizeof(var_names) / sizeof(var_names[0]); i++)
		if (tmpl_vars_set(v, var_names[i], vals[i]) < 0)
			abort();
	if (tmpl_vars_set(v, "e", "") < 0 || tmpl_vars_set(v, "full", "F") < 0)
		abort();

	self_text = text;
	t = tmpl_parse(text, first_line, partial_fn, NULL, &line, &error);
	if (t == NULL) {
		if (error == NULL)
			abort();
		free(error);
		goto out;
	}
	tmpl_each_var(t, count_var, &n);

	if ((out = tmpl_render(t, v, TMPL_TEXT)) != NULL) {
		if (strlen(out) > TMPL_MAX_OUTPUT)
			abort();
		free(out);
	}
	if ((out = tmpl_render(t, v, TMPL_HEADER)) != NULL) {
		if (!has_control(text) && strstr(text, "nl") == NULL &&
		    has_control(out)) {
			fprintf(stderr, "fuzz_template: a value put a control "
			    "character in a header\n");
			abort();
		}
		free(out);
	}
	if ((out = tmpl_render(t, v, TMPL_HTML)) != NULL) {
		if (strchr(text, '<') == NULL && strchr(text, '&') == NULL &&
		    strstr(text, "{{{") == NULL && strchr(out, '<') != NULL) {
			fprintf(stderr, "fuzz_template: an unescaped '<' in "
			    "HTML\n");
			abort();
		}
		free(out);
	}
	tmpl_free(&t);
out:
	self_text = NULL;
	tmpl_vars_free(&v);
}

/* ---- tmplset.h ------------------------------------------------------- */

static char set_dir[] = "/tmp/escalon-fuzz-tmpl.XXXXXX";
static int set_ready;
static struct {
	char *name, *text;
} files[MAX_FILES];
static size_t n_files;

static int
write_all(const char *name, const char *text)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", set_dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(text, 1, strlen(text), f) == strlen(text);
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int
cmp_file(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
remove_set(void)
{
	char path[4096];

	for (size_t i = 0; i < n_files; i++) {
		snprintf(path, sizeof(path), "%s/%s", set_dir, files[i].name);
		unlink(path);
		free(files[i].name);
		free(files[i].text);
	}
	n_files = 0;
	rmdir(set_dir);
}

/* Copy FUZZ_TOP/templates/\*.tmpl to set_dir, sorted by name. */
static int
make_set(void)
{
	char src[4096];
	DIR *d;
	struct dirent *de;
	char *names[MAX_FILES];
	size_t n = 0;

	snprintf(src, sizeof(src), "%s/templates", FUZZ_TOP);
	if ((d = opendir(src)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < MAX_FILES) {
		size_t len = strlen(de->d_name);
		if (len > 5 && strcmp(de->d_name + len - 5, ".tmpl") == 0)
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_file);
	if (mkdtemp(set_dir) == NULL)
		return -1;
	atexit(remove_set);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", src, names[i]);
		files[n_files].name = names[i];
		if ((files[n_files].text = test_read_file(path, NULL)) == NULL ||
		    write_all(names[i], files[n_files].text) < 0)
			return -1;
		n_files++;
	}
	return n_files > 0 ? 0 : -1;
}

/* Values for name's variables: vals in turn, or "v" when there are none;
 * strip: control characters taken out. NULL when stripping empties one. */
static struct tmpl_vars *
set_vars(const char *name, char **vals, size_t n_vals, int strip)
{
	const char *const *names = tmplset_vars(name);
	struct tmpl_vars *v = tmpl_vars_new();
	char buf[4096];

	if (v == NULL || names == NULL)
		abort();
	for (size_t i = 0; names[i] != NULL; i++) {
		const char *val = n_vals > 0 ? vals[i % n_vals] : "v";
		size_t o = 0;
		if (strip) {
			for (const char *s = val; *s != '\0' &&
			    o + 1 < sizeof(buf); s++)
				if ((unsigned char)*s >= 0x20 && *s != 0x7f)
					buf[o++] = *s;
				else if (*s == '\t')
					buf[o++] = ' ';
			buf[o] = '\0';
			if (o == 0 && *val != '\0') {
				tmpl_vars_free(&v);
				return NULL;
			}
			val = buf;
		}
		if (tmpl_vars_set(v, names[i], val) < 0)
			abort();
	}
	return v;
}

static void
same_headers(const struct rendered *a, const struct rendered *b)
{
	if (a->n_headers != b->n_headers)
		goto differ;
	for (size_t i = 0; i < a->n_headers; i++)
		if (strcmp(a->headers[i].name, b->headers[i].name) != 0 ||
		    strcmp(a->headers[i].value, b->headers[i].value) != 0)
			goto differ;
	return;
differ:
	fprintf(stderr, "fuzz_template: values changed the header lines "
	    "(%zu, %zu headers)\n", a->n_headers, b->n_headers);
	abort();
}

static void
fuzz_set(const char *text, unsigned which, char **vals, size_t n_vals)
{
	struct tmplset *s;
	char *error = NULL;
	size_t f;

	if (!set_ready)
		return;
	f = which % n_files;
	/* Values over the size a value may have in a line of stripping. */
	for (size_t i = 0; i < n_vals; i++)
		if (strlen(vals[i]) >= 4096)
			return;
	if (write_all(files[f].name, text) < 0)
		abort();
	if ((s = tmplset_load(set_dir, &error)) == NULL) {
		if (error == NULL)
			abort();
		free(error);
		goto out;
	}
	for (size_t i = 0; i < tmplset_n_names; i++) {
		for (int email = 0; email < 2; email++) {
			const char *name = tmplset_names[i];
			const char *channel = email ? "email" : "chat";
			struct tmpl_vars *v = set_vars(name, vals, n_vals, 0);
			struct tmpl_vars *clean = set_vars(name, vals, n_vals,
			    1);
			struct rendered r, rc;
			const char *why;
			int ok = tmplset_render(s, name, channel, v, &r, &why);
			if (ok == 0 && clean != NULL && tmplset_render(s, name,
			    channel, clean, &rc, &why) == 0) {
				same_headers(&r, &rc);
				rendered_release(&rc);
			}
			if (ok == 0) {
				if (r.text == NULL || (!email &&
				    r.n_headers != 0))
					abort();
				rendered_release(&r);
			}
			tmpl_vars_free(&v);
			tmpl_vars_free(&clean);
		}
	}
	tmplset_free(&s);
out:
	if (write_all(files[f].name, files[f].text) < 0)
		abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	set_ready = make_set() == 0;
	if (!set_ready)
		fprintf(stderr, "fuzz_template: no copy of %s/templates: "
		    "tmplset inputs are skipped\n", FUZZ_TOP);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *parts[MAX_PARTS];
	size_t n_parts = 0, at = 1;
	unsigned flag;

	if (size == 0)
		return 0;
	flag = data[0];
	if ((buf = malloc(size)) == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	/* buf holds size - 1 bytes and a NUL: split at each NUL. */
	while (at <= size && n_parts < MAX_PARTS) {
		parts[n_parts++] = buf + (at - 1);
		at += strlen(buf + (at - 1)) + 1;
	}
	if (flag & 1)
		fuzz_set(parts[0], flag >> 1, parts + 1, n_parts - 1);
	else
		fuzz_render(parts[0], 1 + (int)(flag >> 5), parts + 1,
		    n_parts - 1);
	free(buf);
	return 0;
}
