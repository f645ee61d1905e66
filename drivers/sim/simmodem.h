/* simmodem — a GSM modem's AT command interpreter (TS 27.007 / 27.005, PDU
 * mode), the SIM, the network and the faults, without any I/O of its own.
 *
 * Bytes from the client go in through simmodem_input(); everything the
 * modem says (echo, information lines, final results, URCs, the "> "
 * prompt) comes out through events.write in whole chunks: one write per
 * input chunk or timer, never per byte. Delays (network round trip,
 * status reports, reboot, registration) are ev_timers on the loop.
 *
 * The wire format is V.250 verbose: information responses and URCs are
 * framed "\r\n<line>\r\n", final results "\r\nOK\r\n"; multi-line
 * responses (+CMGL, ATI) separate lines with a single "\r\n"; echo is
 * the received command bytes, CR included, until ATE0.
 *
 * While a command runs (a line being executed, the PDU prompt, a delayed
 * +CMGS), URCs are held and follow its final result, as in CNMI mode 2;
 * with `noise` they are not held, and vendor noise lines are inserted
 * between response lines too.
 *
 * Fault model. hang_after N: the first N command lines are answered,
 * then the modem answers nothing at all (no echo, no URC, AT+CFUN=1,1
 * included: a hung firmware never parses it) while it keeps reading;
 * only simmodem_set_hung(false) or a power cycle (unplug/replug) cures it.
 * unplug_after N: the first N command lines are answered, then the next
 * one makes events.unplug fire (the owner closes the pty and calls
 * simmodem_power_off). Each trigger fires once. */
#ifndef SMSGW_SIMMODEM_H
#define SMSGW_SIMMODEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct simlog;
struct simstore;
struct simvendor;
struct simmodem;

/* Faults that may also change at run time (control socket "set"). */
struct simmodem_faults {
	double send_delay;   /* s between Ctrl-Z and the +CMGS answer */
	double report_delay; /* s between +CMGS and its status report */
	double fail_rate;    /* 0..1: share of sends failing transiently
				(+CMS ERROR: 332 or 38) */
};

struct simmodem_opts {
	const char *name;           /* the log's "modem" */
	const struct simvendor *vendor;
	const char *imsi, *imei, *iccid;
	const char *smsc;           /* the SIM's +CSCA, "" for none */
	const char *pin;            /* NULL: the SIM has no PIN lock */
	const char *puk;            /* unblocks after 3 wrong PINs */
	unsigned storage_size;      /* message slots */
	bool boot_urcs;             /* vendor's burst at power-on */
	bool noise;                 /* vendor URCs between response lines */
	double no_network;          /* s after boot before registering */
	double reset_time;          /* s of silence for AT+CFUN=1,1 */
	double cnma_timeout;        /* s to wait for +CNMA after +CMT/+CDS */
	double rssi_interval;       /* s between ^RSSI URCs (Huawei), 0 off */
	uint64_t seed;              /* for fail_rate */
	long hang_after;            /* command lines answered before hanging,
				       -1 never */
	long unplug_after;          /* command lines answered before the
				       unplug, -1 never */
	struct simmodem_faults faults;
	struct simlog *log;         /* sent SMS; not owned */
};

struct simmodem_events {
	void *user;
	/* Output for the pty. Required. */
	void (*write)(void *user, const char *buf, size_t len);
	/* unplug_after was reached: the owner unplugs (closes the pty and
	 * calls simmodem_power_off, possibly from inside this call). */
	void (*unplug)(void *user);
};

struct simmodem_stats {
	unsigned long commands;      /* command lines received */
	unsigned long sent;          /* parts the network accepted */
	unsigned long send_errors;   /* AT+CMGS ending in an error */
	unsigned long failed_transient; /* of those: injected 332/38 */
	unsigned long failed_permanent; /* of those: --permanent-fail */
	unsigned long received;      /* inbound parts handed to the client
					(stored or +CMT) */
	unsigned long reports;       /* status reports handed over */
	unsigned long waiting;       /* inbound parts/reports queued in the
					"network" (modem off, hung,
					unregistered, +CNMA outstanding) */
	unsigned long storage_full;  /* deliveries that found the storage
					full (the network retries after
					the next AT+CMGD) */
	unsigned long cnma_timeouts; /* +CMT/+CDS never acknowledged */
	unsigned long resets;        /* AT+CFUN=1,1 and control resets */
	unsigned long boots;         /* power-ons, resets included */
	unsigned long bytes_in, bytes_out;
	unsigned stored, capacity;   /* storage use */
	unsigned next_mr;            /* the next +CMGS reference */
	bool powered, hung, registered, sim_ready;
};

/* Which number list simmodem_add_number() extends. */
enum simmodem_list {
	SIMMODEM_PERMANENT_FAIL, /* +CMS ERROR: 21 for this recipient */
	SIMMODEM_UNDELIVERABLE,  /* accepted, status report 0x41 */
};

/* Returns NULL on allocation failure. opts strings must outlive the
 * modem. Starts powered off: call simmodem_power_on(). */
struct simmodem *simmodem_new(struct ev_loop *loop,
			      const struct simmodem_opts *opts,
			      const struct simmodem_events *ev);
void simmodem_free(struct simmodem *m);

/* Boots: settings to defaults, PIN needed again (if any), registration
 * after opts.no_network, boot URCs. A hang is cleared. */
void simmodem_power_on(struct simmodem *m);
/* Power gone (unplugged): nothing in flight survives; unacknowledged +CMT
 * go back to the network queue; storage and the SIM stay. */
void simmodem_power_off(struct simmodem *m);
/* A reboot as AT+CFUN=1,1 does it, without the OK: silent for
 * opts.reset_time, then boots. */
void simmodem_reset(struct simmodem *m);

/* Bytes the client wrote. */
void simmodem_input(struct simmodem *m, const char *buf, size_t len);

/* Queues an inbound SMS from `from` (possibly multipart: a concat UDH
 * per part) for delivery as CNMI says, as soon as the modem is on,
 * registered and answering. Returns the number of parts, or -EINVAL /
 * -E2BIG / -ENOMEM with the reason in err. */
/* ref: the concatenation reference to use (-1: the next one); only: a bit
 * mask of the parts to deliver (bit 0 = part 1; 0: all), so that tests
 * can deliver a set in pieces. */
int simmodem_inject(struct simmodem *m, const char *from, const char *text,
		    bool allow_shift, int msg_class, int ref, uint64_t only,
		    char *err, size_t errlen);

/* Writes one raw URC line now (if powered and not hung). */
void simmodem_urc_line(struct simmodem *m, const char *line);

void simmodem_set_hung(struct simmodem *m, bool hung);
/* false: the network goes away (+CREG stat 2, sends fail with 331). */
void simmodem_set_network(struct simmodem *m, bool available);

void simmodem_get_faults(const struct simmodem *m, struct simmodem_faults *f);
void simmodem_set_faults(struct simmodem *m, const struct simmodem_faults *f);

/* Adds a number (copied) to a list; clear empties it. Numbers compare by
 * their digits: "+34600111222" matches "34600111222". 0 or -ENOMEM. */
int simmodem_add_number(struct simmodem *m, enum simmodem_list list,
			const char *number);
void simmodem_clear_numbers(struct simmodem *m, enum simmodem_list list);

void simmodem_get_stats(const struct simmodem *m, struct simmodem_stats *st);

/* The message storage, for inspection (control "storage"). */
struct simstore *simmodem_store(struct simmodem *m);

#endif
