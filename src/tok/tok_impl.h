/* tok_impl.h — the tokenizer's internals, shared by the files of src/tok.
 *
 * Loaders (GGUF now, Hugging Face tokenizer.json later) describe a
 * vocabulary with tl_tok_vocab_desc and call tl_tok_init_vocab; nothing
 * below depends on where the vocabulary came from. */
#ifndef TL_TOK_IMPL_H
#define TL_TOK_IMPL_H

#include "tok/tok.h"
#include "base/strmap.h"

/* GGUF token types (llama.cpp's llama_token_type). */
enum {
    TL_TOKTYPE_UNDEFINED = 0,
    TL_TOKTYPE_NORMAL = 1,
    TL_TOKTYPE_UNKNOWN = 2,
    TL_TOKTYPE_CONTROL = 3,
    TL_TOKTYPE_USER_DEFINED = 4,
    TL_TOKTYPE_UNUSED = 5,
    TL_TOKTYPE_BYTE = 6,
};

/* Per-token attribute bits (tl_tok.attr). */
enum {
    TL_TATTR_UNDEFINED = 1u << 0,
    TL_TATTR_UNKNOWN = 1u << 1,
    TL_TATTR_UNUSED = 1u << 2,
    TL_TATTR_NORMAL = 1u << 3,
    TL_TATTR_CONTROL = 1u << 4,
    TL_TATTR_USER_DEFINED = 1u << 5,
    TL_TATTR_BYTE = 1u << 6,
    TL_TATTR_LSTRIP = 1u << 7,   /* special-token match eats whitespace on its left  */
    TL_TATTR_RSTRIP = 1u << 8,   /* ... and on its right                            */
    TL_TATTR_EOG = 1u << 9,
};

typedef struct tl_tok_str {
    const char *ptr;
    size_t len;
} tl_tok_str;

/* Everything a loader knows about a vocabulary. All pointers are borrowed
 * for the duration of tl_tok_init_vocab only (the tokenizer copies). */
typedef struct tl_tok_vocab_desc {
    tl_tok_kind kind;
    int32_t n_tokens;
    const tl_tok_str *tokens;      /* [n_tokens]; an empty text becomes "[EMPTY_<id>]" */
    const float *scores;           /* [n_tokens] or NULL (all 0) */
    const int32_t *types;          /* [n_tokens] TL_TOKTYPE_* or NULL (all NORMAL) */
    const uint16_t *extra_attr;    /* [n_tokens] extra TL_TATTR_LSTRIP/RSTRIP bits, or NULL */
    /* BPE merges in rank order: merges[2*i] + merges[2*i+1]. */
    const tl_tok_str *merges;
    int64_t n_merges;
    /* Pre-tokenizer: regexes applied in sequence, each splitting the pieces
     * the previous one produced (llama.cpp's unicode_regex_split). BPE only;
     * Oniguruma syntax close to Perl: \p{L}, \p{N}, (?i:..), (?!..). */
    const char *const *regexes;
    int n_regexes;
    /* Special ids: -1 = none. Out-of-range values are treated as none. */
    int32_t bos, eos, eot, eom, unk, pad, sep;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos;
    bool add_space_prefix;         /* SPM: prepend ' ' to text after start/special */
    bool ignore_merges;            /* BPE: a pre-token that is itself a token skips merging */
    bool clean_spaces;             /* detokenize: clean_up_tokenization_spaces */
    /* Apply llama.cpp's text-based detection of eot/eom/FIM/EOG tokens (and
     * mark them control). */
    bool detect_special_by_text;
    const char *chat_template;     /* NUL-terminated or NULL */
} tl_tok_vocab_desc;

/* Fills d with "nothing": ids -1, flags false, pointers NULL. */
void tl_tok_vocab_desc_defaults(tl_tok_vocab_desc *d);

/* Builds a tokenizer from a description. *out caller-frees with tl_tok_free. */
tl_status tl_tok_init_vocab(const tl_tok_vocab_desc *d, tl_tok **out, tl_err *err);

/* Pre-tokenizer regex list for a tokenizer.ggml.pre name (llama.cpp's
 * LLAMA_VOCAB_PRE_TYPE_* lists), with the flags that name implies. Returns
 * false when the name is unknown. */
typedef struct tl_tok_pre_info {
    const char *const *regexes;
    int n_regexes;
    bool ignore_merges, clean_spaces, force_add_bos, no_bos;
} tl_tok_pre_info;
bool tl_tok_pre_lookup(const char *name, size_t len, tl_tok_pre_info *info);

/* ---- the tokenizer ---- */

typedef struct tl_tok_pretok tl_tok_pretok;   /* compiled regexes (pretok.c) */

struct tl_tok {
    tl_tok_kind kind;
    int32_t n_vocab;
    char *text_blob;            /* all token texts, each NUL-terminated */
    uint32_t *text_off;         /* [n_vocab] */
    uint32_t *text_len;         /* [n_vocab] */
    float *scores;              /* [n_vocab] */
    uint16_t *attr;             /* [n_vocab] TL_TATTR_* */
    tl_strmap text_to_id;

    char *piece_blob;           /* rendered pieces (as if render_special) */
    uint32_t *piece_off;        /* [n_vocab + 1] */

    /* BPE: (left id << 32 | right id) -> (rank, merged id) */
    tl_u64map merges;
    int32_t byte_tok[256];      /* SPM: <0xXX> (or the 1-char token); BPE: byte-unicode char; -1 */
    char byte_enc[256][3];      /* BPE: UTF-8 of the byte-unicode char of each byte, NUL-padded */
    uint8_t byte_enc_len[256];
    int16_t byte_dec[0x144];    /* BPE: byte-unicode code point -> byte, or -1 */

    tl_tok_pretok *pretok;
    bool spm_chunked;           /* SPM: merges never cross the start of a U+2581 run (spm.c) */

    /* special tokens matched out of raw text, longest text first */
    int32_t *special_ids;
    int n_special;
    uint8_t special_first[32];  /* bitmap of first bytes of special texts */
    tl_u64map special_trie;     /* (node << 8 | byte) -> (child node, 0); root = node 0 */
    int32_t *trie_term;         /* [nodes] index into special_ids ending at the node, or -1 */

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
    char *chat_template;
};

static inline const char *tok_text(const tl_tok *t, int32_t id) { return t->text_blob + t->text_off[id]; }

/* Growable output vector of ids used by the encoders. */
typedef struct tl_tok_ids {
    int32_t *v;
    size_t n, cap;
    bool oom;
} tl_tok_ids;

void tl_tok_ids_push(tl_tok_ids *o, int32_t id);

/* Encoders of one raw-text fragment (no special tokens inside). */
tl_status tl_tok_spm_encode(const tl_tok *t, const char *text, size_t len, tl_tok_ids *out);
tl_status tl_tok_bpe_encode(const tl_tok *t, const char *text, size_t len, tl_tok_ids *out);

/* Pre-tokenizer (pretok.c). */
/* allow_fast: recognised patterns (gpt-2, llama3, qwen2 families) use
 * hand-written splitters with identical results (false: Oniguruma for all;
 * tests compare the two). */
tl_status tl_tok_pretok_init(const char *const *regexes, int n, bool allow_fast, tl_tok_pretok **out,
                            tl_err *err);
void tl_tok_pretok_free(tl_tok_pretok *p);
/* Splits utf8[0..len) (valid UTF-8 as produced by tl_tok_utf8_sanitize) into
 * words; each word is reported by calling fn(user, off, len) in order.
 * Returns TL_OK or the first non-OK status fn returned / a regex failure. */
typedef tl_status (*tl_tok_word_fn)(void *user, size_t off, size_t len);
tl_status tl_tok_pretok_split(const tl_tok_pretok *p, const char *utf8, size_t len,
                              tl_tok_word_fn fn, void *user);

/* Decodes text as llama.cpp's unicode_cpts_from_utf8 does (each invalid
 * byte -> U+FFFD) and re-encodes it, into *out (malloc'd, caller frees).
 * Returns the new length, or (size_t)-1 when out of memory. */
size_t tl_tok_utf8_sanitize(const char *text, size_t len, char **out);
/* Length of the UTF-8 sequence a lead byte announces (1 for invalid leads),
 * as llama.cpp's unicode_len_utf8. */
static inline size_t tl_tok_utf8_len(unsigned char c) {
    static const unsigned char lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}

#endif
