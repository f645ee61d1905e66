/* chat — AT command queue, line classification, URC dispatch (chat.h).
 *
 * Reentrancy: every entry point that can run user code (libev callbacks,
 * cancel, unregister, free) brackets itself with enter()/leave(). A free
 * inside such a bracket only marks the chat dead, stops the watchers and
 * releases user data; the memory goes at the outermost leave(). After each
 * user callback the code checks `dead` before touching anything more. */
#include "at/chat.h"
#include "at/atsyntax.h"

#include <ev.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define CTRL_Z '\x1a'
#define ESC '\x1b'
#define READ_CHUNK 4096

enum cmd_state {
	CMD_QUEUED,
	CMD_SENT,      /* text written, waiting for final (or prompt) */
	CMD_DATA_SENT, /* prompt answered with data + Ctrl-Z (or ESC) */
};

struct cmd {
	struct cmd *next;
	unsigned id;
	enum cmd_state state;
	bool cancelled; /* callback never called; destroy already done */
	bool bare;
	bool pdu_lines;
	unsigned timeout_ms;
	at_chat_cb cb;
	void *userdata;
	at_destroy_fn destroy;
	size_t text_len;
	const char *prompt; /* NULL: not a prompt command */
	size_t prompt_len;
	const char *prefix[AT_CMD_MAX_PREFIXES];
	size_t prefix_len[AT_CMD_MAX_PREFIXES];
	char text[]; /* text, then prompt, then prefixes, NUL-separated */
};

enum phase {
	PH_IDLE,
	PH_CMD,    /* the queue head is on the wire */
	PH_RESYNC, /* "AT" sent, waiting for OK */
	PH_QUIET,  /* OK seen, waiting for a quiet window */
};

/* Who gets the next PDU line. */
enum pdu_owner { PDU_NONE, PDU_RESP, PDU_URC };

struct urc {
	unsigned id;
	bool pdu;
	bool removed; /* unregistered during a dispatch; compacted later */
	at_notify_fn fn;
	void *userdata;
	at_destroy_fn destroy;
	size_t len;
	char *prefix;
};

struct extra_final {
	char *prefix;
	size_t len;
	enum at_err_type type;
};

struct resp_line {
	size_t off;
	size_t len;
	bool pdu;
};

struct at_chat {
	struct ev_loop *loop;
	int fd;
	ev_io rio;
	ev_io wio;
	ev_timer tmo;  /* command timeout, resync timeout, quiet window */
	struct atsyn *syn;

	struct cmd *head, *tail; /* queue; head in flight in PH_CMD */
	size_t n_cmds;
	unsigned next_id;
	enum phase phase;
	bool synced;
	unsigned resync_attempts; /* "AT"s sent in the current resync */
	unsigned timeouts;        /* consecutive command timeouts */
	unsigned default_ms, resync_ms, quiet_ms, resync_tries;

	/* Response of the command in flight; buffers reused, not freed. */
	char *rbuf;
	size_t rlen, rcap;
	struct resp_line *rl;
	size_t rn, rl_cap;
	struct at_line *view;
	size_t view_cap;
	unsigned lost;

	enum pdu_owner pdu_owner;
	size_t urc_hdr_len;
	char urc_hdr[ATSYN_LINE_MAX + 1]; /* header of a two-line URC */

	char *obuf; /* output not yet written: obuf[ooff..olen) */
	size_t olen, ooff, ocap;
	int werr;   /* deferred write/alloc error, reported from wio */
	bool not_socket;

	struct urc *urcs;
	size_t n_urcs, urc_cap;
	unsigned next_urc_id;
	unsigned urc_busy;
	bool urc_dirty;

	struct extra_final *finals;
	size_t n_finals;

	at_unsolicited_fn unsol_fn;
	void *unsol_ud;
	at_disconnect_fn disc_fn;
	void *disc_ud;
	at_trace_fn trace_fn;
	void *trace_ud;

	unsigned depth; /* enter()/leave() nesting */
	bool dead;      /* freed while depth > 0 */
	bool failed;    /* I/O failure: fd no longer touched */
};

/* Standard final results (TS 27.007 5.7 / V.250 result codes). */
static const struct {
	const char *text;
	size_t len;
	enum at_err_type type;
	bool prefix; /* match the start of the line, else the whole line */
} std_finals[] = {
	{ "OK", 2, AT_ERR_OK, false },
	{ "ERROR", 5, AT_ERR_ERROR, false },
	{ "+CMS ERROR:", 11, AT_ERR_CMS, true },
	{ "+CME ERROR:", 11, AT_ERR_CME, true },
	{ "NO CARRIER", 10, AT_ERR_NO_CARRIER, false },
	{ "BUSY", 4, AT_ERR_BUSY, false },
	{ "NO ANSWER", 9, AT_ERR_NO_ANSWER, false },
	{ "NO DIALTONE", 11, AT_ERR_NO_DIALTONE, false },
	{ "NO DIAL TONE", 12, AT_ERR_NO_DIALTONE, false },
	{ "CONNECT", 7, AT_ERR_CONNECT, false },
	{ "CONNECT ", 8, AT_ERR_CONNECT, true },
};

static void kick(struct at_chat *chat);
static void classify(struct at_chat *chat, const char *line, size_t len);

/* --- helpers ------------------------------------------------------------ */

static void enter(struct at_chat *chat)
{
	chat->depth++;
}

static void destroy_mem(struct at_chat *chat)
{
	for (size_t i = 0; i < chat->n_finals; i++)
		free(chat->finals[i].prefix);
	free(chat->finals);
	for (size_t i = 0; i < chat->n_urcs; i++)
		free(chat->urcs[i].prefix);
	free(chat->urcs);
	free(chat->rbuf);
	free(chat->rl);
	free(chat->view);
	free(chat->obuf);
	atsyn_free(chat->syn);
	free(chat);
}

static void leave(struct at_chat *chat)
{
	if (--chat->depth == 0 && chat->dead)
		destroy_mem(chat);
}

static bool alive(const struct at_chat *chat)
{
	return !chat->dead && !chat->failed;
}

static void trace(struct at_chat *chat, enum at_trace what, const char *d,
		  size_t len)
{
	if (chat->trace_fn)
		chat->trace_fn(what, d, len, chat->trace_ud);
}

static bool starts_with(const char *line, size_t len, const char *p,
			size_t plen)
{
	return len >= plen && memcmp(line, p, plen) == 0;
}

/* Returns buf grown to hold at least need (>= 1) elements of size sz,
 * or NULL (buf still valid and unchanged). */
static void *grow(void *buf, size_t *cap, size_t need, size_t sz)
{
	size_t n = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return buf;
	while (n < need)
		n *= 2;
	p = realloc(buf, n * sz);
	if (p)
		*cap = n;
	return p;
}

static void timer_start(struct at_chat *chat, unsigned ms)
{
	chat->tmo.repeat = ms / 1000.0;
	ev_timer_again(chat->loop, &chat->tmo);
}

/* --- output ------------------------------------------------------------- */

static ssize_t do_write(struct at_chat *chat, const char *buf, size_t len)
{
	ssize_t n;

	if (!chat->not_socket) {
		/* MSG_NOSIGNAL: a closed socket peer (ser2net, tests) must
		 * be an error, not a SIGPIPE that kills the daemon. */
		n = send(chat->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0 || errno != ENOTSOCK)
			return n;
		chat->not_socket = true;
	}
	return write(chat->fd, buf, len);
}

/* Writes what it can now; the rest waits for the write watcher. Errors
 * are deferred to the watcher so that no callback runs from here. */
static void out_flush(struct at_chat *chat)
{
	while (!chat->werr && chat->ooff < chat->olen) {
		ssize_t n = do_write(chat, chat->obuf + chat->ooff,
				     chat->olen - chat->ooff);

		if (n > 0)
			chat->ooff += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		else
			chat->werr = n < 0 ? -errno : -EIO;
	}
	if (chat->ooff == chat->olen)
		chat->ooff = chat->olen = 0;
	if (chat->werr) {
		ev_io_start(chat->loop, &chat->wio);
		ev_feed_event(chat->loop, &chat->wio, EV_WRITE);
	} else if (chat->olen) {
		ev_io_start(chat->loop, &chat->wio);
	} else {
		ev_io_stop(chat->loop, &chat->wio);
	}
}

static void out_append(struct at_chat *chat, const char *d, size_t len)
{
	char *p;

	trace(chat, AT_TRACE_TX, d, len);
	if (chat->werr)
		return;
	p = grow(chat->obuf, &chat->ocap, chat->olen + len, 1);
	if (!p) {
		chat->werr = -ENOMEM;
		return;
	}
	chat->obuf = p;
	memcpy(chat->obuf + chat->olen, d, len);
	chat->olen += len;
}

/* Drops output not yet written (after a timeout the command is over; its
 * unsent bytes must not reach the modem later). */
static void out_discard(struct at_chat *chat)
{
	chat->olen = chat->ooff = 0;
	ev_io_stop(chat->loop, &chat->wio);
}

/* --- response accumulation ---------------------------------------------- */

static void resp_reset(struct at_chat *chat)
{
	chat->rlen = 0;
	chat->rn = 0;
	chat->lost = 0;
}

static void resp_add(struct at_chat *chat, const char *line, size_t len,
		     bool pdu)
{
	char *b = grow(chat->rbuf, &chat->rcap, chat->rlen + len + 1, 1);
	struct resp_line *rl;

	if (b)
		chat->rbuf = b;
	rl = grow(chat->rl, &chat->rl_cap, chat->rn + 1, sizeof(*rl));
	if (rl)
		chat->rl = rl;
	if (!b || !rl) {
		chat->lost++;
		return;
	}
	memcpy(chat->rbuf + chat->rlen, line, len);
	chat->rbuf[chat->rlen + len] = '\0';
	chat->rl[chat->rn++] = (struct resp_line){ chat->rlen, len, pdu };
	chat->rlen += len + 1;
}

/* Fills res with the accumulated lines (pointers valid until the next
 * resp_add / resp_reset). */
static void resp_view(struct at_chat *chat, struct at_result *res)
{
	struct at_line *v;

	if (chat->rn == 0)
		return;
	v = grow(chat->view, &chat->view_cap, chat->rn, sizeof(*v));
	if (!v) {
		res->lost += (unsigned)chat->rn;
		return;
	}
	chat->view = v;
	for (size_t i = 0; i < chat->rn; i++)
		chat->view[i] = (struct at_line){
			chat->rbuf + chat->rl[i].off, chat->rl[i].len,
			chat->rl[i].pdu };
	res->lines = chat->view;
	res->n_lines = chat->rn;
}

/* --- completion --------------------------------------------------------- */

/* Completes the queue head with err: callback (unless cancelled), then
 * destroy, then the next command. final is borrowed. */
static void complete(struct at_chat *chat, struct at_error err,
		     const char *final)
{
	struct cmd *c = chat->head;
	struct at_result res = { .err = err, .final = final };

	ev_timer_stop(chat->loop, &chat->tmo);
	chat->head = c->next;
	if (!chat->head)
		chat->tail = NULL;
	chat->n_cmds--;
	chat->phase = PH_IDLE;
	atsyn_expect_prompt(chat->syn, false);
	if (chat->pdu_owner == PDU_RESP)
		chat->pdu_owner = PDU_NONE;
	if (c->cb && !c->cancelled) {
		res.lost = chat->lost;
		resp_view(chat, &res);
		c->cb(&res, c->userdata);
	}
	if (c->destroy && !c->cancelled)
		c->destroy(c->userdata);
	free(c);
	if (chat->dead)
		return;
	/* A command sent from the callback may already be in flight, but
	 * no line can have arrived for it yet: reset is safe. */
	resp_reset(chat);
	kick(chat);
}

/* Parses the code of "+CME ERROR: 10" or "+CME ERROR: SIM not inserted". */
static int parse_code(enum at_err_type type, const char *s, size_t len)
{
	size_t i = 0;
	int v = 0;

	while (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return -1;
	if (s[i] < '0' || s[i] > '9')
		return at_err_code_from_text(type, s + i);
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > 99999)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return i == len ? v : -1;
}

static bool match_final(const struct at_chat *chat, const char *line,
			size_t len, struct at_error *err)
{
	size_t n = sizeof(std_finals) / sizeof(std_finals[0]);

	for (size_t i = 0; i < n; i++) {
		size_t fl = std_finals[i].len;

		if (!starts_with(line, len, std_finals[i].text, fl) ||
		    (!std_finals[i].prefix && len != fl))
			continue;
		err->type = std_finals[i].type;
		err->code = -1;
		if (err->type == AT_ERR_CME || err->type == AT_ERR_CMS)
			err->code = parse_code(err->type, line + fl, len - fl);
		return true;
	}
	for (size_t i = 0; i < chat->n_finals; i++) {
		const struct extra_final *f = &chat->finals[i];

		if (starts_with(line, len, f->prefix, f->len)) {
			*err = (struct at_error){ f->type, -1 };
			return true;
		}
	}
	return false;
}

/* --- URCs --------------------------------------------------------------- */

static const struct urc *find_urc(const struct at_chat *chat,
				  const char *line, size_t len)
{
	for (size_t i = 0; i < chat->n_urcs; i++) {
		const struct urc *u = &chat->urcs[i];

		if (!u->removed && starts_with(line, len, u->prefix, u->len))
			return u;
	}
	return NULL;
}

static void urc_compact(struct at_chat *chat)
{
	size_t j = 0;

	for (size_t i = 0; i < chat->n_urcs; i++) {
		if (chat->urcs[i].removed)
			free(chat->urcs[i].prefix);
		else
			chat->urcs[j++] = chat->urcs[i];
	}
	chat->n_urcs = j;
	chat->urc_dirty = false;
}

/* Calls every handler whose prefix matches hdr. pdu may be NULL. */
static void notify(struct at_chat *chat, const char *hdr, size_t hlen,
		   const char *pdu, size_t plen)
{
	struct at_line lines[2] = { { hdr, hlen, false }, { pdu, plen, true } };
	struct at_result res = { .err = { AT_ERR_OK, -1 }, .final = "",
				 .lines = lines, .n_lines = pdu ? 2 : 1 };
	size_t n = chat->n_urcs; /* handlers added meanwhile wait */

	chat->urc_busy++;
	for (size_t i = 0; i < n && !chat->dead; i++) {
		const struct urc *u = &chat->urcs[i];

		if (!u->removed && starts_with(hdr, hlen, u->prefix, u->len))
			u->fn(&res, u->userdata);
	}
	if (--chat->urc_busy == 0 && chat->urc_dirty && !chat->dead)
		urc_compact(chat);
}

/* Dispatches line if it is a registered URC; a two-line URC is held until
 * its PDU. Returns false when no prefix matched. */
static bool dispatch_urc(struct at_chat *chat, const char *line, size_t len)
{
	const struct urc *u = find_urc(chat, line, len);

	if (!u)
		return false;
	if (u->pdu) {
		memcpy(chat->urc_hdr, line, len);
		chat->urc_hdr[len] = '\0';
		chat->urc_hdr_len = len;
		chat->pdu_owner = PDU_URC;
		atsyn_hint_pdu(chat->syn);
		return true;
	}
	notify(chat, line, len, NULL, 0);
	return true;
}

/* A two-line URC whose PDU line never came: deliver the header alone. */
static void flush_urc_header(struct at_chat *chat)
{
	chat->pdu_owner = PDU_NONE;
	notify(chat, chat->urc_hdr, chat->urc_hdr_len, NULL, 0);
}

static void unsolicited(struct at_chat *chat, const char *line, size_t len)
{
	if (chat->unsol_fn)
		chat->unsol_fn(line, len, chat->unsol_ud);
}

/* --- resync ------------------------------------------------------------- */

static void resync_send(struct at_chat *chat)
{
	chat->phase = PH_RESYNC;
	chat->resync_attempts++;
	out_append(chat, "AT\r", 3);
	out_flush(chat);
	timer_start(chat, chat->resync_ms);
}

/* The current resync attempt failed (no OK, or a second final in the
 * quiet window). Tries again, or gives up and lets the queue go on: a
 * dead modem then times out command by command, which the driver sees
 * in at_chat_timeouts(). */
static void resync_retry(struct at_chat *chat)
{
	if (chat->resync_attempts < chat->resync_tries) {
		resync_send(chat);
		return;
	}
	ev_timer_stop(chat->loop, &chat->tmo);
	chat->phase = PH_IDLE;
	if (chat->head) {
		chat->synced = true; /* for this one command only */
		kick(chat);
		chat->synced = false;
	}
}

static void resync_final(struct at_chat *chat, const struct at_error *err)
{
	if (chat->phase == PH_RESYNC) {
		/* Any other final is the late reply; ours is still due. */
		if (err->type == AT_ERR_OK) {
			chat->phase = PH_QUIET;
			timer_start(chat, chat->quiet_ms);
		}
		return;
	}
	/* A final in the quiet window: the OK we took may have been the
	 * late reply's. Ask again. */
	resync_retry(chat);
}

/* --- classification ----------------------------------------------------- */

static bool is_echo(const struct cmd *c, const char *line, size_t len)
{
	if (len == c->text_len && strncasecmp(line, c->text, len) == 0)
		return true;
	return c->state == CMD_DATA_SENT && c->prompt &&
	       len == c->prompt_len && memcmp(line, c->prompt, len) == 0;
}

static bool match_prefix(const struct cmd *c, const char *line, size_t len)
{
	for (size_t i = 0; i < AT_CMD_MAX_PREFIXES && c->prefix[i]; i++)
		if (starts_with(line, len, c->prefix[i], c->prefix_len[i]))
			return true;
	return false;
}

/* A line while a command is in flight, in the order of chat.h. */
static void cmd_line(struct at_chat *chat, const char *line, size_t len)
{
	struct cmd *c = chat->head;
	struct at_error err;

	if (is_echo(c, line, len))
		return;
	if (match_final(chat, line, len, &err)) {
		/* A prompt command cannot succeed before its prompt: an OK (or
		 * "+CMGS: <mr>") now is the late answer of an earlier command
		 * (a stray final that completed it early), not ours. Taking it
		 * would record another SMS's reference and send nothing. */
		if (c->prompt && c->state == CMD_SENT && at_err_is_ok(&err)) {
			unsolicited(chat, line, len);
			return;
		}
		chat->timeouts = 0;
		complete(chat, err, line);
		return;
	}
	if (c->prompt && c->state == CMD_SENT && match_prefix(c, line, len)) {
		unsolicited(chat, line, len);
		return;
	}
	if (match_prefix(c, line, len)) {
		resp_add(chat, line, len, false);
		if (c->pdu_lines) {
			chat->pdu_owner = PDU_RESP;
			atsyn_hint_pdu(chat->syn);
		}
		return;
	}
	if (dispatch_urc(chat, line, len))
		return;
	if (c->bare)
		resp_add(chat, line, len, false);
	else
		unsolicited(chat, line, len);
}

static void resync_line(struct at_chat *chat, const char *line, size_t len)
{
	struct at_error err;

	if (len == 2 && strncasecmp(line, "AT", 2) == 0)
		return; /* echo */
	if (match_final(chat, line, len, &err)) {
		resync_final(chat, &err);
		return;
	}
	if (!dispatch_urc(chat, line, len))
		unsolicited(chat, line, len);
}

/* A non-PDU line arrived while a PDU line was due. A single-line URC in
 * between is dispatched and the PDU stays due; anything else ends the
 * wait (a header-only URC is delivered). Returns true if it consumed the
 * line. */
static bool pdu_interrupted(struct at_chat *chat, const char *line,
			    size_t len)
{
	const struct urc *u = find_urc(chat, line, len);

	if (u && !u->pdu && !(chat->phase == PH_CMD &&
			      match_prefix(chat->head, line, len))) {
		notify(chat, line, len, NULL, 0);
		if (alive(chat) && chat->pdu_owner != PDU_NONE)
			atsyn_hint_pdu(chat->syn);
		return true;
	}
	if (chat->pdu_owner == PDU_URC)
		flush_urc_header(chat);
	chat->pdu_owner = PDU_NONE;
	return !alive(chat);
}

static void classify(struct at_chat *chat, const char *line, size_t len)
{
	if (chat->pdu_owner != PDU_NONE && pdu_interrupted(chat, line, len))
		return;
	switch (chat->phase) {
	case PH_CMD:
		cmd_line(chat, line, len);
		break;
	case PH_RESYNC:
	case PH_QUIET:
		resync_line(chat, line, len);
		break;
	case PH_IDLE:
		if (!dispatch_urc(chat, line, len))
			unsolicited(chat, line, len);
		break;
	}
}

static void on_pdu(struct at_chat *chat, const char *line, size_t len)
{
	switch (chat->pdu_owner) {
	case PDU_RESP:
		chat->pdu_owner = PDU_NONE;
		resp_add(chat, line, len, true);
		break;
	case PDU_URC:
		chat->pdu_owner = PDU_NONE;
		notify(chat, chat->urc_hdr, chat->urc_hdr_len, line, len);
		break;
	case PDU_NONE:
		classify(chat, line, len);
		break;
	}
}

/* "> ": a prompt command gets its data and Ctrl-Z (ESC if cancelled). */
static void on_prompt(struct at_chat *chat)
{
	struct cmd *c = chat->head;

	trace(chat, AT_TRACE_PROMPT, "> ", 2);
	if (chat->phase != PH_CMD || !c->prompt || c->state != CMD_SENT) {
		trace(chat, AT_TRACE_STRAY, "> ", 2);
		return;
	}
	atsyn_expect_prompt(chat->syn, false);
	c->state = CMD_DATA_SENT;
	if (c->cancelled) {
		out_append(chat, (const char[]){ ESC }, 1);
	} else {
		out_append(chat, c->prompt, c->prompt_len);
		out_append(chat, (const char[]){ CTRL_Z }, 1);
	}
	out_flush(chat);
}

static void on_overflow(struct at_chat *chat, const char *line, size_t len)
{
	trace(chat, AT_TRACE_OVERFLOW, line, len);
	if (chat->phase == PH_CMD)
		chat->lost++;
	if (chat->pdu_owner == PDU_URC)
		flush_urc_header(chat);
	chat->pdu_owner = PDU_NONE;
}

static void on_syn_event(enum atsyn_event ev, const char *line, size_t len,
			 void *ctx)
{
	struct at_chat *chat = ctx;

	if (!alive(chat))
		return;
	switch (ev) {
	case ATSYN_LINE:
		trace(chat, AT_TRACE_RX, line, len);
		classify(chat, line, len);
		break;
	case ATSYN_PDU:
		trace(chat, AT_TRACE_RX_PDU, line, len);
		on_pdu(chat, line, len);
		break;
	case ATSYN_PROMPT:
		on_prompt(chat);
		break;
	case ATSYN_OVERFLOW:
		on_overflow(chat, line, len);
		break;
	}
}

static void on_syn_drop(uint8_t byte, void *ctx)
{
	struct at_chat *chat = ctx;

	if (alive(chat))
		trace(chat, AT_TRACE_DROP, (const char *)&byte, 1);
}

/* --- queue -------------------------------------------------------------- */

static void start_cmd(struct at_chat *chat)
{
	struct cmd *c = chat->head;

	c->state = CMD_SENT;
	chat->phase = PH_CMD;
	resp_reset(chat);
	if (c->prompt)
		atsyn_expect_prompt(chat->syn, true);
	out_append(chat, c->text, c->text_len);
	out_append(chat, "\r", 1);
	out_flush(chat);
	timer_start(chat, c->timeout_ms ? c->timeout_ms : chat->default_ms);
}

/* Puts the next command on the wire if the port is free. Never runs a
 * user callback. */
static void kick(struct at_chat *chat)
{
	if (chat->phase != PH_IDLE || !alive(chat) || !chat->head)
		return;
	if (!chat->synced) {
		chat->resync_attempts = 0;
		resync_send(chat);
		return;
	}
	start_cmd(chat);
}

/* Read EOF/error or write error: every pending command gets AT_ERR_IO,
 * then the disconnect callback. */
static void fail_io(struct at_chat *chat, int err)
{
	if (chat->failed)
		return;
	chat->failed = true;
	ev_io_stop(chat->loop, &chat->rio);
	ev_io_stop(chat->loop, &chat->wio);
	ev_timer_stop(chat->loop, &chat->tmo);
	chat->pdu_owner = PDU_NONE;
	chat->olen = chat->ooff = 0;
	while (chat->head && !chat->dead)
		complete(chat, (struct at_error){ AT_ERR_IO, -1 }, "");
	if (!chat->dead && chat->disc_fn)
		chat->disc_fn(err, chat->disc_ud);
}

/* --- libev callbacks ---------------------------------------------------- */

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct at_chat *chat = w->data;
	uint8_t buf[READ_CHUNK];
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(chat->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	enter(chat);
	if (n > 0)
		atsyn_feed(chat->syn, buf, (size_t)n);
	else
		fail_io(chat, n == 0 ? 0 : -errno);
	leave(chat);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct at_chat *chat = w->data;

	(void)loop;
	(void)revents;
	enter(chat);
	out_flush(chat);
	if (chat->werr)
		fail_io(chat, chat->werr);
	leave(chat);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct at_chat *chat = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	enter(chat);
	switch (chat->phase) {
	case PH_CMD:
		chat->synced = false;
		chat->timeouts++;
		out_discard(chat);
		/* A lost "> " leaves the modem reading PDU text: the "AT"
		 * of the resync would land in it. ESC ends that mode. */
		if (chat->head->prompt && chat->head->state == CMD_SENT) {
			out_append(chat, (const char[]){ ESC }, 1);
			out_flush(chat);
		}
		complete(chat, (struct at_error){ AT_ERR_TIMEOUT, -1 }, "");
		/* Resync now even with an empty queue, so the next command
		 * does not wait for it. */
		if (alive(chat) && chat->phase == PH_IDLE && !chat->synced) {
			chat->resync_attempts = 0;
			resync_send(chat);
		}
		break;
	case PH_RESYNC:
		out_discard(chat);
		resync_retry(chat);
		break;
	case PH_QUIET:
		chat->synced = true;
		chat->phase = PH_IDLE;
		kick(chat);
		break;
	case PH_IDLE:
		break;
	}
	leave(chat);
}

/* --- public API --------------------------------------------------------- */

struct at_chat *at_chat_new(struct ev_loop *loop, int fd)
{
	struct at_chat *chat;
	int fl;

	if (!loop || fd < 0 || (fl = fcntl(fd, F_GETFL)) < 0) {
		errno = EBADF;
		return NULL;
	}
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return NULL;
	chat = calloc(1, sizeof(*chat));
	if (!chat)
		return NULL;
	chat->syn = atsyn_new(on_syn_event, chat);
	if (!chat->syn) {
		free(chat);
		return NULL;
	}
	atsyn_set_drop(chat->syn, on_syn_drop, chat);
	chat->loop = loop;
	chat->fd = fd;
	chat->synced = true;
	chat->default_ms = AT_CHAT_DEFAULT_TIMEOUT_MS;
	chat->resync_ms = AT_CHAT_RESYNC_TIMEOUT_MS;
	chat->quiet_ms = AT_CHAT_RESYNC_QUIET_MS;
	chat->resync_tries = AT_CHAT_RESYNC_TRIES;
	ev_io_init(&chat->rio, on_read, fd, EV_READ);
	ev_io_init(&chat->wio, on_write, fd, EV_WRITE);
	ev_init(&chat->tmo, on_timer);
	chat->rio.data = chat->wio.data = chat->tmo.data = chat;
	ev_io_start(loop, &chat->rio);
	return chat;
}

/* Unlinks c (not in flight) from the queue. */
static void unlink_cmd(struct at_chat *chat, struct cmd *c)
{
	struct cmd **pp = &chat->head, *prev = NULL;

	while (*pp != c) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = c->next;
	if (chat->tail == c)
		chat->tail = prev;
	chat->n_cmds--;
}

/* Cancels c: destroy now; an in-flight command stays until its final. */
static void cancel_cmd(struct at_chat *chat, struct cmd *c)
{
	at_destroy_fn destroy = c->destroy;
	void *ud = c->userdata;

	if (c == chat->head && chat->phase == PH_CMD) {
		c->cancelled = true;
	} else {
		unlink_cmd(chat, c);
		free(c);
	}
	if (destroy)
		destroy(ud);
}

void at_chat_free(struct at_chat *chat)
{
	if (!chat || chat->dead)
		return;
	enter(chat);
	chat->dead = true;
	ev_io_stop(chat->loop, &chat->rio);
	ev_io_stop(chat->loop, &chat->wio);
	ev_timer_stop(chat->loop, &chat->tmo);
	while (chat->head) {
		struct cmd *c = chat->head;

		chat->head = c->next;
		if (c->destroy && !c->cancelled)
			c->destroy(c->userdata);
		free(c);
	}
	chat->tail = NULL;
	chat->n_cmds = 0;
	for (size_t i = 0; i < chat->n_urcs; i++) {
		struct urc *u = &chat->urcs[i];

		if (!u->removed && u->destroy) {
			u->removed = true;
			u->destroy(u->userdata);
		}
	}
	leave(chat);
}

static bool valid_text(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return len > 0;
}

/* One allocation: struct, text, prompt and prefixes. */
static struct cmd *cmd_new(const struct at_cmd *in)
{
	size_t tl = strlen(in->text), pl = in->prompt ? strlen(in->prompt) : 0;
	size_t need = sizeof(struct cmd) + tl + 1 + pl + 1, pfx[AT_CMD_MAX_PREFIXES];
	struct cmd *c;
	char *p;

	if (tl > AT_CMD_TEXT_MAX || !valid_text(in->text, tl) ||
	    pl > AT_CMD_PROMPT_MAX || (in->prompt && !valid_text(in->prompt, pl)))
		return NULL;
	for (size_t i = 0; i < AT_CMD_MAX_PREFIXES; i++) {
		pfx[i] = in->prefix[i] ? strlen(in->prefix[i]) : 0;
		need += pfx[i] + 1;
	}
	c = calloc(1, need);
	if (!c)
		return NULL;
	p = c->text;
	memcpy(p, in->text, tl + 1);
	c->text_len = tl;
	p += tl + 1;
	if (in->prompt) {
		memcpy(p, in->prompt, pl + 1);
		c->prompt = p;
		c->prompt_len = pl;
		p += pl + 1;
	}
	for (size_t i = 0, j = 0; i < AT_CMD_MAX_PREFIXES; i++) {
		if (!pfx[i])
			continue;
		memcpy(p, in->prefix[i], pfx[i] + 1);
		c->prefix[j] = p;
		c->prefix_len[j++] = pfx[i];
		p += pfx[i] + 1;
	}
	c->bare = in->bare;
	c->pdu_lines = in->pdu_lines;
	c->timeout_ms = in->timeout_ms;
	return c;
}

unsigned at_chat_send(struct at_chat *chat, const struct at_cmd *cmd,
		      at_chat_cb cb, void *userdata, at_destroy_fn destroy)
{
	struct cmd *c;

	if (!chat || !alive(chat) || !cmd || !cmd->text)
		return 0;
	c = cmd_new(cmd);
	if (!c)
		return 0;
	if (++chat->next_id == 0)
		chat->next_id = 1;
	c->id = chat->next_id;
	c->cb = cb;
	c->userdata = userdata;
	c->destroy = destroy;
	if (chat->tail)
		chat->tail->next = c;
	else
		chat->head = c;
	chat->tail = c;
	chat->n_cmds++;
	kick(chat);
	return c->id;
}

int at_chat_cancel(struct at_chat *chat, unsigned id)
{
	struct cmd *c;

	if (!chat || chat->dead || id == 0)
		return -ENOENT;
	for (c = chat->head; c; c = c->next)
		if (c->id == id && !c->cancelled)
			break;
	if (!c)
		return -ENOENT;
	enter(chat);
	cancel_cmd(chat, c);
	leave(chat);
	return 0;
}

void at_chat_cancel_all(struct at_chat *chat)
{
	struct cmd *c;

	if (!chat || chat->dead)
		return;
	enter(chat);
	/* Restart the scan after each destroy: it may have changed the
	 * queue. Cancelled in-flight entries are skipped, so this ends. */
	for (c = chat->head; c && !chat->dead;) {
		if (c->cancelled) {
			c = c->next;
			continue;
		}
		cancel_cmd(chat, c);
		c = chat->head;
	}
	leave(chat);
}

unsigned at_chat_register(struct at_chat *chat, const char *prefix,
			  bool pdu, at_notify_fn fn, void *userdata,
			  at_destroy_fn destroy)
{
	struct urc *u;
	char *copy;

	if (!chat || chat->dead || !prefix || !*prefix || !fn ||
	    strlen(prefix) > ATSYN_LINE_MAX)
		return 0;
	u = grow(chat->urcs, &chat->urc_cap, chat->n_urcs + 1, sizeof(*u));
	if (!u)
		return 0;
	chat->urcs = u;
	copy = strdup(prefix);
	if (!copy)
		return 0;
	if (++chat->next_urc_id == 0)
		chat->next_urc_id = 1;
	u = &chat->urcs[chat->n_urcs++];
	*u = (struct urc){ .id = chat->next_urc_id, .pdu = pdu, .fn = fn,
			   .userdata = userdata, .destroy = destroy,
			   .len = strlen(copy), .prefix = copy };
	return u->id;
}

int at_chat_unregister(struct at_chat *chat, unsigned id)
{
	struct urc *u = NULL;
	at_destroy_fn destroy;
	void *ud;

	if (!chat || chat->dead || id == 0)
		return -ENOENT;
	for (size_t i = 0; i < chat->n_urcs; i++)
		if (chat->urcs[i].id == id && !chat->urcs[i].removed)
			u = &chat->urcs[i];
	if (!u)
		return -ENOENT;
	destroy = u->destroy;
	ud = u->userdata;
	u->removed = true;
	chat->urc_dirty = true;
	if (!chat->urc_busy)
		urc_compact(chat);
	if (destroy) {
		enter(chat);
		destroy(ud);
		leave(chat);
	}
	return 0;
}

int at_chat_add_final(struct at_chat *chat, const char *prefix,
		      enum at_err_type type)
{
	struct extra_final *f;
	char *copy;

	if (!chat || !prefix || !*prefix || type == AT_ERR_TIMEOUT ||
	    type == AT_ERR_IO || (unsigned)type >= AT_ERR_TYPE_COUNT)
		return -EINVAL;
	copy = strdup(prefix);
	if (!copy)
		return -ENOMEM;
	f = realloc(chat->finals, (chat->n_finals + 1) * sizeof(*f));
	if (!f) {
		free(copy);
		return -ENOMEM;
	}
	chat->finals = f;
	f[chat->n_finals++] = (struct extra_final){ copy, strlen(copy), type };
	return 0;
}

void at_chat_set_unsolicited(struct at_chat *chat, at_unsolicited_fn fn,
			     void *userdata)
{
	chat->unsol_fn = fn;
	chat->unsol_ud = userdata;
}

void at_chat_set_disconnect(struct at_chat *chat, at_disconnect_fn fn,
			    void *userdata)
{
	chat->disc_fn = fn;
	chat->disc_ud = userdata;
}

void at_chat_set_trace(struct at_chat *chat, at_trace_fn fn, void *userdata)
{
	chat->trace_fn = fn;
	chat->trace_ud = userdata;
}

void at_chat_set_default_timeout(struct at_chat *chat, unsigned ms)
{
	if (ms)
		chat->default_ms = ms;
}

void at_chat_set_resync(struct at_chat *chat, unsigned timeout_ms,
			unsigned quiet_ms, unsigned tries)
{
	if (timeout_ms)
		chat->resync_ms = timeout_ms;
	if (quiet_ms)
		chat->quiet_ms = quiet_ms;
	if (tries)
		chat->resync_tries = tries;
}

void at_chat_unsync(struct at_chat *chat)
{
	chat->synced = false;
}

bool at_chat_is_synced(const struct at_chat *chat)
{
	return chat->synced;
}

unsigned at_chat_timeouts(const struct at_chat *chat)
{
	return chat->timeouts;
}

size_t at_chat_pending(const struct at_chat *chat)
{
	return chat->n_cmds;
}

bool at_chat_failed(const struct at_chat *chat)
{
	return chat->failed;
}
