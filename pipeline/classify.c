#include "pipeline/classify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "nn/arch.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "pipeline/augment.h"
#include "pipeline/dataset.h"
#include "pipeline/featureset.h"
#include "pipeline/fusion.h"
#include "pipeline/mel_image.h"
#include "pipeline/transfer.h"

enum { CLASSIFY_BATCH = 32 };

/* How a model turns files into probabilities: our own segment classifier, or the fusion and YAMNet-transfer
 * models' own predictors (pipeline/fusion.h, pipeline/transfer.h). */
enum { KIND_PLAIN = 0, KIND_FUSION, KIND_YAMNET };

struct cnk_classifier {
    char path[4096];
    int kind;
    cnk_modelfile mf;
    cnk_arch arch;
    cnk_model *model;
    cnk_preprocess prep;
    cnk_mel_image mel_image; /* an image network reading mel segments as pictures (transfer models) */
    size_t in_size;
    float *inputs;  /* CLASSIFY_BATCH model inputs */
    float *segment; /* one preprocessed segment before the mel-image mapping */
};

/* The network input one preprocessed segment becomes. */
static void input_shape(const cnk_classifier *c, int *ch, int *h, int *w)
{
    if (c->mel_image.active) {
        *ch = c->mel_image.channels, *h = c->mel_image.height, *w = c->mel_image.width;
    } else {
        cnk_preprocess_input_shape(&c->prep, ch, h, w);
    }
}

static int detect_kind(cnk_ctx *ctx, cnk_classifier *c, const char *path)
{
    int is_fusion = 0;
    cnk_fusion_mode mode;
    float weight;
    int rc = cnk_fusion_from_text(ctx, c->mf.preprocess, path, &is_fusion, &mode, &weight);
    if (rc) return rc;
    c->kind = is_fusion ? KIND_FUSION : cnk_transfer_is_yamnet_model(&c->mf) ? KIND_YAMNET : KIND_PLAIN;
    return cnk_mel_image_from_text(ctx, c->mf.preprocess, path, &c->mel_image);
}

int cnk_classifier_load(cnk_ctx *ctx, const char *path, cnk_classifier **out)
{
    *out = NULL;
    cnk_classifier *c = calloc(1, sizeof *c);
    if (!c) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    cnk_modelfile_init(&c->mf);
    cnk_arch_init(&c->arch);
    snprintf(c->path, sizeof c->path, "%s", path);
    int rc = cnk_modelfile_read(ctx, path, &c->mf);
    if (!rc) rc = detect_kind(ctx, c, path);
    if (!rc && c->kind != KIND_PLAIN) { /* those predict through their own modules */
        *out = c;
        return CNK_OK;
    }
    cnk_preprocess stored;
    if (!rc) rc = cnk_preprocess_from_text(ctx, c->mf.preprocess, path, &stored);
    if (!rc) cnk_preprocess_eval_view(&stored, &c->prep); /* e.g. photos' evaluation crop */
    if (!rc) rc = cnk_modelfile_arch(ctx, &c->mf, &c->arch);
    if (!rc && c->arch.n_input_layers != 1)
        rc = cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: a %d-input model without a fusion recipe", path,
                      c->arch.n_input_layers);
    int ch = 0, h = 0, w = 0;
    if (!rc) {
        input_shape(c, &ch, &h, &w);
        cnk_shape in = c->arch.layers[c->arch.input_layers[0]].input_shape;
        if (in.c != ch || in.h != h || in.w != w)
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: network input %dx%dx%d does not match its preprocessing %dx%dx%d",
                          path, in.c, in.h, in.w, ch, h, w);
    }
    if (!rc) rc = cnk_model_create(ctx, &c->arch, CLASSIFY_BATCH, &c->model);
    if (!rc) {
        memcpy(cnk_model_params(c->model), c->mf.params, c->mf.n_params * sizeof(float));
        memcpy(cnk_model_buffers(c->model), c->mf.buffers, c->mf.n_buffers * sizeof(float));
        c->in_size = (size_t)ch * h * w;
        int pc, ph, pw;
        cnk_preprocess_input_shape(&c->prep, &pc, &ph, &pw);
        c->inputs = malloc(CLASSIFY_BATCH * c->in_size * sizeof *c->inputs);
        c->segment = malloc((size_t)pc * ph * pw * sizeof *c->segment);
        if (!c->inputs || !c->segment) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
    }
    if (rc) {
        cnk_classifier_free(c);
        return rc;
    }
    *out = c;
    return CNK_OK;
}

void cnk_classifier_free(cnk_classifier *c)
{
    if (!c) return;
    cnk_model_free(c->model);
    cnk_arch_release(&c->arch);
    cnk_modelfile_release(&c->mf);
    free(c->inputs);
    free(c->segment);
    free(c);
}

int cnk_classifier_n_classes(const cnk_classifier *c) { return c->mf.n_classes; }
const char *const *cnk_classifier_class_names(const cnk_classifier *c) { return (const char *const *)c->mf.class_names; }
const cnk_preprocess *cnk_classifier_preprocess(const cnk_classifier *c) { return &c->prep; }
const cnk_modelfile *cnk_classifier_modelfile(const cnk_classifier *c) { return &c->mf; }
int cnk_classifier_is_fusion(const cnk_classifier *c) { return c->kind == KIND_FUSION; }

static void softmax_add(const float *logits, int n, double *acc)
{
    double max = logits[0], sum = 0;
    for (int i = 1; i < n; i++) max = fmax(max, logits[i]);
    for (int i = 0; i < n; i++) sum += exp(logits[i] - max);
    for (int i = 0; i < n; i++) acc[i] += exp(logits[i] - max) / sum;
}

/* Image models trained with test-time flips average each image's probabilities with its mirror's, as
 * cnk_train_evaluate did when it chose and scored the model. */
static int tta_flips(const cnk_classifier *c) { return c->prep.tta_flip && !c->mel_image.active; }

/* Adds the softmax of the mirrored images of the bs inputs in c->inputs (mirrored in place) to proba. */
static int add_mirrored(cnk_ctx *ctx, cnk_classifier *c, int bs, double *proba)
{
    int ch, h, w;
    input_shape(c, &ch, &h, &w);
    for (int k = 0; k < bs; k++) cnk_augment_mirror(c->inputs + (size_t)k * c->in_size, ch, h, w);
    const float *inputs[1] = {c->inputs};
    int rc = cnk_model_forward(ctx, c->model, inputs, bs, CNK_MODE_INFER);
    if (rc) return rc;
    int units = 0;
    const float *logits = cnk_model_output(c->model, 0, &units);
    for (int k = 0; k < bs; k++) softmax_add(logits + (size_t)k * units, units, proba);
    return CNK_OK;
}

int cnk_classifier_predict_features(cnk_ctx *ctx, cnk_classifier *c, const cnk_array *features, double *proba)
{
    int n_classes = c->mf.n_classes;
    memset(proba, 0, (size_t)n_classes * sizeof *proba);
    size_t n_seg = cnk_preprocess_n_segments(&c->prep, features, 0);
    for (size_t from = 0; from < n_seg; from += CLASSIFY_BATCH) {
        int bs = (int)(n_seg - from < CLASSIFY_BATCH ? n_seg - from : CLASSIFY_BATCH);
        for (int k = 0; k < bs; k++) {
            float *x = c->inputs + k * c->in_size;
            int rc = cnk_preprocess_segment(ctx, &c->prep, features, from + (size_t)k, 0,
                                            c->mel_image.active ? c->segment : x);
            if (rc) return rc;
            if (c->mel_image.active) {
                int pc, ph, pw;
                cnk_preprocess_input_shape(&c->prep, &pc, &ph, &pw);
                cnk_mel_image_apply(&c->mel_image, c->segment, ph, pw, x);
            }
        }
        const float *inputs[1] = {c->inputs};
        int rc = cnk_model_forward(ctx, c->model, inputs, bs, CNK_MODE_INFER);
        if (rc) return rc;
        int units = 0;
        const float *logits = cnk_model_output(c->model, 0, &units);
        if (units != n_classes)
            return cnk_fail(ctx, CNK_ERR_INPUT, "the network has %d outputs for %d classes", units, n_classes);
        for (int k = 0; k < bs; k++) softmax_add(logits + (size_t)k * units, units, proba);
        if (tta_flips(c)) rc = add_mirrored(ctx, c, bs, proba);
        if (rc) return rc;
    }
    double views = tta_flips(c) ? 2.0 : 1.0;
    for (int i = 0; i < n_classes; i++) proba[i] /= (double)n_seg * views;
    return CNK_OK;
}

int cnk_classifier_accepts_path(const cnk_classifier *c, const char *path)
{
    cnk_input_kind kind = cnk_input_kind_of_path(path);
    if (c->kind != KIND_PLAIN) return kind == CNK_INPUT_AUDIO;
    switch (c->prep.kind) {
    case CNK_PREP_MEL:
    case CNK_PREP_WAVELET:
    case CNK_PREP_MEL_WAVELET:
        return kind == CNK_INPUT_AUDIO;
    case CNK_PREP_IMAGE:
        return kind == CNK_INPUT_IMAGE;
    case CNK_PREP_NPY:
        return kind == CNK_INPUT_NPY;
    default:
        return 0;
    }
}

/* The most probable class (the first on ties). */
static int top_index(const double *p, size_t n)
{
    size_t best = 0;
    for (size_t k = 1; k < n; k++)
        if (p[k] > p[best]) best = k;
    return (int)best;
}

void cnk_classified_release(cnk_classified *r)
{
    free(r->items);
    free(r->y_true);
    free(r->y_pred);
    free(r->proba);
    memset(r, 0, sizeof *r);
}

/* Predicts every item that has features; labels may be NULL (unknown). */
static int classify_featureset(cnk_ctx *ctx, cnk_classifier *c, const cnk_featureset *fs, const int *labels,
                               cnk_classified *out)
{
    memset(out, 0, sizeof *out);
    size_t n = fs->n_items, C = (size_t)c->mf.n_classes;
    out->items = malloc((n + 1) * sizeof *out->items);
    out->y_true = malloc((n + 1) * sizeof *out->y_true);
    out->y_pred = malloc((n + 1) * sizeof *out->y_pred);
    out->proba = malloc((n * C + 1) * sizeof *out->proba);
    if (!out->items || !out->y_true || !out->y_pred || !out->proba) {
        cnk_classified_release(out);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for %zu predictions", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (!fs->features[i].data) continue;
        double *p = out->proba + out->n * C;
        int rc = cnk_classifier_predict_features(ctx, c, &fs->features[i], p);
        if (rc) {
            cnk_classified_release(out);
            return rc;
        }
        out->items[out->n] = (int)i;
        out->y_true[out->n] = labels ? labels[i] : -1;
        out->y_pred[out->n] = top_index(p, C);
        out->n++;
        cnk_progress(ctx, "classify", i + 1, n, NULL);
    }
    return CNK_OK;
}

/* Fusion and YAMNet-transfer models: their modules compute the probabilities of whole files. */
static int run_special(cnk_ctx *ctx, cnk_classifier *c, const char *const *paths, const int *labels, size_t n,
                       const char *cache_dir, cnk_classified *out)
{
    memset(out, 0, sizeof *out);
    size_t C = (size_t)c->mf.n_classes;
    double *proba = malloc((n * C + 1) * sizeof *proba);
    int *ok = calloc(n + 1, sizeof *ok);
    out->items = malloc((n + 1) * sizeof *out->items);
    out->y_true = malloc((n + 1) * sizeof *out->y_true);
    out->y_pred = malloc((n + 1) * sizeof *out->y_pred);
    out->proba = malloc((n * C + 1) * sizeof *out->proba);
    int rc = (proba && ok && out->items && out->y_true && out->y_pred && out->proba)
                 ? CNK_OK
                 : cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for %zu predictions", n);
    if (!rc && c->kind == KIND_FUSION)
        rc = cnk_fusion_predict_files(ctx, &c->mf, c->path, paths, n, cache_dir, proba, ok);
    else if (!rc)
        rc = cnk_transfer_predict_files(ctx, &c->mf, c->path, paths, n, proba, ok);
    for (size_t i = 0; !rc && i < n; i++) {
        if (!ok[i]) continue;
        out->items[out->n] = (int)i;
        out->y_true[out->n] = labels ? labels[i] : -1;
        out->y_pred[out->n] = top_index(proba + i * C, C);
        memcpy(out->proba + out->n * C, proba + i * C, C * sizeof *proba);
        out->n++;
    }
    free(proba);
    free(ok);
    if (rc) cnk_classified_release(out);
    return rc;
}

int cnk_classifier_run_dataset(cnk_ctx *ctx, cnk_classifier *c, const cnk_dataset *ds, const char *cache_dir,
                               cnk_classified *out)
{
    memset(out, 0, sizeof *out);
    if (c->kind != KIND_PLAIN) {
        const char **paths = calloc(ds->n_items + 1, sizeof *paths);
        int *labels = calloc(ds->n_items + 1, sizeof *labels), *index = calloc(ds->n_items + 1, sizeof *index);
        int rc = paths && labels && index ? CNK_OK : cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
        size_t n = 0;
        for (size_t i = 0; !rc && i < ds->n_items; i++) /* labelled files only */
            if (ds->items[i].label >= 0 && ds->items[i].path)
                paths[n] = ds->items[i].path, labels[n] = ds->items[i].label, index[n++] = (int)i;
        if (!rc) rc = run_special(ctx, c, paths, labels, n, cache_dir, out);
        for (size_t k = 0; !rc && k < out->n; k++) out->items[k] = index[out->items[k]]; /* dataset indices */
        free(paths);
        free(labels);
        free(index);
        return rc;
    }
    if (c->prep.kind == CNK_PREP_CSV && ds->item_size != (size_t)c->prep.n_features)
        return cnk_fail(ctx, CNK_ERR_INPUT, "the data has %zu features per row, the model expects %d", ds->item_size,
                        c->prep.n_features);
    cnk_featureset fs;
    int rc = cnk_featureset_compute(ctx, ds, &c->prep, cache_dir, CNK_PART_NONE, &fs);
    if (rc) return rc;
    int *labels = malloc((ds->n_items + 1) * sizeof *labels);
    if (!labels) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < ds->n_items; i++) labels[i] = ds->items[i].label;
    if (!rc) rc = classify_featureset(ctx, c, &fs, labels, out);
    free(labels);
    cnk_featureset_release(&fs);
    return rc;
}

int cnk_classifier_run_paths(cnk_ctx *ctx, cnk_classifier *c, const char *const *paths, size_t n_paths,
                             const char *cache_dir, cnk_classified *out)
{
    memset(out, 0, sizeof *out);
    if (c->kind != KIND_PLAIN) return run_special(ctx, c, paths, NULL, n_paths, cache_dir, out);
    cnk_featureset fs;
    int rc = cnk_featureset_compute_paths(ctx, paths, n_paths, &c->prep, cache_dir, &fs);
    if (rc) return rc;
    rc = classify_featureset(ctx, c, &fs, NULL, out);
    cnk_featureset_release(&fs);
    return rc;
}

/* Appends one row's result: its display name ("FILE:ROW-NAME") and probabilities. */
static int append_row(cnk_ctx *ctx, const char *file, const char *row_name, const double *p, size_t C,
                      cnk_pathlist *names, cnk_classified *out)
{
    char name[4096 + 256];
    snprintf(name, sizeof name, "%s:%s", file, row_name);
    int rc = cnk_pathlist_add(ctx, names, name);
    if (rc) return rc;
    size_t n = out->n + 1;
    int *items = realloc(out->items, n * sizeof *items), *y_true = items ? realloc(out->y_true, n * sizeof *y_true) : NULL;
    if (items) out->items = items;
    if (y_true) out->y_true = y_true;
    int *y_pred = y_true ? realloc(out->y_pred, n * sizeof *y_pred) : NULL;
    if (y_pred) out->y_pred = y_pred;
    double *proba = y_pred ? realloc(out->proba, n * C * sizeof *proba) : NULL;
    if (!proba) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for %zu predictions", n);
    out->proba = proba;
    memcpy(proba + out->n * C, p, C * sizeof *p);
    out->items[out->n] = (int)(names->count - 1);
    out->y_true[out->n] = -1;
    out->y_pred[out->n] = top_index(p, C);
    out->n = n;
    return CNK_OK;
}

/* The rows of one CSV file, read with the model's column rules (a label column is optional and ignored). */
static int classify_csv_file(cnk_ctx *ctx, cnk_classifier *c, const char *path, double *p, cnk_pathlist *names,
                             cnk_classified *out)
{
    const cnk_preprocess *prep = &c->prep;
    cnk_dataset_options opts;
    cnk_dataset_options_init(&opts);
    opts.kind = CNK_INPUT_CSV;
    opts.label_optional = 1;
    if (prep->height > 0 && prep->channels * prep->height * prep->width == prep->n_features) {
        opts.image_width = prep->width;
        opts.image_height = prep->height;
    }
    cnk_dataset ds;
    int rc = cnk_dataset_load_csv(ctx, path, &opts, &ds);
    if (!rc && ds.item_size != (size_t)prep->n_features)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: %zu numeric columns per row, the model expects %d", path, ds.item_size,
                      prep->n_features);
    for (size_t i = 0; !rc && i < ds.n_items; i++) {
        cnk_array row = {.data = ds.values + ds.items[i].row * ds.item_size, .ndim = (int)ds.item_ndim};
        for (int d = 0; d < ds.item_ndim; d++) row.shape[d] = ds.item_shape[d];
        rc = cnk_classifier_predict_features(ctx, c, &row, p);
        if (!rc) rc = append_row(ctx, path, ds.items[i].name, p, (size_t)c->mf.n_classes, names, out);
        cnk_progress(ctx, "classify", i + 1, ds.n_items, NULL);
    }
    cnk_dataset_release(&ds);
    return rc;
}

int cnk_classifier_run_csv(cnk_ctx *ctx, cnk_classifier *c, const char *const *paths, size_t n_paths,
                           cnk_pathlist *names, cnk_classified *out)
{
    memset(out, 0, sizeof *out);
    if (c->kind != KIND_PLAIN || c->prep.kind != CNK_PREP_CSV)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: not a CSV model: classify files instead", c->path);
    double *p = malloc(((size_t)c->mf.n_classes + 1) * sizeof *p);
    int rc = p ? CNK_OK : cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    size_t skipped = 0;
    for (size_t f = 0; !rc && f < n_paths; f++) {
        if (cnk_input_kind_of_path(paths[f]) != CNK_INPUT_CSV) {
            cnk_warn(ctx, "%s: not a .csv file (this model classifies the rows of CSV files)", paths[f]);
            skipped++;
            continue;
        }
        rc = classify_csv_file(ctx, c, paths[f], p, names, out);
        if (rc && rc != CNK_ERR_NOMEM) { /* a bad file is reported and skipped, as in folders */
            cnk_warn(ctx, "%s", cnk_error(ctx));
            skipped++;
            rc = CNK_OK;
        }
    }
    if (!rc && out->n == 0) rc = cnk_fail(ctx, CNK_ERR_INPUT, "no CSV row to classify (%zu files skipped)", skipped);
    free(p);
    if (rc) cnk_classified_release(out);
    return rc;
}
