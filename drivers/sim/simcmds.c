/* simmodem — see simmodem.h. This file: the AT command table and the
 * handlers. One table row per command: the handler for each syntax form
 * (exec "AT+X", set "AT+X=..", query "AT+X?", test "AT+X=?"), flags, and
 * a canned test answer. A form without a handler answers ERROR, like an
 * unknown command. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drivers/sim/simmodem_priv.h"

#define OPERATOR_NAME "SIMNET"
#define OPERATOR_PLMN "00101" /* the ITU test network, MCC 001 MNC 01 */
#define SIGNAL_RSSI 20        /* +CSQ <rssi>: -73 dBm */

typedef struct sim_res (*cmd_fn)(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f);

enum {
	NEED_SIM = 1 << 0, /* SIM PIN/PUK errors until the SIM is ready */
	SMS = 1 << 1,      /* a TS 27.005 command: errors are +CMS */
};

struct simcmd {
	const char *name;
	cmd_fn exec, set, query, test;
	unsigned flags;
	const char *test_text; /* answer to "=?" when test is NULL */
	const char *vendor;    /* only this vendor knows it; NULL: all */
};

/* --- helpers ----------------------------------------------------------- */

/* A bad parameter: +CME ERROR: 50, or +CMS ERROR: 304/305 (by mode). */
static struct sim_res bad_param(const struct simmodem *m, bool sms)
{
	if (sms)
		return SIM_CMS(m->s.cmgf ? 305 : CMS_BAD_PDU_PARAM);
	return SIM_CME(CME_BAD_PARAM);
}

/* Hex digits per character in the +CSCS charset: 4 in "UCS2", 2 in
 * "HEX", 0 (plain text) in the others. */
static unsigned hex_width(const struct simmodem *m)
{
	if (strcmp(m->s.cscs, "UCS2") == 0)
		return 4;
	return strcmp(m->s.cscs, "HEX") == 0 ? 2 : 0;
}

/* An ASCII string as +CSCS says strings travel (gammu, for one, switches
 * to "HEX" and decodes +CSCA, +COPS, +CPMS names that way). */
static const char *str_out(const struct simmodem *m, const char *in,
			   char *buf, size_t len)
{
	unsigned w = hex_width(m);
	size_t n = 0;

	if (w == 0)
		return in;
	for (; *in && n + w + 1 <= len; in++, n += w)
		snprintf(buf + n, w + 1, "%0*X", (int)w, (unsigned char)*in);
	buf[n] = '\0';
	return buf;
}

/* The inverse for parameters; false when not valid hex of ASCII. */
static bool str_in(const struct simmodem *m, const char *in, char *buf,
		   size_t len)
{
	unsigned w = hex_width(m), v;
	size_t n = 0, l = strlen(in);
	char digits[5];

	if (w == 0) {
		snprintf(buf, len, "%s", in);
		return l < len;
	}
	if (l % w != 0 || l / w >= len)
		return false;
	for (; *in; in += w) {
		memcpy(digits, in, w);
		digits[w] = '\0';
		if (strspn(digits, "0123456789abcdefABCDEF") != w ||
		    sscanf(digits, "%x", &v) != 1 || v == 0 || v > 0x7f)
			return false;
		buf[n++] = (char)v;
	}
	buf[n] = '\0';
	return true;
}

static struct sim_res ok_with(struct simmodem *m, const char *line)
{
	simmodem_info(m, "%s", line);
	return SIM_OK;
}

/* --- V.250 basic commands ------------------------------------------------- */

static struct sim_res cmd_e(struct simmodem *m, const struct simparse_cmd *c,
			    const struct simparse_fields *f)
{
	(void)f;
	if (strcmp(c->args, "1") == 0)
		m->s.echo = true;
	else if (c->args[0] == '\0' || strcmp(c->args, "0") == 0)
		m->s.echo = false;
	else
		return SIM_ERR;
	return SIM_OK;
}

/* Only verbose result codes (V1) and Q0 are modelled; digits other than
 * these are refused rather than half-supported. */
static struct sim_res cmd_v(struct simmodem *m, const struct simparse_cmd *c,
			    const struct simparse_fields *f)
{
	(void)m;
	(void)f;
	return strcmp(c->args, "1") == 0 ? SIM_OK : SIM_ERR;
}

static struct sim_res cmd_q(struct simmodem *m, const struct simparse_cmd *c,
			    const struct simparse_fields *f)
{
	(void)m;
	(void)f;
	return c->args[0] == '\0' || strcmp(c->args, "0") == 0 ? SIM_OK
							       : SIM_ERR;
}

static struct sim_res cmd_z(struct simmodem *m, const struct simparse_cmd *c,
			    const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_defaults(m);
	return SIM_OK;
}

static struct sim_res cmd_ok(struct simmodem *m, const struct simparse_cmd *c,
			     const struct simparse_fields *f)
{
	(void)m;
	(void)c;
	(void)f;
	return SIM_OK;
}

static struct sim_res cmd_i(struct simmodem *m, const struct simparse_cmd *c,
			    const struct simparse_fields *f)
{
	const char *const *v = m->o.vendor->ati;
	const char *p;

	(void)c;
	(void)f;
	for (; *v; v++) {
		p = strstr(*v, "{imei}");
		if (p)
			simmodem_info(m, "%.*s%s%s", (int)(p - *v), *v,
				      m->o.imei, p + 6);
		else
			simmodem_info(m, "%s", *v);
	}
	return SIM_OK;
}

/* S-registers: S3 (CR), S4 (LF), S5 (BS) as V.250 fixes them; the rest
 * read 0 and accept writes. */
static struct sim_res cmd_s(struct simmodem *m, const struct simparse_cmd *c,
			    const struct simparse_fields *f)
{
	static const int values[] = { [3] = 13, [4] = 10, [5] = 8 };
	long reg = strtol(c->args, NULL, 10);

	(void)f;
	if (c->kind == SIMPARSE_SET)
		return SIM_OK;
	simmodem_info(m, "%03d",
		      reg >= 0 && reg < 6 ? values[reg] : 0);
	return SIM_OK;
}

/* --- identity ----------------------------------------------------------- */

static struct sim_res cmd_cgmi(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, m->o.vendor->cgmi);
}

static struct sim_res cmd_cgmm(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, m->o.vendor->cgmm);
}

static struct sim_res cmd_cgmr(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, m->o.vendor->cgmr);
}

static struct sim_res cmd_cgsn(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, m->o.imei);
}

static struct sim_res cmd_cimi(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, m->o.imsi);
}

static struct sim_res cmd_ccid(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, m->o.iccid);
}

static struct sim_res cmd_gcap(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, "+GCAP: +CGSM");
}

static struct sim_res cmd_cpas(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, "+CPAS: 0");
}

/* --- settings ------------------------------------------------------------ */

/* Reads field 0 as an integer in [min, max] into *dst. */
static struct sim_res set_int(struct simmodem *m,
			      const struct simparse_fields *f, long min,
			      long max, int *dst, bool sms)
{
	long v;

	if (!simparse_has(f, 0) || !simparse_int(f, 0, min, max, 0, &v))
		return bad_param(m, sms);
	*dst = (int)v;
	return SIM_OK;
}

static struct sim_res cmee_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	return set_int(m, f, 0, 2, &m->s.cmee, false);
}

static struct sim_res cmee_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CMEE: %d", m->s.cmee);
	return SIM_OK;
}

static const char *const charsets[] = { "IRA", "GSM", "UCS2", "HEX",
					"8859-1", "PCCP437", NULL };

/* The charset name itself travels as plain text in both directions
 * (gammu sends AT+CSCS="HEX" while in HEX and reads +CSCS: "HEX"); a
 * name encoded in the current charset is accepted too. */
static struct sim_res cscs_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	char dec[sizeof(m->s.cscs)];

	(void)c;
	if (!simparse_has(f, 0))
		return bad_param(m, false);
	for (const char *const *v = charsets; *v; v++) {
		if (strcasecmp(*v, f->v[0]) == 0 ||
		    (str_in(m, f->v[0], dec, sizeof(dec)) &&
		     strcasecmp(*v, dec) == 0)) {
			snprintf(m->s.cscs, sizeof(m->s.cscs), "%s", *v);
			return SIM_OK;
		}
	}
	return SIM_CME(CME_NOT_SUPPORTED);
}

static struct sim_res cscs_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CSCS: \"%s\"", m->s.cscs);
	return SIM_OK;
}

static struct sim_res cfun_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	long fun, rst;

	(void)c;
	if (!simparse_int(f, 0, 0, 4, 1, &fun) || fun == 2 || fun == 3 ||
	    !simparse_int(f, 1, 0, 1, 0, &rst))
		return bad_param(m, false);
	m->cfun = (int)fun;
	if (rst == 1)
		m->reset_after = true; /* after the OK: see simmodem_final */
	else
		simmodem_update_reg(m);
	return SIM_OK;
}

static struct sim_res cfun_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CFUN: %d", m->cfun);
	return SIM_OK;
}

static struct sim_res curc_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	return set_int(m, f, 0, 1, &m->s.curc, false);
}

static struct sim_res curc_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "^CURC: %d", m->s.curc);
	return SIM_OK;
}

/* --- SIM ----------------------------------------------------------------- */

static const char *const cpin_names[] = {
	[SIM_READY] = "READY", [SIM_NEED_PIN] = "SIM PIN",
	[SIM_NEED_PUK] = "SIM PUK",
};

static struct sim_res cpin_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CPIN: %s", cpin_names[m->sim]);
	return SIM_OK;
}

/* A wrong PIN costs one of 3 tries; the last one blocks the SIM (PUK). */
static struct sim_res pin_wrong(struct simmodem *m)
{
	if (--m->pin_tries <= 0) {
		m->sim = SIM_NEED_PUK;
		if (m->o.boot_urcs && m->o.vendor->cpin_urc)
			simmodem_urc(m, "+CPIN: SIM PUK");
	}
	return SIM_CME(CME_BAD_PASSWORD);
}

/* AT+CPIN="<pin>" or, once blocked, AT+CPIN="<puk>","<new pin>". */
static struct sim_res cpin_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	if (!simparse_has(f, 0))
		return SIM_CME(CME_BAD_PARAM);
	switch (m->sim) {
	case SIM_READY:
		return SIM_CME(CME_NOT_ALLOWED);
	case SIM_NEED_PIN:
		if (strcmp(f->v[0], m->pin) != 0)
			return pin_wrong(m);
		break;
	case SIM_NEED_PUK:
		if (!simparse_has(f, 1) || strlen(f->v[1]) < 4 ||
		    strlen(f->v[1]) >= sizeof(m->pin))
			return SIM_CME(CME_BAD_PARAM);
		if (!m->o.puk || strcmp(f->v[0], m->o.puk) != 0)
			return SIM_CME(CME_BAD_PASSWORD);
		snprintf(m->pin, sizeof(m->pin), "%s", f->v[1]);
		break;
	}
	simmodem_sim_ready(m);
	return SIM_OK;
}

/* --- network --------------------------------------------------------------- */

static enum sim_reg_kind reg_kind(const struct simparse_cmd *c)
{
	if (strcmp(c->name, "+CGREG") == 0)
		return SIM_CGREG;
	return strcmp(c->name, "+CEREG") == 0 ? SIM_CEREG : SIM_CREG;
}

static struct sim_res reg_set(struct simmodem *m,
			      const struct simparse_cmd *c,
			      const struct simparse_fields *f)
{
	return set_int(m, f, 0, 2, &m->s.reg_n[reg_kind(c)], false);
}

static struct sim_res reg_query(struct simmodem *m,
				const struct simparse_cmd *c,
				const struct simparse_fields *f)
{
	char line[96];

	(void)f;
	simmodem_reg_line(m, reg_kind(c), true, line, sizeof(line));
	return ok_with(m, line);
}

static struct sim_res reg_test(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)f;
	simmodem_info(m, "%s: (0-2)", c->name);
	return SIM_OK;
}

static const char *operator_name(const struct simmodem *m, int format,
				 char *buf, size_t len)
{
	return str_out(m, format == 2 ? OPERATOR_PLMN : OPERATOR_NAME, buf,
		       len);
}

static struct sim_res cops_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	char buf[64];

	(void)c;
	(void)f;
	if (!simmodem_registered(m)) {
		simmodem_info(m, "+COPS: %d", m->cops_dereg ? 2 : 0);
		return SIM_OK;
	}
	simmodem_info(m, "+COPS: 0,%d,\"%s\"%s", m->s.cops_format,
		      operator_name(m, m->s.cops_format, buf, sizeof(buf)),
		      m->o.vendor->operator_act);
	return SIM_OK;
}

/* 0 automatic, 1/4 manual (only our network exists), 2 deregister,
 * 3 set the format. */
static struct sim_res cops_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	long mode, format;
	char oper[32];

	(void)c;
	if (!simparse_int(f, 0, 0, 4, 0, &mode) ||
	    !simparse_int(f, 1, 0, 2, m->s.cops_format, &format))
		return SIM_CME(CME_BAD_PARAM);
	if (mode == 3) {
		m->s.cops_format = (int)format;
		return SIM_OK;
	}
	if ((mode == 1 || mode == 4) &&
	    (!simparse_has(f, 2) || !str_in(m, f->v[2], oper, sizeof(oper)) ||
	     (strcmp(oper, OPERATOR_NAME) != 0 &&
	      strcmp(oper, OPERATOR_PLMN) != 0)))
		return SIM_CME(CME_NO_NETWORK);
	m->cops_dereg = mode == 2;
	simmodem_update_reg(m);
	return SIM_OK;
}

static struct sim_res cops_test(struct simmodem *m,
				const struct simparse_cmd *c,
				const struct simparse_fields *f)
{
	char a[64], b[64];

	(void)c;
	(void)f;
	simmodem_info(m, "+COPS: (2,\"%s\",\"%s\",\"%s\"%s),,(0-4),(0-2)",
		      operator_name(m, 0, a, sizeof(a)),
		      operator_name(m, 1, b, sizeof(b)), OPERATOR_PLMN,
		      m->o.vendor->operator_act);
	return SIM_OK;
}

static struct sim_res cmd_csq(struct simmodem *m,
			      const struct simparse_cmd *c,
			      const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CSQ: %d,99", m->cfun == 1 ? SIGNAL_RSSI : 99);
	return SIM_OK;
}

/* --- SMS settings --------------------------------------------------------- */

static struct sim_res cmgf_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	return set_int(m, f, 0, 1, &m->s.cmgf, true);
}

static struct sim_res cmgf_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CMGF: %d", m->s.cmgf);
	return SIM_OK;
}

static struct sim_res csca_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	char buf[2 * PDU_ADDR_MAX * 4];

	(void)c;
	(void)f;
	simmodem_info(m, "+CSCA: \"%s\",%d",
		      str_out(m, m->smsc, buf, sizeof(buf)),
		      m->smsc[0] == '+' ? 145 : 129);
	return SIM_OK;
}

static struct sim_res csca_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	char num[PDU_ADDR_MAX];
	long tosca;

	(void)c;
	if (f->n < 1 || !f->quoted[0] ||
	    !str_in(m, f->v[0], num, sizeof(num)) ||
	    !simparse_int(f, 1, 0, 255, 145, &tosca) ||
	    strspn(num + (num[0] == '+'), "0123456789") !=
		    strlen(num + (num[0] == '+')))
		return bad_param(m, true);
	snprintf(m->smsc, sizeof(m->smsc), "%s", num);
	return SIM_OK;
}

static struct sim_res csms_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	struct sim_res r;

	(void)c;
	r = set_int(m, f, 0, 1, &m->s.csms, true);
	if (r.type == SIM_R_OK)
		simmodem_info(m, "+CSMS: 1,1,1");
	return r;
}

static struct sim_res csms_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CSMS: %d,1,1,1", m->s.csms);
	return SIM_OK;
}

static struct sim_res csmp_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	return ok_with(m, "+CSMP: 17,167,0,0");
}

static struct sim_res cmms_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	(void)c;
	return set_int(m, f, 0, 2, &m->s.cmms, true);
}

static struct sim_res cmms_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	(void)c;
	(void)f;
	simmodem_info(m, "+CMMS: %d", m->s.cmms);
	return SIM_OK;
}

/* +CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>; omitted fields keep their value. */
static struct sim_res cnmi_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	static const long max[5] = { 3, 3, 3, 2, 1 };
	int v[5];
	long x;

	(void)c;
	if (f->n == 0 || f->n > 5)
		return bad_param(m, true);
	for (unsigned i = 0; i < 5; i++) {
		if (!simparse_int(f, i, 0, max[i], m->s.cnmi[i], &x))
			return bad_param(m, true);
		v[i] = (int)x;
	}
	memcpy(m->s.cnmi, v, sizeof(v));
	simsms_kick(m);
	return SIM_OK;
}

static struct sim_res cnmi_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	const int *v = m->s.cnmi;

	(void)c;
	(void)f;
	simmodem_info(m, "+CNMI: %d,%d,%d,%d,%d", v[0], v[1], v[2], v[3],
		      v[4]);
	return SIM_OK;
}

/* --- storage ---------------------------------------------------------------- */

/* One storage backs every name: "SM", "ME", "MT" and "SR" are accepted
 * and reported back as set, so drivers that insist on one still work. */
static bool mem_known(const char *name)
{
	static const char *const names[] = { "SM", "ME", "MT", "SR" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static struct sim_res cpms_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	unsigned used = simstore_used(m->store);
	unsigned cap = simstore_capacity(m->store);
	char name[SIM_MEM_MAX];

	(void)c;
	if (f->n < 1 || f->n > 3)
		return bad_param(m, true);
	for (unsigned i = 0; i < f->n; i++)
		if (simparse_has(f, i) &&
		    (!str_in(m, f->v[i], name, sizeof(name)) ||
		     !mem_known(name)))
			return SIM_CMS(CMS_NOT_ALLOWED);
	for (unsigned i = 0; i < f->n; i++)
		if (simparse_has(f, i))
			str_in(m, f->v[i], m->s.mem[i], sizeof(m->s.mem[i]));
	simmodem_info(m, "+CPMS: %u,%u,%u,%u,%u,%u", used, cap, used, cap,
		      used, cap);
	return SIM_OK;
}

static struct sim_res cpms_query(struct simmodem *m,
				 const struct simparse_cmd *c,
				 const struct simparse_fields *f)
{
	unsigned used = simstore_used(m->store);
	unsigned cap = simstore_capacity(m->store);
	char a[24], b[24], d[24];

	(void)c;
	(void)f;
	simmodem_info(m, "+CPMS: \"%s\",%u,%u,\"%s\",%u,%u,\"%s\",%u,%u",
		      str_out(m, m->s.mem[0], a, sizeof(a)), used, cap,
		      str_out(m, m->s.mem[1], b, sizeof(b)), used, cap,
		      str_out(m, m->s.mem[2], d, sizeof(d)), used, cap);
	return SIM_OK;
}

static struct sim_res cpms_test(struct simmodem *m,
				const struct simparse_cmd *c,
				const struct simparse_fields *f)
{
	char sm[24];
	const char *s = str_out(m, "SM", sm, sizeof(sm));

	(void)c;
	(void)f;
	simmodem_info(m, "+CPMS: (\"%s\"),(\"%s\"),(\"%s\")", s, s, s);
	return SIM_OK;
}

/* Reading and listing are PDU mode only in this simulator. */
static struct sim_res cmgr_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	struct simstore_msg *msg;
	long idx;

	(void)c;
	if (m->s.cmgf != 0)
		return SIM_CMS(CMS_NOT_ALLOWED);
	if (!simparse_has(f, 0) || !simparse_int(f, 0, 0, 65535, 0, &idx))
		return bad_param(m, true);
	msg = simstore_get(m->store, (unsigned)idx);
	if (!msg)
		return SIM_CMS(CMS_BAD_INDEX);
	simmodem_info(m, "+CMGR: %d,,%u", (int)msg->stat, msg->tpdu_len);
	simmodem_info(m, "%s", msg->hex);
	if (msg->stat == SIMSTORE_REC_UNREAD)
		msg->stat = SIMSTORE_REC_READ;
	return SIM_OK;
}

static struct sim_res cmgl_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	struct simstore_msg *msg;
	unsigned after = 0;
	long stat;

	(void)c;
	if (m->s.cmgf != 0)
		return SIM_CMS(CMS_NOT_ALLOWED);
	if (f->n > 1 || !simparse_int(f, 0, 0, 4, 0, &stat))
		return bad_param(m, true);
	while ((msg = simstore_next(m->store, after,
				    (enum simstore_stat)stat))) {
		if (after > 0)
			simmodem_noise(m); /* between entries, never inside */
		simmodem_info(m, "+CMGL: %u,%d,,%u", msg->index,
			      (int)msg->stat, msg->tpdu_len);
		simmodem_info(m, "%s", msg->hex);
		if (msg->stat == SIMSTORE_REC_UNREAD)
			msg->stat = SIMSTORE_REC_READ;
		after = msg->index;
	}
	return SIM_OK;
}

static struct sim_res cmgd_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	long idx, flag;

	(void)c;
	if (!simparse_int(f, 0, 0, 65535, 0, &idx) ||
	    !simparse_int(f, 1, 0, 4, 0, &flag) || f->n > 2)
		return bad_param(m, true);
	if (flag > 0)
		simstore_del_flag(m->store, (int)flag);
	else if (simstore_del(m->store, (unsigned)idx) < 0)
		return SIM_CMS(CMS_BAD_INDEX);
	simsms_kick(m); /* the network retries what found it full */
	return SIM_OK;
}

static struct sim_res cmgd_test(struct simmodem *m,
				const struct simparse_cmd *c,
				const struct simparse_fields *f)
{
	struct simstore_msg *msg;
	unsigned after = 0;
	char list[256] = "";
	size_t n = 0;

	(void)c;
	(void)f;
	while ((msg = simstore_next(m->store, after, SIMSTORE_ALL)) &&
	       n + 8 < sizeof(list)) {
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%u",
				      n ? "," : "", msg->index);
		after = msg->index;
	}
	simmodem_info(m, "+CMGD: (%s),(0-4)", list);
	return SIM_OK;
}

/* --- sending ------------------------------------------------------------------ */

static struct sim_res cmgs_set(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	long len;

	(void)c;
	if (m->s.cmgf != 0)
		return SIM_CMS(CMS_NOT_ALLOWED);
	/* 7: the shortest SUBMIT TPDU; 164: the longest (TS 23.040 9.2.2.2) */
	if (f->n != 1 || !simparse_has(f, 0) ||
	    !simparse_int(f, 0, 7, 164, 0, &len))
		return bad_param(m, true);
	m->pdu_expect = (unsigned)len;
	return (struct sim_res){ SIM_R_PROMPT, 0 };
}

/* +CNMA, +CNMA=0/1 (RP-ACK) and +CNMA=2 (RP-ERROR) without a PDU. */
static struct sim_res cnma_any(struct simmodem *m,
			       const struct simparse_cmd *c,
			       const struct simparse_fields *f)
{
	long n;

	(void)c;
	if (f->n > 1 || !simparse_int(f, 0, 0, 2, 0, &n))
		return bad_param(m, true);
	return simsms_cnma(m);
}

/* --- the table ----------------------------------------------------------- */

static const struct simcmd cmds[] = {
	/* V.250 basic */
	{ "E", .exec = cmd_e },
	{ "V", .exec = cmd_v },
	{ "Q", .exec = cmd_q },
	{ "Z", .exec = cmd_z },
	{ "&F", .exec = cmd_z },
	{ "I", .exec = cmd_i },
	{ "S", .query = cmd_s, .set = cmd_s },
	{ "&C", .exec = cmd_ok },
	{ "&D", .exec = cmd_ok },
	{ "&K", .exec = cmd_ok },
	{ "&W", .exec = cmd_ok },
	{ "H", .exec = cmd_ok },
	{ "L", .exec = cmd_ok },
	{ "M", .exec = cmd_ok },
	{ "X", .exec = cmd_ok },
	/* identity (27.007 5) */
	{ "+CGMI", .exec = cmd_cgmi, .test_text = "" },
	{ "+GMI", .exec = cmd_cgmi },
	{ "+CGMM", .exec = cmd_cgmm, .test_text = "" },
	{ "+GMM", .exec = cmd_cgmm },
	{ "+CGMR", .exec = cmd_cgmr, .test_text = "" },
	{ "+GMR", .exec = cmd_cgmr },
	{ "+CGSN", .exec = cmd_cgsn, .test_text = "" },
	{ "+GSN", .exec = cmd_cgsn },
	{ "+GCAP", .exec = cmd_gcap },
	{ "+CIMI", .exec = cmd_cimi, .flags = NEED_SIM, .test_text = "" },
	{ "+CCID", .exec = cmd_ccid, .flags = NEED_SIM },
	{ "+CPAS", .exec = cmd_cpas, .test_text = "+CPAS: (0-5)" },
	/* control and settings */
	{ "+CMEE", .set = cmee_set, .query = cmee_query,
	  .test_text = "+CMEE: (0-2)" },
	{ "+CSCS", .set = cscs_set, .query = cscs_query,
	  .test_text = "+CSCS: (\"IRA\",\"GSM\",\"UCS2\",\"HEX\",\"8859-1\","
		       "\"PCCP437\")" },
	{ "+CFUN", .set = cfun_set, .query = cfun_query,
	  .test_text = "+CFUN: (0,1,4),(0-1)" },
	{ "^CURC", .set = curc_set, .query = curc_query,
	  .test_text = "^CURC: (0-1)", .vendor = "huawei" },
	/* SIM and network */
	{ "+CPIN", .set = cpin_set, .query = cpin_query, .test_text = "" },
	{ "+CREG", .set = reg_set, .query = reg_query, .test = reg_test },
	{ "+CGREG", .set = reg_set, .query = reg_query, .test = reg_test },
	{ "+CEREG", .set = reg_set, .query = reg_query, .test = reg_test },
	{ "+COPS", .set = cops_set, .query = cops_query, .test = cops_test },
	{ "+CSQ", .exec = cmd_csq, .test_text = "+CSQ: (0-31,99),(0-7,99)" },
	/* SMS (27.005) */
	{ "+CSMS", .set = csms_set, .query = csms_query, .flags = SMS,
	  .test_text = "+CSMS: (0,1)" },
	{ "+CMGF", .set = cmgf_set, .query = cmgf_query, .flags = SMS,
	  .test_text = "+CMGF: (0,1)" },
	{ "+CSCA", .set = csca_set, .query = csca_query,
	  .flags = SMS | NEED_SIM, .test_text = "" },
	{ "+CSMP", .set = cmd_ok, .query = csmp_query, .flags = SMS },
	{ "+CMMS", .set = cmms_set, .query = cmms_query, .flags = SMS,
	  .test_text = "+CMMS: (0-2)" },
	{ "+CNMI", .set = cnmi_set, .query = cnmi_query, .flags = SMS,
	  .test_text = "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)" },
	{ "+CPMS", .set = cpms_set, .query = cpms_query, .test = cpms_test,
	  .flags = SMS | NEED_SIM },
	{ "+CMGS", .set = cmgs_set, .flags = SMS | NEED_SIM, .test_text = "" },
	{ "+CMGR", .set = cmgr_set, .flags = SMS | NEED_SIM, .test_text = "" },
	{ "+CMGL", .set = cmgl_set, .exec = cmgl_set, .flags = SMS | NEED_SIM,
	  .test_text = "+CMGL: (0-4)" },
	{ "+CMGD", .set = cmgd_set, .test = cmgd_test,
	  .flags = SMS | NEED_SIM },
	{ "+CNMA", .exec = cnma_any, .set = cnma_any, .flags = SMS,
	  .test_text = "+CNMA: (0-2)" },
};

static const struct simcmd *find(const struct simmodem *m, const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, name) != 0)
			continue;
		if (cmds[i].vendor &&
		    strcmp(cmds[i].vendor, m->o.vendor->name) != 0)
			return NULL;
		return &cmds[i];
	}
	return NULL;
}

static struct sim_res sim_locked(const struct simmodem *m, bool sms)
{
	if (m->sim == SIM_NEED_PUK)
		return sms ? SIM_CMS(CMS_SIM_PUK) : SIM_CME(CME_SIM_PUK);
	return sms ? SIM_CMS(CMS_SIM_PIN) : SIM_CME(CME_SIM_PIN);
}

struct sim_res simcmds_run(struct simmodem *m, const struct simparse_cmd *c)
{
	const struct simcmd *d = find(m, c->name);
	struct simparse_fields f;
	cmd_fn fn;

	if (!d)
		return SIM_ERR;
	if (simparse_fields(c->args, &f) < 0)
		return bad_param(m, d->flags & SMS);
	if ((d->flags & NEED_SIM) && m->sim != SIM_READY)
		return sim_locked(m, d->flags & SMS);
	switch (c->kind) {
	case SIMPARSE_EXEC:
		fn = d->exec;
		break;
	case SIMPARSE_SET:
		fn = d->set;
		break;
	case SIMPARSE_QUERY:
		fn = d->query;
		break;
	default:
		fn = d->test;
		if (!fn && d->test_text) {
			if (d->test_text[0])
				simmodem_info(m, "%s", d->test_text);
			return SIM_OK;
		}
	}
	return fn ? fn(m, c, &f) : SIM_ERR;
}
