/* cli.h — shared helpers of the torchless command-line tool. */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include "torchless.h"

/* A comma-separated list of integers, as llama-bench takes: -p 128,512 */
enum { CLI_LIST_MAX = 16 };
typedef struct cli_list {
    int v[CLI_LIST_MAX];
    int n;
} cli_list;

/* Common options; each subcommand reads the ones it needs. */
typedef struct cli_opts {
    const char *model;
    const char *prompt;
    const char *system;
    int max_tokens;       /* -1: until the context is full or end of generation */
    int threads;
    int max_seq_len;
    tl_kv_type kv_type;
    bool debug;
    bool chat;            /* apply the chat template */
    bool chat_set;
    tl_sampler_params sp;
    const char *tokens_file;
    const char *out_file;
    const char *inp_file;
    cli_list bench_p, bench_n, bench_d; /* bench's -p, -n, -d: comma lists */
    int bench_r;
    bool csv;
    const char *dtype;    /* --dtype: convert weights at load */
} cli_opts;

/* Parses argv[first..] into o and fills positional[] (max n_pos). Returns
 * the number of positionals, or -1 after printing an error. */
int cli_parse(int argc, char **argv, int first, cli_opts *o, const char **positional, int n_pos);

/* Loads a model with the options, printing the error on failure. */
tl_model *cli_load(const cli_opts *o);

/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL on error. */
char *cli_read_file(const char *path, size_t *len);

/* Parses the value of a --threads / -t option (NULL when missing) into
 * [0, 4096]; prints an error and returns false when it is not one. */
bool cli_threads_arg(const char *opt, const char *val, int *out);

double cli_now(void);
/* Peak resident memory of this process in MiB. */
double cli_peak_rss_mib(void);

int cmd_run(int argc, char **argv, int first);
int cmd_logits(int argc, char **argv, int first);
int cmd_info(int argc, char **argv, int first);
int cmd_tokenize(int argc, char **argv, int first);
int cmd_bench(int argc, char **argv, int first);
/* `torchless synth OUT.gguf [--seed S] [--type f16|bf16|f32] [--layers N]`:
 * writes a random-weight TinyLlama-shaped GGUF. Returns the exit code. */
int cmd_synth(int argc, char **argv, int first);
/* `torchless quantize IN.gguf OUT.gguf TYPE [--threads N] [--pure]`:
 * llama-quantize's mixes, progress on stderr. Returns the exit code. */
int cmd_quantize(int argc, char **argv, int first);
/* `torchless convert SRC OUT.gguf [--type T] [--pure] [--threads N]` and
 * `torchless export SRC OUT.bin [--quant f32|int8] [--threads N]`
 * (cmd_convert.c). Return the exit code. */
int cmd_convert(int argc, char **argv, int first);
int cmd_export(int argc, char **argv, int first);

/* Path of the default model, or NULL when none is installed. Static buffer. */
const char *cli_default_model(void);

#endif
