/* thread.c — parallel-for: OpenMP team or our own spin-then-futex pool.
 *
 * The pthread pool: the caller publishes a job (fn, ctx, n) and bumps a
 * generation counter; workers waiting on the counter spin for a short while
 * (a decode step on a small model is tens of microseconds, a futex round trip
 * is several) and then sleep in futex_wait. The caller runs chunk 0 itself
 * and waits for a "pending" counter to reach zero the same way.
 */
#include "thread.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(MOTE_THREADS_OPENMP)
#include <omp.h>
#else
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#endif

int thread_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > THREAD_MAX) n = THREAD_MAX;
    return (int)n;
}

/* Chunk ith of nth over [0, n): contiguous, sizes differ by at most one. */
static void chunk_range(int64_t n, int nth, int ith, int64_t *i0, int64_t *i1)
{
    int64_t q = n / nth, r = n % nth;
    *i0 = ith * q + (ith < r ? ith : r);
    *i1 = *i0 + q + (ith < r ? 1 : 0);
}

static int clamp_threads(int n_threads)
{
    int ncpu = thread_cpu_count();
    if (n_threads <= 0 || n_threads > ncpu) n_threads = ncpu;
    return n_threads;
}

#if defined(MOTE_THREADS_OPENMP)

/* ---- OpenMP ---- */

int thread_pool_init(thread_pool *tp, int n_threads)
{
    tp->n_threads = clamp_threads(n_threads);
    tp->impl = NULL;
    return 0;
}

void thread_pool_for(thread_pool *tp, int64_t n, thread_fn fn, void *ctx)
{
    if (n <= 0) return;
    int nt = tp->n_threads;
    if (nt > n) nt = (int)n;
    if (nt <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int ith = omp_get_thread_num();
        int nth = omp_get_num_threads();
        int64_t i0, i1;
        chunk_range(n, nth, ith, &i0, &i1);
        if (i0 < i1) fn(ctx, i0, i1, ith);
    }
}

void thread_pool_free(thread_pool *tp)
{
    tp->impl = NULL;
}

#else

/* ---- pthread pool ---- */

#define SPIN_ITERS 20000

struct thread_pool_impl {
    int n_workers;               /* threads besides the caller */
    pthread_t *threads;
    int n_started;
    _Atomic uint32_t gen;        /* bumped once per job (futex word) */
    _Atomic uint32_t pending;    /* workers still running the job (futex word) */
    _Atomic int quit;
    /* the current job, published before gen is bumped */
    thread_fn fn;
    void *ctx;
    int64_t n;
    int nth;                     /* threads taking part in this job */
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Wait until *addr != val: spin, then sleep. */
static void wait_change(_Atomic uint32_t *addr, uint32_t val)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != val) return;
        cpu_relax();
    }
    while (atomic_load_explicit(addr, memory_order_acquire) == val)
        futex_wait(addr, val);
}

typedef struct worker_arg {
    thread_pool_impl *p;
    int ith;
} worker_arg;

static void *worker_main(void *arg)
{
    thread_pool_impl *p = ((worker_arg *)arg)->p;
    int ith = ((worker_arg *)arg)->ith;
    free(arg);
    /* gen was 0 when the pool was made and no job can be published before
     * thread_pool_init returns; reading gen here instead could already see
     * the first job and skip it. */
    uint32_t seen = 0;
    for (;;) {
        wait_change(&p->gen, seen);
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->quit, memory_order_acquire)) break;
        if (ith < p->nth) {
            int64_t i0, i1;
            chunk_range(p->n, p->nth, ith, &i0, &i1);
            if (i0 < i1) p->fn(p->ctx, i0, i1, ith);
        }
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1)
            futex_wake_all(&p->pending);
    }
    return NULL;
}

int thread_pool_init(thread_pool *tp, int n_threads)
{
    tp->n_threads = clamp_threads(n_threads);
    tp->impl = NULL;
    if (tp->n_threads == 1) return 0;

    thread_pool_impl *p = calloc(1, sizeof *p);
    if (!p) goto fail;
    p->n_workers = tp->n_threads - 1;
    p->threads = calloc((size_t)p->n_workers, sizeof *p->threads);
    if (!p->threads) goto fail;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->quit, 0);
    for (int i = 0; i < p->n_workers; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) goto fail;
        a->p = p;
        a->ith = i + 1;
        if (pthread_create(&p->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            goto fail;
        }
        p->n_started++;
    }
    tp->impl = p;
    return 0;

fail:
    if (p) {
        tp->impl = p;
        thread_pool_free(tp);
    }
    tp->n_threads = 1;
    tp->impl = NULL;
    return -1;
}

void thread_pool_for(thread_pool *tp, int64_t n, thread_fn fn, void *ctx)
{
    if (n <= 0) return;
    thread_pool_impl *p = tp->impl;
    int nt = tp->n_threads;
    if (nt > n) nt = (int)n;
    if (!p || nt <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->nth = nt;
    atomic_store_explicit(&p->pending, (uint32_t)p->n_workers, memory_order_release);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    futex_wake_all(&p->gen);

    int64_t i0, i1;
    chunk_range(n, nt, 0, &i0, &i1);
    if (i0 < i1) fn(ctx, i0, i1, 0);

    for (;;) {
        uint32_t left = atomic_load_explicit(&p->pending, memory_order_acquire);
        if (left == 0) break;
        wait_change(&p->pending, left);
    }
}

void thread_pool_free(thread_pool *tp)
{
    thread_pool_impl *p = tp->impl;
    if (!p) return;
    atomic_store_explicit(&p->quit, 1, memory_order_release);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    futex_wake_all(&p->gen);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p);
    tp->impl = NULL;
    tp->n_threads = 1;
}

#endif
