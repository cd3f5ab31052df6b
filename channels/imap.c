/* imap: the mailbox child. See imap.h. */
#include "imap.h"

#include <malloc.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <inttypes.h>
#include <jansson.h>
#include <libetpan/libetpan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "childlink.h"
#include "frame.h"
#include "log.h"
#include "mime.h"

#define NET_TIMEOUT_S 60
#define CHUNK_MSGS 100		/* mails per commit */
#define CHUNK_BYTES (32u << 20)	/* and raw bytes per commit */
#define COMMIT_WAIT_MS 120000	/* the core answers a commit within this */
#define IDLE_RENEW_S (25 * 60)	/* servers drop IDLE after 30 minutes */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
#define START_MAX (1u << 20)

struct settings {
	char *name, *host, *user, *password, *folder, *address;
	char *ca_file, *source;
	int port, tls_verify;
	enum { TLS_NONE, TLS_STARTTLS, TLS_TLS } tls;
	int64_t poll_interval;
	struct mime_limits limits;
};

struct imap_child {
	struct childlink link;		/* to the core */
	struct settings s;
	mailimap *imap;
	int idle_ready;			/* mailstream_setup_idle done */
	uint32_t validity, last_uid;	/* committed */
	int only_unseen;		/* no checkpoint yet: mail already read
					   in the folder is not ours */
	uint32_t bad_validity, bad_uid;	/* crashed this child before: hand
					   it over unparsed */
	int64_t bad_crashes;
	/* The next chunk's messages, parsed while the core commits the one
	 * before and sent once it has: a failed commit drops them, as the
	 * mailbox is read again from the checkpoint. */
	struct held {
		char **frames;
		size_t *lens, n, cap;
	} held;
	char commit_ck[32];		/* asked, not yet answered */
};

/* A mail on the server: its UID and size. */
struct uid_size {
	uint32_t uid, size;
	int skip;	/* read before escalon's first look: not fetched */
};

/* Sleep ms, but leave as soon as the core goes. */
static void
pause_ms(struct imap_child *c, int64_t ms)
{
	int type;
	const char *payload;
	size_t len;
	int64_t until = childlink_now_ms() + ms;

	/* A stray frame does not cut the pause short. */
	while (childlink_next(&c->link, until - childlink_now_ms(), &type,
	    &payload, &len) == 1)
		;
}

static void
status(struct imap_child *c, const char *state, const char *detail)
{
	childlink_status(&c->link, state, detail);
}

/* --- settings ---------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
parse_start(struct imap_child *c, const char *payload, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(payload, len, 0, &jerr);
	const char *name, *host, *tls, *user, *password, *folder, *address;
	const char *ca_file = NULL, *checkpoint = NULL, *quarantine = NULL;
	json_int_t port, poll_interval, max_msg, max_att, crashes = 0;
	int verify, rc = -1;
	struct settings *s = &c->s;

	if (o == NULL || json_unpack(o, "{s:s, s:s, s:I, s:s, s:b, s?s, s:s, "
	    "s:s, s:s, s:s, s:I, s:I, s:I, s?s, s?s, s?I}", "name", &name,
	    "host",
	    &host, "port", &port, "tls", &tls, "tls_verify", &verify,
	    "ca_file", &ca_file, "user", &user, "password", &password,
	    "folder", &folder, "address", &address,
	    "poll_interval", &poll_interval, "max_message_size", &max_msg,
	    "max_attachment_size", &max_att, "checkpoint", &checkpoint,
	    "quarantine", &quarantine, "crashes", &crashes) < 0)
		goto out;
	s->name = strdup(name);
	s->host = strdup(host);
	s->user = strdup(user);
	s->password = strdup(password);
	s->folder = strdup(folder);
	s->address = strdup(address);
	s->ca_file = dup_or_null(ca_file);
	s->port = (int)port;
	s->tls_verify = verify;
	s->tls = strcmp(tls, "tls") == 0 ? TLS_TLS :
	    strcmp(tls, "starttls") == 0 ? TLS_STARTTLS : TLS_NONE;
	s->poll_interval = poll_interval > 0 ? poll_interval : 60;
	s->limits.max_message_size = (size_t)max_msg;
	s->limits.max_attachment_size = (size_t)max_att;
	s->limits.own_address = s->address;
	if (asprintf(&s->source, "mailbox:%s", name) < 0)
		s->source = NULL;
	if (checkpoint != NULL && sscanf(checkpoint, "%" SCNu32 ":%" SCNu32,
	    &c->validity, &c->last_uid) != 2)
		c->validity = c->last_uid = 0;
	if (quarantine != NULL && sscanf(quarantine, "%" SCNu32 ":%" SCNu32,
	    &c->bad_validity, &c->bad_uid) != 2)
		c->bad_validity = c->bad_uid = 0;
	c->bad_crashes = crashes;
	/* A new mailbox (or a rebuilt one, below) may hold years of read
	 * mail: only what nobody has read yet becomes tickets. */
	c->only_unseen = c->validity == 0;
	rc = s->name && s->host && s->user && s->password && s->folder &&
	    s->address && s->source ? 0 : -1;
out:
	json_decref(o);
	return rc;
}

static void
settings_release(struct settings *s)
{
	free(s->name);
	free(s->host);
	free(s->user);
	free(s->password);
	free(s->folder);
	free(s->address);
	free(s->ca_file);
	free(s->source);
}

/* --- TLS: libetpan's GnuTLS build does not check certificates --------- */

/* NULL when the server's chain is trusted for host, else why not. */
static const char *
verify_chain(mailstream *stream, const char *host, const char *ca_file)
{
	carray *chain = mailstream_get_certificate_chain(stream);
	gnutls_x509_trust_list_t trust = NULL;
	gnutls_x509_crt_t crts[16];
	unsigned n = 0, verdict = 1;
	const char *why = "the server sent no certificate";

	if (chain == NULL || carray_count(chain) == 0)
		goto out;
	why = "cannot load the trusted certificates";
	if (gnutls_x509_trust_list_init(&trust, 0) < 0 ||
	    (ca_file != NULL ? gnutls_x509_trust_list_add_trust_file(trust,
	    ca_file, NULL, GNUTLS_X509_FMT_PEM, 0, 0) :
	    gnutls_x509_trust_list_add_system_trust(trust, 0, 0)) <= 0)
		goto out;
	why = "the server's certificate cannot be read";
	for (; n < carray_count(chain) && n < 16; n++) {
		MMAPString *der = carray_get(chain, n);
		gnutls_datum_t d = { (unsigned char *)der->str,
		    (unsigned)der->len };
		if (gnutls_x509_crt_init(&crts[n]) < 0)
			goto out;
		if (gnutls_x509_crt_import(crts[n], &d,
		    GNUTLS_X509_FMT_DER) < 0) {
			n++;
			goto out;
		}
	}
	why = "the server's certificate is not trusted";
	if (gnutls_x509_trust_list_verify_crt(trust, crts, n, 0, &verdict,
	    NULL) < 0 || verdict != 0)
		goto out;
	why = "the server's certificate is for another host";
	if (!gnutls_x509_crt_check_hostname(crts[0], host))
		goto out;
	why = NULL;
out:
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	if (trust != NULL)
		gnutls_x509_trust_list_deinit(trust, 1);
	if (chain != NULL)
		mailstream_certificate_chain_free(chain);
	return why;
}

/* --- one connection ---------------------------------------------------- */

static const char *
server_said(struct imap_child *c, int rc)
{
	static char buf[300];

	if (c->imap != NULL && c->imap->imap_response != NULL)
		snprintf(buf, sizeof(buf), "%s", c->imap->imap_response);
	else
		snprintf(buf, sizeof(buf), "libetpan error %d", rc);
	return buf;
}

static void
disconnect(struct imap_child *c)
{
	if (c->imap == NULL)
		return;
	if (c->idle_ready)
		mailstream_unsetup_idle(c->imap->imap_stream);
	c->idle_ready = 0;
	mailimap_free(c->imap);
	c->imap = NULL;
}

static int
connect_login(struct imap_child *c)
{
	const struct settings *s = &c->s;
	const char *why;
	struct mailimap_capability_data *caps = NULL;
	int rc;

	if ((c->imap = mailimap_new(0, NULL)) == NULL)
		return -1;
	mailimap_set_timeout(c->imap, NET_TIMEOUT_S);
	rc = s->tls == TLS_TLS ? mailimap_ssl_connect(c->imap, s->host,
	    (uint16_t)s->port) : mailimap_socket_connect(c->imap, s->host,
	    (uint16_t)s->port);
	if (rc != MAILIMAP_NO_ERROR &&
	    rc != MAILIMAP_NO_ERROR_AUTHENTICATED &&
	    rc != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		status(c, "down", "cannot connect");
		return -1;
	}
	if (s->tls == TLS_STARTTLS &&
	    mailimap_socket_starttls(c->imap) != MAILIMAP_NO_ERROR) {
		status(c, "down", "STARTTLS failed");
		return -1;
	}
	if (s->tls != TLS_NONE && s->tls_verify &&
	    (why = verify_chain(c->imap->imap_stream, s->host,
	    s->ca_file)) != NULL) {
		status(c, "down", why);
		return -1;
	}
	if ((rc = mailimap_login(c->imap, s->user, s->password)) !=
	    MAILIMAP_NO_ERROR) {
		status(c, "down", "login refused");
		return -1;
	}
	if (mailimap_capability(c->imap, &caps) == MAILIMAP_NO_ERROR)
		mailimap_capability_data_free(caps);
	if ((rc = mailimap_select(c->imap, s->folder)) != MAILIMAP_NO_ERROR) {
		status(c, "down", server_said(c, rc));
		return -1;
	}
	uint32_t validity = c->imap->imap_selection_info->sel_uidvalidity;
	if (c->validity != 0 && validity != c->validity) {
		/* The folder was rebuilt: every UID is new. Dedupe by
		 * Message-ID keeps the old mail from making tickets twice. */
		log_warn("UIDVALIDITY changed, resyncing the folder",
		    "mailbox=%s was=%" PRIu32 " now=%" PRIu32, log_q(s->name),
		    c->validity, validity);
		c->last_uid = 0;
		c->only_unseen = 1;
	}
	c->validity = validity;
	if (mailimap_has_idle(c->imap) &&
	    mailstream_setup_idle(c->imap->imap_stream) == 0)
		c->idle_ready = 1;
	return 0;
}

/* --- sync: new mail, chunk by chunk ------------------------------------ */

static int
by_uid(const void *a, const void *b)
{
	const struct uid_size *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Walk a FETCH answer: each mail's UID, RFC822.SIZE and body section. */
struct fetched {
	uint32_t uid, size;
	int seen;
	const char *body;
	size_t len;
};

static int
has_seen(struct mailimap_msg_att_dynamic *dyn)
{
	for (clistiter *it = dyn != NULL && dyn->att_list != NULL ?
	    clist_begin(dyn->att_list) : NULL; it != NULL;
	    it = clist_next(it)) {
		struct mailimap_flag_fetch *ff = clist_content(it);
		if (ff->fl_type == MAILIMAP_FLAG_FETCH_OTHER &&
		    ff->fl_flag != NULL &&
		    ff->fl_flag->fl_type == MAILIMAP_FLAG_SEEN)
			return 1;
	}
	return 0;
}

static void
fetched_of(struct mailimap_msg_att *att, struct fetched *f)
{
	memset(f, 0, sizeof(*f));
	for (clistiter *it = clist_begin(att->att_list); it != NULL;
	    it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);
		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
			f->seen |= has_seen(item->att_data.att_dyn);
			continue;
		}
		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		struct mailimap_msg_att_static *st =
		    item->att_data.att_static;
		if (st->att_type == MAILIMAP_MSG_ATT_UID) {
			f->uid = st->att_data.att_uid;
		} else if (st->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE) {
			f->size = st->att_data.att_rfc822_size;
		} else if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION &&
		    st->att_data.att_body_section != NULL) {
			f->body = st->att_data.att_body_section->sec_body_part;
			f->len = st->att_data.att_body_section->sec_length;
		}
	}
}

/* The UIDs above the checkpoint, with sizes, ascending. */
static int
list_new(struct imap_child *c, struct uid_size **v_r, size_t *n_r)
{
	struct mailimap_set *set = mailimap_set_new_interval(c->last_uid + 1,
	    0);
	struct mailimap_fetch_type *ft =
	    mailimap_fetch_type_new_fetch_att_list_empty();
	clist *result = NULL;
	struct uid_size *v = NULL;
	size_t n = 0;
	int rc = -1;

	*v_r = NULL;
	*n_r = 0;
	if (set == NULL || ft == NULL ||
	    mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_uid()) != 0 ||
	    mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_rfc822_size()) != 0 ||
	    mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_flags()) != 0)
		goto out;
	int r = mailimap_uid_fetch(c->imap, set, ft, &result);
	if (r != MAILIMAP_NO_ERROR) {
		status(c, "down", server_said(c, r));
		goto out;
	}
	if ((v = calloc(clist_count(result) + 1, sizeof(*v))) == NULL)
		goto out;
	for (clistiter *it = clist_begin(result); it != NULL;
	    it = clist_next(it)) {
		struct fetched f;
		fetched_of(clist_content(it), &f);
		/* "last+1:*" names the highest mail even when it is old. */
		if (f.uid > c->last_uid)
			v[n++] = (struct uid_size){ f.uid, f.size,
			    c->only_unseen && f.seen };
	}
	qsort(v, n, sizeof(*v), by_uid);
	*v_r = v;
	*n_r = n;
	v = NULL;
	rc = 0;
out:
	if (result != NULL)
		mailimap_fetch_list_free(result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	free(v);
	return rc;
}

static int
hold(struct imap_child *c, char *frame, size_t len)
{
	struct held *h = &c->held;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		char **f = realloc(h->frames, cap * sizeof(*f));
		if (f != NULL)
			h->frames = f;
		size_t *l = realloc(h->lens, cap * sizeof(*l));
		if (l != NULL)
			h->lens = l;
		if (f == NULL || l == NULL)
			return -1;
		h->cap = cap;
	}
	h->frames[h->n] = frame;
	h->lens[h->n++] = len;
	return 0;
}

/* Send what is held (send: 1) or drop it (0). */
static void
held_release(struct imap_child *c, int send)
{
	struct held *h = &c->held;

	for (size_t i = 0; i < h->n; i++) {
		if (send)
			childlink_send(&c->link, FRAME_MSG, h->frames[i],
			    h->lens[i]);
		free(h->frames[i]);
	}
	h->n = 0;
}

/*
 * Normalise one mail and hold it for the core; whole_size, when only the
 * header was fetched, is the mail's size. The core hears which mail is in
 * the parser first, so that a mail that crashes this child can be named;
 * the one it asked to set aside goes over unparsed. -1 only when out of
 * memory.
 */
static int
send_mail(struct imap_child *c, uint32_t uid, const char *raw, size_t len,
    uint32_t whole_size)
{
	struct inbound_msg *m = NULL;
	char err[200], key[32], why[200], *buf = NULL;
	size_t blen;
	int rc = -1;

	snprintf(key, sizeof(key), "%" PRIu32 ":%" PRIu32, c->validity, uid);
	if (uid == c->bad_uid && c->validity == c->bad_validity) {
		snprintf(why, sizeof(why), "the mail parser crashed on it %lld "
		    "times (mailbox %s, UID %s)", (long long)c->bad_crashes,
		    c->s.name, key);
		log_error("mail set aside unparsed", "mailbox=%s uid=%s "
		    "crashes=%lld", log_q(c->s.name), key,
		    (long long)c->bad_crashes);
		snprintf(err, sizeof(err), "out of memory");
		if (mime_unparsed(raw, len, &c->s.limits, why, &m) < 0)
			goto out;
	} else {
		childlink_send(&c->link, FRAME_PARSING, key, strlen(key));
		if (mime_normalize(raw, len, &c->s.limits, &m, err,
		    sizeof(err)) < 0)
			goto out;
	}
	if (whole_size > 0) {	/* only its header was fetched */
		m->truncated = 1;
		m->raw_size = whole_size;
	} else if (m->truncated) {
		m->raw_size = (int64_t)len;
	}
	/* Source, queue and scopes are the core's to set. */
	if (inbound_msg_pack(m, &buf, &blen) < 0 || hold(c, buf, blen) < 0)
		goto out;
	buf = NULL;
	rc = 0;
out:
	if (rc < 0)
		log_error("mail not handed over", "mailbox=%s error=%s",
		    log_q(c->s.name), log_q(m == NULL ? err : "out of memory"));
	inbound_msg_free(&m);
	free(buf);
	return rc;
}

/*
 * Fetch the chunk's mails (whole, or only the header of those over
 * max_message_size) and send them in UID order.
 */
static int
fetch_chunk(struct imap_child *c, const struct uid_size *v, size_t n)
{
	struct mailimap_set *set = mailimap_set_new_empty();
	struct mailimap_fetch_type *ft =
	    mailimap_fetch_type_new_fetch_att_list_empty();
	clist *result = NULL;
	int rc = -1, header_only = v[0].size > c->s.limits.max_message_size;
	size_t wanted = 0;

	if (set == NULL || ft == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (v[i].skip)
			continue;
		if (mailimap_set_add_single(set, v[i].uid) != 0)
			goto out;
		wanted++;
	}
	if (wanted == 0) {
		rc = 0;		/* all read already: only the checkpoint moves */
		goto out;
	}
	struct mailimap_section *sec = header_only ?
	    mailimap_section_new_header() : mailimap_section_new(NULL);
	if (mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_uid()) != 0 ||
	    mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_body_peek_section(sec)) != 0)
		goto out;
	int r = mailimap_uid_fetch(c->imap, set, ft, &result);
	if (r != MAILIMAP_NO_ERROR) {
		status(c, "down", server_said(c, r));
		goto out;
	}
	/* The answer comes in sequence order, which is UID order. */
	for (clistiter *it = clist_begin(result); it != NULL;
	    it = clist_next(it)) {
		struct fetched f;
		fetched_of(clist_content(it), &f);
		if (f.uid == 0 || f.body == NULL)
			continue;	/* expunged meanwhile */
		if (send_mail(c, f.uid, f.body, f.len, header_only ?
		    v[0].size : 0) < 0)
			goto out;
	}
	/* The parser is idle: a death from here on is no mail's doing. */
	childlink_send(&c->link, FRAME_PARSING, "", 0);
	rc = 0;
out:
	if (result != NULL)
		mailimap_fetch_list_free(result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	return rc;
}

/* \Seen on what the core has committed: for people looking at the box. */
static int
mark_seen(struct imap_child *c, const struct uid_size *v, size_t n)
{
	struct mailimap_set *set = mailimap_set_new_empty();
	struct mailimap_flag_list *flags = mailimap_flag_list_new_empty();
	struct mailimap_store_att_flags *sf = NULL;
	int rc = -1;

	if (set == NULL || flags == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (mailimap_set_add_single(set, v[i].uid) != 0)
			goto out;
	struct mailimap_flag *seen = mailimap_flag_new_seen();
	if (seen == NULL || mailimap_flag_list_add(flags, seen) != 0)
		goto out;
	sf = mailimap_store_att_flags_new_add_flags_silent(flags);
	if (sf == NULL)
		goto out;
	flags = NULL;	/* sf owns it */
	rc = mailimap_uid_store(c->imap, set, sf) == MAILIMAP_NO_ERROR ? 0 : -1;
out:
	if (sf != NULL)
		mailimap_store_att_flags_free(sf);
	if (flags != NULL)
		mailimap_flag_list_free(flags);
	mailimap_set_free(set);
	return rc;
}

/* Ask the core to commit what was sent, up to uid; commit_wait hears the
 * answer. */
static void
commit_ask(struct imap_child *c, uint32_t uid)
{
	snprintf(c->commit_ck, sizeof(c->commit_ck), "%" PRIu32 ":%" PRIu32,
	    c->validity, uid);
	childlink_send(&c->link, FRAME_COMMIT, c->commit_ck,
	    strlen(c->commit_ck));
}

/*
 * 1 committed, 0 the core could not (fetch again). Both answers name the
 * checkpoint; an answer naming another is stale (meant for an earlier
 * commit) and ignored.
 */
static int
commit_wait(struct imap_child *c)
{
	const char *ck = c->commit_ck, *payload;
	int type;
	size_t len;
	int64_t until = childlink_now_ms() + COMMIT_WAIT_MS;

	while (childlink_next(&c->link, until - childlink_now_ms(), &type,
	    &payload, &len) == 1) {
		if ((type != FRAME_COMMITTED && type != FRAME_FAILED) ||
		    len != strlen(ck) || memcmp(payload, ck, len) != 0)
			continue;
		if (type == FRAME_COMMITTED)
			return 1;
		log_warn("the core could not commit, fetching again",
		    "child=%s checkpoint=%s", log_q(c->s.source), ck);
		return 0;
	}
	log_warn("the core did not answer a commit", "child=%s",
	    log_q(c->s.source));
	return 0;
}

static uint32_t
exists(const struct imap_child *c)
{
	return c->imap->imap_selection_info != NULL ?
	    c->imap->imap_selection_info->sel_exists : 0;
}

/*
 * Everything new, chunk by chunk: 0 done, 1 a commit failed (fetch again
 * from the checkpoint), -1 the server is lost.
 */
static int
sync_once(struct imap_child *c)
{
	struct uid_size *v;
	size_t n, i = 0, asked = 0, asked_n = 0;
	int rc = -1;

	if (list_new(c, &v, &n) < 0)
		return -1;
	/* Chunk k+1 is fetched and parsed while the core commits chunk k. */
	while (i < n || asked_n > 0) {
		/* A chunk: up to CHUNK_MSGS mails and CHUNK_BYTES, and mails
		 * over the size limit (fetched header only) on their own. */
		size_t k = 0, bytes = 0;
		if (i < n) {
			int big = v[i].size > c->s.limits.max_message_size;
			k = 1, bytes = v[i].size;
			while (!big && i + k < n && k < CHUNK_MSGS &&
			    v[i + k].size <= c->s.limits.max_message_size &&
			    bytes + v[i + k].size <= CHUNK_BYTES)
				bytes += v[i + k++].size;
			if (fetch_chunk(c, v + i, k) < 0)
				goto out;
		}
		if (asked_n > 0) {
			if (!commit_wait(c)) {
				pause_ms(c, 2000);
				rc = 1;
				goto out;
			}
			c->last_uid = v[asked + asked_n - 1].uid;
			if (mark_seen(c, v + asked, asked_n) < 0) {
				status(c, "down", "cannot set \\Seen");
				goto out;
			}
			asked_n = 0;
		}
		if (k > 0) {
			held_release(c, 1);
			commit_ask(c, v[i + k - 1].uid);
			asked = i;
			asked_n = k;
			i += k;
		}
	}
	rc = 0;
out:
	held_release(c, 0);
	free(v);
	return rc;
}

/*
 * Mail that arrives while a command runs is announced (EXISTS) in that
 * command's answer, which libetpan reads for us: sync until a whole pass
 * went by with no announcement, or the mail would wait for the next one.
 */
static int
sync_new(struct imap_child *c)
{
	for (;;) {
		uint32_t before = exists(c);
		int rc = sync_once(c);
		if (rc < 0)
			return -1;
		if (rc == 0 && exists(c) == before) {
			c->only_unseen = 0;	/* the first pass is over */
			return 0;
		}
	}
}

/* --- waiting for mail --------------------------------------------------- */

/* IDLE until the server says something, or for IDLE_RENEW_S. */
static int
wait_idle(struct imap_child *c)
{
	int type;
	const char *payload;
	size_t len;
	int64_t until = childlink_now_ms() + IDLE_RENEW_S * 1000;

	uint32_t before = exists(c);

	if (mailimap_idle(c->imap) != MAILIMAP_NO_ERROR) {
		status(c, "down", "IDLE refused");
		return -1;
	}
	/* Mail announced in the answer to IDLE itself: look at once. */
	if (exists(c) != before)
		until = 0;
	while (childlink_now_ms() < until) {
		/* What came with "+ idling" sits in libetpan's buffer, where
		 * mailstream_wait_idle (a poll on the socket) cannot see it. */
		if (c->imap->imap_stream->read_buffer_len > 0)
			break;
		/* Short slices, to see the core go between them. */
		int r = mailstream_wait_idle(c->imap->imap_stream, 1);
		if (r == MAILSTREAM_IDLE_ERROR ||
		    r == MAILSTREAM_IDLE_CANCELLED) {
			status(c, "down", "connection lost in IDLE");
			return -1;
		}
		if (r == MAILSTREAM_IDLE_HASDATA)
			break;
		childlink_next(&c->link, 0, &type, &payload, &len);
	}
	if (mailimap_idle_done(c->imap) != MAILIMAP_NO_ERROR) {
		status(c, "down", "connection lost leaving IDLE");
		return -1;
	}
	return 0;
}

static int
wait_poll(struct imap_child *c)
{
	pause_ms(c, c->s.poll_interval * 1000);
	if (mailimap_noop(c->imap) != MAILIMAP_NO_ERROR) {
		status(c, "down", "connection lost");
		return -1;
	}
	return 0;
}

/* Connect, then sync and wait until the server is lost. 1 if it got as
 * far as waiting for new mail (a server that fails before that does not
 * reset the backoff: no login storm against a half-broken server). */
static int
session(struct imap_child *c)
{
	int settled = 0;

	if (connect_login(c) < 0)
		goto out;
	status(c, c->idle_ready ? "idle" : "polling", c->idle_ready ?
	    "connected, waiting in IDLE" : "connected, the server has no "
	    "IDLE: polling");
	for (;;) {
		if (sync_new(c) < 0)
			break;
		settled = 1;
		/* A backlog's chunks are freed now: hand the pages back
		 * rather than hold the peak while waiting for mail. */
		malloc_trim(0);
		if ((c->idle_ready ? wait_idle(c) : wait_poll(c)) < 0)
			break;
	}
out:
	disconnect(c);
	return settled;
}

int
imap_child_main(int fd)
{
	struct imap_child c = { 0 };
	int type;
	const char *payload;
	size_t len;
	int64_t backoff = BACKOFF_FIRST_MS;

	if (childlink_init(&c.link, fd, START_MAX) < 0)
		return 1;
	c.link.label = "mailbox";
	if (childlink_next(&c.link, INT32_MAX, &type, &payload, &len) != 1 ||
	    type != FRAME_START || parse_start(&c, payload, len) < 0) {
		log_error("mailbox child: no usable start frame", "%s", "");
		childlink_release(&c.link);
		settings_release(&c.s);
		return 1;
	}
	c.link.label = c.s.source;
	log_info("mailbox child running", "mailbox=%s host=%s port=%d "
	    "folder=%s checkpoint=%" PRIu32 ":%" PRIu32, log_q(c.s.name),
	    log_q(c.s.host), c.s.port, log_q(c.s.folder), c.validity,
	    c.last_uid);
	for (;;) {
		/* A server that let us in resets the backoff. */
		if (session(&c))
			backoff = BACKOFF_FIRST_MS;
		log_info("mailbox reconnects", "mailbox=%s in_ms=%lld",
		    log_q(c.s.name), (long long)backoff);
		pause_ms(&c, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
		    backoff * 2;
	}
}
