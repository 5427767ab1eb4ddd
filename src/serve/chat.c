/* chat.c — chat template families: detection and rendering.
 *
 * Detection follows llama.cpp's llm_chat_detect_template marker tests, in
 * the same order, because several families share markers (e.g. "[INST]" is
 * both llama2 and mistral; "<|assistant|>" is phi3, falcon3 and glmedge) and
 * the order is what disambiguates them. Each renderer reproduces the output
 * of its family's reference Jinja template for text-only messages. */
#include "serve/chat.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- string builder */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return; }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

/* Appends s with leading/trailing ASCII whitespace removed (Jinja's |trim,
 * llama.cpp's trim()). */
static void sb_add_trim(sbuf *b, const char *s) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    sb_addn(b, s, n);
}

static bool has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }
static bool is(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* ------------------------------------------------------------- families */

typedef enum family {
    F_NONE = 0,
    F_CHATML, F_PHI4, F_MISTRAL_V1, F_MISTRAL_V3, F_MISTRAL_V3_TEKKEN, F_MISTRAL_V7,
    F_LLAMA2, F_LLAMA2_SYS, F_LLAMA2_SYS_BOS, F_LLAMA2_SYS_STRIP,
    F_PHI3, F_FALCON3, F_GLMEDGE, F_ZEPHYR, F_MONARCH, F_GEMMA, F_ORION, F_OPENCHAT,
    F_VICUNA, F_VICUNA_ORCA, F_DEEPSEEK, F_COMMAND_R, F_LLAMA3, F_CHATGLM3, F_CHATGLM4,
    F_MINICPM, F_DEEPSEEK2, F_DEEPSEEK3, F_EXAONE3, F_GRANITE, F_GIGACHAT, F_MEGREZ,
    F_COUNT
} family;

static const char *const family_names[F_COUNT] = {
    [F_CHATML] = "chatml", [F_PHI4] = "phi4",
    [F_MISTRAL_V1] = "mistral-v1", [F_MISTRAL_V3] = "mistral-v3",
    [F_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken", [F_MISTRAL_V7] = "mistral-v7",
    [F_LLAMA2] = "llama2", [F_LLAMA2_SYS] = "llama2-sys",
    [F_LLAMA2_SYS_BOS] = "llama2-sys-bos", [F_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [F_PHI3] = "phi3", [F_FALCON3] = "falcon3", [F_GLMEDGE] = "glmedge", [F_ZEPHYR] = "zephyr",
    [F_MONARCH] = "monarch", [F_GEMMA] = "gemma", [F_ORION] = "orion",
    [F_OPENCHAT] = "openchat", [F_VICUNA] = "vicuna", [F_VICUNA_ORCA] = "vicuna-orca",
    [F_DEEPSEEK] = "deepseek", [F_COMMAND_R] = "command-r", [F_LLAMA3] = "llama3",
    [F_CHATGLM3] = "chatglm3", [F_CHATGLM4] = "chatglm4", [F_DEEPSEEK2] = "deepseek2",
    [F_DEEPSEEK3] = "deepseek3", [F_EXAONE3] = "exaone3", [F_GRANITE] = "granite",
    [F_MINICPM] = "minicpm", [F_GIGACHAT] = "gigachat", [F_MEGREZ] = "megrez",
};

#define USER_ZH "<\xe7\x94\xa8\xe6\x88\xb7>"   /* "<用户>", MiniCPM's user tag */

static family detect_from_text(const char *t) {
    for (int f = 1; f < F_COUNT; f++)
        if (is(t, family_names[f])) return (family)f;

    if (has(t, "<|im_start|>")) return has(t, "<|im_sep|>") ? F_PHI4 : F_CHATML;
    if (strncmp(t, "mistral", 7) == 0 || has(t, "[INST]")) {
        if (has(t, "[SYSTEM_PROMPT]")) return F_MISTRAL_V7;
        /* the official v1 template builds ' [INST] ' + system_message; v3 and
         * v3-tekken carry tool markers */
        if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
            if (has(t, " [INST]")) return F_MISTRAL_V1;
            if (has(t, "\"[INST]\"")) return F_MISTRAL_V3_TEKKEN;
            return F_MISTRAL_V3;
        }
        if (has(t, "content.strip()")) return F_LLAMA2_SYS_STRIP;
        if (has(t, "bos_token + '[INST]")) return F_LLAMA2_SYS_BOS;
        if (has(t, "<<SYS>>")) return F_LLAMA2_SYS;
        return F_LLAMA2;
    }
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) return F_PHI3;
    if (has(t, "<|assistant|>") && has(t, "<|user|>")) return has(t, "</s>") ? F_FALCON3 : F_GLMEDGE;
    if (has(t, "<|user|>") && has(t, "<|endoftext|>")) return F_ZEPHYR;
    if (has(t, "bos_token + message['role']")) return F_MONARCH;
    if (has(t, "<start_of_turn>")) return F_GEMMA;
    if (has(t, "'\\n\\nAssistant: ' + eos_token")) return F_ORION;
    if (has(t, "GPT4 Correct ")) return F_OPENCHAT;
    if (has(t, "USER: ") && has(t, "ASSISTANT: "))
        return has(t, "SYSTEM: ") ? F_VICUNA_ORCA : F_VICUNA;
    if (has(t, "### Instruction:") && has(t, "<|EOT|>")) return F_DEEPSEEK;
    if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>")) return F_COMMAND_R;
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) return F_LLAMA3;
    if (has(t, "[gMASK]sop")) return F_CHATGLM3;
    if (has(t, "[gMASK]<sop>")) return F_CHATGLM4;
    if (has(t, USER_ZH)) return F_MINICPM;
    if (has(t, "'Assistant: ' + message['content'] + eos_token")) return F_DEEPSEEK2;
    /* full-width bars and the U+2581 block in DeepSeek-V3's special tokens */
    if (has(t, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") && has(t, "<\xef\xbd\x9c" "User\xef\xbd\x9c>") &&
        has(t, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"))
        return F_DEEPSEEK3;
    if (has(t, "[|system|]") && has(t, "[|assistant|]") && has(t, "[|endofturn|]")) return F_EXAONE3;
    if (has(t, "<|start_of_role|>")) return F_GRANITE;
    if (has(t, "message['role'] + additional_special_tokens[0] + message['content'] + "
               "additional_special_tokens[1]"))
        return F_GIGACHAT;
    if (has(t, "<|role_start|>")) return F_MEGREZ;
    return F_NONE;
}

/* Built-in choice for models that ship no template. Plain "llama" covers
 * base and chat models alike, so it gets nothing rather than a guess. */
static family detect_from_arch(const char *arch) {
    if (!arch) return F_NONE;
    if (strncmp(arch, "qwen2", 5) == 0 || strncmp(arch, "qwen3", 5) == 0) return F_CHATML;
    if (strncmp(arch, "gemma", 5) == 0) return F_GEMMA;
    if (is(arch, "phi3")) return F_PHI3;
    if (is(arch, "command-r") || is(arch, "cohere2")) return F_COMMAND_R;
    if (is(arch, "granite")) return F_GRANITE;
    if (is(arch, "exaone")) return F_EXAONE3;
    return F_NONE;
}

static family detect(const char *tmpl, const char *arch) {
    if (tmpl && *tmpl) return detect_from_text(tmpl);
    return detect_from_arch(arch);
}

const char *tl_chat_family_name(const char *tmpl, const char *arch) {
    family f = detect(tmpl, arch);
    return f == F_NONE ? NULL : family_names[f];
}

/* ---------------------------------------------------- ChatML extensions */

/* A ChatML template's default system prompt: a literal
 * '<|im_start|>system\n...<|im_end|>' (the newline written either as an
 * escape or raw) whose body is plain text, as in SmolLM2's and Qwen2's
 * "{% if loop.first and messages[0]['role'] != 'system' %}" branch. Bodies
 * that contain template syntax (quotes, braces, '+') are expressions such as
 * messages[0].content and are skipped. Returns a caller-frees string or NULL. */
static char *chatml_default_system(const char *t) {
    static const char open[] = "<|im_start|>system";
    static const char close[] = "<|im_end|>";
    for (const char *s = strstr(t, open); s; s = strstr(s + 1, open)) {
        const char *b = s + sizeof open - 1;
        if (b[0] == '\n') b += 1;
        else if (b[0] == '\\' && b[1] == 'n') b += 2;
        else continue;
        const char *e = strstr(b, close);
        if (!e || e == b) continue;
        if (memchr(b, '\'', (size_t)(e - b)) || memchr(b, '"', (size_t)(e - b)) ||
            memchr(b, '{', (size_t)(e - b)) || memchr(b, '}', (size_t)(e - b)) ||
            memchr(b, '+', (size_t)(e - b)))
            continue;
        char *out = malloc((size_t)(e - b) + 1);
        if (!out) return NULL;
        size_t n = 0;
        for (const char *q = b; q < e; q++) {
            if (q[0] == '\\' && q + 1 < e && q[1] == 'n') { out[n++] = '\n'; q++; }
            else out[n++] = *q;
        }
        out[n] = 0;
        return out;
    }
    return NULL;
}

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static bool ends_with(const char *s, const char *p) {
    size_t n = strlen(s), m = strlen(p);
    return n >= m && memcmp(s + n - m, p, m) == 0;
}

/* Appends s[0..n) with the given characters stripped from the chosen ends. */
static void sb_add_strip_nl(sbuf *b, const char *s, size_t n, bool left, bool right) {
    if (left) while (n && *s == '\n') s++, n--;
    if (right) while (n && s[n - 1] == '\n') n--;
    sb_addn(b, s, n);
}

/* Qwen3's template (recognised by its reasoning_content handling): assistant
 * turns drop their <think>...</think> part, except the turns after the last
 * real user query, which show it (an empty one for the final turn). */
static void render_qwen3_assistant(sbuf *b, const char *content, bool show_think) {
    const char *close = strstr(content, "</think>");
    const char *body = content;
    const char *rs = "", *re = rs;           /* reasoning [rs, re) */
    if (close) {
        /* content = after the last </think>; reasoning = before the first,
         * after the last <think> in that part */
        const char *last = close, *q;
        while ((q = strstr(last + 1, "</think>"))) last = q;
        body = last + 8;
        rs = content;
        re = close;
        for (const char *o = content; (o = strstr(o, "<think>")) && o < close; o += 7) rs = o + 7;
    }
    sb_add(b, "<|im_start|>assistant\n");
    if (show_think) {
        sb_add(b, "<think>\n");
        /* reasoning_content.strip('\n') after the template's own
         * rstrip('\n') / lstrip('\n') */
        sb_add_strip_nl(b, rs, (size_t)(re - rs), true, true);
        sb_add(b, "\n</think>\n\n");
        sb_add_strip_nl(b, body, strlen(body), true, false);
    } else if (close) {
        sb_add_strip_nl(b, body, strlen(body), true, false);
    } else {
        sb_add(b, body);
    }
    sb_add(b, "<|im_end|>\n");
}

static void render_chatml(sbuf *b, const char *tmpl, const tl_chat_msg *m, int n, bool add_ass) {
    char *def = tmpl ? chatml_default_system(tmpl) : NULL;
    if (def && n > 0 && !is(m[0].role, "system")) {
        sb_add(b, "<|im_start|>system\n");
        sb_add(b, def);
        sb_add(b, "<|im_end|>\n");
    }
    free(def);
    bool qwen3 = tmpl && has(tmpl, "reasoning_content") && has(tmpl, "</think>");
    int last_query = n - 1;
    if (qwen3) {
        for (int i = n - 1; i >= 0; i--) {
            if (is(m[i].role, "user") && !(starts_with(m[i].content, "<tool_response>") &&
                                           ends_with(m[i].content, "</tool_response>"))) {
                last_query = i;
                break;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (qwen3 && is(m[i].role, "assistant")) {
            const char *c = m[i].content;
            bool has_reasoning = false;
            const char *close = strstr(c, "</think>");
            if (close) {
                /* non-empty once the surrounding newlines are stripped */
                const char *rs = c;
                for (const char *o = c; (o = strstr(o, "<think>")) && o < close; o += 7) rs = o + 7;
                for (const char *q = rs; q < close; q++)
                    if (*q != '\n') { has_reasoning = true; break; }
            }
            render_qwen3_assistant(b, c, i > last_query && (i == n - 1 || has_reasoning));
            continue;
        }
        sb_add(b, "<|im_start|>");
        sb_add(b, m[i].role);
        sb_add(b, "\n");
        sb_add(b, m[i].content);
        sb_add(b, "<|im_end|>\n");
    }
    if (add_ass) sb_add(b, "<|im_start|>assistant\n");
}

/* ------------------------------------------------------ other families */

static void render_mistral(sbuf *b, family f, const tl_chat_msg *m, int n) {
    const char *lead = f == F_MISTRAL_V1 ? " " : "";
    const char *trail = f == F_MISTRAL_V3_TEKKEN ? "" : " ";
    bool in_turn = false;
    for (int i = 0; i < n; i++) {
        if (!in_turn) {
            sb_add(b, lead);
            sb_add(b, "[INST]");
            sb_add(b, trail);
            in_turn = true;
        }
        if (is(m[i].role, "system")) {
            sb_add(b, m[i].content);
            sb_add(b, "\n\n");
        } else if (is(m[i].role, "user")) {
            sb_add(b, m[i].content);
            sb_add(b, lead);
            sb_add(b, "[/INST]");
        } else {
            sb_add(b, trail);
            if (f == F_MISTRAL_V3) sb_add_trim(b, m[i].content);
            else sb_add(b, m[i].content);
            sb_add(b, "</s>");
            in_turn = false;
        }
    }
}

static void render_llama2(sbuf *b, family f, const tl_chat_msg *m, int n) {
    bool sys_ok = f != F_LLAMA2;
    bool bos_in_history = f == F_LLAMA2_SYS_BOS;
    bool strip = f == F_LLAMA2_SYS_STRIP;
    bool in_turn = true;   /* the first [INST] is written up front, BOS left to the tokenizer */
    sb_add(b, "[INST] ");
    for (int i = 0; i < n; i++) {
        if (!in_turn) {
            in_turn = true;
            sb_add(b, bos_in_history ? "<s>[INST] " : "[INST] ");
        }
        const char *c = m[i].content;
        if (is(m[i].role, "system")) {
            if (sys_ok) {
                sb_add(b, "<<SYS>>\n");
                if (strip) sb_add_trim(b, c); else sb_add(b, c);
                sb_add(b, "\n<</SYS>>\n\n");
            } else {
                if (strip) sb_add_trim(b, c); else sb_add(b, c);
                sb_add(b, "\n");
            }
        } else if (is(m[i].role, "user")) {
            if (strip) sb_add_trim(b, c); else sb_add(b, c);
            sb_add(b, " [/INST]");
        } else {
            if (strip) sb_add_trim(b, c); else sb_add(b, c);
            sb_add(b, "</s>");
            in_turn = false;
        }
    }
}

static void render_gemma(sbuf *b, const tl_chat_msg *m, int n, bool add_ass) {
    /* Gemma has no system role: the system text is merged into the next
     * user turn, separated by a blank line. */
    const char *sys = NULL;
    for (int i = 0; i < n; i++) {
        const char *role = m[i].role;
        if (is(role, "system")) {
            sys = m[i].content;
            continue;
        }
        bool model = is(role, "assistant") || is(role, "model");
        sb_add(b, "<start_of_turn>");
        sb_add(b, model ? "model" : role);
        sb_add(b, "\n");
        if (sys && !model) {
            size_t before = b->len;
            sb_add_trim(b, sys);
            if (b->len != before) sb_add(b, "\n\n");
            sys = NULL;
        }
        sb_add_trim(b, m[i].content);
        sb_add(b, "<end_of_turn>\n");
    }
    if (add_ass) sb_add(b, "<start_of_turn>model\n");
}

/* "<|role|>" + sep + content + end for every message, then the open turn. */
static void render_tagged(sbuf *b, const tl_chat_msg *m, int n, const char *sep, const char *end,
                          bool add_ass, const char *open) {
    for (int i = 0; i < n; i++) {
        sb_add(b, "<|");
        sb_add(b, m[i].role);
        sb_add(b, "|>");
        sb_add(b, sep);
        sb_add(b, m[i].content);
        sb_add(b, end);
    }
    if (add_ass) sb_add(b, open);
}

static void render(sbuf *b, family f, const char *tmpl, const tl_chat_msg *m, int n, bool add_ass) {
    switch (f) {
    case F_NONE:
    case F_COUNT:
        return;
    case F_CHATML:
        render_chatml(b, tmpl, m, n, add_ass);
        return;
    case F_PHI4:
        for (int i = 0; i < n; i++) {
            sb_add(b, "<|im_start|>");
            sb_add(b, m[i].role);
            sb_add(b, "<|im_sep|>");
            sb_add(b, m[i].content);
            sb_add(b, "<|im_end|>");
        }
        if (add_ass) sb_add(b, "<|im_start|>assistant<|im_sep|>");
        return;
    case F_MISTRAL_V7:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                sb_add(b, "[SYSTEM_PROMPT] ");
                sb_add(b, m[i].content);
                sb_add(b, "[/SYSTEM_PROMPT]");
            } else if (is(m[i].role, "user")) {
                sb_add(b, "[INST] ");
                sb_add(b, m[i].content);
                sb_add(b, "[/INST]");
            } else {
                sb_add(b, " ");
                sb_add(b, m[i].content);
                sb_add(b, "</s>");
            }
        }
        return;
    case F_MISTRAL_V1:
    case F_MISTRAL_V3:
    case F_MISTRAL_V3_TEKKEN:
        render_mistral(b, f, m, n);
        return;
    case F_LLAMA2:
    case F_LLAMA2_SYS:
    case F_LLAMA2_SYS_BOS:
    case F_LLAMA2_SYS_STRIP:
        render_llama2(b, f, m, n);
        return;
    case F_PHI3:
        render_tagged(b, m, n, "\n", "<|end|>\n", add_ass, "<|assistant|>\n");
        return;
    case F_FALCON3:
        render_tagged(b, m, n, "\n", "\n", add_ass, "<|assistant|>\n");
        return;
    case F_ZEPHYR:
        render_tagged(b, m, n, "\n", "<|endoftext|>\n", add_ass, "<|assistant|>\n");
        return;
    case F_GLMEDGE:
        render_tagged(b, m, n, "\n", "", add_ass, "<|assistant|>");
        return;
    case F_CHATGLM3:
        sb_add(b, "[gMASK]sop");
        render_tagged(b, m, n, "\n ", "", add_ass, "<|assistant|>");
        return;
    case F_CHATGLM4:
        sb_add(b, "[gMASK]<sop>");
        render_tagged(b, m, n, "\n", "", add_ass, "<|assistant|>");
        return;
    case F_MONARCH:
        for (int i = 0; i < n; i++) {
            if (i > 0) sb_add(b, "<s>");   /* BOS inside the history, not before the first */
            sb_add(b, m[i].role);
            sb_add(b, "\n");
            sb_add(b, m[i].content);
            sb_add(b, "</s>\n");
        }
        if (add_ass) sb_add(b, "<s>assistant\n");
        return;
    case F_GEMMA:
        render_gemma(b, m, n, add_ass);
        return;
    case F_ORION: {
        const char *sys = NULL;
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                sys = m[i].content;
            } else if (is(m[i].role, "user")) {
                sb_add(b, "Human: ");
                if (sys && *sys) {
                    sb_add(b, sys);
                    sb_add(b, "\n\n");
                }
                sys = NULL;
                sb_add(b, m[i].content);
                sb_add(b, "\n\nAssistant: </s>");
            } else {
                sb_add(b, m[i].content);
                sb_add(b, "</s>");
            }
        }
        return;
    }
    case F_OPENCHAT:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                sb_add(b, m[i].content);
            } else {
                char first = (char)toupper((unsigned char)m[i].role[0]);
                sb_add(b, "GPT4 Correct ");
                if (first) {
                    sb_addn(b, &first, 1);
                    sb_add(b, m[i].role + 1);
                }
                sb_add(b, ": ");
                sb_add(b, m[i].content);
            }
            sb_add(b, "<|end_of_turn|>");
        }
        if (add_ass) sb_add(b, "GPT4 Correct Assistant:");
        return;
    case F_VICUNA:
    case F_VICUNA_ORCA:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                if (f == F_VICUNA_ORCA) {
                    sb_add(b, "SYSTEM: ");
                    sb_add(b, m[i].content);
                    sb_add(b, "\n");
                } else {
                    sb_add(b, m[i].content);
                    sb_add(b, "\n\n");
                }
            } else if (is(m[i].role, "user")) {
                sb_add(b, "USER: ");
                sb_add(b, m[i].content);
                sb_add(b, "\n");
            } else if (is(m[i].role, "assistant")) {
                sb_add(b, "ASSISTANT: ");
                sb_add(b, m[i].content);
                sb_add(b, "</s>\n");
            }
        }
        if (add_ass) sb_add(b, "ASSISTANT:");
        return;
    case F_DEEPSEEK:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                sb_add(b, m[i].content);
            } else if (is(m[i].role, "user")) {
                sb_add(b, "### Instruction:\n");
                sb_add(b, m[i].content);
                sb_add(b, "\n");
            } else if (is(m[i].role, "assistant")) {
                sb_add(b, "### Response:\n");
                sb_add(b, m[i].content);
                sb_add(b, "\n<|EOT|>\n");
            }
        }
        if (add_ass) sb_add(b, "### Response:\n");
        return;
    case F_COMMAND_R:
        for (int i = 0; i < n; i++) {
            const char *tok = is(m[i].role, "system") ? "<|SYSTEM_TOKEN|>"
                            : is(m[i].role, "user")   ? "<|USER_TOKEN|>"
                            : is(m[i].role, "assistant") ? "<|CHATBOT_TOKEN|>" : NULL;
            if (!tok) continue;
            sb_add(b, "<|START_OF_TURN_TOKEN|>");
            sb_add(b, tok);
            sb_add_trim(b, m[i].content);
            sb_add(b, "<|END_OF_TURN_TOKEN|>");
        }
        if (add_ass) sb_add(b, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
        return;
    case F_LLAMA3:
        for (int i = 0; i < n; i++) {
            sb_add(b, "<|start_header_id|>");
            sb_add(b, m[i].role);
            sb_add(b, "<|end_header_id|>\n\n");
            sb_add_trim(b, m[i].content);
            sb_add(b, "<|eot_id|>");
        }
        if (add_ass) sb_add(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        return;
    case F_DEEPSEEK2:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                sb_add(b, m[i].content);
                sb_add(b, "\n\n");
            } else if (is(m[i].role, "user")) {
                sb_add(b, "User: ");
                sb_add(b, m[i].content);
                sb_add(b, "\n\n");
            } else if (is(m[i].role, "assistant")) {
                sb_add(b, "Assistant: ");
                sb_add(b, m[i].content);
                sb_add(b, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
            }
        }
        if (add_ass) sb_add(b, "Assistant:");
        return;
    case F_DEEPSEEK3:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                sb_add(b, m[i].content);
                sb_add(b, "\n\n");
            } else if (is(m[i].role, "user")) {
                sb_add(b, "<\xef\xbd\x9c" "User\xef\xbd\x9c>");
                sb_add(b, m[i].content);
            } else if (is(m[i].role, "assistant")) {
                sb_add(b, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
                sb_add(b, m[i].content);
                sb_add(b, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
            }
        }
        if (add_ass) sb_add(b, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
        return;
    case F_EXAONE3:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "system")) {
                sb_add(b, "[|system|]");
                sb_add_trim(b, m[i].content);
                sb_add(b, "[|endofturn|]\n");
            } else if (is(m[i].role, "user")) {
                sb_add(b, "[|user|]");
                sb_add_trim(b, m[i].content);
                sb_add(b, "\n");
            } else if (is(m[i].role, "assistant")) {
                sb_add(b, "[|assistant|]");
                sb_add_trim(b, m[i].content);
                sb_add(b, "[|endofturn|]\n");
            }
        }
        if (add_ass) sb_add(b, "[|assistant|]");
        return;
    case F_GRANITE:
        for (int i = 0; i < n; i++) {
            sb_add(b, "<|start_of_role|>");
            sb_add(b, m[i].role);
            sb_add(b, "<|end_of_role|>");
            sb_add(b, m[i].content);
            sb_add(b, "<|end_of_text|>\n");
        }
        if (add_ass) sb_add(b, "<|start_of_role|>assistant<|end_of_role|>\n");
        return;
    case F_MINICPM:
        for (int i = 0; i < n; i++) {
            if (is(m[i].role, "user")) {
                sb_add(b, USER_ZH);
                sb_add_trim(b, m[i].content);
                sb_add(b, "<AI>");
            } else {
                sb_add_trim(b, m[i].content);
            }
        }
        return;
    case F_GIGACHAT: {
        int i = 0;
        sb_add(b, "<s>");   /* written by the template itself, BOS included */
        if (n > 0 && is(m[0].role, "system")) {
            sb_add(b, m[0].content);
            sb_add(b, "<|message_sep|>");
            i = 1;
        }
        for (; i < n; i++) {
            if (is(m[i].role, "user")) {
                sb_add(b, "user<|role_sep|>");
                sb_add(b, m[i].content);
                sb_add(b, "<|message_sep|>available functions<|role_sep|>[]<|message_sep|>");
            } else if (is(m[i].role, "assistant")) {
                sb_add(b, "assistant<|role_sep|>");
                sb_add(b, m[i].content);
                sb_add(b, "<|message_sep|>");
            }
        }
        if (add_ass) sb_add(b, "assistant<|role_sep|>");
        return;
    }
    case F_MEGREZ:
        for (int i = 0; i < n; i++) {
            sb_add(b, "<|role_start|>");
            sb_add(b, m[i].role);
            sb_add(b, "<|role_end|>");
            sb_add(b, m[i].content);
            sb_add(b, "<|turn_end|>");
        }
        if (add_ass) sb_add(b, "<|role_start|>assistant<|role_end|>");
        return;
    }
}

char *tl_chat_apply(const char *tmpl, const char *arch, const tl_chat_msg *msgs, int n,
                    bool add_assistant) {
    if (n < 0 || (n > 0 && !msgs)) return NULL;
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content) return NULL;
    family f = detect(tmpl, arch);
    if (f == F_NONE) return NULL;
    /* Only a real template text can carry ChatML extras; a family name or
     * an arch fallback renders the plain family. */
    const char *text = tmpl && *tmpl && !is(tmpl, family_names[f]) ? tmpl : NULL;
    sbuf b = {0};
    sb_addn(&b, "", 0);   /* an empty conversation still yields "" */
    render(&b, f, text, msgs, n, add_assistant);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
