#include "pipeline/report_html.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/report_buf.h"

#define DEFAULT_MAX_MISCLASSIFIED 50

static const char *const page_style =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;"
    "background:#f4f6f9;color:#1d2330;line-height:1.45}\n"
    "main{max-width:1120px;margin:0 auto;padding:28px 32px 48px}\n"
    "h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 12px;padding-bottom:6px;"
    "border-bottom:2px solid #dde3ec}\n"
    ".sub{color:#5b6577;margin:0 0 20px}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:12px}\n"
    ".card{background:#fff;border:1px solid #dde3ec;border-radius:10px;padding:12px 18px;min-width:120px}\n"
    ".card .v{font-size:26px;font-weight:650;color:#1f5fa8}.card .k{font-size:13px;color:#5b6577}\n"
    "table{border-collapse:collapse;background:#fff;border:1px solid #dde3ec;font-size:14px}\n"
    "th,td{padding:6px 12px;border-bottom:1px solid #e8ecf2;text-align:right;white-space:nowrap}\n"
    "th{background:#eef2f8;font-weight:600}td.l,th.l{text-align:left;white-space:normal;"
    "overflow-wrap:anywhere;max-width:420px}\n"
    "tr:nth-child(even) td{background:#fafbfd}\n"
    "td.bar{background-repeat:no-repeat!important}\n"
    "tr.avg td{font-weight:600;background:#f1f4f9}\n"
    "td.best{font-weight:700;color:#17692f}\n"
    ".scroll{overflow-x:auto;max-width:100%}\n"
    "figure{background:#fff;border:1px solid #dde3ec;border-radius:10px;padding:12px;margin:0 0 18px;"
    "display:inline-block;max-width:calc(100% - 26px)}\n"
    "figure img{max-width:100%;height:auto;display:block}figcaption{color:#5b6577;font-size:13px;margin-top:6px}\n"
    "details{margin:10px 0}summary{cursor:pointer;color:#1f5fa8}\n"
    ".note{color:#5b6577;font-size:13px}\n"
    "footer{margin-top:40px;color:#8a93a3;font-size:12px}\n";

static void number_cell(cnk_strbuf *b, double v, int digits)
{
    if (isfinite(v))
        cnk_strbuf_printf(b, "<td>%.*f</td>", digits, v);
    else
        cnk_strbuf_puts(b, "<td>&ndash;</td>");
}

/* A cell with a proportional bar behind the value, so the table reads at a glance. */
static void bar_cell(cnk_strbuf *b, double v)
{
    double pct = isfinite(v) ? fmax(0, fmin(1, v)) * 100 : 0;
    cnk_strbuf_printf(b,
                    "<td class=\"bar\" style=\"background:linear-gradient(90deg,#cfe0f5 %.1f%%,transparent %.1f%%)\">"
                    "%.2f</td>",
                    pct, pct, v);
}

static void card(cnk_strbuf *b, const char *key, const char *value)
{
    cnk_strbuf_puts(b, "<div class=\"card\"><div class=\"v\">");
    cnk_rbuf_html(b, value);
    cnk_strbuf_puts(b, "</div><div class=\"k\">");
    cnk_rbuf_html(b, key);
    cnk_strbuf_puts(b, "</div></div>\n");
}

static void summary(cnk_strbuf *b, const cnk_metrics *m)
{
    char v[64];
    cnk_strbuf_puts(b, "<h2>Summary</h2>\n<div class=\"cards\">\n");
    snprintf(v, sizeof v, "%.4f", m->accuracy);
    card(b, "accuracy", v);
    snprintf(v, sizeof v, "%.4f", m->macro_avg.f1);
    card(b, "macro F1", v);
    snprintf(v, sizeof v, "%.4f", m->weighted_avg.f1);
    card(b, "weighted F1", v);
    snprintf(v, sizeof v, "%zu", m->n_samples);
    card(b, "samples", v);
    snprintf(v, sizeof v, "%zu", m->n_classes);
    card(b, "classes", v);
    if (m->has_proba) {
        /* Top-k with k >= the class count is always 1: show top-3, or top-2 for three classes. */
        size_t k = m->n_proba_classes > 3 ? 3 : m->n_proba_classes == 3 ? 2 : 0;
        if (k) {
            char key[32];
            snprintf(v, sizeof v, "%.4f", m->top_k[k - 1]);
            snprintf(key, sizeof key, "top-%zu accuracy", k);
            card(b, key, v);
        }
        if (isfinite(m->log_loss)) {
            snprintf(v, sizeof v, "%.4f", m->log_loss);
            card(b, "log loss", v);
        }
    }
    cnk_strbuf_puts(b, "</div>\n");
}

static void class_table(cnk_strbuf *b, const cnk_metrics *m)
{
    cnk_strbuf_puts(b, "<h2>Per-class metrics</h2>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">class</th>"
                     "<th>precision</th><th>recall</th><th>F1</th><th>support</th>");
    if (m->has_proba) cnk_strbuf_puts(b, "<th>ROC AUC</th>");
    cnk_strbuf_puts(b, "</tr>\n");
    for (size_t c = 0; c < m->n_classes; c++) {
        cnk_strbuf_puts(b, "<tr><td class=\"l\">");
        cnk_rbuf_html(b, m->class_names[c]);
        cnk_strbuf_puts(b, "</td>");
        number_cell(b, m->precision[c], 2);
        number_cell(b, m->recall[c], 2);
        bar_cell(b, m->f1[c]);
        cnk_strbuf_printf(b, "<td>%zu</td>", m->support[c]);
        if (m->has_proba) number_cell(b, m->roc_auc[c], 3);
        cnk_strbuf_puts(b, "</tr>\n");
    }
    const char *colspan = m->has_proba ? "<td></td>" : "";
    cnk_strbuf_printf(b, "<tr class=\"avg\"><td class=\"l\">accuracy</td><td></td><td></td><td>%.2f</td><td>%zu</td>%s</tr>\n",
                    m->accuracy, m->n_samples, colspan);
    const cnk_metrics_avg *avgs[2] = {&m->macro_avg, &m->weighted_avg};
    const char *names[2] = {"macro avg", "weighted avg"};
    for (int a = 0; a < 2; a++) {
        cnk_strbuf_printf(b, "<tr class=\"avg\"><td class=\"l\">%s</td>", names[a]);
        number_cell(b, avgs[a]->precision, 2);
        number_cell(b, avgs[a]->recall, 2);
        number_cell(b, avgs[a]->f1, 2);
        cnk_strbuf_printf(b, "<td>%zu</td>%s</tr>\n", avgs[a]->support, colspan);
    }
    cnk_strbuf_puts(b, "</table></div>\n");
}

static void confusion_table(cnk_strbuf *b, const cnk_metrics *m)
{
    size_t k = m->n_classes;
    if (k > 100) { /* a million cells would swamp the page */
        cnk_strbuf_puts(b, "<p class=\"note\">The confusion matrix counts are in confusion.csv.</p>\n");
        return;
    }
    cnk_strbuf_puts(b, "<details><summary>Confusion matrix as a table (rows: true class, columns: predicted)</summary>"
                     "\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">true \\ predicted</th>");
    for (size_t j = 0; j < k; j++) {
        cnk_strbuf_puts(b, "<th>");
        cnk_rbuf_html(b, m->class_names[j]);
        cnk_strbuf_puts(b, "</th>");
    }
    cnk_strbuf_puts(b, "</tr>\n");
    for (size_t i = 0; i < k; i++) {
        cnk_strbuf_puts(b, "<tr><th class=\"l\">");
        cnk_rbuf_html(b, m->class_names[i]);
        cnk_strbuf_puts(b, "</th>");
        for (size_t j = 0; j < k; j++)
            cnk_strbuf_printf(b, i == j ? "<td><b>%zu</b></td>" : "<td>%zu</td>", m->confusion[i * k + j]);
        cnk_strbuf_puts(b, "</tr>\n");
    }
    cnk_strbuf_puts(b, "</table></div></details>\n");
}

static void images_section(cnk_strbuf *b, const cnk_report_image *images, size_t n_images)
{
    if (n_images == 0) return;
    cnk_strbuf_puts(b, "<h2>Charts</h2>\n");
    for (size_t i = 0; i < n_images; i++) {
        cnk_strbuf_puts(b, "<figure><img alt=\"");
        cnk_rbuf_html(b, images[i].caption);
        cnk_strbuf_puts(b, "\" src=\"data:image/png;base64,");
        cnk_rbuf_base64(b, images[i].png, images[i].size);
        cnk_strbuf_puts(b, "\"><figcaption>");
        cnk_rbuf_html(b, images[i].caption);
        cnk_strbuf_puts(b, "</figcaption></figure>\n");
    }
}

/* A misclassified sample and how sure the model was of its wrong answer. */
typedef struct mistake {
    size_t index;
    double confidence;
} mistake;

static int by_confidence(const void *a, const void *b)
{
    const mistake *x = a, *y = b;
    if (x->confidence != y->confidence) return x->confidence < y->confidence ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

static int mistakes_section(cnk_ctx *ctx, cnk_strbuf *b, const cnk_report_model *model, size_t cap)
{
    size_t n = model->n_samples, k = model->n_classes, n_wrong = 0;
    mistake *list = malloc((n ? n : 1) * sizeof *list);
    if (!list) return cnk_fail(ctx, CNK_ERR_NOMEM, "report.html: out of memory");
    for (size_t i = 0; i < n; i++)
        if (model->y_true[i] != model->y_pred[i])
            list[n_wrong++] = (mistake){i, model->proba ? model->proba[i * k + (size_t)model->y_pred[i]] : 0};
    /* Most confident mistakes first: they are the ones worth a look. */
    if (model->proba) qsort(list, n_wrong, sizeof *list, by_confidence);
    cnk_strbuf_puts(b, "<h2>Misclassified examples</h2>\n");
    if (n_wrong == 0) {
        cnk_strbuf_puts(b, "<p class=\"note\">None: every sample was classified correctly.</p>\n");
        free(list);
        return CNK_OK;
    }
    size_t shown = n_wrong < cap ? n_wrong : cap;
    cnk_strbuf_printf(b, "<p class=\"note\">%zu of %zu samples are misclassified; showing %zu%s.</p>\n", n_wrong, n,
                    shown, model->proba ? ", most confident first" : "");
    cnk_strbuf_puts(b, "<div class=\"scroll\"><table>\n<tr><th class=\"l\">");
    cnk_strbuf_puts(b, model->paths ? "path" : "sample");
    cnk_strbuf_puts(b, "</th><th class=\"l\">true</th><th class=\"l\">predicted</th>");
    if (model->proba) cnk_strbuf_puts(b, "<th>p(predicted)</th><th>p(true)</th>");
    cnk_strbuf_puts(b, "</tr>\n");
    for (size_t r = 0; r < shown; r++) {
        size_t i = list[r].index;
        cnk_strbuf_puts(b, "<tr><td class=\"l\">");
        if (model->paths)
            cnk_rbuf_html(b, model->paths[i]);
        else
            cnk_strbuf_printf(b, "#%zu", i + 1);
        cnk_strbuf_puts(b, "</td><td class=\"l\">");
        cnk_rbuf_html(b, model->class_names[model->y_true[i]]);
        cnk_strbuf_puts(b, "</td><td class=\"l\">");
        cnk_rbuf_html(b, model->class_names[model->y_pred[i]]);
        cnk_strbuf_puts(b, "</td>");
        if (model->proba) {
            number_cell(b, model->proba[i * k + (size_t)model->y_pred[i]], 3);
            number_cell(b, model->proba[i * k + (size_t)model->y_true[i]], 3);
        }
        cnk_strbuf_puts(b, "</tr>\n");
    }
    cnk_strbuf_puts(b, "</table></div>\n");
    free(list);
    return CNK_OK;
}

static void params_section(cnk_strbuf *b, const cnk_report_input *input)
{
    if (input->n_params == 0) return;
    cnk_strbuf_puts(b, "<h2>Run parameters</h2>\n<table>\n");
    for (size_t i = 0; i < input->n_params; i++) {
        cnk_strbuf_puts(b, "<tr><th class=\"l\">");
        cnk_rbuf_html(b, input->params[i].key ? input->params[i].key : "");
        cnk_strbuf_puts(b, "</th><td class=\"l\">");
        cnk_rbuf_html(b, input->params[i].value ? input->params[i].value : "");
        cnk_strbuf_puts(b, "</td></tr>\n");
    }
    cnk_strbuf_puts(b, "</table>\n");
}

static const char *model_name(const cnk_report_input *input, size_t m)
{
    return input->models[m].name ? input->models[m].name : "model";
}

/* Per-class F1 of every model, rows = classes of all models (sorted), best value per row in bold. */
static int comparison_section(cnk_ctx *ctx, cnk_strbuf *b, const cnk_report_input *input, const cnk_metrics *metrics)
{
    size_t n = input->n_models;
    cnk_strbuf_puts(b, "<h2>Model comparison</h2>\n<table>\n<tr><th class=\"l\">model</th><th>accuracy</th>"
                     "<th>macro F1</th><th>weighted F1</th><th>samples</th></tr>\n");
    for (size_t m = 0; m < n; m++) {
        cnk_strbuf_puts(b, "<tr><td class=\"l\">");
        cnk_rbuf_html(b, model_name(input, m));
        cnk_strbuf_puts(b, "</td>");
        bar_cell(b, metrics[m].accuracy);
        bar_cell(b, metrics[m].macro_avg.f1);
        bar_cell(b, metrics[m].weighted_avg.f1);
        cnk_strbuf_printf(b, "<td>%zu</td></tr>\n", metrics[m].n_samples);
    }
    cnk_strbuf_puts(b, "</table>\n<h3>F1 per class</h3>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">class</th>");
    for (size_t m = 0; m < n; m++) {
        cnk_strbuf_puts(b, "<th>");
        cnk_rbuf_html(b, model_name(input, m));
        cnk_strbuf_puts(b, "</th>");
    }
    cnk_strbuf_puts(b, "</tr>\n");
    size_t total = 0;
    for (size_t m = 0; m < n; m++) total += metrics[m].n_classes;
    const char **names = malloc((total ? total : 1) * sizeof *names);
    if (!names) return cnk_fail(ctx, CNK_ERR_NOMEM, "report.html: out of memory");
    size_t n_names = 0;
    for (size_t m = 0; m < n; m++)
        for (size_t c = 0; c < metrics[m].n_classes; c++) {
            size_t j = 0;
            while (j < n_names && strcmp(names[j], metrics[m].class_names[c]) != 0) j++;
            if (j == n_names) names[n_names++] = metrics[m].class_names[c];
        }
    for (size_t i = 1; i < n_names; i++) /* insertion sort: bytewise like every class list */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < n_names; i++) {
        cnk_strbuf_puts(b, "<tr><td class=\"l\">");
        cnk_rbuf_html(b, names[i]);
        cnk_strbuf_puts(b, "</td>");
        double best = -1;
        for (size_t m = 0; m < n; m++) {
            int c = cnk_metrics_find_class(&metrics[m], names[i]);
            if (c >= 0 && metrics[m].f1[c] > best) best = metrics[m].f1[c];
        }
        for (size_t m = 0; m < n; m++) {
            int c = cnk_metrics_find_class(&metrics[m], names[i]);
            if (c < 0)
                cnk_strbuf_puts(b, "<td>&ndash;</td>");
            else
                cnk_strbuf_printf(b, "<td%s>%.2f</td>", metrics[m].f1[c] == best && n > 1 ? " class=\"best\"" : "",
                                metrics[m].f1[c]);
        }
        cnk_strbuf_puts(b, "</tr>\n");
    }
    cnk_strbuf_puts(b, "</table></div>\n");
    free(names);
    return CNK_OK;
}

int cnk_report_build_html(cnk_ctx *ctx, const cnk_report_input *input, const cnk_metrics *metrics,
                          const cnk_report_image *images, size_t n_images, char **html)
{
    *html = NULL;
    const char *title = input->title ? input->title : "cnnkit evaluation report";
    cnk_strbuf b;
    cnk_strbuf_init(&b);
    cnk_strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    cnk_rbuf_html(&b, title);
    cnk_strbuf_printf(&b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", page_style);
    cnk_rbuf_html(&b, title);
    cnk_strbuf_puts(&b, "</h1>\n<p class=\"sub\">Model <b>");
    cnk_rbuf_html(&b, model_name(input, 0));
    cnk_strbuf_printf(&b, "</b> on %zu samples of %zu classes", metrics[0].n_samples, metrics[0].n_classes);
    if (input->n_models > 1) cnk_strbuf_printf(&b, ", compared with %zu other model%s", input->n_models - 1,
                                             input->n_models > 2 ? "s" : "");
    cnk_strbuf_puts(&b, ".</p>\n");
    summary(&b, &metrics[0]);
    class_table(&b, &metrics[0]);
    confusion_table(&b, &metrics[0]);
    int rc = CNK_OK;
    if (input->n_models > 1) rc = comparison_section(ctx, &b, input, metrics);
    images_section(&b, images, n_images);
    size_t cap = input->max_misclassified ? input->max_misclassified : DEFAULT_MAX_MISCLASSIFIED;
    if (rc == CNK_OK) rc = mistakes_section(ctx, &b, &input->models[0], cap);
    params_section(&b, input);
    cnk_strbuf_printf(&b, "<footer>Generated by cnnkit %s. Metrics follow scikit-learn's definitions "
                        "(zero division counts as 0).</footer>\n</main>\n</body>\n</html>\n",
                    CNK_VERSION_STRING);
    if (rc) {
        cnk_strbuf_release(&b);
        return rc;
    }
    *html = cnk_strbuf_take(&b);
    if (!*html) return cnk_fail(ctx, CNK_ERR_NOMEM, "report.html: out of memory");
    return CNK_OK;
}
