/* chat.h — built-in chat prompt formats.
 *
 * There is no Jinja interpreter: the template family is recognised from
 * marker strings in the model's template text (as llama.cpp's
 * llm_chat_detect_template does) and rendered by hand-written code that
 * reproduces what the template produces for plain text messages. A ChatML
 * template carrying a default system prompt for conversations that have none
 * (SmolLM2, Qwen2/2.5) is honoured: that literal is extracted and emitted;
 * Qwen3's handling of <think> blocks in past assistant turns is reproduced.
 *
 * The leading BOS is not written into the result (except by gigachat, whose
 * template spells "<s>" as text): the caller tokenizes
 * with add_special = true, which adds it where the vocabulary asks (this
 * matches llama.cpp's built-in formats; Jinja templates that print bos_token
 * themselves would otherwise produce it twice). Formats whose template writes
 * "<s>" inside the history (llama2-sys-bos, monarch, gigachat) keep it as
 * text, so tokenize with parse_special = true. Renderings match the model's
 * template for text-only system/user/assistant messages; tool calls and
 * other roles are passed through in the family's generic shape. */
#ifndef TL_SERVE_CHAT_H
#define TL_SERVE_CHAT_H

#include <stdbool.h>

typedef struct tl_chat_msg {
    const char *role;      /* "system", "user", "assistant" (others pass through) */
    const char *content;
} tl_chat_msg;

/* Renders msgs[0..n) and, if add_assistant, opens the assistant's turn.
 * tmpl: the model's template text (tokenizer.chat_template) or a family name
 * ("chatml", "llama3", "gemma", ... see tl_chat_family_name); NULL or ""
 * falls back on arch (the GGUF architecture name: qwen2/qwen3 -> chatml,
 * gemma* -> gemma, phi3 -> phi3). Returns a caller-frees (free()) string,
 * or NULL when no format applies (unknown template, no fallback for the
 * arch, n < 0, a NULL role/content) or on allocation failure. */
char *tl_chat_apply(const char *tmpl, const char *arch, const tl_chat_msg *msgs, int n,
                    bool add_assistant);

/* Name of the family tl_chat_apply would use for (tmpl, arch), e.g.
 * "chatml", "llama3"; NULL when none. Static string. */
const char *tl_chat_family_name(const char *tmpl, const char *arch);

#endif
