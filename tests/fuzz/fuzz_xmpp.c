/*
 * fuzz_xmpp: xmpp_normalize (channels/xmpp.h) on a stanza libstrophe
 * parses from fuzzed XML (xmpp_stanza_new_from_string), as the chat child
 * gets it from a server that relays what anyone sends.
 *
 * Input: one flag byte, then the XML (a NUL in it ends it).
 *   flag & 1       archive_id "arch-1" (a MAM result) instead of NULL;
 *   flag >> 1 & 3  max_body: 1, 7, 64 or 1 MiB.
 * The libstrophe context is made once (LLVMFuzzerInitialize) for account
 * OWN.
 *
 * Checked, aborting when broken:
 *   - a message comes back exactly when *why_r is NULL;
 *   - a message is chat, scope "chat" and "xmpp", from a bare JID with an
 *     '@' that is not OWN; its body is non-empty, at most max_body bytes
 *     (truncated set when cut), its subject at most SUBJECT_MAX bytes;
 *   - every string is valid UTF-8, and the message survives
 *     inbound_msg_pack / inbound_msg_unpack unchanged (the child frames
 *     exactly this to the core).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "channel.h"
#include "fuzz_msg.h"
#include "xmpp.h"

#define OWN		"support@example.test"
#define SUBJECT_MAX	200	/* xmpp.c: bytes of the body's first line */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static xmpp_ctx_t *ctx;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_xmpp: not " #cond "\n"); \
		abort(); \
	} \
} while (0)

static void
check_msg(const struct inbound_msg *m, size_t max_body)
{
	CHECK(m->channel == CHANNEL_CHAT);
	CHECK(m->dedupe_scope != NULL && strcmp(m->dedupe_scope, "chat") == 0);
	CHECK(m->dedupe_key != NULL && m->dedupe_key[0] != '\0');
	CHECK(m->from_scope != NULL && strcmp(m->from_scope, "xmpp") == 0);
	CHECK(m->from_address != NULL && strchr(m->from_address, '@') != NULL);
	CHECK(strcmp(m->from_address, OWN) != 0);
	CHECK(strchr(m->from_address, '/') == NULL);
	CHECK(m->body != NULL && strlen(m->body) <= max_body);
	CHECK(m->subject != NULL && strlen(m->subject) <= SUBJECT_MAX);
	if (m->truncated)
		CHECK(m->raw_size > (int64_t)max_body);
	fuzz_msg_check("fuzz_xmpp", m);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmpp_initialize();
	if ((ctx = xmpp_ctx_new(NULL, NULL)) == NULL) {
		fprintf(stderr, "fuzz_xmpp: no libstrophe context\n");
		exit(1);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_bodies[] = { 1, 7, 64, 1024 * 1024 };
	const char *archive_id, *why = "(not set)";
	size_t max_body;
	xmpp_stanza_t *st;
	struct inbound_msg *m;
	char *xml;

	if (size == 0)
		return 0;
	archive_id = data[0] & 1 ? "arch-1" : NULL;
	max_body = max_bodies[(data[0] >> 1) & 3];
	if ((xml = malloc(size)) == NULL)
		return 0;
	memcpy(xml, data + 1, size - 1);
	xml[size - 1] = '\0';

	if ((st = xmpp_stanza_new_from_string(ctx, xml)) != NULL) {
		m = xmpp_normalize(ctx, st, OWN, archive_id, max_body, &why);
		CHECK((m != NULL) == (why == NULL));
		if (m != NULL)
			check_msg(m, max_body);
		inbound_msg_free(&m);
		xmpp_stanza_release(st);
	}
	free(xml);
	return 0;
}
