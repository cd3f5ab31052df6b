/*
 * test_mail: the signed identifiers of SPEC.md "Agents by email" (reply
 * tokens in <local>+<id>.<token>@<domain>, Message-IDs
 * <esc-ID-N.MAC@domain>) and the basics of mail_compose.
 *
 * Known answers were computed outside escalon (Python's hmac and
 * base64.b32encode of the first 10 bytes of HMAC-SHA256, lowercased), so a
 * change in the token's bit order or alphabet fails here, not only in a
 * round trip.
 *
 * Header folding is checked against a reader: libetpan unfolds and decodes
 * RFC 2047 words, and must give back the text that went in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <libetpan/libetpan.h>

#include "mail.h"

#define SECRET		"s3cret-for-tests"
#define OTHER_SECRET	"another-secret"
#define OURS		"support@example.test"

/* HMAC-SHA256(SECRET, "ticket:12") etc., first 80 bits, base32. */
#define TOK12		"7nqnkogkuzuc4mds"
#define TOK13		"mn6ndbyqdtj4pw5j"
#define TOK12_OTHER	"v5xyxgogkvs7ciop"	/* under OTHER_SECRET */
#define MID12_3		"<esc-12-3.vc66h4gdfii53ct4@example.test>"

/* ---- reply tokens ----------------------------------------------------- */

static void
test_token_known_answer(void **state)
{
	char tok[MAIL_TOKEN_LEN + 1];

	(void)state;
	mail_token(12, SECRET, tok);
	assert_string_equal(tok, TOK12);
	mail_token(13, SECRET, tok);
	assert_string_equal(tok, TOK13);
	mail_token(12, OTHER_SECRET, tok);
	assert_string_equal(tok, TOK12_OTHER);
}

/* 16 lowercase base32 characters, accepted for their ticket only. */
static void
test_token_shape_and_ok(void **state)
{
	static const int64_t ids[] = { 1, 2, 9, 10, 12, 99, 100, 4711,
	    1000000, INT64_C(999999999999999999) };
	char tok[MAIL_TOKEN_LEN + 1], other[MAIL_TOKEN_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		mail_token(ids[i], SECRET, tok);
		assert_int_equal(strlen(tok), MAIL_TOKEN_LEN);
		assert_int_equal(strspn(tok, "abcdefghijklmnopqrstuvwxyz234567"),
		    MAIL_TOKEN_LEN);
		assert_int_equal(mail_token_ok(ids[i], tok, SECRET), 1);
		assert_int_equal(mail_token_ok(ids[i] + 1, tok, SECRET), 0);
		assert_int_equal(mail_token_ok(ids[i], tok, OTHER_SECRET), 0);
		mail_token(ids[i] + 1, SECRET, other);
		assert_string_not_equal(tok, other);
	}
}

static void
test_token_ok_refuses(void **state)
{
	(void)state;
	assert_int_equal(mail_token_ok(12, TOK12, SECRET), 1);
	assert_int_equal(mail_token_ok(13, TOK12, SECRET), 0);
	assert_int_equal(mail_token_ok(12, TOK13, SECRET), 0);
	assert_int_equal(mail_token_ok(12, TOK12_OTHER, SECRET), 0);
	assert_int_equal(mail_token_ok(12, "7nqnkogkuzuc4md", SECRET), 0);
	assert_int_equal(mail_token_ok(12, TOK12 "a", SECRET), 0);
	assert_int_equal(mail_token_ok(12, "", SECRET), 0);
	assert_int_equal(mail_token_ok(12, NULL, SECRET), 0);
}

/* ---- reply addresses -------------------------------------------------- */

#define NOT_ONE 2	/* want: anything but 1 (0 or -1 both refuse) */

struct addr_case {
	const char *address;
	int want;		/* 1, 0, -1, or NOT_ONE */
	int64_t id;		/* when want is 1 */
};

static const struct addr_case addr_cases[] = {
	/* valid */
	{ "support+12." TOK12 "@example.test", 1, 12 },
	{ "support+12.7NQNKOGKUZUC4MDS@example.test", 1, 12 },	/* upper */
	{ "support+12.7nQnKoGkUzUc4MdS@example.test", 1, 12 },
	{ "Support+12." TOK12 "@Example.TEST", 1, 12 },
	/* a well-formed token that is not this ticket's: forged */
	{ "support+13." TOK12 "@example.test", -1, 0 },
	{ "support+12." TOK13 "@example.test", -1, 0 },
	{ "support+12." TOK12_OTHER "@example.test", -1, 0 },
	{ "support+12.aaaaaaaaaaaaaaaa@example.test", -1, 0 },
	/* truncated or overlong tokens */
	{ "support+12.7nqnkogkuzuc4md@example.test", NOT_ONE, 0 },
	{ "support+12.7nqnkogk@example.test", NOT_ONE, 0 },
	{ "support+12.@example.test", NOT_ONE, 0 },
	{ "support+12." TOK12 "x@example.test", NOT_ONE, 0 },
	/* not our address */
	{ "support+12." TOK12 "@example.org", 0, 0 },
	{ "support+12." TOK12 "@mail.example.test", 0, 0 },
	{ "support+12." TOK12 "@example.test.evil.test", 0, 0 },
	{ "sales+12." TOK12 "@example.test", 0, 0 },
	{ "supportx+12." TOK12 "@example.test", 0, 0 },
	{ "xsupport+12." TOK12 "@example.test", 0, 0 },
	{ "support-12." TOK12 "@example.test", 0, 0 },
	{ "supportx12." TOK12 "@example.test", 0, 0 },
	{ "support@example.test", 0, 0 },
	{ "support", 0, 0 },
	{ "", 0, 0 },
	/* the id part */
	{ "support+0012." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support+012." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support+0." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support+-12." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support++12." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support+ 12." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support+12a." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support+." TOK12 "@example.test", NOT_ONE, 0 },
	/* 2^64 + 12 and 2^63 + 12: wrapping arithmetic would give 12 */
	{ "support+18446744073709551628." TOK12 "@example.test", NOT_ONE,
	    0 },
	{ "support+9223372036854775820." TOK12 "@example.test", NOT_ONE, 0 },
	{ "support+99999999999999999999999999." TOK12 "@example.test",
	    NOT_ONE, 0 },
	/* no dot between id and token */
	{ "support+12" TOK12 "@example.test", 0, 0 },
	{ "support+12-" TOK12 "@example.test", 0, 0 },
};

static void
test_reply_address(void **state)
{
	const struct addr_case *c = *state;
	int64_t id = -7;
	int rc;

	rc = mail_reply_address_ticket(c->address, OURS, SECRET, &id);
	if (c->want == NOT_ONE) {
		if (rc == 1)
			fail_msg("\"%s\" accepted as ticket %lld", c->address,
			    (long long)id);
		assert_true(rc == 0 || rc == -1);
	} else if (rc != c->want) {
		fail_msg("\"%s\": %d, want %d", c->address, rc, c->want);
	}
	if (rc == 1)
		assert_int_equal(id, c->id);
	else
		assert_int_equal(id, -7);	/* left alone */
}

static void
test_reply_address_round_trip(void **state)
{
	static const int64_t ids[] = { 1, 7, 12, 100000,
	    INT64_C(999999999999999999) };
	char tok[MAIL_TOKEN_LEN + 1], addr[128];
	int64_t id;

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		mail_token(ids[i], SECRET, tok);
		snprintf(addr, sizeof(addr), "support+%lld.%s@example.test",
		    (long long)ids[i], tok);
		/* SPEC: the local part stays under 64 octets. */
		assert_true(strchr(addr, '@') - addr < 64);
		id = 0;
		assert_int_equal(mail_reply_address_ticket(addr, OURS, SECRET,
		    &id), 1);
		assert_int_equal(id, ids[i]);
		assert_int_equal(mail_reply_address_ticket(addr, OURS,
		    OTHER_SECRET, &id), -1);
	}
	assert_int_equal(mail_reply_address_ticket(NULL, OURS, SECRET, &id),
	    0);
}

/* ---- Message-IDs ------------------------------------------------------ */

static void
test_message_id_known_answer(void **state)
{
	char mid[128];
	int64_t id = 0;

	(void)state;
	mail_message_id(12, 3, SECRET, "example.test", mid, sizeof(mid));
	assert_string_equal(mid, MID12_3);
	assert_int_equal(mail_message_id_ticket(mid, SECRET, &id), 1);
	assert_int_equal(id, 12);
}

static void
test_message_id_round_trip(void **state)
{
	static const struct { int64_t id; uint64_t n; } v[] = {
		{ 1, 0 }, { 12, 1 }, { 12, 2 }, { 4711, 99 },
		{ INT64_C(999999999999999999), UINT64_MAX },
	};
	char mid[128], mid2[128];
	int64_t id;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		mail_message_id(v[i].id, v[i].n, SECRET, "mail.example.test",
		    mid, sizeof(mid));
		assert_true(mid[0] == '<' && mid[strlen(mid) - 1] == '>');
		id = 0;
		assert_int_equal(mail_message_id_ticket(mid, SECRET, &id), 1);
		assert_int_equal(id, v[i].id);
		assert_int_equal(mail_message_id_ticket(mid, OTHER_SECRET,
		    &id), -1);
		/* Each message of a ticket gets an id of its own. */
		mail_message_id(v[i].id, v[i].n + 1, SECRET,
		    "mail.example.test", mid2, sizeof(mid2));
		assert_string_not_equal(mid, mid2);
	}
}

/* Any one character of the MAC changed: forged. */
static void
test_message_id_tampered(void **state)
{
	char mid[128];
	char *mac;
	int64_t id = -7;

	(void)state;
	for (size_t i = 0; i < MAIL_TOKEN_LEN; i++) {
		snprintf(mid, sizeof(mid), "%s", MID12_3);
		mac = strchr(mid, '.') + 1;
		mac[i] = mac[i] == 'a' ? 'b' : 'a';
		assert_int_equal(mail_message_id_ticket(mid, SECRET, &id), -1);
	}
	assert_int_equal(id, -7);
}

struct mid_case {
	const char *mid;
	int want;		/* 0, -1, or NOT_ONE */
};

static const struct mid_case mid_cases[] = {
	/* the ticket or message number changed, the MAC kept */
	{ "<esc-13-3.vc66h4gdfii53ct4@example.test>", -1 },
	{ "<esc-12-4.vc66h4gdfii53ct4@example.test>", -1 },
	{ "<esc-1-23.vc66h4gdfii53ct4@example.test>", -1 },
	{ "<esc-012-3.vc66h4gdfii53ct4@example.test>", NOT_ONE },
	{ "<esc-18446744073709551628-3.vc66h4gdfii53ct4@example.test>",
	    NOT_ONE },
	/* the MAC of another secret */
	{ "<esc-12-3.aaaaaaaaaaaaaaaa@example.test>", -1 },
	/* not of that form */
	{ "<esc-12@x>", 0 },
	{ "<esc-12-3@example.test>", 0 },
	{ "<esc-12-3.vc66h4gd@example.test>", 0 },
	{ "<esc-12-3.vc66h4gdfii53ct4x@example.test>", 0 },
	{ "<esc-.vc66h4gdfii53ct4@example.test>", 0 },
	{ "<esc--3.vc66h4gdfii53ct4@example.test>", 0 },
	{ "esc-12-3.vc66h4gdfii53ct4@example.test", 0 },
	{ "<ESC-12-3.vc66h4gdfii53ct4@example.test>", 0 },
	{ "<CAF=3kq9xQ@mail.gmail.com>", 0 },
	{ "<20261130091402.GA1234@host.example.test>", 0 },
	{ "<>", 0 },
	{ "", 0 },
};

static void
test_message_id_refused(void **state)
{
	int64_t id = -7;
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof(mid_cases) / sizeof(mid_cases[0]);
	    i++) {
		const struct mid_case *c = &mid_cases[i];
		rc = mail_message_id_ticket(c->mid, SECRET, &id);
		if (c->want == NOT_ONE ? rc == 1 : rc != c->want)
			fail_msg("\"%s\": %d, want %s%d", c->mid, rc,
			    c->want == NOT_ONE ? "not " : "",
			    c->want == NOT_ONE ? 1 : c->want);
	}
	assert_int_equal(mail_message_id_ticket(NULL, SECRET, &id), 0);
	assert_int_equal(id, -7);
}

static void
test_domain(void **state)
{
	(void)state;
	assert_string_equal(mail_domain("a@b.test"), "b.test");
	assert_string_equal(mail_domain("Support <support@example.test"),
	    "example.test");
	assert_string_equal(mail_domain("nobody"), "localhost");
	assert_string_equal(mail_domain("trailing@"), "localhost");
	assert_string_equal(mail_domain(NULL), "localhost");
}

/* ---- mail_compose ----------------------------------------------------- */

static struct rendered_header tmpl_headers[] = {
	{ "Subject", "[ESC-12] Printer shows E42" },
	{ "From", "evil@attacker.test" },	/* not the template's to set */
	{ "X-Escalon-Ticket", "ESC-12" },
};

static struct rendered tmpl = {
	.headers = tmpl_headers,
	.n_headers = sizeof(tmpl_headers) / sizeof(tmpl_headers[0]),
	.text = "Hello Erika,\n\nwe are on it.\n",
	.html = NULL,
};

static struct mail_out
base_mail(void)
{
	struct mail_out m = {
		.from = "Acme Support <support@example.test>",
		.to = "erika@example.test",
		.message_id = "<esc-12-3.vc66h4gdfii53ct4@example.test>",
		.date = 0,
		.automatic = MAIL_PERSON,
		.r = &tmpl,
	};

	return m;
}

static char *
compose(const struct mail_out *m)
{
	size_t len = 0;
	char *s = mail_compose(m, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

/* The header block: up to and with the first empty line. */
static size_t
head_len(const char *msg)
{
	const char *end = strstr(msg, "\r\n\r\n");

	assert_non_null(end);
	return (size_t)(end - msg) + 2;
}

/* The header field "Name: ...\r\n" with its folded lines, as it stands
 * (heap), or NULL when absent; fails when present twice. */
static char *
field(const char *msg, const char *name)
{
	size_t head = head_len(msg), n = strlen(name);
	const char *found = NULL;

	for (const char *p = msg; p < msg + head;) {
		const char *eol = strstr(p, "\r\n");
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			if (found != NULL)
				fail_msg("%s: twice in\n%.*s", name, (int)head,
				    msg);
			found = p;
		}
		p = eol + 2;
	}
	if (found == NULL)
		return NULL;
	const char *end = found;
	do
		end = strstr(end, "\r\n") + 2;
	while (*end == ' ' || *end == '\t');
	return strndup(found, (size_t)(end - found));
}

static void
expect_field(const char *msg, const char *name, const char *want)
{
	char *got = field(msg, name);

	if (got == NULL)
		fail_msg("no %s in\n%s", name, msg);
	assert_string_equal(got, want);
	free(got);
}

static void
expect_no_field(const char *msg, const char *name)
{
	char *got = field(msg, name);

	if (got != NULL)
		fail_msg("unexpected %s", got);
}

/* CRLF only, no header line over max characters. */
static void
expect_lines_within(const char *msg, size_t max)
{
	size_t head = head_len(msg);

	for (const char *p = msg; *p != '\0'; p++) {
		if (*p == '\n')
			assert_true(p > msg && p[-1] == '\r');
		if (*p == '\r')
			assert_true(p[1] == '\n');
	}
	for (const char *p = msg; p < msg + head;) {
		const char *eol = strstr(p, "\r\n");
		if ((size_t)(eol - p) > max)
			fail_msg("header line over %zu: %.*s", max,
			    (int)(eol - p), p);
		p = eol + 2;
	}
}

static void
expect_wire_form(const char *msg)
{
	expect_lines_within(msg, 78);
}

static void
test_compose_basic(void **state)
{
	struct mail_out m = base_mail();
	char *s;

	(void)state;
	s = compose(&m);
	expect_wire_form(s);
	expect_field(s, "From", "From: Acme Support <support@example.test>\r\n");
	expect_field(s, "To", "To: erika@example.test\r\n");
	expect_field(s, "Date", "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	expect_field(s, "Message-ID",
	    "Message-ID: <esc-12-3.vc66h4gdfii53ct4@example.test>\r\n");
	expect_field(s, "Subject", "Subject: [ESC-12] Printer shows E42\r\n");
	expect_field(s, "X-Escalon-Ticket", "X-Escalon-Ticket: ESC-12\r\n");
	expect_field(s, "MIME-Version", "MIME-Version: 1.0\r\n");
	expect_no_field(s, "Cc");
	expect_no_field(s, "Reply-To");
	expect_no_field(s, "In-Reply-To");
	expect_no_field(s, "References");
	expect_no_field(s, "X-Loop");
	expect_no_field(s, "Auto-Submitted");
	assert_non_null(strstr(s, "\r\n\r\nHello Erika,\r\n\r\nwe are on it."
	    "\r\n"));
	free(s);
}

static void
test_compose_cc_reply_to_loop(void **state)
{
	struct mail_out m = base_mail();
	char *s;

	(void)state;
	m.cc = "bob@example.test, carol@example.test";
	m.reply_to = "support+12." TOK12 "@example.test";
	m.x_loop = "support@example.test";
	s = compose(&m);
	expect_wire_form(s);
	expect_field(s, "Cc", "Cc: bob@example.test, carol@example.test\r\n");
	expect_field(s, "Reply-To",
	    "Reply-To: support+12." TOK12 "@example.test\r\n");
	expect_field(s, "X-Loop", "X-Loop: support@example.test\r\n");
	free(s);
}

static void
test_compose_references(void **state)
{
	struct mail_out m = base_mail();
	char *s;

	(void)state;
	m.in_reply_to = "<c@example.test>";
	m.references = "<a@example.test> <b@example.test>\t <c@example.test> ";
	s = compose(&m);
	expect_wire_form(s);
	expect_field(s, "In-Reply-To", "In-Reply-To: <c@example.test>\r\n");
	expect_field(s, "References", "References: <a@example.test> "
	    "<b@example.test> <c@example.test>\r\n");
	free(s);

	/* No References given: In-Reply-To stands for them. */
	m.references = NULL;
	s = compose(&m);
	expect_field(s, "References", "References: <c@example.test>\r\n");
	free(s);

	/* Long ids stay whole, each on a line of its own. */
	m.references = "<esc-999999999999999999-18446744073709551615."
	    "vc66h4gdfii53ct4@a-rather-long-mail-domain.example.test> "
	    "<CAF=3kq9xQAbCdEfGhIjKlMnOpQrStUvWxYz0123456789@mail.gmail.com>";
	s = compose(&m);
	expect_field(s, "References",
	    "References:\r\n <esc-999999999999999999-18446744073709551615."
	    "vc66h4gdfii53ct4@a-rather-long-mail-domain.example.test>\r\n"
	    " <CAF=3kq9xQAbCdEfGhIjKlMnOpQrStUvWxYz0123456789@mail.gmail.com>"
	    "\r\n");
	free(s);
}

static void
test_compose_auto_submitted(void **state)
{
	static const struct {
		enum mail_auto a;
		const char *want;	/* NULL: no header */
	} v[] = {
		{ MAIL_PERSON, NULL },
		{ MAIL_AUTO_GENERATED, "Auto-Submitted: auto-generated\r\n" },
		{ MAIL_AUTO_REPLIED, "Auto-Submitted: auto-replied\r\n" },
	};
	struct mail_out m = base_mail();
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		m.automatic = v[i].a;
		s = compose(&m);
		if (v[i].want == NULL)
			expect_no_field(s, "Auto-Submitted");
		else
			expect_field(s, "Auto-Submitted", v[i].want);
		free(s);
	}
}

/* A CR or LF in a value never starts a header line of its own. */
static void
test_compose_no_header_injection(void **state)
{
	struct mail_out m = base_mail();
	char *s;

	(void)state;
	m.cc = "bob@example.test\r\nBcc: spy@attacker.test";
	m.x_loop = "support@example.test\nX-Injected: 1";
	s = compose(&m);
	expect_wire_form(s);
	expect_no_field(s, "Bcc");
	expect_no_field(s, "X-Injected");
	free(s);
}

/* ---- folding (RFC 5322 2.2.3, RFC 2047) ------------------------------- */

/* prefix, then unit count times, then suffix (heap). */
static char *
repeat(const char *prefix, const char *unit, size_t count,
    const char *suffix)
{
	size_t n = strlen(prefix), u = strlen(unit);
	char *s = malloc(n + u * count + strlen(suffix) + 1);

	assert_non_null(s);
	memcpy(s, prefix, n);
	for (size_t i = 0; i < count; i++, n += u)
		memcpy(s + n, unit, u);
	strcpy(s + n, suffix);
	return s;
}

/*
 * Header name as a reader sees it (heap): unfolded (every CRLF in a field
 * is a fold, or its end), the blank after the colon gone, RFC 2047 words
 * decoded by libetpan. Plain text is not handed to libetpan, which would
 * squeeze its blanks.
 */
static char *
read_field(const char *msg, const char *name)
{
	char *raw = field(msg, name), *v, *out = NULL;
	size_t n = 0, index = 0;

	if (raw == NULL)
		fail_msg("no %s in\n%s", name, msg);
	for (const char *p = raw; *p != '\0'; p++)
		if (*p != '\r' && *p != '\n')
			raw[n++] = *p;
	raw[n] = '\0';
	v = raw + strlen(name) + 1;
	assert_int_equal(*v, ' ');
	v++;
	if (strstr(v, "=?") == NULL)
		out = strdup(v);
	else
		assert_int_equal(mailmime_encoded_phrase_parse("us-ascii", v,
		    strlen(v), &index, "utf-8", &out), MAILIMF_NO_ERROR);
	free(raw);
	assert_non_null(out);
	return out;
}

#define LONG_NAME "X-Escalon-A-Rather-Long-Header-Name-An-Operator-Added"

static const struct fold_case {
	const char *what, *prefix, *unit;
	size_t count;
	const char *suffix;
	int encoded;		/* 1: only encoded words give it back */
} fold_cases[] = {
	{ "1,600 characters of words", "Re: ", "Printer on fire ", 100,
	    "now", 0 },
	{ "the same, ending in a blank", "Re: ", "Printer on fire ", 100,
	    "", 1 },
	{ "2,000 characters, no blank", "", "x", 2000, "", 1 },
	{ "Re: and 2,000 without a blank", "Re: ", "x", 2000, "", 1 },
	{ "a word of 77 fits a line", "Re: ", "y", 77, " z", 0 },
	{ "a word of 78 does not", "Re: ", "y", 78, " z", 1 },
	{ "runs of blanks and tabs kept", "Re: ", "Printer  on\tfire ", 90,
	    "end", 0 },
	{ "long non-ASCII", "Re: ", "Réclamation facture n° 4711 – ", 60,
	    "fin", 1 },
	{ "4-byte characters, never split", "", "\xf0\x9f\x94\xa5", 500, "",
	    1 },
	{ "text that looks encoded", "Re: =?x-unknown?Q?broken=ZZ?= ", "ab ",
	    40, "c", 1 },
	{ "a blank first", " ", "Printer on fire ", 10, "now", 1 },
	{ "a control character", "Re: a", "\x01", 3, "b", 1 },
};

/*
 * Subject and an operator's header: every line within 78 (998 only for a
 * word no encoding can break, and these have none), and a reader gets the
 * text back exactly.
 */
static void
test_compose_folds_text(void **state)
{
	const struct fold_case *c = *state;
	char *value = repeat(c->prefix, c->unit, c->count, c->suffix);
	struct rendered_header h[] = {
		{ "Subject", value }, { LONG_NAME, value },
	};
	struct rendered r = tmpl;
	struct mail_out m = base_mail();
	char *s, *got, *raw;

	r.headers = h;
	r.n_headers = 2;
	m.r = &r;
	s = compose(&m);
	expect_wire_form(s);
	for (size_t i = 0; i < 2; i++) {
		raw = field(s, h[i].name);
		assert_non_null(raw);
		if ((strstr(raw, "=?UTF-8?B?") != NULL) != c->encoded)
			fail_msg("%s: %s encoded:\n%s", c->what,
			    c->encoded ? "not" : "", raw);
		got = read_field(s, h[i].name);
		if (strcmp(got, value) != 0)
			fail_msg("%s: read back\n[%s]\nnot\n[%s]", c->what, got,
			    value);
		free(got);
		free(raw);
	}
	free(s);
	free(value);
}

/* Long display names and many Cc: folded between words, read back. */
static void
test_compose_folds_addresses(void **state)
{
	char *cc = repeat("", "person-with-a-long-name@customers.example.test, ",
	    60, "last@customers.example.test");
	struct mail_out m = base_mail();
	char *s, *got;

	(void)state;
	m.from = "Acme Customer Support Team of the Northern Region and Its "
	    "Many Subsidiaries Branches and Partner Offices Worldwide "
	    "<support@example.test>";
	m.to = "Erika Mustermann of the Accounts Payable Department at the "
	    "Head Office <erika@example.test>";
	m.cc = cc;
	m.reply_to = "Acme Support Replies for Ticket Twelve of the Northern "
	    "Region <support+12." TOK12 "@example.test>";
	s = compose(&m);
	expect_wire_form(s);
	const char *names[] = { "From", "To", "Cc", "Reply-To" };
	const char *want[] = { m.from, m.to, m.cc, m.reply_to };
	for (size_t i = 0; i < 4; i++) {
		got = read_field(s, names[i]);
		assert_string_equal(got, want[i]);
		free(got);
	}
	free(s);
	free(cc);
}

/*
 * A message id cannot be folded or encoded: up to 997 characters it gets
 * a line of its own (998 with the blank); a longer one (mime.c keeps them
 * up to 1000) is left out rather than have the whole mail refused.
 */
static void
test_compose_long_message_ids(void **state)
{
	char *fits = repeat("<", "a", 997 - 15, "@example.test>");
	char *over = repeat("<", "b", 998 - 15, "@example.test>");
	char *refs, *want;
	struct mail_out m = base_mail();
	char *s;

	(void)state;
	assert_int_equal(strlen(fits), 997);
	assert_int_equal(strlen(over), 998);
	assert_true(asprintf(&refs, "<a@example.test> %s %s <c@example.test>",
	    fits, over) > 0);
	m.in_reply_to = fits;
	m.references = refs;
	s = compose(&m);
	expect_lines_within(s, 998);
	assert_true(asprintf(&want, "In-Reply-To:\r\n %s\r\n", fits) > 0);
	expect_field(s, "In-Reply-To", want);
	free(want);
	assert_true(asprintf(&want, "References: <a@example.test>\r\n %s\r\n"
	    " <c@example.test>\r\n", fits) > 0);
	expect_field(s, "References", want);
	free(want);
	free(s);

	/* Nothing left to write: no header at all. */
	m.in_reply_to = over;
	m.references = NULL;
	s = compose(&m);
	expect_wire_form(s);
	expect_no_field(s, "In-Reply-To");
	expect_no_field(s, "References");
	free(s);
	free(refs);
	free(over);
	free(fits);
}

int
main(void)
{
	struct CMUnitTest tests[96];
	size_t n = 0;

	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_token_known_answer);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_token_shape_and_ok);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_token_ok_refuses);
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]);
	    i++)
		tests[n++] = (struct CMUnitTest){
		    .name = addr_cases[i].address[0] != '\0' ?
		    addr_cases[i].address : "(empty address)",
		    .test_func = test_reply_address,
		    .initial_state = (void *)&addr_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_reply_address_round_trip);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_message_id_known_answer);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_message_id_round_trip);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_message_id_tampered);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_message_id_refused);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_domain);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_compose_basic);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_compose_cc_reply_to_loop);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_compose_references);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_compose_auto_submitted);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_compose_no_header_injection);
	for (size_t i = 0; i < sizeof(fold_cases) / sizeof(fold_cases[0]);
	    i++)
		tests[n++] = (struct CMUnitTest){
		    .name = fold_cases[i].what,
		    .test_func = test_compose_folds_text,
		    .initial_state = (void *)&fold_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_compose_folds_addresses);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_compose_long_message_ids);
	if (n > sizeof(tests) / sizeof(tests[0]))
		abort();		/* grow tests[] */

	return _cmocka_run_group_tests("test_mail", tests, n, NULL, NULL);
}
