/* fusion_ckpt.c: the resumable checkpoint of a late-fusion training run, written after every epoch as the plain
 * training loop's is (pipeline/train_loop.c): "<model>.ckpt", a model file of the current weights whose text
 * also carries the run's state, and "<model>.ckpt.optim-<epoch>.npy" with the optimisers' states and the kept
 * model. Every epoch seeds its own shuffling and augmentation, so a resumed run continues exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "nn/cfg.h"
#include "pipeline/ckpt_text.h"
#include "pipeline/fusion_internal.h"
#include "pipeline/train.h"

/* The optimiser file: [network steps, epochs done, weight steps, the network optimiser's state, the fusion
 * weight's, the kept parameters, the kept buffers]. */
enum { STATE_HEADER = 3 };

static size_t state_floats(const fusion_run *r)
{
    return STATE_HEADER + cnk_optim_state_size(r->opt) + cnk_optim_state_size(r->weight_opt) + r->arch.n_params +
           r->arch.n_buffers;
}

static int write_state(fusion_run *r, const char *path, int epochs_done)
{
    size_t n = state_floats(r), n_opt = cnk_optim_state_size(r->opt), n_w = cnk_optim_state_size(r->weight_opt);
    float *s = malloc(n * sizeof *s);
    if (!s) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    s[0] = (float)cnk_optim_steps(r->opt);
    s[1] = (float)epochs_done;
    s[2] = (float)cnk_optim_steps(r->weight_opt);
    float *p = s + STATE_HEADER;
    memcpy(p, cnk_optim_state(r->opt), n_opt * sizeof *s);
    memcpy(p + n_opt, cnk_optim_state(r->weight_opt), n_w * sizeof *s);
    memcpy(p + n_opt + n_w, r->best_params, r->arch.n_params * sizeof *s);
    memcpy(p + n_opt + n_w + r->arch.n_params, r->best_buffers, r->arch.n_buffers * sizeof *s);
    size_t shape[1] = {n};
    int rc = cnk_npy_write(r->ctx, path, s, 1, shape);
    free(s);
    return rc;
}

/* The model text plus the run's state (the history as comma-separated series). */
static int checkpoint_text(fusion_run *r, int epochs_done, char **out)
{
    char *model_text = NULL;
    int rc = cnk_fusion_model_text(r, r->best_weight, &model_text);
    if (rc) return rc;
    size_t cap = strlen(model_text) + 1024 + cnk_ckpt_history_size(FUSION_HIST_SERIES, epochs_done);
    char *text = malloc(cap);
    if (!text) {
        free(model_text);
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    }
    size_t len = (size_t)snprintf(text, cap,
                                  "%sckpt_kind=fusion\nckpt_epoch=%d\nckpt_epochs=%d\nckpt_batch=%d\nckpt_lr=%.17g\n"
                                  "ckpt_patience=%d\nckpt_wd=%.17g\nckpt_best_val=%.17g\nckpt_best_epoch=%d\n"
                                  "ckpt_bad=%d\nckpt_weight=%.9g\n",
                                  model_text, epochs_done, r->epochs, r->batch, r->lr, r->patience, r->weight_decay,
                                  r->best_score, r->res->train.best_epoch, r->bad_epochs, (double)r->weight);
    free(model_text);
    cnk_ckpt_append_history(text, len, cap, r->hist, FUSION_HIST_SERIES, epochs_done);
    *out = text;
    return CNK_OK;
}

int cnk_fusion_checkpoint_save(fusion_run *r, int epochs_done)
{
    char ckpt[4200], path[4300];
    cnk_train_checkpoint_path(r->t->model_path, ckpt, sizeof ckpt);
    cnk_ckpt_optim_path(ckpt, epochs_done, path, sizeof path);
    int rc = write_state(r, path, epochs_done);
    char *arch_text = NULL, *text = NULL;
    if (!rc) rc = cnk_cfg_write(r->ctx, &r->arch, &arch_text);
    if (!rc) rc = checkpoint_text(r, epochs_done, &text);
    if (!rc) {
        cnk_modelfile mf = {.arch_text = arch_text,
                            .class_names = r->ds.classes,
                            .n_classes = r->n_classes,
                            .preprocess = text,
                            .params = cnk_model_params(r->model),
                            .n_params = r->arch.n_params,
                            .buffers = cnk_model_buffers(r->model),
                            .n_buffers = r->arch.n_buffers};
        rc = cnk_modelfile_write(r->ctx, ckpt, &mf);
    }
    free(arch_text);
    free(text);
    if (!rc) cnk_ckpt_remove_optim(ckpt, epochs_done - 1);
    return rc;
}

static int number(fusion_run *r, const char *text, const char *key, double *out)
{
    return cnk_ckpt_number(r->ctx, text, r->t->resume, key, out);
}

int cnk_fusion_checkpoint_hyper(fusion_run *r, const cnk_modelfile *ck)
{
    const char *src = r->t->resume, *text = ck->preprocess; /* its kind was checked when it was read */
    int is_fusion;
    cnk_fusion_mode mode;
    float weight;
    int rc = cnk_fusion_from_text(r->ctx, text, src, &is_fusion, &mode, &weight);
    if (rc) return rc;
    if (mode != r->mode)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: the run was --fusion %s, not %s", src, cnk_fusion_mode_name(mode),
                        cnk_fusion_mode_name(r->mode));
    cnk_ckpt_schedule sched;
    rc = cnk_ckpt_read_schedule(r->ctx, text, src, r->t->epochs, &sched);
    if (rc) return rc;
    r->start_epoch = sched.start_epoch;
    r->epochs = sched.epochs;
    r->batch = sched.batch;
    r->lr = sched.lr;
    r->patience = sched.patience;
    r->weight_decay = sched.weight_decay;
    return CNK_OK;
}

/* The optimisers and the kept model from the optimiser file of the checkpoint's epoch. */
static int load_state(fusion_run *r)
{
    char path[4300];
    cnk_ckpt_optim_path(r->t->resume, r->start_epoch, path, sizeof path);
    cnk_array a;
    int rc = cnk_npy_read(r->ctx, path, &a);
    if (rc) return rc;
    size_t n_opt = cnk_optim_state_size(r->opt), n_w = cnk_optim_state_size(r->weight_opt);
    if (a.ndim != 1 || cnk_array_count(&a) != state_floats(r) || a.data[1] != (float)r->start_epoch)
        rc = cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: does not belong to this checkpoint", path);
    const float *p = a.data + STATE_HEADER;
    if (!rc) rc = cnk_optim_set_state(r->ctx, r->opt, p, n_opt, (long)a.data[0]);
    if (!rc) rc = cnk_optim_set_state(r->ctx, r->weight_opt, p + n_opt, n_w, (long)a.data[2]);
    if (!rc) {
        memcpy(r->best_params, p + n_opt + n_w, r->arch.n_params * sizeof(float));
        memcpy(r->best_buffers, p + n_opt + n_w + r->arch.n_params, r->arch.n_buffers * sizeof(float));
    }
    cnk_array_release(&a);
    return rc;
}

int cnk_fusion_checkpoint_load(fusion_run *r, const cnk_modelfile *ck)
{
    const char *src = r->t->resume, *text = ck->preprocess;
    if (ck->n_params != r->arch.n_params || ck->n_buffers != r->arch.n_buffers)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: weights do not match the fusion network for this data", src);
    memcpy(cnk_model_params(r->model), ck->params, ck->n_params * sizeof(float));
    memcpy(cnk_model_buffers(r->model), ck->buffers, ck->n_buffers * sizeof(float));
    double best_val, best_epoch, bad, weight;
    int rc = number(r, text, "ckpt_best_val", &best_val);
    if (!rc) rc = number(r, text, "ckpt_best_epoch", &best_epoch);
    if (!rc) rc = number(r, text, "ckpt_bad", &bad);
    if (!rc) rc = number(r, text, "ckpt_weight", &weight);
    int is_fusion;
    cnk_fusion_mode mode;
    if (!rc) rc = cnk_fusion_from_text(r->ctx, text, src, &is_fusion, &mode, &r->best_weight);
    if (rc) return rc;
    if (!(best_epoch >= 0 && best_epoch <= r->start_epoch && bad >= 0 && bad <= r->start_epoch && isfinite(weight)))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: checkpoint values out of range", src);
    r->best_score = best_val;
    r->bad_epochs = (int)bad;
    r->weight = (float)weight;
    r->res->train.best_epoch = (int)best_epoch;
    r->res->train.best_val_loss = best_val;
    rc = cnk_ckpt_read_history(r->ctx, text, src, r->hist, FUSION_HIST_SERIES, r->start_epoch);
    r->n_hist = r->start_epoch;
    return rc ? rc : load_state(r);
}
