/* kern.h — the CPU kernel table.
 *
 * One table per instruction-set variant (kern/cpu/{ref,avx2,avx512,neon}).
 * The selector (kern/cpu/select.c) probes the CPU once, copies the reference
 * table, then lets the best supported variant overwrite the slots it
 * implements; any slot a variant leaves NULL keeps the scalar reference.
 * Nothing outside kern/cpu/<isa>/ is compiled with ISA flags. */
#ifndef TL_KERN_KERN_H
#define TL_KERN_KERN_H

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

typedef struct tl_kern {
    const char *name;                          /* "ref", "avx2", "avx512", "neon" */
    tl_vec_dot_fn vec_dot[TL_DTYPE_COUNT];     /* indexed by weight type */
    tl_gemm_fn gemm[TL_DTYPE_COUNT];           /* NULL: driver loops vec_dot */
    tl_from_float_fn from_float[TL_DTYPE_COUNT]; /* F32 row -> type (activations) */
    tl_to_float_fn to_float[TL_DTYPE_COUNT];   /* type row -> F32 (embeddings) */
} tl_kern;

/* The table in use, selected on first call (honours TL_CPU=ref|avx2|avx512|neon).
 * Static storage; never freed. */
const tl_kern *tl_kern_get(void);
/* A specific variant, or NULL when this CPU/build cannot run it. */
const tl_kern *tl_kern_variant(const char *name);
/* The scalar reference (always available). */
const tl_kern *tl_kern_ref(void);

/* Per-ISA tables, defined in kern/cpu/<isa>/ (compiled with that ISA's
 * flags). Only the slots a variant implements are non-NULL; the selector
 * merges them over the reference. select.c references a getter only when the
 * build defines TL_HAVE_AVX2 / TL_HAVE_AVX512 / TL_HAVE_NEON. Static data. */
const tl_kern *tl_kern_avx2_table(void);
const tl_kern *tl_kern_avx512_table(void);
const tl_kern *tl_kern_neon_table(void);

#endif
