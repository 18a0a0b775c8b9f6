/* test_gguf.c — GGUF reader and writer.
 *
 * Roundtrip of every metadata type and several tensor types through the
 * writer and reader; every .gguf under ../shared/models opens and finds its
 * tensors; hostile files (every truncation of a small valid file, lying
 * counts and lengths, bad offsets, types, dims, alignment, duplicates) are
 * refused with a message naming the field; allocation failures unwind.
 *
 * White-box: includes gguf.c so the allocation hook can fail the N-th call.
 */
#include <dirent.h>
#include <stdlib.h>

static int t_alloc_fail_at;   /* fail the N-th allocation (0 = never) */
static int t_alloc_calls;
static void *t_calloc(size_t n, size_t size)
{
    if (t_alloc_fail_at && ++t_alloc_calls == t_alloc_fail_at) return NULL;
    return calloc(n, size);
}
#define GGUF_CALLOC t_calloc
#include "gguf.c"

#include "gguf_write.h"
#include "kernels/kernels.h"
#include "test.h"

/* ---- helpers ---------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (n) memcpy(d, p, n);
    return d;
}

/* Open an exact-size heap copy (so ASan sees any overread) and expect a
 * GGUF_ERR_FORMAT whose message contains want. */
static void expect_bad(const uint8_t *buf, size_t len, const char *want, const char *what)
{
    gguf_file g;
    uint8_t *copy = dup_bytes(buf, len);
    int rc = gguf_open_mem(&g, copy, len);
    T_CHECK(rc == GGUF_ERR_FORMAT && strstr(g.err, want) && strncmp(g.err, "gguf: ", 6) == 0,
            "%s: refused [%s]", what, g.err);
    if (rc == 0) gguf_close(&g);
    free(copy);
}

/* A raw byte builder for files the writer refuses to produce. */
typedef struct raw { uint8_t b[4096]; size_t n; } raw;
static void raw_u32(raw *r, uint32_t v) { put32(r->b + r->n, v); r->n += 4; }
static void raw_u64(raw *r, uint64_t v) { put64(r->b + r->n, v); r->n += 8; }
static void raw_str(raw *r, const char *s) { raw_u64(r, strlen(s)); memcpy(r->b + r->n, s, strlen(s)); r->n += strlen(s); }
static void raw_header(raw *r, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    r->n = 0;
    memcpy(r->b, "GGUF", 4);
    r->n = 4;
    raw_u32(r, version);
    raw_u64(r, n_tensors);
    raw_u64(r, n_kv);
}
static void raw_pad(raw *r, size_t n) { memset(r->b + r->n, 0, n); r->n += n; }

/* Deterministic pseudo-random bytes. */
static void fill_random(void *p, size_t n, uint32_t seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
}

/* ---- the small valid file every mutation starts from --------------------------- */

typedef struct small {
    uint8_t *buf;
    size_t len;
    size_t need;            /* bytes that must be present: end of the last tensor's data */
    gguf_file g;            /* opened on buf, for field positions */
} small;

/* Position of a key's type field, and of a tensor info's n_dims field. */
static size_t key_type_pos(const small *s, const char *key)
{
    const gguf_kv *kv = gguf_find(&s->g, key);
    return (size_t)((const uint8_t *)kv->key.ptr + kv->key.len - s->g.base);
}
static size_t key_len_pos(const small *s, const char *key)
{
    return (size_t)((const uint8_t *)gguf_find(&s->g, key)->key.ptr - s->g.base) - 8;
}
static size_t tensor_ndims_pos(const small *s, const char *name)
{
    const gguf_tensor *t = gguf_find_tensor(&s->g, name);
    return (size_t)((const uint8_t *)t->name.ptr + t->name.len - s->g.base);
}
static size_t tensor_type_pos(const small *s, const char *name)
{
    return tensor_ndims_pos(s, name) + 4 + 8 * (size_t)gguf_find_tensor(&s->g, name)->n_dims;
}

static int build_small(small *s)
{
    gguf_writer w;
    static float a[8 * 2];
    static uint8_t b[34 * 2];
    static uint16_t c[16];
    const char *toks[] = { "<unk>", "", "hello" };
    const int32_t types[] = { 2, 1, 1 };
    const float scores[] = { 0.0f, -1.5f, 2.25f };
    fill_random(a, sizeof a, 1);
    fill_random(b, sizeof b, 2);
    fill_random(c, sizeof c, 3);
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "general.architecture", "llama");
    gguf_writer_add_u32(&w, "general.alignment", 32);
    gguf_writer_add_u8(&w, "dup.x", 1);
    gguf_writer_add_u8(&w, "dup.y", 2);
    gguf_writer_add_u32(&w, "llama.block_count", 2);
    gguf_writer_add_f32(&w, "llama.rms_eps", 1e-5f);
    gguf_writer_add_bool(&w, "flag", 1);
    gguf_writer_add_u64(&w, "big", 1ull << 40);
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", toks, 3);
    gguf_writer_add_arr_f32(&w, "tokenizer.ggml.scores", scores, 3);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, 3);
    gguf_writer_add_tensor(&w, "a.weight", KERN_F32, 2, (int64_t[]){ 8, 2 }, a, sizeof a);
    gguf_writer_add_tensor(&w, "b.weight", KERN_Q8_0, 2, (int64_t[]){ 32, 2 }, b, sizeof b);
    gguf_writer_add_tensor(&w, "c.weight", KERN_F16, 1, (int64_t[]){ 16 }, c, sizeof c);
    int rc = gguf_writer_finish(&w, &s->buf, &s->len);
    if (rc < 0) T_NOTE("%s", w.err);
    gguf_writer_free(&w);
    if (rc < 0 || gguf_open_mem(&s->g, s->buf, s->len) < 0) return -1;
    s->need = 0;
    for (uint64_t i = 0; i < s->g.n_tensors; i++) {
        size_t end = (size_t)(s->g.data_offset + s->g.tensors[i].offset + s->g.tensors[i].nbytes);
        if (end > s->need) s->need = end;
    }
    return 0;
}

/* ---- roundtrip of every metadata type and several tensor types ------------------ */

static void test_roundtrip(void)
{
    gguf_writer w;
    gguf_file g;
    gguf_writer_init(&w);
    gguf_writer_add_u8(&w, "t.u8", 250);
    gguf_writer_add_i8(&w, "t.i8", -128);
    gguf_writer_add_u16(&w, "t.u16", 65535);
    gguf_writer_add_i16(&w, "t.i16", -32768);
    gguf_writer_add_u32(&w, "t.u32", 4000000000u);
    gguf_writer_add_i32(&w, "t.i32", -2000000000);
    gguf_writer_add_u64(&w, "t.u64", UINT64_MAX);
    gguf_writer_add_i64(&w, "t.i64", INT64_MIN);
    gguf_writer_add_f32(&w, "t.f32", 0.1f);
    gguf_writer_add_f64(&w, "t.f64", -1e300);
    gguf_writer_add_bool(&w, "t.true", 7);
    gguf_writer_add_bool(&w, "t.false", 0);
    gguf_writer_add_str(&w, "t.str", "héllo");
    gguf_writer_add_str(&w, "t.empty", "");
    gguf_writer_add_strn(&w, "t.nul", "a\0b", 3);
    const uint8_t au8[] = { 0, 255, 7 };
    const int8_t ai8[] = { -128, 127 };
    const uint16_t au16[] = { 1, 65535 };
    const int16_t ai16[] = { -32768, 5 };
    const uint32_t au32[] = { 0, 4294967295u };
    const int32_t ai32[] = { INT32_MIN, INT32_MAX, 0 };
    const uint64_t au64[] = { UINT64_MAX, 3 };
    const int64_t ai64[] = { INT64_MIN, -1 };
    const float af32[] = { 1.5f, -0.0f, 3e38f };
    const double af64[] = { 1e-300, 2.5 };
    const uint8_t abool[] = { 1, 0, 9 };
    const char *astr[] = { "x", "", "longer string" };
    gguf_writer_add_arr(&w, "a.u8", GGUF_VT_U8, au8, 3);
    gguf_writer_add_arr(&w, "a.i8", GGUF_VT_I8, ai8, 2);
    gguf_writer_add_arr(&w, "a.u16", GGUF_VT_U16, au16, 2);
    gguf_writer_add_arr(&w, "a.i16", GGUF_VT_I16, ai16, 2);
    gguf_writer_add_arr(&w, "a.u32", GGUF_VT_U32, au32, 2);
    gguf_writer_add_arr_i32(&w, "a.i32", ai32, 3);
    gguf_writer_add_arr(&w, "a.u64", GGUF_VT_U64, au64, 2);
    gguf_writer_add_arr(&w, "a.i64", GGUF_VT_I64, ai64, 2);
    gguf_writer_add_arr_f32(&w, "a.f32", af32, 3);
    gguf_writer_add_arr(&w, "a.f64", GGUF_VT_F64, af64, 2);
    gguf_writer_add_arr(&w, "a.bool", GGUF_VT_BOOL, abool, 3);
    gguf_writer_add_arr_str(&w, "a.str", astr, 3);
    gguf_writer_add_arr(&w, "a.empty", GGUF_VT_U32, NULL, 0);

    /* Tensors of several types and ranks, random bytes of the exact size. */
    static const struct { const char *name; int type; int n_dims; int64_t ne[4]; } ts[] = {
        { "f32.1d", KERN_F32, 1, { 7 } },
        { "f16.2d", KERN_F16, 2, { 5, 3 } },
        { "bf16.3d", KERN_BF16, 3, { 2, 3, 4 } },
        { "q4_0.2d", KERN_Q4_0, 2, { 64, 3 } },
        { "q8_0.4d", KERN_Q8_0, 4, { 32, 2, 1, 2 } },
        { "q4_k.2d", KERN_Q4_K, 2, { 256, 2 } },
        { "q6_k.1d", KERN_Q6_K, 1, { 512 } },
    };
    enum { NT = sizeof ts / sizeof ts[0] };
    uint8_t *data[NT];
    size_t nbytes[NT];
    for (int i = 0; i < NT; i++) {
        nbytes[i] = kern_row_size(ts[i].type, ts[i].ne[0]);
        for (int d = 1; d < ts[i].n_dims; d++) nbytes[i] *= (size_t)ts[i].ne[d];
        data[i] = malloc(nbytes[i]);
        fill_random(data[i], nbytes[i], (uint32_t)i + 10);
        gguf_writer_add_tensor(&w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, data[i], nbytes[i]);
    }
    uint8_t *buf;
    size_t len;
    int rc = gguf_writer_finish(&w, &buf, &len);
    T_CHECK(rc == 0, "writer: finish with every metadata type and %d tensors (%zu bytes) %s", NT, len, w.err);
    gguf_writer_free(&w);
    if (rc < 0) return;
    T_CHECK(((uintptr_t)buf & 63) == 0, "writer: output buffer 64-byte aligned");

    rc = gguf_open_mem(&g, buf, len);
    T_CHECK(rc == 0, "roundtrip: reader opens the writer's output %s", g.err);
    if (rc < 0) { free(buf); return; }
    T_CHECK(g.version == 3 && g.alignment == 32 && g.n_kv == 28 && g.n_tensors == NT,
            "roundtrip: version 3, alignment 32, 28 keys, %d tensors", NT);

    uint32_t u32; int32_t i32; uint64_t u64; float f; int b; gguf_str s; const gguf_kv *kv;
    T_CHECK(gguf_get_u32(&g, "t.u8", &u32) == 0 && u32 == 250, "u8 -> get_u32");
    T_CHECK(gguf_get_i32(&g, "t.i8", &i32) == 0 && i32 == -128, "i8 -> get_i32");
    T_CHECK(gguf_get_u32(&g, "t.u16", &u32) == 0 && u32 == 65535, "u16 -> get_u32");
    T_CHECK(gguf_get_i32(&g, "t.i16", &i32) == 0 && i32 == -32768, "i16 -> get_i32");
    T_CHECK(gguf_get_u32(&g, "t.u32", &u32) == 0 && u32 == 4000000000u, "u32 -> get_u32");
    T_CHECK(gguf_get_i32(&g, "t.i32", &i32) == 0 && i32 == -2000000000, "i32 -> get_i32");
    T_CHECK(gguf_get_u64(&g, "t.u64", &u64) == 0 && u64 == UINT64_MAX, "u64 -> get_u64");
    kv = gguf_find(&g, "t.i64");
    T_CHECK(kv && kv->type == GGUF_VT_I64 && kv->v.i64 == INT64_MIN, "i64 kept in v.i64");
    T_CHECK(gguf_get_f32(&g, "t.f32", &f) == 0 && f == 0.1f, "f32 -> get_f32 exact");
    kv = gguf_find(&g, "t.f64");
    T_CHECK(kv && kv->type == GGUF_VT_F64 && kv->v.f64 == -1e300, "f64 kept in v.f64");
    T_CHECK(gguf_get_bool(&g, "t.true", &b) == 0 && b == 1, "bool true (written from 7) reads 1");
    T_CHECK(gguf_get_bool(&g, "t.false", &b) == 0 && b == 0, "bool false");
    T_CHECK(gguf_get_str(&g, "t.str", &s) == 0 && gguf_str_eq(s, "héllo"), "string UTF-8");
    T_CHECK(gguf_get_str(&g, "t.empty", &s) == 0 && s.len == 0 && gguf_str_eq(s, ""), "empty string");
    T_CHECK(gguf_get_str(&g, "t.nul", &s) == 0 && s.len == 3 && memcmp(s.ptr, "a\0b", 3) == 0,
            "string with an embedded NUL keeps its length");

    /* Getter conversions and refusals. */
    T_CHECK(gguf_get_u32(&g, "t.i8", &u32) == GGUF_ERR_TYPE, "get_u32 of a negative i8: TYPE");
    T_CHECK(gguf_get_u32(&g, "t.u64", &u32) == GGUF_ERR_TYPE, "get_u32 of u64 max: TYPE");
    T_CHECK(gguf_get_i32(&g, "t.u32", &i32) == GGUF_ERR_TYPE, "get_i32 of 4e9: TYPE");
    T_CHECK(gguf_get_i32(&g, "t.i64", &i32) == GGUF_ERR_TYPE, "get_i32 of INT64_MIN: TYPE");
    T_CHECK(gguf_get_u64(&g, "t.i64", &u64) == GGUF_ERR_TYPE, "get_u64 of a negative: TYPE");
    T_CHECK(gguf_get_f32(&g, "t.i16", &f) == 0 && f == -32768.0f, "get_f32 of an integer");
    T_CHECK(gguf_get_u32(&g, "t.str", &u32) == GGUF_ERR_TYPE, "get_u32 of a string: TYPE");
    T_CHECK(gguf_get_u32(&g, "t.true", &u32) == GGUF_ERR_TYPE, "get_u32 of a bool: TYPE");
    T_CHECK(gguf_get_bool(&g, "t.u8", &b) == GGUF_ERR_TYPE, "get_bool of u8: TYPE");
    T_CHECK(gguf_get_str(&g, "a.str", &s) == GGUF_ERR_TYPE, "get_str of an array: TYPE");
    T_CHECK(gguf_get_u32(&g, "nope", &u32) == GGUF_ERR_MISSING && gguf_find(&g, "nope") == NULL,
            "absent key: MISSING / NULL");
    T_CHECK(gguf_find(&g, "t.u") == NULL && gguf_find(&g, "t.u88") == NULL, "no prefix matches");

    /* Arrays. */
    int ok = 1;
    ok &= gguf_get_arr(&g, "a.u8", GGUF_VT_U8, &kv) == 0 && kv->v.arr.n == 3 && gguf_arr_int(kv, 1) == 255;
    ok &= gguf_get_arr(&g, "a.i8", GGUF_VT_I8, &kv) == 0 && gguf_arr_int(kv, 0) == -128 && gguf_arr_int(kv, 1) == 127;
    ok &= gguf_get_arr(&g, "a.u16", GGUF_VT_U16, &kv) == 0 && gguf_arr_int(kv, 1) == 65535;
    ok &= gguf_get_arr(&g, "a.i16", GGUF_VT_I16, &kv) == 0 && gguf_arr_int(kv, 0) == -32768;
    ok &= gguf_get_arr(&g, "a.u32", GGUF_VT_U32, &kv) == 0 && gguf_arr_int(kv, 1) == 4294967295ll;
    ok &= gguf_get_arr(&g, "a.i32", GGUF_VT_I32, &kv) == 0 && gguf_arr_int(kv, 0) == INT32_MIN &&
          gguf_arr_int(kv, 1) == INT32_MAX && kv->v.arr.nbytes == 12;
    ok &= gguf_get_arr(&g, "a.u64", GGUF_VT_U64, &kv) == 0 && (uint64_t)gguf_arr_int(kv, 0) == UINT64_MAX;
    ok &= gguf_get_arr(&g, "a.i64", GGUF_VT_I64, &kv) == 0 && gguf_arr_int(kv, 0) == INT64_MIN;
    ok &= gguf_get_arr(&g, "a.f32", GGUF_VT_F32, &kv) == 0 && gguf_arr_f32(kv, 0) == 1.5f &&
          gguf_arr_f32(kv, 2) == 3e38f && gguf_arr_f32(kv, 3) == 0.0f;
    ok &= gguf_get_arr(&g, "a.f64", GGUF_VT_F64, &kv) == 0 && gguf_arr_f32(kv, 1) == 2.5f;
    ok &= gguf_get_arr(&g, "a.bool", GGUF_VT_BOOL, &kv) == 0 && gguf_arr_int(kv, 0) == 1 &&
          gguf_arr_int(kv, 1) == 0 && gguf_arr_int(kv, 2) == 1;
    ok &= gguf_get_arr(&g, "a.empty", -1, &kv) == 0 && kv->v.arr.n == 0 && gguf_arr_int(kv, 0) == 0;
    T_CHECK(ok, "arrays of every fixed-size element type read back");
    T_CHECK(gguf_get_arr(&g, "a.u8", GGUF_VT_I8, &kv) == GGUF_ERR_TYPE &&
            gguf_get_arr(&g, "t.u8", -1, &kv) == GGUF_ERR_TYPE &&
            gguf_get_arr(&g, "nope", -1, &kv) == GGUF_ERR_MISSING, "get_arr refuses wrong element type / scalar");
    gguf_get_arr(&g, "a.u8", -1, &kv);
    T_CHECK(gguf_arr_f32(kv, 0) == 0.0f, "arr_f32 on an integer array returns 0");
    gguf_str strs[3];
    T_CHECK(gguf_get_arr(&g, "a.str", GGUF_VT_STRING, &kv) == 0 && gguf_arr_strings(kv, strs, 3) == 0 &&
            gguf_str_eq(strs[0], "x") && gguf_str_eq(strs[1], "") && gguf_str_eq(strs[2], "longer string"),
            "string array walks in order");
    T_CHECK(gguf_arr_strings(kv, strs, 4) == GGUF_ERR_FORMAT, "arr_strings with n > arr.n: FORMAT");
    T_CHECK(gguf_arr_int(kv, 0) == 0, "arr_int on a string array returns 0");
    gguf_get_arr(&g, "a.u8", -1, &kv);
    T_CHECK(gguf_arr_strings(kv, strs, 1) == GGUF_ERR_TYPE, "arr_strings on a u8 array: TYPE");

    /* Tensors. */
    ok = 1;
    for (int i = 0; i < NT; i++) {
        const gguf_tensor *t = gguf_find_tensor(&g, ts[i].name);
        if (!t || t != &g.tensors[i] || t->type != ts[i].type || t->n_dims != ts[i].n_dims ||
            t->nbytes != nbytes[i] || memcmp(t->data, data[i], nbytes[i]) != 0 ||
            ((uintptr_t)t->data % 32) != 0 || t->offset % 32 != 0) {
            T_NOTE("tensor %s differs", ts[i].name);
            ok = 0;
            continue;
        }
        int64_t n = 1;
        for (int d = 0; d < 4; d++) {
            int64_t want = d < ts[i].n_dims ? ts[i].ne[d] : 1;
            if (t->ne[d] != want) ok = 0;
            n *= want;
        }
        if (gguf_tensor_nelements(t) != n) ok = 0;
    }
    T_CHECK(ok, "tensors: name, type, dims, bytes and 32-byte alignment of %d types", NT);
    T_CHECK(gguf_find_tensor(&g, "f32") == NULL && gguf_find_tensor(&g, "") == NULL, "absent tensor: NULL");

    /* Copy every kv into a new writer: the key section comes out identical. */
    gguf_writer_init(&w);
    for (uint64_t i = 0; i < g.n_kv; i++) gguf_writer_add_kv(&w, &g.kv[i]);
    uint8_t *buf2;
    size_t len2;
    rc = gguf_writer_finish(&w, &buf2, &len2);
    size_t kv_end = (size_t)((const uint8_t *)g.tensors[0].name.ptr - g.base) - 8;
    T_CHECK(rc == 0 && len2 >= kv_end && memcmp(buf2 + 8, "\0\0\0\0\0\0\0\0", 8) == 0 &&
            memcmp(buf2 + 16, buf + 16, kv_end - 16) == 0, "writer: add_kv copies every kv byte for byte");
    gguf_writer_free(&w);
    free(buf2);

    gguf_close(&g);
    T_CHECK(g.base == NULL && g.kv == NULL && g.n_tensors == 0, "close zeroes the handle");
    gguf_close(&g);
    T_CHECK(1, "closing twice is harmless");
    for (int i = 0; i < NT; i++) free(data[i]);
    free(buf);
}

/* general.alignment set by the writer, and files on disk. */
static void test_alignment_and_files(void)
{
    gguf_writer w;
    gguf_file g;
    float x[3] = { 1, 2, 3 };
    uint8_t *buf;
    size_t len;
    uint32_t aligns[] = { 1, 8, 64, 256 };
    for (int k = 0; k < 4; k++) {
        gguf_writer_init(&w);
        gguf_writer_add_u32(&w, "general.alignment", aligns[k]);
        gguf_writer_add_str(&w, "general.name", "odd");
        gguf_writer_add_tensor(&w, "x", KERN_F32, 1, (int64_t[]){ 3 }, x, sizeof x);
        gguf_writer_add_tensor(&w, "y", KERN_F32, 1, (int64_t[]){ 3 }, x, sizeof x);
        int rc = gguf_writer_finish(&w, &buf, &len);
        gguf_writer_free(&w);
        rc = rc < 0 ? rc : gguf_open_mem(&g, buf, len);
        const gguf_tensor *y = rc == 0 ? gguf_find_tensor(&g, "y") : NULL;
        T_CHECK(rc == 0 && g.alignment == aligns[k] && g.data_offset % aligns[k] == 0 && y &&
                y->offset % aligns[k] == 0 && y->offset >= 12 && memcmp(y->data, x, sizeof x) == 0,
                "general.alignment %u: data section and offsets aligned %s", aligns[k], g.err);
        gguf_close(&g);
        free(buf);
    }

    /* gguf_open: a file on disk, missing files, a directory, an empty file. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/mote_test_gguf_%d.gguf", (int)getpid());
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "general.architecture", "llama");
    gguf_writer_add_tensor(&w, "x", KERN_F32, 1, (int64_t[]){ 3 }, x, sizeof x);
    int rc = gguf_writer_write_file(&w, path);
    T_CHECK(rc == 0, "writer: write_file %s %s", path, w.err);
    rc = gguf_writer_write_file(&w, "/nonexistent-dir/x.gguf");
    T_CHECK(rc == GGUF_ERR_IO && strstr(w.err, "/nonexistent-dir/x.gguf"), "writer: write_file to a bad path: IO [%s]", w.err);
    T_CHECK(gguf_writer_add_u8(&w, "after", 1) == 0, "writer: I/O errors are not sticky");
    gguf_writer_free(&w);
    rc = gguf_open(&g, path);
    T_CHECK(rc == 0 && g.mapped && gguf_find_tensor(&g, "x") &&
            memcmp(gguf_find_tensor(&g, "x")->data, x, sizeof x) == 0 &&
            ((uintptr_t)gguf_find_tensor(&g, "x")->data % 32) == 0, "gguf_open maps a file %s", g.err);
    gguf_close(&g);
    unlink(path);
    rc = gguf_open(&g, path);
    T_CHECK(rc == GGUF_ERR_IO && strstr(g.err, path) && strstr(g.err, "No such file"),
            "gguf_open of a missing file: IO [%s]", g.err);
    gguf_close(&g);
    rc = gguf_open(&g, "/tmp");
    T_CHECK(rc == GGUF_ERR_IO && strstr(g.err, "not a regular file"), "gguf_open of a directory: IO [%s]", g.err);
    FILE *fp = fopen(path, "wb");
    if (fp) fclose(fp);
    rc = gguf_open(&g, path);
    T_CHECK(rc == GGUF_ERR_FORMAT && strstr(g.err, "empty"), "gguf_open of an empty file: FORMAT [%s]", g.err);
    unlink(path);
    rc = gguf_open_mem(&g, NULL, 0);
    T_CHECK(rc == GGUF_ERR_FORMAT, "gguf_open_mem of 0 bytes: FORMAT [%s]", g.err);
}

/* The writer refuses to build files the reader would refuse. */
static void test_writer_refusals(void)
{
    gguf_writer w;
    float x[64] = { 0 };
    uint8_t *buf;
    size_t len;
#define REFUSE(what, expr) do { gguf_writer_init(&w); \
        gguf_writer_add_u8(&w, "k", 1); \
        gguf_writer_add_tensor(&w, "t", KERN_F32, 1, (int64_t[]){ 4 }, x, 16); \
        int rc_ = (expr); \
        T_CHECK(rc_ < 0 && w.status == rc_ && gguf_writer_finish(&w, &buf, &len) == rc_ && buf == NULL, \
                "writer refuses %s [%s]", what, w.err); \
        gguf_writer_free(&w); } while (0)
    REFUSE("a duplicate key", gguf_writer_add_str(&w, "k", "again"));
    REFUSE("a duplicate tensor name", gguf_writer_add_tensor(&w, "t", KERN_F32, 1, (int64_t[]){ 4 }, x, 16));
    REFUSE("general.alignment 0", gguf_writer_add_u32(&w, "general.alignment", 0));
    REFUSE("general.alignment 3", gguf_writer_add_u32(&w, "general.alignment", 3));
    REFUSE("general.alignment as u64", gguf_writer_add_u64(&w, "general.alignment", 32));
    REFUSE("an unknown tensor type", gguf_writer_add_tensor(&w, "u", 4, 1, (int64_t[]){ 4 }, x, 16));
    REFUSE("n_dims 0", gguf_writer_add_tensor(&w, "u", KERN_F32, 0, (int64_t[]){ 4 }, x, 16));
    REFUSE("n_dims 5", gguf_writer_add_tensor(&w, "u", KERN_F32, 5, (int64_t[]){ 4, 1, 1, 1, 1 }, x, 16));
    REFUSE("a zero dim", gguf_writer_add_tensor(&w, "u", KERN_F32, 2, (int64_t[]){ 4, 0 }, x, 0));
    REFUSE("a row not a multiple of the block", gguf_writer_add_tensor(&w, "u", KERN_Q8_0, 1, (int64_t[]){ 48 }, x, 51));
    REFUSE("nbytes not matching the shape", gguf_writer_add_tensor(&w, "u", KERN_F32, 1, (int64_t[]){ 4 }, x, 12));
    REFUSE("a string array element type", gguf_writer_add_arr(&w, "a", GGUF_VT_STRING, x, 1));
    REFUSE("a nested array", gguf_writer_add_arr(&w, "a", GGUF_VT_ARRAY, x, 1));
    REFUSE("a NULL string in a string array", gguf_writer_add_arr_str(&w, "a", (const char *[]){ "x", NULL }, 2));
#undef REFUSE
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "k", "v");
    gguf_writer_add_str(&w, "k", "v");
    T_CHECK(gguf_writer_add_u32(&w, "other", 1) == GGUF_ERR_FORMAT && strstr(w.err, "duplicate key 'k'"),
            "writer errors are sticky and keep the first message [%s]", w.err);
    gguf_writer_free(&w);
    T_CHECK(w.status == 0 && w.n_kv == 0 && w.err[0] == 0, "writer_free leaves an empty builder");
    /* An empty file (no keys, no tensors) is valid. */
    gguf_file g;
    int rc = gguf_writer_finish(&w, &buf, &len);
    T_CHECK(rc == 0 && len == 24 && gguf_open_mem(&g, buf, len) == 0 && g.n_kv == 0 && g.n_tensors == 0,
            "empty builder gives a valid %zu-byte file", len);
    gguf_close(&g);
    free(buf);
}

/* ---- hostile input ------------------------------------------------------------------ */

/* Every prefix of a small valid file is refused cleanly, up to the end of
 * the last tensor's data; from there on (trailing padding) it opens. */
static void test_truncation(const small *s)
{
    int bad = 0;
    for (size_t n = 0; n < s->len; n++) {
        gguf_file g;
        uint8_t *copy = dup_bytes(s->buf, n);
        int rc = gguf_open_mem(&g, copy, n);
        int want_ok = n >= s->need;
        if (want_ok ? rc != 0 : (rc != GGUF_ERR_FORMAT || strncmp(g.err, "gguf: ", 6) != 0)) {
            if (bad++ < 5) T_NOTE("prefix %zu: rc %d [%s]", n, rc, g.err);
        }
        gguf_close(&g);
        free(copy);
    }
    T_CHECK(bad == 0, "truncated at every one of %zu prefixes: refused below %zu bytes, opens from there (%d wrong)",
            s->len, s->need, bad);
}

static void test_header_attacks(void)
{
    raw r;
    raw_header(&r, 3, 0, 0);
    memcpy(r.b, "GGUG", 4);
    expect_bad(r.b, r.n, "bad magic", "wrong magic");
    expect_bad((const uint8_t *)"GGU", 3, "bad magic", "3-byte file");
    raw_header(&r, 1, 0, 0);
    expect_bad(r.b, r.n, "version 1 is not supported", "version 1");
    raw_header(&r, 4, 0, 0);
    expect_bad(r.b, r.n, "unsupported GGUF version 4", "version 4");
    raw_header(&r, 0, 0, 0);
    expect_bad(r.b, r.n, "unsupported GGUF version 0", "version 0");
    raw_header(&r, 0x03000000u, 0, 0);
    expect_bad(r.b, r.n, "big-endian", "big-endian v3 file");
    raw_header(&r, 2, 0, 0);
    {
        gguf_file g;
        T_CHECK(gguf_open_mem(&g, r.b, r.n) == 0 && g.version == 2, "a v2 header with nothing else opens");
        gguf_close(&g);
    }

    raw_header(&r, 3, 0, 1ull << 63);
    expect_bad(r.b, r.n, "n_kv 9223372036854775808 too large", "n_kv = 2^63");
    raw_header(&r, 3, 0, UINT64_MAX);
    expect_bad(r.b, r.n, "n_kv", "n_kv = 2^64-1");
    raw_header(&r, 3, 1ull << 63, 0);
    expect_bad(r.b, r.n, "n_tensors", "n_tensors = 2^63");
    raw_header(&r, 3, UINT64_MAX / sizeof(gguf_tensor) + 1, 0);
    expect_bad(r.b, r.n, "n_tensors", "regression: n_tensors * sizeof(gguf_tensor) wraps");
    raw_header(&r, 3, 0, 1);
    raw_pad(&r, 12);
    expect_bad(r.b, r.n, "n_kv 1 too large", "n_kv 1 with 12 bytes left (below the minimal kv)");
    raw_header(&r, 3, 0, 2);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_VT_U8);
    raw_pad(&r, 1);
    raw_pad(&r, 12);
    expect_bad(r.b, r.n, "key '': truncated u8 value", "n_kv one more than present");

    /* Lying string and array lengths. */
    raw_header(&r, 3, 0, 1);
    raw_u64(&r, 1ull << 63);
    raw_pad(&r, 8);
    expect_bad(r.b, r.n, "key #0: name length 9223372036854775808", "key length 2^63");
    raw_header(&r, 3, 0, 1);
    raw_u64(&r, 10);
    raw_pad(&r, 9);
    expect_bad(r.b, r.n, "key #0: name length 10 exceeds the 9 bytes left", "key length one byte past the end");

    raw_header(&r, 3, 0, 1);
    raw_str(&r, "s");
    raw_u32(&r, GGUF_VT_STRING);
    raw_u64(&r, UINT64_MAX);
    expect_bad(r.b, r.n, "key 's': string length 18446744073709551615", "string value length 2^64-1");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "s");
    raw_u32(&r, GGUF_VT_STRING);
    raw_u64(&r, 4);
    raw_pad(&r, 3);
    expect_bad(r.b, r.n, "string length 4 exceeds the 3 bytes left", "string value one byte short");

    raw_header(&r, 3, 0, 1);
    raw_str(&r, "a");
    raw_u32(&r, GGUF_VT_ARRAY);
    raw_u32(&r, GGUF_VT_U8);
    raw_u64(&r, 1ull << 63);
    raw_pad(&r, 16);
    expect_bad(r.b, r.n, "key 'a': array of 9223372036854775808 u8", "u8 array n = 2^63");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "a");
    raw_u32(&r, GGUF_VT_ARRAY);
    raw_u32(&r, GGUF_VT_U64);
    raw_u64(&r, 1ull << 61);
    raw_pad(&r, 16);
    expect_bad(r.b, r.n, "array of 2305843009213693952 u64", "regression: u64 array n = 2^61 (n * 8 wraps to 0)");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "a");
    raw_u32(&r, GGUF_VT_ARRAY);
    raw_u32(&r, GGUF_VT_STRING);
    raw_u64(&r, 1ull << 62);
    raw_pad(&r, 16);
    expect_bad(r.b, r.n, "array of 4611686018427387904 strings", "regression: string array n = 2^62 (n * 8 wraps)");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "a");
    raw_u32(&r, GGUF_VT_ARRAY);
    raw_u32(&r, GGUF_VT_STRING);
    raw_u64(&r, 2);
    raw_str(&r, "ok");
    raw_u64(&r, 1ull << 63);
    raw_pad(&r, 4);
    expect_bad(r.b, r.n, "string #1 of the array: length 9223372036854775808", "string array element length 2^63");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "a");
    raw_u32(&r, GGUF_VT_ARRAY);
    raw_u32(&r, GGUF_VT_ARRAY);
    raw_u64(&r, 1);
    raw_u32(&r, GGUF_VT_U8);
    raw_u64(&r, 1);
    raw_pad(&r, 1);
    expect_bad(r.b, r.n, "key 'a': nested arrays are not supported", "nested array");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "a");
    raw_u32(&r, GGUF_VT_ARRAY);
    raw_u32(&r, 13);
    raw_u64(&r, 1);
    raw_pad(&r, 8);
    expect_bad(r.b, r.n, "unknown array element type 13", "array element type 13");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "v");
    raw_u32(&r, 0xffffffffu);
    raw_pad(&r, 8);
    expect_bad(r.b, r.n, "key 'v': unknown value type 4294967295", "value type 2^32-1");
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "v");
    raw_u32(&r, GGUF_VT_U64);
    raw_pad(&r, 7);
    expect_bad(r.b, r.n, "key 'v': truncated u64 value", "u64 value one byte short");

    /* Tensor info with a lying name length. */
    raw_header(&r, 3, 1, 0);
    raw_u64(&r, 1ull << 63);
    raw_pad(&r, 40);
    expect_bad(r.b, r.n, "tensor #0: name length 9223372036854775808", "tensor name length 2^63");

    /* A valid tensor whose data section would start past the file. */
    raw_header(&r, 3, 1, 1);
    raw_str(&r, "general.alignment");
    raw_u32(&r, GGUF_VT_U32);
    raw_u32(&r, 1u << 31);
    raw_str(&r, "t");
    raw_u32(&r, 1);
    raw_u64(&r, 1);
    raw_u32(&r, KERN_F32);
    raw_u64(&r, 0);
    raw_pad(&r, 4);
    expect_bad(r.b, r.n, "data section start 2147483648 beyond end of file", "alignment 2^31: data section beyond the file");
    /* The same with alignment 32: the data section starts at 96, past the
     * 94-byte file (no padding written); with the padding and data it opens. */
    put32(r.b + 24 + 8 + 17 + 4, 32);
    expect_bad(r.b, r.n, "data section start 96 beyond end of file (94 bytes)", "missing padding before the data section");
    {
        gguf_file g;
        raw_pad(&r, 6);
        int rc = gguf_open_mem(&g, r.b, r.n);
        T_CHECK(rc == 0 && g.data_offset == 96 && g.tensors[0].data == r.b + 96,
                "hand-made file with padding and data opens [%s]", g.err);
        gguf_close(&g);
    }

    /* Names in messages are cut, never overflow err. */
    raw_header(&r, 3, 0, 2);
    char longkey[1001];
    memset(longkey, 'k', 1000);
    longkey[1000] = 0;
    raw_str(&r, longkey);
    raw_u32(&r, GGUF_VT_U8);
    raw_pad(&r, 1);
    raw_str(&r, longkey);
    raw_u32(&r, GGUF_VT_U8);
    raw_pad(&r, 1);
    expect_bad(r.b, r.n, "duplicate key 'kkkkkkkk", "duplicate 1000-byte keys (message cut to fit)");
}

/* Mutations of the small valid file. */
static void test_mutations(const small *s)
{
    uint8_t *m;
    char want[256];
    size_t al = key_type_pos(s, "general.alignment");
    size_t a_nd = tensor_ndims_pos(s, "a.weight"), a_ty = tensor_type_pos(s, "a.weight");
    size_t b_ty = tensor_type_pos(s, "b.weight"), c_ty = tensor_type_pos(s, "c.weight");
    const gguf_tensor *c = gguf_find_tensor(&s->g, "c.weight");
#define MUTATE(what, substr, code) do { m = dup_bytes(s->buf, s->len); code; \
        expect_bad(m, s->len, substr, what); free(m); } while (0)

    MUTATE("wrong magic", "bad magic", m[0] = 'g');
    MUTATE("version 1", "version 1", put32(m + 4, 1));
    MUTATE("version 4", "version 4", put32(m + 4, 4));
    MUTATE("n_tensors one more than present", "tensor", put64(m + 8, s->g.n_tensors + 1));
    MUTATE("n_kv one more than present", "gguf: ", put64(m + 16, s->g.n_kv + 1));
    MUTATE("duplicate keys", "duplicate key 'dup.x'", m[key_len_pos(s, "dup.y") + 8 + 4] = 'x');
    MUTATE("duplicate tensor names", "duplicate tensor name 'a.weight'",
           m[tensor_ndims_pos(s, "b.weight") - 8] = 'a');
    MUTATE("nested array", "key 'tokenizer.ggml.token_type': nested arrays",
           put32(m + key_type_pos(s, "tokenizer.ggml.token_type") + 4, GGUF_VT_ARRAY));
    MUTATE("unknown array element type", "unknown array element type 13",
           put32(m + key_type_pos(s, "tokenizer.ggml.token_type") + 4, 13));
    MUTATE("unknown value type", "key 'flag': unknown value type 13", put32(m + key_type_pos(s, "flag"), 13));

    MUTATE("alignment 0", "'general.alignment': 0 is not a power of two", put32(m + al + 4, 0));
    MUTATE("alignment 3", "'general.alignment': 3 is not a power of two", put32(m + al + 4, 3));
    MUTATE("alignment typed i32", "'general.alignment': type i32, expected u32", put32(m + al, GGUF_VT_I32));
    MUTATE("alignment 2^31", "not a multiple of the alignment 2147483648", put32(m + al + 4, 1u << 31));
    MUTATE("alignment raised to 64 after writing (misaligned offsets)", "not a multiple of the alignment 64",
           put32(m + al + 4, 64));

    MUTATE("unknown tensor type 4 (removed Q4_2)", "tensor 'a.weight': unknown tensor type 4", put32(m + a_ty, 4));
    MUTATE("unknown tensor type 39", "unknown tensor type 39", put32(m + a_ty, 39));
    MUTATE("unknown tensor type 40 (past the table)", "unknown tensor type 40", put32(m + a_ty, 40));
    MUTATE("regression: tensor type 2^32-1 (negative as int)", "unknown tensor type 4294967295",
           put32(m + a_ty, 0xffffffffu));
    MUTATE("n_dims 0", "tensor 'a.weight': n_dims 0 not in 1..4", put32(m + a_nd, 0));
    MUTATE("n_dims 5", "tensor 'a.weight': n_dims 5 not in 1..4", put32(m + a_nd, 5));
    MUTATE("n_dims 2^32-1", "n_dims 4294967295", put32(m + a_nd, 0xffffffffu));
    MUTATE("zero dim", "tensor 'a.weight': ne[1] = 0 out of range", put64(m + a_nd + 4 + 8, 0));
    MUTATE("dim 2^63 (beyond int64)", "ne[0] = 9223372036854775808 out of range", put64(m + a_nd + 4, 1ull << 63));
    MUTATE("dim product overflows int64", "element count overflows int64 at ne[1]",
           put64(m + a_nd + 4, 1ull << 32); put64(m + a_nd + 12, 1ull << 32));
    MUTATE("regression: 2^62 F32 elements (nbytes wraps to 0)", "byte size overflows",
           put64(m + a_nd + 4, 1ull << 62); put64(m + a_nd + 12, 1));
    MUTATE("row length not a multiple of the block size", "ne[0] = 16 is not a multiple of the Q8_0 block size 32",
           put64(m + tensor_ndims_pos(s, "b.weight") + 4, 16); put64(m + tensor_ndims_pos(s, "b.weight") + 12, 4));
    MUTATE("misaligned tensor offset", "tensor 'b.weight': offset", put64(m + b_ty + 4,
           gguf_find_tensor(&s->g, "b.weight")->offset + 16));
    MUTATE("tensor offset 1", "offset 1 not a multiple of the alignment 32", put64(m + b_ty + 4, 1));
    snprintf(want, sizeof want, "gguf: tensor 'c.weight': data [offset %llu, %llu bytes) beyond end of file (%zu bytes)",
             (unsigned long long)(s->g.data_offset + c->offset + 32), (unsigned long long)c->nbytes, s->len);
    MUTATE("data one alignment step past the end (exact message)", want, put64(m + c_ty + 4, c->offset + 32));
    MUTATE("regression: offset near 2^64 (offset + nbytes wraps)", "data offset 18446744073709551584 (from the data section at",
           put64(m + c_ty + 4, UINT64_MAX & ~(uint64_t)31));
    MUTATE("tensor bigger than the file", "tensor 'a.weight': data", put64(m + a_nd + 12, 1000));
#undef MUTATE
}

/* Allocation failures at each of the reader's allocations unwind cleanly. */
static void test_alloc_failures(const small *s)
{
    int n, bad = 0;
    for (n = 1; n < 20; n++) {
        gguf_file g;
        t_alloc_fail_at = n;
        t_alloc_calls = 0;
        int rc = gguf_open_mem(&g, s->buf, s->len);
        if (rc == 0) {
            gguf_close(&g);
            break;
        }
        if (rc != GGUF_ERR_NOMEM || !strstr(g.err, "out of memory")) bad++;
    }
    t_alloc_fail_at = 0;
    T_CHECK(bad == 0 && n == 5, "failing allocation 1..%d of 4: NOMEM each time, then opens", n - 1);
}

/* ---- real files under ../shared/models ---------------------------------------------- */

/* Rebuild an open file through the writer (every kv, every tensor). */
static int rewrite(const gguf_file *g, uint8_t **out, size_t *len, char *err, size_t cap)
{
    gguf_writer w;
    char name[512];
    gguf_writer_init(&w);
    for (uint64_t i = 0; i < g->n_kv; i++) gguf_writer_add_kv(&w, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        gguf_writer_add_tensor(&w, name, t->type, t->n_dims, t->ne, t->data, (size_t)t->nbytes);
    }
    int rc = gguf_writer_finish(&w, out, len);
    snprintf(err, cap, "%s", w.err);
    gguf_writer_free(&w);
    return rc;
}

/* Open one real file and check its structure; returns 1 if it is fine. */
static int check_real_file(const char *path, const char *label)
{
    gguf_file g;
    int rc = gguf_open(&g, path);
    if (!T_CHECK(rc == 0, "%s opens %s", label, g.err)) return 0;
    int ok = 1;
    uint64_t sum = 0, prev_end = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        const uint8_t *d = t->data;
        if (gguf_find_tensor(&g, name) != t) ok = 0;
        if (d < g.base + g.data_offset || d + t->nbytes > g.base + g.size) ok = 0;
        if (((uintptr_t)d % g.alignment) != 0) ok = 0;
        if (t->offset < prev_end) ok = 0;        /* llama.cpp writes tensors in order */
        prev_end = t->offset + t->nbytes;
        if (kern_row_size(t->type, t->ne[0]) * (size_t)(gguf_tensor_nelements(t) / t->ne[0]) != t->nbytes) ok = 0;
        sum += t->nbytes;
    }
    gguf_str arch;
    const gguf_kv *toks;
    if (gguf_get_str(&g, "general.architecture", &arch) < 0) ok = 0;
    if (gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_VT_STRING, &toks) == 0) {
        gguf_str *v = malloc((size_t)toks->v.arr.n * sizeof *v + 1);
        if (gguf_arr_strings(toks, v, toks->v.arr.n) < 0) ok = 0;
        else if (toks->v.arr.n && (const uint8_t *)v[toks->v.arr.n - 1].ptr + v[toks->v.arr.n - 1].len !=
                 toks->v.arr.data + toks->v.arr.nbytes) ok = 0;
        const gguf_kv *sc;
        if (gguf_get_arr(&g, "tokenizer.ggml.scores", GGUF_VT_F32, &sc) == 0 && sc->v.arr.n != toks->v.arr.n) ok = 0;
        free(v);
    }
    T_CHECK(ok, "%s: v%u, %llu keys, %llu tensors (%llu data bytes) all found, inside, aligned, in order",
            label, g.version, (unsigned long long)g.n_kv, (unsigned long long)g.n_tensors,
            (unsigned long long)sum);
    gguf_close(&g);
    return ok;
}

static void test_shared_models(void)
{
    static const char *const dirs[] = { "models/llama", "models/synthetic", "models/vocab" };
    char dir[512], path[1024];
    for (int k = 0; k < 3; k++) {
        if (!t_shared(dir, sizeof dir, dirs[k])) {
            T_SKIP(T_NO_SHARED, "every .gguf under %s opens", dirs[k]);
            continue;
        }
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;
        while (d && (e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 5, ".gguf") != 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            char label[300];
            snprintf(label, sizeof label, "%s/%s", dirs[k], e->d_name);
            check_real_file(path, label);
            n++;
        }
        if (d) closedir(d);
        T_CHECK(n > 0, "%s holds .gguf files (%d)", dirs[k], n);
    }

    /* Known facts of stories260K (see ../shared/models/README.md). */
    gguf_file g;
    if (!t_shared(path, sizeof path, "models/llama/stories260K.gguf")) {
        T_SKIP(T_NO_SHARED, "stories260K metadata and tensors");
        return;
    }
    if (gguf_open(&g, path) == 0) {
        uint32_t u;
        float eps;
        const gguf_kv *toks;
        gguf_str s;
        const gguf_tensor *te = gguf_find_tensor(&g, "token_embd.weight");
        const gguf_tensor *fd = gguf_find_tensor(&g, "blk.4.ffn_down.weight");
        T_CHECK(gguf_get_u32(&g, "llama.block_count", &u) == 0 && u == 5 &&
                gguf_get_u32(&g, "llama.embedding_length", &u) == 0 && u == 64 &&
                gguf_get_u32(&g, "llama.attention.head_count_kv", &u) == 0 && u == 4 &&
                gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &eps) == 0 && eps == 1e-5f &&
                gguf_get_u32(&g, "tokenizer.ggml.bos_token_id", &u) == 0 && u == 1,
                "stories260K: block_count 5, dim 64, kv heads 4, eps 1e-5, bos 1");
        T_CHECK(gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_VT_STRING, &toks) == 0 && toks->v.arr.n == 512 &&
                gguf_get_str(&g, "tokenizer.ggml.model", &s) == 0 && gguf_str_eq(s, "llama"),
                "stories260K: 512 tokens, tokenizer 'llama'");
        T_CHECK(g.n_tensors == 48 && te && te->type == KERN_F32 && te->ne[0] == 64 && te->ne[1] == 512 &&
                fd && fd->ne[0] == 172 && fd->ne[1] == 64 && fd->nbytes == 172 * 64 * 4,
                "stories260K: 48 tensors, token_embd 64x512 F32, ffn_down 172x64");
        gguf_close(&g);
    }

    /* The writer reproduces llama.cpp's files byte for byte. */
    static const char *const same[] = {
        "models/llama/stories260K.gguf", "models/llama/stories260K-Q4_0.gguf",
        "models/llama/llama-2-tiny-random.gguf", "models/synthetic/tiny-llama-256d2l-Q4_K_M.gguf",
        "models/vocab/ggml-vocab-llama-spm.gguf",
    };
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        char err[256] = "";
        if (!t_shared(path, sizeof path, same[k])) {
            T_SKIP(T_NO_SHARED, "rewrite of %s", same[k]);
            continue;
        }
        int rc = gguf_open(&g, path);
        rc = rc < 0 ? rc : rewrite(&g, &buf, &len, err, sizeof err);
        size_t diff = 0;
        if (rc == 0) {
            size_t n = len < g.size ? len : g.size;
            while (diff < n && buf[diff] == g.base[diff]) diff++;
        }
        T_CHECK(rc == 0 && len == g.size && diff == len,
                "writer rewrites %s byte for byte (%zu vs %zu bytes, first difference at %zu) %s",
                same[k], len, g.size, diff, err);
        gguf_close(&g);
        free(buf);
    }
}

int main(void)
{
    small s;
    test_roundtrip();
    test_alignment_and_files();
    test_writer_refusals();
    int rc = build_small(&s);
    if (!T_CHECK(rc == 0, "small valid file builds and opens (%zu bytes)", rc == 0 ? s.len : 0))
        return t_done();
    test_truncation(&s);
    test_header_attacks();
    test_mutations(&s);
    test_alloc_failures(&s);
    test_shared_models();
    gguf_close(&s.g);
    free(s.buf);
    return t_done();
}
