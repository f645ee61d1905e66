/* libFuzzer target for the config loader (config/config.c, inih below it).
 *
 * The input is a smsgwd.conf: it goes to an in-memory file (memfd) that
 * config_load() opens by its /proc/self/fd path, as it would open any
 * file. Then:
 * - a refusal must come with at least one message, each "PATH:..." and
 *   one line of text, and must leave *out untouched;
 * - an accepted config must print (config_print), and what it prints must
 *   load again and print the same bytes (the effective config is a fixed
 *   point; skipped when a PIN is set, since it prints as "****");
 * - every template of every language must render with every placeholder
 *   set, and the lookups must answer.
 * Anything else aborts; sanitizers catch the rest.
 *
 *   make fuzz-build && build/fuzz/fuzz_config tests/fuzz/corpus/config */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An in-memory file holding data; its path in *path. */
static int mem_file(const void *data, size_t size, char *path, size_t len)
{
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

static void check_errors(const struct config_errors *errs, const char *path)
{
	size_t plen = strlen(path);

	if (errs->count == 0 && errs->dropped == 0)
		abort(); /* refused without saying why */
	if (errs->count > CONFIG_ERRORS_MAX)
		abort();
	for (size_t i = 0; i < errs->count; i++) {
		const char *m = errs->msgs[i];

		if (!m || strncmp(m, path, plen) != 0 || m[plen] != ':' ||
		    strchr(m, '\n'))
			abort();
	}
}

/* config_print() into a malloc'ed buffer. */
static char *print(const struct config *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *fp = open_memstream(&buf, len);

	if (!fp)
		abort();
	config_print(cfg, fp);
	if (fclose(fp) != 0)
		abort();
	return buf;
}

static void exercise(const struct config *cfg)
{
	static const char *const langs[] = { NULL, "en", "es", "xx", "" };
	struct config_template_vars v = {
		.org = "Org {x}", .name = "N\xc3\xb1", .link = "https://l/t",
		.code = "ABCDE-FGHJK",
	};
	char out[4096];

	for (size_t i = 0; i < cfg->n_modems; i++) {
		if (config_modem_find(cfg, cfg->modems[i].name) == NULL)
			abort();
		(void)config_driver_name(cfg->modems[i].driver);
		(void)config_flow_name(cfg->modems[i].flow_control);
		(void)config_storage_name(cfg->modems[i].storage);
		(void)config_device_kind_name(cfg->modems[i].device_kind);
	}
	if (config_modem_find(cfg, "no such modem, surely") != NULL &&
	    !config_modem_find(cfg, "no such modem, surely"))
		abort();
	for (size_t l = 0; l < sizeof(langs) / sizeof(langs[0]); l++) {
		for (int k = 0; k < CONFIG_TMPL_COUNT; k++) {
			const char *t = config_template(cfg, langs[l], k);
			int n;

			if (!t)
				abort();
			n = config_template_render(t, &v, out, sizeof(out));
			if (n >= 0 && (size_t)n != strlen(out))
				abort();
			if (n == -ENOSPC && out[0] != '\0')
				abort();
		}
	}
	for (size_t i = 0; i < cfg->n_templates; i++)
		(void)config_template(cfg, cfg->templates[i].lang,
				      CONFIG_TMPL_INVITE);
	(void)config_pwhash_name(cfg->accounts.password_hash);
}

static bool has_pin(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_modems; i++)
		if (cfg->modems[i].pin && cfg->modems[i].pin[0])
			return true;
	return false;
}

/* Skips a leading "; comment" line. */
static const char *skip_comment(const char *p, size_t *len)
{
	const char *nl = *len && p[0] == ';' ? memchr(p, '\n', *len) : NULL;

	if (!nl)
		return p;
	*len -= (size_t)(nl + 1 - p);
	return nl + 1;
}

/* The effective config, printed, is a config that prints the same. */
static void round_trip(const struct config *cfg)
{
	struct config_errors errs = { 0 };
	struct config *again = NULL;
	char path[64];
	size_t len1, len2;
	char *p1 = print(cfg, &len1), *p2;
	const char *b1, *b2;
	int fd = mem_file(p1, len1, path, sizeof(path));

	if (config_load(path, &again, &errs) != 0) {
		config_errors_print(&errs, stderr);
		fprintf(stderr, "---- printed config that fails to load:\n%s", p1);
		abort();
	}
	p2 = print(again, &len2);
	/* The first line names the file each was loaded from. */
	b1 = skip_comment(p1, &len1);
	b2 = skip_comment(p2, &len2);
	if (len1 != len2 || memcmp(b1, b2, len1) != 0) {
		fprintf(stderr, "---- first print:\n%s---- second print:\n%s", p1, p2);
		abort();
	}
	config_free(again);
	config_errors_free(&errs);
	free(p1);
	free(p2);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { 0 };
	struct config *cfg = (struct config *)&errs; /* must stay untouched */
	struct config *const sentinel = cfg;
	char path[64];
	int fd, rc;

	if (size > 65536)
		return 0;
	fd = mem_file(data, size, path, sizeof(path));
	rc = config_load(path, &cfg, &errs);
	if (rc < 0) {
		if (cfg != sentinel)
			abort(); /* *out changed on failure */
		check_errors(&errs, path);
		static FILE *devnull;

		if (!devnull && !(devnull = fopen("/dev/null", "we")))
			abort();
		config_errors_print(&errs, devnull);
	} else {
		if (rc != 0 || cfg == sentinel || cfg->n_modems == 0)
			abort();
		exercise(cfg);
		if (!has_pin(cfg))
			round_trip(cfg);
		config_free(cfg);
	}
	config_errors_free(&errs);
	close(fd);
	return 0;
}
