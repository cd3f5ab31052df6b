/*
 * test_crypto: HMAC-SHA256 against RFC 4231, constant-time compare, hex,
 * webhook signature headers and the secret file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"

#include "testutil.h"

/* ---- temp dirs --------------------------------------------------------- */

static int
setup_dir(void **state)
{
	*state = tmpdir_new("escalon-test-crypto");
	assert_non_null(*state);
	return 0;
}

static int
teardown_dir(void **state)
{
	char *dir = *state;

	tmpdir_free(&dir);
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static size_t
unhex(const char *hex, unsigned char *out, size_t max)
{
	size_t n = strlen(hex) / 2;

	assert_true(n <= max);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
	return n;
}

static void
fill(unsigned char *buf, unsigned char byte, size_t n)
{
	memset(buf, byte, n);
}

/* ---- HMAC-SHA256: RFC 4231 section 4 ----------------------------------- */

struct hmac_case {
	const char *name;
	unsigned char key_byte;	/* key is key_len times this byte ... */
	size_t key_len;
	const char *key_hex;	/* ... unless this is set */
	const char *data;	/* data as text ... */
	unsigned char data_byte;	/* ... or data_len times this byte */
	size_t data_len;
	const char *mac_hex;	/* expected, possibly truncated (case 5) */
};

static const struct hmac_case hmac_cases[] = {
	{ "4.2 test case 1", 0x0b, 20, NULL, "Hi There", 0, 0,
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	{ "4.3 test case 2", 0, 0, "4a656665" /* "Jefe" */,
	  "what do ya want for nothing?", 0, 0,
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
	{ "4.4 test case 3", 0xaa, 20, NULL, NULL, 0xdd, 50,
	  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
	{ "4.5 test case 4", 0, 0,
	  "0102030405060708090a0b0c0d0e0f10111213141516171819", NULL, 0xcd,
	  50,
	  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
	{ "4.6 test case 5 (truncated to 128 bits)", 0x0c, 20, NULL,
	  "Test With Truncation", 0, 0, "a3b6167473100ee06e0c796c2955552b" },
	{ "4.7 test case 6", 0xaa, 131, NULL,
	  "Test Using Larger Than Block-Size Key - Hash Key First", 0, 0,
	  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
	{ "4.8 test case 7", 0xaa, 131, NULL,
	  "This is a test using a larger than block-size key and a larger "
	  "than block-size data. The key needs to be hashed before being "
	  "used by the HMAC algorithm.", 0, 0,
	  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
};

static void
test_hmac_rfc4231(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hmac_cases) / sizeof(hmac_cases[0]);
	    i++) {
		const struct hmac_case *tc = &hmac_cases[i];
		unsigned char key[200], data[200], mac[CRYPTO_SHA256_LEN];
		char hex[2 * CRYPTO_SHA256_LEN + 1];
		size_t key_len, data_len;

		if (tc->key_hex != NULL) {
			key_len = unhex(tc->key_hex, key, sizeof(key));
		} else {
			fill(key, tc->key_byte, tc->key_len);
			key_len = tc->key_len;
		}
		if (tc->data != NULL) {
			data_len = strlen(tc->data);
			memcpy(data, tc->data, data_len);
		} else {
			fill(data, tc->data_byte, tc->data_len);
			data_len = tc->data_len;
		}
		memset(mac, 0, sizeof(mac));
		assert_int_equal(crypto_hmac_sha256(key, key_len, data,
		    data_len, mac), 0);
		crypto_hex(mac, sizeof(mac), hex);
		if (strncmp(hex, tc->mac_hex, strlen(tc->mac_hex)) != 0)
			fail_msg("%s: got %s, want %s", tc->name, hex,
			    tc->mac_hex);
	}
}

/* An empty key and empty data are legal HMAC input (a webhook secret ""). */
static void
test_hmac_empty(void **state)
{
	unsigned char mac[CRYPTO_SHA256_LEN];
	char hex[2 * CRYPTO_SHA256_LEN + 1];

	(void)state;
	assert_int_equal(crypto_hmac_sha256("", 0, "", 0, mac), 0);
	crypto_hex(mac, sizeof(mac), hex);
	/* HMAC-SHA256("", ""), a widely published value. */
	assert_string_equal(hex,
	    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* ---- crypto_hex, crypto_equal ------------------------------------------ */

static void
test_hex(void **state)
{
	const unsigned char in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[2 * sizeof(in) + 1];
	char guard[4] = "xyz";

	(void)state;
	crypto_hex(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");
	crypto_hex(in, 0, guard);
	assert_string_equal(guard, "");
}

static void
test_equal(void **state)
{
	static const struct {
		const char *a, *b;
		size_t len;
		int want;
	} cases[] = {
		{ "abcdef", "abcdef", 6, 1 },
		{ "abcdef", "xbcdef", 6, 0 },	/* first byte */
		{ "abcdef", "abcdex", 6, 0 },	/* last byte */
		{ "abcdef", "abcdex", 5, 1 },	/* only len bytes count */
		{ "a", "b", 0, 1 },		/* nothing to compare */
		{ "\x00\x01", "\x00\x02", 2, 0 },	/* binary */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (crypto_equal(cases[i].a, cases[i].b, cases[i].len) !=
		    cases[i].want)
			fail_msg("case %zu: crypto_equal(%s, %s, %zu) != %d",
			    i, cases[i].a, cases[i].b, cases[i].len,
			    cases[i].want);
}

/* ---- crypto_signature_ok ----------------------------------------------- */

static void
signature(const char *secret, const void *body, size_t len, char *out)
{
	unsigned char mac[CRYPTO_SHA256_LEN];

	assert_int_equal(crypto_hmac_sha256(secret, strlen(secret), body, len,
	    mac), 0);
	strcpy(out, "sha256=");
	crypto_hex(mac, sizeof(mac), out + 7);
}

static void
upper(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

static void
test_signature_ok(void **state)
{
	const char *secret = "s3cret", *body = "{\"id\":\"1\"}";
	size_t len = strlen(body);
	char good[8 + 2 * CRYPTO_SHA256_LEN], hdr[200];

	(void)state;
	signature(secret, body, len, good);

	assert_int_equal(crypto_signature_ok(good, secret, body, len), 1);

	/* Hex digits in either case. */
	snprintf(hdr, sizeof(hdr), "sha256=%s", good + 7);
	upper(hdr + 7);
	assert_int_equal(crypto_signature_ok(hdr, secret, body, len), 1);
	/* Mixed case too. */
	snprintf(hdr, sizeof(hdr), "%s", good);
	for (size_t i = 7; hdr[i] != '\0'; i += 2)
		if (hdr[i] >= 'a' && hdr[i] <= 'f')
			hdr[i] = (char)(hdr[i] - 'a' + 'A');
	assert_int_equal(crypto_signature_ok(hdr, secret, body, len), 1);
}

static void
test_signature_refused(void **state)
{
	const char *secret = "s3cret", *body = "{\"id\":\"1\"}";
	size_t len = strlen(body);
	char good[8 + 2 * CRYPTO_SHA256_LEN], other[8 + 2 * CRYPTO_SHA256_LEN];
	char cases[12][200];
	size_t n = 0;

	(void)state;
	signature(secret, body, len, good);
	signature("wrong", body, len, other);

	snprintf(cases[n++], 200, "%s", "");
	snprintf(cases[n++], 200, "%s", "sha256=");
	snprintf(cases[n++], 200, "%s", good + 7);		/* no prefix */
	snprintf(cases[n++], 200, "sha1=%s", good + 7);		/* other algo */
	snprintf(cases[n++], 200, "%.*s", (int)strlen(good) - 1, good);
	snprintf(cases[n++], 200, "%s0", good);			/* too long */
	snprintf(cases[n++], 200, "%s ", good);			/* trailing */
	snprintf(cases[n++], 200, " %s", good);			/* leading */
	snprintf(cases[n++], 200, "%s", other);			/* wrong key */
	snprintf(cases[n++], 200, "%s", good);
	cases[n - 1][7] = 'g';				/* not hex */
	snprintf(cases[n++], 200, "%s", good);
	cases[n - 1][7 + 63] = cases[n - 1][7 + 63] == '0' ? '1' : '0';
	snprintf(cases[n++], 200, "sha256:%s", good + 7);

	assert_int_equal(crypto_signature_ok(NULL, secret, body, len), 0);
	for (size_t i = 0; i < n; i++)
		if (crypto_signature_ok(cases[i], secret, body, len) != 0)
			fail_msg("accepted bad header %zu: \"%s\"", i,
			    cases[i]);

	/* The right header over a changed body, or a body cut short. */
	assert_int_equal(crypto_signature_ok(good, secret, "{\"id\":\"2\"}",
	    len), 0);
	assert_int_equal(crypto_signature_ok(good, secret, body, len - 1), 0);
}

/* The length, not a NUL, ends the body; an empty body can be signed. */
static void
test_signature_binary_and_empty(void **state)
{
	const char body[] = { 'a', '\0', 'b' };
	char hdr[8 + 2 * CRYPTO_SHA256_LEN];

	(void)state;
	signature("k", body, sizeof(body), hdr);
	assert_int_equal(crypto_signature_ok(hdr, "k", body, sizeof(body)), 1);
	assert_int_equal(crypto_signature_ok(hdr, "k", body, 1), 0);

	signature("k", "", 0, hdr);
	assert_int_equal(crypto_signature_ok(hdr, "k", "", 0), 1);
}

/* ---- crypto_random ----------------------------------------------------- */

static void
test_random(void **state)
{
	unsigned char a[32], b[32], zero[32] = { 0 };

	(void)state;
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
}

/* ---- crypto_secret_file ------------------------------------------------ */

static int
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void
test_secret_file_created(void **state)
{
	const char *dir = *state, *err = NULL;
	char path[PATH_MAX], content[200];
	char *first, *second, *other;
	struct stat sb;
	ssize_t n;
	int fd;

	/* The folder is made when missing (var/secret in a fresh tree). */
	snprintf(path, sizeof(path), "%s/var/secret", dir);
	first = crypto_secret_file(path, &err);
	assert_non_null(first);
	assert_null(err);
	assert_int_equal(strlen(first), 64);
	assert_true(is_lower_hex(first, 64));

	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);

	/* The file holds exactly that value (and a newline). */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, content, sizeof(content) - 1);
	close(fd);
	assert_true(n >= 64);
	content[n] = '\0';
	content[strcspn(content, "\n")] = '\0';
	assert_string_equal(content, first);

	/* Read again: the same value, the file untouched. */
	second = crypto_secret_file(path, &err);
	assert_non_null(second);
	assert_string_equal(second, first);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);

	/* Another file gets another secret. */
	snprintf(path, sizeof(path), "%s/var/api-token", dir);
	other = crypto_secret_file(path, &err);
	assert_non_null(other);
	assert_string_not_equal(other, first);

	free(first);
	free(second);
	free(other);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void
test_secret_file_existing(void **state)
{
	static const struct {
		const char *content;
		const char *want;	/* NULL: refused */
	} cases[] = {
		{ "hand-made secret\n", "hand-made secret" },
		{ "crlf\r\n", "crlf" },
		{ "no newline", "no newline" },
		{ "first\nsecond\n", "first" },
		{ "", NULL },
		{ "\n", NULL },
	};
	const char *dir = *state;
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = NULL;
		char *got;

		snprintf(path, sizeof(path), "%s/secret-%zu", dir, i);
		write_file(path, cases[i].content);
		got = crypto_secret_file(path, &err);
		if (cases[i].want == NULL) {
			if (got != NULL)
				fail_msg("case %zu: accepted \"%s\"", i, got);
			assert_non_null(err);
		} else {
			if (got == NULL)
				fail_msg("case %zu: refused: %s", i, err);
			assert_string_equal(got, cases[i].want);
		}
		free(got);
	}
}

static void
test_secret_file_unreadable_path(void **state)
{
	const char *dir = *state, *err = NULL;
	char path[PATH_MAX];
	char *got;

	/* A path through a regular file can be neither read nor made. */
	snprintf(path, sizeof(path), "%s/plain", dir);
	write_file(path, "x\n");
	snprintf(path, sizeof(path), "%s/plain/secret", dir);
	got = crypto_secret_file(path, &err);
	assert_null(got);
	assert_non_null(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hmac_empty),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_signature_ok),
		cmocka_unit_test(test_signature_refused),
		cmocka_unit_test(test_signature_binary_and_empty),
		cmocka_unit_test(test_random),
		cmocka_unit_test_setup_teardown(test_secret_file_created,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_secret_file_existing,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(
		    test_secret_file_unreadable_path, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
