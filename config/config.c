/* config — see config.h.
 *
 * How a file is read: inih drives the loop, but it reads lines through
 * config_reader() below, which counts them (inih's handler gets no line
 * number), handles [section] headers itself (inih does not report empty
 * sections, nor headers it cannot parse after the first error), and screens
 * out lines inih would reject, so that every problem is reported with its
 * own line and none stops the others. inih then only sees "key = value"
 * lines: it splits them, strips inline "; comments" and whitespace, and
 * calls config_handler(). Leading whitespace is removed before inih sees a
 * line, so inih's multi-line continuation never applies.
 *
 * What a key is comes from the tables (section_defs[] -> key_def[]): type,
 * offset of its field, default (text, parsed like a value), range and an
 * optional extra check. A value that fails leaves the default in place so
 * that later checks run on sane data; the load still fails.
 */
#include "config/config.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MINUTE 60
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define WEEK (7 * DAY)

#define KEYS_MAX 16	 /* keys per section (checked below) */
#define WHY_MAX 192	 /* a value's error message */
#define SHOW_VALUE_MAX 40 /* longer values are cut in messages */

/* ---- enums -------------------------------------------------------------- */

struct enum_def {
	const char *name; /* the first name of a value is the one printed */
	int value;
};

static const struct enum_def log_levels[] = {
	{ "error", 3 }, { "err", 3 },	 { "warning", 4 }, { "warn", 4 },
	{ "notice", 5 }, { "info", 6 }, { "debug", 7 },	  { NULL, 0 },
};

/* The Linux termios rates from 9600 up (B9600 .. B4000000). */
static const struct enum_def bauds[] = {
	{ "9600", 9600 },	{ "19200", 19200 },	{ "38400", 38400 },
	{ "57600", 57600 },	{ "115200", 115200 },	{ "230400", 230400 },
	{ "460800", 460800 },	{ "500000", 500000 },	{ "576000", 576000 },
	{ "921600", 921600 },	{ "1000000", 1000000 }, { "1152000", 1152000 },
	{ "1500000", 1500000 }, { "2000000", 2000000 }, { "2500000", 2500000 },
	{ "3000000", 3000000 }, { "3500000", 3500000 }, { "4000000", 4000000 },
	{ NULL, 0 },
};

static const struct enum_def drivers[] = {
	{ "auto", CONFIG_DRIVER_AUTO },
	{ "generic", CONFIG_DRIVER_GENERIC },
	{ "simcom", CONFIG_DRIVER_SIMCOM },
	{ "quectel", CONFIG_DRIVER_QUECTEL },
	{ "huawei", CONFIG_DRIVER_HUAWEI },
	{ NULL, 0 },
};

static const struct enum_def flows[] = {
	{ "none", CONFIG_FLOW_NONE },
	{ "rtscts", CONFIG_FLOW_RTSCTS },
	{ "xonxoff", CONFIG_FLOW_XONXOFF },
	{ NULL, 0 },
};

static const struct enum_def storages[] = {
	{ "auto", CONFIG_STORAGE_AUTO }, { "SM", CONFIG_STORAGE_SM },
	{ "ME", CONFIG_STORAGE_ME },	 { "MT", CONFIG_STORAGE_MT },
	{ NULL, 0 },
};

static const struct enum_def pwhashes[] = {
	{ "interactive", CONFIG_PWHASH_INTERACTIVE },
	{ "moderate", CONFIG_PWHASH_MODERATE },
	{ "sensitive", CONFIG_PWHASH_SENSITIVE },
	{ NULL, 0 },
};

static const struct enum_def tmpl_kinds[] = {
	{ "invite", CONFIG_TMPL_INVITE },
	{ "recovery", CONFIG_TMPL_RECOVERY },
	{ "unclaimed", CONFIG_TMPL_UNCLAIMED },
	{ NULL, 0 },
};

static const struct enum_def device_kinds[] = {
	{ "path", CONFIG_DEVICE_PATH },
	{ "usb", CONFIG_DEVICE_USB },
	{ "sim", CONFIG_DEVICE_SIM },
	{ NULL, 0 },
};

/* Enum fields are written through an int pointer: make sure they are one. */
_Static_assert(sizeof(enum config_driver) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_flow) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_storage) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_pwhash) == sizeof(int), "enum size");

static const struct enum_def *enum_by_name(const struct enum_def *e,
					   const char *name)
{
	for (; e->name; e++)
		if (strcasecmp(e->name, name) == 0)
			return e;
	return NULL;
}

static const char *enum_name(const struct enum_def *e, int value)
{
	for (; e->name; e++)
		if (e->value == value)
			return e->name;
	return "?";
}

const char *config_driver_name(enum config_driver v)
{
	return enum_name(drivers, (int)v);
}

const char *config_flow_name(enum config_flow v)
{
	return enum_name(flows, (int)v);
}

const char *config_storage_name(enum config_storage v)
{
	return enum_name(storages, (int)v);
}

const char *config_pwhash_name(enum config_pwhash v)
{
	return enum_name(pwhashes, (int)v);
}

const char *config_template_kind_name(enum config_template_kind v)
{
	return enum_name(tmpl_kinds, (int)v);
}

const char *config_device_kind_name(enum config_device_kind v)
{
	return enum_name(device_kinds, (int)v);
}

/* ---- key tables --------------------------------------------------------- */

enum key_type {
	KT_STRING,   /* char *; length min..max bytes, UTF-8, no controls */
	KT_PATH,     /* char *; non-empty, length <= max, no controls */
	KT_BOOL,     /* bool; yes/no/true/false/on/off/1/0 */
	KT_INT,	     /* int; decimal, min..max */
	KT_DURATION, /* int64_t seconds; N[s|m|h|d|w], min..max */
	KT_ENUM,     /* int-sized enum or int, from an enum_def table */
	KT_MODE,     /* mode_t; octal, min..max */
};

enum key_flags {
	KF_REQUIRED = 1 << 0, /* no default: must be in the file */
	KF_SECRET = 1 << 1,   /* never echoed; printed as "****" */
	KF_ZERO_OK = 1 << 2,  /* durations: 0 is allowed besides min..max */
};

struct key_def;
/* An extra check after the type's own: 0, or -EINVAL with a reason. */
typedef int key_check_fn(const struct key_def *k, const char *v, char *why,
			 size_t whylen);

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;	    /* of the field in the section's struct */
	const char *def;    /* default, parsed like a value; NULL: none */
	int64_t min, max;   /* value range, or length range for strings */
	unsigned flags;	    /* enum key_flags */
	const struct enum_def *enums; /* KT_ENUM */
	key_check_fn *check;
	int arg; /* for check: the template kind */
};

#define KEY(n, t, off, d, lo, hi, ...)                                         \
	{                                                                      \
		.name = (n), .type = (t), .offset = (off), .def = (d),         \
		.min = (lo), .max = (hi), __VA_ARGS__                          \
	}

static key_check_fn check_group, check_device, check_pin, check_smsc,
	check_claim_url, check_lang, check_template;

#define D(f) offsetof(struct config_daemon, f)
static const struct key_def daemon_keys[] = {
	KEY("state_dir", KT_PATH, D(state_dir), "/var/lib/smsgw", 1, 4000),
	/* sizeof(sockaddr_un.sun_path) - 1 */
	KEY("socket", KT_PATH, D(socket), "/run/smsgw/control.sock", 1, 107),
	KEY("admin_group", KT_STRING, D(admin_group), "smsgw-admin", 0, 32,
	    .check = check_group),
	KEY("portal_group", KT_STRING, D(portal_group), "smsgw-portal", 0, 32,
	    .check = check_group),
	KEY("log_level", KT_ENUM, D(log_level), "info", 0, 0,
	    .enums = log_levels),
	KEY("socket_mode", KT_MODE, D(socket_mode), "0660", 0, 0777),
	KEY("health_interval", KT_DURATION, D(health_interval), "30s", 1, HOUR),
};

#define M(f) offsetof(struct config_modem, f)
static const struct key_def modem_keys[] = {
	KEY("device", KT_STRING, M(device), NULL, 1, 255, .flags = KF_REQUIRED,
	    .check = check_device),
	KEY("baud", KT_ENUM, M(baud), "115200", 0, 0, .enums = bauds),
	KEY("driver", KT_ENUM, M(driver), "auto", 0, 0, .enums = drivers),
	KEY("pin", KT_STRING, M(pin), "", 0, 64, .flags = KF_SECRET,
	    .check = check_pin),
	KEY("smsc", KT_STRING, M(smsc), "", 0, 16, .check = check_smsc),
	KEY("max_per_minute", KT_INT, M(max_per_minute), "0", 0, 1000),
	KEY("flow_control", KT_ENUM, M(flow_control), "rtscts", 0, 0,
	    .enums = flows),
	KEY("shift_tables", KT_BOOL, M(shift_tables), "yes", 0, 0),
	KEY("command_timeout", KT_DURATION, M(command_timeout), "10s", 1,
	    10 * MINUTE),
	KEY("send_timeout", KT_DURATION, M(send_timeout), "60s", 30,
	    10 * MINUTE),
	KEY("health_timeouts", KT_INT, M(health_timeouts), "3", 1, 20),
	KEY("storage", KT_ENUM, M(storage), "auto", 0, 0, .enums = storages),
	KEY("sim_args", KT_STRING, M(sim_args), "", 0, 190),
};

#define O(f) offsetof(struct config_outbox, f)
static const struct key_def outbox_keys[] = {
	KEY("send_attempts", KT_INT, O(send_attempts), "5", 1, 50),
	KEY("retry_backoff", KT_DURATION, O(retry_backoff), "30s", 1, HOUR),
	KEY("retry_backoff_max", KT_DURATION, O(retry_backoff_max), "15m", 1,
	    DAY),
	KEY("max_age", KT_DURATION, O(max_age), "24h", MINUTE, 30 * DAY),
	KEY("status_reports", KT_BOOL, O(status_reports), "yes", 0, 0),
	KEY("report_window", KT_DURATION, O(report_window), "72h", MINUTE,
	    30 * DAY),
	/* TP-VP relative reaches 63 weeks; 0 sends no TP-VP */
	KEY("validity", KT_DURATION, O(validity), "24h", 5 * MINUTE, 63 * WEEK,
	    .flags = KF_ZERO_OK),
	KEY("incomplete_timeout", KT_DURATION, O(incomplete_timeout), "1h",
	    MINUTE, 7 * DAY),
};

#define A(f) offsetof(struct config_accounts, f)
static const struct key_def accounts_keys[] = {
	KEY("organization", KT_STRING, A(organization), NULL, 1, 64,
	    .flags = KF_REQUIRED),
	KEY("claim_url", KT_STRING, A(claim_url), NULL, 1, 190,
	    .flags = KF_REQUIRED, .check = check_claim_url),
	KEY("language", KT_STRING, A(language), "en", 2, 2,
	    .check = check_lang),
	KEY("claim_sms_per_day", KT_INT, A(claim_sms_per_day), "5", 1, 100),
	KEY("invites_per_day", KT_INT, A(invites_per_day), "100", 1, 1000000),
	KEY("invites_per_day_verified", KT_INT, A(invites_per_day_verified),
	    "1000", 1, 1000000),
	KEY("claim_token_ttl_hours", KT_INT, A(claim_token_ttl_hours), "168",
	    1, 8760),
	KEY("recovery_attempts", KT_INT, A(recovery_attempts), "5", 1, 100),
	KEY("login_attempts", KT_INT, A(login_attempts), "10", 1, 1000),
	KEY("password_hash", KT_ENUM, A(password_hash), "interactive", 0, 0,
	    .enums = pwhashes),
	KEY("hash_threads", KT_INT, A(hash_threads), "0", 0, 16),
};

/* No table default: a missing key falls back to the built-in set. */
#define T(k) offsetof(struct config_templates, text[k])
static const struct key_def template_keys[] = {
	KEY("invite", KT_STRING, T(CONFIG_TMPL_INVITE), NULL, 1, 1000,
	    .check = check_template, .arg = CONFIG_TMPL_INVITE),
	KEY("recovery", KT_STRING, T(CONFIG_TMPL_RECOVERY), NULL, 1, 1000,
	    .check = check_template, .arg = CONFIG_TMPL_RECOVERY),
	KEY("unclaimed", KT_STRING, T(CONFIG_TMPL_UNCLAIMED), NULL, 1, 1000,
	    .check = check_template, .arg = CONFIG_TMPL_UNCLAIMED),
};

_Static_assert(ARRAY_SIZE(daemon_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(ARRAY_SIZE(modem_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(ARRAY_SIZE(outbox_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(ARRAY_SIZE(accounts_keys) <= KEYS_MAX, "KEYS_MAX");
_Static_assert(ARRAY_SIZE(template_keys) == CONFIG_TMPL_COUNT, "templates");

/* ---- built-in templates ------------------------------------------------ */

static const struct {
	const char *lang;
	const char *text[CONFIG_TMPL_COUNT];
} builtin_templates[] = {
	{ "en",
	  {
		  [CONFIG_TMPL_INVITE] = "{org}: {name}, you are invited. "
					 "Claim your account and set a "
					 "password: {link}",
		  [CONFIG_TMPL_RECOVERY] = "{org}: your recovery code is "
					   "{code}. It works once. Keep it "
					   "safe.",
		  [CONFIG_TMPL_UNCLAIMED] = "{org}: your password was reset. "
					    "Choose a new one: {link}",
	  } },
	{ "es",
	  {
		  [CONFIG_TMPL_INVITE] = "{org}: {name}, te hemos "
					 "invitado. Activa tu cuenta y "
					 "elige una contraseña: {link}",
		  [CONFIG_TMPL_RECOVERY] = "{org}: tu código de recuperación "
					   "es {code}. Solo sirve una vez. "
					   "Guárdalo bien.",
		  [CONFIG_TMPL_UNCLAIMED] = "{org}: tu contraseña se ha "
					    "restablecido. Elige una nueva: "
					    "{link}",
	  } },
};

static const char *builtin_template(const char *lang,
				    enum config_template_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(builtin_templates); i++)
		if (strcmp(builtin_templates[i].lang, lang) == 0)
			return builtin_templates[i].text[kind];
	return builtin_templates[0].text[kind]; /* en */
}

/* ---- sections ----------------------------------------------------------- */

struct load_ctx;
struct sect_state;

struct section_def {
	const char *name; /* "daemon", or "modem" of [modem.NAME] */
	bool named;	  /* [name.SUFFIX], any number of them */
	const struct key_def *keys;
	size_t n_keys;
	size_t max;		/* instances (named) */
	bool (*suffix_ok)(const char *s);
	const char *suffix_rule; /* for the error message */
	void *(*base)(struct config *cfg, size_t i);
	size_t (*count)(const struct config *cfg);
	const char *(*suffix)(const struct config *cfg, size_t i);
	int (*add)(struct config *cfg, const char *suffix);
	void (*finish)(struct load_ctx *c, struct sect_state *s);
};

/* What the loader knows about one section instance. */
struct sect_state {
	const struct section_def *def;
	size_t index;		/* in the config's array (named) */
	int line;		/* header line; 0 = not in the file */
	int key_line[KEYS_MAX]; /* line where each key was set; 0 = unset */
	bool key_bad[KEYS_MAX]; /* set, but the value was refused */
	bool any_bad;
};

#define STATES_MAX (3 + CONFIG_MODEMS_MAX + CONFIG_LANGS_MAX)

struct load_ctx {
	struct config *cfg;
	struct config_errors *errs;
	const char *file;
	FILE *fp;
	char *buf; /* getline() */
	size_t bufcap;
	int lineno;	  /* of the line inih is working on */
	int read_errno;	  /* from reading the file */
	size_t n_errors;  /* all of them, kept or not */
	bool oom;
	bool in_section;	/* a header was seen (even a bad one) */
	bool too_long;		/* this line did not fit inih's buffer */
	int line_max;		/* inih's line length limit */
	struct sect_state *cur; /* where keys go; NULL: ignored */
	struct sect_state states[STATES_MAX];
	size_t n_states;
};

/* ---- error messages ----------------------------------------------------- */

static void errors_add(struct config_errors *errs, char *msg)
{
	if (errs->count == CONFIG_ERRORS_MAX) {
		errs->dropped++;
		free(msg);
		return;
	}
	if (errs->count == errs->cap) {
		size_t cap = errs->cap ? errs->cap * 2 : 8;
		char **m = realloc(errs->msgs, cap * sizeof(*m));

		if (!m) {
			errs->dropped++;
			free(msg);
			return;
		}
		errs->msgs = m;
		errs->cap = cap;
	}
	errs->msgs[errs->count++] = msg;
}

/* Replaces control characters (from keys or section names in a broken
 * file) so that printing a message cannot drive a terminal. */
static char *defang(char *msg)
{
	for (unsigned char *p = (unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	return msg;
}

/* Records "FILE:LINE: key: message". */
__attribute__((format(printf, 4, 5))) static void
err_at(struct load_ctx *c, int line, const char *key, const char *fmt, ...)
{
	char msg[512];
	char *full = NULL;
	va_list ap;

	c->n_errors++;
	if (!c->errs)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&full, "%s:%d: %.64s: %s", c->file, line, key, msg) < 0) {
		c->errs->dropped++;
		return;
	}
	errors_add(c->errs, defang(full));
}

void config_errors_print(const struct config_errors *errs, FILE *fp)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->count; i++)
		fprintf(fp, "%s\n", errs->msgs[i]);
	if (errs->dropped)
		fprintf(fp, "... %zu more errors\n", errs->dropped);
}

void config_errors_free(struct config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->count; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	memset(errs, 0, sizeof(*errs));
}

/* The line to blame for something missing: the section's header, or the
 * end of the file when the section is not there at all. */
static int blame_line(const struct load_ctx *c, const struct sect_state *s)
{
	if (s->line > 0)
		return s->line;
	return c->lineno > 0 ? c->lineno : 1;
}

/* ---- value parsers ------------------------------------------------------ */

typedef int parse_fn(const struct key_def *k, const char *v, void *field,
		     char *why, size_t whylen);
typedef const char *show_fn(const struct key_def *k, const void *field,
			    char *buf, size_t len);

/* Bytes in the UTF-8 sequence that b leads; 0 if b cannot lead one. */
static int utf8_seq_len(unsigned char b)
{
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef)
		return 3;
	if (b >= 0xf0 && b <= 0xf4)
		return 4;
	return 0;
}

/* False for second bytes that make an overlong form, a surrogate or a
 * code point above U+10FFFF. */
static bool utf8_second_ok(unsigned char lead, unsigned char b)
{
	switch (lead) {
	case 0xe0:
		return b >= 0xa0;
	case 0xed:
		return b <= 0x9f;
	case 0xf0:
		return b >= 0x90;
	case 0xf4:
		return b <= 0x8f;
	default:
		return true;
	}
}

/* Accepts well-formed UTF-8 without control characters. */
static bool text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = utf8_seq_len(*p);

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)))
			return false;
		for (int i = 1; i < n; i++) /* stops at the NUL, too */
			if ((p[i] & 0xc0) != 0x80)
				return false;
		if (n > 1 && !utf8_second_ok(p[0], p[1]))
			return false;
		p += n;
	}
	return true;
}

static int parse_string(const struct key_def *k, const char *v, void *field,
			char *why, size_t whylen)
{
	size_t len = strlen(v);
	char **dst = field;
	char *copy;

	if ((int64_t)len < k->min || (int64_t)len > k->max) {
		if (k->min > 0 && len == 0)
			snprintf(why, whylen, "must not be empty");
		else
			snprintf(why, whylen, "must be %" PRId64 " to %" PRId64
				 " bytes long", k->min, k->max);
		return -EINVAL;
	}
	if (!text_ok(v)) {
		snprintf(why, whylen, "must be UTF-8 text without control "
				      "characters");
		return -EINVAL;
	}
	if (k->check && k->check(k, v, why, whylen) < 0)
		return -EINVAL;
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int parse_path(const struct key_def *k, const char *v, void *field,
		      char *why, size_t whylen)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(why, whylen, "control character in path");
			return -EINVAL;
		}
	}
	if (v[0] == '\0') {
		snprintf(why, whylen, "must not be empty");
		return -EINVAL;
	}
	if ((int64_t)strlen(v) > k->max) {
		snprintf(why, whylen, "longer than %" PRId64 " bytes", k->max);
		return -EINVAL;
	}
	return parse_string(k, v, field, why, whylen);
}

static const struct enum_def bools[] = {
	{ "yes", 1 }, { "no", 0 },  { "true", 1 }, { "false", 0 },
	{ "on", 1 },  { "off", 0 }, { "1", 1 },	   { "0", 0 },
	{ NULL, 0 },
};

static int parse_bool(const struct key_def *k, const char *v, void *field,
		      char *why, size_t whylen)
{
	const struct enum_def *e = enum_by_name(bools, v);

	(void)k;
	if (!e) {
		snprintf(why, whylen, "must be yes/no, true/false, on/off or "
				      "1/0");
		return -EINVAL;
	}
	*(bool *)field = e->value != 0;
	return 0;
}

/* Strict unsigned decimal: digits only, at most 18 of them. */
static int parse_digits(const char **p, int64_t *out)
{
	int64_t n = 0;
	int digits = 0;

	while (**p >= '0' && **p <= '9') {
		if (++digits > 18)
			return -ERANGE;
		n = n * 10 + (**p - '0');
		(*p)++;
	}
	if (digits == 0)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_int(const struct key_def *k, const char *v, void *field,
		     char *why, size_t whylen)
{
	const char *p = v;
	int64_t n = 0;
	int rc;

	if (v[0] == '-' && v[1] >= '0' && v[1] <= '9')
		rc = -ERANGE; /* every range here starts at 0 or above */
	else if ((rc = parse_digits(&p, &n)) == 0 && *p != '\0')
		rc = -EINVAL;
	if (rc == 0 && (n < k->min || n > k->max))
		rc = -ERANGE;
	if (rc == -EINVAL) {
		snprintf(why, whylen, "not a whole number");
		return -EINVAL;
	}
	if (rc == -ERANGE) {
		snprintf(why, whylen, "out of range %" PRId64 "..%" PRId64,
			 k->min, k->max);
		return -EINVAL;
	}
	*(int *)field = (int)n;
	return 0;
}

static const struct {
	char unit;
	int64_t seconds;
} dur_units[] = {
	/* largest first: format_duration() picks the first exact one */
	{ 'w', WEEK }, { 'd', DAY }, { 'h', HOUR }, { 'm', MINUTE }, { 's', 1 },
};

static void format_duration(int64_t s, char *buf, size_t len)
{
	for (size_t i = 0; s != 0 && i < ARRAY_SIZE(dur_units); i++) {
		if (s % dur_units[i].seconds == 0) {
			snprintf(buf, len, "%" PRId64 "%c",
				 s / dur_units[i].seconds, dur_units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%" PRId64, s);
}

/* "30" and "30s" are seconds; m, h, d, w are minutes .. weeks. */
static int duration_value(const char *v, int64_t *out)
{
	const char *p = v;
	int64_t n, unit = 1;

	if (parse_digits(&p, &n) < 0)
		return -EINVAL;
	if (*p != '\0') {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(dur_units); i++)
			if (dur_units[i].unit == *p)
				break;
		if (i == ARRAY_SIZE(dur_units) || p[1] != '\0')
			return -EINVAL;
		unit = dur_units[i].seconds;
	}
	if (n > INT64_MAX / unit)
		return -ERANGE;
	*out = n * unit;
	return 0;
}

static int parse_duration(const struct key_def *k, const char *v,
			  void *field, char *why, size_t whylen)
{
	int64_t s = 0;
	int rc = duration_value(v, &s);
	char lo[24], hi[24];

	if (rc == -EINVAL) {
		snprintf(why, whylen, "not a duration (use e.g. 30, 30s, 5m, "
				      "2h, 7d, 1w)");
		return -EINVAL;
	}
	if (rc == 0 && ((s == 0 && (k->flags & KF_ZERO_OK)) ||
			(s >= k->min && s <= k->max))) {
		*(int64_t *)field = s;
		return 0;
	}
	format_duration(k->min, lo, sizeof(lo));
	format_duration(k->max, hi, sizeof(hi));
	snprintf(why, whylen, "out of range %s%s..%s",
		 (k->flags & KF_ZERO_OK) ? "0 or " : "", lo, hi);
	return -EINVAL;
}

static int parse_enum(const struct key_def *k, const char *v, void *field,
		      char *why, size_t whylen)
{
	const struct enum_def *e = enum_by_name(k->enums, v);
	size_t used;

	if (e) {
		*(int *)field = e->value;
		return 0;
	}
	used = (size_t)snprintf(why, whylen, "must be one of");
	for (e = k->enums; e->name && used < whylen; e++) {
		if (e != k->enums && e[-1].value == e->value)
			continue; /* an alias */
		used += (size_t)snprintf(why + used, whylen - used, "%s %s",
					 e == k->enums ? "" : ",", e->name);
	}
	return -EINVAL;
}

static int parse_mode(const struct key_def *k, const char *v, void *field,
		      char *why, size_t whylen)
{
	size_t len = strspn(v, "01234567");
	long n;

	if (len == 0 || len > 4 || v[len] != '\0') {
		snprintf(why, whylen, "not an octal mode (e.g. 0660)");
		return -EINVAL;
	}
	n = strtol(v, NULL, 8);
	if (n < k->min || n > k->max) {
		snprintf(why, whylen, "out of range %04" PRIo64 "..%04" PRIo64,
			 (uint64_t)k->min, (uint64_t)k->max);
		return -EINVAL;
	}
	*(mode_t *)field = (mode_t)n;
	return 0;
}

/* ---- value printers ----------------------------------------------------- */

/* Each returns the value as written in the file: a string field itself, or
 * buf filled in. */
static const char *show_string(const struct key_def *k, const void *field,
			       char *buf, size_t len)
{
	const char *s = *(char *const *)field;

	(void)buf;
	(void)len;
	if (!s)
		return "";
	if ((k->flags & KF_SECRET) && s[0])
		return "****";
	return s;
}

static const char *show_bool(const struct key_def *k, const void *field,
			     char *buf, size_t len)
{
	(void)k;
	(void)buf;
	(void)len;
	return *(const bool *)field ? "yes" : "no";
}

static const char *show_int(const struct key_def *k, const void *field,
			    char *buf, size_t len)
{
	(void)k;
	snprintf(buf, len, "%d", *(const int *)field);
	return buf;
}

static const char *show_duration(const struct key_def *k, const void *field,
				 char *buf, size_t len)
{
	(void)k;
	format_duration(*(const int64_t *)field, buf, len);
	return buf;
}

static const char *show_enum(const struct key_def *k, const void *field,
			     char *buf, size_t len)
{
	(void)buf;
	(void)len;
	return enum_name(k->enums, *(const int *)field);
}

static const char *show_mode(const struct key_def *k, const void *field,
			     char *buf, size_t len)
{
	(void)k;
	snprintf(buf, len, "%04o", (unsigned)*(const mode_t *)field);
	return buf;
}

static const struct type_ops {
	parse_fn *parse;
	show_fn *show;
	bool owns_string; /* the field is a char * to free */
} type_ops[] = {
	[KT_STRING] = { parse_string, show_string, true },
	[KT_PATH] = { parse_path, show_string, true },
	[KT_BOOL] = { parse_bool, show_bool, false },
	[KT_INT] = { parse_int, show_int, false },
	[KT_DURATION] = { parse_duration, show_duration, false },
	[KT_ENUM] = { parse_enum, show_enum, false },
	[KT_MODE] = { parse_mode, show_mode, false },
};

/* ---- extra checks ------------------------------------------------------- */

static bool all_of(const char *s, const char *set)
{
	return s[strspn(s, set)] == '\0';
}

#define DIGITS "0123456789"
#define HEXDIGITS "0123456789abcdefABCDEF"
#define NAMECHARS                                                              \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

static int check_group(const struct key_def *k, const char *v, char *why,
		       size_t whylen)
{
	size_t len = strlen(v);

	(void)k;
	if (len > 1 && v[len - 1] == '$')
		len--; /* Samba machine accounts end in '$' */
	if (len == 0 || (v[0] != '-' && strspn(v, NAMECHARS ".") == len))
		return 0;
	snprintf(why, whylen, "not a group name (letters, digits, _ . -; "
			      "empty for none)");
	return -EINVAL;
}

/* Splits a device value; d may be NULL to only validate. */
static int device_parse(const char *v, struct config_modem *d, char *why,
			size_t whylen)
{
	unsigned vid, pid;
	const char *serial;

	if (strcmp(v, "sim") == 0) {
		if (d)
			d->device_kind = CONFIG_DEVICE_SIM;
		return 0;
	}
	if (v[0] == '/' || strncmp(v, "./", 2) == 0 ||
	    strncmp(v, "../", 3) == 0) {
		if (strpbrk(v, " \t")) {
			snprintf(why, whylen, "a device path has no spaces");
			return -EINVAL;
		}
		if (d)
			d->device_kind = CONFIG_DEVICE_PATH;
		return 0;
	}
	if (strncmp(v, "sim:", 4) == 0) {
		snprintf(why, whylen, "simulator arguments go in sim_args");
		return -EINVAL;
	}
	if (strncmp(v, "usb:", 4) != 0) {
		snprintf(why, whylen, "must be a path (/dev/...), "
				      "usb:VID:PID[:SERIAL] or sim");
		return -EINVAL;
	}
	if (strspn(v + 4, HEXDIGITS) != 4 || v[8] != ':' ||
	    strspn(v + 9, HEXDIGITS) != 4 || (v[13] && v[13] != ':')) {
		snprintf(why, whylen, "usb: VID and PID are 4 hex digits each "
				      "(usb:1e0e:9001[:SERIAL])");
		return -EINVAL;
	}
	serial = v + 13 + (v[13] == ':');
	if ((v[13] == ':' && !*serial) ||
	    strlen(serial) > CONFIG_USB_SERIAL_MAX || strpbrk(serial, " \t:")) {
		snprintf(why, whylen, "usb: SERIAL is 1 to %d characters, no "
				      "spaces or ':'", CONFIG_USB_SERIAL_MAX);
		return -EINVAL;
	}
	if (d) {
		sscanf(v + 4, "%4x:%4x", &vid, &pid);
		d->device_kind = CONFIG_DEVICE_USB;
		d->usb_vid = (uint16_t)vid;
		d->usb_pid = (uint16_t)pid;
		snprintf(d->usb_serial, sizeof(d->usb_serial), "%s", serial);
	}
	return 0;
}

static int check_device(const struct key_def *k, const char *v, char *why,
			size_t whylen)
{
	(void)k;
	return device_parse(v, NULL, why, whylen);
}

/* The message never contains the value: a PIN is a secret. */
static int check_pin(const struct key_def *k, const char *v, char *why,
		     size_t whylen)
{
	size_t len = strlen(v);

	(void)k;
	if (len == 0 || (len >= 4 && len <= 8 && all_of(v, DIGITS)))
		return 0;
	snprintf(why, whylen, "must be 4 to 8 digits, or empty");
	return -EINVAL;
}

static int check_smsc(const struct key_def *k, const char *v, char *why,
		      size_t whylen)
{
	size_t len = strlen(v);

	(void)k;
	if (len == 0 || (v[0] == '+' && len >= 9 && len <= 16 &&
			 all_of(v + 1, DIGITS)))
		return 0;
	snprintf(why, whylen, "must be E.164 (+ and 8 to 15 digits), or "
			      "empty");
	return -EINVAL;
}

static int check_claim_url(const struct key_def *k, const char *v, char *why,
			   size_t whylen)
{
	const char *tok = strstr(v, "{token}");
	size_t braces = 0;

	(void)k;
	for (const char *p = v; *p; p++)
		braces += *p == '{' || *p == '}';
	if (!tok || strstr(tok + 1, "{token}") || braces != 2) {
		snprintf(why, whylen, "must contain {token} exactly once, and "
				      "no other braces");
		return -EINVAL;
	}
	if (strncasecmp(v, "http://", 7) != 0 &&
	    strncasecmp(v, "https://", 8) != 0) {
		snprintf(why, whylen, "must start with https:// or http://");
		return -EINVAL;
	}
	if (strpbrk(v, " \t")) {
		snprintf(why, whylen, "must not contain spaces");
		return -EINVAL;
	}
	return 0;
}

static bool lang_ok(const char *s)
{
	return strlen(s) == 2 && all_of(s, "abcdefghijklmnopqrstuvwxyz");
}

static int check_lang(const struct key_def *k, const char *v, char *why,
		      size_t whylen)
{
	(void)k;
	if (lang_ok(v))
		return 0;
	snprintf(why, whylen, "must be two lower-case letters (en, es, ...)");
	return -EINVAL;
}

/* ---- templates ---------------------------------------------------------- */

static const struct {
	const char *name;
	size_t offset; /* in struct config_template_vars */
} placeholders[] = {
	{ "org", offsetof(struct config_template_vars, org) },
	{ "name", offsetof(struct config_template_vars, name) },
	{ "link", offsetof(struct config_template_vars, link) },
	{ "code", offsetof(struct config_template_vars, code) },
};

enum { PH_ORG = 1 << 0, PH_NAME = 1 << 1, PH_LINK = 1 << 2, PH_CODE = 1 << 3 };

/* Which placeholders a template kind needs and which make no sense in it. */
static const struct {
	unsigned need, deny;
} tmpl_rules[CONFIG_TMPL_COUNT] = {
	[CONFIG_TMPL_INVITE] = { PH_LINK, PH_CODE },
	[CONFIG_TMPL_RECOVERY] = { PH_CODE, PH_LINK },
	[CONFIG_TMPL_UNCLAIMED] = { PH_LINK, PH_CODE },
};

enum { TP_END = -1, TP_TEXT = -2, TP_BAD = -3 };

/* Takes the next piece off *pp: literal text (TP_TEXT), a placeholder (its
 * index), or a malformed one (TP_BAD); *piece and *len cover it ("{x}" with its
 * braces for placeholders). TP_END at the end. */
static int tmpl_next(const char **pp, const char **piece, size_t *len)
{
	const char *p = *pp, *end;

	*piece = p;
	if (*p == '\0')
		return TP_END;
	if (*p != '{') {
		*len = p[0] == '}' ? 1 : strcspn(p, "{}");
		*pp = p + *len;
		return p[0] == '}' ? TP_BAD : TP_TEXT;
	}
	end = p + 1 + strcspn(p + 1, "{}");
	if (*end != '}') {
		*len = 1;
		*pp = p + 1;
		return TP_BAD;
	}
	*len = (size_t)(end - p) + 1;
	*pp = end + 1;
	for (size_t i = 0; i < ARRAY_SIZE(placeholders); i++)
		if (strlen(placeholders[i].name) == *len - 2 &&
		    memcmp(placeholders[i].name, p + 1, *len - 2) == 0)
			return (int)i;
	return TP_BAD;
}

static int check_template(const struct key_def *k, const char *v, char *why,
			  size_t whylen)
{
	const char *p = v, *piece;
	unsigned used = 0, bad;
	size_t len;
	int t;

	while ((t = tmpl_next(&p, &piece, &len)) != TP_END) {
		if (t >= 0) {
			used |= 1u << t;
		} else if (t == TP_BAD && len == 1) {
			snprintf(why, whylen, "unbalanced '%c'", piece[0]);
			return -EINVAL;
		} else if (t == TP_BAD) {
			snprintf(why, whylen, "unknown placeholder %.*s (use "
				 "{org} {name} {link} {code})",
				 (int)len, piece);
			return -EINVAL;
		}
	}
	bad = tmpl_rules[k->arg].need & ~used;
	if (bad) {
		snprintf(why, whylen, "must contain {%s}",
			 placeholders[__builtin_ctz(bad)].name);
		return -EINVAL;
	}
	bad = tmpl_rules[k->arg].deny & used;
	if (bad) {
		snprintf(why, whylen, "{%s} makes no sense in %s",
			 placeholders[__builtin_ctz(bad)].name, k->name);
		return -EINVAL;
	}
	return 0;
}

int config_template_render(const char *tmpl,
			   const struct config_template_vars *vars, char *out,
			   size_t outlen)
{
	static const struct config_template_vars none;
	const char *p = tmpl, *piece;
	size_t len, used = 0;
	int t;

	if (!vars)
		vars = &none;
	while ((t = tmpl_next(&p, &piece, &len)) != TP_END) {
		if (t == TP_BAD) {
			if (outlen)
				out[0] = '\0';
			return -EINVAL;
		}
		if (t >= 0) {
			piece = *(const char *const *)((const char *)vars +
						       placeholders[t].offset);
			piece = piece ? piece : "";
			len = strlen(piece);
		}
		if (len >= outlen - used || used + len > INT32_MAX) {
			if (outlen)
				out[0] = '\0';
			return -ENOSPC;
		}
		memcpy(out + used, piece, len);
		used += len;
	}
	if (outlen == 0)
		return -ENOSPC;
	out[used] = '\0';
	return (int)used;
}

const char *config_template(const struct config *cfg, const char *lang,
			    enum config_template_kind kind)
{
	const struct config_templates *fallback = NULL;

	if ((unsigned)kind >= CONFIG_TMPL_COUNT)
		return "";
	for (size_t i = 0; i < cfg->n_templates; i++) {
		const struct config_templates *t = &cfg->templates[i];

		if (lang && strcmp(t->lang, lang) == 0 && t->text[kind])
			return t->text[kind];
		if (cfg->accounts.language &&
		    strcmp(t->lang, cfg->accounts.language) == 0)
			fallback = t;
	}
	if (fallback && fallback->text[kind])
		return fallback->text[kind];
	return builtin_template("en", kind);
}

/* ---- section instances -------------------------------------------------- */

static void *daemon_base(struct config *cfg, size_t i)
{
	(void)i;
	return &cfg->daemon;
}

static void *outbox_base(struct config *cfg, size_t i)
{
	(void)i;
	return &cfg->outbox;
}

static void *accounts_base(struct config *cfg, size_t i)
{
	(void)i;
	return &cfg->accounts;
}

static void *modem_base(struct config *cfg, size_t i)
{
	return &cfg->modems[i];
}

static void *templates_base(struct config *cfg, size_t i)
{
	return &cfg->templates[i];
}

static size_t count_one(const struct config *cfg)
{
	(void)cfg;
	return 1;
}

static size_t modem_count(const struct config *cfg)
{
	return cfg->n_modems;
}

static size_t templates_count(const struct config *cfg)
{
	return cfg->n_templates;
}

static const char *modem_suffix(const struct config *cfg, size_t i)
{
	return cfg->modems[i].name;
}

static const char *templates_suffix(const struct config *cfg, size_t i)
{
	return cfg->templates[i].lang;
}

static bool modem_name_ok(const char *s)
{
	size_t len = strlen(s);

	return len >= 1 && len <= CONFIG_NAME_MAX && all_of(s, NAMECHARS);
}

/* Appends a zeroed modem; returns its index or -ENOMEM. */
static int modem_add(struct config *cfg, const char *name)
{
	struct config_modem *m;

	m = realloc(cfg->modems, (cfg->n_modems + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	cfg->modems = m;
	m += cfg->n_modems;
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	return (int)cfg->n_modems++;
}

/* Appends an empty template set; returns its index or -ENOMEM. */
static int templates_add(struct config *cfg, const char *lang)
{
	struct config_templates *t;

	t = realloc(cfg->templates, (cfg->n_templates + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	cfg->templates = t;
	t += cfg->n_templates;
	memset(t, 0, sizeof(*t));
	snprintf(t->lang, sizeof(t->lang), "%s", lang);
	return (int)cfg->n_templates++;
}

static void modem_finish(struct load_ctx *c, struct sect_state *s);
static void outbox_finish(struct load_ctx *c, struct sect_state *s);
static void accounts_finish(struct load_ctx *c, struct sect_state *s);
static void templates_finish(struct load_ctx *c, struct sect_state *s);

enum { SEC_DAEMON, SEC_MODEM, SEC_OUTBOX, SEC_ACCOUNTS, SEC_TEMPLATES };

/* In the order config_print() writes them. */
static const struct section_def section_defs[] = {
	[SEC_DAEMON] = { .name = "daemon", .keys = daemon_keys,
			 .n_keys = ARRAY_SIZE(daemon_keys),
			 .base = daemon_base, .count = count_one },
	[SEC_MODEM] = { .name = "modem", .named = true, .keys = modem_keys,
			.n_keys = ARRAY_SIZE(modem_keys),
			.max = CONFIG_MODEMS_MAX, .suffix_ok = modem_name_ok,
			.suffix_rule = "1 to 32 of A-Z a-z 0-9 _ -",
			.base = modem_base, .count = modem_count,
			.suffix = modem_suffix, .add = modem_add,
			.finish = modem_finish },
	[SEC_OUTBOX] = { .name = "outbox", .keys = outbox_keys,
			 .n_keys = ARRAY_SIZE(outbox_keys),
			 .base = outbox_base, .count = count_one,
			 .finish = outbox_finish },
	[SEC_ACCOUNTS] = { .name = "accounts", .keys = accounts_keys,
			   .n_keys = ARRAY_SIZE(accounts_keys),
			   .base = accounts_base, .count = count_one,
			   .finish = accounts_finish },
	[SEC_TEMPLATES] = { .name = "templates", .named = true,
			    .keys = template_keys,
			    .n_keys = ARRAY_SIZE(template_keys),
			    .max = CONFIG_LANGS_MAX, .suffix_ok = lang_ok,
			    .suffix_rule = "two lower-case letters",
			    .base = templates_base, .count = templates_count,
			    .suffix = templates_suffix, .add = templates_add,
			    .finish = templates_finish },
};

/* "daemon" or "modem.main", for messages. */
static void section_label(const struct config *cfg, const struct sect_state *s,
			  char *buf, size_t len)
{
	if (s->def->named)
		snprintf(buf, len, "%s.%s", s->def->name,
			 s->def->suffix(cfg, s->index));
	else
		snprintf(buf, len, "%s", s->def->name);
}

static struct sect_state *state_find(struct load_ctx *c,
				     const struct section_def *d, size_t index)
{
	for (size_t i = 0; i < c->n_states; i++)
		if (c->states[i].def == d && c->states[i].index == index)
			return &c->states[i];
	return NULL;
}

static struct sect_state *state_new(struct load_ctx *c,
				    const struct section_def *d, size_t index,
				    int line)
{
	struct sect_state *s = &c->states[c->n_states++];

	memset(s, 0, sizeof(*s));
	s->def = d;
	s->index = index;
	s->line = line;
	return s;
}

static const struct key_def *key_find(const struct section_def *d,
				      const char *name)
{
	for (size_t i = 0; i < d->n_keys; i++)
		if (strcmp(d->keys[i].name, name) == 0)
			return &d->keys[i];
	return NULL;
}

/* Levenshtein distance, for "did you mean"; SIZE_MAX for long strings. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];

	if (la >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Close enough to be a typo: at most 2 edits, and fewer than the length. */
static bool looks_like(const char *typo, const char *name)
{
	size_t d = edit_distance(typo, name);

	return d <= 2 && d < strlen(name);
}

/* ---- reading lines ------------------------------------------------------ */

/* isspace() in the C locale, as inih uses it */
static bool is_space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static char *trim(char *s)
{
	char *end;

	while (is_space(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_space(end[-1]))
		*--end = '\0';
	return s;
}

static void unknown_section(struct load_ctx *c, const char *label,
			    const char *name, size_t plen)
{
	const struct section_def *best = NULL;
	char pre[64];

	snprintf(pre, sizeof(pre), "%.*s", (int)plen, name);
	for (size_t i = 0; i < ARRAY_SIZE(section_defs); i++) {
		const struct section_def *d = &section_defs[i];

		if (strcmp(d->name, pre) == 0) {
			err_at(c, c->lineno, label, d->named ?
			       "needs a name: [%s.NAME]" :
			       "takes no name: [%s]", d->name);
			return;
		}
		if (!best && looks_like(pre, d->name))
			best = d;
	}
	if (best && best->named)
		err_at(c, c->lineno, label, "unknown section; did you mean "
		       "[%s.%s]?", best->name, name[plen] ? name + plen + 1 :
		       "NAME");
	else if (best)
		err_at(c, c->lineno, label, "unknown section; did you mean "
		       "[%s]?", best->name);
	else
		err_at(c, c->lineno, label, "unknown section (known: [daemon] "
		       "[modem.NAME] [outbox] [accounts] [templates.LANG])");
}

/* The instance of a named section for [d.suffix]: an existing one that the
 * file has not claimed yet (built-in template sets), or a new one. */
static struct sect_state *named_instance(struct load_ctx *c,
					 const struct section_def *d,
					 const char *suffix, const char *label)
{
	size_t n = d->count(c->cfg);
	int idx;

	for (size_t i = 0; i < n; i++) {
		struct sect_state *s = state_find(c, d, i);

		if (strcmp(d->suffix(c->cfg, i), suffix) != 0)
			continue;
		if (s->line) {
			err_at(c, c->lineno, label, "duplicate section (first "
			       "on line %d)", s->line);
			return NULL;
		}
		s->line = c->lineno;
		return s;
	}
	if (n >= d->max || c->n_states == STATES_MAX) {
		err_at(c, c->lineno, label, "too many [%s.*] sections (at most "
		       "%zu)", d->name, d->max);
		return NULL;
	}
	idx = d->add(c->cfg, suffix);
	if (idx < 0) {
		c->oom = true;
		return NULL;
	}
	return state_new(c, d, (size_t)idx, c->lineno);
}

/* Makes [name] the current section, or reports why it cannot be. */
static void open_section(struct load_ctx *c, const char *name)
{
	const char *dot = strchr(name, '.');
	size_t plen = dot ? (size_t)(dot - name) : strlen(name);
	const struct section_def *d = NULL;
	char label[80];
	struct sect_state *s;

	snprintf(label, sizeof(label), "[%.64s]", name);
	for (size_t i = 0; i < ARRAY_SIZE(section_defs); i++)
		if (strlen(section_defs[i].name) == plen &&
		    memcmp(section_defs[i].name, name, plen) == 0)
			d = &section_defs[i];
	if (!d || d->named != (dot != NULL)) {
		unknown_section(c, label, name, plen);
		return;
	}
	if (d->named && !d->suffix_ok(dot + 1)) {
		err_at(c, c->lineno, label, "bad %s name \"%.40s\" (%s)",
		       d->name, dot + 1, d->suffix_rule);
		return;
	}
	if (d->named) {
		c->cur = named_instance(c, d, dot + 1, label);
		return;
	}
	s = state_find(c, d, 0);
	if (s->line) {
		err_at(c, c->lineno, label, "duplicate section (first on line "
		       "%d)", s->line);
		return;
	}
	s->line = c->lineno;
	c->cur = s;
}

static void section_header(struct load_ctx *c, char *s)
{
	char *end = strchr(s, ']');
	char *rest;

	c->in_section = true;
	c->cur = NULL; /* until the header proves good */
	if (!end) {
		err_at(c, c->lineno, "syntax", "missing ']' in section header");
		return;
	}
	rest = end + 1 + strspn(end + 1, " \t");
	if (*rest && *rest != ';' && *rest != '#') {
		err_at(c, c->lineno, "syntax", "text after ']'");
		return;
	}
	*end = '\0';
	open_section(c, trim(s + 1));
}

/* A "key = value" line as inih reads it: '=' or ':' before any inline
 * comment (';' after a space). Returns what to hand to inih, or NULL. */
static const char *key_line(struct load_ctx *c, char *s, int num)
{
	char *p = s;
	bool was_space = false;

	while (*p && *p != '=' && *p != ':' && !(was_space && *p == ';')) {
		was_space = is_space(*p);
		p++;
	}
	if (*p != '=' && *p != ':') {
		err_at(c, c->lineno, "syntax", "expected \"key = value\", "
		       "\"[section]\" or a comment");
		return NULL;
	}
	if (strlen(s) <= (size_t)num - 2)
		return s;
	/* Too long for inih's buffer: let the handler name the key. */
	*p = '\0';
	c->line_max = num - 2;
	if (strlen(trim(s)) >= 64) {
		err_at(c, c->lineno, "syntax", "line longer than %d characters",
		       c->line_max);
		return NULL;
	}
	c->too_long = true;
	return s;
}

/* inih's reader: one physical line per call, see the top of the file. */
static char *config_reader(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	const char *pass = "";
	ssize_t n;
	bool nul;
	char *s;

	errno = 0;
	n = getline(&c->buf, &c->bufcap, c->fp);
	if (n < 0) {
		if (ferror(c->fp))
			c->read_errno = errno ? errno : EIO;
		return NULL;
	}
	c->lineno++;
	c->too_long = false;
	s = c->buf;
	nul = memchr(s, '\0', (size_t)n) != NULL;
	if (c->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3; /* UTF-8 byte order mark */
	s = trim(s);
	if (nul)
		err_at(c, c->lineno, "syntax", "NUL byte in line");
	else if (*s == '[')
		section_header(c, s);
	else if (*s && *s != ';' && *s != '#')
		pass = key_line(c, s, num);
	snprintf(str, (size_t)num, "%s%s\n", pass ? pass : "",
		 c->too_long && pass ? "=" : "");
	return str;
}

/* ---- keys --------------------------------------------------------------- */

static void *field_of(struct config *cfg, const struct sect_state *s,
		      const struct key_def *k)
{
	return (char *)s->def->base(cfg, s->index) + k->offset;
}

/* Parses and stores one value; on error reports it, never with a secret. */
static void set_value(struct load_ctx *c, struct sect_state *s,
		      const struct key_def *k, const char *value)
{
	size_t i = (size_t)(k - s->def->keys);
	char why[WHY_MAX];
	int rc;

	rc = type_ops[k->type].parse(k, value, field_of(c->cfg, s, k), why,
				     sizeof(why));
	if (rc == 0)
		return;
	if (rc == -ENOMEM) {
		c->oom = true;
		return;
	}
	s->key_bad[i] = true;
	s->any_bad = true;
	if ((k->flags & KF_SECRET) || value[0] == '\0' || !text_ok(value))
		err_at(c, c->lineno, k->name, "%s", why);
	else if (strlen(value) > SHOW_VALUE_MAX)
		err_at(c, c->lineno, k->name, "%s (got \"%.*s...\")", why,
		       SHOW_VALUE_MAX, value);
	else
		err_at(c, c->lineno, k->name, "%s (got \"%s\")", why, value);
}

static void unknown_key(struct load_ctx *c, const struct sect_state *s,
			const char *name)
{
	char sect[64];

	section_label(c->cfg, s, sect, sizeof(sect));
	for (size_t i = 0; i < s->def->n_keys; i++) {
		if (looks_like(name, s->def->keys[i].name)) {
			err_at(c, c->lineno, name, "unknown key in [%s]; did "
			       "you mean \"%s\"?", sect, s->def->keys[i].name);
			return;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(section_defs); i++) {
		const struct section_def *d = &section_defs[i];

		if (d != s->def && key_find(d, name)) {
			err_at(c, c->lineno, name, "unknown key in [%s]; it "
			       "belongs in [%s%s]", sect, d->name,
			       d == &section_defs[SEC_MODEM] ? ".NAME" :
			       d->named ? ".LANG" : "");
			return;
		}
	}
	err_at(c, c->lineno, name, "unknown key in [%s]", sect);
}

/* inih's handler: one "key = value" of the current section. Always
 * returns 1: errors are collected here, not counted by inih. */
static int config_handler(void *user, const char *section, const char *name,
			  const char *value)
{
	struct load_ctx *c = user;
	struct sect_state *s = c->cur;
	const struct key_def *k;
	size_t i;

	(void)section; /* tracked by config_reader() */
	if (!name[0]) {
		err_at(c, c->lineno, "syntax", "key name missing before '='");
		return 1;
	}
	if (!c->in_section) {
		err_at(c, c->lineno, name, "key outside of any section");
		return 1;
	}
	if (!s)
		return 1; /* the section header was refused */
	k = key_find(s->def, name);
	if (!k) {
		unknown_key(c, s, name);
		return 1;
	}
	i = (size_t)(k - s->def->keys);
	if (s->key_line[i]) {
		err_at(c, c->lineno, name, "duplicate key (first set on line "
		       "%d)", s->key_line[i]);
		return 1;
	}
	s->key_line[i] = c->lineno;
	if (c->too_long) {
		err_at(c, c->lineno, name, "line longer than %d characters",
		       c->line_max);
		s->key_bad[i] = s->any_bad = true;
		return 1;
	}
	set_value(c, s, k, value);
	return 1;
}

/* ---- after the last line ------------------------------------------------ */

/* Defaults for keys not set (or refused); "required" for those without. */
static void apply_defaults(struct load_ctx *c, struct sect_state *s)
{
	char why[WHY_MAX], sect[64];

	section_label(c->cfg, s, sect, sizeof(sect));
	for (size_t i = 0; i < s->def->n_keys; i++) {
		const struct key_def *k = &s->def->keys[i];
		int rc;

		if (s->key_line[i] && !s->key_bad[i])
			continue;
		if (!k->def) {
			if ((k->flags & KF_REQUIRED) && !s->key_line[i])
				err_at(c, blame_line(c, s), k->name, s->line ?
				       "required in [%s]" :
				       "required (there is no [%s] section)",
				       sect);
			continue;
		}
		rc = type_ops[k->type].parse(k, k->def, field_of(c->cfg, s, k),
					     why, sizeof(why));
		if (rc == -ENOMEM)
			c->oom = true;
		else if (rc < 0)
			err_at(c, blame_line(c, s), k->name, "bad built-in "
			       "default: %s", why);
	}
}

static void modem_finish(struct load_ctx *c, struct sect_state *s)
{
	struct config_modem *m = &c->cfg->modems[s->index];
	char why[WHY_MAX];

	m->line = s->line;
	if (!m->device || device_parse(m->device, m, why, sizeof(why)) < 0)
		return; /* missing or refused: already reported */
	if (!s->any_bad && m->sim_args && m->sim_args[0] &&
	    m->device_kind != CONFIG_DEVICE_SIM)
		err_at(c, blame_line(c, s), "sim_args",
		       "only for device = sim");
}

static void outbox_finish(struct load_ctx *c, struct sect_state *s)
{
	const struct config_outbox *o = &c->cfg->outbox;
	char b[24];

	if (s->any_bad || o->retry_backoff_max >= o->retry_backoff)
		return;
	format_duration(o->retry_backoff, b, sizeof(b));
	err_at(c, blame_line(c, s), "retry_backoff_max",
	       "must be at least retry_backoff (%s)", b);
}

static void accounts_finish(struct load_ctx *c, struct sect_state *s)
{
	const struct config_accounts *a = &c->cfg->accounts;

	if (s->any_bad || a->invites_per_day_verified >= a->invites_per_day)
		return;
	err_at(c, blame_line(c, s), "invites_per_day_verified",
	       "must be at least invites_per_day (%d)", a->invites_per_day);
}

/* Keys the file did not give come from the built-in set for the language,
 * or from English. */
static void templates_finish(struct load_ctx *c, struct sect_state *s)
{
	struct config_templates *t = &c->cfg->templates[s->index];

	t->line = s->line;
	for (int k = 0; k < CONFIG_TMPL_COUNT; k++) {
		if (t->text[k])
			continue;
		t->text[k] = strdup(builtin_template(t->lang, k));
		if (!t->text[k])
			c->oom = true;
	}
}

static void check_devices(struct load_ctx *c)
{
	const struct config_modem *m = c->cfg->modems;

	for (size_t i = 1; i < c->cfg->n_modems; i++) {
		for (size_t j = 0; j < i; j++) {
			if (!m[i].device || !m[j].device ||
			    m[i].device_kind == CONFIG_DEVICE_SIM ||
			    strcmp(m[i].device, m[j].device) != 0)
				continue;
			err_at(c, m[i].line, "device", "same device as "
			       "[modem.%s] (line %d)", m[j].name, m[j].line);
			break;
		}
	}
}

static void check_language(struct load_ctx *c)
{
	const char *lang = c->cfg->accounts.language;
	struct sect_state *s = state_find(c, &section_defs[SEC_ACCOUNTS], 0);

	if (!lang)
		return;
	for (size_t i = 0; i < c->cfg->n_templates; i++)
		if (strcmp(c->cfg->templates[i].lang, lang) == 0)
			return;
	err_at(c, blame_line(c, s), "language", "no templates for \"%s\": add "
	       "a [templates.%s] section (built in: en, es)", lang, lang);
}

static void finish(struct load_ctx *c)
{
	for (size_t i = 0; i < c->n_states; i++)
		apply_defaults(c, &c->states[i]);
	for (size_t i = 0; i < c->n_states; i++)
		if (c->states[i].def->finish)
			c->states[i].def->finish(c, &c->states[i]);
	if (c->cfg->n_modems == 0)
		err_at(c, c->lineno > 0 ? c->lineno : 1, "[modem.NAME]",
		       "at least one modem section is required");
	check_devices(c);
	check_language(c);
}

/* ---- load, free, print -------------------------------------------------- */

/* The singleton sections and the built-in template sets exist before the
 * first line: their defaults apply even when the file omits them. */
static int ctx_init(struct load_ctx *c)
{
	const struct section_def *t = &section_defs[SEC_TEMPLATES];

	for (size_t i = 0; i < ARRAY_SIZE(section_defs); i++)
		if (!section_defs[i].named)
			state_new(c, &section_defs[i], 0, 0);
	for (size_t i = 0; i < ARRAY_SIZE(builtin_templates); i++) {
		int idx = templates_add(c->cfg, builtin_templates[i].lang);

		if (idx < 0)
			return -ENOMEM;
		state_new(c, t, (size_t)idx, 0);
	}
	return 0;
}

/* A message about the file as a whole (it has no line). */
__attribute__((format(printf, 2, 3))) static void
err_file(struct load_ctx *c, const char *fmt, ...)
{
	char msg[256];
	char *full = NULL;
	va_list ap;

	c->n_errors++;
	if (!c->errs)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&full, "%s: %s", c->file, msg) < 0)
		c->errs->dropped++;
	else
		errors_add(c->errs, defang(full));
}

static int parse_file(struct load_ctx *c)
{
	int rc = ini_parse_stream(config_reader, c, config_handler, c);

	if (rc > 0) /* the reader screens bad lines; in case one slips by */
		err_at(c, rc, "syntax", "cannot parse this line");
	else if (rc < 0)
		c->oom = true;
	if (c->read_errno) {
		err_file(c, "read error: %s", strerror(c->read_errno));
		return -c->read_errno;
	}
	finish(c);
	if (c->oom) {
		err_file(c, "out of memory");
		return -ENOMEM;
	}
	return c->n_errors ? -EINVAL : 0;
}

int config_load(const char *path, struct config **out,
		struct config_errors *errs)
{
	struct load_ctx *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	if (!c)
		return -ENOMEM;
	c->errs = errs;
	c->file = path;
	c->cfg = calloc(1, sizeof(*c->cfg));
	if (!c->cfg || !(c->cfg->path = strdup(path)) || ctx_init(c) < 0)
		goto free_ctx;
	c->fp = fopen(path, "re");
	if (!c->fp) {
		rc = -errno;
		err_file(c, "cannot open: %s", strerror(errno));
		goto free_ctx;
	}
	rc = parse_file(c);
	fclose(c->fp);
	if (rc == 0) {
		*out = c->cfg;
		c->cfg = NULL;
	}
free_ctx:
	config_free(c->cfg);
	free(c->buf);
	free(c);
	return rc;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(section_defs); i++) {
		const struct section_def *d = &section_defs[i];
		size_t n = d->count(cfg);

		for (size_t j = 0; j < n; j++) {
			char *base = d->base(cfg, j);

			for (size_t k = 0; k < d->n_keys; k++)
				if (type_ops[d->keys[k].type].owns_string)
					free(*(char **)(base +
							d->keys[k].offset));
		}
	}
	free(cfg->modems);
	free(cfg->templates);
	free(cfg->path);
	free(cfg);
}

const struct config_modem *config_modem_find(const struct config *cfg,
					     const char *name)
{
	for (size_t i = 0; i < cfg->n_modems; i++)
		if (strcmp(cfg->modems[i].name, name) == 0)
			return &cfg->modems[i];
	return NULL;
}

static void print_section(const struct config *cfg,
			  const struct section_def *d, size_t index, FILE *fp)
{
	/* base() only computes an address; nothing is written through it */
	const char *base = d->base((struct config *)cfg, index);
	char buf[64];

	if (d->named)
		fprintf(fp, "\n[%s.%s]\n", d->name, d->suffix(cfg, index));
	else
		fprintf(fp, "\n[%s]\n", d->name);
	for (size_t i = 0; i < d->n_keys; i++) {
		const struct key_def *k = &d->keys[i];
		const char *v = type_ops[k->type].show(k, base + k->offset,
						       buf, sizeof(buf));

		if (v[0])
			fprintf(fp, "%s = %s\n", k->name, v);
		else
			fprintf(fp, "%s =\n", k->name);
	}
}

void config_print(const struct config *cfg, FILE *fp)
{
	fprintf(fp, "; effective configuration from %s\n", cfg->path);
	for (size_t i = 0; i < ARRAY_SIZE(section_defs); i++) {
		size_t n = section_defs[i].count(cfg);

		for (size_t j = 0; j < n; j++)
			print_section(cfg, &section_defs[i], j, fp);
	}
}
