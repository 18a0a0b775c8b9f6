/* tests/test_sampler.c — greedy, seeded draws, top-k/top-p/min-p, penalties. */
#include <math.h>
#include <string.h>

#include "sampler.h"
#include "test.h"

#define V 8

static void test_greedy(void)
{
    sampler_params p;
    sampler_params_default(&p);
    p.temp = 0.0f;
    sampler s;
    T_CHECK(sampler_init(&s, V, &p) == 0, "init");
    float lg[V] = { 0.1f, 2.0f, -1.0f, 3.5f, 3.4f, 0.0f, -5.0f, 1.0f };
    T_CHECK(sampler_sample(&s, lg) == 3, "greedy picks the argmax");
    float tie[V] = { 1, 5, 5, 0, 0, 0, 0, 0 };
    T_CHECK(sampler_sample(&s, tie) == 1, "greedy tie -> lowest id");
    sampler_free(&s);

    /* repetition penalty changes the greedy choice */
    p.repeat_penalty = 2.0f;
    sampler_init(&s, V, &p);
    sampler_accept(&s, 3);
    T_CHECK(sampler_sample(&s, lg) == 4, "repeat penalty 2 on id 3 (3.5 -> 1.75) -> id 4");
    sampler_free(&s);

    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.05f;
    p.frequency_penalty = 0.1f;
    sampler_init(&s, V, &p);
    sampler_accept(&s, 3);
    T_CHECK(sampler_sample(&s, lg) == 4, "presence+frequency 0.15 on id 3 -> id 4");
    sampler_free(&s);

    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.06f;
    p.penalty_last_n = 2;
    sampler_init(&s, V, &p);
    sampler_accept(&s, 3);
    sampler_accept(&s, 1);
    sampler_accept(&s, 1);   /* id 3 left the 2-token window */
    T_CHECK(sampler_sample(&s, lg) == 3, "penalty window forgets old tokens");
    sampler_free(&s);

    /* set_params: window clamped to the allocation, history cleared */
    p.penalty_last_n = 4;
    p.presence_penalty = 0.2f;
    p.frequency_penalty = 0.0f;
    sampler_init(&s, V, &p);
    sampler_accept(&s, 3);
    sampler_params q = p;
    q.penalty_last_n = 1000;
    sampler_set_params(&s, &q);
    T_CHECK(s.hist_cap == 4 && s.hist_len == 0 && sampler_sample(&s, lg) == 3,
            "set_params clamps the window to 4 and clears the history");
    sampler_accept(&s, 3);
    T_CHECK(sampler_sample(&s, lg) == 4, "presence 0.2 after set_params applies");
    q.penalty_last_n = 0;
    sampler_set_params(&s, &q);
    sampler_accept(&s, 3);
    T_CHECK(sampler_sample(&s, lg) == 3, "window 0: no history, no penalty");
    sampler_free(&s);
}

static void test_draws(void)
{
    sampler_params p;
    sampler_params_default(&p);
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    float lg[V] = { 0.0f, 1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.2f, 0.8f };

    /* same seed -> same sequence; reset reproduces it */
    sampler a, b;
    sampler_init(&a, V, &p);
    sampler_init(&b, V, &p);
    int same = 1;
    int32_t first[64];
    for (int i = 0; i < 64; i++) {
        first[i] = sampler_sample(&a, lg);
        same &= first[i] == sampler_sample(&b, lg);
    }
    T_CHECK(same, "same seed, same draws");
    sampler_reset(&a, 1234);
    int again = 1;
    for (int i = 0; i < 64; i++) again &= first[i] == sampler_sample(&a, lg);
    T_CHECK(again, "reset reseeds");
    sampler_reset(&b, 99);
    int diff = 0;
    for (int i = 0; i < 64; i++) diff += first[i] != sampler_sample(&b, lg);
    T_CHECK(diff > 0, "another seed, other draws");

    /* frequencies follow softmax(lg) */
    int cnt[V] = { 0 };
    const int N = 200000;
    for (int i = 0; i < N; i++) cnt[sampler_sample(&a, lg)]++;
    double z = 0, worst = 0;
    for (int i = 0; i < V; i++) z += exp(lg[i]);
    for (int i = 0; i < V; i++) {
        double e = exp(lg[i]) / z, f = (double)cnt[i] / N;
        double sd = sqrt(e * (1 - e) / N);
        if (fabs(f - e) / sd > worst) worst = fabs(f - e) / sd;
    }
    T_CHECK(worst < 5.0, "temp 1 frequencies match softmax (worst %.1f sigma)", worst);

    /* temperature sharpens */
    sampler_free(&a);
    p.temp = 0.25f;
    sampler_init(&a, V, &p);
    int top = 0;
    for (int i = 0; i < 10000; i++) top += sampler_sample(&a, lg) == 2;
    double e2 = exp(2.0 / 0.25), zz = 0;
    for (int i = 0; i < V; i++) zz += exp(lg[i] / 0.25);
    T_CHECK(fabs(top / 10000.0 - e2 / zz) < 0.02, "temp 0.25: P(argmax) %.3f ~ %.3f", top / 10000.0, e2 / zz);
    sampler_free(&a);

    /* top-k 2: only ids 2 and 5 */
    p.temp = 1.0f;
    p.top_k = 2;
    sampler_init(&a, V, &p);
    int only = 1;
    for (int i = 0; i < 5000; i++) {
        int32_t id = sampler_sample(&a, lg);
        only &= id == 2 || id == 5;
    }
    T_CHECK(only, "top-k 2 keeps the two best");
    sampler_free(&a);

    /* top-k 1 == greedy */
    p.top_k = 1;
    sampler_init(&a, V, &p);
    only = 1;
    for (int i = 0; i < 1000; i++) only &= sampler_sample(&a, lg) == 2;
    T_CHECK(only, "top-k 1 is greedy");
    sampler_free(&a);

    /* top-p tiny == greedy; top-p 0.6 keeps {2, 5, 1} (p .351 + .213 + .129) */
    p.top_k = 0;
    p.top_p = 0.01f;
    sampler_init(&a, V, &p);
    only = 1;
    for (int i = 0; i < 1000; i++) only &= sampler_sample(&a, lg) == 2;
    T_CHECK(only, "top-p 0.01 is greedy");
    sampler_free(&a);
    p.top_p = 0.6f;
    sampler_init(&a, V, &p);
    int seen[V] = { 0 };
    for (int i = 0; i < 5000; i++) seen[sampler_sample(&a, lg)] = 1;
    T_CHECK(seen[2] && seen[5] && seen[1] && !seen[7] && !seen[0],
            "top-p 0.6 keeps the smallest prefix reaching 0.6");
    sampler_free(&a);

    /* min-p 0.5: keep p >= 0.5 * p_max: ids 2 (1.0), 5 (0.61) */
    p.top_p = 1.0f;
    p.min_p = 0.5f;
    sampler_init(&a, V, &p);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 5000; i++) seen[sampler_sample(&a, lg)] = 1;
    T_CHECK(seen[2] && seen[5] && !seen[1] && !seen[7], "min-p 0.5 keeps ids within half of the best");
    sampler_free(&a);

    /* NaN and -inf logits never drawn */
    p.min_p = 0.0f;
    sampler_init(&a, V, &p);
    float bad[V] = { NAN, 1.0f, -INFINITY, 1.0f, NAN, 0.0f, -INFINITY, 0.5f };
    only = 1;
    for (int i = 0; i < 5000; i++) {
        int32_t id = sampler_sample(&a, bad);
        only &= id != 0 && id != 2 && id != 4 && id != 6;
    }
    T_CHECK(only, "NaN / -inf logits are never drawn");
    sampler_free(&a);
    sampler_free(&b);
}

static void test_large_vocab(void)
{
    /* quickselect on a big row with many ties */
    enum { N = 50000 };
    static float lg[N];
    for (int i = 0; i < N; i++) lg[i] = (float)((i * 7919) % 1000) / 100.0f;
    sampler_params p;
    sampler_params_default(&p);
    p.top_k = 3;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    sampler s;
    T_CHECK(sampler_init(&s, N, &p) == 0, "init 50000");
    int ok = 1;
    for (int i = 0; i < 200; i++) {
        int32_t id = sampler_sample(&s, lg);
        ok &= lg[id] == 9.99f;
    }
    T_CHECK(ok, "top-k 3 over 50000 with ties draws only the maximum logit");
    sampler_free(&s);
    T_CHECK(sampler_init(&s, 0, &p) == -1, "n_vocab 0 refused");
}

int main(void)
{
    test_greedy();
    test_draws();
    test_large_vocab();
    return t_done();
}
