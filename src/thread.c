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

/* thread_pool_for_balanced's state: one range per thread, its front and
 * back in one word (front: low 32 bits) so that the owner taking from the
 * front and a thief taking from the back claim with one CAS; a cache line
 * each. */
struct thread_steal {
    _Atomic uint64_t fb;
    char pad[64 - sizeof(uint64_t)];
};

static int steal_alloc(thread_pool *tp)
{
    tp->steal = NULL;
    if (tp->n_threads <= 1) return 0;
    tp->steal = aligned_alloc(64, (size_t)tp->n_threads * sizeof *tp->steal);
    return tp->steal ? 0 : -1;
}

#if defined(MOTE_THREADS_OPENMP)

/* ---- OpenMP ---- */

int thread_pool_init(thread_pool *tp, int n_threads)
{
    tp->n_threads = clamp_threads(n_threads);
    tp->impl = NULL;
    if (steal_alloc(tp) < 0) {
        tp->n_threads = 1;
        return -1;
    }
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
    free(tp->steal);
    tp->steal = NULL;
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
    tp->steal = NULL;
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
    if (steal_alloc(tp) < 0) goto fail;
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
    free(tp->steal);
    tp->steal = NULL;
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

/* ---- balanced parallel-for (both backends) ---- */

typedef struct balanced_job {
    thread_steal *r;
    int nt;
    uint32_t grain;
    thread_fn fn;
    void *ctx;
} balanced_job;

static uint64_t fb_pack(uint32_t front, uint32_t back)
{
    return (uint64_t)back << 32 | front;
}

/* Claim up to grain items from the front (owner) or the back (thief) of
 * r: the count claimed (0: none left), the first item in *i0. */
static uint32_t claim(thread_steal *r, uint32_t grain, int from_back, uint32_t *i0)
{
    uint64_t v = atomic_load_explicit(&r->fb, memory_order_relaxed);
    for (;;) {
        const uint32_t f = (uint32_t)v, b = (uint32_t)(v >> 32);
        if (f >= b) return 0;
        const uint32_t k = b - f < grain ? b - f : grain;
        const uint64_t nv = from_back ? fb_pack(f, b - k) : fb_pack(f + k, b);
        if (atomic_compare_exchange_weak_explicit(&r->fb, &v, nv, memory_order_relaxed, memory_order_relaxed)) {
            *i0 = from_back ? b - k : f;
            return k;
        }
    }
}

static void balanced_worker(void *ctx, int64_t t0, int64_t t1, int ith)
{
    (void)t1;
    const balanced_job *j = ctx;
    uint32_t i0, k;
    while ((k = claim(&j->r[t0], j->grain, 0, &i0)) > 0) j->fn(j->ctx, i0, (int64_t)i0 + k, ith);
    for (;;) {
        int victim = -1;
        uint32_t most = 0;
        for (int t = 0; t < j->nt; t++) {
            const uint64_t v = atomic_load_explicit(&j->r[t].fb, memory_order_relaxed);
            const uint32_t f = (uint32_t)v, b = (uint32_t)(v >> 32);
            if (b > f && b - f > most) {
                most = b - f;
                victim = t;
            }
        }
        if (victim < 0) return;
        if ((k = claim(&j->r[victim], j->grain, 1, &i0)) > 0) j->fn(j->ctx, i0, (int64_t)i0 + k, ith);
    }
}

void thread_pool_for_balanced(thread_pool *tp, int64_t n, int64_t grain, thread_fn fn, void *ctx)
{
    if (n <= 0) return;
    int nt = tp->n_threads;
    if (nt > n) nt = (int)n;
    if (grain < 1) grain = 1;
    if (grain > n) grain = n;
    if (n >= ((int64_t)1 << 31)) {
        thread_pool_for(tp, n, fn, ctx);
        return;
    }
    if (nt <= 1 || !tp->steal) {
        for (int64_t i = 0; i < n; i += grain) fn(ctx, i, i + grain < n ? i + grain : n, 0);
        return;
    }
    balanced_job j = {tp->steal, nt, (uint32_t)grain, fn, ctx};
    for (int t = 0; t < nt; t++) {
        int64_t i0, i1;
        chunk_range(n, nt, t, &i0, &i1);
        atomic_store_explicit(&tp->steal[t].fb, fb_pack((uint32_t)i0, (uint32_t)i1), memory_order_relaxed);
    }
    /* one item per thread: thread t owns range t (the pool's start
     * publishes the stores above, its end waits for every claim's fn) */
    thread_pool_for(tp, nt, balanced_worker, &j);
}
