/* dtype.c — the dtype traits table and name lookup. */
#include "core/dtype.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/quant.h"

/* F32 rows are already floats: the "conversion" is a copy, which lets
 * callers treat every weight type uniformly. */
static void copy_f32(const void *x, float *y, int64_t k) { memcpy(y, x, (size_t)k * sizeof(float)); }
static void copy_to_f32(const float *x, void *y, int64_t k) { memcpy(y, x, (size_t)k * sizeof(float)); }

#define PLAIN(t, nm, sz) \
    [t] = { .name = nm, .block_size = 1, .type_size = sz, .is_quant = false, .vec_dot_type = t }

static const tl_dtype_traits traits[TL_DTYPE_COUNT] = {
    [TL_DTYPE_F32] = { .name = "F32", .block_size = 1, .type_size = 4, .is_quant = false,
                       .vec_dot_type = TL_DTYPE_F32, .to_float = copy_f32, .from_float = copy_to_f32 },
    [TL_DTYPE_F16] = { .name = "F16", .block_size = 1, .type_size = 2, .is_quant = false,
                       .vec_dot_type = TL_DTYPE_F16, .to_float = tl_dequant_row_f16,
                       .from_float = tl_quant_row_f16_ref },
    [TL_DTYPE_BF16] = { .name = "BF16", .block_size = 1, .type_size = 2, .is_quant = false,
                        .vec_dot_type = TL_DTYPE_BF16, .to_float = tl_dequant_row_bf16,
                        .from_float = tl_quant_row_bf16_ref },
    [TL_DTYPE_Q4_0] = { .name = "Q4_0", .block_size = TL_QK4_0, .type_size = sizeof(tl_block_q4_0),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_0,
                        .to_float = tl_dequant_row_q4_0, .from_float = tl_quant_row_q4_0_ref },
    [TL_DTYPE_Q4_1] = { .name = "Q4_1", .block_size = TL_QK4_1, .type_size = sizeof(tl_block_q4_1),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_1,
                        .to_float = tl_dequant_row_q4_1, .from_float = tl_quant_row_q4_1_ref },
    [TL_DTYPE_Q5_0] = { .name = "Q5_0", .block_size = TL_QK5_0, .type_size = sizeof(tl_block_q5_0),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_0,
                        .to_float = tl_dequant_row_q5_0, .from_float = tl_quant_row_q5_0_ref },
    [TL_DTYPE_Q5_1] = { .name = "Q5_1", .block_size = TL_QK5_1, .type_size = sizeof(tl_block_q5_1),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_1,
                        .to_float = tl_dequant_row_q5_1, .from_float = tl_quant_row_q5_1_ref },
    [TL_DTYPE_Q8_0] = { .name = "Q8_0", .block_size = TL_QK8_0, .type_size = sizeof(tl_block_q8_0),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_0,
                        .to_float = tl_dequant_row_q8_0, .from_float = tl_quant_row_q8_0_ref },
    [TL_DTYPE_Q8_1] = { .name = "Q8_1", .block_size = TL_QK8_1, .type_size = sizeof(tl_block_q8_1),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_1,
                        .to_float = tl_dequant_row_q8_1, .from_float = tl_quant_row_q8_1_ref },
    [TL_DTYPE_Q2_K] = { .name = "Q2_K", .block_size = TL_QK_K, .type_size = sizeof(tl_block_q2_K),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_K,
                        .to_float = tl_dequant_row_q2_K, .from_float = tl_quant_row_q2_K_ref },
    [TL_DTYPE_Q3_K] = { .name = "Q3_K", .block_size = TL_QK_K, .type_size = sizeof(tl_block_q3_K),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_K,
                        .to_float = tl_dequant_row_q3_K, .from_float = tl_quant_row_q3_K_ref },
    [TL_DTYPE_Q4_K] = { .name = "Q4_K", .block_size = TL_QK_K, .type_size = sizeof(tl_block_q4_K),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_K,
                        .to_float = tl_dequant_row_q4_K, .from_float = tl_quant_row_q4_K_ref },
    [TL_DTYPE_Q5_K] = { .name = "Q5_K", .block_size = TL_QK_K, .type_size = sizeof(tl_block_q5_K),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_K,
                        .to_float = tl_dequant_row_q5_K, .from_float = tl_quant_row_q5_K_ref },
    [TL_DTYPE_Q6_K] = { .name = "Q6_K", .block_size = TL_QK_K, .type_size = sizeof(tl_block_q6_K),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_K,
                        .to_float = tl_dequant_row_q6_K, .from_float = tl_quant_row_q6_K_ref },
    [TL_DTYPE_Q8_K] = { .name = "Q8_K", .block_size = TL_QK_K, .type_size = sizeof(tl_block_q8_K),
                        .is_quant = true, .vec_dot_type = TL_DTYPE_Q8_K,
                        .to_float = tl_dequant_row_q8_K, .from_float = tl_quant_row_q8_K_ref },
    /* integer/double types carry data (e.g. metadata tensors), never matmul
     * weights: no conversions */
    PLAIN(TL_DTYPE_I8, "I8", 1),
    PLAIN(TL_DTYPE_I16, "I16", 2),
    PLAIN(TL_DTYPE_I32, "I32", 4),
    PLAIN(TL_DTYPE_I64, "I64", 8),
    PLAIN(TL_DTYPE_F64, "F64", 8),
};

const tl_dtype_traits *tl_dtype_traits_of(int t) {
    if (t < 0 || t >= TL_DTYPE_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

const char *tl_dtype_name(int t) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(t);
    return tr ? tr->name : "?";
}

bool tl_dtype_from_name(const char *name, tl_dtype *out) {
    if (!name) return false;
    for (int t = 0; t < TL_DTYPE_COUNT; t++) {
        if (traits[t].name && strcasecmp(traits[t].name, name) == 0) {
            if (out) *out = (tl_dtype)t;
            return true;
        }
    }
    return false;
}

size_t tl_dtype_row_size(int t, int64_t n) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(t);
    if (!tr || n < 0 || n % tr->block_size) return 0;
    const uint64_t nblocks = (uint64_t)(n / tr->block_size);
    /* guard the multiplication: n comes from files */
    if (nblocks > SIZE_MAX / tr->type_size) return 0;
    return (size_t)nblocks * tr->type_size;
}
