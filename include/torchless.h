/*
 * torchless.h — the public API of the torchless inference engine.
 *
 * Handles are opaque. Every call that can fail returns a tl_status; the
 * message of the last failure is read with tl_model_error()/tl_context_error()
 * (or tl_last_error() for calls that have no handle yet). Destructors accept
 * NULL. Ownership of every returned pointer is stated next to its declaration:
 * "borrowed" pointers live as long as the handle they came from; "caller
 * frees" pointers are released with the named function.
 *
 * Library code never prints and never exits: diagnostics go to the log
 * callback (tl_log_set), which defaults to silence.
 */
#ifndef TORCHLESS_H
#define TORCHLESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TL_VERSION_MAJOR 0
#define TL_VERSION_MINOR 1
#define TL_VERSION_PATCH 0
#define TL_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- status */

typedef enum tl_status {
    TL_OK = 0,
    TL_ERR_IO,          /* file missing, unreadable, mmap failed            */
    TL_ERR_FORMAT,      /* malformed or truncated file, bad offsets/lengths */
    TL_ERR_UNSUPPORTED, /* valid input this build cannot handle             */
    TL_ERR_INVALID_ARG, /* caller passed something out of range             */
    TL_ERR_NOMEM,       /* allocation failed                                */
    TL_ERR_MISSING,     /* a required tensor or metadata key is absent      */
    TL_ERR_CONTEXT_FULL,/* sequence would exceed the context length         */
    TL_ERR_INTERNAL,
} tl_status;

/* Short English name of a status ("ok", "format error", ...). Static string. */
const char *tl_status_str(tl_status s);

/* Message of the last failure on this thread for calls that have no handle
 * (e.g. tl_model_load failing before a model exists). Borrowed, thread-local. */
const char *tl_last_error(void);

/* ------------------------------------------------------------------- log */

typedef enum tl_log_level {
    TL_LOG_DEBUG = 0,
    TL_LOG_INFO  = 1,
    TL_LOG_WARN  = 2,
    TL_LOG_ERROR = 3,
} tl_log_level;

/* msg is borrowed for the duration of the call and has no trailing newline. */
typedef void (*tl_log_fn)(tl_log_level level, const char *msg, void *user);

/* Installs a process-wide log callback (NULL = silence). Messages below
 * min_level are not formatted at all. */
void tl_log_set(tl_log_fn fn, void *user, tl_log_level min_level);

/* ----------------------------------------------------------------- model */

typedef struct tl_model   tl_model;
typedef struct tl_context tl_context;
typedef struct tl_sampler tl_sampler;
typedef int32_t tl_token;

typedef struct tl_model_params {
    int  n_threads;     /* 0 = number of online cores                     */
    /* NULL (default): weights are used as stored, as views into the mapped
     * file. A type name ("f16", "q8_0", ...) converts every matrix to that
     * type once at load, into memory the model owns. */
    const char *dtype;
} tl_model_params;

tl_model_params tl_model_default_params(void);

/* Loads a model; the format (GGUF, Hugging Face directory, Torchless native)
 * is detected from content. On failure returns NULL-handle and a status;
 * tl_last_error() says why. *out is caller-frees with tl_model_free. */
tl_status tl_model_load(const char *path, const tl_model_params *params, tl_model **out);
void      tl_model_free(tl_model *m);
const char *tl_model_error(const tl_model *m);   /* borrowed */

/* Hyperparameters and descriptions. Strings are borrowed from the model. */
typedef struct tl_model_info {
    const char *format;        /* "gguf", "hf", "torchless"            */
    const char *arch;          /* descriptor name: "llama", "phi2", ... */
    const char *name;          /* general.name or "" */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int n_ctx_train;
    int sliding_window;        /* 0 = none */
    float rope_theta;
    int rope_dims;
    float norm_eps;
    uint64_t n_params;
    uint64_t weight_bytes;
    const char *file_type;     /* the GGUF's general.file_type as llama-quantize names it
                                  (e.g. "Q4_K_M"), else the type holding most weight
                                  bytes (e.g. "F16"); static storage */
    int n_threads;             /* threads the CPU backend runs (0 at load resolved) */
} tl_model_info;

void tl_model_get_info(const tl_model *m, tl_model_info *info);

/* Tensor listing for `torchless info`. i in [0, tl_model_n_tensors). Strings
 * borrowed. ne[] holds up to 4 dims, innermost (contiguous) first. */
int tl_model_n_tensors(const tl_model *m);
void tl_model_tensor_info(const tl_model *m, int i, const char **name, const char **type,
                          int *n_dims, int64_t ne[4]);

/* Metadata listing (GGUF-style keys). value is rendered as text; both
 * strings are borrowed until the next call on this model. */
int tl_model_n_meta(const tl_model *m);
void tl_model_meta(const tl_model *m, int i, const char **key, const char **value);

/* ------------------------------------------------------------- tokenizer */

tl_token tl_token_bos(const tl_model *m);   /* -1 when none */
tl_token tl_token_eos(const tl_model *m);   /* -1 when none */
bool     tl_token_is_eog(const tl_model *m, tl_token t);  /* end of generation */
int      tl_model_n_vocab(const tl_model *m);

/* Tokenizes text into out[0..cap). add_special: add BOS/EOS as the model's
 * metadata asks. parse_special: recognise special/control token texts
 * ("<|im_start|>") inside text. Returns the number of tokens, or -(needed)
 * when cap is too small (nothing partial is meaningful then). */
int tl_tokenize(const tl_model *m, const char *text, size_t len, tl_token *out, int cap,
                bool add_special, bool parse_special);

/* Writes the text piece of one token into buf (no NUL), returning its length
 * or -(needed) if cap is too small. Byte tokens yield raw bytes, which may be
 * incomplete UTF-8: streaming callers use tl_detok_stream below. */
int tl_token_to_piece(const tl_model *m, tl_token t, char *buf, int cap, bool render_special);

/* Decodes a whole token sequence into buf (NUL-terminated when it fits).
 * Returns the length without NUL or -(needed+1) if cap is too small. */
int tl_detokenize(const tl_model *m, const tl_token *toks, int n, char *buf, int cap,
                  bool render_special);

/* -------------------------------------------------------------- context */

/* KV cache element type. TL_KV_Q8_0 stores K and V rows as blocks of 32
 * int8 with one F16 scale per block along each head (34 bytes per 32 values,
 * 0.53x of F16); it needs head sizes that are multiples of 32, else
 * tl_context_init fails with TL_ERR_UNSUPPORTED. Logits stay within the
 * quantized-weights tolerance of an F32 cache. */
typedef enum tl_kv_type { TL_KV_F16 = 0, TL_KV_F32 = 1, TL_KV_Q8_0 = 2 } tl_kv_type;

typedef struct tl_context_params {
    int n_ctx;            /* 0 = model's trained length, capped at 4096 */
    int n_batch;          /* max tokens per tl_decode call; 0 = 512     */
    tl_kv_type kv_type;   /* default TL_KV_F16                          */
    int n_threads;        /* 0 = model's setting                        */
    bool all_logits;      /* keep logits of every position of a batch   */
} tl_context_params;

tl_context_params tl_context_default_params(void);

/* A context holds the KV cache of one sequence. caller-frees with
 * tl_context_free. */
tl_status tl_context_init(tl_model *m, const tl_context_params *p, tl_context **out);
void      tl_context_free(tl_context *c);
const char *tl_context_error(const tl_context *c);   /* borrowed */
int  tl_context_n_ctx(const tl_context *c);
int  tl_context_n_past(const tl_context *c);          /* tokens in the cache */
void tl_context_reset(tl_context *c);                 /* empties the cache   */
/* Drops cached positions >= n_past (n_past <= current), for rewinding. */
tl_status tl_context_truncate(tl_context *c, int n_past);

/* Evaluates n tokens at positions n_past.. (one batched pass; n may exceed
 * n_batch, the call splits it). Afterwards tl_get_logits returns the logits
 * of the last token (or of every token if all_logits). */
tl_status tl_decode(tl_context *c, const tl_token *toks, int n);

/* Logits of row i of the last tl_decode (i = -1: last row). n_vocab floats,
 * borrowed until the next tl_decode. NULL if unavailable. */
const float *tl_get_logits(tl_context *c, int i);

/* --------------------------------------------------------------- sampler */

typedef struct tl_sampler_params {
    float temperature;     /* 0 = greedy                      default 0.7 */
    int   top_k;           /* 0 = off                         default 40  */
    float top_p;           /* 1 = off                         default 0.9 */
    float min_p;           /* 0 = off                         default 0.05 */
    float repeat_penalty;  /* 1 = off                         default 1.1 */
    int   repeat_last_n;   /* window for penalties            default 64  */
    float frequency_penalty; /* 0 = off */
    float presence_penalty;  /* 0 = off */
    uint64_t seed;         /* default: time-based; fixed = reproducible */
} tl_sampler_params;

tl_sampler_params tl_sampler_default_params(void);
/* caller-frees with tl_sampler_free. */
tl_status tl_sampler_init(const tl_sampler_params *p, int n_vocab, tl_sampler **out);
void      tl_sampler_free(tl_sampler *s);
/* Samples a token from logits (n_vocab floats, not modified). */
tl_token  tl_sampler_sample(tl_sampler *s, const float *logits);
/* Records a token as generated/prompted (feeds repetition penalties). */
void      tl_sampler_accept(tl_sampler *s, tl_token t);
void      tl_sampler_reset(tl_sampler *s);

/* ------------------------------------------------------------------ misc */

/* Applies the model's chat template (or a built-in fallback chosen from the
 * architecture) to one user message, with the assistant turn opened.
 * Returns a caller-frees (free()) NUL-terminated string, or NULL when the
 * model has no template and no fallback applies. */
char *tl_chat_format(const tl_model *m, const char *system, const char *user);

/* Bytes the model allocated itself (weights mapped from the file are not
 * counted: they are the file's pages), and bytes of a context's KV cache. */
size_t tl_model_memory(const tl_model *m);
size_t tl_context_memory(const tl_context *c);

/* The CPU kernel variant in use ("ref", "avx2", "avx512", ...). Static. */
const char *tl_cpu_variant(void);

/* -------------------------------------------------------------- quantize */

/* One tensor done, reported in output-file order. Every pointer is borrowed
 * for the duration of the callback only. */
typedef struct tl_quantize_progress {
    int index;              /* 0-based position in the output file          */
    int count;              /* tensors in the file                          */
    const char *name;
    const char *from_type;  /* GGML spelling: "F32", "Q4_K", ...            */
    const char *to_type;
    int n_dims;
    int64_t ne[4];          /* innermost first; unused dims are 1           */
    uint64_t from_bytes, to_bytes;
    bool converted;         /* false: copied unchanged                      */
    bool requantized;       /* source was already quantized (quality lost)  */
    const char *note;       /* NULL, or why a fallback type was used        */
} tl_quantize_progress;

typedef void (*tl_quantize_progress_fn)(const tl_quantize_progress *p, void *user);

typedef struct tl_quantize_params {
    /* llama-quantize's names, case-insensitive: F32 F16 BF16 Q8_0 Q4_0 Q4_1
     * Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K,
     * and the aliases Q3_K (= Q3_K_M), Q4_K (= Q4_K_M), Q5_K (= Q5_K_M).
     * Default "Q4_K_M". */
    const char *type;
    int n_threads;          /* 0 = online cores                             */
    /* Every quantizable tensor gets the base type of `type` (llama-quantize
     * --pure): no mix rules, no Q6_K output, only the row-length fallback. */
    bool pure;
    tl_quantize_progress_fn progress;  /* NULL = silent */
    void *progress_user;
} tl_quantize_params;

tl_quantize_params tl_quantize_default_params(void);

/* Re-quantizes the GGUF at in into a new GGUF at out, choosing each tensor's
 * type as llama.cpp's llama-quantize does for the same type name (the same
 * tensors come out byte-identical: no importance matrix is used). 1-D
 * tensors, norms and the tensors llama.cpp never quantizes are copied;
 * F16/BF16/quantized sources are converted to F32 first (requantizing a
 * quantized source loses quality and logs a warning). Metadata is copied,
 * with general.file_type and general.quantization_version = 2 set. out is
 * written atomically (temp file + rename); on failure it is left untouched.
 * p may be NULL (defaults). Returns TL_OK, or an error whose message
 * tl_last_error() returns. */
tl_status tl_quantize(const char *in, const char *out, const tl_quantize_params *p);

/* i-th accepted type name (0-based, canonical spelling), NULL past the
 * end; for help texts. Static strings. */
const char *tl_quantize_type_name(int i);

/* ------------------------------------------------------ convert / export */

/* One tensor written, in output order. Pointers are borrowed for the
 * duration of the callback only. */
typedef struct tl_convert_progress {
    const char *stage;      /* "convert" (source -> GGUF), "quantize" (the
                               tl_quantize pass of a quantized --type), "export" */
    int index;              /* 0-based position in this stage's output      */
    int count;              /* tensors in this stage                        */
    const char *name;       /* output name (GGUF, or Hugging Face for export) */
    const char *from_type;  /* GGML spelling: "F32", "Q8_0", ...; export: "f32"/"int8" as to_type */
    const char *to_type;
    int n_dims;
    int64_t ne[4];          /* innermost first; unused dims are 1           */
    uint64_t from_bytes, to_bytes;
    const char *note;       /* NULL, or what was done to the values ("rows permuted
                               for interleaved RoPE", "norm stored as 1+w", ...) */
} tl_convert_progress;

typedef void (*tl_convert_progress_fn)(const tl_convert_progress *p, void *user);

typedef struct tl_convert_params {
    /* NULL or "auto": every tensor keeps its type (lossless; 1-D tensors
     * become F32). "f32", "f16", "bf16": every tensor of 2+ dimensions in
     * that type. Any other name tl_quantize accepts ("q8_0", "q4_0",
     * "q4_k_m", ...; case-insensitive): the model is converted losslessly to a
     * temporary GGUF beside out, then quantized by tl_quantize, so each
     * tensor gets the type llama-quantize would give it. */
    const char *type;
    bool pure;              /* quantized types: tl_quantize_params.pure      */
    int n_threads;          /* 0 = online cores                             */
    tl_convert_progress_fn progress;  /* NULL = silent */
    void *progress_user;
} tl_convert_params;

tl_convert_params tl_convert_default_params(void);

/* Writes any loadable model at src (GGUF, Hugging Face directory, Torchless
 * native) as a GGUF at out in llama.cpp's conventions: metadata and
 * tokenizer as tokenizer.ggml.* keys, general.file_type set, and the
 * conventions the loaders leave to flags baked into the weights: for
 * families whose GGUF RoPE rotates adjacent pairs (llama, mistral) the Q/K
 * rows of rotate-half sources are permuted as llama.cpp's convert_hf_to_gguf
 * does; Gemma norms are stored as 1+w. out is written atomically; on
 * failure it is left untouched. p may be NULL (defaults). Returns TL_OK, or
 * an error whose message tl_last_error() returns. */
tl_status tl_convert(const char *src, const char *out, const tl_convert_params *p);

typedef enum tl_export_quant {
    TL_EXPORT_F32 = 0,      /* every tensor f32                             */
    TL_EXPORT_INT8,         /* "*_proj" weights int8 with one f32 scale per 64
                               values (w = q / scale), the rest f32          */
} tl_export_quant;

typedef struct tl_export_params {
    tl_export_quant quant;
    int n_threads;          /* 0 = online cores                             */
    tl_convert_progress_fn progress;  /* NULL = silent; stage "export"   */
    void *progress_user;
} tl_export_params;

tl_export_params tl_export_default_params(void);

/* Writes the model at src (any loadable format) as a Torchless native .bin
 * at out, the layout the original exporter (export_mistral.py) writes and
 * both the Torchless readers load: u64 header size, JSON {metadata, tokenizer
 * {vocab, merges}, tensors} padded with NULs to 64 bytes, then the payload,
 * each tensor 64-byte aligned, Hugging Face names and rotate-half Q/K rows.
 * The format describes Mistral-style models only: src must be a llama-
 * architecture model without biases or rope scaling, with a SentencePiece-
 * style vocabulary (merges are rebuilt from the scores when src has none).
 * out is written atomically. p may be NULL (f32). Returns TL_OK, or an error
 * whose message tl_last_error() returns. */
tl_status tl_export_native(const char *src, const char *out, const tl_export_params *p);

#ifdef __cplusplus
}
#endif
#endif /* TORCHLESS_H */
