/*
 * mime: one raw RFC 5322 mail -> one normalised inbound_msg (channel.h).
 *
 * The riskiest input escalon parses, so it runs in the mailbox child (and in
 * `escalon deliver`), never in the core. libetpan's mailmime parses; every
 * charset iconv knows becomes UTF-8 (unknown ones: best effort, invalid
 * bytes replaced); HTML-only mail becomes readable text through libxml2's
 * HTML parser. Every string the result holds is valid UTF-8 without NUL.
 *
 * Bounded by the limits: a mail over max_message_size keeps only its
 * header (truncated = 1, no body parsed); the parts walked, their nesting
 * and the text kept are capped, so hostile mail costs bounded time and
 * memory.
 */
#ifndef ESCALON_MIME_H
#define ESCALON_MIME_H

#include <stddef.h>

#include "channel.h"

struct mime_limits {
	size_t max_message_size;	/* raw kept up to this; over: truncated */
	size_t max_attachment_size;	/* attachment data kept up to this */
	const char *own_address;	/* X-Loop with it -> INBOUND_AUTO_LOOP;
					   NULL: none */
};

/*
 * Parse raw[0..len) into a new message (*out, the caller frees with
 * inbound_msg_free). Sets channel = CHANNEL_EMAIL, dedupe_scope "email" and
 * dedupe_key (the Message-ID as written between <>, with the brackets, or
 * "sha256:" and the hex SHA-256 of raw when there is none), from_* (scope
 * "email", address lowercased), subject (RFC 2047 decoded, unfolded),
 * message_id / in_reply_to / references ("<...>" each), body (text/plain,
 * UTF-8) or html_text (when the mail has only HTML), attachments (RFC 2231
 * and 2047 names), recipients, cc, auto_submitted and bounce_of, raw
 * (capped) and truncated. source, queue and received_at are the caller's.
 *
 * Never fails on malformed mail: what cannot be parsed is left out (a mail
 * with no parsable header still gets its dedupe key, raw and a body).
 * Returns 0, or -1 only when out of memory (err says so).
 */
int mime_normalize(const char *raw, size_t len, const struct mime_limits *lim,
    struct inbound_msg **out, char *err, size_t err_len);

/*
 * A mail set aside without parsing (it crashed the parser before): a
 * message with no sender, the subject "(mail not parsed)", why in its body,
 * the raw source kept (capped as above) and "unparsed:sha256:HEX" as its
 * dedupe key. Reads nothing of raw but its header's end. 0, or -1 out of memory.
 */
int mime_unparsed(const char *raw, size_t len, const struct mime_limits *lim,
    const char *why, struct inbound_msg **out);

#endif
