/*
 * deliver: `escalon deliver [--mailbox NAME]`, the MTA's push path (an
 * alias `|escalon deliver`). One mail on stdin is normalised as the mailbox
 * child would (mime.h) and committed: through the running gateway's control
 * socket, or straight into the store when none runs. Exit 0 only after the
 * commit; 75 (EX_TEMPFAIL) whenever the mail is not committed, so the MTA
 * keeps it and tries again.
 */
#ifndef ESCALON_DELIVER_H
#define ESCALON_DELIVER_H

#include "env.h"

#define DELIVER_TEMPFAIL 75

int deliver_main(struct env *e, int argc, char **argv);

/* The core's side: a packed message (base64) from the control socket ->
 * an inbound message for mailbox `name`, or NULL with *why_r. */
struct inbound_msg;
struct inbound_msg *deliver_unpack(const struct conf *c, const char *mailbox,
    const char *message_b64, const char **why_r);

#endif
