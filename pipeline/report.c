/* report.c: cnk_report_write: computes every model's metrics, writes each report file into a temporary
 * sibling directory and renames it into place, so a report directory is either complete or absent. */
#include "pipeline/report.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "pipeline/csv.h"
#include "pipeline/plot.h"
#include "pipeline/report_buf.h"
#include "pipeline/report_csv.h"
#include "pipeline/report_html.h"
#include "pipeline/report_json.h"

#define MAX_MODELS 64
#define MAX_IMAGES 4
#define MAX_PNG_BYTES ((size_t)64 << 20)

/* Everything built on the way; released in one place. */
typedef struct report_state {
    cnk_ctx *ctx;
    const cnk_report_input *input;
    char target[4096]; /* the report directory asked for, without trailing slashes */
    char dir[4120];    /* the temporary directory being filled */
    cnk_metrics metrics[MAX_MODELS];
    size_t n_metrics;
    cnk_report_image images[MAX_IMAGES];
    unsigned char *image_data[MAX_IMAGES];
    size_t n_images;
} report_state;

static const char *model_name(const cnk_report_model *model) { return model->name ? model->name : "model"; }

static int join_path(report_state *st, const char *file, char *out, size_t cap)
{
    if ((size_t)snprintf(out, cap, "%s/%s", st->dir, file) >= cap)
        return cnk_fail(st->ctx, CNK_ERR_ARG, "%s: report path too long", st->dir);
    return CNK_OK;
}

/* Opens DIR/file for an atomic write. */
static int open_report_file(report_state *st, const char *file, cnk_afile *af)
{
    char path[4300];
    int rc = join_path(st, file, path, sizeof path);
    return rc ? rc : cnk_afile_open(st->ctx, af, path);
}

static int write_text(report_state *st, const char *file, const char *text)
{
    char path[4300];
    int rc = join_path(st, file, path, sizeof path);
    if (rc) return rc;
    return cnk_write_file_atomic(st->ctx, path, text, strlen(text));
}

/* ---- report.txt ---- */

static void comparison_text(cnk_strbuf *b, const report_state *st)
{
    size_t width = strlen("model");
    for (size_t m = 0; m < st->n_metrics; m++) {
        size_t len = cnk_utf8_length(model_name(&st->input->models[m]));
        if (len > width) width = len;
    }
    cnk_strbuf_puts(b, "\nmodel comparison\n");
    cnk_rbuf_pad_left(b, "model", width);
    cnk_strbuf_printf(b, "  %9s %9s %11s %9s\n", "accuracy", "macro f1", "weighted f1", "samples");
    for (size_t m = 0; m < st->n_metrics; m++) {
        const cnk_metrics *mm = &st->metrics[m];
        cnk_rbuf_pad_left(b, model_name(&st->input->models[m]), width);
        cnk_strbuf_printf(b, "  %9.4f %9.4f %11.4f %9zu\n", mm->accuracy, mm->macro_avg.f1, mm->weighted_avg.f1,
                        mm->n_samples);
    }
}

static int write_report_txt(report_state *st)
{
    cnk_strbuf b;
    cnk_strbuf_init(&b);
    for (size_t m = 0; m < st->n_metrics; m++) {
        char *text = NULL;
        int rc = cnk_report_format_text(st->ctx, &st->input->models[m], &text);
        if (rc) {
            cnk_strbuf_release(&b);
            return rc;
        }
        if (m == 1) comparison_text(&b, st);
        if (m > 0) {
            cnk_strbuf_puts(&b, "\n== ");
            cnk_strbuf_puts(&b, model_name(&st->input->models[m]));
            cnk_strbuf_puts(&b, " ==\n\n");
        }
        cnk_strbuf_puts(&b, text);
        free(text);
    }
    char *all = cnk_strbuf_take(&b);
    if (!all) return cnk_fail(st->ctx, CNK_ERR_NOMEM, "report.txt: out of memory");
    int rc = write_text(st, "report.txt", all);
    free(all);
    return rc;
}

/* ---- CSV files ---- */

static int write_confusion_csv(report_state *st)
{
    const cnk_metrics *m = &st->metrics[0];
    cnk_afile af;
    int rc = open_report_file(st, "confusion.csv", &af);
    if (rc) return rc;
    fputs("label", af.fp);
    for (size_t j = 0; j < m->n_classes; j++) {
        fputc(',', af.fp);
        cnk_csv_write_field(af.fp, m->class_names[j]);
    }
    fputc('\n', af.fp);
    for (size_t i = 0; i < m->n_classes; i++) {
        cnk_csv_write_field(af.fp, m->class_names[i]);
        for (size_t j = 0; j < m->n_classes; j++) fprintf(af.fp, ",%zu", m->confusion[i * m->n_classes + j]);
        fputc('\n', af.fp);
    }
    return cnk_afile_commit(st->ctx, &af);
}

static int write_predictions_csv(report_state *st)
{
    cnk_afile af;
    int rc = open_report_file(st, "predictions.csv", &af);
    if (rc) return rc;
    rc = cnk_predictions_write(st->ctx, af.fp, &st->input->models[0]);
    if (rc) {
        cnk_afile_abort(&af);
        return rc;
    }
    return cnk_afile_commit(st->ctx, &af);
}

static void csv_number(FILE *fp, const double *series, size_t e)
{
    fputc(',', fp);
    if (series && isfinite(series[e])) fprintf(fp, "%.9g", series[e]);
}

static int write_history_csv(report_state *st, const cnk_report_history *h)
{
    cnk_afile af;
    int rc = open_report_file(st, "history.csv", &af);
    if (rc) return rc;
    fputs("epoch,train_loss,train_acc,val_loss,val_acc\n", af.fp);
    for (size_t e = 0; e < h->n_epochs; e++) {
        fprintf(af.fp, "%zu", e + 1);
        csv_number(af.fp, h->train_loss, e);
        csv_number(af.fp, h->train_acc, e);
        csv_number(af.fp, h->val_loss, e);
        csv_number(af.fp, h->val_acc, e);
        fputc('\n', af.fp);
    }
    return cnk_afile_commit(st->ctx, &af);
}

static int write_comparison_csv(report_state *st)
{
    cnk_afile af;
    int rc = open_report_file(st, "comparison.csv", &af);
    if (rc) return rc;
    fputs("model,class,precision,recall,f1,support\n", af.fp);
    for (size_t m = 0; m < st->n_metrics; m++) {
        const cnk_metrics *mm = &st->metrics[m];
        for (size_t c = 0; c <= mm->n_classes + 1; c++) {
            cnk_csv_write_field(af.fp, model_name(&st->input->models[m]));
            fputc(',', af.fp);
            if (c < mm->n_classes) {
                cnk_csv_write_field(af.fp, mm->class_names[c]);
                fprintf(af.fp, ",%.9g,%.9g,%.9g,%zu\n", mm->precision[c], mm->recall[c], mm->f1[c], mm->support[c]);
            } else {
                const cnk_metrics_avg *avg = c == mm->n_classes ? &mm->macro_avg : &mm->weighted_avg;
                fprintf(af.fp, "%s,%.9g,%.9g,%.9g,%zu\n", c == mm->n_classes ? "macro avg" : "weighted avg",
                        avg->precision, avg->recall, avg->f1, avg->support);
            }
        }
    }
    return cnk_afile_commit(st->ctx, &af);
}

/* ---- charts ---- */

/* Reads a chart back for embedding in the HTML. */
static int keep_image(report_state *st, const char *file, const char *caption)
{
    char path[4300];
    int rc = join_path(st, file, path, sizeof path);
    if (rc) return rc;
    size_t i = st->n_images;
    rc = cnk_read_file(st->ctx, path, MAX_PNG_BYTES, &st->image_data[i], &st->images[i].size);
    if (rc) return rc;
    st->images[i].png = st->image_data[i];
    st->images[i].caption = caption;
    st->n_images++;
    return CNK_OK;
}

static int draw_confusion(report_state *st)
{
    const cnk_metrics *m = &st->metrics[0];
    char path[4300], title[600];
    int rc = join_path(st, "confusion.png", path, sizeof path);
    if (rc) return rc;
    snprintf(title, sizeof title, "Confusion matrix: %.200s, %zu samples, accuracy %.3f", model_name(&st->input->models[0]),
             m->n_samples, m->accuracy);
    rc = cnk_plot_confusion(st->ctx, path, title, m->n_classes, (const char *const *)m->class_names, m->confusion,
                            m->confusion_norm);
    if (rc) return rc;
    return keep_image(st, "confusion.png", "Confusion matrix (counts; colour = share of the true class)");
}

/* Classes of all models (sorted, distinct) for the F1 chart; values NAN where a model lacks a class. */
static int draw_f1(report_state *st)
{
    size_t total = 0, n = st->n_metrics;
    for (size_t m = 0; m < n; m++) total += st->metrics[m].n_classes;
    const char **names = malloc(total * sizeof *names), **model_names = malloc(n * sizeof *model_names);
    double *values = malloc(total * n * sizeof *values);
    int rc = (names && model_names && values) ? CNK_OK : cnk_fail(st->ctx, CNK_ERR_NOMEM, "f1.png: out of memory");
    size_t k = 0;
    for (size_t m = 0; m < n && rc == CNK_OK; m++) {
        model_names[m] = model_name(&st->input->models[m]);
        for (size_t c = 0; c < st->metrics[m].n_classes; c++) {
            size_t j = 0;
            while (j < k && strcmp(names[j], st->metrics[m].class_names[c]) != 0) j++;
            if (j == k) names[k++] = st->metrics[m].class_names[c];
        }
    }
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t m = 0; m < n && rc == CNK_OK; m++)
        for (size_t c = 0; c < k; c++) {
            int at = cnk_metrics_find_class(&st->metrics[m], names[c]);
            values[m * k + c] = at >= 0 ? st->metrics[m].f1[at] : NAN;
        }
    char path[4300];
    if (rc == CNK_OK) rc = join_path(st, "f1.png", path, sizeof path);
    if (rc == CNK_OK)
        rc = cnk_plot_class_bars(st->ctx, path, n > 1 ? "F1 per class and model" : "F1 per class", "F1 score", k, names,
                                 n, model_names, values);
    free(names);
    free(model_names);
    free(values);
    if (rc) return rc;
    return keep_image(st, "f1.png", n > 1 ? "F1 score per class, one bar per model" : "F1 score per class");
}

static int draw_curves(report_state *st)
{
    cnk_plot_series series[MAX_MODELS];
    size_t n = 0;
    for (size_t m = 0; m < st->n_metrics; m++) {
        const cnk_report_history *h = st->input->models[m].history;
        if (!h || h->n_epochs == 0) continue;
        series[n++] = (cnk_plot_series){model_name(&st->input->models[m]), h->n_epochs, h->train_loss, h->val_loss,
                                        h->train_acc, h->val_acc};
    }
    if (n == 0) return CNK_OK;
    char path[4300];
    int rc = join_path(st, "curves.png", path, sizeof path);
    if (rc == CNK_OK) rc = cnk_plot_curves(st->ctx, path, n > 1 ? "Training curves by model" : "Training curves", n, series);
    if (rc) return rc;
    return keep_image(st, "curves.png", "Loss and accuracy per epoch (train and validation)");
}

/* ---- the directory dance ---- */

/* Removes a flat directory we created (regular files only) and the directory itself. */
static void remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4500];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* 0 = empty, 1 = a previous report (report.txt + metrics.json, plain files only), -1 = something else. */
static int classify_existing(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int entries = 0, has_txt = 0, has_json = 0, only_files = 1;
    struct dirent *e;
    char path[4500];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        entries++;
        has_txt |= strcmp(e->d_name, "report.txt") == 0;
        has_json |= strcmp(e->d_name, "metrics.json") == 0;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!cnk_is_file(path)) only_files = 0;
    }
    closedir(d);
    if (entries == 0) return 0;
    return has_txt && has_json && only_files ? 1 : -1;
}

/* Checks where the report goes and makes the temporary sibling directory (same file system, so the
 * final rename is atomic). */
static int prepare_dir(report_state *st, const char *dir)
{
    cnk_ctx *ctx = st->ctx;
    if (!dir || !*dir) return cnk_fail(ctx, CNK_ERR_ARG, "report: no output directory given");
    if (strlen(dir) > 3900) return cnk_fail(ctx, CNK_ERR_ARG, "%.100s...: report path too long", dir);
    snprintf(st->target, sizeof st->target, "%s", dir);
    size_t len = strlen(st->target);
    while (len > 1 && st->target[len - 1] == '/') st->target[--len] = '\0'; /* "out/" is "out" */
    struct stat sb;
    if (lstat(st->target, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) return cnk_fail(ctx, CNK_ERR_IO, "%s: exists and is not a directory", dir);
        if (classify_existing(st->target) < 0)
            return cnk_fail(ctx, CNK_ERR_IO, "%s: exists and is neither empty nor a cnnkit report; not overwriting it",
                            dir);
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", st->target);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        int rc = cnk_mkdirs(ctx, parent);
        if (rc) return rc;
    }
    snprintf(st->dir, sizeof st->dir, "%s.tmp.XXXXXX", st->target);
    if (!mkdtemp(st->dir)) {
        int err = errno;
        st->dir[0] = '\0';
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot create a temporary directory beside it: %s", dir, strerror(err));
    }
    chmod(st->dir, 0755); /* mkdtemp makes 0700; a report is an ordinary folder */
    return CNK_OK;
}

/* Moves the finished temporary directory onto dir, replacing an empty one or an older report. */
static int move_into_place(report_state *st)
{
    cnk_ctx *ctx = st->ctx;
    const char *dir = st->target;
    if (rename(st->dir, dir) == 0) return CNK_OK;
    if (errno != ENOTEMPTY && errno != EEXIST)
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot move the report into place: %s", dir, strerror(errno));
    if (classify_existing(dir) != 1)
        return cnk_fail(ctx, CNK_ERR_IO, "%s: exists and is not a cnnkit report; not overwriting it", dir);
    char old[4200];
    snprintf(old, sizeof old, "%s.old.XXXXXX", st->dir);
    if (!mkdtemp(old)) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot set the old report aside: %s", dir, strerror(errno));
    /* Swap: the old report goes into old/ by rename (rename over an empty dir is allowed), then ours in. */
    int rc = CNK_OK;
    if (rename(dir, old) != 0)
        rc = cnk_fail(ctx, CNK_ERR_IO, "%s: cannot set the old report aside: %s", dir, strerror(errno));
    else if (rename(st->dir, dir) != 0) {
        rc = cnk_fail(ctx, CNK_ERR_IO, "%s: cannot move the report into place: %s", dir, strerror(errno));
        rename(old, dir); /* put the old report back */
    }
    remove_flat_dir(old);
    return rc;
}

static int validate(cnk_ctx *ctx, const cnk_report_input *input)
{
    if (!input || !input->models || input->n_models == 0)
        return cnk_fail(ctx, CNK_ERR_ARG, "report: no model predictions given");
    if (input->n_models > MAX_MODELS)
        return cnk_fail(ctx, CNK_ERR_ARG, "report: %zu models (at most %d can be compared)", input->n_models, MAX_MODELS);
    return CNK_OK;
}

static int build_all(report_state *st)
{
    const cnk_report_input *input = st->input;
    int rc = CNK_OK;
    for (size_t m = 0; m < input->n_models && rc == CNK_OK; m++) {
        cnk_metrics_input in;
        cnk_report_model_metrics_input(&input->models[m], &in);
        rc = cnk_metrics_compute(st->ctx, &in, &st->metrics[m]);
        if (rc == CNK_OK)
            st->n_metrics++;
        else /* say which model was wrong */
            rc = cnk_fail(st->ctx, rc, "%s: %s", model_name(&input->models[m]), cnk_error(st->ctx));
    }
    if (rc == CNK_OK) rc = write_report_txt(st);
    char *json = NULL;
    if (rc == CNK_OK) rc = cnk_report_build_json(st->ctx, input, st->metrics, &json);
    if (rc == CNK_OK) rc = write_text(st, "metrics.json", json);
    free(json);
    if (rc == CNK_OK) rc = write_confusion_csv(st);
    if (rc == CNK_OK) rc = write_predictions_csv(st);
    if (rc == CNK_OK && input->models[0].history && input->models[0].history->n_epochs)
        rc = write_history_csv(st, input->models[0].history);
    if (rc == CNK_OK && input->n_models > 1) rc = write_comparison_csv(st);
    cnk_progress(st->ctx, "report charts", 0, 3, NULL);
    if (rc == CNK_OK) rc = draw_confusion(st);
    if (rc == CNK_OK) rc = draw_f1(st);
    if (rc == CNK_OK) rc = draw_curves(st);
    cnk_progress(st->ctx, "report charts", 3, 3, NULL);
    char *html = NULL;
    if (rc == CNK_OK) rc = cnk_report_build_html(st->ctx, input, st->metrics, st->images, st->n_images, &html);
    if (rc == CNK_OK) rc = write_text(st, "report.html", html);
    free(html);
    return rc;
}

int cnk_report_write(cnk_ctx *ctx, const char *dir, const cnk_report_input *input)
{
    int rc = validate(ctx, input);
    if (rc) return rc;
    report_state *st = calloc(1, sizeof *st);
    if (!st) return cnk_fail(ctx, CNK_ERR_NOMEM, "report: out of memory");
    st->ctx = ctx;
    st->input = input;
    rc = prepare_dir(st, dir);
    if (rc == CNK_OK) rc = build_all(st);
    if (rc == CNK_OK) rc = move_into_place(st);
    if (rc && st->dir[0]) remove_flat_dir(st->dir);
    for (size_t m = 0; m < st->n_metrics; m++) cnk_metrics_release(&st->metrics[m]);
    for (size_t i = 0; i < st->n_images; i++) free(st->image_data[i]);
    free(st);
    return rc;
}
