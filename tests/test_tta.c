/* Test-time flip averaging for photo models (--tta flip): the model file says so, `cnnkit predict`'s path
 * (pipeline/classify) gives the probabilities the training run's evaluation wrote in its report, and an image
 * and its mirror get identical probabilities (without the flag they differ). A few real animals3 photos at
 * 32 x 32 with the small `cnn`, two epochs.
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/modelfile.h"
#include "pipeline/augment.h"
#include "pipeline/classify.h"
#include "pipeline/report_csv.h"
#include "pipeline/train.h"

static char tmp[4096], photos[4200];

/* Eight cats and eight dogs, linked from the shared animals3 folder. */
static int setup(void **state)
{
    (void)state;
    return tu_link_photos("tta", 8, tmp, sizeof tmp, photos, sizeof photos);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

/* Trains a 2-epoch model into tmp/<name>.cnk with its report in tmp/<name>-report. */
static void train(const char *name, int tta_flip, char *model, size_t cap)
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
    o.cache_dir = "";
    o.arch = "cnn";
    o.image_width = o.image_height = 32;
    o.epochs = 2;
    o.tta_flip = tta_flip;
    cnk_train_result res;
    if (cnk_train_run(&ctx, &o, &res)) fail_msg("%s", cnk_error(&ctx));
    assert_true(res.n_test >= 4);
}

/* Classifying the test photos from the model file gives the report's probabilities (the training run's
 * own evaluation, which also averaged each photo with its mirror). */
static void test_predict_equals_training_evaluation(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4400], csv[4500];
    train("flip", 1, model, sizeof model);
    cnk_classifier *clf;
    if (cnk_classifier_load(&ctx, model, &clf)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(cnk_classifier_preprocess(clf)->tta_flip, 1);
    snprintf(csv, sizeof csv, "%s/flip-report/predictions.csv", tmp);
    cnk_predictions pred;
    if (cnk_predictions_read(&ctx, csv, &pred)) fail_msg("%s", cnk_error(&ctx));
    assert_non_null(pred.paths);
    assert_non_null(pred.proba);
    cnk_classified out;
    if (cnk_classifier_run_paths(&ctx, clf, (const char *const *)pred.paths, pred.n_samples, "", &out))
        fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(out.n, pred.n_samples);
    for (size_t i = 0; i < out.n; i++) {
        for (size_t c = 0; c < 2; c++) {
            double want = pred.proba[i * 2 + c], got = out.proba[i * 2 + c];
            if (fabs(want - got) > 1e-5)
                fail_msg("%s: p[%zu] %.9g (predict) vs %.9g (training)", pred.paths[i], c, got, want);
        }
        assert_int_equal(out.y_pred[i], pred.y_pred[i]);
    }
    cnk_classified_release(&out);
    cnk_predictions_release(&pred);
    cnk_classifier_free(clf);
}

/* The probabilities of one photo's features and of their mirror image. */
static void photo_and_mirror(const char *model, double *p, double *p_mirror)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_classifier *clf;
    if (cnk_classifier_load(&ctx, model, &clf)) fail_msg("%s", cnk_error(&ctx));
    cnk_prep_worker *w;
    if (cnk_prep_worker_create(&ctx, cnk_classifier_preprocess(clf), &w)) fail_msg("%s", cnk_error(&ctx));
    cnk_pathlist files = {0};
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/cats", photos);
    if (cnk_list_files(&ctx, dir, 0, &files) || files.count == 0) fail_msg("no photos in %s", dir);
    cnk_array features = {0};
    if (cnk_preprocess_file(&ctx, w, files.paths[0], &features)) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(features.ndim, 3);
    if (cnk_classifier_predict_features(&ctx, clf, &features, p)) fail_msg("%s", cnk_error(&ctx));
    cnk_augment_mirror(features.data, (int)features.shape[0], (int)features.shape[1], (int)features.shape[2]);
    if (cnk_classifier_predict_features(&ctx, clf, &features, p_mirror)) fail_msg("%s", cnk_error(&ctx));
    cnk_array_release(&features);
    cnk_pathlist_release(&files);
    cnk_prep_worker_free(w);
    cnk_classifier_free(clf);
}

static void test_mirror_gets_the_same_probabilities(void **state)
{
    (void)state;
    char model[4400];
    snprintf(model, sizeof model, "%s/flip.cnk", tmp); /* trained by the test above */
    double p[2], q[2];
    photo_and_mirror(model, p, q);
    assert_true(p[0] == q[0] && p[1] == q[1]); /* the same two views, summed in the other order */
    assert_float_equal(p[0] + p[1], 1.0, 1e-9);
    /* Without test-time flips the mirrored photo is another input. */
    train("plain", 0, model, sizeof model);
    photo_and_mirror(model, p, q);
    assert_true(fabs(p[0] - q[0]) > 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_equals_training_evaluation),
        cmocka_unit_test(test_mirror_gets_the_same_probabilities),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
