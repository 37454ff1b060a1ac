/* train_loop.c: the epochs of a training run: shuffled mini-batches with augmentation (and mixup), an optional
 * moving average of the weights, validation every epoch (of the average when there is one; photos with
 * test-time flips), early stopping on the validation loss, the best model and a resumable checkpoint written
 * atomically after every epoch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/npy.h"
#include "core/rng.h"
#include "nn/loss.h"
#include "nn/modelfile.h"
#include "pipeline/ckpt_text.h"
#include "pipeline/distributed.h"
#include "pipeline/train_internal.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float min_of(const float *x, size_t n)
{
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = fminf(m, x[i]);
    return m;
}

/* A training photo kept at the training source size into x at the input size: its random-resized crop when
 * augmenting (the rest of the image augmentation with it), else the whole of it resized. */
static int fill_from_source(train_run *r, const cnk_array *features, int augment, cnk_rng *rng, float *x)
{
    int rc = cnk_preprocess_segment(r->ctx, &r->train_prep, features, 0, 1, r->source);
    if (rc) return rc;
    if (augment)
        cnk_augment_image_from(rng, &r->aug, r->source, r->train_h, r->train_w, x, r->in_c, r->in_h, r->in_w);
    else
        cnk_augment_crop_resize(r->source, r->in_c, r->train_h, r->train_w, 0, 0, r->train_w, r->train_h, 0, x,
                                r->in_h, r->in_w);
    return CNK_OK;
}

/* Fills the batch inputs and labels for refs[0..n); train = 1 applies augmentation. */
static int fill_batch(train_run *r, const sample_ref *const *refs, int n, int train, cnk_rng *rng)
{
    for (int k = 0; k < n; k++) {
        const sample_ref *ref = refs[k];
        float *x = r->batch_x + (size_t)k * r->in_size;
        int in_train_part = r->ds.items[ref->item].part == CNK_PART_TRAIN;
        r->batch_y[k] = r->ds.items[ref->item].label;
        if (r->train_source && in_train_part) {
            int rc = fill_from_source(r, &r->fs.features[ref->item], train && r->augment_kind == 1, rng, x);
            if (rc) return rc;
            continue;
        }
        int rc = cnk_preprocess_segment(r->ctx, &r->prep, &r->fs.features[ref->item], (size_t)ref->segment,
                                        in_train_part, x);
        if (rc) return rc;
        if (!train) continue;
        if (r->augment_kind == 1) {
            cnk_augment_image(rng, &r->aug, x, r->in_c, r->in_h, r->in_w, r->scratch);
        } else if (r->augment_kind == 2) {
            r->aug.fill = min_of(x, r->in_size); /* the segment's silence level */
            cnk_augment_spectrogram(rng, &r->aug, x, r->in_c, r->in_h, r->in_w, r->scratch);
        }
    }
    return CNK_OK;
}

/* Mixup (pipeline/augment.h) of the filled batch: one lam ~ Beta(mixup, mixup) per batch. */
static void mix_batch(train_run *r, int n, cnk_rng *rng)
{
    float lam = (float)cnk_augment_beta(rng, r->mixup);
    cnk_augment_mixup(r->batch_x, r->batch_y, n, r->in_size, r->n_classes, lam, r->soft_targets);
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Forward and backward of this process's n samples: the gradients (of their mean loss) accumulate in the
 * model's gradient arena; adds to the loss sum and correct count. */
static int local_gradients(train_run *r, int n, double *loss_sum, size_t *correct)
{
    const float *inputs[1] = {r->batch_x};
    int rc = cnk_model_forward(r->ctx, r->model, inputs, n, CNK_MODE_TRAIN);
    if (rc) return rc;
    const float *logits = cnk_model_output(r->model, 0, NULL);
    double loss = r->mixup > 0 ? cnk_loss_softmax_ce_soft(logits, r->soft_targets, n, r->n_classes,
                                                          r->label_smoothing, r->probs, r->dlogits)
                               : cnk_loss_softmax_ce_smooth(logits, r->batch_y, n, r->n_classes, r->label_smoothing,
                                                            r->probs, r->dlogits);
    if (!isfinite(loss)) return cnk_fail(r->ctx, CNK_ERR_INPUT, "training diverged (loss %g): try a lower --lr", loss);
    const float *douts[1] = {r->dlogits};
    rc = cnk_model_backward(r->ctx, r->model, douts);
    if (rc) return rc;
    *loss_sum += loss * n;
    for (int k = 0; k < n; k++) *correct += argmax(r->probs + (size_t)k * r->n_classes, r->n_classes) == r->batch_y[k];
    return CNK_OK;
}

/* avg <- d avg + (1 - d) x over n values. */
static void blend(float *avg, const float *x, size_t n, float d)
{
    for (size_t i = 0; i < n; i++) avg[i] = d * avg[i] + (1 - d) * x[i];
}

/* The weight average after a step. Its decay ramps up as (1 + t) / (10 + t) over the first steps (t = steps
 * taken), so the random initial weights are forgotten quickly, and is capped at 1 - 10 / (the run's steps), so
 * the average spans at most a tenth of a short run (a few epochs of a few photos would otherwise keep mostly
 * the initial weights). It depends only on the step count, which the checkpoint keeps, and the planned run,
 * so a resumed run averages exactly as an uninterrupted one. */
static void ema_update(train_run *r)
{
    double t = (double)cnk_optim_steps(r->opt);
    double per_epoch = ceil((double)r->parts[CNK_PART_TRAIN].n / r->batch), total = per_epoch * r->epochs;
    float d = (float)fmax(0.0, fmin(fmin(r->ema_decay, (1 + t) / (10 + t)), 1 - 10 / total));
    blend(r->ema_params, cnk_model_params(r->model), r->arch.n_params, d);
    blend(r->ema_buffers, cnk_model_buffers(r->model), r->arch.n_buffers, d);
}

/* Puts the weight average into the model (keeping the trained weights aside), or back: validation, the kept
 * model and the final one are the average's; training continues from the trained weights. */
static void ema_swap_in(train_run *r)
{
    memcpy(r->live_params, cnk_model_params(r->model), r->arch.n_params * sizeof(float));
    memcpy(r->live_buffers, cnk_model_buffers(r->model), r->arch.n_buffers * sizeof(float));
    memcpy(cnk_model_params(r->model), r->ema_params, r->arch.n_params * sizeof(float));
    memcpy(cnk_model_buffers(r->model), r->ema_buffers, r->arch.n_buffers * sizeof(float));
}

static void ema_swap_out(train_run *r)
{
    memcpy(cnk_model_params(r->model), r->live_params, r->arch.n_params * sizeof(float));
    memcpy(cnk_model_buffers(r->model), r->live_buffers, r->arch.n_buffers * sizeof(float));
}

/* One optimisation step on a filled batch; adds to the loss sum and correct count. With several ranks, n is
 * this rank's shard (maybe 0) of a global batch of n_global and the gradients are reduced before the step. */
static int train_step(train_run *r, int n, int n_global, float lr, double *loss_sum, size_t *correct)
{
    cnk_model_zero_grad(r->model);
    int rc = n > 0 ? local_gradients(r, n, loss_sum, correct) : CNK_OK;
    if (!rc)
        rc = cnk_dist_allreduce_gradients(r->ctx, r->opts->dist, cnk_model_grads(r->model), r->arch.n_params,
                                          (size_t)n, (size_t)n_global);
    if (rc) return rc;
    int n_ranges;
    const cnk_param_range *ranges = cnk_model_trainable_ranges(r->model, &n_ranges);
    cnk_optim_step(r->opt, cnk_model_params(r->model), cnk_model_grads(r->model), ranges, n_ranges, lr,
                   r->ctx->threads);
    if (r->ema_params) ema_update(r);
    return CNK_OK;
}

static int train_epoch(train_run *r, int epoch, float lr, double *loss_out, double *acc_out)
{
    const ref_list *train = &r->parts[CNK_PART_TRAIN];
    size_t n = train->n;
    int *order = malloc(n * sizeof *order);
    const sample_ref **batch_refs = malloc((size_t)r->batch * sizeof *batch_refs);
    if (!order || !batch_refs) {
        free(order);
        free(batch_refs);
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) order[i] = (int)i;
    /* Streams derived from (seed, epoch) make a resumed run repeat exactly what an uninterrupted one does. */
    cnk_rng shuffle_rng, aug_rng, mix_rng;
    cnk_rng_seed(&shuffle_rng, r->ctx->seed, 1000 + (uint64_t)epoch);
    /* Each rank draws its own augmentation and dropout streams (rank 0's are the single-process ones). */
    uint64_t rank_stream = (uint64_t)cnk_dist_rank(r->opts->dist) << 32;
    cnk_rng_seed(&aug_rng, r->ctx->seed, 500000 + (uint64_t)epoch + rank_stream);
    cnk_rng_seed(&mix_rng, r->ctx->seed, 700000 + (uint64_t)epoch + rank_stream);
    cnk_model_set_seed(r->model, r->ctx->seed * 7919 + (uint64_t)epoch + rank_stream);
    cnk_rng_shuffle(&shuffle_rng, order, (int)n);
    size_t n_batches = (n + (size_t)r->batch - 1) / (size_t)r->batch;
    /* A last batch of one sample would give batch norm a zero variance: it is left out (reshuffled next epoch). */
    if (n_batches > 1 && n % (size_t)r->batch == 1) n_batches--;
    double loss_sum = 0;
    size_t correct = 0, seen = 0;
    char stage[64], extra[96];
    snprintf(stage, sizeof stage, "epoch %d/%d", epoch + 1, r->epochs);
    int rc = CNK_OK;
    for (size_t b = 0; b < n_batches && !rc; b++) {
        size_t from = b * (size_t)r->batch;
        int bs = (int)((n - from) < (size_t)r->batch ? n - from : (size_t)r->batch);
        size_t shard_from, shard_n; /* this rank's part of the global batch (all of it in one process) */
        cnk_dist_shard(r->opts->dist, (size_t)bs, &shard_from, &shard_n);
        for (size_t k = 0; k < shard_n; k++) batch_refs[k] = &train->refs[order[from + shard_from + k]];
        rc = fill_batch(r, batch_refs, (int)shard_n, 1, &aug_rng);
        if (!rc && r->mixup > 0) mix_batch(r, (int)shard_n, &mix_rng);
        if (!rc) rc = train_step(r, (int)shard_n, bs, lr, &loss_sum, &correct);
        seen += shard_n;
        snprintf(extra, sizeof extra, "loss %.4f acc %.3f", loss_sum / (double)seen, (double)correct / (double)seen);
        cnk_progress(r->ctx, stage, b + 1, n_batches, extra);
    }
    free(order);
    free(batch_refs);
    /* The epoch's numbers over all ranks, and batch-norm running statistics averaged so every rank holds the
     * same model (each rank normalised its own shard; see pipeline/distributed.h). */
    double totals[3] = {loss_sum, (double)correct, (double)seen};
    if (!rc) rc = cnk_dist_sum_doubles(r->ctx, r->opts->dist, totals, 3);
    if (!rc)
        rc = cnk_dist_average_floats(r->ctx, r->opts->dist, cnk_model_buffers(r->model), r->arch.n_buffers);
    if (!rc && r->ema_buffers)
        rc = cnk_dist_average_floats(r->ctx, r->opts->dist, r->ema_buffers, r->arch.n_buffers);
    loss_sum = totals[0], correct = (size_t)totals[1], seen = (size_t)totals[2];
    *loss_out = seen ? loss_sum / (double)seen : NAN;
    *acc_out = seen ? (double)correct / (double)seen : NAN;
    return rc;
}

/* ---- evaluation ---- */

/* The class probabilities of the filled batch into r->probs, adding the batch's summed cross-entropy (plain,
 * unsmoothed) to loss_sum: the network's softmax, averaged with that of the mirrored images when the model
 * does test-time flips (pipeline/classify.c does the same at prediction). first_probs: batch x classes. */
static int infer_batch(train_run *r, int bs, float *first_probs, double *loss_sum)
{
    const float *inputs[1] = {r->batch_x};
    int rc = cnk_model_forward(r->ctx, r->model, inputs, bs, CNK_MODE_INFER);
    if (rc) return rc;
    const float *logits = cnk_model_output(r->model, 0, NULL);
    if (!r->prep.tta_flip) {
        *loss_sum += bs * cnk_loss_softmax_ce(logits, r->batch_y, bs, r->n_classes, r->probs, NULL);
        return CNK_OK;
    }
    size_t C = (size_t)r->n_classes;
    cnk_loss_softmax_ce(logits, r->batch_y, bs, r->n_classes, first_probs, NULL);
    for (int k = 0; k < bs; k++) cnk_augment_mirror(r->batch_x + (size_t)k * r->in_size, r->in_c, r->in_h, r->in_w);
    rc = cnk_model_forward(r->ctx, r->model, inputs, bs, CNK_MODE_INFER);
    if (rc) return rc;
    cnk_loss_softmax_ce(cnk_model_output(r->model, 0, NULL), r->batch_y, bs, r->n_classes, r->probs, NULL);
    for (int k = 0; k < bs; k++) {
        float *p = r->probs + (size_t)k * C;
        for (size_t c = 0; c < C; c++) p[c] = 0.5f * (first_probs[(size_t)k * C + c] + p[c]);
        int label = r->batch_y[k];
        if (label >= 0 && label < r->n_classes) *loss_sum -= log(fmax((double)p[label], 1e-30));
    }
    return CNK_OK;
}

/* Runs every segment of a part through the model (inference) and averages each clip's segment
 * probabilities; refs of one item are consecutive (build_refs makes them so). */
int cnk_train_evaluate(train_run *r, int part, int **items_out, int **pred_out, double **proba_out, double *loss,
                       double *accuracy)
{
    const ref_list *list = &r->parts[part];
    size_t n_items = list->n_items, C = (size_t)r->n_classes;
    int *items = malloc((n_items + 1) * sizeof *items), *pred = malloc((n_items + 1) * sizeof *pred);
    double *proba = calloc(n_items * C + 1, sizeof *proba);
    int *seg_count = calloc(n_items + 1, sizeof *seg_count);
    const sample_ref **batch_refs = malloc((size_t)r->batch * sizeof *batch_refs);
    float *first_probs = malloc(((size_t)r->batch * C + 1) * sizeof *first_probs);
    int rc = (items && pred && proba && seg_count && batch_refs && first_probs)
                 ? CNK_OK
                 : cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    double loss_sum = 0;
    long clip = -1;
    for (size_t from = 0; from < list->n && !rc; from += (size_t)r->batch) {
        int bs = (int)((list->n - from) < (size_t)r->batch ? list->n - from : (size_t)r->batch);
        for (int k = 0; k < bs; k++) batch_refs[k] = &list->refs[from + (size_t)k];
        rc = fill_batch(r, batch_refs, bs, 0, NULL);
        if (!rc) rc = infer_batch(r, bs, first_probs, &loss_sum);
        if (rc) break;
        for (int k = 0; k < bs; k++) {
            if (clip < 0 || items[clip] != batch_refs[k]->item) items[++clip] = batch_refs[k]->item;
            seg_count[clip]++;
            for (size_t c = 0; c < C; c++) proba[(size_t)clip * C + c] += r->probs[(size_t)k * C + c];
        }
    }
    size_t correct = 0;
    for (size_t i = 0; !rc && i < n_items; i++) {
        int best = 0;
        for (size_t c = 0; c < C; c++) {
            proba[i * C + c] /= seg_count[i];
            if (proba[i * C + c] > proba[i * C + (size_t)best]) best = (int)c;
        }
        pred[i] = best;
        correct += best == r->ds.items[items[i]].label;
    }
    *loss = list->n ? loss_sum / (double)list->n : NAN;
    *accuracy = n_items ? (double)correct / (double)n_items : NAN;
    free(seg_count);
    free(batch_refs);
    free(first_probs);
    if (rc || !items_out) {
        free(items), free(pred), free(proba);
    } else {
        *items_out = items, *pred_out = pred, *proba_out = proba;
    }
    return rc;
}

/* ---- files ---- */

int cnk_train_save_model(train_run *r, const char *path, const float *params, const float *buffers)
{
    char *prep = NULL;
    size_t len = strlen(r->prep_text) + strlen(r->arch_name) + 64;
    prep = malloc(len);
    if (!prep) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    snprintf(prep, len, "%sarch_name=%s\n", r->prep_text, r->arch_name);
    cnk_modelfile mf = {.arch_text = r->arch_text,
                        .class_names = r->ds.classes,
                        .n_classes = r->n_classes,
                        .preprocess = prep,
                        .params = (float *)params,
                        .n_params = r->arch.n_params,
                        .buffers = (float *)buffers,
                        .n_buffers = r->arch.n_buffers};
    int rc = cnk_modelfile_write(r->ctx, path, &mf);
    free(prep);
    return rc;
}

/* Floats the weight average adds to the checkpoint's optimiser file (0 without one). */
static size_t ema_size(const train_run *r) { return r->ema_params ? r->arch.n_params + r->arch.n_buffers : 0; }

/* The checkpoint: the optimiser state as .npy ([steps, epochs done, state..., then with a weight average its
 * parameters and buffers]) first, then the model file whose text carries the run's state (and names the
 * epoch); each is atomic. Once the new checkpoint is in place the previous epoch's optimiser file is removed. */
static int save_checkpoint(train_run *r, int epochs_done)
{
    char ckpt[4200], optim_path[4300];
    cnk_train_checkpoint_path(r->opts->model_path, ckpt, sizeof ckpt);
    cnk_ckpt_optim_path(ckpt, epochs_done, optim_path, sizeof optim_path);
    size_t n_state = cnk_optim_state_size(r->opt), n_ema = ema_size(r);
    float *state = malloc((n_state + n_ema + 2) * sizeof *state);
    if (!state) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    state[0] = (float)cnk_optim_steps(r->opt);
    state[1] = (float)epochs_done;
    memcpy(state + 2, cnk_optim_state(r->opt), n_state * sizeof *state);
    if (n_ema) {
        memcpy(state + 2 + n_state, r->ema_params, r->arch.n_params * sizeof *state);
        memcpy(state + 2 + n_state + r->arch.n_params, r->ema_buffers, r->arch.n_buffers * sizeof *state);
    }
    size_t shape[1] = {n_state + n_ema + 2};
    int rc = cnk_npy_write(r->ctx, optim_path, state, 1, shape);
    free(state);
    if (rc) return rc;
    size_t cap = strlen(r->prep_text) + 1024 + cnk_ckpt_history_size(HIST_SERIES, epochs_done);
    char *text = malloc(cap);
    if (!text) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    size_t len = (size_t)snprintf(text, cap,
                                  "%sckpt_arch=%s\nckpt_epoch=%d\nckpt_epochs=%d\nckpt_batch=%d\nckpt_lr=%.17g\n"
                                  "ckpt_patience=%d\nckpt_wd=%.17g\nckpt_best_val=%.17g\nckpt_best_epoch=%d\n"
                                  "ckpt_bad=%d\nckpt_ls=%.17g\nckpt_ema=%.17g\nckpt_mixup=%.17g\n",
                                  r->prep_text, r->arch_name, epochs_done, r->epochs, r->batch, r->lr, r->patience,
                                  r->weight_decay, r->best_val, r->best_epoch, r->bad_epochs, r->label_smoothing,
                                  r->ema_decay, r->mixup);
    if (strcmp(r->optimizer, "adam") != 0) /* absent: Adam (the default; before the key, whatever was given) */
        len += (size_t)snprintf(text + len, cap - len, "ckpt_optimizer=%s\n", r->optimizer);
    if (r->erase > 0) /* absent: none (every run before the option, and runs without it) */
        len += (size_t)snprintf(text + len, cap - len, "ckpt_erase=%.17g\n", r->erase);
    if (r->train_source) /* absent: the input size (every run before the option, and runs without one) */
        len += (size_t)snprintf(text + len, cap - len, "ckpt_train_size=%dx%d\n", r->train_w, r->train_h);
    cnk_ckpt_append_history(text, len, cap, r->history, HIST_SERIES, epochs_done);
    char *saved = r->prep_text;
    r->prep_text = text;
    rc = cnk_train_save_model(r, ckpt, cnk_model_params(r->model), cnk_model_buffers(r->model));
    r->prep_text = saved;
    free(text);
    if (!rc) cnk_ckpt_remove_optim(ckpt, epochs_done - 1);
    return rc;
}

static int kv_double(train_run *r, const char *text, const char *key, double *out)
{
    return cnk_ckpt_number(r->ctx, text, r->opts->resume, key, out);
}

/* A checkpoint value in [0, 1) ([0, 1] with one_allowed) under key, 0 when the key is absent; what names it in
 * the error. */
static int optional_fraction(train_run *r, const char *t, const char *key, const char *what, int one_allowed,
                             double *out)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\n%s=", key);
    double v = 0;
    if (strstr(t, needle) && (kv_double(r, t, key, &v) || !(v >= 0 && (one_allowed ? v <= 1 : v < 1))))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: checkpoint %s out of range", r->opts->resume, what);
    *out = v;
    return CNK_OK;
}

/* The run's optimiser on --resume: the checkpoint's (Adam when it names none), so a resumed run continues with
 * the optimiser it started with; another one given with --resume is refused rather than switched to. Checkpoints
 * from before the key name none: the run takes --optimizer, or Adam. */
static int checkpoint_optimizer(train_run *r, const char *t)
{
    char name[64] = "adam";
    int has_key = strstr(t, "\nckpt_optimizer=") != NULL;
    if (has_key && cnk_kv_get(r->ctx, t, "ckpt_optimizer", name, sizeof name))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: bad ckpt_optimizer in the checkpoint", r->opts->resume);
    if (strcmp(name, "adam") && strcmp(name, "adamw") && strcmp(name, "sgd"))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: unknown optimiser '%s' in the checkpoint", r->opts->resume, name);
    const char *given = r->opts->optimizer;
    if (!has_key) {
        if (given) snprintf(name, sizeof name, "%s", given);
    } else if (given && strcmp(given, name) != 0) {
        return cnk_fail(r->ctx, CNK_ERR_ARG, "--optimizer %s: %s was trained with %s; resume it with that", given,
                        r->opts->resume, name);
    }
    snprintf(r->optimizer, sizeof r->optimizer, "%s", name);
    return CNK_OK;
}

int cnk_train_checkpoint_hyper(train_run *r, const cnk_modelfile *ckpt)
{
    const char *t = ckpt->preprocess;
    cnk_ckpt_schedule sched;
    int rc = cnk_ckpt_read_schedule(r->ctx, t, r->opts->resume, r->opts->epochs, &sched);
    if (rc) return rc;
    r->start_epoch = sched.start_epoch;
    r->epochs = sched.epochs; /* --epochs may extend a finished run */
    r->batch = sched.batch;
    r->lr = sched.lr;
    r->patience = sched.patience;
    r->weight_decay = sched.weight_decay;
    /* Keys absent from checkpoints written before their option existed: those runs trained without it (0). */
    rc = optional_fraction(r, t, "ckpt_ls", "label smoothing", 0, &r->label_smoothing);
    if (!rc) rc = optional_fraction(r, t, "ckpt_ema", "weight-average decay", 0, &r->ema_decay);
    if (!rc) rc = optional_fraction(r, t, "ckpt_mixup", "mixup", 1, &r->mixup);
    if (!rc) rc = optional_fraction(r, t, "ckpt_erase", "random-erasing probability", 1, &r->erase);
    if (rc) return rc;
    rc = checkpoint_optimizer(r, t);
    if (rc) return rc;
    char name[256];
    if (cnk_kv_get(r->ctx, t, "ckpt_arch", name, sizeof name) == CNK_OK)
        snprintf(r->arch_name, sizeof r->arch_name, "%s", name);
    return CNK_OK;
}

int cnk_train_load_checkpoint(train_run *r, const cnk_modelfile *ckpt)
{
    cnk_ctx *ctx = r->ctx;
    if (ckpt->n_params != r->arch.n_params || ckpt->n_buffers != r->arch.n_buffers)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: weights do not match its architecture", r->opts->resume);
    memcpy(cnk_model_params(r->model), ckpt->params, ckpt->n_params * sizeof(float));
    memcpy(cnk_model_buffers(r->model), ckpt->buffers, ckpt->n_buffers * sizeof(float));
    double best_val, best_epoch, bad;
    int rc = kv_double(r, ckpt->preprocess, "ckpt_best_val", &best_val);
    if (!rc) rc = kv_double(r, ckpt->preprocess, "ckpt_best_epoch", &best_epoch);
    if (!rc) rc = kv_double(r, ckpt->preprocess, "ckpt_bad", &bad);
    if (!rc)
        rc = cnk_ckpt_read_history(ctx, ckpt->preprocess, r->opts->resume, r->history, HIST_SERIES, r->start_epoch);
    if (rc) return rc;
    r->n_history = r->start_epoch;
    r->best_val = best_val;
    r->best_epoch = (int)best_epoch;
    r->bad_epochs = (int)bad;
    char optim_path[4300];
    cnk_ckpt_optim_path(r->opts->resume, r->start_epoch, optim_path, sizeof optim_path);
    cnk_array state = {0};
    rc = cnk_npy_read(ctx, optim_path, &state);
    if (rc) return rc;
    size_t n_state = cnk_optim_state_size(r->opt), n_ema = ema_size(r);
    if (state.ndim != 1 || state.shape[0] != n_state + n_ema + 2 || (int)state.data[1] != r->start_epoch) {
        cnk_array_release(&state);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: optimiser state does not match the checkpoint", optim_path);
    }
    if (n_ema) {
        memcpy(r->ema_params, state.data + 2 + n_state, r->arch.n_params * sizeof(float));
        memcpy(r->ema_buffers, state.data + 2 + n_state + r->arch.n_params, r->arch.n_buffers * sizeof(float));
    }
    rc = cnk_optim_set_state(ctx, r->opt, state.data + 2, n_state, (long)state.data[0]);
    cnk_array_release(&state);
    if (rc) return rc;
    /* The best weights so far are in the model file written when they were found (the checkpoint's own epoch:
     * its weights, or their average). */
    memcpy(r->best_params, n_ema ? r->ema_params : cnk_model_params(r->model), r->arch.n_params * sizeof(float));
    memcpy(r->best_buffers, n_ema ? r->ema_buffers : cnk_model_buffers(r->model), r->arch.n_buffers * sizeof(float));
    if (r->best_epoch > 0 && r->best_epoch != r->start_epoch) {
        cnk_modelfile best;
        rc = cnk_modelfile_read(ctx, r->opts->model_path, &best);
        if (!rc && (best.n_params != r->arch.n_params || best.n_buffers != r->arch.n_buffers))
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: does not match the checkpoint", r->opts->model_path);
        if (!rc) {
            memcpy(r->best_params, best.params, best.n_params * sizeof(float));
            memcpy(r->best_buffers, best.buffers, best.n_buffers * sizeof(float));
        }
        cnk_modelfile_release(&best);
    }
    return rc;
}

/* ---- the loop ---- */

/* Validation, best-model bookkeeping and the checkpoint after an epoch. */
static int end_epoch(train_run *r, int epoch, cnk_epoch_stats *st)
{
    int has_val = r->parts[CNK_PART_VAL].n > 0;
    st->val_loss = st->val_acc = NAN;
    if (r->ema_params) ema_swap_in(r);
    int rc = has_val ? cnk_train_evaluate(r, CNK_PART_VAL, NULL, NULL, NULL, &st->val_loss, &st->val_acc) : CNK_OK;
    if (rc) {
        if (r->ema_params) ema_swap_out(r);
        return rc;
    }
    double *h[HIST_SERIES] = {r->history[0], r->history[1], r->history[2], r->history[3]};
    h[HIST_TRAIN_LOSS][epoch] = st->train_loss, h[HIST_TRAIN_ACC][epoch] = st->train_acc;
    h[HIST_VAL_LOSS][epoch] = st->val_loss, h[HIST_VAL_ACC][epoch] = st->val_acc;
    r->n_history = epoch + 1;
    /* Without a validation split the last epoch is the best one. */
    double score = has_val ? st->val_loss : -(double)epoch;
    st->improved = score < r->best_val - (has_val ? 1e-4 : 0);
    if (st->improved) {
        r->best_val = score;
        r->best_epoch = epoch + 1;
        r->bad_epochs = 0;
        memcpy(r->best_params, cnk_model_params(r->model), r->arch.n_params * sizeof(float));
        memcpy(r->best_buffers, cnk_model_buffers(r->model), r->arch.n_buffers * sizeof(float));
        if (cnk_dist_is_root(r->opts->dist))
            rc = cnk_train_save_model(r, r->opts->model_path, r->best_params, r->best_buffers);
    } else {
        r->bad_epochs++;
    }
    if (r->ema_params) ema_swap_out(r);
    if (!rc && cnk_dist_is_root(r->opts->dist)) rc = save_checkpoint(r, epoch + 1);
    return rc;
}

int cnk_train_loop(train_run *r)
{
    cnk_lr_schedule sched = {.kind = CNK_LR_COSINE, .base_lr = (float)r->lr, .total = r->epochs,
                             .min_lr = (float)(r->lr * 0.02)};
    int run_epochs = 0, rc = CNK_OK;
    for (int epoch = r->start_epoch; epoch < r->epochs && !rc; epoch++) {
        if (r->opts->max_epochs_this_run > 0 && run_epochs >= r->opts->max_epochs_this_run) {
            r->result->interrupted = 1;
            break;
        }
        if (r->patience > 0 && r->bad_epochs >= r->patience) {
            r->result->stopped_early = 1;
            break;
        }
        double t0 = now_seconds();
        cnk_epoch_stats st = {.epoch = epoch + 1, .epochs = r->epochs, .lr = cnk_lr_at(&sched, epoch)};
        rc = train_epoch(r, epoch, (float)st.lr, &st.train_loss, &st.train_acc);
        if (!rc) rc = end_epoch(r, epoch, &st);
        st.seconds = now_seconds() - t0;
        run_epochs++;
        if (!rc && r->opts->on_epoch) r->opts->on_epoch(r->opts->user, &st);
    }
    return rc;
}
