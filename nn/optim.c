#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cnk_optim {
    cnk_optim_config cfg;
    size_t n_params;
    long steps;
    float *state; /* Adam: m then v (2 * n_params); SGD: momentum buffer (n_params) */
};

void cnk_optim_config_init(cnk_optim_config *cfg, cnk_optim_kind kind)
{
    cfg->kind = kind;
    cfg->lr = kind == CNK_OPTIM_SGD ? 0.01f : 1e-3f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    cfg->weight_decay = 0.0f;
    cfg->momentum = 0.9f;
}

static size_t state_floats(const cnk_optim_config *cfg, size_t n_params)
{
    return cfg->kind == CNK_OPTIM_SGD ? n_params : 2 * n_params;
}

int cnk_optim_create(cnk_ctx *ctx, const cnk_optim_config *cfg, size_t n_params, cnk_optim **out)
{
    *out = NULL;
    if (cfg->kind != CNK_OPTIM_SGD && cfg->kind != CNK_OPTIM_ADAM && cfg->kind != CNK_OPTIM_ADAMW)
        return cnk_fail(ctx, CNK_ERR_ARG, "optimiser: unknown kind %d", (int)cfg->kind);
    if (!(cfg->lr >= 0.0f) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) || !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) ||
        !(cfg->eps > 0.0f) || !(cfg->weight_decay >= 0.0f) || !(cfg->momentum >= 0.0f && cfg->momentum < 1.0f))
        return cnk_fail(ctx, CNK_ERR_ARG, "optimiser: a hyper-parameter is out of range (lr %g, betas %g/%g, "
                        "eps %g, weight decay %g, momentum %g)", cfg->lr, cfg->beta1, cfg->beta2, cfg->eps,
                        cfg->weight_decay, cfg->momentum);
    if (n_params > ((size_t)1 << 34))
        return cnk_fail(ctx, CNK_ERR_NOMEM, "optimiser: %zu parameters is too many", n_params);
    cnk_optim *opt = calloc(1, sizeof *opt);
    size_t n_state = state_floats(cfg, n_params);
    float *state = n_state ? calloc(n_state, sizeof(float)) : NULL;
    if (!opt || (n_state && !state)) {
        free(opt);
        free(state);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "optimiser: out of memory for %zu parameters", n_params);
    }
    opt->cfg = *cfg;
    opt->n_params = n_params;
    opt->state = state;
    *out = opt;
    return CNK_OK;
}

void cnk_optim_free(cnk_optim *opt)
{
    if (!opt) return;
    free(opt->state);
    free(opt);
}

static void sgd_range(cnk_optim *opt, float *p, const float *g, float *buf, size_t count, float lr, int threads)
{
    float wd = opt->cfg.weight_decay, mu = opt->cfg.momentum;
#pragma omp parallel for num_threads(threads) schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) {
        float grad = g[i] + wd * p[i];
        buf[i] = mu * buf[i] + grad;
        p[i] -= lr * buf[i];
    }
}

static void adam_range(cnk_optim *opt, float *p, const float *g, float *m, float *v, size_t count, float lr,
                       int threads)
{
    float b1 = opt->cfg.beta1, b2 = opt->cfg.beta2, eps = opt->cfg.eps, wd = opt->cfg.weight_decay;
    int decoupled = opt->cfg.kind == CNK_OPTIM_ADAMW;
    double t = (double)opt->steps;
    float step_size = (float)(lr / (1.0 - pow(b1, t)));
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(b2, t)));
    float decay = decoupled ? 1.0f - lr * wd : 1.0f, l2 = decoupled ? 0.0f : wd;
#pragma omp parallel for num_threads(threads) schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) {
        float grad = g[i] + l2 * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * grad;
        v[i] = b2 * v[i] + (1.0f - b2) * grad * grad;
        float denom = sqrtf(v[i]) * inv_sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * m[i] / denom;
    }
}

static void step_range(cnk_optim *opt, float *params, const float *grads, size_t offset, size_t count, float lr,
                       int threads)
{
    if (offset >= opt->n_params) return;
    if (count > opt->n_params - offset) count = opt->n_params - offset;
    if (opt->cfg.kind == CNK_OPTIM_SGD)
        sgd_range(opt, params + offset, grads + offset, opt->state + offset, count, lr, threads);
    else
        adam_range(opt, params + offset, grads + offset, opt->state + offset, opt->state + opt->n_params + offset,
                   count, lr, threads);
}

void cnk_optim_step(cnk_optim *opt, float *params, const float *grads, const cnk_param_range *ranges,
                    int n_ranges, float lr, int threads)
{
    if (threads < 1) threads = 1;
    opt->steps++;
    if (!ranges) {
        step_range(opt, params, grads, 0, opt->n_params, lr, threads);
        return;
    }
    for (int r = 0; r < n_ranges; r++) step_range(opt, params, grads, ranges[r].offset, ranges[r].count, lr, threads);
}

long cnk_optim_steps(const cnk_optim *opt) { return opt->steps; }
size_t cnk_optim_state_size(const cnk_optim *opt) { return state_floats(&opt->cfg, opt->n_params); }
const float *cnk_optim_state(const cnk_optim *opt) { return opt->state; }

int cnk_optim_set_state(cnk_ctx *ctx, cnk_optim *opt, const float *state, size_t n_state, long steps)
{
    size_t expected = state_floats(&opt->cfg, opt->n_params);
    if (n_state != expected || steps < 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "optimiser state: %zu values for step %ld, expected %zu", n_state, steps,
                        expected);
    if (n_state) memcpy(opt->state, state, sizeof(float) * n_state);
    opt->steps = steps;
    return CNK_OK;
}

float cnk_lr_at(const cnk_lr_schedule *schedule, int t)
{
    double lr = schedule->base_lr;
    if (t < 0) t = 0;
    switch (schedule->kind) {
    case CNK_LR_STEP:
        if (schedule->step_size > 0) lr *= pow(schedule->gamma, (double)(t / schedule->step_size));
        break;
    case CNK_LR_COSINE: {
        int total = schedule->total > 0 ? schedule->total : 1;
        double progress = t > total ? 1.0 : (double)t / total;
        lr = schedule->min_lr + (lr - schedule->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
        break;
    }
    default: break;
    }
    if (schedule->warmup > 0 && t < schedule->warmup) lr *= (double)(t + 1) / (schedule->warmup + 1);
    return (float)lr;
}
