/* fp16.h — IEEE half and bfloat16 conversions (scalar, exact, round-to-nearest-even). */
#ifndef TL_CORE_FP16_H
#define TL_CORE_FP16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t tl_f16;
typedef uint16_t tl_bf16;

static inline float tl_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t tl_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float tl_f16_to_f32(tl_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return tl_f32_from_bits(sign);
        /* subnormal: normalise */
        float f = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24 */
        return sign ? -f : f;
    }
    if (exp == 31) return tl_f32_from_bits(sign | 0x7f800000u | (mant << 13));
    return tl_f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline tl_f16 tl_f32_to_f16(float f) {
    uint32_t x = tl_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (tl_f16)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (tl_f16)(sign | 0x7c00); /* overflow -> inf */
    if (ax < 0x38800000u) { /* subnormal or zero in half */
        /* round-to-nearest-even via float addition trick */
        float a = tl_f32_from_bits(ax) + 0.5f;
        return (tl_f16)(sign | (tl_f32_bits(a) - 0x3f000000u));
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + mant_odd; /* rebias exponent (-112<<23) and round */
    return (tl_f16)(sign | (ax >> 13));
}

static inline float tl_bf16_to_f32(tl_bf16 h) { return tl_f32_from_bits((uint32_t)h << 16); }

static inline tl_bf16 tl_f32_to_bf16(float f) {
    uint32_t u = tl_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (tl_bf16)((u >> 16) | 64); /* quiet NaN */
    return (tl_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

#endif
