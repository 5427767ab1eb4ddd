/* gelu.c — the f16 GELU table (core/gelu.h). */
#include "core/gelu.h"

#include <math.h>
#include <pthread.h>

/* no fused multiply-add in the formula, on any target: the table must hold
 * the same bytes everywhere (x86 without -mfma cannot fuse anyway) */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static float g_table[TL_GELU_TABLE_SIZE];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* The backend's former per-element gelu_tanh without its clamps (the
 * lookup applies them to the unrounded input): the same expression, libm's
 * tanhf, f16 rounding of the input and of the result. */
static float gelu_formula(float x) {
    const float c = 0.79788456080286535588f; /* sqrt(2/pi) */
    const float xh = tl_f16_to_f32(tl_f32_to_f16(x));
    return tl_f16_to_f32(tl_f32_to_f16(0.5f * xh * (1.0f + tanhf(c * xh * (1.0f + 0.044715f * xh * xh)))));
}

static void build(void) {
    for (int h = 0; h < TL_GELU_TABLE_SIZE; h++) g_table[h] = gelu_formula(tl_f16_to_f32((tl_f16)h));
}

const float *tl_gelu_table(void) {
    pthread_once(&g_once, build);
    return g_table;
}
