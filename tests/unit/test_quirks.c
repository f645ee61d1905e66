/* test_quirks — driver=auto on the identity strings real modems print, the
 * quirk tables' sanity, and each family's captured URC lines against the
 * prefixes its table registers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "drivers/quirks.h"

/* +CGMI answer and ATI text (lines joined with " / " as the driver does),
 * as the devices print them. */
static const struct {
	const char *device, *cgmi, *ati, *want;
} idents[] = {
	{ "SIMCom SIM800L", "SIMCOM_Ltd", "SIM800 R14.18", "simcom" },
	{ "SIMCom SIM900", "SIMCOM_Ltd", "SIM900 R11.0", "simcom" },
	{ "SIMCom SIM7600E-H", "SIMCOM INCORPORATED",
	  "Manufacturer: SIMCOM INCORPORATED / Model: SIMCOM_SIM7600E-H / "
	  "Revision: SIM7600M22_V1.1 / IMEI: 861234567890123 / "
	  "+GCAP: +CGSM", "simcom" },
	{ "Quectel EC25", "Quectel",
	  "Quectel / EC25 / Revision: EC25EFAR06A06M4G", "quectel" },
	{ "Quectel M35", "Quectel_Ltd",
	  "Quectel_Ltd / Quectel_M35 / Revision: M35AR01A07", "quectel" },
	{ "Quectel EG25-G, ATI only", NULL,
	  "Quectel / EG25 / Revision: EG25GGBR07A08M2G", "quectel" },
	{ "Huawei E3372 (stick mode)", "huawei",
	  "Manufacturer: huawei / Model: E3372 / Revision: 22.328.62.00.1217 / "
	  "IMEI: 867123456789012 / +GCAP: +CGSM,+DS,+ES", "huawei" },
	{ "Huawei E173", "huawei",
	  "Manufacturer: huawei / Model: E173 / Revision: 11.126.85.00.209",
	  "huawei" },
	{ "Huawei, upper case", "HUAWEI", "", "huawei" },
	{ "Telit LE910", "Telit", "Telit / LE910C1-EU / 25.20.676", "generic" },
	{ "u-blox SARA-U201", "u-blox", "SARA-U201", "generic" },
	{ "the simulator", "smsgw", "smsgw / modemsim / Revision: 1.0.0",
	  "generic" },
	{ "nothing answered", NULL, NULL, "generic" },
};

static void test_detect(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(idents) / sizeof(idents[0]); i++) {
		const struct modem_quirks *q =
			quirks_detect(idents[i].cgmi, idents[i].ati);

		if (strcmp(q->name, idents[i].want) != 0)
			fail_msg("%s: detected %s, want %s", idents[i].device,
				 q->name, idents[i].want);
	}
}

static void test_find(void **state)
{
	(void)state;
	assert_ptr_equal(quirks_find("huawei"), &quirks_huawei);
	assert_ptr_equal(quirks_find("SIMCOM"), &quirks_simcom);
	assert_ptr_equal(quirks_find("generic"), &quirks_generic);
	assert_null(quirks_find("auto"));
	assert_null(quirks_find("nokia"));
	assert_null(quirks_find(NULL));
	assert_true(quirks_name_valid("auto"));
	assert_true(quirks_name_valid(NULL));
	assert_true(quirks_name_valid(""));
	assert_true(quirks_name_valid("quectel"));
	assert_false(quirks_name_valid("nokia"));
	for (size_t i = 0; quirks_table[i]; i++)
		assert_non_null(strstr(quirks_names(), quirks_table[i]->name));
}

static bool clean_prefix(const char *p)
{
	return p && *p && !strpbrk(p, "\r\n");
}

static void check_list(const char *const *v, const char *must_start)
{
	for (size_t i = 0; v && v[i]; i++) {
		assert_true(clean_prefix(v[i]));
		if (must_start)
			assert_memory_equal(v[i], must_start,
					    strlen(must_start));
	}
}

static void test_table_sanity(void **state)
{
	size_t n = 0;

	(void)state;
	assert_ptr_equal(quirks_table[0], &quirks_generic);
	for (; quirks_table[n]; n++) {
		const struct modem_quirks *q = quirks_table[n];
		const char *storage = QUIRK(q, storage);

		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(quirks_table[j]->name, q->name);
		/* Vendors are found by something; the generic by nothing. */
		if (n > 0)
			assert_true(q->match && q->match[0]);
		check_list(q->match, NULL);
		check_list(q->ignore_urcs, NULL);
		check_list(q->memfull_urcs, NULL);
		check_list(q->boot_urcs, NULL);
		check_list(QUIRK(q, init_cmds), "AT");
		check_list(QUIRK(q, reset_cmds), "AT");
		check_list(QUIRK(q, cnmi), "AT+CNMI=");
		assert_non_null(QUIRK(q, reset_cmds)[0]);
		assert_non_null(QUIRK(q, cnmi)[0]);
		assert_true(QUIRK(q, reset_wait) > 0);
		assert_true(strcmp(storage, "SM") == 0 ||
			    strcmp(storage, "ME") == 0 ||
			    strcmp(storage, "MT") == 0);
		if (q->signal_urc)
			assert_true(clean_prefix(q->signal_urc));
		for (const struct quirk_final *f = q->finals; f && f->prefix;
		     f++)
			assert_true(clean_prefix(f->prefix));
		/* A reset must bring the modem back: never a power-off. */
		for (const char *const *r = QUIRK(q, reset_cmds); *r; r++)
			assert_null(strstr(*r, "QPOWD"));
	}
	assert_int_equal(n, 4);
	/* Tier b fields fall back to the generic ones. */
	assert_string_equal(QUIRK(&quirks_simcom, storage), "SM");
	assert_string_equal(QUIRK(&quirks_quectel, storage), "ME");
	assert_ptr_equal(QUIRK(&quirks_quectel, cnmi), quirks_generic.cnmi);
	assert_string_equal(QUIRK(&quirks_huawei, cnmi)[0],
			    "AT+CNMI=2,1,0,2,0");
	assert_string_equal(QUIRK(&quirks_huawei, init_cmds)[0], "AT^CURC=0");
}

static bool starts(const char *line, const char *prefix)
{
	return prefix && strncmp(line, prefix, strlen(prefix)) == 0;
}

static bool in_list(const char *line, const char *const *v)
{
	for (size_t i = 0; v && v[i]; i++)
		if (starts(line, v[i]))
			return true;
	return false;
}

/* What the family's table (plus the generic one) does with a line. */
static const char *classify(const struct modem_quirks *q, const char *line)
{
	if (starts(line, q->signal_urc))
		return "signal";
	if (in_list(line, q->memfull_urcs))
		return "memfull";
	if (in_list(line, q->boot_urcs) ||
	    in_list(line, quirks_generic.boot_urcs))
		return "boot";
	if (in_list(line, q->ignore_urcs) ||
	    in_list(line, quirks_generic.ignore_urcs))
		return "ignore";
	return "unhandled";
}

/* Unsolicited lines captured from each family, and what must become of
 * them. */
static const struct {
	const struct modem_quirks *q;
	const char *line, *want;
} urcs[] = {
	{ &quirks_simcom, "RDY", "boot" },
	{ &quirks_simcom, "+CFUN: 1", "ignore" },
	{ &quirks_simcom, "+CPIN: READY", "ignore" },
	{ &quirks_simcom, "Call Ready", "ignore" },
	{ &quirks_simcom, "SMS Ready", "ignore" },
	{ &quirks_simcom, "UNDER-VOLTAGE WARNNING", "ignore" },
	{ &quirks_simcom, "*PSUTTZ: 24/11/26,10:00:00\",\"+04\",0", "ignore" },
	{ &quirks_simcom, "+CSQN: 21,0", "signal" },
	{ &quirks_quectel, "RDY", "boot" },
	{ &quirks_quectel, "+QUSIM: 1", "ignore" },
	{ &quirks_quectel, "+QIND: SMS DONE", "ignore" },
	{ &quirks_quectel, "+QIND: PB DONE", "ignore" },
	{ &quirks_quectel, "+QIND: \"act\",\"LTE\"", "ignore" },
	{ &quirks_quectel, "+QIND: \"csq\",21,99", "signal" },
	{ &quirks_quectel, "+QIND: \"smsfull\",\"SM\"", "memfull" },
	{ &quirks_huawei, "^SYSSTART", "boot" },
	{ &quirks_huawei, "^RSSI: 18", "signal" },
	{ &quirks_huawei, "^BOOT:20359812,0,0,0,72", "ignore" },
	{ &quirks_huawei, "^MODE: 5,4", "ignore" },
	{ &quirks_huawei, "^SRVST: 2", "ignore" },
	{ &quirks_huawei, "^SIMST: 1", "ignore" },
	{ &quirks_huawei, "^HCSQ: \"LTE\",52,45,126,31", "ignore" },
	{ &quirks_huawei, "^DSFLOWRPT:0000001E,00000000,00000000", "ignore" },
	{ &quirks_huawei, "^SMMEMFULL: \"SM\"", "memfull" },
	{ &quirks_generic, "+CGREG: 1", "ignore" },
	/* The driver itself handles these: no table may swallow them. */
	{ &quirks_generic, "+CMTI: \"SM\",3", "unhandled" },
	{ &quirks_simcom, "+CMTI: \"SM\",3", "unhandled" },
	{ &quirks_quectel, "+CREG: 1", "unhandled" },
	{ &quirks_huawei, "+CDS: 25", "unhandled" },
};

static void test_captured_urcs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(urcs) / sizeof(urcs[0]); i++) {
		const char *got = classify(urcs[i].q, urcs[i].line);

		if (strcmp(got, urcs[i].want) != 0)
			fail_msg("%s: \"%s\" is %s, want %s", urcs[i].q->name,
				 urcs[i].line, got, urcs[i].want);
	}
}

static void test_huawei_final(void **state)
{
	(void)state;
	assert_non_null(quirks_huawei.finals);
	assert_string_equal(quirks_huawei.finals[0].prefix,
			    "COMMAND NOT SUPPORT");
	assert_int_equal(quirks_huawei.finals[0].type, AT_ERR_ERROR);
	assert_null(quirks_generic.finals);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_table_sanity),
		cmocka_unit_test(test_captured_urcs),
		cmocka_unit_test(test_huawei_final),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
