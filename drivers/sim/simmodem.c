/* simmodem — see simmodem.h. This file: lifecycle, the input state
 * machine, output framing and the network registration. */
#include "drivers/sim/simmodem.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/log.h"
#include "drivers/sim/simmodem_priv.h"

static void on_reg_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void on_reset_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void on_send_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void on_rssi_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void feed(struct simmodem *m, const char *buf, size_t len);

/* --- buffers ----------------------------------------------------------- */

int simbuf_append(struct simbuf *b, const char *d, size_t len)
{
	size_t cap = b->cap ? b->cap : 256;
	char *n;

	while (cap < b->len + len + 1)
		cap *= 2;
	if (cap != b->cap) {
		n = realloc(b->d, cap);
		if (!n)
			return -ENOMEM;
		b->d = n;
		b->cap = cap;
	}
	memcpy(b->d + b->len, d, len);
	b->len += len;
	b->d[b->len] = '\0';
	return 0;
}

static void simbuf_vprintf(struct simbuf *b, const char *fmt, va_list ap)
{
	char tmp[1024];
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);

	if (n > 0)
		simbuf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n
							      : sizeof(tmp) - 1);
}

/* --- output ------------------------------------------------------------ */

/* True while the modem says anything at all. */
static bool can_speak(const struct simmodem *m)
{
	return m->powered && !m->booting && !m->hung;
}

static void flush(struct simmodem *m)
{
	if (m->out.len == 0)
		return;
	if (can_speak(m)) {
		m->ev.write(m->ev.user, m->out.d, m->out.len);
		m->st.bytes_out += m->out.len;
	}
	m->out.len = 0;
}

/* Entry points (input, timers, API calls) nest enter/leave; the
 * outermost leave writes everything produced as one chunk. */
void simmodem_enter(struct simmodem *m)
{
	m->depth++;
}

void simmodem_leave(struct simmodem *m)
{
	if (--m->depth == 0)
		flush(m);
}

static void trace_tx(const struct simmodem *m, const char *line)
{
	if (m->trace)
		log_debug("%s: tx %s", m->o.name, line);
}

void simmodem_info(struct simmodem *m, const char *fmt, ...)
{
	va_list ap;
	size_t start;

	if (!m->info_open) {
		simbuf_append(&m->out, "\r\n", 2);
		m->info_open = true;
	}
	start = m->out.len;
	va_start(ap, fmt);
	simbuf_vprintf(&m->out, fmt, ap);
	va_end(ap);
	trace_tx(m, m->out.d + start);
	simbuf_append(&m->out, "\r\n", 2);
}

/* URCs wait for the final result while a command runs (CNMI mode 2
 * buffering); --noise lets them interleave, as some firmware does. */
static struct simbuf *urc_buf(struct simmodem *m)
{
	if (!m->o.noise && (m->in_cmd || m->in_pdu || m->busy))
		return &m->held;
	return &m->out;
}

void simmodem_urc(struct simmodem *m, const char *fmt, ...)
{
	struct simbuf *b = urc_buf(m);
	va_list ap;
	size_t start;

	if (!can_speak(m))
		return;
	simbuf_append(b, "\r\n", 2);
	start = b->len;
	va_start(ap, fmt);
	simbuf_vprintf(b, fmt, ap);
	va_end(ap);
	trace_tx(m, b->d + start);
	simbuf_append(b, "\r\n", 2);
	if (b == &m->out)
		m->info_open = false;
}

void simmodem_urc_pdu(struct simmodem *m, const char *head, const char *hex)
{
	simmodem_urc(m, "%s\r\n%s", head, hex);
}

void simmodem_urc_line(struct simmodem *m, const char *line)
{
	simmodem_enter(m);
	simmodem_urc(m, "%s", line);
	simmodem_leave(m);
}

/* With --noise: one vendor URC at this point of a response, never one
 * that looks like the answer of the command being run. */
void simmodem_noise(struct simmodem *m)
{
	const char *const *v = m->o.vendor->noise;
	size_t n = 0, nlen = strlen(m->cur_name);
	const char *line;

	if (!m->o.noise || !can_speak(m))
		return;
	while (v[n])
		n++;
	for (size_t tries = 0; tries < n; tries++) {
		line = v[m->noise_idx++ % n];
		if (nlen > 0 && strncmp(line, m->cur_name, nlen) == 0)
			continue;
		simbuf_append(&m->out, "\r\n", 2);
		simbuf_append(&m->out, line, strlen(line));
		simbuf_append(&m->out, "\r\n", 2);
		trace_tx(m, line);
		m->info_open = false;
		return;
	}
}

struct err_text {
	int code;
	const char *text;
};

/* CMEE=2 texts, TS 27.007 9.2.1 and TS 27.005 3.2.5 (RP causes from
 * TS 24.011 E.2). */
static const struct err_text cme_texts[] = {
	{ 3, "operation not allowed" },   { 4, "operation not supported" },
	{ 10, "SIM not inserted" },       { 11, "SIM PIN required" },
	{ 12, "SIM PUK required" },       { 13, "SIM failure" },
	{ 16, "incorrect password" },     { 30, "no network service" },
	{ 50, "incorrect parameters" },   { 100, "unknown" },
};

static const struct err_text cms_texts[] = {
	{ 21, "short message transfer rejected" },
	{ 38, "network out of order" },
	{ 302, "operation not allowed" },
	{ 303, "operation not supported" },
	{ 304, "invalid PDU mode parameter" },
	{ 305, "invalid text mode parameter" },
	{ 311, "SIM PIN required" },
	{ 316, "SIM PUK required" },
	{ 321, "invalid memory index" },
	{ 322, "memory full" },
	{ 330, "SMSC address unknown" },
	{ 331, "no network service" },
	{ 332, "network timeout" },
	{ 340, "no +CNMA acknowledgement expected" },
	{ 500, "unknown error" },
};

static const char *err_text(const struct err_text *t, size_t n, int code)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return t[i].text;
	return NULL;
}

/* "+CME ERROR: 11" / "+CME ERROR: SIM PIN required" / "ERROR". */
static void format_error(const struct simmodem *m, struct sim_res res,
			 char *buf, size_t len)
{
	bool cme = res.type == SIM_R_CME;
	const char *text = cme ? err_text(cme_texts, sizeof(cme_texts) /
						  sizeof(cme_texts[0]),
					  res.code)
			       : err_text(cms_texts, sizeof(cms_texts) /
						  sizeof(cms_texts[0]),
					  res.code);

	if (m->s.cmee == 0 || res.type == SIM_R_ERROR)
		snprintf(buf, len, "ERROR");
	else if (m->s.cmee == 2 && text)
		snprintf(buf, len, "+%s ERROR: %s", cme ? "CME" : "CMS", text);
	else
		snprintf(buf, len, "+%s ERROR: %d", cme ? "CME" : "CMS",
			 res.code);
}

static void reboot_start(struct simmodem *m);

/* Ends the command line in progress: the final result code, then the
 * URCs held meanwhile, then a reboot if AT+CFUN=1,1 asked for one. */
void simmodem_final(struct simmodem *m, struct sim_res res)
{
	char text[80] = "OK";

	if (res.type != SIM_R_OK)
		format_error(m, res, text, sizeof(text));
	else if (m->info_open)
		simmodem_noise(m);
	simbuf_append(&m->out, "\r\n", 2);
	simbuf_append(&m->out, text, strlen(text));
	simbuf_append(&m->out, "\r\n", 2);
	trace_tx(m, text);
	m->info_open = false;
	m->in_cmd = false;
	m->cur_name[0] = '\0';
	if (m->held.len) {
		simbuf_append(&m->out, m->held.d, m->held.len);
		m->held.len = 0;
	}
	if (m->reset_after) {
		m->reset_after = false;
		reboot_start(m);
	}
}

/* --- settings, SIM, registration ---------------------------------------- */

void simmodem_defaults(struct simmodem *m)
{
	static const struct sim_settings dflt = {
		.echo = true,
		.cnmi = { 2, 1, 0, 0, 0 },
		.curc = 1,
		.cscs = "IRA",
		.mem = { "SM", "SM", "SM" },
	};

	m->s = dflt;
}

static const char *sim_state_name(enum sim_sim s)
{
	static const char *const names[] = {
		[SIM_READY] = "READY",
		[SIM_NEED_PIN] = "SIM PIN",
		[SIM_NEED_PUK] = "SIM PUK",
	};

	return names[s];
}

static void urc_list(struct simmodem *m, const char *const *v)
{
	for (; *v; v++)
		simmodem_urc(m, "%s", *v);
}

/* The SIM was unlocked (or needed no PIN): the vendor's "SIM ready"
 * URCs with --boot-urcs, then the modem looks for the network. */
void simmodem_sim_ready(struct simmodem *m)
{
	m->sim = SIM_READY;
	m->pin_tries = SIM_PIN_TRIES;
	if (m->o.boot_urcs) {
		if (m->o.vendor->cpin_urc)
			simmodem_urc(m, "+CPIN: READY");
		urc_list(m, m->o.vendor->ready_urcs);
	}
	simmodem_update_reg(m);
}

bool simmodem_registered(const struct simmodem *m)
{
	return m->reg_stat == 1 || m->reg_stat == 5;
}

/* TS 27.007 <stat> now: 0 not searching (off, no SIM, +COPS=2),
 * 2 searching (--no-network window, control "network" false), 1 home.
 * *when is set to the time the stat changes by itself, if it will. */
static int reg_compute(const struct simmodem *m, ev_tstamp *when)
{
	ev_tstamp at = m->boot_time + m->o.no_network;

	if (!m->powered || m->booting || m->cfun != 1 ||
	    m->sim != SIM_READY || m->cops_dereg)
		return 0;
	if (m->net_off)
		return 2;
	if (ev_now(m->loop) + 1e-3 < at) {
		*when = at;
		return 2;
	}
	return 1;
}

static const char *const reg_names[SIM_REG_KINDS] = {
	[SIM_CREG] = "+CREG", [SIM_CGREG] = "+CGREG", [SIM_CEREG] = "+CEREG",
};

/* "+CREG: 1,1" (query) or "+CREG: 1" (URC); n=2 adds the cell:
 * "+CREG: 2,1,\"00A1\",\"1B2C\"" and for +CEREG the AcT. */
void simmodem_reg_line(const struct simmodem *m, enum sim_reg_kind kind,
		       bool query, char *buf, size_t len)
{
	int n = m->s.reg_n[kind];
	int off;

	if (query)
		off = snprintf(buf, len, "%s: %d,%d", reg_names[kind], n,
			       m->reg_stat);
	else
		off = snprintf(buf, len, "%s: %d", reg_names[kind],
			       m->reg_stat);
	if (n < 2 || !simmodem_registered(m) || off < 0 || (size_t)off >= len)
		return;
	if (kind == SIM_CEREG)
		snprintf(buf + off, len - (size_t)off,
			 ",\"00A1\",\"01A2B3C\",7");
	else
		snprintf(buf + off, len - (size_t)off, ",\"00A1\",\"1B2C\"");
}

/* Recomputes the registration; on a change, the +CREG/+CGREG/+CEREG URCs
 * the client enabled, and the network's queue starts flowing. */
void simmodem_update_reg(struct simmodem *m)
{
	ev_tstamp when = 0;
	int stat = reg_compute(m, &when);
	char line[96];

	ev_timer_stop(m->loop, &m->reg_timer);
	if (when > 0) {
		ev_timer_set(&m->reg_timer, when - ev_now(m->loop), 0.);
		ev_timer_start(m->loop, &m->reg_timer);
	}
	if (stat == m->reg_stat)
		return;
	m->reg_stat = stat;
	for (int k = 0; k < SIM_REG_KINDS; k++) {
		if (m->s.reg_n[k] < 1)
			continue;
		simmodem_reg_line(m, (enum sim_reg_kind)k, false, line,
				  sizeof(line));
		simmodem_urc(m, "%s", line);
	}
	if (simmodem_registered(m))
		simsms_kick(m);
}

static void on_reg_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct simmodem *m = w->data;

	(void)loop;
	(void)revents;
	simmodem_enter(m);
	simmodem_update_reg(m);
	simmodem_leave(m);
}

static void on_rssi_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct simmodem *m = w->data;

	(void)loop;
	(void)revents;
	if (!m->s.curc || m->cfun != 1)
		return;
	simmodem_enter(m);
	simmodem_urc(m, "^RSSI: %d", 20);
	simmodem_leave(m);
}

/* --- lifecycle ----------------------------------------------------------- */

struct simmodem *simmodem_new(struct ev_loop *loop,
			      const struct simmodem_opts *opts,
			      const struct simmodem_events *ev)
{
	struct simmodem *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->loop = loop;
	m->o = *opts;
	m->ev = *ev;
	m->store = simstore_new(opts->storage_size);
	if (!m->store) {
		free(m);
		return NULL;
	}
	m->rng = opts->seed;
	m->pin_tries = SIM_PIN_TRIES;
	m->sim = opts->pin ? SIM_NEED_PIN : SIM_READY;
	if (opts->pin)
		snprintf(m->pin, sizeof(m->pin), "%s", opts->pin);
	snprintf(m->smsc, sizeof(m->smsc), "%s", opts->smsc ? opts->smsc : "");
	m->next_mr = 1;
	m->next_ref = 1;
	m->trace = log_enabled(LOG_LVL_DEBUG);
	simmodem_defaults(m);
	ev_init(&m->reg_timer, on_reg_timer);
	ev_init(&m->reset_timer, on_reset_timer);
	ev_init(&m->send_timer, on_send_timer);
	ev_init(&m->rssi_timer, on_rssi_timer);
	m->reg_timer.data = m->reset_timer.data = m->send_timer.data =
		m->rssi_timer.data = m;
	return m;
}

/* Drops whatever is in flight on the modem side (command, prompt, held
 * URCs, timers); what the network holds survives. */
static void quiesce(struct simmodem *m)
{
	ev_timer_stop(m->loop, &m->reg_timer);
	ev_timer_stop(m->loop, &m->reset_timer);
	ev_timer_stop(m->loop, &m->send_timer);
	ev_timer_stop(m->loop, &m->rssi_timer);
	free(m->sending);
	m->sending = NULL;
	m->busy = m->in_pdu = m->in_cmd = m->info_open = false;
	m->reset_after = false;
	m->line_len = 0;
	m->line_overflow = false;
	m->backlog.len = m->held.len = 0;
	m->reg_stat = 0;
	simsms_power_off(m);
}

void simmodem_free(struct simmodem *m)
{
	if (!m)
		return;
	quiesce(m);
	simsms_free(m);
	simmodem_clear_numbers(m, SIMMODEM_PERMANENT_FAIL);
	simmodem_clear_numbers(m, SIMMODEM_UNDELIVERABLE);
	simstore_free(m->store);
	free(m->out.d);
	free(m->held.d);
	free(m->backlog.d);
	free(m);
}

static void boot(struct simmodem *m)
{
	m->powered = true;
	m->booting = m->hung = false;
	m->st.boots++;
	simmodem_defaults(m);
	m->cfun = 1;
	m->cops_dereg = false;
	m->boot_time = ev_now(m->loop);
	if (m->sim != SIM_NEED_PUK)
		m->sim = m->o.pin ? SIM_NEED_PIN : SIM_READY;
	if (m->o.boot_urcs) {
		urc_list(m, m->o.vendor->boot_urcs);
		if (m->o.vendor->cpin_urc && m->sim != SIM_READY)
			simmodem_urc(m, "+CPIN: %s", sim_state_name(m->sim));
	}
	if (m->sim == SIM_READY)
		simmodem_sim_ready(m);
	else
		simmodem_update_reg(m);
	if (m->o.vendor->rssi_urc && m->o.rssi_interval > 0) {
		ev_timer_set(&m->rssi_timer, m->o.rssi_interval,
			     m->o.rssi_interval);
		ev_timer_start(m->loop, &m->rssi_timer);
	}
}

void simmodem_power_on(struct simmodem *m)
{
	simmodem_enter(m);
	quiesce(m);
	boot(m);
	simmodem_leave(m);
}

void simmodem_power_off(struct simmodem *m)
{
	simmodem_enter(m);
	quiesce(m);
	m->powered = m->booting = false;
	m->out.len = 0;
	simmodem_leave(m);
}

/* Writes what is pending (the OK of AT+CFUN=1,1), then goes silent
 * until the reset timer boots the modem again. */
static void reboot_start(struct simmodem *m)
{
	flush(m);
	quiesce(m);
	m->booting = true;
	m->st.resets++;
	ev_timer_set(&m->reset_timer, m->o.reset_time, 0.);
	ev_timer_start(m->loop, &m->reset_timer);
}

static void on_reset_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct simmodem *m = w->data;

	(void)loop;
	(void)revents;
	simmodem_enter(m);
	boot(m);
	simmodem_leave(m);
}

void simmodem_reset(struct simmodem *m)
{
	if (!m->powered)
		return;
	simmodem_enter(m);
	m->hung = false;
	reboot_start(m);
	simmodem_leave(m);
}

/* --- input --------------------------------------------------------------- */

/* Logs a command line; the parameters of PIN commands never reach a log. */
static void trace_rx(const struct simmodem *m, const char *line)
{
	static const char *const secret[] = { "+CPIN=", "+CPWD=", "+CLCK=",
					      "+CPIN2=" };
	const char *eq;

	if (!m->trace)
		return;
	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
		if (strcasestr(line, secret[i])) {
			eq = strchr(line, '=');
			log_debug("%s: rx %.*s=<redacted>", m->o.name,
				  (int)(eq - line), line);
			return;
		}
	}
	log_debug("%s: rx %s", m->o.name, line);
}

/* Runs the commands of one line: each must succeed for the next to run;
 * one final result ends the line (or the "> " prompt / a delayed send
 * defers it). */
static void run_line(struct simmodem *m, const char *body)
{
	struct simparse_cmd cmds[SIM_CMDS_MAX];
	struct sim_res res;
	int n;

	m->in_cmd = true;
	n = simparse_line(body, cmds, SIM_CMDS_MAX);
	if (n < 0) {
		simmodem_final(m, SIM_ERR);
		return;
	}
	for (int i = 0; i < n; i++) {
		memcpy(m->cur_name, cmds[i].name, sizeof(m->cur_name));
		res = simcmds_run(m, &cmds[i]);
		if (res.type == SIM_R_OK)
			continue;
		if (res.type == SIM_R_PROMPT) {
			m->in_pdu = true;
			m->pdu_len = 0;
			m->pdu_overflow = false;
			simbuf_append(&m->out, "\r\n> ", 4);
			trace_tx(m, "> ");
		} else if (res.type != SIM_R_ASYNC) {
			simmodem_final(m, res);
		}
		return;
	}
	simmodem_final(m, SIM_OK);
}

/* --hang-after / --unplug-after: true when this line is the one that
 * trips a fault (and is swallowed by it, echo included). */
static bool fault_trigger(struct simmodem *m)
{
	long done = (long)m->st.commands;

	if (m->o.unplug_after >= 0 && !m->unplug_done &&
	    done >= m->o.unplug_after) {
		m->unplug_done = true;
		m->st.commands++;
		m->out.len = m->line_mark;
		if (m->ev.unplug)
			m->ev.unplug(m->ev.user);
		return true;
	}
	if (m->o.hang_after >= 0 && !m->hang_done &&
	    done >= m->o.hang_after) {
		m->hang_done = true;
		m->st.commands++;
		m->out.len = m->line_mark;
		flush(m);
		m->hung = true;
		return true;
	}
	return false;
}

/* The "AT" (any case) that starts a command; what comes before it is
 * line noise a real modem skips. NULL when there is none. */
static const char *find_at(const char *line)
{
	for (; line[0] && line[1]; line++)
		if (toupper((unsigned char)line[0]) == 'A' &&
		    toupper((unsigned char)line[1]) == 'T')
			return line;
	return NULL;
}

static void line_run(struct simmodem *m, const char *line, bool overflow)
{
	const char *at = find_at(line);

	if (!at)
		return; /* no "AT": ignored, as real modems do */
	if (fault_trigger(m))
		return;
	m->st.commands++;
	trace_rx(m, at);
	if (overflow) {
		m->in_cmd = true;
		simmodem_final(m, SIM_ERR);
		return;
	}
	if (line != m->last_line)
		snprintf(m->last_line, sizeof(m->last_line), "%s", at);
	run_line(m, at + 2);
}

static void cmd_byte(struct simmodem *m, char c)
{
	if (m->line_len == 0 && !m->line_overflow)
		m->line_mark = m->out.len;
	if (m->s.echo)
		simbuf_append(&m->out, &c, 1);
	switch (c) {
	case '\r': /* S3 */
		m->line[m->line_len] = '\0';
		m->line_len = 0;
		line_run(m, m->line, m->line_overflow);
		m->line_overflow = false;
		return;
	case '\n': /* S4: ignored in command lines */
		return;
	case '\b': /* S5 */
		if (m->line_len > 0)
			m->line_len--;
		return;
	}
	if (m->line_len + 1 >= sizeof(m->line)) {
		m->line_overflow = true;
		return;
	}
	m->line[m->line_len++] = c;
	/* V.250 6.2.2: "A/" repeats the last line, without a CR. */
	if (m->line_len == 2 && toupper((unsigned char)m->line[0]) == 'A' &&
	    m->line[1] == '/') {
		m->line_len = 0;
		if (m->last_line[0])
			line_run(m, m->last_line, false);
	}
}

/* After "> ": hex until Ctrl-Z (send) or ESC (cancel, OK). */
static void pdu_byte(struct simmodem *m, char c)
{
	struct sim_res res;

	if (c == 0x1a) {
		m->in_pdu = false;
		m->pdu[m->pdu_len] = '\0';
		res = simsms_submit(m);
		if (res.type != SIM_R_ASYNC)
			simmodem_final(m, res);
		return;
	}
	if (c == 0x1b) {
		m->in_pdu = false;
		simmodem_final(m, SIM_OK);
		return;
	}
	if (m->s.echo)
		simbuf_append(&m->out, &c, 1);
	if (c == '\r' || c == '\n')
		return;
	if (m->pdu_len < SIM_PDU_IN_MAX)
		m->pdu[m->pdu_len++] = c;
	else
		m->pdu_overflow = true;
}

static void feed(struct simmodem *m, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!can_speak(m))
			return;
		if (m->busy) {
			if (m->backlog.len + len - i <= SIM_BACKLOG_MAX)
				simbuf_append(&m->backlog, buf + i, len - i);
			return;
		}
		if (m->in_pdu)
			pdu_byte(m, buf[i]);
		else
			cmd_byte(m, buf[i]);
	}
}

void simmodem_input(struct simmodem *m, const char *buf, size_t len)
{
	m->st.bytes_in += len;
	if (!can_speak(m))
		return; /* off, rebooting, or hung: read and forgotten */
	simmodem_enter(m);
	feed(m, buf, len);
	simmodem_leave(m);
}

/* The delayed +CMGS answer; then what the client typed meanwhile. */
static void on_send_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct simmodem *m = w->data;
	struct simbuf b = m->backlog;

	(void)loop;
	(void)revents;
	simmodem_enter(m);
	m->busy = false;
	simsms_send_done(m);
	m->backlog = (struct simbuf){ 0 };
	feed(m, b.d, b.len);
	free(b.d);
	simmodem_leave(m);
}

/* --- the rest of the API ------------------------------------------------- */

int simmodem_inject(struct simmodem *m, const char *from, const char *text,
		    bool allow_shift, int msg_class, int ref, uint64_t only,
		    char *err, size_t errlen)
{
	int rc;

	simmodem_enter(m);
	rc = simsms_inject(m, from, text, allow_shift, msg_class, ref, only,
			   err, errlen);
	simmodem_leave(m);
	return rc;
}

void simmodem_set_hung(struct simmodem *m, bool hung)
{
	simmodem_enter(m);
	if (hung && !m->hung)
		flush(m);
	m->hung = hung;
	if (!hung)
		simsms_kick(m);
	simmodem_leave(m);
}

void simmodem_set_network(struct simmodem *m, bool available)
{
	simmodem_enter(m);
	m->net_off = !available;
	simmodem_update_reg(m);
	simmodem_leave(m);
}

void simmodem_get_faults(const struct simmodem *m, struct simmodem_faults *f)
{
	*f = m->o.faults;
}

void simmodem_set_faults(struct simmodem *m, const struct simmodem_faults *f)
{
	m->o.faults = *f;
}

/* splitmix64: reproducible with --seed, good enough for fault dice. */
double simmodem_random(struct simmodem *m)
{
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

int simmodem_add_number(struct simmodem *m, enum simmodem_list list,
			const char *number)
{
	struct sim_numbers *l = &m->lists[list];
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = strdup(number);
	if (!v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

void simmodem_clear_numbers(struct simmodem *m, enum simmodem_list list)
{
	struct sim_numbers *l = &m->lists[list];

	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Digits only: "+34 600-111-222" and "34600111222" are the same number. */
static void digits(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 1 < len; in++)
		if (isdigit((unsigned char)*in))
			out[n++] = *in;
	out[n] = '\0';
}

bool simmodem_listed(const struct simmodem *m, enum simmodem_list list,
		     const char *number)
{
	const struct sim_numbers *l = &m->lists[list];
	char a[PDU_ADDR_MAX], b[PDU_ADDR_MAX];

	digits(number, a, sizeof(a));
	for (size_t i = 0; i < l->n; i++) {
		digits(l->v[i], b, sizeof(b));
		if (strcmp(a, b) == 0 && a[0] != '\0')
			return true;
		if (a[0] == '\0' && strcmp(number, l->v[i]) == 0)
			return true; /* alphanumeric */
	}
	return false;
}

void simmodem_get_stats(const struct simmodem *m, struct simmodem_stats *st)
{
	*st = m->st;
	st->waiting = 0;
	for (const struct sim_mt *mt = m->mt_head; mt; mt = mt->next)
		st->waiting++;
	st->stored = simstore_used(m->store);
	st->capacity = simstore_capacity(m->store);
	st->next_mr = m->next_mr;
	st->powered = m->powered;
	st->hung = m->hung;
	st->registered = simmodem_registered(m);
	st->sim_ready = m->sim == SIM_READY;
}

struct simstore *simmodem_store(struct simmodem *m)
{
	return m->store;
}
