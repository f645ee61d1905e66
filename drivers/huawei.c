/* huawei — Huawei E3372 (stick/modem mode, 12d1:1506) and E17x / E1550
 * (12d1:1001, 12d1:1436) quirks. HiLink firmware (12d1:14dc) has no AT
 * port at all and cannot be driven. */
#include "drivers/quirks.h"

#include <stddef.h>

/* +CGMI "huawei"; ATI "Manufacturer: huawei\r\nModel: E3372\r\n
 * Revision: 22.328.62.00.1217\r\nIMEI: ...\r\n+GCAP: +CGSM,+DS,+ES". */
static const char *const huawei_match[] = { "huawei", NULL };

/* Until AT^CURC=0 the sticks chatter: "^RSSI: 18", "^MODE: 5,4",
 * "^SRVST: 2", "^SIMST: 1", "^HCSQ: \"LTE\",52,45,126,31", and the
 * E1550 sends "^BOOT:20359812,0,0,0,72" every few seconds; "^SYSSTART"
 * at power-on; "^DSFLOWRPT:" while a data call is up. */
static const char *const huawei_ignore[] = {
	"^BOOT:", "^MODE:", "^SRVST:", "^SIMST:", "^HCSQ:",
	"^DSFLOWRPT:", "^CSNR:", "^EARST:", "^STIN:", "^NWTIME:",
	"^CEND:", "^ORIG:", "^CONF:", "^CONN:", "^RSSILVL:", NULL,
};

/* "^SYSSTART" opens every boot. */
static const char *const huawei_boot[] = { "^SYSSTART", NULL };

/* "^SMMEMFULL: \"SM\"" when the message storage fills up. */
static const char *const huawei_memfull[] = { "^SMMEMFULL:", NULL };

/* Quiets the periodic URCs above ("AT^CURC=0\r\r\nOK"); older E17x
 * firmware answers "COMMAND NOT SUPPORT", which is harmless. */
static const char *const huawei_init[] = { "AT^CURC=0", NULL };

/* E3372 and E1550 reboot on AT+CFUN=1,1 (the USB device re-enumerates:
 * the driver sees the port vanish and re-opens it); firmware that refuses
 * it takes the vendor's AT^RESET. */
static const char *const huawei_reset[] = { "AT+CFUN=1,1", "AT^RESET", NULL };

/* Huawei's AT spec accepts <ds>=2 with <bfr>=0; "+CDSI: \"SM\",4". */
static const char *const huawei_cnmi[] = {
	"AT+CNMI=2,1,0,2,0",
	"AT+CNMI=2,1,0,1,0",
	NULL,
};

/* Unsupported commands end with "COMMAND NOT SUPPORT" instead of ERROR;
 * without this knob they would time out. */
static const struct quirk_final huawei_finals[] = {
	{ "COMMAND NOT SUPPORT", AT_ERR_ERROR },
	{ NULL, AT_ERR_OK },
};

const struct modem_quirks quirks_huawei = {
	.name = "huawei",
	.match = huawei_match,
	.ignore_urcs = huawei_ignore,
	.memfull_urcs = huawei_memfull,
	.boot_urcs = huawei_boot,
	/* "^RSSI: 18": the same 0..31 scale as +CSQ */
	.signal_urc = "^RSSI:",
	.finals = huawei_finals,
	.init_cmds = huawei_init,
	.reset_cmds = huawei_reset,
	.reset_wait = 3.0,
	.cnmi = huawei_cnmi,
};
