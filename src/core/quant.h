/* quant.h — GGML block formats and their scalar reference (de)quantizers.
 *
 * The structs reproduce GGML's byte layout exactly (GGUF tensors are read in
 * place), so every field order and size below is load-bearing; the
 * static_asserts pin them. The *_ref quantizers reproduce llama.cpp's
 * quantize_row_*_ref bit for bit (same float operations in the same order),
 * which is what llama-quantize writes when no importance matrix is given.
 *
 * Conventions for every function here: k is the element count of the row
 * and must be a multiple of the type's block size (QK_* below); x and y must
 * not overlap; nothing is allocated; the caller owns both buffers. */
#ifndef TL_CORE_QUANT_H
#define TL_CORE_QUANT_H

#include <assert.h>
#include <stdint.h>
#include <string.h>
#include "core/fp16.h"

#define TL_QK4_0 32
#define TL_QK4_1 32
#define TL_QK5_0 32
#define TL_QK5_1 32
#define TL_QK8_0 32
#define TL_QK8_1 32
#define TL_QK_K 256
#define TL_K_SCALE_SIZE 12

/* ---- 32-element blocks ------------------------------------------------- */

/* x = d * (q - 8), q in [0,15]; qs[j] holds element j (low nibble) and
 * element j+16 (high nibble). */
typedef struct {
    tl_f16 d;
    uint8_t qs[TL_QK4_0 / 2];
} tl_block_q4_0;
static_assert(sizeof(tl_block_q4_0) == 2 + 16, "q4_0 layout");

/* x = d * q + m, q in [0,15]; nibble order as q4_0. */
typedef struct {
    tl_f16 d;
    tl_f16 m;
    uint8_t qs[TL_QK4_1 / 2];
} tl_block_q4_1;
static_assert(sizeof(tl_block_q4_1) == 4 + 16, "q4_1 layout");

/* x = d * (q - 16), q in [0,31]: low 4 bits as q4_0, bit 4 of element j in
 * bit j of the little-endian uint32 qh. */
typedef struct {
    tl_f16 d;
    uint8_t qh[4];
    uint8_t qs[TL_QK5_0 / 2];
} tl_block_q5_0;
static_assert(sizeof(tl_block_q5_0) == 2 + 4 + 16, "q5_0 layout");

/* x = d * q + m, q in [0,31]; bits as q5_0. */
typedef struct {
    tl_f16 d;
    tl_f16 m;
    uint8_t qh[4];
    uint8_t qs[TL_QK5_1 / 2];
} tl_block_q5_1;
static_assert(sizeof(tl_block_q5_1) == 4 + 4 + 16, "q5_1 layout");

/* x = d * q, q in [-127,127]. */
typedef struct {
    tl_f16 d;
    int8_t qs[TL_QK8_0];
} tl_block_q8_0;
static_assert(sizeof(tl_block_q8_0) == 2 + 32, "q8_0 layout");

/* Activation format for q4_1/q5_1: x = d * q; s = d * sum(q) lets the dot
 * product fold in the weight block's min without touching the quants. */
typedef struct {
    tl_f16 d;
    tl_f16 s;
    int8_t qs[TL_QK8_1];
} tl_block_q8_1;
static_assert(sizeof(tl_block_q8_1) == 4 + 32, "q8_1 layout");

/* ---- 256-element super-blocks ------------------------------------------ */

/* 16 sub-blocks of 16: x = d*(sc&15)*q - dmin*(sc>>4), q in [0,3].
 * Element 128*h + 32*s + l (h<2, s<4, l<32) is bits 2s..2s+1 of qs[32h+l]. */
typedef struct {
    uint8_t scales[TL_QK_K / 16];
    uint8_t qs[TL_QK_K / 4];
    tl_f16 d;
    tl_f16 dmin;
} tl_block_q2_K;
static_assert(sizeof(tl_block_q2_K) == 16 + 64 + 4, "q2_K layout");

/* 16 sub-blocks of 16: x = d*(sc-32)*(q-4), q in [0,7]; low 2 bits packed as
 * q2_K, bit 2 of element 32*b + l (b<8, l<32) in bit b of hmask[l]; the 16
 * 6-bit scales: low nibbles in scales[0..7] (j<8 low, j>=8 high nibble of
 * scales[j-8]), high 2 bits of scale j in bits 2*(j/4) of scales[8 + j%4]. */
typedef struct {
    uint8_t hmask[TL_QK_K / 8];
    uint8_t qs[TL_QK_K / 4];
    uint8_t scales[12];
    tl_f16 d;
} tl_block_q3_K;
static_assert(sizeof(tl_block_q3_K) == 32 + 64 + 12 + 2, "q3_K layout");

/* 8 sub-blocks of 32: x = d*sc*q - dmin*m, q in [0,15], 6-bit sc/m packed by
 * tl_get_scale_min_k4; qs[32c + l] holds element 64c + l (low nibble) and
 * 64c + 32 + l (high nibble). */
typedef struct {
    tl_f16 d;
    tl_f16 dmin;
    uint8_t scales[TL_K_SCALE_SIZE];
    uint8_t qs[TL_QK_K / 2];
} tl_block_q4_K;
static_assert(sizeof(tl_block_q4_K) == 4 + 12 + 128, "q4_K layout");

/* As q4_K with a 5th bit: q in [0,31]; bit 4 of element 32*b + l in bit b of
 * qh[l]. */
typedef struct {
    tl_f16 d;
    tl_f16 dmin;
    uint8_t scales[TL_K_SCALE_SIZE];
    uint8_t qh[TL_QK_K / 8];
    uint8_t qs[TL_QK_K / 2];
} tl_block_q5_K;
static_assert(sizeof(tl_block_q5_K) == 4 + 12 + 32 + 128, "q5_K layout");

/* 16 sub-blocks of 16: x = d*scales[j]*(q-32), q in [0,63]. For half h<2 and
 * l<32: ql[64h+l] holds the low nibbles of elements 128h+l (lo) and 128h+64+l
 * (hi), ql[64h+32+l] those of 128h+32+l and 128h+96+l; qh[32h+l] holds their
 * top 2 bits at shifts 0,2,4,6 for +0,+32,+64,+96. */
typedef struct {
    uint8_t ql[TL_QK_K / 2];
    uint8_t qh[TL_QK_K / 4];
    int8_t scales[TL_QK_K / 16];
    tl_f16 d;
} tl_block_q6_K;
static_assert(sizeof(tl_block_q6_K) == 128 + 64 + 16 + 2, "q6_K layout");

/* Activation format for all K-quants: x = d * q; bsums[j] = sum of
 * qs[16j..16j+15] (lets the dot product apply sub-block mins cheaply). */
typedef struct {
    float d;
    int8_t qs[TL_QK_K];
    int16_t bsums[TL_QK_K / 16];
} tl_block_q8_K;
static_assert(sizeof(tl_block_q8_K) == 4 + 256 + 32, "q8_K layout");

/* Unpacks 6-bit scale and min j (0..7) of a q4_K/q5_K scales[12] array:
 * j<4: low 6 bits of q[j] and q[j+4]; j>=4: a nibble of q[j+4] plus the top
 * two bits of q[j-4] (scale) and q[j] (min). */
static inline void tl_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Unpacks the 16 signed 6-bit scales of a q3_K block, already minus 32. */
static inline void tl_q3_K_scales(const uint8_t *packed, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
        int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* ---- dequantization: x (k elements of the type) -> y (k floats) --------- */

void tl_dequant_row_f16(const void *x, float *y, int64_t k);
void tl_dequant_row_bf16(const void *x, float *y, int64_t k);
void tl_dequant_row_q4_0(const void *x, float *y, int64_t k);
void tl_dequant_row_q4_1(const void *x, float *y, int64_t k);
void tl_dequant_row_q5_0(const void *x, float *y, int64_t k);
void tl_dequant_row_q5_1(const void *x, float *y, int64_t k);
void tl_dequant_row_q8_0(const void *x, float *y, int64_t k);
void tl_dequant_row_q8_1(const void *x, float *y, int64_t k);
void tl_dequant_row_q2_K(const void *x, float *y, int64_t k);
void tl_dequant_row_q3_K(const void *x, float *y, int64_t k);
void tl_dequant_row_q4_K(const void *x, float *y, int64_t k);
void tl_dequant_row_q5_K(const void *x, float *y, int64_t k);
void tl_dequant_row_q6_K(const void *x, float *y, int64_t k);
void tl_dequant_row_q8_K(const void *x, float *y, int64_t k);

/* ---- reference quantization: x (k floats) -> y (k elements of the type) --
 * Bit-exact with llama.cpp's quantize_row_<type>_ref. */

void tl_quant_row_f16_ref(const float *x, void *y, int64_t k);
void tl_quant_row_bf16_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q4_0_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q4_1_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q5_0_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q5_1_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q8_0_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q8_1_ref(const float *x, void *y, int64_t k);

/* Activation quantizers: x (k floats, k % 32 == 0) -> y (k/32 q8_0 / q8_1
 * blocks), the vec_dot operand of the weight types. Not the _ref weight
 * quantizers: llama.cpp's CPU backend on x86 quantizes activations with its
 * SIMD quantize_row_q8_0/q8_1, which multiply by 127/amax (not 1/(amax/127))
 * and round halves to even (not away from zero). One quant in a few hundred
 * differs between the two, enough to move a 30-layer model's logits by 0.2.
 * q8_1's s is d * sum(q) with the unrounded float d, as in the _ref form. */
void tl_quant_row_q8_0_act(const float *x, void *y, int64_t k);
void tl_quant_row_q8_1_act(const float *x, void *y, int64_t k);
void tl_quant_row_q2_K_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q3_K_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q4_K_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q5_K_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q6_K_ref(const float *x, void *y, int64_t k);
void tl_quant_row_q8_K_ref(const float *x, void *y, int64_t k);

/* Round-to-nearest (ties to even) via the 1.5*2^23 trick, exactly as GGML's
 * nearest_int; valid for |v| <= 4194303, which every caller guarantees by
 * construction. Shared by the K-quant quantizers. */
static inline int tl_nearest_int(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

#endif
