/* ticket: names and helpers for the data model. See ticket.h. */
#include "ticket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[] = {
	"new", "open", "pending", "resolved", "closed"
};

const char *
ticket_state_name(enum ticket_state s)
{
	return (unsigned)s < 5 ? state_names[s] : "?";
}

int
ticket_state_parse(const char *name, enum ticket_state *s_r)
{
	for (int i = 0; i < 5; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*s_r = (enum ticket_state)i;
			return 0;
		}
	}
	return -1;
}

int
ticket_severity_valid(const char *name)
{
	static const char *const names[] = { "low", "normal", "high",
	    "critical" };

	for (size_t i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

int
ticket_parse_ref(const char *s, int64_t *id_r)
{
	char *end;
	long long v;

	if (strncasecmp(s, "ESC-", 4) == 0)
		s += 4;
	if (*s < '1' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*id_r = v;
	return 0;
}

int64_t
ticket_subject_tag(const char *subject)
{
	const char *p = subject;
	int64_t id;

	while (p != NULL && (p = strstr(p, "[ESC-")) != NULL) {
		char buf[24];
		const char *end = strchr(p, ']');
		size_t n = end != NULL ? (size_t)(end - p - 1) : 0;
		if (end != NULL && n < sizeof(buf)) {
			memcpy(buf, p + 1, n);
			buf[n] = '\0';
			if (ticket_parse_ref(buf, &id) == 0)
				return id;
		}
		p += 5;
	}
	return 0;
}

/* Every string field, in one list: ticket_own and ticket_release agree. */
#define TICKET_STRINGS(t) { &(t)->severity, &(t)->queue, &(t)->team, \
	&(t)->sla, &(t)->ladder, &(t)->channel, &(t)->source, \
	&(t)->customer_scope, &(t)->customer_name, &(t)->customer_address, \
	&(t)->subject, &(t)->reply_url, &(t)->assignee, &(t)->root_cause }

int
ticket_own(struct ticket *t)
{
	char **strs[] = TICKET_STRINGS(t);
	int rc = 0;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (*strs[i] == NULL)
			continue;
		if ((*strs[i] = strdup(*strs[i])) == NULL)
			rc = -1;
	}
	return rc;
}

void
ticket_release(struct ticket *t)
{
	char **strs[] = TICKET_STRINGS(t);

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}
