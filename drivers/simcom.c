/* simcom — SIMCom SIM800/SIM900 (2G) and SIM7600 (LTE) quirks. */
#include "drivers/quirks.h"

#include <stddef.h>

/* +CGMI "SIMCOM_Ltd" (SIM800L), "SIMCOM INCORPORATED" (SIM7600E-H);
 * ATI "SIM800 R14.18". */
static const char *const simcom_match[] = {
	"SIMCOM", "SIM800", "SIM900", "SIM7600", "SIM7000", NULL,
};

/* SIM800L at power-on:
 *   "RDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n"
 *   "\r\nSMS Ready"
 * SIM7600 adds "PB DONE". Network time arrives as "*PSUTTZ: ..." and
 * "DST: 0" with AT+CLTS=1, and the supply monitor prints
 * "UNDER-VOLTAGE WARNNING" / "OVER-VOLTAGE WARNNING" (sic). */
static const char *const simcom_ignore[] = {
	"Call Ready", "SMS Ready", "PB DONE", "*PSUTTZ:", "DST:",
	"+CTZV:", "UNDER-VOLTAGE", "OVER-VOLTAGE", NULL,
};

/* SIM7600 answers AT+CFUN=1,1 with ERROR on some firmware; its own
 * AT+CRESET reboots the module: "AT+CRESET\r\r\nOK\r\n", then USB drops. */
static const char *const simcom_reset[] = { "AT+CFUN=1,1", "AT+CRESET", NULL };

/* SIM800: AT+CPMS=? lists ("SM","ME","SM_P","ME_P","MT") with no "SR",
 * so status reports cannot be stored (ds=2); ask for them routed as
 * "+CDS: 25\r\n0791...<pdu>" (ds=1) first. */
static const char *const simcom_cnmi[] = {
	"AT+CNMI=2,1,0,1,0",
	"AT+CNMI=2,1",
	NULL,
};

const struct modem_quirks quirks_simcom = {
	.name = "simcom",
	.match = simcom_match,
	.ignore_urcs = simcom_ignore,
	/* SIM800 with AT+EXUNSOL="SQ",1: "+CSQN: 21,0" (rssi, ber) */
	.signal_urc = "+CSQN:",
	.reset_cmds = simcom_reset,
	/* SIM800 prints "RDY" about 3 s after AT+CFUN=1,1; the sync step
	 * keeps trying "AT" after this wait. */
	.reset_wait = 3.0,
	.cnmi = simcom_cnmi,
};
