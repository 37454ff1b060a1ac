/* Finite-difference gradient checks for every layer kind, activation and loss, run through nn/model.h so
 * both the parameter gradients and the input gradients (seen through the layers below) are checked.
 * test-libs: core nn */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/cfg.h"
#include "nn/loss.h"
#include "nn/model.h"

typedef struct net {
    cnk_ctx ctx;
    cnk_model *model;
    float *input[2];
    float *weights; /* loss = sum(output * weights): dloss/doutput = weights */
    int batch, units;
    cnk_mode mode;
} net;

static void fill_normal(float *x, size_t n, uint64_t seed, float scale)
{
    cnk_rng rng;
    cnk_rng_seed(&rng, seed, 99);
    for (size_t i = 0; i < n; i++) x[i] = scale * (float)cnk_rng_normal(&rng);
}

static void net_build(net *t, const char *cfg, int batch, cnk_mode mode)
{
    memset(t, 0, sizeof *t);
    tu_ctx(&t->ctx);
    cnk_arch arch;
    int rc = cnk_cfg_parse(&t->ctx, cfg, "gradcheck", &arch);
    if (rc != CNK_OK) fail_msg("cfg: %s", cnk_error(&t->ctx));
    assert_int_equal(cnk_model_create(&t->ctx, &arch, batch, &t->model), CNK_OK);
    cnk_arch_release(&arch);
    const cnk_arch *a = cnk_model_arch(t->model);
    cnk_model_init_params(t->model, 5);
    /* non-trivial BN statistics and affine parameters so every term of the BN gradient matters */
    float *p = cnk_model_params(t->model), *b = cnk_model_buffers(t->model);
    for (int l = 0; l < a->n_layers; l++) {
        const cnk_layer *layer = &a->layers[l];
        if (layer->kind != CNK_LAYER_BATCHNORM) continue;
        for (int c = 0; c < layer->out.c; c++) {
            p[layer->param_offset + c] = 0.8f + 0.1f * c;
            p[layer->param_offset + layer->out.c + c] = 0.05f * c - 0.1f;
            b[layer->buffer_offset + c] = 0.1f * c;
            b[layer->buffer_offset + layer->out.c + c] = 0.5f + 0.2f * c;
        }
    }
    for (int k = 0; k < a->n_input_layers; k++) {
        cnk_shape s = a->layers[a->input_layers[k]].out;
        size_t n = (size_t)batch * s.c * s.h * s.w;
        t->input[k] = malloc(n * sizeof(float));
        fill_normal(t->input[k], n, 11 + k, 1.0f);
    }
    t->batch = batch;
    t->mode = mode;
    cnk_model_output(t->model, 0, &t->units);
    t->weights = malloc((size_t)batch * t->units * sizeof(float));
    fill_normal(t->weights, (size_t)batch * t->units, 21, 1.0f);
}

static void net_free(net *t)
{
    cnk_model_free(t->model);
    free(t->input[0]);
    free(t->input[1]);
    free(t->weights);
}

static double net_loss(net *t)
{
    /* the same dropout mask every time; running statistics reset so train-mode updates don't accumulate */
    cnk_model_set_seed(t->model, 77);
    const float *ins[2] = {t->input[0], t->input[1]};
    assert_int_equal(cnk_model_forward(&t->ctx, t->model, ins, t->batch, t->mode), CNK_OK);
    const float *out = cnk_model_output(t->model, 0, NULL);
    double loss = 0.0;
    for (size_t i = 0; i < (size_t)t->batch * t->units; i++) loss += (double)out[i] * t->weights[i];
    return loss;
}

/* Checks every parameter (or a spread sample of max_checks of them) against central differences. */
static int layer_of_param(const cnk_arch *a, size_t i)
{
    for (int l = 0; l < a->n_layers; l++)
        if (a->layers[l].n_params && i >= a->layers[l].param_offset &&
            i < a->layers[l].param_offset + a->layers[l].n_params)
            return l;
    return -1;
}

/* Parameters of frozen layers, and (if only_layer is set) of every other layer, must get exactly zero
 * gradient; the rest must match central differences. */
static void check_net_only(const char *what, const char *cfg, int batch, cnk_mode mode, int max_checks,
                           const char *only_layer)
{
    net t;
    net_build(&t, cfg, batch, mode);
    const cnk_arch *a = cnk_model_arch(t.model);
    size_t n = a->n_params;
    float *buffers_saved = malloc((a->n_buffers + 1) * sizeof(float));
    memcpy(buffers_saved, cnk_model_buffers(t.model), a->n_buffers * sizeof(float));
    net_loss(&t);
    cnk_model_zero_grad(t.model);
    const float *douts[1] = {t.weights};
    assert_int_equal(cnk_model_backward(&t.ctx, t.model, douts), CNK_OK);
    float *grads = malloc(n * sizeof(float));
    memcpy(grads, cnk_model_grads(t.model), n * sizeof(float));
    float *p = cnk_model_params(t.model);
    size_t step = n > (size_t)max_checks ? n / (size_t)max_checks : 1;
    double worst = 0.0;
    size_t worst_i = 0;
    int checked = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        const cnk_layer *owner = &a->layers[layer_of_param(a, i)];
        if (!owner->trainable || (only_layer && strcmp(owner->name, only_layer) != 0)) {
            if (grads[i] != 0.0f) fail_msg("%s: parameter %zu of layer %s should get no gradient", what, i, owner->name);
            continue;
        }
        if (i % step != 0) continue;
        float saved = p[i], eps = 3e-3f * fmaxf(1.0f, fabsf(saved));
        p[i] = saved + eps;
        double up = net_loss(&t);
        p[i] = saved - eps;
        double down = net_loss(&t);
        p[i] = saved;
        memcpy(cnk_model_buffers(t.model), buffers_saved, a->n_buffers * sizeof(float));
        double numeric = (up - down) / (2.0 * eps), analytic = grads[i];
        double err = fabs(numeric - analytic) / (0.05 + 0.5 * (fabs(numeric) + fabs(analytic)));
        if (err > 0.02) bad++;
        if (err > worst) {
            worst = err;
            worst_i = i;
        }
        checked++;
    }
    /* Nets with kinks (relu family, max pooling) may have a few parameters whose +-eps straddles a kink;
     * a real bug shifts far more than 2% of them. */
    int kinked = strstr(cfg, "relu") || strstr(cfg, "maxpool");
    int allowed = kinked ? checked / 50 : 0;
    if (bad > allowed) {
        const char *owner = a->layers[layer_of_param(a, worst_i)].name;
        fail_msg("%s: gradient of parameter %zu (layer %s) is off: analytic %g, relative error %g (%d of %d off)",
                 what, worst_i, owner, grads[worst_i], worst, bad, checked);
    }
    assert_true(checked > 0);
    free(grads);
    free(buffers_saved);
    net_free(&t);
}

static void check_net(const char *what, const char *cfg, int batch, cnk_mode mode, int max_checks)
{
    check_net_only(what, cfg, batch, mode, max_checks, NULL);
}

#define FIRST_CONV "[input]\nshape = 2x7x6\n[conv2d]\nname = c0\nfilters = 3\nsize = 3\npadding = 1\nactivation = tanh\n"
#define HEAD "[dense]\nname = head\nunits = 4\n"

static void test_conv2d_same_stride2_dilation(void **state)
{
    (void)state;
    check_net("conv same/2", FIRST_CONV "[conv2d]\nfilters = 4\nsize = 3\nstride = 2\npadding = same\nactivation = tanh\n" HEAD,
              2, CNK_MODE_TRAIN, 400);
    check_net("conv dilated", FIRST_CONV "[conv2d]\nfilters = 3\nsize = 3\ndilation = 2\npadding = 2\nactivation = sigmoid\n" HEAD,
              2, CNK_MODE_TRAIN, 400);
    check_net("conv 1x1 no bias", FIRST_CONV "[conv2d]\nfilters = 5\nsize = 1\nbias = 0\n" HEAD, 3, CNK_MODE_TRAIN, 400);
    check_net("conv 2x3 valid stride 2x1", FIRST_CONV "[conv2d]\nfilters = 2\nsize = 2x3\nstride = 2x1\npadding = valid\n" HEAD,
              2, CNK_MODE_TRAIN, 400);
    check_net("conv asymmetric explicit", FIRST_CONV "[conv2d]\nfilters = 2\nsize = 3\npadding = 0,2,1,0\n" HEAD, 2,
              CNK_MODE_TRAIN, 400);
}

/* 3x3 stride-1 convolutions with >= 8 channels and maps of >= 4x4 take the Winograd path (nn/winograd.c) for
 * the forward pass and both gradients: odd map sizes (partial tiles), SAME, no padding, asymmetric padding,
 * batch 1. */
#define WIDE_CONV "[input]\nshape = 2x7x6\n[conv2d]\nname = c0\nfilters = 8\nsize = 3\npadding = 1\nactivation = tanh\n"

static void test_conv2d_winograd(void **state)
{
    (void)state;
    check_net("winograd same", WIDE_CONV "[conv2d]\nfilters = 9\nsize = 3\npadding = same\nactivation = tanh\n" HEAD, 2,
              CNK_MODE_TRAIN, 600);
    check_net("winograd valid batch 1", WIDE_CONV "[conv2d]\nfilters = 8\nsize = 3\npadding = valid\n" HEAD, 1,
              CNK_MODE_TRAIN, 600);
    check_net("winograd asymmetric", WIDE_CONV "[conv2d]\nfilters = 8\nsize = 3\npadding = 0,2,1,0\nbias = 0\n" HEAD,
              3, CNK_MODE_TRAIN, 600);
}

static void test_depthwise(void **state)
{
    (void)state;
    check_net("depthwise same/2", FIRST_CONV "[depthwise_conv2d]\nsize = 3\nstride = 2\npadding = same\nactivation = elu\n" HEAD,
              2, CNK_MODE_TRAIN, 400);
    check_net("depthwise dilated", FIRST_CONV "[depthwise_conv2d]\nsize = 3\ndilation = 2\npadding = 2\nbias = 0\n" HEAD,
              2, CNK_MODE_TRAIN, 400);
    check_net("depthwise 5x5 stride 1", FIRST_CONV "[depthwise_conv2d]\nsize = 5\npadding = same\n" HEAD, 2,
              CNK_MODE_TRAIN, 400);
}

static void test_pools(void **state)
{
    (void)state;
    check_net("maxpool same/2", FIRST_CONV "[maxpool]\nsize = 3\nstride = 2\npadding = same\n" HEAD, 2, CNK_MODE_TRAIN, 400);
    check_net("maxpool 2x2", FIRST_CONV "[maxpool]\nsize = 2\nstride = 2\n" HEAD, 2, CNK_MODE_TRAIN, 400);
    check_net("avgpool same/2", FIRST_CONV "[avgpool]\nsize = 3\nstride = 2\npadding = same\n" HEAD, 2, CNK_MODE_TRAIN, 400);
    check_net("global avgpool", FIRST_CONV "[global_avgpool]\n" HEAD, 3, CNK_MODE_TRAIN, 400);
}

static void test_batchnorm_modes(void **state)
{
    (void)state;
    check_net("bn train", FIRST_CONV "[batchnorm]\nactivation = leaky_relu\nalpha = 0.1\n" HEAD, 3, CNK_MODE_TRAIN, 400);
    check_net("bn infer", FIRST_CONV "[batchnorm]\nactivation = elu\n" HEAD, 3, CNK_MODE_INFER, 400);
    check_net("bn frozen", FIRST_CONV "[batchnorm]\ntrainable = 0\n" HEAD, 3, CNK_MODE_TRAIN, 400);
    /* BN sharing its input with another consumer: BN first to write that gradient (stores), then second (adds) */
    check_net("bn first writer", FIRST_CONV "[conv2d]\nname = c1\nfrom = c0\nfilters = 3\nsize = 1\n"
              "[batchnorm]\nname = b1\nfrom = c0\n[add]\nfrom = c1, b1\n" HEAD, 3, CNK_MODE_TRAIN, 400);
    check_net("bn second writer", FIRST_CONV "[batchnorm]\nname = b1\n[add]\nfrom = c0, b1\nactivation = tanh\n" HEAD, 3,
              CNK_MODE_TRAIN, 400);
    check_net("bn on dense", "[input]\nshape = 5x1x1\n[dense]\nunits = 6\n[batchnorm]\nactivation = tanh\n" HEAD, 4,
              CNK_MODE_TRAIN, 400);
}

static void test_dense_dropout_flatten(void **state)
{
    (void)state;
    check_net("dense sigmoid + dropout", FIRST_CONV "[flatten]\n[dense]\nunits = 7\nactivation = sigmoid\n[dropout]\nrate = 0.4\n" HEAD,
              3, CNK_MODE_TRAIN, 400);
    check_net("dense no bias, infer dropout", FIRST_CONV "[dropout]\nrate = 0.3\n[dense]\nunits = 3\nbias = 0\n", 2,
              CNK_MODE_INFER, 400);
}

static void test_add_concat(void **state)
{
    (void)state;
    check_net("residual add", FIRST_CONV "[conv2d]\nname = c1\nfilters = 3\nsize = 3\npadding = same\n"
              "[add]\nfrom = c0, c1\nactivation = relu6\n" HEAD, 2, CNK_MODE_TRAIN, 400);
    check_net("concat", FIRST_CONV "[conv2d]\nname = c1\nfilters = 2\nsize = 1\n[conv2d]\nname = c2\nfrom = c0\n"
              "filters = 3\nsize = 3\npadding = same\n[concat]\nfrom = c1, c2, c0\n" HEAD, 2, CNK_MODE_TRAIN, 400);
    check_net("two inputs", "[input]\nname = a\nshape = 2x4x4\n[input]\nname = b\nshape = 1x4x4\n"
              "[conv2d]\nname = ca\nfrom = a\nfilters = 2\nsize = 3\npadding = same\n"
              "[conv2d]\nname = cb\nfrom = b\nfilters = 3\nsize = 3\npadding = same\n[concat]\nfrom = ca, cb\n" HEAD,
              2, CNK_MODE_TRAIN, 400);
}

static void test_activations(void **state)
{
    (void)state;
    const char *kinds[] = {"linear", "step", "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "softmax"};
    for (int k = 0; k < 9; k++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, FIRST_CONV "[conv2d]\nfilters = 3\nsize = 1\n[activation]\nactivation = %s\n%s" HEAD,
                 kinds[k], k == 6 ? "alpha = 0.3\n" : k == 7 ? "alpha = 1.0\n" : "");
        /* the step's gradient is zero almost everywhere: only the head above it learns */
        check_net_only(kinds[k], cfg, 2, CNK_MODE_TRAIN, 300, k == 1 ? "head" : NULL);
    }
    check_net("softmax layer", FIRST_CONV "[softmax]\n" HEAD, 2, CNK_MODE_TRAIN, 300);
}

/* Losses against double-precision central differences of themselves. */
static void test_losses(void **state)
{
    (void)state;
    enum { B = 3, K = 5 };
    float logits[B * K], dlogits[B * K], targets[B * K];
    int labels[B] = {1, 4, -1};
    fill_normal(logits, B * K, 3, 2.0f);
    for (int i = 0; i < B * K; i++) targets[i] = (float)((i * 7) % 5) / 4.0f;
    for (int which = 0; which < 3; which++) {
        if (which == 0) cnk_loss_softmax_ce(logits, labels, B, K, NULL, dlogits);
        if (which == 1) cnk_loss_bce_logits(logits, targets, B * K, dlogits);
        if (which == 2) cnk_loss_mse(logits, targets, B * K, dlogits);
        for (int i = 0; i < B * K; i++) {
            float saved = logits[i], eps = 1e-2f;
            double v[2];
            for (int s = 0; s < 2; s++) {
                logits[i] = saved + (s ? -eps : eps);
                v[s] = which == 0   ? cnk_loss_softmax_ce(logits, labels, B, K, NULL, NULL)
                       : which == 1 ? cnk_loss_bce_logits(logits, targets, B * K, NULL)
                                    : cnk_loss_mse(logits, targets, B * K, NULL);
            }
            logits[i] = saved;
            double numeric = (v[0] - v[1]) / (2 * eps);
            if (fabs(numeric - dlogits[i]) > 2e-4 + 1e-3 * fabs(numeric))
                fail_msg("loss %d: d/dlogit[%d] analytic %g numeric %g", which, i, dlogits[i], numeric);
        }
    }
    /* the ignored label contributes nothing */
    cnk_loss_softmax_ce(logits, labels, B, K, NULL, dlogits);
    for (int k = 0; k < K; k++) assert_float_equal(dlogits[2 * K + k], 0.0f, 0.0);
    /* huge logits stay finite */
    float big[2] = {1000.0f, -1000.0f};
    int label0 = 1;
    double loss = cnk_loss_softmax_ce(big, &label0, 1, 2, NULL, NULL);
    assert_float_equal(loss, 2000.0, 1e-3);
    float t1 = 0.0f;
    assert_float_equal(cnk_loss_bce_logits(big, &t1, 1, NULL), 1000.0, 1e-3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_same_stride2_dilation),
        cmocka_unit_test(test_conv2d_winograd),
        cmocka_unit_test(test_depthwise),
        cmocka_unit_test(test_pools),
        cmocka_unit_test(test_batchnorm_modes),
        cmocka_unit_test(test_dense_dropout_flatten),
        cmocka_unit_test(test_add_concat),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_losses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
