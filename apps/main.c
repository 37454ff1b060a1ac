/* main.c: `cnnkit SUBCOMMAND ...` dispatch, `--version` and `help SUBCOMMAND`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "nn/blas_cpu.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"features", cmd_features, "audio files or folders -> mel, STFT or wavelet spectrograms (.npy/.png)"},
    {"train", cmd_train, "train a classifier on a class-per-folder dataset or CSV"},
    {"eval", cmd_eval, "evaluate a model on a class-per-folder dataset and print the report"},
    {"predict", cmd_predict, "classify files or folders with a model"},
    {"report", cmd_report, "build an evaluation report from predictions CSV files"},
    {"summary", cmd_summary, "print a model's layers, output shapes and parameter counts"},
    {"import", cmd_import, "import a TensorFlow Lite model as a cnnkit model"},
    {"bench", cmd_bench, "measure training or inference speed of an architecture"},
    {"demo", cmd_demo, "run the whole job on the built-in demo set (or --data DIR)"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void print_usage(FILE *out)
{
    fprintf(out, "Usage: cnnkit SUBCOMMAND [OPTIONS] ...\n\n"
                 "Turns folders of audio clips and images into trained CNN classifiers and evaluation reports.\n\n"
                 "Subcommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'cnnkit SUBCOMMAND --help' or 'cnnkit help SUBCOMMAND' describes each one.\n"
                 "Exit codes: 0 success, 1 some inputs skipped, 2 usage error, 3 fatal input or I/O error.\n");
}

static const command *find_command(const char *name)
{
    for (int i = 0; i < n_commands; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* OpenBLAS chooses its kernels once, when it loads; on a CPU newer than the OpenBLAS release it falls back to
 * generic SSE3 kernels that run cnnkit 2x slower. The only way to a better choice is a fresh start of this
 * program with OPENBLAS_CORETYPE set (which also keeps the restarted process from restarting again). */
static void restart_with_faster_blas(char **argv)
{
    const char *core = cnk_blas_better_core();
    if (!core || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with the generic kernels */
}

int main(int argc, char **argv)
{
    restart_with_faster_blas(argv);
    if (argc < 2) {
        print_usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("cnnkit %s\n", CNK_VERSION_STRING);
        return CLI_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return CLI_OK;
        }
        const command *cmd = find_command(argv[2]);
        if (!cmd) {
            fprintf(stderr, "cnnkit help: unknown subcommand '%s'\n\n", argv[2]);
            print_usage(stderr);
            return CLI_USAGE;
        }
        char *help_argv[] = {(char *)cmd->name, "--help", NULL};
        return cmd->run(2, help_argv);
    }
    const command *cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "cnnkit: unknown subcommand '%s'\n\n", argv[1]);
        print_usage(stderr);
        return CLI_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
