/* quirks — what sets one modem family apart from the generic
 * 27.005/27.007 driver, as data (STYLE 7, tiers a and b).
 *
 * `quirks_generic` is the base. A vendor table (drivers/simcom.c,
 * drivers/quectel.c, drivers/huawei.c) sets only the fields where its
 * modems differ; QUIRK(q, field) reads a field with the generic value as
 * the fallback. The URC lists and extra finals are the exception: a
 * vendor's ADD to the generic ones (they are engine knobs, tier a).
 * Every vendor entry shows the modem's bytes in a comment.
 *
 * Pure data and pure functions: nothing here does I/O. */
#ifndef SMSGW_QUIRKS_H
#define SMSGW_QUIRKS_H

#include <stdbool.h>
#include <stddef.h>

#include "at/aterr.h"

/* A vendor line that ends a command (tier a: at_chat_add_final). */
struct quirk_final {
	const char *prefix;
	enum at_err_type type;
};

struct modem_quirks {
	const char *name; /* "generic", "simcom", "quectel", "huawei" */
	/* Detection: case-insensitive substrings of the +CGMI or ATI text. */
	const char *const *match;

	/* Tier a: knobs on the AT engine (added to the generic's). */
	const char *const *ignore_urcs;  /* prefixes of boot lines and noise
					    to swallow (else they would pollute
					    ATI-style responses) */
	const char *const *memfull_urcs; /* "message storage is full" */
	const char *const *boot_urcs;    /* printed at power-on: once the
					    modem is set up, one means it
					    rebooted and lost its settings */
	const char *signal_urc;          /* prefix followed by rssi 0..31 */
	const struct quirk_final *finals;/* terminated by a NULL prefix */

	/* Tier b: values the generic driver uses (replace the generic's). */
	const char *const *init_cmds;  /* after identity; errors ignored */
	const char *const *reset_cmds; /* tried in order: ERROR -> next;
					  none left or a timeout -> the port
					  is closed and re-opened */
	double reset_wait;             /* s after a reset's OK before
					  talking again (the modem reboots) */
	const char *storage;           /* preferred storage for AT+CPMS */
	const char *const *cnmi;       /* AT+CNMI settings, preferred first */
};

/* A field of q, or the generic's when q leaves it unset. */
#define QUIRK(q, field) ((q)->field ? (q)->field : quirks_generic.field)

extern const struct modem_quirks quirks_generic;
extern const struct modem_quirks quirks_simcom;
extern const struct modem_quirks quirks_quectel;
extern const struct modem_quirks quirks_huawei;

/* Every quirk set, generic first; NULL-terminated. */
extern const struct modem_quirks *const quirks_table[];

/* By config name ("generic", "simcom", ...; case-insensitive). NULL for an
 * unknown name and for "auto" (detect from identity instead). */
const struct modem_quirks *quirks_find(const char *name);

/* True for "auto", NULL, "" and every name quirks_find knows. */
bool quirks_name_valid(const char *name);

/* "auto, generic, simcom, quectel, huawei" for error messages. */
const char *quirks_names(void);

/* driver=auto: the family whose match strings occur in the +CGMI answer
 * or the ATI text (either may be NULL or ""); the generic set when none
 * does. Never NULL. */
const struct modem_quirks *quirks_detect(const char *cgmi, const char *ati);

#endif
