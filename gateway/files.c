/* files: see files.h. */
#include "files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int
files_mkdir_parent(const char *path)
{
	char *dir = strdup(path), *slash;
	int rc = 0;

	if (dir == NULL)
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		goto out;
	*slash = '\0';
	/* Create each missing level from the top down. */
	for (char *p = dir + 1; rc == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*p = c;
		if (c == '\0')
			break;
	}
out:
	free(dir);
	return rc;
}
