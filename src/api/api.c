/* api.c — the public API (torchless.h) over the model, tokenizer and serving
 * modules. Errors are copied onto the handle (or the thread's last error
 * when no handle exists yet). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "kern/kern.h"
#include "model/convert.h"
#include "model/model.h"
#include "serve/chat.h"

/* ------------------------------------------------------------------ model */

tl_model_params tl_model_default_params(void) {
    return (tl_model_params){ .n_threads = 0, .dtype = NULL };
}

tl_status tl_model_load(const char *path, const tl_model_params *params, tl_model **out) {
    tl_model_params p = params ? *params : tl_model_default_params();
    tl_err err = { 0 };
    if (!path || !out) {
        tl_err_set(&err, TL_ERR_INVALID_ARG, "tl_model_load: path and out are required");
        tl_err_set_last(&err);
        return err.code;
    }
    tl_status rc = tl_model_open(path, p.n_threads, p.dtype, out, &err);
    tl_err_set_last(rc == TL_OK ? NULL : &err);
    return rc;
}

void tl_model_free(tl_model *m) { tl_model_close(m); }

const char *tl_model_error(const tl_model *m) { return m ? m->err.msg : tl_last_error(); }

static const char *dominant_type(const tl_model *m) {
    uint64_t bytes[TL_DTYPE_COUNT] = { 0 };
    for (int64_t i = 0; i < m->src->n_tensors; i++) {
        const tl_tensor *t = &m->src->tensors[i];
        if (t->n_dims >= 2 && (int)t->type < TL_DTYPE_COUNT) bytes[t->type] += t->nbytes;
    }
    int best = 0;
    for (int t = 1; t < TL_DTYPE_COUNT; t++)
        if (bytes[t] > bytes[best]) best = t;
    return tl_dtype_name(best);
}

void tl_model_get_info(const tl_model *m, tl_model_info *info) {
    memset(info, 0, sizeof *info);
    const tl_hparams *hp = &m->hp;
    info->format = m->src->format;
    info->arch = m->arch->name;
    tl_gguf_str s;
    info->name = "";
    if (tl_gguf_get_str(m->src->meta, "general.name", &s)) {
        /* copy into the model's render buffer: views are not NUL-terminated */
        tl_model *mm = (tl_model *)m;
        size_t n = s.len < sizeof mm->meta_buf - 1 ? s.len : sizeof mm->meta_buf - 1;
        memcpy(mm->meta_buf, s.ptr, n);
        mm->meta_buf[n] = 0;
        info->name = mm->meta_buf;
    }
    info->n_vocab = hp->n_vocab;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->head_dim = hp->head_dim;
    info->n_ff = hp->n_ff;
    info->n_ctx_train = hp->n_ctx_train;
    info->sliding_window = hp->sliding_window;
    info->rope_theta = hp->rope_theta;
    info->rope_dims = hp->rope_dims;
    info->norm_eps = hp->norm_eps;
    for (int64_t i = 0; i < m->src->n_tensors; i++) {
        info->n_params += (uint64_t)tl_tensor_nelem(&m->src->tensors[i]);
        info->weight_bytes += m->src->tensors[i].nbytes;
    }
    /* what the file says it is (a Q4_K_M file's largest tensor may well be
     * Q8_0 or Q6_K), else the type holding most weight bytes */
    uint32_t ft;
    const char *named = tl_gguf_get_u32(m->src->meta, "general.file_type", &ft) ? tl_quantize_ftype_name(ft)
                                                                               : NULL;
    info->file_type = named ? named : dominant_type(m);
    info->n_threads = m->n_threads;
}

int tl_model_n_tensors(const tl_model *m) { return (int)m->src->n_tensors; }

void tl_model_tensor_info(const tl_model *m, int i, const char **name, const char **type,
                          int *n_dims, int64_t ne[4]) {
    const tl_tensor *t = &m->src->tensors[i];
    *name = t->name;
    *type = tl_dtype_name(t->type);
    *n_dims = t->n_dims;
    for (int d = 0; d < 4; d++) ne[d] = t->ne[d];
}

int tl_model_n_meta(const tl_model *m) { return (int)tl_gguf_n_kv(m->src->meta); }

/* Renders a metadata value as text into the model's growable buffer. Arrays
 * show their length and first elements. */
void tl_model_meta(const tl_model *m, int i, const char **key, const char **value) {
    tl_model *mm = (tl_model *)m;
    const tl_gguf_kv *kv = tl_gguf_kv_at(m->src->meta, i);
    size_t cap = 512 + kv->key.len + (kv->type == TL_GGUF_STRING ? kv->str.len : 0);
    char *buf = realloc(mm->meta_str, cap);
    if (!buf) { *key = *value = ""; return; }
    mm->meta_str = buf;
    int kn = snprintf(buf, cap, "%.*s", (int)kv->key.len, kv->key.ptr) + 1;
    char *v = buf + kn;
    size_t vc = cap - (size_t)kn;
    switch (kv->type) {
    case TL_GGUF_STRING: snprintf(v, vc, "%.*s", (int)kv->str.len, kv->str.ptr); break;
    case TL_GGUF_FLOAT32: case TL_GGUF_FLOAT64: snprintf(v, vc, "%g", kv->v.f64); break;
    case TL_GGUF_BOOL: snprintf(v, vc, "%s", kv->v.b ? "true" : "false"); break;
    case TL_GGUF_INT8: case TL_GGUF_INT16: case TL_GGUF_INT32: case TL_GGUF_INT64:
        snprintf(v, vc, "%lld", (long long)kv->v.i64); break;
    case TL_GGUF_ARRAY: {
        int w = snprintf(v, vc, "[%llu items]", (unsigned long long)kv->arr_n);
        for (uint64_t e = 0; e < kv->arr_n && e < 4 && w > 0 && (size_t)w < vc - 64; e++) {
            if (kv->arr_type == TL_GGUF_STRING) {
                tl_gguf_str s;
                if (tl_gguf_arr_str(m->src->meta, kv, e, &s))
                    w += snprintf(v + w, vc - w, " '%.*s'", (int)(s.len < 24 ? s.len : 24), s.ptr);
            } else if (kv->arr_type == TL_GGUF_FLOAT32 || kv->arr_type == TL_GGUF_FLOAT64) {
                w += snprintf(v + w, vc - w, " %g", tl_gguf_arr_f64(kv, e));
            } else {
                w += snprintf(v + w, vc - w, " %lld", (long long)tl_gguf_arr_i64(kv, e));
            }
        }
        break;
    }
    default: snprintf(v, vc, "%llu", (unsigned long long)kv->v.u64); break;
    }
    *key = buf;
    *value = v;
}

/* -------------------------------------------------------------- tokenizer */

tl_token tl_token_bos(const tl_model *m) { return tl_tok_bos(m->tok); }
tl_token tl_token_eos(const tl_model *m) { return tl_tok_eos(m->tok); }
bool tl_token_is_eog(const tl_model *m, tl_token t) { return tl_tok_is_eog(m->tok, t); }
int tl_model_n_vocab(const tl_model *m) { return m->hp.n_vocab; }

int tl_tokenize(const tl_model *m, const char *text, size_t len, tl_token *out, int cap,
                bool add_special, bool parse_special) {
    return tl_tok_encode(m->tok, text, len, out, cap, add_special, parse_special);
}

int tl_token_to_piece(const tl_model *m, tl_token t, char *buf, int cap, bool render_special) {
    return tl_tok_piece(m->tok, t, buf, cap, render_special);
}

int tl_detokenize(const tl_model *m, const tl_token *toks, int n, char *buf, int cap,
                  bool render_special) {
    return tl_tok_decode(m->tok, toks, n, buf, cap, render_special);
}

char *tl_chat_format(const tl_model *m, const char *system, const char *user) {
    tl_chat_msg msgs[2];
    int n = 0;
    if (system && *system) msgs[n++] = (tl_chat_msg){ "system", system };
    msgs[n++] = (tl_chat_msg){ "user", user ? user : "" };
    return tl_chat_apply(tl_tok_chat_template(m->tok), m->arch->name, msgs, n, true);
}

/* ---------------------------------------------------------------- context */

tl_context_params tl_context_default_params(void) {
    return (tl_context_params){ .n_ctx = 0, .n_batch = 512, .kv_type = TL_KV_F16,
                                .n_threads = 0, .all_logits = false };
}

/* public KV cache types -> cache element types (indexed after a range check) */
static const tl_dtype k_kv_dtype[] = {
    [TL_KV_F16] = TL_DTYPE_F16,
    [TL_KV_F32] = TL_DTYPE_F32,
    [TL_KV_Q8_0] = TL_DTYPE_Q8_0,
};

tl_status tl_context_init(tl_model *m, const tl_context_params *p, tl_context **out) {
    tl_context_params cp = p ? *p : tl_context_default_params();
    tl_err err = { 0 };
    tl_status rc;
    *out = NULL;
    if ((unsigned)cp.kv_type >= sizeof k_kv_dtype / sizeof k_kv_dtype[0])
        rc = tl_err_set(&err, TL_ERR_INVALID_ARG, "unknown KV cache type %d", (int)cp.kv_type);
    else
        rc = tl_context_open(m, cp.n_ctx, cp.n_batch, k_kv_dtype[cp.kv_type], cp.all_logits, out,
                             &err);
    if (rc != TL_OK) {
        m->err = err;
        tl_err_set_last(&err);
    }
    return rc;
}

void tl_context_free(tl_context *c) { tl_context_close(c); }
const char *tl_context_error(const tl_context *c) { return c ? c->err.msg : tl_last_error(); }
int tl_context_n_ctx(const tl_context *c) { return c->n_ctx; }
int tl_context_n_past(const tl_context *c) { return c->n_past; }
void tl_context_reset(tl_context *c) { c->n_past = 0; c->n_logits = 0; }

tl_status tl_context_truncate(tl_context *c, int n_past) {
    if (n_past < 0 || n_past > c->n_past)
        return tl_err_set(&c->err, TL_ERR_INVALID_ARG, "cannot truncate to %d (have %d)", n_past,
                          c->n_past);
    c->n_past = n_past;
    return TL_OK;
}

tl_status tl_decode(tl_context *c, const tl_token *toks, int n) {
    return tl_context_eval(c, toks, n);
}

const float *tl_get_logits(tl_context *c, int i) {
    if (c->n_logits == 0) return NULL;
    if (i < 0) i = c->n_logits - 1;
    if (i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->model->hp.n_vocab;
}

/* ------------------------------------------------------------------- misc */

size_t tl_model_memory(const tl_model *m) {
    /* mapped weights are the file's pages, not counted; what the model
     * allocated is: the backend's repacked weights, converted vectors and
     * matrices, the layer table, and the buffers formats had to make
     * (realigned or int8-converted tensors) */
    const size_t backend = m->backend->ops->weight_memory ? m->backend->ops->weight_memory(m->backend) : 0;
    return backend + m->owned_bytes + m->src->owned_bytes + sizeof *m +
           sizeof(tl_layer_w) * (size_t)m->hp.n_layer;
}

size_t tl_context_memory(const tl_context *c) {
    const tl_hparams *hp = &c->model->hp;
    const size_t row = tl_dtype_row_size(c->kv_type, (int64_t)hp->n_head_kv * hp->head_dim) +
                       tl_dtype_row_size(c->kv_type, (int64_t)hp->n_head_kv * hp->head_dim_v);
    return (size_t)hp->n_layer * c->kv_rows * row;
}

const char *tl_cpu_variant(void) { return tl_kern_get()->name; }
