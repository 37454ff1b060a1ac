#include "pipeline/fusion.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "nn/builtin.h"
#include "nn/cfg.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/optim.h"
#include "pipeline/audio_params.h"
#include "pipeline/augment.h"
#include "pipeline/ckpt_text.h"
#include "pipeline/dataset.h"
#include "pipeline/distributed.h"
#include "pipeline/featureset.h"
#include "pipeline/fusion_internal.h"
#include "pipeline/preprocess.h"
#include "pipeline/report.h"
#include "pipeline/split.h"

static const char *const mode_names[] = {"mean", "weighted", "concat"};

const char *cnk_fusion_mode_name(cnk_fusion_mode mode)
{
    return mode >= CNK_FUSION_MEAN && mode <= CNK_FUSION_CONCAT ? mode_names[mode] : "?";
}

int cnk_fusion_mode_parse(const char *name, cnk_fusion_mode *mode)
{
    for (int m = 0; m < 3; m++)
        if (name && strcmp(name, mode_names[m]) == 0) {
            *mode = (cnk_fusion_mode)m;
            return 0;
        }
    return -1;
}

/* ---- the fused output and its loss ---- */

static void softmax_row(const float *z, int n, float *p)
{
    float max = z[0];
    for (int i = 1; i < n; i++) max = fmaxf(max, z[i]);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)(z[i] - max));
    for (int i = 0; i < n; i++) p[i] = (float)(exp((double)(z[i] - max)) / sum);
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void cnk_fusion_probs(cnk_fusion_mode mode, float weight, const float *const logits[3], int batch, int classes,
                      float *proba, float *const branch_probs[2])
{
    float a = mode == CNK_FUSION_WEIGHTED ? sigmoidf(weight) : 0.5f;
    float p1[classes > 0 ? classes : 1], p2[classes > 0 ? classes : 1];
    for (int b = 0; b < batch; b++) {
        size_t row = (size_t)b * classes;
        softmax_row(logits[CNK_FUSION_OUT_MEL] + row, classes, p1);
        softmax_row(logits[CNK_FUSION_OUT_WAVELET] + row, classes, p2);
        if (branch_probs && branch_probs[0]) memcpy(branch_probs[0] + row, p1, (size_t)classes * sizeof *p1);
        if (branch_probs && branch_probs[1]) memcpy(branch_probs[1] + row, p2, (size_t)classes * sizeof *p2);
        if (mode == CNK_FUSION_CONCAT)
            softmax_row(logits[CNK_FUSION_OUT_FUSED] + row, classes, proba + row);
        else
            for (int c = 0; c < classes; c++) proba[row + c] = a * p1[c] + (1 - a) * p2[c];
    }
}

/* Adds CE(softmax(z), y) / batch to *loss and its gradient to dz, for one sample. */
static void add_ce(const float *z, int y, int classes, int batch, float *dz, double *loss)
{
    float p[classes];
    softmax_row(z, classes, p);
    *loss -= log(fmax((double)p[y], 1e-30)) / batch;
    for (int c = 0; c < classes; c++) dz[c] += (p[c] - (c == y ? 1.0f : 0.0f)) / (float)batch;
}

double cnk_fusion_loss(cnk_fusion_mode mode, float weight, const float *const logits[3], const int *labels,
                       int batch, int classes, float *const dlogits[3], float *dweight, float *proba)
{
    for (int o = 0; o < 3; o++) memset(dlogits[o], 0, (size_t)batch * classes * sizeof(float));
    double loss = 0, dw = 0;
    float a = sigmoidf(weight);
    float p1[classes], p2[classes];
    for (int b = 0; b < batch; b++) {
        size_t row = (size_t)b * classes;
        int y = labels[b];
        add_ce(logits[CNK_FUSION_OUT_MEL] + row, y, classes, batch, dlogits[CNK_FUSION_OUT_MEL] + row, &loss);
        add_ce(logits[CNK_FUSION_OUT_WAVELET] + row, y, classes, batch, dlogits[CNK_FUSION_OUT_WAVELET] + row, &loss);
        if (mode == CNK_FUSION_CONCAT) {
            add_ce(logits[CNK_FUSION_OUT_FUSED] + row, y, classes, batch, dlogits[CNK_FUSION_OUT_FUSED] + row, &loss);
        } else if (mode == CNK_FUSION_WEIGHTED) {
            /* -log(a p1[y] + (1-a) p2[y]): through each softmax and through a = sigmoid(w). */
            softmax_row(logits[CNK_FUSION_OUT_MEL] + row, classes, p1);
            softmax_row(logits[CNK_FUSION_OUT_WAVELET] + row, classes, p2);
            double py = fmax((double)a * p1[y] + (1.0 - a) * p2[y], 1e-30);
            loss -= log(py) / batch;
            dw -= (p1[y] - p2[y]) * (double)a * (1.0 - a) / py / batch;
            double g1 = -(double)a * p1[y] / py / batch, g2 = -(1.0 - a) * p2[y] / py / batch;
            for (int c = 0; c < classes; c++) {
                dlogits[CNK_FUSION_OUT_MEL][row + c] += (float)(g1 * ((c == y) - p1[c]));
                dlogits[CNK_FUSION_OUT_WAVELET][row + c] += (float)(g2 * ((c == y) - p2[c]));
            }
        }
    }
    if (dweight) *dweight = (float)dw;
    if (proba) cnk_fusion_probs(mode, weight, logits, batch, classes, proba, NULL);
    return loss;
}

int cnk_fusion_from_text(cnk_ctx *ctx, const char *text, const char *source, int *is_fusion, cnk_fusion_mode *mode,
                         float *weight)
{
    *is_fusion = 0;
    *mode = CNK_FUSION_MEAN;
    *weight = 0;
    char buf[64];
    cnk_ctx quiet = *ctx;
    if (cnk_kv_get(&quiet, text ? text : "", "fusion", buf, sizeof buf) != CNK_OK) return CNK_OK;
    if (cnk_fusion_mode_parse(buf, mode))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: unknown fusion mode '%s' (expected mean, weighted or concat)", source,
                        buf);
    if (cnk_kv_get(&quiet, text, "fusion_weight", buf, sizeof buf) == CNK_OK) {
        char *end;
        double w = strtod(buf, &end);
        if (end == buf || *end || !isfinite(w) || fabs(w) > 1e6)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: bad fusion_weight '%s'", source, buf);
        *weight = (float)w;
    }
    *is_fusion = 1;
    return CNK_OK;
}

/* ---- a training run ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void release_run(fusion_run *r)
{
    cnk_dataset_release(&r->ds);
    for (int v = 0; v < 2; v++) {
        cnk_featureset_release(&r->fs[v]);
        free(r->x[v]);
    }
    cnk_arch_release(&r->arch);
    cnk_model_free(r->model);
    cnk_optim_free(r->opt);
    cnk_optim_free(r->weight_opt);
    free(r->scratch);
    for (int o = 0; o < 3; o++) free(r->dl[o]);
    free(r->proba);
    free(r->best_params);
    free(r->best_buffers);
    free(r->y);
    for (int p = 0; p < 4; p++) free(r->refs[p]);
    for (int s = 0; s < 4; s++) free(r->hist[s]);
}

static int open_data(fusion_run *r)
{
    const cnk_train_options *t = r->t;
    cnk_dataset_options dopts;
    cnk_dataset_options_init(&dopts);
    dopts.kind = CNK_INPUT_AUDIO;
    dopts.train_dir = t->train_dir;
    dopts.val_dir = t->val_dir;
    dopts.test_dir = t->test_dir;
    int rc = cnk_dataset_open(r->ctx, t->data, &dopts, &r->ds);
    if (rc) return rc;
    if (r->ds.n_classes < 2)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: found %zu class(es); training needs at least 2",
                        t->data ? t->data : t->train_dir, r->ds.n_classes);
    r->n_classes = (int)r->ds.n_classes;
    char split_path[4200];
    rc = cnk_split_file_path(r->ctx, t->model_path, split_path, sizeof split_path);
    if (!rc && t->resume) return cnk_split_read(r->ctx, split_path, &r->ds); /* the interrupted run's split */
    cnk_split_options so;
    cnk_split_options_init(&so);
    if (t->val_fraction >= 0) so.val_fraction = t->val_fraction;
    if (t->test_fraction >= 0) so.test_fraction = t->test_fraction;
    so.group_by = t->group_by;
    so.test_match = t->test_match;
    if (!rc) rc = cnk_split_assign(r->ctx, &r->ds, &so);
    if (!rc && cnk_dist_is_root(t->dist)) rc = cnk_split_write(r->ctx, split_path, &r->ds);
    return rc;
}

static int views_of_text(cnk_ctx *ctx, const char *text, const char *source, cnk_preprocess prep[2]);

/* Both views' features (cached), then each view's normalisation from the training clips; a resumed run takes
 * both views' preprocessing, normalisation included, from its checkpoint ck. */
static int compute_views(fusion_run *r, const cnk_modelfile *ck)
{
    int rc = CNK_OK;
    if (ck) {
        rc = views_of_text(r->ctx, ck->preprocess, r->t->resume, r->prep);
    } else {
        cnk_preprocess_defaults(&r->prep[0], CNK_PREP_MEL);
        cnk_audio_params_choose(&r->ds, r->t->sample_rate, r->t->segment_seconds, &r->prep[0]);
        cnk_audio_overrides_apply(&r->t->audio, &r->prep[0]);
        r->prep[1] = r->prep[0];
        r->prep[1].kind = CNK_PREP_WAVELET;
    }
    for (int v = 0; v < 2 && !rc; v++) { /* under MPI each rank first extracts its share into the cache */
        rc = cnk_dist_warm_feature_cache(r->ctx, r->t->dist, &r->ds, &r->prep[v], r->t->cache_dir);
        if (!rc) rc = cnk_featureset_compute(r->ctx, &r->ds, &r->prep[v], r->t->cache_dir, CNK_PART_NONE, &r->fs[v]);
    }
    if (rc || ck) return rc;
    size_t n = r->ds.n_items;
    const cnk_array **train = calloc(n ? n : 1, sizeof *train);
    if (!train) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    for (int v = 0; v < 2 && !rc; v++) {
        size_t n_train = 0;
        for (size_t i = 0; i < n; i++)
            if (r->ds.items[i].part == CNK_PART_TRAIN && r->fs[0].features[i].data && r->fs[1].features[i].data)
                train[n_train++] = &r->fs[v].features[i];
        rc = cnk_preprocess_fit(r->ctx, &r->prep[v], (const cnk_array *const *)train, n_train);
    }
    free(train);
    return rc;
}

static size_t n_segments(const fusion_run *r, size_t i, int train)
{
    size_t a = cnk_preprocess_n_segments(&r->prep[0], &r->fs[0].features[i], train);
    size_t b = cnk_preprocess_n_segments(&r->prep[1], &r->fs[1].features[i], train);
    return a < b ? a : b;
}

static int build_refs(fusion_run *r)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int p = 1; p < 4; p++) r->n_refs[p] = 0;
        for (size_t i = 0; i < r->ds.n_items; i++) {
            const cnk_item *item = &r->ds.items[i];
            if (item->label < 0 || item->part < CNK_PART_TRAIN || item->part > CNK_PART_TEST) continue;
            if (!r->fs[0].features[i].data || !r->fs[1].features[i].data) continue;
            size_t n = n_segments(r, i, item->part == CNK_PART_TRAIN);
            for (size_t s = 0; s < n; s++) {
                if (pass) r->refs[item->part][r->n_refs[item->part]] = (seg_ref){(int)i, (int)s};
                r->n_refs[item->part]++;
            }
        }
        for (int p = 1; p < 4 && !pass; p++) {
            r->refs[p] = malloc((r->n_refs[p] + 1) * sizeof *r->refs[p]);
            if (!r->refs[p]) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
        }
    }
    if (r->n_refs[CNK_PART_TRAIN] == 0) return cnk_fail(r->ctx, CNK_ERR_INPUT, "no training data could be read");
    return CNK_OK;
}

static void choose_hyper(fusion_run *r)
{
    const cnk_train_options *t = r->t;
    r->epochs = t->epochs > 0 ? t->epochs : 30;
    r->batch = t->batch_size > 0 ? t->batch_size : r->n_refs[CNK_PART_TRAIN] < 512 ? 16 : 32;
    r->lr = t->lr > 0 ? t->lr : 1e-3;
    r->patience = t->patience != 0 ? t->patience : 10;
    r->weight_decay = t->weight_decay >= 0 ? t->weight_decay : 1e-4;
    r->best_score = INFINITY;
}

static int create_model(fusion_run *r)
{
    int c;
    cnk_preprocess_input_shape(&r->prep[0], &c, &r->h[0], &r->w);
    cnk_preprocess_input_shape(&r->prep[1], &c, &r->h[1], &r->w);
    cnk_builtin_opts bo;
    cnk_builtin_opts_init(&bo);
    bo.input = (cnk_shape){1, r->h[0], r->w};
    bo.input2 = (cnk_shape){1, r->h[1], r->w};
    bo.n_classes = r->n_classes;
    int rc = cnk_builtin_arch(r->ctx, "fusion", &bo, &r->arch);
    if (!rc) rc = cnk_model_create(r->ctx, &r->arch, r->batch, &r->model);
    if (rc) return rc;
    cnk_model_init_params(r->model, r->ctx->seed);
    /* Every rank starts from rank 0's weights. */
    rc = cnk_dist_broadcast_floats(r->ctx, r->t->dist, cnk_model_params(r->model), r->arch.n_params);
    if (!rc) rc = cnk_dist_broadcast_floats(r->ctx, r->t->dist, cnk_model_buffers(r->model), r->arch.n_buffers);
    if (rc) return rc;
    cnk_optim_config oc;
    cnk_optim_config_init(&oc, CNK_OPTIM_ADAM);
    oc.lr = (float)r->lr;
    oc.weight_decay = (float)r->weight_decay;
    rc = cnk_optim_create(r->ctx, &oc, r->arch.n_params, &r->opt);
    oc.weight_decay = 0;
    if (!rc) rc = cnk_optim_create(r->ctx, &oc, 1, &r->weight_opt);
    if (rc) return rc;
    size_t B = (size_t)r->batch, C = (size_t)r->n_classes;
    for (int v = 0; v < 2; v++) {
        r->in_size[v] = (size_t)r->h[v] * r->w;
        r->x[v] = malloc(B * r->in_size[v] * sizeof *r->x[v]);
    }
    for (int o = 0; o < 3; o++) r->dl[o] = malloc(B * C * sizeof *r->dl[o]);
    size_t big = r->in_size[0] > r->in_size[1] ? r->in_size[0] : r->in_size[1];
    r->scratch = malloc(big * sizeof *r->scratch);
    r->proba = malloc(B * C * sizeof *r->proba);
    r->y = malloc(B * sizeof *r->y);
    r->best_params = malloc((r->arch.n_params + 1) * sizeof *r->best_params);
    r->best_buffers = malloc((r->arch.n_buffers + 1) * sizeof *r->best_buffers);
    for (int s = 0; s < 4; s++) r->hist[s] = calloc((size_t)r->epochs + 1, sizeof *r->hist[s]);
    int ok = r->x[0] && r->x[1] && r->dl[0] && r->dl[1] && r->dl[2] && r->scratch && r->proba && r->y &&
             r->best_params && r->best_buffers && r->hist[0] && r->hist[1] && r->hist[2] && r->hist[3];
    if (!ok) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory for training buffers");
    memcpy(r->best_params, cnk_model_params(r->model), r->arch.n_params * sizeof(float));
    memcpy(r->best_buffers, cnk_model_buffers(r->model), r->arch.n_buffers * sizeof(float));
    cnk_augment_defaults_spectrogram(&r->aug, r->h[0], r->w, 0);
    return CNK_OK;
}

static float min_of(const float *x, size_t n)
{
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = fminf(m, x[i]);
    return m;
}

/* Both views of each referenced segment into the batch; rng != NULL applies augmentation (independently per
 * view: each branch must cope with its own gaps). */
static int fill_batch(fusion_run *r, const seg_ref *const *refs, int n, cnk_rng *rng)
{
    for (int k = 0; k < n; k++) {
        int item = refs[k]->item, train = r->ds.items[item].part == CNK_PART_TRAIN;
        for (int v = 0; v < 2; v++) {
            float *x = r->x[v] + (size_t)k * r->in_size[v];
            int rc = cnk_preprocess_segment(r->ctx, &r->prep[v], &r->fs[v].features[item], (size_t)refs[k]->segment,
                                            train, x);
            if (rc) return rc;
            if (rng && r->w >= 8) {
                cnk_augment_params aug = r->aug;
                cnk_augment_defaults_spectrogram(&aug, r->h[v], r->w, min_of(x, r->in_size[v]));
                cnk_audio_params_augment(&r->prep[v], &aug);
                cnk_augment_spectrogram(rng, &aug, x, 1, r->h[v], r->w, r->scratch);
            }
        }
        r->y[k] = r->ds.items[item].label;
    }
    return CNK_OK;
}

static const float *const *outputs_of(fusion_run *r, const float *out[3])
{
    for (int o = 0; o < 3; o++) out[o] = cnk_model_output(r->model, o, NULL);
    return out;
}

/* This process's n samples through the network: the loss gradients accumulate in the model's gradient arena
 * and *dweight; adds to the loss sum and the correct count. */
static int local_gradients(fusion_run *r, int n, float *dweight, double *loss_sum, size_t *correct)
{
    const float *inputs[2] = {r->x[0], r->x[1]};
    int rc = cnk_model_forward(r->ctx, r->model, inputs, n, CNK_MODE_TRAIN);
    if (rc) return rc;
    const float *out[3];
    double loss = cnk_fusion_loss(r->mode, r->weight, outputs_of(r, out), r->y, n, r->n_classes, r->dl, dweight,
                                  r->proba);
    if (!isfinite(loss)) return cnk_fail(r->ctx, CNK_ERR_INPUT, "training diverged (loss %g): try a lower --lr", loss);
    const float *douts[3] = {r->mode == CNK_FUSION_CONCAT ? r->dl[0] : NULL, r->dl[1], r->dl[2]};
    rc = cnk_model_backward(r->ctx, r->model, douts);
    if (rc) return rc;
    *loss_sum += loss * n;
    for (int k = 0; k < n; k++) {
        const float *p = r->proba + (size_t)k * r->n_classes;
        int best = 0;
        for (int c = 1; c < r->n_classes; c++)
            if (p[c] > p[best]) best = c;
        *correct += best == r->y[k];
    }
    return CNK_OK;
}

/* One optimisation step. Under MPI n is this rank's shard (maybe 0) of a global batch of n_global, and the
 * gradients (the network's and the fusion weight's) are averaged over the global batch before the step. */
static int train_step(fusion_run *r, int n, int n_global, float lr, double *loss_sum, size_t *correct)
{
    cnk_model_zero_grad(r->model);
    float dweight = 0;
    int rc = n > 0 ? local_gradients(r, n, &dweight, loss_sum, correct) : CNK_OK;
    if (!rc)
        rc = cnk_dist_allreduce_gradients(r->ctx, r->t->dist, cnk_model_grads(r->model), r->arch.n_params, (size_t)n,
                                          (size_t)n_global);
    if (!rc && r->mode == CNK_FUSION_WEIGHTED)
        rc = cnk_dist_allreduce_gradients(r->ctx, r->t->dist, &dweight, 1, (size_t)n, (size_t)n_global);
    if (rc) return rc;
    int n_ranges;
    const cnk_param_range *ranges = cnk_model_trainable_ranges(r->model, &n_ranges);
    cnk_optim_step(r->opt, cnk_model_params(r->model), cnk_model_grads(r->model), ranges, n_ranges, lr,
                   r->ctx->threads);
    if (r->mode == CNK_FUSION_WEIGHTED) cnk_optim_step(r->weight_opt, &r->weight, &dweight, NULL, 0, lr * 10, 1);
    return CNK_OK;
}

static int train_epoch(fusion_run *r, int epoch, float lr, double *loss, double *acc)
{
    size_t n = r->n_refs[CNK_PART_TRAIN];
    int *order = malloc(n * sizeof *order);
    const seg_ref **batch_refs = malloc((size_t)r->batch * sizeof *batch_refs);
    if (!order || !batch_refs) {
        free(order);
        free(batch_refs);
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) order[i] = (int)i;
    cnk_rng shuffle_rng, aug_rng;
    cnk_rng_seed(&shuffle_rng, r->ctx->seed, 1000 + (uint64_t)epoch);
    /* Each rank draws its own augmentation and dropout streams (rank 0's are the single-process ones). */
    uint64_t rank_stream = (uint64_t)cnk_dist_rank(r->t->dist) << 32;
    cnk_rng_seed(&aug_rng, r->ctx->seed, 500000 + (uint64_t)epoch + rank_stream);
    cnk_model_set_seed(r->model, r->ctx->seed * 7919 + (uint64_t)epoch + rank_stream);
    cnk_rng_shuffle(&shuffle_rng, order, (int)n);
    size_t n_batches = (n + (size_t)r->batch - 1) / (size_t)r->batch;
    if (n_batches > 1 && n % (size_t)r->batch == 1) n_batches--; /* batch norm needs two samples */
    double loss_sum = 0;
    size_t correct = 0, seen = 0;
    int rc = CNK_OK;
    char stage[64];
    snprintf(stage, sizeof stage, "epoch %d/%d", epoch + 1, r->epochs);
    for (size_t b = 0; b < n_batches && !rc; b++) {
        size_t from = b * (size_t)r->batch;
        int bs = (int)(n - from < (size_t)r->batch ? n - from : (size_t)r->batch);
        size_t shard_from, shard_n; /* this rank's part of the global batch (all of it in one process) */
        cnk_dist_shard(r->t->dist, (size_t)bs, &shard_from, &shard_n);
        for (size_t k = 0; k < shard_n; k++) batch_refs[k] = &r->refs[CNK_PART_TRAIN][order[from + shard_from + k]];
        rc = fill_batch(r, batch_refs, (int)shard_n, &aug_rng);
        if (!rc) rc = train_step(r, (int)shard_n, bs, lr, &loss_sum, &correct);
        seen += shard_n;
        cnk_progress(r->ctx, stage, b + 1, n_batches, NULL);
    }
    free(order);
    free(batch_refs);
    /* The epoch's numbers over all ranks, and batch-norm running statistics averaged so every rank holds the
     * same model (each rank normalised its own shard, as in the plain loop: pipeline/distributed.h). */
    double totals[3] = {loss_sum, (double)correct, (double)seen};
    if (!rc) rc = cnk_dist_sum_doubles(r->ctx, r->t->dist, totals, 3);
    if (!rc) rc = cnk_dist_average_floats(r->ctx, r->t->dist, cnk_model_buffers(r->model), r->arch.n_buffers);
    *loss = totals[2] ? totals[0] / totals[2] : NAN;
    *acc = totals[2] ? totals[1] / totals[2] : NAN;
    return rc;
}

/* Clip-level evaluation: mean over each clip's segments of the fused and of each branch's probabilities. */
typedef struct clip_eval {
    size_t n;
    int *items, *y_true, *y_pred[3];
    double *proba[3]; /* fused, mel, wavelet */
    double loss, accuracy[3];
} clip_eval;

static void clip_eval_release(clip_eval *e)
{
    free(e->items);
    free(e->y_true);
    for (int m = 0; m < 3; m++) free(e->y_pred[m]), free(e->proba[m]);
    memset(e, 0, sizeof *e);
}

static int evaluate(fusion_run *r, int part, clip_eval *e)
{
    memset(e, 0, sizeof *e);
    const seg_ref *refs = r->refs[part];
    size_t n_refs = r->n_refs[part], C = (size_t)r->n_classes, max_clips = n_refs + 1;
    e->items = malloc(max_clips * sizeof *e->items);
    e->y_true = malloc(max_clips * sizeof *e->y_true);
    int *count = calloc(max_clips, sizeof *count);
    float *bp[2] = {malloc((size_t)r->batch * C * sizeof(float)), malloc((size_t)r->batch * C * sizeof(float))};
    const seg_ref **batch_refs = malloc((size_t)r->batch * sizeof *batch_refs);
    int ok = e->items && e->y_true && count && bp[0] && bp[1] && batch_refs;
    for (int m = 0; m < 3; m++) {
        e->y_pred[m] = malloc(max_clips * sizeof *e->y_pred[m]);
        e->proba[m] = calloc(max_clips * C, sizeof *e->proba[m]);
        ok = ok && e->y_pred[m] && e->proba[m];
    }
    int rc = ok ? CNK_OK : cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    double loss_sum = 0;
    long clip = -1;
    for (size_t from = 0; from < n_refs && !rc; from += (size_t)r->batch) {
        int bs = (int)(n_refs - from < (size_t)r->batch ? n_refs - from : (size_t)r->batch);
        for (int k = 0; k < bs; k++) batch_refs[k] = &refs[from + (size_t)k];
        rc = fill_batch(r, batch_refs, bs, NULL);
        const float *inputs[2] = {r->x[0], r->x[1]};
        if (!rc) rc = cnk_model_forward(r->ctx, r->model, inputs, bs, CNK_MODE_INFER);
        if (rc) break;
        const float *out[3];
        cnk_fusion_probs(r->mode, r->weight, outputs_of(r, out), bs, r->n_classes, r->proba, bp);
        for (int k = 0; k < bs; k++) {
            if (clip < 0 || e->items[clip] != batch_refs[k]->item) {
                e->items[++clip] = batch_refs[k]->item;
                e->y_true[clip] = r->y[k];
            }
            count[clip]++;
            const float *src[3] = {r->proba + (size_t)k * C, bp[0] + (size_t)k * C, bp[1] + (size_t)k * C};
            loss_sum -= log(fmax((double)src[0][r->y[k]], 1e-30));
            for (int m = 0; m < 3; m++)
                for (size_t c = 0; c < C; c++) e->proba[m][(size_t)clip * C + c] += src[m][c];
        }
    }
    e->n = (size_t)(clip + 1);
    for (int m = 0; m < 3 && !rc; m++) {
        size_t correct = 0;
        for (size_t i = 0; i < e->n; i++) {
            double *p = e->proba[m] + i * C;
            int best = 0;
            for (size_t c = 0; c < C; c++) {
                p[c] /= count[i];
                if (p[c] > p[best]) best = (int)c;
            }
            e->y_pred[m][i] = best;
            correct += best == e->y_true[i];
        }
        e->accuracy[m] = e->n ? (double)correct / (double)e->n : NAN;
    }
    e->loss = n_refs ? loss_sum / (double)n_refs : NAN;
    free(count);
    free(bp[0]);
    free(bp[1]);
    free(batch_refs);
    return rc;
}

int cnk_fusion_model_text(fusion_run *r, float weight, char **out)
{
    *out = NULL;
    /* One preprocessing for both views: mel+wavelet with the mel's normalisation first, the wavelet's second. */
    cnk_preprocess p = r->prep[0];
    p.kind = CNK_PREP_MEL_WAVELET;
    p.n_norm = 2;
    p.mean[0] = r->prep[0].mean[0], p.std[0] = r->prep[0].std[0];
    p.mean[1] = r->prep[1].mean[0], p.std[1] = r->prep[1].std[0];
    char *prep_text = NULL;
    int rc = cnk_preprocess_to_text(r->ctx, &p, &prep_text);
    if (rc) return rc;
    size_t cap = strlen(prep_text) + 128;
    *out = malloc(cap);
    if (*out)
        snprintf(*out, cap, "%sfusion=%s\nfusion_weight=%.9g\narch_name=fusion\n", prep_text,
                 cnk_fusion_mode_name(r->mode), (double)weight);
    free(prep_text);
    return *out ? CNK_OK : cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
}

static int save_model(fusion_run *r)
{
    char *arch_text = NULL, *text = NULL;
    int rc = cnk_cfg_write(r->ctx, &r->arch, &arch_text);
    if (!rc) rc = cnk_fusion_model_text(r, r->best_weight, &text);
    if (!rc) {
        cnk_modelfile mf = {.arch_text = arch_text,
                            .class_names = r->ds.classes,
                            .n_classes = r->n_classes,
                            .preprocess = text,
                            .params = r->best_params,
                            .n_params = r->arch.n_params,
                            .buffers = r->best_buffers,
                            .n_buffers = r->arch.n_buffers};
        rc = cnk_modelfile_write(r->ctx, r->t->model_path, &mf);
    }
    free(arch_text);
    free(text);
    return rc;
}

static int end_epoch(fusion_run *r, int epoch, double tl, double ta, double lr, double t0)
{
    clip_eval val = {0};
    int has_val = r->n_refs[CNK_PART_VAL] > 0;
    int rc = has_val ? evaluate(r, CNK_PART_VAL, &val) : CNK_OK;
    double vl = has_val ? val.loss : NAN, va = has_val ? val.accuracy[0] : NAN;
    clip_eval_release(&val);
    if (rc) return rc;
    r->hist[0][epoch] = tl, r->hist[1][epoch] = ta, r->hist[2][epoch] = vl, r->hist[3][epoch] = va;
    r->n_hist = epoch + 1;
    double score = has_val ? vl : -(double)epoch;
    int improved = score < r->best_score - (has_val ? 1e-4 : 0);
    if (improved) {
        r->best_score = score;
        r->bad_epochs = 0;
        r->best_weight = r->weight;
        r->res->train.best_epoch = epoch + 1;
        r->res->train.best_val_loss = score;
        memcpy(r->best_params, cnk_model_params(r->model), r->arch.n_params * sizeof(float));
        memcpy(r->best_buffers, cnk_model_buffers(r->model), r->arch.n_buffers * sizeof(float));
        if (cnk_dist_is_root(r->t->dist)) rc = save_model(r);
    } else {
        r->bad_epochs++;
    }
    if (!rc && cnk_dist_is_root(r->t->dist)) rc = cnk_fusion_checkpoint_save(r, epoch + 1);
    if (r->t->on_epoch) {
        cnk_epoch_stats st = {.epoch = epoch + 1, .epochs = r->epochs, .train_loss = tl, .train_acc = ta,
                              .val_loss = vl, .val_acc = va, .lr = lr, .seconds = now_seconds() - t0,
                              .improved = improved};
        r->t->on_epoch(r->t->user, &st);
    }
    return rc;
}

static int train_all(fusion_run *r)
{
    cnk_lr_schedule sched = {.kind = CNK_LR_COSINE, .base_lr = (float)r->lr, .total = r->epochs,
                             .min_lr = (float)(r->lr * 0.02)};
    int rc = CNK_OK, stop_after = r->t->max_epochs_this_run;
    r->res->train.epochs_run = r->start_epoch;
    for (int epoch = r->start_epoch; epoch < r->epochs && !rc; epoch++) {
        if (r->patience > 0 && r->bad_epochs >= r->patience) {
            r->res->train.stopped_early = 1;
            break;
        }
        if (stop_after > 0 && epoch - r->start_epoch >= stop_after) { /* the checkpoint holds the state */
            r->res->train.interrupted = 1;
            break;
        }
        double t0 = now_seconds(), tl = NAN, ta = NAN;
        float lr = cnk_lr_at(&sched, epoch);
        rc = train_epoch(r, epoch, lr, &tl, &ta);
        if (!rc) rc = end_epoch(r, epoch, tl, ta, lr, t0);
        r->res->train.epochs_run = epoch + 1;
    }
    return rc;
}

static int write_report(fusion_run *r, const clip_eval *e)
{
    const char **paths = malloc((e->n + 1) * sizeof *paths);
    if (!paths) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < e->n; i++) paths[i] = r->ds.items[e->items[i]].path;
    cnk_report_history hist = {(size_t)r->n_hist, r->hist[0], r->hist[1], r->hist[2], r->hist[3]};
    char fused_name[64];
    snprintf(fused_name, sizeof fused_name, "fusion (%s)", cnk_fusion_mode_name(r->mode));
    const char *names[3] = {fused_name, "mel branch", "wavelet branch"};
    cnk_report_model models[3];
    for (int m = 0; m < 3; m++)
        models[m] = (cnk_report_model){.name = names[m],
                                       .n_samples = e->n,
                                       .n_classes = (size_t)r->n_classes,
                                       .class_names = (const char *const *)r->ds.classes,
                                       .y_true = e->y_true,
                                       .y_pred = e->y_pred[m],
                                       .proba = e->proba[m],
                                       .paths = paths,
                                       .history = m == 0 ? &hist : NULL};
    char weight[64], seg[64];
    snprintf(weight, sizeof weight, "mel %.3f / wavelet %.3f", (double)sigmoidf(r->best_weight),
             1.0 - (double)sigmoidf(r->best_weight));
    snprintf(seg, sizeof seg, "mel 1 x %d x %d, wavelet 1 x %d x %d", r->h[0], r->w, r->h[1], r->w);
    cnk_report_param params[] = {{"data", r->t->data ? r->t->data : r->t->train_dir},
                                 {"model", r->t->model_path},
                                 {"input", "mel+wavelet"},
                                 {"model inputs", seg},
                                 {"fusion", cnk_fusion_mode_name(r->mode)},
                                 {"learned weights", r->mode == CNK_FUSION_WEIGHTED ? weight : "-"},
                                 {"split", "test split held out from training (see the .split.csv file)"}};
    cnk_report_input in = {.title = "cnnkit late-fusion report: held-out test split (fused model and each branch)",
                           .models = models,
                           .n_models = 3,
                           .params = params,
                           .n_params = sizeof params / sizeof params[0]};
    int rc = cnk_report_write(r->ctx, r->t->report_dir, &in);
    free(paths);
    return rc;
}

static int evaluate_test(fusion_run *r)
{
    memcpy(cnk_model_params(r->model), r->best_params, r->arch.n_params * sizeof(float));
    memcpy(cnk_model_buffers(r->model), r->best_buffers, r->arch.n_buffers * sizeof(float));
    r->weight = r->best_weight;
    if (r->n_refs[CNK_PART_TEST] == 0) {
        if (r->t->report_dir) return cnk_fail(r->ctx, CNK_ERR_ARG, "--report: there is no test split to evaluate on");
        return CNK_OK;
    }
    clip_eval e;
    int rc = evaluate(r, CNK_PART_TEST, &e);
    if (!rc) {
        r->res->train.test_accuracy = e.accuracy[0];
        r->res->mel_test_accuracy = e.accuracy[1];
        r->res->wavelet_test_accuracy = e.accuracy[2];
    }
    if (!rc && r->t->report_dir && cnk_dist_is_root(r->t->dist)) rc = write_report(r, &e);
    clip_eval_release(&e);
    return rc;
}

static int check_options(cnk_ctx *ctx, const cnk_train_options *t)
{
    if (!t->model_path) return cnk_fail(ctx, CNK_ERR_ARG, "the model path (-o MODEL.cnk) is required");
    if (!t->data && !t->train_dir) return cnk_fail(ctx, CNK_ERR_ARG, "no data given");
    if (t->from) return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "--from with --input mel+wavelet is not supported");
    if (t->ema_decay > 0 || t->label_smoothing > 0 || t->mixup > 0 || t->erase > 0 || t->tta_flip > 0 ||
        (t->eval_crop > 0 && t->eval_crop < 1) || t->train_width > 0 ||
        (t->optimizer && strcmp(t->optimizer, "adam") != 0)) /* never silently ignored */
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "--ema, --label-smoothing, --mixup, --erase, --tta, --eval-crop, "
                                                  "--train-size and --optimizer other than adam are not available for fusion training");
    if (t->arch && strcmp(t->arch, "fusion") != 0)
        return cnk_fail(ctx, CNK_ERR_ARG, "--input mel+wavelet trains --arch fusion, not '%s'", t->arch);
    return CNK_OK;
}

int cnk_fusion_run(cnk_ctx *ctx, const cnk_train_options *opts, cnk_fusion_mode mode, cnk_fusion_result *result)
{
    memset(result, 0, sizeof *result);
    result->train.test_accuracy = result->mel_test_accuracy = result->wavelet_test_accuracy = NAN;
    int rc = check_options(ctx, opts);
    if (rc) return rc;
    fusion_run *r = calloc(1, sizeof *r);
    if (!r) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    *r = (fusion_run){.ctx = ctx, .t = opts, .mode = mode, .res = result};
    cnk_arch_init(&r->arch);
    cnk_modelfile ck; /* the checkpoint of an interrupted run (--resume) */
    cnk_modelfile_init(&ck);
    double t0 = now_seconds();
    rc = open_data(r);
    if (!rc && opts->resume) rc = cnk_modelfile_read(ctx, opts->resume, &ck);
    if (!rc && opts->resume) rc = cnk_ckpt_check_kind(ctx, ck.preprocess, opts->resume, "fusion");
    if (!rc && opts->resume && ck.n_classes != r->n_classes)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: made for %d classes, the data has %d", opts->resume, ck.n_classes,
                      r->n_classes);
    if (!rc) rc = compute_views(r, opts->resume ? &ck : NULL);
    result->train.seconds_features = now_seconds() - t0;
    if (!rc) rc = build_refs(r);
    if (!rc) choose_hyper(r);
    if (!rc && opts->resume) rc = cnk_fusion_checkpoint_hyper(r, &ck);
    if (!rc) rc = create_model(r);
    if (!rc && opts->resume) rc = cnk_fusion_checkpoint_load(r, &ck);
    cnk_modelfile_release(&ck);
    t0 = now_seconds();
    if (!rc) rc = train_all(r);
    result->train.seconds_training = now_seconds() - t0;
    if (!rc && !result->train.interrupted && cnk_dist_is_root(opts->dist))
        rc = evaluate_test(r); /* the other ranks would only repeat it */
    result->weight = r->best_weight;
    snprintf(result->train.input, sizeof result->train.input, "mel+wavelet");
    snprintf(result->train.arch, sizeof result->train.arch, "fusion (%s)", cnk_fusion_mode_name(mode));
    for (size_t i = 0; r->fs[0].features && i < r->ds.n_items; i++) {
        if (!r->fs[0].features[i].data || !r->fs[1].features || !r->fs[1].features[i].data) continue;
        int part = r->ds.items[i].part;
        result->train.n_train += part == CNK_PART_TRAIN;
        result->train.n_val += part == CNK_PART_VAL;
        result->train.n_test += part == CNK_PART_TEST;
    }
    result->train.n_train_segments = r->n_refs[CNK_PART_TRAIN];
    result->train.n_cached = r->fs[0].n_cached < r->fs[1].n_cached ? r->fs[0].n_cached : r->fs[1].n_cached;
    release_run(r);
    free(r);
    return rc;
}

/* ---- predicting with a saved fusion model ---- */

/* The two views' preprocessing from the model's mel+wavelet text (normalisation 0 = mel, 1 = wavelet). */
static int views_of_text(cnk_ctx *ctx, const char *text, const char *source, cnk_preprocess prep[2])
{
    cnk_preprocess p;
    int rc = cnk_preprocess_from_text(ctx, text, source, &p);
    if (rc) return rc;
    if (p.kind != CNK_PREP_MEL_WAVELET || p.n_norm != 2)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: a fusion model needs mel+wavelet input with two normalisations",
                        source);
    for (int v = 0; v < 2; v++) {
        prep[v] = p;
        prep[v].kind = v == 0 ? CNK_PREP_MEL : CNK_PREP_WAVELET;
        prep[v].n_norm = 1;
        prep[v].mean[0] = p.mean[v];
        prep[v].std[0] = p.std[v];
    }
    return CNK_OK;
}

struct cnk_fusion_predictor {
    cnk_ctx *ctx;
    cnk_model *model;
    cnk_preprocess prep[2];
    cnk_fusion_mode mode;
    float weight;
    int n_classes, h[2], w;
    float *x[2], *proba;
};

enum { PREDICT_BATCH = 16 };

static int predictor_init(cnk_fusion_predictor *fp, const cnk_modelfile *mf, const char *source)
{
    cnk_ctx *ctx = fp->ctx;
    int is_fusion, c;
    int rc = cnk_fusion_from_text(ctx, mf->preprocess, source, &is_fusion, &fp->mode, &fp->weight);
    if (!rc && !is_fusion) rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a fusion model", source);
    if (!rc) rc = views_of_text(ctx, mf->preprocess, source, fp->prep);
    cnk_arch arch;
    cnk_arch_init(&arch);
    if (!rc) rc = cnk_modelfile_arch(ctx, mf, &arch);
    if (rc) return rc;
    for (int v = 0; v < 2; v++) cnk_preprocess_input_shape(&fp->prep[v], &c, &fp->h[v], &fp->w);
    fp->n_classes = mf->n_classes;
    if (arch.n_input_layers != 2 || arch.n_outputs != 3)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: a fusion model has 2 inputs and 3 outputs", source);
    for (int v = 0; v < 2 && !rc; v++) {
        cnk_shape in = arch.layers[arch.input_layers[v]].input_shape;
        if (in.c != 1 || in.h != fp->h[v] || in.w != fp->w)
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: input %d is %dx%dx%d, its preprocessing gives 1x%dx%d", source, v,
                          in.c, in.h, in.w, fp->h[v], fp->w);
    }
    for (int o = 0; o < 3 && !rc; o++) {
        const cnk_layer *l = &arch.layers[arch.outputs[o]];
        if (l->out.c * l->out.h * l->out.w != fp->n_classes)
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: output %d does not have %d classes", source, o, fp->n_classes);
    }
    if (!rc) rc = cnk_model_create(ctx, &arch, PREDICT_BATCH, &fp->model);
    cnk_arch_release(&arch);
    if (rc) return rc;
    memcpy(cnk_model_params(fp->model), mf->params, mf->n_params * sizeof(float));
    memcpy(cnk_model_buffers(fp->model), mf->buffers, mf->n_buffers * sizeof(float));
    for (int v = 0; v < 2; v++) fp->x[v] = malloc(PREDICT_BATCH * (size_t)fp->h[v] * fp->w * sizeof(float));
    fp->proba = malloc(PREDICT_BATCH * (size_t)fp->n_classes * sizeof(float));
    if (!fp->x[0] || !fp->x[1] || !fp->proba) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", source);
    return CNK_OK;
}

static void predictor_release(cnk_fusion_predictor *fp)
{
    cnk_model_free(fp->model);
    free(fp->x[0]);
    free(fp->x[1]);
    free(fp->proba);
}

/* Mean fused probabilities over the segments of one file. */
static int predict_one(cnk_fusion_predictor *fp, const cnk_array *mel, const cnk_array *wav, double *proba)
{
    size_t C = (size_t)fp->n_classes;
    size_t a = cnk_preprocess_n_segments(&fp->prep[0], mel, 0), b = cnk_preprocess_n_segments(&fp->prep[1], wav, 0);
    size_t n_seg = a < b ? a : b;
    memset(proba, 0, C * sizeof *proba);
    for (size_t from = 0; from < n_seg; from += PREDICT_BATCH) {
        int bs = (int)(n_seg - from < PREDICT_BATCH ? n_seg - from : PREDICT_BATCH);
        for (int k = 0; k < bs; k++)
            for (int v = 0; v < 2; v++) {
                int rc = cnk_preprocess_segment(fp->ctx, &fp->prep[v], v ? wav : mel, from + (size_t)k, 0,
                                                fp->x[v] + (size_t)k * fp->h[v] * fp->w);
                if (rc) return rc;
            }
        const float *inputs[2] = {fp->x[0], fp->x[1]};
        int rc = cnk_model_forward(fp->ctx, fp->model, inputs, bs, CNK_MODE_INFER);
        if (rc) return rc;
        const float *out[3];
        for (int o = 0; o < 3; o++) out[o] = cnk_model_output(fp->model, o, NULL);
        cnk_fusion_probs(fp->mode, fp->weight, out, bs, fp->n_classes, fp->proba, NULL);
        for (int k = 0; k < bs; k++)
            for (size_t c = 0; c < C; c++) proba[c] += fp->proba[(size_t)k * C + c];
    }
    for (size_t c = 0; c < C; c++) proba[c] /= (double)(n_seg ? n_seg : 1);
    return CNK_OK;
}

int cnk_fusion_predictor_create(cnk_ctx *ctx, const cnk_modelfile *mf, const char *source, cnk_fusion_predictor **out)
{
    *out = NULL;
    cnk_fusion_predictor *fp = calloc(1, sizeof *fp);
    if (!fp) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", source);
    fp->ctx = ctx;
    int rc = predictor_init(fp, mf, source);
    if (rc) {
        cnk_fusion_predictor_free(fp);
        return rc;
    }
    *out = fp;
    return CNK_OK;
}

void cnk_fusion_predictor_free(cnk_fusion_predictor *fp)
{
    if (!fp) return;
    predictor_release(fp);
    free(fp);
}

const cnk_preprocess *cnk_fusion_predictor_view(const cnk_fusion_predictor *fp, int view)
{
    return &fp->prep[view ? 1 : 0];
}

int cnk_fusion_predictor_classify(cnk_ctx *ctx, cnk_fusion_predictor *fp, const cnk_array *mel,
                                  const cnk_array *wavelet, double *proba)
{
    fp->ctx = ctx;
    return predict_one(fp, mel, wavelet, proba);
}

int cnk_fusion_predict_files(cnk_ctx *ctx, const cnk_modelfile *mf, const char *source, const char *const *paths,
                             size_t n, const char *cache_dir, double *proba, int *ok)
{
    cnk_fusion_predictor fp = {.ctx = ctx};
    cnk_featureset fs[2];
    memset(fs, 0, sizeof fs);
    int rc = predictor_init(&fp, mf, source);
    if (!rc) rc = cnk_featureset_compute_paths(ctx, paths, n, &fp.prep[0], cache_dir, &fs[0]);
    if (!rc) {
        cnk_ctx quiet = *ctx; /* files that fail were reported with the first view */
        quiet.warn = NULL;
        rc = cnk_featureset_compute_paths(&quiet, paths, n, &fp.prep[1], cache_dir, &fs[1]);
        if (rc) cnk_fail(ctx, rc, "%s", cnk_error(&quiet));
    }
    for (size_t i = 0; i < n && !rc; i++) {
        ok[i] = fs[0].features[i].data && fs[1].features[i].data;
        if (ok[i]) rc = predict_one(&fp, &fs[0].features[i], &fs[1].features[i], proba + i * (size_t)fp.n_classes);
        cnk_progress(ctx, "classify", i + 1, n, NULL);
    }
    cnk_featureset_release(&fs[0]);
    cnk_featureset_release(&fs[1]);
    predictor_release(&fp);
    return rc;
}
