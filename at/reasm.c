/* reasm — in-memory reassembly of concatenated SMS. */
#include "at/reasm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct chunk {
	char *data; /* NULL until the part arrives (len 0 parts get "") */
	size_t len;
};

/* One pending set. */
struct rset {
	char sender[REASM_SENDER_MAX];
	uint16_t ref;
	uint8_t total;
	uint8_t received;
	int64_t first_seen;
	int64_t last_seen; /* `now` of the last new part: the timeout base */
	struct rset *next; /* evicted queue link */
	struct chunk parts[]; /* total entries */
};

struct reasm {
	int64_t timeout;
	size_t max_sets;
	char *gap;
	size_t gap_len;
	struct rset **sets; /* pending, unordered; n of max_sets used */
	size_t n;
	struct rset *evicted_head; /* FIFO handed back by reasm_expire() */
	struct rset *evicted_tail;
};

struct reasm *reasm_new(int64_t timeout, size_t max_sets, const char *gap)
{
	struct reasm *r;

	if (timeout <= 0 || max_sets == 0 || max_sets > SIZE_MAX / sizeof(void *))
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->timeout = timeout;
	r->max_sets = max_sets;
	r->sets = calloc(max_sets, sizeof(*r->sets));
	r->gap = strdup(gap ? gap : "");
	if (!r->sets || !r->gap) {
		reasm_free(r);
		return NULL;
	}
	r->gap_len = strlen(r->gap);
	return r;
}

static void set_free(struct rset *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->total; i++)
		free(s->parts[i].data);
	free(s);
}

void reasm_free(struct reasm *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		set_free(r->sets[i]);
	while (r->evicted_head) {
		struct rset *s = r->evicted_head;

		r->evicted_head = s->next;
		set_free(s);
	}
	free(r->sets);
	free(r->gap);
	free(r);
}

static const char *sender_of(const struct reasm_part *p)
{
	return p->sender ? p->sender : "";
}

static int part_check(const struct reasm_part *p)
{
	if (p->total == 0 || p->seq == 0 || p->seq > p->total)
		return -EINVAL;
	if (!p->data && p->len > 0)
		return -EINVAL;
	if (strnlen(sender_of(p), REASM_SENDER_MAX) >= REASM_SENDER_MAX)
		return -EINVAL;
	return 0;
}

/* Index of the pending set for p's key, or -1. */
static long set_find(const struct reasm *r, const struct reasm_part *p)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct rset *s = r->sets[i];

		if (s->ref == p->ref && s->total == p->total &&
		    strcmp(s->sender, sender_of(p)) == 0)
			return (long)i;
	}
	return -1;
}

/* Removes sets[i] from the pending array (order does not matter). */
static struct rset *set_take(struct reasm *r, size_t i)
{
	struct rset *s = r->sets[i];

	r->sets[i] = r->sets[--r->n];
	r->sets[r->n] = NULL;
	return s;
}

/* Index of the set idle longest; r->n must be > 0. */
static size_t set_oldest(const struct reasm *r)
{
	size_t best = 0;

	for (size_t i = 1; i < r->n; i++)
		if (r->sets[i]->last_seen < r->sets[best]->last_seen)
			best = i;
	return best;
}

static void evict_oldest(struct reasm *r)
{
	struct rset *s = set_take(r, set_oldest(r));

	s->next = NULL;
	if (r->evicted_tail)
		r->evicted_tail->next = s;
	else
		r->evicted_head = s;
	r->evicted_tail = s;
}

static struct rset *set_new(const struct reasm_part *p, int64_t now)
{
	struct rset *s = calloc(1, sizeof(*s) + p->total * sizeof(s->parts[0]));

	if (!s)
		return NULL;
	strcpy(s->sender, sender_of(p));
	s->ref = p->ref;
	s->total = p->total;
	s->first_seen = now;
	s->last_seen = now;
	return s;
}

/* Concatenates the parts of s (gap for missing ones) into m->text and
 * fills m. Returns 0 or -ENOMEM (m untouched). */
static int set_assemble(const struct reasm *r, const struct rset *s,
			struct reasm_msg *m)
{
	size_t len = 0, o = 0;
	char *t;

	for (unsigned i = 0; i < s->total; i++)
		len += s->parts[i].data ? s->parts[i].len : r->gap_len;
	t = malloc(len + 1);
	if (!t)
		return -ENOMEM;
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < s->total; i++) {
		const struct chunk *c = &s->parts[i];

		memcpy(t + o, c->data ? c->data : r->gap,
		       c->data ? c->len : r->gap_len);
		o += c->data ? c->len : r->gap_len;
		if (c->data)
			m->have[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	t[o] = '\0';
	memcpy(m->sender, s->sender, sizeof(m->sender));
	m->ref = s->ref;
	m->total = s->total;
	m->received = s->received;
	m->complete = s->received == s->total;
	m->first_seen = s->first_seen;
	m->text = t;
	m->len = o;
	return 0;
}

/* Copies p's payload into its slot of s. */
static int chunk_store(struct rset *s, const struct reasm_part *p)
{
	struct chunk *c = &s->parts[p->seq - 1];

	c->data = malloc(p->len + 1);
	if (!c->data)
		return -ENOMEM;
	if (p->len)
		memcpy(c->data, p->data, p->len);
	c->len = p->len;
	s->received++;
	return 0;
}

/* A lone part (total 1) needs no storage. */
static int add_single(const struct reasm *r, const struct reasm_part *p,
		      int64_t now, struct reasm_msg *out)
{
	struct rset *s = set_new(p, now);
	int rc = s ? chunk_store(s, p) : -ENOMEM;

	if (rc == 0)
		rc = set_assemble(r, s, out);
	set_free(s);
	return rc < 0 ? rc : REASM_COMPLETE;
}

/* Completes a set: assembles it into out and drops it. */
static int add_last(struct reasm *r, size_t i, const struct reasm_part *p,
		    struct reasm_msg *out)
{
	struct rset *s = r->sets[i];
	int rc = chunk_store(s, p);

	if (rc == 0)
		rc = set_assemble(r, s, out);
	if (rc < 0) {
		if (s->parts[p->seq - 1].data) {
			free(s->parts[p->seq - 1].data);
			s->parts[p->seq - 1].data = NULL;
			s->received--;
		}
		return rc;
	}
	set_free(set_take(r, i));
	return REASM_COMPLETE;
}

int reasm_add(struct reasm *r, const struct reasm_part *p, int64_t now,
	      struct reasm_msg *out)
{
	struct rset *s;
	long i;

	if (!r || !p || !out || part_check(p) < 0)
		return -EINVAL;
	if (p->total == 1)
		return add_single(r, p, now, out);
	i = set_find(r, p);
	if (i >= 0 && r->sets[i]->parts[p->seq - 1].data)
		return REASM_DUPLICATE;
	if (i >= 0 && r->sets[i]->received + 1 == p->total)
		return add_last(r, (size_t)i, p, out);
	if (i >= 0) {
		if (chunk_store(r->sets[i], p) < 0)
			return -ENOMEM;
		r->sets[i]->last_seen = now;
		return REASM_PENDING;
	}
	s = set_new(p, now);
	if (!s || chunk_store(s, p) < 0) {
		set_free(s);
		return -ENOMEM;
	}
	if (r->n == r->max_sets)
		evict_oldest(r);
	r->sets[r->n++] = s;
	return REASM_PENDING;
}

/* Whether a set last fed at `last` has timed out at `now`, without
 * overflowing on extreme values. */
static bool timed_out(const struct reasm *r, int64_t last, int64_t now)
{
	return now >= last &&
	       (uint64_t)now - (uint64_t)last >= (uint64_t)r->timeout;
}

int reasm_expire(struct reasm *r, int64_t now, struct reasm_msg *out)
{
	struct rset *s = r ? r->evicted_head : NULL;
	size_t i;

	if (!r || !out)
		return -EINVAL;
	if (s) {
		if (set_assemble(r, s, out) < 0)
			return -ENOMEM;
		r->evicted_head = s->next;
		if (!r->evicted_head)
			r->evicted_tail = NULL;
		set_free(s);
		return 1;
	}
	if (r->n == 0)
		return 0;
	i = set_oldest(r);
	if (!timed_out(r, r->sets[i]->last_seen, now))
		return 0;
	if (set_assemble(r, r->sets[i], out) < 0)
		return -ENOMEM;
	set_free(set_take(r, i));
	return 1;
}

bool reasm_next_deadline(const struct reasm *r, int64_t *when)
{
	int64_t last;

	if (!r || (!r->evicted_head && r->n == 0))
		return false;
	if (r->evicted_head) {
		*when = r->evicted_head->last_seen;
		return true;
	}
	last = r->sets[set_oldest(r)]->last_seen;
	*when = last > INT64_MAX - r->timeout ? INT64_MAX : last + r->timeout;
	return true;
}

size_t reasm_pending(const struct reasm *r)
{
	size_t n = 0;

	if (!r)
		return 0;
	for (const struct rset *s = r->evicted_head; s; s = s->next)
		n++;
	return n + r->n;
}

bool reasm_msg_has(const struct reasm_msg *m, unsigned seq)
{
	if (!m || seq == 0 || seq > m->total)
		return false;
	return m->have[(seq - 1) / 8] & (1u << ((seq - 1) % 8));
}

void reasm_msg_clear(struct reasm_msg *m)
{
	if (!m)
		return;
	free(m->text);
	memset(m, 0, sizeof(*m));
}
