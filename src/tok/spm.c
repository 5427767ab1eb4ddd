/* spm.c — SentencePiece-style tokenization (llama.cpp's llm_tokenizer_spm).
 *
 * The text (spaces already escaped to U+2581 by the caller's rules) starts
 * as one symbol per UTF-8 character. The adjacent pair whose concatenation
 * is the vocabulary token with the highest score is merged, repeatedly,
 * ties going to the leftmost pair; stale queue entries are recognised by
 * their length no longer matching. Symbols left that are not tokens are
 * emitted as byte tokens. O(n log n) in the text length. */
#include "tok/tok_impl.h"
#include "base/heap.h"

#include <stdlib.h>
#include <string.h>

typedef struct spm_sym {
    int prev, next;
    uint32_t off, n;   /* bytes text[off .. off+n); n = 0 once merged away */
} spm_sym;

typedef struct spm_bigram {
    float score;
    int left, right;
    uint32_t size;
} spm_bigram;

/* a comes out before b: higher score, then smaller left index */
static inline bool bg_before(const spm_bigram *a, const spm_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

TL_HEAP_DEFINE(spm, spm_bigram, bg_before)

typedef struct spm_state {
    const tl_tok *t;
    const char *text;
    spm_sym *sym;
    spm_heap heap;
    bool oom;
} spm_state;

static void try_add_bigram(spm_state *s, int left, int right) {
    if (left < 0 || right < 0) return;
    const spm_sym *l = &s->sym[left], *r = &s->sym[right];
    /* adjacent live symbols are contiguous in the text */
    int32_t id;
    if (!tl_strmap_get(&s->t->text_to_id, s->text + l->off, (size_t)l->n + r->n, &id)) return;
    spm_bigram b = {s->t->scores[id], left, right, l->n + r->n};
    if (!spm_heap_push(&s->heap, b)) s->oom = true;
}

static void emit_bytes(const tl_tok *t, const char *p, size_t n, tl_tok_ids *out) {
    for (size_t j = 0; j < n; j++) {
        int32_t id = t->byte_tok[(unsigned char)p[j]];
        /* llama.cpp aborts on a vocabulary without the byte token; the
         * unknown token is the graceful equivalent. */
        if (id < 0) id = t->unk;
        if (id >= 0) tl_tok_ids_push(out, id);
    }
}

static bool is_ws_mark(const char *p) {
    return (unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x96 && (unsigned char)p[2] == 0x81;
}

/* Merges symbols [c0, c1) (a chain with no links outside) and emits them. */
static void merge_chunk(spm_state *s, int c0, int c1, tl_tok_ids *out) {
    const tl_tok *t = s->t;
    s->sym[c0].prev = -1;
    s->sym[c1 - 1].next = -1;
    s->heap.n = 0;
    for (int i = c0 + 1; i < c1; i++) try_add_bigram(s, i - 1, i);
    while (s->heap.n && !s->oom) {
        spm_bigram b = spm_heap_pop(&s->heap);
        spm_sym *l = &s->sym[b.left], *r = &s->sym[b.right];
        /* stale: a side was merged away or grew since the pair was queued */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = b.left;
        try_add_bigram(s, l->prev, b.left);
        try_add_bigram(s, b.left, l->next);
    }
    if (s->oom) return;
    for (int i = c0; i != -1; i = s->sym[i].next) {
        const spm_sym *y = &s->sym[i];
        int32_t id;
        if (tl_strmap_get(&t->text_to_id, s->text + y->off, y->n, &id))
            tl_tok_ids_push(out, id);
        else
            emit_bytes(t, s->text + y->off, y->n, out);
    }
}

/* When no vocabulary text has a U+2581 preceded by anything but U+2581
 * (true of SentencePiece models that split on whitespace), no merge can
 * cross the start of a run of U+2581, so the text is merged chunk by chunk:
 * the same merges as one global queue, with small cache-resident heaps. */
tl_status tl_tok_spm_encode(const tl_tok *t, const char *text, size_t len, tl_tok_ids *out) {
    if (len == 0) return TL_OK;
    if (len > INT32_MAX / 2) return TL_ERR_INVALID_ARG;
    spm_state s = {.t = t, .text = text};
    s.sym = malloc(len * sizeof *s.sym);
    if (!s.sym) return TL_ERR_NOMEM;
    int n = 0;
    for (size_t off = 0; off < len;) {
        size_t cl = tl_tok_utf8_len((unsigned char)text[off]);
        if (cl > len - off) cl = len - off;
        s.sym[n] = (spm_sym){n - 1, off + cl == len ? -1 : n + 1, (uint32_t)off, (uint32_t)cl};
        off += cl;
        n++;
    }
    int c0 = 0;
    if (t->spm_chunked) {
        for (int i = 1; i < n && !s.oom; i++) {
            const spm_sym *y = &s.sym[i];
            if (y->n == 3 && is_ws_mark(text + y->off) && !(y->off >= 3 && is_ws_mark(text + y->off - 3))) {
                merge_chunk(&s, c0, i, out);
                c0 = i;
            }
        }
    }
    if (!s.oom) merge_chunk(&s, c0, n, out);
    tl_status st = s.oom ? TL_ERR_NOMEM : TL_OK;
    free(s.heap.v);
    free(s.sym);
    return st;
}
