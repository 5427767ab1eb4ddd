/* fuzz_native.c — libFuzzer target for the Torchless native-format reader
 * (header JSON, metadata and tokenizer translation, tensor table, int8 ->
 * Q8_0 conversion). Build and run with scripts/fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/source.h"

static volatile uint64_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_err err = {0};
    tl_source *s = calloc(1, sizeof *s);
    if (!s) return 0;
    tl_status rc = tl_source_open_native_mem(data, size, s, &err);
    if (rc == TL_OK) rc = tl_source_index(s, &err);
    if (rc != TL_OK) {
        if (!err.msg[0]) abort(); /* contract: a message */
        tl_source_free(s);
        return 0;
    }
    uint64_t h = 0;
    for (int64_t i = 0; i < s->n_tensors; i++) {
        const tl_tensor *t = &s->tensors[i];
        if (tl_source_find(s, t->name) == NULL) abort();
        const uint8_t *d = t->data;
        /* a view inside the image, or a converted buffer of the stated size */
        if (d >= data && d < data + size && (t->nbytes > size || d + t->nbytes > data + size)) abort();
        if (t->nbytes) h += d[0] + d[t->nbytes - 1];
    }
    g_sink += h;
    tl_source_free(s);
    return 0;
}
