/* tok.h — tokenizers: SentencePiece-style ("llama", SPM) and byte-level BPE
 * ("gpt2"), reproducing llama.cpp's tokenization and detokenization exactly.
 *
 * A tl_tok is immutable after construction: every function below may be
 * called concurrently on the same tokenizer (each call allocates its own
 * scratch). Token ids are int32; encode only produces ids in [0, n_vocab),
 * and the id -> text functions treat other ids as rendering nothing. */
#ifndef TL_TOK_TOK_H
#define TL_TOK_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "io/gguf.h"

typedef struct tl_tok tl_tok;

typedef enum tl_tok_kind {
    TL_TOK_SPM = 1,   /* tokenizer.ggml.model = "llama": score-driven merges, byte fallback */
    TL_TOK_BPE = 2,   /* tokenizer.ggml.model = "gpt2": byte-level BPE with a regex pre-tokenizer */
} tl_tok_kind;

/* Builds a tokenizer from the tokenizer.ggml.* keys of g (model, pre, tokens,
 * scores, token_type, merges, bos/eos/eot/eom/unk/pad ids, add_bos_token,
 * add_eos_token, add_space_prefix) and tokenizer.chat_template. g may be
 * freed afterwards: everything is copied. *out is caller-frees with
 * tl_tok_free. Errors: TL_ERR_MISSING (no tokens/model key), TL_ERR_FORMAT
 * (bad types, lengths, counts), TL_ERR_UNSUPPORTED (a model other than
 * llama/gpt2), TL_ERR_NOMEM. An unknown tokenizer.ggml.pre falls back to the
 * gpt-2 pre-tokenizer with a warning through tl_log. */
tl_status tl_tok_init_gguf(const tl_gguf *g, tl_tok **out, tl_err *err);
void tl_tok_free(tl_tok *t);

tl_tok_kind tl_tok_get_kind(const tl_tok *t);
int tl_tok_n_vocab(const tl_tok *t);
/* Special ids; -1 when the vocabulary has none. */
int32_t tl_tok_bos(const tl_tok *t);
int32_t tl_tok_eos(const tl_tok *t);
int32_t tl_tok_eot(const tl_tok *t);
/* True for ids that end generation: eos, eot, eom and the texts llama.cpp
 * treats as such (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>,
 * <|endoftext|>, <|eom_id|>, <EOT>, FIM pad/repo/sep). False when out of range. */
bool tl_tok_is_eog(const tl_tok *t, int32_t id);
/* True for control tokens (never produced by plain text encoding). */
bool tl_tok_is_control(const tl_tok *t, int32_t id);
bool tl_tok_add_bos(const tl_tok *t);
bool tl_tok_add_eos(const tl_tok *t);
/* Raw vocabulary text of id (e.g. "▁Hello", "Ġworld", "<0x0A>"); borrowed,
 * NUL-terminated; *len (may be NULL) gets its byte length. NULL when out of range. */
const char *tl_tok_text(const tl_tok *t, int32_t id, size_t *len);
/* Id whose vocabulary text is exactly s[0..len), or -1. */
int32_t tl_tok_find(const tl_tok *t, const char *s, size_t len);
/* tokenizer.chat_template; borrowed NUL-terminated string, NULL if none. */
const char *tl_tok_chat_template(const tl_tok *t);

/* Tokenizes text[0..len) (any bytes; invalid UTF-8 is handled as llama.cpp
 * does) into out[0..cap). add_special: prepend BOS / append EOS as the
 * vocabulary's add_bos/add_eos say. parse_special: control and unknown-type
 * token texts in the input become those tokens; when false they are
 * tokenized as plain text (user-defined tokens are always matched, as in
 * llama.cpp). Returns the number of tokens, or -(needed) when cap is too
 * small (out then holds nothing meaningful); INT32_MIN on an internal
 * failure (out of memory, regex engine error, len > TL_TOK_MAX_TEXT). out may
 * be NULL when cap is 0. */
#define TL_TOK_MAX_TEXT ((size_t)512 << 20)
int tl_tok_encode(const tl_tok *t, const char *text, size_t len, int32_t *out, int cap,
                  bool add_special, bool parse_special);

/* Text of one token into buf (no NUL): byte tokens (<0x41>) give the raw
 * byte, SPM '▁' becomes ' ', byte-level BPE maps its byte-unicode characters
 * back to bytes; control/unknown tokens render their text only when
 * render_special (else 0 bytes); user-defined tokens always render. Returns
 * bytes written, or -(needed) when cap is too small. An out-of-range id
 * writes nothing and returns 0. */
int tl_tok_piece(const tl_tok *t, int32_t id, char *buf, int cap, bool render_special);

/* Decode flags (tl_tok_decode_ex). */
enum {
    TL_TOK_DECODE_RENDER_SPECIAL = 1u << 0, /* control/unknown tokens render their text */
    TL_TOK_DECODE_REMOVE_SPECIAL = 1u << 1, /* drop a leading BOS / trailing EOS the vocab adds */
    TL_TOK_DECODE_NO_CLEANUP     = 1u << 2, /* skip the clean_up_tokenization_spaces passes */
};

/* Whole-sequence decode with llama_detokenize semantics: the leading space
 * of the first token is dropped when the vocabulary adds a space prefix
 * (SPM); BPE vocabularies with clean_up_tokenization_spaces get llama.cpp's
 * " ." -> "." style clean-up unless TL_TOK_DECODE_NO_CLEANUP. Out-of-range
 * ids contribute nothing. Writes a NUL when it fits. Returns the length
 * (without NUL), or -(needed+1) when cap is too small (needed excludes the
 * NUL; the result was then not written in full). */
int tl_tok_decode_ex(const tl_tok *t, const int32_t *ids, int n, char *buf, int cap,
                     unsigned flags);
/* tl_tok_decode_ex with flags = render_special ? RENDER_SPECIAL : 0
 * (llama_detokenize with remove_special=false). */
int tl_tok_decode(const tl_tok *t, const int32_t *ids, int n, char *buf, int cap,
                  bool render_special);

/* Streaming detokenization: holds back an incomplete UTF-8 sequence (split
 * across byte tokens) until it completes, so each push emits whole
 * characters only. Plain data; set up with tl_tok_stream_init. */
typedef struct tl_tok_stream {
    char pending[8];
    int n_pending;
    bool first;           /* strip the space prefix from the next piece (SPM start of text) */
    bool render_special;
} tl_tok_stream;

/* at_text_start: the next token begins a text (decode-style removal of the
 * SPM leading space applies to it); false when continuing after a prompt. */
void tl_tok_stream_init(tl_tok_stream *s, bool at_text_start, bool render_special);
/* Appends the piece of id and writes the complete UTF-8 prefix of what is
 * pending into buf (no NUL). Returns bytes written, or -(needed) when cap is
 * too small (the state is then unchanged; call again with a bigger buf).
 * Bytes that can never become valid UTF-8 are passed through as they are. */
int tl_tok_stream_push(const tl_tok *t, tl_tok_stream *s, int32_t id, char *buf, int cap);
/* Emits whatever is still held (an incomplete sequence at end of output).
 * Returns bytes written or -(needed). */
int tl_tok_stream_flush(tl_tok_stream *s, char *buf, int cap);

/* ---- llama.cpp vocab test files -------------------------------------------
 * A .inp file holds strings separated by the line "__ggml_vocab_test__":
 * strings are split on "\n__ggml_vocab_test__\n" exactly as llama.cpp's
 * test-tokenizer-0 does (a trailing separator ends the list; text after the
 * last separator is one more string). The matching .out line for each string
 * is its ids, each written as " %d", then "\n" (no BOS/EOS, parse_special
 * false). */
typedef struct tl_tok_span {
    size_t off, len;
} tl_tok_span;

/* Splits data[0..len) into *out (caller-frees with free()), *n_out entries. */
tl_status tl_tok_split_vocab_test(const char *data, size_t len, tl_tok_span **out,
                                  size_t *n_out, tl_err *err);

#endif
