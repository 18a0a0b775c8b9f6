/* tests/test_thread.c — the parallel-for: every item exactly once, thread
 * indices in range, clamping to the CPU count, many small jobs in a row. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "thread.h"

typedef struct job {
    _Atomic int *seen;
    _Atomic int bad_ith;
    _Atomic int calls;
    int n_threads;
} job;

static void visit(void *ctx, int64_t i0, int64_t i1, int ith)
{
    job *j = ctx;
    atomic_fetch_add(&j->calls, 1);
    if (ith < 0 || ith >= j->n_threads || i0 >= i1) atomic_fetch_add(&j->bad_ith, 1);
    for (int64_t i = i0; i < i1; i++) atomic_fetch_add(&j->seen[i], 1);
}

static int run_once(thread_pool *tp, int64_t n, int *calls)
{
    job j;
    j.seen = calloc((size_t)(n > 0 ? n : 1), sizeof *j.seen);
    atomic_init(&j.bad_ith, 0);
    atomic_init(&j.calls, 0);
    j.n_threads = tp->n_threads;
    thread_pool_for(tp, n, visit, &j);
    int ok = atomic_load(&j.bad_ith) == 0;
    for (int64_t i = 0; i < n; i++) ok &= atomic_load(&j.seen[i]) == 1;
    if (calls) *calls = atomic_load(&j.calls);
    free(j.seen);
    return ok;
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
        thread_pool_free(&tp);
    }
    thread_pool_free(&tp);   /* twice is harmless */
    thread_pool zero;
    memset(&zero, 0, sizeof zero);
    thread_pool_free(&zero);
    T_CHECK(1, "free of a zeroed pool");
    return t_done();
}
