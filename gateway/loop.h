/*
 * loop: the core's single-threaded event loop (epoll): file descriptors,
 * one-shot timers, and hooks run before each sleep. Modeled on Redis's ae:
 * depends on nothing else in escalon.
 *
 * Ownership: the loop owns its timers and registrations, never the fds.
 * A callback may add or remove any fd or timer, itself included.
 */
#ifndef ESCALON_LOOP_H
#define ESCALON_LOOP_H

#include <stdint.h>

struct loop;
struct loop_timer;

#define LOOP_READ  1u
#define LOOP_WRITE 2u

typedef void loop_fd_cb(struct loop *l, int fd, unsigned events, void *arg);
typedef void loop_timer_cb(struct loop *l, void *arg);
/* Returns the longest the loop may sleep, in ms; -1 for no limit. */
typedef int64_t loop_prepare_cb(struct loop *l, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop **lp);

int loop_fd_add(struct loop *l, int fd, unsigned events, loop_fd_cb *cb,
    void *arg);
int loop_fd_set_events(struct loop *l, int fd, unsigned events);
void loop_fd_del(struct loop *l, int fd);

/*
 * A timer fires once, after ms milliseconds (monotonic); its handle is dead
 * once its callback has started: clear your copy there, and cancel only a
 * timer that has not fired.
 */
struct loop_timer *loop_timer_add(struct loop *l, int64_t ms,
    loop_timer_cb *cb, void *arg);
void loop_timer_cancel(struct loop *l, struct loop_timer **tp);

/*
 * Hooks run, in the order added, after the ready events of one wake-up are
 * handled and before the loop sleeps again: group commit lives here.
 */
int loop_prepare_add(struct loop *l, loop_prepare_cb *cb, void *arg);

/* Monotonic milliseconds. */
int64_t loop_now_ms(void);

/* Runs until loop_stop(); returns 0, or -1 if epoll fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
