/* unicode.c — UTF-8 coding and table lookups (see unicode.h). */
#include "unicode.h"

int unicode_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint8_t b = s[0];
    if (!(b & 0x80)) {
        *cp = b;
        return 1;
    }
    /* A continuation byte cannot start a sequence. Leads 0xF8-0xFF would
     * announce 5+ bytes; both are invalid. */
    int n = (b & 0x40) == 0 ? 0 : (b & 0x20) == 0 ? 2 : (b & 0x10) == 0 ? 3 : (b & 0x08) == 0 ? 4 : 0;
    if (n == 0 || (size_t)n > len) goto invalid;
    uint32_t v = b & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) goto invalid;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* llama.cpp decodes F5-F7 leads to values above U+10FFFF and then fails
     * to re-encode them (an exception escapes its tokenizer); we call them
     * invalid instead. */
    if (v > 0x10FFFF) goto invalid;
    *cp = v;
    return n;
invalid:
    *cp = UNI_REPLACEMENT;
    return 1;
}

int unicode_utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp <= 0x7F) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp <= 0x7FF) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp > 0x10FFFF) cp = UNI_REPLACEMENT;
    if (cp <= 0xFFFF) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t unicode_utf8_complete_prefix(const uint8_t *s, size_t len)
{
    /* Look back at most 3 bytes for the lead of a sequence that the end of
     * the buffer cut short. */
    size_t back = len < 3 ? len : 3;
    for (size_t k = 1; k <= back; k++) {
        uint8_t b = s[len - k];
        if ((b & 0xC0) == 0x80) continue;          /* continuation: keep looking */
        if (b < 0xC0 || b >= 0xF8) return len;     /* ASCII or invalid lead: nothing pending */
        size_t need = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        return k < need ? len - k : len;
    }
    return len;
}

uint32_t unicode_tolower(uint32_t cp)
{
    size_t lo = 0, hi = unicode_lower_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (unicode_lower[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < unicode_lower_n && unicode_lower[lo][0] == cp ? unicode_lower[lo][1] : cp;
}

uint32_t unicode_nfd_base(uint32_t cp)
{
    /* last range whose first <= cp */
    size_t lo = 0, hi = unicode_nfd_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (unicode_nfd[mid][0] <= cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return cp;
    const uint32_t *r = unicode_nfd[lo - 1];
    return cp <= r[1] ? r[2] : cp;
}
