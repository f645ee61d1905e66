/* outbox — the durable outbound queue and its scheduler over the modem pool.
 *
 * An SMS is encoded into PDUs and queued in the store in one step
 * (outbox_queue_text), inside the caller's transaction when it holds one, so
 * that "accepted" means "committed together with whatever caused it". The
 * scheduler hands queued SMS to ready modems: every part of one SMS goes
 * through the same modem, account SMS before bulk sms.send, max_per_minute
 * per modem honoured. Each part's message reference is committed before the
 * next part is sent (the at-least-once window is one part). Transient errors
 * retry with exponential backoff and jitter, on any ready modem, up to
 * send_attempts; permanent ones fail the SMS with the reason; queued SMS
 * older than max_age expire. Status reports move parts to delivered/failed.
 *
 * Ops on the control socket: sms.send, sms.get, sms.list.
 * Events: sms.queued, sms.sent, sms.delivered, sms.failed. */
#ifndef SMSGW_OUTBOX_H
#define SMSGW_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/store.h"

struct ev_loop;
struct ctl_server;
struct config;
struct pool;
struct modem;
struct outbox;

/* Creates the outbox; registers its ops on ctl. cfg is borrowed until
 * outbox_set_config() replaces it or outbox_free(). Returns NULL with err. */
struct outbox *outbox_new(struct ev_loop *loop, struct store *store,
			  struct ctl_server *ctl, struct pool *pool,
			  const struct config *cfg, char *err, size_t errlen);
/* Stops scheduling; a part on the wire is abandoned (it is resumed at the
 * next start). NULL is fine. */
void outbox_free(struct outbox *ob);

/* Swaps the borrowed config (SIGHUP). */
void outbox_set_config(struct outbox *ob, const struct config *cfg);

struct outbox_queued {
	int64_t id;      /* sms id */
	unsigned parts;  /* number of parts */
};

/* Encodes text for `peer` (E.164) and queues it, due now. Runs inside the
 * caller's store transaction when there is one: then the caller must call
 * outbox_kick() after a successful store_tx_commit(), or outbox_rollback()
 * after a rollback; otherwise it commits itself and kicks. The sms.queued
 * event goes out at the kick, i.e. only once the SMS is durable. Returns 0,
 * -EINVAL (text not UTF-8 or empty, peer invalid: reason in err), -E2BIG
 * (more than 255 parts), or a store error (store_error_unavailable()). */
/* shown: the text kept for sms.get / sms.list when it must differ from the
 * text sent (an account SMS shows "[redacted]" in place of its claim token
 * or recovery code: admins read these lists); NULL keeps `text`. */
int outbox_queue_text(struct outbox *ob, const char *peer, const char *text,
		      const char *shown, enum store_kind kind,
		      int64_t account_id, struct outbox_queued *out, char *err,
		      size_t errlen);

/* Announces what was queued since the last kick and looks for work now
 * (after a commit that queued SMS, or a modem became ready). Cheap; never
 * blocks. */
void outbox_kick(struct outbox *ob);
/* Forgets the announcements of SMS queued in a transaction rolled back. */
void outbox_rollback(struct outbox *ob);

/* The number of parts text needs on the first modem's settings (for
 * template checks at start). -EINVAL for invalid UTF-8. */
int outbox_count_parts(const struct outbox *ob, const char *text);

/* A status report (PDU hex, SMSC prefix first) received on `modem`. */
void outbox_status_report(struct outbox *ob, struct modem *modem,
			  const char *pdu_hex);

/* True while a part is on the wire (for a bounded drain at stop). */
bool outbox_busy(const struct outbox *ob);

#endif
