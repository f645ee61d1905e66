/* simlog — the simulated modem's log of the SMS it "sent": one JSON object
 * per line, appended and flushed per line (never fsync'ed: the simulator
 * must stay cheap for benchmarks), so a person running the demo and the
 * tests see what the recipient's phone would get:
 *
 *   {"time": "2024-05-01T12:00:00.123Z", "modem": "sim0",
 *    "to": "+34600111222", "mr": 7, "text": "decoded part text",
 *    "udh": {"ref": 12, "total": 2, "seq": 1} | null,
 *    "encoding": "gsm7" | "ucs2" | "8bit", "srr": true,
 *    "class": -1, "pdu": "0011000B91..."}
 *
 * 8-bit parts carry their user data as "data" (hex) and "text": "". */
#ifndef SMSGW_SIMLOG_H
#define SMSGW_SIMLOG_H

#include "at/pdu.h"

struct simlog;

/* Opens `path` for appending; NULL or "-" means stdout. Returns NULL with
 * errno set on failure. */
struct simlog *simlog_open(const char *path);
void simlog_free(struct simlog *l);

/* Writes one line for a part the network accepted with reference mr.
 * Returns 0 or -errno. */
int simlog_sent(struct simlog *l, const char *modem, unsigned mr,
		const char *hex, const struct pdu_sms *sms);

#endif
