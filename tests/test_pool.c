/* test_pool.c — thread pool (dispatch, barrier, many tiny jobs, odd sizes)
 * and the arena allocator. Prints the dispatch rate of an empty job. */
#include "harness.h"
#include "base/arena.h"
#include "base/clock.h"
#include "base/pool.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ pool jobs */

typedef struct count_job {
    int nth_seen[64];          /* nth passed to each ith */
    _Atomic int calls;
    long hits[64];             /* per-thread counters, no sharing inside a job */
} count_job;

static void count_fn(void *ctx, int ith, int nth) {
    count_job *j = ctx;
    j->nth_seen[ith] = nth;
    j->hits[ith]++;
    atomic_fetch_add_explicit(&j->calls, 1, memory_order_relaxed);
}

static void empty_fn(void *ctx, int ith, int nth) { (void)ctx; (void)ith; (void)nth; }

/* Every thread writes its slice, then (after a barrier) checks the slices
 * of all others: catches a barrier that lets anyone through early. */
typedef struct phase_job {
    tl_pool *pool;
    int *data;                 /* n_phases * nth */
    int n_phases;
    _Atomic int errors;
} phase_job;

static void phase_fn(void *ctx, int ith, int nth) {
    phase_job *j = ctx;
    for (int ph = 0; ph < j->n_phases; ph++) {
        j->data[ph * nth + ith] = ph * 1000 + ith;
        tl_pool_barrier(j->pool, ith);
        for (int t = 0; t < nth; t++)
            if (j->data[ph * nth + t] != ph * 1000 + t) atomic_fetch_add(&j->errors, 1);
        tl_pool_barrier(j->pool, ith);   /* nobody moves on while others read */
    }
}

/* Jobs of uneven length: thread ith busy-waits a length that depends on
 * the round, so a different thread finishes last each time. Results written
 * inside must be visible to the caller after tl_pool_run returns. */
typedef struct uneven_job {
    int round;
    uint64_t out[64];
} uneven_job;

static void uneven_fn(void *ctx, int ith, int nth) {
    uneven_job *j = ctx;
    int len = ((j->round * 7 + ith * 13) % (nth + 3)) * 2000;
    volatile uint64_t acc = (uint64_t)ith;
    for (int i = 0; i < len; i++) acc = acc * 6364136223846793005ull + 1;
    if (j->round % 5 == 0 && ith == j->round % nth) usleep(200);   /* force a sleep path */
    j->out[ith] = (uint64_t)j->round * 64 + (uint64_t)ith + (acc & 0);
}

static void test_pool_n(int n, int runs) {
    tl_err err = {0};
    tl_pool *p = NULL;
    CHECK(tl_pool_init(n, &p, &err) == TL_OK);
    if (!p) return;
    CHECK(tl_pool_n_threads(p) == n);

    /* many tiny jobs */
    count_job cj;
    memset(&cj, 0, sizeof cj);
    atomic_init(&cj.calls, 0);
    for (int r = 0; r < runs; r++) tl_pool_run(p, count_fn, &cj);
    CHECKF(atomic_load(&cj.calls) == n * runs, "n=%d calls=%d want %d", n,
           atomic_load(&cj.calls), n * runs);
    for (int t = 0; t < n; t++) {
        CHECKF(cj.hits[t] == runs, "n=%d thread %d ran %ld times", n, t, cj.hits[t]);
        CHECK(cj.nth_seen[t] == n);
    }

    /* barrier phases */
    int n_phases = 200;
    int data[200 * 16];
    phase_job pj = {.pool = p, .data = data, .n_phases = n_phases};
    atomic_init(&pj.errors, 0);
    for (int r = 0; r < 20; r++) {
        memset(data, 0xff, sizeof data);
        tl_pool_run(p, phase_fn, &pj);
    }
    CHECKF(atomic_load(&pj.errors) == 0, "n=%d barrier errors %d", n, atomic_load(&pj.errors));

    /* uneven jobs, including sleeps that push workers past their spin */
    uneven_job uj;
    int bad = 0;
    for (int r = 0; r < 300; r++) {
        uj.round = r;
        memset(uj.out, 0, sizeof uj.out);
        tl_pool_run(p, uneven_fn, &uj);
        for (int t = 0; t < n; t++) bad += uj.out[t] != (uint64_t)r * 64 + (uint64_t)t;
    }
    CHECKF(bad == 0, "n=%d uneven jobs: %d results not visible", n, bad);

    /* idle long enough for every worker to fall asleep, then run again */
    usleep(5000);
    memset(&cj, 0, sizeof cj);
    atomic_init(&cj.calls, 0);
    for (int r = 0; r < 10; r++) {
        tl_pool_run(p, count_fn, &cj);
        usleep(300);
    }
    CHECK(atomic_load(&cj.calls) == n * 10);

    /* no spinning at all: every wait goes to sleep */
    tl_pool_set_spin_us(p, 0);
    memset(&cj, 0, sizeof cj);
    atomic_init(&cj.calls, 0);
    for (int r = 0; r < 2000; r++) tl_pool_run(p, count_fn, &cj);
    CHECK(atomic_load(&cj.calls) == n * 2000);
    pj.n_phases = 20;
    atomic_store(&pj.errors, 0);
    tl_pool_run(p, phase_fn, &pj);
    CHECK(atomic_load(&pj.errors) == 0);

    tl_pool_free(p);
}

static void bench_dispatch(int n) {
    tl_err err = {0};
    tl_pool *p = NULL;
    if (tl_pool_init(n, &p, &err) != TL_OK) return;
    for (int i = 0; i < 1000; i++) tl_pool_run(p, empty_fn, NULL);
    /* time-boxed: a loaded or oversubscribed machine must not stall ctest */
    int runs = 0;
    uint64_t t0 = tl_clock_ns(), t1;
    do {
        for (int i = 0; i < 1000; i++) tl_pool_run(p, empty_fn, NULL);
        runs += 1000;
        t1 = tl_clock_ns();
    } while (t1 - t0 < 300000000ull && runs < 2000000);
    double s = (double)(t1 - t0) * 1e-9;
    printf("dispatch: %d threads, %.0f empty runs/s (%.2f us/run)\n", n, runs / s, s / runs * 1e6);
    tl_pool_free(p);
}

static void test_pool_errors(void) {
    tl_err err = {0};
    tl_pool *p = (tl_pool *)1;
    CHECK(tl_pool_init(0, &p, &err) == TL_ERR_INVALID_ARG);
    CHECK(p == NULL);
    CHECK(err.msg[0] != 0);
    CHECK(tl_pool_init(-3, &p, &err) == TL_ERR_INVALID_ARG);
    tl_pool_free(NULL);
}

/* ---------------------------------------------------------------- arena */

static void test_arena(void) {
    tl_arena a;
    tl_arena_init(&a, 4096);
    CHECK(tl_arena_used(&a) == 0);
    CHECK(tl_arena_capacity(&a) == 0);

    /* alignment and non-overlap */
    unsigned char *ps[100];
    size_t sizes[100];
    for (int i = 0; i < 100; i++) {
        sizes[i] = (size_t)(i * 37 % 300) + (i == 50 ? 10000 : 0);   /* one oversized */
        ps[i] = tl_arena_alloc(&a, sizes[i]);
        CHECK(ps[i] != NULL);
        CHECK(((uintptr_t)ps[i] % TL_ARENA_ALIGN) == 0);
        memset(ps[i], i, sizes[i]);
    }
    for (int i = 0; i < 100; i++) {
        for (size_t k = 0; k < sizes[i]; k++)
            if (ps[i][k] != (unsigned char)i) { CHECKF(0, "arena block %d clobbered", i); break; }
        if (i > 0) CHECK(ps[i] != ps[i - 1]);   /* size 0 still unique */
    }
    size_t cap = tl_arena_capacity(&a);
    CHECK(cap >= tl_arena_used(&a));

    /* reset reuses chunks: same pointers, no growth */
    tl_arena_reset(&a);
    CHECK(tl_arena_used(&a) == 0);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 100; i++) {
            unsigned char *q = tl_arena_alloc(&a, sizes[i]);
            CHECK(q != NULL);
            if (round == 0 && i == 0) CHECK(q == ps[0]);
        }
        tl_arena_reset(&a);
    }
    CHECKF(tl_arena_capacity(&a) == cap, "capacity grew from %zu to %zu across resets", cap,
           tl_arena_capacity(&a));

    /* mark / rewind */
    void *x = tl_arena_alloc(&a, 100);
    tl_arena_mark m = tl_arena_get_mark(&a);
    size_t used = tl_arena_used(&a);
    void *y = tl_arena_alloc(&a, 3000);
    void *z = tl_arena_alloc(&a, 3000);   /* crosses into another chunk */
    CHECK(y && z && x);
    tl_arena_rewind(&a, m);
    CHECK(tl_arena_used(&a) == used);
    void *y2 = tl_arena_alloc(&a, 3000);
    CHECK(y2 == y);
    void *z2 = tl_arena_alloc(&a, 3000);
    CHECK(z2 == z);

    /* calloc zeroes; overflow fails cleanly */
    unsigned char *c = tl_arena_calloc(&a, 10, 10);
    int nz = 0;
    for (int i = 0; i < 100; i++) nz += c[i] != 0;
    CHECK(nz == 0);
    CHECK(tl_arena_calloc(&a, SIZE_MAX / 2, 4) == NULL);
    CHECK(tl_arena_alloc(&a, SIZE_MAX) == NULL);

    /* reserve then allocate without growth */
    tl_arena_free(&a);
    CHECK(tl_arena_capacity(&a) == 0);
    tl_err err = {0};
    CHECK(tl_arena_reserve(&a, 1 << 16, &err) == TL_OK);
    size_t cap2 = tl_arena_capacity(&a);
    CHECK(cap2 >= (1 << 16));
    for (int i = 0; i < 16; i++) CHECK(tl_arena_alloc(&a, 4096 - 64) != NULL);
    CHECK(tl_arena_capacity(&a) == cap2);
    tl_arena_free(&a);
    tl_arena_free(NULL);

    /* a zero-initialised arena works too */
    tl_arena zero = {0};
    CHECK(tl_arena_alloc(&zero, 10) != NULL);
    tl_arena_free(&zero);
}

int main(void) {
    test_pool_errors();
    test_pool_n(1, 100000);
    test_pool_n(2, 100000);
    test_pool_n(4, 20000);
    test_pool_n(8, 5000);    /* likely more threads than cores */
    test_pool_n(13, 2000);
    test_arena();
    bench_dispatch(2);
    bench_dispatch(4);
    return tl_test_finish("test_pool", 0);
}
