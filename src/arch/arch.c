#include "arch/arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The table of families. Flags not named are false/zero. */
static const tl_arch k_arches[] = {
    { .name = "llama",   .norm = TL_NORM_RMS, .act = TL_ACT_SILU, .rope = TL_ROPE_NORM,
      .gated_ffn = true },
    { .name = "mistral", .norm = TL_NORM_RMS, .act = TL_ACT_SILU, .rope = TL_ROPE_NORM,
      .gated_ffn = true },
    { .name = "qwen2",   .norm = TL_NORM_RMS, .act = TL_ACT_SILU, .rope = TL_ROPE_NEOX,
      .gated_ffn = true },
    { .name = "qwen3",   .norm = TL_NORM_RMS, .act = TL_ACT_SILU, .rope = TL_ROPE_NEOX,
      .gated_ffn = true, .qk_norm = true },
    { .name = "phi2",    .norm = TL_NORM_LAYER, .act = TL_ACT_GELU_TANH, .rope = TL_ROPE_NEOX,
      .parallel_block = true },
    { .name = "phi3",    .norm = TL_NORM_RMS, .act = TL_ACT_SILU, .rope = TL_ROPE_NEOX,
      .gated_ffn = true, .fused_gate_up = true },
    { .name = "gemma",   .norm = TL_NORM_RMS, .act = TL_ACT_GELU_TANH, .rope = TL_ROPE_NEOX,
      .gated_ffn = true, .embed_scale = true },
    { .name = "gemma2",  .norm = TL_NORM_RMS, .act = TL_ACT_GELU_TANH, .rope = TL_ROPE_NEOX,
      .gated_ffn = true, .embed_scale = true, .post_norms = true, .swa_period = 2 },
    { .name = "gemma3",  .norm = TL_NORM_RMS, .act = TL_ACT_GELU_TANH, .rope = TL_ROPE_NEOX,
      .gated_ffn = true, .embed_scale = true, .post_norms = true, .qk_norm = true,
      .swa_period = 6, .rope_theta_swa = 10000.0f },
};

const tl_arch *tl_arch_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof k_arches / sizeof k_arches[0]; i++)
        if (strcmp(k_arches[i].name, name) == 0) return &k_arches[i];
    return NULL;
}

const char *tl_arch_known(void) {
    return "llama, mistral, qwen2, qwen3, phi2, phi3, gemma, gemma2, gemma3";
}

/* "<arch>.<suffix>" into buf. */
static const char *key(char *buf, size_t n, const tl_arch *a, const char *suffix) {
    snprintf(buf, n, "%s.%s", a->name, suffix);
    return buf;
}

static bool get_int(const tl_gguf *g, const char *k, int *out) {
    int64_t v;
    if (!tl_gguf_get_i64(g, k, &v)) {
        /* some writers store per-layer arrays (e.g. head_count_kv); take the first */
        const tl_gguf_kv *kv = tl_gguf_find(g, k);
        if (!kv || kv->type != TL_GGUF_ARRAY || kv->arr_n == 0 || kv->arr_type == TL_GGUF_STRING)
            return false;
        v = tl_gguf_arr_i64(kv, 0);
    }
    if (v < 0 || v > (1 << 30)) return false;
    *out = (int)v;
    return true;
}

tl_status tl_arch_hparams(const tl_arch *a, const tl_gguf *g, tl_hparams *hp, tl_err *err) {
    char k[128];
    int n_vocab = hp->n_vocab;
    memset(hp, 0, sizeof *hp);
    hp->n_vocab = n_vocab;

    static const char *required[] = { "embedding_length", "block_count", "feed_forward_length",
                                      "attention.head_count" };
    int *dst[] = { &hp->n_embd, &hp->n_layer, &hp->n_ff, &hp->n_head };
    for (int i = 0; i < 4; i++)
        if (!get_int(g, key(k, sizeof k, a, required[i]), dst[i]) || *dst[i] <= 0)
            return tl_err_set(err, TL_ERR_MISSING, "metadata key '%s' missing or invalid", k);
    if (!get_int(g, key(k, sizeof k, a, "attention.head_count_kv"), &hp->n_head_kv))
        hp->n_head_kv = hp->n_head;
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv != 0)
        return tl_err_set(err, TL_ERR_FORMAT, "head_count %d not a multiple of head_count_kv %d",
                          hp->n_head, hp->n_head_kv);
    if (!get_int(g, key(k, sizeof k, a, "attention.key_length"), &hp->head_dim))
        hp->head_dim = hp->n_embd / hp->n_head;
    if (!get_int(g, key(k, sizeof k, a, "attention.value_length"), &hp->head_dim_v))
        hp->head_dim_v = hp->head_dim;
    if (hp->head_dim <= 0 || hp->head_dim % 2 || hp->head_dim_v <= 0)
        return tl_err_set(err, TL_ERR_FORMAT, "invalid head size %d", hp->head_dim);
    if (!get_int(g, key(k, sizeof k, a, "context_length"), &hp->n_ctx_train) || hp->n_ctx_train <= 0)
        hp->n_ctx_train = 2048;
    if (!get_int(g, key(k, sizeof k, a, "rope.dimension_count"), &hp->rope_dims))
        hp->rope_dims = hp->head_dim;
    if (hp->rope_dims <= 0 || hp->rope_dims > hp->head_dim || hp->rope_dims % 2)
        return tl_err_set(err, TL_ERR_FORMAT, "invalid rope.dimension_count %d (head size %d)",
                          hp->rope_dims, hp->head_dim);
    if (!tl_gguf_get_f32(g, key(k, sizeof k, a, "rope.freq_base"), &hp->rope_theta))
        hp->rope_theta = 10000.0f;
    /* RoPE scaling as llama.cpp reads it: linear divides positions by the
     * factor; yarn also mixes in unscaled angles below the correction range
     * and boosts cos/sin; LongRoPE and Llama 3 come as factor tensors. */
    hp->rope_freq_scale = 1.0f;
    hp->rope_attn_factor = 1.0f;
    tl_gguf_str st;
    float factor = 0;
    if (!tl_gguf_get_f32(g, key(k, sizeof k, a, "rope.scaling.factor"), &factor))
        tl_gguf_get_f32(g, key(k, sizeof k, a, "rope.scale_linear"), &factor);
    if (!(factor >= 0) || isinf(factor))
        return tl_err_set(err, TL_ERR_FORMAT, "invalid rope scaling factor %g", factor);
    if (factor > 0) hp->rope_freq_scale = 1.0f / factor;
    if (tl_gguf_get_str(g, key(k, sizeof k, a, "rope.scaling.type"), &st)) {
        if (tl_gguf_str_eq(st, "none")) {
            hp->rope_freq_scale = 1.0f;
        } else if (tl_gguf_str_eq(st, "yarn")) {
            hp->rope_ext_factor = 1.0f;
        } else if (!tl_gguf_str_eq(st, "linear")) {
            return tl_err_set(err, TL_ERR_UNSUPPORTED, "rope scaling type '%.*s' is not supported",
                              (int)st.len, st.ptr);
        }
    }
    if (tl_gguf_get_f32(g, key(k, sizeof k, a, "rope.scaling.attn_factor"), &hp->rope_attn_factor) &&
        !(hp->rope_attn_factor > 0 && hp->rope_attn_factor < 1e3f))
        return tl_err_set(err, TL_ERR_FORMAT, "invalid rope.scaling.attn_factor %g", hp->rope_attn_factor);
    if (!get_int(g, key(k, sizeof k, a, "rope.scaling.original_context_length"), &hp->n_ctx_orig) ||
        hp->n_ctx_orig <= 0)
        hp->n_ctx_orig = hp->n_ctx_train;
    hp->yarn_beta_fast = 32.0f;
    hp->yarn_beta_slow = 1.0f;
    tl_gguf_get_f32(g, key(k, sizeof k, a, "rope.scaling.yarn_beta_fast"), &hp->yarn_beta_fast);
    tl_gguf_get_f32(g, key(k, sizeof k, a, "rope.scaling.yarn_beta_slow"), &hp->yarn_beta_slow);
    if (!(hp->yarn_beta_fast > 0 && hp->yarn_beta_slow > 0 && hp->yarn_beta_fast < 1e6f &&
          hp->yarn_beta_slow < 1e6f))
        return tl_err_set(err, TL_ERR_FORMAT, "invalid YaRN beta");
    const char *eps_key = a->norm == TL_NORM_LAYER ? "attention.layer_norm_epsilon"
                                                   : "attention.layer_norm_rms_epsilon";
    if (!tl_gguf_get_f32(g, key(k, sizeof k, a, eps_key), &hp->norm_eps))
        hp->norm_eps = 1e-5f;
    if (!(hp->norm_eps >= 0 && hp->norm_eps < 1))
        return tl_err_set(err, TL_ERR_FORMAT, "invalid norm epsilon");
    if (!get_int(g, key(k, sizeof k, a, "attention.sliding_window"), &hp->sliding_window))
        hp->sliding_window = 0;
    tl_gguf_get_f32(g, key(k, sizeof k, a, "attn_logit_softcapping"), &hp->attn_softcap);
    tl_gguf_get_f32(g, key(k, sizeof k, a, "final_logit_softcapping"), &hp->final_softcap);
    if (!(hp->attn_softcap >= 0) || !(hp->final_softcap >= 0))
        return tl_err_set(err, TL_ERR_FORMAT, "invalid softcap");
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    if ((int64_t)hp->n_head * hp->head_dim > (1 << 20) || hp->n_layer > 4096)
        return tl_err_set(err, TL_ERR_FORMAT, "implausible dimensions");
    return TL_OK;
}

bool tl_arch_layer_is_swa(const tl_arch *a, const tl_hparams *hp, int il) {
    if (hp->sliding_window <= 0) return false;
    if (a->swa_period > 1) return il % a->swa_period < a->swa_period - 1;
    return true;
}
