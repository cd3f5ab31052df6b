/*
 * fuzz_reply: reply_strip and reply_parse (channels/reply.h) on arbitrary
 * text, as a customer's or an agent's reply mail body.
 *
 * The input is taken as a C string (a NUL in it ends the body, as it would
 * for the callers). Checked, aborting when broken:
 *   - both succeed (out of memory is the only failure they have);
 *   - the stripped text is never longer than the body (it only drops
 *     lines and trims them);
 *   - every command has a verb reply_verb_name knows and an argument,
 *     text is never NULL;
 *   - a body that is valid UTF-8 gives valid UTF-8 everywhere: stripping
 *     and trimming cut at line and blank boundaries, never inside a
 *     character.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_utf8(int want, const char *s, const char *what)
{
	if (want && s != NULL && !utf8_valid(s, strlen(s))) {
		fprintf(stderr, "fuzz_reply: %s is not UTF-8: \"%s\"\n", what,
		    s);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parsed_reply pr;
	char *body, *stripped;
	size_t len;
	int utf8;

	if ((body = malloc(size + 1)) == NULL)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
	len = strlen(body);
	utf8 = utf8_valid(body, len);

	if ((stripped = reply_strip(body)) == NULL)
		abort();
	if (strlen(stripped) > len) {
		fprintf(stderr, "fuzz_reply: stripping made the text longer "
		    "(%zu > %zu)\n", strlen(stripped), len);
		abort();
	}
	check_utf8(utf8, stripped, "the stripped text");
	free(stripped);

	if (reply_parse(body, &pr) != 0)
		abort();
	if (pr.text == NULL || (pr.n_commands > 0 && pr.commands == NULL))
		abort();
	for (size_t i = 0; i < pr.n_commands; i++) {
		if (reply_verb_name(pr.commands[i].verb) == NULL ||
		    pr.commands[i].arg == NULL)
			abort();
		check_utf8(utf8, pr.commands[i].arg, "a command argument");
	}
	check_utf8(utf8, pr.text, "the text");
	check_utf8(utf8, pr.bad, "the bad command line");
	parsed_reply_release(&pr);
	free(body);
	return 0;
}
