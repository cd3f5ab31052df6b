/*
 * fuzz_webhook: webhook_accept (channels/webhook.h), the signature check
 * and JSON validation of an inbound webhook, with a fixed secret.
 *
 * Input: one flag byte, then the rest.
 *   flag & 1 == 1  the rest is the body, signed with the secret (flag & 2:
 *                  the hex in upper case), so it reaches the JSON half;
 *   flag & 1 == 0  the rest up to the first newline is the
 *                  X-Escalon-Signature header (flag & 2: no header at
 *                  all), what follows it the body.
 * The body is handed over in a buffer of exactly its length (no NUL after
 * it), as libmicrohttpd hands it, so reading past it is caught.
 *
 * Checked, aborting when broken:
 *   - a message comes back exactly when *status_r is 0; otherwise the
 *     status is 400 or 401 with a reason;
 *   - a signed body is never 401; a fuzzed header is accepted only when
 *     it is the body's signature;
 *   - an accepted message is what webhook.h says: channel webhook, scope
 *     and source "webhook:shop", queue "billing", id, customer id,
 *     subject and body present and within their limits, a known
 *     severity, an http(s) reply_url, every string valid UTF-8.
 *
 * jansson's hash seed is fixed (json_object_seed) so runs repeat.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "channel.h"
#include "crypto.h"
#include "webhook.h"

#define SECRET	"fuzz-secret"
#define NOW	INT64_C(1796117400)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "sha256=<hex>" of body, into sig (80 bytes). */
static void
sign(const char *body, size_t len, int upper, char *sig)
{
	unsigned char mac[CRYPTO_SHA256_LEN];

	if (crypto_hmac_sha256(SECRET, strlen(SECRET), body, len, mac) < 0)
		abort();
	memcpy(sig, "sha256=", 7);
	crypto_hex(mac, sizeof(mac), sig + 7);
	if (upper)
		for (char *p = sig + 7; *p != '\0'; p++)
			if (*p >= 'a' && *p <= 'f')
				*p = (char)(*p - 'a' + 'A');
}

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_webhook: not " #cond "\n"); \
		abort(); \
	} \
} while (0)

static void
check_str(const char *s, size_t max)
{
	if (s == NULL)
		return;
	CHECK(utf8_valid(s, strlen(s)));
	CHECK(strlen(s) <= max);
}

static void
check_msg(const struct inbound_msg *m)
{
	CHECK(m->channel == CHANNEL_WEBHOOK);
	CHECK(m->received_at == NOW);
	CHECK(m->source != NULL && strcmp(m->source, "webhook:shop") == 0);
	CHECK(m->dedupe_scope != NULL &&
	    strcmp(m->dedupe_scope, "webhook:shop") == 0);
	CHECK(m->from_scope != NULL &&
	    strcmp(m->from_scope, "webhook:shop") == 0);
	CHECK(m->queue != NULL && strcmp(m->queue, "billing") == 0);
	CHECK(m->dedupe_key != NULL && m->dedupe_key[0] != '\0');
	CHECK(m->from_address != NULL && m->from_address[0] != '\0');
	CHECK(m->subject != NULL && m->body != NULL);
	CHECK(m->message_id != NULL &&
	    strcmp(m->message_id, m->dedupe_key) == 0);
	check_str(m->dedupe_key, WEBHOOK_MAX_ID);
	check_str(m->from_address, WEBHOOK_MAX_ID);
	check_str(m->thread_key, WEBHOOK_MAX_ID);
	check_str(m->from_name, WEBHOOK_MAX_SUBJECT);
	check_str(m->from_email, WEBHOOK_MAX_SUBJECT);
	check_str(m->subject, WEBHOOK_MAX_SUBJECT);
	check_str(m->body, SIZE_MAX);
	check_str(m->reply_url, WEBHOOK_MAX_URL);
	if (m->severity != NULL)
		CHECK(strcmp(m->severity, "low") == 0 ||
		    strcmp(m->severity, "normal") == 0 ||
		    strcmp(m->severity, "high") == 0 ||
		    strcmp(m->severity, "critical") == 0);
	if (m->reply_url != NULL)
		CHECK(strncasecmp(m->reply_url, "http://", 7) == 0 ||
		    strncasecmp(m->reply_url, "https://", 8) == 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sig[80], want[80], *header = NULL, *body;
	const uint8_t *rest;
	size_t len;
	int flag, signed_ok, status = -1;
	const char *reason = NULL;
	struct inbound_msg *m;

	if (size == 0)
		return 0;
	flag = data[0];
	rest = data + 1;
	len = size - 1;
	signed_ok = flag & 1;
	if (!signed_ok && !(flag & 2)) {
		const uint8_t *nl = memchr(rest, '\n', len);
		size_t hlen = nl != NULL ? (size_t)(nl - rest) : len;
		if ((header = malloc(hlen + 1)) == NULL)
			return 0;
		memcpy(header, rest, hlen);
		header[hlen] = '\0';
		rest += nl != NULL ? hlen + 1 : hlen;
		len -= nl != NULL ? hlen + 1 : hlen;
	}
	/* An exact-size copy: ASan sees any read past the body. */
	if ((body = malloc(len > 0 ? len : 1)) == NULL) {
		free(header);
		return 0;
	}
	memcpy(body, rest, len);
	if (signed_ok)
		sign(body, len, flag & 2, sig);

	m = webhook_accept("shop", "billing", SECRET,
	    signed_ok ? sig : header, body, len, NOW, &status, &reason);

	CHECK((m != NULL) == (status == 0));
	if (m == NULL) {
		CHECK(status == 400 || status == 401);
		CHECK(reason != NULL);
	}
	if (signed_ok)
		CHECK(status != 401);
	else if (status != 401) {
		sign(body, len, 0, want);
		CHECK(header != NULL && strcasecmp(header, want) == 0);
	}
	if (m != NULL)
		check_msg(m);
	inbound_msg_free(&m);
	free(body);
	free(header);
	return 0;
}
