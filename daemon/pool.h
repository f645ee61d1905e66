/* pool — the daemon's modems: one driver per [modem.NAME] section.
 *
 * Maps each config section to a drivers/modem, spawns the simulated modem
 * for `device = sim`, fans the drivers' events out to the listeners (outbox,
 * inbox) and to control-socket subscribers (modem.state), answers
 * modem.list, and applies a reloaded config (modems added, removed or
 * changed) without touching the others. */
#ifndef SMSGW_POOL_H
#define SMSGW_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "drivers/modem.h"

struct ev_loop;
struct ctl_server;
struct config;
struct pool;

/* A listener; any member may be NULL. Strings are borrowed for the call. */
struct pool_listener {
	void *user;
	void (*state_changed)(void *user, struct modem *m,
			      enum modem_state from, enum modem_state to);
	void (*sms_stored)(void *user, struct modem *m, const char *mem,
			   unsigned index);
	void (*sms_direct)(void *user, struct modem *m, const char *pdu_hex);
	void (*report_direct)(void *user, struct modem *m,
			      const char *pdu_hex);
	void (*report_stored)(void *user, struct modem *m, const char *mem,
			      unsigned index);
	void (*storage_full)(void *user, struct modem *m);
	/* The modem is about to be freed (removed by a reload, or shutdown):
	 * forget every pointer to it. */
	void (*removed)(void *user, struct modem *m);
};

#define POOL_LISTENERS_MAX 4

/* Creates the pool and registers modem.list on ctl; no modem is opened
 * before pool_start(). sim_binary: the smsgw-modemsim to spawn for
 * `device = sim`. run_dir: where simulator links and logs go. cfg is
 * borrowed. Returns NULL with a message in err. */
struct pool *pool_new(struct ev_loop *loop, struct ctl_server *ctl,
		      const struct config *cfg, const char *sim_binary,
		      char *err, size_t errlen);
/* Frees every modem (listeners hear `removed`), stops simulators. */
void pool_free(struct pool *p);

/* Adds a listener (up to POOL_LISTENERS_MAX); `l` is copied. */
int pool_listen(struct pool *p, const struct pool_listener *l);

/* Opens every modem. Fails (with the reason, naming the modem) only for
 * what an operator must fix: a port held by another process, a bad device
 * spec, a simulator that does not start. An absent port is not an error:
 * its modem goes `gone` and is re-opened when it appears. */
int pool_start(struct pool *p, char *err, size_t errlen);

/* Applies a new config: modems whose section disappeared are freed, new
 * ones started, changed ones restarted; unchanged ones keep running.
 * cfg is borrowed from then on. 0 or -errno with err. */
int pool_reload(struct pool *p, const struct config *cfg, char *err,
		size_t errlen);

size_t pool_count(const struct pool *p);
struct modem *pool_modem(const struct pool *p, size_t i);
size_t pool_ready_count(const struct pool *p);

/* The config section of a modem (for max_per_minute and the like), or
 * NULL when it was just removed. */
const struct config_modem *pool_modem_config(const struct pool *p,
					     const struct modem *m);

#endif
