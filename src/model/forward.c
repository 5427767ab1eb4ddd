/* forward.c — one transformer forward pass for every family.
 *
 * The block is written once; the descriptor (arch.h) and the tensors a file
 * actually has decide each step: LayerNorm or RMSNorm, fused or separate
 * QKV, biases, QK-norm, RoPE layout and partial rotary, sliding windows,
 * softcaps, post-norms, gated or plain FFN, parallel or sequential residual.
 * All activations are (n_tok, width) rows in backend buffers. */
#include <math.h>
#include <string.h>

#include "model/model.h"

/* W_i @ h -> y_i, i < count: the products of one input in one backend call
 * where it has matmul_multi (which converts h once, in one dispatch) */
static void matmuls(tl_backend *b, int count, const tl_tensor *const w[],
                    const tl_tensor *const bias[], const float *h, int n, float *const y[]) {
    if (b->ops->matmul_multi) {
        b->ops->matmul_multi(b, count, w, bias, h, n, y);
        return;
    }
    for (int i = 0; i < count; i++) b->ops->matmul(b, w[i], bias[i], h, n, y[i]);
}

/* h (n, n_embd) -> c->ffn (n, n_embd) */
static void ffn(tl_context *c, const tl_layer_w *L, const float *h, int n) {
    tl_model *m = c->model;
    tl_backend *b = c->be;
    const tl_backend_ops *o = b->ops;
    const tl_arch *a = m->arch;
    const int F = m->hp.n_ff;
    if (a->fused_gate_up) {
        o->matmul(b, L->ffn_up, L->ffn_up_b, h, n, c->gate);     // (n, 2F) = [gate | up]
        o->glu(b, a->act, c->gate, c->gate + F, 2 * F, n, F, c->up);
        o->matmul(b, L->ffn_down, L->ffn_down_b, c->up, n, c->ffn);
    } else if (a->gated_ffn) {
        const tl_tensor *w[] = { L->ffn_gate, L->ffn_up }, *bias[] = { L->ffn_gate_b, L->ffn_up_b };
        float *y[] = { c->gate, c->up };                         // (n, F) each
        matmuls(b, 2, w, bias, h, n, y);
        o->glu(b, a->act, c->gate, c->up, F, n, F, c->gate);
        o->matmul(b, L->ffn_down, L->ffn_down_b, c->gate, n, c->ffn);
    } else {
        o->matmul(b, L->ffn_up, L->ffn_up_b, h, n, c->up);
        o->unary(b, a->act == TL_ACT_SILU ? TL_UNARY_SILU : TL_UNARY_GELU_TANH, 0, c->up, (size_t)n * F);
        o->matmul(b, L->ffn_down, L->ffn_down_b, c->up, n, c->ffn);
    }
}

/* Attention sub-block: c->h (n, n_embd) -> c->o (n, n_embd); fills the cache. */
static void attention(tl_context *c, int il, int n) {
    tl_model *m = c->model;
    const tl_hparams *hp = &m->hp;
    const tl_arch *a = m->arch;
    const tl_layer_w *L = &m->layers[il];
    tl_backend *b = c->be;
    const tl_backend_ops *o = b->ops;
    const int QD = hp->n_head * hp->head_dim, KD = hp->n_head_kv * hp->head_dim;
    const int VD = hp->n_head_kv * hp->head_dim_v;

    float *q, *k, *v;
    int qs, ks, vs;
    if (L->wqkv) { // one product, three strided views of its rows
        o->matmul(b, L->wqkv, L->bqkv, c->h, n, c->q);
        q = c->q, k = c->q + QD, v = c->q + QD + KD;
        qs = ks = vs = QD + KD + VD;
    } else {
        const tl_tensor *w[] = { L->wq, L->wk, L->wv }, *bias[] = { L->bq, L->bk, L->bv };
        float *y[] = { c->q, c->k, c->v };
        matmuls(b, 3, w, bias, c->h, n, y);
        q = c->q, k = c->k, v = c->v;
        qs = QD, ks = KD, vs = VD;
    }
    if (L->q_norm) { // per-head RMSNorm: rows of head_dim (needs unfused, contiguous Q/K)
        o->norm(b, TL_NORM_RMS, q, L->q_norm, NULL, hp->norm_eps, n * hp->n_head, hp->head_dim, q);
        o->norm(b, TL_NORM_RMS, k, L->k_norm, NULL, hp->norm_eps, n * hp->n_head_kv, hp->head_dim, k);
    }

    const bool swa = tl_arch_layer_is_swa(a, hp, il);
    /* LongRoPE: the long factors once the context outgrows the trained one
     * (decided by the context size, as llama.cpp does, so a sequence's
     * angles never change as it grows) */
    const tl_tensor *ff = m->rope_freqs ? m->rope_freqs
                        : c->n_ctx > hp->n_ctx_orig ? m->rope_long : m->rope_short;
    tl_rope_params rp = {
        .kind = m->src->rope_neox ? TL_ROPE_NEOX : a->rope,
        .n_head = hp->n_head,
        .head_dim = hp->head_dim,
        .rope_dims = hp->rope_dims,
        .theta = hp->rope_theta,
        .freq_scale = hp->rope_freq_scale,
        .freq_factors = ff ? ff->data : NULL,
        .attn_factor = hp->rope_attn_factor,
        .ext_factor = hp->rope_ext_factor,
        .n_ctx_orig = hp->n_ctx_orig,
        .beta_fast = hp->yarn_beta_fast,
        .beta_slow = hp->yarn_beta_slow,
    };
    if (swa && a->rope_theta_swa > 0) { // local layers keep the unscaled short-range base
        rp.theta = a->rope_theta_swa;
        rp.freq_scale = 1.0f;
        rp.ext_factor = 0.0f;
    }
    o->rope(b, &rp, q, n, qs, c->pos);
    rp.n_head = hp->n_head_kv;
    o->rope(b, &rp, k, n, ks, c->pos);

    tl_attn_params ap = {
        .n_tok = n,
        .pos0 = c->n_past,
        .n_ctx = c->kv_rows,
        .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv,
        .head_dim = hp->head_dim,
        .head_dim_v = hp->head_dim_v,
        .scale = hp->attn_scale,
        .softcap = hp->attn_softcap,
        .window = swa ? hp->sliding_window : 0,
        .kv_type = c->kv_type,
    };
    o->kv_store(b, &ap, &c->kv[il], k, ks, v, vs);
    o->attention(b, &ap, q, qs, &c->kv[il], c->att);
    o->matmul(b, L->wo, L->bo, c->att, n, c->o);
    if (L->attn_post_norm)
        o->norm(b, TL_NORM_RMS, c->o, L->attn_post_norm, NULL, hp->norm_eps, n, hp->n_embd, c->o);
}

// x (n, n_embd) += d; h = norm(x) with w [+ bias]
static void add_norm(tl_context *c, const float *d, const tl_tensor *w, const tl_tensor *bias, int n) {
    const tl_hparams *hp = &c->model->hp;
    c->be->ops->add_norm(c->be, c->model->arch->norm, c->x, d, w, bias, hp->norm_eps, n, hp->n_embd, c->h);
}

void tl_forward(tl_context *c, const int32_t *tokens, int n, float *out) {
    tl_model *m = c->model;
    const tl_hparams *hp = &m->hp;
    const tl_arch *a = m->arch;
    tl_backend *b = c->be;
    const tl_backend_ops *o = b->ops;
    const int E = hp->n_embd;
    const size_t nE = (size_t)n * E;

    for (int i = 0; i < n; i++) c->pos[i] = c->n_past + i;
    o->get_rows(b, m->tok_embd, tokens, n, c->x);
    if (a->embed_scale) o->unary(b, TL_UNARY_SCALE, sqrtf((float)E), c->x, nE);

    /* Each residual add is fused with the norm that reads x next (add_norm):
     * the attention output's with ffn_norm, the FFN output's with the next
     * layer's attn_norm. The last layer's FFN output is added on its own,
     * before the output norm of the last row(s). */
    o->norm(b, a->norm, c->x, m->layers[0].attn_norm, m->layers[0].attn_norm_b, hp->norm_eps, n, E, c->h);
    for (int il = 0; il < hp->n_layer; il++) {
        const tl_layer_w *L = &m->layers[il];
        const tl_layer_w *next = il + 1 < hp->n_layer ? &m->layers[il + 1] : NULL;
        attention(c, il, n);
        if (a->parallel_block) { // x + attn(n(x)) + ffn(n(x))
            ffn(c, L, c->h, n);
            o->add(b, c->x, c->o, nE);
        } else {
            add_norm(c, c->o, L->ffn_norm, L->ffn_norm_b, n);
            ffn(c, L, c->h, n);
            if (L->ffn_post_norm)
                o->norm(b, TL_NORM_RMS, c->ffn, L->ffn_post_norm, NULL, hp->norm_eps, n, E, c->ffn);
        }
        if (next) add_norm(c, c->ffn, next->attn_norm, next->attn_norm_b, n);
        else o->add(b, c->x, c->ffn, nE);
    }

    /* logits of every row, or of the last only */
    const int rows = c->all_logits ? n : 1;
    const float *last = c->x + (size_t)(n - rows) * E;
    o->norm(b, a->norm, last, m->output_norm, m->output_norm_b, hp->norm_eps, rows, E, c->h);
    o->matmul(b, m->output, m->output_b, c->h, rows, out);
    if (hp->final_softcap > 0)
        o->unary(b, TL_UNARY_SOFTCAP, hp->final_softcap, out, (size_t)rows * hp->n_vocab);
    c->n_past += n;
}
