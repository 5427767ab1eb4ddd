/* heap.h — a typed binary min-heap, generated per element type.
 *
 *   TL_HEAP_DEFINE(prefix, T, before)
 *
 * defines `prefix_heap` {T *v; size_t n, cap;} and static functions
 * `prefix_heap_push(h, x)` (false when out of memory) and
 * `prefix_heap_pop(h)` (h->n must be > 0), where `before(const T *a,
 * const T *b)` says a comes out first. The caller frees h->v. Written once
 * here so each tokenizer's merge queue keeps its own element type and
 * ordering without an indirect call per comparison. */
#ifndef TL_BASE_HEAP_H
#define TL_BASE_HEAP_H

#include <stdbool.h>
#include <stdlib.h>

#define TL_HEAP_DEFINE(prefix, T, before)                                        \
    typedef struct prefix##_heap {                                               \
        T *v;                                                                    \
        size_t n, cap;                                                           \
    } prefix##_heap;                                                             \
                                                                                 \
    static bool prefix##_heap_push(prefix##_heap *h, T x) {                      \
        if (h->n == h->cap) {                                                    \
            size_t nc = h->cap ? h->cap * 2 : 64;                                \
            T *nv = realloc(h->v, nc * sizeof *nv);                              \
            if (!nv) return false;                                               \
            h->v = nv;                                                           \
            h->cap = nc;                                                         \
        }                                                                        \
        size_t i = h->n++;                                                       \
        while (i > 0) {                                                          \
            size_t p = (i - 1) / 2;                                              \
            if (!before(&x, &h->v[p])) break;                                    \
            h->v[i] = h->v[p];                                                   \
            i = p;                                                               \
        }                                                                        \
        h->v[i] = x;                                                             \
        return true;                                                             \
    }                                                                            \
                                                                                 \
    static T prefix##_heap_pop(prefix##_heap *h) {                               \
        T top = h->v[0], last = h->v[--h->n];                                    \
        size_t i = 0;                                                            \
        for (;;) {                                                               \
            size_t l = 2 * i + 1, r = l + 1, best = i;                           \
            const T *bv = &last;                                                 \
            if (l < h->n && before(&h->v[l], bv)) { best = l; bv = &h->v[l]; }   \
            if (r < h->n && before(&h->v[r], bv)) best = r;                      \
            if (best == i) break;                                                \
            h->v[i] = h->v[best];                                                \
            i = best;                                                            \
        }                                                                        \
        if (h->n) h->v[i] = last;                                                \
        return top;                                                              \
    }

#endif
