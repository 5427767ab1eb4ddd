/* bf16_avx512.c — BF16 weights x BF16 activations with AVX512_BF16's
 * vdpbf16ps (_mm512_dpbf16_ps): each f32 lane adds the products of one
 * pair of adjacent bf16 elements, 32 elements per instruction.
 *
 * The one file built with -mavx512bf16 (CMakeLists.txt), so the compiler
 * may put BF16 instructions anywhere in it: nothing here runs before
 * kern_avx512.c has seen AVX512_BF16 in CPUID (the CPU check lives there,
 * not here, for that reason), and the other avx512 files stay without the
 * flag because Ice Lake and Tiger Lake have AVX-512 but no BF16.
 *
 * A bf16 x bf16 product (8-bit significands) is exact in f32, so against
 * the reference (the same products summed in double) only the summation
 * differs: the order, two f32 roundings per instruction and lane, and the
 * instruction's fixed DAZ/FTZ (denormal inputs count as 0, a denormal sum
 * is flushed to 0 — terms below 2^-126, which the reference keeps). The
 * last n % 32 elements go through a masked load: masked-off elements are
 * neither read nor counted (they load as +0 and add 0 * 0).
 *
 * The repacked BF16 layout (bf16x16, repack_half_avx512.c) is tiled with
 * plain FMAs instead: on an Emerald Rapids Xeon they do 1.7x the vdpbf16ps tiles'
 * prefill (that file says more). */
#include "kern/cpu/avx512/avx512.h"

// 32 bf16 at p
TL_AVX512_INLINE __m512bh ld_bf32(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512(p); }
// the first m < 32 bf16 at p, the other elements 0
TL_AVX512_INLINE __m512bh ld_bf32_part(const uint16_t *p, int64_t m) {
    return (__m512bh)_mm512_maskz_loadu_epi16((__mmask32)((1u << m) - 1), p);
}

#define BF16_MADD(acc, w, x) _mm512_dpbf16_ps(acc, w, x)
// w (n,) bf16 . x (n,) bf16 -> *s;  W (nr, n) bf16 @ X^T (nc, n) bf16 -> y[c * ldy + r]
TL_AVX512_ELEM_KERNELS(, tl_avx512_vec_dot_bf16, tl_avx512_gemm_bf16, __m512bh, 32, ld_bf32, ld_bf32_part,
                       BF16_MADD)
