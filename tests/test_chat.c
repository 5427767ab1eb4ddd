/* test_chat.c — chat template detection and rendering.
 *
 * Expected strings for the fixture templates (llama3, qwen3 in
 * ../shared/fixtures/tokenizer/hf) and for SmolLM2's template were produced
 * by rendering the Jinja templates with jinja2 the way transformers does
 * (trim_blocks, lstrip_blocks, bos_token = "" since BOS is the tokenizer's
 * job). The per-family strings follow the formats as llama.cpp renders them. */
#include "harness.h"
#include "serve/chat.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

static const tl_chat_msg SYS_USER[] = {{"system", "You are terse."}, {"user", "Hello there"}};
static const tl_chat_msg USER_ONLY[] = {{"user", "  Hi!  "}};
static const tl_chat_msg THINK_HIST[] = {
    {"user", "q1"},
    {"assistant", "<think>\nreason1\n</think>\n\nans1"},
    {"user", "q2"},
    {"assistant", "<think>\nr2\n</think>\n\nans2"},
};

static void expect(const char *tmpl, const char *arch, const tl_chat_msg *m, int n, bool add,
                   const char *want, const char *what) {
    char *got = tl_chat_apply(tmpl, arch, m, n, add);
    if (!want) {
        CHECKF(got == NULL, "%s: expected no template, got \"%s\"", what, got);
    } else if (!got) {
        CHECKF(0, "%s: got NULL", what);
    } else {
        CHECKF(strcmp(got, want) == 0, "%s:\n  got  \"%s\"\n  want \"%s\"", what, got, want);
    }
    free(got);
}

static void test_families(void) {
    static const struct { const char *name, *want; } cases[] = {
        {"chatml", "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"},
        {"phi4", "<|im_start|>system<|im_sep|>You are terse.<|im_end|><|im_start|>user<|im_sep|>Hello there<|im_end|><|im_start|>assistant<|im_sep|>"},
        {"mistral-v1", " [INST] You are terse.\n\nHello there [/INST]"},
        {"mistral-v3", "[INST] You are terse.\n\nHello there[/INST]"},
        {"mistral-v3-tekken", "[INST]You are terse.\n\nHello there[/INST]"},
        {"mistral-v7", "[SYSTEM_PROMPT] You are terse.[/SYSTEM_PROMPT][INST] Hello there[/INST]"},
        {"llama2", "[INST] You are terse.\nHello there [/INST]"},
        {"mistral", "[INST] You are terse.\nHello there [/INST]"},   /* old pre-v1 = llama2 */
        {"llama2-sys", "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHello there [/INST]"},
        {"llama2-sys-bos", "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHello there [/INST]"},
        {"llama2-sys-strip", "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHello there [/INST]"},
        {"phi3", "<|system|>\nYou are terse.<|end|>\n<|user|>\nHello there<|end|>\n<|assistant|>\n"},
        {"falcon3", "<|system|>\nYou are terse.\n<|user|>\nHello there\n<|assistant|>\n"},
        {"glmedge", "<|system|>\nYou are terse.<|user|>\nHello there<|assistant|>"},
        {"zephyr", "<|system|>\nYou are terse.<|endoftext|>\n<|user|>\nHello there<|endoftext|>\n<|assistant|>\n"},
        {"monarch", "system\nYou are terse.</s>\n<s>user\nHello there</s>\n<s>assistant\n"},
        {"gemma", "<start_of_turn>user\nYou are terse.\n\nHello there<end_of_turn>\n<start_of_turn>model\n"},
        {"orion", "Human: You are terse.\n\nHello there\n\nAssistant: </s>"},
        {"openchat", "You are terse.<|end_of_turn|>GPT4 Correct User: Hello there<|end_of_turn|>GPT4 Correct Assistant:"},
        {"vicuna", "You are terse.\n\nUSER: Hello there\nASSISTANT:"},
        {"vicuna-orca", "SYSTEM: You are terse.\nUSER: Hello there\nASSISTANT:"},
        {"deepseek", "You are terse.### Instruction:\nHello there\n### Response:\n"},
        {"command-r", "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are terse.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"},
        {"llama3", "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
        {"chatglm3", "[gMASK]sop<|system|>\n You are terse.<|user|>\n Hello there<|assistant|>"},
        {"chatglm4", "[gMASK]<sop><|system|>\nYou are terse.<|user|>\nHello there<|assistant|>"},
        {"minicpm", "You are terse.<\xe7\x94\xa8\xe6\x88\xb7>Hello there<AI>"},
        {"deepseek2", "You are terse.\n\nUser: Hello there\n\nAssistant:"},
        {"deepseek3", "You are terse.\n\n<\xef\xbd\x9c" "User\xef\xbd\x9c>Hello there<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"},
        {"exaone3", "[|system|]You are terse.[|endofturn|]\n[|user|]Hello there\n[|assistant|]"},
        {"granite", "<|start_of_role|>system<|end_of_role|>You are terse.<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Hello there<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>\n"},
        {"gigachat", "<s>You are terse.<|message_sep|>user<|role_sep|>Hello there<|message_sep|>available functions<|role_sep|>[]<|message_sep|>assistant<|role_sep|>"},
        {"megrez", "<|role_start|>system<|role_end|>You are terse.<|turn_end|><|role_start|>user<|role_end|>Hello there<|turn_end|><|role_start|>assistant<|role_end|>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect(cases[i].name, NULL, SYS_USER, 2, true, cases[i].want, cases[i].name);

    /* multi-turn details: gemma trims and maps assistant -> model; llama2
     * reopens [INST] after an answer; phi3 without the open turn */
    const tl_chat_msg conv[] = {{"system", " S "}, {"user", " q1 "}, {"assistant", "a1"}, {"user", "q2"}};
    expect("gemma", NULL, conv, 4, true,
           "<start_of_turn>user\nS\n\nq1<end_of_turn>\n<start_of_turn>model\na1<end_of_turn>\n"
           "<start_of_turn>user\nq2<end_of_turn>\n<start_of_turn>model\n", "gemma multi-turn");
    expect("llama2-sys", NULL, conv, 4, true,
           "[INST] <<SYS>>\n S \n<</SYS>>\n\n q1  [/INST]a1</s>[INST] q2 [/INST]", "llama2-sys multi-turn");
    expect("llama2-sys-bos", NULL, conv, 4, true,
           "[INST] <<SYS>>\n S \n<</SYS>>\n\n q1  [/INST]a1</s><s>[INST] q2 [/INST]", "llama2-sys-bos multi-turn");
    expect("phi3", NULL, conv + 1, 2, false, "<|user|>\n q1 <|end|>\n<|assistant|>\na1<|end|>\n",
           "phi3 no open turn");
}

/* Detection from real template texts (abbreviated to their markers where
 * the full text is long). */
static void test_detection(void) {
    static const struct { const char *tmpl, *family; } cases[] = {
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}", "chatml"},
        {"{{'<|im_start|>' + message['role'] + '<|im_sep|>'}}", "phi4"},
        {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}", "llama2"},
        {"{{ '[INST] <<SYS>>\\n' + system_message }}", "llama2-sys"},
        {"{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{{ '<<SYS>>' }}", "llama2-sys-strip"},
        {"{{'[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]'}}{{'[INST]'}}", "mistral-v7"},
        {"{{ '<|user|>\\n' + message['content'] + '<|end|>\\n<|assistant|>\\n' }}", "phi3"},
        {"{{ '<|user|>\\n' + message['content'] + '<|endoftext|>' }}", "zephyr"},
        {"{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}", "gemma"},
        {"{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}", "llama3"},
        {"{{ '### Instruction:\\n' }}{{ '<|EOT|>' }}", "deepseek"},
        {"{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' }}", "command-r"},
        {"{{ '<|start_of_role|>' }}", "granite"},
        {"{{ message['content'] }}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = tl_chat_family_name(cases[i].tmpl, NULL);
        bool ok = cases[i].family ? got && strcmp(got, cases[i].family) == 0 : got == NULL;
        CHECKF(ok, "template %zu: detected %s, want %s", i, got ? got : "(none)",
               cases[i].family ? cases[i].family : "(none)");
    }
    /* unknown text -> NULL even when the arch has a fallback: the model's
     * own template wins over a guess */
    expect("{{ message['content'] }}", "qwen2", SYS_USER, 2, true, NULL, "unknown template");
}

static void test_arch_fallback(void) {
    const char *chatml = "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n";
    expect(NULL, "qwen2", SYS_USER, 2, true, chatml, "qwen2 fallback");
    expect("", "qwen3", SYS_USER, 2, true, chatml, "qwen3 fallback (empty template)");
    expect(NULL, "qwen3moe", SYS_USER, 2, true, chatml, "qwen3moe fallback");
    const char *gemma = "<start_of_turn>user\nYou are terse.\n\nHello there<end_of_turn>\n<start_of_turn>model\n";
    expect(NULL, "gemma", SYS_USER, 2, true, gemma, "gemma fallback");
    expect(NULL, "gemma2", SYS_USER, 2, true, gemma, "gemma2 fallback");
    expect(NULL, "gemma3", SYS_USER, 2, true, gemma, "gemma3 fallback");
    expect(NULL, "phi3", SYS_USER, 2, true,
           "<|system|>\nYou are terse.<|end|>\n<|user|>\nHello there<|end|>\n<|assistant|>\n", "phi3 fallback");
    expect(NULL, "llama", SYS_USER, 2, true, NULL, "llama has no fallback");
    expect(NULL, "phi2", SYS_USER, 2, true, NULL, "phi2 has no fallback");
    expect(NULL, NULL, SYS_USER, 2, true, NULL, "nothing at all");
}

static const char SMOLLM2[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

static void test_default_system(void) {
    expect(SMOLLM2, "llama", USER_ONLY, 1, true,
           "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
           "<|im_start|>user\n  Hi!  <|im_end|>\n<|im_start|>assistant\n", "smollm2 default system");
    expect(SMOLLM2, "llama", SYS_USER, 2, true,
           "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n",
           "smollm2 own system");
    /* the template shows the history verbatim, <think> included */
    expect(SMOLLM2, NULL, THINK_HIST, 4, false,
           "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
           "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n<think>\nreason1\n</think>\n\nans1<|im_end|>\n"
           "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\nans2<|im_end|>\n",
           "smollm2 history");
    /* Qwen2-style, newline written as an escape inside the Jinja literal */
    expect("{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}",
           NULL, USER_ONLY, 1, true,
           "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n  Hi!  <|im_end|>\n<|im_start|>assistant\n",
           "qwen2 default system");
    /* a family name never carries a default */
    expect("chatml", NULL, USER_ONLY, 1, true, "<|im_start|>user\n  Hi!  <|im_end|>\n<|im_start|>assistant\n",
           "chatml by name");
}

static char *fixture_template(const char *model) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/hf/%s/tokenizer_config.json", model);
    FILE *f = fopen(tl_test_shared(rel), "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    char *out = NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    if (cJSON_IsString(t)) out = strdup(t->valuestring);
    cJSON_Delete(j);
    return out;
}

static void test_fixture_templates(void) {
    char *llama3 = fixture_template("llama3");
    char *qwen3 = fixture_template("qwen3");
    if (!llama3 || !qwen3) {
        printf("SKIP fixture templates: ../shared not found\n");
        free(llama3);
        free(qwen3);
        return;
    }
    CHECK(strcmp(tl_chat_family_name(llama3, NULL), "llama3") == 0);
    CHECK(strcmp(tl_chat_family_name(qwen3, NULL), "chatml") == 0);

    expect(llama3, "llama", SYS_USER, 2, true,
           "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
           "llama3 fixture sys+user");
    expect(llama3, "llama", USER_ONLY, 1, true,
           "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
           "llama3 fixture trims content");

    expect(qwen3, "qwen3", SYS_USER, 2, true,
           "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n",
           "qwen3 fixture sys+user");
    expect(qwen3, "qwen3", USER_ONLY, 1, true, "<|im_start|>user\n  Hi!  <|im_end|>\n<|im_start|>assistant\n",
           "qwen3 fixture user only (no default system, no trim)");
    /* Qwen3 drops the reasoning of turns before the last query and keeps it
     * in the final turn */
    expect(qwen3, "qwen3", THINK_HIST, 4, false,
           "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\nans1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n"
           "<|im_start|>assistant\n<think>\nr2\n</think>\n\nans2<|im_end|>\n",
           "qwen3 fixture thinking history");
    const tl_chat_msg plain[] = {{"user", "q1"}, {"assistant", "plain answer"}};
    expect(qwen3, "qwen3", plain, 2, false,
           "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nplain answer<|im_end|>\n",
           "qwen3 fixture final answer gets an empty think block");
    free(llama3);
    free(qwen3);
}

static void test_edges(void) {
    expect("chatml", NULL, NULL, 0, true, "<|im_start|>assistant\n", "empty conversation, open turn");
    expect("chatml", NULL, NULL, 0, false, "", "empty conversation");
    const tl_chat_msg bad[] = {{"user", NULL}};
    expect("chatml", NULL, bad, 1, true, NULL, "NULL content");
    expect("chatml", NULL, SYS_USER, -1, true, NULL, "negative count");
    /* long content: no fixed buffers */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = 0;
    const tl_chat_msg m[] = {{"user", big}};
    char *out = tl_chat_apply("llama3", NULL, m, 1, true);
    CHECK(out && strlen(out) > n);
    free(out);
    free(big);
}

int main(void) {
    test_families();
    test_detection();
    test_arch_fallback();
    test_default_system();
    test_fixture_templates();
    test_edges();
    return tl_test_finish("test_chat", 0);
}
