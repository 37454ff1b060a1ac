/* Tests for features/spectrogram: mel, STFT and dB parity with librosa 0.10 (numpy port, cross-checked
 * with torchaudio; tests/ref/gen_features.py) on real clips, YAMNet's TensorFlow front end, and plan reuse.
 * test-libs: core features */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "features/audio.h"
#include "features/spectrogram.h"

/* Decodes the first `seconds` of a shared clip (0 = all) at its own rate. */
static void load_clip(cnk_ctx *ctx, const char *rel, double seconds, cnk_audio *a)
{
    char path[4096];
    assert_int_equal(cnk_audio_load(ctx, tu_shared(path, sizeof path, rel), 0, a), CNK_OK);
    if (seconds > 0) {
        size_t keep = (size_t)llround(seconds * a->sample_rate);
        assert_true(keep <= a->n_samples);
        a->n_samples = keep;
    }
}

/* Computes the spectrogram in dB and checks it against a reference fixture on the bins above the 80 dB
 * floor (below it both sides are clipped to the same value, compared too but with no extra tolerance). */
static void check_db_parity(cnk_spec_params *p, const cnk_audio *a, const char *fixture, double tol_db)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_spec *spec;
    assert_int_equal(cnk_spec_create(&ctx, p, &spec), CNK_OK);
    size_t rows = cnk_spec_n_rows(spec), frames = cnk_spec_n_frames(spec, a->n_samples);
    char path[4096];
    cnk_array ref;
    assert_int_equal(cnk_npy_read(&ctx, tu_fixture(path, sizeof path, fixture), &ref), CNK_OK);
    assert_int_equal(ref.ndim, 2);
    assert_int_equal(ref.shape[0], rows);
    assert_int_equal(ref.shape[1], frames);
    float *out = malloc(rows * frames * sizeof *out);
    assert_non_null(out);
    assert_int_equal(cnk_spec_compute(spec, a->samples, a->n_samples, out), CNK_OK);
    cnk_power_to_db(out, rows * frames, 1.0f, 1e-10f, 80.0f);
    float ref_max = -INFINITY;
    for (size_t i = 0; i < rows * frames; i++)
        ref_max = fmaxf(ref_max, ref.data[i]);
    double worst = 0;
    size_t worst_at = 0, n_above = 0;
    for (size_t i = 0; i < rows * frames; i++) {
        if (ref.data[i] <= ref_max - 80.0f + 1e-3f) continue;
        n_above++;
        double d = fabs((double)out[i] - ref.data[i]);
        if (d > worst) worst = d, worst_at = i;
    }
    print_message("%s: %zu x %zu, %zu bins above the floor, max |diff| %.2e dB at row %zu frame %zu\n", fixture, rows,
                  frames, n_above, worst, worst_at / frames, worst_at % frames);
    assert_true(n_above > rows * frames / 4);
    if (worst > tol_db) fail_msg("%s: max |cnnkit - reference| %.3g dB > %.3g dB", fixture, worst, tol_db);
    /* The floor itself (max - 80 dB) must match too. */
    float out_max = -INFINITY;
    for (size_t i = 0; i < rows * frames; i++)
        out_max = fmaxf(out_max, out[i]);
    assert_float_equal(out_max, ref_max, tol_db);
    free(out);
    cnk_array_release(&ref);
    cnk_spec_free(spec);
}

static void test_mel_db_matches_librosa_on_gtzan(void **state)
{
    (void)state;
    static const char *const genres[] = {"blues", "classical", "metal"};
    for (int g = 0; g < 3; g++) {
        cnk_ctx ctx;
        tu_ctx(&ctx);
        char rel[256], fixture[256];
        snprintf(rel, sizeof rel, "datasets/gtzan-mini/wav/%s/%s.00000.wav", genres[g], genres[g]);
        snprintf(fixture, sizeof fixture, "features/mel_db_%s_3s.npy", genres[g]);
        cnk_audio a;
        load_clip(&ctx, rel, 3.0, &a);
        assert_int_equal(a.sample_rate, 22050);
        cnk_spec_params p;
        cnk_spec_params_default(&p, a.sample_rate);
        check_db_parity(&p, &a, fixture, 1e-3);
        cnk_audio_release(&a);
    }
}

static void test_mel_db_matches_librosa_on_fsdd_8k(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_audio a;
    load_clip(&ctx, "datasets/fsdd/3/3_jackson_0.wav", 0, &a);
    assert_int_equal(a.sample_rate, 8000);
    cnk_spec_params p;
    cnk_spec_params_default(&p, a.sample_rate);
    p.n_fft = 512;
    p.hop_length = 128;
    p.n_mels = 40;
    check_db_parity(&p, &a, "features/mel_db_fsdd_3_jackson_0.npy", 1e-3);
    cnk_audio_release(&a);
}

static void test_stft_db_matches_librosa(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_audio a;
    load_clip(&ctx, "datasets/gtzan-mini/wav/jazz/jazz.00000.wav", 1.0, &a);
    cnk_spec_params p;
    cnk_spec_params_default(&p, a.sample_rate);
    p.kind = CNK_SPEC_STFT;
    /* The raw STFT runs in double precision (8e-6 dB measured); a single-precision FFT leaves a bin 80 dB below
     * its frame's loudest bin with ~2e-4 relative error, 1.06e-3 dB here, so 1e-4 catches a slide back to float
     * with a margin on both sides (the goal is 1e-3). */
    check_db_parity(&p, &a, "features/stft_db_jazz_1s.npy", 1e-4);
    cnk_audio_release(&a);
}

static void test_yamnet_front_end_matches_tensorflow_port(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_audio a;
    load_clip(&ctx, "weights/yamnet/RECORDING.wav", 0, &a);
    assert_int_equal(a.sample_rate, 16000);
    cnk_spec_params p;
    cnk_spec_params_yamnet(&p);
    cnk_spec *spec;
    assert_int_equal(cnk_spec_create(&ctx, &p, &spec), CNK_OK);
    size_t frames = cnk_spec_n_frames(spec, a.n_samples);
    assert_int_equal(frames, 1 + (a.n_samples - 400) / 160);
    char path[4096];
    cnk_array ref;
    assert_int_equal(cnk_npy_read(&ctx, tu_fixture(path, sizeof path, "features/yamnet_logmel_recording.npy"), &ref),
                     CNK_OK);
    assert_int_equal(ref.shape[0], 64);
    assert_int_equal(ref.shape[1], frames);
    float *out = malloc(64 * frames * sizeof *out);
    assert_non_null(out);
    assert_int_equal(cnk_spec_compute(spec, a.samples, a.n_samples, out), CNK_OK);
    cnk_log_offset(out, 64 * frames, 0.001f);
    size_t at;
    double worst = tu_max_abs_diff(out, ref.data, 64 * frames, &at);
    print_message("yamnet log-mel: max |diff| %.2e at row %zu frame %zu\n", worst, at / frames, at % frames);
    assert_true(worst < 1e-3);
    free(out);
    cnk_array_release(&ref);
    cnk_spec_free(spec);
    cnk_audio_release(&a);
}

static void test_power_to_db_as_librosa(void **state)
{
    (void)state;
    float x[5] = {1.0f, 100.0f, 1e-12f, 0.0f, 1e-3f};
    cnk_power_to_db(x, 5, 1.0f, 1e-10f, 80.0f);
    assert_float_equal(x[0], 0.0f, 1e-6);
    assert_float_equal(x[1], 20.0f, 1e-5);
    assert_float_equal(x[2], -60.0f, 1e-5); /* amin = 1e-10 gives -100 dB, clipped to max - 80 */
    assert_float_equal(x[3], -60.0f, 1e-5);
    assert_float_equal(x[4], -30.0f, 1e-5);
    /* Every order of magnitude the dB of a power can have: within 1e-4 dB of the double-precision answer. */
    enum { N_SWEEP = 4001 };
    static float sweep[N_SWEEP];
    for (int i = 0; i < N_SWEEP; i++)
        sweep[i] = (float)pow(10.0, -12.0 + 24.0 * i / (N_SWEEP - 1));
    cnk_power_to_db(sweep, N_SWEEP, 1.0f, 1e-10f, -1.0f);
    for (int i = 0; i < N_SWEEP; i++) {
        double v = fmax(1e-10, (double)(float)pow(10.0, -12.0 + 24.0 * i / (N_SWEEP - 1)));
        if (fabs(sweep[i] - 10.0 * log10(v)) > 1e-4)
            fail_msg("power_to_db(%g) = %.7f, want %.7f", v, sweep[i], 10 * log10(v));
    }
    /* amin 0: zero power is -inf dB, as numpy's log10(0). */
    float z[2] = {0.0f, 1.0f};
    cnk_power_to_db(z, 2, 1.0f, 0.0f, -1.0f);
    assert_true(isinf(z[0]) && z[0] < 0);
    assert_float_equal(z[1], 0.0f, 1e-6);
    float y[3] = {4.0f, 2.0f, 1e-20f};
    cnk_power_to_db(y, 3, 2.0f, 1e-10f, -1.0f); /* ref 2, no top_db */
    assert_float_equal(y[0], 10.0 * log10(2.0), 1e-5);
    assert_float_equal(y[1], 0.0f, 1e-6);
    assert_float_equal(y[2], -100.0 - 10.0 * log10(2.0), 1e-4);
}

static void test_mel_scale_round_trip_and_known_values(void **state)
{
    (void)state;
    assert_float_equal(cnk_hz_to_mel(1000.0, CNK_MEL_SCALE_SLANEY), 15.0, 1e-12);
    assert_float_equal(cnk_hz_to_mel(500.0, CNK_MEL_SCALE_SLANEY), 7.5, 1e-12);
    assert_float_equal(cnk_hz_to_mel(1000.0, CNK_MEL_SCALE_HTK), 999.9855, 1e-3);
    for (double hz = 0; hz < 20000; hz += 777)
        for (int s = 0; s < 2; s++)
            assert_float_equal(cnk_mel_to_hz(cnk_hz_to_mel(hz, s), s), hz, 1e-6);
}

static void test_frames_plan_reuse_and_bad_params(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_spec_params p;
    cnk_spec_params_default(&p, 22050);
    cnk_spec *spec;
    assert_int_equal(cnk_spec_create(&ctx, &p, &spec), CNK_OK);
    assert_int_equal(cnk_spec_n_rows(spec), 128);
    assert_int_equal(cnk_spec_n_frames(spec, 661794), 1 + 661794 / 512);
    assert_int_equal(cnk_spec_n_frames(spec, 1), 1);
    /* A plan gives the same answer when reused on another clip and back. */
    size_t n = 22050;
    float *sine = malloc(n * sizeof *sine), *noise = malloc(n * sizeof *noise);
    size_t frames = cnk_spec_n_frames(spec, n);
    float *a = malloc(128 * frames * sizeof *a), *b = malloc(128 * frames * sizeof *b);
    assert_true(sine && noise && a && b);
    for (size_t i = 0; i < n; i++) {
        sine[i] = (float)sin(2 * M_PI * 1000.0 * i / 22050.0);
        noise[i] = (float)((i * 7919 % 1000) / 1000.0 - 0.5);
    }
    assert_int_equal(cnk_spec_compute(spec, sine, n, a), CNK_OK);
    assert_int_equal(cnk_spec_compute(spec, noise, n, b), CNK_OK);
    assert_int_equal(cnk_spec_compute(spec, sine, n, b), CNK_OK);
    assert_memory_equal(a, b, 128 * frames * sizeof *a);
    /* The 1 kHz tone's energy sits in the mel row whose centre is nearest 1 kHz (slaney: mel 15). */
    size_t best = 0, mid = frames / 2;
    for (size_t m = 0; m < 128; m++)
        if (a[m * frames + mid] > a[best * frames + mid]) best = m;
    double centre = cnk_mel_to_hz(cnk_hz_to_mel(0, 0) + (cnk_hz_to_mel(11025, 0)) * (best + 1) / 129.0, 0);
    assert_true(fabs(centre - 1000.0) < 60.0);
    free(sine), free(noise), free(a), free(b);
    cnk_spec_free(spec);
    p.center = 0;
    assert_int_equal(cnk_spec_create(&ctx, &p, &spec), CNK_OK);
    assert_int_equal(cnk_spec_n_frames(spec, 2047), 0);
    float dummy[1];
    assert_int_equal(cnk_spec_compute(spec, dummy, 1, dummy), CNK_ERR_ARG);
    cnk_spec_free(spec);
    cnk_spec_params_default(&p, 22050);
    p.fmax = 20000;
    assert_int_equal(cnk_spec_create(&ctx, &p, &spec), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "fmax"));
    p.fmax = 0;
    p.n_fft = 1;
    assert_int_equal(cnk_spec_create(&ctx, &p, &spec), CNK_ERR_ARG);
    p.n_fft = 2048;
    p.power = 3;
    assert_int_equal(cnk_spec_create(&ctx, &p, &spec), CNK_ERR_ARG);
}

/* Plans created and used from several threads at once (FFTW's planner is serialised inside) give the
 * same bytes as one plan used alone. */
static void test_plans_from_several_threads_agree(void **state)
{
    (void)state;
    enum { N_THREADS = 4 };
    size_t n = 22050;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(sin(i * 0.05) + 0.3 * sin(i * 0.71));
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_spec_params p;
    cnk_spec_params_default(&p, 22050);
    cnk_spec *spec;
    assert_int_equal(cnk_spec_create(&ctx, &p, &spec), CNK_OK);
    size_t count = 128 * cnk_spec_n_frames(spec, n);
    float *expected = malloc(count * sizeof *expected), *got = malloc(N_THREADS * count * sizeof *got);
    assert_true(expected && got);
    assert_int_equal(cnk_spec_compute(spec, x, n, expected), CNK_OK);
    cnk_spec_free(spec);
    int failures = 0;
#pragma omp parallel for num_threads(N_THREADS) reduction(+ : failures)
    for (int t = 0; t < N_THREADS; t++) {
        cnk_ctx local;
        tu_ctx(&local);
        cnk_spec *mine;
        for (int round = 0; round < 3; round++) { /* create, use and free repeatedly to interleave planner calls */
            if (cnk_spec_create(&local, &p, &mine) != CNK_OK) {
                failures++;
                continue;
            }
            if (cnk_spec_compute(mine, x, n, got + (size_t)t * count) != CNK_OK) failures++;
            cnk_spec_free(mine);
        }
    }
    assert_int_equal(failures, 0);
    for (int t = 0; t < N_THREADS; t++)
        assert_memory_equal(got + (size_t)t * count, expected, count * sizeof *got);
    free(expected);
    free(got);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mel_db_matches_librosa_on_gtzan),
        cmocka_unit_test(test_mel_db_matches_librosa_on_fsdd_8k),
        cmocka_unit_test(test_stft_db_matches_librosa),
        cmocka_unit_test(test_yamnet_front_end_matches_tensorflow_port),
        cmocka_unit_test(test_power_to_db_as_librosa),
        cmocka_unit_test(test_mel_scale_round_trip_and_known_values),
        cmocka_unit_test(test_frames_plan_reuse_and_bad_params),
        cmocka_unit_test(test_plans_from_several_threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
