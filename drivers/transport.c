/* transport — see transport.h. The only file that includes libserialport. */
#include "drivers/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

struct transport {
	int fd;
	struct sp_port *sp;  /* NULL when opened with termios (a pty) */
	bool excl;           /* we set TIOCEXCL (and clear it on close) */
	char path[PATH_MAX]; /* what was opened */
};

static const struct {
	const char *name;
	enum transport_flow flow;
} flow_names[] = {
	{ "none", TRANSPORT_FLOW_NONE },
	{ "rtscts", TRANSPORT_FLOW_RTSCTS },
	{ "hardware", TRANSPORT_FLOW_RTSCTS },
	{ "xonxoff", TRANSPORT_FLOW_XONXOFF },
	{ "software", TRANSPORT_FLOW_XONXOFF },
};

/* Rates termios names; modems are specified at these. */
static const struct {
	int baud;
	speed_t speed;
} bauds[] = {
	{ 1200, B1200 },     { 2400, B2400 },     { 4800, B4800 },
	{ 9600, B9600 },     { 19200, B19200 },   { 38400, B38400 },
	{ 57600, B57600 },   { 115200, B115200 }, { 230400, B230400 },
	{ 460800, B460800 }, { 500000, B500000 }, { 576000, B576000 },
	{ 921600, B921600 }, { 1000000, B1000000 }, { 1152000, B1152000 },
	{ 1500000, B1500000 }, { 2000000, B2000000 }, { 2500000, B2500000 },
	{ 3000000, B3000000 }, { 3500000, B3500000 }, { 4000000, B4000000 },
};

/* Known modem AT ports by USB VID:PID and interface number (bInterfaceNumber).
 * A guess for --list-ports only: the daemon opens whatever is configured. */
static const struct {
	uint16_t vid, pid;
	int iface;
	const char *what;
} at_ports[] = {
	/* Quectel EC25/EG25-G: if0 DM, if1 NMEA, if2 AT, if3 PPP (AT too) */
	{ 0x2c7c, 0x0125, 2, "Quectel EC25/EG25 AT port" },
	{ 0x2c7c, 0x0125, 3, "Quectel EC25/EG25 modem port (PPP, answers AT)" },
	{ 0x2c7c, 0x0121, 2, "Quectel EC21 AT port" },
	{ 0x2c7c, 0x0195, 2, "Quectel EG95 AT port" },
	{ 0x2c7c, 0x0296, 2, "Quectel BG96 AT port" },
	{ 0x2c7c, 0x0306, 2, "Quectel EP06/EG06 AT port" },
	{ 0x2c7c, 0x0800, 2, "Quectel RM500Q AT port" },
	/* SIMCom SIM7600/SIM7100: if0 diag, if1 NMEA, if2 AT, if3 PPP (AT) */
	{ 0x1e0e, 0x9001, 2, "SIMCom SIM7600 AT port" },
	{ 0x1e0e, 0x9001, 3, "SIMCom SIM7600 modem port (PPP, answers AT)" },
	/* Huawei E169/E17x (1001), E3372 stick/E398 (1506): if0 modem (PPP,
	 * answers AT), if2 PCUI (the AT port to prefer) */
	{ 0x12d1, 0x1001, 2, "Huawei E17x PCUI AT port" },
	{ 0x12d1, 0x1001, 0, "Huawei E17x modem port (PPP, answers AT)" },
	{ 0x12d1, 0x1506, 2, "Huawei E3372/E398 PCUI AT port" },
	{ 0x12d1, 0x1506, 0, "Huawei E3372/E398 modem port (PPP, answers AT)" },
	{ 0x12d1, 0x1436, 0, "Huawei E173/E1750 modem port (answers AT)" },
};

int transport_flow_parse(const char *name, enum transport_flow *out)
{
	for (size_t i = 0;
	     name && i < sizeof(flow_names) / sizeof(flow_names[0]); i++) {
		if (strcasecmp(name, flow_names[i].name) == 0) {
			*out = flow_names[i].flow;
			return 0;
		}
	}
	return -EINVAL;
}

const char *transport_flow_name(enum transport_flow flow)
{
	for (size_t i = 0; i < sizeof(flow_names) / sizeof(flow_names[0]); i++)
		if (flow_names[i].flow == flow)
			return flow_names[i].name;
	return "unknown";
}

static int baud_speed(int baud, speed_t *speed)
{
	for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++) {
		if (bauds[i].baud == baud) {
			*speed = bauds[i].speed;
			return 0;
		}
	}
	return -EINVAL;
}

bool transport_baud_valid(int baud)
{
	speed_t s;

	return baud_speed(baud, &s) == 0;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes the message to err (when given) and returns rc. */
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* --- usb:VID:PID[:SERIAL] ------------------------------------------------- */

struct usb_spec {
	int vid, pid;
	const char *serial; /* points into the spec; NULL: any */
};

/* Parses one 1..4 digit hex field ending at ':' or NUL. */
static const char *parse_hex16(const char *s, int *out)
{
	char *end;
	unsigned long v;

	if (*s == '\0' || !strchr("0123456789abcdefABCDEF", *s))
		return NULL;
	errno = 0;
	v = strtoul(s, &end, 16);
	if (errno || end - s > 4 || (*end != ':' && *end != '\0'))
		return NULL;
	*out = (int)v;
	return end;
}

static int usb_spec_parse(const char *spec, struct usb_spec *u, char *err,
			  size_t errlen)
{
	const char *p = spec + 4;

	p = parse_hex16(p, &u->vid);
	if (p && *p == ':')
		p = parse_hex16(p + 1, &u->pid);
	else
		p = NULL;
	if (!p)
		return fail(err, errlen, -EINVAL,
			    "%s: expected usb:VID:PID[:SERIAL] with hex "
			    "VID and PID (e.g. usb:2c7c:0125)", spec);
	u->serial = NULL;
	if (*p == ':') {
		if (p[1] == '\0')
			return fail(err, errlen, -EINVAL,
				    "%s: empty serial after the last ':'",
				    spec);
		u->serial = p + 1;
	}
	return 0;
}

/* The USB interface number of a tty from sysfs, or -1. ttyACM nodes hang
 * off the interface itself; usb-serial (ttyUSB) nodes one level below. */
static int usb_iface_of(const char *devpath)
{
	static const char *const rel[] = { "device/bInterfaceNumber",
					   "device/../bInterfaceNumber" };
	const char *base = strrchr(devpath, '/');
	char p[PATH_MAX];
	unsigned v;

	base = base ? base + 1 : devpath;
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		FILE *f;
		int n;

		snprintf(p, sizeof(p), "/sys/class/tty/%s/%s", base, rel[i]);
		f = fopen(p, "re");
		if (!f)
			continue;
		n = fscanf(f, "%x", &v);
		fclose(f);
		if (n == 1)
			return (int)v;
	}
	return -1;
}

static bool usb_port_matches(struct sp_port *p, const struct usb_spec *u)
{
	const char *serial;
	int vid, pid;

	if (sp_get_port_transport(p) != SP_TRANSPORT_USB ||
	    sp_get_port_usb_vid_pid(p, &vid, &pid) != SP_OK)
		return false;
	if (vid != u->vid || pid != u->pid)
		return false;
	serial = sp_get_port_usb_serial(p);
	return !u->serial || (serial && strcmp(serial, u->serial) == 0);
}

/* Resolves a usb: spec to a /dev path: among matching ports the one our
 * table calls an AT port, else the first by name (a multi-port modem's
 * interface 0 is usually a diagnostics port, so the table matters). */
static int usb_resolve(const char *spec, char *path, size_t pathlen,
		       char *err, size_t errlen)
{
	struct sp_port **list = NULL;
	struct usb_spec u;
	const char *best = NULL;
	bool best_at = false;
	int rc = usb_spec_parse(spec, &u, err, errlen);

	if (rc)
		return rc;
	if (sp_list_ports(&list) != SP_OK)
		return fail(err, errlen, -EIO, "%s: cannot list serial ports",
			    spec);
	for (size_t i = 0; list[i]; i++) {
		const char *name = sp_get_port_name(list[i]);
		bool at;

		if (!usb_port_matches(list[i], &u))
			continue;
		at = transport_guess_at_port(u.vid, u.pid, usb_iface_of(name),
					     NULL) != NULL;
		if (!best || (at && !best_at) ||
		    (at == best_at && strcmp(name, best) < 0)) {
			best = name;
			best_at = at;
		}
	}
	if (best)
		snprintf(path, pathlen, "%s", best);
	sp_free_port_list(list);
	if (!best)
		return fail(err, errlen, -ENOENT,
			    "%s: no USB serial port with that VID:PID%s", spec,
			    u.serial ? " and serial" : "");
	return 0;
}

/* --- opening -------------------------------------------------------------- */

/* Takes the port for us alone: flock (holds against root too, and against
 * a second open in this process) then TIOCEXCL (refuses other openers). */
static int lock_port(struct transport *t, char *err, size_t errlen)
{
	if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return fail(err, errlen, -EBUSY,
				    "%s: port is in use by another process "
				    "(another smsgwd?)", t->path);
		return fail(err, errlen, -errno, "%s: flock: %s", t->path,
			    strerror(errno));
	}
	if (ioctl(t->fd, TIOCEXCL) < 0)
		return fail(err, errlen, -errno, "%s: TIOCEXCL: %s", t->path,
			    strerror(errno));
	t->excl = true;
	return 0;
}

/* Raw 8N1 at `speed` with `flow`, for ptys (and anything libserialport
 * refused that is still a tty). */
static int termios_setup(int fd, speed_t speed, enum transport_flow flow)
{
	struct termios tio;

	if (tcgetattr(fd, &tio) < 0)
		return -errno;
	cfmakeraw(&tio);
	tio.c_cflag |= CLOCAL | CREAD;
	tio.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS);
	tio.c_iflag &= ~(IXON | IXOFF | IXANY);
	if (flow == TRANSPORT_FLOW_RTSCTS)
		tio.c_cflag |= CRTSCTS;
	else if (flow == TRANSPORT_FLOW_XONXOFF)
		tio.c_iflag |= IXON | IXOFF;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (cfsetspeed(&tio, speed) < 0 || tcsetattr(fd, TCSANOW, &tio) < 0)
		return -errno;
	return 0;
}

static int open_termios(struct transport *t, speed_t speed,
			enum transport_flow flow, char *err, size_t errlen)
{
	int rc;

	t->fd = open(t->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		if (errno == EBUSY)
			return fail(err, errlen, -EBUSY,
				    "%s: port is in use by another process",
				    t->path);
		return fail(err, errlen, -errno, "%s: %s", t->path,
			    strerror(errno));
	}
	if (!isatty(t->fd))
		return fail(err, errlen, -ENOTTY, "%s: not a terminal",
			    t->path);
	rc = lock_port(t, err, errlen);
	if (rc)
		return rc;
	rc = termios_setup(t->fd, speed, flow);
	if (rc)
		return fail(err, errlen, rc, "%s: cannot set up the port: %s",
			    t->path, strerror(-rc));
	return 0;
}

static const enum sp_flowcontrol sp_flows[] = {
	[TRANSPORT_FLOW_NONE] = SP_FLOWCONTROL_NONE,
	[TRANSPORT_FLOW_RTSCTS] = SP_FLOWCONTROL_RTSCTS,
	[TRANSPORT_FLOW_XONXOFF] = SP_FLOWCONTROL_XONXOFF,
};

/* 8N1, baud, flow control and DTR on (some modems ignore AT without it). */
static int sp_setup(struct sp_port *sp, int baud, enum transport_flow flow)
{
	if (sp_set_baudrate(sp, baud) != SP_OK || sp_set_bits(sp, 8) != SP_OK ||
	    sp_set_parity(sp, SP_PARITY_NONE) != SP_OK ||
	    sp_set_stopbits(sp, 1) != SP_OK ||
	    sp_set_flowcontrol(sp, sp_flows[flow]) != SP_OK)
		return -EIO;
	if (flow != TRANSPORT_FLOW_RTSCTS)
		sp_set_rts(sp, SP_RTS_ON);
	sp_set_dtr(sp, SP_DTR_ON);
	return 0;
}

/* Opens a real serial port with libserialport. Returns 0, -ENOTSUP when
 * libserialport will not take the path (the caller falls back to
 * termios), or another -errno with err set. */
static int open_sp(struct transport *t, int baud, enum transport_flow flow,
		   char *err, size_t errlen)
{
	int fl, rc;

	if (sp_get_port_by_name(t->path, &t->sp) != SP_OK) {
		t->sp = NULL;
		return -ENOTSUP;
	}
	errno = 0;
	if (sp_open(t->sp, SP_MODE_READ_WRITE) != SP_OK) {
		rc = errno ? -errno : -EIO;
		sp_free_port(t->sp);
		t->sp = NULL;
		if (rc == -EBUSY)
			return fail(err, errlen, -EBUSY,
				    "%s: port is in use by another process",
				    t->path);
		if (rc == -ENOENT || rc == -EACCES || rc == -ENODEV)
			return fail(err, errlen, rc, "%s: %s", t->path,
				    strerror(-rc));
		return -ENOTSUP;
	}
	if (sp_get_port_handle(t->sp, &t->fd) != SP_OK)
		return fail(err, errlen, -EIO, "%s: no fd", t->path);
	fl = fcntl(t->fd, F_GETFL);
	if (fl < 0 || fcntl(t->fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(t->fd, F_SETFD, FD_CLOEXEC) < 0)
		return fail(err, errlen, -errno, "%s: fcntl: %s", t->path,
			    strerror(errno));
	rc = lock_port(t, err, errlen);
	if (rc)
		return rc;
	if (sp_setup(t->sp, baud, flow)) {
		char *why = sp_last_error_message();

		rc = fail(err, errlen, -EIO,
			  "%s: cannot set %d baud 8N1 flow %s: %s", t->path,
			  baud, transport_flow_name(flow), why ? why : "?");
		sp_free_error_message(why);
		return rc;
	}
	return 0;
}

/* Ptys go straight to termios: libserialport 0.1.1 cannot open them. */
static bool is_pty_path(const char *path)
{
	char real[PATH_MAX];

	return realpath(path, real) && strncmp(real, "/dev/pts/", 9) == 0;
}

int transport_open(const char *device, int baud, enum transport_flow flow,
		   struct transport **out, char *err, size_t errlen)
{
	struct transport *t;
	speed_t speed;
	int rc = transport_device_check(device, err, errlen);

	if (rc)
		return rc;
	baud = baud ? baud : TRANSPORT_DEFAULT_BAUD;
	if (baud_speed(baud, &speed))
		return fail(err, errlen, -EINVAL, "%s: unsupported baud %d",
			    device, baud);
	if ((unsigned)flow >= sizeof(sp_flows) / sizeof(sp_flows[0]))
		return fail(err, errlen, -EINVAL, "%s: bad flow control %d",
			    device, (int)flow);
	t = calloc(1, sizeof(*t));
	if (!t)
		return fail(err, errlen, -ENOMEM, "%s: out of memory", device);
	t->fd = -1;
	if (strncmp(device, "usb:", 4) == 0)
		rc = usb_resolve(device, t->path, sizeof(t->path), err, errlen);
	else
		snprintf(t->path, sizeof(t->path), "%s", device);
	if (rc == 0)
		rc = is_pty_path(t->path) ? -ENOTSUP :
			open_sp(t, baud, flow, err, errlen);
	if (rc == -ENOTSUP)
		rc = open_termios(t, speed, flow, err, errlen);
	if (rc) {
		transport_close(t);
		return rc;
	}
	*out = t;
	return 0;
}

int transport_device_check(const char *device, char *err, size_t errlen)
{
	struct usb_spec u;

	if (!device || !*device)
		return fail(err, errlen, -EINVAL, "no device given");
	if (strncmp(device, "usb:", 4) == 0)
		return usb_spec_parse(device, &u, err, errlen);
	return 0;
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	/* TIOCEXCL outlives our fd while anyone else holds the tty open (the
	 * simulator keeps its slave end): clear it, or our own re-open after
	 * a reset would be refused. Only ours: a refused open must not undo
	 * the exclusivity of the process that holds the port. */
	if (t->excl)
		ioctl(t->fd, TIOCNXCL);
	if (t->sp) {
		/* sp_close closes the fd (and so drops the flock). */
		sp_close(t->sp);
		sp_free_port(t->sp);
	} else if (t->fd >= 0) {
		close(t->fd);
	}
	free(t);
}

int transport_fd(const struct transport *t)
{
	return t->fd;
}

const char *transport_path(const struct transport *t)
{
	return t->path;
}

bool transport_is_pty(const struct transport *t)
{
	return t->sp == NULL;
}

/* --- listing -------------------------------------------------------------- */

const char *transport_guess_at_port(int vid, int pid, int iface,
				    const char *product)
{
	for (size_t i = 0; i < sizeof(at_ports) / sizeof(at_ports[0]); i++)
		if (at_ports[i].vid == vid && at_ports[i].pid == pid &&
		    at_ports[i].iface == iface)
			return at_ports[i].what;
	if (product && strcasestr(product, "modem"))
		return "USB serial whose product name says modem";
	return NULL;
}

static const char *str_or(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

static void list_one(FILE *out, struct sp_port *p)
{
	const char *name = sp_get_port_name(p);
	const char *guess = NULL;
	int vid, pid, iface;

	fprintf(out, "%s\n  description: %s\n", name,
		str_or(sp_get_port_description(p), "-"));
	if (sp_get_port_transport(p) != SP_TRANSPORT_USB ||
	    sp_get_port_usb_vid_pid(p, &vid, &pid) != SP_OK) {
		fprintf(out, "  transport: %s\n  AT port: unknown\n",
			sp_get_port_transport(p) == SP_TRANSPORT_BLUETOOTH ?
				"bluetooth" : "native");
		return;
	}
	iface = usb_iface_of(name);
	guess = transport_guess_at_port(vid, pid, iface,
					sp_get_port_usb_product(p));
	fprintf(out, "  usb: %04x:%04x interface %d serial %s\n", vid, pid,
		iface, str_or(sp_get_port_usb_serial(p), "-"));
	fprintf(out, "  manufacturer: %s\n  product: %s\n",
		str_or(sp_get_port_usb_manufacturer(p), "-"),
		str_or(sp_get_port_usb_product(p), "-"));
	fprintf(out, "  AT port: %s%s\n", guess ? "likely: " : "unlikely",
		guess ? guess : "");
	fprintf(out, "  config: device = usb:%04x:%04x%s%s\n", vid, pid,
		sp_get_port_usb_serial(p) ? ":" : "",
		str_or(sp_get_port_usb_serial(p), ""));
}

int transport_list_ports(FILE *out)
{
	struct sp_port **list = NULL;
	int n = 0;

	if (sp_list_ports(&list) != SP_OK)
		return -EIO;
	for (; list[n]; n++)
		list_one(out, list[n]);
	if (n == 0)
		fprintf(out, "no serial ports found\n");
	sp_free_port_list(list);
	return n;
}
