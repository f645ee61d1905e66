/* accounts — the phone-number account lifecycle (DESIGN.md, "The account
 * lifecycle"): settings.*, account.* ops on the control socket.
 *
 * CONTRACT WITH daemon/smsgwd.c (written by the lead; keep these five
 * functions with these signatures, add whatever else you need):
 *   accounts_new()        creates the module, registers its ops on ctl, uses
 *                         outbox_queue_text() (daemon/outbox.h) to queue SMS
 *                         inside its own store transactions, then
 *                         outbox_kick() after commit / outbox_rollback().
 *   accounts_free()       NULL is fine; called after the pool is freed.
 *   accounts_set_config() SIGHUP: the new config, borrowed.
 *   accounts_lookup_phone() the inbox links replies to accounts with it. */
#ifndef SMSGW_ACCOUNTS_H
#define SMSGW_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct store;
struct ctl_server;
struct outbox;
struct config;
struct accounts;

/* cfg is borrowed until accounts_set_config() or accounts_free(). Returns
 * NULL with a message in err. */
struct accounts *accounts_new(struct ev_loop *loop, struct store *store,
			      struct ctl_server *ctl, struct outbox *outbox,
			      const struct config *cfg, char *err,
			      size_t errlen);
void accounts_free(struct accounts *a);
void accounts_set_config(struct accounts *a, const struct config *cfg);

/* The id of the account with this E.164 phone, or 0. ctx is the
 * struct accounts (the signature is inbox_account_fn). */
int64_t accounts_lookup_phone(void *ctx, const char *e164);

#endif
