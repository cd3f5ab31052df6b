/*
 * LD_PRELOAD shim for the poison-mail test: libetpan's MIME parser crashes
 * (abort) on any mail that carries CRASH_MARK, as a parser bug would. The
 * gateway itself is the real, unchanged binary.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define CRASH_MARK "X-Escalon-Test-Crash: yes"

struct mailmime;

int
mailmime_parse(const char *message, size_t length, size_t *indx,
    struct mailmime **result)
{
	static int (*real)(const char *, size_t, size_t *, struct mailmime **);

	if (memmem(message, length, CRASH_MARK, strlen(CRASH_MARK)) != NULL) {
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none);	/* no core file in the test */
		abort();
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "mailmime_parse");
	return real(message, length, indx, result);
}
