/* ctlcmd — the commands of smsgwctl (DESIGN.md, "CLI"), as one table.
 *
 *   smsgwctl [-s SOCKET] [--json] [-t SECONDS] COMMAND [ARGS]
 *
 * Each command names the op it sends, how its argv becomes the op's args,
 * and how the result is shown (aligned tables / "key: value" lines; with
 * --json the raw result object on one line, or one merged object for the
 * commands that page or batch). A few have their own runner: paging
 * (accounts, sms, audit follow `next`), batching (invite --file), streaming
 * (watch) and the interactive ones that ask for secrets (claim, recover,
 * login, recovery-code).
 *
 * Exit status: 0 done; 1 refused (the server answered ok=false, printed as
 * "smsgwctl: CODE: message"; also a partly failed invite --file, or two
 * passwords that differ); 2 usage, connection or timeout errors (the
 * message names the socket).
 *
 * The socket is -s SOCKET, else $SMSGW_SOCKET, else CTLCMD_DEFAULT_SOCKET.
 * Every request waits at most -t SECONDS (default 30); watch waits forever.
 *
 * Secrets (passwords, recovery codes) are read from /dev/tty with echo off
 * when standard input is a terminal, otherwise one per line from standard
 * input, with no prompt (so scripts and tests can pipe them):
 *   claim TOKEN          new password, the same again
 *   recover PHONE        code, new password, the same again, then "y"/"n"
 *                        for logging out other devices (unless
 *                        --logout-others / --keep-others is given)
 *   login PHONE          password
 *   recovery-code PHONE  password
 * They are wiped from this process's buffers after use.
 *
 * What the CLI relies on from the ops: list ops (account.list, sms.list,
 * audit.list) take `limit` (the CLI asks for CTLCMD_PAGE) and `after`, and
 * answer `next` (any JSON value, echoed back as `after`; absent or null on
 * the last page). account.invite_many answers `results` in the order of
 * `people`, each {phone, ok, account?, error?} where error is {code,
 * message} (or a bare code string).
 */
#ifndef SMSGW_CTLCMD_H
#define SMSGW_CTLCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define CTLCMD_DEFAULT_SOCKET "/run/smsgw/control.sock"
#define CTLCMD_TIMEOUT_MS 30000
#define CTLCMD_BATCH_ROWS 500      /* people per account.invite_many */
#define CTLCMD_BATCH_BYTES 48000   /* and their JSON, under the 64 KiB line */
#define CTLCMD_PAGE 100            /* rows asked per list request */

struct ctlcmd_io {
	FILE *out;     /* results */
	FILE *err;     /* messages, prompts' errors, the progress bar */
	FILE *in;      /* secrets and answers when !tty; `invite --file -` */
	bool tty;      /* ask secrets on /dev/tty without echo */
	bool progress; /* draw a progress bar on err (err is a terminal) */
};

/* Runs smsgwctl with argv (argv[0] is the program) and returns the exit
 * status. */
int ctlcmd_main(int argc, char **argv, const struct ctlcmd_io *io);

/* For tests: what the command in argv (without the program and global
 * options, e.g. {"invite", "+34600", "--name", "Ana"}) sends first: its op
 * and args (a new object, or NULL for none). Commands that ask for secrets
 * give their args without them. Returns 0, or -EINVAL with a usage message
 * in err; -ENOTSUP for `invite --file` and `help` (no single request). */
int ctlcmd_request(int argc, char **argv, const char **op, json_t **args,
		   char *err, size_t errlen);

/* invite --file: the rows of a CSV with a header naming a `phone` column
 * and optionally a `name` one (any order, any case; other columns are
 * ignored). Returns a new array of {"line": N, "phone", "name"?} and, for a
 * row that cannot be sent, "error": {"code", "message"}; NULL with a
 * message in err for a file that cannot be read as such a CSV. */
json_t *ctlcmd_people_parse(const char *data, size_t len, char *err,
			    size_t errlen);

/* Builds the next account.invite_many args {"people": [...]} from the rows
 * of people at *pos onwards that have no "error": at most max_rows, and
 * at most max_bytes of JSON (but at least one row). *pos moves past the
 * rows taken (and skipped); idx (room for max_rows) receives the index in
 * people of each row taken. NULL when no row is left. */
json_t *ctlcmd_batch(json_t *people, size_t *pos, size_t max_rows,
		     size_t max_bytes, size_t *idx);

#endif
