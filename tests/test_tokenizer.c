/* test_tokenizer.c — tokenizers against llama.cpp's expected tokenizations
 * (../shared/fixtures/tokenizer: X.gguf with X.gguf.inp/.out), round trips, and
 * unit checks: special-token parsing, streaming decode, bad ids, caps. */
#include "harness.h"

#include <stdint.h>
#include <string.h>
#include "io/gguf.h"
#include "tok/tok.h"
#include "tok/tok_impl.h"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

static tl_tok *load(const char *name, tl_gguf **gout) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/%s.gguf", name);
    tl_err err = {0};
    tl_gguf *g = NULL;
    if (tl_gguf_open(tl_test_shared(rel), &g, &err) != TL_OK) {
        CHECKF(0, "open %s: %s", rel, err.msg);
        return NULL;
    }
    tl_tok *t = NULL;
    if (tl_tok_init_gguf(g, &t, &err) != TL_OK) {
        CHECKF(0, "tokenizer %s: %s", rel, err.msg);
        tl_gguf_free(g);
        return NULL;
    }
    if (gout) *gout = g;
    else tl_gguf_free(g);
    return t;
}

/* Strings whose decode(encode(s)) differs from s, and why. Indexes are into
 * the shared .inp list (the same 46 strings for every vocabulary). */
typedef struct rt_exception {
    const char *vocab;
    int index;
    const char *reason;
} rt_exception;

/* #32 "... are you U+1F601 ?..." decodes to "...U+1F601?..."; #45 (the long
 * mixed string) also contains " ?" and " 'M"-style contractions. */
#define CLEANUP "llama.cpp's clean_up_tokenization_spaces removes the space before ?!., / 's etc."
static const rt_exception k_rt_exceptions[] = {
    {"ggml-vocab-gpt-2", 32, CLEANUP},
    {"ggml-vocab-gpt-2", 45, CLEANUP},
    {"ggml-vocab-falcon", 32, CLEANUP},
    {"ggml-vocab-falcon", 45, CLEANUP},
    {"ggml-vocab-starcoder", 32, CLEANUP},
    {"ggml-vocab-starcoder", 45, CLEANUP},
    {"vocab-llama3", 32, CLEANUP},
    {"vocab-llama3", 45, CLEANUP},
};

static const char *rt_exception_reason(const char *vocab, int index) {
    for (size_t i = 0; i < sizeof k_rt_exceptions / sizeof k_rt_exceptions[0]; i++)
        if (!strcmp(k_rt_exceptions[i].vocab, vocab) && k_rt_exceptions[i].index == index)
            return k_rt_exceptions[i].reason;
    return NULL;
}

static void print_escaped(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
}

static int parse_ids(const char *line, size_t n, int32_t *ids, int cap) {
    int k = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && line[i] == ' ') i++;
        if (i >= n) break;
        long v = 0;
        while (i < n && line[i] >= '0' && line[i] <= '9') v = v * 10 + (line[i++] - '0');
        if (k < cap) ids[k] = (int32_t)v;
        k++;
    }
    return k;
}

static void test_vocab(const char *name) {
    tl_tok *t = load(name, NULL);
    if (!t) return;
    char rel[256];
    size_t inp_len = 0, out_len = 0;
    snprintf(rel, sizeof rel, "fixtures/tokenizer/%s.gguf.inp", name);
    char *inp = read_all(tl_test_shared(rel), &inp_len);
    snprintf(rel, sizeof rel, "fixtures/tokenizer/%s.gguf.out", name);
    char *outf = read_all(tl_test_shared(rel), &out_len);
    CHECKF(inp && outf, "%s: cannot read .inp/.out", name);
    if (!inp || !outf) goto done;

    tl_tok_span *sp = NULL;
    size_t ns = 0;
    tl_err err = {0};
    CHECK(tl_tok_split_vocab_test(inp, inp_len, &sp, &ns, &err) == TL_OK);
    int n_ok = 0, n_rt_ok = 0, n_rt_exc = 0;
    const char *line = outf, *oend = outf + out_len;
    for (size_t k = 0; k < ns; k++) {
        const char *nl = memchr(line, '\n', (size_t)(oend - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(oend - line);
        CHECKF(line < oend, "%s: .out has fewer lines than .inp strings", name);
        if (line >= oend) break;
        int32_t want[512], got[512];
        int nw = parse_ids(line, ll, want, 512);
        line = nl ? nl + 1 : oend;
        const char *s = inp + sp[k].off;
        size_t sl = sp[k].len;
        int ng = tl_tok_encode(t, s, sl, got, 512, false, false);
        bool same = ng == nw && (ng <= 0 || memcmp(got, want, (size_t)ng * sizeof *got) == 0);
        if (!same) {
            fprintf(stderr, "%s: string %zu \"", name, k);
            print_escaped(stderr, s, sl);
            fprintf(stderr, "\"\n  want:");
            for (int i = 0; i < nw && i < 512; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n  got: ");
            for (int i = 0; i < ng && i < 512; i++) fprintf(stderr, " %d", got[i]);
            fprintf(stderr, "\n");
        }
        CHECKF(same, "%s: string %zu tokenization differs", name, k);
        n_ok += same;
        if (ng < 0) continue;

        /* round trip */
        char dec[4096];
        int dl = tl_tok_decode(t, got, ng, dec, sizeof dec, false);
        bool rt = dl >= 0 && (size_t)dl == sl && memcmp(dec, s, sl) == 0;
        const char *why = rt_exception_reason(name, (int)k);
        if (why) {
            CHECKF(!rt, "%s: string %zu is listed as not round-tripping but does", name, k);
            n_rt_exc++;
            /* without the clean-up, byte-level BPE is lossless */
            dl = tl_tok_decode_ex(t, got, ng, dec, sizeof dec, TL_TOK_DECODE_NO_CLEANUP);
            rt = dl >= 0 && (size_t)dl == sl && memcmp(dec, s, sl) == 0;
        } else {
            n_rt_ok += rt;
        }
        if (!rt) {
            fprintf(stderr, "%s: string %zu round trip: \"", name, k);
            print_escaped(stderr, s, sl);
            fprintf(stderr, "\" -> \"");
            if (dl >= 0) print_escaped(stderr, dec, (size_t)dl);
            fprintf(stderr, "\"\n");
        }
        CHECKF(rt, "%s: string %zu does not round-trip", name, k);
    }
    CHECKF(line >= oend, "%s: .out has more lines than .inp strings", name);

    /* random bytes: never a failure or an out-of-range id; lossless where
     * the vocabulary can be (BPE: after llama.cpp's U+FFFD replacement;
     * SPM: unless the text holds U+2581 itself, which decodes to ' ') */
    {
        static const char *const frags[] = {"<", "|", ">", " ", "  ", "\n", "\t", "a", "Hello", "'s", "1", "12345",
            "\xe2\x96\x81", "\xc3\xb5", "\xff", "\x80", "\xc3", "\xf0\x9f", "\xf0\x9f\x98\x81", "<s>", "</s>",
            "<|endoftext|>", "<|im_end|>", "<|begin_of_text|>", "<tool_call>", "\xe4\xb8\xad", "!", ".", "\0"};
        const int nfr = (int)(sizeof frags / sizeof frags[0]);
        uint64_t rng = 42;
        int bad = 0, lossy = 0;
        for (int iter = 0; iter < 300; iter++) {
            char x[256];
            size_t xl = 0;
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            int nf = (int)((rng >> 33) % 16);
            for (int k = 0; k < nf; k++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                const char *f = frags[(rng >> 33) % (uint64_t)nfr];
                size_t fl = f[0] ? strlen(f) : 1;
                memcpy(x + xl, f, fl);
                xl += fl;
            }
            int32_t ids[1024];
            for (int mode = 0; mode < 3; mode++) {
                int n = tl_tok_encode(t, x, xl, ids, 1024, mode == 2, mode >= 1);
                if (n < 0) {
                    bad++;
                    continue;
                }
                for (int i = 0; i < n; i++)
                    if (ids[i] < 0 || ids[i] >= tl_tok_n_vocab(t)) bad++;
                char dec[4096];
                int dl = tl_tok_decode_ex(t, ids, n, dec, sizeof dec, TL_TOK_DECODE_NO_CLEANUP);
                if (dl < 0) bad++;
                if (mode != 0 || dl < 0) continue;
                char *want = NULL;
                size_t wl = xl;
                if (tl_tok_get_kind(t) == TL_TOK_BPE) {
                    wl = tl_tok_utf8_sanitize(x, xl, &want);
                } else {
                    /* SPM cuts symbols by lead-byte length, so a bad lead byte
                     * swallows part of a following U+2581; a user-defined token
                     * makes the next text get a space prefix (llama.cpp both) */
                    bool skip = memmem(x, xl, "\xe2\x96\x81", 3) != NULL;
                    char *san = NULL;
                    size_t sl2 = tl_tok_utf8_sanitize(x, xl, &san);
                    skip |= sl2 != xl || memcmp(san, x, xl) != 0;
                    free(san);
                    for (int i = 0; i < n; i++) skip |= (t->attr[ids[i]] & TL_TATTR_USER_DEFINED) != 0;
                    if (skip) continue;
                }
                const char *w = want ? want : x;
                if ((size_t)dl != wl || memcmp(dec, w, wl) != 0) {
                    if (getenv("TL_TOK_VERBOSE")) {
                        fprintf(stderr, "%s lossy: \"", name);
                        print_escaped(stderr, x, xl);
                        fprintf(stderr, "\" -> \"");
                        print_escaped(stderr, dec, (size_t)dl);
                        fprintf(stderr, "\"\n");
                    }
                    lossy++;
                }
                free(want);
            }
        }
        CHECKF(bad == 0 && lossy == 0, "%s: random bytes: %d failures, %d lossy round trips", name, bad, lossy);
    }
    printf("%-28s %d/%zu tokenizations match, %d round trips exact, %d listed exceptions\n", name,
           n_ok, ns, n_rt_ok, n_rt_exc);
    free(sp);
done:
    free(inp);
    free(outf);
    tl_tok_free(t);
}

static bool contains(const int32_t *ids, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static void test_special_llama3(void) {
    tl_tok *t = load("vocab-llama3", NULL);
    if (!t) return;
    int32_t ids[64];
    const char *s = "<|begin_of_text|>Hello<|eot_id|>";
    int n = tl_tok_encode(t, s, strlen(s), ids, 64, false, true);
    CHECKF(n == 3 && ids[0] == 128000 && ids[1] == 9906 && ids[2] == 128009, "parse_special on: n=%d", n);
    n = tl_tok_encode(t, s, strlen(s), ids, 64, false, false);
    CHECK(n > 3 && !contains(ids, n, 128000) && !contains(ids, n, 128009));
    /* add_special: BOS (add_bos_token true), no EOS */
    n = tl_tok_encode(t, "Hello", 5, ids, 64, true, false);
    CHECK(n == 2 && ids[0] == 128000 && ids[1] == 9906);
    CHECK(tl_tok_bos(t) == 128000 && tl_tok_eos(t) == 128001 && tl_tok_add_bos(t));
    CHECK(tl_tok_is_eog(t, 128001) && tl_tok_is_eog(t, 128009) && !tl_tok_is_eog(t, 9906));
    CHECK(tl_tok_chat_template(t) != NULL);

    /* rendering: control tokens only with render_special */
    char buf[64];
    CHECK(tl_tok_piece(t, 128000, buf, sizeof buf, false) == 0);
    CHECK(tl_tok_piece(t, 128000, buf, sizeof buf, true) == 17 && !memcmp(buf, "<|begin_of_text|>", 17));
    int32_t seq[] = {128000, 9906, 128009};
    int dl = tl_tok_decode(t, seq, 3, buf, sizeof buf, false);
    CHECK(dl == 5 && !strcmp(buf, "Hello"));
    dl = tl_tok_decode(t, seq, 3, buf, sizeof buf, true);
    CHECK(dl == 32 && !strcmp(buf, s));

    /* caps: -(needed) for encode, -(needed+1) for decode */
    CHECK(tl_tok_encode(t, "Hello world", 11, ids, 1, false, false) == -2);
    CHECK(tl_tok_encode(t, "Hello world", 11, NULL, 0, false, false) == -2);
    CHECK(tl_tok_encode(t, "", 0, NULL, 0, false, false) == 0);
    CHECK(tl_tok_decode(t, seq, 3, buf, 5, false) == -6);
    CHECK(tl_tok_decode(t, seq, 3, buf, 6, false) == 5);

    /* out-of-range ids */
    CHECK(tl_tok_piece(t, -1, buf, sizeof buf, true) == 0);
    CHECK(tl_tok_piece(t, 128256, buf, sizeof buf, true) == 0);
    CHECK(!tl_tok_is_eog(t, -5) && !tl_tok_is_eog(t, 1 << 30));
    CHECK(tl_tok_text(t, 128256, NULL) == NULL);
    int32_t bad[] = {9906, -7, 200000, 1917};
    dl = tl_tok_decode(t, bad, 4, buf, sizeof buf, false);
    CHECK(dl == 11 && !strcmp(buf, "Hello world"));

    /* invalid UTF-8 never breaks encoding: each bad byte is U+FFFD */
    const char bin[] = "a\xff\xfe\xc3(b\xe2\x82";
    n = tl_tok_encode(t, bin, sizeof bin - 1, ids, 64, false, false);
    CHECK(n > 0);
    int nf = tl_tok_encode(t, "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(b\xef\xbf\xbd\xef\xbf\xbd", 18, seq, 0, false, false);
    CHECKF(n == -nf, "invalid UTF-8 handled as U+FFFD: %d vs %d", n, -nf);
    tl_tok_free(t);
}

static void test_special_qwen3(void) {
    tl_tok *t = load("vocab-qwen3", NULL);
    if (!t) return;
    int32_t ids[64];
    /* user-defined tokens are matched even without parse_special ... */
    int n = tl_tok_encode(t, "a<tool_call>b", 13, ids, 64, false, false);
    CHECK(n == 3 && ids[1] == 151657);
    /* ... but FIM tokens are forced to control by llama.cpp's text rules */
    n = tl_tok_encode(t, "<|fim_prefix|>", 14, ids, 64, false, false);
    CHECK(n > 1 && !contains(ids, n, 151659));
    n = tl_tok_encode(t, "<|fim_prefix|>", 14, ids, 64, false, true);
    CHECK(n == 1 && ids[0] == 151659);
    n = tl_tok_encode(t, "<|im_start|>user\nhi<|im_end|>", 29, ids, 64, false, true);
    CHECK(n >= 4 && ids[0] == 151644 && ids[n - 1] == 151645);
    CHECK(tl_tok_is_eog(t, 151645) && tl_tok_is_eog(t, 151643) && !tl_tok_is_eog(t, 151644));
    CHECK(tl_tok_bos(t) == -1 || !tl_tok_add_bos(t));
    n = tl_tok_encode(t, "hi", 2, ids, 64, true, false);
    CHECK(n == 1);
    tl_tok_free(t);
}

static void test_spm(void) {
    tl_tok *t = load("ggml-vocab-llama-spm", NULL);
    if (!t) return;
    int32_t ids[64];
    int n = tl_tok_encode(t, "Hello", 5, ids, 64, true, false);
    CHECK(n == 2 && ids[0] == 1);
    /* BOS then text: the space prefix stays in the decoded text */
    char buf[256];
    int dl = tl_tok_decode(t, ids, n, buf, sizeof buf, false);
    CHECKF(dl == 6 && !strcmp(buf, " Hello"), "got \"%s\"", buf);
    dl = tl_tok_decode_ex(t, ids, n, buf, sizeof buf, TL_TOK_DECODE_REMOVE_SPECIAL);
    CHECKF(dl == 6 && !strcmp(buf, " Hello"), "got \"%s\"", buf);
    /* special parsing: "</s>" only with parse_special */
    n = tl_tok_encode(t, "a</s>b", 6, ids, 64, false, true);
    CHECK(n >= 3 && contains(ids, n, 2));
    n = tl_tok_encode(t, "a</s>b", 6, ids, 64, false, false);
    CHECK(n >= 3 && !contains(ids, n, 2));

    /* chunked merging (at starts of U+2581 runs) equals one global queue */
    {
        size_t il = 0;
        char *inp = read_all(tl_test_shared("fixtures/tokenizer/ggml-vocab-llama-spm.gguf.inp"), &il);
        CHECK(inp != NULL && t->spm_chunked);
        if (inp) {
            int cap = (int)il + 8;
            int32_t *x = malloc((size_t)cap * sizeof *x), *y = malloc((size_t)cap * sizeof *y);
            int nx = tl_tok_encode(t, inp, il, x, cap, true, false);
            t->spm_chunked = false;
            int ny = tl_tok_encode(t, inp, il, y, cap, true, false);
            t->spm_chunked = true;
            CHECK(nx > 100 && nx == ny && !memcmp(x, y, (size_t)nx * sizeof *x));
            free(x);
            free(y);
            free(inp);
        }
    }

    /* streaming: U+1D11E (4 bytes) has no token and falls back to bytes */
    const char *clef = "x\xf0\x9d\x84\x9ey";
    n = tl_tok_encode(t, clef, strlen(clef), ids, 64, false, false);
    CHECK(n >= 6);
    tl_tok_stream st;
    tl_tok_stream_init(&st, true, false);
    char acc[64];
    int al = 0, empty_pushes = 0;
    for (int i = 0; i < n; i++) {
        char piece[16];
        int w = tl_tok_stream_push(t, &st, ids[i], piece, sizeof piece);
        CHECK(w >= 0);
        if (w == 0) empty_pushes++;
        /* never emits a partial character */
        for (int j = 0; j < w; j++) {
            unsigned char c = (unsigned char)piece[j];
            if (c >= 0xF0) CHECK(j + 3 < w);
        }
        memcpy(acc + al, piece, (size_t)w);
        al += w;
    }
    al += tl_tok_stream_flush(&st, acc + al, (int)sizeof acc - al);
    CHECK(empty_pushes >= 3);
    acc[al] = 0;
    dl = tl_tok_decode(t, ids, n, buf, sizeof buf, false);
    CHECKF(al == dl && !memcmp(acc, buf, (size_t)al), "stream \"%s\" vs decode \"%s\"", acc, buf);
    /* a too-small buffer leaves the stream state untouched */
    tl_tok_stream_init(&st, false, false);
    int32_t hello = ids[0];
    int w = tl_tok_stream_push(t, &st, hello, buf, 0);
    CHECK(w < 0 && st.n_pending == 0);
    tl_tok_free(t);
}

static void test_phi3_rstrip(void) {
    tl_tok *t = load("ggml-vocab-phi-3", NULL);
    if (!t) return;
    int32_t a[64], b[64];
    /* <|end|> eats the whitespace to its right (llama.cpp's phi-3 rule) */
    int na = tl_tok_encode(t, "<|end|>\n  hi", 12, a, 64, false, true);
    int nb = tl_tok_encode(t, "<|end|>hi", 9, b, 64, false, true);
    CHECK(na > 0 && na == nb && !memcmp(a, b, (size_t)na * sizeof *a));
    CHECK(tl_tok_is_eog(t, 32000) && tl_tok_is_eog(t, 32007));
    tl_tok_free(t);
}

static void test_split(void) {
    const char *d = "a\n__ggml_vocab_test__\n\n__ggml_vocab_test__\n\n\n__ggml_vocab_test__\nlast";
    tl_tok_span *sp = NULL;
    size_t n = 0;
    CHECK(tl_tok_split_vocab_test(d, strlen(d), &sp, &n, NULL) == TL_OK);
    CHECK(n == 4);
    if (n == 4) {
        CHECK(sp[0].len == 1 && sp[1].len == 0 && sp[2].len == 1 && d[sp[2].off] == '\n');
        CHECK(sp[3].len == 4 && !memcmp(d + sp[3].off, "last", 4));
    }
    free(sp);
}

/* The hand-written splitters must give Oniguruma's words exactly. */
typedef struct words {
    size_t v[256];
    int n;
} words;

static tl_status collect(void *user, size_t off, size_t len) {
    words *w = user;
    if (w->n < 128) {
        w->v[2 * w->n] = off;
        w->v[2 * w->n + 1] = len;
    }
    w->n++;
    return TL_OK;
}

static void test_fast_splitters(void) {
    static const char *const pats[] = {
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        "\\p{N}",
    };
    static const char *const atoms[] = {" ", " ", "  ", "\t", "\n", "\r", "\v", "\f", "a", "Z", "s", "S", "t",
        "l", "L", "r", "E", "v", "m", "D", "'", "'", "1", "7", "\xd9\xa3" /* Arabic 3 */,
        "\xe2\x85\xab" /* Roman XII */, "\xc2\xbd" /* 1/2 */, "\xc3\xa9", "\xcc\x81" /* combining acute */,
        "!", "_", ".", "\xe3\x80\x82", "\xe3\x80\x80" /* ideographic space */, "\xc2\xa0", "\xc2\x85",
        "\xe2\x80\xa8", "\xf0\x9f\x98\x81", "\xf0\x9d\x90\x80" /* math bold A (L, astral) */, "\xe4\xb8\xad",
        "\xe0\xb8\x81", "\x01", "$", "~"};
    const int n_atoms = (int)(sizeof atoms / sizeof atoms[0]);
    uint64_t rng = 0x1234567;
    int mismatches = 0;
    for (size_t pi = 0; pi < sizeof pats / sizeof pats[0]; pi++) {
        tl_tok_pretok *fast = NULL, *slow = NULL;
        tl_err err = {0};
        CHECK(tl_tok_pretok_init(&pats[pi], 1, true, &fast, &err) == TL_OK);
        CHECK(tl_tok_pretok_init(&pats[pi], 1, false, &slow, &err) == TL_OK);
        if (!fast || !slow) return;
        for (int iter = 0; iter < 20000; iter++) {
            char buf[128];
            size_t len = 0;
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            int n = (int)((rng >> 33) % 10);
            for (int k = 0; k < n; k++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                const char *a = atoms[(rng >> 33) % (uint64_t)n_atoms];
                memcpy(buf + len, a, strlen(a));
                len += strlen(a);
            }
            words wf = {0}, ws = {0};
            tl_tok_pretok_split(fast, buf, len, collect, &wf);
            tl_tok_pretok_split(slow, buf, len, collect, &ws);
            bool same = wf.n == ws.n && !memcmp(wf.v, ws.v, 2 * (size_t)(wf.n < 128 ? wf.n : 128) * sizeof(size_t));
            if (!same && mismatches++ < 5) {
                fprintf(stderr, "pattern %zu: \"", pi);
                print_escaped(stderr, buf, len);
                fprintf(stderr, "\"\n  fast:");
                for (int k = 0; k < wf.n && k < 128; k++) fprintf(stderr, " [%zu,%zu)", wf.v[2 * k], wf.v[2 * k] + wf.v[2 * k + 1]);
                fprintf(stderr, "\n  onig:");
                for (int k = 0; k < ws.n && k < 128; k++) fprintf(stderr, " [%zu,%zu)", ws.v[2 * k], ws.v[2 * k] + ws.v[2 * k + 1]);
                fprintf(stderr, "\n");
            }
        }
        tl_tok_pretok_free(fast);
        tl_tok_pretok_free(slow);
    }
    CHECKF(mismatches == 0, "%d fast/Oniguruma split mismatches", mismatches);
}

int main(void) {
    test_split();
    test_fast_splitters();
    tl_test_require_shared();
    static const char *const vocabs[] = {"ggml-vocab-llama-spm", "ggml-vocab-phi-3", "ggml-vocab-gpt-2",
        "ggml-vocab-falcon", "ggml-vocab-starcoder", "ggml-vocab-deepseek-coder", "vocab-llama3",
        "vocab-qwen3"};
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) test_vocab(vocabs[i]);
    test_special_llama3();
    test_special_qwen3();
    test_spm();
    test_phi3_rstrip();
    return tl_test_finish("test_tokenizer", 0);
}
