/* gelu.h — GELU (tanh form) on the half-precision grid, as the reference
 * engine computes it: it tabulates gelu over all 65536 f16 values and looks
 * each activation up by its f16 rounding. Matching that (input and output
 * rounded to f16) moves Phi-2/Gemma logits 20-80x closer to its output than
 * the exact float formula does.
 *
 * Semantics, for a float x:
 *   x <= -10          -> +0
 *   x >= 10           -> x (not rounded)
 *   otherwise, NaN too -> table[tl_f32_to_f16(x)]
 * where table[h] = f16(0.5 * v * (1 + tanhf(sqrt(2/pi) * v * (1 + 0.044715 * v * v)))),
 * v = f16_to_f32(h), widened back to float. The clamps test x itself, not its
 * rounding: x = -9.999 rounds to -10 in f16 and takes the table's entry for
 * -10 (a tiny negative number), not 0.
 *
 * Every f16 NaN h of one sign holds the same entry (the formula sees the
 * canonical quiet NaN of that sign, as it does for any float NaN), so a
 * conversion that keeps NaN payloads (F16C, fcvt) reads the same value as
 * tl_f32_to_f16, which drops them. */
#ifndef TL_CORE_GELU_H
#define TL_CORE_GELU_H

#include "core/fp16.h"

/* Entries in the table: one per f16 bit pattern. Indices from a 16-bit
 * conversion are always in bounds, so the table needs no padding for a
 * gather. */
#define TL_GELU_TABLE_SIZE 65536

/* The table above, float32, indexed by f16 bit pattern. Built on the first
 * call (thread-safe: pthread_once; about a millisecond), static storage,
 * never freed; later calls return the same pointer. */
const float *tl_gelu_table(void);

/* gelu(x) by the semantics above, tab = tl_gelu_table(). */
static inline float tl_gelu_f16(const float *tab, float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    return tab[tl_f32_to_f16(x)];
}

#endif
