/* siminbound — a script of inbound SMS for the simulated modem
 * (--inbound FILE): JSON lines
 *
 *   {"at": 2.5, "from": "+34600111222", "text": "hello"}
 *
 * "at" is seconds after the simulator started; optional "shift": true
 * allows national language shift tables, "class": 0..3 sets a message
 * class. Each entry is injected at its time, as the control socket's
 * "inject" does (a long text becomes several parts with a concat UDH).
 * Blank lines and lines starting with '#' are skipped. One ev_timer,
 * re-armed for the next entry. */
#ifndef SMSGW_SIMINBOUND_H
#define SMSGW_SIMINBOUND_H

#include <stddef.h>

struct ev_loop;
struct simmodem;
struct siminbound;

/* Reads the whole file and arms the timer. Returns NULL with
 * "FILE:LINE: reason" in err. */
struct siminbound *siminbound_load(struct ev_loop *loop, const char *path,
				   struct simmodem *m, char *err,
				   size_t errlen);
void siminbound_free(struct siminbound *in);

#endif
