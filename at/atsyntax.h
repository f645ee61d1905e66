/* atsyntax — AT response framing: bytes in, LINE / PDU / PROMPT events out.
 *
 * A byte state machine fed by any number of read()s, split at any point:
 * the same bytes always yield the same events whatever the split.
 *
 *  - LINE: text up to CR LF, bare LF or bare CR (so "\r\r\n", "\n\r" and
 *    an echo ending in a bare CR all work). Empty lines are skipped.
 *  - PDU: after atsyn_hint_pdu(), the next non-empty line is a PDU line
 *    if it is made of hex digits only; otherwise it is delivered as an
 *    ordinary LINE and the hint is consumed. A hint is one-shot.
 *  - PROMPT: "> " at the start of a line (the prompt has no line end).
 *    While atsyn_expect_prompt(true) is set, a '>' at line start is the
 *    prompt at once and a following ' ' is swallowed, so a modem that
 *    sends only ">" also works. A PDU line never contains a prompt.
 *  - OVERFLOW: a line longer than ATSYN_LINE_MAX bytes is discarded whole;
 *    the event fires once when the limit is crossed and framing recovers
 *    at the next line end.
 *
 * NUL, other control bytes (except CR, LF, TAB), DEL and 0xFF are dropped
 * and reported through the optional drop callback. Bytes 0x80..0xFE are
 * kept (vendor text in ATI may be Latin-1 or UTF-8).
 *
 * No allocation after atsyn_new(), no I/O. */
#ifndef SMSGW_ATSYNTAX_H
#define SMSGW_ATSYNTAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATSYN_LINE_MAX 4096 /* longest line kept, without its line end */

enum atsyn_event {
	ATSYN_LINE,
	ATSYN_PDU,
	ATSYN_PROMPT,   /* line is "> " (or ">"), len its length */
	ATSYN_OVERFLOW, /* line holds the first ATSYN_LINE_MAX bytes */
};

/* Called for every event from inside atsyn_feed(). `line` is
 * NUL-terminated and valid only during the call. The callback may call
 * atsyn_hint_pdu(), atsyn_expect_prompt() and atsyn_reset() on the same
 * object (they apply to the bytes that follow); it must not free it. */
typedef void (*atsyn_event_fn)(enum atsyn_event ev, const char *line,
			       size_t len, void *ctx);

/* Called for every dropped byte (NUL, control byte, 0xFF). */
typedef void (*atsyn_drop_fn)(uint8_t byte, void *ctx);

struct atsyn;

/* Returns NULL on allocation failure. fn must not be NULL. */
struct atsyn *atsyn_new(atsyn_event_fn fn, void *ctx);
void atsyn_free(struct atsyn *syn);

void atsyn_set_drop(struct atsyn *syn, atsyn_drop_fn fn, void *ctx);

/* Feeds len bytes; events fire synchronously, in order. */
void atsyn_feed(struct atsyn *syn, const uint8_t *buf, size_t len);

/* The next non-empty line is a PDU line (if it is hex). */
void atsyn_hint_pdu(struct atsyn *syn);

/* A prompt is (or is no longer) expected; see above. */
void atsyn_expect_prompt(struct atsyn *syn, bool on);

/* Drops the partial line and all hints; back to line start. */
void atsyn_reset(struct atsyn *syn);

/* For tests and traces: "LINE", "PDU", "PROMPT", "OVERFLOW". */
const char *atsyn_event_name(enum atsyn_event ev);

#endif
