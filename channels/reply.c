/* reply: strip quotes and signatures, read agent commands. See reply.h. */
#include "reply.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const verb_names[] = {
	"note", "resolve", "pending", "escalate", "severity", "assign",
	"rootcause",
};

const char *
reply_verb_name(enum reply_verb v)
{
	return (unsigned)v < sizeof(verb_names) / sizeof(verb_names[0]) ?
	    verb_names[v] : "?";
}

/* --- lines ------------------------------------------------------------- */

struct lines {
	char *buf;		/* the text, LF line ends, NULs between lines */
	char **v;
	size_t n;
};

static int
split(const char *body, struct lines *l)
{
	size_t cap = 16;
	char *w;

	memset(l, 0, sizeof(*l));
	if ((l->buf = strdup(body)) == NULL ||
	    (l->v = malloc(cap * sizeof(*l->v))) == NULL)
		return -1;
	/* CRLF and lone CR become LF. */
	w = l->buf;
	for (const char *r = l->buf; *r; r++) {
		if (*r == '\r') {
			*w++ = '\n';
			if (r[1] == '\n')
				r++;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	for (char *p = l->buf;;) {
		char *nl = strchr(p, '\n');
		if (l->n == cap) {
			char **v = realloc(l->v, (cap *= 2) * sizeof(*v));
			if (v == NULL)
				return -1;
			l->v = v;
		}
		l->v[l->n++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return 0;
}

static void
lines_release(struct lines *l)
{
	free(l->buf);
	free(l->v);
}

static const char *
skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static int
blank(const char *s)
{
	return *skip_space(s) == '\0';
}

static int
starts(const char *s, const char *prefix)
{
	return strncasecmp(skip_space(s), prefix, strlen(prefix)) == 0;
}

/* The line ends with suffix, trailing blanks aside. */
static int
ends(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

static int
quoted(const char *s)
{
	return *skip_space(s) == '>';
}

/* --- where the quote starts -------------------------------------------- */

/* "On <date>, <name> wrote:" and its translations, on one line. */
static int
attribution(const char *s)
{
	static const struct { const char *start, *end; } forms[] = {
		{ "On ", "wrote:" }, { "Am ", "schrieb:" },
		{ "Am ", ":" },		/* "Am ... schrieb Name <a@b>:" */
		{ "Le ", "a écrit :" }, { "Le ", "a écrit:" },
		{ "El ", "escribió:" }, { "Op ", "geschreven:" },
		{ "Op ", "schreef:" }, { "Il ", "ha scritto:" },
		{ "Em ", "escreveu:" },
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (!starts(s, forms[i].start) || !ends(s, forms[i].end))
			continue;
		/* "Am" with a bare colon must name a writer ("schrieb"). */
		if (strcmp(forms[i].end, ":") == 0 && strstr(s, "schrieb") ==
		    NULL)
			continue;
		return 1;
	}
	return 0;
}

/* Outlook's header block: From: then Sent:/Date: and To:/Subject:. */
static int
outlook_block(const struct lines *l, size_t i)
{
	int sent = 0, to = 0;

	if (!starts(l->v[i], "From:") && !starts(l->v[i], "*From:*") &&
	    !starts(l->v[i], "Von:") && !starts(l->v[i], "De :") &&
	    !starts(l->v[i], "De:"))
		return 0;
	for (size_t k = i + 1; k < l->n && k <= i + 6; k++) {
		const char *s = l->v[k];
		sent |= starts(s, "Sent:") || starts(s, "*Sent:*") ||
		    starts(s, "Date:") || starts(s, "Gesendet:") ||
		    starts(s, "Envoyé :") || starts(s, "Envoyé:");
		to |= starts(s, "To:") || starts(s, "*To:*") ||
		    starts(s, "Subject:") || starts(s, "An:") ||
		    starts(s, "Betreff:") || starts(s, "Objet :") ||
		    starts(s, "À :");
	}
	return sent && to;
}

static int
separator(const char *s)
{
	const char *p = skip_space(s);
	size_t underscores = strspn(p, "_");

	if (underscores >= 10 && blank(p + underscores))
		return 1;
	if (*p != '-')
		return 0;
	p += strspn(p, "- ");
	return strncasecmp(p, "Original Message", 16) == 0 ||
	    strncasecmp(p, "Ursprüngliche Nachricht", 24) == 0 ||
	    strncasecmp(p, "Message d'origine", 17) == 0 ||
	    strncasecmp(p, "Forwarded message", 17) == 0;
}

static int
has_digit(const char *s)
{
	return strpbrk(s, "0123456789") != NULL;
}

/*
 * An attribution starting at line i: the number of lines it spans (1, or
 * 2 when the client wrapped it), or 0. Real ones carry a date or a time:
 * "On Friday the vendor wrote:" in an agent's own text is prose.
 */
static size_t
attribution_at(const struct lines *l, size_t i, char *joined, size_t cap)
{
	const char *s = l->v[i];

	if (attribution(s) && has_digit(s))
		return 1;
	/* "Erika <e@x> wrote:" right above the quote (K-9, Android). */
	if (ends(s, "wrote:") && i + 1 < l->n && quoted(l->v[i + 1]))
		return 1;
	if (i + 1 < l->n && !blank(s) && !blank(l->v[i + 1]) &&
	    strlen(s) + strlen(l->v[i + 1]) + 2 <= cap) {
		size_t n = strlen(s);
		memcpy(joined, s, n);
		joined[n] = ' ';
		strcpy(joined + n + 1, l->v[i + 1]);
		if (attribution(joined) && has_digit(joined))
			return 2;
	}
	return 0;
}

static int signature(const char *s);

/* Some unquoted text of the writer's after line j, before a signature or
 * the original message: the reply is below or between the quotes. */
static int
text_after(const struct lines *l, size_t j)
{
	for (size_t k = j; k < l->n; k++) {
		const char *s = l->v[k];
		if (signature(s) || separator(s) || outlook_block(l, k))
			return 0;
		if (!blank(s) && !quoted(s))
			return 1;
	}
	return 0;
}

/*
 * The first line of the quoted part (l->n: none). Attributions above an
 * interleaved or bottom-posted quote are marked in drop[] instead: the
 * writer's lines around the quote stay.
 */
static size_t
quote_start(const struct lines *l, unsigned char *drop)
{
	char joined[2048];

	for (size_t i = 0; i < l->n; i++) {
		const char *s = l->v[i];
		size_t span;
		if (separator(s) || outlook_block(l, i))
			return i;
		if ((span = attribution_at(l, i, joined, sizeof(joined))) == 0)
			continue;
		/* An original not marked with '>' (Yahoo, Outlook) runs to
		 * the end; a '>' quote may have the writer's text after it. */
		size_t next = i + span;
		while (next < l->n && blank(l->v[next]))
			next++;
		if (next == l->n || !quoted(l->v[next]) || !text_after(l, next))
			return i;
		memset(drop + i, 1, span);
		i += span - 1;
	}
	return l->n;
}

/* --- where the signature starts ------------------------------------------ */

static int
signature(const char *s)
{
	static const char *const mobile[] = {
		"Sent from my ", "Sent from Outlook", "Get Outlook for ",
		"Sent from Mail for Windows", "Sent from Yahoo Mail",
		"Sent with ProtonMail", "Sent with Proton Mail",
		"Von meinem ", "Envoyé de mon ", "Enviado desde mi ",
	};

	if (strcmp(s, "-- ") == 0 || strcmp(s, "--") == 0)
		return 1;
	for (size_t i = 0; i < sizeof(mobile) / sizeof(mobile[0]); i++)
		if (strncmp(s, mobile[i], strlen(mobile[i])) == 0)
			return 1;
	return 0;
}

/* Join lines [from, to) with LF, dropping ">" lines, the lines marked in
 * drop[] and outer blanks. */
static char *
join(const struct lines *l, const unsigned char *drop, size_t from,
    size_t to)
{
	size_t len = 1;
	char *out, *p;

	while (from < to && (blank(l->v[from]) || quoted(l->v[from]) ||
	    drop[from]))
		from++;
	while (to > from && (blank(l->v[to - 1]) || quoted(l->v[to - 1]) ||
	    drop[to - 1]))
		to--;
	for (size_t i = from; i < to; i++)
		len += strlen(l->v[i]) + 1;
	if ((out = p = malloc(len)) == NULL)
		return NULL;
	*p = '\0';
	for (size_t i = from; i < to; i++) {
		/* Inline quoting: the agent's lines stay, the quote goes. */
		if (quoted(l->v[i]) || drop[i])
			continue;
		size_t n = strlen(l->v[i]);
		while (n > 0 && (l->v[i][n - 1] == ' ' ||
		    l->v[i][n - 1] == '\t'))
			n--;
		memcpy(p, l->v[i], n);
		p += n;
		*p++ = '\n';
	}
	/* No blank lines left where quotes were removed at the end. */
	while (p > out && p[-1] == '\n')
		p--;
	*p = '\0';
	return out;
}

char *
reply_strip(const char *body)
{
	struct lines l;
	unsigned char *drop = NULL;
	char *out = NULL;
	size_t end;

	if (split(body != NULL ? body : "", &l) < 0 ||
	    (drop = calloc(l.n + 1, 1)) == NULL)
		goto out;
	end = quote_start(&l, drop);
	for (size_t i = 0; i < end; i++) {
		if (signature(l.v[i])) {
			end = i;
			break;
		}
	}
	out = join(&l, drop, 0, end);
out:
	free(drop);
	lines_release(&l);
	return out;
}

/* --- commands ---------------------------------------------------------- */

/* "#verb rest": 1 and the verb, 0 when the line is no command, -1 when
 * it looks like one but names no verb we know. */
static int
command(const char *line, enum reply_verb *verb_r, const char **arg_r)
{
	const char *p = skip_space(line);
	size_t n;

	if (*p != '#')
		return 0;
	p++;
	n = 0;
	while (isalpha((unsigned char)p[n]))
		n++;
	if (n == 0)
		return 0;	/* "#1 priority" is text */
	for (size_t v = 0; v < sizeof(verb_names) / sizeof(verb_names[0]);
	    v++) {
		/* "#resolve cause", and "#resolve: cause" as people write. */
		if (strlen(verb_names[v]) == n &&
		    strncasecmp(p, verb_names[v], n) == 0 &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\t' ||
		    p[n] == ':')) {
			*verb_r = (enum reply_verb)v;
			*arg_r = skip_space(p + n + (p[n] == ':'));
			return 1;
		}
	}
	return -1;
}

static char *
trimmed(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return strndup(s, n);
}

int
reply_parse(const char *body, struct parsed_reply *out)
{
	char *stripped = reply_strip(body), *p, *line = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (stripped == NULL)
		return -1;
	for (p = stripped; *p != '\0'; p = line) {
		char *nl = strchr(p, '\n');
		enum reply_verb verb;
		const char *arg;
		line = nl != NULL ? nl + 1 : p + strlen(p);
		if (nl != NULL)
			*nl = '\0';
		if (blank(p))
			continue;
		int kind = command(p, &verb, &arg);
		if (kind == 0) {
			if (nl != NULL)
				*nl = '\n';	/* the text starts here */
			line = p;
			break;
		}
		if (kind < 0) {
			if (out->bad == NULL &&
			    (out->bad = trimmed(skip_space(p))) == NULL)
				goto out;
			continue;
		}
		struct reply_command *v = realloc(out->commands,
		    (out->n_commands + 1) * sizeof(*v));
		if (v == NULL)
			goto out;
		out->commands = v;
		v[out->n_commands].verb = verb;
		if ((v[out->n_commands].arg = trimmed(arg)) == NULL)
			goto out;
		out->n_commands++;
	}
	if (line == NULL)
		line = p;	/* nothing at all, or only commands */
	while (*line == '\n')
		line++;
	if ((out->text = strdup(line)) == NULL)
		goto out;
	rc = 0;
out:
	free(stripped);
	if (rc < 0)
		parsed_reply_release(out);
	return rc;
}

void
parsed_reply_release(struct parsed_reply *p)
{
	for (size_t i = 0; i < p->n_commands; i++)
		free(p->commands[i].arg);
	free(p->commands);
	free(p->text);
	free(p->bad);
	memset(p, 0, sizeof(*p));
}
