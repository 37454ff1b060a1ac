/* report.h: evaluation reports: from one or more models' predictions (and optional training history and
 * run parameters) write report.txt, metrics.json, CSVs, PLplot charts and a self-contained report.html. */
#ifndef CNK_REPORT_H
#define CNK_REPORT_H

#include <stddef.h>

#include "core/context.h"
#include "pipeline/metrics.h"

/* Per-epoch training history. Any series may be NULL (not recorded); NAN marks a missing epoch value. */
typedef struct cnk_report_history {
    size_t n_epochs;
    const double *train_loss;
    const double *train_acc;
    const double *val_loss;
    const double *val_acc;
} cnk_report_history;

/* One model's predictions on an evaluation set. Everything is borrowed. */
typedef struct cnk_report_model {
    const char *name;               /* shown in comparisons; NULL = "model" */
    size_t n_samples;
    size_t n_classes;               /* the classifier's class space */
    const char *const *class_names; /* n_classes distinct names */
    const int *y_true;              /* n_samples class indices */
    const int *y_pred;
    const double *proba;            /* optional n_samples x n_classes probabilities */
    const char *const *paths;       /* optional n_samples input paths */
    const cnk_report_history *history; /* optional */
} cnk_report_model;

typedef struct cnk_report_param {
    const char *key;
    const char *value;
} cnk_report_param;

/* What a report shows. models[0] is the model the report is about (report.txt, metrics.json,
 * confusion matrix, predictions); further models (other runs, or the branches of a fusion model) are
 * compared with it side by side. */
typedef struct cnk_report_input {
    const char *title;                /* NULL = "cnnkit evaluation report" */
    const cnk_report_model *models;
    size_t n_models;                  /* >= 1 */
    const cnk_report_param *params;   /* optional run parameters, shown in the HTML */
    size_t n_params;
    size_t max_misclassified;         /* rows of misclassified examples in the HTML; 0 = 50 */
} cnk_report_input;

/* Writes into dir: report.txt, metrics.json, confusion.csv, confusion.png, f1.png, report.html,
 * predictions.csv (always: labels and predictions are known; paths and p_<class> columns when given),
 * and when a model has history: history.csv and curves.png. With several models also comparison.csv.
 * The files are built in a temporary sibling directory that is renamed to dir at the end, so on failure
 * no partial directory is left. dir must not exist, or be an empty directory, or hold a previous report
 * (it is then replaced as a whole). */
int cnk_report_write(cnk_ctx *ctx, const char *dir, const cnk_report_input *input);

/* The text of report.txt for one model: scikit-learn's classification_report (digits=2) layout, a blank
 * line, then the confusion matrix. *text is malloc'd (caller frees). */
int cnk_report_format_text(cnk_ctx *ctx, const cnk_report_model *model, char **text);

/* Only scikit-learn's classification_report(digits) table, byte for byte, from computed metrics. */
int cnk_report_format_classification(cnk_ctx *ctx, const cnk_metrics *m, int digits, char **text);

/* Fills a cnk_metrics_input view of a model (no copies). */
void cnk_report_model_metrics_input(const cnk_report_model *model, cnk_metrics_input *in);

#endif
