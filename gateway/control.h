/*
 * control: the local socket through which CLI acts and `escalon deliver`
 * reach the running core, so the core stays the only writer.
 *
 * Protocol: the client connects, writes one JSON object and a newline,
 * reads one JSON object and a newline, and the server closes. Requests are
 * capped at max_request bytes (at least CONTROL_MAX_REQUEST). The socket is mode 0600: whoever may
 * use it may also open the store.
 */
#ifndef ESCALON_CONTROL_H
#define ESCALON_CONTROL_H

#include <stddef.h>

struct json_t;
struct loop;
struct control;

#define CONTROL_MAX_REQUEST (16u << 20)

/*
 * Returns the answer (the server frees it), or NULL after control_defer:
 * the client then waits until control_answer.
 */
typedef struct json_t *control_handler(struct json_t *request, void *arg);

struct control_client;

/* In a handler: answer later (after a commit). Never NULL. */
struct control_client *control_defer(struct control *ctl);

/* The deferred answer (taken over); the client is then closed. */
void control_answer(struct control_client *cl, struct json_t *answer);

/*
 * Listen on path. Refuses (NULL, *error_r a heap string) when another
 * process answers there: one gateway per control socket.
 */
struct control *control_new(struct loop *l, const char *path,
    size_t max_request, control_handler *handler, void *arg,
    char **error_r);
void control_free(struct control **cp);

/*
 * Client: send request, wait for the answer (*answer_r, caller decrefs).
 * Returns 0, 1 when no gateway listens at path, -1 on failure (*error_r a
 * heap string).
 */
int control_call(const char *path, struct json_t *request,
    struct json_t **answer_r, char **error_r);

#endif
