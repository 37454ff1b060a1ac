/* Tests for the weight average (--ema), label smoothing (--label-smoothing) and mixup (--mixup) of
 * pipeline/train on small generated audio: after one optimisation step the kept model is exactly
 * d w0 + (1 - d) w1 (d the warm-up decay 2/11, w0 the initial weights, w1 the trained ones the checkpoint
 * holds); an interrupted run with all three resumed from its checkpoint ends with the same model, bit for
 * bit, as an uninterrupted one; bad values fail.
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "nn/modelfile.h"
#include "pipeline/train.h"

static char tmp[4096], data[4200];

static int setup(void **state)
{
    (void)state;
    return tu_write_audio_set("train_ema", tmp, sizeof tmp, data, sizeof data);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

static void options(cnk_train_options *o, const char *model)
{
    cnk_train_options_init(o);
    o->data = data;
    o->model_path = model;
    o->epochs = 3;
    o->batch_size = 8;
    o->cache_dir = "";
    o->ema_decay = 0.9;
    o->label_smoothing = 0.1;
    o->mixup = 0.4;
}

static void read_model(const char *path, cnk_modelfile *mf)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile_init(mf);
    if (cnk_modelfile_read(&ctx, path, mf)) fail_msg("%s", cnk_error(&ctx));
}

/* kept[i] == d w0[i] + (1 - d) w1[i] up to float rounding, for n values named what. */
static void assert_blend(const char *what, const float *kept, const float *w0, const float *w1, size_t n, float d)
{
    for (size_t i = 0; i < n; i++) {
        float want = d * w0[i] + (1 - d) * w1[i];
        if (fabsf(kept[i] - want) > 1e-6f + 1e-5f * fabsf(want))
            fail_msg("%s %zu: kept %g, expected %g (w0 %g, w1 %g)", what, i, kept[i], want, w0[i], w1[i]);
    }
}

/* One epoch of one batch = one step: the saved (best, averaged) model against the initial and trained weights. */
static void test_average_after_one_step(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], ckpt[4400];
    snprintf(model, sizeof model, "%s/one.cnk", tmp);
    cnk_train_options o;
    options(&o, model);
    o.epochs = 13; /* planned, so the cap 1 - 10 / 13 steps stays above the warm-up decay */
    o.max_epochs_this_run = 1;
    o.batch_size = 1024; /* every training segment in one batch */
    cnk_train_result res;
    if (cnk_train_run(&ctx, &o, &res)) fail_msg("%s", cnk_error(&ctx));
    assert_true(res.interrupted);
    assert_int_equal(res.best_epoch, 1);
    cnk_modelfile kept, trained;
    read_model(model, &kept);
    cnk_train_checkpoint_path(model, ckpt, sizeof ckpt);
    read_model(ckpt, &trained); /* the checkpoint holds the trained weights, training continues from them */
    char value[64];
    assert_int_equal(cnk_kv_get(&ctx, trained.preprocess, "ckpt_ema", value, sizeof value), CNK_OK);
    assert_float_equal(strtod(value, NULL), 0.9, 1e-12);
    assert_int_equal(cnk_kv_get(&ctx, trained.preprocess, "ckpt_ls", value, sizeof value), CNK_OK);
    assert_float_equal(strtod(value, NULL), 0.1, 1e-12);
    assert_int_equal(cnk_kv_get(&ctx, trained.preprocess, "ckpt_mixup", value, sizeof value), CNK_OK);
    assert_float_equal(strtod(value, NULL), 0.4, 1e-12);
    cnk_arch arch;
    cnk_arch_init(&arch);
    assert_int_equal(cnk_modelfile_arch(&ctx, &trained, &arch), CNK_OK);
    cnk_model *initial;
    assert_int_equal(cnk_model_create(&ctx, &arch, 1, &initial), CNK_OK);
    cnk_model_init_params(initial, ctx.seed); /* what the run started from */
    const float *w0 = cnk_model_params(initial), *b0 = cnk_model_buffers(initial);
    float d = (float)(2.0 / 11.0); /* min(0.9, (1 + t) / (10 + t)) after t = 1 step */
    assert_blend("param", kept.params, w0, trained.params, kept.n_params, d);
    assert_blend("buffer", kept.buffers, b0, trained.buffers, kept.n_buffers, d);
    size_t differs = 0;
    for (size_t i = 0; i < kept.n_params; i++) differs += kept.params[i] != trained.params[i];
    assert_true(differs > kept.n_params / 2); /* the average is not the trained weights */
    cnk_model_free(initial);
    cnk_arch_release(&arch);
    cnk_modelfile_release(&kept);
    cnk_modelfile_release(&trained);
}

/* A run of fewer than 11 steps has no average (the cap 1 - 10 / steps is below 0): the kept model is the
 * trained one (the checkpoint's weights), as without --ema. */
static void test_short_run_keeps_the_trained_weights(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], ckpt[4400];
    snprintf(model, sizeof model, "%s/short.cnk", tmp);
    cnk_train_options o;
    options(&o, model);
    o.epochs = 2;
    o.batch_size = 1024;
    o.patience = -1;
    o.val_fraction = 0; /* the last epoch is kept */
    cnk_train_result res;
    if (cnk_train_run(&ctx, &o, &res)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(res.best_epoch, 2);
    cnk_modelfile kept, trained;
    read_model(model, &kept);
    cnk_train_checkpoint_path(model, ckpt, sizeof ckpt);
    read_model(ckpt, &trained);
    assert_memory_equal(kept.params, trained.params, kept.n_params * sizeof(float));
    cnk_modelfile_release(&kept);
    cnk_modelfile_release(&trained);
}

static void test_resume_is_exact(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model_a[4300], model_b[4300], ckpt[4400];
    snprintf(model_a, sizeof model_a, "%s/a.cnk", tmp);
    snprintf(model_b, sizeof model_b, "%s/b.cnk", tmp);
    cnk_train_options o;
    cnk_train_result ra, rb;
    options(&o, model_a);
    if (cnk_train_run(&ctx, &o, &ra)) fail_msg("%s", cnk_error(&ctx));
    options(&o, model_b);
    o.max_epochs_this_run = 1;
    if (cnk_train_run(&ctx, &o, &rb)) fail_msg("%s", cnk_error(&ctx));
    assert_true(rb.interrupted);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model_b);
    cnk_train_options_init(&o); /* the checkpoint alone carries the decay and the smoothing */
    o.data = data;
    o.model_path = model_b;
    o.cache_dir = "";
    o.resume = ckpt;
    if (cnk_train_run(&ctx, &o, &rb)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(rb.epochs_run, 3);
    assert_int_equal(rb.best_epoch, ra.best_epoch);
    assert_true(rb.best_val_loss == ra.best_val_loss);
    cnk_modelfile ma, mb;
    read_model(model_a, &ma);
    read_model(model_b, &mb);
    assert_int_equal(ma.n_params, mb.n_params);
    assert_memory_equal(ma.params, mb.params, ma.n_params * sizeof(float));
    assert_memory_equal(ma.buffers, mb.buffers, ma.n_buffers * sizeof(float));
    cnk_modelfile_release(&ma);
    cnk_modelfile_release(&mb);
}

static void test_bad_values_fail(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300];
    snprintf(model, sizeof model, "%s/bad.cnk", tmp);
    cnk_train_options o;
    cnk_train_result res;
    options(&o, model);
    o.ema_decay = 1.0;
    assert_int_equal(cnk_train_run(&ctx, &o, &res), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--ema"));
    options(&o, model);
    o.label_smoothing = 1.5;
    assert_int_equal(cnk_train_run(&ctx, &o, &res), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--label-smoothing"));
    options(&o, model);
    o.mixup = 1.5;
    assert_int_equal(cnk_train_run(&ctx, &o, &res), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--mixup"));
    options(&o, model);
    o.tta_flip = 1; /* audio */
    assert_int_equal(cnk_train_run(&ctx, &o, &res), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--tta"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_average_after_one_step),
        cmocka_unit_test(test_short_run_keeps_the_trained_weights),
        cmocka_unit_test(test_resume_is_exact),
        cmocka_unit_test(test_bad_values_fail),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
