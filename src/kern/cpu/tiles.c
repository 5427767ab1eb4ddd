/* tiles.c — the ISA-neutral tile-grid walks (tiles.h). */
#include "kern/cpu/tiles.h"

#include <assert.h>
#include <stdbool.h>

void tl_tile_walk(int64_t nb, int64_t nr, int64_t nc, float *y, size_t ldy, const uint8_t *w,
                  size_t ldw, const uint8_t *x, size_t ldx, int TR, int TC, tl_tile_fn tRC,
                  int TR1, tl_tile_fn tR1, tl_tile_fn t11) {
    int64_t c0 = 0;
    for (; c0 + TC <= nc; c0 += TC) {
        int64_t r0 = 0;
        for (; r0 + TR <= nr; r0 += TR)
            tRC(nb, y + (size_t)c0 * ldy + r0, ldy, w + r0 * ldw, ldw, x + c0 * ldx, ldx);
        for (; r0 < nr; r0++)
            for (int64_t c = c0; c < c0 + TC; c++)
                t11(nb, y + (size_t)c * ldy + r0, ldy, w + r0 * ldw, ldw, x + c * ldx, ldx);
    }
    for (; c0 < nc; c0++) {
        int64_t r0 = 0;
        for (; r0 + TR1 <= nr; r0 += TR1)
            tR1(nb, y + (size_t)c0 * ldy + r0, ldy, w + r0 * ldw, ldw, x + c0 * ldx, ldx);
        for (; r0 < nr; r0++)
            t11(nb, y + (size_t)c0 * ldy + r0, ldy, w + r0 * ldw, ldw, x + c0 * ldx, ldx);
    }
}

void tl_tile_half_gemm(int rows, int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,
                       size_t ldw, const void *vx, size_t ldx, const tl_half_tiles *ts) {
    const uint8_t *w = vw;
    const size_t gs = (size_t)rows * ldw;     /* bytes per group */
    const size_t eb = 2 * (size_t)rows;       /* bytes per element of a group */
    const int64_t ng = nr / rows, S = (int64_t)(ldx / sizeof(float));
    assert(ldx % sizeof(float) == 0 && rows <= TL_PACK_MAX_ROWS);
    for (int64_t c0 = 0; c0 < nc; c0 += TL_HALF_CT) {
        const int cc = nc - c0 < TL_HALF_CT ? (int)(nc - c0) : TL_HALF_CT;
        const int64_t seg = TL_HALF_XL1 / cc / 8 * 8;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t k0 = 0; k0 < n; k0 += seg) {
            const int64_t len = n - k0 < seg ? n - k0 : seg;
            const float *xf = (const float *)vx + c0 * S + k0;
            const uint8_t *wk = w + eb * (size_t)k0;
            const bool first = k0 == 0;
            const size_t run = eb * (size_t)len; /* bytes a tile reads of each group */
            int64_t g = 0;
            if (cc <= 2 && ng >= TL_HALF_GD) {
                const int64_t nt = ng / TL_HALF_GD;
                float o[2 * TL_HALF_GD * TL_PACK_MAX_ROWS]; /* tile i's outputs, token by token */
                const size_t ldo = (size_t)TL_HALF_GD * rows;
                for (int64_t i = 0; i < nt; i++) {
                    for (int c = 0; c < cc && !first; c++)
                        tl_tile_stream_gather(o + c * ldo, yc + c * ldy, i, nt, TL_HALF_GD, rows);
                    ts->g4[cc](len, first, o, ldo, wk + i * gs, (size_t)nt * gs, gs - run, xf, S);
                    for (int c = 0; c < cc; c++)
                        tl_tile_stream_scatter(yc + c * ldy, o + c * ldo, i, nt, TL_HALF_GD, rows);
                }
                g = nt * TL_HALF_GD;
            }
            /* the rest in adjacent groups: past its run, a stream goes on to the next tile's */
            for (; g + 2 <= ng; g += 2)
                ts->g2[cc](len, first, yc + rows * g, ldy, wk + g * gs, gs, 2 * gs - run, xf, S);
            for (; g < ng; g++) ts->g1[cc](len, first, yc + rows * g, ldy, wk + g * gs, gs, gs - run, xf, S);
        }
    }
}
