/* simvendor — see simvendor.h. */
#include "drivers/sim/simvendor.h"

#include <stddef.h>
#include <string.h>

/* A plain 27.005/27.007 modem that admits to being a simulator. */
static const char *const generic_ati[] = { "smsgw", "modemsim",
					   "Revision: 1.0.0", NULL };
static const char *const generic_boot[] = { "RDY", "+CFUN: 1", NULL };
static const char *const generic_ready[] = { NULL };
static const char *const generic_noise[] = { "+CREG: 1", "+CGREG: 1",
					     "+CIEV: 2,4", NULL };

/* SIM800L: "RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"
 * at power-on; +CSQN with AT+EXUNSOL="SQ",1; the under-voltage warning
 * is spelt like that by the firmware. */
static const char *const simcom_ati[] = { "SIM800 R14.18", NULL };
static const char *const simcom_boot[] = { "RDY", "+CFUN: 1", NULL };
static const char *const simcom_ready[] = { "Call Ready", "SMS Ready", NULL };
static const char *const simcom_noise[] = { "+CSQN: 21,0", "+CREG: 1",
					    "UNDER-VOLTAGE WARNNING", NULL };

/* EC25: "RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1",
 * "+QIND: SMS DONE", "+QIND: PB DONE". */
static const char *const quectel_ati[] = { "Quectel", "EC25",
					   "Revision: EC25EFAR06A06M4G",
					   NULL };
static const char *const quectel_boot[] = { "RDY", "+CFUN: 1", NULL };
static const char *const quectel_ready[] = { "+QUSIM: 1", "+QIND: SMS DONE",
					     "+QIND: PB DONE", NULL };
static const char *const quectel_noise[] = { "+QIND: \"csq\",21,99",
					     "+CREG: 1",
					     "+QIND: \"act\",\"LTE\"", NULL };

/* E3372 / E1550: ^SYSSTART at boot, ^RSSI, ^MODE, ^SRVST, ^HCSQ and the
 * E1550's periodic ^BOOT line, all until AT^CURC=0. */
static const char *const huawei_ati[] = {
	"Manufacturer: huawei", "Model: E3372",
	"Revision: 22.328.62.00.1217", "IMEI: {imei}",
	"+GCAP: +CGSM,+DS,+ES", NULL
};
static const char *const huawei_boot[] = { "^SYSSTART", NULL };
static const char *const huawei_ready[] = { "^SIMST: 1", "^SRVST: 2", NULL };
static const char *const huawei_noise[] = {
	"^RSSI: 18", "^BOOT:20359812,0,0,0,72", "^MODE: 5,4",
	"^HCSQ: \"LTE\",52,45,126,31", NULL
};

static const struct simvendor vendors[] = {
	{
		.name = "generic", .ati = generic_ati,
		.cgmi = "smsgw", .cgmm = "modemsim", .cgmr = "1.0.0",
		.boot_urcs = generic_boot, .cpin_urc = true,
		.ready_urcs = generic_ready, .noise = generic_noise,
		.operator_act = "",
	},
	{
		.name = "simcom", .ati = simcom_ati,
		.cgmi = "SIMCOM_Ltd", .cgmm = "SIMCOM_SIM800L",
		.cgmr = "Revision:1418B05SIM800L24",
		.boot_urcs = simcom_boot, .cpin_urc = true,
		.ready_urcs = simcom_ready, .noise = simcom_noise,
		.operator_act = "",
	},
	{
		.name = "quectel", .ati = quectel_ati,
		.cgmi = "Quectel", .cgmm = "EC25", .cgmr = "EC25EFAR06A06M4G",
		.boot_urcs = quectel_boot, .cpin_urc = true,
		.ready_urcs = quectel_ready, .noise = quectel_noise,
		.operator_act = ",7",
	},
	{
		.name = "huawei", .ati = huawei_ati,
		.cgmi = "huawei", .cgmm = "E3372", .cgmr = "22.328.62.00.1217",
		.boot_urcs = huawei_boot, .cpin_urc = false,
		.ready_urcs = huawei_ready, .noise = huawei_noise,
		.operator_act = ",7", .rssi_urc = true,
	},
};

const struct simvendor *simvendor_find(const char *name)
{
	for (size_t i = 0; i < sizeof(vendors) / sizeof(vendors[0]); i++)
		if (strcmp(vendors[i].name, name) == 0)
			return &vendors[i];
	return NULL;
}

const char *simvendor_names(void)
{
	return "generic, simcom, quectel, huawei";
}
