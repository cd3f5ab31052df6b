/*
 * test_xmpp: the pure half of the chat child (channels/xmpp.h):
 * xmpp_bare_jid and xmpp_normalize, on stanzas parsed from XML text by
 * libstrophe itself (xmpp_stanza_new_from_string), so entities, namespaces
 * and attributes arrive as they do off the wire.
 *
 * - Bare JIDs: a table of JIDs and their bare, lowercased form, or NULL
 *   when there is no domain, an empty node, or no valid UTF-8.
 * - Live messages in the shapes slixmpp, Conversations and Gajim send them,
 *   stamped by the server with an XEP-0359 stanza-id: the fields of the
 *   inbound_msg, and the dedupe key from the stanza-id only when our own
 *   account stamped it; else "stanza:FROM:ID", else "sha256:HEX".
 * - MAM replay: the archive id given wins over whatever the stanza holds.
 * - What makes no message: a type other than chat/normal, chat states,
 *   empty or blank bodies, our own account (any resource), no sender.
 * - Bodies: cut at a character boundary under max_body, a subject from
 *   the first non-empty line, 1 MiB, entities decoded.
 *
 * Every message made is checked for valid UTF-8 in each string and for a
 * field-by-field round trip through inbound_msg_pack / inbound_msg_unpack,
 * what the child does before the core sees it. Run under valgrind too:
 * libstrophe's strings are freed inside the adapter, ours by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <strophe.h>

#include "channel.h"
#include "xmpp.h"

#define N_ELEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define OWN		"support@example.test"
#define CUSTOMER	"jane@example.test"
#define MAX_BODY	(1u << 20)
#define SUBJECT_MAX	200	/* xmpp.c: bytes of the first line */

/* ---- helpers ----------------------------------------------------------- */

static int
setup_ctx(void **state)
{
	xmpp_ctx_t *ctx;

	xmpp_initialize();
	if ((ctx = xmpp_ctx_new(NULL, NULL)) == NULL)
		return -1;
	*state = ctx;
	return 0;
}

static int
teardown_ctx(void **state)
{
	xmpp_ctx_free(*state);
	xmpp_shutdown();
	return 0;
}

/* A string field's name and value, for checks over all of them. */
struct field {
	const char *name;
	const char *value;
};

#define STRING_FIELDS(m) { \
	{ "source", (m)->source }, { "queue", (m)->queue }, \
	{ "dedupe_scope", (m)->dedupe_scope }, \
	{ "dedupe_key", (m)->dedupe_key }, \
	{ "from_scope", (m)->from_scope }, \
	{ "from_address", (m)->from_address }, \
	{ "from_name", (m)->from_name }, { "from_email", (m)->from_email }, \
	{ "subject", (m)->subject }, { "body", (m)->body }, \
	{ "html_text", (m)->html_text }, { "thread_key", (m)->thread_key }, \
	{ "message_id", (m)->message_id }, \
	{ "in_reply_to", (m)->in_reply_to }, { "severity", (m)->severity }, \
	{ "reply_url", (m)->reply_url }, { "bounce_of", (m)->bounce_of }, \
}

static void
assert_same_string(const char *what, const char *a, const char *b)
{
	if (a == NULL && b == NULL)
		return;
	if (a == NULL || b == NULL || strcmp(a, b) != 0)
		fail_msg("round trip changed %s: \"%.60s\" -> \"%.60s\"", what,
		    a ? a : "(null)", b ? b : "(null)");
}

/*
 * What every message xmpp_normalize makes must hold: each string valid
 * UTF-8, and the message the same after the frame codec.
 */
static void
check_sound(const struct inbound_msg *m)
{
	struct field f[] = STRING_FIELDS(m), g[N_ELEMS(f)];
	struct inbound_msg *back;
	const char *why = NULL;
	char *buf = NULL;
	size_t len = 0;

	for (size_t i = 0; i < N_ELEMS(f); i++)
		if (f[i].value != NULL &&
		    !utf8_valid(f[i].value, strlen(f[i].value)))
			fail_msg("%s is not UTF-8", f[i].name);
	assert_int_equal(inbound_msg_pack(m, &buf, &len), 0);
	assert_non_null(buf);
	back = inbound_msg_unpack(buf, len, &why);
	if (back == NULL)
		fail_msg("inbound_msg_unpack: %s", why ? why : "(no reason)");
	{
		struct field h[] = STRING_FIELDS(back);
		memcpy(g, h, sizeof(g));
	}
	for (size_t i = 0; i < N_ELEMS(f); i++)
		assert_same_string(f[i].name, f[i].value, g[i].value);
	assert_int_equal(back->channel, m->channel);
	assert_int_equal(back->truncated, m->truncated);
	assert_int_equal(back->raw_size, m->raw_size);
	assert_int_equal(back->auto_submitted, m->auto_submitted);
	assert_int_equal(back->received_at, m->received_at);
	inbound_msg_free(&back);
	assert_null(back);
	free(buf);
}

/*
 * xmpp_normalize on the stanza XML parses to, for account OWN. A message
 * made is checked (check_sound) and returned, the caller frees it; NULL
 * with *why_r set when none is made.
 */
static struct inbound_msg *
norm(xmpp_ctx_t *ctx, const char *xml, const char *archive_id,
    size_t max_body, const char **why_r)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, xml);
	struct inbound_msg *m;

	if (st == NULL)
		fail_msg("libstrophe cannot parse: %.200s", xml);
	*why_r = "(not set)";
	m = xmpp_normalize(ctx, st, OWN, archive_id, max_body, why_r);
	xmpp_stanza_release(st);
	if (m != NULL) {
		if (*why_r != NULL)
			fail_msg("a message, and why \"%s\"", *why_r);
		check_sound(m);
	} else if (*why_r == NULL || (*why_r)[0] == '\0') {
		fail_msg("no message and no why for %.200s", xml);
	}
	return m;
}

/* norm that must make a message. */
static struct inbound_msg *
norm_ok(xmpp_ctx_t *ctx, const char *xml, const char *archive_id,
    size_t max_body)
{
	const char *why = NULL;
	struct inbound_msg *m = norm(ctx, xml, archive_id, max_body, &why);

	if (m == NULL)
		fail_msg("refused (%s): %.200s", why, xml);
	return m;
}

/* The dedupe key of the message xml makes; the caller frees it. */
static char *
key_of(xmpp_ctx_t *ctx, const char *xml, const char *archive_id)
{
	struct inbound_msg *m = norm_ok(ctx, xml, archive_id, MAX_BODY);
	char *key = strdup(m->dedupe_key);

	assert_non_null(key);
	inbound_msg_free(&m);
	return key;
}

/* A stanza of `type` (NULL: no attribute) from `from` with body `body`,
 * and `extra` XML after the body; the caller frees it. */
static char *
stanza_xml(const char *type, const char *from, const char *id,
    const char *body, const char *extra)
{
	char *xml, tbuf[64] = "", ibuf[128] = "";

	if (type != NULL)
		snprintf(tbuf, sizeof(tbuf), " type='%s'", type);
	if (id != NULL)
		snprintf(ibuf, sizeof(ibuf), " id='%s'", id);
	if (asprintf(&xml, "<message xmlns='jabber:client' to='" OWN "'"
	    " from='%s'%s%s>%s%s%s%s</message>", from, tbuf, ibuf,
	    body != NULL ? "<body>" : "", body != NULL ? body : "",
	    body != NULL ? "</body>" : "", extra != NULL ? extra : "") < 0)
		fail_msg("out of memory");
	return xml;
}

/* ---- xmpp_bare_jid -------------------------------------------------------- */

static void
test_bare_jid(void **state)
{
	static const struct {
		const char *jid, *bare;	/* bare NULL: refused */
	} cases[] = {
		{ "jane@example.test/Conversations.x1Y2", "jane@example.test" },
		{ "jane@example.test", "jane@example.test" },
		{ "example.test", "example.test" },
		{ "example.test/announce", "example.test" },
		{ "Jane.Doe@Example.TEST/Gajim", "jane.doe@example.test" },
		{ "JANE@EXAMPLE.TEST", "jane@example.test" },
		{ "a@b.test/x/y@z", "a@b.test" },
		{ "a@b.test/res@other.test", "a@b.test" },
		{ "a@b.test/", "a@b.test" },
		{ "j\xc3\xa9r\xc3\xb4me@example.test/ph", "j\xc3\xa9r\xc3\xb4me"
		    "@example.test" },
		{ "", NULL },
		{ "/res", NULL },
		{ "@example.test", NULL },
		{ "@example.test/res", NULL },
		{ "user@", NULL },
		{ "user@/res", NULL },
		{ "us\xff" "er@example.test", NULL },
		{ "user@exa\xc3" "mple.test", NULL },	/* cut sequence */
		{ "user@\xc0\xaf" "example.test", NULL },	/* overlong */
		{ "user@\xed\xa0\x80.test/r", NULL },	/* surrogate */
	};
	int failed = 0;

	(void)state;
	assert_null(xmpp_bare_jid(NULL));
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *got = xmpp_bare_jid(cases[i].jid);

		if ((got == NULL) != (cases[i].bare == NULL) ||
		    (got != NULL && strcmp(got, cases[i].bare) != 0)) {
			print_error("xmpp_bare_jid(\"%s\") = %s%s%s, want "
			    "%s%s%s\n", cases[i].jid, got ? "\"" : "",
			    got ? got : "NULL", got ? "\"" : "",
			    cases[i].bare ? "\"" : "",
			    cases[i].bare ? cases[i].bare : "NULL",
			    cases[i].bare ? "\"" : "");
			failed++;
		}
		free(got);
	}
	if (failed > 0)
		fail_msg("%d of %zu JIDs wrong", failed, N_ELEMS(cases));
}

/* ---- live messages -------------------------------------------------------- */

/* As clients send them, as the server hands them on (stanza-id by us). */
static const struct {
	const char *client, *xml, *id, *from, *body, *subject;
} live[] = {
	{ "slixmpp",
	    "<message xmlns='jabber:client' to='support@example.test' "
	    "type='chat' id='8a1f0c2e-slix' "
	    "from='jane@example.test/slixmpp'>"
	    "<body>Hello, I cannot log in since this morning.</body>"
	    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
	    "<origin-id xmlns='urn:xmpp:sid:0' id='8a1f0c2e-slix'/>"
	    "<stanza-id xmlns='urn:xmpp:sid:0' by='support@example.test' "
	    "id='A1'/></message>",
	    "8a1f0c2e-slix", "jane@example.test",
	    "Hello, I cannot log in since this morning.",
	    "Hello, I cannot log in since this morning." },
	{ "Conversations",
	    "<message xmlns='jabber:client' "
	    "from='Jane@Example.test/Conversations.Xk3q' "
	    "to='support@example.test' type='chat' id='c0nv-42'>"
	    "<body>  Order 1234 never arrived\n\nIt was due Monday.  </body>"
	    "<request xmlns='urn:xmpp:receipts'/>"
	    "<markable xmlns='urn:xmpp:chat-markers:0'/>"
	    "<origin-id xmlns='urn:xmpp:sid:0' id='c0nv-42'/>"
	    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
	    "<stanza-id xmlns='urn:xmpp:sid:0' id='A1' "
	    "by='support@example.test'/></message>",
	    "c0nv-42", "jane@example.test",
	    "  Order 1234 never arrived\n\nIt was due Monday.  ",
	    "Order 1234 never arrived" },
	{ "Gajim",
	    "<message xmlns='jabber:client' id='gajim-7f' type='chat' "
	    "to='support@example.test' from='jane@example.test/gajim.ABCD'>"
	    "<origin-id xmlns='urn:xmpp:sid:0' id='gajim-7f'/>"
	    "<body>\n\t Invoice question\t &#xD;\nwhy was I charged twice?"
	    "</body>"
	    "<thread>9b2e6a</thread>"
	    "<request xmlns='urn:xmpp:receipts'/>"
	    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
	    "<delay xmlns='urn:xmpp:delay' from='example.test' "
	    "stamp='2026-12-04T15:59:58Z'>Offline Storage</delay>"
	    "<stanza-id xmlns='urn:xmpp:sid:0' by='support@example.test' "
	    "id='A1'/></message>",
	    "gajim-7f", "jane@example.test",
	    "\n\t Invoice question\t \r\nwhy was I charged twice?",
	    "Invoice question" },
};

static void
test_live_message(void **state)
{
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(live); i++) {
		struct inbound_msg *m = norm_ok(ctx, live[i].xml, NULL,
		    MAX_BODY);

		print_message("%s\n", live[i].client);
		assert_int_equal(m->channel, CHANNEL_CHAT);
		assert_string_equal(m->from_scope, "xmpp");
		assert_string_equal(m->from_address, live[i].from);
		assert_string_equal(m->body, live[i].body);
		assert_string_equal(m->subject, live[i].subject);
		assert_string_equal(m->dedupe_scope, "chat");
		assert_string_equal(m->dedupe_key, "archive:A1");
		assert_non_null(m->message_id);
		assert_string_equal(m->message_id, live[i].id);
		assert_int_equal(m->truncated, 0);
		assert_int_equal(m->raw_size, 0);
		assert_null(m->html_text);
		assert_int_equal(m->n_attachments, 0);
		inbound_msg_free(&m);
		assert_null(m);
	}
}

/* Only a stanza-id our own account stamped names the archive entry. */
static void
test_foreign_stanza_id(void **state)
{
	static const struct {
		const char *what, *extra, *key;
	} cases[] = {
		{ "by another user",
		    "<stanza-id xmlns='urn:xmpp:sid:0' by='evil@example.test' "
		    "id='A1'/>", "stanza:" CUSTOMER ":m1" },
		{ "by the domain",
		    "<stanza-id xmlns='urn:xmpp:sid:0' by='example.test' "
		    "id='A1'/>", "stanza:" CUSTOMER ":m1" },
		{ "by nobody",
		    "<stanza-id xmlns='urn:xmpp:sid:0' id='A1'/>",
		    "stanza:" CUSTOMER ":m1" },
		{ "wrong namespace",
		    "<stanza-id xmlns='urn:xmpp:sid:1' by='" OWN "' id='A1'/>",
		    "stanza:" CUSTOMER ":m1" },
		{ "an origin-id is no archive id",
		    "<origin-id xmlns='urn:xmpp:sid:0' id='A1'/>",
		    "stanza:" CUSTOMER ":m1" },
		{ "ours after a forged one",
		    "<stanza-id xmlns='urn:xmpp:sid:0' by='evil@example.test' "
		    "id='E9'/><stanza-id xmlns='urn:xmpp:sid:0' by='" OWN "' "
		    "id='A1'/>", "archive:A1" },
		{ "ours, by in another case",
		    "<stanza-id xmlns='urn:xmpp:sid:0' "
		    "by='Support@Example.TEST' id='A1'/>", "archive:A1" },
	};
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *xml = stanza_xml("chat", CUSTOMER "/phone", "m1",
		    "help", cases[i].extra);
		char *key = key_of(ctx, xml, NULL);

		if (strcmp(key, cases[i].key) != 0)
			fail_msg("%s: key \"%s\", want \"%s\"", cases[i].what,
			    key, cases[i].key);
		free(key);
		free(xml);
	}
}

static int
is_sha256_key(const char *key)
{
	if (strncmp(key, "sha256:", 7) != 0 || strlen(key) != 7 + 64)
		return 0;
	return strspn(key + 7, "0123456789abcdef") == 64;
}

/* No id and no archive id: a content hash, stable and distinct. */
static void
test_no_id_hash(void **state)
{
	xmpp_ctx_t *ctx = *state;
	char *a = stanza_xml("chat", CUSTOMER "/phone", NULL, "help me", NULL);
	char *b = stanza_xml("chat", CUSTOMER "/phone", NULL, "help me!",
	    NULL);
	char *c = stanza_xml("chat", "john@example.test/phone", NULL,
	    "help me", NULL);
	char *d = stanza_xml("chat", CUSTOMER "/laptop", NULL, "help me",
	    NULL);
	char *ka = key_of(ctx, a, NULL), *ka2 = key_of(ctx, a, NULL);
	char *kb = key_of(ctx, b, NULL), *kc = key_of(ctx, c, NULL);
	char *kd = key_of(ctx, d, NULL);
	struct inbound_msg *m = norm_ok(ctx, a, NULL, MAX_BODY);

	if (!is_sha256_key(ka))
		fail_msg("key \"%s\" is not sha256:HEX", ka);
	assert_string_equal(ka, ka2);
	assert_string_not_equal(ka, kb);	/* another body */
	assert_string_not_equal(ka, kc);	/* another sender */
	assert_string_equal(ka, kd);	/* the same person, another device */
	assert_true(is_sha256_key(kb) && is_sha256_key(kc));
	assert_null(m->message_id);
	assert_string_equal(m->dedupe_scope, "chat");
	inbound_msg_free(&m);
	free(ka);
	free(ka2);
	free(kb);
	free(kc);
	free(kd);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* MAM replay: the result id given is the archive id, whatever else. */
static void
test_archive_replay(void **state)
{
	static const char *const extras[] = {
		NULL,
		"<stanza-id xmlns='urn:xmpp:sid:0' by='" OWN "' id='A1'/>",
		"<stanza-id xmlns='urn:xmpp:sid:0' by='evil@example.test' "
		    "id='E9'/>",
		"<delay xmlns='urn:xmpp:delay' stamp='2026-12-04T15:00:00Z'/>",
	};
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(extras); i++) {
		for (int with_id = 0; with_id <= 1; with_id++) {
			char *xml = stanza_xml("chat", CUSTOMER "/phone",
			    with_id ? "m1" : NULL, "while you were down",
			    extras[i]);
			struct inbound_msg *m = norm_ok(ctx, xml,
			    "1674091234-B7", MAX_BODY);

			if (strcmp(m->dedupe_key, "archive:1674091234-B7") !=
			    0)
				fail_msg("extra %zu, id %d: key \"%s\"", i,
				    with_id, m->dedupe_key);
			assert_string_equal(m->from_address, CUSTOMER);
			assert_string_equal(m->body, "while you were down");
			if (with_id)
				assert_string_equal(m->message_id, "m1");
			else
				assert_null(m->message_id);
			inbound_msg_free(&m);
			free(xml);
		}
	}
}

/* ---- what makes no message -------------------------------------------------- */

static void
test_types(void **state)
{
	static const struct {
		const char *type;	/* NULL: no type attribute */
		int ok;
	} cases[] = {
		{ "chat", 1 }, { "normal", 1 }, { NULL, 1 },
		{ "error", 0 }, { "groupchat", 0 }, { "headline", 0 },
		{ "", 0 }, { "CHAT", 0 },
	};
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *xml = stanza_xml(cases[i].type, CUSTOMER "/phone", "t1",
		    "hello",
		    cases[i].type != NULL && strcmp(cases[i].type, "error") ==
		    0 ? "<error type='cancel'><service-unavailable xmlns="
		    "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error>" : NULL);
		const char *why = NULL;
		struct inbound_msg *m = norm(ctx, xml, NULL, MAX_BODY, &why);

		if (cases[i].ok && m == NULL)
			fail_msg("type %s refused: %s", cases[i].type ?
			    cases[i].type : "(none)", why);
		if (!cases[i].ok && m != NULL)
			fail_msg("type %s accepted", cases[i].type);
		if (m != NULL) {
			assert_int_equal(m->channel, CHANNEL_CHAT);
			assert_string_equal(m->body, "hello");
		}
		inbound_msg_free(&m);
		free(xml);
	}
}

static void
test_refused(void **state)
{
	static const struct {
		const char *what, *xml;
	} cases[] = {
		{ "chat state only (composing)",
		    "<message xmlns='jabber:client' type='chat' id='cs1' "
		    "from='" CUSTOMER "/phone' to='" OWN "'>"
		    "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
		    "<stanza-id xmlns='urn:xmpp:sid:0' by='" OWN "' id='A2'/>"
		    "</message>" },
		{ "chat state only (active, gone)",
		    "<message type='chat' from='" CUSTOMER "/phone'>"
		    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
		    "<gone xmlns='http://jabber.org/protocol/chatstates'/>"
		    "</message>" },
		{ "a receipt",
		    "<message from='" CUSTOMER "/phone' id='r1'>"
		    "<received xmlns='urn:xmpp:receipts' id='out-1'/>"
		    "</message>" },
		{ "a displayed marker",
		    "<message type='chat' from='" CUSTOMER "/phone'>"
		    "<displayed xmlns='urn:xmpp:chat-markers:0' id='out-1'/>"
		    "</message>" },
		{ "empty body",
		    "<message type='chat' from='" CUSTOMER "/phone'><body/>"
		    "</message>" },
		{ "whitespace-only body",
		    "<message type='chat' from='" CUSTOMER "/phone'>"
		    "<body> \t\r\n  \n</body></message>" },
		{ "whitespace by entity",
		    "<message type='chat' from='" CUSTOMER "/phone'>"
		    "<body>&#x20;&#x9;&#xA;&#xD;</body></message>" },
		{ "our own message, our resource",
		    "<message type='chat' from='" OWN "/escalon' "
		    "to='" CUSTOMER "'><body>Hello Jane</body></message>" },
		{ "our own message, another resource",
		    "<message type='chat' from='" OWN "/agent-phone' "
		    "to='" CUSTOMER "'><body>Hello Jane</body></message>" },
		{ "our own message, bare",
		    "<message type='chat' from='" OWN "'>"
		    "<body>Hello Jane</body></message>" },
		{ "our own message, other case",
		    "<message type='chat' from='Support@EXAMPLE.test/Gajim'>"
		    "<body>Hello Jane</body></message>" },
		{ "no from",
		    "<message type='chat' to='" OWN "'><body>hi</body>"
		    "</message>" },
		{ "from without a domain",
		    "<message type='chat' from='jane@/phone'><body>hi</body>"
		    "</message>" },
		{ "from with an empty node",
		    "<message type='chat' from='@example.test/x'>"
		    "<body>hi</body></message>" },
	};
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const char *why = NULL;
		struct inbound_msg *m = norm(ctx, cases[i].xml, NULL,
		    MAX_BODY, &why);

		if (m != NULL)
			fail_msg("%s: made a message (key %s)", cases[i].what,
			    m->dedupe_key);
		print_message("%s: %s\n", cases[i].what, why);
		/* A MAM replay is refused just the same. */
		m = norm(ctx, cases[i].xml, "R1", MAX_BODY, &why);
		if (m != NULL)
			fail_msg("%s (replay): made a message", cases[i].what);
	}
}

/* ---- bodies ---------------------------------------------------------------- */

/* A body of n copies of ch (an encoded character), NUL-terminated. */
static char *
repeat(const char *ch, size_t n)
{
	size_t w = strlen(ch);
	char *s = malloc(n * w + 1);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * w, ch, w);
	s[n * w] = '\0';
	return s;
}

static void
test_truncate_utf8(void **state)
{
	static const struct {
		const char *ch;		/* the character repeated */
		size_t n, max;		/* copies, max_body */
		size_t want;		/* bytes kept */
		int truncated;
	} cases[] = {
		{ "\xf0\x9f\x98\x80", 10, 9, 8, 1 },	/* U+1F600, 1 in 4 */
		{ "\xf0\x9f\x98\x80", 10, 10, 8, 1 },	/* 2 in 4 */
		{ "\xf0\x9f\x98\x80", 10, 11, 8, 1 },	/* 3 in 4 */
		{ "\xf0\x9f\x98\x80", 10, 12, 12, 1 },	/* on a boundary */
		{ "\xe2\x82\xac", 10, 7, 6, 1 },	/* euro, 1 in 3 */
		{ "\xe2\x82\xac", 10, 8, 6, 1 },	/* 2 in 3 */
		{ "\xc3\xa9", 10, 5, 4, 1 },		/* e acute */
		{ "\xc3\xa9", 10, 6, 6, 1 },
		{ "x", 10, 9, 9, 1 },
		{ "\xe2\x82\xac", 10, 30, 30, 0 },	/* exactly max */
		{ "\xe2\x82\xac", 10, 31, 30, 0 },
	};
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *body = repeat(cases[i].ch, cases[i].n);
		char *xml = stanza_xml("chat", CUSTOMER "/phone", "t1", body,
		    NULL);
		struct inbound_msg *m = norm_ok(ctx, xml, NULL, cases[i].max);
		size_t full = strlen(body);

		if (strlen(m->body) != cases[i].want ||
		    memcmp(m->body, body, cases[i].want) != 0)
			fail_msg("case %zu: kept %zu bytes, want %zu", i,
			    strlen(m->body), cases[i].want);
		assert_int_equal(m->truncated, cases[i].truncated);
		assert_int_equal(m->raw_size, cases[i].truncated ?
		    (int64_t)full : 0);
		/* The subject comes from what was kept. */
		assert_string_equal(m->subject, m->body);
		inbound_msg_free(&m);
		free(xml);
		free(body);
	}
}

/* A long mixed body cut inside a character, with the line structure. */
static void
test_truncate_mixed(void **state)
{
	xmpp_ctx_t *ctx = *state;
	const char *body = "Bonjour \xc3\xa0 vous \xf0\x9f\x98\x80\n"
	    "deuxi\xc3\xa8me ligne \xe2\x82\xac\xe2\x82\xac";
	char *xml = stanza_xml("chat", CUSTOMER "/phone", "t1", body, NULL);
	size_t full = strlen(body);

	for (size_t max = 1; max <= full + 1; max++) {
		struct inbound_msg *m = norm_ok(ctx, xml, NULL, max);
		size_t kept = strlen(m->body);

		if (kept > max || memcmp(m->body, body, kept) != 0)
			fail_msg("max %zu: kept %zu bytes, not a prefix", max,
			    kept);
		/* Nothing more fits: the next character would pass max. */
		if (kept < full && max < full) {
			size_t next = kept + 1;
			while (next < full &&
			    ((unsigned char)body[next] & 0xc0) == 0x80)
				next++;
			if (next <= max)
				fail_msg("max %zu: kept %zu, %zu fit", max,
				    kept, next);
		}
		assert_int_equal(m->truncated, max < full);
		assert_int_equal(m->raw_size, max < full ? (int64_t)full : 0);
		inbound_msg_free(&m);
	}
	free(xml);
}

static void
test_subject(void **state)
{
	/* XML turns a literal CR LF into LF: a CR is sent as &#xD;. */
	static const struct {
		const char *xml_body, *body, *subject;
	} cases[] = {
		{ "one line", "one line", "one line" },
		{ "\n\n\nthird line is first\nthen",
		    "\n\n\nthird line is first\nthen", "third line is first" },
		{ "   \n\t\n  &#xD;\n  padded  \t\nnext",
		    "   \n\t\n  \r\n  padded  \t\nnext", "padded" },
		{ "&#xD;\n&#xD;\nWindows line&#xD;\nnext",
		    "\r\n\r\nWindows line\r\nnext", "Windows line" },
		{ "a&#xD;b", "a\rb", "a" },
		{ "\r\nliteral CR LF", "\nliteral CR LF", "literal CR LF" },
		{ "  \xe2\x80\x94 dash first\n", "  \xe2\x80\x94 dash first\n",
		    "\xe2\x80\x94 dash first" },
		{ "trailing tabs\t\t\t", "trailing tabs\t\t\t",
		    "trailing tabs" },
	};
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *xml = stanza_xml("chat", CUSTOMER "/phone", "s1",
		    cases[i].xml_body, NULL);
		struct inbound_msg *m = norm_ok(ctx, xml, NULL, MAX_BODY);

		if (strcmp(m->subject, cases[i].subject) != 0)
			fail_msg("case %zu: subject \"%s\", want \"%s\"", i,
			    m->subject, cases[i].subject);
		assert_string_equal(m->body, cases[i].body);
		inbound_msg_free(&m);
		free(xml);
	}
}

/* A first line over SUBJECT_MAX bytes: cut on a character, a prefix. */
static void
test_subject_long(void **state)
{
	static const char *const chars[] = { "x", "\xc3\xa9", "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80" };
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(chars); i++) {
		char *line = repeat(chars[i], 300), *body, *xml;
		struct inbound_msg *m;
		size_t n;

		assert_true(asprintf(&body, "%s\nsecond", line) > 0);
		xml = stanza_xml("chat", CUSTOMER "/phone", "s1", body, NULL);
		m = norm_ok(ctx, xml, NULL, MAX_BODY);
		n = strlen(m->subject);
		if (n > SUBJECT_MAX || n + strlen(chars[i]) <= SUBJECT_MAX ||
		    strncmp(m->subject, line, n) != 0)
			fail_msg("%zu-byte characters: subject of %zu bytes",
			    strlen(chars[i]), n);
		assert_string_equal(m->body, body);
		inbound_msg_free(&m);
		free(xml);
		free(body);
		free(line);
	}
}

static void
test_big_body(void **state)
{
	xmpp_ctx_t *ctx = *state;
	size_t n = 1u << 20;
	char *body = malloc(n + 1), *xml;
	struct inbound_msg *m;

	assert_non_null(body);
	for (size_t i = 0; i < n; i++)
		body[i] = (i + 1) % 64 == 0 ? '\n' : (char)('a' + i % 26);
	body[n] = '\0';
	xml = stanza_xml("chat", CUSTOMER "/phone", "big1", body, NULL);

	/* Under the limit: all of it. */
	m = norm_ok(ctx, xml, NULL, n);
	assert_int_equal(strlen(m->body), n);
	assert_memory_equal(m->body, body, n);
	assert_int_equal(m->truncated, 0);
	assert_int_equal(strlen(m->subject), 63);
	inbound_msg_free(&m);

	/* Over it: cut, the full size kept. */
	m = norm_ok(ctx, xml, NULL, 64u << 10);
	assert_int_equal(strlen(m->body), 64u << 10);
	assert_int_equal(m->truncated, 1);
	assert_int_equal(m->raw_size, (int64_t)n);
	inbound_msg_free(&m);
	free(xml);
	free(body);
}

/* libstrophe decodes entities; what reaches us is the text. */
static void
test_entities(void **state)
{
	static const struct {
		const char *xml_body, *body;
	} cases[] = {
		{ "a &lt;b&gt; &amp; c", "a <b> & c" },
		{ "&#x1F600; smile", "\xf0\x9f\x98\x80 smile" },
		{ "&#128512;&#xe9;&#8364;",
		    "\xf0\x9f\x98\x80\xc3\xa9\xe2\x82\xac" },
		{ "&quot;quoted&quot; &apos;single&apos;",
		    "\"quoted\" 'single'" },
		{ "<![CDATA[<script>alert(1)</script> & co]]>",
		    "<script>alert(1)</script> & co" },
		{ "&amp;lt; stays once-decoded", "&lt; stays once-decoded" },
		{ "tab&#x9;and&#xA;newline", "tab\tand\nnewline" },
	};
	xmpp_ctx_t *ctx = *state;

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *xml = stanza_xml("chat", CUSTOMER "/phone", "e1",
		    cases[i].xml_body, NULL);
		struct inbound_msg *m = norm_ok(ctx, xml, NULL, MAX_BODY);

		if (strcmp(m->body, cases[i].body) != 0)
			fail_msg("case %zu: body \"%s\", want \"%s\"", i,
			    m->body, cases[i].body);
		inbound_msg_free(&m);
		free(xml);
	}
}

/* Attribute values are decoded too: id and stanza-id with entities. */
static void
test_entity_ids(void **state)
{
	xmpp_ctx_t *ctx = *state;
	struct inbound_msg *m = norm_ok(ctx,
	    "<message type='chat' id='a&amp;b&lt;c' from='" CUSTOMER "/p'>"
	    "<body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='" OWN "' "
	    "id='S&#xe9;1'/></message>", NULL, MAX_BODY);

	assert_string_equal(m->message_id, "a&b<c");
	assert_string_equal(m->dedupe_key, "archive:S\xc3\xa9" "1");
	inbound_msg_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bare_jid),
		cmocka_unit_test(test_live_message),
		cmocka_unit_test(test_foreign_stanza_id),
		cmocka_unit_test(test_no_id_hash),
		cmocka_unit_test(test_archive_replay),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_truncate_utf8),
		cmocka_unit_test(test_truncate_mixed),
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_subject_long),
		cmocka_unit_test(test_big_body),
		cmocka_unit_test(test_entities),
		cmocka_unit_test(test_entity_ids),
	};

	return cmocka_run_group_tests(tests, setup_ctx, teardown_ctx);
}
