/* report_csv.h: predictions CSV files (`label`, `predicted`, optional `path` and `p_<class>` columns):
 * reading any classifier's predictions for `cnnkit report`, and writing a report's predictions.csv. */
#ifndef CNK_REPORT_CSV_H
#define CNK_REPORT_CSV_H

#include <stdio.h>

#include "core/context.h"
#include "pipeline/report.h"

/* A predictions file in memory. The class space is the p_<class> columns' classes when the file has
 * any (every label and prediction must then have its column), else the union of labels and predictions;
 * either way sorted bytewise. */
typedef struct cnk_predictions {
    size_t n_samples;
    size_t n_classes;
    char **class_names;
    int *y_true;
    int *y_pred;
    double *proba; /* n_samples x n_classes, or NULL without p_ columns */
    char **paths;  /* n_samples paths, or NULL without a path column */
} cnk_predictions;

/* Reads a predictions CSV. Errors name the file and line ("a.csv:7: empty label"). */
int cnk_predictions_read(cnk_ctx *ctx, const char *path, cnk_predictions *out);
void cnk_predictions_release(cnk_predictions *p);
/* A report model viewing p (borrowed; p must outlive it). */
void cnk_predictions_model(const cnk_predictions *p, const char *name, cnk_report_model *model);

/* Writes model's predictions as CSV (path if known, label, predicted, p_<class> if known), a file
 * cnk_predictions_read reads back. Write errors show in ferror(fp) (cnk_afile_commit checks it). */
int cnk_predictions_write(cnk_ctx *ctx, FILE *fp, const cnk_report_model *model);

#endif
