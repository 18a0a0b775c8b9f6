/* buf.c — fixed-capacity byte buffer; see buf.h for the contract. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int buf_init(buf *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    if (cap == 0)
        return -1;
    b->data = malloc(cap);
    if (!b->data)
        return -1;
    b->cap = cap;
    return 0;
}

void buf_free(buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void buf_reset(buf *b)
{
    b->head = b->tail = 0;
}

/* Moving the data costs a memmove; do it only when the tail is short of
 * half the buffer, so a slow trickle does not copy on every read. */
void buf_release(buf *b)
{
    b->head = b->tail = 0;
    if (b->hiwat > (64u << 10) && b->data) {
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = ((uintptr_t)b->data + page - 1) & ~(page - 1);
        uintptr_t hi = ((uintptr_t)b->data + b->hiwat) & ~(page - 1);
        if (hi > lo)
            madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    b->hiwat = 0;
}

static void buf_mark(buf *b)
{
    if (b->tail > b->hiwat)
        b->hiwat = b->tail;
}

char *buf_room(buf *b, size_t *room)
{
    if (b->head > 0 && b->cap - b->tail < b->cap / 2) {
        size_t n = b->tail - b->head;
        memmove(b->data, b->data + b->head, n);
        b->head = 0;
        b->tail = n;
    }
    *room = b->cap - b->tail;
    return b->data + b->tail;
}

void buf_commit(buf *b, size_t n)
{
    if (n > b->cap - b->tail)
        n = b->cap - b->tail;
    b->tail += n;
    buf_mark(b);
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->tail - b->head) {
        b->head = b->tail = 0;
        return;
    }
    b->head += n;
}

void buf_compact(buf *b)
{
    if (b->head > 0) {
        size_t n = b->tail - b->head;
        memmove(b->data, b->data + b->head, n);
        b->head = 0;
        b->tail = n;
    }
}

void buf_truncate(buf *b, size_t n)
{
    if (n < b->tail - b->head)
        b->tail = b->head + n;
    if (b->head == b->tail)
        b->head = b->tail = 0;
}

/* Make n contiguous tail bytes available if the total space allows. */
static char *buf_need(buf *b, size_t n)
{
    if (n > buf_space(b))
        return NULL;
    if (b->cap - b->tail < n) {
        size_t len = b->tail - b->head;
        memmove(b->data, b->data + b->head, len);
        b->head = 0;
        b->tail = len;
    }
    return b->data + b->tail;
}

int buf_append(buf *b, const void *p, size_t n)
{
    char *dst = buf_need(b, n);
    if (!dst)
        return -1;
    if (n)
        memcpy(dst, p, n);
    b->tail += n;
    buf_mark(b);
    return 0;
}

long buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    /* vsnprintf writes a NUL after the text: reserve n + 1, keep n. */
    char *dst = buf_need(b, (size_t)n + 1);
    if (!dst)
        return -1;
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    b->tail += (size_t)n;
    buf_mark(b);
    return n;
}

long buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long n = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return n;
}
