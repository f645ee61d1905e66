/* simmodem — see simmodem.h. This file: the SMS traffic. Sending
 * (AT+CMGS after Ctrl-Z: checks, network outcome, log, status report)
 * and the mobile-terminated side: a "network" queue of SMS-DELIVER and
 * SMS-STATUS-REPORT PDUs handed to the modem one at a time as +CNMI
 * says (stored + "+CMTI", direct "+CMT" waiting for +CNMA, "+CDS",
 * "+CDSI"). The queue only flows while the modem is on, registered and
 * answering, and while no +CNMA is outstanding, as a real SMSC waits for
 * the RP-ACK of one message before the next. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "drivers/sim/simlog.h"
#include "drivers/sim/simmodem_priv.h"

#define REPORT_UNDELIVERABLE 0x41 /* TP-ST: permanent, incompatible dest. */

static void on_ack_timeout(struct ev_loop *loop, ev_timer *w, int revents);
static void on_report(struct ev_loop *loop, ev_timer *w, int revents);

static struct pdu_time time_now(void)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	return (struct pdu_time){
		.year = tm.tm_year + 1900, .month = tm.tm_mon + 1,
		.day = tm.tm_mday, .hour = tm.tm_hour, .minute = tm.tm_min,
		.second = tm.tm_sec, .tz_quarters = 0,
	};
}

/* --- sending --------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)toupper((unsigned char)c);
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* What the modem itself checks before anything goes on air: hex, the
 * TPDU length against AT+CMGS=<length>, and that it decodes as a SUBMIT.
 * Any failure is +CMS ERROR: 304. */
static struct sim_res validate(struct simmodem *m, struct sim_send *s)
{
	char err[PDU_ERR_MAX];
	size_t n = m->pdu_len;
	unsigned smsc_len;

	if (m->pdu_overflow || n < 2 || n % 2 != 0)
		return SIM_CMS(CMS_BAD_PDU_PARAM);
	for (size_t i = 0; i < n; i++)
		if (hexval(m->pdu[i]) < 0)
			return SIM_CMS(CMS_BAD_PDU_PARAM);
	smsc_len = (unsigned)(hexval(m->pdu[0]) * 16 + hexval(m->pdu[1]));
	if (n / 2 < 1 + smsc_len || n / 2 - 1 - smsc_len != m->pdu_expect)
		return SIM_CMS(CMS_BAD_PDU_PARAM);
	memcpy(s->hex, m->pdu, n + 1);
	if (pdu_decode_hex(s->hex, &s->sms, err, sizeof(err)) < 0) {
		if (m->trace)
			log_debug("%s: bad PDU: %s", m->o.name, err);
		return SIM_CMS(CMS_BAD_PDU_PARAM);
	}
	if (s->sms.type != PDU_SUBMIT)
		return SIM_CMS(CMS_BAD_PDU_PARAM);
	return SIM_OK;
}

/* The network's answer, decided when the PDU is complete. */
static struct sim_res outcome(struct simmodem *m, const struct pdu_sms *sms)
{
	if (!simmodem_registered(m))
		return SIM_CMS(CMS_NO_NETWORK);
	if (simmodem_listed(m, SIMMODEM_PERMANENT_FAIL, sms->addr.text))
		return SIM_CMS(CMS_REJECTED);
	if (m->o.faults.fail_rate > 0 &&
	    simmodem_random(m) < m->o.faults.fail_rate)
		return SIM_CMS(simmodem_random(m) < 0.5 ? CMS_NET_TIMEOUT
							: CMS_NET_OUT_OF_ORDER);
	return SIM_OK;
}

/* Ctrl-Z arrived. Local errors answer at once; the network's answer
 * comes after send_delay (a timer: the modem is busy meanwhile).
 * Returns SIM_R_ASYNC when the final result is taken care of. */
struct sim_res simsms_submit(struct simmodem *m)
{
	struct sim_send *s = calloc(1, sizeof(*s));
	struct sim_res res;

	if (!s)
		return SIM_CMS(500);
	res = validate(m, s);
	if (res.type != SIM_R_OK) {
		free(s);
		m->st.send_errors++;
		return res;
	}
	s->res = outcome(m, &s->sms);
	m->sending = s;
	if (m->o.faults.send_delay > 0) {
		m->busy = true;
		ev_timer_set(&m->send_timer, m->o.faults.send_delay, 0.);
		ev_timer_start(m->loop, &m->send_timer);
	} else {
		simsms_send_done(m);
	}
	return (struct sim_res){ SIM_R_ASYNC, 0 };
}

static void report_schedule(struct simmodem *m, uint8_t mr,
			    const struct pdu_sms *sms)
{
	struct sim_report *r = calloc(1, sizeof(*r));

	if (!r)
		return;
	r->m = m;
	r->mr = mr;
	r->status = simmodem_listed(m, SIMMODEM_UNDELIVERABLE, sms->addr.text)
			    ? REPORT_UNDELIVERABLE
			    : 0;
	snprintf(r->to, sizeof(r->to), "%s", sms->addr.text);
	r->scts = time_now();
	r->next = m->reports;
	if (m->reports)
		m->reports->prev = r;
	m->reports = r;
	ev_timer_init(&r->timer, on_report, m->o.faults.report_delay, 0.);
	r->timer.data = r;
	ev_timer_start(m->loop, &r->timer);
}

/* The answer to the send in m->sending: "+CMGS: <mr>" + OK, or the
 * error decided at Ctrl-Z. */
void simsms_send_done(struct simmodem *m)
{
	struct sim_send *s = m->sending;
	uint8_t mr;

	if (!s)
		return;
	m->sending = NULL;
	if (s->res.type == SIM_R_OK) {
		mr = m->next_mr++;
		m->st.sent++;
		if (m->o.log &&
		    simlog_sent(m->o.log, m->o.name, mr, s->hex, &s->sms) < 0)
			log_warn("%s: cannot write the SMS log", m->o.name);
		if (s->sms.srr)
			report_schedule(m, mr, &s->sms);
		simmodem_info(m, "+CMGS: %u", mr);
	} else {
		m->st.send_errors++;
		if (s->res.code == CMS_REJECTED)
			m->st.failed_permanent++;
		else if (s->res.code != CMS_NO_NETWORK)
			m->st.failed_transient++;
	}
	simmodem_final(m, s->res);
	free(s);
}

/* --- the network's queue of mobile-terminated PDUs ----------------------- */

static int mt_push(struct simmodem *m, bool report, const char *hex,
		   unsigned tpdu_len)
{
	struct sim_mt *mt = calloc(1, sizeof(*mt));

	if (!mt)
		return -ENOMEM;
	mt->report = report;
	mt->tpdu_len = tpdu_len;
	snprintf(mt->hex, sizeof(mt->hex), "%s", hex);
	if (m->mt_tail)
		m->mt_tail->next = mt;
	else
		m->mt_head = mt;
	m->mt_tail = mt;
	return 0;
}

static void mt_push_front(struct simmodem *m, struct sim_mt *mt)
{
	mt->next = m->mt_head;
	m->mt_head = mt;
	if (!m->mt_tail)
		m->mt_tail = mt;
}

static struct sim_mt *mt_pop(struct simmodem *m)
{
	struct sim_mt *mt = m->mt_head;

	m->mt_head = mt->next;
	if (!m->mt_head)
		m->mt_tail = NULL;
	mt->next = NULL;
	return mt;
}

/* +CMT / +CDS: hand the PDU over and wait for +CNMA. Takes mt. */
static void deliver_direct(struct simmodem *m, struct sim_mt *mt,
			   const char *head)
{
	struct sim_ack *a = calloc(1, sizeof(*a));

	simmodem_urc_pdu(m, head, mt->hex);
	if (!a) {
		free(mt);
		return;
	}
	a->m = m;
	a->mt = *mt;
	a->mt.next = NULL;
	free(mt);
	ev_timer_init(&a->timer, on_ack_timeout, m->o.cnma_timeout, 0.);
	a->timer.data = a;
	ev_timer_start(m->loop, &a->timer);
	if (m->acks_tail)
		m->acks_tail->next = a;
	else
		m->acks = a;
	m->acks_tail = a;
}

/* Stores mt (takes it) and announces it with "<urc>: <mem3>,<index>"
 * when urc is not NULL. Returns false (mt untouched) when full. */
static bool deliver_stored(struct simmodem *m, struct sim_mt *mt,
			   const char *urc)
{
	int idx = simstore_put(m->store, SIMSTORE_REC_UNREAD, mt->hex,
			       mt->tpdu_len);

	if (idx < 0) {
		m->st.storage_full++;
		return false;
	}
	if (urc)
		simmodem_urc(m, "%s: \"%s\",%d", urc, m->s.mem[2], idx);
	free(mt);
	return true;
}

/* One PDU from the head of the queue, routed by +CNMI <mt> / <ds>.
 * Returns false when it has to stay queued (storage full). */
static bool deliver(struct simmodem *m, struct sim_mt *mt)
{
	bool report = mt->report;
	int mode = report ? m->s.cnmi[3] : m->s.cnmi[1];
	char head[32];

	if (report && mode == 0) {
		free(mt); /* <ds>=0: no status reports to the TE */
		return true;
	}
	if (mode == (report ? 1 : 2)) {
		snprintf(head, sizeof(head), report ? "+CDS: %u" : "+CMT: ,%u",
			 mt->tpdu_len);
		deliver_direct(m, mt, head);
	} else if (!deliver_stored(m, mt,
				   report ? "+CDSI"
					  : (mode == 0 ? NULL : "+CMTI"))) {
		return false;
	}
	m->st.reports += report;
	m->st.received += !report;
	return true;
}

static bool deliverable(const struct simmodem *m)
{
	return m->powered && !m->booting && !m->hung && m->cfun == 1 &&
	       simmodem_registered(m) && !m->acks;
}

void simsms_kick(struct simmodem *m)
{
	struct sim_mt *mt;

	while (m->mt_head && deliverable(m)) {
		mt = mt_pop(m);
		if (!deliver(m, mt)) {
			mt_push_front(m, mt);
			return;
		}
	}
}

static void ack_unlink(struct simmodem *m, struct sim_ack *a)
{
	struct sim_ack **pp, *prev = NULL;

	for (pp = &m->acks; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	if (m->acks_tail == a)
		m->acks_tail = prev;
	a->next = NULL;
	ev_timer_stop(m->loop, &a->timer);
}

struct sim_res simsms_cnma(struct simmodem *m)
{
	struct sim_ack *a = m->acks;

	if (!a)
		return SIM_CMS(CMS_NO_CNMA);
	ack_unlink(m, a);
	free(a);
	simsms_kick(m);
	return SIM_OK;
}

/* TS 27.005 3.4.4: without +CNMA in time the TA sets <mt> and <ds> to 0;
 * the SMSC keeps the unacknowledged SMS and retries it, which now lands
 * in the storage without a URC. */
static void on_ack_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim_ack *a = w->data;
	struct simmodem *m = a->m;
	struct sim_mt *mt;

	(void)loop;
	(void)revents;
	simmodem_enter(m);
	ack_unlink(m, a);
	m->st.cnma_timeouts++;
	m->s.cnmi[1] = m->s.cnmi[3] = 0;
	if (!a->mt.report && (mt = malloc(sizeof(*mt)))) {
		*mt = a->mt;
		mt_push_front(m, mt);
	}
	free(a);
	simsms_kick(m);
	simmodem_leave(m);
}

static void on_report(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim_report *r = w->data;
	struct simmodem *m = r->m;
	struct pdu_time now = time_now();
	struct pdu_part part;
	char err[PDU_ERR_MAX];

	(void)loop;
	(void)revents;
	if (r->prev)
		r->prev->next = r->next;
	else
		m->reports = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (pdu_encode_status_report(r->mr, r->to, &r->scts, &now, r->status,
				     m->smsc[0] ? m->smsc : NULL, &part, err,
				     sizeof(err)) < 0)
		log_warn("%s: status report for mr %u: %s", m->o.name,
			 (unsigned)r->mr, err);
	else
		mt_push(m, true, part.hex, part.tpdu_len);
	free(r);
	simmodem_enter(m);
	simsms_kick(m);
	simmodem_leave(m);
}

int simsms_inject(struct simmodem *m, const char *from, const char *text,
		  bool allow_shift, int msg_class, int ref, uint64_t only,
		  char *err, size_t errlen)
{
	struct pdu_deliver_opts o = {
		.from = from, .smsc = m->smsc[0] ? m->smsc : NULL,
		.scts = time_now(), .allow_shift = allow_shift,
		.ref = ref >= 0 ? (uint16_t)ref : m->next_ref,
		.msg_class = msg_class,
	};
	struct pdu_part *parts = calloc(255, sizeof(*parts));
	int n;

	if (!parts) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n = pdu_encode_deliver(text, &o, parts, 255, err, errlen);
	if (n > 1 && ref < 0)
		m->next_ref = (uint16_t)(m->next_ref % 255 + 1);
	for (int i = 0; i < n; i++) {
		if (only && (i >= 64 || !(only & (UINT64_C(1) << i))))
			continue;
		if (mt_push(m, false, parts[i].hex, parts[i].tpdu_len) < 0) {
			snprintf(err, errlen, "out of memory");
			n = -ENOMEM;
			break;
		}
	}
	free(parts);
	simsms_kick(m);
	return n;
}

/* Power gone: +CMT/+CDS never acknowledged go back to the network (which
 * retries them later), oldest first. Status reports on their way stay:
 * they are in the network, not the modem. */
void simsms_power_off(struct simmodem *m)
{
	struct sim_ack *a, *next;
	struct sim_mt *first = NULL, *last = NULL, *mt;

	for (a = m->acks; a; a = next) {
		next = a->next;
		ev_timer_stop(m->loop, &a->timer);
		if ((mt = malloc(sizeof(*mt)))) {
			*mt = a->mt;
			mt->next = NULL;
			if (last)
				last->next = mt;
			else
				first = mt;
			last = mt;
		}
		free(a);
	}
	m->acks = m->acks_tail = NULL;
	if (!first)
		return;
	last->next = m->mt_head;
	if (!m->mt_head)
		m->mt_tail = last;
	m->mt_head = first;
}

void simsms_free(struct simmodem *m)
{
	struct sim_report *r;
	struct sim_mt *mt;

	while ((r = m->reports)) {
		m->reports = r->next;
		ev_timer_stop(m->loop, &r->timer);
		free(r);
	}
	while ((mt = m->mt_head)) {
		m->mt_head = mt->next;
		free(mt);
	}
	m->mt_tail = NULL;
}
