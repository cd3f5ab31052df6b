/*
 * cli: the commands that read the store (tickets, show) and the agent acts
 * (reply, note, resolve ...) as the command line runs them. Each returns
 * the process exit code: 0 ok, 1 bad input, 2 runtime failure.
 */
#ifndef ESCALON_CLI_H
#define ESCALON_CLI_H

#include "env.h"

int cli_tickets(const struct env *e, int argc, char **argv);
int cli_show(const struct env *e, int argc, char **argv);
/* outbox [--dead] [--retry ID] [--json] */
int cli_outbox(const struct env *e, int argc, char **argv);
/* due [--at TIME] [--json]: what would warn, breach, escalate, send. */
int cli_due(const struct env *e, int argc, char **argv);
/* report [--since DUR | --from T [--to T]] [--json | --csv] */
int cli_report(const struct env *e, int argc, char **argv);
/* argv[0] is the act's verb. */
int cli_act(struct env *e, int argc, char **argv);

#endif
