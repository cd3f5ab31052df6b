/*
 * tmplset: load a template folder, check it, render by name. See tmplset.h.
 */
#include "tmplset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define TMPLSET_MAX_FILE (256u << 10)

const char *const tmplset_names[] = {
	"ack", "agent_new", "agent_reply", "escalated", "agent_escalated",
	"sla_warning", "update", "resolved", "csat", "too_large",
	"agent_refused", "agent_error",
};
const size_t tmplset_n_names = sizeof(tmplset_names) /
    sizeof(tmplset_names[0]);

#define TICKET_VARS \
	"ticket.id", "ticket.ref", "ticket.subject", "ticket.state", \
	"ticket.severity", "ticket.queue", "ticket.team", "ticket.level", \
	"ticket.url", "ticket.channel"
#define CUSTOMER_VARS "customer.name", "customer.address"
#define AGENT_VARS "agent.name", "agent.email"
#define SLA_VARS \
	"sla.first_response_due", "sla.next_update_due", "sla.resolution_due"
#define ESCALATION_VARS "escalation.from", "escalation.to", "escalation.why"

/*
 * The variables of each template. Customer-facing templates never see
 * agent addresses; agent-facing ones see what an agent needs to act.
 * reply.address is the tokened Reply-To an agent answers to.
 */
static const char *const vars_ack[] = { TICKET_VARS, CUSTOMER_VARS,
    "message.body", SLA_VARS, NULL };
static const char *const vars_agent_new[] = { TICKET_VARS, CUSTOMER_VARS,
    AGENT_VARS, "message.body", SLA_VARS, "reply.address", NULL };
static const char *const vars_agent_reply[] = { TICKET_VARS, CUSTOMER_VARS,
    AGENT_VARS, "message.body", SLA_VARS, "reply.address", NULL };
static const char *const vars_escalated[] = { TICKET_VARS, CUSTOMER_VARS,
    ESCALATION_VARS, SLA_VARS, NULL };
static const char *const vars_agent_escalated[] = { TICKET_VARS,
    CUSTOMER_VARS, AGENT_VARS, ESCALATION_VARS, SLA_VARS, "message.body",
    "reply.address", NULL };
static const char *const vars_sla_warning[] = { TICKET_VARS, CUSTOMER_VARS,
    AGENT_VARS, SLA_VARS, "sla.clock", "sla.due", "reply.address", NULL };
static const char *const vars_update[] = { TICKET_VARS, CUSTOMER_VARS,
    "escalation.to", SLA_VARS, NULL };
static const char *const vars_resolved[] = { TICKET_VARS, CUSTOMER_VARS,
    "message.body", "ticket.root_cause", "csat.url", NULL };
static const char *const vars_csat[] = { TICKET_VARS, CUSTOMER_VARS,
    "csat.url", NULL };
static const char *const vars_too_large[] = { TICKET_VARS, CUSTOMER_VARS,
    "message.subject", "message.size", "limit.size", NULL };
static const char *const vars_agent_refused[] = { TICKET_VARS, AGENT_VARS,
    "message.subject", "reason", NULL };
static const char *const vars_agent_error[] = { TICKET_VARS, AGENT_VARS,
    "message.subject", "error", NULL };

static const char *const *const var_sets[] = {
	vars_ack, vars_agent_new, vars_agent_reply, vars_escalated,
	vars_agent_escalated, vars_sla_warning, vars_update, vars_resolved,
	vars_csat, vars_too_large, vars_agent_refused, vars_agent_error,
};

const char *const *
tmplset_vars(const char *name)
{
	for (size_t i = 0; i < tmplset_n_names; i++)
		if (strcmp(name, tmplset_names[i]) == 0)
			return var_sets[i];
	return NULL;
}

struct entry {
	const char *name;	/* one of tmplset_names */
	int email;		/* 1: email, 0: chat */
	struct tmpl *headers;	/* email: the header block */
	struct tmpl *body;
	struct tmpl *html;	/* email: optional HTML alternative */
};

struct partial {
	char *name, *text;
};

struct tmplset {
	char *dir;
	struct entry *entries;
	size_t n_entries;
	struct partial *partials;	/* read once, on first use */
	size_t n_partials;
	int partial_failed;
};

/* Read a whole file; NULL with errno (EFBIG when too large). */
static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(TMPLSET_MAX_FILE + 1);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, TMPLSET_MAX_FILE + 1, f);
	fclose(f);
	if (n > TMPLSET_MAX_FILE) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	if (strlen(buf) != n) {
		free(buf);
		errno = EINVAL;	/* a NUL byte: not a text file */
		return NULL;
	}
	return buf;
}

static const char *
partial_text(const char *name, void *arg)
{
	struct tmplset *s = arg;
	char path[4096];
	char *text;

	for (size_t i = 0; i < s->n_partials; i++)
		if (strcmp(s->partials[i].name, name) == 0)
			return s->partials[i].text;
	snprintf(path, sizeof(path), "%s/_%s.tmpl", s->dir, name);
	if ((text = read_text(path)) == NULL)
		return NULL;
	struct partial *p = realloc(s->partials, (s->n_partials + 1) *
	    sizeof(*p));
	if (p == NULL) {
		free(text);
		return NULL;
	}
	s->partials = p;
	p[s->n_partials].name = strdup(name);
	p[s->n_partials].text = text;
	if (p[s->n_partials].name == NULL) {
		free(text);
		return NULL;
	}
	return p[s->n_partials++].text;
}

struct var_check {
	const char *const *allowed;
	const char *name;
	int bad_line;
	const char *bad_var;
};

static int
check_var(const char *var, int line, void *arg)
{
	struct var_check *vc = arg;

	for (const char *const *a = vc->allowed; *a != NULL; a++)
		if (strcmp(*a, var) == 0)
			return 0;
	vc->bad_line = line;
	vc->bad_var = var;
	return 1;
}

static int
set_error(char **error_r, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
set_error(char **error_r, const char *path, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((line > 0 ? asprintf(error_r, "%s:%d: %s", path, line, msg) :
	    asprintf(error_r, "%s: %s", path, msg)) < 0)
		*error_r = NULL;
	return -1;
}

/* Parse one part and check its variables against its name's set. */
static struct tmpl *
parse_part(struct tmplset *s, const char *path, const char *name,
    const char *text, int first_line, char **error_r)
{
	struct var_check vc = { .allowed = tmplset_vars(name), .name = name };
	char *err = NULL;
	int line;
	struct tmpl *t = tmpl_parse(text, first_line, partial_text, s, &line,
	    &err);

	if (t == NULL) {
		set_error(error_r, path, line, "%s", err ? err : "bad template");
		free(err);
		return NULL;
	}
	if (tmpl_each_var(t, check_var, &vc) != 0) {
		set_error(error_r, path, vc.bad_line, "template \"%s\" has no "
		    "variable \"%s\"", name, vc.bad_var);
		tmpl_free(&t);
		return NULL;
	}
	return t;
}

/* Split "headers\n\nbody": headers must be "Name: value" lines. */
static int
split_email(const char *path, char *text, char **body_r, int *body_line_r,
    char **error_r)
{
	int line = 1, subject = 0;
	char *p = text, *body;

	for (;;) {
		char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0 && *p == '\0')
			return set_error(error_r, path, line, "an email "
			    "template needs a blank line after its headers");
		if (n == 0)
			break;
		if (nl == NULL)
			return set_error(error_r, path, line, "an email "
			    "template needs a blank line after its headers");
		size_t name_len = 0;
		while (name_len < n && (isalnum((unsigned char)p[name_len]) ||
		    p[name_len] == '-'))
			name_len++;
		if (name_len == 0 || name_len >= n || p[name_len] != ':')
			return set_error(error_r, path, line, "\"%.*s\" is not "
			    "a header line (Name: value); an email template "
			    "starts with headers and a blank line",
			    (int)(n > 60 ? 60 : n), p);
		if (name_len == 7 && strncasecmp(p, "Subject", 7) == 0)
			subject = 1;
		p = nl + 1;
		line++;
	}
	if (!subject)
		return set_error(error_r, path, 1, "an email template needs a "
		    "Subject: header");
	/* Cut the header block off at the blank line: p is at its start. */
	body = p + (p[0] == '\r' ? 2 : p[0] == '\n' ? 1 : 0);
	*p = '\0';
	p = body;
	*body_r = p;
	*body_line_r = line + 1;
	return 0;
}

static int
load_entry(struct tmplset *s, struct entry *e, char **error_r)
{
	char path[4096], *text = NULL, *body = NULL;
	int body_line = 1, rc = -1;

	snprintf(path, sizeof(path), "%s/%s.%s.tmpl", s->dir, e->name,
	    e->email ? "email" : "chat");
	if ((text = read_text(path)) == NULL)
		return set_error(error_r, path, 0, "cannot read: %s",
		    errno == ENOENT ? "missing (every template needs an "
		    ".email.tmpl and a .chat.tmpl)" : strerror(errno));
	if (e->email) {
		if (split_email(path, text, &body, &body_line, error_r) < 0)
			goto out;
		if ((e->headers = parse_part(s, path, e->name, text, 1,
		    error_r)) == NULL)
			goto out;
	} else {
		body = text;
		body_line = 1;
	}
	if ((e->body = parse_part(s, path, e->name, body, body_line,
	    error_r)) == NULL)
		goto out;
	free(text);
	text = NULL;
	if (e->email) {
		snprintf(path, sizeof(path), "%s/%s.email.html.tmpl", s->dir,
		    e->name);
		if ((text = read_text(path)) == NULL) {
			if (errno != ENOENT)
				set_error(error_r, path, 0, "cannot read: %s",
				    strerror(errno));
			rc = errno == ENOENT ? 0 : -1;
			goto out;
		}
		if ((e->html = parse_part(s, path, e->name, text, 1,
		    error_r)) == NULL)
			goto out;
	}
	rc = 0;
out:
	free(text);
	return rc;
}

/* A NAME.CHANNEL.tmpl whose NAME escalon does not know is a typo. */
static int
check_unknown(struct tmplset *s, char **error_r)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return set_error(error_r, s->dir, 0, "cannot open the "
		    "templates folder: %s", strerror(errno));
	while (rc == 0 && (de = readdir(d)) != NULL) {
		const char *n = de->d_name, *dot = strchr(n, '.');
		size_t len = strlen(n);
		if (n[0] == '_' || n[0] == '.' || len < 5 ||
		    strcmp(n + len - 5, ".tmpl") != 0 || dot == NULL)
			continue;
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(dot - n), n);
		if (strcmp(dot, ".email.tmpl") != 0 &&
		    strcmp(dot, ".chat.tmpl") != 0 &&
		    strcmp(dot, ".email.html.tmpl") != 0) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", s->dir, n);
			rc = set_error(error_r, path, 0, "not NAME.email.tmpl, "
			    "NAME.chat.tmpl or NAME.email.html.tmpl");
		} else if (tmplset_vars(name) == NULL) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", s->dir, n);
			rc = set_error(error_r, path, 0, "\"%s\" is not a "
			    "template escalon sends (partials start with _)",
			    name);
		}
	}
	closedir(d);
	return rc;
}

struct tmplset *
tmplset_load(const char *dir, char **error_r)
{
	struct tmplset *s = calloc(1, sizeof(*s));

	*error_r = NULL;
	if (s == NULL || (s->dir = strdup(dir)) == NULL)
		goto nomem;
	s->entries = calloc(2 * tmplset_n_names, sizeof(*s->entries));
	if (s->entries == NULL)
		goto nomem;
	if (check_unknown(s, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < tmplset_n_names; i++) {
		for (int email = 1; email >= 0; email--) {
			struct entry *e = &s->entries[s->n_entries++];
			e->name = tmplset_names[i];
			e->email = email;
			if (load_entry(s, e, error_r) < 0)
				goto fail;
		}
	}
	return s;
nomem:
	*error_r = strdup("templates: out of memory");
fail:
	tmplset_free(&s);
	return NULL;
}

void
tmplset_free(struct tmplset **sp)
{
	struct tmplset *s = *sp;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_entries; i++) {
		tmpl_free(&s->entries[i].headers);
		tmpl_free(&s->entries[i].body);
		tmpl_free(&s->entries[i].html);
	}
	for (size_t i = 0; i < s->n_partials; i++) {
		free(s->partials[i].name);
		free(s->partials[i].text);
	}
	free(s->partials);
	free(s->entries);
	free(s->dir);
	free(s);
	*sp = NULL;
}

static int
split_headers(char *block, struct rendered *out)
{
	for (char *line = strtok(block, "\n"); line != NULL;
	    line = strtok(NULL, "\n")) {
		char *colon = strchr(line, ':'), *v;
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (colon == NULL || colon == line)
			continue;	/* a section left a line empty */
		for (v = colon + 1; *v == ' '; v++)
			;
		struct rendered_header *h = realloc(out->headers,
		    (out->n_headers + 1) * sizeof(*h));
		if (h == NULL)
			return -1;
		out->headers = h;
		h[out->n_headers].name = strndup(line, (size_t)(colon - line));
		h[out->n_headers].value = strdup(v);
		if (h[out->n_headers].name == NULL ||
		    h[out->n_headers].value == NULL) {
			free(h[out->n_headers].name);
			free(h[out->n_headers].value);
			return -1;
		}
		out->n_headers++;
	}
	return 0;
}

int
tmplset_render(const struct tmplset *s, const char *name, const char *channel,
    const struct tmpl_vars *v, struct rendered *out, const char **error_r)
{
	int email = strcmp(channel, "email") == 0;
	const struct entry *e = NULL;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < s->n_entries; i++)
		if (strcmp(s->entries[i].name, name) == 0 &&
		    s->entries[i].email == email)
			e = &s->entries[i];
	if (e == NULL) {
		*error_r = "no such template";
		return -1;
	}
	if (e->headers != NULL) {
		char *block = tmpl_render(e->headers, v, TMPL_HEADER);
		int rc = block != NULL ? split_headers(block, out) : -1;
		free(block);
		if (rc < 0)
			goto fail;
	}
	if ((out->text = tmpl_render(e->body, v, TMPL_TEXT)) == NULL)
		goto fail;
	if (e->html != NULL &&
	    (out->html = tmpl_render(e->html, v, TMPL_HTML)) == NULL)
		goto fail;
	return 0;
fail:
	*error_r = "rendering failed (out of memory or output too large)";
	rendered_release(out);
	return -1;
}

const char *
rendered_header(const struct rendered *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

void
rendered_release(struct rendered *r)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->text);
	free(r->html);
	memset(r, 0, sizeof(*r));
}
