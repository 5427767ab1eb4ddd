/* membw.c — DRAM read bandwidth with N threads, the ceiling for decode
 * (tg GB/s), on 4 KiB pages and on transparent huge pages.
 *
 *   build: part of the CMake build (build/bin/membw), or
 *          cc -O2 -pthread bench/membw.c -o membw
 *   run:   membw [threads]        (1 GiB buffer, 5 passes per reader and page size)
 *
 * Each thread sums its contiguous share, as the decode GEMV streams its
 * chunk of weight rows, with three readers:
 *   plain     8-byte loads, the hardware prefetcher alone;
 *   prefetch  a cache line at a time with a software prefetch 1 KiB ahead,
 *             as the decode tiles read weights (PF_DEC in
 *             kern/cpu/avx2/repack_avx2.c);
 *   streams   the same over four streams in turn (the share's quarters),
 *             as a decode tile of 4 row groups reads its groups' rows.
 * The second keeps more lines in flight than the first: on this project's
 * Zen 3 VM its best pass reads about a tenth more (30.8-33.2 against
 * 27.4-29.5 GB/s, 2 threads, three runs in a row), which decode's own GB/s
 * figures had already shown: they were above the plain probe. The third
 * was added when, on the Xeon host the device lent (Emerald Rapids), decode
 * read 21-26 GB/s with 2 threads against a one-stream probe of 19.3: there
 * the four streams read 29.6-31.9 GB/s where one stream read 24.8 (another
 * lease; bench/RESULTS.md round 14), and decode's weights 30 GB/s
 * (decbench F16 / BF16). The best pass of the prefetching readers is the
 * limit to hold tg GB/s against; the last line says it.
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
enum { PLAIN, PREFETCH, STREAMS, NMODES };
static const char *const mode_names[NMODES] = { "plain", "prefetch", "streams" };
static int mode;

// the line at p, all of it read, folded into the sums
#define READ_LINE(p)                                                               \
    do {                                                                           \
        s0 += (p)[0] ^ (p)[4], s1 += (p)[1] ^ (p)[5], s2 += (p)[2] ^ (p)[6];       \
        s3 += (p)[3] ^ (p)[7];                                                     \
    } while (0)

static void *reader(void *arg) {
    const long id = (long)arg;
    const size_t per = N / (size_t)nthreads;
    const char *base = buf + (size_t)id * per;
    const uint64_t *p = (const uint64_t *)base;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (mode == PLAIN) {
        for (size_t i = 0; i + 4 <= per / 8; i += 4) {
            s0 += p[i];
            s1 += p[i + 1];
            s2 += p[i + 2];
            s3 += p[i + 3];
        }
    } else if (mode == PREFETCH) {
        /* one 64-byte line per step, all of it read; the prefetch may run
         * past the share's end (harmless: a prefetch never faults) */
        for (size_t i = 0; i + 8 <= per / 8; i += 8) {
            __builtin_prefetch(base + i * 8 + PREFETCH_AHEAD, 0, 3);
            READ_LINE(p + i);
        }
    } else {
        /* four streams: the share's quarters read a line each in turn,
         * each prefetched ahead, as the decode tiles of 4 row groups read
         * their groups' rows; more lines in flight than one stream keeps */
        const size_t q = per / 4 / 64 * 64;
        for (size_t i = 0; i + 64 <= q; i += 64) {
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const char *l = base + (size_t)j * q + i;
                __builtin_prefetch(l + PREFETCH_AHEAD, 0, 3);
                READ_LINE((const uint64_t *)l);
            }
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
        printf("%-10s %-8s %d thread%s: %.1f GB/s\n", what, mode_names[mode],
               nthreads, nthreads == 1 ? "" : "s", gbs);
    }
    return best;
}

/* the readers over one buffer with the given page advice; returns the
 * best pass of the prefetching ones (prefetch, streams) */
static double page_kind(const char *what, int advice) {
    const size_t huge = (size_t)2 << 20;
    buf = aligned_alloc(huge, N);
    if (!buf) return -1;
    if (advice) (void)madvise(buf, N, advice);
    memset(buf, 1, N);
    double best = 0;
    for (mode = PLAIN; mode < NMODES; mode++) {
        const double b = measure(what);
        if (mode != PLAIN && b > best) best = b;
    }
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
    printf("limit: %.1f GB/s (best prefetching pass, %d thread%s)\n", best, nthreads,
           nthreads == 1 ? "" : "s");
    return 0;
}
