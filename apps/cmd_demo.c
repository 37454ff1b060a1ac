/* cmd_demo.c: `cnnkit demo [--out DIR] [--data DIR]`: the whole job on the built-in demo set (generated
 * here, deterministic) or on the user's class-per-folder data: features, training, evaluation on the
 * held-out split and the HTML report, ending with the report's path. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "core/fsutil.h"
#include "pipeline/demo_data.h"

static const char *const usage_text =
    "Usage: cnnkit demo [--out DIR] [--data DIR] [--epochs N] [--threads N]\n\n"
    "Generates the built-in demo set (4 classes of synthetic audio clips that differ in rhythm and timbre:\n"
    "chirp, kick, noise_burst, pluck; 40 clips of 3 s each) into DIR/data, or uses --data DIR (one subfolder\n"
    "per class, e.g. GTZAN's genres/), then trains the default model (`cnnkit train`), evaluates it on the\n"
    "held-out test split and writes DIR/report/report.html. DIR defaults to ./cnnkit-demo.\n"
    "The last line printed is the report's path.\n"
    "  --generate-only          only write the demo set (--clips N per class, --seconds S, --sr HZ change it)\n";

enum { OPT_OUT = 256, OPT_DATA, OPT_EPOCHS, OPT_THREADS, OPT_CLIPS, OPT_SECONDS, OPT_SR, OPT_GENERATE_ONLY, OPT_HELP };
static const struct option long_options[] = {{"out", required_argument, NULL, OPT_OUT},
                                             {"clips", required_argument, NULL, OPT_CLIPS},
                                             {"seconds", required_argument, NULL, OPT_SECONDS},
                                             {"sr", required_argument, NULL, OPT_SR},
                                             {"generate-only", no_argument, NULL, OPT_GENERATE_ONLY},
                                             {"data", required_argument, NULL, OPT_DATA},
                                             {"epochs", required_argument, NULL, OPT_EPOCHS},
                                             {"threads", required_argument, NULL, OPT_THREADS},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};

/* The demo set in out/data: generated once, reused by later runs (it is deterministic). */
static int ensure_demo_set(cnk_ctx *ctx, const char *data_dir, const cnk_demo_params *params)
{
    if (cnk_is_dir(data_dir)) return CNK_OK;
    fprintf(stderr, "cnnkit demo: generating the demo set in %s\n", data_dir);
    return cnk_demo_write(ctx, data_dir, params);
}

int cmd_demo(int argc, char **argv)
{
    cnk_ctx ctx;
    cli_ctx_init(&ctx, "demo");
    const char *out = "cnnkit-demo", *data = NULL, *epochs = NULL, *threads = NULL;
    optind = 1;
    opterr = 0;
    int c, generate_only = 0;
    long n;
    double x;
    cnk_demo_params params;
    cnk_demo_default_params(&params);
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
        case OPT_HELP: fputs(usage_text, stdout); return CLI_OK;
        case OPT_OUT: out = optarg; break;
        case OPT_DATA: data = optarg; break;
        case OPT_EPOCHS:
            if (cnk_parse_long(optarg, 1, 100000, &n)) return cli_usage_error("demo", "bad --epochs '%s'", optarg);
            epochs = optarg;
            break;
        case OPT_THREADS:
            if (cnk_parse_long(optarg, 1, 1024, &n)) return cli_usage_error("demo", "bad --threads '%s'", optarg);
            threads = optarg;
            break;
        case OPT_CLIPS:
            if (cnk_parse_long(optarg, 1, 10000, &n)) return cli_usage_error("demo", "bad --clips '%s'", optarg);
            params.clips_per_class = (int)n;
            break;
        case OPT_SECONDS:
            if (cnk_parse_double(optarg, 0.2, 600, &x)) return cli_usage_error("demo", "bad --seconds '%s'", optarg);
            params.seconds = x;
            break;
        case OPT_SR:
            if (cnk_parse_long(optarg, 4000, 192000, &n)) return cli_usage_error("demo", "bad --sr '%s'", optarg);
            params.sample_rate = (int)n;
            break;
        case OPT_GENERATE_ONLY: generate_only = 1; break;
        default: return cli_usage_error("demo", "unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (data && !cnk_is_dir(data)) return cli_usage_error("demo", "--data %s: not a folder", data);
    char data_dir[PATH_MAX], model[PATH_MAX], report[PATH_MAX];
    int rc = cnk_mkdirs(&ctx, out);
    if (rc) return cli_fail("demo", &ctx, rc);
    snprintf(data_dir, sizeof data_dir, "%s/data", out);
    snprintf(model, sizeof model, "%s/model.cnk", out);
    snprintf(report, sizeof report, "%s/report", out);
    if (!data) {
        rc = ensure_demo_set(&ctx, data_dir, &params);
        if (rc) return cli_fail("demo", &ctx, rc);
        if (generate_only) {
            printf("%s\n", data_dir);
            return CLI_OK;
        }
        data = data_dir;
    }
    char *train_argv[16];
    int k = 0;
    train_argv[k++] = "train";
    train_argv[k++] = (char *)data;
    train_argv[k++] = "-o";
    train_argv[k++] = model;
    train_argv[k++] = "--report";
    train_argv[k++] = report;
    if (epochs) train_argv[k++] = "--epochs", train_argv[k++] = (char *)epochs;
    if (threads) train_argv[k++] = "--threads", train_argv[k++] = (char *)threads;
    train_argv[k] = NULL;
    int code = cmd_train(k, train_argv);
    if (code != CLI_OK && code != CLI_SKIPPED) return code;
    char resolved[PATH_MAX];
    const char *shown = realpath(report, resolved) ? resolved : report;
    printf("%s/report.html\n", shown);
    return code;
}
