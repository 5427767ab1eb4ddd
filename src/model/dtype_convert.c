/* dtype_convert.c — `--dtype`: convert every weight matrix once at load.
 *
 * Weights are normally used in place from the mapping. When the caller asks
 * for another type (to run an F32 checkpoint as F16, or quantize a Hugging
 * Face model to Q8_0 on the fly), each matrix is converted row by row —
 * source row -> F32 -> target type with the reference quantizer — into a
 * buffer the model owns, and the source's tensor view is pointed at it. */
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "model/model.h"

typedef struct conv_job {
    const tl_tensor *src;
    void *dst;
    tl_dtype to;
    float *scratch;   /* n_threads rows of ne[0] floats */
} conv_job;

// src (rows, k) of any type -> dst (rows, k) of type `to`
static void conv_work(void *arg, int ith, int nth) {
    const conv_job *j = arg;
    const int64_t k = j->src->ne[0], rows = tl_tensor_nrows(j->src);
    const size_t in_row = tl_tensor_row_bytes(j->src), out_row = tl_dtype_row_size(j->to, k);
    float *tmp = j->scratch + (size_t)ith * k;
    const tl_to_float_fn to_f = tl_dtype_traits_of(j->src->type)->to_float;
    const tl_from_float_fn from_f = tl_dtype_traits_of(j->to)->from_float;
    for (int64_t r = ith; r < rows; r += nth) {
        to_f((const uint8_t *)j->src->data + r * in_row, tmp, k);
        from_f(tmp, (uint8_t *)j->dst + r * out_row, k);
    }
}

tl_status tl_model_convert_weights(tl_model *m, tl_dtype to, int n_threads, tl_err *err) {
    const tl_dtype_traits *tt = tl_dtype_traits_of(to);
    tl_pool *pool = NULL;
    if (n_threads <= 0) n_threads = 1;
    tl_status rc = tl_pool_init(n_threads, &pool, err);
    if (rc != TL_OK) return rc;
    tl_source *s = m->src;
    m->owned_mats = calloc((size_t)(s->n_tensors ? s->n_tensors : 1), sizeof(void *));
    if (!m->owned_mats) rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; rc == TL_OK && i < s->n_tensors; i++) {
        tl_tensor *t = &s->tensors[i];
        const tl_dtype_traits *st = tl_dtype_traits_of(t->type);
        /* vectors stay F32 (load.c converts them); odd rows keep their type */
        if (t->n_dims < 2 || t->type == to || !st || !st->to_float || t->ne[0] % tt->block_size)
            continue;
        const size_t bytes = tl_dtype_row_size(to, t->ne[0]) * (size_t)tl_tensor_nrows(t);
        conv_job j = { .src = t, .to = to };
        j.dst = malloc(bytes ? bytes : 1);
        j.scratch = malloc(sizeof(float) * (size_t)t->ne[0] * (size_t)n_threads);
        if (!j.dst || !j.scratch) {
            free(j.dst);
            free(j.scratch);
            rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory converting '%s' to %s", t->name, tt->name);
            break;
        }
        tl_pool_run(pool, conv_work, &j);
        free(j.scratch);
        m->owned_mats[m->n_owned_mats++] = j.dst;
        m->owned_bytes += bytes;
        t->type = to;
        t->data = j.dst;
        t->nbytes = bytes;
    }
    tl_pool_free(pool);
    return rc;
}
