/* libFuzzer target for the multipart reassembler.
 *
 * The input is a script of operations, one opcode octet each followed by
 * its operands: add a part, advance or rewind the clock, expire, check
 * the deadline. A part's payload is a function of its key and seq, so a
 * completed or expired set's text is predictable and checked exactly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at/reasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TIMEOUT 40
#define GAP "?"

static const char *const senders[] = { "+34600111222", "ACME", "", "+1" };

/* The payload of part seq of a set: 0..4 copies of one letter. */
static size_t payload(uint16_t ref, uint8_t seq, char *out)
{
	size_t len = (size_t)(seq * 7u + ref) % 5;

	memset(out, 'A' + seq % 26, len);
	return len;
}

/* Rebuilds the expected text of m from the payload rule. */
static void check_msg(const struct reasm_msg *m)
{
	char want[255 * 5 + 1];
	size_t off = 0;
	unsigned got = 0;

	for (unsigned seq = 1; seq <= m->total; seq++) {
		if (reasm_msg_has(m, seq)) {
			off += payload(m->ref, (uint8_t)seq, want + off);
			got++;
		} else {
			memcpy(want + off, GAP, strlen(GAP));
			off += strlen(GAP);
		}
	}
	want[off] = '\0';
	if (got != m->received || m->complete != (got == m->total) ||
	    m->len != off || memcmp(m->text, want, off + 1) != 0)
		abort();
}

static void drain(struct reasm *r, int64_t now)
{
	struct reasm_msg m;
	int rc;

	while ((rc = reasm_expire(r, now, &m)) == 1) {
		if (m.complete)
			abort(); /* complete sets come from reasm_add only */
		check_msg(&m);
		reasm_msg_clear(&m);
	}
	if (rc != 0)
		abort();
}

static void op_add(struct reasm *r, const uint8_t *a, int64_t now)
{
	char buf[8];
	struct reasm_part p = {
		.sender = senders[a[0] % 4],
		.ref = (uint16_t)(a[1] % 3 == 2 ? 0xFF00u | a[1] : a[1] % 3),
		.total = (uint8_t)(a[2] % 6),
		.seq = (uint8_t)(a[3] % 7),
		.data = buf,
	};
	struct reasm_msg m;
	int rc;

	if (a[2] >= 250)
		p.total = a[2]; /* now and then a large set */
	p.len = payload(p.ref, p.seq, buf);
	rc = reasm_add(r, &p, now, &m);
	if (rc == REASM_COMPLETE) {
		if (!m.complete || strcmp(m.sender, p.sender) != 0)
			abort();
		check_msg(&m);
		reasm_msg_clear(&m);
	} else if (rc < 0 && (p.total && p.seq && p.seq <= p.total)) {
		abort(); /* a valid part was refused */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reasm *r = reasm_new(TIMEOUT, 1 + (size ? data[0] % 6 : 0), GAP);
	int64_t now = 0, latest = 0, when;
	size_t i = 1;

	if (!r)
		return 0;
	while (i < size) {
		uint8_t op = data[i++];

		if (op % 5 == 0 && i + 4 <= size) {
			op_add(r, data + i, now);
			i += 4;
		} else if (op % 5 == 1 && i < size) {
			now += data[i++];
			latest = now > latest ? now : latest;
		} else if (op % 5 == 2 && i < size) {
			now -= data[i++] % 8; /* clocks may step back */
		} else if (op % 5 == 3) {
			drain(r, now);
		} else if (reasm_next_deadline(r, &when) !=
			   (reasm_pending(r) > 0)) {
			abort();
		}
	}
	drain(r, latest + TIMEOUT);
	if (reasm_pending(r) != 0)
		abort();
	reasm_free(r);
	return 0;
}
