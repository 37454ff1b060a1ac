/* Tests for nn/import: the MobileNet and YAMNet files map onto the built-in folded-BN mobilenets, cnnkit's own
 * model then gives the same logits as the naive NHWC interpreter of the file (tests/tflite_interp.h) and
 * the weights README's top-1 labels; .cnk round trip; labels; clear errors for graphs that do not fit.
 * test-libs: core nn features */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/cfg.h"
#include "nn/import.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/tflite.h"
#include "tflite_interp.h"
#include "tflite_photos.h"

#define V2_PATH "weights/mobilenet_v2_1.0_224/mobilenet_v2_1.0_224_quant.tflite"
#define V1_PATH "weights/mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_quant.tflite"
#define YAMNET_PATH "weights/yamnet/yamnet.tflite"
#define LABELS_PATH "weights/imagenet-test-photos/imagenet_labels.txt"

static void read_graph(const char *rel, cnk_tfl_graph *g)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    if (cnk_tflite_read(&ctx, tu_shared(path, sizeof path, rel), g)) fail_msg("%s", cnk_error(&ctx));
}

static void import_graph(const cnk_tfl_graph *g, cnk_arch *arch, float **params, cnk_import_info *info)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    if (cnk_import_graph(&ctx, "test.tflite", g, arch, params, info)) fail_msg("%s", cnk_error(&ctx));
}

static cnk_model *make_model(const cnk_arch *arch, const float *params)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_model *m;
    if (cnk_model_create(&ctx, arch, 1, &m)) fail_msg("%s", cnk_error(&ctx));
    memcpy(cnk_model_params(m), params, arch->n_params * sizeof *params);
    return m;
}

/* NHWC (1 sample) -> NCHW. */
static float *to_nchw(const float *nhwc, int c, int h, int w)
{
    float *out = malloc((size_t)c * h * w * sizeof *out);
    assert_non_null(out);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) out[((size_t)k * h + y) * w + x] = nhwc[((size_t)y * w + x) * c + k];
    return out;
}

/* Runs both the interpreter (on the file's graph) and cnnkit's model on one NHWC input; compares logits. */
static int compare_on_input(const cnk_tfl_graph *g, const cnk_import_info *info, cnk_model *m, const float *nhwc,
                            const char *what)
{
    int input_tensor = info->first_op == 0 ? g->inputs[0] : g->ops[info->first_op].inputs[0];
    ti_run run = {0};
    if (ti_run_graph(&run, g, input_tensor, nhwc, info->first_op, g->n_ops) != 0) fail_msg("interpreter failed");
    const float *expected = run.values[info->logits_tensor];
    float *nchw = to_nchw(nhwc, info->input.c, info->input.h, info->input.w);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    const float *inputs[] = {nchw};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cnk_model_forward(&ctx, m, inputs, 1, CNK_MODE_INFER)) fail_msg("%s", cnk_error(&ctx));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = 1e3 * (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_nsec - t0.tv_nsec);
    int units;
    const float *logits = cnk_model_output(m, 0, &units);
    assert_int_equal(units, info->n_classes);
    size_t where;
    double diff = tu_max_abs_diff(logits, expected, (size_t)units, &where);
    print_message("%s: max |cnnkit - interpreter| logit difference %.2e (at %zu, logit %.3f); cnnkit forward %.1f ms "
                  "(1 thread)\n", what, diff, where, expected[where], ms);
    tu_assert_close(logits, expected, (size_t)units, 1e-3, 1e-4, what);
    int top = tp_argmax(logits, units);
    assert_int_equal(top, tp_argmax(expected, units));
    ti_release(&run);
    free(nchw);
    return top;
}

static void test_mobilenet_v2_import_matches_interpreter_and_readme(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(V2_PATH, &g);
    cnk_arch arch;
    float *params;
    cnk_import_info info;
    import_graph(&g, &arch, &params, &info);
    assert_int_equal(info.kind, CNK_IMPORT_MOBILENET_V2);
    assert_string_equal(info.arch_name, "mobilenet_v2");
    assert_float_equal(info.width, 1.0, 0);
    assert_int_equal(info.n_classes, 1001);
    assert_int_equal(info.input.c, 3);
    assert_int_equal(info.input.h, 224);
    assert_int_equal(info.sigmoid_output, 0);
    /* Keras' MobileNetV2 1.0/224 has 3,538,984 parameters, 34,112 of them non-trainable (BN means and
     * variances of 17,056 channels) and a 1000-class head. Folding removes the 4 BN tensors per channel and
     * adds one bias; the 1001st class adds 1280 weights and a bias. */
    assert_int_equal(arch.n_params, 3538984 - 4 * 17056 + 17056 + 1281);
    assert_int_equal(arch.n_buffers, 0);
    /* The layout conversion: conv1's weight [32, 3, 3, 3] OIHW element (o=5, i=2, ky=1, kx=0) is the file's
     * OHWI element (5, 1, 0, 2). */
    const cnk_tfl_tensor *w = &g.tensors[g.ops[0].inputs[1]];
    int conv1 = cnk_arch_find(&arch, "conv1");
    cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS];
    assert_int_equal(cnk_arch_layer_tensors(&arch, conv1, specs), 2);
    assert_float_equal(params[specs[0].offset + ((5 * 3 + 2) * 3 + 1) * 3 + 0], w->data[((5 * 3 + 1) * 3 + 0) * 3 + 2], 0);
    int block0_dw = cnk_arch_find(&arch, "block0_dw");
    assert_int_equal(arch.layers[block0_dw].activation.kind, CNK_ACT_RELU6);
    assert_int_equal(arch.layers[cnk_arch_find(&arch, "block0_project")].activation.kind, CNK_ACT_LINEAR);

    cnk_model *m = make_model(&arch, params);
    char path[4096], labels[4096], label[256], rel[256];
    tu_shared(labels, sizeof labels, LABELS_PATH);
    int n = tu_sanitized() ? 1 : TP_N_PHOTOS;
    for (int i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, "weights/imagenet-test-photos/%s", tp_photos[i].file);
        float *nhwc = tp_load(tu_shared(path, sizeof path, rel), 224, 0);
        assert_non_null(nhwc);
        int top = compare_on_input(&g, &info, m, nhwc, tp_photos[i].file);
        assert_int_equal(tp_label(labels, top, label, sizeof label), 0);
        assert_string_equal(label, tp_photos[i].top1);
        free(nhwc);
    }
    cnk_model_free(m);
    free(params);
    cnk_arch_release(&arch);
    cnk_tflite_release(&g);
}

static void test_mobilenet_v1_quarter_width(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(V1_PATH, &g);
    cnk_arch arch;
    float *params;
    cnk_import_info info;
    import_graph(&g, &arch, &params, &info);
    assert_int_equal(info.kind, CNK_IMPORT_MOBILENET_V1);
    assert_float_equal(info.width, 0.25, 0);
    assert_int_equal(info.input.h, 128);
    assert_int_equal(arch.layers[cnk_arch_find(&arch, "block13_pw")].filters, 256);
    cnk_model *m = make_model(&arch, params);
    char path[4096];
    float *nhwc = tp_load(tu_shared(path, sizeof path, "weights/imagenet-test-photos/parrot.jpg"), 128, 0);
    assert_non_null(nhwc);
    int top = compare_on_input(&g, &info, m, nhwc, "v1 parrot.jpg");
    assert_int_equal(top, 89); /* macaw, as the interpreter test found */
    free(nhwc);
    cnk_model_free(m);
    free(params);
    cnk_arch_release(&arch);
    cnk_tflite_release(&g);
}

static void test_yamnet_cnn_import(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(YAMNET_PATH, &g);
    cnk_arch arch;
    float *params;
    cnk_import_info info;
    import_graph(&g, &arch, &params, &info);
    assert_int_equal(info.kind, CNK_IMPORT_YAMNET);
    assert_int_equal(info.first_op, 19);
    assert_int_equal(info.input.c, 1);
    assert_int_equal(info.input.h, 96);
    assert_int_equal(info.input.w, 64);
    assert_int_equal(info.n_classes, 521);
    assert_int_equal(info.sigmoid_output, 1);
    assert_float_equal(info.width, 1.0, 0);
    /* YAMNet uses plain ReLU where the MobileNets use ReLU6: the import carries the file's activation over. */
    assert_int_equal(arch.layers[cnk_arch_find(&arch, "block13_pw")].activation.kind, CNK_ACT_RELU);
    assert_int_equal(arch.layers[cnk_arch_find(&arch, "logits")].units, 521);
    /* A log-mel-like patch (values around log(0.001..10)) with structure in time and frequency. */
    float *patch = malloc(96 * 64 * sizeof *patch);
    assert_non_null(patch);
    for (int t = 0; t < 96; t++)
        for (int f = 0; f < 64; f++) patch[t * 64 + f] = (float)(-3.0 + 2.5 * sin(0.3 * t) * cos(0.2 * f) - 0.04 * f);
    cnk_model *m = make_model(&arch, params);
    compare_on_input(&g, &info, m, patch, "yamnet synthetic patch");
    free(patch);
    cnk_model_free(m);
    free(params);
    cnk_arch_release(&arch);
    cnk_tflite_release(&g);
}

static void test_import_writes_a_cnk_with_class_names(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char tflite[4096], dir[4096], out[4200];
    tu_shared(tflite, sizeof tflite, V2_PATH);
    cnk_modelfile mf, back;
    cnk_import_info info;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cnk_import_tflite(&ctx, tflite, NULL, &mf, &info)) fail_msg("%s", cnk_error(&ctx));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    print_message("import of MobileNetV2 1.0/224 (parse, dequantise, map): %.3f s\n", seconds);
    if (!tu_sanitized()) assert_true(seconds < 1.0);
    /* Labels come from imagenet_labels.txt beside the file: text up to the first comma, made unique. */
    assert_int_equal(mf.n_classes, 1001);
    assert_string_equal(mf.class_names[0], "background");
    assert_string_equal(mf.class_names[1], "tench");
    assert_string_equal(mf.class_names[286], "Egyptian cat");
    assert_string_equal(mf.class_names[135], "crane");      /* the bird */
    assert_string_equal(mf.class_names[518], "crane (2)");  /* the machine */
    tu_tmpdir(dir, sizeof dir, "import");
    snprintf(out, sizeof out, "%s/v2.cnk", dir);
    assert_int_equal(cnk_modelfile_write(&ctx, out, &mf), CNK_OK);
    assert_int_equal(cnk_modelfile_read(&ctx, out, &back), CNK_OK);
    assert_int_equal(back.n_params, mf.n_params);
    assert_memory_equal(back.params, mf.params, mf.n_params * sizeof(float));
    assert_string_equal(back.class_names[1000], mf.class_names[1000]);
    cnk_arch arch;
    assert_int_equal(cnk_modelfile_arch(&ctx, &back, &arch), CNK_OK);
    assert_int_equal(arch.n_params, mf.n_params);
    cnk_arch_release(&arch);
    cnk_modelfile_release(&back);
    cnk_modelfile_release(&mf);
    /* YAMNet's class map CSV (quoted display names with commas). */
    tu_shared(tflite, sizeof tflite, YAMNET_PATH);
    if (cnk_import_tflite(&ctx, tflite, NULL, &mf, &info)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(mf.n_classes, 521);
    assert_string_equal(mf.class_names[0], "Speech");
    assert_string_equal(mf.class_names[1], "Child speech, kid speaking");
    cnk_modelfile_release(&mf);
    tu_rmtree(dir);
}

static void test_labels_must_match_the_class_count(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char labels[4096];
    char **names;
    tu_shared(labels, sizeof labels, LABELS_PATH);
    assert_int_equal(cnk_import_read_labels(&ctx, labels, 521, &names), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "1001 class names, the model has 521 classes"));
    char tflite[4096], yamnet_map[4096];
    tu_shared(tflite, sizeof tflite, YAMNET_PATH);
    assert_int_equal(cnk_import_default_labels(tflite, yamnet_map, sizeof yamnet_map), 1);
    assert_non_null(strstr(yamnet_map, "yamnet_class_map.csv"));
    assert_int_equal(cnk_import_default_labels("/nonexistent/x.tflite", yamnet_map, sizeof yamnet_map), 0);
    cnk_modelfile mf;
    cnk_import_info info;
    assert_int_equal(cnk_import_tflite(&ctx, tflite, labels, &mf, &info), CNK_ERR_INPUT);
    assert_null(mf.params);
}

/* A copy of src (sharing its tensors' names and data) with a PAD op inserted before op `before`, which then
 * reads the padded tensor with VALID padding: how Keras-converted files pad. Free with free_surgery. */
static void insert_pad(const cnk_tfl_graph *src, int before, float *amounts, cnk_tfl_graph *dst)
{
    *dst = *src;
    dst->tensors = malloc(((size_t)src->n_tensors + 2) * sizeof *dst->tensors);
    dst->ops = malloc(((size_t)src->n_ops + 1) * sizeof *dst->ops);
    assert_true(dst->tensors && dst->ops);
    memcpy(dst->tensors, src->tensors, (size_t)src->n_tensors * sizeof *dst->tensors);
    int padded = src->n_tensors, amounts_tensor = src->n_tensors + 1;
    cnk_tfl_tensor *p = &dst->tensors[padded], *a = &dst->tensors[amounts_tensor];
    *p = src->tensors[src->ops[before].inputs[0]];
    p->name = (char *)"padded";
    p->shape[1] += (int)(amounts[2] + amounts[3]);
    p->shape[2] += (int)(amounts[4] + amounts[5]);
    p->count = (size_t)p->shape[0] * p->shape[1] * p->shape[2] * p->shape[3];
    memset(a, 0, sizeof *a);
    a->name = (char *)"amounts";
    a->type = CNK_TFL_INT32;
    a->ndim = 2;
    a->shape[0] = 4;
    a->shape[1] = 2;
    a->count = 8;
    a->data = amounts;
    dst->n_tensors += 2;
    memcpy(dst->ops, src->ops, (size_t)before * sizeof *dst->ops);
    cnk_tfl_op *pad = &dst->ops[before];
    memset(pad, 0, sizeof *pad);
    pad->code = CNK_TFL_PAD;
    snprintf(pad->name, sizeof pad->name, "PAD");
    pad->n_inputs = 2;
    pad->inputs[0] = src->ops[before].inputs[0];
    pad->inputs[1] = amounts_tensor;
    pad->n_outputs = 1;
    pad->outputs[0] = padded;
    memcpy(dst->ops + before + 1, src->ops + before, (size_t)(src->n_ops - before) * sizeof *dst->ops);
    dst->ops[before + 1].inputs[0] = padded;
    dst->ops[before + 1].padding = CNK_TFL_PAD_VALID;
    dst->n_ops++;
}

static void free_surgery(cnk_tfl_graph *g)
{
    free(g->tensors);
    free(g->ops);
}

static void test_explicit_pad_before_a_valid_conv(void **state)
{
    (void)state;
    cnk_tfl_graph g, padded;
    read_graph(V1_PATH, &g);
    /* Op 3 is a 3x3 stride-2 SAME depthwise conv on 64x64: SAME pads 0 before and 1 after. */
    assert_int_equal(g.ops[3].code, CNK_TFL_DEPTHWISE_CONV_2D);
    assert_int_equal(g.ops[3].stride_h, 2);
    float same_amounts[8] = {0, 0, 0, 1, 0, 1, 0, 0};
    insert_pad(&g, 3, same_amounts, &padded);
    cnk_arch arch;
    float *params;
    cnk_import_info info;
    import_graph(&padded, &arch, &params, &info);
    cnk_model *m = make_model(&arch, params);
    char path[4096];
    float *nhwc = tp_load(tu_shared(path, sizeof path, "weights/imagenet-test-photos/cat.bmp"), 128, 0);
    assert_non_null(nhwc);
    /* The interpreter runs the PAD and the VALID conv literally; cnnkit its SAME conv. */
    compare_on_input(&padded, &info, m, nhwc, "v1 with an explicit PAD");
    free(nhwc);
    cnk_model_free(m);
    free(params);
    cnk_arch_release(&arch);
    free_surgery(&padded);
    /* Symmetric padding is not what the built-in network does: refused, naming the PAD. */
    float symmetric[8] = {0, 0, 1, 1, 1, 1, 0, 0};
    insert_pad(&g, 3, symmetric, &padded);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_import_graph(&ctx, "pad.tflite", &padded, &arch, &params, &info), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "pad.tflite: layer 3 (PAD) is not the SAME padding"));
    free_surgery(&padded);
    /* A pool that is not global. */
    g.ops[27].filter_h = 2;
    assert_int_equal(cnk_import_graph(&ctx, "pool.tflite", &g, &arch, &params, &info), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "layer 27 (AVERAGE_POOL_2D) is not a global average"));
    cnk_tflite_release(&g);
}

static void test_graphs_that_do_not_fit_fail_clearly(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(V1_PATH, &g);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    float *params;
    cnk_import_info info;
    /* An op cnnkit does not import. */
    int saved = g.ops[27].code;
    g.ops[27].code = CNK_TFL_MAX_POOL_2D;
    snprintf(g.ops[27].name, sizeof g.ops[27].name, "MAX_POOL_2D");
    assert_int_equal(cnk_import_graph(&ctx, "v1.tflite", &g, &arch, &params, &info), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "v1.tflite: unsupported op MAX_POOL_2D in layer 27"));
    assert_null(params);
    g.ops[27].code = saved;
    snprintf(g.ops[27].name, sizeof g.ops[27].name, "AVERAGE_POOL_2D");
    /* A stride the built-in network does not have. */
    g.ops[3].stride_h = 1;
    assert_int_equal(cnk_import_graph(&ctx, "v1.tflite", &g, &arch, &params, &info), CNK_ERR_UNSUPPORTED);
    print_message("%s\n", cnk_error(&ctx));
    assert_non_null(strstr(cnk_error(&ctx), "layer 3 (DEPTHWISE_CONV_2D) does not fit layer 'block2_dw'"));
    assert_null(strchr(cnk_error(&ctx), '\n'));
    assert_null(params);
    assert_int_equal(arch.n_layers, 0);
    cnk_tflite_release(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mobilenet_v2_import_matches_interpreter_and_readme),
        cmocka_unit_test(test_mobilenet_v1_quarter_width),
        cmocka_unit_test(test_yamnet_cnn_import),
        cmocka_unit_test(test_import_writes_a_cnk_with_class_names),
        cmocka_unit_test(test_labels_must_match_the_class_count),
        cmocka_unit_test(test_explicit_pad_before_a_valid_conv),
        cmocka_unit_test(test_graphs_that_do_not_fit_fail_clearly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
