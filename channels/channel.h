/*
 * channel: what every channel hands the core. A mail from the IMAP child, a
 * chat stanza from the XMPP child, a webhook POST: each becomes one struct
 * inbound_msg, and the core's ingest turns it into a ticket or a follow-up.
 *
 * An inbound_msg owns all its strings (inbound_msg_free releases them).
 * Fields a channel does not have stay NULL / 0.
 */
#ifndef ESCALON_CHANNEL_H
#define ESCALON_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

enum channel_kind { CHANNEL_EMAIL, CHANNEL_CHAT, CHANNEL_WEBHOOK };

/* Why a message counts as automatic (inbound_msg.auto_submitted). */
enum {
	INBOUND_AUTO_SUBMITTED = 1 << 0,	/* Auto-Submitted, X-Autoreply,
						   X-Auto-Response-Suppress */
	INBOUND_AUTO_BULK = 1 << 1,		/* Precedence: bulk|junk|list */
	INBOUND_AUTO_LIST = 1 << 2,		/* List-Id, List-Unsubscribe */
	INBOUND_AUTO_BOUNCE = 1 << 3,		/* a DSN (multipart/report,
						   message/delivery-status) or
						   from MAILER-DAEMON */
	INBOUND_AUTO_LOOP = 1 << 4,		/* our own X-Loop */
};

struct inbound_attachment {
	char *name, *type;
	size_t size;
	unsigned char *data;	/* NULL when over max_attachment_size */
};

struct inbound_msg {
	enum channel_kind channel;
	char *source;		/* "webhook:shop", "mailbox:support", "xmpp:chat" */
	char *queue;		/* the source's queue */

	/*
	 * Dedupe: (dedupe_scope, dedupe_key) names this message forever.
	 * Mail: scope "email", key the Message-ID (or sha256 of the raw
	 * source). Chat: "chat", the stanza id. Webhook: "webhook:NAME", id.
	 */
	char *dedupe_scope, *dedupe_key;

	/* Who: identity scope and address (mail address, bare JID, the
	 * webhook customer's id), and what else we learnt of them. */
	char *from_scope, *from_address, *from_name, *from_email;

	char *subject;
	char *body;		/* text, UTF-8 */
	char *html_text;	/* text derived from an HTML part, or NULL */

	/* Threading. */
	char *thread_key;	/* webhook "thread" */
	char *message_id;	/* shown as the message's id */
	char *in_reply_to;
	char **references;
	size_t n_references;

	/* Requested by the source (webhook), checked by the caller. */
	char *severity;
	char *reply_url;

	/* Loop protection: RFC 3834 and friends said "automatic"; a bit set
	 * of INBOUND_AUTO_* saying why (0: a person wrote it). */
	int auto_submitted;
	char *bounce_of;	/* a DSN: the Message-ID it reports on */

	/* Mail: every address the mail went to (To, Cc, Delivered-To,
	 * X-Original-To), lowercased, and the Cc'd ones alone. */
	char **recipients;
	size_t n_recipients;
	char **cc;
	size_t n_cc;

	struct inbound_attachment *attachments;
	size_t n_attachments;
	unsigned char *raw;	/* the source, capped; NULL if none */
	size_t raw_len;
	int truncated;		/* over max_message_size: headers and a note */
	int64_t raw_size;	/* the whole source's size when truncated */

	int64_t received_at;
};

const char *channel_name(enum channel_kind k);	/* email, chat, webhook */

void inbound_msg_free(struct inbound_msg **mp);

/*
 * The message as bytes, for a frame from a channel child: tagged fields
 * (u8 tag, u32 big-endian length, bytes). *buf_r is the caller's. 0, or -1
 * when out of memory.
 */
int inbound_msg_pack(const struct inbound_msg *m, char **buf_r,
    size_t *len_r);

/*
 * Back from bytes. The core trusts a child no more than it must: unknown
 * tags, truncated fields, text that is not UTF-8 or holds NUL are refused
 * (NULL, *why_r says which).
 */
struct inbound_msg *inbound_msg_unpack(const char *buf, size_t len,
    const char **why_r);

/*
 * What a message of a mailbox or chat account is, as the core decides it
 * (a child parses hostile input and is trusted no further): its channel,
 * source, queue and scopes ("email"/"email", "chat"/"xmpp"); the fields
 * only webhooks may set are cleared. 0, or -1 when out of memory.
 */
int inbound_msg_claim(struct inbound_msg *m, enum channel_kind channel,
    const char *source, const char *queue);

/* 1 when s[0..len) is valid UTF-8 without NUL. */
int utf8_valid(const char *s, size_t len);

#endif
