/* emu_selftest.c — exercises the syscall surface of tests/emu/run_x86.py the
 * way a static glibc test does, one mode per run (argv[1]):
 *   mem    malloc/realloc/free small and mmap-sized blocks (brk, mmap, mremap,
 *          munmap), calloc zeroing, stdio to stdout and stderr, clock_gettime,
 *          getrandom, argv/envp/auxv (AT_RANDOM, AT_PAGESZ, AT_HWCAP);
 *          exits 0 when every check holds
 *   exit   exits with argv[2]
 *   segv   writes through a null pointer (expect 128+11)
 *   abort  calls abort() (expect 128+6)
 *   vnni   executes vpdpbusd without asking CPUID (on a CPU model without
 *          VNNI, expect #UD = 128+4)
 * Built static and run by scripts/test-avx512.sh. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int fails;

#define EXPECT(c) do { if (!(c)) { fprintf(stderr, "selftest: FAIL %s (line %d)\n", #c, __LINE__); \
    fails++; } } while (0)

__attribute__((target("avx512f,avx512vnni"), noinline))
static int vnni_unchecked(void) {
    volatile int32_t seed = 3;
    __m512i a = _mm512_set1_epi32(seed), b = _mm512_set1_epi32(0x01010101);
    __m512i r = _mm512_dpbusd_epi32(_mm512_setzero_si512(), a, b);
    return _mm512_reduce_add_epi32(r);
}

static int mode_mem(int argc, char **argv) {
    EXPECT(argc >= 2 && strcmp(argv[1], "mem") == 0);
    EXPECT(getauxval(AT_PAGESZ) == 4096);
    EXPECT(getauxval(AT_RANDOM) != 0);
    EXPECT(getauxval(AT_HWCAP) != 0);
    EXPECT(sysconf(_SC_PAGESIZE) == 4096);

    /* brk-backed small blocks */
    enum { NSMALL = 2000 };
    static char *small[NSMALL];
    for (int i = 0; i < NSMALL; i++) {
        small[i] = malloc(16 + i % 300);
        memset(small[i], i & 0xFF, 16 + i % 300);
    }
    for (int i = 0; i < NSMALL; i++) {
        EXPECT(small[i][i % 16] == (char)(i & 0xFF));
        free(small[i]);
    }
    /* mmap-backed blocks, grown through mremap, many times over so that
     * unmapped memory must be recycled */
    for (int round = 0; round < 50; round++) {
        size_t n = (size_t)(1 + round % 7) << 20;
        unsigned char *p = malloc(n);
        EXPECT(p != NULL);
        if (!p) break;
        p[0] = 1, p[n - 1] = 2;
        p = realloc(p, 2 * n);
        EXPECT(p != NULL && p[0] == 1 && p[n - 1] == 2);
        if (!p) break;
        p[2 * n - 1] = 3;
        free(p);
    }
    unsigned char *z = calloc(3 << 20, 1);
    size_t nz = 0;
    for (size_t i = 0; i < (3u << 20); i += 4093) nz += z[i] != 0;
    EXPECT(nz == 0);
    free(z);

    struct timespec t0, t1;
    EXPECT(clock_gettime(CLOCK_MONOTONIC, &t0) == 0);
    EXPECT(clock_gettime(CLOCK_MONOTONIC, &t1) == 0);
    EXPECT(t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec));
    unsigned char rnd[32] = { 0 };
    EXPECT(getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd);

    const char *env = getenv("TL_EMU_SELFTEST");
    EXPECT(env && strcmp(env, "yes") == 0);
    printf("stdout: %d %.3f %s\n", 42, 2.5, "text");
    fprintf(stderr, "stderr: line\n");
    printf("selftest mem: %s\n", fails ? "FAIL" : "OK");
    return fails ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "mem";
    if (strcmp(mode, "mem") == 0) return mode_mem(argc, argv);
    if (strcmp(mode, "exit") == 0) return argc > 2 ? atoi(argv[2]) : 0;
    if (strcmp(mode, "segv") == 0) {
        volatile int *p = NULL;
        *p = 1;
        return 0;
    }
    if (strcmp(mode, "abort") == 0) abort();
    if (strcmp(mode, "vnni") == 0) {
        printf("vnni=%d\n", vnni_unchecked());
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
