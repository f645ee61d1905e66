/* libFuzzer target for the AT engine.
 *
 * 1. Framing: the input is fed to atsyntax whole and again split at an
 *    input-chosen point and in small chunks; the event streams must be
 *    identical (abort otherwise).
 * 2. Chat: a chat on a socketpair with queued commands (prefixed, bare,
 *    PDU listing, prompt) and URC handlers; the input is what the modem
 *    says, written in chunks, and the loop is driven synchronously with
 *    EVRUN_NOWAIT. Handlers react to markers in the data (send more,
 *    cancel, unregister, free the chat from inside a callback) to reach
 *    the reentrant paths. Optionally the modem hangs up at the end.
 *    Timed mode (bit 0x40 of the first byte, short inputs only): 1 ms
 *    command and resync timeouts and a short sleep before each of at most
 *    8 chunks, so replies arrive late, during resyncs and quiet windows.
 *    That part depends on timing; everything else is deterministic.
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -g -O1 \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_at.c \
 *     at/atsyntax.c at/chat.c at/result.c at/aterr.c -lev -o fuzz_at
 *   ./fuzz_at tests/fuzz/corpus/at */
#include <ev.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "at/atsyntax.h"
#include "at/chat.h"
#include "at/result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- framing: event stream digest ------------------------------------- */

struct digest {
	struct atsyn *syn;
	uint64_t h;
	size_t events;
};

static void mix(struct digest *d, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * 1099511628211ull;
}

static void on_syn(enum atsyn_event ev, const char *line, size_t len,
		   void *ctx)
{
	struct digest *d = ctx;

	if (strlen(line) != len || len > ATSYN_LINE_MAX)
		abort();
	mix(d, &ev, sizeof(ev));
	mix(d, line, len);
	d->events++;
	if (ev == ATSYN_LINE && len >= 4 && line[0] == '+' &&
	    (strncmp(line, "+CMT", 4) == 0 || strncmp(line, "+CDS", 4) == 0 ||
	     strncmp(line, "+CMG", 4) == 0))
		atsyn_hint_pdu(d->syn);
	if (ev == ATSYN_LINE && len >= 7 && strncmp(line, "AT+CMGS", 7) == 0)
		atsyn_expect_prompt(d->syn, true);
	if (ev == ATSYN_PROMPT)
		atsyn_expect_prompt(d->syn, false);
}

static void on_drop(uint8_t b, void *ctx)
{
	struct digest *d = ctx;

	mix(d, &b, 1);
}

static void framing_run(const uint8_t *data, size_t size, size_t cut,
			size_t chunk, struct digest *d)
{
	d->h = 1469598103934665603ull;
	d->events = 0;
	d->syn = atsyn_new(on_syn, d);
	if (!d->syn)
		abort();
	atsyn_set_drop(d->syn, on_drop, d);
	if (chunk) {
		for (size_t off = 0; off < size; off += chunk)
			atsyn_feed(d->syn, data + off,
				   off + chunk > size ? size - off : chunk);
	} else {
		atsyn_feed(d->syn, data, cut);
		atsyn_feed(d->syn, data + cut, size - cut);
	}
	atsyn_free(d->syn);
}

static void fuzz_framing(const uint8_t *data, size_t size)
{
	struct digest a, b, c;
	size_t cut = size ? (data[0] * 131u + 7) % (size + 1) : 0;

	framing_run(data, size, size, 0, &a);
	framing_run(data, size, cut, 0, &b);
	framing_run(data, size, 0, 3, &c);
	if (a.h != b.h || a.events != b.events || a.h != c.h ||
	    a.events != c.events)
		abort(); /* framing depends on how reads split the bytes */
}

/* --- chat -------------------------------------------------------------- */

struct fz {
	struct ev_loop *loop;
	struct at_chat *chat;
	int modem;
	unsigned urc_id;
	unsigned last_id;
	unsigned sends; /* bounded: callbacks may queue more */
	bool timed;     /* 1 ms timeouts */
};

static void walk(const struct at_result *res)
{
	struct at_result_iter it;
	char buf[64];
	uint8_t hex[200];
	const char *s;
	size_t n;
	int v, w;

	/* exercise the iterator on whatever arrived */
	at_result_iter_init(&it, res);
	while (at_result_next(&it, NULL)) {
		for (int i = 0; i < 12; i++) {
			if (at_result_open_list(&it) ||
			    at_result_close_list(&it) ||
			    at_result_number(&it, &v) ||
			    at_result_range(&it, &v, &w) ||
			    at_result_hex(&it, hex, sizeof(hex), &n) ||
			    at_result_string_copy(&it, buf, sizeof(buf)))
				continue;
			if (!at_result_skip(&it))
				break;
		}
		(void)at_result_rest(&it, &n);
		(void)at_result_pdu(&it, &s, &n);
	}
}

static void queue_some(struct fz *f);

static void on_cmd(const struct at_result *res, void *ud)
{
	struct fz *f = ud;
	char buf[AT_ERR_FMT_MAX];

	if (!res->final)
		abort();
	at_err_format(&res->err, buf, sizeof(buf));
	(void)at_err_is_transient(&res->err);
	walk(res);
	for (size_t i = 0; i < res->n_lines; i++) {
		const char *t = res->lines[i].text;

		if (strlen(t) != res->lines[i].len)
			abort();
		if (strstr(t, "FREE")) {
			at_chat_free(f->chat);
			f->chat = NULL;
			return;
		}
		if (strstr(t, "MORE"))
			queue_some(f);
		if (strstr(t, "CANCEL"))
			at_chat_cancel_all(f->chat);
	}
	if (res->err.type == AT_ERR_CMS && res->err.code == 999) {
		at_chat_free(f->chat);
		f->chat = NULL;
	}
}

static void on_urc(const struct at_result *res, void *ud)
{
	struct fz *f = ud;

	if (res->n_lines < 1 || res->n_lines > 2)
		abort();
	walk(res);
	if (strstr(res->lines[0].text, "UNREG") && f->urc_id) {
		at_chat_unregister(f->chat, f->urc_id);
		f->urc_id = 0;
	}
	if (strstr(res->lines[0].text, "KILL")) {
		at_chat_free(f->chat);
		f->chat = NULL;
		return;
	}
	if (strstr(res->lines[0].text, "DROP"))
		at_chat_cancel(f->chat, f->last_id);
	if (strstr(res->lines[0].text, "MORE"))
		queue_some(f);
}

static void on_unsol(const char *line, size_t len, void *ud)
{
	struct fz *f = ud;

	if (strlen(line) != len)
		abort();
	if (strstr(line, "BYE")) {
		at_chat_free(f->chat);
		f->chat = NULL;
	}
}

static void on_disc(int err, void *ud)
{
	struct fz *f = ud;

	(void)err;
	if (f->chat && !at_chat_failed(f->chat))
		abort();
}

static void queue_some(struct fz *f)
{
	static const struct at_cmd cmds[] = {
		{ .text = "AT+CSQ", .prefix = { "+CSQ:" } },
		{ .text = "ATI", .bare = true },
		{ .text = "AT+CMGL=4", .prefix = { "+CMGL:" }, .pdu_lines = true },
		{ .text = "AT+CMGS=40", .prefix = { "+CMGS:" },
		  .prompt = "0011000B914306101122F20000AA1DC161B3A803E5DF7539"
			    "68FC269741E939E8B68CCA9AD81C944605" },
		{ .text = "AT+CMGR=1", .prefix = { "+CMGR:" }, .pdu_lines = true },
		{ .text = "AT+COPS?", .prefix = { "+COPS:", "+CREG:" } },
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		unsigned id;

		if (!f->chat || f->sends >= 60)
			return;
		struct at_cmd c = cmds[i];

		f->sends++;
		c.timeout_ms = f->timed ? 1 : 0;
		id = at_chat_send(f->chat, &c, on_cmd, f, NULL);
		if (id)
			f->last_id = id;
	}
}

/* Runs the loop until the chat has read everything (bounded), and reads
 * away what the chat wrote so the socket never fills up. */
static void pump(struct fz *f, int chat_fd)
{
	char sink[4096];

	for (int i = 0; i < 64; i++) {
		int avail = 0;

		ev_run(f->loop, EVRUN_NOWAIT);
		while (read(f->modem, sink, sizeof(sink)) > 0)
			;
		if (!f->chat || ioctl(chat_fd, FIONREAD, &avail) < 0 ||
		    avail == 0)
			return;
	}
}

static void fuzz_chat(const uint8_t *data, size_t size)
{
	static struct ev_loop *loop;
	struct fz f = { 0 };
	int fds[2];
	size_t chunk = size ? (size_t)(data[0] % 61) + 1 : 1;
	bool timed = size && size <= 1024 && (data[0] & 0x40);

	if (!loop)
		loop = ev_loop_new(EVFLAG_AUTO);
	if (!loop ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		abort();
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	f.loop = loop;
	f.modem = fds[1];
	f.chat = at_chat_new(loop, fds[0]);
	if (!f.chat)
		abort();
	f.timed = timed;
	if (timed) {
		chunk = size / 8 + 1;
		at_chat_set_resync(f.chat, 1, 1, 2);
	}
	at_chat_set_unsolicited(f.chat, on_unsol, &f);
	at_chat_set_disconnect(f.chat, on_disc, &f);
	at_chat_add_final(f.chat, "COMMAND NOT SUPPORT", AT_ERR_ERROR);
	f.urc_id = at_chat_register(f.chat, "+CMTI:", false, on_urc, &f, NULL);
	at_chat_register(f.chat, "+CMT:", true, on_urc, &f, NULL);
	at_chat_register(f.chat, "+CDS:", true, on_urc, &f, NULL);
	at_chat_register(f.chat, "^RSSI:", false, on_urc, &f, NULL);
	at_chat_register(f.chat, "RDY", false, on_urc, &f, NULL);
	at_chat_register(f.chat, "+CREG:", false, on_urc, &f, NULL);
	queue_some(&f);
	for (size_t off = 0; off < size && f.chat; off += chunk) {
		size_t n = off + chunk > size ? size - off : chunk;

		if (timed) {
			usleep(1200);
			ev_run(loop, EVRUN_NOWAIT); /* timers fire */
			if (!f.chat)
				break;
		}
		if (write(fds[1], data + off, n) != (ssize_t)n)
			abort();
		pump(&f, fds[0]);
	}
	for (int i = 0; timed && f.chat && i < 3; i++) {
		usleep(1200);
		pump(&f, fds[0]);
	}
	if (f.chat && size && (data[0] & 0x80)) {
		close(fds[1]); /* hang-up: pending commands get IO */
		fds[1] = -1;
		f.modem = -1;
		for (int i = 0; i < 8 && f.chat && !at_chat_failed(f.chat); i++)
			ev_run(loop, EVRUN_NOWAIT);
		if (f.chat && !at_chat_failed(f.chat))
			abort();
		if (f.chat && at_chat_pending(f.chat) != 0)
			abort();
	}
	at_chat_free(f.chat);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	fuzz_framing(data, size);
	fuzz_chat(data, size);
	return 0;
}
