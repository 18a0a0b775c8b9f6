/* tests/test_thread.c — the parallel-for: every item exactly once, thread
 * indices in range, clamping to the CPU count, many small jobs in a row;
 * the balanced one also: grains respected, a slow thread's items taken
 * over by the others. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "thread.h"

typedef struct job {
    _Atomic int *seen;
    _Atomic int bad_ith;
    _Atomic int calls;
    int n_threads;
    int64_t grain;           /* balanced: items per call at most */
    int slow_ith;            /* balanced: this thread sleeps 1 ms per item (-1: none) */
    _Atomic int done_by[8];  /* items per thread (first 8 threads) */
} job;

static void visit(void *ctx, int64_t i0, int64_t i1, int ith)
{
    job *j = ctx;
    atomic_fetch_add(&j->calls, 1);
    if (ith < 0 || ith >= j->n_threads || i0 >= i1 || (j->grain && i1 - i0 > j->grain))
        atomic_fetch_add(&j->bad_ith, 1);
    for (int64_t i = i0; i < i1; i++) {
        atomic_fetch_add(&j->seen[i], 1);
        if (ith >= 0 && ith < 8) atomic_fetch_add(&j->done_by[ith], 1);
        if (ith == j->slow_ith) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

/* grain 0: thread_pool_for, else thread_pool_for_balanced; done_by:
 * items thread 1 ran (NULL: not wanted). */
static int run_job(thread_pool *tp, int64_t n, int64_t grain, int slow_ith, int *calls, int *done_by_1)
{
    job j;
    memset(&j, 0, sizeof j);
    j.seen = calloc((size_t)(n > 0 ? n : 1), sizeof *j.seen);
    j.n_threads = tp->n_threads;
    j.grain = grain;
    j.slow_ith = slow_ith;
    if (grain) thread_pool_for_balanced(tp, n, grain, visit, &j);
    else thread_pool_for(tp, n, visit, &j);
    int ok = atomic_load(&j.bad_ith) == 0;
    for (int64_t i = 0; i < n; i++) ok &= atomic_load(&j.seen[i]) == 1;
    if (calls) *calls = atomic_load(&j.calls);
    if (done_by_1) *done_by_1 = atomic_load(&j.done_by[1]);
    free(j.seen);
    return ok;
}

static int run_once(thread_pool *tp, int64_t n, int *calls)
{
    return run_job(tp, n, 0, -1, calls, NULL);
}

int main(void)
{
    int ncpu = thread_cpu_count();
    T_CHECK(ncpu >= 1, "cpu count %d", ncpu);
    thread_pool tp;
    int rc = thread_pool_init(&tp, 0);
    T_CHECK(rc == 0 && tp.n_threads == ncpu, "0 threads means one per CPU (%d)", tp.n_threads);
    thread_pool_free(&tp);
    rc = thread_pool_init(&tp, 1000);
    T_CHECK(rc == 0 && tp.n_threads == ncpu, "1000 threads clamped to %d", tp.n_threads);
    thread_pool_free(&tp);

    for (int nt = 1; nt <= 4; nt++) {
        thread_pool_init(&tp, nt);
        static const int64_t sizes[] = { 0, 1, 2, 3, 7, 100, 10007 };
        int ok = 1, calls = 0;
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            ok &= run_once(&tp, sizes[k], &calls);
            if (sizes[k] == 0) ok &= calls == 0;
            if (sizes[k] >= tp.n_threads) ok &= calls == tp.n_threads;
        }
        T_CHECK(ok, "%d thread(s) requested (%d used): every item once, one chunk per thread", nt,
                tp.n_threads);
        int many = 1;
        for (int r = 0; r < 3000; r++) many &= run_once(&tp, 1 + r % 13, NULL);
        T_CHECK(many, "%d thread(s): 3000 small jobs in a row", tp.n_threads);
        ok = 1;
        static const int64_t grains[] = { 1, 2, 5, 64, 100000 };
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
                ok &= run_job(&tp, sizes[k], grains[g], -1, &calls, NULL);
                if (sizes[k] == 0) ok &= calls == 0;
            }
        for (int r = 0; r < 3000; r++) ok &= run_job(&tp, 1 + r % 13, 1 + r % 3, -1, NULL, NULL);
        T_CHECK(ok, "%d thread(s), balanced: every item once, at most grain items per call, 3000 small jobs",
                tp.n_threads);
        if (tp.n_threads >= 2) {
            /* thread 0 sleeps 1 ms per item: the others take most of its range */
            int by1 = 0;
            ok = run_job(&tp, 64, 1, 0, NULL, &by1);
            T_CHECK(ok && by1 > 64 / tp.n_threads, "%d threads, balanced, thread 0 slow: thread 1 ran %d of 64 "
                    "items (its own range: %d)", tp.n_threads, by1, 64 / tp.n_threads);
        }
        thread_pool_free(&tp);
    }
    thread_pool_free(&tp);   /* twice is harmless */
    thread_pool zero;
    memset(&zero, 0, sizeof zero);
    thread_pool_free(&zero);
    T_CHECK(1, "free of a zeroed pool");
    return t_done();
}
