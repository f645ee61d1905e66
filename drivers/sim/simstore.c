/* simstore — see simstore.h. */
#include "drivers/sim/simstore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct simstore {
	unsigned capacity;
	unsigned used;
	bool *busy;                 /* [capacity]: slot i+1 holds a message */
	struct simstore_msg *slots; /* [capacity] */
};

struct simstore *simstore_new(unsigned capacity)
{
	struct simstore *s;

	if (capacity == 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->capacity = capacity;
	s->busy = calloc(capacity, sizeof(*s->busy));
	s->slots = calloc(capacity, sizeof(*s->slots));
	if (!s->busy || !s->slots) {
		simstore_free(s);
		return NULL;
	}
	return s;
}

void simstore_free(struct simstore *s)
{
	if (!s)
		return;
	free(s->busy);
	free(s->slots);
	free(s);
}

unsigned simstore_capacity(const struct simstore *s)
{
	return s->capacity;
}

unsigned simstore_used(const struct simstore *s)
{
	return s->used;
}

int simstore_put(struct simstore *s, enum simstore_stat stat,
		 const char *hex, unsigned tpdu_len)
{
	struct simstore_msg *m;
	size_t len = strlen(hex);

	if (len >= sizeof(m->hex))
		return -EINVAL;
	for (unsigned i = 0; i < s->capacity; i++) {
		if (s->busy[i])
			continue;
		m = &s->slots[i];
		m->index = i + 1;
		m->stat = stat;
		memcpy(m->hex, hex, len + 1);
		m->tpdu_len = tpdu_len;
		s->busy[i] = true;
		s->used++;
		return (int)m->index;
	}
	return -ENOSPC;
}

struct simstore_msg *simstore_get(struct simstore *s, unsigned index)
{
	if (index == 0 || index > s->capacity || !s->busy[index - 1])
		return NULL;
	return &s->slots[index - 1];
}

int simstore_del(struct simstore *s, unsigned index)
{
	if (index == 0 || index > s->capacity)
		return -ERANGE;
	if (s->busy[index - 1]) {
		s->busy[index - 1] = false;
		s->used--;
	}
	return 0;
}

/* Which stats each <delflag> removes, as a bit mask of 1 << stat. */
static const unsigned del_masks[] = {
	[1] = 1u << SIMSTORE_REC_READ,
	[2] = 1u << SIMSTORE_REC_READ | 1u << SIMSTORE_STO_SENT,
	[3] = 1u << SIMSTORE_REC_READ | 1u << SIMSTORE_STO_SENT |
	      1u << SIMSTORE_STO_UNSENT,
	[4] = 0xf,
};

int simstore_del_flag(struct simstore *s, int flag)
{
	int n = 0;

	if (flag < 1 || flag > 4)
		return -EINVAL;
	for (unsigned i = 0; i < s->capacity; i++) {
		if (!s->busy[i] ||
		    !(del_masks[flag] & (1u << s->slots[i].stat)))
			continue;
		s->busy[i] = false;
		s->used--;
		n++;
	}
	return n;
}

struct simstore_msg *simstore_next(struct simstore *s, unsigned after,
				   enum simstore_stat filter)
{
	for (unsigned i = after; i < s->capacity; i++) {
		if (!s->busy[i])
			continue;
		if (filter == SIMSTORE_ALL || s->slots[i].stat == filter)
			return &s->slots[i];
	}
	return NULL;
}
