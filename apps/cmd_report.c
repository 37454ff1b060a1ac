/* cmd_report.c: `cnnkit report PREDICTIONS.csv... -o DIR [--names A,B,...]` (see ../shared/CLI.md):
 * the evaluation report of any classifier's predictions, several files side by side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "core/atomic_file.h"
#include "pipeline/report.h"
#include "pipeline/report_csv.h"

#define CMD "report"
#define MAX_FILES 64

static void print_help(void)
{
    printf("Usage: cnnkit report PREDICTIONS.csv... -o DIR [OPTIONS]\n\n"
           "Builds an evaluation report from the predictions of any classifier. Each CSV has a header with\n"
           "at least 'label' and 'predicted' columns, optionally 'path' and one 'p_<class>' probability column\n"
           "per class. Several files are compared side by side; the first is the main model.\n\n"
           "Writes into DIR: report.txt, metrics.json, confusion.csv, predictions.csv, confusion.png, f1.png,\n"
           "report.html (one self-contained page), and comparison.csv for several files. DIR must be new,\n"
           "empty, or an earlier report (replaced whole). Prints report.txt to stdout.\n\n"
           "Options:\n"
           "  -o, --output DIR         the report folder (required)\n"
           "  --names A,B,...          model names, one per file (default: the file names)\n"
           "  --title TEXT             the HTML page's title\n"
           "  --max-misclassified N    rows of misclassified examples in the HTML (default 50)\n"
           "  -q, --quiet              do not print the report\n"
           "  -h, --help               this help\n\n"
           "Exit codes: 0 success, 2 usage error, 3 bad input file or I/O error (nothing is left behind).\n");
}

typedef struct options {
    const char *files[MAX_FILES];
    int n_files;
    const char *output;
    char *names_arg;
    const char *title;
    long max_misclassified;
    int quiet;
} options;

/* Parses argv; returns -1 when done and ok, else the exit code to return. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help();
            return CLI_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!has_value) return cli_usage_error(CMD, "%s needs a directory", a);
            o->output = argv[++i];
        } else if (strcmp(a, "--names") == 0) {
            if (!has_value) return cli_usage_error(CMD, "--names needs a comma-separated list");
            o->names_arg = argv[++i];
        } else if (strcmp(a, "--title") == 0) {
            if (!has_value) return cli_usage_error(CMD, "--title needs a text");
            o->title = argv[++i];
        } else if (strcmp(a, "--max-misclassified") == 0) {
            if (!has_value || cnk_parse_long(argv[i + 1], 1, 100000, &o->max_misclassified) != 0)
                return cli_usage_error(CMD, "--max-misclassified needs a number from 1 to 100000");
            i++;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error(CMD, "unknown option '%s'", a);
        } else {
            if (o->n_files == MAX_FILES) return cli_usage_error(CMD, "at most %d prediction files", MAX_FILES);
            o->files[o->n_files++] = a;
        }
    }
    if (o->n_files == 0) return cli_usage_error(CMD, "no PREDICTIONS.csv given");
    if (!o->output) return cli_usage_error(CMD, "no output directory given (-o DIR)");
    return -1;
}

/* Splits --names in place; the default name is the file name without its .csv extension. */
static int model_names(options *o, char **names)
{
    int n = 0;
    if (o->names_arg) {
        for (char *save = NULL, *tok = strtok_r(o->names_arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (n == MAX_FILES) break;
            names[n++] = tok;
        }
        if (n != o->n_files)
            return cli_usage_error(CMD, "--names gives %d name%s for %d file%s", n, n == 1 ? "" : "s", o->n_files,
                                   o->n_files == 1 ? "" : "s");
        return -1;
    }
    for (int i = 0; i < o->n_files; i++) {
        const char *base = strrchr(o->files[i], '/');
        base = base ? base + 1 : o->files[i];
        names[i] = strdup(base);
        if (!names[i]) return CLI_FATAL;
        size_t len = strlen(names[i]);
        if (len > 4 && strcmp(names[i] + len - 4, ".csv") == 0) names[i][len - 4] = '\0';
    }
    return -1;
}

static int print_report(cnk_ctx *ctx, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/report.txt", dir);
    unsigned char *text = NULL;
    size_t size = 0;
    int rc = cnk_read_file(ctx, path, 0, &text, &size);
    if (rc) return rc;
    fwrite(text, 1, size, stdout);
    fflush(stdout);
    free(text);
    return CNK_OK;
}

static int run(cnk_ctx *ctx, options *o, char **names)
{
    cnk_predictions preds[MAX_FILES];
    cnk_report_model models[MAX_FILES];
    int n_read = 0, rc = CNK_OK;
    for (int i = 0; i < o->n_files && rc == CNK_OK; i++) {
        rc = cnk_predictions_read(ctx, o->files[i], &preds[i]);
        if (rc == CNK_OK) cnk_predictions_model(&preds[n_read++], names[i], &models[i]);
    }
    char command[1024] = "cnnkit report";
    for (int i = 0; i < o->n_files; i++) {
        size_t len = strlen(command);
        snprintf(command + len, sizeof command - len, " %s", o->files[i]);
    }
    cnk_report_param params[] = {{"command", command}, {"output", o->output}};
    cnk_report_input input = {o->title, models, (size_t)o->n_files, params, 2, (size_t)o->max_misclassified};
    if (rc == CNK_OK) rc = cnk_report_write(ctx, o->output, &input);
    if (rc == CNK_OK && !o->quiet) rc = print_report(ctx, o->output);
    for (int i = 0; i < n_read; i++) cnk_predictions_release(&preds[i]);
    return rc;
}

int cmd_report(int argc, char **argv)
{
    options o;
    int code = parse_args(argc, argv, &o);
    if (code >= 0) return code;
    char *names[MAX_FILES] = {0};
    code = model_names(&o, names);
    if (code < 0) {
        cnk_ctx ctx;
        cli_ctx_init(&ctx, CMD);
        int rc = run(&ctx, &o, names);
        code = rc ? cli_fail(CMD, &ctx, rc) : cli_success(&ctx);
    }
    if (!o.names_arg)
        for (int i = 0; i < o.n_files; i++) free(names[i]);
    return code;
}
