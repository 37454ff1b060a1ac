/* report_text.c: report.txt: scikit-learn's classification_report layout, then the confusion matrix. */
#include "pipeline/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/report_buf.h"

void cnk_report_model_metrics_input(const cnk_report_model *model, cnk_metrics_input *in)
{
    in->n_samples = model->n_samples;
    in->n_classes = model->n_classes;
    in->class_names = model->class_names;
    in->y_true = model->y_true;
    in->y_pred = model->y_pred;
    in->proba = model->proba;
}

/* One row in the "{:>{width}s}  {:>9.{d}f} {:>9.{d}f} {:>9.{d}f} {:>9}" layout. */
static void score_row(cnk_strbuf *b, const char *name, size_t width, int digits, double p, double r, double f,
                      size_t support)
{
    cnk_rbuf_pad_left(b, name, width);
    cnk_strbuf_printf(b, "  %9.*f %9.*f %9.*f %9zu\n", digits, p, digits, r, digits, f, support);
}

int cnk_report_format_classification(cnk_ctx *ctx, const cnk_metrics *m, int digits, char **text)
{
    *text = NULL;
    if (digits < 0 || digits > 17) return cnk_fail(ctx, CNK_ERR_ARG, "report: digits %d out of range", digits);
    size_t width = strlen("weighted avg");
    for (size_t c = 0; c < m->n_classes; c++) {
        size_t len = cnk_utf8_length(m->class_names[c]);
        if (len > width) width = len;
    }
    if ((size_t)digits > width) width = (size_t)digits;
    cnk_strbuf b;
    cnk_strbuf_init(&b);
    cnk_strbuf_repeat(&b, ' ', width);
    cnk_strbuf_printf(&b, "  %9s %9s %9s %9s\n\n", "precision", "recall", "f1-score", "support");
    for (size_t c = 0; c < m->n_classes; c++)
        score_row(&b, m->class_names[c], width, digits, m->precision[c], m->recall[c], m->f1[c], m->support[c]);
    cnk_strbuf_puts(&b, "\n");
    /* scikit-learn prints the micro F1 here, which is 2*a*a/(a+a) for accuracy a: keep its rounding. */
    double a = m->accuracy, denom = a + a;
    double micro_f1 = (1.0 + 1.0) * a * a / (denom == 0.0 ? 1.0 : denom);
    cnk_rbuf_pad_left(&b, "accuracy", width);
    cnk_strbuf_printf(&b, "  %9s %9s %9.*f %9zu\n", "", "", digits, micro_f1, m->n_samples);
    score_row(&b, "macro avg", width, digits, m->macro_avg.precision, m->macro_avg.recall, m->macro_avg.f1,
              m->macro_avg.support);
    score_row(&b, "weighted avg", width, digits, m->weighted_avg.precision, m->weighted_avg.recall,
              m->weighted_avg.f1, m->weighted_avg.support);
    *text = cnk_strbuf_take(&b);
    if (!*text) return cnk_fail(ctx, CNK_ERR_NOMEM, "report: out of memory formatting the table");
    return CNK_OK;
}

/* Counts with a header row of class names; each column as wide as its name or its largest count. */
static void confusion_text(cnk_strbuf *b, const cnk_metrics *m)
{
    size_t k = m->n_classes, row_width = strlen("true \\ predicted");
    cnk_strbuf_puts(b, "confusion matrix (rows: true class, columns: predicted class)\n");
    for (size_t c = 0; c < k; c++) {
        size_t len = cnk_utf8_length(m->class_names[c]);
        if (len > row_width) row_width = len;
    }
    size_t *col_width = calloc(k, sizeof *col_width);
    if (!col_width) {
        b->failed = 1;
        return;
    }
    for (size_t j = 0; j < k; j++) {
        col_width[j] = cnk_utf8_length(m->class_names[j]);
        for (size_t i = 0; i < k; i++) {
            char num[32];
            size_t len = (size_t)snprintf(num, sizeof num, "%zu", m->confusion[i * k + j]);
            if (len > col_width[j]) col_width[j] = len;
        }
    }
    cnk_rbuf_pad_left(b, "true \\ predicted", row_width);
    for (size_t j = 0; j < k; j++) {
        cnk_strbuf_puts(b, "  ");
        cnk_rbuf_pad_left(b, m->class_names[j], col_width[j]);
    }
    cnk_strbuf_puts(b, "\n");
    for (size_t i = 0; i < k; i++) {
        cnk_rbuf_pad_left(b, m->class_names[i], row_width);
        for (size_t j = 0; j < k; j++) cnk_strbuf_printf(b, "  %*zu", (int)col_width[j], m->confusion[i * k + j]);
        cnk_strbuf_puts(b, "\n");
    }
    free(col_width);
}

int cnk_report_format_text(cnk_ctx *ctx, const cnk_report_model *model, char **text)
{
    *text = NULL;
    cnk_metrics_input in;
    cnk_report_model_metrics_input(model, &in);
    cnk_metrics m;
    int rc = cnk_metrics_compute(ctx, &in, &m);
    if (rc) return rc;
    char *table = NULL;
    rc = cnk_report_format_classification(ctx, &m, 2, &table);
    if (rc == CNK_OK) {
        cnk_strbuf b;
        cnk_strbuf_init(&b);
        cnk_strbuf_puts(&b, table);
        cnk_strbuf_puts(&b, "\n");
        confusion_text(&b, &m);
        *text = cnk_strbuf_take(&b);
        if (!*text) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "report: out of memory formatting the report");
    }
    free(table);
    cnk_metrics_release(&m);
    return rc;
}
