#include "pipeline/report_csv.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/csv.h"

#define PROBA_PREFIX "p_"

/* Where the columns we use are. */
typedef struct columns {
    size_t label, predicted, path;
    int has_path;
    size_t n_proba;
    size_t *proba;  /* the p_ columns, in header order */
} columns;

static int find_columns(cnk_ctx *ctx, const cnk_csv *csv, columns *cols)
{
    memset(cols, 0, sizeof *cols);
    int rc = cnk_csv_require_column(ctx, csv, "label", &cols->label);
    if (rc == CNK_OK) rc = cnk_csv_require_column(ctx, csv, "predicted", &cols->predicted);
    if (rc) return rc;
    cols->has_path = cnk_csv_find_column(csv, "path", &cols->path);
    cols->proba = malloc(csv->n_cols * sizeof *cols->proba);
    if (!cols->proba) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", csv->name);
    for (size_t c = 0; c < csv->n_cols; c++) {
        if (strncmp(csv->header[c], PROBA_PREFIX, strlen(PROBA_PREFIX)) != 0) continue;
        if (csv->header[c][strlen(PROBA_PREFIX)] == '\0')
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: column '%s' names no class", csv->name, csv->header_line,
                            csv->header[c]);
        cols->proba[cols->n_proba++] = c;
    }
    return CNK_OK;
}

static int compare_strings(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

/* Adds the class names (borrowed from the CSV) to a sorted distinct list. */
static int collect_classes(cnk_ctx *ctx, const cnk_csv *csv, const columns *cols, const char ***names, size_t *n)
{
    size_t cap = cols->n_proba ? cols->n_proba : 2 * csv->n_rows;
    const char **list = malloc((cap ? cap : 1) * sizeof *list);
    if (!list) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", csv->name);
    size_t count = 0;
    if (cols->n_proba) {
        for (size_t i = 0; i < cols->n_proba; i++) list[count++] = csv->header[cols->proba[i]] + strlen(PROBA_PREFIX);
    } else {
        for (size_t r = 0; r < csv->n_rows; r++) {
            list[count++] = cnk_csv_cell(csv, r, cols->label);
            list[count++] = cnk_csv_cell(csv, r, cols->predicted);
        }
    }
    qsort(list, count, sizeof *list, compare_strings);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++)
        if (distinct == 0 || strcmp(list[distinct - 1], list[i]) != 0) list[distinct++] = list[i];
    *names = list;
    *n = distinct;
    return CNK_OK;
}

/* The class index of a label or prediction cell. */
static int lookup_class(cnk_ctx *ctx, const cnk_csv *csv, const columns *cols, size_t row, size_t col,
                        const char *const *names, size_t n, int *index)
{
    const char *value = cnk_csv_cell(csv, row, col);
    if (value[0] == '\0')
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: empty %s", csv->name, cnk_csv_line(csv, row), csv->header[col]);
    const char *const *hit = bsearch(&value, names, n, sizeof *names, compare_strings);
    if (!hit)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: %s '%.100s' has no '" PROBA_PREFIX "%.100s' column (%zu found)",
                        csv->name, cnk_csv_line(csv, row), csv->header[col], value, value, cols->n_proba);
    *index = (int)(hit - names);
    return CNK_OK;
}

static int copy_strings(cnk_ctx *ctx, const char *name, const char *const *from, size_t n, char ***to)
{
    *to = calloc(n ? n : 1, sizeof **to);
    if (!*to) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++)
        if (!((*to)[i] = strdup(from[i]))) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", name);
    return CNK_OK;
}

static int read_probabilities(cnk_ctx *ctx, const cnk_csv *csv, const columns *cols, const char *const *names,
                              cnk_predictions *out)
{
    size_t k = out->n_classes;
    out->proba = malloc(csv->n_rows * k * sizeof *out->proba);
    if (!out->proba) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for probabilities", csv->name);
    for (size_t i = 0; i < cols->n_proba; i++) {
        size_t col = cols->proba[i];
        const char *cls = csv->header[col] + strlen(PROBA_PREFIX);
        const char *const *hit = bsearch(&cls, names, k, sizeof *names, compare_strings);
        size_t c = (size_t)(hit - names);
        for (size_t r = 0; r < csv->n_rows; r++) {
            double v;
            int rc = cnk_csv_get_double(ctx, csv, r, col, &v);
            if (rc) return rc;
            if (v < 0)
                return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: column '%.100s': probability %g is negative", csv->name,
                                cnk_csv_line(csv, r), csv->header[col], v);
            out->proba[r * k + c] = v;
        }
    }
    return CNK_OK;
}

static int fill_predictions(cnk_ctx *ctx, const cnk_csv *csv, const columns *cols, cnk_predictions *out)
{
    const char **names = NULL;
    int rc = collect_classes(ctx, csv, cols, &names, &out->n_classes);
    if (rc) return rc;
    out->n_samples = csv->n_rows;
    out->y_true = malloc(csv->n_rows * sizeof *out->y_true);
    out->y_pred = malloc(csv->n_rows * sizeof *out->y_pred);
    if (!out->y_true || !out->y_pred) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", csv->name);
    for (size_t r = 0; r < csv->n_rows && rc == CNK_OK; r++) {
        rc = lookup_class(ctx, csv, cols, r, cols->label, names, out->n_classes, &out->y_true[r]);
        if (rc == CNK_OK) rc = lookup_class(ctx, csv, cols, r, cols->predicted, names, out->n_classes, &out->y_pred[r]);
    }
    if (rc == CNK_OK && cols->n_proba) rc = read_probabilities(ctx, csv, cols, names, out);
    if (rc == CNK_OK) rc = copy_strings(ctx, csv->name, names, out->n_classes, &out->class_names);
    if (rc == CNK_OK && cols->has_path) {
        const char **paths = malloc(csv->n_rows * sizeof *paths);
        if (!paths) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", csv->name);
        for (size_t r = 0; r < csv->n_rows && rc == CNK_OK; r++) paths[r] = cnk_csv_cell(csv, r, cols->path);
        if (rc == CNK_OK) rc = copy_strings(ctx, csv->name, paths, csv->n_rows, &out->paths);
        free(paths);
    }
    free(names);
    return rc;
}

int cnk_predictions_read(cnk_ctx *ctx, const char *path, cnk_predictions *out)
{
    memset(out, 0, sizeof *out);
    cnk_csv csv;
    int rc = cnk_csv_read(ctx, path, &csv);
    if (rc) return rc;
    columns cols;
    rc = find_columns(ctx, &csv, &cols);
    if (rc == CNK_OK && csv.n_rows == 0)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: no predictions after the header", path, csv.header_line);
    if (rc == CNK_OK) rc = fill_predictions(ctx, &csv, &cols, out);
    free(cols.proba);
    cnk_csv_release(&csv);
    if (rc) cnk_predictions_release(out);
    return rc;
}

static void free_strings(char **list, size_t n)
{
    if (!list) return;
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
}

void cnk_predictions_release(cnk_predictions *p)
{
    free_strings(p->class_names, p->n_classes);
    free_strings(p->paths, p->n_samples);
    free(p->y_true);
    free(p->y_pred);
    free(p->proba);
    memset(p, 0, sizeof *p);
}

void cnk_predictions_model(const cnk_predictions *p, const char *name, cnk_report_model *model)
{
    memset(model, 0, sizeof *model);
    model->name = name;
    model->n_samples = p->n_samples;
    model->n_classes = p->n_classes;
    model->class_names = (const char *const *)p->class_names;
    model->y_true = p->y_true;
    model->y_pred = p->y_pred;
    model->proba = p->proba;
    model->paths = (const char *const *)p->paths;
}

/* "p_<class>", quoted as one field when the class name needs it. */
static int write_proba_header(cnk_ctx *ctx, FILE *fp, const char *class_name)
{
    size_t len = strlen(PROBA_PREFIX) + strlen(class_name) + 1;
    char *column = malloc(len);
    if (!column) return cnk_fail(ctx, CNK_ERR_NOMEM, "predictions.csv: out of memory");
    snprintf(column, len, PROBA_PREFIX "%s", class_name);
    cnk_csv_write_field(fp, column);
    free(column);
    return CNK_OK;
}

int cnk_predictions_write(cnk_ctx *ctx, FILE *fp, const cnk_report_model *model)
{
    if (model->paths) fputs("path,", fp);
    fputs("label,predicted", fp);
    if (model->proba)
        for (size_t c = 0; c < model->n_classes; c++) {
            fputc(',', fp);
            int rc = write_proba_header(ctx, fp, model->class_names[c]);
            if (rc) return rc;
        }
    fputc('\n', fp);
    for (size_t i = 0; i < model->n_samples; i++) {
        if (model->paths) {
            cnk_csv_write_field(fp, model->paths[i]);
            fputc(',', fp);
        }
        cnk_csv_write_field(fp, model->class_names[model->y_true[i]]);
        fputc(',', fp);
        cnk_csv_write_field(fp, model->class_names[model->y_pred[i]]);
        if (model->proba)
            for (size_t c = 0; c < model->n_classes; c++)
                fprintf(fp, ",%.9g", model->proba[i * model->n_classes + c]);
        fputc('\n', fp);
    }
    return CNK_OK;
}
