/* tiles.c — the ISA-neutral tile-grid walk (tiles.h). */
#include "kern/cpu/tiles.h"

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
