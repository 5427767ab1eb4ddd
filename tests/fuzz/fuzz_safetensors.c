/* fuzz_safetensors.c — libFuzzer target for the safetensors reader and the
 * Hugging Face JSON translators (config.json and tokenizer.json -> GGUF
 * keys -> tokenizer). Build and run with scripts/fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/hf_names.h"
#include "io/safetensors.h"
#include "tok/tok.h"

static volatile uint64_t g_sink;

static void check_safetensors(const uint8_t *data, size_t size) {
    tl_err err = {0};
    tl_safetensors *st = NULL;
    if (tl_safetensors_open_mem(data, size, &st, &err) != TL_OK) {
        if (st || !err.msg[0]) abort(); /* contract: no handle, a message */
        return;
    }
    uint64_t h = 0;
    for (int64_t i = 0; i < tl_safetensors_n_tensors(st); i++) {
        const tl_st_tensor *t = tl_safetensors_tensor_at(st, i);
        const uint8_t *d = t->data;
        if (d < data || t->nbytes > size || d + t->nbytes > data + size) abort();
        if (t->nbytes) h += d[0] + d[t->nbytes - 1];
        if (tl_safetensors_find(st, t->name) == NULL) abort();
    }
    g_sink += h;
    tl_safetensors_free(st);
}

/* The same bytes as config.json / tokenizer.json / tokenizer_config.json. */
static void check_json(const uint8_t *data, size_t size) {
    tl_err err = {0};
    cJSON *j = tl_json_parse((const char *)data, size, "fuzz", &err);
    if (!j) {
        if (!err.msg[0]) abort();
        return;
    }
    static const char *archs[] = {"LlamaForCausalLM", "PhiForCausalLM", "Gemma2ForCausalLM"};
    for (int a = 0; a < 3; a++) {
        tl_gguf_writer *w = NULL;
        if (tl_gguf_writer_init(&w, &err) != TL_OK) break;
        float *freqs = NULL;
        int n = 0;
        tl_err_clear(&err);
        tl_status rc = tl_hf_config_to_gguf(tl_hf_family_find(archs[a]), j, w, &freqs, &n, &err);
        if (rc != TL_OK && !err.msg[0]) abort();
        for (int i = 0; i < n; i++) g_sink += freqs[i] > 1.0f;
        free(freqs);
        tl_gguf_writer_free(w);
    }
    tl_gguf_writer *w = NULL;
    if (tl_gguf_writer_init(&w, &err) == TL_OK) {
        tl_err_clear(&err);
        tl_status rc = tl_hf_tokenizer_to_gguf(j, j, j, w, &err);
        if (rc != TL_OK && !err.msg[0]) abort();
        void *buf = NULL;
        size_t len = 0;
        if (rc == TL_OK && tl_gguf_writer_write_mem(w, &buf, &len, &err) == TL_OK) {
            tl_gguf *g = NULL;
            if (tl_gguf_open_mem(buf, len, &g, &err) != TL_OK) abort(); /* we wrote it */
            tl_tok *t = NULL;
            if (tl_tok_init_gguf(g, &t, &err) == TL_OK) {
                int32_t ids[64];
                g_sink += (uint64_t)tl_tok_encode(t, "Hello world <s> 123", 19, ids, 64, true, true);
                tl_tok_free(t);
            }
            tl_gguf_free(g);
        }
        free(buf);
        tl_gguf_writer_free(w);
    }
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_safetensors(data, size);
    check_json(data, size);
    return 0;
}
