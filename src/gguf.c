/* gguf.c — GGUF v2/v3 reader: map, validate as hostile input, expose views.
 *
 * Layout of a GGUF file (all little-endian, no padding unless stated):
 *     "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *     n_kv x      { str key, u32 vtype, value }
 *     n_tensors x { str name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *     padding to `alignment`, then the data section; tensor i's bytes are at
 *     data_offset + offset_i (offset_i a multiple of `alignment`).
 * where str = { u64 len, len bytes } and an array value = { u32 elem_type,
 * u64 n, n elements }. v2 and v3 share this layout (v3 only allowed
 * big-endian files, which we refuse; v1 had 32-bit counts).
 *
 * Sections:  cursor  ->  header  ->  key/values  ->  tensor infos  ->
 *            name indexes  ->  open/close  ->  lookups and getters.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/kernels.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mote reads GGUF tensor data in place and needs a little-endian host"
#endif

/* Allocation hook: white-box tests define it to inject failures. */
#ifndef GGUF_CALLOC
#define GGUF_CALLOC calloc
#endif

/* Names in error messages are cut to this many bytes (err has 256). */
#define NAME_MAX_SHOWN 64

/* Smallest encodings, used to bound counts by the bytes left before any
 * allocation: a kv is key length + type + a 1-byte value; a tensor info is
 * name length + n_dims + one dim + type + offset. */
#define KV_MIN_BYTES 13u
#define TENSOR_MIN_BYTES 32u

static int fail(gguf_file *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(gguf_file *g, int code, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(g->err, sizeof g->err, "gguf: ");
    va_start(ap, fmt);
    vsnprintf(g->err + n, sizeof g->err - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

/* Printable (length, pointer) of a view for "%.*s", cut to NAME_MAX_SHOWN. */
#define SHOW(s) (int)((s).len < NAME_MAX_SHOWN ? (s).len : NAME_MAX_SHOWN), (s).ptr

/* ---- cursor over the file ---------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t size;
    size_t pos;               /* invariant: pos <= size */
} cursor;

static size_t cur_left(const cursor *c) { return c->size - c->pos; }

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_u64(const uint8_t *p)
{
    return (uint64_t)load_u32(p) | (uint64_t)load_u32(p + 4) << 32;
}

/* Each reader returns 0, or -1 when fewer bytes than needed are left (the
 * caller names the field in its message). */
static int cur_u32(cursor *c, uint32_t *v)
{
    if (cur_left(c) < 4) return -1;
    *v = load_u32(c->p + c->pos);
    c->pos += 4;
    return 0;
}

static int cur_u64(cursor *c, uint64_t *v)
{
    if (cur_left(c) < 8) return -1;
    *v = load_u64(c->p + c->pos);
    c->pos += 8;
    return 0;
}

/* A length-prefixed string. On a length beyond the bytes left, *len_out
 * holds the lying length for the message. */
static int cur_str(cursor *c, gguf_str *s, uint64_t *len_out)
{
    uint64_t len;
    *len_out = 0;
    if (cur_u64(c, &len) < 0) return -1;
    *len_out = len;
    if (len > cur_left(c)) return -1;
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return 0;
}

/* ---- value types ----------------------------------------------------------- */

/* Bytes of one scalar of type t; 0 for STRING/ARRAY/unknown. */
static size_t vtype_size(int t)
{
    switch (t) {
    case GGUF_VT_U8: case GGUF_VT_I8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_U16: case GGUF_VT_I16: return 2;
    case GGUF_VT_U32: case GGUF_VT_I32: case GGUF_VT_F32: return 4;
    case GGUF_VT_U64: case GGUF_VT_I64: case GGUF_VT_F64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(int type)
{
    static const char *const names[GGUF_VT_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
        "string", "array", "u64", "i64", "f64",
    };
    return type >= 0 && type < GGUF_VT_COUNT ? names[type] : "?";
}

static int vtype_is_signed(int t)
{
    return t == GGUF_VT_I8 || t == GGUF_VT_I16 || t == GGUF_VT_I32 || t == GGUF_VT_I64;
}

static int vtype_is_unsigned(int t)
{
    return t == GGUF_VT_U8 || t == GGUF_VT_U16 || t == GGUF_VT_U32 || t == GGUF_VT_U64;
}

/* Decode one little-endian scalar of type t at p into kv->v. */
static void scalar_decode(int t, const uint8_t *p, gguf_kv *kv)
{
    uint32_t u32;
    uint64_t u64;
    float f;
    switch (t) {
    case GGUF_VT_U8: kv->v.u64 = p[0]; break;
    case GGUF_VT_BOOL: kv->v.u64 = p[0] != 0; break;
    case GGUF_VT_I8: kv->v.i64 = (int8_t)p[0]; break;
    case GGUF_VT_U16: kv->v.u64 = (uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_VT_I16: kv->v.i64 = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_VT_U32: kv->v.u64 = load_u32(p); break;
    case GGUF_VT_I32: kv->v.i64 = (int32_t)load_u32(p); break;
    case GGUF_VT_F32: u32 = load_u32(p); memcpy(&f, &u32, 4); kv->v.f64 = f; break;
    case GGUF_VT_U64: kv->v.u64 = load_u64(p); break;
    case GGUF_VT_I64: kv->v.i64 = (int64_t)load_u64(p); break;
    case GGUF_VT_F64: u64 = load_u64(p); memcpy(&kv->v.f64, &u64, 8); break;
    default: break;
    }
}

/* ---- header -------------------------------------------------------------------- */

static int parse_header(gguf_file *g, cursor *c)
{
    uint32_t version, swapped;
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4) != 0)
        return fail(g, GGUF_ERR_FORMAT, "bad magic (not a GGUF file)");
    c->pos = 4;
    if (cur_u32(c, &version) < 0)
        return fail(g, GGUF_ERR_FORMAT, "file truncated in the header (version)");
    swapped = __builtin_bswap32(version);
    if (version == 1)
        return fail(g, GGUF_ERR_FORMAT, "GGUF version 1 is not supported (only v2 and v3)");
    if ((version & 0xffffu) == 0 && swapped >= 1 && swapped <= 3)
        return fail(g, GGUF_ERR_FORMAT,
                    "big-endian GGUF (version %u byte-swapped) is not supported", swapped);
    if (version != 2 && version != 3)
        return fail(g, GGUF_ERR_FORMAT, "unsupported GGUF version %u (only v2 and v3)", version);
    g->version = version;
    if (cur_u64(c, &g->n_tensors) < 0)
        return fail(g, GGUF_ERR_FORMAT, "file truncated in the header (n_tensors)");
    if (cur_u64(c, &g->n_kv) < 0)
        return fail(g, GGUF_ERR_FORMAT, "file truncated in the header (n_kv)");
    /* Bound both counts by the bytes left before allocating anything. */
    if (g->n_kv > cur_left(c) / KV_MIN_BYTES || g->n_kv > SIZE_MAX / sizeof(gguf_kv))
        return fail(g, GGUF_ERR_FORMAT, "n_kv %llu too large for the %zu bytes left",
                    (unsigned long long)g->n_kv, cur_left(c));
    if (g->n_tensors > cur_left(c) / TENSOR_MIN_BYTES || g->n_tensors > SIZE_MAX / sizeof(gguf_tensor))
        return fail(g, GGUF_ERR_FORMAT, "n_tensors %llu too large for the %zu bytes left",
                    (unsigned long long)g->n_tensors, cur_left(c));
    return 0;
}

/* ---- key/values ----------------------------------------------------------------- */

/* Array value of key kv (type and count already known to be readable). */
static int parse_array(gguf_file *g, cursor *c, gguf_kv *kv)
{
    uint32_t et;
    uint64_t n;
    size_t start;
    if (cur_u32(c, &et) < 0)
        return fail(g, GGUF_ERR_FORMAT, "key '%.*s': truncated array element type", SHOW(kv->key));
    if (et == GGUF_VT_ARRAY)
        return fail(g, GGUF_ERR_FORMAT, "key '%.*s': nested arrays are not supported", SHOW(kv->key));
    if (et >= GGUF_VT_COUNT)
        return fail(g, GGUF_ERR_FORMAT, "key '%.*s': unknown array element type %u",
                    SHOW(kv->key), et);
    if (cur_u64(c, &n) < 0)
        return fail(g, GGUF_ERR_FORMAT, "key '%.*s': truncated array length", SHOW(kv->key));
    start = c->pos;
    if (et == GGUF_VT_STRING) {
        /* Each element has at least its 8-byte length; then walk them all. */
        if (n > cur_left(c) / 8)
            return fail(g, GGUF_ERR_FORMAT, "key '%.*s': array of %llu strings exceeds the %zu bytes left",
                        SHOW(kv->key), (unsigned long long)n, cur_left(c));
        for (uint64_t i = 0; i < n; i++) {
            gguf_str s;
            uint64_t len;
            if (cur_str(c, &s, &len) < 0)
                return fail(g, GGUF_ERR_FORMAT,
                            "key '%.*s': string #%llu of the array: length %llu exceeds the %zu bytes left",
                            SHOW(kv->key), (unsigned long long)i, (unsigned long long)len, cur_left(c));
        }
    } else {
        size_t es = vtype_size((int)et);
        if (n > cur_left(c) / es)
            return fail(g, GGUF_ERR_FORMAT, "key '%.*s': array of %llu %s exceeds the %zu bytes left",
                        SHOW(kv->key), (unsigned long long)n, gguf_vtype_name((int)et), cur_left(c));
        c->pos += (size_t)n * es;
    }
    kv->v.arr.type = (int)et;
    kv->v.arr.n = n;
    kv->v.arr.data = c->p + start;
    kv->v.arr.nbytes = c->pos - start;
    return 0;
}

static int parse_kv(gguf_file *g, cursor *c, uint64_t i, gguf_kv *kv)
{
    uint64_t len;
    uint32_t t;
    if (cur_str(c, &kv->key, &len) < 0)
        return fail(g, GGUF_ERR_FORMAT, "key #%llu: name length %llu exceeds the %zu bytes left",
                    (unsigned long long)i, (unsigned long long)len, cur_left(c));
    if (cur_u32(c, &t) < 0)
        return fail(g, GGUF_ERR_FORMAT, "key '%.*s': truncated value type", SHOW(kv->key));
    if (t >= GGUF_VT_COUNT)
        return fail(g, GGUF_ERR_FORMAT, "key '%.*s': unknown value type %u", SHOW(kv->key), t);
    kv->type = (int)t;
    if (t == GGUF_VT_ARRAY) return parse_array(g, c, kv);
    if (t == GGUF_VT_STRING) {
        if (cur_str(c, &kv->v.str, &len) < 0)
            return fail(g, GGUF_ERR_FORMAT, "key '%.*s': string length %llu exceeds the %zu bytes left",
                        SHOW(kv->key), (unsigned long long)len, cur_left(c));
        return 0;
    }
    size_t sz = vtype_size((int)t);
    if (cur_left(c) < sz)
        return fail(g, GGUF_ERR_FORMAT, "key '%.*s': truncated %s value", SHOW(kv->key),
                    gguf_vtype_name((int)t));
    scalar_decode((int)t, c->p + c->pos, kv);
    c->pos += sz;
    return 0;
}

/* ---- name indexes ----------------------------------------------------------------- */

static uint64_t name_hash(const char *p, uint64_t len)
{
    uint64_t h = 1469598103934665603ull;     /* FNV-1a */
    for (uint64_t i = 0; i < len; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The gguf_str at the start of element i (gguf_kv.key, gguf_tensor.name). */
_Static_assert(offsetof(gguf_kv, key) == 0, "index_find returns the kv through its key");
_Static_assert(offsetof(gguf_tensor, name) == 0, "index_find returns the tensor through its name");
static const gguf_str *elem_name(const void *arr, size_t stride, size_t i)
{
    return (const gguf_str *)((const uint8_t *)arr + i * stride);
}

/* Build an index over n names; on a duplicate, *dup = its index and the
 * function returns GGUF_ERR_FORMAT (index freed). */
static int index_build(const void *arr, size_t stride, size_t n,
                       size_t **out, size_t *out_cap, size_t *dup)
{
    size_t cap = 8;
    while (cap < n * 2) cap *= 2;           /* n <= size / 13: cannot overflow */
    size_t *slot = GGUF_CALLOC(cap, sizeof *slot);
    if (!slot) return GGUF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const gguf_str *s = elem_name(arr, stride, i);
        size_t h = (size_t)name_hash(s->ptr, s->len) & (cap - 1);
        while (slot[h]) {
            const gguf_str *o = elem_name(arr, stride, slot[h] - 1);
            if (o->len == s->len && memcmp(o->ptr, s->ptr, (size_t)s->len) == 0) {
                *dup = i;
                free(slot);
                return GGUF_ERR_FORMAT;
            }
            h = (h + 1) & (cap - 1);
        }
        slot[h] = i + 1;
    }
    *out = slot;
    *out_cap = cap;
    return 0;
}

static const void *index_find(const size_t *slot, size_t cap, const void *arr, size_t stride,
                              const char *name)
{
    if (!slot || !name) return NULL;
    size_t len = strlen(name);
    size_t h = (size_t)name_hash(name, len) & (cap - 1);
    while (slot[h]) {
        const gguf_str *o = elem_name(arr, stride, slot[h] - 1);
        if (o->len == len && memcmp(o->ptr, name, len) == 0) return o;
        h = (h + 1) & (cap - 1);
    }
    return NULL;
}

static int parse_kvs(gguf_file *g, cursor *c)
{
    size_t dup = 0;
    int rc;
    g->kv = GGUF_CALLOC(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv);
    if (!g->kv) return fail(g, GGUF_ERR_NOMEM, "out of memory for %llu keys", (unsigned long long)g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if ((rc = parse_kv(g, c, i, &g->kv[i])) < 0) return rc;
    rc = index_build(g->kv, sizeof *g->kv, (size_t)g->n_kv, &g->kv_index, &g->kv_index_cap, &dup);
    if (rc == GGUF_ERR_NOMEM) return fail(g, rc, "out of memory for the key index");
    if (rc < 0) return fail(g, rc, "duplicate key '%.*s'", SHOW(g->kv[dup].key));

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *a = gguf_find(g, "general.alignment");
    if (a) {
        if (a->type != GGUF_VT_U32)
            return fail(g, GGUF_ERR_FORMAT, "key 'general.alignment': type %s, expected u32",
                        gguf_vtype_name(a->type));
        if (a->v.u64 == 0 || (a->v.u64 & (a->v.u64 - 1)) != 0)
            return fail(g, GGUF_ERR_FORMAT, "key 'general.alignment': %llu is not a power of two",
                        (unsigned long long)a->v.u64);
        g->alignment = a->v.u64;
    }
    return 0;
}

/* ---- tensor infos -------------------------------------------------------------------- */

static int parse_tensor_info(gguf_file *g, cursor *c, uint64_t i, gguf_tensor *t)
{
    uint64_t len, dim, nbytes, rows = 1;
    uint32_t n_dims, type;
    if (cur_str(c, &t->name, &len) < 0)
        return fail(g, GGUF_ERR_FORMAT, "tensor #%llu: name length %llu exceeds the %zu bytes left",
                    (unsigned long long)i, (unsigned long long)len, cur_left(c));
    if (cur_u32(c, &n_dims) < 0)
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': truncated n_dims", SHOW(t->name));
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': n_dims %u not in 1..%d",
                    SHOW(t->name), n_dims, GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    int64_t total = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (cur_u64(c, &dim) < 0)
            return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': truncated ne[%u]", SHOW(t->name), d);
        if (dim == 0 || dim > INT64_MAX)
            return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': ne[%u] = %llu out of range",
                        SHOW(t->name), d, (unsigned long long)dim);
        if (__builtin_mul_overflow(total, (int64_t)dim, &total))
            return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': element count overflows int64 at ne[%u]",
                        SHOW(t->name), d);
        t->ne[d] = (int64_t)dim;
    }
    if (cur_u32(c, &type) < 0)
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': truncated type", SHOW(t->name));
    const kern_traits *tr = type < KERN_TYPE_COUNT ? kern_type_traits((int)type) : NULL;
    if (!tr || tr->block_size <= 0 || tr->type_size == 0)
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': unknown tensor type %u",
                    SHOW(t->name), type);
    t->type = (int)type;
    if (t->ne[0] % tr->block_size != 0)
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': row length ne[0] = %lld is not a multiple "
                    "of the %s block size %d", SHOW(t->name), (long long)t->ne[0], tr->name, tr->block_size);
    if (cur_u64(c, &t->offset) < 0)
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': truncated offset", SHOW(t->name));
    if (t->offset % g->alignment != 0)
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': offset %llu not a multiple of the alignment %llu",
                    SHOW(t->name), (unsigned long long)t->offset, (unsigned long long)g->alignment);
    for (int d = 1; d < GGUF_MAX_DIMS; d++) rows *= (uint64_t)t->ne[d];  /* <= total: no overflow */
    uint64_t row_bytes;
    if (__builtin_mul_overflow((uint64_t)(t->ne[0] / tr->block_size), (uint64_t)tr->type_size, &row_bytes) ||
        __builtin_mul_overflow(row_bytes, rows, &nbytes))
        return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': byte size overflows", SHOW(t->name));
    t->nbytes = nbytes;
    return 0;
}

static int parse_tensors(gguf_file *g, cursor *c)
{
    size_t dup = 0;
    int rc;
    g->tensors = GGUF_CALLOC(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors)
        return fail(g, GGUF_ERR_NOMEM, "out of memory for %llu tensors", (unsigned long long)g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((rc = parse_tensor_info(g, c, i, &g->tensors[i])) < 0) return rc;
    rc = index_build(g->tensors, sizeof *g->tensors, (size_t)g->n_tensors,
                     &g->tensor_index, &g->tensor_index_cap, &dup);
    if (rc == GGUF_ERR_NOMEM) return fail(g, rc, "out of memory for the tensor index");
    if (rc < 0) return fail(g, rc, "duplicate tensor name '%.*s'", SHOW(g->tensors[dup].name));

    /* The data section starts at the next multiple of the alignment. pos <=
     * size <= SIZE_MAX and alignment <= 2^32, so this cannot wrap in u64. */
    g->data_offset = ((uint64_t)c->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0 && g->data_offset > g->size)
        return fail(g, GGUF_ERR_FORMAT, "data section start %llu beyond end of file (%zu bytes)",
                    (unsigned long long)g->data_offset, g->size);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        uint64_t room = g->size - g->data_offset;
        uint64_t at;
        if (__builtin_add_overflow(g->data_offset, t->offset, &at))
            return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': data offset %llu (from the data section at %llu) "
                        "beyond end of file (%zu bytes)", SHOW(t->name), (unsigned long long)t->offset,
                        (unsigned long long)g->data_offset, g->size);
        if (t->offset > room || t->nbytes > room - t->offset)
            return fail(g, GGUF_ERR_FORMAT, "tensor '%.*s': data [offset %llu, %llu bytes) beyond end of file "
                        "(%zu bytes)", SHOW(t->name), (unsigned long long)at, (unsigned long long)t->nbytes, g->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    return 0;
}

/* ---- open / close ---------------------------------------------------------------------- */

static int parse_all(gguf_file *g)
{
    cursor c = { g->base, g->size, 0 };
    int rc;
    if ((rc = parse_header(g, &c)) < 0) return rc;
    if ((rc = parse_kvs(g, &c)) < 0) return rc;
    return parse_tensors(g, &c);
}

/* Free everything but keep the error message. */
static void release(gguf_file *g)
{
    char err[sizeof g->err];
    memcpy(err, g->err, sizeof err);
    free(g->kv);
    free(g->tensors);
    free(g->kv_index);
    free(g->tensor_index);
    if (g->mapped && g->base) munmap((void *)g->base, g->size);
    memset(g, 0, sizeof *g);
    memcpy(g->err, err, sizeof err);
}

int gguf_open_mem(gguf_file *g, const void *buf, size_t len)
{
    memset(g, 0, sizeof *g);
    if (!buf && len) return fail(g, GGUF_ERR_IO, "NULL buffer");
    g->base = buf;
    g->size = len;
    int rc = parse_all(g);
    if (rc < 0) release(g);
    return rc;
}

int gguf_open(gguf_file *g, const char *path)
{
    struct stat st;
    void *map;
    memset(g, 0, sizeof *g);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(g, GGUF_ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail(g, GGUF_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(g, GGUF_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return fail(g, GGUF_ERR_IO, "%s: file too large to map", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return fail(g, GGUF_ERR_FORMAT, "%s: empty file", path);
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);                         /* the mapping keeps the file */
    if (map == MAP_FAILED) return fail(g, GGUF_ERR_IO, "%s: mmap: %s", path, strerror(e));
    g->base = map;
    g->size = (size_t)st.st_size;
    g->mapped = 1;
    int rc = parse_all(g);
    if (rc < 0) release(g);
    return rc;
}

void gguf_close(gguf_file *g)
{
    release(g);
    g->err[0] = 0;
}

/* ---- lookups and getters ------------------------------------------------------------------ */

const gguf_kv *gguf_find(const gguf_file *g, const char *key)
{
    return index_find(g->kv_index, g->kv_index_cap, g->kv, sizeof *g->kv, key);
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    return index_find(g->tensor_index, g->tensor_index_cap, g->tensors, sizeof *g->tensors, name);
}

int64_t gguf_tensor_nelements(const gguf_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

int gguf_str_eq(gguf_str s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

/* An integer kv as a signed/unsigned pair: *neg = 1 and *mag = value for a
 * negative signed value, else *neg = 0 and *mag = value. -1 if not integer. */
static int kv_int(const gguf_kv *kv, int *neg, uint64_t *u)
{
    if (vtype_is_unsigned(kv->type)) {
        *neg = 0;
        *u = kv->v.u64;
        return 0;
    }
    if (vtype_is_signed(kv->type)) {
        *neg = kv->v.i64 < 0;
        *u = (uint64_t)kv->v.i64;      /* two's complement when negative */
        return 0;
    }
    return -1;
}

static int get_int(const gguf_file *g, const char *key, int *neg, uint64_t *u)
{
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return GGUF_ERR_MISSING;
    return kv_int(kv, neg, u) < 0 ? GGUF_ERR_TYPE : 0;
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out)
{
    int neg, rc;
    uint64_t u;
    if ((rc = get_int(g, key, &neg, &u)) < 0) return rc;
    if (neg || u > UINT32_MAX) return GGUF_ERR_TYPE;
    *out = (uint32_t)u;
    return 0;
}

int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out)
{
    int neg, rc;
    uint64_t u;
    if ((rc = get_int(g, key, &neg, &u)) < 0) return rc;
    if (neg) return GGUF_ERR_TYPE;
    *out = u;
    return 0;
}

int gguf_get_i32(const gguf_file *g, const char *key, int32_t *out)
{
    int neg, rc;
    uint64_t u;
    if ((rc = get_int(g, key, &neg, &u)) < 0) return rc;
    int64_t v = (int64_t)u;
    if (neg ? v < INT32_MIN : u > INT32_MAX) return GGUF_ERR_TYPE;
    *out = (int32_t)v;
    return 0;
}

int gguf_get_f32(const gguf_file *g, const char *key, float *out)
{
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return GGUF_ERR_MISSING;
    if (kv->type == GGUF_VT_F32 || kv->type == GGUF_VT_F64) *out = (float)kv->v.f64;
    else if (vtype_is_unsigned(kv->type)) *out = (float)kv->v.u64;
    else if (vtype_is_signed(kv->type)) *out = (float)kv->v.i64;
    else return GGUF_ERR_TYPE;
    return 0;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out)
{
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return GGUF_ERR_MISSING;
    if (kv->type != GGUF_VT_BOOL) return GGUF_ERR_TYPE;
    *out = kv->v.u64 != 0;
    return 0;
}

int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out)
{
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return GGUF_ERR_MISSING;
    if (kv->type != GGUF_VT_STRING) return GGUF_ERR_TYPE;
    *out = kv->v.str;
    return 0;
}

int gguf_get_arr(const gguf_file *g, const char *key, int elem_type, const gguf_kv **out)
{
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return GGUF_ERR_MISSING;
    if (kv->type != GGUF_VT_ARRAY || (elem_type >= 0 && kv->v.arr.type != elem_type))
        return GGUF_ERR_TYPE;
    *out = kv;
    return 0;
}

int gguf_arr_strings(const gguf_kv *kv, gguf_str *out, uint64_t n)
{
    if (kv->type != GGUF_VT_ARRAY || kv->v.arr.type != GGUF_VT_STRING) return GGUF_ERR_TYPE;
    if (n > kv->v.arr.n) return GGUF_ERR_FORMAT;
    const uint8_t *p = kv->v.arr.data;         /* lengths validated at open */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = load_u64(p);
        out[i].ptr = (const char *)p + 8;
        out[i].len = len;
        p += 8 + len;
    }
    return 0;
}

float gguf_arr_f32(const gguf_kv *kv, uint64_t i)
{
    if (kv->type != GGUF_VT_ARRAY || i >= kv->v.arr.n) return 0.0f;
    if (kv->v.arr.type != GGUF_VT_F32 && kv->v.arr.type != GGUF_VT_F64) return 0.0f;
    gguf_kv tmp;
    scalar_decode(kv->v.arr.type, kv->v.arr.data + i * vtype_size(kv->v.arr.type), &tmp);
    return (float)tmp.v.f64;
}

int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i)
{
    if (kv->type != GGUF_VT_ARRAY || i >= kv->v.arr.n) return 0;
    int t = kv->v.arr.type;
    if (!vtype_is_signed(t) && !vtype_is_unsigned(t) && t != GGUF_VT_BOOL) return 0;
    gguf_kv tmp;
    scalar_decode(t, kv->v.arr.data + i * vtype_size(t), &tmp);
    return tmp.v.i64;                           /* u64 and i64 share the bits */
}
