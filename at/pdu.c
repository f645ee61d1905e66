/* pdu — SMS TPDU codec (TS 23.040), alphabets per TS 23.038.
 *
 * Decoding reads through a bounds-checked cursor (struct rd): every field
 * read checks the length first and names the field in the error. Encoding
 * plans the cheapest alphabet, then cuts the text into parts with the same
 * greedy rule the plan used, so an escape sequence or a surrogate pair is
 * never split. Nothing here allocates. */
#include "at/pdu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "at/gsm7.h"
#include "at/ucs2.h"

#define RAW_MAX (PDU_HEX_MAX / 2) /* octets of SMSC + TPDU we accept */
#define GSM7_MAX_SEPTETS 160
#define UD_MAX 140
#define ADDR_SEMI_MAX 20 /* address value: 10 octets */
#define ALNUM_MAX 11     /* septets in 10 octets */
#define SMSC_OCTETS_MAX 11
#define IE_CONCAT8_LEN 5 /* IEI + IEL + ref + total + seq */
#define IE_CONCAT16_LEN 6
#define IE_SHIFT_LEN 3

/* TP-MTI (first octet, bits 1-0), TS 23.040 9.2.3.1. */
enum { MTI_DELIVER = 0, MTI_SUBMIT = 1, MTI_STATUS_REPORT = 2 };
/* First-octet flags, TS 23.040 9.2.2. */
#define FO_MMS 0x04  /* deliver, status report: no more messages */
#define FO_VPF_REL 0x10
#define FO_VPF_MASK 0x18
#define FO_SRR 0x20  /* submit SRR, deliver SRI, status report SRQ */
#define FO_UDHI 0x40
#define TOA_INTL 0x91
#define TOA_NATIONAL 0x81
#define TOA_ALNUM 0xD0
#define TON_INTL 1
#define TON_ALNUM 5

static int vfail(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	return -EINVAL;
}

/* Formats the reason into err and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfail(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* Same, returning rc. */
__attribute__((format(printf, 4, 5))) static int
failc(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- decode: bounds-checked cursor -------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int rd_fail(struct rd *r,
							 const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfail(r->err, r->errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* Checks that n more octets exist; the error names the field. */
static int rd_need(struct rd *r, size_t n, const char *field)
{
	if (r->len - r->pos >= n)
		return 0;
	return rd_fail(r, "%s: truncated (needs %zu octets at offset %zu, %zu left)",
		       field, n, r->pos, r->len - r->pos);
}

static int rd_u8(struct rd *r, const char *field, uint8_t *v)
{
	if (rd_need(r, 1, field) < 0)
		return -EINVAL;
	*v = r->p[r->pos++];
	return 0;
}

/* Borrows n octets at the cursor. */
static int rd_bytes(struct rd *r, size_t n, const char *field,
		    const uint8_t **v)
{
	if (rd_need(r, n, field) < 0)
		return -EINVAL;
	*v = r->p + r->pos;
	r->pos += n;
	return 0;
}

/* ---- decode: addresses (TS 23.040 9.1.2.5) ------------------------------ */

static const char bcd_digits[16] = "0123456789*#abc";

/* Semi-octet digits of an address value; a 0xF nibble may only pad the
 * end. */
static int addr_digits(struct rd *r, const char *field, const uint8_t *v,
		       size_t nsemi, bool intl, struct pdu_addr *a)
{
	size_t o = 0;

	if (intl && nsemi > 0)
		a->text[o++] = '+';
	for (size_t i = 0; i < nsemi; i++) {
		unsigned d = i % 2 ? v[i / 2] >> 4 : v[i / 2] & 0x0F;

		if (d == 0x0F && i == nsemi - 1)
			break;
		if (d == 0x0F)
			return rd_fail(r, "%s: filler digit inside the number",
				       field);
		a->text[o++] = bcd_digits[d];
	}
	a->text[o] = '\0';
	return 0;
}

/* Alphanumeric address: GSM 7-bit packed, default alphabet. */
static int addr_alnum(struct rd *r, const char *field, const uint8_t *v,
		      size_t nsemi, struct pdu_addr *a)
{
	uint8_t sept[ALNUM_MAX];
	size_t n = nsemi * 4 / 7;

	if (gsm7_unpack(v, (nsemi + 1) / 2, 0, sept, n) < 0 ||
	    gsm7_to_utf8(sept, n, 0, 0, a->text, sizeof(a->text)) < 0)
		return rd_fail(r, "%s: bad alphanumeric address", field);
	return 0;
}

/* Reads type-of-address and nsemi semi-octets of address value. */
static int addr_value(struct rd *r, const char *field, size_t nsemi,
		      struct pdu_addr *a)
{
	const uint8_t *v;
	uint8_t toa;

	if (rd_u8(r, field, &toa) < 0 ||
	    rd_bytes(r, (nsemi + 1) / 2, field, &v) < 0)
		return -EINVAL;
	a->ton = (toa >> 4) & 0x07;
	a->npi = toa & 0x0F;
	if (a->ton == TON_ALNUM)
		return addr_alnum(r, field, v, nsemi, a);
	return addr_digits(r, field, v, nsemi, a->ton == TON_INTL, a);
}

/* TP-OA / TP-DA / TP-RA: length counts semi-octets of the value. */
static int rd_addr(struct rd *r, const char *field, struct pdu_addr *a)
{
	uint8_t n;

	if (rd_u8(r, field, &n) < 0)
		return -EINVAL;
	if (n > ADDR_SEMI_MAX)
		return rd_fail(r, "%s: length %u exceeds %d digits", field, n,
			       ADDR_SEMI_MAX);
	return addr_value(r, field, n, a);
}

/* SMSC address (TS 24.011 8.2.5.1): length counts octets incl. TOA. */
static int rd_smsc(struct rd *r, struct pdu_addr *a)
{
	uint8_t n;

	if (rd_u8(r, "smsc", &n) < 0)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (n > SMSC_OCTETS_MAX)
		return rd_fail(r, "smsc: length %u exceeds %d octets", n,
			       SMSC_OCTETS_MAX);
	return addr_value(r, "smsc", (size_t)(n - 1) * 2, a);
}

/* ---- decode: time stamps (TS 23.040 9.2.3.11) ---------------------------- */

/* One swapped-BCD octet; -1 when a nibble is not a decimal digit. */
static int bcd_swapped(uint8_t b)
{
	unsigned lo = b & 0x0F, hi = b >> 4;

	if (lo > 9 || hi > 9)
		return -1;
	return (int)(lo * 10 + hi);
}

struct time_field {
	const char *name;
	int min, max;
};

static const struct time_field time_fields[6] = {
	{ "year", 0, 99 },  { "month", 1, 12 },	 { "day", 1, 31 },
	{ "hour", 0, 23 },  { "minute", 0, 59 }, { "second", 0, 59 },
};

/* Seven octets: YY MM DD hh mm ss, then the zone in quarter hours whose
 * tens semi-octet carries the sign in bit 3. */
static int rd_time(struct rd *r, const char *field, struct pdu_time *t)
{
	int *dst[6] = { &t->year, &t->month,  &t->day,
			&t->hour, &t->minute, &t->second };
	const uint8_t *v;
	int q;

	if (rd_bytes(r, 7, field, &v) < 0)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int x = bcd_swapped(v[i]);

		if (x < time_fields[i].min || x > time_fields[i].max)
			return rd_fail(r, "%s: bad %s octet 0x%02X", field,
				       time_fields[i].name, v[i]);
		*dst[i] = x;
	}
	t->year += t->year >= 90 ? 1900 : 2000;
	q = bcd_swapped(v[6] & 0xF7);
	if (q < 0)
		return rd_fail(r, "%s: bad time zone octet 0x%02X", field,
			       v[6]);
	t->tz_quarters = v[6] & 0x08 ? -q : q;
	return 0;
}

/* ---- decode: data coding scheme (TS 23.038 4) ----------------------------- */

enum dcs_kind {
	DCS_GENERAL,  /* 00xx, 01xx: alphabet in bits 3-2, class if bit 4 */
	DCS_RESERVED, /* 1000..1011 */
	DCS_MWI_GSM7, /* 1100, 1101: message waiting, default alphabet */
	DCS_MWI_UCS2, /* 1110 */
	DCS_DATA,     /* 1111: bit 2 alphabet, class in bits 1-0 */
};

/* Indexed by the coding group, bits 7-4 of the DCS. */
static const uint8_t dcs_groups[16] = {
	DCS_GENERAL,  DCS_GENERAL,  DCS_GENERAL,  DCS_GENERAL,
	DCS_GENERAL,  DCS_GENERAL,  DCS_GENERAL,  DCS_GENERAL,
	DCS_RESERVED, DCS_RESERVED, DCS_RESERVED, DCS_RESERVED,
	DCS_MWI_GSM7, DCS_MWI_GSM7, DCS_MWI_UCS2, DCS_DATA,
};

/* Sets s->encoding and s->msg_class from s->dcs. */
static int dcs_decode(struct rd *r, struct pdu_sms *s)
{
	static const enum pdu_encoding alphabets[3] = {
		PDU_ENC_GSM7, PDU_ENC_8BIT, PDU_ENC_UCS2
	};
	uint8_t d = s->dcs;
	unsigned a;

	s->msg_class = -1;
	switch (dcs_groups[d >> 4]) {
	case DCS_RESERVED:
		return rd_fail(r, "dcs: reserved coding group 0x%02X", d);
	case DCS_MWI_GSM7:
		s->encoding = PDU_ENC_GSM7;
		return 0;
	case DCS_MWI_UCS2:
		s->encoding = PDU_ENC_UCS2;
		return 0;
	case DCS_DATA:
		s->encoding = d & 0x04 ? PDU_ENC_8BIT : PDU_ENC_GSM7;
		s->msg_class = d & 0x03;
		return 0;
	}
	if (d & 0x20)
		return rd_fail(r, "dcs: compressed text (0x%02X) unsupported",
			       d);
	a = (d >> 2) & 0x03;
	if (a == 3)
		return rd_fail(r, "dcs: reserved alphabet (0x%02X)", d);
	s->encoding = alphabets[a];
	if (d & 0x10)
		s->msg_class = d & 0x03;
	return 0;
}

/* ---- decode: user data header (TS 23.040 9.2.3.24) ------------------------ */

static void ie_concat8(const uint8_t *v, struct pdu_sms *s)
{
	s->concat = (struct pdu_concat){ .present = true, .ref = v[0],
					  .total = v[1], .seq = v[2] };
}

static void ie_concat16(const uint8_t *v, struct pdu_sms *s)
{
	s->concat = (struct pdu_concat){ .present = true, .ref16 = true,
					  .ref = (uint16_t)(v[0] << 8 | v[1]),
					  .total = v[2], .seq = v[3] };
}

/* An unsupported language means the default tables (TS 23.038 6.2.1.2.4):
 * what a phone without the table shows. */
static enum pdu_lang lang_of(uint8_t id, bool locking)
{
	bool ok = locking ? gsm7_has_locking(id) : gsm7_has_single(id);

	return ok ? (enum pdu_lang)id : PDU_LANG_DEFAULT;
}

static void ie_single(const uint8_t *v, struct pdu_sms *s)
{
	s->lang_single = lang_of(v[0], false);
}

static void ie_locking(const uint8_t *v, struct pdu_sms *s)
{
	s->lang_locking = lang_of(v[0], true);
}

static const struct udh_ie {
	uint8_t iei;
	uint8_t len;
	void (*apply)(const uint8_t *v, struct pdu_sms *s);
} udh_ies[] = {
	{ 0x00, 3, ie_concat8 },
	{ 0x08, 4, ie_concat16 },
	{ 0x24, 1, ie_single },
	{ 0x25, 1, ie_locking },
};

static const struct udh_ie *udh_ie_find(uint8_t iei)
{
	for (size_t i = 0; i < sizeof(udh_ies) / sizeof(udh_ies[0]); i++)
		if (udh_ies[i].iei == iei)
			return &udh_ies[i];
	return NULL;
}

/* Walks the IEs of a header of hlen octets (after UDHL). Unknown IEs are
 * skipped; a repeated IE overrides the earlier one (TS 23.040 9.2.3.24);
 * a concatenation IE with seq 0 or seq > total is ignored. */
static int udh_parse(struct rd *r, const uint8_t *h, size_t hlen,
		     struct pdu_sms *s)
{
	size_t i = 0;

	while (i < hlen) {
		const struct udh_ie *ie;
		uint8_t iei, iel;

		if (hlen - i < 2)
			return rd_fail(r, "udh: truncated IE at octet %zu", i);
		iei = h[i];
		iel = h[i + 1];
		if (iel > hlen - i - 2)
			return rd_fail(r, "udh: IE 0x%02X length %u runs past the header",
				       iei, iel);
		ie = udh_ie_find(iei);
		if (ie && ie->len != iel)
			return rd_fail(r, "udh: IE 0x%02X length %u, expected %u",
				       iei, iel, ie->len);
		if (ie)
			ie->apply(h + i + 2, s);
		i += 2u + iel;
	}
	if (s->concat.present &&
	    (s->concat.seq == 0 || s->concat.seq > s->concat.total))
		memset(&s->concat, 0, sizeof(s->concat));
	return 0;
}

/* ---- decode: user data ------------------------------------------------------ */

static int ud_gsm7(struct rd *r, const uint8_t *ud, size_t udlen,
		   unsigned udl, size_t hdr, struct pdu_sms *s)
{
	uint8_t sept[GSM7_MAX_SEPTETS];
	size_t hsept = (hdr * 8 + 6) / 7; /* header incl. fill bits */
	unsigned fill = (unsigned)(hsept * 7 - hdr * 8);

	if (udl < hsept)
		return rd_fail(r, "user data: UDL %u septets shorter than the %zu-octet header",
			       udl, hdr);
	if (gsm7_unpack(ud + hdr, udlen - hdr, fill, sept, udl - hsept) < 0)
		return rd_fail(r, "user data: septets past the end");
	if (gsm7_to_utf8(sept, udl - hsept, s->lang_single, s->lang_locking,
			 s->text, sizeof(s->text)) < 0)
		return rd_fail(r, "user data: text too long");
	return 0;
}

static int ud_payload(struct rd *r, const uint8_t *ud, size_t udlen,
		      unsigned udl, size_t hdr, struct pdu_sms *s)
{
	if (s->encoding == PDU_ENC_GSM7)
		return ud_gsm7(r, ud, udlen, udl, hdr, s);
	if (s->encoding == PDU_ENC_8BIT) {
		s->data_len = udlen - hdr;
		memcpy(s->data, ud + hdr, s->data_len);
		return 0;
	}
	if ((udlen - hdr) % 2)
		return rd_fail(r, "user data: odd UCS-2 octet count %zu",
			       udlen - hdr);
	if (ucs2_to_utf8(ud + hdr, udlen - hdr, s->text, sizeof(s->text)) < 0)
		return rd_fail(r, "user data: text too long");
	return 0;
}

/* TP-UDL, then TP-UD (header if udhi, then text or data). */
static int rd_ud(struct rd *r, bool udhi, struct pdu_sms *s)
{
	bool septets = s->encoding == PDU_ENC_GSM7;
	const uint8_t *ud;
	size_t udlen, hdr = 0;
	uint8_t udl;

	if (rd_u8(r, "udl", &udl) < 0)
		return -EINVAL;
	if (udl > (septets ? GSM7_MAX_SEPTETS : UD_MAX))
		return rd_fail(r, "user data: UDL %u exceeds %d %s", udl,
			       septets ? GSM7_MAX_SEPTETS : UD_MAX,
			       septets ? "septets" : "octets");
	udlen = septets ? gsm7_packed_len(udl, 0) : udl;
	if (rd_bytes(r, udlen, "user data", &ud) < 0)
		return -EINVAL;
	s->has_ud = true;
	if (udhi) {
		if (udlen == 0)
			return rd_fail(r, "udh: UDHI set but user data is empty");
		hdr = (size_t)ud[0] + 1;
		if (hdr > udlen)
			return rd_fail(r, "udh: UDHL %u runs past UDL %u",
				       ud[0], udl);
		s->has_udh = true;
		if (udh_parse(r, ud + 1, hdr - 1, s) < 0)
			return -EINVAL;
	}
	return ud_payload(r, ud, udlen, udl, hdr, s);
}

/* ---- decode: message types (TS 23.040 9.2.2) ------------------------------- */

static int rd_pid_dcs(struct rd *r, struct pdu_sms *s)
{
	if (rd_u8(r, "pid", &s->pid) < 0 || rd_u8(r, "dcs", &s->dcs) < 0)
		return -EINVAL;
	return dcs_decode(r, s);
}

static int decode_deliver(struct rd *r, uint8_t fo, struct pdu_sms *s)
{
	s->type = PDU_DELIVER;
	if (rd_addr(r, "originator", &s->addr) < 0 || rd_pid_dcs(r, s) < 0 ||
	    rd_time(r, "timestamp", &s->scts) < 0)
		return -EINVAL;
	return rd_ud(r, fo & FO_UDHI, s);
}

/* Relative TP-VP to minutes (TS 23.040 9.2.3.12.1). */
static unsigned vp_minutes(uint8_t vp)
{
	if (vp <= 143)
		return (vp + 1u) * 5;
	if (vp <= 167)
		return 720 + (vp - 143u) * 30;
	if (vp <= 196)
		return (vp - 166u) * 1440;
	return (vp - 192u) * 10080;
}

/* TP-VP by TP-VPF: none, enhanced (7), relative (1), absolute (7). */
static int rd_vp(struct rd *r, uint8_t fo, struct pdu_sms *s)
{
	static const uint8_t vp_len[4] = { 0, 7, 1, 7 };
	unsigned vpf = (fo & FO_VPF_MASK) >> 3;
	const uint8_t *v;

	if (rd_bytes(r, vp_len[vpf], "validity", &v) < 0)
		return -EINVAL;
	if (vp_len[vpf] == 1)
		s->validity_min = vp_minutes(v[0]);
	return 0;
}

static int decode_submit(struct rd *r, uint8_t fo, struct pdu_sms *s)
{
	s->type = PDU_SUBMIT;
	if (rd_u8(r, "mr", &s->mr) < 0 ||
	    rd_addr(r, "recipient", &s->addr) < 0 || rd_pid_dcs(r, s) < 0 ||
	    rd_vp(r, fo, s) < 0)
		return -EINVAL;
	return rd_ud(r, fo & FO_UDHI, s);
}

/* Optional TP-PI and the fields it announces (TS 23.040 9.2.3.27). Further
 * TP-PI octets (extension bit 7) are skipped. */
static int rd_report_tail(struct rd *r, uint8_t fo, struct pdu_sms *s)
{
	uint8_t pi, more;

	if (r->pos == r->len)
		return 0;
	if (rd_u8(r, "pi", &pi) < 0)
		return -EINVAL;
	for (more = pi; more & 0x80;)
		if (rd_u8(r, "pi", &more) < 0)
			return -EINVAL;
	if ((pi & 0x01) && rd_u8(r, "pid", &s->pid) < 0)
		return -EINVAL;
	if ((pi & 0x02) && rd_u8(r, "dcs", &s->dcs) < 0)
		return -EINVAL;
	if (dcs_decode(r, s) < 0)
		return -EINVAL;
	if (!(pi & 0x04))
		return 0;
	return rd_ud(r, fo & FO_UDHI, s);
}

static int decode_status_report(struct rd *r, uint8_t fo, struct pdu_sms *s)
{
	s->type = PDU_STATUS_REPORT;
	s->has_ud = false;
	if (rd_u8(r, "mr", &s->mr) < 0 ||
	    rd_addr(r, "recipient", &s->addr) < 0 ||
	    rd_time(r, "timestamp", &s->scts) < 0 ||
	    rd_time(r, "discharge time", &s->discharge) < 0 ||
	    rd_u8(r, "status", &s->status) < 0)
		return -EINVAL;
	return rd_report_tail(r, fo, s);
}

int pdu_decode(const uint8_t *buf, size_t len, bool has_smsc,
	       struct pdu_sms *out, char *err, size_t errlen)
{
	struct rd r = { .p = buf, .len = len, .err = err, .errlen = errlen };
	struct pdu_sms s;
	uint8_t fo;
	int rc;

	memset(&s, 0, sizeof(s));
	s.msg_class = -1;
	s.has_ud = true;
	if (!buf && len)
		return fail(err, errlen, "pdu: no buffer");
	if (has_smsc && rd_smsc(&r, &s.smsc) < 0)
		return -EINVAL;
	if (rd_u8(&r, "first octet", &fo) < 0)
		return -EINVAL;
	s.srr = fo & FO_SRR;
	switch (fo & 0x03) {
	case MTI_DELIVER:
		rc = decode_deliver(&r, fo, &s);
		break;
	case MTI_SUBMIT:
		rc = decode_submit(&r, fo, &s);
		break;
	case MTI_STATUS_REPORT:
		rc = decode_status_report(&r, fo, &s);
		break;
	default:
		return fail(err, errlen, "first octet: reserved TP-MTI 3");
	}
	if (rc < 0)
		return rc;
	*out = s;
	return 0;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pdu_decode_hex(const char *hex, struct pdu_sms *out, char *err,
		   size_t errlen)
{
	uint8_t buf[RAW_MAX];
	size_t n;

	if (!hex)
		return fail(err, errlen, "hex: no input");
	n = strnlen(hex, 2 * RAW_MAX + 1);
	if (n > 2 * RAW_MAX)
		return fail(err, errlen, "hex: longer than %d octets", RAW_MAX);
	if (n % 2)
		return fail(err, errlen, "hex: odd number of digits (%zu)", n);
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_nibble(hex[i]), lo = hex_nibble(hex[i + 1]);

		if (hi < 0 || lo < 0)
			return fail(err, errlen, "hex: bad digit at offset %zu",
				    hi < 0 ? i : i + 1);
		buf[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return pdu_decode(buf, n / 2, true, out, err, errlen);
}

/* ---- plan: cheapest encoding ------------------------------------------------ */

/* An encoding candidate, in order of preference on equal part counts. */
struct cand {
	enum pdu_encoding enc;
	enum pdu_lang single, locking;
};

static const struct cand cands[] = {
	{ PDU_ENC_GSM7, PDU_LANG_DEFAULT, PDU_LANG_DEFAULT },
	{ PDU_ENC_GSM7, PDU_LANG_SPANISH, PDU_LANG_DEFAULT },
	{ PDU_ENC_GSM7, PDU_LANG_PORTUGUESE, PDU_LANG_DEFAULT },
	{ PDU_ENC_GSM7, PDU_LANG_DEFAULT, PDU_LANG_PORTUGUESE },
	{ PDU_ENC_GSM7, PDU_LANG_SPANISH, PDU_LANG_PORTUGUESE },
	{ PDU_ENC_GSM7, PDU_LANG_PORTUGUESE, PDU_LANG_PORTUGUESE },
	{ PDU_ENC_UCS2, PDU_LANG_DEFAULT, PDU_LANG_DEFAULT },
};
#define N_CANDS (sizeof(cands) / sizeof(cands[0]))

/* Octets of shift-table IEs a candidate's header carries. */
static size_t shift_ie_octets(enum pdu_encoding enc, enum pdu_lang single,
			      enum pdu_lang locking)
{
	if (enc != PDU_ENC_GSM7)
		return 0;
	return (single ? IE_SHIFT_LEN : 0) + (locking ? IE_SHIFT_LEN : 0);
}

/* Units (septets or UTF-16 units) one part holds with `ies` octets of
 * IEs: the header is UDHL + IEs, and septets start on a septet boundary. */
static unsigned part_capacity(enum pdu_encoding enc, size_t ies)
{
	size_t hdr = ies ? ies + 1 : 0;

	if (enc == PDU_ENC_GSM7)
		return (unsigned)(GSM7_MAX_SEPTETS - (hdr * 8 + 6) / 7);
	return (unsigned)((UD_MAX - hdr) / 2);
}

/* Units of cp under an encoding; 0 when it cannot be represented. For
 * gsm7 the septets go to sept. */
static unsigned cp_units(enum pdu_encoding enc, enum pdu_lang single,
			 enum pdu_lang locking, uint32_t cp, uint8_t sept[2])
{
	if (enc == PDU_ENC_UCS2)
		return ucs2_units(cp);
	return gsm7_encode_cp(cp, single, locking, sept);
}

/* Part capacities of a candidate, and the part count it must beat. */
struct caps {
	unsigned one;	/* units when the text fits one part */
	unsigned multi; /* units per part of a concatenated message */
	unsigned limit; /* give up at this many parts */
};

/* Counts units and greedy parts for valid UTF-8 text. Returns false when
 * a character is not representable, or as soon as the candidate cannot
 * take fewer than k->limit parts. */
static bool count_units(const char *p, const struct cand *c,
			const struct caps *k, unsigned *units, unsigned *parts)
{
	unsigned total = 0, fill = 0, n = 1;
	uint32_t cp;
	uint8_t sept[2];

	while (ucs2_utf8_next(&p, &cp) > 0) {
		unsigned u = cp_units(c->enc, c->single, c->locking, cp, sept);

		if (u == 0)
			return false;
		total += u;
		if (fill + u > k->multi) {
			n++;
			fill = u;
		} else {
			fill += u;
		}
		if (total > k->one && n >= k->limit)
			return false;
	}
	*units = total;
	*parts = total <= k->one ? 1 : n;
	return true;
}

/* Plans candidate c; false if it is not representable or cannot beat
 * `limit` parts. */
static bool plan_cand(const char *utf8, const struct cand *c,
		      size_t concat_ie, unsigned limit, struct pdu_plan *p)
{
	size_t ies = shift_ie_octets(c->enc, c->single, c->locking);
	struct caps k = { .one = part_capacity(c->enc, ies),
			  .multi = part_capacity(c->enc, ies + concat_ie),
			  .limit = limit };
	unsigned units, parts;

	if (!count_units(utf8, c, &k, &units, &parts))
		return false;
	*p = (struct pdu_plan){ .encoding = c->enc, .lang_single = c->single,
				.lang_locking = c->locking, .parts = parts,
				.units = units };
	return true;
}

/* Best plan with a concatenation IE of concat_ie octets: the candidate
 * with the fewest parts, the earliest one on ties, so nothing beats a
 * one-part plan already found. */
static int plan_text(const char *utf8, bool allow_shift, size_t concat_ie,
		     struct pdu_plan *plan)
{
	struct pdu_plan best = { .parts = 0 }, p;

	if (!utf8 || ucs2_utf8_validate(utf8, NULL) < 0)
		return -EINVAL;
	for (size_t i = 0; i < N_CANDS && best.parts != 1; i++) {
		if (!allow_shift && (cands[i].single || cands[i].locking))
			continue;
		if (plan_cand(utf8, &cands[i], concat_ie,
			      best.parts ? best.parts : 256, &p))
			best = p;
	}
	if (best.parts == 0)
		return -E2BIG;
	*plan = best;
	return 0;
}

int pdu_plan_text(const char *utf8, bool allow_shift, struct pdu_plan *plan)
{
	struct pdu_plan p;
	int rc = plan_text(utf8, allow_shift, IE_CONCAT8_LEN, &p);

	if (rc == 0)
		*plan = p;
	return rc;
}

/* ---- encode: writer ------------------------------------------------------------ */

#define TPDU_MAX 180 /* longest TPDU we build: 18 header + 1 UDL + 140 */

struct wr {
	uint8_t b[TPDU_MAX];
	size_t len;
};

static void wr_u8(struct wr *w, uint8_t v)
{
	if (w->len < sizeof(w->b))
		w->b[w->len++] = v;
}

static void wr_bytes(struct wr *w, const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		wr_u8(w, v[i]);
}

static int bcd_value(char c)
{
	const char *d = strchr(bcd_digits, c);

	return c && d ? (int)(d - bcd_digits) : -1;
}

/* Semi-octet digits of a number ('+' already stripped), 0xF padded. */
static int put_digits(struct wr *w, const char *digits, size_t n)
{
	for (size_t i = 0; i < n; i += 2) {
		int lo = bcd_value(digits[i]);
		int hi = i + 1 < n ? bcd_value(digits[i + 1]) : 0x0F;

		if (lo < 0 || hi < 0)
			return -EINVAL;
		wr_u8(w, (uint8_t)(hi << 4 | lo));
	}
	return 0;
}

/* '+'? then digits, '*' or '#' (the BCD letters a-c decode, but in a
 * number someone typed they are mistakes). */
static bool is_number(const char *s)
{
	if (*s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789*#", *s))
			return false;
	return true;
}

/* Septets of an alphanumeric address in the default alphabet. */
static int alnum_septets(const char *s, uint8_t sept[ALNUM_MAX], size_t *n)
{
	uint32_t cp;
	uint8_t two[2];
	int rc;

	*n = 0;
	while ((rc = ucs2_utf8_next(&s, &cp)) > 0) {
		unsigned u = gsm7_encode_cp(cp, 0, 0, two);

		if (u == 0 || *n + u > ALNUM_MAX)
			return -EINVAL;
		memcpy(sept + *n, two, u);
		*n += u;
	}
	return rc;
}

/* TP-OA/DA/RA: '+' digits (international), digits (national), or, with
 * allow_alnum, up to 11 default-alphabet characters. */
static int put_addr(struct wr *w, const char *s, bool allow_alnum,
		    const char *field, char *err, size_t errlen)
{
	const char *d = s && *s == '+' ? s + 1 : s;
	uint8_t sept[ALNUM_MAX], packed[10];
	size_t n;

	if (s && is_number(s) && strlen(d) <= ADDR_SEMI_MAX) {
		wr_u8(w, (uint8_t)strlen(d));
		wr_u8(w, *s == '+' ? TOA_INTL : TOA_NATIONAL);
		return put_digits(w, d, strlen(d));
	}
	if (!s || !allow_alnum || !*s || alnum_septets(s, sept, &n) < 0)
		return fail(err, errlen, "%s: invalid address \"%s\"", field,
			    s ? s : "");
	wr_u8(w, (uint8_t)((n * 7 + 3) / 4));
	wr_u8(w, TOA_ALNUM);
	wr_bytes(w, packed, gsm7_pack(sept, n, 0, packed));
	return 0;
}

/* SMSC prefix: "00" for none, else octet length, TOA, digits. */
static int put_smsc(struct wr *w, const char *s, char *err, size_t errlen)
{
	const char *d;

	if (!s || !*s) {
		wr_u8(w, 0);
		return 0;
	}
	d = *s == '+' ? s + 1 : s;
	if (!is_number(s) || strlen(d) > ADDR_SEMI_MAX)
		return fail(err, errlen, "smsc: invalid address \"%s\"", s);
	wr_u8(w, (uint8_t)(1 + (strlen(d) + 1) / 2));
	wr_u8(w, *s == '+' ? TOA_INTL : TOA_NATIONAL);
	return put_digits(w, d, strlen(d));
}

static uint8_t bcd_swap(int v)
{
	return (uint8_t)((v % 10) << 4 | (v / 10) % 10);
}

/* TP-SCTS / TP-DT: swapped BCD, the zone's sign in bit 3. Years 1990..2089
 * (what the two digits decode back to). */
static int put_time(struct wr *w, const struct pdu_time *t, const char *field,
		    char *err, size_t errlen)
{
	int v[6] = { t->year % 100, t->month,  t->day,
		     t->hour,	    t->minute, t->second };
	int q = t->tz_quarters < 0 ? -t->tz_quarters : t->tz_quarters;

	if (t->year < 1990 || t->year > 2089)
		return fail(err, errlen, "%s: year %d outside 1990..2089", field,
			    t->year);
	for (int i = 1; i < 6; i++)
		if (v[i] < time_fields[i].min || v[i] > time_fields[i].max)
			return fail(err, errlen, "%s: %s %d out of range",
				    field, time_fields[i].name, v[i]);
	if (q > 79)
		return fail(err, errlen, "%s: time zone %d out of range",
			    field, t->tz_quarters);
	for (int i = 0; i < 6; i++)
		wr_u8(w, bcd_swap(v[i]));
	wr_u8(w, (uint8_t)(bcd_swap(q) | (t->tz_quarters < 0 ? 0x08 : 0)));
	return 0;
}

/* Relative TP-VP for at least `min` minutes (TS 23.040 9.2.3.12.1, rounded
 * up to the next representable period); -1 beyond 63 weeks. */
static int vp_encode(unsigned min)
{
	if (min <= 720)
		return (int)((min + 4) / 5) - 1;
	if (min <= 1440)
		return 143 + (int)((min - 720 + 29) / 30);
	if (min <= 30 * 1440)
		return 166 + (int)((min + 1439) / 1440);
	if (min <= 63 * 10080)
		return 192 + (int)((min + 10079) / 10080);
	return -1;
}

static uint8_t dcs_for(enum pdu_encoding enc, int msg_class)
{
	uint8_t d = enc == PDU_ENC_UCS2 ? 0x08 : enc == PDU_ENC_8BIT ? 0x04 : 0;

	return msg_class >= 0 ? (uint8_t)(d | 0x10 | msg_class) : d;
}

/* ---- encode: parts ---------------------------------------------------------- */

/* What every part of one message shares. */
struct msg {
	struct wr smsc;		 /* SMSC prefix */
	struct wr head;		 /* TPDU before TP-UDL; head.b[0] = first octet */
	struct pdu_plan plan;
	uint16_t ref;
	bool ref16;
};

/* Next part's units from *p into out, at most cap of them: gsm7 septets,
 * or UTF-16BE (2 octets per unit). Advances *p past what it took. */
static size_t take_units(const char **p, const struct pdu_plan *pl,
			 unsigned cap, uint8_t *out)
{
	size_t n = 0;
	const char *q = *p;
	uint32_t cp;
	uint8_t sept[2];

	while (ucs2_utf8_next(&q, &cp) > 0) {
		unsigned u = cp_units(pl->encoding, pl->lang_single,
				      pl->lang_locking, cp, sept);

		if (n + u > cap)
			break;
		if (pl->encoding == PDU_ENC_GSM7)
			memcpy(out + n, sept, u);
		else
			ucs2_put(cp, out + 2 * n);
		n += u;
		*p = q;
	}
	return n;
}

/* UDH (with UDHL) for part seq; returns its length, 0 when none. */
static size_t build_udh(const struct msg *m, unsigned seq, uint8_t *h)
{
	size_t n = 1;

	if (m->plan.parts > 1 && m->ref16) {
		const uint8_t ie[] = { 0x08, 4, (uint8_t)(m->ref >> 8),
				       (uint8_t)m->ref, (uint8_t)m->plan.parts,
				       (uint8_t)seq };
		memcpy(h + n, ie, sizeof(ie));
		n += sizeof(ie);
	} else if (m->plan.parts > 1) {
		const uint8_t ie[] = { 0x00, 3, (uint8_t)m->ref,
				       (uint8_t)m->plan.parts, (uint8_t)seq };
		memcpy(h + n, ie, sizeof(ie));
		n += sizeof(ie);
	}
	if (m->plan.encoding == PDU_ENC_GSM7 && m->plan.lang_single) {
		const uint8_t ie[] = { 0x24, 1, (uint8_t)m->plan.lang_single };
		memcpy(h + n, ie, sizeof(ie));
		n += sizeof(ie);
	}
	if (m->plan.encoding == PDU_ENC_GSM7 && m->plan.lang_locking) {
		const uint8_t ie[] = { 0x25, 1, (uint8_t)m->plan.lang_locking };
		memcpy(h + n, ie, sizeof(ie));
		n += sizeof(ie);
	}
	if (n == 1)
		return 0;
	h[0] = (uint8_t)(n - 1);
	return n;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	static const char x[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		*out++ = x[b[i] >> 4];
		*out++ = x[b[i] & 0x0F];
	}
	*out = '\0';
}

/* Builds part seq (1-based), consuming its text from *p. */
static void build_part(const struct msg *m, unsigned seq, const char **p,
		       struct pdu_part *out)
{
	uint8_t udh[1 + IE_CONCAT16_LEN + 2 * IE_SHIFT_LEN];
	uint8_t units[2 * UD_MAX];
	size_t hlen = build_udh(m, seq, udh);
	size_t ies = hlen ? hlen - 1 : 0;
	struct wr t = m->head;
	size_t n = take_units(p, &m->plan,
			      part_capacity(m->plan.encoding, ies), units);

	if (hlen)
		t.b[0] |= FO_UDHI;
	if (m->plan.encoding == PDU_ENC_GSM7) {
		size_t hsept = (hlen * 8 + 6) / 7;
		uint8_t packed[UD_MAX];

		wr_u8(&t, (uint8_t)(hsept + n));
		wr_bytes(&t, udh, hlen);
		wr_bytes(&t, packed,
			 gsm7_pack(units, n, (unsigned)(hsept * 7 - hlen * 8),
				   packed));
	} else {
		wr_u8(&t, (uint8_t)(hlen + 2 * n));
		wr_bytes(&t, udh, hlen);
		wr_bytes(&t, units, 2 * n);
	}
	to_hex(m->smsc.b, m->smsc.len, out->hex);
	to_hex(t.b, t.len, out->hex + 2 * m->smsc.len);
	out->tpdu_len = (unsigned)t.len;
}

/* Plans the text into m->plan for at most max_parts parts. */
static int plan_msg(const char *utf8, bool allow_shift, struct msg *m,
		    size_t max_parts, char *err, size_t errlen)
{
	size_t concat = m->ref16 ? IE_CONCAT16_LEN : IE_CONCAT8_LEN;
	int rc = plan_text(utf8, allow_shift, concat, &m->plan);

	if (rc == -EINVAL)
		return fail(err, errlen, "text: invalid UTF-8");
	if (rc < 0)
		return failc(rc, err, errlen, "text: needs more than 255 parts");
	if (m->plan.parts > max_parts)
		return failc(-ENOSPC, err, errlen,
			     "text: needs %u parts, room for %zu",
			     m->plan.parts, max_parts);
	return 0;
}

/* Writes every part of the planned message; returns the count. */
static int emit_parts(const struct msg *m, const char *utf8,
		      struct pdu_part *parts)
{
	const char *p = utf8;

	for (unsigned i = 0; i < m->plan.parts; i++)
		build_part(m, i + 1, &p, &parts[i]);
	return (int)m->plan.parts;
}

int pdu_encode_submit(const char *utf8, const struct pdu_submit_opts *opts,
		      struct pdu_part *parts, size_t max_parts, char *err,
		      size_t errlen)
{
	struct msg m = { .ref = opts ? opts->ref : 0,
			 .ref16 = opts && opts->ref16 };
	int vp, rc;

	if (!opts || !parts)
		return fail(err, errlen, "submit: no options");
	if (opts->msg_class < -1 || opts->msg_class > 3)
		return fail(err, errlen, "class: %d not in -1..3",
			    opts->msg_class);
	vp = opts->validity_min ? vp_encode(opts->validity_min) : 0;
	if (vp < 0)
		return fail(err, errlen, "validity: %u minutes exceeds 63 weeks",
			    opts->validity_min);
	rc = plan_msg(utf8, opts->allow_shift, &m, max_parts, err, errlen);
	if (rc < 0)
		return rc;
	wr_u8(&m.smsc, 0);
	wr_u8(&m.head, (uint8_t)(MTI_SUBMIT | (opts->srr ? FO_SRR : 0) |
				 (opts->validity_min ? FO_VPF_REL : 0)));
	wr_u8(&m.head, opts->mr);
	if (put_addr(&m.head, opts->to, false, "recipient", err, errlen) < 0)
		return -EINVAL;
	wr_u8(&m.head, 0); /* TP-PID: plain short message */
	wr_u8(&m.head, dcs_for(m.plan.encoding, opts->msg_class));
	if (opts->validity_min)
		wr_u8(&m.head, (uint8_t)vp);
	return emit_parts(&m, utf8, parts);
}

int pdu_encode_deliver(const char *utf8, const struct pdu_deliver_opts *opts,
		       struct pdu_part *parts, size_t max_parts, char *err,
		       size_t errlen)
{
	struct msg m = { .ref = opts ? opts->ref : 0,
			 .ref16 = opts && opts->ref16 };
	int rc;

	if (!opts || !parts)
		return fail(err, errlen, "deliver: no options");
	if (opts->msg_class < -1 || opts->msg_class > 3)
		return fail(err, errlen, "class: %d not in -1..3",
			    opts->msg_class);
	rc = plan_msg(utf8, opts->allow_shift, &m, max_parts, err, errlen);
	if (rc < 0)
		return rc;
	if (put_smsc(&m.smsc, opts->smsc, err, errlen) < 0)
		return -EINVAL;
	wr_u8(&m.head, MTI_DELIVER | FO_MMS);
	if (put_addr(&m.head, opts->from, true, "originator", err, errlen) < 0)
		return -EINVAL;
	wr_u8(&m.head, 0);
	wr_u8(&m.head, dcs_for(m.plan.encoding, opts->msg_class));
	if (put_time(&m.head, &opts->scts, "timestamp", err, errlen) < 0)
		return -EINVAL;
	return emit_parts(&m, utf8, parts);
}

int pdu_encode_status_report(uint8_t mr, const char *recipient,
			     const struct pdu_time *scts,
			     const struct pdu_time *discharge, uint8_t status,
			     const char *smsc, struct pdu_part *out,
			     char *err, size_t errlen)
{
	struct wr s = { .len = 0 }, t = { .len = 0 };

	if (!scts || !discharge || !out)
		return fail(err, errlen, "status report: missing argument");
	if (put_smsc(&s, smsc, err, errlen) < 0)
		return -EINVAL;
	wr_u8(&t, MTI_STATUS_REPORT | FO_MMS);
	wr_u8(&t, mr);
	if (put_addr(&t, recipient, false, "recipient", err, errlen) < 0 ||
	    put_time(&t, scts, "timestamp", err, errlen) < 0 ||
	    put_time(&t, discharge, "discharge time", err, errlen) < 0)
		return -EINVAL;
	wr_u8(&t, status);
	to_hex(s.b, s.len, out->hex);
	to_hex(t.b, t.len, out->hex + 2 * s.len);
	out->tpdu_len = (unsigned)t.len;
	return 0;
}

/* ---- status (TS 23.040 9.2.3.15) ---------------------------------------------- */

static const char *const status_texts[0x80] = {
	[0x00] = "received by the SME",
	[0x01] = "forwarded to the SME, delivery unconfirmed",
	[0x02] = "replaced by the SC",
	[0x20] = "congestion, still trying",
	[0x21] = "SME busy, still trying",
	[0x22] = "no response from SME, still trying",
	[0x23] = "service rejected, still trying",
	[0x24] = "quality of service not available, still trying",
	[0x25] = "error in SME, still trying",
	[0x40] = "remote procedure error",
	[0x41] = "incompatible destination",
	[0x42] = "connection rejected by SME",
	[0x43] = "not obtainable",
	[0x44] = "quality of service not available",
	[0x45] = "no interworking available",
	[0x46] = "validity period expired",
	[0x47] = "deleted by originating SME",
	[0x48] = "deleted by SC administration",
	[0x49] = "message does not exist",
	[0x60] = "congestion, gave up",
	[0x61] = "SME busy, gave up",
	[0x62] = "no response from SME, gave up",
	[0x63] = "service rejected, gave up",
	[0x64] = "quality of service not available, gave up",
	[0x65] = "error in SME, gave up",
};

/* The four groups of bits 6-5; values 0x10-0x1F (and likewise in each
 * group) are SC-specific, the rest unassigned. */
static const struct status_group {
	enum pdu_status_class cls;
	const char *reserved;
	const char *sc_specific;
} status_groups[4] = {
	{ PDU_ST_DELIVERED, "reserved (transaction completed)",
	  "SC-specific (transaction completed)" },
	{ PDU_ST_PENDING, "reserved (temporary error, still trying)",
	  "SC-specific (temporary error, still trying)" },
	{ PDU_ST_FAILED, "reserved (permanent error)",
	  "SC-specific (permanent error)" },
	{ PDU_ST_FAILED, "reserved (temporary error, gave up)",
	  "SC-specific (temporary error, gave up)" },
};

const char *pdu_status_text(uint8_t status)
{
	const struct status_group *g = &status_groups[(status >> 5) & 3];

	if (status & 0x80)
		return "reserved";
	if (status_texts[status])
		return status_texts[status];
	return status & 0x10 ? g->sc_specific : g->reserved;
}

/* Reserved values with bit 7 set have no defined meaning; a report that
 * carries one says nothing about delivery, so it counts as failed (the SC
 * will not send another). */
enum pdu_status_class pdu_status_class(uint8_t status)
{
	if (status & 0x80)
		return PDU_ST_FAILED;
	return status_groups[(status >> 5) & 3].cls;
}

const char *pdu_encoding_name(enum pdu_encoding enc)
{
	static const char *const names[] = {
		[PDU_ENC_GSM7] = "gsm7",
		[PDU_ENC_8BIT] = "8bit",
		[PDU_ENC_UCS2] = "ucs2",
	};

	if ((unsigned)enc < sizeof(names) / sizeof(names[0]))
		return names[enc];
	return "unknown";
}
