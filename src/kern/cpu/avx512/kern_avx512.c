/* kern_avx512.c — AVX-512 F16 kernels and the AVX-512 kernel table (with
 * the row-major BF16 kernels where the CPU has AVX512_BF16).
 *
 * The table holds only what this variant speeds up; select.c merges it over
 * the AVX2 table (and that over the reference), so every NULL slot here
 * keeps the AVX2 kernel: the other quant types, the float row kernels and
 * the activation quantizers (AVX2's are already byte-identical with the
 * reference and a small share of the time).
 *
 * A type's vec_dot and gemm are always replaced together: the driver and
 * the tests expect the gemm tile of a quantized type to reproduce its
 * vec_dot bit for bit. */
#include <pthread.h>
#include <string.h>

#include "core/fp16.h"
#include "core/quant.h"
#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

/* ---- F16 ------------------------------------------------------------------ *
 * 16 lanes, fused multiply-add; the last n % 16 elements through a masked
 * load (masked-off elements are neither read nor counted: they load as +0
 * and add 0 * 0). The reference sums in double: differences are float
 * rounding only. */

TL_AVX512_INLINE __m512 ld_h16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
// the first m < 16 values at p, the other lanes 0
TL_AVX512_INLINE __m512 ld_h16_part(const uint16_t *p, int64_t m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((__mmask16)((1u << m) - 1), p));
}

#define F16_MADD(acc, w, x) _mm512_fmadd_ps(w, x, acc)
// w (n,) f16 . x (n,) f16 -> *s;  W (nr, n) f16 @ X^T (nc, n) f16 -> y[c * ldy + r]
TL_AVX512_ELEM_KERNELS(static, vec_dot_f16, gemm_f16, __m512, 16, ld_h16, ld_h16_part, F16_MADD)

/* ---- the table ------------------------------------------------------------ */

static const tl_kern avx512_table = {
    .name = "avx512",
    .vec_dot = {
        [TL_DTYPE_F16] = vec_dot_f16,
        [TL_DTYPE_Q4_0] = tl_avx512_vec_dot_q4_0,
        [TL_DTYPE_Q8_0] = tl_avx512_vec_dot_q8_0,
        [TL_DTYPE_Q4_K] = tl_avx512_vec_dot_q4_K,
        [TL_DTYPE_Q5_K] = tl_avx512_vec_dot_q5_K,
        [TL_DTYPE_Q6_K] = tl_avx512_vec_dot_q6_K,
    },
    .gemm = {
        [TL_DTYPE_F16] = gemm_f16,
        [TL_DTYPE_Q4_0] = tl_avx512_gemm_q4_0,
        [TL_DTYPE_Q8_0] = tl_avx512_gemm_q8_0,
        [TL_DTYPE_Q4_K] = tl_avx512_gemm_q4_K,
        [TL_DTYPE_Q5_K] = tl_avx512_gemm_q5_K,
        [TL_DTYPE_Q6_K] = tl_avx512_gemm_q6_K,
    },
    .repack = {
        [TL_DTYPE_F16] = { 16, tl_avx512_row_size_f16x16, tl_avx512_pack_f16x16, tl_avx512_gemm_f16x16 },
        [TL_DTYPE_BF16] = { 16, tl_avx512_row_size_bf16x16, tl_avx512_pack_bf16x16, tl_avx512_gemm_bf16x16 },
        [TL_DTYPE_Q4_0] = { 16, tl_avx512_row_size_q4_0x16, tl_avx512_pack_q4_0x16, tl_avx512_gemm_q4_0x16,
                            .act_prep = tl_avx512_act_prep_q4_0x16, .act_blk = TL_AVX512_ACT_X16 },
        [TL_DTYPE_Q8_0] = { 16, tl_avx512_row_size_q8_0x16, tl_avx512_pack_q8_0x16, tl_avx512_gemm_q8_0x16,
                            .act_prep = tl_avx512_act_prep_q8_0x16, .act_blk = TL_AVX512_ACT_X16 },
        [TL_DTYPE_Q5_0] = { 16, tl_avx512_row_size_q5_0x16, tl_avx512_pack_q5_0x16, tl_avx512_gemm_q5_0x16,
                            .act_prep = tl_avx512_act_prep_q5_0x16, .act_blk = TL_AVX512_ACT_X16 },
        [TL_DTYPE_Q4_1] = { 16, tl_avx512_row_size_q4_1x16, tl_avx512_pack_q4_1x16, tl_avx512_gemm_q4_1x16,
                            .act_prep = tl_avx512_act_prep_q8_1x16, .act_blk = TL_AVX512_ACT_X16 },
        [TL_DTYPE_Q5_1] = { 16, tl_avx512_row_size_q5_1x16, tl_avx512_pack_q5_1x16, tl_avx512_gemm_q5_1x16,
                            .act_prep = tl_avx512_act_prep_q8_1x16, .act_blk = TL_AVX512_ACT_X16 },
        [TL_DTYPE_Q2_K] = { 16, tl_avx512_row_size_q2_Kx16, tl_avx512_pack_q2_Kx16, tl_avx512_gemm_q2_Kx16 },
        [TL_DTYPE_Q3_K] = { 16, tl_avx512_row_size_q3_Kx16, tl_avx512_pack_q3_Kx16, tl_avx512_gemm_q3_Kx16 },
        [TL_DTYPE_Q4_K] = { 16, tl_avx512_row_size_q4_Kx16, tl_avx512_pack_q4_Kx16, tl_avx512_gemm_q4_Kx16 },
        [TL_DTYPE_Q5_K] = { 16, tl_avx512_row_size_q5_Kx16, tl_avx512_pack_q5_Kx16, tl_avx512_gemm_q5_Kx16 },
        [TL_DTYPE_Q6_K] = { 16, tl_avx512_row_size_q6_Kx16, tl_avx512_pack_q6_Kx16, tl_avx512_gemm_q6_Kx16 },
    },
    .attn_qk_f16 = tl_avx512_attn_qk_f16,
    .attn_pv_f16 = tl_avx512_attn_pv_f16,
};

/* ---- BF16: a second table, for CPUs with AVX512_BF16 --------------------- *
 * What select.c checks (AVX-512 F/BW/VL + VNNI) does not imply vdpbf16ps:
 * Ice Lake, Tiger Lake and Rocket Lake lack it, Cooper Lake, Sapphire
 * Rapids and Zen 4 have it. So the row-major BF16 kernels (bf16_avx512.c)
 * enter the table only where CPUID reports it (leaf 7 subleaf 1, with the
 * OS's AVX-512 state: __builtin_cpu_supports checks both); elsewhere
 * BF16's vec_dot and gemm stay the AVX2 ones beneath this table. The
 * 16-row bf16x16 layout and its tiles need AVX-512F alone: they are in
 * the table above, for every AVX-512 CPU. */
static tl_kern avx512_bf16_table;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;

static void fill_bf16_table(void) {
    avx512_bf16_table = avx512_table;
    avx512_bf16_table.vec_dot[TL_DTYPE_BF16] = tl_avx512_vec_dot_bf16;
    avx512_bf16_table.gemm[TL_DTYPE_BF16] = tl_avx512_gemm_bf16;
}

const tl_kern *tl_kern_avx512_table(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) return &avx512_table;
    pthread_once(&bf16_once, fill_bf16_table);
    return &avx512_bf16_table;
}
