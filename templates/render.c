/*
 * render: parse a mustache-subset template into a tree, render it against
 * string variables. See render.h.
 *
 * The tree: a list of nodes; a section (or an inlined partial) holds its
 * own list. Parsing keeps a stack of open sections in the tree itself
 * (each list's owner), so `{{/name}}` must match the innermost open one.
 */
#include "render.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum node_type { N_TEXT, N_VAR, N_RAW, N_SECTION, N_INVERTED, N_PARTIAL };

struct node {
	enum node_type type;
	char *text;		/* the text, or the variable/section name */
	size_t len;		/* of text, for N_TEXT */
	int line;
	struct node *child;	/* sections and partials */
	struct node *next;
};

struct tmpl {
	struct node *nodes;
};

struct parser {
	const char *src, *p;
	int line;
	tmpl_partial_fn *partial;
	void *arg;
	int depth;
	int err_line;
	char *error;
};

static void
nodes_free(struct node *n)
{
	while (n != NULL) {
		struct node *next = n->next;
		nodes_free(n->child);
		free(n->text);
		free(n);
		n = next;
	}
}

void
tmpl_free(struct tmpl **tp)
{
	if (*tp == NULL)
		return;
	nodes_free((*tp)->nodes);
	free(*tp);
	*tp = NULL;
}

static int
perr(struct parser *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr(struct parser *ps, int line, const char *fmt, ...)
{
	va_list ap;

	if (ps->error != NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&ps->error, fmt, ap) < 0)
		ps->error = NULL;
	va_end(ap);
	ps->err_line = line;
	return -1;
}

static struct node *
node_add(struct node ***tail, enum node_type type, const char *text,
    size_t len, int line)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->type = type;
	n->line = line;
	n->len = len;
	n->text = strndup(text, len);
	if (n->text == NULL) {
		free(n);
		return NULL;
	}
	**tail = n;
	*tail = &n->next;
	return n;
}

static int
valid_name(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

static int
count_lines(const char *a, const char *b)
{
	int n = 0;

	for (; a < b; a++)
		n += *a == '\n';
	return n;
}

static int parse_list(struct parser *ps, struct node **out,
    const char *closing, int open_line);

static int
parse_partial(struct parser *ps, struct node *n, const char *name)
{
	const char *text = ps->partial != NULL ? ps->partial(name, ps->arg) :
	    NULL;
	struct parser sub;
	int rc;

	if (text == NULL)
		return perr(ps, n->line, "partial \"%s\" does not exist "
		    "(_%s.tmpl)", name, name);
	if (ps->depth + 1 > TMPL_MAX_DEPTH)
		return perr(ps, n->line, "partial \"%s\": partials nested "
		    "deeper than %d (a partial that includes itself?)", name,
		    TMPL_MAX_DEPTH);
	sub = (struct parser){ .src = text, .p = text, .line = 1,
	    .partial = ps->partial, .arg = ps->arg, .depth = ps->depth + 1 };
	rc = parse_list(&sub, &n->child, NULL, 0);
	if (rc < 0) {
		perr(ps, n->line, "partial \"%s\", its line %d: %s", name,
		    sub.err_line, sub.error ? sub.error : "error");
		free(sub.error);
	}
	return rc;
}

/*
 * Parse until `closing` ({{/closing}}) or the end (closing NULL). Tags
 * other than variables alone on their line take the line with them.
 */
static int
parse_list(struct parser *ps, struct node **out, const char *closing,
    int open_line)
{
	struct node **tail = out;

	for (;;) {
		const char *open = strstr(ps->p, "{{");
		const char *text_end = open != NULL ? open :
		    ps->p + strlen(ps->p);
		const char *line_start, *after, *close, *a, *b;
		int triple, tag_line;
		char kind;

		if (open == NULL) {
			if (text_end > ps->p && node_add(&tail, N_TEXT, ps->p,
			    (size_t)(text_end - ps->p), ps->line) == NULL)
				return perr(ps, ps->line, "out of memory");
			ps->line += count_lines(ps->p, text_end);
			ps->p = text_end;
			if (closing != NULL)
				return perr(ps, open_line, "section \"%s\" is "
				    "not closed ({{/%s}} missing)", closing,
				    closing);
			return 0;
		}
		tag_line = ps->line + count_lines(ps->p, open);
		triple = open[2] == '{';
		close = strstr(open + 2 + triple, triple ? "}}}" : "}}");
		if (close == NULL)
			return perr(ps, tag_line, "tag not closed (\"%s\" "
			    "missing)", triple ? "}}}" : "}}");
		after = close + 2 + triple;
		a = open + 2 + triple;
		b = close;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		kind = triple ? '{' : (a < b ? *a : '\0');
		/* Only a comment may span lines. */
		if (kind != '!' && memchr(a, '\n', (size_t)(b - a)) != NULL)
			return perr(ps, tag_line, "a tag must not span lines");
		if (strchr("#^/!>&", kind) != NULL && kind != '\0' &&
		    kind != '{') {
			a++;
			while (a < b && isspace((unsigned char)*a))
				a++;
		}
		if (kind == '\0')
			return perr(ps, tag_line, "empty tag {{}}");

		/* Standalone: only blanks between line start, tag, line end. */
		line_start = open;
		while (line_start > ps->src && (line_start[-1] == ' ' ||
		    line_start[-1] == '\t'))
			line_start--;
		const char *rest = after;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		int standalone = strchr("#^/!>", kind) != NULL &&
		    (line_start == ps->src || line_start[-1] == '\n') &&
		    (*rest == '\n' || (*rest == '\r' && rest[1] == '\n') ||
		    *rest == '\0');
		const char *keep_end = standalone ? line_start : open;
		if (keep_end > ps->p && node_add(&tail, N_TEXT, ps->p,
		    (size_t)(keep_end - ps->p), ps->line) == NULL)
			return perr(ps, tag_line, "out of memory");
		ps->line = tag_line + count_lines(open, after);
		ps->p = after;
		if (standalone) {
			ps->p = rest;
			if (*ps->p == '\r')
				ps->p++;
			if (*ps->p == '\n') {
				ps->p++;
				ps->line++;
			}
		}
		if (kind == '!')
			continue;
		size_t n = (size_t)(b - a);
		if (!valid_name(a, n))
			return perr(ps, tag_line, "\"%.*s\" is not a variable "
			    "name (lowercase letters, digits, _ and .)",
			    (int)n, a);
		struct node *node;
		switch (kind) {
		case '/':
			if (closing == NULL)
				return perr(ps, tag_line, "{{/%.*s}} closes "
				    "no open section", (int)n, a);
			if (strlen(closing) != n || strncmp(closing, a, n))
				return perr(ps, tag_line, "{{/%.*s}} does not "
				    "match the open section \"%s\" (line %d)",
				    (int)n, a, closing, open_line);
			return 0;
		case '#':
		case '^':
			node = node_add(&tail, kind == '#' ? N_SECTION :
			    N_INVERTED, a, n, tag_line);
			if (node == NULL)
				return perr(ps, tag_line, "out of memory");
			if (parse_list(ps, &node->child, node->text,
			    tag_line) < 0)
				return -1;
			break;
		case '>':
			node = node_add(&tail, N_PARTIAL, a, n, tag_line);
			if (node == NULL)
				return perr(ps, tag_line, "out of memory");
			if (parse_partial(ps, node, node->text) < 0)
				return -1;
			break;
		default:
			if (node_add(&tail, kind == '{' || kind == '&' ?
			    N_RAW : N_VAR, a, n, tag_line) == NULL)
				return perr(ps, tag_line, "out of memory");
			break;
		}
	}
}

struct tmpl *
tmpl_parse(const char *text, int first_line, tmpl_partial_fn *partial,
    void *arg, int *line_r, char **error_r)
{
	struct parser ps = { .src = text, .p = text, .line = first_line,
	    .partial = partial, .arg = arg };
	struct tmpl *t = calloc(1, sizeof(*t));

	*error_r = NULL;
	*line_r = 0;
	if (t == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	if (parse_list(&ps, &t->nodes, NULL, 0) < 0) {
		tmpl_free(&t);
		*line_r = ps.err_line;
		*error_r = ps.error != NULL ? ps.error : strdup("error");
		return NULL;
	}
	return t;
}

static int
each_var(const struct node *n, int line, tmpl_var_fn *fn, void *arg)
{
	int rc;

	for (; n != NULL; n = n->next) {
		int at = line > 0 ? line : n->line;
		if (n->type == N_PARTIAL) {
			if ((rc = each_var(n->child, at, fn, arg)) != 0)
				return rc;
			continue;
		}
		if (n->type != N_TEXT && (rc = fn(n->text, at, arg)) != 0)
			return rc;
		if ((rc = each_var(n->child, line, fn, arg)) != 0)
			return rc;
	}
	return 0;
}

int
tmpl_each_var(const struct tmpl *t, tmpl_var_fn *fn, void *arg)
{
	return each_var(t->nodes, 0, fn, arg);
}

/* --- variables ---------------------------------------------------------- */

struct tmpl_vars {
	char **names, **values;
	size_t n, cap;
};

struct tmpl_vars *
tmpl_vars_new(void)
{
	return calloc(1, sizeof(struct tmpl_vars));
}

void
tmpl_vars_free(struct tmpl_vars **vp)
{
	struct tmpl_vars *v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		free(v->names[i]);
		free(v->values[i]);
	}
	free(v->names);
	free(v->values);
	free(v);
	*vp = NULL;
}

static ssize_t
find_var(const struct tmpl_vars *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->names[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

int
tmpl_vars_set(struct tmpl_vars *v, const char *name, const char *value)
{
	ssize_t i = find_var(v, name);
	char *copy = NULL;

	if (value != NULL && (copy = strdup(value)) == NULL)
		return -1;
	if (i >= 0) {
		free(v->values[i]);
		v->values[i] = copy;
		return 0;
	}
	if (value == NULL)
		return 0;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		char **n = realloc(v->names, cap * sizeof(*n));
		if (n == NULL)
			goto fail;
		v->names = n;
		char **vals = realloc(v->values, cap * sizeof(*vals));
		if (vals == NULL)
			goto fail;
		v->values = vals;
		v->cap = cap;
	}
	if ((v->names[v->n] = strdup(name)) == NULL)
		goto fail;
	v->values[v->n++] = copy;
	return 0;
fail:
	free(copy);
	return -1;
}

const char *
tmpl_vars_get(const struct tmpl_vars *v, const char *name)
{
	ssize_t i = v != NULL ? find_var(v, name) : -1;

	return i >= 0 ? v->values[i] : NULL;
}

/* --- rendering ---------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	int failed;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n > TMPL_MAX_OUTPUT) {
		o->failed = 1;
		return;
	}
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (b == NULL) {
			o->failed = 1;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void
put_value(struct out *o, const char *v, int raw, enum tmpl_kind kind)
{
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;
		if (kind == TMPL_HEADER) {
			/* No value can end a header line or start another. */
			if (c == '\t')
				put(o, " ", 1);
			else if (c >= 0x20 && c != 0x7f)
				put(o, v, 1);
			continue;
		}
		if (kind == TMPL_HTML && !raw) {
			const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" :
			    c == '>' ? "&gt;" : c == '"' ? "&quot;" :
			    c == '\'' ? "&#39;" : NULL;
			if (e != NULL) {
				put(o, e, strlen(e));
				continue;
			}
		}
		put(o, v, 1);
	}
}

static void
render_list(const struct node *n, const struct tmpl_vars *v,
    enum tmpl_kind kind, struct out *o)
{
	for (; n != NULL && !o->failed; n = n->next) {
		const char *val;
		int set;

		switch (n->type) {
		case N_TEXT:
			put(o, n->text, n->len);
			break;
		case N_VAR:
		case N_RAW:
			val = tmpl_vars_get(v, n->text);
			if (val != NULL)
				put_value(o, val, n->type == N_RAW, kind);
			break;
		case N_SECTION:
		case N_INVERTED:
			val = tmpl_vars_get(v, n->text);
			set = val != NULL && val[0] != '\0';
			if (set == (n->type == N_SECTION))
				render_list(n->child, v, kind, o);
			break;
		case N_PARTIAL:
			render_list(n->child, v, kind, o);
			break;
		}
	}
}

char *
tmpl_render(const struct tmpl *t, const struct tmpl_vars *v,
    enum tmpl_kind kind)
{
	struct out o = { 0 };

	put(&o, "", 0);
	render_list(t->nodes, v, kind, &o);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
