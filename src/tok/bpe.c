/* bpe.c — byte-level BPE (llama.cpp's llm_tokenizer_bpe).
 *
 * The text is made valid UTF-8 the way llama.cpp does, split into words by
 * the pre-tokenizer regexes, and each word is merged independently: a
 * word starts as one symbol per byte (each byte is one character of the
 * GPT-2 byte-to-unicode alphabet), and the adjacent pair with the lowest
 * merge rank is merged, ties to the leftmost, until no pair has a rank.
 * Symbols carry token ids, so a pair's rank is one hash lookup on
 * (left id, right id); a merge whose parts or result are not tokens cannot
 * occur in a valid vocabulary and is dropped at load time. */
#include "tok/tok_impl.h"
#include "base/heap.h"

#include <stdlib.h>
#include <string.h>

typedef struct bpe_sym {
    int prev, next;
    uint32_t n;        /* bytes; 0 once merged away */
    int32_t id;
} bpe_sym;

typedef struct bpe_bigram {
    int32_t rank;
    int left, right;
    int32_t id_l, id_r, id_m;
} bpe_bigram;

static inline bool bg_before(const bpe_bigram *a, const bpe_bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

TL_HEAP_DEFINE(bpe, bpe_bigram, bg_before)

typedef struct bpe_ctx {
    const tl_tok *t;
    const char *text;      /* sanitized UTF-8 */
    tl_tok_ids *out;
    bpe_sym *sym;          /* scratch, grown to the longest word */
    size_t sym_cap;
    char *enc;             /* scratch: byte-encoded word for ignore_merges */
    size_t enc_cap;
    bpe_heap heap;
    bool oom;
} bpe_ctx;

static void add_bigram(bpe_ctx *c, int left, int right) {
    if (left < 0 || right < 0) return;
    int32_t idl = c->sym[left].id, idr = c->sym[right].id;
    if (idl < 0 || idr < 0) return;
    int32_t rank, idm;
    uint64_t key = ((uint64_t)(uint32_t)idl << 32) | (uint32_t)idr;
    if (!tl_u64map_get(&c->t->merges, key, &rank, &idm)) return;
    bpe_bigram b = {rank, left, right, idl, idr, idm};
    if (!bpe_heap_push(&c->heap, b)) c->oom = true;
}

/* A symbol that is not a token (only a single byte whose byte-unicode
 * character is missing from the vocabulary): llama.cpp looks up each byte
 * of that character's UTF-8 as a one-byte token. */
static void emit_untokenizable(bpe_ctx *c, unsigned char byte) {
    const tl_tok *t = c->t;
    for (int j = 0; j < t->byte_enc_len[byte]; j++) {
        int32_t id;
        if (tl_strmap_get(&t->text_to_id, &t->byte_enc[byte][j], 1, &id)) tl_tok_ids_push(c->out, id);
    }
}

static tl_status bpe_word(void *user, size_t off, size_t len) {
    bpe_ctx *c = user;
    const tl_tok *t = c->t;
    const unsigned char *w = (const unsigned char *)c->text + off;
    if (len > INT32_MAX / 2) return TL_ERR_INVALID_ARG;

    if (t->ignore_merges) {
        if (len * 2 > c->enc_cap) {
            size_t nc = len * 2 + 64;
            char *ne = realloc(c->enc, nc);
            if (!ne) return TL_ERR_NOMEM;
            c->enc = ne;
            c->enc_cap = nc;
        }
        size_t el = 0;
        for (size_t i = 0; i < len; i++) {
            memcpy(c->enc + el, t->byte_enc[w[i]], t->byte_enc_len[w[i]]);
            el += t->byte_enc_len[w[i]];
        }
        int32_t id;
        if (tl_strmap_get(&t->text_to_id, c->enc, el, &id)) {
            tl_tok_ids_push(c->out, id);
            return TL_OK;
        }
    }

    if (len > c->sym_cap) {
        size_t nc = len + 64;
        bpe_sym *ns = realloc(c->sym, nc * sizeof *ns);
        if (!ns) return TL_ERR_NOMEM;
        c->sym = ns;
        c->sym_cap = nc;
    }
    int n = (int)len;
    for (int i = 0; i < n; i++)
        c->sym[i] = (bpe_sym){i - 1, i + 1 == n ? -1 : i + 1, 1, t->byte_tok[w[i]]};
    c->heap.n = 0;
    for (int i = 1; i < n; i++) add_bigram(c, i - 1, i);
    while (c->heap.n && !c->oom) {
        bpe_bigram b = bpe_heap_pop(&c->heap);
        bpe_sym *l = &c->sym[b.left], *r = &c->sym[b.right];
        /* stale: either side was merged into something else since */
        if (l->n == 0 || r->n == 0 || l->id != b.id_l || r->id != b.id_r) continue;
        l->n += r->n;
        l->id = b.id_m;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) c->sym[r->next].prev = b.left;
        add_bigram(c, l->prev, b.left);
        add_bigram(c, b.left, l->next);
    }
    if (c->oom) return TL_ERR_NOMEM;
    for (int i = 0; i != -1; i = c->sym[i].next) {
        const bpe_sym *y = &c->sym[i];
        if (y->id >= 0) tl_tok_ids_push(c->out, y->id);
        else emit_untokenizable(c, w[i]);   /* n == 1 here: merges only join tokens */
    }
    return TL_OK;
}

tl_status tl_tok_bpe_encode(const tl_tok *t, const char *text, size_t len, tl_tok_ids *out) {
    if (len == 0) return TL_OK;
    char *clean = NULL;
    size_t cl = tl_tok_utf8_sanitize(text, len, &clean);
    if (cl == (size_t)-1) return TL_ERR_NOMEM;
    bpe_ctx c = {.t = t, .text = clean, .out = out};
    tl_status st = tl_tok_pretok_split(t->pretok, clean, cl, bpe_word, &c);
    free(c.sym);
    free(c.enc);
    free(c.heap.v);
    free(clean);
    return st;
}
