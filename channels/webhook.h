/*
 * webhook: the inbound webhook contract of SPEC.md ("HTTP"), as pure logic:
 * authenticate a body and turn its JSON into an inbound_msg. The HTTP part
 * (404 unknown hook, 413 size) is the caller's; this file decides 401/400.
 */
#ifndef ESCALON_WEBHOOK_H
#define ESCALON_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"

#define WEBHOOK_MAX_ID 256	/* id, thread and customer id, in bytes */
#define WEBHOOK_MAX_SUBJECT 1000
#define WEBHOOK_MAX_URL 2048

/*
 * Check signature_header against body under secret, then parse. Returns the
 * message (caller frees with inbound_msg_free), or NULL with *status_r 401
 * or 400 and reason (a static string) saying what was wrong.
 */
struct inbound_msg *webhook_accept(const char *hook, const char *queue,
    const char *secret, const char *signature_header, const char *body,
    size_t len, int64_t now, int *status_r, const char **reason_r);

#endif
