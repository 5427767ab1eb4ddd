/* membw.c — DRAM read bandwidth with N threads, the ceiling for decode
 * (tg GB/s), on 4 KiB pages and on transparent huge pages.
 *
 *   build: part of the CMake build (build/bin/membw), or
 *          cc -O2 -pthread bench/membw.c -o membw
 *   run:   membw [threads]        (1 GiB buffer, 5 passes per page size)
 *
 * Each thread sums its contiguous share, as the decode GEMV streams its
 * chunk of weight rows. Plain C: the loads are far from the bottleneck.
 * Figures on a shared VM vary by +-30% from pass to pass. */
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

enum { MAXT = 64 };
static const size_t N = (size_t)1 << 30;
static char *buf;
static int nthreads;

static void *reader(void *arg) {
    const long id = (long)arg;
    const size_t per = N / (size_t)nthreads;
    const uint64_t *p = (const uint64_t *)(buf + (size_t)id * per);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= per / 8; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    return (void *)(uintptr_t)(s0 + s1 + s2 + s3);
}

static void measure(const char *what) {
    for (int pass = 0; pass < 5; pass++) {
        struct timespec a, b;
        pthread_t th[MAXT];
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, reader, (void *)i);
        for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        const double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        printf("%-10s %d threads: %.1f GB/s\n", what, nthreads, (double)N / s * 1e-9);
    }
}

int main(int argc, char **argv) {
    nthreads = argc > 1 ? atoi(argv[1]) : 2;
    if (nthreads < 1 || nthreads > MAXT) return 2;
    const size_t huge = (size_t)2 << 20;
    buf = aligned_alloc(huge, N);
    if (!buf) return 1;
#ifdef MADV_NOHUGEPAGE
    (void)madvise(buf, N, MADV_NOHUGEPAGE);
#endif
    memset(buf, 1, N);
    measure("4k pages");
    free(buf);
    buf = aligned_alloc(huge, N);
    if (!buf) return 1;
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, N, MADV_HUGEPAGE);
#endif
    memset(buf, 1, N);
    measure("huge pages");
    free(buf);
    return 0;
}
