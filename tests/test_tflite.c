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
    int n = tu_sanitized() ? 2 : TP_N_PHOTOS;
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
    int n = tu_sanitized() ? 2 : TP_N_PHOTOS, in_top5 = 0;
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
    assert_true(in_top5 >= (n * 4) / 7);
    cnk_tflite_release(&g);
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
        cmocka_unit_test(test_truncated_files_fail_cleanly),
        cmocka_unit_test(test_flipped_bytes_never_crash),
        cmocka_unit_test(test_offsets_outside_the_buffer),
        cmocka_unit_test(test_missing_file_is_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
