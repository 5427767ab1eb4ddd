/* pretok.c — regex pre-tokenization (llama.cpp's unicode_regex_split) on
 * Oniguruma, plus llama.cpp-compatible UTF-8 sanitizing.
 *
 * llama.cpp runs each regex of a list over the pieces the previous regex
 * produced; inside a piece, every match is a word and every unmatched gap
 * between matches is a word too. It evaluates \p{..} classes through a
 * "collapsed" one-byte-per-codepoint copy of the text, which gives the same
 * matches as a real Unicode engine for these patterns, so Oniguruma with
 * UTF-8 and Perl syntax reproduces it. Each piece is searched as a string
 * of its own (lookaheads and $ see the piece end, as llama.cpp's iterator). */
#include "tok/tok_impl.h"

#include <oniguruma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Patterns llama.cpp (and every BPE model in practice) uses get a
 * hand-written splitter with the same matches: Oniguruma's per-search setup
 * dominates the time on short words. Character classes come from
 * Oniguruma's own Unicode tables, so both paths agree. */
typedef enum re_kind { RE_ONIG, RE_GPT2, RE_LLAMA3, RE_QWEN2, RE_DIGIT } re_kind;

static const struct {
    const char *pattern;
    re_kind kind;
} k_fast[] = {
    {"\\p{N}", RE_DIGIT},
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)", RE_GPT2},
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", RE_GPT2},
    {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", RE_LLAMA3},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", RE_LLAMA3},
    {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", RE_QWEN2},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", RE_QWEN2},
};

struct tl_tok_pretok {
    int n;
    OnigRegex *re;     /* NULL for fast kinds */
    re_kind *kind;
};

/* ---- character classes ---- */

enum { CL_OTHER = 0, CL_L = 1, CL_N = 2, CL_WS = 3 };

static OnigCtype g_ct_l, g_ct_n;
static uint8_t g_cls_bmp[0x10000];   /* class of every BMP code point */

static int cls_slow(uint32_t cp) {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    if (ONIGENC_IS_CODE_CTYPE(enc, cp, ONIGENC_CTYPE_SPACE)) return CL_WS;
    if (ONIGENC_IS_CODE_CTYPE(enc, cp, g_ct_l)) return CL_L;
    if (ONIGENC_IS_CODE_CTYPE(enc, cp, g_ct_n)) return CL_N;
    return CL_OTHER;
}

static inline int cls(uint32_t cp) {
    return cp < 0x10000 ? g_cls_bmp[cp] : cls_slow(cp);
}

static pthread_once_t g_onig_once = PTHREAD_ONCE_INIT;
static int g_onig_status;

static void onig_setup(void) {
    OnigEncoding encs[1] = {ONIG_ENCODING_UTF8};
    g_onig_status = onig_initialize(encs, 1);
    if (g_onig_status != ONIG_NORMAL) return;
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    OnigUChar l[] = "L", n[] = "N";
    int cl = ONIGENC_PROPERTY_NAME_TO_CTYPE(enc, l, l + 1);
    int cn = ONIGENC_PROPERTY_NAME_TO_CTYPE(enc, n, n + 1);
    if (cl < 0 || cn < 0) {
        g_onig_status = cl < 0 ? cl : cn;
        return;
    }
    g_ct_l = (OnigCtype)cl;
    g_ct_n = (OnigCtype)cn;
    for (uint32_t cp = 0; cp < 0x10000; cp++) g_cls_bmp[cp] = (uint8_t)cls_slow(cp);
}

tl_status tl_tok_pretok_init(const char *const *regexes, int n, bool allow_fast, tl_tok_pretok **out,
                            tl_err *err) {
    *out = NULL;
    pthread_once(&g_onig_once, onig_setup);
    if (g_onig_status != ONIG_NORMAL)
        return tl_err_set(err, TL_ERR_INTERNAL, "oniguruma initialisation failed (%d)", g_onig_status);
    tl_tok_pretok *p = calloc(1, sizeof *p);
    if (!p) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    p->re = calloc(n > 0 ? (size_t)n : 1, sizeof *p->re);
    p->kind = calloc(n > 0 ? (size_t)n : 1, sizeof *p->kind);
    if (!p->re || !p->kind) {
        free(p->re);
        free(p->kind);
        free(p);
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        p->kind[i] = RE_ONIG;
        if (allow_fast)
            for (size_t k = 0; k < sizeof k_fast / sizeof k_fast[0]; k++)
                if (!strcmp(regexes[i], k_fast[k].pattern)) p->kind[i] = k_fast[k].kind;
        if (p->kind[i] != RE_ONIG) {
            p->n = i + 1;
            continue;
        }
        const OnigUChar *pat = (const OnigUChar *)regexes[i];
        OnigErrorInfo einfo;
        /* FIND_NOT_EMPTY: an empty match would make no word; CAPTURE_GROUP
         * off: groups are never read. */
        int r = onig_new(&p->re[i], pat, pat + strlen(regexes[i]),
                         ONIG_OPTION_FIND_NOT_EMPTY | ONIG_OPTION_DONT_CAPTURE_GROUP,
                         ONIG_ENCODING_UTF8, ONIG_SYNTAX_PERL, &einfo);
        if (r != ONIG_NORMAL) {
            OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
            onig_error_code_to_str(msg, r, &einfo);
            p->re[i] = NULL;
            p->n = i;
            tl_tok_pretok_free(p);
            return tl_err_set(err, TL_ERR_FORMAT, "pre-tokenizer regex %d \"%s\": %s", i,
                              regexes[i], (const char *)msg);
        }
        p->n = i + 1;
    }
    *out = p;
    return TL_OK;
}

void tl_tok_pretok_free(tl_tok_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++)
        if (p->re[i]) onig_free(p->re[i]);
    free(p->re);
    free(p->kind);
    free(p);
}

/* Pieces are kept as (offset, length) pairs in a growable array. */
typedef struct spans {
    size_t *v;   /* pairs */
    size_t n, cap;
} spans;

static bool spans_push(spans *s, size_t off, size_t len) {
    if (len == 0) return true;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        size_t *nv = realloc(s->v, nc * 2 * sizeof *nv);
        if (!nv) return false;
        s->v = nv;
        s->cap = nc;
    }
    s->v[2 * s->n] = off;
    s->v[2 * s->n + 1] = len;
    s->n++;
    return true;
}

/* ---- hand-written splitters ----
 * Each walks one piece [a, b) of valid UTF-8 and pushes the words the
 * corresponding regex would give, alternatives tried in pattern order. */

static inline uint32_t dec_at(const unsigned char *t, size_t i, size_t *len) {
    unsigned c = t[i];
    if (c < 0x80) { *len = 1; return c; }
    if (c < 0xE0) { *len = 2; return ((c & 0x1Fu) << 6) | (t[i + 1] & 0x3Fu); }
    if (c < 0xF0) { *len = 3; return ((c & 0x0Fu) << 12) | ((t[i + 1] & 0x3Fu) << 6) | (t[i + 2] & 0x3Fu); }
    *len = 4;
    return ((c & 0x07u) << 18) | ((t[i + 1] & 0x3Fu) << 12) | ((t[i + 2] & 0x3Fu) << 6) | (t[i + 3] & 0x3Fu);
}

/* class of the character at i, or -1 at/after b */
static inline int cls_at(const unsigned char *t, size_t i, size_t b, size_t *len) {
    if (i >= b) { *len = 0; return -1; }
    return cls(dec_at(t, i, len));
}

/* end of the run of class k starting at i */
static inline size_t run_of(const unsigned char *t, size_t i, size_t b, int k) {
    size_t l;
    while (i < b && cls_at(t, i, b, &l) == k) i += l;
    return i;
}

/* 's 't 're 've 'm 'll 'd at i (t[i] == '\''); case-insensitive on ASCII
 * letters when ci. Returns the match length or 0. */
static inline size_t contraction(const unsigned char *t, size_t i, size_t b, bool ci) {
    if (i + 1 >= b) return 0;
    unsigned c1 = t[i + 1];
    if (ci && c1 >= 'A' && c1 <= 'Z') c1 += 32;
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (i + 2 >= b) return 0;
    unsigned c2 = t[i + 2];
    if (ci && c2 >= 'A' && c2 <= 'Z') c2 += 32;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
static bool split_gpt2(const unsigned char *t, size_t a, size_t b, spans *out) {
    size_t i = a;
    while (i < b) {
        size_t l, m;
        if (t[i] == '\'' && (m = contraction(t, i, b, false))) {
            if (!spans_push(out, i, m)) return false;
            i += m;
            continue;
        }
        int k = cls_at(t, i, b, &l);
        size_t body = i;
        if (t[i] == ' ') {
            size_t l2;
            int k2 = cls_at(t, i + 1, b, &l2);
            if (k2 >= 0 && k2 != CL_WS) {
                k = k2;
                body = i + 1;
            }
        }
        if (k != CL_WS) {
            size_t e = run_of(t, body, b, k);
            if (!spans_push(out, i, e - i)) return false;
            i = e;
            continue;
        }
        /* whitespace run [i, e); last char starts at lastc */
        size_t e = i, lastc = i, nch = 0;
        while (e < b && cls_at(t, e, b, &l) == CL_WS) {
            lastc = e;
            e += l;
            nch++;
        }
        size_t end = (e == b || nch < 2) ? e : lastc;   /* (?!\S) gives back the last one */
        if (!spans_push(out, i, end - i)) return false;
        i = end;
    }
    return true;
}

/* llama3 / qwen2:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_n}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static bool split_llama3(const unsigned char *t, size_t a, size_t b, int max_n, spans *out) {
    size_t i = a;
    while (i < b) {
        size_t l, m;
        unsigned c = t[i];
        if (c == '\'' && (m = contraction(t, i, b, true))) {
            if (!spans_push(out, i, m)) return false;
            i += m;
            continue;
        }
        int k = cls_at(t, i, b, &l);
        if (k == CL_L || (c != '\r' && c != '\n' && k != CL_N)) {
            size_t l2;
            size_t from = k == CL_L ? i : i + l;
            if (k == CL_L || cls_at(t, from, b, &l2) == CL_L) {
                size_t e = run_of(t, from, b, CL_L);
                if (!spans_push(out, i, e - i)) return false;
                i = e;
                continue;
            }
        }
        if (k == CL_N) {
            size_t e = i;
            for (int n = 0; n < max_n && e < b && cls_at(t, e, b, &l) == CL_N; n++) e += l;
            if (!spans_push(out, i, e - i)) return false;
            i = e;
            continue;
        }
        size_t body = SIZE_MAX;
        if (k == CL_OTHER) {
            body = i;
        } else if (c == ' ') {
            size_t l2;
            if (cls_at(t, i + 1, b, &l2) == CL_OTHER) body = i + 1;
        }
        if (body != SIZE_MAX) {
            size_t e = run_of(t, body, b, CL_OTHER);
            while (e < b && (t[e] == '\r' || t[e] == '\n')) e++;
            if (!spans_push(out, i, e - i)) return false;
            i = e;
            continue;
        }
        /* whitespace */
        size_t e = i, lastc = i, nch = 0, after_nl = 0;
        while (e < b && cls_at(t, e, b, &l) == CL_WS) {
            if (t[e] == '\r' || t[e] == '\n') after_nl = e + 1;
            lastc = e;
            e += l;
            nch++;
        }
        size_t end;
        if (after_nl) end = after_nl;                 /* \s*[\r\n]+ */
        else if (e == b || nch < 2) end = e;          /* \s+(?!\S) at the end, or \s+ */
        else end = lastc;                             /* \s+(?!\S) */
        if (!spans_push(out, i, end - i)) return false;
        i = end;
    }
    return true;
}

/* \p{N}: every number character is a word, and so is each gap between */
static bool split_digit(const unsigned char *t, size_t a, size_t b, spans *out) {
    size_t i = a, gap = a, l;
    while (i < b) {
        if (cls_at(t, i, b, &l) == CL_N) {
            if (!spans_push(out, gap, i - gap) || !spans_push(out, i, l)) return false;
            gap = i + l;
        }
        i += l;
    }
    return spans_push(out, gap, b - gap);
}

tl_status tl_tok_pretok_split(const tl_tok_pretok *p, const char *utf8, size_t len,
                              tl_tok_word_fn fn, void *user) {
    if (len == 0) return TL_OK;
    if (p->n == 0) return fn(user, 0, len);
    spans cur = {0}, nxt = {0};
    tl_status st = TL_OK;
    OnigRegion *region = onig_region_new();
    if (!region || !spans_push(&cur, 0, len)) {
        st = TL_ERR_NOMEM;
        goto done;
    }
    const OnigUChar *base = (const OnigUChar *)utf8;
    for (int ri = 0; ri < p->n; ri++) {
        nxt.n = 0;
        for (size_t k = 0; k < cur.n; k++) {
            size_t s0 = cur.v[2 * k], sl = cur.v[2 * k + 1];
            if (p->kind[ri] != RE_ONIG) {
                bool ok;
                switch (p->kind[ri]) {
                case RE_GPT2: ok = split_gpt2(base, s0, s0 + sl, &nxt); break;
                case RE_LLAMA3: ok = split_llama3(base, s0, s0 + sl, 3, &nxt); break;
                case RE_QWEN2: ok = split_llama3(base, s0, s0 + sl, 1, &nxt); break;
                default: ok = split_digit(base, s0, s0 + sl, &nxt); break;
                }
                if (!ok) {
                    st = TL_ERR_NOMEM;
                    goto done;
                }
                continue;
            }
            const OnigUChar *str = base + s0, *end = str + sl;
            size_t pos = 0;
            while (pos < sl) {
                int r = onig_search(p->re[ri], str, end, str + pos, end, region, ONIG_OPTION_NONE);
                if (r == ONIG_MISMATCH) break;
                if (r < 0) {
                    st = TL_ERR_INTERNAL;
                    goto done;
                }
                size_t ms = (size_t)region->beg[0], me = (size_t)region->end[0];
                if (me <= ms) {   /* cannot happen with FIND_NOT_EMPTY; never loop */
                    break;
                }
                if (!spans_push(&nxt, s0 + pos, ms - pos) || !spans_push(&nxt, s0 + ms, me - ms)) {
                    st = TL_ERR_NOMEM;
                    goto done;
                }
                pos = me;
            }
            if (pos < sl && !spans_push(&nxt, s0 + pos, sl - pos)) {
                st = TL_ERR_NOMEM;
                goto done;
            }
        }
        spans tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    for (size_t k = 0; k < cur.n && st == TL_OK; k++)
        st = fn(user, cur.v[2 * k], cur.v[2 * k + 1]);
done:
    if (region) onig_region_free(region, 1);
    free(cur.v);
    free(nxt.v);
    return st;
}

/* llama.cpp's decoder: a lead byte announces the length; a sequence with a
 * bad or missing continuation byte yields U+FFFD for the lead byte alone and
 * decoding resumes at the next byte. Overlong forms and surrogates are
 * accepted (and re-encoded), as there. Code points above U+10FFFF, which
 * llama.cpp cannot re-encode, become U+FFFD. */
size_t tl_tok_utf8_sanitize(const char *text, size_t len, char **out) {
    const unsigned char *s = (const unsigned char *)text;
    /* each input byte yields at most 3 output bytes (U+FFFD) */
    if (len > (SIZE_MAX - 1) / 3) return (size_t)-1;
    unsigned char *o = malloc(len * 3 + 1);
    if (!o) return (size_t)-1;
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned c = s[i];
        uint32_t cp;
        size_t l;
        if (c < 0x80) {
            o[n++] = (unsigned char)c;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            l = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            l = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            l = 4;
            cp = c & 0x07;
        } else {
            l = 0;
            cp = 0;
        }
        bool ok = l != 0 && i + l <= len;
        for (size_t j = 1; ok && j < l; j++) {
            if ((s[i + j] & 0xC0) != 0x80) ok = false;
            else cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (ok && cp > 0x10FFFF) {
            cp = 0xFFFD;
        } else if (!ok) {
            cp = 0xFFFD;
            l = 1;
        }
        i += l;
        if (cp < 0x80) {
            o[n++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            o[n++] = (unsigned char)(0xC0 | (cp >> 6));
            o[n++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            o[n++] = (unsigned char)(0xE0 | (cp >> 12));
            o[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            o[n++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            o[n++] = (unsigned char)(0xF0 | (cp >> 18));
            o[n++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            o[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            o[n++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
    }
    o[n] = 0;
    *out = (char *)o;
    return n;
}
