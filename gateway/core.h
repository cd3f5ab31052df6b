/*
 * core: the gateway process (`escalon run`): one thread, one event loop
 * owning the config, the store (the only writer), HTTP intake, the control
 * socket and the group-commit batch. Channel children and the outbound
 * sender join this loop as they arrive.
 */
#ifndef ESCALON_CORE_H
#define ESCALON_CORE_H

/* Runs until SIGTERM/SIGINT; returns the process exit code. */
int core_run(const char *config_path);

#endif
