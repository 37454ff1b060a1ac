/* import.c: maps a TensorFlow Lite MobileNet / YAMNet graph onto cnnkit's built-in folded-BN mobilenets.
 * The weighted ops of these files (conv, depthwise conv, the classifier) come in the same order as the
 * built-in's weighted layers, so the import walks both lists together and checks every shape on the way. */
#include "nn/import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "nn/builtin.h"
#include "nn/cfg.h"

#define MAX_WEIGHTED_OPS 512
#define MAX_LABELS_BYTES ((size_t)16 << 20)

static int is_weighted_op(int code)
{
    return code == CNK_TFL_CONV_2D || code == CNK_TFL_DEPTHWISE_CONV_2D || code == CNK_TFL_FULLY_CONNECTED;
}

static int is_weighted_layer(cnk_layer_kind kind)
{
    return kind == CNK_LAYER_CONV2D || kind == CNK_LAYER_DEPTHWISE_CONV2D || kind == CNK_LAYER_DENSE;
}

static int map_activation(int tfl, cnk_act_kind *kind)
{
    switch (tfl) {
    case CNK_TFL_ACT_NONE: *kind = CNK_ACT_LINEAR; return 0;
    case CNK_TFL_ACT_RELU: *kind = CNK_ACT_RELU; return 0;
    case CNK_TFL_ACT_RELU6: *kind = CNK_ACT_RELU6; return 0;
    case CNK_TFL_ACT_TANH: *kind = CNK_ACT_TANH; return 0;
    default: return -1;
    }
}

/* ---- what the graph is ---------------------------------------------------------------------------------- */

/* Image models start at op 0 on an NHWC input. YAMNet's input is the waveform: its CNN starts at the first
 * CONV_2D, whose input is the [1, 96, 64, 1] log-mel patch the file's front end computes. */
static int find_cnn(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *g, cnk_import_info *info)
{
    if (g->n_inputs < 1 || g->n_ops < 1) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: the graph has no input or no op", name);
    const cnk_tfl_tensor *in = &g->tensors[g->inputs[0]];
    info->first_op = 0;
    if (in->ndim != 4) {
        int first = -1;
        for (int i = 0; i < g->n_ops && first < 0; i++)
            if (g->ops[i].code == CNK_TFL_CONV_2D) first = i;
        if (in->ndim > 2 || first < 0 || g->ops[first].inputs[0] < 0 || g->tensors[g->ops[first].inputs[0]].ndim != 4)
            return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: input '%s' is neither an image nor a waveform before a CNN",
                            name, in->name);
        info->first_op = first;
        info->kind = CNK_IMPORT_YAMNET;
        in = &g->tensors[g->ops[first].inputs[0]];
    }
    if (in->shape[0] != 1 || in->shape[1] < 1 || in->shape[2] < 1 || in->shape[3] < 1)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: the CNN input '%s' is not one NHWC sample", name, in->name);
    info->input = (cnk_shape){in->shape[3], in->shape[1], in->shape[2]};
    return CNK_OK;
}

/* TensorFlow SAME padding of one dimension: (before, after). */
static void same_padding(int in, int kernel, int stride, int dilation, int *before, int *after)
{
    int out = (in + stride - 1) / stride, total = (out - 1) * stride + (kernel - 1) * dilation + 1 - in;
    if (total < 0) total = 0;
    *before = total / 2;
    *after = total - *before;
}

/* The only consumer of tensor t after op `after`, or -1 if none or several. */
static int sole_consumer(const cnk_tfl_graph *g, int t, int after)
{
    int found = -1;
    for (int i = after + 1; i < g->n_ops; i++)
        for (int k = 0; k < g->ops[i].n_inputs; k++)
            if (g->ops[i].inputs[k] == t) {
                if (found >= 0 && found != i) return -1;
                found = i;
            }
    return found;
}

/* Keras-made files pad explicitly and then run a VALID conv; cnnkit's layers pad themselves, so a PAD is
 * accepted only where it equals the SAME padding of the one conv that reads it (which then counts as SAME). */
static int check_pad(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *g, int i)
{
    const cnk_tfl_op *pad = &g->ops[i];
    const cnk_tfl_tensor *in = &g->tensors[pad->inputs[0]];
    const cnk_tfl_tensor *amounts = pad->n_inputs > 1 && pad->inputs[1] >= 0 ? &g->tensors[pad->inputs[1]] : NULL;
    int c = sole_consumer(g, pad->outputs[0], i);
    const cnk_tfl_op *conv = c >= 0 ? &g->ops[c] : NULL;
    int ok = in->ndim == 4 && amounts && amounts->data && amounts->count == 8 && conv &&
             (conv->code == CNK_TFL_CONV_2D || conv->code == CNK_TFL_DEPTHWISE_CONV_2D) &&
             conv->padding == CNK_TFL_PAD_VALID && conv->inputs[0] == pad->outputs[0] && conv->n_inputs > 1 &&
             conv->inputs[1] >= 0 && g->tensors[conv->inputs[1]].ndim == 4;
    if (ok) {
        const float *p = amounts->data;
        const cnk_tfl_tensor *w = &g->tensors[conv->inputs[1]];
        int top, bottom, left, right;
        same_padding(in->shape[1], w->shape[1], conv->stride_h, conv->dilation_h, &top, &bottom);
        same_padding(in->shape[2], w->shape[2], conv->stride_w, conv->dilation_w, &left, &right);
        ok = p[0] == 0 && p[1] == 0 && p[2] == top && p[3] == bottom && p[4] == left && p[5] == right && p[6] == 0 &&
             p[7] == 0;
    }
    if (!ok)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: layer %d (PAD) is not the SAME padding of the convolution "
                                                  "after it (cnnkit imports no other padding)", name, i);
    return CNK_OK;
}

/* Average pools and means must reduce the whole map to one value per channel (the built-in's gap). */
static int check_global_pool(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *g, int i)
{
    const cnk_tfl_op *op = &g->ops[i];
    const cnk_tfl_tensor *in = &g->tensors[op->inputs[0]];
    int ok = in->ndim == 4;
    if (ok && op->code == CNK_TFL_AVERAGE_POOL_2D) {
        const cnk_tfl_tensor *out = &g->tensors[op->outputs[0]];
        ok = op->filter_h == in->shape[1] && op->filter_w == in->shape[2] && out->ndim == 4 && out->shape[1] == 1 &&
             out->shape[2] == 1 && op->activation == CNK_TFL_ACT_NONE;
    } else if (ok) {
        const cnk_tfl_tensor *axes = op->n_inputs > 1 && op->inputs[1] >= 0 ? &g->tensors[op->inputs[1]] : NULL;
        ok = axes && axes->data && axes->count == 2 && axes->data[0] == 1 && axes->data[1] == 2;
    }
    if (!ok)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: layer %d (%s) is not a global average over height and width",
                        name, i, op->name);
    return CNK_OK;
}

/* The weighted ops of the CNN in order, the classifier's size and output, and the kind of network. */
static int survey(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *g, cnk_import_info *info, int *weighted,
                  int *n_weighted, int *n_adds)
{
    int rc = cnk_tflite_check_ops(ctx, name, g, info->first_op, g->n_ops);
    if (rc) return rc;
    *n_weighted = *n_adds = 0;
    for (int i = info->first_op; i < g->n_ops; i++) {
        const cnk_tfl_op *op = &g->ops[i];
        if (op->n_inputs < 1 || op->n_outputs < 1 || op->inputs[0] < 0 || op->outputs[0] < 0)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: layer %d (%s) has no input or output", name, i, op->name);
        if (op->code == CNK_TFL_PAD && (rc = check_pad(ctx, name, g, i))) return rc;
        if ((op->code == CNK_TFL_AVERAGE_POOL_2D || op->code == CNK_TFL_MEAN) && (rc = check_global_pool(ctx, name, g, i)))
            return rc;
        if (op->code == CNK_TFL_ADD) ++*n_adds;
        if (op->code == CNK_TFL_LOGISTIC) info->sigmoid_output = 1;
        if (!is_weighted_op(op->code)) continue;
        if (*n_weighted == MAX_WEIGHTED_OPS)
            return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: more than %d weighted layers", name, MAX_WEIGHTED_OPS);
        if (op->n_inputs < 2 || op->inputs[1] < 0 || !g->tensors[op->inputs[1]].data)
            return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: layer %d (%s) has no constant weights", name, i, op->name);
        weighted[(*n_weighted)++] = i;
    }
    if (*n_weighted < 2) return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: no convolutional network found", name);
    const cnk_tfl_op *head = &g->ops[weighted[*n_weighted - 1]];
    info->n_classes = g->tensors[head->inputs[1]].shape[0];
    info->logits_tensor = head->outputs[0];
    if (info->kind != CNK_IMPORT_YAMNET) info->kind = *n_adds > 0 ? CNK_IMPORT_MOBILENET_V2 : CNK_IMPORT_MOBILENET_V1;
    info->arch_name = info->kind == CNK_IMPORT_MOBILENET_V2 ? "mobilenet_v2" : "mobilenet_v1";
    return CNK_OK;
}

/* ---- one weighted layer ------------------------------------------------------------------------------- */

static int mismatch(cnk_ctx *ctx, const char *name, int op_index, const cnk_tfl_op *op, const cnk_layer *layer,
                    const char *what)
{
    return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: layer %d (%s) does not fit layer '%s': %s", name, op_index,
                    op->name, layer->name, what);
}

/* 1 if the file's window (strides, dilation, padding) is the built-in layer's. A VALID conv after a PAD
 * that check_pad accepted is a SAME conv. */
static int same_window(const cnk_tfl_graph *g, const cnk_tfl_op *op, const cnk_layer *layer)
{
    const cnk_window *w = &layer->window;
    int producer = cnk_tflite_producer(g, op->inputs[0]);
    int padded = producer >= 0 && g->ops[producer].code == CNK_TFL_PAD;
    int padding_ok = op->padding == CNK_TFL_PAD_SAME || padded || (w->kernel_h == 1 && w->kernel_w == 1);
    return op->stride_h == w->stride_h && op->stride_w == w->stride_w && op->dilation_h == w->dilation_h &&
           op->dilation_w == w->dilation_w && padding_ok && w->padding == CNK_PAD_SAME;
}

/* Copies the weights of op into the layer's place in params, converting the layout. */
static int copy_weights(const cnk_tfl_tensor *w, const cnk_tfl_op *op, const cnk_layer *layer,
                        const cnk_tensor_spec *spec, float *params)
{
    float *dst = params + spec->offset;
    if (layer->kind == CNK_LAYER_CONV2D) { /* OHWI -> OIHW */
        int O = w->shape[0], KH = w->shape[1], KW = w->shape[2], I = w->shape[3];
        if (w->ndim != 4 || spec->dims[0] != O || spec->dims[1] != I || spec->dims[2] != KH || spec->dims[3] != KW)
            return -1;
        for (int o = 0; o < O; o++)
            for (int ky = 0; ky < KH; ky++)
                for (int kx = 0; kx < KW; kx++)
                    for (int i = 0; i < I; i++)
                        dst[(((size_t)o * I + i) * KH + ky) * KW + kx] = w->data[(((size_t)o * KH + ky) * KW + kx) * I + i];
        return 0;
    }
    if (layer->kind == CNK_LAYER_DEPTHWISE_CONV2D) { /* [1, KH, KW, C] -> [C, 1, KH, KW] */
        int KH = w->shape[1], KW = w->shape[2], C = w->shape[3];
        if (w->ndim != 4 || w->shape[0] != 1 || op->depth_multiplier != 1 || spec->dims[0] != C ||
            spec->dims[2] != KH || spec->dims[3] != KW)
            return -1;
        for (int c = 0; c < C; c++)
            for (int k = 0; k < KH * KW; k++) dst[(size_t)c * KH * KW + k] = w->data[(size_t)k * C + c];
        return 0;
    }
    /* dense: a fully-connected [O, I], or a 1x1 conv [O, 1, 1, I] on a 1x1 map: both already [out, in] */
    size_t out = (size_t)w->shape[0], in = w->count / (out ? out : 1);
    if (w->ndim == 4 && (w->shape[1] != 1 || w->shape[2] != 1)) return -1;
    if ((w->ndim != 2 && w->ndim != 4) || (size_t)spec->dims[0] != out || (size_t)spec->dims[1] != in) return -1;
    memcpy(dst, w->data, w->count * sizeof *dst);
    return 0;
}

static int fill_layer(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *g, int op_index, cnk_arch *arch,
                      int li, float *params)
{
    const cnk_tfl_op *op = &g->ops[op_index];
    cnk_layer *layer = &arch->layers[li];
    int kind_ok = (op->code == CNK_TFL_CONV_2D && (layer->kind == CNK_LAYER_CONV2D || layer->kind == CNK_LAYER_DENSE)) ||
                  (op->code == CNK_TFL_DEPTHWISE_CONV_2D && layer->kind == CNK_LAYER_DEPTHWISE_CONV2D) ||
                  (op->code == CNK_TFL_FULLY_CONNECTED && layer->kind == CNK_LAYER_DENSE);
    if (!kind_ok) return mismatch(ctx, name, op_index, op, layer, "different layer kinds");
    if (layer->kind != CNK_LAYER_DENSE && !same_window(g, op, layer))
        return mismatch(ctx, name, op_index, op, layer, "different stride, dilation or padding");
    cnk_act_kind act;
    if (map_activation(op->activation, &act) != 0)
        return mismatch(ctx, name, op_index, op, layer, "unsupported fused activation");
    cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS];
    int n_specs = cnk_arch_layer_tensors(arch, li, specs);
    if (n_specs < 2 || specs[1].role != CNK_TENSOR_BIAS)
        return mismatch(ctx, name, op_index, op, layer, "the built-in layer has no bias");
    const cnk_tfl_tensor *w = &g->tensors[op->inputs[1]];
    if (copy_weights(w, op, layer, &specs[0], params) != 0)
        return mismatch(ctx, name, op_index, op, layer, "different weight shapes");
    int has_bias = op->n_inputs > 2 && op->inputs[2] >= 0;
    if (has_bias) { /* a missing bias stays zero */
        const cnk_tfl_tensor *b = &g->tensors[op->inputs[2]];
        if (!b->data || b->count != specs[1].count)
            return mismatch(ctx, name, op_index, op, layer, "different bias sizes");
        memcpy(params + specs[1].offset, b->data, b->count * sizeof(float));
    }
    layer->activation.kind = act;
    return CNK_OK;
}

/* ---- the whole network -------------------------------------------------------------------------------- */

static int try_width(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *g, const cnk_import_info *info,
                     float width, const int *weighted, int n_weighted, int n_adds, cnk_arch *arch, float **params,
                     int *filled)
{
    *filled = 0;
    cnk_builtin_opts opts;
    cnk_builtin_opts_init(&opts);
    opts.input = info->input;
    opts.n_classes = info->n_classes;
    opts.width = width;
    opts.folded_bn = 1;
    int rc = cnk_builtin_arch(ctx, info->arch_name, &opts, arch);
    if (rc) { /* the built-in's message names no file: put it in front */
        char why[sizeof ctx->message];
        snprintf(why, sizeof why, "%s", cnk_error(ctx));
        return cnk_fail(ctx, rc, "%s: %s", name, why);
    }
    int layers[MAX_WEIGHTED_OPS], n_layers = 0, adds = 0;
    for (int i = 0; i < arch->n_layers; i++) {
        if (arch->layers[i].kind == CNK_LAYER_ADD) adds++;
        if (is_weighted_layer(arch->layers[i].kind) && n_layers < MAX_WEIGHTED_OPS) layers[n_layers++] = i;
    }
    if (n_layers != n_weighted || adds != n_adds)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: %d weighted layers and %d residual adds, %s width %.2f has %d and %d",
                        name, n_weighted, n_adds, info->arch_name, (double)width, n_layers, adds);
    *params = calloc(arch->n_params ? arch->n_params : 1, sizeof **params);
    if (!*params) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for %zu parameters", name, arch->n_params);
    for (int k = 0; k < n_weighted; k++, ++*filled)
        if ((rc = fill_layer(ctx, name, g, weighted[k], arch, layers[k], *params))) return rc;
    arch->inferred = 0; /* activations changed */
    return cnk_arch_infer(ctx, arch);
}

int cnk_import_graph(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *graph, cnk_arch *arch, float **params,
                     cnk_import_info *info)
{
    memset(info, 0, sizeof *info);
    cnk_arch_init(arch);
    *params = NULL;
    int weighted[MAX_WEIGHTED_OPS], n_weighted, n_adds;
    int rc = find_cnn(ctx, name, graph, info);
    if (!rc) rc = survey(ctx, name, graph, info, weighted, &n_weighted, &n_adds);
    if (rc) return rc;
    /* The width is not stored in the file: try the published ones; the first whose every shape fits wins. */
    static const float v1_widths[] = {1.0f, 0.75f, 0.5f, 0.25f};
    static const float v2_widths[] = {1.0f, 0.75f, 0.5f, 0.35f, 1.3f, 1.4f};
    const float *widths = info->kind == CNK_IMPORT_MOBILENET_V2 ? v2_widths : v1_widths;
    int n_widths = info->kind == CNK_IMPORT_MOBILENET_V2 ? 6 : 4;
    /* On failure, the width that matched the most layers tells the user where the file departs. */
    char best_error[sizeof ctx->message] = "";
    int best_filled = -1;
    float best_width = widths[0];
    for (int i = 0; i < n_widths; i++) {
        int filled;
        rc = try_width(ctx, name, graph, info, widths[i], weighted, n_weighted, n_adds, arch, params, &filled);
        if (rc == CNK_OK) {
            info->width = widths[i];
            return CNK_OK;
        }
        if (filled > best_filled) {
            best_filled = filled;
            best_width = widths[i];
            snprintf(best_error, sizeof best_error, "%s", cnk_error(ctx));
        }
        cnk_arch_release(arch);
        free(*params);
        *params = NULL;
        if (rc == CNK_ERR_NOMEM) return rc;
    }
    return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s (closest: %s width %.2f)", best_error, info->arch_name,
                    (double)best_width);
}

/* ---- labels ------------------------------------------------------------------------------------------- */

/* Field `column` of a CSV line (double-quoted fields with "" escapes), copied into out. */
static void csv_field(const char *line, int column, char *out, size_t cap)
{
    size_t n = 0;
    int col = 0, quoted = 0;
    for (const char *p = line; *p; p++) {
        if (quoted) {
            if (*p == '"' && p[1] == '"') p++;
            else if (*p == '"') { quoted = 0; continue; }
        } else if (*p == '"') {
            quoted = 1;
            continue;
        } else if (*p == ',') {
            if (++col > column) break;
            continue;
        }
        if (col == column && n + 1 < cap) out[n++] = *p;
    }
    out[n] = '\0';
}

static int csv_column(const char *header, const char *wanted)
{
    char cell[256];
    for (int c = 0; c < 64; c++) {
        csv_field(header, c, cell, sizeof cell);
        if (strcmp(cell, wanted) == 0) return c;
    }
    return -1;
}

static void free_names(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Appends " (2)", " (3)"... to names met before, so classes stay distinguishable by name. Walks backwards so
 * the names compared against are still the originals. */
static int make_unique(char **names, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int seen = 1;
        for (int j = 0; j < i; j++) seen += strcmp(names[j], names[i]) == 0;
        if (seen == 1) continue;
        size_t len = strlen(names[i]) + 16;
        char *renamed = malloc(len);
        if (!renamed) return -1;
        snprintf(renamed, len, "%s (%d)", names[i], seen);
        free(names[i]);
        names[i] = renamed;
    }
    return 0;
}

int cnk_import_read_labels(cnk_ctx *ctx, const char *path, int n_expected, char ***names)
{
    *names = NULL;
    unsigned char *text;
    size_t size;
    int rc = cnk_read_file(ctx, path, MAX_LABELS_BYTES, &text, &size);
    if (rc) return rc;
    int is_csv = strlen(path) > 4 && strcmp(path + strlen(path) - 4, ".csv") == 0;
    char **out = calloc(n_expected > 0 ? (size_t)n_expected : 1, sizeof *out);
    if (!out) {
        free(text);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
    }
    int n = 0, column = -1, line_no = 0;
    char cell[512];
    for (char *line = (char *)text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line[strcspn(line, "\r")] = '\0';
        line_no++;
        if (is_csv && column < 0) { /* the header */
            column = csv_column(line, "display_name");
            if (column < 0) {
                rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no display_name column in the header", path);
                break;
            }
            continue;
        }
        if (!*line) continue;
        if (is_csv) csv_field(line, column, cell, sizeof cell);
        else snprintf(cell, sizeof cell, "%.*s", (int)strcspn(line, ","), line);
        if (!cell[0]) {
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s:%d: empty class name", path, line_no);
            break;
        }
        if (n < n_expected && !(out[n] = strdup(cell))) {
            rc = cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        n++;
    }
    free(text);
    if (!rc && n != n_expected)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: %d class names, the model has %d classes", path, n, n_expected);
    if (!rc && make_unique(out, n_expected) != 0) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
    if (rc) {
        free_names(out, n_expected);
        return rc;
    }
    *names = out;
    return CNK_OK;
}

int cnk_import_default_labels(const char *tflite_path, char *out, size_t cap)
{
    static const char *const candidates[] = {"imagenet_labels.txt", "yamnet_class_map.csv"};
    const char *slash = strrchr(tflite_path, '/');
    int dir_len = slash ? (int)(slash - tflite_path) : 1;
    const char *dir = slash ? tflite_path : ".";
    for (int i = 0; i < 2; i++) {
        snprintf(out, cap, "%.*s/%s", dir_len, dir, candidates[i]);
        FILE *f = fopen(out, "r");
        if (f) {
            fclose(f);
            return 1;
        }
    }
    out[0] = '\0';
    return 0;
}

/* ---- the whole import --------------------------------------------------------------------------------- */

static int generic_names(cnk_ctx *ctx, int n, char ***names)
{
    *names = calloc((size_t)n, sizeof **names);
    if (!*names) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for class names");
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "class_%d", i);
        if (!((*names)[i] = strdup(buf))) {
            free_names(*names, n);
            *names = NULL;
            return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for class names");
        }
    }
    return CNK_OK;
}

int cnk_import_tflite(cnk_ctx *ctx, const char *tflite_path, const char *labels_path, cnk_modelfile *mf,
                      cnk_import_info *info)
{
    cnk_modelfile_init(mf);
    cnk_tfl_graph graph;
    cnk_arch arch;
    float *params = NULL;
    int rc = cnk_tflite_read(ctx, tflite_path, &graph);
    if (rc) return rc;
    rc = cnk_import_graph(ctx, tflite_path, &graph, &arch, &params, info);
    cnk_tflite_release(&graph);
    if (rc) return rc;
    char default_labels[4096];
    if (!labels_path && cnk_import_default_labels(tflite_path, default_labels, sizeof default_labels))
        labels_path = default_labels;
    char **names = NULL;
    rc = labels_path ? cnk_import_read_labels(ctx, labels_path, info->n_classes, &names)
                     : generic_names(ctx, info->n_classes, &names);
    if (!rc) rc = cnk_cfg_write(ctx, &arch, &mf->arch_text);
    mf->class_names = names;
    mf->n_classes = names ? info->n_classes : 0;
    mf->params = params;
    mf->n_params = arch.n_params;
    cnk_arch_release(&arch);
    if (rc) cnk_modelfile_release(mf);
    return rc;
}
