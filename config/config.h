/* config — smsgwd.conf: load, validate, print.
 *
 * The file is INI (parsed by inih). Every key comes from a table with its
 * type, range and default (config.c); unknown sections and keys, duplicate
 * keys and bad values are errors, and loading collects all of them, each as
 * "FILE:LINE: key: message". Missing required keys and cross-key errors name
 * the line of their section header (or the last line of the file when the
 * section is absent).
 *
 * The loaded struct is transparent: callers read its fields. It is built
 * from nothing but the file, with no global state, so a reload (SIGHUP)
 * loads into a new struct and swaps it in only when config_load() succeeded.
 *
 * Units: every duration is in SECONDS (int64_t). Paths are kept as written;
 * relative ones are relative to the daemon's current directory. Nothing here
 * touches the system (groups and devices are resolved by the daemon).
 *
 * Secrets: a modem PIN is only ever in config_modem.pin; no error message
 * and no config_print() output contains it.
 */
#ifndef SMSGW_CONFIG_H
#define SMSGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_PATH "/etc/smsgw/smsgwd.conf"

#define CONFIG_NAME_MAX 32	 /* modem name: [A-Za-z0-9_-]{1,32} */
#define CONFIG_MODEMS_MAX 32	 /* [modem.NAME] sections */
#define CONFIG_LANGS_MAX 16	 /* template sets, built-in ones included */
#define CONFIG_USB_SERIAL_MAX 64 /* usb:VID:PID:SERIAL */
#define CONFIG_ERRORS_MAX 100	 /* messages kept; later ones only counted */

enum config_device_kind {
	CONFIG_DEVICE_PATH, /* a serial device or pty path */
	CONFIG_DEVICE_USB,  /* usb:VID:PID[:SERIAL], found by port listing */
	CONFIG_DEVICE_SIM,  /* "sim": spawn the built-in simulator */
};

enum config_driver {
	CONFIG_DRIVER_AUTO, /* chosen from ATI / +CGMI */
	CONFIG_DRIVER_GENERIC,
	CONFIG_DRIVER_SIMCOM,
	CONFIG_DRIVER_QUECTEL,
	CONFIG_DRIVER_HUAWEI,
};

enum config_flow {
	CONFIG_FLOW_NONE,
	CONFIG_FLOW_RTSCTS,
	CONFIG_FLOW_XONXOFF,
};

/* Preferred message storage (AT+CPMS); AUTO keeps what the driver picks. */
enum config_storage {
	CONFIG_STORAGE_AUTO,
	CONFIG_STORAGE_SM,
	CONFIG_STORAGE_ME,
	CONFIG_STORAGE_MT,
};

/* Argon2id cost: maps to libsodium's crypto_pwhash_OPSLIMIT_X /
 * crypto_pwhash_MEMLIMIT_X pairs (INTERACTIVE, MODERATE, SENSITIVE). The
 * mapping lives in the module that wraps libsodium. */
enum config_pwhash {
	CONFIG_PWHASH_INTERACTIVE,
	CONFIG_PWHASH_MODERATE,
	CONFIG_PWHASH_SENSITIVE,
};

enum config_template_kind {
	CONFIG_TMPL_INVITE,    /* {org} {name} {link}; needs {link} */
	CONFIG_TMPL_RECOVERY,  /* {org} {name} {code}; needs {code} */
	CONFIG_TMPL_UNCLAIMED, /* {org} {name} {link}; needs {link} */
	CONFIG_TMPL_COUNT,
};

struct config_daemon {
	char *state_dir;    /* smsgw.db lives here */
	char *socket;	    /* control socket path (<= 107 bytes) */
	char *admin_group;  /* "" = no admin group (root and own uid only) */
	char *portal_group; /* "" = no portal group */
	int log_level;	    /* syslog priority 3..7 == enum log_level values */
	mode_t socket_mode; /* permissions of the control socket */
	int64_t health_interval; /* s, between modem health checks */
};

struct config_modem {
	char name[CONFIG_NAME_MAX + 1]; /* from [modem.NAME] */
	char *device;			/* as written */
	enum config_device_kind device_kind;
	uint16_t usb_vid, usb_pid; /* CONFIG_DEVICE_USB only */
	char usb_serial[CONFIG_USB_SERIAL_MAX + 1]; /* "" = any */
	int baud;
	enum config_driver driver;
	char *pin;  /* SECRET: "" or 4-8 digits; never log or print it */
	char *smsc; /* "" keeps the SIM's; else "+" and 8-15 digits */
	int max_per_minute; /* 0 = no cap */
	enum config_flow flow_control;
	bool shift_tables;	 /* may use national language shift tables */
	int64_t command_timeout; /* s, per AT command */
	int64_t send_timeout;	 /* s, per AT+CMGS (>= 30) */
	int health_timeouts; /* consecutive timeouts before a reset */
	enum config_storage storage;
	char *sim_args; /* extra arguments for the simulator (device = sim) */
	int line;	/* line of the [modem.NAME] header */
};

struct config_outbox {
	int send_attempts;	   /* per part, before the SMS fails */
	int64_t retry_backoff;	   /* s, first retry delay; doubles, jittered */
	int64_t retry_backoff_max; /* s, cap of the doubling */
	int64_t max_age;	   /* s, queued longer than this: failed */
	bool status_reports;	   /* request status reports (TP-SRR) */
	int64_t report_window;	   /* s, wait for a part's status report */
	int64_t validity;	   /* s, TP-VP relative; 0 = not sent */
	/* s, after which a multipart inbound SMS missing parts is delivered
	 * incomplete */
	int64_t incomplete_timeout;
};

struct config_accounts {
	char *organization; /* {org} in templates */
	char *claim_url;    /* http(s) URL with exactly one {token} */
	char *language;	    /* [a-z]{2}; always has a template set */
	int claim_sms_per_day;
	int invites_per_day;
	int invites_per_day_verified; /* >= invites_per_day */
	int claim_token_ttl_hours;
	int recovery_attempts; /* wrong codes per hour before lock */
	int login_attempts;    /* wrong passwords per hour before throttle */
	enum config_pwhash password_hash;
	int hash_threads; /* password hashing worker threads */
};

/* One effective template set: keys not in [templates.LANG] come from the
 * built-in set for LANG, or from the built-in English one. */
struct config_templates {
	char lang[3];
	char *text[CONFIG_TMPL_COUNT];
	int line; /* line of [templates.LANG], 0 when built in only */
};

struct config {
	char *path; /* the file it was loaded from */
	struct config_daemon daemon;
	struct config_modem *modems; /* in file order, at least one */
	size_t n_modems;
	struct config_outbox outbox;
	struct config_accounts accounts;
	struct config_templates *templates; /* "en", "es", then the file's */
	size_t n_templates;
};

/* Error messages collected by config_load(). Zero-initialise it
 * (`struct config_errors errs = {0};`), pass it to config_load(), print it,
 * then config_errors_free() it. */
struct config_errors {
	char **msgs;	/* count strings, "FILE:LINE: key: message" */
	size_t count;
	size_t cap;	/* allocated slots (internal) */
	size_t dropped; /* not kept: over CONFIG_ERRORS_MAX or no memory */
};

/* Values for {placeholders}; a NULL member renders as "". */
struct config_template_vars {
	const char *org;
	const char *name;
	const char *link;
	const char *code;
};

/* Loads and validates `path`. On success returns 0 and sets *out (free it
 * with config_free()). Otherwise returns -EINVAL (the file has errors), the
 * -errno of opening/reading it, or -ENOMEM; *out is untouched and every
 * problem found is appended to errs (NULL: discarded). */
int config_load(const char *path, struct config **out,
		struct config_errors *errs);

/* Frees a config; NULL is fine. */
void config_free(struct config *cfg);

/* Writes the effective config in INI form: every key, defaults included,
 * the PIN as "****" when set and empty when not. */
void config_print(const struct config *cfg, FILE *fp);

/* Writes one message a line, then "... N more errors" if any were dropped. */
void config_errors_print(const struct config_errors *errs, FILE *fp);

/* Frees the messages and resets errs to empty; NULL is fine. */
void config_errors_free(struct config_errors *errs);

/* The modem section named `name`, or NULL. */
const struct config_modem *config_modem_find(const struct config *cfg,
					     const char *name);

/* The effective template of `kind` for `lang`; a NULL or unknown lang
 * means cfg->accounts.language. Never NULL; owned by cfg. */
const char *config_template(const struct config *cfg, const char *lang,
			    enum config_template_kind kind);

/* Replaces {org} {name} {link} {code} in tmpl and writes the result,
 * NUL-terminated, to out. Returns its length (without the NUL), -ENOSPC if
 * it does not fit in outlen (out then holds ""), or -EINVAL if tmpl has an
 * unknown placeholder or an unbalanced brace. */
int config_template_render(const char *tmpl,
			   const struct config_template_vars *vars, char *out,
			   size_t outlen);

/* Names as written in the file ("auto", "rtscts", "SM", "moderate",
 * "invite", "usb"...); "?" for a value out of range. */
const char *config_driver_name(enum config_driver v);
const char *config_flow_name(enum config_flow v);
const char *config_storage_name(enum config_storage v);
const char *config_pwhash_name(enum config_pwhash v);
const char *config_template_kind_name(enum config_template_kind v);
const char *config_device_kind_name(enum config_device_kind v);

#endif
