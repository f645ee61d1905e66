/* hasher — argon2id (crypto_pwhash_str) on worker threads, off the loop.
 *
 * A hash takes tens to hundreds of milliseconds and up to a GiB of memory
 * by design; on the event loop it would stall modem I/O and every client.
 * hasher_new() starts `threads` pthreads; hasher_hash() / hasher_verify()
 * queue a job and return at once; a worker runs it; the result comes back
 * to the loop through an ev_async and the job's callback runs ON THE LOOP
 * THREAD (never before the queueing call returned).
 *
 * Cost levels map to libsodium's OPSLIMIT/MEMLIMIT pairs:
 *   interactive  2 passes,  64 MiB
 *   moderate     3 passes, 256 MiB
 *   sensitive    4 passes,   1 GiB
 * Memory in use is at most threads x memlimit.
 *
 * Constant-time failure for unknown users: hasher_verify() with hash NULL
 * verifies against a dummy hash made once at start (on the pool, of a
 * random password, at the configured level), so "no such account" costs
 * exactly a real verify and always fails.
 *
 * Queue: at most queue_max jobs wait (running ones not counted); beyond
 * that hasher_hash/verify return -EAGAIN and the caller answers
 * `unavailable` ("busy, try again").
 *
 * Secrets: a job copies the secret and wipes the copy when the job ends;
 * nothing is logged. */
#ifndef SMSGW_HASHER_H
#define SMSGW_HASHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#define HASHER_STR_MAX 128 /* crypto_pwhash_STRBYTES */

enum hasher_level {
	HASHER_INTERACTIVE,
	HASHER_MODERATE,
	HASHER_SENSITIVE,
};

struct hasher;

/* Called on the loop thread when a hash job ends.
 * status: 0 with `hash` (NUL-terminated, borrowed for the call);
 * -ENOMEM (argon2 could not get its memory); -ECANCELED (hasher_free
 * dropped the job, hash NULL). */
typedef void hasher_hash_cb(int status, const char *hash, void *userdata);

/* Called on the loop thread when a verify job ends.
 * status: 0 match; -EACCES no match (always for the dummy); -ECANCELED. */
typedef void hasher_verify_cb(int status, void *userdata);

/* Starts the pool (threads 1..64) and queues the dummy hash. Returns NULL
 * with errno set (EINVAL, ENOMEM, EIO for libsodium, or pthread's). */
struct hasher *hasher_new(struct ev_loop *loop, unsigned threads,
			  enum hasher_level level, unsigned queue_max);

/* Cancels waiting jobs, waits for running ones, then calls every
 * outstanding callback with -ECANCELED (from inside this call, on the
 * caller's thread, which must be the loop's), joins the threads and frees.
 * NULL is fine. Must not be called from a hasher callback. */
void hasher_free(struct hasher *h);

/* Queues an argon2id hash of secret[0..len). Returns 0 (cb will be called
 * exactly once), -EAGAIN (queue full), -ENOMEM, or -ESHUTDOWN; on error cb
 * is never called and userdata stays the caller's. */
int hasher_hash(struct hasher *h, const char *secret, size_t len,
		hasher_hash_cb *cb, void *userdata);

/* Queues a verify of secret against `hash` (a crypto_pwhash_str string);
 * hash NULL means the dummy. Same returns as hasher_hash(). */
int hasher_verify(struct hasher *h, const char *hash, const char *secret,
		  size_t len, hasher_verify_cb *cb, void *userdata);

/* True when `hash` was made with other parameters than the current level
 * (crypto_pwhash_str_needs_rehash), so a login may upgrade it. */
bool hasher_needs_rehash(const struct hasher *h, const char *hash);

/* Jobs waiting (not running) and running now; for tests and status. */
unsigned hasher_queued(struct hasher *h);
unsigned hasher_running(struct hasher *h);

/* The level's libsodium limits (tests, benchmarks). */
void hasher_level_limits(enum hasher_level level, unsigned long long *ops,
			 size_t *mem);

#endif
