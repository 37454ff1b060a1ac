/* classify.c: cnnkit/classify.h over pipeline/classify.h: a loaded model plus the preprocessing worker that
 * turns files and buffers into the features the model was trained on. */
#include "core/context.h"
#include "core/fsutil.h"
#include "core/npy.h"
#include "features/audio.h"
#include "features/extract.h"
#include "features/image.h"
#include "pipeline/classify.h"
#include "pipeline/dataset.h"
#include "pipeline/fusion.h"
#include "pipeline/preprocess.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/classify.h"

enum { CLASSIFY_MESSAGE = 1024 };

struct cnk_predictor {
    cnk_classifier *classifier;
    cnk_prep_worker *worker;  /* made on the first file (FFT plans), kept */
    cnk_extractor *extractor; /* made on the first sample buffer, kept */
    cnk_fusion_predictor *fusion;   /* late-fusion models: the network and both views' preprocessing */
    cnk_extractor *view_extractor[2]; /* and their mel and wavelet extractors (first sample buffer) */
    cnk_prep_worker *view_worker[2];  /* and their file preprocessing workers (first file) */
};

int cnk_predictor_load(cnk_ctx *ctx, const char *model_path, cnk_predictor **out)
{
    if (!out) return cnk_fail(ctx, CNK_ERR_ARG, "predictor: NULL output pointer");
    *out = NULL;
    if (!model_path) return cnk_fail(ctx, CNK_ERR_ARG, "predictor: NULL model path");
    cnk_predictor *p = calloc(1, sizeof *p);
    if (!p) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", model_path);
    int rc = cnk_classifier_load(ctx, model_path, &p->classifier);
    if (!rc && cnk_classifier_is_fusion(p->classifier))
        rc = cnk_fusion_predictor_create(ctx, cnk_classifier_modelfile(p->classifier), model_path, &p->fusion);
    if (rc) {
        cnk_predictor_free(p);
        return rc;
    }
    *out = p;
    return CNK_OK;
}

void cnk_predictor_free(cnk_predictor *p)
{
    if (!p) return;
    cnk_extractor_free(p->extractor);
    for (int v = 0; v < 2; v++) {
        cnk_extractor_free(p->view_extractor[v]);
        cnk_prep_worker_free(p->view_worker[v]);
    }
    cnk_fusion_predictor_free(p->fusion);
    cnk_prep_worker_free(p->worker);
    cnk_classifier_free(p->classifier);
    free(p);
}

int cnk_predictor_n_classes(const cnk_predictor *p) { return cnk_classifier_n_classes(p->classifier); }

const char *cnk_predictor_class_name(const cnk_predictor *p, int index)
{
    if (index < 0 || index >= cnk_classifier_n_classes(p->classifier)) return NULL;
    return cnk_classifier_class_names(p->classifier)[index];
}

static const cnk_preprocess *prep_of(const cnk_predictor *p) { return cnk_classifier_preprocess(p->classifier); }

/* Late-fusion (mel + wavelet) and YAMNet-transfer models predict audio files through their own modules;
 * pipeline/classify.c leaves their preprocessing unset, while a plain model's always has n_fft >= 16 (the
 * model file's preprocessing text is range-checked when it is loaded). */
static int is_special(const cnk_predictor *p) { return prep_of(p)->n_fft == 0; }

const char *cnk_predictor_input_kind(const cnk_predictor *p)
{
    return is_special(p) ? "audio" : cnk_prep_kind_name(prep_of(p)->kind);
}

int cnk_predictor_sample_rate(const cnk_predictor *p)
{
    if (p->fusion) return cnk_fusion_predictor_view(p->fusion, 0)->sample_rate;
    return !is_special(p) && cnk_prep_kind_is_audio(prep_of(p)->kind) ? prep_of(p)->sample_rate : 0;
}

void cnk_predictor_image_size(const cnk_predictor *p, int *width, int *height, int *channels)
{
    const cnk_preprocess *prep = prep_of(p);
    int image = !is_special(p) && prep->kind == CNK_PREP_IMAGE;
    if (width) *width = image ? prep->width : 0;
    if (height) *height = image ? prep->height : 0;
    if (channels) *channels = image ? prep->channels : 0;
}

int cnk_top_class(const double *proba, int n)
{
    if (!proba || n < 1) return -1;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (proba[i] > proba[best]) best = i;
    return best;
}

/* Runs the network on un-normalised features and releases them. */
static int predict_and_release(cnk_ctx *ctx, cnk_predictor *p, cnk_array *features, double *proba)
{
    int rc = cnk_classifier_predict_features(ctx, p->classifier, features, proba);
    cnk_array_release(features);
    return rc;
}

static void keep_warning(void *user, const char *message) { snprintf(user, CLASSIFY_MESSAGE, "%s", message); }

static int classify_fusion(cnk_ctx *ctx, cnk_predictor *p, const char *path, const float *samples, size_t n,
                           double *proba);

/* A transfer model: the file goes through the classifier's list-of-files path, which reports a file it
 * cannot classify as a skipped input; that report becomes this call's error. */
static int classify_file_special(cnk_ctx *ctx, cnk_predictor *p, const char *path, double *proba)
{
    if (!cnk_is_file(path)) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open (no such file or unreadable)", path);
    char warning[CLASSIFY_MESSAGE] = "";
    cnk_warn_fn warn = ctx->warn;
    void *user = ctx->user;
    size_t n_warnings = ctx->n_warnings;
    ctx->warn = keep_warning;
    ctx->user = warning;
    const char *paths[1] = {path};
    cnk_classified res = {0};
    int rc = cnk_classifier_run_paths(ctx, p->classifier, paths, 1, "", &res);
    ctx->warn = warn;
    ctx->user = user;
    ctx->n_warnings = n_warnings;
    if (!rc && res.n != 1)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s", warning[0] ? warning : "the file could not be classified");
    if (!rc) memcpy(proba, res.proba, (size_t)cnk_classifier_n_classes(p->classifier) * sizeof *proba);
    cnk_classified_release(&res);
    return rc;
}

int cnk_predictor_classify_file(cnk_ctx *ctx, cnk_predictor *p, const char *path, double *proba)
{
    if (!p || !path || !proba) return cnk_fail(ctx, CNK_ERR_ARG, "classify: NULL argument");
    if (p->fusion) return classify_fusion(ctx, p, path, NULL, 0, proba);
    if (is_special(p)) return classify_file_special(ctx, p, path, proba);
    if (prep_of(p)->kind == CNK_PREP_CSV)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: a CSV model classifies feature rows (cnk_predictor_classify_row)", path);
    if (!p->worker) {
        int rc = cnk_prep_worker_create(ctx, prep_of(p), &p->worker);
        if (rc) return rc;
    }
    cnk_array features;
    int rc = cnk_preprocess_file(ctx, p->worker, path, &features);
    if (rc) return rc;
    return predict_and_release(ctx, p, &features, proba);
}

/* A spectrogram as features/extract.h computes it: the same plan parameters and dB conversion as the
 * preprocessing worker uses for files. */
static int make_extractor(cnk_ctx *ctx, const cnk_preprocess *prep, cnk_extractor **out)
{
    cnk_extract_params ep;
    cnk_extract_params_default(&ep);
    ep.kind = prep->kind == CNK_PREP_WAVELET ? CNK_FEATURE_WAVELET : CNK_FEATURE_MEL;
    ep.sample_rate = prep->sample_rate;
    ep.n_fft = prep->n_fft;
    ep.hop_length = prep->hop_length;
    ep.n_mels = prep->n_mels;
    ep.n_scales = prep->n_scales;
    ep.fmin = prep->kind == CNK_PREP_WAVELET ? prep->wavelet_fmin : prep->fmin;
    ep.fmax = prep->fmax;
    ep.db = 1;
    return cnk_extractor_create(ctx, &ep, out);
}

/* Samples at the rate prep wants: the spectrogram, then what pipeline/preprocess.c does after the dB
 * conversion of a file (peak reference, trimming, ...), so buffers and files give identical features. */
static int samples_to_features(cnk_ctx *ctx, cnk_extractor *ex, const cnk_preprocess *prep, const float *samples,
                               size_t n, cnk_array *features)
{
    int rc = cnk_extract_samples(ctx, ex, samples, n, prep->sample_rate, features);
    if (rc) return rc;
    rc = cnk_preprocess_finish_db(ctx, prep, features);
    if (rc) cnk_array_release(features);
    return rc;
}

/* One view's features of a file (path) or of samples at the view's rate, through the view's worker or extractor,
 * made on first use and kept. */
static int fusion_view(cnk_ctx *ctx, cnk_predictor *p, int v, const char *path, const float *samples, size_t n,
                       cnk_array *out)
{
    const cnk_preprocess *prep = cnk_fusion_predictor_view(p->fusion, v);
    int rc = CNK_OK;
    if (path) {
        if (!p->view_worker[v]) rc = cnk_prep_worker_create(ctx, prep, &p->view_worker[v]);
        return rc ? rc : cnk_preprocess_file(ctx, p->view_worker[v], path, out);
    }
    if (!p->view_extractor[v]) rc = make_extractor(ctx, prep, &p->view_extractor[v]);
    return rc ? rc : samples_to_features(ctx, p->view_extractor[v], prep, samples, n, out);
}

/* A late-fusion model: both views of the same file or samples, then the network built when the model was loaded
 * (so classifying many files one by one costs what `cnnkit predict` does). */
static int classify_fusion(cnk_ctx *ctx, cnk_predictor *p, const char *path, const float *samples, size_t n,
                           double *proba)
{
    cnk_array views[2];
    memset(views, 0, sizeof views);
    int rc = CNK_OK;
    for (int v = 0; v < 2 && !rc; v++) rc = fusion_view(ctx, p, v, path, samples, n, &views[v]);
    if (!rc) rc = cnk_fusion_predictor_classify(ctx, p->fusion, &views[0], &views[1], proba);
    cnk_array_release(&views[0]);
    cnk_array_release(&views[1]);
    return rc;
}

int cnk_predictor_classify_samples(cnk_ctx *ctx, cnk_predictor *p, const float *samples, size_t n_samples,
                                   int sample_rate, double *proba)
{
    if (!p || !proba) return cnk_fail(ctx, CNK_ERR_ARG, "classify: NULL argument");
    if (!samples || n_samples == 0) return cnk_fail(ctx, CNK_ERR_ARG, "classify: no samples");
    const cnk_preprocess *prep = p->fusion ? cnk_fusion_predictor_view(p->fusion, 0) : prep_of(p);
    if (is_special(p) && !p->fusion)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "classify: transfer models classify audio files only");
    if (!p->fusion && prep->kind != CNK_PREP_MEL && prep->kind != CNK_PREP_WAVELET)
        return cnk_fail(ctx, CNK_ERR_ARG, "classify: the model takes %s input, not audio samples",
                        cnk_predictor_input_kind(p));
    if (sample_rate < 1 || sample_rate > CNK_AUDIO_MAX_RATE)
        return cnk_fail(ctx, CNK_ERR_ARG, "classify: bad sample rate %d", sample_rate);
    if (!p->fusion && !p->extractor) {
        int rc = make_extractor(ctx, prep, &p->extractor);
        if (rc) return rc;
    }
    float *resampled = NULL;
    size_t n = n_samples;
    if (sample_rate != prep->sample_rate) {
        int rc = cnk_audio_resample(ctx, samples, n_samples, sample_rate, prep->sample_rate, &resampled, &n);
        if (rc) return rc;
        samples = resampled;
    }
    if (p->fusion) { /* both views share the sample rate */
        int rc = classify_fusion(ctx, p, NULL, samples, n, proba);
        free(resampled);
        return rc;
    }
    cnk_array features;
    int rc = samples_to_features(ctx, p->extractor, prep, samples, n, &features);
    free(resampled);
    if (rc) return rc;
    return predict_and_release(ctx, p, &features, proba);
}

/* Interleaved 8-bit pixels with in_ch channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) to out_ch (1 or 3), as
 * stb_image converts when a file is loaded with a requested channel count. */
static void convert_channels(const unsigned char *in, int in_ch, unsigned char *out, int out_ch, size_t n_pixels)
{
    for (size_t i = 0; i < n_pixels; i++) {
        const unsigned char *s = in + i * (size_t)in_ch;
        unsigned char *d = out + i * (size_t)out_ch;
        int colour = in_ch >= 3;
        if (out_ch == 1)
            d[0] = colour ? (unsigned char)((s[0] * 77 + s[1] * 150 + s[2] * 29) >> 8) : s[0];
        else
            for (int c = 0; c < 3; c++) d[c] = colour ? s[c] : s[0];
    }
}

/* Pixels of a model with an evaluation crop -> its C x H x W input in [0, 1], exactly as from an image file. */
static int pixels_to_cropped_features(cnk_ctx *ctx, const cnk_preprocess *prep, const cnk_image *src,
                                      cnk_array *features)
{
    size_t n = (size_t)prep->channels * prep->height * prep->width;
    features->data = malloc(n * sizeof *features->data);
    if (!features->data) return cnk_fail(ctx, CNK_ERR_NOMEM, "classify: out of memory");
    int rc = cnk_image_to_tensor(ctx, src, prep->width, prep->height, CNK_CROP_CENTER, prep->crop, CNK_NORM_UNIT,
                                 features->data);
    if (rc) {
        cnk_array_release(features);
        return rc;
    }
    features->ndim = 3;
    features->shape[0] = (size_t)prep->channels;
    features->shape[1] = (size_t)prep->height;
    features->shape[2] = (size_t)prep->width;
    return CNK_OK;
}

/* Pixels -> the model's C x H x W input in [0, 1]: centre crop to its aspect, resize (as image files). */
static int pixels_to_features(cnk_ctx *ctx, const cnk_preprocess *prep, const cnk_image *src, cnk_array *features)
{
    memset(features, 0, sizeof *features);
    if (prep->crop > 0 && prep->crop < 1) return pixels_to_cropped_features(ctx, prep, src, features);
    cnk_image cropped = {0}, resized = {0};
    int rc = cnk_image_center_crop(ctx, src, prep->width, prep->height, &cropped);
    if (!rc) rc = cnk_image_resize(ctx, &cropped, prep->width, prep->height, &resized);
    cnk_image_release(&cropped);
    if (rc) return rc;
    size_t n = (size_t)prep->channels * prep->height * prep->width;
    features->data = malloc(n * sizeof *features->data);
    if (!features->data) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "classify: out of memory");
    if (!rc) {
        cnk_image_to_chw(&resized, CNK_NORM_UNIT, features->data);
        features->ndim = 3;
        features->shape[0] = (size_t)prep->channels;
        features->shape[1] = (size_t)prep->height;
        features->shape[2] = (size_t)prep->width;
    }
    cnk_image_release(&resized);
    return rc;
}

int cnk_predictor_classify_pixels(cnk_ctx *ctx, cnk_predictor *p, const unsigned char *pixels, int width, int height,
                                  int channels, double *proba)
{
    if (!p || !pixels || !proba) return cnk_fail(ctx, CNK_ERR_ARG, "classify: NULL argument");
    const cnk_preprocess *prep = prep_of(p);
    if (is_special(p) || prep->kind != CNK_PREP_IMAGE)
        return cnk_fail(ctx, CNK_ERR_ARG, "classify: the model takes %s input, not images",
                        cnk_predictor_input_kind(p));
    if (channels < 1 || channels > 4) return cnk_fail(ctx, CNK_ERR_ARG, "classify: %d channels (1 to 4)", channels);
    if (width < 1 || height < 1 || (size_t)width * (size_t)height > CNK_IMAGE_MAX_PIXELS)
        return cnk_fail(ctx, CNK_ERR_ARG, "classify: bad image size %d x %d", width, height);
    size_t n_pixels = (size_t)width * (size_t)height;
    cnk_image img = {.width = width, .height = height, .channels = prep->channels};
    img.pixels = malloc(n_pixels * (size_t)prep->channels);
    if (!img.pixels) return cnk_fail(ctx, CNK_ERR_NOMEM, "classify: out of memory for a %d x %d image", width, height);
    convert_channels(pixels, channels, img.pixels, prep->channels, n_pixels);
    cnk_array features;
    int rc = pixels_to_features(ctx, prep, &img, &features);
    cnk_image_release(&img);
    if (rc) return rc;
    return predict_and_release(ctx, p, &features, proba);
}

int cnk_predictor_classify_row(cnk_ctx *ctx, cnk_predictor *p, const float *values, size_t n_values, double *proba)
{
    if (!p || !values || !proba) return cnk_fail(ctx, CNK_ERR_ARG, "classify: NULL argument");
    const cnk_preprocess *prep = prep_of(p);
    if (is_special(p) || prep->kind != CNK_PREP_CSV)
        return cnk_fail(ctx, CNK_ERR_ARG, "classify: the model takes %s input, not feature rows",
                        cnk_predictor_input_kind(p));
    if (n_values != (size_t)prep->n_features)
        return cnk_fail(ctx, CNK_ERR_ARG, "classify: %zu values, the model expects %d features", n_values,
                        prep->n_features);
    /* Borrowed, never written: the classifier only reads its features. */
    cnk_array row = {.data = (float *)values, .ndim = 1, .shape = {n_values}};
    return cnk_classifier_predict_features(ctx, p->classifier, &row, proba);
}

/* Copies the classified items into an evaluation over the model's classes. */
static int evaluation_of(cnk_ctx *ctx, cnk_predictor *p, const cnk_dataset *ds, const cnk_classified *res,
                         cnk_evaluation **out)
{
    int n_classes = cnk_classifier_n_classes(p->classifier);
    int rc = cnk_evaluation_create(ctx, n_classes, cnk_classifier_class_names(p->classifier), out);
    for (size_t i = 0; !rc && i < res->n; i++) {
        const cnk_item *item = &ds->items[res->items[i]];
        rc = cnk_evaluation_add(ctx, *out, res->y_true[i], res->y_pred[i], res->proba + i * (size_t)n_classes,
                                item->path ? item->path : item->name);
    }
    if (rc) {
        cnk_evaluation_free(*out);
        *out = NULL;
    }
    return rc;
}

int cnk_predictor_evaluate(cnk_ctx *ctx, cnk_predictor *p, const char *data, const char *cache_dir,
                           cnk_evaluation **out)
{
    if (!out) return cnk_fail(ctx, CNK_ERR_ARG, "evaluate: NULL output pointer");
    *out = NULL;
    if (!p || !data) return cnk_fail(ctx, CNK_ERR_ARG, "evaluate: NULL argument");
    cnk_dataset_options dopts;
    cnk_dataset_options_init(&dopts);
    const cnk_preprocess *prep = prep_of(p);
    /* CSV models trained on rows reshaped as images read their evaluation CSV the same way (as cnnkit eval). */
    if (prep->kind == CNK_PREP_CSV && prep->height > 0 && prep->channels * prep->height * prep->width == prep->n_features) {
        dopts.image_width = prep->width;
        dopts.image_height = prep->height;
    }
    cnk_dataset ds;
    memset(&ds, 0, sizeof ds);
    cnk_classified res = {0};
    int rc = cnk_dataset_open(ctx, data, &dopts, &ds);
    if (!rc)
        rc = cnk_dataset_match_classes(ctx, &ds, cnk_classifier_class_names(p->classifier),
                                       (size_t)cnk_classifier_n_classes(p->classifier));
    if (!rc) rc = cnk_classifier_run_dataset(ctx, p->classifier, &ds, cache_dir, &res);
    if (!rc && res.n == 0)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no file of the model's classes could be classified", data);
    if (!rc) rc = evaluation_of(ctx, p, &ds, &res, out);
    cnk_classified_release(&res);
    cnk_dataset_release(&ds);
    return rc;
}
