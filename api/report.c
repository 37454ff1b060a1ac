/* report.c: cnnkit/report.h over pipeline/metrics.h and pipeline/report.h: predictions are collected in
 * growing arrays, the metrics are computed once per batch of additions. */
#include "core/context.h"
#include "pipeline/metrics.h"
#include "pipeline/report.h"

#include <stdlib.h>
#include <string.h>

#include "cnnkit/report.h"

enum { EVALUATION_MAX_CLASSES = 4096 };

struct cnk_evaluation {
    int n_classes;
    char **class_names;
    size_t n, cap;
    int *y_true, *y_pred;
    double *proba;  /* n x n_classes when has_proba */
    char **paths;   /* NULL entries where none was given */
    int has_proba;  /* -1 until the first add decides */
    size_t n_paths; /* how many predictions came with a path */
    cnk_metrics metrics;
    int metrics_valid;
};

void cnk_evaluation_free(cnk_evaluation *ev)
{
    if (!ev) return;
    for (int c = 0; c < ev->n_classes; c++) free(ev->class_names[c]);
    for (size_t i = 0; i < ev->n; i++) free(ev->paths[i]);
    free(ev->class_names);
    free(ev->y_true);
    free(ev->y_pred);
    free(ev->proba);
    free(ev->paths);
    if (ev->metrics_valid) cnk_metrics_release(&ev->metrics);
    free(ev);
}

static int check_names(cnk_ctx *ctx, int n_classes, const char *const *names)
{
    if (n_classes < 1 || n_classes > EVALUATION_MAX_CLASSES || !names)
        return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: %d classes (1 to %d, with names)", n_classes,
                        EVALUATION_MAX_CLASSES);
    for (int c = 0; c < n_classes; c++) {
        if (!names[c] || !names[c][0]) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: class %d has no name", c);
        for (int k = 0; k < c; k++)
            if (strcmp(names[c], names[k]) == 0)
                return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: class name '%s' appears twice", names[c]);
    }
    return CNK_OK;
}

int cnk_evaluation_create(cnk_ctx *ctx, int n_classes, const char *const *class_names, cnk_evaluation **out)
{
    if (!out) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: NULL output pointer");
    *out = NULL;
    int rc = check_names(ctx, n_classes, class_names);
    if (rc) return rc;
    cnk_evaluation *ev = calloc(1, sizeof *ev);
    if (!ev) return cnk_fail(ctx, CNK_ERR_NOMEM, "evaluation: out of memory");
    ev->has_proba = -1;
    ev->class_names = calloc((size_t)n_classes, sizeof *ev->class_names);
    if (!ev->class_names) {
        free(ev);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "evaluation: out of memory");
    }
    ev->n_classes = n_classes;
    for (int c = 0; c < n_classes; c++)
        if (!(ev->class_names[c] = strdup(class_names[c]))) {
            cnk_evaluation_free(ev);
            return cnk_fail(ctx, CNK_ERR_NOMEM, "evaluation: out of memory");
        }
    *out = ev;
    return CNK_OK;
}

static int grow(cnk_ctx *ctx, cnk_evaluation *ev)
{
    if (ev->n < ev->cap) return CNK_OK;
    size_t cap = ev->cap ? ev->cap * 2 : 64, C = (size_t)ev->n_classes;
    int *t = realloc(ev->y_true, cap * sizeof *t);
    if (t) ev->y_true = t;
    int *p = t ? realloc(ev->y_pred, cap * sizeof *p) : NULL;
    if (p) ev->y_pred = p;
    char **paths = p ? realloc(ev->paths, cap * sizeof *paths) : NULL;
    if (paths) ev->paths = paths;
    double *proba = paths && ev->has_proba == 1 ? realloc(ev->proba, cap * C * sizeof *proba) : NULL;
    if (proba) ev->proba = proba;
    if (!t || !p || !paths || (ev->has_proba == 1 && !proba))
        return cnk_fail(ctx, CNK_ERR_NOMEM, "evaluation: out of memory for %zu predictions", cap);
    ev->cap = cap;
    return CNK_OK;
}

int cnk_evaluation_add(cnk_ctx *ctx, cnk_evaluation *ev, int true_class, int predicted_class, const double *proba,
                       const char *path)
{
    if (!ev) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: NULL evaluation");
    if (true_class < 0 || true_class >= ev->n_classes || predicted_class < 0 || predicted_class >= ev->n_classes)
        return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: class index %d or %d outside 0..%d", true_class,
                        predicted_class, ev->n_classes - 1);
    if (ev->has_proba >= 0 && ev->has_proba != (proba != NULL))
        return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: probabilities must be given for every prediction or none");
    if (ev->has_proba < 0) ev->has_proba = proba != NULL;
    int rc = grow(ctx, ev);
    if (rc) return rc;
    char *copy = NULL;
    if (path && !(copy = strdup(path))) return cnk_fail(ctx, CNK_ERR_NOMEM, "evaluation: out of memory");
    size_t C = (size_t)ev->n_classes;
    if (proba) memcpy(ev->proba + ev->n * C, proba, C * sizeof *proba);
    ev->y_true[ev->n] = true_class;
    ev->y_pred[ev->n] = predicted_class;
    ev->paths[ev->n] = copy;
    ev->n_paths += copy != NULL;
    ev->n++;
    if (ev->metrics_valid) cnk_metrics_release(&ev->metrics);
    ev->metrics_valid = 0;
    return CNK_OK;
}

size_t cnk_evaluation_count(const cnk_evaluation *ev) { return ev->n; }
int cnk_evaluation_n_classes(const cnk_evaluation *ev) { return ev->n_classes; }

const char *cnk_evaluation_class_name(const cnk_evaluation *ev, int index)
{
    return index >= 0 && index < ev->n_classes ? ev->class_names[index] : NULL;
}

/* The internal report's view of the predictions (borrowed). Paths only when every prediction has one. */
static cnk_report_model model_view(const cnk_evaluation *ev)
{
    cnk_report_model m = {.name = "model", .n_samples = ev->n, .n_classes = (size_t)ev->n_classes,
                          .class_names = (const char *const *)ev->class_names, .y_true = ev->y_true,
                          .y_pred = ev->y_pred, .proba = ev->has_proba == 1 ? ev->proba : NULL,
                          .paths = ev->n_paths == ev->n ? (const char *const *)ev->paths : NULL};
    return m;
}

static int ensure_metrics(cnk_ctx *ctx, cnk_evaluation *ev)
{
    if (!ev) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: NULL evaluation");
    if (ev->n == 0) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: no predictions added");
    if (ev->metrics_valid) return CNK_OK;
    cnk_report_model m = model_view(ev);
    cnk_metrics_input in;
    cnk_report_model_metrics_input(&m, &in);
    int rc = cnk_metrics_compute(ctx, &in, &ev->metrics);
    ev->metrics_valid = rc == CNK_OK;
    return rc;
}

int cnk_evaluation_accuracy(cnk_ctx *ctx, cnk_evaluation *ev, double *accuracy)
{
    int rc = ensure_metrics(ctx, ev);
    if (rc) return rc;
    if (accuracy) *accuracy = ev->metrics.accuracy;
    return CNK_OK;
}

static void put_scores(double p, double r, double f, size_t s, double *precision, double *recall, double *f1,
                       size_t *support)
{
    if (precision) *precision = p;
    if (recall) *recall = r;
    if (f1) *f1 = f;
    if (support) *support = s;
}

int cnk_evaluation_scores(cnk_ctx *ctx, cnk_evaluation *ev, const char *row, double *precision, double *recall,
                          double *f1, size_t *support)
{
    int rc = ensure_metrics(ctx, ev);
    if (rc) return rc;
    if (!row) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: NULL row name");
    const cnk_metrics *m = &ev->metrics;
    const cnk_metrics_avg *avg = strcmp(row, "macro avg") == 0      ? &m->macro_avg
                                 : strcmp(row, "weighted avg") == 0 ? &m->weighted_avg
                                                                    : NULL;
    if (avg) {
        put_scores(avg->precision, avg->recall, avg->f1, avg->support, precision, recall, f1, support);
        return CNK_OK;
    }
    int k = cnk_metrics_find_class(m, row);
    if (k >= 0) {
        put_scores(m->precision[k], m->recall[k], m->f1[k], m->support[k], precision, recall, f1, support);
        return CNK_OK;
    }
    for (int c = 0; c < ev->n_classes; c++)
        if (strcmp(ev->class_names[c], row) == 0) { /* a class nothing was or was predicted as */
            put_scores(0, 0, 0, 0, precision, recall, f1, support);
            return CNK_OK;
        }
    return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: no class or average named '%s'", row);
}

int cnk_evaluation_confusion(cnk_ctx *ctx, cnk_evaluation *ev, int true_class, int predicted_class, size_t *count)
{
    if (!ev || !count) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: NULL argument");
    if (true_class < 0 || true_class >= ev->n_classes || predicted_class < 0 || predicted_class >= ev->n_classes)
        return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: class index %d or %d outside 0..%d", true_class,
                        predicted_class, ev->n_classes - 1);
    size_t n = 0;
    for (size_t i = 0; i < ev->n; i++) n += ev->y_true[i] == true_class && ev->y_pred[i] == predicted_class;
    *count = n;
    return CNK_OK;
}

int cnk_evaluation_report_text(cnk_ctx *ctx, cnk_evaluation *ev, char **text)
{
    if (!text) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: NULL output pointer");
    *text = NULL;
    int rc = ensure_metrics(ctx, ev);
    if (rc) return rc;
    cnk_report_model m = model_view(ev);
    return cnk_report_format_text(ctx, &m, text);
}

int cnk_evaluation_write_report(cnk_ctx *ctx, cnk_evaluation *ev, const char *dir, const char *title)
{
    if (!dir) return cnk_fail(ctx, CNK_ERR_ARG, "evaluation: NULL report folder");
    int rc = ensure_metrics(ctx, ev);
    if (rc) return rc;
    cnk_report_model m = model_view(ev);
    cnk_report_input in = {.title = title, .models = &m, .n_models = 1};
    return cnk_report_write(ctx, dir, &in);
}
