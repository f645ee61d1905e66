/* reasm — in-memory reassembly of concatenated SMS (TS 23.040 9.2.3.24.1).
 *
 * Parts arrive in any order, possibly twice. A set is keyed by sender +
 * concatenation reference + total part count; when its last missing part
 * arrives reasm_add() hands back the whole text. A set that stays
 * incomplete for `timeout` (measured from its last new part) is handed
 * back by reasm_expire() with complete=false, so the caller can deliver
 * what arrived, marked incomplete.
 *
 * No clocks inside: the caller passes `now` in whatever unit `timeout`
 * uses (seconds of ev_now(), milliseconds, ...). Not thread-safe; one
 * reassembler per event loop. Part payloads are copied.
 *
 * Limits: at most max_sets sets are pending; a new set beyond that evicts
 * the set idle longest, which the next reasm_expire() call returns at
 * once, whatever the time. A part that arrives after its set completed
 * (a network retransmission) starts a new set, which expires incomplete. */
#ifndef SMSGW_REASM_H
#define SMSGW_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REASM_SENDER_MAX 48 /* bytes incl. NUL, like PDU_ADDR_MAX */

struct reasm;

/* One received part, as the PDU decoder reports it. */
struct reasm_part {
	const char *sender; /* originator ("+34600111222", "ACME"); NULL = "" */
	uint16_t ref;       /* concatenation reference (8 or 16 bit) */
	uint8_t total;      /* parts in the set, 1..255 */
	uint8_t seq;        /* this part, 1..total */
	const void *data;   /* the part's UTF-8 text (or 8-bit data) */
	size_t len;         /* octets in data, no NUL needed */
};

/* A finished set, complete or expired. Owns text: reasm_msg_clear(). */
struct reasm_msg {
	char sender[REASM_SENDER_MAX];
	uint16_t ref;
	uint8_t total;
	uint8_t received;    /* distinct parts that arrived */
	bool complete;       /* received == total */
	int64_t first_seen;  /* `now` of the set's first part */
	uint8_t have[32];    /* bit seq-1 set when part seq arrived */
	char *text;          /* parts in order, missing ones replaced by the
				gap marker; NUL-terminated, malloc'd */
	size_t len;          /* octets in text without the NUL */
};

/* reasm_add() results. */
enum reasm_result {
	REASM_PENDING = 0,   /* stored, set still incomplete */
	REASM_COMPLETE = 1,  /* set complete: *out filled */
	REASM_DUPLICATE = 2, /* this seq was already stored: ignored */
};

/* timeout > 0; max_sets > 0; gap: what stands for each missing part in
 * an expired set's text (copied; NULL = nothing). NULL on bad arguments
 * or out of memory. */
struct reasm *reasm_new(int64_t timeout, size_t max_sets, const char *gap);
/* Frees every pending set. Accepts NULL. */
void reasm_free(struct reasm *r);

/* Stores one part. Returns an enum reasm_result, or -EINVAL (total 0, seq
 * outside 1..total, sender too long, NULL data with len > 0) or -ENOMEM;
 * on errors nothing changed. A single-part "set" (total 1) completes at
 * once. *out is written only for REASM_COMPLETE. */
int reasm_add(struct reasm *r, const struct reasm_part *part, int64_t now,
	      struct reasm_msg *out);

/* Hands back one set that timed out (idle for >= timeout at `now`) or was
 * evicted: returns 1 with *out filled (complete=false), 0 when there is
 * none, -ENOMEM. Call until it returns 0, after every reasm_add() and when
 * the deadline passes. Oldest first. */
int reasm_expire(struct reasm *r, int64_t now, struct reasm_msg *out);

/* When the next set times out: true with *when set, false when nothing
 * is pending. An evicted set is due at once (*when is in the past). */
bool reasm_next_deadline(const struct reasm *r, int64_t *when);

/* Sets pending (incomplete and not yet handed back). */
size_t reasm_pending(const struct reasm *r);

/* Whether part seq (1-based) of m arrived. */
bool reasm_msg_has(const struct reasm_msg *m, unsigned seq);

/* Frees m->text and zeroes m. Accepts NULL. */
void reasm_msg_clear(struct reasm_msg *m);

#endif
