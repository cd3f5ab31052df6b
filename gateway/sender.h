/*
 * sender: delivers what the outbox holds. One per core; libcurl multi
 * driven by the core loop's fds and timers; at most SENDER_MAX_IN_FLIGHT
 * messages at once. Each transport (HTTP, SMTP; XMPP with the chat
 * channel) is a slot in a table chosen by the row's channel.
 *
 * The sender reads the policy (outbox retries) and signing keys from the
 * conf it was last given, so a reload applies to what is still queued.
 */
#ifndef ESCALON_SENDER_H
#define ESCALON_SENDER_H

#include <stddef.h>

struct sender;
struct loop;
struct store;
struct conf;
struct clock;

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

#endif
