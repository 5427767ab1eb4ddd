/* sampler.c — penalties, top-k/top-p/min-p truncation, temperature, draw.
 *
 * Every filter in the chain keeps a prefix of the candidates sorted by logit
 * (min-p compares with the best logit, top-p accumulates the softmax in
 * order, top-k counts), and temperature comes last, so the set kept does not
 * depend on the order in which the filters run. That lets the no-top-k path
 * apply the O(n) min-p cut first and sort only the survivors, instead of the
 * full vocabulary; top-p still normalises over the full set, as llama.cpp
 * does, using a sum computed in the same pass. */
#include "serve/sampler.h"
#include "base/clock.h"
#include "base/err.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct tl_sampler {
    tl_sampler_params p;
    int n_vocab;
    uint64_t seed;          /* resolved seed */
    uint64_t rng[4];        /* xoshiro256** state */

    float *work;            /* n_vocab: penalised logits */
    cand *cand;             /* n_vocab: candidate set, best first */
    float *prob;            /* n_vocab: final probabilities (unnormalised) */
    int32_t *ids;           /* n_vocab: ids for tl_sampler_candidates */
    int n_cand;             /* size of the last candidate set */
    float prob_sum;

    /* penalty window: ring of the last repeat_last_n accepted tokens, and
     * how often each token occurs in it */
    int32_t *ring;
    int ring_cap, ring_len, ring_head;
    int32_t *count;         /* n_vocab */
};

/* ------------------------------------------------------------------ rng */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static void rng_seed(tl_sampler *s) {
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ------------------------------------------------------ params and life */

tl_sampler_params tl_sampler_default_params(void) {
    return (tl_sampler_params){
        .temperature = 0.7f,
        .top_k = 40,
        .top_p = 0.9f,
        .min_p = 0.05f,
        .repeat_penalty = 1.1f,
        .repeat_last_n = 64,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = TL_SEED_RANDOM,
    };
}

static tl_status fail(tl_status code, const char *msg, double v) {
    tl_err e;
    tl_err_set(&e, code, "sampler: %s (got %g)", msg, v);
    tl_err_set_last(&e);
    return code;
}

tl_status tl_sampler_init(const tl_sampler_params *pp, int n_vocab, tl_sampler **out) {
    *out = NULL;
    tl_sampler_params p = pp ? *pp : tl_sampler_default_params();
    if (n_vocab <= 0) return fail(TL_ERR_INVALID_ARG, "n_vocab must be positive", n_vocab);
    if (isnan(p.temperature)) return fail(TL_ERR_INVALID_ARG, "temperature is NaN", p.temperature);
    if (!(p.top_p >= 0.0f)) return fail(TL_ERR_INVALID_ARG, "top_p must be >= 0", p.top_p);
    if (!(p.min_p >= 0.0f)) return fail(TL_ERR_INVALID_ARG, "min_p must be >= 0", p.min_p);
    if (!(p.repeat_penalty > 0.0f) || isinf(p.repeat_penalty))
        return fail(TL_ERR_INVALID_ARG, "repeat_penalty must be positive and finite", p.repeat_penalty);
    if (!isfinite(p.frequency_penalty) || !isfinite(p.presence_penalty))
        return fail(TL_ERR_INVALID_ARG, "frequency/presence penalty must be finite",
                    isfinite(p.frequency_penalty) ? p.presence_penalty : p.frequency_penalty);
    if (p.repeat_last_n < 0)
        return fail(TL_ERR_INVALID_ARG, "repeat_last_n must be >= 0", p.repeat_last_n);

    tl_sampler *s = calloc(1, sizeof *s);
    if (!s) return fail(TL_ERR_NOMEM, "out of memory", 0);
    s->p = p;
    s->n_vocab = n_vocab;
    size_t n = (size_t)n_vocab;
    s->work = malloc(n * sizeof *s->work);
    s->cand = malloc(n * sizeof *s->cand);
    s->prob = malloc(n * sizeof *s->prob);
    s->ids = malloc(n * sizeof *s->ids);
    s->count = calloc(n, sizeof *s->count);
    s->ring_cap = p.repeat_last_n;
    s->ring = s->ring_cap ? malloc((size_t)s->ring_cap * sizeof *s->ring) : NULL;
    if (!s->work || !s->cand || !s->prob || !s->ids || !s->count || (s->ring_cap && !s->ring)) {
        tl_sampler_free(s);
        return fail(TL_ERR_NOMEM, "out of memory for vocabulary buffers", n_vocab);
    }
    if (p.seed == TL_SEED_RANDOM) {
        uint64_t x = tl_clock_ns() ^ ((uint64_t)time(NULL) << 32) ^ (uint64_t)(uintptr_t)s;
        s->seed = splitmix64(&x);
        if (s->seed == TL_SEED_RANDOM) s->seed = 0;
    } else {
        s->seed = p.seed;
    }
    rng_seed(s);
    *out = s;
    return TL_OK;
}

void tl_sampler_free(tl_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->cand);
    free(s->prob);
    free(s->ids);
    free(s->count);
    free(s->ring);
    free(s);
}

uint64_t tl_sampler_seed(const tl_sampler *s) { return s->seed; }

void tl_sampler_reset(tl_sampler *s) {
    if (!s) return;
    for (int i = 0; i < s->ring_len; i++) {
        int idx = (s->ring_head + i) % s->ring_cap;
        s->count[s->ring[idx]] = 0;
    }
    s->ring_len = 0;
    s->ring_head = 0;
    rng_seed(s);
}

void tl_sampler_accept(tl_sampler *s, tl_token t) {
    if (!s || s->ring_cap == 0 || t < 0 || t >= s->n_vocab) return;
    if (s->ring_len == s->ring_cap) {   /* drop the oldest */
        s->count[s->ring[s->ring_head]]--;
        s->ring_head = (s->ring_head + 1) % s->ring_cap;
        s->ring_len--;
    }
    s->ring[(s->ring_head + s->ring_len) % s->ring_cap] = t;
    s->ring_len++;
    s->count[t]++;
}

/* ------------------------------------------------------------ penalties */

/* llama.cpp's rule: divide a positive logit by the repeat penalty, multiply
 * a non-positive one (so a penalty always makes the token less likely), then
 * subtract count*frequency + presence. Applied once per distinct token. */
static void apply_penalties(tl_sampler *s, float *l) {
    const float r = s->p.repeat_penalty, fp = s->p.frequency_penalty, pp = s->p.presence_penalty;
    for (int i = 0; i < s->ring_len; i++) {
        int32_t t = s->ring[(s->ring_head + i) % s->ring_cap];
        int32_t c = s->count[t];
        if (c <= 0) continue;          /* already done: marked negative below */
        float v = l[t];
        if (r != 1.0f) v = v <= 0.0f ? v * r : v / r;
        l[t] = v - (float)c * fp - pp;
        s->count[t] = -c;
    }
    for (int i = 0; i < s->ring_len; i++) {
        int32_t t = s->ring[(s->ring_head + i) % s->ring_cap];
        if (s->count[t] < 0) s->count[t] = -s->count[t];
    }
}

/* ------------------------------------------------------------ selection */

tl_token tl_sampler_argmax(const float *l, int n) {
    /* Two passes: a branch-free max with independent accumulators (the
     * compare-select pattern skips NaN, which compares false), then the
     * first index holding it, which gives ties to the lowest id. */
    float acc[8];
    for (int j = 0; j < 8; j++) acc[j] = -INFINITY;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] = l[i + j] > acc[j] ? l[i + j] : acc[j];
    for (; i < n; i++) acc[0] = l[i] > acc[0] ? l[i] : acc[0];
    float mx = acc[0];
    for (int j = 1; j < 8; j++) mx = acc[j] > mx ? acc[j] : mx;
    if (mx == -INFINITY) return 0;
    for (i = 0; i < n; i++)
        if (l[i] == mx) return i;
    return 0;
}

/* "a ranks below b": lower logit, or equal logit and higher id. */
static inline int worse(cand a, cand b) {
    return a.logit < b.logit || (a.logit == b.logit && a.id > b.id);
}

/* Min-heap on rank (root = worst candidate). */
static void sift_down(cand *h, int n, int i) {
    cand x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && worse(h[c + 1], h[c])) c++;
        if (!worse(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heapify(cand *h, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(h, n, i);
}

/* Turns a heap into an array sorted best first: popping the worst to the
 * back leaves the best at the front. */
static void heap_sort_best_first(cand *h, int n) {
    for (int end = n - 1; end > 0; end--) {
        cand t = h[0];
        h[0] = h[end];
        h[end] = t;
        sift_down(h, end, 0);
    }
}

static inline float nan_to_ninf(float v) { return isnan(v) ? -INFINITY : v; }

/* Top k of l[0..n) into c[0..k), best first. O(n + m log k) where m is the
 * number of heap replacements, small for typical logit distributions. */
static void top_k(const float *l, int n, int k, cand *c) {
    for (int i = 0; i < k; i++) c[i] = (cand){nan_to_ninf(l[i]), i};
    heapify(c, k);
    for (int i = k; i < n; i++) {
        /* Later ids rank below equal logits, so only a strictly larger logit
         * enters; NaN compares false and never does. */
        if (l[i] > c[0].logit) {
            c[0] = (cand){l[i], i};
            sift_down(c, k, 0);
        }
    }
    heap_sort_best_first(c, k);
}

/* Runs the chain up to (not including) the draw: leaves the kept candidates
 * best first in s->cand[0..n_cand) with unnormalised temperature-scaled
 * probabilities in s->prob and their sum in s->prob_sum. Returns n_cand,
 * or 0 when no candidate has a finite logit (caller falls back to argmax). */
static int filter(tl_sampler *s, const float *l) {
    const int n = s->n_vocab;
    const tl_sampler_params *p = &s->p;
    const bool use_top_p = p->top_p < 1.0f;
    int k = p->top_k > 0 && p->top_k < n ? p->top_k : 0;
    cand *c = s->cand;
    int m;
    double z = 0.0;   /* softmax normaliser (relative to c[0]) for top-p */

    if (k) {
        top_k(l, n, k, c);
        m = k;
        if (!isfinite(c[0].logit)) return 0;
        if (use_top_p)
            for (int i = 0; i < m; i++) z += exp((double)c[i].logit - c[0].logit);
    } else {
        float mx = -INFINITY;
        for (int i = 0; i < n; i++)
            if (l[i] > mx) mx = l[i];
        if (!isfinite(mx)) return 0;
        if (use_top_p)
            for (int i = 0; i < n; i++)
                if (l[i] > -INFINITY) z += exp((double)l[i] - mx);
        /* min-p cut first (see the file comment), then sort the survivors. */
        const float thr = p->min_p > 0.0f ? mx + logf(p->min_p) : -INFINITY;
        m = 0;
        for (int i = 0; i < n; i++)
            if (l[i] >= thr && l[i] > -INFINITY) c[m++] = (cand){l[i], i};
        heapify(c, m);
        heap_sort_best_first(c, m);
    }

    if (use_top_p) {
        /* Keep the shortest prefix whose probability mass reaches top_p
         * (the token that crosses it is kept). */
        double cum = 0.0;
        for (int i = 0; i < m; i++) {
            cum += exp((double)c[i].logit - c[0].logit) / z;
            if (cum >= p->top_p) {
                m = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        const float thr = c[0].logit + logf(p->min_p);
        int i = 1;   /* the best token always survives */
        while (i < m && c[i].logit >= thr) i++;
        m = i;
    }

    /* Temperature (> 0 here) then an unnormalised softmax. */
    const float inv_t = 1.0f / p->temperature;
    float sum = 0.0f;
    for (int i = 0; i < m; i++) {
        s->prob[i] = expf((c[i].logit - c[0].logit) * inv_t);
        sum += s->prob[i];
    }
    s->n_cand = m;
    s->prob_sum = sum;
    return m;
}

tl_token tl_sampler_sample(tl_sampler *s, const float *logits) {
    const float *l = logits;
    const tl_sampler_params *p = &s->p;
    if (s->ring_len > 0 &&
        (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f)) {
        memcpy(s->work, logits, (size_t)s->n_vocab * sizeof *s->work);
        apply_penalties(s, s->work);
        l = s->work;
    }
    if (!(p->temperature > 0.0f)) return tl_sampler_argmax(l, s->n_vocab);

    int m = filter(s, l);
    if (m == 0) return tl_sampler_argmax(l, s->n_vocab);
    double u = rng_uniform(s->rng) * s->prob_sum;
    double acc = 0.0;
    for (int i = 0; i < m; i++) {
        acc += s->prob[i];
        if (u < acc) return s->cand[i].id;
    }
    return s->cand[m - 1].id;   /* rounding left u at the very top */
}

int tl_sampler_candidates(tl_sampler *s, const float *logits, const tl_token **ids,
                          const float **probs) {
    const float *l = logits;
    const tl_sampler_params *p = &s->p;
    if (s->ring_len > 0 &&
        (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f)) {
        memcpy(s->work, logits, (size_t)s->n_vocab * sizeof *s->work);
        apply_penalties(s, s->work);
        l = s->work;
    }
    int m;
    if (!(p->temperature > 0.0f) || (m = filter(s, l)) == 0) {
        s->cand[0] = (cand){0.0f, tl_sampler_argmax(l, s->n_vocab)};
        s->prob[0] = 1.0f;
        s->prob_sum = 1.0f;
        s->n_cand = m = 1;
    }
    for (int i = 0; i < m; i++) {
        s->prob[i] /= s->prob_sum;
        s->ids[i] = s->cand[i].id;
    }
    s->prob_sum = 1.0f;
    *ids = s->ids;
    *probs = s->prob;
    return m;
}
