/* gguf_write.c — in-memory GGUF v3 builder (see gguf_write.h; the layout is
 * described at the top of gguf.c).
 *
 * Keys are serialized as they are added (their section needs no offsets);
 * tensor infos and data are kept apart and laid out by gguf_writer_finish,
 * because the alignment of the data section is known only at the end.
 *
 * Sections:  growth and errors  ->  key/values  ->  tensors  ->  output.
 */
#include "gguf_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kernels.h"

struct gguf_writer_tensor {
    char *name;                  /* owned, NUL-terminated */
    size_t name_len;
    int type;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    size_t data_pos;             /* into w->data */
    size_t nbytes;
};

/* ---- growth and errors -------------------------------------------------------- */

static int werr(gguf_writer *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int werr(gguf_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    if (w->status) return w->status;            /* keep the first error */
    int n = snprintf(w->err, sizeof w->err, "gguf_writer: ");
    va_start(ap, fmt);
    vsnprintf(w->err + n, sizeof w->err - (size_t)n, fmt, ap);
    va_end(ap);
    w->status = code;
    return code;
}

/* I/O failures of write_file are not sticky: the builder stays usable. */
static int werr_io(gguf_writer *w, const char *path, const char *what, int e)
{
    snprintf(w->err, sizeof w->err, "gguf_writer: %s: %s%s", path, what, strerror(e));
    return GGUF_ERR_IO;
}

/* Make room for `more` elements of `elsize` bytes in *p (capacity *cap,
 * used `len`), doubling. */
static int grow(gguf_writer *w, void **p, size_t *cap, size_t len, size_t more, size_t elsize)
{
    if (more <= *cap - len) return 0;
    if (more > SIZE_MAX / elsize - len) return werr(w, GGUF_ERR_NOMEM, "size overflow");
    size_t need = len + more, ncap = *cap ? *cap : 64;
    while (ncap < need) ncap = ncap > SIZE_MAX / 2 / elsize ? need : ncap * 2;
    void *np = realloc(*p, ncap * elsize);
    if (!np) return werr(w, GGUF_ERR_NOMEM, "out of memory (%zu bytes)", ncap * elsize);
    *p = np;
    *cap = ncap;
    return 0;
}

static int kv_put(gguf_writer *w, const void *src, size_t n)
{
    if (grow(w, (void **)&w->kv, &w->kv_cap, w->kv_len, n, 1) < 0) return w->status;
    if (n) memcpy(w->kv + w->kv_len, src, n);
    w->kv_len += n;
    return 0;
}

static void store_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void store_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int kv_put_u32(gguf_writer *w, uint32_t v)
{
    uint8_t b[4];
    store_u32(b, v);
    return kv_put(w, b, 4);
}

static int kv_put_u64(gguf_writer *w, uint64_t v)
{
    uint8_t b[8];
    store_u64(b, v);
    return kv_put(w, b, 8);
}

static int kv_put_str(gguf_writer *w, const char *s, size_t len)
{
    if (kv_put_u64(w, len) < 0) return w->status;
    return kv_put(w, s, len);
}

void gguf_writer_init(gguf_writer *w)
{
    memset(w, 0, sizeof *w);
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
}

void gguf_writer_free(gguf_writer *w)
{
    for (uint64_t i = 0; i < w->n_kv; i++) free((void *)w->keys[i].ptr);
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->kv);
    free(w->data);
    gguf_writer_init(w);
}

/* ---- key/values ----------------------------------------------------------------- */

static int key_is(const char *key, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(key, s, len) == 0;
}

/* Check and record the key, then serialize key + type. */
static int kv_begin(gguf_writer *w, const char *key, size_t len, int type)
{
    if (w->status) return w->status;
    if (!key) return werr(w, GGUF_ERR_FORMAT, "NULL key");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (w->keys[i].len == len && memcmp(w->keys[i].ptr, key, len) == 0)
            return werr(w, GGUF_ERR_FORMAT, "duplicate key '%.*s'", (int)(len < 64 ? len : 64), key);
    if (key_is(key, len, "general.alignment") && type != GGUF_VT_U32)
        return werr(w, GGUF_ERR_FORMAT, "key 'general.alignment' must be u32, not %s",
                    gguf_vtype_name(type));
    if (grow(w, (void **)&w->keys, &w->keys_cap, (size_t)w->n_kv, 1, sizeof *w->keys) < 0)
        return w->status;
    char *copy = malloc(len + 1);
    if (!copy) return werr(w, GGUF_ERR_NOMEM, "out of memory for a key");
    memcpy(copy, key, len);
    copy[len] = 0;
    w->keys[w->n_kv].ptr = copy;
    w->keys[w->n_kv].len = len;
    w->n_kv++;
    if (kv_put_str(w, key, len) < 0) return w->status;
    return kv_put_u32(w, (uint32_t)type);
}

/* Little-endian bytes of one scalar of a fixed-size type. */
static size_t scalar_bytes(int type, const void *v, uint8_t out[8])
{
    switch (type) {
    case GGUF_VT_U8: case GGUF_VT_I8:
        memcpy(out, v, 1);
        return 1;
    case GGUF_VT_BOOL:
        out[0] = *(const uint8_t *)v != 0;
        return 1;
    case GGUF_VT_U16: case GGUF_VT_I16: {
        uint16_t x;
        memcpy(&x, v, 2);
        out[0] = (uint8_t)x;
        out[1] = (uint8_t)(x >> 8);
        return 2;
    }
    case GGUF_VT_U32: case GGUF_VT_I32: case GGUF_VT_F32: {
        uint32_t x;
        memcpy(&x, v, 4);
        store_u32(out, x);
        return 4;
    }
    case GGUF_VT_U64: case GGUF_VT_I64: case GGUF_VT_F64: {
        uint64_t x;
        memcpy(&x, v, 8);
        store_u64(out, x);
        return 8;
    }
    default:
        return 0;
    }
}

static int add_scalar(gguf_writer *w, const char *key, int type, const void *v)
{
    uint8_t b[8];
    if (kv_begin(w, key, key ? strlen(key) : 0, type) < 0) return w->status;
    return kv_put(w, b, scalar_bytes(type, v, b));
}

int gguf_writer_add_u8(gguf_writer *w, const char *k, uint8_t v) { return add_scalar(w, k, GGUF_VT_U8, &v); }
int gguf_writer_add_i8(gguf_writer *w, const char *k, int8_t v) { return add_scalar(w, k, GGUF_VT_I8, &v); }
int gguf_writer_add_u16(gguf_writer *w, const char *k, uint16_t v) { return add_scalar(w, k, GGUF_VT_U16, &v); }
int gguf_writer_add_i16(gguf_writer *w, const char *k, int16_t v) { return add_scalar(w, k, GGUF_VT_I16, &v); }
int gguf_writer_add_i32(gguf_writer *w, const char *k, int32_t v) { return add_scalar(w, k, GGUF_VT_I32, &v); }
int gguf_writer_add_u64(gguf_writer *w, const char *k, uint64_t v) { return add_scalar(w, k, GGUF_VT_U64, &v); }
int gguf_writer_add_i64(gguf_writer *w, const char *k, int64_t v) { return add_scalar(w, k, GGUF_VT_I64, &v); }
int gguf_writer_add_f32(gguf_writer *w, const char *k, float v) { return add_scalar(w, k, GGUF_VT_F32, &v); }
int gguf_writer_add_f64(gguf_writer *w, const char *k, double v) { return add_scalar(w, k, GGUF_VT_F64, &v); }

int gguf_writer_add_bool(gguf_writer *w, const char *k, int v)
{
    uint8_t b = v != 0;
    return add_scalar(w, k, GGUF_VT_BOOL, &b);
}

static int set_alignment(gguf_writer *w, uint32_t v)
{
    if (v == 0 || (v & (v - 1)) != 0)
        return werr(w, GGUF_ERR_FORMAT, "general.alignment %u is not a power of two", v);
    w->alignment = v;
    return 0;
}

int gguf_writer_add_u32(gguf_writer *w, const char *k, uint32_t v)
{
    if (k && strcmp(k, "general.alignment") == 0 && !w->status && set_alignment(w, v) < 0)
        return w->status;
    return add_scalar(w, k, GGUF_VT_U32, &v);
}

int gguf_writer_add_strn(gguf_writer *w, const char *key, const char *s, size_t len)
{
    if (kv_begin(w, key, key ? strlen(key) : 0, GGUF_VT_STRING) < 0) return w->status;
    if (!s && len) return werr(w, GGUF_ERR_FORMAT, "key '%s': NULL string", key);
    return kv_put_str(w, s, len);
}

int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s)
{
    return gguf_writer_add_strn(w, key, s ? s : "", s ? strlen(s) : 0);
}

static size_t elem_size(int type)
{
    uint8_t b[8];
    uint64_t zero = 0;
    return scalar_bytes(type, &zero, b);
}

/* Array body after the key: element type, count, raw elements. */
static int arr_put(gguf_writer *w, int type, const void *elems, uint64_t n)
{
    size_t es = elem_size(type);
    uint8_t b[8];
    if (kv_put_u32(w, (uint32_t)type) < 0 || kv_put_u64(w, n) < 0) return w->status;
    if (n > SIZE_MAX / es) return werr(w, GGUF_ERR_NOMEM, "array too large");
    if (grow(w, (void **)&w->kv, &w->kv_cap, w->kv_len, (size_t)n * es, 1) < 0) return w->status;
    for (uint64_t i = 0; i < n; i++)
        kv_put(w, b, scalar_bytes(type, (const uint8_t *)elems + i * es, b));
    return w->status;
}

int gguf_writer_add_arr(gguf_writer *w, const char *key, int elem_type, const void *elems, uint64_t n)
{
    if (w->status) return w->status;
    if (elem_size(elem_type) == 0)
        return werr(w, GGUF_ERR_TYPE, "key '%s': array element type %d is not a fixed-size type",
                    key ? key : "(null)", elem_type);
    if (!elems && n) return werr(w, GGUF_ERR_FORMAT, "key '%s': NULL elements", key ? key : "(null)");
    if (kv_begin(w, key, key ? strlen(key) : 0, GGUF_VT_ARRAY) < 0) return w->status;
    return arr_put(w, elem_type, elems, n);
}

int gguf_writer_add_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    return gguf_writer_add_arr(w, key, GGUF_VT_I32, v, n);
}

int gguf_writer_add_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n)
{
    return gguf_writer_add_arr(w, key, GGUF_VT_F32, v, n);
}

int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *s, uint64_t n)
{
    if (w->status) return w->status;
    if (!s && n) return werr(w, GGUF_ERR_FORMAT, "key '%s': NULL strings", key ? key : "(null)");
    if (kv_begin(w, key, key ? strlen(key) : 0, GGUF_VT_ARRAY) < 0) return w->status;
    if (kv_put_u32(w, GGUF_VT_STRING) < 0 || kv_put_u64(w, n) < 0) return w->status;
    for (uint64_t i = 0; i < n; i++) {
        if (!s[i]) return werr(w, GGUF_ERR_FORMAT, "key '%s': string #%llu is NULL", key,
                               (unsigned long long)i);
        if (kv_put_str(w, s[i], strlen(s[i])) < 0) return w->status;
    }
    return 0;
}

int gguf_writer_add_kv(gguf_writer *w, const gguf_kv *kv)
{
    uint8_t b[8];
    if (w->status) return w->status;
    if (kv->type < 0 || kv->type >= GGUF_VT_COUNT)
        return werr(w, GGUF_ERR_TYPE, "kv of unknown type %d", kv->type);
    if (key_is(kv->key.ptr, kv->key.len, "general.alignment") && kv->type == GGUF_VT_U32 &&
        set_alignment(w, (uint32_t)kv->v.u64) < 0)
        return w->status;
    if (kv_begin(w, kv->key.ptr, (size_t)kv->key.len, kv->type) < 0) return w->status;
    switch (kv->type) {
    case GGUF_VT_STRING:
        return kv_put_str(w, kv->v.str.ptr, (size_t)kv->v.str.len);
    case GGUF_VT_ARRAY:
        /* The reader's element bytes are already in file layout: copy them. */
        if (kv_put_u32(w, (uint32_t)kv->v.arr.type) < 0 || kv_put_u64(w, kv->v.arr.n) < 0)
            return w->status;
        return kv_put(w, kv->v.arr.data, (size_t)kv->v.arr.nbytes);
    case GGUF_VT_F32: {
        float f = (float)kv->v.f64;
        return kv_put(w, b, scalar_bytes(kv->type, &f, b));
    }
    case GGUF_VT_F64:
        return kv_put(w, b, scalar_bytes(kv->type, &kv->v.f64, b));
    default: {
        /* Integers and bool: the low bytes of the 64-bit value. */
        uint64_t u = kv->v.u64;
        return kv_put(w, b, scalar_bytes(kv->type == GGUF_VT_BOOL ? GGUF_VT_U8 : kv->type, &u, b));
    }
    }
}

/* ---- tensors ------------------------------------------------------------------------ */

int gguf_writer_add_tensor(gguf_writer *w, const char *name, int type, int n_dims,
                           const int64_t *ne, const void *data, size_t nbytes)
{
    if (w->status) return w->status;
    if (!name) return werr(w, GGUF_ERR_FORMAT, "NULL tensor name");
    size_t len = strlen(name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return werr(w, GGUF_ERR_FORMAT, "duplicate tensor name '%.64s'", name);
    const kern_traits *tr = kern_type_traits(type);
    if (!tr) return werr(w, GGUF_ERR_FORMAT, "tensor '%.64s': unknown tensor type %d", name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return werr(w, GGUF_ERR_FORMAT, "tensor '%.64s': n_dims %d not in 1..%d", name, n_dims, GGUF_MAX_DIMS);
    int64_t total = 1;
    for (int d = 0; d < n_dims; d++)
        if (ne[d] < 1 || __builtin_mul_overflow(total, ne[d], &total))
            return werr(w, GGUF_ERR_FORMAT, "tensor '%.64s': bad ne[%d] = %lld", name, d, (long long)ne[d]);
    size_t row = kern_row_size(type, ne[0]);
    if (row == 0)
        return werr(w, GGUF_ERR_FORMAT, "tensor '%.64s': row length %lld not a multiple of the %s block size %d",
                    name, (long long)ne[0], tr->name, tr->block_size);
    size_t want = row;
    for (int d = 1; d < n_dims; d++)
        if (__builtin_mul_overflow(want, (size_t)ne[d], &want))
            return werr(w, GGUF_ERR_FORMAT, "tensor '%.64s': byte size overflows", name);
    if (nbytes != want)
        return werr(w, GGUF_ERR_FORMAT, "tensor '%.64s': %zu bytes given, the shape needs %zu", name, nbytes, want);
    if (!data) return werr(w, GGUF_ERR_FORMAT, "tensor '%.64s': NULL data", name);

    if (grow(w, (void **)&w->tensors, &w->tensors_cap, w->n_tensors, 1, sizeof *w->tensors) < 0 ||
        grow(w, (void **)&w->data, &w->data_cap, w->data_len, nbytes, 1) < 0)
        return w->status;
    gguf_writer_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = malloc(len + 1);
    if (!t->name) return werr(w, GGUF_ERR_NOMEM, "out of memory for a tensor name");
    memcpy(t->name, name, len + 1);
    t->name_len = len;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data_pos = w->data_len;
    t->nbytes = nbytes;
    memcpy(w->data + w->data_len, data, nbytes);
    w->data_len += nbytes;
    w->n_tensors++;
    return 0;
}

/* ---- output -------------------------------------------------------------------------- */

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

int gguf_writer_finish(gguf_writer *w, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (w->status) return w->status;
    size_t a = w->alignment;

    /* Sizes: header, keys, tensor infos, padding, data (each tensor padded). */
    size_t info = 0, data = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        info += 8 + w->tensors[i].name_len + 4 + 8 * (size_t)w->tensors[i].n_dims + 4 + 8;
        data += align_up(w->tensors[i].nbytes, a);
    }
    /* No data section without tensors: no padding either (as llama.cpp). */
    size_t data_start = w->n_tensors ? align_up(24 + w->kv_len + info, a) : 24 + w->kv_len;
    size_t total = data_start + data;

    size_t balign = a < 64 ? 64 : a > 4096 ? 4096 : a;
    void *mem = NULL;
    if (posix_memalign(&mem, balign, total ? total : 1) != 0)
        return werr(w, GGUF_ERR_NOMEM, "out of memory for the %zu-byte file", total);
    uint8_t *buf = mem, *p = buf;
    memset(buf, 0, total);

    memcpy(p, GGUF_MAGIC, 4);
    store_u32(p + 4, 3);
    store_u64(p + 8, w->n_tensors);
    store_u64(p + 16, w->n_kv);
    p += 24;
    if (w->kv_len) memcpy(p, w->kv, w->kv_len);
    p += w->kv_len;
    size_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const gguf_writer_tensor *t = &w->tensors[i];
        store_u64(p, t->name_len);
        memcpy(p + 8, t->name, t->name_len);
        p += 8 + t->name_len;
        store_u32(p, (uint32_t)t->n_dims);
        p += 4;
        for (int d = 0; d < t->n_dims; d++, p += 8) store_u64(p, (uint64_t)t->ne[d]);
        store_u32(p, (uint32_t)t->type);
        store_u64(p + 4, off);
        p += 12;
        memcpy(buf + data_start + off, w->data + t->data_pos, t->nbytes);
        off += align_up(t->nbytes, a);
    }
    *out = buf;
    *len = total;
    return 0;
}

int gguf_writer_write_file(gguf_writer *w, const char *path)
{
    uint8_t *buf;
    size_t len, done = 0;
    int rc = gguf_writer_finish(w, &buf, &len);
    if (rc < 0) return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(buf);
        return werr_io(w, path, "", errno);
    }
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            free(buf);
            return werr_io(w, path, "write: ", e);
        }
        done += (size_t)n;
    }
    free(buf);
    if (close(fd) < 0) return werr_io(w, path, "close: ", errno);
    return 0;
}
