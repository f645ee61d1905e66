/* inbox — see inbox.h. */
#include "daemon/inbox.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <jansson.h>

#include "at/pdu.h"
#include "config/config.h"
#include "daemon/ctl.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/phone.h"
#include "daemon/pool.h"
#include "daemon/store.h"

#define IB_EXPIRE_EVERY 60.0  /* s between incomplete-set sweeps */
#define IB_MEM_MAX 8
#define IB_SEEN_KEEP_MS (7LL * 24 * 3600 * 1000) /* fingerprints kept */
#define IB_RESWEEP 5.0        /* s between sweeps after a refused commit */

struct inbox {
	struct ev_loop *loop;
	struct store *store;
	struct ctl_server *ctl;
	struct pool *pool;
	struct outbox *outbox;
	const struct config *cfg;
	inbox_account_fn account_fn;
	void *account_ctx;
	ev_timer expire_timer;
	ev_timer resweep_timer;  /* armed while SMS wait on a modem for the
				    store to take writes again */
	struct pdu_sms scratch; /* decode buffer (the loop is single-threaded) */
	struct ib_modem **modems; /* slot ownership per modem */
	size_t n_modems;
};

/* A stored message being read, then deleted. */
struct ib_read {
	struct inbox *ib;
	char mem[IB_MEM_MAX]; /* "" = the preferred storage */
	unsigned index;
};

enum ib_outcome {
	IB_DELETE, /* committed (or not ours to keep): delete from the modem */
	IB_KEEP,   /* not committed, or an outgoing copy: leave it there */
};

/* --- committing ------------------------------------------------------------ */

static int64_t ib_account(struct inbox *ib, const char *peer)
{
	if (!ib->account_fn || !phone_is_e164(peer))
		return 0;
	return ib->account_fn(ib->account_ctx, peer);
}

static void ib_announce(struct inbox *ib, int64_t id, const char *peer,
			bool incomplete, int64_t account_id)
{
	char masked[LOG_PHONE_MAX];
	json_t *ev = json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id, "peer",
			       peer, "incomplete", incomplete);

	if (account_id)
		json_object_set_new(ev, "account_id", json_integer(account_id));
	ctl_broadcast_event(ib->ctl, "sms.received", ev);
	log_info("inbox: sms %lld from %s%s", (long long)id,
		 log_phone(LOG_LVL_INFO, peer, masked),
		 incomplete ? " (incomplete)" : "");
}

/* What a commit produced, announced once it is durable. */
struct ib_stored {
	int64_t id;         /* 0: nothing complete yet (a part of a set) */
	int64_t account_id;
};

/* Stores one part of a concatenated SMS, and the whole SMS when this part
 * completes it, in the caller's transaction. */
static int ib_store_part(struct inbox *ib, const struct pdu_sms *s,
			 struct ib_stored *out)
{
	struct store_inbox_part part = {
		.sender = s->addr.text,
		.ref = s->concat.ref,
		.total = s->concat.total,
		.seq = s->concat.seq,
		.text = s->text,
	};
	enum store_inbox_result res;
	char *text = NULL;
	int rc = store_inbox_part_add(ib->store, &part, &res, &text);

	if (rc == 0 && res == STORE_INBOX_COMPLETE) {
		out->account_id = ib_account(ib, s->addr.text);
		rc = store_sms_receive(ib->store, s->addr.text, text, false,
				       out->account_id, &out->id);
	}
	free(text);
	return rc;
}

/* The text to keep for an SMS: its decoded text, or its data in hex. */
static const char *ib_text(const struct pdu_sms *s, char *buf, size_t len)
{
	if (s->encoding != PDU_ENC_8BIT)
		return s->text;
	size_t off = (size_t)snprintf(buf, len, "[8-bit data] ");
	for (size_t i = 0; i < s->data_len && off + 3 < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%02X", s->data[i]);
	return buf;
}

/* Stores what one PDU carries (s NULL: it could not be decoded, kept as
 * hex so nothing is lost), in one transaction with its fingerprint: a PDU
 * read again after a crash is recognised and not stored twice. */
static int ib_commit(struct inbox *ib, const char *hex,
		     const struct pdu_sms *s, const char *peer)
{
	char buf[PDU_HEX_MAX + 2 * PDU_DATA_MAX + 64];
	struct ib_stored st = { 0, 0 };
	bool seen = false;
	int rc = store_tx_begin(ib->store);

	if (rc < 0)
		return rc;
	rc = store_inbox_seen(ib->store, hex, store_now_ms(), &seen);
	if (rc == 0 && !seen) {
		if (s && s->concat.present && s->concat.total > 1) {
			rc = ib_store_part(ib, s, &st);
		} else {
			const char *text = s ? ib_text(s, buf, sizeof(buf)) : buf;

			if (!s)
				snprintf(buf, sizeof(buf), "[undecodable PDU] %s",
					 hex);
			st.account_id = ib_account(ib, peer);
			rc = store_sms_receive(ib->store, peer, text, false,
					       st.account_id, &st.id);
		}
	}
	if (rc == 0)
		rc = store_tx_commit(ib->store);
	else
		store_tx_rollback(ib->store);
	if (rc == 0 && seen)
		log_info("inbox: an SMS read again after a restart was stored "
			 "already");
	if (rc == 0 && st.id)
		ib_announce(ib, st.id, peer, false, st.account_id);
	return rc;
}

/* Decodes and commits one PDU read from a modem. */
static enum ib_outcome ib_process(struct inbox *ib, struct modem *m,
				  const char *hex)
{
	struct pdu_sms *s = &ib->scratch;
	char err[PDU_ERR_MAX];
	int rc;

	if (pdu_decode_hex(hex, s, err, sizeof(err)) < 0) {
		log_warn("inbox: modem %s: undecodable SMS kept raw: %s",
			 modem_name(m), err);
		rc = ib_commit(ib, hex, NULL, "unknown");
		goto done;
	}
	if (s->type == PDU_STATUS_REPORT) {
		outbox_status_report(ib->outbox, m, hex);
		return IB_DELETE;
	}
	if (s->type == PDU_SUBMIT)
		return IB_KEEP; /* an outgoing copy someone stored: not ours */
	rc = ib_commit(ib, hex, s, s->addr.text);
done:
	if (rc < 0) {
		log_err("inbox: modem %s: cannot store an SMS (left on the "
			"modem, swept again in %.0f s): %s", modem_name(m),
			IB_RESWEEP, strerror(-rc));
		if (!ev_is_active(&ib->resweep_timer))
			ev_timer_again(ib->loop, &ib->resweep_timer);
		return IB_KEEP;
	}
	return IB_DELETE;
}

/* --- reading and deleting --------------------------------------------------- */

/* Storage slots are reused: once AT+CMGD=k has run, the modem may put a new
 * SMS in slot k. So each slot has one owner at a time (a +CMTI read, or a
 * sweep's entry) from its read to the end of its delete; a +CMTI for a slot
 * that is owned is read again once the owner is done, and a sweep skips it.
 * One sweep at a time per modem; a sweep asked for meanwhile runs after. */
#define IB_SLOTS 1024 /* indexes tracked; beyond it no modem stores SMS */

struct ib_modem {
	struct modem *modem;
	uint8_t busy[IB_SLOTS / 8];  /* a read or delete is pending */
	uint8_t again[IB_SLOTS / 8]; /* +CMTI came for a busy slot */
	bool sweeping, resweep;
};

static bool bit_get(const uint8_t *v, unsigned i)
{
	return i < IB_SLOTS && (v[i / 8] & (1u << (i % 8)));
}

static void bit_set(uint8_t *v, unsigned i, bool on)
{
	if (i >= IB_SLOTS)
		return;
	if (on)
		v[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		v[i / 8] &= (uint8_t)~(1u << (i % 8));
}

static struct ib_modem *ib_modem_find(struct inbox *ib, struct modem *m,
				      bool create)
{
	for (size_t i = 0; i < ib->n_modems; i++)
		if (ib->modems[i]->modem == m)
			return ib->modems[i];
	if (!create)
		return NULL;
	struct ib_modem **v = realloc(ib->modems,
				      (ib->n_modems + 1) * sizeof(*v));
	if (!v)
		return NULL;
	ib->modems = v;
	v[ib->n_modems] = calloc(1, sizeof(**v));
	if (!v[ib->n_modems])
		return NULL;
	v[ib->n_modems]->modem = m;
	return v[ib->n_modems++];
}

static void ib_read_slot(struct inbox *ib, struct modem *m, const char *mem,
			 unsigned index);

/* The owner of a slot is done: let a +CMTI that came meanwhile read it. */
static void ib_slot_release(struct ib_read *r, struct modem *m)
{
	struct ib_modem *im = ib_modem_find(r->ib, m, false);

	if (!im)
		return; /* the modem is going away */
	bit_set(im->busy, r->index, false);
	if (bit_get(im->again, r->index)) {
		bit_set(im->again, r->index, false);
		ib_read_slot(r->ib, m, r->mem[0] ? r->mem : NULL, r->index);
	}
}

static void ib_deleted(void *user, struct modem *m, int rc)
{
	struct ib_read *r = user;

	if (rc < 0 && rc != -ECANCELED)
		log_warn("inbox: modem %s: cannot delete stored SMS %u: %s",
			 modem_name(m), r->index, strerror(-rc));
	if (rc != -ECANCELED)
		ib_slot_release(r, m);
	free(r);
}

static void ib_delete(struct ib_read *r, struct modem *m)
{
	if (modem_delete_sms(m, r->mem[0] ? r->mem : NULL, r->index,
			     ib_deleted, r) < 0) {
		ib_slot_release(r, m);
		free(r);
	}
}

/* After its commit (or not): delete the slot, or let it go. */
static void ib_finish(struct ib_read *r, struct modem *m,
		      enum ib_outcome outcome)
{
	if (outcome == IB_DELETE) {
		ib_delete(r, m);
		return;
	}
	ib_slot_release(r, m);
	free(r);
}

static void ib_read_done(void *user, struct modem *m, int rc,
			 const struct modem_sms_entry *sms)
{
	struct ib_read *r = user;

	if (rc < 0) {
		if (rc != -ENOENT && rc != -ECANCELED)
			log_warn("inbox: modem %s: cannot read stored SMS %u: %s",
				 modem_name(m), r->index, strerror(-rc));
		if (rc != -ECANCELED)
			ib_slot_release(r, m);
		free(r);
		return;
	}
	ib_finish(r, m, ib_process(r->ib, m, sms->pdu_hex));
}

static struct ib_read *ib_read_new(struct inbox *ib, const char *mem,
				   unsigned index)
{
	struct ib_read *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ib = ib;
	r->index = index;
	snprintf(r->mem, sizeof(r->mem), "%s", mem ? mem : "");
	return r;
}

static void ib_read_slot(struct inbox *ib, struct modem *m, const char *mem,
			 unsigned index)
{
	struct ib_modem *im = ib_modem_find(ib, m, true);
	struct ib_read *r;

	if (im && bit_get(im->busy, index)) {
		bit_set(im->again, index, true);
		return;
	}
	r = ib_read_new(ib, mem, index);
	if (!r)
		return;
	if (im)
		bit_set(im->busy, index, true);
	if (modem_read_sms(m, r->mem[0] ? r->mem : NULL, index, ib_read_done,
			   r) < 0) {
		/* Not ready now: the sweep at the next ready picks it up. */
		if (im)
			bit_set(im->busy, index, false);
		free(r);
	}
}

static void ib_sms_stored(void *user, struct modem *m, const char *mem,
			  unsigned index)
{
	ib_read_slot(user, m, mem, index);
}

static void ib_sweep(struct inbox *ib, struct modem *m);

static void ib_listed(void *user, struct modem *m, int rc,
		      const struct modem_sms_entry *v, size_t n)
{
	struct inbox *ib = user;
	struct ib_modem *im = ib_modem_find(ib, m, false);
	size_t kept = 0;

	if (rc == -ECANCELED || !im)
		return;
	im->sweeping = false;
	if (rc < 0)
		log_warn("inbox: modem %s: storage sweep failed: %s",
			 modem_name(m), strerror(-rc));
	for (size_t i = 0; rc == 0 && i < n; i++) {
		enum ib_outcome outcome;
		struct ib_read *r;

		if (bit_get(im->busy, v[i].index))
			continue; /* its +CMTI read owns it */
		r = ib_read_new(ib, NULL, v[i].index);
		if (!r)
			continue;
		bit_set(im->busy, v[i].index, true);
		outcome = ib_process(ib, m, v[i].pdu_hex);
		if (outcome != IB_DELETE)
			kept++;
		ib_finish(r, m, outcome);
	}
	if (n)
		log_info("inbox: modem %s: sweep found %zu stored SMS (%zu left "
			 "on the modem)", modem_name(m), n, kept);
	if (im->resweep) {
		im->resweep = false;
		ib_sweep(ib, m);
	}
}

static void ib_sweep(struct inbox *ib, struct modem *m)
{
	struct ib_modem *im = ib_modem_find(ib, m, true);

	if (im && im->sweeping) {
		im->resweep = true;
		return;
	}
	if (modem_list_sms(m, NULL, ib_listed, ib) < 0) {
		log_warn("inbox: modem %s: cannot sweep storage now",
			 modem_name(m));
		return;
	}
	if (im)
		im->sweeping = true;
}

/* After a refused commit: sweep every ready modem once more. A sweep that
 * fails to commit again re-arms the timer. */
static void ib_resweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct inbox *ib = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	for (size_t i = 0; i < pool_count(ib->pool); i++) {
		struct modem *m = pool_modem(ib->pool, i);

		if (m && modem_is_ready(m))
			ib_sweep(ib, m);
	}
}

/* --- pool events ------------------------------------------------------------ */

static void ib_state(void *user, struct modem *m, enum modem_state from,
		     enum modem_state to)
{
	(void)from;
	if (to == MODEM_READY)
		ib_sweep(user, m);
}

static void ib_sms_direct(void *user, struct modem *m, const char *pdu)
{
	ib_process(user, m, pdu);
}

static void ib_report_stored(void *user, struct modem *m, const char *mem,
			     unsigned index)
{
	/* Read like an SMS: ib_process hands status reports to the outbox
	 * and the read is deleted afterwards. */
	ib_sms_stored(user, m, mem, index);
}

static void ib_storage_full(void *user, struct modem *m)
{
	ib_sweep(user, m);
}

/* Pending reads and deletes of a removed modem end with -ECANCELED and
 * touch no slot state, so it can go now. */
static void ib_modem_removed(void *user, struct modem *m)
{
	struct inbox *ib = user;

	for (size_t i = 0; i < ib->n_modems; i++) {
		if (ib->modems[i]->modem == m) {
			free(ib->modems[i]);
			ib->modems[i] = ib->modems[--ib->n_modems];
			return;
		}
	}
}

/* --- incomplete sets ------------------------------------------------------- */

static void ib_expire(struct inbox *ib)
{
	struct store_inbox_set *sets = NULL;
	int64_t older = store_now_ms() - ib->cfg->outbox.incomplete_timeout * 1000;
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = store_tx_begin(ib->store);

	if (rc == 0)
		rc = store_inbox_expire(ib->store, older, &sets, &n);
	if (rc == 0)
		rc = store_inbox_seen_prune(ib->store,
					    store_now_ms() - IB_SEEN_KEEP_MS);
	if (rc == 0 && n)
		ids = calloc(n, sizeof(*ids));
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = store_sms_receive(ib->store, sets[i].sender, sets[i].text,
				       true, ib_account(ib, sets[i].sender),
				       ids ? &ids[i] : NULL);
	if (rc == 0)
		rc = store_tx_commit(ib->store);
	else if (store_in_tx(ib->store))
		store_tx_rollback(ib->store);
	if (rc < 0)
		log_err("inbox: cannot keep incomplete SMS: %s", strerror(-rc));
	for (size_t i = 0; rc == 0 && ids && i < n; i++)
		ib_announce(ib, ids[i], sets[i].sender, true, 0);
	free(ids);
	store_inbox_sets_free(sets, n);
}

static void ib_expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ib_expire(w->data);
}

/* --- life cycle ------------------------------------------------------------ */

struct inbox *inbox_new(struct ev_loop *loop, struct store *store,
			struct ctl_server *ctl, struct pool *pool,
			struct outbox *outbox, const struct config *cfg,
			char *err, size_t errlen)
{
	struct inbox *ib = calloc(1, sizeof(*ib));
	struct pool_listener l = {
		.state_changed = ib_state,
		.sms_stored = ib_sms_stored,
		.sms_direct = ib_sms_direct,
		.report_stored = ib_report_stored,
		.storage_full = ib_storage_full,
		.removed = ib_modem_removed,
	};

	if (!ib) {
		snprintf(err, errlen, "inbox: out of memory");
		return NULL;
	}
	ib->loop = loop;
	ib->store = store;
	ib->ctl = ctl;
	ib->pool = pool;
	ib->outbox = outbox;
	ib->cfg = cfg;
	l.user = ib;
	if (pool_listen(pool, &l) < 0) {
		snprintf(err, errlen, "inbox: too many pool listeners");
		free(ib);
		return NULL;
	}
	ev_timer_init(&ib->expire_timer, ib_expire_cb, 5., IB_EXPIRE_EVERY);
	ev_timer_init(&ib->resweep_timer, ib_resweep_cb, 0., IB_RESWEEP);
	ib->resweep_timer.data = ib;
	ib->expire_timer.data = ib;
	ev_timer_start(loop, &ib->expire_timer);
	return ib;
}

void inbox_free(struct inbox *ib)
{
	if (!ib)
		return;
	ev_timer_stop(ib->loop, &ib->expire_timer);
	ev_timer_stop(ib->loop, &ib->resweep_timer);
	for (size_t i = 0; i < ib->n_modems; i++)
		free(ib->modems[i]);
	free(ib->modems);
	free(ib);
}

void inbox_set_config(struct inbox *ib, const struct config *cfg)
{
	ib->cfg = cfg;
}

void inbox_set_account_lookup(struct inbox *ib, inbox_account_fn fn, void *ctx)
{
	ib->account_fn = fn;
	ib->account_ctx = ctx;
}
