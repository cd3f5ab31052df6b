/* crypto: libcrypto wrappers. See crypto.h. */
#include "crypto.h"

#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
    size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int out_len = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out,
	    &out_len) == NULL || out_len != CRYPTO_SHA256_LEN)
		return -1;
	return 0;
}

int
crypto_sha256(const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int out_len = 0;

	if (EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL) != 1 ||
	    out_len != CRYPTO_SHA256_LEN)
		return -1;
	return 0;
}

int
crypto_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void
crypto_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int
crypto_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
crypto_signature_ok(const char *header, const char *secret, const void *body,
    size_t len)
{
	static const char prefix[] = "sha256=";
	unsigned char want[CRYPTO_SHA256_LEN], got[CRYPTO_SHA256_LEN];

	if (header == NULL || strncmp(header, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	header += sizeof(prefix) - 1;
	if (strlen(header) != 2 * CRYPTO_SHA256_LEN)
		return 0;
	for (int i = 0; i < CRYPTO_SHA256_LEN; i++) {
		int hi = crypto_hexval(header[2 * i]),
		    lo = crypto_hexval(header[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	if (crypto_hmac_sha256(secret, strlen(secret), body, len, want) < 0)
		return 0;
	return crypto_equal(want, got, CRYPTO_SHA256_LEN);
}

int
crypto_base64_decode(const char *in, char **out_r, size_t *len_r)
{
	size_t n = strlen(in);
	unsigned char *out;
	int len;

	*out_r = NULL;
	if (n == 0 || n % 4 != 0 || n > INT32_MAX / 4 * 3)
		return -1;
	if ((out = malloc(n / 4 * 3 + 1)) == NULL)
		return -1;
	len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0) {
		free(out);
		return -1;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	if (in[n - 1] == '=')
		len--;
	if (in[n - 2] == '=')
		len--;
	out[len] = '\0';
	*out_r = (char *)out;
	*len_r = (size_t)len;
	return 0;
}

char *
crypto_base64_encode(const void *in, size_t len)
{
	unsigned char *out;

	if (len > INT32_MAX / 4 * 3 || (out = malloc((len + 2) / 3 * 4 + 1))
	    == NULL)
		return NULL;
	EVP_EncodeBlock(out, in, (int)len);
	return (char *)out;
}

int
crypto_random(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

char *
crypto_secret_file(const char *path, const char **error_r)
{
	char buf[256], *out = NULL;
	unsigned char raw[32];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0) {
			*error_r = "is empty or unreadable";
			return NULL;
		}
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		if (buf[0] == '\0') {
			*error_r = "is empty";
			return NULL;
		}
		return strdup(buf);
	}
	if (errno != ENOENT) {
		*error_r = strerror(errno);
		return NULL;
	}
	if (files_mkdir_parent(path) < 0 || crypto_random(raw, sizeof(raw)) < 0) {
		*error_r = "cannot create";
		return NULL;
	}
	crypto_hex(raw, sizeof(raw), buf);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = strerror(errno);
		return NULL;
	}
	size_t len = strlen(buf);
	buf[len] = '\n';
	if (write(fd, buf, len + 1) != (ssize_t)len + 1 || fsync(fd) < 0) {
		*error_r = "cannot write";
		close(fd);
		unlink(path);
		return NULL;
	}
	close(fd);
	buf[len] = '\0';
	out = strdup(buf);
	return out;
}
