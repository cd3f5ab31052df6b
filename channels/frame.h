/*
 * frame: the length-prefixed frames the core and its channel children
 * speak over a socketpair.
 *
 *     u32 length (big-endian, of what follows) | u8 type | payload
 *
 * A reader takes bytes as they come (short reads anywhere, several frames
 * in one read) and hands out whole frames; a length over the reader's limit
 * or a zero length is garbage: the stream is unusable and the caller drops
 * the peer. A writer queues frames and drains as the fd takes them, so a
 * slow peer never blocks the core.
 */
#ifndef ESCALON_FRAME_H
#define ESCALON_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER 5

/* Frame types. Child -> core, then core -> child. */
enum frame_type {
	FRAME_MSG = 'M',	/* a normalised message (inbound_msg_pack) */
	FRAME_COMMIT = 'C',	/* commit what came so far; payload the
				   checkpoint to store with it */
	FRAME_STATUS = 'S',	/* JSON {"state", "detail"}: for logs and
				   /healthz */
	FRAME_PARSING = 'P',	/* the key of the item the child is about to
				   parse: if it dies now, that item killed
				   it */
	FRAME_SENT = 'R',	/* JSON {"id", "ok", "permanent", "error"}:
				   how an outbound message went */
	FRAME_START = 's',	/* JSON: settings and where to resume */
	FRAME_COMMITTED = 'c',	/* payload the checkpoint now stored */
	FRAME_FAILED = 'f',	/* the commit failed; payload why */
	FRAME_SEND = 'o',	/* JSON {"id", "to", "body", "stanza_id"}: an
				   outbound chat message */
};

struct frame_reader;

struct frame_reader *frame_reader_new(size_t max_payload);
void frame_reader_free(struct frame_reader **rp);

/*
 * Read once from fd into the reader. 1 bytes came, 0 EOF, -1 error
 * (errno; EAGAIN when a non-blocking fd has nothing).
 */
int frame_reader_fill(struct frame_reader *r, int fd);

/* Feed bytes directly (tests, and callers with their own I/O). */
int frame_reader_feed(struct frame_reader *r, const void *buf, size_t len);

/*
 * The next whole frame: 1 with *type_r, *payload_r (valid until the next
 * call on r) and *len_r; 0 when more bytes are needed; -1 when the stream
 * is garbage (length 0 or over the limit).
 */
int frame_next(struct frame_reader *r, int *type_r, const char **payload_r,
    size_t *len_r);

struct frame_writer;

struct frame_writer *frame_writer_new(void);
void frame_writer_free(struct frame_writer **wp);

/* Queue one frame; -1 when out of memory. */
int frame_writer_put(struct frame_writer *w, int type, const void *payload,
    size_t len);

/* Write what the fd takes. 1 all written, 0 more left, -1 error (errno). */
int frame_writer_flush(struct frame_writer *w, int fd);
size_t frame_writer_pending(const struct frame_writer *w);

/* Blocking: write a whole frame to fd (the children). 0 or -1. */
int frame_write(int fd, int type, const void *payload, size_t len);

#endif
