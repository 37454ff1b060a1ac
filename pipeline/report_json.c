#include "pipeline/report_json.h"

#include <stdio.h>

#include "pipeline/report_buf.h"

static void avg_object(cnk_strbuf *b, const cnk_metrics_avg *avg)
{
    cnk_strbuf_puts(b, "{\"precision\": ");
    cnk_rbuf_json_number(b, avg->precision);
    cnk_strbuf_puts(b, ", \"recall\": ");
    cnk_rbuf_json_number(b, avg->recall);
    cnk_strbuf_puts(b, ", \"f1\": ");
    cnk_rbuf_json_number(b, avg->f1);
    cnk_strbuf_printf(b, ", \"support\": %zu}", avg->support);
}

static void class_list(cnk_strbuf *b, const cnk_metrics *m)
{
    cnk_strbuf_puts(b, "[");
    for (size_t c = 0; c < m->n_classes; c++) {
        if (c) cnk_strbuf_puts(b, ", ");
        cnk_rbuf_json_string(b, m->class_names[c]);
    }
    cnk_strbuf_puts(b, "]");
}

static void per_class(cnk_strbuf *b, const cnk_metrics *m)
{
    cnk_strbuf_puts(b, "{");
    for (size_t c = 0; c < m->n_classes; c++) {
        cnk_strbuf_puts(b, c ? ",\n    " : "\n    ");
        cnk_rbuf_json_string(b, m->class_names[c]);
        cnk_metrics_avg scores = {m->precision[c], m->recall[c], m->f1[c], m->support[c]};
        cnk_strbuf_puts(b, ": ");
        avg_object(b, &scores);
    }
    cnk_strbuf_puts(b, "\n  }");
}

/* A matrix as rows of numbers (counts when counts != NULL, else values). */
static void matrix(cnk_strbuf *b, size_t k, const size_t *counts, const double *values)
{
    cnk_strbuf_puts(b, "[");
    for (size_t i = 0; i < k; i++) {
        cnk_strbuf_puts(b, i ? ",\n    [" : "\n    [");
        for (size_t j = 0; j < k; j++) {
            if (j) cnk_strbuf_puts(b, ", ");
            if (counts)
                cnk_strbuf_printf(b, "%zu", counts[i * k + j]);
            else
                cnk_rbuf_json_number(b, values[i * k + j]);
        }
        cnk_strbuf_puts(b, "]");
    }
    cnk_strbuf_puts(b, "\n  ]");
}

static void probability_fields(cnk_strbuf *b, const cnk_metrics *m)
{
    if (!m->has_proba) return;
    cnk_strbuf_puts(b, ",\n  \"log_loss\": ");
    cnk_rbuf_json_number(b, m->log_loss);
    cnk_strbuf_puts(b, ",\n  \"top_k_accuracy\": {");
    for (size_t k = 1; k <= m->max_top_k; k++) {
        cnk_strbuf_printf(b, "%s\"%zu\": ", k > 1 ? ", " : "", k);
        cnk_rbuf_json_number(b, m->top_k[k - 1]);
    }
    cnk_strbuf_puts(b, "},\n  \"roc_auc\": {");
    for (size_t c = 0; c < m->n_classes; c++) {
        if (c) cnk_strbuf_puts(b, ", ");
        cnk_rbuf_json_string(b, m->class_names[c]);
        cnk_strbuf_puts(b, ": ");
        cnk_rbuf_json_number(b, m->roc_auc[c]);
    }
    cnk_strbuf_puts(b, "}");
}

/* The comparison: one short entry per model, the first being the report's own model. */
static void models_array(cnk_strbuf *b, const cnk_report_input *input, const cnk_metrics *metrics)
{
    cnk_strbuf_puts(b, ",\n  \"models\": [");
    for (size_t i = 0; i < input->n_models; i++) {
        const cnk_metrics *m = &metrics[i];
        cnk_strbuf_puts(b, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        cnk_rbuf_json_string(b, input->models[i].name ? input->models[i].name : "model");
        cnk_strbuf_printf(b, ", \"n_samples\": %zu, \"accuracy\": ", m->n_samples);
        cnk_rbuf_json_number(b, m->accuracy);
        cnk_strbuf_puts(b, ", \"macro_f1\": ");
        cnk_rbuf_json_number(b, m->macro_avg.f1);
        cnk_strbuf_puts(b, ", \"weighted_f1\": ");
        cnk_rbuf_json_number(b, m->weighted_avg.f1);
        cnk_strbuf_puts(b, ", \"per_class_f1\": {");
        for (size_t c = 0; c < m->n_classes; c++) {
            if (c) cnk_strbuf_puts(b, ", ");
            cnk_rbuf_json_string(b, m->class_names[c]);
            cnk_strbuf_puts(b, ": ");
            cnk_rbuf_json_number(b, m->f1[c]);
        }
        cnk_strbuf_puts(b, "}}");
    }
    cnk_strbuf_puts(b, "\n  ]");
}

int cnk_report_build_json(cnk_ctx *ctx, const cnk_report_input *input, const cnk_metrics *metrics, char **json)
{
    const cnk_metrics *m = &metrics[0];
    cnk_strbuf b;
    cnk_strbuf_init(&b);
    cnk_strbuf_puts(&b, "{\n  \"classes\": ");
    class_list(&b, m);
    cnk_strbuf_puts(&b, ",\n  \"per_class\": ");
    per_class(&b, m);
    cnk_strbuf_puts(&b, ",\n  \"accuracy\": ");
    cnk_rbuf_json_number(&b, m->accuracy);
    cnk_strbuf_puts(&b, ",\n  \"macro_avg\": ");
    avg_object(&b, &m->macro_avg);
    cnk_strbuf_puts(&b, ",\n  \"weighted_avg\": ");
    avg_object(&b, &m->weighted_avg);
    cnk_strbuf_puts(&b, ",\n  \"confusion_matrix\": ");
    matrix(&b, m->n_classes, m->confusion, NULL);
    cnk_strbuf_puts(&b, ",\n  \"confusion_matrix_normalized\": ");
    matrix(&b, m->n_classes, NULL, m->confusion_norm);
    cnk_strbuf_printf(&b, ",\n  \"n_samples\": %zu", m->n_samples);
    probability_fields(&b, m);
    if (input->n_models > 1) models_array(&b, input, metrics);
    cnk_strbuf_puts(&b, "\n}\n");
    *json = cnk_strbuf_take(&b);
    if (!*json) return cnk_fail(ctx, CNK_ERR_NOMEM, "metrics.json: out of memory");
    return CNK_OK;
}
