/* mmap.c — read-only private file mappings (weights are views into them). */
#include "io/mmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

tl_status tl_mmap_open(const char *path, tl_mmap *out, tl_err *err) {
    if (!out) return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_mmap_open: out is NULL");
    out->data = NULL;
    out->size = 0;
    if (!path) return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_mmap_open: path is NULL");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tl_err_set(err, TL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tl_err_set(err, TL_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    /* Directories, FIFOs and devices have no meaningful size to map. */
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tl_err_set(err, TL_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return tl_err_set(err, TL_ERR_IO, "%s: file size %lld does not fit in memory",
                          path, (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {  /* mmap of length 0 fails; an empty file is valid here */
        close(fd);
        return TL_OK;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);  /* the mapping keeps its own reference to the file */
    if (p == MAP_FAILED)
        return tl_err_set(err, TL_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, size,
                          strerror(e));
    out->data = (const uint8_t *)p;
    out->size = size;
    return TL_OK;
}

void tl_mmap_free(tl_mmap *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

bool tl_mmap_contains(const tl_mmap *m, const void *p, size_t n) {
    if (!m || !m->data || !p) return false;
    const uintptr_t a = (uintptr_t)p, base = (uintptr_t)m->data;
    return a >= base && a - base <= m->size && n <= m->size - (a - base);
}

void tl_mmap_release(const tl_mmap *m, const void *p, size_t n) {
    if (!tl_mmap_contains(m, p, n)) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = ((uintptr_t)p + page - 1) / page * page, b = ((uintptr_t)p + n) / page * page;
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}
