/* atsyntax — AT response framing (see atsyntax.h for the contract). */
#include "at/atsyntax.h"

#include <stdlib.h>

enum syn_state {
	ST_START,     /* at line start, nothing buffered */
	ST_LINE,      /* inside a line */
	ST_GT,        /* '>' at line start, prompt not expected: a ' '
			 makes it the prompt, anything else a line */
	ST_PROMPT_SP, /* prompt reported on '>', swallow one ' ' */
	ST_DISCARD,   /* line overflowed: drop bytes until the line end */
};

/* Byte classes, so the hot loop is one table load per byte. */
enum byte_class {
	BC_TEXT = 0,
	BC_EOL,  /* CR or LF */
	BC_DROP, /* NUL, control bytes, DEL, 0xFF */
};

struct atsyn {
	atsyn_event_fn fn;
	void *ctx;
	atsyn_drop_fn drop_fn;
	void *drop_ctx;
	enum syn_state state;
	bool pdu_hint;      /* next non-empty line may be a PDU line */
	bool expect_prompt; /* a '>' at line start is the prompt at once */
	size_t len;
	char line[ATSYN_LINE_MAX + 1]; /* + NUL */
};

/* Everything not listed is BC_TEXT (TAB included). */
static const unsigned char byte_class[256] = {
	[0x00] = BC_DROP,
	[0x01] = BC_DROP,
	[0x02] = BC_DROP,
	[0x03] = BC_DROP,
	[0x04] = BC_DROP,
	[0x05] = BC_DROP,
	[0x06] = BC_DROP,
	[0x07] = BC_DROP,
	[0x08] = BC_DROP,
	['\n'] = BC_EOL,
	[0x0b] = BC_DROP,
	[0x0c] = BC_DROP,
	['\r'] = BC_EOL,
	[0x0e] = BC_DROP,
	[0x0f] = BC_DROP,
	[0x10] = BC_DROP,
	[0x11] = BC_DROP,
	[0x12] = BC_DROP,
	[0x13] = BC_DROP,
	[0x14] = BC_DROP,
	[0x15] = BC_DROP,
	[0x16] = BC_DROP,
	[0x17] = BC_DROP,
	[0x18] = BC_DROP,
	[0x19] = BC_DROP,
	[0x1a] = BC_DROP,
	[0x1b] = BC_DROP,
	[0x1c] = BC_DROP,
	[0x1d] = BC_DROP,
	[0x1e] = BC_DROP,
	[0x1f] = BC_DROP,
	[0x7f] = BC_DROP,
	[0xff] = BC_DROP,
};

struct atsyn *atsyn_new(atsyn_event_fn fn, void *ctx)
{
	struct atsyn *syn;

	if (!fn)
		return NULL;
	syn = calloc(1, sizeof(*syn));
	if (!syn)
		return NULL;
	syn->fn = fn;
	syn->ctx = ctx;
	return syn;
}

void atsyn_free(struct atsyn *syn)
{
	free(syn);
}

void atsyn_set_drop(struct atsyn *syn, atsyn_drop_fn fn, void *ctx)
{
	syn->drop_fn = fn;
	syn->drop_ctx = ctx;
}

void atsyn_hint_pdu(struct atsyn *syn)
{
	syn->pdu_hint = true;
}

void atsyn_expect_prompt(struct atsyn *syn, bool on)
{
	syn->expect_prompt = on;
}

void atsyn_reset(struct atsyn *syn)
{
	syn->state = ST_START;
	syn->len = 0;
	syn->pdu_hint = false;
}

const char *atsyn_event_name(enum atsyn_event ev)
{
	static const char *const names[] = {
		[ATSYN_LINE] = "LINE",
		[ATSYN_PDU] = "PDU",
		[ATSYN_PROMPT] = "PROMPT",
		[ATSYN_OVERFLOW] = "OVERFLOW",
	};

	if ((unsigned)ev < sizeof(names) / sizeof(names[0]))
		return names[ev];
	return "?";
}

static bool is_hex_line(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
		      (c >= 'a' && c <= 'f')))
			return false;
	}
	return len > 0;
}

static void emit(struct atsyn *syn, enum atsyn_event ev, const char *s,
		 size_t len)
{
	syn->fn(ev, s, len, syn->ctx);
}

static void emit_prompt(struct atsyn *syn)
{
	emit(syn, ATSYN_PROMPT, "> ", 2);
}

/* A line end: delivers the buffered line, if any. Trailing blanks are
 * trimmed (some firmwares pad lines), so "OK " is "OK". */
static void end_line(struct atsyn *syn)
{
	enum atsyn_event ev = ATSYN_LINE;
	size_t len = syn->len;

	switch (syn->state) {
	case ST_GT:
		syn->line[0] = '>';
		len = 1;
		break;
	case ST_LINE:
		break;
	default:
		syn->state = ST_START;
		return;
	}
	syn->state = ST_START;
	syn->len = 0;
	while (len > 0 && (syn->line[len - 1] == ' ' ||
			   syn->line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return;
	syn->line[len] = '\0';
	if (syn->pdu_hint && is_hex_line(syn->line, len))
		ev = ATSYN_PDU;
	syn->pdu_hint = false;
	emit(syn, ev, syn->line, len);
}

/* Appends one text byte; on overflow reports the line and discards the
 * rest of it. */
static void put(struct atsyn *syn, char c)
{
	if (syn->len >= ATSYN_LINE_MAX) {
		syn->line[ATSYN_LINE_MAX] = '\0';
		syn->state = ST_DISCARD;
		syn->len = 0;
		syn->pdu_hint = false;
		emit(syn, ATSYN_OVERFLOW, syn->line, ATSYN_LINE_MAX);
		return;
	}
	syn->line[syn->len++] = c;
}

/* One text byte (not CR/LF, not dropped) through the state machine. */
static void text_byte(struct atsyn *syn, char c)
{
	switch (syn->state) {
	case ST_PROMPT_SP:
		syn->state = ST_START;
		if (c == ' ')
			return;
		/* fall through */
	case ST_START:
		if (c == '>' && !syn->pdu_hint) {
			if (syn->expect_prompt) {
				syn->state = ST_PROMPT_SP;
				emit_prompt(syn);
			} else {
				syn->state = ST_GT;
			}
			return;
		}
		syn->state = ST_LINE;
		put(syn, c);
		return;
	case ST_GT:
		if (c == ' ') {
			syn->state = ST_START;
			emit_prompt(syn);
			return;
		}
		syn->state = ST_LINE;
		put(syn, '>');
		put(syn, c);
		return;
	case ST_LINE:
		put(syn, c);
		return;
	case ST_DISCARD:
		return;
	}
}

void atsyn_feed(struct atsyn *syn, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t b = buf[i];

		switch (byte_class[b]) {
		case BC_TEXT:
			/* fast path: plain text inside a line */
			if (syn->state == ST_LINE && syn->len < ATSYN_LINE_MAX)
				syn->line[syn->len++] = (char)b;
			else
				text_byte(syn, (char)b);
			break;
		case BC_EOL:
			end_line(syn);
			break;
		default:
			if (syn->drop_fn)
				syn->drop_fn(b, syn->drop_ctx);
			break;
		}
	}
}
