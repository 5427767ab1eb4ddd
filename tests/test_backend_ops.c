/* test_backend_ops.c — the CPU backend's fused element-wise ops against the
 * ops they fuse.
 *
 * add_norm (x += d, then h = norm(x) * w [+ b]) must give what add then norm
 * give, bit for bit, in x and in h: the forward pass uses it for every
 * residual add but the last, so any difference would move the logits. Cases:
 * RMS and layer norm, with and without weight and bias, one row to 300
 * rows (inline and pooled), row lengths 8 to 2048 with vector tails, on 1,
 * 2 and 3 threads. A row added twice or skipped, or a norm read before its
 * row's add, fails here; so does a gap or overlap in add's split across
 * threads (pooled above 8192 elements), which add_norm's row adds check. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/tensor.h"
#include "harness.h"

enum { N_BE = 3 };

static float *normals(size_t n, float amp) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = amp * tl_test_normal();
    return x;
}

static tl_tensor vec_tensor(const float *data, int dim) {
    tl_tensor t = { .name = "w", .type = TL_DTYPE_F32, .n_dims = 1, .ne = { dim, 1, 1, 1 },
                    .data = data, .nbytes = sizeof(float) * (size_t)dim };
    return t;
}

static void run_add_norm(tl_backend *be, int nth, tl_norm_kind kind, bool with_w, bool with_b, int n,
                         int dim) {
    const size_t cnt = (size_t)n * (size_t)dim;
    float *x0 = normals(cnt, 2.0f), *d = normals(cnt, 1.0f);
    float *wd = normals((size_t)dim, 1.0f), *bd = normals((size_t)dim, 0.5f);
    const tl_tensor w = vec_tensor(wd, dim), b = vec_tensor(bd, dim);
    const tl_tensor *wp = with_w ? &w : NULL, *bp = with_b ? &b : NULL;
    float *xa = malloc(sizeof(float) * cnt), *xf = malloc(sizeof(float) * cnt);
    float *ha = malloc(sizeof(float) * cnt), *hf = malloc(sizeof(float) * cnt);
    memcpy(xa, x0, sizeof(float) * cnt);
    memcpy(xf, x0, sizeof(float) * cnt);
    be->ops->add(be, xa, d, cnt);
    be->ops->norm(be, kind, xa, wp, bp, 1e-5f, n, dim, ha);
    be->ops->add_norm(be, kind, xf, d, wp, bp, 1e-5f, n, dim, hf);
    CHECKF(!memcmp(xa, xf, sizeof(float) * cnt), "x: %d threads, kind %d, w %d b %d, %d x %d", nth,
           (int)kind, with_w, with_b, n, dim);
    CHECKF(!memcmp(ha, hf, sizeof(float) * cnt), "h: %d threads, kind %d, w %d b %d, %d x %d", nth,
           (int)kind, with_w, with_b, n, dim);
    free(x0), free(d), free(wd), free(bd), free(xa), free(xf), free(ha), free(hf);
}

int main(void) {
    tl_test_seed(0x6164645f6e6f726dull);
    tl_backend *bes[N_BE] = { 0 };
    for (int i = 0; i < N_BE; i++) {
        tl_err err = { 0 };
        if (tl_backend_cpu_init(i + 1, &bes[i], &err) != TL_OK) {
            CHECKF(false, "tl_backend_cpu_init(%d): %s", i + 1, err.msg);
            return tl_test_finish("test_backend_ops", 0);
        }
    }
    const int rows[] = { 1, 2, 7, 300 }, dims[] = { 8, 37, 576, 2048 };
    for (int bi = 0; bi < N_BE; bi++)
        for (int k = 0; k < 2; k++)
            for (int wb = 0; wb < 3; wb++) /* no weight; weight; weight and bias */
                for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
                        run_add_norm(bes[bi], bi + 1, k ? TL_NORM_LAYER : TL_NORM_RMS, wb > 0, wb > 1,
                                     rows[ri], dims[di]);
    for (int i = 0; i < N_BE; i++) tl_backend_free(bes[i]);
    return tl_test_finish("test_backend_ops", 0);
}
