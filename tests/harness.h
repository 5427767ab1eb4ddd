/* harness.h — a tiny test harness: CHECK macros, shared-fixture lookup, skip. */
#ifndef TL_TESTS_HARNESS_H
#define TL_TESTS_HARNESS_H

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

extern int tl_test_failures;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    tl_test_failures++; } } while (0)
#define CHECKF(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); tl_test_failures++; } } while (0)

/* Path of a file under ../shared (TL_SHARED env), written to a static buffer
 * that the next call overwrites. */
const char *tl_test_shared(const char *rel);
/* Exits 77 (ctest "skipped") with a message when ../shared is absent. */
void tl_test_require_shared(void);
/* Deterministic test data: xorshift64 stream (seeded per test file) and a
 * roughly normal draw (Irwin-Hall, 4 terms, mean 0, std 1). */
void tl_test_seed(uint64_t seed);
uint32_t tl_test_u32(void);
float tl_test_uniform(void);   /* [0, 1) */
float tl_test_normal(void);

/* The floats where a conversion to f16 that rounds otherwise than
 * tl_f32_to_f16 (round to nearest even) would show: for every finite f16
 * value, the tie half an f16 ulp further from zero and the floats either
 * side of it. Writes 3 * 63488 floats to x (caller-sized) and returns how
 * many. */
int tl_test_f16_ties(float *x);

/* Prints "N passed, M failed" and returns the exit code for main. */
int tl_test_finish(const char *name, int n_checks_hint);

#endif
