/* Tests for the photo defaults of pipeline/train (datasets/README.md, animals3): a folder of photos with no
 * options trains cnn5s on 3 x 112 x 112 inputs for 60 epochs (patience 20, batch 16) with SGD (lr 0.05, weight
 * decay 5e-4), a weight average (decay 0.995), test-time flips and, from 200 planned steps on, label smoothing
 * 0.1, and --image-size / --arch / --epochs / --optimizer still override them. One epoch of a few real
 * animals3 photos each (the checkpoint records the planned run).
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <stdio.h>
#include <stdlib.h>
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
    assert_string_equal(res.arch, "cnn5s");
    assert_kv(ckpt.preprocess, "channels", "3");
    assert_kv(ckpt.preprocess, "height", "112");
    assert_kv(ckpt.preprocess, "width", "112");
    assert_kv(ckpt.preprocess, "ckpt_arch", "cnn5s");
    assert_kv(ckpt.preprocess, "ckpt_epochs", "60");
    assert_kv(ckpt.preprocess, "ckpt_patience", "20");
    assert_kv(ckpt.preprocess, "ckpt_batch", "16");
    assert_kv(ckpt.preprocess, "ckpt_ls", "0"); /* 60 planned steps: too short for smoothing */
    assert_kv(ckpt.preprocess, "ckpt_ema", "0.995");
    assert_kv(ckpt.preprocess, "ckpt_mixup", "0");
    assert_kv(ckpt.preprocess, "ckpt_lr", "0.050000000000000003"); /* SGD's rate and decay */
    assert_kv(ckpt.preprocess, "ckpt_wd", "0.00050000000000000001");
    assert_kv(ckpt.preprocess, "tta_flip", "1");
    assert_kv(ckpt.preprocess, "ckpt_epoch", "1");
    /* cnn5s's five blocks, the first a stride-2 conv without a pool: 112 -> 4 x 4 before the global average
     * pool */
    assert_non_null(strstr(ckpt.arch_text, "conv5"));
    assert_null(strstr(ckpt.arch_text, "conv6"));
    assert_null(strstr(ckpt.arch_text, "pool1"));
    const char *conv1 = strstr(ckpt.arch_text, "name = conv1\n");
    assert_non_null(conv1);
    assert_non_null(strstr(conv1, "stride = "));
    assert_int_equal(atoi(strstr(conv1, "stride = ") + 9), 2);
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

/* Photos train with SGD (momentum, one buffer per parameter) by default; --optimizer adam (two buffers) brings
 * back Adam's rate and decay. */
static void test_optimizer(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    cnk_train_result res;
    cnk_modelfile ckpt;
    run_one_epoch(&o, "sgd", &res, &ckpt);
    size_t n_params = ckpt.n_params, sgd_floats = optimiser_floats("sgd");
    cnk_modelfile_release(&ckpt);
    o.optimizer = "adam";
    run_one_epoch(&o, "adam", &res, &ckpt);
    assert_kv(ckpt.preprocess, "ckpt_lr", "0.001");
    assert_kv(ckpt.preprocess, "ckpt_wd", "0.0001");
    assert_int_equal(optimiser_floats("adam"), sgd_floats + n_params);
    cnk_modelfile_release(&ckpt);
    o.optimizer = "sgd";
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
    assert_null(strstr(ckpt.arch_text, "conv5"));
    cnk_modelfile_release(&ckpt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_options_override),
        cmocka_unit_test(test_optimizer),
        cmocka_unit_test(test_smoothing_on_long_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
