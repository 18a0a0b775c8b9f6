/* test_tokenizer_fault.c — allocation failures in the tokenizer (white box).
 *
 * tokenizer.c is compiled into this test with malloc/calloc/realloc routed
 * through a counter: for N = 0, 1, 2, ... the N-th allocation fails, and
 * tok_vocab_load must return TOK_ERR_NOMEM (and leave nothing allocated:
 * `make asan` checks for leaks), tok_encode must return TOK_ENCODE_ERROR;
 * once N is past the last allocation both succeed with the normal answer.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_write.h"
#include "test.h"
#include "tokenizer.h"
#include "unicode.h"

static long fail_at = -1, n_alloc;

static int should_fail(void)
{
    return fail_at >= 0 && n_alloc++ == fail_at;
}
static void *f_malloc(size_t n) { return should_fail() ? NULL : malloc(n); }
static void *f_calloc(size_t n, size_t k) { return should_fail() ? NULL : calloc(n, k); }
static void *f_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n); }

#define malloc f_malloc
#define calloc f_calloc
#define realloc f_realloc
#include "../src/tokenizer.c"
#undef malloc
#undef calloc
#undef realloc

#define SP "\xe2\x96\x81"

static uint8_t *finish(gguf_writer *w, size_t *len)
{
    uint8_t *buf = NULL;
    if (gguf_writer_finish(w, &buf, len) < 0) buf = NULL;
    gguf_writer_free(w);
    return buf;
}

static uint8_t *spm_file(size_t *len)
{
    static char bytes[256][8];
    const char *toks[256 + 12];
    float sc[256 + 12] = { 0 };
    int32_t ty[256 + 12];
    static const char *words[] = { "<unk>", "<s>", "</s>", SP, "a", "b", SP "a", "ab", SP "ab", "<|x|>", "<u>" };
    for (int i = 0; i < 11; i++) {
        toks[i] = words[i];
        sc[i] = -(float)i;
        ty[i] = i == 0 ? 2 : i < 3 || i == 9 ? 3 : i == 10 ? 4 : 1;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], 8, "<0x%02X>", b);
        toks[11 + b] = bytes[b];
        ty[11 + b] = 6;
    }
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, 267);
    gguf_writer_add_arr_f32(&w, "tokenizer.ggml.scores", sc, 267);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", ty, 267);
    return finish(&w, len);
}

static uint8_t *bpe_file(size_t *len, const char *pre)
{
    static const char *toks[] = { "a", "b", "c", "\xc4\xa0", "ab", "abc", "\xc4\xa0" "a", "<|end|>", "<u>", "1", "2", "\xc4\x8a" };
    static const char *merges[] = { "a b", "ab c", "\xc4\xa0 a" };
    int32_t ty[12] = { 1, 1, 1, 1, 1, 1, 1, 3, 4, 1, 1, 1 };
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_add_str(&w, "tokenizer.ggml.pre", pre);
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, 12);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", ty, 12);
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.merges", merges, 3);
    gguf_writer_add_u32(&w, "tokenizer.ggml.eos_token_id", 7);
    return finish(&w, len);
}

static uint8_t *wpm_file(size_t *len)
{
    static const char *toks[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", SP "a", "b", SP "." };
    int32_t ty[7] = { 3, 3, 3, 3, 1, 1, 1 };
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "bert");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, 7);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", ty, 7);
    gguf_writer_add_u32(&w, "tokenizer.ggml.unknown_token_id", 1);
    gguf_writer_add_u32(&w, "tokenizer.ggml.seperator_token_id", 3);
    gguf_writer_add_u32(&w, "tokenizer.ggml.bos_token_id", 2);
    return finish(&w, len);
}

static void run(const char *name, uint8_t *buf, size_t len, const char *text)
{
    gguf_file g;
    if (!T_CHECK(buf && gguf_open_mem(&g, buf, len) == 0, "%s: test file builds", name)) {
        free(buf);
        return;
    }
    /* reference answer */
    tok_vocab v;
    char err[256];
    int32_t want[256], got[256];
    if (!T_CHECK(tok_vocab_load(&v, &g, err, sizeof err) == 0, "%s: loads (%s)", name, err)) goto out;
    int32_t nwant = tok_encode(&v, text, strlen(text), 1, 1, want, 256);
    tok_vocab_free(&v);

    int load_ok = 1, load_n = 0;
    for (long n = 0;; n++) {
        fail_at = n;
        n_alloc = 0;
        int rc = tok_vocab_load(&v, &g, err, sizeof err);
        fail_at = -1;
        if (rc == 0) {
            load_n = (int)n;
            break;
        }
        if (rc != TOK_ERR_NOMEM || !strstr(err, "memory")) load_ok = 0;
    }
    T_CHECK(load_ok && load_n > 3, "%s: load fails cleanly at each of its %d allocations", name, load_n);

    int enc_ok = 1, enc_n = 0;
    for (long n = 0;; n++) {
        fail_at = n;
        n_alloc = 0;
        int32_t k = tok_encode(&v, text, strlen(text), 1, 1, got, 256);
        fail_at = -1;
        if (k != TOK_ENCODE_ERROR) {
            enc_ok &= k == nwant && !memcmp(got, want, (size_t)k * sizeof *got);
            enc_n = (int)n;
            break;
        }
    }
    T_CHECK(enc_ok && enc_n > 2, "%s: encode fails cleanly at each of its %d allocations, then matches", name, enc_n);
    tok_vocab_free(&v);
out:
    gguf_close(&g);
    free(buf);
}

int main(void)
{
    size_t len;
    uint8_t *b = spm_file(&len);
    run("spm", b, len, "ab a<|x|>b <u> z\xe2\x82");
    b = bpe_file(&len, "llama-bpe");
    run("bpe llama3", b, len, "abc a1 2\n<|end|>x<u>");
    b = bpe_file(&len, "deepseek-llm");
    run("bpe deepseek-llm", b, len, "abc a1 2\n<|end|>x<u>  ");
    b = wpm_file(&len);
    run("wpm", b, len, "A b. [CLS] c");
    return t_done();
}
