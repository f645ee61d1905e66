/* smsgwd — the SMS gateway daemon.
 *
 * main() parses the command line and the config, then brings the modules up
 * in dependency order (store, control socket, modem pool, outbox, inbox,
 * accounts), runs the libev loop, and takes them down in reverse order.
 * Signals are ev_signal watchers: no work happens in a raw handler. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "config/config.h"
#include "daemon/accounts.h"
#include "daemon/ctl.h"
#include "daemon/inbox.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/outbox.h"
#include "daemon/pool.h"
#include "daemon/store.h"
#include "daemon/version.h"
#include "drivers/transport.h"

#define STOP_DRAIN_MAX 10.0   /* s to let a part on the wire finish */
#define STOP_DRAIN_POLL 0.05

struct daemon {
	struct ev_loop *loop;
	struct config *cfg;
	struct store *store;
	struct ctl_server *ctl;
	struct pool *pool;
	struct outbox *outbox;
	struct inbox *inbox;
	struct accounts *accounts;
	struct notify *notify;
	ev_signal sigterm, sigint, sighup;
	ev_timer watchdog;
	ev_timer drain;       /* polls the outbox while stopping */
	ev_timer status_timer; /* coalesces STATUS= after modem changes */
	bool ready;           /* READY=1 was sent: STATUS= may follow */
	ev_tstamp drain_deadline;
	bool stopping;
};

struct options {
	const char *config;
	bool foreground;
	bool check_config;
	bool list_ports;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: smsgwd [-c FILE] [-f]\n"
		"       smsgwd -c FILE --check-config\n"
		"       smsgwd --list-ports\n"
		"\n"
		"  -c, --config FILE   config file (default %s)\n"
		"  -f, --foreground    stay in the foreground (always under systemd)\n"
		"      --check-config  print the effective config and exit 0, or the\n"
		"                      errors and exit 1\n"
		"      --list-ports    list serial ports and which look like modems\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n",
		CONFIG_DEFAULT_PATH);
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "list-ports", no_argument, NULL, 'L' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->config = CONFIG_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, "c:fVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'f': o->foreground = true; break;
		case 'C': o->check_config = true; break;
		case 'L': o->list_ports = true; break;
		case 'V': printf("smsgwd %s\n", SMSGW_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "smsgwd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

static struct config *load_config(const char *path)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int rc = config_load(path, &cfg, &errs);

	if (rc < 0) {
		if (errs.count == 0)
			fprintf(stderr, "smsgwd: %s: %s\n", path, strerror(-rc));
		config_errors_print(&errs, stderr);
		config_errors_free(&errs);
		return NULL;
	}
	config_errors_free(&errs);
	return cfg;
}

/* The simulator next to this binary (build tree, /usr/bin), or from PATH. */
static void sim_binary(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			static const char name[] = "/smsgw-modemsim";

			*slash = '\0';
			if ((size_t)(slash - self) + sizeof(name) <= len) {
				memcpy(out, self, (size_t)(slash - self));
				memcpy(out + (slash - self), name, sizeof(name));
				if (access(out, X_OK) == 0)
					return;
			}
		}
	}
	snprintf(out, len, "smsgw-modemsim");
}

static int resolve_group(const char *name, gid_t *gid, char *err, size_t errlen)
{
	struct group *g;

	*gid = CTL_NO_GID;
	if (!name || !name[0])
		return 0;
	g = getgrnam(name);
	if (!g) {
		/* A missing group only narrows who is admin: warn, go on. */
		log_warn("group '%s' does not exist: nobody is granted its role",
			 name);
		(void)err;
		(void)errlen;
		return 0;
	}
	*gid = g->gr_gid;
	return 0;
}

/* --- audit.list ----------------------------------------------------------- */

static void op_audit_list(struct ctl_req *req, json_t *args, void *ctx)
{
	struct daemon *d = ctx;
	json_t *limit = json_object_get(args, "limit");
	json_t *after = json_object_get(args, "after");
	json_t *entries = NULL;
	int64_t next = 0;
	int rc;

	if ((limit && !json_is_integer(limit)) || (after && !json_is_integer(after))) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "limit and after are integers");
		return;
	}
	rc = store_audit_list(d->store, limit ? (int)json_integer_value(limit) : 0,
			      after ? json_integer_value(after) : 0, &entries,
			      &next);
	if (rc < 0) {
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "store: %s", strerror(-rc));
		return;
	}
	json_t *res = json_pack("{s:o}", "entries", entries);
	if (next)
		json_object_set_new(res, "next", json_integer(next));
	ctl_reply_ok(req, res);
}

static const struct ctl_op daemon_ops[] = {
	{ "audit.list", op_audit_list, CTL_ROLE_ADMIN },
};

/* --- status for systemd ----------------------------------------------------- */

static void send_status(struct daemon *d)
{
	struct store_counts c;

	if (store_counts(d->store, &c) < 0)
		memset(&c, 0, sizeof(c));
	notify_send(d->notify, "STATUS=%zu of %zu modems ready, %lld queued, "
		    "%lld sending", pool_ready_count(d->pool),
		    pool_count(d->pool), (long long)c.sms[STORE_QUEUED],
		    (long long)c.sms[STORE_SENDING]);
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;

	(void)loop;
	(void)revents;
	notify_send(d->notify, "WATCHDOG=1");
	send_status(d);
}

static void status_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	send_status(w->data);
}

/* Modem changes come in bursts (16 modems starting): one STATUS= for a
 * burst, and none before READY=1, so that the service manager's small
 * datagram queue never drops READY=1 behind them. */
static void status_on_state(void *user, struct modem *m, enum modem_state from,
			    enum modem_state to)
{
	struct daemon *d = user;

	(void)m;
	(void)from;
	(void)to;
	if (d->ready && !ev_is_active(&d->status_timer))
		ev_timer_start(d->loop, &d->status_timer);
}

/* --- signals ------------------------------------------------------------------ */

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;

	(void)revents;
	if (outbox_busy(d->outbox) && ev_now(loop) < d->drain_deadline)
		return;
	if (outbox_busy(d->outbox))
		log_warn("stopping with a part still on the wire: it is sent "
			 "again at the next start");
	ev_timer_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;

	(void)revents;
	if (d->stopping)
		return;
	d->stopping = true;
	log_notice("received %s, stopping", strsignal(w->signum));
	notify_send(d->notify, "STOPPING=1");
	ctl_server_stop_accepting(d->ctl);
	d->drain_deadline = ev_now(loop) + STOP_DRAIN_MAX;
	ev_timer_init(&d->drain, drain_cb, 0., STOP_DRAIN_POLL);
	d->drain.data = d;
	ev_timer_start(loop, &d->drain);
}

/* SIGHUP: parse into a new config and swap only when it is valid. */
static void reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;
	struct config *old = d->cfg, *cfg;
	char err[512];

	(void)loop;
	(void)revents;
	log_notice("received SIGHUP, reloading %s", old->path);
	notify_send(d->notify, "RELOADING=1");
	cfg = load_config(old->path);
	if (!cfg) {
		log_err("reload: %s has errors, keeping the running config",
			old->path);
		notify_send(d->notify, "READY=1");
		return;
	}
	log_set_level((enum log_level)cfg->daemon.log_level);
	outbox_set_config(d->outbox, cfg);
	inbox_set_config(d->inbox, cfg);
	accounts_set_config(d->accounts, cfg);
	if (pool_reload(d->pool, cfg, err, sizeof(err)) < 0)
		log_err("reload: %s", err);
	d->cfg = cfg;
	config_free(old);
	log_notice("reloaded: %zu modems", pool_count(d->pool));
	notify_send(d->notify, "READY=1");
	send_status(d);
}

static void signals_start(struct daemon *d)
{
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&d->sigterm, stop_cb, SIGTERM);
	ev_signal_init(&d->sigint, stop_cb, SIGINT);
	ev_signal_init(&d->sighup, reload_cb, SIGHUP);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	ev_signal_start(d->loop, &d->sigterm);
	ev_signal_start(d->loop, &d->sigint);
	ev_signal_start(d->loop, &d->sighup);
}

/* --- start and stop ------------------------------------------------------- */

static int open_ctl(struct daemon *d, char *err, size_t errlen)
{
	struct ctl_server_opts o;

	ctl_server_opts_default(&o);
	o.path = d->cfg->daemon.socket;
	o.mode = d->cfg->daemon.socket_mode;
	resolve_group(d->cfg->daemon.admin_group, &o.admin_gid, err, errlen);
	resolve_group(d->cfg->daemon.portal_group, &o.portal_gid, err, errlen);
	d->ctl = ctl_server_new(d->loop, &o, err, errlen);
	if (!d->ctl)
		return -1;
	return ctl_register(d->ctl, daemon_ops,
			    sizeof(daemon_ops) / sizeof(daemon_ops[0]), d);
}

static int daemon_start(struct daemon *d, char *err, size_t errlen)
{
	struct pool_listener status = { .user = d,
					.state_changed = status_on_state };
	char sim[PATH_MAX];

	if (store_open(d->cfg->daemon.state_dir, &d->store, err, errlen) < 0)
		return -1;
	if (open_ctl(d, err, errlen) < 0)
		return -1;
	sim_binary(sim, sizeof(sim));
	d->pool = pool_new(d->loop, d->ctl, d->cfg, sim, err, errlen);
	if (!d->pool)
		return -1;
	pool_listen(d->pool, &status);
	d->outbox = outbox_new(d->loop, d->store, d->ctl, d->pool, d->cfg, err,
			       errlen);
	if (!d->outbox)
		return -1;
	d->inbox = inbox_new(d->loop, d->store, d->ctl, d->pool, d->outbox,
			     d->cfg, err, errlen);
	if (!d->inbox)
		return -1;
	d->accounts = accounts_new(d->loop, d->store, d->ctl, d->outbox,
				   d->cfg, err, errlen);
	if (!d->accounts)
		return -1;
	inbox_set_account_lookup(d->inbox, accounts_lookup_phone, d->accounts);
	if (pool_start(d->pool, err, errlen) < 0)
		return -1;
	outbox_kick(d->outbox); /* SMS left queued or sending by the last run */
	return 0;
}

/* Reverse order of daemon_start: the pool first, so that modems cancel
 * their pending operations while the outbox and inbox still exist. */
static void daemon_finish(struct daemon *d)
{
	pool_free(d->pool);
	accounts_free(d->accounts);
	inbox_free(d->inbox);
	outbox_free(d->outbox);
	ctl_server_free(d->ctl);
	store_free(d->store);
	notify_free(d->notify);
	config_free(d->cfg);
}

static void watchdog_start(struct daemon *d)
{
	uint64_t usec = notify_watchdog_usec(d->notify);

	if (!usec)
		return;
	ev_timer_init(&d->watchdog, watchdog_cb, 0., (double)usec / 2e6);
	d->watchdog.data = d;
	ev_timer_again(d->loop, &d->watchdog);
}

static int run(const struct options *o)
{
	struct daemon d = { 0 };
	char err[1024] = "";
	int status = 1;

	d.cfg = load_config(o->config);
	if (!d.cfg)
		return 1;
	log_init("smsgwd", (enum log_level)d.cfg->daemon.log_level);
	d.loop = ev_default_loop(EVFLAG_AUTO);
	d.notify = notify_new();
	if (!o->foreground && !getenv("NOTIFY_SOCKET") && daemon(1, 1) < 0) {
		log_err("cannot go to the background: %s", strerror(errno));
		goto out;
	}
	signals_start(&d);
	ev_timer_init(&d.status_timer, status_timer_cb, 0.2, 0.);
	d.status_timer.data = &d;
	if (daemon_start(&d, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	log_notice("smsgwd %s ready: %zu modems, socket %s", SMSGW_VERSION,
		   pool_count(d.pool), d.cfg->daemon.socket);
	notify_send(d.notify, "READY=1\nMAINPID=%ld", (long)getpid());
	d.ready = true;
	send_status(&d);
	watchdog_start(&d);
	ev_run(d.loop, 0);
	ev_timer_stop(d.loop, &d.status_timer);
	log_notice("stopped");
	status = 0;
out:
	daemon_finish(&d);
	ev_loop_destroy(d.loop);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	umask(umask(0) | 0007); /* never world-accessible files */
	if (o.list_ports)
		return transport_list_ports(stdout) < 0 ? 1 : 0;
	if (o.check_config) {
		struct config *cfg = load_config(o.config);

		if (!cfg)
			return 1;
		config_print(cfg, stdout);
		config_free(cfg);
		return 0;
	}
	return run(&o);
}
