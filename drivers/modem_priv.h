/* modem internals, shared by the two files of the module:
 *   modem.c       lifecycle: port, reset, re-open, health, registration,
 *                 URCs, the send and storage operations, the public API
 *   modem_init.c  the initialisation sequence (a table of steps), PIN
 *                 handling and identity
 * Nothing outside drivers/modem*.c includes this.
 *
 * Phases never overlap, so one one-shot timer (`timer`, with `timer_fn`)
 * serves all of them: init retries, the wait after a reset, network and
 * SIM polls, re-open backoff. `health` is the periodic AT+CSQ. */
#ifndef SMSGW_MODEM_PRIV_H
#define SMSGW_MODEM_PRIV_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "at/chat.h"
#include "at/result.h"
#include "drivers/modem.h"
#include "drivers/quirks.h"
#include "drivers/transport.h"

#define SYNC_TRIES 5           /* "AT" before the modem counts as dead */
#define SYNC_TIMEOUT_MS 1000   /* per "AT" (capped by command_timeout) */
#define STEP_TRIES 20          /* retries of one init step, then reset */
#define STEP_RETRY_S 1.0       /* between them */
#define OPTIONAL_TRIES 3       /* tries of a step we can live without */
#define PIN_SETTLE_S 0.5       /* after the PIN's OK, before +CPIN? */
#define MEM_MAX 8              /* "SM", "ME", "SR", "MT" + NUL */
#define ATI_MAX 256
#define CMD_MAX 96

enum pin_state {
	PIN_UNTRIED,  /* not sent since the daemon started */
	PIN_SENT,     /* on the wire, no verdict yet */
	PIN_ACCEPTED, /* OK once: re-entering after a reboot is safe */
	PIN_REJECTED, /* wrong, or no verdict: never sent again */
};

enum op_kind { OP_READ, OP_DELETE, OP_LIST };

/* A storage operation. They run one at a time, in order, because one may
 * first switch +CPMS <mem1>, which the next one depends on. */
struct modem_op {
	struct modem_op *next;
	enum op_kind kind;
	char mem[MEM_MAX]; /* "" = the preferred storage */
	unsigned index;
	union {
		modem_read_cb read;
		modem_done_cb done;
		modem_list_cb list;
	} cb;
	void *user;
};

struct modem {
	struct ev_loop *loop;
	struct modem_config cfg;  /* defaults applied; strings owned */
	struct modem_events ev;
	struct modem_info info;
	const struct modem_quirks *forced; /* driver= other than auto */
	const struct modem_quirks *quirks; /* in use (generic until known) */

	struct transport *tr;
	struct transport *stale_tr; /* lost; closed once its chat is gone */
	struct at_chat *chat;
	unsigned attached;          /* quirks_table bits whose URC handlers
				       are on this chat */

	/* init */
	size_t step;                /* index into init_steps */
	unsigned tries;             /* of the current step */
	size_t cnmi_i;              /* CNMI preference being tried */
	size_t reset_i;             /* reset command being tried */
	bool setup_done;            /* init ran through: only registration
				       decides between ready and waiting */
	bool full_at_init;          /* +CPMS said the storage is full */
	enum pin_state pin;
	int ciev_smsfull;           /* +CIND index of "smsfull", 0 none */
	unsigned reopen_tries;      /* failed re-opens since the loss */
	int creg, cereg;            /* last <stat>, -1 unknown */
	char cur_mem[MEM_MAX];      /* <mem1> as last set, "" unknown */
	char ati[ATI_MAX];

	ev_timer timer;
	void (*timer_fn)(struct modem *m);
	ev_timer health;
	double backoff;             /* next re-open delay */

	/* the one send in flight */
	bool sending;
	unsigned send_id;
	modem_send_cb send_cb;
	void *send_user;
	char send_text[24];         /* "AT+CMGS=<len>" */

	struct modem_op *ops_head, *ops_tail;
	bool op_running;            /* ops_head is on the wire */
};

static inline unsigned secs_to_ms(double s)
{
	return (unsigned)(s * 1000.0 + 0.5);
}

static inline bool res_ok(const struct at_result *res)
{
	return at_err_is_ok(&res->err);
}

static inline bool res_io(const struct at_result *res)
{
	return res->err.type == AT_ERR_IO;
}

static inline const char *err_text(const struct at_error *err, char *buf,
				   size_t len)
{
	at_err_format(err, buf, len);
	return buf;
}

/* modem.c */
/* Moves to `to`, logs it, and tells the daemon (last, so that the daemon
 * may call back into a consistent modem). */
void modem_set_state(struct modem *m, enum modem_state to, const char *why);
/* Queues an internal command; cb (may be NULL) gets m. Returns false when
 * the chat refused it (failed port: the disconnect callback follows). */
bool modem_send_cmd(struct modem *m, const char *text, const char *prefix,
		    bool bare, unsigned timeout_ms, at_chat_cb cb);
/* Bookkeeping for every completed command: storage full is reported, and
 * N consecutive timeouts reset the modem. True when a reset began (the
 * caller stops). */
bool modem_note_result(struct modem *m, const struct at_result *res);
void modem_timer_start(struct modem *m, double after,
		       void (*fn)(struct modem *m));
void modem_timer_stop(struct modem *m);
/* Gives up the port and re-opens it after the backoff, in state st. */
void modem_port_lost(struct modem *m, enum modem_state st, const char *why);
/* Fails what is pending and resets the modem with the family's command. */
void modem_reset_begin(struct modem *m, const char *why);
/* Re-derives the registration; once set up, ready <-> waiting_network. */
void modem_reg_evaluate(struct modem *m);
/* <stat> from +CREG:/+CEREG: lines, answer or URC; false if none parses. */
bool modem_parse_reg(const struct at_result *res, const char *prefix,
		     int *stat);
/* AT+CSQ answer: updates the signal. */
void modem_csq_cb(const struct at_result *res, void *ud);
/* Registers q's signal and storage-full URC handlers on the chat (once).
 * False on allocation failure. */
bool modem_quirk_attach(struct modem *m, const struct modem_quirks *q);
/* The configured storage, else the family's. */
const char *modem_pref_storage(const struct modem *m);

/* modem_init.c */
/* Starts the initialisation sequence (state initializing). */
void modem_init_begin(struct modem *m, const char *why);

#endif
