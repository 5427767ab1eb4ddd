/* arch.h — architectures as data.
 *
 * One transformer block implementation (model/forward.c) is driven by the
 * descriptor of the family plus hyperparameters read from metadata. Adding a
 * family is a row in the table of arch.c (and a name map for formats whose
 * tensor names differ from GGUF's); model code branches on these flags,
 * never on a family's name. */
#ifndef TL_ARCH_ARCH_H
#define TL_ARCH_ARCH_H

#include <stdbool.h>
#include "base/err.h"
#include "io/gguf.h"

typedef enum tl_norm_kind { TL_NORM_RMS = 0, TL_NORM_LAYER } tl_norm_kind;
typedef enum tl_act_kind { TL_ACT_SILU = 0, TL_ACT_GELU_TANH } tl_act_kind;
/* TL_ROPE_NORM rotates adjacent pairs (x0,x1),(x2,x3)... — GGUF's layout for
 * Llama, whose converter permutes Q/K rows. TL_ROPE_NEOX rotates the two
 * halves (x_i, x_{i+d/2}) — Hugging Face's rotate-half. */
typedef enum tl_rope_kind { TL_ROPE_NORM = 0, TL_ROPE_NEOX } tl_rope_kind;

typedef struct tl_arch {
    const char *name;        /* GGUF general.architecture */
    tl_norm_kind norm;
    tl_act_kind act;
    tl_rope_kind rope;
    bool gated_ffn;          /* act(x W_gate) * (x W_up); else act(x W_up) */
    bool fused_gate_up;      /* W_up holds [gate; up] (Phi-3) */
    bool parallel_block;     /* x + attn(n(x)) + ffn(n(x)) with one norm (Phi-2) */
    bool post_norms;         /* norms after attention and FFN outputs (Gemma 2/3) */
    bool qk_norm;            /* per-head RMSNorm of Q and K (Qwen3, Gemma 3) */
    bool embed_scale;        /* embeddings * sqrt(n_embd) (Gemma) */
    int swa_period;          /* >1: layer il is sliding iff il % period < period-1;
                                0: every layer slides when a window is set */
    float rope_theta_swa;    /* RoPE base of sliding layers (Gemma 3); 0 = same */
} tl_arch;

/* Descriptor for a GGUF architecture name, or NULL when unknown. Static. */
const tl_arch *tl_arch_find(const char *name);
/* Comma-separated list of known names (for error messages). Static. */
const char *tl_arch_known(void);

typedef struct tl_hparams {
    int n_vocab;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;          /* key/query head size */
    int head_dim_v;        /* value head size */
    int n_ff;
    int n_ctx_train;
    int rope_dims;         /* rotated dims per head (partial rotary < head_dim) */
    float rope_theta;
    float rope_freq_scale; /* positions are multiplied by this (linear scaling) */
    float rope_ext_factor; /* YaRN extrapolation mix: 1 for rope.scaling.type=yarn, else 0 */
    float rope_attn_factor;/* cos/sin multiplier (rope.scaling.attn_factor, LongRoPE); 1 = none */
    int n_ctx_orig;        /* context the rotary frequencies were trained for
                              (rope.scaling.original_context_length, else n_ctx_train):
                              YaRN's correction range, LongRoPE's long/short choice */
    float yarn_beta_fast, yarn_beta_slow; /* YaRN ramp bounds, in rotations */
    float norm_eps;
    int sliding_window;    /* 0 = none */
    float attn_softcap;    /* 0 = none */
    float final_softcap;   /* 0 = none */
    float attn_scale;      /* scale applied to Q.K; default 1/sqrt(head_dim) */
} tl_hparams;

/* Reads hyperparameters of arch a from GGUF-style metadata keys
 * ("<arch>.embedding_length", ...). n_vocab comes from the caller (tokenizer
 * or embedding rows). Validates ranges and consistency. */
tl_status tl_arch_hparams(const tl_arch *a, const tl_gguf *g, tl_hparams *hp, tl_err *err);

/* Whether layer il uses the sliding window. */
bool tl_arch_layer_is_swa(const tl_arch *a, const tl_hparams *hp, int il);

#endif
