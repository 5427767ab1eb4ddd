/* vocab.c — building a tokenizer from a vocabulary description, and the
 * id -> text side: pieces, whole-sequence decode, streaming decode. */
#include "tok/tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"

void tl_tok_vocab_desc_defaults(tl_tok_vocab_desc *d) {
    memset(d, 0, sizeof *d);
    d->bos = d->eos = d->eot = d->eom = d->unk = d->pad = d->sep = -1;
    d->fim_pre = d->fim_suf = d->fim_mid = d->fim_pad = d->fim_rep = d->fim_sep = -1;
}

void tl_tok_free(tl_tok *t) {
    if (!t) return;
    free(t->text_blob);
    free(t->text_off);
    free(t->text_len);
    free(t->scores);
    free(t->attr);
    tl_strmap_free(&t->text_to_id);
    free(t->piece_blob);
    free(t->piece_off);
    tl_u64map_free(&t->merges);
    tl_tok_pretok_free(t->pretok);
    free(t->special_ids);
    tl_u64map_free(&t->special_trie);
    free(t->trie_term);
    free(t->chat_template);
    free(t);
}

static uint16_t attr_of_type(int32_t type) {
    switch (type) {
    case TL_TOKTYPE_NORMAL: return TL_TATTR_NORMAL;
    case TL_TOKTYPE_UNKNOWN: return TL_TATTR_UNKNOWN;
    case TL_TOKTYPE_CONTROL: return TL_TATTR_CONTROL;
    case TL_TOKTYPE_USER_DEFINED: return TL_TATTR_USER_DEFINED;
    case TL_TOKTYPE_UNUSED: return TL_TATTR_UNUSED;
    case TL_TOKTYPE_BYTE: return TL_TATTR_BYTE;
    default: return TL_TATTR_UNDEFINED;
    }
}

static int32_t find_text(const tl_tok *t, const char *s) {
    int32_t id;
    return tl_strmap_get(&t->text_to_id, s, strlen(s), &id) ? id : -1;
}

/* llama.cpp forces tokens it recognises by text to be control tokens
 * (replacing their type). */
static void force_control(tl_tok *t, int32_t id) {
    uint16_t keep = t->attr[id] & (TL_TATTR_LSTRIP | TL_TATTR_RSTRIP | TL_TATTR_EOG);
    if (!(t->attr[id] & TL_TATTR_CONTROL)) t->attr[id] = TL_TATTR_CONTROL | keep;
}

/* If *slot is unset, the first present text of the list fills it. */
static void detect(tl_tok *t, int32_t *slot, const char *const *texts) {
    if (*slot >= 0) return;
    for (int i = 0; texts[i]; i++) {
        int32_t id = find_text(t, texts[i]);
        if (id >= 0) {
            *slot = id;
            force_control(t, id);
            return;
        }
    }
}

static const char *const k_eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
    "<|endoftext|>", "<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL};
static const char *const k_eom_texts[] = {"<|eom_id|>", NULL};
static const char *const k_fim_pre_texts[] = {"<|fim_prefix|>", "<fim-prefix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", NULL};
static const char *const k_fim_suf_texts[] = {"<|fim_suffix|>", "<fim-suffix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>", NULL};
static const char *const k_fim_mid_texts[] = {"<|fim_middle|>", "<fim-middle>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", NULL};
static const char *const k_fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
static const char *const k_fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
static const char *const k_fim_sep_texts[] = {"<|file_sep|>", NULL};
static const char *const k_eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", NULL};

static void mark_eog(tl_tok *t, int32_t id) {
    if (id >= 0) t->attr[id] |= TL_TATTR_EOG;
}

static void setup_special_ids(tl_tok *t, const tl_tok_vocab_desc *d) {
    int32_t fim_pre = d->fim_pre, fim_suf = d->fim_suf, fim_mid = d->fim_mid;
    int32_t fim_pad = d->fim_pad, fim_rep = d->fim_rep, fim_sep = d->fim_sep;
    int32_t *ids[] = {&t->eot, &t->eom, &fim_pre, &fim_suf, &fim_mid, &fim_pad, &fim_rep, &fim_sep};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (*ids[i] < -1 || *ids[i] >= t->n_vocab) *ids[i] = -1;
    if (d->detect_special_by_text) {
        detect(t, &t->eot, k_eot_texts);
        detect(t, &t->eom, k_eom_texts);
        detect(t, &fim_pre, k_fim_pre_texts);
        detect(t, &fim_suf, k_fim_suf_texts);
        detect(t, &fim_mid, k_fim_mid_texts);
        detect(t, &fim_pad, k_fim_pad_texts);
        detect(t, &fim_rep, k_fim_rep_texts);
        detect(t, &fim_sep, k_fim_sep_texts);
        for (int i = 0; k_eog_texts[i]; i++) {
            int32_t id = find_text(t, k_eog_texts[i]);
            if (id >= 0) {
                mark_eog(t, id);
                force_control(t, id);
            }
        }
    }
    mark_eog(t, fim_pad);
    mark_eog(t, fim_rep);
    mark_eog(t, fim_sep);
    mark_eog(t, t->eos);
    mark_eog(t, t->eot);
    mark_eog(t, t->eom);
}

/* Piece of a byte-level BPE token: every character of the byte-unicode
 * alphabet back to its byte (llama_decode_text). */
static size_t bpe_decode_text(const tl_tok *t, const char *s, size_t n, char *o) {
    static const char hex[] = "0123456789abcdef";
    char *san = NULL;
    size_t sl = tl_tok_utf8_sanitize(s, n, &san);
    if (sl == (size_t)-1) return (size_t)-1;
    size_t w = 0;
    for (size_t i = 0; i < sl;) {
        size_t cl = tl_tok_utf8_len((unsigned char)san[i]);
        if (cl > sl - i) cl = sl - i;
        uint32_t cp = 0;
        const unsigned char *u = (const unsigned char *)san + i;
        if (cl == 1) cp = u[0];
        else if (cl == 2) cp = ((u[0] & 0x1Fu) << 6) | (u[1] & 0x3Fu);
        else cp = 0xFFFFFFFF;   /* three- and four-byte characters are never in the alphabet */
        int byte = cp < 0x144 ? t->byte_dec[cp] : -1;
        if (byte >= 0) {
            if (o) o[w] = (char)byte;
            w++;
        } else {
            /* llama.cpp's marker: "[UNK_BYTE_0x" + hex of the char + the whole token text + "]" */
            size_t need = 12 + 2 * cl + n + 1;
            if (o) {
                memcpy(o + w, "[UNK_BYTE_0x", 12);
                for (size_t j = 0; j < cl; j++) {
                    o[w + 12 + 2 * j] = hex[u[j] >> 4];
                    o[w + 12 + 2 * j + 1] = hex[u[j] & 15];
                }
                memcpy(o + w + 12 + 2 * cl, s, n);
                o[w + need - 1] = ']';
            }
            w += need;
        }
        i += cl;
    }
    free(san);
    return w;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Writes the piece of id as llama.cpp's token_to_piece(special=true) into
 * o (NULL: just measure). Returns its length, (size_t)-1 on OOM. */
static size_t render_piece(const tl_tok *t, int32_t id, char *o) {
    const char *s = tok_text(t, id);
    size_t n = t->text_len[id];
    uint16_t a = t->attr[id];
    if (a & (TL_TATTR_UNKNOWN | TL_TATTR_CONTROL | TL_TATTR_USER_DEFINED)) {
        if (o) memcpy(o, s, n);
        return n;
    }
    if (a & TL_TATTR_NORMAL) {
        if (t->kind == TL_TOK_BPE) return bpe_decode_text(t, s, n, o);
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                if (o) o[w] = ' ';
                w++;
                i += 3;
            } else {
                if (o) o[w] = s[i];
                w++;
                i++;
            }
        }
        return w;
    }
    if ((a & TL_TATTR_BYTE) && t->kind == TL_TOK_SPM) {
        /* "<0xAB>": llama.cpp reads the two characters after "<0x" with strtol */
        int v = 0;
        for (size_t i = 3; i < 5 && i < n; i++) {
            int h = hexval(s[i]);
            if (h < 0) break;
            v = v * 16 + h;
        }
        if (o) o[0] = (char)v;
        return 1;
    }
    return 0;
}

static tl_status build_pieces(tl_tok *t, tl_err *err) {
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    if (!t->piece_off) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    size_t total = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t l = render_piece(t, id, NULL);
        if (l == (size_t)-1) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        t->piece_off[id] = (uint32_t)total;
        total += l;
        if (total >= UINT32_MAX) return tl_err_set(err, TL_ERR_FORMAT, "vocabulary pieces too large");
    }
    t->piece_off[t->n_vocab] = (uint32_t)total;
    t->piece_blob = malloc(total + 1);
    if (!t->piece_blob) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (render_piece(t, id, t->piece_blob + t->piece_off[id]) == (size_t)-1)
            return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    return TL_OK;
}

static void build_byte_tables(tl_tok *t) {
    /* GPT-2 byte-to-unicode: printable Latin-1 bytes map to themselves, the
     * rest to U+0100.. in byte order */
    int n = 0;
    for (int c = 0; c < 0x144; c++) t->byte_dec[c] = -1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp;
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp = (uint32_t)b;
        else cp = 256u + (uint32_t)n++;
        t->byte_dec[cp] = (int16_t)b;
        if (cp < 0x80) {
            t->byte_enc[b][0] = (char)cp;
            t->byte_enc_len[b] = 1;
        } else {
            t->byte_enc[b][0] = (char)(0xC0 | (cp >> 6));
            t->byte_enc[b][1] = (char)(0x80 | (cp & 0x3F));
            t->byte_enc_len[b] = 2;
        }
    }
    for (int b = 0; b < 256; b++) {
        int32_t id = -1;
        if (t->kind == TL_TOK_SPM) {
            char buf[7];
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            if (!tl_strmap_get(&t->text_to_id, buf, 6, &id)) {
                char c = (char)b;
                if (!tl_strmap_get(&t->text_to_id, &c, 1, &id)) id = -1;
            }
        } else {
            if (!tl_strmap_get(&t->text_to_id, t->byte_enc[b], t->byte_enc_len[b], &id)) id = -1;
        }
        t->byte_tok[b] = id;
    }
}

static tl_status build_merges(tl_tok *t, const tl_tok_vocab_desc *d, tl_err *err) {
    if (d->n_merges < 0 || (d->n_merges > 0 && !d->merges))
        return tl_err_set(err, TL_ERR_INVALID_ARG, "bad merges");
    if (d->n_merges > INT32_MAX) return tl_err_set(err, TL_ERR_FORMAT, "too many merges");
    if (tl_u64map_reserve(&t->merges, (size_t)d->n_merges))
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    char *buf = NULL;
    size_t buf_cap = 0;
    int64_t dropped = 0;
    for (int64_t i = 0; i < d->n_merges; i++) {
        tl_tok_str l = d->merges[2 * i], r = d->merges[2 * i + 1];
        int32_t il, ir, im;
        if (!tl_strmap_get(&t->text_to_id, l.ptr, l.len, &il) ||
            !tl_strmap_get(&t->text_to_id, r.ptr, r.len, &ir)) {
            dropped++;
            continue;
        }
        if (l.len + r.len > buf_cap) {
            size_t nc = l.len + r.len + 64;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
            }
            buf = nb;
            buf_cap = nc;
        }
        if (l.len) memcpy(buf, l.ptr, l.len);
        if (r.len) memcpy(buf + l.len, r.ptr, r.len);
        if (!tl_strmap_get(&t->text_to_id, buf, l.len + r.len, &im)) {
            dropped++;
            continue;
        }
        uint64_t key = ((uint64_t)(uint32_t)il << 32) | (uint32_t)ir;
        /* the first occurrence of a duplicated merge keeps its rank */
        if (tl_u64map_put_new(&t->merges, key, (int32_t)i, im, NULL)) {
            free(buf);
            return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        }
    }
    free(buf);
    if (dropped) TL_DEBUG("tokenizer: %lld merges reference texts outside the vocabulary; ignored",
                          (long long)dropped);
    return TL_OK;
}

/* True when every U+2581 in every token text sits at the start or right
 * after another U+2581 (see spm.c). */
static bool spm_can_chunk(const tl_tok *t) {
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const unsigned char *s = (const unsigned char *)tok_text(t, id);
        uint32_t n = t->text_len[id];
        for (uint32_t k = 1; k + 3 <= n; k++) {
            if (s[k] != 0xE2 || s[k + 1] != 0x96 || s[k + 2] != 0x81) continue;
            if (k < 3 || s[k - 3] != 0xE2 || s[k - 2] != 0x96 || s[k - 1] != 0x81) return false;
        }
    }
    return true;
}

/* sort key: longest text first, as llama.cpp; equal lengths by id so the
 * order is deterministic */
typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static tl_status build_specials(tl_tok *t, tl_err *err) {
    int n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & (TL_TATTR_CONTROL | TL_TATTR_USER_DEFINED | TL_TATTR_UNKNOWN)) n++;
    t->n_special = n;
    t->special_ids = malloc((size_t)(n ? n : 1) * sizeof *t->special_ids);
    if (!t->special_ids) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    special_key *keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    if (!keys) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    n = 0;
    size_t total_len = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & (TL_TATTR_CONTROL | TL_TATTR_USER_DEFINED | TL_TATTR_UNKNOWN)) {
            keys[n++] = (special_key){t->text_len[id], id};
            total_len += t->text_len[id];
        }
    qsort(keys, (size_t)n, sizeof *keys, cmp_special);
    for (int k = 0; k < n; k++) t->special_ids[k] = keys[k].id;
    free(keys);

    if (total_len >= INT32_MAX) return tl_err_set(err, TL_ERR_FORMAT, "special tokens too long");
    t->trie_term = malloc((total_len + 1) * sizeof *t->trie_term);
    if (!t->trie_term) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    t->trie_term[0] = -1;
    int32_t n_nodes = 1;
    for (int k = 0; k < n; k++) {
        int32_t id = t->special_ids[k];
        const unsigned char *s = (const unsigned char *)tok_text(t, id);
        uint32_t len = t->text_len[id];
        if (!len) continue;
        t->special_first[s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
        int32_t node = 0;
        for (uint32_t j = 0; j < len; j++) {
            uint64_t key = ((uint64_t)(uint32_t)node << 8) | s[j];
            int32_t child, unused;
            if (!tl_u64map_get(&t->special_trie, key, &child, &unused)) {
                child = n_nodes++;
                t->trie_term[child] = -1;
                if (tl_u64map_put_new(&t->special_trie, key, child, 0, NULL))
                    return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
            }
            node = child;
        }
        /* a duplicate text keeps the earlier (higher-priority) entry */
        if (t->trie_term[node] < 0) t->trie_term[node] = k;
    }
    return TL_OK;
}

tl_status tl_tok_init_vocab(const tl_tok_vocab_desc *d, tl_tok **out, tl_err *err) {
    *out = NULL;
    if (d->kind != TL_TOK_SPM && d->kind != TL_TOK_BPE)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "unsupported tokenizer kind %d", (int)d->kind);
    if (d->n_tokens <= 0 || !d->tokens)
        return tl_err_set(err, TL_ERR_MISSING, "empty vocabulary");
    tl_tok *t = calloc(1, sizeof *t);
    if (!t) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = TL_OK;
    t->kind = d->kind;
    t->n_vocab = d->n_tokens;
    size_t n = (size_t)d->n_tokens;

    /* texts */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = d->tokens[i].len ? d->tokens[i].len : 32;
        if (d->tokens[i].len && !d->tokens[i].ptr) {
            st = tl_err_set(err, TL_ERR_INVALID_ARG, "token %zu has no text", i);
            goto fail;
        }
        total += l + 1;
        if (total >= UINT32_MAX) {
            st = tl_err_set(err, TL_ERR_FORMAT, "vocabulary text too large");
            goto fail;
        }
    }
    t->text_blob = malloc(total);
    t->text_off = malloc(n * sizeof *t->text_off);
    t->text_len = malloc(n * sizeof *t->text_len);
    t->scores = malloc(n * sizeof *t->scores);
    t->attr = malloc(n * sizeof *t->attr);
    if (!t->text_blob || !t->text_off || !t->text_len || !t->scores || !t->attr) {
        st = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = d->tokens[i].len;
        t->text_off[i] = (uint32_t)w;
        if (l) {
            memcpy(t->text_blob + w, d->tokens[i].ptr, l);
        } else {
            TL_WARN("tokenizer: empty token at index %zu", i);
            l = (size_t)snprintf(t->text_blob + w, 32, "[EMPTY_%zu]", i);
        }
        t->text_blob[w + l] = 0;
        t->text_len[i] = (uint32_t)l;
        w += l + 1;
        t->scores[i] = d->scores ? d->scores[i] : 0.0f;
        t->attr[i] = d->types ? attr_of_type(d->types[i]) : TL_TATTR_NORMAL;
        if (d->extra_attr) t->attr[i] |= d->extra_attr[i] & (TL_TATTR_LSTRIP | TL_TATTR_RSTRIP);
    }
    if (tl_strmap_reserve(&t->text_to_id, n)) {
        st = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        /* a repeated text maps to its last id, as llama.cpp's token_to_id */
        if (tl_strmap_put(&t->text_to_id, tok_text(t, (int32_t)i), t->text_len[i], (int32_t)i)) {
            st = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }

    int32_t nv = t->n_vocab;
#define ID_OR_NONE(x) (((x) >= 0 && (x) < nv) ? (x) : -1)
    t->bos = ID_OR_NONE(d->bos);
    t->eos = ID_OR_NONE(d->eos);
    t->eot = ID_OR_NONE(d->eot);
    t->eom = ID_OR_NONE(d->eom);
    t->unk = ID_OR_NONE(d->unk);
    t->pad = ID_OR_NONE(d->pad);
#undef ID_OR_NONE
    t->add_bos = d->add_bos;
    t->add_eos = d->add_eos;
    t->add_space_prefix = d->add_space_prefix;
    t->ignore_merges = d->ignore_merges;
    t->clean_spaces = d->clean_spaces;
    setup_special_ids(t, d);

    build_byte_tables(t);
    if (t->kind == TL_TOK_SPM) t->spm_chunked = spm_can_chunk(t);
    if (t->kind == TL_TOK_BPE) {
        if ((st = build_merges(t, d, err))) goto fail;
        if ((st = tl_tok_pretok_init(d->regexes, d->n_regexes, true, &t->pretok, err))) goto fail;
    }
    if ((st = build_specials(t, err))) goto fail;
    if ((st = build_pieces(t, err))) goto fail;
    if (d->chat_template) {
        t->chat_template = strdup(d->chat_template);
        if (!t->chat_template) {
            st = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    *out = t;
    return TL_OK;
fail:
    tl_tok_free(t);
    return st;
}

/* ------------------------------------------------------------ accessors */

tl_tok_kind tl_tok_get_kind(const tl_tok *t) { return t->kind; }
int tl_tok_n_vocab(const tl_tok *t) { return t->n_vocab; }
int32_t tl_tok_bos(const tl_tok *t) { return t->bos; }
int32_t tl_tok_eos(const tl_tok *t) { return t->eos; }
int32_t tl_tok_eot(const tl_tok *t) { return t->eot; }
bool tl_tok_add_bos(const tl_tok *t) { return t->add_bos; }
bool tl_tok_add_eos(const tl_tok *t) { return t->add_eos; }
const char *tl_tok_chat_template(const tl_tok *t) { return t->chat_template; }

bool tl_tok_is_eog(const tl_tok *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & TL_TATTR_EOG);
}

bool tl_tok_is_control(const tl_tok *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & TL_TATTR_CONTROL);
}

const char *tl_tok_text(const tl_tok *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->text_len[id];
    return tok_text(t, id);
}

int32_t tl_tok_find(const tl_tok *t, const char *s, size_t len) {
    int32_t id;
    return tl_strmap_get(&t->text_to_id, s, len, &id) ? id : -1;
}

/* --------------------------------------------------------------- pieces */

/* Borrowed view of the piece of id as rendered with the given flag. */
static const char *piece_view(const tl_tok *t, int32_t id, bool render_special, size_t *len) {
    if (id < 0 || id >= t->n_vocab ||
        (!render_special && (t->attr[id] & (TL_TATTR_UNKNOWN | TL_TATTR_CONTROL)))) {
        *len = 0;
        return "";
    }
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece_blob + t->piece_off[id];
}

int tl_tok_piece(const tl_tok *t, int32_t id, char *buf, int cap, bool render_special) {
    size_t n;
    const char *p = piece_view(t, id, render_special, &n);
    if ((size_t)(cap < 0 ? 0 : cap) < n) return -(int)n;
    if (n) memcpy(buf, p, n);
    return (int)n;
}

/* llama.cpp's clean_up_tokenization_spaces, three passes over s[0..n),
 * in place. Returns the new length. */
static size_t clean_spaces(char *s, size_t n) {
    if (n == 0) return 0;
    /* pass 1: " ?", " !", " .", " ," lose the space */
    size_t w = 1;
    char prev = s[0];
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (prev == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) w--;
        prev = x;
        s[w++] = x;
    }
    /* pass 2: " ' " becomes "'" ; llama.cpp blanks the skipped space with
     * NUL, which the next step then sees as its previous character */
    n = w;
    w = 1;
    prev = s[0];
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < n && prev == ' ' && s[i + 1] == ' ') {
            w--;
            s[w++] = x;
            i++;
            prev = 0;
            continue;
        }
        prev = x;
        s[w++] = x;
    }
    /* pass 3: " 's", " 'm", " 're", " 've" lose the space */
    n = w;
    w = 1;
    prev = s[0];
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (prev == ' ' && x == '\'' && i + 1 < n) {
            char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm') {
                w--;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < n) {
                char x2 = s[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) w--;
            }
        }
        prev = x;
        s[w++] = x;
    }
    return w;
}

int tl_tok_decode_ex(const tl_tok *t, const int32_t *ids, int n, char *buf, int cap,
                     unsigned flags) {
    bool render = flags & TL_TOK_DECODE_RENDER_SPECIAL;
    bool remove_space = t->add_space_prefix;
    if (n < 0 || !ids) n = 0;
    if (flags & TL_TOK_DECODE_REMOVE_SPECIAL) {
        if (t->add_bos && n > 0 && ids[0] == t->bos) {
            remove_space = false;
            ids++;
            n--;
        }
        if (t->add_eos && n > 0 && ids[n - 1] == t->eos) n--;
    }
    /* measure first: the clean-up passes need the whole text */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *p = piece_view(t, ids[i], render, &l);
        if (i == 0 && remove_space && l && p[0] == ' ') l--;
        total += l;
    }
    if (total >= (size_t)INT32_MAX) return INT32_MIN;
    bool cleanup = t->clean_spaces && !(flags & TL_TOK_DECODE_NO_CLEANUP);
    char *tmp = NULL, *o = buf;
    if (cleanup || total + 1 > (size_t)(cap < 0 ? 0 : cap)) {
        if (!cleanup) return -(int)total - 1;
        tmp = malloc(total + 1);
        if (!tmp) return INT32_MIN;
        o = tmp;
    }
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *p = piece_view(t, ids[i], render, &l);
        if (i == 0 && remove_space && l && p[0] == ' ') {
            p++;
            l--;
        }
        if (l) memcpy(o + w, p, l);
        w += l;
    }
    if (cleanup) {
        w = clean_spaces(tmp, w);
        if (w + 1 > (size_t)(cap < 0 ? 0 : cap)) {
            free(tmp);
            return -(int)w - 1;
        }
        memcpy(buf, tmp, w);
        free(tmp);
    }
    buf[w] = 0;
    return (int)w;
}

int tl_tok_decode(const tl_tok *t, const int32_t *ids, int n, char *buf, int cap,
                  bool render_special) {
    return tl_tok_decode_ex(t, ids, n, buf, cap, render_special ? TL_TOK_DECODE_RENDER_SPECIAL : 0);
}

/* ------------------------------------------------------------ streaming */

void tl_tok_stream_init(tl_tok_stream *s, bool at_text_start, bool render_special) {
    memset(s, 0, sizeof *s);
    s->first = at_text_start;
    s->render_special = render_special;
}

/* Bytes at the end of a[0..n) that form an incomplete but so far valid
 * UTF-8 sequence (0 when the text ends on a boundary or is invalid there). */
static size_t incomplete_tail(const unsigned char *a, size_t n) {
    size_t k = 0;
    while (k < n && k < 3 && (a[n - 1 - k] & 0xC0) == 0x80) k++;
    if (k == n) return 0;               /* only continuation bytes: pass through */
    unsigned char lead = a[n - 1 - k];
    size_t need;
    if ((lead & 0xE0) == 0xC0) need = 2;
    else if ((lead & 0xF0) == 0xE0) need = 3;
    else if ((lead & 0xF8) == 0xF0) need = 4;
    else return 0;
    return k + 1 < need ? k + 1 : 0;
}

int tl_tok_stream_push(const tl_tok *t, tl_tok_stream *s, int32_t id, char *buf, int cap) {
    size_t l;
    const char *p = piece_view(t, id, s->render_special, &l);
    if (s->first && t->add_space_prefix && l && p[0] == ' ') {
        p++;
        l--;
    }
    size_t np = (size_t)s->n_pending;
    if (l > (size_t)INT32_MAX - 8) return INT32_MIN;
    /* decide the held-back tail from the last few bytes of pending+piece */
    unsigned char last[8];
    size_t nl = 0, total = np + l;
    size_t from = total > 4 ? total - 4 : 0;
    for (size_t i = from; i < total; i++)
        last[nl++] = (unsigned char)(i < np ? s->pending[i] : p[i - np]);
    size_t hold = incomplete_tail(last, nl);
    size_t emit = total - hold;
    if (emit > (size_t)(cap < 0 ? 0 : cap)) return -(int)emit;
    /* emit bytes [0, emit) of pending+piece, keep [emit, total) */
    char keep[8];
    for (size_t i = emit; i < total; i++) keep[i - emit] = i < np ? s->pending[i] : p[i - np];
    size_t w = 0;
    for (size_t i = 0; i < np && w < emit; i++) buf[w++] = s->pending[i];
    if (w < emit) {
        memcpy(buf + w, p, emit - w);
        w = emit;
    }
    memcpy(s->pending, keep, hold);
    s->n_pending = (int)hold;
    s->first = false;
    return (int)w;
}

int tl_tok_stream_flush(tl_tok_stream *s, char *buf, int cap) {
    int n = s->n_pending;
    if (n > cap) return -n;
    memcpy(buf, s->pending, (size_t)n);
    s->n_pending = 0;
    return n;
}

/* ------------------------------------------------------ vocab test files */

tl_status tl_tok_split_vocab_test(const char *data, size_t len, tl_tok_span **out,
                                  size_t *n_out, tl_err *err) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sl = sizeof sep - 1;
    size_t n = 0, cap = 64;
    tl_tok_span *v = malloc(cap * sizeof *v);
    if (!v) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    size_t pos = 0;
    while (pos < len) {
        const char *m = memmem(data + pos, len - pos, sep, sl);
        size_t end = m ? (size_t)(m - data) : len;
        if (n == cap) {
            cap *= 2;
            tl_tok_span *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
            }
            v = nv;
        }
        v[n++] = (tl_tok_span){pos, end - pos};
        if (!m) break;
        pos = end + sl;
    }
    *out = v;
    *n_out = n;
    return TL_OK;
}
