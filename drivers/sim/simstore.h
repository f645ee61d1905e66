/* simstore — the simulated modem's message storage (the SIM's "SM").
 *
 * A fixed number of slots with 1-based indices, as AT+CMGR/+CMGL/+CMGD
 * address them. Each slot holds one PDU in hex (SMSC prefix first) with
 * its TS 27.005 <stat>. A new message takes the lowest free index, like
 * real modems do. No I/O. */
#ifndef SMSGW_SIMSTORE_H
#define SMSGW_SIMSTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "at/pdu.h"

/* TS 27.005 <stat> in PDU mode. */
enum simstore_stat {
	SIMSTORE_REC_UNREAD = 0,
	SIMSTORE_REC_READ = 1,
	SIMSTORE_STO_UNSENT = 2,
	SIMSTORE_STO_SENT = 3,
	SIMSTORE_ALL = 4, /* only as a +CMGL filter */
};

struct simstore_msg {
	unsigned index;          /* 1..capacity */
	enum simstore_stat stat;
	char hex[PDU_HEX_MAX];   /* SMSC prefix + TPDU */
	unsigned tpdu_len;       /* octets after the SMSC prefix */
};

struct simstore;

/* Returns NULL on allocation failure or capacity 0. */
struct simstore *simstore_new(unsigned capacity);
void simstore_free(struct simstore *s);

unsigned simstore_capacity(const struct simstore *s);
unsigned simstore_used(const struct simstore *s);

/* Stores a message in the lowest free slot. Returns its index (> 0),
 * -ENOSPC when full, -EINVAL when hex does not fit. */
int simstore_put(struct simstore *s, enum simstore_stat stat,
		 const char *hex, unsigned tpdu_len);

/* The message at index, or NULL when the index is out of range or empty.
 * Valid until the slot changes. */
struct simstore_msg *simstore_get(struct simstore *s, unsigned index);

/* Empties one slot. Returns 0 (also for an empty slot) or -ERANGE. */
int simstore_del(struct simstore *s, unsigned index);

/* AT+CMGD <delflag> 1..4: 1 all read, 2 read + sent, 3 read + sent +
 * unsent, 4 everything. Returns how many were deleted, or -EINVAL. */
int simstore_del_flag(struct simstore *s, int flag);

/* The next used slot after `after` (0 to start) whose stat matches
 * `filter` (SIMSTORE_ALL matches all), or NULL at the end. */
struct simstore_msg *simstore_next(struct simstore *s, unsigned after,
				   enum simstore_stat filter);

#endif
