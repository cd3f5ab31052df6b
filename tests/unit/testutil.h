/*
 * testutil: helpers the unit tests share, so that each test does not carry
 * its own copy: temporary folders (made under $TMPDIR or /tmp, removed
 * with all they hold), the store fixture (a store in a temporary folder)
 * and a minimal webhook ticket to insert into it.
 *
 * Header-only: every test is a binary of its own, so the helpers are
 * static (inline, so that a test that uses only some of them builds
 * without unused-function warnings). No cmocka assertion here: callers
 * assert, or return -1 from their cmocka setup, as they see fit.
 */
#ifndef ESCALON_TESTUTIL_H
#define ESCALON_TESTUTIL_H

#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "ticket.h"

/* ---- files --------------------------------------------------------------- */

/* A whole file, with a NUL after its bytes, and its length in *len_r
 * (len_r may be NULL); NULL when it cannot be read. */
static inline char *
test_read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (len_r != NULL)
		*len_r = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			if (len_r != NULL)
				*len_r = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

/* The real-world mail corpus ($ESCALON_CORPUS, else ../shared/corpus/mail
 * from the repository root), or NULL when this checkout has none: tests
 * that read it then skip. */
static inline const char *
test_corpus_dir(void)
{
	const char *dir = getenv("ESCALON_CORPUS");
	struct stat st;

	if (dir == NULL || dir[0] == '\0')
		dir = "../shared/corpus/mail";
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir : NULL;
}

/* ---- temporary folders ------------------------------------------------- */

/* A new folder $TMPDIR/PREFIX-XXXXXX (/tmp when TMPDIR is unset or empty),
 * as a string the caller frees with tmpdir_free; NULL on failure. Each
 * test passes a PREFIX of its own, such as "escalon-test-store". */
static inline char *
tmpdir_new(const char *prefix)
{
	const char *base = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp", prefix);
	if (mkdtemp(tmpl) == NULL)
		return NULL;
	return strdup(tmpl);
}

static inline int
tmpdir_rm_entry(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes *DIRP and everything below it, frees it and sets it to NULL;
 * NULL is left alone. */
static inline void
tmpdir_free(char **dirp)
{
	if (*dirp == NULL)
		return;
	nftw(*dirp, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(*dirp);
	*dirp = NULL;
}

/* ---- the store fixture ------------------------------------------------- */

struct fx {
	char *dir;		/* a temporary folder */
	char path[PATH_MAX];	/* DIR/escalon.db */
	struct store *st;	/* open on PATH, or NULL */
	int64_t id;		/* a ticket the test's setup made, or 0 */
};

/* cmocka setup: *STATE is a new struct fx on a fresh folder named after
 * PREFIX, no store open yet. 0, or -1. */
static inline int
fx_setup_dir(void **state, const char *prefix)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->dir = tmpdir_new(prefix)) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/escalon.db", f->dir);
	*state = f;
	return 0;
}

/* cmocka setup: fx_setup_dir, and a new store open on f->path. 0, or -1
 * with store_open's error on stderr. */
static inline int
fx_setup_store(void **state, const char *prefix)
{
	struct fx *f;
	char *err = NULL;

	if (fx_setup_dir(state, prefix) < 0)
		return -1;
	f = *state;
	if ((f->st = store_open(f->path, 0, &err)) == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

/* cmocka teardown of either setup: closes the store, removes the folder. */
static inline int
fx_teardown(void **state)
{
	struct fx *f = *state;

	store_close(&f->st);
	tmpdir_free(&f->dir);
	free(f);
	return 0;
}

/* A new webhook ticket of customer (webhook:shop, ADDRESS): queue general,
 * team tier1, SLA standard, ladder default, level 1, created and updated
 * at NOW. The caller sets customer_id, and changes what it needs. */
static inline struct ticket
fx_ticket(const char *address, const char *subject, int64_t now)
{
	struct ticket t = {
		.state = TICKET_NEW,
		.severity = "normal",
		.queue = "general",
		.team = "tier1",
		.sla = "standard",
		.ladder = "default",
		.level = 1,
		.channel = "webhook",
		.source = "webhook:shop",
		.customer_scope = "webhook:shop",
		.customer_address = (char *)address,
		.subject = (char *)subject,
		.created_at = now,
		.updated_at = now,
	};

	return t;
}

#endif
