/*
 * bench_sched: the escalation scheduler against a large store (issue 6's
 * targets): with N open tickets (default 1,000,000), the cost of a wake-up
 * with nothing due, 10,000 tickets due at once through the core's own
 * sched_run_due, and `escalon due --at` over the whole store.
 *
 *   build/bench_sched [--json FILE] [N]    (run by tests/bench/run.py)
 *
 * It prints the figures; --json FILE also writes them as a JSON list of
 * rows {name, value, unit, target, note} (tests/bench/benchlib.py), the
 * targets being issue 6's. `escalon due` is $ESCALON_BIN, else ./escalon.
 */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "log.h"
#include "scheduler.h"
#include "store.h"

#define DUE_AT_ONCE 10000
#define MAX_ROWS 8

/* The figures, for --json. */
static struct row {
	const char *name, *unit, *target, *note;
	double value;
} rows[MAX_ROWS];
static int n_rows;

static void
add_row(const char *name, double value, const char *unit,
    const char *target, const char *note)
{
	if (n_rows < MAX_ROWS)
		rows[n_rows++] = (struct row){ name, unit, target, note, value };
}

/* Names, units and notes are our own literals: no JSON escaping needed. */
static int
write_rows(const char *path, long n)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs("[\n", f);
	for (int i = 0; i < n_rows; i++) {
		fprintf(f, " {\"name\": \"%s\", \"value\": %.6g, "
		    "\"unit\": \"%s\", ", rows[i].name, rows[i].value,
		    rows[i].unit);
		if (rows[i].target != NULL)
			fprintf(f, "\"target\": \"%s\", ", rows[i].target);
		else
			fputs("\"target\": null, ", f);
		fprintf(f, "\"note\": \"%s; %ld open tickets\"}%s\n",
		    rows[i].note, n, i + 1 < n_rows ? "," : "");
	}
	fputs("]\n", f);
	return fclose(f);
}

static double
secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "bench_sched: %s: %s\n", what, why ? why : "failed");
	exit(2);
}

static const char config[] =
    "store = \"var/escalon.db\"\n"
    "listen = \"127.0.0.1:18099\"\n"
    "templates = \"%s/templates\"\n"
    "webhook \"shop\" { secret = 'x' queue = \"general\" }\n"
    "agent \"a\" { email = \"a@example.test\" }\n"
    "team \"t1\" { agents = {\"a\"} }\n"
    "team \"t2\" { agents = {\"a\"} }\n"
    "calendar \"business\" { timezone = \"Europe/Berlin\"\n"
    "  hours = {\"mon-fri 09:00-17:00\"} }\n"
    "sla \"standard\" { calendar = \"business\" first_response = \"4h\"\n"
    "  next_update = \"8h\" resolution = \"3d\" warn_at = 80 }\n"
    "ladder \"default\" { level 1 { team = \"t1\" }\n"
    "  level 2 { team = \"t2\" after = \"2h\" on_breach = "
    "{\"first_response\"} } }\n"
    "queue \"general\" { team = \"t1\" sla = \"standard\" "
    "ladder = \"default\" }\n";

int
main(int argc, char **argv)
{
	long n = 1000000;
	const char *json = NULL, *bin = getenv("ESCALON_BIN");
	char dir[] = "/tmp/escalon-bench-sched-XXXXXX", path[512], cwd[400];
	char *error = NULL, cmd[PATH_MAX + 1024], escalon[PATH_MAX], at_arg[32];
	struct store *st;
	struct env *e;
	FILE *f;
	double t0, t1;
	int64_t now = (int64_t)time(NULL), at;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json = argv[++i];
		else if ((n = atol(argv[i])) <= 0)
			die("usage", "bench_sched [--json FILE] [N]");
	}
	log_set_level(LOG_ERROR);
	if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof(cwd)) == NULL)
		die("temp dir", NULL);
	/* `escalon due` runs in dir: the binary by its absolute path. */
	if (realpath(bin != NULL && *bin ? bin : "escalon", escalon) == NULL)
		die(bin != NULL && *bin ? bin : "./escalon", "no such binary");
	snprintf(path, sizeof(path), "%s/escalon.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		die(path, NULL);
	fprintf(f, config, cwd);
	fclose(f);
	if ((e = env_load(path, &error)) == NULL)
		die("config", error);
	if ((st = store_open(e->conf->store, 0, &error)) == NULL)
		die("store", error);

	/* N open tickets, planned as the core plans them. */
	t0 = secs();
	if (store_begin(st) < 0)
		die("begin", store_error(st));
	for (long i = 0; i < n; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "c%ld", i);
		struct ticket t = {
			.state = TICKET_OPEN, .severity = "normal",
			.queue = "general", .team = "t1", .sla = "standard",
			.ladder = "default", .level = 1, .channel = "webhook",
			.source = "webhook:shop",
			.customer_scope = "webhook:shop",
			.customer_address = addr, .subject = "bench",
			.created_at = now - (i % 86400), .updated_at = now,
			.level_since = now - (i % 86400),
		};
		t.resolution_start = t.created_at;
		if (store_customer_identify(st, "webhook", "webhook:shop",
		    addr, NULL, NULL, now, &t.customer_id) < 0 ||
		    store_ticket_insert(st, &t) < 0 ||
		    sched_plan(st, e, &t, now) < 0)
			die("ticket", store_error(st));
		/* Planned into the future: nothing is due yet. */
		t.next_due_at = now + 3600 + i % 100000;
		if (store_ticket_update(st, &t) < 0)
			die("ticket", store_error(st));
	}
	if (store_commit(st) < 0)
		die("commit", store_error(st));
	t1 = secs();
	printf("%-44s %10.0f tickets/s (%ld tickets, %.1f s)\n",
	    "create + plan open tickets", n / (t1 - t0), n, t1 - t0);
	add_row("Scheduler: create + plan open tickets", n / (t1 - t0),
	    "tickets/s", NULL, "store_ticket_insert + sched_plan, one "
	    "transaction");

	/* A wake-up with nothing due: the index look-ups the core makes. */
	int rounds = 1000, got = 0;
	int64_t ids[1];
	t0 = secs();
	for (int i = 0; i < rounds; i++)
		if (store_next_due(st, &at) < 0 ||
		    store_due_tickets(st, now, 1, ids, &got) < 0 || got != 0)
			die("idle wake", store_error(st));
	t1 = secs();
	printf("%-44s %10.3f ms\n", "wake-up with nothing due",
	    (t1 - t0) * 1000 / rounds);
	add_row("Scheduler: idle wake-up, nothing due",
	    (t1 - t0) * 1000 / rounds, "ms", "< 1", "store_next_due + "
	    "store_due_tickets, mean of 1000");
	store_close(&st);

	/* 10,000 due at once: make them due, then the core's own sweep. */
	sqlite3 *db;
	if (sqlite3_open(e->conf->store, &db) != SQLITE_OK)
		die("sqlite", NULL);
	snprintf(cmd, sizeof(cmd), "UPDATE tickets SET next_due_at = %lld, "
	    "created_at = %lld, resolution_start = %lld, level_since = %lld "
	    "WHERE id <= %d", (long long)now - 1, (long long)now - 30 * 86400,
	    (long long)now - 30 * 86400, (long long)now - 30 * 86400,
	    DUE_AT_ONCE);
	if (sqlite3_exec(db, cmd, NULL, NULL, NULL) != SQLITE_OK)
		die("make due", sqlite3_errmsg(db));
	sqlite3_close(db);

	strftime(at_arg, sizeof(at_arg), "%Y-%m-%dT%H:%M:%SZ",
	    gmtime(&(time_t){ (time_t)now }));
	snprintf(cmd, sizeof(cmd), "cd %s && '%s' -c %s due --at %s --json "
	    "> due.json", dir, escalon, path, at_arg);
	t0 = secs();
	if (system(cmd) != 0)
		die("escalon due", cmd);
	t1 = secs();
	printf("%-44s %10.3f s\n", "escalon due --at now (whole store)",
	    t1 - t0);
	add_row("Scheduler: escalon due --at (whole store)", t1 - t0, "s",
	    "< 2", "the CLI's wall time, 10,000 due, JSON out");

	if ((st = store_open(e->conf->store, 0, &error)) == NULL)
		die("store", error);
	int more = 0;
	t0 = secs();
	int fired = sched_run_due(st, e, now, DUE_AT_ONCE, &more);
	t1 = secs();
	if (fired != DUE_AT_ONCE)
		die("sweep", store_error(st));
	printf("%-44s %10.3f s (%d tickets: warnings, breaches, "
	    "escalations)\n", "10,000 due tickets fired", t1 - t0, fired);
	add_row("Scheduler: 10,000 due tickets processed", t1 - t0, "s",
	    "< 2", "sched_run_due: events and outbox rows");
	store_close(&st);
	env_free(&e);
	if (json != NULL && write_rows(json, n) != 0)
		die(json, "cannot write");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return 0;
}
