/* modem_init — the initialisation sequence of the generic driver: a table
 * of steps (command, answer handler), run in order, with bounded retries.
 * See modem_priv.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemon/log.h"
#include "drivers/modem_priv.h"

enum step_rc {
	STEP_NEXT,  /* go on with the next step */
	STEP_AGAIN, /* run this step again now (it picked another command) */
	STEP_RETRY, /* run it again after STEP_RETRY_S, counted */
	STEP_HOLD,  /* the handler took over (state change, PIN entry) */
};

struct init_step {
	const char *name;
	const char *text;   /* the command, or NULL and build */
	const char *prefix; /* information-line prefix */
	bool bare;          /* unprefixed answer (ATI, AT+CGMI, ...) */
	bool raw;           /* done() sees timeouts and busy SIMs itself,
			       and they do not count towards a reset */
	/* A command that depends on config or state, into buf; false: skip
	 * the step. */
	bool (*build)(struct modem *m, char *buf, size_t len);
	/* NULL: errors are ignored (optional settings). */
	enum step_rc (*done)(struct modem *m, const struct at_result *res);
};

static void step_run(struct modem *m);

/* Copies s[0..len) into out, trimmed of blanks at both ends. */
static void copy_trim(char *out, size_t outlen, const char *s, size_t len)
{
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, s, len);
	out[len] = '\0';
}

static enum step_rc done_sync(struct modem *m, const struct at_result *res)
{
	if (res_ok(res))
		return STEP_NEXT;
	if (++m->tries < SYNC_TRIES)
		return STEP_AGAIN;
	modem_port_lost(m, MODEM_RESETTING, "no answer to AT");
	return STEP_HOLD;
}

/* The first information line, without an echoed "+CGMI:" style prefix, a
 * "Revision:"-style label or quotes. */
static void ident_copy(const struct at_result *res, const char *prefix,
		       char *out, size_t outlen)
{
	static const char *const labels[] = { "Manufacturer:", "Model:",
					      "Revision:", "IMEI:" };
	const char *s;
	size_t n;

	if (!res->n_lines)
		return;
	s = res->lines[0].text;
	n = res->lines[0].len;
	if (prefix && strncmp(s, prefix, strlen(prefix)) == 0) {
		s += strlen(prefix);
		n -= strlen(prefix);
	}
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		size_t l = strlen(labels[i]);

		if (n >= l && strncasecmp(s, labels[i], l) == 0) {
			s += l;
			n -= l;
		}
	}
	copy_trim(out, outlen, s, n);
	n = strlen(out);
	if (n >= 2 && out[0] == '"' && out[n - 1] == '"') {
		memmove(out, out + 1, n - 2);
		out[n - 2] = '\0';
	}
}

/* ATI's lines joined with " / " (truncated to fit), for detection. */
static enum step_rc done_ati(struct modem *m, const struct at_result *res)
{
	size_t used = 0;

	m->ati[0] = '\0';
	for (size_t i = 0; res_ok(res) && i < res->n_lines; i++) {
		used += (size_t)snprintf(m->ati + used, sizeof(m->ati) - used,
					 "%s%s", i ? " / " : "",
					 res->lines[i].text);
		if (used >= sizeof(m->ati) - 1)
			break;
	}
	return STEP_NEXT;
}

#define IDENT_DONE(fn, prefix, field)                                        \
	static enum step_rc fn(struct modem *m, const struct at_result *res) \
	{                                                                    \
		if (res_ok(res))                                             \
			ident_copy(res, prefix, m->info.field,               \
				   sizeof(m->info.field));                   \
		return STEP_NEXT;                                            \
	}
IDENT_DONE(done_cgmi, "+CGMI:", manufacturer)
IDENT_DONE(done_cgmm, "+CGMM:", model)
IDENT_DONE(done_cgmr, "+CGMR:", revision)
IDENT_DONE(done_cgsn, "+CGSN:", imei)

/* Not a command: picks the family (driver=auto looks at +CGMI and ATI),
 * and queues its extra init commands, whose errors do not matter. */
static bool build_vendor(struct modem *m, char *buf, size_t len)
{
	const struct modem_quirks *q = m->forced;
	const char *const *cmds;

	(void)buf;
	(void)len;
	if (!q)
		q = quirks_detect(m->info.manufacturer, m->ati);
	log_info("modem %s: %s %s (revision %s): %s driver%s", m->info.name,
		 m->info.manufacturer, m->info.model, m->info.revision, q->name,
		 m->forced ? "" : ", detected");
	m->quirks = q;
	m->info.driver = q->name;
	if (!modem_quirk_attach(m, q))
		log_warn("modem %s: out of memory for URC handlers",
			 m->info.name);
	for (cmds = QUIRK(q, init_cmds); *cmds; cmds++)
		modem_send_cmd(m, *cmds, NULL, false, 0, NULL);
	return false;
}

static void pin_cb(const struct at_result *res, void *ud);

/* Enters the configured PIN. The command text is wiped after queueing;
 * the trace hides it (on_trace). */
static void enter_pin(struct modem *m)
{
	char cmd[CMD_MAX];

	snprintf(cmd, sizeof(cmd), "AT+CPIN=\"%s\"", m->cfg.pin);
	m->pin = PIN_SENT;
	log_info("modem %s: entering the SIM PIN", m->info.name);
	if (!modem_send_cmd(m, cmd, NULL, false, 0, pin_cb))
		m->pin = PIN_UNTRIED;
	explicit_bzero(cmd, sizeof(cmd));
}

static void pin_stop(struct modem *m, enum modem_state st, const char *why)
{
	m->pin = PIN_REJECTED;
	modem_set_state(m, st, why);
}

static void pin_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;

	if (res_io(res))
		return; /* no verdict: PIN_SENT keeps it from going again */
	if (res_ok(res)) {
		m->pin = PIN_ACCEPTED;
		log_info("modem %s: SIM PIN accepted", m->info.name);
		/* AT+CPIN? again, once the SIM has settled */
		modem_timer_start(m, PIN_SETTLE_S, step_run);
		return;
	}
	if (res->err.type == AT_ERR_CME && res->err.code == 16) {
		pin_stop(m, MODEM_PIN_REJECTED,
			 "the SIM rejected the configured PIN; it is not "
			 "tried again: fix pin = and restart");
		return;
	}
	if (res->err.type == AT_ERR_CME && res->err.code == 12) {
		pin_stop(m, MODEM_PUK_LOCKED,
			 "the SIM rejected the PIN and now wants its PUK");
		return;
	}
	if (res->err.type == AT_ERR_CME && res->err.code == 14)
		m->pin = PIN_UNTRIED; /* SIM busy: the PIN was not checked */
	if (modem_note_result(m, res))
		return;
	/* Anything else: ask the SIM where it stands; a PIN_SENT that still
	 * meets "SIM PIN" stops there (cpin_pin). */
	modem_timer_start(m, PIN_SETTLE_S, step_run);
}

static enum step_rc cpin_ready(struct modem *m, const char *code)
{
	(void)code;
	if (m->pin == PIN_SENT)
		m->pin = PIN_ACCEPTED;
	if (m->info.state != MODEM_INITIALIZING)
		modem_set_state(m, MODEM_INITIALIZING, "SIM ready");
	return STEP_NEXT;
}

static enum step_rc cpin_pin(struct modem *m, const char *code)
{
	(void)code;
	if (!m->cfg.pin) {
		modem_set_state(m, MODEM_WAITING_PIN,
				"the SIM wants its PIN and none is configured "
				"(pin =)");
		return STEP_HOLD;
	}
	if (m->pin == PIN_SENT || m->pin == PIN_REJECTED) {
		pin_stop(m, MODEM_PIN_REJECTED,
			 "the SIM still wants its PIN after it was entered; "
			 "it is not tried again");
		return STEP_HOLD;
	}
	enter_pin(m);
	return m->pin == PIN_SENT ? STEP_HOLD : STEP_RETRY;
}

static enum step_rc cpin_puk(struct modem *m, const char *code)
{
	(void)code;
	pin_stop(m, MODEM_PUK_LOCKED,
		 "the SIM wants its PUK; smsgw never guesses one: unblock "
		 "the SIM in a phone");
	return STEP_HOLD;
}

static enum step_rc cpin_not_ready(struct modem *m, const char *code)
{
	(void)m;
	(void)code;
	return STEP_RETRY;
}

static enum step_rc cpin_other(struct modem *m, const char *code)
{
	char why[80];

	snprintf(why, sizeof(why), "the modem wants %s, which smsgw cannot "
		 "enter", code);
	modem_set_state(m, MODEM_WAITING_PIN, why);
	return STEP_HOLD;
}

/* 27.007 8.3 +CPIN: <code>. PIN2/PUK2 guard other things than SMS. */
static const struct {
	const char *code;
	enum step_rc (*fn)(struct modem *m, const char *code);
} cpin_codes[] = {
	{ "READY", cpin_ready },       { "SIM PIN", cpin_pin },
	{ "SIM PUK", cpin_puk },       { "SIM PIN2", cpin_ready },
	{ "SIM PUK2", cpin_ready },    { "NOT READY", cpin_not_ready },
};

static void no_sim_poll(struct modem *m)
{
	step_run(m);
}

/* +CME ERROR on AT+CPIN?: 10 no SIM, 13 SIM failure, 15 wrong SIM: poll
 * until one works; 11/12 are the PIN and PUK asked as errors. */
static enum step_rc cpin_error(struct modem *m, const struct at_result *res)
{
	char e[AT_ERR_FMT_MAX], why[AT_ERR_FMT_MAX + 16];

	if (res->err.type == AT_ERR_CME && res->err.code == 11)
		return cpin_pin(m, "SIM PIN");
	if (res->err.type == AT_ERR_CME && res->err.code == 12)
		return cpin_puk(m, "SIM PUK");
	if (res->err.type == AT_ERR_CME &&
	    (res->err.code == 10 || res->err.code == 13 ||
	     res->err.code == 15)) {
		snprintf(why, sizeof(why), "SIM: %s",
			 err_text(&res->err, e, sizeof(e)));
		modem_timer_start(m, m->cfg.network_poll, no_sim_poll);
		modem_set_state(m, MODEM_NO_SIM, why);
		return STEP_HOLD;
	}
	return STEP_RETRY;
}

static enum step_rc done_cpin(struct modem *m, const struct at_result *res)
{
	struct at_result_iter it;
	char code[32];
	const char *rest;
	size_t n;

	if (!res_ok(res))
		return cpin_error(m, res);
	at_result_iter_init(&it, res);
	if (!at_result_next(&it, "+CPIN:"))
		return STEP_RETRY;
	rest = at_result_rest(&it, &n);
	copy_trim(code, sizeof(code), rest, n);
	for (size_t i = 0; i < sizeof(cpin_codes) / sizeof(cpin_codes[0]); i++)
		if (strcasecmp(code, cpin_codes[i].code) == 0)
			return cpin_codes[i].fn(m, code);
	return cpin_other(m, code);
}

static enum step_rc done_cimi(struct modem *m, const struct at_result *res)
{
	if (!res_ok(res))
		return STEP_NEXT;
	ident_copy(res, "+CIMI:", m->info.imsi, sizeof(m->info.imsi));
	/* MCC + MNC say which network; the subscriber part stays out. */
	log_info("modem %s: IMSI %.5s**********", m->info.name, m->info.imsi);
	return STEP_NEXT;
}

static enum step_rc done_creg_mode(struct modem *m, const struct at_result *res)
{
	if (!res_ok(res)) /* no location info: the plain URC then */
		modem_send_cmd(m, "AT+CREG=1", NULL, false, 0, NULL);
	return STEP_NEXT;
}

/* "+CIND: (\"battchg\",(0-5)),...,(\"smsfull\",(0-1))": the position of
 * smsfull, 1-based; then +CIEV reporting (mode 3, indicators only). */
static enum step_rc done_cind(struct modem *m, const struct at_result *res)
{
	struct at_result_iter it;
	const char *s;
	size_t n;

	m->ciev_smsfull = 0;
	at_result_iter_init(&it, res);
	if (!res_ok(res) || !at_result_next(&it, "+CIND:"))
		return STEP_NEXT;
	for (int i = 1; at_result_open_list(&it); i++) {
		if (at_result_string(&it, &s, &n) && n == 7 &&
		    strncasecmp(s, "smsfull", 7) == 0)
			m->ciev_smsfull = i;
		while (at_result_skip(&it))
			;
		if (!at_result_close_list(&it))
			break;
	}
	if (m->ciev_smsfull)
		modem_send_cmd(m, "AT+CMER=3,0,0,1", NULL, false, 0, NULL);
	return STEP_NEXT;
}

/* PDU mode is what everything else relies on: retried, then reset. */
static enum step_rc done_required(struct modem *m, const struct at_result *res)
{
	(void)m;
	return res_ok(res) ? STEP_NEXT : STEP_RETRY;
}

static bool build_csca(struct modem *m, char *buf, size_t len)
{
	if (!m->cfg.smsc)
		return false;
	/* 24.008 type of address: 145 international, 129 unknown */
	snprintf(buf, len, "AT+CSCA=\"%s\",%d", m->cfg.smsc,
		 m->cfg.smsc[0] == '+' ? 145 : 129);
	return true;
}

static enum step_rc done_csca(struct modem *m, const struct at_result *res)
{
	char e[AT_ERR_FMT_MAX];

	if (!res_ok(res))
		log_warn("modem %s: smsc = %s refused: %s; sends use the "
			 "SIM's", m->info.name, m->cfg.smsc,
			 err_text(&res->err, e, sizeof(e)));
	return STEP_NEXT;
}

static bool build_cpms(struct modem *m, char *buf, size_t len)
{
	const char *s = modem_pref_storage(m);

	snprintf(buf, len, "AT+CPMS=\"%s\",\"%s\",\"%s\"", s, s, s);
	return true;
}

/* "+CPMS: <used1>,<total1>,<used2>,<total2>,<used3>,<total3>". */
static enum step_rc done_cpms(struct modem *m, const struct at_result *res)
{
	struct at_result_iter it;
	char e[AT_ERR_FMT_MAX];
	int used, total;

	if (!res_ok(res)) {
		if (m->tries + 1 < OPTIONAL_TRIES) /* step_retry counts */
			return STEP_RETRY;
		log_warn("modem %s: storage %s refused (%s); keeping the "
			 "modem's", m->info.name, modem_pref_storage(m),
			 err_text(&res->err, e, sizeof(e)));
		m->cur_mem[0] = '\0';
		return STEP_NEXT;
	}
	snprintf(m->cur_mem, sizeof(m->cur_mem), "%s", modem_pref_storage(m));
	at_result_iter_init(&it, res);
	if (at_result_next(&it, "+CPMS:") && at_result_number(&it, &used) &&
	    at_result_number(&it, &total) && total > 0 && used >= total)
		m->full_at_init = true;
	return STEP_NEXT;
}

static bool build_cnmi(struct modem *m, char *buf, size_t len)
{
	const char *cmd = QUIRK(m->quirks, cnmi)[m->cnmi_i];

	if (!cmd) {
		log_warn("modem %s: no AT+CNMI setting accepted: new SMS "
			 "are found only by storage sweeps", m->info.name);
		return false;
	}
	snprintf(buf, len, "%s", cmd);
	return true;
}

static enum step_rc done_cnmi(struct modem *m, const struct at_result *res)
{
	if (res_ok(res)) {
		log_debug("modem %s: %s accepted", m->info.name,
			  QUIRK(m->quirks, cnmi)[m->cnmi_i]);
		return STEP_NEXT;
	}
	m->cnmi_i++;
	return STEP_AGAIN;
}

static enum step_rc done_creg(struct modem *m, const struct at_result *res)
{
	if (res_ok(res))
		modem_parse_reg(res, "+CREG:", &m->creg);
	return STEP_NEXT;
}

static enum step_rc done_cereg(struct modem *m, const struct at_result *res)
{
	if (res_ok(res))
		modem_parse_reg(res, "+CEREG:", &m->cereg);
	return STEP_NEXT;
}

/* In order. Identity comes before the family is picked; the PIN before
 * anything that needs the SIM; SMS settings before the registration check,
 * so that a modem waiting for the network already stores what arrives. */
#define STEP(n, t, ...) { .name = n, .text = t, __VA_ARGS__ }
static const struct init_step init_steps[] = {
	STEP("sync", "AT", .raw = true, .done = done_sync),
	STEP("echo off", "ATE0"),
	STEP("numeric errors", "AT+CMEE=1"),
	STEP("identity", "ATI", .bare = true, .done = done_ati),
	STEP("manufacturer", "AT+CGMI", .prefix = "+CGMI:", .bare = true,
	     .done = done_cgmi),
	STEP("model", "AT+CGMM", .prefix = "+CGMM:", .bare = true,
	     .done = done_cgmm),
	STEP("revision", "AT+CGMR", .prefix = "+CGMR:", .bare = true,
	     .done = done_cgmr),
	STEP("imei", "AT+CGSN", .prefix = "+CGSN:", .bare = true,
	     .done = done_cgsn),
	STEP("vendor", NULL, .build = build_vendor),
	STEP("sim", "AT+CPIN?", .prefix = "+CPIN:", .done = done_cpin),
	STEP("imsi", "AT+CIMI", .prefix = "+CIMI:", .bare = true,
	     .done = done_cimi),
	STEP("registration urc", "AT+CREG=2", .done = done_creg_mode),
	STEP("eps registration urc", "AT+CEREG=2"),
	STEP("indicators", "AT+CIND=?", .prefix = "+CIND:", .done = done_cind),
	STEP("pdu mode", "AT+CMGF=0", .done = done_required),
	STEP("smsc", NULL, .build = build_csca, .done = done_csca),
	STEP("storage", NULL, .prefix = "+CPMS:", .build = build_cpms,
	     .done = done_cpms),
	STEP("indications", NULL, .build = build_cnmi, .done = done_cnmi),
	STEP("operator format", "AT+COPS=3,0"),
	STEP("registration", "AT+CREG?", .prefix = "+CREG:", .done = done_creg),
	STEP("eps registration", "AT+CEREG?", .prefix = "+CEREG:",
	     .done = done_cereg),
};
#define N_STEPS (sizeof(init_steps) / sizeof(init_steps[0]))

static void init_finish(struct modem *m)
{
	m->setup_done = true;
	modem_send_cmd(m, "AT+CSQ", "+CSQ:", false, 0, modem_csq_cb);
	modem_reg_evaluate(m);
}

static void step_retry(struct modem *m, const char *name)
{
	char why[80];

	if (++m->tries > STEP_TRIES) {
		snprintf(why, sizeof(why), "init step '%s' keeps failing",
			 name);
		modem_reset_begin(m, why);
		return;
	}
	modem_timer_start(m, STEP_RETRY_S, step_run);
}

static bool sim_busy(const struct at_error *e)
{
	return (e->type == AT_ERR_CME && e->code == 14) ||
	       (e->type == AT_ERR_CMS && e->code == 314);
}

static void step_cb(const struct at_result *res, void *ud)
{
	struct modem *m = ud;
	const struct init_step *s = &init_steps[m->step];
	enum step_rc rc;

	if (res_io(res))
		return;
	if (s->raw)
		rc = s->done(m, res);
	else if (modem_note_result(m, res))
		return;
	else if (res->err.type == AT_ERR_TIMEOUT || sim_busy(&res->err))
		rc = STEP_RETRY;
	else
		rc = s->done ? s->done(m, res) : STEP_NEXT;
	if (rc == STEP_NEXT) {
		m->step++;
		m->tries = 0;
	}
	if (rc == STEP_NEXT || rc == STEP_AGAIN)
		step_run(m);
	else if (rc == STEP_RETRY)
		step_retry(m, s->name);
}

/* Sends the current step's command (skipping steps that have none). */
static void step_run(struct modem *m)
{
	char buf[CMD_MAX];
	unsigned timeout;

	for (; m->step < N_STEPS; m->step++, m->tries = 0) {
		const struct init_step *s = &init_steps[m->step];
		const char *text = s->text;

		if (s->build) {
			if (!s->build(m, buf, sizeof(buf)))
				continue;
			text = buf;
		}
		timeout = secs_to_ms(m->cfg.command_timeout);
		if (s->raw && timeout > SYNC_TIMEOUT_MS)
			timeout = SYNC_TIMEOUT_MS;
		if (!modem_send_cmd(m, text, s->prefix, s->bare, timeout,
				    step_cb) &&
		    m->chat && !at_chat_failed(m->chat))
			step_retry(m, s->name); /* out of memory */
		return;
	}
	init_finish(m);
}

void modem_init_begin(struct modem *m, const char *why)
{
	modem_timer_stop(m);
	m->step = 0;
	m->tries = 0;
	m->cnmi_i = 0;
	m->setup_done = false;
	m->full_at_init = false;
	m->ciev_smsfull = 0;
	m->creg = m->cereg = -1;
	m->cur_mem[0] = '\0';
	m->info.reg = MODEM_REG_UNKNOWN;
	modem_set_state(m, MODEM_INITIALIZING, why);
	if (m->info.state == MODEM_INITIALIZING && m->chat)
		step_run(m);
}
