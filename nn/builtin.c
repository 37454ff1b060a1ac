/* builtin.c: the built-in architectures, built layer by layer with stable names (see nn/builtin.h).
 * mobilenet_v2 follows Keras' MobileNetV2 exactly (channel rounding, expansion, residuals) and mobilenet_v1
 * TF-slim's MobileNetV1, so their ImageNet / YAMNet weights map onto them tensor by tensor. */
#include "nn/builtin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const builtin_names[] = {"mlp",   "cnn",          "cnn4d",        "cnn5",   "cnn5d",
                                            "cnn5s", "mobilenet_v2", "mobilenet_v1", "fusion", NULL};

/* A builder keeps the first error so a network reads as a plain list of add_* calls. */
typedef struct builder {
    cnk_ctx *ctx;
    cnk_arch *arch;
    int rc;
    int folded_bn; /* mobilenets: conv carries bias + activation instead of a following batchnorm */
    float bn_eps;
} builder;

/* printf into a layer-name buffer (through a va_list so the compiler does not flag names as truncatable:
 * they are short constants; an over-long one would be refused by cnk_arch_add anyway). */
static void fmt_name(char name[CNK_NAME_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, CNK_NAME_MAX, fmt, ap);
    va_end(ap);
}

static int add(builder *b, cnk_layer *l)
{
    if (b->rc == CNK_OK) b->rc = cnk_arch_add(b->ctx, b->arch, l, NULL);
    return b->arch->n_layers - 1;
}

static int find(builder *b, const char *name)
{
    int i = cnk_arch_find(b->arch, name);
    if (i < 0 && b->rc == CNK_OK) b->rc = cnk_fail(b->ctx, CNK_ERR_INTERNAL, "builtin: no layer '%s'", name);
    return i;
}

static void add_input(builder *b, const char *name, cnk_shape shape)
{
    cnk_layer l;
    cnk_layer_init(&l, CNK_LAYER_INPUT);
    fmt_name(l.name, "%s", name);
    l.input_shape = shape;
    add(b, &l);
}

static void set_window(cnk_layer *l, int size, int stride)
{
    l->window.kernel_h = l->window.kernel_w = size;
    l->window.stride_h = l->window.stride_w = stride;
    l->window.padding = CNK_PAD_SAME;
}

static void add_conv(builder *b, const char *name, int filters, int size, int stride, int bias, cnk_act_kind act)
{
    cnk_layer l;
    cnk_layer_init(&l, filters > 0 ? CNK_LAYER_CONV2D : CNK_LAYER_DEPTHWISE_CONV2D);
    fmt_name(l.name, "%s", name);
    l.filters = filters > 0 ? filters : 0;
    set_window(&l, size, stride);
    l.bias = bias;
    l.activation.kind = act;
    add(b, &l);
}

static void add_bn(builder *b, const char *name, cnk_act_kind act)
{
    cnk_layer l;
    cnk_layer_init(&l, CNK_LAYER_BATCHNORM);
    fmt_name(l.name, "%s", name);
    l.eps = b->bn_eps;
    l.activation.kind = act;
    add(b, &l);
}

/* A conv (filters > 0) or depthwise conv (filters = 0) followed by BN, or a single conv with bias and the
 * activation when BN is folded; the BN layer is called "<name>_bn". */
static void add_conv_bn(builder *b, const char *name, int filters, int size, int stride, cnk_act_kind act)
{
    if (b->folded_bn) {
        add_conv(b, name, filters, size, stride, 1, act);
        return;
    }
    add_conv(b, name, filters, size, stride, 0, CNK_ACT_LINEAR);
    char bn_name[CNK_NAME_MAX];
    fmt_name(bn_name, "%s_bn", name);
    add_bn(b, bn_name, act);
}

static void add_simple(builder *b, cnk_layer_kind kind, const char *name, int from)
{
    cnk_layer l;
    cnk_layer_init(&l, kind);
    fmt_name(l.name, "%s", name);
    if (from >= 0) {
        l.n_inputs = 1;
        l.inputs[0] = from;
    }
    add(b, &l);
}

static void add_pool(builder *b, const char *name, int size, int stride)
{
    cnk_layer l;
    cnk_layer_init(&l, CNK_LAYER_MAXPOOL);
    fmt_name(l.name, "%s", name);
    set_window(&l, size, stride);
    add(b, &l);
}

static void add_dropout(builder *b, const char *name, float rate)
{
    if (rate <= 0) return;
    cnk_layer l;
    cnk_layer_init(&l, CNK_LAYER_DROPOUT);
    fmt_name(l.name, "%s", name);
    l.rate = rate;
    add(b, &l);
}

static void add_dense(builder *b, const char *name, int units, cnk_act_kind act, int from)
{
    cnk_layer l;
    cnk_layer_init(&l, CNK_LAYER_DENSE);
    fmt_name(l.name, "%s", name);
    l.units = units;
    l.activation.kind = act;
    if (from >= 0) {
        l.n_inputs = 1;
        l.inputs[0] = from;
    }
    add(b, &l);
}

static void add_join(builder *b, cnk_layer_kind kind, const char *name, int a, int c)
{
    cnk_layer l;
    cnk_layer_init(&l, kind);
    fmt_name(l.name, "%s", name);
    l.n_inputs = 2;
    l.inputs[0] = a;
    l.inputs[1] = c;
    add(b, &l);
}

int cnk_make_divisible(double v, int divisor)
{
    int rounded = (int)(v + divisor / 2.0) / divisor * divisor;
    if (rounded < divisor) rounded = divisor;
    if (rounded < 0.9 * v) rounded += divisor; /* never round down by more than 10% */
    return rounded;
}

/* ---- the networks --------------------------------------------------------------------------------------- */

static void build_mlp(builder *b, const cnk_builtin_opts *o, float dropout)
{
    add_input(b, "input", o->input);
    add_simple(b, CNK_LAYER_FLATTEN, "flatten", -1);
    add_dense(b, "fc1", 512, CNK_ACT_RELU, -1);
    add_dropout(b, "drop1", dropout);
    add_dense(b, "fc2", 512, CNK_ACT_RELU, -1);
    add_dropout(b, "drop2", dropout);
    add_dense(b, "logits", o->n_classes, CNK_ACT_LINEAR, -1);
}

/* A conv3x3 and its BN + ReLU, named conv_name and conv_name_bn. The cnn family keeps its BN layers apart even
 * with folded_bn (which only the imported MobileNets use), so this is not add_conv_bn. */
static void add_cnn_conv(builder *b, const char *conv_name, int filters)
{
    char bn_name[CNK_NAME_MAX];
    add_conv(b, conv_name, filters, 3, 1, 0, CNK_ACT_LINEAR);
    fmt_name(bn_name, "%s_bn", conv_name);
    add_bn(b, bn_name, CNK_ACT_RELU);
}

/* A conv3x3-BN-ReLU-maxpool2 block named <prefix>convN, <prefix>convN_bn, <prefix>poolN. */
static void add_cnn_block(builder *b, const char *prefix, int n, int filters)
{
    char name[CNK_NAME_MAX];
    fmt_name(name, "%sconv%d", prefix, n);
    add_cnn_conv(b, name, filters);
    fmt_name(name, "%spool%d", prefix, n);
    add_pool(b, name, 2, 2);
}

/* The classifier of every single-input network: gap, dropout, logits. */
static void add_classifier(builder *b, const cnk_builtin_opts *o, float dropout)
{
    add_simple(b, CNK_LAYER_GLOBAL_AVGPOOL, "gap", -1);
    add_dropout(b, "dropout", dropout);
    add_dense(b, "logits", o->n_classes, CNK_ACT_LINEAR, -1);
}

/* Blocks 1..n_blocks. */
static void add_cnn_blocks(builder *b, const char *prefix, const int *filters, int n_blocks)
{
    for (int i = 0; i < n_blocks; i++) add_cnn_block(b, prefix, i + 1, filters[i]);
}

static void build_cnn(builder *b, const cnk_builtin_opts *o, float dropout)
{
    static const int filters[4] = {32, 64, 128, 128};
    add_input(b, "input", o->input);
    add_cnn_blocks(b, "", filters, 4);
    add_classifier(b, o, dropout);
}

/* The photo network (datasets/README.md, animals3): at 96 x 96 a fifth block (256 filters, the fourth widened
 * to 256) sees 63-pixel windows, whole heads and bodies, where `cnn`'s four blocks see 31. */
static void build_cnn5(builder *b, const cnk_builtin_opts *o, float dropout)
{
    static const int filters[5] = {32, 64, 128, 256, 256};
    add_input(b, "input", o->input);
    add_cnn_blocks(b, "", filters, 5);
    add_classifier(b, o, dropout);
}

/* n_blocks blocks whose last has a second conv + BN + ReLU before its pool (convN, convN_bn, convNb, convNb_bn,
 * poolN), then gap, dropout and logits: the last block sees more context on its small maps. The defaults of
 * datasets/README.md, session 7: for photos (cnn5d, animals3: a lower validation loss on each of three
 * validation sets, and with training crops from 128 x 128 photos more photos right; about 14% more time per
 * epoch than cnn5) and for speech (cnn4d, FSDD with each speaker held out: 0.897 against cnn's 0.869). */
static void build_double_last(builder *b, const cnk_builtin_opts *o, float dropout, const int *filters, int n_blocks)
{
    char name[CNK_NAME_MAX];
    int n = n_blocks, f = filters[n_blocks - 1];
    add_input(b, "input", o->input);
    add_cnn_blocks(b, "", filters, n_blocks - 1);
    fmt_name(name, "conv%d", n);
    add_cnn_conv(b, name, f);
    fmt_name(name, "conv%db", n);
    add_cnn_conv(b, name, f);
    fmt_name(name, "pool%d", n);
    add_pool(b, name, 2, 2);
    add_classifier(b, o, dropout);
}

/* A photo network for 112 x 112 (datasets/README.md, animals3): cnn5 with one stride-2 conv in place of its
 * first conv + pool, so 112 x 112 photos (more detail of faces and fur than 96 x 96) reach blocks 2-5 at 56 x 56
 * for 10-12% more training time per epoch than cnn5 at 96 x 96 (cnn5 at 112 x 112: about 30% more). */
static void build_cnn5s(builder *b, const cnk_builtin_opts *o, float dropout)
{
    static const int filters[5] = {32, 64, 128, 256, 256};
    add_input(b, "input", o->input);
    add_conv(b, "conv1", filters[0], 3, 2, 0, CNK_ACT_LINEAR);
    add_bn(b, "conv1_bn", CNK_ACT_RELU);
    for (int n = 2; n <= 5; n++) add_cnn_block(b, "", n, filters[n - 1]);
    add_classifier(b, o, dropout);
}

/* Two `cnn` branches (the same 4 blocks, GAP and dropout as the basic network, so each view alone is as
 * strong as the basic CNN: with 3 blocks each branch trailed it by 20 points on FSDD, datasets/README.md). */
static void build_fusion(builder *b, const cnk_builtin_opts *o, float dropout)
{
    static const int filters[4] = {32, 64, 128, 128};
    add_input(b, "mel", o->input);
    add_cnn_blocks(b, "mel_", filters, 4);
    add_simple(b, CNK_LAYER_GLOBAL_AVGPOOL, "mel_gap", -1);
    int mel_gap = b->arch->n_layers - 1;
    add_dropout(b, "mel_dropout", dropout);
    add_dense(b, "mel_logits", o->n_classes, CNK_ACT_LINEAR, -1);
    add_input(b, "wavelet", o->input2);
    add_cnn_blocks(b, "wavelet_", filters, 4);
    add_simple(b, CNK_LAYER_GLOBAL_AVGPOOL, "wavelet_gap", -1);
    int wavelet_gap = b->arch->n_layers - 1;
    add_dropout(b, "wavelet_dropout", dropout);
    add_dense(b, "wavelet_logits", o->n_classes, CNK_ACT_LINEAR, -1);
    add_join(b, CNK_LAYER_CONCAT, "concat", mel_gap, wavelet_gap);
    add_dropout(b, "dropout", dropout);
    add_dense(b, "logits", o->n_classes, CNK_ACT_LINEAR, -1);
    if (b->rc == CNK_OK) {
        b->arch->n_outputs = 3;
        b->arch->outputs[0] = find(b, "logits");
        b->arch->outputs[1] = find(b, "mel_logits");
        b->arch->outputs[2] = find(b, "wavelet_logits");
    }
}

/* Keras' _inverted_res_block: [expand 1x1 + BN + relu6] -> depthwise 3x3 + BN + relu6 -> project 1x1 + BN,
 * plus the input when the shape is unchanged. */
static void add_inverted_residual(builder *b, int block, int expansion, int stride, int out_channels)
{
    int block_input = b->arch->n_layers - 1;
    int in_channels = 0;
    if (b->rc == CNK_OK) {
        b->rc = cnk_arch_infer(b->ctx, b->arch); /* the expansion depends on the channels coming in */
        if (b->rc == CNK_OK) in_channels = b->arch->layers[block_input].out.c;
    }
    char name[CNK_NAME_MAX];
    if (block > 0) {
        fmt_name(name, "block%d_expand", block);
        add_conv_bn(b, name, expansion * in_channels, 1, 1, CNK_ACT_RELU6);
    }
    fmt_name(name, "block%d_dw", block);
    add_conv_bn(b, name, 0, 3, stride, CNK_ACT_RELU6);
    fmt_name(name, "block%d_project", block);
    add_conv_bn(b, name, out_channels, 1, 1, CNK_ACT_LINEAR);
    if (stride == 1 && in_channels == out_channels) {
        fmt_name(name, "block%d_add", block);
        add_join(b, CNK_LAYER_ADD, name, block_input, b->arch->n_layers - 1);
    }
}

static void build_mobilenet_v2(builder *b, const cnk_builtin_opts *o, float dropout)
{
    /* (expansion t, channels c, repeats n, first stride s) from the MobileNetV2 paper / Keras. */
    static const int settings[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                       {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
    double alpha = o->width;
    add_input(b, "input", o->input);
    add_conv_bn(b, "conv1", cnk_make_divisible(32 * alpha, 8), 3, 2, CNK_ACT_RELU6);
    int block = 0;
    for (int s = 0; s < 7; s++)
        for (int r = 0; r < settings[s][2]; r++) {
            int channels = cnk_make_divisible((int)(settings[s][1] * alpha), 8);
            add_inverted_residual(b, block++, settings[s][0], r == 0 ? settings[s][3] : 1, channels);
        }
    int last = alpha > 1.0 ? cnk_make_divisible(1280 * alpha, 8) : 1280;
    add_conv_bn(b, "conv_last", last, 1, 1, CNK_ACT_RELU6);
    add_classifier(b, o, dropout);
}

static void build_mobilenet_v1(builder *b, const cnk_builtin_opts *o, float dropout)
{
    /* (pointwise channels, depthwise stride) of the 13 depthwise-separable blocks (TF-slim / Keras). */
    static const int blocks[13][2] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1}, {512, 2},  {512, 1},
                                      {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}};
    double alpha = o->width;
    int first = (int)(32 * alpha);
    add_input(b, "input", o->input);
    add_conv_bn(b, "conv1", first < 8 ? 8 : first, 3, 2, CNK_ACT_RELU6);
    char name[CNK_NAME_MAX];
    for (int i = 0; i < 13; i++) {
        int channels = (int)(blocks[i][0] * alpha);
        fmt_name(name, "block%d_dw", i + 1);
        add_conv_bn(b, name, 0, 3, blocks[i][1], CNK_ACT_RELU6);
        fmt_name(name, "block%d_pw", i + 1);
        add_conv_bn(b, name, channels < 8 ? 8 : channels, 1, 1, CNK_ACT_RELU6);
    }
    add_classifier(b, o, dropout);
}

/* ---- public --------------------------------------------------------------------------------------------- */

void cnk_builtin_opts_init(cnk_builtin_opts *opts) { memset(opts, 0, sizeof *opts); }

int cnk_builtin_exists(const char *name)
{
    for (int i = 0; builtin_names[i]; i++)
        if (strcmp(name, builtin_names[i]) == 0) return 1;
    return 0;
}

const char *const *cnk_builtin_names(void) { return builtin_names; }

const char *cnk_builtin_names_text(char *out, size_t cap)
{
    size_t len = 0;
    if (cap) out[0] = '\0';
    for (int i = 0; builtin_names[i] && len < cap; i++) {
        int n = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", builtin_names[i]);
        if (n > 0) len += (size_t)n;
    }
    return out;
}

static int shape_unset(cnk_shape s) { return s.c == 0 && s.h == 0 && s.w == 0; }

/* Fills the defaults of opts for the named network into o and the dropout rate. */
static int resolve_opts(cnk_ctx *ctx, const char *name, const cnk_builtin_opts *opts, cnk_builtin_opts *o,
                        float *dropout)
{
    int mobilenet = strncmp(name, "mobilenet", 9) == 0;
    *o = *opts;
    if (shape_unset(o->input)) {
        if (strcmp(name, "mlp") == 0) o->input = (cnk_shape){1, 28, 28};
        else if (mobilenet) o->input = (cnk_shape){3, 224, 224};
        else o->input = (cnk_shape){1, 128, 128};
    }
    if (shape_unset(o->input2)) o->input2 = o->input;
    if (o->n_classes == 0) o->n_classes = mobilenet ? 1001 : 10;
    if (o->n_classes < 0) return cnk_fail(ctx, CNK_ERR_ARG, "%s: number of classes must be positive", name);
    if (o->width == 0) o->width = 1.0f;
    if (!(o->width > 0 && o->width <= 8))
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: width multiplier must be in (0, 8]", name);
    float default_dropout = strcmp(name, "mlp") == 0 ? 0.2f : mobilenet ? 0.2f : 0.3f;
    *dropout = o->dropout == 0 ? default_dropout : o->dropout < 0 ? 0.0f : o->dropout;
    if (*dropout >= 1) return cnk_fail(ctx, CNK_ERR_ARG, "%s: dropout must be below 1", name);
    return CNK_OK;
}

int cnk_builtin_arch(cnk_ctx *ctx, const char *name, const cnk_builtin_opts *opts, cnk_arch *arch)
{
    cnk_arch_init(arch);
    if (!cnk_builtin_exists(name)) {
        char names[CNK_BUILTIN_NAMES_MAX];
        return cnk_fail(ctx, CNK_ERR_ARG, "unknown architecture '%s' (known: %s, or a .cfg file)", name,
                        cnk_builtin_names_text(names, sizeof names));
    }
    cnk_builtin_opts o, defaults;
    cnk_builtin_opts_init(&defaults);
    float dropout = 0;
    int rc = resolve_opts(ctx, name, opts ? opts : &defaults, &o, &dropout);
    if (rc) return rc;
    builder b = {ctx, arch, CNK_OK, o.folded_bn, 1e-5f};
    if (strcmp(name, "mlp") == 0) build_mlp(&b, &o, dropout);
    else if (strcmp(name, "cnn") == 0) build_cnn(&b, &o, dropout);
    else if (strcmp(name, "cnn4d") == 0) build_double_last(&b, &o, dropout, (const int[]){32, 64, 128, 128}, 4);
    else if (strcmp(name, "cnn5") == 0) build_cnn5(&b, &o, dropout);
    else if (strcmp(name, "cnn5d") == 0) build_double_last(&b, &o, dropout, (const int[]){32, 64, 128, 256, 256}, 5);
    else if (strcmp(name, "cnn5s") == 0) build_cnn5s(&b, &o, dropout);
    else if (strcmp(name, "fusion") == 0) build_fusion(&b, &o, dropout);
    else {
        b.bn_eps = 1e-3f; /* Keras' MobileNet batchnorm epsilon */
        if (strcmp(name, "mobilenet_v2") == 0) build_mobilenet_v2(&b, &o, dropout);
        else build_mobilenet_v1(&b, &o, dropout);
    }
    if (b.rc == CNK_OK) b.rc = cnk_arch_infer(ctx, arch);
    if (b.rc != CNK_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cnk_error(ctx));
        cnk_arch_release(arch);
        return cnk_fail(ctx, b.rc == CNK_ERR_INTERNAL ? b.rc : CNK_ERR_ARG, "%s with input %dx%dx%d: %s", name,
                        o.input.c, o.input.h, o.input.w, msg);
    }
    return CNK_OK;
}
