/* smsgwctl — the admin's client for smsgwd's control socket.
 *
 * Everything lives in daemon/ctlcmd (the command table, see ctlcmd.h for
 * the options, exit statuses and how secrets are read); this only wires it
 * to the process's standard streams and terminal. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "daemon/ctlcmd.h"

int main(int argc, char **argv)
{
	struct ctlcmd_io io = {
		.out = stdout,
		.err = stderr,
		.in = stdin,
		.tty = isatty(STDIN_FILENO),
		.progress = isatty(STDERR_FILENO),
	};

	/* A closed pipe on stdout or the socket is an error to report, not
	 * a silent death. */
	signal(SIGPIPE, SIG_IGN);
	return ctlcmd_main(argc, argv, &io);
}
