/* phone — see phone.h. */
#include "daemon/phone.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Country calling codes assigned by ITU-T (Rec. E.164 and its annexed list
 * of assigned codes), sorted by strcmp() for bsearch(). Spare and
 * withdrawn codes (e.g. 210, 259, 28x, 384, 388, 422, 671, 684, 969, 997)
 * are absent. The set is prefix-free (no code begins another), so the
 * first match over lengths 1..3 is the longest-prefix match. Global
 * services (800, 870, 881-883, ...) are assigned codes too and are
 * accepted: the SMS will fail where they cannot take one. */
static const struct cc {
	const char *code;
	const char *name;
} cc_table[] = {
	{ "1", "NANP (US, Canada, Caribbean)" },
	{ "20", "Egypt" }, { "211", "South Sudan" }, { "212", "Morocco" },
	{ "213", "Algeria" }, { "216", "Tunisia" }, { "218", "Libya" },
	{ "220", "Gambia" }, { "221", "Senegal" }, { "222", "Mauritania" },
	{ "223", "Mali" }, { "224", "Guinea" }, { "225", "Cote d'Ivoire" },
	{ "226", "Burkina Faso" }, { "227", "Niger" }, { "228", "Togo" },
	{ "229", "Benin" }, { "230", "Mauritius" }, { "231", "Liberia" },
	{ "232", "Sierra Leone" }, { "233", "Ghana" }, { "234", "Nigeria" },
	{ "235", "Chad" }, { "236", "Central African Republic" },
	{ "237", "Cameroon" }, { "238", "Cabo Verde" },
	{ "239", "Sao Tome and Principe" }, { "240", "Equatorial Guinea" },
	{ "241", "Gabon" }, { "242", "Congo" }, { "243", "DR Congo" },
	{ "244", "Angola" }, { "245", "Guinea-Bissau" },
	{ "246", "Diego Garcia" }, { "247", "Ascension" },
	{ "248", "Seychelles" }, { "249", "Sudan" }, { "250", "Rwanda" },
	{ "251", "Ethiopia" }, { "252", "Somalia" }, { "253", "Djibouti" },
	{ "254", "Kenya" }, { "255", "Tanzania" }, { "256", "Uganda" },
	{ "257", "Burundi" }, { "258", "Mozambique" }, { "260", "Zambia" },
	{ "261", "Madagascar" }, { "262", "Reunion, Mayotte" },
	{ "263", "Zimbabwe" }, { "264", "Namibia" }, { "265", "Malawi" },
	{ "266", "Lesotho" }, { "267", "Botswana" }, { "268", "Eswatini" },
	{ "269", "Comoros" }, { "27", "South Africa" },
	{ "290", "Saint Helena, Tristan da Cunha" }, { "291", "Eritrea" },
	{ "297", "Aruba" }, { "298", "Faroe Islands" }, { "299", "Greenland" },
	{ "30", "Greece" }, { "31", "Netherlands" }, { "32", "Belgium" },
	{ "33", "France" }, { "34", "Spain" }, { "350", "Gibraltar" },
	{ "351", "Portugal" }, { "352", "Luxembourg" }, { "353", "Ireland" },
	{ "354", "Iceland" }, { "355", "Albania" }, { "356", "Malta" },
	{ "357", "Cyprus" }, { "358", "Finland" }, { "359", "Bulgaria" },
	{ "36", "Hungary" }, { "370", "Lithuania" }, { "371", "Latvia" },
	{ "372", "Estonia" }, { "373", "Moldova" }, { "374", "Armenia" },
	{ "375", "Belarus" }, { "376", "Andorra" }, { "377", "Monaco" },
	{ "378", "San Marino" }, { "379", "Vatican City" },
	{ "380", "Ukraine" }, { "381", "Serbia" }, { "382", "Montenegro" },
	{ "383", "Kosovo" }, { "385", "Croatia" }, { "386", "Slovenia" },
	{ "387", "Bosnia and Herzegovina" }, { "389", "North Macedonia" },
	{ "39", "Italy" }, { "40", "Romania" }, { "41", "Switzerland" },
	{ "420", "Czechia" }, { "421", "Slovakia" }, { "423", "Liechtenstein" },
	{ "43", "Austria" }, { "44", "United Kingdom" }, { "45", "Denmark" },
	{ "46", "Sweden" }, { "47", "Norway" }, { "48", "Poland" },
	{ "49", "Germany" }, { "500", "Falkland Islands" }, { "501", "Belize" },
	{ "502", "Guatemala" }, { "503", "El Salvador" }, { "504", "Honduras" },
	{ "505", "Nicaragua" }, { "506", "Costa Rica" }, { "507", "Panama" },
	{ "508", "Saint Pierre and Miquelon" }, { "509", "Haiti" },
	{ "51", "Peru" }, { "52", "Mexico" }, { "53", "Cuba" },
	{ "54", "Argentina" }, { "55", "Brazil" }, { "56", "Chile" },
	{ "57", "Colombia" }, { "58", "Venezuela" }, { "590", "Guadeloupe" },
	{ "591", "Bolivia" }, { "592", "Guyana" }, { "593", "Ecuador" },
	{ "594", "French Guiana" }, { "595", "Paraguay" },
	{ "596", "Martinique" }, { "597", "Suriname" }, { "598", "Uruguay" },
	{ "599", "Curacao, Caribbean Netherlands" }, { "60", "Malaysia" },
	{ "61", "Australia" }, { "62", "Indonesia" }, { "63", "Philippines" },
	{ "64", "New Zealand" }, { "65", "Singapore" }, { "66", "Thailand" },
	{ "670", "Timor-Leste" }, { "672", "Australian External Territories" },
	{ "673", "Brunei" }, { "674", "Nauru" }, { "675", "Papua New Guinea" },
	{ "676", "Tonga" }, { "677", "Solomon Islands" }, { "678", "Vanuatu" },
	{ "679", "Fiji" }, { "680", "Palau" }, { "681", "Wallis and Futuna" },
	{ "682", "Cook Islands" }, { "683", "Niue" }, { "685", "Samoa" },
	{ "686", "Kiribati" }, { "687", "New Caledonia" }, { "688", "Tuvalu" },
	{ "689", "French Polynesia" }, { "690", "Tokelau" },
	{ "691", "Micronesia" }, { "692", "Marshall Islands" },
	{ "7", "Russia, Kazakhstan" },
	{ "800", "International Freephone" },
	{ "808", "International Shared Cost" }, { "81", "Japan" },
	{ "82", "South Korea" }, { "84", "Viet Nam" }, { "850", "North Korea" },
	{ "852", "Hong Kong" }, { "853", "Macao" }, { "855", "Cambodia" },
	{ "856", "Laos" }, { "86", "China" }, { "870", "Inmarsat" },
	{ "878", "Universal Personal Telecommunications" },
	{ "880", "Bangladesh" }, { "881", "Global Mobile Satellite System" },
	{ "882", "International Networks" }, { "883", "International Networks" },
	{ "886", "Taiwan" }, { "888", "OCHA disaster relief" },
	{ "90", "Turkiye" }, { "91", "India" }, { "92", "Pakistan" },
	{ "93", "Afghanistan" }, { "94", "Sri Lanka" }, { "95", "Myanmar" },
	{ "960", "Maldives" }, { "961", "Lebanon" }, { "962", "Jordan" },
	{ "963", "Syria" }, { "964", "Iraq" }, { "965", "Kuwait" },
	{ "966", "Saudi Arabia" }, { "967", "Yemen" }, { "968", "Oman" },
	{ "970", "Palestine" }, { "971", "United Arab Emirates" },
	{ "972", "Israel" }, { "973", "Bahrain" }, { "974", "Qatar" },
	{ "975", "Bhutan" }, { "976", "Mongolia" }, { "977", "Nepal" },
	{ "979", "International Premium Rate" }, { "98", "Iran" },
	{ "991", "ITPCS trial" }, { "992", "Tajikistan" },
	{ "993", "Turkmenistan" }, { "994", "Azerbaijan" }, { "995", "Georgia" },
	{ "996", "Kyrgyzstan" }, { "998", "Uzbekistan" },
};

#define CC_COUNT (sizeof(cc_table) / sizeof(cc_table[0]))

static int cc_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cc *)elem)->code);
}

/* The table entry whose code begins `digits`, or NULL. */
static const struct cc *cc_find(const char *digits)
{
	char prefix[4];

	for (size_t n = 1; n <= 3 && digits[n - 1] != '\0'; n++) {
		memcpy(prefix, digits, n);
		prefix[n] = '\0';
		const struct cc *c = bsearch(prefix, cc_table, CC_COUNT,
					     sizeof(cc_table[0]), cc_cmp);
		if (c)
			return c;
	}
	return NULL;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Characters people put between digits, ignored. */
static bool is_separator(char c)
{
	return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '/' ||
	       c == '(' || c == ')';
}

/* Keeps '+' and digits of `in`, checking every other character. Writes at
 * most cap-1 characters; *overflow set when more would have been written.
 * Returns NULL or the reason. */
static const char *strip(const char *in, char *buf, size_t cap, bool *overflow)
{
	size_t n = 0;

	*overflow = false;
	for (const char *p = in; *p; p++) {
		/* "(0)": a trunk prefix shown in brackets, never dialled */
		if (p[0] == '(' && p[1] == '0' && p[2] == ')' && n > 1) {
			p += 2;
			continue;
		}
		if (is_separator(*p))
			continue;
		if (is_letter(*p))
			return "letters";
		if (*p == '+' && n > 0)
			return "'+' only at the start";
		if (*p != '+' && !is_digit(*p))
			return "unexpected character";
		if (n + 1 >= cap) {
			*overflow = true;
			continue;
		}
		buf[n++] = *p;
	}
	buf[n] = '\0';
	return NULL;
}

/* Checks the digits after the international prefix. Returns NULL or the
 * reason. */
static const char *check_digits(const char *digits, bool overflow)
{
	size_t n = strlen(digits);

	if (n == 0)
		return "no digits";
	if (digits[0] == '0')
		return "no country code";
	if (overflow || n > PHONE_MAX_DIGITS)
		return "too long";
	if (n < PHONE_MIN_DIGITS)
		return "too short";
	if (!cc_find(digits))
		return "unknown country calling code";
	return NULL;
}

int phone_normalize(const char *in, char out[PHONE_E164_MAX], const char **why)
{
	char buf[PHONE_E164_MAX + 8];
	const char *digits, *reason;
	bool overflow;

	reason = in ? strip(in, buf, sizeof(buf), &overflow) : "empty";
	if (!reason && buf[0] == '\0')
		reason = "empty";
	if (reason)
		goto fail;
	/* "+CC", "00CC" or bare "CC"; a single leading 0 is a national
	 * trunk prefix, refused by check_digits() */
	if (buf[0] == '+')
		digits = buf + 1;
	else if (buf[0] == '0' && buf[1] == '0')
		digits = buf + 2;
	else
		digits = buf;
	reason = check_digits(digits, overflow);
	if (reason)
		goto fail;
	out[0] = '+';
	strcpy(out + 1, digits);
	return 0;
fail:
	if (why)
		*why = reason;
	return -EINVAL;
}

size_t phone_cc_len(const char *e164)
{
	const struct cc *c;

	if (!e164 || e164[0] != '+')
		return 0;
	c = cc_find(e164 + 1);
	return c ? strlen(c->code) : 0;
}

const char *phone_cc_name(const char *e164)
{
	const struct cc *c;

	if (!e164 || e164[0] != '+')
		return NULL;
	c = cc_find(e164 + 1);
	return c ? c->name : NULL;
}

bool phone_is_e164(const char *s)
{
	size_t n;

	if (!s || s[0] != '+')
		return false;
	n = strlen(s + 1);
	if (n < PHONE_MIN_DIGITS || n > PHONE_MAX_DIGITS || s[1] == '0')
		return false;
	for (size_t i = 1; i <= n; i++)
		if (!is_digit(s[i]))
			return false;
	return cc_find(s + 1) != NULL;
}
