/* libFuzzer target for the PDU codec.
 *
 * The input is decoded three ways: as raw octets with and without the
 * SMSC prefix, and as hex text. Whatever decodes to text must survive
 * encode -> decode unchanged, and the input taken as UTF-8 text must too:
 * a mismatch aborts. Sanitizers catch any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "at/pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARTS 8
#define TEXT_MAX 600

static struct pdu_part parts[MAX_PARTS];

/* The error must be a terminated, non-empty reason. */
static void check_err(int rc, const char *err)
{
	if (rc != 0 && (memchr(err, '\0', PDU_ERR_MAX) == NULL || !err[0]))
		abort();
}

/* text -> SUBMIT parts -> decode -> joined text must equal text. */
static void roundtrip(const char *text, bool allow_shift, bool ref16)
{
	struct pdu_submit_opts o = { .to = "+34600111222", .msg_class = -1,
				     .allow_shift = allow_shift,
				     .ref16 = ref16, .ref = 0x1234 };
	char joined[MAX_PARTS * PDU_TEXT_MAX];
	char err[PDU_ERR_MAX];
	size_t off = 0;
	int n = pdu_encode_submit(text, &o, parts, MAX_PARTS, err,
				  sizeof(err));

	if (n <= 0)
		return; /* invalid UTF-8 or too long for MAX_PARTS */
	for (int i = 0; i < n; i++) {
		struct pdu_sms s;
		size_t l;

		if (pdu_decode_hex(parts[i].hex, &s, err, sizeof(err)) != 0)
			abort();
		if (s.concat.present != (n > 1) ||
		    (n > 1 && (s.concat.seq != i + 1 || s.concat.total != n)))
			abort();
		l = strlen(s.text);
		memcpy(joined + off, s.text, l);
		off += l;
	}
	joined[off] = '\0';
	if (strcmp(joined, text) != 0)
		abort();
}

static void decode_raw(const uint8_t *data, size_t size, bool has_smsc)
{
	struct pdu_sms s;
	char err[PDU_ERR_MAX] = "";
	int rc = pdu_decode(data, size, has_smsc, &s, err, sizeof(err));

	check_err(rc, err);
	if (rc == 0 && s.encoding != PDU_ENC_8BIT) {
		roundtrip(s.text, true, false);
		roundtrip(s.text, false, true);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[TEXT_MAX + 1];
	size_t n = size < TEXT_MAX ? size : TEXT_MAX;
	struct pdu_sms s;
	char err[PDU_ERR_MAX] = "";
	int rc;

	decode_raw(data, size, true);
	decode_raw(data, size, false);
	memcpy(buf, data, n);
	buf[n] = '\0';
	rc = pdu_decode_hex(buf, &s, err, sizeof(err));
	check_err(rc, err);
	roundtrip(buf, true, false);
	return 0;
}
