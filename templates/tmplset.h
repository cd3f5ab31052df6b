/*
 * tmplset: the templates of one folder, loaded, checked and ready to
 * render. Files are NAME.CHANNEL.tmpl (CHANNEL email or chat), the optional
 * NAME.email.html.tmpl (an HTML alternative to the text part), and partials
 * _NAME.tmpl. Every NAME of SPEC.md must exist in both channels.
 *
 * An email template opens with header lines ("Subject: ...") and a blank
 * line; the rest is the text body. Header values are rendered with
 * TMPL_HEADER escaping, the body as text, the HTML part as HTML.
 *
 * Each NAME has a documented set of variables (tmplset_vars); a template
 * using another one is an error at load time, "FILE:LINE: message".
 */
#ifndef ESCALON_TMPLSET_H
#define ESCALON_TMPLSET_H

#include <stddef.h>

#include "render.h"

struct tmplset;

/* Template names, as SPEC.md lists them. */
extern const char *const tmplset_names[];
extern const size_t tmplset_n_names;

/* The variables template `name` may use, NULL-terminated; NULL if unknown. */
const char *const *tmplset_vars(const char *name);

struct tmplset *tmplset_load(const char *dir, char **error_r);
void tmplset_free(struct tmplset **sp);

struct rendered_header {
	char *name, *value;
};

struct rendered {
	struct rendered_header *headers;	/* email only */
	size_t n_headers;
	char *text;				/* the body */
	char *html;				/* email with an HTML part */
};

/*
 * Render template name for channel ("email" or "chat"). 0, or -1 with
 * *error_r (static text).
 */
int tmplset_render(const struct tmplset *s, const char *name,
    const char *channel, const struct tmpl_vars *v, struct rendered *out,
    const char **error_r);
/* The value of header `name` (case-insensitive) in r, or NULL. */
const char *rendered_header(const struct rendered *r, const char *name);
void rendered_release(struct rendered *r);

#endif
