/* sampler.c — penalties, top-k/top-p/min-p, temperature, seeded draw. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sampler_params_default(sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temp = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->penalty_last_n = 64;
}

/* ---- xoshiro256** (Blackman & Vigna), seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sampler_rand_u64(sampler *s)
{
    uint64_t *st = s->rng;
    const uint64_t result = rotl(st[1] * 5, 7) * 9;
    const uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

float sampler_rand_float(sampler *s)
{
    return (float)(sampler_rand_u64(s) >> 40) * 0x1p-24f;   /* 24 random bits */
}

void sampler_reset(sampler *s, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->hist_len = 0;
    s->hist_pos = 0;
    s->p.seed = seed;
}

int sampler_init(sampler *s, int n_vocab, const sampler_params *p)
{
    memset(s, 0, sizeof *s);
    if (n_vocab < 1) return -1;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->hist_cap = p->penalty_last_n > 0 ? p->penalty_last_n : 0;
    s->hist_alloc = s->hist_cap;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->hist = malloc((size_t)(s->hist_cap ? s->hist_cap : 1) * sizeof *s->hist);
    if (!s->cand || !s->hist) {
        sampler_free(s);
        return -1;
    }
    sampler_reset(s, p->seed);
    return 0;
}

void sampler_set_params(sampler *s, const sampler_params *p)
{
    s->p = *p;
    int n = p->penalty_last_n;
    if (n < 0 || n > s->hist_alloc) n = s->hist_alloc;
    s->p.penalty_last_n = n;
    s->hist_cap = n;
    sampler_reset(s, p->seed);
}

void sampler_free(sampler *s)
{
    free(s->cand);
    free(s->hist);
    memset(s, 0, sizeof *s);
}

void sampler_accept(sampler *s, int32_t id)
{
    if (s->hist_cap == 0) return;
    s->hist[s->hist_pos] = id;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->hist_len < s->hist_cap) s->hist_len++;
}

/* ---- stages ---- */

static int penalties_active(const sampler_params *p)
{
    return p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
           p->frequency_penalty != 0.0f;
}

/* Apply the penalties to cand (indexed by id: called before any reordering). */
static void apply_penalties(sampler *s)
{
    const sampler_params *p = &s->p;
    for (int i = 0; i < s->hist_len; i++) {
        int32_t id = s->hist[i];
        if (id < 0 || id >= s->n_vocab) continue;
        int seen = 0, count = 0;
        for (int j = 0; j < s->hist_len; j++) {
            if (s->hist[j] != id) continue;
            if (j < i) seen = 1;
            count++;
        }
        if (seen) continue;   /* each distinct token once */
        float *l = &s->cand[id].logit;
        if (p->repeat_penalty != 1.0f) *l = *l > 0.0f ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= (float)count * p->frequency_penalty + (count > 0 ? p->presence_penalty : 0.0f);
    }
}

static int cmp_logit_desc(const void *a, const void *b)
{
    const sampler_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Move the k largest logits to the front (unordered): quickselect. */
static void select_top(sampler_cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        sampler_cand pivot = c[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cmp_logit_desc(&c[i], &pivot) < 0) i++;
            while (cmp_logit_desc(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                sampler_cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* p = softmax(logit / t) over c[0..n); c sorted descending. */
static void softmax(sampler_cand *c, int n, float t)
{
    const float max = c[0].logit;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - max) / t);
        sum += c[i].p;
    }
    for (int i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

int32_t sampler_sample(sampler *s, const float *logits)
{
    const sampler_params *p = &s->p;
    const int V = s->n_vocab;
    sampler_cand *c = s->cand;
    for (int i = 0; i < V; i++) {
        c[i].id = i;
        c[i].logit = logits[i];
    }
    if (penalties_active(p)) apply_penalties(s);

    if (p->temp <= 0.0f) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (c[i].logit > c[best].logit) best = i;
        return c[best].id;
    }

    /* NaN logits would break the ordering: treat them as -inf */
    for (int i = 0; i < V; i++)
        if (isnan(c[i].logit)) c[i].logit = -INFINITY;

    int n = V;
    if (p->top_k > 0 && p->top_k < n) {
        select_top(c, n, p->top_k);
        n = p->top_k;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_logit_desc);
    softmax(c, n, 1.0f);

    if (p->top_p < 1.0f) {
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        const float thr = c[0].p * p->min_p;
        int keep = 1;
        while (keep < n && c[keep].p >= thr) keep++;
        n = keep;
    }

    softmax(c, n, p->temp);
    double r = (double)sampler_rand_float(s), cum = 0.0, total = 0.0;
    for (int i = 0; i < n; i++) total += c[i].p;
    r *= total;
    for (int i = 0; i < n; i++) {
        cum += c[i].p;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id;
}
