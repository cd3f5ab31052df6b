/* channel: the inbound message every channel fills. See channel.h. */
#include "channel.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *
channel_name(enum channel_kind k)
{
	switch (k) {
	case CHANNEL_EMAIL:
		return "email";
	case CHANNEL_CHAT:
		return "chat";
	case CHANNEL_WEBHOOK:
		return "webhook";
	}
	return "?";
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
inbound_msg_free(struct inbound_msg **mp)
{
	struct inbound_msg *m = *mp;

	if (m == NULL)
		return;
	char *strs[] = { m->source, m->queue, m->dedupe_scope, m->dedupe_key,
	    m->from_scope, m->from_address, m->from_name, m->from_email,
	    m->subject, m->body, m->html_text, m->thread_key, m->message_id,
	    m->in_reply_to, m->severity, m->reply_url, m->bounce_of };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(strs[i]);
	free_list(m->references, m->n_references);
	free_list(m->recipients, m->n_recipients);
	free_list(m->cc, m->n_cc);
	for (size_t i = 0; i < m->n_attachments; i++) {
		free(m->attachments[i].name);
		free(m->attachments[i].type);
		free(m->attachments[i].data);
	}
	free(m->attachments);
	free(m->raw);
	free(m);
	*mp = NULL;
}

static int
set_str(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? strdup(value) : NULL;
	return value == NULL || *field != NULL ? 0 : -1;
}

int
inbound_msg_claim(struct inbound_msg *m, enum channel_kind channel,
    const char *source, const char *queue)
{
	int mail = channel == CHANNEL_EMAIL;

	m->channel = channel;
	return set_str(&m->source, source) | set_str(&m->queue, queue) |
	    set_str(&m->dedupe_scope, mail ? "email" : "chat") |
	    set_str(&m->from_scope, mail ? "email" : "xmpp") |
	    set_str(&m->severity, NULL) | set_str(&m->reply_url, NULL) |
	    set_str(&m->thread_key, NULL);
}

/* --- the message as bytes ------------------------------------------- */

enum tag {
	T_CHANNEL = 1, T_AUTO, T_TRUNCATED, T_RECEIVED, T_RAW_SIZE,	/* integers */
	T_RAW,							/* bytes */
	T_REFERENCE, T_RECIPIENT, T_CC,				/* lists */
	T_ATTACHMENT, T_ATT_TYPE, T_ATT_SIZE, T_ATT_DATA,	/* attachments */
	T_STRINGS = 32,						/* strings */
};

/* The string fields, in tag order from T_STRINGS. */
#define STRING_FIELDS(m) { &(m)->source, &(m)->queue, &(m)->dedupe_scope, \
	&(m)->dedupe_key, &(m)->from_scope, &(m)->from_address, \
	&(m)->from_name, &(m)->from_email, &(m)->subject, &(m)->body, \
	&(m)->html_text, &(m)->thread_key, &(m)->message_id, \
	&(m)->in_reply_to, &(m)->severity, &(m)->reply_url, &(m)->bounce_of }

struct packer {
	char *buf;
	size_t len, cap;
	int failed;
};

static void
put(struct packer *p, int tag, const void *data, size_t len)
{
	if (p->failed || len > UINT32_MAX - 5)
		goto fail;
	if (p->cap - p->len < len + 5) {
		size_t cap = p->cap ? p->cap : 1024;
		while (cap - p->len < len + 5)
			cap *= 2;
		char *b = realloc(p->buf, cap);
		if (b == NULL)
			goto fail;
		p->buf = b;
		p->cap = cap;
	}
	unsigned char *h = (unsigned char *)p->buf + p->len;
	h[0] = (unsigned char)tag;
	h[1] = (unsigned char)(len >> 24);
	h[2] = (unsigned char)(len >> 16);
	h[3] = (unsigned char)(len >> 8);
	h[4] = (unsigned char)len;
	if (len > 0)
		memcpy(h + 5, data, len);
	p->len += len + 5;
	return;
fail:
	p->failed = 1;
}

static void
put_int(struct packer *p, int tag, int64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
	put(p, tag, b, sizeof(b));
}

static void
put_list(struct packer *p, int tag, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(p, tag, v[i], strlen(v[i]));
}

int
inbound_msg_pack(const struct inbound_msg *m, char **buf_r, size_t *len_r)
{
	struct packer p = { 0 };
	char *const *strs[] = STRING_FIELDS(m);

	put_int(&p, T_CHANNEL, m->channel);
	put_int(&p, T_AUTO, m->auto_submitted);
	put_int(&p, T_TRUNCATED, m->truncated);
	put_int(&p, T_RECEIVED, m->received_at);
	put_int(&p, T_RAW_SIZE, m->raw_size);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (*strs[i] != NULL)
			put(&p, T_STRINGS + (int)i, *strs[i], strlen(*strs[i]));
	put_list(&p, T_REFERENCE, m->references, m->n_references);
	put_list(&p, T_RECIPIENT, m->recipients, m->n_recipients);
	put_list(&p, T_CC, m->cc, m->n_cc);
	for (size_t i = 0; i < m->n_attachments; i++) {
		const struct inbound_attachment *a = &m->attachments[i];
		put(&p, T_ATTACHMENT, a->name, a->name ? strlen(a->name) : 0);
		if (a->type != NULL)
			put(&p, T_ATT_TYPE, a->type, strlen(a->type));
		put_int(&p, T_ATT_SIZE, (int64_t)a->size);
		if (a->data != NULL)
			put(&p, T_ATT_DATA, a->data, a->size);
	}
	if (m->raw != NULL)
		put(&p, T_RAW, m->raw, m->raw_len);
	if (p.failed) {
		free(p.buf);
		return -1;
	}
	*buf_r = p.buf;
	*len_r = p.len;
	return 0;
}

int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p++;
		int more;
		uint32_t cp;
		if (c == 0)
			return 0;
		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07;
		else
			return 0;
		if (end - p < more)
			return 0;
		for (int i = 0; i < more; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		p += more;
		/* Overlong forms, surrogates, beyond U+10FFFF. */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
	}
	return 1;
}

static char *
text_of(const char *data, size_t len)
{
	char *s;

	if (!utf8_valid(data, len) || (s = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

static int
append_text(char ***v, size_t *n, const char *data, size_t len)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (nv == NULL)
		return -1;
	*v = nv;
	if ((nv[*n] = text_of(data, len)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

static int64_t
int_of(const unsigned char *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* One field into m; NULL, or why it is refused. */
static const char *
take(struct inbound_msg *m, int tag, const char *data, size_t len)
{
	char **strs[] = STRING_FIELDS(m);
	size_t n_strs = sizeof(strs) / sizeof(strs[0]);
	struct inbound_attachment *a = m->n_attachments > 0 ?
	    &m->attachments[m->n_attachments - 1] : NULL;

	if (tag >= T_STRINGS && (size_t)(tag - T_STRINGS) < n_strs) {
		char **f = strs[tag - T_STRINGS];
		free(*f);
		return (*f = text_of(data, len)) ? NULL : "text is not UTF-8";
	}
	if ((tag >= T_CHANNEL && tag <= T_RAW_SIZE) || tag == T_ATT_SIZE) {
		if (len != 8)
			return "bad integer field";
		int64_t v = int_of((const unsigned char *)data);
		if (tag == T_CHANNEL && (v < CHANNEL_EMAIL ||
		    v > CHANNEL_WEBHOOK))
			return "unknown channel";
		if (tag == T_CHANNEL)
			m->channel = (enum channel_kind)v;
		else if (tag == T_AUTO)
			m->auto_submitted = (int)v;
		else if (tag == T_TRUNCATED)
			m->truncated = v != 0;
		else if (tag == T_RECEIVED)
			m->received_at = v;
		else if (tag == T_RAW_SIZE)
			m->raw_size = v;
		else if (a == NULL || v < 0)
			return "attachment field out of place";
		else if (a->data == NULL)
			a->size = (size_t)v;
		return NULL;
	}
	switch (tag) {
	case T_RAW:
		free(m->raw);
		if ((m->raw = malloc(len + 1)) == NULL)
			return "out of memory";
		memcpy(m->raw, data, len);
		m->raw[len] = '\0';
		m->raw_len = len;
		return NULL;
	case T_REFERENCE:
		return append_text(&m->references, &m->n_references, data,
		    len) ? "bad reference" : NULL;
	case T_RECIPIENT:
		return append_text(&m->recipients, &m->n_recipients, data,
		    len) ? "bad recipient" : NULL;
	case T_CC:
		return append_text(&m->cc, &m->n_cc, data, len) ? "bad cc" :
		    NULL;
	case T_ATTACHMENT: {
		struct inbound_attachment *v = realloc(m->attachments,
		    (m->n_attachments + 1) * sizeof(*v));
		if (v == NULL)
			return "out of memory";
		m->attachments = v;
		v[m->n_attachments] = (struct inbound_attachment){ 0 };
		if ((v[m->n_attachments].name = text_of(data, len)) == NULL)
			return "attachment name is not UTF-8";
		m->n_attachments++;
		return NULL;
	}
	case T_ATT_TYPE:
		if (a == NULL || a->type != NULL)
			return "attachment field out of place";
		return (a->type = text_of(data, len)) ? NULL :
		    "attachment type is not UTF-8";
	case T_ATT_DATA:
		if (a == NULL || a->data != NULL ||
		    (a->data = malloc(len + 1)) == NULL)
			return "attachment field out of place";
		memcpy(a->data, data, len);
		a->size = len;
		return NULL;
	}
	return "unknown field";
}

struct inbound_msg *
inbound_msg_unpack(const char *buf, size_t len, const char **why_r)
{
	struct inbound_msg *m = calloc(1, sizeof(*m));
	const unsigned char *p = (const unsigned char *)buf;
	size_t off = 0;

	*why_r = "out of memory";
	if (m == NULL)
		return NULL;
	while (off < len) {
		if (len - off < 5) {
			*why_r = "truncated field";
			goto fail;
		}
		size_t n = (size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16 |
		    (size_t)p[off + 3] << 8 | p[off + 4];
		if (len - off - 5 < n) {
			*why_r = "truncated field";
			goto fail;
		}
		if ((*why_r = take(m, p[off], buf + off + 5, n)) != NULL)
			goto fail;
		off += 5 + n;
	}
	*why_r = NULL;
	return m;
fail:
	inbound_msg_free(&m);
	return NULL;
}
