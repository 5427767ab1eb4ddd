/* select.c — picks the kernel table for this CPU, once.
 *
 * Each variant's table is merged over the reference (non-NULL slots win), so
 * a variant only implements what it speeds up. Merged tables are built once
 * under pthread_once and never change afterwards, so the returned pointers
 * can be shared freely between threads. */
#include "kern/kern.h"

#include "base/log.h"

#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#include <stdlib.h>
#include <string.h>

enum { V_REF, V_AVX2, V_AVX512, V_NEON, V_COUNT };

static const char *const variant_names[V_COUNT] = {
    [V_REF] = "ref", [V_AVX2] = "avx2", [V_AVX512] = "avx512", [V_NEON] = "neon",
};

static tl_kern merged[V_COUNT];
static bool usable[V_COUNT];
static const tl_kern *selected;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
/* F16C via CPUID leaf 1 (ECX bit 29): not every compiler's
 * __builtin_cpu_supports knows "f16c". AVX2's OS-state check (XSAVE/YMM)
 * is covered by __builtin_cpu_supports("avx2"). */
static bool has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

#if defined(__aarch64__)
/* The NEON kernels are built for ARMv8.2-A + dotprod + fp16 (vdotq_s32,
 * half-precision conversions): Advanced SIMD alone, mandatory on AArch64,
 * is not enough (a Cortex-A53 or A72 has no sdot). */
static bool has_neon_dotprod(void) {
#if defined(__linux__)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1UL << 10)
#endif
    const unsigned long hw = getauxval(AT_HWCAP);
    return (hw & HWCAP_ASIMDDP) && (hw & HWCAP_ASIMDHP);
#elif defined(__APPLE__)
    int dp = 0, hp = 0;
    size_t len = sizeof dp;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &dp, &len, NULL, 0) != 0) return false;
    len = sizeof hp;
    if (sysctlbyname("hw.optional.arm.FEAT_FP16", &hp, &len, NULL, 0) != 0) return false;
    return dp && hp;
#else
    return false; /* no way to ask: the reference is always safe */
#endif
}
#endif

/* Whether this CPU can run the variant's instructions (independent of
 * whether the build contains it). */
static bool cpu_supports(int v) {
    switch (v) {
    case V_REF:
        return true;
#if defined(__x86_64__) || defined(__i386__)
    case V_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case V_AVX512:
        __builtin_cpu_init();
        return cpu_supports(V_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    case V_NEON:
        return has_neon_dotprod();
#endif
    default:
        return false;
    }
}

/* The variant's own table if this build has one, else NULL. */
static const tl_kern *variant_table(int v) {
    switch (v) {
#ifdef TL_HAVE_AVX2
    case V_AVX2: return tl_kern_avx2_table();
#endif
#ifdef TL_HAVE_AVX512
    case V_AVX512: return tl_kern_avx512_table();
#endif
#ifdef TL_HAVE_NEON
    case V_NEON: return tl_kern_neon_table();
#endif
    default: return NULL;
    }
}

static void overlay(tl_kern *dst, const tl_kern *src) {
    for (int t = 0; t < TL_DTYPE_COUNT; t++) {
        if (src->vec_dot[t]) dst->vec_dot[t] = src->vec_dot[t];
        if (src->gemm[t]) dst->gemm[t] = src->gemm[t];
        if (src->from_float[t]) dst->from_float[t] = src->from_float[t];
        if (src->to_float[t]) dst->to_float[t] = src->to_float[t];
        if (src->repack[t].rows) dst->repack[t] = src->repack[t];
    }
    if (src->attn_qk_f16) dst->attn_qk_f16 = src->attn_qk_f16;
    if (src->attn_pv_f16) dst->attn_pv_f16 = src->attn_pv_f16;
    if (src->attn_qk_q8_0) dst->attn_qk_q8_0 = src->attn_qk_q8_0;
    if (src->attn_pv_q8_0) dst->attn_pv_q8_0 = src->attn_pv_q8_0;
    if (src->exp_sum) dst->exp_sum = src->exp_sum;
    if (src->max_f32) dst->max_f32 = src->max_f32;
    if (src->axpy_q8_0) dst->axpy_q8_0 = src->axpy_q8_0;
    if (src->scale) dst->scale = src->scale;
    if (src->silu_mul) dst->silu_mul = src->silu_mul;
    if (src->gelu_mul) dst->gelu_mul = src->gelu_mul;
    if (src->norm_row) dst->norm_row = src->norm_row;
    if (src->rope) dst->rope = src->rope;
}

static void init_tables(void) {
    const tl_kern *ref = tl_kern_ref();
    merged[V_REF] = *ref;
    usable[V_REF] = true;
    for (int v = V_REF + 1; v < V_COUNT; v++) {
        const tl_kern *tab = variant_table(v);
        if (!tab || !cpu_supports(v)) continue;
        merged[v] = *ref;
        /* avx512 kernels are written assuming the avx2 ones beneath them */
        if (v == V_AVX512 && usable[V_AVX2]) merged[v] = merged[V_AVX2];
        overlay(&merged[v], tab);
        merged[v].name = variant_names[v];
        usable[v] = true;
    }

    /* best usable variant, unless TL_CPU names a usable one */
    selected = &merged[V_REF];
    for (int v = V_REF + 1; v < V_COUNT; v++)
        if (usable[v]) selected = &merged[v];
    const char *env = getenv("TL_CPU");
    if (env && *env) {
        bool found = false;
        for (int v = 0; v < V_COUNT; v++) {
            if (usable[v] && strcmp(env, variant_names[v]) == 0) {
                selected = &merged[v];
                found = true;
            }
        }
        if (!found) TL_WARN("TL_CPU=%s is not available on this CPU/build; using %s", env, selected->name);
    }
    TL_DEBUG("cpu kernels: %s", selected->name);
}

const tl_kern *tl_kern_get(void) {
    pthread_once(&once, init_tables);
    return selected;
}

const tl_kern *tl_kern_variant(const char *name) {
    if (!name) return NULL;
    pthread_once(&once, init_tables);
    for (int v = 0; v < V_COUNT; v++)
        if (usable[v] && strcmp(name, variant_names[v]) == 0) return &merged[v];
    return NULL;
}
