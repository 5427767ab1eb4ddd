/* gguf_vocab.c — tokenizer from GGUF metadata (tokenizer.ggml.*), and the
 * pre-tokenizer table keyed by tokenizer.ggml.pre (llama.cpp's
 * LLAMA_VOCAB_PRE_TYPE_* regex lists and per-name flags). */
#include "tok/tok_impl.h"

#include <stdlib.h>
#include <string.h>
#include "base/log.h"

/* ---- regexes (llama.cpp's adapted forms: (?i:..) spelled out) ---- */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_BLOOM " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"

static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"};
static const char *const re_gpt2[] = {RE_GPT2};
static const char *const re_llama3[] = {RE_LLAMA3};
static const char *const re_qwen2[] = {RE_QWEN2};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)", "[0-9][0-9][0-9]"};
static const char *const re_deepseek_coder[] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+", "\\p{N}"};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-\xe3\x80\x82]+",
    "\\s+$",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}+",
};
static const char *const re_deepseek3[] = {"\\p{N}{1,3}",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"};
static const char *const re_bloom[] = {RE_BLOOM};
static const char *const re_viking[] = {RE_BLOOM, "\\p{N}"};
static const char *const re_tekken[] = {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
static const char *const re_chameleon[] = {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2};

#define LIST(a) a, (int)(sizeof a / sizeof a[0])

typedef struct pre_entry {
    const char *names;   /* '|'-separated tokenizer.ggml.pre values */
    const char *const *re;
    int n_re;
    bool ignore_merges, clean_spaces, force_add_bos, no_bos;
} pre_entry;

/* clean_spaces defaults to true for BPE in llama.cpp; entries that turn it
 * off say clean_spaces = false. */
static const pre_entry k_pre[] = {
    {.names = "default", LIST(re_default), .clean_spaces = true},
    {.names = "llama3|llama-v3|llama-bpe|falcon3", LIST(re_llama3), .ignore_merges = true,
     .clean_spaces = true, .force_add_bos = true},
    {.names = "dbrx|smaug-bpe", LIST(re_llama3), .clean_spaces = true},
    {.names = "deepseek-llm", LIST(re_deepseek_llm)},
    {.names = "deepseek-coder", LIST(re_deepseek_coder)},
    {.names = "deepseek-v3", LIST(re_deepseek3)},
    {.names = "falcon", LIST(re_falcon), .clean_spaces = true},
    {.names = "mpt|olmo|jais|gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|"
              "jina-v2-code|roberta-bpe",
     LIST(re_gpt2), .clean_spaces = true},
    {.names = "starcoder|refact|codeshell|exaone|minerva-7b", LIST(re_starcoder), .clean_spaces = true},
    {.names = "command-r|smollm", LIST(re_starcoder)},
    {.names = "qwen2|deepseek-r1-qwen", LIST(re_qwen2)},
    {.names = "stablelm2|megrez", LIST(re_qwen2), .clean_spaces = true},
    {.names = "poro-chat", LIST(re_bloom)},
    {.names = "bloom|gpt3-finnish", LIST(re_bloom), .clean_spaces = true},
    {.names = "chatglm-bpe", LIST(re_llama3), .clean_spaces = true, .no_bos = true},
    {.names = "viking", LIST(re_viking)},
    {.names = "tekken", LIST(re_tekken), .ignore_merges = true, .force_add_bos = true},
    {.names = "chameleon", LIST(re_chameleon), .force_add_bos = true},
};

static bool name_in(const char *names, const char *s, size_t len) {
    const char *p = names;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == len && memcmp(p, s, len) == 0) return true;
        if (!bar) return false;
        p = bar + 1;
    }
}

bool tl_tok_pre_lookup(const char *name, size_t len, tl_tok_pre_info *info) {
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++) {
        const pre_entry *e = &k_pre[i];
        if (!name_in(e->names, name, len)) continue;
        *info = (tl_tok_pre_info){e->re, e->n_re, e->ignore_merges, e->clean_spaces, e->force_add_bos,
                                  e->no_bos};
        return true;
    }
    return false;
}

/* ---- GGUF loading ---- */

static int32_t get_id(const tl_gguf *g, const char *key, int32_t dflt, int32_t n_vocab) {
    int64_t v;
    if (!tl_gguf_get_i64(g, key, &v)) return dflt;
    if (v < 0 || v >= n_vocab) {
        TL_WARN("tokenizer: bad special token %s = %lld, using default %d", key, (long long)v, (int)dflt);
        return dflt;
    }
    return (int32_t)v;
}

static bool is_numeric_type(tl_gguf_type t) {
    return t != TL_GGUF_STRING && t != TL_GGUF_ARRAY && t != TL_GGUF_BOOL && t < TL_GGUF_TYPE_COUNT;
}

/* llama.cpp marks the special tokens of models named like phi-3 as eating
 * the whitespace to their right when parsed out of text. */
static bool name_has_phi3(const tl_gguf *g) {
    tl_gguf_str s;
    if (!tl_gguf_get_str(g, "general.name", &s)) return false;
    char buf[256];
    size_t n = s.len < sizeof buf - 1 ? (size_t)s.len : sizeof buf - 1;
    for (size_t i = 0; i < n; i++) {
        char c = s.ptr[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[n] = 0;
    return strstr(buf, "phi-3") || strstr(buf, "phi3");
}

static bool text_is(tl_tok_str s, const char *c) {
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

tl_status tl_tok_init_gguf(const tl_gguf *g, tl_tok **out, tl_err *err) {
    *out = NULL;
    tl_tok_vocab_desc d;
    tl_tok_vocab_desc_defaults(&d);
    tl_tok_str *toks = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    uint16_t *extra = NULL;
    char *tmpl = NULL;
    char **pre_rx = NULL; /* NUL-terminated copies of tokenizer.ggml.pre_regex */
    int n_pre_rx = 0;
    tl_status st = TL_OK;

    tl_gguf_str model;
    if (!tl_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return tl_err_set(err, TL_ERR_MISSING, "tokenizer.ggml.model missing");
    if (tl_gguf_str_eq(model, "llama")) {
        d.kind = TL_TOK_SPM;
    } else if (tl_gguf_str_eq(model, "gpt2")) {
        d.kind = TL_TOK_BPE;
    } else {
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tokenizer model '%.*s' not supported",
                          (int)(model.len > 64 ? 64 : model.len), model.ptr);
    }

    const tl_gguf_kv *kt = tl_gguf_find(g, "tokenizer.ggml.tokens");
    if (!kt) return tl_err_set(err, TL_ERR_MISSING, "tokenizer.ggml.tokens missing");
    if (kt->type != TL_GGUF_ARRAY || kt->arr_type != TL_GGUF_STRING)
        return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.tokens is not a string array");
    if (kt->arr_n == 0 || kt->arr_n > INT32_MAX)
        return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries",
                          (unsigned long long)kt->arr_n);
    int32_t n = (int32_t)kt->arr_n;
    d.n_tokens = n;
    toks = malloc((size_t)n * sizeof *toks);
    if (!toks) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++) {
        tl_gguf_str s;
        if (!tl_gguf_arr_str(g, kt, (uint64_t)i, &s) || s.len > UINT32_MAX) {
            st = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.tokens[%d] unreadable", (int)i);
            goto done;
        }
        toks[i] = (tl_tok_str){s.ptr, (size_t)s.len};
    }
    d.tokens = toks;

    const tl_gguf_kv *ks = tl_gguf_find(g, "tokenizer.ggml.scores");
    if (ks) {
        if (ks->type != TL_GGUF_ARRAY || !is_numeric_type(ks->arr_type) || ks->arr_n != (uint64_t)n) {
            st = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.scores: expected %d numbers", (int)n);
            goto done;
        }
        scores = malloc((size_t)n * sizeof *scores);
        if (!scores) { st = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
        for (int32_t i = 0; i < n; i++) scores[i] = (float)tl_gguf_arr_f64(ks, (uint64_t)i);
        d.scores = scores;
    }
    const tl_gguf_kv *ky = tl_gguf_find(g, "tokenizer.ggml.token_type");
    if (ky) {
        if (ky->type != TL_GGUF_ARRAY || !is_numeric_type(ky->arr_type) || ky->arr_n != (uint64_t)n) {
            st = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.token_type: expected %d integers", (int)n);
            goto done;
        }
        types = malloc((size_t)n * sizeof *types);
        if (!types) { st = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
        for (int32_t i = 0; i < n; i++) {
            int64_t v = tl_gguf_arr_i64(ky, (uint64_t)i);
            types[i] = (v < 0 || v > 6) ? TL_TOKTYPE_UNDEFINED : (int32_t)v;
        }
        d.types = types;
    }

    /* defaults per model, as llama.cpp */
    if (d.kind == TL_TOK_SPM) {
        d.bos = 1;
        d.eos = 2;
        d.unk = 0;
        d.add_space_prefix = true;
        d.add_bos = true;
        d.clean_spaces = false;
    } else {
        d.bos = 11;
        d.eos = 11;
        d.add_space_prefix = false;
        d.clean_spaces = true;
        tl_gguf_str pre = {"", 0};
        bool have_pre = tl_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
        tl_tok_pre_info info;
        if (!have_pre) {
            TL_WARN("tokenizer: tokenizer.ggml.pre missing, using 'default' (quality may suffer)");
            tl_tok_pre_lookup("default", 7, &info);
        } else if (!tl_tok_pre_lookup(pre.ptr, (size_t)pre.len, &info)) {
            TL_WARN("tokenizer: unknown pre-tokenizer '%.*s', using gpt-2's",
                    (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
            tl_tok_pre_lookup("gpt-2", 5, &info);
        }
        d.regexes = info.regexes;
        d.n_regexes = info.n_regexes;
        /* A file converted from tokenizer.json carries its own Split regexes;
         * they win over the name table (the name is only a hint then). */
        const tl_gguf_kv *kr = tl_gguf_find(g, "tokenizer.ggml.pre_regex");
        if (kr) {
            if (kr->type != TL_GGUF_ARRAY || kr->arr_type != TL_GGUF_STRING || kr->arr_n == 0 ||
                kr->arr_n > 64) {
                st = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.pre_regex must be 1..64 strings");
                goto done;
            }
            pre_rx = calloc((size_t)kr->arr_n, sizeof *pre_rx);
            if (!pre_rx) { st = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
            for (uint64_t i = 0; i < kr->arr_n; i++, n_pre_rx++) {
                tl_gguf_str s;
                if (!tl_gguf_arr_str(g, kr, i, &s) || !(pre_rx[i] = strndup(s.ptr, (size_t)s.len))) {
                    st = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.pre_regex[%llu] unreadable",
                                    (unsigned long long)i);
                    goto done;
                }
            }
            d.regexes = (const char *const *)pre_rx;
            d.n_regexes = n_pre_rx;
        }
        d.ignore_merges = info.ignore_merges;
        d.clean_spaces = info.clean_spaces;
        if (info.force_add_bos) d.add_bos = true;
        if (info.no_bos) d.bos = -1;

        const tl_gguf_kv *km = tl_gguf_find(g, "tokenizer.ggml.merges");
        if (!km) {
            st = tl_err_set(err, TL_ERR_MISSING, "tokenizer.ggml.merges missing");
            goto done;
        }
        if (km->type != TL_GGUF_ARRAY || km->arr_type != TL_GGUF_STRING || km->arr_n > INT32_MAX) {
            st = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.merges is not a string array");
            goto done;
        }
        merges = malloc((size_t)(km->arr_n ? km->arr_n : 1) * 2 * sizeof *merges);
        if (!merges) { st = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
        for (uint64_t i = 0; i < km->arr_n; i++) {
            tl_gguf_str s;
            if (!tl_gguf_arr_str(g, km, i, &s)) {
                st = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.ggml.merges[%llu] unreadable",
                                (unsigned long long)i);
                goto done;
            }
            /* "left right", split at the first space after the first byte */
            const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
            if (sp) {
                merges[2 * i] = (tl_tok_str){s.ptr, (size_t)(sp - s.ptr)};
                merges[2 * i + 1] = (tl_tok_str){sp + 1, (size_t)(s.ptr + s.len - sp - 1)};
            } else {
                merges[2 * i] = merges[2 * i + 1] = (tl_tok_str){"", 0};
            }
        }
        d.merges = merges;
        d.n_merges = (int64_t)km->arr_n;
    }

    bool b;
    if (tl_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) d.add_space_prefix = b;
    d.bos = get_id(g, "tokenizer.ggml.bos_token_id", d.bos, n);
    d.eos = get_id(g, "tokenizer.ggml.eos_token_id", d.eos, n);
    d.eot = get_id(g, "tokenizer.ggml.eot_token_id", d.eot, n);
    d.eom = get_id(g, "tokenizer.ggml.eom_token_id", d.eom, n);
    d.unk = get_id(g, "tokenizer.ggml.unknown_token_id", d.unk, n);
    d.sep = get_id(g, "tokenizer.ggml.seperator_token_id", d.sep, n);
    d.pad = get_id(g, "tokenizer.ggml.padding_token_id", d.pad, n);
    d.fim_pre = get_id(g, "tokenizer.ggml.fim_pre_token_id", d.fim_pre, n);
    d.fim_suf = get_id(g, "tokenizer.ggml.fim_suf_token_id", d.fim_suf, n);
    d.fim_mid = get_id(g, "tokenizer.ggml.fim_mid_token_id", d.fim_mid, n);
    d.fim_pad = get_id(g, "tokenizer.ggml.fim_pad_token_id", d.fim_pad, n);
    d.fim_rep = get_id(g, "tokenizer.ggml.fim_rep_token_id", d.fim_rep, n);
    d.fim_sep = get_id(g, "tokenizer.ggml.fim_sep_token_id", d.fim_sep, n);
    d.fim_pre = get_id(g, "tokenizer.ggml.prefix_token_id", d.fim_pre, n);
    d.fim_suf = get_id(g, "tokenizer.ggml.suffix_token_id", d.fim_suf, n);
    d.fim_mid = get_id(g, "tokenizer.ggml.middle_token_id", d.fim_mid, n);
    if (tl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) d.add_bos = b;
    if (tl_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) d.add_eos = b;
    d.detect_special_by_text = true;

    if (name_has_phi3(g)) {
        extra = calloc((size_t)n, sizeof *extra);
        if (!extra) { st = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
        static const char *const eog_like[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                               "<|endoftext|>", "<|eom_id|>", "<EOT>", NULL};
        for (int32_t i = 0; i < n; i++) {
            int32_t ty = types ? types[i] : TL_TOKTYPE_NORMAL;
            bool special = ty == TL_TOKTYPE_CONTROL || ty == TL_TOKTYPE_USER_DEFINED ||
                           ty == TL_TOKTYPE_UNKNOWN;
            for (int k = 0; !special && eog_like[k]; k++) special = text_is(toks[i], eog_like[k]);
            if (special || text_is(toks[i], "</s>")) extra[i] = TL_TATTR_RSTRIP;
            if (text_is(toks[i], "<unk>") || text_is(toks[i], "<s>") || text_is(toks[i], "<|endoftext|>"))
                extra[i] = 0;
        }
        d.extra_attr = extra;
    }

    tl_gguf_str ct;
    if (tl_gguf_get_str(g, "tokenizer.chat_template", &ct)) {
        tmpl = malloc((size_t)ct.len + 1);
        if (!tmpl) { st = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
        memcpy(tmpl, ct.ptr, (size_t)ct.len);
        tmpl[ct.len] = 0;
        d.chat_template = tmpl;
    }

    st = tl_tok_init_vocab(&d, out, err);
done:
    for (int i = 0; i < n_pre_rx; i++) free(pre_rx[i]);
    free(pre_rx);
    free(toks);
    free(merges);
    free(scores);
    free(types);
    free(extra);
    free(tmpl);
    return st;
}
