/* model.c — opening a model (source -> descriptor -> hyperparameters ->
 * tokenizer -> bound weights) and creating contexts (KV cache + buffers). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "model/model.h"

static tl_status open_arch(tl_model *m, tl_err *err) {
    tl_gguf_str s;
    if (!tl_gguf_get_str(m->src->meta, "general.architecture", &s))
        return tl_err_set(err, TL_ERR_MISSING, "metadata key 'general.architecture' is missing");
    char name[64];
    if (s.len >= sizeof name) return tl_err_set(err, TL_ERR_FORMAT, "architecture name too long");
    memcpy(name, s.ptr, s.len);
    name[s.len] = 0;
    m->arch = tl_arch_find(name);
    if (!m->arch)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "unknown architecture '%s' (known: %s)", name,
                          tl_arch_known());
    return TL_OK;
}

/* Lets the backend do its one-time work on every matrix now, so that the
 * first prompt does not pay for it (and `load` time tells the truth). A
 * matrix the backend has copied (repacked) is never read again from the
 * file, so its mapped pages are released as soon as it is copied: the
 * model is resident once, not twice, and the peak stays one matrix above
 * that. The token embedding is kept: rows are looked up in it (an output
 * matrix tied to it too). */
static void prepare_weights(tl_model *m) {
    tl_backend *b = m->backend;
    if (!b->ops->prepare) return;
    if (b->ops->prepare(b, m->output) && m->output != m->tok_embd) tl_source_release(m->src, m->output);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const tl_layer_w *L = &m->layers[il];
        const tl_tensor *mats[] = { L->wq, L->wk, L->wv, L->wqkv, L->wo,
                                    L->ffn_gate, L->ffn_up, L->ffn_down };
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            if (mats[i] && b->ops->prepare(b, mats[i])) tl_source_release(m->src, mats[i]);
    }
}

tl_status tl_model_open(const char *path, int n_threads, const char *dtype, tl_model **out,
                        tl_err *err) {
    *out = NULL;
    if (n_threads <= 0) { /* all online cores, resolved once: what info reports is what runs */
        const long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = nc <= 0 ? 1 : nc > 4096 ? 4096 : (int)nc; /* the pool's range */
    }
    tl_model *m = calloc(1, sizeof *m);
    if (!m) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_status rc = tl_source_open(path, &m->src, err);
    if (rc == TL_OK) rc = open_arch(m, err);
    if (rc == TL_OK) {
        const tl_tensor *emb = tl_source_find(m->src, "token_embd.weight");
        if (!emb) rc = tl_err_set(err, TL_ERR_MISSING, "required tensor 'token_embd.weight' is missing");
        else if (emb->ne[1] <= 0 || emb->ne[1] > (1 << 24))
            rc = tl_err_set(err, TL_ERR_FORMAT, "token_embd.weight: implausible vocabulary size %lld",
                            (long long)emb->ne[1]);
        else m->hp.n_vocab = (int)emb->ne[1];
    }
    if (rc == TL_OK) rc = tl_arch_hparams(m->arch, m->src->meta, &m->hp, err);
    if (rc == TL_OK && dtype) {
        tl_dtype to;
        if (!tl_dtype_from_name(dtype, &to) || !tl_dtype_traits_of(to)->from_float ||
            to == TL_DTYPE_Q8_1 || to == TL_DTYPE_Q8_K)
            rc = tl_err_set(err, TL_ERR_INVALID_ARG, "--dtype '%s' is not a weight type", dtype);
        else
            rc = tl_model_convert_weights(m, to, n_threads, err);
    }
    if (rc == TL_OK) rc = tl_backend_cpu_init(n_threads, &m->backend, err);
    if (rc == TL_OK) rc = tl_model_bind(m, err);
    if (rc == TL_OK) prepare_weights(m);
    if (rc == TL_OK) rc = tl_tok_init_gguf(m->src->meta, &m->tok, err);
    if (rc == TL_OK && tl_tok_n_vocab(m->tok) > m->hp.n_vocab)
        rc = tl_err_set(err, TL_ERR_FORMAT, "tokenizer has %d tokens but the embedding only %d rows",
                        tl_tok_n_vocab(m->tok), m->hp.n_vocab);
    if (rc != TL_OK) {
        if (err && !strstr(err->msg, path)) tl_err_prefix(err, "%s", path);
        tl_model_close(m);
        return rc;
    }
    m->n_threads = n_threads;
    *out = m;
    return TL_OK;
}

void tl_model_close(tl_model *m) {
    if (!m) return;
    tl_model_unbind(m);
    for (int i = 0; i < m->n_owned_mats; i++) free(m->owned_mats[i]);
    free(m->owned_mats);
    tl_tok_free(m->tok);
    tl_backend_free(m->backend);
    tl_source_free(m->src);
    free(m->meta_str);
    free(m);
}

tl_status tl_context_open(tl_model *m, int n_ctx, int n_batch, tl_dtype kv_type, bool all_logits,
                          tl_context **out, tl_err *err) {
    *out = NULL;
    const tl_hparams *hp = &m->hp;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (n_batch <= 0) n_batch = 512;
    if (n_batch > n_ctx) n_batch = n_ctx;
    if (n_ctx > INT_MAX - TL_KV_CTX_ALIGN)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "a context of %d tokens is too large", n_ctx);
    tl_backend *b = m->backend;
    if (!b->ops->supports(b, TL_OP_ATTENTION, kv_type))
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "the %s backend has no attention over a %s KV cache",
                          b->ops->name, tl_dtype_name(kv_type));
    /* block types quantize each head's slice of a row on its own (attention
     * reads one head at a time), so both head sizes must hold whole blocks */
    const int bs = tl_dtype_traits_of(kv_type)->block_size;
    if (hp->head_dim % bs || hp->head_dim_v % bs)
        return tl_err_set(err, TL_ERR_UNSUPPORTED,
                          "a %s KV cache needs head sizes that are multiples of %d, this model has "
                          "%d (K) and %d (V): use an F16 or F32 cache",
                          tl_dtype_name(kv_type), bs, hp->head_dim, hp->head_dim_v);
    tl_context *c = calloc(1, sizeof *c);
    if (!c) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    c->model = m;
    c->be = m->backend;
    c->n_ctx = n_ctx;
    c->kv_rows = (n_ctx + TL_KV_CTX_ALIGN - 1) / TL_KV_CTX_ALIGN * TL_KV_CTX_ALIGN;
    c->n_batch = n_batch;
    c->kv_type = kv_type;
    c->all_logits = all_logits;

    const size_t E = hp->n_embd, F = hp->n_ff, NB = n_batch;
    const size_t QD = (size_t)hp->n_head * hp->head_dim, KD = (size_t)hp->n_head_kv * hp->head_dim;
    const size_t VD = (size_t)hp->n_head_kv * hp->head_dim_v, OD = (size_t)hp->n_head * hp->head_dim_v;
    const size_t k_row = tl_dtype_row_size(kv_type, (int64_t)KD);
    const size_t v_row = tl_dtype_row_size(kv_type, (int64_t)VD);
    bool ok = (c->kv = calloc((size_t)hp->n_layer, sizeof(tl_kv_layer))) != NULL;
    for (int il = 0; ok && il < hp->n_layer; il++) {
        ok = (c->kv[il].k = b->ops->alloc(b, (size_t)c->kv_rows * k_row)) &&
             (c->kv[il].v = b->ops->alloc(b, (size_t)c->kv_rows * v_row));
    }
    const size_t wide = E > OD ? E : OD;
    c->logits_cap = all_logits ? n_batch : 1;
    ok = ok && (c->x = b->ops->alloc(b, NB * E * 4)) && (c->h = b->ops->alloc(b, NB * wide * 4)) &&
         (c->q = b->ops->alloc(b, NB * (QD + KD + VD) * 4)) && (c->k = b->ops->alloc(b, NB * KD * 4)) &&
         (c->v = b->ops->alloc(b, NB * VD * 4)) && (c->att = b->ops->alloc(b, NB * OD * 4)) &&
         (c->o = b->ops->alloc(b, NB * E * 4)) && (c->gate = b->ops->alloc(b, NB * 2 * F * 4)) &&
         (c->up = b->ops->alloc(b, NB * 2 * F * 4)) && (c->ffn = b->ops->alloc(b, NB * E * 4)) &&
         (c->logits = b->ops->alloc(b, (size_t)c->logits_cap * hp->n_vocab * 4)) &&
         (c->pos = calloc(NB, sizeof(int32_t)));
    if (!ok) {
        tl_context_close(c);
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory allocating a context of %d tokens", n_ctx);
    }
    size_t max_dim = E;
    if (F * 2 > max_dim) max_dim = F * 2;
    if (QD + KD + VD > max_dim) max_dim = QD + KD + VD;
    if (OD > max_dim) max_dim = OD;
    tl_status rc = b->ops->reserve(b, n_batch, (int)max_dim, err);
    if (rc != TL_OK) {
        tl_context_close(c);
        return rc;
    }
    *out = c;
    return TL_OK;
}

void tl_context_close(tl_context *c) {
    if (!c) return;
    tl_backend *b = c->be;
    if (c->kv)
        for (int il = 0; il < c->model->hp.n_layer; il++) {
            b->ops->dealloc(b, c->kv[il].k);
            b->ops->dealloc(b, c->kv[il].v);
        }
    free(c->kv);
    float *bufs[] = { c->x, c->h, c->q, c->k, c->v, c->att, c->o, c->gate, c->up, c->ffn, c->logits };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) b->ops->dealloc(b, bufs[i]);
    free(c->pos);
    free(c);
}

tl_status tl_context_eval(tl_context *c, const int32_t *tokens, int n) {
    tl_err *err = &c->err;
    const int V = c->model->hp.n_vocab;
    if (n <= 0) return tl_err_set(err, TL_ERR_INVALID_ARG, "no tokens to evaluate");
    if (n > c->n_ctx - c->n_past)
        return tl_err_set(err, TL_ERR_CONTEXT_FULL,
                          "%d tokens do not fit: context holds %d, %d already used", n, c->n_ctx,
                          c->n_past);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return tl_err_set(err, TL_ERR_INVALID_ARG, "token id %d at index %d is out of range [0, %d)",
                              tokens[i], i, V);
    if (c->all_logits && n > c->logits_cap) { /* grows once per longer call, never in decode */
        tl_backend *b = c->be;
        float *nl = b->ops->alloc(b, (size_t)n * V * sizeof(float));
        if (!nl) return tl_err_set(err, TL_ERR_NOMEM, "out of memory for %d rows of logits", n);
        b->ops->dealloc(b, c->logits);
        c->logits = nl;
        c->logits_cap = n;
    }
    for (int done = 0; done < n;) {
        int chunk = n - done < c->n_batch ? n - done : c->n_batch;
        float *out = c->all_logits ? c->logits + (size_t)done * V : c->logits;
        tl_forward(c, tokens + done, chunk, out);
        done += chunk;
    }
    c->n_logits = c->all_logits ? n : 1;
    return TL_OK;
}
