/* source_native.c — the Torchless native binary as a tl_source.
 *
 * Layout (the original exporter, export_mistral.py): u64 LE header size N,
 * N bytes of JSON {metadata: {string values}, tokenizer: {vocab, merges},
 * tensors: {HF name: {dtype, shape, offset[, scale_offset, scale_size]}}}
 * padded with NULs, then the payload at the next 64-byte boundary; offsets
 * are relative to the payload. Tensors are f32 (f16/bf16 accepted too), or
 * int8 with one f32 scale per 64 consecutive elements, w = q / scale.
 *
 * The file is a Mistral checkpoint with HF names and HF rotary layout, so
 * metadata is rewritten as a config.json tree and tokenizer as a
 * tokenizer.json tree and both go through arch/hf_names like a Hugging Face
 * directory. Float tensors are zero-copy views. int8 tensors are converted
 * once at load to Q8_0 (the engine has no int8-with-scales kernel): every
 * 32-block lies inside one 64-group, so the block scale d = 1/scale is the
 * only rounding (f16, relative 2^-11) and memory stays ~1.06 bytes/weight;
 * rows not a multiple of 32 are dequantized to F32 instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/hf_names.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "io/mmap.h"
#include "io/safetensors.h"
#include "model/source.h"

#define NATIVE_ALIGN 64
#define NATIVE_GROUP 64

typedef struct native_impl {
    tl_mmap map;           /* empty for _mem sources */
    const uint8_t *data;   /* the file image */
    size_t size;
    char **names;
    int64_t n_names;
    void *meta_buf;
    float *rope_freqs;
} native_impl;

static void native_free(void *p) {
    native_impl *h = p;
    if (!h) return;
    tl_mmap_free(&h->map);
    for (int64_t i = 0; i < h->n_names; i++) free(h->names[i]);
    free(h->names);
    free(h->meta_buf);
    free(h->rope_freqs);
    free(h);
}

/* ------------------------------------------------------------- metadata */

/* "256" / "1e-05" / "None" -> number item, or NULL for None/empty. */
static cJSON *num_item(const char *s, bool *bad) {
    if (!s[0] || !strcmp(s, "None") || !strcmp(s, "null")) return NULL;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) {
        *bad = true;
        return NULL;
    }
    return cJSON_CreateNumber(v);
}

/* metadata {string: string} -> the config.json a Mistral checkpoint has. */
static tl_status build_config(const cJSON *meta, cJSON **out, tl_err *err) {
    static const struct { const char *native, *hf; } k_map[] = {
        { "hidden_size", "hidden_size" },
        { "intermediate_size", "intermediate_size" },
        { "n_layers", "num_hidden_layers" },
        { "n_heads", "num_attention_heads" },
        { "n_kv_heads", "num_key_value_heads" },
        { "vocab_size", "vocab_size" },
        { "max_position_embeddings", "max_position_embeddings" },
        { "rope_theta", "rope_theta" },
        { "norm_eps", "rms_norm_eps" },
        { "head_dim", "head_dim" },
        { "bos_token_id", "bos_token_id" },
        { "eos_token_id", "eos_token_id" },
    };
    *out = NULL;
    if (!cJSON_IsObject(meta)) return tl_err_set(err, TL_ERR_FORMAT, "header: 'metadata' is not an object");
    for (const cJSON *e = meta->child; e; e = e->next)
        if (!cJSON_IsString(e))
            return tl_err_set(err, TL_ERR_FORMAT, "metadata '%s' is not a string", e->string);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(meta, "act_type");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "silu") != 0)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "act_type '%.32s' is not supported (silu is)", act->valuestring);
    cJSON *cfg = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(cfg, "architectures");
    if (!cfg || !archs) {
        cJSON_Delete(cfg);
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    }
    cJSON_AddItemToArray(archs, cJSON_CreateString("MistralForCausalLM"));
    for (size_t i = 0; i < sizeof k_map / sizeof k_map[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, k_map[i].native);
        if (!v) continue;
        bool bad = false;
        cJSON *n = num_item(v->valuestring, &bad);
        if (bad) {
            cJSON_Delete(cfg);
            return tl_err_set(err, TL_ERR_FORMAT, "metadata '%s' = '%.32s' is not a number",
                              k_map[i].native, v->valuestring);
        }
        if (n) cJSON_AddItemToObject(cfg, k_map[i].hf, n);
    }
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(meta, "tie_word_embeddings");
    if (cJSON_IsString(tie))
        cJSON_AddBoolToObject(cfg, "tie_word_embeddings",
                              !strcmp(tie->valuestring, "1") || !strcmp(tie->valuestring, "True") ||
                                  !strcmp(tie->valuestring, "true"));
    *out = cfg;
    return TL_OK;
}

/* tokenizer {vocab, merges} -> what Mistral's tokenizer.json and
 * tokenizer_config.json say: SentencePiece-style BPE with byte fallback,
 * "▁" prepended, <unk>/<s>/</s> special, BOS added. Vocab and merges are
 * referenced, not copied. */
static tl_status build_tokenizer(const cJSON *t, cJSON **tok_out, cJSON **tok_cfg_out, tl_err *err) {
    *tok_out = *tok_cfg_out = NULL;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(t, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(t, "merges");
    if (!cJSON_IsObject(vocab)) return tl_err_set(err, TL_ERR_FORMAT, "header: tokenizer.vocab is not an object");
    if (merges && !cJSON_IsArray(merges)) return tl_err_set(err, TL_ERR_FORMAT, "header: tokenizer.merges is not an array");
    cJSON *tok = cJSON_CreateObject(), *tc = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(tok, "model");
    cJSON *added = cJSON_AddArrayToObject(tok, "added_tokens");
    cJSON *norm = cJSON_AddObjectToObject(tok, "normalizer");
    cJSON *seq = cJSON_AddArrayToObject(norm, "normalizers");
    cJSON *pre = cJSON_CreateObject();
    cJSON_AddItemToArray(seq, pre);
    bool ok = tok && tc && model && added && norm && seq && pre &&
              cJSON_AddStringToObject(norm, "type", "Sequence") &&
              cJSON_AddStringToObject(pre, "type", "Prepend") &&
              cJSON_AddStringToObject(pre, "prepend", "\xe2\x96\x81") &&
              cJSON_AddStringToObject(model, "type", "BPE") &&
              cJSON_AddBoolToObject(model, "byte_fallback", true) &&
              cJSON_AddItemReferenceToObject(model, "vocab", (cJSON *)vocab) &&
              (!merges || cJSON_AddItemReferenceToObject(model, "merges", (cJSON *)merges)) &&
              cJSON_AddBoolToObject(tc, "add_bos_token", true);
    static const struct { const char *text, *cfg_key; } k_special[] = {
        { "<unk>", "unk_token" }, { "<s>", "bos_token" }, { "</s>", "eos_token" },
    };
    for (size_t i = 0; ok && i < sizeof k_special / sizeof k_special[0]; i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(vocab, k_special[i].text);
        if (!cJSON_IsNumber(id)) continue;
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToArray(added, a);
        ok = a && cJSON_AddNumberToObject(a, "id", id->valuedouble) &&
             cJSON_AddStringToObject(a, "content", k_special[i].text) &&
             cJSON_AddBoolToObject(a, "special", true) &&
             cJSON_AddStringToObject(tc, k_special[i].cfg_key, k_special[i].text);
        if (ok && i == 0) ok = cJSON_AddStringToObject(model, "unk_token", "<unk>") != NULL;
    }
    if (!ok) {
        cJSON_Delete(tok);
        cJSON_Delete(tc);
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    }
    *tok_out = tok;
    *tok_cfg_out = tc;
    return TL_OK;
}

/* -------------------------------------------------------------- tensors */

typedef struct range { uint64_t off, len; const char *name; } range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off ? 1 : 0;
}

/* int8 q with per-64 scales -> Q8_0 rows (d = 1/scale), or F32 when rows
 * do not split into 32-blocks. A zero or non-finite scale (an all-zero
 * group exported as 127/0) gives zero weights. */
static tl_status convert_int8(tl_source *src, tl_tensor *t, const int8_t *q, const uint8_t *scales,
                              tl_err *err) {
    const int64_t n = tl_tensor_nelem(t);
    const bool to_q8 = t->ne[0] % TL_QK8_0 == 0;
    size_t bytes = to_q8 ? (size_t)(n / TL_QK8_0) * sizeof(tl_block_q8_0) : (size_t)n * sizeof(float);
    void *buf = malloc(bytes ? bytes : 1);
    if (!buf) return tl_err_set(err, TL_ERR_NOMEM, "out of memory converting '%s'", t->name);
    for (int64_t g = 0; g < n / NATIVE_GROUP; g++) {
        float s;
        memcpy(&s, scales + 4 * g, 4);
        const bool zero = !(isfinite(s) && s != 0.0f);
        const float inv = zero ? 0.0f : 1.0f / s;
        if (to_q8) {
            for (int b = 0; b < NATIVE_GROUP / TL_QK8_0; b++) {
                tl_block_q8_0 *blk = (tl_block_q8_0 *)buf + g * (NATIVE_GROUP / TL_QK8_0) + b;
                blk->d = tl_f32_to_f16(inv);
                for (int i = 0; i < TL_QK8_0; i++)
                    blk->qs[i] = zero ? 0 : q[g * NATIVE_GROUP + b * TL_QK8_0 + i];
            }
        } else {
            float *y = (float *)buf + g * NATIVE_GROUP;
            for (int i = 0; i < NATIVE_GROUP; i++) y[i] = zero ? 0.0f : (float)q[g * NATIVE_GROUP + i] / s;
        }
    }
    tl_status rc = tl_source_own(src, buf, bytes, err);
    if (rc != TL_OK) return rc;
    t->type = to_q8 ? TL_DTYPE_Q8_0 : TL_DTYPE_F32;
    t->data = buf;
    t->nbytes = bytes;
    return TL_OK;
}

/* Validates one entry (shape, dtype, ranges inside the payload) and fills t. */
static tl_status parse_tensor(tl_source *src, const cJSON *e, tl_tensor *t, const uint8_t *payload,
                              uint64_t psize, range *rs, int *n_rs, tl_err *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': entry is not an object", name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    uint64_t off, soff = 0, ssize = 0;
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) ||
        !tl_json_uint(cJSON_GetObjectItemCaseSensitive(e, "offset"), UINT64_MAX, &off))
        return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': needs string 'dtype', array 'shape', integer 'offset'", name);
    static const struct { const char *name; int type; size_t size; } k_types[] = {
        { "f32", TL_DTYPE_F32, 4 }, { "f16", TL_DTYPE_F16, 2 }, { "bf16", TL_DTYPE_BF16, 2 }, { "int8", -1, 1 },
    };
    int ti = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(jd->valuestring, k_types[i].name)) ti = i;
    if (ti < 0)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor '%s': dtype '%.16s' is not supported (f32, f16, bf16, int8 are)",
                          name, jd->valuestring);
    int nd = cJSON_GetArraySize(js);
    if (nd < 1 || nd > TL_MAX_DIMS)
        return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': %d dimensions (1 to %d supported)", name, nd, TL_MAX_DIMS);
    uint64_t numel = 1;
    int d = nd - 1;
    for (int i = 0; i < TL_MAX_DIMS; i++) t->ne[i] = 1;
    for (const cJSON *x = js->child; x; x = x->next, d--) {
        uint64_t v;
        if (!tl_json_uint(x, 1ull << 40, &v) || v == 0)
            return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': shape entries must be positive integers", name);
        if (numel > (UINT64_MAX / 8) / v) return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': shape overflows", name);
        numel *= v;
        t->ne[d] = (int64_t)v;
    }
    t->n_dims = nd;
    const uint64_t bytes = numel * k_types[ti].size;
    if (off > psize || bytes > psize - off)
        return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': data [%llu, +%llu) beyond the payload (%llu bytes)",
                          name, (unsigned long long)off, (unsigned long long)bytes, (unsigned long long)psize);
    if (off % k_types[ti].size)
        return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': offset %llu is not aligned", name, (unsigned long long)off);
    rs[(*n_rs)++] = (range){ off, bytes, name };
    t->data = payload + off;
    t->nbytes = (size_t)bytes;
    if (ti < 3) {
        t->type = (tl_dtype)k_types[ti].type;
        return TL_OK;
    }
    if (numel % NATIVE_GROUP)
        return tl_err_set(err, TL_ERR_FORMAT, "int8 tensor '%s': %llu elements, not a multiple of %d",
                          name, (unsigned long long)numel, NATIVE_GROUP);
    if (!tl_json_uint(cJSON_GetObjectItemCaseSensitive(e, "scale_offset"), UINT64_MAX, &soff) ||
        !tl_json_uint(cJSON_GetObjectItemCaseSensitive(e, "scale_size"), UINT64_MAX, &ssize))
        return tl_err_set(err, TL_ERR_FORMAT, "int8 tensor '%s': needs integer scale_offset and scale_size", name);
    if (ssize != numel / NATIVE_GROUP)
        return tl_err_set(err, TL_ERR_FORMAT, "int8 tensor '%s': scale_size %llu, expected %llu (one per %d)",
                          name, (unsigned long long)ssize, (unsigned long long)(numel / NATIVE_GROUP), NATIVE_GROUP);
    if (soff > psize || ssize * 4 > psize - soff || soff % 4)
        return tl_err_set(err, TL_ERR_FORMAT, "int8 tensor '%s': scales [%llu, +%llu) beyond the payload or unaligned",
                          name, (unsigned long long)soff, (unsigned long long)(ssize * 4));
    rs[(*n_rs)++] = (range){ soff, ssize * 4, name };
    return convert_int8(src, t, (const int8_t *)(payload + off), payload + soff, err);
}

static tl_status bind_tensors(tl_source *s, native_impl *h, const cJSON *tensors, bool tied,
                              const uint8_t *payload, uint64_t psize, tl_err *err) {
    const tl_hf_family *fam = tl_hf_family_find("MistralForCausalLM");
    int n = cJSON_GetArraySize(tensors);
    s->tensors = calloc((size_t)n + 1, sizeof(tl_tensor));
    h->names = calloc((size_t)n + 1, sizeof(char *));
    range *rs = calloc(2 * (size_t)n + 1, sizeof *rs);
    tl_status rc = s->tensors && h->names && rs ? TL_OK : tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    int n_rs = 0;
    char name[256];
    for (const cJSON *e = tensors->child; rc == TL_OK && e; e = e->next) {
        tl_hf_map_result r = tl_hf_map_name(fam, e->string, tied, name, sizeof name);
        if (r == TL_HF_DROP) continue;
        if (r == TL_HF_UNKNOWN) {
            rc = tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor '%.128s' has no GGUF name", e->string);
            break;
        }
        tl_tensor *t = &s->tensors[s->n_tensors];
        if (!(h->names[h->n_names] = strdup(name))) {
            rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
            break;
        }
        t->name = h->names[h->n_names++];
        rc = parse_tensor(s, e, t, payload, psize, rs, &n_rs, err);
        if (rc == TL_OK) s->n_tensors++;
    }
    if (rc == TL_OK) {
        qsort(rs, (size_t)n_rs, sizeof *rs, cmp_range);
        for (int i = 1; i < n_rs && rc == TL_OK; i++)
            if (rs[i].off < rs[i - 1].off + rs[i - 1].len)
                rc = tl_err_set(err, TL_ERR_FORMAT, "tensors '%s' and '%s' overlap in the payload",
                                rs[i - 1].name, rs[i].name);
    }
    free(rs);
    return rc;
}

/* --------------------------------------------------------------- opener */

static tl_status open_native(tl_source *s, native_impl *h, tl_err *err) {
    const uint8_t *data = h->data;
    const size_t size = h->size;
    if (size < 8) return tl_err_set(err, TL_ERR_FORMAT, "file too small for a Torchless header");
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)data[i] << (8 * i);
    if (n < 2 || n > size - 8)
        return tl_err_set(err, TL_ERR_FORMAT, "header size %llu does not fit in the file (%zu bytes)",
                          (unsigned long long)n, size);
    const uint64_t payload_off = (8 + n + NATIVE_ALIGN - 1) / NATIVE_ALIGN * NATIVE_ALIGN;
    const uint64_t psize = payload_off <= size ? size - payload_off : 0;
    cJSON *root = tl_json_parse((const char *)data + 8, (size_t)n, "Torchless header", err);
    if (!root) return err ? err->code : TL_ERR_FORMAT;
    cJSON *cfg = NULL, *tok = NULL, *tok_cfg = NULL;
    tl_gguf_writer *w = NULL;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(root, "tokenizer");
    tl_status rc = TL_OK;
    if (!cJSON_IsObject(tensors) || !cJSON_IsObject(tk))
        rc = tl_err_set(err, TL_ERR_FORMAT, "header needs 'metadata', 'tokenizer' and 'tensors' objects");
    if (rc == TL_OK) rc = build_config(meta, &cfg, err);
    if (rc == TL_OK) rc = build_tokenizer(tk, &tok, &tok_cfg, err);
    if (rc == TL_OK) rc = tl_gguf_writer_init(&w, err);
    int n_freqs = 0;
    if (rc == TL_OK)
        rc = tl_hf_config_to_gguf(tl_hf_family_find("MistralForCausalLM"), cfg, w, &h->rope_freqs, &n_freqs, err);
    if (rc == TL_OK) rc = tl_hf_tokenizer_to_gguf(tok, tok_cfg, cfg, w, err);
    size_t meta_size = 0;
    if (rc == TL_OK) {
        tl_gguf_writer_set_str(w, "general.name", "torchless");
        rc = tl_gguf_writer_write_mem(w, &h->meta_buf, &meta_size, err);
    }
    if (rc == TL_OK) rc = tl_gguf_open_mem(h->meta_buf, meta_size, &s->meta, err);
    if (rc == TL_OK)
        rc = bind_tensors(s, h, tensors, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings")),
                          data + (payload_off <= size ? payload_off : size), psize, err);
    if (rc == TL_OK && h->rope_freqs) {
        tl_tensor *t = &s->tensors[s->n_tensors++];
        *t = (tl_tensor){ .name = "rope_freqs.weight", .type = TL_DTYPE_F32, .n_dims = 1,
                          .ne = { n_freqs, 1, 1, 1 }, .data = h->rope_freqs,
                          .nbytes = sizeof(float) * (size_t)n_freqs };
    }
    s->rope_neox = true;
    tl_gguf_writer_free(w);
    cJSON_Delete(tok);
    cJSON_Delete(tok_cfg);
    cJSON_Delete(cfg);
    cJSON_Delete(root);
    return rc;
}

static native_impl *attach(tl_source *s) {
    s->format = "torchless";
    native_impl *h = calloc(1, sizeof *h);
    s->impl = h;
    s->impl_free = native_free;
    return h;
}

tl_status tl_source_open_native(const char *path, tl_source *s, tl_err *err) {
    native_impl *h = attach(s);
    if (!h) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_status rc = tl_mmap_open(path, &h->map, err);
    if (rc == TL_OK) rc = tl_source_add_map(s, &h->map, err);
    if (rc != TL_OK) return rc;
    h->data = h->map.data;
    h->size = h->map.size;
    return open_native(s, h, err);
}

tl_status tl_source_open_native_mem(const void *data, size_t size, tl_source *s, tl_err *err) {
    native_impl *h = attach(s);
    if (!h) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    h->data = data;
    h->size = size;
    return open_native(s, h, err);
}
