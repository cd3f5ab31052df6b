/*
 * core: `escalon run`. See core.h.
 *
 * Signals arrive through a signalfd in the loop: SIGHUP reloads the config
 * (a bad one is refused and the old one kept), SIGTERM/SIGINT stop taking
 * connections, commit the batch in hand, flush the answers and exit 0.
 *
 * Group commit: webhook handlers queue their message into the batch and
 * suspend their request; a zero-delay timer commits the batch once per
 * wake-up, and each request is answered from its callback only after
 * COMMIT has returned; MHD writes the answers when it next runs.
 */
#include "core.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "acts.h"
#include "api.h"
#include "clock.h"
#include "conf.h"
#include "control.h"
#include "dashboard.h"
#include "deliver.h"
#include "crypto.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "loop.h"
#include "intake.h"
#include "env.h"
#include "outbox.h"
#include "scheduler.h"
#include "sender.h"
#include "store.h"
#include "webhook.h"

#define CORE_CONNECTION_LIMIT 1024
#define CORE_CONNECTION_TIMEOUT 30	/* seconds of silence */
#define CORE_HEADER_TIMEOUT 10		/* seconds for a request's header */
#define CORE_BODY_TIMEOUT 10		/* seconds for its body, */
#define CORE_BODY_MIN_RATE 1024		/* plus one per this many bytes */
#define CORE_FLUSH_MS 300		/* answers written after SIGTERM */

struct core {
	char *config_path;
	struct env *env;		/* config, templates, rules: swapped
					   whole on reload */
	const struct conf *conf;	/* env->conf */
	const struct clock *clock;
	struct loop *loop;
	struct store *store;
	struct httpd *httpd;
	struct control *control;
	struct sender *sender;
	struct intake *intake;
	struct ingest_batch *batch;
	int sigfd;
	int stopping;
	struct loop_timer *stop_timer;
	struct loop_timer *commit_timer;	/* set while the batch waits */
	struct loop_timer *sched_timer;		/* the next due ticket */
	char *secret;
	char *api_token;
	struct api api;		/* what the read-only endpoints see */
};

/* --- the scheduler: SLA clocks and ladder steps ------------------------- */

#define SCHED_MAX_TICKETS 10000	/* per wake-up, so HTTP stays responsive */
#define SCHED_PLAN_CHECKPOINT "scheduler:config"

static void sched_arm(struct core *core);

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_sched(struct loop *l, void *arg)
{
	struct core *core = arg;
	int more = 0;
	int n = sched_run_due(core->store, core->env,
	    clock_now(core->clock), SCHED_MAX_TICKETS, &more);

	(void)l;
	core->sched_timer = NULL;
	sender_kick(core->sender);
	if (n < 0 || more) {
		/* A failed store is tried again shortly; a long backlog after
		 * HTTP has had its turn. */
		core->sched_timer = loop_timer_add(core->loop, n < 0 ? 5000 :
		    0, on_sched, core);
		return;
	}
	sched_arm(core);
}

/* Sleep until the earliest next_due_at of all tickets. */
static void
sched_arm(struct core *core)
{
	int64_t at;
	int rc = store_next_due(core->store, &at);

	loop_timer_cancel(core->loop, &core->sched_timer);
	if (rc < 0) {
		core->sched_timer = loop_timer_add(core->loop, 5000, on_sched,
		    core);
		return;
	}
	if (rc == 0)
		return;
	int64_t ms = at * 1000 - now_ms();
	core->sched_timer = loop_timer_add(core->loop, ms > 0 ? ms + 5 : 0,
	    on_sched, core);
}

/*
 * After a reload targets and calendars may differ: plan every unresolved
 * ticket again. (Touches all open tickets: a reload is rare.)
 */
static void
sched_replan(struct core *core)
{
	int64_t now = clock_now(core->clock);
	int64_t *ids = NULL;
	size_t n = 0;

	if (store_ticket_ids(core->store, 0, &ids, &n) < 0 ||
	    store_begin(core->store) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct ticket t;
		if (store_ticket_get(core->store, ids[i], &t) != 1)
			goto rollback;
		int rc = sched_plan(core->store, core->env, &t, now) < 0 ||
		    store_ticket_update(core->store, &t) < 0;
		ticket_release(&t);
		if (rc)
			goto rollback;
	}
	if (core->env->fingerprint[0] != '\0' &&
	    store_checkpoint_set(core->store, SCHED_PLAN_CHECKPOINT,
	    core->env->fingerprint, now) < 0)
		goto rollback;
	if (store_commit(core->store) < 0)
		goto rollback;
	log_info("scheduler: tickets planned", "tickets=%zu", n);
	free(ids);
	sched_arm(core);
	return;
rollback:
	store_rollback(core->store);
fail:
	log_error("scheduler: cannot plan tickets", "error=%s",
	    log_q(store_error(core->store)));
	free(ids);
	sched_arm(core);
}

/*
 * Plans stored by the last run stand while the config is the same file;
 * a config changed while escalon was down is a reload.
 */
static void
sched_start(struct core *core)
{
	char *planned = NULL;
	int rc = store_checkpoint_get(core->store, SCHED_PLAN_CHECKPOINT,
	    &planned);

	if (rc == 1 && strcmp(planned, core->env->fingerprint) == 0)
		sched_arm(core);
	else
		sched_replan(core);
	free(planned);
}

/* --- group commit ----------------------------------------------------- */

static void
commit_batch(struct core *core)
{
	if (ingest_batch_len(core->batch) == 0)
		return;
	ingest_batch_commit(core->batch, core->store, core->env,
	    clock_now(core->clock));
	sender_kick(core->sender);
	sched_arm(core);
}

static void
on_commit_timer(struct loop *l, void *arg)
{
	struct core *core = arg;

	(void)l;
	core->commit_timer = NULL;
	commit_batch(core);
}

/*
 * A zero-delay timer: timers run after every ready fd of a wake-up has
 * been handled, so the batch holds all that one wake-up brought in. It
 * also keeps the loop from sleeping on a batch queued from inside MHD_run
 * during a prepare hook.
 */
static void
schedule_commit(struct core *core)
{
	if (core->commit_timer == NULL)
		core->commit_timer = loop_timer_add(core->loop, 0,
		    on_commit_timer, core);
}

static void
commit_soon(void *arg)
{
	schedule_commit(arg);
}

/* --- webhooks: POST /hooks/NAME ---------------------------------------- */

static const char *
hook_name(const struct http_req *req)
{
	return http_req_path(req) + strlen("/hooks/");
}

static int64_t
hook_begin(struct http_req *req, void *arg)
{
	struct core *core = arg;
	const char *name = hook_name(req);

	if (conf_webhook(core->conf, name) == NULL) {
		http_respond_error(req, 404, "no such webhook");
		return -1;
	}
	return core->conf->max_webhook_size;
}

static void
hook_done(const struct ingest_result *r, void *arg)
{
	struct http_req *req = arg;
	char buf[128];

	if (r->failed) {
		http_respond_error(req, r->temporary ? 503 : 500,
		    r->temporary ? "store unavailable, try again" : r->error);
		return;
	}
	int n = snprintf(buf, sizeof(buf),
	    "{\"ticket\":%lld,\"ref\":\"ESC-%lld\",\"duplicate\":%s}",
	    (long long)r->ticket_id, (long long)r->ticket_id,
	    r->duplicate ? "true" : "false");
	http_respond(req, 202, "application/json", buf, (size_t)n);
}

static void
hook_handle(struct http_req *req, void *arg)
{
	struct core *core = arg;
	const char *name = hook_name(req), *reason = NULL, *body;
	const struct conf_webhook *w = conf_webhook(core->conf, name);
	struct inbound_msg *m;
	size_t len;
	int status;

	if (w == NULL) {	/* removed by a reload meanwhile */
		http_respond_error(req, 404, "no such webhook");
		return;
	}
	body = http_req_body(req, &len);
	m = webhook_accept(w->name, w->queue, w->secret,
	    http_req_header(req, "X-Escalon-Signature"), body, len,
	    clock_now(core->clock), &status, &reason);
	if (m == NULL) {
		log_warn("webhook refused", "hook=%s status=%d reason=%s",
		    log_q(name), status, log_q(reason));
		http_respond_error(req, (unsigned)status, reason);
		return;
	}
	if (ingest_batch_add(core->batch, m, hook_done, req) < 0) {
		inbound_msg_free(&m);
		http_respond_error(req, 503, "busy, try again");
		return;
	}
	http_suspend(req);
	schedule_commit(core);
}

/* --- read-only endpoints (api.c): no body, answered at once ----------- */

static int64_t
no_body(struct http_req *req, void *arg)
{
	(void)req;
	(void)arg;
	return 0;
}

#define API_ROUTE(fn) \
	static void fn##_route(struct http_req *req, void *arg) \
	{ fn(&((struct core *)arg)->api, req); }
API_ROUTE(api_tickets)
API_ROUTE(api_ticket)
API_ROUTE(api_report)
API_ROUTE(api_metrics)
API_ROUTE(api_healthz)
API_ROUTE(dashboard_page)
API_ROUTE(api_csat)

/* Exact paths before the prefixes that contain them. */
static const struct http_route routes[] = {
	{ "POST", "/hooks/", hook_begin, hook_handle },
	{ "GET", "/api/tickets", no_body, api_tickets_route },
	{ "GET", "/api/tickets/", no_body, api_ticket_route },
	{ "GET", "/api/report", no_body, api_report_route },
	{ "GET", "/metrics", no_body, api_metrics_route },
	{ "GET", "/healthz", no_body, api_healthz_route },
	{ "GET", "/", no_body, dashboard_page_route },
	{ "GET", "/csat/", no_body, api_csat_route },
};

/* --- control socket: CLI acts ------------------------------------------ */

static json_t *
answer(int code, const char *message)
{
	return json_pack("{s:i, s:s}", "code", code, "message", message);
}

/* `escalon outbox --retry ID`: a dead (or waiting) row goes out now. */
static json_t *
outbox_retry(struct core *core, json_t *req)
{
	char msg[200];
	int code = outbox_requeue(core->store, clock_now(core->clock),
	    json_integer_value(json_object_get(req, "id")), msg, sizeof(msg));

	if (code == 0)
		sender_kick(core->sender);
	return answer(code, msg);
}

static void
deliver_done(const struct ingest_result *r, void *arg)
{
	json_t *ans = r->failed ? json_pack("{s:i, s:s}", "code", 2, "message",
	    r->error) : json_pack("{s:i, s:s, s:I, s:b}", "code", 0, "message",
	    "committed", "ticket", (json_int_t)r->ticket_id, "duplicate",
	    r->duplicate);

	control_answer(arg, ans);
}

/* `escalon deliver`: answered once the mail is committed. */
static json_t *
deliver(struct core *core, json_t *req)
{
	const char *why = "the request lacks mailbox or message";
	const char *mailbox = json_string_value(json_object_get(req,
	    "mailbox"));
	const char *message = json_string_value(json_object_get(req,
	    "message"));
	struct inbound_msg *m = mailbox != NULL && message != NULL ?
	    deliver_unpack(core->conf, mailbox, message, &why) : NULL;

	if (m == NULL)
		return answer(ACT_BAD_INPUT, why);
	struct control_client *cl = control_defer(core->control);
	if (ingest_batch_add(core->batch, m, deliver_done, cl) < 0) {
		inbound_msg_free(&m);
		control_answer(cl, answer(2, "out of memory"));
		return NULL;
	}
	schedule_commit(core);
	return NULL;
}

static json_t *
on_control(json_t *req, void *arg)
{
	struct core *core = arg;
	struct act a = { 0 };
	struct act_result r;
	json_int_t ticket = 0;
	const char *verb = json_string_value(json_object_get(req, "act"));

	if (verb != NULL && strcmp(verb, "outbox_retry") == 0)
		return outbox_retry(core, req);
	if (verb != NULL && strcmp(verb, "deliver") == 0)
		return deliver(core, req);
	/* Optional strings may be absent or null. */
	a.agent = json_string_value(json_object_get(req, "as"));
	a.user = json_string_value(json_object_get(req, "user"));
	a.text = json_string_value(json_object_get(req, "text"));
	if (json_unpack(req, "{s:s, s:I}", "act", &a.verb, "ticket",
	    &ticket) < 0 || !acts_known(a.verb))
		return answer(ACT_BAD_INPUT,
		    "not a control request this gateway knows");
	a.ticket_id = ticket;
	acts_run(core->store, core->env, clock_now(core->clock), &a, &r);
	if (r.code == ACT_OK) {
		sender_kick(core->sender);
		sched_arm(core);
	}
	return answer(r.code, r.message);
}

/* --- the loop ---------------------------------------------------------- */

static void
on_stop_timer(struct loop *l, void *arg)
{
	struct core *core = arg;

	core->stop_timer = NULL;
	loop_stop(l);
}

static int64_t
on_prepare(struct loop *l, void *arg)
{
	struct core *core = arg;

	if (core->stopping && core->stop_timer == NULL &&
	    httpd_suspended(core->httpd) == 0)
		core->stop_timer = loop_timer_add(l, CORE_FLUSH_MS,
		    on_stop_timer, core);
	return -1;
}

static void
reload(struct core *core)
{
	char *error = NULL;
	struct env *next = env_load(core->config_path, &error);

	if (next == NULL) {
		log_error("config reload refused, keeping the running config",
		    "error=%s", log_q(error));
		free(error);
		return;
	}
	const char *fixed[][2] = {
		{ core->conf->listen, next->conf->listen },
		{ core->conf->store, next->conf->store },
		{ core->conf->control_socket, next->conf->control_socket },
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(fixed[i][0], fixed[i][1]) != 0)
			log_warn("config reload: listen, store and "
			    "control_socket change only at restart",
			    "running=%s new=%s", log_q(fixed[i][0]),
			    log_q(fixed[i][1]));
	/* Queued messages (in the batch) hold copies, never conf pointers. */
	sender_set_conf(core->sender, next->conf);
	commit_batch(core);	/* its callbacks name the children */
	intake_reload(core->intake, next->conf);
	env_free(&core->env);
	core->env = next;
	core->conf = next->conf;
	core->api.env = next;
	next->secret = core->secret;
	log_info("config reloaded", "file=%s webhooks=%zu queues=%zu",
	    log_q(core->config_path), core->conf->n_webhooks,
	    core->conf->n_queues);
	sender_kick(core->sender);
	sched_replan(core);
}

static void
on_signal(struct loop *l, int fd, unsigned events, void *arg)
{
	struct core *core = arg;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(core);
		} else if (!core->stopping) {
			log_info("stopping", "signal=%u", si.ssi_signo);
			core->stopping = 1;
			httpd_quiesce(core->httpd);
		}
	}
}

static int
setup_signals(struct core *core)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	core->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (core->sigfd < 0)
		return -1;
	return loop_fd_add(core->loop, core->sigfd, LOOP_READ, on_signal,
	    core);
}

static void
core_release(struct core *core)
{
	httpd_free(&core->httpd);
	intake_free(&core->intake);
	sender_free(&core->sender);
	control_free(&core->control);
	ingest_batch_free(&core->batch);
	if (core->sigfd >= 0)
		close(core->sigfd);
	loop_timer_cancel(core->loop, &core->stop_timer);
	loop_timer_cancel(core->loop, &core->commit_timer);
	loop_timer_cancel(core->loop, &core->sched_timer);
	loop_free(&core->loop);
	store_close(&core->store);
	env_free(&core->env);
	free(core->secret);
	free(core->api_token);
	free(core->config_path);
}

int
core_run(const char *config_path)
{
	struct core core = { .sigfd = -1, .clock = &clock_system };
	struct httpd_options ho = {
		.connection_limit = CORE_CONNECTION_LIMIT,
		.connection_timeout = CORE_CONNECTION_TIMEOUT,
		.header_timeout = CORE_HEADER_TIMEOUT,
		.body_timeout = CORE_BODY_TIMEOUT,
		.body_min_rate = CORE_BODY_MIN_RATE,
	};
	char *error = NULL;
	const char *why;
	int rc = 2;

	core.config_path = strdup(config_path);
	if ((core.env = env_load(config_path, &error)) == NULL) {
		fprintf(stderr, "%s\n", error);
		rc = 1;
		goto out;
	}
	core.conf = core.env->conf;
	if ((core.store = store_open(core.conf->store, 0, &error)) == NULL) {
		log_error("cannot open the store", "error=%s", log_q(error));
		goto out;
	}
	if ((core.secret = crypto_secret_file(core.conf->secret_file,
	    &why)) == NULL) {
		log_error("cannot read or create secret_file", "file=%s "
		    "error=%s", log_q(core.conf->secret_file), log_q(why));
		goto out;
	}
	if ((core.api_token = crypto_secret_file(core.conf->api_token_file,
	    &why)) == NULL) {
		log_error("cannot read or create api_token_file", "file=%s "
		    "error=%s", log_q(core.conf->api_token_file), log_q(why));
		goto out;
	}
	core.env->secret = core.secret;
	core.api = (struct api){ .store = core.store, .env = core.env,
	    .token = core.api_token, .clock = core.clock,
	    .loopback = api_loopback(core.conf->listen) };
	if ((core.loop = loop_new()) == NULL ||
	    (core.batch = ingest_batch_new()) == NULL ||
	    setup_signals(&core) < 0 ||
	    loop_prepare_add(core.loop, on_prepare, &core) < 0) {
		log_error("cannot set up the event loop", "error=%s",
		    log_q(strerror(errno)));
		goto out;
	}
	/* `deliver` sends a packed mail in base64: raw plus decoded
	 * attachments, a third more. */
	if ((core.control = control_new(core.loop, core.conf->control_socket,
	    (size_t)core.conf->max_message_size * 3 + (1u << 20),
	    on_control, &core, &error)) == NULL) {
		log_error("cannot open the control socket", "error=%s",
		    log_q(error));
		goto out;
	}
	if ((core.sender = sender_new(core.loop, core.store, core.clock,
	    core.conf, &error)) == NULL) {
		log_error("cannot start the sender", "error=%s", log_q(error));
		goto out;
	}
	ho.listen = core.conf->listen;
	if ((core.httpd = httpd_new(core.loop, &ho, routes,
	    sizeof(routes) / sizeof(routes[0]), &core, &error)) == NULL) {
		log_error("cannot start HTTP", "error=%s", log_q(error));
		goto out;
	}
	struct intake_host ih = { .loop = core.loop, .store = core.store,
	    .batch = core.batch, .sender = core.sender,
	    .commit_soon = commit_soon, .arg = &core };
	if ((core.intake = intake_new(&ih, core.conf)) == NULL) {
		log_error("cannot start the channel children", "error=%s",
		    log_q("out of memory"));
		goto out;
	}
	sender_set_chat(core.sender, intake_chat_send, core.intake);
	core.api.intake = core.intake;
	core.api.sender = core.sender;
	sched_start(&core);
	log_info("escalon running", "listen=%s store=%s webhooks=%zu "
	    "pid=%ld", log_q(core.conf->listen), log_q(core.conf->store),
	    core.conf->n_webhooks, (long)getpid());
	if (loop_run(core.loop) < 0) {
		log_error("event loop failed", "error=%s",
		    log_q(strerror(errno)));
		goto out;
	}
	/* Anything queued after the last commit still gets committed. */
	commit_batch(&core);
	httpd_run(core.httpd);
	log_info("escalon stopped", "%s", "");
	rc = 0;
out:
	free(error);
	core_release(&core);
	return rc;
}
