/*
 * fuzz_frame: the frame codec (channels/frame.h) fed arbitrary bytes, and
 * inbound_msg_unpack (channels/channel.h) on every FRAME_MSG payload: what
 * the core reads from a channel child it does not trust.
 *
 * Input: two flag bytes, then the stream.
 *   byte 0  the reader's max_payload: 0..255, or 1 MiB when it is 255;
 *   byte 1  the size of the pieces the stream is fed in, 1..256 (as
 *           short reads would cut it).
 * Two readers take the same stream, one in a single piece and one in
 * pieces; they must hand out the same frames, up to the same end (more
 * bytes needed, or garbage). Checked too, aborting when broken:
 *   - no frame is over max_payload;
 *   - an unpacked message packs again (inbound_msg_pack), the packed bytes
 *     unpack, and those pack to the very same bytes: what the core accepts
 *     is stable;
 *   - an unpacked message holds only valid UTF-8 text without NUL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "frame.h"

#define MAX_FRAMES	4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s)
{
	if (s != NULL && !utf8_valid(s, strlen(s))) {
		fprintf(stderr, "fuzz_frame: unpack let non-UTF-8 through\n");
		abort();
	}
}

static void
check_msg(const struct inbound_msg *m)
{
	const char *strs[] = { m->source, m->queue, m->dedupe_scope,
	    m->dedupe_key, m->from_scope, m->from_address, m->from_name,
	    m->from_email, m->subject, m->body, m->html_text, m->thread_key,
	    m->message_id, m->in_reply_to, m->severity, m->reply_url,
	    m->bounce_of };

	if (m->channel != CHANNEL_EMAIL && m->channel != CHANNEL_CHAT &&
	    m->channel != CHANNEL_WEBHOOK)
		abort();
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		check_str(strs[i]);
	for (size_t i = 0; i < m->n_references; i++)
		check_str(m->references[i]);
	for (size_t i = 0; i < m->n_recipients; i++)
		check_str(m->recipients[i]);
	for (size_t i = 0; i < m->n_cc; i++)
		check_str(m->cc[i]);
	for (size_t i = 0; i < m->n_attachments; i++) {
		check_str(m->attachments[i].name);
		check_str(m->attachments[i].type);
	}
}

static void
unpack(const char *payload, size_t len)
{
	struct inbound_msg *m, *back;
	char *p1 = NULL, *p2 = NULL;
	size_t l1, l2;
	const char *why = NULL;

	if ((m = inbound_msg_unpack(payload, len, &why)) == NULL) {
		if (why == NULL)
			abort();
		return;
	}
	if (why != NULL)
		abort();
	check_msg(m);
	if (inbound_msg_pack(m, &p1, &l1) < 0)
		abort();
	if ((back = inbound_msg_unpack(p1, l1, &why)) == NULL) {
		fprintf(stderr, "fuzz_frame: a packed message does not "
		    "unpack: %s\n", why);
		abort();
	}
	if (inbound_msg_pack(back, &p2, &l2) < 0)
		abort();
	if (l1 != l2 || memcmp(p1, p2, l1) != 0) {
		fprintf(stderr, "fuzz_frame: pack/unpack is not stable\n");
		abort();
	}
	inbound_msg_free(&back);
	inbound_msg_free(&m);
	free(p1);
	free(p2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_reader *whole, *pieces;
	size_t max, step, off = 0, n_frames = 0;
	int rc_whole, rc_pieces;

	if (size < 2)
		return 0;
	max = data[0] == 255 ? 1024 * 1024 : data[0];
	step = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	if ((whole = frame_reader_new(max)) == NULL ||
	    (pieces = frame_reader_new(max)) == NULL)
		abort();
	if (frame_reader_feed(whole, data, size) < 0)
		abort();

	/* Every frame of `whole`, matched by `pieces` fed as it needs. */
	for (;;) {
		int t1, t2;
		const char *p1, *p2;
		size_t l1, l2;

		rc_whole = frame_next(whole, &t1, &p1, &l1);
		while ((rc_pieces = frame_next(pieces, &t2, &p2, &l2)) == 0 &&
		    off < size) {
			size_t n = size - off < step ? size - off : step;
			if (frame_reader_feed(pieces, data + off, n) < 0)
				abort();
			off += n;
		}
		if (rc_whole != rc_pieces) {
			fprintf(stderr, "fuzz_frame: whole %d, in pieces %d\n",
			    rc_whole, rc_pieces);
			abort();
		}
		if (rc_whole != 1)
			break;
		if (t1 != t2 || l1 != l2 || memcmp(p1, p2, l1) != 0) {
			fprintf(stderr, "fuzz_frame: frame %zu differs\n",
			    n_frames);
			abort();
		}
		if (l1 > max)
			abort();
		if (t1 == FRAME_MSG)
			unpack(p1, l1);
		if (++n_frames > MAX_FRAMES)
			break;
	}
	frame_reader_free(&whole);
	frame_reader_free(&pieces);
	return 0;
}
