/* test_tokenizer.c — tokenizer families against llama.cpp's outputs.
 *
 * Without ../shared: tiny vocabularies built in memory with the GGUF writer
 * (SPM, byte-level BPE, WordPiece, special tokens, streaming, bad files,
 * long runs). With ../shared:
 *   - every models/vocab/ggml-vocab-*.gguf with .inp/.out vectors: ids exact
 *     (add_special = parse_special = 0, as llama.cpp's test-tokenizer-0), and
 *     detokenize(ids) == input where the vocab is lossless;
 *   - golden/tokenize/ggml-vocab-*.json: ids for all four add/parse
 *     combinations, every piece, both detokenized texts, the vocab info.
 * MOTE_TOK_BENCH=1 also times 1 MB of mixed text per vocab (not a check).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "gguf_write.h"
#include "json.h"
#include "test.h"
#include "tokenizer.h"
#include "unicode.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */
/* ---------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Encode into a malloc'ed array (retrying on -needed). */
static int32_t *encode(const tok_vocab *v, const char *s, size_t n, int add, int parse, int32_t *count)
{
    int32_t cap = 16;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int32_t r = tok_encode(v, s, n, add, parse, ids, cap);
    if (r < 0 && r != TOK_ENCODE_ERROR) {
        cap = -r;
        ids = realloc(ids, (size_t)cap * sizeof *ids);
        r = tok_encode(v, s, n, add, parse, ids, cap);
    }
    if (r < 0) {
        free(ids);
        *count = r;
        return NULL;
    }
    *count = r;
    return ids;
}

/* Detokenize into a malloc'ed NUL-terminated string. */
static char *detok(const tok_vocab *v, const int32_t *ids, int32_t n, int rm, int unparse, int32_t *len)
{
    int32_t cap = 64;
    char *s = malloc((size_t)cap + 1);
    int32_t r = tok_detokenize(v, ids, n, s, cap, rm, unparse);
    if (r < 0) {
        cap = -r;
        s = realloc(s, (size_t)cap + 1);
        r = tok_detokenize(v, ids, n, s, cap, rm, unparse);
    }
    if (r < 0) r = 0;
    s[r] = 0;
    *len = r;
    return s;
}

static int ids_eq(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    return na == nb && (na == 0 || !memcmp(a, b, (size_t)na * sizeof *a));
}

static void note_ids(const char *what, const int32_t *ids, int32_t n)
{
    char line[1024];
    int k = snprintf(line, sizeof line, "%s [", what);
    for (int32_t i = 0; i < n && k < (int)sizeof line - 16; i++)
        k += snprintf(line + k, sizeof line - (size_t)k, "%s%d", i ? "," : "", (int)ids[i]);
    T_NOTE("%s]%s", line, k >= (int)sizeof line - 16 ? "..." : "");
}

/* ---------------------------------------------------------------------- */
/* tiny in-memory vocabularies                                             */
/* ---------------------------------------------------------------------- */

static int load_mem(tok_vocab *v, gguf_writer *w, uint8_t **buf, gguf_file *g, char *err, size_t errcap)
{
    size_t len;
    if (gguf_writer_finish(w, buf, &len) < 0) {
        snprintf(err, errcap, "writer: %.200s", w->err);
        return -100;
    }
    if (gguf_open_mem(g, *buf, len) < 0) {
        snprintf(err, errcap, "gguf: %.200s", g->err);
        free(*buf);
        return -101;
    }
    int rc = tok_vocab_load(v, g, err, errcap);
    gguf_close(g);   /* the vocab must not keep pointers into the file */
    free(*buf);
    return rc;
}

/* SPM: <unk> <s> </s>, 256 byte tokens, then pieces with scores. */
static int make_spm(tok_vocab *v, char *err, size_t errcap)
{
    static const char *words[] = {
        "\xe2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "\xe2\x96\x81h", "he", "ll", "llo",
        "\xe2\x96\x81he", "\xe2\x96\x81hello", "\xe2\x96\x81w", "or", "\xe2\x96\x81world", "\xe2\x96\x81\xe2\x96\x81",
        "<|im_end|>", "\xc3\xa9", "ld", "orld" };
    const int nw = (int)(sizeof words / sizeof words[0]);
    const int n = 3 + 256 + nw;
    const char **toks = calloc((size_t)n, sizeof *toks);
    char (*bytes)[8] = calloc(256, 8);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    toks[0] = "<unk>"; types[0] = 2;
    toks[1] = "<s>"; types[1] = 3;
    toks[2] = "</s>"; types[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], 8, "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        types[3 + b] = 6;
    }
    for (int i = 0; i < nw; i++) {
        toks[259 + i] = words[i];
        scores[259 + i] = -(float)i;
        types[259 + i] = 1;
    }
    types[259 + 18] = 3;   /* <|im_end|> control */
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "general.architecture", "llama");
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    gguf_writer_add_arr_f32(&w, "tokenizer.ggml.scores", scores, (uint64_t)n);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, (uint64_t)n);
    gguf_writer_add_u32(&w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    uint8_t *buf;
    gguf_file g;
    int rc = load_mem(v, &w, &buf, &g, err, errcap);
    gguf_writer_free(&w);
    free(toks);
    free(bytes);
    free(scores);
    free(types);
    return rc;
}

/* GPT-2 style byte-level BPE: the 256 byte symbols, a few merges. */
static int make_bpe(tok_vocab *v, const char *pre, char *err, size_t errcap)
{
    static const char *extra[] = { "he", "ll", "hell", "hello", "\xc4\xa0w", "or", "\xc4\xa0wor", "\xc4\xa0world",
                                   "\xc4\xa0\xc4\xa0", "<|endoftext|>", "<user>" };
    static const char *merges[] = { "h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "o r", "\xc4\xa0w or",
                                    "\xc4\xa0wor l", "\xc4\xa0 \xc4\xa0" };
    /* the real vocab would have "\xc4\xa0worl"; its absence drops that merge */
    const int ne = (int)(sizeof extra / sizeof extra[0]);
    const int n = 256 + ne;
    char (*bytes)[4] = calloc(256, 4);
    const char **toks = calloc((size_t)n, sizeof *toks);
    int32_t *types = calloc((size_t)n, sizeof *types);
    for (int b = 0; b < 256; b++) {
        /* GPT-2 byte -> code point */
        int cp = b, k = 0;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) {
            for (int i = 0; i < b; i++)
                if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE))) k++;
            cp = 256 + k;
        }
        unicode_utf8_encode((uint32_t)cp, (uint8_t *)bytes[b]);
        toks[b] = bytes[b];
        types[b] = 1;
    }
    for (int i = 0; i < ne; i++) {
        toks[256 + i] = extra[i];
        types[256 + i] = 1;
    }
    types[256 + 9] = 3;    /* <|endoftext|> control */
    types[256 + 10] = 4;   /* <user> user-defined */
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "general.architecture", "gpt2");
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "gpt2");
    if (pre) gguf_writer_add_str(&w, "tokenizer.ggml.pre", pre);
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, (uint64_t)n);
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.merges", merges, sizeof merges / sizeof merges[0]);
    gguf_writer_add_u32(&w, "tokenizer.ggml.bos_token_id", (uint32_t)(256 + 9));
    gguf_writer_add_u32(&w, "tokenizer.ggml.eos_token_id", (uint32_t)(256 + 9));
    uint8_t *buf;
    gguf_file g;
    int rc = load_mem(v, &w, &buf, &g, err, errcap);
    gguf_writer_free(&w);
    free(bytes);
    free(toks);
    free(types);
    return rc;
}

static int make_wpm(tok_vocab *v, char *err, size_t errcap)
{
#define SP "\xe2\x96\x81"
    static const char *toks[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", SP "the", SP "cat",
                                  SP "ca", "t", "s", SP ".", SP "cafe", SP "!" };
    int32_t types[13] = { 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 };
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "general.architecture", "bert");
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "bert");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, 13);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, 13);
    gguf_writer_add_u32(&w, "tokenizer.ggml.unknown_token_id", 1);
    gguf_writer_add_u32(&w, "tokenizer.ggml.cls_token_id", 2);
    gguf_writer_add_u32(&w, "tokenizer.ggml.seperator_token_id", 3);
    gguf_writer_add_u32(&w, "tokenizer.ggml.padding_token_id", 0);
    gguf_writer_add_u32(&w, "tokenizer.ggml.bos_token_id", 2);
    uint8_t *buf;
    gguf_file g;
    int rc = load_mem(v, &w, &buf, &g, err, errcap);
    gguf_writer_free(&w);
    return rc;
}

static int expect_ids(const tok_vocab *v, const char *text, int add, int parse, const int32_t *want, int32_t nwant,
                      const char *name)
{
    int32_t n;
    int32_t *ids = encode(v, text, strlen(text), add, parse, &n);
    int ok = ids && ids_eq(ids, n, want, nwant);
    T_CHECK(ok, "%s", name);
    if (!ok) {
        if (ids) note_ids("got", ids, n);
        note_ids("want", want, nwant);
    }
    free(ids);
    return ok;
}

static void test_unicode(void)
{
    T_CHECK(unicode_flags('a') == UNI_LETTER && unicode_flags('7') == UNI_NUMBER, "unicode: ASCII classes");
    T_CHECK(unicode_flags(' ') == (UNI_SEPARATOR | UNI_WHITESPACE) && (unicode_flags('\n') & UNI_WHITESPACE),
            "unicode: whitespace bit");
    T_CHECK(unicode_flags(0x4E2D) == UNI_LETTER && unicode_flags(0x0301) == UNI_MARK &&
            unicode_flags(0x3000) == (UNI_SEPARATOR | UNI_WHITESPACE) && unicode_flags(0x1F600) == UNI_SYMBOL,
            "unicode: CJK, combining mark, ideographic space, emoji");
    T_CHECK(unicode_flags(0x110000) == UNI_UNDEFINED && unicode_flags(0xE000) == UNI_CONTROL, "unicode: out of range, private use");
    /* llama.cpp's table is Unicode 15.1: CJK Ext. H (15.0) and I (15.1) are letters, U+1C89 (16.0) is not yet */
    T_CHECK(!strcmp(unicode_version, "15.1.0") && unicode_flags(0x31350) == UNI_LETTER &&
            unicode_flags(0x2EBF0) == UNI_LETTER && unicode_flags(0x0CF3) == UNI_MARK && unicode_flags(0x1C89) == UNI_UNDEFINED,
            "unicode: version %s, 15.0/15.1 additions present, 16.0 absent", unicode_version);
    T_CHECK(unicode_tolower('A') == 'a' && unicode_tolower(0x0130) == 'i' && unicode_tolower(0x0391) == 0x03B1 &&
            unicode_tolower('a') == 'a', "unicode: tolower");
    T_CHECK(unicode_nfd_base(0xE9) == 'e' && unicode_nfd_base(0xC5) == 'A' && unicode_nfd_base('x') == 'x',
            "unicode: NFD base");
    uint32_t cp;
    T_CHECK(unicode_utf8_decode((const uint8_t *)"\xe2\x82\xac", 3, &cp) == 3 && cp == 0x20AC, "utf8: decode 3 bytes");
    T_CHECK(unicode_utf8_decode((const uint8_t *)"\xe2\x82", 2, &cp) == 1 && cp == UNI_REPLACEMENT, "utf8: truncated -> FFFD, 1 byte");
    T_CHECK(unicode_utf8_decode((const uint8_t *)"\x80", 1, &cp) == 1 && cp == UNI_REPLACEMENT, "utf8: stray continuation");
    T_CHECK(unicode_utf8_decode((const uint8_t *)"\xc0\x80", 2, &cp) == 2 && cp == 0, "utf8: overlong decodes as llama.cpp");
    T_CHECK(unicode_utf8_complete_prefix((const uint8_t *)"a\xe2\x82", 3) == 1 &&
            unicode_utf8_complete_prefix((const uint8_t *)"a\xe2\x82\xac", 4) == 4, "utf8: complete prefix");
}

static void test_spm_tiny(void)
{
    tok_vocab v;
    char err[256];
    int rc = make_spm(&v, err, sizeof err);
    if (!T_CHECK(rc == 0, "spm tiny: load (%s)", err)) return;
    T_CHECK(v.type == TOK_TYPE_SPM && v.add_bos && v.bos == 1 && v.eos == 2 && v.nl == 3 + 10, "spm tiny: ids and flags");
    /* "▁hello" (272) "▁world" (275, reached via ▁w + (or + ld)) */
    int32_t a[] = { 272, 275 };
    expect_ids(&v, "hello world", 0, 0, a, 2, "spm tiny: hello world");
    int32_t b[] = { 1, 272, 275 };
    expect_ids(&v, "hello world", 1, 0, b, 3, "spm tiny: BOS added");
    /* byte fallback: 'z' is not a piece -> <0x7A> */
    int32_t c[] = { 259, 3 + 'z' };
    expect_ids(&v, "z", 0, 0, c, 2, "spm tiny: byte fallback");
    /* control token only with parse_special; text after it gets the space prefix */
    int32_t d[] = { 277, 272 };
    expect_ids(&v, "<|im_end|>hello", 0, 1, d, 2, "spm tiny: special parsed, prefix after it");
    int32_t n;
    int32_t *ids = encode(&v, "<|im_end|>", 10, 0, 0, &n);
    T_CHECK(ids && n > 1 && ids[0] != 277, "spm tiny: special not parsed without parse_special");
    free(ids);
    /* detokenize: leading space of the first piece dropped */
    int32_t len;
    char *s = detok(&v, b, 3, 1, 0, &len);
    T_CHECK(!strcmp(s, " hello world"), "spm tiny: detokenize remove_special keeps the space after BOS ('%s')", s);
    free(s);
    s = detok(&v, a, 2, 0, 0, &len);
    T_CHECK(!strcmp(s, "hello world"), "spm tiny: detokenize ('%s')", s);
    free(s);
    /* a split multi-byte character streams out whole */
    tok_stream st;
    tok_stream_init(&st);
    char out[64];
    int32_t k1 = tok_stream_push(&st, &v, 3 + 0xC3, 0, out, sizeof out);
    int32_t k2 = tok_stream_push(&st, &v, 3 + 0xA9, 0, out, sizeof out);
    T_CHECK(k1 == 0 && k2 == 2 && !memcmp(out, "\xc3\xa9", 2), "spm tiny: stream holds a split UTF-8 char");
    k1 = tok_stream_push(&st, &v, 3 + 0xE2, 0, out, sizeof out);
    k2 = tok_stream_flush(&st, out, sizeof out);
    T_CHECK(k1 == 0 && k2 == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "spm tiny: stream flush of a partial char -> U+FFFD");
    tok_stream_init(&st);
    k1 = tok_stream_push(&st, &v, 3 + 0xFF, 0, out, sizeof out);
    T_CHECK(k1 == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "spm tiny: stream replaces an invalid byte");
    k1 = tok_stream_push(&st, &v, 272, 0, out, 2);
    T_CHECK(k1 == -6, "spm tiny: stream reports the room it needs");
    /* cap too small -> -needed */
    int32_t small[1];
    T_CHECK(tok_encode(&v, "hello world", 11, 0, 0, small, 1) == -2, "spm tiny: encode reports needed capacity");
    T_CHECK(tok_encode(&v, "", 0, 1, 0, small, 1) == 1 && small[0] == 1, "spm tiny: empty text + BOS");
    /* long runs are not quadratic */
    size_t big = 100000;
    char *sp = malloc(big);
    memset(sp, ' ', big);
    double t0 = now_s();
    ids = encode(&v, sp, big, 0, 0, &n);
    double t1 = now_s();
    T_CHECK(ids && n > 0 && t1 - t0 < 2.0, "spm tiny: 1e5 spaces in %.3f s (%d ids)", t1 - t0, (int)n);
    free(ids);
    memset(sp, 'l', big);
    t0 = now_s();
    ids = encode(&v, sp, big, 0, 0, &n);
    t1 = now_s();
    T_CHECK(ids && n == 50001 && t1 - t0 < 2.0, "spm tiny: one 1e5-char word in %.3f s (%d ids)", t1 - t0, (int)n);
    free(ids);
    free(sp);
    tok_vocab_free(&v);
}

static void test_bpe_tiny(void)
{
    tok_vocab v;
    char err[256];
    int rc = make_bpe(&v, "gpt-2", err, sizeof err);
    if (!T_CHECK(rc == 0, "bpe tiny: load (%s)", err)) return;
    int32_t hello = 256 + 3, gwor = 256 + 6, l = 'l' - 0x21 + 0;   /* byte tokens are in byte order */
    (void)l;
    int32_t n;
    int32_t *ids = encode(&v, "hello world", 11, 0, 0, &n);
    /* "hello" " world" -> hello, Ġwor, l, d  (no "Ġworl" token, so that merge never applies) */
    T_CHECK(ids && n == 4 && ids[0] == hello && ids[1] == gwor && ids[2] == 'l' && ids[3] == 'd',
            "bpe tiny: merges by rank");
    if (ids && !(n == 4 && ids[0] == hello)) note_ids("got", ids, n);
    free(ids);
    int32_t len;
    int32_t hw[] = { hello, gwor, 'l', 'd' };
    char *s = detok(&v, hw, 4, 0, 0, &len);
    T_CHECK(!strcmp(s, "hello world"), "bpe tiny: detokenize ('%s')", s);
    free(s);
    /* user-defined tokens are split out even without parse_special; control ones only with it */
    ids = encode(&v, "a<user>b<|endoftext|>", 21, 0, 0, &n);
    T_CHECK(ids && n > 3 && ids[1] == 256 + 10 && ids[n - 1] != 256 + 9, "bpe tiny: user-defined always, control not");
    free(ids);
    ids = encode(&v, "a<|endoftext|>", 14, 0, 1, &n);
    T_CHECK(ids && n == 2 && ids[1] == 256 + 9, "bpe tiny: control with parse_special");
    free(ids);
    T_CHECK(tok_is_eog(&v, 256 + 9) && !tok_is_eog(&v, hello), "bpe tiny: EOG set");
    char piece[TOK_PIECE_MAX];
    T_CHECK(tok_token_to_piece(&v, 256 + 9, piece, sizeof piece, 0, 0) == 0 &&
            tok_token_to_piece(&v, 256 + 9, piece, sizeof piece, 0, 1) == 13, "bpe tiny: control piece only when special");
    T_CHECK(tok_token_to_piece(&v, 99999, piece, sizeof piece, 0, 1) == 0, "bpe tiny: id out of range renders nothing");
    /* invalid UTF-8 becomes U+FFFD, i.e. its three byte tokens */
    ids = encode(&v, "\xff", 1, 0, 0, &n);
    T_CHECK(ids && n == 3 && ids[0] == (int32_t)(0xEF - 0xAE + 0xAE) , "bpe tiny: invalid byte -> U+FFFD bytes");
    free(ids);
    /* long runs */
    size_t big = 100000;
    char *sp = malloc(big);
    memset(sp, ' ', big);
    double t0 = now_s();
    ids = encode(&v, sp, big, 0, 0, &n);
    double t1 = now_s();
    T_CHECK(ids && n == 50000 && t1 - t0 < 2.0, "bpe tiny: 1e5 spaces in %.3f s (%d ids)", t1 - t0, (int)n);
    free(ids);
    memset(sp, 'l', big);
    t0 = now_s();
    ids = encode(&v, sp, big, 0, 0, &n);
    t1 = now_s();
    T_CHECK(ids && n == 50000 && t1 - t0 < 2.0, "bpe tiny: one 1e5-letter word in %.3f s (%d ids)", t1 - t0, (int)n);
    free(ids);
    free(sp);
    tok_vocab_free(&v);

    rc = make_bpe(&v, "no-such-pre", err, sizeof err);
    T_CHECK(rc == TOK_ERR_UNSUPPORTED && strstr(err, "no-such-pre"), "bpe tiny: unknown pre-tokenizer refused (%s)", err);
    const char *pres[] = { "llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
                           "command-r", "mpt", "refact", "default", NULL };
    for (int i = 0; pres[i]; i++) {
        rc = make_bpe(&v, pres[i], err, sizeof err);
        int ok = rc == 0;
        if (ok) {
            const char *txt = " Hello  world 12345 \xe4\xb8\xad\xe6\x96\x87!! \r\n\n x's \xe2\x80\x94 ok  ";
            ids = encode(&v, txt, strlen(txt), 1, 1, &n);
            char *back = ids ? detok(&v, ids, n, 1, 0, &len) : NULL;
            ok = ids && back && (v.pre_kind == 0 || strlen(back) > 10);
            free(ids);
            free(back);
            tok_vocab_free(&v);
        }
        T_CHECK(ok, "bpe tiny: pre-tokenizer %s loads and encodes", pres[i]);
    }
}

static void test_wpm_tiny(void)
{
    tok_vocab v;
    char err[256];
    int rc = make_wpm(&v, err, sizeof err);
    if (!T_CHECK(rc == 0, "wpm tiny: load (%s)", err)) return;
    int32_t a[] = { 2, 5, 6, 9, 10, 1, 3 };
    expect_ids(&v, "The CATs. dog", 1, 0, a, 7, "wpm tiny: lower-case, ## pieces, punctuation, [UNK], [CLS]/[SEP]");
    int32_t b[] = { 11, 12 };
    expect_ids(&v, "Caf\xc3\xa9!", 0, 0, b, 2, "wpm tiny: accents stripped");
    int32_t len;
    char *s = detok(&v, a, 7, 0, 1, &len);
    T_CHECK(!strcmp(s, "[CLS] the cats.[UNK][SEP]"), "wpm tiny: detokenize ('%s')", s);
    free(s);
    tok_vocab_free(&v);
}

static void test_bad_files(void)
{
    tok_vocab v;
    char err[256];
    gguf_writer w;
    uint8_t *buf;
    gguf_file g;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "general.architecture", "llama");
    int rc = load_mem(&v, &w, &buf, &g, err, sizeof err);
    T_CHECK(rc == TOK_ERR_FORMAT && strstr(err, "tokenizer.ggml.model"), "bad: no tokenizer model (%s)", err);
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "llama");
    const char *dup[] = { "a", "b", "a" };
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", dup, 3);
    rc = load_mem(&v, &w, &buf, &g, err, sizeof err);
    T_CHECK(rc == TOK_ERR_FORMAT && strstr(err, "duplicate"), "bad: duplicate token (%s)", err);
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "t5");
    rc = load_mem(&v, &w, &buf, &g, err, sizeof err);
    T_CHECK(rc == TOK_ERR_UNSUPPORTED, "bad: t5 unsupported (%s)", err);
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_add_str(&w, "tokenizer.ggml.pre", "gpt-2");
    const char *t2[] = { "a", "b" };
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", t2, 2);
    rc = load_mem(&v, &w, &buf, &g, err, sizeof err);
    T_CHECK(rc == TOK_ERR_FORMAT && strstr(err, "merges"), "bad: BPE without merges (%s)", err);
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", t2, 2);
    float sc[1] = { 0 };
    gguf_writer_add_arr_f32(&w, "tokenizer.ggml.scores", sc, 1);
    rc = load_mem(&v, &w, &buf, &g, err, sizeof err);
    T_CHECK(rc == TOK_ERR_FORMAT && strstr(err, "scores"), "bad: short score array (%s)", err);
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", t2, 1);   /* default BOS id 1 is out of range */
    gguf_writer_add_bool(&w, "tokenizer.ggml.add_bos_token", 1);
    rc = load_mem(&v, &w, &buf, &g, err, sizeof err);
    T_CHECK(rc == TOK_ERR_FORMAT && strstr(err, "bos"), "bad: add_bos without a BOS token (%s)", err);
    gguf_writer_free(&w);
}

/* ---------------------------------------------------------------------- */
/* ../shared: llama.cpp's vectors and our goldens                          */
/* ---------------------------------------------------------------------- */

static int vocab_lossless(const tok_vocab *v)
{
    return v->type != TOK_TYPE_WPM && !v->clean_spaces;
}

static void test_vectors(const char *dir, const char *name)
{
    char path[2300], pin[2400], pout[2400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(pin, sizeof pin, "%s.inp", path);
    snprintf(pout, sizeof pout, "%s.out", path);
    size_t lin, lout;
    char *inp = read_file(pin, &lin), *outp = read_file(pout, &lout);
    if (!inp || !outp) {
        free(inp);
        free(outp);
        return;          /* no vectors for this vocab */
    }
    gguf_file g;
    tok_vocab v;
    char err[256] = "";
    int rc = gguf_open(&g, path);
    if (rc == 0) {
        double t0 = now_s();
        rc = tok_vocab_load(&v, &g, err, sizeof err);
        T_NOTE("%s: loaded in %.3f s", name, now_s() - t0);
        gguf_close(&g);
    } else {
        snprintf(err, sizeof err, "%s", g.err);
    }
    if (!T_CHECK(rc == 0, "vectors %s: load (%s)", name, err)) {
        free(inp);
        free(outp);
        return;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int cases = 0, pass = 0, rt_cases = 0, rt_pass = 0, shown = 0;
    char *ip = inp, *op = outp;
    for (;;) {
        /* cases are separated (not terminated) by sep; .out has one line per case */
        char *oend = strchr(op, '\n');
        if (!oend || ip > inp + lin) break;
        char *iend = strstr(ip, sep);
        if (!iend) iend = inp + lin;
        *oend = 0;
        int32_t want[4096], nwant = 0;
        for (char *q = op; *q && nwant < 4096;) {
            char *e;
            long x = strtol(q, &e, 10);
            if (e == q) break;
            want[nwant++] = (int32_t)x;
            q = e;
        }
        int32_t n;
        size_t ilen = (size_t)(iend - ip);
        int32_t *ids = encode(&v, ip, ilen, 0, 0, &n);
        cases++;
        int ok = ids && ids_eq(ids, n, want, nwant);
        pass += ok;
        if (!ok && shown++ < 3) {
            T_NOTE("%s case %d '%.*s'", name, cases, (int)(ilen > 60 ? 60 : ilen), ip);
            if (ids) note_ids("  got ", ids, n);
            note_ids("  want", want, nwant);
        }
        if (ids && vocab_lossless(&v)) {
            int32_t len;
            char *back = detok(&v, ids, n, 0, 0, &len);
            rt_cases++;
            int rok = (size_t)len == ilen && !memcmp(back, ip, ilen);
            rt_pass += rok;
            if (!rok && shown++ < 3) T_NOTE("%s roundtrip case %d: '%s'", name, cases, back);
            free(back);
        }
        free(ids);
        ip = iend + strlen(sep);
        op = oend + 1;
    }
    T_CHECK(cases > 0 && pass == cases, "vectors %s: %d/%d cases give llama.cpp's ids", name, pass, cases);
    /* long runs of one character: 1e5 spaces, newlines, one 1e5-letter word, 1e5 CJK
     * characters; each must stay far from quadratic (generous bound: shared machine) */
    {
        static const char *unit[] = { " ", "\n", "a", "\xe4\xb8\xad", "<" };
        double worst = 0;
        int all = 1;
        for (int u = 0; u < 5; u++) {
            size_t ul = strlen(unit[u]), big = 100000 * ul;
            char *txt = malloc(big);
            for (size_t i = 0; i < big; i += ul) memcpy(txt + i, unit[u], ul);
            double t0 = now_s();
            int32_t n;
            int32_t *ids = encode(&v, txt, big, 1, 1, &n);
            double dt = now_s() - t0;
            if (dt > worst) worst = dt;
            all &= ids != NULL && n > 0;
            free(ids);
            free(txt);
        }
        T_CHECK(all && worst < 3.0, "vectors %s: 1e5-character runs, slowest %.3f s", name, worst);
    }
    if (rt_cases) T_CHECK(rt_pass == rt_cases, "vectors %s: %d/%d detokenize back to the input", name, rt_pass, rt_cases);
    tok_vocab_free(&v);
    free(inp);
    free(outp);
}

static int json_ids(const char *js, const json_tok *t, int arr, int32_t *out, int cap)
{
    int n = 0;
    if (json_tok_type(t, arr) != JSON_ARRAY) return -1;
    JSON_ARR_FOREACH(t, arr, i, k) {
        long long x;
        if (n >= cap || json_get_int64(js, t, i, &x) < 0) return -1;
        out[n++] = (int32_t)x;
    }
    return n;
}

static int hexbytes(const char *js, const json_tok *t, int i, char *out, int cap)
{
    if (json_tok_type(t, i) != JSON_STRING) return -1;
    int n = 0;
    for (int p = t[i].start; p + 1 < t[i].end; p += 2) {
        unsigned x;
        if (n >= cap || sscanf(js + p, "%2x", &x) != 1) return -1;
        out[n++] = (char)x;
    }
    return n;
}

static void test_golden(const char *shared_dir, const char *jname)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/tokenize/%s", shared_dir, jname);
    size_t jlen;
    char *js = read_file(path, &jlen);
    if (!T_CHECK(js != NULL, "golden %s: readable", jname)) return;
    json_parser p = { 0 };
    int ntok = json_parse(&p, js, jlen, NULL, 0);
    json_tok *t = ntok > 0 ? malloc((size_t)ntok * sizeof *t) : NULL;
    if (!T_CHECK(t && json_parse(&p, js, jlen, t, ntok) == ntok, "golden %s: parses", jname)) {
        free(t);
        free(js);
        return;
    }
    char vf[512];
    int vfi = json_obj_get(js, t, 0, "vocab_file");
    if (json_string_unescape(js, t, vfi, vf, sizeof vf) < 0) vf[0] = 0;
    char vpath[1200];
    snprintf(vpath, sizeof vpath, "%s/%s", shared_dir, vf);
    gguf_file g;
    tok_vocab v;
    char err[256] = "";
    int rc = gguf_open(&g, vpath);
    if (rc == 0) {
        rc = tok_vocab_load(&v, &g, err, sizeof err);
        gguf_close(&g);
    } else {
        snprintf(err, sizeof err, "%s", g.err);
    }
    if (!T_CHECK(rc == 0, "golden %s: load %s (%s)", jname, vf, err)) {
        free(t);
        free(js);
        return;
    }
    /* vocab info */
    int vi = json_obj_get(js, t, 0, "vocab_info");
    struct { const char *key; long long mine; } info[] = {
        { "n_vocab", v.n_vocab }, { "vocab_type", v.type }, { "add_bos", v.add_bos }, { "add_eos", v.add_eos },
        { "bos", v.bos }, { "eos", v.eos }, { "eot", v.eot }, { "sep", v.sep }, { "nl", v.nl }, { "pad", v.pad } };
    int info_ok = 1;
    for (size_t i = 0; i < sizeof info / sizeof info[0]; i++) {
        int k = json_obj_get(js, t, vi, info[i].key);
        long long x;
        int b;
        if (json_get_int64(js, t, k, &x) < 0) {
            if (json_get_bool(js, t, k, &b) < 0) continue;
            x = b;
        }
        if (x != info[i].mine) {
            info_ok = 0;
            T_NOTE("%s: vocab_info.%s = %lld, ours %lld", jname, info[i].key, x, info[i].mine);
        }
    }
    T_CHECK(info_ok, "golden %s: vocab info (bos/eos/eot/nl/pad/sep/add_*)", jname);

    int cases = json_obj_get(js, t, 0, "cases");
    int n_ids = 0, ok_ids = 0, n_pieces = 0, ok_pieces = 0, n_det = 0, ok_det = 0, shown = 0;
    JSON_ARR_FOREACH(t, cases, ci, ck) {
        int ti = json_obj_get(js, t, ci, "text");
        int tl = t[ti].end - t[ti].start + 1;
        char *text = malloc((size_t)tl);
        int textlen = json_string_unescape(js, t, ti, text, (size_t)tl);
        int res = json_obj_get(js, t, ci, "results");
        JSON_ARR_FOREACH(t, res, ri, rk) {
            int add = 0, parse = 0;
            json_get_bool(js, t, json_obj_get(js, t, ri, "add_special"), &add);
            json_get_bool(js, t, json_obj_get(js, t, ri, "parse_special"), &parse);
            int32_t want[2048];
            int nwant = json_ids(js, t, json_obj_get(js, t, ri, "ids"), want, 2048);
            int32_t n;
            int32_t *ids = encode(&v, text, (size_t)textlen, add, parse, &n);
            n_ids++;
            int ok = ids && nwant >= 0 && ids_eq(ids, n, want, nwant);
            ok_ids += ok;
            if (!ok && shown++ < 4) {
                T_NOTE("%s case %d add=%d parse=%d '%.50s'", jname, ck, add, parse, text);
                if (ids) note_ids("  got ", ids, n);
                note_ids("  want", want, nwant);
            }
            /* pieces of the expected ids (special = 1) */
            int ph = json_obj_get(js, t, ri, "pieces_hex");
            if (json_tok_type(t, ph) == JSON_ARRAY && nwant >= 0) {
                JSON_ARR_FOREACH(t, ph, hi, hk) {
                    char wantp[TOK_PIECE_MAX], got[TOK_PIECE_MAX];
                    int wl = hexbytes(js, t, hi, wantp, sizeof wantp);
                    int gl = hk < nwant ? tok_token_to_piece(&v, want[hk], got, sizeof got, 0, 1) : -1;
                    n_pieces++;
                    int pok = wl >= 0 && gl == wl && !memcmp(wantp, got, (size_t)wl);
                    ok_pieces += pok;
                    if (!pok && shown++ < 4) T_NOTE("%s piece of id %d differs", jname, hk < nwant ? (int)want[hk] : -1);
                }
            }
            /* detokenized texts of the expected ids */
            const char *dkeys[2] = { "detokenized", "detokenized_unparse_special" };
            for (int d = 0; d < 2 && nwant >= 0; d++) {
                int di = json_obj_get(js, t, ri, dkeys[d]);
                if (json_tok_type(t, di) != JSON_STRING) continue;
                int dl = t[di].end - t[di].start + 1;
                char *wd = malloc((size_t)dl);
                int wdl = json_string_unescape(js, t, di, wd, (size_t)dl);
                int32_t len;
                char *got = detok(&v, want, nwant, 0, d, &len);
                n_det++;
                int dok = wdl == len && !memcmp(wd, got, (size_t)len);
                ok_det += dok;
                if (!dok && shown++ < 4) T_NOTE("%s %s case %d: got '%s' want '%s'", jname, dkeys[d], ck, got, wd);
                free(got);
                free(wd);
            }
            free(ids);
        }
        free(text);
    }
    T_CHECK(n_ids > 0 && ok_ids == n_ids, "golden %s: %d/%d tokenizations exact", jname, ok_ids, n_ids);
    T_CHECK(ok_pieces == n_pieces, "golden %s: %d/%d pieces exact", jname, ok_pieces, n_pieces);
    T_CHECK(n_det > 0 && ok_det == n_det, "golden %s: %d/%d detokenized texts exact", jname, ok_det, n_det);
    tok_vocab_free(&v);
    free(t);
    free(js);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of names in dir with the given prefix and suffix. */
static int list_dir(const char *dir, const char *prefix, const char *suffix, char **names, int cap)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < cap) {
        size_t l = strlen(de->d_name), ls = strlen(suffix);
        if (strncmp(de->d_name, prefix, strlen(prefix)) || l < ls || strcmp(de->d_name + l - ls, suffix)) continue;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

/* 1 MB of mixed text through each vocab (MOTE_TOK_BENCH=1). */
static void bench(const char *vdir, char **names, int n)
{
    char path[2300];
    snprintf(path, sizeof path, "%s/ggml-vocab-llama-spm.gguf.inp", vdir);
    size_t l, l2 = 0;
    char *sample = read_file(path, &l);
    if (!sample) return;
    /* plus the golden strings (CJK, emoji, whitespace runs, code) as they sit in the JSON */
    snprintf(path, sizeof path, "%s/../../golden/tokenize/strings.json", vdir);
    char *more = read_file(path, &l2);
    if (more) {
        sample = realloc(sample, l + l2);
        memcpy(sample + l, more, l2);
        l += l2;
        free(more);
    }
    size_t total = 1 << 20;
    char *text = malloc(total);
    for (size_t i = 0; i < total; i++) text[i] = sample[i % l];
    free(sample);
    int32_t *ids = malloc(total * sizeof *ids);
    const char *only = getenv("MOTE_TOK_ONLY");
    for (int i = 0; i < n; i++) {
        if (only && !strstr(names[i], only)) continue;
        snprintf(path, sizeof path, "%s/%s", vdir, names[i]);
        gguf_file g;
        tok_vocab v;
        char err[256];
        if (gguf_open(&g, path) < 0) continue;
        int rc = tok_vocab_load(&v, &g, err, sizeof err);
        gguf_close(&g);
        if (rc < 0) continue;
        double t0 = now_s();
        int32_t k = tok_encode(&v, text, total, 0, 1, ids, (int32_t)total);
        double dt = now_s() - t0;
        T_NOTE("bench %-32s 1 MiB -> %7d tokens in %.3f s (%.2f MB/s)", names[i], (int)k, dt, 1.048576 / dt);
        tok_vocab_free(&v);
    }
    free(ids);
    free(text);
}

int main(void)
{
    test_unicode();
    test_spm_tiny();
    test_bpe_tiny();
    test_wpm_tiny();
    test_bad_files();

    char shared[1024], vdir[1100];
    if (!t_shared(shared, sizeof shared, "models/vocab")) {
        T_SKIP(T_NO_SHARED, "llama.cpp tokenizer vectors (models/vocab)");
        T_SKIP(T_NO_SHARED, "tokenizer goldens (golden/tokenize)");
        return t_done();
    }
    snprintf(vdir, sizeof vdir, "%s", shared);
    shared[strlen(shared) - strlen("/models/vocab")] = 0;
    char *names[64];
    int n = list_dir(vdir, "ggml-vocab-", ".gguf", names, 64);
    const char *only = getenv("MOTE_TOK_ONLY");
    for (int i = 0; i < n; i++)
        if (!only || strstr(names[i], only)) test_vectors(vdir, names[i]);
    char gdir[1200];
    snprintf(gdir, sizeof gdir, "%s/golden/tokenize", shared);
    char *gnames[64];
    int gn = list_dir(gdir, "ggml-vocab-", ".json", gnames, 64);
    if (!gn) T_SKIP("golden/tokenize is empty", "tokenizer goldens");
    for (int i = 0; i < gn; i++)
        if (!only || strstr(gnames[i], only)) test_golden(shared, gnames[i]);
    if (getenv("MOTE_TOK_BENCH")) bench(vdir, names, n);
    for (int i = 0; i < n; i++) free(names[i]);
    for (int i = 0; i < gn; i++) free(gnames[i]);
    return t_done();
}
