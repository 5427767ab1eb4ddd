/* avx512_smoke.c — proves the emulator runs AVX-512F/BW/VL/VNNI code:
 * checks what CPUID reports, then compares _mm512_dpbusd_epi32 (VNNI),
 * a masked BW op and a 512-bit float FMA reduction against scalar code.
 * Built static by scripts/test-avx512.sh and run under tests/emu/run_x86.py.
 * Exit 0 = all lanes match; prints one line per check. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fails;

static void check(const char *what, int ok) {
    printf("%-28s %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) fails++;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), noinline))
static void dpbusd_simd(const uint8_t *a, const int8_t *b, int32_t *acc) {
    __m512i va = _mm512_loadu_si512(a), vb = _mm512_loadu_si512(b);
    __m512i vc = _mm512_loadu_si512(acc);
    _mm512_storeu_si512(acc, _mm512_dpbusd_epi32(vc, va, vb));
}

__attribute__((target("avx512f,avx512bw"), noinline))
static void masked_add_bw(const int16_t *x, const int16_t *y, int16_t *out, uint32_t mask) {
    __m512i vx = _mm512_loadu_si512(x), vy = _mm512_loadu_si512(y);
    _mm512_storeu_si512(out, _mm512_mask_add_epi16(vx, mask, vx, vy));
}

__attribute__((target("avx512f"), noinline))
static float dot_simd(const float *x, const float *y, int n) {
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc);
    return _mm512_reduce_add_ps(acc);
}

int main(int argc, char **argv) {
    __builtin_cpu_init();
    int f = __builtin_cpu_supports("avx512f"), bw = __builtin_cpu_supports("avx512bw");
    int vl = __builtin_cpu_supports("avx512vl"), vnni = __builtin_cpu_supports("avx512vnni");
    printf("cpuid: avx512f=%d bw=%d vl=%d vnni=%d argc=%d argv0=%s\n", f, bw, vl, vnni, argc,
           argc > 0 ? argv[0] : "?");
    check("cpuid reports avx512+vnni", f && bw && vl && vnni);
    if (!(f && bw && vl && vnni)) return 2;

    uint8_t a[64];
    int8_t b[64];
    int32_t acc[16], ref[16];
    for (int i = 0; i < 64; i++) {
        a[i] = (uint8_t)(i * 37 + 11);
        b[i] = (int8_t)(i * 53 - 100);
    }
    for (int i = 0; i < 16; i++) acc[i] = ref[i] = i * 1000 - 7000;
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 4; k++) ref[i] += (int32_t)a[4 * i + k] * (int32_t)b[4 * i + k];
    dpbusd_simd(a, b, acc);
    check("vpdpbusd (vnni) 512", memcmp(acc, ref, sizeof acc) == 0);
    printf("  dpbusd lane0=%d lane15=%d\n", acc[0], acc[15]);

    int16_t x[32], y[32], out[32], want[32];
    uint32_t mask = 0xA5C3F00Fu;
    for (int i = 0; i < 32; i++) {
        x[i] = (int16_t)(i * 300 - 4000);
        y[i] = (int16_t)(i * 7 + 1);
        want[i] = (mask >> i) & 1 ? (int16_t)(x[i] + y[i]) : x[i];
    }
    masked_add_bw(x, y, out, mask);
    check("vpaddw masked (bw) 512", memcmp(out, want, sizeof out) == 0);

    enum { N = 1024 };
    float *p = malloc(N * sizeof(float)), *q = malloc(N * sizeof(float));
    double refd = 0;
    for (int i = 0; i < N; i++) {
        p[i] = (float)((i % 17) - 8) * 0.25f;
        q[i] = (float)((i % 5) - 2) * 0.5f;
        refd += (double)p[i] * q[i];
    }
    float got = dot_simd(p, q, N);
    check("vfmadd231ps zmm dot", got == (float)refd); /* exact: small dyadic values */
    printf("  dot=%g ref=%g\n", got, refd);
    free(p);
    free(q);
    printf("%s\n", fails ? "SMOKE FAIL" : "SMOKE OK");
    return fails ? 1 : 0;
}
