/* PyTorch parity (fixtures from tests/ref/gen_parity.py through bench/cnk_torch.py): for a small CNN, a
 * MobileNetV2 inverted-residual block and a CNN on the Winograd conv path, the same weights and batch give the
 * same logits, loss, every parameter gradient and BN running statistics, and 10 Adam steps give the same
 * losses and weights.
 * test-libs: core nn */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/npy.h"
#include "nn/cfg.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"

static void load(const char *tag, const char *what, cnk_array *a)
{
    char rel[256], path[4096];
    snprintf(rel, sizeof rel, "nn/%s_%s.npy", tag, what);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    if (cnk_npy_read(&ctx, tu_fixture(path, sizeof path, rel), a) != CNK_OK) fail_msg("%s", cnk_error(&ctx));
}

static double max_abs(const float *x, size_t n)
{
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(x[i]));
    return scale;
}

/* |a - b| <= 1e-4 * scale + 1e-4 * |b|: relative to the scale of what is compared (a whole output, or all
 * gradients), so entries that are nearly zero by cancellation are not held to a tighter bound than float
 * sums can give. */
static void assert_parity_scaled(const float *got, const float *want, size_t n, double scale, const char *what)
{
    tu_assert_close(got, want, n, 1e-4 * scale, 1e-4, what);
}

static void assert_parity(const float *got, const cnk_array *want, size_t n, const char *what)
{
    assert_int_equal(cnk_array_count(want), n);
    assert_parity_scaled(got, want->data, n, max_abs(want->data, n), what);
}

typedef struct fixture {
    cnk_ctx ctx;
    cnk_model *model;
    cnk_array x, labels_f, params, buffers;
    int labels[64];
    int batch, classes;
} fixture;

static void setup(fixture *f, const char *tag, int threads)
{
    memset(f, 0, sizeof *f);
    tu_ctx(&f->ctx);
    f->ctx.threads = threads;
    char rel[256], path[4096];
    snprintf(rel, sizeof rel, "nn/%s.cfg", tag);
    cnk_arch arch;
    if (cnk_cfg_read_file(&f->ctx, tu_fixture(path, sizeof path, rel), &arch) != CNK_OK)
        fail_msg("%s", cnk_error(&f->ctx));
    load(tag, "x", &f->x);
    load(tag, "labels", &f->labels_f);
    load(tag, "params", &f->params);
    load(tag, "buffers", &f->buffers);
    f->batch = (int)f->x.shape[0];
    assert_true(f->batch <= 64);
    for (int n = 0; n < f->batch; n++) f->labels[n] = (int)f->labels_f.data[n];
    assert_int_equal(cnk_model_create(&f->ctx, &arch, f->batch, &f->model), CNK_OK);
    const cnk_arch *a = cnk_model_arch(f->model);
    assert_int_equal(cnk_array_count(&f->params), a->n_params);
    assert_int_equal(cnk_array_count(&f->buffers), a->n_buffers);
    memcpy(cnk_model_params(f->model), f->params.data, sizeof(float) * a->n_params);
    memcpy(cnk_model_buffers(f->model), f->buffers.data, sizeof(float) * a->n_buffers);
    cnk_model_output(f->model, 0, &f->classes);
    cnk_arch_release(&arch);
}

static void teardown(fixture *f)
{
    cnk_model_free(f->model);
    cnk_array_release(&f->x);
    cnk_array_release(&f->labels_f);
    cnk_array_release(&f->params);
    cnk_array_release(&f->buffers);
}

/* One train-mode forward + backward: logits, loss, gradients and running statistics against PyTorch. */
static void check_step(const char *tag, int threads)
{
    fixture f;
    setup(&f, tag, threads);
    const cnk_arch *a = cnk_model_arch(f.model);
    const float *ins[1] = {f.x.data};
    assert_int_equal(cnk_model_forward(&f.ctx, f.model, ins, f.batch, CNK_MODE_TRAIN), CNK_OK);
    const float *logits = cnk_model_output(f.model, 0, NULL);
    cnk_array want;
    load(tag, "logits", &want);
    assert_parity(logits, &want, (size_t)f.batch * f.classes, "logits");
    cnk_array_release(&want);

    float *dlogits = malloc(sizeof(float) * (size_t)f.batch * f.classes);
    double loss = cnk_loss_softmax_ce(logits, f.labels, f.batch, f.classes, NULL, dlogits);
    load(tag, "loss", &want);
    assert_float_equal(loss, want.data[0], 1e-4 * fabs(want.data[0]));
    cnk_array_release(&want);

    cnk_model_zero_grad(f.model);
    const float *douts[1] = {dlogits};
    assert_int_equal(cnk_model_backward(&f.ctx, f.model, douts), CNK_OK);
    load(tag, "grads", &want);
    assert_int_equal(cnk_array_count(&want), a->n_params);
    double grad_scale = max_abs(want.data, a->n_params);
    /* each layer's tensors separately, so a failure names the layer and every tensor is held to its scale */
    for (int l = 0; l < a->n_layers; l++) {
        cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS];
        int n = cnk_arch_layer_tensors(a, l, specs);
        for (int t = 0; t < n; t++) {
            if (specs[t].is_buffer) continue;
            char what[160];
            snprintf(what, sizeof what, "%s gradient of %s.%s", tag, a->layers[l].name, specs[t].suffix);
            assert_parity_scaled(cnk_model_grads(f.model) + specs[t].offset, want.data + specs[t].offset,
                                 specs[t].count, grad_scale, what);
        }
    }
    cnk_array_release(&want);
    load(tag, "buffers_after", &want);
    assert_parity(cnk_model_buffers(f.model), &want, a->n_buffers, "running statistics");
    cnk_array_release(&want);

    assert_int_equal(cnk_model_forward(&f.ctx, f.model, ins, f.batch, CNK_MODE_INFER), CNK_OK);
    load(tag, "logits_infer", &want);
    assert_parity(cnk_model_output(f.model, 0, NULL), &want, (size_t)f.batch * f.classes, "inference logits");
    cnk_array_release(&want);
    free(dlogits);
    teardown(&f);
}

/* 10 Adam steps (lr 1e-2) on the same batch. */
static void check_adam(const char *tag, int threads)
{
    fixture f;
    setup(&f, tag, threads);
    const cnk_arch *a = cnk_model_arch(f.model);
    cnk_optim_config cfg;
    cnk_optim_config_init(&cfg, CNK_OPTIM_ADAM);
    cfg.lr = 1e-2f;
    cnk_optim *opt;
    assert_int_equal(cnk_optim_create(&f.ctx, &cfg, a->n_params, &opt), CNK_OK);
    float *dlogits = malloc(sizeof(float) * (size_t)f.batch * f.classes);
    cnk_array want;
    load(tag, "adam_losses", &want);
    const float *ins[1] = {f.x.data};
    for (size_t step = 0; step < cnk_array_count(&want); step++) {
        assert_int_equal(cnk_model_forward(&f.ctx, f.model, ins, f.batch, CNK_MODE_TRAIN), CNK_OK);
        double loss = cnk_loss_softmax_ce(cnk_model_output(f.model, 0, NULL), f.labels, f.batch, f.classes, NULL,
                                          dlogits);
        if (fabs(loss - want.data[step]) > 1e-4 * fabs(want.data[step]))
            fail_msg("%s: Adam step %zu loss %.7f, PyTorch %.7f", tag, step, loss, want.data[step]);
        cnk_model_zero_grad(f.model);
        const float *douts[1] = {dlogits};
        assert_int_equal(cnk_model_backward(&f.ctx, f.model, douts), CNK_OK);
        int n_ranges;
        const cnk_param_range *ranges = cnk_model_trainable_ranges(f.model, &n_ranges);
        cnk_optim_step(opt, cnk_model_params(f.model), cnk_model_grads(f.model), ranges, n_ranges, cfg.lr,
                       f.ctx.threads);
    }
    cnk_array_release(&want);
    load(tag, "adam_params", &want);
    /* Adam normalises tiny gradients to full steps, so weights compare at a looser absolute bound */
    tu_assert_close(cnk_model_params(f.model), want.data, a->n_params, 2e-3, 1e-3, "weights after 10 Adam steps");
    cnk_array_release(&want);
    free(dlogits);
    cnk_optim_free(opt);
    teardown(&f);
}

static void test_small_cnn(void **state)
{
    (void)state;
    check_step("small_cnn", 1);
    check_step("small_cnn", 2);
    check_adam("small_cnn", 1);
}

static void test_mobilenet_v2_block(void **state)
{
    (void)state;
    check_step("mbv2_block", 1);
    check_step("mbv2_block", 2);
    check_adam("mbv2_block", 2);
}

/* conv2 and conv3 run through nn/winograd.c (forward, input and weight gradients) */
static void test_winograd_cnn(void **state)
{
    (void)state;
    check_step("winograd_cnn", 1);
    check_step("winograd_cnn", 2);
    check_adam("winograd_cnn", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_cnn),
        cmocka_unit_test(test_mobilenet_v2_block),
        cmocka_unit_test(test_winograd_cnn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
