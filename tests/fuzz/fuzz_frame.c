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
#include "fuzz_msg.h"

#define MAX_FRAMES	4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Unpack refuses with a reason, or gives a message that keeps channel.h's
 * promises (UTF-8 everywhere: unpack is where the core checks it). */
static void
unpack(const char *payload, size_t len)
{
	struct inbound_msg *m;
	const char *why = NULL;

	if ((m = inbound_msg_unpack(payload, len, &why)) == NULL) {
		if (why == NULL)
			abort();
		return;
	}
	if (why != NULL)
		abort();
	if (m->channel != CHANNEL_EMAIL && m->channel != CHANNEL_CHAT &&
	    m->channel != CHANNEL_WEBHOOK)
		abort();
	fuzz_msg_check("fuzz_frame", m);
	inbound_msg_free(&m);
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
