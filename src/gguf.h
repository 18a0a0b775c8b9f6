/* gguf.h — read-only, memory-mapped GGUF v2/v3 reader.
 *
 * The file is hostile input: gguf_open validates every count, length,
 * offset and type before anything is exposed, and on failure returns a
 * negative gguf_err with a message naming the offending field in g->err,
 * e.g. "gguf: tensor 'blk.0.attn_q.weight': data [offset 123, 456 bytes)
 * beyond end of file (789 bytes)".
 * Nothing in the file is copied: strings, arrays and tensor data are views
 * into the mapping, valid until gguf_close().
 *
 * Accepted: GGUF v2 and v3, little-endian (v1 and big-endian files are
 * refused with a message saying so). Validated at open: magic, version,
 * every count against the bytes left, every string, key uniqueness, value
 * and array element types (nested arrays refused), general.alignment (u32,
 * power of two), tensor n_dims 1..4, dims >= 1 without int64 overflow,
 * tensor type known to kern_type_traits(), ne[0] a multiple of the block
 * size, offsets aligned, data inside the file, tensor names unique.
 *
 * Usage:
 *     gguf_file g;
 *     if (gguf_open(&g, "model.gguf") < 0) { fprintf(stderr, "%s\n", g.err); ... }
 *     uint32_t n_layer;
 *     if (gguf_get_u32(&g, "llama.block_count", &n_layer) < 0) ...
 *     const gguf_tensor *t = gguf_find_tensor(&g, "token_embd.weight");
 *     gguf_close(&g);
 *
 * The mapping is MAP_PRIVATE and read-only; like any mmap, it assumes the
 * file is not truncated while open (reading a truncated page is SIGBUS).
 *
 * Thread safety: after a successful open, every function except gguf_close
 * only reads *g and may be called from several threads.
 */
#ifndef MOTE_GGUF_H
#define MOTE_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_err {
    GGUF_OK = 0,
    GGUF_ERR_IO = -1,       /* open/stat/mmap failed */
    GGUF_ERR_FORMAT = -2,   /* malformed or lying file (or bad writer input) */
    GGUF_ERR_NOMEM = -3,
    GGUF_ERR_MISSING = -4,  /* key/tensor not present (getters) */
    GGUF_ERR_TYPE = -5      /* key present with an incompatible type */
};

/* Metadata value types (GGUF spec numbering). */
enum gguf_vtype {
    GGUF_VT_U8 = 0, GGUF_VT_I8 = 1, GGUF_VT_U16 = 2, GGUF_VT_I16 = 3,
    GGUF_VT_U32 = 4, GGUF_VT_I32 = 5, GGUF_VT_F32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_U64 = 10, GGUF_VT_I64 = 11,
    GGUF_VT_F64 = 12,
    GGUF_VT_COUNT = 13
};

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32

/* A string view into the mapping: NOT NUL-terminated, may contain any byte. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    int type;                     /* enum gguf_vtype */
    union {
        uint64_t u64;             /* any unsigned integer type; BOOL as 0/1 */
        int64_t i64;              /* any signed integer type */
        double f64;               /* F32 (exactly) or F64 */
        gguf_str str;
        struct {
            int type;             /* element type (never ARRAY: nested arrays are refused) */
            uint64_t n;           /* element count */
            const uint8_t *data;  /* first element in the mapping (unaligned; read with memcpy
                                     or the gguf_arr_* helpers) */
            uint64_t nbytes;      /* bytes spanned by all elements (strings: with their
                                     8-byte length prefixes) */
        } arr;
    } v;
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    gguf_str name;
    int n_dims;                   /* 1..GGUF_MAX_DIMS */
    int64_t ne[GGUF_MAX_DIMS];    /* ne[0] = row length (elements); unused dims are 1 */
    int type;                     /* enum kern_type (GGUF tensor type id) */
    uint64_t offset;              /* relative to the data section */
    uint64_t nbytes;
    const void *data;             /* view into the mapping; aligned to g->alignment when the
                                     mapping is (always for gguf_open; for gguf_open_mem when
                                     the caller's buffer is) */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *base;          /* mapping (or caller buffer for gguf_open_mem) */
    size_t size;
    int mapped;                   /* 1 if base must be munmap'ed */
    uint32_t version;             /* 2 or 3 */
    uint64_t n_kv;
    gguf_kv *kv;                  /* n_kv entries in file order, owned */
    uint64_t n_tensors;
    gguf_tensor *tensors;         /* n_tensors entries in file order, owned */
    uint64_t alignment;           /* general.alignment or GGUF_DEFAULT_ALIGNMENT */
    uint64_t data_offset;         /* start of the tensor data section (aligned; may equal or,
                                     when n_tensors == 0, exceed size) */
    /* private: open-addressing name indexes (slot = index + 1, 0 = empty) */
    size_t *kv_index, kv_index_cap;
    size_t *tensor_index, tensor_index_cap;
    char err[256];                /* message of the last failure ("" after success) */
} gguf_file;

/* Map and validate a file. 0 on success, negative gguf_err otherwise (g->err
 * says why; g needs no gguf_close after a failure, but it is harmless). */
int gguf_open(gguf_file *g, const char *path);

/* The same on a caller-owned buffer (kept alive and unchanged until
 * gguf_close). Tensor data is aligned only as well as buf is. */
int gguf_open_mem(gguf_file *g, const void *buf, size_t len);

/* Free the indexes and unmap. Leaves g zeroed (closing twice is harmless). */
void gguf_close(gguf_file *g);

/* Lookup by key (NUL-terminated); NULL when absent. */
const gguf_kv *gguf_find(const gguf_file *g, const char *key);

/* Typed getters: 0, GGUF_ERR_MISSING, or GGUF_ERR_TYPE (also when an integer
 * does not fit the requested type). Integer getters accept any integer type
 * (not BOOL) whose value fits; gguf_get_f32 accepts F32/F64 and integers;
 * gguf_get_bool accepts BOOL only. *out is written only on success. */
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
int gguf_get_i32(const gguf_file *g, const char *key, int32_t *out);
int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out);
int gguf_get_f32(const gguf_file *g, const char *key, float *out);
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* Array whose elements have type elem_type (any element type if elem_type
 * < 0): *out = the kv (see its v.arr fields). */
int gguf_get_arr(const gguf_file *g, const char *key, int elem_type, const gguf_kv **out);

/* Array element access (elements validated at open).
 * gguf_arr_strings walks a string array in order and fills out[0..n-1] with
 * views of its first n elements: 0, GGUF_ERR_TYPE if kv is not a string
 * array, GGUF_ERR_FORMAT if n > arr.n. O(n); call once and keep the views. */
int gguf_arr_strings(const gguf_kv *kv, gguf_str *out, uint64_t n);
/* Element i of an F32 or F64 array; 0 if i >= arr.n or another type. */
float gguf_arr_f32(const gguf_kv *kv, uint64_t i);
/* Element i of an integer or BOOL array (U64 above INT64_MAX wraps);
 * 0 if i >= arr.n or another type. */
int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i);

/* 1 if the view equals the C string byte for byte, else 0. */
int gguf_str_eq(gguf_str s, const char *cstr);

/* Tensor by name (NUL-terminated); NULL when absent. */
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* ne[0] * ne[1] * ne[2] * ne[3] (checked at open not to overflow). */
int64_t gguf_tensor_nelements(const gguf_tensor *t);

/* "u32", "string", "array", ... ; "?" for an unknown type number. */
const char *gguf_vtype_name(int type);

#endif
