/* quirks — the generic 27.005/27.007 set, the registry and detection. The
 * vendor sets live in drivers/simcom.c, drivers/quectel.c and
 * drivers/huawei.c. */
#include "drivers/quirks.h"

#include <string.h>
#include <strings.h>

/* Lines most modules print at power-on although 27.007 does not define
 * them as URCs: "+CFUN: 1", "+CPIN: READY". Registered as URCs they never
 * end up inside an ATI-style (bare) response; an AT+CPIN? answer still
 * reaches its command, which is classified first. "+CGREG:" (packet
 * domain registration) is standard but of no use for SMS. */
static const char *const generic_ignore[] = {
	"+CFUN:", "+CPIN:", "+CGREG:", NULL,
};

/* "RDY": the first line of SIMCom, Quectel and many other modules after a
 * power-on or a brown-out reboot, which also forgets CMGF/CNMI/CPMS. */
static const char *const generic_boot[] = { "RDY", NULL };

/* 27.007 8.1: <fun>=1 with <rst>=1 resets the MT before setting it. */
static const char *const generic_reset[] = { "AT+CFUN=1,1", NULL };

/* 27.005 3.4.1 <mode>,<mt>,<bm>,<ds>,<bfr>: SMS as "+CMTI: <mem>,<index>"
 * (mt=1: stored first, so nothing is lost while we are down), status
 * reports stored as "+CDSI: <mem>,<index>" (ds=2) or, where that is
 * refused, routed as "+CDS: <len>\r\n<pdu>" (ds=1); the last resort gets
 * no status reports at all. */
static const char *const generic_cnmi[] = {
	"AT+CNMI=2,1,0,2,0",
	"AT+CNMI=2,1,0,1,0",
	"AT+CNMI=1,1,0,1,0",
	"AT+CNMI=2,1",
	NULL,
};

static const char *const no_strings[] = { NULL };

const struct modem_quirks quirks_generic = {
	.name = "generic",
	.match = no_strings,
	.ignore_urcs = generic_ignore,
	.memfull_urcs = no_strings,
	.boot_urcs = generic_boot,
	.signal_urc = NULL,
	.finals = NULL,
	.init_cmds = no_strings,
	.reset_cmds = generic_reset,
	/* AT+CFUN=1,1 answers OK and then reboots; talking at once would get
	 * the OK of a modem about to go away. */
	.reset_wait = 2.0,
	.storage = "SM",
	.cnmi = generic_cnmi,
};

const struct modem_quirks *const quirks_table[] = {
	&quirks_generic, &quirks_simcom, &quirks_quectel, &quirks_huawei, NULL,
};

const struct modem_quirks *quirks_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; quirks_table[i]; i++)
		if (strcasecmp(quirks_table[i]->name, name) == 0)
			return quirks_table[i];
	return NULL;
}

bool quirks_name_valid(const char *name)
{
	return !name || !*name || strcasecmp(name, "auto") == 0 ||
	       quirks_find(name) != NULL;
}

const char *quirks_names(void)
{
	return "auto, generic, simcom, quectel, huawei";
}

static bool contains(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

const struct modem_quirks *quirks_detect(const char *cgmi, const char *ati)
{
	/* quirks_table[0] is the generic set: it matches nothing. */
	for (size_t i = 1; quirks_table[i]; i++) {
		const struct modem_quirks *q = quirks_table[i];

		for (size_t j = 0; q->match && q->match[j]; j++)
			if (contains(cgmi, q->match[j]) ||
			    contains(ati, q->match[j]))
				return q;
	}
	return &quirks_generic;
}
