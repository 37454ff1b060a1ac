/* cmd_predict.c: `cnnkit predict MODEL.cnk PATH... [--top-k K] [--format text|csv|json]` (see
 * ../shared/CLI.md): one row per file with the predicted class and its probability. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "core/fsutil.h"
#include "pipeline/classify.h"
#include "pipeline/csv.h"

static const char *const usage_text =
    "Usage: cnnkit predict MODEL.cnk PATH... [--top-k K] [--format text|csv|json] [--threads N]\n\n"
    "Classifies files, or every file of the model's input kind inside folders (recursively), with exactly the\n"
    "preprocessing stored in the model. Audio clips are cut into the model's segments and their probabilities\n"
    "averaged. CSV models classify the rows of CSV files (the label column may be absent), named FILE:ROW.\n"
    "One row per file: path, predicted class, its probability (text: and the next K-1 classes;\n"
    "csv: path,predicted,probability,p_<class>...; json: an array of objects).\n";

enum { OPT_TOP_K = 256, OPT_FORMAT, OPT_THREADS, OPT_CACHE, OPT_NO_CACHE, OPT_HELP };
static const struct option long_options[] = {{"top-k", required_argument, NULL, OPT_TOP_K},
                                             {"format", required_argument, NULL, OPT_FORMAT},
                                             {"threads", required_argument, NULL, OPT_THREADS},
                                             {"cache", required_argument, NULL, OPT_CACHE},
                                             {"no-cache", no_argument, NULL, OPT_NO_CACHE},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};

/* Files named directly are taken as they are; folders contribute the files the model can read. */
static int collect_paths(cnk_ctx *ctx, const cnk_classifier *clf, char **args, int n_args, cnk_pathlist *out)
{
    for (int i = 0; i < n_args; i++) {
        if (!cnk_is_dir(args[i])) {
            int rc = cnk_pathlist_add(ctx, out, args[i]);
            if (rc) return rc;
            continue;
        }
        cnk_pathlist files = {0};
        int rc = cnk_list_files(ctx, args[i], 1, &files);
        for (size_t k = 0; !rc && k < files.count; k++)
            if (cnk_classifier_accepts_path(clf, files.paths[k])) rc = cnk_pathlist_add(ctx, out, files.paths[k]);
        cnk_pathlist_release(&files);
        if (rc) return rc;
    }
    return CNK_OK;
}

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

/* Indices of the k most probable classes, best first (ties: lower index first). */
static void top_classes(const double *p, int n, int k, int *out)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int c = 0; c < n; c++) {
            int taken = 0;
            for (int t = 0; t < j; t++) taken |= out[t] == c;
            if (!taken && (best < 0 || p[c] > p[best])) best = c;
        }
        out[j] = best;
    }
}

static void print_rows(const cnk_classifier *clf, const cnk_pathlist *paths, const cnk_classified *res,
                       const char *format, int top_k)
{
    int C = cnk_classifier_n_classes(clf);
    const char *const *names = cnk_classifier_class_names(clf);
    if (top_k > C) top_k = C;
    int top[64];
    if (strcmp(format, "csv") == 0) {
        fputs("path,predicted,probability", stdout);
        for (int c = 0; c < C; c++) {
            char col[512];
            snprintf(col, sizeof col, "p_%s", names[c]);
            putchar(',');
            cnk_csv_write_field(stdout, col);
        }
        putchar('\n');
    } else if (strcmp(format, "json") == 0) {
        putchar('[');
    }
    for (size_t i = 0; i < res->n; i++) {
        const char *path = paths->paths[res->items[i]];
        const double *p = res->proba + i * (size_t)C;
        top_classes(p, C, top_k, top);
        if (strcmp(format, "csv") == 0) {
            cnk_csv_write_field(stdout, path);
            putchar(',');
            cnk_csv_write_field(stdout, names[top[0]]);
            printf(",%.6f", p[top[0]]);
            for (int c = 0; c < C; c++) printf(",%.6f", p[c]);
            putchar('\n');
        } else if (strcmp(format, "json") == 0) {
            printf("%s\n  {\"path\": ", i ? "," : "");
            json_string(path);
            printf(", \"predicted\": ");
            json_string(names[top[0]]);
            printf(", \"probability\": %.6f, \"top\": [", p[top[0]]);
            for (int j = 0; j < top_k; j++) {
                printf("%s{\"class\": ", j ? ", " : "");
                json_string(names[top[j]]);
                printf(", \"probability\": %.6f}", p[top[j]]);
            }
            printf("]}");
        } else {
            printf("%s\t%s\t%.4f", path, names[top[0]], p[top[0]]);
            for (int j = 1; j < top_k; j++) printf("\t%s\t%.4f", names[top[j]], p[top[j]]);
            putchar('\n');
        }
    }
    if (strcmp(format, "json") == 0) printf("%s]\n", res->n ? "\n" : "");
}

int cmd_predict(int argc, char **argv)
{
    cnk_ctx ctx;
    cli_ctx_init(&ctx, "predict");
    const char *format = "text", *cache_dir = NULL;
    long top_k = 1, n;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
        case OPT_HELP: fputs(usage_text, stdout); return CLI_OK;
        case OPT_FORMAT:
            if (strcmp(optarg, "text") && strcmp(optarg, "csv") && strcmp(optarg, "json"))
                return cli_usage_error("predict", "--format must be text, csv or json");
            format = optarg;
            break;
        case OPT_TOP_K:
            if (cnk_parse_long(optarg, 1, 64, &top_k)) return cli_usage_error("predict", "bad --top-k '%s'", optarg);
            break;
        case OPT_THREADS:
            if (cnk_parse_long(optarg, 1, 1024, &n)) return cli_usage_error("predict", "bad --threads '%s'", optarg);
            ctx.threads = (int)n;
            break;
        case OPT_CACHE: cache_dir = optarg; break;
        case OPT_NO_CACHE: cache_dir = ""; break;
        default: return cli_usage_error("predict", "unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (argc - optind < 2) return cli_usage_error("predict", "expected MODEL.cnk and at least one PATH");
    cnk_classifier *clf = NULL;
    cnk_pathlist paths = {0};
    cnk_classified res = {0};
    int rc = cnk_classifier_load(&ctx, argv[optind], &clf);
    if (!rc && cnk_classifier_preprocess(clf)->kind == CNK_PREP_CSV) {
        /* CSV models classify the rows of CSV files; rows are named FILE:ROW */
        rc = cnk_classifier_run_csv(&ctx, clf, (const char *const *)(argv + optind + 1), (size_t)(argc - optind - 1),
                                    &paths, &res);
    } else {
        if (!rc) rc = collect_paths(&ctx, clf, argv + optind + 1, argc - optind - 1, &paths);
        if (!rc && paths.count == 0) rc = cnk_fail(&ctx, CNK_ERR_INPUT, "no file to classify");
        if (!rc)
            rc = cnk_classifier_run_paths(&ctx, clf, (const char *const *)paths.paths, paths.count, cache_dir, &res);
    }
    if (!rc) print_rows(clf, &paths, &res, format, (int)top_k);
    cnk_classified_release(&res);
    cnk_pathlist_release(&paths);
    cnk_classifier_free(clf);
    if (rc) return cli_fail("predict", &ctx, rc);
    return cli_success(&ctx);
}
