/*
 * cli: read commands and acts. See cli.h.
 *
 * Reads open their own read-only connection, so they work while `run`
 * writes (WAL). Acts go to the running gateway over the control socket;
 * when none answers, the same act code runs here on the store.
 */
#include "cli.h"

#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acts.h"
#include "clock.h"
#include "control.h"
#include "crypto.h"
#include "log.h"
#include "outbox.h"
#include "views.h"
#include "report.h"
#include "scheduler.h"
#include "sla.h"
#include "store.h"

#define CLI_MAX_TEXT (8u << 20)

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "escalon: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 1;
}

/*
 * Open the store read-only. 1: opened; 0: there is no store yet (nothing
 * to show); -1: failure, reported.
 */
static int
open_reader(const struct conf *c, struct store **st_r)
{
	struct stat sb;
	char *error = NULL;

	*st_r = NULL;
	if (stat(c->store, &sb) < 0)
		return 0;
	*st_r = store_open(c->store, STORE_READONLY, &error);
	if (*st_r == NULL) {
		fprintf(stderr, "escalon: %s\n", error);
		free(error);
		return -1;
	}
	return 1;
}

static const char *
time_text(int64_t t, char *buf)
{
	return t == 0 ? "-" : clock_format(t, buf);
}

static int
list_row(const struct ticket *t, void *arg)
{
	int *rows = arg;
	char when[CLOCK_RFC3339_LEN], ref[32];

	if ((*rows)++ == 0)
		printf("%-8s %-9s %-9s %-12s %-10s %-3s %-8s %-20s %s\n",
		    "REF", "STATE", "SEVERITY", "QUEUE", "TEAM", "LVL",
		    "CHANNEL", "CREATED", "SUBJECT");
	snprintf(ref, sizeof(ref), "ESC-%lld", (long long)t->id);
	printf("%-8s %-9s %-9s %-12s %-10s %-3d %-8s %-20s %.60s\n", ref,
	    ticket_state_name(t->state), t->severity, t->queue,
	    t->team ? t->team : "-", t->level, t->channel,
	    clock_format(t->created_at, when), t->subject);
	return 0;
}

int
cli_tickets(const struct env *e, int argc, char **argv)
{
	const struct conf *c = e->conf;
	struct ticket_filter f = { 0 };
	struct store *st;
	enum ticket_state s;
	int json = 0, rc = 0, rows = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--escalated") == 0) {
			f.escalated = 1;
		} else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
			f.state = argv[++i];
			if (ticket_state_parse(f.state, &s) < 0)
				return usage_error("--state \"%s\": must be "
				    "new, open, pending, resolved or closed",
				    f.state);
		} else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) {
			f.queue = argv[++i];
		} else {
			return usage_error("tickets: unknown argument \"%s\"",
			    argv[i]);
		}
	}
	int opened = open_reader(c, &st);
	if (opened < 0)
		return 2;
	if (json) {
		/* The same document as GET /api/tickets. */
		json_t *list = view_tickets(st, &f);
		if (list == NULL) {
			fprintf(stderr, "escalon: %s\n", store_error(st));
			rc = 2;
		} else {
			json_dumpf(list, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		json_decref(list);
	} else if (opened && store_ticket_list(st, &f, list_row, &rows) < 0) {
		fprintf(stderr, "escalon: %s\n", store_error(st));
		rc = 2;
	} else if (rows == 0) {
		printf("no tickets\n");
	}
	store_close(&st);
	return rc;
}

static void
show_text(const json_t *o, const struct ticket *t)
{
	char a[CLOCK_RFC3339_LEN], b[CLOCK_RFC3339_LEN], d[CLOCK_RFC3339_LEN];
	size_t i;
	json_t *v;

	printf("ESC-%lld  %s\n", (long long)t->id, t->subject);
	printf("  state %s, severity %s, queue %s, team %s, level %d%s%s\n",
	    ticket_state_name(t->state), t->severity, t->queue,
	    t->team ? t->team : "-", t->level,
	    t->assignee ? ", assigned to " : "",
	    t->assignee ? t->assignee : "");
	printf("  customer %s <%s> via %s (%s)\n",
	    t->customer_name ? t->customer_name : "-", t->customer_address,
	    t->channel, t->source);
	printf("  created %s, first response %s, resolved %s\n",
	    time_text(t->created_at, a), time_text(t->first_response_at, b),
	    time_text(t->resolved_at, d));
	printf("  due: first response %s, next update %s, resolution %s\n",
	    time_text(t->due_first_response, a),
	    time_text(t->due_next_update, b), time_text(t->due_resolution, d));
	if (t->root_cause != NULL)
		printf("  root cause: %s\n", t->root_cause);
	json_t *csat = json_object_get(o, "csat");
	if (json_is_object(csat))
		printf("  rating: %lld of 5 (%s)\n", (long long)json_integer_value(
		    json_object_get(csat, "score")), json_string_value(
		    json_object_get(csat, "at")));
	json_t *clocks = json_object_get(o, "clocks"), *cl;
	const char *name;
	json_object_foreach(clocks, name, cl) {
		const char *due = json_string_value(json_object_get(cl, "due"));
		printf("  clock %-15s %-8s%s%s%s%s\n", name,
		    json_string_value(json_object_get(cl, "state")),
		    due ? " due " : "", due ? due : "",
		    json_is_true(json_object_get(cl, "warned")) ?
		    ", warned" : "",
		    json_is_true(json_object_get(cl, "breached")) ?
		    ", breached" : "");
	}
	if (json_array_size(json_object_get(o, "tags")) > 0) {
		printf("  tags:");
		json_array_foreach(json_object_get(o, "tags"), i, v)
			printf(" %s", json_string_value(v));
		printf("\n");
	}
	printf("\nMessages\n");
	json_array_foreach(json_object_get(o, "messages"), i, v) {
		printf("  %s %-4s %s:\n", json_string_value(json_object_get(v,
		    "at")), json_string_value(json_object_get(v, "direction")),
		    json_string_value(json_object_get(v, "author")));
		const char *body = json_string_value(json_object_get(v, "body"));
		for (const char *p = body; p != NULL && *p != '\0';) {
			size_t n = strcspn(p, "\n");
			printf("    | %.*s\n", (int)n, p);
			p += n + (p[n] == '\n');
		}
	}
	printf("\nEvents\n");
	json_array_foreach(json_object_get(o, "events"), i, v) {
		char *detail = json_dumps(json_object_get(v, "detail"),
		    JSON_COMPACT);
		const char *actor = json_string_value(json_object_get(v,
		    "actor"));
		printf("  %s %-16s %s %s\n", json_string_value(
		    json_object_get(v, "at")), json_string_value(
		    json_object_get(v, "type")), actor ? actor : "-",
		    detail ? detail : "");
		free(detail);
	}
}

int
cli_show(const struct env *e, int argc, char **argv)
{
	const struct conf *c = e->conf;
	struct store *st = NULL;
	struct ticket t = { 0 };
	int64_t id = 0;
	int json = 0, have_id = 0, rc = 2, found = 0;
	json_t *o = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (!have_id && ticket_parse_ref(argv[i], &id) == 0)
			have_id = 1;
		else
			return usage_error("show: \"%s\" is not a ticket id "
			    "(N or ESC-N)", argv[i]);
	}
	if (!have_id)
		return usage_error("%s", "show: which ticket? (show ID)");
	int opened = open_reader(c, &st);
	if (opened < 0)
		return 2;
	if (opened && (found = store_ticket_get(st, id, &t)) < 0) {
		fprintf(stderr, "escalon: %s\n", store_error(st));
		goto out;
	}
	if (!found) {
		fprintf(stderr, "escalon: ticket ESC-%lld does not exist\n",
		    (long long)id);
		rc = 1;
		goto out;
	}
	if ((o = view_show(st, e, &t)) == NULL) {
		fprintf(stderr, "escalon: %s\n", store_error(st));
		goto out;
	}
	if (json) {
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		show_text(o, &t);
	}
	rc = 0;
out:
	json_decref(o);
	ticket_release(&t);
	store_close(&st);
	return rc;
}

/* The rest of argv joined by spaces, or stdin for "-". Heap string. */
static char *
join_text(int argc, char **argv)
{
	size_t len = 0, cap = 0;
	char *out = NULL;

	if (argc == 1 && strcmp(argv[0], "-") == 0) {
		for (;;) {
			if (cap - len < 4096) {
				cap = cap ? cap * 2 : 8192;
				if (cap > CLI_MAX_TEXT + 1) {
					free(out);
					return NULL;
				}
				char *b = realloc(out, cap);
				if (b == NULL) {
					free(out);
					return NULL;
				}
				out = b;
			}
			size_t n = fread(out + len, 1, cap - len - 1, stdin);
			if (n == 0)
				break;
			len += n;
		}
		out[len] = '\0';
		while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
			out[--len] = '\0';
		return out;
	}
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	out = calloc(1, len + 1);
	if (out == NULL)
		return NULL;
	for (int i = 0; i < argc; i++) {
		if (i > 0)
			strcat(out, " ");
		strcat(out, argv[i]);
	}
	return out;
}

static const char *
login_name(void)
{
	const char *u = getenv("USER");
	struct passwd *pw;

	if (u != NULL && u[0] != '\0')
		return u;
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_name : "operator";
}

int
cli_act(struct env *e, int argc, char **argv)
{
	const struct conf *c = e->conf;
	struct act a = { .verb = argv[0], .user = login_name() };
	struct act_result r = { 0 };
	char *text = NULL, *error = NULL;
	json_t *req = NULL, *ans = NULL;
	int i = 1, rc, min_words, max_words;

	while (i < argc && strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
		a.agent = argv[i + 1];
		i += 2;
	}
	if (i >= argc || ticket_parse_ref(argv[i], &a.ticket_id) < 0)
		return usage_error("%s: which ticket? (N or ESC-N)", a.verb);
	i++;
	while (i < argc && strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
		a.agent = argv[i + 1];
		i += 2;
	}
	/* Words each act takes after the ticket id. */
	if (strcmp(a.verb, "pending") == 0)
		min_words = 0, max_words = 0;
	else if (strcmp(a.verb, "resolve") == 0 ||
	    strcmp(a.verb, "escalate") == 0)
		min_words = 0, max_words = argc;
	else if (strcmp(a.verb, "severity") == 0 ||
	    strcmp(a.verb, "assign") == 0)
		min_words = 1, max_words = 1;
	else
		min_words = 1, max_words = argc;
	if (argc - i < min_words || argc - i > max_words)
		return usage_error("%s: wrong number of arguments (see "
		    "escalon --help)", a.verb);
	if (argc - i > 0) {
		text = join_text(argc - i, argv + i);
		if (text == NULL)
			return usage_error("%s: text too long or unreadable",
			    a.verb);
		a.text = text;
	}
	req = json_pack("{s:s, s:I, s:s*, s:s*, s:s*}", "act", a.verb,
	    "ticket", (json_int_t)a.ticket_id, "as", a.agent, "user", a.user,
	    "text", a.text);
	rc = control_call(c->control_socket, req, &ans, &error);
	if (rc < 0) {
		fprintf(stderr, "escalon: %s\n", error);
		rc = 2;
		goto out;
	}
	if (rc == 0) {
		json_int_t code = 2;
		const char *msg = "no answer";
		json_unpack(ans, "{s:I, s:s}", "code", &code, "message", &msg);
		r.code = (int)code;
		snprintf(r.message, sizeof(r.message), "%s", msg);
	} else {
		/* No gateway running: do it here, on the store; mail it
		 * causes is signed with the gateway's secret. */
		const char *why = NULL;
		char *secret = crypto_secret_file(c->secret_file, &why);
		struct store *st = secret != NULL ?
		    store_open(c->store, 0, &error) : NULL;
		if (st == NULL) {
			if (secret == NULL)
				fprintf(stderr, "escalon: secret_file %s: %s\n",
				    c->secret_file, why);
			else
				fprintf(stderr, "escalon: %s\n", error);
			free(secret);
			rc = 2;
			goto out;
		}
		e->secret = secret;
		acts_run(st, e, clock_now(&clock_system), &a, &r);
		e->secret = NULL;
		free(secret);
		store_close(&st);
	}
	if (r.code == ACT_OK)
		printf("%s\n", r.message);
	else
		fprintf(stderr, "escalon: %s\n", r.message);
	rc = r.code;
out:
	free(error);
	free(text);
	json_decref(req);
	json_decref(ans);
	return rc;
}

struct outbox_ctx {
	json_t *array;
	int rows;
};

static int
outbox_row(const struct outbox_row *r, void *arg)
{
	struct outbox_ctx *ctx = arg;
	char next[CLOCK_RFC3339_LEN];

	if (ctx->array != NULL) {
		json_array_append_new(ctx->array, json_pack("{s:I, s:o, s:s?,"
		    " s:s, s:s, s:s, s:s, s:i, s:o, s:s?, s:o, s:o}",
		    "id", (json_int_t)r->id, "ticket", r->ticket_id > 0 ?
		    json_integer(r->ticket_id) : json_null(), "template",
		    r->template, "channel", r->channel, "recipient",
		    r->recipient, "identity", r->identity, "state",
		    outbox_state_name(r->state), "attempts", r->attempts,
		    "next_attempt_at", view_time(r->next_attempt_at),
		    "last_error", r->last_error, "created_at",
		    view_time(r->created_at), "sent_at",
		    view_time(r->sent_at)));
		return 0;
	}
	if (ctx->rows++ == 0)
		printf("%-6s %-8s %-8s %-9s %-4s %-20s %-30s %s\n", "ID", "STATE",
		    "TICKET", "TEMPLATE", "TRY", "NEXT", "RECIPIENT",
		    "LAST ERROR");
	char ticket[32] = "-";
	if (r->ticket_id > 0)
		snprintf(ticket, sizeof(ticket), "ESC-%lld",
		    (long long)r->ticket_id);
	printf("%-6lld %-8s %-8s %-9s %-4d %-20s %-30.30s %s\n",
	    (long long)r->id, outbox_state_name(r->state), ticket,
	    r->template ? r->template : "-", r->attempts,
	    clock_format(r->next_attempt_at, next), r->recipient,
	    r->last_error ? r->last_error : "");
	return 0;
}

static int
outbox_retry_cli(const struct conf *c, int64_t id)
{
	json_t *req = json_pack("{s:s, s:I}", "act", "outbox_retry", "id",
	    (json_int_t)id), *ans = NULL;
	char *error = NULL, msg[200];
	int rc = control_call(c->control_socket, req, &ans, &error);

	json_decref(req);
	if (rc < 0) {
		fprintf(stderr, "escalon: %s\n", error);
		free(error);
		return 2;
	}
	if (rc == 0) {
		json_int_t code = 2;
		const char *m = "no answer";
		json_unpack(ans, "{s:I, s:s}", "code", &code, "message", &m);
		snprintf(msg, sizeof(msg), "%s", m);
		rc = (int)code;
		json_decref(ans);
	} else {
		/* No gateway running: requeue in the store; it goes out at
		 * the next start. */
		struct store *st = store_open(c->store, 0, &error);
		if (st == NULL) {
			fprintf(stderr, "escalon: %s\n", error);
			free(error);
			return 2;
		}
		rc = outbox_requeue(st, clock_now(&clock_system), id, msg,
		    sizeof(msg));
		store_close(&st);
	}
	fprintf(rc == 0 ? stdout : stderr, "%s%s\n", rc == 0 ? "" :
	    "escalon: ", msg);
	return rc;
}

int
cli_outbox(const struct env *e, int argc, char **argv)
{
	const struct conf *c = e->conf;
	struct outbox_ctx ctx = { 0 };
	struct store *st;
	int json = 0, dead = 0, rc = 0;
	long long retry = 0;

	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--dead") == 0) {
			dead = 1;
		} else if (strcmp(argv[i], "--retry") == 0 && i + 1 < argc) {
			retry = strtoll(argv[++i], &end, 10);
			if (*end != '\0' || retry <= 0)
				return usage_error("--retry \"%s\": not an "
				    "outbox id", argv[i]);
		} else {
			return usage_error("outbox: unknown argument \"%s\"",
			    argv[i]);
		}
	}
	if (retry > 0)
		return outbox_retry_cli(c, retry);
	if (json)
		ctx.array = json_array();
	int opened = open_reader(c, &st);
	if (opened < 0) {
		json_decref(ctx.array);
		return 2;
	}
	if (opened && store_outbox_list(st, dead, outbox_row, &ctx) < 0) {
		fprintf(stderr, "escalon: %s\n", store_error(st));
		rc = 2;
	}
	if (rc == 0 && json) {
		json_dumpf(ctx.array, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (rc == 0 && ctx.rows == 0) {
		printf(dead ? "no dead letters\n" :
		    "nothing waiting to be sent\n");
	}
	json_decref(ctx.array);
	store_close(&st);
	return rc;
}

/* --- due: what the scheduler would do by an instant ---------------------- */

struct due_ctx {
	json_t *rows;
	int64_t after_id;
	const struct ticket *t;
};

static int
max_event(const struct event *ev, void *arg)
{
	int64_t *max = arg;

	if (ev->id > *max)
		*max = ev->id;
	return 0;
}

static int
new_event(const struct event *ev, void *arg)
{
	struct due_ctx *d = arg;
	json_error_t jerr;
	json_t *detail;
	char ref[32];

	if (ev->id <= d->after_id)
		return 0;
	detail = json_loads(ev->detail, 0, &jerr);
	snprintf(ref, sizeof(ref), "ESC-%lld", (long long)d->t->id);
	json_array_append_new(d->rows, json_pack("{s:I, s:s, s:o, s:s, s:o}",
	    "ticket", (json_int_t)d->t->id, "ref", ref, "at",
	    view_time(ev->at), "type", ev->type, "detail",
	    detail != NULL ? detail : json_object()));
	return 0;
}

#define DUE_MAX_STEPS 32	/* scheduler steps simulated per ticket */

/*
 * Runs the scheduler's own code on every ticket due by `at`, inside a
 * transaction that is rolled back: what it records is what would happen,
 * and nothing changes. It holds the store's write lock meanwhile.
 */
static int
simulate_due(struct store *st, const struct env *e, int64_t at, json_t *rows)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	/* The scheduler logs what it does; here nothing is done. */
	log_set_level(LOG_ERROR);
	if (store_begin(st) < 0 ||
	    store_ticket_ids(st, at, &ids, &n) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct ticket t;
		struct due_ctx d = { .rows = rows, .t = &t };
		char error[200] = "";
		if (store_ticket_get(st, ids[i], &t) != 1)
			goto out;
		if (t.next_due_at == 0 || t.next_due_at > at) {
			ticket_release(&t);
			continue;
		}
		store_event_list(st, t.id, max_event, &d.after_id);
		for (int k = 0; k < DUE_MAX_STEPS && t.next_due_at != 0 &&
		    t.next_due_at <= at; k++) {
			int64_t when = t.next_due_at;
			if (sched_fire(st, e, &t, when, error,
			    sizeof(error)) < 0 || t.next_due_at == when)
				break;
		}
		store_event_list(st, t.id, new_event, &d);
		ticket_release(&t);
	}
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "escalon: %s\n", store_error(st));
	store_rollback(st);
	free(ids);
	return rc;
}

int
cli_due(const struct env *e, int argc, char **argv)
{
	const struct conf *c = e->conf;
	int64_t at = clock_now(&clock_system);
	int json = 0, rc = 2;
	char *error = NULL;
	struct store *st;
	struct stat sb;
	json_t *rows = json_array();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
			if (clock_parse(argv[++i], &at) < 0) {
				json_decref(rows);
				return usage_error("--at \"%s\": not an RFC 3339 "
				    "time (2026-12-01T09:30:00Z)", argv[i]);
			}
		} else {
			json_decref(rows);
			return usage_error("due: unknown argument \"%s\"",
			    argv[i]);
		}
	}
	if (stat(c->store, &sb) < 0) {
		st = NULL;
		rc = 0;
	} else if ((st = store_open(c->store, 0, &error)) == NULL) {
		fprintf(stderr, "escalon: %s\n", error);
		free(error);
		json_decref(rows);
		return 2;
	} else if (simulate_due(st, e, at, rows) == 0) {
		rc = 0;
	}
	store_close(&st);
	if (rc == 0 && json) {
		json_dumpf(rows, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (rc == 0) {
		char when[CLOCK_RFC3339_LEN];
		size_t i;
		json_t *r;
		if (json_array_size(rows) == 0)
			printf("nothing due by %s\n", clock_format(at, when));
		json_array_foreach(rows, i, r) {
			char *d = json_dumps(json_object_get(r, "detail"),
			    JSON_COMPACT);
			printf("%-8s %s %-16s %s\n", json_string_value(
			    json_object_get(r, "ref")), json_string_value(
			    json_object_get(r, "at")), json_string_value(
			    json_object_get(r, "type")), d ? d : "");
			free(d);
		}
	}
	json_decref(rows);
	return rc;
}

/* --- report: escalation KPIs --------------------------------------------- */

static void
print_number(FILE *f, json_t *v, const char *none)
{
	if (json_is_integer(v))
		fprintf(f, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		fprintf(f, "%.4g", json_real_value(v));
	else if (json_is_string(v))
		fprintf(f, "%s", json_string_value(v));
	else
		fprintf(f, "%s", none);
}

/* "key,value" lines: nested objects flattened with dots. */
static void
print_csv(const char *prefix, json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		char name[256];
		snprintf(name, sizeof(name), "%s%s%s", prefix,
		    prefix[0] ? "." : "", k);
		if (json_is_object(v)) {
			print_csv(name, v);
			continue;
		}
		/* Names come from the config: quote when CSV needs it. */
		if (strpbrk(name, ",\"\n") != NULL) {
			putchar('"');
			for (const char *p = name; *p; p++) {
				if (*p == '"')
					putchar('"');
				putchar(*p);
			}
			putchar('"');
		} else {
			fputs(name, stdout);
		}
		putchar(',');
		print_number(stdout, v, "");
		putchar('\n');
	}
}

static void
print_duration(const char *label, json_t *d)
{
	json_t *m = json_object_get(d, "median_s"), *p = json_object_get(d,
	    "p90_s");

	printf("  %-34s", label);
	if (json_is_null(m)) {
		printf("-\n");
		return;
	}
	printf("median %llds, p90 %llds (%lld tickets)",
	    (long long)json_integer_value(m), (long long)json_integer_value(p),
	    (long long)json_integer_value(json_object_get(d, "count")));
	if (json_object_get(d, "median_business_s") != NULL)
		printf("; open time: median %llds, p90 %llds",
		    (long long)json_integer_value(json_object_get(d,
		    "median_business_s")), (long long)json_integer_value(
		    json_object_get(d, "p90_business_s")));
	putchar('\n');
}

static void
print_ratio(const char *label, json_t *v)
{
	printf("  %-34s", label);
	if (json_is_real(v))
		printf("%.1f%%\n", 100 * json_real_value(v));
	else
		printf("-\n");
}

static void
print_table(json_t *o)
{
	static const char *const groups[] = { "by_queue", "by_team",
	    "by_severity", "by_level" };
	const char *k;
	json_t *v;

	printf("Escalation report %s .. %s\n\n", json_string_value(
	    json_object_get(o, "from")), json_string_value(json_object_get(o,
	    "to")));
	printf("  %-34s%lld\n", "tickets", (long long)json_integer_value(
	    json_object_get(o, "tickets")));
	printf("  %-34s%lld\n", "escalated", (long long)json_integer_value(
	    json_object_get(o, "escalated")));
	print_ratio("escalation rate", json_object_get(o, "escalation_rate"));
	print_duration("time to escalation", json_object_get(o,
	    "time_to_escalation"));
	print_duration("resolution after escalation", json_object_get(o,
	    "post_escalation_resolution"));
	print_ratio("SLA met after escalation", json_object_get(o,
	    "sla_compliance_post_escalation"));
	print_ratio("root cause recorded (escalated)", json_object_get(o,
	    "root_cause_frequency"));
	print_ratio("first response within SLA", json_object_get(o,
	    "first_response_compliance"));
	for (int i = 0; i < 2; i++) {
		json_t *c = json_object_get(json_object_get(o, "csat"),
		    i == 0 ? "escalated" : "other");
		printf("  CSAT %-29s", i == 0 ? "escalated" : "not escalated");
		if (json_is_real(json_object_get(c, "mean")))
			printf("%.2f (%lld ratings)\n", json_real_value(
			    json_object_get(c, "mean")), (long long)
			    json_integer_value(json_object_get(c, "count")));
		else
			printf("-\n");
	}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		printf("\n  %s\n", groups[g] + 3);
		json_object_foreach(json_object_get(o, groups[g]), k, v)
			printf("    %-32s%lld\n", k,
			    (long long)json_integer_value(v));
	}
}

int
cli_report(const struct env *e, int argc, char **argv)
{
	const struct conf *c = e->conf;
	/* The window [from, to] ends now, this very second included. */
	int64_t to = clock_now(&clock_system), from = to - 30 * 86400, d;
	int json = 0, csv = 0, have_from = 0, have_to = 0, have_since = 0;
	int rc = 2;
	struct store *st = NULL;
	json_t *o = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--csv") == 0) {
			csv = 1;
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			if (conf_parse_duration(argv[++i], &d) < 0 || d <= 0)
				return usage_error("--since \"%s\": not a "
				    "duration (30d, 12h ...)", argv[i]);
			if (d > to)
				d = to;	/* all of it */
			from = to - d;
			have_since = 1;
		} else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
			if (clock_parse(argv[++i], &from) < 0)
				return usage_error("--from \"%s\": not an RFC "
				    "3339 time", argv[i]);
			have_from = 1;
		} else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
			if (clock_parse(argv[++i], &to) < 0)
				return usage_error("--to \"%s\": not an RFC "
				    "3339 time", argv[i]);
			have_to = 1;
		} else {
			return usage_error("report: unknown argument \"%s\"",
			    argv[i]);
		}
	}
	if (json && csv)
		return usage_error("%s", "report: --json or --csv, not both");
	if (have_to && !have_from)
		return usage_error("%s", "report: --to needs --from");
	if (have_since && have_from)
		return usage_error("%s", "report: --since or --from/--to, "
		    "not both");
	if (from >= to)
		return usage_error("%s", "report: the window is empty "
		    "(--from must be before --to)");
	int opened = open_reader(c, &st);
	if (opened < 0)
		return 2;
	if ((o = view_report(st, e, from, to)) == NULL) {
		fprintf(stderr, "escalon: %s\n", st != NULL ? store_error(st) :
		    "out of memory");
		goto out;
	}
	if (json) {
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		putchar('\n');
	} else if (csv) {
		printf("metric,value\n");
		print_csv("", o);
	} else {
		print_table(o);
	}
	rc = 0;
out:
	json_decref(o);
	store_close(&st);
	return rc;
}
