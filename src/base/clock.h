/* clock.h — monotonic time for spin budgets and benchmarks. */
#ifndef TL_BASE_CLOCK_H
#define TL_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds on CLOCK_MONOTONIC (arbitrary origin, never goes backwards).
 * Cheap (vDSO) on Linux, so it can be polled from spin loops. */
static inline uint64_t tl_clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
