/* buf.h — a byte buffer of fixed capacity for every byte pump.
 *
 * Contract ("make room, read into the tail, commit / consume from the head"):
 *
 *     size_t room;
 *     char *p = buf_room(&b, &room);   // free bytes at the tail (compacts)
 *     ssize_t n = read(fd, p, room);
 *     if (n > 0) buf_commit(&b, n);    // n bytes are now data
 *     ... parse buf_data(&b), buf_len(&b) ...
 *     buf_consume(&b, used);           // drop bytes from the head
 *
 * The capacity is chosen at buf_init and never grows (no unbounded buffers:
 * a producer that would overflow gets -1 and decides what that means).
 * Data lives at data[head..tail). buf_room may move the data to the start
 * of the storage (memmove), which invalidates pointers into it; nothing else
 * moves data. When all data is consumed, head and tail return to 0.
 *
 * Not thread-safe: one owner at a time (the loop locks around shared ones).
 */
#ifndef MOTE_BUF_H
#define MOTE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;   /* storage, cap bytes, owned (malloc) */
    size_t cap;
    size_t head;  /* first data byte */
    size_t tail;  /* one past the last data byte */
    size_t hiwat; /* highest tail since init / the last buf_release */
} buf;

/* Allocate cap bytes (cap > 0). Returns 0, or -1 when out of memory (b is
 * then zeroed, and buf_free on it is harmless). */
int buf_init(buf *b, size_t cap);
void buf_free(buf *b);

/* Drop all data (keeps the storage). */
void buf_reset(buf *b);

/* Drop all data and give the pages it touched back to the system
 * (madvise MADV_DONTNEED) when more than 64 KiB were used: a big request
 * does not keep its memory resident after its connection closes. */
void buf_release(buf *b);

static inline char *buf_data(const buf *b) { return b->data + b->head; }
static inline size_t buf_len(const buf *b) { return b->tail - b->head; }
/* Free bytes in total (tail room + reclaimable head room). */
static inline size_t buf_space(const buf *b) { return b->cap - (b->tail - b->head); }

/* Pointer to the free tail and its size in *room; moves the data to the
 * start first when that gives more room. *room is 0 when the buffer is full. */
char *buf_room(buf *b, size_t *room);

/* The first n bytes at the tail (n <= *room of the last buf_room) are data. */
void buf_commit(buf *b, size_t n);

/* Drop n <= buf_len bytes from the head. */
void buf_consume(buf *b, size_t n);

/* Move the data to the start of the storage (so that data pointers stay
 * valid through later buf_room calls, which move only when head > 0). */
void buf_compact(buf *b);

/* Keep only the first n <= buf_len bytes of data (drop the rest at the tail). */
void buf_truncate(buf *b, size_t n);

/* Append n bytes whole. Returns 0, or -1 if they do not fit (b unchanged). */
int buf_append(buf *b, const void *p, size_t n);

/* Append formatted text whole (no NUL). Returns bytes written, or -1 if it
 * does not fit (b unchanged). */
__attribute__((format(printf, 2, 3)))
long buf_printf(buf *b, const char *fmt, ...);
long buf_vprintf(buf *b, const char *fmt, va_list ap);

#endif
