/* Tests for the public API (include/cnnkit/, api/): version and context, features of buffers and files (against
 * librosa's numbers), training through the API, classifying files vs sample and pixel buffers (identical
 * probabilities), evaluations against hand-computed scikit-learn values, and the errors callers get.
 * test-libs: api */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "nn/modelfile.h"
#include "pipeline/classify.h"
#include "pipeline/demo_data.h"

#include "cnnkit/cnnkit.h"

/* ---- version and context ---- */

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(cnk_version(), CNNKIT_VERSION);
    assert_string_equal(CNNKIT_VERSION, CNK_VERSION_STRING); /* the CLI's `cnnkit --version` */
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", CNNKIT_VERSION_MAJOR, CNNKIT_VERSION_MINOR, CNNKIT_VERSION_PATCH);
    assert_string_equal(text, CNNKIT_VERSION);
    assert_int_equal(cnk_version_number(), CNNKIT_VERSION_NUMBER);
    assert_int_equal(cnk_model_format_version(), CNK_MODELFILE_VERSION);
    assert_int_equal(CNNKIT_MODEL_FORMAT_VERSION, CNK_MODELFILE_VERSION);
}

static void test_context(void **state)
{
    (void)state;
    cnk_ctx *ctx = cnk_context_create();
    assert_non_null(ctx);
    assert_int_equal(cnk_context_threads(ctx), cnk_cpu_count());
    assert_int_equal(cnk_context_seed(ctx), 42);
    assert_int_equal(cnk_context_status(ctx), CNK_OK);
    assert_string_equal(cnk_context_error(ctx), "");
    assert_int_equal(cnk_context_set_threads(ctx, 3), CNK_OK);
    assert_int_equal(cnk_context_threads(ctx), 3);
    assert_int_equal(cnk_context_set_threads(ctx, -1), CNK_ERR_ARG);
    assert_int_equal(cnk_context_status(ctx), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_context_error(ctx), "threads: -1"));
    assert_int_equal(cnk_context_threads(ctx), 3);
    cnk_context_clear_error(ctx);
    assert_int_equal(cnk_context_status(ctx), CNK_OK);
    assert_string_equal(cnk_context_error(ctx), "");
    assert_int_equal(cnk_context_set_threads(ctx, 0), CNK_OK);
    assert_int_equal(cnk_context_threads(ctx), cnk_cpu_count());
    cnk_context_set_seed(ctx, 1234567890123ULL);
    assert_true(cnk_context_seed(ctx) == 1234567890123ULL);
    assert_string_equal(cnk_status_name(CNK_OK), "ok");
    assert_string_equal(cnk_status_name(CNK_ERR_IO), "I/O error");
    assert_string_equal(cnk_status_name(99), "unknown status");
    assert_int_equal(cnk_context_warnings(ctx), 0);
    cnk_context_free(ctx);
}

/* ---- features ---- */

static cnk_ctx *new_ctx(void)
{
    cnk_ctx *ctx = cnk_context_create();
    assert_non_null(ctx);
    assert_int_equal(cnk_context_set_threads(ctx, 1), CNK_OK);
    return ctx;
}

/* librosa's mel dB of an 8 kHz FSDD clip (tests/ref/gen_features.py), through the public calls: the file,
 * and its decoded samples, give the same array, within 1e-3 dB of the reference above the 80 dB floor. */
static void test_features_file_and_buffer_match_librosa(void **state)
{
    (void)state;
    cnk_ctx *ctx = new_ctx();
    char clip[4096], fixture[4096];
    tu_shared(clip, sizeof clip, "datasets/fsdd/3/3_jackson_0.wav");
    tu_fixture(fixture, sizeof fixture, "features/mel_db_fsdd_3_jackson_0.npy");
    cnk_feature_options opts;
    cnk_feature_options_init(&opts);
    assert_string_equal(opts.kind, "mel");
    assert_int_equal(opts.sample_rate, 22050);
    assert_int_equal(opts.n_mels, 128);
    opts.sample_rate = 0;
    opts.n_fft = 512;
    opts.hop_length = 128;
    opts.n_mels = 40;
    float *from_file = NULL, *from_buffer = NULL, *samples = NULL;
    size_t rows, frames, rows2, frames2, n_samples;
    int rate;
    assert_int_equal(cnk_features_of_file(ctx, &opts, clip, &from_file, &rows, &frames), CNK_OK);
    assert_int_equal(cnk_audio_decode(ctx, clip, 0, &samples, &n_samples, &rate), CNK_OK);
    assert_int_equal(rate, 8000);
    assert_int_equal(cnk_features_of_samples(ctx, &opts, samples, n_samples, rate, &from_buffer, &rows2, &frames2),
                     CNK_OK);
    assert_int_equal(rows, 40);
    assert_int_equal(rows2, rows);
    assert_int_equal(frames2, frames);
    assert_memory_equal(from_file, from_buffer, rows * frames * sizeof(float));
    cnk_array ref;
    cnk_ctx internal;
    tu_ctx(&internal);
    assert_int_equal(cnk_npy_read(&internal, fixture, &ref), CNK_OK);
    assert_int_equal(ref.shape[0], rows);
    assert_int_equal(ref.shape[1], frames);
    float ref_max = -INFINITY;
    for (size_t i = 0; i < rows * frames; i++) ref_max = fmaxf(ref_max, ref.data[i]);
    size_t n_above = 0;
    for (size_t i = 0; i < rows * frames; i++) {
        if (ref.data[i] <= ref_max - 80.0f + 1e-3f) continue;
        n_above++;
        if (fabsf(from_file[i] - ref.data[i]) > 1e-3f)
            fail_msg("bin %zu: cnnkit %.5f dB, librosa %.5f dB", i, from_file[i], ref.data[i]);
    }
    assert_true(n_above > rows * frames / 4);
    /* Resampling a buffer to the options' rate is the same as decoding the file at that rate. */
    float *file_16k = NULL, *buffer_16k = NULL;
    opts.sample_rate = 16000;
    assert_int_equal(cnk_features_of_file(ctx, &opts, clip, &file_16k, &rows, &frames), CNK_OK);
    assert_int_equal(cnk_features_of_samples(ctx, &opts, samples, n_samples, rate, &buffer_16k, &rows2, &frames2),
                     CNK_OK);
    assert_int_equal(frames2, frames);
    assert_memory_equal(file_16k, buffer_16k, rows * frames * sizeof(float));
    /* Written as .npy, read back unchanged. */
    char dir[4096], npy[4200];
    tu_tmpdir(dir, sizeof dir, "api_npy");
    snprintf(npy, sizeof npy, "%s/mel.npy", dir);
    assert_int_equal(cnk_features_write_npy(ctx, npy, file_16k, rows, frames), CNK_OK);
    cnk_array back;
    assert_int_equal(cnk_npy_read(&internal, npy, &back), CNK_OK);
    assert_int_equal(back.shape[0], rows);
    assert_memory_equal(back.data, file_16k, rows * frames * sizeof(float));
    cnk_array_release(&back);
    tu_rmtree(dir);
    cnk_array_release(&ref);
    cnk_free(from_file);
    cnk_free(from_buffer);
    cnk_free(file_16k);
    cnk_free(buffer_16k);
    cnk_free(samples);
    cnk_context_free(ctx);
}

static void test_feature_errors(void **state)
{
    (void)state;
    cnk_ctx *ctx = new_ctx();
    cnk_feature_options opts;
    cnk_feature_options_init(&opts);
    float samples[4096] = {0}, *out = (float *)1;
    size_t rows = 7, frames = 7;
    opts.kind = "chroma";
    assert_int_equal(cnk_features_of_samples(ctx, &opts, samples, 4096, 22050, &out, &rows, &frames), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_context_error(ctx), "chroma"));
    assert_null(out);
    assert_int_equal(rows, 0);
    opts.kind = "wavelet";
    assert_int_equal(cnk_features_of_samples(ctx, &opts, samples, 4096, 0, &out, &rows, &frames), CNK_ERR_ARG);
    assert_int_equal(cnk_features_of_samples(ctx, &opts, NULL, 0, 22050, &out, &rows, &frames), CNK_ERR_ARG);
    assert_int_equal(cnk_features_of_file(ctx, &opts, "/nonexistent/a.wav", &out, &rows, &frames), CNK_ERR_IO);
    assert_non_null(strstr(cnk_context_error(ctx), "/nonexistent/a.wav"));
    /* A wavelet scalogram of silence at the default 64 scales has the mel frame grid. */
    assert_int_equal(cnk_features_of_samples(ctx, &opts, samples, 4096, 22050, &out, &rows, &frames), CNK_OK);
    assert_int_equal(rows, 64);
    assert_int_equal(frames, 4096 / 512 + 1);
    cnk_free(out);
    cnk_context_free(ctx);
}

/* ---- evaluations: scikit-learn's values for y_true [a a b b c c], y_pred [a b b b c a] ---- */

static void test_evaluation_matches_sklearn(void **state)
{
    (void)state;
    cnk_ctx *ctx = new_ctx();
    const char *names[] = {"b", "a", "c", "unused"}; /* any order: reports sort bytewise */
    cnk_evaluation *ev;
    assert_int_equal(cnk_evaluation_create(ctx, 4, names, &ev), CNK_OK);
    double acc;
    assert_int_equal(cnk_evaluation_accuracy(ctx, ev, &acc), CNK_ERR_ARG); /* empty */
    const int y_true[] = {1, 1, 0, 0, 2, 2}, y_pred[] = {1, 0, 0, 0, 2, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(cnk_evaluation_add(ctx, ev, y_true[i], y_pred[i], NULL, NULL), CNK_OK);
    assert_int_equal(cnk_evaluation_count(ev), 6);
    assert_int_equal(cnk_evaluation_n_classes(ev), 4);
    assert_string_equal(cnk_evaluation_class_name(ev, 2), "c");
    assert_null(cnk_evaluation_class_name(ev, 4));
    assert_int_equal(cnk_evaluation_accuracy(ctx, ev, &acc), CNK_OK);
    assert_float_equal(acc, 4.0 / 6, 1e-12);
    double p, r, f;
    size_t support;
    assert_int_equal(cnk_evaluation_scores(ctx, ev, "a", &p, &r, &f, &support), CNK_OK);
    assert_float_equal(p, 0.5, 1e-12);
    assert_float_equal(r, 0.5, 1e-12);
    assert_float_equal(f, 0.5, 1e-12);
    assert_int_equal(support, 2);
    assert_int_equal(cnk_evaluation_scores(ctx, ev, "b", &p, &r, &f, &support), CNK_OK);
    assert_float_equal(p, 2.0 / 3, 1e-12);
    assert_float_equal(r, 1.0, 1e-12);
    assert_float_equal(f, 0.8, 1e-12);
    assert_int_equal(cnk_evaluation_scores(ctx, ev, "c", &p, &r, &f, NULL), CNK_OK);
    assert_float_equal(p, 1.0, 1e-12);
    assert_float_equal(f, 2.0 / 3, 1e-12);
    /* macro avg over the classes that occur (as classification_report with labels=None) */
    assert_int_equal(cnk_evaluation_scores(ctx, ev, "macro avg", &p, &r, &f, &support), CNK_OK);
    assert_float_equal(p, (0.5 + 2.0 / 3 + 1.0) / 3, 1e-12);
    assert_float_equal(r, (0.5 + 1.0 + 0.5) / 3, 1e-12);
    assert_float_equal(f, (0.5 + 0.8 + 2.0 / 3) / 3, 1e-12);
    assert_int_equal(support, 6);
    assert_int_equal(cnk_evaluation_scores(ctx, ev, "weighted avg", NULL, NULL, &f, NULL), CNK_OK);
    assert_float_equal(f, (0.5 + 0.8 + 2.0 / 3) / 3, 1e-12); /* equal supports */
    assert_int_equal(cnk_evaluation_scores(ctx, ev, "unused", &p, &r, &f, &support), CNK_OK);
    assert_true(p == 0 && r == 0 && f == 0 && support == 0);
    assert_int_equal(cnk_evaluation_scores(ctx, ev, "nope", &p, NULL, NULL, NULL), CNK_ERR_ARG);
    size_t count;
    assert_int_equal(cnk_evaluation_confusion(ctx, ev, 1, 0, &count), CNK_OK); /* a predicted as b */
    assert_int_equal(count, 1);
    assert_int_equal(cnk_evaluation_confusion(ctx, ev, 0, 0, &count), CNK_OK);
    assert_int_equal(count, 2);
    /* The report text is scikit-learn's layout; the report folder holds the same report.txt. */
    char *text = NULL;
    assert_int_equal(cnk_evaluation_report_text(ctx, ev, &text), CNK_OK);
    assert_non_null(strstr(text, "           a       0.50      0.50      0.50         2\n"));
    assert_non_null(strstr(text, "           b       0.67      1.00      0.80         2\n"));
    assert_non_null(strstr(text, "    accuracy                           0.67         6\n"));
    assert_non_null(strstr(text, "   macro avg       0.72      0.67      0.66         6\n"));
    char dir[4096], report[4300];
    tu_tmpdir(dir, sizeof dir, "api_report");
    snprintf(report, sizeof report, "%s/report", dir);
    assert_int_equal(cnk_evaluation_write_report(ctx, ev, report, "api test"), CNK_OK);
    snprintf(report, sizeof report, "%s/report/report.txt", dir);
    FILE *fp = fopen(report, "rb");
    assert_non_null(fp);
    char written[8192];
    size_t n = fread(written, 1, sizeof written - 1, fp);
    fclose(fp);
    written[n] = '\0';
    assert_string_equal(written, text);
    tu_rmtree(dir);
    cnk_free(text);
    /* Errors: indices out of range, probabilities for some predictions only. */
    assert_int_equal(cnk_evaluation_add(ctx, ev, 4, 0, NULL, NULL), CNK_ERR_ARG);
    double proba[4] = {0.25, 0.25, 0.25, 0.25};
    assert_int_equal(cnk_evaluation_add(ctx, ev, 0, 0, proba, NULL), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_context_error(ctx), "every prediction or none"));
    cnk_evaluation_free(ev);
    const char *twice[] = {"x", "x"};
    assert_int_equal(cnk_evaluation_create(ctx, 2, twice, &ev), CNK_ERR_ARG);
    assert_null(ev);
    cnk_context_free(ctx);
}

/* ---- training and classifying ---- */

/* A 16x16 RGB image of horizontal (cls 0) or vertical (cls 1) stripes with some noise. */
static void stripes(int cls, int index, unsigned char *rgb)
{
    unsigned state = 1234u + 77u * (unsigned)index + 5u * (unsigned)cls;
    int period = 4 + index % 3;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            state = state * 1103515245u + 12345u;
            int along = cls == 0 ? y : x;
            int v = ((along + index) % period) < period / 2 ? 200 : 60;
            v += (int)((state >> 16) % 41) - 20;
            for (int c = 0; c < 3; c++) rgb[(y * 16 + x) * 3 + c] = (unsigned char)(v + 10 * c);
        }
}

static void write_pnm(const char *path, const unsigned char *pixels, int width, int height, int channels)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fprintf(fp, "P%d\n%d %d\n255\n", channels == 3 ? 6 : 5, width, height);
    assert_int_equal(fwrite(pixels, 1, (size_t)width * height * channels, fp), (size_t)width * height * channels);
    assert_int_equal(fclose(fp), 0);
}

typedef struct api_fixture {
    char dir[4096];
    char images[4200];
    char image_model[4200];
    char audio[4200];
    char audio_model[4200];
    char fusion_model[4200];
    char csv[4200];
    char csv_model[4200];
    int epochs_seen;
} api_fixture;

static void count_epoch(void *user, int epoch, int epochs, double train_loss, double train_acc, double val_loss,
                        double val_acc)
{
    api_fixture *f = user;
    assert_int_equal(epoch, f->epochs_seen + 1);
    assert_int_equal(epochs, 2);
    assert_true(isfinite(train_loss) && train_acc >= 0 && train_acc <= 1);
    assert_true(isfinite(val_loss) && val_acc >= 0 && val_acc <= 1);
    f->epochs_seen++;
}

static int setup_models(void **state)
{
    static api_fixture f;
    memset(&f, 0, sizeof f);
    tu_tmpdir(f.dir, sizeof f.dir, "api_models");
    snprintf(f.images, sizeof f.images, "%s/images", f.dir);
    snprintf(f.image_model, sizeof f.image_model, "%s/images.cnk", f.dir);
    snprintf(f.audio, sizeof f.audio, "%s/audio", f.dir);
    snprintf(f.audio_model, sizeof f.audio_model, "%s/audio.cnk", f.dir);
    snprintf(f.fusion_model, sizeof f.fusion_model, "%s/fusion.cnk", f.dir);
    snprintf(f.csv, sizeof f.csv, "%s/rows.csv", f.dir);
    snprintf(f.csv_model, sizeof f.csv_model, "%s/rows.cnk", f.dir);
    static const char *const classes[] = {"horizontal", "vertical"};
    for (int c = 0; c < 2; c++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", f.images, classes[c]);
        if (tu_system("mkdir -p '%s'", path) != 0) return -1;
        for (int i = 0; i < 20; i++) {
            unsigned char rgb[16 * 16 * 3];
            stripes(c, i, rgb);
            snprintf(path, sizeof path, "%s/%s/%02d.ppm", f.images, classes[c], i);
            write_pnm(path, rgb, 16, 16, 3);
        }
    }
    cnk_ctx *ctx = new_ctx();
    cnk_training *t = cnk_training_create(f.images, f.image_model);
    assert_non_null(t);
    assert_int_equal(cnk_training_set(ctx, t, "image-size", "16x16"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "epochs", "2"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "batch-size", "8"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "no-cache", NULL), CNK_OK);
    cnk_training_on_epoch(t, count_epoch, &f);
    if (cnk_training_run(ctx, t) != CNK_OK) fail_msg("training: %s", cnk_context_error(ctx));
    assert_int_equal(f.epochs_seen, 2);
    assert_int_equal(cnk_training_epochs_run(t), 2);
    assert_true(cnk_training_best_epoch(t) >= 1 && cnk_training_best_epoch(t) <= 2);
    assert_string_equal(cnk_training_input_kind(t), "image");
    assert_int_equal(cnk_training_count(t, "train") + cnk_training_count(t, "val") + cnk_training_count(t, "test"), 40);
    assert_int_equal(cnk_training_count(t, "test"), 12); /* the default 0.3 of 40, stratified */
    double acc = cnk_training_test_accuracy(t);
    assert_true(acc >= 0 && acc <= 1);
    cnk_training_free(t);

    /* A tiny audio model on the built-in demo clips (4 classes, 4 clips of 0.5 s at 8 kHz each). */
    cnk_ctx internal;
    tu_ctx(&internal);
    cnk_demo_params demo;
    cnk_demo_default_params(&demo);
    demo.clips_per_class = 4;
    demo.seconds = 0.5;
    demo.sample_rate = 8000;
    assert_int_equal(cnk_demo_write(&internal, f.audio, &demo), CNK_OK);
    t = cnk_training_create(f.audio, f.audio_model);
    assert_int_equal(cnk_training_set(ctx, t, "epochs", "1"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "batch-size", "8"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "cache", ""), CNK_OK);
    if (cnk_training_run(ctx, t) != CNK_OK) fail_msg("audio training: %s", cnk_context_error(ctx));
    assert_string_equal(cnk_training_input_kind(t), "mel");
    cnk_training_free(t);
    /* And a late-fusion model (mel + wavelet) on the same clips. */
    t = cnk_training_create(f.audio, f.fusion_model);
    assert_int_equal(cnk_training_set(ctx, t, "input", "mel+wavelet"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "epochs", "1"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "batch-size", "8"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "no-cache", NULL), CNK_OK);
    if (cnk_training_run(ctx, t) != CNK_OK) fail_msg("fusion training: %s", cnk_context_error(ctx));
    cnk_training_free(t);
    /* A CSV of feature rows: class "high" has a larger first feature than class "low". */
    FILE *fp = fopen(f.csv, "w");
    assert_non_null(fp);
    fprintf(fp, "id,f1,f2,f3,label\n");
    for (int i = 0; i < 40; i++)
        fprintf(fp, "row%d,%.3f,%.3f,%.3f,%s\n", i, (i % 2 ? 2.0 : -2.0) + 0.1 * (i % 7), 0.3 * (i % 5), -0.2 * (i % 3),
                i % 2 ? "high" : "low");
    assert_int_equal(fclose(fp), 0);
    t = cnk_training_create(f.csv, f.csv_model);
    assert_int_equal(cnk_training_set(ctx, t, "epochs", "20"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "no-cache", NULL), CNK_OK);
    if (cnk_training_run(ctx, t) != CNK_OK) fail_msg("CSV training: %s", cnk_context_error(ctx));
    assert_string_equal(cnk_training_input_kind(t), "csv");
    cnk_training_free(t);
    cnk_context_free(ctx);
    *state = &f;
    return 0;
}

static int teardown_models(void **state)
{
    api_fixture *f = *state;
    if (f) tu_rmtree(f->dir);
    return 0;
}

static void test_training_option_errors(void **state)
{
    (void)state;
    cnk_ctx *ctx = new_ctx();
    cnk_training *t = cnk_training_create("/nonexistent/data", "/nonexistent/m.cnk");
    assert_non_null(t);
    assert_int_equal(cnk_training_set(ctx, t, "epocs", "3"), CNK_ERR_ARG);
    assert_string_equal(cnk_context_error(ctx), "training: unknown option 'epocs'");
    assert_int_equal(cnk_training_set(ctx, t, "epochs", "3x"), CNK_ERR_ARG);
    assert_string_equal(cnk_context_error(ctx), "training option epochs: bad value '3x'");
    assert_int_equal(cnk_training_set(ctx, t, "lr", "0"), CNK_ERR_ARG);
    assert_int_equal(cnk_training_set(ctx, t, "image-size", "16x"), CNK_ERR_ARG);
    /* the regularisation and spectrogram clean-up options, with the CLI's values and ranges */
    const char *good[][2] = {{"label-smoothing", "0.1"}, {"ema", "0.995"}, {"mixup", "0.2"}, {"tta", "flip"},
                             {"top-db", "60"}, {"trim-db", "0"}, {"lifter", "13"}, {"center", "off"},
                             {"clip-norm", "cmvn"}};
    const char *bad[][2] = {{"label-smoothing", "1"}, {"ema", "1"}, {"mixup", "-0.1"}, {"tta", "mirror"},
                            {"top-db", "0"}, {"top-db", "81"}, {"trim-db", "-1"}, {"lifter", "-1"},
                            {"center", "yes"}, {"clip-norm", "std"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(cnk_training_set(ctx, t, good[i][0], good[i][1]), CNK_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cnk_training_set(ctx, t, bad[i][0], bad[i][1]), CNK_ERR_ARG);
        assert_non_null(strstr(cnk_context_error(ctx), bad[i][0]));
    }
    assert_int_equal(cnk_training_set(ctx, t, "seed", "3"), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_context_error(ctx), "cnk_context_set_seed"));
    assert_int_equal(cnk_training_set(ctx, t, "arch", NULL), CNK_ERR_ARG);
    assert_int_equal(cnk_training_set(ctx, t, "train", "/nonexistent/train"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "from", "/nonexistent/base.cnk"), CNK_OK);
    assert_int_equal(cnk_training_set(ctx, t, "freeze", "backbone"), CNK_OK);
    assert_int_equal(cnk_training_run(ctx, t), CNK_ERR_ARG); /* data and train together */
    cnk_training_free(t);
    t = cnk_training_create("/nonexistent/data", "/nonexistent/m.cnk");
    assert_int_equal(cnk_training_set(ctx, t, "freeze", "none"), CNK_OK);
    assert_int_equal(cnk_training_run(ctx, t), CNK_ERR_ARG);
    assert_string_equal(cnk_context_error(ctx),
                        "training: the freeze, finetune-epochs, unfreeze and finetune-lr options go with from");
    cnk_training_free(t);
    t = cnk_training_create("/nonexistent/data", "/nonexistent/m.cnk");
    assert_int_equal(cnk_training_set(ctx, t, "finetune-lr", "-1"), CNK_ERR_ARG);
    assert_int_equal(cnk_training_set(ctx, t, "unfreeze", "2"), CNK_OK);
    assert_int_equal(cnk_training_run(ctx, t), CNK_ERR_ARG);
    cnk_training_free(t);
    t = cnk_training_create("/nonexistent/data", "/nonexistent/m.cnk");
    assert_int_equal(cnk_training_set(ctx, t, "fusion", "concat"), CNK_OK);
    assert_int_equal(cnk_training_run(ctx, t), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_context_error(ctx), "fusion option goes with input mel+wavelet"));
    cnk_training_free(t);
    t = cnk_training_create("/nonexistent/data", "/nonexistent/m.cnk");
    int rc = cnk_training_run(ctx, t);
    assert_true(rc == CNK_ERR_IO || rc == CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_context_error(ctx), "/nonexistent/data"));
    assert_true(isnan(cnk_training_test_accuracy(t)));
    assert_int_equal(cnk_training_epochs_run(t), 0);
    cnk_training_free(t);
    cnk_context_free(ctx);
}

static void test_classify_pixels_equals_files(void **state)
{
    api_fixture *f = *state;
    cnk_ctx *ctx = new_ctx();
    cnk_predictor *p;
    assert_int_equal(cnk_predictor_load(ctx, f->image_model, &p), CNK_OK);
    assert_int_equal(cnk_predictor_n_classes(p), 2);
    assert_string_equal(cnk_predictor_class_name(p, 0), "horizontal");
    assert_string_equal(cnk_predictor_class_name(p, 1), "vertical");
    assert_null(cnk_predictor_class_name(p, 2));
    assert_string_equal(cnk_predictor_input_kind(p), "image");
    assert_int_equal(cnk_predictor_sample_rate(p), 0);
    int w, h, c;
    cnk_predictor_image_size(p, &w, &h, &c);
    assert_true(w == 16 && h == 16 && c == 3);
    char path[4400];
    unsigned char rgb[16 * 16 * 3], rgba[16 * 16 * 4], grey[16 * 16], big[32 * 32 * 3];
    double from_file[2], from_pixels[2];
    for (int i = 0; i < 3; i++) {
        stripes(i % 2, 30 + i, rgb);
        /* RGB at the model's size: exactly the file's numbers. */
        snprintf(path, sizeof path, "%s/rgb%d.ppm", f->dir, i);
        write_pnm(path, rgb, 16, 16, 3);
        assert_int_equal(cnk_predictor_classify_file(ctx, p, path, from_file), CNK_OK);
        assert_float_equal(from_file[0] + from_file[1], 1.0, 1e-9);
        assert_int_equal(cnk_predictor_classify_pixels(ctx, p, rgb, 16, 16, 3, from_pixels), CNK_OK);
        assert_memory_equal(from_file, from_pixels, sizeof from_file);
        /* RGBA: alpha ignored. */
        for (int k = 0; k < 256; k++) {
            memcpy(rgba + 4 * k, rgb + 3 * k, 3);
            rgba[4 * k + 3] = (unsigned char)k;
        }
        assert_int_equal(cnk_predictor_classify_pixels(ctx, p, rgba, 16, 16, 4, from_pixels), CNK_OK);
        assert_memory_equal(from_file, from_pixels, sizeof from_file);
        /* Grey: replicated into RGB as stb does for a grey file. */
        for (int k = 0; k < 256; k++) grey[k] = rgb[3 * k];
        snprintf(path, sizeof path, "%s/grey%d.pgm", f->dir, i);
        write_pnm(path, grey, 16, 16, 1);
        assert_int_equal(cnk_predictor_classify_file(ctx, p, path, from_file), CNK_OK);
        assert_int_equal(cnk_predictor_classify_pixels(ctx, p, grey, 16, 16, 1, from_pixels), CNK_OK);
        assert_memory_equal(from_file, from_pixels, sizeof from_file);
        /* Twice the size: resized on both paths; the buffer's 8-bit rounding moves little. */
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) memcpy(big + (y * 32 + x) * 3, rgb + ((y / 2) * 16 + x / 2) * 3, 3);
        snprintf(path, sizeof path, "%s/big%d.ppm", f->dir, i);
        write_pnm(path, big, 32, 32, 3);
        assert_int_equal(cnk_predictor_classify_file(ctx, p, path, from_file), CNK_OK);
        assert_int_equal(cnk_predictor_classify_pixels(ctx, p, big, 32, 32, 3, from_pixels), CNK_OK);
        assert_float_equal(from_file[0], from_pixels[0], 0.02);
    }
    /* Wrong inputs for an image model. */
    float samples[8000] = {0};
    assert_int_equal(cnk_predictor_classify_samples(ctx, p, samples, 8000, 8000, from_pixels), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_context_error(ctx), "takes image input"));
    assert_int_equal(cnk_predictor_classify_row(ctx, p, samples, 10, from_pixels), CNK_ERR_ARG);
    assert_int_equal(cnk_predictor_classify_pixels(ctx, p, rgb, 16, 16, 5, from_pixels), CNK_ERR_ARG);
    assert_int_equal(cnk_predictor_classify_pixels(ctx, p, rgb, 0, 16, 3, from_pixels), CNK_ERR_ARG);
    snprintf(path, sizeof path, "%s/missing.ppm", f->dir);
    assert_int_equal(cnk_predictor_classify_file(ctx, p, path, from_pixels), CNK_ERR_IO);
    assert_non_null(strstr(cnk_context_error(ctx), "missing.ppm"));
    cnk_predictor_free(p);
    cnk_context_free(ctx);
}

/* cnk_predictor_evaluate classifies the whole folder as classify_file does file by file. */
static void test_evaluate_folder(void **state)
{
    api_fixture *f = *state;
    cnk_ctx *ctx = new_ctx();
    cnk_predictor *p;
    assert_int_equal(cnk_predictor_load(ctx, f->image_model, &p), CNK_OK);
    cnk_evaluation *ev;
    assert_int_equal(cnk_predictor_evaluate(ctx, p, f->images, "", &ev), CNK_OK);
    assert_int_equal(cnk_evaluation_count(ev), 40);
    size_t confusion[2][2] = {{0}};
    static const char *const classes[] = {"horizontal", "vertical"};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 20; i++) {
            char path[4400];
            double proba[2];
            snprintf(path, sizeof path, "%s/%s/%02d.ppm", f->images, classes[c], i);
            assert_int_equal(cnk_predictor_classify_file(ctx, p, path, proba), CNK_OK);
            confusion[c][cnk_top_class(proba, 2)]++;
        }
    for (int t = 0; t < 2; t++)
        for (int q = 0; q < 2; q++) {
            size_t n;
            assert_int_equal(cnk_evaluation_confusion(ctx, ev, t, q, &n), CNK_OK);
            assert_int_equal(n, confusion[t][q]);
        }
    double acc;
    assert_int_equal(cnk_evaluation_accuracy(ctx, ev, &acc), CNK_OK);
    assert_float_equal(acc, (confusion[0][0] + confusion[1][1]) / 40.0, 1e-12);
    print_message("image model: accuracy %.3f on its 40 training-folder images after 2 epochs\n", acc);
    cnk_evaluation_free(ev);
    assert_int_equal(cnk_predictor_evaluate(ctx, p, "/nonexistent/folder", "", &ev), CNK_ERR_IO);
    assert_null(ev);
    cnk_predictor_free(p);
    cnk_context_free(ctx);
}

/* A CSV model: rows classified one by one agree with evaluating the whole CSV. */
static void test_classify_rows(void **state)
{
    api_fixture *f = *state;
    cnk_ctx *ctx = new_ctx();
    cnk_predictor *p;
    assert_int_equal(cnk_predictor_load(ctx, f->csv_model, &p), CNK_OK);
    assert_string_equal(cnk_predictor_input_kind(p), "csv");
    assert_string_equal(cnk_predictor_class_name(p, 0), "high");
    size_t confusion[2][2] = {{0}};
    for (int i = 0; i < 40; i++) {
        float row[3] = {(float)((i % 2 ? 2.0 : -2.0) + 0.1 * (i % 7)), (float)(0.3 * (i % 5)), (float)(-0.2 * (i % 3))};
        /* the same values as the CSV's text */
        char text[64];
        for (int k = 0; k < 3; k++) {
            snprintf(text, sizeof text, "%.3f", row[k]);
            row[k] = strtof(text, NULL);
        }
        double proba[2];
        assert_int_equal(cnk_predictor_classify_row(ctx, p, row, 3, proba), CNK_OK);
        assert_float_equal(proba[0] + proba[1], 1.0, 1e-9);
        confusion[i % 2 ? 0 : 1][cnk_top_class(proba, 2)]++;
    }
    cnk_evaluation *ev;
    assert_int_equal(cnk_predictor_evaluate(ctx, p, f->csv, "", &ev), CNK_OK);
    assert_int_equal(cnk_evaluation_count(ev), 40);
    for (int t = 0; t < 2; t++)
        for (int q = 0; q < 2; q++) {
            size_t n;
            assert_int_equal(cnk_evaluation_confusion(ctx, ev, t, q, &n), CNK_OK);
            assert_int_equal(n, confusion[t][q]);
        }
    double acc;
    assert_int_equal(cnk_evaluation_accuracy(ctx, ev, &acc), CNK_OK);
    print_message("CSV model: accuracy %.3f on its 40 rows\n", acc);
    assert_true(acc >= 0.9); /* separable by the first feature */
    cnk_evaluation_free(ev);
    double proba[2];
    float row[3] = {0};
    assert_int_equal(cnk_predictor_classify_row(ctx, p, row, 2, proba), CNK_ERR_ARG);
    assert_int_equal(cnk_predictor_classify_file(ctx, p, f->csv, proba), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_context_error(ctx), "cnk_predictor_classify_row"));
    cnk_predictor_free(p);
    cnk_context_free(ctx);
}

typedef struct callback_log {
    int n_warnings, n_progress;
    char last_warning[1024];
} callback_log;

static void log_warning(void *user, const char *message)
{
    callback_log *log = user;
    log->n_warnings++;
    snprintf(log->last_warning, sizeof log->last_warning, "%s", message);
}

static void log_progress(void *user, const char *stage, size_t done, size_t total, const char *extra)
{
    (void)extra;
    callback_log *log = user;
    assert_non_null(stage);
    assert_true(done <= total);
    log->n_progress++;
}

/* The context's callbacks: a broken file in an evaluated folder is reported through warn and counted, the
 * rest is classified; progress is reported. */
static void test_callbacks_report_skipped_files(void **state)
{
    api_fixture *f = *state;
    cnk_ctx *ctx = new_ctx();
    callback_log log = {0};
    cnk_context_set_callbacks(ctx, log_progress, log_warning, &log);
    char data[4400], path[4600];
    snprintf(data, sizeof data, "%s/with_broken", f->dir);
    assert_int_equal(tu_system("mkdir -p '%s/horizontal' '%s/vertical' && cp '%s/horizontal/0'[0-2].ppm '%s/horizontal/'"
                               " && cp '%s/vertical/0'[0-2].ppm '%s/vertical/'",
                               data, data, f->images, data, f->images, data),
                     0);
    snprintf(path, sizeof path, "%s/vertical/broken.png", data);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("\x89PNG\r\n\x1a\n but not a PNG at all", fp);
    assert_int_equal(fclose(fp), 0);
    cnk_predictor *p;
    assert_int_equal(cnk_predictor_load(ctx, f->image_model, &p), CNK_OK);
    cnk_evaluation *ev;
    assert_int_equal(cnk_predictor_evaluate(ctx, p, data, "", &ev), CNK_OK);
    print_message("%zu classified, %d warnings (last: %s), %d progress reports\n", cnk_evaluation_count(ev),
                  log.n_warnings, log.last_warning, log.n_progress);
    assert_int_equal(cnk_evaluation_count(ev), 6);
    assert_int_equal(log.n_warnings, 1);
    assert_int_equal(cnk_context_warnings(ctx), 1);
    assert_non_null(strstr(log.last_warning, "broken.png"));
    assert_true(log.n_progress >= 1);
    cnk_evaluation_free(ev);
    cnk_predictor_free(p);
    cnk_context_free(ctx);
}

/* An audio file and its decoded samples give identical probabilities, at the file's rate or the model's. */
static void test_classify_samples_equals_files(void **state)
{
    api_fixture *f = *state;
    cnk_ctx *ctx = new_ctx();
    cnk_predictor *p;
    assert_int_equal(cnk_predictor_load(ctx, f->audio_model, &p), CNK_OK);
    assert_int_equal(cnk_predictor_n_classes(p), 4);
    assert_string_equal(cnk_predictor_input_kind(p), "mel");
    int model_rate = cnk_predictor_sample_rate(p);
    assert_true(model_rate >= 1000);
    cnk_predictor_image_size(p, NULL, NULL, NULL);
    char clip[4400];
    snprintf(clip, sizeof clip, "%s/%s/%s_000.wav", f->audio, cnk_demo_class_name(2), cnk_demo_class_name(2));
    double from_file[4], from_samples[4];
    assert_int_equal(cnk_predictor_classify_file(ctx, p, clip, from_file), CNK_OK);
    assert_float_equal(from_file[0] + from_file[1] + from_file[2] + from_file[3], 1.0, 1e-9);
    float *samples;
    size_t n;
    int rate;
    assert_int_equal(cnk_audio_decode(ctx, clip, 0, &samples, &n, &rate), CNK_OK);
    assert_int_equal(rate, 8000);
    assert_int_equal(cnk_predictor_classify_samples(ctx, p, samples, n, rate, from_samples), CNK_OK);
    assert_memory_equal(from_file, from_samples, sizeof from_file);
    cnk_free(samples);
    assert_int_equal(cnk_audio_decode(ctx, clip, model_rate, &samples, &n, &rate), CNK_OK);
    assert_int_equal(rate, model_rate);
    assert_int_equal(cnk_predictor_classify_samples(ctx, p, samples, n, rate, from_samples), CNK_OK);
    assert_memory_equal(from_file, from_samples, sizeof from_file);
    assert_int_equal(cnk_predictor_classify_samples(ctx, p, samples, n, 0, from_samples), CNK_ERR_ARG);
    assert_int_equal(cnk_predictor_classify_samples(ctx, p, samples, 0, rate, from_samples), CNK_ERR_ARG);
    assert_string_equal(cnk_context_error(ctx), "classify: no samples");
    unsigned char pixel[3] = {0};
    assert_int_equal(cnk_predictor_classify_pixels(ctx, p, pixel, 1, 1, 3, from_samples), CNK_ERR_ARG);
    cnk_free(samples);
    cnk_predictor_free(p);
    /* A damaged model file is refused with its name in the message. */
    char bad[4400];
    snprintf(bad, sizeof bad, "%s/damaged.cnk", f->dir);
    assert_int_equal(tu_system("head -c 100 '%s' > '%s'", f->audio_model, bad), 0);
    assert_int_equal(cnk_predictor_load(ctx, bad, &p), CNK_ERR_INPUT);
    assert_null(p);
    assert_non_null(strstr(cnk_context_error(ctx), "damaged.cnk"));
    assert_int_equal(cnk_top_class(from_file, 0), -1);
    cnk_context_free(ctx);
}

/* A late-fusion model classifies files through its own module: the same numbers as the classifier's file list;
 * and the file's decoded samples, at its rate or another, give exactly the file's probabilities. */
static void test_classify_fusion_model(void **state)
{
    api_fixture *f = *state;
    cnk_ctx *ctx = new_ctx();
    cnk_predictor *p;
    assert_int_equal(cnk_predictor_load(ctx, f->fusion_model, &p), CNK_OK);
    assert_string_equal(cnk_predictor_input_kind(p), "audio");
    int model_rate = cnk_predictor_sample_rate(p);
    assert_true(model_rate >= 1000);
    assert_int_equal(cnk_predictor_n_classes(p), 4);
    char clip[4400];
    snprintf(clip, sizeof clip, "%s/%s/%s_001.wav", f->audio, cnk_demo_class_name(1), cnk_demo_class_name(1));
    double proba[4];
    assert_int_equal(cnk_predictor_classify_file(ctx, p, clip, proba), CNK_OK);
    assert_float_equal(proba[0] + proba[1] + proba[2] + proba[3], 1.0, 1e-6);
    cnk_ctx internal;
    tu_ctx(&internal);
    cnk_classifier *c;
    assert_int_equal(cnk_classifier_load(&internal, f->fusion_model, &c), CNK_OK);
    const char *paths[1] = {clip};
    cnk_classified res;
    assert_int_equal(cnk_classifier_run_paths(&internal, c, paths, 1, "", &res), CNK_OK);
    assert_int_equal(res.n, 1);
    assert_memory_equal(res.proba, proba, sizeof proba);
    cnk_classified_release(&res);
    cnk_classifier_free(c);
    double from_samples[4];
    for (int at_model_rate = 0; at_model_rate < 2; at_model_rate++) {
        float *samples;
        size_t n;
        int rate;
        assert_int_equal(cnk_audio_decode(ctx, clip, at_model_rate ? model_rate : 0, &samples, &n, &rate), CNK_OK);
        assert_int_equal(cnk_predictor_classify_samples(ctx, p, samples, n, rate, from_samples), CNK_OK);
        assert_memory_equal(from_samples, proba, sizeof proba);
        cnk_free(samples);
    }
    /* Another clip, then the first again: the kept workers give each file's own numbers every time. */
    char other[4400];
    snprintf(other, sizeof other, "%s/%s/%s_002.wav", f->audio, cnk_demo_class_name(0), cnk_demo_class_name(0));
    double again[4];
    assert_int_equal(cnk_predictor_classify_file(ctx, p, other, again), CNK_OK);
    assert_memory_not_equal(again, proba, sizeof proba);
    assert_int_equal(cnk_predictor_classify_file(ctx, p, clip, again), CNK_OK);
    assert_memory_equal(again, proba, sizeof proba);
    /* Errors: a missing file, a file that is not audio (named in the message, not a warning). */
    char first[4400];
    snprintf(first, sizeof first, "%s", clip);
    snprintf(clip, sizeof clip, "%s/missing.wav", f->dir);
    assert_int_equal(cnk_predictor_classify_file(ctx, p, clip, proba), CNK_ERR_IO);
    snprintf(clip, sizeof clip, "%s/images/vertical/00.ppm", f->dir);
    assert_int_equal(cnk_predictor_classify_file(ctx, p, clip, proba), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_context_error(ctx), "00.ppm"));
    assert_int_equal(cnk_context_warnings(ctx), 0);
    assert_int_equal(cnk_predictor_classify_file(ctx, p, first, again), CNK_OK); /* still usable after errors */
    assert_memory_equal(again, proba, sizeof proba);
    cnk_predictor_free(p);
    cnk_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_features_file_and_buffer_match_librosa),
        cmocka_unit_test(test_feature_errors),
        cmocka_unit_test(test_evaluation_matches_sklearn),
        cmocka_unit_test(test_training_option_errors),
    };
    const struct CMUnitTest model_tests[] = {
        cmocka_unit_test(test_classify_pixels_equals_files),
        cmocka_unit_test(test_evaluate_folder),
        cmocka_unit_test(test_classify_samples_equals_files),
        cmocka_unit_test(test_classify_fusion_model),
        cmocka_unit_test(test_classify_rows),
        cmocka_unit_test(test_callbacks_report_skipped_files),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests_name("models", model_tests, setup_models, teardown_models);
}
