/* quectel — Quectel EC25/EG25 (LTE) and M35 (2G) quirks. */
#include "drivers/quirks.h"

#include <stddef.h>

/* +CGMI "Quectel" (EC25), "Quectel_Ltd" (M35); ATI "Quectel\r\nEC25\r\n
 * Revision: EC25EFAR06A06M4G". */
static const char *const quectel_match[] = { "Quectel", NULL };

/* EC25 at power-on:
 *   "RDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n
 *    +QIND: SMS DONE\r\n\r\n+QIND: PB DONE"
 * and later "+QIND: \"act\",\"LTE\"", "+QIND: \"csq\",21,99" (with
 * AT+QINDCFG="csq",1); "POWERED DOWN" before a power-off. */
static const char *const quectel_ignore[] = {
	"+QIND:", "+QUSIM:", "POWERED DOWN", "+QSTK", NULL,
};

/* EC25 with AT+QINDCFG="smsfull",1: "+QIND: \"smsfull\",\"SM\"". */
static const char *const quectel_memfull[] = { "+QIND: \"smsfull\"", NULL };

/* Asks the EC2x for the "storage full" URC above; the M35 answers ERROR,
 * which init ignores. */
static const char *const quectel_init[] = { "AT+QINDCFG=\"smsfull\",1,0",
					    NULL };

/* AT+CFUN=1,1 reboots the EC25 and the M35 ("OK", then "RDY" again).
 * Not AT+QPOWD: that powers the module OFF ("POWERED DOWN"), and it stays
 * off until its PWRKEY is pulsed, which software cannot do. */
static const char *const quectel_reset[] = { "AT+CFUN=1,1", NULL };

const struct modem_quirks quirks_quectel = {
	.name = "quectel",
	.match = quectel_match,
	.ignore_urcs = quectel_ignore,
	.memfull_urcs = quectel_memfull,
	/* "+QIND: \"csq\",21,99": rssi first */
	.signal_urc = "+QIND: \"csq\",",
	.init_cmds = quectel_init,
	.reset_cmds = quectel_reset,
	/* EC25 prints "RDY" 10+ s after a reset; the USB ports vanish
	 * meanwhile (the driver re-opens); M35 on a UART takes ~3 s. */
	.reset_wait = 3.0,
	/* The SIM's "SM" holds 20-50 messages; the EC25's "ME" holds 255:
	 * "AT+CPMS?\r\r\n+CPMS: \"ME\",0,255,\"ME\",0,255,\"ME\",0,255". */
	.storage = "ME",
};
