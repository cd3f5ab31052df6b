/*
 * fuzz_conf: conf_load (gateway/conf.h) on arbitrary bytes as the
 * configuration file, plus conf_parse_duration and conf_parse_size on the
 * input's first line.
 *
 * conf_load reads a path and nothing else in memory, so each input is
 * written to escalon.conf in a folder under /tmp made once (removed at
 * exit); the folder's name has the same length in every process, so
 * limits that count the absolute paths (control_socket) act the same.
 *
 * Inputs that could hold a regex glibc's regcomp takes exponential or
 * high polynomial time or memory for (more than MAX_PLUS '+', more than
 * one "{DIGIT" or "{,", more than MAX_STACKED repetitions right after a
 * repetition or a ')') are skipped, as fuzz_rules does: rule conditions
 * are compiled here too, and that cost is glibc's.
 *
 * What conf.h promises is checked, aborting when broken:
 *   - a failed load hands back "FILE..." naming the file;
 *   - a loaded conf is consistent: every cross-reference (queue -> team,
 *     sla, ladder; level -> team; team -> agents; sla -> calendar;
 *     severity -> sla; rule -> queue, sla, team; mailbox, xmpp, webhook ->
 *     queue) finds what it names, ladder levels are 1..n in order, paths
 *     are absolute, durations and sizes within their bounds;
 *   - the parsers of durations and sizes never give a negative value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define MAX_DUR		(3650LL * 86400)
#define MAX_SIZE	(1LL << 30)
#define MAX_PLUS	8
#define MAX_STACKED	8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/escalon-fuzz-conf.XXXXXX";
static char path[sizeof(dir) + 16];

static void
cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_conf: loaded, yet not " #cond "\n"); \
		abort(); \
	} \
} while (0)

static void
check_path(const char *p, int required)
{
	if (p == NULL)
		CHECK(!required);
	else
		CHECK(p[0] == '/');
}

static void
check_dur(int64_t d)
{
	CHECK(d >= 0 && d <= MAX_DUR);
}

static void
check_conf(const struct conf *c)
{
	size_t i, j;

	check_path(c->store, 1);
	check_path(c->secret_file, 1);
	check_path(c->api_token_file, 1);
	check_path(c->templates, 1);
	check_path(c->control_socket, 1);
	CHECK(c->listen != NULL && c->base_url != NULL);
	check_dur(c->reopen_within);
	check_dur(c->close_after);
	CHECK(c->max_message_size >= 0 && c->max_message_size <= MAX_SIZE);
	CHECK(c->max_attachment_size >= 0 &&
	    c->max_attachment_size <= MAX_SIZE);
	CHECK(c->max_webhook_size >= 0 && c->max_webhook_size <= MAX_SIZE);
	if (c->smtp.present)
		check_path(c->smtp.ca_file, 0);

	for (i = 0; i < c->n_mailboxes; i++) {
		CHECK(conf_queue(c, c->mailboxes[i].queue) != NULL);
		check_path(c->mailboxes[i].ca_file, 0);
		CHECK(c->mailboxes[i].port > 0 && c->mailboxes[i].port < 65536);
	}
	for (i = 0; i < c->n_xmpps; i++) {
		CHECK(conf_queue(c, c->xmpps[i].queue) != NULL);
		check_path(c->xmpps[i].ca_file, 0);
		CHECK(c->xmpps[i].port > 0 && c->xmpps[i].port < 65536);
	}
	for (i = 0; i < c->n_webhooks; i++) {
		CHECK(conf_queue(c, c->webhooks[i].queue) != NULL);
		CHECK(conf_webhook(c, c->webhooks[i].name) != NULL);
	}
	for (i = 0; i < c->n_notifies; i++)
		CHECK(c->notifies[i].events.n >= 1);
	for (i = 0; i < c->n_agents; i++) {
		CHECK(conf_agent(c, c->agents[i].name) != NULL);
		if (c->agents[i].email != NULL)
			CHECK(conf_agent_by_email(c, c->agents[i].email) !=
			    NULL);
	}
	for (i = 0; i < c->n_teams; i++) {
		CHECK(c->teams[i].agents.n >= 1);
		for (j = 0; j < c->teams[i].agents.n; j++)
			CHECK(conf_agent(c, c->teams[i].agents.v[j]) != NULL);
	}
	for (i = 0; i < c->n_calendars; i++)
		CHECK(c->calendars[i].hours.n >= 1 &&
		    c->calendars[i].timezone != NULL);
	for (i = 0; i < c->n_slas; i++) {
		CHECK(conf_calendar(c, c->slas[i].calendar) != NULL);
		check_dur(c->slas[i].first_response);
		check_dur(c->slas[i].next_update);
		check_dur(c->slas[i].resolution);
		check_dur(c->slas[i].customer_update);
		CHECK(c->slas[i].warn_at >= 1 && c->slas[i].warn_at <= 100);
	}
	for (i = 0; i < c->n_ladders; i++) {
		for (j = 0; j < c->ladders[i].n_levels; j++) {
			const struct conf_level *l = &c->ladders[i].levels[j];
			CHECK(l->level == (int)j + 1);
			CHECK(conf_team(c, l->team) != NULL);
			check_dur(l->after);
		}
	}
	for (i = 0; i < c->n_queues; i++) {
		CHECK(conf_team(c, c->queues[i].team) != NULL);
		CHECK(conf_sla(c, c->queues[i].sla) != NULL);
		CHECK(conf_ladder(c, c->queues[i].ladder) != NULL);
	}
	for (i = 0; i < c->n_severities; i++)
		if (c->severities[i].sla != NULL)
			CHECK(conf_sla(c, c->severities[i].sla) != NULL);
	for (i = 0; i < c->n_rules; i++) {
		const struct conf_rule *r = &c->rules[i];
		CHECK(r->match.n >= 1);
		if (r->queue != NULL)
			CHECK(conf_queue(c, r->queue) != NULL);
		if (r->sla != NULL)
			CHECK(conf_sla(c, r->sla) != NULL);
		if (r->team != NULL)
			CHECK(conf_team(c, r->team) != NULL);
	}
}

static void
fuzz_units(const uint8_t *data, size_t size)
{
	char line[256];
	size_t n = 0;
	int64_t v;

	while (n < size && n + 1 < sizeof(line) && data[n] != '\n' &&
	    data[n] != '\0') {
		line[n] = (char)data[n];
		n++;
	}
	line[n] = '\0';
	/* The parsers refuse only overflow and negatives; the 3650d and 1G
	 * bounds are conf_load's. */
	if (conf_parse_duration(line, &v) == 0 && v < 0) {
		fprintf(stderr, "fuzz_conf: duration \"%s\" = %lld\n", line,
		    (long long)v);
		abort();
	}
	if (conf_parse_size(line, &v) == 0 && v < 0) {
		fprintf(stderr, "fuzz_conf: size \"%s\" = %lld\n", line,
		    (long long)v);
		abort();
	}
}

static int
costly(const uint8_t *data, size_t size)
{
	size_t plus = 0, intervals = 0, stacked = 0;

	for (size_t i = 0; i < size; i++) {
		plus += data[i] == '+';
		intervals += data[i] == '{' && i + 1 < size &&
		    ((data[i + 1] >= '0' && data[i + 1] <= '9') ||
		    data[i + 1] == ',');
		stacked += data[i] != '\0' && strchr("*+?{", data[i]) &&
		    i > 0 && data[i - 1] != '\0' &&
		    strchr("*+?)}", data[i - 1]);
	}
	return plus > MAX_PLUS || intervals > 1 || stacked > MAX_STACKED;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL) {
		perror("fuzz_conf: mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/escalon.conf", dir);
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *c;
	char *error = NULL;
	FILE *f;

	fuzz_units(data, size);
	if (costly(data, size))
		return 0;

	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		perror("fuzz_conf: cannot write the input");
		abort();
	}
	if ((c = conf_load(path, &error)) == NULL) {
		if (error == NULL || strncmp(error, path, strlen(path)) != 0) {
			fprintf(stderr, "fuzz_conf: error without the file: "
			    "%s\n", error != NULL ? error : "(null)");
			abort();
		}
		free(error);
		return 0;
	}
	if (error != NULL)
		abort();
	check_conf(c);
	conf_free(&c);
	if (c != NULL)
		abort();
	return 0;
}
