/*
 * imap: the mailbox child (`escalon child mailbox NAME`), one process per
 * `mailbox` section, spawned and restarted by the core (gateway/child.h).
 *
 * It logs in, selects the folder, and syncs by UID from the checkpoint the
 * core hands it in FRAME_START. Mail is fetched in chunks (BODY.PEEK, so
 * nothing is marked read by fetching), normalised (mime.h) and sent as
 * FRAME_MSG frames; then FRAME_COMMIT carries the chunk's checkpoint
 * "UIDVALIDITY:UID". Only when the core answers FRAME_COMMITTED (the rows
 * and the checkpoint are in one transaction) does the child set \Seen
 * (cosmetic) and go on; FRAME_FAILED makes it fetch the chunk again after
 * a pause. A UIDVALIDITY change resyncs the whole folder: the core's
 * Message-ID dedupe keeps that from making a second ticket.
 *
 * Between syncs it waits in IDLE (re-issued every 25 minutes, before the
 * server's 30), or polls every poll_interval where the server lacks IDLE.
 * A lost server means a reconnect with backoff (1 s doubling to 60 s). Each
 * state change is logged and sent to the core as FRAME_STATUS.
 *
 * FRAME_START is JSON: {"name", "host", "port", "tls" ("none", "starttls",
 * "tls"), "tls_verify", "ca_file", "user", "password", "folder",
 * "address", "queue", "poll_interval" (s), "max_message_size",
 * "max_attachment_size", "checkpoint" ("V:U" or null)}.
 */
#ifndef ESCALON_IMAP_H
#define ESCALON_IMAP_H

/* Runs the child on fd until the core closes it; returns the exit code. */
int imap_child_main(int fd);

#endif
