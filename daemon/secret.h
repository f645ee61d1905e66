/* secret — claim tokens, recovery codes, password policy (over libsodium).
 *
 * Claim tokens: 18 bytes (144 bits) from randombytes_buf(), written as 24
 * characters of URL-safe base64 without padding (they go into claim_url).
 * Only their BLAKE2b-256 hash (hex) is stored; a token is looked up by the
 * hash of what the person presents.
 *
 * Recovery codes: 10 characters of Crockford base32 (50 bits, uniform:
 * randombytes_uniform(32) per character), shown as two groups of five,
 * "7K3M9-QXD2P". 50 bits is below NIST SP 800-63B-4's 64 bits for saved
 * recovery codes; what closes the gap is that the code is stored only as
 * an argon2id hash (salted and slow: an offline guess costs a full
 * crypto_pwhash) and that online guesses are throttled (recovery_attempts
 * wrong codes per rolling hour lock recovery). Input is case-insensitive,
 * spaces and dashes are ignored, and Crockford's look-alikes map: I and L
 * read as 1, O as 0. U is not in the alphabet.
 *
 * Nothing here logs. Buffers that held a secret are wiped by the caller
 * with secret_wipe() once done. */
#ifndef SMSGW_SECRET_H
#define SMSGW_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_TOKEN_BYTES 18
#define SECRET_TOKEN_LEN 24              /* base64url characters */
#define SECRET_TOKEN_MAX (SECRET_TOKEN_LEN + 1)
#define SECRET_HASH_HEX 65               /* BLAKE2b-256 in hex + NUL */
#define SECRET_CODE_LEN 10               /* canonical code, no dash */
#define SECRET_CODE_MAX 12               /* "XXXXX-XXXXX" + NUL */
#define SECRET_PASSWORD_MIN 8            /* characters (code points) */
#define SECRET_PASSWORD_MAX 256

/* Initializes libsodium (idempotent, thread-safe). Returns 0 or -EIO. */
int secret_init(void);

/* A fresh claim token and the hash to store. Returns 0 or -EIO. */
int secret_token_new(char token[SECRET_TOKEN_MAX],
		     char hash_hex[SECRET_HASH_HEX]);

/* The hash of a presented token. Returns 0, or -EINVAL when `token` is not
 * 24 URL-safe base64 characters (it cannot be one we issued). */
int secret_token_hash(const char *token, char hash_hex[SECRET_HASH_HEX]);

/* Constant-time equality of two NUL-terminated strings of the same length
 * (hashes); false when the lengths differ. */
bool secret_equal(const char *a, const char *b);

/* A fresh recovery code in canonical form (10 characters, no dash). */
int secret_code_new(char code[SECRET_CODE_LEN + 1]);

/* "7K3M9QXD2P" -> "7K3M9-QXD2P". */
void secret_code_display(const char *code, char out[SECRET_CODE_MAX]);

/* What a person typed -> canonical form. Returns 0 or -EINVAL (wrong
 * length or a character outside the alphabet). */
int secret_code_normalize(const char *in, char out[SECRET_CODE_LEN + 1]);

/* Password policy: 8..256 characters of valid UTF-8, not the account's
 * phone number in any usual spelling (E.164, digits, 00-prefixed, national
 * part, national part with a trunk 0), not one of the commonest passwords
 * (case-insensitive). `e164` may be NULL. Returns 0 or -EINVAL with *why a
 * static reason suitable for the `weak_password` message. */
int secret_password_check(const char *password, const char *e164,
			  const char **why);

/* Overwrites n bytes at p with zeros in a way the compiler keeps. */
void secret_wipe(void *p, size_t n);

#endif
