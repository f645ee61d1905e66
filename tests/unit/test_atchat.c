/* Chat tests: the test plays the modem on the other end of a socketpair,
 * on a private ev loop. Every wait is bounded by a guard timer. Callbacks
 * are recorded as text lines in t->log and compared whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "at/chat.h"
#include "at/result.h"

#define DELIVER1 "07914306090909F9040B914306101122F200002410512103540012C8" \
		 "329BFD0699E5EF3608CE0EBBE9A019"
#define DELIVER2 "07914306090909F9040B914306303344F4000024105121035400115374" \
		 "DA4C07CDE961397D0E0AD34136"
#define STATUS1 "07914306090909F9062D0B914306101122F2241051210354002410512103" \
		"050000"
#define SUBMIT1 "0011000B914306101122F20000AA1DC161B3A803E5DF753968FC269741E9" \
		"39E8B68CCA9AD81C944605"

struct t {
	struct ev_loop *loop;
	int fds[2];          /* [0] the chat's, [1] the modem's */
	ev_io modem_io;
	struct at_chat *chat;
	char rx[16384];      /* bytes the modem received, not yet expected */
	size_t rxlen;
	char log[65536];
	size_t loglen;
	bool in_send;
	unsigned done;       /* command callbacks run */
	unsigned disconnects;
	unsigned free_on;    /* 1: a command callback frees the chat,
				2: a URC handler does, 3: disconnect does */
	unsigned unreg_id;   /* URC handler unregisters this id */
};

struct call {
	struct t *t;
	char name[16];
};

static void logf_(struct t *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logf_(struct t *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->log + t->loglen, sizeof(t->log) - t->loglen, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(t->log) - t->loglen);
	t->loglen += (size_t)n;
}

static void log_lines(struct t *t, const struct at_result *res)
{
	for (size_t i = 0; i < res->n_lines; i++)
		logf_(t, "|%s%s", res->lines[i].pdu ? "P=" : "",
		      res->lines[i].text);
	if (res->lost)
		logf_(t, "|lost=%u", res->lost);
	logf_(t, "\n");
}

static void free_chat(struct t *t)
{
	at_chat_free(t->chat);
	t->chat = NULL;
	logf_(t, "freed\n");
}

static void on_done(const struct at_result *res, void *ud)
{
	struct call *c = ud;
	struct t *t = c->t;

	assert_false(t->in_send); /* never before send() returns */
	assert_non_null(res->final);
	t->done++;
	logf_(t, "%s:%s", c->name, at_err_type_name(res->err.type));
	if (res->err.code >= 0)
		logf_(t, ",%d", res->err.code);
	log_lines(t, res);
	if (t->free_on == 1)
		free_chat(t);
}

static void on_destroy(void *ud)
{
	struct call *c = ud;

	logf_(c->t, "~%s\n", c->name);
	free(c);
}

static void on_urc(const struct at_result *res, void *ud)
{
	struct t *t = ud;

	assert_int_equal(res->err.type, AT_ERR_OK);
	logf_(t, "urc");
	log_lines(t, res);
	if (t->unreg_id) {
		assert_int_equal(at_chat_unregister(t->chat, t->unreg_id), 0);
		t->unreg_id = 0;
	}
	if (t->free_on == 2)
		free_chat(t);
}

static void on_unsol(const char *line, size_t len, void *ud)
{
	struct t *t = ud;

	assert_int_equal(strlen(line), len);
	logf_(t, "unsol:%s\n", line);
}

static void on_disc(int err, void *ud)
{
	struct t *t = ud;

	t->disconnects++;
	logf_(t, "disc:%d\n", err);
	if (t->free_on == 3)
		free_chat(t);
}

static void on_modem_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct t *t = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(t->fds[1], t->rx + t->rxlen, sizeof(t->rx) - t->rxlen);
	if (n > 0)
		t->rxlen += (size_t)n;
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	*(bool *)w->data = true;
}

/* Runs the loop until cond holds or ms pass; fails the test on timeout. */
#define WAIT_FOR(t, cond, ms)                                                 \
	do {                                                                  \
		bool expired_ = false;                                        \
		ev_timer g_;                                                  \
		ev_timer_init(&g_, guard_cb, (ms) / 1000.0, 0);               \
		g_.data = &expired_;                                          \
		ev_timer_start((t)->loop, &g_);                               \
		for (int i_ = 0; i_ < 100000 && !(cond) && !expired_; i_++)   \
			ev_run((t)->loop, EVRUN_ONCE);                        \
		ev_timer_stop((t)->loop, &g_);                                \
		if (!(cond))                                                  \
			fail_msg("line %d: timeout waiting for %s; log:\n%s", \
				 __LINE__, #cond, (t)->log);                  \
	} while (0)

/* Runs the loop for ms. */
static void spin(struct t *t, unsigned ms)
{
	bool expired = false;
	ev_timer g;

	ev_timer_init(&g, guard_cb, ms / 1000.0, 0);
	g.data = &expired;
	ev_timer_start(t->loop, &g);
	for (int i = 0; i < 100000 && !expired; i++)
		ev_run(t->loop, EVRUN_ONCE);
	ev_timer_stop(t->loop, &g);
}

/* Waits until the modem received exactly `s` next, and consumes it. */
static void expect_n(struct t *t, const char *s, size_t n)
{
	WAIT_FOR(t, t->rxlen >= n, 2000);
	if (memcmp(t->rx, s, n) != 0)
		fail_msg("modem expected \"%.*s\", got \"%.*s\"", (int)n, s,
			 (int)t->rxlen, t->rx);
	memmove(t->rx, t->rx + n, t->rxlen - n);
	t->rxlen -= n;
}

static void expect(struct t *t, const char *s)
{
	expect_n(t, s, strlen(s));
}

static void say_n(struct t *t, const char *s, size_t n)
{
	assert_int_equal(write(t->fds[1], s, n), (ssize_t)n);
}

static void say(struct t *t, const char *s)
{
	say_n(t, s, strlen(s));
}

/* Lets the chat read everything the modem said so far. */
static void drain(struct t *t)
{
	for (int i = 0; i < 1000; i++) {
		int avail = 0;

		ev_run(t->loop, EVRUN_NOWAIT);
		assert_int_equal(ioctl(t->fds[0], FIONREAD, &avail), 0);
		if (avail == 0 || !t->chat)
			return;
	}
	fail_msg("chat does not read");
}

static void assert_log(struct t *t, const char *want)
{
	if (strcmp(t->log, want) != 0)
		fail_msg("log mismatch\n--- want\n%s--- got\n%s", want, t->log);
}

static unsigned send_cmd(struct t *t, const struct at_cmd *cmd,
			 const char *name)
{
	struct call *c = calloc(1, sizeof(*c));
	unsigned id;

	assert_non_null(c);
	c->t = t;
	snprintf(c->name, sizeof(c->name), "%s", name);
	t->in_send = true;
	id = at_chat_send(t->chat, cmd, on_done, c, on_destroy);
	t->in_send = false;
	if (!id)
		free(c); /* the caller still owns it */
	return id;
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    t->fds), 0);
	assert_int_equal(fcntl(t->fds[1], F_SETFL, O_NONBLOCK), 0);
	t->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(t->loop);
	t->chat = at_chat_new(t->loop, t->fds[0]);
	assert_non_null(t->chat);
	at_chat_set_unsolicited(t->chat, on_unsol, t);
	at_chat_set_disconnect(t->chat, on_disc, t);
	ev_io_init(&t->modem_io, on_modem_readable, t->fds[1], EV_READ);
	t->modem_io.data = t;
	ev_io_start(t->loop, &t->modem_io);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	ev_io_stop(t->loop, &t->modem_io);
	at_chat_free(t->chat);
	close(t->fds[0]);
	if (t->fds[1] >= 0)
		close(t->fds[1]);
	ev_loop_destroy(t->loop);
	free(t);
	return 0;
}

static void close_modem(struct t *t)
{
	ev_io_stop(t->loop, &t->modem_io);
	close(t->fds[1]);
	t->fds[1] = -1;
}

/* --- tests -------------------------------------------------------------- */

static void test_simple_command(void **state)
{
	struct t *t = *state;
	unsigned id;

	id = send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ",
					   .prefix = { "+CSQ:" } }, "c1");
	assert_int_not_equal(id, 0);
	assert_int_equal(at_chat_pending(t->chat), 1);
	expect(t, "AT+CSQ\r");
	say(t, "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "c1:ok|+CSQ: 20,99\n~c1\n");
	assert_int_equal(at_chat_pending(t->chat), 0);
	assert_true(at_chat_is_synced(t->chat));
	assert_false(at_chat_failed(t->chat));
}

static void test_queue_order_one_on_the_wire(void **state)
{
	struct t *t = *state;
	unsigned a, b, c;

	a = send_cmd(t, &(struct at_cmd){ .text = "AT+CGMI", .bare = true },
		     "c1");
	b = send_cmd(t, &(struct at_cmd){ .text = "AT+CGMM", .bare = true },
		     "c2");
	c = send_cmd(t, &(struct at_cmd){ .text = "AT+CGSN", .bare = true },
		     "c3");
	assert_true(a && b && c && a != b && b != c && a != c);
	assert_int_equal(at_chat_pending(t->chat), 3);
	expect(t, "AT+CGMI\r");
	spin(t, 30);
	assert_int_equal(t->rxlen, 0); /* nothing more before the answer */
	say(t, "\r\nSIMCOM_Ltd\r\n\r\nOK\r\n");
	expect(t, "AT+CGMM\r");
	say(t, "\r\nSIMCOM_SIM800L\r\n\r\nOK\r\n");
	expect(t, "AT+CGSN\r");
	say(t, "\r\n866262030123456\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 3, 2000);
	assert_log(t, "c1:ok|SIMCOM_Ltd\n~c1\n"
		      "c2:ok|SIMCOM_SIM800L\n~c2\n"
		      "c3:ok|866262030123456\n~c3\n");
}

/* A callback that queues: the new command goes after those queued. */
static void on_done_send_more(const struct at_result *res, void *ud)
{
	struct call *c = ud;
	struct t *t = c->t;

	on_done(res, ud);
	assert_int_not_equal(send_cmd(t, &(struct at_cmd){ .text = "AT+C4" },
				      "c4"), 0);
}

static void test_send_from_callback(void **state)
{
	struct t *t = *state;
	struct call *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->t = t;
	strcpy(c->name, "c1");
	assert_int_not_equal(at_chat_send(t->chat,
					  &(struct at_cmd){ .text = "AT+C1" },
					  on_done_send_more, c, on_destroy), 0);
	send_cmd(t, &(struct at_cmd){ .text = "AT+C2" }, "c2");
	expect(t, "AT+C1\r");
	say(t, "\r\nOK\r\n");
	expect(t, "AT+C2\r");
	say(t, "\r\nOK\r\n");
	expect(t, "AT+C4\r");
	say(t, "\r\nERROR\r\n");
	WAIT_FOR(t, t->done == 3, 2000);
	assert_log(t, "c1:ok\n~c1\nc2:ok\n~c2\nc4:error\n~c4\n");
}

static void test_echo_dropped(void **state)
{
	struct t *t = *state;

	send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ", .prefix = { "+CSQ:" } },
		 "c1");
	send_cmd(t, &(struct at_cmd){ .text = "ATI", .bare = true }, "c2");
	expect(t, "AT+CSQ\r");
	/* SIM800 with ATE1: the echo ends in a bare CR */
	say(t, "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
	expect(t, "ATI\r");
	say(t, "ATI\r\r\nSIM800 R14.18\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 2, 2000);
	assert_log(t, "c1:ok|+CSQ: 20,99\n~c1\nc2:ok|SIM800 R14.18\n~c2\n");
}

static void test_timeout_resync_late_reply(void **state)
{
	struct t *t = *state;

	at_chat_set_resync(t->chat, 500, 80, 3);
	send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ", .prefix = { "+CSQ:" },
				      .timeout_ms = 100 }, "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+CGMI", .bare = true }, "c2");
	expect(t, "AT+CSQ\r");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_int_equal(at_chat_timeouts(t->chat), 1);
	assert_false(at_chat_is_synced(t->chat));
	expect(t, "AT\r");
	/* the late reply, then the resync's own OK */
	say(t, "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
	say(t, "\r\nOK\r\n");
	/* two finals for one "AT": the chat cannot tell which OK was its
	 * own, so it asks again */
	expect(t, "AT\r");
	spin(t, 30);
	assert_int_equal(t->rxlen, 0);
	say(t, "\r\nOK\r\n");
	expect(t, "AT+CGMI\r");
	assert_true(at_chat_is_synced(t->chat));
	say(t, "\r\nSIMCOM_Ltd\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 2, 2000);
	assert_log(t, "c1:timeout\n~c1\nunsol:+CSQ: 20,99\n"
		      "c2:ok|SIMCOM_Ltd\n~c2\n");
	assert_int_equal(at_chat_timeouts(t->chat), 0);
}

static void test_late_reply_during_resync_wait(void **state)
{
	struct t *t = *state;

	at_chat_set_resync(t->chat, 500, 50, 3);
	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGD=1", .timeout_ms = 80 },
		 "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+CPMS?",
				      .prefix = { "+CPMS:" } }, "c2");
	expect(t, "AT+CMGD=1\r");
	WAIT_FOR(t, t->done == 1, 2000);
	expect(t, "AT\r");
	/* late "+CMS ERROR" then our OK: not an OK, so still waiting */
	say(t, "\r\n+CMS ERROR: 321\r\n");
	drain(t);
	spin(t, 80);
	assert_int_equal(t->rxlen, 0);
	say(t, "\r\nOK\r\n");
	expect(t, "AT+CPMS?\r");
	say(t, "\r\n+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 2, 2000);
	assert_log(t, "c1:timeout\n~c1\n"
		      "c2:ok|+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30\n~c2\n");
}

static void test_resync_gives_up_and_counts(void **state)
{
	struct t *t = *state;

	at_chat_set_resync(t->chat, 40, 20, 2);
	send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ", .timeout_ms = 50 },
		 "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+CREG?", .timeout_ms = 50 },
		 "c2");
	expect(t, "AT+CSQ\r");
	expect(t, "AT\r");
	expect(t, "AT\r");
	expect(t, "AT+CREG?\r");
	WAIT_FOR(t, t->done == 2, 2000);
	assert_int_equal(at_chat_timeouts(t->chat), 2);
	assert_log(t, "c1:timeout\n~c1\nc2:timeout\n~c2\n");
	/* a resync starts at once, even with an empty queue, and gives up */
	expect(t, "AT\r");
	expect(t, "AT\r");
	spin(t, 100);
	assert_int_equal(t->rxlen, 0);
	assert_false(at_chat_is_synced(t->chat));
	/* the port stays unsynchronised: the next command resyncs first */
	at_chat_set_resync(t->chat, 500, 20, 2);
	send_cmd(t, &(struct at_cmd){ .text = "AT+COPS?" }, "c3");
	expect(t, "AT\r");
	say(t, "\r\nOK\r\n");
	expect(t, "AT+COPS?\r");
	say(t, "\r\nOK\r\n");
	WAIT_FOR(t, t->done == 3, 2000);
	assert_int_equal(at_chat_timeouts(t->chat), 0);
}

static void test_prompt_writes_pdu_and_ctrl_z(void **state)
{
	struct t *t = *state;
	struct at_cmd cmgs = { .text = "AT+CMGS=40", .prompt = SUBMIT1,
			       .prefix = { "+CMGS:" }, .timeout_ms = 60000 };

	send_cmd(t, &cmgs, "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ" }, "c2");
	expect(t, "AT+CMGS=40\r");
	spin(t, 30);
	assert_int_equal(t->rxlen, 0); /* nothing before the prompt */
	say(t, "\r\n> ");
	expect_n(t, SUBMIT1 "\x1a", sizeof(SUBMIT1));
	spin(t, 20);
	assert_int_equal(t->rxlen, 0);
	say(t, "\r\n+CMGS: 45\r\n\r\nOK\r\n");
	expect(t, "AT+CSQ\r");
	say(t, "\r\nOK\r\n");
	WAIT_FOR(t, t->done == 2, 2000);
	assert_log(t, "c1:ok|+CMGS: 45\n~c1\nc2:ok\n~c2\n");
}

static void test_prompt_with_echo_and_split_prompt(void **state)
{
	struct t *t = *state;

	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGS=40", .prompt = SUBMIT1,
				      .prefix = { "+CMGS:" } }, "c1");
	expect(t, "AT+CMGS=40\r");
	say(t, "AT+CMGS=40\r");
	drain(t);
	say(t, "\r\n>");
	drain(t);
	say(t, " ");
	expect_n(t, SUBMIT1 "\x1a", sizeof(SUBMIT1));
	/* ATE1: the modem echoes the PDU (not the Ctrl-Z) */
	say(t, SUBMIT1 "\r\n+CMGS: 46\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "c1:ok|+CMGS: 46\n~c1\n");
}

static void test_prompt_refused_and_stray_prompt(void **state)
{
	struct t *t = *state;

	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGS=40", .prompt = SUBMIT1,
				      .prefix = { "+CMGS:" } }, "c1");
	expect(t, "AT+CMGS=40\r");
	say(t, "\r\n+CMS ERROR: 330\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	say(t, "\r\n> ");
	spin(t, 30);
	assert_int_equal(t->rxlen, 0); /* nothing written on a stray "> " */
	assert_log(t, "c1:cms,330\n~c1\n");
}

/* The late "+CMGS: 7 / OK" of an earlier send (cut short by a stray OK)
 * arrives while the next AT+CMGS waits for its prompt: it is not that
 * command's answer; the command gets its prompt, its PDU, its own mr. */
static void test_prompt_ignores_late_success(void **state)
{
	struct t *t = *state;

	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGS=40", .prompt = SUBMIT1,
				      .prefix = { "+CMGS:" } }, "c1");
	expect(t, "AT+CMGS=40\r");
	say(t, "\r\n+CMGS: 7\r\n\r\nOK\r\n");
	spin(t, 30);
	assert_int_equal(t->done, 0);
	assert_int_equal(t->rxlen, 0);
	say(t, "\r\n> ");
	expect_n(t, SUBMIT1 "\x1a", sizeof(SUBMIT1));
	say(t, "\r\n+CMGS: 8\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "unsol:+CMGS: 7\nunsol:OK\nc1:ok|+CMGS: 8\n~c1\n");
}

static void test_prompt_timeout_sends_esc(void **state)
{
	struct t *t = *state;

	at_chat_set_resync(t->chat, 500, 20, 3);
	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGS=40", .prompt = SUBMIT1,
				      .timeout_ms = 60 }, "c1");
	expect(t, "AT+CMGS=40\r");
	WAIT_FOR(t, t->done == 1, 2000);
	/* ESC leaves the PDU input mode before the resync's AT */
	expect(t, "\x1b" "AT\r");
	say(t, "\r\nOK\r\n");
	spin(t, 60);
	assert_true(at_chat_is_synced(t->chat));
	assert_log(t, "c1:timeout\n~c1\n");
}

static void test_cancel_queued_and_in_flight(void **state)
{
	struct t *t = *state;
	unsigned c1, c2;

	c1 = send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ" }, "c1");
	c2 = send_cmd(t, &(struct at_cmd){ .text = "AT+CREG?" }, "c2");
	expect(t, "AT+CSQ\r");
	assert_int_equal(at_chat_cancel(t->chat, c2), 0);
	assert_log(t, "~c2\n"); /* destroyed at once, no callback */
	assert_int_equal(at_chat_cancel(t->chat, c2), -ENOENT);
	assert_int_equal(at_chat_cancel(t->chat, 0), -ENOENT);
	assert_int_equal(at_chat_cancel(t->chat, c1), 0);
	assert_int_equal(at_chat_cancel(t->chat, c1), -ENOENT);
	assert_int_equal(at_chat_pending(t->chat), 1); /* still on the wire */
	say(t, "\r\nOK\r\n");
	drain(t);
	spin(t, 20);
	assert_int_equal(at_chat_pending(t->chat), 0);
	assert_int_equal(t->rxlen, 0); /* c2 never sent */
	assert_log(t, "~c2\n~c1\n");
	assert_int_equal(t->done, 0);
}

static void test_cancel_prompt_sends_esc(void **state)
{
	struct t *t = *state;
	unsigned c1;

	c1 = send_cmd(t, &(struct at_cmd){ .text = "AT+CMGS=40",
					   .prompt = SUBMIT1 }, "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+CGMI", .bare = true }, "c2");
	expect(t, "AT+CMGS=40\r");
	assert_int_equal(at_chat_cancel(t->chat, c1), 0);
	say(t, "\r\n> ");
	expect(t, "\x1b");
	spin(t, 20);
	assert_int_equal(t->rxlen, 0);
	/* SIM800 answers an aborted +CMGS with OK */
	say(t, "\r\nOK\r\n");
	expect(t, "AT+CGMI\r");
	say(t, "\r\nSIMCOM_Ltd\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "~c1\nc2:ok|SIMCOM_Ltd\n~c2\n");
}

static void test_cancel_all(void **state)
{
	struct t *t = *state;

	send_cmd(t, &(struct at_cmd){ .text = "AT+C1" }, "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+C2" }, "c2");
	send_cmd(t, &(struct at_cmd){ .text = "AT+C3" }, "c3");
	expect(t, "AT+C1\r");
	at_chat_cancel_all(t->chat);
	assert_log(t, "~c1\n~c2\n~c3\n");
	assert_int_equal(at_chat_pending(t->chat), 1);
	say(t, "\r\nOK\r\n");
	send_cmd(t, &(struct at_cmd){ .text = "AT+C4" }, "c4");
	expect(t, "AT+C4\r");
	say(t, "\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "~c1\n~c2\n~c3\nc4:ok\n~c4\n");
}

static void test_eof_fails_all_pending(void **state)
{
	struct t *t = *state;
	struct call *c;

	send_cmd(t, &(struct at_cmd){ .text = "AT+C1" }, "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+C2" }, "c2");
	send_cmd(t, &(struct at_cmd){ .text = "AT+C3" }, "c3");
	expect(t, "AT+C1\r");
	say(t, "\r\n+PARTIAL: 1\r\n");
	close_modem(t);
	WAIT_FOR(t, t->disconnects == 1, 2000);
	assert_log(t, "unsol:+PARTIAL: 1\nc1:io\n~c1\nc2:io\n~c2\nc3:io\n~c3\n"
		      "disc:0\n");
	assert_true(at_chat_failed(t->chat));
	assert_int_equal(at_chat_pending(t->chat), 0);
	/* later sends fail and leave userdata with the caller */
	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	assert_int_equal(at_chat_send(t->chat, &(struct at_cmd){ .text = "AT" },
				      on_done, c, on_destroy), 0);
	free(c);
	spin(t, 20);
	assert_int_equal(t->disconnects, 1);
}

static void test_write_error_reported_after_send_returns(void **state)
{
	struct t *t = *state;

	close_modem(t);
	/* the write fails inside send(); the callback must still wait */
	assert_int_not_equal(send_cmd(t, &(struct at_cmd){ .text = "AT" },
				      "c1"), 0);
	assert_int_equal(t->done, 0);
	WAIT_FOR(t, t->disconnects == 1, 2000);
	assert_int_equal(t->done, 1);
	assert_true(strncmp(t->log, "c1:io\n~c1\ndisc:", 15) == 0);
}

static void test_callback_frees_chat(void **state)
{
	struct t *t = *state;

	at_chat_register(t->chat, "+CMTI:", false, on_urc, t, NULL);
	send_cmd(t, &(struct at_cmd){ .text = "AT+C1" }, "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+C2" }, "c2");
	expect(t, "AT+C1\r");
	t->free_on = 1;
	/* more lines in the same read must not be looked at */
	say(t, "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
	WAIT_FOR(t, t->chat == NULL, 2000);
	spin(t, 20);
	assert_log(t, "c1:ok\n~c2\nfreed\n~c1\n");
}

static void test_urc_handler_frees_chat(void **state)
{
	struct t *t = *state;

	at_chat_register(t->chat, "+CMTI:", false, on_urc, t, NULL);
	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGL=4", .pdu_lines = true,
				      .prefix = { "+CMGL:" } }, "c1");
	expect(t, "AT+CMGL=4\r");
	t->free_on = 2;
	say(t, "\r\n+CMGL: 1,1,\"\",35\r\n" DELIVER1 "\r\n+CMTI: \"SM\",3\r\n"
	       "\r\nOK\r\n");
	WAIT_FOR(t, t->chat == NULL, 2000);
	spin(t, 20);
	assert_log(t, "urc|+CMTI: \"SM\",3\n~c1\nfreed\n");
}

static void test_io_callback_frees_chat(void **state)
{
	struct t *t = *state;

	send_cmd(t, &(struct at_cmd){ .text = "AT+C1" }, "c1");
	send_cmd(t, &(struct at_cmd){ .text = "AT+C2" }, "c2");
	expect(t, "AT+C1\r");
	t->free_on = 1;
	close_modem(t);
	WAIT_FOR(t, t->chat == NULL, 2000);
	spin(t, 20);
	/* c2 gets no callback after the free, only its destroy */
	assert_log(t, "c1:io\n~c2\nfreed\n~c1\n");
	assert_int_equal(t->disconnects, 0);
}

static void test_disconnect_frees_chat(void **state)
{
	struct t *t = *state;

	t->free_on = 3;
	close_modem(t);
	WAIT_FOR(t, t->chat == NULL, 2000);
	assert_log(t, "disc:0\nfreed\n");
}

static void test_cmgl_with_cmti_in_the_middle(void **state)
{
	struct t *t = *state;

	at_chat_register(t->chat, "+CMTI:", false, on_urc, t, NULL);
	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGL=4", .pdu_lines = true,
				      .prefix = { "+CMGL:" } }, "c1");
	expect(t, "AT+CMGL=4\r");
	say(t, "\r\n+CMGL: 1,1,\"\",35\r\n" DELIVER1 "\r\n"
	       "\r\n+CMTI: \"SM\",3\r\n"
	       "+CMGL: 2,0,\"\",34\r\n" DELIVER2 "\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "urc|+CMTI: \"SM\",3\n"
		      "c1:ok|+CMGL: 1,1,\"\",35|P=" DELIVER1
		      "|+CMGL: 2,0,\"\",34|P=" DELIVER2 "\n~c1\n");
}

/* The same session, the modem's bytes split at every position. */
static const char cmgl_session[] =
	"\r\n+CMGL: 1,1,\"\",35\r\n" DELIVER1 "\r\n"
	"\r\n+CMTI: \"SM\",3\r\n+CMGL: 2,0,\"\",34\r\n\r\n^RSSI:17\r\n"
	DELIVER2 "\r\n+CMT: \"\",35\r\n" DELIVER1 "\r\n\r\nOK\r\n";
static const char cmgl_want[] =
	"urc|+CMTI: \"SM\",3\nurc|^RSSI:17\nurc|+CMT: \"\",35|P=" DELIVER1 "\n"
	"c1:ok|+CMGL: 1,1,\"\",35|P=" DELIVER1 "|+CMGL: 2,0,\"\",34|P="
	DELIVER2 "\n~c1\n";

static void test_session_split_everywhere(void **state)
{
	size_t n = sizeof(cmgl_session) - 1;

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		void *st;
		struct t *t;

		setup(&st);
		t = st;
		at_chat_register(t->chat, "+CMTI:", false, on_urc, t, NULL);
		at_chat_register(t->chat, "^RSSI:", false, on_urc, t, NULL);
		at_chat_register(t->chat, "+CMT:", true, on_urc, t, NULL);
		send_cmd(t, &(struct at_cmd){ .text = "AT+CMGL=4",
					      .pdu_lines = true,
					      .prefix = { "+CMGL:" } }, "c1");
		expect(t, "AT+CMGL=4\r");
		say_n(t, cmgl_session, cut);
		drain(t);
		say_n(t, cmgl_session + cut, n - cut);
		WAIT_FOR(t, t->done == 1, 2000);
		if (strcmp(t->log, cmgl_want) != 0)
			fail_msg("cut %zu:\n%s", cut, t->log);
		teardown(&st);
	}
}

static void test_session_byte_by_byte(void **state)
{
	struct t *t = *state;
	size_t n = sizeof(cmgl_session) - 1;

	at_chat_register(t->chat, "+CMTI:", false, on_urc, t, NULL);
	at_chat_register(t->chat, "^RSSI:", false, on_urc, t, NULL);
	at_chat_register(t->chat, "+CMT:", true, on_urc, t, NULL);
	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGL=4", .pdu_lines = true,
				      .prefix = { "+CMGL:" } }, "c1");
	expect(t, "AT+CMGL=4\r");
	for (size_t i = 0; i < n; i++) {
		say_n(t, cmgl_session + i, 1);
		drain(t);
	}
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, cmgl_want);
}

static void test_two_line_urcs(void **state)
{
	struct t *t = *state;

	at_chat_register(t->chat, "+CMT:", true, on_urc, t, NULL);
	at_chat_register(t->chat, "+CDS:", true, on_urc, t, NULL);
	at_chat_register(t->chat, "+CMTI:", false, on_urc, t, NULL);
	/* idle; SIM800: "+CDS: 25\r\n<pdu>" without a blank line */
	say(t, "\r\n+CMT: \"\",35\r\n" DELIVER1 "\r\n+CDS: 25\r\n" STATUS1
	       "\r\n");
	/* a one-line URC between header and PDU */
	say(t, "\r\n+CMT: \"\",34\r\n+CMTI: \"SM\",4\r\n" DELIVER2 "\r\n");
	/* a PDU that never comes: the header alone */
	say(t, "\r\n+CMT: \"\",35\r\nOK\r\n");
	drain(t);
	/* in the middle of a response */
	send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ", .prefix = { "+CSQ:" } },
		 "c1");
	expect(t, "AT+CSQ\r");
	say(t, "\r\n+CSQ: 20,99\r\n\r\n+CMT: \"\",35\r\n" DELIVER1
	       "\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "urc|+CMT: \"\",35|P=" DELIVER1 "\n"
		      "urc|+CDS: 25|P=" STATUS1 "\n"
		      "urc|+CMTI: \"SM\",4\n"
		      "urc|+CMT: \"\",34|P=" DELIVER2 "\n"
		      "urc|+CMT: \"\",35\nunsol:OK\n"
		      "urc|+CMT: \"\",35|P=" DELIVER1 "\n"
		      "c1:ok|+CSQ: 20,99\n~c1\n");
}

static void test_bare_command_does_not_swallow_urcs(void **state)
{
	struct t *t = *state;

	at_chat_register(t->chat, "Call Ready", false, on_urc, t, NULL);
	at_chat_register(t->chat, "SMS Ready", false, on_urc, t, NULL);
	at_chat_register(t->chat, "^RSSI:", false, on_urc, t, NULL);
	at_chat_register(t->chat, "+QIND:", false, on_urc, t, NULL);
	at_chat_register(t->chat, "RDY", false, on_urc, t, NULL);
	send_cmd(t, &(struct at_cmd){ .text = "ATI", .bare = true }, "c1");
	expect(t, "ATI\r");
	say(t, "\r\nSIM800 R14.18\r\n\r\nCall Ready\r\n^RSSI:17\r\n"
	       "\r\nSMS Ready\r\nRevision:1418B04SIM800L24\r\n"
	       "+QIND: SMS DONE\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "urc|Call Ready\nurc|^RSSI:17\nurc|SMS Ready\n"
		      "urc|+QIND: SMS DONE\n"
		      "c1:ok|SIM800 R14.18|Revision:1418B04SIM800L24\n~c1\n");
}

static void test_prefixed_command_and_unsolicited(void **state)
{
	struct t *t = *state;

	at_chat_register(t->chat, "+CREG:", false, on_urc, t, NULL);
	/* idle: registered -> URC, unregistered -> catch-all */
	say(t, "\r\n+CREG: 5\r\n\r\n+CUSD: 0\r\n");
	drain(t);
	/* the command's own prefix wins over the URC registration */
	send_cmd(t, &(struct at_cmd){ .text = "AT+CREG?",
				      .prefix = { "+CREG:" } }, "c1");
	expect(t, "AT+CREG?\r");
	say(t, "\r\n+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7\r\n\r\nJUNK\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "urc|+CREG: 5\nunsol:+CUSD: 0\nunsol:JUNK\n"
		      "c1:ok|+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7\n~c1\n");
}

static void test_final_results(void **state)
{
	struct t *t = *state;
	static const struct {
		const char *reply, *want;
	} cases[] = {
		{ "\r\nERROR\r\n", "c:error\n" },
		{ "\r\n+CME ERROR: 10\r\n", "c:cme,10\n" },
		{ "\r\n+CME ERROR: SIM PIN required\r\n", "c:cme,11\n" },
		{ "\r\n+CME ERROR: vendor text\r\n", "c:cme\n" },
		{ "\r\n+CMS ERROR: 500\r\n", "c:cms,500\n" },
		{ "\r\n+CMS ERROR:331\r\n", "c:cms,331\n" },
		{ "\r\nNO CARRIER\r\n", "c:no_carrier\n" },
		{ "\r\nBUSY\r\n", "c:busy\n" },
		{ "\r\nNO ANSWER\r\n", "c:no_answer\n" },
		{ "\r\nNO DIALTONE\r\n", "c:no_dialtone\n" },
		{ "\r\nCONNECT 115200\r\n", "c:connect\n" },
		{ "\r\nCOMMAND NOT SUPPORT\r\n", "c:error\n" },
		{ "\r\nOK \r\n", "c:ok\n" },
	};

	assert_int_equal(at_chat_add_final(t->chat, "COMMAND NOT SUPPORT",
					   AT_ERR_ERROR), 0);
	assert_int_equal(at_chat_add_final(t->chat, "X", AT_ERR_TIMEOUT),
			 -EINVAL);
	assert_int_equal(at_chat_add_final(t->chat, "", AT_ERR_ERROR), -EINVAL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char want[64];

		t->loglen = 0;
		t->log[0] = '\0';
		send_cmd(t, &(struct at_cmd){ .text = "AT+X" }, "c");
		expect(t, "AT+X\r");
		say(t, cases[i].reply);
		WAIT_FOR(t, t->done == i + 1, 2000);
		snprintf(want, sizeof(want), "%s~c\n", cases[i].want);
		assert_log(t, want);
	}
}

static void test_invalid_sends(void **state)
{
	struct t *t = *state;
	char big[AT_CMD_TEXT_MAX + 2];

	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(send_cmd(t, &(struct at_cmd){ .text = "AT\rAT" }, "x"),
			 0);
	assert_int_equal(send_cmd(t, &(struct at_cmd){ .text = "" }, "x"), 0);
	assert_int_equal(send_cmd(t, &(struct at_cmd){ .text = NULL }, "x"), 0);
	assert_int_equal(send_cmd(t, &(struct at_cmd){ .text = big }, "x"), 0);
	assert_int_equal(send_cmd(t, &(struct at_cmd){ .text = "AT+CMGS=1",
						       .prompt = "00\x1a" },
				  "x"), 0);
	assert_int_equal(at_chat_send(t->chat, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(at_chat_send(NULL, &(struct at_cmd){ .text = "AT" },
				      NULL, NULL, NULL), 0);
	assert_int_equal(at_chat_register(t->chat, "", false, on_urc, t, NULL),
			 0);
	assert_int_equal(at_chat_register(t->chat, "+X:", false, NULL, t,
					  NULL), 0);
	spin(t, 20);
	assert_int_equal(t->rxlen, 0);
	assert_log(t, ""); /* no destroy called on failure */
	/* fire and forget: NULL callback */
	assert_int_not_equal(at_chat_send(t->chat,
					  &(struct at_cmd){ .text = "ATE0" },
					  NULL, NULL, NULL), 0);
	expect(t, "ATE0\r");
	say(t, "\r\nOK\r\n");
	drain(t);
	assert_int_equal(at_chat_pending(t->chat), 0);
}

static void on_urc_destroy(void *ud)
{
	struct t *t = ud;

	logf_(t, "~urc\n");
}

static void test_unregister_inside_handler(void **state)
{
	struct t *t = *state;
	unsigned a, b;

	a = at_chat_register(t->chat, "+CMTI:", false, on_urc, t,
			     on_urc_destroy);
	b = at_chat_register(t->chat, "+CMTI:", false, on_urc, t, NULL);
	assert_true(a && b && a != b);
	t->unreg_id = a; /* the first call unregisters handler a */
	say(t, "\r\n+CMTI: \"SM\",1\r\n");
	drain(t);
	say(t, "\r\n+CMTI: \"SM\",2\r\n");
	drain(t);
	assert_log(t, "urc|+CMTI: \"SM\",1\n~urc\nurc|+CMTI: \"SM\",1\n"
		      "urc|+CMTI: \"SM\",2\n");
	assert_int_equal(at_chat_unregister(t->chat, a), -ENOENT);
	assert_int_equal(at_chat_unregister(t->chat, b), 0);
	say(t, "\r\n+CMTI: \"SM\",3\r\n");
	drain(t);
	assert_true(strstr(t->log, "unsol:+CMTI: \"SM\",3\n") != NULL);
}

static void test_overlong_line_in_response(void **state)
{
	struct t *t = *state;
	char big[5000];

	memset(big, '7', sizeof(big));
	send_cmd(t, &(struct at_cmd){ .text = "AT+CMGL=4", .pdu_lines = true,
				      .prefix = { "+CMGL:" } }, "c1");
	expect(t, "AT+CMGL=4\r");
	say(t, "\r\n+CMGL: 1,1,\"\",35\r\n");
	say_n(t, big, sizeof(big));
	say(t, "\r\n+CMGL: 2,0,\"\",34\r\n" DELIVER2 "\r\n\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "c1:ok|+CMGL: 1,1,\"\",35|+CMGL: 2,0,\"\",34|P=" DELIVER2
		      "|lost=1\n~c1\n");
}

static void on_trace(enum at_trace what, const char *d, size_t len, void *ud)
{
	struct t *t = ud;

	logf_(t, "T%d:%.*s\n", (int)what, (int)len,
	      what == AT_TRACE_DROP ? "." : d);
}

static void test_trace_and_unsync(void **state)
{
	struct t *t = *state;

	at_chat_set_trace(t->chat, on_trace, t);
	at_chat_set_resync(t->chat, 500, 20, 1);
	at_chat_unsync(t->chat);
	assert_false(at_chat_is_synced(t->chat));
	send_cmd(t, &(struct at_cmd){ .text = "AT+CSQ" }, "c1");
	expect(t, "AT\r");
	say_n(t, "\r\n\0OK\r\n", 7);
	expect(t, "AT+CSQ\r");
	say(t, "\r\nOK\r\n");
	WAIT_FOR(t, t->done == 1, 2000);
	assert_log(t, "T3:AT\r\nT4:.\nT0:OK\nT3:AT+CSQ\nT3:\r\nT0:OK\n"
		      "c1:ok\n~c1\n");
}

static void test_free_null_and_bad_fd(void **state)
{
	struct t *t = *state;

	at_chat_free(NULL);
	assert_null(at_chat_new(NULL, t->fds[0]));
	assert_null(at_chat_new(t->loop, -1));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_simple_command),
		T(test_queue_order_one_on_the_wire),
		T(test_send_from_callback),
		T(test_echo_dropped),
		T(test_timeout_resync_late_reply),
		T(test_late_reply_during_resync_wait),
		T(test_resync_gives_up_and_counts),
		T(test_prompt_writes_pdu_and_ctrl_z),
		T(test_prompt_with_echo_and_split_prompt),
		T(test_prompt_refused_and_stray_prompt),
		T(test_prompt_ignores_late_success),
		T(test_prompt_timeout_sends_esc),
		T(test_cancel_queued_and_in_flight),
		T(test_cancel_prompt_sends_esc),
		T(test_cancel_all),
		T(test_eof_fails_all_pending),
		T(test_write_error_reported_after_send_returns),
		T(test_callback_frees_chat),
		T(test_urc_handler_frees_chat),
		T(test_io_callback_frees_chat),
		T(test_disconnect_frees_chat),
		T(test_cmgl_with_cmti_in_the_middle),
		cmocka_unit_test(test_session_split_everywhere),
		T(test_session_byte_by_byte),
		T(test_two_line_urcs),
		T(test_bare_command_does_not_swallow_urcs),
		T(test_prefixed_command_and_unsolicited),
		T(test_final_results),
		T(test_invalid_sends),
		T(test_unregister_inside_handler),
		T(test_overlong_line_in_response),
		T(test_trace_and_unsync),
		T(test_free_null_and_bad_fd),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
