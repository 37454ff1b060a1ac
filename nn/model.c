#include "nn/model.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/conv2d.h"
#include "nn/dense.h"
#include "nn/depthwise.h"
#include "nn/dropout.h"
#include "nn/elementwise.h"
#include "nn/init.h"
#include "nn/pool.h"

/* Run-time state of one layer. */
typedef struct layer_state {
    float *out;            /* max_batch x out_count; a flatten shares its input's */
    float *dout;           /* gradient w.r.t. out (NULL if nothing below needs one); shared like out */
    int grad_owner;        /* the layer whose dout buffer this is (itself unless aliased) */
    size_t out_count;      /* per-sample C*H*W */
    float *save_mean;      /* batchnorm: statistics used by the last forward */
    float *save_rstd;
    unsigned char *argmax; /* maxpool 2x2: which cell of each window won in the last forward (NULL if none) */
    int batch_stats;       /* batchnorm: 1 if the last forward normalised with batch statistics */
    uint64_t dropout_seed; /* dropout: the mask seed of the last forward */
    int below_trainable;   /* this layer or one it depends on has trainable parameters */
    int dout_ready;        /* backward: dout has been zeroed and holds contributions */
} layer_state;

struct cnk_model {
    cnk_arch arch;
    int max_batch;
    int max_threads;  /* the workspace holds this many per-thread slices */
    int batch;        /* batch of the last forward */
    int full_forward; /* 1 if the last forward ran every layer (backward allowed) */
    cnk_mode mode;
    float *params, *grads, *buffers;
    float *activations, *gradients, *bn_stats, *workspace;
    unsigned char *argmax; /* the maxpool layers' argmax bytes */
    size_t n_activation_floats, n_gradient_floats, n_workspace_floats;
    layer_state *layers;
    cnk_param_range *ranges;
    int n_ranges;
    uint64_t seed;
    uint64_t forward_count;
};

static int has_weights(const cnk_layer *layer) { return layer->n_params > 0; }

static cnk_conv2d_shape conv_shape(const cnk_model *m, int l, int batch, int threads)
{
    const cnk_layer *layer = &m->arch.layers[l];
    const cnk_layer *src = &m->arch.layers[layer->inputs[0]];
    cnk_conv2d_shape s = {batch, src->out.c, src->out.h, src->out.w, layer->out.c, layer->out.h, layer->out.w,
                          layer->window.kernel_h, layer->window.kernel_w, layer->window.stride_h,
                          layer->window.stride_w, layer->window.dilation_h, layer->window.dilation_w,
                          layer->window.pad_top, layer->window.pad_left, threads};
    return s;
}

static cnk_pool_shape pool_shape(const cnk_model *m, int l, int batch, int threads)
{
    const cnk_layer *layer = &m->arch.layers[l];
    const cnk_layer *src = &m->arch.layers[layer->inputs[0]];
    cnk_pool_shape s = {batch, src->out.c, src->out.h, src->out.w, layer->out.h, layer->out.w,
                        layer->window.kernel_h, layer->window.kernel_w, layer->window.stride_h,
                        layer->window.stride_w, layer->window.pad_top, layer->window.pad_left, threads};
    return s;
}

static size_t shape_count(cnk_shape s) { return (size_t)s.c * s.h * s.w; }

/* 1 if maxpool layer l remembers its argmax (a byte per output) so its backward need not re-read the input. */
static int keeps_argmax(const cnk_model *m, int l)
{
    if (m->arch.layers[l].kind != CNK_LAYER_MAXPOOL) return 0;
    cnk_pool_shape s = pool_shape(m, l, m->max_batch, 1);
    return cnk_maxpool_keeps_argmax(&s);
}

/* ---------- construction ---------- */

static void compute_trainable(cnk_model *m)
{
    const cnk_arch *a = &m->arch;
    int n = 0;
    for (int l = 0; l < a->n_layers; l++) {
        const cnk_layer *layer = &a->layers[l];
        int below = layer->trainable && has_weights(layer);
        for (int i = 0; i < layer->n_inputs; i++) below |= m->layers[layer->inputs[i]].below_trainable;
        m->layers[l].below_trainable = below;
        if (layer->trainable && has_weights(layer)) {
            /* adjacent trainable layers merge into one range */
            if (n > 0 && m->ranges[n - 1].offset + m->ranges[n - 1].count == layer->param_offset)
                m->ranges[n - 1].count += layer->n_params;
            else
                m->ranges[n++] = (cnk_param_range){layer->param_offset, layer->n_params};
        }
    }
    m->n_ranges = n;
}

static size_t workspace_need(const cnk_model *m)
{
    size_t need = 0;
    for (int l = 0; l < m->arch.n_layers; l++) {
        if (m->arch.layers[l].kind != CNK_LAYER_CONV2D) continue;
        cnk_conv2d_shape s = conv_shape(m, l, m->max_batch, m->max_threads);
        size_t w = cnk_conv2d_workspace_size(&s);
        if (w > need) need = w;
    }
    return need;
}

/* Sizes every buffer, then carves them out of a few arenas. Gradient buffers exist for every layer that
 * could carry a gradient if all layers were trainable, so freezing and unfreezing never reallocates. */
static int allocate(cnk_ctx *ctx, cnk_model *m)
{
    const cnk_arch *a = &m->arch;
    size_t acts = 0, n_bn = 0, n_argmax = 0, mb = (size_t)m->max_batch;
    for (int l = 0; l < a->n_layers; l++) {
        const cnk_layer *layer = &a->layers[l];
        m->layers[l].out_count = shape_count(layer->out);
        if (layer->kind != CNK_LAYER_FLATTEN) acts += mb * m->layers[l].out_count;
        if (layer->kind == CNK_LAYER_BATCHNORM) n_bn += 2 * (size_t)layer->out.c;
        if (keeps_argmax(m, l)) n_argmax += mb * m->layers[l].out_count;
    }
    size_t limit = (size_t)1 << 34; /* 64 GiB of floats: refuse instead of thrashing */
    if (acts > limit / 2)
        return cnk_fail(ctx, CNK_ERR_NOMEM, "model: activations for batch %d need %.1f GB", m->max_batch,
                        (double)acts * 8 / 1e9);
    m->n_activation_floats = acts;
    m->n_gradient_floats = acts;
    m->n_workspace_floats = workspace_need(m);
    size_t np = a->n_params ? a->n_params : 1, nb = a->n_buffers ? a->n_buffers : 1;
    m->params = calloc(np, sizeof(float));
    m->grads = calloc(np, sizeof(float));
    m->buffers = calloc(nb, sizeof(float));
    m->activations = malloc((acts ? acts : 1) * sizeof(float));
    m->gradients = malloc((acts ? acts : 1) * sizeof(float));
    m->bn_stats = calloc(n_bn ? n_bn : 1, sizeof(float));
    m->workspace = malloc((m->n_workspace_floats ? m->n_workspace_floats : 1) * sizeof(float));
    m->argmax = malloc(n_argmax ? n_argmax : 1);
    if (!m->params || !m->grads || !m->buffers || !m->activations || !m->gradients || !m->bn_stats || !m->workspace ||
        !m->argmax)
        return cnk_fail(ctx, CNK_ERR_NOMEM, "model: out of memory (%.1f MB of activations for batch %d)",
                        (double)acts * 4 / 1e6, m->max_batch);
    size_t offset = 0, bn_offset = 0, argmax_offset = 0;
    for (int l = 0; l < a->n_layers; l++) {
        const cnk_layer *layer = &a->layers[l];
        layer_state *st = &m->layers[l];
        if (layer->kind == CNK_LAYER_FLATTEN) {
            const layer_state *src = &m->layers[layer->inputs[0]];
            st->out = src->out;
            st->dout = src->dout;
            st->grad_owner = src->grad_owner;
        } else {
            st->out = m->activations + offset;
            st->dout = m->gradients + offset;
            st->grad_owner = l;
            offset += mb * st->out_count;
        }
        if (layer->kind == CNK_LAYER_BATCHNORM) {
            st->save_mean = m->bn_stats + bn_offset;
            st->save_rstd = st->save_mean + layer->out.c;
            bn_offset += 2 * (size_t)layer->out.c;
        }
        if (keeps_argmax(m, l)) {
            st->argmax = m->argmax + argmax_offset;
            argmax_offset += mb * st->out_count;
        }
    }
    return CNK_OK;
}

static int check_supported(cnk_ctx *ctx, const cnk_arch *a)
{
    for (int l = 0; l < a->n_layers; l++) {
        const cnk_layer *layer = &a->layers[l];
        if (layer->kind == CNK_LAYER_DEPTHWISE_CONV2D && layer->window.kernel_h * layer->window.kernel_w > 64 * 64)
            return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "layer '%s': depthwise kernels above 64x64 are not supported",
                            layer->name);
    }
    return CNK_OK;
}

int cnk_model_create(cnk_ctx *ctx, const cnk_arch *arch, int max_batch, cnk_model **out)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 1 << 20)
        return cnk_fail(ctx, CNK_ERR_ARG, "model: max batch %d is out of range 1..1048576", max_batch);
    cnk_model *m = calloc(1, sizeof *m);
    if (!m) return cnk_fail(ctx, CNK_ERR_NOMEM, "model: out of memory");
    int rc = cnk_arch_copy(ctx, &m->arch, arch);
    if (rc != CNK_OK) {
        free(m);
        return rc;
    }
    m->max_batch = max_batch;
    m->max_threads = ctx->threads > 0 ? (ctx->threads < 256 ? ctx->threads : 256) : 1;
    m->seed = ctx->seed;
    rc = cnk_arch_infer(ctx, &m->arch);
    if (rc == CNK_OK) rc = check_supported(ctx, &m->arch);
    if (rc == CNK_OK) {
        size_t n_layers = m->arch.n_layers > 0 ? (size_t)m->arch.n_layers : 1;
        m->layers = calloc(n_layers, sizeof *m->layers);
        m->ranges = calloc(n_layers + 1, sizeof *m->ranges);
        if (!m->layers || !m->ranges) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "model: out of memory");
    }
    if (rc == CNK_OK) rc = allocate(ctx, m);
    if (rc != CNK_OK) {
        cnk_model_free(m);
        return rc;
    }
    compute_trainable(m);
    /* BN running variance starts at 1 even before init_params, so an un-initialised model is still sane */
    cnk_model_init_params(m, ctx->seed);
    *out = m;
    return CNK_OK;
}

void cnk_model_free(cnk_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->activations);
    free(m->gradients);
    free(m->bn_stats);
    free(m->workspace);
    free(m->argmax);
    free(m->layers);
    free(m->ranges);
    cnk_arch_release(&m->arch);
    free(m);
}

const cnk_arch *cnk_model_arch(const cnk_model *m) { return &m->arch; }
int cnk_model_max_batch(const cnk_model *m) { return m->max_batch; }
float *cnk_model_params(cnk_model *m) { return m->params; }
float *cnk_model_grads(cnk_model *m) { return m->grads; }
float *cnk_model_buffers(cnk_model *m) { return m->buffers; }
double cnk_model_flops(const cnk_model *m) { return m->arch.flops; }

size_t cnk_model_memory(const cnk_model *m)
{
    size_t argmax_bytes = 0;
    for (int l = 0; l < m->arch.n_layers; l++)
        if (m->layers[l].argmax) argmax_bytes += (size_t)m->max_batch * m->layers[l].out_count;
    return sizeof(float) * (2 * m->arch.n_params + m->arch.n_buffers + m->n_activation_floats +
                            m->n_gradient_floats + m->n_workspace_floats) +
           argmax_bytes;
}

/* ---------- initialisation ---------- */

static int relu_family(cnk_act_kind kind)
{
    return kind == CNK_ACT_RELU || kind == CNK_ACT_RELU6 || kind == CNK_ACT_LEAKY_RELU || kind == CNK_ACT_ELU;
}

/* He when the layer's own activation, or that of a batchnorm / activation layer right after it, is relu-like. */
static int wants_he(const cnk_arch *a, int l)
{
    if (relu_family(a->layers[l].activation.kind)) return 1;
    for (int k = l + 1; k < a->n_layers; k++) {
        const cnk_layer *next = &a->layers[k];
        if (next->n_inputs != 1 || next->inputs[0] != l) continue;
        if ((next->kind == CNK_LAYER_BATCHNORM || next->kind == CNK_LAYER_ACTIVATION) &&
            relu_family(next->activation.kind))
            return 1;
    }
    return 0;
}

void cnk_model_init_params(cnk_model *m, uint64_t seed)
{
    const cnk_arch *a = &m->arch;
    m->seed = seed;
    m->forward_count = 0;
    for (int l = 0; l < a->n_layers; l++) {
        cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS];
        int n = cnk_arch_layer_tensors(a, l, specs);
        for (int t = 0; t < n; t++) {
            const cnk_tensor_spec *sp = &specs[t];
            float *dst = (sp->is_buffer ? m->buffers : m->params) + sp->offset;
            switch (sp->role) {
            case CNK_TENSOR_WEIGHT:
                if (wants_he(a, l))
                    cnk_init_he_normal(dst, sp->count, sp->fan_in, seed, sp->offset);
                else
                    cnk_init_glorot_uniform(dst, sp->count, sp->fan_in, sp->fan_out, seed, sp->offset);
                break;
            case CNK_TENSOR_BN_GAMMA:
            case CNK_TENSOR_BN_VAR: cnk_init_fill(dst, sp->count, 1.0f); break;
            default: cnk_init_fill(dst, sp->count, 0.0f); break;
            }
        }
    }
}

void cnk_model_set_seed(cnk_model *m, uint64_t seed)
{
    m->seed = seed;
    m->forward_count = 0;
}

/* ---------- forward ---------- */

static void apply_activation(const cnk_layer *layer, float *out, int batch, int threads)
{
    if (layer->activation.kind == CNK_ACT_LINEAR) return;
    cnk_act_forward(out, layer->activation.kind, layer->activation.alpha, batch, layer->out.c,
                    layer->out.h * layer->out.w, threads);
}

/* relu and relu6 after a batchnorm are applied inside its normalising pass (one sweep over memory less). */
static int bn_fuses(const cnk_layer *layer)
{
    return layer->kind == CNK_LAYER_BATCHNORM &&
           (layer->activation.kind == CNK_ACT_RELU || layer->activation.kind == CNK_ACT_RELU6);
}

static void forward_batchnorm(cnk_model *m, int l, int batch, int threads, int train)
{
    const cnk_layer *layer = &m->arch.layers[l];
    layer_state *st = &m->layers[l];
    const float *in = m->layers[layer->inputs[0]].out;
    const float *gamma = m->params + layer->param_offset, *beta = gamma + layer->out.c;
    float *mean = m->buffers + layer->buffer_offset, *var = mean + layer->out.c;
    cnk_bn_shape s = {batch, layer->out.c, layer->out.h * layer->out.w, layer->eps, layer->momentum, threads,
                      -INFINITY, INFINITY};
    if (bn_fuses(layer)) {
        s.clip_min = 0.0f;
        s.clip_max = layer->activation.kind == CNK_ACT_RELU6 ? 6.0f : INFINITY;
    }
    st->batch_stats = train && layer->trainable;
    if (st->batch_stats)
        cnk_bn_forward_train(st->out, in, gamma, beta, mean, var, st->save_mean, st->save_rstd, &s);
    else
        cnk_bn_forward_infer(st->out, in, gamma, beta, mean, var, st->save_mean, st->save_rstd, &s);
}

static void forward_layer(cnk_model *m, int l, const float *const *inputs, int batch, int threads, int train)
{
    const cnk_layer *layer = &m->arch.layers[l];
    layer_state *st = &m->layers[l];
    const float *in = layer->n_inputs > 0 ? m->layers[layer->inputs[0]].out : NULL;
    const float *w = m->params + layer->param_offset;
    size_t count = (size_t)batch * st->out_count;
    switch (layer->kind) {
    case CNK_LAYER_INPUT: {
        int k = 0;
        while (k < m->arch.n_input_layers && m->arch.input_layers[k] != l) k++;
        memcpy(st->out, inputs[k], sizeof(float) * count);
        break;
    }
    case CNK_LAYER_CONV2D: {
        cnk_conv2d_shape s = conv_shape(m, l, batch, threads);
        size_t wcount = (size_t)s.out_c * s.in_c * s.kernel_h * s.kernel_w;
        cnk_conv2d_forward(st->out, in, w, layer->bias ? w + wcount : NULL, &s, m->workspace);
        break;
    }
    case CNK_LAYER_DEPTHWISE_CONV2D: {
        cnk_conv2d_shape s = conv_shape(m, l, batch, threads);
        size_t wcount = (size_t)s.in_c * s.kernel_h * s.kernel_w;
        cnk_depthwise_forward(st->out, in, w, layer->bias ? w + wcount : NULL, &s);
        break;
    }
    case CNK_LAYER_MAXPOOL: {
        cnk_pool_shape s = pool_shape(m, l, batch, threads);
        cnk_maxpool_forward(st->out, st->argmax, in, &s);
        break;
    }
    case CNK_LAYER_AVGPOOL: {
        cnk_pool_shape s = pool_shape(m, l, batch, threads);
        cnk_avgpool_forward(st->out, in, &s);
        break;
    }
    case CNK_LAYER_GLOBAL_AVGPOOL: {
        const cnk_layer *src = &m->arch.layers[layer->inputs[0]];
        cnk_global_avgpool_forward(st->out, in, batch, src->out.c, src->out.h * src->out.w, threads);
        break;
    }
    case CNK_LAYER_BATCHNORM: forward_batchnorm(m, l, batch, threads, train); break;
    case CNK_LAYER_DENSE: {
        int in_f = (int)m->layers[layer->inputs[0]].out_count, out_f = layer->units;
        cnk_dense_forward(st->out, in, w, layer->bias ? w + (size_t)in_f * out_f : NULL, batch, in_f, out_f,
                          threads);
        break;
    }
    case CNK_LAYER_DROPOUT:
        st->dropout_seed = m->seed ^ (0x9e3779b97f4a7c15ULL * (m->forward_count + 1)) ^ ((uint64_t)l << 48);
        if (train && layer->rate > 0.0f)
            cnk_dropout_forward(st->out, in, batch, (int)st->out_count, layer->rate, st->dropout_seed, threads);
        else
            memcpy(st->out, in, sizeof(float) * count);
        break;
    case CNK_LAYER_FLATTEN: break; /* shares its input's buffer */
    case CNK_LAYER_ADD: {
        const float *srcs[CNK_MAX_LAYER_INPUTS];
        for (int i = 0; i < layer->n_inputs; i++) srcs[i] = m->layers[layer->inputs[i]].out;
        cnk_add_forward(st->out, srcs, layer->n_inputs, count, threads);
        break;
    }
    case CNK_LAYER_CONCAT: {
        const float *srcs[CNK_MAX_LAYER_INPUTS];
        int channels[CNK_MAX_LAYER_INPUTS];
        for (int i = 0; i < layer->n_inputs; i++) {
            srcs[i] = m->layers[layer->inputs[i]].out;
            channels[i] = m->arch.layers[layer->inputs[i]].out.c;
        }
        cnk_concat_forward(st->out, srcs, channels, layer->n_inputs, batch, layer->out.h * layer->out.w);
        break;
    }
    case CNK_LAYER_ACTIVATION:
    case CNK_LAYER_SOFTMAX: memcpy(st->out, in, sizeof(float) * count); break;
    default: break;
    }
    if (layer->kind == CNK_LAYER_SOFTMAX)
        cnk_act_forward(st->out, CNK_ACT_SOFTMAX, 0.0f, batch, layer->out.c, layer->out.h * layer->out.w, threads);
    else if (layer->kind != CNK_LAYER_FLATTEN && layer->kind != CNK_LAYER_INPUT && !bn_fuses(layer))
        apply_activation(layer, st->out, batch, threads);
}

/* Our loops run on one OpenMP team of ctx->threads (capped to what the workspace was sized for); OpenBLAS
 * is single-threaded inside them, so its own pool never competes for the cores (see conv2d.h). */
static int threads_of(const cnk_model *m, const cnk_ctx *ctx)
{
    int threads = ctx->threads > 0 ? ctx->threads : 1;
    return threads < m->max_threads ? threads : m->max_threads;
}

int cnk_model_forward_until(cnk_ctx *ctx, cnk_model *m, const float *const *inputs, int batch, cnk_mode mode,
                            int last_layer)
{
    if (batch < 1 || batch > m->max_batch)
        return cnk_fail(ctx, CNK_ERR_ARG, "model: batch %d is outside 1..%d", batch, m->max_batch);
    if (last_layer < 0 || last_layer >= m->arch.n_layers)
        return cnk_fail(ctx, CNK_ERR_ARG, "model: layer %d does not exist", last_layer);
    if (!inputs) return cnk_fail(ctx, CNK_ERR_ARG, "model: no input data");
    for (int k = 0; k < m->arch.n_input_layers; k++)
        if (!inputs[k]) return cnk_fail(ctx, CNK_ERR_ARG, "model: input %d is missing", k);
    int threads = threads_of(m, ctx);
    openblas_set_num_threads(1);
    int train = mode == CNK_MODE_TRAIN;
    for (int l = 0; l <= last_layer; l++) forward_layer(m, l, inputs, batch, threads, train);
    m->batch = batch;
    m->mode = mode;
    m->full_forward = last_layer == m->arch.n_layers - 1;
    m->forward_count++;
    return CNK_OK;
}

int cnk_model_forward(cnk_ctx *ctx, cnk_model *m, const float *const *inputs, int batch, cnk_mode mode)
{
    return cnk_model_forward_until(ctx, m, inputs, batch, mode, m->arch.n_layers - 1);
}

const float *cnk_model_output(const cnk_model *m, int index, int *units)
{
    if (index < 0 || index >= m->arch.n_outputs) return NULL;
    const layer_state *st = &m->layers[m->arch.outputs[index]];
    if (units) *units = (int)st->out_count;
    return st->out;
}

const float *cnk_model_layer_output(const cnk_model *m, int layer, cnk_shape *shape)
{
    if (layer < 0 || layer >= m->arch.n_layers) return NULL;
    if (shape) *shape = m->arch.layers[layer].out;
    return m->layers[layer].out;
}

int cnk_model_features(cnk_ctx *ctx, cnk_model *m, const float *const *inputs, int batch, int layer, float *out)
{
    int rc = cnk_model_forward_until(ctx, m, inputs, batch, CNK_MODE_INFER, layer);
    if (rc != CNK_OK) return rc;
    memcpy(out, m->layers[layer].out, sizeof(float) * (size_t)batch * m->layers[layer].out_count);
    return CNK_OK;
}

/* ---------- backward ---------- */

void cnk_model_zero_grad(cnk_model *m)
{
    if (m->arch.n_params) memset(m->grads, 0, sizeof(float) * m->arch.n_params);
}

/* The gradient buffer of layer l, zeroed the first time anyone writes it in this backward pass (so buffers
 * nobody writes cost nothing); NULL if no layer at or below l needs a gradient. */
static float *grad_target(cnk_model *m, int l)
{
    layer_state *st = &m->layers[l];
    if (!st->below_trainable) return NULL;
    layer_state *owner = &m->layers[st->grad_owner];
    if (!owner->dout_ready) {
        memset(owner->dout, 0, sizeof(float) * (size_t)m->batch * owner->out_count);
        owner->dout_ready = 1;
    }
    return st->dout;
}

/* 1 if layer l needs a gradient buffer that nobody has written yet in this backward pass. */
static int grad_is_fresh(const cnk_model *m, int l)
{
    const layer_state *st = &m->layers[l];
    return st->below_trainable && !m->layers[st->grad_owner].dout_ready;
}

/* The gradient buffer of layer l for a kernel that can store instead of add when it writes every cell
 * (overwrites): if nobody has written the buffer yet in this pass, *fresh = 1 and it is handed over unzeroed;
 * otherwise as grad_target. */
static float *grad_target_or_fresh(cnk_model *m, int l, int overwrites, int *fresh)
{
    *fresh = overwrites && grad_is_fresh(m, l);
    if (!*fresh) return grad_target(m, l);
    m->layers[m->layers[l].grad_owner].dout_ready = 1;
    return m->layers[l].dout;
}

static void backward_layer(cnk_model *m, int l, int threads)
{
    const cnk_layer *layer = &m->arch.layers[l];
    layer_state *st = &m->layers[l];
    int batch = m->batch;
    float *dout = st->dout;
    const float *in = layer->n_inputs > 0 ? m->layers[layer->inputs[0]].out : NULL;
    int learn = layer->trainable && has_weights(layer);
    const float *w = m->params + layer->param_offset;
    float *dw = learn ? m->grads + layer->param_offset : NULL;
    if (layer->kind == CNK_LAYER_SOFTMAX)
        cnk_act_backward(dout, st->out, CNK_ACT_SOFTMAX, 0.0f, batch, layer->out.c, layer->out.h * layer->out.w,
                         threads);
    else if (layer->kind != CNK_LAYER_FLATTEN && layer->activation.kind != CNK_ACT_LINEAR && !bn_fuses(layer))
        cnk_act_backward(dout, st->out, layer->activation.kind, layer->activation.alpha, batch, layer->out.c,
                         layer->out.h * layer->out.w, threads);
    switch (layer->kind) {
    case CNK_LAYER_CONV2D: {
        cnk_conv2d_shape s = conv_shape(m, l, batch, threads);
        size_t wcount = (size_t)s.out_c * s.in_c * s.kernel_h * s.kernel_w;
        /* the Winograd input gradient writes every input cell: the first writer stores instead of zero + add */
        int fresh;
        float *dinp = grad_target_or_fresh(m, layer->inputs[0], cnk_conv2d_backward_overwrites(&s), &fresh);
        cnk_conv2d_backward(dinp, dw, dw && layer->bias ? dw + wcount : NULL, dout, in, w, &s, fresh, m->workspace);
        break;
    }
    case CNK_LAYER_DEPTHWISE_CONV2D: {
        cnk_conv2d_shape s = conv_shape(m, l, batch, threads);
        size_t wcount = (size_t)s.in_c * s.kernel_h * s.kernel_w;
        float *dinp = grad_target(m, layer->inputs[0]);
        cnk_depthwise_backward(dinp, dw, dw && layer->bias ? dw + wcount : NULL, dout, in, w, &s);
        break;
    }
    case CNK_LAYER_MAXPOOL: {
        cnk_pool_shape s = pool_shape(m, l, batch, threads);
        /* an exact 2x2 tiling writes every input cell: no need to zero the buffer first */
        int fresh;
        float *dinp = grad_target_or_fresh(m, layer->inputs[0], cnk_maxpool_backward_overwrites(&s), &fresh);
        if (dinp) cnk_maxpool_backward(dinp, dout, in, st->argmax, &s, fresh);
        break;
    }
    case CNK_LAYER_AVGPOOL: {
        cnk_pool_shape s = pool_shape(m, l, batch, threads);
        float *dinp = grad_target(m, layer->inputs[0]);
        if (dinp) cnk_avgpool_backward(dinp, dout, &s);
        break;
    }
    case CNK_LAYER_GLOBAL_AVGPOOL: {
        const cnk_layer *src = &m->arch.layers[layer->inputs[0]];
        float *dinp = grad_target(m, layer->inputs[0]);
        if (dinp) cnk_global_avgpool_backward(dinp, dout, batch, src->out.c, src->out.h * src->out.w, threads);
        break;
    }
    case CNK_LAYER_BATCHNORM: {
        cnk_bn_shape s = {batch, layer->out.c, layer->out.h * layer->out.w, layer->eps, layer->momentum, threads,
                          -INFINITY, INFINITY};
        if (bn_fuses(layer)) {
            s.clip_min = 0.0f;
            s.clip_max = layer->activation.kind == CNK_ACT_RELU6 ? 6.0f : INFINITY;
        }
        /* BN writes every input cell: the first writer of a gradient buffer stores instead of zero + add */
        int fresh;
        float *dinp = grad_target_or_fresh(m, layer->inputs[0], 1, &fresh);
        cnk_bn_backward(dinp, dw, dw ? dw + layer->out.c : NULL, dout, in, w, w + layer->out.c, st->save_mean,
                        st->save_rstd, st->batch_stats, fresh, &s);
        break;
    }
    case CNK_LAYER_DENSE: {
        int in_f = (int)m->layers[layer->inputs[0]].out_count, out_f = layer->units;
        float *dinp = grad_target(m, layer->inputs[0]);
        cnk_dense_backward(dinp, dw, dw && layer->bias ? dw + (size_t)in_f * out_f : NULL, dout, in, w, batch, in_f,
                           out_f, threads);
        break;
    }
    case CNK_LAYER_DROPOUT: {
        float *dinp = grad_target(m, layer->inputs[0]);
        if (!dinp) break;
        if (m->mode == CNK_MODE_TRAIN && layer->rate > 0.0f)
            cnk_dropout_backward(dinp, dout, batch, (int)st->out_count, layer->rate, st->dropout_seed, threads);
        else
            cnk_add_backward(&dinp, 1, dout, (size_t)batch * st->out_count, threads);
        break;
    }
    case CNK_LAYER_ADD:
    case CNK_LAYER_ACTIVATION:
    case CNK_LAYER_SOFTMAX: {
        float *dsts[CNK_MAX_LAYER_INPUTS];
        for (int i = 0; i < layer->n_inputs; i++) dsts[i] = grad_target(m, layer->inputs[i]);
        cnk_add_backward(dsts, layer->n_inputs, dout, (size_t)batch * st->out_count, threads);
        break;
    }
    case CNK_LAYER_CONCAT: {
        float *dsts[CNK_MAX_LAYER_INPUTS];
        int channels[CNK_MAX_LAYER_INPUTS];
        for (int i = 0; i < layer->n_inputs; i++) {
            dsts[i] = grad_target(m, layer->inputs[i]);
            channels[i] = m->arch.layers[layer->inputs[i]].out.c;
        }
        cnk_concat_backward(dsts, channels, layer->n_inputs, dout, batch, layer->out.h * layer->out.w);
        break;
    }
    default: break; /* input: nothing below; flatten: shares its input's gradient buffer */
    }
}

int cnk_model_backward(cnk_ctx *ctx, cnk_model *m, const float *const *doutputs)
{
    if (!m->full_forward || m->batch < 1)
        return cnk_fail(ctx, CNK_ERR_ARG, "model: backward needs a complete forward pass first");
    int threads = threads_of(m, ctx);
    openblas_set_num_threads(1);
    for (int l = 0; l < m->arch.n_layers; l++) m->layers[l].dout_ready = 0;
    for (int k = 0; k < m->arch.n_outputs; k++) {
        if (!doutputs || !doutputs[k]) continue;
        int l = m->arch.outputs[k];
        float *d = grad_target(m, l);
        if (!d) continue;
        cnk_add_backward(&d, 1, doutputs[k], (size_t)m->batch * m->layers[l].out_count, threads);
    }
    for (int l = m->arch.n_layers - 1; l >= 0; l--) {
        layer_state *st = &m->layers[l];
        /* a layer no gradient reached (or that nothing below needs) is skipped: that is the early stop */
        if (!st->below_trainable || !m->layers[st->grad_owner].dout_ready) continue;
        if (m->arch.layers[l].kind == CNK_LAYER_INPUT) continue;
        backward_layer(m, l, threads);
    }
    return CNK_OK;
}

const cnk_param_range *cnk_model_trainable_ranges(const cnk_model *m, int *n_ranges)
{
    *n_ranges = m->n_ranges;
    return m->ranges;
}

void cnk_model_set_trainable(cnk_model *m, int layer, int trainable)
{
    if (layer < 0 || layer >= m->arch.n_layers) return;
    m->arch.layers[layer].trainable = trainable ? 1 : 0;
    compute_trainable(m);
}
