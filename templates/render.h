/*
 * render: the mustache subset of SPEC.md ("Templates"), pure logic: no
 * files, no store, no sockets.
 *
 *   {{var}}         the value, escaped for the output kind
 *   {{{var}}} {{&var}}  the value as it is (never CR/LF in a header)
 *   {{#var}}..{{/var}}  the inside when var is set and not empty
 *   {{^var}}..{{/var}}  the inside when var is unset or empty
 *   {{! comment}}   nothing
 *   {{> name}}      the partial `name`, supplied by the caller
 *
 * Section, comment and partial tags alone on a line take the line with
 * them, as in mustache, so plain-text templates read naturally. Variable
 * names are [a-z0-9_.]; values are strings (a section is a conditional:
 * there are no lists).
 */
#ifndef ESCALON_RENDER_H
#define ESCALON_RENDER_H

#include <stddef.h>

struct tmpl;
struct tmpl_vars;

enum tmpl_kind {
	TMPL_TEXT,	/* plain text: values as they are */
	TMPL_HTML,	/* HTML: & < > " ' escaped */
	TMPL_HEADER,	/* a mail header line: CR, LF and other controls
			   removed from every value, raw ones included */
};

#define TMPL_MAX_DEPTH 8	/* partials within partials */
#define TMPL_MAX_OUTPUT (1u << 20)

/* The text of partial `name` ("_name.tmpl"), or NULL if there is none. */
typedef const char *tmpl_partial_fn(const char *name, void *arg);

/*
 * Parse text whose first line is first_line of its file. NULL on error,
 * with *line_r the line and *error_r a heap string saying what is wrong.
 */
struct tmpl *tmpl_parse(const char *text, int first_line,
    tmpl_partial_fn *partial, void *arg, int *line_r, char **error_r);
void tmpl_free(struct tmpl **tp);

/*
 * Calls fn(name, line, arg) for every variable and section name, partials
 * included (line is then the line of the {{> }} tag). Stops and returns
 * the first non-zero value fn returns.
 */
typedef int tmpl_var_fn(const char *name, int line, void *arg);
int tmpl_each_var(const struct tmpl *t, tmpl_var_fn *fn, void *arg);

struct tmpl_vars *tmpl_vars_new(void);
void tmpl_vars_free(struct tmpl_vars **vp);
/* Copies name and value; a NULL value unsets. 0, or -1 (no memory). */
int tmpl_vars_set(struct tmpl_vars *v, const char *name, const char *value);
const char *tmpl_vars_get(const struct tmpl_vars *v, const char *name);

/*
 * Render with escaping for kind. Returns a heap string (caller frees), or
 * NULL if out of memory or over TMPL_MAX_OUTPUT.
 */
char *tmpl_render(const struct tmpl *t, const struct tmpl_vars *v,
    enum tmpl_kind kind);

#endif
