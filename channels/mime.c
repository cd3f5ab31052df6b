/*
 * mime: one raw mail -> one inbound_msg. See mime.h for the contract.
 *
 * How a mail goes through:
 *   1. raw is copied (whole, or only its header block when it is over
 *      max_message_size) and hashed when it has no Message-ID.
 *   2. A working copy is prepared for libetpan (work_prepare): header lines
 *      libetpan would stop at are dropped, bare-CR mail gets LF line ends,
 *      and comment nesting is defused, because libetpan parses comments
 *      recursively and 200,000 '(' overflow the stack.
 *   3. mailmime_parse builds the tree, unless the mail declares more
 *      multipart/message levels than the budget allows (composites_ok):
 *      libetpan recurses once per level and rescans each level's text, so
 *      100,000 levels take minutes and then crash. Over the budget, only
 *      the header is parsed and the rest is taken as text.
 *   4. The header fields fill the message (header_take); the tree is
 *      walked without recursion (walk), at most MIME_MAX_PARTS parts and
 *      MIME_MAX_DEPTH multipart levels. The inline text/plain parts make
 *      the body (one per multipart/alternative); message/rfc822 parts are
 *      attachments and never entered.
 *   5. finish: the dedupe key, the bounce reasons that need the whole mail,
 *      and html_text from the first text/html part when there is no
 *      text/plain.
 *
 * Text: RFC 2047 words are decoded here (libetpan's decoders undo B and
 * Q), charsets are converted with ICU, and libetpan's own conversions are
 * routed to ICU too (etpan_charconv): no glibc iconv module is loaded.
 *
 * Invariants: every string the result holds went through clean_text, so it
 * is valid UTF-8 without NUL; nothing libetpan, libxml2 or ICU allocated
 * outlives the function that got it. Out of memory is the only failure:
 * n->oom is set where an allocation fails, work goes on with what is
 * there, and mime_normalize turns it into -1 at the end.
 */
#include "mime.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <unicode/ucnv.h>

#include "crypto.h"

#define MIME_MAX_PARTS		1000		/* parts walked */
#define MIME_MAX_DEPTH		32		/* multipart levels walked */
#define MIME_MAX_HEADER		(256 * 1024)	/* header kept when truncated */
#define MIME_MAX_FIELDS		1000		/* fields per header block */
#define MIME_MAX_PARENS		64		/* "(" nesting libetpan sees */
#define MIME_MAX_COMPOSITES	512		/* multipart/message types */
#define MIME_PARSE_BUDGET	((size_t)1 << 30) /* declarations x bytes */
#define MIME_MAX_BODY		(4 * 1024 * 1024) /* body text */
#define MIME_MAX_HTML_SOURCE	(32 * 1024 * 1024) /* HTML part parsed */
#define MIME_MAX_HTML_TEXT	(1024 * 1024)	/* text made from HTML */
#define MIME_MAX_LINE		4096		/* subject, names */
#define MIME_MAX_ADDR		512		/* one address */
#define MIME_MAX_MSGID		998		/* one Message-ID */
#define MIME_MAX_REFS		100		/* References kept */
#define MIME_MAX_RCPTS		500		/* recipients kept */
#define MIME_MAX_SEGMENTS	64		/* RFC 2231 continuations */

#define REPLACEMENT		"\xef\xbf\xbd"	/* U+FFFD */

/* ---- state ---------------------------------------------------------- */

/* A NUL-terminated byte string of at most max bytes; what does not fit is
 * dropped (full). */
struct buf {
	char *s;
	size_t len, cap, max;
	int full, oom;
};

/* Return-Path, for a From: MAILER-DAEMON that is a bounce. */
enum { RP_ABSENT, RP_SENDER, RP_NULL };

/* What one mail's normalisation has found so far. */
struct norm {
	const struct mime_limits *lim;
	struct inbound_msg *m;		/* the result, owned until handed out */
	int oom;			/* an allocation failed */
	unsigned parts;			/* parts walked */
	unsigned leaves;		/* single parts among them */
	int return_path;		/* RP_* of the first Return-Path */
	char *sender;			/* Sender address: From's stand-in */
	char *html;			/* first text/html part, UTF-8 */
	char *returned_id;		/* Message-ID of a returned message */
	struct buf body;		/* the text/plain parts, joined */
	int has_body;			/* one was found, if empty */
	const struct mailmime **alts;	/* alternatives that gave text */
	size_t n_alts;
};

/* ---- growing buffers -------------------------------------------------- */

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->oom || b->full || n == 0)
		return;
	if (n > b->max - b->len) {
		n = b->max - b->len;
		b->full = 1;
	}
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (s == NULL) {
			b->oom = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
buf_release(struct buf *b)
{
	free(b->s);
	*b = (struct buf){ 0 };
}

/* The string (never NULL unless out of memory, which n records); b is
 * left empty. */
static char *
buf_take(struct norm *n, struct buf *b)
{
	char *s = b->s;

	if (b->oom) {
		n->oom = 1;
		buf_release(b);
		return NULL;
	}
	if (s == NULL && (s = strdup("")) == NULL)
		n->oom = 1;
	*b = (struct buf){ 0 };
	return s;
}

static char *
dup_str(struct norm *n, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		n->oom = 1;
	return d;
}

/* ---- UTF-8 ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t need;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

static int
utf8_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq(p + i, len - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

/*
 * Is s[0..len) UTF-8 with a few broken bytes rather than a legacy 8-bit
 * charset? Latin1 text has no valid multi-byte sequence by chance; cut or
 * spliced UTF-8 has many and a few bad bytes.
 */
static int
utf8_mostly(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t good = 0, bad = 0, k;

	for (size_t i = 0; i < len; i += k ? k : 1) {
		k = utf8_seq(p + i, len - i);
		if (k > 1)
			good++;
		else if (k == 0)
			bad++;
	}
	return bad == 0 || good > bad;
}

/* The length of s[0..len) cut after its last whole character, so that a
 * capped buffer does not end in half a sequence. */
static size_t
utf8_cut(const char *s, size_t len)
{
	size_t i = len;

	while (i > 0 && len - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && (unsigned char)s[i - 1] >= 0xc0) {
		size_t k = utf8_seq((const unsigned char *)s + i - 1,
		    len - (i - 1));
		return k == len - (i - 1) ? len : i - 1;
	}
	return len;
}

enum clean_mode {
	CLEAN_TEXT,	/* line ends become LF */
	CLEAN_LINE,	/* one line: controls become spaces, runs collapse */
};

/*
 * s[0..len) into out as valid UTF-8: each byte that starts no valid
 * sequence becomes U+FFFD, NUL is dropped. This is the last step of every
 * string the result holds.
 */
static void
clean_text(struct buf *out, const char *s, size_t len, enum clean_mode mode)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = mode == CLEAN_LINE ? 0x21 : 0x20;
	int space = 0;

	for (size_t i = 0; i < len && !out->full && !out->oom;) {
		size_t run = i, k;

		/* Plain runs are copied whole: bodies are megabytes. */
		while (run < len && p[run] >= lo && p[run] < 0x7f)
			run++;
		if (run > i) {
			if (space && out->len > 0)
				buf_add(out, " ", 1);
			space = 0;
			buf_add(out, s + i, run - i);
			i = run;
			continue;
		}
		if (p[i] == 0) {
			i++;
		} else if (mode == CLEAN_TEXT && p[i] == '\r') {
			buf_add(out, "\n", 1);
			i += i + 1 < len && p[i + 1] == '\n' ? 2 : 1;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			if (mode == CLEAN_LINE)
				space = 1;
			else
				buf_add(out, s + i, 1);
			i++;
		} else if (mode == CLEAN_LINE && p[i] == ' ') {
			space = 1;
			i++;
		} else {
			if (space && out->len > 0)
				buf_add(out, " ", 1);
			space = 0;
			if ((k = utf8_seq(p + i, len - i)) == 0) {
				buf_add(out, REPLACEMENT, 3);
				k = 1;
			} else {
				buf_add(out, s + i, k);
			}
			i += k;
		}
	}
	if (out->full && out->s != NULL)
		out->s[out->len = utf8_cut(out->s, out->len)] = '\0';
}

/* ---- charsets --------------------------------------------------------- */

/*
 * Charsets go through ICU's converters rather than iconv: ICU knows the
 * MIME names mailers write (ks_c_5601-1987, x-sjis, iso-8859-8-i, ...),
 * and its tables are linked in, where glibc's iconv loads a module per
 * charset at run time.
 *
 * MIME names worth another converter. NULL: no charset worth converting
 * from (the bytes are UTF-8 when they mostly are, else windows-1252).
 */
static const struct {
	const char *mime, *icu;
} charset_alias[] = {
	{ "us-ascii", NULL }, { "ascii", NULL }, { "ansi_x3.4-1968", NULL },
	{ "unknown-8bit", NULL }, { "x-unknown", NULL },
	{ "x-user-defined", NULL }, { "default", NULL },
	{ "utf8", "UTF-8" },
	/* Supersets, as senders mean them. */
	{ "iso-8859-1", "windows-1252" }, { "latin1", "windows-1252" },
	{ "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "x-gbk", "GB18030" },
	{ "gb_2312-80", "GB18030" }, { "euc-cn", "GB18030" },
	{ "euc-kr", "windows-949" }, { "ks_c_5601-1987", "windows-949" },
};

/* May cs[0..len) go to ICU? Only letters, digits and "-_.:": ICU reads
 * options after a comma and looks for files named after converters. */
static int
charset_safe(const char *cs, size_t len)
{
	if (len == 0 || len > 40)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!(cs[i] >= 'a' && cs[i] <= 'z') &&
		    !(cs[i] >= 'A' && cs[i] <= 'Z') &&
		    !(cs[i] >= '0' && cs[i] <= '9') && !strchr("-_.:", cs[i]))
			return 0;
	return 1;
}

/* The converter name for a MIME charset, or NULL (see charset_alias). */
static const char *
charset_name(const char *cs)
{
	size_t len;

	if (cs == NULL)
		return NULL;
	while (*cs == ' ' || *cs == '"' || *cs == '\'')
		cs++;
	len = strcspn(cs, " \"'");
	for (size_t i = 0; i < sizeof(charset_alias) / sizeof(*charset_alias);
	    i++)
		if (strlen(charset_alias[i].mime) == len &&
		    strncasecmp(cs, charset_alias[i].mime, len) == 0)
			return charset_alias[i].icu;
	return charset_safe(cs, len) && cs[len] == '\0' ? cs : NULL;
}

/*
 * libetpan's charconv() hook (charconv.h). libetpan converts some header
 * text itself, Content-Description while it parses MIME fields among it,
 * and without the hook it does so with glibc's iconv. Names ICU does not
 * know go back to iconv (MAIL_CHARCONV_ERROR_UNKNOWN_CHARSET).
 */
static int
etpan_charconv(const char *tocode, const char *fromcode, const char *str,
    size_t length, char *result, size_t *result_len)
{
	UErrorCode err = U_ZERO_ERROR;
	int32_t n;

	if (!charset_safe(tocode, strlen(tocode)) ||
	    !charset_safe(fromcode, strlen(fromcode)))
		return MAIL_CHARCONV_ERROR_UNKNOWN_CHARSET;
	if (length > INT32_MAX || *result_len > INT32_MAX)
		return MAIL_CHARCONV_ERROR_MEMORY;
	n = ucnv_convert(tocode, fromcode, result, (int32_t)*result_len, str,
	    (int32_t)length, &err);
	if (err == U_FILE_ACCESS_ERROR || err == U_ILLEGAL_ARGUMENT_ERROR)
		return MAIL_CHARCONV_ERROR_UNKNOWN_CHARSET;
	if (U_FAILURE(err) || n < 0)
		return MAIL_CHARCONV_ERROR_CONV;
	*result_len = (size_t)n;
	return MAIL_CHARCONV_NO_ERROR;
}

static UConverter *
converter_open(const char *name)
{
	UErrorCode err = U_ZERO_ERROR;
	UConverter *cv = ucnv_open(name, &err);

	if (U_FAILURE(err)) {
		ucnv_close(cv);
		return NULL;
	}
	return cv;
}

/* in[0..len) through converter from into out as UTF-8. Bytes the
 * charset does not define become its substitute (U+FFFD, or U+001A for
 * some single-byte charsets). */
static void
convert_into(struct buf *out, UConverter *from, const char *in, size_t len)
{
	UConverter *utf8 = converter_open("UTF-8");
	UChar pivot[1024], *ps = pivot, *pt = pivot;
	const char *src = in;
	char chunk[4096], *t;
	UErrorCode err;
	UBool reset = 1;

	if (utf8 == NULL) {
		out->oom = 1;
		return;
	}
	do {
		err = U_ZERO_ERROR;
		t = chunk;
		ucnv_convertEx(utf8, from, &t, chunk + sizeof(chunk), &src,
		    in + len, pivot, &ps, &pt, pivot + sizeof(pivot) /
		    sizeof(*pivot), reset, 1, &err);
		reset = 0;
		buf_add(out, chunk, (size_t)(t - chunk));
	} while (err == U_BUFFER_OVERFLOW_ERROR && !out->full && !out->oom);
	ucnv_close(utf8);
}

/*
 * in[0..len), written in charset cs (MIME name, NULL if none given), as
 * clean UTF-8 into out. Unknown charsets: UTF-8 stays (utf8_mostly),
 * anything else is read as windows-1252.
 */
static void
to_utf8(struct buf *out, const char *in, size_t len, const char *cs,
    enum clean_mode mode)
{
	const char *name = charset_name(cs);
	struct buf tmp = { .max = out->max - out->len + 16 };
	int utf8 = name != NULL && strcasecmp(name, "UTF-8") == 0;
	UConverter *cv = NULL;

	if (name != NULL && !utf8)
		cv = converter_open(name);
	if (cv == NULL && (utf8 || utf8_mostly(in, len))) {
		clean_text(out, in, len, mode);
		return;
	}
	if (cv == NULL && (cv = converter_open("windows-1252")) == NULL) {
		clean_text(out, in, len, mode);
		return;
	}
	convert_into(&tmp, cv, in, len);
	ucnv_close(cv);
	out->oom |= tmp.oom;
	clean_text(out, tmp.s != NULL ? tmp.s : "", tmp.len, mode);
	buf_release(&tmp);
}

/* ---- header values ---------------------------------------------------- */

/* s without leading and trailing blanks, as [*b_r, *e_r). */
static void
trim(const char *s, size_t len, size_t *b_r, size_t *e_r)
{
	size_t b = 0, e = len;

	while (b < e && strchr(" \t\r\n", s[b]) != NULL)
		b++;
	while (e > b && strchr(" \t\r\n", s[e - 1]) != NULL)
		e--;
	*b_r = b;
	*e_r = e;
}

/* An RFC 2047 encoded word, "=?charset?B|Q?text?=". */
struct ew {
	char charset[48];	/* without an RFC 2231 "*language" */
	char enc;		/* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t len;		/* of the whole word */
};

/* 1 and *w when p[0..n) starts with an encoded word. Lenient: blanks
 * inside the text are taken, a line end is not. */
static int
ew_parse(const char *p, size_t n, struct ew *w)
{
	size_t i = 2, e;

	if (n < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	while (i < n && p[i] != '?' && (unsigned char)p[i] > ' ')
		i++;
	if (i == 2 || i - 2 >= sizeof(w->charset) || i + 3 >= n ||
	    p[i] != '?' || p[i + 2] != '?')
		return 0;
	snprintf(w->charset, sizeof(w->charset), "%.*s", (int)(i - 2), p + 2);
	w->charset[strcspn(w->charset, "*")] = '\0';
	w->enc = p[i + 1] == 'b' || p[i + 1] == 'B' ? 'B' :
	    p[i + 1] == 'q' || p[i + 1] == 'Q' ? 'Q' : 0;
	for (e = i + 3; e + 1 < n && !(p[e] == '?' && p[e + 1] == '='); e++)
		if (p[e] == '\r' || p[e] == '\n')
			return 0;
	if (w->enc == 0 || e + 1 >= n)
		return 0;
	w->text = p + i + 3;
	w->text_len = e - (i + 3);
	w->len = e + 2;
	return 1;
}

/* The word's bytes (B or Q undone by libetpan) appended to raw. */
static void
ew_decode(struct buf *raw, const struct ew *w)
{
	char *dec = NULL;
	size_t idx = 0, dlen = 0;
	int rc;

	if (w->enc == 'B')
		rc = mailmime_base64_body_parse(w->text, w->text_len, &idx,
		    &dec, &dlen);
	else
		rc = mailmime_quoted_printable_body_parse(w->text, w->text_len,
		    &idx, &dec, &dlen, 1);
	if (rc == MAILIMF_ERROR_MEMORY)
		raw->oom = 1;
	if (rc != MAILIMF_NO_ERROR)
		return;
	buf_add(raw, dec, dlen);
	mailmime_decoded_part_free(dec);
}

/* The bytes of adjacent words, converted from their charset, to out. */
static void
ew_flush(struct buf *out, struct buf *raw, const char *charset)
{
	if (raw->len > 0)
		to_utf8(out, raw->s, raw->len, charset, CLEAN_TEXT);
	raw->len = 0;
}

/*
 * s[0..len) with its RFC 2047 words decoded into out. Blanks between two
 * words are no text, and adjacent words in one charset are converted as
 * one: senders split multi-byte characters across words. Text outside
 * words is UTF-8 when it mostly is, else latin1 (to_utf8).
 */
static void
rfc2047_decode(struct buf *out, const char *s, size_t len)
{
	struct buf raw = { .max = out->max };
	char charset[48] = "";
	const char *next;
	struct ew w;
	size_t i = 0, run;

	while (i < len && !out->full && !out->oom) {
		if (!ew_parse(s + i, len - i, &w)) {
			next = memmem(s + i + 1, len - i - 1, "=?", 2);
			run = next != NULL ? (size_t)(next - s) - i : len - i;
			to_utf8(out, s + i, run, NULL, CLEAN_TEXT);
			i += run;
			continue;
		}
		if (strcasecmp(charset, w.charset) != 0)
			ew_flush(out, &raw, charset);
		snprintf(charset, sizeof(charset), "%s", w.charset);
		ew_decode(&raw, &w);
		i += w.len;
		for (run = 0; i + run < len && strchr(" \t\r\n", s[i + run]);
		    run++)
			;
		if (i + run < len && ew_parse(s + i + run, len - i - run, &w))
			i += run;
		else
			ew_flush(out, &raw, charset);
	}
	ew_flush(out, &raw, charset);
	out->oom |= raw.oom;
	buf_release(&raw);
}

/* A header's text, RFC 2047 words decoded, as one clean line; NULL when
 * empty. */
static char *
header_text(struct norm *n, const char *raw)
{
	struct buf dec = { .max = 2 * MIME_MAX_LINE };
	struct buf out = { .max = MIME_MAX_LINE };
	size_t len = strlen(raw);

	if (len > 4 * MIME_MAX_LINE)
		len = 4 * MIME_MAX_LINE;
	rfc2047_decode(&dec, raw, len);
	out.oom = dec.oom;
	clean_text(&out, dec.s != NULL ? dec.s : "", dec.len, CLEAN_LINE);
	buf_release(&dec);
	if (out.len == 0 && !out.oom) {
		buf_release(&out);
		return NULL;
	}
	return buf_take(n, &out);
}

/* An address as the result keeps it: trimmed, without <>, ASCII
 * lowercased, clean; NULL when empty, too long or holding a blank. */
static char *
addr_clean(struct norm *n, const char *a, size_t len)
{
	struct buf out = { .max = MIME_MAX_ADDR };
	size_t b, e;

	trim(a, len, &b, &e);
	if (e - b >= 2 && a[b] == '<' && a[e - 1] == '>')
		b++, e--;
	if (e == b || e - b > MIME_MAX_ADDR)
		return NULL;
	for (size_t i = b; i < e; i++)
		if ((unsigned char)a[i] <= ' ' || strchr("<>,;\"", a[i]))
			return NULL;
	clean_text(&out, a + b, e - b, CLEAN_LINE);
	for (size_t i = 0; i < out.len; i++)
		if (out.s[i] >= 'A' && out.s[i] <= 'Z')
			out.s[i] += 'a' - 'A';
	return buf_take(n, &out);
}

/* "<id>" from a msg-id with or without its brackets; NULL when it is not
 * one (empty, blanks inside, too long, not UTF-8). */
static char *
msgid_clean(struct norm *n, const char *id, size_t len)
{
	size_t b, e;
	char *s;

	trim(id, len, &b, &e);
	if (e - b >= 2 && id[b] == '<' && id[e - 1] == '>')
		b++, e--;
	if (e == b || e - b > MIME_MAX_MSGID || !utf8_ok(id + b, e - b))
		return NULL;
	for (size_t i = b; i < e; i++)
		if ((unsigned char)id[i] <= ' ' || id[i] == '<' ||
		    id[i] == '>' || id[i] == 0x7f)
			return NULL;
	if ((s = malloc(e - b + 3)) == NULL) {
		n->oom = 1;
		return NULL;
	}
	s[0] = '<';
	memcpy(s + 1, id + b, e - b);
	s[e - b + 1] = '>';
	s[e - b + 2] = '\0';
	return s;
}

/* s in list v (n entries)? */
static int
list_has(char **v, size_t count, const char *s)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* Appends s (taken: freed when not kept) to v unless present or full. */
static void
list_add(struct norm *n, char ***v, size_t *count, char *s, size_t max)
{
	char **nv;

	if (s == NULL || *count >= max || list_has(*v, *count, s)) {
		free(s);
		return;
	}
	if ((nv = realloc(*v, (*count + 1) * sizeof(*nv))) == NULL) {
		n->oom = 1;
		free(s);
		return;
	}
	nv[(*count)++] = s;
	*v = nv;
}

/* A References entry: the first (the thread's root) and the latest
 * MIME_MAX_REFS - 1 are kept, as those are what threading looks up. */
static void
ref_add(struct norm *n, char *id)
{
	struct inbound_msg *m = n->m;

	if (id == NULL || list_has(m->references, m->n_references, id)) {
		free(id);
		return;
	}
	if (m->n_references == MIME_MAX_REFS) {
		free(m->references[1]);
		memmove(&m->references[1], &m->references[2],
		    (MIME_MAX_REFS - 2) * sizeof(*m->references));
		m->n_references--;
	}
	list_add(n, &m->references, &m->n_references, id, MIME_MAX_REFS);
}

/*
 * Each "<...>" in v, to fn; for what libetpan could not parse (trailing
 * junk, missing brackets). A value without any "<" is one bare id.
 */
static void
msgids_scan(struct norm *n, const char *v, void (*fn)(struct norm *, char *))
{
	const char *p = v, *lt, *gt;

	if (strchr(v, '<') == NULL) {
		size_t b, e;
		trim(v, strlen(v), &b, &e);
		fn(n, msgid_clean(n, v + b, strcspn(v + b, " \t\r\n")));
		return;
	}
	while ((lt = strchr(p, '<')) != NULL &&
	    (gt = strchr(lt, '>')) != NULL) {
		fn(n, msgid_clean(n, lt, (size_t)(gt - lt + 1)));
		p = gt + 1;
	}
}

static void
take_message_id(struct norm *n, char *id)
{
	if (n->m->message_id == NULL)
		n->m->message_id = id;
	else
		free(id);
}

static void
take_in_reply_to(struct norm *n, char *id)
{
	if (n->m->in_reply_to == NULL)
		n->m->in_reply_to = id;
	else
		free(id);
}

static void
take_returned_id(struct norm *n, char *id)
{
	if (n->returned_id == NULL)
		n->returned_id = id;
	else
		free(id);
}

/* ---- addresses -------------------------------------------------------- */

static void
rcpt_add(struct norm *n, const char *addr, int is_cc)
{
	struct inbound_msg *m = n->m;

	list_add(n, &m->recipients, &m->n_recipients,
	    addr_clean(n, addr, strlen(addr)), MIME_MAX_RCPTS);
	if (is_cc)
		list_add(n, &m->cc, &m->n_cc, addr_clean(n, addr,
		    strlen(addr)), MIME_MAX_RCPTS);
}

static void
mailbox_list_add(struct norm *n, struct mailimf_mailbox_list *l, int is_cc)
{
	if (l == NULL)
		return;
	for (clistiter *it = clist_begin(l->mb_list); it; it = clist_next(it)) {
		struct mailimf_mailbox *mb = clist_content(it);
		if (mb != NULL && mb->mb_addr_spec != NULL)
			rcpt_add(n, mb->mb_addr_spec, is_cc);
	}
}

static void
address_list_add(struct norm *n, struct mailimf_address_list *l, int is_cc)
{
	if (l == NULL)
		return;
	for (clistiter *it = clist_begin(l->ad_list); it; it = clist_next(it)) {
		struct mailimf_address *a = clist_content(it);
		if (a == NULL)
			continue;
		if (a->ad_type == MAILIMF_ADDRESS_MAILBOX &&
		    a->ad_data.ad_mailbox != NULL &&
		    a->ad_data.ad_mailbox->mb_addr_spec != NULL)
			rcpt_add(n, a->ad_data.ad_mailbox->mb_addr_spec, is_cc);
		else if (a->ad_type == MAILIMF_ADDRESS_GROUP &&
		    a->ad_data.ad_group != NULL)
			mailbox_list_add(n, a->ad_data.ad_group->grp_mb_list,
			    is_cc);
	}
}

/*
 * The address in a value libetpan could not parse: the first <...> with
 * an @, else the first word with an @, else a lone first word (as in
 * "MAILER-DAEMON (Mail Delivery System)"). *name_r: the text before the
 * <, unquoted, when there is one.
 */
static char *
addr_guess(struct norm *n, const char *v, char **name_r)
{
	const char *gt = strchr(v, '>'), *lt = NULL, *w = v;
	size_t len, b, e;

	*name_r = NULL;
	/* The innermost <...>: "<<a@b>>" is seen. */
	for (const char *p = v; gt != NULL && p < gt; p++)
		if (*p == '<')
			lt = p;
	if (lt != NULL && memchr(lt, '@', (size_t)(gt - lt))) {
		for (w = lt; w > v && w[-1] == '<'; w--)
			;
		trim(v, (size_t)(w - v), &b, &e);
		if (e - b >= 2 && v[b] == '"' && v[e - 1] == '"')
			b++, e--;
		if (e > b) {
			char *raw = strndup(v + b, e - b);
			if (raw == NULL)
				n->oom = 1;
			else
				*name_r = header_text(n, raw);
			free(raw);
		}
		return addr_clean(n, lt + 1, (size_t)(gt - lt - 1));
	}
	w = v;
	for (const char *p = v; *p != '\0'; p += len) {
		p += strspn(p, " \t\r\n,;<>\"()");
		len = strcspn(p, " \t\r\n,;<>\"()");
		if (len > 0 && memchr(p, '@', len) != NULL)
			return addr_clean(n, p, len);
		if (len == 0)
			break;
	}
	w += strspn(w, " \t\r\n");
	len = strcspn(w, " \t\r\n,;<>\"()");
	return len > 0 ? addr_clean(n, w, len) : NULL;
}

static void
from_set(struct norm *n, const char *addr, const char *display)
{
	struct inbound_msg *m = n->m;

	if (m->from_address != NULL || addr == NULL)
		return;
	if ((m->from_address = addr_clean(n, addr, strlen(addr))) == NULL)
		return;
	m->from_email = dup_str(n, m->from_address);
	if (display != NULL)
		m->from_name = header_text(n, display);
}

/* ---- header fields ---------------------------------------------------- */

/* Is the local part of address a (lowercased) one of the mail system's? */
static int
local_is(const char *a, const char *local)
{
	const char *at = strchr(a, '@');
	size_t len = at ? (size_t)(at - a) : strlen(a);

	return len == strlen(local) && strncasecmp(a, local, len) == 0;
}

/* The null sender is written "<>", left empty, or (by some MTAs) named
 * MAILER-DAEMON. */
static void
return_path_set(struct norm *n, const char *addr)
{
	n->return_path = addr == NULL || addr[0] == '\0' ||
	    local_is(addr, "mailer-daemon") ? RP_NULL : RP_SENDER;
}

/* Value of an automatic-mail field, without parameters and blanks, equal
 * (case-insensitive) to word? */
static int
value_is(const char *v, const char *word)
{
	size_t b, e;

	trim(v, strcspn(v, ";("), &b, &e);
	return e - b == strlen(word) && strncasecmp(v + b, word, e - b) == 0;
}

static int
auto_not_no(const struct norm *n, const char *v)
{
	(void)n;
	return !value_is(v, "no");
}

static int
auto_present(const struct norm *n, const char *v)
{
	(void)n;
	(void)v;
	return 1;
}

static int
auto_precedence(const struct norm *n, const char *v)
{
	(void)n;
	return value_is(v, "bulk") || value_is(v, "junk") ||
	    value_is(v, "list");
}

static int
auto_loop(const struct norm *n, const char *v)
{
	const char *own = n->lim->own_address;

	return own != NULL && own[0] != '\0' && strcasestr(v, own) != NULL;
}

/* Header fields that mark a mail as automatic (channel.h). */
static const struct {
	const char *name;
	int flag;
	int (*match)(const struct norm *, const char *value);
} auto_fields[] = {
	{ "Auto-Submitted", INBOUND_AUTO_SUBMITTED, auto_not_no },
	{ "X-Autoreply", INBOUND_AUTO_SUBMITTED, auto_not_no },
	{ "X-Autorespond", INBOUND_AUTO_SUBMITTED, auto_not_no },
	{ "X-Auto-Response-Suppress", INBOUND_AUTO_SUBMITTED, auto_present },
	{ "Precedence", INBOUND_AUTO_BULK, auto_precedence },
	{ "List-Id", INBOUND_AUTO_LIST, auto_present },
	{ "List-Unsubscribe", INBOUND_AUTO_LIST, auto_present },
	{ "X-Loop", INBOUND_AUTO_LOOP, auto_loop },
};

/* Recipients in a field libetpan kept as text: parsed as a list, or the
 * one address guessed. */
static void
opt_recipients(struct norm *n, const char *v, int is_cc)
{
	struct mailimf_address_list *l = NULL;
	size_t idx = 0;
	char *name, *a;

	if (mailimf_address_list_parse(v, strlen(v), &idx, &l) ==
	    MAILIMF_NO_ERROR) {
		address_list_add(n, l, is_cc);
		mailimf_address_list_free(l);
		return;
	}
	if ((a = addr_guess(n, v, &name)) != NULL)
		rcpt_add(n, a, is_cc);
	free(a);
	free(name);
}

static void
opt_address(struct norm *n, const char *v)
{
	opt_recipients(n, v, 0);
}

static void
opt_cc(struct norm *n, const char *v)
{
	opt_recipients(n, v, 1);
}

static void
opt_return_path(struct norm *n, const char *v)
{
	char *name, *a;

	if (n->return_path != RP_ABSENT)
		return;
	a = addr_guess(n, v, &name);
	return_path_set(n, a);
	free(a);
	free(name);
}

static void
opt_from(struct norm *n, const char *v)
{
	struct inbound_msg *m = n->m;
	char *name, *a;

	if (m->from_address != NULL)
		return;
	if ((a = addr_guess(n, v, &name)) == NULL) {
		free(name);
		return;
	}
	m->from_address = a;
	m->from_email = dup_str(n, a);
	m->from_name = name;
}

static void
opt_message_id(struct norm *n, const char *v)
{
	msgids_scan(n, v, take_message_id);
}

static void
opt_in_reply_to(struct norm *n, const char *v)
{
	msgids_scan(n, v, take_in_reply_to);
}

static void
opt_references(struct norm *n, const char *v)
{
	msgids_scan(n, v, ref_add);
}

static void
opt_subject(struct norm *n, const char *v)
{
	if (n->m->subject == NULL)
		n->m->subject = header_text(n, v);
}

/*
 * Fields libetpan keeps as text: the delivery addresses it has no type
 * for, and the standard fields it could not parse (trailing junk, bad
 * brackets), which are read leniently here.
 */
static const struct {
	const char *name;
	void (*take)(struct norm *, const char *value);
} optional_fields[] = {
	{ "Delivered-To", opt_address }, { "X-Original-To", opt_address },
	{ "To", opt_address }, { "Cc", opt_cc },
	{ "Return-Path", opt_return_path }, { "From", opt_from },
	{ "Message-ID", opt_message_id }, { "In-Reply-To", opt_in_reply_to },
	{ "References", opt_references }, { "Subject", opt_subject },
};

static void
optional_take(struct norm *n, const char *name, const char *v)
{
	for (size_t i = 0; i < sizeof(auto_fields) / sizeof(*auto_fields); i++)
		if (strcasecmp(name, auto_fields[i].name) == 0 &&
		    auto_fields[i].match(n, v))
			n->m->auto_submitted |= auto_fields[i].flag;
	for (size_t i = 0; i < sizeof(optional_fields) /
	    sizeof(*optional_fields); i++)
		if (strcasecmp(name, optional_fields[i].name) == 0)
			optional_fields[i].take(n, v);
}

static void
msgid_list_take(struct norm *n, clist *l, void (*fn)(struct norm *, char *))
{
	for (clistiter *it = clist_begin(l); it != NULL; it = clist_next(it)) {
		const char *id = clist_content(it);
		if (id != NULL)
			fn(n, msgid_clean(n, id, strlen(id)));
	}
}

static void
from_take(struct norm *n, struct mailimf_mailbox_list *l)
{
	clistiter *it = l != NULL ? clist_begin(l->mb_list) : NULL;
	struct mailimf_mailbox *mb = clist_content(it);

	if (mb != NULL)
		from_set(n, mb->mb_addr_spec, mb->mb_display_name);
}

/* One header field into the message. The first of each kind counts. */
static void
field_take(struct norm *n, struct mailimf_field *f)
{
	struct inbound_msg *m = n->m;
	struct mailimf_mailbox *mb;

	switch (f->fld_type) {
	case MAILIMF_FIELD_RETURN_PATH:
		if (f->fld_data.fld_return_path->ret_path != NULL &&
		    n->return_path == RP_ABSENT)
			return_path_set(n, f->fld_data.fld_return_path->
			    ret_path->pt_addr_spec);
		break;
	case MAILIMF_FIELD_FROM:
		from_take(n, f->fld_data.fld_from->frm_mb_list);
		break;
	case MAILIMF_FIELD_SENDER:
		mb = f->fld_data.fld_sender->snd_mb;
		if (n->sender == NULL && mb != NULL && mb->mb_addr_spec != NULL)
			n->sender = dup_str(n, mb->mb_addr_spec);
		break;
	case MAILIMF_FIELD_TO:
		address_list_add(n, f->fld_data.fld_to->to_addr_list, 0);
		break;
	case MAILIMF_FIELD_CC:
		address_list_add(n, f->fld_data.fld_cc->cc_addr_list, 1);
		break;
	case MAILIMF_FIELD_MESSAGE_ID: {
		const char *id = f->fld_data.fld_message_id->mid_value;
		if (id != NULL)
			take_message_id(n, msgid_clean(n, id, strlen(id)));
		break;
	}
	case MAILIMF_FIELD_IN_REPLY_TO:
		msgid_list_take(n, f->fld_data.fld_in_reply_to->mid_list,
		    take_in_reply_to);
		break;
	case MAILIMF_FIELD_REFERENCES:
		msgid_list_take(n, f->fld_data.fld_references->mid_list,
		    ref_add);
		break;
	case MAILIMF_FIELD_SUBJECT:
		if (m->subject == NULL && f->fld_data.fld_subject->sbj_value)
			m->subject = header_text(n,
			    f->fld_data.fld_subject->sbj_value);
		break;
	case MAILIMF_FIELD_OPTIONAL_FIELD: {
		struct mailimf_optional_field *o;
		o = f->fld_data.fld_optional_field;
		if (o->fld_name != NULL && o->fld_value != NULL)
			optional_take(n, o->fld_name, o->fld_value);
		break;
	}
	}
}

static void
header_take(struct norm *n, struct mailimf_fields *fields)
{
	if (fields == NULL)
		return;
	for (clistiter *it = clist_begin(fields->fld_list); it != NULL;
	    it = clist_next(it))
		if (clist_content(it) != NULL)
			field_take(n, clist_content(it));
}

/* ---- the working copy ------------------------------------------------- */

/*
 * What libetpan is given: the mail with its header block repaired (lines
 * that are no field dropped, "Name :" made "Name:", at most
 * MIME_MAX_FIELDS fields, LF line ends), bare-CR line ends made LF when
 * the mail uses them, and '(' beyond MIME_MAX_PARENS nesting on one
 * logical line made a blank. A mail whose first line is no field gets an
 * empty header: all of it is body.
 */
struct work {
	char *buf;
	size_t len;
	size_t body;	/* where the body starts in buf */
	int cr_eol;	/* the source ends lines with a bare CR */
	int parens;	/* '(' open on the current logical line */
	int bol;	/* at the beginning of a line */
};

/* The offset of the line end at or after i (len if none). */
static size_t
eol_at(const char *p, size_t len, size_t i, int cr_eol)
{
	while (i < len && p[i] != '\n' && !(cr_eol && p[i] == '\r'))
		i++;
	if (!cr_eol && i > 0 && i < len && p[i - 1] == '\r')
		i--;
	return i;
}

/* The offset after the line end at e (CR, LF or CRLF). */
static size_t
eol_skip(const char *p, size_t len, size_t e)
{
	if (e < len && p[e] == '\r')
		e++;
	if (e < len && p[e] == '\n')
		e++;
	return e;
}

/* Does the mail end its first line with a bare CR (old Mac mail)? */
static int
first_eol_is_cr(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] != '\r' && p[i] != '\n')
		i++;
	return i < len && p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n');
}

static int
blank_line(const char *p, size_t i, size_t e)
{
	while (i < e && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i == e;
}

/* i moved past lines of blanks before the first field: noise. */
static size_t
skip_blank_lines(const char *p, size_t len, size_t i, int cr_eol)
{
	size_t e;

	while ((e = eol_at(p, len, i, cr_eol)) > i && e < len &&
	    blank_line(p, i, e))
		i = eol_skip(p, len, e);
	return i;
}

/*
 * Does the header end at line p[i..e)? An empty line ends it; so does a
 * line of blanks, which senders write by mistake for the empty one,
 * unless a folded line follows (the obsolete syntax allows blank lines
 * inside a fold).
 */
static int
header_ends(const char *p, size_t len, size_t i, size_t e, int cr_eol)
{
	size_t next = eol_skip(p, len, e);

	if (!blank_line(p, i, e))
		return 0;
	if (e == i || next >= len || (p[next] != ' ' && p[next] != '\t'))
		return 1;
	return blank_line(p, next, eol_at(p, len, next, cr_eol));
}

/* Length of the field name when line s[0..len) is "NAME[WSP]:", NAME of
 * printable ASCII; 0 when it is no field line. *colon_r: the colon. */
static size_t
field_name(const char *s, size_t len, size_t *colon_r)
{
	size_t i = 0, name;

	while (i < len && s[i] > ' ' && s[i] < 0x7f && s[i] != ':')
		i++;
	name = i;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (name == 0 || i >= len || s[i] != ':')
		return 0;
	*colon_r = i;
	return name;
}

/* Appends s[0..len) to w->buf (sized for it), defusing deep comments and
 * turning bare CRs into LF when the mail ends its lines with them. */
static void
work_put(struct work *w, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (w->cr_eol && c == '\r' &&
		    (i + 1 >= len || s[i + 1] != '\n'))
			c = '\n';
		if (w->bol && c != ' ' && c != '\t')
			w->parens = 0;
		w->bol = c == '\n';
		if (c == '(' && ++w->parens > MIME_MAX_PARENS) {
			w->parens--;
			c = ' ';
		} else if (c == ')' && w->parens > 0) {
			w->parens--;
		}
		w->buf[w->len++] = c;
	}
}

/* Where the first field of p[0..len) may start: after a UTF-8 BOM, an
 * mbox "From " line and lines of blanks. */
static size_t
header_start(const char *p, size_t len, int cr_eol)
{
	size_t i = 0;

	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	if (len - i >= 5 && memcmp(p + i, "From ", 5) == 0)
		i = eol_skip(p, len, eol_at(p, len, i, cr_eol));
	return skip_blank_lines(p, len, i, cr_eol);
}

/* The header lines of p[0..len) into w; returns where the body starts in
 * p. */
static size_t
work_header(struct work *w, const char *p, size_t len)
{
	size_t i = header_start(p, len, w->cr_eol), fields = 0, e, colon, name;
	int keep = 0;

	e = eol_at(p, len, i, w->cr_eol);
	if (blank_line(p, i, e) || field_name(p + i, e - i, &colon) == 0) {
		work_put(w, "\n", 1);	/* no header: all is body */
		return blank_line(p, i, e) ? eol_skip(p, len, e) : i;
	}
	for (; i < len; i = eol_skip(p, len, e)) {
		e = eol_at(p, len, i, w->cr_eol);
		if (header_ends(p, len, i, e, w->cr_eol))
			break;
		if (p[i] == ' ' || p[i] == '\t') {
			/* a continuation goes with its field; blank ones go */
			if (blank_line(p, i, e))
				continue;
		} else if ((name = field_name(p + i, e - i, &colon)) > 0 &&
		    fields < MIME_MAX_FIELDS) {
			keep = 1;
			fields++;
			work_put(w, p + i, name);
			i += colon;
		} else {
			keep = 0;
		}
		if (keep) {
			work_put(w, p + i, e - i);
			work_put(w, "\n", 1);
		}
	}
	work_put(w, "\n", 1);
	return eol_skip(p, len, e);
}

/* w: the working copy of p[0..len). 0, or -1 when out of memory. */
static int
work_prepare(struct work *w, const char *p, size_t len)
{
	size_t body;

	*w = (struct work){ .bol = 1 };
	/* The header can grow by the two line ends work_header adds. */
	if ((w->buf = malloc(len + 3)) == NULL)
		return -1;
	w->cr_eol = first_eol_is_cr(p, len);
	body = work_header(w, p, len);
	w->body = w->len;
	if (body < len)
		work_put(w, p + body, len - body);
	w->buf[w->len] = '\0';
	return 0;
}

/*
 * Whether libetpan may parse the whole tree: each "Content-Type:
 * multipart/..." or "message/..." can add a level to its recursion, and
 * each level rescans its text, so both the count and count x size are
 * bounded.
 */
static int
composites_ok(const char *p, size_t len)
{
	static const char ct[] = "content-type";
	size_t count = 0, i = 0;

	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);
		size_t j = i + sizeof(ct) - 1;
		if (len - i > sizeof(ct) &&
		    strncasecmp(p + i, ct, sizeof(ct) - 1) == 0) {
			while (j < len && (p[j] == ' ' || p[j] == '\t'))
				j++;
			if (j < len && p[j] == ':')
				j++;
			while (j < len && strchr(" \t\r\n", p[j]) != NULL)
				j++;
			if ((len - j > 10 && strncasecmp(p + j, "multipart/",
			    10) == 0) || (len - j > 8 &&
			    strncasecmp(p + j, "message/", 8) == 0))
				count++;
		}
		if (nl == NULL)
			break;
		i = (size_t)(nl - p) + 1;
	}
	return count <= MIME_MAX_COMPOSITES &&
	    (count == 0 || len <= MIME_PARSE_BUDGET / count);
}

/* The offset after the blank line ending the header of p[0..len), or len
 * when there is none. */
static size_t
header_end(const char *p, size_t len)
{
	int cr_eol = first_eol_is_cr(p, len);

	for (size_t i = header_start(p, len, cr_eol); i < len;) {
		size_t e = eol_at(p, len, i, cr_eol);
		if (header_ends(p, len, i, e, cr_eol) || e >= len)
			return eol_skip(p, len, e);
		i = eol_skip(p, len, e);
	}
	return len;
}

/* The header of the mail p[0..len) through the repairs, parsed; NULL when
 * nothing could be (n records out of memory). */
static struct mailimf_fields *
header_parse(struct norm *n, const char *p, size_t len)
{
	struct mailimf_fields *f = NULL;
	struct work w;
	size_t idx = 0;
	int rc;

	if (work_prepare(&w, p, header_end(p, len)) < 0) {
		n->oom = 1;
		return NULL;
	}
	rc = mailimf_envelope_and_optional_fields_parse(w.buf, w.len, &idx, &f);
	if (rc == MAILIMF_ERROR_MEMORY)
		n->oom = 1;
	free(w.buf);
	return rc == MAILIMF_NO_ERROR ? f : NULL;
}

/* ---- parts ------------------------------------------------------------ */

/* What the walk needs to know of a single part. */
struct part {
	char type[128];		/* "type/subtype", lowercased */
	const char *charset;	/* borrowed from libetpan, or NULL */
	int attachment;		/* Content-Disposition: attachment */
	char *name;		/* file name, clean UTF-8, or NULL */
};

static const char *
main_type(const struct mailmime_type *t)
{
	if (t == NULL)
		return "text";
	if (t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
		const struct mailmime_discrete_type *d =
		    t->tp_data.tp_discrete_type;
		static const char *names[] = {
			[MAILMIME_DISCRETE_TYPE_TEXT] = "text",
			[MAILMIME_DISCRETE_TYPE_IMAGE] = "image",
			[MAILMIME_DISCRETE_TYPE_AUDIO] = "audio",
			[MAILMIME_DISCRETE_TYPE_VIDEO] = "video",
			[MAILMIME_DISCRETE_TYPE_APPLICATION] = "application",
		};
		if (d->dt_type == MAILMIME_DISCRETE_TYPE_EXTENSION)
			return d->dt_extension ? d->dt_extension : "x-unknown";
		if (d->dt_type > 0 && d->dt_type < (int)(sizeof(names) /
		    sizeof(*names)))
			return names[d->dt_type];
		return "x-unknown";
	}
	if (t->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE) {
		const struct mailmime_composite_type *c =
		    t->tp_data.tp_composite_type;
		if (c->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE)
			return "message";
		if (c->ct_type == MAILMIME_COMPOSITE_TYPE_MULTIPART)
			return "multipart";
		return c->ct_token ? c->ct_token : "x-unknown";
	}
	return "x-unknown";
}

/* "type/subtype" of a part, lowercased and clean, into out. */
static void
type_of(const struct mailmime_content *ct, char *out, size_t size)
{
	struct buf b = { .max = size - 1 };

	if (ct == NULL) {
		snprintf(out, size, "text/plain");
		return;
	}
	snprintf(out, size, "%s/%s", main_type(ct->ct_type),
	    ct->ct_subtype ? ct->ct_subtype : "x-unknown");
	clean_text(&b, out, strlen(out), CLEAN_LINE);
	snprintf(out, size, "%s", b.s ? b.s : "x-unknown/x-unknown");
	buf_release(&b);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
}

/* %XX-decoded s into out (RFC 2231 extended value). */
static void
pct_decode(struct buf *out, const char *s)
{
	while (*s != '\0' && !out->full) {
		size_t run = strcspn(s, "%");
		buf_add(out, s, run);
		s += run;
		int hi = *s == '%' ? crypto_hexval(s[1]) : -1;
		int lo = hi >= 0 ? crypto_hexval(s[2]) : -1;
		if (lo >= 0) {
			char c = (char)(hi << 4 | lo);
			buf_add(out, &c, 1);
			s += 3;
		} else if (*s == '%') {
			buf_add(out, "%", 1);
			s++;
		}
	}
}

/* One parameter as libetpan gives it (name, value), from either header. */
struct param {
	const char *name, *value;
};

/* RFC 2231 pieces of one parameter: name*=, or name*0*=, name*1=, ... */
struct segments {
	const char *value[MIME_MAX_SEGMENTS];
	int encoded[MIME_MAX_SEGMENTS];	/* %XX, and charset'lang' on 0 */
};

/* Sorts the RFC 2231 pieces of parameter base among ps into sg; 1 when
 * there is a first one. */
static int
segments_of(const struct param *ps, size_t count, const char *base,
    struct segments *sg)
{
	size_t blen = strlen(base);

	*sg = (struct segments){ 0 };
	for (size_t i = 0; i < count; i++) {
		const char *rest = ps[i].name + blen + 1;
		char *end = (char *)rest;
		unsigned long k = 0;
		if (strncasecmp(ps[i].name, base, blen) != 0 ||
		    ps[i].name[blen] != '*')
			continue;
		if (*rest >= '0' && *rest <= '9')
			k = strtoul(rest, &end, 10);
		if (k >= MIME_MAX_SEGMENTS || (*end != '\0' &&
		    strcmp(end, "*") != 0) || sg->value[k] != NULL)
			continue;
		sg->value[k] = ps[i].value;
		sg->encoded[k] = *end == '*' || end == rest;
	}
	return sg->value[0] != NULL;
}

/* The RFC 2231 value of parameter base among ps, as clean UTF-8; NULL
 * when there is none. */
static char *
param_2231(struct norm *n, const struct param *ps, size_t count,
    const char *base)
{
	struct buf raw = { .max = 4 * MIME_MAX_LINE };
	struct buf out = { .max = MIME_MAX_LINE };
	struct segments sg;
	char cs[48] = "";

	if (!segments_of(ps, count, base, &sg))
		return NULL;
	for (size_t k = 0; k < MIME_MAX_SEGMENTS && sg.value[k]; k++) {
		const char *v = sg.value[k], *q1, *q2;
		if (k == 0 && sg.encoded[0] && (q1 = strchr(v, '\'')) &&
		    (q2 = strchr(q1 + 1, '\'')) != NULL) {
			snprintf(cs, sizeof(cs), "%.*s", (int)(q1 - v), v);
			v = q2 + 1;
		}
		if (sg.encoded[k])
			pct_decode(&raw, v);
		else
			buf_add(&raw, v, strlen(v));
	}
	to_utf8(&out, raw.s ? raw.s : "", raw.len, cs[0] ? cs : NULL,
	    CLEAN_LINE);
	out.oom |= raw.oom;
	buf_release(&raw);
	return buf_take(n, &out);
}

/* A parameter's value, RFC 2231 first, else the plain one with RFC 2047
 * words decoded (common, though not allowed); NULL when absent. */
static char *
param_value(struct norm *n, const struct param *ps, size_t count,
    const char *base)
{
	char *v = param_2231(n, ps, count, base);

	if (v != NULL && v[0] != '\0')
		return v;
	free(v);
	for (size_t i = 0; i < count; i++)
		if (strcasecmp(ps[i].name, base) == 0)
			return header_text(n, ps[i].value);
	return NULL;
}

/* A file name fit to show and store: its last path component, capped. */
static char *
name_clean(struct norm *n, char *name)
{
	const char *base;
	char *s;

	if (name == NULL)
		return NULL;
	base = name;
	for (const char *p = name; *p != '\0'; p++)
		if ((*p == '/' || *p == '\\') && p[1] != '\0')
			base = p + 1;
	if (base == name)
		return name;
	s = dup_str(n, base);
	free(name);
	return s;
}

/* Collects the parameters of the part's Content-Disposition and
 * Content-Type into ps (at most cap). */
static size_t
params_of(struct mailmime *mm, struct param *ps, size_t cap,
    int *attachment_r)
{
	struct mailmime_fields *mf = mm->mm_mime_fields;
	size_t count = 0;

	*attachment_r = 0;
	for (clistiter *it = mf ? clist_begin(mf->fld_list) : NULL; it;
	    it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);
		struct mailmime_disposition *d;
		if (f == NULL || f->fld_type != MAILMIME_FIELD_DISPOSITION)
			continue;
		d = f->fld_data.fld_disposition;
		*attachment_r = d->dsp_type != NULL && d->dsp_type->dsp_type ==
		    MAILMIME_DISPOSITION_TYPE_ATTACHMENT;
		for (clistiter *j = clist_begin(d->dsp_parms); j != NULL &&
		    count < cap; j = clist_next(j)) {
			struct mailmime_disposition_parm *dp = clist_content(j);
			if (dp->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME &&
			    dp->pa_data.pa_filename != NULL)
				ps[count++] = (struct param){ "filename",
				    dp->pa_data.pa_filename };
			else if (dp->pa_type ==
			    MAILMIME_DISPOSITION_PARM_PARAMETER &&
			    dp->pa_data.pa_parameter->pa_name != NULL &&
			    dp->pa_data.pa_parameter->pa_value != NULL)
				ps[count++] = (struct param){
				    dp->pa_data.pa_parameter->pa_name,
				    dp->pa_data.pa_parameter->pa_value };
		}
		break;
	}
	if (mm->mm_content_type == NULL)
		return count;
	for (clistiter *it = clist_begin(mm->mm_content_type->ct_parameters);
	    it != NULL && count < cap; it = clist_next(it)) {
		struct mailmime_parameter *p = clist_content(it);
		if (p->pa_name != NULL && p->pa_value != NULL)
			ps[count++] = (struct param){ p->pa_name, p->pa_value };
	}
	return count;
}

/*
 * Parameter key of the part's raw header, for names libetpan spoilt: it
 * turns each 8-bit byte of a Content-Type parameter into '?', and raw
 * UTF-8 or legacy-charset names are common. NULL unless the raw value has
 * 8-bit bytes.
 */
static char *
raw_param(struct norm *n, struct mailmime *mm, const char *key)
{
	const char *h = mm->mm_mime_start, *end, *v, *q;
	size_t klen = strlen(key), len;
	char *raw, *r;

	if (h == NULL || mm->mm_body == NULL ||
	    mm->mm_body->dt_type != MAILMIME_DATA_TEXT)
		return NULL;
	end = mm->mm_body->dt_data.dt_text.dt_data;
	if (end == NULL || end < h || end - h > 64 * 1024)
		return NULL;
	for (const char *p = h; (size_t)(end - p) > klen; p++) {
		if (strncasecmp(p, key, klen) != 0 || (p > h &&
		    strchr("; \t\r\n", p[-1]) == NULL))
			continue;
		for (v = p + klen; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		if (v >= end || *v != '=')
			continue;
		for (v++; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		if (v < end && *v == '"' && (q = memchr(v + 1, '"',
		    (size_t)(end - v - 1))) != NULL)
			len = (size_t)(q - ++v);
		else
			for (len = 0; v + len < end && !strchr("; \t\r\n\"",
			    v[len]); len++)
				;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)v[i] >= 0x80)
				goto found;
		return NULL;
found:
		if ((raw = strndup(v, len)) == NULL) {
			n->oom = 1;
			return NULL;
		}
		r = header_text(n, raw);
		free(raw);
		return r;
	}
	return NULL;
}

static void
part_describe(struct norm *n, struct mailmime *mm, struct part *pt)
{
	struct param ps[MIME_MAX_SEGMENTS * 2];
	size_t count = params_of(mm, ps, sizeof(ps) / sizeof(*ps),
	    &pt->attachment);

	type_of(mm->mm_content_type, pt->type, sizeof(pt->type));
	pt->charset = NULL;
	for (size_t i = 0; i < count; i++)
		if (strcasecmp(ps[i].name, "charset") == 0)
			pt->charset = ps[i].value;
	pt->name = param_value(n, ps, count, "filename");
	if (pt->name == NULL)
		pt->name = param_value(n, ps, count, "name");
	if (pt->name != NULL && strchr(pt->name, '?') != NULL) {
		char *raw = raw_param(n, mm, "filename");
		if (raw == NULL)
			raw = raw_param(n, mm, "name");
		if (raw != NULL) {
			free(pt->name);
			pt->name = raw;
		}
	}
	pt->name = name_clean(n, pt->name);
}

/* The part's content, transfer encoding undone: heap bytes (NUL after
 * them) and *len_r; NULL when there is none or out of memory. */
static char *
part_decode(struct norm *n, struct mailmime *mm, size_t *len_r)
{
	struct mailmime_data *d = mm->mm_body;
	char *dec = NULL, *copy;
	size_t idx = 0, dlen = 0;
	int rc;

	*len_r = 0;
	if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT)
		return NULL;
	if (!d->dt_encoded) {
		dec = (char *)d->dt_data.dt_text.dt_data;
		dlen = d->dt_data.dt_text.dt_length;
	} else {
		rc = mailmime_part_parse(d->dt_data.dt_text.dt_data,
		    d->dt_data.dt_text.dt_length, &idx, d->dt_encoding, &dec,
		    &dlen);
		if (rc == MAILIMF_ERROR_MEMORY)
			n->oom = 1;
		if (rc != MAILIMF_NO_ERROR)
			return NULL;
	}
	if ((copy = malloc(dlen + 1)) == NULL)
		n->oom = 1;
	else if (dlen > 0)
		memcpy(copy, dec, dlen);
	if (copy != NULL)
		copy[dlen] = '\0';
	if (d->dt_encoded)
		mailmime_decoded_part_free(dec);
	*len_r = dlen;
	return copy;
}

/* Appends an attachment; data (heap, taken) is kept when small enough. */
static void
attachment_add(struct norm *n, const char *name, const char *type,
    char *data, size_t size)
{
	struct inbound_msg *m = n->m;
	struct inbound_attachment *v, *a;
	char fallback[32];

	v = realloc(m->attachments, (m->n_attachments + 1) * sizeof(*v));
	if (v == NULL) {
		n->oom = 1;
		free(data);
		return;
	}
	m->attachments = v;
	a = &v[m->n_attachments++];
	*a = (struct inbound_attachment){ .size = size };
	if (name == NULL) {
		snprintf(fallback, sizeof(fallback), "part-%zu",
		    m->n_attachments);
		name = fallback;
	}
	a->name = dup_str(n, name);
	a->type = dup_str(n, type);
	if (data != NULL && size <= n->lim->max_attachment_size)
		a->data = (unsigned char *)data;
	else
		free(data);
}

/*
 * An enclosed message (message/rfc822 parsed or still encoded,
 * text/rfc822-headers): its Message-ID is what a bounce returns, its
 * subject the attachment's name.
 */
static char *
enclosed_header(struct norm *n, const char *p, size_t len, int want_name)
{
	struct mailimf_fields *f = header_parse(n, p, len);
	struct norm sub = { .lim = n->lim };
	char *name = NULL;

	if (f == NULL)
		return NULL;
	if ((sub.m = calloc(1, sizeof(*sub.m))) == NULL) {
		n->oom = 1;
		goto out;
	}
	header_take(&sub, f);
	take_returned_id(n, sub.m->message_id);
	sub.m->message_id = NULL;
	if (want_name && sub.m->subject != NULL &&
	    asprintf(&name, "%s.eml", sub.m->subject) < 0) {
		n->oom = 1;
		name = NULL;
	}
	/* "Re: invoice 3/2024" is no path: name_clean must not cut it. */
	for (char *c = name; c != NULL && *c != '\0'; c++)
		if (*c == '/' || *c == '\\')
			*c = '-';
out:
	n->oom |= sub.oom;
	mailimf_fields_free(f);
	inbound_msg_free(&sub.m);
	free(sub.sender);
	return name;
}

static int
is_type(const struct part *pt, const char *type)
{
	return strcmp(pt->type, type) == 0;
}

/*
 * Is this text/plain part body text? Mail clients show each inline text
 * part of a multipart/mixed one after the other (a greeting, then a
 * disclaimer or a list footer a server added), but of a
 * multipart/alternative only one: the first text/plain there.
 */
static int
body_wanted(struct norm *n, const struct mailmime *mm)
{
	const struct mailmime *alt = NULL, **v;

	for (const struct mailmime *p = mm; p->mm_parent != NULL &&
	    p->mm_parent_type == MAILMIME_MULTIPLE; p = p->mm_parent) {
		const struct mailmime_content *ct;
		ct = p->mm_parent->mm_content_type;
		if (ct != NULL && ct->ct_subtype != NULL &&
		    strcasecmp(ct->ct_subtype, "alternative") == 0) {
			alt = p->mm_parent;
			break;
		}
	}
	if (alt == NULL)
		return 1;
	for (size_t i = 0; i < n->n_alts; i++)
		if (n->alts[i] == alt)
			return 0;
	if ((v = realloc(n->alts, (n->n_alts + 1) * sizeof(*v))) == NULL) {
		n->oom = 1;
		return 0;
	}
	v[n->n_alts++] = alt;
	n->alts = v;
	return 1;
}

/* Appends a text part to the body, a blank line after the one before. */
static void
body_append(struct norm *n, const char *data, size_t len,
    const char *charset)
{
	struct buf *b = &n->body;

	if (b->len > 0 && b->s[b->len - 1] != '\n')
		buf_add(b, "\n", 1);
	if (b->len > 0)
		buf_add(b, "\n", 1);
	n->has_body = 1;
	to_utf8(b, data, len, charset, CLEAN_TEXT);
}

static void
text_take(struct norm *n, char **dst, const char *data, size_t len,
    const char *charset, size_t max)
{
	struct buf out = { .max = max };

	if (*dst != NULL)
		return;
	to_utf8(&out, data, len, charset, CLEAN_TEXT);
	*dst = buf_take(n, &out);
}

/* What a bounce is made of: the report marks it, the returned message or
 * its header gives bounce_of (and an enclosed message its name). */
static void
report_part(struct norm *n, struct part *pt, const char *data, size_t len)
{
	int message = is_type(pt, "message/rfc822") ||
	    is_type(pt, "message/global");
	char *name = NULL;

	if (is_type(pt, "message/delivery-status") ||
	    is_type(pt, "message/global-delivery-status") ||
	    is_type(pt, "message/feedback-report"))
		n->m->auto_submitted |= INBOUND_AUTO_BOUNCE;
	if (data != NULL && (message || is_type(pt, "text/rfc822-headers") ||
	    is_type(pt, "message/global-headers")))
		name = enclosed_header(n, data, len, message);
	if (message && pt->name == NULL)
		pt->name = name != NULL ? name_clean(n, name) :
		    dup_str(n, "message.eml");
	else
		free(name);
}

/* A leaf part: body, HTML, report parts, attachment. The root (a mail
 * that is one part) is text when it says so, file name or not. */
static void
leaf_visit(struct norm *n, struct mailmime *mm, int root)
{
	struct part pt;
	size_t len;
	char *data;
	int plain, html, attachment;

	n->leaves++;
	part_describe(n, mm, &pt);
	data = part_decode(n, mm, &len);
	report_part(n, &pt, data, len);
	/* multipart/ here is one without a boundary: its text is all. */
	plain = is_type(&pt, "text/plain") ||
	    strncmp(pt.type, "multipart/", 10) == 0;
	html = is_type(&pt, "text/html");
	attachment = pt.attachment || (pt.name != NULL &&
	    !(root && (plain || html))) || !(plain || html ||
	    strncmp(pt.type, "text/", 5) == 0);
	if (attachment) {
		attachment_add(n, pt.name, pt.type, data, len);
		data = NULL;
	} else if (data != NULL && html) {
		text_take(n, &n->html, data, len, pt.charset,
		    MIME_MAX_HTML_SOURCE);
	} else if (data != NULL && plain && body_wanted(n, mm)) {
		body_append(n, data, len, pt.charset);
	}
	free(data);
	free(pt.name);
}

/* A multipart's own marks: multipart/report says what it reports. */
static void
multipart_visit(struct norm *n, struct mailmime *mm)
{
	const struct mailmime_content *ct = mm->mm_content_type;
	const char *rt;

	if (ct == NULL || ct->ct_subtype == NULL ||
	    strcasecmp(ct->ct_subtype, "report") != 0)
		return;
	rt = mailmime_content_param_get((struct mailmime_content *)ct,
	    "report-type");
	if (rt == NULL)
		return;
	if (value_is(rt, "delivery-status") ||
	    value_is(rt, "global-delivery-status") ||
	    value_is(rt, "feedback-report"))
		n->m->auto_submitted |= INBOUND_AUTO_BOUNCE;
	else
		n->m->auto_submitted |= INBOUND_AUTO_SUBMITTED;
}

/* The part after p in a walk below root that skips p's children; NULL
 * at the end. *depth_r follows the levels climbed. */
static struct mailmime *
part_next(struct mailmime *p, const struct mailmime *root, int *depth_r)
{
	while (p != NULL && p != root) {
		if (p->mm_parent_type == MAILMIME_MULTIPLE &&
		    p->mm_multipart_pos != NULL &&
		    clist_next(p->mm_multipart_pos) != NULL)
			return clist_content(clist_next(p->mm_multipart_pos));
		p = p->mm_parent;
		(*depth_r)--;
	}
	return NULL;
}

/* Pre-order walk of the tree below root, without recursion: a hostile
 * mail nests as deep as it likes. */
static void
walk(struct norm *n, struct mailmime *root)
{
	struct mailmime *cur = root, *child;
	int depth = 0;

	while (cur != NULL && n->parts < MIME_MAX_PARTS && !n->oom) {
		n->parts++;
		child = NULL;
		if (cur->mm_type == MAILMIME_MULTIPLE) {
			multipart_visit(n, cur);
			if (depth < MIME_MAX_DEPTH)
				child = clist_content(clist_begin(
				    cur->mm_data.mm_multipart.mm_mp_list));
		} else {
			leaf_visit(n, cur, cur == root);
		}
		if (child != NULL) {
			cur = child;
			depth++;
		} else {
			cur = part_next(cur, root, &depth);
		}
	}
}

/* ---- HTML to text ----------------------------------------------------- */

struct html_out {
	struct buf b;
	int space;		/* a blank is due before the next text */
	int breaks;		/* line ends due before the next text */
	int pre;		/* inside <pre>: blanks kept */
	int in_link;
	size_t link_start;	/* where the link's text begins in b */
	xmlChar *href;		/* the link's target, libxml2's */
};

enum html_kind { H_INLINE, H_SKIP, H_BR, H_LINE, H_PARA, H_ITEM, H_CELL,
	H_PRE, H_LINK };

static enum html_kind
html_kind(const xmlNode *e)
{
	static const struct {
		const char *name;
		enum html_kind kind;
	} kinds[] = {
		{ "script", H_SKIP }, { "style", H_SKIP }, { "head", H_SKIP },
		{ "title", H_SKIP }, { "template", H_SKIP }, { "br", H_BR },
		{ "p", H_PARA }, { "h1", H_PARA }, { "h2", H_PARA },
		{ "h3", H_PARA }, { "h4", H_PARA }, { "h5", H_PARA },
		{ "h6", H_PARA }, { "blockquote", H_PARA }, { "table", H_PARA },
		{ "ul", H_PARA }, { "ol", H_PARA }, { "pre", H_PRE },
		{ "div", H_LINE }, { "tr", H_LINE }, { "hr", H_LINE },
		{ "dt", H_LINE }, { "dd", H_LINE }, { "section", H_LINE },
		{ "article", H_LINE }, { "header", H_LINE },
		{ "footer", H_LINE }, { "address", H_LINE },
		{ "center", H_LINE }, { "li", H_ITEM }, { "td", H_CELL },
		{ "th", H_CELL }, { "a", H_LINK },
	};

	if (e->type != XML_ELEMENT_NODE || e->name == NULL)
		return H_INLINE;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++)
		if (strcasecmp((const char *)e->name, kinds[i].name) == 0)
			return kinds[i].kind;
	return H_INLINE;
}

static void
html_break(struct html_out *h, int count)
{
	if (h->breaks < count)
		h->breaks = count;
}

/* Emits what is due before text: line ends, or a blank. */
static void
html_flush(struct html_out *h)
{
	if (h->b.len > 0 && h->breaks > 0)
		buf_add(&h->b, "\n\n", (size_t)(h->breaks > 2 ? 2 : h->breaks));
	else if (h->b.len > 0 && h->space)
		buf_add(&h->b, " ", 1);
	h->breaks = h->space = 0;
}

/* Text of a text node, blanks collapsed outside <pre>. U+00A0 counts as a
 * blank: HTML mail lays out with &nbsp;. */
static void
html_text(struct html_out *h, const char *s)
{
	while (*s != '\0' && !h->b.full) {
		size_t run = 0;
		if (h->pre) {
			run = strlen(s);
			html_flush(h);
			buf_add(&h->b, s, run);
		} else if (strchr(" \t\r\n\f", *s) != NULL) {
			h->space = 1;
			run = 1;
		} else if ((unsigned char)s[0] == 0xc2 &&
		    (unsigned char)s[1] == 0xa0) {
			h->space = 1;
			run = 2;
		} else {
			while (s[run] != '\0' && !strchr(" \t\r\n\f", s[run]) &&
			    !((unsigned char)s[run] == 0xc2 &&
			    (unsigned char)s[run + 1] == 0xa0))
				run++;
			html_flush(h);
			buf_add(&h->b, s, run);
		}
		s += run;
	}
}

/* Entering node e; 1 when its children are to be walked. */
static int
html_enter(struct html_out *h, xmlNode *e)
{
	if (e->type == XML_TEXT_NODE || e->type == XML_CDATA_SECTION_NODE) {
		if (e->content != NULL)
			html_text(h, (const char *)e->content);
		return 0;
	}
	if (e->type != XML_ELEMENT_NODE)
		return 0;
	switch (html_kind(e)) {
	case H_SKIP:
		return 0;
	case H_BR:
		h->breaks = h->breaks < 2 ? h->breaks + 1 : 2;
		if (h->b.len == 0)
			h->breaks = 0;
		return 0;
	case H_PARA:
		html_break(h, 2);
		break;
	case H_PRE:
		html_break(h, 2);
		h->pre++;
		break;
	case H_LINE:
		html_break(h, 1);
		break;
	case H_ITEM:
		html_break(h, 1);
		html_flush(h);
		buf_add(&h->b, "- ", 2);
		break;
	case H_LINK:
		if (!h->in_link) {
			h->in_link = 1;
			h->link_start = h->b.len;
			h->href = xmlGetProp(e, (const xmlChar *)"href");
		}
		break;
	case H_CELL:
	case H_INLINE:
		break;
	}
	return 1;
}

/* " <url>" after a link whose text is not the url itself. */
static void
html_link_end(struct html_out *h)
{
	const char *url = (const char *)h->href, *text;
	size_t b, e, ulen;

	h->in_link = 0;
	if (url == NULL)
		return;
	ulen = strlen(url);
	text = h->b.s != NULL ? h->b.s + h->link_start : "";
	trim(text, h->b.len - h->link_start, &b, &e);
	if (e > b && ulen > 0 && url[0] != '#' &&
	    strncasecmp(url, "javascript:", 11) != 0 &&
	    !(e - b == ulen && strncmp(text + b, url, ulen) == 0) &&
	    !(ulen > 7 && strncasecmp(url, "mailto:", 7) == 0 &&
	    e - b == ulen - 7 && strncmp(text + b, url + 7, ulen - 7) == 0)) {
		buf_add(&h->b, " <", 2);
		buf_add(&h->b, url, ulen);
		buf_add(&h->b, ">", 1);
	}
	xmlFree(h->href);
	h->href = NULL;
}

static void
html_leave(struct html_out *h, xmlNode *e)
{
	if (e->type != XML_ELEMENT_NODE)
		return;
	switch (html_kind(e)) {
	case H_PARA:
		html_break(h, 2);
		break;
	case H_PRE:
		html_break(h, 2);
		h->pre--;
		break;
	case H_LINE:
	case H_ITEM:
		html_break(h, 1);
		break;
	case H_CELL:
		h->space = 1;
		break;
	case H_LINK:
		if (h->in_link)
			html_link_end(h);
		break;
	case H_SKIP:
	case H_BR:
	case H_INLINE:
		break;
	}
}

/* Walks the document in order without recursion (tags nest as deep as a
 * stranger likes), each node entered once and left once. */
static void
html_walk(struct html_out *h, xmlDoc *doc)
{
	xmlNode *cur = doc->children;

	while (cur != NULL && !h->b.full && !h->b.oom) {
		if (html_enter(h, cur) && cur->children != NULL) {
			cur = cur->children;
			continue;
		}
		html_leave(h, cur);
		while (cur->next == NULL) {
			cur = cur->parent;
			if (cur == NULL || cur == (xmlNode *)doc)
				return;
			html_leave(h, cur);
		}
		cur = cur->next;
	}
}

/* Readable text of an HTML document (UTF-8), capped at
 * MIME_MAX_HTML_TEXT. */
static char *
html_to_text(struct norm *n, const char *html)
{
	struct html_out h = { .b = { .max = MIME_MAX_HTML_TEXT } };
	struct buf out = { .max = MIME_MAX_HTML_TEXT };
	size_t len = strlen(html), b, e;
	xmlDoc *doc;

	if (len > INT32_MAX)
		len = INT32_MAX;
	doc = htmlReadMemory(html, (int)len, NULL, "UTF-8", HTML_PARSE_RECOVER |
	    HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
	    HTML_PARSE_IGNORE_ENC);
	if (doc == NULL)
		return dup_str(n, "");
	html_walk(&h, doc);
	xmlFree(h.href);
	xmlFreeDoc(doc);
	out.oom = h.b.oom;
	trim(h.b.s ? h.b.s : "", h.b.len, &b, &e);
	clean_text(&out, h.b.s ? h.b.s + b : "", e - b, CLEAN_TEXT);
	buf_release(&h.b);
	return buf_take(n, &out);
}

/* ---- the whole mail --------------------------------------------------- */

static char *
sha256_key(struct norm *n, const char *raw, size_t len)
{
	unsigned char md[CRYPTO_SHA256_LEN];
	char *key = malloc(7 + 2 * CRYPTO_SHA256_LEN + 1);

	if (key == NULL || crypto_sha256(raw, len, md) < 0) {
		free(key);
		n->oom = 1;
		return NULL;
	}
	memcpy(key, "sha256:", 7);
	crypto_hex(md, sizeof(md), key + 7);
	return key;
}

/* The text of a mail whose structure is not parsed: what follows the
 * header, read as the top Content-Type would not be trusted anyway. */
static void
body_as_text(struct norm *n, const struct work *w)
{
	body_append(n, w->buf + w->body, w->len - w->body, NULL);
}

/* The header of the working copy alone. */
static void
header_only(struct norm *n, const struct work *w)
{
	struct mailimf_fields *f = NULL;
	size_t idx = 0;
	int rc;

	rc = mailimf_envelope_and_optional_fields_parse(w->buf, w->len, &idx,
	    &f);
	if (rc == MAILIMF_ERROR_MEMORY)
		n->oom = 1;
	if (rc != MAILIMF_NO_ERROR)
		return;
	header_take(n, f);
	mailimf_fields_free(f);
}

/* Header, tree and body of a mail within max_message_size. */
static void
message_parse(struct norm *n, const struct work *w)
{
	struct mailmime *mime = NULL;
	size_t idx = 0;
	int rc = MAILIMF_ERROR_PARSE;

	if (composites_ok(w->buf, w->len))
		rc = mailmime_parse(w->buf, w->len, &idx, &mime);
	if (rc == MAILIMF_ERROR_MEMORY)
		n->oom = 1;
	if (rc == MAILIMF_NO_ERROR && mime->mm_type == MAILMIME_MESSAGE) {
		header_take(n, mime->mm_data.mm_message.mm_fields);
		if (mime->mm_data.mm_message.mm_msg_mime != NULL)
			walk(n, mime->mm_data.mm_message.mm_msg_mime);
	} else {
		header_only(n, w);
	}
	/* No part at all (no tree, or a multipart whose boundary never
	 * came): the text after the header is all there is. */
	if (n->leaves == 0)
		body_as_text(n, w);
	if (mime != NULL)
		mailmime_free(mime);
}

static int
blank(const char *s)
{
	return s[strspn(s, " \t\r\n")] == '\0';
}

/* What needs the whole mail: dedupe key, From's stand-ins, the bounce
 * from MAILER-DAEMON or postmaster with the null sender, bounce_of, HTML
 * text. */
static void
finish(struct norm *n, const char *raw, size_t len)
{
	struct inbound_msg *m = n->m;

	m->dedupe_key = m->message_id != NULL ? dup_str(n, m->message_id) :
	    sha256_key(n, raw, len);
	if (m->from_address == NULL && n->sender != NULL)
		from_set(n, n->sender, NULL);
	/* A Return-Path is absent only when the mail skipped final
	 * delivery (the MDA writes one): then From alone has to tell. */
	if (m->from_address != NULL && n->return_path != RP_SENDER &&
	    (local_is(m->from_address, "mailer-daemon") ||
	    local_is(m->from_address, "postmaster")))
		m->auto_submitted |= INBOUND_AUTO_BOUNCE;
	if ((m->auto_submitted & INBOUND_AUTO_BOUNCE) && n->returned_id) {
		m->bounce_of = n->returned_id;
		n->returned_id = NULL;
	}
	if (n->html != NULL && (!n->has_body || n->body.len == 0 ||
	    blank(n->body.s)))
		m->html_text = html_to_text(n, n->html);
	else if (n->has_body)
		m->body = buf_take(n, &n->body);
}

/* The raw copy: whole, or the header block when over the limit. */
static void
raw_keep(struct norm *n, const char *raw, size_t len)
{
	struct inbound_msg *m = n->m;
	size_t keep = len;

	if (m->truncated) {
		keep = header_end(raw, len);
		if (keep > MIME_MAX_HEADER)
			keep = MIME_MAX_HEADER;
	}
	if ((m->raw = malloc(keep + 1)) == NULL) {
		n->oom = 1;
		return;
	}
	memcpy(m->raw, raw, keep);
	m->raw[keep] = '\0';
	m->raw_len = keep;
}

int
mime_unparsed(const char *raw, size_t len, const struct mime_limits *lim,
    const char *why, struct inbound_msg **out)
{
	struct norm n = { .lim = lim };
	int rc = -1;

	*out = NULL;
	if (raw == NULL)
		raw = "", len = 0;
	if ((n.m = calloc(1, sizeof(*n.m))) == NULL)
		goto fail;
	n.m->channel = CHANNEL_EMAIL;
	n.m->dedupe_scope = dup_str(&n, "email");
	n.m->from_scope = dup_str(&n, "email");
	n.m->subject = dup_str(&n, "(mail not parsed)");
	if (asprintf(&n.m->body, "escalon set this mail aside without reading "
	    "it: %s. Its raw source (%zu bytes) is kept with this message.",
	    why, len) < 0)
		n.m->body = NULL, n.oom = 1;
	n.m->truncated = len > lim->max_message_size;
	if (n.m->truncated)
		n.m->raw_size = (int64_t)len;
	raw_keep(&n, raw, len);
	/* Not the key a parsed mail without a Message-ID gets: handed in
	 * again once it can be read, it is a new message, not this one. */
	char *key = sha256_key(&n, raw, len);
	if (key != NULL && asprintf(&n.m->dedupe_key, "unparsed:%s", key) < 0)
		n.m->dedupe_key = NULL;
	if (n.m->dedupe_key == NULL)
		n.oom = 1;
	free(key);
	if (n.oom)
		goto fail;
	*out = n.m;
	n.m = NULL;
	rc = 0;
fail:
	inbound_msg_free(&n.m);
	return rc;
}

int
mime_normalize(const char *raw, size_t len, const struct mime_limits *lim,
    struct inbound_msg **out, char *err, size_t err_len)
{
	struct norm n = { .lim = lim, .body = { .max = MIME_MAX_BODY } };
	struct work w = { 0 };
	int rc = -1;

	*out = NULL;
	if (raw == NULL)
		raw = "", len = 0;
	/* Process-wide, set by this file as it is what has libetpan convert;
	 * any other libetpan conversion in the process gets ICU too. */
	extended_charconv = etpan_charconv;
	if ((n.m = calloc(1, sizeof(*n.m))) == NULL)
		goto fail;
	n.m->channel = CHANNEL_EMAIL;
	n.m->dedupe_scope = dup_str(&n, "email");
	n.m->from_scope = dup_str(&n, "email");
	n.m->truncated = len > lim->max_message_size;
	raw_keep(&n, raw, len);
	if (n.oom || work_prepare(&w, (const char *)n.m->raw,
	    n.m->raw_len) < 0)
		goto fail;
	if (n.m->truncated)
		header_only(&n, &w);
	else
		message_parse(&n, &w);
	finish(&n, raw, len);
	if (n.oom)
		goto fail;
	*out = n.m;
	n.m = NULL;
	rc = 0;
fail:
	if (rc < 0 && err != NULL && err_len > 0)
		snprintf(err, err_len, "out of memory");
	inbound_msg_free(&n.m);
	free(n.sender);
	free(n.html);
	free(n.returned_id);
	free(n.alts);
	buf_release(&n.body);
	free(w.buf);
	return rc;
}
