/* channel: the inbound message every channel fills. See channel.h. */
#include "channel.h"

#include <stdlib.h>

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
