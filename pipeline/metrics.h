/* metrics.h: classification metrics from true and predicted class indices (and optional probabilities),
 * defined to equal scikit-learn's classification_report / confusion_matrix / log_loss / top_k / roc_auc. */
#ifndef CNK_METRICS_H
#define CNK_METRICS_H

#include <stddef.h>

#include "core/context.h"

/* The per-sample data. Indices refer to class_names (the classifier's class space, any order, names
 * distinct). The metrics' classes are the union of the true and predicted classes, sorted bytewise, as
 * scikit-learn does when labels=None. */
typedef struct cnk_metrics_input {
    size_t n_samples;
    size_t n_classes;               /* size of the index space */
    const char *const *class_names; /* n_classes names */
    const int *y_true;              /* n_samples indices in [0, n_classes) */
    const int *y_pred;              /* n_samples indices in [0, n_classes) */
    const double *proba;            /* optional: n_samples x n_classes, row-major, column = class index */
} cnk_metrics_input;

typedef struct cnk_metrics_avg {
    double precision, recall, f1;
    size_t support;
} cnk_metrics_avg;

/* The largest k reported by cnk_metrics.top_k. */
#define CNK_METRICS_MAX_TOP_K 5

typedef struct cnk_metrics {
    size_t n_samples;
    size_t n_classes;       /* classes in the report: union of true and predicted, sorted bytewise */
    char **class_names;     /* owned copies, in report order */
    int *class_index;       /* for each report class, its index in the input's class space */
    double *precision;      /* per report class (zero division counts as 0) */
    double *recall;
    double *f1;
    size_t *support;
    double accuracy;
    cnk_metrics_avg macro_avg;
    cnk_metrics_avg weighted_avg;
    size_t *confusion;      /* n_classes x n_classes counts, row = true class, column = predicted */
    double *confusion_norm; /* each row divided by its sum (rows without samples stay 0) */

    /* Only when probabilities were given. Probability classes are all input classes, sorted bytewise. */
    int has_proba;
    size_t n_proba_classes;
    double log_loss;                           /* NAN with fewer than 2 probability classes */
    size_t max_top_k;                          /* min(CNK_METRICS_MAX_TOP_K, n_proba_classes) */
    double top_k[CNK_METRICS_MAX_TOP_K];       /* top_k[k-1] = top-k accuracy for k <= max_top_k */
    double *roc_auc;                           /* per report class, one-vs-rest; NAN when undefined */
} cnk_metrics;

/* Computes every metric. Fails on an empty input, an out-of-range index, duplicate class names or a
 * probability that is negative or not finite. */
int cnk_metrics_compute(cnk_ctx *ctx, const cnk_metrics_input *in, cnk_metrics *out);
void cnk_metrics_release(cnk_metrics *m);

/* Top-k accuracy as scikit-learn's top_k_accuracy_score with labels = the input classes sorted bytewise:
 * a hit when the true class is among the k highest probabilities, ties ranked towards the later class.
 * Returns NAN if in has no probabilities. */
double cnk_metrics_top_k_accuracy(const cnk_metrics_input *in, size_t k);

/* The area under the ROC curve of scores for binary truths (tied scores count one half), as
 * scikit-learn's roc_auc_score; *auc = NAN when all truths are equal. */
int cnk_metrics_roc_auc(cnk_ctx *ctx, const double *scores, const unsigned char *is_positive, size_t n,
                        double *auc);

/* The sum of n doubles in numpy's pairwise order, so averages round exactly as scikit-learn's do (the
 * report's two-digit text must match byte for byte even at rounding ties). */
double cnk_metrics_pairwise_sum(const double *values, size_t n);

/* The report-class position of a class name, or -1. */
int cnk_metrics_find_class(const cnk_metrics *m, const char *name);

#endif
