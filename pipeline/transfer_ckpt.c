/* transfer_ckpt.c: the resumable checkpoint of a transfer-learning run, written after every epoch of either
 * phase as the other training loops' are (pipeline/train_loop.c, pipeline/fusion_ckpt.c): "<model>.ckpt", a
 * model file of the current weights (phase one: the head on backbone outputs; phase two: the whole network)
 * whose text also carries the run's state (pipeline/ckpt_text.h), and "<model>.ckpt.optim-<epoch>.npy" with the
 * optimiser's state and the kept weights. The optimiser files are numbered by the epochs of both phases, so
 * phase two's first file never overwrites phase one's last. Every epoch seeds its own shuffling and dropout,
 * so a resumed run continues exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "nn/cfg.h"
#include "pipeline/ckpt_text.h"
#include "pipeline/train.h"
#include "pipeline/transfer_internal.h"

/* The optimiser file: [optimiser steps, epochs done (both phases), phase, the optimiser's state, the kept
 * weights: phase one the head's parameters; phase two the network's parameters, then its buffers]. */
enum { STATE_HEADER = 3 };

typedef struct kept_weights {
    float *params, *buffers;
    size_t n_params, n_buffers;
} kept_weights;

static int write_state(xfer_run *r, const char *path, const cnk_optim *opt, int phase, int epochs_done,
                       const kept_weights *kept)
{
    size_t n_opt = cnk_optim_state_size(opt), n = STATE_HEADER + n_opt + kept->n_params + kept->n_buffers;
    float *s = malloc(n * sizeof *s);
    if (!s) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    s[0] = (float)cnk_optim_steps(opt);
    s[1] = (float)epochs_done;
    s[2] = (float)phase;
    float *p = s + STATE_HEADER;
    memcpy(p, cnk_optim_state(opt), n_opt * sizeof *s);
    memcpy(p + n_opt, kept->params, kept->n_params * sizeof *s);
    if (kept->n_buffers) memcpy(p + n_opt + kept->n_params, kept->buffers, kept->n_buffers * sizeof *s);
    size_t shape[1] = {n};
    int rc = cnk_npy_write(r->ctx, path, s, 1, shape);
    free(s);
    return rc;
}

/* The model text plus the run's state: the running phase's schedule and early-stopping state (the keys the
 * other loops' checkpoints have), phase one's numbers, phase two's plan and the history of both phases. */
static int checkpoint_text(xfer_run *r, int phase, int epochs_done, char **out)
{
    char *model_text = NULL;
    int rc = cnk_transfer_model_text(r, &model_text);
    if (rc) return rc;
    size_t cap = strlen(model_text) + 2048 + cnk_ckpt_history_size(XFER_HIST_SERIES, epochs_done);
    char *text = malloc(cap);
    if (!text) {
        free(model_text);
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    }
    const cnk_train_result *head = &r->res->train;
    int phase_epochs = phase == 1 ? r->epochs : r->finetune_epochs;
    int phase_done = phase == 1 ? head->epochs_run : r->res->finetune_epochs_run;
    double phase_lr = phase == 1 ? r->lr : r->finetune_lr;
    size_t len = (size_t)snprintf(
        text, cap,
        "%sckpt_kind=transfer\nckpt_backbone=%s\nckpt_phase=%d\nckpt_done=%d\nckpt_epoch=%d\nckpt_epochs=%d\n"
        "ckpt_batch=%d\nckpt_lr=%.17g\nckpt_patience=%d\nckpt_wd=%.17g\nckpt_best_val=%.17g\nckpt_best_epoch=%d\n"
        "ckpt_bad=%d\nckpt_head_epochs=%d\nckpt_head_best_epoch=%d\nckpt_head_best_val=%.17g\n"
        "ckpt_head_stopped=%d\nckpt_head_test_acc=%.17g\nckpt_ft_epochs=%d\nckpt_ft_lr=%.17g\nckpt_ft_from=%d\n",
        model_text, r->backbone_hex, phase, epochs_done, phase_done, phase_epochs, r->batch, phase_lr, r->patience,
        r->weight_decay, r->best_score, r->best_epoch, r->bad_epochs, head->epochs_run, head->best_epoch,
        head->best_val_loss, head->stopped_early, r->res->head_test_accuracy, r->finetune_epochs, r->finetune_lr,
        r->trainable_from);
    free(model_text);
    cnk_ckpt_append_history(text, len, cap, r->hist, XFER_HIST_SERIES, epochs_done);
    *out = text;
    return CNK_OK;
}

/* Writes the optimiser file, then the checkpoint of the network arch with params/buffers; then drops the
 * previous epoch's optimiser file. */
static int save(xfer_run *r, int phase, int epochs_done, const cnk_arch *arch, const float *params,
                const float *buffers, const cnk_optim *opt, const kept_weights *kept)
{
    char ckpt[4200], path[4300];
    cnk_train_checkpoint_path(r->t->model_path, ckpt, sizeof ckpt);
    cnk_ckpt_optim_path(ckpt, epochs_done, path, sizeof path);
    int rc = write_state(r, path, opt, phase, epochs_done, kept);
    char *arch_text = NULL, *text = NULL;
    if (!rc) rc = cnk_cfg_write(r->ctx, arch, &arch_text);
    if (!rc) rc = checkpoint_text(r, phase, epochs_done, &text);
    if (!rc) {
        cnk_modelfile mf = {.arch_text = arch_text,
                            .class_names = r->ds.classes,
                            .n_classes = r->n_classes,
                            .preprocess = text,
                            .params = (float *)params,
                            .n_params = arch->n_params,
                            .buffers = (float *)buffers,
                            .n_buffers = arch->n_buffers};
        rc = cnk_modelfile_write(r->ctx, ckpt, &mf);
    }
    free(arch_text);
    free(text);
    if (!rc) cnk_ckpt_remove_optim(ckpt, epochs_done - 1);
    return rc;
}

int cnk_transfer_ckpt_save_head(xfer_run *r, head_trainer *h, int epochs_done)
{
    const cnk_arch *arch = cnk_model_arch(h->model);
    kept_weights kept = {r->head_params, NULL, arch->n_params, 0};
    return save(r, 1, epochs_done, arch, cnk_model_params(h->model), cnk_model_buffers(h->model), h->opt, &kept);
}

int cnk_transfer_ckpt_save_tuner(xfer_run *r, tuner *t, int epochs_done)
{
    kept_weights kept = {t->best_params, t->best_buffers, r->full.n_params, r->full.n_buffers};
    return save(r, 2, epochs_done, &r->full, cnk_model_params(t->model), cnk_model_buffers(t->model), t->opt,
                &kept);
}

/* ---- resuming ---- */

static int number(xfer_run *r, const char *key, double *out)
{
    return cnk_ckpt_number(r->ctx, r->ck.preprocess, r->t->resume, key, out);
}

/* A malloc'd copy of text without its "key=..." line (NULL when out of memory). */
static char *without_line(const char *text, const char *key)
{
    char *copy = strdup(text);
    size_t key_len = strlen(key);
    for (char *line = copy; copy && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, key, key_len) == 0 && line[key_len] == '=') {
            memmove(line, nl ? nl + 1 : line + strlen(line), strlen(nl ? nl + 1 : "") + 1);
            break;
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    return copy;
}

/* The checkpoint's model text begins with this run's, but for the backbone's file name (the backbone itself
 * is compared by content: it may have been moved). */
static int same_input_settings(xfer_run *r, const char *text, int *same)
{
    char *model_text = NULL;
    int rc = cnk_transfer_model_text(r, &model_text);
    if (rc) return rc;
    char *mine = without_line(model_text, "transfer_backbone"), *theirs = without_line(text, "transfer_backbone");
    if (mine && theirs) *same = strncmp(theirs, mine, strlen(mine)) == 0;
    else rc = cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    free(model_text);
    free(mine);
    free(theirs);
    return rc;
}

/* The checkpoint belongs to this run: the same backbone, classes and input settings. */
static int check_identity(xfer_run *r)
{
    cnk_ctx *ctx = r->ctx;
    const char *src = r->t->resume, *text = r->ck.preprocess ? r->ck.preprocess : "";
    char hex[64] = "";
    cnk_ctx quiet = *ctx;
    if (cnk_kv_get(&quiet, text, "ckpt_backbone", hex, sizeof hex) != CNK_OK || strcmp(hex, r->backbone_hex) != 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: made with another backbone than %s", src, r->t->from);
    if (r->ck.n_classes != r->n_classes)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: made for %d classes, the data has %d", src, r->ck.n_classes,
                        r->n_classes);
    for (int c = 0; c < r->n_classes; c++)
        if (strcmp(r->ck.class_names[c], r->ds.classes[c]) != 0)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: made for class '%s' where the data has '%s'", src,
                            r->ck.class_names[c], r->ds.classes[c]);
    int same = 0, rc = same_input_settings(r, text, &same);
    if (!rc && !same) rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: made with other input settings than this run's", src);
    return rc;
}

/* Phase two's plan; resuming phase one, an explicit --finetune-epochs may change how many epochs it gets. */
static int read_plan(xfer_run *r)
{
    double ft_epochs, ft_lr, ft_from;
    int rc = number(r, "ckpt_ft_epochs", &ft_epochs);
    if (!rc) rc = number(r, "ckpt_ft_lr", &ft_lr);
    if (!rc) rc = number(r, "ckpt_ft_from", &ft_from);
    if (rc) return rc;
    if (!(ft_epochs >= 0 && ft_epochs <= 1e6 && ft_lr > 0 && ft_from >= 1 && ft_from <= r->arch.n_layers))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: checkpoint values out of range", r->t->resume);
    r->finetune_epochs = r->o->finetune_epochs >= 0 ? r->o->finetune_epochs : (int)ft_epochs;
    r->finetune_lr = ft_lr;
    r->trainable_from = (int)ft_from;
    return CNK_OK;
}

/* Phase one's numbers, as its end left them, for the result and the report (in a phase-two checkpoint). */
static int load_head_result(xfer_run *r)
{
    double epochs, best_epoch, best_val, stopped, test_acc;
    int rc = number(r, "ckpt_head_epochs", &epochs);
    if (!rc) rc = number(r, "ckpt_head_best_epoch", &best_epoch);
    if (!rc) rc = number(r, "ckpt_head_best_val", &best_val);
    if (!rc) rc = number(r, "ckpt_head_stopped", &stopped);
    if (!rc) rc = number(r, "ckpt_head_test_acc", &test_acc);
    if (rc) return rc;
    if (!(epochs >= 1 && epochs <= 1e6 && best_epoch >= 0 && best_epoch <= epochs && (stopped == 0 || stopped == 1)))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: checkpoint values out of range", r->t->resume);
    cnk_train_result *head = &r->res->train;
    head->epochs_run = (int)epochs;
    head->best_epoch = (int)best_epoch;
    head->best_val_loss = best_val;
    head->stopped_early = (int)stopped;
    r->res->head_test_accuracy = test_acc;
    return CNK_OK;
}

/* The epochs of both phases (the history's length, the optimiser file's number) must be what the phase's
 * epochs say; then the optimiser file of that epoch is read (its size is checked once the optimiser exists). */
static int open_state(xfer_run *r)
{
    double done;
    int rc = number(r, "ckpt_done", &done);
    if (!rc && r->resume_phase == 2) rc = load_head_result(r);
    if (rc) return rc;
    int head_epochs = r->resume_phase == 1 ? 0 : r->res->train.epochs_run;
    if (done != head_epochs + r->start_epoch)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: checkpoint values out of range", r->t->resume);
    r->resume_done = (int)done;
    char path[4300];
    cnk_ckpt_optim_path(r->t->resume, r->resume_done, path, sizeof path);
    rc = cnk_npy_read(r->ctx, path, &r->ck_state);
    if (rc) return rc;
    const cnk_array *a = &r->ck_state;
    if (a->ndim != 1 || a->shape[0] < STATE_HEADER || a->data[1] != (float)r->resume_done ||
        a->data[2] != (float)r->resume_phase || !(a->data[0] >= 0 && a->data[0] < 1e15))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: optimiser state does not match the checkpoint", path);
    return CNK_OK;
}

int cnk_transfer_ckpt_open(xfer_run *r)
{
    const char *src = r->t->resume;
    int rc = cnk_modelfile_read(r->ctx, src, &r->ck);
    if (!rc) rc = cnk_ckpt_check_kind(r->ctx, r->ck.preprocess, src, "transfer");
    if (!rc) rc = check_identity(r);
    double phase = 0;
    if (!rc) rc = number(r, "ckpt_phase", &phase);
    if (!rc && phase != 1 && phase != 2)
        rc = cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: checkpoint values out of range", src);
    if (!rc) rc = read_plan(r);
    if (rc) return rc;
    r->resume_phase = (int)phase;
    /* --epochs may extend phase one, --finetune-epochs phase two, as --epochs extends the other loops' runs */
    int epochs_option = r->resume_phase == 1 ? r->t->epochs : r->o->finetune_epochs;
    cnk_ckpt_schedule sched;
    rc = cnk_ckpt_read_schedule_of(r->ctx, r->ck.preprocess, src, "transfer", epochs_option, &sched);
    if (rc) return rc;
    r->start_epoch = sched.start_epoch;
    r->batch = sched.batch;
    r->patience = sched.patience;
    r->weight_decay = sched.weight_decay;
    if (r->resume_phase == 1) {
        r->epochs = sched.epochs;
        r->lr = sched.lr;
    } else {
        r->finetune_epochs = sched.epochs;
        r->finetune_lr = sched.lr;
    }
    return open_state(r);
}

/* The optimiser state and the kept weights from the optimiser file. */
static int load_state(xfer_run *r, cnk_optim *opt, kept_weights *kept)
{
    const cnk_array *a = &r->ck_state;
    size_t n_opt = cnk_optim_state_size(opt);
    if (a->shape[0] != STATE_HEADER + n_opt + kept->n_params + kept->n_buffers) {
        char path[4300];
        cnk_ckpt_optim_path(r->t->resume, r->resume_done, path, sizeof path);
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: optimiser state does not match the checkpoint", path);
    }
    const float *p = a->data + STATE_HEADER;
    int rc = cnk_optim_set_state(r->ctx, opt, p, n_opt, (long)a->data[0]);
    if (rc) return rc;
    memcpy(kept->params, p + n_opt, kept->n_params * sizeof(float));
    if (kept->n_buffers) memcpy(kept->buffers, p + n_opt + kept->n_params, kept->n_buffers * sizeof(float));
    /* everything is in the run now: the checkpoint's copies (a whole network's weights and optimiser state in
     * phase two) need not stay in memory */
    cnk_array_release(&r->ck_state);
    cnk_modelfile_release(&r->ck);
    return CNK_OK;
}

/* The running phase's early-stopping state and the history of both phases. */
static int load_progress(xfer_run *r)
{
    double best_val, best_epoch, bad;
    int rc = number(r, "ckpt_best_val", &best_val);
    if (!rc) rc = number(r, "ckpt_best_epoch", &best_epoch);
    if (!rc) rc = number(r, "ckpt_bad", &bad);
    if (rc) return rc;
    if (!(best_epoch >= 0 && best_epoch <= r->start_epoch && bad >= 0 && bad <= r->start_epoch && !isnan(best_val)))
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: checkpoint values out of range", r->t->resume);
    r->best_score = best_val;
    r->best_epoch = (int)best_epoch;
    r->bad_epochs = (int)bad;
    r->n_hist = 0;
    for (int e = 0; e < r->resume_done && !rc; e++) rc = cnk_transfer_push_history(r, 0, 0, 0, 0); /* room */
    if (!rc)
        rc = cnk_ckpt_read_history(r->ctx, r->ck.preprocess, r->t->resume, r->hist, XFER_HIST_SERIES, r->resume_done);
    return rc;
}

static int load_weights(xfer_run *r, cnk_model *model, const char *what)
{
    const cnk_arch *arch = cnk_model_arch(model);
    if (r->ck.n_params != arch->n_params || r->ck.n_buffers != arch->n_buffers)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: weights do not match %s", r->t->resume, what);
    memcpy(cnk_model_params(model), r->ck.params, r->ck.n_params * sizeof(float));
    if (r->ck.n_buffers) memcpy(cnk_model_buffers(model), r->ck.buffers, r->ck.n_buffers * sizeof(float));
    return CNK_OK;
}

int cnk_transfer_ckpt_load_head(xfer_run *r, head_trainer *h)
{
    int rc = load_weights(r, h->model, "the head for this backbone and data");
    if (!rc) rc = load_progress(r);
    if (rc) return rc;
    cnk_train_result *head = &r->res->train;
    head->epochs_run = r->start_epoch;
    head->best_epoch = r->best_epoch;
    if (r->best_epoch > 0) head->best_val_loss = r->best_score;
    kept_weights kept = {r->head_params, NULL, cnk_model_arch(h->model)->n_params, 0};
    return load_state(r, h->opt, &kept);
}

int cnk_transfer_ckpt_load_tuner(xfer_run *r, tuner *t)
{
    int rc = load_weights(r, t->model, "the network for this backbone and data");
    if (!rc) rc = load_progress(r);
    if (rc) return rc;
    r->res->finetune_epochs_run = r->start_epoch;
    kept_weights kept = {t->best_params, t->best_buffers, r->full.n_params, r->full.n_buffers};
    return load_state(r, t->opt, &kept);
}
