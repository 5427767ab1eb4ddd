/* avx2.h — internals shared by the AVX2 (+FMA +F16C) kernel files.
 * Only included from kern/cpu/avx2/, which is compiled with those flags. */
#ifndef TL_KERN_AVX2_H
#define TL_KERN_AVX2_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#include "kern/kern.h"

#define TL_AVX2_INLINE static inline __attribute__((always_inline))

TL_AVX2_INLINE float tl_avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TL_AVX2_INLINE float tl_avx2_h2f(uint16_t h) { return _cvtsh_ss(h); }

/* exp(x), lane for lane as tl_vexpf (core/vmath.h) */
TL_AVX2_INLINE __m256 tl_avx2_exp8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 big = _mm256_cmp_ps(an, _mm256_set1_ps(126.0f), _CMP_GT_OQ);
    const __m256 norm = _mm256_fmadd_ps(j, k, k);
    if (!_mm256_movemask_ps(big)) return norm;
    /* |n| > 126: 2^n split in two factors; |n| > 192: overflow / underflow */
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 huge = _mm256_cmp_ps(an, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 scaled = _mm256_blendv_ps(_mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1),
                                           _mm256_mul_ps(s1, s1), huge);
    return _mm256_blendv_ps(norm, scaled, big);
}

/* Quantized kernels (quant_avx2.c, kquant_avx2.c), with the kern.h
 * contracts: vec_dot_T (tl_vec_dot_fn), gemm_T (tl_gemm_fn). */
#define TL_AVX2_QDECL(T)                                                              \
    void tl_avx2_vec_dot_##T(int64_t n, float *s, const void *w, const void *x);      \
    void tl_avx2_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,    \
                          const void *w, size_t ldw, const void *x, size_t ldx);
TL_AVX2_QDECL(q4_0)
TL_AVX2_QDECL(q4_1)
TL_AVX2_QDECL(q5_0)
TL_AVX2_QDECL(q5_1)
TL_AVX2_QDECL(q8_0)
TL_AVX2_QDECL(q2_K)
TL_AVX2_QDECL(q3_K)
TL_AVX2_QDECL(q4_K)
TL_AVX2_QDECL(q5_K)
TL_AVX2_QDECL(q6_K)
TL_AVX2_QDECL(f16)
#undef TL_AVX2_QDECL

/* The row-major BF16 gemm (bf16_avx2.c), tl_gemm_fn: the BF16 slot's gemm
 * where the matrix is not repacked. */
void tl_avx2_gemm_bf16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                       size_t ldw, const void *x, size_t ldx);

/* Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K repacked 8 rows to a group (repack_avx2.c): the kern.h
 * repack slot's row_size, pack, gemm and act_prep (tl_avx2_act_prep_Tx8:
 * what the gemm reads beside each activation block, TL_AVX2_ACT_T bytes). */
enum {
    TL_AVX2_ACT_Q4_0 = 8, /* Q4_0, Q5_0: (d, off * sum) of a q8_0 block */
    TL_AVX2_ACT_Q4_1 = 8, /* Q4_1, Q5_1: (d, s) of a q8_1 block as floats */
    TL_AVX2_ACT_Q8_0 = 4, /* d as a float */
    TL_AVX2_ACT_Q4_K = 20, /* Q4_K, Q5_K: d and the sub-block sums in pairs */
    TL_AVX2_ACT_Q6_K = 256, /* the quants in the tiles' order */
    TL_AVX2_ACT_Q2_K = 4, /* Q2_K, Q3_K: d */
};
size_t tl_avx2_row_size_q4_0x8(int64_t n);
void tl_avx2_pack_q4_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q4_0x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q4_0x8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q4_1x8(int64_t n);
void tl_avx2_pack_q4_1x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q4_1x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q4_1x8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q5_1x8(int64_t n);
void tl_avx2_pack_q5_1x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q5_1x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q5_1x8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q5_0x8(int64_t n);
void tl_avx2_pack_q5_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q5_0x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q5_0x8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q8_0x8(int64_t n);
void tl_avx2_pack_q8_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q8_0x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q8_0x8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q6_Kx8(int64_t n);
void tl_avx2_pack_q6_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q6_Kx8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q6_Kx8(void *dst, const void *x, int64_t nb);
/* Q2_K and Q3_K (repack_k23_avx2.c), the same slots. */
size_t tl_avx2_row_size_q2_Kx8(int64_t n);
void tl_avx2_pack_q2_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q2_Kx8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q2_Kx8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q3_Kx8(int64_t n);
void tl_avx2_pack_q3_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q3_Kx8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q3_Kx8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q4_Kx8(int64_t n);
void tl_avx2_pack_q4_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q4_Kx8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q4_Kx8(void *dst, const void *x, int64_t nb);
size_t tl_avx2_row_size_q5_Kx8(int64_t n);
void tl_avx2_pack_q5_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_q5_Kx8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_prep_q5_Kx8(void *dst, const void *x, int64_t nb);

/* F16 and BF16 repacked 8 rows to a group, f16x8 and bf16x8
 * (repack_half_avx2.c): the kern.h repack slots' row_size, pack and gemm,
 * and their act forms (F32 rows carrying F16 / BF16 values). */
size_t tl_avx2_row_size_f16x8(int64_t n);
void tl_avx2_pack_f16x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_f16x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                        size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_f16r(const float *x, void *y, int64_t n);
size_t tl_avx2_row_size_bf16x8(int64_t n);
void tl_avx2_pack_bf16x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
void tl_avx2_gemm_bf16x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);
void tl_avx2_act_bf16r(const float *x, void *y, int64_t n);

/* Attention tiles over a Q8_0 cache (attn_q8_avx2.c), the kern.h slots
 * attn_qk_q8_0 and attn_pv_q8_0. */
void tl_avx2_attn_qk_q8_0(int R, int nt, int hd, const void *q, const void *k, size_t ldk,
                          float *s, size_t lds);
void tl_avx2_attn_pv_q8_0(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                          const void *v, size_t ldv);

/* Row kernels of the non-matmul ops (f32_avx2.c, attn_avx2.c), with the kern.h contracts
 * of the slots of the same names. */
void tl_avx2_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k,
                         float *s, size_t lds);
void tl_avx2_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                         const uint16_t *v, size_t ldv);
float tl_avx2_exp_sum(int n, float *x, float m);
float tl_avx2_max_f32(int n, const float *x);
void tl_avx2_axpy_q8_0(int n, float *y, float a, const void *v);
void tl_avx2_scale(int n, float *y, float a);
void tl_avx2_silu_mul(int n, float *o, const float *g, const float *u);
void tl_avx2_gelu_mul(int n, float *o, const float *g, const float *u);
void tl_avx2_norm_row(int n, float *y, const float *x, const float *w, const float *b, float eps,
                      bool layer);
void tl_avx2_rope(int nh, int hd, int nr, bool neox, float *x, const float *cs, const float *sn);

#endif
