/* The photo models' evaluation crop (`eval_crop`, --eval-crop): the key round-trips through the model file and
 * bad values are refused naming their source; a model without it classifies exactly as the whole centre crop
 * did before the key existed; with it, `cnnkit predict`'s path gives the probabilities of the training run's
 * test report, which are not the whole centre crop's, while training itself is unchanged; the feature cache
 * keeps the two views apart. A few real animals3 photos at 32 x 32 with the small `cnn`, two epochs.
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/image.h"
#include "nn/modelfile.h"
#include "pipeline/classify.h"
#include "pipeline/preprocess.h"
#include "pipeline/report_csv.h"
#include "pipeline/train.h"

static char tmp[4096], photos[4200];

/* Eight cats and eight dogs, linked from the shared animals3 folder. */
static int setup(void **state)
{
    (void)state;
    return tu_link_photos("evalcrop", 8, tmp, sizeof tmp, photos, sizeof photos);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

/* Trains a 2-epoch model into tmp/<name>.cnk with its report in tmp/<name>-report (cache: "" = none). */
static void train(const char *name, double eval_crop, const char *cache, char *model, size_t cap,
                  cnk_train_result *res)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char report[4400];
    snprintf(model, cap, "%s/%s.cnk", tmp, name);
    snprintf(report, sizeof report, "%s/%s-report", tmp, name);
    cnk_train_options o;
    cnk_train_options_init(&o);
    o.data = photos;
    o.model_path = model;
    o.report_dir = report;
    o.cache_dir = cache;
    o.arch = "cnn";
    o.image_width = o.image_height = 32;
    o.epochs = 2;
    o.eval_crop = eval_crop;
    if (cnk_train_run(&ctx, &o, res)) fail_msg("%s", cnk_error(&ctx));
    assert_true(res->n_test >= 4);
}

/* A copy of a model file whose preprocessing text is edited: the line starting with `drop` removed (NULL: none)
 * and `add` appended (NULL: nothing). */
static void edit_model(const char *from, const char *to, const char *drop, const char *add)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile mf;
    if (cnk_modelfile_read(&ctx, from, &mf)) fail_msg("%s", cnk_error(&ctx));
    size_t len = strlen(mf.preprocess);
    char *text = malloc(len + (add ? strlen(add) : 0) + 2), *out = text;
    assert_non_null(text);
    for (const char *line = mf.preprocess; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) + 1 : strlen(line);
        if (!drop || strncmp(line, drop, strlen(drop)) != 0) memcpy(out, line, n), out += n;
        line += n;
    }
    *out = '\0';
    if (add) strcat(strcat(text, add), "\n");
    free(mf.preprocess);
    mf.preprocess = text;
    if (cnk_modelfile_write(&ctx, to, &mf)) fail_msg("%s", cnk_error(&ctx));
    cnk_modelfile_release(&mf);
}

static void test_key_round_trips(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p, q;
    cnk_preprocess_defaults(&p, CNK_PREP_IMAGE);
    p.n_norm = 3;
    for (int c = 0; c < 3; c++) p.mean[c] = 0.5f, p.std[c] = 0.25f;
    char *text;
    assert_int_equal(cnk_preprocess_to_text(&ctx, &p, &text), CNK_OK);
    assert_null(strstr(text, "eval_crop")); /* no crop: no key, so such files read as before everywhere */
    assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &q), CNK_OK);
    assert_true(q.eval_crop == 0.0f && q.crop == 0.0f);
    free(text);
    p.eval_crop = 0.875f;
    assert_int_equal(cnk_preprocess_to_text(&ctx, &p, &text), CNK_OK);
    assert_non_null(strstr(text, "\neval_crop=0.875\n"));
    assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &q), CNK_OK);
    assert_true(q.eval_crop == 0.875f);
    assert_true(q.crop == 0.0f); /* the stored key; training's view reads the whole centre crop */
    cnk_preprocess view;
    cnk_preprocess_eval_view(&q, &view);
    assert_true(view.crop == 0.875f && cnk_preprocess_has_eval_view(&q) && !cnk_preprocess_has_eval_view(&view));
    char key_train[512], key_view[512];
    cnk_preprocess_feature_key(&q, key_train, sizeof key_train);
    cnk_preprocess_feature_key(&view, key_view, sizeof key_view);
    assert_string_equal(key_train, "image c=3 h=64 w=64 centre-crop [0,1]"); /* the cache key from before */
    assert_string_equal(key_view, "image c=3 h=64 w=64 centre-crop [0,1] crop=0.875");
    free(text);
    /* Through a real model file: what training wrote is what the classifier reads. */
    char model[4400];
    cnk_train_result res;
    train("crop08", 0.8, "", model, sizeof model, &res);
    cnk_classifier *clf;
    if (cnk_classifier_load(&ctx, model, &clf)) fail_msg("%s", cnk_error(&ctx));
    assert_true(cnk_classifier_preprocess(clf)->eval_crop == 0.8f);
    assert_true(cnk_classifier_preprocess(clf)->crop == 0.8f);
    cnk_classifier_free(clf);
}

/* One-line error naming the source and the key, status CNK_ERR_INPUT. */
static void expect_refused(const char *text, const char *what)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p;
    int rc = cnk_preprocess_from_text(&ctx, text, "bad.cnk", &p);
    if (rc != CNK_ERR_INPUT) fail_msg("%s: accepted (status %d)", what, rc);
    const char *msg = cnk_error(&ctx);
    if (strncmp(msg, "bad.cnk: ", 9) != 0 || !strstr(msg, "eval_crop") || strchr(msg, '\n'))
        fail_msg("%s: message '%s'", what, msg);
}

static void test_bad_values_are_refused(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_IMAGE);
    p.n_norm = 1, p.mean[0] = 0, p.std[0] = 1;
    char *text, buf[8192];
    assert_int_equal(cnk_preprocess_to_text(&ctx, &p, &text), CNK_OK);
    const char *bad[] = {"0", "-0.5", "1.5", "abc", "nan", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%seval_crop=%s\n", text, bad[i]);
        expect_refused(buf, bad[i]);
    }
    free(text);
    cnk_preprocess_defaults(&p, CNK_PREP_MEL); /* a spectrogram has no centre crop */
    assert_int_equal(cnk_preprocess_to_text(&ctx, &p, &text), CNK_OK);
    snprintf(buf, sizeof buf, "%seval_crop=0.9\n", text);
    expect_refused(buf, "mel");
    free(text);
    /* The training option: a fraction in (0, 1]. */
    cnk_train_options o;
    cnk_train_options_init(&o);
    assert_true(o.eval_crop < 0); /* default */
    assert_int_equal(cnk_train_option_set(&o, "eval-crop", "0"), -1);
    assert_int_equal(cnk_train_option_set(&o, "eval-crop", "1.01"), -1);
    assert_int_equal(cnk_train_option_set(&o, "eval-crop", "x"), -1);
    assert_true(o.eval_crop < 0);
    assert_int_equal(cnk_train_option_set(&o, "eval-crop", "1"), 0);
    assert_true(o.eval_crop == 1.0);
    assert_int_equal(cnk_train_option_set(&o, "eval-crop", "0.875"), 0);
    assert_true(o.eval_crop == 0.875);
    /* and the image loader itself */
    float out[3 * 8 * 8];
    assert_int_equal(cnk_image_load_tensor_fraction(&ctx, "x.png", 3, 8, 8, CNK_CROP_CENTER, 0.0f, CNK_NORM_UNIT, out),
                     CNK_ERR_ARG);
    /* A model file carrying a bad value is refused when loaded, naming the file. */
    char model[4400], broken[4400];
    snprintf(model, sizeof model, "%s/crop08.cnk", tmp); /* trained by the test above */
    snprintf(broken, sizeof broken, "%s/broken.cnk", tmp);
    edit_model(model, broken, "eval_crop=", "eval_crop=1.5");
    cnk_classifier *clf = NULL;
    assert_int_equal(cnk_classifier_load(&ctx, broken, &clf), CNK_ERR_INPUT);
    assert_null(clf);
    assert_non_null(strstr(cnk_error(&ctx), broken));
    assert_non_null(strstr(cnk_error(&ctx), "eval_crop=1.5"));
}

/* A model without the key: the classifier reads the whole centre crop, i.e. exactly what
 * cnk_image_load_tensor gave before the key existed, and its probabilities are bit-identical to those of those
 * features; the same for a model whose key was removed. */
static void test_without_key_classifies_as_before(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4400], plain[4400];
    snprintf(model, sizeof model, "%s/crop08.cnk", tmp);
    snprintf(plain, sizeof plain, "%s/nokey.cnk", tmp);
    edit_model(model, plain, "eval_crop=", NULL);
    cnk_classifier *clf;
    if (cnk_classifier_load(&ctx, plain, &clf)) fail_msg("%s", cnk_error(&ctx));
    const cnk_preprocess *prep = cnk_classifier_preprocess(clf);
    assert_true(prep->eval_crop == 0.0f && prep->crop == 0.0f);
    cnk_pathlist files = {0};
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/dogs", photos);
    if (cnk_list_files(&ctx, dir, 0, &files) || files.count < 3) fail_msg("no photos in %s", dir);
    cnk_classified out;
    if (cnk_classifier_run_paths(&ctx, clf, (const char *const *)files.paths, 3, "", &out))
        fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(out.n, 3);
    size_t n = 3 * 32 * 32;
    float *old_way = malloc(n * sizeof *old_way), *fraction_one = malloc(n * sizeof *fraction_one);
    assert_non_null(old_way);
    assert_non_null(fraction_one);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cnk_image_load_tensor(&ctx, files.paths[i], 3, 32, 32, CNK_CROP_CENTER, CNK_NORM_UNIT, old_way),
                         CNK_OK);
        assert_int_equal(cnk_image_load_tensor_fraction(&ctx, files.paths[i], 3, 32, 32, CNK_CROP_CENTER, 1.0f,
                                                        CNK_NORM_UNIT, fraction_one),
                         CNK_OK);
        assert_memory_equal(old_way, fraction_one, n * sizeof *old_way);
        cnk_array features = {.data = old_way, .ndim = 3, .shape = {3, 32, 32}};
        double p[2];
        if (cnk_classifier_predict_features(&ctx, clf, &features, p)) fail_msg("%s", cnk_error(&ctx));
        assert_true(p[0] == out.proba[i * 2] && p[1] == out.proba[i * 2 + 1]);
    }
    free(old_way);
    free(fraction_one);
    cnk_classified_release(&out);
    cnk_pathlist_release(&files);
    cnk_classifier_free(clf);
}

/* The report's probabilities (predictions.csv) against a classifier's for the same files; returns the largest
 * difference. */
static double report_vs_classifier(const char *report_csv, const char *model, const char *cache)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_classifier *clf;
    if (cnk_classifier_load(&ctx, model, &clf)) fail_msg("%s", cnk_error(&ctx));
    cnk_predictions pred;
    if (cnk_predictions_read(&ctx, report_csv, &pred)) fail_msg("%s", cnk_error(&ctx));
    assert_non_null(pred.paths);
    assert_non_null(pred.proba);
    cnk_classified out;
    if (cnk_classifier_run_paths(&ctx, clf, (const char *const *)pred.paths, pred.n_samples, cache, &out))
        fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(out.n, pred.n_samples);
    double worst = 0;
    for (size_t i = 0; i < out.n * 2; i++) worst = fmax(worst, fabs(pred.proba[i] - out.proba[i]));
    cnk_classified_release(&out);
    cnk_predictions_release(&pred);
    cnk_classifier_free(clf);
    return worst;
}

static void test_predict_equals_report_and_training_is_unchanged(void **state)
{
    (void)state;
    char model[4400], whole[4400], csv[4500], nokey[4400];
    cnk_train_result with_crop, without;
    snprintf(model, sizeof model, "%s/crop08.cnk", tmp);
    snprintf(csv, sizeof csv, "%s/crop08-report/predictions.csv", tmp);
    /* predict == the training run's test evaluation, which used the crop (not the whole centre crop) */
    assert_true(report_vs_classifier(csv, model, "") <= 1e-5);
    snprintf(nokey, sizeof nokey, "%s/nokey.cnk", tmp); /* the same weights without the key (test above) */
    assert_true(report_vs_classifier(csv, nokey, "") > 1e-4);
    /* Training is the same run with or without an evaluation crop: same kept epoch, validation loss, weights. */
    train("whole", 1.0, "", whole, sizeof whole, &without);
    train("crop08b", 0.8, "", model, sizeof model, &with_crop);
    assert_int_equal(with_crop.best_epoch, without.best_epoch);
    assert_true(with_crop.best_val_loss == without.best_val_loss);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile a, b;
    if (cnk_modelfile_read(&ctx, whole, &a) || cnk_modelfile_read(&ctx, model, &b)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(a.n_params, b.n_params);
    assert_memory_equal(a.params, b.params, a.n_params * sizeof *a.params);
    assert_null(strstr(a.preprocess, "eval_crop"));
    assert_non_null(strstr(b.preprocess, "\neval_crop=0.8\n")); /* written as typed, read back exactly */
    cnk_modelfile_release(&a);
    cnk_modelfile_release(&b);
}

/* With a feature cache: training caches the whole centre crops; evaluation at the crop must not read them. */
static void test_cache_keeps_the_views_apart(void **state)
{
    (void)state;
    char model[4400], cache[4400], csv[4500];
    cnk_train_result res;
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    train("cached", 0.8, cache, model, sizeof model, &res);
    snprintf(csv, sizeof csv, "%s/cached-report/predictions.csv", tmp);
    assert_true(report_vs_classifier(csv, model, cache) <= 1e-5); /* the view's entries, written by the report */
    assert_true(report_vs_classifier(csv, model, "") <= 1e-5);    /* = computed afresh */
    /* and training's entries stayed the whole centre crop: a second run reads them and trains identically */
    cnk_train_result again;
    char model2[4400];
    train("cached2", 0.8, cache, model2, sizeof model2, &again);
    assert_true(again.n_cached >= 16);
    assert_true(again.best_val_loss == res.best_val_loss);
}

/* The training report names how the model was trained (the "training" row of its parameters): here the photo
 * defaults' optimiser and augmentation, crops of photos kept at 4/3 of the 32 x 32 input (the report of the
 * run above). */
static void test_report_names_the_training(void **state)
{
    (void)state;
    char path[4500];
    snprintf(path, sizeof path, "%s/cached-report/report.html", tmp);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    static char html[1 << 20];
    size_t n = fread(html, 1, sizeof html - 1, f);
    fclose(f);
    html[n] = 0;
    const char *row = strstr(html, "training</th><td class=\"l\">");
    if (!row) fail_msg("%s: no training row", path);
    const char *want[] = {"adam, weight decay 0.0001",
                          "random-resized crops (50-100% of the area) of photos kept at 43x43, flips, colour "
                          "jitter 0.1"};
    for (size_t i = 0; i < 2; i++) {
        const char *at = strstr(row, want[i]), *end = strstr(row, "</td>");
        if (!at || !end || at > end) fail_msg("%s: the training row lacks '%s'", path, want[i]);
    }
    assert_null(strstr(row, "random erasing")); /* off by default */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_round_trips),
        cmocka_unit_test(test_bad_values_are_refused),
        cmocka_unit_test(test_without_key_classifies_as_before),
        cmocka_unit_test(test_predict_equals_report_and_training_is_unchanged),
        cmocka_unit_test(test_cache_keeps_the_views_apart),
        cmocka_unit_test(test_report_names_the_training),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
