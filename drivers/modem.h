/* modem — one GSM modem: transport + AT chat + the driver state machine.
 *
 * The daemon creates one `struct modem` per [modem.NAME] section, maps its
 * config into a `struct modem_config`, and from then on only reacts to the
 * events below and calls the operations. The driver opens the port, brings
 * the modem up (sync, echo off, identity, PIN, registration, PDU mode,
 * storage, new-message indications), keeps it healthy (a periodic AT+CSQ;
 * reset after consecutive timeouts; re-open with backoff after an unplug),
 * and reports every state change.
 *
 *   opening -> initializing -> ready | waiting_network | waiting_pin
 *   waiting_network <-> ready         (registration lost / back)
 *   any -> gone                       (port lost; re-opened with backoff
 *                                      0.5 s doubling to 30 s)
 *   gone -> initializing              (port back)
 *   any -> resetting                  (N commands in a row timed out:
 *                                      AT+CFUN=1,1 or the family's reset,
 *                                      else the port is closed, re-opened)
 *   resetting -> initializing
 *   ready -> initializing             (the modem rebooted on its own: "RDY")
 *   initializing -> pin_rejected | puk_locked   (until restart: the PIN is
 *                                      entered once, a PUK never guessed)
 *   initializing -> no_sim            (re-checked every network_poll)
 *
 * Callback contract (STYLE 6): an operation that returns 0 calls its
 * callback exactly once, never before it returns. One that returns -errno
 * never calls it, and the caller still owns `user`. Strings passed to a
 * callback are borrowed for the call only. Callbacks may queue further
 * operations on the same modem but must not modem_free() it. modem_free()
 * completes whatever is pending with -ECANCELED (a send: ok=false,
 * transient=true) before it returns. */
#ifndef SMSGW_MODEM_H
#define SMSGW_MODEM_H

#include <stdbool.h>
#include <stddef.h>

#include "at/aterr.h"
#include "drivers/transport.h"

struct ev_loop;
struct modem;

enum modem_state {
	MODEM_OPENING,         /* "opening": opening the port */
	MODEM_INITIALIZING,    /* "initializing": sync, identity, setup */
	MODEM_WAITING_PIN,     /* "waiting_pin": SIM wants a PIN, none set */
	MODEM_WAITING_NETWORK, /* "waiting_network": not registered yet */
	MODEM_READY,           /* "ready": sends and receives */
	MODEM_RESETTING,       /* "resetting": stopped answering, resetting */
	MODEM_GONE,            /* "gone": port lost, re-opening */
	MODEM_PIN_REJECTED,    /* "pin_rejected": configured PIN was wrong */
	MODEM_PUK_LOCKED,      /* "puk_locked": SIM wants its PUK */
	MODEM_NO_SIM,          /* "no_sim": no SIM or SIM failure; re-checked */
};
#define MODEM_STATE_COUNT (MODEM_NO_SIM + 1)

/* Wire names above; "unknown" for out-of-range values. */
const char *modem_state_name(enum modem_state state);

enum modem_reg {
	MODEM_REG_UNKNOWN,   /* "unknown": not asked yet */
	MODEM_REG_NONE,      /* "none": not registered, not searching */
	MODEM_REG_SEARCHING, /* "searching" */
	MODEM_REG_DENIED,    /* "denied" */
	MODEM_REG_HOME,      /* "home" */
	MODEM_REG_ROAMING,   /* "roaming" */
};
const char *modem_reg_name(enum modem_reg reg);

/* What the daemon fills from its [modem.NAME] section. Strings are copied
 * by modem_new(). Zero / NULL fields take the defaults in brackets. */
struct modem_config {
	const char *name;       /* "main": log prefix, modem.list name */
	const char *device;     /* "/dev/ttyUSB2", a pty path, or
				   "usb:VID:PID[:SERIAL]" */
	int baud;               /* [115200] */
	enum transport_flow flow; /* [none] */
	const char *driver;     /* "auto" [NULL], "generic", "simcom",
				   "quectel", "huawei" */
	const char *pin;        /* SIM PIN, entered once; never logged */
	const char *smsc;       /* "+34600000000": AT+CSCA; [keep SIM's] */
	const char *storage;    /* "SM", "ME", "MT": AT+CPMS [driver's] */
	double command_timeout; /* seconds per command [5] */
	double send_timeout;    /* seconds for one AT+CMGS [60] */
	double health_interval; /* seconds between AT+CSQ checks [30] */
	unsigned health_timeouts; /* consecutive timeouts before reset [3] */
	double network_poll;    /* seconds between AT+CREG? while waiting
				   for the network or a SIM [10] */
	double reopen_min;      /* first re-open delay after a loss [0.5] */
	double reopen_max;      /* cap of the doubling delay [30] */
};

/* Checks a config before modem_new: device set, baud valid, driver known,
 * "usb:" syntax, storage name. Returns 0 or -EINVAL with the reason in
 * err (naming the key: "driver: unknown driver 'foo' (auto, generic, ...)").
 */
int modem_config_check(const struct modem_config *cfg, char *err,
		       size_t errlen);

/* Events; any pointer may be NULL. `user` is passed back unchanged. */
struct modem_events {
	void *user;
	/* Every transition, with a short human reason ("registration home",
	 * "3 commands in a row timed out", "port lost (end of file or
	 * hang-up)"). */
	void (*state_changed)(void *user, struct modem *m,
			      enum modem_state from, enum modem_state to,
			      const char *reason);
	/* +CMTI: "SM",3: an SMS was stored; read it, commit it, delete it. */
	void (*sms_stored)(void *user, struct modem *m, const char *mem,
			   unsigned index);
	/* +CMT: an SMS routed straight to us (PDU hex, SMSC prefix first).
	 * The driver acks it (AT+CNMA) when this returns: commit first. */
	void (*sms_direct)(void *user, struct modem *m, const char *pdu_hex);
	/* +CDS: a status report routed straight to us (PDU hex). */
	void (*report_direct)(void *user, struct modem *m,
			      const char *pdu_hex);
	/* +CDSI: "SR",2: a status report was stored. */
	void (*report_stored)(void *user, struct modem *m, const char *mem,
			      unsigned index);
	/* +CMS ERROR: 322 or a vendor "memory full" URC: sweep the storage. */
	void (*storage_full)(void *user, struct modem *m);
};

/* Creates a modem on `loop`; nothing happens until modem_start(). Returns
 * NULL on allocation failure or an invalid config (see
 * modem_config_check). `ev` is copied. */
struct modem *modem_new(struct ev_loop *loop, const struct modem_config *cfg,
			const struct modem_events *ev);

/* Stops everything, completes pending operations with -ECANCELED, closes
 * the port. Accepts NULL. Must not be called from a modem callback. */
void modem_free(struct modem *m);

/* Opens the port once, synchronously, and starts the state machine.
 * Returns 0 (also when the port is absent: the modem goes `gone` and is
 * re-opened with backoff), or -EBUSY when another process holds the port,
 * -EINVAL for a bad device spec, -ENOTTY for a path that is no terminal,
 * with the reason (naming the port) in err: the daemon refuses to start
 * on those. May report state changes before it returns. */
int modem_start(struct modem *m, char *err, size_t errlen);

/* --- sending ------------------------------------------------------------ */

struct modem_send_result {
	bool ok;
	int mr;              /* TP-MR from "+CMGS: <mr>", 0..255; -1 if !ok */
	struct at_error err; /* AT_ERR_OK when ok; +CMS ERROR code, TIMEOUT,
				IO (modem gone or reset mid-send), ... */
	bool transient;      /* at_err_is_transient(&err): retry later or on
				another modem; false: fail the part */
	const char *error;   /* "" when ok, else at_err_format() text, e.g.
				"+CMS ERROR: 38 (network out of order)",
				"timeout", "modem reset"; borrowed */
};

typedef void (*modem_send_cb)(void *user, struct modem *m,
			      const struct modem_send_result *res);

/* Sends one part: AT+CMGS=<tpdu_len>, wait for "> ", PDU + Ctrl-Z, as one
 * queued command with the send timeout. `hex` (SMSC prefix first, as
 * pdu_part.hex) is copied. Returns 0, -EAGAIN (not ready: transient, try
 * another modem), -EBUSY (a send is already in flight on this modem) or
 * -EINVAL (hex not hex, or tpdu_len does not match it). */
int modem_send_pdu(struct modem *m, const char *hex, unsigned tpdu_len,
		   modem_send_cb cb, void *user);

/* --- storage (the inbox) ------------------------------------------------ */

/* TS 27.005 <stat> in PDU mode. */
enum modem_sms_stat {
	MODEM_STAT_UNREAD = 0,
	MODEM_STAT_READ = 1,
	MODEM_STAT_UNSENT = 2,
	MODEM_STAT_SENT = 3,
};

struct modem_sms_entry {
	unsigned index;
	int stat;            /* enum modem_sms_stat */
	const char *pdu_hex; /* SMSC prefix first; borrowed */
};

/* rc: 0, -ENOENT (empty slot), -EIO (modem error), -ETIMEDOUT,
 * -ENODEV (modem gone), -ECANCELED (modem freed). */
typedef void (*modem_done_cb)(void *user, struct modem *m, int rc);
typedef void (*modem_read_cb)(void *user, struct modem *m, int rc,
			      const struct modem_sms_entry *sms);
typedef void (*modem_list_cb)(void *user, struct modem *m, int rc,
			      const struct modem_sms_entry *v, size_t n);

/* mem: the storage named by +CMTI/+CDSI ("SM", "ME", "SR"), or NULL for
 * the preferred one; the driver switches +CPMS around the command when
 * they differ. All three return 0, -EAGAIN (not ready) or -EINVAL. */
int modem_read_sms(struct modem *m, const char *mem, unsigned index,
		   modem_read_cb cb, void *user);
int modem_delete_sms(struct modem *m, const char *mem, unsigned index,
		     modem_done_cb cb, void *user);
/* AT+CMGL=4: every message in the storage (the start-up sweep). */
int modem_list_sms(struct modem *m, const char *mem, modem_list_cb cb,
		   void *user);

/* --- state -------------------------------------------------------------- */

#define MODEM_INFO_STR 64

/* Kept up to date by the driver; valid until modem_free(). */
struct modem_info {
	const char *name;     /* config name */
	const char *device;   /* config device */
	const char *driver;   /* quirk set in use: "generic", "simcom", ... */
	enum modem_state state;
	char manufacturer[MODEM_INFO_STR]; /* +CGMI */
	char model[MODEM_INFO_STR];        /* +CGMM */
	char revision[MODEM_INFO_STR];     /* +CGMR */
	char imei[MODEM_INFO_STR];         /* +CGSN */
	char imsi[MODEM_INFO_STR];         /* +CIMI: mask before showing */
	char operator_name[MODEM_INFO_STR];/* +COPS? long alphanumeric */
	int signal;           /* +CSQ rssi 0..31, -1 unknown */
	enum modem_reg reg;
	unsigned long sent;   /* parts accepted by the network (+CMGS) */
	unsigned long failed; /* sends that ended in an error */
};

const struct modem_info *modem_get_info(const struct modem *m);
const char *modem_name(const struct modem *m);
enum modem_state modem_get_state(const struct modem *m);
bool modem_is_ready(const struct modem *m);
/* True while a send is in flight (modem_send_pdu would say -EBUSY). */
bool modem_busy(const struct modem *m);

#endif
