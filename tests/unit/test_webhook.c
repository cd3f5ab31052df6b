/*
 * test_webhook: webhook_accept, the 401/400 half of SPEC.md "HTTP": a
 * signed body becomes an inbound_msg, anything else a status and a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel.h"
#include "crypto.h"
#include "webhook.h"

#define SECRET "s3cret"
#define NOW INT64_C(1796117400)

/* "sha256=<hex>" of body under secret, into sig (80 bytes). */
static void
sign(const char *secret, const char *body, size_t len, char *sig)
{
	unsigned char mac[CRYPTO_SHA256_LEN];

	assert_int_equal(crypto_hmac_sha256(secret, strlen(secret), body, len,
	    mac), 0);
	memcpy(sig, "sha256=", 7);
	crypto_hex(mac, sizeof(mac), sig + 7);
}

/* webhook_accept with a valid signature. */
static struct inbound_msg *
accept_signed(const char *body, int *status_r, const char **reason_r)
{
	char sig[80];

	sign(SECRET, body, strlen(body), sig);
	*reason_r = NULL;
	return webhook_accept("shop", "billing", SECRET, sig, body,
	    strlen(body), NOW, status_r, reason_r);
}

/* ---- accepted ---------------------------------------------------------- */

static void
test_full_message(void **state)
{
	const char *body =
	    "{\"id\": \"evt-1\", \"thread\": \"order-77\","
	    " \"customer\": {\"id\": \"cust-9\", \"name\": \"Ada Lovelace\","
	    " \"email\": \"ada@example.test\"},"
	    " \"subject\": \"Refund please\", \"body\": \"Order 77 \\u00e9\","
	    " \"severity\": \"high\","
	    " \"reply_url\": \"https://shop.example.test/hook\","
	    " \"extra\": {\"ignored\": true}}";
	struct inbound_msg *m;
	const char *reason;
	int status = -1;

	(void)state;
	m = accept_signed(body, &status, &reason);
	if (m == NULL)
		fail_msg("refused %d: %s", status, reason);
	assert_int_equal(m->channel, CHANNEL_WEBHOOK);
	assert_string_equal(m->source, "webhook:shop");
	assert_string_equal(m->queue, "billing");
	assert_string_equal(m->dedupe_scope, "webhook:shop");
	assert_string_equal(m->dedupe_key, "evt-1");
	assert_string_equal(m->message_id, "evt-1");
	assert_string_equal(m->from_scope, "webhook:shop");
	assert_string_equal(m->from_address, "cust-9");
	assert_string_equal(m->from_name, "Ada Lovelace");
	assert_string_equal(m->from_email, "ada@example.test");
	assert_string_equal(m->subject, "Refund please");
	assert_string_equal(m->body, "Order 77 \xc3\xa9");
	assert_string_equal(m->severity, "high");
	assert_string_equal(m->reply_url, "https://shop.example.test/hook");
	assert_string_equal(m->thread_key, "order-77");
	assert_int_equal(m->received_at, NOW);
	assert_null(m->in_reply_to);
	assert_int_equal(m->n_references, 0);
	inbound_msg_free(&m);
	assert_null(m);
}

static void
test_minimal_message(void **state)
{
	const char *body = "{\"id\":\"e\",\"customer\":{\"id\":\"c\"},"
	    "\"subject\":\"\",\"body\":\"\",\"thread\":null,"
	    "\"severity\":null,\"reply_url\":null}";
	struct inbound_msg *m;
	const char *reason;
	int status = -1;

	(void)state;
	m = accept_signed(body, &status, &reason);
	if (m == NULL)
		fail_msg("refused %d: %s", status, reason);
	assert_string_equal(m->subject, "");
	assert_string_equal(m->body, "");
	assert_null(m->thread_key);
	assert_null(m->severity);
	assert_null(m->reply_url);
	assert_null(m->from_name);
	assert_null(m->from_email);
	inbound_msg_free(&m);
}

/* Many systems number their events: integer ids become decimal text,
 * exactly (no trip through a double). */
static void
test_integer_ids(void **state)
{
	static const struct {
		const char *id, *cust, *thread;
		const char *want_id, *want_cust, *want_thread;
	} cases[] = {
		{ "42", "7", "9", "42", "7", "9" },
		{ "0", "-3", "\"t\"", "0", "-3", "t" },
		{ "9007199254740993", "\"c\"", "123456789012",
		  "9007199254740993", "c", "123456789012" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[300];
		struct inbound_msg *m;
		const char *reason;
		int status = -1;

		snprintf(body, sizeof(body), "{\"id\":%s,\"customer\":"
		    "{\"id\":%s},\"thread\":%s,\"subject\":\"s\","
		    "\"body\":\"b\"}", cases[i].id, cases[i].cust,
		    cases[i].thread);
		m = accept_signed(body, &status, &reason);
		if (m == NULL)
			fail_msg("case %zu refused %d: %s", i, status, reason);
		assert_string_equal(m->dedupe_key, cases[i].want_id);
		assert_string_equal(m->message_id, cases[i].want_id);
		assert_string_equal(m->from_address, cases[i].want_cust);
		assert_string_equal(m->thread_key, cases[i].want_thread);
		inbound_msg_free(&m);
	}
}

static void
test_severities_and_urls(void **state)
{
	static const char *const sevs[] = { "low", "normal", "high",
	    "critical" };
	static const char *const urls[] = { "http://a.test/x",
	    "https://b.test:8443/y?z=1" };

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		char body[300];
		struct inbound_msg *m;
		const char *reason;
		int status;

		snprintf(body, sizeof(body), "{\"id\":\"e\",\"customer\":"
		    "{\"id\":\"c\"},\"subject\":\"s\",\"body\":\"b\","
		    "\"severity\":\"%s\",\"reply_url\":\"%s\"}", sevs[i],
		    urls[i % 2]);
		m = accept_signed(body, &status, &reason);
		if (m == NULL)
			fail_msg("%s refused: %s", sevs[i], reason);
		assert_string_equal(m->severity, sevs[i]);
		assert_string_equal(m->reply_url, urls[i % 2]);
		inbound_msg_free(&m);
	}
}

/* The body is len bytes, not a C string: bytes after it are not read. */
static void
test_length_bounds_body(void **state)
{
	const char *json = "{\"id\":\"e\",\"customer\":{\"id\":\"c\"},"
	    "\"subject\":\"s\",\"body\":\"b\"}";
	char buf[200], sig[80];
	size_t len = strlen(json);
	struct inbound_msg *m;
	const char *reason = NULL;
	int status;

	(void)state;
	snprintf(buf, sizeof(buf), "%sGARBAGE", json);
	sign(SECRET, buf, len, sig);
	m = webhook_accept("shop", "billing", SECRET, sig, buf, len, NOW,
	    &status, &reason);
	if (m == NULL)
		fail_msg("refused %d: %s", status, reason);
	assert_string_equal(m->body, "b");
	inbound_msg_free(&m);
}

/* ---- 401 --------------------------------------------------------------- */

static void
test_bad_signatures(void **state)
{
	const char *body = "{\"id\":\"e\",\"customer\":{\"id\":\"c\"},"
	    "\"subject\":\"s\",\"body\":\"b\"}";
	size_t len = strlen(body);
	char good[80], wrong_key[80], cases[10][200];
	size_t n = 0;

	(void)state;
	sign(SECRET, body, len, good);
	sign("not-the-secret", body, len, wrong_key);
	snprintf(cases[n++], 200, "%s", "");
	snprintf(cases[n++], 200, "%s", "sha256=");
	snprintf(cases[n++], 200, "%s", wrong_key);
	snprintf(cases[n++], 200, "%s", good + 7);		/* no prefix */
	snprintf(cases[n++], 200, "sha1=%s", good + 7);
	snprintf(cases[n++], 200, "%.70s", good);		/* short */
	snprintf(cases[n++], 200, "%sff", good);		/* long */
	snprintf(cases[n++], 200, "sha256=%064d", 0);		/* zeros */
	snprintf(cases[n++], 200, "%s", good);
	cases[n - 1][10] = 'z';					/* not hex */
	snprintf(cases[n++], 200, "%s\n", good);

	for (size_t i = 0; i < n; i++) {
		const char *reason = NULL;
		int status = -1;
		struct inbound_msg *m = webhook_accept("shop", "billing",
		    SECRET, cases[i], body, len, NOW, &status, &reason);
		if (m != NULL) {
			inbound_msg_free(&m);
			fail_msg("accepted signature \"%s\"", cases[i]);
		}
		assert_int_equal(status, 401);
		assert_non_null(reason);
		assert_true(strlen(reason) > 0);
	}
}

static void
test_missing_signature(void **state)
{
	const char *body = "{}";
	const char *reason = NULL;
	int status = -1;

	(void)state;
	assert_null(webhook_accept("shop", "billing", SECRET, NULL, body,
	    strlen(body), NOW, &status, &reason));
	assert_int_equal(status, 401);
	assert_non_null(reason);
	assert_non_null(strstr(reason, "X-Escalon-Signature"));
}

/* A signature made over another body: the body was changed in transit. */
static void
test_tampered_body(void **state)
{
	const char *signed_body = "{\"id\":\"e\",\"customer\":{\"id\":\"c\"},"
	    "\"subject\":\"s\",\"body\":\"pay 10\"}";
	const char *sent_body = "{\"id\":\"e\",\"customer\":{\"id\":\"c\"},"
	    "\"subject\":\"s\",\"body\":\"pay 99\"}";
	char sig[80];
	const char *reason = NULL;
	int status = -1;

	(void)state;
	sign(SECRET, signed_body, strlen(signed_body), sig);
	assert_null(webhook_accept("shop", "billing", SECRET, sig, sent_body,
	    strlen(sent_body), NOW, &status, &reason));
	assert_int_equal(status, 401);
}

static void
test_uppercase_hex_accepted(void **state)
{
	const char *body = "{\"id\":\"e\",\"customer\":{\"id\":\"c\"},"
	    "\"subject\":\"s\",\"body\":\"b\"}";
	char sig[80];
	const char *reason = NULL;
	int status = -1;
	struct inbound_msg *m;

	(void)state;
	sign(SECRET, body, strlen(body), sig);
	for (char *p = sig + 7; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	m = webhook_accept("shop", "billing", SECRET, sig, body, strlen(body),
	    NOW, &status, &reason);
	if (m == NULL)
		fail_msg("refused %d: %s", status, reason);
	inbound_msg_free(&m);
}

/* SPEC.md order: the signature is checked before the JSON, so a bad
 * signature over bad JSON is a 401, not a 400. */
static void
test_signature_before_json(void **state)
{
	const char *body = "not json";
	const char *reason = NULL;
	int status = -1;

	(void)state;
	assert_null(webhook_accept("shop", "billing", SECRET,
	    "sha256=00", body, strlen(body), NOW, &status, &reason));
	assert_int_equal(status, 401);
}

/* ---- 400 --------------------------------------------------------------- */

#define C_OK "\"customer\":{\"id\":\"c\"}"
#define S_OK "\"subject\":\"s\""
#define B_OK "\"body\":\"b\""
#define ID_OK "\"id\":\"e\""

static const struct {
	const char *name;
	const char *body;
	const char *reason;	/* a substring the reason must contain */
} bad_cases[] = {
	{ "not JSON", "{\"id\": ", "JSON" },
	{ "empty body", "", "JSON" },
	{ "two documents", "{} {}", "JSON" },
	{ "JSON array", "[{\"id\":\"e\"}]", "object" },
	/* jansson refuses scalar documents as JSON already. */
	{ "JSON string", "\"hello\"", "JSON" },
	{ "JSON null", "null", "JSON" },
	{ "missing id", "{" C_OK "," S_OK "," B_OK "}", "\"id\"" },
	{ "empty id", "{\"id\":\"\"," C_OK "," S_OK "," B_OK "}", "\"id\"" },
	{ "null id", "{\"id\":null," C_OK "," S_OK "," B_OK "}", "\"id\"" },
	{ "float id", "{\"id\":1.5," C_OK "," S_OK "," B_OK "}", "\"id\"" },
	{ "bool id", "{\"id\":true," C_OK "," S_OK "," B_OK "}", "\"id\"" },
	{ "object id", "{\"id\":{}," C_OK "," S_OK "," B_OK "}", "\"id\"" },
	{ "missing customer", "{" ID_OK "," S_OK "," B_OK "}",
	  "\"customer\"" },
	{ "customer not object", "{" ID_OK ",\"customer\":\"c\"," S_OK ","
	  B_OK "}", "\"customer\"" },
	{ "customer array", "{" ID_OK ",\"customer\":[]," S_OK "," B_OK "}",
	  "\"customer\"" },
	{ "missing customer.id", "{" ID_OK ",\"customer\":{\"name\":\"n\"},"
	  S_OK "," B_OK "}", "\"customer.id\"" },
	{ "empty customer.id", "{" ID_OK ",\"customer\":{\"id\":\"\"},"
	  S_OK "," B_OK "}", "\"customer.id\"" },
	{ "customer.name not string", "{" ID_OK ",\"customer\":{\"id\":\"c\","
	  "\"name\":5}," S_OK "," B_OK "}", "\"customer.name\"" },
	{ "customer.email not string", "{" ID_OK ",\"customer\":{\"id\":\"c\","
	  "\"email\":[]}," S_OK "," B_OK "}", "\"customer.email\"" },
	{ "missing subject", "{" ID_OK "," C_OK "," B_OK "}", "\"subject\"" },
	{ "subject not string", "{" ID_OK "," C_OK ",\"subject\":7," B_OK "}",
	  "\"subject\"" },
	{ "missing body", "{" ID_OK "," C_OK "," S_OK "}", "\"body\"" },
	{ "body not string", "{" ID_OK "," C_OK "," S_OK ",\"body\":{}}",
	  "\"body\"" },
	{ "empty thread", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"thread\":\"\"}", "\"thread\"" },
	{ "thread not string", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"thread\":[1]}", "\"thread\"" },
	{ "bad severity", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"severity\":\"urgent\"}", "\"severity\"" },
	{ "severity wrong case", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"severity\":\"HIGH\"}", "\"severity\"" },
	{ "severity not string", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"severity\":3}", "\"severity\"" },
	{ "reply_url ftp", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"reply_url\":\"ftp://x.test/\"}", "\"reply_url\"" },
	{ "reply_url javascript", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"reply_url\":\"javascript:alert(1)\"}", "\"reply_url\"" },
	{ "reply_url relative", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"reply_url\":\"/hook\"}", "\"reply_url\"" },
	{ "reply_url not string", "{" ID_OK "," C_OK "," S_OK "," B_OK
	  ",\"reply_url\":1}", "\"reply_url\"" },
	{ "duplicate keys", "{\"id\":\"a\",\"id\":\"b\"," C_OK "," S_OK ","
	  B_OK "}", "duplicate key" },
	{ "duplicate keys in customer", "{" ID_OK ",\"customer\":{\"id\":"
	  "\"a\",\"id\":\"b\"}," S_OK "," B_OK "}", "duplicate key" },
	{ "invalid UTF-8", "{" ID_OK "," C_OK "," S_OK ",\"body\":\"\xff\xfe\"}",
	  "UTF-8" },
	{ "overlong UTF-8", "{" ID_OK "," C_OK "," S_OK
	  ",\"body\":\"\xc0\xaf\"}", "UTF-8" },
	{ "lone surrogate escape", "{" ID_OK "," C_OK "," S_OK
	  ",\"body\":\"\\ud800\"}", "JSON" },
	{ "NUL escape", "{" ID_OK "," C_OK "," S_OK
	  ",\"body\":\"a\\u0000b\"}", "JSON" },
};

static void
test_bad_requests(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *reason = NULL;
		int status = -1;
		struct inbound_msg *m = accept_signed(bad_cases[i].body,
		    &status, &reason);

		if (m != NULL) {
			inbound_msg_free(&m);
			fail_msg("%s: accepted", bad_cases[i].name);
		}
		if (status != 400)
			fail_msg("%s: status %d, want 400", bad_cases[i].name,
			    status);
		if (reason == NULL || strstr(reason, bad_cases[i].reason) ==
		    NULL)
			fail_msg("%s: reason \"%s\" does not name %s",
			    bad_cases[i].name, reason ? reason : "(null)",
			    bad_cases[i].reason);
	}
}

/* Size limits on the fields (WEBHOOK_MAX_*), at and just over. */
static void
test_field_limits(void **state)
{
	static const struct {
		const char *field;
		size_t at;
		const char *reason;
	} cases[] = {
		{ "id", WEBHOOK_MAX_ID, "\"id\"" },
		{ "customer", WEBHOOK_MAX_ID, "\"customer.id\"" },
		{ "thread", WEBHOOK_MAX_ID, "\"thread\"" },
		{ "subject", WEBHOOK_MAX_SUBJECT, "\"subject\"" },
	};
	static char body[8 * WEBHOOK_MAX_SUBJECT + 200], big[2 * WEBHOOK_MAX_SUBJECT];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t extra = 0; extra < 2; extra++) {
			size_t n = cases[i].at + extra;
			const char *f = cases[i].field, *reason = NULL;
			int status = -1;
			struct inbound_msg *m;

			memset(big, 'x', n);
			big[n] = '\0';
			snprintf(body, sizeof(body), "{\"id\":\"%s\","
			    "\"customer\":{\"id\":\"%s\"},\"thread\":\"%s\","
			    "\"subject\":\"%s\",\"body\":\"b\"}",
			    strcmp(f, "id") == 0 ? big : "e",
			    strcmp(f, "customer") == 0 ? big : "c",
			    strcmp(f, "thread") == 0 ? big : "t",
			    strcmp(f, "subject") == 0 ? big : "s");
			m = accept_signed(body, &status, &reason);
			if (extra == 0) {
				if (m == NULL)
					fail_msg("%s of %zu bytes refused: %s",
					    f, n, reason);
				inbound_msg_free(&m);
			} else {
				if (m != NULL) {
					inbound_msg_free(&m);
					fail_msg("%s of %zu bytes accepted", f,
					    n);
				}
				assert_int_equal(status, 400);
				assert_non_null(strstr(reason,
				    cases[i].reason));
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_message),
		cmocka_unit_test(test_minimal_message),
		cmocka_unit_test(test_integer_ids),
		cmocka_unit_test(test_severities_and_urls),
		cmocka_unit_test(test_length_bounds_body),
		cmocka_unit_test(test_bad_signatures),
		cmocka_unit_test(test_missing_signature),
		cmocka_unit_test(test_tampered_body),
		cmocka_unit_test(test_uppercase_hex_accepted),
		cmocka_unit_test(test_signature_before_json),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_field_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
