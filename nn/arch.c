/* arch.c: architecture descriptions: layer defaults, validation and shape inference, parameter tensors in
 * THE flat order, and the small edits transfer learning needs (freeze, new class count). */
#include "nn/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuse shapes whose element count or per-layer work would overflow or could never be allocated. */
#define MAX_DIM 1000000          /* filters, units, H, W */
#define MAX_CHANNELS (1 << 24)   /* channels (a flattened input has C*H*W of them) */
#define MAX_ELEMENTS ((size_t)1 << 31) /* per-sample layer output / parameter count: 8 GB of floats */

static const char *const kind_names[CNK_LAYER_KIND_COUNT] = {
    "input", "conv2d", "depthwise_conv2d", "maxpool", "avgpool", "global_avgpool", "batchnorm",
    "dense", "dropout", "flatten", "add", "concat", "activation", "softmax"};

static const char *const act_names[CNK_ACT_KIND_COUNT] = {"linear", "step",       "sigmoid", "tanh",   "relu",
                                                          "relu6",  "leaky_relu", "elu",     "softmax"};

const char *cnk_layer_kind_name(cnk_layer_kind kind)
{
    return (unsigned)kind < CNK_LAYER_KIND_COUNT ? kind_names[kind] : "?";
}

int cnk_layer_kind_parse(const char *name, cnk_layer_kind *kind)
{
    for (int i = 0; i < CNK_LAYER_KIND_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (cnk_layer_kind)i;
            return 0;
        }
    return -1;
}

const char *cnk_act_name(cnk_act_kind kind) { return (unsigned)kind < CNK_ACT_KIND_COUNT ? act_names[kind] : "?"; }

int cnk_act_parse(const char *name, cnk_act_kind *kind)
{
    for (int i = 0; i < CNK_ACT_KIND_COUNT; i++)
        if (strcmp(name, act_names[i]) == 0) {
            *kind = (cnk_act_kind)i;
            return 0;
        }
    return -1;
}

void cnk_layer_init(cnk_layer *layer, cnk_layer_kind kind)
{
    memset(layer, 0, sizeof *layer);
    layer->kind = kind;
    layer->trainable = 1;
    layer->window.kernel_h = layer->window.kernel_w = 1;
    layer->window.stride_h = layer->window.stride_w = 1;
    layer->window.dilation_h = layer->window.dilation_w = 1;
    layer->window.padding = CNK_PAD_EXPLICIT;
    layer->bias = 1;
    layer->activation.kind = CNK_ACT_LINEAR;
    layer->activation.alpha = 0.01f;
    layer->eps = 1e-5f;
    layer->momentum = 0.1f;
    layer->rate = 0.5f;
}

void cnk_arch_init(cnk_arch *arch) { memset(arch, 0, sizeof *arch); }

void cnk_arch_release(cnk_arch *arch)
{
    free(arch->layers);
    memset(arch, 0, sizeof *arch);
}

int cnk_arch_copy(cnk_ctx *ctx, cnk_arch *dst, const cnk_arch *src)
{
    cnk_arch_init(dst);
    *dst = *src;
    dst->layers = NULL;
    dst->cap = src->n_layers;
    if (src->n_layers > 0) {
        dst->layers = malloc((size_t)src->n_layers * sizeof *dst->layers);
        if (!dst->layers) {
            cnk_arch_init(dst);
            return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory copying a %d-layer architecture", src->n_layers);
        }
        memcpy(dst->layers, src->layers, (size_t)src->n_layers * sizeof *dst->layers);
    }
    return CNK_OK;
}

static int name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= CNK_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

int cnk_arch_find(const cnk_arch *arch, const char *name)
{
    for (int i = 0; i < arch->n_layers; i++)
        if (strcmp(arch->layers[i].name, name) == 0) return i;
    return -1;
}

int cnk_arch_add(cnk_ctx *ctx, cnk_arch *arch, const cnk_layer *layer, int *index)
{
    if (arch->n_layers >= CNK_MAX_LAYERS)
        return cnk_fail(ctx, CNK_ERR_INPUT, "too many layers (limit %d)", CNK_MAX_LAYERS);
    if ((unsigned)layer->kind >= CNK_LAYER_KIND_COUNT)
        return cnk_fail(ctx, CNK_ERR_ARG, "layer %d: invalid kind %d", arch->n_layers, (int)layer->kind);
    cnk_layer copy = *layer;
    if (copy.name[0] == '\0')
        snprintf(copy.name, sizeof copy.name, "%s%d", cnk_layer_kind_name(copy.kind), arch->n_layers);
    if (memchr(layer->name, '\0', CNK_NAME_MAX) == NULL || !name_is_valid(copy.name))
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer %d: invalid name (use 1-%d of A-Z a-z 0-9 _ -)", arch->n_layers,
                        CNK_NAME_MAX - 1);
    if (cnk_arch_find(arch, copy.name) >= 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': duplicate layer name", copy.name);
    if (arch->n_layers == arch->cap) {
        int cap = arch->cap ? arch->cap * 2 : 16;
        cnk_layer *grown = realloc(arch->layers, (size_t)cap * sizeof *grown);
        if (!grown) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory adding layer '%s'", copy.name);
        arch->layers = grown;
        arch->cap = cap;
    }
    arch->layers[arch->n_layers] = copy;
    if (arch->outputs_defaulted) { /* "the last layer" is now this one */
        arch->n_outputs = 0;
        arch->outputs_defaulted = 0;
    }
    if (index) *index = arch->n_layers;
    arch->n_layers++;
    arch->inferred = 0;
    return CNK_OK;
}

int cnk_window_out_size(int in, int kernel, int stride, int dilation, cnk_window_padding mode, int *pad_before,
                        int *pad_after)
{
    if (in <= 0 || kernel <= 0 || stride <= 0 || dilation <= 0) return 0;
    long effective = (long)(kernel - 1) * dilation + 1;
    if (mode == CNK_PAD_SAME) {
        long out = ((long)in + stride - 1) / stride;
        long total = (out - 1) * stride + effective - in;
        if (total < 0) total = 0;
        *pad_before = (int)(total / 2);
        *pad_after = (int)(total - total / 2);
        return (int)out;
    }
    if (mode == CNK_PAD_VALID) *pad_before = *pad_after = 0;
    if (*pad_before < 0 || *pad_after < 0) return 0;
    long padded = (long)in + *pad_before + *pad_after;
    if (padded < effective) return 0;
    return (int)((padded - effective) / stride + 1);
}

/* ---- inference ------------------------------------------------------------------------------------------ */

static size_t shape_elements(cnk_shape s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

static int shape_is_sane(cnk_shape s)
{
    return s.c > 0 && s.h > 0 && s.w > 0 && s.c <= MAX_CHANNELS && s.h <= MAX_DIM && s.w <= MAX_DIM &&
           shape_elements(s) <= MAX_ELEMENTS;
}

static int check_activation(cnk_ctx *ctx, const cnk_layer *l)
{
    if ((unsigned)l->activation.kind >= CNK_ACT_KIND_COUNT)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': invalid activation", l->name);
    if (l->activation.alpha != l->activation.alpha)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': alpha is not a number", l->name);
    return CNK_OK;
}

/* Fills l->out and the resolved padding for conv / depthwise / pools from the input shape. */
static int infer_window(cnk_ctx *ctx, cnk_layer *l, cnk_shape in, int out_channels)
{
    cnk_window *w = &l->window;
    int is_pool = l->kind == CNK_LAYER_MAXPOOL || l->kind == CNK_LAYER_AVGPOOL;
    if (w->kernel_h <= 0 || w->kernel_w <= 0 || w->kernel_h > 4096 || w->kernel_w > 4096 || w->stride_h <= 0 ||
        w->stride_w <= 0 || w->stride_h > 4096 || w->stride_w > 4096 || w->dilation_h <= 0 || w->dilation_w <= 0 ||
        w->dilation_h > 4096 || w->dilation_w > 4096)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': size, stride and dilation must be 1..4096", l->name);
    if (is_pool && (w->dilation_h != 1 || w->dilation_w != 1))
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': pooling has no dilation", l->name);
    if ((unsigned)w->padding > CNK_PAD_VALID)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': invalid padding mode", l->name);
    if (w->padding == CNK_PAD_EXPLICIT &&
        (w->pad_top < 0 || w->pad_bottom < 0 || w->pad_left < 0 || w->pad_right < 0 || w->pad_top > 4096 ||
         w->pad_bottom > 4096 || w->pad_left > 4096 || w->pad_right > 4096))
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': padding must be 0..4096", l->name);
    int oh = cnk_window_out_size(in.h, w->kernel_h, w->stride_h, w->dilation_h, w->padding, &w->pad_top,
                                 &w->pad_bottom);
    int ow = cnk_window_out_size(in.w, w->kernel_w, w->stride_w, w->dilation_w, w->padding, &w->pad_left,
                                 &w->pad_right);
    if (oh <= 0 || ow <= 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': a %dx%d window does not fit its %dx%dx%d input", l->name,
                        w->kernel_h, w->kernel_w, in.c, in.h, in.w);
    /* A window lying entirely in the padding would pool nothing (max of nothing / average of nothing). */
    if (is_pool && (w->pad_top >= w->kernel_h || w->pad_bottom >= w->kernel_h || w->pad_left >= w->kernel_w ||
                    w->pad_right >= w->kernel_w))
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': pooling padding must be smaller than the window", l->name);
    l->out = (cnk_shape){out_channels, oh, ow};
    return CNK_OK;
}

static int resolve_inputs(cnk_ctx *ctx, cnk_arch *arch, int index)
{
    cnk_layer *l = &arch->layers[index];
    if (l->kind == CNK_LAYER_INPUT) {
        if (l->n_inputs != 0) return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': an input takes no inputs", l->name);
        return CNK_OK;
    }
    if (l->n_inputs == 0) {
        if (index == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': the first layer must be an input", l->name);
        l->n_inputs = 1;
        l->inputs[0] = index - 1;
    }
    if (l->n_inputs < 0 || l->n_inputs > CNK_MAX_LAYER_INPUTS)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': invalid number of inputs", l->name);
    int multi = l->kind == CNK_LAYER_ADD || l->kind == CNK_LAYER_CONCAT;
    if (multi && l->n_inputs < 2)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': %s needs at least 2 inputs", l->name,
                        cnk_layer_kind_name(l->kind));
    if (!multi && l->n_inputs != 1)
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': %s takes exactly 1 input", l->name,
                        cnk_layer_kind_name(l->kind));
    for (int k = 0; k < l->n_inputs; k++)
        if (l->inputs[k] < 0 || l->inputs[k] >= index)
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': inputs must be earlier layers", l->name);
    return CNK_OK;
}

static int infer_multi(cnk_ctx *ctx, const cnk_arch *arch, cnk_layer *l)
{
    cnk_shape first = arch->layers[l->inputs[0]].out;
    long channels = 0;
    for (int k = 0; k < l->n_inputs; k++) {
        const cnk_layer *src = &arch->layers[l->inputs[k]];
        cnk_shape s = src->out;
        if (l->kind == CNK_LAYER_ADD && (s.c != first.c || s.h != first.h || s.w != first.w))
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': add inputs have different shapes %dx%dx%d and %dx%dx%d",
                            l->name, first.c, first.h, first.w, s.c, s.h, s.w);
        if (l->kind == CNK_LAYER_CONCAT && (s.h != first.h || s.w != first.w))
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': concat inputs differ in height/width (%dx%d, '%s' %dx%d)",
                            l->name, first.h, first.w, src->name, s.h, s.w);
        channels += s.c;
    }
    l->out = first;
    if (l->kind == CNK_LAYER_CONCAT) {
        if (channels > MAX_CHANNELS) return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': too many channels", l->name);
        l->out.c = (int)channels;
    }
    l->flops = l->kind == CNK_LAYER_ADD ? (double)(l->n_inputs - 1) * (double)shape_elements(first) : 0.0;
    return CNK_OK;
}

/* Output shape, parameter and buffer counts and FLOPs of one layer whose inputs are already inferred. */
static int infer_layer(cnk_ctx *ctx, cnk_arch *arch, cnk_layer *l)
{
    int rc = check_activation(ctx, l);
    if (rc) return rc;
    l->n_params = l->n_buffers = 0;
    l->flops = 0;
    if (l->kind == CNK_LAYER_INPUT) {
        if (!shape_is_sane(l->input_shape))
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': input shape %dx%dx%d is too large or not a valid CxHxW", l->name,
                            l->input_shape.c, l->input_shape.h, l->input_shape.w);
        l->out = l->input_shape;
        return CNK_OK;
    }
    if (l->kind == CNK_LAYER_ADD || l->kind == CNK_LAYER_CONCAT) return infer_multi(ctx, arch, l);
    cnk_shape in = arch->layers[l->inputs[0]].out;
    size_t in_elems = shape_elements(in);
    const cnk_window *w = &l->window;
    switch (l->kind) {
    case CNK_LAYER_CONV2D: {
        if (l->filters <= 0 || l->filters > MAX_DIM)
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': filters must be 1..%d", l->name, MAX_DIM);
        if ((rc = infer_window(ctx, l, in, l->filters))) return rc;
        size_t per_out = (size_t)in.c * w->kernel_h * w->kernel_w;
        l->n_params = (size_t)l->filters * per_out + (l->bias ? (size_t)l->filters : 0);
        l->flops = 2.0 * (double)per_out * (double)shape_elements(l->out);
        break;
    }
    case CNK_LAYER_DEPTHWISE_CONV2D:
        if ((rc = infer_window(ctx, l, in, in.c))) return rc;
        l->n_params = (size_t)in.c * w->kernel_h * w->kernel_w + (l->bias ? (size_t)in.c : 0);
        l->flops = 2.0 * w->kernel_h * w->kernel_w * (double)shape_elements(l->out);
        break;
    case CNK_LAYER_MAXPOOL:
    case CNK_LAYER_AVGPOOL:
        if ((rc = infer_window(ctx, l, in, in.c))) return rc;
        l->flops = (double)w->kernel_h * w->kernel_w * (double)shape_elements(l->out);
        break;
    case CNK_LAYER_GLOBAL_AVGPOOL:
        l->out = (cnk_shape){in.c, 1, 1};
        l->flops = (double)in_elems;
        break;
    case CNK_LAYER_BATCHNORM:
        if (!(l->eps > 0 && l->eps < 1))
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': eps must be in (0, 1)", l->name);
        if (!(l->momentum >= 0 && l->momentum <= 1))
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': momentum must be in [0, 1]", l->name);
        l->out = in;
        l->n_params = 2 * (size_t)in.c;
        l->n_buffers = 2 * (size_t)in.c;
        l->flops = 2.0 * (double)in_elems;
        break;
    case CNK_LAYER_DENSE:
        if (l->units <= 0 || l->units > MAX_DIM)
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': units must be 1..%d", l->name, MAX_DIM);
        if (in_elems > MAX_CHANNELS || in_elems > MAX_ELEMENTS / (size_t)l->units)
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': %zu x %d weights are too many", l->name, in_elems,
                            l->units);
        l->out = (cnk_shape){l->units, 1, 1};
        l->n_params = in_elems * (size_t)l->units + (l->bias ? (size_t)l->units : 0);
        l->flops = 2.0 * (double)in_elems * l->units;
        break;
    case CNK_LAYER_DROPOUT:
        if (!(l->rate >= 0 && l->rate < 1))
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': dropout rate must be in [0, 1)", l->name);
        l->out = in;
        break;
    case CNK_LAYER_FLATTEN:
        l->out = (cnk_shape){0, 1, 1};
        if (in_elems > MAX_CHANNELS)
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': %zu features are too many to flatten", l->name, in_elems);
        l->out.c = (int)in_elems;
        break;
    case CNK_LAYER_ACTIVATION:
    case CNK_LAYER_SOFTMAX:
        l->out = in;
        l->flops = (double)in_elems;
        break;
    default:
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': invalid kind %d", l->name, (int)l->kind);
    }
    if (!shape_is_sane(l->out))
        return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': output shape %dx%dx%d is too large", l->name, l->out.c,
                        l->out.h, l->out.w);
    return CNK_OK;
}

static int infer_outputs(cnk_ctx *ctx, cnk_arch *arch)
{
    if (arch->n_outputs == 0) {
        arch->n_outputs = 1;
        arch->outputs[0] = arch->n_layers - 1;
        arch->outputs_defaulted = 1;
    }
    if (arch->n_outputs < 0 || arch->n_outputs > CNK_MAX_OUTPUTS)
        return cnk_fail(ctx, CNK_ERR_INPUT, "at most %d outputs", CNK_MAX_OUTPUTS);
    for (int k = 0; k < arch->n_outputs; k++) {
        int o = arch->outputs[k];
        if (o < 0 || o >= arch->n_layers) return cnk_fail(ctx, CNK_ERR_INPUT, "output %d is not a layer", k);
        for (int j = 0; j < k; j++)
            if (arch->outputs[j] == o)
                return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s' is declared as an output twice", arch->layers[o].name);
    }
    return CNK_OK;
}

int cnk_arch_infer(cnk_ctx *ctx, cnk_arch *arch)
{
    arch->inferred = 0;
    if (arch->n_layers <= 0) return cnk_fail(ctx, CNK_ERR_INPUT, "the architecture has no layers");
    arch->n_params = arch->n_trainable_params = arch->n_buffers = 0;
    arch->flops = 0;
    arch->n_input_layers = 0;
    for (int i = 0; i < arch->n_layers; i++) {
        cnk_layer *l = &arch->layers[i];
        int rc = resolve_inputs(ctx, arch, i);
        if (!rc) rc = infer_layer(ctx, arch, l);
        if (rc) return rc;
        if (l->kind == CNK_LAYER_INPUT) {
            if (arch->n_input_layers >= CNK_MAX_OUTPUTS)
                return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': at most %d input layers", l->name, CNK_MAX_OUTPUTS);
            arch->input_layers[arch->n_input_layers++] = i;
        }
        if (arch->n_params > MAX_ELEMENTS || arch->n_buffers > MAX_ELEMENTS)
            return cnk_fail(ctx, CNK_ERR_INPUT, "layer '%s': the network has too many parameters", l->name);
        l->param_offset = arch->n_params;
        l->buffer_offset = arch->n_buffers;
        arch->n_params += l->n_params;
        arch->n_buffers += l->n_buffers;
        if (l->trainable) arch->n_trainable_params += l->n_params;
        arch->flops += l->flops;
    }
    int rc = infer_outputs(ctx, arch);
    if (rc) return rc;
    arch->inferred = 1;
    return CNK_OK;
}

/* ---- parameter tensors ---------------------------------------------------------------------------------- */

static void set_spec(cnk_tensor_spec *s, const char *suffix, cnk_tensor_role role, int is_buffer, int ndim,
                     const int *dims, size_t offset)
{
    memset(s, 0, sizeof *s);
    s->suffix = suffix;
    s->role = role;
    s->is_buffer = is_buffer;
    s->ndim = ndim;
    s->count = 1;
    for (int d = 0; d < ndim; d++) {
        s->dims[d] = dims[d];
        s->count *= (size_t)dims[d];
    }
    s->offset = offset;
    if (role == CNK_TENSOR_WEIGHT) {
        size_t receptive = 1;
        for (int d = 2; d < ndim; d++) receptive *= (size_t)dims[d];
        s->fan_in = (int)((size_t)dims[1] * receptive);
        s->fan_out = (int)((size_t)dims[0] * receptive);
    }
}

int cnk_arch_layer_tensors(const cnk_arch *arch, int layer, cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS])
{
    if (layer < 0 || layer >= arch->n_layers) return 0;
    const cnk_layer *l = &arch->layers[layer];
    size_t p = l->param_offset, b = l->buffer_offset;
    int n = 0;
    int out = 0, dims[4];
    switch (l->kind) {
    case CNK_LAYER_CONV2D:
    case CNK_LAYER_DEPTHWISE_CONV2D: {
        const cnk_shape in = arch->layers[l->inputs[0]].out;
        int depthwise = l->kind == CNK_LAYER_DEPTHWISE_CONV2D;
        out = depthwise ? in.c : l->filters;
        dims[0] = out;
        dims[1] = depthwise ? 1 : in.c;
        dims[2] = l->window.kernel_h;
        dims[3] = l->window.kernel_w;
        set_spec(&specs[n], "weight", CNK_TENSOR_WEIGHT, 0, 4, dims, p);
        p += specs[n++].count;
        break;
    }
    case CNK_LAYER_DENSE:
        out = l->units;
        dims[0] = l->units;
        dims[1] = (int)shape_elements(arch->layers[l->inputs[0]].out);
        set_spec(&specs[n], "weight", CNK_TENSOR_WEIGHT, 0, 2, dims, p);
        p += specs[n++].count;
        break;
    case CNK_LAYER_BATCHNORM:
        dims[0] = l->out.c;
        set_spec(&specs[n], "gamma", CNK_TENSOR_BN_GAMMA, 0, 1, dims, p);
        p += specs[n++].count;
        set_spec(&specs[n], "beta", CNK_TENSOR_BN_BETA, 0, 1, dims, p);
        n++;
        set_spec(&specs[n], "running_mean", CNK_TENSOR_BN_MEAN, 1, 1, dims, b);
        b += specs[n++].count;
        set_spec(&specs[n], "running_var", CNK_TENSOR_BN_VAR, 1, 1, dims, b);
        n++;
        return n;
    default:
        return 0;
    }
    if (l->bias) {
        dims[0] = out;
        set_spec(&specs[n], "bias", CNK_TENSOR_BIAS, 0, 1, dims, p);
        n++;
    }
    return n;
}

size_t cnk_arch_non_trainable(const cnk_arch *arch)
{
    return arch->n_buffers + (arch->n_params - arch->n_trainable_params);
}

/* ---- transfer-learning edits ----------------------------------------------------------------------------- */

/* The dense layer that produces output layer index o (walking back through shape-preserving tails), or -1. */
static int head_dense(const cnk_arch *arch, int o)
{
    while (o >= 0 && o < arch->n_layers) {
        const cnk_layer *l = &arch->layers[o];
        if (l->kind == CNK_LAYER_DENSE) return o;
        int passthrough = l->kind == CNK_LAYER_SOFTMAX || l->kind == CNK_LAYER_ACTIVATION ||
                          l->kind == CNK_LAYER_DROPOUT || l->kind == CNK_LAYER_FLATTEN;
        if (!passthrough || l->n_inputs != 1) return -1;
        o = l->inputs[0];
    }
    return -1;
}

int cnk_arch_feature_layer(const cnk_arch *arch)
{
    if (!arch->inferred || arch->n_outputs < 1) return -1;
    int dense = head_dense(arch, arch->outputs[0]);
    if (dense < 0) return -1;
    /* Dropout is the identity at inference: the features are those of the layer below it. */
    int feature = arch->layers[dense].inputs[0];
    while (arch->layers[feature].kind == CNK_LAYER_DROPOUT) feature = arch->layers[feature].inputs[0];
    return feature;
}

void cnk_arch_freeze_first(cnk_arch *arch, int n)
{
    arch->n_trainable_params = 0;
    for (int i = 0; i < arch->n_layers; i++) {
        arch->layers[i].trainable = i >= n || arch->layers[i].kind == CNK_LAYER_INPUT; /* inputs: nothing to freeze */
        if (arch->layers[i].trainable) arch->n_trainable_params += arch->layers[i].n_params;
    }
}

int cnk_arch_set_classes(cnk_ctx *ctx, cnk_arch *arch, int n_classes)
{
    if (n_classes <= 0 || n_classes > MAX_DIM)
        return cnk_fail(ctx, CNK_ERR_ARG, "number of classes must be 1..%d", MAX_DIM);
    int rc = arch->inferred ? CNK_OK : cnk_arch_infer(ctx, arch);
    if (rc) return rc;
    for (int k = 0; k < arch->n_outputs; k++) {
        int dense = head_dense(arch, arch->outputs[k]);
        if (dense < 0)
            return cnk_fail(ctx, CNK_ERR_INPUT, "output '%s' is not produced by a dense layer",
                            arch->layers[arch->outputs[k]].name);
        arch->layers[dense].units = n_classes;
    }
    return cnk_arch_infer(ctx, arch);
}
