/* hf_names.h — Hugging Face conventions translated into GGUF's, as data.
 *
 * A Hugging Face directory (and the Torchless native format, which keeps
 * HF names) is loaded by describing it the way a GGUF file would: config.json
 * becomes "<arch>.*" metadata keys, tensor names become GGUF names
 * ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"), and
 * tokenizer.json becomes "tokenizer.ggml.*" keys, following llama.cpp's
 * convert_hf_to_gguf.py. One table row per family; the model code never sees
 * a Hugging Face name.
 *
 * Weights are never changed here: the source flags HF's rotate-half RoPE
 * and Gemma's w-stored norms (see io/source.h) instead of permuting or
 * adding 1 the way the converter does. */
#ifndef TL_ARCH_HF_NAMES_H
#define TL_ARCH_HF_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "base/err.h"
#include "io/gguf.h"

typedef struct tl_hf_rename {
    const char *hf;    /* name without ".weight"/".bias"; per-layer names without "model.layers.N." */
    const char *gguf;  /* GGUF stem ("attn_q", "token_embd") */
} tl_hf_rename;

typedef enum tl_hf_cfg_kind { TL_HF_CFG_U32 = 0, TL_HF_CFG_F32 } tl_hf_cfg_kind;

/* config.json key -> "<arch>.<key>" metadata. */
typedef struct tl_hf_cfg {
    const char *json;
    const char *key;
    tl_hf_cfg_kind kind;
} tl_hf_cfg;

typedef struct tl_hf_family {
    const char *hf_arch;         /* config.json "architectures"[0] */
    const char *arch;            /* GGUF general.architecture */
    const tl_hf_rename *global;  /* {NULL} terminated */
    const tl_hf_rename *layer;   /* {NULL} terminated */
    const tl_hf_cfg *extra_cfg;  /* family-only config keys, {NULL} terminated; may be NULL */
    bool norm_plus_one;          /* RMSNorm weights stored as w, applied as 1+w (Gemma) */
    bool llama3_rope;            /* rope_scaling of type llama3 becomes rope_freqs.weight */
    bool drop_lm_head;           /* output is always the embedding (Gemma: llama.cpp drops lm_head) */
} tl_hf_family;

/* Family for an HF architecture name ("LlamaForCausalLM"), or NULL. Static. */
const tl_hf_family *tl_hf_family_find(const char *hf_arch);
/* Comma-separated list of supported HF architecture names. Static. */
const char *tl_hf_known(void);

typedef enum tl_hf_map_result {
    TL_HF_UNKNOWN = -1,  /* no rule for this name */
    TL_HF_DROP = 0,      /* known and not used (rotary buffers, a tied lm_head) */
    TL_HF_MAPPED = 1,    /* out holds the GGUF name */
} tl_hf_map_result;

/* Maps one HF tensor name to its GGUF name in out[0..cap). tied: the
 * config says the output projection is the embedding, so lm_head is
 * dropped. A name that does not fit cap counts as unknown. */
tl_hf_map_result tl_hf_map_name(const tl_hf_family *f, const char *hf, bool tied, char *out,
                                size_t cap);

/* Writes general.architecture and the "<arch>.*" keys for config.json
 * (cfg) onto w: context/embedding/feed-forward length, block count, head
 * counts, head size, rope base and rotated dims (partial_rotary_factor),
 * norm epsilons, linear rope scaling, and the family's extras (sliding
 * window, softcaps). For rope_scaling of type llama3, *rope_freqs gets a
 * malloc'd array of *n_rope_freqs frequency divisors (caller frees),
 * computed as llama.cpp's converter does; else NULL/0. Errors:
 * TL_ERR_MISSING (a required key), TL_ERR_FORMAT (wrong type or range),
 * TL_ERR_UNSUPPORTED (a rope scaling this engine cannot compute). */
tl_status tl_hf_config_to_gguf(const tl_hf_family *f, const cJSON *cfg, tl_gguf_writer *w,
                               float **rope_freqs, int *n_rope_freqs, tl_err *err);

/* Writes tokenizer.ggml.* (model, pre, tokens, scores, token_type,
 * merges, special ids, add_bos/add_eos/add_space_prefix) and
 * tokenizer.chat_template for a tokenizer.json tree (tok), with
 * tokenizer_config.json (tok_cfg) and config.json (cfg) trees, either of
 * which may be NULL. BPE with byte fallback becomes "llama" (SentencePiece
 * style; scores from merge rank: the token a merge produces scores -rank,
 * tokens no merge produces score below every merge), byte-level BPE
 * becomes "gpt2" with tokenizer.ggml.pre named from the Split regex when
 * it is a known one, and the raw regexes in tokenizer.ggml.pre_regex
 * (string array, applied in order). The token list is padded with
 * "[PADn]" (type unused) to config vocab_size. Errors: TL_ERR_FORMAT,
 * TL_ERR_UNSUPPORTED (Unigram/WordPiece models), TL_ERR_NOMEM. */
tl_status tl_hf_tokenizer_to_gguf(const cJSON *tok, const cJSON *tok_cfg, const cJSON *cfg,
                                  tl_gguf_writer *w, tl_err *err);

#endif
