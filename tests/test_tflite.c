/* Tests for nn/tflite: the real MobileNet and YAMNet files parse into the expected graphs, dequantisation
 * follows the stored scales, a naive float run of the dequantised MobileNetV2 gives the weights README's
 * top-1 labels, and damaged files fail with one-line errors instead of crashing.
 * test-libs: core nn features */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/rng.h"
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
    int rc = cnk_tflite_read(&ctx, tu_shared(path, sizeof path, rel), g);
    if (rc) fail_msg("%s", cnk_error(&ctx));
}

/* Every dequantised value of a per-tensor quantised constant must sit on its grid: v/scale + zero_point
 * is an integer within the stored type's range. */
static void assert_on_grid(const cnk_tfl_tensor *t, double lo, double hi)
{
    assert_true(t->quantized);
    for (size_t i = 0; i < t->count; i++) {
        double q = t->data[i] / t->scale + (double)t->zero_point;
        if (fabs(q - nearbyint(q)) > 1e-3 || q < lo - 1e-3 || q > hi + 1e-3)
            fail_msg("%s[%zu] = %g is not on its uint8 grid (q = %f)", t->name, i, t->data[i], q);
    }
}

static void test_mobilenet_v2_graph(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(V2_PATH, &g);
    assert_int_equal(g.n_tensors, 174);
    assert_int_equal(g.n_ops, 66);
    const cnk_tfl_tensor *in = &g.tensors[g.inputs[0]];
    assert_string_equal(in->name, "input");
    assert_int_equal(in->type, CNK_TFL_UINT8);
    assert_int_equal(in->ndim, 4);
    assert_int_equal(in->shape[1], 224);
    assert_int_equal(in->shape[3], 3);
    assert_float_equal(in->scale, 0.0078125, 1e-9);
    assert_int_equal(in->zero_point, 128);
    assert_null(in->data);
    /* The first op: 3x3 stride-2 SAME conv 3 -> 32 with RELU6; OHWI weights on the uint8 grid. */
    const cnk_tfl_op *conv = &g.ops[0];
    assert_int_equal(conv->code, CNK_TFL_CONV_2D);
    assert_string_equal(conv->name, "CONV_2D");
    assert_int_equal(conv->padding, CNK_TFL_PAD_SAME);
    assert_int_equal(conv->stride_h, 2);
    assert_int_equal(conv->stride_w, 2);
    assert_int_equal(conv->activation, CNK_TFL_ACT_RELU6);
    const cnk_tfl_tensor *w = &g.tensors[conv->inputs[1]], *b = &g.tensors[conv->inputs[2]];
    assert_int_equal(w->shape[0], 32);
    assert_int_equal(w->shape[3], 3);
    assert_int_equal(w->type, CNK_TFL_UINT8);
    assert_on_grid(w, 0, 255);
    /* int32 bias: zero point 0 and scale = input scale * weight scale (the TFLite convention). */
    assert_int_equal(b->type, CNK_TFL_INT32);
    assert_float_equal(b->scale, in->scale * w->scale, 1e-6 * b->scale);
    assert_on_grid(b, -2147483648.0, 2147483647.0);
    /* The head: 7x7 VALID average pool, 1x1 conv to 1001, reshape, softmax. */
    assert_int_equal(g.ops[62].code, CNK_TFL_AVERAGE_POOL_2D);
    assert_int_equal(g.ops[62].padding, CNK_TFL_PAD_VALID);
    assert_int_equal(g.ops[62].filter_h, 7);
    assert_int_equal(g.ops[65].code, CNK_TFL_SOFTMAX);
    assert_float_equal(g.ops[65].beta, 1.0, 1e-9);
    assert_int_equal(g.tensors[g.outputs[0]].shape[1], 1001);
    int adds = 0, depthwise = 0;
    for (int i = 0; i < g.n_ops; i++) {
        adds += g.ops[i].code == CNK_TFL_ADD;
        depthwise += g.ops[i].code == CNK_TFL_DEPTHWISE_CONV_2D;
    }
    assert_int_equal(adds, 10);      /* MobileNetV2's residual blocks */
    assert_int_equal(depthwise, 17); /* one per inverted-residual block */
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_tflite_check_ops(&ctx, "v2", &g, 0, g.n_ops), CNK_OK);
    cnk_tflite_release(&g);
}

static void test_yamnet_graph_and_per_channel_int8(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(YAMNET_PATH, &g);
    assert_int_equal(g.n_ops, 49);
    assert_int_equal(g.n_outputs, 2);
    assert_int_equal(g.tensors[g.inputs[0]].shape[1], 15600);
    /* The CNN starts at the first CONV_2D, on the [1, 96, 64, 1] log-mel patch. */
    int first_conv = -1;
    for (int i = 0; i < g.n_ops && first_conv < 0; i++)
        if (g.ops[i].code == CNK_TFL_CONV_2D) first_conv = i;
    assert_int_equal(first_conv, 19);
    const cnk_tfl_tensor *patch = &g.tensors[g.ops[first_conv].inputs[0]];
    assert_int_equal(patch->shape[1], 96);
    assert_int_equal(patch->shape[2], 64);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_tflite_check_ops(&ctx, "yamnet.tflite", &g, first_conv, g.n_ops), CNK_OK);
    /* The front end uses ops a CNN import does not: the error names the op and the layer. */
    assert_int_equal(cnk_tflite_check_ops(&ctx, "yamnet.tflite", &g, 0, g.n_ops), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "yamnet.tflite: unsupported op SLICE in layer 1"));
    assert_null(strchr(cnk_error(&ctx), '\n'));
    /* This file's int8 weights are symmetric with one scale per tensor (zero point 0): every value is an
     * integer multiple of the scale in [-127, 127], and the largest magnitude is stored as 127. */
    int int8_tensors = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        const cnk_tfl_tensor *w = &g.tensors[i];
        if (!w->data || w->type != CNK_TFL_INT8) continue;
        int8_tensors++;
        assert_int_equal(w->zero_point, 0);
        assert_int_equal(w->n_scales, 1);
        assert_on_grid(w, -127, 127);
        float amax = 0;
        for (size_t k = 0; k < w->count; k++) amax = fabsf(w->data[k]) > amax ? fabsf(w->data[k]) : amax;
        assert_float_equal(amax / w->scale, 127.0, 1e-3);
    }
    assert_int_equal(int8_tensors, 28); /* all int8 constants of the file (counted once by hand) */
    /* The mel matrix the front end multiplies by: 257 FFT bins -> 64 mel bands, DC excluded. */
    const cnk_tfl_tensor *mel = &g.tensors[g.ops[13].inputs[1]];
    assert_int_equal(mel->shape[0], 64);
    assert_int_equal(mel->shape[1], 257);
    cnk_tflite_release(&g);
}

/* Runs the MobileNet graph in float on photo i; returns the argmax of the softmax. */
static int run_photo(const cnk_tfl_graph *g, const char *file, int size, float *probs_out)
{
    char path[4096], rel[256];
    snprintf(rel, sizeof rel, "weights/imagenet-test-photos/%s", file);
    float *input = tp_load(tu_shared(path, sizeof path, rel), size, 0);
    if (!input) fail_msg("cannot load %s", path);
    ti_run run = {0};
    if (ti_run_graph(&run, g, g->inputs[0], input, 0, g->n_ops) != 0) fail_msg("interpreter failed");
    const float *probs = run.values[g->outputs[0]];
    int top = tp_argmax(probs, 1001);
    if (probs_out) memcpy(probs_out, probs, 1001 * sizeof *probs);
    ti_release(&run);
    free(input);
    return top;
}

static void test_mobilenet_v2_float_run_gives_readme_labels(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(V2_PATH, &g);
    char labels[4096], label[256];
    tu_shared(labels, sizeof labels, LABELS_PATH);
    int n = tu_sanitized() ? 1 : TP_N_PHOTOS;
    float probs[1001];
    for (int i = 0; i < n; i++) {
        int top = run_photo(&g, tp_photos[i].file, 224, probs);
        assert_int_equal(tp_label(labels, top, label, sizeof label), 0);
        print_message("mobilenet_v2 %-17s -> %s (%.3f)\n", tp_photos[i].file, label, probs[top]);
        assert_string_equal(label, tp_photos[i].top1);
    }
    cnk_tflite_release(&g);
}

static void test_mobilenet_v1_float_run_top5(void **state)
{
    (void)state;
    cnk_tfl_graph g;
    read_graph(V1_PATH, &g);
    char labels[4096], label[256];
    tu_shared(labels, sizeof labels, LABELS_PATH);
    float probs[1001];
    int n = tu_sanitized() ? 1 : TP_N_PHOTOS, in_top5 = 0;
    for (int i = 0; i < n; i++) {
        run_photo(&g, tp_photos[i].file, 128, probs);
        char line[1024] = "";
        int hit = 0;
        for (int k = 0; k < 5; k++) {
            int top = tp_argmax(probs, 1001);
            assert_int_equal(tp_label(labels, top, label, sizeof label), 0);
            size_t used = strlen(line);
            snprintf(line + used, sizeof line - used, "%s%s (%.2f)", k ? "; " : "", label, probs[top]);
            hit |= strcmp(label, tp_photos[i].top1) == 0;
            probs[top] = -1;
        }
        print_message("mobilenet_v1_0.25 %-17s -> %s\n", tp_photos[i].file, line);
        in_top5 += hit;
    }
    /* A 0.25-width 128-pixel net is weak (41% top-1 on ImageNet), but the big network's label should be
     * among its top 5 for most photos. */
    assert_true(in_top5 >= (n * 4 + 6) / 7);
    cnk_tflite_release(&g);
}

/* ---- a tiny hand-built model: per-channel int8, and a custom op --------------------------------------- */

/* A forward-only flatbuffer writer, just enough for a one-op model: vtables before their tables, children
 * after their parents (uoffsets point forward), every table field in a 4-byte slot. */
typedef struct fbw {
    unsigned char buf[4096];
    size_t len;
} fbw;

static size_t fbw_put(fbw *b, const void *data, size_t n)
{
    assert_true(b->len + n <= sizeof b->buf);
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    return b->len - n;
}

static size_t fbw_u32(fbw *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    return fbw_put(b, p, 4);
}

static void fbw_align(fbw *b, size_t a)
{
    while (b->len % a) b->buf[b->len++] = 0;
}

/* A table whose fields [0, n) are present when present[i]; values[i] is the scalar (offset fields are
 * patched later with fbw_link). field_at[i] receives where each field sits. */
static size_t fbw_table(fbw *b, int n, const int *present, const uint32_t *values, size_t *field_at)
{
    fbw_align(b, 4);
    int n_present = 0;
    for (int i = 0; i < n; i++) n_present += present[i] != 0;
    size_t vt_size = 4 + 2 * (size_t)n, vtable = b->len;
    unsigned char vt[64] = {0};
    vt[0] = (unsigned char)vt_size;
    vt[2] = (unsigned char)(4 + 4 * n_present);
    for (int i = 0, slot = 0; i < n; i++)
        if (present[i]) vt[4 + 2 * i] = (unsigned char)(4 + 4 * slot++);
    fbw_put(b, vt, vt_size);
    fbw_align(b, 4);
    size_t table = fbw_u32(b, (uint32_t)(b->len - vtable)); /* soffset: the vtable is before the table */
    for (int i = 0; i < n; i++)
        if (present[i]) field_at[i] = fbw_u32(b, values[i]);
    return table;
}

static void fbw_link(fbw *b, size_t field_at, size_t target)
{
    uint32_t rel = (uint32_t)(target - field_at);
    for (int i = 0; i < 4; i++) b->buf[field_at + i] = (unsigned char)(rel >> (8 * i));
}

/* A vector of n elements of elem bytes; returns where its length word is (what offsets point at). */
static size_t fbw_vector(fbw *b, const void *data, size_t n, size_t elem)
{
    fbw_align(b, 4);
    size_t at = fbw_u32(b, (uint32_t)n);
    fbw_put(b, data, n * elem);
    return at;
}

/* A string: its length excludes the NUL that follows it. */
static size_t fbw_string(fbw *b, const char *text)
{
    size_t at = fbw_vector(b, text, strlen(text), 1);
    fbw_put(b, "", 1);
    return at;
}

/* Builds: input [1,1,1,2] float -> CONV_2D (1x1, VALID, RELU) with int8 weights [3,1,1,2] quantised per
 * output channel (scales 0.5, 0.25, 2) and an int32 bias (scales 0.1, 0.2, 0.3) -> output [1,1,1,3]; plus an
 * unused int8 tensor [1,1,2,3] quantised along dimension 3. builtin = 32 makes the op CUSTOM(custom). */
static size_t build_tiny_model(fbw *b, int builtin, const char *custom, uint32_t stride)
{
    memset(b, 0, sizeof *b);
    size_t at[8], root_at = fbw_u32(b, 0);
    fbw_put(b, "TFL3", 4);
    /* Model: version, operator_codes, subgraphs, description, buffers */
    size_t model = fbw_table(b, 5, (int[]){1, 1, 1, 0, 1}, (uint32_t[]){3, 0, 0, 0, 0}, at);
    size_t model_codes = at[1], model_subgraphs = at[2], model_buffers = at[4];
    fbw_link(b, root_at, model);
    /* operator_codes: one OperatorCode {deprecated_builtin_code, custom_code, version, builtin_code} */
    size_t codes = fbw_vector(b, (uint32_t[]){0}, 1, 4);
    fbw_link(b, model_codes, codes);
    int has_custom = custom != NULL;
    size_t code = fbw_table(b, 4, (int[]){1, has_custom, 1, 1}, (uint32_t[]){(uint32_t)builtin, 0, 1, (uint32_t)builtin}, at);
    fbw_link(b, codes + 4, code);
    if (has_custom) fbw_link(b, at[1], fbw_string(b, custom));
    /* buffers: 0 empty, 1 weights, 2 bias, 3 the extra tensor */
    size_t buffers = fbw_vector(b, (uint32_t[]){0, 0, 0, 0}, 4, 4);
    fbw_link(b, model_buffers, buffers);
    const signed char weights[6] = {2, -4, 8, 1, -1, 3};
    const int32_t bias[3] = {10, -5, 1};
    const signed char extra[6] = {1, 2, 3, -1, -2, -3};
    const void *datas[4] = {NULL, weights, bias, extra};
    size_t sizes[4] = {0, 6, 12, 6};
    for (int i = 0; i < 4; i++) {
        size_t buffer = fbw_table(b, 1, (int[]){i != 0}, (uint32_t[]){0}, at);
        fbw_link(b, buffers + 4 + 4 * (size_t)i, buffer);
        if (i) fbw_link(b, at[0], fbw_vector(b, datas[i], sizes[i], 1));
    }
    /* subgraph: tensors, inputs, outputs, operators */
    size_t subgraphs = fbw_vector(b, (uint32_t[]){0}, 1, 4);
    fbw_link(b, model_subgraphs, subgraphs);
    size_t sg = fbw_table(b, 4, (int[]){1, 1, 1, 1}, (uint32_t[]){0, 0, 0, 0}, at);
    fbw_link(b, subgraphs + 4, sg);
    size_t sg_fields[4] = {at[0], at[1], at[2], at[3]};
    fbw_link(b, sg_fields[1], fbw_vector(b, (int32_t[]){0}, 1, 4));
    fbw_link(b, sg_fields[2], fbw_vector(b, (int32_t[]){3}, 1, 4));
    /* tensors: {shape, type, buffer, name, quantization} */
    static const int32_t shapes[5][4] = {{1, 1, 1, 2}, {3, 1, 1, 2}, {3}, {1, 1, 1, 3}, {1, 1, 2, 3}};
    static const int ndims[5] = {4, 4, 1, 4, 4}, types[5] = {0, 9, 2, 0, 9}, bufs[5] = {0, 1, 2, 0, 3};
    static const float scales[5][3] = {{0}, {0.5f, 0.25f, 2.0f}, {0.1f, 0.2f, 0.3f}, {0}, {1.0f, 10.0f, 100.0f}};
    static const int qdims[5] = {0, 0, 0, 0, 3};
    size_t tensors = fbw_vector(b, (uint32_t[]){0, 0, 0, 0, 0}, 5, 4);
    fbw_link(b, sg_fields[0], tensors);
    for (int t = 0; t < 5; t++) {
        int quantized = scales[t][0] != 0;
        size_t tensor = fbw_table(b, 5, (int[]){1, 1, 1, 1, quantized},
                                  (uint32_t[]){0, (uint32_t)types[t], (uint32_t)bufs[t], 0, 0}, at);
        size_t shape_at = at[0], name_at = at[3], quant_at = at[4];
        fbw_link(b, tensors + 4 + 4 * (size_t)t, tensor);
        fbw_link(b, shape_at, fbw_vector(b, shapes[t], (size_t)ndims[t], 4));
        char name[16];
        snprintf(name, sizeof name, "t%d", t);
        fbw_link(b, name_at, fbw_string(b, name));
        if (!quantized) continue;
        /* QuantizationParameters: min, max, scale, zero_point, details_type, details, quantized_dimension */
        size_t q = fbw_table(b, 7, (int[]){0, 0, 1, 1, 0, 0, 1}, (uint32_t[]){0, 0, 0, 0, 0, 0, (uint32_t)qdims[t]}, at);
        size_t scale_at = at[2], zero_at = at[3];
        fbw_link(b, quant_at, q);
        fbw_link(b, scale_at, fbw_vector(b, scales[t], 3, 4));
        fbw_link(b, zero_at, fbw_vector(b, (int64_t[]){0, 0, 0}, 3, 8));
    }
    /* operators: {opcode_index, inputs, outputs, builtin_options_type, builtin_options} */
    size_t ops = fbw_vector(b, (uint32_t[]){0}, 1, 4);
    fbw_link(b, sg_fields[3], ops);
    size_t op = fbw_table(b, 5, (int[]){1, 1, 1, 1, 1}, (uint32_t[]){0, 0, 0, 1, 0}, at);
    size_t op_fields[5] = {at[0], at[1], at[2], at[3], at[4]};
    fbw_link(b, ops + 4, op);
    fbw_link(b, op_fields[1], fbw_vector(b, (int32_t[]){0, 1, 2}, 3, 4));
    fbw_link(b, op_fields[2], fbw_vector(b, (int32_t[]){3}, 1, 4));
    /* Conv2DOptions: padding VALID, stride_w 1, stride_h 1, fused_activation_function RELU */
    size_t options = fbw_table(b, 4, (int[]){1, 1, 1, 1}, (uint32_t[]){1, stride, stride, 1}, at);
    fbw_link(b, op_fields[4], options);
    return b->len;
}

static void test_per_channel_int8_in_a_hand_built_model(void **state)
{
    (void)state;
    fbw b;
    size_t size = build_tiny_model(&b, CNK_TFL_CONV_2D, NULL, 1);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_tfl_graph g;
    if (cnk_tflite_parse(&ctx, "tiny.tflite", b.buf, size, &g)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(g.n_tensors, 5);
    assert_int_equal(g.n_ops, 1);
    assert_string_equal(g.tensors[1].name, "t1");
    /* weights: q * scale[output channel] */
    const float w_expected[6] = {2 * 0.5f, -4 * 0.5f, 8 * 0.25f, 1 * 0.25f, -1 * 2.0f, 3 * 2.0f};
    assert_int_equal(g.tensors[1].n_scales, 3);
    tu_assert_close(g.tensors[1].data, w_expected, 6, 0, 1e-7, "per-channel weights");
    const float b_expected[3] = {10 * 0.1f, -5 * 0.2f, 1 * 0.3f};
    tu_assert_close(g.tensors[2].data, b_expected, 3, 0, 1e-7, "per-channel bias");
    /* quantized_dimension 3 of shape [1, 1, 2, 3]: the scale follows the last index */
    const float extra_expected[6] = {1, 20, 300, -1, -20, -300};
    assert_int_equal(g.tensors[4].quantized_dimension, 3);
    tu_assert_close(g.tensors[4].data, extra_expected, 6, 0, 1e-7, "quantized_dimension 3");
    const cnk_tfl_op *op = &g.ops[0];
    assert_int_equal(op->padding, CNK_TFL_PAD_VALID);
    assert_int_equal(op->activation, CNK_TFL_ACT_RELU);
    /* Run it: x = (1, 2) -> relu(w . x + b) = relu(1 - 4 + 1, 2 + 0.5 - 1, -2 + 12 + 0.3) */
    const float x[2] = {1, 2}, y_expected[3] = {0, 1.5f, 10.3f};
    ti_run run = {0};
    assert_int_equal(ti_run_graph(&run, &g, 0, x, 0, 1), 0);
    tu_assert_close(run.values[3], y_expected, 3, 1e-6, 0, "tiny conv output");
    ti_release(&run);
    cnk_tflite_release(&g);

    /* The same model with a custom op: parsed, then refused by name and layer. */
    size = build_tiny_model(&b, CNK_TFL_CUSTOM, "TFLite_Detection_PostProcess", 1);
    if (cnk_tflite_parse(&ctx, "custom.tflite", b.buf, size, &g)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(cnk_tflite_check_ops(&ctx, "custom.tflite", &g, 0, g.n_ops), CNK_ERR_UNSUPPORTED);
    assert_string_equal(cnk_error(&ctx),
                        "custom.tflite: unsupported op CUSTOM(TFLite_Detection_PostProcess) in layer 0 (output 't3')");
    cnk_tflite_release(&g);
    /* A zero stride is refused at parse time (it would divide by zero in any shape arithmetic). */
    size = build_tiny_model(&b, CNK_TFL_CONV_2D, NULL, 0);
    assert_int_equal(cnk_tflite_parse(&ctx, "stride0.tflite", b.buf, size, &g), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "stride0.tflite: operator CONV_2D has a stride, dilation or filter size below 1");
    /* Every truncation of the hand-built file fails cleanly. */
    size = build_tiny_model(&b, CNK_TFL_CONV_2D, NULL, 1);
    for (size_t len = 0; len < size; len++) {
        unsigned char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, b.buf, len);
        int rc = cnk_tflite_parse(&ctx, "tiny.tflite", copy, len, &g);
        free(copy);
        if (rc == CNK_OK) fail_msg("a %zu-byte cut of a %zu-byte file parsed", len, size);
        assert_null(strchr(cnk_error(&ctx), '\n'));
    }
}

/* ---- damaged files ------------------------------------------------------------------------------------ */

static unsigned char *load_bytes(const char *rel, size_t *size)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    unsigned char *bytes;
    if (cnk_read_file(&ctx, tu_shared(path, sizeof path, rel), 0, &bytes, size)) fail_msg("%s", cnk_error(&ctx));
    return bytes;
}

/* A failed parse must leave one line that names the file, and an empty graph. */
static void assert_clean_failure(cnk_ctx *ctx, int rc, const cnk_tfl_graph *g, const char *name)
{
    assert_int_not_equal(rc, CNK_OK);
    assert_true(strncmp(cnk_error(ctx), name, strlen(name)) == 0);
    assert_null(strchr(cnk_error(ctx), '\n'));
    assert_null(g->tensors);
    assert_int_equal(g->n_ops, 0);
}

static void test_truncated_files_fail_cleanly(void **state)
{
    (void)state;
    size_t size;
    unsigned char *bytes = load_bytes(V1_PATH, &size);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_tfl_graph g;
    /* The flatbuffer proper ends at byte 503776; after it the file carries a zip of the labels (TFLite
     * metadata's associated files), which nothing in the flatbuffer points to. */
    const size_t flatbuffer_end = 503776;
    assert_true(size > flatbuffer_end);
    assert_int_equal(cnk_tflite_parse(&ctx, "whole.tflite", bytes, flatbuffer_end, &g), CNK_OK);
    cnk_tflite_release(&g);
    int steps = tu_sanitized() ? 60 : 400;
    for (int i = 0; i < steps; i++) {
        /* Every length below 64 bytes, then lengths spread over the whole flatbuffer, the last 1 byte short. */
        size_t len = i < 64 ? (size_t)i : flatbuffer_end - 1 - (size_t)((double)(flatbuffer_end - 1) * (steps - 1 - i) / (steps - 64));
        unsigned char *copy = malloc(len ? len : 1); /* exact size, so ASan sees any over-read */
        assert_non_null(copy);
        memcpy(copy, bytes, len);
        int rc = cnk_tflite_parse(&ctx, "cut.tflite", copy, len, &g);
        assert_clean_failure(&ctx, rc, &g, "cut.tflite");
        free(copy);
    }
    free(bytes);
}

static void test_flipped_bytes_never_crash(void **state)
{
    (void)state;
    size_t size;
    unsigned char *bytes = load_bytes(V1_PATH, &size);
    unsigned char *copy = malloc(size);
    assert_non_null(copy);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_rng rng;
    cnk_rng_seed(&rng, 7, 0);
    int failures = 0, trials = tu_sanitized() ? 40 : 300;
    /* Structure lives in the first and last few kB (tables before and after the weight buffers): aim most
     * flips there, where they change offsets rather than weight values. */
    for (int t = 0; t < trials; t++) {
        memcpy(copy, bytes, size);
        for (int k = 0; k < 4; k++) {
            size_t at = cnk_rng_below(&rng, 4) == 0 ? cnk_rng_below(&rng, size)
                        : cnk_rng_below(&rng, 2) ? cnk_rng_below(&rng, 8192)
                                                 : size - 1 - cnk_rng_below(&rng, 8192);
            copy[at] ^= (unsigned char)(1u << cnk_rng_below(&rng, 8));
        }
        cnk_tfl_graph g;
        int rc = cnk_tflite_parse(&ctx, "flip.tflite", copy, size, &g);
        if (rc == CNK_OK) {
            cnk_tflite_release(&g);
        } else {
            assert_clean_failure(&ctx, rc, &g, "flip.tflite");
            failures++;
        }
    }
    print_message("flipped-byte trials: %d of %d rejected, none crashed\n", failures, trials);
    assert_true(failures > 0);
    free(copy);
    free(bytes);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void test_offsets_outside_the_buffer(void **state)
{
    (void)state;
    size_t size;
    unsigned char *bytes = load_bytes(V1_PATH, &size);
    unsigned char *copy = malloc(size);
    assert_non_null(copy);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_tfl_graph g;
    /* Root offset past the end. */
    memcpy(copy, bytes, size);
    put_u32(copy, (uint32_t)size + 16);
    assert_clean_failure(&ctx, cnk_tflite_parse(&ctx, "root.tflite", copy, size, &g), &g, "root.tflite");
    assert_non_null(strstr(cnk_error(&ctx), "corrupt"));
    /* The root table's vtable offset pointing before the file. */
    memcpy(copy, bytes, size);
    uint32_t root = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
    put_u32(copy + root, 0x7fffffff);
    assert_clean_failure(&ctx, cnk_tflite_parse(&ctx, "vt.tflite", copy, size, &g), &g, "vt.tflite");
    /* Every 4-byte word of the first 2 kB (where the model's tables and vectors start) set to a huge value:
     * the reader either rejects the file or ignores a word that is not an offset. */
    int rejected = 0;
    for (size_t at = 4; at + 4 <= 2048; at += 4) {
        memcpy(copy, bytes, size);
        put_u32(copy + at, 0xfffffff0u);
        int rc = cnk_tflite_parse(&ctx, "word.tflite", copy, size, &g);
        if (rc == CNK_OK) cnk_tflite_release(&g);
        else assert_clean_failure(&ctx, rc, &g, "word.tflite"), rejected++;
    }
    assert_true(rejected > 0);
    /* Not a TFLite file at all. */
    assert_clean_failure(&ctx, cnk_tflite_parse(&ctx, "x.tflite", (const unsigned char *)"\0\0\0\0JUNKJUNK", 12, &g),
                         &g, "x.tflite");
    assert_non_null(strstr(cnk_error(&ctx), "TFL3"));
    free(copy);
    free(bytes);
}

static void test_missing_file_is_io_error(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_tfl_graph g;
    assert_int_equal(cnk_tflite_read(&ctx, "/nonexistent/m.tflite", &g), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), "/nonexistent/m.tflite"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mobilenet_v2_graph),
        cmocka_unit_test(test_yamnet_graph_and_per_channel_int8),
        cmocka_unit_test(test_mobilenet_v2_float_run_gives_readme_labels),
        cmocka_unit_test(test_mobilenet_v1_float_run_top5),
        cmocka_unit_test(test_per_channel_int8_in_a_hand_built_model),
        cmocka_unit_test(test_truncated_files_fail_cleanly),
        cmocka_unit_test(test_flipped_bytes_never_crash),
        cmocka_unit_test(test_offsets_outside_the_buffer),
        cmocka_unit_test(test_missing_file_is_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
