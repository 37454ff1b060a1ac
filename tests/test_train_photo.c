/* Tests for the photo defaults of pipeline/train (datasets/README.md, animals3): a folder of photos with no
 * options trains cnn5d on 3 x 96 x 96 inputs, its random-resized crops cut from photos kept at 128 x 128, for
 * 60 epochs (patience 20, batch 16) with Adam (lr 1e-3, weight decay 1e-4), a weight average (decay 0.995),
 * test-time flips and, from 200 planned steps on, label smoothing 0.1, and --image-size / --arch / --epochs
 * still override them; --optimizer sgd brings SGD's rate and decay (0.05, 5e-4). One epoch of a few real
 * animals3 photos each (the checkpoint records the planned run).
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <stdio.h>
#include <string.h>

#include "core/npy.h"
#include "nn/modelfile.h"
#include "pipeline/train.h"

static char tmp[4096], photos[4200];

/* Four cats and four dogs, linked from the shared animals3 folder. */
static int setup(void **state)
{
    (void)state;
    return tu_link_photos("train_photo", 4, tmp, sizeof tmp, photos, sizeof photos);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

/* One epoch of a run with opts (the rest defaults); the checkpoint's text holds the planned run. */
static void run_one_epoch(cnk_train_options *o, const char *name, cnk_train_result *res, cnk_modelfile *ckpt)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    static char model[4400], ckpt_path[4500];
    snprintf(model, sizeof model, "%s/%s.cnk", tmp, name);
    o->data = photos;
    o->model_path = model;
    o->cache_dir = "";
    o->max_epochs_this_run = 1;
    int rc = cnk_train_run(&ctx, o, res);
    if (rc) fail_msg("%s", cnk_error(&ctx));
    assert_true(res->interrupted);
    cnk_train_checkpoint_path(model, ckpt_path, sizeof ckpt_path);
    cnk_modelfile_init(ckpt);
    rc = cnk_modelfile_read(&ctx, ckpt_path, ckpt);
    if (rc) fail_msg("%s", cnk_error(&ctx));
}

static void assert_kv(const char *text, const char *key, const char *want)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char got[256];
    if (cnk_kv_get(&ctx, text, key, got, sizeof got) != CNK_OK) fail_msg("no %s in the checkpoint", key);
    if (strcmp(got, want) != 0) fail_msg("%s=%s, expected %s", key, got, want);
}

static void test_defaults(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    cnk_train_result res;
    cnk_modelfile ckpt;
    run_one_epoch(&o, "defaults", &res, &ckpt);
    assert_string_equal(res.input, "image");
    assert_string_equal(res.arch, "cnn5d");
    assert_kv(ckpt.preprocess, "channels", "3");
    assert_kv(ckpt.preprocess, "height", "96");
    assert_kv(ckpt.preprocess, "width", "96");
    assert_kv(ckpt.preprocess, "ckpt_arch", "cnn5d");
    assert_kv(ckpt.preprocess, "ckpt_train_size", "128x128");
    assert_kv(ckpt.preprocess, "ckpt_epochs", "60");
    assert_kv(ckpt.preprocess, "ckpt_patience", "20");
    assert_kv(ckpt.preprocess, "ckpt_batch", "16");
    assert_kv(ckpt.preprocess, "ckpt_ls", "0"); /* 60 planned steps: too short for smoothing */
    assert_kv(ckpt.preprocess, "ckpt_ema", "0.995");
    assert_kv(ckpt.preprocess, "ckpt_mixup", "0");
    assert_null(strstr(ckpt.preprocess, "ckpt_optimizer")); /* Adam: absent, as before the key */
    assert_kv(ckpt.preprocess, "ckpt_lr", "0.001"); /* Adam's rate and decay */
    assert_kv(ckpt.preprocess, "ckpt_wd", "0.0001");
    assert_kv(ckpt.preprocess, "tta_flip", "1");
    assert_kv(ckpt.preprocess, "ckpt_epoch", "1");
    /* cnn5d's five blocks, the last with two convs: 96 -> 3 x 3 before the global average pool */
    assert_non_null(strstr(ckpt.arch_text, "conv5b"));
    assert_null(strstr(ckpt.arch_text, "conv6"));
    cnk_modelfile_release(&ckpt);
}

/* Label smoothing comes on for photo runs of at least 200 planned steps (one batch per epoch here). */
static void test_smoothing_on_long_runs(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    o.epochs = 200;
    cnk_train_result res;
    cnk_modelfile ckpt;
    run_one_epoch(&o, "long", &res, &ckpt);
    assert_kv(ckpt.preprocess, "ckpt_ls", "0.10000000000000001");
    cnk_modelfile_release(&ckpt);
    o.epochs = 199;
    run_one_epoch(&o, "shorter", &res, &ckpt);
    assert_kv(ckpt.preprocess, "ckpt_ls", "0");
    cnk_modelfile_release(&ckpt);
}

/* Floats in the optimiser state the run's first checkpoint wrote. */
static size_t optimiser_floats(const char *name)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4600];
    snprintf(path, sizeof path, "%s/%s.cnk.ckpt.optim-1.npy", tmp, name);
    cnk_array a;
    if (cnk_npy_read(&ctx, path, &a) != CNK_OK) fail_msg("%s", cnk_error(&ctx));
    size_t n = cnk_array_count(&a);
    cnk_array_release(&a);
    return n;
}

/* Photos train with Adam (two state buffers per parameter) by default; --optimizer sgd (momentum: one buffer)
 * brings SGD's rate and decay for photos (0.05, 5e-4), and --lr still overrides the rate. */
static void test_optimizer(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    cnk_train_result res;
    cnk_modelfile ckpt;
    run_one_epoch(&o, "adam", &res, &ckpt);
    size_t n_params = ckpt.n_params, adam_floats = optimiser_floats("adam");
    cnk_modelfile_release(&ckpt);
    o.optimizer = "sgd";
    run_one_epoch(&o, "sgd", &res, &ckpt);
    assert_kv(ckpt.preprocess, "ckpt_lr", "0.050000000000000003");
    assert_kv(ckpt.preprocess, "ckpt_wd", "0.00050000000000000001");
    size_t sgd_floats = optimiser_floats("sgd");
    assert_int_equal(sgd_floats + n_params, adam_floats);
    cnk_modelfile_release(&ckpt);
    o.lr = 0.02;
    run_one_epoch(&o, "sgd_lr", &res, &ckpt);
    assert_kv(ckpt.preprocess, "ckpt_lr", "0.02");
    assert_kv(ckpt.preprocess, "ckpt_wd", "0.00050000000000000001");
    assert_int_equal(optimiser_floats("sgd_lr"), sgd_floats);
    cnk_modelfile_release(&ckpt);
}

static void test_options_override(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    o.image_width = 40;
    o.image_height = 32;
    o.arch = "cnn";
    o.epochs = 3;
    cnk_train_result res;
    cnk_modelfile ckpt;
    run_one_epoch(&o, "options", &res, &ckpt);
    assert_string_equal(res.arch, "cnn");
    assert_kv(ckpt.preprocess, "height", "32");
    assert_kv(ckpt.preprocess, "width", "40");
    assert_kv(ckpt.preprocess, "ckpt_arch", "cnn");
    assert_kv(ckpt.preprocess, "ckpt_epochs", "3");
    assert_kv(ckpt.preprocess, "ckpt_train_size", "53x43"); /* 4/3 of 40 x 32, rounded */
    assert_null(strstr(ckpt.arch_text, "conv5"));
    cnk_modelfile_release(&ckpt);
}

/* A small run (cnn on 32 x 32, 2 epochs) with optimizer, stopped after stop_after epochs (0: none) or resuming
 * `resume`; returns the status, the message in ctx. */
static int small_run(cnk_ctx *ctx, const char *name, const char *optimizer, int stop_after, const char *resume,
                     cnk_train_result *res)
{
    static char model[4400];
    snprintf(model, sizeof model, "%s/%s.cnk", tmp, name);
    cnk_train_options o;
    cnk_train_options_init(&o);
    o.data = photos;
    o.model_path = model;
    o.cache_dir = "";
    o.arch = "cnn";
    o.image_width = o.image_height = 32;
    o.epochs = 2;
    o.optimizer = optimizer;
    o.max_epochs_this_run = stop_after;
    o.resume = resume;
    tu_ctx(ctx);
    return cnk_train_run(ctx, &o, res);
}

/* --resume continues with the optimiser the run started with (the checkpoint names it when it is not Adam): an
 * AdamW run resumed with no --optimizer ends with the uninterrupted run's model (Adam's state has the same size,
 * so without the key it went on as Adam), and another optimiser is refused. */
static void test_resume_keeps_the_optimizer(void **state)
{
    (void)state;
    cnk_ctx ctx;
    cnk_train_result res;
    if (small_run(&ctx, "adamw_whole", "adamw", 0, NULL, &res)) fail_msg("%s", cnk_error(&ctx));
    if (small_run(&ctx, "adamw_parts", "adamw", 1, NULL, &res)) fail_msg("%s", cnk_error(&ctx));
    assert_true(res.interrupted);
    char whole[4400], parts[4400], ckpt[4500];
    snprintf(whole, sizeof whole, "%s/adamw_whole.cnk", tmp);
    snprintf(parts, sizeof parts, "%s/adamw_parts.cnk", tmp);
    cnk_train_checkpoint_path(parts, ckpt, sizeof ckpt);
    cnk_modelfile mf;
    cnk_modelfile_init(&mf);
    if (cnk_modelfile_read(&ctx, ckpt, &mf)) fail_msg("%s", cnk_error(&ctx));
    assert_kv(mf.preprocess, "ckpt_optimizer", "adamw");
    cnk_modelfile_release(&mf);
    assert_int_equal(small_run(&ctx, "adamw_parts", "adam", 0, ckpt, &res), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "was trained with adamw"));
    if (small_run(&ctx, "adamw_parts", NULL, 0, ckpt, &res)) fail_msg("%s", cnk_error(&ctx));
    assert_false(res.interrupted);
    assert_true(tu_files_equal(whole, parts));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_options_override),
        cmocka_unit_test(test_optimizer),
        cmocka_unit_test(test_smoothing_on_long_runs),
        cmocka_unit_test(test_resume_keeps_the_optimizer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
