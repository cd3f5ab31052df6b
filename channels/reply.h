/*
 * reply: what an agent (or a customer) actually wrote in a reply mail.
 *
 * reply_strip drops the quoted part (the "On ... wrote:" line of Gmail,
 * Apple Mail, Thunderbird and mutt and what follows; Outlook's
 * "-----Original Message-----" or From:/Sent:/To: block; German, French,
 * Spanish and Dutch attributions; ">" lines) and the signature ("-- ",
 * "Sent from my iPhone" and their kin), and trims what is left.
 *
 * reply_parse then reads SPEC.md's agent commands: lines that start with
 * '#' at the top of the stripped text, before anything else. Commands in
 * the quoted part are gone with it, so they never act.
 *
 * Pure: no I/O; text in, text out (UTF-8, LF or CRLF line ends).
 */
#ifndef ESCALON_REPLY_H
#define ESCALON_REPLY_H

#include <stddef.h>

enum reply_verb {
	REPLY_NOTE, REPLY_RESOLVE, REPLY_PENDING, REPLY_ESCALATE,
	REPLY_SEVERITY, REPLY_ASSIGN, REPLY_ROOTCAUSE,
};

struct reply_command {
	enum reply_verb verb;
	char *arg;		/* the rest of the line, trimmed; "" if none */
};

struct parsed_reply {
	struct reply_command *commands;
	size_t n_commands;
	char *text;		/* after the commands: the message ("" if
				   none) */
	char *bad;		/* the first command line not understood, or
				   NULL: then nothing may act */
};

/* The reply without quote and signature (heap), or NULL if OOM. */
char *reply_strip(const char *body);

/* Strip, then read the commands. 0, or -1 when out of memory. */
int reply_parse(const char *body, struct parsed_reply *out);
void parsed_reply_release(struct parsed_reply *p);

/* "note", "resolve" ... as an agent writes it after '#'. */
const char *reply_verb_name(enum reply_verb v);

#endif
