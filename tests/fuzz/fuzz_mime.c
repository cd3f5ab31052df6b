/*
 * fuzz_mime: mime_normalize (channels/mime.h) on arbitrary bytes as a raw
 * mail, the riskiest input escalon parses.
 *
 * Each input is normalised twice: with limits a real mailbox would have
 * (the whole mail parsed), and, when it is longer than SMALL_LIMIT, with
 * max_message_size = SMALL_LIMIT, so the header-only path of an oversize
 * mail is fuzzed too. What mime.h promises is checked, and a broken
 * promise aborts:
 *   - mime_normalize returns 0 (malformed mail is never an error) and a
 *     message with channel email, dedupe_scope and dedupe_key;
 *   - every string it holds is valid UTF-8 without NUL;
 *   - the message survives the trip to the core: inbound_msg_pack, then
 *     inbound_msg_unpack accepts it, and packing that gives the same
 *     bytes (the IMAP child frames exactly this).
 *
 * libxml2 is initialised once (LLVMFuzzerInitialize), and one mail with an
 * HTML part and a legacy charset is normalised there, so libxml2's, ICU's
 * and OpenSSL's process-wide state is set up before leak checking starts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "channel.h"
#include "fuzz_msg.h"
#include "mime.h"

#define SMALL_LIMIT	2048

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mime_limits full_limits = {
	.max_message_size = 1024 * 1024,
	.max_attachment_size = 1024,	/* some data kept, some dropped */
	.own_address = "support@example.test",
};

static const struct mime_limits small_limits = {
	.max_message_size = SMALL_LIMIT,
	.max_attachment_size = 1024,
	.own_address = "support@example.test",
};

static const char warm_up[] =
    "From: =?iso-8859-1?q?J=F6rg?= <jorg@example.test>\r\n"
    "To: support@example.test\r\n"
    "Subject: =?koi8-r?b?8NLJ18XU?=\r\n"
    "Message-ID: <warm@example.test>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/html; charset=windows-1252\r\n"
    "\r\n"
    "<p>caf\xe9 &amp; <b>cr\xe8me</b></p>\r\n"
    "--b--\r\n";

/* What mime.h and channel.h promise about the message. */
static void
check_msg(const struct inbound_msg *m)
{
	if (m->channel != CHANNEL_EMAIL || m->dedupe_scope == NULL ||
	    m->dedupe_key == NULL || strcmp(m->dedupe_scope, "email") != 0)
		abort();
	for (size_t i = 0; i < m->n_attachments; i++)
		if (m->attachments[i].data != NULL &&
		    m->attachments[i].size > full_limits.max_attachment_size)
			abort();
	fuzz_msg_check("fuzz_mime", m);
}

static void
one(const uint8_t *data, size_t size, const struct mime_limits *lim)
{
	struct inbound_msg *m = NULL;
	char err[128] = "";

	if (mime_normalize((const char *)data, size, lim, &m, err,
	    sizeof(err)) != 0 || m == NULL) {
		fprintf(stderr, "fuzz_mime: mime_normalize failed: %s\n", err);
		abort();
	}
	if (m->truncated != (size > lim->max_message_size))
		abort();
	check_msg(m);
	inbound_msg_free(&m);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmlInitParser();
	one((const uint8_t *)warm_up, sizeof(warm_up) - 1, &full_limits);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, &full_limits);
	if (size > SMALL_LIMIT)
		one(data, size, &small_limits);
	return 0;
}
