/* thread.h — a parallel-for over a fixed set of worker threads.
 *
 * Inference-core helper: forward.c splits matmul rows and attention heads
 * over it. Two implementations behind one API, chosen at build time:
 *   MOTE_THREADS_OPENMP   an OpenMP parallel region per call (libgomp keeps
 *                         its own team alive between calls);
 *   otherwise             our own pthread pool: workers spin briefly on a
 *                         generation counter, then sleep on a futex.
 * The number of threads is clamped to the online CPU count, so there are
 * never more spinning threads than cores.
 *
 * Usage:
 *     thread_pool tp;
 *     if (thread_pool_init(&tp, 4) < 0) ...;
 *     thread_pool_for(&tp, n_rows, fn, ctx);    fn(ctx, i0, i1, ith) per chunk
 *     thread_pool_for_balanced(&tp, n_rows, grain, fn, ctx);   chunks move between threads
 *     thread_pool_free(&tp);
 *
 * thread_pool_for is not reentrant: one caller thread at a time per pool
 * (each scheduler worker owns its pool). No allocation after init.
 */
#ifndef MOTE_THREAD_H
#define MOTE_THREAD_H

#include <stdint.h>

/* Work function: process items [i0, i1); ith is the thread index in
 * 0..n_threads-1 (use it to pick per-thread scratch). */
typedef void (*thread_fn)(void *ctx, int64_t i0, int64_t i1, int ith);

typedef struct thread_pool_impl thread_pool_impl;   /* private */

typedef struct thread_steal thread_steal;           /* private */

typedef struct thread_pool {
    int n_threads;            /* threads taking part, caller included (>= 1) */
    thread_pool_impl *impl;   /* private: NULL for one thread or OpenMP */
    thread_steal *steal;      /* private: thread_pool_for_balanced's ranges */
} thread_pool;

/* Online CPU count (>= 1). */
int thread_cpu_count(void);

/* Start a pool of n_threads (<= 0: one per CPU; clamped to the CPU count and
 * to THREAD_MAX). The calling thread is one of them. 0 or -1 (out of memory
 * or thread creation failed; tp is then a valid one-thread pool). */
#define THREAD_MAX 256
int thread_pool_init(thread_pool *tp, int n_threads);

/* Run fn over [0, n) split into at most n_threads contiguous chunks; returns
 * when every chunk is done. n <= 0 does nothing. */
void thread_pool_for(thread_pool *tp, int64_t n, thread_fn fn, void *ctx);

/* thread_pool_for balanced at run time, for items of equal cost on threads
 * that may not run at equal speed (memory bandwidth shared unevenly, a
 * core busy with something else). Thread ith starts on the range
 * thread_pool_for would give it and works through it front to back,
 * `grain` items per fn call; a thread whose range is done takes grains
 * from the back of the range with the most items left, until none is
 * left. So fn sees several [i0, i1) per thread, each of at most grain
 * items; which thread runs an item is not fixed (use ith only for
 * scratch). n must be < 2^31 (larger n runs as thread_pool_for). */
void thread_pool_for_balanced(thread_pool *tp, int64_t n, int64_t grain, thread_fn fn, void *ctx);

/* Stop and join the workers. Safe on a zeroed or failed pool. */
void thread_pool_free(thread_pool *tp);

#endif
