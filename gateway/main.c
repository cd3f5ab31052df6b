/*
 * escalon: the command line (SPEC.md "Command line"). Parses -c and the
 * subcommand, loads the config and hands over to core (run) or cli.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acts.h"
#include "cli.h"
#include "core.h"
#include "deliver.h"
#include "env.h"
#include "imap.h"
#include "xmpp.h"
#include "child.h"

static const char usage[] =
    "usage: escalon [-c FILE] COMMAND [ARGS]\n"
    "\n"
    "  run                               run the gateway in the foreground\n"
    "  check                             validate the config\n"
    "  tickets [--state S] [--queue Q] [--escalated] [--json]\n"
    "  show ID [--json]                  thread, fields, SLA clocks, events\n"
    "  reply ID [--as AGENT] TEXT...     a public reply to the customer\n"
    "  note ID [--as AGENT] TEXT...      an internal note\n"
    "  resolve ID [CAUSE...]             resolve; CAUSE is the root cause\n"
    "  pending ID                        waiting on the customer\n"
    "  severity ID LEVEL                 low, normal, high or critical\n"
    "  assign ID AGENT                   hand the ticket to an agent\n"
    "  rootcause ID TEXT...              record the root cause\n"
    "  escalate ID [WHY...]              move up one level of the ladder\n"
    "  due [--at TIME] [--json]          what would warn, breach, escalate\n"
    "  report [--since DUR|--from T --to T] [--json|--csv]\n"
    "                                    escalation KPIs (default: 30 days)\n"
    "  outbox [--dead] [--retry ID] [--json]\n"
    "                                    outbound messages waiting or dead\n"
    "  deliver [--mailbox NAME]          one mail on stdin, from an MTA\n"
    "                                    (exit 75: not taken, try again)\n"
    "\n"
    "ID is N or ESC-N; TEXT '-' reads standard input. -c defaults to\n"
    "$ESCALON_CONFIG, else etc/escalon.conf. Exit: 0 ok, 1 bad input,\n"
    "2 runtime failure.\n";

int
main(int argc, char **argv)
{
	const char *path = getenv("ESCALON_CONFIG");
	struct env *e;
	char *error = NULL;
	int i = 1, rc;

	if (path == NULL || path[0] == '\0')
		path = "etc/escalon.conf";
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "escalon: unknown option \"%s\"\n%s",
			    argv[i], usage);
			return 1;
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return 1;
	}
	const char *cmd = argv[i];
	/* Hidden: the core runs its channel children as `child KIND NAME`. */
	if (strcmp(cmd, "child") == 0 && argc - i == 3) {
		signal(SIGPIPE, SIG_IGN);
		if (strcmp(argv[i + 1], "mailbox") == 0)
			return imap_child_main(CHILD_FD);
		if (strcmp(argv[i + 1], "xmpp") == 0)
			return xmpp_child_main(CHILD_FD);
	}
	if (strcmp(cmd, "run") == 0) {
		if (argc - i != 1) {
			fprintf(stderr, "escalon: run takes no arguments\n");
			return 1;
		}
		return core_run(path);
	}
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "tickets") != 0 &&
	    strcmp(cmd, "show") != 0 && strcmp(cmd, "outbox") != 0 &&
	    strcmp(cmd, "due") != 0 && strcmp(cmd, "report") != 0 &&
	    strcmp(cmd, "deliver") != 0 && !acts_known(cmd)) {
		fprintf(stderr, "escalon: unknown command \"%s\"\n%s", cmd,
		    usage);
		return 1;
	}
	/* Config, templates, calendars and rules: all checked, as `run`
	 * would load them. */
	e = env_load(path, &error);
	if (e == NULL) {
		fprintf(stderr, "%s\n", error ? error : "cannot load the config");
		free(error);
		/* An MTA keeps a mail it could not hand over. */
		return strcmp(cmd, "deliver") == 0 ? DELIVER_TEMPFAIL : 1;
	}
	if (strcmp(cmd, "check") == 0) {
		printf("config ok\n");
		rc = 0;
	} else if (strcmp(cmd, "tickets") == 0) {
		rc = cli_tickets(e, argc - i, argv + i);
	} else if (strcmp(cmd, "show") == 0) {
		rc = cli_show(e, argc - i, argv + i);
	} else if (strcmp(cmd, "outbox") == 0) {
		rc = cli_outbox(e, argc - i, argv + i);
	} else if (strcmp(cmd, "due") == 0) {
		rc = cli_due(e, argc - i, argv + i);
	} else if (strcmp(cmd, "report") == 0) {
		rc = cli_report(e, argc - i, argv + i);
	} else if (strcmp(cmd, "deliver") == 0) {
		rc = deliver_main(e, argc - i, argv + i);
	} else {
		rc = cli_act(e, argc - i, argv + i);
	}
	env_free(&e);
	return rc;
}
