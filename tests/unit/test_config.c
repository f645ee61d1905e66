/* Tests for config/: loading, defaults, every kind of error with its exact
 * FILE:LINE: key, PIN masking, templates, and the shipped configs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char tmpdir[256];
static int file_seq;

/* The last load: its file, result and errors. */
struct loaded {
	char path[PATH_MAX];
	struct config *cfg;
	struct config_errors errs;
	int rc;
};

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/smsgw-config-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char path[PATH_MAX];

	(void)state;
	for (int i = 1; i <= file_seq; i++) {
		snprintf(path, sizeof(path), "%s/t%d.conf", tmpdir, i);
		unlink(path);
	}
	return rmdir(tmpdir);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void load_path(struct loaded *l, const char *path)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->rc = config_load(path, &l->cfg, &l->errs);
}

/* Writes text (len bytes; 0: strlen) to a fresh file and loads it. */
static void load_bytes(struct loaded *l, const char *text, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/t%d.conf", tmpdir, ++file_seq);
	write_file(path, text, len ? len : strlen(text));
	load_path(l, path);
}

static void load_text(struct loaded *l, const char *text)
{
	load_bytes(l, text, 0);
}

static void unload(struct loaded *l)
{
	config_free(l->cfg);
	config_errors_free(&l->errs);
	l->cfg = NULL;
}

static void dump_errors(const struct loaded *l)
{
	for (size_t i = 0; i < l->errs.count; i++)
		print_message("  error: %s\n", l->errs.msgs[i]);
}

static void assert_loaded_clean(const struct loaded *l)
{
	if (l->rc != 0 || l->errs.count != 0)
		dump_errors(l);
	assert_int_equal(l->rc, 0);
	assert_int_equal(l->errs.count, 0);
	assert_non_null(l->cfg);
}

/* Asserts that exactly "PATH:LINE: key: message" was reported. */
static void expect_error(const struct loaded *l, int line, const char *key,
			 const char *message)
{
	char want[PATH_MAX + 1024];

	snprintf(want, sizeof(want), "%s:%d: %s: %s", l->path, line, key,
		 message);
	for (size_t i = 0; i < l->errs.count; i++)
		if (strcmp(l->errs.msgs[i], want) == 0)
			return;
	print_message("missing error: %s\n", want);
	dump_errors(l);
	fail();
}

/* Asserts a failed load with exactly `n` errors. */
static void expect_failed(const struct loaded *l, size_t n)
{
	if (l->errs.count != n)
		dump_errors(l);
	assert_int_equal(l->rc, -EINVAL);
	assert_null(l->cfg);
	assert_int_equal(l->errs.count, n);
}

/* A valid file with only the required keys. */
#define MINIMAL                                                                \
	"[modem.m]\n"                                                          \
	"device = sim\n"                                                       \
	"[accounts]\n"                                                         \
	"organization = Org\n"                                                 \
	"claim_url = https://p.example/claim/{token}\n"

static void test_minimal_gets_defaults(void **state)
{
	struct loaded l;
	const struct config *c;

	(void)state;
	load_text(&l, MINIMAL);
	assert_loaded_clean(&l);
	c = l.cfg;
	assert_string_equal(c->path, l.path);
	assert_string_equal(c->daemon.state_dir, "/var/lib/smsgw");
	assert_string_equal(c->daemon.socket, "/run/smsgw/control.sock");
	assert_string_equal(c->daemon.admin_group, "smsgw-admin");
	assert_string_equal(c->daemon.portal_group, "smsgw-portal");
	assert_int_equal(c->daemon.log_level, 6);
	assert_int_equal(c->daemon.socket_mode, 0660);
	assert_int_equal(c->daemon.health_interval, 30);

	assert_int_equal(c->n_modems, 1);
	assert_string_equal(c->modems[0].name, "m");
	assert_int_equal(c->modems[0].line, 1);
	assert_string_equal(c->modems[0].device, "sim");
	assert_int_equal(c->modems[0].device_kind, CONFIG_DEVICE_SIM);
	assert_int_equal(c->modems[0].baud, 115200);
	assert_int_equal(c->modems[0].driver, CONFIG_DRIVER_AUTO);
	assert_string_equal(c->modems[0].pin, "");
	assert_string_equal(c->modems[0].smsc, "");
	assert_int_equal(c->modems[0].max_per_minute, 0);
	assert_int_equal(c->modems[0].flow_control, CONFIG_FLOW_RTSCTS);
	assert_true(c->modems[0].shift_tables);
	assert_int_equal(c->modems[0].command_timeout, 10);
	assert_int_equal(c->modems[0].send_timeout, 60);
	assert_int_equal(c->modems[0].health_timeouts, 3);
	assert_int_equal(c->modems[0].storage, CONFIG_STORAGE_AUTO);
	assert_string_equal(c->modems[0].sim_args, "");

	assert_int_equal(c->outbox.send_attempts, 5);
	assert_int_equal(c->outbox.retry_backoff, 30);
	assert_int_equal(c->outbox.retry_backoff_max, 15 * 60);
	assert_int_equal(c->outbox.max_age, 24 * 3600);
	assert_true(c->outbox.status_reports);
	assert_int_equal(c->outbox.report_window, 72 * 3600);
	assert_int_equal(c->outbox.validity, 24 * 3600);
	assert_int_equal(c->outbox.incomplete_timeout, 3600);

	assert_string_equal(c->accounts.organization, "Org");
	assert_string_equal(c->accounts.claim_url,
			    "https://p.example/claim/{token}");
	assert_string_equal(c->accounts.language, "en");
	assert_int_equal(c->accounts.claim_sms_per_day, 5);
	assert_int_equal(c->accounts.invites_per_day, 100);
	assert_int_equal(c->accounts.invites_per_day_verified, 1000);
	assert_int_equal(c->accounts.claim_token_ttl_hours, 168);
	assert_int_equal(c->accounts.recovery_attempts, 5);
	assert_int_equal(c->accounts.login_attempts, 10);
	assert_int_equal(c->accounts.password_hash, CONFIG_PWHASH_INTERACTIVE);
	assert_int_equal(c->accounts.hash_threads, 0);

	assert_int_equal(c->n_templates, 2);
	assert_string_equal(c->templates[0].lang, "en");
	assert_string_equal(c->templates[1].lang, "es");
	unload(&l);
}

static void test_every_key_set(void **state)
{
	static const char text[] =
		"[daemon]\n"
		"state_dir = ./var ; inline comment\n"
		"socket = ./var/ctl.sock\n"
		"admin_group = wheel\n"
		"portal_group =\n"
		"log_level = WARN\n"
		"socket_mode = 600\n"
		"health_interval = 2m\n"
		"[modem.gsm-1]\n"
		"device = usb:1E0e:9001:SN_42\n"
		"baud = 921600\n"
		"driver = quectel\n"
		"pin = 12345678\n"
		"smsc = +34609090909\n"
		"max_per_minute = 12\n"
		"flow_control = none\n"
		"shift_tables = off\n"
		"command_timeout = 90\n"
		"send_timeout = 2m\n"
		"health_timeouts = 20\n"
		"storage = me\n"
		"[modem.b]\n"
		"  device = /dev/ttyUSB0\n" /* indented: still a key */
		"[modem.c]\n"
		"device = usb:12d1:1506\n"
		"[outbox]\n"
		"send_attempts = 50\n"
		"retry_backoff = 1\n"
		"retry_backoff_max = 1h\n"
		"max_age = 30d\n"
		"status_reports = false\n"
		"report_window = 1w\n"
		"validity = 0\n"
		"incomplete_timeout = 7d\n"
		"[accounts]\n"
		"organization = Planta Norte S.A.\n"
		"claim_url = http://portal:8080/c/{token}?x=1\n"
		"language = es\n"
		"claim_sms_per_day = 1\n"
		"invites_per_day = 7\n"
		"invites_per_day_verified = 7\n"
		"claim_token_ttl_hours = 8760\n"
		"recovery_attempts = 100\n"
		"login_attempts = 3\n"
		"password_hash = Sensitive\n"
		"hash_threads = 16\n";
	struct loaded l;
	const struct config *c;

	(void)state;
	load_text(&l, text);
	assert_loaded_clean(&l);
	c = l.cfg;
	assert_string_equal(c->daemon.state_dir, "./var");
	assert_string_equal(c->daemon.admin_group, "wheel");
	assert_string_equal(c->daemon.portal_group, "");
	assert_int_equal(c->daemon.log_level, 4);
	assert_int_equal(c->daemon.socket_mode, 0600);
	assert_int_equal(c->daemon.health_interval, 120);
	assert_int_equal(c->n_modems, 3);
	assert_string_equal(c->modems[0].name, "gsm-1");
	assert_int_equal(c->modems[0].device_kind, CONFIG_DEVICE_USB);
	assert_int_equal(c->modems[0].usb_vid, 0x1e0e);
	assert_int_equal(c->modems[0].usb_pid, 0x9001);
	assert_string_equal(c->modems[0].usb_serial, "SN_42");
	assert_int_equal(c->modems[0].baud, 921600);
	assert_int_equal(c->modems[0].driver, CONFIG_DRIVER_QUECTEL);
	assert_string_equal(c->modems[0].pin, "12345678");
	assert_string_equal(c->modems[0].smsc, "+34609090909");
	assert_int_equal(c->modems[0].max_per_minute, 12);
	assert_int_equal(c->modems[0].flow_control, CONFIG_FLOW_NONE);
	assert_false(c->modems[0].shift_tables);
	assert_int_equal(c->modems[0].command_timeout, 90);
	assert_int_equal(c->modems[0].send_timeout, 120);
	assert_int_equal(c->modems[0].health_timeouts, 20);
	assert_int_equal(c->modems[0].storage, CONFIG_STORAGE_ME);
	assert_int_equal(c->modems[1].device_kind, CONFIG_DEVICE_PATH);
	assert_string_equal(c->modems[1].device, "/dev/ttyUSB0");
	assert_int_equal(c->modems[1].line, 22);
	assert_int_equal(c->modems[2].usb_pid, 0x1506);
	assert_string_equal(c->modems[2].usb_serial, "");
	assert_ptr_equal(config_modem_find(c, "b"), &c->modems[1]);
	assert_null(config_modem_find(c, "nope"));
	assert_int_equal(c->outbox.send_attempts, 50);
	assert_int_equal(c->outbox.retry_backoff, 1);
	assert_false(c->outbox.status_reports);
	assert_int_equal(c->outbox.report_window, 7 * 86400);
	assert_int_equal(c->outbox.validity, 0);
	assert_int_equal(c->outbox.max_age, 30 * 86400);
	assert_string_equal(c->accounts.organization, "Planta Norte S.A.");
	assert_string_equal(c->accounts.language, "es");
	assert_int_equal(c->accounts.password_hash, CONFIG_PWHASH_SENSITIVE);
	assert_int_equal(c->accounts.hash_threads, 16);
	assert_string_equal(config_driver_name(c->modems[0].driver), "quectel");
	assert_string_equal(config_storage_name(c->modems[0].storage), "ME");
	assert_string_equal(config_flow_name(CONFIG_FLOW_XONXOFF), "xonxoff");
	assert_string_equal(config_pwhash_name(CONFIG_PWHASH_MODERATE),
			    "moderate");
	assert_string_equal(config_device_kind_name(CONFIG_DEVICE_USB), "usb");
	unload(&l);
}

static void test_booleans_and_durations(void **state)
{
	static const struct {
		const char *value;
		bool on;
	} bools[] = {
		{ "yes", true },  { "no", false }, { "true", true },
		{ "false", false }, { "on", true }, { "off", false },
		{ "1", true },	  { "0", false },  { "YES", true },
	};
	static const struct {
		const char *value;
		int64_t seconds;
	} durs[] = {
		{ "60", 60 },	   { "90s", 90 },     { "5m", 300 },
		{ "2h", 7200 },	   { "7d", 604800 },  { "1w", 604800 },
		{ "30d", 2592000 },
	};
	char text[512];
	struct loaded l;

	(void)state;
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		snprintf(text, sizeof(text), MINIMAL "[outbox]\n"
			 "status_reports = %s\n", bools[i].value);
		load_text(&l, text);
		assert_loaded_clean(&l);
		assert_int_equal(l.cfg->outbox.status_reports, bools[i].on);
		unload(&l);
	}
	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		snprintf(text, sizeof(text), MINIMAL "[outbox]\n"
			 "report_window = %s\n", durs[i].value);
		load_text(&l, text);
		assert_loaded_clean(&l);
		assert_int_equal(l.cfg->outbox.report_window, durs[i].seconds);
		unload(&l);
	}
}

static void test_unknown_section(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, MINIMAL "[deamon]\nstate_dir = /x\n[frobnicate]\n"
			      "[modem]\n[daemon.x]\n");
	expect_error(&l, 6, "[deamon]",
		     "unknown section; did you mean [daemon]?");
	expect_error(&l, 8, "[frobnicate]",
		     "unknown section (known: [daemon] [modem.NAME] "
		     "[outbox] [accounts] [templates.LANG])");
	expect_error(&l, 9, "[modem]", "needs a name: [modem.NAME]");
	expect_error(&l, 10, "[daemon.x]", "takes no name: [daemon]");
	/* keys of a refused section are not reported again */
	expect_failed(&l, 4);
	unload(&l);
}

static void test_unknown_key_and_typo(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, "[daemon]\n"
		      "colour = blue\n"
		      "sate_dir = /x\n"
		      "send_attempts = 3\n" MINIMAL);
	expect_error(&l, 2, "colour", "unknown key in [daemon]");
	expect_error(&l, 3, "sate_dir",
		     "unknown key in [daemon]; did you mean \"state_dir\"?");
	expect_error(&l, 4, "send_attempts",
		     "unknown key in [daemon]; it belongs in [outbox]");
	expect_failed(&l, 3);
	/* the typo did not set state_dir */
	unload(&l);
	load_text(&l, "[modem.a]\ndevice = sim\nbuad = 9600\n");
	expect_error(&l, 3, "buad",
		     "unknown key in [modem.a]; did you mean \"baud\"?");
	unload(&l);
}

static void test_duplicate_key(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, MINIMAL "[outbox]\nsend_attempts = 3\n"
			      "send_attempts = 4\n");
	expect_error(&l, 8, "send_attempts",
		     "duplicate key (first set on line 7)");
	expect_failed(&l, 1);
	unload(&l);
}

static void test_duplicate_and_bad_sections(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, MINIMAL "[modem.m]\ndevice = /dev/ttyS0\n"
			      "[modem.bad name]\n"
			      "[modem.0123456789012345678901234567890123]\n"
			      "[modem.ok-_1]\ndevice = /dev/ttyS1\n"
			      "[accounts]\n[templates.EN]\n");
	expect_error(&l, 6, "[modem.m]",
		     "duplicate section (first on line 1)");
	expect_error(&l, 8, "[modem.bad name]",
		     "bad modem name \"bad name\" "
		     "(1 to 32 of A-Z a-z 0-9 _ -)");
	expect_error(&l, 9, "[modem.0123456789012345678901234567890123]",
		     "bad modem name \"0123456789012345678901234567890123\" "
		     "(1 to 32 of A-Z a-z 0-9 _ -)");
	expect_error(&l, 12, "[accounts]",
		     "duplicate section (first on line 3)");
	expect_error(&l, 13, "[templates.EN]",
		     "bad templates name \"EN\" (two lower-case letters)");
	expect_failed(&l, 5);
	unload(&l);
}

static void test_out_of_range_numbers(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, MINIMAL "[outbox]\n"
			      "send_attempts = 51\n"
			      "validity = 4m\n"
			      "max_age = 31d\n"
			      "[daemon]\n"
			      "socket_mode = 1777\n"
			      "health_interval = 0\n"
			      "[modem.x]\n"
			      "device = sim\n"
			      "health_timeouts = -1\n"
			      "max_per_minute = 12abc\n"
			      "send_timeout = 29\n");
	expect_error(&l, 7, "send_attempts",
		     "out of range 1..50 (got \"51\")");
	expect_error(&l, 8, "validity",
		     "out of range 0 or 5m..63w (got \"4m\")");
	expect_error(&l, 9, "max_age", "out of range 1m..30d (got \"31d\")");
	expect_error(&l, 11, "socket_mode",
		     "out of range 0000..0777 (got \"1777\")");
	expect_error(&l, 12, "health_interval",
		     "out of range 1s..1h (got \"0\")");
	expect_error(&l, 15, "health_timeouts",
		     "out of range 1..20 (got \"-1\")");
	expect_error(&l, 16, "max_per_minute",
		     "not a whole number (got \"12abc\")");
	expect_error(&l, 17, "send_timeout",
		     "out of range 30s..10m (got \"29\")");
	expect_failed(&l, 8);
	unload(&l);
}

static void test_bad_duration_bool_enum(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, MINIMAL "[outbox]\n"
			      "retry_backoff = 5 m\n"
			      "max_age = 1y\n"
			      "report_window = m\n"
			      "status_reports = maybe\n"
			      "[modem.x]\n"
			      "device = sim\n"
			      "driver = nokia\n"
			      "flow_control = hardware\n"
			      "baud = 115201\n"
			      "[daemon]\n"
			      "log_level = verbose\n"
			      "socket_mode = 0x1ff\n");
	expect_error(&l, 7, "retry_backoff",
		     "not a duration (use e.g. 30, 30s, 5m, 2h, 7d, 1w) "
		     "(got \"5 m\")");
	expect_error(&l, 8, "max_age",
		     "not a duration (use e.g. 30, 30s, 5m, 2h, 7d, 1w) "
		     "(got \"1y\")");
	expect_error(&l, 9, "report_window",
		     "not a duration (use e.g. 30, 30s, 5m, 2h, 7d, 1w) "
		     "(got \"m\")");
	expect_error(&l, 10, "status_reports",
		     "must be yes/no, true/false, on/off or 1/0 "
		     "(got \"maybe\")");
	expect_error(&l, 13, "driver",
		     "must be one of auto, generic, simcom, quectel, huawei "
		     "(got \"nokia\")");
	expect_error(&l, 14, "flow_control",
		     "must be one of none, rtscts, xonxoff (got \"hardware\")");
	expect_error(&l, 15, "baud",
		     "must be one of 9600, 19200, 38400, 57600, 115200, "
		     "230400, 460800, 500000, 576000, 921600, 1000000, "
		     "1152000, 1500000, 2000000, 2500000, 3000000, 3500000, "
		     "4000000 (got \"115201\")");
	expect_error(&l, 17, "log_level",
		     "must be one of error, warning, notice, info, debug "
		     "(got \"verbose\")");
	expect_error(&l, 18, "socket_mode",
		     "not an octal mode (e.g. 0660) (got \"0x1ff\")");
	expect_failed(&l, 9);
	unload(&l);
}

static void test_bad_devices(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, MINIMAL "[modem.a]\ndevice = ttyUSB0\n"
			      "[modem.b]\ndevice = usb:1e0:9001\n"
			      "[modem.c]\ndevice = usb:1e0e:90g1\n"
			      "[modem.d]\ndevice = usb:1e0e:9001:\n"
			      "[modem.e]\ndevice = sim:--fail\n"
			      "[modem.f]\ndevice = usb:1e0e-9001\n");
	expect_error(&l, 7, "device",
		     "must be a path (/dev/...), usb:VID:PID[:SERIAL] or sim "
		     "(got \"ttyUSB0\")");
	expect_error(&l, 9, "device",
		     "usb: VID and PID are 4 hex digits each "
		     "(usb:1e0e:9001[:SERIAL]) (got \"usb:1e0:9001\")");
	expect_error(&l, 11, "device",
		     "usb: VID and PID are 4 hex digits each "
		     "(usb:1e0e:9001[:SERIAL]) (got \"usb:1e0e:90g1\")");
	expect_error(&l, 13, "device",
		     "usb: SERIAL is 1 to 64 characters, no spaces or ':' "
		     "(got \"usb:1e0e:9001:\")");
	expect_error(&l, 15, "device",
		     "simulator arguments go in sim_args "
		     "(got \"sim:--fail\")");
	expect_error(&l, 17, "device",
		     "usb: VID and PID are 4 hex digits each "
		     "(usb:1e0e:9001[:SERIAL]) (got \"usb:1e0e-9001\")");
	expect_failed(&l, 6);
	unload(&l);
}

static void test_missing_required(void **state)
{
	struct loaded l;

	(void)state;
	/* device missing: blamed on the section's header line */
	load_text(&l, "[modem.m]\ndevice = sim\n"
		      "[modem.nodev]\nbaud = 9600\n"
		      "; comment\n"
		      "[accounts]\norganization = O\n");
	expect_error(&l, 3, "device", "required in [modem.nodev]");
	expect_error(&l, 6, "claim_url", "required in [accounts]");
	expect_failed(&l, 2);
	unload(&l);
	/* no [accounts] and no modem at all: blamed on the last line */
	load_text(&l, "[daemon]\nlog_level = debug\n\n");
	expect_error(&l, 3, "organization",
		     "required (there is no [accounts] section)");
	expect_error(&l, 3, "claim_url",
		     "required (there is no [accounts] section)");
	expect_error(&l, 3, "[modem.NAME]",
		     "at least one modem section is required");
	expect_failed(&l, 3);
	unload(&l);
}

static void test_bad_values_of_strings(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, "[modem.m]\ndevice = sim\n"
		      "smsc = 609090909\n"
		      "pin = 123\n"
		      "[accounts]\n"
		      "organization =\n"
		      "claim_url = https://p/claim/{token}/{token}\n"
		      "language = EN\n"
		      "[daemon]\n"
		      "admin_group = -wheel\n"
		      "socket = /tmp/0123456789012345678901234567890123456789"
		      "0123456789012345678901234567890123456789012345678901"
		      "2345678.sock\n");
	expect_error(&l, 3, "smsc",
		     "must be E.164 (+ and 8 to 15 digits), or empty "
		     "(got \"609090909\")");
	expect_error(&l, 4, "pin", "must be 4 to 8 digits, or empty");
	expect_error(&l, 6, "organization", "must not be empty");
	expect_error(&l, 7, "claim_url",
		     "must contain {token} exactly once, and no other braces "
		     "(got \"https://p/claim/{token}/{token}\")");
	expect_error(&l, 8, "language",
		     "must be two lower-case letters (en, es, ...) "
		     "(got \"EN\")");
	expect_error(&l, 10, "admin_group",
		     "not a group name (letters, digits, _ . -; empty for "
		     "none) (got \"-wheel\")");
	expect_error(&l, 11, "socket",
		     "longer than 107 bytes (got \"/tmp/01234567890123456789"
		     "012345678901234...\")");
	expect_failed(&l, 7);
	unload(&l);
	/* Latin-1, not UTF-8; a tab inside: refused, and not echoed */
	load_text(&l, MINIMAL "[templates.en]\n"
			      "invite = {org}: Se\xf1or {link}\n"
			      "recovery = {org}:\t{code}\n"
			      "unclaimed = {org}: \xed\xa0\x80 {link}\n");
	expect_error(&l, 7, "invite",
		     "must be UTF-8 text without control characters");
	expect_error(&l, 8, "recovery",
		     "must be UTF-8 text without control characters");
	/* a UTF-16 surrogate encoded as UTF-8 */
	expect_error(&l, 9, "unclaimed",
		     "must be UTF-8 text without control characters");
	expect_failed(&l, 3);
	unload(&l);
	/* real UTF-8, up to 4 bytes a character, is fine */
	load_text(&l, MINIMAL "[templates.es]\n"
			      "invite = {org}: ¡Hola, {name}! Ñ € \xf0\x9f\x8f"
			      "\xad {link}\n");
	assert_loaded_clean(&l);
	unload(&l);
	/* control characters in a key name do not reach the message */
	load_text(&l, MINIMAL "[daemon]\nlog\x1b[2Jlevel = info\n");
	expect_error(&l, 7, "log?[2Jlevel", "unknown key in [daemon]");
	unload(&l);
}

static void test_claim_url_without_token(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, "[modem.m]\ndevice = sim\n[accounts]\n"
		      "organization = O\n"
		      "claim_url = https://portal.example/claim/\n");
	expect_error(&l, 5, "claim_url",
		     "must contain {token} exactly once, and no other braces "
		     "(got \"https://portal.example/claim/\")");
	expect_failed(&l, 1);
	unload(&l);
	load_text(&l, "[modem.m]\ndevice = sim\n[accounts]\n"
		      "organization = O\n"
		      "claim_url = ftp://portal/{token}\n");
	expect_error(&l, 5, "claim_url",
		     "must start with https:// or http:// "
		     "(got \"ftp://portal/{token}\")");
	unload(&l);
}

static void test_bad_templates(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, MINIMAL "[templates.en]\n"
			      "invite = {org}: hi {nam}, {link}\n"
			      "recovery = {org}: code {code\n"
			      "unclaimed = {org}: reset, no link\n"
			      "[templates.es]\n"
			      "invite = {org}: {code} {link}\n"
			      "recovery = {org}: {link} {code}\n"
			      "unclaimed = {org} } {link}\n"
			      "[templates.fr]\n"
			      "recovery = {org}: pas de code\n");
	expect_error(&l, 7, "invite",
		     "unknown placeholder {nam} (use {org} {name} {link} "
		     "{code}) (got \"{org}: hi {nam}, {link}\")");
	expect_error(&l, 8, "recovery",
		     "unbalanced '{' (got \"{org}: code {code\")");
	expect_error(&l, 9, "unclaimed",
		     "must contain {link} (got \"{org}: reset, no link\")");
	expect_error(&l, 11, "invite",
		     "{code} makes no sense in invite "
		     "(got \"{org}: {code} {link}\")");
	expect_error(&l, 12, "recovery",
		     "{link} makes no sense in recovery "
		     "(got \"{org}: {link} {code}\")");
	expect_error(&l, 13, "unclaimed",
		     "unbalanced '}' (got \"{org} } {link}\")");
	expect_error(&l, 15, "recovery",
		     "must contain {code} (got \"{org}: pas de code\")");
	expect_failed(&l, 7);
	unload(&l);
}

static void test_cross_key_errors(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, "[modem.a]\ndevice = /dev/ttyUSB2\nsim_args = -v\n"
		      "[modem.b]\ndevice = /dev/ttyUSB2\n"
		      "[modem.s1]\ndevice = sim\n[modem.s2]\ndevice = sim\n"
		      "[outbox]\nretry_backoff = 1m\nretry_backoff_max = 30s\n"
		      "[accounts]\norganization = O\n"
		      "claim_url = https://p/{token}\n"
		      "language = fr\n"
		      "invites_per_day = 10\ninvites_per_day_verified = 9\n");
	expect_error(&l, 1, "sim_args", "only for device = sim");
	expect_error(&l, 4, "device", "same device as [modem.a] (line 1)");
	expect_error(&l, 10, "retry_backoff_max",
		     "must be at least retry_backoff (1m)");
	expect_error(&l, 13, "invites_per_day_verified",
		     "must be at least invites_per_day (10)");
	expect_error(&l, 13, "language",
		     "no templates for \"fr\": add a [templates.fr] section "
		     "(built in: en, es)");
	expect_failed(&l, 5);
	unload(&l);
}

static void test_syntax_errors(void **state)
{
	struct loaded l;
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text),
		 "early = 1\n"
		 MINIMAL
		 "this line has no equals sign\n"
		 "[daemon\n"
		 "[daemon] trailing\n"
		 "= value\n"
		 "[templates.en]\n"
		 "invite = {org}: %0180d {link}\n",
		 0);
	load_text(&l, text);
	expect_error(&l, 1, "early", "key outside of any section");
	expect_error(&l, 7, "syntax",
		     "expected \"key = value\", \"[section]\" or a comment");
	expect_error(&l, 8, "syntax", "missing ']' in section header");
	expect_error(&l, 9, "syntax", "text after ']'");
	expect_error(&l, 10, "syntax", "key name missing before '='");
	expect_error(&l, 12, "invite", "line longer than 198 characters");
	expect_failed(&l, 6);
	unload(&l);
	/* a NUL byte */
	load_bytes(&l, MINIMAL "[daemon]\nlog_level = in\0fo\n",
		   sizeof(MINIMAL "[daemon]\nlog_level = in\0fo\n") - 1);
	expect_error(&l, 7, "syntax", "NUL byte in line");
	expect_failed(&l, 1);
	unload(&l);
}

static void test_missing_file(void **state)
{
	struct loaded l;
	char path[512];
	char want[PATH_MAX + 64];

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	load_path(&l, path);
	assert_int_equal(l.rc, -ENOENT);
	assert_null(l.cfg);
	assert_int_equal(l.errs.count, 1);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path,
		 strerror(ENOENT));
	assert_string_equal(l.errs.msgs[0], want);
	unload(&l);
	/* a directory opens but cannot be read */
	load_path(&l, tmpdir);
	assert_int_equal(l.rc, -EISDIR);
	assert_null(l.cfg);
	unload(&l);
}

static void test_all_errors_collected(void **state)
{
	struct loaded l;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	load_text(&l, "[modem.a]\n"
		      "device = nowhere\n"
		      "baud = 1\n"
		      "pin = x\n"
		      "[outbox]\n"
		      "send_attempts = many\n"
		      "validity = 64w\n"
		      "[accounts]\n"
		      "organization = O\n"
		      "claim_url = https://x/\n"
		      "hash_threads = 17\n"
		      "password_hash = extreme\n");
	expect_failed(&l, 8);
	/* in file order, one per bad line */
	f = open_memstream(&out, &len);
	assert_non_null(f);
	config_errors_print(&l.errs, f);
	fclose(f);
	assert_non_null(strstr(out, ":2: device:"));
	assert_non_null(strstr(out, ":3: baud:"));
	assert_non_null(strstr(out, ":4: pin:"));
	assert_non_null(strstr(out, ":6: send_attempts:"));
	assert_non_null(strstr(out, ":7: validity:"));
	assert_non_null(strstr(out, ":10: claim_url:"));
	assert_non_null(strstr(out, ":11: hash_threads:"));
	assert_non_null(strstr(out, ":12: password_hash:"));
	assert_true(strstr(out, ":2: device:") < strstr(out, ":12: password"));
	free(out);
	unload(&l);
}

static void test_error_cap(void **state)
{
	struct loaded l;
	char *text = malloc(200 * 16 + 64);
	size_t used = 0;

	(void)state;
	assert_non_null(text);
	used += (size_t)sprintf(text, "%s", MINIMAL "[daemon]\n");
	for (int i = 0; i < 150; i++)
		used += (size_t)sprintf(text + used, "bogus%d = 1\n", i);
	load_text(&l, text);
	assert_int_equal(l.rc, -EINVAL);
	assert_int_equal(l.errs.count, CONFIG_ERRORS_MAX);
	assert_int_equal(l.errs.dropped, 150 - CONFIG_ERRORS_MAX);
	unload(&l);
	free(text);
}

static char *print_to_string(const struct config *cfg)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	config_print(cfg, f);
	fclose(f);
	return out;
}

static void test_pin_masked(void **state)
{
	struct loaded l;
	char *out;

	(void)state;
	load_text(&l, "[modem.a]\ndevice = sim\npin = 97531864\n"
		      "[modem.b]\ndevice = /dev/ttyACM0\npin =\n"
		      "[accounts]\norganization = O\n"
		      "claim_url = https://x/{token}\n");
	assert_loaded_clean(&l);
	assert_string_equal(l.cfg->modems[0].pin, "97531864");
	out = print_to_string(l.cfg);
	assert_null(strstr(out, "97531864"));
	assert_null(strstr(out, "7531"));
	assert_non_null(strstr(out, "[modem.a]\ndevice = sim\nbaud = 115200\n"
				    "driver = auto\npin = ****\n"));
	assert_non_null(strstr(out, "[modem.b]\ndevice = /dev/ttyACM0\n"
				    "baud = 115200\ndriver = auto\npin =\n"));
	free(out);
	unload(&l);
	/* a refused PIN is not echoed either */
	load_text(&l, "[modem.a]\ndevice = sim\npin = 975318642\n");
	expect_error(&l, 3, "pin", "must be 4 to 8 digits, or empty");
	for (size_t i = 0; i < l.errs.count; i++)
		assert_null(strstr(l.errs.msgs[i], "97531"));
	unload(&l);
}

/* What config_print() writes loads again into the same config. */
static void test_print_round_trip(void **state)
{
	struct loaded l, again;
	char *first, *second;
	char path[PATH_MAX];

	(void)state;
	load_text(&l, "[daemon]\nsocket_mode = 0640\nlog_level = err\n"
		      "[modem.x]\ndevice = usb:1e0e:9001\nbaud = 9600\n"
		      "storage = sm\nsim_args =\n"
		      "[outbox]\nvalidity = 0\nreport_window = 90m\n"
		      "[accounts]\norganization = Org ; with a comment\n"
		      "claim_url = https://x/{token}\nlanguage = pt\n"
		      "[templates.pt]\n"
		      "invite = {org}: {name}, convite: {link}\n");
	assert_loaded_clean(&l);
	first = print_to_string(l.cfg);
	assert_non_null(strstr(first, "\nsocket_mode = 0640\n"));
	assert_non_null(strstr(first, "\nlog_level = error\n"));
	assert_non_null(strstr(first, "\nstorage = SM\n"));
	assert_non_null(strstr(first, "\nvalidity = 0\n"));
	assert_non_null(strstr(first, "\nreport_window = 90m\n"));
	assert_non_null(strstr(first, "\nmax_age = 1d\n"));
	assert_non_null(strstr(first, "\norganization = Org\n"));
	assert_non_null(strstr(first, "[templates.pt]\ninvite = {org}: {name},"
				      " convite: {link}\nrecovery = {org}: "
				      "your recovery code is {code}."));
	snprintf(path, sizeof(path), "%s/t%d.conf", tmpdir, ++file_seq);
	write_file(path, first, strlen(first));
	load_path(&again, path);
	assert_loaded_clean(&again);
	second = print_to_string(again.cfg);
	/* equal after the first line, which names the file */
	assert_string_equal(strchr(first, '\n'), strchr(second, '\n'));
	free(first);
	free(second);
	unload(&again);
	unload(&l);
}

static void test_templates_fallback(void **state)
{
	struct loaded l;
	const struct config *c;

	(void)state;
	load_text(&l, MINIMAL "language = es\n"
			      "[templates.es]\n"
			      "invite = {org}: hola {name}: {link}\n"
			      "[templates.fr]\n"
			      "invite = {org}: bonjour {name}: {link}\n");
	assert_loaded_clean(&l);
	c = l.cfg;
	assert_int_equal(c->n_templates, 3);
	assert_int_equal(c->templates[1].line, 7);
	assert_string_equal(config_template(c, "es", CONFIG_TMPL_INVITE),
			    "{org}: hola {name}: {link}");
	/* es keys not in the section come from the built-in es set */
	assert_non_null(strstr(config_template(c, "es", CONFIG_TMPL_RECOVERY),
			       "código de recuperación es {code}"));
	/* fr has no built-in set: English */
	assert_string_equal(config_template(c, "fr", CONFIG_TMPL_INVITE),
			    "{org}: bonjour {name}: {link}");
	assert_string_equal(config_template(c, "fr", CONFIG_TMPL_UNCLAIMED),
			    "{org}: your password was reset. Choose a new "
			    "one: {link}");
	/* NULL or unknown language: the configured one (es) */
	assert_string_equal(config_template(c, NULL, CONFIG_TMPL_INVITE),
			    "{org}: hola {name}: {link}");
	assert_string_equal(config_template(c, "de", CONFIG_TMPL_INVITE),
			    "{org}: hola {name}: {link}");
	assert_string_equal(config_template(c, "en", CONFIG_TMPL_INVITE),
			    "{org}: {name}, you are invited. Claim your "
			    "account and set a password: {link}");
	assert_string_equal(config_template_kind_name(CONFIG_TMPL_UNCLAIMED),
			    "unclaimed");
	unload(&l);
}

static void test_builtin_templates_render(void **state)
{
	static const char *langs[] = { "en", "es" };
	const struct config_template_vars v = {
		.org = "ACME", .name = "Ana",
		.link = "https://p/claim/TOKEN", .code = "ABCD-EFGH-JK",
	};
	struct loaded l;
	char out[320];

	(void)state;
	load_text(&l, MINIMAL);
	assert_loaded_clean(&l);
	for (size_t i = 0; i < 2; i++) {
		const struct config *c = l.cfg;
		const char *inv = config_template(c, langs[i],
						  CONFIG_TMPL_INVITE);
		const char *rec = config_template(c, langs[i],
						  CONFIG_TMPL_RECOVERY);
		const char *unc = config_template(c, langs[i],
						  CONFIG_TMPL_UNCLAIMED);
		size_t n = sizeof(out);

		assert_true(config_template_render(inv, &v, out, n) > 0);
		assert_non_null(strstr(out, "ACME: Ana,"));
		assert_non_null(strstr(out, "https://p/claim/TOKEN"));
		assert_null(strchr(out, '{'));
		assert_true(config_template_render(rec, &v, out, n) > 0);
		assert_non_null(strstr(out, "ABCD-EFGH-JK"));
		assert_null(strstr(out, "https://"));
		assert_true(config_template_render(unc, &v, out, n) > 0);
		assert_non_null(strstr(out, "https://p/claim/TOKEN"));
	}
	config_template_render(config_template(l.cfg, "es",
					       CONFIG_TMPL_INVITE),
			       &v, out, sizeof(out));
	assert_string_equal(out, "ACME: Ana, te hemos invitado. Activa "
				 "tu cuenta y elige una contraseña: "
				 "https://p/claim/TOKEN");
	unload(&l);
}

static void test_render(void **state)
{
	const struct config_template_vars v = {
		.org = "O", .name = "Name", .link = "L", .code = "C0DE",
	};
	const char *t = "{org}|{name}|{link}|{code}|{org}";
	char out[64];

	(void)state;
	assert_int_equal(config_template_render(t, &v, out, sizeof(out)), 15);
	assert_string_equal(out, "O|Name|L|C0DE|O");
	assert_int_equal(strlen("O|Name|L|C0DE|O"), 15);
	/* exactly fits (15 + NUL), one byte short, nothing */
	assert_int_equal(config_template_render(t, &v, out, 16), 15);
	assert_string_equal(out, "O|Name|L|C0DE|O");
	assert_int_equal(config_template_render(t, &v, out, 15), -ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(config_template_render(t, &v, out, 0), -ENOSPC);
	assert_int_equal(config_template_render("", &v, out, 1), 0);
	/* NULL vars and NULL members render empty */
	assert_int_equal(config_template_render("a{name}b", NULL, out, 8), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(config_template_render("{x}", &v, out, 8), -EINVAL);
	assert_int_equal(config_template_render("a{org", &v, out, 8), -EINVAL);
	assert_int_equal(config_template_render("a}", &v, out, 8), -EINVAL);
}

/* No global state: two configs loaded one after the other stay apart,
 * and a failed load (a reload with a broken file) touches nothing. */
static void test_reload_is_independent(void **state)
{
	struct loaded a, b, bad;
	struct config *keep;

	(void)state;
	load_text(&a, MINIMAL "[daemon]\nstate_dir = /a\n");
	load_text(&b, MINIMAL "[daemon]\nstate_dir = /b\n");
	assert_loaded_clean(&a);
	assert_loaded_clean(&b);
	keep = a.cfg;
	load_text(&bad, MINIMAL "[daemon]\nstate_dir =\n");
	assert_int_equal(bad.rc, -EINVAL);
	assert_null(bad.cfg);
	assert_ptr_equal(a.cfg, keep);
	assert_string_equal(a.cfg->daemon.state_dir, "/a");
	assert_string_equal(b.cfg->daemon.state_dir, "/b");
	unload(&a);
	unload(&b);
	unload(&bad);
	config_free(NULL);
	config_errors_free(NULL);
}

static void test_bom_crlf_and_comments(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, "\xef\xbb\xbf; a comment\r\n"
		      "# another\r\n"
		      "[modem.m]\r\n"
		      "device = sim ; the simulator\r\n"
		      "baud = 9600\r\n"
		      "[accounts]\r\n"
		      "organization = A;B\r\n"
		      "claim_url = https://x/{token}\r\n");
	assert_loaded_clean(&l);
	assert_int_equal(l.cfg->modems[0].baud, 9600);
	assert_string_equal(l.cfg->modems[0].device, "sim");
	/* ';' without a space before it is text */
	assert_string_equal(l.cfg->accounts.organization, "A;B");
	unload(&l);
}

static const char *src_dir(void)
{
	const char *s = getenv("SMSGW_SRC");

	return s && s[0] ? s : ".";
}

static void test_shipped_configs_load(void **state)
{
	struct loaded l;
	char path[PATH_MAX];

	(void)state;
	snprintf(path, sizeof(path), "%s/config/smsgwd.conf", src_dir());
	load_path(&l, path);
	assert_loaded_clean(&l);
	assert_string_equal(l.cfg->daemon.state_dir, "/var/lib/smsgw");
	assert_string_equal(l.cfg->daemon.socket, "/run/smsgw/control.sock");
	assert_int_equal(l.cfg->n_modems, 1);
	assert_string_equal(l.cfg->modems[0].name, "main");
	assert_string_equal(l.cfg->modems[0].device, "/dev/ttyUSB2");
	unload(&l);

	snprintf(path, sizeof(path), "%s/config/demo.conf", src_dir());
	load_path(&l, path);
	assert_loaded_clean(&l);
	assert_string_equal(l.cfg->daemon.state_dir, "./var");
	assert_string_equal(l.cfg->daemon.socket, "./var/control.sock");
	assert_string_equal(l.cfg->daemon.admin_group, "");
	assert_string_equal(l.cfg->daemon.portal_group, "");
	assert_int_equal(l.cfg->n_modems, 1);
	assert_string_equal(l.cfg->modems[0].name, "demo");
	assert_int_equal(l.cfg->modems[0].device_kind, CONFIG_DEVICE_SIM);
	assert_string_equal(l.cfg->accounts.organization, "Demo Plant");
	assert_string_equal(l.cfg->accounts.claim_url,
			    "http://localhost:8080/claim/{token}");
	unload(&l);
}

/* The example in docs/DESIGN.md ("Config") is a valid file: the document
 * and the loader agree on every key. */
static void test_design_example_loads(void **state)
{
	char path[PATH_MAX], line[512];
	char *text = NULL;
	size_t len = 0;
	FILE *in, *out;
	bool in_config = false, in_block = false;
	struct loaded l;

	(void)state;
	snprintf(path, sizeof(path), "%s/docs/DESIGN.md", src_dir());
	in = fopen(path, "r");
	if (!in)
		skip();
	out = open_memstream(&text, &len);
	assert_non_null(out);
	while (fgets(line, sizeof(line), in)) {
		if (strncmp(line, "## ", 3) == 0)
			in_config = strncmp(line, "## Config", 9) == 0;
		else if (in_config && strncmp(line, "```", 3) == 0)
			in_block = !in_block;
		else if (in_config && in_block)
			fputs(line, out);
	}
	fclose(in);
	fclose(out);
	assert_non_null(strstr(text, "[modem.main]"));
	load_text(&l, text);
	assert_loaded_clean(&l);
	assert_string_equal(l.cfg->accounts.organization, "ACME Plant 3");
	assert_int_equal(l.cfg->outbox.send_attempts, 5);
	free(text);
	unload(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_gets_defaults),
		cmocka_unit_test(test_every_key_set),
		cmocka_unit_test(test_booleans_and_durations),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_key_and_typo),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_duplicate_and_bad_sections),
		cmocka_unit_test(test_out_of_range_numbers),
		cmocka_unit_test(test_bad_duration_bool_enum),
		cmocka_unit_test(test_bad_devices),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_bad_values_of_strings),
		cmocka_unit_test(test_claim_url_without_token),
		cmocka_unit_test(test_bad_templates),
		cmocka_unit_test(test_cross_key_errors),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_all_errors_collected),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_pin_masked),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_templates_fallback),
		cmocka_unit_test(test_builtin_templates_render),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_reload_is_independent),
		cmocka_unit_test(test_bom_crlf_and_comments),
		cmocka_unit_test(test_shipped_configs_load),
		cmocka_unit_test(test_design_example_loads),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
