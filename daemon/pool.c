/* pool — see pool.h. */
#include "daemon/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "config/config.h"
#include "daemon/ctl.h"
#include "daemon/log.h"

extern char **environ;

#define SIM_START_TIMEOUT_MS 5000

/* One [modem.NAME] section and what runs for it. */
struct pool_entry {
	struct pool *pool;
	struct modem *modem;
	struct config_modem cfg; /* shallow copy: strings belong to the
				    config the pool borrows */
	char name[CONFIG_NAME_MAX + 1];
	pid_t sim_pid;           /* the spawned simulator, 0 when none */
	char sim_link[512];      /* its pty link, device for the driver */
};

struct pool {
	struct ev_loop *loop;
	struct ctl_server *ctl;
	const struct config *cfg;
	char *sim_binary;
	struct pool_entry **entries;
	size_t n;
	struct pool_listener listeners[POOL_LISTENERS_MAX];
	size_t n_listeners;
};

/* --- listeners ----------------------------------------------------------- */

#define POOL_FOR_LISTENERS(p, l)                                               \
	for (struct pool_listener *l = (p)->listeners;                         \
	     l < (p)->listeners + (p)->n_listeners; l++)

int pool_listen(struct pool *p, const struct pool_listener *l)
{
	if (p->n_listeners == POOL_LISTENERS_MAX)
		return -ENOSPC;
	p->listeners[p->n_listeners++] = *l;
	return 0;
}

static void on_state(void *user, struct modem *m, enum modem_state from,
		     enum modem_state to, const char *reason)
{
	struct pool_entry *e = user;
	struct pool *p = e->pool;

	/* The driver logs the transition; subscribers hear it here. */
	ctl_broadcast_event(p->ctl, "modem.state",
			    json_pack("{s:s, s:s, s:s, s:s}", "modem", e->name,
				      "from", modem_state_name(from), "state",
				      modem_state_name(to), "reason",
				      reason ? reason : ""));
	POOL_FOR_LISTENERS(p, l)
	if (l->state_changed)
		l->state_changed(l->user, m, from, to);
}

static void on_sms_stored(void *user, struct modem *m, const char *mem,
			  unsigned index)
{
	struct pool_entry *e = user;

	POOL_FOR_LISTENERS(e->pool, l)
	if (l->sms_stored)
		l->sms_stored(l->user, m, mem, index);
}

static void on_sms_direct(void *user, struct modem *m, const char *pdu)
{
	struct pool_entry *e = user;

	POOL_FOR_LISTENERS(e->pool, l)
	if (l->sms_direct)
		l->sms_direct(l->user, m, pdu);
}

static void on_report_direct(void *user, struct modem *m, const char *pdu)
{
	struct pool_entry *e = user;

	POOL_FOR_LISTENERS(e->pool, l)
	if (l->report_direct)
		l->report_direct(l->user, m, pdu);
}

static void on_report_stored(void *user, struct modem *m, const char *mem,
			     unsigned index)
{
	struct pool_entry *e = user;

	POOL_FOR_LISTENERS(e->pool, l)
	if (l->report_stored)
		l->report_stored(l->user, m, mem, index);
}

static void on_storage_full(void *user, struct modem *m)
{
	struct pool_entry *e = user;

	log_warn("modem %s: message storage full, sweeping it", e->name);
	POOL_FOR_LISTENERS(e->pool, l)
	if (l->storage_full)
		l->storage_full(l->user, m);
}

/* --- the simulator for device = sim ----------------------------------------*/

/* Splits sim_args on spaces into argv (no quoting: the simulator's options
 * take no values with spaces). Returns the count added. */
static size_t sim_split_args(char *args, char **argv, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(args, " \t"); tok && n < max;
	     tok = strtok(NULL, " \t"))
		argv[n++] = tok;
	return n;
}

/* Waits (bounded, before the loop runs or on a reload) for the simulator to
 * print its pty path, which means its link exists. */
static int sim_wait_ready(int fd, char *err, size_t errlen)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[256];
	int r = poll(&pfd, 1, SIM_START_TIMEOUT_MS);

	if (r <= 0) {
		snprintf(err, errlen, "simulator did not start within %d ms",
			 SIM_START_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	if (read(fd, buf, sizeof(buf)) <= 0) {
		snprintf(err, errlen, "simulator exited at start");
		return -EIO;
	}
	return 0;
}

static int sim_spawn(struct pool *p, struct pool_entry *e, char *err,
		     size_t errlen)
{
	const char *dir = p->cfg->daemon.state_dir;
	char logpath[512], args[1024], *argv[64];
	posix_spawn_file_actions_t fa;
	int pipefd[2], rc;
	size_t n = 0;

	snprintf(e->sim_link, sizeof(e->sim_link), "%s/sim-%s.pty", dir,
		 e->name);
	snprintf(logpath, sizeof(logpath), "%s/sim-%s.sms.log", dir, e->name);
	snprintf(args, sizeof(args), "%s", e->cfg.sim_args ? e->cfg.sim_args : "");
	argv[n++] = p->sim_binary;
	argv[n++] = "--link";
	argv[n++] = e->sim_link;
	argv[n++] = "--name";
	argv[n++] = e->name;
	argv[n++] = "--sms-log";
	argv[n++] = logpath;
	n += sim_split_args(args, argv + n, sizeof(argv) / sizeof(argv[0]) - n - 1);
	argv[n] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	rc = posix_spawnp(&e->sim_pid, p->sim_binary, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		snprintf(err, errlen, "cannot run %s: %s", p->sim_binary,
			 strerror(rc));
		e->sim_pid = 0;
		close(pipefd[0]);
		return -rc;
	}
	rc = sim_wait_ready(pipefd[0], err, errlen);
	close(pipefd[0]);
	if (rc == 0)
		log_info("modem %s: simulator pid %d on %s, SMS log %s",
			 e->name, (int)e->sim_pid, e->sim_link, logpath);
	return rc;
}

static void sim_stop(struct pool_entry *e)
{
	if (e->sim_pid <= 0)
		return;
	kill(e->sim_pid, SIGTERM);
	/* Bounded: the simulator exits on SIGTERM at once; SIGKILL after 2 s. */
	for (int i = 0; i < 200; i++) {
		if (waitpid(e->sim_pid, NULL, WNOHANG) != 0)
			goto done;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	kill(e->sim_pid, SIGKILL);
	waitpid(e->sim_pid, NULL, 0);
done:
	e->sim_pid = 0;
}

/* --- entries --------------------------------------------------------------*/

static const char *pool_driver_name(enum config_driver d)
{
	return d == CONFIG_DRIVER_AUTO ? NULL : config_driver_name(d);
}

static const char *pool_storage_name(enum config_storage s)
{
	return s == CONFIG_STORAGE_AUTO ? NULL : config_storage_name(s);
}

static void entry_modem_config(const struct pool *p,
			       const struct pool_entry *e,
			       struct modem_config *mc)
{
	const struct config_modem *c = &e->cfg;

	memset(mc, 0, sizeof(*mc));
	mc->name = e->name;
	mc->device = c->device_kind == CONFIG_DEVICE_SIM ? e->sim_link
							 : c->device;
	mc->baud = c->baud;
	mc->flow = (enum transport_flow)c->flow_control;
	mc->driver = pool_driver_name(c->driver);
	mc->pin = c->pin && c->pin[0] ? c->pin : NULL;
	mc->smsc = c->smsc && c->smsc[0] ? c->smsc : NULL;
	mc->storage = pool_storage_name(c->storage);
	mc->command_timeout = (double)c->command_timeout;
	mc->send_timeout = (double)c->send_timeout;
	mc->health_interval = (double)p->cfg->daemon.health_interval;
	mc->health_timeouts = (unsigned)c->health_timeouts;
}

static void entry_free(struct pool *p, struct pool_entry *e)
{
	if (!e)
		return;
	if (e->modem) {
		POOL_FOR_LISTENERS(p, l)
		if (l->removed)
			l->removed(l->user, e->modem);
		modem_free(e->modem);
	}
	sim_stop(e);
	free(e);
}

static int entry_start(struct pool *p, struct pool_entry *e, char *err,
		       size_t errlen)
{
	struct modem_events ev = {
		.user = e,
		.state_changed = on_state,
		.sms_stored = on_sms_stored,
		.sms_direct = on_sms_direct,
		.report_direct = on_report_direct,
		.report_stored = on_report_stored,
		.storage_full = on_storage_full,
	};
	struct modem_config mc;
	char why[256] = "";
	int rc;

	if (e->cfg.device_kind == CONFIG_DEVICE_SIM) {
		rc = sim_spawn(p, e, why, sizeof(why));
		if (rc < 0)
			goto fail;
	}
	entry_modem_config(p, e, &mc);
	rc = modem_config_check(&mc, why, sizeof(why));
	if (rc < 0)
		goto fail;
	e->modem = modem_new(p->loop, &mc, &ev);
	if (!e->modem) {
		rc = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	rc = modem_start(e->modem, why, sizeof(why));
	if (rc < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "modem %s: %s", e->name, why);
	return rc;
}

static struct pool_entry *entry_new(struct pool *p,
				    const struct config_modem *c)
{
	struct pool_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->pool = p;
	e->cfg = *c;
	snprintf(e->name, sizeof(e->name), "%s", c->name);
	return e;
}

/* --- modem.list ---------------------------------------------------------- */

static json_t *modem_json(const struct modem *m)
{
	const struct modem_info *i = modem_get_info(m);

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:b, s:I, s:I}",
			 "name", i->name, "state", modem_state_name(i->state),
			 "driver", i->driver ? i->driver : "",
			 "manufacturer", i->manufacturer, "model", i->model,
			 "operator", i->operator_name,
			 "signal", i->signal < 0 ? json_null()
						 : json_integer(i->signal),
			 "registration", modem_reg_name(i->reg),
			 "registered", i->reg == MODEM_REG_HOME ||
					       i->reg == MODEM_REG_ROAMING,
			 "sent", (json_int_t)i->sent,
			 "failed", (json_int_t)i->failed);
}

static void op_modem_list(struct ctl_req *req, json_t *args, void *ctx)
{
	struct pool *p = ctx;
	json_t *list = json_array();

	(void)args;
	for (size_t i = 0; i < p->n; i++)
		if (p->entries[i]->modem)
			json_array_append_new(list,
					      modem_json(p->entries[i]->modem));
	ctl_reply_ok(req, json_pack("{s:o}", "modems", list));
}

static const struct ctl_op pool_ops[] = {
	{ "modem.list", op_modem_list, CTL_ROLE_ADMIN },
};

/* --- the pool -------------------------------------------------------------*/

static int pool_add_entries(struct pool *p, const struct config *cfg)
{
	p->entries = calloc(cfg->n_modems ? cfg->n_modems : 1,
			    sizeof(*p->entries));
	if (!p->entries)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_modems; i++) {
		p->entries[i] = entry_new(p, &cfg->modems[i]);
		if (!p->entries[i])
			return -ENOMEM;
		p->n++;
	}
	return 0;
}

struct pool *pool_new(struct ev_loop *loop, struct ctl_server *ctl,
		      const struct config *cfg, const char *sim_binary,
		      char *err, size_t errlen)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p)
		goto nomem;
	p->loop = loop;
	p->ctl = ctl;
	p->cfg = cfg;
	p->sim_binary = strdup(sim_binary);
	if (!p->sim_binary || pool_add_entries(p, cfg) < 0)
		goto nomem;
	if (ctl_register(ctl, pool_ops, sizeof(pool_ops) / sizeof(pool_ops[0]),
			 p) < 0)
		goto nomem;
	return p;
nomem:
	snprintf(err, errlen, "out of memory");
	pool_free(p);
	return NULL;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		entry_free(p, p->entries[i]);
	free(p->entries);
	free(p->sim_binary);
	free(p);
}

int pool_start(struct pool *p, char *err, size_t errlen)
{
	for (size_t i = 0; i < p->n; i++) {
		int rc = entry_start(p, p->entries[i], err, errlen);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Whether a section changed in a way that needs the modem restarted. */
static bool modem_config_changed(const struct config_modem *a,
				 const struct config_modem *b)
{
	return strcmp(a->device, b->device) != 0 || a->baud != b->baud ||
	       a->driver != b->driver || strcmp(a->pin, b->pin) != 0 ||
	       strcmp(a->smsc, b->smsc) != 0 ||
	       a->flow_control != b->flow_control ||
	       a->storage != b->storage ||
	       a->command_timeout != b->command_timeout ||
	       a->send_timeout != b->send_timeout ||
	       a->health_timeouts != b->health_timeouts ||
	       strcmp(a->sim_args ? a->sim_args : "",
		      b->sim_args ? b->sim_args : "") != 0;
}

static struct pool_entry *pool_take_entry(struct pool *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++) {
		struct pool_entry *e = p->entries[i];

		if (e && strcmp(e->name, name) == 0) {
			p->entries[i] = NULL;
			return e;
		}
	}
	return NULL;
}

/* Rebuilds the entry list in the new config's order: unchanged entries are
 * kept (their config copy refreshed: the old strings go away with the old
 * config), changed ones are restarted, new ones started, and the ones left
 * over in the old list are freed. */
int pool_reload(struct pool *p, const struct config *cfg, char *err,
		size_t errlen)
{
	struct pool_entry **next = calloc(cfg->n_modems ? cfg->n_modems : 1,
					  sizeof(*next));
	int rc = 0;

	if (!next) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_modems; i++) {
		const struct config_modem *c = &cfg->modems[i];
		struct pool_entry *e = pool_take_entry(p, c->name);

		if (e && modem_config_changed(&e->cfg, c)) {
			log_notice("modem %s: config changed, restarting", c->name);
			entry_free(p, e);
			e = NULL;
		}
		if (e) {
			e->cfg = *c;
			next[i] = e;
			continue;
		}
		next[i] = entry_new(p, c);
		if (!next[i]) {
			rc = -ENOMEM;
			continue;
		}
		log_notice("modem %s: starting", c->name);
		if (entry_start(p, next[i], err, errlen) < 0) {
			log_err("%s", err);
			rc = -EIO;
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		if (p->entries[i]) {
			log_notice("modem %s: removed from the config",
				   p->entries[i]->name);
			entry_free(p, p->entries[i]);
		}
	}
	free(p->entries);
	p->entries = next;
	p->n = cfg->n_modems;
	p->cfg = cfg;
	return rc;
}

size_t pool_count(const struct pool *p)
{
	return p->n;
}

struct modem *pool_modem(const struct pool *p, size_t i)
{
	return i < p->n && p->entries[i] ? p->entries[i]->modem : NULL;
}

size_t pool_ready_count(const struct pool *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n; i++)
		if (p->entries[i] && p->entries[i]->modem &&
		    modem_is_ready(p->entries[i]->modem))
			n++;
	return n;
}

const struct config_modem *pool_modem_config(const struct pool *p,
					     const struct modem *m)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->entries[i] && p->entries[i]->modem == m)
			return &p->entries[i]->cfg;
	return NULL;
}
