#!/usr/bin/env python3
"""Generate src/unicode_tables.c: the Unicode data the tokenizer needs.

    python3 src/unicode_gen.py > src/unicode_tables.c
    python3 src/unicode_gen.py --ucd /usr/share/unicode/UnicodeData.txt --add-15.1 > src/unicode_tables.c

Python 3 standard library only. Without --ucd the data is Python's own
unicodedata (Unicode 14.0 in Python 3.11); with --ucd it is read from a
UnicodeData.txt (Debian 12's package unicode-data has UCD 15.0.0), and
--add-15.1 adds the 627 characters Unicode 15.1 assigned (CJK Extension I,
four ideographic description characters, one CJK stroke), so the table is
Unicode 15.1: the version of llama.cpp's own table, whose categories its
tokenizers (our reference) use. The version is written into the output.
The checked-in file was made with the second command.

What is generated (see unicode.h for how it is used):
  * per code point one class of flags, stored as a two-stage table
    (unicode_stage1[cp >> 7] names a 128-entry block of unicode_stage2, whose
    bytes index unicode_flag_values). The flags follow the general category
    (L* letter, N* number, P* punctuation, S* symbol, M* mark, Z* separator,
    Cc/Cf/Co/Cs control, Cn undefined) plus a White_Space bit for the fixed
    list 9-13, 32, 0x85, 0xA0, 0x1680, 0x2000-0x200A, 0x2028, 0x2029,
    0x202F, 0x205F, 0x3000. These are the classes llama.cpp's pre-tokenizers
    test (its unicode-data is built from the same UnicodeData fields).
  * unicode_lower: sorted (code point, simple lowercase) pairs.
  * unicode_nfd: sorted ranges (first, last, base) mapping a code point to the
    first code point of its canonical decomposition (BERT accent stripping).
"""
import argparse
import sys
import unicodedata

MAX_CP = 0x110000
BLOCK = 128

F_UNDEFINED = 0x001
F_NUMBER = 0x002
F_LETTER = 0x004
F_SEPARATOR = 0x008
F_MARK = 0x010
F_PUNCT = 0x020
F_SYMBOL = 0x040
F_CONTROL = 0x080
F_WHITESPACE = 0x100

CATEGORY_FLAG = {
    "Cn": F_UNDEFINED, "Cc": F_CONTROL, "Cf": F_CONTROL, "Co": F_CONTROL, "Cs": F_CONTROL,
    "Ll": F_LETTER, "Lm": F_LETTER, "Lo": F_LETTER, "Lt": F_LETTER, "Lu": F_LETTER,
    "Mc": F_MARK, "Me": F_MARK, "Mn": F_MARK,
    "Nd": F_NUMBER, "Nl": F_NUMBER, "No": F_NUMBER,
    "Pc": F_PUNCT, "Pd": F_PUNCT, "Pe": F_PUNCT, "Pf": F_PUNCT, "Pi": F_PUNCT,
    "Po": F_PUNCT, "Ps": F_PUNCT,
    "Sc": F_SYMBOL, "Sk": F_SYMBOL, "Sm": F_SYMBOL, "So": F_SYMBOL,
    "Zl": F_SEPARATOR, "Zp": F_SEPARATOR, "Zs": F_SEPARATOR,
}

WHITESPACE = set(range(0x09, 0x0E)) | set(range(0x2000, 0x200B)) | {
    0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}


# Unicode 15.1's new characters (all without case or decomposition).
UNICODE_15_1 = [(0x2EBF0, 0x2EE5D, "Lo"), (0x2FFC, 0x2FFF, "So"), (0x31EF, 0x31EF, "So")]


def read_ucd(path):
    """UnicodeData.txt -> (category, simple lowercase, canonical decomposition)
    per code point, and the version from the ReadMe next to it if any."""
    cat, lower, decomp = {}, {}, {}
    first = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            if len(fields) < 15:
                continue
            cp = int(fields[0], 16)
            if fields[1].endswith(", First>"):
                first = cp
                continue
            start = first if fields[1].endswith(", Last>") else cp
            first = None
            for c in range(start, cp + 1):
                cat[c] = fields[2]
            if fields[13]:
                lower[cp] = int(fields[13], 16)
            if fields[5] and not fields[5].startswith("<"):
                decomp[cp] = [int(x, 16) for x in fields[5].split()]
    return cat, lower, decomp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ucd", help="UnicodeData.txt to use instead of Python's unicodedata")
    ap.add_argument("--ucd-version", default="15.0.0", help="version of that file (default 15.0.0)")
    ap.add_argument("--add-15.1", dest="add151", action="store_true", help="add Unicode 15.1's characters")
    args = ap.parse_args()
    out = sys.stdout.write

    if args.ucd:
        ucat, ulower, udecomp = read_ucd(args.ucd)
        version = args.ucd_version
        source = "UnicodeData.txt %s" % version
    else:
        version = unicodedata.unidata_version
        source = "Python %s unicodedata" % sys.version.split()[0]
    if args.add151:
        if not args.ucd:
            sys.exit("--add-15.1 needs --ucd with a 15.0 UnicodeData.txt")
        for lo, hi, c in UNICODE_15_1:
            for cp in range(lo, hi + 1):
                ucat[cp] = c
        version = "15.1.0"
        source += " + the Unicode 15.1 additions"

    def category(cp):
        if args.ucd:
            return ucat.get(cp, "Cn")
        return unicodedata.category(chr(cp))

    def lower_of(cp):
        if args.ucd:
            return ulower.get(cp, cp)
        # simple (one code point) mapping; U+0130's full mapping is "i" + U+0307
        return ord(chr(cp).lower()[0])

    def nfd_base(cp):
        if args.ucd:
            if 0xAC00 <= cp <= 0xD7A3:          # Hangul syllable: its leading consonant
                return 0x1100 + (cp - 0xAC00) // 588
            while cp in udecomp:
                cp = udecomp[cp][0]
            return cp
        return ord(unicodedata.normalize("NFD", chr(cp))[0])

    flags = []
    for cp in range(MAX_CP):
        f = CATEGORY_FLAG[category(cp)]
        if cp in WHITESPACE:
            f |= F_WHITESPACE
        flags.append(f)

    values = sorted(set(flags))
    assert len(values) < 256
    vindex = {v: i for i, v in enumerate(values)}

    blocks = {}
    stage1 = []
    for start in range(0, MAX_CP, BLOCK):
        key = tuple(vindex[f] for f in flags[start:start + BLOCK])
        if key not in blocks:
            blocks[key] = len(blocks)
        stage1.append(blocks[key])
    assert len(blocks) < 256
    stage2 = [None] * len(blocks)
    for key, idx in blocks.items():
        stage2[idx] = key

    lower = []
    for cp in range(MAX_CP):
        if 0xD800 <= cp < 0xE000:
            continue
        lcp = lower_of(cp)
        if lcp != cp:
            lower.append((cp, lcp))

    nfd = []  # (first, last, base)
    for cp in range(MAX_CP):
        if 0xD800 <= cp < 0xE000:
            continue
        base = nfd_base(cp)
        if base == cp:
            continue
        if nfd and nfd[-1][1] == cp - 1 and nfd[-1][2] == base:
            nfd[-1] = (nfd[-1][0], cp, base)
        else:
            nfd.append((cp, cp, base))

    out("/* unicode_tables.c — GENERATED by src/unicode_gen.py; do not edit.\n")
    out(" *\n")
    out(" * Unicode version %s (%s).\n" % (version, source))
    out(" * %d flag classes, %d blocks of %d code points, %d lowercase pairs,\n"
        % (len(values), len(blocks), BLOCK, len(lower)))
    out(" * %d NFD base ranges. See unicode.h for the layout. */\n" % len(nfd))
    out('#include "unicode.h"\n\n')
    out("const char unicode_version[] = \"%s\";\n\n" % version)

    out("const uint16_t unicode_flag_values[%d] = {\n   " % len(values))
    out("".join(" 0x%03X," % v for v in values))
    out("\n};\n\n")

    out("/* (0x110000 / %d) block numbers */\n" % BLOCK)
    out("const uint8_t unicode_stage1[%d] = {\n" % len(stage1))
    for i in range(0, len(stage1), 24):
        out("   " + "".join(" %d," % v for v in stage1[i:i + 24]) + "\n")
    out("};\n\n")

    out("/* (%d blocks, %d) indices into unicode_flag_values */\n" % (len(blocks), BLOCK))
    out("const uint8_t unicode_stage2[%d] = {\n" % (len(blocks) * BLOCK))
    for blk in stage2:
        for i in range(0, BLOCK, 32):
            out("   " + "".join("%d," % v for v in blk[i:i + 32]) + "\n")
    out("};\n\n")

    out("const uint32_t unicode_lower[%d][2] = {\n" % len(lower))
    for i in range(0, len(lower), 4):
        out("   " + "".join(" {0x%05X, 0x%05X}," % p for p in lower[i:i + 4]) + "\n")
    out("};\n")
    out("const size_t unicode_lower_n = %d;\n\n" % len(lower))

    out("const uint32_t unicode_nfd[%d][3] = {\n" % len(nfd))
    for i in range(0, len(nfd), 3):
        out("   " + "".join(" {0x%05X, 0x%05X, 0x%05X}," % t for t in nfd[i:i + 3]) + "\n")
    out("};\n")
    out("const size_t unicode_nfd_n = %d;\n" % len(nfd))


if __name__ == "__main__":
    main()
