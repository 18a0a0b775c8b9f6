/* fuzz_gguf.c — libFuzzer entry for the GGUF reader (and the writer).
 *
 * Opens the input with gguf_open_mem, then touches every byte the reader
 * hands out (keys, strings, array elements, tensor data) so the sanitizers
 * see any span that leaves the input, exercises every getter and lookup,
 * and checks one property: every file the reader accepts can be rebuilt by
 * the writer and reopened with the same keys and tensor bytes.
 *
 *     make fuzz && ./build/fuzz/fuzz_gguf -max_total_time=60 /tmp/scratch fuzz/corpus/gguf
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_write.h"

static volatile uint64_t sink;

static uint64_t sum_bytes(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += b[i];
    return s;
}

/* NUL-terminated copy of a view, or NULL if it holds a NUL (not findable by name). */
static char *cstr(gguf_str s)
{
    if (memchr(s.ptr, 0, (size_t)s.len)) return NULL;
    char *c = malloc((size_t)s.len + 1);
    if (!c) return NULL;
    memcpy(c, s.ptr, (size_t)s.len);
    c[s.len] = 0;
    return c;
}

static void touch_kv(const gguf_file *g, const gguf_kv *kv)
{
    uint64_t s = sum_bytes(kv->key.ptr, kv->key.len);
    if (kv->type == GGUF_VT_STRING) s += sum_bytes(kv->v.str.ptr, kv->v.str.len);
    if (kv->type == GGUF_VT_ARRAY) {
        s += sum_bytes(kv->v.arr.data, kv->v.arr.nbytes);
        if (kv->v.arr.type == GGUF_VT_STRING) {
            gguf_str *v = malloc((size_t)kv->v.arr.n * sizeof *v + 1);
            if (v && gguf_arr_strings(kv, v, kv->v.arr.n) == 0)
                for (uint64_t i = 0; i < kv->v.arr.n; i++) s += sum_bytes(v[i].ptr, v[i].len);
            free(v);
        } else {
            for (uint64_t i = 0; i < kv->v.arr.n; i++) {
                float f = gguf_arr_f32(kv, i);   /* bits, not a conversion: may be NaN */
                uint32_t fb;
                memcpy(&fb, &f, 4);
                s += (uint64_t)gguf_arr_int(kv, i) + fb;
            }
        }
    }
    char *key = cstr(kv->key);
    if (key) {
        uint32_t u32; int32_t i32; uint64_t u64; float f; int b; gguf_str str; const gguf_kv *a;
        if (gguf_find(g, key) != kv) __builtin_trap();
        s += (uint64_t)gguf_get_u32(g, key, &u32) + (uint64_t)gguf_get_i32(g, key, &i32) +
             (uint64_t)gguf_get_u64(g, key, &u64) + (uint64_t)gguf_get_f32(g, key, &f) +
             (uint64_t)gguf_get_bool(g, key, &b) + (uint64_t)gguf_get_str(g, key, &str) +
             (uint64_t)gguf_get_arr(g, key, -1, &a);
        free(key);
    }
    sink += s;
}

/* Rebuild the file with the writer and check the copy. */
static void rewrite_and_compare(const gguf_file *g)
{
    gguf_writer w;
    gguf_file h;
    uint8_t *buf;
    size_t len;
    gguf_writer_init(&w);
    for (uint64_t i = 0; i < g->n_kv; i++) gguf_writer_add_kv(&w, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char *name = cstr(t->name);
        if (!name) {                       /* not expressible through the writer's API */
            gguf_writer_free(&w);
            return;
        }
        gguf_writer_add_tensor(&w, name, t->type, t->n_dims, t->ne, t->data, (size_t)t->nbytes);
        free(name);
    }
    if (gguf_writer_finish(&w, &buf, &len) < 0) __builtin_trap();
    gguf_writer_free(&w);
    if (gguf_open_mem(&h, buf, len) < 0 || h.n_kv != g->n_kv || h.n_tensors != g->n_tensors ||
        h.alignment != g->alignment)
        __builtin_trap();
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (h.tensors[i].nbytes != g->tensors[i].nbytes ||
            memcmp(h.tensors[i].data, g->tensors[i].data, (size_t)g->tensors[i].nbytes) != 0)
            __builtin_trap();
    gguf_close(&h);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file g;
    if (gguf_open_mem(&g, data, size) < 0) {
        if (strncmp(g.err, "gguf: ", 6) != 0) __builtin_trap();   /* every failure says why */
        return 0;
    }
    for (uint64_t i = 0; i < g.n_kv; i++) touch_kv(&g, &g.kv[i]);
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        char *name = cstr(t->name);
        if (name && gguf_find_tensor(&g, name) != t) __builtin_trap();
        free(name);
        sink += sum_bytes(t->data, t->nbytes) + (uint64_t)gguf_tensor_nelements(t);
    }
    rewrite_and_compare(&g);
    gguf_close(&g);
    return 0;
}
