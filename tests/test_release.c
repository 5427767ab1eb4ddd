/* test_release.c — releasing the file pages behind a tensor the backend has
 * copied (tl_source_release, tl_mmap_release): the process stops holding
 * them (RSS falls), the bytes read back the same (faulted in from the
 * file), and data that is not a file mapping's is never touched (madvise
 * DONTNEED would zero anonymous memory). End to end: a loaded model whose
 * repacked matrices were released still gives the golden logits
 * (test_golden_logits), and holds its packed copy once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/gguf.h"
#include "io/mmap.h"
#include "model/source.h"

enum { N = 1 << 20 }; /* floats: 4 MiB of tensor data */

/* resident pages of this process (/proc/self/statm's second field), -1 if unknown */
static long rss_pages(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = -1, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
        fclose(f);
    }
    return res;
}

static double sum_of(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

int main(void) {
    float *w = malloc(sizeof(float) * N);
    CHECK(w != NULL);
    if (!w) return tl_test_finish("test_release", 0);
    for (int i = 0; i < N; i++) w[i] = (float)(i % 1000) * 0.5f;
    const double want = sum_of(w, N);

    char path[] = "/tmp/tl_release_XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    tl_gguf_writer *gw = NULL;
    tl_err err = { 0 };
    CHECK(tl_gguf_writer_init(&gw, &err) == TL_OK);
    CHECK(tl_gguf_writer_add_tensor(gw, "big", TL_DTYPE_F32, 2, (int64_t[4]){ 1024, N / 1024 }, w,
                                    sizeof(float) * (uint64_t)N) == TL_OK);
    CHECK(tl_gguf_writer_write(gw, path, &err) == TL_OK);
    tl_gguf_writer_free(gw);

    tl_source *s = NULL;
    CHECKF(tl_source_open(path, &s, &err) == TL_OK, "open: %s", err.msg);
    const tl_tensor *t = s ? tl_source_find(s, "big") : NULL;
    CHECK(t != NULL);
    if (t) {
        CHECK(s->n_maps == 1 && tl_mmap_contains(s->maps[0], t->data, t->nbytes));
        CHECK(sum_of(t->data, N) == want); /* every page touched: resident */
        const long before = rss_pages(), page = sysconf(_SC_PAGESIZE);
        tl_source_release(s, t);
        const long after = rss_pages();
        CHECKF(before > 0 && (before - after) * page >= 3 * (1 << 20),
               "release dropped %ld pages of ~%d", before - after, (int)(4 * (1 << 20) / page));
        CHECK(sum_of(t->data, N) == want); /* read back from the file, unchanged */

        /* a copy in anonymous memory (an owned or converted buffer): not a
         * mapping's, so left alone */
        tl_tensor copy = *t;
        copy.data = w;
        tl_source_release(s, &copy);
        CHECK(sum_of(w, N) == want);
        /* a range that runs past the mapping's end: not the mapping's either */
        CHECK(!tl_mmap_contains(s->maps[0], t->data, s->maps[0]->size + 1));
    }
    tl_source_free(s);
    tl_source_release(NULL, NULL); /* accepted */
    unlink(path);
    free(w);
    return tl_test_finish("test_release", 8);
}
