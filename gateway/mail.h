/*
 * mail: outbound mail as bytes: RFC 5322 headers (RFC 2047 where a value
 * is not ASCII), a quoted-printable UTF-8 text part and, when the template
 * has one, an HTML alternative. Also the signed identifiers SPEC.md
 * fixes: Message-IDs <esc-ID-N.MAC@domain> and reply tokens.
 *
 * Lines end in CRLF; headers are folded at their blanks to lines of 78.
 * Text that cannot be (Subject or an operator's header with a very long
 * word) becomes RFC 2047 words, which a reader decodes back exactly. Only
 * an address or message id longer than a line passes 78; one that would
 * pass RFC 5322's 998 is left out, or a server refuses the whole mail.
 */
#ifndef ESCALON_MAIL_H
#define ESCALON_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "tmplset.h"

#define MAIL_TOKEN_LEN 16	/* base32 characters of a reply token */

struct mail_out {
	const char *from;		/* "Support <support@example.test>" */
	const char *to;			/* an address */
	const char *cc;			/* "a@x, b@y", or NULL */
	const char *reply_to;		/* or NULL */
	const char *message_id;		/* "<...>" */
	const char *in_reply_to;	/* or NULL */
	const char *references;		/* "<a> <b>", or NULL: in_reply_to */
	const char *x_loop;		/* X-Loop, or NULL */
	int64_t date;
	enum mail_auto {
		MAIL_PERSON,		/* an agent wrote it */
		MAIL_AUTO_GENERATED,	/* Auto-Submitted: auto-generated */
		MAIL_AUTO_REPLIED,	/* auto-replied: an answer to mail */
	} automatic;
	const struct rendered *r;	/* Subject and other headers, text,
					   html */
};

/* The whole message (heap, caller frees) and its length; NULL if OOM. */
char *mail_compose(const struct mail_out *m, size_t *len_r);

/*
 * The reply token of a ticket: MAIL_TOKEN_LEN lowercase base32 characters
 * of HMAC-SHA256("ticket:ID") under secret, into out (17 bytes).
 */
void mail_token(int64_t ticket_id, const char *secret, char *out);

/* "<esc-ID-N.MAC@domain>" with MAC the token of "ID-N"; out >= 128. */
void mail_message_id(int64_t ticket_id, uint64_t n, const char *secret,
    const char *domain, char *out, size_t len);

/* 1 when token is ticket_id's reply token under secret (constant time). */
int mail_token_ok(int64_t ticket_id, const char *token, const char *secret);

/*
 * address is ours ("support@x") with a reply token ("support+12.TOKEN@x"):
 * 1 and *ticket_r when the token is valid for that ticket, -1 when it is
 * not (forged, or for another ticket), 0 when it is no such address.
 */
int mail_reply_address_ticket(const char *address, const char *ours,
    const char *secret, int64_t *ticket_r);

/*
 * message_id is one of ours ("<esc-ID-N.MAC@domain>"): 1 and *ticket_r
 * when its MAC is right, -1 when forged, 0 when it is not of that form.
 */
int mail_message_id_ticket(const char *message_id, const char *secret,
    int64_t *ticket_r);

/* The domain of an address ("a@b.test" -> "b.test"), or "localhost". */
const char *mail_domain(const char *address);

#endif
