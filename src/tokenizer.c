/* tokenizer.c — SentencePiece, byte-level BPE and WordPiece, byte-exact with
 * llama.cpp (see tokenizer.h for the contract).
 *
 * Sections, in order:
 *   1. small helpers: hashing, growable scratch, a min-heap
 *   2. vocabulary lookups: text -> id, (left, right) -> merge
 *   3. loading: metadata, tables, special tokens, piece cache
 *   4. special-token partition of the input
 *   5. pre-tokenizers (the regex splits of each BPE vocab, written by hand)
 *   6. the three encoders and tok_encode
 *   7. decoding: pieces, detokenize, the UTF-8-safe stream
 *
 * Where llama.cpp's behaviour is odd we copy the behaviour, not the oddness's
 * cause; each such place says "llama.cpp:" and what it does.
 */
#include "tokenizer.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

/* ====================================================================== */
/* 1. helpers                                                              */
/* ====================================================================== */

static uint64_t hash_bytes(const void *data, size_t n)
{
    /* multiply-xorshift over 8-byte words; quality is plenty for a table
     * whose keys are token texts */
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 32;
    }
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
}

/* Make *p hold at least need elements of size elem (doubling). 0 or -1. */
static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    void **p = pp;
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2) return -1;
        n *= 2;
    }
    if (n > SIZE_MAX / elem) return -1;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int is_ascii_space(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Min-heap of merge candidates. key orders them (smaller first); the rest
 * lets the encoder check the candidate is still current when popped. */
typedef struct heap_item {
    uint64_t key;
    int32_t left, right;   /* symbol indices */
    int32_t a, b, c;       /* SPM: a = size; BPE: a, b = ids, c = merged id */
} heap_item;

typedef struct heap {
    heap_item *v;
    size_t n, cap;
} heap;

static int heap_push(heap *h, const heap_item *it)
{
    if (grow(&h->v, &h->cap, h->n + 1, sizeof *h->v) < 0) return -1;
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h->v[up].key <= it->key) break;
        h->v[i] = h->v[up];
        i = up;
    }
    h->v[i] = *it;
    return 0;
}

static heap_item heap_pop(heap *h)
{
    heap_item top = h->v[0], last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t m = (l + 1 < n && h->v[l + 1].key < h->v[l].key) ? l + 1 : l;
        if (last.key <= h->v[m].key) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (n) h->v[i] = last;
    return top;
}

/* ====================================================================== */
/* 2. lookups                                                              */
/* ====================================================================== */

struct tok_merge {
    uint32_t left, right;  /* UINT32_MAX = empty slot */
    int32_t rank, result;
};

struct tok_special_node {
    int32_t child;         /* first child, -1 none */
    int32_t sibling;       /* next sibling, -1 none */
    int32_t rank;          /* index into v->special of the token ending here, -1 none */
    uint8_t byte;
};

static inline const char *ttext(const tok_vocab *v, int32_t id)
{
    return v->text + v->text_off[id];
}

static inline uint32_t tlen(const tok_vocab *v, int32_t id)
{
    return v->text_off[id + 1] - v->text_off[id];
}

/* Hash slots hold (fingerprint << 32 | id + 1): the upper hash bits reject
 * most non-matching slots without touching the token texts. */
static int32_t lookup_h(const tok_vocab *v, const char *s, size_t n, uint64_t h)
{
    uint32_t fp = (uint32_t)(h >> 32), i = (uint32_t)h & v->hash_mask;
    for (;;) {
        uint64_t slot = v->hash[i];
        if (!slot) return TOK_NULL;
        if ((uint32_t)(slot >> 32) == fp) {
            int32_t id = (int32_t)((uint32_t)slot - 1);
            if (tlen(v, id) == n && !memcmp(ttext(v, id), s, n)) return id;
        }
        i = (i + 1) & v->hash_mask;
    }
}

int32_t tok_lookup(const tok_vocab *v, const char *s, size_t n)
{
    if (!v->hash) return TOK_NULL;
    return lookup_h(v, s, n, hash_bytes(s, n));
}

/* Many lookups at once (load time): prefetch each level of every query
 * before the next level needs it. */
typedef struct lkq {
    const char *s;
    size_t n;
    uint64_t h;
    int32_t id;
} lkq;

static void lookup_many(const tok_vocab *v, lkq *q, int k)
{
    for (int i = 0; i < k; i++) {
        q[i].h = hash_bytes(q[i].s, q[i].n);
        __builtin_prefetch(&v->hash[(uint32_t)q[i].h & v->hash_mask]);
    }
    for (int i = 0; i < k; i++) {
        uint64_t slot = v->hash[(uint32_t)q[i].h & v->hash_mask];
        q[i].id = slot && (uint32_t)(slot >> 32) == (uint32_t)(q[i].h >> 32) ? (int32_t)((uint32_t)slot - 1) : -1;
        if (q[i].id >= 0) __builtin_prefetch(&v->text_off[q[i].id]);
    }
    for (int i = 0; i < k; i++)
        if (q[i].id >= 0) __builtin_prefetch(v->text + v->text_off[q[i].id]);
    for (int i = 0; i < k; i++) q[i].id = lookup_h(v, q[i].s, q[i].n, q[i].h);
}

static inline uint32_t pair_hash(uint32_t l, uint32_t r)
{
    uint64_t x = ((uint64_t)l << 32 | r) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 29) ^ (uint32_t)x;
}

static const struct tok_merge *merge_find(const tok_vocab *v, int32_t l, int32_t r)
{
    uint32_t i = pair_hash((uint32_t)l, (uint32_t)r) & v->merge_mask;
    for (;;) {
        const struct tok_merge *m = &v->merge[i];
        if (m->left == UINT32_MAX) return NULL;
        if (m->left == (uint32_t)l && m->right == (uint32_t)r) return m;
        i = (i + 1) & v->merge_mask;
    }
}

int tok_is_eog(const tok_vocab *v, int32_t id)
{
    int lo = 0, hi = v->n_eog;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v->eog[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return id >= 0 && lo < v->n_eog && v->eog[lo] == id;
}

int tok_attr(const tok_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n_vocab ? v->attr[id] : 0;
}

int tok_is_control(const tok_vocab *v, int32_t id)
{
    return (tok_attr(v, id) & TOK_ATTR_CONTROL) != 0;
}

const char *tok_text(const tok_vocab *v, int32_t id, size_t *len)
{
    if (id < 0 || id >= v->n_vocab) return NULL;
    if (len) *len = tlen(v, id);
    return ttext(v, id);
}

/* ====================================================================== */
/* 3. loading                                                              */
/* ====================================================================== */

/* Pre-tokenizer programs (section 5 maps each to its passes). */
enum pre_kind {
    PRE_DEFAULT, PRE_LLAMA3, PRE_DEEPSEEK_LLM, PRE_DEEPSEEK_CODER, PRE_FALCON,
    PRE_GPT2, PRE_STARCODER, PRE_QWEN2, PRE_QWEN35, PRE_GEMMA4
};

/* tokenizer.ggml.pre values and what llama.cpp sets for each. */
static const struct pre_def {
    const char *name;
    uint8_t kind, clean_spaces, ignore_merges, add_bos, add_sep, no_bos;
} pre_defs[] = {
    { "default", PRE_DEFAULT, 1, 0, 0, 0, 0 },
    { "llama3", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "llama-v3", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "llama-bpe", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "falcon3", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "falcon-h1", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "pixtral", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "midm-2.0", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "lfm2", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "jina-v5-nano", PRE_LLAMA3, 1, 1, 1, 0, 0 },
    { "dbrx", PRE_LLAMA3, 1, 0, 0, 0, 0 },
    { "smaug-bpe", PRE_LLAMA3, 1, 0, 0, 0, 0 },
    { "glm4", PRE_LLAMA3, 1, 0, 0, 0, 1 },
    { "chatglm-bpe", PRE_LLAMA3, 1, 0, 0, 0, 1 },
    { "deepseek-llm", PRE_DEEPSEEK_LLM, 0, 0, 0, 0, 0 },
    { "deepseek-coder", PRE_DEEPSEEK_CODER, 0, 0, 0, 0, 0 },
    { "falcon", PRE_FALCON, 1, 0, 0, 0, 0 },
    { "mpt", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "gpt-2", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "phi-2", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "jina-es", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "jina-de", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "gigachat", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "jina-v2-es", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "jina-v2-de", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "a.x-4.0", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "mellum", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "modern-bert", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "olmo", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "jais", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "exaone4", PRE_GPT2, 1, 0, 0, 0, 0 },
    { "trillion", PRE_GPT2, 0, 0, 0, 0, 0 },
    { "granite-docling", PRE_GPT2, 0, 0, 0, 0, 0 },
    { "jina-v1-en", PRE_GPT2, 1, 0, 0, 1, 0 },
    { "jina-v2-code", PRE_GPT2, 1, 0, 0, 1, 0 },
    { "roberta-bpe", PRE_GPT2, 1, 0, 0, 1, 0 },
    { "starcoder", PRE_STARCODER, 1, 0, 0, 0, 0 },
    { "refact", PRE_STARCODER, 1, 0, 0, 0, 0 },
    { "command-r", PRE_STARCODER, 0, 0, 0, 0, 0 },
    { "smollm", PRE_STARCODER, 0, 0, 0, 0, 0 },
    { "codeshell", PRE_STARCODER, 1, 0, 0, 0, 0 },
    { "exaone", PRE_STARCODER, 1, 0, 0, 0, 0 },
    { "minerva-7b", PRE_STARCODER, 1, 0, 0, 0, 0 },
    { "mellum2", PRE_STARCODER, 1, 0, 0, 0, 0 },
    { "qwen2", PRE_QWEN2, 0, 0, 0, 0, 0 },
    { "deepseek-r1-qwen", PRE_QWEN2, 0, 0, 0, 0, 0 },
    { "kormo", PRE_QWEN2, 0, 0, 0, 0, 0 },
    { "f2llmv2", PRE_QWEN2, 0, 0, 0, 0, 0 },
    { "megrez", PRE_QWEN2, 1, 0, 0, 0, 0 },
    { "stablelm2", PRE_QWEN2, 1, 0, 0, 0, 0 },
    { "hunyuan", PRE_QWEN2, 0, 0, 0, 0, 0 },
    { "grok-2", PRE_QWEN2, 0, 0, 0, 0, 0 },
    { "solar-open", PRE_QWEN2, 0, 0, 0, 0, 0 },
    { "qwen35", PRE_QWEN35, 0, 0, 0, 0, 0 },
    { "gemma4", PRE_GEMMA4, 1, 0, 0, 0, 0 },
    { "granite-embed-multi-311m", PRE_GEMMA4, 1, 0, 0, 0, 0 },
};

/* Token texts that llama.cpp recognises by name (lists in its order; where
 * llama.cpp takes "the first one found" while walking a hash map, we take the
 * first of the list present in the vocab). */
static const char *const eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>", NULL };
static const char *const eom_names[] = { "<|eom_id|>", NULL };
static const char *const fim_pre_names[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
    "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL };
static const char *const fim_suf_names[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>",
    "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL };
static const char *const fim_mid_names[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
    "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL };
static const char *const fim_pad_names[] = { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL };
static const char *const fim_rep_names[] = { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL };
static const char *const fim_sep_names[] = { "<|file_sep|>", NULL };
static const char *const eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
    "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
    "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
    "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL };

static int32_t lookup_cstr(const tok_vocab *v, const char *s)
{
    return tok_lookup(v, s, strlen(s));
}

/* First name of the list present in the vocab: becomes *id (if unset) and
 * is marked CONTROL, as llama.cpp does for "control-looking" tokens. */
static void detect_named(tok_vocab *v, int32_t *id, const char *const *names)
{
    if (*id != TOK_NULL) return;
    for (; *names; names++) {
        int32_t t = lookup_cstr(v, *names);
        if (t != TOK_NULL) {
            *id = t;
            v->attr[t] |= TOK_ATTR_CONTROL;
            return;
        }
    }
}

static int eog_add(int32_t *eog, int *n, int32_t id)
{
    if (id == TOK_NULL) return 0;
    for (int i = 0; i < *n; i++)
        if (eog[i] == id) return 0;
    eog[(*n)++] = id;
    return 1;
}

static void eog_remove(int32_t *eog, int *n, int32_t id)
{
    for (int i = 0; i < *n; i++)
        if (eog[i] == id) {
            eog[i] = eog[--*n];
            return;
        }
}

/* EOG membership while the list is still being built (unsorted). */
static int tok_is_eog_unsorted(const tok_vocab *v, int32_t id)
{
    if (id == TOK_NULL) return 0;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return 1;
    return 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* GPT-2's byte <-> printable code point map: bytes that are printable stay,
 * the others are numbered from U+0100 in byte order. */
static uint32_t gpt2_byte_cp(int b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (uint32_t)b;
    int n = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF))) n++;
    return 256u + (uint32_t)n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* llama.cpp: a byte token "<0xNN>" is read with strtol(text + 3, 2 chars). */
static uint8_t byte_token_value(const char *s, uint32_t n)
{
    int v = 0;
    for (uint32_t i = 3; i < 5 && i < n; i++) {
        int h = hexval(s[i]);
        if (h < 0) break;
        v = v * 16 + h;
    }
    return (uint8_t)v;
}

/* Append the rendering of one token (llama_token_to_piece with special=1)
 * to *out; returns its length or -1 on allocation failure. */
static long piece_render(const tok_vocab *v, int32_t id, const int16_t *cp_byte, char **out, size_t *len, size_t *cap)
{
    const char *t = ttext(v, id);
    uint32_t n = tlen(v, id);
    int a = v->attr[id];
    size_t start = *len;
#define PUT(ptr, cnt) do { if (grow(out, cap, *len + (cnt), 1) < 0) return -1; \
                           memcpy(*out + *len, (ptr), (cnt)); *len += (cnt); } while (0)
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        PUT(t, n);
    } else if (a & TOK_ATTR_NORMAL) {
        if (v->type != TOK_TYPE_BPE || v->escape_ws) {
            /* "▁" (E2 96 81) back to a space */
            for (uint32_t i = 0; i < n; i++) {
                if (i + 2 < n && (uint8_t)t[i] == 0xE2 && (uint8_t)t[i + 1] == 0x96 && (uint8_t)t[i + 2] == 0x81) {
                    PUT(" ", 1);
                    i += 2;
                } else {
                    PUT(t + i, 1);
                }
            }
        } else {
            /* byte-level BPE: every code point names one byte */
            for (uint32_t i = 0; i < n;) {
                uint32_t cp;
                int k = unicode_utf8_decode((const uint8_t *)t + i, n - i, &cp);
                i += (uint32_t)k;
                int byte = cp < 324 ? cp_byte[cp] : -1;
                if (byte >= 0) {
                    char c = (char)byte;
                    PUT(&c, 1);
                } else {
                    /* llama.cpp: "[UNK_BYTE_0x" + hex of the code point's UTF-8 + the whole token + "]" */
                    uint8_t u[4];
                    int m = unicode_utf8_encode(cp, u);
                    char hex[16];
                    PUT("[UNK_BYTE_0x", 12);
                    for (int j = 0; j < m; j++) {
                        snprintf(hex, sizeof hex, "%02x", u[j]);
                        PUT(hex, 2);
                    }
                    PUT(t, n);
                    PUT("]", 1);
                }
            }
        }
    } else if (a & TOK_ATTR_BYTE) {
        char c = (char)byte_token_value(t, n);
        PUT(&c, 1);
    }
#undef PUT
    return (long)(*len - start);
}

static void trie_free(tok_vocab *v)
{
    free(v->trie);
    v->trie = NULL;
    v->n_trie = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Build the special-token list (priority: longer first, then lower id) and
 * the byte trie over their texts. */
static int build_specials(tok_vocab *v)
{
    int n = 0;
    for (int32_t id = 0; id < v->n_vocab; id++)
        if (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) n++;
    v->n_special = n;
    for (int i = 0; i < 256; i++) v->trie_root[i] = -1;
    if (!n) return 0;
    v->special = malloc((size_t)n * sizeof *v->special);
    uint64_t *keys = malloc((size_t)n * sizeof *keys);
    if (!v->special || !keys) {
        free(keys);
        return -1;
    }
    /* llama.cpp sorts by length only (std::sort, unstable); ties by id here */
    n = 0;
    for (int32_t id = 0; id < v->n_vocab; id++)
        if (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            keys[n++] = (uint64_t)(UINT32_MAX - tlen(v, id)) << 32 | (uint32_t)id;
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    for (int r = 0; r < n; r++) v->special[r] = (int32_t)(uint32_t)keys[r];
    free(keys);

    size_t cap = 0;
    for (int r = 0; r < n; r++) {
        const uint8_t *t = (const uint8_t *)ttext(v, v->special[r]);
        uint32_t len = tlen(v, v->special[r]);
        int32_t node = -1;
        for (uint32_t i = 0; i < len; i++) {
            int32_t c;
            if (node < 0) {
                c = v->trie_root[t[i]];
            } else {
                c = v->trie[node].child;
                while (c >= 0 && v->trie[c].byte != t[i]) c = v->trie[c].sibling;
            }
            if (c < 0) {
                if (grow(&v->trie, &cap, (size_t)v->n_trie + 1, sizeof *v->trie) < 0) return -1;
                c = v->n_trie++;
                v->trie[c].child = -1;
                v->trie[c].rank = -1;
                v->trie[c].byte = t[i];
                if (node < 0) {
                    v->trie[c].sibling = -1;
                    v->trie_root[t[i]] = c;
                } else {
                    v->trie[c].sibling = v->trie[node].child;
                    v->trie[node].child = c;
                }
            }
            node = c;
        }
        if (node >= 0 && v->trie[node].rank < 0) v->trie[node].rank = r;
    }
    return 0;
}

static int read_id(const gguf_file *g, const char *key, int32_t *id, int32_t n_vocab)
{
    uint32_t u;
    /* llama.cpp: a default outside the vocab is disabled; a bad key keeps the default */
    if (*id >= n_vocab) *id = TOK_NULL;
    if (gguf_get_u32(g, key, &u) < 0) return 0;
    if (u < (uint32_t)n_vocab) *id = (int32_t)u;
    return 1;
}

static void read_bool(const gguf_file *g, const char *key, int *flag)
{
    int b;
    if (gguf_get_bool(g, key, &b) == 0) *flag = b;
}

void tok_vocab_free(tok_vocab *v)
{
    free(v->text);
    free(v->text_off);
    free(v->score);
    free(v->attr);
    free(v->piece);
    free(v->piece_off);
    free(v->hash);
    free(v->merge);
    free(v->special);
    trie_free(v);
    free(v->eog);
    memset(v, 0, sizeof *v);
}

static int32_t encode_newline(const tok_vocab *v);

int tok_vocab_load(tok_vocab *v, const gguf_file *g, char *err, size_t errcap)
{
    gguf_str *strs = NULL;
    char *cat = NULL;
    int rc = TOK_ERR_NOMEM;
    memset(v, 0, sizeof *v);
    if (err && errcap) err[0] = 0;

    /* --- which tokenizer --- */
    gguf_str model, pre = { "", 0 };
    if (gguf_get_str(g, "tokenizer.ggml.model", &model) < 0) {
        set_err(err, errcap, "tokenizer: no tokenizer.ggml.model string in the file");
        return TOK_ERR_FORMAT;
    }
    if (gguf_get_str(g, "tokenizer.ggml.pre", &pre) < 0) pre = (gguf_str){ "", 0 };
    snprintf(v->model, sizeof v->model, "%.*s", (int)(model.len < 31 ? model.len : 31), model.ptr);
    snprintf(v->pre, sizeof v->pre, "%.*s", (int)(pre.len < 63 ? pre.len : 63), pre.ptr);

    v->escape_ws = 1;
    v->lowercase = 1;
    int32_t *ids[] = { &v->bos, &v->eos, &v->eot, &v->eom, &v->unk, &v->sep, &v->pad, &v->mask,
                       &v->fim_pre, &v->fim_suf, &v->fim_mid, &v->fim_pad, &v->fim_rep, &v->fim_sep };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) *ids[i] = TOK_NULL;
    int no_bos = 0;
    if (gguf_str_eq(model, "llama")) {
        v->type = TOK_TYPE_SPM;
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->pre_kind = PRE_DEFAULT;
        v->add_space_prefix = 1;
        v->add_bos = 1;
    } else if (gguf_str_eq(model, "bert")) {
        v->type = TOK_TYPE_WPM;
        v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask = 103;
        v->pre_kind = PRE_DEFAULT;
        v->clean_spaces = 1;
        v->add_bos = 1;
        v->add_sep = 1;
    } else if (gguf_str_eq(model, "gpt2") || gguf_str_eq(model, "gemma4")) {
        v->type = TOK_TYPE_BPE;
        int gemma4 = gguf_str_eq(model, "gemma4");
        if (!gemma4) v->bos = 11, v->eos = 11;
        if (gemma4) snprintf(v->pre, sizeof v->pre, "gemma4");    /* llama.cpp forces it */
        v->escape_ws = 0;
        v->clean_spaces = 1;
        v->byte_encode = 1;
        const struct pre_def *d = NULL;
        const char *name = v->pre[0] ? v->pre : "default";
        for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0]; i++)
            if (!strcmp(pre_defs[i].name, name)) d = &pre_defs[i];
        if (!d || (pre.len > 63 && !gemma4)) {
            set_err(err, errcap, "tokenizer: unsupported pre-tokenizer '%s'", v->pre);
            return TOK_ERR_UNSUPPORTED;
        }
        v->pre_kind = d->kind;
        v->clean_spaces = d->clean_spaces;
        v->ignore_merges = d->ignore_merges;
        v->add_bos = d->add_bos;
        v->add_sep = d->add_sep;
        no_bos = d->no_bos;
        if (d->kind == PRE_GEMMA4) {
            v->escape_ws = 1;
            v->byte_encode = 0;
        }
    } else {
        set_err(err, errcap, "tokenizer: unsupported tokenizer model '%s'", v->model);
        return TOK_ERR_UNSUPPORTED;
    }
    read_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
    read_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &v->remove_extra_ws);

    /* --- token texts, scores, types --- */
    const gguf_kv *tk, *sk = NULL, *tyk = NULL;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_VT_STRING, &tk) < 0) {
        set_err(err, errcap, "tokenizer: tokenizer.ggml.tokens is missing or not a string array");
        return TOK_ERR_FORMAT;
    }
    if (tk->v.arr.n == 0 || tk->v.arr.n > (uint64_t)INT32_MAX / 2) {
        set_err(err, errcap, "tokenizer: bad token count %llu", (unsigned long long)tk->v.arr.n);
        return TOK_ERR_FORMAT;
    }
    int32_t n = (int32_t)tk->v.arr.n;
    v->n_vocab = n;
    if (gguf_find(g, "tokenizer.ggml.scores")) {
        if (gguf_get_arr(g, "tokenizer.ggml.scores", -1, &sk) < 0 ||
            (sk->v.arr.type != GGUF_VT_F32 && sk->v.arr.type != GGUF_VT_I32) || sk->v.arr.n < (uint64_t)n) {
            set_err(err, errcap, "tokenizer: tokenizer.ggml.scores is not an f32/i32 array of %d", n);
            return TOK_ERR_FORMAT;
        }
    }
    if (gguf_find(g, "tokenizer.ggml.token_type")) {
        if (gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &tyk) < 0 || tyk->v.arr.n < (uint64_t)n ||
            tyk->v.arr.type == GGUF_VT_F32 || tyk->v.arr.type == GGUF_VT_F64 || tyk->v.arr.type == GGUF_VT_STRING) {
            set_err(err, errcap, "tokenizer: tokenizer.ggml.token_type is not an integer array of %d", n);
            return TOK_ERR_FORMAT;
        }
    }

    strs = malloc((size_t)n * sizeof *strs);
    v->text_off = malloc(((size_t)n + 1) * sizeof *v->text_off);
    v->score = malloc((size_t)n * sizeof *v->score);
    v->attr = malloc((size_t)n * sizeof *v->attr);
    if (!strs || !v->text_off || !v->score || !v->attr) goto nomem;
    gguf_arr_strings(tk, strs, (uint64_t)n);
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += strs[i].len ? strs[i].len : 24;
    if (total >= UINT32_MAX) {
        set_err(err, errcap, "tokenizer: token texts too large (%llu bytes)", (unsigned long long)total);
        rc = TOK_ERR_FORMAT;
        goto fail;
    }
    for (int32_t i = 0; i < n; i++)
        if (strs[i].len > TOK_PIECE_MAX) {
            set_err(err, errcap, "tokenizer: token %d is %llu bytes long (limit %d)", (int)i,
                    (unsigned long long)strs[i].len, TOK_PIECE_MAX);
            rc = TOK_ERR_FORMAT;
            goto fail;
        }
    v->text = malloc(total ? total : 1);
    if (!v->text) goto nomem;
    uint32_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        v->text_off[i] = off;
        if (strs[i].len == 0) {
            /* llama.cpp renames empty tokens so they stay unique */
            off += (uint32_t)snprintf(v->text + off, 24, "[EMPTY_%d]", (int)i);
        } else {
            memcpy(v->text + off, strs[i].ptr, strs[i].len);
            off += (uint32_t)strs[i].len;
        }
        if ((int)(off - v->text_off[i]) > v->max_token_len) v->max_token_len = (int)(off - v->text_off[i]);
        float s = 0.0f;
        if (sk) s = sk->v.arr.type == GGUF_VT_F32 ? gguf_arr_f32(sk, (uint64_t)i) : (float)gguf_arr_int(sk, (uint64_t)i);
        v->score[i] = s == 0.0f ? 0.0f : s;          /* no -0.0: scores are compared by bits */
        int a = TOK_ATTR_NORMAL;
        if (tyk) {
            switch (gguf_arr_int(tyk, (uint64_t)i)) {
            case 1: a = TOK_ATTR_NORMAL; break;
            case 2: a = TOK_ATTR_UNKNOWN; break;
            case 3: a = TOK_ATTR_CONTROL; break;
            case 4: a = TOK_ATTR_USER_DEFINED; break;
            case 5: a = TOK_ATTR_UNUSED; break;
            case 6: a = TOK_ATTR_BYTE; break;
            default: a = TOK_ATTR_UNDEFINED; break;
            }
        }
        v->attr[i] = (uint16_t)a;
    }
    v->text_off[n] = off;
    free(strs);
    strs = NULL;

    /* --- text -> id hash --- */
    uint32_t hcap = 16;
    while (hcap < (uint32_t)n * 2u) hcap *= 2;
    v->hash = calloc(hcap, sizeof *v->hash);
    if (!v->hash) goto nomem;
    v->hash_mask = hcap - 1;
    for (int32_t i0 = 0; i0 < n; i0 += 32) {
        uint64_t hb[32];
        int32_t i1 = i0 + 32 < n ? i0 + 32 : n;
        for (int32_t i = i0; i < i1; i++) {
            hb[i - i0] = hash_bytes(ttext(v, i), tlen(v, i));
            __builtin_prefetch(&v->hash[(uint32_t)hb[i - i0] & v->hash_mask]);
        }
        for (int32_t i = i0; i < i1; i++) {
            uint64_t hh = hb[i - i0];
            uint32_t h = (uint32_t)hh & v->hash_mask;
            for (;;) {
                uint64_t slot = v->hash[h];
                if (!slot) break;
                int32_t o = (int32_t)((uint32_t)slot - 1);
                if ((uint32_t)(slot >> 32) == (uint32_t)(hh >> 32) && tlen(v, o) == tlen(v, i) &&
                    !memcmp(ttext(v, o), ttext(v, i), tlen(v, i))) {
                    set_err(err, errcap, "tokenizer: duplicate token '%.*s' (ids %d and %d)",
                            (int)(tlen(v, i) > 40 ? 40 : tlen(v, i)), ttext(v, i), (int)o, (int)i);
                    rc = TOK_ERR_FORMAT;
                    goto fail;
                }
                h = (h + 1) & v->hash_mask;
            }
            v->hash[h] = (hh >> 32 << 32) | ((uint64_t)i + 1);
        }
    }

    /* --- SPM: may the encoder merge word by word? (no token has a "▁"
     * after another character) --- */
    if (v->type == TOK_TYPE_SPM) {
        v->spm_words = 1;
        for (int32_t i = 0; i < n && v->spm_words; i++) {
            const char *t = ttext(v, i);
            uint32_t len = tlen(v, i), p = 0;
            while (p + 3 <= len && !memcmp(t + p, "\xe2\x96\x81", 3)) p += 3;
            if (len > p && memmem(t + p, len - p, "\xe2\x96\x81", 3)) v->spm_words = 0;
        }
    }

    /* --- byte tables --- */
    for (int b = 0; b < 256; b++) {
        char one = (char)b;
        v->char1_tok[b] = tok_lookup(v, &one, 1);
        if (v->type == TOK_TYPE_BPE && v->byte_encode) {
            uint8_t u[4];
            int k = unicode_utf8_encode(gpt2_byte_cp(b), u);
            v->byte_utf8[b][0] = (uint8_t)k;
            memcpy(&v->byte_utf8[b][1], u, (size_t)k);
            v->byte_tok[b] = tok_lookup(v, (const char *)u, (size_t)k);
        } else {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            v->byte_tok[b] = tok_lookup(v, hex, 6);
            /* llama.cpp's SPM byte_to_token falls back to the one-byte token */
            if (v->byte_tok[b] == TOK_NULL && v->type == TOK_TYPE_SPM) v->byte_tok[b] = v->char1_tok[b];
        }
    }

    /* --- merges --- */
    if (v->type == TOK_TYPE_BPE) {
        const gguf_kv *mk;
        if (gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_VT_STRING, &mk) < 0) {
            set_err(err, errcap, "tokenizer: BPE vocab without a tokenizer.ggml.merges string array");
            rc = TOK_ERR_FORMAT;
            goto fail;
        }
        uint64_t nm = mk->v.arr.n;
        if (nm > (uint64_t)INT32_MAX / 4) {
            set_err(err, errcap, "tokenizer: too many merges (%llu)", (unsigned long long)nm);
            rc = TOK_ERR_FORMAT;
            goto fail;
        }
        uint32_t mcap = 16;
        while (mcap < nm * 2) mcap *= 2;
        v->merge = malloc((size_t)mcap * sizeof *v->merge);
        strs = malloc((nm ? nm : 1) * sizeof *strs);
        if (!v->merge || !strs) goto nomem;
        for (uint32_t i = 0; i < mcap; i++) v->merge[i].left = UINT32_MAX;
        v->merge_mask = mcap - 1;
        gguf_arr_strings(mk, strs, nm);
        size_t catcap = 0;
        /* In batches, so the table lookups' cache misses overlap (prefetch). */
        enum { MB = 32 };
        lkq q[3 * MB];
        uint64_t rank[MB];
        for (uint64_t r0 = 0; r0 < nm; r0 += MB) {
            int nb = 0;
            size_t catlen = 0;
            for (uint64_t r = r0; r < nm && r < r0 + MB; r++) {
                const char *ms = strs[r].ptr;
                size_t len = (size_t)strs[r].len;
                /* llama.cpp: split at the first space after the first byte */
                const char *sp = len > 1 ? memchr(ms + 1, ' ', len - 1) : NULL;
                if (!sp) continue;
                size_t ll = (size_t)(sp - ms), rl = len - ll - 1;
                if (grow(&cat, &catcap, catlen + ll + rl, 1) < 0) goto nomem;
                memcpy(cat + catlen, ms, ll);
                memcpy(cat + catlen + ll, sp + 1, rl);
                q[3 * nb] = (lkq){ ms, ll, 0, 0 };
                q[3 * nb + 1] = (lkq){ sp + 1, rl, 0, 0 };
                q[3 * nb + 2] = (lkq){ NULL, ll + rl, catlen, 0 };   /* offset into cat for now */
                catlen += ll + rl;
                rank[nb++] = r;
            }
            for (int i = 0; i < nb; i++) q[3 * i + 2].s = cat + q[3 * i + 2].h;
            lookup_many(v, q, 3 * nb);
            uint32_t slot[MB];
            for (int i = 0; i < nb; i++) {
                slot[i] = pair_hash((uint32_t)q[3 * i].id, (uint32_t)q[3 * i + 1].id) & v->merge_mask;
                __builtin_prefetch(&v->merge[slot[i]]);
            }
            for (int i = 0; i < nb; i++) {
                int32_t l = q[3 * i].id, rr = q[3 * i + 1].id, res = q[3 * i + 2].id;
                /* parts that are not tokens can never meet as symbols; a result
                 * that is not a token: TODO(rare, HF forbids it) */
                if (l == TOK_NULL || rr == TOK_NULL || res == TOK_NULL) continue;
                uint32_t h = slot[i];
                while (v->merge[h].left != UINT32_MAX &&
                       !(v->merge[h].left == (uint32_t)l && v->merge[h].right == (uint32_t)rr))
                    h = (h + 1) & v->merge_mask;
                if (v->merge[h].left != UINT32_MAX) continue;       /* first (lowest) rank wins */
                v->merge[h] = (struct tok_merge){ (uint32_t)l, (uint32_t)rr, (int32_t)rank[i], res };
            }
        }
        free(strs);
        strs = NULL;
        free(cat);
        cat = NULL;
    }

    /* --- special ids and flags from the keys --- */
    static const char *const id_keys[] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id",
        "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id",
        "tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id" };
    /* the newline id is derived before the keys are read (llama.cpp order) */
    if (v->type == TOK_TYPE_SPM) v->nl = v->byte_tok['\n'] != TOK_NULL ? v->byte_tok['\n'] : v->pad;
    else if (v->type == TOK_TYPE_WPM) v->nl = v->pad;
    for (size_t i = 0; i < sizeof id_keys / sizeof id_keys[0]; i++) read_id(g, id_keys[i], ids[i], n);
    read_id(g, "tokenizer.ggml.prefix_token_id", &v->fim_pre, n);
    read_id(g, "tokenizer.ggml.suffix_token_id", &v->fim_suf, n);
    read_id(g, "tokenizer.ggml.middle_token_id", &v->fim_mid, n);
    if (no_bos) v->bos = TOK_NULL;
    read_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos);
    read_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos);
    read_bool(g, "tokenizer.ggml.add_sep_token", &v->add_sep);
    if (v->pre_kind == PRE_GEMMA4 && v->type == TOK_TYPE_BPE) v->add_bos = 1;   /* llama.cpp: forced for Gemma 4 */
    if ((v->add_bos && v->bos == TOK_NULL) || (v->add_eos && v->eos == TOK_NULL) ||
        (v->add_sep && v->sep == TOK_NULL)) {
        set_err(err, errcap, "tokenizer: add_%s_token is set but the vocab has no such token",
                v->add_bos && v->bos == TOK_NULL ? "bos" : v->add_eos && v->eos == TOK_NULL ? "eos" : "sep");
        rc = TOK_ERR_FORMAT;
        goto fail;
    }
    read_bool(g, "tokenizer.ggml.normalizer.lowercase", &v->lowercase);
    v->strip_accents = v->lowercase;
    read_bool(g, "tokenizer.ggml.normalizer.strip_accents", &v->strip_accents);

    /* --- tokens recognised by name: EOT, EOM, FIM, EOG --- */
    detect_named(v, &v->eot, eot_names);
    detect_named(v, &v->eom, eom_names);
    detect_named(v, &v->fim_pre, fim_pre_names);
    detect_named(v, &v->fim_suf, fim_suf_names);
    detect_named(v, &v->fim_mid, fim_mid_names);
    detect_named(v, &v->fim_pad, fim_pad_names);
    detect_named(v, &v->fim_rep, fim_rep_names);
    detect_named(v, &v->fim_sep, fim_sep_names);
    for (int32_t i = 0; i < n; i++)   /* control tokens named "unused" are unused */
        if ((v->attr[i] & TOK_ATTR_CONTROL) && memmem(ttext(v, i), tlen(v, i), "unused", 6))
            v->attr[i] |= TOK_ATTR_UNUSED;

    size_t n_eog_names = sizeof eog_names / sizeof eog_names[0];
    v->eog = malloc((n_eog_names + 8) * sizeof *v->eog);
    if (!v->eog) goto nomem;
    eog_add(v->eog, &v->n_eog, v->fim_pad);
    eog_add(v->eog, &v->n_eog, v->fim_rep);
    eog_add(v->eog, &v->n_eog, v->fim_sep);
    for (const char *const *nm = eog_names; *nm; nm++) {
        int32_t t = lookup_cstr(v, *nm);
        if (t == TOK_NULL) continue;
        eog_add(v->eog, &v->n_eog, t);
        v->attr[t] |= TOK_ATTR_CONTROL;
    }
    /* llama.cpp: gpt-oss's channel tokens are always rendered */
    static const char *const ud_names[] = { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>" };
    for (size_t i = 0; i < 4; i++) {
        int32_t t = lookup_cstr(v, ud_names[i]);
        if (t != TOK_NULL) v->attr[t] = TOK_ATTR_USER_DEFINED;
    }
    eog_add(v->eog, &v->n_eog, v->eos);
    eog_add(v->eog, &v->n_eog, v->eot);
    eog_add(v->eog, &v->n_eog, v->eom);
    {
        /* llama.cpp: with <|return|>+<|call|> (or <|calls|>+<|flush|>), <|end|> is not EOG */
        int32_t t_ret = lookup_cstr(v, "<|return|>"), t_call = lookup_cstr(v, "<|call|>");
        int32_t t_calls = lookup_cstr(v, "<|calls|>"), t_flush = lookup_cstr(v, "<|flush|>");
        int32_t t_end = lookup_cstr(v, "<|end|>");
        int has_ret = tok_is_eog_unsorted(v, t_ret), has_call = tok_is_eog_unsorted(v, t_call) || tok_is_eog_unsorted(v, t_calls);
        int has_flush = tok_is_eog_unsorted(v, t_flush), has_end = tok_is_eog_unsorted(v, t_end);
        if ((has_ret && has_call && has_end) || (has_call && has_flush && has_end)) {
            eog_remove(v->eog, &v->n_eog, t_end);
            v->attr[t_end] = TOK_ATTR_USER_DEFINED;
        }
        /* llama.cpp: with <|tool_response> (Gemma 4), </s> is plain text */
        int32_t t_tr = lookup_cstr(v, "<|tool_response>"), t_s = lookup_cstr(v, "</s>");
        if (tok_is_eog_unsorted(v, t_tr) && tok_is_eog_unsorted(v, t_s)) {
            eog_remove(v->eog, &v->n_eog, t_s);
            v->attr[t_s] = TOK_ATTR_NORMAL;
        }
    }
    qsort(v->eog, (size_t)v->n_eog, sizeof *v->eog, cmp_i32);

    /* --- special tokens (partition order + trie), piece cache --- */
    if (build_specials(v) < 0) goto nomem;
    int16_t cp_byte[324];               /* GPT-2 code point -> byte, -1 if none */
    for (int i = 0; i < 324; i++) cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_byte[gpt2_byte_cp(b)] = (int16_t)b;
    size_t pcap = 0, plen = 0;
    v->piece_off = malloc(((size_t)n + 1) * sizeof *v->piece_off);
    if (!v->piece_off) goto nomem;
    for (int32_t i = 0; i < n; i++) {
        v->piece_off[i] = (uint32_t)plen;
        long k = piece_render(v, i, cp_byte, &v->piece, &plen, &pcap);
        if (k < 0) goto nomem;
        /* Only a "[UNK_BYTE_0x..]" rendering of a strange token can exceed
         * the limit (token texts are checked below it); cut it there. */
        if (k > TOK_PIECE_MAX) plen -= (size_t)(k - TOK_PIECE_MAX);
        if (plen >= UINT32_MAX) {
            set_err(err, errcap, "tokenizer: rendered pieces too large (%zu bytes)", plen);
            rc = TOK_ERR_FORMAT;
            goto fail;
        }
    }
    v->piece_off[n] = (uint32_t)plen;

    /* --- per-model attributes (llama.cpp keys them on names) --- */
    {
        char name[128] = "";
        gguf_str gn, arch = { "", 0 };
        if (gguf_get_str(g, "general.name", &gn) == 0) {
            size_t k = gn.len < sizeof name - 1 ? gn.len : sizeof name - 1;
            for (size_t i = 0; i < k; i++) {
                char c = gn.ptr[i];
                name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            }
            name[k] = 0;
        }
        gguf_get_str(g, "general.architecture", &arch);
        char archs[64];
        snprintf(archs, sizeof archs, "%.*s", (int)(arch.len < 63 ? arch.len : 63), arch.ptr);
        if (strstr(v->pre, "jina-v2-de") || strstr(v->pre, "jina-v2-es") || strstr(v->pre, "jina-v2-code") ||
            strstr(archs, "nomic-bert-moe") || strstr(archs, "jina-bert-v3")) {
            int32_t t = lookup_cstr(v, "<mask>");
            if (t != TOK_NULL) v->attr[t] |= TOK_ATTR_LSTRIP;
        } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
            for (int r = 0; r < v->n_special; r++) v->attr[v->special[r]] |= TOK_ATTR_RSTRIP;
            int32_t t = lookup_cstr(v, "</s>");
            if (t != TOK_NULL) v->attr[t] |= TOK_ATTR_RSTRIP;
            static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
            for (int i = 0; i < 3; i++) {
                t = lookup_cstr(v, keep[i]);
                if (t != TOK_NULL) v->attr[t] &= (uint16_t)~TOK_ATTR_RSTRIP;
            }
        } else if (strstr(name, "modern-bert")) {
            int32_t t = lookup_cstr(v, "[MASK]");
            if (t != TOK_NULL) v->attr[t] |= TOK_ATTR_LSTRIP;
        }
    }

    if (v->type == TOK_TYPE_BPE) {
        int32_t nl = encode_newline(v);
        if (nl == INT32_MIN) goto nomem;
        v->nl = nl != TOK_NULL ? nl : v->pad;
    }
    return 0;

nomem:
    set_err(err, errcap, "tokenizer: out of memory loading a %d-token vocab", (int)v->n_vocab);
    rc = TOK_ERR_NOMEM;
fail:
    free(strs);
    free(cat);
    tok_vocab_free(v);
    return rc;
}

/* ====================================================================== */
/* 4. special-token partition                                              */
/* ====================================================================== */

/* One piece of the input: raw text [off, off + len) or a special token. */
typedef struct frag {
    uint32_t off, len;
    int32_t id;            /* TOK_NULL for text */
} frag;

typedef struct cand {
    int32_t rank;          /* index into v->special */
    uint32_t pos;
} cand;

/* Per-call working memory of tok_encode (grown on demand, freed at the end). */
typedef struct enc {
    const tok_vocab *v;
    int32_t *out;
    size_t n_out, cap_out;
    frag *fr;
    size_t n_fr, cap_fr;
    cand *cd;
    size_t n_cd, cap_cd;
    uint8_t *buf;          /* transformed fragment text */
    size_t cap_buf;
    uint8_t *wbuf;         /* one word's bytes */
    size_t cap_wbuf;
    uint32_t *cps;
    uint16_t *fl;
    size_t cap_cps, cap_fl;
    uint32_t *seg, *seg2;
    size_t cap_seg, cap_seg2;
    struct sym *sym;
    size_t cap_sym;
    heap hp;
    int nomem;
} enc;

static int emit(enc *e, int32_t id)
{
    if (grow(&e->out, &e->cap_out, e->n_out + 1, sizeof *e->out) < 0) {
        e->nomem = 1;
        return -1;
    }
    e->out[e->n_out++] = id;
    return 0;
}

static int frag_add(enc *e, uint32_t off, uint32_t len, int32_t id)
{
    if (grow(&e->fr, &e->cap_fr, e->n_fr + 1, sizeof *e->fr) < 0) return -1;
    e->fr[e->n_fr++] = (frag){ off, len, id };
    return 0;
}

static int cmp_frag_off(const void *a, const void *b)
{
    const frag *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* Split s[0..n-1] into text and special-token fragments, as llama.cpp's
 * tokenizer_st_partition: special tokens are taken in priority order (longest
 * first); each one claims every leftmost, non-overlapping occurrence that
 * lies wholly in text not yet claimed, and may eat adjacent whitespace
 * (LSTRIP/RSTRIP). Control and unknown tokens only count when parse_special.
 *
 * Implementation: one trie walk per position lists all occurrences; they are
 * then processed by (rank, position). An occurrence is free iff both its end
 * bytes are unclaimed: every claimed block holds a token at least as long as
 * the current one, so it cannot hide strictly inside. */
static int partition(enc *e, const uint8_t *s, size_t n, int parse_special)
{
    const tok_vocab *v = e->v;
    e->n_fr = 0;
    e->n_cd = 0;
    if (v->n_special) {
        for (size_t p = 0; p < n; p++) {
            int32_t node = v->trie_root[s[p]];
            size_t q = p;
            while (node >= 0) {
                int32_t r = v->trie[node].rank;
                if (r >= 0 && (parse_special || !(v->attr[v->special[r]] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))) {
                    if (grow(&e->cd, &e->cap_cd, e->n_cd + 1, sizeof *e->cd) < 0) return -1;
                    e->cd[e->n_cd++] = (cand){ r, (uint32_t)p };
                }
                if (++q >= n) break;
                node = v->trie[node].child;
                while (node >= 0 && v->trie[node].byte != s[q]) node = v->trie[node].sibling;
            }
        }
    }
    if (e->n_cd == 0) return n ? frag_add(e, 0, (uint32_t)n, TOK_NULL) : 0;

    /* stable counting sort of the occurrences by rank */
    size_t *count = calloc((size_t)v->n_special + 1, sizeof *count);
    cand *sorted = malloc(e->n_cd * sizeof *sorted);
    uint8_t *used = calloc(n, 1);
    if (!count || !sorted || !used) goto nomem;
    for (size_t i = 0; i < e->n_cd; i++) count[e->cd[i].rank + 1]++;
    for (int r = 0; r < v->n_special; r++) count[r + 1] += count[r];
    for (size_t i = 0; i < e->n_cd; i++) sorted[count[e->cd[i].rank]++] = e->cd[i];

    size_t n_tok = 0;
    for (size_t i = 0; i < e->n_cd; i++) {
        int32_t id = v->special[sorted[i].rank];
        size_t p = sorted[i].pos, len = tlen(v, id);
        if (used[p] || used[p + len - 1]) continue;
        memset(used + p, 1, len);
        if (v->attr[id] & TOK_ATTR_LSTRIP)
            for (size_t q = p; q > 0 && !used[q - 1] && is_ascii_space(s[q - 1]); q--) used[q - 1] = 1;
        if (v->attr[id] & TOK_ATTR_RSTRIP)
            for (size_t q = p + len; q < n && !used[q] && is_ascii_space(s[q]); q++) used[q] = 1;
        if (frag_add(e, (uint32_t)p, (uint32_t)len, id) < 0) goto nomem;
        n_tok++;
    }
    qsort(e->fr, n_tok, sizeof *e->fr, cmp_frag_off);

    /* interleave: text runs are the maximal unclaimed runs between tokens */
    size_t cur = 0;
    for (size_t t = 0; t < n_tok; t++) {
        size_t end = e->fr[t].off;
        for (size_t p = cur; p < end;) {
            if (used[p]) { p++; continue; }
            size_t q = p;
            while (q < end && !used[q]) q++;
            if (frag_add(e, (uint32_t)p, (uint32_t)(q - p), TOK_NULL) < 0) goto nomem;
            p = q;
        }
        if (frag_add(e, e->fr[t].off, e->fr[t].len, e->fr[t].id) < 0) goto nomem;
        cur = end + e->fr[t].len;
    }
    for (size_t p = cur; p < n;) {
        if (used[p]) { p++; continue; }
        size_t q = p;
        while (q < n && !used[q]) q++;
        if (frag_add(e, (uint32_t)p, (uint32_t)(q - p), TOK_NULL) < 0) goto nomem;
        p = q;
    }
    /* the sorted token list sits in fr[0..n_tok-1]; the ordered list after it */
    memmove(e->fr, e->fr + n_tok, (e->n_fr - n_tok) * sizeof *e->fr);
    e->n_fr -= n_tok;
    free(count);
    free(sorted);
    free(used);
    return 0;
nomem:
    free(count);
    free(sorted);
    free(used);
    return -1;
}

/* ====================================================================== */
/* 5. pre-tokenizers                                                       */
/* ====================================================================== */

/* Each pass splits one segment [a, b) of code points further and writes the
 * ends of the pieces (ascending, the last one b) to out; returns how many.
 * Passes run one after the other over all segments, as llama.cpp applies its
 * list of regexes. The hand-written passes mirror llama.cpp's own hand-written
 * splitters for gpt2/llama3/qwen2/qwen35 (including how their lookahead treats
 * a segment's end); the others implement the regexes it runs through
 * std::regex, where \s is White_Space, \p{L} etc. are the category flags. */
typedef struct pctx {
    const uint32_t *cp;
    const uint16_t *fl;
} pctx;

typedef size_t (*pass_fn)(const pctx *c, size_t a, size_t b, uint32_t *out);

#define NOCP 0xFFFFFFFFu
#define PF(i) ((i) < b ? c->fl[i] : 0u)        /* flags, 0 outside the segment */
#define PC(i) ((i) < b ? c->cp[i] : NOCP)
#define PIECE(end) do { size_t e_ = (end); if (e_ > prev) { out[k++] = (uint32_t)e_; prev = e_; } } while (0)

/* 's|'t|'re|'ve|'m|'ll|'d (fold: case-insensitive); length matched or 0 */
static size_t contraction(const pctx *c, size_t pos, size_t b, int fold)
{
    if (c->cp[pos] != '\'' || pos + 1 >= b) return 0;
    uint32_t n1 = c->cp[pos + 1];
    if (fold) n1 = unicode_tolower(n1);
    if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') return 2;
    if (pos + 2 >= b) return 0;
    uint32_t n2 = c->cp[pos + 2];
    if (fold) n2 = unicode_tolower(n2);
    if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) return 3;
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t pass_gpt2(const pctx *c, size_t a, size_t b, uint32_t *out)
{
    size_t k = 0, prev = a, pos = a;
    while (pos < b) {
        uint32_t cp = c->cp[pos];
        unsigned f = c->fl[pos];
        size_t m = contraction(c, pos, b, 0);
        if (m) {
            pos += m;
            PIECE(pos);
            continue;
        }
        unsigned f2 = cp == ' ' ? PF(pos + 1) : f;
        if (f2 & (UNI_LETTER | UNI_NUMBER)) {
            unsigned cls = f2 & UNI_LETTER ? UNI_LETTER : UNI_NUMBER;
            pos += cp == ' ';
            while (PF(pos) & cls) pos++;
            PIECE(pos);
            continue;
        }
        if (!(f2 & (UNI_WHITESPACE | UNI_LETTER | UNI_NUMBER)) && f2) {
            pos += cp == ' ';
            while (!(PF(pos) & (UNI_WHITESPACE | UNI_LETTER | UNI_NUMBER)) && PF(pos)) pos++;
            PIECE(pos);
            continue;
        }
        size_t nws = 0;
        while (PF(pos + nws) & UNI_WHITESPACE) nws++;
        if (nws > 1 && pos + nws < b) {          /* \s+(?!\S): leave the last one to the next word */
            pos += nws - 1;
            PIECE(pos);
            continue;
        }
        pos += nws ? nws : 1;                     /* \s+, or a lone unmatched code point */
        PIECE(pos);
    }
    return k;
}

/* Llama-3 / Qwen2 / Qwen3.5 family:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?L+|\p{N}{1,D}| ?[^\s L \p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with L = \p{L} (Qwen3.5: [\p{L}\p{M}]) and D = 3 (Qwen: 1). */
static size_t pass_l3(const pctx *c, size_t a, size_t b, uint32_t *out, unsigned letter, size_t max_digits)
{
    size_t k = 0, prev = a, pos = a;
    while (pos < b) {
        uint32_t cp = c->cp[pos];
        unsigned f = c->fl[pos];
        size_t m = contraction(c, pos, b, 1);
        if (m) {
            pos += m;
            PIECE(pos);
            continue;
        }
        if (!(cp == '\r' || cp == '\n' || (f & UNI_NUMBER)) && ((f & letter) || (PF(pos + 1) & letter))) {
            pos++;
            while (PF(pos) & letter) pos++;
            PIECE(pos);
            continue;
        }
        if (f & UNI_NUMBER) {
            size_t ini = pos;
            while (PF(pos) & UNI_NUMBER) {
                if (++pos - ini >= max_digits) {
                    PIECE(pos);
                    ini = pos;
                }
            }
            PIECE(pos);
            continue;
        }
        unsigned f2 = cp == ' ' ? PF(pos + 1) : f;
        unsigned stop = UNI_WHITESPACE | letter | UNI_NUMBER;
        if (!(f2 & stop) && f) {
            pos += cp == ' ';
            while (!(PF(pos) & stop) && PF(pos)) pos++;
            while (PC(pos) == '\r' || PC(pos) == '\n') pos++;
            PIECE(pos);
            continue;
        }
        size_t nws = 0, last_nl = 0;
        while (PF(pos + nws) & UNI_WHITESPACE) {
            uint32_t w = c->cp[pos + nws];
            if (w == '\r' || w == '\n') last_nl = pos + nws + 1;
            nws++;
        }
        if (last_nl) {                            /* \s*[\r\n]+ */
            pos = last_nl;
            PIECE(pos);
            continue;
        }
        if (nws > 1 && pos + nws < b) {
            pos += nws - 1;
            PIECE(pos);
            continue;
        }
        pos += nws ? nws : 1;
        PIECE(pos);
    }
    return k;
}

static size_t pass_llama3(const pctx *c, size_t a, size_t b, uint32_t *out) { return pass_l3(c, a, b, out, UNI_LETTER, 3); }
static size_t pass_qwen2(const pctx *c, size_t a, size_t b, uint32_t *out) { return pass_l3(c, a, b, out, UNI_LETTER, 1); }
static size_t pass_qwen35(const pctx *c, size_t a, size_t b, uint32_t *out) { return pass_l3(c, a, b, out, UNI_LETTER | UNI_MARK, 1); }

/* Gemma 4: [^\n]+|[\n]+ */
static size_t pass_newlines(const pctx *c, size_t a, size_t b, uint32_t *out)
{
    size_t k = 0;
    for (size_t pos = a; pos < b;) {
        int nl = c->cp[pos] == '\n';
        while (pos < b && (c->cp[pos] == '\n') == nl) pos++;
        out[k++] = (uint32_t)pos;
    }
    return k;
}

/* \s+$ : the segment's trailing whitespace, if any, becomes its own piece. */
static size_t pass_trailing_ws(const pctx *c, size_t a, size_t b, uint32_t *out)
{
    size_t k = 0, t = b;
    while (t > a && (c->fl[t - 1] & UNI_WHITESPACE)) t--;
    if (t > a && t < b) out[k++] = (uint32_t)t;
    out[k++] = (uint32_t)b;
    return k;
}

/* Regex passes: a matcher anchored at p returns the match end (> p) or 0;
 * the driver finds successive leftmost matches, keeping the gaps as pieces
 * (std::regex_iterator semantics, no empty matches in our patterns). */
typedef size_t (*match_fn)(const pctx *c, size_t p, size_t b);

static size_t split_matches(const pctx *c, size_t a, size_t b, uint32_t *out, match_fn m)
{
    size_t k = 0, prev = a;
    for (size_t p = a; p < b;) {
        size_t e = m(c, p, b);
        if (!e) {
            p++;
            continue;
        }
        if (p > prev) out[k++] = (uint32_t)p;
        out[k++] = (uint32_t)e;
        prev = p = e;
    }
    if (prev < b) out[k++] = (uint32_t)b;
    return k;
}

typedef struct cp_range { uint32_t lo, hi; } cp_range;

static int in_ranges(uint32_t cp, const cp_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].lo && cp <= r[i].hi) return 1;
    return 0;
}

/* deepseek-llm's letter class (from its tokenizer.json; ws never matches:
 * llama.cpp turns non-ASCII whitespace into \v before running the regex) */
static const cp_range dsllm_letters[] = {
    {0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6}, {0x00D8, 0x00F6},
    {0x00F8, 0x01BA}, {0x01BC, 0x01BF}, {0x01C4, 0x0293}, {0x0295, 0x02AF}, {0x0370, 0x0373},
    {0x0376, 0x0377}, {0x037B, 0x037D}, {0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A},
    {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03F5}, {0x03F7, 0x0481}, {0x048A, 0x052F},
    {0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
    {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F},
    {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
static const cp_range dsllm_punct[] = {
    {0x0021, 0x002F}, {0x003A, 0x007E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002},
};
static const cp_range cjk[] = { {0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF} };

#define NRANGES(r) (sizeof (r) / sizeof (r)[0])

static int is_dsllm_letter(const pctx *c, size_t i)
{
    return !(c->fl[i] & UNI_WHITESPACE) && in_ranges(c->cp[i], dsllm_letters, NRANGES(dsllm_letters));
}
static int is_dsllm_punct(const pctx *c, size_t i)
{
    return !(c->fl[i] & UNI_WHITESPACE) && in_ranges(c->cp[i], dsllm_punct, NRANGES(dsllm_punct));
}
static int is_cjk(const pctx *c, size_t i)
{
    return !(c->fl[i] & UNI_WHITESPACE) && in_ranges(c->cp[i], cjk, NRANGES(cjk));
}
static int is_letter(const pctx *c, size_t i) { return (c->fl[i] & UNI_LETTER) != 0; }
static int is_punct(const pctx *c, size_t i) { return (c->fl[i] & UNI_PUNCT) != 0; }
static int is_number(const pctx *c, size_t i) { return (c->fl[i] & UNI_NUMBER) != 0; }
static int is_falcon_punct(const pctx *c, size_t i)
{
    uint32_t cp = c->cp[i];
    return (c->fl[i] & UNI_PUNCT) || (cp < 128 && strchr("$+<=>^~|`", (int)cp) && cp);
}
static int is_default_punct(const pctx *c, size_t i)
{
    uint32_t cp = c->cp[i];
    return (c->fl[i] & UNI_PUNCT) || (cp < 128 && strchr("$+<=>^~|", (int)cp) && cp);
}

/* X+ and \s?X+ for a class X */
static size_t match_run(const pctx *c, size_t p, size_t b, int (*cls)(const pctx *, size_t), int opt_ws)
{
    size_t q = p;
    if (opt_ws && (c->fl[q] & UNI_WHITESPACE) && q + 1 < b && cls(c, q + 1)) q++;
    if (!cls(c, q)) return 0;
    while (q < b && cls(c, q)) q++;
    return q;
}

static size_t m_crlf(const pctx *c, size_t p, size_t b) { (void)b; return c->cp[p] == '\r' || c->cp[p] == '\n' ? p + 1 : 0; }
static size_t m_num1(const pctx *c, size_t p, size_t b) { (void)b; return is_number(c, p) ? p + 1 : 0; }
static size_t m_numrun(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_number, 0); }
static size_t m_ws_letters(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_letter, 1); }
static size_t m_ws_punct(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_punct, 1); }
static size_t m_cjk(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_cjk, 0); }
static size_t m_dsllm_letters(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_dsllm_letter, 1); }
static size_t m_dsllm_punct(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_dsllm_punct, 1); }
static size_t m_falcon_punct(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_falcon_punct, 0); }
static size_t m_default_punct(const pctx *c, size_t p, size_t b) { return match_run(c, p, b, is_default_punct, 0); }
static size_t m_digit3(const pctx *c, size_t p, size_t b)
{
    for (size_t i = 0; i < 3; i++)
        if (p + i >= b || c->cp[p + i] < '0' || c->cp[p + i] > '9') return 0;
    return p + 3;
}

#define REGEX_PASS(name, matcher) \
    static size_t name(const pctx *c, size_t a, size_t b, uint32_t *out) { return split_matches(c, a, b, out, matcher); }
REGEX_PASS(pass_crlf, m_crlf)                       /* [\r\n] */
REGEX_PASS(pass_num1, m_num1)                       /* \p{N} */
REGEX_PASS(pass_numrun, m_numrun)                   /* \p{N}+ */
REGEX_PASS(pass_ws_letters, m_ws_letters)           /* \s?\p{L}+ */
REGEX_PASS(pass_ws_punct, m_ws_punct)               /* \s?\p{P}+ */
REGEX_PASS(pass_cjk, m_cjk)                         /* [一-龥ࠀ-一가-퟿]+ */
REGEX_PASS(pass_dsllm_letters, m_dsllm_letters)     /* \s?[A-Za-zµÀ-Ö...]+ */
REGEX_PASS(pass_dsllm_punct, m_dsllm_punct)         /* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
REGEX_PASS(pass_falcon_punct, m_falcon_punct)       /* [\p{P}\$\+<=>\^~\|`]+ */
REGEX_PASS(pass_default_punct, m_default_punct)     /* [\p{P}\$\+<=>\^~\|]+ */
REGEX_PASS(pass_digit3, m_digit3)                   /* [0-9][0-9][0-9] */

static const pass_fn prog_default[] = { pass_default_punct, pass_gpt2, pass_numrun, pass_digit3, NULL };
static const pass_fn prog_llama3[] = { pass_llama3, NULL };
static const pass_fn prog_dsllm[] = { pass_crlf, pass_dsllm_letters, pass_dsllm_punct, pass_trailing_ws, pass_cjk, pass_numrun, NULL };
static const pass_fn prog_dscoder[] = { pass_crlf, pass_ws_letters, pass_ws_punct, pass_cjk, pass_num1, NULL };
static const pass_fn prog_falcon[] = { pass_falcon_punct, pass_gpt2, pass_digit3, NULL };
static const pass_fn prog_gpt2[] = { pass_gpt2, NULL };
static const pass_fn prog_starcoder[] = { pass_num1, pass_gpt2, NULL };
static const pass_fn prog_qwen2[] = { pass_qwen2, NULL };
static const pass_fn prog_qwen35[] = { pass_qwen35, NULL };
static const pass_fn prog_gemma4[] = { pass_newlines, NULL };

static const pass_fn *pre_program(int kind)
{
    switch (kind) {
    case PRE_LLAMA3: return prog_llama3;
    case PRE_DEEPSEEK_LLM: return prog_dsllm;
    case PRE_DEEPSEEK_CODER: return prog_dscoder;
    case PRE_FALCON: return prog_falcon;
    case PRE_GPT2: return prog_gpt2;
    case PRE_STARCODER: return prog_starcoder;
    case PRE_QWEN2: return prog_qwen2;
    case PRE_QWEN35: return prog_qwen35;
    case PRE_GEMMA4: return prog_gemma4;
    default: return prog_default;
    }
}

/* Run the vocab's passes over e->cps[0..ncp-1]; the word ends land in e->seg.
 * Returns the number of words. */
static size_t pretokenize(enc *e, size_t ncp)
{
    if (!ncp) return 0;
    pctx c = { e->cps, e->fl };
    size_t nseg = 1;
    e->seg[0] = (uint32_t)ncp;
    for (const pass_fn *p = pre_program(e->v->pre_kind); *p; p++) {
        size_t n2 = 0, a = 0;
        for (size_t s = 0; s < nseg; s++) {
            size_t b = e->seg[s];
            n2 += (*p)(&c, a, b, e->seg2 + n2);
            a = b;
        }
        uint32_t *t = e->seg;
        e->seg = e->seg2;
        e->seg2 = t;
        size_t tc = e->cap_seg;
        e->cap_seg = e->cap_seg2;
        e->cap_seg2 = tc;
        nseg = n2;
    }
    return nseg;
}

/* ====================================================================== */
/* 6. encoders                                                             */
/* ====================================================================== */

struct sym {
    int32_t prev, next;    /* linked list of live symbols */
    uint32_t start, n;     /* bytes in the word buffer; n == 0: merged away */
    int32_t id;            /* BPE: current token id (TOK_NULL: not a token) */
};

static void emit_byte_fallback(enc *e, uint8_t byte)
{
    int32_t t = e->v->byte_tok[byte];
    if (t == TOK_NULL) t = e->v->unk;      /* llama.cpp would throw here */
    if (t != TOK_NULL) emit(e, t);
}

/* Float score -> unsigned key with the same order. */
static uint32_t f32_order(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* --- SentencePiece ----------------------------------------------------- */

static int is_sp_sym(const uint8_t *s, const struct sym *y)
{
    return y->n == 3 && s[y->start] == 0xE2 && s[y->start + 1] == 0x96 && s[y->start + 2] == 0x81;
}

static int spm_try_pair(enc *e, const uint8_t *s, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 0;
    struct sym *L = &e->sym[l], *R = &e->sym[r];
    int32_t id = tok_lookup(e->v, (const char *)s + L->start, L->n + R->n);
    if (id == TOK_NULL) return 0;
    /* best score first, then leftmost */
    heap_item it = { (uint64_t)(~f32_order(e->v->score[id])) << 32 | (uint32_t)l, l, r, (int32_t)(L->n + R->n), 0, 0 };
    return heap_push(&e->hp, &it);
}

/* One text fragment; prefix: add the "▁" of add_space_prefix. */
static int spm_encode(enc *e, const uint8_t *text, size_t n, int prefix)
{
    const tok_vocab *v = e->v;
    /* escaped copy: ' ' -> "▁" */
    if (n > (SIZE_MAX - 3) / 3 || grow(&e->buf, &e->cap_buf, 3 * n + 3, 1) < 0) return -1;
    uint8_t *s = e->buf;
    size_t m = 0;
    if (prefix) {
        memcpy(s, "\xe2\x96\x81", 3);
        m = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ' ') {
            memcpy(s + m, "\xe2\x96\x81", 3);
            m += 3;
        } else {
            s[m++] = text[i];
        }
    }
    if (!m) return 0;

    /* one symbol per UTF-8 sequence as its lead byte announces it */
    if (grow(&e->sym, &e->cap_sym, m, sizeof *e->sym) < 0) return -1;
    int32_t ns = 0;
    for (size_t off = 0; off < m; ns++) {
        size_t len = (size_t)unicode_len_utf8(s[off]);
        if (len > m - off) len = m - off;
        e->sym[ns] = (struct sym){ ns - 1, 0, (uint32_t)off, (uint32_t)len, 0 };
        off += len;
        e->sym[ns].next = off == m ? -1 : ns + 1;
    }
    /* Merge word by word: a word starts at a "▁" symbol that follows a
     * non-"▁" one. When no token has a "▁" after another character (checked
     * at load), no merge can cross such a boundary, so this equals merging
     * the whole text at once and keeps the heap small. */
    for (int32_t ws = 0; ws < ns;) {
        int32_t we = ws + 1;
        if (v->spm_words)
            while (we < ns && !(is_sp_sym(s, &e->sym[we]) && !is_sp_sym(s, &e->sym[we - 1]))) we++;
        else
            we = ns;
        e->sym[ws].prev = -1;
        e->sym[we - 1].next = -1;
        e->hp.n = 0;
        for (int32_t i = ws + 1; i < we; i++)
            if (spm_try_pair(e, s, i - 1, i) < 0) return -1;
        while (e->hp.n) {
            heap_item it = heap_pop(&e->hp);
            struct sym *L = &e->sym[it.left], *R = &e->sym[it.right];
            if (!L->n || !R->n || L->n + R->n != (uint32_t)it.a) continue;   /* stale */
            L->n += R->n;
            R->n = 0;
            L->next = R->next;
            if (R->next >= 0) e->sym[R->next].prev = it.left;
            if (spm_try_pair(e, s, L->prev, it.left) < 0 || spm_try_pair(e, s, it.left, L->next) < 0) return -1;
        }
        for (int32_t i = ws; i != -1; i = e->sym[i].next) {
            const struct sym *y = &e->sym[i];
            int32_t id = tok_lookup(v, (const char *)s + y->start, y->n);
            if (id != TOK_NULL) {
                emit(e, id);
            } else {
                for (uint32_t j = 0; j < y->n; j++) emit_byte_fallback(e, s[y->start + j]);
            }
        }
        ws = we;
    }
    return e->nomem ? -1 : 0;
}

/* --- byte-level BPE ---------------------------------------------------- */

static int bpe_try_pair(enc *e, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 0;
    int32_t a = e->sym[l].id, b = e->sym[r].id;
    if (a == TOK_NULL || b == TOK_NULL) return 0;
    const struct tok_merge *mg = merge_find(e->v, a, b);
    if (!mg) return 0;
    /* lowest rank first, then leftmost */
    heap_item it = { (uint64_t)(uint32_t)mg->rank << 32 | (uint32_t)l, l, r, a, b, mg->result };
    return heap_push(&e->hp, &it);
}

/* Fallback for a symbol that is not a token. llama.cpp looks up each byte of
 * the symbol's (byte-encoded) text: as a one-byte token for byte-level vocabs,
 * as <0xNN> for Gemma 4. */
static void bpe_fallback(enc *e, const uint8_t *w, const struct sym *y)
{
    const tok_vocab *v = e->v;
    for (uint32_t j = 0; j < y->n; j++) {
        uint8_t byte = w[y->start + j];
        if (v->byte_encode) {
            for (int q = 1; q <= v->byte_utf8[byte][0]; q++)
                if (v->char1_tok[v->byte_utf8[byte][q]] != TOK_NULL) emit(e, v->char1_tok[v->byte_utf8[byte][q]]);
        } else if (v->byte_tok[byte] != TOK_NULL) {
            emit(e, v->byte_tok[byte]);
        }
    }
}

static int memspn_nl(const uint8_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i] != '\n') return 0;
    return 1;
}

/* One pre-tokenized word: its UTF-8 bytes w[0..n-1]. */
static int bpe_word(enc *e, const uint8_t *w, size_t n)
{
    const tok_vocab *v = e->v;
    if (grow(&e->sym, &e->cap_sym, n, sizeof *e->sym) < 0) return -1;
    int32_t ns = 0;

    if (v->byte_encode) {
        if (v->ignore_merges && n * 2 <= (size_t)v->max_token_len) {
            /* llama.cpp: a word that is a token as a whole is taken as is */
            char tmp[2 * TOK_PIECE_MAX + 8];
            size_t m = 0;
            for (size_t i = 0; i < n && m + 4 < sizeof tmp; i++) {
                memcpy(tmp + m, &v->byte_utf8[w[i]][1], 2);
                m += v->byte_utf8[w[i]][0];
            }
            int32_t id = tok_lookup(v, tmp, m);
            if (id != TOK_NULL) return emit(e, id);
        }
        for (size_t i = 0; i < n; i++, ns++)
            e->sym[ns] = (struct sym){ ns - 1, i + 1 == n ? -1 : ns + 1, (uint32_t)i, 1, v->byte_tok[w[i]] };
    } else {
        if (v->pre_kind == PRE_GEMMA4 && n && memspn_nl(w, n)) {
            /* llama.cpp (Gemma 4): a run of newlines that is a token is taken as is */
            int32_t id = tok_lookup(v, (const char *)w, n);
            if (id != TOK_NULL) return emit(e, id);
        }
        for (size_t i = 0; i < n; ns++) {
            size_t len = (size_t)unicode_len_utf8(w[i]);
            if (len > n - i) len = n - i;
            e->sym[ns] = (struct sym){ ns - 1, 0, (uint32_t)i, (uint32_t)len, tok_lookup(v, (const char *)w + i, len) };
            i += len;
            e->sym[ns].next = i == n ? -1 : ns + 1;
        }
    }
    if (!ns) return 0;

    e->hp.n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (bpe_try_pair(e, i - 1, i) < 0) return -1;
    while (e->hp.n) {
        heap_item it = heap_pop(&e->hp);
        struct sym *L = &e->sym[it.left], *R = &e->sym[it.right];
        if (!L->n || !R->n || L->id != it.a || R->id != it.b) continue;   /* stale */
        L->n += R->n;
        L->id = it.c;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) e->sym[R->next].prev = it.left;
        if (bpe_try_pair(e, L->prev, it.left) < 0 || bpe_try_pair(e, it.left, L->next) < 0) return -1;
    }
    for (int32_t i = 0; i != -1; i = e->sym[i].next) {
        const struct sym *y = &e->sym[i];
        if (y->id != TOK_NULL) emit(e, y->id);
        else bpe_fallback(e, w, y);
    }
    return e->nomem ? -1 : 0;
}

/* Decode text (llama.cpp's rules: invalid bytes become U+FFFD) into e->cps
 * and e->fl. Returns the number of code points or (size_t)-1. */
static size_t decode_cps(enc *e, const uint8_t *s, size_t n)
{
    if (grow(&e->cps, &e->cap_cps, n + 1, sizeof *e->cps) < 0 ||
        grow(&e->fl, &e->cap_fl, n + 1, sizeof *e->fl) < 0) return (size_t)-1;
    size_t k = 0;
    for (size_t i = 0; i < n; k++) {
        uint32_t cp;
        i += (size_t)unicode_utf8_decode(s + i, n - i, &cp);
        e->cps[k] = cp;
        e->fl[k] = (uint16_t)unicode_flags(cp);
    }
    return k;
}

static int bpe_encode(enc *e, const uint8_t *text, size_t n)
{
    const tok_vocab *v = e->v;
    const uint8_t *s = text;
    if (v->escape_ws) {
        /* Gemma 4: spaces become "▁" before anything else */
        if (n > (SIZE_MAX - 3) / 3 || grow(&e->buf, &e->cap_buf, 3 * n + 3, 1) < 0) return -1;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (text[i] == ' ') {
                memcpy(e->buf + m, "\xe2\x96\x81", 3);
                m += 3;
            } else {
                e->buf[m++] = text[i];
            }
        }
        s = e->buf;
        n = m;
    }
    size_t ncp = decode_cps(e, s, n);
    if (ncp == (size_t)-1) return -1;
    if (grow(&e->seg, &e->cap_seg, ncp + 1, sizeof *e->seg) < 0 ||
        grow(&e->seg2, &e->cap_seg2, ncp + 1, sizeof *e->seg2) < 0 ||
        grow(&e->wbuf, &e->cap_wbuf, 4 * ncp + 4, 1) < 0) return -1;
    size_t nw = pretokenize(e, ncp);
    size_t a = 0;
    for (size_t wi = 0; wi < nw; wi++) {
        size_t b = e->seg[wi], m = 0;
        /* the word's bytes are re-encoded from the code points, as llama.cpp does */
        for (size_t i = a; i < b; i++) m += (size_t)unicode_utf8_encode(e->cps[i], e->wbuf + m);
        if (bpe_word(e, e->wbuf, m) < 0) return -1;
        a = b;
    }
    return 0;
}

/* --- WordPiece --------------------------------------------------------- */

static int is_chinese_char(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Greedy longest-match of "▁" + word (w[0..n-1] starts with the 3 bytes of ▁). */
static int wpm_word(enc *e, const uint8_t *w, size_t n)
{
    const tok_vocab *v = e->v;
    size_t start = e->n_out;
    for (size_t i = 0; i < n; i++) {
        int matched = 0;
        size_t j = n < i + (size_t)v->max_token_len + 1 ? n : i + (size_t)v->max_token_len + 1;
        for (; j > i; j--) {
            int32_t id = tok_lookup(v, (const char *)w + i, j - i);
            if (id != TOK_NULL) {
                if (emit(e, id) < 0) return -1;
                matched = 1;
                i = j - 1;
                break;
            }
        }
        if (!matched) {           /* llama.cpp: one miss discards the whole word */
            e->n_out = start;
            break;
        }
    }
    if (e->n_out == start && v->unk != TOK_NULL && emit(e, v->unk) < 0) return -1;
    return 0;
}

static int wpm_encode(enc *e, const uint8_t *text, size_t n)
{
    const tok_vocab *v = e->v;
    size_t ncp = decode_cps(e, text, n);
    if (ncp == (size_t)-1) return -1;
    if (grow(&e->wbuf, &e->cap_wbuf, 4 * ncp + 8, 1) < 0) return -1;
    uint8_t *w = e->wbuf;
    size_t m = 3;                 /* current word, after its "▁" */
    memcpy(w, "\xe2\x96\x81", 3);
    for (size_t i = 0; i < ncp; i++) {
        uint32_t cp = e->cps[i];
        if (v->strip_accents) cp = unicode_nfd_base(cp);
        unsigned f = unicode_flags(cp);
        if (f & UNI_WHITESPACE) {
            if (m > 3 && wpm_word(e, w, m) < 0) return -1;
            m = 3;
            continue;
        }
        if (cp == 0 || cp == UNI_REPLACEMENT || (f & UNI_CONTROL)) continue;
        if (v->strip_accents && (f & UNI_MARK)) continue;
        uint8_t u[4];
        int k = unicode_utf8_encode(v->lowercase ? unicode_tolower(cp) : cp, u);
        if ((f & UNI_PUNCT) || (cp < 0x7F && (f & UNI_SYMBOL)) || is_chinese_char(cp)) {
            if (m > 3 && wpm_word(e, w, m) < 0) return -1;
            memcpy(w + 3, u, (size_t)k);
            if (wpm_word(e, w, 3 + (size_t)k) < 0) return -1;
            m = 3;
        } else {
            memcpy(w + m, u, (size_t)k);
            m += (size_t)k;
        }
    }
    if (m > 3 && wpm_word(e, w, m) < 0) return -1;
    return 0;
}

/* --- tok_encode -------------------------------------------------------- */

static void enc_free(enc *e)
{
    free(e->out);
    free(e->fr);
    free(e->cd);
    free(e->buf);
    free(e->wbuf);
    free(e->cps);
    free(e->fl);
    free(e->seg);
    free(e->seg2);
    free(e->sym);
    free(e->hp.v);
}

/* The whole pipeline into e->out; -1 when memory ran out. */
static int encode_all(enc *e, const uint8_t *s, size_t len, int add_special, int parse_special, int partition_on)
{
    const tok_vocab *v = e->v;
    if (partition_on) {
        if (partition(e, s, len, parse_special) < 0) return -1;
    } else {
        e->n_fr = 0;
        if (len && frag_add(e, 0, (uint32_t)len, TOK_NULL) < 0) return -1;
    }
    int rc = 0;
    switch (v->type) {
    case TOK_TYPE_SPM: {
        int prev_special = 1;     /* llama.cpp: the first fragment gets the space prefix too */
        if (add_special && v->add_bos) emit(e, v->bos);
        for (size_t i = 0; i < e->n_fr && !rc; i++) {
            const frag *f = &e->fr[i];
            if (f->id == TOK_NULL) {
                rc = spm_encode(e, s + f->off, f->len, v->add_space_prefix && prev_special);
                prev_special = 0;
            } else {
                emit(e, f->id);
                prev_special = 1;
            }
        }
        if (add_special && v->add_eos) emit(e, v->eos);
        break;
    }
    case TOK_TYPE_BPE:
        if (add_special && v->add_bos) emit(e, v->bos);
        for (size_t i = 0; i < e->n_fr && !rc; i++) {
            const frag *f = &e->fr[i];
            if (f->id == TOK_NULL) rc = bpe_encode(e, s + f->off, f->len);
            else emit(e, f->id);
        }
        if (add_special && v->add_eos) emit(e, v->eos);
        break;
    case TOK_TYPE_WPM:
        /* llama.cpp: [CLS] ... [SEP] whenever add_special */
        if (add_special && v->bos != TOK_NULL) emit(e, v->bos);
        for (size_t i = 0; i < e->n_fr && !rc; i++) {
            const frag *f = &e->fr[i];
            if (f->id == TOK_NULL) rc = wpm_encode(e, s + f->off, f->len);
            else emit(e, f->id);
        }
        if (add_special && v->sep != TOK_NULL) emit(e, v->sep);
        break;
    default:
        break;
    }
    return rc < 0 || e->nomem ? -1 : 0;
}

int32_t tok_encode(const tok_vocab *v, const char *text, size_t len, int add_special,
                   int parse_special, int32_t *ids, int32_t cap)
{
    if (len > (size_t)INT32_MAX / 4 || (!text && len) || !v->n_vocab) return TOK_ENCODE_ERROR;
    enc e;
    memset(&e, 0, sizeof e);
    e.v = v;
    int32_t rc;
    if (encode_all(&e, (const uint8_t *)text, len, add_special, parse_special, 1) < 0) {
        rc = TOK_ENCODE_ERROR;
    } else if (e.n_out > (size_t)INT32_MAX) {
        rc = TOK_ENCODE_ERROR;
    } else if (e.n_out > (size_t)(cap > 0 ? cap : 0)) {
        rc = -(int32_t)e.n_out;
    } else {
        if (e.n_out) memcpy(ids, e.out, e.n_out * sizeof *ids);
        rc = (int32_t)e.n_out;
    }
    enc_free(&e);
    return rc;
}

/* llama.cpp's newline id for BPE vocabs: the first token of "\n", encoded
 * before special tokens exist. TOK_NULL if none, INT32_MIN out of memory. */
static int32_t encode_newline(const tok_vocab *v)
{
    enc e;
    memset(&e, 0, sizeof e);
    e.v = v;
    int32_t r = encode_all(&e, (const uint8_t *)"\n", 1, 0, 0, 0) < 0 ? INT32_MIN
              : e.n_out ? e.out[0] : TOK_NULL;
    enc_free(&e);
    return r;
}

/* ====================================================================== */
/* 7. decoding                                                             */
/* ====================================================================== */

int32_t tok_token_to_piece(const tok_vocab *v, int32_t id, char *buf, int32_t cap, int lstrip, int special)
{
    if (id < 0 || id >= v->n_vocab) return 0;
    if (!special && (v->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) return 0;
    const char *p = v->piece + v->piece_off[id];
    int32_t n = (int32_t)(v->piece_off[id + 1] - v->piece_off[id]);
    for (int i = 0; i < lstrip && n && *p == ' '; i++) {
        p++;
        n--;
    }
    if (cap < n) return -n;
    if (n) memcpy(buf, p, (size_t)n);
    return n;
}

int32_t tok_detokenize(const tok_vocab *v, const int32_t *ids, int32_t n, char *text,
                       int32_t cap, int remove_special, int unparse_special)
{
    int remove_space = v->add_space_prefix;
    if (cap < 0) cap = 0;
    if (remove_special && v->add_bos && n > 0 && ids[0] == v->bos) {
        remove_space = 0;         /* llama.cpp: the space after a removed BOS stays */
        ids++;
        n--;
    }
    if (remove_special && v->add_eos && n > 0 && ids[n - 1] == v->eos) n--;
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        int strip = remove_space;
        remove_space = 0;         /* llama.cpp: only the first token, even if it renders as "" */
        if (id < 0 || id >= v->n_vocab) continue;
        if (!unparse_special && (v->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) continue;
        const char *p = v->piece + v->piece_off[id];
        uint32_t k = v->piece_off[id + 1] - v->piece_off[id];
        if (strip && k && *p == ' ') {
            p++;
            k--;
        }
        if (total + k <= cap) memcpy(text + total, p, k);
        total += k;
        if (total > INT32_MAX) return INT32_MIN + 1;
    }
    if (total > cap) return -(int32_t)total;
    int32_t t = (int32_t)total;
    if (v->clean_spaces && t > 1) {
        /* llama.cpp's clean_up_tokenization_spaces, three passes in place */
        int32_t w = 1;            /* " ?" " !" " ." " ," lose the space */
        for (int32_t i = 1; i < t; i++) {
            char x = text[i];
            if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) w--;
            text[w++] = x;
        }
        t = w;
        w = t ? 1 : 0;            /* " ' " -> "'" */
        for (int32_t i = 1; i < t; i++) {
            char x = text[i];
            if (x == '\'' && i + 1 < t && text[i - 1] == ' ' && text[i + 1] == ' ') {
                w--;
                text[++i] = 0;
            }
            text[w++] = x;
        }
        t = w;
        w = t ? 1 : 0;            /* " 's" " 'm" " 're" " 've" lose the space */
        for (int32_t i = 1; i < t; i++) {
            char x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < t) {
                char x1 = text[i + 1];
                if (x1 == 's' || x1 == 'm') w--;
                else if (i + 2 < t && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e'))) w--;
            }
            text[w++] = x;
        }
        t = w;
    }
    return t;
}

void tok_stream_init(tok_stream *s)
{
    memset(s, 0, sizeof *s);
}

/* Length of the valid UTF-8 sequence at p[0..n-1]: >0 complete, 0 invalid,
 * -1 a valid but incomplete prefix. Strict (no overlongs, surrogates, > U+10FFFF). */
static int utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    if (b < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else return 0;
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n) return -1;
        uint8_t c = p[i];
        if (i == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) return 0;
    }
    return need;
}

/* Sanitize in[0..n-1] into out (NULL: count only): complete sequences copied,
 * invalid bytes -> U+FFFD; a trailing incomplete sequence is left (its length
 * in *held) unless final. Returns the output length. */
static size_t utf8_clean(const uint8_t *in, size_t n, uint8_t *out, size_t *held, int final)
{
    size_t o = 0;
    *held = 0;
    for (size_t i = 0; i < n;) {
        int k = utf8_seq(in + i, n - i);
        if (k > 0) {
            if (out) memcpy(out + o, in + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else if (k < 0 && !final) {
            *held = n - i;
            break;
        } else {
            if (out) memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += k < 0 ? n - i : 1;      /* an unfinished sequence at the end is one U+FFFD */
        }
    }
    return o;
}

int32_t tok_stream_push(tok_stream *s, const tok_vocab *v, int32_t id, int special, char *out, int32_t cap)
{
    uint8_t tmp[TOK_PIECE_MAX + 8];
    memcpy(tmp, s->held, (size_t)s->n_held);
    int32_t k = tok_token_to_piece(v, id, (char *)tmp + s->n_held, TOK_PIECE_MAX, 0, special);
    if (k < 0) k = 0;             /* cannot happen: pieces fit TOK_PIECE_MAX (checked at load) */
    size_t n = (size_t)s->n_held + (size_t)k, held;
    size_t need = utf8_clean(tmp, n, NULL, &held, 0);
    if (need > (size_t)(cap > 0 ? cap : 0)) return -(int32_t)need;
    utf8_clean(tmp, n, (uint8_t *)out, &held, 0);
    memcpy(s->held, tmp + n - held, held);
    s->n_held = (int)held;
    return (int32_t)need;
}

int32_t tok_stream_flush(tok_stream *s, char *out, int32_t cap)
{
    size_t held;
    size_t need = utf8_clean(s->held, (size_t)s->n_held, NULL, &held, 1);
    if (need > (size_t)(cap > 0 ? cap : 0)) return -(int32_t)need;
    utf8_clean(s->held, (size_t)s->n_held, (uint8_t *)out, &held, 1);
    s->n_held = 0;
    return (int32_t)need;
}
