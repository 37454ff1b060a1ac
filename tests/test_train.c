/* Tests for pipeline/train and pipeline/classify on small generated data: a run writes the model, split
 * and checkpoint; an interrupted run resumed from its checkpoint ends with exactly the same model as an
 * uninterrupted one; the classifier reproduces the run's test accuracy from the model file alone; a
 * corrupt file is skipped with a warning; a CSV of separable classes is learnt; bad options fail cleanly.
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/rng.h"
#include "nn/modelfile.h"
#include "pipeline/classify.h"
#include "pipeline/dataset.h"
#include "pipeline/split.h"
#include "pipeline/train.h"

static char tmp[4096], data[4200];

static int setup(void **state)
{
    (void)state;
    return tu_write_audio_set("train", tmp, sizeof tmp, data, sizeof data);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

static size_t n_warnings_seen;
static void count_warning(void *user, const char *message)
{
    (void)user;
    (void)message;
    n_warnings_seen++;
}

static void small_options(cnk_train_options *o, const char *model)
{
    cnk_train_options_init(o);
    o->data = data;
    o->model_path = model;
    o->epochs = 3;
    o->batch_size = 8;
    o->val_fraction = 0.1; /* speech trains without a validation split by default (tested below) */
    o->cache_dir = "";
}

static void read_model(const char *path, cnk_modelfile *mf)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_modelfile_read(&ctx, path, mf), CNK_OK);
}

static void test_run_writes_files_and_resume_is_exact(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model_a[4300], model_b[4300], path[4400];
    snprintf(model_a, sizeof model_a, "%s/a.cnk", tmp);
    snprintf(model_b, sizeof model_b, "%s/b.cnk", tmp);
    cnk_train_options o;
    cnk_train_result ra, rb;
    small_options(&o, model_a);
    assert_int_equal(cnk_train_run(&ctx, &o, &ra), CNK_OK);
    assert_string_equal(ra.input, "mel");
    assert_string_equal(ra.arch, "cnn4d"); /* short low-rate clips: speech */
    size_t total = 4 * (size_t)(tu_sanitized() ? 5 : 8);
    assert_int_equal(ra.n_train + ra.n_val + ra.n_test, total);
    assert_true(ra.n_test >= 4 && ra.n_val >= 4);
    assert_int_equal(ra.epochs_run, 3);
    assert_in_range(ra.best_epoch, 1, 3);
    assert_true(ra.test_accuracy >= 0 && ra.test_accuracy <= 1);
    assert_true(cnk_is_file(model_a));
    snprintf(path, sizeof path, "%s.split.csv", model_a);
    assert_true(cnk_is_file(path));
    snprintf(path, sizeof path, "%s.ckpt", model_a);
    assert_true(cnk_is_file(path));
    snprintf(path, sizeof path, "%s.ckpt.optim-3.npy", model_a);
    assert_true(cnk_is_file(path));
    snprintf(path, sizeof path, "%s.ckpt.optim-2.npy", model_a); /* superseded state is removed */
    assert_false(cnk_is_file(path));

    /* The model file says what predict needs: mel at 8 kHz, 0.5 s segments, one normalisation pair. */
    cnk_modelfile ma, mb;
    read_model(model_a, &ma);
    cnk_preprocess p;
    assert_int_equal(cnk_preprocess_from_text(&ctx, ma.preprocess, model_a, &p), CNK_OK);
    assert_int_equal(p.kind, CNK_PREP_MEL);
    assert_int_equal(p.sample_rate, 8000);
    assert_int_equal(p.segment_frames, 32);
    assert_int_equal(p.n_norm, 1);
    assert_true(p.mean[0] < -10 && p.std[0] > 1);
    assert_int_equal(ma.n_classes, 4);
    assert_string_equal(ma.class_names[2], "noise_burst");

    /* Interrupted after one epoch, then resumed: the same final model, bit for bit. */
    small_options(&o, model_b);
    o.max_epochs_this_run = 1;
    assert_int_equal(cnk_train_run(&ctx, &o, &rb), CNK_OK);
    assert_true(rb.interrupted);
    assert_int_equal(rb.epochs_run, 1);
    char ckpt[4400];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model_b);
    small_options(&o, model_b);
    o.resume = ckpt;
    assert_int_equal(cnk_train_run(&ctx, &o, &rb), CNK_OK);
    assert_false(rb.interrupted);
    assert_int_equal(rb.epochs_run, 3);
    assert_int_equal(rb.best_epoch, ra.best_epoch);
    assert_true(rb.test_accuracy == ra.test_accuracy);
    read_model(model_b, &mb);
    assert_int_equal(ma.n_params, mb.n_params);
    assert_memory_equal(ma.params, mb.params, ma.n_params * sizeof(float));
    assert_memory_equal(ma.buffers, mb.buffers, ma.n_buffers * sizeof(float));
    cnk_modelfile_release(&mb);

    /* A checkpoint of another data set size is refused with its name. */
    cnk_modelfile_release(&ma);
}

/* The classifier, from the model file alone, reproduces the run's test accuracy on the test split. */
/* Speech (short clips below 22050 Hz): no validation split unless one is asked for, so every non-test clip
 * trains and the model kept is the last epoch's weight average. */
static void test_speech_trains_without_validation_by_default(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300];
    snprintf(model, sizeof model, "%s/speech-default.cnk", tmp);
    cnk_train_options o;
    cnk_train_result r;
    small_options(&o, model);
    o.val_fraction = -1;
    o.epochs = 2;
    assert_int_equal(cnk_train_run(&ctx, &o, &r), CNK_OK);
    assert_string_equal(r.arch, "cnn4d");
    assert_int_equal(r.n_val, 0);
    assert_true(r.n_test >= 4);
    assert_int_equal(r.epochs_run, 2);
    assert_int_equal(r.best_epoch, 2);
}

static void test_classifier_reproduces_test_accuracy(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], split[4400];
    snprintf(model, sizeof model, "%s/c.cnk", tmp);
    cnk_train_options o;
    cnk_train_result r;
    small_options(&o, model);
    o.epochs = 4;
    assert_int_equal(cnk_train_run(&ctx, &o, &r), CNK_OK);
    cnk_classifier *clf;
    assert_int_equal(cnk_classifier_load(&ctx, model, &clf), CNK_OK);
    cnk_dataset ds;
    memset(&ds, 0, sizeof ds);
    cnk_dataset_options dopts;
    cnk_dataset_options_init(&dopts);
    assert_int_equal(cnk_dataset_open(&ctx, data, &dopts, &ds), CNK_OK);
    assert_int_equal(cnk_split_file_path(&ctx, model, split, sizeof split), CNK_OK);
    assert_int_equal(cnk_split_read(&ctx, split, &ds), CNK_OK);
    cnk_classified res;
    assert_int_equal(cnk_classifier_run_dataset(&ctx, clf, &ds, "", &res), CNK_OK);
    assert_int_equal(res.n, ds.n_items);
    size_t n_test = 0, correct = 0;
    for (size_t i = 0; i < res.n; i++) {
        double sum = 0;
        for (int c = 0; c < 4; c++) sum += res.proba[i * 4 + c];
        assert_float_equal(sum, 1.0, 1e-6);
        if (ds.items[res.items[i]].part != CNK_PART_TEST) continue;
        n_test++;
        correct += res.y_pred[i] == res.y_true[i];
    }
    assert_int_equal(n_test, r.n_test);
    assert_float_equal((double)correct / (double)n_test, r.test_accuracy, 1e-12);
    cnk_classified_release(&res);
    cnk_dataset_release(&ds);
    cnk_classifier_free(clf);
}

static void test_corrupt_file_is_skipped(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    ctx.warn = count_warning;
    n_warnings_seen = 0;
    char bad[4400], model[4300];
    snprintf(bad, sizeof bad, "%s/kick/zz_corrupt.wav", data);
    FILE *fp = fopen(bad, "wb");
    assert_non_null(fp);
    fputs("RIFF\x10\0\0\0WAVEfmt garbage", fp);
    fclose(fp);
    snprintf(model, sizeof model, "%s/d.cnk", tmp);
    cnk_train_options o;
    cnk_train_result r;
    small_options(&o, model);
    o.epochs = 1;
    assert_int_equal(cnk_train_run(&ctx, &o, &r), CNK_OK);
    assert_int_equal(n_warnings_seen, 1);
    assert_int_equal(ctx.n_warnings, 1);
    size_t total = 4 * (size_t)(tu_sanitized() ? 5 : 8);
    assert_int_equal(r.n_train + r.n_val + r.n_test, total); /* the corrupt one is not counted */
    remove(bad);
}

static void test_csv_blobs_are_learnt(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char csv[4300], model[4300];
    snprintf(csv, sizeof csv, "%s/blobs.csv", tmp);
    snprintf(model, sizeof model, "%s/blobs.cnk", tmp);
    FILE *fp = fopen(csv, "w");
    assert_non_null(fp);
    fputs("id,f1,f2,f3,label\n", fp);
    cnk_rng rng;
    cnk_rng_seed(&rng, 5, 0);
    for (int i = 0; i < 150; i++) {
        int k = i % 3; /* three Gaussian blobs, far apart relative to their spread, on very different scales */
        fprintf(fp, "r%d,%g,%g,%g,%s\n", i, 1000 * k + 100 * cnk_rng_normal(&rng), 0.01 * cnk_rng_normal(&rng),
                (k == 2 ? 5.0 : -5.0) + cnk_rng_normal(&rng), k == 0 ? "a" : k == 1 ? "b" : "c");
    }
    fclose(fp);
    cnk_train_options o;
    cnk_train_result r;
    cnk_train_options_init(&o);
    o.data = csv;
    o.model_path = model;
    o.epochs = 40;
    o.cache_dir = "";
    int rc = cnk_train_run(&ctx, &o, &r);
    if (rc) fprintf(stderr, "train failed: %s\n", cnk_error(&ctx));
    assert_int_equal(rc, CNK_OK);
    assert_string_equal(r.input, "csv");
    assert_string_equal(r.arch, "mlp");
    assert_int_equal(r.n_test, 45);
    assert_true(r.test_accuracy >= 0.95);
    /* standardisation is stored per feature */
    cnk_modelfile mf;
    read_model(model, &mf);
    cnk_preprocess p;
    assert_int_equal(cnk_preprocess_from_text(&ctx, mf.preprocess, model, &p), CNK_OK);
    assert_int_equal(p.n_features, 3);
    assert_int_equal(p.n_norm, 3);
    assert_true(p.std[0] > 300 && p.std[1] < 0.1);
    cnk_modelfile_release(&mf);
}

static void test_bad_options(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_train_options o;
    cnk_train_result r;
    small_options(&o, NULL);
    assert_int_equal(cnk_train_run(&ctx, &o, &r), CNK_ERR_ARG);
    char model[4300], one_class[4300];
    snprintf(model, sizeof model, "%s/e.cnk", tmp);
    small_options(&o, model);
    o.from = model; /* transfer learning is pipeline/transfer.h's run, not this one */
    assert_int_equal(cnk_train_run(&ctx, &o, &r), CNK_ERR_ARG);
    small_options(&o, model);
    o.arch = "no_such_net";
    assert_int_equal(cnk_train_run(&ctx, &o, &r), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "no_such_net"));
    snprintf(one_class, sizeof one_class, "%s/one", tmp);
    tu_system("mkdir -p '%s/only' && cp '%s/kick/kick_000.wav' '%s/kick/kick_001.wav' '%s/only/'", one_class, data,
              data, one_class);
    small_options(&o, model);
    o.data = one_class;
    assert_int_equal(cnk_train_run(&ctx, &o, &r), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "at least 2"));
    assert_false(cnk_is_file(model));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_writes_files_and_resume_is_exact),
        cmocka_unit_test(test_speech_trains_without_validation_by_default),
        cmocka_unit_test(test_classifier_reproduces_test_accuracy),
        cmocka_unit_test(test_corrupt_file_is_skipped),
        cmocka_unit_test(test_csv_blobs_are_learnt),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
