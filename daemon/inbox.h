/* inbox — SMS that arrive on the modems.
 *
 * +CMTI -> read (AT+CMGR) -> decode -> commit -> delete (AT+CMGD): an SMS is
 * deleted from the modem only after it is in the store. Each modem's
 * storage is swept (AT+CMGL) when it becomes ready and after "storage
 * full", for what arrived while the daemon was down. Concatenated SMS are
 * reassembled in the store (a restart mid-set loses no part); sets still
 * incomplete after incomplete_timeout are kept marked incomplete. Status
 * reports found in storage go to the outbox. Replies from a known
 * account's phone are linked to it. Event: sms.received. */
#ifndef SMSGW_INBOX_H
#define SMSGW_INBOX_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct store;
struct ctl_server;
struct pool;
struct outbox;
struct config;
struct inbox;

struct inbox *inbox_new(struct ev_loop *loop, struct store *store,
			struct ctl_server *ctl, struct pool *pool,
			struct outbox *outbox, const struct config *cfg,
			char *err, size_t errlen);
void inbox_free(struct inbox *ib);
void inbox_set_config(struct inbox *ib, const struct config *cfg);

/* Returns the id of the account with this E.164 phone, or 0. */
typedef int64_t (*inbox_account_fn)(void *ctx, const char *e164);
void inbox_set_account_lookup(struct inbox *ib, inbox_account_fn fn,
			      void *ctx);

#endif
