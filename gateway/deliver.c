/* deliver: one mail from an MTA. See deliver.h. */
#include "deliver.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "clock.h"
#include "control.h"
#include "crypto.h"
#include "ingest.h"
#include "mime.h"
#include "store.h"

/* The mailbox called name; NULL name: the first one. */
static const struct conf_mailbox *
mailbox_named(const struct conf *c, const char *name)
{
	if (name == NULL)
		return c->n_mailboxes > 0 ? &c->mailboxes[0] : NULL;
	return conf_mailbox(c, name);
}

/* m is mail of mailbox mb. 0, or -1 when out of memory. */
static int
claim(struct inbound_msg *m, const struct conf_mailbox *mb)
{
	char source[256];

	snprintf(source, sizeof(source), "mailbox:%s", mb->name);
	return inbound_msg_claim(m, CHANNEL_EMAIL, source, mb->queue);
}

/*
 * All of stdin, keeping at most cap bytes (the rest is counted, not kept:
 * a mail over the limit is recorded from its header). *total_r counts all.
 */
static char *
read_stdin(size_t cap, size_t *len_r, size_t *total_r)
{
	size_t len = 0, alloc = 65536, total = 0;
	char *buf = malloc(alloc), chunk[65536];
	ssize_t n;

	if (buf == NULL)
		return NULL;
	while ((n = read(0, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			free(buf);
			return NULL;
		}
		total += (size_t)n;
		size_t keep = len + (size_t)n > cap ? cap - len : (size_t)n;
		if (len + keep > alloc) {
			while (len + keep > alloc)
				alloc *= 2;
			char *b = realloc(buf, alloc);
			if (b == NULL) {
				free(buf);
				return NULL;
			}
			buf = b;
		}
		memcpy(buf + len, chunk, keep);
		len += keep;
	}
	*len_r = len;
	*total_r = total;
	return buf;
}

static int
tempfail(const char *what, const char *why)
{
	fprintf(stderr, "escalon deliver: %s%s%s (exit 75: the MTA keeps the "
	    "mail and tries again)\n", what, why ? ": " : "", why ? why : "");
	return DELIVER_TEMPFAIL;
}

/* No gateway runs: commit into the store here. */
static int
commit_here(struct env *e, struct inbound_msg *m)
{
	const struct conf *c = e->conf;
	const char *why = NULL;
	char *error = NULL, *secret = crypto_secret_file(c->secret_file, &why);
	struct store *st = NULL;
	struct ingest_result r;
	int rc;

	if (secret == NULL) {
		rc = tempfail("cannot read secret_file", why);
		goto out;
	}
	if ((st = store_open(c->store, 0, &error)) == NULL) {
		rc = tempfail("cannot open the store", error);
		goto out;
	}
	e->secret = secret;
	if (store_begin(st) < 0 ||
	    ingest_message(st, e, clock_now(&clock_system), m, &r) < 0 ||
	    store_commit(st) < 0) {
		rc = tempfail("not committed", store_error(st));
		store_rollback(st);
		goto out;
	}
	printf("ESC-%lld%s\n", (long long)r.ticket_id, r.duplicate ?
	    " (duplicate: already stored)" : "");
	rc = 0;
out:
	e->secret = NULL;
	store_close(&st);
	free(secret);
	free(error);
	return rc;
}

/* A gateway runs: hand the mail to it and wait for its commit. */
static int
commit_there(const struct conf *c, const char *mailbox,
    const struct inbound_msg *m, int *rc_r)
{
	char *packed = NULL, *b64 = NULL, *error = NULL;
	size_t len;
	json_t *req = NULL, *ans = NULL;
	json_int_t code = 2, ticket = 0;
	const char *msg = "no answer";
	int dup = 0, rc;

	if (inbound_msg_pack(m, &packed, &len) < 0 ||
	    (b64 = crypto_base64_encode(packed, len)) == NULL ||
	    (req = json_pack("{s:s, s:I, s:s, s:s}", "act", "deliver",
	    "ticket", (json_int_t)0, "mailbox", mailbox, "message",
	    b64)) == NULL) {
		*rc_r = tempfail("out of memory", NULL);
		rc = 0;
		goto out;
	}
	rc = control_call(c->control_socket, req, &ans, &error);
	if (rc == 1)
		goto out;	/* nobody listens: the caller commits here */
	if (rc < 0) {
		*rc_r = tempfail("the gateway did not answer", error);
		rc = 0;
		goto out;
	}
	json_unpack(ans, "{s:I, s:s, s?I, s?b}", "code", &code, "message",
	    &msg, "ticket", &ticket, "duplicate", &dup);
	if (code != 0) {
		*rc_r = tempfail("the gateway did not commit it", msg);
	} else {
		printf("ESC-%lld%s\n", (long long)ticket, dup ?
		    " (duplicate: already stored)" : "");
		*rc_r = 0;
	}
out:
	json_decref(req);
	json_decref(ans);
	free(packed);
	free(b64);
	free(error);
	return rc;
}

int
deliver_main(struct env *e, int argc, char **argv)
{
	const struct conf *c = e->conf;
	const char *name = NULL;
	const struct conf_mailbox *mb;
	struct inbound_msg *m = NULL;
	char err[200], *raw = NULL;
	size_t len, total;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mailbox") == 0 && i + 1 < argc)
			name = argv[++i];
		else
			return tempfail("unknown argument", argv[i]);
	}
	if ((mb = mailbox_named(c, name)) == NULL)
		return tempfail(name ? "no such mailbox" :
		    "no mailbox section in the config", name);
	/* One byte over the limit tells mime the mail is too large. */
	raw = read_stdin((size_t)c->max_message_size + 1, &len, &total);
	if (raw == NULL)
		return tempfail("cannot read the mail on standard input",
		    NULL);
	struct mime_limits lim = {
		.max_message_size = (size_t)c->max_message_size,
		.max_attachment_size = (size_t)c->max_attachment_size,
		.own_address = mb->address,
	};
	if (mime_normalize(raw, len, &lim, &m, err, sizeof(err)) < 0) {
		rc = tempfail("cannot parse the mail", err);
		goto out;
	}
	if (m->truncated)
		m->raw_size = (int64_t)total;
	if (claim(m, mb) < 0) {
		rc = tempfail("out of memory", NULL);
		goto out;
	}
	if (commit_there(c, mb->name, m, &rc) == 1)
		rc = commit_here(e, m);
out:
	inbound_msg_free(&m);
	free(raw);
	return rc;
}

struct inbound_msg *
deliver_unpack(const struct conf *c, const char *mailbox,
    const char *message_b64, const char **why_r)
{
	const struct conf_mailbox *mb = mailbox_named(c, mailbox);
	struct inbound_msg *m;
	char *packed;
	size_t len;

	if (mb == NULL) {
		*why_r = "no such mailbox";
		return NULL;
	}
	if (crypto_base64_decode(message_b64, &packed, &len) < 0) {
		*why_r = "the message is not base64";
		return NULL;
	}
	m = inbound_msg_unpack(packed, len, why_r);
	free(packed);
	if (m == NULL)
		return NULL;
	/* The gateway's config decides where a mailbox's mail goes. */
	if (claim(m, mb) < 0) {
		inbound_msg_free(&m);
		*why_r = "out of memory";
	}
	return m;
}
