/* hasher — see hasher.h.
 *
 * Threads and ownership: the queue, the done list, the dummy hash and the
 * counters under `mu` are shared with the workers; everything else
 * (outstanding, the async watcher, callbacks) belongs to the loop thread.
 * A job is owned by the queue, then by the worker that popped it, then by
 * the done list, then by the loop callback that frees it. */
#include "daemon/hasher.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define HASHER_NICE 10 /* workers' nice value (the loop stays at 0) */

enum job_kind { JOB_HASH, JOB_VERIFY, JOB_DUMMY };

struct job {
	struct job *next;
	enum job_kind kind;
	char *secret;          /* a copy, wiped before free */
	size_t len;
	char *hash_in;         /* verify: stored hash; NULL: the dummy */
	char out[HASHER_STR_MAX]; /* hash: the result */
	int status;
	hasher_hash_cb *hash_cb;
	hasher_verify_cb *verify_cb;
	void *userdata;
};

struct hasher {
	struct ev_loop *loop;
	ev_async async;           /* workers -> loop: "done list not empty" */
	unsigned outstanding;     /* loop thread: jobs not yet called back */
	unsigned long long ops;
	size_t mem;
	unsigned queue_max;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;   /* queue not empty, or stopping */
	pthread_cond_t dummy_cv;  /* dummy_done became true */
	struct job *q_head, *q_tail;
	struct job *done_head, *done_tail;
	unsigned queued, running;
	bool stopping;
	bool dummy_queued;        /* the dummy job was queued (or failed to) */
	bool dummy_done;          /* the dummy job ended (maybe failed) */
	bool dummy_ok;
	char dummy[HASHER_STR_MAX];

	pthread_t *threads;
	unsigned nthreads;        /* started successfully */
	bool sync_ok;             /* mu and the conds were initialised */
};

static const struct {
	unsigned long long ops;
	size_t mem;
} levels[] = {
	[HASHER_INTERACTIVE] = { crypto_pwhash_OPSLIMIT_INTERACTIVE,
				 crypto_pwhash_MEMLIMIT_INTERACTIVE },
	[HASHER_MODERATE] = { crypto_pwhash_OPSLIMIT_MODERATE,
			      crypto_pwhash_MEMLIMIT_MODERATE },
	[HASHER_SENSITIVE] = { crypto_pwhash_OPSLIMIT_SENSITIVE,
			       crypto_pwhash_MEMLIMIT_SENSITIVE },
};

void hasher_level_limits(enum hasher_level level, unsigned long long *ops,
			 size_t *mem)
{
	if ((unsigned)level > HASHER_SENSITIVE)
		level = HASHER_INTERACTIVE;
	*ops = levels[level].ops;
	*mem = levels[level].mem;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->secret) {
		sodium_memzero(j->secret, j->len + 1);
		free(j->secret);
	}
	free(j->hash_in);
	sodium_memzero(j->out, sizeof(j->out));
	free(j);
}

static void list_push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

/* --- worker side ---------------------------------------------------------- */

/* Makes the dummy hash of a random password, which nobody knows. */
static void run_dummy(struct hasher *h)
{
	unsigned char pw[32];
	char out[HASHER_STR_MAX];
	bool ok;

	randombytes_buf(pw, sizeof(pw));
	ok = crypto_pwhash_str(out, (const char *)pw, sizeof(pw), h->ops,
			       h->mem) == 0;
	sodium_memzero(pw, sizeof(pw));
	pthread_mutex_lock(&h->mu);
	if (ok)
		memcpy(h->dummy, out, sizeof(out));
	h->dummy_ok = ok;
	h->dummy_done = true;
	pthread_cond_broadcast(&h->dummy_cv);
	pthread_mutex_unlock(&h->mu);
}

/* A verify against the dummy: the same work as a real verify, and a
 * failure whatever the secret. */
static int run_dummy_verify(struct hasher *h, struct job *j)
{
	char dummy[HASHER_STR_MAX];
	bool ok;
	int rc;

	pthread_mutex_lock(&h->mu);
	while (!h->dummy_done)
		pthread_cond_wait(&h->dummy_cv, &h->mu);
	ok = h->dummy_ok;
	memcpy(dummy, h->dummy, sizeof(dummy));
	pthread_mutex_unlock(&h->mu);
	/* the outcome is ignored: an unknown user never gets in */
	if (ok)
		rc = crypto_pwhash_str_verify(dummy, j->secret, j->len);
	else   /* no dummy (no memory at start): same cost, a fresh hash */
		rc = crypto_pwhash_str(j->out, j->secret, j->len, h->ops,
				       h->mem);
	(void)rc;
	return -EACCES;
}

static void run_job(struct hasher *h, struct job *j)
{
	int rc;

	switch (j->kind) {
	case JOB_HASH:
		rc = crypto_pwhash_str(j->out, j->secret, j->len, h->ops,
				       h->mem);
		j->status = rc == 0 ? 0 : -ENOMEM;
		break;
	case JOB_VERIFY:
		if (!j->hash_in) {
			j->status = run_dummy_verify(h, j);
			break;
		}
		rc = crypto_pwhash_str_verify(j->hash_in, j->secret, j->len);
		j->status = rc == 0 ? 0 : -EACCES;
		break;
	case JOB_DUMMY:
		run_dummy(h);
		break;
	}
}

/* Hashing yields to the event loop: on a small box the workers would
 * otherwise compete with the modem I/O for the same cores. Linux applies a
 * nice value to one thread (tid); failure (a seccomp filter) only costs
 * that preference. */
static void worker_lower_priority(void)
{
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), HASHER_NICE);
}

static void *worker_main(void *arg)
{
	struct hasher *h = arg;

	worker_lower_priority();
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&h->mu);
		while (!h->q_head && !h->stopping)
			pthread_cond_wait(&h->work_cv, &h->mu);
		if (!h->q_head) {
			pthread_mutex_unlock(&h->mu);
			return NULL;
		}
		j = h->q_head;
		h->q_head = j->next;
		if (!h->q_head)
			h->q_tail = NULL;
		if (j->kind != JOB_DUMMY)
			h->queued--;
		h->running++;
		pthread_mutex_unlock(&h->mu);

		run_job(h, j);

		/* once on the done list, j is the loop's: read nothing after */
		bool internal = j->kind == JOB_DUMMY;
		pthread_mutex_lock(&h->mu);
		h->running--;
		if (internal)
			free(j);
		else
			list_push(&h->done_head, &h->done_tail, j);
		pthread_mutex_unlock(&h->mu);
		if (!internal)
			ev_async_send(h->loop, &h->async);
	}
}

/* --- loop side ------------------------------------------------------------- */

static void job_callback(struct job *j, int override)
{
	int status = override ? override : j->status;

	if (j->kind == JOB_HASH)
		j->hash_cb(status, status == 0 ? j->out : NULL, j->userdata);
	else
		j->verify_cb(status, j->userdata);
}

/* The loop holds a reference only while results are outstanding, so an
 * idle hasher never keeps ev_run() from returning. */
static void outstanding_add(struct hasher *h, int delta)
{
	if (delta > 0 && h->outstanding++ == 0)
		ev_ref(h->loop);
	else if (delta < 0 && --h->outstanding == 0)
		ev_unref(h->loop);
}

/* Calls back every finished job; override != 0 replaces their status. */
static void drain_done(struct hasher *h, int override)
{
	struct job *list;

	pthread_mutex_lock(&h->mu);
	list = h->done_head;
	h->done_head = h->done_tail = NULL;
	pthread_mutex_unlock(&h->mu);
	while (list) {
		struct job *j = list;

		list = j->next;
		outstanding_add(h, -1);
		job_callback(j, override);
		job_free(j);
	}
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	drain_done(w->data, 0);
}

/* --- lifecycle ------------------------------------------------------------- */

static int start_threads(struct hasher *h, unsigned threads)
{
	sigset_t all, old;
	int rc = 0;

	h->threads = calloc(threads, sizeof(*h->threads));
	if (!h->threads)
		return ENOMEM;
	/* workers inherit a full mask: signals go to the loop thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < threads && rc == 0; i++) {
		rc = pthread_create(&h->threads[i], NULL, worker_main, h);
		if (rc == 0)
			h->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* The dummy hash is made before the first job, not at start: argon2id's
 * memory (64 MiB and up) is then only ever touched by a daemon that serves
 * accounts, and an idle gateway keeps its small footprint. Called with
 * h->mu held. Without memory for it, dummy verifies hash afresh (same
 * cost) instead of waiting for it. */
static void queue_dummy(struct hasher *h)
{
	struct job *d;

	if (h->dummy_queued)
		return;
	h->dummy_queued = true;
	d = calloc(1, sizeof(*d));
	if (!d) {
		h->dummy_done = true;
		h->dummy_ok = false;
		return;
	}
	d->kind = JOB_DUMMY;
	list_push(&h->q_head, &h->q_tail, d);
}

struct hasher *hasher_new(struct ev_loop *loop, unsigned threads,
			  enum hasher_level level, unsigned queue_max)
{
	struct hasher *h;
	int rc;

	if (!loop || threads < 1 || threads > 64 || queue_max < 1 ||
	    (unsigned)level > HASHER_SENSITIVE) {
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	h->loop = loop;
	h->queue_max = queue_max;
	hasher_level_limits(level, &h->ops, &h->mem);
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->work_cv, NULL);
	pthread_cond_init(&h->dummy_cv, NULL);
	h->sync_ok = true;
	ev_async_init(&h->async, async_cb);
	h->async.data = h;
	ev_async_start(loop, &h->async);
	ev_unref(loop);
	rc = start_threads(h, threads);
	if (rc != 0) {
		hasher_free(h);
		errno = rc;
		return NULL;
	}
	return h;
}

void hasher_free(struct hasher *h)
{
	struct job *cancelled;

	if (!h)
		return;
	if (h->sync_ok) {
		pthread_mutex_lock(&h->mu);
		h->stopping = true;
		cancelled = h->q_head;
		h->q_head = h->q_tail = NULL;
		h->queued = 0;
		pthread_cond_broadcast(&h->work_cv);
		pthread_mutex_unlock(&h->mu);
		for (unsigned i = 0; i < h->nthreads; i++)
			pthread_join(h->threads[i], NULL);
		/* after the join nobody else touches the lists */
		while (cancelled) {
			struct job *j = cancelled;

			cancelled = j->next;
			if (j->kind != JOB_DUMMY) {
				outstanding_add(h, -1);
				job_callback(j, -ECANCELED);
			}
			job_free(j);
		}
		drain_done(h, -ECANCELED);
		ev_ref(h->loop);
		ev_async_stop(h->loop, &h->async);
		pthread_cond_destroy(&h->dummy_cv);
		pthread_cond_destroy(&h->work_cv);
		pthread_mutex_destroy(&h->mu);
	}
	free(h->threads);
	sodium_memzero(h->dummy, sizeof(h->dummy));
	free(h);
}

/* Builds a job with a copy of the secret. NULL on no memory.
 *
 * Plain malloc, not sodium_malloc: sodium_malloc/free call mmap, mprotect
 * and munmap, which take the process's mmap lock for writing; a worker
 * faulting in or unmapping argon2's 64 MiB..1 GiB holds that lock for
 * milliseconds, and the loop thread stalled 20-40 ms behind it per job
 * (measured by test_loop_not_blocked). The copy is still wiped. */
static struct job *job_new(enum job_kind kind, const char *secret, size_t len)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = kind;
	j->len = len;
	j->secret = malloc(len + 1);
	if (!j->secret) {
		free(j);
		return NULL;
	}
	memcpy(j->secret, secret, len);
	j->secret[len] = '\0';
	return j;
}

static int submit(struct hasher *h, struct job *j)
{
	int rc = 0;

	pthread_mutex_lock(&h->mu);
	if (h->stopping)
		rc = -ESHUTDOWN;
	else if (h->queued >= h->queue_max)
		rc = -EAGAIN;
	if (rc == 0) {
		queue_dummy(h);
		list_push(&h->q_head, &h->q_tail, j);
		h->queued++;
		pthread_cond_broadcast(&h->work_cv);
	}
	pthread_mutex_unlock(&h->mu);
	if (rc == 0)
		outstanding_add(h, +1);
	return rc;
}

int hasher_hash(struct hasher *h, const char *secret, size_t len,
		hasher_hash_cb *cb, void *userdata)
{
	struct job *j;
	int rc;

	if (!h || !secret || !cb)
		return -EINVAL;
	j = job_new(JOB_HASH, secret, len);
	if (!j)
		return -ENOMEM;
	j->hash_cb = cb;
	j->userdata = userdata;
	rc = submit(h, j);
	if (rc < 0)
		job_free(j);
	return rc;
}

int hasher_verify(struct hasher *h, const char *hash, const char *secret,
		  size_t len, hasher_verify_cb *cb, void *userdata)
{
	struct job *j;
	int rc;

	if (!h || !secret || !cb)
		return -EINVAL;
	j = job_new(JOB_VERIFY, secret, len);
	if (!j)
		return -ENOMEM;
	if (hash) {
		j->hash_in = strdup(hash);
		if (!j->hash_in) {
			job_free(j);
			return -ENOMEM;
		}
	}
	j->verify_cb = cb;
	j->userdata = userdata;
	rc = submit(h, j);
	if (rc < 0)
		job_free(j);
	return rc;
}

bool hasher_needs_rehash(const struct hasher *h, const char *hash)
{
	return crypto_pwhash_str_needs_rehash(hash, h->ops, h->mem) != 0;
}

unsigned hasher_queued(struct hasher *h)
{
	unsigned n;

	pthread_mutex_lock(&h->mu);
	n = h->queued;
	pthread_mutex_unlock(&h->mu);
	return n;
}

unsigned hasher_running(struct hasher *h)
{
	unsigned n;

	pthread_mutex_lock(&h->mu);
	n = h->running;
	pthread_mutex_unlock(&h->mu);
	return n;
}
