/* test_transport — the serial transport on ptys (no hardware here):
 * termios set-up, exclusivity, errors that name the port, "usb:" syntax,
 * the port listing and the AT-port guess. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/transport.h"

struct pty {
	int master;
	char path[64];
};

static void pty_open(struct pty *p)
{
	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(p->master >= 0);
	assert_int_equal(grantpt(p->master), 0);
	assert_int_equal(unlockpt(p->master), 0);
	assert_int_equal(ptsname_r(p->master, p->path, sizeof(p->path)), 0);
}

/* Reads what is there within a short bounded wait. */
static ssize_t read_some(int fd, char *buf, size_t len)
{
	for (int i = 0; i < 200; i++) {
		ssize_t n = read(fd, buf, len);

		if (n > 0 || (n < 0 && errno != EAGAIN))
			return n;
		usleep(5000);
	}
	return -1;
}

static void test_pty_roundtrip(void **state)
{
	struct transport *t = NULL;
	struct termios tio;
	struct pty p;
	char err[TRANSPORT_ERR_MAX], buf[16];
	int fd;

	(void)state;
	pty_open(&p);
	assert_int_equal(transport_open(p.path, 9600, TRANSPORT_FLOW_NONE, &t,
					err, sizeof(err)), 0);
	assert_true(transport_is_pty(t));
	assert_string_equal(transport_path(t), p.path);
	fd = transport_fd(t);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(tcgetattr(fd, &tio), 0);
	assert_false(tio.c_lflag & (ICANON | ECHO));
	assert_true(tio.c_cflag & (CLOCAL | CREAD));
	assert_int_equal(cfgetospeed(&tio), B9600);
	/* Raw both ways: the CR survives, nothing is echoed. */
	assert_int_equal(write(p.master, "OK\r\n", 4), 4);
	assert_int_equal(read_some(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "OK\r\n", 4);
	assert_int_equal(write(fd, "AT\r", 3), 3);
	assert_int_equal(read_some(p.master, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "AT\r", 3);
	transport_close(t);
	close(p.master);
}

static void test_pty_symlink_and_flow(void **state)
{
	struct transport *t = NULL;
	struct termios tio;
	struct pty p;
	char err[TRANSPORT_ERR_MAX], link[64];

	(void)state;
	pty_open(&p);
	snprintf(link, sizeof(link), "/tmp/smsgw-ttest-%d", (int)getpid());
	unlink(link);
	assert_int_equal(symlink(p.path, link), 0);
	assert_int_equal(transport_open(link, 0, TRANSPORT_FLOW_RTSCTS, &t, err,
					sizeof(err)), 0);
	assert_true(transport_is_pty(t));
	assert_int_equal(tcgetattr(transport_fd(t), &tio), 0);
	assert_int_equal(cfgetospeed(&tio), B115200); /* the default */
	assert_true(tio.c_cflag & CRTSCTS);
	transport_close(t);
	assert_int_equal(transport_open(link, 0, TRANSPORT_FLOW_XONXOFF, &t,
					err, sizeof(err)), 0);
	assert_int_equal(tcgetattr(transport_fd(t), &tio), 0);
	assert_true(tio.c_iflag & IXON);
	assert_false(tio.c_cflag & CRTSCTS);
	transport_close(t);
	unlink(link);
	close(p.master);
}

static void test_exclusive(void **state)
{
	struct transport *a = NULL, *b = NULL;
	struct pty p;
	char err[TRANSPORT_ERR_MAX];
	int excl = 0, other;

	(void)state;
	pty_open(&p);
	/* Another holder of the slave, like the simulator's own fd. */
	other = open(p.path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(other >= 0);
	assert_int_equal(transport_open(p.path, 0, TRANSPORT_FLOW_NONE, &a, err,
					sizeof(err)), 0);
	/* A second smsgwd (here: a second open) is refused, by name. */
	assert_int_equal(transport_open(p.path, 0, TRANSPORT_FLOW_NONE, &b, err,
					sizeof(err)), -EBUSY);
	assert_null(b);
	assert_non_null(strstr(err, p.path));
	assert_non_null(strstr(err, "in use"));
	/* The refused open left the holder's TIOCEXCL alone. */
	assert_int_equal(ioctl(transport_fd(a), TIOCGEXCL, &excl), 0);
	assert_int_equal(excl, 1);
	transport_close(a);
	/* Closing releases it (TIOCEXCL cleared, lock dropped). */
	assert_int_equal(ioctl(other, TIOCGEXCL, &excl), 0);
	assert_int_equal(excl, 0);
	assert_int_equal(transport_open(p.path, 0, TRANSPORT_FLOW_NONE, &b, err,
					sizeof(err)), 0);
	transport_close(b);
	close(other);
	close(p.master);
}

static void test_errors(void **state)
{
	static const char *const bad_usb[] = {
		"usb:", "usb:2c7c", "usb:2c7c:", "usb:12345:0125",
		"usb:zz:0125", "usb:2c7c:0125:", "usb:2c7c:01x5",
	};
	struct transport *t = NULL;
	struct pty p;
	char err[TRANSPORT_ERR_MAX];

	(void)state;
	assert_int_equal(transport_open("/nonexistent/ttyUSB7", 0,
					TRANSPORT_FLOW_NONE, &t, err,
					sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/ttyUSB7"));
	assert_int_equal(transport_open("/etc/hostname", 0, TRANSPORT_FLOW_NONE,
					&t, err, sizeof(err)), -ENOTTY);
	assert_non_null(strstr(err, "/etc/hostname"));
	assert_int_equal(transport_open("", 0, TRANSPORT_FLOW_NONE, &t, err,
					sizeof(err)), -EINVAL);
	for (size_t i = 0; i < sizeof(bad_usb) / sizeof(bad_usb[0]); i++) {
		assert_int_equal(transport_open(bad_usb[i], 0,
						TRANSPORT_FLOW_NONE, &t, err,
						sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, bad_usb[i]));
		assert_int_equal(transport_device_check(bad_usb[i], NULL, 0),
				 -EINVAL);
	}
	/* Well-formed but absent. */
	assert_int_equal(transport_open("usb:ffff:fffe:nope", 0,
					TRANSPORT_FLOW_NONE, &t, err,
					sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "usb:ffff:fffe"));
	assert_int_equal(transport_device_check("usb:2c7c:0125", err,
						sizeof(err)), 0);
	assert_int_equal(transport_device_check("usb:2C7C:125:AB12", err,
						sizeof(err)), 0);
	pty_open(&p);
	assert_int_equal(transport_open(p.path, 12345, TRANSPORT_FLOW_NONE, &t,
					err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "12345"));
	assert_null(t);
	close(p.master);
	transport_close(NULL);
}

static void test_names(void **state)
{
	enum transport_flow f;

	(void)state;
	assert_int_equal(transport_flow_parse("rtscts", &f), 0);
	assert_int_equal(f, TRANSPORT_FLOW_RTSCTS);
	assert_int_equal(transport_flow_parse("XonXoff", &f), 0);
	assert_int_equal(f, TRANSPORT_FLOW_XONXOFF);
	assert_int_equal(transport_flow_parse("none", &f), 0);
	assert_int_equal(f, TRANSPORT_FLOW_NONE);
	assert_int_equal(transport_flow_parse("dtrdsr", &f), -EINVAL);
	assert_int_equal(transport_flow_parse(NULL, &f), -EINVAL);
	assert_string_equal(transport_flow_name(TRANSPORT_FLOW_RTSCTS),
			    "rtscts");
	assert_true(transport_baud_valid(115200));
	assert_true(transport_baud_valid(9600));
	assert_false(transport_baud_valid(115201));
	assert_false(transport_baud_valid(0));
}

static void test_guess_and_list(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	int n;

	(void)state;
	assert_non_null(strstr(transport_guess_at_port(0x2c7c, 0x0125, 2, NULL),
			       "Quectel"));
	assert_null(transport_guess_at_port(0x2c7c, 0x0125, 0, NULL)); /* DM */
	assert_non_null(transport_guess_at_port(0x1e0e, 0x9001, 2, NULL));
	assert_non_null(transport_guess_at_port(0x12d1, 0x1506, 2, NULL));
	assert_null(transport_guess_at_port(0x0403, 0x6001, 0, "FT232R UART"));
	assert_non_null(transport_guess_at_port(0x1234, 0x5678, 0,
						"Generic USB Modem"));
	out = open_memstream(&text, &len);
	assert_non_null(out);
	n = transport_list_ports(out);
	fclose(out);
	assert_true(n >= 0);
	if (n == 0)
		assert_non_null(strstr(text, "no serial ports"));
	else
		assert_non_null(strstr(text, "AT port:"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pty_roundtrip),
		cmocka_unit_test(test_pty_symlink_and_flow),
		cmocka_unit_test(test_exclusive),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_guess_and_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
