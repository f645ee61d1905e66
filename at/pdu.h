/* pdu — SMS TPDU codec (3GPP TS 23.040, alphabets per TS 23.038).
 *
 * Pure functions: no I/O, no globals, no allocation. Every field read is
 * preceded by a length check; a malformed PDU is an error with a reason in
 * `err` (which names the field), never an over-read.
 *
 * Hex strings are what AT+CMGR / +CMGL / +CMT print in PDU mode: the SMSC
 * address first ("00" when absent), then the TPDU. */
#ifndef SMSGW_PDU_H
#define SMSGW_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PDU_ADDR_MAX 48    /* UTF-8 of up to 11 alphanumeric chars, or '+' + 20 digits */
#define PDU_TEXT_MAX 512   /* UTF-8 of one part: 160 septets x 3 bytes, + NUL */
#define PDU_DATA_MAX 140   /* TP-UD octets */
#define PDU_HEX_MAX 400    /* SMSC "00" + longest TPDU in hex + NUL */
#define PDU_ERR_MAX 128

enum pdu_type {
	PDU_DELIVER,       /* MTI 00, SC -> MS */
	PDU_SUBMIT,        /* MTI 01, MS -> SC (also stored outgoing messages) */
	PDU_STATUS_REPORT, /* MTI 10, SC -> MS */
};

enum pdu_encoding {
	PDU_ENC_GSM7,
	PDU_ENC_8BIT,
	PDU_ENC_UCS2,
};

/* National language identifiers (TS 23.038 6.2.1.2.4), 0 = default. */
enum pdu_lang {
	PDU_LANG_DEFAULT = 0,
	PDU_LANG_SPANISH = 2,
	PDU_LANG_PORTUGUESE = 3,
};

struct pdu_addr {
	char text[PDU_ADDR_MAX]; /* "+34600111222" (TON international),
				    "600111222", or UTF-8 alphanumeric;
				    "" when absent */
	uint8_t ton;             /* type of number, 0..7 */
	uint8_t npi;             /* numbering plan, 0..15 */
};

struct pdu_time {
	int year, month, day, hour, minute, second; /* year is 4-digit */
	int tz_quarters;  /* offset from UTC in quarter hours, signed */
};

struct pdu_concat {
	bool present;
	bool ref16;       /* 16-bit reference IE (0x08) instead of 8-bit (0x00) */
	uint16_t ref;
	uint8_t total;    /* 1..255 */
	uint8_t seq;      /* 1..total */
};

/* One decoded TPDU. */
struct pdu_sms {
	enum pdu_type type;
	struct pdu_addr smsc;      /* empty when the SMSC prefix was "00" */
	struct pdu_addr addr;      /* sender (deliver), recipient (submit,
				      status report) */
	struct pdu_time scts;      /* deliver, status report */
	struct pdu_time discharge; /* status report */
	uint8_t mr;                /* submit, status report */
	uint8_t status;            /* status report TP-ST */
	bool srr;                  /* submit TP-SRR, deliver TP-SRI,
				      status report TP-SRQ */
	int msg_class;             /* 0..3, or -1 when none */
	uint8_t pid;
	uint8_t dcs;
	enum pdu_encoding encoding;
	struct pdu_concat concat;
	enum pdu_lang lang_single;  /* from UDH IE 0x24 */
	enum pdu_lang lang_locking; /* from UDH IE 0x25 */
	bool has_udh;
	bool has_ud;               /* false only for a status report
				      without TP-UD (no TP-PI UDL bit) */
	unsigned validity_min;     /* submit: relative TP-VP in minutes;
				      0 when absent or not relative */
	char text[PDU_TEXT_MAX];   /* UTF-8 text (gsm7, ucs2); "" for 8-bit */
	uint8_t data[PDU_DATA_MAX];/* user data without UDH (8-bit) */
	size_t data_len;
};

/* Decodes `hex` (SMSC prefix first, upper or lower case, up to
 * PDU_HEX_MAX digits). Returns 0, or -EINVAL with the reason in err
 * (e.g. "user data: UDL 200 exceeds 160 septets"); *out is untouched on
 * failure; err may be NULL. Rules worth knowing:
 *  - reserved or compressed DCS, reserved TP-MTI, BCD garbage in a time
 *    stamp or a number, truncation anywhere, UDHL past UDL, a known IE
 *    with the wrong length, an odd UCS-2 octet count: errors;
 *  - unknown IEs are skipped; a concatenation IE with seq 0 or seq > total
 *    is ignored (concat.present false), as TS 23.040 9.2.3.24.1 says;
 *  - a shift table this codec lacks (e.g. Turkish) reads as the default
 *    table; undefined escape codes read as the main table's character;
 *  - two-digit years 90..99 are 1990s, 00..89 are 2000s;
 *  - octets after the user data are ignored;
 *  - a status report's TP-PI is honoured (its UD decoded when announced);
 *    with no TP-PI, has_ud is false. */
int pdu_decode_hex(const char *hex, struct pdu_sms *out, char *err, size_t errlen);
/* Same on raw bytes; has_smsc false when buf starts at the first TPDU octet. */
int pdu_decode(const uint8_t *buf, size_t len, bool has_smsc,
	       struct pdu_sms *out, char *err, size_t errlen);

/* What encoding a text needs and how many parts it takes. */
struct pdu_plan {
	enum pdu_encoding encoding;  /* PDU_ENC_GSM7 or PDU_ENC_UCS2 */
	enum pdu_lang lang_single;   /* shift tables chosen (gsm7 only) */
	enum pdu_lang lang_locking;
	unsigned parts;              /* 1..255 */
	unsigned units;              /* septets (gsm7) or UTF-16 units (ucs2) */
};

/* Chooses the cheapest correct encoding: fewest parts, counting the UDH
 * (3 octets per shift-table IE, 5 for an 8-bit reference concatenation IE)
 * and never splitting an escape pair or a surrogate pair. Ties go, in this
 * order, to: the default alphabet, Spanish single shift, Portuguese single
 * shift, Portuguese locking shift, locking + single combinations, UCS-2 —
 * so accented text stays 7-bit when a table allows it. allow_shift=false
 * forbids national language tables. pdu_encode_submit() plans the same
 * way but with its own reference size. Returns 0, -EINVAL (invalid UTF-8)
 * or -E2BIG (more than 255 parts). */
int pdu_plan_text(const char *utf8, bool allow_shift, struct pdu_plan *plan);

/* One encoded part, exactly what AT+CMGS=<tpdu_len> takes. */
struct pdu_part {
	char hex[PDU_HEX_MAX];  /* SMSC prefix ("00" unless smsc given) + TPDU */
	unsigned tpdu_len;      /* octets after the SMSC prefix */
};

struct pdu_submit_opts {
	const char *to;          /* "+34600111222" or national "600111222" */
	bool srr;                /* request a status report */
	unsigned validity_min;   /* relative validity in minutes, rounded up to
				    the next TP-VP step (5 min .. 63 weeks;
				    more is -EINVAL); 0: no TP-VP */
	int msg_class;           /* -1 none, 0 (flash) .. 3 */
	bool allow_shift;        /* national language shift tables allowed */
	uint16_t ref;            /* concatenation reference (multipart only) */
	bool ref16;              /* 16-bit reference IE */
	uint8_t mr;              /* TP-MR to put in the PDU (modems overwrite it) */
};

/* Encodes UTF-8 text as 1..n SMS-SUBMIT PDUs into parts[0..max_parts).
 * Never splits an escape sequence or a surrogate pair across parts.
 * `to` is '+' and up to 20 digits (TON/NPI 0x91) or digits alone (0x81);
 * '*' and '#' are allowed. Multipart messages carry the concatenation IE
 * (ref16: IE 0x08 with opts->ref, else IE 0x00 with its low octet).
 * Returns the number of parts (> 0) or -EINVAL / -E2BIG / -ENOSPC
 * (max_parts too small) with the reason in err. */
int pdu_encode_submit(const char *utf8, const struct pdu_submit_opts *opts,
		      struct pdu_part *parts, size_t max_parts,
		      char *err, size_t errlen);

/* For the simulated modem and tests: SMS-DELIVER from `from` (international
 * with '+', national, or else alphanumeric: up to 11 septets of the default
 * alphabet, TON 5), possibly multipart. smsc may be NULL ("00" prefix);
 * scts.year must be 1990..2089. Same return convention as
 * pdu_encode_submit. */
struct pdu_deliver_opts {
	const char *from;
	const char *smsc;
	struct pdu_time scts;
	bool allow_shift;
	uint16_t ref;
	bool ref16;
	int msg_class;
};
int pdu_encode_deliver(const char *utf8, const struct pdu_deliver_opts *opts,
		       struct pdu_part *parts, size_t max_parts,
		       char *err, size_t errlen);

/* For the simulated modem and tests: one SMS-STATUS-REPORT (no TP-PI).
 * Returns 0 or -EINVAL with the reason in err. */
int pdu_encode_status_report(uint8_t mr, const char *recipient,
			     const struct pdu_time *scts,
			     const struct pdu_time *discharge, uint8_t status,
			     const char *smsc, struct pdu_part *out,
			     char *err, size_t errlen);

/* TP-ST meaning (TS 23.040 9.2.3.15), e.g. "received by the SME". */
const char *pdu_status_text(uint8_t status);
/* TP-ST class: 0 delivered, 1 still trying (temporary), 2 failed
 * (permanent errors, and temporary ones the SC gave up on; values with
 * bit 7 set are reserved and count as failed). */
enum pdu_status_class { PDU_ST_DELIVERED, PDU_ST_PENDING, PDU_ST_FAILED };
enum pdu_status_class pdu_status_class(uint8_t status);

const char *pdu_encoding_name(enum pdu_encoding enc); /* "gsm7" "8bit" "ucs2" */

#endif
