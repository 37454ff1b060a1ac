/* Tests for nn/arch + nn/builtin + nn/summary: TF SAME/VALID window arithmetic, every built-in's shapes and
 * parameter counts against PyTorch (fixtures from tests/ref/gen_arch.py) and against Keras' published totals,
 * the parameter-tensor order, the transfer-learning edits, validation errors, and `cnnkit summary`.
 * test-libs: core nn */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "nn/arch.h"
#include "nn/builtin.h"
#include "nn/cfg.h"
#include "nn/model.h"
#include "nn/summary.h"

static void test_window_arithmetic(void **state)
{
    (void)state;
    int a, b;
    /* SAME: out = ceil(in / stride); the odd extra pad cell goes after. */
    assert_int_equal(cnk_window_out_size(224, 3, 2, 1, CNK_PAD_SAME, &a, &b), 112);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(cnk_window_out_size(7, 3, 2, 1, CNK_PAD_SAME, &a, &b), 4);
    assert_int_equal(a, 1);
    assert_int_equal(b, 1);
    assert_int_equal(cnk_window_out_size(10, 3, 1, 2, CNK_PAD_SAME, &a, &b), 10); /* dilated: effective 5 */
    assert_int_equal(a, 2);
    assert_int_equal(b, 2);
    assert_int_equal(cnk_window_out_size(5, 1, 2, 1, CNK_PAD_SAME, &a, &b), 3);
    assert_int_equal(a + b, 0);
    /* VALID and explicit. */
    assert_int_equal(cnk_window_out_size(10, 3, 2, 1, CNK_PAD_VALID, &a, &b), 4);
    a = 1, b = 2;
    assert_int_equal(cnk_window_out_size(10, 3, 2, 1, CNK_PAD_EXPLICIT, &a, &b), 6);
    a = b = 0;
    assert_true(cnk_window_out_size(2, 3, 1, 1, CNK_PAD_EXPLICIT, &a, &b) <= 0);
    assert_true(cnk_window_out_size(4, 3, 1, 2, CNK_PAD_VALID, &a, &b) <= 0);
}

/* ---- built-ins against the PyTorch fixtures ------------------------------------------------------------- */

typedef struct builtin_case {
    const char *fixture;
    const char *name;
    cnk_shape input, input2;
    int n_classes;
    float width;
    int folded_bn;
} builtin_case;

/* Keep in sync with CASES in tests/ref/gen_arch.py. */
static const builtin_case cases[] = {
    {"mlp", "mlp", {0, 0, 0}, {0, 0, 0}, 0, 0, 0},
    {"cnn_mel", "cnn", {1, 128, 128}, {0, 0, 0}, 10, 0, 0},
    {"cnn_image", "cnn", {3, 96, 96}, {0, 0, 0}, 5, 0, 0},
    {"cnn4d_speech", "cnn4d", {1, 64, 48}, {0, 0, 0}, 10, 0, 0},
    {"cnn5_image", "cnn5", {3, 96, 96}, {0, 0, 0}, 3, 0, 0},
    {"cnn5d_image", "cnn5d", {3, 96, 96}, {0, 0, 0}, 3, 0, 0},
    {"cnn5s_image", "cnn5s", {3, 112, 112}, {0, 0, 0}, 3, 0, 0},
    {"mobilenet_v2", "mobilenet_v2", {0, 0, 0}, {0, 0, 0}, 1001, 0, 0},
    {"mobilenet_v2_folded", "mobilenet_v2", {0, 0, 0}, {0, 0, 0}, 1001, 0, 1},
    {"mobilenet_v2_035", "mobilenet_v2", {3, 96, 96}, {0, 0, 0}, 7, 0.35f, 0},
    {"mobilenet_v1_025_folded", "mobilenet_v1", {3, 128, 128}, {0, 0, 0}, 1001, 0.25f, 1},
    {"yamnet_body", "mobilenet_v1", {1, 96, 64}, {0, 0, 0}, 521, 0, 0},
    {"fusion", "fusion", {1, 64, 96}, {1, 48, 96}, 4, 0, 0},
};

static void build_case(const builtin_case *c, cnk_arch *arch)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_builtin_opts o;
    cnk_builtin_opts_init(&o);
    o.input = c->input;
    o.input2 = c->input2;
    o.n_classes = c->n_classes;
    o.width = c->width;
    o.folded_bn = c->folded_bn;
    int rc = cnk_builtin_arch(&ctx, c->name, &o, arch);
    if (rc) fail_msg("%s: %s", c->fixture, cnk_error(&ctx));
}

static char *read_fixture(const char *rel)
{
    char path[4096];
    FILE *fp = fopen(tu_fixture(path, sizeof path, rel), "rb");
    if (!fp) fail_msg("cannot open fixture %s (run tests/ref/gen_arch.py)", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, fp), (size_t)n);
    text[n] = '\0';
    fclose(fp);
    return text;
}

/* Compares the arch with "<fixture>.txt": per layer the PyTorch output shape, parameter and buffer counts. */
static void check_against_torch(const char *fixture, const cnk_arch *arch)
{
    char rel[256];
    snprintf(rel, sizeof rel, "arch/%s.txt", fixture);
    char *text = read_fixture(rel);
    int n_layers = 0, saw_total = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        int c, h, w;
        size_t params, trainable, buffers;
        if (sscanf(line, "total %zu %zu %zu", &params, &trainable, &buffers) == 3) {
            assert_int_equal(arch->n_params, params);
            assert_int_equal(arch->n_trainable_params, trainable);
            assert_int_equal(arch->n_buffers, buffers);
            saw_total = 1;
        } else if (sscanf(line, "layer %127s %d %d %d %zu %zu", name, &c, &h, &w, &params, &buffers) == 6) {
            assert_true(n_layers < arch->n_layers);
            const cnk_layer *l = &arch->layers[n_layers++];
            if (strcmp(l->name, name) != 0 || l->out.c != c || l->out.h != h || l->out.w != w ||
                l->n_params != params || l->n_buffers != buffers)
                fail_msg("%s layer %s: cnnkit %dx%dx%d %zu+%zu, PyTorch %s %dx%dx%d %zu+%zu", fixture, l->name,
                         l->out.c, l->out.h, l->out.w, l->n_params, l->n_buffers, name, c, h, w, params, buffers);
        }
    }
    assert_true(saw_total);
    assert_int_equal(n_layers, arch->n_layers);
    free(text);
}

static void test_builtins_match_pytorch(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnk_arch arch;
        build_case(&cases[i], &arch);
        check_against_torch(cases[i].fixture, &arch);
        /* The fixture was made from this very cfg text: the built-in must not have drifted. */
        char rel[256], *text;
        snprintf(rel, sizeof rel, "arch/%s.cfg", cases[i].fixture);
        char *expected = read_fixture(rel);
        assert_int_equal(cnk_cfg_write(&ctx, &arch, &text), CNK_OK);
        if (strcmp(text, expected) != 0) fail_msg("%s: built-in differs from %s", cases[i].fixture, rel);
        free(text);
        free(expected);
        cnk_arch_release(&arch);
    }
}

static void test_hand_written_cfg_matches_pytorch(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_arch arch;
    int rc = cnk_cfg_read_file(&ctx, tu_fixture(path, sizeof path, "arch/all_kinds.cfg"), &arch);
    if (rc) fail_msg("%s", cnk_error(&ctx));
    check_against_torch("all_kinds", &arch);
    /* Resolved asymmetric paddings, as PyTorch's F.pad used them. */
    const cnk_layer *c1 = &arch.layers[cnk_arch_find(&arch, "c1")];
    assert_int_equal(c1->window.pad_top, 1); /* 17 rows, k3 s2: out 9, total pad 2 */
    assert_int_equal(c1->window.pad_bottom, 1);
    assert_int_equal(c1->window.pad_left, 4); /* k5 dilation 2: effective 9, stride 1: total 8 */
    assert_int_equal(c1->window.pad_right, 4);
    const cnk_layer *ap = &arch.layers[cnk_arch_find(&arch, "ap")];
    assert_int_equal(ap->window.pad_top, 0); /* 4 rows, k2 s2: no pad; 8 cols k3 s2: out 4, total 1 */
    assert_int_equal(ap->window.pad_bottom, 0);
    assert_int_equal(ap->window.pad_left, 0);
    assert_int_equal(ap->window.pad_right, 1);
    assert_int_equal(arch.n_outputs, 2);
    assert_string_equal(arch.layers[arch.outputs[0]].name, "probs");
    assert_string_equal(arch.layers[arch.outputs[1]].name, "aux");
    assert_int_equal(arch.n_input_layers, 2);
    assert_int_equal(cnk_arch_non_trainable(&arch), 12 + 42); /* buffers + the frozen c2 */
    cnk_arch_release(&arch);
}

/* Keras' own summaries: MobileNetV2(alpha=1, 224, classes=1000) and MobileNet(alpha=1, 224, classes=1000);
 * Keras counts batchnorm moving statistics as non-trainable params. */
static void test_builtins_match_keras_totals(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_builtin_opts o;
    cnk_builtin_opts_init(&o);
    o.n_classes = 1000;
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "mobilenet_v2", &o, &arch), CNK_OK);
    assert_int_equal(arch.n_params + arch.n_buffers, 3538984);
    assert_int_equal(arch.n_trainable_params, 3504872);
    assert_int_equal(cnk_arch_non_trainable(&arch), 34112);
    /* input, conv1+bn, 17 blocks of 6 layers (block0 has no expand pair), 10 adds, conv_last+bn, head 3 */
    assert_int_equal(arch.n_layers, 1 + 2 + 17 * 6 - 2 + 10 + 2 + 3);
    cnk_arch_release(&arch);
    assert_int_equal(cnk_builtin_arch(&ctx, "mobilenet_v1", &o, &arch), CNK_OK);
    assert_int_equal(arch.n_params + arch.n_buffers, 4253864);
    assert_int_equal(arch.n_trainable_params, 4231976);
    assert_int_equal(cnk_arch_non_trainable(&arch), 21888);
    cnk_arch_release(&arch);
    /* The classic 784-512-512-10 perceptron. */
    cnk_builtin_opts_init(&o);
    assert_int_equal(cnk_builtin_arch(&ctx, "mlp", &o, &arch), CNK_OK);
    assert_int_equal(arch.n_params, 669706);
    cnk_arch_release(&arch);
}

static void test_make_divisible(void **state)
{
    (void)state;
    assert_int_equal(cnk_make_divisible(32 * 0.35, 8), 16); /* 11.2 -> 8 is < 90%: 16 */
    assert_int_equal(cnk_make_divisible(16 * 0.35, 8), 8);
    assert_int_equal(cnk_make_divisible(24 * 0.35, 8), 8);
    assert_int_equal(cnk_make_divisible(96 * 0.75, 8), 72);
    assert_int_equal(cnk_make_divisible(1280 * 1.4, 8), 1792);
    assert_int_equal(cnk_make_divisible(32, 8), 32);
}

static void test_mobilenet_v2_topology(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "mobilenet_v2", NULL, &arch), CNK_OK);
    /* Residual adds exactly where stride is 1 and channels are unchanged (Keras: 10 of 17 blocks). */
    static const int with_add[] = {2, 4, 5, 7, 8, 9, 11, 12, 14, 15};
    int adds = 0;
    for (int i = 0; i < arch.n_layers; i++)
        if (arch.layers[i].kind == CNK_LAYER_ADD) adds++;
    assert_int_equal(adds, 10);
    for (size_t k = 0; k < sizeof with_add / sizeof with_add[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "block%d_add", with_add[k]);
        int i = cnk_arch_find(&arch, name);
        assert_true(i > 0);
        snprintf(name, sizeof name, "block%d_expand", with_add[k]);
        assert_int_equal(arch.layers[i].inputs[0], cnk_arch_find(&arch, name) - 1); /* the block's input */
        snprintf(name, sizeof name, "block%d_project_bn", with_add[k]);
        assert_int_equal(arch.layers[i].inputs[1], cnk_arch_find(&arch, name));
    }
    assert_true(cnk_arch_find(&arch, "block0_expand") < 0); /* t = 1: no expansion */
    const cnk_layer *dw = &arch.layers[cnk_arch_find(&arch, "block1_dw")];
    assert_int_equal(dw->window.stride_h, 2); /* the stride is on the depthwise conv */
    assert_int_equal(dw->out.c, 96);
    assert_int_equal(dw->out.h, 56);
    assert_int_equal(dw->window.pad_top, 0); /* SAME on 112: (0, 1) */
    assert_int_equal(dw->window.pad_bottom, 1);
    const cnk_layer *last = &arch.layers[cnk_arch_find(&arch, "conv_last_bn")];
    assert_int_equal(last->out.c, 1280);
    assert_int_equal(last->out.h, 7);
    assert_int_equal(last->activation.kind, CNK_ACT_RELU6);
    assert_int_equal(arch.layers[cnk_arch_find(&arch, "block16_project_bn")].activation.kind, CNK_ACT_LINEAR);
    assert_int_equal(arch.layers[arch.outputs[0]].out.c, 1001);
    /* About 300 M multiply-adds, as the paper reports. */
    assert_true(arch.flops > 0.58e9 && arch.flops < 0.64e9);
    cnk_arch_release(&arch);
}

static void load_npy(const char *rel, cnk_array *a)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    if (cnk_npy_read(&ctx, tu_fixture(path, sizeof path, rel), a)) fail_msg("%s", cnk_error(&ctx));
}

/* bench/cnk_torch.py and cnnkit's own model compute the same network: the same flat weights and inputs
 * give every layer's output of all_kinds.cfg as PyTorch did (so the parameter order, layouts, SAME padding,
 * pooling over padding, dilation and every activation mean the same on both sides). */
static void test_forward_matches_cnk_torch(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_arch arch;
    assert_int_equal(cnk_cfg_read_file(&ctx, tu_fixture(path, sizeof path, "arch/all_kinds.cfg"), &arch), CNK_OK);
    cnk_array params, buffers, in0, in1, layers;
    load_npy("arch/all_kinds_params.npy", &params);
    load_npy("arch/all_kinds_buffers.npy", &buffers);
    load_npy("arch/all_kinds_input0.npy", &in0);
    load_npy("arch/all_kinds_input1.npy", &in1);
    load_npy("arch/all_kinds_layers.npy", &layers);
    assert_int_equal(cnk_array_count(&params), arch.n_params);
    assert_int_equal(cnk_array_count(&buffers), arch.n_buffers);
    cnk_model *model;
    if (cnk_model_create(&ctx, &arch, 2, &model)) fail_msg("%s", cnk_error(&ctx));
    memcpy(cnk_model_params(model), params.data, arch.n_params * sizeof(float));
    memcpy(cnk_model_buffers(model), buffers.data, arch.n_buffers * sizeof(float));
    const float *inputs[2] = {in0.data, in1.data};
    if (cnk_model_forward(&ctx, model, inputs, 2, CNK_MODE_INFER)) fail_msg("%s", cnk_error(&ctx));
    size_t offset = 0;
    for (int i = 0; i < arch.n_layers; i++) {
        cnk_shape shape;
        const float *out = cnk_model_layer_output(model, i, &shape);
        size_t n = 2 * (size_t)shape.c * shape.h * shape.w;
        assert_true(offset + n <= cnk_array_count(&layers));
        tu_assert_close(out, layers.data + offset, n, 1e-5, 1e-4, arch.layers[i].name);
        offset += n;
    }
    assert_int_equal(offset, cnk_array_count(&layers));
    cnk_array_release(&layers);

    /* Training mode: batch statistics in the BN layer and PyTorch's running-statistics update (momentum
     * 0.05, unbiased variance); layers at and after the dropout depend on its random mask. */
    cnk_array train_layers, train_buffers;
    load_npy("arch/all_kinds_train_layers.npy", &train_layers);
    load_npy("arch/all_kinds_train_buffers.npy", &train_buffers);
    if (cnk_model_forward(&ctx, model, inputs, 2, CNK_MODE_TRAIN)) fail_msg("%s", cnk_error(&ctx));
    offset = 0;
    for (int i = 0; i < cnk_arch_find(&arch, "drop"); i++) {
        cnk_shape shape;
        const float *out = cnk_model_layer_output(model, i, &shape);
        size_t n = 2 * (size_t)shape.c * shape.h * shape.w;
        tu_assert_close(out, train_layers.data + offset, n, 1e-5, 1e-4, arch.layers[i].name);
        offset += n;
    }
    tu_assert_close(cnk_model_buffers(model), train_buffers.data, arch.n_buffers, 1e-6, 1e-5, "running stats");
    cnk_array_release(&train_layers);
    cnk_array_release(&train_buffers);
    cnk_model_free(model);
    cnk_array_release(&params);
    cnk_array_release(&buffers);
    cnk_array_release(&in0);
    cnk_array_release(&in1);
    cnk_arch_release(&arch);
}

/* ---- parameter order ------------------------------------------------------------------------------------ */

static void test_tensor_specs_tile_the_flat_arrays(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_arch arch;
    assert_int_equal(cnk_cfg_read_file(&ctx, tu_fixture(path, sizeof path, "arch/all_kinds.cfg"), &arch), CNK_OK);
    size_t next_param = 0, next_buffer = 0;
    for (int i = 0; i < arch.n_layers; i++) {
        cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS];
        int n = cnk_arch_layer_tensors(&arch, i, specs);
        size_t layer_params = 0, layer_buffers = 0;
        for (int k = 0; k < n; k++) {
            size_t *next = specs[k].is_buffer ? &next_buffer : &next_param;
            assert_int_equal(specs[k].offset, *next); /* contiguous, in listed order */
            *next += specs[k].count;
            *(specs[k].is_buffer ? &layer_buffers : &layer_params) += specs[k].count;
        }
        assert_int_equal(layer_params, arch.layers[i].n_params);
        assert_int_equal(layer_buffers, arch.layers[i].n_buffers);
    }
    assert_int_equal(next_param, arch.n_params);
    assert_int_equal(next_buffer, arch.n_buffers);

    cnk_tensor_spec s[CNK_MAX_LAYER_TENSORS];
    /* conv c1: OIHW [6, 2, 3, 5] then bias [6]; fans as PyTorch computes them. */
    assert_int_equal(cnk_arch_layer_tensors(&arch, cnk_arch_find(&arch, "c1"), s), 2);
    assert_string_equal(s[0].suffix, "weight");
    assert_int_equal(s[0].ndim, 4);
    assert_int_equal(s[0].dims[0], 6);
    assert_int_equal(s[0].dims[1], 2);
    assert_int_equal(s[0].dims[2], 3);
    assert_int_equal(s[0].dims[3], 5);
    assert_int_equal(s[0].fan_in, 30);
    assert_int_equal(s[0].fan_out, 90);
    assert_int_equal(s[0].offset, 0);
    assert_string_equal(s[1].suffix, "bias");
    assert_int_equal(s[1].offset, 180);
    /* batchnorm: gamma, beta in the parameters; running stats in the buffers. */
    assert_int_equal(cnk_arch_layer_tensors(&arch, cnk_arch_find(&arch, "bn1"), s), 4);
    assert_int_equal(s[0].role, CNK_TENSOR_BN_GAMMA);
    assert_int_equal(s[0].offset, 186);
    assert_int_equal(s[1].role, CNK_TENSOR_BN_BETA);
    assert_int_equal(s[1].offset, 192);
    assert_true(s[2].is_buffer && s[2].role == CNK_TENSOR_BN_MEAN && s[2].offset == 0);
    assert_true(s[3].is_buffer && s[3].role == CNK_TENSOR_BN_VAR && s[3].offset == 6);
    /* depthwise without bias: [6, 1, 3, 3] only. */
    assert_int_equal(cnk_arch_layer_tensors(&arch, cnk_arch_find(&arch, "dw1"), s), 1);
    assert_int_equal(s[0].dims[1], 1);
    assert_int_equal(s[0].fan_in, 9);
    assert_int_equal(s[0].fan_out, 54);
    /* dense reading a 10x2x4 input flattened: [5, 80], no bias. */
    assert_int_equal(cnk_arch_layer_tensors(&arch, cnk_arch_find(&arch, "fc"), s), 1);
    assert_int_equal(s[0].ndim, 2);
    assert_int_equal(s[0].dims[0], 5);
    assert_int_equal(s[0].dims[1], 80);
    assert_int_equal(cnk_arch_layer_tensors(&arch, cnk_arch_find(&arch, "gap"), s), 0);
    cnk_arch_release(&arch);
}

/* ---- edits ---------------------------------------------------------------------------------------------- */

static void test_transfer_edits(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "mobilenet_v2", NULL, &arch), CNK_OK);
    int feature = cnk_arch_feature_layer(&arch);
    assert_string_equal(arch.layers[feature].name, "gap"); /* below the dropout */
    size_t before = arch.n_params;
    assert_int_equal(cnk_arch_set_classes(&ctx, &arch, 3), CNK_OK);
    assert_int_equal(arch.n_params, before - 1281 * 998);
    assert_int_equal(arch.layers[arch.outputs[0]].out.c, 3);
    cnk_arch_freeze_first(&arch, feature + 1);
    assert_int_equal(arch.n_trainable_params, 1280 * 3 + 3);
    assert_int_equal(cnk_arch_infer(&ctx, &arch), CNK_OK); /* re-inference keeps the freeze */
    assert_int_equal(arch.n_trainable_params, 1280 * 3 + 3);
    cnk_arch_release(&arch);

    cnk_builtin_opts o;
    cnk_builtin_opts_init(&o);
    o.n_classes = 5;
    assert_int_equal(cnk_builtin_arch(&ctx, "fusion", &o, &arch), CNK_OK);
    assert_string_equal(arch.layers[cnk_arch_feature_layer(&arch)].name, "concat");
    assert_int_equal(cnk_arch_set_classes(&ctx, &arch, 2), CNK_OK);
    for (int k = 0; k < 3; k++) assert_int_equal(arch.layers[arch.outputs[k]].out.c, 2);
    assert_int_equal(arch.n_input_layers, 2);
    assert_string_equal(arch.layers[arch.input_layers[1]].name, "wavelet");
    cnk_arch copy;
    assert_int_equal(cnk_arch_copy(&ctx, &copy, &arch), CNK_OK);
    cnk_arch_release(&arch);
    /* The fixture's 4 classes -> 2 on three heads reading 128, 128 and 256 features. */
    assert_int_equal(copy.n_params, 483276 - 2 * (129 + 129 + 257));
    cnk_arch_release(&copy);
}

/* ---- errors --------------------------------------------------------------------------------------------- */

static void expect_infer_error(cnk_arch *arch, const char *needle)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    int rc = cnk_arch_infer(&ctx, arch);
    assert_int_not_equal(rc, CNK_OK);
    if (!strstr(cnk_error(&ctx), needle)) fail_msg("error '%s' lacks '%s'", cnk_error(&ctx), needle);
    assert_null(strchr(cnk_error(&ctx), '\n'));
}

static void test_invalid_networks_are_refused(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    cnk_arch_init(&arch);
    expect_infer_error(&arch, "no layers");
    cnk_layer l;
    cnk_layer_init(&l, CNK_LAYER_DENSE);
    l.units = 4;
    assert_int_equal(cnk_arch_add(&ctx, &arch, &l, NULL), CNK_OK);
    expect_infer_error(&arch, "first layer must be an input");
    cnk_arch_release(&arch);

    cnk_arch_init(&arch);
    cnk_layer_init(&l, CNK_LAYER_INPUT);
    strcpy(l.name, "in");
    l.input_shape = (cnk_shape){1, 4, 4};
    assert_int_equal(cnk_arch_add(&ctx, &arch, &l, NULL), CNK_OK);
    assert_int_not_equal(cnk_arch_add(&ctx, &arch, &l, NULL), CNK_OK); /* duplicate name */
    assert_non_null(strstr(cnk_error(&ctx), "duplicate"));
    strcpy(l.name, "bad name");
    assert_int_not_equal(cnk_arch_add(&ctx, &arch, &l, NULL), CNK_OK);
    cnk_layer_init(&l, CNK_LAYER_CONV2D);
    strcpy(l.name, "big");
    l.filters = 2;
    l.window.kernel_h = l.window.kernel_w = 5;
    assert_int_equal(cnk_arch_add(&ctx, &arch, &l, NULL), CNK_OK);
    expect_infer_error(&arch, "layer 'big': a 5x5 window does not fit its 1x4x4 input");
    arch.layers[1].window.padding = CNK_PAD_SAME;
    assert_int_equal(cnk_arch_infer(&ctx, &arch), CNK_OK);
    assert_int_equal(arch.layers[1].window.pad_top, 2);
    /* add of different shapes */
    cnk_layer_init(&l, CNK_LAYER_ADD);
    l.n_inputs = 2;
    l.inputs[0] = 0;
    l.inputs[1] = 1;
    assert_int_equal(cnk_arch_add(&ctx, &arch, &l, NULL), CNK_OK);
    expect_infer_error(&arch, "add inputs have different shapes 1x4x4 and 2x4x4");
    arch.layers[2].kind = CNK_LAYER_CONCAT;
    assert_int_equal(cnk_arch_infer(&ctx, &arch), CNK_OK);
    assert_int_equal(arch.layers[2].out.c, 3);
    arch.layers[2].inputs[1] = 2; /* a layer cannot read itself */
    expect_infer_error(&arch, "inputs must be earlier layers");
    arch.layers[2].n_inputs = 1;
    expect_infer_error(&arch, "needs at least 2 inputs");
    arch.layers[2].kind = CNK_LAYER_BATCHNORM;
    arch.layers[2].eps = 0;
    arch.layers[2].inputs[0] = 1;
    expect_infer_error(&arch, "eps");
    arch.layers[0].input_shape.h = 0;
    expect_infer_error(&arch, "too large or not a valid CxHxW");
    cnk_arch_release(&arch);

    /* Absurd sizes are refused, not allocated. */
    cnk_builtin_opts o;
    cnk_builtin_opts_init(&o);
    o.input = (cnk_shape){3, 100000, 100000};
    assert_int_not_equal(cnk_builtin_arch(&ctx, "mlp", &o, &arch), CNK_OK);
    o.input = (cnk_shape){3, 16, 16};
    assert_int_equal(cnk_builtin_arch(&ctx, "mobilenet_v2", &o, &arch), CNK_OK); /* SAME keeps 1x1 going */
    assert_int_equal(arch.layers[cnk_arch_find(&arch, "conv_last")].out.h, 1);
    cnk_arch_release(&arch);
    assert_int_equal(cnk_builtin_arch(&ctx, "resnet", NULL, &arch), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "unknown architecture 'resnet'"));
}

/* ---- summary -------------------------------------------------------------------------------------------- */

static void test_summary_table(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "cnn", NULL, &arch), CNK_OK);
    char *text;
    assert_int_equal(cnk_summary_format(&ctx, &arch, "cnn", &text), CNK_OK);
    assert_non_null(strstr(text, "Total params: 242,602\n"));
    assert_non_null(strstr(text, "Trainable params: 241,898\n"));
    assert_non_null(strstr(text, "Non-trainable params: 704\n"));
    assert_non_null(strstr(text, "conv2                        conv2d                     64x64x64               18,432"));
    free(text);
    cnk_arch_release(&arch);
}

/* Runs `cnnkit summary` and checks its totals against the PyTorch fixture's. */
static void test_cli_summary(void **state)
{
    (void)state;
    char dir[4096], cmd_out[4200], cfg_out[4200];
    tu_tmpdir(dir, sizeof dir, "arch-cli");
    snprintf(cmd_out, sizeof cmd_out, "%s/out.txt", dir);
    snprintf(cfg_out, sizeof cfg_out, "%s/net.cfg", dir);
    const char *bin = tu_cnnkit_bin();
    int rc = tu_system("'%s' summary mobilenet_v2 --classes 1001 --folded-bn --write-cfg '%s' > '%s'", bin, cfg_out,
                       cmd_out);
    assert_int_equal(rc, 0);
    FILE *fp = fopen(cmd_out, "r");
    assert_non_null(fp);
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, fp))
        if (strcmp(line, "Total params: 3,489,097\n") == 0) found = 1; /* PyTorch: 3489097 params, 0 buffers */
    fclose(fp);
    assert_true(found);
    /* The written cfg summarises the same. */
    assert_int_equal(tu_system("'%s' summary '%s' | grep -q '^Total params: 3,489,097$'", bin, cfg_out), 0);
    /* Usage errors exit 2, invalid files 3. */
    assert_int_equal(tu_system("'%s' summary nosuchnet 2>/dev/null", bin), 2);
    assert_int_equal(tu_system("'%s' summary cnn --input 1x2 2>/dev/null", bin), 2);
    assert_int_equal(tu_system("'%s' summary cnn --bogus 2>/dev/null", bin), 2);
    assert_int_equal(tu_system("'%s' summary mobilenet_v2 --input 3x0x4 2>/dev/null", bin), 2);
    assert_int_equal(tu_system("printf '[input]\\nshape = 1x4x4\\n[conv2d]\\nfilters = 1\\nsize = 9\\n' > '%s'", cfg_out), 0);
    assert_int_equal(tu_system("'%s' summary '%s' 2>'%s'", bin, cfg_out, cmd_out), 3);
    fp = fopen(cmd_out, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_non_null(strstr(line, "net.cfg:3: layer 'conv2d1': a 9x9 window does not fit its 1x4x4 input"));
    assert_int_equal(tu_system("'%s' summary --help >/dev/null", bin), 0);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_arithmetic),
        cmocka_unit_test(test_builtins_match_pytorch),
        cmocka_unit_test(test_hand_written_cfg_matches_pytorch),
        cmocka_unit_test(test_builtins_match_keras_totals),
        cmocka_unit_test(test_make_divisible),
        cmocka_unit_test(test_mobilenet_v2_topology),
        cmocka_unit_test(test_tensor_specs_tile_the_flat_arrays),
        cmocka_unit_test(test_forward_matches_cnk_torch),
        cmocka_unit_test(test_transfer_edits),
        cmocka_unit_test(test_invalid_networks_are_refused),
        cmocka_unit_test(test_summary_table),
        cmocka_unit_test(test_cli_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
