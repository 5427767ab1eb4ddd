/* source.h — a model file of any supported format, seen the same way:
 * metadata as GGUF-style keys and a list of named tensor views.
 * (It lives in the model layer because format openers map names through
 * arch/ tables; the parsers themselves stay in io/.)
 *
 * Formats whose conventions differ from GGUF's (Hugging Face rotate-half
 * RoPE, Gemma norms stored as w instead of 1+w) say so in the flags, so
 * the model adapts without touching the weights. */
#ifndef TL_IO_SOURCE_H
#define TL_IO_SOURCE_H

#include <stdbool.h>
#include "base/err.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "io/mmap.h"

typedef struct tl_source {
    const char *format;      /* "gguf", "hf", "torchless"; static string */
    tl_gguf *meta;           /* metadata (GGUF keys), owned */
    tl_tensor *tensors;      /* n_tensors views, owned array */
    int64_t n_tensors;
    bool rope_neox;          /* rotary pairs are halves (HF layout) for every family */
    bool norm_plus_one;      /* RMSNorm weights are stored as w, applied as 1+w */
    /* format-specific owner of mappings and name storage */
    void *impl;
    void (*impl_free)(void *impl);
    int64_t *sorted;         /* tensor indices sorted by name, for lookup */
    void **owned;            /* buffers openers had to make (converted or
                                realigned tensors), freed with the source */
    int64_t n_owned;
    size_t owned_bytes;
    const tl_mmap **maps;    /* the file mappings tensor views point into:
                                borrowed from meta/impl, the array owned */
    int n_maps;
} tl_source;

/* Opens path, detecting the format from its content. *out caller-frees with
 * tl_source_free. */
tl_status tl_source_open(const char *path, tl_source **out, tl_err *err);
void tl_source_free(tl_source *s);

/* Tensor by exact name, or NULL. Borrowed. */
const tl_tensor *tl_source_find(const tl_source *s, const char *name);

/* Hands p (malloc'd, `bytes` long) to the source, which frees it in tl_source_free. On
 * failure p is freed and TL_ERR_NOMEM returned. */
tl_status tl_source_own(tl_source *s, void *p, size_t bytes, tl_err *err);

/* Records a file mapping (borrowed: owned by s->meta or s->impl) that
 * tensor views point into, for tl_source_release; an empty one (a _mem
 * source's) is skipped. */
tl_status tl_source_add_map(tl_source *s, const tl_mmap *m, tl_err *err);

/* Drops this process's pages of t's data where they are a file mapping's
 * (tl_mmap_release: the bytes stay readable, faulted back from the file);
 * nothing for data anywhere else (converted or realigned buffers, a
 * caller's image). For a matrix the backend has copied (repacked), so the
 * model is not resident twice. */
void tl_source_release(const tl_source *s, const tl_tensor *t);

/* Builds the sorted index; formats call it once their tensor list is set. */
tl_status tl_source_index(tl_source *s, tl_err *err);

/* Format openers (one file each). */
tl_status tl_source_open_gguf(const char *path, tl_source *s, tl_err *err);
/* A Hugging Face directory (config.json, model.safetensors or shards with
 * model.safetensors.index.json, tokenizer.json[, tokenizer_config.json]). */
tl_status tl_source_open_hf(const char *dir, tl_source *s, tl_err *err);
/* A Torchless native .bin (u64 header size, JSON header, 64-byte aligned payload). */
tl_status tl_source_open_native(const char *path, tl_source *s, tl_err *err);
/* Same over a borrowed file image that must outlive s (tests, fuzzers);
 * s comes from calloc and is released with tl_source_free. */
tl_status tl_source_open_native_mem(const void *data, size_t size, tl_source *s, tl_err *err);

#endif
