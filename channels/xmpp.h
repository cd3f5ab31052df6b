/*
 * xmpp: the chat child (`escalon child xmpp NAME`), one process per `xmpp`
 * section, spawned and restarted by the core (gateway/child.h).
 *
 * It logs in to the support account (libstrophe: SASL, resource binding),
 * sends initial presence, and turns each <message type='chat'|'normal'>
 * with a body into a FRAME_MSG; chat states and empty bodies make nothing.
 * Each message is followed by FRAME_COMMIT carrying its archive id (the
 * XEP-0359 stanza-id the server's archive gave it), which the core stores
 * with the message as the checkpoint.
 *
 * After every (re)connect it catches up from the server's archive
 * (XEP-0313 MAM, paged with RSM) from the last committed archive id, so a
 * message that arrived while the gateway was down, or was lost in a
 * crash, becomes a ticket; dedupe by archive id keeps replays from making
 * anything twice. A server without an archive is said so in the log; then
 * offline storage is all there is.
 *
 * The core frames outbound chat messages to it (FRAME_SEND); each goes out
 * with the outbox row's delivery id as its stanza id, so a resend after a
 * crash is recognisable, and is answered with FRAME_SENT.
 *
 * FRAME_START is JSON: {"name", "jid", "password", "host", "port", "tls"
 * ("none", "starttls", "tls"), "tls_verify", "ca_file", "queue",
 * "max_message_size", "checkpoint" (an archive id, or absent)}.
 */
#ifndef ESCALON_XMPP_H
#define ESCALON_XMPP_H

#include <stddef.h>
#include <strophe.h>

struct inbound_msg;

/* Runs the child on fd until the core closes it; returns the exit code. */
int xmpp_child_main(int fd);

/* "User@Example.test/res" -> "user@example.test" (heap), or NULL when
 * it is not a JID with a domain. Node and domain are lowercased. */
char *xmpp_bare_jid(const char *jid);

/*
 * One <message/> stanza to an inbound message, for the account own_jid
 * (bare). archive_id: the MAM result id when the
 * stanza came from the archive (NULL: live, take the stanza-id the server
 * stamped). NULL and *why_r when it makes no message (a chat state, an
 * empty body, an error, our own message, not UTF-8 ...). The body is cut
 * at max_body bytes (truncated set).
 */
struct inbound_msg *xmpp_normalize(xmpp_ctx_t *ctx, xmpp_stanza_t *msg,
    const char *own_jid, const char *archive_id, size_t max_body,
    const char **why_r);

#endif
