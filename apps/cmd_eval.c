/* cmd_eval.c: `cnnkit eval MODEL.cnk DATA [--report DIR]` (see ../shared/CLI.md): classifies every file of a
 * class-per-subfolder DATA (or rows of a CSV) with the model's own preprocessing and prints the report. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "pipeline/classify.h"
#include "pipeline/dataset.h"
#include "pipeline/report.h"

static const char *const usage_text =
    "Usage: cnnkit eval MODEL.cnk DATA [--report DIR] [--threads N] [--cache DIR | --no-cache]\n\n"
    "Classifies every file of DATA (one subfolder per class, matched to the model's classes by name; or a CSV\n"
    "with a `label` column for CSV models), prints the classification report (scikit-learn's layout) and the\n"
    "confusion matrix, and with --report writes the report files into DIR.\n";

enum { OPT_REPORT = 256, OPT_THREADS, OPT_CACHE, OPT_NO_CACHE, OPT_HELP };
static const struct option long_options[] = {{"report", required_argument, NULL, OPT_REPORT},
                                             {"threads", required_argument, NULL, OPT_THREADS},
                                             {"cache", required_argument, NULL, OPT_CACHE},
                                             {"no-cache", no_argument, NULL, OPT_NO_CACHE},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};

static int evaluate(cnk_ctx *ctx, const char *model_path, const char *data, const char *report_dir,
                    const char *cache_dir)
{
    cnk_classifier *clf = NULL;
    cnk_dataset ds;
    memset(&ds, 0, sizeof ds);
    cnk_classified res = {0};
    const char **paths = NULL;
    char *text = NULL;
    int rc = cnk_classifier_load(ctx, model_path, &clf);
    if (!rc) {
        cnk_dataset_options dopts;
        cnk_dataset_options_init(&dopts);
        const cnk_preprocess *p = cnk_classifier_preprocess(clf);
        if (p->kind == CNK_PREP_CSV && p->height > 0 && p->channels * p->height * p->width == p->n_features) {
            dopts.image_width = p->width;
            dopts.image_height = p->height;
        }
        rc = cnk_dataset_open(ctx, data, &dopts, &ds);
    }
    int n_classes = rc ? 0 : cnk_classifier_n_classes(clf);
    if (!rc) rc = cnk_dataset_match_classes(ctx, &ds, cnk_classifier_class_names(clf), (size_t)n_classes);
    if (!rc) rc = cnk_classifier_run_dataset(ctx, clf, &ds, cache_dir, &res);
    if (!rc && res.n == 0) rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no file of the model's classes could be classified", data);
    if (!rc) {
        paths = malloc(res.n * sizeof *paths);
        if (!paths) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !rc && i < res.n; i++) {
            const cnk_item *item = &ds.items[res.items[i]];
            paths[i] = item->path ? item->path : item->name;
        }
    }
    cnk_report_model model = {.name = model_path, .n_samples = res.n, .n_classes = (size_t)n_classes,
                              .class_names = rc ? NULL : cnk_classifier_class_names(clf), .y_true = res.y_true,
                              .y_pred = res.y_pred, .proba = res.proba, .paths = paths};
    if (!rc) rc = cnk_report_format_text(ctx, &model, &text);
    if (!rc) fputs(text, stdout);
    if (!rc && report_dir) {
        cnk_report_param params[] = {{"model", model_path}, {"data", data}};
        cnk_report_input in = {.title = "cnnkit evaluation report", .models = &model, .n_models = 1,
                               .params = params, .n_params = 2};
        rc = cnk_report_write(ctx, report_dir, &in);
        if (!rc) fprintf(stderr, "report: %s/report.html\n", report_dir);
    }
    free(text);
    free(paths);
    cnk_classified_release(&res);
    cnk_dataset_release(&ds);
    cnk_classifier_free(clf);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    cnk_ctx ctx;
    cli_ctx_init(&ctx, "eval");
    const char *report_dir = NULL, *cache_dir = NULL;
    optind = 1;
    opterr = 0;
    int c;
    long n;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
        case OPT_HELP: fputs(usage_text, stdout); return CLI_OK;
        case OPT_REPORT: report_dir = optarg; break;
        case OPT_CACHE: cache_dir = optarg; break;
        case OPT_NO_CACHE: cache_dir = ""; break;
        case OPT_THREADS:
            if (cnk_parse_long(optarg, 1, 1024, &n)) return cli_usage_error("eval", "bad --threads '%s'", optarg);
            ctx.threads = (int)n;
            break;
        default: return cli_usage_error("eval", "unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return cli_usage_error("eval", "expected MODEL.cnk and DATA");
    int rc = evaluate(&ctx, argv[optind], argv[optind + 1], report_dir, cache_dir);
    if (rc) return cli_fail("eval", &ctx, rc);
    return cli_success(&ctx);
}
