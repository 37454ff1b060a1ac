/* cnnkit/report.h: evaluation of any classifier's predictions: scikit-learn's classification metrics
 * (precision, recall, F1, support, accuracy, averages, confusion matrix) and the report files of CLI.md. */
#ifndef CNNKIT_REPORT_H
#define CNNKIT_REPORT_H

#include <stddef.h>

#include "cnnkit/context.h"
#include "cnnkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Predictions collected one by one (from cnnkit or any other classifier), then scored and reported. */
typedef struct cnk_evaluation cnk_evaluation;

/* An empty evaluation over n_classes distinct, non-empty class names (copied). */
CNK_API int cnk_evaluation_create(cnk_ctx *ctx, int n_classes, const char *const *class_names,
                                  cnk_evaluation **out);
CNK_API void cnk_evaluation_free(cnk_evaluation *ev);

/* Adds one prediction: class indices into the evaluation's class names; proba (n_classes probabilities)
 * and path (shown in the report) may be NULL, but proba must be given for all predictions or for none. */
CNK_API int cnk_evaluation_add(cnk_ctx *ctx, cnk_evaluation *ev, int true_class, int predicted_class,
                               const double *proba, const char *path);
CNK_API size_t cnk_evaluation_count(const cnk_evaluation *ev);
CNK_API int cnk_evaluation_n_classes(const cnk_evaluation *ev);
CNK_API const char *cnk_evaluation_class_name(const cnk_evaluation *ev, int index);

/* The metrics as scikit-learn defines them (zero division counts as 0); they are computed on the first call
 * after an add. Fail with CNK_ERR_ARG while the evaluation is empty. */
CNK_API int cnk_evaluation_accuracy(cnk_ctx *ctx, cnk_evaluation *ev, double *accuracy);
/* One row of the classification report: a class name, or "macro avg" / "weighted avg". A class that occurs
 * in neither the true nor the predicted classes has all four values 0. Any output pointer may be NULL. */
CNK_API int cnk_evaluation_scores(cnk_ctx *ctx, cnk_evaluation *ev, const char *row, double *precision,
                                  double *recall, double *f1, size_t *support);
/* How many predictions of true class true_class were predicted as predicted_class. */
CNK_API int cnk_evaluation_confusion(cnk_ctx *ctx, cnk_evaluation *ev, int true_class, int predicted_class,
                                     size_t *count);

/* report.txt's text: scikit-learn's classification_report (digits=2) layout, a blank line, the confusion
 * matrix. *text is malloc'd (free with cnk_free). */
CNK_API int cnk_evaluation_report_text(cnk_ctx *ctx, cnk_evaluation *ev, char **text);
/* Writes the report files into dir (report.txt, metrics.json, confusion.csv, predictions.csv,
 * confusion.png, report.html, ...: see CLI.md). dir must not exist, be empty, or hold an earlier report
 * (then it is replaced as a whole); nothing half-written is left on failure. title may be NULL. */
CNK_API int cnk_evaluation_write_report(cnk_ctx *ctx, cnk_evaluation *ev, const char *dir, const char *title);

#ifdef __cplusplus
}
#endif

#endif
