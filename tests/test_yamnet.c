/* Tests for pipeline/yamnet: the C log-mel front end against the one inside yamnet.tflite (run by the naive
 * interpreter of tests/tflite_interp.h), scores against the interpreter's run of the whole file, Speech on
 * the README's RECORDING.wav, patching of long and short clips, .cnk and .tflite loading. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/audio.h"
#include "nn/import.h"
#include "nn/modelfile.h"
#include "nn/tflite.h"
#include "pipeline/yamnet.h"
#include "tflite_interp.h"

#define YAMNET_PATH "weights/yamnet/yamnet.tflite"
#define RECORDING_PATH "weights/yamnet/RECORDING.wav"

static cnk_yamnet *load_yamnet(const char *rel)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_yamnet *y;
    if (cnk_yamnet_create(&ctx, tu_shared(path, sizeof path, rel), &y)) fail_msg("%s", cnk_error(&ctx));
    return y;
}

static void load_recording(cnk_audio *audio)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    if (cnk_audio_load(&ctx, tu_shared(path, sizeof path, RECORDING_PATH), 16000, audio))
        fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(audio->n_samples, CNK_YAMNET_MIN_SAMPLES); /* 0.975 s at 16 kHz: exactly one patch */
}

/* The whole yamnet.tflite run by the interpreter on the recording: its log-mel patch and its scores. */
static void interpreter_reference(const cnk_audio *audio, float *patch, float *scores)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_tfl_graph g;
    if (cnk_tflite_read(&ctx, tu_shared(path, sizeof path, YAMNET_PATH), &g)) fail_msg("%s", cnk_error(&ctx));
    ti_run run = {0};
    if (ti_run_graph(&run, &g, g.inputs[0], audio->samples, 0, g.n_ops) != 0) fail_msg("interpreter failed");
    int patch_tensor = cnk_tflite_find_tensor(&g, "Identity_1"), scores_tensor = cnk_tflite_find_tensor(&g, "Identity");
    assert_true(patch_tensor >= 0 && scores_tensor >= 0);
    memcpy(patch, run.values[patch_tensor], 96 * 64 * sizeof *patch);
    memcpy(scores, run.values[scores_tensor], 521 * sizeof *scores);
    ti_release(&run);
    cnk_tflite_release(&g);
}

static void test_front_end_and_scores_match_the_tflite_graph(void **state)
{
    (void)state;
    cnk_audio audio;
    load_recording(&audio);
    float *ref_patch = malloc(96 * 64 * sizeof *ref_patch), ref_scores[521];
    assert_non_null(ref_patch);
    interpreter_reference(&audio, ref_patch, ref_scores);

    cnk_ctx ctx;
    tu_ctx(&ctx);
    float *log_mel;
    size_t frames;
    assert_int_equal(cnk_yamnet_log_mel(&ctx, audio.samples, audio.n_samples, &log_mel, &frames), CNK_OK);
    assert_int_equal(frames, 96);
    /* The file computes the DFT and mel weights with int8-quantised matrices, cnnkit with FFTW in float:
     * they agree closely where there is energy; near the log floor (log 0.001) relative errors grow. */
    double sum = 0;
    size_t where;
    double worst = tu_max_abs_diff(log_mel, ref_patch, 96 * 64, &where);
    for (int i = 0; i < 96 * 64; i++) sum += fabs(log_mel[i] - ref_patch[i]);
    print_message("log-mel vs tflite front end: mean |diff| %.4f, max %.4f (at frame %zu band %zu, value %.3f)\n",
                  sum / (96 * 64), worst, where / 64, where % 64, ref_patch[where]);
    assert_true(sum / (96 * 64) < 0.02);
    assert_true(worst < 0.5);

    cnk_yamnet *y = load_yamnet(YAMNET_PATH);
    assert_int_equal(cnk_yamnet_n_classes(y), 521);
    float *scores, *embeddings;
    size_t patches;
    assert_int_equal(cnk_yamnet_run(&ctx, y, audio.samples, audio.n_samples, &scores, &embeddings, &patches), CNK_OK);
    assert_int_equal(patches, 1);
    int top = 0;
    for (int c = 1; c < 521; c++) top = scores[c] > scores[top] ? c : top;
    print_message("RECORDING.wav: top class %s (%.3f); the tflite graph in float: %.3f\n",
                  cnk_yamnet_class_name(y, top), scores[top], ref_scores[top]);
    assert_string_equal(cnk_yamnet_class_name(y, top), "Speech");
    assert_true(scores[top] > 0.95);
    tu_assert_close(scores, ref_scores, 521, 0.02, 0, "yamnet scores vs the tflite graph");
    /* Embeddings: ReLU features averaged over the patch: non-negative, not all zero. */
    double energy = 0;
    for (int k = 0; k < CNK_YAMNET_EMBEDDING; k++) {
        assert_true(embeddings[k] >= 0);
        energy += embeddings[k];
    }
    assert_true(energy > 1);
    free(scores);
    free(embeddings);
    free(log_mel);
    free(ref_patch);
    cnk_yamnet_free(y);
    cnk_audio_release(&audio);
}

static void test_patching_long_and_short_clips(void **state)
{
    (void)state;
    cnk_audio audio;
    load_recording(&audio);
    cnk_yamnet *y = load_yamnet(YAMNET_PATH);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    /* 3 s: the recording three times over gives 298 frames -> patches at frames 0, 48, ..., 192 = 5. */
    size_t n = 3 * 16000;
    float *longer = calloc(n, sizeof *longer);
    assert_non_null(longer);
    for (size_t i = 0; i < n; i++) longer[i] = audio.samples[i % audio.n_samples];
    float *scores;
    size_t patches;
    assert_int_equal(cnk_yamnet_run(&ctx, y, longer, n, &scores, NULL, &patches), CNK_OK);
    assert_int_equal(patches, 5);
    for (size_t p = 0; p < patches; p++) {
        int top = 0;
        for (int c = 1; c < 521; c++) top = scores[p * 521 + c] > scores[p * 521 + top] ? c : top;
        assert_string_equal(cnk_yamnet_class_name(y, top), "Speech");
    }
    free(scores);
    /* A quarter-second clip is padded to one patch; silence scores Silence above Speech. */
    assert_int_equal(cnk_yamnet_run(&ctx, y, audio.samples, 4000, &scores, NULL, &patches), CNK_OK);
    assert_int_equal(patches, 1);
    free(scores);
    memset(longer, 0, n * sizeof *longer);
    assert_int_equal(cnk_yamnet_run(&ctx, y, longer, 16000, &scores, NULL, &patches), CNK_OK);
    int top = 0;
    for (int c = 1; c < 521; c++) top = scores[c] > scores[top] ? c : top;
    print_message("1 s of silence: top class %s (%.3f)\n", cnk_yamnet_class_name(y, top), scores[top]);
    assert_string_equal(cnk_yamnet_class_name(y, top), "Silence");
    free(scores);
    free(longer);
    cnk_yamnet_free(y);
    cnk_audio_release(&audio);
}

static void test_cnk_file_and_classify_file(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char tflite[4096], dir[4096], cnk[4200], wav[4096];
    tu_tmpdir(dir, sizeof dir, "yamnet");
    snprintf(cnk, sizeof cnk, "%s/yamnet.cnk", dir);
    cnk_modelfile mf;
    cnk_import_info info;
    if (cnk_import_tflite(&ctx, tu_shared(tflite, sizeof tflite, YAMNET_PATH), NULL, &mf, &info))
        fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(cnk_modelfile_write(&ctx, cnk, &mf), CNK_OK);
    cnk_modelfile_release(&mf);
    cnk_yamnet *from_cnk;
    if (cnk_yamnet_create(&ctx, cnk, &from_cnk)) fail_msg("%s", cnk_error(&ctx));
    cnk_yamnet *from_tflite = load_yamnet(YAMNET_PATH);
    float a[521], b[521], embedding[CNK_YAMNET_EMBEDDING];
    tu_shared(wav, sizeof wav, RECORDING_PATH);
    assert_int_equal(cnk_yamnet_classify_file(&ctx, from_cnk, wav, a, embedding), CNK_OK);
    assert_int_equal(cnk_yamnet_classify_file(&ctx, from_tflite, wav, b, NULL), CNK_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_string_equal(cnk_yamnet_class_name(from_cnk, 0), "Speech");
    assert_true(a[0] > 0.95);
    cnk_yamnet_free(from_cnk);
    cnk_yamnet_free(from_tflite);
    /* Not YAMNet, and not audio. */
    cnk_yamnet *y;
    char v1[4096];
    tu_shared(v1, sizeof v1, "weights/mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_quant.tflite");
    assert_int_equal(cnk_yamnet_create(&ctx, v1, &y), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "not a YAMNet model"));
    assert_null(y);
    y = load_yamnet(YAMNET_PATH);
    assert_int_not_equal(cnk_yamnet_classify_file(&ctx, y, tflite, a, NULL), CNK_OK);
    assert_non_null(strstr(cnk_error(&ctx), "yamnet.tflite"));
    cnk_yamnet_free(y);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_front_end_and_scores_match_the_tflite_graph),
        cmocka_unit_test(test_patching_long_and_short_clips),
        cmocka_unit_test(test_cnk_file_and_classify_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
