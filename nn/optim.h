/* optim.h: optimisers (SGD with momentum, Adam, AdamW) that update a flat parameter array from its
 * gradient array, and learning-rate schedules (constant, step, cosine). */
#ifndef CNK_OPTIM_H
#define CNK_OPTIM_H

#include <stddef.h>

#include "core/context.h"

typedef enum cnk_optim_kind {
    CNK_OPTIM_SGD = 0, /* v = momentum*v + (g + wd*p); p -= lr*v (PyTorch SGD, L2 weight decay) */
    CNK_OPTIM_ADAM,    /* PyTorch Adam; weight_decay adds wd*p to the gradient (L2) */
    CNK_OPTIM_ADAMW    /* PyTorch AdamW: decoupled decay p -= lr*wd*p, then the Adam step */
} cnk_optim_kind;

typedef struct cnk_optim_config {
    cnk_optim_kind kind;
    float lr;           /* base learning rate (the schedule scales it) */
    float beta1, beta2; /* Adam; defaults 0.9, 0.999 */
    float eps;          /* Adam; default 1e-8 */
    float weight_decay; /* default 0 */
    float momentum;     /* SGD; default 0.9 */
} cnk_optim_config;

/* A contiguous run of the flat arrays to update (a trainable layer's tensors). */
typedef struct cnk_param_range {
    size_t offset, count;
} cnk_param_range;

typedef struct cnk_optim cnk_optim;

/* Defaults: Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay, momentum 0.9. */
void cnk_optim_config_init(cnk_optim_config *cfg, cnk_optim_kind kind);

/* An optimiser for n_params parameters (its state, zeroed, is 1 or 2 floats per parameter). */
int cnk_optim_create(cnk_ctx *ctx, const cnk_optim_config *cfg, size_t n_params, cnk_optim **out);
void cnk_optim_free(cnk_optim *opt);

/* One update of params from grads at learning rate lr (pass the schedule's value). ranges (n_ranges of
 * them) say which parameters to update; ranges = NULL updates all. Other parameters and their state are
 * untouched. */
void cnk_optim_step(cnk_optim *opt, float *params, const float *grads, const cnk_param_range *ranges,
                    int n_ranges, float lr, int threads);

/* Steps taken so far (Adam's bias correction uses it). */
long cnk_optim_steps(const cnk_optim *opt);
/* The state for checkpoints: n_state floats (2*n_params for Adam, n_params for SGD) and the step count.
 * set copies state in; it fails if n_state does not match. */
size_t cnk_optim_state_size(const cnk_optim *opt);
const float *cnk_optim_state(const cnk_optim *opt);
int cnk_optim_set_state(cnk_ctx *ctx, cnk_optim *opt, const float *state, size_t n_state, long steps);

typedef enum cnk_lr_kind {
    CNK_LR_CONSTANT = 0,
    CNK_LR_STEP,  /* lr * gamma^(floor(epoch / step_size)) */
    CNK_LR_COSINE /* min_lr + (lr - min_lr) * (1 + cos(pi * epoch / total)) / 2, epoch clamped to total */
} cnk_lr_kind;

typedef struct cnk_lr_schedule {
    cnk_lr_kind kind;
    float base_lr;
    int step_size; /* step: epochs per decay */
    float gamma;   /* step: decay factor */
    int total;     /* cosine: epochs (or steps) to reach min_lr */
    float min_lr;  /* cosine */
    int warmup;    /* linear warm-up over the first warmup epochs/steps (0 = none), for every kind */
} cnk_lr_schedule;

/* The learning rate at epoch (or step; the unit is the caller's) t >= 0. */
float cnk_lr_at(const cnk_lr_schedule *schedule, int t);

#endif
