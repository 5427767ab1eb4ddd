/* load.c — binds a source's tensors to the model's weight slots and checks
 * every shape against the hyperparameters before anything runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* Small vectors (norm weights, biases) are used as F32 by every op; when a
 * file stores them otherwise (F16 in Hugging Face checkpoints) they are
 * converted once here. Large matrices are always used in place. */
typedef struct owned_vec {
    struct owned_vec *next;
    tl_tensor t;
    float data[];
} owned_vec;

static owned_vec **owned_list(tl_model *m) { return (owned_vec **)&m->owned_vecs; }

static const tl_tensor *find(tl_model *m, const char *fmt, int il) {
    char name[160];
    if (il >= 0) snprintf(name, sizeof name, fmt, il);
    else snprintf(name, sizeof name, "%s", fmt);
    return tl_source_find(m->src, name);
}

static tl_status shape_err(tl_err *err, const tl_tensor *t, int64_t e0, int64_t e1) {
    return tl_err_set(err, TL_ERR_FORMAT,
                      "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", t->name,
                      (long long)t->ne[0], (long long)t->ne[1], (long long)e0, (long long)e1);
}

/* A matrix W (e1 rows, e0 cols); required unless opt. */
static tl_status mat(tl_model *m, const tl_tensor **out, const char *fmt, int il, int64_t e0,
                     int64_t e1, bool opt, tl_err *err) {
    const tl_tensor *t = find(m, fmt, il);
    *out = t;
    if (!t) {
        if (opt) return TL_OK;
        char name[160];
        snprintf(name, sizeof name, fmt, il);
        return tl_err_set(err, TL_ERR_MISSING, "required tensor '%s' is missing (architecture %s)",
                          name, m->arch->name);
    }
    if (t->n_dims > 2 || t->ne[0] != e0 || t->ne[1] != e1) return shape_err(err, t, e0, e1);
    if (!m->backend->ops->supports(m->backend, TL_OP_MATMUL, t->type))
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor '%s': type %s is not supported for matmul",
                          t->name, tl_dtype_name(t->type));
    return TL_OK;
}

/* A vector of n elements, made F32 (and 1+w when the source says so for norms). */
static tl_status vec(tl_model *m, const tl_tensor **out, const char *fmt, int il, int64_t n,
                     bool opt, bool is_norm, tl_err *err) {
    const tl_tensor *t = find(m, fmt, il);
    *out = t;
    if (!t) {
        if (opt) return TL_OK;
        char name[160];
        snprintf(name, sizeof name, fmt, il);
        return tl_err_set(err, TL_ERR_MISSING, "required tensor '%s' is missing (architecture %s)",
                          name, m->arch->name);
    }
    if (tl_tensor_nelem(t) != n) return shape_err(err, t, n, 1);
    bool plus_one = is_norm && m->src->norm_plus_one;
    if (t->type == TL_DTYPE_F32 && !plus_one) return TL_OK;
    const tl_dtype_traits *tr = tl_dtype_traits_of(t->type);
    if (!tr || (!tr->to_float && t->type != TL_DTYPE_F32))
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor '%s': cannot convert type %s", t->name,
                          tl_dtype_name(t->type));
    owned_vec *o = malloc(sizeof *o + sizeof(float) * (size_t)n);
    if (!o) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    if (t->type == TL_DTYPE_F32) memcpy(o->data, t->data, sizeof(float) * (size_t)n);
    else tr->to_float(t->data, o->data, n);
    if (plus_one)
        for (int64_t i = 0; i < n; i++) o->data[i] += 1.0f;
    o->t = *t;
    o->t.type = TL_DTYPE_F32;
    o->t.data = o->data;
    o->t.nbytes = sizeof(float) * (size_t)n;
    m->owned_bytes += o->t.nbytes;
    o->next = *owned_list(m);
    *owned_list(m) = o;
    *out = &o->t;
    return TL_OK;
}

void tl_model_unbind(tl_model *m) {
    owned_vec *o = *owned_list(m);
    while (o) {
        owned_vec *n = o->next;
        free(o);
        o = n;
    }
    *owned_list(m) = NULL;
    free(m->layers);
    m->layers = NULL;
}

#define TRY(x) do { tl_status rc_ = (x); if (rc_ != TL_OK) return rc_; } while (0)

tl_status tl_model_bind(tl_model *m, tl_err *err) {
    const tl_hparams *hp = &m->hp;
    const tl_arch *a = m->arch;
    const int64_t E = hp->n_embd, V = hp->n_vocab, F = hp->n_ff;
    const int64_t QD = (int64_t)hp->n_head * hp->head_dim, KD = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t VD = (int64_t)hp->n_head_kv * hp->head_dim_v, OD = (int64_t)hp->n_head * hp->head_dim_v;

    TRY(mat(m, &m->tok_embd, "token_embd.weight", -1, E, V, false, err));
    if (!m->backend->ops->supports(m->backend, TL_OP_GET_ROWS, m->tok_embd->type))
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "token_embd.weight: type %s unsupported",
                          tl_dtype_name(m->tok_embd->type));
    TRY(vec(m, &m->output_norm, "output_norm.weight", -1, E, false, true, err));
    TRY(vec(m, &m->output_norm_b, "output_norm.bias", -1, E, true, false, err));
    TRY(mat(m, &m->output, "output.weight", -1, E, V, true, err));
    if (!m->output) m->output = m->tok_embd; /* tied embeddings */
    TRY(vec(m, &m->output_b, "output.bias", -1, V, true, false, err));
    TRY(vec(m, &m->rope_freqs, "rope_freqs.weight", -1, hp->rope_dims / 2, true, false, err));
    TRY(vec(m, &m->rope_long, "rope_factors_long.weight", -1, hp->rope_dims / 2, true, false, err));
    TRY(vec(m, &m->rope_short, "rope_factors_short.weight", -1, hp->rope_dims / 2, true, false, err));
    if (!m->rope_long != !m->rope_short)
        return tl_err_set(err, TL_ERR_MISSING, "required tensor '%s' is missing (LongRoPE needs both)",
                          m->rope_long ? "rope_factors_short.weight" : "rope_factors_long.weight");

    m->layers = calloc((size_t)hp->n_layer, sizeof(tl_layer_w));
    if (!m->layers) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    for (int il = 0; il < hp->n_layer; il++) {
        tl_layer_w *l = &m->layers[il];
        TRY(vec(m, &l->attn_norm, "blk.%d.attn_norm.weight", il, E, false, true, err));
        TRY(vec(m, &l->attn_norm_b, "blk.%d.attn_norm.bias", il, E, true, false, err));
        TRY(mat(m, &l->wqkv, "blk.%d.attn_qkv.weight", il, E, QD + KD + VD, true, err));
        if (l->wqkv) {
            TRY(vec(m, &l->bqkv, "blk.%d.attn_qkv.bias", il, QD + KD + VD, true, false, err));
        } else {
            if (!find(m, "blk.%d.attn_q.weight", il))
                return tl_err_set(err, TL_ERR_MISSING,
                                  "required tensor 'blk.%d.attn_qkv.weight' (or blk.%d.attn_q.weight, "
                                  "attn_k, attn_v) is missing (architecture %s)", il, il, a->name);
            TRY(mat(m, &l->wq, "blk.%d.attn_q.weight", il, E, QD, false, err));
            TRY(mat(m, &l->wk, "blk.%d.attn_k.weight", il, E, KD, false, err));
            TRY(mat(m, &l->wv, "blk.%d.attn_v.weight", il, E, VD, false, err));
            TRY(vec(m, &l->bq, "blk.%d.attn_q.bias", il, QD, true, false, err));
            TRY(vec(m, &l->bk, "blk.%d.attn_k.bias", il, KD, true, false, err));
            TRY(vec(m, &l->bv, "blk.%d.attn_v.bias", il, VD, true, false, err));
        }
        if (a->qk_norm && l->wqkv) /* the per-head norm runs on contiguous Q and K rows */
            return tl_err_set(err, TL_ERR_UNSUPPORTED,
                              "blk.%d: fused attn_qkv with QK-norm is not supported (architecture %s)",
                              il, a->name);
        if (a->qk_norm) {
            TRY(vec(m, &l->q_norm, "blk.%d.attn_q_norm.weight", il, hp->head_dim, false, true, err));
            TRY(vec(m, &l->k_norm, "blk.%d.attn_k_norm.weight", il, hp->head_dim, false, true, err));
        }
        TRY(mat(m, &l->wo, "blk.%d.attn_output.weight", il, OD, E, false, err));
        TRY(vec(m, &l->bo, "blk.%d.attn_output.bias", il, E, true, false, err));
        if (a->post_norms) {
            TRY(vec(m, &l->attn_post_norm, "blk.%d.post_attention_norm.weight", il, E, false, true, err));
            TRY(vec(m, &l->ffn_post_norm, "blk.%d.post_ffw_norm.weight", il, E, false, true, err));
        }
        if (!a->parallel_block) {
            TRY(vec(m, &l->ffn_norm, "blk.%d.ffn_norm.weight", il, E, false, true, err));
            TRY(vec(m, &l->ffn_norm_b, "blk.%d.ffn_norm.bias", il, E, true, false, err));
        }
        if (a->gated_ffn && !a->fused_gate_up)
            TRY(mat(m, &l->ffn_gate, "blk.%d.ffn_gate.weight", il, E, F, false, err));
        TRY(mat(m, &l->ffn_up, "blk.%d.ffn_up.weight", il, E, a->fused_gate_up ? 2 * F : F, false, err));
        TRY(vec(m, &l->ffn_up_b, "blk.%d.ffn_up.bias", il, a->fused_gate_up ? 2 * F : F, true, false, err));
        TRY(mat(m, &l->ffn_down, "blk.%d.ffn_down.weight", il, F, E, false, err));
        TRY(vec(m, &l->ffn_down_b, "blk.%d.ffn_down.bias", il, E, true, false, err));
    }
    return TL_OK;
}
