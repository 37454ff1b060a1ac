#include "pipeline/metrics.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* More samples or classes than this is a corrupt input, not an evaluation. */
#define MAX_SAMPLES ((size_t)1 << 31)
#define MAX_CLASSES ((size_t)4096) /* the confusion matrices hold MAX_CLASSES^2 entries */

/* numpy's block size for pairwise summation (PW_BLOCKSIZE in loops_utils.h). */
#define PAIRWISE_BLOCK 128

double cnk_metrics_pairwise_sum(const double *values, size_t n)
{
    if (n < 8) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) sum += values[i];
        return sum;
    }
    if (n <= PAIRWISE_BLOCK) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = values[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += values[i + j];
        double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) sum += values[i];
        return sum;
    }
    size_t half = n / 2;
    half -= half % 8;
    return cnk_metrics_pairwise_sum(values, half) + cnk_metrics_pairwise_sum(values + half, n - half);
}

/* Division where a zero denominator gives 0 (scikit-learn's zero_division=0). */
static double safe_div(double num, double den) { return den == 0.0 ? 0.0 : num / den; }

/* F1 exactly as scikit-learn evaluates (1 + beta^2) * p * r / (beta^2 * p + r) with beta = 1. */
static double f1_score(double precision, double recall)
{
    double denom = 1.0 * precision + recall;
    if (denom == 0.0) denom = 1.0;
    return (1.0 + 1.0) * precision * recall / denom;
}

static int validate_input(cnk_ctx *ctx, const cnk_metrics_input *in)
{
    if (in->n_samples == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "metrics: no samples");
    if (in->n_samples > MAX_SAMPLES) return cnk_fail(ctx, CNK_ERR_INPUT, "metrics: too many samples (%zu)", in->n_samples);
    if (in->n_classes == 0 || in->n_classes > MAX_CLASSES)
        return cnk_fail(ctx, CNK_ERR_INPUT, "metrics: %zu classes (expected 1 to %zu)", in->n_classes, MAX_CLASSES);
    if (!in->class_names || !in->y_true || !in->y_pred)
        return cnk_fail(ctx, CNK_ERR_ARG, "metrics: class names, true and predicted labels are required");
    for (size_t c = 0; c < in->n_classes; c++)
        if (!in->class_names[c]) return cnk_fail(ctx, CNK_ERR_ARG, "metrics: class %zu has no name", c);
    for (size_t i = 0; i < in->n_samples; i++) {
        if (in->y_true[i] < 0 || (size_t)in->y_true[i] >= in->n_classes)
            return cnk_fail(ctx, CNK_ERR_ARG, "metrics: sample %zu has true class index %d out of range", i, in->y_true[i]);
        if (in->y_pred[i] < 0 || (size_t)in->y_pred[i] >= in->n_classes)
            return cnk_fail(ctx, CNK_ERR_ARG, "metrics: sample %zu has predicted class index %d out of range", i,
                            in->y_pred[i]);
    }
    if (in->proba) {
        for (size_t i = 0; i < in->n_samples * in->n_classes; i++)
            if (!isfinite(in->proba[i]) || in->proba[i] < 0)
                return cnk_fail(ctx, CNK_ERR_INPUT, "metrics: sample %zu has an invalid probability for class '%s'",
                                i / in->n_classes, in->class_names[i % in->n_classes]);
    }
    return CNK_OK;
}

typedef struct named_class {
    const char *name;
    int index;
} named_class;

static int compare_named(const void *a, const void *b)
{
    const named_class *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* The input classes' indices sorted by name; fails on duplicate names. */
static int sorted_class_order(cnk_ctx *ctx, const cnk_metrics_input *in, int *order)
{
    named_class *sorted = malloc(in->n_classes * sizeof *sorted);
    if (!sorted) return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    for (size_t c = 0; c < in->n_classes; c++) sorted[c] = (named_class){in->class_names[c], (int)c};
    qsort(sorted, in->n_classes, sizeof *sorted, compare_named);
    int rc = CNK_OK;
    for (size_t s = 0; s < in->n_classes; s++) {
        order[s] = sorted[s].index;
        if (s > 0 && rc == CNK_OK && strcmp(sorted[s - 1].name, sorted[s].name) == 0)
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "metrics: class name '%s' appears twice", sorted[s].name);
    }
    free(sorted);
    return rc;
}

static int alloc_metrics(cnk_ctx *ctx, cnk_metrics *m, size_t k)
{
    m->class_names = calloc(k, sizeof *m->class_names);
    m->class_index = calloc(k, sizeof *m->class_index);
    m->precision = calloc(k, sizeof *m->precision);
    m->recall = calloc(k, sizeof *m->recall);
    m->f1 = calloc(k, sizeof *m->f1);
    m->support = calloc(k, sizeof *m->support);
    m->confusion = calloc(k * k, sizeof *m->confusion);
    m->confusion_norm = calloc(k * k, sizeof *m->confusion_norm);
    m->roc_auc = calloc(k, sizeof *m->roc_auc);
    if (!m->class_names || !m->class_index || !m->precision || !m->recall || !m->f1 || !m->support ||
        !m->confusion || !m->confusion_norm || !m->roc_auc)
        return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory for %zu classes", k);
    return CNK_OK;
}

/* Chooses the report classes (those seen as truth or prediction, in name order) and fills the
 * confusion matrix. to_report maps an input class index to its report position (-1 if unused). */
static int build_confusion(cnk_ctx *ctx, const cnk_metrics_input *in, const int *order, int *to_report,
                           cnk_metrics *m)
{
    unsigned char *used = calloc(in->n_classes, 1);
    if (!used) return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    for (size_t i = 0; i < in->n_samples; i++) used[in->y_true[i]] = used[in->y_pred[i]] = 1;
    size_t k = 0;
    for (size_t s = 0; s < in->n_classes; s++) {
        to_report[order[s]] = used[order[s]] ? (int)k : -1;
        if (used[order[s]]) k++;
    }
    free(used);
    int rc = alloc_metrics(ctx, m, k);
    if (rc) return rc;
    m->n_classes = k;
    for (size_t c = 0; c < in->n_classes; c++) {
        if (to_report[c] < 0) continue;
        m->class_index[to_report[c]] = (int)c;
        m->class_names[to_report[c]] = strdup(in->class_names[c]);
        if (!m->class_names[to_report[c]]) return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    }
    for (size_t i = 0; i < in->n_samples; i++)
        m->confusion[(size_t)to_report[in->y_true[i]] * k + (size_t)to_report[in->y_pred[i]]]++;
    return CNK_OK;
}

static void per_class_scores(cnk_metrics *m)
{
    size_t k = m->n_classes, correct = 0;
    for (size_t c = 0; c < k; c++) {
        size_t tp = m->confusion[c * k + c], true_sum = 0, pred_sum = 0;
        for (size_t j = 0; j < k; j++) {
            true_sum += m->confusion[c * k + j];
            pred_sum += m->confusion[j * k + c];
        }
        m->support[c] = true_sum;
        m->precision[c] = safe_div((double)tp, (double)pred_sum);
        m->recall[c] = safe_div((double)tp, (double)true_sum);
        m->f1[c] = f1_score(m->precision[c], m->recall[c]);
        for (size_t j = 0; j < k; j++)
            m->confusion_norm[c * k + j] = safe_div((double)m->confusion[c * k + j], (double)true_sum);
        correct += tp;
    }
    m->accuracy = (double)correct / (double)m->n_samples;
}

/* Macro = plain mean, weighted = support-weighted mean, summed in numpy's order (np.average). */
static int averages(cnk_ctx *ctx, cnk_metrics *m)
{
    size_t k = m->n_classes;
    double *tmp = malloc(k * sizeof *tmp);
    if (!tmp) return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    const double *series[3] = {m->precision, m->recall, m->f1};
    double macro[3], weighted[3];
    for (int s = 0; s < 3; s++) {
        macro[s] = cnk_metrics_pairwise_sum(series[s], k) / (double)k;
        for (size_t c = 0; c < k; c++) tmp[c] = series[s][c] * (double)m->support[c];
        weighted[s] = safe_div(cnk_metrics_pairwise_sum(tmp, k), (double)m->n_samples);
    }
    free(tmp);
    m->macro_avg = (cnk_metrics_avg){macro[0], macro[1], macro[2], m->n_samples};
    m->weighted_avg = (cnk_metrics_avg){weighted[0], weighted[1], weighted[2], m->n_samples};
    return CNK_OK;
}

double cnk_metrics_top_k_accuracy(const cnk_metrics_input *in, size_t k)
{
    if (!in->proba || in->n_samples == 0) return NAN;
    /* Rank in name order so ties break as scikit-learn's stable argsort over sorted labels does. */
    size_t n_classes = in->n_classes, hits = 0;
    for (size_t i = 0; i < in->n_samples; i++) {
        const double *row = in->proba + i * n_classes;
        int t = in->y_true[i];
        size_t above = 0;
        for (size_t c = 0; c < n_classes; c++) {
            if ((int)c == t) continue;
            int later = strcmp(in->class_names[c], in->class_names[t]) > 0;
            if (row[c] > row[t] || (row[c] == row[t] && later)) above++;
        }
        if (above < k) hits++;
    }
    return (double)hits / (double)in->n_samples;
}

/* log_loss(labels = all input classes): clip to [eps, 1-eps], renormalise each row, mean of -log p_true. */
static int log_loss(cnk_ctx *ctx, const cnk_metrics_input *in, const int *order, double *out)
{
    size_t n = in->n_samples, k = in->n_classes;
    if (k < 2) {
        *out = NAN;
        return CNK_OK;
    }
    double *row = malloc(k * sizeof *row), *losses = malloc(n * sizeof *losses);
    if (!row || !losses) {
        free(row);
        free(losses);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        /* Columns in name order, as scikit-learn's LabelBinarizer orders them, so the row sum matches. */
        for (size_t s = 0; s < k; s++)
            row[s] = fmin(fmax(in->proba[i * k + (size_t)order[s]], DBL_EPSILON), 1.0 - DBL_EPSILON);
        double sum = cnk_metrics_pairwise_sum(row, k);
        double p_true = fmin(fmax(in->proba[i * k + (size_t)in->y_true[i]], DBL_EPSILON), 1.0 - DBL_EPSILON);
        losses[i] = -log(p_true / sum);
    }
    *out = cnk_metrics_pairwise_sum(losses, n) / (double)n;
    free(row);
    free(losses);
    return CNK_OK;
}

typedef struct scored {
    double score;
    unsigned char positive;
} scored;

static int compare_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return (x->score > y->score) - (x->score < y->score);
}

int cnk_metrics_roc_auc(cnk_ctx *ctx, const double *scores, const unsigned char *is_positive, size_t n,
                        double *auc)
{
    size_t n_pos = 0;
    for (size_t i = 0; i < n; i++) n_pos += is_positive[i] != 0;
    *auc = NAN;
    if (n_pos == 0 || n_pos == n) return CNK_OK;
    scored *items = malloc(n * sizeof *items);
    if (!items) return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    for (size_t i = 0; i < n; i++) items[i] = (scored){scores[i], is_positive[i] != 0};
    qsort(items, n, sizeof *items, compare_scored);
    /* Mann-Whitney: sum of the positives' ranks, tied scores sharing their average rank. */
    double rank_sum = 0;
    for (size_t start = 0; start < n;) {
        size_t end = start, pos_in_group = 0;
        while (end < n && items[end].score == items[start].score) pos_in_group += items[end++].positive;
        rank_sum += (double)pos_in_group * ((double)(start + 1) + (double)end) / 2.0;
        start = end;
    }
    free(items);
    double n_neg = (double)(n - n_pos);
    *auc = (rank_sum - (double)n_pos * ((double)n_pos + 1.0) / 2.0) / ((double)n_pos * n_neg);
    return CNK_OK;
}

static int per_class_auc(cnk_ctx *ctx, const cnk_metrics_input *in, cnk_metrics *m)
{
    size_t n = in->n_samples, k = in->n_classes;
    double *scores = malloc(n * sizeof *scores);
    unsigned char *positive = malloc(n);
    int rc = (scores && positive) ? CNK_OK : cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    for (size_t c = 0; c < m->n_classes && rc == CNK_OK; c++) {
        int col = m->class_index[c];
        for (size_t i = 0; i < n; i++) {
            scores[i] = in->proba[i * k + (size_t)col];
            positive[i] = in->y_true[i] == col;
        }
        rc = cnk_metrics_roc_auc(ctx, scores, positive, n, &m->roc_auc[c]);
    }
    free(scores);
    free(positive);
    return rc;
}

static int probability_metrics(cnk_ctx *ctx, const cnk_metrics_input *in, const int *order, cnk_metrics *m)
{
    for (size_t c = 0; c < m->n_classes; c++) m->roc_auc[c] = NAN;
    for (size_t k = 0; k < CNK_METRICS_MAX_TOP_K; k++) m->top_k[k] = NAN;
    m->log_loss = NAN;
    if (!in->proba) return CNK_OK;
    m->has_proba = 1;
    m->n_proba_classes = in->n_classes;
    m->max_top_k = in->n_classes < CNK_METRICS_MAX_TOP_K ? in->n_classes : CNK_METRICS_MAX_TOP_K;
    for (size_t k = 1; k <= m->max_top_k; k++) m->top_k[k - 1] = cnk_metrics_top_k_accuracy(in, k);
    int rc = log_loss(ctx, in, order, &m->log_loss);
    if (rc) return rc;
    return per_class_auc(ctx, in, m);
}

int cnk_metrics_compute(cnk_ctx *ctx, const cnk_metrics_input *in, cnk_metrics *out)
{
    memset(out, 0, sizeof *out);
    int rc = validate_input(ctx, in);
    if (rc) return rc;
    int *order = malloc(in->n_classes * sizeof *order), *to_report = malloc(in->n_classes * sizeof *to_report);
    rc = (order && to_report) ? CNK_OK : cnk_fail(ctx, CNK_ERR_NOMEM, "metrics: out of memory");
    out->n_samples = in->n_samples;
    if (rc == CNK_OK) rc = sorted_class_order(ctx, in, order);
    if (rc == CNK_OK) rc = build_confusion(ctx, in, order, to_report, out);
    if (rc == CNK_OK) per_class_scores(out);
    if (rc == CNK_OK) rc = averages(ctx, out);
    if (rc == CNK_OK) rc = probability_metrics(ctx, in, order, out);
    free(order);
    free(to_report);
    if (rc) cnk_metrics_release(out);
    return rc;
}

void cnk_metrics_release(cnk_metrics *m)
{
    if (m->class_names)
        for (size_t c = 0; c < m->n_classes; c++) free(m->class_names[c]);
    free(m->class_names);
    free(m->class_index);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->support);
    free(m->confusion);
    free(m->confusion_norm);
    free(m->roc_auc);
    memset(m, 0, sizeof *m);
}

int cnk_metrics_find_class(const cnk_metrics *m, const char *name)
{
    for (size_t c = 0; c < m->n_classes; c++)
        if (strcmp(m->class_names[c], name) == 0) return (int)c;
    return -1;
}
