/*
 * test_mime: mime_normalize (mime.h), the mail half of SPEC.md "Ticket":
 * dedupe keys, threading headers, automatic mail and bounces.
 *
 * - Hand-written fixtures (tests/data/mime/NAME.eml), one test each with
 *   the fields that matter asserted, and line-end variants made here.
 * - Golden dumps: each fixture has NAME.golden, and chosen mails of the
 *   shared corpus have tests/data/mime/corpus/FILE.golden. UPDATE_GOLDEN=1
 *   rewrites them (read the diff before committing it).
 * - The whole corpus (../shared/corpus/mail, or $ESCALON_CORPUS; skipped
 *   when absent): every mail normalises, every string is valid UTF-8
 *   without NUL, and the bounce and autoreply kinds of its INDEX.tsv are
 *   flagged but for the known exceptions listed below.
 * - Hostile mail made here: long header lines, many parts, deep nesting,
 *   many and big HTML. Each must finish with valid output; the time taken
 *   goes to stderr, no assertion is made on it.
 *
 * Run from the repository root (as `make unit` does): fixtures are found
 * through relative paths.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "channel.h"
#include "mime.h"

#include "testutil.h"

#define DATA_DIR	"tests/data/mime"
#define CORPUS_GOLDEN	"tests/data/mime/corpus"
#define OWN_ADDRESS	"support@example.test"

static const struct mime_limits limits = {
	.max_message_size = 1024 * 1024,
	.max_attachment_size = 64 * 1024,
	.own_address = OWN_ADDRESS,
};

/* ---- helpers ---------------------------------------------------------- */


static struct inbound_msg *
normalize_with(const char *raw, size_t len, const struct mime_limits *lim)
{
	struct inbound_msg *m = NULL;
	char err[100] = "";

	assert_int_equal(mime_normalize(raw, len, lim, &m, err, sizeof(err)),
	    0);
	assert_non_null(m);
	return m;
}

static struct inbound_msg *
normalize_str(const char *raw)
{
	return normalize_with(raw, strlen(raw), &limits);
}

/* A fixture of tests/data/mime, normalised with the default limits. */
static struct inbound_msg *
fixture(const char *name)
{
	char path[256];
	size_t len;
	char *raw;
	struct inbound_msg *m;

	snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
	raw = test_read_file(path, &len);
	if (raw == NULL)
		fail_msg("cannot read %s (run from the repository root)", path);
	m = normalize_with(raw, len, &limits);
	free(raw);
	return m;
}

/* 1 when s is valid UTF-8 (no overlong form, surrogate or code point
 * over U+10FFFF) and holds no NUL; NULL counts as valid. */
static int
utf8_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL)
		return 1;
	while (*p != '\0') {
		unsigned c = *p++;
		int more;
		uint32_t cp;
		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07;
		else
			return 0;
		for (int i = 0; i < more; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (*p & 0x3f);
		}
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
	}
	return 1;
}

/* The first string of m that is not clean UTF-8 (its field's name), or
 * NULL when all are. */
static const char *
bad_string(const struct inbound_msg *m)
{
	const struct {
		const char *name, *value;
	} fields[] = {
		{ "dedupe_scope", m->dedupe_scope },
		{ "dedupe_key", m->dedupe_key },
		{ "from_scope", m->from_scope },
		{ "from_address", m->from_address },
		{ "from_name", m->from_name }, { "from_email", m->from_email },
		{ "subject", m->subject }, { "body", m->body },
		{ "html_text", m->html_text }, { "message_id", m->message_id },
		{ "in_reply_to", m->in_reply_to },
		{ "bounce_of", m->bounce_of },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
		if (!utf8_clean(fields[i].value))
			return fields[i].name;
	for (size_t i = 0; i < m->n_references; i++)
		if (m->references[i] == NULL || !utf8_clean(m->references[i]))
			return "references";
	for (size_t i = 0; i < m->n_recipients; i++)
		if (m->recipients[i] == NULL || !utf8_clean(m->recipients[i]))
			return "recipients";
	for (size_t i = 0; i < m->n_cc; i++)
		if (m->cc[i] == NULL || !utf8_clean(m->cc[i]))
			return "cc";
	for (size_t i = 0; i < m->n_attachments; i++)
		if (m->attachments[i].name == NULL ||
		    m->attachments[i].type == NULL ||
		    !utf8_clean(m->attachments[i].name) ||
		    !utf8_clean(m->attachments[i].type))
			return "attachments";
	return NULL;
}

static void
assert_clean(const struct inbound_msg *m)
{
	const char *bad = bad_string(m);

	if (bad != NULL)
		fail_msg("%s is not valid UTF-8 without NUL", bad);
	assert_int_equal(m->channel, CHANNEL_EMAIL);
	assert_string_equal(m->dedupe_scope, "email");
	assert_non_null(m->dedupe_key);
	assert_non_null(m->raw);
}

static int
has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* "sha256:" and the hex SHA-256 of data, into out (72 bytes). */
static void
sha256_key(const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
	strcpy(out, "sha256:");
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- the golden dump -------------------------------------------------- */

static void
dump_str(FILE *f, const char *key, const char *v)
{
	fprintf(f, "%s: %s\n", key, v != NULL ? v : "(null)");
}

static void
dump_list(FILE *f, const char *key, char **v, size_t n)
{
	fprintf(f, "%s:", key);
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %s", v[i]);
	fprintf(f, "%s\n", n == 0 ? " (none)" : "");
}

static void
dump_text(FILE *f, const char *key, const char *v)
{
	if (v == NULL) {
		fprintf(f, "%s: (null)\n", key);
		return;
	}
	fprintf(f, "%s: %zu bytes\n%s\n<<<end %s\n", key, strlen(v), v, key);
}

static void
dump_auto(FILE *f, int flags)
{
	static const char *names[] = { "submitted", "bulk", "list", "bounce",
		"loop" };
	int any = 0;

	fprintf(f, "auto_submitted:");
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (flags & (1 << i)) {
			fprintf(f, " %s", names[i]);
			any = 1;
		}
	fprintf(f, "%s\n", any ? "" : " (none)");
}

/* Every field of m, one a line, bodies whole: a deterministic text to
 * compare with a golden file. Heap string. */
static char *
dump(const struct inbound_msg *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fprintf(f, "channel: %s\n", channel_name(m->channel));
	dump_str(f, "dedupe_scope", m->dedupe_scope);
	dump_str(f, "dedupe_key", m->dedupe_key);
	dump_str(f, "from_scope", m->from_scope);
	dump_str(f, "from_address", m->from_address);
	dump_str(f, "from_email", m->from_email);
	dump_str(f, "from_name", m->from_name);
	dump_str(f, "subject", m->subject);
	dump_str(f, "message_id", m->message_id);
	dump_str(f, "in_reply_to", m->in_reply_to);
	dump_list(f, "references", m->references, m->n_references);
	dump_list(f, "recipients", m->recipients, m->n_recipients);
	dump_list(f, "cc", m->cc, m->n_cc);
	dump_auto(f, m->auto_submitted);
	dump_str(f, "bounce_of", m->bounce_of);
	fprintf(f, "truncated: %d\nraw_len: %zu\n", m->truncated, m->raw_len);
	fprintf(f, "attachments: %zu\n", m->n_attachments);
	for (size_t i = 0; i < m->n_attachments; i++) {
		const struct inbound_attachment *a = &m->attachments[i];
		char key[80] = "none";
		if (a->data != NULL)
			sha256_key(a->data, a->size, key);
		fprintf(f, "  name=\"%s\" type=%s size=%zu data=%.19s\n",
		    a->name, a->type, a->size, key);
	}
	dump_text(f, "body", m->body);
	dump_text(f, "html_text", m->html_text);
	fclose(f);
	return text;
}

/* Compares text with the golden file at path, or writes it there when
 * UPDATE_GOLDEN is set. On a difference, the first differing line. */
static void
golden_check(const char *path, const char *text)
{
	const char *update = getenv("UPDATE_GOLDEN");
	size_t len, line = 1, i = 0;
	char *want;
	FILE *f;

	if (update != NULL && strcmp(update, "1") == 0) {
		f = fopen(path, "wb");
		if (f == NULL)
			fail_msg("cannot write %s", path);
		fputs(text, f);
		fclose(f);
		return;
	}
	want = test_read_file(path, &len);
	if (want == NULL)
		fail_msg("no golden file %s (UPDATE_GOLDEN=1 writes it)", path);
	for (; want[i] != '\0' && want[i] == text[i]; i++)
		if (want[i] == '\n')
			line++;
	if (want[i] != text[i]) {
		const char *w = want + i, *t = text + i;
		while (w > want && w[-1] != '\n')
			w--, t--;
		print_error("%s:%zu: golden differs\n"
		    "  want: %.*s\n  got:  %.*s\n", path, line,
		    (int)strcspn(w, "\n"), w, (int)strcspn(t, "\n"), t);
		free(want);
		fail();
	}
	free(want);
}

/* ---- hand-written fixtures -------------------------------------------- */

static void
test_plain(void **state)
{
	struct inbound_msg *m = fixture("plain.eml");

	(void)state;
	assert_clean(m);
	assert_string_equal(m->dedupe_key, "<plain-1@example.test>");
	assert_string_equal(m->message_id, "<plain-1@example.test>");
	assert_string_equal(m->from_scope, "email");
	assert_string_equal(m->from_address, "ada.lovelace@example.test");
	assert_string_equal(m->from_email, "ada.lovelace@example.test");
	assert_string_equal(m->from_name, "Ada Lovelace");
	assert_string_equal(m->subject, "Printer on fire");
	assert_string_equal(m->body,
	    "Hello,\n\nthe printer in room 4 is on fire again.\n\nAda\n");
	assert_null(m->html_text);
	assert_null(m->in_reply_to);
	assert_int_equal(m->n_references, 0);
	assert_int_equal(m->auto_submitted, 0);
	assert_null(m->bounce_of);
	assert_int_equal(m->truncated, 0);
	/* Delivered-To, X-Original-To, To and Cc, lowercased, once each. */
	assert_int_equal(m->n_recipients, 3);
	assert_true(has(m->recipients, m->n_recipients,
	    "support@example.test"));
	assert_true(has(m->recipients, m->n_recipients, "help@example.test"));
	assert_true(has(m->recipients, m->n_recipients, "bob@example.test"));
	assert_int_equal(m->n_cc, 2);
	assert_string_equal(m->cc[0], "bob@example.test");
	assert_string_equal(m->cc[1], "support@example.test");
	assert_int_equal(m->n_attachments, 0);
	inbound_msg_free(&m);
}

static void
test_latin1_qp(void **state)
{
	struct inbound_msg *m = fixture("latin1-qp.eml");

	(void)state;
	assert_clean(m);
	/* Words in two charsets, folded, the blanks between words gone. */
	assert_string_equal(m->subject,
	    "Probl\xc3\xa8me de facture \xe2\x82\xac r\xc3\xa9gl\xc3\xa9");
	assert_string_equal(m->from_name, "Ren\xc3\xa9 Fran\xc3\xa7ois");
	/* QP soft line break joined, latin1 made UTF-8. */
	assert_string_equal(m->body, "Bonjour,\n\nla facture n\xc2\xb0 42 est "
	    "d\xc3\xa9j\xc3\xa0 r\xc3\xa9gl\xc3\xa9" "e, merci de "
	    "v\xc3\xa9rifier. Cordialement.\n\nRen\xc3\xa9\n");
	inbound_msg_free(&m);
}

static void
test_alternative_prefers_plain(void **state)
{
	struct inbound_msg *m = fixture("alternative.eml");

	(void)state;
	assert_clean(m);
	assert_string_equal(m->body, "The plain version.");
	assert_null(m->html_text);
	assert_int_equal(m->n_attachments, 0);
	inbound_msg_free(&m);
}

static void
test_inline_text_parts(void **state)
{
	struct inbound_msg *m;

	(void)state;
	/* What a client shows: each inline text part of a mixed one, but of
	 * an alternative only its text/plain. */
	m = normalize_str("From: a@example.test\n"
	    "Content-Type: multipart/mixed; boundary=m\n\n"
	    "--m\nContent-Type: text/plain\n\nGood morning;\n"
	    "--m\nContent-Type: multipart/alternative; boundary=a\n\n"
	    "--a\nContent-Type: text/plain\n\nplain\n"
	    "--a\nContent-Type: text/plain\n\nsecond alternative\n"
	    "--a\nContent-Type: text/html\n\n<p>html</p>\n--a--\n"
	    "--m\nContent-Type: text/plain\n\n-- \nlist footer\n--m--\n");
	assert_clean(m);
	assert_string_equal(m->body,
	    "Good morning;\n\nplain\n\n-- \nlist footer");
	assert_null(m->html_text);
	inbound_msg_free(&m);
}

static void
test_split_encoded_words(void **state)
{
	struct inbound_msg *m;

	(void)state;
	/* U+2713 (E2 9C 93) cut across two words, the blank between them
	 * no text; the blank before plain text stays. */
	m = normalize_str("From: a@example.test\n"
	    "Subject: =?UTF-8?B?4pw=?= =?UTF-8?B?kw==?= done\n\nx\n");
	assert_string_equal(m->subject, "\xe2\x9c\x93 done");
	inbound_msg_free(&m);
	/* A broken word is left as it is. */
	m = normalize_str("From: a@example.test\n"
	    "Subject: a =?broken b\n\nx\n");
	assert_string_equal(m->subject, "a =?broken b");
	inbound_msg_free(&m);
}

static void
test_html_only(void **state)
{
	struct inbound_msg *m = fixture("html-only.eml");

	(void)state;
	assert_clean(m);
	assert_null(m->body);
	assert_non_null(m->html_text);
	assert_string_equal(m->html_text,
	    "Order status\n\n"
	    "Your order is shipped. Track it here "
	    "<https://track.example.test/42> or at "
	    "https://track.example.test/.\n\n"
	    "- One\n- Two & three\n\n"
	    "Caf\xc3\xa9 \xe2\x82\xac 5\n\nBye\n\n"
	    "Write to help@example.test.");
	/* Head, title, style and script leave nothing. */
	assert_null(strstr(m->html_text, "Ignored"));
	assert_null(strstr(m->html_text, "alert"));
	assert_null(strstr(m->html_text, "color"));
	assert_null(strstr(m->html_text, "document.write"));
	inbound_msg_free(&m);
}

static void
test_attachments_2231(void **state)
{
	struct inbound_msg *m = fixture("attachment-2231.eml");
	struct mime_limits small = limits;
	char path[] = DATA_DIR "/attachment-2231.eml";
	size_t len;
	char *raw;

	(void)state;
	assert_clean(m);
	assert_string_equal(m->body, "See the attached files.");
	assert_int_equal(m->n_attachments, 4);
	/* filename*=UTF-8''... */
	assert_string_equal(m->attachments[0].name,
	    "Rechnung M\xc3\xa4rz \xe2\x82\xac.pdf");
	assert_string_equal(m->attachments[0].type, "application/pdf");
	assert_int_equal(m->attachments[0].size, 22);
	assert_non_null(m->attachments[0].data);
	assert_memory_equal(m->attachments[0].data, "%PDF-1.4\n%", 10);
	/* filename*0*=ISO-8859-1''... continued by filename*1= */
	assert_string_equal(m->attachments[1].name, "\xc3\x89t\xc3\xa9 "
	    "report.csv");
	assert_string_equal(m->attachments[1].type, "text/csv");
	assert_int_equal(m->attachments[1].size, 7);
	assert_memory_equal(m->attachments[1].data, "a,b\n1,2", 7);
	/* name="=?UTF-8?B?...?=" */
	assert_string_equal(m->attachments[2].name,
	    "\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe.png");
	assert_string_equal(m->attachments[2].type, "image/png");
	assert_int_equal(m->attachments[2].size, 8);
	/* No name at all: one is made up. */
	assert_string_equal(m->attachments[3].name, "part-4");
	assert_int_equal(m->attachments[3].size, 10);
	assert_memory_equal(m->attachments[3].data,
	    "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", 10);
	inbound_msg_free(&m);

	/* Over max_attachment_size: the size stays, the data does not. */
	small.max_attachment_size = 9;
	raw = test_read_file(path, &len);
	assert_non_null(raw);
	m = normalize_with(raw, len, &small);
	assert_int_equal(m->n_attachments, 4);
	assert_int_equal(m->attachments[0].size, 22);
	assert_null(m->attachments[0].data);
	assert_int_equal(m->attachments[1].size, 7);
	assert_non_null(m->attachments[1].data);
	assert_int_equal(m->attachments[3].size, 10);
	assert_null(m->attachments[3].data);
	inbound_msg_free(&m);
	free(raw);
}

static void
test_reply_threading(void **state)
{
	struct inbound_msg *m = fixture("reply.eml");

	(void)state;
	assert_clean(m);
	assert_string_equal(m->message_id, "<reply-2@example.test>");
	/* The trailing comment is not part of the id. */
	assert_string_equal(m->in_reply_to, "<esc-17-1.abc@example.test>");
	assert_int_equal(m->n_references, 2);
	assert_string_equal(m->references[0], "<plain-1@example.test>");
	assert_string_equal(m->references[1], "<esc-17-1.abc@example.test>");
	assert_string_equal(m->subject, "Re: [ESC-17] Printer on fire");
	assert_int_equal(m->auto_submitted, 0);
	inbound_msg_free(&m);
}

static void
test_autoreply(void **state)
{
	struct inbound_msg *m = fixture("autoreply.eml");

	(void)state;
	assert_clean(m);
	/* Auto-Submitted with parameters; a person's Return-Path. */
	assert_int_equal(m->auto_submitted, INBOUND_AUTO_SUBMITTED);
	assert_null(m->bounce_of);
	assert_string_equal(m->in_reply_to, "<esc-17-2.def@example.test>");
	inbound_msg_free(&m);

	m = normalize_str("From: a@example.test\nAuto-Submitted: No\n\nhi\n");
	assert_int_equal(m->auto_submitted, 0);
	inbound_msg_free(&m);
	m = normalize_str("From: a@example.test\nX-Autoreply: yes\n\nhi\n");
	assert_int_equal(m->auto_submitted, INBOUND_AUTO_SUBMITTED);
	inbound_msg_free(&m);
	m = normalize_str("From: a@example.test\nX-Autorespond: x\n\nhi\n");
	assert_int_equal(m->auto_submitted, INBOUND_AUTO_SUBMITTED);
	inbound_msg_free(&m);
	m = normalize_str("From: a@example.test\n"
	    "X-Auto-Response-Suppress: All\n\nhi\n");
	assert_int_equal(m->auto_submitted, INBOUND_AUTO_SUBMITTED);
	inbound_msg_free(&m);
	m = normalize_str("From: a@example.test\nPrecedence: bulk\n\nhi\n");
	assert_int_equal(m->auto_submitted, INBOUND_AUTO_BULK);
	inbound_msg_free(&m);
	m = normalize_str("From: a@example.test\nPrecedence: first-class\n\n"
	    "hi\n");
	assert_int_equal(m->auto_submitted, 0);
	inbound_msg_free(&m);
}

static void
test_dsn_bounce(void **state)
{
	struct inbound_msg *m = fixture("dsn.eml");

	(void)state;
	assert_clean(m);
	assert_true(m->auto_submitted & INBOUND_AUTO_BOUNCE);
	/* From the text/rfc822-headers part, not from threading headers. */
	assert_string_equal(m->bounce_of, "<esc-17-3.0123abcd@example.test>");
	assert_string_equal(m->from_address, "mailer-daemon@mx.example.test");
	assert_non_null(strstr(m->body, "550 5.1.1 User unknown"));
	assert_int_equal(m->n_attachments, 1);
	assert_string_equal(m->attachments[0].type, "message/delivery-status");
	inbound_msg_free(&m);

	/* MAILER-DAEMON with the null sender, no report structure. */
	m = normalize_str("Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.test"
	    "\nSubject: failure notice\n\nSorry.\n");
	assert_int_equal(m->auto_submitted, INBOUND_AUTO_BOUNCE);
	assert_null(m->bounce_of);
	inbound_msg_free(&m);
	/* postmaster writing with a real envelope sender is a person. */
	m = normalize_str("Return-Path: <pm@example.test>\n"
	    "From: postmaster@example.test\nSubject: hello\n\nHi.\n");
	assert_int_equal(m->auto_submitted, 0);
	inbound_msg_free(&m);
	/* A forwarded mail is no bounce, its Message-ID no bounce_of. */
	m = fixture("forward-rfc822.eml");
	assert_int_equal(m->auto_submitted, 0);
	assert_null(m->bounce_of);
	inbound_msg_free(&m);
}

static void
test_list_mail(void **state)
{
	struct inbound_msg *m = fixture("list.eml");

	(void)state;
	assert_clean(m);
	assert_int_equal(m->auto_submitted,
	    INBOUND_AUTO_BULK | INBOUND_AUTO_LIST);
	inbound_msg_free(&m);
}

static void
test_loop(void **state)
{
	struct inbound_msg *m = fixture("loop.eml");
	struct mime_limits other = limits;
	char path[] = DATA_DIR "/loop.eml";
	size_t len;
	char *raw = test_read_file(path, &len);

	(void)state;
	assert_clean(m);
	assert_int_equal(m->auto_submitted, INBOUND_AUTO_LOOP);
	inbound_msg_free(&m);
	/* Someone else's X-Loop is not ours; no own address, no loop. */
	assert_non_null(raw);
	other.own_address = "help@example.test";
	m = normalize_with(raw, len, &other);
	assert_int_equal(m->auto_submitted, 0);
	inbound_msg_free(&m);
	other.own_address = NULL;
	m = normalize_with(raw, len, &other);
	assert_int_equal(m->auto_submitted, 0);
	inbound_msg_free(&m);
	free(raw);
}

static void
test_forward_rfc822(void **state)
{
	struct inbound_msg *m = fixture("forward-rfc822.eml");

	(void)state;
	assert_clean(m);
	/* The enclosed message is an attachment, not the body. */
	assert_string_equal(m->body, "See below.");
	assert_int_equal(m->n_attachments, 1);
	assert_string_equal(m->attachments[0].name,
	    "the original \xe2\x9c\x93.eml");
	assert_string_equal(m->attachments[0].type, "message/rfc822");
	assert_non_null(m->attachments[0].data);
	assert_memory_equal(m->attachments[0].data, "From: Bob", 9);
	assert_string_equal(m->message_id, "<fwd-1@example.test>");
	inbound_msg_free(&m);
}

static void
test_unknown_charset(void **state)
{
	struct inbound_msg *m = fixture("unknown-charset.eml");
	const char *utf8 = "From: a@example.test\n"
	    "Content-Type: text/plain; charset=x-unheard-of\n\n"
	    "Stra\xc3\x9f" "e\n";

	(void)state;
	assert_clean(m);
	/* Not UTF-8: read as windows-1252. */
	assert_string_equal(m->subject, "Qapla\xc3\xa9");
	assert_string_equal(m->body, "Caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac\n");
	inbound_msg_free(&m);
	/* Valid UTF-8 under an unknown name stays as it is. */
	m = normalize_str(utf8);
	assert_string_equal(m->body, "Stra\xc3\x9f" "e\n");
	inbound_msg_free(&m);
}

static void
test_invalid_utf8(void **state)
{
	struct inbound_msg *m = fixture("invalid-utf8.eml");

	(void)state;
	assert_clean(m);
	/* Each byte that starts no valid sequence becomes U+FFFD; NUL goes.
	 * Overlong (C0 AF), surrogate (ED A0 80) and 5-byte forms count as
	 * invalid. */
	assert_string_equal(m->body, "Valid: \xc3\xa9t\xc3\xa9\nInvalid: "
	    "\xef\xbf\xbd( "
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	    "\xef\xbf\xbd\xef\xbf\xbd end\nNUL:here\n");
	/* A raw 8-bit header that is not UTF-8 is read as latin1. */
	assert_string_equal(m->subject,
	    "Broken \xc3\xa9 \xc3\xbf\xc3\xbe raw");
	inbound_msg_free(&m);
}

static void
test_no_message_id(void **state)
{
	char path[] = DATA_DIR "/no-message-id.eml", key[80];
	struct inbound_msg *m, *again;
	size_t len;
	char *raw = test_read_file(path, &len);

	(void)state;
	assert_non_null(raw);
	m = normalize_with(raw, len, &limits);
	assert_clean(m);
	assert_null(m->message_id);
	sha256_key(raw, len, key);
	assert_string_equal(m->dedupe_key, key);
	/* The same bytes give the same key; one byte more does not. */
	again = normalize_with(raw, len, &limits);
	assert_string_equal(again->dedupe_key, m->dedupe_key);
	inbound_msg_free(&again);
	raw[len - 1] = '!';
	again = normalize_with(raw, len, &limits);
	assert_string_not_equal(again->dedupe_key, m->dedupe_key);
	inbound_msg_free(&again);
	inbound_msg_free(&m);
	free(raw);
}

static void
test_oversize_truncated(void **state)
{
	char path[] = DATA_DIR "/oversize.eml";
	struct mime_limits small = limits;
	struct inbound_msg *m;
	size_t len;
	char *raw = test_read_file(path, &len);
	const char *blank;

	(void)state;
	assert_non_null(raw);
	small.max_message_size = 1000;
	assert_true(len > small.max_message_size);
	m = normalize_with(raw, len, &small);
	assert_clean(m);
	assert_int_equal(m->truncated, 1);
	/* Only the header block is kept, and the body is not parsed. */
	blank = strstr(raw, "\n\n");
	assert_non_null(blank);
	assert_int_equal(m->raw_len, (size_t)(blank - raw) + 2);
	assert_memory_equal(m->raw, raw, m->raw_len);
	assert_null(m->body);
	assert_null(m->html_text);
	assert_string_equal(m->subject, "A large mail");
	assert_string_equal(m->from_address, "big@example.test");
	assert_string_equal(m->dedupe_key, "<big-1@example.test>");
	inbound_msg_free(&m);

	/* At the limit exactly it is whole. */
	small.max_message_size = len;
	m = normalize_with(raw, len, &small);
	assert_int_equal(m->truncated, 0);
	assert_int_equal(m->raw_len, len);
	assert_non_null(m->body);
	inbound_msg_free(&m);
	free(raw);
}

/* A copy of s with each LF made eol. */
static char *
with_eol(const char *s, const char *eol)
{
	size_t n = 0, el = strlen(eol);
	char *out, *o;

	for (const char *p = s; *p; p++)
		n += *p == '\n' ? el : 1;
	o = out = malloc(n + 1);
	assert_non_null(out);
	for (const char *p = s; *p; p++) {
		if (*p == '\n') {
			memcpy(o, eol, el);
			o += el;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

static void
test_line_ends(void **state)
{
	static const char *mail =
	    "From: Ada <ada@example.test>\n"
	    "Subject: one\n two\n"
	    "Message-ID: <eol@example.test>\n"
	    "Content-Type: multipart/mixed; boundary=b\n"
	    "\n"
	    "--b\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "line 1\nline 2\n"
	    "--b--\n";
	static const char *eols[] = { "\n", "\r\n", "\r" };

	(void)state;
	for (size_t i = 0; i < sizeof(eols) / sizeof(*eols); i++) {
		char *raw = with_eol(mail, eols[i]);
		struct inbound_msg *m = normalize_str(raw);
		assert_clean(m);
		assert_string_equal(m->from_address, "ada@example.test");
		assert_string_equal(m->subject, "one two");
		assert_string_equal(m->message_id, "<eol@example.test>");
		/* Bodies keep LF line ends whatever the mail used. */
		assert_string_equal(m->body, "line 1\nline 2");
		inbound_msg_free(&m);
		free(raw);
	}
}

static void
test_malformed(void **state)
{
	struct inbound_msg *m;

	(void)state;
	/* No header at all: everything is body. */
	m = normalize_str("Hello there,\n\nno header in sight.\n");
	assert_clean(m);
	assert_string_equal(m->body, "Hello there,\n\nno header in sight.\n");
	assert_null(m->from_address);
	assert_int_equal(strncmp(m->dedupe_key, "sha256:", 7), 0);
	inbound_msg_free(&m);
	/* A line that is no field does not end the header. */
	m = normalize_str("From: a@example.test\nthis is junk\n"
	    "Subject: kept\nMessage-ID: <j@example.test>\n\nbody\n");
	assert_string_equal(m->subject, "kept");
	assert_string_equal(m->message_id, "<j@example.test>");
	assert_string_equal(m->body, "body\n");
	inbound_msg_free(&m);
	/* A blank-only line ends it (else the body folds into Subject). */
	m = normalize_str("From: a@example.test\nSubject: s\n \nbody\n");
	assert_string_equal(m->subject, "s");
	assert_string_equal(m->body, "body\n");
	inbound_msg_free(&m);
	/* A From libetpan refuses, mbox separator and BOM. */
	m = normalize_str("\xef\xbb\xbf" "From MAILER-DAEMON Mon Dec 7 2026\n"
	    "From: Jane Doe <<jane@example.test>>\nSubject: x\n\ny\n");
	assert_string_equal(m->from_address, "jane@example.test");
	assert_string_equal(m->subject, "x");
	inbound_msg_free(&m);
	/* Empty input and a lone NUL. */
	m = normalize_with("", 0, &limits);
	assert_clean(m);
	inbound_msg_free(&m);
	m = normalize_with("\0", 1, &limits);
	assert_clean(m);
	inbound_msg_free(&m);
	/* A multipart whose boundary never comes: the text is the body. */
	m = normalize_str("From: a@example.test\n"
	    "Content-Type: multipart/mixed; boundary=nowhere\n\ntext\n");
	assert_clean(m);
	assert_non_null(m->body);
	assert_non_null(strstr(m->body, "text"));
	inbound_msg_free(&m);
}

/* ---- golden files ----------------------------------------------------- */

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.eml names in dir, sorted, NULL-terminated; NULL when dir cannot
 * be read. */
static char **
eml_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		if (!ends_with(e->d_name, ".eml"))
			continue;
		v = realloc(v, (n + 2) * sizeof(*v));
		assert_non_null(v);
		v[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (v == NULL)
		v = calloc(1, sizeof(*v));
	assert_non_null(v);
	v[n] = NULL;
	qsort(v, n, sizeof(*v), name_cmp);
	return v;
}

static void
files_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* The mail at dir/name against golden_dir/golden_name. */
static void
golden_one(const char *dir, const char *name, const char *golden)
{
	char path[512];
	size_t len;
	char *raw, *text;
	struct inbound_msg *m;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	raw = test_read_file(path, &len);
	if (raw == NULL)
		fail_msg("cannot read %s", path);
	m = normalize_with(raw, len, &limits);
	assert_clean(m);
	text = dump(m);
	golden_check(golden, text);
	free(text);
	inbound_msg_free(&m);
	free(raw);
}

static void
test_golden_fixtures(void **state)
{
	char **files = eml_files(DATA_DIR), golden[512];

	(void)state;
	assert_non_null(files);
	assert_non_null(files[0]);
	for (size_t i = 0; files[i] != NULL; i++) {
		snprintf(golden, sizeof(golden), "%s/%.*s.golden", DATA_DIR,
		    (int)(strlen(files[i]) - 4), files[i]);
		golden_one(DATA_DIR, files[i], golden);
	}
	files_free(files);
}

/* The corpus folder, or NULL (said on stdout) when this checkout has
 * none. */
static const char *
corpus_dir(void)
{
	const char *dir = test_corpus_dir();

	if (dir == NULL)
		print_message("no corpus: skipped\n");
	return dir;
}

/* Corpus mails with a golden dump: a spread of INDEX.tsv's kinds. */
static const char *corpus_goldens[] = {
	"010_notmuch_default_cur_40_2.eml",		/* thread-reply */
	"194_mimekit_messages_issue358.eml",		/* thread-reply */
	"029_notmuch_lkml_cur_1382298805.004636_2.eml",	/* list */
	"223_mimekit_messages_japanese.eml",		/* charset */
	"245_flanker_messages_encoded-header.eml",	/* charset */
	"215_mime4j_mimetools-testmsgs_intl.eml",	/* charset */
	"307_talon_standard_replies_outlook.eml",	/* charset */
	"210_rt_t_data_emails_text-html-with-umlaut.eml",	/* html */
	"225_mimekit_messages_multipart-related-mhtml.eml",	/* html */
	"311_mailparser_spam.eml",			/* html */
	"243_flanker_messages_attached-pdf.eml",	/* attachment */
	"206_rt_t_data_emails_outlook-rfc822.eml",	/* attachment */
	"212_mime4j_mimetools-testmsgs_attachment-filename-encoding-Latin1.eml",
	"060_sisimai_maildir_bsd_rfc3834-01.eml",	/* autoreply */
	"065_sisimai_maildir_bsd_rfc3834-06.eml",	/* autoreply */
	"113_mimekit_messages_disposition-notification.eml",	/* autoreply */
	"093_sisimai_maildir_bsd_rfc3464-01.eml",	/* bounce */
	"116_postal-mime_bounce.eml",			/* bounce */
	"089_sisimai_maildir_bsd_lhost-dragonfly-01.eml",	/* bounce */
	"191_sisimai_maildir_mac_lhost-postfix-01.eml",	/* bounce, CR */
	"122_flanker_messages_complaints_aol.eml",	/* bounce (ARF) */
	"114_mimekit_messages_feedback-report.eml",	/* malformed: BOM */
	"159_mime4j_mimetools-testmsgs_hdr-fakeout.eml",	/* malformed */
	"181_flanker_messages_no-ctype.eml",		/* malformed */
	"314_postal-mime_mixed.eml",			/* multipart */
	"304_talon_standard_replies_gmail.eml",		/* multipart */
};

static void
test_golden_corpus(void **state)
{
	const char *dir = corpus_dir();
	char golden[512];

	(void)state;
	if (dir == NULL)
		skip();
	for (size_t i = 0; i < sizeof(corpus_goldens) / sizeof(*corpus_goldens);
	    i++) {
		snprintf(golden, sizeof(golden), "%s/%s.golden", CORPUS_GOLDEN,
		    corpus_goldens[i]);
		golden_one(dir, corpus_goldens[i], golden);
	}
}

/* ---- the whole corpus ------------------------------------------------- */

/*
 * Corpus mails INDEX.tsv calls bounce or autoreply that carry no mark a
 * header or the MIME structure could give: only their words say so.
 */
static const char *unmarked[] = {
	/* RT's "AutoReply:" in the subject; no Auto-Submitted, no
	 * Precedence (the notmuch corpus kept only a few headers). */
	"018_notmuch_threading_ghost-root_1532672447.R3166642290392477575."
	    "len_2_S.eml",
	/* Apple's vacation reply: "Auto reply:" in the subject only. */
	"062_sisimai_maildir_bsd_rfc3834-03.eml",
	/* KDDI's bounce comes from no-reply@, as multipart/mixed with a
	 * Japanese text; no report, no null sender. */
	"087_sisimai_maildir_bsd_lhost-kddi-01.eml",
};

static int
is_unmarked(const char *name)
{
	for (size_t i = 0; i < sizeof(unmarked) / sizeof(*unmarked); i++)
		if (strcmp(name, unmarked[i]) == 0)
			return 1;
	return 0;
}

/* The kind INDEX.tsv (tab-separated, file in column 1, kind in column
 * 3) gives name, into kind; "" when not listed. */
static void
index_kind(const char *index, const char *name, char *kind, size_t size)
{
	size_t nlen = strlen(name);

	kind[0] = '\0';
	for (const char *p = index; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n'), *t1, *t2;
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '\t' &&
		    (t1 = strchr(p + nlen + 1, '\t')) != NULL &&
		    (nl == NULL || t1 < nl)) {
			t2 = t1 + 1 + strcspn(t1 + 1, "\t\n");
			snprintf(kind, size, "%.*s", (int)(t2 - t1 - 1),
			    t1 + 1);
			return;
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
}

static void
test_corpus_all(void **state)
{
	const char *dir = corpus_dir();
	char path[512], kind[64], *index;
	char **files;
	size_t len, unflagged = 0, count = 0;
	struct timespec t0;

	(void)state;
	if (dir == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/INDEX.tsv", dir);
	index = test_read_file(path, &len);
	files = eml_files(dir);
	assert_non_null(files);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; files[i] != NULL; i++, count++) {
		char *raw;
		struct inbound_msg *m;
		const char *bad;
		int want = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		raw = test_read_file(path, &len);
		assert_non_null(raw);
		m = normalize_with(raw, len, &limits);
		if ((bad = bad_string(m)) != NULL)
			fail_msg("%s: %s is not clean UTF-8", files[i], bad);
		index_kind(index, files[i], kind, sizeof(kind));
		if (strcmp(kind, "bounce") == 0)
			want = INBOUND_AUTO_BOUNCE;
		else if (strcmp(kind, "autoreply") == 0)
			want = INBOUND_AUTO_SUBMITTED | INBOUND_AUTO_BULK;
		if (want && !(m->auto_submitted & want) &&
		    !is_unmarked(files[i])) {
			print_error("%s: kind %s, auto_submitted %d\n",
			    files[i], kind, m->auto_submitted);
			unflagged++;
		}
		if (want && (m->auto_submitted & want) && is_unmarked(files[i]))
			print_error("%s: flagged now, drop it from unmarked\n",
			    files[i]);
		inbound_msg_free(&m);
		free(raw);
	}
	fprintf(stderr, "corpus: %zu mails in %.1f ms\n", count,
	    ms_since(&t0));
	assert_true(count > 0);
	assert_int_equal(unflagged, 0);
	files_free(files);
	free(index);
}

/* ---- hostile mail ----------------------------------------------------- */

/* A growing string for the generators. */
struct gen {
	char *s;
	size_t len, cap;
};

static void
gen_add(struct gen *g, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(g->s ? g->s + g->len : NULL,
		    g->s ? g->cap - g->len : 0, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (g->s != NULL && (size_t)n < g->cap - g->len)
			break;
		g->cap = (g->cap + (size_t)n + 1) * 2;
		g->s = realloc(g->s, g->cap);
		assert_non_null(g->s);
	}
	g->len += (size_t)n;
}

static void
gen_repeat(struct gen *g, const char *s, size_t times)
{
	for (size_t i = 0; i < times; i++)
		gen_add(g, "%s", s);
}

/* Normalises g's mail under a 16 MiB limit, prints the time it took. */
static struct inbound_msg *
hostile(const char *what, struct gen *g)
{
	struct mime_limits big = limits;
	struct inbound_msg *m;
	struct timespec t0;

	big.max_message_size = 16 * 1024 * 1024;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	m = normalize_with(g->s, g->len, &big);
	fprintf(stderr, "hostile %s (%zu bytes): %.1f ms\n", what, g->len,
	    ms_since(&t0));
	assert_clean(m);
	free(g->s);
	*g = (struct gen){ 0 };
	return m;
}

static void
test_hostile_long_header(void **state)
{
	struct gen g = { 0 };
	struct inbound_msg *m;

	(void)state;
	gen_add(&g, "From: a@example.test\nMessage-ID: <long@example.test>\n"
	    "Subject: ");
	gen_repeat(&g, "=?UTF-8?Q?=C3=A9?= x ", 5000);	/* 100,000 chars */
	gen_add(&g, "\nTo: ");
	for (int i = 0; i < 10000; i++)
		gen_add(&g, "%su%d@example.test", i ? ", " : "", i);
	gen_add(&g, "\nReferences:");
	for (int i = 0; i < 10000; i++)
		gen_add(&g, " <r%d@example.test>", i);
	gen_add(&g, "\nX-Long: ");
	gen_repeat(&g, "y", 100000);
	gen_add(&g, "\n\nbody\n");
	m = hostile("100,000-char header lines", &g);
	assert_non_null(m->subject);
	assert_true(strlen(m->subject) <= 4096);
	assert_true(m->n_recipients > 0 && m->n_recipients <= 500);
	/* The thread's root and the latest references are kept. */
	assert_true(m->n_references > 0 && m->n_references <= 100);
	assert_string_equal(m->references[0], "<r0@example.test>");
	assert_string_equal(m->references[m->n_references - 1],
	    "<r9999@example.test>");
	assert_string_equal(m->body, "body\n");
	inbound_msg_free(&m);

	/* Comments nest recursively in libetpan: 200,000 of them would
	 * overflow its stack. */
	gen_add(&g, "From: ");
	gen_repeat(&g, "(", 200000);
	gen_add(&g, "\nContent-Type: text/plain; charset=utf-8 ");
	gen_repeat(&g, "(", 200000);
	gen_add(&g, "\n\nbody\n");
	m = hostile("200,000 nested comments", &g);
	inbound_msg_free(&m);
}

static void
test_hostile_many_parts(void **state)
{
	struct gen g = { 0 };
	struct inbound_msg *m;

	(void)state;
	gen_add(&g, "From: a@example.test\n"
	    "Content-Type: multipart/mixed; boundary=\"B\"\n\n");
	gen_add(&g, "--B\nContent-Type: text/plain\n\nthe body\n");
	for (int i = 1; i < 10000; i++)
		gen_add(&g, "--B\nContent-Type: application/octet-stream; "
		    "name=\"f%d.bin\"\nContent-Transfer-Encoding: base64\n\n"
		    "AAEC\n", i);
	gen_add(&g, "--B--\n");
	m = hostile("10,000 parts", &g);
	assert_string_equal(m->body, "the body");
	/* Walked: at most 1000 parts, the multipart itself included. */
	assert_true(m->n_attachments > 0 && m->n_attachments < 1000);
	assert_string_equal(m->attachments[0].name, "f1.bin");
	inbound_msg_free(&m);
}

static void
test_hostile_nesting(void **state)
{
	struct gen g = { 0 }, tail = { 0 };
	struct inbound_msg *m;

	(void)state;
	/* message/rfc822 in message/rfc822, 50 deep. */
	for (int i = 49; i >= 0; i--)
		gen_add(&g, "From: a%d@example.test\nSubject: level %d\n"
		    "Content-Type: message/rfc822\n\n", i, i);
	gen_add(&g, "From: inner@example.test\nSubject: inner\n\nhello\n");
	m = hostile("message/rfc822 nested 50 deep", &g);
	assert_string_equal(m->from_address, "a49@example.test");
	assert_int_equal(m->n_attachments, 1);
	assert_string_equal(m->attachments[0].name, "level 48.eml");
	assert_null(m->body);
	inbound_msg_free(&m);

	/* multipart in multipart, 100,000 deep: libetpan recurses per level
	 * and rescans each, so this is refused before it sees it. */
	gen_add(&g, "From: a@example.test\n");
	for (int i = 0; i < 100000; i++) {
		gen_add(&g, "Content-Type: multipart/mixed; "
		    "boundary=\"b%d\"\n\n--b%d\n", i, i);
		gen_add(&tail, "\n--b%d--\n", 99999 - i);
	}
	gen_add(&g, "Content-Type: text/plain\n\nleaf\n%s", tail.s);
	free(tail.s);
	m = hostile("multipart nested 100,000 deep", &g);
	assert_non_null(m->body);
	assert_true(strlen(m->body) <= 4 * 1024 * 1024);
	inbound_msg_free(&m);
}

static void
test_hostile_html(void **state)
{
	struct gen g = { 0 };
	struct inbound_msg *m;

	(void)state;
	/* libxml2 stops nesting at 256 levels: what is deeper is lost. */
	gen_add(&g, "From: a@example.test\nContent-Type: text/html\n\n"
	    "<html><body>");
	gen_repeat(&g, "<div><b>x", 50000);	/* 100,000 tags, unclosed */
	gen_add(&g, "</body></html>\n");
	m = hostile("HTML with 100,000 nested tags", &g);
	assert_null(m->body);
	assert_non_null(m->html_text);
	assert_non_null(strstr(m->html_text, "x"));
	inbound_msg_free(&m);

	gen_add(&g, "From: a@example.test\nContent-Type: text/html\n\n"
	    "<html><body>");
	gen_repeat(&g, "<i>x</i><br>", 50000);	/* 100,000 tags, flat */
	gen_add(&g, "</body></html>\n");
	m = hostile("HTML with 100,000 flat tags", &g);
	assert_non_null(m->html_text);
	assert_true(strlen(m->html_text) >= 2 * 50000 - 1);
	assert_int_equal(strncmp(m->html_text, "x\nx\nx\n", 6), 0);
	inbound_msg_free(&m);

	gen_add(&g, "From: a@example.test\n"
	    "Content-Type: multipart/alternative; boundary=h\n\n--h\n"
	    "Content-Type: text/html; charset=utf-8\n\n<html><body>");
	while (g.len < 5 * 1024 * 1024)
		gen_add(&g, "<p>Hello <a href=\"https://example.test/%zu\">"
		    "w\xc3\xb6rld</a> &amp; more text&nbsp;here</p>\n", g.len);
	gen_add(&g, "</body></html>\n--h--\n");
	m = hostile("5 MB HTML part", &g);
	assert_non_null(m->html_text);
	assert_true(strlen(m->html_text) <= 1024 * 1024);
	assert_non_null(strstr(m->html_text, "w\xc3\xb6rld <https://"));
	inbound_msg_free(&m);
}

/* A mail set aside unparsed: no sender, why in the body, raw kept whole
 * (or its header over the limit), keyed by its SHA-256 (a second hand-over
 * dedupes) apart from a parsed mail's keys. */
static void
test_unparsed(void **state)
{
	const char *raw = "From: Mallory <m@example.test>\r\n"
	    "Message-ID: <poison@example.test>\r\nSubject: x\r\n\r\n"
	    "body\r\n";
	struct inbound_msg *m = NULL;
	char key[96];
	struct mime_limits small = limits;

	(void)state;
	assert_int_equal(mime_unparsed(raw, strlen(raw), &limits,
	    "it crashed", &m), 0);
	assert_string_equal(m->subject, "(mail not parsed)");
	assert_non_null(strstr(m->body, "it crashed"));
	assert_null(m->from_address);
	assert_null(m->message_id);
	assert_string_equal(m->dedupe_scope, "email");
	memcpy(key, "unparsed:", 9);
	sha256_key(raw, strlen(raw), key + 9);
	assert_string_equal(m->dedupe_key, key);
	assert_int_equal(m->raw_len, strlen(raw));
	assert_memory_equal(m->raw, raw, strlen(raw));
	assert_false(m->truncated);
	inbound_msg_free(&m);

	small.max_message_size = 10;
	assert_int_equal(mime_unparsed(raw, strlen(raw), &small, "why", &m),
	    0);
	assert_true(m->truncated);
	assert_int_equal(m->raw_size, (int64_t)strlen(raw));
	assert_memory_equal(m->raw, raw, m->raw_len);
	assert_int_equal(m->raw_len, strstr(raw, "\r\n\r\n") + 4 - raw);
	inbound_msg_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_latin1_qp),
		cmocka_unit_test(test_alternative_prefers_plain),
		cmocka_unit_test(test_inline_text_parts),
		cmocka_unit_test(test_split_encoded_words),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_attachments_2231),
		cmocka_unit_test(test_reply_threading),
		cmocka_unit_test(test_autoreply),
		cmocka_unit_test(test_dsn_bounce),
		cmocka_unit_test(test_list_mail),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_forward_rfc822),
		cmocka_unit_test(test_unknown_charset),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_no_message_id),
		cmocka_unit_test(test_oversize_truncated),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_golden_fixtures),
		cmocka_unit_test(test_golden_corpus),
		cmocka_unit_test(test_corpus_all),
		cmocka_unit_test(test_hostile_long_header),
		cmocka_unit_test(test_hostile_many_parts),
		cmocka_unit_test(test_hostile_nesting),
		cmocka_unit_test(test_hostile_html),
		cmocka_unit_test(test_unparsed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
