/* gguf_write.h — in-memory GGUF v3 builder.
 *
 * Used by tests to build small random-weight models and by `mote --demo` to
 * build a model in memory. Not on any hot path: it allocates as it grows.
 *
 *     gguf_writer w;
 *     gguf_writer_init(&w);
 *     gguf_writer_add_str(&w, "general.architecture", "llama");
 *     gguf_writer_add_u32(&w, "llama.block_count", 2);
 *     int64_t ne[2] = { 64, 512 };
 *     gguf_writer_add_tensor(&w, "token_embd.weight", KERN_F32, 2, ne, data, 64 * 512 * 4);
 *     uint8_t *buf; size_t len;
 *     if (gguf_writer_finish(&w, &buf, &len) < 0) fprintf(stderr, "%s\n", w.err);
 *     gguf_writer_free(&w);
 *     ... gguf_open_mem(&g, buf, len) ... gguf_close(&g); free(buf);
 *
 * Ownership: every add_* copies its arguments (keys, names, strings, array
 * elements, tensor data); the caller's pointers need not outlive the call.
 * The builder owns its storage until gguf_writer_free. gguf_writer_finish
 * returns a new buffer the caller owns and releases with free().
 *
 * Errors: every function returns 0 or a negative gguf_err (gguf.h) and sets
 * w->err. Errors are sticky: after the first failure every later add_*,
 * finish and write_file return that error, so a sequence of adds may be
 * checked once at the end. Adding a key or tensor name twice, an invalid
 * general.alignment, an unknown tensor type, n_dims outside 1..4, a dim < 1,
 * a row length that is not a multiple of the block size, or an nbytes that
 * does not match the shape is refused (GGUF_ERR_FORMAT): the writer only
 * produces files that gguf_open accepts.
 *
 * Output: GGUF v3, keys and tensors in the order added; tensor data aligned
 * to general.alignment if it was added (as u32, a power of two), else 32,
 * each tensor padded to the alignment; no padding when there are no tensors.
 * This is llama.cpp's layout: rewriting one of its files with add_kv and
 * add_tensor reproduces it byte for byte.
 */
#ifndef MOTE_GGUF_WRITE_H
#define MOTE_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct gguf_writer_tensor gguf_writer_tensor;  /* private */

typedef struct gguf_writer {
    /* private: */
    uint8_t *kv;                 /* serialized key/value section */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    gguf_str *keys;              /* n_kv owned copies of the keys (duplicate check) */
    size_t keys_cap;
    gguf_writer_tensor *tensors;
    size_t n_tensors, tensors_cap;
    uint8_t *data;               /* tensor bytes back to back, unpadded */
    size_t data_len, data_cap;
    uint32_t alignment;
    int status;                  /* 0 or the first error (sticky) */
    /* public: */
    char err[256];               /* message of the first failure */
} gguf_writer;

void gguf_writer_init(gguf_writer *w);
void gguf_writer_free(gguf_writer *w);   /* leaves w initialised-empty */

/* Scalars. key is NUL-terminated and must not be present yet. */
int gguf_writer_add_u8(gguf_writer *w, const char *key, uint8_t v);
int gguf_writer_add_i8(gguf_writer *w, const char *key, int8_t v);
int gguf_writer_add_u16(gguf_writer *w, const char *key, uint16_t v);
int gguf_writer_add_i16(gguf_writer *w, const char *key, int16_t v);
int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_add_i64(gguf_writer *w, const char *key, int64_t v);
int gguf_writer_add_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_add_f64(gguf_writer *w, const char *key, double v);
int gguf_writer_add_bool(gguf_writer *w, const char *key, int v);   /* stored as 0/1 */

/* Strings: NUL-terminated, or (ptr, len) with any bytes. */
int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s);
int gguf_writer_add_strn(gguf_writer *w, const char *key, const char *s, size_t len);

/* Array of n fixed-size elements of type elem_type (any gguf_vtype but
 * STRING and ARRAY), given in host layout (e.g. const int32_t * for I32;
 * BOOL elements are bytes, written as 0/1). */
int gguf_writer_add_arr(gguf_writer *w, const char *key, int elem_type, const void *elems, uint64_t n);
int gguf_writer_add_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
int gguf_writer_add_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
/* Array of n NUL-terminated strings. */
int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *s, uint64_t n);

/* Copy one key/value (any type, arrays included) from an open gguf_file,
 * under the same key. Used to rewrite or modify existing models. */
int gguf_writer_add_kv(gguf_writer *w, const gguf_kv *kv);

/* A tensor: name (NUL-terminated, unique), type (enum kern_type), ne[0..n_dims-1]
 * (ne[0] = row length), nbytes of data (must equal the shape's size). */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, int type, int n_dims,
                           const int64_t *ne, const void *data, size_t nbytes);

/* Serialize into a new buffer (*out, *len); the buffer is aligned to at least
 * 64 bytes (and to general.alignment up to 4096), so tensor views of
 * gguf_open_mem on it are aligned. The caller frees it with free(). The
 * builder is unchanged and may be extended and finished again. */
int gguf_writer_finish(gguf_writer *w, uint8_t **out, size_t *len);

/* Serialize into the file at path (created or truncated, mode 0644). */
int gguf_writer_write_file(gguf_writer *w, const char *path);

#endif
