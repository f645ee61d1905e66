/* aterr — +CME / +CMS error tables (see aterr.h). */
#include "at/aterr.h"

#include <stdio.h>
#include <strings.h>

struct err_info {
	const char *name;
	enum at_err_class cls;
};

#define T AT_ERRC_TRANSIENT
#define P AT_ERRC_PERMANENT
#define C AT_ERRC_CONFIG
#define S AT_ERRC_STORAGE

/* +CMS ERROR (TS 27.005 3.2.5). 0..127 are the RP cause values of TS 24.011
 * (annex E.2), 128..255 the TP-FCS values of TS 23.040 (9.2.3.22), 300..
 * the ME/TA failures. The class says whether the outbox may retry. */
static const struct err_info cms_table[] = {
	[1] = { "unassigned number", P },
	[8] = { "operator determined barring", P },
	[10] = { "call barred", P },
	[17] = { "network failure", T },
	[21] = { "short message transfer rejected", P },
	[22] = { "memory capacity exceeded", T },
	[27] = { "destination out of order", T },
	[28] = { "unidentified subscriber", T },
	[29] = { "facility rejected", P },
	[30] = { "unknown subscriber", P },
	[38] = { "network out of order", T },
	[41] = { "temporary failure", T },
	[42] = { "congestion", T },
	[47] = { "resources unavailable", T },
	[50] = { "requested facility not subscribed", C },
	[69] = { "requested facility not implemented", P },
	[81] = { "invalid short message transfer reference value", T },
	[95] = { "invalid message", P },
	[96] = { "invalid mandatory information", P },
	[97] = { "message type non-existent or not implemented", P },
	[98] = { "message not compatible with protocol state", T },
	[99] = { "information element non-existent or not implemented", P },
	[111] = { "protocol error", T },
	[127] = { "interworking error", T },
	[128] = { "telematic interworking not supported", P },
	[129] = { "short message type 0 not supported", P },
	[130] = { "cannot replace short message", P },
	[143] = { "unspecified TP-PID error", P },
	[144] = { "data coding scheme not supported", P },
	[145] = { "message class not supported", P },
	[159] = { "unspecified TP-DCS error", P },
	[160] = { "command cannot be actioned", P },
	[161] = { "command unsupported", P },
	[175] = { "unspecified TP-Command error", P },
	[176] = { "TPDU not supported", P },
	[192] = { "SC busy", T },
	[193] = { "no SC subscription", C },
	[194] = { "SC system failure", T },
	[195] = { "invalid SME address", P },
	[196] = { "destination SME barred", P },
	[197] = { "SM rejected, duplicate SM", P },
	[198] = { "TP-VPF not supported", P },
	[199] = { "TP-VP not supported", P },
	[208] = { "SIM SMS storage full", S },
	[209] = { "no SMS storage capability in SIM", C },
	[210] = { "error in MS", T },
	[211] = { "memory capacity exceeded", S },
	[212] = { "SIM application toolkit busy", T },
	[213] = { "SIM data download error", T },
	[255] = { "unspecified error cause", T },
	[300] = { "ME failure", T },
	[301] = { "SMS service of ME reserved", T },
	[302] = { "operation not allowed", T }, /* also "SIM not ready yet" */
	[303] = { "operation not supported", P },
	[304] = { "invalid PDU mode parameter", P },
	[305] = { "invalid text mode parameter", P },
	[310] = { "SIM not inserted", C },
	[311] = { "SIM PIN required", C },
	[312] = { "PH-SIM PIN required", C },
	[313] = { "SIM failure", C },
	[314] = { "SIM busy", T },
	[315] = { "SIM wrong", C },
	[316] = { "SIM PUK required", C },
	[317] = { "SIM PIN2 required", C },
	[318] = { "SIM PUK2 required", C },
	[320] = { "memory failure", T },
	[321] = { "invalid memory index", P },
	[322] = { "memory full", S },
	[330] = { "SMSC address unknown", C },
	[331] = { "no network service", T },
	[332] = { "network timeout", T },
	[340] = { "no +CNMA acknowledgement expected", P },
	[500] = { "unknown error", T },
};

/* +CME ERROR (TS 27.007 9.2.1 general, 9.2.2 GPRS). */
static const struct err_info cme_table[] = {
	[0] = { "phone failure", T },
	[1] = { "no connection to phone", T },
	[2] = { "phone adaptor link reserved", T },
	[3] = { "operation not allowed", T }, /* as CMS 302 */
	[4] = { "operation not supported", P },
	[5] = { "PH-SIM PIN required", C },
	[6] = { "PH-FSIM PIN required", C },
	[7] = { "PH-FSIM PUK required", C },
	[10] = { "SIM not inserted", C },
	[11] = { "SIM PIN required", C },
	[12] = { "SIM PUK required", C },
	[13] = { "SIM failure", C },
	[14] = { "SIM busy", T },
	[15] = { "SIM wrong", C },
	[16] = { "incorrect password", C },
	[17] = { "SIM PIN2 required", C },
	[18] = { "SIM PUK2 required", C },
	[20] = { "memory full", S },
	[21] = { "invalid index", P },
	[22] = { "not found", P },
	[23] = { "memory failure", T },
	[24] = { "text string too long", P },
	[25] = { "invalid characters in text string", P },
	[26] = { "dial string too long", P },
	[27] = { "invalid characters in dial string", P },
	[30] = { "no network service", T },
	[31] = { "network timeout", T },
	[32] = { "network not allowed - emergency calls only", T },
	[40] = { "network personalization PIN required", C },
	[41] = { "network personalization PUK required", C },
	[42] = { "network subset personalization PIN required", C },
	[43] = { "network subset personalization PUK required", C },
	[44] = { "service provider personalization PIN required", C },
	[45] = { "service provider personalization PUK required", C },
	[46] = { "corporate personalization PIN required", C },
	[47] = { "corporate personalization PUK required", C },
	[48] = { "hidden key required", C },
	[49] = { "EAP method not supported", P },
	[50] = { "incorrect parameters", P },
	[51] = { "command implemented but currently disabled", P },
	[52] = { "command aborted by user", T },
	[53] = { "not attached to network due to MT functionality "
		 "restrictions", T },
	[54] = { "modem not allowed - MT restricted to emergency calls "
		 "only", T },
	[55] = { "operation not allowed because of MT functionality "
		 "restrictions", T },
	[56] = { "fixed dial number only allowed", P },
	[57] = { "temporarily out of service due to other MT usage", T },
	[58] = { "language/alphabet not supported", P },
	[59] = { "unexpected data value", P },
	[60] = { "system failure", T },
	[61] = { "data missing", P },
	[62] = { "call barred", P },
	[63] = { "message waiting indication subscription failure", T },
	[100] = { "unknown", T },
	[103] = { "illegal MS", C },
	[106] = { "illegal ME", C },
	[107] = { "GPRS services not allowed", C },
	[111] = { "PLMN not allowed", C },
	[112] = { "location area not allowed", T },
	[113] = { "roaming not allowed in this location area", T },
	[132] = { "service option not supported", P },
	[133] = { "requested service option not subscribed", C },
	[134] = { "service option temporarily out of order", T },
	[148] = { "unspecified GPRS error", T },
	[149] = { "PDP authentication failure", C },
	[150] = { "invalid mobile class", P },
};

#undef T
#undef P
#undef C
#undef S

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Names and classes of the types that carry no code. */
static const struct {
	const char *id;   /* at_err_type_name() */
	const char *name; /* at_err_name() */
	enum at_err_class cls;
} type_table[AT_ERR_TYPE_COUNT] = {
	[AT_ERR_OK] = { "ok", "OK", AT_ERRC_OK },
	[AT_ERR_ERROR] = { "error", "ERROR", AT_ERRC_TRANSIENT },
	[AT_ERR_CME] = { "cme", "unknown CME error", AT_ERRC_TRANSIENT },
	[AT_ERR_CMS] = { "cms", "unknown CMS error", AT_ERRC_TRANSIENT },
	[AT_ERR_TIMEOUT] = { "timeout", "timeout", AT_ERRC_TRANSIENT },
	[AT_ERR_IO] = { "io", "I/O error", AT_ERRC_TRANSIENT },
	[AT_ERR_NO_CARRIER] = { "no_carrier", "NO CARRIER",
				AT_ERRC_TRANSIENT },
	[AT_ERR_BUSY] = { "busy", "BUSY", AT_ERRC_TRANSIENT },
	[AT_ERR_NO_ANSWER] = { "no_answer", "NO ANSWER", AT_ERRC_TRANSIENT },
	[AT_ERR_NO_DIALTONE] = { "no_dialtone", "NO DIALTONE",
				 AT_ERRC_TRANSIENT },
	[AT_ERR_CONNECT] = { "connect", "CONNECT", AT_ERRC_OK },
};

/* The table entry for err's code, or NULL (no code, or not listed). */
static const struct err_info *lookup(const struct at_error *err)
{
	const struct err_info *tab;
	size_t n;

	if (err->type == AT_ERR_CMS) {
		tab = cms_table;
		n = N_ELEMS(cms_table);
	} else if (err->type == AT_ERR_CME) {
		tab = cme_table;
		n = N_ELEMS(cme_table);
	} else {
		return NULL;
	}
	if (err->code < 0 || (size_t)err->code >= n || !tab[err->code].name)
		return NULL;
	return &tab[err->code];
}

static bool type_valid(enum at_err_type type)
{
	return (unsigned)type < AT_ERR_TYPE_COUNT;
}

const char *at_err_type_name(enum at_err_type type)
{
	return type_valid(type) ? type_table[type].id : "invalid";
}

const char *at_err_name(const struct at_error *err)
{
	const struct err_info *e = lookup(err);

	if (e)
		return e->name;
	return type_valid(err->type) ? type_table[err->type].name : "invalid";
}

enum at_err_class at_err_class(const struct at_error *err)
{
	const struct err_info *e = lookup(err);

	if (e)
		return e->cls;
	if (err->type == AT_ERR_CMS && err->code >= 512)
		return AT_ERRC_TRANSIENT; /* manufacturer specific */
	return type_valid(err->type) ? type_table[err->type].cls
				     : AT_ERRC_TRANSIENT;
}

bool at_err_is_transient(const struct at_error *err)
{
	enum at_err_class c = at_err_class(err);

	return c == AT_ERRC_TRANSIENT || c == AT_ERRC_STORAGE;
}

bool at_err_is_ok(const struct at_error *err)
{
	return err->type == AT_ERR_OK || err->type == AT_ERR_CONNECT;
}

int at_err_format(const struct at_error *err, char *buf, size_t size)
{
	const char *name = at_err_name(err);

	switch (err->type) {
	case AT_ERR_CME:
	case AT_ERR_CMS:
		if (err->code < 0)
			return snprintf(buf, size, "+%s ERROR: ? (%s)",
					err->type == AT_ERR_CME ? "CME" : "CMS",
					name);
		return snprintf(buf, size, "+%s ERROR: %d (%s)",
				err->type == AT_ERR_CME ? "CME" : "CMS",
				err->code, name);
	default:
		return snprintf(buf, size, "%s", name);
	}
}

int at_err_code_from_text(enum at_err_type type, const char *text)
{
	const struct err_info *tab;
	size_t n;

	if (type == AT_ERR_CMS) {
		tab = cms_table;
		n = N_ELEMS(cms_table);
	} else if (type == AT_ERR_CME) {
		tab = cme_table;
		n = N_ELEMS(cme_table);
	} else {
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (tab[i].name && strcasecmp(tab[i].name, text) == 0)
			return (int)i;
	return -1;
}
