/* special.c — encoding entry point and special-token partitioning
 * (llama.cpp's tokenizer_st_partition + llama_vocab::impl::tokenize).
 *
 * Special texts are cut out of the raw input one token at a time, longest
 * text first: every leftmost non-overlapping occurrence of that text in the
 * remaining raw fragments becomes the token, with LSTRIP/RSTRIP tokens
 * eating adjacent ASCII whitespace. To stay linear for large inputs, one
 * trie pass first finds which special texts occur at all, and only those
 * are searched for. Raw fragments are then encoded by SPM or BPE. */
#include "tok/tok_impl.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void tl_tok_ids_push(tl_tok_ids *o, int32_t id) {
    if (o->oom) return;
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 256;
        int32_t *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv) {
            o->oom = true;
            return;
        }
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = id;
}

typedef struct frag {
    size_t off, len;
    int32_t id;      /* -1: raw text [off, off+len) */
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static bool frags_push(frags *f, size_t off, size_t len, int32_t id) {
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 16;
        frag *nv = realloc(f->v, nc * sizeof *nv);
        if (!nv) return false;
        f->v = nv;
        f->cap = nc;
    }
    f->v[f->n++] = (frag){off, len, id};
    return true;
}

static bool special_active(const tl_tok *t, int32_t id, bool parse_special) {
    /* user-defined tokens are matched even without parse_special, as in
     * llama.cpp (and Hugging Face's added tokens) */
    return parse_special || !(t->attr[id] & (TL_TATTR_CONTROL | TL_TATTR_UNKNOWN));
}

/* Marks present[k] for every special k (index into t->special_ids) whose
 * text occurs somewhere in text. */
static void find_present(const tl_tok *t, const char *text, size_t len, bool parse_special,
                         bool *present) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len; i++) {
        if (!(t->special_first[s[i] >> 3] & (1u << (s[i] & 7)))) continue;
        int32_t node = 0;
        for (size_t j = i; j < len; j++) {
            int32_t child, unused;
            uint64_t key = ((uint64_t)(uint32_t)node << 8) | s[j];
            if (!tl_u64map_get(&t->special_trie, key, &child, &unused)) break;
            int32_t term = t->trie_term[child];
            if (term >= 0 && special_active(t, t->special_ids[term], parse_special)) present[term] = true;
            node = child;
        }
    }
}

static const char *find_bytes(const char *hay, size_t hl, const char *needle, size_t nl) {
    if (nl == 0 || nl > hl) return NULL;
    return memmem(hay, hl, needle, nl);
}

/* Splits every raw fragment of in by the special token id into out. */
static bool partition_one(const tl_tok *t, const char *text, int32_t id, const frags *in, frags *out) {
    const char *st = tok_text(t, id);
    size_t sl = t->text_len[id];
    uint16_t attr = t->attr[id];
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        frag f = in->v[k];
        if (f.id >= 0) {
            if (!frags_push(out, f.off, f.len, f.id)) return false;
            continue;
        }
        size_t base = f.off, blen = f.len;
        for (;;) {
            const char *m = find_bytes(text + base, blen, st, sl);
            if (!m) {
                if (blen && !frags_push(out, base, blen, -1)) return false;
                break;
            }
            size_t mo = (size_t)(m - text);
            if (mo > base) {
                size_t ll = mo - base;
                if (attr & TL_TATTR_LSTRIP)
                    while (ll > 0 && isspace((unsigned char)text[base + ll - 1])) ll--;
                if (ll && !frags_push(out, base, ll, -1)) return false;
            }
            if (!frags_push(out, 0, 0, id)) return false;
            size_t ro = mo + sl, rl = base + blen - ro;
            if (rl == 0) break;
            if (attr & TL_TATTR_RSTRIP)
                while (rl > 0 && isspace((unsigned char)text[ro])) {
                    ro++;
                    rl--;
                }
            base = ro;
            blen = rl;
        }
    }
    return true;
}

/* SPM: optional ' ' prefix, then every ' ' becomes U+2581. */
static tl_status spm_fragment(const tl_tok *t, const char *p, size_t len, bool prefix, tl_tok_ids *out) {
    if (len > (SIZE_MAX - 3) / 3) return TL_ERR_NOMEM;
    char *buf = malloc(len * 3 + 3);
    if (!buf) return TL_ERR_NOMEM;
    size_t n = 0;
    if (prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] == ' ') {
            memcpy(buf + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            buf[n++] = p[i];
        }
    }
    tl_status st = tl_tok_spm_encode(t, buf, n, out);
    free(buf);
    return st;
}

int tl_tok_encode(const tl_tok *t, const char *text, size_t len, int32_t *out, int cap,
                  bool add_special, bool parse_special) {
    tl_tok_ids ids = {0};
    frags a = {0}, b = {0};
    bool *present = NULL;
    tl_status st = TL_OK;
    if (!text) len = 0;
    /* the regex engine counts in int; sanitizing can triple the bytes */
    if (len > TL_TOK_MAX_TEXT) return INT_MIN;

    if (len > 0 && !frags_push(&a, 0, len, -1)) st = TL_ERR_NOMEM;
    if (st == TL_OK && len > 0 && t->n_special > 0) {
        present = calloc((size_t)t->n_special, sizeof *present);
        if (!present) {
            st = TL_ERR_NOMEM;
        } else {
            find_present(t, text, len, parse_special, present);
            for (int k = 0; k < t->n_special && st == TL_OK; k++) {
                if (!present[k]) continue;
                if (!partition_one(t, text, t->special_ids[k], &a, &b)) st = TL_ERR_NOMEM;
                frags tmp = a;
                a = b;
                b = tmp;
            }
        }
    }

    if (st == TL_OK && add_special && t->add_bos && t->bos >= 0) tl_tok_ids_push(&ids, t->bos);
    bool prev_special = true;   /* SPM: the first fragment gets the space prefix */
    for (size_t k = 0; k < a.n && st == TL_OK; k++) {
        const frag *f = &a.v[k];
        if (f->id >= 0) {
            tl_tok_ids_push(&ids, f->id);
            prev_special = true;
            continue;
        }
        if (t->kind == TL_TOK_SPM) {
            st = spm_fragment(t, text + f->off, f->len, t->add_space_prefix && prev_special, &ids);
        } else {
            st = tl_tok_bpe_encode(t, text + f->off, f->len, &ids);
        }
        prev_special = false;
    }
    if (st == TL_OK && add_special && t->add_eos && t->eos >= 0) tl_tok_ids_push(&ids, t->eos);
    if (ids.oom) st = TL_ERR_NOMEM;

    int ret;
    if (st != TL_OK || ids.n > INT_MAX) {
        ret = INT_MIN;
    } else if ((int)ids.n > cap) {
        ret = -(int)ids.n;
    } else {
        if (ids.n) memcpy(out, ids.v, ids.n * sizeof *out);
        ret = (int)ids.n;
    }
    free(present);
    free(a.v);
    free(b.v);
    free(ids.v);
    return ret;
}
