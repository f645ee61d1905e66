/* simmodem internals, shared by the three files of the module:
 *   simmodem.c  lifecycle, input state machine, output framing, network
 *   simsms.c    sending (+CMGS), status reports, inbound delivery
 *   simcmds.c   the AT command table and its handlers
 * Nothing outside drivers/sim/simmodem*.c, simsms.c, simcmds.c includes
 * this. */
#ifndef SMSGW_SIMMODEM_PRIV_H
#define SMSGW_SIMMODEM_PRIV_H

#include <ev.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "at/pdu.h"
#include "drivers/sim/simmodem.h"
#include "drivers/sim/simparse.h"
#include "drivers/sim/simstore.h"
#include "drivers/sim/simvendor.h"

#define SIM_LINE_MAX 560    /* command line bytes (V.250 asks >= 40) */
#define SIM_PDU_IN_MAX 512  /* hex characters accepted after "> " */
#define SIM_BACKLOG_MAX 8192
#define SIM_CMDS_MAX 16     /* commands on one line */
#define SIM_PIN_TRIES 3
#define SIM_MEM_MAX 4       /* "SM" + NUL */

/* What a command handler returns. */
enum sim_rtype {
	SIM_R_OK,
	SIM_R_ERROR,   /* plain "ERROR" */
	SIM_R_CME,     /* +CME ERROR: code (ERROR under CMEE=0) */
	SIM_R_CMS,     /* +CMS ERROR: code (ERROR under CMEE=0) */
	SIM_R_PROMPT,  /* "> ": PDU entry follows (AT+CMGS) */
	SIM_R_ASYNC,   /* the final result comes later (delayed +CMGS) */
};

struct sim_res {
	enum sim_rtype type;
	int code;
};

#define SIM_OK ((struct sim_res){ SIM_R_OK, 0 })
#define SIM_ERR ((struct sim_res){ SIM_R_ERROR, 0 })
#define SIM_CME(c) ((struct sim_res){ SIM_R_CME, (c) })
#define SIM_CMS(c) ((struct sim_res){ SIM_R_CMS, (c) })

/* TS 27.007 9.2 / TS 27.005 3.2.5 codes we use. */
enum {
	CME_NOT_ALLOWED = 3,
	CME_NOT_SUPPORTED = 4,
	CME_SIM_PIN = 11,
	CME_SIM_PUK = 12,
	CME_BAD_PASSWORD = 16,
	CME_NO_NETWORK = 30,
	CME_BAD_PARAM = 50,
	CMS_REJECTED = 21,      /* RP cause: short message transfer rejected */
	CMS_NET_OUT_OF_ORDER = 38,
	CMS_NOT_ALLOWED = 302,
	CMS_NOT_SUPPORTED = 303,
	CMS_BAD_PDU_PARAM = 304,
	CMS_SIM_PIN = 311,
	CMS_SIM_PUK = 316,
	CMS_BAD_INDEX = 321,
	CMS_MEMORY_FULL = 322,
	CMS_NO_NETWORK = 331,
	CMS_NET_TIMEOUT = 332,
	CMS_NO_CNMA = 340,
};

enum sim_sim { SIM_READY, SIM_NEED_PIN, SIM_NEED_PUK };

enum sim_reg_kind { SIM_CREG, SIM_CGREG, SIM_CEREG, SIM_REG_KINDS };

struct simbuf {
	char *d;
	size_t len, cap;
};

/* An SMS-DELIVER or SMS-STATUS-REPORT on its way to the modem. */
struct sim_mt {
	struct sim_mt *next;
	bool report;
	unsigned tpdu_len;
	char hex[PDU_HEX_MAX];
};

/* A +CMT/+CDS handed to the client, waiting for its +CNMA. */
struct sim_ack {
	ev_timer timer;
	struct simmodem *m;
	struct sim_ack *next;
	struct sim_mt mt;
};

/* A status report the "network" will send after report_delay. */
struct sim_report {
	ev_timer timer;
	struct simmodem *m;
	struct sim_report *prev, *next;
	uint8_t mr;
	uint8_t status;
	char to[PDU_ADDR_MAX];
	struct pdu_time scts;
};

/* A send waiting out send_delay. */
struct sim_send {
	struct sim_res res;  /* OK, or the error to answer */
	char hex[SIM_PDU_IN_MAX + 1];
	struct pdu_sms sms;
};

struct sim_numbers {
	char **v;
	size_t n;
};

/* Per-session settings: what ATZ / AT&F / a reboot restore. */
struct sim_settings {
	bool echo;
	int cmee;             /* 0 ERROR, 1 numeric, 2 verbose */
	int cmgf;             /* 0 PDU, 1 text */
	int cnmi[5];          /* mode, mt, bm, ds, bfr */
	int reg_n[SIM_REG_KINDS];
	int cops_format;      /* 0 long, 1 short, 2 numeric */
	int cmms, csms;
	int curc;             /* Huawei ^CURC */
	char cscs[12];
	char mem[3][SIM_MEM_MAX]; /* +CPMS mem1, mem2, mem3 names */
};

struct simmodem {
	struct ev_loop *loop;
	struct simmodem_opts o;
	struct simmodem_events ev;
	struct simmodem_stats st;
	struct sim_settings s;
	struct simstore *store;
	struct sim_numbers lists[2];  /* by enum simmodem_list */

	/* power and faults */
	bool powered;
	bool booting;        /* silent between AT+CFUN=1,1 and boot */
	bool hung;
	bool hang_done, unplug_done;
	bool reset_after;    /* reboot once the current final is out */
	int depth;           /* nesting of entry points; output is flushed
				when the outermost one leaves */
	uint64_t rng;

	/* SIM and network */
	enum sim_sim sim;
	int pin_tries;
	char pin[16];
	char smsc[PDU_ADDR_MAX];
	int cfun;
	bool net_off;        /* control "network": false */
	bool cops_dereg;     /* AT+COPS=2 */
	int reg_stat;        /* TS 27.007 <stat> last announced */
	ev_tstamp boot_time;

	/* input */
	bool in_pdu;         /* after "> ", until Ctrl-Z / ESC */
	char line[SIM_LINE_MAX];
	size_t line_len;
	bool line_overflow;
	size_t line_mark;    /* out.len where this line's echo began */
	char last_line[SIM_LINE_MAX]; /* for A/ */
	char pdu[SIM_PDU_IN_MAX + 1];
	size_t pdu_len;
	bool pdu_overflow;
	unsigned pdu_expect; /* <length> of AT+CMGS */
	bool busy;           /* waiting out send_delay; input backlogged */
	struct simbuf backlog;
	struct sim_send *sending;

	/* output */
	struct simbuf out;
	struct simbuf held;  /* URCs waiting for the final result */
	bool in_cmd;         /* a command line is executing */
	bool info_open;      /* an information block is open */
	char cur_name[SIMPARSE_NAME_MAX]; /* command being run: noise never
					     mimics its own answer */
	unsigned noise_idx;
	bool trace;          /* log_debug the traffic */

	/* SMS */
	uint8_t next_mr;
	uint16_t next_ref;
	struct sim_mt *mt_head, *mt_tail; /* inbound waiting for delivery */
	struct sim_ack *acks, *acks_tail; /* waiting for +CNMA */
	struct sim_report *reports;

	ev_timer reg_timer, reset_timer, send_timer, rssi_timer;
};

/* simmodem.c */
void simmodem_enter(struct simmodem *m);
void simmodem_leave(struct simmodem *m);
void simmodem_info(struct simmodem *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void simmodem_urc(struct simmodem *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void simmodem_urc_pdu(struct simmodem *m, const char *head, const char *hex);
void simmodem_noise(struct simmodem *m);
void simmodem_final(struct simmodem *m, struct sim_res res);
void simmodem_defaults(struct simmodem *m);
void simmodem_update_reg(struct simmodem *m);
void simmodem_reg_line(const struct simmodem *m, enum sim_reg_kind kind,
		       bool query, char *buf, size_t len);
bool simmodem_registered(const struct simmodem *m);
void simmodem_sim_ready(struct simmodem *m);
double simmodem_random(struct simmodem *m);
bool simmodem_listed(const struct simmodem *m, enum simmodem_list list,
		     const char *number);
int simbuf_append(struct simbuf *b, const char *d, size_t len);

/* simsms.c */
struct sim_res simsms_submit(struct simmodem *m);
void simsms_send_done(struct simmodem *m);
void simsms_kick(struct simmodem *m);
struct sim_res simsms_cnma(struct simmodem *m);
void simsms_power_off(struct simmodem *m);
void simsms_free(struct simmodem *m);
int simsms_inject(struct simmodem *m, const char *from, const char *text,
		  bool allow_shift, int msg_class, int ref, uint64_t only,
		  char *err, size_t errlen);

/* simcmds.c: runs one parsed command. */
struct sim_res simcmds_run(struct simmodem *m, const struct simparse_cmd *c);

#endif
