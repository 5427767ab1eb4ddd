/* kern.h — the CPU kernel table.
 *
 * One table per instruction-set variant (kern/cpu/{ref,avx2,avx512,neon}).
 * The selector (kern/cpu/select.c) probes the CPU once, copies the reference
 * table, then lets the best supported variant overwrite the slots it
 * implements; any slot a variant leaves NULL keeps the scalar reference.
 * Nothing outside kern/cpu/<isa>/ is compiled with ISA flags. */
#ifndef TL_KERN_KERN_H
#define TL_KERN_KERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/dtype.h"

/* Dot product of one weight row w (n elements of type T) with one activation
 * row x (n elements already converted to traits(T)->vec_dot_type):
 *   w (n,) . x (n,) -> *s */
typedef void (*tl_vec_dot_fn)(int64_t n, float *s, const void *w, const void *x);

/* Tile product, optional per weight type:
 *   W (nr rows, n) @ X^T (nc rows, n) -> Y[c * ldy + r]  for r < nr, c < nc
 * w rows are ldw bytes apart, x rows (in vec_dot_type) ldx bytes apart. */
typedef void (*tl_gemm_fn)(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,
                           const void *w, size_t ldw, const void *x, size_t ldx);

/* Row kernels of the non-matmul ops. Every variant computes the same
 * function as the reference (kern/cpu/ref/kern_ref_f32.c); where the comment
 * says "bit-exact", a variant must reproduce the reference's bytes, else it
 * may differ by float summation order only. All pointers are borrowed. */

/* Attention tiles over an F16 cache: R query rows that share one KV head
 * (a GQA group's heads, for one or several tokens) against nt cache rows,
 * so that each K and V row is read and converted once for all R queries.
 *   qk: Q (R, hd) f32, rows hd apart . K (nt, hd) f16 -> S (R, nt), rows
 *       lds apart. K is stored in blocks of TL_KV_KEYS keys, dim-major:
 *       key i, dim d at k[(i / 8) * 8 * hd + d * 8 + i % 8], so a vector
 *       of 8 lanes holds one dim of 8 keys and a score needs no horizontal
 *       sum. k points at a block's start; the last block may be partial
 *       (nt % 8 != 0): its other lanes are read but their scores not written.
 *   pv: O (R, hdv) f32, rows hdv apart += P (R, nt), rows ldp apart
 *       @ V (nt, hdv) f16, rows ldv elements apart */
enum { TL_KV_KEYS = 8 };
typedef void (*tl_attn_qk_f16_fn)(int R, int nt, int hd, const float *q, const uint16_t *k,
                                  float *s, size_t lds);
typedef void (*tl_attn_pv_f16_fn)(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                                  const uint16_t *v, size_t ldv);
/* The same tiles over a Q8_0 cache (hd, hdv multiples of 32; a row is
 * hd / 32 tl_block_q8_0 blocks, contiguous). q is quantized to Q8_0 once
 * per row, so each score is an integer dot product per block:
 *   qk: Q (R, hd) Q8_0, rows hd / 32 blocks apart . K (nt, hd) Q8_0, rows
 *       ldk bytes apart -> S (R, nt), rows lds apart: s[r][i] is
 *       vec_dot[TL_DTYPE_Q8_0](hd, &s, k_i, q_r) up to float summation
 *       order. K's quants must lie in [-127, 127], as the Q8_0 quantizers
 *       (from_float) write them: the SIMD tiles multiply |q| by k * sign(q),
 *       which has no +128 (q may hold -128).
 *   pv: O (R, hdv) f32, rows hdv apart += P (R, nt), rows ldp apart
 *       @ dequant(V) (nt, hdv), V Q8_0 rows ldv bytes apart: per row, key
 *       and block o += (p * d) * q as axpy_q8_0, up to float rounding order
 *       (a variant may fuse the multiply-add) */
typedef void (*tl_attn_qk_q8_0_fn)(int R, int nt, int hd, const void *q, const void *k, size_t ldk,
                                   float *s, size_t lds);
typedef void (*tl_attn_pv_q8_0_fn)(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                                   const void *v, size_t ldv);
// x (n,) -> exp(x - m) (n,), the exp core/vmath.h's tl_vexpf lane for lane
// (bit-exact; exp(-inf) = 0); returns their sum   (a tile's softmax weights)
typedef float (*tl_exp_sum_fn)(int n, float *x, float m);
// max of x (n,), n >= 1, NaN-free   (a tile's largest score)
typedef float (*tl_max_fn)(int n, const float *x);
// y (n,) += a * dequant(v) (n,) Q8_0 blocks (n % 32 == 0)   (attention: softmax
// weight times a Q8_0 V[j]; per block y += (a * d) * q, bit-exact)
typedef void (*tl_axpy_q8_0_fn)(int n, float *y, float a, const void *v);
// y (n,) *= a   (bit-exact)
typedef void (*tl_scale_fn)(int n, float *y, float a);
// o (n,) = silu(g) (n,) * u (n,), silu as core/vmath.h's tl_vsilu on the
// first n & ~7 elements and libm's expf on the tail (bit-exact); o may alias g or u
typedef void (*tl_silu_mul_fn)(int n, float *o, const float *g, const float *u);
// o (n,) = gelu(g) (n,) * u (n,), or gelu(g) when u is NULL; gelu as
// core/gelu.h's tl_gelu_f16 (tanh form on the f16 grid: clamps at +-10, else
// the f16 table), then one float product (bit-exact); o may alias g or u
typedef void (*tl_gelu_mul_fn)(int n, float *o, const float *g, const float *u);
// y (n,) = (x - mean) / sqrt(var + eps) * w + b, mean = 0 unless layer
// (RMSNorm vs LayerNorm); sums in double; w, b may be NULL; y may alias x
typedef void (*tl_norm_row_fn)(int n, float *y, const float *x, const float *w, const float *b,
                               float eps, bool layer);
// x (nh, hd), one token's heads: the first nr dims of each (nr even, <= hd)
// rotated by the nr / 2 angles whose cos and sin are cs (nr/2,), sn (nr/2,),
// pair i being dims (i, i + nr/2) (neox) or (2i, 2i + 1):
//   x_a' = fma(x_a, cs_i, -(x_c sn_i)),  x_c' = fma(x_a, sn_i, x_c cs_i)
// in place, the other dims untouched (bit-exact)
typedef void (*tl_rope_fn)(int nh, int hd, int nr, bool neox, float *x, const float *cs,
                           const float *sn);

/* Optional weight repacking for a weight type T: groups of `rows` weight
 * rows are interleaved block by block, so one tile reads every row's block
 * b from one contiguous run and keeps one row per vector lane. A packed row
 * takes row_size(n) bytes (at least T's row size: scales may be stored
 * pre-expanded), a group rows * row_size(n).
 *   pack: W (nr, n) rows of T, rows ldw bytes apart -> dst
 *         (nr * row_size(n) bytes), nr % rows == 0
 *   gemm: tl_gemm_fn over the packed matrix: w points at packed row r0
 *         (r0 % rows == 0), ldw is row_size(n), nr % rows == 0.
 *   act:  where the gemm takes its activations in another form than rows of
 *         T's vec_dot_type: the form's type (its row size and blocks) and
 *         the F32 row -> that row conversion, which may round (the AVX2
 *         F16 and BF16 gemms' F32 rows carry F16 / BF16 values: converted
 *         once per product, not in every call); act_from_float NULL:
 *         vec_dot_type rows. Two slots whose forms share a type but not a
 *         conversion are two forms (the driver compares both).
 *   act_prep: where the gemm also reads, after each activation row's n / qk
 *         blocks, a per-block form of them (float scales, quant sums:
 *         act_blk bytes a block) that act_prep makes from the blocks, block
 *         by block, once per product rather than in each of the gemm's
 *         calls (a call is one chunk of rows): the entries start
 *         tl_act_prep_offset bytes into the row, rows are tl_act_row_bytes
 *         long (tl_act_prep_rows lays them out). NULL: plain rows. */
typedef void (*tl_pack_fn)(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);
// nb activation blocks at x -> their nb prepared entries at dst
typedef void (*tl_act_prep_fn)(void *dst, const void *x, int64_t nb);
typedef struct tl_repack {
    int rows;        /* 0: no repacking for this type */
    size_t (*row_size)(int64_t n);
    tl_pack_fn pack;
    tl_gemm_fn gemm;
    tl_dtype act_type;                /* with act_from_float only */
    tl_from_float_fn act_from_float;  /* NULL: T's vec_dot_type and from_float */
    tl_act_prep_fn act_prep;          /* NULL: none */
    size_t act_blk;                   /* with act_prep: bytes per block */
} tl_repack;

/* Where an activation row's prepared entries start: after its blocks
 * (row_bytes of them), on a 64-byte boundary of the row. */
static inline size_t tl_act_prep_offset(size_t row_bytes) { return (row_bytes + 63) & ~(size_t)63; }

/* Bytes of an activation row of n elements of type t (the form rp's gemm
 * takes), with rp's prepared entries after its blocks: a multiple of 64,
 * so that rows from a 64-byte aligned start keep their entries aligned. */
static inline size_t tl_act_row_bytes(const tl_repack *rp, tl_dtype t, int64_t n) {
    const size_t row = tl_dtype_row_size(t, n);
    if (!rp->act_prep) return row;
    const size_t nb = (size_t)(n / tl_dtype_traits_of(t)->block_size);
    return tl_act_prep_offset(row) + ((nb * rp->act_blk + 63) & ~(size_t)63);
}

/* Rows r < nr of n elements of type t at x (ldx bytes apart, each
 * tl_act_row_bytes long): their prepared entries from their blocks, for
 * rp's gemm (no-op without act_prep) */
static inline void tl_act_prep_rows(const tl_repack *rp, tl_dtype t, int64_t n, void *x, size_t ldx,
                                    int64_t nr) {
    if (!rp->act_prep) return;
    const size_t off = tl_act_prep_offset(tl_dtype_row_size(t, n));
    const int64_t nb = n / tl_dtype_traits_of(t)->block_size;
    for (int64_t r = 0; r < nr; r++)
        rp->act_prep((uint8_t *)x + (size_t)r * ldx + off, (const uint8_t *)x + (size_t)r * ldx, nb);
}

/* Bytes between activation rows of row_bytes each, as the gemm kernels
 * want them: rows a multiple of 4 KiB apart would put the streams of a
 * tile's tokens in one L1 set, so those are a line further apart. */
static inline size_t tl_act_stride(size_t row_bytes) {
    return row_bytes % 4096 ? row_bytes : row_bytes + 64;
}

typedef struct tl_kern {
    const char *name;                          /* "ref", "avx2", "avx512", "neon" */
    tl_vec_dot_fn vec_dot[TL_DTYPE_COUNT];     /* indexed by weight type */
    tl_gemm_fn gemm[TL_DTYPE_COUNT];           /* NULL: driver loops vec_dot */
    tl_from_float_fn from_float[TL_DTYPE_COUNT]; /* F32 row -> type (activations) */
    tl_to_float_fn to_float[TL_DTYPE_COUNT];   /* type row -> F32 (embeddings) */
    tl_repack repack[TL_DTYPE_COUNT];          /* rows == 0: none (the reference) */
    tl_attn_qk_f16_fn attn_qk_f16;
    tl_attn_pv_f16_fn attn_pv_f16;
    tl_attn_qk_q8_0_fn attn_qk_q8_0;
    tl_attn_pv_q8_0_fn attn_pv_q8_0;
    tl_exp_sum_fn exp_sum;
    tl_max_fn max_f32;
    tl_axpy_q8_0_fn axpy_q8_0;
    tl_scale_fn scale;
    tl_silu_mul_fn silu_mul;
    tl_gelu_mul_fn gelu_mul;
    tl_norm_row_fn norm_row;
    tl_rope_fn rope;
} tl_kern;

/* The table in use, selected on first call (honours TL_CPU=ref|avx2|avx512|neon).
 * Static storage; never freed. */
const tl_kern *tl_kern_get(void);
/* A specific variant, or NULL when this CPU/build cannot run it. */
const tl_kern *tl_kern_variant(const char *name);
/* The scalar reference (always available). */
const tl_kern *tl_kern_ref(void);

/* The reference row kernels (kern/cpu/ref/kern_ref_f32.c), the tl_kern
 * slots of the same names; exported for the reference table. */
void tl_ref_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, float *s,
                        size_t lds);
void tl_ref_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                        const uint16_t *v, size_t ldv);
void tl_ref_attn_qk_q8_0(int R, int nt, int hd, const void *q, const void *k, size_t ldk, float *s,
                         size_t lds);
void tl_ref_attn_pv_q8_0(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                         const void *v, size_t ldv);
float tl_ref_exp_sum(int n, float *x, float m);
float tl_ref_max_f32(int n, const float *x);
void tl_ref_axpy_q8_0(int n, float *y, float a, const void *v);
void tl_ref_scale(int n, float *y, float a);
void tl_ref_silu_mul(int n, float *o, const float *g, const float *u);
void tl_ref_gelu_mul(int n, float *o, const float *g, const float *u);
void tl_ref_norm_row(int n, float *y, const float *x, const float *w, const float *b, float eps,
                     bool layer);
void tl_ref_rope(int nh, int hd, int nr, bool neox, float *x, const float *cs, const float *sn);

/* Per-ISA tables, defined in kern/cpu/<isa>/ (compiled with that ISA's
 * flags). Only the slots a variant implements are non-NULL; the selector
 * merges them over the reference. select.c references a getter only when the
 * build defines TL_HAVE_AVX2 / TL_HAVE_AVX512 / TL_HAVE_NEON. Static data. */
const tl_kern *tl_kern_avx2_table(void);
const tl_kern *tl_kern_avx512_table(void);
const tl_kern *tl_kern_neon_table(void);

#endif
