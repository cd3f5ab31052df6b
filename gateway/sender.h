/*
 * sender: delivers what the outbox holds. One per core; libcurl multi
 * driven by the core loop's fds and timers; at most SENDER_MAX_IN_FLIGHT
 * messages at once. Each transport (HTTP, SMTP, XMPP) is a slot in a
 * table chosen by the row's channel; XMPP goes through the chat children.
 *
 * The sender reads the policy (outbox retries) and signing keys from the
 * conf it was last given, so a reload applies to what is still queued.
 */
#ifndef ESCALON_SENDER_H
#define ESCALON_SENDER_H

#include <stddef.h>
#include <stdint.h>

struct sender;
struct loop;
struct store;
struct conf;
struct clock;
struct json_t;

#define SENDER_MAX_IN_FLIGHT 16
#define SENDER_HTTP_TIMEOUT 30		/* seconds for one HTTP attempt */
#define SENDER_SMTP_TIMEOUT 120		/* seconds for one SMTP attempt */

struct sender *sender_new(struct loop *l, struct store *st,
    const struct clock *clock, const struct conf *c, char **error_r);
/* Ends transfers in flight; their rows go out again at the next start. */
void sender_free(struct sender **sp);

void sender_set_conf(struct sender *s, const struct conf *c);
/* Rows may have become due (just queued, or retried by hand): look now. */
void sender_kick(struct sender *s);
size_t sender_in_flight(const struct sender *s);

/*
 * Each transport's state for /healthz: {"http"|"smtp"|"xmpp": {"state":
 * "unused"|"ok"|"failing"}}, failing (with "since", "error", "failures")
 * while one of its destinations is held as unreachable; *up_r is 0 while
 * one is failing.
 */
struct json_t *sender_health(const struct sender *s, int *up_r);

/*
 * Chat rows (channel "xmpp") leave through the chat children, not libcurl:
 * the sender hands each to fn (account: the row's signer, "xmpp:NAME"),
 * and whoever took it reports back with sender_chat_done. fn returns 0
 * when it took the row; else *error_r says why, and the row is retried
 * (SENDER_TRY_LATER: the account is down) or dead (-1: there is no such
 * account).
 */
#define SENDER_TRY_LATER (-2)
typedef int sender_chat_fn(void *arg, int64_t row_id, const char *account,
    const char *to, const char *stanza_id, const char *body, size_t len,
    const char **error_r);
void sender_set_chat(struct sender *s, sender_chat_fn *fn, void *arg);
/* A chat account is online again: its waiting rows go now. */
void sender_chat_online(struct sender *s, const char *account);
void sender_chat_done(struct sender *s, int64_t row_id, int delivered,
    int permanent, const char *error);

#endif
