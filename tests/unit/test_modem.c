/* test_modem — the driver state machine against the simulated modem.
 *
 * Each test spawns $SMSGW_BUILD/smsgw-modemsim (default build/check) on a
 * pty with a --link and a --control socket, runs a private libev loop with
 * a deadline, and watches the driver's events. Faults come from the
 * simulator's options and control ops; the simulator's own counters
 * ("stats") and its --verbose trace are the independent witnesses.
 * SMSGW_TEST_DEBUG=1 logs the AT traffic. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "at/pdu.h"
#include "daemon/log.h"
#include "drivers/modem.h"

#define MAX_EVENTS 64

/* --- the simulator process ------------------------------------------------ */

struct sim {
	pid_t pid;
	char dir[64];
	char link[96], ctl[96], out[96], err[96];
};

/* The simulator of the running test, so that a failed test (which leaves
 * through a longjmp) does not leave it running: see teardown(). */
static struct sim live_sim;

static const char *build_dir(void)
{
	const char *b = getenv("SMSGW_BUILD");

	return b && *b ? b : "build/check";
}

static void sleep_ms(long msec)
{
	struct timespec ts = { msec / 1000, (msec % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits (bounded) for a path to appear. */
static bool wait_path(const char *path, int timeout_ms)
{
	struct stat st;

	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (lstat(path, &st) == 0)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* Starts the simulator with extra options (NULL-terminated). */
static void sim_start(struct sim *s, const char *const *extra)
{
	const char *argv[40];
	char bin[256];
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/smsgw-tmodem-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->link, sizeof(s->link), "%s/modem", s->dir);
	snprintf(s->ctl, sizeof(s->ctl), "%s/ctl", s->dir);
	snprintf(s->out, sizeof(s->out), "%s/out", s->dir);
	snprintf(s->err, sizeof(s->err), "%s/err", s->dir);
	snprintf(bin, sizeof(bin), "%s/smsgw-modemsim", build_dir());
	argv[n++] = bin;
	argv[n++] = "--link";
	argv[n++] = s->link;
	argv[n++] = "--control";
	argv[n++] = s->ctl;
	argv[n++] = "--sms-log";
	argv[n++] = s->out;
	argv[n++] = "--verbose";
	for (size_t i = 0; extra && extra[i] && n < 39; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		int out = open(s->out, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int err = open(s->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(out, 1);
		dup2(err, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	live_sim = *s;
	if (!wait_path(s->link, 5000) || !wait_path(s->ctl, 5000)) {
		char buf[1024] = "";
		int fd = open(s->err, O_RDONLY);
		ssize_t got = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;

		int status = 0;
		pid_t w = waitpid(s->pid, &status, WNOHANG);

		buf[got > 0 ? got : 0] = '\0';
		fail_msg("%s did not come up (%s %d): %s", bin,
			 w == s->pid ? "exit status" : "still running",
			 WEXITSTATUS(status), buf);
	}
}

static void sim_stop(struct sim *s)
{
	pid_t pid = s->pid;
	int status;

	s->pid = live_sim.pid = 0;
	if (pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 300 && pid; i++) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				pid = 0;
			else
				sleep_ms(10);
		}
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}
	unlink(s->out);
	unlink(s->err);
	unlink(s->link);
	unlink(s->ctl);
	rmdir(s->dir);
}

/* One control request; the response line goes to resp. */
static void sim_ctl(struct sim *s, const char *req, char *resp, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->ctl);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	assert_int_equal(write(fd, "\n", 1), 1);
	while (got + 1 < len && !memchr(resp, '\n', got)) {
		ssize_t n;

		assert_int_equal(poll(&p, 1, 5000), 1);
		n = read(fd, resp + got, len - 1 - got);
		assert_true(n > 0);
		got += (size_t)n;
		resp[got] = '\0';
	}
	close(fd);
	assert_non_null(strstr(resp, "\"ok\":true"));
}

/* A counter from the simulator's stats. */
static long sim_stat(struct sim *s, const char *name)
{
	char resp[8192], key[64];
	const char *p;

	sim_ctl(s, "{\"op\": \"stats\"}", resp, sizeof(resp));
	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(resp, key);
	assert_non_null(p);
	return strtol(p + strlen(key), NULL, 10);
}

/* How often a string occurs in the simulator's stderr (its AT trace). */
static int sim_trace_count(struct sim *s, const char *needle)
{
	char buf[65536];
	int fd = open(s->err, O_RDONLY), count = 0;
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	for (const char *p = buf; (p = strstr(p, needle)); p++)
		count++;
	return count;
}

/* --- the driver under test ------------------------------------------------ */

struct stored {
	char mem[8];
	unsigned index;
};

struct fx {
	struct ev_loop *loop;
	struct sim sim;
	struct modem *m;
	enum modem_state states[MAX_EVENTS];
	size_t n_states;
	struct stored sms[MAX_EVENTS];
	size_t n_sms;
	struct stored reports[MAX_EVENTS];
	size_t n_reports;
	char direct_report[PDU_HEX_MAX];
	size_t n_direct_reports;
	size_t n_full;
	/* last operation results */
	bool send_done;
	struct modem_send_result send;
	char send_error[128];
	bool op_done;
	int op_rc;
	char read_hex[PDU_HEX_MAX];
	int read_stat;
	size_t list_n;
	unsigned list_index[MAX_EVENTS];
	/* hooks */
	void (*on_state)(struct fx *f, enum modem_state to);
};

static void ev_state(void *user, struct modem *m, enum modem_state from,
		     enum modem_state to, const char *reason)
{
	struct fx *f = user;

	(void)m;
	(void)from;
	assert_non_null(reason);
	if (f->n_states < MAX_EVENTS)
		f->states[f->n_states++] = to;
	if (f->on_state)
		f->on_state(f, to);
}

static void ev_stored(void *user, struct modem *m, const char *mem,
		      unsigned index)
{
	struct fx *f = user;

	(void)m;
	if (f->n_sms < MAX_EVENTS) {
		snprintf(f->sms[f->n_sms].mem, sizeof(f->sms[0].mem), "%s",
			 mem);
		f->sms[f->n_sms++].index = index;
	}
}

static void ev_report_stored(void *user, struct modem *m, const char *mem,
			     unsigned index)
{
	struct fx *f = user;

	(void)m;
	if (f->n_reports < MAX_EVENTS) {
		snprintf(f->reports[f->n_reports].mem,
			 sizeof(f->reports[0].mem), "%s", mem);
		f->reports[f->n_reports++].index = index;
	}
}

static void ev_report_direct(void *user, struct modem *m, const char *hex)
{
	struct fx *f = user;

	(void)m;
	snprintf(f->direct_report, sizeof(f->direct_report), "%s", hex);
	f->n_direct_reports++;
}

static void ev_full(void *user, struct modem *m)
{
	struct fx *f = user;

	(void)m;
	f->n_full++;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Runs the loop until pred(f) or `timeout` seconds. */
static bool run_until(struct fx *f, bool (*pred)(struct fx *f), double timeout)
{
	double end = now() + timeout;
	ev_timer t;

	ev_timer_init(&t, deadline_cb, timeout, 0.);
	ev_timer_start(f->loop, &t);
	while (!pred(f) && now() < end)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &t);
	return pred(f);
}

static enum modem_state want_state;
static bool is_want_state(struct fx *f)
{
	return modem_get_state(f->m) == want_state;
}

static void wait_state(struct fx *f, enum modem_state st, double timeout)
{
	want_state = st;
	if (!run_until(f, is_want_state, timeout))
		fail_msg("state %s, wanted %s after %.1f s",
			 modem_state_name(modem_get_state(f->m)),
			 modem_state_name(st), timeout);
}

/* Runs the loop for `secs` whatever happens. */
static bool never(struct fx *f)
{
	(void)f;
	return false;
}

static void run_for(struct fx *f, double secs)
{
	run_until(f, never, secs);
}

static bool saw_state(const struct fx *f, enum modem_state st)
{
	for (size_t i = 0; i < f->n_states; i++)
		if (f->states[i] == st)
			return true;
	return false;
}

static const struct modem_config base_cfg = {
	.name = "t",
	.command_timeout = 0.5,
	.send_timeout = 5,
	.health_interval = 0.3,
	.health_timeouts = 2,
	.network_poll = 0.3,
	.reopen_min = 0.1,
	.reopen_max = 0.5,
};

/* Starts the simulator with its options and a driver with cfg (NULL:
 * base_cfg) on its link. */
static void fx_start(struct fx *f, const char *const *sim_args,
		     const struct modem_config *cfg)
{
	struct modem_config c = cfg ? *cfg : base_cfg;
	struct modem_events ev = {
		.user = f,
		.state_changed = ev_state,
		.sms_stored = ev_stored,
		.report_stored = ev_report_stored,
		.report_direct = ev_report_direct,
		.storage_full = ev_full,
	};
	char err[256];

	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	sim_start(&f->sim, sim_args);
	c.device = f->sim.link;
	f->m = modem_new(f->loop, &c, &ev);
	assert_non_null(f->m);
	assert_int_equal(modem_start(f->m, err, sizeof(err)), 0);
}

static void fx_stop(struct fx *f)
{
	modem_free(f->m);
	sim_stop(&f->sim);
	ev_loop_destroy(f->loop);
}

static void send_cb(void *user, struct modem *m,
		    const struct modem_send_result *r)
{
	struct fx *f = user;

	(void)m;
	f->send_done = true;
	f->send = *r;
	snprintf(f->send_error, sizeof(f->send_error), "%s", r->error);
	f->send.error = f->send_error;
}

static bool is_send_done(struct fx *f)
{
	return f->send_done;
}

static bool is_op_done(struct fx *f)
{
	return f->op_done;
}

/* Encodes text to `to` and sends every part in turn; returns the number
 * of parts, each checked for an ok result with a fresh mr. */
static int send_text(struct fx *f, const char *text, bool srr, int *mrs)
{
	struct pdu_part parts[4];
	struct pdu_submit_opts o = { .to = "+34600111222", .srr = srr,
				     .msg_class = -1, .ref = 7 };
	char err[PDU_ERR_MAX];
	int n = pdu_encode_submit(text, &o, parts, 4, err, sizeof(err));

	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		f->send_done = false;
		assert_int_equal(modem_send_pdu(f->m, parts[i].hex,
						parts[i].tpdu_len, send_cb, f),
				 0);
		assert_true(modem_busy(f->m));
		assert_int_equal(modem_send_pdu(f->m, parts[i].hex,
						parts[i].tpdu_len, send_cb, f),
				 -EBUSY);
		assert_false(f->send_done); /* never before it returns */
		assert_true(run_until(f, is_send_done, 5));
		if (!f->send.ok)
			fail_msg("send failed: %s", f->send.error);
		assert_in_range(f->send.mr, 0, 255);
		mrs[i] = f->send.mr;
		assert_false(modem_busy(f->m));
	}
	return n;
}

/* --- tests ---------------------------------------------------------------- */

static void test_ready_generic(void **state)
{
	struct fx f = { 0 };
	const struct modem_info *i;
	const char *const args[] = { "--boot-urcs", NULL };

	(void)state;
	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_READY, 10);
	i = modem_get_info(f.m);
	assert_string_equal(i->driver, "generic");
	assert_string_equal(i->manufacturer, "smsgw");
	assert_string_equal(i->model, "modemsim");
	assert_string_equal(i->revision, "1.0.0");
	assert_string_equal(i->imei, "490154203237518");
	assert_string_equal(i->imsi, "001010123456789");
	assert_true(i->reg == MODEM_REG_HOME || i->reg == MODEM_REG_ROAMING);
	assert_true(modem_is_ready(f.m));
	assert_true(saw_state(&f, MODEM_INITIALIZING));
	/* The signal arrives with the first AT+CSQ after ready. */
	run_for(&f, 0.5);
	assert_in_range(i->signal, 0, 31);
	assert_true(i->operator_name[0] != '\0');
	fx_stop(&f);
}

static void test_pin_accepted(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--pin", "4321", "--boot-urcs", NULL };
	struct modem_config c = base_cfg;

	(void)state;
	c.pin = "4321";
	fx_start(&f, args, &c);
	wait_state(&f, MODEM_READY, 10);
	assert_int_equal(sim_trace_count(&f.sim, "+CPIN=<redacted>"), 1);
	fx_stop(&f);
}

static void test_pin_rejected_once(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--pin", "4321", NULL };
	struct modem_config c = base_cfg;

	(void)state;
	c.pin = "1111";
	fx_start(&f, args, &c);
	wait_state(&f, MODEM_PIN_REJECTED, 10);
	/* Several health periods later it has still not tried again. */
	run_for(&f, 1.0);
	assert_int_equal(modem_get_state(f.m), MODEM_PIN_REJECTED);
	assert_int_equal(sim_trace_count(&f.sim, "+CPIN=<redacted>"), 1);
	assert_int_equal(modem_send_pdu(f.m, "0001000B914306111122F20000"
					"0568656C6C6F", 18, send_cb, &f),
			 -EAGAIN);
	fx_stop(&f);
}

static void test_pin_missing(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--pin", "4321", NULL };

	(void)state;
	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_WAITING_PIN, 10);
	run_for(&f, 0.5);
	assert_int_equal(modem_get_state(f.m), MODEM_WAITING_PIN);
	assert_int_equal(sim_trace_count(&f.sim, "+CPIN=<redacted>"), 0);
	fx_stop(&f);
}

static void test_no_network_then_registered(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--no-network", "1.5", NULL };

	(void)state;
	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_WAITING_NETWORK, 10);
	assert_false(modem_is_ready(f.m));
	wait_state(&f, MODEM_READY, 10);
	assert_int_equal(modem_get_info(f.m)->reg, MODEM_REG_HOME);
	fx_stop(&f);
}

static void test_network_lost_and_back(void **state)
{
	struct fx f = { 0 };
	char resp[256];

	(void)state;
	fx_start(&f, NULL, NULL);
	wait_state(&f, MODEM_READY, 10);
	sim_ctl(&f.sim, "{\"op\": \"network\", \"registered\": false}", resp,
		sizeof(resp));
	wait_state(&f, MODEM_WAITING_NETWORK, 5);
	sim_ctl(&f.sim, "{\"op\": \"network\", \"registered\": true}", resp,
		sizeof(resp));
	wait_state(&f, MODEM_READY, 5);
	fx_stop(&f);
}

static void unhang_on_reset(struct fx *f, enum modem_state to)
{
	char resp[256];

	if (to == MODEM_RESETTING)
		sim_ctl(&f->sim, "{\"op\": \"unhang\"}", resp, sizeof(resp));
}

static void test_hang_reset_ready(void **state)
{
	struct fx f = { 0 };
	char resp[256];

	(void)state;
	fx_start(&f, NULL, NULL);
	wait_state(&f, MODEM_READY, 10);
	f.n_states = 0;
	f.on_state = unhang_on_reset;
	sim_ctl(&f.sim, "{\"op\": \"hang\"}", resp, sizeof(resp));
	wait_state(&f, MODEM_RESETTING, 10);
	wait_state(&f, MODEM_READY, 20);
	assert_true(saw_state(&f, MODEM_INITIALIZING));
	fx_stop(&f);
}

static void test_hang_until_unhung(void **state)
{
	struct fx f = { 0 };
	char resp[256];

	(void)state;
	fx_start(&f, NULL, NULL);
	wait_state(&f, MODEM_READY, 10);
	sim_ctl(&f.sim, "{\"op\": \"hang\"}", resp, sizeof(resp));
	wait_state(&f, MODEM_RESETTING, 10);
	/* Dead to AT and to AT+CFUN=1,1: it keeps trying, never ready. */
	run_for(&f, 3.0);
	assert_false(modem_is_ready(f.m));
	sim_ctl(&f.sim, "{\"op\": \"unhang\"}", resp, sizeof(resp));
	wait_state(&f, MODEM_READY, 30);
	fx_stop(&f);
}

static void test_unplug_replug(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--replug-after", "0.7", NULL };
	char resp[256];

	(void)state;
	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_READY, 10);
	sim_ctl(&f.sim, "{\"op\": \"unplug\"}", resp, sizeof(resp));
	wait_state(&f, MODEM_GONE, 5);
	assert_int_equal(modem_send_pdu(f.m, "0001000B914306111122F20000"
					"0568656C6C6F", 18, send_cb, &f),
			 -EAGAIN);
	wait_state(&f, MODEM_READY, 10);
	assert_int_equal(sim_stat(&f.sim, "boots"), 2);
	fx_stop(&f);
}

static void test_unplug_after_option(void **state)
{
	struct fx f = { 0 };
	/* Enough command lines for init, then the unplug on a later one. */
	const char *const args[] = { "--unplug-after", "30", "--replug-after",
				     "0.5", NULL };

	(void)state;
	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_READY, 10);
	wait_state(&f, MODEM_GONE, 15); /* health checks reach line 31 */
	wait_state(&f, MODEM_READY, 10);
	fx_stop(&f);
}

/* Every family: picked by driver=auto, identity clean despite the boot
 * burst and the noise, and a send works. */
static void check_vendor(const char *vendor, const char *model)
{
	struct fx f = { 0 };
	const char *const args[] = { "--vendor", vendor, "--boot-urcs",
				     "--noise", NULL };
	int mrs[4];

	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_READY, 15);
	assert_string_equal(modem_get_info(f.m)->driver, vendor);
	assert_string_equal(modem_get_info(f.m)->model, model);
	assert_int_equal(send_text(&f, "hello", false, mrs), 1);
	fx_stop(&f);
}

static void test_vendor_generic(void **state)
{
	(void)state;
	check_vendor("generic", "modemsim");
}

static void test_vendor_simcom(void **state)
{
	(void)state;
	check_vendor("simcom", "SIMCOM_SIM800L");
}

static void test_vendor_quectel(void **state)
{
	(void)state;
	check_vendor("quectel", "EC25");
}

static void test_vendor_huawei(void **state)
{
	(void)state;
	check_vendor("huawei", "E3372");
}

static void test_send_mr(void **state)
{
	struct fx f = { 0 };
	int mrs[4];

	(void)state;
	fx_start(&f, NULL, NULL);
	wait_state(&f, MODEM_READY, 10);
	assert_int_equal(send_text(&f, "one", false, &mrs[0]), 1);
	assert_int_equal(send_text(&f, "two", false, &mrs[1]), 1);
	assert_int_not_equal(mrs[0], mrs[1]);
	assert_int_equal(sim_stat(&f.sim, "sent"), 2);
	assert_int_equal(modem_get_info(f.m)->sent, 2);
	/* A bad length is refused up front. */
	assert_int_equal(modem_send_pdu(f.m, "0001000B914306111122F20000"
					"0568656C6C6F", 17, send_cb, &f),
			 -EINVAL);
	fx_stop(&f);
}

static void test_send_multipart(void **state)
{
	struct fx f = { 0 };
	char text[400];
	int mrs[4];

	(void)state;
	memset(text, 'x', 300);
	text[300] = '\0';
	fx_start(&f, NULL, NULL);
	wait_state(&f, MODEM_READY, 10);
	assert_int_equal(send_text(&f, text, false, mrs), 2);
	assert_int_equal(sim_stat(&f.sim, "sent"), 2);
	fx_stop(&f);
}

static void test_send_permanent_error(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--permanent-fail", "+34600111222", NULL };
	struct pdu_part p;
	struct pdu_submit_opts o = { .to = "+34600111222", .msg_class = -1 };
	char err[PDU_ERR_MAX];

	(void)state;
	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_READY, 10);
	assert_int_equal(pdu_encode_submit("x", &o, &p, 1, err, sizeof(err)),
			 1);
	assert_int_equal(modem_send_pdu(f.m, p.hex, p.tpdu_len, send_cb, &f),
			 0);
	assert_true(run_until(&f, is_send_done, 5));
	assert_false(f.send.ok);
	assert_int_equal(f.send.err.type, AT_ERR_CMS);
	assert_int_equal(f.send.err.code, 21);
	assert_false(f.send.transient);
	assert_int_equal(modem_get_info(f.m)->failed, 1);
	assert_true(modem_is_ready(f.m));
	fx_stop(&f);
}

static bool has_sms(struct fx *f)
{
	return f->n_sms > 0;
}

static void read_cb(void *user, struct modem *m, int rc,
		    const struct modem_sms_entry *e)
{
	struct fx *f = user;

	(void)m;
	f->op_done = true;
	f->op_rc = rc;
	if (!rc) {
		snprintf(f->read_hex, sizeof(f->read_hex), "%s", e->pdu_hex);
		f->read_stat = e->stat;
	}
}

static void done_cb(void *user, struct modem *m, int rc)
{
	struct fx *f = user;

	(void)m;
	f->op_done = true;
	f->op_rc = rc;
}

static void list_cb(void *user, struct modem *m, int rc,
		    const struct modem_sms_entry *v, size_t n)
{
	struct fx *f = user;

	(void)m;
	f->op_done = true;
	f->op_rc = rc;
	f->list_n = n;
	for (size_t i = 0; i < n && i < MAX_EVENTS; i++) {
		f->list_index[i] = v[i].index;
		assert_true(strlen(v[i].pdu_hex) > 10);
	}
}

static void test_inbound_read_delete_list(void **state)
{
	struct fx f = { 0 };
	char resp[256], err[PDU_ERR_MAX];
	struct pdu_sms sms;

	(void)state;
	fx_start(&f, NULL, NULL);
	wait_state(&f, MODEM_READY, 10);
	sim_ctl(&f.sim, "{\"op\": \"inject\", \"from\": \"+34611222333\", "
			"\"text\": \"hola\"}", resp, sizeof(resp));
	assert_true(run_until(&f, has_sms, 5));
	assert_string_equal(f.sms[0].mem, "SM");

	f.op_done = false;
	assert_int_equal(modem_read_sms(f.m, f.sms[0].mem, f.sms[0].index,
					read_cb, &f), 0);
	assert_false(f.op_done);
	assert_true(run_until(&f, is_op_done, 5));
	assert_int_equal(f.op_rc, 0);
	assert_int_equal(pdu_decode_hex(f.read_hex, &sms, err, sizeof(err)), 0);
	assert_string_equal(sms.text, "hola");
	assert_string_equal(sms.addr.text, "+34611222333");

	f.op_done = false;
	assert_int_equal(modem_list_sms(f.m, NULL, list_cb, &f), 0);
	assert_true(run_until(&f, is_op_done, 5));
	assert_int_equal(f.op_rc, 0);
	assert_int_equal(f.list_n, 1);
	assert_int_equal(f.list_index[0], f.sms[0].index);

	f.op_done = false;
	assert_int_equal(modem_delete_sms(f.m, NULL, f.sms[0].index, done_cb,
					  &f), 0);
	assert_true(run_until(&f, is_op_done, 5));
	assert_int_equal(f.op_rc, 0);

	f.op_done = false;
	assert_int_equal(modem_read_sms(f.m, NULL, f.sms[0].index, read_cb,
					&f), 0);
	assert_true(run_until(&f, is_op_done, 5));
	assert_int_equal(f.op_rc, -ENOENT);

	f.op_done = false;
	assert_int_equal(modem_list_sms(f.m, NULL, list_cb, &f), 0);
	assert_true(run_until(&f, is_op_done, 5));
	assert_int_equal(f.list_n, 0);
	fx_stop(&f);
}

static bool has_report(struct fx *f)
{
	return f->n_reports > 0 || f->n_direct_reports > 0;
}

/* The generic driver asks for stored status reports (+CDSI); SIMCom's
 * for routed ones (+CDS). Either way the report names our mr. */
static void check_report(const char *vendor, bool direct)
{
	struct fx f = { 0 };
	const char *const args[] = { "--vendor", vendor, "--report-delay",
				     "0.2", NULL };
	char err[PDU_ERR_MAX];
	struct pdu_sms sr;
	int mr;

	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_READY, 10);
	assert_int_equal(send_text(&f, "report me", true, &mr), 1);
	assert_true(run_until(&f, has_report, 5));
	if (direct) {
		assert_int_equal(f.n_direct_reports, 1);
		assert_int_equal(pdu_decode_hex(f.direct_report, &sr, err,
						sizeof(err)), 0);
		assert_int_equal(sr.type, PDU_STATUS_REPORT);
		assert_int_equal(sr.mr, mr);
		/* Acked: the simulator hands over the next one. */
		run_for(&f, 0.3);
		assert_int_equal(sim_stat(&f.sim, "cnma_timeouts"), 0);
	} else {
		assert_int_equal(f.n_reports, 1);
		f.op_done = false;
		assert_int_equal(modem_read_sms(f.m, f.reports[0].mem,
						f.reports[0].index, read_cb,
						&f), 0);
		assert_true(run_until(&f, is_op_done, 5));
		assert_int_equal(f.op_rc, 0);
		assert_int_equal(pdu_decode_hex(f.read_hex, &sr, err,
						sizeof(err)), 0);
		assert_int_equal(sr.type, PDU_STATUS_REPORT);
		assert_int_equal(sr.mr, mr);
	}
	fx_stop(&f);
}

static void test_report_stored(void **state)
{
	(void)state;
	check_report("generic", false);
}

static void test_report_direct(void **state)
{
	(void)state;
	check_report("simcom", true);
}

static bool has_full(struct fx *f)
{
	return f->n_full > 0;
}

/* A vendor's storage-full URC and its signal URC reach the driver. */
static void test_huawei_urcs(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--vendor", "huawei", NULL };
	struct modem_config c = base_cfg;
	char resp[256];

	(void)state;
	c.health_interval = 60; /* no AT+CSQ to overwrite ^RSSI */
	fx_start(&f, args, &c);
	wait_state(&f, MODEM_READY, 10);
	run_for(&f, 0.2); /* the AT+CSQ that follows ready */
	sim_ctl(&f.sim, "{\"op\": \"urc\", \"line\": \"^RSSI: 7\"}", resp,
		sizeof(resp));
	sim_ctl(&f.sim,
		"{\"op\": \"urc\", \"line\": \"^SMMEMFULL: \\\"SM\\\"\"}", resp,
		sizeof(resp));
	assert_true(run_until(&f, has_full, 5));
	assert_int_equal(modem_get_info(f.m)->signal, 7);
	fx_stop(&f);
}

static void test_storage_full_at_init(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--storage-size", "1", "--boot-urcs",
				     NULL };
	char resp[256];

	(void)state;
	fx_start(&f, args, NULL);
	wait_state(&f, MODEM_READY, 10);
	sim_ctl(&f.sim, "{\"op\": \"inject\", \"from\": \"+34611222333\", "
			"\"text\": \"fills it\"}", resp, sizeof(resp));
	assert_true(run_until(&f, has_sms, 5));
	/* The modem reboots on its own; its "RDY" makes the driver set it
	 * up again, and the re-init finds +CPMS used == total. */
	sim_ctl(&f.sim, "{\"op\": \"reset\"}", resp, sizeof(resp));
	f.n_full = 0;
	assert_true(run_until(&f, has_full, 15));
	fx_stop(&f);
}

static void test_explicit_driver(void **state)
{
	struct fx f = { 0 };
	const char *const args[] = { "--vendor", "quectel", NULL };
	struct modem_config c = base_cfg;

	(void)state;
	c.driver = "quectel";
	fx_start(&f, args, &c);
	assert_string_equal(modem_get_info(f.m)->driver, "quectel");
	wait_state(&f, MODEM_READY, 10);
	/* Quectel's storage quirk: "ME". */
	sim_ctl(&f.sim, "{\"op\": \"inject\", \"from\": \"+34611222333\", "
			"\"text\": \"me\"}", (char[256]){ 0 }, 256);
	assert_true(run_until(&f, has_sms, 5));
	assert_string_equal(f.sms[0].mem, "ME");
	fx_stop(&f);
}

static void test_config_check(void **state)
{
	struct modem_config c = base_cfg;
	char err[256];

	(void)state;
	c.device = "/dev/ttyUSB0";
	assert_int_equal(modem_config_check(&c, err, sizeof(err)), 0);
	c.driver = "nokia";
	assert_int_equal(modem_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "driver"));
	c.driver = "auto";
	c.baud = 12345;
	assert_int_equal(modem_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "baud"));
	c.baud = 9600;
	c.storage = "XX";
	assert_int_equal(modem_config_check(&c, err, sizeof(err)), -EINVAL);
	c.storage = "ME";
	c.device = "usb:zz:1";
	assert_int_equal(modem_config_check(&c, err, sizeof(err)), -EINVAL);
	c.device = "usb:2c7c:0125";
	c.pin = "12a4";
	assert_int_equal(modem_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "12a4")); /* a PIN never lands in a message */
	c.pin = "1234";
	assert_int_equal(modem_config_check(&c, err, sizeof(err)), 0);
	assert_null(modem_new(ev_default_loop(0), &(struct modem_config){ 0 },
			      NULL));
	assert_string_equal(modem_state_name(MODEM_PUK_LOCKED), "puk_locked");
	assert_string_equal(modem_state_name(MODEM_WAITING_NETWORK),
			    "waiting_network");
	assert_string_equal(modem_state_name((enum modem_state)99), "unknown");
	assert_string_equal(modem_reg_name(MODEM_REG_ROAMING), "roaming");
}

static void test_absent_port_retries(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct modem_config c = base_cfg;
	struct fx f = { .loop = loop };
	struct modem_events ev = { .user = &f, .state_changed = ev_state };
	char err[256];

	(void)state;
	c.device = "/nonexistent/ttyUSB9";
	f.m = modem_new(loop, &c, &ev);
	assert_non_null(f.m);
	assert_int_equal(modem_start(f.m, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "/nonexistent/ttyUSB9"));
	assert_int_equal(modem_get_state(f.m), MODEM_GONE);
	run_for(&f, 0.5);
	assert_int_equal(modem_get_state(f.m), MODEM_GONE);
	assert_int_equal(f.n_states, 1); /* retries do not repeat the event */
	modem_free(f.m);
	ev_loop_destroy(loop);
}

/* After every test: stops the simulator a failed test left behind. */
static int teardown(void **state)
{
	(void)state;
	if (live_sim.pid > 0)
		sim_stop(&live_sim);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_config_check, teardown),
		cmocka_unit_test_teardown(test_absent_port_retries, teardown),
		cmocka_unit_test_teardown(test_ready_generic, teardown),
		cmocka_unit_test_teardown(test_pin_accepted, teardown),
		cmocka_unit_test_teardown(test_pin_rejected_once, teardown),
		cmocka_unit_test_teardown(test_pin_missing, teardown),
		cmocka_unit_test_teardown(test_no_network_then_registered, teardown),
		cmocka_unit_test_teardown(test_network_lost_and_back, teardown),
		cmocka_unit_test_teardown(test_send_mr, teardown),
		cmocka_unit_test_teardown(test_send_multipart, teardown),
		cmocka_unit_test_teardown(test_send_permanent_error, teardown),
		cmocka_unit_test_teardown(test_inbound_read_delete_list, teardown),
		cmocka_unit_test_teardown(test_report_stored, teardown),
		cmocka_unit_test_teardown(test_report_direct, teardown),
		cmocka_unit_test_teardown(test_huawei_urcs, teardown),
		cmocka_unit_test_teardown(test_storage_full_at_init, teardown),
		cmocka_unit_test_teardown(test_explicit_driver, teardown),
		cmocka_unit_test_teardown(test_vendor_generic, teardown),
		cmocka_unit_test_teardown(test_vendor_simcom, teardown),
		cmocka_unit_test_teardown(test_vendor_quectel, teardown),
		cmocka_unit_test_teardown(test_vendor_huawei, teardown),
		cmocka_unit_test_teardown(test_hang_reset_ready, teardown),
		cmocka_unit_test_teardown(test_hang_until_unhung, teardown),
		cmocka_unit_test_teardown(test_unplug_replug, teardown),
		cmocka_unit_test_teardown(test_unplug_after_option, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init("test_modem", getenv("SMSGW_TEST_DEBUG") ? LOG_LVL_DEBUG
							  : LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
