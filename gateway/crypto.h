/*
 * crypto: the few primitives escalon needs, over OpenSSL's libcrypto:
 * HMAC-SHA256 (webhook signatures, reply tokens), constant-time compare,
 * random secrets, SHA-256 (dedupe of mail without a Message-ID).
 */
#ifndef ESCALON_CRYPTO_H
#define ESCALON_CRYPTO_H

#include <stddef.h>

#define CRYPTO_SHA256_LEN 32

int crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
    size_t len, unsigned char out[CRYPTO_SHA256_LEN]);

int crypto_sha256(const void *data, size_t len,
    unsigned char out[CRYPTO_SHA256_LEN]);

/* 1 if equal; time depends only on the lengths. */
int crypto_equal(const void *a, const void *b, size_t len);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void crypto_hex(const unsigned char *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int crypto_hexval(char c);

/*
 * 1 if header (e.g. "sha256=3f1a...") is the hex HMAC-SHA256 of body under
 * secret; hex digits in either case. 0 otherwise, including when absent.
 */
int crypto_signature_ok(const char *header, const char *secret,
    const void *body, size_t len);

int crypto_random(void *buf, size_t n);

/* Base64 (RFC 4648) to bytes: *out_r heap (caller frees, NUL-ended),
 * *len_r its length. 0, or -1 when not base64. */
int crypto_base64_decode(const char *in, char **out_r, size_t *len_r);
/* Base64 of in[0..len), NUL-ended (heap), or NULL. */
char *crypto_base64_encode(const void *in, size_t len);

/*
 * Read the secret in path, or create it (32 random bytes as hex, mode 0600,
 * folder made if missing) when absent. Returns a heap string or NULL with
 * *error_r set (static text).
 */
char *crypto_secret_file(const char *path, const char **error_r);

#endif
