/*
 * webhook: signature check and JSON validation of an inbound webhook.
 *
 * The body must be one JSON object:
 *   {"id", "thread"?, "customer": {"id", "name"?, "email"?}, "subject",
 *    "body", "severity"?, "reply_url"?}
 * ids may be strings or integers (many systems number their events); all
 * other fields are strings. Unknown fields are ignored, so senders can add
 * their own.
 */
#include "webhook.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "ticket.h"

/* A string or integer field as a heap string; NULL if absent/wrong. */
static char *
id_field(json_t *obj, const char *key, const char **why_r, const char *bad)
{
	json_t *v = json_object_get(obj, key);
	char buf[32];

	if (json_is_string(v)) {
		size_t n = json_string_length(v);
		if (n == 0 || n > WEBHOOK_MAX_ID) {
			*why_r = bad;
			return NULL;
		}
		return strdup(json_string_value(v));
	}
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return strdup(buf);
	}
	*why_r = bad;
	return NULL;
}

/* An optional string: 0 and *out NULL when absent, -1 when not a string. */
static int
opt_string(json_t *obj, const char *key, size_t max, char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > max)
		return -1;
	*out = strdup(json_string_value(v));
	return *out == NULL ? -1 : 0;
}

static int
url_ok(const char *u)
{
	return strncasecmp(u, "http://", 7) == 0 ||
	    strncasecmp(u, "https://", 8) == 0;
}

struct inbound_msg *
webhook_accept(const char *hook, const char *queue, const char *secret,
    const char *signature_header, const char *body, size_t len, int64_t now,
    int *status_r, const char **reason_r)
{
	struct inbound_msg *m = NULL;
	json_t *root = NULL, *cust;
	json_error_t jerr;

	*status_r = 400;
	if (!crypto_signature_ok(signature_header, secret, body, len)) {
		*status_r = 401;
		*reason_r = signature_header == NULL ?
		    "missing X-Escalon-Signature" : "bad signature";
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		*reason_r = json_error_code(&jerr) == json_error_duplicate_key ?
		    "body has a duplicate key" :
		    json_error_code(&jerr) == json_error_invalid_utf8 ?
		    "body is not valid UTF-8" : "body is not valid JSON";
		return NULL;
	}
	if (!json_is_object(root)) {
		*reason_r = "body is not a JSON object";
		goto fail;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		*reason_r = "out of memory";
		goto fail;
	}
	m->channel = CHANNEL_WEBHOOK;
	m->received_at = now;
	if ((m->dedupe_key = id_field(root, "id", reason_r,
	    "\"id\" must be a non-empty string or an integer")) == NULL)
		goto fail;
	cust = json_object_get(root, "customer");
	if (!json_is_object(cust)) {
		*reason_r = "\"customer\" must be an object";
		goto fail;
	}
	if ((m->from_address = id_field(cust, "id", reason_r,
	    "\"customer.id\" must be a non-empty string or an integer")) ==
	    NULL)
		goto fail;
	if (opt_string(cust, "name", WEBHOOK_MAX_SUBJECT, &m->from_name) < 0) {
		*reason_r = "\"customer.name\" must be a string";
		goto fail;
	}
	if (opt_string(cust, "email", WEBHOOK_MAX_SUBJECT, &m->from_email) <
	    0) {
		*reason_r = "\"customer.email\" must be a string";
		goto fail;
	}
	json_t *subject = json_object_get(root, "subject");
	if (!json_is_string(subject) ||
	    json_string_length(subject) > WEBHOOK_MAX_SUBJECT) {
		*reason_r = "\"subject\" must be a string of at most 1000 bytes";
		goto fail;
	}
	json_t *text = json_object_get(root, "body");
	if (!json_is_string(text)) {
		*reason_r = "\"body\" must be a string";
		goto fail;
	}
	if (json_object_get(root, "thread") != NULL &&
	    !json_is_null(json_object_get(root, "thread")) &&
	    (m->thread_key = id_field(root, "thread", reason_r,
	    "\"thread\" must be a non-empty string or an integer")) == NULL)
		goto fail;
	if (opt_string(root, "severity", 16, &m->severity) < 0 ||
	    (m->severity != NULL && !ticket_severity_valid(m->severity))) {
		*reason_r = "\"severity\" must be low, normal, high or critical";
		goto fail;
	}
	if (opt_string(root, "reply_url", WEBHOOK_MAX_URL, &m->reply_url) < 0 ||
	    (m->reply_url != NULL && !url_ok(m->reply_url))) {
		*reason_r = "\"reply_url\" must be an http:// or https:// URL";
		goto fail;
	}
	m->subject = strdup(json_string_value(subject));
	m->body = strdup(json_string_value(text));
	m->message_id = strdup(m->dedupe_key);
	if (asprintf(&m->source, "webhook:%s", hook) < 0)
		m->source = NULL;
	m->dedupe_scope = m->source != NULL ? strdup(m->source) : NULL;
	m->from_scope = m->source != NULL ? strdup(m->source) : NULL;
	m->queue = strdup(queue);
	if (m->subject == NULL || m->body == NULL || m->message_id == NULL ||
	    m->source == NULL || m->dedupe_scope == NULL ||
	    m->from_scope == NULL || m->queue == NULL) {
		*reason_r = "out of memory";
		goto fail;
	}
	json_decref(root);
	*status_r = 0;
	return m;
fail:
	inbound_msg_free(&m);
	json_decref(root);
	return NULL;
}
