/* bench_util.h — clocks, a seeded generator and a sort comparator shared by
 * the bench/ programs (each is its own executable; this header is all they
 * share). */
#ifndef TL_BENCH_UTIL_H
#define TL_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>

/* seconds of wall-clock time (threads sharing DRAM: decbench, attnbench) */
static inline double bench_wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* seconds of this thread's CPU time (kbench: less distorted by a busy machine) */
static inline double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* uniform in [-1, 1) from the xorshift64 state *s */
static inline float bench_frand(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* qsort comparator of doubles, ascending */
static inline int bench_cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
