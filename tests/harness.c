#include "harness.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fp16.h"

int tl_test_failures;

const char *tl_test_shared(const char *rel) {
    static char buf[4096];
    const char *root = getenv("TL_SHARED");
    if (!root || !*root) root = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

void tl_test_require_shared(void) {
    struct stat st;
    if (stat(tl_test_shared("fixtures"), &st) != 0) {
        printf("SKIP: ../shared/fixtures not found (set TL_SHARED to the shared directory)\n");
        exit(77);
    }
}

int tl_test_finish(const char *name, int n_checks_hint) {
    (void)n_checks_hint;
    if (tl_test_failures) {
        printf("%s: %d check(s) failed\n", name, tl_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

void tl_test_seed(uint64_t seed) { g_rng = seed ? seed : 0x9E3779B97F4A7C15ull; }

uint32_t tl_test_u32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

float tl_test_uniform(void) { return (float)((tl_test_u32() >> 8) * (1.0 / 16777216.0)); }

float tl_test_normal(void) {
    float s = 0;
    for (int i = 0; i < 4; i++) s += tl_test_uniform();
    return (s - 2.0f) * 1.7320508f;
}

int tl_test_f16_ties(float *x) {
    int n = 0;
    for (int h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00) continue; /* infinities and NaNs */
        const float a = tl_f16_to_f32((tl_f16)h);
        /* half an f16 ulp further from zero: 2^-25 below 2^-14 (subnormal
         * halves), else bit 12 of the float's 23-bit mantissa */
        const float m = (h & 0x7c00) == 0 ? a + copysignf(0x1p-25f, a)
                                          : tl_f32_from_bits(tl_f32_bits(a) + ((uint32_t)1 << 12));
        x[n++] = m;
        x[n++] = nextafterf(m, 0.0f);
        x[n++] = nextafterf(m, m * 2.0f);
    }
    return n;
}
