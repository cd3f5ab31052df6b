/*
 * fuzz_msg: what every parser that makes a normalised message promises
 * about it (channel.h), checked the same way by each fuzz target: every
 * string and list entry is UTF-8 (no NULL inside a list), and pack ->
 * unpack -> pack gives the same bytes. Header-only; who names the target
 * in what it prints before it aborts.
 */
#ifndef ESCALON_FUZZ_MSG_H
#define ESCALON_FUZZ_MSG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

static inline void
fuzz_msg_str(const char *who, const char *s)
{
	if (s != NULL && !utf8_valid(s, strlen(s))) {
		fprintf(stderr, "%s: a string is not UTF-8: \"%s\"\n", who, s);
		abort();
	}
}

static inline void
fuzz_msg_list(const char *who, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == NULL) {
			fprintf(stderr, "%s: NULL inside a list\n", who);
			abort();
		}
		fuzz_msg_str(who, v[i]);
	}
}

static inline void
fuzz_msg_check(const char *who, const struct inbound_msg *m)
{
	const char *strs[] = { m->source, m->queue, m->dedupe_scope,
	    m->dedupe_key, m->from_scope, m->from_address, m->from_name,
	    m->from_email, m->subject, m->body, m->html_text, m->thread_key,
	    m->message_id, m->in_reply_to, m->severity, m->reply_url,
	    m->bounce_of };
	char *p1 = NULL, *p2 = NULL;
	size_t l1, l2;
	const char *why;
	struct inbound_msg *back;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		fuzz_msg_str(who, strs[i]);
	fuzz_msg_list(who, m->references, m->n_references);
	fuzz_msg_list(who, m->recipients, m->n_recipients);
	fuzz_msg_list(who, m->cc, m->n_cc);
	for (size_t i = 0; i < m->n_attachments; i++) {
		fuzz_msg_str(who, m->attachments[i].name);
		fuzz_msg_str(who, m->attachments[i].type);
	}

	if (inbound_msg_pack(m, &p1, &l1) < 0)
		abort();
	if ((back = inbound_msg_unpack(p1, l1, &why)) == NULL) {
		fprintf(stderr, "%s: a packed message does not unpack: %s\n",
		    who, why);
		abort();
	}
	if (inbound_msg_pack(back, &p2, &l2) < 0)
		abort();
	if (l1 != l2 || memcmp(p1, p2, l1) != 0) {
		fprintf(stderr, "%s: pack/unpack changed the message\n", who);
		abort();
	}
	inbound_msg_free(&back);
	free(p1);
	free(p2);
}

#endif
