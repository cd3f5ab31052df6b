/* mail: compose outbound mail. See mail.h. */
#include "mail.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto.h"

struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
add(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
adds(struct buf *b, const char *s)
{
	add(b, s, strlen(s));
}

static int
ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x7f || ((unsigned char)*s < 0x20 &&
		    *s != '\t'))
			return 0;
	return 1;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Header lines (RFC 5322 2.1.1): at most 78 characters where a fold point
 * allows, never more than 998, or a server refuses the whole mail.
 */
#define LINE_SOFT	78
#define LINE_HARD	998

enum field {
	FIELD_TEXT,		/* unstructured: Subject, the template's */
	FIELD_STRUCTURED,	/* addresses, message ids, dates */
};

/* Only SP and HTAB fold; everything else that is not VCHAR gets encoded. */
static int
blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Appends ws then word to the line at *col, first starting a new line
 * (CRLF before ws, RFC 5322 2.2.3) when it would pass LINE_SOFT. ws is
 * never empty, so unfolding (removing the CRLF) gives back ws word.
 */
static void
fold_add(struct buf *b, size_t *col, const char *ws, size_t ws_len,
    const char *word, size_t word_len)
{
	if (*col + ws_len + word_len > LINE_SOFT) {
		adds(b, "\r\n");
		*col = 0;
	}
	add(b, ws, ws_len);
	add(b, word, word_len);
	*col += ws_len + word_len;
}

/*
 * value as RFC 2047 B-encoded UTF-8 words, each where it fits in
 * LINE_SOFT. The blanks between encoded words are not text (RFC 2047
 * 6.2), so a reader gets value back exactly: controls, runs of blanks and
 * words no line can hold included. A word holds at most 45 bytes (75
 * characters, the RFC's limit) and never splits a UTF-8 character.
 */
static void
encoded_words(struct buf *b, size_t *col, const char *value)
{
	const unsigned char *v = (const unsigned char *)value;
	size_t n = strlen(value), i = 0;

	while (i < n) {
		/* " =?UTF-8?B?" and "?=" take 13, base64 4 per 3 bytes. */
		size_t room = *col + 13 + 4 <= LINE_SOFT ?
		    (LINE_SOFT - *col - 13) / 4 * 3 : 0;
		size_t take = n - i < 45 ? n - i : 45, t;
		if (take > room)
			take = room;
		for (t = take; t > 0 && i + t < n && (v[i + t] & 0xc0) == 0x80;)
			t--;
		if (t == 0 && *col > 0) {
			/* A fresh line has room for any character. */
			adds(b, "\r\n");
			*col = 0;
			continue;
		}
		if (t > 0)	/* else not UTF-8: split it anywhere */
			take = t;
		adds(b, " =?UTF-8?B?");
		for (size_t k = 0; k < take; k += 3) {
			unsigned x = v[i + k] << 16 |
			    (k + 1 < take ? v[i + k + 1] << 8 : 0) |
			    (k + 2 < take ? v[i + k + 2] : 0);
			char q[4] = { b64[x >> 18 & 63], b64[x >> 12 & 63],
			    k + 1 < take ? b64[x >> 6 & 63] : '=',
			    k + 2 < take ? b64[x & 63] : '=' };
			add(b, q, 4);
		}
		adds(b, "?=");
		*col += 13 + (take + 2) / 3 * 4;
		i += take;
	}
}

/*
 * The header "Name: value", folded at its blanks. Values that are not
 * printable ASCII become encoded words (a CR or LF never ends the line).
 *
 * FIELD_TEXT comes back exactly as it went in: a value that plain words
 * would not give back is encoded whole. That is one with a word no line
 * of LINE_SOFT holds (the only way to break it), blanks at an end (readers
 * strip them), or "=?" (a reader would decode it).
 *
 * FIELD_STRUCTURED blanks are CFWS: any run is one fold point. Its words
 * (an address, a message id) stop being one when encoded, so a long one
 * gets a line of its own, and one longer than LINE_HARD allows is left
 * out: mime.c keeps Message-IDs of up to 1000 characters, and a mail that
 * carries one is refused whole. A header left with no word is not
 * written.
 */
static void
header(struct buf *b, const char *name, const char *value, enum field kind)
{
	size_t start = b->len, name_len = strlen(name), col = name_len + 1;
	size_t n = strlen(value);
	const char *p = value;
	int words = 0;

	adds(b, name);
	adds(b, ":");
	if (!ascii(value) || (kind == FIELD_TEXT && (strstr(value, "=?") ||
	    (n > 0 && (blank(value[0]) || blank(value[n - 1])))))) {
		encoded_words(b, &col, value);
		goto out;
	}
	while (*p != '\0') {
		size_t ws = strspn(p, " \t"), w = strcspn(p + ws, " \t");
		const char *word = p + ws;
		if (w == 0)
			break;	/* trailing blanks: CFWS */
		p = word + w;
		const char *sep = word - ws;
		if (word == value || kind == FIELD_STRUCTURED)
			sep = " ", ws = 1;	/* after the colon, or CFWS */
		if (kind == FIELD_TEXT && ws + w > LINE_SOFT) {
			col = name_len + 1;
			b->len = start + col;	/* back to "Name:" */
			encoded_words(b, &col, value);
			goto out;
		}
		if (ws + w > LINE_HARD)
			continue;
		fold_add(b, &col, sep, ws, word, w);
		words++;
	}
	if (kind == FIELD_STRUCTURED && words == 0) {
		b->len = start;		/* the next add() ends the string */
		return;
	}
out:
	adds(b, "\r\n");
}

/* Quoted-printable (RFC 2045), lines of at most 76, CRLF line ends. */
static void
quoted_printable(struct buf *b, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	int col = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		char enc[4];
		size_t n;
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			adds(b, "\r\n");
			col = 0;
			continue;
		}
		int blank_at_end = (*p == ' ' || *p == '\t') &&
		    (p[1] == '\n' || p[1] == '\r' || p[1] == '\0');
		if ((*p >= 33 && *p <= 126 && *p != '=') ||
		    ((*p == ' ' || *p == '\t') && !blank_at_end)) {
			enc[0] = (char)*p;
			n = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			n = 3;
		}
		/* A leading dot is safe in SMTP (curl dot-stuffs), but
		 * keep soft breaks so no line passes 76. */
		if (col + (int)n > 75) {
			adds(b, "=\r\n");
			col = 0;
		}
		add(b, enc, n);
		col += (int)n;
	}
	if (col > 0)
		adds(b, "\r\n");
}

static void
text_part(struct buf *b, const char *type, const char *text)
{
	adds(b, "Content-Type: ");
	adds(b, type);
	adds(b, "; charset=utf-8\r\nContent-Transfer-Encoding: "
	    "quoted-printable\r\n\r\n");
	quoted_printable(b, text);
}

static int
standard_header(const char *name)
{
	static const char *const ours[] = { "From", "To", "Cc", "Date",
	    "Message-ID", "Reply-To", "In-Reply-To", "References",
	    "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	    "Auto-Submitted", "X-Loop" };

	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (strcasecmp(name, ours[i]) == 0)
			return 1;
	return 0;
}

char *
mail_compose(const struct mail_out *m, size_t *len_r)
{
	struct buf b = { 0 };
	char date[64], boundary[64];
	unsigned char rnd[12];
	time_t t = (time_t)m->date;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	header(&b, "From", m->from, FIELD_STRUCTURED);
	header(&b, "To", m->to, FIELD_STRUCTURED);
	if (m->cc != NULL)
		header(&b, "Cc", m->cc, FIELD_STRUCTURED);
	if (m->reply_to != NULL)
		header(&b, "Reply-To", m->reply_to, FIELD_STRUCTURED);
	header(&b, "Date", date, FIELD_STRUCTURED);
	header(&b, "Message-ID", m->message_id, FIELD_STRUCTURED);
	if (m->in_reply_to != NULL)
		header(&b, "In-Reply-To", m->in_reply_to, FIELD_STRUCTURED);
	if (m->references != NULL || m->in_reply_to != NULL)
		header(&b, "References", m->references != NULL ?
		    m->references : m->in_reply_to, FIELD_STRUCTURED);
	if (m->x_loop != NULL)
		header(&b, "X-Loop", m->x_loop, FIELD_STRUCTURED);
	/* Template headers (Subject, and any the operator added); the
	 * gateway's own are not theirs to set. */
	for (size_t i = 0; i < m->r->n_headers; i++)
		if (!standard_header(m->r->headers[i].name))
			header(&b, m->r->headers[i].name,
			    m->r->headers[i].value, FIELD_TEXT);
	if (m->automatic != MAIL_PERSON)
		header(&b, "Auto-Submitted", m->automatic == MAIL_AUTO_REPLIED ?
		    "auto-replied" : "auto-generated", FIELD_STRUCTURED);
	header(&b, "MIME-Version", "1.0", FIELD_STRUCTURED);
	if (m->r->html == NULL) {
		text_part(&b, "text/plain", m->r->text);
	} else {
		char hexr[2 * sizeof(rnd) + 1];
		crypto_random(rnd, sizeof(rnd));
		crypto_hex(rnd, sizeof(rnd), hexr);
		snprintf(boundary, sizeof(boundary), "=_escalon_%s", hexr);
		adds(&b, "Content-Type: multipart/alternative; boundary=\"");
		adds(&b, boundary);
		adds(&b, "\"\r\n\r\n--");
		adds(&b, boundary);
		adds(&b, "\r\n");
		text_part(&b, "text/plain", m->r->text);
		adds(&b, "--");
		adds(&b, boundary);
		adds(&b, "\r\n");
		text_part(&b, "text/html", m->r->html);
		adds(&b, "--");
		adds(&b, boundary);
		adds(&b, "--\r\n");
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len_r = b.len;
	return b.p;
}

static void
token_of(const char *data, const char *secret, char *out)
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char mac[CRYPTO_SHA256_LEN];

	crypto_hmac_sha256(secret, strlen(secret), data, strlen(data), mac);
	/* 16 characters of 5 bits: the first 80 bits of the MAC. */
	for (int i = 0; i < MAIL_TOKEN_LEN; i++) {
		int bit = i * 5, byte = bit / 8, shift = bit % 8;
		unsigned v = (unsigned)mac[byte] << 8 | mac[byte + 1];
		out[i] = b32[(v >> (11 - shift)) & 31];
	}
	out[MAIL_TOKEN_LEN] = '\0';
}

void
mail_token(int64_t ticket_id, const char *secret, char *out)
{
	char data[48];

	snprintf(data, sizeof(data), "ticket:%lld", (long long)ticket_id);
	token_of(data, secret, out);
}

void
mail_message_id(int64_t ticket_id, uint64_t n, const char *secret,
    const char *domain, char *out, size_t len)
{
	char data[64], mac[MAIL_TOKEN_LEN + 1];

	snprintf(data, sizeof(data), "%lld-%llu", (long long)ticket_id,
	    (unsigned long long)n);
	token_of(data, secret, mac);
	snprintf(out, len, "<esc-%s.%s@%s>", data, mac, domain);
}

const char *
mail_domain(const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;

	return at != NULL && at[1] != '\0' ? at + 1 : "localhost";
}

int
mail_token_ok(int64_t ticket_id, const char *token, const char *secret)
{
	char want[MAIL_TOKEN_LEN + 1];

	if (token == NULL || strlen(token) != MAIL_TOKEN_LEN)
		return 0;
	mail_token(ticket_id, secret, want);
	return crypto_equal(want, token, MAIL_TOKEN_LEN);
}

/* Digits only, no sign, no leading zero, fits: the ticket id of a token. */
static int
parse_id(const char *p, size_t n, int64_t *id_r)
{
	int64_t id = 0;

	if (n == 0 || n > 18 || p[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		id = id * 10 + (p[i] - '0');
	}
	*id_r = id;
	return 0;
}

int
mail_reply_address_ticket(const char *address, const char *ours,
    const char *secret, int64_t *ticket_r)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	const char *our_at = ours != NULL ? strrchr(ours, '@') : NULL;
	size_t local = our_at != NULL ? (size_t)(our_at - ours) : 0;
	char token[MAIL_TOKEN_LEN + 1];
	int64_t id;

	/* local+ID.TOKEN@domain, local and domain ours. */
	if (at == NULL || our_at == NULL || strcasecmp(at, our_at) != 0 ||
	    strncasecmp(address, ours, local) != 0 || address[local] != '+')
		return 0;
	const char *p = address + local + 1, *dot = memchr(p, '.',
	    (size_t)(at - p));
	if (dot == NULL || parse_id(p, (size_t)(dot - p), &id) < 0 ||
	    (size_t)(at - dot - 1) != MAIL_TOKEN_LEN)
		return 0;
	memcpy(token, dot + 1, MAIL_TOKEN_LEN);
	token[MAIL_TOKEN_LEN] = '\0';
	/* Agents' clients may change case; the token is lowercase base32. */
	for (char *q = token; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	if (!mail_token_ok(id, token, secret))
		return -1;
	*ticket_r = id;
	return 1;
}

int
mail_message_id_ticket(const char *message_id, const char *secret,
    int64_t *ticket_r)
{
	const char *p, *dash, *dot, *at;
	char data[64], mac[MAIL_TOKEN_LEN + 1];
	int64_t id;

	if (message_id == NULL || strncmp(message_id, "<esc-", 5) != 0)
		return 0;
	p = message_id + 5;
	if ((at = strchr(p, '@')) == NULL ||
	    (dash = memchr(p, '-', (size_t)(at - p))) == NULL ||
	    (dot = memchr(dash, '.', (size_t)(at - dash))) == NULL ||
	    parse_id(p, (size_t)(dash - p), &id) < 0 ||
	    (size_t)(at - dot - 1) != MAIL_TOKEN_LEN ||
	    (size_t)(dot - p) >= sizeof(data))
		return 0;
	memcpy(data, p, (size_t)(dot - p));
	data[dot - p] = '\0';
	token_of(data, secret, mac);
	if (!crypto_equal(mac, dot + 1, MAIL_TOKEN_LEN))
		return -1;
	*ticket_r = id;
	return 1;
}
