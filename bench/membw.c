/* membw.c — DRAM read bandwidth with N threads, the ceiling for decode
 * (tg GB/s), on 4 KiB pages and on transparent huge pages.
 *
 *   build: part of the CMake build (build/bin/membw), or
 *          cc -O2 -pthread bench/membw.c -o membw
 *   run:   membw [threads]        (1 GiB buffer, 5 passes per reader and page size)
 *
 * Each thread sums its contiguous share, as the decode GEMV streams its
 * chunk of weight rows, with two readers:
 *   plain     8-byte loads, the hardware prefetcher alone;
 *   prefetch  a cache line at a time with a software prefetch 1 KiB ahead,
 *             as the decode tiles read weights (PF_DEC in
 *             kern/cpu/avx2/repack_avx2.c).
 * The second keeps more lines in flight: on this project's Zen 3 VM its best
 * pass reads about a tenth more than the first's (30.8-33.2 against
 * 27.4-29.5 GB/s, 2 threads, three runs in a row), which decode's own GB/s
 * figures had already shown: they were above the plain probe. The best pass
 * of the prefetch reader is the limit to hold tg GB/s against; the last
 * line says it.
 * Figures on a shared VM vary by +-30% from pass to pass: read them beside
 * the run they judge, not from another hour. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { MAXT = 64, PASSES = 5, PREFETCH_AHEAD = 1024 };

/* page advice where the system has it (Linux); elsewhere both passes run
 * on whatever pages it gives */
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 0
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 0
#endif
static const size_t N = (size_t)1 << 30;
static char *buf;
static int nthreads;
static int use_prefetch;

static void *reader(void *arg) {
    const long id = (long)arg;
    const size_t per = N / (size_t)nthreads;
    const char *base = buf + (size_t)id * per;
    const uint64_t *p = (const uint64_t *)base;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (!use_prefetch) {
        for (size_t i = 0; i + 4 <= per / 8; i += 4) {
            s0 += p[i];
            s1 += p[i + 1];
            s2 += p[i + 2];
            s3 += p[i + 3];
        }
    } else {
        /* one 64-byte line per step, all of it read; the prefetch may run
         * past the share's end (harmless: a prefetch never faults) */
        for (size_t i = 0; i + 8 <= per / 8; i += 8) {
            __builtin_prefetch(base + i * 8 + PREFETCH_AHEAD, 0, 3);
            s0 += p[i] ^ p[i + 4];
            s1 += p[i + 1] ^ p[i + 5];
            s2 += p[i + 2] ^ p[i + 6];
            s3 += p[i + 3] ^ p[i + 7];
        }
    }
    return (void *)(uintptr_t)(s0 + s1 + s2 + s3);
}

/* PASSES timed passes; returns the best GB/s */
static double measure(const char *what) {
    double best = 0;
    for (int pass = 0; pass < PASSES; pass++) {
        struct timespec a, b;
        pthread_t th[MAXT];
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, reader, (void *)i);
        for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        const double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        const double gbs = (double)N / s * 1e-9;
        if (gbs > best) best = gbs;
        printf("%-10s %-8s %d thread%s: %.1f GB/s\n", what, use_prefetch ? "prefetch" : "plain",
               nthreads, nthreads == 1 ? "" : "s", gbs);
    }
    return best;
}

/* both readers over one buffer with the given page advice; returns the
 * prefetch reader's best pass */
static double page_kind(const char *what, int advice) {
    const size_t huge = (size_t)2 << 20;
    buf = aligned_alloc(huge, N);
    if (!buf) return -1;
    if (advice) (void)madvise(buf, N, advice);
    memset(buf, 1, N);
    use_prefetch = 0;
    (void)measure(what);
    use_prefetch = 1;
    const double best = measure(what);
    free(buf);
    return best;
}

int main(int argc, char **argv) {
    nthreads = argc > 1 ? atoi(argv[1]) : 2;
    if (nthreads < 1 || nthreads > MAXT) return 2;
    double best = page_kind("4k pages", MADV_NOHUGEPAGE);
    const double hp = page_kind("huge pages", MADV_HUGEPAGE);
    if (best < 0 || hp < 0) return 1;
    if (hp > best) best = hp;
    printf("limit: %.1f GB/s (best prefetch pass, %d thread%s)\n", best, nthreads,
           nthreads == 1 ? "" : "s");
    return 0;
}
