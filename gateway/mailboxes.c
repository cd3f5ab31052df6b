/* mailboxes: the core's side of the mailbox children. See mailboxes.h. */
#include "mailboxes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "child.h"
#include "clock.h"
#include "frame.h"
#include "log.h"

struct mbox {
	struct mailboxes *mb;
	char *name, *source;
	char *settings;			/* the START JSON without checkpoint:
					   a change means a restart */
	struct child *child;
	unsigned generation;		/* child_restarts when a commit was
					   asked: answers go to that child only */
	char state[16], detail[200];
	int64_t since;
};

struct mailboxes {
	struct mailbox_host host;
	const struct conf *conf;
	struct mbox **v;
	size_t n;
};

/* What a commit callback needs: a mailbox may be gone by then. */
struct commit_ask {
	struct mailboxes *mb;
	char *name, *value;
	unsigned generation;
};

static const char *const tls_names[] = { "none", "starttls", "tls" };

static char *
settings_json(const struct conf *c, const struct conf_mailbox *m)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:b, s:s*, s:s, s:s, "
	    "s:s, s:s, s:s, s:I, s:I, s:I}", "name", m->name, "host", m->host,
	    "port", m->port, "tls", tls_names[m->tls], "tls_verify",
	    m->tls_verify, "ca_file", m->ca_file, "user", m->user, "password",
	    m->password, "folder", m->folder, "address", m->address, "queue",
	    m->queue, "poll_interval", (json_int_t)m->poll_interval,
	    "max_message_size", (json_int_t)c->max_message_size,
	    "max_attachment_size", (json_int_t)c->max_attachment_size);
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) :
	    NULL;

	json_decref(o);
	return text;
}

static struct mbox *
find(const struct mailboxes *mb, const char *name)
{
	for (size_t i = 0; i < mb->n; i++)
		if (strcmp(mb->v[i]->name, name) == 0)
			return mb->v[i];
	return NULL;
}

static void
set_state(struct mbox *x, const char *state, const char *detail)
{
	snprintf(x->state, sizeof(x->state), "%s", state);
	snprintf(x->detail, sizeof(x->detail), "%s", detail ? detail : "");
	x->since = clock_now(&clock_system);
}

/* --- frames from a child ----------------------------------------------- */

static void
commit_done(const struct ingest_result *r, void *arg)
{
	struct commit_ask *ask = arg;
	struct mbox *x = find(ask->mb, ask->name);

	if (x != NULL && x->child != NULL &&
	    child_restarts(x->child) == ask->generation) {
		if (r->failed)
			child_send(x->child, FRAME_FAILED, r->error,
			    strlen(r->error));
		else
			child_send(x->child, FRAME_COMMITTED, ask->value,
			    strlen(ask->value));
	}
	free(ask->name);
	free(ask->value);
	free(ask);
}

static void
on_commit(struct mbox *x, const char *payload, size_t len)
{
	struct mailboxes *mb = x->mb;
	struct commit_ask *ask = calloc(1, sizeof(*ask));

	if (ask == NULL || (ask->name = strdup(x->name)) == NULL ||
	    (ask->value = strndup(payload, len)) == NULL)
		goto fail;
	ask->mb = mb;
	ask->generation = child_restarts(x->child);
	if (ingest_batch_checkpoint(mb->host.batch, x->source, ask->value,
	    commit_done, ask) < 0)
		goto fail;
	mb->host.commit_soon(mb->host.arg);
	return;
fail:
	if (ask != NULL) {
		free(ask->name);
		free(ask->value);
		free(ask);
	}
	child_send(x->child, FRAME_FAILED, "out of memory", 13);
}

static void
on_msg(struct mbox *x, const char *payload, size_t len)
{
	const char *why;
	struct inbound_msg *m = inbound_msg_unpack(payload, len, &why);

	if (m == NULL) {
		/* Our own child wrote it: a bug, not hostile mail. The mail
		 * stays on the server, unseen. */
		log_error("mailbox child sent a message the core cannot read",
		    "mailbox=%s error=%s", log_q(x->name), log_q(why));
		return;
	}
	/* The core decides where mail from this mailbox goes. */
	free(m->source);
	m->source = strdup(x->source);
	m->channel = CHANNEL_EMAIL;
	if (m->source == NULL || ingest_batch_add(x->mb->host.batch, m, NULL,
	    NULL) < 0) {
		log_error("mail dropped from the batch: out of memory",
		    "mailbox=%s", log_q(x->name));
		inbound_msg_free(&m);
	}
}

static void
on_status(struct mbox *x, const char *payload, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(payload, len, 0, &jerr);
	const char *state = NULL, *detail = NULL;

	if (o != NULL && json_unpack(o, "{s:s, s?s}", "state", &state,
	    "detail", &detail) == 0)
		set_state(x, state, detail);
	json_decref(o);
}

static void
on_frame(struct child *c, int type, const char *payload, size_t len,
    void *arg)
{
	struct mbox *x = arg;

	(void)c;
	switch (type) {
	case FRAME_MSG:
		on_msg(x, payload, len);
		break;
	case FRAME_COMMIT:
		on_commit(x, payload, len);
		break;
	case FRAME_STATUS:
		on_status(x, payload, len);
		break;
	default:
		log_warn("unknown frame from a mailbox child", "mailbox=%s "
		    "type=%d", log_q(x->name), type);
	}
}

/* The settings plus where to resume. */
static char *
on_start(void *arg, size_t *len_r)
{
	struct mbox *x = arg;
	char *ck = NULL, *text = NULL;
	json_error_t jerr;
	json_t *o = json_loads(x->settings, 0, &jerr);

	if (o == NULL ||
	    store_checkpoint_get(x->mb->host.store, x->source, &ck) < 0)
		goto out;
	if (ck != NULL)
		json_object_set_new(o, "checkpoint", json_string(ck));
	if ((text = json_dumps(o, JSON_COMPACT)) != NULL)
		*len_r = strlen(text);
	set_state(x, "starting", NULL);
out:
	json_decref(o);
	free(ck);
	return text;
}

static void
on_gone(struct child *c, void *arg)
{
	struct mbox *x = arg;

	(void)c;
	set_state(x, "down", "the mailbox child exited");
}

static const struct child_ops mailbox_ops = {
	.start = on_start, .frame = on_frame, .gone = on_gone,
};

/* --- the set of mailboxes ----------------------------------------------- */

static void
mbox_free(struct mbox *x)
{
	if (x == NULL)
		return;
	child_free(&x->child);
	free(x->name);
	free(x->source);
	free(x->settings);
	free(x);
}

static struct mbox *
mbox_start(struct mailboxes *mb, const struct conf_mailbox *m,
    char *settings)
{
	struct mbox *x = calloc(1, sizeof(*x));

	if (x == NULL)
		goto fail;
	x->mb = mb;
	x->settings = settings;
	settings = NULL;
	x->name = strdup(m->name);
	if (x->name == NULL || asprintf(&x->source, "mailbox:%s",
	    m->name) < 0) {
		x->source = NULL;
		goto fail;
	}
	if ((x->child = child_new(mb->host.loop, "mailbox", m->name,
	    &mailbox_ops, x)) == NULL)
		goto fail;
	return x;
fail:
	log_error("cannot start a mailbox", "mailbox=%s", log_q(m->name));
	free(settings);
	mbox_free(x);
	return NULL;
}

void
mailboxes_reload(struct mailboxes *mb, const struct conf *c)
{
	struct mbox **v = calloc(c->n_mailboxes + 1, sizeof(*v));
	size_t n = 0;

	if (v == NULL) {
		log_error("mailboxes not reloaded: out of memory", "%s", "");
		return;
	}
	mb->conf = c;
	for (size_t i = 0; i < c->n_mailboxes; i++) {
		const struct conf_mailbox *m = &c->mailboxes[i];
		char *settings = settings_json(c, m);
		struct mbox *x = find(mb, m->name);
		if (settings == NULL)
			continue;
		if (x != NULL && strcmp(x->settings, settings) == 0) {
			free(settings);
			v[n++] = x;	/* unchanged: keeps running */
			continue;
		}
		if (x != NULL)
			log_info("mailbox settings changed, restarting its "
			    "child", "mailbox=%s", log_q(m->name));
		if ((x = mbox_start(mb, m, settings)) != NULL)
			v[n++] = x;
	}
	/* Whatever is not in the new set stops. */
	for (size_t i = 0; i < mb->n; i++) {
		int kept = 0;
		for (size_t k = 0; k < n; k++)
			kept |= v[k] == mb->v[i];
		if (!kept)
			mbox_free(mb->v[i]);
	}
	free(mb->v);
	mb->v = v;
	mb->n = n;
}

struct mailboxes *
mailboxes_new(const struct mailbox_host *h, const struct conf *c)
{
	struct mailboxes *mb = calloc(1, sizeof(*mb));

	if (mb == NULL)
		return NULL;
	mb->host = *h;
	mailboxes_reload(mb, c);
	return mb;
}

void
mailboxes_free(struct mailboxes **mbp)
{
	struct mailboxes *mb = *mbp;

	if (mb == NULL)
		return;
	for (size_t i = 0; i < mb->n; i++)
		mbox_free(mb->v[i]);
	free(mb->v);
	free(mb);
	*mbp = NULL;
}

json_t *
mailboxes_health(const struct mailboxes *mb, int *up_r)
{
	json_t *a = json_array();
	char since[CLOCK_RFC3339_LEN];

	*up_r = 1;
	for (size_t i = 0; mb != NULL && i < mb->n; i++) {
		const struct mbox *x = mb->v[i];
		int up = strcmp(x->state, "idle") == 0 ||
		    strcmp(x->state, "polling") == 0;
		*up_r &= up;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, "
		    "s:s, s:i}", "name", x->source, "kind", "imap", "state",
		    x->state, "detail", x->detail, "since",
		    clock_format(x->since, since), "restarts",
		    x->child != NULL ? (int)child_restarts(x->child) : 0));
	}
	return a;
}

void
mailboxes_restarts(const struct mailboxes *mb,
    void (*fn)(const char *child, unsigned restarts, void *arg), void *arg)
{
	for (size_t i = 0; mb != NULL && i < mb->n; i++)
		if (mb->v[i]->child != NULL)
			fn(mb->v[i]->source, child_restarts(mb->v[i]->child),
			    arg);
}
