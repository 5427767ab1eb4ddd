/* neon.h — internals shared by the NEON kernel files (AArch64 Advanced SIMD
 * with the dot-product extension, ARMv8.2-A+dotprod). Only included from
 * kern/cpu/neon/, which is compiled with -march=armv8.2-a+dotprod+fp16 and
 * -ffp-contract=off: GCC's arm_neon.h spells vmulq/vaddq as plain C
 * operators, so without it the compiler could fuse them, and the bit-exact
 * slots (scale, silu_mul, exp_sum, the activation quantizers) would drift from the
 * reference. Every fused multiply-add here is an explicit vfmaq. */
#ifndef TL_KERN_NEON_H
#define TL_KERN_NEON_H

#include <arm_neon.h>
#include <stdbool.h>
#include <stddef.h>
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

/* exp(x) (4,), lane for lane as core/vmath.h's tl_vexpf (bit-exact): each
 * fmaf there is one vfmaq / vfmsq here, each branch a bit select, and the
 * file is compiled without fp contraction (see above). Shared by silu_mul
 * (f32_neon.c) and exp_sum (attn_neon.c). exp(-inf) = 0. */
TL_NEON_INLINE float32x4_t tl_neon_exp4(float32x4_t x) {
    const float32x4_t r = vdupq_n_f32(0x1.8p23f);
    const float32x4_t z = vfmaq_f32(r, x, vdupq_n_f32(0x1.715476p+0f));
    const float32x4_t n = vsubq_f32(z, r);
    /* fmaf(-n, c, x) == x - n * c rounded once: vfmsq */
    const float32x4_t b = vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(0x1.62e4p-1f)), n,
                                    vdupq_n_f32(0x1.7f7d1cp-20f));
    const uint32x4_t e = vshlq_n_u32(vreinterpretq_u32_f32(z), 23);
    const float32x4_t k = vreinterpretq_f32_u32(vaddq_u32(e, vreinterpretq_u32_f32(vdupq_n_f32(1.0f))));
    const float32x4_t u = vmulq_f32(b, b);
    const float32x4_t j = vfmaq_f32(
        vmulq_f32(vdupq_n_f32(0x1.ffffecp-1f), b),
        vfmaq_f32(vfmaq_f32(vdupq_n_f32(0x1.fffdb6p-2f), vdupq_n_f32(0x1.555e66p-3f), b),
                  vfmaq_f32(vdupq_n_f32(0x1.573e2ep-5f), vdupq_n_f32(0x1.0e4020p-7f), b), u),
        u);
    const uint32x4_t big = vcagtq_f32(n, vdupq_n_f32(126.0f));
    const float32x4_t norm = vfmaq_f32(k, j, k);
    if (vmaxvq_u32(big) == 0) return norm;
    /* |n| > 126: 2^n split in two factors; |n| > 192: overflow / underflow */
    const uint32x4_t g = vandq_u32(vclezq_f32(n), vdupq_n_u32(0x82000000u));
    const float32x4_t s1 = vreinterpretq_f32_u32(vaddq_u32(g, vdupq_n_u32(0x7f000000u)));
    const float32x4_t s2 = vreinterpretq_f32_u32(vsubq_u32(e, g));
    const uint32x4_t huge = vcagtq_f32(n, vdupq_n_f32(192.0f));
    const float32x4_t scaled = vbslq_f32(huge, vmulq_f32(s1, s1), vmulq_f32(vfmaq_f32(s2, s2, j), s1));
    return vbslq_f32(big, scaled, norm);
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

/* Repacked weights (repack_neon.c; Q2_K, Q3_K: repack_k23_neon.c), groups
 * of 4 rows, with the kern.h
 * tl_repack contracts: row_size_Tx4 (packed bytes per row of n elements),
 * pack_Tx4 (W (nr, n) rows of T -> dst, nr % 4 == 0; dst caller-owned,
 * nr * row_size bytes), gemm_Tx4 (tl_gemm_fn over the packed rows). */
#define TL_NEON_RDECL(T)                                                                  \
    size_t tl_neon_row_size_##T##x4(int64_t n);                                           \
    void tl_neon_pack_##T##x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr); \
    void tl_neon_gemm_##T##x4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,    \
                              const void *w, size_t ldw, const void *x, size_t ldx);
TL_NEON_RDECL(q2_K)
TL_NEON_RDECL(q3_K)
TL_NEON_RDECL(q4_0)
TL_NEON_RDECL(q4_1)
TL_NEON_RDECL(q5_0)
TL_NEON_RDECL(q5_1)
TL_NEON_RDECL(q8_0)
TL_NEON_RDECL(q4_K)
TL_NEON_RDECL(q5_K)
TL_NEON_RDECL(q6_K)
#undef TL_NEON_RDECL

/* Repacked F16 and BF16 weights (repack_half_neon.c), groups of 4 rows in
 * one layout for both: row_size_half_x4, pack_half_x4 (as above, for
 * either type); gemm_f16x4 / gemm_bf16x4 over the packed rows take the
 * slots' act form: F32 rows carrying F16 (BF16) values, which
 * act_f16r / act_bf16r make (tl_from_float_fn: x (n,) f32 -> y (n,) f32,
 * y caller-owned). */
size_t tl_neon_row_size_half_x4(int64_t n);
void tl_neon_pack_half_x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_neon_gemm_f16x4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                        size_t ldw, const void *x, size_t ldx);
void tl_neon_gemm_bf16x4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_neon_act_f16r(const float *x, void *y, int64_t n);
void tl_neon_act_bf16r(const float *x, void *y, int64_t n);

/* Attention tiles over an F16 cache (attn_neon.c), with the kern.h
 * contracts of the slots attn_qk_f16, attn_pv_f16, exp_sum and max_f32. */
void tl_neon_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, float *s,
                         size_t lds);
void tl_neon_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                         const uint16_t *v, size_t ldv);
float tl_neon_exp_sum(int n, float *x, float m);
float tl_neon_max_f32(int n, const float *x);

/* Attention tiles over a Q8_0 cache (attn_q8_neon.c), with the kern.h
 * contracts of the slots attn_qk_q8_0 and attn_pv_q8_0. */
void tl_neon_attn_qk_q8_0(int R, int nt, int hd, const void *q, const void *k, size_t ldk,
                          float *s, size_t lds);
void tl_neon_attn_pv_q8_0(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                          const void *v, size_t ldv);

/* Row kernels of the non-matmul ops (f32_neon.c), with the kern.h contracts
 * of the slots of the same names. */
void tl_neon_axpy_q8_0(int n, float *y, float a, const void *v);
void tl_neon_scale(int n, float *y, float a);
void tl_neon_silu_mul(int n, float *o, const float *g, const float *u);
void tl_neon_gelu_mul(int n, float *o, const float *g, const float *u);
void tl_neon_norm_row(int n, float *y, const float *x, const float *w, const float *b, float eps,
                      bool layer);
void tl_neon_rope(int nh, int hd, int nr, bool neox, float *x, const float *cs, const float *sn);

#endif
