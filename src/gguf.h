/* gguf.h — read-only, memory-mapped GGUF v2/v3 reader.
 *
 * The file is hostile input: gguf_open validates every count, length,
 * offset and type before anything is exposed, and on failure returns a
 * negative gguf_err with a message naming the offending field in g->err.
 * Nothing in the file is copied: strings, arrays and tensor data are views
 * into the mapping, valid until gguf_close().
 *
 * Usage:
 *     gguf_file g;
 *     if (gguf_open(&g, "model.gguf") < 0) { fprintf(stderr, "%s\n", g.err); ... }
 *     uint32_t n_layer;
 *     if (gguf_get_u32(&g, "llama.block_count", &n_layer) < 0) ...
 *     const gguf_tensor *t = gguf_find_tensor(&g, "token_embd.weight");
 *     gguf_close(&g);
 */
#ifndef MOTE_GGUF_H
#define MOTE_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_err {
    GGUF_OK = 0,
    GGUF_ERR_IO = -1,       /* open/stat/mmap failed */
    GGUF_ERR_FORMAT = -2,   /* malformed or lying file */
    GGUF_ERR_NOMEM = -3,
    GGUF_ERR_MISSING = -4,  /* key/tensor not present (getters) */
    GGUF_ERR_TYPE = -5      /* key present with an incompatible type */
};

/* Metadata value types (GGUF spec numbering). */
enum gguf_vtype {
    GGUF_VT_U8 = 0, GGUF_VT_I8 = 1, GGUF_VT_U16 = 2, GGUF_VT_I16 = 3,
    GGUF_VT_U32 = 4, GGUF_VT_I32 = 5, GGUF_VT_F32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_U64 = 10, GGUF_VT_I64 = 11,
    GGUF_VT_F64 = 12
};

/* A string view into the mapping: NOT NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    int type;                     /* enum gguf_vtype */
    union {
        uint64_t u64;             /* any unsigned integer type, and bool */
        int64_t i64;              /* any signed integer type */
        double f64;               /* F32 or F64 */
        gguf_str str;
        struct {
            int type;             /* element type (never ARRAY: nested arrays are refused) */
            uint64_t n;           /* element count */
            const uint8_t *data;  /* first element in the mapping (unaligned; read with memcpy) */
            uint64_t nbytes;      /* bytes spanned by all elements */
        } arr;
    } v;
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    gguf_str name;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];    /* ne[0] = row length (elements); unused dims are 1 */
    int type;                     /* enum kern_type (GGUF tensor type id) */
    uint64_t offset;              /* relative to the data section */
    uint64_t nbytes;
    const void *data;             /* view into the mapping, aligned as the file says */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *base;          /* mapping (or caller buffer for gguf_open_mem) */
    size_t size;
    int mapped;                   /* 1 if base must be munmap'ed */
    uint32_t version;             /* 2 or 3 */
    uint64_t n_kv;
    gguf_kv *kv;                  /* n_kv entries, owned */
    uint64_t n_tensors;
    gguf_tensor *tensors;         /* n_tensors entries, owned */
    uint64_t alignment;           /* general.alignment or 32 */
    uint64_t data_offset;         /* start of the tensor data section */
    char err[256];                /* message of the last failure */
} gguf_file;

/* Map and validate a file. 0 on success, negative gguf_err otherwise (g->err
 * says why; g needs no gguf_close after a failure, but it is harmless). */
int gguf_open(gguf_file *g, const char *path);

/* The same on a caller-owned buffer (kept alive until gguf_close). */
int gguf_open_mem(gguf_file *g, const void *buf, size_t len);

void gguf_close(gguf_file *g);

/* Lookup by key (NUL-terminated); NULL when absent. */
const gguf_kv *gguf_find(const gguf_file *g, const char *key);

/* Typed getters: 0, GGUF_ERR_MISSING, or GGUF_ERR_TYPE (also when an integer
 * does not fit the requested type). Integer getters accept any integer type
 * whose value fits; gguf_get_f32 accepts F32/F64 and integers. */
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
int gguf_get_i32(const gguf_file *g, const char *key, int32_t *out);
int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out);
int gguf_get_f32(const gguf_file *g, const char *key, float *out);
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* Array of any element type: the kv's arr fields. */
int gguf_get_arr(const gguf_file *g, const char *key, int elem_type, const gguf_kv **out);

/* Array element access (elements validated at open). For string arrays, use
 * gguf_arr_strings to walk them in order: fills out[0..n-1] (n = arr.n). */
int gguf_arr_strings(const gguf_kv *kv, gguf_str *out, uint64_t n);
float gguf_arr_f32(const gguf_kv *kv, uint64_t i);      /* F32 arrays */
int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i);    /* any integer element type */

/* Compare a view to a C string. */
int gguf_str_eq(gguf_str s, const char *cstr);

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

#endif
