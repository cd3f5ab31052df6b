/*
 * test_frame: the length-prefixed frames between the core and its channel
 * children (channels/frame.h). The reader is fed bytes as a socket hands
 * them out: one at a time, split at every offset, several frames at once;
 * garbage (length 0, over the limit, random bytes) stops the stream. The
 * writer is run against a real non-blocking socketpair whose buffer fills,
 * frame_write against a blocking one, and a 20 MB frame goes through both.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"

#define MAX_PAYLOAD	(1024 * 1024)

/* ---- helpers ----------------------------------------------------------- */

/* The wire form of one frame, appended to *buf (grown with realloc). */
static void
wire(char **buf, size_t *len, int type, const void *payload, size_t n)
{
	uint32_t l = (uint32_t)n + 1;

	*buf = realloc(*buf, *len + FRAME_HEADER + n);
	assert_non_null(*buf);
	unsigned char *h = (unsigned char *)*buf + *len;
	h[0] = (unsigned char)(l >> 24);
	h[1] = (unsigned char)(l >> 16);
	h[2] = (unsigned char)(l >> 8);
	h[3] = (unsigned char)l;
	h[4] = (unsigned char)type;
	if (n > 0)
		memcpy(h + FRAME_HEADER, payload, n);
	*len += FRAME_HEADER + n;
}

/* A raw 4-byte big-endian length and a type byte, no payload. */
static void
header_only(unsigned char h[FRAME_HEADER], uint32_t l, int type)
{
	h[0] = (unsigned char)(l >> 24);
	h[1] = (unsigned char)(l >> 16);
	h[2] = (unsigned char)(l >> 8);
	h[3] = (unsigned char)l;
	h[4] = (unsigned char)type;
}

/* Payload byte i of frame k: distinct per frame, so that a frame that
 * comes back swapped, shifted or short shows. */
static unsigned char
pattern(size_t k, size_t i)
{
	return (unsigned char)(k * 131 + i * 7 + (i >> 8));
}

static void
fill_pattern(unsigned char *p, size_t k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(k, i);
}

static void
check_pattern(const char *p, size_t k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] != pattern(k, i))
			fail_msg("frame %zu byte %zu: 0x%02x, want 0x%02x", k,
			    i, (unsigned char)p[i], pattern(k, i));
}

static void
nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* What the frames of a small stream should read back as. */
struct want {
	int type;
	const char *payload;
	size_t len;
};

static const struct want three[] = {
	{ FRAME_MSG, "hello", 5 },
	{ FRAME_COMMIT, "", 0 },
	{ FRAME_STATUS, "{\"state\":\"ok\"}", 14 },
	{ FRAME_COMMITTED, "\0x\0", 3 },
};
#define N_THREE (sizeof(three) / sizeof(three[0]))

static char *
three_wire(size_t *len_r)
{
	char *buf = NULL;

	*len_r = 0;
	for (size_t i = 0; i < N_THREE; i++)
		wire(&buf, len_r, three[i].type, three[i].payload,
		    three[i].len);
	return buf;
}

/* Takes every whole frame the reader has, checks each against
 * three[*got ...], and advances *got. */
static void
drain_three(struct frame_reader *r, size_t *got)
{
	int type, rc;
	const char *p;
	size_t n;

	while ((rc = frame_next(r, &type, &p, &n)) == 1) {
		assert_true(*got < N_THREE);
		assert_int_equal(type, three[*got].type);
		assert_int_equal(n, three[*got].len);
		assert_memory_equal(p, three[*got].payload, n);
		(*got)++;
	}
	assert_int_equal(rc, 0);
}

/* ---- the reader, fed directly ------------------------------------------ */

static void
test_round_trip(void **state)
{
	struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
	struct frame_writer *w = frame_writer_new();
	size_t got = 0;
	int sv[2];

	(void)state;
	assert_non_null(r);
	assert_non_null(w);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (size_t i = 0; i < N_THREE; i++)
		assert_int_equal(frame_writer_put(w, three[i].type,
		    three[i].payload, three[i].len), 0);
	assert_true(frame_writer_pending(w) > 0);
	assert_int_equal(frame_writer_flush(w, sv[0]), 1);
	assert_int_equal(frame_writer_pending(w), 0);
	/* Nothing pending: flush says all written. */
	assert_int_equal(frame_writer_flush(w, sv[0]), 1);
	while (got < N_THREE) {
		assert_int_equal(frame_reader_fill(r, sv[1]), 1);
		drain_three(r, &got);
	}
	close(sv[0]);
	close(sv[1]);
	frame_writer_free(&w);
	frame_reader_free(&r);
	assert_null(w);
	assert_null(r);
	/* Freeing NULL is a no-op. */
	frame_writer_free(&w);
	frame_reader_free(&r);
}

static void
test_wire_format(void **state)
{
	struct frame_writer *w = frame_writer_new();
	int sv[2];
	unsigned char got[16];
	static const unsigned char want[] = { 0, 0, 0, 4, 'M', 'a', 'b', 'c',
	    0, 0, 0, 1, 'C' };

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(frame_writer_put(w, FRAME_MSG, "abc", 3), 0);
	assert_int_equal(frame_writer_put(w, FRAME_COMMIT, NULL, 0), 0);
	assert_int_equal(frame_writer_pending(w), sizeof(want));
	assert_int_equal(frame_writer_flush(w, sv[0]), 1);
	assert_int_equal(read(sv[1], got, sizeof(got)), sizeof(want));
	assert_memory_equal(got, want, sizeof(want));

	assert_int_equal(frame_write(sv[0], FRAME_MSG, "abc", 3), 0);
	assert_int_equal(frame_write(sv[0], FRAME_COMMIT, NULL, 0), 0);
	assert_int_equal(read(sv[1], got, sizeof(got)), sizeof(want));
	assert_memory_equal(got, want, sizeof(want));
	close(sv[0]);
	close(sv[1]);
	frame_writer_free(&w);
}

static void
test_one_byte_at_a_time(void **state)
{
	struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
	size_t len, got = 0, end = 0, whole = 0;
	char *buf = three_wire(&len);

	(void)state;
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(frame_reader_feed(r, buf + i, 1), 0);
		drain_three(r, &got);
		/* A frame comes out on its last byte, not one byte before. */
		if (whole < N_THREE &&
		    i + 1 == end + FRAME_HEADER + three[whole].len) {
			end = i + 1;
			whole++;
		}
		assert_int_equal(got, whole);
	}
	assert_int_equal(got, N_THREE);
	free(buf);
	frame_reader_free(&r);
}

/* Feeds N bytes (none: nothing is called, see test_fresh_reader)
 * and takes the frames that became whole. */
static void
piece(struct frame_reader *r, const char *buf, size_t n, size_t *got)
{
	if (n == 0)
		return;
	assert_int_equal(frame_reader_feed(r, buf, n), 0);
	drain_three(r, got);
}

static void
test_split_everywhere(void **state)
{
	size_t len;
	char *buf = three_wire(&len);

	(void)state;
	/* Every pair of cut points a <= b: three pieces, drained after each. */
	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len; b++) {
			struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
			size_t got = 0;

			piece(r, buf, a, &got);
			piece(r, buf + a, b - a, &got);
			piece(r, buf + b, len - b, &got);
			assert_int_equal(got, N_THREE);
			frame_reader_free(&r);
		}
	}
	free(buf);
}

static void
test_several_in_one_feed(void **state)
{
	struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
	char *buf = NULL;
	size_t len = 0;
	int type;
	const char *p;
	size_t n;
	unsigned char payload[300];

	(void)state;
	/* 200 frames of 0..299 bytes, every type byte 0..199. */
	for (size_t k = 0; k < 200; k++) {
		fill_pattern(payload, k, k * 3 % 300);
		wire(&buf, &len, (int)k, payload, k * 3 % 300);
	}
	assert_int_equal(frame_reader_feed(r, buf, len), 0);
	for (size_t k = 0; k < 200; k++) {
		assert_int_equal(frame_next(r, &type, &p, &n), 1);
		assert_int_equal(type, (int)k);
		assert_int_equal(n, k * 3 % 300);
		check_pattern(p, k, n);
	}
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	free(buf);
	frame_reader_free(&r);
}

static void
test_type_byte_is_unsigned(void **state)
{
	struct frame_reader *r = frame_reader_new(16);
	unsigned char h[FRAME_HEADER];
	int type;
	const char *p;
	size_t n;

	(void)state;
	header_only(h, 1, 0xff);
	assert_int_equal(frame_reader_feed(r, h, sizeof(h)), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 1);
	assert_int_equal(type, 0xff);
	assert_int_equal(n, 0);
	frame_reader_free(&r);
}

static void
test_empty_payload(void **state)
{
	struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
	unsigned char h[FRAME_HEADER];
	int type;
	const char *p = NULL;
	size_t n = 99;

	(void)state;
	header_only(h, 1, FRAME_COMMIT);
	/* Header only: nothing until the type byte is there. */
	assert_int_equal(frame_reader_feed(r, h, 4), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	assert_int_equal(frame_reader_feed(r, h + 4, 1), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 1);
	assert_int_equal(type, FRAME_COMMIT);
	assert_int_equal(n, 0);
	assert_non_null(p);
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	frame_reader_free(&r);

	/* An empty payload with max_payload 0. */
	r = frame_reader_new(0);
	assert_int_equal(frame_reader_feed(r, h, sizeof(h)), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 1);
	assert_int_equal(n, 0);
	frame_reader_free(&r);
}

static void
test_zero_length_is_garbage(void **state)
{
	struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
	static const unsigned char zero[] = { 0, 0, 0, 0, 'M' };
	int type;
	const char *p;
	size_t n;

	(void)state;
	/* After a good frame, the zero length is seen with its 4 bytes. */
	char *buf = NULL;
	size_t len = 0;
	wire(&buf, &len, FRAME_MSG, "ok", 2);
	assert_int_equal(frame_reader_feed(r, buf, len), 0);
	assert_int_equal(frame_reader_feed(r, zero, 3), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 1);
	assert_memory_equal(p, "ok", 2);
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	assert_int_equal(frame_reader_feed(r, zero + 3, 2), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), -1);
	/* Garbage stays garbage, whatever comes after. */
	assert_int_equal(frame_reader_feed(r, buf, len), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), -1);
	free(buf);
	frame_reader_free(&r);
}

static void
test_over_max(void **state)
{
	static const size_t maxes[] = { 0, 1, 100, 65535, 65536, 65537,
	    MAX_PAYLOAD };
	unsigned char h[FRAME_HEADER];
	int type;
	const char *p;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		size_t max = maxes[i];
		unsigned char *payload = malloc(max + 1);
		struct frame_reader *r = frame_reader_new(max);

		assert_non_null(payload);
		fill_pattern(payload, i, max + 1);

		/* Exactly max: taken, in pieces. */
		header_only(h, (uint32_t)max + 1, FRAME_MSG);
		assert_int_equal(frame_reader_feed(r, h, sizeof(h)), 0);
		assert_int_equal(frame_next(r, &type, &p, &n), max ? 0 : 1);
		if (max > 0) {
			assert_int_equal(frame_reader_feed(r, payload,
			    max - 1), 0);
			assert_int_equal(frame_next(r, &type, &p, &n), 0);
			assert_int_equal(frame_reader_feed(r, payload + max - 1,
			    1), 0);
			assert_int_equal(frame_next(r, &type, &p, &n), 1);
		}
		assert_int_equal(n, max);
		check_pattern(p, i, n);

		/* max + 1: refused on the length alone, before the payload. */
		header_only(h, (uint32_t)max + 2, FRAME_MSG);
		assert_int_equal(frame_reader_feed(r, h, 4), 0);
		assert_int_equal(frame_next(r, &type, &p, &n), -1);
		assert_int_equal(frame_reader_feed(r, h + 4, 1), 0);
		assert_int_equal(frame_reader_feed(r, payload, max + 1), 0);
		assert_int_equal(frame_next(r, &type, &p, &n), -1);
		frame_reader_free(&r);
		free(payload);
	}
}

static void
test_huge_lengths(void **state)
{
	static const uint32_t lens[] = { 0xffffffffu, 0x80000000u,
	    0x7fffffffu, MAX_PAYLOAD + 2 };
	unsigned char h[FRAME_HEADER];
	int type;
	const char *p;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);

		header_only(h, lens[i], FRAME_MSG);
		assert_int_equal(frame_reader_feed(r, h, 4), 0);
		assert_int_equal(frame_next(r, &type, &p, &n), -1);
		frame_reader_free(&r);
	}
}

static void
test_garbage_bytes(void **state)
{
	/* What a confused peer might send instead of frames: text, a
	 * stray HTTP request, JSON, 0xff noise. Each has a first word
	 * far over the limit. */
#define JUNK(s) { s, sizeof(s) - 1 }
	static const struct { const char *s; size_t n; } junk[] = {
		JUNK("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		JUNK("{\"state\":\"ok\"}\n"),
		JUNK("hello world"),
		JUNK("\xff\xff\xff\xff\xff\xff"),
		JUNK("\x00\x10\x00\x02M"),	/* 1 MB + 1 of payload */
		JUNK("\x00\x00\x00\x00\x00"),	/* length 0 */
	};
#undef JUNK
	int type;
	const char *p;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);

		assert_int_equal(frame_reader_feed(r, junk[i].s, junk[i].n),
		    0);
		assert_int_equal(frame_next(r, &type, &p, &n), -1);
		frame_reader_free(&r);
	}

	/* Random bytes: whatever the reader makes of them, it never reads
	 * past what it was given (ASan and valgrind watch), never hands out
	 * a payload over the limit, and once it says -1 it keeps saying it. */
	srand(12345);
	for (int iter = 0; iter < 2000; iter++) {
		struct frame_reader *r = frame_reader_new(64);
		unsigned char b[256];
		size_t len = 1 + (size_t)(rand() % (int)(sizeof(b) - 1));
		int rc;

		for (size_t i = 0; i < len; i++)
			b[i] = (unsigned char)rand();
		/* Often small lengths, so that some frames parse. */
		if (len >= 4 && rand() % 2) {
			b[0] = b[1] = b[2] = 0;
			b[3] = (unsigned char)(rand() % 80);
		}
		assert_int_equal(frame_reader_feed(r, b, len), 0);
		while ((rc = frame_next(r, &type, &p, &n)) == 1) {
			unsigned sum = 0;

			assert_true(n <= 64);
			assert_true(type >= 0 && type <= 0xff);
			/* Touch every byte handed out. */
			for (size_t i = 0; i < n; i++)
				sum += (unsigned char)p[i];
			assert_true(sum <= 0xff * n);
		}
		if (rc == -1)
			assert_int_equal(frame_next(r, &type, &p, &n), -1);
		frame_reader_free(&r);
	}
}

/*
 * A new reader may be asked for a frame, or fed zero bytes (a caller
 * passes on whatever its read returned), before anything came. BUG
 * (channels/frame.c): until the first byte, r->buf is NULL, and
 *   - frame_next computes r->buf + r->start, NULL + 0: undefined
 *     (clang's UBSan: "applying zero offset to null pointer");
 *   - frame_reader_feed (reserve(r, 0) does not allocate) calls
 *     memcpy(NULL + 0, buf, 0): undefined (gcc's UBSan: "null pointer
 *     passed as argument 1").
 * `make asan` (-fno-sanitize-recover=all) stops the process there. Plain
 * and valgrind runs pass; this test runs last so the others report first.
 */
static void
test_fresh_reader(void **state)
{
	struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
	int type;
	const char *p;
	size_t n;

	(void)state;
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	assert_int_equal(frame_reader_feed(r, "", 0), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	assert_int_equal(frame_reader_feed(r, "\0\0\0\1C", 5), 0);
	assert_int_equal(frame_reader_feed(r, "", 0), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 1);
	assert_int_equal(type, FRAME_COMMIT);
	assert_int_equal(n, 0);
	frame_reader_free(&r);
}

/* ---- the reader on a socket -------------------------------------------- */

static void
test_fill_socketpair(void **state)
{
	struct frame_reader *r = frame_reader_new(MAX_PAYLOAD);
	size_t len, got = 0;
	char *buf = three_wire(&len);
	int sv[2];
	int type;
	const char *p;
	size_t n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

	/* Nothing there yet, non-blocking: -1 with EAGAIN. */
	nonblock(sv[1]);
	errno = 0;
	assert_int_equal(frame_reader_fill(r, sv[1]), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

	/* Written in two pieces, the cut inside the second frame. */
	assert_int_equal(write(sv[0], buf, 8), 8);
	assert_int_equal(frame_reader_fill(r, sv[1]), 1);
	drain_three(r, &got);
	assert_int_equal(got, 0);
	assert_int_equal(write(sv[0], buf + 8, len - 8), (ssize_t)(len - 8));
	assert_int_equal(frame_reader_fill(r, sv[1]), 1);
	drain_three(r, &got);
	assert_int_equal(got, N_THREE);

	/* The peer goes: EOF is 0, and stays 0. */
	close(sv[0]);
	assert_int_equal(frame_reader_fill(r, sv[1]), 0);
	assert_int_equal(frame_reader_fill(r, sv[1]), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	close(sv[1]);

	/* A bad fd: -1. */
	errno = 0;
	assert_int_equal(frame_reader_fill(r, -1), -1);
	assert_int_equal(errno, EBADF);
	free(buf);
	frame_reader_free(&r);
}

/* ---- the writer on a non-blocking socketpair ---------------------------- */

/* The size of frame k in the long streams: 1 .. 65536 bytes, with
 * zero-length frames here and there. */
static size_t
frame_size(size_t k)
{
	return k % 97 == 0 ? 0 : (k * 7919) % 65536 + 1;
}

/* Reads from the non-blocking fd until it has nothing more (EAGAIN), and
 * checks every whole frame against frame *k: type 'M', frame_size(*k)
 * bytes of pattern(*k). */
static void
drain_fd(struct frame_reader *r, int fd, size_t *k)
{
	int rc, type;
	const char *p;
	size_t n;

	while ((rc = frame_reader_fill(r, fd)) == 1) {
		while ((rc = frame_next(r, &type, &p, &n)) == 1) {
			assert_int_equal(type, FRAME_MSG);
			assert_int_equal(n, frame_size(*k));
			check_pattern(p, *k, n);
			(*k)++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(rc, -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void
test_writer_buffer_full(void **state)
{
	struct frame_writer *w = frame_writer_new();
	struct frame_reader *r = frame_reader_new(65536);
	unsigned char *payload = malloc(65536);
	size_t total = 0, n_frames = 0, k = 0;
	int sv[2];

	(void)state;
	assert_non_null(payload);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	nonblock(sv[1]);

	/* 8 MB and more of frames queued at once. */
	while (total < 8 * 1024 * 1024) {
		size_t n = frame_size(n_frames);
		fill_pattern(payload, n_frames, n);
		assert_int_equal(frame_writer_put(w, FRAME_MSG, payload, n),
		    0);
		total += FRAME_HEADER + n;
		n_frames++;
	}
	assert_int_equal(frame_writer_pending(w), total);

	/* The peer does not read: the socket takes what it can, flush says
	 * "more left" and does not block; again and again. */
	assert_int_equal(frame_writer_flush(w, sv[0]), 0);
	size_t left = frame_writer_pending(w);
	assert_true(left > 0 && left < total);
	assert_int_equal(frame_writer_flush(w, sv[0]), 0);
	assert_int_equal(frame_writer_pending(w), left);

	/* More frames queue behind the partial one while it waits. */
	for (int extra = 0; extra < 3; extra++) {
		size_t n = frame_size(n_frames);
		fill_pattern(payload, n_frames, n);
		assert_int_equal(frame_writer_put(w, FRAME_MSG, payload, n),
		    0);
		total += FRAME_HEADER + n;
		n_frames++;
	}

	/* The peer drains; the writer flushes as room opens. */
	int rc;
	size_t rounds = 0;
	while ((rc = frame_writer_flush(w, sv[0])) == 0) {
		drain_fd(r, sv[1], &k);
		rounds++;
	}
	assert_int_equal(rc, 1);
	assert_int_equal(frame_writer_pending(w), 0);
	assert_true(rounds > 1);
	drain_fd(r, sv[1], &k);
	assert_int_equal(k, n_frames);

	/* Reused after it emptied. */
	fill_pattern(payload, n_frames, frame_size(n_frames));
	assert_int_equal(frame_writer_put(w, FRAME_MSG, payload,
	    frame_size(n_frames)), 0);
	n_frames++;
	assert_int_equal(frame_writer_flush(w, sv[0]), 1);
	drain_fd(r, sv[1], &k);
	assert_int_equal(k, n_frames);

	close(sv[0]);
	close(sv[1]);
	free(payload);
	frame_reader_free(&r);
	frame_writer_free(&w);
}

static void
test_writer_peer_gone(void **state)
{
	struct frame_writer *w = frame_writer_new();
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	/* No SIGPIPE (it would kill the test): -1 with EPIPE. */
	assert_int_equal(frame_writer_put(w, FRAME_MSG, "x", 1), 0);
	errno = 0;
	assert_int_equal(frame_writer_flush(w, sv[0]), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(frame_writer_pending(w), FRAME_HEADER + 1);
	errno = 0;
	assert_int_equal(frame_write(sv[0], FRAME_MSG, "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(sv[0]);
	frame_writer_free(&w);
}

static void
test_writer_too_long(void **state)
{
	struct frame_writer *w = frame_writer_new();
	char c = 0;

	(void)state;
	/* The length word holds len + 1: UINT32_MAX bytes do not fit. The
	 * check comes before the payload is touched. */
	if (SIZE_MAX > UINT32_MAX) {
		assert_int_equal(frame_writer_put(w, FRAME_MSG, &c,
		    (size_t)UINT32_MAX), -1);
		assert_int_equal(frame_write(-1, FRAME_MSG, &c,
		    (size_t)UINT32_MAX), -1);
	}
	assert_int_equal(frame_writer_pending(w), 0);
	frame_writer_free(&w);
}

/* ---- frame_write, blocking --------------------------------------------- */

/* In a child: frame_write N_FRAMES frames of frame_size(k) (or BIG bytes
 * each when big > 0), then exit 0, or 1 on the first failure. */
static pid_t
spawn_writer(int fd, size_t n_frames, size_t big)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	size_t cap = big > 0 ? big : 65536;
	unsigned char *payload = malloc(cap);
	int rc = payload == NULL;
	for (size_t k = 0; rc == 0 && k < n_frames; k++) {
		size_t n = big > 0 ? big : frame_size(k);
		fill_pattern(payload, k, n);
		rc = frame_write(fd, FRAME_MSG, payload, n) < 0;
	}
	free(payload);
	close(fd);
	_exit(rc);
}

static void
wait_ok(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_frame_write_blocking(void **state)
{
	struct frame_reader *r = frame_reader_new(65536);
	size_t got = 0;
	int sv[2], rc, type;
	const char *p;
	size_t n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

	/* Small frames fit the socket buffer: write, then read. */
	for (size_t i = 0; i < N_THREE; i++)
		assert_int_equal(frame_write(sv[0], three[i].type,
		    three[i].payload, three[i].len), 0);
	while (got < N_THREE) {
		assert_int_equal(frame_reader_fill(r, sv[1]), 1);
		drain_three(r, &got);
	}

	/* 300 frames, several MB: the writer blocks until the reader
	 * catches up, so it runs in a child. */
	pid_t pid = spawn_writer(sv[0], 300, 0);
	close(sv[0]);
	size_t k = 0;
	while ((rc = frame_reader_fill(r, sv[1])) == 1) {
		while ((rc = frame_next(r, &type, &p, &n)) == 1) {
			assert_int_equal(type, FRAME_MSG);
			assert_int_equal(n, frame_size(k));
			check_pattern(p, k, n);
			k++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(rc, 0);	/* EOF once the child is done */
	assert_int_equal(k, 300);
	wait_ok(pid);
	close(sv[1]);
	frame_reader_free(&r);
}

/* ---- a large payload --------------------------------------------------- */

#define BIG	(20 * 1024 * 1024)

static void
test_large_payload_feed(void **state)
{
	struct frame_reader *r = frame_reader_new(BIG);
	unsigned char *payload = malloc(BIG);
	unsigned char h[FRAME_HEADER];
	int type;
	const char *p;
	size_t n;

	(void)state;
	assert_non_null(payload);
	fill_pattern(payload, 7, BIG);
	header_only(h, BIG + 1, FRAME_MSG);
	assert_int_equal(frame_reader_feed(r, h, sizeof(h)), 0);
	/* In 1 MB pieces, the frame handed out after the last. */
	for (size_t off = 0; off < BIG; off += 1024 * 1024) {
		assert_int_equal(frame_next(r, &type, &p, &n), 0);
		assert_int_equal(frame_reader_feed(r, payload + off,
		    1024 * 1024), 0);
	}
	assert_int_equal(frame_next(r, &type, &p, &n), 1);
	assert_int_equal(n, BIG);
	assert_memory_equal(p, payload, BIG);
	assert_int_equal(frame_next(r, &type, &p, &n), 0);
	frame_reader_free(&r);

	/* One byte less of a limit: refused. */
	r = frame_reader_new(BIG - 1);
	assert_int_equal(frame_reader_feed(r, h, sizeof(h)), 0);
	assert_int_equal(frame_next(r, &type, &p, &n), -1);
	frame_reader_free(&r);
	free(payload);
}

static void
test_large_payload_socket(void **state)
{
	struct frame_reader *r = frame_reader_new(BIG);
	struct frame_writer *w = frame_writer_new();
	unsigned char *payload = malloc(BIG);
	int sv[2], rc, type;
	const char *p;
	size_t n, frames = 0;

	(void)state;
	assert_non_null(payload);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

	/* frame_writer: non-blocking both ways, flush and fill in turn. */
	nonblock(sv[0]);
	nonblock(sv[1]);
	fill_pattern(payload, 3, BIG);
	assert_int_equal(frame_writer_put(w, FRAME_MSG, payload, BIG), 0);
	assert_int_equal(frame_writer_put(w, FRAME_COMMIT, "after", 5), 0);
	for (;;) {
		int fl = frame_writer_flush(w, sv[0]);
		assert_true(fl >= 0);
		while ((rc = frame_reader_fill(r, sv[1])) == 1) {
			while ((rc = frame_next(r, &type, &p, &n)) == 1) {
				if (frames == 0) {
					assert_int_equal(type, FRAME_MSG);
					assert_int_equal(n, BIG);
					check_pattern(p, 3, n);
				} else {
					assert_int_equal(type, FRAME_COMMIT);
					assert_int_equal(n, 5);
					assert_memory_equal(p, "after", 5);
				}
				frames++;
			}
			assert_int_equal(rc, 0);
		}
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		if (fl == 1 && frames == 2)
			break;
	}
	frame_writer_free(&w);
	close(sv[0]);
	close(sv[1]);

	/* frame_write from a child, the whole 20 MB blocking. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid_t pid = spawn_writer(sv[0], 2, BIG);
	close(sv[0]);
	frames = 0;
	while ((rc = frame_reader_fill(r, sv[1])) == 1) {
		while ((rc = frame_next(r, &type, &p, &n)) == 1) {
			assert_int_equal(type, FRAME_MSG);
			assert_int_equal(n, BIG);
			check_pattern(p, frames, n);
			frames++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(frames, 2);
	wait_ok(pid);
	close(sv[1]);
	free(payload);
	frame_reader_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wire_format),
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_several_in_one_feed),
		cmocka_unit_test(test_type_byte_is_unsigned),
		cmocka_unit_test(test_empty_payload),
		cmocka_unit_test(test_zero_length_is_garbage),
		cmocka_unit_test(test_over_max),
		cmocka_unit_test(test_huge_lengths),
		cmocka_unit_test(test_garbage_bytes),
		cmocka_unit_test(test_fill_socketpair),
		cmocka_unit_test(test_writer_buffer_full),
		cmocka_unit_test(test_writer_peer_gone),
		cmocka_unit_test(test_writer_too_long),
		cmocka_unit_test(test_frame_write_blocking),
		cmocka_unit_test(test_large_payload_feed),
		cmocka_unit_test(test_large_payload_socket),
		cmocka_unit_test(test_fresh_reader),
	};

	/* SIGPIPE stays fatal: test_writer_peer_gone checks that the frame
	 * code never raises it (MSG_NOSIGNAL), as the core must not die of a
	 * child that went away. */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
