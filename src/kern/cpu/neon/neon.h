/* neon.h — internals shared by the NEON kernel files (AArch64 Advanced SIMD
 * with the dot-product extension, ARMv8.2-A+dotprod). Only included from
 * kern/cpu/neon/, which is compiled with -march=armv8.2-a+dotprod+fp16 and
 * -ffp-contract=off: GCC's arm_neon.h spells vmulq/vaddq as plain C
 * operators, so without it the compiler could fuse them, and the bit-exact
 * slots (scale, silu_mul, the activation quantizers) would drift from the
 * reference. Every fused multiply-add here is an explicit vfmaq. */
#ifndef TL_KERN_NEON_H
#define TL_KERN_NEON_H

#include <arm_neon.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kern/kern.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "kern/cpu/neon/ needs -march=armv8.2-a+dotprod (see CMakeLists.txt)"
#endif

#define TL_NEON_INLINE static inline __attribute__((always_inline))

/* IEEE half <-> float, one fcvt each; float -> half rounds to nearest even
 * (the default FPCR mode), as core/fp16.h's tl_f32_to_f16. */
TL_NEON_INLINE float tl_neon_h2f(uint16_t h) {
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

TL_NEON_INLINE uint16_t tl_neon_f2h(float f) {
    const __fp16 h = (__fp16)f;
    uint16_t u;
    memcpy(&u, &h, sizeof u);
    return u;
}

/* Sum of 8 float lanes lo (l0..l3), hi (l4..l7) in the reference's order
 * (core/vmath.h tl_hsum8_movehl): ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
TL_NEON_INLINE float tl_neon_hsum8_movehl(float32x4_t lo, float32x4_t hi) {
    const float32x4_t a = vaddq_f32(lo, hi);
    const float32x2_t b = vadd_f32(vget_low_f32(a), vget_high_f32(a)); /* a0+a2, a1+a3 */
    return vget_lane_f32(b, 0) + vget_lane_f32(b, 1);
}

/* Quantized kernels (quant_neon.c, kquant_neon.c), with the kern.h
 * contracts: vec_dot_T (tl_vec_dot_fn), gemm_T (tl_gemm_fn). */
#define TL_NEON_QDECL(T)                                                              \
    void tl_neon_vec_dot_##T(int64_t n, float *s, const void *w, const void *x);      \
    void tl_neon_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,    \
                          const void *w, size_t ldw, const void *x, size_t ldx);
TL_NEON_QDECL(q4_0)
TL_NEON_QDECL(q4_1)
TL_NEON_QDECL(q5_0)
TL_NEON_QDECL(q5_1)
TL_NEON_QDECL(q8_0)
TL_NEON_QDECL(q2_K)
TL_NEON_QDECL(q3_K)
TL_NEON_QDECL(q4_K)
TL_NEON_QDECL(q5_K)
TL_NEON_QDECL(q6_K)
#undef TL_NEON_QDECL

/* Row kernels of the non-matmul ops (f32_neon.c), with the kern.h contracts
 * of the slots of the same names. */
float tl_neon_dot_f32_f16(int n, const float *x, const uint16_t *h);
void tl_neon_axpy_f16(int n, float *y, float a, const uint16_t *h);
void tl_neon_axpy_q8_0(int n, float *y, float a, const void *v);
void tl_neon_scale(int n, float *y, float a);
void tl_neon_silu_mul(int n, float *o, const float *g, const float *u);
void tl_neon_norm_row(int n, float *y, const float *x, const float *w, const float *b, float eps,
                      bool layer);

#endif
