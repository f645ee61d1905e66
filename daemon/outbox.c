/* outbox — see outbox.h.
 *
 * The scheduler is a loop over the pool's modems that runs from a zero-delay
 * timer (never from inside a driver callback, so that sends do not nest):
 * each ready modem without a job and under its rate cap takes the next due
 * SMS from the store. A job sends its parts one at a time on its modem; the
 * store is the only queue, so a crash loses nothing that was accepted. */
#include "daemon/outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <jansson.h>

#include "at/pdu.h"
#include "config/config.h"
#include "daemon/ctl.h"
#include "daemon/log.h"
#include "daemon/phone.h"
#include "daemon/pool.h"

#define OB_MAX_PARTS 255
#define OB_RATE_SLOTS 600     /* largest max_per_minute we track exactly */
#define OB_EXPIRE_EVERY 60.0  /* s between expiry sweeps */
#define OB_TEXT_MAX 4096      /* bytes of text accepted by sms.send */
#define OB_STALL_RETRY 1.0    /* s between tries of a refused store write */

/* What a job still has to write when the store refused it (disk full, I/O
 * error): it is written again every OB_STALL_RETRY s, and the job holds its
 * modem until then, so nothing is sent ahead of a record that is missing. */
enum ob_pending {
	OB_PENDING_NONE,
	OB_PENDING_RECORD, /* the current part's mr (job->mr) */
	OB_PENDING_RETRY,  /* back to the queue, due at job->retry_at */
	OB_PENDING_FAIL,   /* failed with job->error */
};

/* One SMS being sent through one modem. */
struct ob_job {
	struct store_sms sms;
	size_t part;   /* index of the part on the wire or next to send */
	enum ob_pending pending;
	int mr;
	int64_t retry_at;
	char error[320];
};

/* Per-modem scheduling state. */
struct ob_modem {
	struct modem *modem;
	struct ob_job *job;       /* NULL: idle */
	double *sent_at;          /* ring of recent send times (rate cap) */
	unsigned ring_len, ring_head, ring_used;
};

/* An SMS queued in a transaction, announced at the next kick. */
struct ob_announce {
	int64_t id;
	enum store_kind kind;
	unsigned parts;
};

struct outbox {
	struct ev_loop *loop;
	struct store *store;
	struct ctl_server *ctl;
	struct pool *pool;
	const struct config *cfg;
	struct ob_modem *modems;
	size_t n_modems, cap_modems;
	ev_timer kick_timer;     /* zero-delay: run the scheduler */
	ev_timer retry_timer;    /* next_attempt_at of the earliest retry */
	ev_timer expire_timer;   /* periodic max_age sweep */
	ev_timer stall_timer;    /* retries store writes that failed */
	struct ob_announce *announce;
	size_t n_announce, cap_announce;
	struct pdu_part *parts;  /* scratch for encoding, OB_MAX_PARTS */
	ev_prepare batch_prepare; /* commits the batch before the loop waits */
	struct ob_accepted *accepted; /* answers waiting for that commit */
	size_t n_accepted, cap_accepted;
	uint16_t next_ref;       /* concatenation reference */
	unsigned rand_state;
};

static void ob_schedule(struct outbox *ob);
static void ob_job_send(struct outbox *ob, struct ob_modem *om);
static int ob_job_take(struct outbox *ob, struct ob_modem *om,
		       struct ob_job **out);
static void ob_job_begin(struct outbox *ob, struct ob_modem *om,
			 struct ob_job *job);

/* --- per-modem state ---------------------------------------------------- */

static struct ob_modem *ob_modem_find(struct outbox *ob, struct modem *m,
				      bool create)
{
	for (size_t i = 0; i < ob->n_modems; i++)
		if (ob->modems[i].modem == m)
			return &ob->modems[i];
	if (!create)
		return NULL;
	if (ob->n_modems == ob->cap_modems) {
		size_t cap = ob->cap_modems ? ob->cap_modems * 2 : 4;
		struct ob_modem *v = realloc(ob->modems, cap * sizeof(*v));

		if (!v)
			return NULL;
		ob->modems = v;
		ob->cap_modems = cap;
	}
	struct ob_modem *om = &ob->modems[ob->n_modems++];
	memset(om, 0, sizeof(*om));
	om->modem = m;
	return om;
}

/* Rate cap: at most max_per_minute sends in any 60 s window. Returns the
 * seconds to wait before the next send is allowed (0: now). */
static double ob_rate_wait(struct ob_modem *om, int max_per_minute, double now)
{
	unsigned cap = max_per_minute > OB_RATE_SLOTS ? OB_RATE_SLOTS
						      : (unsigned)max_per_minute;

	if (cap == 0)
		return 0;
	if (om->ring_len != cap) {
		free(om->sent_at);
		om->sent_at = calloc(cap, sizeof(double));
		om->ring_len = om->sent_at ? cap : 0;
		om->ring_head = om->ring_used = 0;
		if (!om->sent_at)
			return 0;
	}
	if (om->ring_used < cap)
		return 0;
	/* ring_head is the oldest of the last `cap` sends. */
	double wait = om->sent_at[om->ring_head] + 60.0 - now;
	return wait > 0 ? wait : 0;
}

static void ob_rate_note(struct ob_modem *om, double now)
{
	if (om->ring_len == 0)
		return;
	om->sent_at[om->ring_head] = now;
	om->ring_head = (om->ring_head + 1) % om->ring_len;
	if (om->ring_used < om->ring_len)
		om->ring_used++;
}

/* --- events -------------------------------------------------------------- */

static void ob_event_failed(struct outbox *ob, int64_t id, const char *error)
{
	ctl_broadcast_event(ob->ctl, "sms.failed",
			    json_pack("{s:I, s:s}", "id", (json_int_t)id,
				      "error", error));
}

/* --- encoding and queueing ------------------------------------------------ */

/* Shift tables are used only when every modem allows them: the parts are
 * encoded before a modem is chosen. */
static bool ob_allow_shift(const struct outbox *ob)
{
	for (size_t i = 0; i < ob->cfg->n_modems; i++)
		if (!ob->cfg->modems[i].shift_tables)
			return false;
	return true;
}

static unsigned ob_validity_min(const struct outbox *ob)
{
	int64_t s = ob->cfg->outbox.validity;

	return s <= 0 ? 0 : (unsigned)((s + 59) / 60);
}

static int ob_encode(struct outbox *ob, const char *peer, const char *text,
		     char *err, size_t errlen)
{
	struct pdu_submit_opts o = {
		.to = peer,
		.srr = ob->cfg->outbox.status_reports,
		.validity_min = ob_validity_min(ob),
		.msg_class = -1,
		.allow_shift = ob_allow_shift(ob),
		.ref = ob->next_ref++,
		.ref16 = false,
	};

	o.ref &= 0xff;
	return pdu_encode_submit(text, &o, ob->parts, OB_MAX_PARTS, err, errlen);
}

static int ob_remember(struct outbox *ob, int64_t id, enum store_kind kind,
		       unsigned parts)
{
	if (ob->n_announce == ob->cap_announce) {
		size_t cap = ob->cap_announce ? ob->cap_announce * 2 : 16;
		struct ob_announce *v = realloc(ob->announce, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ob->announce = v;
		ob->cap_announce = cap;
	}
	ob->announce[ob->n_announce++] = (struct ob_announce){ id, kind, parts };
	return 0;
}

int outbox_queue_text(struct outbox *ob, const char *peer, const char *text,
		      const char *shown, enum store_kind kind,
		      int64_t account_id, struct outbox_queued *out, char *err,
		      size_t errlen)
{
	struct store_pdu pdus[OB_MAX_PARTS];
	struct store_outgoing m = {
		.peer = peer,
		.text = shown ? shown : text,
		.kind = kind,
		.priority = kind == STORE_KIND_MANUAL ? STORE_PRIO_BULK
						      : STORE_PRIO_ACCOUNT,
		.account_id = account_id,
		.parts = pdus,
	};
	int64_t id;
	int n, rc;

	if (!text || !text[0]) {
		snprintf(err, errlen, "text is empty");
		return -EINVAL;
	}
	n = ob_encode(ob, peer, text, err, errlen);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		pdus[i] = (struct store_pdu){ ob->parts[i].hex,
					      (int)ob->parts[i].tpdu_len };
	m.nparts = (size_t)n;
	m.encoding = NULL;
	rc = store_sms_queue(ob->store, &m, &id);
	if (rc < 0) {
		snprintf(err, errlen, "cannot store the SMS: %s", strerror(-rc));
		return rc;
	}
	if (ob_remember(ob, id, kind, (unsigned)n) < 0)
		log_warn("outbox: out of memory for the sms.queued event of %lld",
			 (long long)id);
	if (out)
		*out = (struct outbox_queued){ id, (unsigned)n };
	if (!store_in_tx(ob->store))
		outbox_kick(ob);
	return 0;
}

int outbox_count_parts(const struct outbox *ob, const char *text)
{
	struct pdu_plan plan;
	int rc = pdu_plan_text(text, ob_allow_shift(ob), &plan);

	return rc < 0 ? rc : (int)plan.parts;
}

void outbox_rollback(struct outbox *ob)
{
	ob->n_announce = 0;
}

void outbox_kick(struct outbox *ob)
{
	for (size_t i = 0; i < ob->n_announce; i++) {
		struct ob_announce *a = &ob->announce[i];

		ctl_broadcast_event(ob->ctl, "sms.queued",
				    json_pack("{s:I, s:s, s:i}", "id",
					      (json_int_t)a->id, "kind",
					      store_kind_name(a->kind), "parts",
					      (int)a->parts));
	}
	ob->n_announce = 0;
	if (!ev_is_active(&ob->kick_timer)) {
		ev_timer_set(&ob->kick_timer, 0., 0.);
		ev_timer_start(ob->loop, &ob->kick_timer);
	}
}

/* --- sending --------------------------------------------------------------- */

static double ob_backoff(struct outbox *ob, int attempts)
{
	double base = (double)ob->cfg->outbox.retry_backoff;
	double max = (double)ob->cfg->outbox.retry_backoff_max;
	double d = base;

	for (int i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	/* Full jitter in [d/2, d): modems that failed together spread out. */
	return d / 2 + d / 2 * ((double)rand_r(&ob->rand_state) / RAND_MAX);
}

static void ob_job_free(struct ob_job *job)
{
	store_sms_clear(&job->sms);
	free(job);
}

static void ob_job_end(struct ob_modem *om)
{
	if (!om->job)
		return;
	ob_job_free(om->job);
	om->job = NULL;
}

/* Whether om's modem may start another SMS now: ready, idle on the wire,
 * under its rate cap. */
static bool ob_modem_can_take(struct outbox *ob, struct ob_modem *om)
{
	const struct config_modem *mc = pool_modem_config(ob->pool, om->modem);

	return modem_is_ready(om->modem) &&
	       ob_rate_wait(om, mc ? mc->max_per_minute : 0,
			    ev_now(ob->loop)) == 0;
}

static void ob_stall(struct outbox *ob, struct ob_job *job,
		     enum ob_pending what, int rc)
{
	log_err("outbox: sms %lld: the store refused a write (%s); trying "
		"again every %.0f s", (long long)job->sms.id, strerror(-rc),
		OB_STALL_RETRY);
	job->pending = what;
	if (!ev_is_active(&ob->stall_timer))
		ev_timer_again(ob->loop, &ob->stall_timer);
}

/* Commits a part's message reference. For the last part, the SMS's 'sent'
 * and, when the modem may go on, the move of its next SMS to 'sending' go
 * in the same transaction: one commit (one fsync) per SMS, and the next
 * send needs no further trip through the loop. *next: that job, or NULL. */
static int ob_record_part(struct outbox *ob, struct ob_modem *om,
			  struct ob_job **next)
{
	struct ob_job *job = om->job;
	const struct store_part *part = &job->sms.parts[job->part];
	bool last = job->part + 1 >= job->sms.nparts;
	int rc = last ? store_tx_begin(ob->store) : 0;

	*next = NULL;
	if (rc < 0)
		return rc;
	rc = store_part_sent(ob->store, job->sms.id, part->seq,
			     modem_name(om->modem), job->mr, store_now_ms());
	if (!last)
		return rc;
	if (rc == 0) {
		rc = store_sms_sent(ob->store, job->sms.id);
		if (rc == -EINVAL)
			rc = 0; /* reports made it delivered/failed already */
	}
	if (rc == 0 && ob_modem_can_take(ob, om) &&
	    ob_job_take(ob, om, next) < 0)
		*next = NULL; /* nothing due (or no memory): the kick looks */
	if (rc == 0)
		rc = store_tx_commit(ob->store);
	else
		store_tx_rollback(ob->store);
	if (rc < 0 && *next) {
		ob_job_free(*next);
		*next = NULL;
	}
	return rc;
}

/* The SMS's last part is committed: tell subscribers, free the job. */
static void ob_sent_done(struct outbox *ob, struct ob_modem *om)
{
	struct store_sms *s = &om->job->sms;

	ctl_broadcast_event(ob->ctl, "sms.sent",
			    json_pack("{s:I, s:s, s:i}", "id", (json_int_t)s->id,
				      "modem", modem_name(om->modem), "parts",
				      (int)s->nparts));
	ob_job_end(om);
}

static void ob_sent_resumed(struct outbox *ob, struct ob_modem *om)
{
	int rc = store_sms_sent(ob->store, om->job->sms.id);

	if (rc < 0 && rc != -EINVAL)
		log_err("outbox: sms %lld: cannot mark sent: %s",
			(long long)om->job->sms.id, strerror(-rc));
	ob_sent_done(ob, om);
}

/* Writes what the job has pending. Returns 0 when written (the job may be
 * gone), or the store's error (the job keeps it pending). */
static int ob_settle(struct outbox *ob, struct ob_modem *om)
{
	struct ob_job *job = om->job;
	int rc = 0;

	switch (job->pending) {
	case OB_PENDING_NONE:
		return 0;
	case OB_PENDING_RECORD: {
		struct ob_job *next;

		rc = ob_record_part(ob, om, &next);
		if (rc < 0)
			return rc;
		job->pending = OB_PENDING_NONE;
		job->sms.parts[job->part].mr = job->mr;
		if (++job->part < job->sms.nparts) {
			ob_job_send(ob, om);
			return 0;
		}
		ob_sent_done(ob, om);
		if (next)
			ob_job_begin(ob, om, next);
		return 0;
	}
	case OB_PENDING_RETRY:
		rc = store_sms_retry(ob->store, job->sms.id, job->retry_at,
				     job->error);
		break;
	case OB_PENDING_FAIL:
		rc = store_sms_failed(ob->store, job->sms.id, job->error);
		if (rc == 0)
			ob_event_failed(ob, job->sms.id, job->error);
		break;
	}
	if (rc == 0)
		ob_job_end(om);
	return rc;
}

/* Sets what the job must write next and writes it; a refusal stalls it. */
static void ob_settle_now(struct outbox *ob, struct ob_modem *om,
			  enum ob_pending what)
{
	int rc;

	om->job->pending = what;
	rc = ob_settle(ob, om);
	if (rc < 0 && store_error_unavailable(rc)) {
		ob_stall(ob, om->job, what, rc);
	} else if (rc < 0) {
		/* Not a full disk: the write can never succeed (the SMS
		 * changed under us, e.g. expired). Retrying would hold the
		 * modem forever; drop the job, the store keeps its state. */
		log_err("outbox: sms %lld: cannot record its outcome (%s); "
			"leaving it as stored", (long long)om->job->sms.id,
			strerror(-rc));
		ob_job_end(om);
	}
}

static void ob_stall_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct outbox *ob = w->data;
	bool stalled = false;

	(void)revents;
	for (size_t i = 0; i < ob->n_modems; i++) {
		struct ob_modem *om = &ob->modems[i];

		if (om->job && om->job->pending != OB_PENDING_NONE &&
		    ob_settle(ob, om) < 0)
			stalled = true;
	}
	if (!stalled) {
		log_notice("outbox: the store takes writes again");
		ev_timer_stop(loop, w);
		outbox_kick(ob);
	}
}

static void ob_fail(struct outbox *ob, struct ob_modem *om, const char *error)
{
	log_warn("outbox: sms %lld failed: %s", (long long)om->job->sms.id,
		 error);
	snprintf(om->job->error, sizeof(om->job->error), "%s", error);
	ob_settle_now(ob, om, OB_PENDING_FAIL);
}

static void ob_requeue(struct outbox *ob, struct ob_modem *om, int64_t at,
		       const char *error)
{
	om->job->retry_at = at;
	snprintf(om->job->error, sizeof(om->job->error), "%s", error);
	ob_settle_now(ob, om, OB_PENDING_RETRY);
}

static void ob_retry(struct outbox *ob, struct ob_modem *om, const char *error)
{
	struct store_sms *s = &om->job->sms;

	if (s->attempts >= ob->cfg->outbox.send_attempts) {
		char why[300];

		snprintf(why, sizeof(why), "%s (after %d attempts)", error,
			 s->attempts);
		ob_fail(ob, om, why);
		return;
	}
	double delay = ob_backoff(ob, s->attempts);

	log_info("outbox: sms %lld: %s; retry %d in %.0f s", (long long)s->id,
		 error, s->attempts + 1, delay);
	ob_requeue(ob, om, store_now_ms() + (int64_t)(delay * 1000), error);
}

static void ob_on_sent(void *user, struct modem *m,
		       const struct modem_send_result *res)
{
	struct outbox *ob = user;
	struct ob_modem *om = ob_modem_find(ob, m, false);
	struct ob_job *job = om ? om->job : NULL;

	if (!job)
		return; /* the modem was removed and its job dropped */
	if (!res->ok) {
		if (res->transient)
			ob_retry(ob, om, res->error);
		else
			ob_fail(ob, om, res->error);
	} else if (res->mr < 0 || res->mr > 255) {
		/* "OK" without "+CMGS: <mr>": a stray final result took the
		 * send's place. Whether it went out is unknown: send again
		 * (at least once), as for a timeout. */
		ob_retry(ob, om, "answer without a message reference");
	} else {
		job->mr = res->mr;
		ob_settle_now(ob, om, OB_PENDING_RECORD);
	}
	outbox_kick(ob);
}

/* Sends the job's current part; on a synchronous refusal the SMS goes back
 * to the queue at once (the modem is not ready: no attempt was made). */
static void ob_job_send(struct outbox *ob, struct ob_modem *om)
{
	struct ob_job *job = om->job;
	struct store_part *part = &job->sms.parts[job->part];
	int rc;

	ob_rate_note(om, ev_now(ob->loop));
	rc = modem_send_pdu(om->modem, part->pdu, (unsigned)part->tpdu_len,
			    ob_on_sent, ob);
	if (rc == 0)
		return;
	if (rc == -EINVAL)
		ob_fail(ob, om, "stored PDU is invalid");
	else
		ob_requeue(ob, om, store_now_ms(), "modem not ready");
}

/* Takes the next due SMS for om's modem: 'sending' on it, in the caller's
 * transaction when there is one. -ENOENT when nothing is due. */
static int ob_job_take(struct outbox *ob, struct ob_modem *om,
		       struct ob_job **out)
{
	struct ob_job *job = calloc(1, sizeof(*job));
	int rc;

	if (!job)
		return -ENOMEM;
	rc = store_sms_next_due(ob->store, store_now_ms(), &job->sms);
	if (rc < 0)
		goto fail;
	rc = store_sms_mark_sending(ob->store, job->sms.id,
				    modem_name(om->modem));
	if (rc < 0) {
		store_sms_clear(&job->sms);
		goto fail;
	}
	job->sms.attempts++;
	job->part = job->sms.next_part;
	*out = job;
	return 0;
fail:
	free(job);
	return rc;
}

/* Puts a taken job on its modem and sends its first unsent part. */
static void ob_job_begin(struct outbox *ob, struct ob_modem *om,
			 struct ob_job *job)
{
	om->job = job;
	if (job->part >= job->sms.nparts)
		ob_sent_resumed(ob, om); /* crashed after the last part's mr */
	else
		ob_job_send(ob, om);
}

static int ob_job_start(struct outbox *ob, struct ob_modem *om)
{
	struct ob_job *job = NULL;
	int rc = ob_job_take(ob, om, &job);

	if (rc == 0)
		ob_job_begin(ob, om, job);
	return rc;
}

/* Arms the retry timer for the earliest queued SMS not yet due. */
static void ob_arm_retry(struct outbox *ob)
{
	int64_t at, now = store_now_ms();

	ev_timer_stop(ob->loop, &ob->retry_timer);
	if (store_sms_next_attempt(ob->store, &at) < 0)
		return;
	double delay = at > now ? (double)(at - now) / 1000.0 : 0.;
	ev_timer_set(&ob->retry_timer, delay + 0.001, 0.);
	ev_timer_start(ob->loop, &ob->retry_timer);
}

/* Gives every idle ready modem the next due SMS. Stops at the first modem
 * that finds nothing due: the queue is empty for all of them. */
static void ob_schedule(struct outbox *ob)
{
	double now = ev_now(ob->loop), rate_wait = 0;
	bool idle_modem = false;

	for (size_t i = 0; i < pool_count(ob->pool); i++) {
		struct modem *m = pool_modem(ob->pool, i);
		const struct config_modem *mc;
		struct ob_modem *om;

		if (!m || !modem_is_ready(m) || modem_busy(m))
			continue;
		om = ob_modem_find(ob, m, true);
		if (!om || om->job)
			continue;
		mc = pool_modem_config(ob->pool, m);
		double w = ob_rate_wait(om, mc ? mc->max_per_minute : 0, now);
		if (w > 0) {
			rate_wait = rate_wait == 0 || w < rate_wait ? w : rate_wait;
			continue;
		}
		idle_modem = true;
		int rc = ob_job_start(ob, om);
		if (rc == -ENOENT)
			break;
		if (rc < 0) {
			log_err("outbox: cannot take the next SMS: %s",
				strerror(-rc));
			break;
		}
	}
	if (rate_wait > 0) {
		/* A modem is at its cap: look again when a slot frees. */
		ev_timer_stop(ob->loop, &ob->retry_timer);
		ev_timer_set(&ob->retry_timer, rate_wait, 0.);
		ev_timer_start(ob->loop, &ob->retry_timer);
	} else if (idle_modem) {
		ob_arm_retry(ob);
	}
}

static void ob_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ob_schedule(w->data);
}

static void ob_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ob_schedule(w->data);
}

static void ob_expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct outbox *ob = w->data;
	int64_t *ids = NULL;
	size_t n = 0;
	int rc;

	(void)loop;
	(void)revents;
	rc = store_sms_expire(ob->store,
			      store_now_ms() - ob->cfg->outbox.max_age * 1000,
			      &ids, &n);
	if (rc < 0) {
		log_err("outbox: expiry sweep failed: %s", strerror(-rc));
		return;
	}
	for (size_t i = 0; i < n; i++)
		ob_event_failed(ob, ids[i], "expired");
	if (n)
		log_warn("outbox: %zu SMS expired unsent after %lld s", n,
			 (long long)ob->cfg->outbox.max_age);
	free(ids);
}

/* --- status reports ------------------------------------------------------- */

static enum store_report_class ob_report_class(uint8_t st)
{
	switch (pdu_status_class(st)) {
	case PDU_ST_DELIVERED:
		return STORE_REPORT_DELIVERED;
	case PDU_ST_PENDING:
		return STORE_REPORT_PENDING;
	default:
		return STORE_REPORT_FAILED;
	}
}

void outbox_status_report(struct outbox *ob, struct modem *modem,
			  const char *pdu_hex)
{
	struct pdu_sms *r = malloc(sizeof(*r));
	struct store_match match;
	char err[PDU_ERR_MAX];
	int rc;

	if (!r)
		return;
	if (pdu_decode_hex(pdu_hex, r, err, sizeof(err)) < 0 ||
	    r->type != PDU_STATUS_REPORT) {
		log_warn("outbox: modem %s: unreadable status report: %s",
			 modem_name(modem), err);
		goto out;
	}
	struct store_report rep = {
		.modem = modem_name(modem),
		.mr = r->mr,
		.recipient = r->addr.text,
		.cls = ob_report_class(r->status),
		.st = r->status,
	};
	rc = store_report_match(ob->store, &rep,
				ob->cfg->outbox.report_window * 1000,
				store_now_ms(), &match);
	if (rc < 0) {
		log_info("outbox: modem %s: status report for mr %d matches no "
			 "sent part", modem_name(modem), r->mr);
		goto out;
	}
	if (match.final && match.sms_status == STORE_DELIVERED)
		ctl_broadcast_event(ob->ctl, "sms.delivered",
				    json_pack("{s:I}", "id",
					      (json_int_t)match.sms_id));
	else if (match.final)
		ob_event_failed(ob, match.sms_id, pdu_status_text(r->status));
out:
	free(r);
}

/* --- ops ------------------------------------------------------------------ */

/* An accepted sms.send waiting for its batch's commit. */
struct ob_accepted {
	struct ctl_req *req;
	struct outbox_queued q;
};

/* Commits the batch of accepted sms.send and answers each, ok only now
 * that the SMS is durable. Called before the loop waits, or by the store
 * when someone else needs it first. */
static void ob_batch_flush(void *ctx)
{
	struct outbox *ob = ctx;
	int rc = store_batch_commit(ob->store);

	ev_prepare_stop(ob->loop, &ob->batch_prepare);
	for (size_t i = 0; i < ob->n_accepted; i++) {
		struct ob_accepted *a = &ob->accepted[i];

		if (rc == 0)
			ctl_reply_ok(a->req, json_pack("{s:I, s:i}", "sms_id",
						       (json_int_t)a->q.id,
						       "parts", (int)a->q.parts));
		else
			ctl_reply_err(a->req, CTL_ERR_UNAVAILABLE,
				      "the SMS could not be stored: %s",
				      strerror(-rc));
	}
	ob->n_accepted = 0;
	if (rc == 0) {
		outbox_kick(ob);
	} else {
		log_err("outbox: a batch of SMS could not be committed: %s",
			strerror(-rc));
		outbox_rollback(ob);
	}
}

static void ob_batch_prepare_cb(struct ev_loop *loop, ev_prepare *w,
				int revents)
{
	(void)loop;
	(void)revents;
	ob_batch_flush(w->data);
}

static int ob_accepted_push(struct outbox *ob, struct ctl_req *req,
			    const struct outbox_queued *q)
{
	if (ob->n_accepted == ob->cap_accepted) {
		size_t cap = ob->cap_accepted ? ob->cap_accepted * 2 : 64;
		struct ob_accepted *v = realloc(ob->accepted, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ob->accepted = v;
		ob->cap_accepted = cap;
	}
	ob->accepted[ob->n_accepted++] = (struct ob_accepted){ req, *q };
	return 0;
}

static int ob_audit_send(struct outbox *ob, struct ctl_req *req,
			 const struct outbox_queued *q)
{
	json_t *detail = json_pack("{s:I, s:i}", "sms_id", (json_int_t)q->id,
				   "parts", (int)q->parts);
	int rc = store_audit_add(ob->store, (long)ctl_req_peer_uid(req),
				 ctl_role_name(ctl_req_role(req)), "sms.send",
				 0, detail, NULL);

	json_decref(detail);
	return rc;
}

/* Queues one sms.send into the open batch (in a savepoint of its own, so a
 * refusal undoes only this one). The answer waits for the batch commit;
 * a refusal is answered now. */
static void ob_accept(struct outbox *ob, struct ctl_req *req,
		      const char *e164, const char *text)
{
	size_t mark = ob->n_announce;
	struct outbox_queued q;
	char err[256] = "";
	int rc = store_batch_enter(ob->store, ob_batch_flush, ob);

	if (rc == 0) {
		rc = store_tx_begin(ob->store);
		if (rc == 0)
			rc = outbox_queue_text(ob, e164, text, NULL,
					       STORE_KIND_MANUAL, 0, &q, err,
					       sizeof(err));
		if (rc == 0)
			rc = ob_audit_send(ob, req, &q);
		if (rc == 0)
			rc = store_tx_commit(ob->store);
		else if (store_in_tx(ob->store))
			store_tx_rollback(ob->store);
		if (rc == 0)
			rc = ob_accepted_push(ob, req, &q);
		store_batch_leave(ob->store);
		if (!ev_is_active(&ob->batch_prepare))
			ev_prepare_start(ob->loop, &ob->batch_prepare);
	}
	if (rc == 0)
		return;
	if (ob->n_announce > mark)
		ob->n_announce = mark;
	if (rc == -EINVAL || rc == -E2BIG)
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "text: %s", err);
	else
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE,
			      "the SMS could not be stored: %s", strerror(-rc));
}

static void op_sms_send(struct ctl_req *req, json_t *args, void *ctx)
{
	struct outbox *ob = ctx;
	const char *to = json_string_value(json_object_get(args, "to"));
	const char *text = json_string_value(json_object_get(args, "text"));
	char e164[PHONE_E164_MAX];
	const char *why = NULL;

	if (!to || !text) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST,
			      "sms.send needs \"to\" and \"text\" strings");
		return;
	}
	if (phone_normalize(to, e164, &why) < 0) {
		ctl_reply_err(req, CTL_ERR_INVALID_PHONE, "to: %s", why);
		return;
	}
	if (strlen(text) > OB_TEXT_MAX) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST,
			      "text: longer than %d bytes", OB_TEXT_MAX);
		return;
	}
	ob_accept(ob, req, e164, text);
}

static void op_sms_get(struct ctl_req *req, json_t *args, void *ctx)
{
	struct outbox *ob = ctx;
	json_t *id = json_object_get(args, "id");
	json_t *sms = NULL;
	int rc;

	if (!json_is_integer(id)) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "sms.get needs an integer \"id\"");
		return;
	}
	rc = store_sms_get(ob->store, json_integer_value(id), &sms);
	if (rc == -ENOENT) {
		ctl_reply_err(req, CTL_ERR_NOT_FOUND, "no SMS with id %lld",
			      (long long)json_integer_value(id));
		return;
	}
	if (rc < 0) {
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "store: %s", strerror(-rc));
		return;
	}
	ctl_reply_ok(req, json_pack("{s:o}", "sms", sms));
}

static void op_sms_list(struct ctl_req *req, json_t *args, void *ctx)
{
	struct outbox *ob = ctx;
	const char *dir = json_string_value(json_object_get(args, "direction"));
	json_t *limit = json_object_get(args, "limit");
	json_t *after = json_object_get(args, "after");
	json_t *list = NULL;
	int64_t next = 0;
	int rc;

	if (dir && strcmp(dir, "in") != 0 && strcmp(dir, "out") != 0) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST,
			      "direction: \"in\" or \"out\"");
		return;
	}
	if ((limit && !json_is_integer(limit)) || (after && !json_is_integer(after))) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST,
			      "limit and after are integers");
		return;
	}
	rc = store_sms_list(ob->store,
			    dir && strcmp(dir, "in") == 0 ? STORE_IN : STORE_OUT,
			    limit ? (int)json_integer_value(limit) : 0,
			    after ? json_integer_value(after) : 0, &list, &next);
	if (rc < 0) {
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "store: %s", strerror(-rc));
		return;
	}
	json_t *res = json_pack("{s:o}", "sms", list);
	if (next)
		json_object_set_new(res, "next", json_integer(next));
	ctl_reply_ok(req, res);
}

static const struct ctl_op outbox_ops[] = {
	{ "sms.send", op_sms_send, CTL_ROLE_ADMIN },
	{ "sms.get", op_sms_get, CTL_ROLE_ADMIN },
	{ "sms.list", op_sms_list, CTL_ROLE_ADMIN },
};

/* --- life cycle ------------------------------------------------------------ */

static void ob_modem_state(void *user, struct modem *m, enum modem_state from,
			   enum modem_state to)
{
	struct outbox *ob = user;

	(void)m;
	(void)from;
	if (to == MODEM_READY)
		outbox_kick(ob);
}

/* A modem going away mid-send: its SMS goes back to the queue (the parts
 * with an mr keep it) for any other modem. */
static void ob_modem_removed(void *user, struct modem *m)
{
	struct outbox *ob = user;
	struct ob_modem *om = ob_modem_find(ob, m, false);

	if (!om)
		return;
	if (om->job) {
		store_sms_retry(ob->store, om->job->sms.id, store_now_ms(),
				"modem removed");
		ob_job_end(om);
	}
	free(om->sent_at);
	*om = ob->modems[--ob->n_modems];
	outbox_kick(ob);
}

static void ob_report_direct(void *user, struct modem *m, const char *pdu)
{
	outbox_status_report(user, m, pdu);
}

struct outbox *outbox_new(struct ev_loop *loop, struct store *store,
			  struct ctl_server *ctl, struct pool *pool,
			  const struct config *cfg, char *err, size_t errlen)
{
	struct outbox *ob = calloc(1, sizeof(*ob));
	struct pool_listener l = {
		.state_changed = ob_modem_state,
		.report_direct = ob_report_direct,
		.removed = ob_modem_removed,
	};

	if (!ob)
		goto nomem;
	ob->loop = loop;
	ob->store = store;
	ob->ctl = ctl;
	ob->pool = pool;
	ob->cfg = cfg;
	ob->rand_state = (unsigned)store_now_ms();
	ob->next_ref = (uint16_t)ob->rand_state;
	ob->parts = calloc(OB_MAX_PARTS, sizeof(*ob->parts));
	if (!ob->parts)
		goto nomem;
	ev_timer_init(&ob->kick_timer, ob_kick_cb, 0., 0.);
	ev_timer_init(&ob->retry_timer, ob_retry_cb, 0., 0.);
	ev_timer_init(&ob->expire_timer, ob_expire_cb, 1., OB_EXPIRE_EVERY);
	ev_timer_init(&ob->stall_timer, ob_stall_cb, OB_STALL_RETRY,
		      OB_STALL_RETRY);
	ob->stall_timer.data = ob;
	ev_prepare_init(&ob->batch_prepare, ob_batch_prepare_cb);
	ob->batch_prepare.data = ob;
	ob->kick_timer.data = ob->retry_timer.data = ob->expire_timer.data = ob;
	ev_timer_start(loop, &ob->expire_timer);
	l.user = ob;
	if (pool_listen(pool, &l) < 0 ||
	    ctl_register(ctl, outbox_ops, sizeof(outbox_ops) / sizeof(outbox_ops[0]),
			 ob) < 0)
		goto nomem;
	return ob;
nomem:
	snprintf(err, errlen, "outbox: out of memory");
	outbox_free(ob);
	return NULL;
}

void outbox_free(struct outbox *ob)
{
	if (!ob)
		return;
	if (store_batch_open(ob->store))
		ob_batch_flush(ob);
	ev_prepare_stop(ob->loop, &ob->batch_prepare);
	free(ob->accepted);
	ev_timer_stop(ob->loop, &ob->kick_timer);
	ev_timer_stop(ob->loop, &ob->retry_timer);
	ev_timer_stop(ob->loop, &ob->expire_timer);
	ev_timer_stop(ob->loop, &ob->stall_timer);
	for (size_t i = 0; i < ob->n_modems; i++) {
		ob_job_end(&ob->modems[i]);
		free(ob->modems[i].sent_at);
	}
	free(ob->modems);
	free(ob->announce);
	free(ob->parts);
	free(ob);
}

void outbox_set_config(struct outbox *ob, const struct config *cfg)
{
	ob->cfg = cfg;
	outbox_kick(ob);
}

bool outbox_busy(const struct outbox *ob)
{
	for (size_t i = 0; i < ob->n_modems; i++)
		if (ob->modems[i].job)
			return true;
	return false;
}
