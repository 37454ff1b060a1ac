/* Tests for nn/model.h: building every built-in, seeded init, freezing (no gradients, untouched by the
 * optimiser, frozen BN on running statistics), feature extraction, multi-output models, errors, thread
 * determinism, and that a small network actually learns.
 * test-libs: core nn */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/builtin.h"
#include "nn/cfg.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"

static cnk_model *builtin_model(cnk_ctx *ctx, const char *name, cnk_shape input, int classes, int batch)
{
    cnk_builtin_opts opts;
    cnk_builtin_opts_init(&opts);
    opts.input = input;
    opts.n_classes = classes;
    cnk_arch arch;
    if (cnk_builtin_arch(ctx, name, &opts, &arch) != CNK_OK) fail_msg("%s: %s", name, cnk_error(ctx));
    cnk_model *m = NULL;
    if (cnk_model_create(ctx, &arch, batch, &m) != CNK_OK) fail_msg("%s: %s", name, cnk_error(ctx));
    cnk_arch_release(&arch);
    return m;
}

static float *random_input(const cnk_model *m, int k, int batch, uint64_t seed)
{
    const cnk_arch *a = cnk_model_arch(m);
    cnk_shape s = a->layers[a->input_layers[k]].out;
    size_t n = (size_t)batch * s.c * s.h * s.w;
    float *x = malloc(n * sizeof(float));
    cnk_rng rng;
    cnk_rng_seed(&rng, seed, (uint64_t)k);
    for (size_t i = 0; i < n; i++) x[i] = (float)cnk_rng_normal(&rng);
    return x;
}

static void test_builtins_run(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    struct {
        const char *name;
        cnk_shape input;
    } nets[] = {{"mlp", {1, 28, 28}}, {"cnn", {1, 32, 32}}, {"mobilenet_v2", {3, 32, 32}},
                {"mobilenet_v1", {1, 32, 32}}, {"fusion", {1, 32, 32}}};
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        cnk_model *m = builtin_model(&ctx, nets[k].name, nets[k].input, 3, 2);
        const cnk_arch *a = cnk_model_arch(m);
        float *x[2] = {random_input(m, 0, 2, 1), a->n_input_layers > 1 ? random_input(m, 1, 2, 2) : NULL};
        assert_int_equal(cnk_model_forward(&ctx, m, (const float *const *)x, 2, CNK_MODE_TRAIN), CNK_OK);
        int units;
        const float *out = cnk_model_output(m, 0, &units);
        assert_int_equal(units, 3);
        for (int i = 0; i < 2 * units; i++) assert_true(isfinite(out[i]));
        float *douts[CNK_MAX_OUTPUTS] = {0};
        for (int o = 0; o < a->n_outputs; o++) {
            int u;
            cnk_model_output(m, o, &u);
            douts[o] = calloc((size_t)2 * u, sizeof(float));
            douts[o][0] = 1.0f;
        }
        cnk_model_zero_grad(m);
        assert_int_equal(cnk_model_backward(&ctx, m, (const float *const *)douts), CNK_OK);
        double gsum = 0;
        for (size_t i = 0; i < a->n_params; i++) gsum += fabs(cnk_model_grads(m)[i]);
        assert_true(gsum > 0);
        for (int o = 0; o < a->n_outputs; o++) free(douts[o]);
        free(x[0]);
        free(x[1]);
        cnk_model_free(m);
    }
}

static void test_init_is_seeded(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_model *a = builtin_model(&ctx, "cnn", (cnk_shape){1, 16, 16}, 4, 1);
    cnk_model *b = builtin_model(&ctx, "cnn", (cnk_shape){1, 16, 16}, 4, 1);
    size_t n = cnk_model_arch(a)->n_params;
    cnk_model_init_params(a, 7);
    cnk_model_init_params(b, 7);
    assert_memory_equal(cnk_model_params(a), cnk_model_params(b), n * sizeof(float));
    cnk_model_init_params(b, 8);
    assert_true(memcmp(cnk_model_params(a), cnk_model_params(b), n * sizeof(float)) != 0);
    /* He for the conv feeding a BN+relu: std sqrt(2 / fan_in) */
    const cnk_arch *arch = cnk_model_arch(a);
    int conv2 = cnk_arch_find(arch, "conv2");
    assert_true(conv2 >= 0);
    cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS];
    cnk_arch_layer_tensors(arch, conv2, specs);
    double sq = 0;
    for (size_t i = 0; i < specs[0].count; i++) sq += pow(cnk_model_params(a)[specs[0].offset + i], 2);
    assert_float_equal(sqrt(sq / specs[0].count), sqrt(2.0 / specs[0].fan_in), 0.1 * sqrt(2.0 / specs[0].fan_in));
    /* BN running variance starts at 1 */
    int bn = cnk_arch_find(arch, "conv1_bn");
    assert_float_equal(cnk_model_buffers(a)[arch->layers[bn].buffer_offset + arch->layers[bn].out.c], 1.0, 0);
    cnk_model_free(a);
    cnk_model_free(b);
}

static const char *SMALL = "[input]\nshape = 2x8x8\n"
                           "[conv2d]\nname = c1\nfilters = 4\nsize = 3\npadding = same\nbias = 0\n"
                           "[batchnorm]\nname = bn1\nactivation = relu\n"
                           "[maxpool]\nsize = 2\nstride = 2\n"
                           "[conv2d]\nname = c2\nfilters = 6\nsize = 3\npadding = same\nactivation = relu\n"
                           "[global_avgpool]\nname = gap\n"
                           "[dense]\nname = logits\nunits = 3\n";

static cnk_model *small_model(cnk_ctx *ctx, int batch)
{
    cnk_arch arch;
    assert_int_equal(cnk_cfg_parse(ctx, SMALL, "small", &arch), CNK_OK);
    cnk_model *m;
    assert_int_equal(cnk_model_create(ctx, &arch, batch, &m), CNK_OK);
    cnk_arch_release(&arch);
    return m;
}

/* One Adam step with labels 0, 1, 2, 0, ...; returns the loss. */
static double train_step(cnk_ctx *ctx, cnk_model *m, cnk_optim *opt, const float *x, int batch, float lr)
{
    int labels[64], units;
    for (int n = 0; n < batch; n++) labels[n] = n % 3;
    assert_int_equal(cnk_model_forward(ctx, m, &x, batch, CNK_MODE_TRAIN), CNK_OK);
    const float *logits = cnk_model_output(m, 0, &units);
    float dlogits[64 * 3];
    double loss = cnk_loss_softmax_ce(logits, labels, batch, units, NULL, dlogits);
    cnk_model_zero_grad(m);
    const float *douts[1] = {dlogits};
    assert_int_equal(cnk_model_backward(ctx, m, douts), CNK_OK);
    int n_ranges;
    const cnk_param_range *ranges = cnk_model_trainable_ranges(m, &n_ranges);
    cnk_optim_step(opt, cnk_model_params(m), cnk_model_grads(m), ranges, n_ranges, lr, ctx->threads);
    return loss;
}

static void test_freezing(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_model *m = small_model(&ctx, 6);
    const cnk_arch *a = cnk_model_arch(m);
    int c1 = cnk_arch_find(a, "c1"), bn1 = cnk_arch_find(a, "bn1"), c2 = cnk_arch_find(a, "c2");
    cnk_model_set_trainable(m, c1, 0);
    cnk_model_set_trainable(m, bn1, 0);
    int n_ranges;
    const cnk_param_range *ranges = cnk_model_trainable_ranges(m, &n_ranges);
    assert_int_equal(n_ranges, 1); /* c2 and logits are adjacent: one range */
    assert_int_equal(ranges[0].offset, a->layers[c2].param_offset);
    size_t frozen_end = a->layers[c2].param_offset, nb = a->n_buffers;
    float *before = malloc(a->n_params * sizeof(float)), *buffers = malloc(nb * sizeof(float));
    memcpy(before, cnk_model_params(m), a->n_params * sizeof(float));
    memcpy(buffers, cnk_model_buffers(m), nb * sizeof(float));
    float *x = random_input(m, 0, 6, 3);
    cnk_optim_config cfg;
    cnk_optim_config_init(&cfg, CNK_OPTIM_ADAM);
    cnk_optim *opt;
    assert_int_equal(cnk_optim_create(&ctx, &cfg, a->n_params, &opt), CNK_OK);
    train_step(&ctx, m, opt, x, 6, 0.01f);
    for (size_t i = 0; i < frozen_end; i++) assert_true(cnk_model_grads(m)[i] == 0.0f);
    assert_memory_equal(cnk_model_params(m), before, frozen_end * sizeof(float));
    assert_true(memcmp(cnk_model_params(m) + frozen_end, before + frozen_end,
                       (a->n_params - frozen_end) * sizeof(float)) != 0);
    /* frozen BN: running statistics untouched by a train-mode forward, and its output equals inference */
    assert_memory_equal(cnk_model_buffers(m), buffers, nb * sizeof(float));
    cnk_shape shape;
    const float *train_out = cnk_model_layer_output(m, bn1, &shape);
    size_t count = (size_t)6 * shape.c * shape.h * shape.w;
    float *saved = malloc(count * sizeof(float));
    memcpy(saved, train_out, count * sizeof(float));
    const float *ins[1] = {x};
    assert_int_equal(cnk_model_forward(&ctx, m, ins, 6, CNK_MODE_INFER), CNK_OK);
    assert_memory_equal(cnk_model_layer_output(m, bn1, NULL), saved, count * sizeof(float));
    /* unfreezing BN puts it back on batch statistics in training */
    cnk_model_set_trainable(m, bn1, 1);
    assert_int_equal(cnk_model_forward(&ctx, m, ins, 6, CNK_MODE_TRAIN), CNK_OK);
    assert_true(memcmp(cnk_model_buffers(m), buffers, nb * sizeof(float)) != 0);
    free(saved);
    free(before);
    free(buffers);
    free(x);
    cnk_optim_free(opt);
    cnk_model_free(m);
}

static void test_features_and_errors(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_model *m = small_model(&ctx, 4);
    const cnk_arch *a = cnk_model_arch(m);
    int gap = cnk_arch_feature_layer(a);
    assert_int_equal(gap, cnk_arch_find(a, "gap"));
    float *x = random_input(m, 0, 4, 5), feats[4 * 6];
    const float *ins[1] = {x};
    assert_int_equal(cnk_model_features(&ctx, m, ins, 4, gap, feats), CNK_OK);
    /* a partial forward cannot be followed by backward */
    float dl[12] = {0};
    const float *douts[1] = {dl};
    assert_int_equal(cnk_model_backward(&ctx, m, douts), CNK_ERR_ARG);
    assert_int_equal(cnk_model_forward(&ctx, m, ins, 4, CNK_MODE_INFER), CNK_OK);
    assert_memory_equal(cnk_model_layer_output(m, gap, NULL), feats, sizeof feats);
    /* the head is the dense on those features */
    int logits = cnk_arch_find(a, "logits");
    const float *w = cnk_model_params(m) + a->layers[logits].param_offset;
    double z = w[6 * 3];
    for (int i = 0; i < 6; i++) z += (double)w[i] * feats[i];
    assert_float_equal(cnk_model_output(m, 0, NULL)[0], z, 1e-5);
    assert_int_equal(cnk_model_forward(&ctx, m, ins, 5, CNK_MODE_INFER), CNK_ERR_ARG);
    assert_int_equal(cnk_model_forward(&ctx, m, ins, 0, CNK_MODE_INFER), CNK_ERR_ARG);
    assert_int_equal(cnk_model_forward(&ctx, m, NULL, 1, CNK_MODE_INFER), CNK_ERR_ARG);
    assert_true(strlen(cnk_error(&ctx)) > 0);
    cnk_model *big = NULL;
    cnk_arch arch;
    assert_int_equal(cnk_cfg_parse(&ctx, "[input]\nshape = 64x4096x4096\n[global_avgpool]\n", "huge", &arch), CNK_OK);
    assert_int_equal(cnk_model_create(&ctx, &arch, 100000, &big), CNK_ERR_NOMEM);
    assert_null(big);
    assert_int_equal(cnk_model_create(&ctx, &arch, 0, &big), CNK_ERR_ARG);
    cnk_arch_release(&arch);
    free(x);
    cnk_model_free(m);
}

/* Trains m for `steps` Adam steps on x (batch samples) at rate lr; returns a malloc'd copy of its parameters.
 * first / last (may be NULL) get the first and last step's loss. */
static float *train_adam(cnk_ctx *ctx, cnk_model *m, const float *x, int batch, int steps, float lr, double *first,
                         double *last)
{
    size_t n = cnk_model_arch(m)->n_params;
    cnk_optim_config cfg;
    cnk_optim_config_init(&cfg, CNK_OPTIM_ADAM);
    cnk_optim *opt;
    assert_int_equal(cnk_optim_create(ctx, &cfg, n, &opt), CNK_OK);
    for (int s = 0; s < steps; s++) {
        double loss = train_step(ctx, m, opt, x, batch, lr);
        if (s == 0 && first) *first = loss;
        if (last) *last = loss;
    }
    cnk_optim_free(opt);
    float *params = malloc(n * sizeof(float));
    assert_non_null(params);
    memcpy(params, cnk_model_params(m), n * sizeof(float));
    return params;
}

/* Same seed and thread count: bit-identical training; 1 vs 2 threads: the same up to float rounding. */
static void test_determinism_and_learning(void **state)
{
    (void)state;
    float *params[3];
    double last_loss[3], first_loss = 0;
    int threads[3] = {2, 2, 1};
    int steps = 40; /* tiny: fast even under the sanitizers */
    size_t n = 0;
    for (int run = 0; run < 3; run++) {
        cnk_ctx ctx;
        tu_ctx(&ctx);
        ctx.threads = threads[run];
        cnk_model *m = small_model(&ctx, 12);
        cnk_model_init_params(m, 11);
        n = cnk_model_arch(m)->n_params;
        /* class-dependent inputs: a learnable problem */
        float *x = random_input(m, 0, 12, 4);
        for (int s = 0; s < 12; s++)
            for (int i = 0; i < 64; i++) x[s * 128 + (s % 3) * 20 + i % 20] += 2.0f;
        params[run] = train_adam(&ctx, m, x, 12, steps, 0.02f, &first_loss, &last_loss[run]);
        free(x);
        cnk_model_free(m);
    }
    assert_memory_equal(params[0], params[1], n * sizeof(float));
    tu_assert_close(params[2], params[0], n, 2e-3, 2e-3, "1 vs 2 threads");
    assert_true(last_loss[0] < 0.3 * first_loss);
    for (int run = 0; run < 3; run++) free(params[run]);
}

/* The Winograd conv path (nn/winograd.c: c2 on 16x16 in several tile chunks, c3 on 8x8) trains bit-identically
 * for one thread count and within float rounding across thread counts. */
static void test_winograd_determinism(void **state)
{
    (void)state;
    static const char *wide = "[input]\nshape = 2x16x16\n"
                              "[conv2d]\nname = c1\nfilters = 8\nsize = 3\npadding = same\nbias = 0\n"
                              "[batchnorm]\nname = bn1\nactivation = relu\n"
                              "[conv2d]\nname = c2\nfilters = 16\nsize = 3\npadding = same\nbias = 0\n"
                              "[batchnorm]\nname = bn2\nactivation = relu\n"
                              "[maxpool]\nsize = 2\nstride = 2\n"
                              "[conv2d]\nname = c3\nfilters = 8\nsize = 3\npadding = same\nactivation = relu\n"
                              "[global_avgpool]\nname = gap\n"
                              "[dense]\nname = logits\nunits = 3\n";
    enum { BATCH = 16, STEPS = 4 };
    int threads[3] = {2, 2, 1};
    float *params[3];
    size_t n = 0;
    for (int run = 0; run < 3; run++) {
        cnk_ctx ctx;
        tu_ctx(&ctx);
        ctx.threads = threads[run];
        cnk_arch arch;
        assert_int_equal(cnk_cfg_parse(&ctx, wide, "wide", &arch), CNK_OK);
        cnk_model *m;
        assert_int_equal(cnk_model_create(&ctx, &arch, BATCH, &m), CNK_OK);
        cnk_arch_release(&arch);
        cnk_model_init_params(m, 5);
        n = cnk_model_arch(m)->n_params;
        float *x = random_input(m, 0, BATCH, 8);
        params[run] = train_adam(&ctx, m, x, BATCH, STEPS, 0.01f, NULL, NULL);
        free(x);
        cnk_model_free(m);
    }
    assert_memory_equal(params[0], params[1], n * sizeof(float));
    tu_assert_close(params[2], params[0], n, 2e-3, 2e-3, "winograd net, 1 vs 2 threads");
    for (int run = 0; run < 3; run++) free(params[run]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins_run),          cmocka_unit_test(test_init_is_seeded),
        cmocka_unit_test(test_freezing),              cmocka_unit_test(test_features_and_errors),
        cmocka_unit_test(test_determinism_and_learning),
        cmocka_unit_test(test_winograd_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
