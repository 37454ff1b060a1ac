/* yamnet.c: YAMNet = a log-mel front end (yamnet_frontend.c) + the imported MobileNetV1 body, run patch by
 * patch. (The front end sits in its own file because features/spectrogram.h and nn/arch.h both declare an
 * enum cnk_pad_mode, so no file can include both.) */
#include "pipeline/yamnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "features/audio.h"
#include "nn/import.h"
#include "nn/model.h"
#include "nn/modelfile.h"

#define YAMNET_BATCH 8

struct cnk_yamnet {
    cnk_model *model;
    int gap_layer;       /* its output is the 1024-d embedding */
    int n_classes;
    char **class_names;  /* n_classes strings */
};

/* ---- the model ---------------------------------------------------------------------------------------- */

static int check_shape(cnk_ctx *ctx, const char *path, const cnk_arch *arch)
{
    const cnk_layer *in = &arch->layers[arch->input_layers[0]];
    if (arch->n_input_layers != 1 || in->input_shape.c != 1 || in->input_shape.h != CNK_YAMNET_PATCH_FRAMES ||
        in->input_shape.w != CNK_YAMNET_N_MELS)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a YAMNet model (input is not one 96x64 log-mel patch)", path);
    return CNK_OK;
}

/* Fills mf from a .tflite (import) or a .cnk. */
static int load_modelfile(cnk_ctx *ctx, const char *path, cnk_modelfile *mf)
{
    if (!cnk_path_has_ext(path, "tflite")) return cnk_modelfile_read(ctx, path, mf);
    cnk_import_info info;
    int rc = cnk_import_tflite(ctx, path, NULL, mf, &info);
    if (rc == CNK_OK && info.kind != CNK_IMPORT_YAMNET) {
        cnk_modelfile_release(mf);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a YAMNet model (%s)", path, info.arch_name);
    }
    return rc;
}

int cnk_yamnet_create(cnk_ctx *ctx, const char *model_path, cnk_yamnet **out)
{
    *out = NULL;
    cnk_yamnet *y = calloc(1, sizeof *y);
    if (!y) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", model_path);
    cnk_modelfile mf;
    cnk_arch arch;
    cnk_arch_init(&arch);
    int rc = load_modelfile(ctx, model_path, &mf);
    if (rc) {
        free(y);
        return rc;
    }
    rc = cnk_modelfile_arch(ctx, &mf, &arch);
    if (!rc) rc = check_shape(ctx, model_path, &arch);
    if (!rc && (y->gap_layer = cnk_arch_find(&arch, "gap")) < 0)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a YAMNet model (no 'gap' layer)", model_path);
    if (!rc) rc = cnk_model_create(ctx, &arch, YAMNET_BATCH, &y->model);
    if (!rc) {
        memcpy(cnk_model_params(y->model), mf.params, mf.n_params * sizeof(float));
        if (mf.n_buffers) memcpy(cnk_model_buffers(y->model), mf.buffers, mf.n_buffers * sizeof(float));
        y->n_classes = mf.n_classes;
        y->class_names = mf.class_names; /* taken over */
        mf.class_names = NULL;
        mf.n_classes = 0;
    }
    cnk_arch_release(&arch);
    cnk_modelfile_release(&mf);
    if (rc) {
        cnk_yamnet_free(y);
        return rc;
    }
    *out = y;
    return CNK_OK;
}

void cnk_yamnet_free(cnk_yamnet *y)
{
    if (!y) return;
    cnk_model_free(y->model);
    if (y->class_names)
        for (int i = 0; i < y->n_classes; i++) free(y->class_names[i]);
    free(y->class_names);
    free(y);
}

int cnk_yamnet_n_classes(const cnk_yamnet *y) { return y->n_classes; }

const char *cnk_yamnet_class_name(const cnk_yamnet *y, int index)
{
    return index >= 0 && index < y->n_classes ? y->class_names[index] : "";
}

/* ---- running it --------------------------------------------------------------------------------------- */

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Runs patches [first, first + count) of the log-mel frames through the CNN. */
static int run_batch(cnk_ctx *ctx, cnk_yamnet *y, const float *log_mel, size_t first, int count, float *scores,
                     float *embeddings)
{
    const size_t patch = (size_t)CNK_YAMNET_PATCH_FRAMES * CNK_YAMNET_N_MELS;
    const float *inputs[1];
    float *batch = malloc((size_t)count * patch * sizeof *batch);
    if (!batch) return cnk_fail(ctx, CNK_ERR_NOMEM, "yamnet: out of memory");
    for (int b = 0; b < count; b++)
        memcpy(batch + b * patch, log_mel + (first + (size_t)b) * CNK_YAMNET_PATCH_HOP * CNK_YAMNET_N_MELS,
               patch * sizeof *batch);
    inputs[0] = batch;
    int rc = cnk_model_forward(ctx, y->model, inputs, count, CNK_MODE_INFER);
    free(batch);
    if (rc) return rc;
    int units;
    const float *logits = cnk_model_output(y->model, 0, &units);
    if (scores)
        for (size_t i = 0; i < (size_t)count * (size_t)units; i++) scores[first * units + i] = sigmoid(logits[i]);
    if (embeddings) {
        const float *pooled = cnk_model_layer_output(y->model, y->gap_layer, NULL);
        memcpy(embeddings + first * CNK_YAMNET_EMBEDDING, pooled, (size_t)count * CNK_YAMNET_EMBEDDING * sizeof(float));
    }
    return CNK_OK;
}

int cnk_yamnet_run(cnk_ctx *ctx, cnk_yamnet *y, const float *samples, size_t n_samples, float **scores,
                   float **embeddings, size_t *n_patches)
{
    if (scores) *scores = NULL;
    if (embeddings) *embeddings = NULL;
    *n_patches = 0;
    float *log_mel;
    size_t frames;
    int rc = cnk_yamnet_log_mel(ctx, samples, n_samples, &log_mel, &frames);
    if (rc) return rc;
    size_t patches = 1 + (frames - CNK_YAMNET_PATCH_FRAMES) / CNK_YAMNET_PATCH_HOP;
    float *s = scores ? malloc(patches * (size_t)y->n_classes * sizeof *s) : NULL;
    float *e = embeddings ? malloc(patches * CNK_YAMNET_EMBEDDING * sizeof *e) : NULL;
    if ((scores && !s) || (embeddings && !e)) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "yamnet: out of memory");
    for (size_t p = 0; !rc && p < patches; p += YAMNET_BATCH) {
        int count = patches - p < YAMNET_BATCH ? (int)(patches - p) : YAMNET_BATCH;
        rc = run_batch(ctx, y, log_mel, p, count, s, e);
    }
    free(log_mel);
    if (rc) {
        free(s);
        free(e);
        return rc;
    }
    if (scores) *scores = s;
    if (embeddings) *embeddings = e;
    *n_patches = patches;
    return CNK_OK;
}

int cnk_yamnet_classify_file(cnk_ctx *ctx, cnk_yamnet *y, const char *path, float *mean_scores,
                             float *mean_embedding)
{
    cnk_audio audio;
    int rc = cnk_audio_load(ctx, path, CNK_YAMNET_SAMPLE_RATE, &audio);
    if (rc) return rc;
    float *scores, *embeddings;
    size_t patches;
    rc = cnk_yamnet_run(ctx, y, audio.samples, audio.n_samples, &scores, mean_embedding ? &embeddings : NULL,
                        &patches);
    cnk_audio_release(&audio);
    if (rc) return rc;
    for (int c = 0; c < y->n_classes; c++) {
        double sum = 0;
        for (size_t p = 0; p < patches; p++) sum += scores[p * y->n_classes + c];
        mean_scores[c] = (float)(sum / patches);
    }
    if (mean_embedding) {
        for (int k = 0; k < CNK_YAMNET_EMBEDDING; k++) {
            double sum = 0;
            for (size_t p = 0; p < patches; p++) sum += embeddings[p * CNK_YAMNET_EMBEDDING + k];
            mean_embedding[k] = (float)(sum / patches);
        }
        free(embeddings);
    }
    free(scores);
    return CNK_OK;
}
