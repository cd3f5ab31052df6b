/* frame: length-prefixed frames over a socketpair. See frame.h. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536

struct frame_reader {
	char *buf;
	size_t start, len, cap;	/* unread bytes are buf[start..len) */
	size_t max_payload;
};

struct frame_reader *
frame_reader_new(size_t max_payload)
{
	struct frame_reader *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->max_payload = max_payload;
	return r;
}

void
frame_reader_free(struct frame_reader **rp)
{
	if (*rp == NULL)
		return;
	free((*rp)->buf);
	free(*rp);
	*rp = NULL;
}

/* Room for n more bytes after the unread ones. */
static int
reserve(struct frame_reader *r, size_t n)
{
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->cap - r->len >= n)
		return 0;
	size_t cap = r->cap ? r->cap : READ_CHUNK;
	while (cap - r->len < n)
		cap *= 2;
	char *b = realloc(r->buf, cap);
	if (b == NULL)
		return -1;
	r->buf = b;
	r->cap = cap;
	return 0;
}

int
frame_reader_feed(struct frame_reader *r, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (reserve(r, len) < 0)
		return -1;
	memcpy(r->buf + r->len, buf, len);
	r->len += len;
	return 0;
}

int
frame_reader_fill(struct frame_reader *r, int fd)
{
	ssize_t n;

	if (reserve(r, READ_CHUNK) < 0)
		return -1;
	do
		n = read(fd, r->buf + r->len, r->cap - r->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	r->len += (size_t)n;
	return 1;
}

int
frame_next(struct frame_reader *r, int *type_r, const char **payload_r,
    size_t *len_r)
{
	size_t have = r->len - r->start;

	if (have < 4)
		return 0;	/* also: no buffer yet */
	const unsigned char *p = (const unsigned char *)r->buf + r->start;
	uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	if (n == 0 || n - 1 > r->max_payload)
		return -1;
	if (have - 4 < n)
		return 0;
	*type_r = p[4];
	*payload_r = (const char *)p + FRAME_HEADER;
	*len_r = n - 1;
	r->start += 4 + (size_t)n;
	return 1;
}

static void
header(unsigned char *h, int type, size_t len)
{
	uint32_t n = (uint32_t)len + 1;

	h[0] = n >> 24;
	h[1] = n >> 16;
	h[2] = n >> 8;
	h[3] = n;
	h[4] = (unsigned char)type;
}

struct frame_writer {
	char *buf;
	size_t start, len, cap;
};

struct frame_writer *
frame_writer_new(void)
{
	return calloc(1, sizeof(struct frame_writer));
}

void
frame_writer_free(struct frame_writer **wp)
{
	if (*wp == NULL)
		return;
	free((*wp)->buf);
	free(*wp);
	*wp = NULL;
}

int
frame_writer_put(struct frame_writer *w, int type, const void *payload,
    size_t len)
{
	size_t need = FRAME_HEADER + len;

	if (len >= UINT32_MAX)
		return -1;
	if (w->start > 0) {
		memmove(w->buf, w->buf + w->start, w->len - w->start);
		w->len -= w->start;
		w->start = 0;
	}
	if (w->cap - w->len < need) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap - w->len < need)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (b == NULL)
			return -1;
		w->buf = b;
		w->cap = cap;
	}
	header((unsigned char *)w->buf + w->len, type, len);
	if (len > 0)
		memcpy(w->buf + w->len + FRAME_HEADER, payload, len);
	w->len += need;
	return 0;
}

size_t
frame_writer_pending(const struct frame_writer *w)
{
	return w->len - w->start;
}

int
frame_writer_flush(struct frame_writer *w, int fd)
{
	while (w->start < w->len) {
		ssize_t n = send(fd, w->buf + w->start, w->len - w->start,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -1;
		w->start += (size_t)n;
	}
	w->start = w->len = 0;
	return 1;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
frame_write(int fd, int type, const void *payload, size_t len)
{
	unsigned char h[FRAME_HEADER];

	if (len >= UINT32_MAX)
		return -1;
	header(h, type, len);
	if (write_all(fd, h, sizeof(h)) < 0)
		return -1;
	return len > 0 ? write_all(fd, payload, len) : 0;
}
