/* fuzz_tokenizer.c — libFuzzer entry for the tokenizer.
 *
 * Random bytes in, encode (both parse_special modes, with and without
 * add_special) -> every piece, detokenize, the UTF-8 stream; nothing may
 * crash or touch memory out of bounds, and a few properties must hold:
 * ids are in range, the stream's output is valid UTF-8, detokenize reports
 * the length it needs.
 *
 * The first input byte picks the vocabulary: tiny SPM / WordPiece vocabs and
 * a tiny byte-level BPE vocab under each pre-tokenizer, all built in memory
 * with the GGUF writer, or, when MOTE_FUZZ_VOCAB names GGUF files
 * (colon-separated), those real vocabularies too.
 *
 *     make build/fuzz/fuzz_tokenizer
 *     ./build/fuzz/fuzz_tokenizer -max_total_time=60
 *     MOTE_FUZZ_VOCAB=../shared/models/vocab/ggml-vocab-qwen2.gguf ./build/fuzz/fuzz_tokenizer -max_total_time=60
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_write.h"
#include "tokenizer.h"
#include "unicode.h"

#define MAX_VOCABS 48
static tok_vocab vocabs[MAX_VOCABS];
static int n_vocabs;

#define SP "\xe2\x96\x81"

static void add_vocab(gguf_writer *w)
{
    uint8_t *buf;
    size_t len;
    gguf_file g;
    char err[256];
    if (gguf_writer_finish(w, &buf, &len) < 0) abort();
    if (gguf_open_mem(&g, buf, len) < 0) abort();
    if (tok_vocab_load(&vocabs[n_vocabs], &g, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        abort();
    }
    n_vocabs++;
    gguf_close(&g);
    free(buf);
}

static void build_spm(void)
{
    static const char *words[] = { SP, "a", "b", "c", SP "a", "ab", SP "ab", "bc", SP SP, "<|x|>", "<u>",
                                   "\xc3\xa9", "\xe4\xb8\xad", SP "\xe4\xb8\xad" };
    const int nw = (int)(sizeof words / sizeof words[0]);
    const int n = 3 + 256 + nw;
    const char *toks[3 + 256 + 16];
    static char bytes[256][8];
    float scores[3 + 256 + 16] = { 0 };
    int32_t types[3 + 256 + 16];
    toks[0] = "<unk>", types[0] = 2;
    toks[1] = "<s>", types[1] = 3;
    toks[2] = "</s>", types[2] = 3;
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
    types[259 + 9] = 3;    /* <|x|> control */
    types[259 + 10] = 4;   /* <u> user-defined */
    for (int phi = 0; phi < 2; phi++) {
        gguf_writer w;
        gguf_writer_init(&w);
        gguf_writer_add_str(&w, "general.name", phi ? "phi3" : "tiny");
        gguf_writer_add_str(&w, "tokenizer.ggml.model", "llama");
        gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
        gguf_writer_add_arr_f32(&w, "tokenizer.ggml.scores", scores, (uint64_t)n);
        gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, (uint64_t)n);
        gguf_writer_add_bool(&w, "tokenizer.ggml.add_eos_token", phi);
        add_vocab(&w);
        gguf_writer_free(&w);
    }
}

static void build_bpe(const char *model, const char *pre)
{
    static const char *extra[] = { "ab", "abc", "\xc4\xa0" "a", "\xc4\xa0" "ab", "\xc4\xa0\xc4\xa0", "12", "<|end|>", "<user>",
                                   "\xc4\x8a\xc4\x8a", SP "a", SP SP, "\n\n", "<0x41>" };
    static const char *merges[] = { "a b", "ab c", "\xc4\xa0 a", "\xc4\xa0" "a b", "\xc4\xa0 \xc4\xa0", "1 2",
                                    "\xc4\x8a \xc4\x8a", SP " a", SP " " SP, "\n \n", "bad", "x y" };
    const int ne = (int)(sizeof extra / sizeof extra[0]);
    static char bytes[256][4];
    const char *toks[256 + 16];
    int32_t types[256 + 16];
    for (int b = 0; b < 256; b++) {
        int cp = b, k = 0;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
            for (int i = 0; i < b; i++)
                if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE)) k++;
            cp = 256 + k;
        }
        memset(bytes[b], 0, 4);
        unicode_utf8_encode((uint32_t)cp, (uint8_t *)bytes[b]);
        toks[b] = bytes[b];
        types[b] = 1;
    }
    for (int i = 0; i < ne; i++) {
        toks[256 + i] = extra[i];
        types[256 + i] = 1;
    }
    types[256 + 6] = 3;
    types[256 + 7] = 4;
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", model);
    if (pre) gguf_writer_add_str(&w, "tokenizer.ggml.pre", pre);
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, (uint64_t)(256 + ne));
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, (uint64_t)(256 + ne));
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.merges", merges, sizeof merges / sizeof merges[0]);
    gguf_writer_add_u32(&w, "tokenizer.ggml.bos_token_id", 256 + 6);
    gguf_writer_add_u32(&w, "tokenizer.ggml.eos_token_id", 256 + 6);
    add_vocab(&w);
    gguf_writer_free(&w);
}

static void build_wpm(void)
{
    static const char *toks[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", SP "a", SP "ab", "b", "c", SP ".",
                                  SP "\xe4\xb8\xad", SP "e" };
    int32_t types[12] = { 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1 };
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "bert");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, 12);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, 12);
    gguf_writer_add_u32(&w, "tokenizer.ggml.unknown_token_id", 1);
    gguf_writer_add_u32(&w, "tokenizer.ggml.seperator_token_id", 3);
    gguf_writer_add_u32(&w, "tokenizer.ggml.bos_token_id", 2);
    add_vocab(&w);
    gguf_writer_free(&w);
}

static void init_vocabs(void)
{
    static const char *pres[] = { "gpt-2", "llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder",
                                  "falcon", "starcoder", "command-r", "default", NULL };
    build_spm();
    build_wpm();
    for (int i = 0; pres[i]; i++) build_bpe("gpt2", pres[i]);
    build_bpe("gemma4", NULL);
    const char *env = getenv("MOTE_FUZZ_VOCAB");
    if (!env) return;
    char *list = strdup(env);
    for (char *p = strtok(list, ":"); p && n_vocabs < MAX_VOCABS; p = strtok(NULL, ":")) {
        gguf_file g;
        char err[256];
        if (gguf_open(&g, p) < 0 || tok_vocab_load(&vocabs[n_vocabs], &g, err, sizeof err) < 0) {
            fprintf(stderr, "fuzz_tokenizer: cannot load %s\n", p);
            abort();
        }
        gguf_close(&g);
        n_vocabs++;
    }
    free(list);
}

static int valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = unicode_utf8_decode(s + i, n - i, &cp);
        if (cp == UNI_REPLACEMENT && k == 1) return 0;
        if (k == 2 && cp < 0x80) return 0;
        if (k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) return 0;
        if (k == 4 && cp < 0x10000) return 0;
        i += (size_t)k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!n_vocabs) init_vocabs();
    if (size < 1) return 0;
    const tok_vocab *v = &vocabs[data[0] % n_vocabs];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    static int32_t ids[1 << 16];
    static char out[1 << 20];
    for (int mode = 0; mode < 4; mode++) {
        int add = mode & 1, parse = mode >> 1;
        int32_t n = tok_encode(v, text, len, add, parse, ids, 1 << 16);
        if (n == TOK_ENCODE_ERROR) abort();
        if (n < 0) continue;   /* more ids than the buffer: fine */
        if (mode == 0 && n > 0) {
            /* the capacity protocol: one slot short says how many, exact fits */
            if (tok_encode(v, text, len, add, parse, ids, n - 1) != -n) abort();
            if (tok_encode(v, text, len, add, parse, ids, n) != n) abort();
        }
        for (int32_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= v->n_vocab) abort();
        for (int unparse = 0; unparse < 2; unparse++) {
            int32_t k = tok_detokenize(v, ids, n, out, sizeof out, mode & 1, unparse);
            if (k < 0) continue;
            int32_t k2 = tok_detokenize(v, ids, n, out, k > 0 ? k - 1 : 0, mode & 1, unparse);
            if (k > 0 && k2 >= 0) abort();   /* too small must say so */
        }
        tok_stream st;
        tok_stream_init(&st);
        size_t o = 0;
        for (int32_t i = 0; i < n; i++) {
            char piece[TOK_PIECE_MAX];
            int32_t pl = tok_token_to_piece(v, ids[i], piece, sizeof piece, i & 1, parse);
            if (pl < 0) abort();
            int32_t k = tok_stream_push(&st, v, ids[i], parse, out + o, (int32_t)(sizeof out - o - 16));
            if (k < 0) break;
            o += (size_t)k;
        }
        int32_t k = tok_stream_flush(&st, out + o, 16);
        if (k < 0) abort();
        o += (size_t)k;
        if (!valid_utf8((const uint8_t *)out, o)) abort();
    }
    return 0;
}
