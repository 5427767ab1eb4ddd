/* model.h — a loaded model (weights, hyperparameters, tokenizer) and the
 * per-sequence context (KV cache, activation buffers) it runs in.
 *
 * These are the internals behind the public tl_model / tl_context handles. */
#ifndef TL_MODEL_MODEL_H
#define TL_MODEL_MODEL_H

#include "arch/arch.h"
#include "backend/backend.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "model/source.h"
#include "tok/tok.h"

/* Per-layer weights: borrowed views into the source (NULL when the family or
 * file does not have that tensor). Shapes in the (rows, cols) sense of
 * backend.h: W (d_out, d_in). */
typedef struct tl_layer_w {
    const tl_tensor *attn_norm, *attn_norm_b;   // (n_embd,)
    const tl_tensor *wq, *wk, *wv;              // (n_head*hd, n_embd), (n_kv*hd, n_embd) x2
    const tl_tensor *wqkv;                      // fused: (n_head*hd + 2*n_kv*hd, n_embd)
    const tl_tensor *bq, *bk, *bv, *bqkv;
    const tl_tensor *q_norm, *k_norm;           // (hd,)
    const tl_tensor *wo, *bo;                   // (n_embd, n_head*hdv)
    const tl_tensor *attn_post_norm;            // (n_embd,)
    const tl_tensor *ffn_norm, *ffn_norm_b;     // (n_embd,)
    const tl_tensor *ffn_gate, *ffn_up;         // (n_ff, n_embd); fused up: (2*n_ff, n_embd)
    const tl_tensor *ffn_gate_b, *ffn_up_b;
    const tl_tensor *ffn_down, *ffn_down_b;     // (n_embd, n_ff)
    const tl_tensor *ffn_post_norm;             // (n_embd,)
} tl_layer_w;

struct tl_model {
    tl_err err;
    tl_source *src;          /* owns the mapping, metadata and tensor views */
    const tl_arch *arch;
    tl_hparams hp;
    tl_tok *tok;
    tl_backend *backend;
    int n_threads;           /* the backend's threads (a request of 0 resolved) */

    const tl_tensor *tok_embd;      // (n_vocab, n_embd)
    const tl_tensor *output_norm, *output_norm_b;
    const tl_tensor *output, *output_b; // (n_vocab, n_embd); tied: == tok_embd
    const tl_tensor *rope_freqs;    // (rope_dims/2,) frequency divisors or NULL
    const tl_tensor *rope_long, *rope_short; // LongRoPE divisors (rope_dims/2,) or NULL
    tl_layer_w *layers;             // n_layer, owned
    void *owned_vecs;               // vectors converted to F32 at load (load.c), owned
    void **owned_mats;              // matrices converted by --dtype, owned
    int n_owned_mats;
    size_t owned_bytes;             // bytes of the two lists above

    char meta_buf[256];             // scratch for tl_model_meta rendering
    char *meta_str;                 // growable render buffer for long values
};

struct tl_context {
    tl_err err;
    tl_model *model;
    tl_backend *be;
    int n_ctx, n_batch, n_past;
    int kv_rows;            // cache rows per KV head: n_ctx rounded up to TL_KV_CTX_ALIGN
    bool all_logits;
    tl_dtype kv_type;
    tl_kv_layer *kv;        // n_layer
    /* activation buffers, (n_batch, width) each */
    float *x, *h, *q, *k, *v, *att, *o, *gate, *up, *ffn;
    float *logits;          // (logits_cap, n_vocab): rows of the last tl_decode
    int logits_cap;         // rows allocated
    int n_logits;           // rows valid in logits
    int32_t *pos;           // (n_batch,)
};

/* Finds tensors, checks every shape against the hyperparameters. */
tl_status tl_model_bind(tl_model *m, tl_err *err);
/* Releases what tl_model_bind allocated. */
void tl_model_unbind(tl_model *m);

/* Runs tokens[0..n) (n <= n_batch) at positions n_past.. and writes logits
 * to out: every row (n, n_vocab) when all_logits, else the last (1, n_vocab). */
void tl_forward(tl_context *c, const int32_t *tokens, int n, float *out);

/* Loads everything behind a public tl_model (model.c). */
tl_status tl_model_open(const char *path, int n_threads, const char *dtype, tl_model **out,
                        tl_err *err);
/* Converts every matrix of the source to `to` in memory the model owns
 * (dtype_convert.c); tensors whose rows do not fit the type's blocks stay. */
tl_status tl_model_convert_weights(tl_model *m, tl_dtype to, int n_threads, tl_err *err);
void tl_model_close(tl_model *m);
/* A context over m with a KV cache of n_ctx rows in kv_type (F16, F32, or
 * Q8_0 when both head sizes are multiples of 32; else TL_ERR_UNSUPPORTED).
 * *out caller-frees with tl_context_close. */
tl_status tl_context_open(tl_model *m, int n_ctx, int n_batch, tl_dtype kv_type, bool all_logits,
                          tl_context **out, tl_err *err);
void tl_context_close(tl_context *c);
/* Evaluates n tokens (any n; split into n_batch chunks). */
tl_status tl_context_eval(tl_context *c, const int32_t *tokens, int n);

#endif
