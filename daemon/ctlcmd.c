/* ctlcmd — see ctlcmd.h.
 *
 * Flow: global options -> the longest command name matching argv's first
 * words (the table) -> the command's options and positional arguments ->
 * its runner: by default build args, send one request, show the result.
 * Output sanitizes what the server sends (an SMS text may carry terminal
 * escape sequences): control characters never reach the terminal raw.
 */
#include "daemon/ctlcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "daemon/csv.h"
#include "daemon/ctl.h"
#include "daemon/ctlclient.h"
#include "daemon/version.h"

#define CMD_POS_MAX 3
#define CMD_OPTS_MAX 4
#define SECRET_MAX 1024       /* bytes of a password or code, with NUL */
#define FILE_MAX (64u << 20)  /* invite --file */
#define PHONE_MAX_BYTES 64
#define NAME_MAX_BYTES 1000
#define MAX_PAGES 100000      /* bound on following `next` */
#define TEXT_COL_MAX 40       /* an SMS text in a table */
#define FAILURES_SHOWN 50     /* failed rows of invite --file printed */
#define ERR_MAX 256

struct ctx;

/* Args for the command's op from its arguments; NULL with a usage
 * message in err. */
typedef json_t *build_fn(const struct ctx *x, char *err, size_t errlen);
typedef void show_fn(const struct ctx *x, json_t *result);
/* Runs the whole command; returns the exit status. */
typedef int run_fn(struct ctx *x);

struct cmd {
	const char *name;       /* its words: "sms show" */
	const char *args;       /* usage of the rest: "ID" */
	const char *help;       /* one line */
	unsigned min_pos, max_pos;
	const char *opts[CMD_OPTS_MAX]; /* "--name=" takes a value */
	const char *op;
	build_fn *build;        /* NULL: no args */
	show_fn *show;          /* NULL: "key: value" lines */
	run_fn *run;            /* NULL: one request, shown */
	const char *list_key;   /* paged commands: the array of each page */
};

struct ctx {
	const struct ctlcmd_io *io;
	const char *socket;
	bool json;
	int timeout_ms;
	struct ctlc *conn;      /* opened on first use */
	const struct cmd *cmd;
	const char *pos[CMD_POS_MAX];
	unsigned npos;
	const char *opt[CMD_OPTS_MAX]; /* by index in cmd->opts; flags: "" */
};

/* One column of a table: the key in each row object, its header, and
 * how many characters of a value it shows (0: all). */
struct col {
	const char *key;
	const char *head;
	size_t max;
};

static const struct cmd cmds[];
static const size_t ncmds;

/* --- output helpers -------------------------------------------------------- */

static void msg(const struct ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void msg(const struct ctx *x, const char *fmt, ...)
{
	va_list ap;

	fputs("smsgwctl: ", x->io->err);
	va_start(ap, fmt);
	vfprintf(x->io->err, fmt, ap);
	va_end(ap);
	fputc('\n', x->io->err);
}

static void print_json(const struct ctx *x, const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (s) {
		fprintf(x->io->out, "%s\n", s);
		free(s);
	}
	fflush(x->io->out);
}

/* Copies s for display: control characters (C0, DEL and the UTF-8 C1
 * range) become '?' or a space, and at most maxcp code points are kept
 * ("..." marks a cut; 0: no limit). */
static char *clean_text(const char *s, size_t maxcp)
{
	size_t n = strlen(s), cp = 0, o = 0;
	char *out = malloc(n + 4);
	const unsigned char *p = (const unsigned char *)s;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool lead = (p[i] & 0xc0) != 0x80;

		if (lead && maxcp && cp == maxcp) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		cp += lead;
		if (p[i] == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 &&
		    p[i + 1] <= 0x9f) {
			out[o++] = '?';
			i++;
		} else if (p[i] == '\n' || p[i] == '\t' || p[i] == '\r') {
			out[o++] = ' ';
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			out[o++] = '?';
		} else {
			out[o++] = (char)p[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* A value as text for tables and "key: value" lines (malloc'ed). */
static char *val_text(const json_t *v, size_t maxcp)
{
	char buf[64];
	char *dump, *s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return clean_text(json_string_value(v), maxcp);
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return strdup(buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		return strdup(buf);
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	case JSON_NULL:
		return strdup("-");
	default:
		dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		s = clean_text(dump ? dump : "?", maxcp);
		free(dump);
		return s;
	}
}

/* Display width in code points (good enough for alignment). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void pad(FILE *out, size_t n)
{
	while (n-- > 0)
		fputc(' ', out);
}

/* "key: value" lines, aligned, for each member of obj not in skip. */
static void print_kv(FILE *out, json_t *obj, const char *skip)
{
	size_t kw = 0;
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if ((!skip || strcmp(key, skip) != 0) && width(key) > kw)
			kw = width(key);
	}
	json_object_foreach(obj, key, v) {
		char *t;

		if (skip && strcmp(key, skip) == 0)
			continue;
		t = val_text(v, 0);
		fprintf(out, "%s:", key);
		pad(out, kw - width(key) + 1);
		fprintf(out, "%s\n", t ? t : "?");
		free(t);
	}
}

/* Fills cells[r * ncols + c] and the column widths. */
static char **table_cells(json_t *rows, const struct col *cols, size_t ncols,
			  size_t *w)
{
	size_t nrows = json_array_size(rows);
	char **cells = calloc(nrows * ncols + 1, sizeof(*cells));

	if (!cells)
		return NULL;
	for (size_t c = 0; c < ncols; c++)
		w[c] = width(cols[c].head);
	for (size_t r = 0; r < nrows; r++) {
		json_t *row = json_array_get(rows, r);

		for (size_t c = 0; c < ncols; c++) {
			const json_t *v = json_object_get(row, cols[c].key);
			char *t = v ? val_text(v, cols[c].max) : strdup("-");

			cells[r * ncols + c] = t;
			if (t && width(t) > w[c])
				w[c] = width(t);
		}
	}
	return cells;
}

static void table_row(FILE *out, const char *const *cell, size_t ncols,
		      const size_t *w)
{
	for (size_t c = 0; c < ncols; c++) {
		const char *t = cell[c] ? cell[c] : "?";

		fputs(t, out);
		if (c + 1 < ncols)
			pad(out, w[c] - width(t) + 2);
	}
	fputc('\n', out);
}

/* An aligned table of rows (objects), one column per col. */
static void print_table(FILE *out, json_t *rows, const struct col *cols,
			size_t ncols)
{
	size_t nrows = json_array_size(rows), w[16];
	const char *heads[16];
	char **cells;

	if (nrows == 0) {
		fputs("(none)\n", out);
		return;
	}
	if (ncols > 16)
		ncols = 16;
	cells = table_cells(rows, cols, ncols, w);
	if (!cells)
		return;
	for (size_t c = 0; c < ncols; c++)
		heads[c] = cols[c].head;
	table_row(out, heads, ncols, w);
	for (size_t r = 0; r < nrows; r++)
		table_row(out, (const char *const *)cells + r * ncols, ncols, w);
	for (size_t i = 0; i < nrows * ncols; i++)
		free(cells[i]);
	free(cells);
}

/* --- result formatters --------------------------------------------------- */

static const struct col account_cols[] = {
	{ "id", "ID", 0 }, { "phone", "PHONE", 0 }, { "name", "NAME", 0 },
	{ "state", "STATE", 0 }, { "created_at", "CREATED", 0 },
	{ "claimed_at", "CLAIMED", 0 },
};

static const struct col sms_cols[] = {
	{ "id", "ID", 0 }, { "direction", "DIR", 0 }, { "peer", "PEER", 0 },
	{ "status", "STATUS", 0 }, { "created_at", "CREATED", 0 },
	{ "text", "TEXT", TEXT_COL_MAX },
};

static const struct col part_cols[] = {
	{ "seq", "PART", 0 }, { "status", "STATUS", 0 }, { "mr", "MR", 0 },
	{ "modem", "MODEM", 0 }, { "error", "ERROR", 0 },
};

static const struct col modem_cols[] = {
	{ "name", "NAME", 0 }, { "state", "STATE", 0 }, { "model", "MODEL", 0 },
	{ "operator", "OPERATOR", 0 }, { "signal", "SIGNAL", 0 },
	{ "registered", "REGISTERED", 0 }, { "sent", "SENT", 0 },
	{ "failed", "FAILED", 0 },
};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static void show_kv(const struct ctx *x, json_t *result)
{
	print_kv(x->io->out, result, NULL);
}

static void show_ping(const struct ctx *x, json_t *result)
{
	const char *v = json_string_value(json_object_get(result, "version"));
	char *t = clean_text(v ? v : "?", 32);

	fprintf(x->io->out, "smsgwd %s (smsgwctl %s)\n", t ? t : "?",
		SMSGW_VERSION);
	free(t);
}

/* The account, then whatever else came with it (sms_id). */
static void show_account(const struct ctx *x, json_t *result)
{
	json_t *acc = json_object_get(result, "account");

	if (!json_is_object(acc)) {
		print_kv(x->io->out, result, NULL);
		return;
	}
	print_kv(x->io->out, acc, NULL);
	print_kv(x->io->out, result, "account");
}

static void show_list(const struct ctx *x, json_t *result)
{
	json_t *rows = json_object_get(result, x->cmd->list_key);
	struct col cols[16];
	size_t n = 0;
	const char *key;
	json_t *row, *v;
	size_t i;

	if (strcmp(x->cmd->list_key, "accounts") == 0) {
		print_table(x->io->out, rows, account_cols,
			    NCOLS(account_cols));
		return;
	}
	if (strcmp(x->cmd->list_key, "sms") == 0) {
		print_table(x->io->out, rows, sms_cols, NCOLS(sms_cols));
		return;
	}
	/* Anything else (audit entries): the keys, in order of appearance. */
	json_array_foreach(rows, i, row) {
		json_object_foreach(row, key, v) {
			size_t k = 0;

			while (k < n && strcmp(cols[k].key, key) != 0)
				k++;
			if (k == n && n < NCOLS(cols))
				cols[n++] = (struct col){ key, key,
							  TEXT_COL_MAX };
		}
	}
	print_table(x->io->out, rows, cols, n);
}

static void show_modems(const struct ctx *x, json_t *result)
{
	print_table(x->io->out, json_object_get(result, "modems"), modem_cols,
		    NCOLS(modem_cols));
}

static void show_sms(const struct ctx *x, json_t *result)
{
	json_t *sms = json_object_get(result, "sms");

	if (!json_is_object(sms))
		sms = result;
	print_kv(x->io->out, sms, "parts");
	if (json_is_array(json_object_get(sms, "parts"))) {
		fputc('\n', x->io->out);
		print_table(x->io->out, json_object_get(sms, "parts"),
			    part_cols, NCOLS(part_cols));
	}
}

static void show_send(const struct ctx *x, json_t *result)
{
	char *id = val_text(json_object_get(result, "sms_id"), 0);
	char *parts = val_text(json_object_get(result, "parts"), 0);

	if (id && parts)
		fprintf(x->io->out, "queued sms %s (%s part%s)\n", id, parts,
			strcmp(parts, "1") == 0 ? "" : "s");
	free(id);
	free(parts);
}

static void show_code(const struct ctx *x, json_t *result)
{
	const char *code = json_string_value(json_object_get(result, "code"));

	fprintf(x->io->out, "%s\n", code ? code : "?");
	fprintf(x->io->err, "It works once and replaces any earlier code. "
		"Keep it safe.\n");
}

static void show_result(const struct ctx *x, json_t *result)
{
	if (x->json)
		print_json(x, result);
	else if (x->cmd->show)
		x->cmd->show(x, result);
	else
		show_kv(x, result);
	fflush(x->io->out);
}

/* --- requests ------------------------------------------------------------- */

static int connect_once(struct ctx *x)
{
	char err[ERR_MAX];

	if (x->conn)
		return 0;
	x->conn = ctlc_open(x->socket, x->timeout_ms, err, sizeof(err));
	if (!x->conn) {
		msg(x, "%s", err);
		return -1;
	}
	return 0;
}

/* Sends op (args stolen) and waits. Returns 0 with resp holding the
 * answer (ok), 1 refused, 2 no connection or answer; messages printed. */
static int call(struct ctx *x, const char *op, json_t *args,
		struct ctlc_resp *resp)
{
	int r;

	if (connect_once(x) < 0) {
		json_decref(args);
		return 2;
	}
	r = ctlc_call(x->conn, op, args, x->timeout_ms, resp);
	if (r < 0) {
		msg(x, "%s: %s", x->socket, ctlc_strerror(r));
		return 2;
	}
	if (!resp->ok) {
		msg(x, "%s: %s", resp->code, resp->message);
		ctlc_resp_clear(resp);
		return 1;
	}
	return 0;
}

static int request_show(struct ctx *x, const char *op, json_t *args)
{
	struct ctlc_resp resp;
	int st = call(x, op, args, &resp);

	if (st == 0) {
		show_result(x, resp.result);
		ctlc_resp_clear(&resp);
	}
	return st;
}

static int usage_error(const struct ctx *x, const char *why)
{
	msg(x, "%s", why);
	if (x->cmd)
		fprintf(x->io->err, "usage: smsgwctl %s%s%s\n", x->cmd->name,
			x->cmd->args[0] ? " " : "", x->cmd->args);
	else
		fprintf(x->io->err, "try: smsgwctl help\n");
	return 2;
}

static json_t *build_args(const struct ctx *x, int *st)
{
	char err[ERR_MAX] = "";
	json_t *args;

	*st = 0;
	if (!x->cmd->build)
		return NULL;
	args = x->cmd->build(x, err, sizeof(err));
	if (!args)
		*st = usage_error(x, err);
	return args;
}

static int run_single(struct ctx *x)
{
	int st;
	json_t *args = build_args(x, &st);

	if (st)
		return st;
	return request_show(x, x->cmd->op, args);
}

/* --- argument builders ------------------------------------------------------ */

static const char *opt(const struct ctx *x, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < CMD_OPTS_MAX && x->cmd->opts[i]; i++)
		if (strncmp(x->cmd->opts[i], name, n) == 0 &&
		    (x->cmd->opts[i][n] == '\0' || x->cmd->opts[i][n] == '='))
			return x->opt[i];
	return NULL;
}

static json_t *build_phone(const struct ctx *x, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return json_pack("{s:s}", "phone", x->pos[0]);
}

static json_t *build_token(const struct ctx *x, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return json_pack("{s:s}", "token", x->pos[0]);
}

static json_t *build_invite(const struct ctx *x, char *err, size_t errlen)
{
	const char *name = opt(x, "--name");
	json_t *a;

	if (x->npos != 1) {
		snprintf(err, errlen, "invite needs a PHONE (or --file FILE)");
		return NULL;
	}
	a = json_pack("{s:s}", "phone", x->pos[0]);
	if (a && name)
		json_object_set_new(a, "name", json_string(name));
	return a;
}

static json_t *build_update(const struct ctx *x, char *err, size_t errlen)
{
	const char *name = opt(x, "--name");

	if (!name) {
		snprintf(err, errlen, "nothing to update: give --name NAME");
		return NULL;
	}
	return json_pack("{s:s, s:s}", "phone", x->pos[0], "name", name);
}

static json_t *build_send(const struct ctx *x, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return json_pack("{s:s, s:s}", "to", x->pos[0], "text", x->pos[1]);
}

/* A number when it is one, else the string as given. */
static json_t *number_or_string(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s && *end == '\0' && errno == 0)
		return json_integer(v);
	return json_string(s);
}

static json_t *build_sms_id(const struct ctx *x, char *err, size_t errlen)
{
	json_t *id = number_or_string(x->pos[0]);

	(void)err;
	(void)errlen;
	return id ? json_pack("{s:o}", "id", id) : NULL;
}

/* settings set KEY VALUE: yes/no words become booleans, digits numbers. */
static json_t *build_setting(const struct ctx *x, char *err, size_t errlen)
{
	static const struct {
		const char *word;
		bool val;
	} words[] = {
		{ "true", true },   { "yes", true }, { "on", true },
		{ "false", false }, { "no", false }, { "off", false },
	};
	json_t *v = NULL;

	for (size_t i = 0; i < NCOLS(words) && !v; i++)
		if (strcasecmp(x->pos[1], words[i].word) == 0)
			v = json_boolean(words[i].val);
	if (!v)
		v = number_or_string(x->pos[1]);
	if (!v) {
		snprintf(err, errlen, "VALUE is not valid UTF-8");
		return NULL;
	}
	return json_pack("{s:o}", x->pos[0], v);
}

static json_t *build_accounts(const struct ctx *x, char *err, size_t errlen)
{
	const char *state = opt(x, "--state");
	json_t *a = json_pack("{s:i}", "limit", CTLCMD_PAGE);

	(void)err;
	(void)errlen;
	if (a && state)
		json_object_set_new(a, "state", json_string(state));
	return a;
}

static json_t *build_sms_list(const struct ctx *x, char *err, size_t errlen)
{
	bool in = opt(x, "--in") != NULL, out = opt(x, "--out") != NULL;

	if (in && out) {
		snprintf(err, errlen, "--in and --out exclude each other");
		return NULL;
	}
	return json_pack("{s:s, s:i}", "direction", in ? "in" : "out", "limit",
			 CTLCMD_PAGE);
}

static json_t *build_page(const struct ctx *x, char *err, size_t errlen)
{
	(void)x;
	(void)err;
	(void)errlen;
	return json_pack("{s:i}", "limit", CTLCMD_PAGE);
}

/* --- paged lists ------------------------------------------------------------ */

/* --limit N: the most rows wanted (0: all). -1 if malformed. */
static long long row_limit(const struct ctx *x)
{
	const char *s = opt(x, "--limit");
	char *end;
	long long v;

	if (!s)
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	return (*s && *end == '\0' && errno == 0 && v > 0) ? v : -1;
}

/* Appends one page's rows to all; returns its `next` (borrowed) or NULL
 * when this was the last page. */
static json_t *take_page(const struct ctx *x, json_t *result, json_t *all)
{
	json_t *rows = json_object_get(result, x->cmd->list_key);
	json_t *next = json_object_get(result, "next");

	json_array_extend(all, json_is_array(rows) ? rows : NULL);
	if (!json_is_array(rows) || json_array_size(rows) == 0 ||
	    json_is_null(next))
		return NULL;
	return next;
}

/* Asks page after page (following `next`) and shows them as one list. */
static int run_paged(struct ctx *x)
{
	long long max = row_limit(x);
	json_t *args, *all = json_array(), *next;
	struct ctlc_resp resp;
	int st = 0;

	if (max < 0) {
		json_decref(all);
		return usage_error(x, "--limit needs a positive number");
	}
	args = build_args(x, &st);
	for (int page = 0; st == 0 && page < MAX_PAGES; page++) {
		long long left = max ? max - (long long)json_array_size(all) : 0;

		if (max && left <= 0)
			break;
		json_object_set_new(args, "limit", json_integer(
			max && left < CTLCMD_PAGE ? left : CTLCMD_PAGE));
		st = call(x, x->cmd->op, json_incref(args), &resp);
		if (st)
			break;
		next = take_page(x, resp.result, all);
		/* A cursor that does not move would loop: stop there. */
		if (next && json_equal(next, json_object_get(args, "after")))
			next = NULL;
		if (next)
			json_object_set(args, "after", next);
		ctlc_resp_clear(&resp);
		if (!next)
			break;
	}
	if (st == 0) {
		json_t *merged = json_pack("{s:O}", x->cmd->list_key, all);

		show_result(x, merged);
		json_decref(merged);
	}
	json_decref(args);
	json_decref(all);
	return st;
}

/* --- secrets ------------------------------------------------------------------ */

/* The terminal to restore if a signal comes while echo is off. */
static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;

static void tty_signal(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSANOW, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int tty_signals[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP };

static void tty_guard(bool on, struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NCOLS(tty_signals); i++) {
		if (on)
			sigaction(tty_signals[i], &sa, &old[i]);
		else
			sigaction(tty_signals[i], &old[i], NULL);
	}
}

/* Reads one line from fd into buf (without the newline). */
static int read_line_fd(int fd, char *buf, size_t len)
{
	size_t n = 0;
	char ch;

	for (;;) {
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n ? (int)n : -ENODATA;
		if (ch == '\n')
			break;
		if (n + 1 >= len)
			return -E2BIG;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return (int)n;
}

/* Asks on /dev/tty; with echo off unless `echo`. */
static int ask_tty(const char *prompt, bool echo, char *buf, size_t len)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	struct sigaction old[NCOLS(tty_signals)];
	struct termios t;
	int r;

	if (fd < 0)
		return -errno;
	if (!echo && tcgetattr(fd, &tty_saved) == 0) {
		t = tty_saved;
		t.c_lflag &= ~(tcflag_t)ECHO;
		t.c_lflag |= ECHONL;
		tty_fd = fd;
		tty_guard(true, old);
		tcsetattr(fd, TCSAFLUSH, &t);
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		r = -errno;
	} else {
		r = read_line_fd(fd, buf, len);
	}
	if (tty_fd >= 0) {
		tcsetattr(fd, TCSAFLUSH, &tty_saved);
		tty_fd = -1;
		tty_guard(false, old);
	}
	close(fd);
	return r;
}

/* One answer: from the terminal, or the next line of io->in. */
static int ask(const struct ctx *x, const char *prompt, bool echo, char *buf,
	       size_t len)
{
	size_t n;

	if (x->io->tty)
		return ask_tty(prompt, echo, buf, len);
	if (!fgets(buf, (int)len, x->io->in))
		return -ENODATA;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(x->io->in))
		return -E2BIG;
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return (int)n;
}

/* A secret into buf; prints why not and returns the exit status. */
static int ask_secret(const struct ctx *x, const char *prompt, char *buf,
		      size_t len)
{
	int r = ask(x, prompt, false, buf, len);

	if (r >= 0)
		return 0;
	msg(x, "%s", r == -E2BIG ? "input too long"
		     : r == -ENODATA ? "no input"
				     : strerror(-r));
	return 2;
}

/* A new password, typed twice. */
static int ask_new_password(const struct ctx *x, char *pw, size_t len)
{
	char again[SECRET_MAX];
	int st = ask_secret(x, "New password: ", pw, len);

	if (st == 0)
		st = ask_secret(x, "Repeat the new password: ", again,
				sizeof(again));
	if (st == 0 && strcmp(pw, again) != 0) {
		msg(x, "the passwords do not match");
		st = 1;
	}
	explicit_bzero(again, sizeof(again));
	return st;
}

static int ask_yes_no(const struct ctx *x, const char *prompt, bool *yes)
{
	static const struct {
		const char *word;
		bool yes;
	} words[] = { { "y", true }, { "yes", true }, { "n", false },
		      { "no", false }, { "", false } };
	char line[32];

	for (int tries = 0; tries < 3; tries++) {
		if (ask(x, prompt, true, line, sizeof(line)) < 0)
			break;
		for (size_t i = 0; i < NCOLS(words); i++) {
			if (strcasecmp(line, words[i].word) == 0) {
				*yes = words[i].yes;
				return 0;
			}
		}
	}
	msg(x, "expected y or n");
	return 2;
}

static int run_claim(struct ctx *x)
{
	char pw[SECRET_MAX];
	json_t *args;
	int st;

	if (connect_once(x) < 0)
		return 2;
	st = ask_new_password(x, pw, sizeof(pw));
	args = st ? NULL : build_token(x, NULL, 0);
	if (args)
		json_object_set_new(args, "password", json_string(pw));
	explicit_bzero(pw, sizeof(pw));
	return st ? st : request_show(x, x->cmd->op, args);
}

static int run_password_op(struct ctx *x)
{
	char pw[SECRET_MAX];
	json_t *args;
	int st;

	if (connect_once(x) < 0)
		return 2;
	st = ask_secret(x, "Password: ", pw, sizeof(pw));
	args = st ? NULL : build_phone(x, NULL, 0);
	if (args)
		json_object_set_new(args, "password", json_string(pw));
	explicit_bzero(pw, sizeof(pw));
	return st ? st : request_show(x, x->cmd->op, args);
}

static int logout_choice(const struct ctx *x, bool *logout)
{
	bool on = opt(x, "--logout-others"), off = opt(x, "--keep-others");

	if (on && off) {
		msg(x, "--logout-others and --keep-others exclude each other");
		return 2;
	}
	if (on || off) {
		*logout = on;
		return 0;
	}
	return ask_yes_no(x, "Log out your other devices? [y/N] ", logout);
}

static int run_recover(struct ctx *x)
{
	char code[SECRET_MAX], pw[SECRET_MAX];
	bool logout = false;
	json_t *args = NULL;
	int st;

	if (connect_once(x) < 0)
		return 2;
	st = ask_secret(x, "Recovery code: ", code, sizeof(code));
	if (st == 0)
		st = ask_new_password(x, pw, sizeof(pw));
	if (st == 0)
		st = logout_choice(x, &logout);
	if (st == 0)
		args = json_pack("{s:s, s:s, s:s, s:b}", "phone", x->pos[0],
				 "code", code, "new_password", pw,
				 "logout_other_devices", logout);
	explicit_bzero(code, sizeof(code));
	explicit_bzero(pw, sizeof(pw));
	return st ? st : request_show(x, x->cmd->op, args);
}

/* --- watch ---------------------------------------------------------------------- */

static void show_event(const struct ctx *x, json_t *ev)
{
	const char *key;
	json_t *v;
	char stamp[16];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	fprintf(x->io->out, "%s", stamp);
	json_object_foreach(ev, key, v) {
		char *t = val_text(v, 0);

		if (strcmp(key, "event") == 0)
			fprintf(x->io->out, " %s", t ? t : "?");
		else
			fprintf(x->io->out, " %s=%s", key, t ? t : "?");
		free(t);
	}
	fputc('\n', x->io->out);
}

/* Subscribes, then prints events until interrupted (or --count N). */
static int run_watch(struct ctx *x)
{
	long long max = 0, seen = 0;
	const char *count = opt(x, "--count");
	struct ctlc_resp resp;
	json_t *ev;
	int st, r;

	if (count && (max = atoll(count)) <= 0)
		return usage_error(x, "--count needs a positive number");
	st = call(x, "events.subscribe", NULL, &resp);
	if (st)
		return st;
	ctlc_resp_clear(&resp);
	while (!max || seen < max) {
		r = ctlc_next(x->conn, -1, &ev);
		if (r < 0) {
			msg(x, "%s: %s", x->socket, ctlc_strerror(r));
			return 2;
		}
		if (json_is_string(json_object_get(ev, "event"))) {
			if (x->json)
				print_json(x, ev);
			else
				show_event(x, ev);
			fflush(x->io->out);
			seen++;
		}
		json_decref(ev);
	}
	return 0;
}

/* --- invite --file ----------------------------------------------------------------- */

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

static json_t *row_error(json_t *row, enum ctl_err code, const char *why)
{
	json_object_set_new(row, "error", ctl_error_object(code, "%s", why));
	return row;
}

/* One person from a CSV record. */
static json_t *person_row(const struct csv_record *rec, size_t pc,
			  long nc)
{
	char none[1] = "";
	char *phone = trim(pc < rec->n ? rec->fields[pc] : none);
	char *name = nc >= 0 && (size_t)nc < rec->n ? trim(rec->fields[nc])
						  : NULL;
	json_t *row = json_pack("{s:i}", "line", (int)rec->line), *pj, *nj;

	if (!row)
		return NULL;
	pj = json_string(phone);
	nj = name ? json_string(name) : NULL;
	json_object_set_new(row, "phone", pj ? pj : json_string("?"));
	if (nj && name[0])
		json_object_set(row, "name", nj);
	json_decref(nj);
	if (!pj || (name && !nj))
		return row_error(row, CTL_ERR_BAD_REQUEST, "not valid UTF-8");
	if (!phone[0])
		return row_error(row, CTL_ERR_INVALID_PHONE,
				 "empty phone number");
	if (strlen(phone) > PHONE_MAX_BYTES)
		return row_error(row, CTL_ERR_INVALID_PHONE,
				 "phone number too long");
	if (name && strlen(name) > NAME_MAX_BYTES)
		return row_error(row, CTL_ERR_BAD_REQUEST, "name too long");
	return row;
}

/* Finds the phone and name columns in the header record. */
static int header_cols(const struct csv_record *rec, size_t *pc, long *nc,
		       char *err, size_t errlen)
{
	bool have_phone = false;

	*nc = -1;
	for (size_t i = 0; i < rec->n; i++) {
		const char *f = trim(rec->fields[i]);

		if (strcasecmp(f, "phone") == 0 && !have_phone) {
			*pc = i;
			have_phone = true;
		} else if (strcasecmp(f, "name") == 0 && *nc < 0) {
			*nc = (long)i;
		}
	}
	if (!have_phone)
		snprintf(err, errlen, "line %u: the header has no phone column "
			 "(expected: phone,name)", rec->line);
	return have_phone ? 0 : -EINVAL;
}

json_t *ctlcmd_people_parse(const char *data, size_t len, char *err,
			    size_t errlen)
{
	struct csv_parser *p = csv_parser_new(data, len);
	json_t *people = json_array(), *row;
	struct csv_record rec;
	size_t pc = 0;
	long nc = -1;
	int r;

	if (!p || !people) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = csv_next(p, &rec);
	if (r == 0)
		snprintf(err, errlen, "empty file (expected a header: "
			 "phone,name)");
	if (r <= 0 || header_cols(&rec, &pc, &nc, err, errlen) < 0)
		goto fail_csv;
	while ((r = csv_next(p, &rec)) == 1) {
		row = person_row(&rec, pc, nc);
		if (!row || json_array_append_new(people, row) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	if (r == 0) {
		csv_parser_free(p);
		return people;
	}
fail_csv:
	if (r < 0)
		snprintf(err, errlen, "%s", csv_error(p));
fail:
	csv_parser_free(p);
	json_decref(people);
	return NULL;
}

json_t *ctlcmd_batch(json_t *people, size_t *pos, size_t max_rows,
		     size_t max_bytes, size_t *idx)
{
	json_t *list = json_array(), *row, *entry;
	size_t n = 0, bytes = 16, i; /* {"people":[]} */

	for (i = *pos; list && i < json_array_size(people) && n < max_rows;
	     i++) {
		size_t size;

		row = json_array_get(people, i);
		if (json_object_get(row, "error"))
			continue;
		entry = json_pack("{s:O}", "phone", json_object_get(row, "phone"));
		if (entry && json_object_get(row, "name"))
			json_object_set(entry, "name",
					json_object_get(row, "name"));
		size = entry ? json_dumpb(entry, NULL, 0, JSON_COMPACT) + 1 : 0;
		if (!entry || (n > 0 && bytes + size > max_bytes)) {
			json_decref(entry);
			break;
		}
		json_array_append_new(list, entry);
		idx[n++] = i;
		bytes += size;
	}
	*pos = i;
	if (n == 0) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:o}", "people", list);
}

static void progress(const struct ctx *x, size_t done, size_t total, bool end)
{
	const size_t w = 30;
	size_t fill = total ? done * w / total : w;

	if (!x->io->progress)
		return;
	fputs("\rinviting [", x->io->err);
	for (size_t i = 0; i < w; i++)
		fputc(i < fill ? '#' : '-', x->io->err);
	fprintf(x->io->err, "] %zu/%zu%s", done, total, end ? "\n" : "");
	fflush(x->io->err);
}

/* Marks every unsent row from `from` on as failed with the batch's
 * refusal. */
static void fail_rest(json_t *people, size_t from, const struct ctlc_resp *r)
{
	json_t *e = json_pack("{s:s, s:s}", "code", r->code, "message",
			      r->message);

	for (size_t i = from; i < json_array_size(people); i++) {
		json_t *row = json_array_get(people, i);

		if (!json_object_get(row, "error") &&
		    !json_object_get(row, "result"))
			json_object_set(row, "error", e);
	}
	json_decref(e);
}

/* Records each row's result from one account.invite_many answer. */
static void take_results(json_t *people, const size_t *idx, size_t n,
			 json_t *results)
{
	for (size_t k = 0; k < n; k++) {
		json_t *row = json_array_get(people, idx[k]);
		json_t *res = json_array_get(results, k);

		if (json_is_object(res))
			json_object_set(row, "result", res);
		else
			row_error(row, CTL_ERR_UNAVAILABLE,
				  "no result for this row");
	}
}

/* Sends the rows in batches. Returns 0, or 2 when the connection failed
 * (rows not sent then have no result). */
static int invite_batches(struct ctx *x, json_t *people)
{
	size_t pos = 0, idx[CTLCMD_BATCH_ROWS], total = json_array_size(people);
	struct ctlc_resp resp;
	json_t *args;
	int r;

	progress(x, 0, total, false);
	while ((args = ctlcmd_batch(people, &pos, CTLCMD_BATCH_ROWS,
				    CTLCMD_BATCH_BYTES, idx))) {
		size_t n = json_array_size(json_object_get(args, "people"));

		if (connect_once(x) < 0) {
			json_decref(args);
			return 2;
		}
		r = ctlc_call(x->conn, "account.invite_many", args,
			      x->timeout_ms, &resp);
		if (r < 0) {
			progress(x, pos, total, true);
			msg(x, "%s: %s (before line %d)", x->socket,
			    ctlc_strerror(r),
			    (int)json_integer_value(json_object_get(
				    json_array_get(people, idx[0]), "line")));
			return 2;
		}
		if (!resp.ok) {
			fail_rest(people, idx[0], &resp);
			ctlc_resp_clear(&resp);
			break;
		}
		take_results(people, idx, n,
			     json_object_get(resp.result, "results"));
		ctlc_resp_clear(&resp);
		progress(x, pos, total, false);
	}
	progress(x, total, total, true);
	return 0;
}

/* The error of a row: local, from the batch, or from its result. */
static json_t *row_failure(json_t *row)
{
	json_t *res = json_object_get(row, "result");

	if (json_object_get(row, "error"))
		return json_object_get(row, "error");
	if (res && !json_is_true(json_object_get(res, "ok")))
		return json_object_get(res, "error");
	return NULL;
}

static const char *err_code(const json_t *e)
{
	const char *c = json_is_string(e) ? json_string_value(e)
					  : json_string_value(json_object_get(e, "code"));

	return c ? c : "unknown";
}

/* What became of the rows: counts, and failures by code ({code: n}). */
struct tally {
	size_t ok, failed, unsent;
	json_t *by;
};

/* Tallies the rows and prints each failed one (the first
 * FAILURES_SHOWN of them). */
static void tally_rows(const struct ctx *x, json_t *people, struct tally *t)
{
	size_t i;
	json_t *row;

	json_array_foreach(people, i, row) {
		json_t *e = row_failure(row);
		const char *code, *m;
		char *phone;

		if (!e) {
			*(json_object_get(row, "result") ? &t->ok
							   : &t->unsent) += 1;
			continue;
		}
		code = err_code(e);
		json_object_set_new(t->by, code, json_integer(json_integer_value(
					json_object_get(t->by, code)) + 1));
		if (t->failed++ >= FAILURES_SHOWN)
			continue;
		m = json_string_value(json_object_get(e, "message"));
		phone = val_text(json_object_get(row, "phone"), PHONE_MAX_BYTES);
		msg(x, "line %d: %s: %s%s%s",
		    (int)json_integer_value(json_object_get(row, "line")),
		    phone ? phone : "?", code, m && m[0] ? ": " : "",
		    m ? m : "");
		free(phone);
	}
	if (t->failed > FAILURES_SHOWN)
		msg(x, "... and %zu more failed rows", t->failed - FAILURES_SHOWN);
}

static void invite_summary(const struct ctx *x, json_t *people,
			   const struct tally *t)
{
	const char *code, *sep = ": ";
	json_t *n;

	if (x->json) {
		json_t *out = json_pack("{s:I, s:I, s:I, s:O}", "invited",
					(json_int_t)t->ok, "failed",
					(json_int_t)t->failed, "not_sent",
					(json_int_t)t->unsent, "results",
					people);

		print_json(x, out);
		json_decref(out);
		return;
	}
	fprintf(x->io->out, "invited %zu of %zu", t->ok,
		json_array_size(people));
	if (t->failed)
		fprintf(x->io->out, "; %zu failed", t->failed);
	json_object_foreach(t->by, code, n) {
		fprintf(x->io->out, "%s%s %" JSON_INTEGER_FORMAT, sep, code,
			json_integer_value(n));
		sep = ", ";
	}
	if (t->unsent)
		fprintf(x->io->out, "; %zu not sent", t->unsent);
	fputc('\n', x->io->out);
	fflush(x->io->out);
}

/* The whole file (or io->in for "-"); NULL with a message. */
static char *read_all(const struct ctx *x, const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? x->io->in : fopen(path, "rbe");
	size_t cap = 0, n = 0;
	char *buf = NULL;

	if (!f) {
		msg(x, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			char *b = cap < FILE_MAX ? realloc(buf, cap + 65536)
						 : NULL;

			if (!b) {
				msg(x, "%s: too large", path);
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap += 65536;
		}
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
	}
	if (buf && ferror(f)) {
		msg(x, "%s: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	}
	if (f != x->io->in)
		fclose(f);
	*len = n;
	return buf;
}

static int run_invite_file(struct ctx *x, const char *path)
{
	struct tally t = { 0 };
	char err[ERR_MAX];
	json_t *people;
	size_t len;
	char *data;
	int st;

	if (x->npos || opt(x, "--name"))
		return usage_error(x, "invite --file takes no PHONE or --name");
	data = read_all(x, path, &len);
	if (!data)
		return 2;
	people = ctlcmd_people_parse(data, len, err, sizeof(err));
	free(data);
	if (!people) {
		msg(x, "%s: %s", path, err);
		return 2;
	}
	st = invite_batches(x, people);
	t.by = json_object();
	tally_rows(x, people, &t);
	invite_summary(x, people, &t);
	json_decref(t.by);
	json_decref(people);
	return st ? st : t.failed ? 1 : 0;
}

static int run_invite(struct ctx *x)
{
	const char *file = opt(x, "--file");

	return file ? run_invite_file(x, file) : run_single(x);
}

/* --- help -------------------------------------------------------------------------- */

static void print_usage(FILE *out)
{
	fprintf(out, "usage: smsgwctl [-s SOCKET] [--json] [-t SECONDS] "
		     "COMMAND [ARGS]\n\n"
		     "  -s, --socket SOCKET  default $SMSGW_SOCKET or %s\n"
		     "  --json               raw result objects, one per line\n"
		     "  -t, --timeout SECS   per request (default %d)\n\n"
		     "commands:\n",
		CTLCMD_DEFAULT_SOCKET, CTLCMD_TIMEOUT_MS / 1000);
	for (size_t i = 0; i < ncmds; i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s", cmds[i].name,
			 cmds[i].args[0] ? " " : "", cmds[i].args);
		if (strlen(left) > 34)
			fprintf(out, "  %s\n  %-34s %s\n", left, "",
				cmds[i].help);
		else
			fprintf(out, "  %-34s %s\n", left, cmds[i].help);
	}
	fprintf(out, "\nSecrets are read without echo from the terminal, or "
		     "one per line from\nstandard input when it is not a "
		     "terminal. Exit status: 0 done, 1 refused,\n2 usage or "
		     "connection error.\n");
}

static int run_help(struct ctx *x)
{
	print_usage(x->io->out);
	return 0;
}

/* --- the table --------------------------------------------------------------------- */

static const struct cmd cmds[] = {
	{ "ping", "", "is smsgwd up (its version)", 0, 0, { NULL }, "ping",
	  NULL, show_ping, NULL, NULL },
	{ "settings", "", "show the settings", 0, 0, { NULL }, "settings.get",
	  NULL, NULL, NULL, NULL },
	{ "settings set", "KEY VALUE", "phone_profiles / domain_verified",
	  2, 2, { NULL }, "settings.set", build_setting, NULL, NULL, NULL },
	{ "invite", "PHONE [--name N] | --file people.csv",
	  "invite one person, or a CSV (phone,name)", 0, 1,
	  { "--name=", "--file=" }, "account.invite", build_invite,
	  show_account, run_invite, NULL },
	{ "accounts", "[--state S] [--limit N]", "list accounts", 0, 0,
	  { "--state=", "--limit=" }, "account.list", build_accounts, show_list,
	  run_paged, "accounts" },
	{ "show", "PHONE", "one account", 1, 1, { NULL }, "account.get",
	  build_phone, show_account, NULL, NULL },
	{ "update", "PHONE --name N", "change an account's name", 1, 1,
	  { "--name=" }, "account.update", build_update, show_account, NULL,
	  NULL },
	{ "resend", "PHONE", "send the claim SMS again", 1, 1, { NULL },
	  "account.resend_invite", build_phone, NULL, NULL, NULL },
	{ "unclaim", "PHONE", "clear the password, send a new claim link", 1,
	  1, { NULL }, "account.unclaim", build_phone, show_account, NULL,
	  NULL },
	{ "deactivate", "PHONE", "deactivate an account", 1, 1, { NULL },
	  "account.deactivate", build_phone, show_account, NULL, NULL },
	{ "reactivate", "PHONE", "reactivate an account", 1, 1, { NULL },
	  "account.reactivate", build_phone, show_account, NULL, NULL },
	{ "send", "PHONE TEXT", "send an SMS", 2, 2, { NULL }, "sms.send",
	  build_send, show_send, NULL, NULL },
	{ "sms", "[--in|--out] [--limit N]", "list SMS (default: --out)", 0,
	  0, { "--in", "--out", "--limit=" }, "sms.list", build_sms_list,
	  show_list, run_paged, "sms" },
	{ "sms show", "ID", "one SMS with its parts", 1, 1, { NULL },
	  "sms.get", build_sms_id, show_sms, NULL, NULL },
	{ "modems", "", "the modems and their state", 0, 0, { NULL },
	  "modem.list", NULL, show_modems, NULL, NULL },
	{ "watch", "[--count N]", "print events until interrupted", 0, 0,
	  { "--count=" }, "events.subscribe", NULL, NULL, run_watch, NULL },
	{ "audit", "[--limit N]", "the audit log", 0, 0, { "--limit=" },
	  "audit.list", build_page, show_list, run_paged, "entries" },
	{ "claim", "TOKEN", "claim an account (asks for a password)", 1, 1,
	  { NULL }, "account.claim", build_token, show_account, run_claim,
	  NULL },
	{ "recover", "PHONE [--logout-others|--keep-others]",
	  "reset a password with a recovery code", 1, 1,
	  { "--logout-others", "--keep-others" }, "account.recovery_reset",
	  build_phone, show_account, run_recover, NULL },
	{ "login", "PHONE", "check a password (asks for it)", 1, 1, { NULL },
	  "account.login", build_phone, NULL, run_password_op, NULL },
	{ "recovery-code", "PHONE", "a new recovery code (asks the password)",
	  1, 1, { NULL }, "account.recovery_code", build_phone, show_code,
	  run_password_op, NULL },
	{ "help", "", "this text", 0, 0, { NULL }, NULL, NULL, NULL, run_help,
	  NULL },
};

static const size_t ncmds = NCOLS(cmds);

/* --- parsing ------------------------------------------------------------------------ */

/* How many of argv's first words spell name ("sms show"); 0: no match. */
static int words_match(const char *name, int argc, char **argv)
{
	int w = 0;

	while (*name) {
		size_t n = strcspn(name, " ");

		if (w >= argc || strlen(argv[w]) != n ||
		    strncmp(argv[w], name, n) != 0)
			return 0;
		w++;
		name += n;
		name += *name == ' ';
	}
	return w;
}

static const struct cmd *cmd_find(int argc, char **argv, int *words)
{
	const struct cmd *best = NULL;

	*words = 0;
	for (size_t i = 0; i < ncmds; i++) {
		int w = words_match(cmds[i].name, argc, argv);

		if (w > *words) {
			*words = w;
			best = &cmds[i];
		}
	}
	return best;
}

/* One --option (maybe --option=value, or its value in the next word). */
static int take_opt(struct ctx *x, int argc, char **argv, int *i, char *err,
		    size_t errlen)
{
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t n = eq ? (size_t)(eq - a) : strlen(a);

	for (size_t k = 0; k < CMD_OPTS_MAX && x->cmd->opts[k]; k++) {
		const char *spec = x->cmd->opts[k];
		bool valued = spec[strlen(spec) - 1] == '=';

		if (strncmp(spec, a, n) != 0 ||
		    strlen(spec) - valued != n)
			continue;
		if (!valued && eq)
			break;
		if (valued && !eq && *i + 1 >= argc) {
			snprintf(err, errlen, "%s needs a value", spec);
			return -EINVAL;
		}
		x->opt[k] = !valued ? "" : eq ? eq + 1 : argv[++*i];
		return 0;
	}
	snprintf(err, errlen, "unknown option %.*s", (int)n, a);
	return -EINVAL;
}

/* The command's own options and positional arguments. */
static int parse_args(struct ctx *x, int argc, char **argv, char *err,
		      size_t errlen)
{
	bool opts_done = false;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
		} else if (!opts_done && strncmp(a, "--", 2) == 0) {
			if (take_opt(x, argc, argv, &i, err, errlen) < 0)
				return -EINVAL;
		} else if (x->npos == x->cmd->max_pos) {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return -EINVAL;
		} else {
			x->pos[x->npos++] = a;
		}
	}
	if (x->npos < x->cmd->min_pos) {
		snprintf(err, errlen, "missing arguments");
		return -EINVAL;
	}
	return 0;
}

/* Finds the command and parses its arguments into x. */
static int parse_command(struct ctx *x, int argc, char **argv, char *err,
			 size_t errlen)
{
	int words;

	if (argc == 0) {
		snprintf(err, errlen, "no command given");
		return -EINVAL;
	}
	x->cmd = cmd_find(argc, argv, &words);
	if (!x->cmd) {
		snprintf(err, errlen, "unknown command '%s'", argv[0]);
		return -EINVAL;
	}
	return parse_args(x, argc - words, argv + words, err, errlen);
}

int ctlcmd_request(int argc, char **argv, const char **op, json_t **args,
		   char *err, size_t errlen)
{
	struct ctx x = { 0 };
	json_t *a = NULL;

	if (parse_command(&x, argc, argv, err, errlen) < 0)
		return -EINVAL;
	if (!x.cmd->op || (x.cmd->run == run_invite && opt(&x, "--file")))
		return -ENOTSUP;
	if (x.cmd->build) {
		a = x.cmd->build(&x, err, errlen);
		if (!a)
			return -EINVAL;
	}
	*op = x.cmd->op;
	*args = a;
	return 0;
}

static int g_json(struct ctx *x, const char *v)
{
	(void)v;
	x->json = true;
	return 0;
}

static int g_socket(struct ctx *x, const char *v)
{
	x->socket = v;
	return 0;
}

static int g_timeout(struct ctx *x, const char *v)
{
	char *end;
	double t = strtod(v, &end);

	if (end == v || *end || !(t > 0 && t < 86400))
		return -EINVAL;
	x->timeout_ms = (int)(t * 1000);
	return 0;
}

static int g_help(struct ctx *x, const char *v)
{
	(void)v;
	print_usage(x->io->out);
	return 1;
}

static int g_version(struct ctx *x, const char *v)
{
	(void)v;
	fprintf(x->io->out, "smsgwctl %s\n", SMSGW_VERSION);
	return 1;
}

/* Global options: set returns 0 to go on, 1 to exit 0, -EINVAL. */
static const struct {
	const char *shrt, *lng;
	bool value;
	int (*set)(struct ctx *x, const char *v);
} gopts[] = {
	{ "-s", "--socket", true, g_socket },
	{ NULL, "--json", false, g_json },
	{ "-t", "--timeout", true, g_timeout },
	{ "-h", "--help", false, g_help },
	{ NULL, "--version", false, g_version },
};

/* One global option at argv[*i]: 0 go on, 1 exit 0, -EINVAL (err). */
static int take_gopt(struct ctx *x, int argc, char **argv, int *i, char *err,
		     size_t errlen)
{
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t n = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);

	for (size_t k = 0; k < NCOLS(gopts); k++) {
		const char *v = NULL;

		if (!(gopts[k].shrt && strcmp(a, gopts[k].shrt) == 0) &&
		    !(strlen(gopts[k].lng) == n &&
		      strncmp(a, gopts[k].lng, n) == 0))
			continue;
		if (gopts[k].value && n < strlen(a))
			v = eq + 1;
		else if (gopts[k].value && *i + 1 < argc)
			v = argv[++*i];
		if (gopts[k].value && !v) {
			snprintf(err, errlen, "%s needs a value", a);
			return -EINVAL;
		}
		if (gopts[k].set(x, v) < 0) {
			snprintf(err, errlen, "bad value for %s: %s", a, v);
			return -EINVAL;
		}
		return gopts[k].set == g_help || gopts[k].set == g_version;
	}
	snprintf(err, errlen, "unknown option %s", a);
	return -EINVAL;
}

int ctlcmd_main(int argc, char **argv, const struct ctlcmd_io *io)
{
	struct ctx x = { .io = io, .timeout_ms = CTLCMD_TIMEOUT_MS };
	char err[ERR_MAX];
	int i, r, st;

	x.socket = getenv("SMSGW_SOCKET");
	if (!x.socket || !x.socket[0])
		x.socket = CTLCMD_DEFAULT_SOCKET;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		r = take_gopt(&x, argc, argv, &i, err, sizeof(err));
		if (r < 0)
			return usage_error(&x, err);
		if (r > 0)
			return 0;
	}
	if (parse_command(&x, argc - i, argv + i, err, sizeof(err)) < 0)
		return usage_error(&x, err);
	st = x.cmd->run ? x.cmd->run(&x) : run_single(&x);
	ctlc_free(x.conn);
	fflush(io->out);
	return st;
}
