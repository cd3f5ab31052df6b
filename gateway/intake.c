/* intake: the core's side of the channel children. See intake.h. */
#include "intake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "child.h"
#include "clock.h"
#include "frame.h"
#include "log.h"
#include "sender.h"

enum kind { KIND_MAILBOX, KIND_XMPP };

/* A mail that killed its child this often is handed over unparsed. */
#define INTAKE_CRASHES_TO_QUARANTINE 3

/* An outbound chat message handed to a child, awaiting its FRAME_SENT. */
struct pending {
	int64_t row_id;
	struct pending *next;
};

struct source_child {
	struct intake *in;
	enum kind kind;
	char *name, *source;	/* "support", "mailbox:support" */
	struct pending *sends;
	char *settings;			/* the START JSON without checkpoint:
					   a change means a restart */
	struct child *child;
	int unstored;			/* a message of this child was not
					   stored since its last commit */
	char state[16], detail[200];
	int64_t since;
	/* Poison: the item in the child's parser now (FRAME_PARSING; an
	 * empty one when the parser is idle), and the one that was in it
	 * when the child died. */
	char parsing[64], suspect[64];
	int crashes;			/* of suspect, in a row */
};

struct intake {
	struct intake_host host;
	const struct conf *conf;
	struct source_child **v;
	size_t n;
};

/* What a commit callback needs: a mailbox may be gone by then. */
struct commit_ask {
	struct intake *in;
	char *name, *value;
	uint64_t serial;	/* answers go to that spawn only */
};

static const char *const tls_names[] = { "none", "starttls", "tls" };

static char *
dump_sorted(json_t *o)
{
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) :
	    NULL;

	json_decref(o);
	return text;
}

static char *
xmpp_settings(const struct conf *c, const struct conf_xmpp *x)
{
	return dump_sorted(json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b, "
	    "s:s*, s:s, s:I}", "name", x->name, "jid", x->jid, "password",
	    x->password, "host", x->host, "port", x->port, "tls",
	    tls_names[x->tls], "tls_verify", x->tls_verify, "ca_file",
	    x->ca_file, "queue", x->queue, "max_message_size",
	    (json_int_t)c->max_message_size));
}

static char *
mailbox_settings(const struct conf *c, const struct conf_mailbox *m)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:b, s:s*, s:s, s:s, "
	    "s:s, s:s, s:s, s:I, s:I, s:I}", "name", m->name, "host", m->host,
	    "port", m->port, "tls", tls_names[m->tls], "tls_verify",
	    m->tls_verify, "ca_file", m->ca_file, "user", m->user, "password",
	    m->password, "folder", m->folder, "address", m->address, "queue",
	    m->queue, "poll_interval", (json_int_t)m->poll_interval,
	    "max_message_size", (json_int_t)c->max_message_size,
	    "max_attachment_size", (json_int_t)c->max_attachment_size);

	return dump_sorted(o);
}

/* By source: "mailbox:support", "xmpp:chat". */
static struct source_child *
find(const struct intake *in, const char *source)
{
	for (size_t i = 0; i < in->n; i++)
		if (in->v[i] != NULL && strcmp(in->v[i]->source, source) == 0)
			return in->v[i];
	return NULL;
}

static void
set_state(struct source_child *x, const char *state, const char *detail)
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
	struct source_child *x = find(ask->in, ask->name);

	if (r->failed)
		log_warn("channel checkpoint not stored, the child sends "
		    "again", "child=%s checkpoint=%s error=%s",
		    log_q(ask->name), log_q(ask->value), log_q(r->error));
	/* Both answers name the checkpoint: the child matches them. */
	if (x != NULL && x->child != NULL &&
	    child_serial(x->child) == ask->serial)
		child_send(x->child, r->failed ? FRAME_FAILED :
		    FRAME_COMMITTED, ask->value, strlen(ask->value));
	free(ask->name);
	free(ask->value);
	free(ask);
}

static void
on_commit(struct source_child *x, const char *payload, size_t len)
{
	struct intake *in = x->in;
	struct commit_ask *ask = calloc(1, sizeof(*ask));

	if (ask == NULL || (ask->name = strdup(x->source)) == NULL ||
	    (ask->value = strndup(payload, len)) == NULL)
		goto fail;
	ask->in = in;
	ask->serial = child_serial(x->child);
	if (x->unstored) {
		/* A message before this checkpoint is lost to the store: the
		 * child must send from its old checkpoint again. */
		x->unstored = 0;
		child_send(x->child, FRAME_FAILED, ask->value,
		    strlen(ask->value));
		free(ask->name);
		free(ask->value);
		free(ask);
		return;
	}
	/* An empty checkpoint commits what came and stores nothing. */
	if (len == 0 ? ingest_batch_checkpoint(in->host.batch, NULL, NULL,
	    commit_done, ask) < 0 : ingest_batch_checkpoint(in->host.batch,
	    x->source, ask->value, commit_done, ask) < 0)
		goto fail;
	in->host.commit_soon(in->host.arg);
	return;
fail:
	if (ask != NULL) {
		free(ask->name);
		free(ask->value);
		free(ask);
	}
	child_send(x->child, FRAME_FAILED, payload, len);
}

static const char *
queue_of(const struct conf *c, const struct source_child *x)
{
	const struct conf_mailbox *mb = x->kind == KIND_MAILBOX ?
	    conf_mailbox(c, x->name) : NULL;
	const struct conf_xmpp *xa = x->kind == KIND_XMPP ?
	    conf_xmpp(c, x->name) : NULL;

	/* x is of this conf: one of the two is there. */
	return mb != NULL ? mb->queue : xa != NULL ? xa->queue : "general";
}

/* A message of x not stored: its next checkpoint must not pass it. */
static void
msg_done(const struct ingest_result *r, void *arg)
{
	struct source_child *x = arg;

	if (r->failed)
		x->unstored = 1;
}

static void
on_msg(struct source_child *x, const char *payload, size_t len)
{
	const char *why;
	struct inbound_msg *m = inbound_msg_unpack(payload, len, &why);

	if (m == NULL) {
		/* Our own child wrote it: a bug, not hostile input. */
		log_error("channel child sent a message the core cannot read",
		    "child=%s error=%s", log_q(x->source), log_q(why));
		x->unstored = 1;
		return;
	}
	/* The core, not the child, decides what a message of x is. */
	if (inbound_msg_claim(m, x->kind == KIND_MAILBOX ? CHANNEL_EMAIL :
	    CHANNEL_CHAT, x->source, queue_of(x->in->conf, x)) < 0 ||
	    ingest_batch_add(x->in->host.batch, m, msg_done, x) < 0) {
		log_error("message dropped from the batch: out of memory",
		    "child=%s", log_q(x->source));
		inbound_msg_free(&m);
		x->unstored = 1;
	}
}

static void
on_status(struct source_child *x, const char *payload, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(payload, len, 0, &jerr);
	const char *state = NULL, *detail = NULL;

	if (o != NULL && json_unpack(o, "{s:s, s?s}", "state", &state,
	    "detail", &detail) == 0) {
		int back = x->kind == KIND_XMPP && strcmp(state, "online") == 0 &&
		    strcmp(x->state, "online") != 0;
		set_state(x, state, detail);
		if (back && x->in->host.sender != NULL)
			sender_chat_online(x->in->host.sender, x->source);
	}
	json_decref(o);
}

/* --- outbound chat messages ---------------------------------------------- */

static void
sends_fail_all(struct source_child *x, const char *why)
{
	while (x->sends != NULL) {
		struct pending *p = x->sends;
		x->sends = p->next;
		sender_chat_done(x->in->host.sender, p->row_id, 0, 0, why);
		free(p);
	}
}

static int
sends_take(struct source_child *x, int64_t row_id)
{
	for (struct pending **pp = &x->sends; *pp != NULL;
	    pp = &(*pp)->next) {
		if ((*pp)->row_id == row_id) {
			struct pending *p = *pp;
			*pp = p->next;
			free(p);
			return 1;
		}
	}
	return 0;
}

static void
on_sent(struct source_child *x, const char *payload, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(payload, len, 0, &jerr);
	json_int_t id = 0;
	int ok = 0, permanent = 0;
	const char *error = NULL;

	if (o == NULL || json_unpack(o, "{s:I, s:b, s?b, s?s}", "id", &id,
	    "ok", &ok, "permanent", &permanent, "error", &error) < 0)
		log_warn("bad FRAME_SENT from a chat child", "child=%s",
		    log_q(x->source));
	else if (sends_take(x, id))
		sender_chat_done(x->in->host.sender, id, ok, permanent, error);
	json_decref(o);
}

int
intake_chat_send(void *arg, int64_t row_id, const char *account,
    const char *to, const char *stanza_id, const char *body, size_t len,
    const char **error_r)
{
	struct intake *in = arg;
	struct source_child *x = find(in, account);
	struct pending *p = NULL;
	char *text = NULL;
	json_t *o = NULL;
	int rc = -1;

	if (x == NULL || x->kind != KIND_XMPP) {
		*error_r = "its chat account is no longer configured";
		return -1;
	}
	rc = SENDER_TRY_LATER;
	*error_r = "the chat account is not connected";
	if (x->child == NULL || !child_running(x->child) ||
	    strcmp(x->state, "online") != 0)
		goto out;
	*error_r = "out of memory";
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (o = json_pack("{s:I, s:s, s:s%, s:s}", "id", (json_int_t)row_id,
	    "to", to, "body", body, len, "stanza_id", stanza_id)) == NULL ||
	    (text = json_dumps(o, JSON_COMPACT)) == NULL ||
	    child_send(x->child, FRAME_SEND, text, strlen(text)) < 0)
		goto out;
	p->row_id = row_id;
	p->next = x->sends;
	x->sends = p;
	p = NULL;
	rc = 0;
out:
	free(p);
	free(text);
	json_decref(o);
	return rc;
}

/* --- frames from a child ------------------------------------------------ */

static void
on_frame(struct child *c, int type, const char *payload, size_t len,
    void *arg)
{
	struct source_child *x = arg;

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
	case FRAME_PARSING:
		snprintf(x->parsing, sizeof(x->parsing), "%.*s",
		    (int)(len < sizeof(x->parsing) ? len : 0), payload);
		break;
	case FRAME_SENT:
		on_sent(x, payload, len);
		break;
	default:
		log_warn("unknown frame from a channel child", "child=%s "
		    "type=%d", log_q(x->source), type);
	}
}

/* The settings plus where to resume. */
static char *
on_start(void *arg, size_t *len_r)
{
	struct source_child *x = arg;
	char *ck = NULL, *text = NULL;
	json_error_t jerr;
	json_t *o = json_loads(x->settings, 0, &jerr);

	if (o == NULL ||
	    store_checkpoint_get(x->in->host.store, x->source, &ck) < 0)
		goto out;
	if (ck != NULL)
		json_object_set_new(o, "checkpoint", json_string(ck));
	if (x->crashes >= INTAKE_CRASHES_TO_QUARANTINE) {
		json_object_set_new(o, "quarantine", json_string(x->suspect));
		json_object_set_new(o, "crashes", json_integer(x->crashes));
	}
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
	struct source_child *x = arg;

	(void)c;
	set_state(x, "down", "the channel child exited");
	sends_fail_all(x, "the chat child restarted");
	if (x->parsing[0] == '\0')
		return;
	/* It died with a mail in its parser: after a few times in a row,
	 * that mail goes over unparsed, so one mail cannot stop a mailbox. */
	if (strcmp(x->parsing, x->suspect) == 0) {
		x->crashes++;
	} else {
		memcpy(x->suspect, x->parsing, sizeof(x->suspect));
		x->crashes = 1;
	}
	x->parsing[0] = '\0';
	if (x->crashes >= INTAKE_CRASHES_TO_QUARANTINE)
		log_error("a mail kept crashing its channel child: it goes "
		    "over unparsed", "child=%s item=%s crashes=%d",
		    log_q(x->source), log_q(x->suspect), x->crashes);
	else
		log_warn("channel child died parsing a message", "child=%s "
		    "item=%s crashes=%d", log_q(x->source), log_q(x->suspect),
		    x->crashes);
}

static const struct child_ops child_ops_of_intake = {
	.start = on_start, .frame = on_frame, .gone = on_gone,
};

/* --- the set of mailboxes ----------------------------------------------- */

static void
mbox_free(struct source_child *x)
{
	if (x == NULL)
		return;
	child_free(&x->child);
	sends_fail_all(x, "the chat account was stopped");
	free(x->name);
	free(x->source);
	free(x->settings);
	free(x);
}

static const char *const kind_names[] = { "mailbox", "xmpp" };

static struct source_child *
mbox_start(struct intake *in, enum kind kind, const char *name,
    const char *source, char *settings)
{
	struct source_child *x = calloc(1, sizeof(*x));

	if (x == NULL)
		goto fail;
	x->in = in;
	x->kind = kind;
	x->settings = settings;
	settings = NULL;
	x->name = strdup(name);
	x->source = strdup(source);
	if (x->name == NULL || x->source == NULL ||
	    (x->child = child_new(in->host.loop, kind_names[kind], name,
	    &child_ops_of_intake, x)) == NULL)
		goto fail;
	return x;
fail:
	log_error("cannot start a channel child", "child=%s", log_q(source));
	free(settings);
	mbox_free(x);
	return NULL;
}

/* Keep x when its settings are the same, else (re)start it into v. */
static void
keep_or_start(struct intake *in, struct source_child **v, size_t *n,
    enum kind kind, const char *name, char *settings)
{
	char source[300];
	struct source_child *x;

	if (settings == NULL)
		return;
	snprintf(source, sizeof(source), "%s:%s", kind_names[kind], name);
	x = find(in, source);
	if (x != NULL && strcmp(x->settings, settings) == 0) {
		free(settings);
		v[(*n)++] = x;	/* unchanged: keeps running */
		return;
	}
	if (x != NULL) {
		/* Never two sessions of one source at once. */
		log_info("channel settings changed, restarting its child",
		    "child=%s", log_q(source));
		for (size_t i = 0; i < in->n; i++)
			if (in->v[i] == x)
				in->v[i] = NULL;
		mbox_free(x);
	}
	if ((x = mbox_start(in, kind, name, source, settings)) != NULL)
		v[(*n)++] = x;
}

void
intake_reload(struct intake *in, const struct conf *c)
{
	struct source_child **v = calloc(c->n_mailboxes + c->n_xmpps + 1,
	    sizeof(*v));
	size_t n = 0;

	if (v == NULL) {
		log_error("channels not reloaded: out of memory", "%s", "");
		return;
	}
	in->conf = c;
	for (size_t i = 0; i < c->n_mailboxes; i++)
		keep_or_start(in, v, &n, KIND_MAILBOX, c->mailboxes[i].name,
		    mailbox_settings(c, &c->mailboxes[i]));
	for (size_t i = 0; i < c->n_xmpps; i++)
		keep_or_start(in, v, &n, KIND_XMPP, c->xmpps[i].name,
		    xmpp_settings(c, &c->xmpps[i]));
	/* Whatever is not in the new set stops. */
	for (size_t i = 0; i < in->n; i++) {
		int kept = in->v[i] == NULL;
		for (size_t k = 0; k < n; k++)
			kept |= v[k] == in->v[i];
		if (!kept)
			mbox_free(in->v[i]);
	}
	free(in->v);
	in->v = v;
	in->n = n;
}

struct intake *
intake_new(const struct intake_host *h, const struct conf *c)
{
	struct intake *in = calloc(1, sizeof(*in));

	if (in == NULL)
		return NULL;
	in->host = *h;
	intake_reload(in, c);
	return in;
}

void
intake_free(struct intake **inp)
{
	struct intake *in = *inp;

	if (in == NULL)
		return;
	for (size_t i = 0; i < in->n; i++)
		mbox_free(in->v[i]);
	free(in->v);
	free(in);
	*inp = NULL;
}

json_t *
intake_health(const struct intake *in, int *up_r)
{
	json_t *a = json_array();
	char since[CLOCK_RFC3339_LEN];

	*up_r = 1;
	for (size_t i = 0; in != NULL && i < in->n; i++) {
		const struct source_child *x = in->v[i];
		int up = strcmp(x->state, "idle") == 0 ||
		    strcmp(x->state, "polling") == 0 ||
		    strcmp(x->state, "online") == 0;
		*up_r &= up;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, "
		    "s:s, s:i}", "name", x->source, "kind", x->kind ==
		    KIND_MAILBOX ? "imap" : "xmpp", "state",
		    x->state, "detail", x->detail, "since",
		    clock_format(x->since, since), "restarts",
		    x->child != NULL ? (int)child_restarts(x->child) : 0));
	}
	return a;
}

void
intake_restarts(const struct intake *in,
    void (*fn)(const char *child, unsigned restarts, void *arg), void *arg)
{
	for (size_t i = 0; in != NULL && i < in->n; i++)
		if (in->v[i]->child != NULL)
			fn(in->v[i]->source, child_restarts(in->v[i]->child),
			    arg);
}
