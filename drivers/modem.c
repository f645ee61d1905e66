/* modem — see modem.h. One modem: transport + AT chat + the generic
 * 27.005/27.007 driver, with the family's quirks (drivers/quirks.h) as
 * data. Logging happens here, at the boundary; at/ stays silent. This
 * file is the lifecycle and the operations; modem_init.c the init
 * sequence; modem_priv.h what they share. */
#include "drivers/modem.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "at/pdu.h"
#include "daemon/log.h"
#include "drivers/modem_priv.h"

/* --- names ---------------------------------------------------------------- */

static const char *const state_names[MODEM_STATE_COUNT] = {
	[MODEM_OPENING] = "opening",
	[MODEM_INITIALIZING] = "initializing",
	[MODEM_WAITING_PIN] = "waiting_pin",
	[MODEM_WAITING_NETWORK] = "waiting_network",
	[MODEM_READY] = "ready",
	[MODEM_RESETTING] = "resetting",
	[MODEM_GONE] = "gone",
	[MODEM_PIN_REJECTED] = "pin_rejected",
	[MODEM_PUK_LOCKED] = "puk_locked",
	[MODEM_NO_SIM] = "no_sim",
};

const char *modem_state_name(enum modem_state state)
{
	if ((unsigned)state >= MODEM_STATE_COUNT)
		return "unknown";
	return state_names[state];
}

static const char *const reg_names[] = {
	[MODEM_REG_UNKNOWN] = "unknown",
	[MODEM_REG_NONE] = "none",
	[MODEM_REG_SEARCHING] = "searching",
	[MODEM_REG_DENIED] = "denied",
	[MODEM_REG_HOME] = "home",
	[MODEM_REG_ROAMING] = "roaming",
};

const char *modem_reg_name(enum modem_reg reg)
{
	if ((unsigned)reg >= sizeof(reg_names) / sizeof(reg_names[0]))
		return "unknown";
	return reg_names[reg];
}

/* 27.007 7.2 <stat> (also +CEREG): 6/7 are "SMS only", 9/10 "CSFB not
 * preferred"; both still carry SMS. 4 and 8 (emergency only) do not. */
static const enum modem_reg reg_stats[] = {
	[0] = MODEM_REG_NONE,    [1] = MODEM_REG_HOME,
	[2] = MODEM_REG_SEARCHING, [3] = MODEM_REG_DENIED,
	[4] = MODEM_REG_UNKNOWN, [5] = MODEM_REG_ROAMING,
	[6] = MODEM_REG_HOME,    [7] = MODEM_REG_ROAMING,
	[8] = MODEM_REG_NONE,    [9] = MODEM_REG_HOME,
	[10] = MODEM_REG_ROAMING,
};

static enum modem_reg reg_of(int stat)
{
	if (stat < 0 ||
	    (size_t)stat >= sizeof(reg_stats) / sizeof(reg_stats[0]))
		return MODEM_REG_UNKNOWN;
	return reg_stats[stat];
}

/* Which of two registrations says more: registered beats searching beats
 * denied beats none beats unknown. */
static int reg_rank(enum modem_reg r)
{
	static const int rank[] = {
		[MODEM_REG_UNKNOWN] = 0, [MODEM_REG_NONE] = 1,
		[MODEM_REG_DENIED] = 2,  [MODEM_REG_SEARCHING] = 3,
		[MODEM_REG_ROAMING] = 4, [MODEM_REG_HOME] = 5,
	};
	return rank[r];
}

static bool reg_ok(enum modem_reg r)
{
	return r == MODEM_REG_HOME || r == MODEM_REG_ROAMING;
}

/* --- small helpers -------------------------------------------------------- */

void modem_timer_start(struct modem *m, double after,
			void (*fn)(struct modem *m))
{
	ev_timer_stop(m->loop, &m->timer);
	m->timer_fn = fn;
	ev_timer_set(&m->timer, after, 0.);
	ev_timer_start(m->loop, &m->timer);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct modem *m = w->data;
	void (*fn)(struct modem *) = m->timer_fn;

	(void)loop;
	(void)revents;
	m->timer_fn = NULL;
	/* The chat that used the lost port is surely freed by now. */
	transport_close(m->stale_tr);
	m->stale_tr = NULL;
	if (fn)
		fn(m);
}

void modem_timer_stop(struct modem *m)
{
	ev_timer_stop(m->loop, &m->timer);
	m->timer_fn = NULL;
}

/* Queues an internal command; cb gets m. Returns false when the chat
 * refused it (failed port: the disconnect callback follows). */
bool modem_send_cmd(struct modem *m, const char *text, const char *prefix,
		     bool bare, unsigned timeout_ms, at_chat_cb cb)
{
	struct at_cmd cmd = {
		.text = text,
		.prefix = { prefix },
		.bare = bare,
		.timeout_ms = timeout_ms,
	};

	return m->chat && at_chat_send(m->chat, &cmd, cb, m, NULL) != 0;
}

/* --- state ---------------------------------------------------------------- */

static bool health_wanted(enum modem_state s)
{
	return s != MODEM_OPENING && s != MODEM_INITIALIZING &&
	       s != MODEM_RESETTING && s != MODEM_GONE;
}

/* Moves to `to`, logs it, and tells the daemon (last, so that the daemon
 * may call back into a consistent modem). */
void modem_set_state(struct modem *m, enum modem_state to, const char *why)
{
	enum modem_state from = m->info.state;
	bool bad = to == MODEM_PIN_REJECTED || to == MODEM_PUK_LOCKED ||
		   to == MODEM_NO_SIM || to == MODEM_GONE;

	if (from == to)
		return;
	m->info.state = to;
	log_write(bad ? LOG_LVL_WARN : LOG_LVL_INFO, "modem %s: %s -> %s: %s",
		  m->info.name, modem_state_name(from), modem_state_name(to),
		  why);
	if (health_wanted(to) && !health_wanted(from))
		ev_timer_again(m->loop, &m->health);
	else if (!health_wanted(to))
		ev_timer_stop(m->loop, &m->health);
	if (m->ev.state_changed)
		m->ev.state_changed(m->ev.user, m, from, to, why);
}

static void emit_storage_full(struct modem *m)
{
	log_warn("modem %s: message storage full", m->info.name);
	if (m->ev.storage_full)
		m->ev.storage_full(m->ev.user, m);
}


/* Common bookkeeping for every completed command: a full storage is
 * reported, and N consecutive timeouts reset the modem. Returns true when
 * a reset began (the caller stops). */
bool modem_note_result(struct modem *m, const struct at_result *res)
{
	char why[64];

	if (res->err.type == AT_ERR_CMS && res->err.code == 322)
		emit_storage_full(m);
	if (res->err.type != AT_ERR_TIMEOUT || !m->chat ||
	    at_chat_timeouts(m->chat) < m->cfg.health_timeouts)
		return false;
	snprintf(why, sizeof(why), "%u commands in a row timed out",
		 at_chat_timeouts(m->chat));
	modem_reset_begin(m, why);
	return true;
}

/* --- user operations: sends and storage ----------------------------------- */

/* The configured storage, else the family's. */
const char *modem_pref_storage(const struct modem *m)
{
	return m->cfg.storage ? m->cfg.storage : QUIRK(m->quirks, storage);
}

static void send_complete(struct modem *m, const struct modem_send_result *r)
{
	modem_send_cb cb = m->send_cb;
	void *user = m->send_user;

	m->sending = false;
	m->send_cb = NULL;
	m->send_user = NULL;
	if (r->ok)
		m->info.sent++;
	else
		m->info.failed++;
	cb(user, m, r);
}

/* Ends a send that will get no answer (reset, port lost, modem freed). */
static void send_abort(struct modem *m, const char *why)
{
	struct modem_send_result r = {
		.ok = false,
		.mr = -1,
		.err = { AT_ERR_IO, -1 },
		.transient = true,
		.error = why,
	};

	if (!m->sending)
		return;
	if (m->chat)
		at_chat_cancel(m->chat, m->send_id);
	send_complete(m, &r);
}

static void op_deliver(struct modem *m, struct modem_op *op, int rc,
		       const struct modem_sms_entry *v, size_t n)
{
	switch (op->kind) {
	case OP_READ:
		op->cb.read(op->user, m, rc, rc ? NULL : v);
		break;
	case OP_DELETE:
		op->cb.done(op->user, m, rc);
		break;
	case OP_LIST:
		op->cb.list(op->user, m, rc, v, n);
		break;
	}
}

static void ops_kick(struct modem *m);

/* Completes the running (head) operation and starts the next one. */
static void op_finish(struct modem *m, int rc, const struct modem_sms_entry *v,
		      size_t n)
{
	struct modem_op *op = m->ops_head;

	m->ops_head = op->next;
	if (!m->ops_head)
		m->ops_tail = NULL;
	m->op_running = false;
	op_deliver(m, op, rc, v, n);
	free(op);
	ops_kick(m);
}

/* Fails every queued storage operation (reset, port lost, freed). */
static void ops_abort(struct modem *m, int rc)
{
	while (m->ops_head) {
		struct modem_op *op = m->ops_head;

		m->ops_head = op->next;
		if (!m->ops_head)
			m->ops_tail = NULL;
		op_deliver(m, op, rc, NULL, 0);
		free(op);
	}
	m->op_running = false;
}

static int rc_of(const struct at_result *res)
{
	if (res_ok(res))
		return 0;
	if (res->err.type == AT_ERR_CMS && res->err.code == 321)
		return -ENOENT; /* invalid memory index: an empty slot */
	if (res->err.type == AT_ERR_TIMEOUT)
		return -ETIMEDOUT;
	return -EIO;
}

static void op_read_done(struct modem *m, const struct at_result *res)
{
	struct at_result_iter it;
	struct modem_sms_entry e = { m->ops_head->index, 0, NULL };
	const char *hex;
	size_t len;
	int rc = rc_of(res);

	at_result_iter_init(&it, res);
	if (!rc && at_result_next(&it, "+CMGR:") &&
	    at_result_number(&it, &e.stat) && at_result_pdu(&it, &hex, &len))
		e.pdu_hex = at_result_line(&it)->text;
	else if (!rc)
		rc = -ENOENT; /* "OK" alone: nothing in that slot */
	op_finish(m, rc, &e, 1);
}

static void op_list_done(struct modem *m, const struct at_result *res)
{
	struct at_result_iter it;
	struct modem_sms_entry *v = NULL;
	size_t n = 0;
	int rc = rc_of(res);
	const char *hex;
	size_t len;
	int idx;

	if (!rc && res->n_lines) {
		v = calloc(res->n_lines, sizeof(*v));
		if (!v)
			rc = -ENOMEM;
	}
	at_result_iter_init(&it, res);
	while (v && at_result_next(&it, "+CMGL:")) {
		if (!at_result_number(&it, &idx) ||
		    !at_result_number(&it, &v[n].stat) ||
		    !at_result_pdu(&it, &hex, &len)) {
			log_warn("modem %s: +CMGL: unreadable entry skipped",
				 m->info.name);
			continue;
		}
		v[n].index = (unsigned)idx;
		v[n++].pdu_hex = at_result_line(&it)->text;
	}
	op_finish(m, rc, v, n);
	free(v);
}

static void op_cmd_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	if (res_io(res))
		return; /* the disconnect callback fails the operation */
	if (m->ops_head->kind == OP_READ)
		op_read_done(m, res);
	else if (m->ops_head->kind == OP_LIST)
		op_list_done(m, res);
	else
		op_finish(m, rc_of(res), NULL, 0);
	modem_note_result(m, res);
}

/* Puts the head operation's own command on the wire. */
static bool op_send(struct modem *m)
{
	static const char *const fmt[] = {
		[OP_READ] = "AT+CMGR=%u",
		[OP_DELETE] = "AT+CMGD=%u",
		[OP_LIST] = "AT+CMGL=4",
	};
	static const char *const prefix[] = {
		[OP_READ] = "+CMGR:", [OP_DELETE] = NULL, [OP_LIST] = "+CMGL:",
	};
	struct modem_op *op = m->ops_head;
	char text[32];
	struct at_cmd cmd = {
		.text = text,
		.prefix = { prefix[op->kind] },
		.pdu_lines = op->kind != OP_DELETE,
	};

	snprintf(text, sizeof(text), fmt[op->kind], op->index);
	return at_chat_send(m->chat, &cmd, op_cmd_cb, m, NULL) != 0;
}

static void op_switch_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	char e[AT_ERR_FMT_MAX];

	if (res_io(res))
		return;
	if (!res_ok(res)) {
		log_warn("modem %s: cannot switch to storage %s: %s",
			 m->info.name, m->ops_head->mem,
			 err_text(&res->err, e, sizeof(e)));
		m->cur_mem[0] = '\0'; /* unknown now */
		op_finish(m, -EIO, NULL, 0);
		modem_note_result(m, res);
		return;
	}
	snprintf(m->cur_mem, sizeof(m->cur_mem), "%s", m->ops_head->mem);
	if (!op_send(m))
		op_finish(m, -EIO, NULL, 0);
}

/* Starts the head operation: a +CPMS <mem1> switch first when it needs
 * another storage than the current one. Returns false when the chat
 * refused the command (the operation is not running then). */
static bool op_start(struct modem *m)
{
	struct modem_op *op = m->ops_head;
	const char *want = op->mem[0] ? op->mem : modem_pref_storage(m);
	char text[32];

	m->op_running = true;
	/* Unknown <mem1> (+CPMS refused at init) and no explicit mem: the
	 * modem's own default is all there is. */
	if (strcmp(want, m->cur_mem) == 0 || (!op->mem[0] && !m->cur_mem[0])) {
		m->op_running = op_send(m);
		return m->op_running;
	}
	snprintf(op->mem, sizeof(op->mem), "%s", want);
	snprintf(text, sizeof(text), "AT+CPMS=\"%s\"", want);
	m->op_running =
	    modem_send_cmd(m, text, "+CPMS:", false, 0, op_switch_cb);
	return m->op_running;
}

static void ops_kick(struct modem *m)
{
	while (!m->op_running && m->ops_head && m->chat &&
	       !at_chat_failed(m->chat))
		if (!op_start(m))
			op_finish(m, -EIO, NULL, 0);
}

static bool mem_valid(const char *mem)
{
	size_t n = mem ? strlen(mem) : 0;

	if (!mem)
		return true;
	if (n < 2 || n >= MEM_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isupper((unsigned char)mem[i]) && mem[i] != '_')
			return false;
	return true;
}

static bool storage_usable(const struct modem *m)
{
	return m->chat && !at_chat_failed(m->chat) && m->setup_done &&
	       (m->info.state == MODEM_READY ||
		m->info.state == MODEM_WAITING_NETWORK);
}

/* Appends an operation; cb is the typed callback cast to void (*)(void)
 * and cast back by kind. Never calls back before returning. */
static int op_queue(struct modem *m, enum op_kind kind, const char *mem,
		    unsigned index, void (*cb)(void), void *user)
{
	struct modem_op *op;

	if (!cb || !mem_valid(mem))
		return -EINVAL;
	if (!storage_usable(m))
		return -EAGAIN;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->kind = kind;
	op->index = index;
	op->user = user;
	if (mem)
		snprintf(op->mem, sizeof(op->mem), "%s", mem);
	if (kind == OP_READ)
		op->cb.read = (modem_read_cb)cb;
	else if (kind == OP_DELETE)
		op->cb.done = (modem_done_cb)cb;
	else
		op->cb.list = (modem_list_cb)cb;
	if (m->ops_tail) {
		m->ops_tail->next = op;
		m->ops_tail = op;
		return 0; /* starts when the one before it completes */
	}
	m->ops_head = m->ops_tail = op;
	if (!m->op_running && !op_start(m)) {
		m->ops_head = m->ops_tail = NULL;
		free(op);
		return -ENOMEM;
	}
	return 0;
}

/* --- registration --------------------------------------------------------- */

/* <stat> from a +CREG:/+CEREG: line, answer or URC: an answer is
 * "<n>,<stat>[,...]", a URC "<stat>[,"<lac>",...]" (its second field, when
 * present, is a string). A URC can land inside an answer; the last line
 * wins. Returns false when no line parses. */
bool modem_parse_reg(const struct at_result *res, const char *prefix,
		      int *stat)
{
	struct at_result_iter it;
	bool found = false;
	int a, b;

	at_result_iter_init(&it, res);
	while (at_result_next(&it, prefix)) {
		if (!at_result_number(&it, &a))
			continue;
		*stat = at_result_number(&it, &b) ? b : a;
		found = true;
	}
	return found;
}

static void query_operator(struct modem *m);
static void network_poll(struct modem *m);

static void become_ready(struct modem *m, const char *why)
{
	m->backoff = m->cfg.reopen_min;
	modem_timer_stop(m);
	query_operator(m);
	modem_set_state(m, MODEM_READY, why);
	if (m->full_at_init && m->info.state == MODEM_READY) {
		m->full_at_init = false;
		emit_storage_full(m);
	}
}

/* Re-derives info.reg from the CS and EPS registrations and, once set up,
 * moves between ready and waiting_network. */
void modem_reg_evaluate(struct modem *m)
{
	enum modem_reg cs = reg_of(m->creg), eps = reg_of(m->cereg);
	enum modem_reg r = reg_rank(eps) > reg_rank(cs) ? eps : cs;
	enum modem_state st = m->info.state;
	char why[48];

	m->info.reg = r;
	if (!m->setup_done)
		return;
	snprintf(why, sizeof(why), "registration %s", modem_reg_name(r));
	if (reg_ok(r) &&
	    (st == MODEM_WAITING_NETWORK || st == MODEM_INITIALIZING)) {
		become_ready(m, why);
	} else if (!reg_ok(r) &&
		   (st == MODEM_READY || st == MODEM_INITIALIZING)) {
		modem_timer_start(m, m->cfg.network_poll, network_poll);
		modem_set_state(m, MODEM_WAITING_NETWORK, why);
	}
}

static void creg_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	if (res_io(res) || modem_note_result(m, res))
		return;
	if (modem_parse_reg(res, "+CREG:", &m->creg))
		modem_reg_evaluate(m);
}

static void cereg_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	if (res_io(res) || modem_note_result(m, res))
		return;
	if (modem_parse_reg(res, "+CEREG:", &m->cereg))
		modem_reg_evaluate(m);
}

/* waiting_network: ask again every network_poll, in case a URC was lost
 * or the modem does not send them. */
static void network_poll(struct modem *m)
{
	if (m->info.state != MODEM_WAITING_NETWORK)
		return;
	modem_send_cmd(m, "AT+CREG?", "+CREG:", false, 0, creg_cb);
	modem_send_cmd(m, "AT+CEREG?", "+CEREG:", false, 0, cereg_cb);
	modem_timer_start(m, m->cfg.network_poll, network_poll);
}

static void cops_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	struct at_result_iter it;
	int mode, format;

	if (res_io(res) || modem_note_result(m, res))
		return;
	at_result_iter_init(&it, res);
	if (at_result_next(&it, "+COPS:") && at_result_number(&it, &mode) &&
	    at_result_number(&it, &format))
		at_result_string_copy(&it, m->info.operator_name,
				      sizeof(m->info.operator_name));
}

/* The network's name, in the long alphanumeric format (AT+COPS=3,0 at
 * init): "+COPS: 0,0,\"Movistar\",7". */
static void query_operator(struct modem *m)
{
	modem_send_cmd(m, "AT+COPS?", "+COPS:", false, 0, cops_cb);
}

/* --- health --------------------------------------------------------------- */

static void set_signal(struct modem *m, int rssi)
{
	m->info.signal = rssi >= 0 && rssi <= 31 ? rssi : -1;
}

void modem_csq_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	struct at_result_iter it;
	int rssi;

	if (res_io(res) || modem_note_result(m, res))
		return;
	at_result_iter_init(&it, res);
	if (at_result_next(&it, "+CSQ:") && at_result_number(&it, &rssi))
		set_signal(m, rssi); /* "+CSQ: 21,99"; 99 = unknown */
}

/* Every health_interval: AT+CSQ, unless commands are pending anyway (they
 * time out themselves if the modem is stuck). */
static void health_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct modem *m = w->data;

	(void)loop;
	(void)revents;
	if (!m->chat || at_chat_failed(m->chat) || at_chat_pending(m->chat))
		return;
	modem_send_cmd(m, "AT+CSQ", "+CSQ:", false, 0, modem_csq_cb);
}

/* --- URCs ----------------------------------------------------------------- */

static void urc_ignore(const struct at_result *res, void *ud)
{
	(void)res;
	(void)ud;
}

/* "+CMTI: \"SM\",3" / "+CDSI: \"SR\",2": mem and index. */
static bool parse_mem_index(const struct at_result *res, const char *prefix,
			    char *mem, size_t memlen, unsigned *index)
{
	struct at_result_iter it;
	int idx;

	at_result_iter_init(&it, res);
	if (!at_result_next(&it, prefix) ||
	    !at_result_string_copy(&it, mem, memlen) ||
	    !at_result_number(&it, &idx) || idx < 0)
		return false;
	*index = (unsigned)idx;
	return true;
}

static void urc_cmti(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	char mem[MEM_MAX];
	unsigned index;

	if (!parse_mem_index(res, "+CMTI:", mem, sizeof(mem), &index)) {
		log_warn("modem %s: unreadable %s", m->info.name,
			 res->lines[0].text);
		return;
	}
	log_debug("modem %s: SMS stored at %s %u", m->info.name, mem, index);
	if (m->ev.sms_stored)
		m->ev.sms_stored(m->ev.user, m, mem, index);
}

static void urc_cdsi(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	char mem[MEM_MAX];
	unsigned index;

	if (!parse_mem_index(res, "+CDSI:", mem, sizeof(mem), &index)) {
		log_warn("modem %s: unreadable %s", m->info.name,
			 res->lines[0].text);
		return;
	}
	if (m->ev.report_stored)
		m->ev.report_stored(m->ev.user, m, mem, index);
}

/* +CMT / +CDS: the header, then the PDU line. Each gets AT+CNMA: a modem
 * that waits for it (27.005 3.4.4) turns <mt> and <ds> off when it never
 * comes, and acking every time is simpler than tracking which modem
 * waits; where no ack was expected the answer is "+CMS ERROR: 340", which
 * changes nothing. The daemon has committed the message when its callback
 * returns, so the ack goes after it. */
static void urc_direct(struct modem *m, const struct at_result *res,
		       void (*fn)(void *, struct modem *, const char *))
{
	if (res->n_lines < 2 || !res->lines[1].pdu) {
		log_warn("modem %s: %s without its PDU line", m->info.name,
			 res->lines[0].text);
		return;
	}
	if (fn)
		fn(m->ev.user, m, res->lines[1].text);
	modem_send_cmd(m, "AT+CNMA", NULL, false, 0, NULL);
}

static void urc_cmt(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	urc_direct(m, res, m->ev.sms_direct);
}

static void urc_cds(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	urc_direct(m, res, m->ev.report_direct);
}

static void urc_creg(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	if (modem_parse_reg(res, "+CREG:", &m->creg))
		modem_reg_evaluate(m);
}

static void urc_cereg(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	if (modem_parse_reg(res, "+CEREG:", &m->cereg))
		modem_reg_evaluate(m);
}

static void urc_signal(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	const char *line = res->lines[0].text;
	struct at_result_iter it;
	int rssi;

	/* Whichever family's signal URC this is (auto may have attached more
	 * than one). */
	for (size_t i = 0; quirks_table[i]; i++) {
		const char *p = quirks_table[i]->signal_urc;

		if (!p || strncmp(line, p, strlen(p)) != 0)
			continue;
		at_result_iter_init(&it, res);
		if (at_result_next(&it, p) && at_result_number(&it, &rssi))
			set_signal(m, rssi);
		return;
	}
}

/* 27.007 8.10 "+CIEV: <ind>,<value>": the "smsfull" indicator (its index
 * comes from AT+CIND=? at init) going to 1 means the storage is full. */
static void urc_ciev(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	struct at_result_iter it;
	int ind, value;

	at_result_iter_init(&it, res);
	if (m->ciev_smsfull && at_result_next(&it, "+CIEV:") &&
	    at_result_number(&it, &ind) && at_result_number(&it, &value) &&
	    ind == m->ciev_smsfull && value == 1)
		emit_storage_full(m);
}

/* A boot line once the modem was set up: it rebooted on its own (power
 * dip, watchdog) and forgot PDU mode, storage and indications. */
static void urc_boot(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	char why[64];

	if (!m->setup_done)
		return;
	snprintf(why, sizeof(why), "modem rebooted (\"%.32s\")",
		 res->lines[0].text);
	at_chat_cancel_all(m->chat);
	send_abort(m, "modem rebooted");
	ops_abort(m, -EIO);
	modem_init_begin(m, why);
}

static void urc_memfull(const struct at_result *res, void *ud)
{
	(void)res;
	emit_storage_full(ud);
}

static void on_unsolicited(const char *line, size_t len, void *ud)
{
	struct modem *m = ud;

	log_debug("modem %s: unsolicited: %.*s", m->info.name, (int)len, line);
}

/* Debug trace of the wire. The PIN never reaches the log, not even at
 * debug: a line carrying AT+CPIN="..." is cut after the '='. */
static void on_trace(enum at_trace what, const char *data, size_t len,
		     void *ud)
{
	static const char *const dir[] = {
		[AT_TRACE_RX] = "<", [AT_TRACE_RX_PDU] = "<pdu",
		[AT_TRACE_PROMPT] = "<prompt", [AT_TRACE_TX] = ">",
		[AT_TRACE_DROP] = "drop", [AT_TRACE_OVERFLOW] = "overflow",
		[AT_TRACE_STRAY] = "stray",
	};
	struct modem *m = ud;
	const char *pin = memmem(data, len, "+CPIN=", 6);
	const char *d = (unsigned)what < sizeof(dir) / sizeof(dir[0]) ?
		dir[what] : "?";

	if (pin)
		len = (size_t)(pin - data) + 6;
	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (!len)
		return; /* the CR after a command */
	log_debug("modem %s: %s %.*s%s", m->info.name, d, (int)len, data,
		  pin ? "<hidden>" : "");
}

/* --- port, reset, re-open ------------------------------------------------- */

static int port_open(struct modem *m, char *err, size_t errlen);

static void reopen(struct modem *m)
{
	char err[TRANSPORT_ERR_MAX];
	double delay = m->backoff;

	if (port_open(m, err, sizeof(err)) == 0) {
		m->reopen_tries = 0;
		modem_init_begin(m, "port opened");
		return;
	}
	/* The first failure says why; the rest repeat it at debug. */
	log_write(m->reopen_tries++ ? LOG_LVL_DEBUG : LOG_LVL_INFO,
		  "modem %s: cannot open: %s; retrying, backing off to %.0f s",
		  m->info.name, err, m->cfg.reopen_max);
	m->backoff =
	    delay * 2 < m->cfg.reopen_max ? delay * 2 : m->cfg.reopen_max;
	modem_timer_start(m, delay, reopen);
}

/* Gives up the port (lost, or dead to AT and reset commands): fails what
 * was pending, and re-opens after the backoff. The chat may be the one
 * calling us, so its fd is closed only from the next timer callback. */
void modem_port_lost(struct modem *m, enum modem_state st, const char *why)
{
	double delay = m->backoff;

	at_chat_free(m->chat);
	m->chat = NULL;
	transport_close(m->stale_tr);
	m->stale_tr = m->tr;
	m->tr = NULL;
	m->setup_done = false;
	m->info.reg = MODEM_REG_UNKNOWN;
	m->info.signal = -1;
	send_abort(m, st == MODEM_GONE ? "modem gone" : "modem reset");
	ops_abort(m, -ENODEV);
	m->backoff =
	    delay * 2 < m->cfg.reopen_max ? delay * 2 : m->cfg.reopen_max;
	modem_timer_start(m, delay, reopen);
	if (m->info.state == st)
		log_info("modem %s: %s; re-opening in %.1f s", m->info.name,
			 why, delay);
	modem_set_state(m, st, why);
}

static void on_disconnect(int err, void *ud)
{
	char why[96];

	snprintf(why, sizeof(why), "port lost (%s)",
		 err ? strerror(-err) : "end of file or hang-up");
	modem_port_lost(ud, MODEM_GONE, why);
}

static void reset_send(struct modem *m);

static void reset_done(struct modem *m)
{
	modem_init_begin(m, "modem reset");
}

static void reset_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	const char *cmd = QUIRK(m->quirks, reset_cmds)[m->reset_i];
	char e[AT_ERR_FMT_MAX];

	if (res_io(res))
		return; /* USB modems vanish while rebooting: gone, re-open */
	if (res_ok(res)) {
		/* Whatever the modem said before it rebooted is stale. */
		at_chat_unsync(m->chat);
		modem_timer_start(m, QUIRK(m->quirks, reset_wait), reset_done);
		return;
	}
	if (res->err.type == AT_ERR_TIMEOUT) {
		modem_port_lost(m, MODEM_RESETTING,
				"no answer to the reset either");
		return;
	}
	log_warn("modem %s: %s refused: %s", m->info.name, cmd,
		 err_text(&res->err, e, sizeof(e)));
	m->reset_i++;
	reset_send(m);
}

static void reset_send(struct modem *m)
{
	const char *cmd = QUIRK(m->quirks, reset_cmds)[m->reset_i];

	if (!cmd) {
		modem_port_lost(m, MODEM_RESETTING,
				"no reset command was accepted");
		return;
	}
	log_info("modem %s: resetting with %s", m->info.name, cmd);
	modem_send_cmd(m, cmd, NULL, false, 0, reset_cb);
}

/* The modem stopped answering: fail what is pending, and reset it with the
 * family's command (then re-init), or re-open the port if that fails. */
void modem_reset_begin(struct modem *m, const char *why)
{
	modem_timer_stop(m);
	m->setup_done = false;
	if (m->chat)
		at_chat_cancel_all(m->chat);
	send_abort(m, "modem reset");
	ops_abort(m, -ETIMEDOUT);
	m->reset_i = 0;
	modem_set_state(m, MODEM_RESETTING, why);
	if (m->info.state == MODEM_RESETTING && m->chat)
		reset_send(m);
}

/* --- the chat ------------------------------------------------------------- */

static bool reg_urc(struct modem *m, const char *prefix, bool pdu,
		    at_notify_fn fn)
{
	return at_chat_register(m->chat, prefix, pdu, fn, m, NULL) != 0;
}

static size_t quirk_index(const struct modem_quirks *q)
{
	size_t i = 0;

	while (quirks_table[i] && quirks_table[i] != q)
		i++;
	return i;
}

bool modem_quirk_attach(struct modem *m, const struct modem_quirks *q)
{
	unsigned bit = 1u << quirk_index(q);
	bool ok = true;

	if (!m->chat || (m->attached & bit))
		return true;
	m->attached |= bit;
	if (q->signal_urc)
		ok &= reg_urc(m, q->signal_urc, false, urc_signal);
	for (const char *const *p = q->memfull_urcs; p && *p; p++)
		ok &= reg_urc(m, *p, false, urc_memfull);
	return ok;
}

/* Tier a knobs of q: its noise swallowed, its boot lines watched, its
 * finals known. With `all` (driver=auto, family not known yet) its signal
 * and memory-full URCs are swallowed too, so that they cannot pollute the
 * identity answers. */
static bool quirk_knobs(struct modem *m, const struct modem_quirks *q, bool all)
{
	bool ok = true;

	for (const char *const *p = q->ignore_urcs; p && *p; p++)
		ok &= reg_urc(m, *p, false, urc_ignore);
	for (const char *const *p = q->boot_urcs; p && *p; p++)
		ok &= reg_urc(m, *p, false, urc_boot);
	for (const char *const *p = q->memfull_urcs; all && p && *p; p++)
		ok &= reg_urc(m, *p, false, urc_ignore);
	if (all && q->signal_urc)
		ok &= reg_urc(m, q->signal_urc, false, urc_ignore);
	for (const struct quirk_final *f = q->finals; f && f->prefix; f++)
		ok &= at_chat_add_final(m->chat, f->prefix, f->type) == 0;
	return ok;
}

static const struct {
	const char *prefix;
	bool pdu;
	at_notify_fn fn;
} generic_urcs[] = {
	{ "+CMTI:", false, urc_cmti },   { "+CDSI:", false, urc_cdsi },
	{ "+CMT:", true, urc_cmt },      { "+CDS:", true, urc_cds },
	{ "+CREG:", false, urc_creg },   { "+CEREG:", false, urc_cereg },
	{ "+CIEV:", false, urc_ciev },
};

static int chat_attach(struct modem *m)
{
	unsigned t = secs_to_ms(m->cfg.command_timeout);
	bool ok = true;

	m->chat = at_chat_new(m->loop, transport_fd(m->tr));
	if (!m->chat)
		return -ENOMEM;
	m->attached = 0;
	at_chat_set_default_timeout(m->chat, t);
	at_chat_set_resync(m->chat, t < SYNC_TIMEOUT_MS ? t : SYNC_TIMEOUT_MS,
			   0, 0);
	at_chat_set_disconnect(m->chat, on_disconnect, m);
	at_chat_set_unsolicited(m->chat, on_unsolicited, m);
	if (log_enabled(LOG_LVL_DEBUG))
		at_chat_set_trace(m->chat, on_trace, m);
	for (size_t i = 0; i < sizeof(generic_urcs) / sizeof(generic_urcs[0]);
	     i++)
		ok &= reg_urc(m, generic_urcs[i].prefix, generic_urcs[i].pdu,
			      generic_urcs[i].fn);
	for (size_t i = 0; quirks_table[i]; i++)
		if (!m->forced || i == 0 || quirks_table[i] == m->forced)
			ok &= quirk_knobs(m, quirks_table[i], !m->forced);
	if (m->quirks != &quirks_generic)
		ok &= modem_quirk_attach(m, m->quirks);
	return ok ? 0 : -ENOMEM;
}

static int port_open(struct modem *m, char *err, size_t errlen)
{
	int rc = transport_open(m->cfg.device, m->cfg.baud, m->cfg.flow, &m->tr,
				err, errlen);

	if (rc)
		return rc;
	rc = chat_attach(m);
	if (rc) {
		snprintf(err, errlen, "%s: out of memory", m->cfg.device);
		at_chat_free(m->chat);
		m->chat = NULL;
		transport_close(m->tr);
		m->tr = NULL;
	}
	return rc;
}

/* --- public --------------------------------------------------------------- */

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes the reason to err (when given) and returns -EINVAL. */
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool storage_valid(const char *s)
{
	return !s || !*s || strcmp(s, "SM") == 0 || strcmp(s, "ME") == 0 ||
	       strcmp(s, "MT") == 0;
}

int modem_config_check(const struct modem_config *cfg, char *err,
		       size_t errlen)
{
	int rc;

	if (!cfg->name || !*cfg->name)
		return bad(err, errlen, "name: empty");
	rc = transport_device_check(cfg->device, err, errlen);
	if (rc)
		return rc;
	if (cfg->baud && !transport_baud_valid(cfg->baud))
		return bad(err, errlen, "baud: %d is not a standard rate",
			   cfg->baud);
	if ((unsigned)cfg->flow > TRANSPORT_FLOW_XONXOFF)
		return bad(err, errlen, "flow_control: invalid");
	if (!quirks_name_valid(cfg->driver))
		return bad(err, errlen, "driver: unknown driver '%s' (%s)",
			   cfg->driver, quirks_names());
	if (!storage_valid(cfg->storage))
		return bad(err, errlen, "storage: '%s' is not SM, ME or MT",
			   cfg->storage);
	if (cfg->command_timeout < 0 || cfg->send_timeout < 0 ||
	    cfg->health_interval < 0 || cfg->network_poll < 0 ||
	    cfg->reopen_min < 0 || cfg->reopen_max < 0)
		return bad(err, errlen, "timeouts: negative");
	if (cfg->pin && *cfg->pin &&
	    (strspn(cfg->pin, "0123456789") != strlen(cfg->pin) ||
	     strlen(cfg->pin) < 4 || strlen(cfg->pin) > 8))
		return bad(err, errlen, "pin: 4 to 8 digits");
	return 0;
}

/* NULL for NULL and "" (so "unset" has one spelling), else a copy. */
static bool dup_opt(const char *s, const char **out)
{
	*out = NULL;
	if (!s || !*s)
		return true;
	*out = strdup(s);
	return *out != NULL;
}

static double dflt(double v, double d)
{
	return v > 0 ? v : d;
}

static bool config_copy(struct modem *m, const struct modem_config *c)
{
	bool ok = true;

	m->cfg = *c;
	ok &= dup_opt(c->name, &m->cfg.name);
	ok &= dup_opt(c->device, &m->cfg.device);
	ok &= dup_opt(c->driver, &m->cfg.driver);
	ok &= dup_opt(c->pin, &m->cfg.pin);
	ok &= dup_opt(c->smsc, &m->cfg.smsc);
	ok &= dup_opt(c->storage, &m->cfg.storage);
	m->cfg.command_timeout = dflt(c->command_timeout, 5);
	m->cfg.send_timeout = dflt(c->send_timeout, 60);
	m->cfg.health_interval = dflt(c->health_interval, 30);
	m->cfg.health_timeouts = c->health_timeouts ? c->health_timeouts : 3;
	m->cfg.network_poll = dflt(c->network_poll, 10);
	m->cfg.reopen_min = dflt(c->reopen_min, 0.5);
	m->cfg.reopen_max = dflt(c->reopen_max, 30);
	if (m->cfg.reopen_max < m->cfg.reopen_min)
		m->cfg.reopen_max = m->cfg.reopen_min;
	return ok;
}

static void config_release(struct modem_config *c)
{
	if (c->pin)
		explicit_bzero((char *)c->pin, strlen(c->pin));
	free((char *)c->name);
	free((char *)c->device);
	free((char *)c->driver);
	free((char *)c->pin);
	free((char *)c->smsc);
	free((char *)c->storage);
}

struct modem *modem_new(struct ev_loop *loop, const struct modem_config *cfg,
			const struct modem_events *ev)
{
	struct modem *m;

	if (!loop || !cfg || modem_config_check(cfg, NULL, 0))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	if (!config_copy(m, cfg)) {
		config_release(&m->cfg);
		free(m);
		return NULL;
	}
	m->loop = loop;
	if (ev)
		m->ev = *ev;
	m->forced = quirks_find(m->cfg.driver);
	m->quirks = m->forced ? m->forced : &quirks_generic;
	m->info.name = m->cfg.name;
	m->info.device = m->cfg.device;
	m->info.driver = m->forced ? m->forced->name : "auto";
	m->info.state = MODEM_OPENING;
	m->info.signal = -1;
	m->creg = m->cereg = -1;
	m->backoff = m->cfg.reopen_min;
	ev_init(&m->timer, timer_cb);
	m->timer.data = m;
	ev_init(&m->health, health_cb);
	m->health.repeat = m->cfg.health_interval;
	m->health.data = m;
	return m;
}

void modem_free(struct modem *m)
{
	if (!m)
		return;
	ev_timer_stop(m->loop, &m->timer);
	ev_timer_stop(m->loop, &m->health);
	at_chat_free(m->chat);
	m->chat = NULL;
	send_abort(m, "cancelled");
	ops_abort(m, -ECANCELED);
	transport_close(m->tr);
	transport_close(m->stale_tr);
	config_release(&m->cfg);
	free(m);
}

int modem_start(struct modem *m, char *err, size_t errlen)
{
	char buf[TRANSPORT_ERR_MAX];
	int rc;

	if (m->chat || m->timer_fn)
		return -EALREADY;
	rc = port_open(m, buf, sizeof(buf));
	if (err && errlen)
		snprintf(err, errlen, "%s", rc ? buf : "");
	if (rc == 0) {
		modem_init_begin(m, "port opened");
		return 0;
	}
	if (rc == -EBUSY || rc == -EINVAL || rc == -ENOTTY)
		return rc;
	modem_port_lost(m, MODEM_GONE, buf);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* SMSC length octet first, then exactly tpdu_len octets; hex only. */
static bool pdu_hex_valid(const char *hex, unsigned tpdu_len)
{
	size_t n = strnlen(hex, PDU_HEX_MAX);

	if (n < 4 || n >= PDU_HEX_MAX || n % 2 || tpdu_len == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (hexval(hex[i]) < 0)
			return false;
	return n / 2 == 1 + (unsigned)(hexval(hex[0]) * 16 + hexval(hex[1])) +
			       tpdu_len;
}

static void send_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	struct modem_send_result r = { .mr = -1, .err = res->err, .error = "" };
	char text[AT_ERR_FMT_MAX];
	struct at_result_iter it;
	int mr;

	if (res_io(res))
		return; /* modem_port_lost() ends the send */
	if (res_ok(res)) {
		r.ok = true;
		at_result_iter_init(&it, res);
		if (at_result_next(&it, "+CMGS:") &&
		    at_result_number(&it, &mr) && mr >= 0 && mr <= 255)
			r.mr = mr;
		else
			log_warn("modem %s: +CMGS answer without a message "
				 "reference", m->info.name);
	} else {
		r.transient = at_err_is_transient(&res->err);
		r.error = err_text(&res->err, text, sizeof(text));
	}
	send_complete(m, &r);
	modem_note_result(m, res);
}

int modem_send_pdu(struct modem *m, const char *hex, unsigned tpdu_len,
		   modem_send_cb cb, void *user)
{
	struct at_cmd cmd = {
		.text = m->send_text,
		.prefix = { "+CMGS:" },
		.prompt = hex,
		.timeout_ms = secs_to_ms(m->cfg.send_timeout),
	};

	if (!cb || !hex || !pdu_hex_valid(hex, tpdu_len))
		return -EINVAL;
	if (m->info.state != MODEM_READY || !m->chat)
		return -EAGAIN;
	if (m->sending)
		return -EBUSY;
	snprintf(m->send_text, sizeof(m->send_text), "AT+CMGS=%u", tpdu_len);
	m->send_id = at_chat_send(m->chat, &cmd, send_cb, m, NULL);
	if (!m->send_id)
		return -EAGAIN;
	m->sending = true;
	m->send_cb = cb;
	m->send_user = user;
	return 0;
}

int modem_read_sms(struct modem *m, const char *mem, unsigned index,
		   modem_read_cb cb, void *user)
{
	return op_queue(m, OP_READ, mem, index, (void (*)(void))cb, user);
}

int modem_delete_sms(struct modem *m, const char *mem, unsigned index,
		     modem_done_cb cb, void *user)
{
	return op_queue(m, OP_DELETE, mem, index, (void (*)(void))cb, user);
}

int modem_list_sms(struct modem *m, const char *mem, modem_list_cb cb,
		   void *user)
{
	return op_queue(m, OP_LIST, mem, 0, (void (*)(void))cb, user);
}

const struct modem_info *modem_get_info(const struct modem *m)
{
	return &m->info;
}

const char *modem_name(const struct modem *m)
{
	return m->info.name;
}

enum modem_state modem_get_state(const struct modem *m)
{
	return m->info.state;
}

bool modem_is_ready(const struct modem *m)
{
	return m->info.state == MODEM_READY;
}

bool modem_busy(const struct modem *m)
{
	return m->sending;
}
