/* fuzz_tokenize.c — libFuzzer target for the text tokenizers (SPM and
 * byte-level BPE with its regex pre-tokenizers): the parser that sees every
 * prompt. Build and run with scripts/fuzz.sh; see README.md.
 *
 * The vocabularies are the real ones of ../shared/fixtures/tokenizer
 * (directory in TL_FUZZ_VOCABS, which scripts/fuzz.sh sets), loaded once.
 * Input: byte 0 picks the vocabulary (its low bits) and the flags (its top
 * three: add_special, parse_special, render_special); the rest is the text,
 * any bytes.
 *
 * Checked, beside ASan/UBSan: encode succeeds on any text, is
 * deterministic, sizes itself exactly through cap 0 and yields ids in range;
 * decode sizes itself the same way; the streaming detokenizer, fed one id at
 * a time through a small buffer, emits exactly what the whole-sequence
 * decode does (without its clean-up pass); and byte-level BPE gives valid
 * UTF-8 text back unchanged where its vocabulary has every byte. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "tok/tok.h"

enum { MAX_VOCABS = 16 };
static tl_tok *g_tok[MAX_VOCABS];
static bool g_all_bytes[MAX_VOCABS]; /* byte-level BPE with a token for every byte */
static int g_n;

/* Whether t has the byte-level token of each of the 256 bytes (GPT-2's
 * byte -> code point map: printable bytes stand for themselves, the other
 * 68 take U+0100 on, in byte order). Without one, llama.cpp, and so this
 * engine, drops that byte from the text (falcon lacks 28, starcoder 14). */
static bool has_all_bytes(const tl_tok *t) {
    if (tl_tok_get_kind(t) != TL_TOK_BPE) return false;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        const int cp = self ? b : 0x100 + extra++;
        const char s[2] = { (char)(cp < 0x80 ? cp : 0xC0 | cp >> 6), (char)(0x80 | (cp & 0x3F)) };
        if (tl_tok_find(t, s, cp < 0x80 ? 1 : 2) < 0) return false;
    }
    return true;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("TL_FUZZ_VOCABS");
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        fprintf(stderr, "fuzz_tokenize: TL_FUZZ_VOCABS (%s) is not a directory: nothing to fuzz\n",
                dir ? dir : "unset");
        return 0;
    }
    char *names[64];
    int nn = 0;
    for (struct dirent *e; (e = readdir(d)) && nn < 64;) {
        const size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".gguf")) names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, cmp_str); /* the same index for the same vocab */
    for (int i = 0; i < nn; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        tl_err err = {0};
        tl_gguf *g = NULL;
        if (g_n < MAX_VOCABS && tl_gguf_open(path, &g, &err) == TL_OK &&
            tl_tok_init_gguf(g, &g_tok[g_n], &err) == TL_OK) {
            g_all_bytes[g_n] = has_all_bytes(g_tok[g_n]);
            g_n++;
        } else if (err.msg[0]) {
            fprintf(stderr, "fuzz_tokenize: %s: %s\n", names[i], err.msg);
        }
        tl_gguf_free(g);
        free(names[i]);
    }
    fprintf(stderr, "fuzz_tokenize: %d vocabularies from %s\n", g_n, dir);
    return 0;
}

static bool valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        const uint8_t c = s[i];
        const int k = c < 0x80 ? 0
                      : (c & 0xE0) == 0xC0 ? 1
                      : (c & 0xF0) == 0xE0 ? 2
                      : (c & 0xF8) == 0xF0 ? 3
                                           : -1; /* continuation bytes that follow */
        if (k < 0 || i + (size_t)k >= n) return false;
        uint32_t cp = k == 0 ? c : c & (0x3F >> k);
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += (size_t)k + 1;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_n == 0 || size == 0) return 0;
    const int v = (data[0] & 0x1F) % g_n;
    const tl_tok *t = g_tok[v];
    const bool add_special = data[0] & 0x20, parse_special = data[0] & 0x40,
               render_special = data[0] & 0x80;
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;

    const int need0 = tl_tok_encode(t, text, len, NULL, 0, add_special, parse_special);
    if (need0 == INT32_MIN) abort(); /* no internal failure on any text of this size */
    const int need = need0 < 0 ? -need0 : need0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(need + 1));
    int32_t *again = malloc(sizeof(int32_t) * (size_t)(need + 1));
    if (!ids || !again) abort();
    if (tl_tok_encode(t, text, len, ids, need, add_special, parse_special) != need) abort();
    if (tl_tok_encode(t, text, len, again, need + 1, add_special, parse_special) != need ||
        memcmp(ids, again, sizeof(int32_t) * (size_t)need))
        abort(); /* deterministic, whatever the cap */
    for (int i = 0; i < need; i++)
        if (ids[i] < 0 || ids[i] >= tl_tok_n_vocab(t)) abort();

    /* whole-sequence decode, sized through cap 0 */
    const unsigned flags = TL_TOK_DECODE_NO_CLEANUP | (render_special ? TL_TOK_DECODE_RENDER_SPECIAL : 0);
    const int dn = tl_tok_decode_ex(t, ids, need, NULL, 0, flags);
    if (dn > 0) abort(); /* cap 0 holds nothing */
    const int dlen = dn < 0 ? -dn - 1 : dn;
    char *dec = malloc((size_t)dlen + 1);
    if (!dec || tl_tok_decode_ex(t, ids, need, dec, dlen + 1, flags) != dlen) abort();

    /* the stream, a token at a time through a 4-byte buffer grown on demand */
    tl_tok_stream s;
    tl_tok_stream_init(&s, true, render_special);
    int cap = 4;
    char *out = malloc((size_t)dlen + 1), *buf = malloc((size_t)cap);
    if (!out || !buf) abort();
    size_t olen = 0;
    for (int i = 0; i <= need; i++) {
        int r;
        while ((r = i < need ? tl_tok_stream_push(t, &s, ids[i], buf, cap)
                             : tl_tok_stream_flush(&s, buf, cap)) < 0) {
            if (-r <= cap) abort(); /* asked for less than it had */
            cap = -r;
            free(buf);
            if (!(buf = malloc((size_t)cap))) abort();
        }
        if (olen + (size_t)r > (size_t)dlen) abort(); /* more than the decode gave */
        if (r) memcpy(out + olen, buf, (size_t)r);
        olen += (size_t)r;
    }
    if (olen != (size_t)dlen || memcmp(out, dec, olen)) abort();

    /* byte-level BPE with every byte in its vocabulary round-trips valid
     * UTF-8 (no specials added or parsed) */
    if (g_all_bytes[v] && !add_special && !parse_special &&
        valid_utf8((const uint8_t *)text, len) && (dlen != (int)len || memcmp(dec, text, len)))
        abort();

    free(ids), free(again), free(dec), free(out), free(buf);
    return 0;
}
