/* simvendor — what tells modem families apart on the wire: identity
 * strings, the boot burst, unsolicited noise. One table entry per family;
 * the strings are what the real devices print (from their AT manuals and
 * captured sessions), so driver=auto and the quirk drivers can be tested.
 *
 * "{imei}" in an ATI line is replaced by the IMEI. */
#ifndef SMSGW_SIMVENDOR_H
#define SMSGW_SIMVENDOR_H

#include <stdbool.h>

struct simvendor {
	const char *name;               /* "generic", "simcom", ... */
	const char *const *ati;         /* ATI lines, NULL-terminated */
	const char *cgmi, *cgmm, *cgmr; /* +CGMI, +CGMM, +CGMR lines */
	const char *const *boot_urcs;   /* at power-on, before the SIM */
	bool cpin_urc;                  /* "+CPIN: <state>" after boot_urcs
					   and when the PIN is entered */
	const char *const *ready_urcs;  /* once the SIM is ready */
	const char *const *noise;       /* URCs --noise scatters around */
	const char *operator_act;       /* +COPS <AcT> suffix, "" for none */
	bool rssi_urc;                  /* periodic "^RSSI: n" until
					   AT^CURC=0 (Huawei) */
};

/* The family by name, or NULL. */
const struct simvendor *simvendor_find(const char *name);

/* "generic, simcom, quectel, huawei" for usage messages. */
const char *simvendor_names(void);

#endif
